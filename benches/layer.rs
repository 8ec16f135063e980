//! In-process cost of `CacheLayer`: the same inner service called bare (baseline)
//! and through the layer (hit, miss+store, hit with two `Vary` headers), for 1 KiB
//! and 64 KiB bodies. Every case builds its request and reads the whole body; the
//! Vary hit is compared with `baseline_vary2`, the bare call with the same request
//! and response headers.
//!
//! `cargo bench --bench layer`; BENCHMARKS.md reports the results as ratios to the
//! baseline measured in the same run.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use tower::{Layer, Service};
use tower_response_cache::CacheLayer;

mod common;
use common::fetch;

/// A handler that returns a prebuilt response: the cheapest possible inner service.
fn prebuilt(
    body: Bytes,
    vary: bool,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let mut template = Response::new(Full::new(body.clone()));
    template.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if vary {
        template.headers_mut().insert(
            "vary",
            HeaderValue::from_static("Accept-Language, Accept-Encoding"),
        );
    }
    let headers = template.headers().clone();
    tower::service_fn(move |_req: Request<Full<Bytes>>| {
        let mut res = Response::new(Full::new(body.clone()));
        *res.headers_mut() = headers.clone();
        std::future::ready(Ok::<_, Infallible>(res))
    })
}

fn request(uri: &str, vary: bool) -> Request<Full<Bytes>> {
    let mut b = Request::get(uri).header("host", "bench.example");
    if vary {
        b = b
            .header("accept-language", "en-GB,en;q=0.9")
            .header("accept-encoding", "gzip, br");
    }
    b.body(Full::new(Bytes::new())).expect("request")
}

async fn run<S, B>(svc: &mut S, req: Request<Full<Bytes>>) -> usize
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    fetch(svc, req).await.into_body().len()
}

fn layer_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("layer");
    for size in [1024usize, 64 * 1024] {
        let body = Bytes::from(vec![b'x'; size]);
        let label = format!("{}KiB", size / 1024);

        let bare = prebuilt(body.clone(), false);
        group.bench_function(BenchmarkId::new("baseline", &label), |b| {
            b.to_async(&rt).iter(|| {
                let mut svc = bare.clone();
                async move { run(&mut svc, request("/page?id=42", false)).await }
            })
        });

        // The same bare service, with the Vary case's request and response headers.
        let bare_vary = prebuilt(body.clone(), true);
        group.bench_function(BenchmarkId::new("baseline_vary2", &label), |b| {
            b.to_async(&rt).iter(|| {
                let mut svc = bare_vary.clone();
                async move { run(&mut svc, request("/page?id=42", true)).await }
            })
        });

        let hit = CacheLayer::new().layer(prebuilt(body.clone(), false));
        rt.block_on(run(&mut hit.clone(), request("/page?id=42", false)));
        group.bench_function(BenchmarkId::new("hit", &label), |b| {
            b.to_async(&rt).iter(|| {
                let mut svc = hit.clone();
                async move { run(&mut svc, request("/page?id=42", false)).await }
            })
        });

        // The same hit with request coalescing off: coalescing must cost a hit
        // nothing (hits never touch the in-flight map).
        let hit_nocoalesce = CacheLayer::builder()
            .coalesce(false)
            .build()
            .layer(prebuilt(body.clone(), false));
        rt.block_on(run(
            &mut hit_nocoalesce.clone(),
            request("/page?id=42", false),
        ));
        group.bench_function(BenchmarkId::new("hit_nocoalesce", &label), |b| {
            b.to_async(&rt).iter(|| {
                let mut svc = hit_nocoalesce.clone();
                async move { run(&mut svc, request("/page?id=42", false)).await }
            })
        });

        let vary = CacheLayer::new().layer(prebuilt(body.clone(), true));
        rt.block_on(run(&mut vary.clone(), request("/page?id=42", true)));
        group.bench_function(BenchmarkId::new("hit_vary2", &label), |b| {
            b.to_async(&rt).iter(|| {
                let mut svc = vary.clone();
                async move { run(&mut svc, request("/page?id=42", true)).await }
            })
        });

        let miss = CacheLayer::new().layer(prebuilt(body.clone(), false));
        let counter = AtomicU64::new(0);
        group.bench_function(BenchmarkId::new("miss_store", &label), |b| {
            b.to_async(&rt).iter(|| {
                let mut svc = miss.clone();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                async move { run(&mut svc, request(&format!("/page?id={n}"), false)).await }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, layer_benches);
criterion_main!(benches);
