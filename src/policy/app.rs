//! App mode's response rules: Django's `UpdateCacheMiddleware.process_response`,
//! with the departures DESIGN.md lists.
//!
//! The rules look at the status and headers only, before any of the body is read,
//! so an uncacheable response streams through untouched.

use http::{HeaderMap, StatusCode};

use crate::headers::cache_control::{get_max_age, has_directive};
use crate::headers::vary::{VaryNames, vary_names};
use crate::layer::Config;
use crate::policy::{is_event_stream, is_too_large, refuses_cookie};

/// What to do with a response to a GET or HEAD that missed the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand it on exactly as it is: not storable, and Django adds no headers.
    Untouched,
    /// Patch `Expires` / `max-age` (and `Vary: Authorization`) for `timeout`
    /// seconds; store it when `store`.
    Patch { timeout: i64, store: bool },
}

/// Decides from status and headers alone. `body_lower_bound` is the body's known
/// minimum size (its size hint).
pub(crate) fn verdict(
    config: &Config,
    status: StatusCode,
    headers: &HeaderMap,
    body_lower_bound: u64,
) -> Verdict {
    let storable_status = config.statuses.contains(&status);
    if !storable_status && status != StatusCode::NOT_MODIFIED {
        return Verdict::Untouched;
    }
    // Django never touches a streaming response. Here any body streams, so the
    // streams left alone are those known to be too large or endless.
    if is_too_large(config.max_body_size, headers, body_lower_bound) || is_event_stream(headers) {
        return Verdict::Untouched;
    }
    // Departure 2: a cookie-setting response is not stored unless asked for, and
    // then never with `Vary: Cookie` (Django's rule).
    if refuses_cookie(config, headers) {
        return Verdict::Untouched;
    }
    if ["private", "no-cache", "no-store"]
        .iter()
        .any(|d| has_directive(headers, d))
    {
        return Verdict::Untouched;
    }
    // `Vary: *`, and a Vary that cannot be honoured (bad names, too many), are
    // never stored.
    if !matches!(vary_names(headers), Ok(VaryNames::Names(_))) {
        return Verdict::Untouched;
    }
    let timeout = match config.page_timeout {
        Some(t) => secs(t.as_secs()),
        None => match get_max_age(headers).unwrap_or(secs(config.default_timeout.as_secs())) {
            0 => return Verdict::Untouched,
            t => t,
        },
    };
    Verdict::Patch {
        timeout,
        store: storable_status && timeout > 0,
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}
