//! Header tools: Django's `django.utils.cache` helpers for `Cache-Control`,
//! `Expires` and `Vary`, plus the HTTP-date and conditional-request pieces the
//! cache uses when answering from a stored response.
//!
//! The functions work on an [`http::HeaderMap`], so they apply to requests and
//! responses of any body type. None of them panics on malformed header values.

pub(crate) mod cache_control;
pub(crate) mod conditional;
pub(crate) mod http_date;
pub(crate) mod interned;
pub(crate) mod list;
pub(crate) mod shape;
pub(crate) mod stored;
pub(crate) mod structured;
pub(crate) mod vary;

pub use cache_control::{
    CacheDirectives, add_never_cache_headers, get_max_age, patch_cache_control,
    patch_response_headers,
};
pub use vary::{has_vary_header, patch_vary_headers};
