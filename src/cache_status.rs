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
    /// The layer's bypass predicate sent the request on.
    Bypass,
    /// The backend could not be read: nothing is known of the URL.
    Miss,
}

impl Fwd {
    pub(crate) fn token(self) -> &'static str {
        match self {
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Stale => "stale",
            Fwd::Request => "request",
            Fwd::Method => "method",
            Fwd::Bypass => "bypass",
            Fwd::Miss => "miss",
        }
    }
}

/// `<name>; hit; ttl=<seconds of freshness left>`.
pub(crate) fn hit(ttl: i64) -> HeaderValue {
    static HIT: Interned = Interned::new(concat!(name!(), "; hit; ttl="));
    HIT.get(ttl)
}

/// `<name>; hit; ttl=<seconds>; collapsed`: served what another request's miss
/// stored, after waiting for it.
pub(crate) fn collapsed(ttl: i64) -> HeaderValue {
    with_suffix(&hit(ttl), "; collapsed")
}

/// `<name>; hit; ttl=<negative>; detail=stale-while-revalidate`: served stale
/// while a background request refreshes it.
pub(crate) fn stale_while_revalidate(ttl: i64) -> HeaderValue {
    with_suffix(&hit(ttl), "; detail=stale-while-revalidate")
}

/// `<name>; fwd=stale[; fwd-status=<status>]; ttl=<seconds>;
/// detail=stale-if-error`: the inner service failed (an error, or the status),
/// so the stale response was served.
pub(crate) fn stale_if_error(status: Option<StatusCode>, ttl: i64) -> HeaderValue {
    let mut s = String::with_capacity(NAME.len() + 64);
    let _ = write!(s, "{NAME}; fwd=stale");
    if let Some(status) = status {
        let _ = write!(s, "; fwd-status={}", status.as_u16());
    }
    let _ = write!(s, "; ttl={ttl}; detail=stale-if-error");
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static(NAME))
}

/// `value` with the `key` parameter (a string) appended.
pub(crate) fn with_key(value: &HeaderValue, key: &str) -> HeaderValue {
    with_suffix(value, &format!("; key=\"{key}\""))
}

fn with_suffix(value: &HeaderValue, suffix: &str) -> HeaderValue {
    let mut bytes = Vec::with_capacity(value.len() + suffix.len());
    bytes.extend_from_slice(value.as_bytes());
    bytes.extend_from_slice(suffix.as_bytes());
    // A valid value followed by visible ASCII is valid.
    HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| value.clone())
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
