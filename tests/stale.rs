//! Stale serving (RFC 5861) in both modes: `stale-while-revalidate` answers
//! at once from a stale entry and refreshes it in the background, once per
//! URL; `stale-if-error` serves a stale entry when the inner service fails or
//! answers 500, 502, 503 or 504. Windows come from the response's directives,
//! the request's `stale-if-error` (shared mode), or the builder's defaults.
//! Never for `must-revalidate`, `proxy-revalidate`, `no-cache` or (shared
//! mode) `s-maxage` responses.
//!
//! Time is the layer's ManualClock. The inner service is [`scripted`]; a
//! background refresh is held at a [`Gate`] until the test lets it through, and
//! its end is awaited by polling the counters ([`until_stats`]).
mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use httpdate::fmt_http_date;
use tokio::task::JoinSet;
use tower::{Layer, Service};
use tower_response_cache::{
    CacheLayer, CacheLayerBuilder, CacheStats, Clock, ManualClock, Mode, ResponseBody,
};

type Req = Request<Full<Bytes>>;
type Res = Response<Full<Bytes>>;

// ---------------------------------------------------------------- helpers

/// `layer` over a [`scripted`] inner service whose responses carry `Date`
/// (from `clock`) and `ETag: "vN"`, then are shaped by `f(n, response)`.
fn cached<F>(
    layer: &CacheLayer,
    clock: &ManualClock,
    calls: &Calls,
    gate: &Gate,
    f: F,
) -> impl Service<
    Req,
    Response = Response<ResponseBody<Full<Bytes>>>,
    Error = Boom,
    Future = impl Send + use<F>,
>
+ Clone
+ Send
+ Sync
+ 'static
+ use<F>
where
    F: Fn(usize, &mut Res) -> Act + Clone + Send + Sync + 'static,
{
    let clock = clock.clone();
    layer.layer(scripted(calls, gate, move |n, _, res| {
        set(res, "date", &fmt_http_date(clock.now()));
        set(res, "etag", &format!("\"v{n}\""));
        f(n, res)
    }))
}

/// An inner-service shaper answering `Cache-Control: value` to every call.
fn always(value: &'static str) -> impl Fn(usize, &mut Res) -> Act + Clone + Send + Sync + 'static {
    move |_, res| {
        set(res, "cache-control", value);
        Act::Answer
    }
}

/// No builder changes.
fn defaults(b: CacheLayerBuilder) -> CacheLayerBuilder {
    b
}

/// Asserts `status` (a `Cache-Status`) carries every one of `params`.
fn assert_params(status: &str, params: &[&str], what: &str) {
    for param in params {
        assert!(
            status.contains(param),
            "{what}: Cache-Status {status:?} lacks {param:?}"
        );
    }
}

// ---------------------------------------------------------------- stale-while-revalidate

/// A response with `Cache-Control: cc` is stored at T0 and requested at +15 s,
/// 5 s stale: the stale copy is served at once, one refresh (held at the gate
/// until then) stores `body 2`, which the next request gets as a fresh hit.
async fn served_stale_then_refreshed(
    mode: Mode,
    configure: fn(CacheLayerBuilder) -> CacheLayerBuilder,
    cc: &'static str,
) {
    let what = format!("{mode:?}, Cache-Control: {cc}");
    let clock = clock();
    let calls = Calls::default();
    let gate = Gate::admitting(1);
    let layer = configure(builder(&clock).mode(mode)).build();
    let handle = layer.handle();
    let svc = cached(&layer, &clock, &calls, &gate, always(cc));
    let (_, body) = send(&svc, get("/p")).await;
    assert_eq!(body, "body 1");

    at(&clock, 15);
    // On a task: a request that (wrongly) waits for the refresh, held at the
    // gate, fails the test instead of hanging it.
    let mut stale = JoinSet::new();
    spawn_send(&mut stale, &svc, get("/p"));
    let (p, body) = finished(&mut stale, "the stale response, at once").await;
    assert_eq!(p.status, StatusCode::OK, "{what}");
    assert_eq!(body, "body 1", "{what}: the stale response was not served");
    assert_params(
        cache_status(&p),
        &[
            "tower-response-cache; hit;",
            "ttl=-5",
            "detail=stale-while-revalidate",
        ],
        &what,
    );
    assert_eq!(handle.stats().stale_served, 1, "{what}");
    until("the background refresh to call the inner service", || {
        calls.get() == 2
    })
    .await;

    gate.release();
    until_stats(&handle, "the refreshed response to be stored", |s| {
        s.stores == 2
    })
    .await;
    let (p, body) = send(&svc, get("/p")).await;
    assert_eq!(body, "body 2", "{what}: the refresh was not served");
    let status = cache_status(&p);
    assert_params(status, &["; hit;"], &what);
    assert!(!status.contains("stale"), "{what}: {status}");
    assert_eq!(calls.get(), 2, "{what}");
    assert_eq!(handle.stats().stale_served, 1, "{what}");
}

#[tokio::test]
async fn app_stale_while_revalidate_serves_stale_and_refreshes() {
    served_stale_then_refreshed(Mode::App, defaults, "max-age=10, stale-while-revalidate=30").await;
}

#[tokio::test]
async fn shared_stale_while_revalidate_serves_stale_and_refreshes() {
    served_stale_then_refreshed(
        Mode::Shared,
        defaults,
        "max-age=10, stale-while-revalidate=30",
    )
    .await;
}

#[tokio::test]
async fn app_mode_keeps_the_stale_while_revalidate_directive() {
    let clock = clock();
    let calls = Calls::default();
    let layer = builder(&clock).build();
    let svc = cached(
        &layer,
        &clock,
        &calls,
        &Gate::open(),
        always("max-age=10, stale-while-revalidate=30"),
    );
    for _ in 0..2 {
        let (p, _) = send(&svc, get("/p")).await;
        let cc = header(&p, "cache-control").unwrap_or("");
        assert!(cc.contains("max-age=10"), "Cache-Control: {cc}");
        assert!(
            cc.contains("stale-while-revalidate=30"),
            "Cache-Control: {cc}"
        );
    }
    assert_eq!(calls.get(), 1);
}

/// With no directive, the builder's `stale_while_revalidate(30 s)` applies.
fn thirty_second_swr(b: CacheLayerBuilder) -> CacheLayerBuilder {
    b.stale_while_revalidate(Duration::from_secs(30))
}

#[tokio::test]
async fn app_builder_default_stale_while_revalidate() {
    served_stale_then_refreshed(Mode::App, thirty_second_swr, "max-age=10").await;
}

#[tokio::test]
async fn shared_builder_default_stale_while_revalidate() {
    served_stale_then_refreshed(Mode::Shared, thirty_second_swr, "max-age=10").await;
}

#[tokio::test]
async fn twenty_concurrent_stale_requests_start_one_refresh() {
    const N: usize = 20;
    let clock = clock();
    let calls = Calls::default();
    let gate = Gate::admitting(1);
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = cached(
        &layer,
        &clock,
        &calls,
        &gate,
        always("max-age=10, stale-while-revalidate=30"),
    );
    send(&svc, get("/p")).await;

    at(&clock, 15);
    let mut set = JoinSet::new();
    for _ in 0..N {
        spawn_send(&mut set, &svc, get("/p"));
    }
    // The refresh is held at the gate: every request arrives while it runs.
    let replies = all_finished(&mut set, "20 stale responses, at once").await;
    assert_eq!(replies.len(), N);
    for (p, body) in &replies {
        assert_eq!(body, "body 1");
        assert_params(
            cache_status(p),
            &["detail=stale-while-revalidate"],
            "concurrent stale request",
        );
    }
    until("the background refresh to call the inner service", || {
        calls.get() == 2
    })
    .await;
    assert_eq!(handle.stats().stale_served, N as u64);

    gate.release();
    until_stats(&handle, "the refreshed response to be stored", |s| {
        s.stores == 2
    })
    .await;
    let (_, body) = send(&svc, get("/p")).await;
    assert_eq!(body, "body 2");
    assert_eq!(calls.get(), 2, "more than one refresh, or a miss after it");
}

/// A response with `Cache-Control: cc` stored at T0 and requested at `later`
/// seconds is fetched anew (a blocking miss): the request gets `body 2`.
async fn not_served_stale_while_revalidating(
    mode: Mode,
    configure: fn(CacheLayerBuilder) -> CacheLayerBuilder,
    cc: &'static str,
    later: u64,
) {
    let what = format!("{mode:?}, Cache-Control: {cc}, at +{later} s");
    let clock = clock();
    let calls = Calls::default();
    let layer = configure(builder(&clock).mode(mode)).build();
    let handle = layer.handle();
    let svc = cached(&layer, &clock, &calls, &Gate::open(), always(cc));
    send(&svc, get("/p")).await;
    at(&clock, later);
    let (p, body) = send(&svc, get("/p")).await;
    assert_eq!(body, "body 2", "{what}: served stale");
    assert!(
        !cache_status(&p).contains("stale-while-revalidate"),
        "{what}: {}",
        cache_status(&p)
    );
    assert_eq!(calls.get(), 2, "{what}");
    assert_eq!(handle.stats().stale_served, 0, "{what}");
}

#[tokio::test]
async fn app_no_stale_while_revalidate_for_revalidate_directives() {
    for cc in [
        "max-age=10, stale-while-revalidate=30, must-revalidate",
        "max-age=10, stale-while-revalidate=30, proxy-revalidate",
    ] {
        not_served_stale_while_revalidating(Mode::App, defaults, cc, 15).await;
    }
}

#[tokio::test]
async fn shared_no_stale_while_revalidate_for_revalidate_s_maxage_or_no_cache() {
    for cc in [
        "max-age=10, stale-while-revalidate=30, must-revalidate",
        "max-age=10, stale-while-revalidate=30, proxy-revalidate",
        "s-maxage=10, stale-while-revalidate=30",
        "no-cache, max-age=10, stale-while-revalidate=30",
    ] {
        not_served_stale_while_revalidating(Mode::Shared, defaults, cc, 15).await;
    }
}

#[tokio::test]
async fn the_builder_default_does_not_override_must_revalidate() {
    for mode in [Mode::App, Mode::Shared] {
        not_served_stale_while_revalidating(
            mode,
            thirty_second_swr,
            "max-age=10, must-revalidate",
            15,
        )
        .await;
    }
}

#[tokio::test]
async fn no_stale_while_revalidate_outside_the_window() {
    for mode in [Mode::App, Mode::Shared] {
        // Stale by 31 s, the window is 30 s.
        not_served_stale_while_revalidating(
            mode,
            defaults,
            "max-age=10, stale-while-revalidate=30",
            41,
        )
        .await;
        not_served_stale_while_revalidating(mode, thirty_second_swr, "max-age=10", 41).await;
    }
}

#[tokio::test]
async fn the_response_s_own_window_beats_the_builder_default() {
    for mode in [Mode::App, Mode::Shared] {
        // Stale by 5 s: inside the builder's 30 s, outside the response's 2 s.
        not_served_stale_while_revalidating(
            mode,
            thirty_second_swr,
            "max-age=10, stale-while-revalidate=2",
            15,
        )
        .await;
    }
}

#[tokio::test]
async fn no_stale_while_revalidate_by_default() {
    for mode in [Mode::App, Mode::Shared] {
        not_served_stale_while_revalidating(
            mode,
            |b| b.keep(Duration::from_secs(3600)),
            "max-age=10",
            15,
        )
        .await;
    }
}

// ---------------------------------------------------------------- stale-if-error

/// What the inner service does after its first (200) answer.
#[derive(Debug, Clone, Copy)]
enum Then {
    /// Answers `body N` with this status.
    Status(u16),
    /// Returns `Err(Boom)`.
    Error,
}

/// A stale-if-error scenario: a 200 with `Cache-Control: cc` stored at T0,
/// then at `later` seconds a request (with `Cache-Control: request_cc` if
/// given) to which the inner service answers as `then` says.
struct Failure {
    mode: Mode,
    configure: fn(CacheLayerBuilder) -> CacheLayerBuilder,
    cc: &'static str,
    later: u64,
    then: Then,
    request_cc: Option<&'static str>,
}

impl Failure {
    fn new(mode: Mode, cc: &'static str, later: u64, then: Then) -> Self {
        Self {
            mode,
            configure: defaults,
            cc,
            later,
            then,
            request_cc: None,
        }
    }

    fn configure(self, configure: fn(CacheLayerBuilder) -> CacheLayerBuilder) -> Self {
        Self { configure, ..self }
    }

    fn request_cc(self, value: &'static str) -> Self {
        Self {
            request_cc: Some(value),
            ..self
        }
    }

    fn describe(&self) -> String {
        format!(
            "{:?}, Cache-Control: {}, at +{} s, then {:?}, request Cache-Control: {:?}",
            self.mode, self.cc, self.later, self.then, self.request_cc
        )
    }

    /// Runs it: the second request's outcome, the counters, the inner calls.
    async fn run(&self) -> (Result<Reply, Boom>, CacheStats, usize) {
        let clock = clock();
        let calls = Calls::default();
        let layer = (self.configure)(builder(&clock).mode(self.mode)).build();
        let handle = layer.handle();
        let (cc, then) = (self.cc, self.then);
        let svc = cached(&layer, &clock, &calls, &Gate::open(), move |n, res| {
            if n == 1 {
                set(res, "cache-control", cc);
                return Act::Answer;
            }
            match then {
                Then::Status(code) => {
                    *res.status_mut() = StatusCode::from_u16(code).expect("status");
                    Act::Answer
                }
                Then::Error => Act::Fail,
            }
        });
        let (p, body) = send(&svc, get("/p")).await;
        assert_eq!((p.status, body.as_ref()), (StatusCode::OK, &b"body 1"[..]));
        at(&clock, self.later);
        let mut req = get("/p");
        if let Some(value) = self.request_cc {
            req = req.header("cache-control", value);
        }
        let outcome = try_send(&svc, req).await;
        (outcome, handle.stats(), calls.get())
    }

    /// Runs it and asserts the stale response was served.
    async fn served_stale(self) {
        let what = self.describe();
        let (outcome, stats, calls) = self.run().await;
        let (p, body) = match outcome {
            Ok(reply) => reply,
            Err(Boom) => panic!("{what}: the error went through"),
        };
        assert_eq!(calls, 2, "{what}");
        assert_eq!(p.status, StatusCode::OK, "{what}: {}", cache_status(&p));
        assert_eq!(body, "body 1", "{what}");
        let status = cache_status(&p);
        assert_params(status, &["fwd=stale", "detail=stale-if-error"], &what);
        match self.then {
            Then::Status(code) => assert_params(status, &[&format!("fwd-status={code}")], &what),
            Then::Error => assert!(!status.contains("fwd-status"), "{what}: {status}"),
        }
        assert_eq!(stats.stale_served, 1, "{what}: {stats:?}");
    }

    /// Runs it and asserts the failure went through.
    async fn passed_through(self) {
        let what = self.describe();
        let (outcome, stats, calls) = self.run().await;
        assert_eq!(calls, 2, "{what}");
        match (self.then, outcome) {
            (Then::Error, Err(Boom)) => {}
            (Then::Error, Ok((p, body))) => panic!(
                "{what}: the error became {} {body:?} ({})",
                p.status,
                cache_status(&p)
            ),
            (Then::Status(_), Err(Boom)) => panic!("{what}: the service failed"),
            (Then::Status(code), Ok((p, body))) => {
                assert_eq!(p.status.as_u16(), code, "{what}: {}", cache_status(&p));
                assert_eq!(body, "body 2", "{what}");
                assert!(
                    !cache_status(&p).contains("stale-if-error"),
                    "{what}: {}",
                    cache_status(&p)
                );
            }
        }
        assert_eq!(stats.stale_served, 0, "{what}: {stats:?}");
    }
}

const SIE: &str = "max-age=10, stale-if-error=60";

#[tokio::test]
async fn stale_if_error_on_500_502_503_504() {
    for mode in [Mode::App, Mode::Shared] {
        for code in [500, 502, 503, 504] {
            Failure::new(mode, SIE, 15, Then::Status(code))
                .served_stale()
                .await;
        }
    }
}

#[tokio::test]
async fn stale_if_error_when_the_inner_service_fails() {
    for mode in [Mode::App, Mode::Shared] {
        Failure::new(mode, SIE, 15, Then::Error)
            .served_stale()
            .await;
    }
}

#[tokio::test]
async fn stale_if_error_at_the_end_of_its_window() {
    for mode in [Mode::App, Mode::Shared] {
        // Stale by 59 s of the 60 s window.
        Failure::new(mode, SIE, 69, Then::Status(503))
            .served_stale()
            .await;
    }
}

#[tokio::test]
async fn other_statuses_are_not_errors() {
    for mode in [Mode::App, Mode::Shared] {
        for code in [404, 403] {
            Failure::new(mode, SIE, 15, Then::Status(code))
                .passed_through()
                .await;
        }
    }
}

#[tokio::test]
async fn no_stale_if_error_outside_the_window() {
    for mode in [Mode::App, Mode::Shared] {
        // Stale by 61 s, the window is 60 s.
        Failure::new(mode, SIE, 71, Then::Status(503))
            .passed_through()
            .await;
        Failure::new(mode, SIE, 71, Then::Error)
            .passed_through()
            .await;
    }
}

#[tokio::test]
async fn no_stale_if_error_for_revalidate_directives() {
    for mode in [Mode::App, Mode::Shared] {
        for cc in [
            "max-age=10, stale-if-error=60, must-revalidate",
            "max-age=10, stale-if-error=60, proxy-revalidate",
        ] {
            Failure::new(mode, cc, 15, Then::Status(503))
                .passed_through()
                .await;
            Failure::new(mode, cc, 15, Then::Error)
                .passed_through()
                .await;
        }
    }
}

#[tokio::test]
async fn shared_no_stale_if_error_for_s_maxage() {
    Failure::new(
        Mode::Shared,
        "s-maxage=10, stale-if-error=60",
        15,
        Then::Status(503),
    )
    .passed_through()
    .await;
}

#[tokio::test]
async fn shared_request_stale_if_error() {
    // Stale by 40 s: the request accepts 100 s; the response names nothing.
    Failure::new(Mode::Shared, "max-age=10", 50, Then::Status(503))
        .request_cc("stale-if-error=100")
        .served_stale()
        .await;
    Failure::new(Mode::Shared, "max-age=10", 50, Then::Error)
        .request_cc("stale-if-error=100")
        .served_stale()
        .await;
    // Without it, or with a shorter one, the error goes through.
    Failure::new(Mode::Shared, "max-age=10", 50, Then::Status(503))
        .passed_through()
        .await;
    Failure::new(Mode::Shared, "max-age=10", 50, Then::Status(503))
        .request_cc("stale-if-error=30")
        .passed_through()
        .await;
}

#[tokio::test]
async fn app_mode_ignores_the_request_s_stale_if_error() {
    // The entry is kept past its freshness, so only the directive is missing.
    Failure::new(Mode::App, "max-age=10", 50, Then::Status(503))
        .configure(|b| b.keep(Duration::from_secs(3600)))
        .request_cc("stale-if-error=100")
        .passed_through()
        .await;
}

/// With no directive, the builder's `stale_if_error(60 s)` applies.
fn sixty_second_sie(b: CacheLayerBuilder) -> CacheLayerBuilder {
    b.stale_if_error(Duration::from_secs(60))
}

#[tokio::test]
async fn builder_default_stale_if_error() {
    for mode in [Mode::App, Mode::Shared] {
        Failure::new(mode, "max-age=10", 15, Then::Status(503))
            .configure(sixty_second_sie)
            .served_stale()
            .await;
        Failure::new(mode, "max-age=10", 15, Then::Error)
            .configure(sixty_second_sie)
            .served_stale()
            .await;
        Failure::new(mode, "max-age=10", 71, Then::Status(503))
            .configure(sixty_second_sie)
            .passed_through()
            .await;
    }
}

#[tokio::test]
async fn no_stale_if_error_by_default() {
    for mode in [Mode::App, Mode::Shared] {
        Failure::new(mode, "max-age=10", 15, Then::Status(503))
            .configure(|b| b.keep(Duration::from_secs(3600)))
            .passed_through()
            .await;
    }
}
