//! Django's cache framework for any [tower] service.
//!
//! [`CacheLayer`] stores whole HTTP responses and serves them again: site-wide on an
//! axum `Router`, per route ([`cache_page`]), or around any tower service of
//! `http::Request` → `http::Response`. Entries are keyed by URL plus the request
//! headers the response's `Vary` names, kept in a pluggable [`backend`] (in memory
//! by default), and answered with `Age`, RFC 9211 `Cache-Status`, and `304 Not
//! Modified` for conditional requests.
//!
//! Beside it, Django's header tools: [`patch_cache_control`],
//! [`add_never_cache_headers`], [`patch_vary_headers`], [`has_vary_header`],
//! [`get_max_age`], and per-route layers [`CacheControlLayer`],
//! [`NeverCacheLayer`] and [`VaryLayer`]; Django's low-level API, [`Cache`]
//! (`get` / `set` / `add` / `incr` / versions...), over the same backends; and
//! named caches from configuration ([`Caches`]).
//!
//! Backends: in memory (the default), files, and with the cargo features `redis`
//! and `memcached` one cache shared by every instance of a service. A backend
//! that fails or times out is a miss, never an error response.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use tower_response_cache::{CacheDirectives, CacheControlLayer, CacheLayer, NeverCacheLayer, cache_page};
//!
//! let app: Router = Router::new()
//!     // Per route: fresh for 60 s whatever the handler says (Django's cache_page(60)).
//!     .route("/report", get(|| async { "slow report" }).layer(cache_page(Duration::from_secs(60))))
//!     // Never cached, by this cache or any other.
//!     .route("/account", get(|| async { "private" }).layer(NeverCacheLayer::new()))
//!     // Cache-Control set by the route, honoured by the site-wide cache below.
//!     .route(
//!         "/news",
//!         get(|| async { "news" })
//!             .layer(CacheControlLayer::new(CacheDirectives::new().public().max_age(30))),
//!     )
//!     // Site-wide: everything else that is cacheable, for 600 s by default.
//!     .layer(CacheLayer::new());
//! ```
//!
//! [tower]: https://docs.rs/tower

#![deny(missing_docs)]

pub mod backend;
mod body;
mod cache;
mod cache_status;
pub mod clock;
pub mod config;
mod counters;
pub mod directives;
mod entry;
mod future;
mod handle;
pub mod headers;
mod invalidate;
mod key;
mod layer;
mod policy;
mod respond;
mod service;
mod store;
mod storing;

pub use body::ResponseBody;
pub use cache::{Cache, CacheBuilder, CacheError, CacheKey, Codec, CodecError, Postcard, Timeout};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{CacheSettings, Caches, ConfigError};
pub use directives::{
    CacheControlLayer, HeaderPatch, NeverCacheLayer, PatchHeaders, PatchHeadersFuture, VaryLayer,
};
pub use future::ResponseFuture;
pub use handle::{CacheHandle, CacheStats, InvalidUrl};
pub use headers::{
    CacheDirectives, add_never_cache_headers, get_max_age, has_vary_header, patch_cache_control,
    patch_response_headers, patch_vary_headers,
};
pub use key::KeyParts;
pub use layer::{CacheLayer, CacheLayerBuilder, cache_page};
pub use policy::Mode;
pub use service::CacheService;

/// The README's code blocks, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
