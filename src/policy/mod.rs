//! The rules that decide what is stored, for how long, and when a stored response
//! may answer a request: one engine, two presets ([`Mode`]).
//!
//! - [`app`]: Django's `UpdateCacheMiddleware` (the default).
//! - [`shared`]: an RFC 9111 shared cache, as a reverse proxy or CDN is.
//!
//! What both share lives here: the body-size and stream checks, and the
//! invalidation that unsafe methods cause.

pub(crate) mod app;
pub(crate) mod shared;

use std::time::Duration;

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, SET_COOKIE};

use crate::headers::vary::has_vary_header;
use crate::layer::Config;

/// Which caching rules a [`CacheLayer`](crate::CacheLayer) follows.
///
/// | | [`Mode::App`] (default) | [`Mode::Shared`] |
/// |---|---|---|
/// | Model | Django's cache middleware | RFC 9111 shared cache (reverse proxy, CDN) |
/// | Response without freshness | stored for `default_timeout` | stored without freshness: revalidated, never served as fresh |
/// | Headers | `Expires` and `max-age` added | passed through verbatim |
/// | Request `Cache-Control` | ignored (the application owns the cache) | honoured (`max-age`, `min-fresh`, `max-stale`, `no-cache`, `no-store`, `only-if-cached`) |
/// | Stale entries | served within their stale-while-revalidate / stale-if-error windows, else refetched | the same, else revalidated with `If-None-Match` / `If-Modified-Since` |
/// | Unsafe methods | invalidate the URL, `Location`, `Content-Location` | the same |
///
/// Pick app mode in front of your own handlers: the application decides what is
/// cached and for how long, and responses without `Cache-Control` get a default.
/// Pick shared mode in front of an origin you do not control (a proxy): nothing
/// is cached that the origin did not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Mode {
    /// Django's per-site / per-view cache semantics.
    #[default]
    App,
    /// An RFC 9111 shared cache.
    Shared,
}

/// How long past its freshness a stored response may still be served (RFC
/// 5861), in seconds: the response's own directives, else the layer's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StaleWindows {
    pub(crate) while_revalidate: u32,
    pub(crate) if_error: u32,
}

impl StaleWindows {
    pub(crate) fn resolve(swr: Option<u64>, sie: Option<u64>, config: &Config) -> Self {
        let secs = |directive: Option<u64>, default: Duration| {
            u32::try_from(directive.unwrap_or(default.as_secs())).unwrap_or(u32::MAX)
        };
        Self {
            while_revalidate: secs(swr, config.stale_while_revalidate),
            if_error: secs(sie, config.stale_if_error),
        }
    }

    /// The longer window: how long a stale entry must at least be kept.
    pub(crate) fn longest(self) -> Duration {
        Duration::from_secs(u64::from(self.while_revalidate.max(self.if_error)))
    }
}

/// Whether a cookie-setting response is refused: always unless the layer
/// stores them, and then still with `Vary: Cookie` (Django's rule; storing it
/// would hand the cookie set for a cookie-less request to every new visitor).
pub(crate) fn refuses_cookie(config: &Config, headers: &HeaderMap) -> bool {
    headers.contains_key(SET_COOKIE)
        && (!config.store_set_cookie || has_vary_header(headers, "cookie"))
}

/// The declared `Content-Length`, when it is a valid number.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether a body is known to be too large to store, from its size hint or
/// its declared length.
pub(crate) fn is_too_large(
    max_body_size: usize,
    headers: &HeaderMap,
    body_lower_bound: u64,
) -> bool {
    let limit = u64::try_from(max_body_size).unwrap_or(u64::MAX);
    body_lower_bound > limit || content_length(headers).is_some_and(|n| n > limit)
}

/// A server-sent event stream never ends: storing it would buffer forever.
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .get(..17)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"text/event-stream"))
    })
}
