//! [`CacheService`]: the request flow of DESIGN.md section 3.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    AGE, CACHE_STATUS, CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, ETAG, EXPIRES,
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, LAST_MODIFIED, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::request::Parts;
use http::response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use tower::ServiceExt;
use tower_service::Service;

use crate::backend::BoxFuture;
use crate::body::{Collector, ResponseBody};
use crate::cache_status::{self, Fwd};
use crate::clock::unix_millis;
use crate::entry::{AgeBasis, AuthScope, Entry, Revalidate, StoredMethod, VaryValues};
use crate::future::ResponseFuture;
use crate::headers::cache_control::{get_max_age, has_directive, patch_response_headers};
use crate::headers::conditional::{is_not_modified, not_modified_headers};
use crate::headers::http_date::parse_http_date;
use crate::headers::interned::Interned;
use crate::headers::list::list_items;
use crate::headers::vary::{VaryNames, patch_vary_headers, vary_names};
use crate::invalidate::Target;
use crate::key::{PrimaryKey, is_authorized};
use crate::layer::Shared;
use crate::policy::app::{self, Verdict};
use crate::policy::shared::{self, Exchange, Judgement, RequestDirectives, Storable};
use crate::policy::{Mode, content_length};
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
            _ => return self.forward_other(req),
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
        let directives = match config.mode {
            Mode::App => RequestDirectives::default(),
            Mode::Shared => RequestDirectives::parse(&parts.headers),
        };
        let request = CacheableRequest {
            authorized: is_authorized(&parts.headers),
            method,
            key,
            directives,
            parts,
        };
        // An in-process store answers at once: a hit never builds a state machine.
        if let Some(lookup) = shared.store.lookup_now(&request.key, &request.facts()) {
            let now = shared.clock.now();
            return match shared.settle(lookup, &request, now) {
                Ok(hit) => ResponseFuture::ready(hit),
                Err(forward) => {
                    let miss = request.miss(forward, now, body, shared.capability());
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
                Err(forward) => {
                    let miss = request.miss(forward, now, body, shared.capability());
                    forward_miss(shared, inner, miss).await
                }
            }
        }))
    }
}

impl<S> CacheService<S> {
    /// A method the cache does not answer: passed on, and when it is unsafe and
    /// succeeds, what it may have changed is invalidated (RFC 9111 section 4.4).
    fn forward_other<ReqBody, ResBody>(
        &self,
        req: Request<ReqBody>,
    ) -> ResponseFuture<ResBody, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        ReqBody: Send + 'static,
        ResBody: Body<Data = Bytes> + Send + 'static,
    {
        let shared = self.shared.clone();
        let inner = self.inner.clone();
        let invalidates = shared.config.invalidate_unsafe && !is_safe(req.method());
        let target = invalidates.then(|| Target::of(&req));
        ResponseFuture::boxed(Box::pin(async move {
            let res = inner.oneshot(req).await?;
            let changed = res.status().is_success() || res.status().is_redirection();
            if let Some(target) = target.filter(|_| changed) {
                shared.invalidate(&target, res.headers()).await;
            }
            Ok(shared.forward_untouched(res, Fwd::Method))
        }))
    }
}

/// A GET or HEAD, taken apart for the lookup.
struct CacheableRequest {
    key: PrimaryKey,
    method: StoredMethod,
    authorized: bool,
    /// Shared mode's request directives (all off in app mode).
    directives: RequestDirectives,
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
    /// response will need. A stale entry with a validator makes it conditional,
    /// unless the client's request already is; `capability` is appended as
    /// `Surrogate-Capability`.
    fn miss<ReqBody>(
        mut self,
        forward: Forward,
        now: SystemTime,
        body: ReqBody,
        capability: Option<&HeaderValue>,
    ) -> (Request<ReqBody>, Miss) {
        let request_headers = self.parts.headers.clone();
        if let Some(capability) = capability {
            self.parts
                .headers
                .append(SURROGATE_CAPABILITY, capability.clone());
        }
        let validated = forward
            .stale
            .as_deref()
            .is_some_and(|stale| add_validators(&mut self.parts.headers, &stale.headers));
        let miss = Miss {
            request_headers,
            key: self.key,
            method: self.method,
            authorized: self.authorized,
            directives: self.directives,
            fwd: forward.fwd,
            stale: forward.stale.filter(|_| validated),
            now,
        };
        (Request::from_parts(self.parts, body), miss)
    }
}

/// Why a request goes to the inner service, and the stale entry it may
/// revalidate (shared mode).
struct Forward {
    fwd: Fwd,
    stale: Option<Arc<Entry>>,
}

/// What a miss remembers of its request until the response arrives.
struct Miss {
    key: PrimaryKey,
    method: StoredMethod,
    authorized: bool,
    directives: RequestDirectives,
    /// The client's own headers: the values of whatever the response's `Vary`
    /// names, and its conditions.
    request_headers: HeaderMap,
    fwd: Fwd,
    /// The stored response the forwarded request asks the origin to validate.
    stale: Option<Arc<Entry>>,
    /// When the request was forwarded.
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

/// A response on its way out, and the insert to finish before it is returned.
type Outgoing<B> = (Response<ResponseBody<B>>, Option<BoxFuture<'static, ()>>);

impl Shared {
    /// The `Surrogate-Capability` a shared cache announces on forwarded requests.
    fn capability(&self) -> Option<&HeaderValue> {
        let surrogate = self.config.surrogate.as_ref()?;
        (self.config.mode == Mode::Shared).then_some(&surrogate.capability)
    }

    /// A usable stored response, or why the request must go to the inner service.
    /// (`only-if-cached` turns the latter into a 504.)
    fn settle<B>(
        &self,
        lookup: Lookup,
        request: &CacheableRequest,
        now: SystemTime,
    ) -> Result<Response<ResponseBody<B>>, Forward> {
        let now_ms = unix_millis(now);
        let forward = match lookup {
            Lookup::Found(entry) => {
                let judgement = match self.config.mode {
                    Mode::App if entry.fresh_until > now_ms => Judgement::Fresh,
                    Mode::App => Judgement::Forward(Fwd::Stale),
                    Mode::Shared => shared::judge(&entry, &request.directives, now_ms),
                };
                match judgement {
                    Judgement::Fresh | Judgement::StaleAccepted => {
                        return Ok(self.hit(
                            &entry,
                            &request.parts.headers,
                            request.method,
                            now_ms,
                        ));
                    }
                    Judgement::Forward(fwd) => Forward {
                        fwd,
                        stale: (self.config.mode == Mode::Shared).then_some(entry),
                    },
                }
            }
            Lookup::UriMiss => Forward {
                fwd: Fwd::UriMiss,
                stale: None,
            },
            Lookup::VaryMiss => Forward {
                fwd: Fwd::VaryMiss,
                stale: None,
            },
        };
        if request.directives.only_if_cached {
            return Ok(self.gateway_timeout());
        }
        Err(forward)
    }

    /// A hit: the stored response with `Age` and `Cache-Status`.
    fn hit<B>(
        &self,
        entry: &Entry,
        request_headers: &HeaderMap,
        method: StoredMethod,
        now_ms: u64,
    ) -> Response<ResponseBody<B>> {
        let status = self
            .config
            .cache_status
            .then(|| cache_status::hit(ttl_secs(entry.fresh_until, now_ms)));
        serve(entry, request_headers, method, now_ms, status)
    }

    /// `only-if-cached` and nothing usable stored (RFC 9111 section 5.2.1.7).
    fn gateway_timeout<B>(&self) -> Response<ResponseBody<B>> {
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

    /// Hands on a response the cache does not store or patch.
    fn forward_untouched<B>(&self, res: Response<B>, fwd: Fwd) -> Response<ResponseBody<B>> {
        let (mut parts, body) = res.into_parts();
        if self.config.cache_status {
            let status = cache_status::forward(fwd, parts.status, None);
            let _ = parts.headers.try_append(CACHE_STATUS, status);
        }
        Response::from_parts(parts, ResponseBody::passthrough(body))
    }

    /// Applies the mode's rules to the inner service's response, and sets up its
    /// storing when it qualifies: as the body streams, or (returned) at once when
    /// there is no body to wait for.
    fn on_miss_response<B>(self: &Arc<Self>, res: Response<B>, miss: Miss) -> Outgoing<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
    {
        let (parts, body) = res.into_parts();
        match self.config.mode {
            Mode::App => self.app_response(parts, body, miss),
            Mode::Shared => self.shared_response(parts, body, miss),
        }
    }

    /// App mode: Django's patching, then maybe storing.
    fn app_response<B>(
        self: &Arc<Self>,
        mut parts: response::Parts,
        body: B,
        miss: Miss,
    ) -> Outgoing<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
    {
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
                let stored_at = unix_millis(miss.now);
                let fresh_until = stored_at.saturating_add(secs_to_millis(timeout));
                let lifetime = Lifetime {
                    stored_at,
                    fresh_until,
                    kept_until: fresh_until.saturating_add(duration_millis(self.config.keep)),
                    age_basis: django_age_basis(&parts.headers),
                    initial_age: 0,
                    revalidate: Revalidate::default(),
                };
                let entry = stored_entry(&parts, &miss, auth, names, lifetime, &[]);
                Some(self.collector(&parts, miss.method, miss.key.clone(), entry, timeout))
            }
            _ => None,
        };
        self.finish_miss(parts, body, collector, &miss)
    }

    /// Shared mode: RFC 9111's storing rules; headers pass through verbatim. A
    /// 304 to the cache's own conditional request refreshes the stale entry.
    fn shared_response<B>(
        self: &Arc<Self>,
        mut parts: response::Parts,
        body: B,
        miss: Miss,
    ) -> Outgoing<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
    {
        let exchange = Exchange {
            request_time: miss.now,
            response_time: self.clock.now(),
            authorized: miss.authorized,
            no_store: miss.directives.no_store,
        };
        if let Some(stale) = miss
            .stale
            .as_ref()
            .filter(|_| parts.status == StatusCode::NOT_MODIFIED)
        {
            return self.refreshed(stale, &parts.headers, &miss, &exchange);
        }
        shared::clamp_age(&mut parts.headers);
        let lower_bound = body.size_hint().lower();
        let storable = shared::storable(
            &self.config,
            &exchange,
            parts.status,
            &parts.headers,
            lower_bound,
        );
        let collector = match (storable, vary_names(&parts.headers)) {
            (Some(s), Ok(VaryNames::Names(names))) => {
                let lifetime = Lifetime::shared(&s, &exchange, self.config.keep);
                let ttl = ttl_secs(lifetime.fresh_until, unix_millis(exchange.response_time));
                let entry = stored_entry(&parts, &miss, s.auth, names, lifetime, &s.unstored);
                Some(self.collector(&parts, miss.method, miss.key.clone(), entry, ttl))
            }
            _ => None,
        };
        self.finish_miss(parts, body, collector, &miss)
    }

    /// Section 4.3.4: the origin says the stale entry is still good. Its headers
    /// are updated from the 304's, it is stored again with the new freshness, and
    /// its body answers the request.
    fn refreshed<B>(
        self: &Arc<Self>,
        stale: &Entry,
        not_modified: &HeaderMap,
        miss: &Miss,
        exchange: &Exchange,
    ) -> Outgoing<B> {
        let mut headers = stale.headers.clone();
        let excluded = connection_fields(not_modified);
        for name in not_modified.keys() {
            if excluded.contains(name) || NOT_UPDATED.contains(name) {
                continue;
            }
            headers.remove(name);
            for value in not_modified.get_all(name) {
                let _ = headers.try_append(name.clone(), value.clone());
            }
        }
        let body_len = u64::try_from(stale.body.len()).unwrap_or(u64::MAX);
        let storable = shared::storable(&self.config, exchange, stale.status, &headers, body_len);
        let (lifetime, unstored) = match &storable {
            Some(s) => (
                Lifetime::shared(s, exchange, self.config.keep),
                &s.unstored[..],
            ),
            None => {
                let at = unix_millis(exchange.response_time);
                (Lifetime::stale_at(at), &[][..])
            }
        };
        strip_unstored(&mut headers, unstored);
        let entry = Entry {
            headers,
            stored_at: lifetime.stored_at,
            fresh_until: lifetime.fresh_until,
            kept_until: lifetime.kept_until,
            age_basis: None,
            initial_age: lifetime.initial_age,
            revalidate: lifetime.revalidate,
            ..stale.clone()
        };
        let now_ms = unix_millis(exchange.response_time);
        let status = self.config.cache_status.then(|| {
            let stored_ttl = storable
                .is_some()
                .then(|| ttl_secs(entry.fresh_until, now_ms));
            cache_status::forward(miss.fwd, StatusCode::NOT_MODIFIED, stored_ttl)
        });
        let res = serve(&entry, &miss.request_headers, miss.method, now_ms, status);
        let insert = storable.map(|_| {
            let shared = self.clone();
            let key = miss.key.clone();
            Box::pin(async move {
                let now = unix_millis(shared.clock.now());
                shared.store.insert(&key, entry, now).await;
            }) as BoxFuture<'static, ()>
        });
        (res, insert)
    }

    /// Collects a body to store under `key`; `stored_ttl` is for `Cache-Status`.
    fn collector(
        self: &Arc<Self>,
        parts: &response::Parts,
        method: StoredMethod,
        key: PrimaryKey,
        entry: Entry,
        stored_ttl: i64,
    ) -> (Collector, i64) {
        let expected = (method == StoredMethod::Get)
            .then(|| content_length(&parts.headers))
            .flatten();
        (
            Collector::new(self.clone(), key, entry, expected),
            stored_ttl,
        )
    }

    /// `Cache-Status`, then the body: teed into the collector, or stored at once
    /// when there is nothing to read.
    fn finish_miss<B>(
        &self,
        mut parts: response::Parts,
        body: B,
        collector: Option<(Collector, i64)>,
        miss: &Miss,
    ) -> Outgoing<B>
    where
        B: Body<Data = Bytes> + Send + 'static,
    {
        if self.config.cache_status {
            let stored_ttl = collector.as_ref().map(|(_, ttl)| *ttl);
            let status = cache_status::forward(miss.fwd, parts.status, stored_ttl);
            let _ = parts.headers.try_append(CACHE_STATUS, status);
        }
        let (body, store_now) = match collector {
            // Nothing to copy: a HEAD (servers discard its body unread), or a body
            // that is already over (servers never poll it). Store at once.
            Some((collector, _))
                if miss.method == StoredMethod::Head
                    || body.is_end_stream()
                    || body.size_hint().exact() == Some(0) =>
            {
                (ResponseBody::passthrough(body), collector.finish())
            }
            Some((collector, _)) => (ResponseBody::tee(body, collector), None),
            None => (ResponseBody::passthrough(body), None),
        };
        (Response::from_parts(parts, body), store_now)
    }
}

/// The stored response as an answer: a 304 when the request's conditions allow,
/// otherwise the stored status and headers (no body for HEAD), with `Age` and
/// the given `Cache-Status`.
fn serve<B>(
    entry: &Entry,
    request_headers: &HeaderMap,
    method: StoredMethod,
    now_ms: u64,
    cache_status: Option<HeaderValue>,
) -> Response<ResponseBody<B>> {
    let (status, mut headers, body) =
        if entry.status == StatusCode::OK && is_not_modified(request_headers, &entry.headers) {
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
    if let Some(value) = cache_status {
        let _ = headers.try_append(CACHE_STATUS, value);
    }
    let mut res = Response::new(body);
    *res.status_mut() = status;
    *res.headers_mut() = headers;
    res
}

/// Seconds of freshness left (negative once stale).
fn ttl_secs(fresh_until: u64, now_ms: u64) -> i64 {
    let ttl = (i128::from(fresh_until) - i128::from(now_ms)) / 1000;
    i64::try_from(ttl).unwrap_or(i64::MAX)
}

fn secs_to_millis(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0).saturating_mul(1000)
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The conditions that let the origin answer 304 for a stale entry: its
/// `ETag` and `Last-Modified`. Not added when the client's request is already
/// conditional (its conditions are the client's to ask). `true` if any was added.
fn add_validators(request: &mut HeaderMap, stored: &HeaderMap) -> bool {
    const CONDITIONS: [HeaderName; 5] = [
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
        IF_RANGE,
    ];
    if CONDITIONS.iter().any(|c| request.contains_key(c)) {
        return false;
    }
    let mut added = false;
    for (validator, condition) in [(ETAG, IF_NONE_MATCH), (LAST_MODIFIED, IF_MODIFIED_SINCE)] {
        if let Some(value) = stored.get(&validator) {
            request.insert(condition, value.clone());
            added = true;
        }
    }
    added
}

const SURROGATE_CAPABILITY: HeaderName = HeaderName::from_static("surrogate-capability");

/// Fields a 304 does not update (RFC 9111 section 3.2): they describe the
/// stored body, which the 304 does not replace, or the validator it was
/// selected by.
const NOT_UPDATED: [HeaderName; 5] = [
    CONTENT_LENGTH,
    CONTENT_ENCODING,
    CONTENT_RANGE,
    HeaderName::from_static("content-md5"),
    ETAG,
];

/// Whether a method is safe (RFC 9110 section 9.2.1): it cannot change what a
/// URL shows, so its response invalidates nothing.
fn is_safe(method: &Method) -> bool {
    matches!(
        method.as_str(),
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PROPFIND" | "SEARCH" | "REPORT"
    )
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

/// When a stored response stops being fresh, and how its age is told.
struct Lifetime {
    stored_at: u64,
    fresh_until: u64,
    kept_until: u64,
    age_basis: Option<AgeBasis>,
    initial_age: u64,
    revalidate: Revalidate,
}

impl Lifetime {
    fn shared(s: &Storable, exchange: &Exchange, keep: Duration) -> Self {
        let fresh_until = s.fresh_until(exchange.response_time);
        Self {
            stored_at: unix_millis(exchange.response_time),
            fresh_until,
            kept_until: fresh_until.saturating_add(duration_millis(keep)),
            age_basis: None,
            initial_age: s.initial_age,
            revalidate: s.revalidate,
        }
    }

    /// For an entry that is served once and not stored.
    fn stale_at(at: u64) -> Self {
        Self {
            stored_at: at,
            fresh_until: at,
            kept_until: at,
            age_basis: None,
            initial_age: 0,
            revalidate: Revalidate::default(),
        }
    }
}

/// Django's `Age` basis, when the patched headers have an integer `max-age`
/// and a valid `Expires`.
fn django_age_basis(headers: &HeaderMap) -> Option<AgeBasis> {
    match (
        get_max_age(headers),
        headers.get(EXPIRES).and_then(parse_http_date),
    ) {
        (Some(max_age), Some(expires)) => Some(AgeBasis {
            max_age,
            expires: i64::try_from(unix_millis(expires) / 1000).unwrap_or(i64::MAX),
        }),
        _ => None,
    }
}

/// The fields `Connection` nominates, plus the fixed hop-by-hop set: they
/// describe one transfer, not the response (RFC 9111 section 3.1).
fn connection_fields(headers: &HeaderMap) -> Vec<HeaderName> {
    list_items(headers, CONNECTION)
        .filter_map(|token| HeaderName::from_bytes(token).ok())
        .chain([CONNECTION, TRANSFER_ENCODING, TE, TRAILER, UPGRADE])
        .chain([HeaderName::from_static("keep-alive")])
        .collect()
}

/// Removes what is never stored: connection fields, `Age` (the cache tells its
/// own), and the fields a qualified `no-cache` / `private` names.
fn strip_unstored(headers: &mut HeaderMap, unstored: &[HeaderName]) {
    for name in connection_fields(headers)
        .iter()
        .chain(unstored)
        .chain([&AGE])
    {
        headers.remove(name);
    }
}

/// The entry a response will be stored as, body still to come.
fn stored_entry(
    parts: &response::Parts,
    miss: &Miss,
    auth: AuthScope,
    names: Vec<HeaderName>,
    lifetime: Lifetime,
    unstored: &[HeaderName],
) -> Entry {
    let mut headers = parts.headers.clone();
    strip_unstored(&mut headers, unstored);
    Entry {
        material: Bytes::copy_from_slice(&miss.key.material),
        method: miss.method,
        auth,
        vary: VaryValues::capture(names, &miss.request_headers),
        status: parts.status,
        headers,
        body: Bytes::new(),
        stored_at: lifetime.stored_at,
        fresh_until: lifetime.fresh_until,
        kept_until: lifetime.kept_until,
        age_basis: lifetime.age_basis,
        initial_age: lifetime.initial_age,
        revalidate: lifetime.revalidate,
    }
}

/// `Age` for a hit. Django's arithmetic when the stored response has an integer
/// `max-age` and a valid `Expires` (so `max-age - Age` is the time left in this
/// cache); otherwise RFC 9111's: the age it arrived with plus the time since.
fn age(entry: &Entry, now_ms: u64) -> i64 {
    match entry.age_basis {
        Some(AgeBasis { max_age, expires }) => {
            let now = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
            max_age.saturating_sub(expires.saturating_sub(now)).max(0)
        }
        None => {
            let resident = now_ms.saturating_sub(entry.stored_at) / 1000;
            i64::try_from(entry.initial_age.saturating_add(resident)).unwrap_or(i64::MAX)
        }
    }
}
