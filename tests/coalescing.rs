//! Request coalescing: concurrent GET misses for one URL wait for one leader,
//! and are served what it stored (`Cache-Status: ...; hit; ttl=N; collapsed`).
//! When the leader stores nothing (uncacheable, another `Vary` variant, an
//! error, a cancelled or too slow leader) followers call the inner service
//! themselves, and a leader whose response could not be stored leaves a
//! hit-for-miss marker so that the URL's misses stop queueing.
//!
//! The inner service is [`scripted`]: it counts its calls and holds each one
//! at a [`Gate`] until the test lets it go, so every test knows who is waiting
//! when. Waiting for other tasks is polling a condition with `yield_now`,
//! bounded ([`until`], [`until_stats`]); no test sleeps.
mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::task::JoinSet;
use tower::{Layer, Service, ServiceExt};
use tower_response_cache::{CacheLayerBuilder, Mode};

type Req = Request<Full<Bytes>>;
type Res = Response<Full<Bytes>>;

// ---------------------------------------------------------------- helpers

/// A response both modes store for 600 s.
const CACHEABLE: &str = "max-age=600";

/// Sets `Cache-Control: value` on a response.
fn cache_control(res: &mut Res, value: &str) {
    set(res, "cache-control", value);
}

/// A layer builder on a new manual clock, in `mode`.
fn in_mode(mode: Mode) -> CacheLayerBuilder {
    builder(&clock()).mode(mode)
}

/// Like [`spawn_send`], keeping the service's error.
fn spawn_try_send<S, B>(
    set: &mut JoinSet<Result<Reply, S::Error>>,
    svc: &S,
    req: http::request::Builder,
) where
    S: Service<Req, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    let svc = svc.clone();
    set.spawn(async move { try_send(&svc, req).await });
}

/// Whether a response was served from what another request's miss stored.
fn collapsed(reply: &Reply) -> bool {
    cache_status(&reply.0).contains("collapsed")
}

/// The bodies of `replies`, sorted.
fn bodies(replies: &[Reply]) -> Vec<String> {
    let mut bodies: Vec<String> = replies
        .iter()
        .map(|(_, body)| String::from_utf8_lossy(body).into_owned())
        .collect();
    bodies.sort();
    bodies
}

/// `body 1` .. `body n`, sorted as [`bodies`] sorts.
fn numbered_bodies(n: usize) -> Vec<String> {
    let mut bodies: Vec<String> = (1..=n).map(|i| format!("body {i}")).collect();
    bodies.sort();
    bodies
}

/// Polls `fut` once (it must still be pending).
async fn poll_once<F: Future>(fut: Pin<&mut F>) {
    let mut fut = Some(fut);
    std::future::poll_fn(|cx| {
        let fut = fut.take().expect("polled once");
        assert!(
            fut.poll(cx).is_pending(),
            "the request finished though its inner call never answers"
        );
        Poll::Ready(())
    })
    .await;
}

// ---------------------------------------------------------------- one leader

/// 1,000 concurrent requests for a cold URL: one inner call, 999 followers
/// served the leader's stored response.
async fn a_thousand_concurrent_misses_call_the_inner_service_once(mode: Mode) {
    const N: usize = 1_000;
    let calls = Calls::default();
    let gate = Gate::closed();
    let layer = in_mode(mode).build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, |_, _, res| {
        cache_control(res, CACHEABLE);
        Act::Answer
    }));

    let mut set = JoinSet::new();
    for _ in 0..N {
        spawn_send(&mut set, &svc, get("/p"));
    }
    until_stats(&handle, "999 followers waiting on one leader", |s| {
        s.coalesced == (N - 1) as u64 && calls.get() == 1
    })
    .await;
    assert_eq!(calls.get(), 1, "followers called the inner service");

    gate.release();
    let replies = set.join_all().await;
    assert_eq!(replies.len(), N);
    for (parts, body) in &replies {
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(body, "body 1", "{}", cache_status(parts));
    }
    assert_eq!(
        calls.get(),
        1,
        "the inner service was called more than once"
    );

    let (followers, leaders): (Vec<&Reply>, Vec<&Reply>) =
        replies.iter().partition(|reply| collapsed(reply));
    assert_eq!(followers.len(), N - 1, "responses marked collapsed");
    for (parts, _) in &followers {
        let status = cache_status(parts);
        assert!(
            status.starts_with("tower-response-cache; hit; ttl=")
                && status.ends_with("; collapsed"),
            "follower's Cache-Status: {status}"
        );
    }
    let leader = cache_status(&leaders[0].0);
    assert!(
        leader.contains("fwd=uri-miss") && leader.contains("stored"),
        "leader's Cache-Status: {leader}"
    );
    let stats = handle.stats();
    assert_eq!(stats.coalesced, (N - 1) as u64, "{stats:?}");
    assert_eq!(stats.misses, 1, "{stats:?}");
    assert_eq!(stats.stores, 1, "{stats:?}");
}

#[tokio::test]
async fn app_a_thousand_concurrent_misses_call_the_inner_service_once() {
    a_thousand_concurrent_misses_call_the_inner_service_once(Mode::App).await;
}

#[tokio::test]
async fn shared_a_thousand_concurrent_misses_call_the_inner_service_once() {
    a_thousand_concurrent_misses_call_the_inner_service_once(Mode::Shared).await;
}

#[tokio::test]
async fn the_default_app_mode_lifetime_is_enough_to_coalesce() {
    // No Cache-Control at all: app mode stores for default_timeout.
    let clock = clock();
    let calls = Calls::default();
    let gate = Gate::closed();
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, |_, _, _| Act::Answer));
    let mut set = JoinSet::new();
    for _ in 0..3 {
        spawn_send(&mut set, &svc, get("/p"));
    }
    until_stats(&handle, "2 followers", |s| {
        s.coalesced == 2 && calls.get() == 1
    })
    .await;
    gate.release();
    let replies = set.join_all().await;
    assert_eq!(bodies(&replies), ["body 1", "body 1", "body 1"]);
    let collapsed: Vec<&str> = replies
        .iter()
        .filter(|reply| collapsed(reply))
        .map(|(parts, _)| cache_status(parts))
        .collect();
    assert_eq!(
        collapsed,
        [
            "tower-response-cache; hit; ttl=600; collapsed",
            "tower-response-cache; hit; ttl=600; collapsed"
        ]
    );
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn without_coalescing_every_request_calls_the_inner_service() {
    const N: usize = 10;
    let calls = Calls::default();
    let gate = Gate::closed();
    let layer = in_mode(Mode::App).coalesce(false).build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, |_, _, res| {
        cache_control(res, CACHEABLE);
        Act::Answer
    }));
    let mut set = JoinSet::new();
    for _ in 0..N {
        spawn_send(&mut set, &svc, get("/p"));
    }
    // Every call is held at the gate: they can only all arrive if nobody waits
    // for anybody.
    until("all 10 requests to reach the inner service", || {
        calls.get() == N
    })
    .await;
    assert_eq!(handle.stats().coalesced, 0);
    gate.release();
    let replies = set.join_all().await;
    assert_eq!(bodies(&replies), numbered_bodies(N));
    assert!(!replies.iter().any(collapsed), "a response was collapsed");
    assert_eq!(calls.get(), N);
    assert_eq!(handle.stats().coalesced, 0);
}

#[tokio::test]
async fn different_urls_do_not_wait_for_each_other() {
    let calls = Calls::default();
    let gate = Gate::closed();
    let layer = in_mode(Mode::App).build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, |_, _, res| {
        cache_control(res, CACHEABLE);
        Act::Answer
    }));
    let mut set = JoinSet::new();
    for uri in ["/a", "/b", "/c"] {
        spawn_send(&mut set, &svc, get(uri));
    }
    until("one inner call per URL", || calls.get() == 3).await;
    assert_eq!(handle.stats().coalesced, 0);
    gate.release();
    let replies = set.join_all().await;
    assert_eq!(bodies(&replies), numbered_bodies(3));
}

// ---------------------------------------------------------------- leader stores nothing

/// The leader's response (call 1) carries `Cache-Control: directive`, as every
/// later one does: followers each call the inner service.
async fn followers_of_an_uncacheable_leader_fetch_their_own(mode: Mode, directive: &'static str) {
    const N: usize = 5;
    let calls = Calls::default();
    let gate = Gate::closed();
    let layer = in_mode(mode).build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, move |_, _, res| {
        cache_control(res, directive);
        Act::Answer
    }));
    let mut set = JoinSet::new();
    for _ in 0..N {
        spawn_send(&mut set, &svc, get("/p"));
    }
    until_stats(&handle, "followers waiting on the leader", |s| {
        s.coalesced == (N - 1) as u64 && calls.get() == 1
    })
    .await;
    gate.release();
    let replies = set.join_all().await;
    assert_eq!(
        bodies(&replies),
        numbered_bodies(N),
        "Cache-Control: {directive}"
    );
    for (parts, _) in &replies {
        assert_eq!(parts.status, StatusCode::OK);
        assert!(
            !cache_status(parts).contains("collapsed"),
            "Cache-Control: {directive}: {}",
            cache_status(parts)
        );
    }
    assert_eq!(calls.get(), N, "Cache-Control: {directive}");
}

#[tokio::test]
async fn app_followers_of_an_uncacheable_leader_fetch_their_own() {
    for directive in ["private", "no-store", "max-age=0"] {
        followers_of_an_uncacheable_leader_fetch_their_own(Mode::App, directive).await;
    }
}

#[tokio::test]
async fn shared_followers_of_an_uncacheable_leader_fetch_their_own() {
    for directive in ["private, max-age=600", "no-store, max-age=600"] {
        followers_of_an_uncacheable_leader_fetch_their_own(Mode::Shared, directive).await;
    }
}

#[tokio::test]
async fn a_follower_of_another_vary_variant_fetches_its_own() {
    let calls = Calls::default();
    let gate = Gate::closed();
    let layer = in_mode(Mode::App).build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, |_, _, res| {
        cache_control(res, CACHEABLE);
        set(res, "vary", "Accept-Language");
        Act::Answer
    }));
    let mut leader = JoinSet::new();
    spawn_send(&mut leader, &svc, get("/p").header("accept-language", "en"));
    until("the leader's inner call", || calls.get() == 1).await;
    let mut same = JoinSet::new();
    spawn_send(&mut same, &svc, get("/p").header("accept-language", "en"));
    let mut other = JoinSet::new();
    spawn_send(&mut other, &svc, get("/p").header("accept-language", "fr"));
    until_stats(&handle, "both followers waiting", |s| s.coalesced == 2).await;
    assert_eq!(calls.get(), 1);

    gate.release();
    let (_, body) = leader.join_next().await.expect("leader").expect("task");
    assert_eq!(body, "body 1");
    let (parts, body) = same.join_next().await.expect("en").expect("task");
    assert_eq!(body, "body 1", "the en follower did not get the en variant");
    assert!(
        cache_status(&parts).contains("collapsed"),
        "{}",
        cache_status(&parts)
    );
    let (parts, body) = other.join_next().await.expect("fr").expect("task");
    assert_eq!(body, "body 2", "the fr follower was served the en variant");
    assert!(
        !cache_status(&parts).contains("collapsed"),
        "{}",
        cache_status(&parts)
    );
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn a_follower_of_a_cancelled_leader_fetches_its_own() {
    let calls = Calls::default();
    // Long enough that a follower nobody wakes would hang past the polling bound.
    let layer = in_mode(Mode::App)
        .lock_timeout(Duration::from_secs(3600))
        .build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &Gate::open(), |n, _, res| {
        cache_control(res, CACHEABLE);
        if n == 1 { Act::Hang } else { Act::Answer }
    }));

    let request = get("/p").body(Full::new(Bytes::new())).expect("request");
    let mut leader = Box::pin(svc.clone().oneshot(request));
    for _ in 0..POLLS {
        if calls.get() == 1 {
            break;
        }
        poll_once(leader.as_mut()).await;
    }
    assert_eq!(calls.get(), 1, "the leader never called the inner service");

    let mut follower = JoinSet::new();
    spawn_send(&mut follower, &svc, get("/p"));
    until_stats(&handle, "the follower waiting", |s| s.coalesced == 1).await;
    assert_eq!(calls.get(), 1);

    drop(leader);
    let (parts, body) = finished(&mut follower, "the follower after the leader was dropped").await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "body 2");
    assert!(
        !cache_status(&parts).contains("collapsed"),
        "{}",
        cache_status(&parts)
    );
    assert_eq!(calls.get(), 2);
}

/// The leader's inner call (call 1) fails once released: the follower calls
/// the inner service and gets its 200.
async fn a_follower_of_a_failed_leader_fetches_its_own(mode: Mode) {
    let calls = Calls::default();
    let gate = Gate::closed();
    let layer = in_mode(mode)
        .lock_timeout(Duration::from_secs(3600))
        .build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, |n, _, res| {
        cache_control(res, CACHEABLE);
        if n == 1 { Act::Fail } else { Act::Answer }
    }));
    let mut leader = JoinSet::new();
    spawn_try_send(&mut leader, &svc, get("/p"));
    until("the leader's inner call", || calls.get() == 1).await;
    let mut follower = JoinSet::new();
    spawn_try_send(&mut follower, &svc, get("/p"));
    until_stats(&handle, "the follower waiting", |s| s.coalesced == 1).await;

    gate.release();
    let led = leader.join_next().await.expect("leader").expect("task");
    assert!(
        matches!(led, Err(Boom)),
        "the leader's error was not passed on"
    );
    let (parts, body) = finished(&mut follower, "the follower after the leader failed")
        .await
        .expect("the follower got the leader's error");
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "body 2");
    assert!(!cache_status(&parts).contains("collapsed"));
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn app_a_follower_of_a_failed_leader_fetches_its_own() {
    a_follower_of_a_failed_leader_fetches_its_own(Mode::App).await;
}

#[tokio::test]
async fn shared_a_follower_of_a_failed_leader_fetches_its_own() {
    a_follower_of_a_failed_leader_fetches_its_own(Mode::Shared).await;
}

#[tokio::test(start_paused = true)]
async fn a_follower_stops_waiting_after_the_lock_timeout() {
    let calls = Calls::default();
    let layer = in_mode(Mode::App)
        .lock_timeout(Duration::from_secs(7))
        .build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &Gate::open(), |n, _, res| {
        cache_control(res, CACHEABLE);
        if n == 1 { Act::Hang } else { Act::Answer }
    }));
    let mut leader = JoinSet::new();
    spawn_send(&mut leader, &svc, get("/p"));
    until("the leader's inner call", || calls.get() == 1).await;

    let start = tokio::time::Instant::now();
    let mut follower = JoinSet::new();
    spawn_send(&mut follower, &svc, get("/p"));
    until_stats(&handle, "the follower waiting", |s| s.coalesced == 1).await;
    assert_eq!(calls.get(), 1);

    // Nothing else to do: tokio's paused clock jumps to the follower's timer
    // (or, if it has none, to this one).
    let (parts, body) = tokio::time::timeout(Duration::from_secs(3600), follower.join_next())
        .await
        .expect("the follower still waits after an hour")
        .expect("follower")
        .expect("task");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(7),
        "the follower gave up after {waited:?}, before the 7 s lock timeout"
    );
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "body 2");
    assert!(!cache_status(&parts).contains("collapsed"));
    assert_eq!(calls.get(), 2);
    assert!(leader.try_join_next().is_none(), "the leader answered");
}

// ---------------------------------------------------------------- hit-for-miss

/// Calls 1 to 3 answer `Cache-Control: private`, later ones are cacheable.
/// After call 1 leaves its marker, two concurrent misses both reach the inner
/// service; at `expiry` seconds (ManualClock) they coalesce again.
async fn uncacheable_urls_skip_the_queue_until(
    configure: impl FnOnce(CacheLayerBuilder) -> CacheLayerBuilder,
    expiry: u64,
) {
    let clock = clock();
    let calls = Calls::default();
    let gate = Gate::admitting(1);
    let layer = configure(builder(&clock)).build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, |n, _, res| {
        cache_control(res, if n <= 3 { "private" } else { CACHEABLE });
        Act::Answer
    }));
    let (_, body) = send(&svc, get("/p")).await;
    assert_eq!(body, "body 1");

    let mut set = JoinSet::new();
    spawn_send(&mut set, &svc, get("/p"));
    spawn_send(&mut set, &svc, get("/p"));
    // Calls 2 and 3 are held at the gate: both can only arrive if neither
    // waits for the other.
    until("both misses to reach the inner service", || {
        calls.get() == 3
    })
    .await;
    assert_eq!(handle.stats().coalesced, 0);
    gate.admit(3);
    let replies = set.join_all().await;
    assert_eq!(bodies(&replies), ["body 2", "body 3"]);

    at(&clock, expiry);
    let mut set = JoinSet::new();
    spawn_send(&mut set, &svc, get("/p"));
    spawn_send(&mut set, &svc, get("/p"));
    until_stats(&handle, "coalescing again after the marker expired", |s| {
        s.coalesced == 1 && calls.get() == 4
    })
    .await;
    gate.release();
    let replies = set.join_all().await;
    assert_eq!(bodies(&replies), ["body 4", "body 4"]);
    assert_eq!(replies.iter().filter(|reply| collapsed(reply)).count(), 1);
    assert_eq!(calls.get(), 4);
}

#[tokio::test]
async fn uncacheable_urls_skip_the_queue_for_the_default_30_seconds() {
    uncacheable_urls_skip_the_queue_until(|b| b, 31).await;
}

#[tokio::test]
async fn uncacheable_urls_skip_the_queue_for_the_configured_time() {
    uncacheable_urls_skip_the_queue_until(|b| b.hit_for_miss(Duration::from_secs(5)), 6).await;
}

#[tokio::test]
async fn the_marker_is_still_there_just_before_it_expires() {
    let clock = clock();
    let calls = Calls::default();
    let gate = Gate::admitting(1);
    let layer = builder(&clock).build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, |n, _, res| {
        cache_control(res, if n == 1 { "no-store" } else { CACHEABLE });
        Act::Answer
    }));
    send(&svc, get("/p")).await;
    at(&clock, 29);
    let mut set = JoinSet::new();
    spawn_send(&mut set, &svc, get("/p"));
    spawn_send(&mut set, &svc, get("/p"));
    until("both misses to reach the inner service at +29 s", || {
        calls.get() == 3
    })
    .await;
    assert_eq!(handle.stats().coalesced, 0);
    gate.release();
    set.join_all().await;
}

#[tokio::test]
async fn a_zero_hit_for_miss_leaves_no_marker() {
    let clock = clock();
    let calls = Calls::default();
    let gate = Gate::admitting(1);
    let layer = builder(&clock).hit_for_miss(Duration::ZERO).build();
    let handle = layer.handle();
    let svc = layer.layer(scripted(&calls, &gate, |_, _, res| {
        cache_control(res, "private");
        Act::Answer
    }));
    send(&svc, get("/p")).await;
    let mut set = JoinSet::new();
    spawn_send(&mut set, &svc, get("/p"));
    spawn_send(&mut set, &svc, get("/p"));
    until_stats(&handle, "the second miss waiting on the first", |s| {
        s.coalesced == 1 && calls.get() == 2
    })
    .await;
    gate.release();
    let replies = set.join_all().await;
    assert_eq!(bodies(&replies), ["body 2", "body 3"]);
}
