//! Scale: what one stored response costs in memory, whether a hit slows down as
//! the cache grows, and how hits scale from one thread to two. Every part runs
//! `CacheLayer` over a `MemoryBackend` whose limits are far above what is stored,
//! so nothing is ever evicted (each part checks it).
//!
//! - `scale_memory` (printed lines, not criterion; deterministic): a counting
//!   global allocator tracks live heap bytes (requested sizes). A fresh layer is
//!   filled with N distinct URLs (10k, 100k, 1M), each answered once with its own
//!   freshly allocated 100-byte body, `content-type` and `cache-control:
//!   max-age=3600`, every body read to the end (that is when it is stored). Live
//!   bytes after minus before, over N, is the cost of one entry; minus the
//!   entry's payload (body, stored header names and values, host and path) it is
//!   the fixed overhead per entry (target: under 256 bytes). Before the "after"
//!   figure, rounds of one hit on every URL run until the figure stops moving
//!   (a first hit makes an entry's buffer shared, so a cache in use holds
//!   that count too).
//!   Each line is followed by the live blocks per entry by requested size, to
//!   tell which allocations the overhead is made of.
//! - `scale_hit`: hit latency with 1k, 10k, 100k and 1M entries stored (1 KiB
//!   bodies), as in `benches/layer.rs` (request built, body read, current-thread
//!   runtime): `hot_key` (one URL) and `all_keys` (every URL in a shuffled order,
//!   each path written into one reused buffer, as a server's parser leaves it).
//!   Target: flat within 20% from 1k to 1M. `floor_all_keys` is the same
//!   shuffled walk over a plain map of 1 KiB bodies, no cache in the way: how
//!   much a random lookup alone slows down as the entries outgrow the caches.
//! - `scale_threads`: hits per second (criterion's `thrpt`, one element per hit)
//!   on 1 and 2 OS threads sharing one service, each thread on its own
//!   current-thread runtime: `hot_key` (every thread on one URL: the worst case,
//!   one entry's reference count and one shard's lock) and `own_keys` (each thread
//!   on its own 10k URLs). On two cores, two threads would ideally do twice the
//!   hits per second of one.
//!
//! Every measured request must be a hit: the inner service counts its calls and
//! each benchmark asserts afterwards that it was not called again.
//!
//! `cargo bench --bench scale` runs all three (about three minutes, up to 2.5 GiB
//! of heap at 1M entries); `-- scale_memory`, `-- scale_hit` or `-- scale_threads` one of
//! them. The memory lines print whenever the filter is empty or part of
//! `scale_memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::OnceCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use tower::{Layer, Service};
use tower_response_cache::backend::MemoryBackend;
use tower_response_cache::{CacheLayer, ResponseBody};
use xxhash_rust::xxh3::xxh3_128;

mod common;
use common::fetch;

/// Counts live heap bytes and blocks (and blocks by size) while [`COUNTING`] is
/// on. Only differences taken inside one counting window are read, and every
/// allocation, free and reallocation in the window is counted, so they are
/// exact; off, the allocator costs one relaxed load (no shared writes to skew
/// the threaded benchmarks).
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);
/// Live blocks by requested size; the last slot counts every larger block.
static BY_SIZE: [AtomicUsize; SIZE_SLOTS] = [const { AtomicUsize::new(0) }; SIZE_SLOTS];
const SIZE_SLOTS: usize = 4097;

fn counted_alloc(size: usize) {
    LIVE_BYTES.fetch_add(size, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
    BY_SIZE[size.min(SIZE_SLOTS - 1)].fetch_add(1, Ordering::Relaxed);
}

fn counted_free(size: usize) {
    LIVE_BYTES.fetch_sub(size, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    BY_SIZE[size.min(SIZE_SLOTS - 1)].fetch_sub(1, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

// SAFETY: every call is forwarded unchanged to `System`; the counters are only
// bookkeeping.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
            counted_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
            counted_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            counted_free(layout.size());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() && COUNTING.load(Ordering::Relaxed) {
            counted_free(layout.size());
            counted_alloc(new_size);
        }
        new
    }
}

/// Live bytes and blocks now. The atomics wrap, so a window that frees more than
/// it allocates still gives the right (negative) difference.
fn live() -> (usize, usize) {
    (
        LIVE_BYTES.load(Ordering::Relaxed),
        LIVE_BLOCKS.load(Ordering::Relaxed),
    )
}

fn by_size() -> Vec<usize> {
    BY_SIZE.iter().map(|n| n.load(Ordering::Relaxed)).collect()
}

/// `after - before` of a wrapping counter, signed.
fn delta(before: usize, after: usize) -> f64 {
    #[allow(clippy::cast_possible_wrap, reason = "a wrapping difference")]
    let d = after.wrapping_sub(before) as isize;
    d as f64
}

const HOST: &str = "bench.example";
/// The start of the `Cache-Status` value of a hit (src/cache_status.rs).
const HIT: &str = "tower-response-cache; hit";
const MEMORY_SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const HIT_SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// URLs per thread in `scale_threads/own_keys`.
const THREAD_KEYS: usize = 10_000;

/// An inner service answering every request with `body(path)`, `content-type`
/// and `cache-control: max-age=3600`, and counting its calls.
fn origin<F>(
    calls: Arc<AtomicUsize>,
    body: F,
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static
where
    F: Fn(&str) -> Bytes + Clone + Send + 'static,
{
    tower::service_fn(move |req: Request<Full<Bytes>>| {
        calls.fetch_add(1, Ordering::Relaxed);
        let mut res = Response::new(Full::new(body(req.uri().path())));
        res.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        res.headers_mut()
            .insert("cache-control", HeaderValue::from_static("max-age=3600"));
        std::future::ready(Ok::<_, Infallible>(res))
    })
}

/// 100 bytes made of the path repeated: distinct per URL, a new buffer per call.
fn distinct_body(path: &str) -> Bytes {
    let path = path.as_bytes();
    Bytes::from((0..100).map(|i| path[i % path.len()]).collect::<Vec<u8>>())
}

/// A backend that evicts nothing at these sizes: no count limit that matters,
/// 1 TiB of bytes (each value weighs what the backend estimates, not a floor).
fn roomy_backend() -> MemoryBackend {
    MemoryBackend::builder()
        .max_entries(u64::MAX)
        .max_bytes(1 << 40)
        .build()
}

fn request(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", HOST)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

fn is_hit(res: &Response<Bytes>) -> bool {
    res.headers()
        .get("cache-status")
        .is_some_and(|v| v.as_bytes().starts_with(HIT.as_bytes()))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Fisher-Yates with a fixed LCG: the same order on every run.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        #[allow(clippy::cast_possible_truncation, reason = "31 bits")]
        let j = ((seed >> 33) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

// ---------------------------------------------------------------------------
// scale_memory

struct MemoryFigures {
    entries: usize,
    bytes: f64,
    blocks: f64,
    payload: usize,
    weighted: u64,
    settle_rounds: usize,
    /// Requested size and live blocks of that size per entry, largest first,
    /// for the sizes that make up at least a twentieth of a block per entry.
    blocks_by_size: Vec<(usize, f64)>,
}

/// Fills a fresh layer with `n` URLs and measures what stays on the heap.
fn measure_memory(rt: &tokio::runtime::Runtime, n: usize) -> MemoryFigures {
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = roomy_backend();
    let layer = CacheLayer::builder().backend(backend.clone()).build();
    let mut svc = layer.layer(origin(calls.clone(), distinct_body));
    // Reused for every URL, allocated before the window: the bench keeps nothing
    // per URL.
    let mut path = String::with_capacity(64);
    let mut payload = 0usize;

    COUNTING.store(true, Ordering::SeqCst);
    let (bytes_before, blocks_before) = live();
    let sizes_before = by_size();
    rt.block_on(async {
        for i in 0..n {
            path.clear();
            write!(path, "/item/{i}").expect("write");
            let res = fetch(&mut svc, request(&path)).await;
            // What the entry keeps: the body, the headers as sent less the
            // Cache-Status the layer adds to every response, host and path.
            let headers: usize = res
                .headers()
                .iter()
                .filter(|(name, _)| name.as_str() != "cache-status")
                .map(|(name, value)| name.as_str().len() + value.len())
                .sum();
            payload += res.body().len() + headers + HOST.len() + path.len();
        }
    });
    // Rounds of one hit on every URL, as a cache in use serves its entries
    // (a first hit makes an entry's buffer shared: a 24-byte count), until
    // the figure stops moving: the second round, unless something is
    // deferred (with an earlier store, moka, it let bookkeeping and frees
    // settle).
    let mut settle_rounds = 0;
    let mut last = live().0;
    loop {
        settle_rounds += 1;
        backend.entry_count();
        rt.block_on(async {
            for i in 0..n {
                path.clear();
                write!(path, "/item/{i}").expect("write");
                let res = fetch(&mut svc, request(&path)).await;
                assert!(is_hit(&res), "settling: {path} was not a hit");
            }
        });
        backend.entry_count();
        let now = live().0;
        if delta(last, now).abs() <= 1024.0 || settle_rounds == 16 {
            break;
        }
        last = now;
    }
    let (bytes_after, blocks_after) = live();
    let sizes_after = by_size();
    COUNTING.store(false, Ordering::SeqCst);
    let blocks_by_size = sizes_before
        .iter()
        .zip(&sizes_after)
        .enumerate()
        .rev()
        .map(|(size, (&before, &after))| (size, delta(before, after) / n as f64))
        .filter(|(_, per_entry)| per_entry.abs() >= 0.05)
        .collect();

    let stored = backend.entry_count();
    assert!(
        stored == n as u64,
        "scale_memory: {stored} entries held after storing {n} URLs (something was evicted or \
         not stored); the figures would be wrong"
    );
    assert_eq!(
        calls.load(Ordering::Relaxed),
        n,
        "scale_memory: the inner service was called again while settling"
    );
    MemoryFigures {
        entries: n,
        bytes: delta(bytes_before, bytes_after),
        blocks: delta(blocks_before, blocks_after),
        payload,
        weighted: backend.weighted_size(),
        settle_rounds,
        blocks_by_size,
    }
}

fn scale_memory(sizes: &[usize]) {
    let rt = current_thread();
    // Process-wide state made on first use (interned header values, thread
    // locals of tokio, tracing and crossbeam-epoch) comes from a throwaway layer,
    // not from the first measured entries.
    {
        let warm = CacheLayer::builder()
            .backend(roomy_backend())
            .build()
            .layer(origin(Arc::default(), distinct_body));
        rt.block_on(async {
            for round in 0..2 {
                for i in 0..256 {
                    let res = fetch(&mut warm.clone(), request(&format!("/warm/{i}"))).await;
                    assert!(round == 0 || is_hit(&res), "warm-up: no hit");
                }
            }
        });
    }
    println!(
        "scale_memory: live heap per stored response (requested sizes, not allocator \
         overhead); target: fixed overhead under 256 B"
    );
    println!(
        "{:>10}  {:>12}  {:>12}  {:>13}  {:>14}  {:>14}  {:>6}",
        "entries",
        "bytes/entry",
        "allocs/entry",
        "payload/entry",
        "fixed overhead",
        "weight charged",
        "settle"
    );
    for &n in sizes {
        let m = measure_memory(&rt, n);
        let per_entry = m.bytes / m.entries as f64;
        let payload = m.payload as f64 / m.entries as f64;
        println!(
            "{:>10}  {:>12.1}  {:>12.2}  {:>13.1}  {:>14.1}  {:>14.1}  {:>6}",
            m.entries,
            per_entry,
            m.blocks / m.entries as f64,
            payload,
            per_entry - payload,
            m.weighted as f64 / m.entries as f64,
            m.settle_rounds
        );
        let sizes: Vec<String> = m
            .blocks_by_size
            .iter()
            .map(|&(size, per_entry)| {
                let plus = if size == SIZE_SLOTS - 1 { "+" } else { "" };
                format!("{size}{plus} B x{per_entry:.2}")
            })
            .collect();
        println!(
            "{:>10}  live blocks per entry by size: {}",
            "",
            sizes.join(", ")
        );
    }
    println!(
        "  payload = body + stored header names and values + host + path; weight \
         charged = what the byte limit counts per entry (weighted_size / entries)"
    );
}

// ---------------------------------------------------------------------------
// scale_hit

/// A service holding `urls.len()` entries, the URLs in a shuffled order, and the
/// inner service's call count once filled.
struct Filled<S> {
    svc: S,
    urls: Vec<String>,
    calls: Arc<AtomicUsize>,
    filled: usize,
}

impl<S> Filled<S> {
    fn assert_no_miss(&self, bench: &str) {
        assert_eq!(
            self.calls.load(Ordering::Relaxed),
            self.filled,
            "{bench}: a measured request reached the inner service (not a hit)"
        );
    }
}

/// The layer's service over [`origin`], as [`fill`] hands it out.
trait Cached:
    Service<
        Request<Full<Bytes>>,
        Response = Response<ResponseBody<Full<Bytes>>>,
        Error = Infallible,
    > + Clone
    + Send
{
}

impl<S> Cached for S where
    S: Service<
            Request<Full<Bytes>>,
            Response = Response<ResponseBody<Full<Bytes>>>,
            Error = Infallible,
        > + Clone
        + Send
{
}

fn one_kib() -> impl Fn(&str) -> Bytes + Clone + Send + 'static {
    let body = Bytes::from(vec![b'x'; 1024]);
    move |_: &str| body.clone()
}

/// Stores `paths` (in order) through a fresh layer, then shuffles them.
fn fill(
    rt: &tokio::runtime::Runtime,
    mut paths: Vec<String>,
    seed: u64,
) -> Filled<impl Cached + use<>> {
    let calls = Arc::new(AtomicUsize::new(0));
    let backend = roomy_backend();
    let svc = CacheLayer::builder()
        .backend(backend.clone())
        .build()
        .layer(origin(calls.clone(), one_kib()));
    let started = Instant::now();
    rt.block_on(async {
        let mut svc = svc.clone();
        for path in &paths {
            fetch(&mut svc, request(path)).await;
        }
        for path in paths.iter().take(16) {
            let res = fetch(&mut svc, request(path)).await;
            assert!(is_hit(&res), "{path} was not a hit after the fill");
        }
    });
    let filled = calls.load(Ordering::Relaxed);
    let stored = backend.entry_count();
    assert!(
        filled == paths.len() && stored == paths.len() as u64,
        "fill: {filled} inner calls and {stored} entries for {} URLs",
        paths.len()
    );
    eprintln!(
        "filled {} entries in {:.1} s",
        paths.len(),
        started.elapsed().as_secs_f64()
    );
    shuffle(&mut paths, seed);
    Filled {
        svc,
        urls: paths,
        calls,
        filled,
    }
}

/// The number in an `/item/{n}` path.
fn item_id(url: &str) -> u32 {
    url.strip_prefix("/item/")
        .and_then(|n| n.parse().ok())
        .expect("an /item/ path")
}

fn scale_hit(c: &mut Criterion) {
    let rt = current_thread();
    let mut group = c.benchmark_group("scale_hit");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in HIT_SIZES {
        // Filled on first use: a filtered-out size costs nothing.
        let filled = OnceCell::new();
        let get =
            || filled.get_or_init(|| fill(&rt, (0..n).map(|i| format!("/item/{i}")).collect(), 42));

        group.bench_function(BenchmarkId::new("hot_key", n), |b| {
            let f = get();
            let hot = f.urls[0].as_str();
            b.to_async(&rt).iter(|| {
                let mut svc = f.svc.clone();
                async move { fetch(&mut svc, request(hot)).await.body().len() }
            });
            f.assert_no_miss("scale_hit/hot_key");
        });

        group.bench_function(BenchmarkId::new("all_keys", n), |b| {
            let f = get();
            // The shuffled order as numbers, each path written into one reused
            // buffer: a request's URL arrives in a buffer the server just
            // filled, where reading each from its own `String` (allocated in
            // fill order, read shuffled) added a cache miss of the bench's own
            // at every size past the caches.
            let ids: Vec<u32> = f.urls.iter().map(|url| item_id(url)).collect();
            let mut path = String::with_capacity(32);
            let mut next = 0;
            b.to_async(&rt).iter(|| {
                path.clear();
                let _ = write!(path, "/item/{}", ids[next]);
                next = if next + 1 == ids.len() { 0 } else { next + 1 };
                let mut svc = f.svc.clone();
                let req = request(&path);
                async move { fetch(&mut svc, req).await.body().len() }
            });
            f.assert_no_miss("scale_hit/all_keys");
        });
        group.bench_function(BenchmarkId::new("floor_all_keys", n), |b| {
            // What a random lookup costs at this size with no cache at all in
            // the way: the same shuffled paths, written the same way, into a
            // plain map of 1 KiB bodies (each its own block, already shared,
            // as a served entry's buffer is); a lookup clones the body, which
            // reads its count. Two dependent loads per request (the table's
            // slot, the count) where a hit has about five: whatever this adds
            // from 1k to 1M entries, no hit can avoid.

            // The order `fill` shuffles the paths into.
            let mut ids: Vec<u32> = (0..).take(n).collect();
            shuffle(&mut ids, 42);
            let bodies: HashMap<u128, Bytes> = (0..n)
                .map(|i| {
                    let body = Bytes::from(vec![b'x'; 1024]);
                    drop(body.clone());
                    (xxh3_128(format!("/item/{i}").as_bytes()), body)
                })
                .collect();
            let mut path = String::with_capacity(32);
            let mut next = 0;
            b.iter(|| {
                path.clear();
                let _ = write!(path, "/item/{}", ids[next]);
                next = if next + 1 == ids.len() { 0 } else { next + 1 };
                let body = bodies.get(&xxh3_128(path.as_bytes())).cloned();
                body.expect("every path is in the map").len()
            });
        });
        // The entries of this size are dropped before the next is filled.
    }
    group.finish();
}

// ---------------------------------------------------------------------------
// scale_threads

/// `iters` hits on each of `paths.len()` threads (thread `t` cycling over
/// `paths[t]`), all on clones of `svc`; the time from the moment all threads
/// are ready to the last one's end.
fn hits_on_threads<S, B>(svc: &S, paths: &[&[String]], iters: u64) -> Duration
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let ready = Barrier::new(paths.len() + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = paths
            .iter()
            .map(|&own| {
                let mut svc = svc.clone();
                let ready = &ready;
                scope.spawn(move || {
                    let rt = current_thread();
                    ready.wait();
                    rt.block_on(async {
                        let mut next = 0;
                        let mut read = 0;
                        for _ in 0..iters {
                            let path = own[next].as_str();
                            next = if next + 1 == own.len() { 0 } else { next + 1 };
                            read += fetch(&mut svc, request(path)).await.body().len();
                        }
                        std::hint::black_box(read);
                    });
                })
            })
            .collect();
        ready.wait();
        let started = Instant::now();
        for thread in threads {
            thread.join().expect("bench thread");
        }
        started.elapsed()
    })
}

fn scale_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("scale_threads");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    // One layer for all four: `/hot`, then 10k URLs per thread.
    let filled = OnceCell::new();
    let get = || {
        filled.get_or_init(|| {
            let mut paths = vec!["/hot".to_owned()];
            for t in 0..2 {
                paths.extend((0..THREAD_KEYS).map(|i| format!("/t{t}/item/{i}")));
            }
            let mut f = fill(&current_thread(), paths, 7);
            // Back in per-thread sets, each in its own shuffled order.
            f.urls.retain(|p| p != "/hot");
            let own: Vec<Vec<String>> = (0..2)
                .map(|t| {
                    let prefix = format!("/t{t}/");
                    let mut mine: Vec<String> = f
                        .urls
                        .iter()
                        .filter(|p| p.starts_with(&prefix))
                        .cloned()
                        .collect();
                    shuffle(&mut mine, 11 + t);
                    mine
                })
                .collect();
            (f, own)
        })
    };
    let hot = ["/hot".to_owned()];
    for case in ["hot_key", "own_keys"] {
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(threads as u64));
            let label = if threads == 1 {
                "1_thread".to_owned()
            } else {
                format!("{threads}_threads")
            };
            group.bench_function(BenchmarkId::new(case, label), |b| {
                let (f, own) = get();
                let paths: Vec<&[String]> = (0..threads)
                    .map(|t| {
                        if case == "hot_key" {
                            &hot[..]
                        } else {
                            &own[t][..]
                        }
                    })
                    .collect();
                b.iter_custom(|iters| hits_on_threads(&f.svc, &paths, iters));
                f.assert_no_miss("scale_threads");
            });
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------

criterion_group!(benches, scale_hit, scale_threads);

/// Criterion's options that take a value (the next argument is not a filter).
const VALUE_OPTIONS: [&str; 20] = [
    "-c",
    "--color",
    "--colour",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--format",
    "--profile-time",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

/// Whether the memory lines are wanted: not when listing, and only when the
/// filter is empty or part of `scale_memory`. In `--test` mode, 10k entries only.
fn memory_sizes() -> &'static [usize] {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return &[];
    }
    let mut filter = None;
    let mut skip_value = false;
    for arg in &args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if arg.starts_with('-') {
            skip_value = VALUE_OPTIONS.contains(&arg.as_str());
        } else if filter.is_none() {
            filter = Some(arg.as_str());
        }
    }
    if !filter.is_none_or(|f| "scale_memory".contains(f)) {
        &[]
    } else if args.iter().any(|a| a == "--test") {
        &MEMORY_SIZES[..1]
    } else {
        &MEMORY_SIZES
    }
}

fn main() {
    let sizes = memory_sizes();
    if !sizes.is_empty() {
        scale_memory(sizes);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
