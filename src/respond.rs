//! Responses the cache makes itself: from a stored entry (a hit, a stale
//! response, a refreshed one), a 504 for `only-if-cached`, and the
//! `Cache-Status` of what it passes on untouched.

use http::header::{AGE, CACHE_STATUS, CONTENT_LENGTH};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::body::ResponseBody;
use crate::cache_status::{self, Fwd};
use crate::entry::{AgeRule, Entry, StoredMethod};
use crate::headers::conditional::{is_conditional, is_not_modified, not_modified_headers};
use crate::headers::interned::Interned;
use crate::key::{PrimaryKey, StoreKey};
use crate::layer::Shared;

/// How a stored response comes to answer a request: what its `Cache-Status`
/// says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    /// Fresh (or stale, accepted by the request's `max-stale`).
    Hit,
    /// After waiting for another request's miss.
    Collapsed,
    /// Stale, while a background request refreshes it.
    WhileRevalidating,
    /// Stale, because the inner service failed (with this status, if any).
    IfError(Option<StatusCode>),
}

impl Served {
    /// The `outcome` of the request's tracing span.
    pub(crate) fn token(self) -> &'static str {
        match self {
            Served::Hit => "hit",
            Served::Collapsed => "collapsed",
            Served::WhileRevalidating => "stale-while-revalidate",
            Served::IfError(_) => "stale-if-error",
        }
    }
}

impl Shared {
    /// The stored response for a request, with `Age` and `Cache-Status`.
    pub(crate) fn hit<B>(
        &self,
        entry: &Entry,
        key: &PrimaryKey,
        request_headers: &HeaderMap,
        method: StoredMethod,
        now_ms: u64,
        served: Served,
    ) -> Response<ResponseBody<B>> {
        let status = self.config.cache_status.then(|| {
            let ttl = ttl_secs(entry.fresh_until, now_ms);
            let value = match served {
                Served::Hit => cache_status::hit(ttl),
                Served::Collapsed => cache_status::collapsed(ttl),
                Served::WhileRevalidating => cache_status::stale_while_revalidate(ttl),
                Served::IfError(status) => cache_status::stale_if_error(status, ttl),
            };
            self.with_key(value, key)
        });
        serve(entry, request_headers, method, now_ms, status)
    }

    /// `Cache-Status` with the `key` parameter when configured.
    pub(crate) fn with_key(&self, value: HeaderValue, key: &PrimaryKey) -> HeaderValue {
        if !self.config.cache_status_key {
            return value;
        }
        let text = StoreKey::url(key.hash).text(&self.config.key_prefix, self.config.version);
        cache_status::with_key(&value, &text)
    }

    /// `only-if-cached` and nothing usable stored (RFC 9111 section 5.2.1.7).
    pub(crate) fn gateway_timeout<B>(&self) -> Response<ResponseBody<B>> {
        let mut res = Response::new(ResponseBody::empty());
        *res.status_mut() = StatusCode::GATEWAY_TIMEOUT;
        res.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        if self.config.cache_status {
            res.headers_mut()
                .insert(CACHE_STATUS, cache_status::only_if_cached());
        }
        res
    }

    /// Hands on a response the cache does not store or patch (its tag field
    /// removed when so configured).
    pub(crate) fn forward_untouched<B>(
        &self,
        res: Response<B>,
        fwd: Fwd,
        key: Option<&PrimaryKey>,
    ) -> Response<ResponseBody<B>> {
        let (mut parts, body) = res.into_parts();
        if self.config.strip_tag_header {
            parts.headers.remove(&self.config.tag_header);
        }
        if self.config.cache_status {
            let mut status = cache_status::forward(fwd, parts.status, None);
            if let Some(key) = key {
                status = self.with_key(status, key);
            }
            let _ = parts.headers.try_append(CACHE_STATUS, status);
        }
        Response::from_parts(parts, ResponseBody::passthrough(body))
    }
}

/// The stored response as an answer: a 304 when the request's conditions allow,
/// otherwise the stored status and headers (no body for HEAD), with `Age` and
/// the given `Cache-Status`.
pub(crate) fn serve<B>(
    entry: &Entry,
    request_headers: &HeaderMap,
    method: StoredMethod,
    now_ms: u64,
    cache_status: Option<HeaderValue>,
) -> Response<ResponseBody<B>> {
    static AGES: Interned = Interned::new("");
    let age = AGES.get(age(entry, now_ms));
    // The stored fields as a map only for a request that has conditions.
    let not_modified = (entry.status == StatusCode::OK && is_conditional(request_headers))
        .then(|| entry.content.headers().fields())
        .filter(|stored| is_not_modified(request_headers, stored));
    let (status, headers, body) = if let Some(stored) = not_modified {
        let mut headers = not_modified_headers(&stored);
        let _ = headers.try_insert(AGE, age);
        if let Some(value) = cache_status {
            let _ = headers.try_append(CACHE_STATUS, value);
        }
        (StatusCode::NOT_MODIFIED, headers, ResponseBody::empty())
    } else if method == StoredMethod::Head {
        let mut headers = entry.content.headers().to_response(age, cache_status);
        // A stored GET's length, which an empty HEAD body cannot imply. (A
        // stored HEAD has no body to count: it keeps what it was sent with.)
        if entry.method == StoredMethod::Get && !headers.contains_key(CONTENT_LENGTH) {
            let _ = headers.try_insert(CONTENT_LENGTH, HeaderValue::from(entry.content.body_len()));
        }
        (entry.status, headers, ResponseBody::empty())
    } else {
        (
            entry.status,
            entry.content.headers().to_response(age, cache_status),
            ResponseBody::cached(entry.content.body()),
        )
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    // `Response::new` gave an empty map, which `HeaderMap::new` documents
    // as never allocating: forgetting it leaks nothing and skips its drop
    // (a twentieth of the layer's own cost of a hit).
    std::mem::forget(std::mem::replace(res.headers_mut(), headers));
    res
}

/// Seconds of freshness left (negative once stale).
pub(crate) fn ttl_secs(fresh_until: u64, now_ms: u64) -> i64 {
    // In u64, truncating toward zero on both sides (a 128-bit division was a
    // fiftieth of a hit); a u64 of milliseconds over 1000 always fits an i64.
    let secs = |ms: u64| i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    if fresh_until >= now_ms {
        secs(fresh_until - now_ms)
    } else {
        -secs(now_ms - fresh_until)
    }
}

/// `Age` for a hit. Django's arithmetic when the stored response has an integer
/// `max-age` and a valid `Expires` (so `max-age - Age` is the time left in this
/// cache); otherwise RFC 9111's: the age it arrived with plus the time since.
fn age(entry: &Entry, now_ms: u64) -> i64 {
    match entry.age {
        AgeRule::Django { since } => {
            let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
            now.saturating_sub(since).max(0)
        }
        AgeRule::Resident { .. } => i64::try_from(entry.resident_age(now_ms)).unwrap_or(i64::MAX),
    }
}
