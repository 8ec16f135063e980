//! The RFC 9211 `Cache-Status` member this cache adds to every response it handles.

use std::fmt::Write as _;

use http::{HeaderValue, StatusCode};

use crate::headers::interned::Interned;

/// The cache's name in `Cache-Status` (a macro so `concat!` can use it).
macro_rules! name {
    () => {
        "tower-response-cache"
    };
}
const NAME: &str = name!();

/// Why a request went to the inner service (RFC 9211 `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fwd {
    /// Nothing stored for the URL.
    UriMiss,
    /// Something stored for the URL, but not for this request's `Vary`'d values.
    VaryMiss,
    /// The matching stored response was no longer fresh (or must be validated
    /// on every use).
    Stale,
    /// A usable response was stored, but the request's directives refused it.
    Request,
    /// The method is not served from cache.
    Method,
}

impl Fwd {
    fn token(self) -> &'static str {
        match self {
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Stale => "stale",
            Fwd::Request => "request",
            Fwd::Method => "method",
        }
    }
}

/// `<name>; hit; ttl=<seconds of freshness left>`.
pub(crate) fn hit(ttl: i64) -> HeaderValue {
    static HIT: Interned = Interned::new(concat!(name!(), "; hit; ttl="));
    HIT.get(ttl)
}

/// `<name>; detail=only-if-cached`: nothing usable stored, and the request
/// forbade forwarding (answered 504).
pub(crate) fn only_if_cached() -> HeaderValue {
    HeaderValue::from_static(concat!(name!(), "; detail=only-if-cached"))
}

/// `<name>; fwd=<why>; fwd-status=<status>[; stored; ttl=<seconds>]`.
pub(crate) fn forward(fwd: Fwd, status: StatusCode, stored_ttl: Option<i64>) -> HeaderValue {
    let mut s = String::with_capacity(NAME.len() + 48);
    let _ = write!(
        s,
        "{NAME}; fwd={}; fwd-status={}",
        fwd.token(),
        status.as_u16()
    );
    if let Some(ttl) = stored_ttl {
        let _ = write!(s, "; stored; ttl={ttl}");
    }
    // Built from a token, integers and fixed text: always a valid header value.
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static(NAME))
}
