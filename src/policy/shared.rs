//! Shared mode's rules: RFC 9111 as a shared cache applies it.
//!
//! - [`storable`]: may a response be stored (section 3), for how long (4.2.1,
//!   4.2.2), and how aged was it already (4.2.3)?
//! - [`judge`]: may a stored response answer this request, given the request's
//!   own directives (5.2.1) and the response's revalidation rules (4.2.4)?
//!
//! A targeted field (RFC 9213, `CDN-Cache-Control` by default) that is present
//! and valid replaces `Cache-Control` and `Expires` for both; so does a
//! `Surrogate-Control` with directives for this cache, after them.

use std::time::SystemTime;

use http::header::{AGE, DATE, ETAG, EXPIRES, LAST_MODIFIED};
use http::{HeaderMap, HeaderName, StatusCode};

use crate::cache_status::Fwd;
use crate::clock::unix_millis;
use crate::entry::{AuthScope, Entry, Revalidate};
use crate::headers::cache_control::{SplitDirectives, directives, split_directive};
use crate::headers::http_date::parse_http_date;
use crate::headers::list::trim_ows;
use crate::headers::structured::{Item, parse_dictionary};
use crate::layer::Config;
use crate::policy::{StaleWindows, is_event_stream, is_too_large, refuses_cookie};

/// The seconds of a valid delta directive.
fn secs(d: Option<Delta>) -> Option<u64> {
    match d {
        Some(Delta::Secs(s)) => Some(s),
        _ => None,
    }
}

/// The RFC 5861 windows of a response's `Cache-Control` (app mode, where the
/// other shared-mode rules do not apply).
pub(crate) fn stale_windows(config: &Config, headers: &HeaderMap) -> StaleWindows {
    let d = ResponseDirectives::from_cache_control(headers);
    StaleWindows::resolve(
        secs(d.stale_while_revalidate),
        secs(d.stale_if_error),
        config,
    )
}

/// The W3C Edge Architecture's response field for surrogates.
const SURROGATE_CONTROL: HeaderName = HeaderName::from_static("surrogate-control");

/// RFC 9111 section 1.2.2: a delta-seconds too large to represent is 2^31.
const DELTA_MAX: u64 = 2_147_483_648;

/// Statuses RFC 9110 section 15.1 calls heuristically cacheable.
const HEURISTIC: [u16; 12] = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// A delta-seconds directive value: `Invalid` counts as "already stale".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delta {
    Secs(u64),
    Invalid,
}

/// Reads delta-seconds: ASCII digits, optionally quoted (recipients accept the
/// quoted form, section 5.2), nothing else (no whitespace, sign or fraction);
/// too large is clamped to 2^31.
fn delta(value: Option<&[u8]>) -> Delta {
    let Some(mut v) = value else {
        return Delta::Invalid;
    };
    if let [b'"', inner @ .., b'"'] = v {
        v = inner;
    }
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Delta::Invalid;
    }
    let secs = v
        .iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(DELTA_MAX);
    Delta::Secs(secs.min(DELTA_MAX))
}

/// The response directives a shared cache acts on.
#[derive(Debug, Default)]
struct ResponseDirectives {
    no_store: bool,
    no_cache: bool,
    private: bool,
    public: bool,
    must_revalidate: bool,
    proxy_revalidate: bool,
    must_understand: bool,
    max_age: Option<Delta>,
    s_maxage: Option<Delta>,
    stale_while_revalidate: Option<Delta>,
    stale_if_error: Option<Delta>,
    /// Fields named by `no-cache="..."` and `private="..."`: not stored.
    unstored: Vec<HeaderName>,
}

impl ResponseDirectives {
    fn from_cache_control(headers: &HeaderMap) -> Self {
        let mut d = Self::default();
        for part in directives(headers) {
            // `max-age =5` is not `max-age`: the grammar has no space there.
            let (name, value) = split_directive(part);
            match value {
                Some(v) if is(name, "no-cache") || is(name, "private") => d.fields(v),
                _ => d.set(name, value, true),
            }
        }
        d
    }

    /// From a targeted field, when it is a valid non-empty dictionary.
    fn from_targeted(value: &[u8]) -> Option<Self> {
        let members = parse_dictionary(value)?;
        if members.is_empty() {
            return None;
        }
        let mut d = Self::default();
        for (name, item) in members {
            let name = name.as_bytes();
            match item {
                Item::Boolean(on) => d.set(name, None, on),
                Item::Integer(n) => {
                    let secs =
                        u64::try_from(n).map_or(Delta::Invalid, |n| Delta::Secs(n.min(DELTA_MAX)));
                    d.set_delta(name, secs);
                }
                Item::String(fields) if is(name, "no-cache") || is(name, "private") => {
                    d.fields(fields.as_bytes());
                }
                Item::String(_) | Item::Other => d.set_delta(name, Delta::Invalid),
            }
        }
        Some(d)
    }

    /// From `Surrogate-Control`, the directives meant for `token` or for every
    /// surrogate; `None` when none applies.
    fn from_surrogate(headers: &HeaderMap, token: &str) -> Option<Self> {
        let mut d = Self::default();
        let mut applies = false;
        for line in headers.get_all(SURROGATE_CONTROL) {
            for part in SplitDirectives::new(line.as_bytes()) {
                let (directive, target) = match part.iter().position(|&c| c == b';') {
                    Some(i) => (&part[..i], Some(trim_ows(&part[i + 1..]))),
                    None => (part, None),
                };
                if target.is_some_and(|t| !t.eq_ignore_ascii_case(token.as_bytes())) {
                    continue;
                }
                match split_directive(trim_ows(directive)) {
                    (name, Some(value)) if is(name, "max-age") => {
                        // `max-age=60+30`: fresh for 60 s, the rest is ESI's.
                        let fresh = value.split(|&c| c == b'+').next();
                        d.set_delta(name, delta(fresh));
                    }
                    (name, None) if is(name, "no-store") || is(name, "no-store-remote") => {
                        d.no_store = true;
                    }
                    _ => continue,
                }
                applies = true;
            }
        }
        applies.then_some(d)
    }

    fn set(&mut self, name: &[u8], value: Option<&[u8]>, on: bool) {
        let flag = match name {
            n if is(n, "no-store") => &mut self.no_store,
            n if is(n, "no-cache") => &mut self.no_cache,
            n if is(n, "private") => &mut self.private,
            n if is(n, "public") => &mut self.public,
            n if is(n, "must-revalidate") => &mut self.must_revalidate,
            n if is(n, "proxy-revalidate") => &mut self.proxy_revalidate,
            n if is(n, "must-understand") => &mut self.must_understand,
            n => return self.set_delta(n, delta(value)),
        };
        *flag |= on;
    }

    /// `max-age` / `s-maxage`; the first occurrence counts (section 4.2.1).
    fn set_delta(&mut self, name: &[u8], value: Delta) {
        let slot = match name {
            n if is(n, "max-age") => &mut self.max_age,
            n if is(n, "s-maxage") => &mut self.s_maxage,
            n if is(n, "stale-while-revalidate") => &mut self.stale_while_revalidate,
            n if is(n, "stale-if-error") => &mut self.stale_if_error,
            _ => return,
        };
        slot.get_or_insert(value);
    }

    /// A qualified `no-cache="a, b"` / `private="a"`: those fields are not stored
    /// (the rest of the response is).
    fn fields(&mut self, value: &[u8]) {
        let value = trim_ows(value);
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        self.unstored.extend(
            value
                .split(|&c| c == b',')
                .map(trim_ows)
                .filter_map(|f| HeaderName::from_bytes(f).ok()),
        );
    }
}

fn is(name: &[u8], directive: &str) -> bool {
    name.eq_ignore_ascii_case(directive.as_bytes())
}

/// The directives in force for this cache, and whether they came from a
/// targeted field (which also sets `Expires` aside).
fn response_directives(config: &Config, headers: &HeaderMap) -> (ResponseDirectives, bool) {
    for field in &config.targeted {
        let mut lines = headers.get_all(field).iter();
        let Some(first) = lines.next() else { continue };
        let mut joined = first.as_bytes().to_vec();
        for line in lines {
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(line.as_bytes());
        }
        if let Some(d) = ResponseDirectives::from_targeted(&joined) {
            return (d, true);
        }
    }
    let surrogate = config.surrogate.as_ref();
    if let Some(d) = surrogate.and_then(|s| ResponseDirectives::from_surrogate(headers, &s.token)) {
        return (d, true);
    }
    (ResponseDirectives::from_cache_control(headers), false)
}

/// The two moments of section 4.2.3: when the request was sent on, and when
/// its response arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange {
    pub(crate) request_time: SystemTime,
    pub(crate) response_time: SystemTime,
    /// The request carried a non-empty `Authorization`.
    pub(crate) authorized: bool,
    /// The request said `no-store`.
    pub(crate) no_store: bool,
}

/// How a storable response is to be kept.
#[derive(Debug)]
pub(crate) struct Storable {
    /// Freshness lifetime in seconds (0: stale from the start).
    pub(crate) lifetime: u64,
    /// Corrected initial age in seconds.
    pub(crate) initial_age: u64,
    pub(crate) revalidate: Revalidate,
    pub(crate) auth: AuthScope,
    /// Fields the response carries that must not be stored.
    pub(crate) unstored: Vec<HeaderName>,
    pub(crate) stale: StaleWindows,
}

impl Storable {
    /// Unix milliseconds until which the response is fresh.
    pub(crate) fn fresh_until(&self, response_time: SystemTime) -> u64 {
        let left = i128::from(self.lifetime) - i128::from(self.initial_age);
        let until = i128::from(unix_millis(response_time)) + left.max(0) * 1000;
        u64::try_from(until).unwrap_or(u64::MAX)
    }
}

/// Whether RFC 9111 section 3 lets a shared cache store this response, and how.
/// `body_lower_bound` is the body's known minimum size.
pub(crate) fn storable(
    config: &Config,
    exchange: &Exchange,
    status: StatusCode,
    headers: &HeaderMap,
    body_lower_bound: u64,
) -> Option<Storable> {
    if exchange.no_store
        || status.is_informational()
        // Partial content and 304 need range and update handling, not storing.
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || is_too_large(config.max_body_size, headers, body_lower_bound)
        || is_event_stream(headers)
        || refuses_cookie(config, headers)
    {
        return None;
    }
    let (d, targeted) = response_directives(config, headers);
    // `must-understand` overrides `no-store` only for statuses whose caching
    // this cache implements (section 5.2.2.3).
    let understood = status.canonical_reason().is_some();
    let refused = if d.must_understand {
        !understood
    } else {
        d.no_store
    };
    if refused {
        return None;
    }
    if d.private {
        return None;
    }
    let shareable = d.public || d.s_maxage.is_some() || d.must_revalidate;
    if exchange.authorized && !shareable {
        return None;
    }
    let date = headers.get(DATE).and_then(parse_http_date);
    let explicit = match (d.s_maxage, d.max_age) {
        (Some(s), _) => Some(s),
        (None, Some(m)) => Some(m),
        (None, None) if !targeted => headers.get(EXPIRES).map(|v| match parse_http_date(v) {
            Some(expires) => {
                let date = date.unwrap_or(exchange.response_time);
                Delta::Secs(expires.duration_since(date).map_or(0, |d| d.as_secs()))
            }
            None => Delta::Invalid,
        }),
        (None, None) => None,
    };
    let heuristic_status = HEURISTIC.contains(&status.as_u16());
    let lifetime = match explicit {
        Some(Delta::Secs(s)) => s,
        Some(Delta::Invalid) => 0,
        None if !d.public && !heuristic_status => return None,
        None => heuristic_lifetime(config, heuristic_status, headers, date, exchange),
    };
    let has_validator = headers.contains_key(ETAG) || headers.contains_key(LAST_MODIFIED);
    // Stored only if it can be used: fresh for a while, or revalidated later. (A
    // response stale on arrival without a validator would only be replaced.)
    let useful = if d.no_cache {
        has_validator
    } else {
        lifetime > 0 || has_validator && !config.keep.is_zero()
    };
    if !useful {
        return None;
    }
    Some(Storable {
        lifetime,
        initial_age: corrected_initial_age(headers, date, exchange),
        revalidate: Revalidate {
            every_use: d.no_cache,
            once_stale: d.must_revalidate || d.proxy_revalidate || d.s_maxage.is_some(),
        },
        auth: if exchange.authorized || d.public {
            AuthScope::Any
        } else {
            AuthScope::Anonymous
        },
        stale: StaleWindows::resolve(
            secs(d.stale_while_revalidate),
            secs(d.stale_if_error),
            config,
        ),
        unstored: d.unstored,
    })
}

/// Section 4.2.2: a fraction of the time since `Last-Modified`, when enabled.
fn heuristic_lifetime(
    config: &Config,
    heuristic_status: bool,
    headers: &HeaderMap,
    date: Option<SystemTime>,
    exchange: &Exchange,
) -> u64 {
    if !heuristic_status || config.heuristic_fraction <= 0.0 {
        return 0;
    }
    let Some(modified) = headers.get(LAST_MODIFIED).and_then(parse_http_date) else {
        return 0;
    };
    let since = date
        .unwrap_or(exchange.response_time)
        .duration_since(modified)
        .map_or(0, |d| d.as_secs());
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a non-negative fraction of a u64, rounded down and clamped"
    )]
    let secs = (since as f64 * config.heuristic_fraction) as u64;
    secs.min(DELTA_MAX)
}

/// Section 4.2.3: how old the response already was when it arrived.
fn corrected_initial_age(headers: &HeaderMap, date: Option<SystemTime>, ex: &Exchange) -> u64 {
    let apparent = date.map_or(0, |date| {
        ex.response_time
            .duration_since(date)
            .map_or(0, |d| d.as_secs())
    });
    // An `Age` that is not one delta-seconds (a list, two lines, a sign, a
    // parameter) cannot be trusted to be small: the response counts as stale.
    let mut lines = headers.get_all(AGE).iter();
    let age_value = match (lines.next(), lines.next()) {
        (None, _) => 0,
        (Some(line), None) => match delta(Some(trim_ows(line.as_bytes()))) {
            Delta::Secs(s) => s,
            Delta::Invalid => DELTA_MAX,
        },
        (Some(_), Some(_)) => DELTA_MAX,
    };
    let delay = ex
        .response_time
        .duration_since(ex.request_time)
        .map_or(0, |d| d.as_secs());
    apparent.max(age_value.saturating_add(delay)).min(DELTA_MAX)
}

/// Section 5.1: an `Age` too large to represent is passed on as 2^31, never as
/// the raw value (which a recipient could misread, or wrap).
pub(crate) fn clamp_age(headers: &mut HeaderMap) {
    let overflows = headers.get(AGE).is_some_and(|v| {
        let v = trim_ows(v.as_bytes());
        v.iter().all(u8::is_ascii_digit)
            && delta(Some(v)) == Delta::Secs(DELTA_MAX)
            && v != b"2147483648"
    });
    if overflows {
        headers.insert(AGE, http::HeaderValue::from_static("2147483648"));
    }
}

/// The request directives of section 5.2.1 (unknown ones ignored, invalid
/// values ignored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestDirectives {
    max_age: Option<u64>,
    min_fresh: Option<u64>,
    /// `Some(u64::MAX)` for a bare `max-stale` (any staleness).
    max_stale: Option<u64>,
    /// The request's own stale-if-error window (RFC 5861 section 4).
    pub(crate) stale_if_error: Option<u64>,
    no_cache: bool,
    pub(crate) no_store: bool,
    pub(crate) only_if_cached: bool,
}

impl RequestDirectives {
    pub(crate) fn parse(headers: &HeaderMap) -> Self {
        let mut r = Self::default();
        for part in directives(headers) {
            let (name, value) = split_directive(part);
            let secs = match delta(value) {
                Delta::Secs(s) => Some(s),
                Delta::Invalid => None,
            };
            match name {
                n if is(n, "no-cache") => r.no_cache = true,
                n if is(n, "no-store") => r.no_store = true,
                n if is(n, "only-if-cached") => r.only_if_cached = true,
                n if is(n, "max-age") => r.max_age = r.max_age.or(secs),
                n if is(n, "min-fresh") => r.min_fresh = r.min_fresh.or(secs),
                n if is(n, "stale-if-error") => r.stale_if_error = r.stale_if_error.or(secs),
                n if is(n, "max-stale") => {
                    r.max_stale = r.max_stale.or(if value.is_none() {
                        Some(u64::MAX)
                    } else {
                        secs
                    });
                }
                _ => {}
            }
        }
        r
    }
}

/// Whether a stored response may answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judgement {
    /// Fresh enough for this request.
    Fresh,
    /// Stale, but the request's `max-stale` accepts it.
    StaleAccepted,
    /// Stale, within its stale-while-revalidate window: serve it and refresh it
    /// in the background.
    StaleWhileRevalidate,
    /// Ask the origin (revalidating when the entry has a validator).
    Forward(Fwd),
}

/// Sections 4.2.4 and 5.2.1: fresh enough, stale but accepted, or not usable.
pub(crate) fn judge(entry: &Entry, req: &RequestDirectives, now_ms: u64) -> Judgement {
    let fresh = entry.fresh_until > now_ms;
    let refused = if fresh { Fwd::Request } else { Fwd::Stale };
    if entry.revalidate.every_use {
        return Judgement::Forward(Fwd::Stale);
    }
    if req.no_cache {
        return Judgement::Forward(refused);
    }
    let age = entry.resident_age(now_ms);
    if req.max_age.is_some_and(|max| age > max) {
        return Judgement::Forward(refused);
    }
    if fresh {
        let left = (entry.fresh_until - now_ms) / 1000;
        return if req.min_fresh.is_some_and(|min| left < min) {
            Judgement::Forward(Fwd::Request)
        } else {
            Judgement::Fresh
        };
    }
    let stale_for = (now_ms - entry.fresh_until) / 1000;
    if !entry.revalidate.once_stale && req.max_stale.is_some_and(|max| stale_for <= max) {
        Judgement::StaleAccepted
    } else {
        stale_judgement(entry, now_ms)
    }
}

/// A stale entry, no request directive involved: within its
/// stale-while-revalidate window (and allowed to be served stale), or not.
pub(crate) fn stale_judgement(entry: &Entry, now_ms: u64) -> Judgement {
    let stale_for = now_ms.saturating_sub(entry.fresh_until);
    let allowed = !entry.revalidate.once_stale && !entry.revalidate.every_use;
    let window = u64::from(entry.stale_while_revalidate) * 1000;
    if allowed && window > 0 && stale_for <= window {
        Judgement::StaleWhileRevalidate
    } else {
        Judgement::Forward(Fwd::Stale)
    }
}
