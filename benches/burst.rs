//! Origin calls under a burst: 1,000 concurrent requests for one cold URL, with
//! and without request coalescing, against a handler that takes 20 ms.
//!
//! Not a criterion benchmark (the figure is a count): `cargo bench --bench
//! burst` prints one line per configuration, for BENCHMARKS.md.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tokio::task::JoinSet;
use tower::{Layer, ServiceExt};
use tower_response_cache::CacheLayer;

const BURST: usize = 1_000;

async fn burst(coalesce: bool) -> (usize, Duration) {
    let calls = Arc::new(AtomicUsize::new(0));
    let origin = {
        let calls = calls.clone();
        tower::service_fn(move |_req: Request<Full<Bytes>>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"report"))))
            }
        })
    };
    let svc = CacheLayer::builder()
        .coalesce(coalesce)
        .build()
        .layer(origin);
    let started = Instant::now();
    let mut requests = JoinSet::new();
    for _ in 0..BURST {
        let svc = svc.clone();
        requests.spawn(async move {
            let req = Request::get("/report")
                .header("host", "example.com")
                .body(Full::new(Bytes::new()))
                .expect("request");
            let res = svc.oneshot(req).await.expect("infallible");
            res.into_body().collect().await.expect("body").to_bytes()
        });
    }
    while let Some(body) = requests.join_next().await {
        assert_eq!(body.expect("task"), "report");
    }
    (calls.load(Ordering::SeqCst), started.elapsed())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for coalesce in [true, false] {
        let (calls, elapsed) = rt.block_on(burst(coalesce));
        println!(
            "burst of {BURST} to a cold URL, coalescing {}: {calls} origin call(s), {:.1} ms",
            if coalesce { "on " } else { "off" },
            elapsed.as_secs_f64() * 1000.0
        );
    }
}
