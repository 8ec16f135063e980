//! [`CacheService`]: the request flow of DESIGN.md section 3.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    AGE, CACHE_STATUS, CONNECTION, CONTENT_LENGTH, EXPIRES, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use tower::ServiceExt;
use tower_service::Service;

use crate::backend::BoxFuture;
use crate::body::{Collector, ResponseBody};
use crate::cache_status::{self, Fwd};
use crate::clock::unix_millis;
use crate::entry::{AgeBasis, AuthScope, Entry, StoredMethod, VaryValues};
use crate::future::ResponseFuture;
use crate::headers::cache_control::{get_max_age, has_directive, patch_response_headers};
use crate::headers::conditional::{is_not_modified, not_modified_headers};
use crate::headers::http_date::parse_http_date;
use crate::headers::interned::Interned;
use crate::headers::list::list_items;
use crate::headers::vary::{VaryNames, patch_vary_headers, vary_names};
use crate::key::{PrimaryKey, is_authorized};
use crate::layer::Shared;
use crate::policy::app::{self, Verdict};
use crate::policy::content_length;
use crate::store::{Lookup, RequestFacts};

/// The service a [`CacheLayer`](crate::CacheLayer) wraps around an inner service.
///
/// Always ready: a hit never needs the inner service, so it does not wait for the
/// inner service's capacity. A miss waits for the inner service's readiness inside
/// the response future, on its own clone, before calling it.
#[derive(Clone)]
pub struct CacheService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> CacheService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for CacheService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CacheService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let method = match *req.method() {
            Method::GET => StoredMethod::Get,
            Method::HEAD => StoredMethod::Head,
            _ => {
                let shared = self.shared.clone();
                let inner = self.inner.clone();
                return ResponseFuture::boxed(Box::pin(async move {
                    let res = inner.oneshot(req).await?;
                    Ok(shared.forward_untouched(res, Fwd::Method))
                }));
            }
        };
        let (parts, body) = req.into_parts();
        let shared = &self.shared;
        let config = &shared.config;
        let key = PrimaryKey::new(
            &config.key_prefix,
            config.version,
            &parts,
            config.key_hook.as_ref(),
        );
        let request = CacheableRequest {
            authorized: is_authorized(&parts.headers),
            method,
            key,
            parts,
        };
        // An in-process store answers at once: a hit never builds a state machine.
        if let Some(lookup) = shared.store.lookup_now(&request.key, &request.facts()) {
            let now = shared.clock.now();
            return match shared.settle(lookup, &request, now) {
                Ok(hit) => ResponseFuture::ready(hit),
                Err(fwd) => {
                    let miss = request.miss(fwd, now, body);
                    let inner = self.inner.clone();
                    ResponseFuture::boxed(Box::pin(forward_miss(shared.clone(), inner, miss)))
                }
            };
        }
        let (shared, inner) = (shared.clone(), self.inner.clone());
        ResponseFuture::boxed(Box::pin(async move {
            let lookup = shared.store.lookup(&request.key, &request.facts()).await;
            let now = shared.clock.now();
            match shared.settle(lookup, &request, now) {
                Ok(hit) => Ok(hit),
                Err(fwd) => forward_miss(shared, inner, request.miss(fwd, now, body)).await,
            }
        }))
    }
}

/// A GET or HEAD, taken apart for the lookup.
struct CacheableRequest {
    key: PrimaryKey,
    method: StoredMethod,
    authorized: bool,
    parts: Parts,
}

impl CacheableRequest {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: self.method,
            authorized: self.authorized,
            headers: &self.parts.headers,
        }
    }

    /// Puts the request back together to forward it, keeping what storing the
    /// response will need.
    fn miss<ReqBody>(self, fwd: Fwd, now: SystemTime, body: ReqBody) -> (Request<ReqBody>, Miss) {
        let miss = Miss {
            request_headers: self.parts.headers.clone(),
            key: self.key,
            method: self.method,
            authorized: self.authorized,
            fwd,
            now,
        };
        (Request::from_parts(self.parts, body), miss)
    }
}

/// What a miss remembers of its request until the response arrives.
struct Miss {
    key: PrimaryKey,
    method: StoredMethod,
    authorized: bool,
    /// For the values of whatever the response's `Vary` names.
    request_headers: HeaderMap,
    fwd: Fwd,
    now: SystemTime,
}

async fn forward_miss<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    inner: S,
    (request, miss): (Request<ReqBody>, Miss),
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    let res = inner.oneshot(request).await?;
    let (res, store_now) = shared.on_miss_response(res, miss);
    if let Some(store) = store_now {
        store.await;
    }
    Ok(res)
}

impl Shared {
    /// A fresh hit's response, or why the request must go to the inner service.
    fn settle<B>(
        &self,
        lookup: Lookup,
        request: &CacheableRequest,
        now: SystemTime,
    ) -> Result<Response<ResponseBody<B>>, Fwd> {
        match lookup {
            Lookup::Found(entry) if entry.fresh_until > unix_millis(now) => {
                Ok(self.hit(&entry, &request.parts, request.method, now))
            }
            Lookup::Found(_) => Err(Fwd::Stale),
            Lookup::UriMiss => Err(Fwd::UriMiss),
            Lookup::VaryMiss => Err(Fwd::VaryMiss),
        }
    }

    /// A response from the stored entry: 304 when the request's conditions allow,
    /// otherwise the stored response (headers only for HEAD), with `Age`.
    fn hit<B>(
        &self,
        entry: &Entry,
        req: &Parts,
        method: StoredMethod,
        now: SystemTime,
    ) -> Response<ResponseBody<B>> {
        let now_ms = unix_millis(now);
        let (status, mut headers, body) =
            if entry.status == StatusCode::OK && is_not_modified(&req.headers, &entry.headers) {
                (
                    StatusCode::NOT_MODIFIED,
                    not_modified_headers(&entry.headers),
                    ResponseBody::empty(),
                )
            } else if method == StoredMethod::Head {
                let mut headers = with_room_for_three(&entry.headers);
                // A stored GET's length, which an empty HEAD body cannot imply. (A
                // stored HEAD has no body to count: it keeps what it was sent with.)
                if entry.method == StoredMethod::Get && !headers.contains_key(CONTENT_LENGTH) {
                    let _ = headers.try_insert(CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
                }
                (entry.status, headers, ResponseBody::empty())
            } else {
                (
                    entry.status,
                    with_room_for_three(&entry.headers),
                    ResponseBody::cached(entry.body.clone()),
                )
            };
        static AGES: Interned = Interned::new("");
        let _ = headers.try_insert(AGE, AGES.get(age(entry, now_ms)));
        if self.config.cache_status {
            let ttl = (i128::from(entry.fresh_until) - i128::from(now_ms)) / 1000;
            let ttl = i64::try_from(ttl).unwrap_or(i64::MAX);
            let _ = headers.try_append(CACHE_STATUS, cache_status::hit(ttl));
        }
        let mut res = Response::new(body);
        *res.status_mut() = status;
        *res.headers_mut() = headers;
        res
    }

    /// Hands on a response the cache does not store or patch.
    fn forward_untouched<B>(&self, res: Response<B>, fwd: Fwd) -> Response<ResponseBody<B>> {
        let (mut parts, body) = res.into_parts();
        if self.config.cache_status {
            let status = cache_status::forward(fwd, parts.status, None);
            let _ = parts.headers.try_append(CACHE_STATUS, status);
        }
        Response::from_parts(parts, ResponseBody::passthrough(body))
    }

    /// Applies app mode's rules to the inner service's response, and sets up its
    /// storing when it qualifies: as the body streams, or (returned) at once when
    /// there is no body to wait for.
    fn on_miss_response<B>(
        self: &Arc<Self>,
        res: Response<B>,
        miss: Miss,
    ) -> (Response<ResponseBody<B>>, Option<BoxFuture<'static, ()>>)
    where
        B: Body<Data = Bytes> + Send + 'static,
    {
        let (mut parts, body) = res.into_parts();
        let lower_bound = body.size_hint().lower();
        let Verdict::Patch { timeout, store } =
            app::verdict(&self.config, parts.status, &parts.headers, lower_bound)
        else {
            let res = self.forward_untouched(Response::from_parts(parts, body), miss.fwd);
            return (res, None);
        };
        // Django reads `public` before patching; patching only merges max-age.
        let public = has_directive(&parts.headers, "public");
        patch_response_headers(&mut parts.headers, timeout, miss.now);
        if miss.authorized && !public {
            patch_vary_headers(&mut parts.headers, &["Authorization"]);
        }
        let collector = match (store, vary_names(&parts.headers)) {
            (true, Ok(VaryNames::Names(names))) => {
                let auth = match (public, miss.authorized) {
                    (true, _) => AuthScope::Any,
                    (false, true) => AuthScope::Authorized,
                    (false, false) => AuthScope::Anonymous,
                };
                let entry = stored_entry(&parts, &miss, timeout, auth, names);
                let expected = (miss.method == StoredMethod::Get)
                    .then(|| content_length(&parts.headers))
                    .flatten();
                Some(Collector::new(self.clone(), miss.key, entry, expected))
            }
            _ => None,
        };
        if self.config.cache_status {
            let stored_ttl = collector.as_ref().map(|_| timeout);
            let status = cache_status::forward(miss.fwd, parts.status, stored_ttl);
            let _ = parts.headers.try_append(CACHE_STATUS, status);
        }
        let (body, store_now) = match collector {
            // Nothing to copy: a HEAD (servers discard its body unread), or a body
            // that is already over (servers never poll it). Store at once.
            Some(collector)
                if miss.method == StoredMethod::Head
                    || body.is_end_stream()
                    || body.size_hint().exact() == Some(0) =>
            {
                (ResponseBody::passthrough(body), collector.finish())
            }
            Some(collector) => (ResponseBody::tee(body, collector), None),
            None => (ResponseBody::passthrough(body), None),
        };
        (Response::from_parts(parts, body), store_now)
    }
}

/// A copy of stored headers with room for `Age`, `Cache-Status` and
/// `Content-Length`, so adding them does not grow (and copy) the map. (A map
/// already near http's size limit is simply cloned; the additions then may not
/// fit, and are skipped rather than panicking.)
fn with_room_for_three(stored: &HeaderMap) -> HeaderMap {
    let Ok(mut headers) = HeaderMap::try_with_capacity(stored.len() + 3) else {
        return stored.clone();
    };
    for (name, value) in stored {
        if headers.try_append(name.clone(), value.clone()).is_err() {
            return stored.clone();
        }
    }
    headers
}

/// The entry a response will be stored as, body still to come.
fn stored_entry(
    parts: &http::response::Parts,
    miss: &Miss,
    timeout: i64,
    auth: AuthScope,
    names: Vec<HeaderName>,
) -> Entry {
    let mut headers = parts.headers.clone();
    // Connection-level fields describe the original transfer, not the response:
    // the fixed hop-by-hop set, and whatever `Connection` nominates (RFC 9111 §3.1).
    let nominated: Vec<HeaderName> = list_items(&headers, CONNECTION)
        .filter_map(|token| HeaderName::from_bytes(token).ok())
        .collect();
    for name in nominated
        .into_iter()
        .chain([CONNECTION, TRANSFER_ENCODING, TE, TRAILER, UPGRADE])
    {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    let age_basis = match (
        get_max_age(&headers),
        headers.get(EXPIRES).and_then(parse_http_date),
    ) {
        (Some(max_age), Some(expires)) => Some(AgeBasis {
            max_age,
            expires: i64::try_from(unix_millis(expires) / 1000).unwrap_or(i64::MAX),
        }),
        _ => None,
    };
    let stored_at = unix_millis(miss.now);
    let lifetime = Duration::from_secs(u64::try_from(timeout).unwrap_or(0));
    Entry {
        material: Bytes::copy_from_slice(&miss.key.material),
        method: miss.method,
        auth,
        vary: VaryValues::capture(names, &miss.request_headers),
        status: parts.status,
        headers,
        body: Bytes::new(),
        stored_at,
        fresh_until: stored_at
            .saturating_add(u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX)),
        age_basis,
    }
}

/// `Age` for a hit. Django's arithmetic when the stored response has an integer
/// `max-age` and a valid `Expires` (so `max-age - Age` is the time left in this
/// cache); otherwise the time since it was stored.
fn age(entry: &Entry, now_ms: u64) -> i64 {
    match entry.age_basis {
        Some(AgeBasis { max_age, expires }) => {
            let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
            max_age.saturating_sub(expires.saturating_sub(now)).max(0)
        }
        None => i64::try_from(now_ms.saturating_sub(entry.stored_at) / 1000).unwrap_or(i64::MAX),
    }
}
