//! Shared test scaffolding: a counting inner service, a manual clock at Django's
//! T0, and a one-call helper that sends a request and reads the whole response.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};
use tower_response_cache::{CacheLayer, CacheLayerBuilder, ManualClock};

/// `Sun, 17 Jul 2016 10:00:00 GMT`, the spec's frozen clock.
pub const T0: u64 = 1_468_749_600;

/// A manual clock stopped at T0.
pub fn clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(T0))
}

/// Counts calls to the inner service ("miss" means it was called).
#[derive(Clone, Default)]
pub struct Calls(Arc<AtomicUsize>);

impl Calls {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// An inner service answering `body N` (N = how many calls so far, from 1), with
/// the response shaped by `f` (status, headers) from the request.
pub fn view<F>(
    calls: &Calls,
    f: F,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send + use<F>,
>
+ Clone
+ Send
+ 'static
+ use<F>
where
    F: Fn(&Request<Full<Bytes>>, &mut Response<Full<Bytes>>) + Clone + Send + Sync + 'static,
{
    let calls = calls.clone();
    tower::service_fn(move |req: Request<Full<Bytes>>| {
        let n = calls.0.fetch_add(1, Ordering::SeqCst) + 1;
        let mut res = Response::new(Full::new(Bytes::from(format!("body {n}"))));
        f(&req, &mut res);
        async move { Ok::<_, Infallible>(res) }
    })
}

/// A GET request for `uri` on host `testserver`.
pub fn get(uri: &str) -> http::request::Builder {
    Request::get(uri).header("host", "testserver")
}

/// Sends one request through `svc` and reads the whole body.
pub async fn send<S, B>(svc: &S, req: http::request::Builder) -> (http::response::Parts, Bytes)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let req = req.body(Full::new(Bytes::new())).expect("request");
    let res = svc.clone().oneshot(req).await.expect("service");
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts, body)
}

/// A header's value as text ("" when absent is not wanted: `None`).
pub fn header<'a>(parts: &'a http::response::Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .map(|v| v.to_str().expect("ascii header"))
}

/// Moves `clock` to T0 + `offset` seconds.
pub fn at(clock: &ManualClock, offset: u64) {
    clock.set(UNIX_EPOCH + Duration::from_secs(T0 + offset));
}

/// A layer builder on `clock`.
pub fn builder(clock: &ManualClock) -> CacheLayerBuilder {
    CacheLayer::builder().clock(clock.clone())
}

/// Appends a header to a view's response.
pub fn set(res: &mut Response<Full<Bytes>>, name: &'static str, value: &str) {
    res.headers_mut()
        .append(name, HeaderValue::from_str(value).expect("header value"));
}

/// A HEAD request for `uri` on host `testserver`.
pub fn head(uri: &str) -> http::request::Builder {
    Request::builder()
        .method(Method::HEAD)
        .uri(uri)
        .header("host", "testserver")
}

/// The error test bodies fail with.
#[derive(Debug)]
pub struct Boom;

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("boom")
    }
}

impl std::error::Error for Boom {}

/// One instance of a service: `layer` over an inner service answering `body N`,
/// varying on `Accept-Language` (for tests of several instances sharing a
/// backend).
pub fn instance(
    layer: &CacheLayer,
    calls: &Calls,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<tower_response_cache::ResponseBody<Full<Bytes>>>,
    Error = Infallible,
> + Clone {
    tower::ServiceBuilder::new()
        .layer(layer.clone())
        .layer(tower_response_cache::VaryLayer::new(["Accept-Language"]))
        .service(view(calls, |_, _| {}))
}

/// `layer` over an inner service that answers `page <path>`, so a response
/// served for the wrong URL is visible.
pub fn path_echo(
    layer: &CacheLayer,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<tower_response_cache::ResponseBody<Full<Bytes>>>,
    Error = Infallible,
> + Clone {
    tower::Layer::layer(
        layer,
        tower::service_fn(|req: Request<Full<Bytes>>| async move {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                "page {}",
                req.uri().path()
            )))))
        }),
    )
}

// ---------------------------------------------------------------- scripted inner services

/// A gate that holds inner calls: call `n` (from 1) may go on once the gate
/// admits `n`. Clones share one gate.
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<usize>>);

impl Gate {
    /// A gate that admits calls up to `n` (0: holds every call).
    pub fn admitting(n: usize) -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(n)))
    }

    /// A gate that holds every call until told otherwise.
    pub fn closed() -> Self {
        Self::admitting(0)
    }

    /// A gate that never holds a call.
    pub fn open() -> Self {
        Self::admitting(usize::MAX)
    }

    /// Admits calls up to `n` from now on.
    pub fn admit(&self, n: usize) {
        self.0
            .send_modify(|admitted| *admitted = (*admitted).max(n));
    }

    /// Admits every call from now on.
    pub fn release(&self) {
        self.admit(usize::MAX);
    }

    /// Waits until call `n` is admitted.
    async fn pass(&self, n: usize) {
        let mut admitted = self.0.subscribe();
        admitted
            .wait_for(|admitted| *admitted >= n)
            .await
            .expect("the gate lives as long as the service");
    }
}

/// What one call of a [`scripted`] inner service does once its gate admits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Answers the shaped response.
    Answer,
    /// Returns `Err(Boom)`.
    Fail,
    /// Never answers.
    Hang,
}

/// An inner service that counts its calls in `calls`, builds `body N` (N =
/// call number from 1), lets `f(n, request, response)` shape it and say what
/// the call does, then waits for `gate` to admit call N before doing it.
pub fn scripted<F>(
    calls: &Calls,
    gate: &Gate,
    f: F,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Boom,
    Future = impl Send + use<F>,
>
+ Clone
+ Send
+ 'static
+ use<F>
where
    F: Fn(usize, &Request<Full<Bytes>>, &mut Response<Full<Bytes>>) -> Act
        + Clone
        + Send
        + Sync
        + 'static,
{
    let calls = calls.clone();
    let gate = gate.clone();
    tower::service_fn(move |req: Request<Full<Bytes>>| {
        let n = calls.0.fetch_add(1, Ordering::SeqCst) + 1;
        let mut res = Response::new(Full::new(Bytes::from(format!("body {n}"))));
        let act = f(n, &req, &mut res);
        let gate = gate.clone();
        async move {
            gate.pass(n).await;
            match act {
                Act::Answer => Ok(res),
                Act::Fail => Err(Boom),
                Act::Hang => std::future::pending().await,
            }
        }
    })
}

/// Like [`send`], but hands back the service's error instead of panicking.
pub async fn try_send<S, B>(
    svc: &S,
    req: http::request::Builder,
) -> Result<(http::response::Parts, Bytes), S::Error>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let req = req.body(Full::new(Bytes::new())).expect("request");
    let res = svc.clone().oneshot(req).await?;
    let (parts, body) = res.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Ok((parts, body))
}

/// How many times [`until`] yields before it gives up.
pub const POLLS: usize = 100_000;

/// Yields to the runtime until `cond` holds; panics naming `what` after
/// [`POLLS`] tries.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..POLLS {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("gave up waiting for {what}");
}

/// Yields to the runtime until the counters of `handle` satisfy `cond`; panics
/// naming `what` and showing the counters after [`POLLS`] tries.
pub async fn until_stats(
    handle: &tower_response_cache::CacheHandle,
    what: &str,
    cond: impl Fn(&tower_response_cache::CacheStats) -> bool,
) {
    for _ in 0..POLLS {
        if cond(&handle.stats()) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("gave up waiting for {what}: {:?}", handle.stats());
}

/// The `Cache-Status` of a response ("" when it has none).
pub fn cache_status(parts: &http::response::Parts) -> &str {
    header(parts, "cache-status").unwrap_or("")
}

/// A response read whole: its head and body.
pub type Reply = (http::response::Parts, Bytes);

/// Sends `req` through `svc` on a task of `set` (as [`send`] does).
pub fn spawn_send<S, B>(set: &mut tokio::task::JoinSet<Reply>, svc: &S, req: http::request::Builder)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug + Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    let svc = svc.clone();
    set.spawn(async move { send(&svc, req).await });
}

/// Waits (bounded, as [`until`]) for the one task of `set` to finish; its output.
pub async fn finished<T: 'static>(set: &mut tokio::task::JoinSet<T>, what: &str) -> T {
    let mut done = None;
    until(what, || {
        done = set.try_join_next();
        done.is_some()
    })
    .await;
    done.expect("finished").expect("task")
}

/// Waits (bounded, as [`until`]) for every task of `set` to finish; their
/// outputs, in the order they finished.
pub async fn all_finished<T: 'static>(set: &mut tokio::task::JoinSet<T>, what: &str) -> Vec<T> {
    let mut done = Vec::new();
    until(what, || {
        while let Some(output) = set.try_join_next() {
            done.push(output.expect("task"));
        }
        set.is_empty()
    })
    .await;
    done
}

/// Two layers over one shared backend: pages tagged through `a` are purged by a
/// `purge_tag` through `b` (and pages under another tag are not).
pub async fn a_tag_purge_reaches_the_other_instance(layer_a: &CacheLayer, layer_b: &CacheLayer) {
    let calls = Calls::default();
    let tagged = |layer: &CacheLayer| {
        tower::Layer::layer(
            layer,
            view(&calls, |req, res| {
                let tag = if req.uri().path() == "/other" {
                    "list"
                } else {
                    "product-7"
                };
                set(res, "cache-tag", tag);
            }),
        )
    };
    let (a, b) = (tagged(layer_a), tagged(layer_b));
    let get = |path: &str| get(&format!("http://example.com{path}"));
    send(&a, get("/p1")).await;
    send(&a, get("/p2")).await;
    send(&a, get("/other")).await;
    assert_eq!(calls.get(), 3);
    send(&b, get("/p1")).await;
    assert_eq!(calls.get(), 3, "b sees a's pages");

    assert_eq!(layer_b.handle().purge_tag("product-7").await, 2);
    send(&a, get("/p1")).await;
    send(&a, get("/p2")).await;
    assert_eq!(calls.get(), 5, "a still served a purged page");
    send(&a, get("/other")).await;
    assert_eq!(calls.get(), 5, "another tag's page was purged");
}
