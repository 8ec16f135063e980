//! [`CacheService`]: the request flow of DESIGN.md section 3. A request is
//! looked up and settled here (hit, stale, or forward); a forward joins the
//! coalescing of its URL, goes to the inner service, and its response is handed
//! to `storing.rs`. Stale responses are served here when the inner service
//! fails (stale-if-error) or while a background request refreshes them
//! (stale-while-revalidate).

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    ETAG, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, LAST_MODIFIED,
};
use http::request::Parts;
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use http_body::Body;
use tower::ServiceExt;
use tower_service::Service;
use tracing::Instrument;

use crate::body::ResponseBody;
use crate::cache_status::Fwd;
use crate::clock::{from_unix_millis, unix_millis};
use crate::entry::{Entry, StoredMethod};
use crate::future::ResponseFuture;
use crate::invalidate::Target;
use crate::key::{PrimaryKey, is_authorized};
use crate::layer::Shared;
use crate::policy::Mode;
use crate::policy::shared::{self, Judgement, RequestDirectives};
use crate::respond::Served;
use crate::store::inflight::{self, Ended, Lead, Role};
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
            _ => return self.forward_other(req, Fwd::Method),
        };
        let shared = &self.shared;
        let config = &shared.config;
        let (parts, body) = req.into_parts();
        if config.bypass.as_ref().is_some_and(|bypass| bypass(&parts)) {
            return self.forward_other(Request::from_parts(parts, body), Fwd::Bypass);
        }
        // One span per request; `outcome` is `hit`, `collapsed`, a stale kind, or
        // the `fwd` reason of a forward. None when no subscriber wants it: a
        // disabled span is not worth building, nor dropping, on a hit.
        let span = tracing::level_enabled!(tracing::Level::DEBUG).then(|| {
            tracing::debug_span!(
                "cache",
                method = %parts.method,
                uri = %parts.uri,
                outcome = tracing::field::Empty,
            )
        });
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
        let authorized = is_authorized(&parts.headers);
        // An in-process store answers at once: a hit never builds a state
        // machine, nor moves the key and the request's parts (a few hundred
        // bytes) into a `CacheableRequest`, which only what follows needs.
        let facts = RequestFacts {
            method,
            authorized,
            headers: &parts.headers,
        };
        let in_place = shared.store.lookup_now(&key, &facts).map(|lookup| {
            let now_ms = shared.clock.now_millis();
            (shared.settle(lookup, &directives, now_ms), now_ms)
        });
        if let Some((Settled::Serve(entry, Served::Hit), now_ms)) = &in_place {
            if let Some(span) = &span {
                span.record("outcome", Served::Hit.token());
            }
            let res = shared.answer(entry, &key, &parts.headers, method, *now_ms, Served::Hit);
            return ResponseFuture::ready(res);
        }
        let request = CacheableRequest {
            key,
            method,
            authorized,
            directives,
            parts,
        };
        let span = span.unwrap_or_else(tracing::Span::none);
        if let Some((settled, now_ms)) = in_place {
            let now = from_unix_millis(now_ms);
            return match settled {
                Settled::Serve(entry, served) => {
                    span.record("outcome", served.token());
                    let res = request.answer(shared, &entry, now_ms, served);
                    if served == Served::WhileRevalidating {
                        refresh_in_background(shared, &self.inner, request, entry, now, body);
                    }
                    ResponseFuture::ready(res)
                }
                Settled::Refuse => {
                    span.record("outcome", "only-if-cached");
                    ResponseFuture::ready(shared.gateway_timeout())
                }
                Settled::Forward(forward) => {
                    let (shared, inner) = (shared.clone(), self.inner.clone());
                    ResponseFuture::boxed(Box::pin(
                        miss(shared, inner, request, forward, now, body).instrument(span),
                    ))
                }
            };
        }
        let (shared, inner) = (shared.clone(), self.inner.clone());
        ResponseFuture::boxed(Box::pin(
            async move {
                let lookup = shared.store.lookup(&request.key, &request.facts()).await;
                let now_ms = shared.clock.now_millis();
                let now = from_unix_millis(now_ms);
                match shared.settle(lookup, &request.directives, now_ms) {
                    Settled::Serve(entry, served) => {
                        tracing::Span::current().record("outcome", served.token());
                        let res = request.answer(&shared, &entry, now_ms, served);
                        if served == Served::WhileRevalidating {
                            refresh_in_background(&shared, &inner, request, entry, now, body);
                        }
                        Ok(res)
                    }
                    Settled::Refuse => {
                        tracing::Span::current().record("outcome", "only-if-cached");
                        Ok(shared.gateway_timeout())
                    }
                    Settled::Forward(forward) => {
                        miss(shared, inner, request, forward, now, body).await
                    }
                }
            }
            .instrument(span),
        ))
    }
}

impl<S> CacheService<S> {
    /// A request the cache does not answer (another method, or bypassed):
    /// passed on; when its method is unsafe and it succeeds, what it may have
    /// changed is invalidated (RFC 9111 section 4.4).
    fn forward_other<ReqBody, ResBody>(
        &self,
        req: Request<ReqBody>,
        fwd: Fwd,
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
        let span = tracing::debug_span!(
            "cache",
            method = %req.method(),
            uri = %req.uri(),
            outcome = fwd.token(),
        );
        ResponseFuture::boxed(Box::pin(
            async move {
                let res = inner.oneshot(req).await?;
                let changed = res.status().is_success() || res.status().is_redirection();
                if let Some(target) = target.filter(|_| changed) {
                    shared.invalidate(&target, res.headers()).await;
                }
                Ok(shared.forward_untouched(res, fwd, None))
            }
            .instrument(span),
        ))
    }
}

/// A GET or HEAD, taken apart for the lookup.
pub(crate) struct CacheableRequest {
    key: PrimaryKey,
    method: StoredMethod,
    authorized: bool,
    /// Shared mode's request directives (all off in app mode).
    directives: RequestDirectives,
    parts: Parts,
}

impl CacheableRequest {
    /// [`Shared::answer`] for this request.
    fn answer<B>(
        &self,
        shared: &Shared,
        entry: &Entry,
        now_ms: u64,
        served: Served,
    ) -> Response<ResponseBody<B>> {
        shared.answer(
            entry,
            &self.key,
            &self.parts.headers,
            self.method,
            now_ms,
            served,
        )
    }

    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            method: self.method,
            authorized: self.authorized,
            headers: &self.parts.headers,
        }
    }

    /// Which misses coalesce: same URL, method and authorisation.
    fn flight(&self) -> u128 {
        let method = u128::from(self.method == StoredMethod::Head);
        let authorized = u128::from(self.authorized) << 1;
        self.key.hash ^ method ^ authorized
    }

    /// Puts the request back together to forward it, keeping what storing the
    /// response will need. In shared mode a stale entry with a validator makes it
    /// conditional (unless the client's request already is), and the cache's
    /// `Surrogate-Capability` is appended.
    fn miss<ReqBody>(
        mut self,
        shared: &Shared,
        forward: Forward,
        now: SystemTime,
        body: ReqBody,
        lead: Option<Lead>,
    ) -> (Request<ReqBody>, Miss) {
        let request_headers = self.parts.headers.clone();
        let mut validated = false;
        if shared.config.mode == Mode::Shared {
            if let Some(surrogate) = &shared.config.surrogate {
                self.parts
                    .headers
                    .append(SURROGATE_CAPABILITY, surrogate.capability.clone());
            }
            if let Some(stale) = &forward.stale {
                validated =
                    add_validators(&mut self.parts.headers, &stale.content.headers().fields());
            }
        }
        let miss = Miss {
            request_headers,
            key: self.key,
            method: self.method,
            authorized: self.authorized,
            directives: self.directives,
            fwd: forward.fwd,
            stale: forward.stale,
            validated,
            lead,
            now,
        };
        (Request::from_parts(self.parts, body), miss)
    }
}

/// What the lookup decided.
enum Settled {
    /// Answer from this entry.
    Serve(Arc<Entry>, Served),
    /// `only-if-cached`, and nothing usable: 504.
    Refuse,
    /// Ask the inner service.
    Forward(Forward),
}

/// Why a request goes to the inner service, and the stored (stale, or refused)
/// entry it may revalidate or fall back on.
pub(crate) struct Forward {
    fwd: Fwd,
    stale: Option<Arc<Entry>>,
}

/// What a miss remembers of its request until the response arrives.
pub(crate) struct Miss {
    pub(crate) key: PrimaryKey,
    pub(crate) method: StoredMethod,
    pub(crate) authorized: bool,
    pub(crate) directives: RequestDirectives,
    /// The client's own headers: the values of whatever the response's `Vary`
    /// names, and its conditions.
    pub(crate) request_headers: HeaderMap,
    pub(crate) fwd: Fwd,
    /// The stored response this request may fall back on (stale-if-error) or
    /// that the forwarded request asks the origin to validate.
    pub(crate) stale: Option<Arc<Entry>>,
    /// The forwarded request carries the cache's own validators for `stale`.
    pub(crate) validated: bool,
    /// Present when this miss leads a coalesced fetch.
    pub(crate) lead: Option<Lead>,
    /// When the request was forwarded.
    pub(crate) now: SystemTime,
}

/// A miss: joins the coalescing of its URL (leads it, waits for its leader, or
/// goes alone), then forwards.
async fn miss<S, ReqBody, ResBody>(
    shared: Arc<Shared>,
    inner: S,
    request: CacheableRequest,
    forward: Forward,
    now: SystemTime,
    body: ReqBody,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    let mut lead = None;
    if shared.config.coalesce {
        match shared.flights.join(request.flight(), unix_millis(now)) {
            Role::Lead(l) => lead = Some(l),
            Role::Alone => {}
            Role::Follow(follower) => {
                shared.counters.coalesced();
                if inflight::wait(follower, shared.config.lock_timeout).await == Ended::Stored {
                    let lookup = shared.store.lookup(&request.key, &request.facts()).await;
                    let now_ms = shared.clock.now_millis();
                    if let Settled::Serve(entry, Served::Hit) =
                        shared.settle(lookup, &request.directives, now_ms)
                    {
                        tracing::Span::current().record("outcome", "collapsed");
                        return Ok(request.answer(&shared, &entry, now_ms, Served::Collapsed));
                    }
                }
            }
        }
    }
    shared.counters.miss();
    tracing::Span::current().record("outcome", forward.fwd.token());
    let forwarded = request.miss(&shared, forward, now, body, lead);
    forward_miss(&shared, inner, forwarded).await
}

/// Calls the inner service and hands its response to the storing rules; falls
/// back on the stale entry when the inner service fails (stale-if-error).
async fn forward_miss<S, ReqBody, ResBody>(
    shared: &Arc<Shared>,
    inner: S,
    (request, miss): (Request<ReqBody>, Miss),
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    let res = match inner.oneshot(request).await {
        Ok(res) => res,
        Err(error) => {
            return match shared.stale_if_error(&miss, None) {
                Some(stale) => Ok(stale),
                None => Err(error),
            };
        }
    };
    let fallback = is_error_status(res.status())
        .then(|| shared.stale_if_error(&miss, Some(res.status())))
        .flatten();
    if let Some(stale) = fallback {
        return Ok(stale);
    }
    let (res, store_now) = shared.on_miss_response(res, miss);
    if let Some(store) = store_now {
        store.await;
    }
    Ok(res)
}

/// The longest a background refresh may take (or the lock timeout, if longer).
const REFRESH_LIMIT: Duration = Duration::from_secs(30);

/// Statuses that stale-if-error covers (RFC 5861 section 4).
fn is_error_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// Stale-while-revalidate: the client already has the stale response; one
/// request per URL refreshes it in a background task (with the client's own
/// request), unless another is already fetching the URL. Without a tokio
/// runtime there is no background, and the next request will refresh it.
fn refresh_in_background<S, ReqBody, ResBody>(
    shared: &Arc<Shared>,
    inner: &S,
    request: CacheableRequest,
    entry: Arc<Entry>,
    now: SystemTime,
    body: ReqBody,
) where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let Some(lead) = shared.flights.lead(request.flight(), unix_millis(now)) else {
        return;
    };
    let forward = Forward {
        fwd: Fwd::Stale,
        stale: Some(entry),
    };
    let forwarded = request.miss(shared, forward, now, body, Some(lead));
    let (shared, inner) = (shared.clone(), inner.clone());
    // A refresh that hangs must not hold the URL's lead for ever.
    let limit = shared.config.lock_timeout.max(REFRESH_LIMIT);
    let refresh = async move {
        shared.counters.miss();
        let Ok(res) = forward_miss(&shared, inner, forwarded).await else {
            return;
        };
        let body = res.into_body();
        if !body.is_collecting() {
            return;
        }
        // Read the body to its end: that is what stores it.
        let mut body = pin!(body);
        while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
            if frame.is_err() {
                break;
            }
        }
    };
    runtime.spawn(
        async move {
            let _ = tokio::time::timeout(limit, refresh).await;
        }
        .instrument(tracing::debug_span!("cache_refresh")),
    );
}

impl Shared {
    /// A usable stored response, or why the request must go to the inner service.
    fn settle(&self, lookup: Lookup, directives: &RequestDirectives, now_ms: u64) -> Settled {
        let forward = match lookup {
            // Past its keep time: stale, and of no further use (no stale
            // serving, no revalidation, not even under `max-stale`), whether
            // or not the backend has reclaimed it yet (the memory backend
            // reclaims lazily).
            Lookup::Found(entry) if entry.kept_until <= now_ms => Forward {
                fwd: Fwd::Stale,
                stale: None,
            },
            Lookup::Found(entry) => {
                let judgement = match self.config.mode {
                    Mode::App if entry.fresh_until > now_ms => Judgement::Fresh,
                    Mode::App => shared::stale_judgement(&entry, now_ms),
                    Mode::Shared => shared::judge(&entry, directives, now_ms),
                };
                match judgement {
                    Judgement::Fresh | Judgement::StaleAccepted => {
                        return Settled::Serve(entry, Served::Hit);
                    }
                    Judgement::StaleWhileRevalidate => {
                        return Settled::Serve(entry, Served::WhileRevalidating);
                    }
                    Judgement::Forward(fwd) => Forward {
                        fwd,
                        stale: Some(entry),
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
            Lookup::Unavailable => Forward {
                fwd: Fwd::Miss,
                stale: None,
            },
        };
        if directives.only_if_cached {
            return Settled::Refuse;
        }
        Settled::Forward(forward)
    }

    /// The response for a request settled on a stored entry (counted).
    fn answer<B>(
        &self,
        entry: &Entry,
        key: &PrimaryKey,
        request_headers: &HeaderMap,
        method: StoredMethod,
        now_ms: u64,
        served: Served,
    ) -> Response<ResponseBody<B>> {
        match served {
            Served::WhileRevalidating | Served::IfError(_) => self.counters.stale(),
            Served::Hit | Served::Collapsed => self.counters.hit(),
        }
        self.hit(entry, key, request_headers, method, now_ms, served)
    }

    /// Stale-if-error: the stored response, when the inner service failed and
    /// it is stale by no more than its window (or the request's), and its
    /// directives allow serving it stale.
    fn stale_if_error<B>(
        &self,
        miss: &Miss,
        status: Option<StatusCode>,
    ) -> Option<Response<ResponseBody<B>>> {
        let stale = miss.stale.as_ref()?;
        if stale.revalidate.every_use || stale.revalidate.once_stale {
            return None;
        }
        let now_ms = self.clock.now_millis();
        let window =
            u64::from(stale.stale_if_error).max(miss.directives.stale_if_error.unwrap_or(0));
        let stale_for = now_ms.saturating_sub(stale.fresh_until);
        if stale_for > window.saturating_mul(1000) {
            return None;
        }
        self.counters.stale();
        tracing::Span::current().record("outcome", "stale-if-error");
        let served = Served::IfError(status);
        Some(self.hit(
            stale,
            &miss.key,
            &miss.request_headers,
            miss.method,
            now_ms,
            served,
        ))
    }
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

/// Whether a method is safe (RFC 9110 section 9.2.1): it cannot change what a
/// URL shows, so its response invalidates nothing.
fn is_safe(method: &Method) -> bool {
    matches!(
        method.as_str(),
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PROPFIND" | "SEARCH" | "REPORT"
    )
}
