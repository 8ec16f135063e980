//! The backend conformance suite for the low-level [`Cache`] API: Django's
//! `BaseCacheTests` (spec §5, §6, B43) as one async fn per test in [`suite`],
//! run against a backend by the `conformance!` macro.
//!
//! Included by each test file that runs it (`#[macro_use] mod conformance;`):
//! `tests/backend_conformance.rs` for the in-process backends (memory, file) and
//! the dummy backend's own expectations, and one file per server backend
//! (`tests/redis_backend.rs`, `tests/memcached_backend.rs`).
//!
//! # Time
//!
//! Every test gets a [`Fixture`]: a fresh cache, a [`TestClock`] and whatever
//! must stay alive for the test. Tests that need time to pass call
//! `clock.advance(d).await`:
//!
//! - local backends read a [`ManualClock`]: `advance` moves it, nothing sleeps,
//!   and the tests use Django's own numbers (1 s timeouts, 30-day jumps);
//! - server backends keep their own clock: `advance` sleeps for real, and only
//!   short waits are allowed (at most [`TestClock::max_real_wait`]). Tests use
//!   shorter timeouts there (half a second, sub-second floats: Redis expires to
//!   the millisecond; 2 s on a whole-second server, see below), and where
//!   real time cannot make the jump (30 days, 10 years, 299 s) they check what
//!   the server can tell now: the value is present and the server's remaining
//!   time to live is right ([`ServerTtl`], read through the fixture's optional
//!   probe). Each such place says so in a comment.
//!
//! # Capabilities
//!
//! Where backends legitimately differ, a server fixture declares how its backend
//! behaves ([`Capabilities`], through [`Fixture::with_capabilities`]); the
//! defaults are those of the memory, file and Redis backends. The tests that
//! depend on a flag assert the declared behaviour instead, never nothing:
//!
//! - `whole_second_ttl` (Memcached): times to live are whole seconds, rounded
//!   up, on a server clock that ticks once a second, so a value lives between
//!   one second less and its full timeout. The short-expiry tests use a 2 s
//!   timeout, check that the value is still there at 0.5 s and gone at 3.1 s
//!   ([`TestClock::short_expiry`]), and TTLs read through the probe are whole
//!   seconds.
//! - `unsigned_counters` (Memcached): `decr` below zero stops at 0.
//! - `rejects_invalid_keys` (a [`KeyPolicy::Reject`] backend, Memcached): keys
//!   Memcached cannot store are refused with [`CacheError::InvalidKey`] by every
//!   operation, where other backends store them and log a warning. The suite
//!   checks that the flag agrees with the backend's `key_policy`.
//!
//! # Running it for a new server backend
//!
//! ```ignore
//! #[macro_use]
//! mod conformance;
//! use conformance::{Capabilities, Fixture, ServerTtl, TtlProbe};
//!
//! fn my_cache() -> BoxFuture<'static, Fixture> {
//!     Box::pin(async {
//!         let server = start_or_share_a_server();      // kept alive by the fixture
//!         let backend = MyBackend::builder(&server.url())
//!             .namespace(fresh_namespace())            // no test sees another's keys
//!             .build()
//!             .await
//!             .unwrap();
//!         // Optional: how long the server will keep a key (the key as the
//!         // backend receives it, before the backend's own prefix).
//!         let probe: Option<TtlProbe> = Some(Arc::new(move |key: String| {
//!             Box::pin(async move { ServerTtl::Missing }) // ask the server
//!         }));
//!         Fixture::server(Cache::new(backend), probe, Box::new(server))
//!             // Only where the backend differs from the defaults:
//!             .with_capabilities(Capabilities {
//!                 whole_second_ttl: true,
//!                 ..Capabilities::default()
//!             })
//!     })
//! }
//!
//! conformance!(my_backend, my_cache);
//! // or, with backend-specific tests in the same module:
//! conformance!(my_backend, my_cache, extra { #[tokio::test] async fn t() {} });
//! ```
//!
//! `tests/redis_backend.rs` is a complete example: a `redis-server` on a free
//! port, shared by the tests and killed with the last one, a namespace per test
//! and `PTTL` as the probe; `tests/memcached_backend.rs` is one with
//! capabilities (and a server per test, since Memcached has no namespaces).
//! The macro makes a module at the crate root named after its first argument,
//! which shadows a crate of that name there: `conformance!(redis, ..)` means
//! the redis crate must be written `::redis`.
//!
//! The suite ends with the sets of `Backend::set_add` / `set_take` (the
//! response cache's tag index), called on the backend directly with keys the
//! cache makes.
//!
//! A server suite should stay under about 30 s: the waits add up to a few
//! seconds, spread over the test threads (about 20 s of them with
//! `whole_second_ttl`).
#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower_response_cache::backend::{Backend, BackendError, BoxFuture, KeyPolicy, Ttl};
use tower_response_cache::{Cache, CacheBuilder, CacheError, CacheKey, ManualClock, Timeout};
use tracing::instrument::WithSubscriber;

// ---------------------------------------------------------------------------
// Fixtures and time
// ---------------------------------------------------------------------------

/// Makes a fresh fixture for one test.
pub type Make = fn() -> BoxFuture<'static, Fixture>;

/// What one test runs against.
pub struct Fixture {
    /// A cache over a backend that holds nothing yet (for a server backend: a
    /// namespace no other test uses).
    pub cache: Cache,
    /// How the test lets time pass.
    pub clock: TestClock,
    /// Kept alive until the test ends (a temporary directory, a server).
    pub keep: Keep,
    /// How the backend differs from the in-process ones, where the suite must
    /// know.
    pub caps: Capabilities,
}

impl Fixture {
    /// A fixture for a backend with its own clock (a server): time passes for
    /// real, and `ttl`, when given, reads the server's remaining time to live.
    /// The backend behaves as the defaults of [`Capabilities`] say, unless
    /// [`with_capabilities`](Self::with_capabilities) says otherwise.
    pub fn server(cache: Cache, ttl: Option<TtlProbe>, keep: Keep) -> Self {
        Fixture {
            cache,
            clock: TestClock::Real {
                ttl,
                whole_seconds: false,
            },
            keep,
            caps: Capabilities::default(),
        }
    }

    /// Declares where the backend differs from the defaults.
    pub fn with_capabilities(mut self, caps: Capabilities) -> Self {
        if let TestClock::Real { whole_seconds, .. } = &mut self.clock {
            *whole_seconds = caps.whole_second_ttl;
        }
        assert!(
            !caps.whole_second_ttl || self.clock.is_real(),
            "whole-second TTLs are a server's: a manual clock has no ticks"
        );
        self.caps = caps;
        self
    }
}

/// What a server backend declares about itself where backends legitimately
/// differ. Every flag defaults to `false`: the behaviour of the memory, file
/// and Redis backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Times to live are whole seconds, rounded up, on a server clock that
    /// ticks once a second, so a value may expire up to a second early (and,
    /// read against real time, a little late): Memcached. Expiry tests use
    /// timeouts of 2 s and check at 0.5 s and 3.1 s.
    pub whole_second_ttl: bool,
    /// Counters are unsigned: `decr` below zero stops at 0 instead of going
    /// negative (Memcached's `decr`, as Django's Memcached backends have it).
    pub unsigned_counters: bool,
    /// The backend's [`KeyPolicy`] is `Reject`: keys Memcached cannot store are
    /// refused with [`CacheError::InvalidKey`] by every operation, instead of
    /// stored with a warning (Django's `BaseMemcachedTests` expect
    /// `InvalidCacheKey`).
    pub rejects_invalid_keys: bool,
}

/// A fixture for an in-process backend that reads the given [`ManualClock`].
pub fn local(make: impl FnOnce(&ManualClock) -> (Cache, Keep)) -> BoxFuture<'static, Fixture> {
    let clock = new_clock();
    let (cache, keep) = make(&clock);
    Box::pin(std::future::ready(Fixture {
        cache,
        clock: TestClock::Manual(clock),
        keep,
        caps: Capabilities::default(),
    }))
}

/// What a server says about a key's expiry (Redis `PTTL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerTtl {
    /// The server holds no such key.
    Missing,
    /// The key never expires.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// Reads the server's [`ServerTtl`] of a key, given as the backend receives it
/// (after the cache's key function, before the backend's namespace).
pub type TtlProbe = Arc<dyn Fn(String) -> BoxFuture<'static, ServerTtl> + Send + Sync>;

/// The longest real wait a server suite may ask for.
pub const MAX_REAL_WAIT: Duration = Duration::from_secs(2);

/// The longest real wait on a server with whole-second times to live (whose
/// values need a second more to be surely gone).
pub const MAX_WHOLE_SECOND_WAIT: Duration = Duration::from_secs(3);

/// How a test watches a value expire: the timeout to set it with, when to
/// check that it is still there, and how much longer to wait until it must be
/// gone.
#[derive(Debug, Clone, Copy)]
pub struct ShortExpiry {
    /// The timeout, in seconds.
    pub timeout: f64,
    /// From the set to the check that the value is still present.
    pub present_at: Duration,
    /// From that check to the one that it is gone.
    pub gone_after: Duration,
}

/// How a test lets time pass.
#[derive(Clone)]
pub enum TestClock {
    /// The backend reads this clock: time jumps.
    Manual(ManualClock),
    /// The backend (a server) has its own clock: time passes for real.
    Real {
        /// Reads the server's remaining time to live, if the backend can tell.
        ttl: Option<TtlProbe>,
        /// The server keeps times to live in whole seconds on a clock that
        /// ticks once a second ([`Capabilities::whole_second_ttl`]).
        whole_seconds: bool,
    },
}

impl TestClock {
    /// Whether time passes for real (a server backend).
    pub fn is_real(&self) -> bool {
        matches!(self, TestClock::Real { .. })
    }

    /// `local` on a manual clock, `real` in real time: the numbers a test uses.
    pub fn pick<T>(&self, local: T, real: T) -> T {
        if self.is_real() { real } else { local }
    }

    /// Whether the server keeps whole seconds on a once-a-second clock.
    pub fn is_whole_seconds(&self) -> bool {
        matches!(
            self,
            TestClock::Real {
                whole_seconds: true,
                ..
            }
        )
    }

    /// A timeout to watch a value expire:
    ///
    /// - manual clock: Django's 1 s timeout, still there at 0.5 s, gone at 2 s;
    /// - real time to the millisecond (Redis): 0.5 s, checked right away and
    ///   gone at 0.6 s;
    /// - whole seconds (Memcached): 2 s, which lives between 1 s and 2 s and a
    ///   tick, so still there at 0.5 s and surely gone at 3.1 s.
    pub fn short_expiry(&self) -> ShortExpiry {
        let (timeout, present_at, gone_after) = if self.is_whole_seconds() {
            (2.0, ms(500), ms(2600))
        } else {
            self.pick((1.0, ms(500), ms(1500)), (0.5, ms(0), ms(600)))
        };
        ShortExpiry {
            timeout,
            present_at,
            gone_after,
        }
    }

    /// The longest single real wait allowed: [`MAX_REAL_WAIT`], or
    /// [`MAX_WHOLE_SECOND_WAIT`] on a whole-second server.
    pub fn max_real_wait(&self) -> Duration {
        if self.is_whole_seconds() {
            MAX_WHOLE_SECOND_WAIT
        } else {
            MAX_REAL_WAIT
        }
    }

    /// Lets `by` pass: moves a manual clock, sleeps in real time (where only
    /// waits up to [`TestClock::max_real_wait`] are allowed: check longer ones
    /// through [`TestClock::server_ttl`] instead).
    pub async fn advance(&self, by: Duration) {
        match self {
            TestClock::Manual(clock) => clock.advance(by),
            TestClock::Real { .. } => {
                let max = self.max_real_wait();
                assert!(
                    by <= max,
                    "a real-time suite cannot wait {by:?} (at most {max:?}): check the \
                     server's TTL instead"
                );
                if !by.is_zero() {
                    tokio::time::sleep(by).await;
                }
            }
        }
    }

    /// The server's view of `key`'s expiry (the key as given to the cache, with
    /// its default version), or `None` when there is no server or no probe.
    pub async fn server_ttl(&self, cache: &Cache, key: &str) -> Option<ServerTtl> {
        match self {
            TestClock::Real {
                ttl: Some(probe), ..
            } => {
                let made = cache.make_key(key, None).expect("make_key");
                Some(probe(made).await)
            }
            _ => None,
        }
    }
}

/// Real time: `key` is present and the server drops it after between `low` and
/// `high` from now (without a probe: only that it is present).
pub async fn assert_expires_within(
    clock: &TestClock,
    cache: &Cache,
    key: &str,
    low: Duration,
    high: Duration,
) {
    assert!(has(cache, key).await, "{key} is not present");
    match clock.server_ttl(cache, key).await {
        None => {}
        // `+ 1 s`: a server's own clock may lag the wall clock by up to a
        // second (memcached's ticks once a second), which adds to what it
        // says is left of an absolute expiry.
        Some(ServerTtl::Expires(left)) => assert!(
            low <= left && left <= high + Duration::from_secs(1),
            "{key} expires in {left:?}, expected {low:?}..={high:?}"
        ),
        Some(other) => panic!("{key}: expected a TTL of {low:?}..={high:?}, server says {other:?}"),
    }
}

/// A whole-second server: `key`, set through `cache` for `timeout` seconds,
/// is kept for `expected` whole seconds (without a probe: only that it is
/// present). The server reads `expected` right after the set, or one second
/// less if its clock ticked in between: the key is set again (at most three
/// times) until a read falls within one tick.
pub async fn assert_whole_second_ttl(
    clock: &TestClock,
    cache: &Cache,
    key: &str,
    timeout: f64,
    expected: u64,
) {
    let mut seen = Vec::new();
    for _ in 0..3 {
        cache.set_for(key, "whole", timeout).await.expect("set_for");
        assert!(has(cache, key).await, "{key} is not present");
        match clock.server_ttl(cache, key).await {
            None => return,
            Some(ServerTtl::Expires(left)) => {
                assert!(
                    left == secs(expected) || left == secs(expected - 1),
                    "{key} set for {timeout} s expires in {left:?}, expected {expected} s \
                     (or a tick less)"
                );
                seen.push(left);
                if left == secs(expected) {
                    return;
                }
            }
            Some(other) => panic!("{key}: expected a TTL of {expected} s, server says {other:?}"),
        }
    }
    panic!("{key} set for {timeout} s never read {expected} s: {seen:?}");
}

/// Real time: `key` is present and the server never drops it (without a probe:
/// only that it is present).
pub async fn assert_persistent(clock: &TestClock, cache: &Cache, key: &str) {
    assert!(has(cache, key).await, "{key} is not present");
    if let Some(ttl) = clock.server_ttl(cache, key).await {
        assert_eq!(ttl, ServerTtl::Persistent, "{key}");
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Whatever a backend needs kept alive for the length of a test (the file
/// backend's temporary directory); `()` for in-memory backends.
pub type Keep = Box<dyn Any + Send>;

pub const DAY: u64 = 24 * 60 * 60;
/// Django's "30 days + 1 second" (memcached's absolute-timestamp threshold).
pub const THIRTY_DAYS_AND_A_SECOND: u64 = 30 * DAY + 1;

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn new_clock() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + secs(1_700_000_000))
}

/// Another cache over the same backend (Django's extra aliases with the same
/// LOCATION: `prefix`, `v2`, `custom_key`).
pub fn shared(cache: &Cache) -> CacheBuilder {
    Cache::builder_shared(cache.backend().clone())
}

pub fn map<V>(pairs: impl IntoIterator<Item = (&'static str, V)>) -> HashMap<String, V> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub async fn get_str(cache: &Cache, key: impl CacheKey) -> Option<String> {
    cache.get(key).await.expect("get::<String>")
}

pub async fn get_int(cache: &Cache, key: impl CacheKey) -> Option<i64> {
    cache.get(key).await.expect("get::<i64>")
}

pub async fn has(cache: &Cache, key: impl CacheKey) -> bool {
    cache.has_key(key).await.expect("has_key")
}

#[track_caller]
pub fn assert_key_not_found<T: fmt::Debug>(result: Result<T, CacheError>, key: &str) {
    match result {
        Err(CacheError::KeyNotFound(k)) => assert_eq!(k, key),
        other => panic!("expected CacheError::KeyNotFound({key:?}), got {other:?}"),
    }
}

#[track_caller]
pub fn assert_not_an_integer<T: fmt::Debug>(result: Result<T, CacheError>, key: &str) {
    match result {
        Err(CacheError::NotAnInteger(k)) => assert_eq!(k, key),
        other => panic!("expected CacheError::NotAnInteger({key:?}), got {other:?}"),
    }
}

#[track_caller]
pub fn assert_invalid_key<T: fmt::Debug>(result: Result<T, CacheError>, made: &str, op: &str) {
    match result {
        Err(CacheError::InvalidKey { key, .. }) => assert_eq!(key, made, "{op}"),
        other => panic!("{op}: expected CacheError::InvalidKey({made:?}), got {other:?}"),
    }
}

#[track_caller]
pub fn assert_decode<T: fmt::Debug>(result: Result<T, CacheError>, key: &str) {
    match result {
        Err(CacheError::Decode { key: k, .. }) => assert_eq!(k, key),
        other => panic!("expected CacheError::Decode for {key:?}, got {other:?}"),
    }
}

/// Stores `value` under `key` and reads it back as the same type.
pub async fn assert_round_trip<T>(cache: &Cache, key: &str, value: T)
where
    T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
{
    cache.set(key, &value).await.expect("set");
    let back: Option<T> = cache.get(key).await.expect("get");
    assert_eq!(back, Some(value), "round trip of {key:?}");
}

/// A tracing subscriber that records WARN events as `field=value` text, to see
/// the key warnings Django raises as `CacheKeyWarning`.
#[derive(Clone, Default)]
pub struct WarnLog {
    warnings: Arc<Mutex<Vec<String>>>,
}

impl WarnLog {
    pub fn len(&self) -> usize {
        self.warnings.lock().unwrap().len()
    }

    pub fn since(&self, from: usize) -> Vec<String> {
        self.warnings.lock().unwrap()[from..].to_vec()
    }

    /// Runs `fut` under this subscriber and asserts that it logged at least one
    /// warning naming `made` (the key after the key function).
    pub async fn expect_warning<F: Future>(&self, made: &str, op: &str, fut: F) -> F::Output {
        let before = self.len();
        let out = fut.with_subscriber(self.clone()).await;
        let new = self.since(before);
        assert!(
            new.iter().any(|w| w.contains(made)),
            "{op}: expected a warning naming {made:?}, got {new:?}"
        );
        out
    }
}

struct FieldText(String);

impl tracing::field::Visit for FieldText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for WarnLog {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = FieldText(String::new());
            event.record(&mut text);
            self.warnings.lock().unwrap().push(text.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A backend whose `add` always loses, as if another process added first and
/// the value vanished before the re-read (Django mocks `add` to return False in
/// `test_get_or_set_racing`).
#[derive(Debug)]
struct AddAlwaysLoses(Arc<dyn Backend>);

impl Backend for AddAlwaysLoses {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
        self.0.get(key)
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        self.0.set(key, value, ttl)
    }
    fn add<'a>(
        &'a self,
        _key: &'a str,
        _value: Bytes,
        _ttl: Ttl,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async { Ok(false) })
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        self.0.delete(key)
    }
    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> BoxFuture<'a, Result<bool, BackendError>> {
        self.0.touch(key, ttl)
    }
    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64, BackendError>> {
        self.0.incr(key, delta)
    }
    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        self.0.clear()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    Unit,
    Newtype(String),
    Tuple(i8, u16),
    Struct { x: f64, y: Option<bool> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit;

/// Django's `stuff` dict of test_data_types, as a struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stuff {
    pub string: String,
    pub int: i64,
    pub boolean: bool,
    pub list: Vec<i32>,
    pub tuple: (i32, i32, i32, i32),
    pub dict: HashMap<String, i32>,
    pub ordered: BTreeMap<u8, String>,
    pub maybe: Option<u64>,
    pub kinds: Vec<Kind>,
    pub child: Option<Box<Stuff>>,
}

pub fn stuff() -> Stuff {
    Stuff {
        string: "this is a string".into(),
        int: 42,
        boolean: true,
        list: vec![1, 2, 3, 4],
        tuple: (1, 2, 3, 4),
        dict: map([("A", 1), ("B", 2)]),
        ordered: [(1, "one".to_owned()), (2, "two".to_owned())].into(),
        maybe: None,
        kinds: vec![
            Kind::Unit,
            Kind::Newtype("n".into()),
            Kind::Tuple(-1, 65535),
            Kind::Struct {
                x: 0.5,
                y: Some(false),
            },
        ],
        child: Some(Box::new(Stuff {
            string: String::new(),
            int: -1,
            boolean: false,
            list: Vec::new(),
            tuple: (0, 0, 0, 0),
            dict: HashMap::new(),
            ordered: BTreeMap::new(),
            maybe: Some(u64::MAX),
            kinds: Vec::new(),
            child: None,
        })),
    }
}

// ---------------------------------------------------------------------------
// The suite: one async fn per Django BaseCacheTests test, run by
// `conformance!` against each backend.
// ---------------------------------------------------------------------------

pub mod suite {
    use super::*;

    pub async fn test_simple(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        cache.set("key", "value").await.unwrap();
        assert_eq!(get_str(&cache, "key").await.as_deref(), Some("value"));
        // Overwriting replaces.
        cache.set("key", "other").await.unwrap();
        assert_eq!(get_str(&cache, "key").await.as_deref(), Some("other"));
    }

    pub async fn test_default_used_when_none_is_set(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        // A cached None is returned instead of the default.
        cache
            .set("key_default_none", &None::<String>)
            .await
            .unwrap();
        let got: Option<String> = cache
            .get_or("key_default_none", Some("default".to_owned()))
            .await
            .unwrap();
        assert_eq!(got, None);
        // A missing key gives the default.
        let got: Option<String> = cache
            .get_or("missing", Some("default".to_owned()))
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("default"));
    }

    pub async fn test_add(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        assert!(cache.add("addkey1", "value").await.unwrap());
        assert!(!cache.add("addkey1", "newvalue").await.unwrap());
        assert_eq!(get_str(&cache, "addkey1").await.as_deref(), Some("value"));
    }

    pub async fn test_prefix(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let prefixed = shared(&cache).key_prefix("cacheprefix").build();
        cache.set("somekey", "value").await.unwrap();
        // Not visible through the prefixed cache.
        assert!(!has(&prefixed, "somekey").await);
        assert_eq!(get_str(&prefixed, "somekey").await, None);
        prefixed.set("somekey", "value2").await.unwrap();
        assert_eq!(get_str(&cache, "somekey").await.as_deref(), Some("value"));
        assert_eq!(
            get_str(&prefixed, "somekey").await.as_deref(),
            Some("value2")
        );
        // Deleting through one leaves the other.
        assert!(prefixed.delete("somekey").await.unwrap());
        assert_eq!(get_str(&cache, "somekey").await.as_deref(), Some("value"));
    }

    pub async fn test_non_existent(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        assert_eq!(get_str(&cache, "does_not_exist").await, None);
        let got: String = cache
            .get_or("does_not_exist", "bang!".to_owned())
            .await
            .unwrap();
        assert_eq!(got, "bang!");
    }

    pub async fn test_get_many(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        for (k, v) in [("a", "a"), ("b", "b"), ("c", "c"), ("d", "d")] {
            cache.set(k, v).await.unwrap();
        }
        let got: HashMap<String, String> = cache.get_many(["a", "c", "d"]).await.unwrap();
        assert_eq!(
            got,
            map([("a", "a".into()), ("c", "c".into()), ("d", "d".into())])
        );
        // Missing keys are left out.
        let got: HashMap<String, String> = cache.get_many(["a", "b", "e"]).await.unwrap();
        assert_eq!(got, map([("a", "a".into()), ("b", "b".into())]));
        // Any iterator of keys.
        let got: HashMap<String, String> = cache
            .get_many(vec!["a".to_owned(), "e".to_owned()])
            .await
            .unwrap();
        assert_eq!(got, map([("a", "a".into())]));
        // No keys, nothing found.
        let got: HashMap<String, String> = cache.get_many(Vec::<&str>::new()).await.unwrap();
        assert!(got.is_empty());
        // Stored Nones are included.
        cache.set("null", &None::<String>).await.unwrap();
        let got: HashMap<String, Option<String>> =
            cache.get_many(["null", "missing"]).await.unwrap();
        assert_eq!(got, map([("null", None)]));
        // Keys with versions: found by the key as given.
        cache.set(("v", 2), &2).await.unwrap();
        cache.set("v", &1).await.unwrap();
        let got: HashMap<String, i32> = cache.get_many([("v", 2), ("w", 2)]).await.unwrap();
        assert_eq!(got, map([("v", 2)]));
        let got: HashMap<String, i32> = cache.get_many([("v", 1), ("v", 3)]).await.unwrap();
        assert_eq!(got, map([("v", 1)]));
    }

    pub async fn test_delete(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let failed = cache
            .set_many([("key1", "spam"), ("key2", "eggs")], Timeout::Default)
            .await
            .unwrap();
        assert!(failed.is_empty());
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("spam"));
        assert!(cache.delete("key1").await.unwrap());
        assert_eq!(get_str(&cache, "key1").await, None);
        assert_eq!(get_str(&cache, "key2").await.as_deref(), Some("eggs"));
        // Deleting again finds nothing.
        assert!(!cache.delete("key1").await.unwrap());
    }

    pub async fn test_delete_nonexistent(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        assert!(!cache.delete("nonexistent_key").await.unwrap());
    }

    pub async fn test_has_key(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        cache.set("hello1", "goodbye1").await.unwrap();
        assert!(has(&cache, "hello1").await);
        assert!(!has(&cache, "goodbye1").await);
        cache
            .set_for("no_expiry", "here", Timeout::Never)
            .await
            .unwrap();
        assert!(has(&cache, "no_expiry").await);
        // A stored None counts as present.
        cache.set("null", &None::<i32>).await.unwrap();
        assert!(has(&cache, "null").await);
        let got: Option<Option<i32>> = cache.get("null").await.unwrap();
        assert_eq!(got, Some(None));
    }

    pub async fn test_incr(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        cache.set("answer", &41).await.unwrap();
        assert_eq!(cache.incr("answer", 1).await.unwrap(), 42);
        assert_eq!(get_int(&cache, "answer").await, Some(42));
        assert_eq!(cache.incr("answer", 10).await.unwrap(), 52);
        assert_eq!(get_int(&cache, "answer").await, Some(52));
        assert_eq!(cache.incr("answer", -10).await.unwrap(), 42);
        // The result reads back as any integer type that fits.
        let as_u8: Option<u8> = cache.get("answer").await.unwrap();
        assert_eq!(as_u8, Some(42));

        assert_key_not_found(cache.incr("does_not_exist", 1).await, "does_not_exist");
        assert_key_not_found(cache.incr("does_not_exist", -1).await, "does_not_exist");
        assert_eq!(get_int(&cache, "does_not_exist").await, None);

        // Values that are not integers.
        cache.set("string", "abc").await.unwrap();
        assert_not_an_integer(cache.incr("string", 1).await, "string");
        cache.set("digits", "12").await.unwrap();
        assert_not_an_integer(cache.incr("digits", 1).await, "digits");
        assert_eq!(get_str(&cache, "digits").await.as_deref(), Some("12"));
        cache.set("float", &1.5f64).await.unwrap();
        assert_not_an_integer(cache.incr("float", 1).await, "float");
        cache.set("null", &None::<i64>).await.unwrap();
        assert_not_an_integer(cache.incr("null", 1).await, "null");
        // Overflow is refused and leaves the value alone.
        cache.set("max", &i64::MAX).await.unwrap();
        assert_not_an_integer(cache.incr("max", 1).await, "max");
        assert_eq!(get_int(&cache, "max").await, Some(i64::MAX));
    }

    /// Django's locmem `test_incr_decr_timeout`: `incr` keeps the expiry.
    pub async fn test_incr_decr_timeout(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        // Django's 10 s timeout, incr at 5 s, checks at 9 s and 11 s. Real time:
        // 1 s, incr at 0.5 s, checks at 0.7 s and 1.1 s (a timeout restarted by
        // the incr would last until 1.5 s).
        let (ttl, to_incr, to_check, to_gone) = clock.pick(
            (10.0, secs(5), secs(4), secs(2)),
            (1.0, ms(500), ms(200), ms(400)),
        );
        cache.set_for("counter", &1, ttl).await.unwrap();
        cache.set_for("down", &10, ttl).await.unwrap();
        clock.advance(to_incr).await;
        assert_eq!(cache.incr("counter", 1).await.unwrap(), 2);
        assert_eq!(cache.decr("down", 1).await.unwrap(), 9);
        clock.advance(to_check).await;
        assert_eq!(get_int(&cache, "counter").await, Some(2));
        assert_eq!(get_int(&cache, "down").await, Some(9));
        // 11 s after the set: gone, as the original 10 s said (not 300 s, and not
        // 10 s from the incr).
        clock.advance(to_gone).await;
        assert_eq!(get_int(&cache, "counter").await, None);
        assert_eq!(get_int(&cache, "down").await, None);
        assert_key_not_found(cache.incr("counter", 1).await, "counter");
    }

    pub async fn test_decr(make: Make) {
        let Fixture {
            cache,
            caps,
            keep: _keep,
            ..
        } = make().await;
        cache.set("answer", &43).await.unwrap();
        assert_eq!(cache.decr("answer", 1).await.unwrap(), 42);
        assert_eq!(get_int(&cache, "answer").await, Some(42));
        assert_eq!(cache.decr("answer", 10).await.unwrap(), 32);
        assert_eq!(get_int(&cache, "answer").await, Some(32));
        assert_eq!(cache.decr("answer", -10).await.unwrap(), 42);
        if caps.unsigned_counters {
            // Memcached's counters are unsigned: its `decr` stops at 0 rather
            // than reaching 42 - 50 = -8 (as with Django's Memcached backends).
            assert_eq!(cache.decr("answer", 50).await.unwrap(), 0);
            assert_eq!(get_int(&cache, "answer").await, Some(0));
            // It stays at 0, and counts up from there.
            assert_eq!(cache.decr("answer", 1).await.unwrap(), 0);
            assert_eq!(cache.incr("answer", 5).await.unwrap(), 5);
            assert_eq!(get_int(&cache, "answer").await, Some(5));
        } else {
            assert_eq!(cache.decr("answer", 50).await.unwrap(), -8);
            assert_eq!(get_int(&cache, "answer").await, Some(-8));
        }
        assert_key_not_found(cache.decr("does_not_exist", 1).await, "does_not_exist");
        cache.set("string", "abc").await.unwrap();
        assert_not_an_integer(cache.decr("string", 1).await, "string");
        cache.set("min", &i64::MIN).await.unwrap();
        assert_not_an_integer(cache.decr("min", 1).await, "min");
        assert_eq!(get_int(&cache, "min").await, Some(i64::MIN));
    }

    pub async fn test_close(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        cache.set("before", "closing").await.unwrap();
        cache.close().await.unwrap();
        // Still usable after close (Django calls it at the end of each request).
        assert_eq!(get_str(&cache, "before").await.as_deref(), Some("closing"));
        cache.set("after", "closing").await.unwrap();
        assert_eq!(get_str(&cache, "after").await.as_deref(), Some("closing"));
        cache.close().await.unwrap();
        cache.close().await.unwrap();
        assert!(has(&cache, "after").await);
    }

    pub async fn test_data_types(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        // Keys without spaces, which Memcached refuses (Django's keys here have
        // none either).
        assert_round_trip(&cache, "data", stuff()).await;
        assert_round_trip(&cache, "string", "this is a string".to_owned()).await;
        assert_round_trip(&cache, "empty-string", String::new()).await;
        // Strings that look like integers stay strings.
        assert_round_trip(&cache, "digits", "12345".to_owned()).await;
        assert_round_trip(&cache, "negative-digits", "-7".to_owned()).await;
        assert_round_trip(&cache, "int", 42i32).await;
        assert_round_trip(&cache, "zero", 0i64).await;
        assert_round_trip(&cache, "i64-min", i64::MIN).await;
        assert_round_trip(&cache, "i64-max", i64::MAX).await;
        assert_round_trip(&cache, "u64-max", u64::MAX).await;
        assert_round_trip(&cache, "i128-min", i128::MIN).await;
        assert_round_trip(&cache, "u128-max", u128::MAX).await;
        assert_round_trip(&cache, "i8-min", i8::MIN).await;
        assert_round_trip(&cache, "true", true).await;
        assert_round_trip(&cache, "false", false).await;
        assert_round_trip(&cache, "f64", 1.5f64).await;
        assert_round_trip(&cache, "f64-negative", -0.25f64).await;
        assert_round_trip(&cache, "f64-max", f64::MAX).await;
        assert_round_trip(&cache, "f64-tiny", f64::MIN_POSITIVE).await;
        assert_round_trip(&cache, "f64-inf", f64::NEG_INFINITY).await;
        assert_round_trip(&cache, "f32", 3.25f32).await;
        assert_round_trip(&cache, "char", '清').await;
        assert_round_trip(&cache, "list", vec![1, 2, 3, 4]).await;
        assert_round_trip(&cache, "empty-list", Vec::<String>::new()).await;
        assert_round_trip(&cache, "nested", vec![vec!["a".to_owned()], vec![]]).await;
        assert_round_trip(&cache, "tuple", (1u8, "two".to_owned(), 3.0f64)).await;
        assert_round_trip(&cache, "dict", map([("A", 1), ("B", 2)])).await;
        assert_round_trip(&cache, "none", None::<i32>).await;
        assert_round_trip(&cache, "some", Some(5)).await;
        assert_round_trip(&cache, "some-none", Some(None::<i32>)).await;
        assert_round_trip(&cache, "unit", ()).await;
        assert_round_trip(&cache, "unit-struct", Unit).await;
        assert_round_trip(&cache, "enum", Kind::Newtype("x".into())).await;

        cache.set("nan", &f64::NAN).await.unwrap();
        let nan: Option<f64> = cache.get("nan").await.unwrap();
        assert!(nan.is_some_and(f64::is_nan), "{nan:?}");

        // Also through add and set_many.
        assert!(cache.add("data-add", &stuff()).await.unwrap());
        let got: Option<Stuff> = cache.get("data-add").await.unwrap();
        assert_eq!(got, Some(stuff()));
        let failed = cache
            .set_many([("data-many", stuff())], Timeout::Default)
            .await
            .unwrap();
        assert!(failed.is_empty());
        let got: Option<Stuff> = cache.get("data-many").await.unwrap();
        assert_eq!(got, Some(stuff()));
    }

    pub async fn test_expiration(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        // Django's 1 s timeout and 2 s wait; real time: see `short_expiry`.
        let expiry = clock.short_expiry();
        let ttl = expiry.timeout;
        cache.set_for("expire1", "very quickly", ttl).await.unwrap();
        cache.set_for("expire2", "very quickly", ttl).await.unwrap();
        cache.set_for("expire3", "very quickly", ttl).await.unwrap();
        assert!(has(&cache, "expire3").await);
        clock.advance(expiry.present_at).await;
        assert!(has(&cache, "expire3").await, "expired too early");
        clock.advance(expiry.gone_after).await;
        assert_eq!(get_str(&cache, "expire1").await, None);
        // add succeeds over an expired value.
        assert!(cache.add("expire2", "newvalue").await.unwrap());
        assert_eq!(
            get_str(&cache, "expire2").await.as_deref(),
            Some("newvalue")
        );
        assert!(!has(&cache, "expire3").await);
        // Expired values are left out of get_many, not deleted twice.
        cache.set_for("expire4", "soon", ttl).await.unwrap();
        clock.advance(expiry.present_at).await;
        assert_eq!(get_str(&cache, "expire4").await.as_deref(), Some("soon"));
        clock.advance(expiry.gone_after).await;
        let got: HashMap<String, String> = cache.get_many(["expire4", "expire2"]).await.unwrap();
        assert_eq!(got, map([("expire2", "newvalue".into())]));
        assert!(!cache.delete("expire4").await.unwrap());
        assert!(!cache.touch("expire4", 10).await.unwrap());
    }

    pub async fn test_touch(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        // Django: set for 1 s, touch for 4 s, present at 2 s, gone at 5 s. Real
        // time: set for 0.3 s, touch for 1 s, present at 0.5 s (past the first
        // timeout), gone at 1.1 s.
        let (first, touched, past_first, past_touched) =
            clock.pick((1.0, 4.0, secs(2), secs(3)), (0.3, 1.0, ms(500), ms(600)));
        // touch updates the timeout.
        cache
            .set_for("expire1", "very quickly", first)
            .await
            .unwrap();
        assert!(cache.touch("expire1", touched).await.unwrap());
        clock.advance(past_first).await;
        assert!(has(&cache, "expire1").await);
        clock.advance(past_touched).await;
        assert!(!has(&cache, "expire1").await);

        // touch without a timeout uses the default (300 s).
        cache
            .set_for("expire1", "very quickly", first)
            .await
            .unwrap();
        assert!(cache.touch("expire1", Timeout::Default).await.unwrap());
        clock.advance(past_first).await;
        assert!(has(&cache, "expire1").await);
        if clock.is_real() {
            // Real time cannot wait 299 s more: the server's TTL is the default's.
            assert_expires_within(&clock, &cache, "expire1", secs(290), secs(300)).await;
        } else {
            clock.advance(secs(299)).await;
            assert!(!has(&cache, "expire1").await);
        }

        // A missing key is not touched (and not created).
        assert!(!cache.touch("nonexistent", 10).await.unwrap());
        assert!(!has(&cache, "nonexistent").await);

        // touch(k, None) makes it permanent.
        cache.set_for("forever", "yes", first).await.unwrap();
        assert!(cache.touch("forever", Timeout::Never).await.unwrap());
        // Real time cannot wait a year: past the first timeout, the server keeps
        // it without a TTL.
        clock.advance(clock.pick(secs(365 * DAY), past_first)).await;
        assert_eq!(get_str(&cache, "forever").await.as_deref(), Some("yes"));
        assert_persistent(&clock, &cache, "forever").await;
        // A key that already never expires is still touched (Redis `PERSIST`
        // answers 0 for it).
        assert!(cache.touch("forever", Timeout::Never).await.unwrap());

        // touch(k, 0) answers true and expires it.
        cache.set_for("zero", "gone", 100).await.unwrap();
        assert!(cache.touch("zero", 0).await.unwrap());
        assert_eq!(get_str(&cache, "zero").await, None);
        assert!(!has(&cache, "zero").await);

        // touch keeps the value.
        cache.set_for("value", &7, 10).await.unwrap();
        assert!(cache.touch("value", 100).await.unwrap());
        assert_eq!(get_int(&cache, "value").await, Some(7));
    }

    pub async fn test_unicode(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let stuff = [
            ("ascii", "ascii_value"),
            ("unicode_ascii", "Iñtërnâtiônàlizætiøn1"),
            ("Iñtërnâtiônàlizætiøn", "Iñtërnâtiônàlizætiøn2"),
            ("清华大学", "北京"),
            ("ключ", "значение"),
            ("emoji-🦀", "🦀🦀 crab"),
        ];
        // set
        for (key, value) in stuff {
            cache.set(key, value).await.unwrap();
            assert_eq!(get_str(&cache, key).await.as_deref(), Some(value), "{key}");
        }
        // add
        for (key, value) in stuff {
            assert!(cache.delete(key).await.unwrap(), "{key}");
            assert!(cache.add(key, value).await.unwrap(), "{key}");
            assert_eq!(get_str(&cache, key).await.as_deref(), Some(value), "{key}");
        }
        // set_many
        for (key, _) in stuff {
            assert!(cache.delete(key).await.unwrap(), "{key}");
        }
        let failed = cache.set_many(stuff, Timeout::Default).await.unwrap();
        assert!(failed.is_empty());
        for (key, value) in stuff {
            assert_eq!(get_str(&cache, key).await.as_deref(), Some(value), "{key}");
        }
        let got: HashMap<String, String> =
            cache.get_many(stuff.iter().map(|(k, _)| *k)).await.unwrap();
        assert_eq!(got, map(stuff.map(|(k, v)| (k, v.to_owned()))));
        // A map value with unicode keys.
        let dict = map([("x", 1), ("ÿ", 2)]);
        assert_round_trip(&cache, "ascii2", dict).await;
    }

    pub async fn test_binary_string(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        // Every byte value, NULs and invalid UTF-8 included.
        let value: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        // set
        cache.set("binary1", &value).await.unwrap();
        let got: Option<Vec<u8>> = cache.get("binary1").await.unwrap();
        assert_eq!(got.as_ref(), Some(&value));
        // add
        assert!(cache.add("binary1-add", &value).await.unwrap());
        let got: Option<Vec<u8>> = cache.get("binary1-add").await.unwrap();
        assert_eq!(got.as_ref(), Some(&value));
        // set_many
        let failed = cache
            .set_many([("binary1-set_many", value.clone())], Timeout::Default)
            .await
            .unwrap();
        assert!(failed.is_empty());
        let got: Option<Vec<u8>> = cache.get("binary1-set_many").await.unwrap();
        assert_eq!(got.as_ref(), Some(&value));
        // Bytes that spell an integer stay bytes; empty stays empty.
        assert_round_trip(&cache, "digit-bytes", b"12345".to_vec()).await;
        assert_round_trip(&cache, "empty-bytes", Vec::<u8>::new()).await;
        assert_round_trip(&cache, "zero-byte", vec![0u8]).await;
    }

    pub async fn test_set_many(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let failed = cache
            .set_many([("key1", "spam"), ("key2", "eggs")], Timeout::Default)
            .await
            .unwrap();
        assert!(failed.is_empty());
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("spam"));
        assert_eq!(get_str(&cache, "key2").await.as_deref(), Some("eggs"));
        // Overwrites.
        cache
            .set_many([("key1", "ham")], Timeout::Default)
            .await
            .unwrap();
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("ham"));
        // With a version and a timeout.
        let failed = cache
            .set_many([(("a", 1), 1), (("b", 1), 2)], 2)
            .await
            .unwrap();
        assert!(failed.is_empty());
        assert_eq!(get_int(&cache, "a").await, Some(1));
        assert_eq!(get_int(&cache, "b").await, Some(2));
    }

    pub async fn test_set_many_returns_empty_list_on_success(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let failed = cache
            .set_many([("key1", "spam"), ("key2", "eggs")], Timeout::Default)
            .await
            .unwrap();
        assert_eq!(failed, Vec::<String>::new());
    }

    pub async fn test_set_many_expiration(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        // Django's 1 s timeout and 2 s wait; real time: see `short_expiry`.
        let expiry = clock.short_expiry();
        cache
            .set_many([("key1", "spam"), ("key2", "eggs")], expiry.timeout)
            .await
            .unwrap();
        assert!(has(&cache, "key1").await);
        clock.advance(expiry.present_at).await;
        assert_eq!(get_str(&cache, "key2").await.as_deref(), Some("eggs"));
        clock.advance(expiry.gone_after).await;
        assert_eq!(get_str(&cache, "key1").await, None);
        assert_eq!(get_str(&cache, "key2").await, None);
    }

    pub async fn test_set_many_empty_data(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let failed = cache
            .set_many(Vec::<(&str, i32)>::new(), Timeout::Default)
            .await
            .unwrap();
        assert_eq!(failed, Vec::<String>::new());
    }

    pub async fn test_delete_many(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        cache
            .set_many(
                [("key1", "spam"), ("key2", "eggs"), ("key3", "ham")],
                Timeout::Default,
            )
            .await
            .unwrap();
        cache.delete_many(["key1", "key2"]).await.unwrap();
        assert_eq!(get_str(&cache, "key1").await, None);
        assert_eq!(get_str(&cache, "key2").await, None);
        assert_eq!(get_str(&cache, "key3").await.as_deref(), Some("ham"));
        // Missing keys are fine.
        cache.delete_many(["key1", "nope", "key3"]).await.unwrap();
        assert_eq!(get_str(&cache, "key3").await, None);
        // Versioned keys.
        cache.set(("v", 2), "two").await.unwrap();
        cache.set("v", "one").await.unwrap();
        cache.delete_many([("v", 2)]).await.unwrap();
        assert_eq!(get_str(&cache, ("v", 2)).await, None);
        assert_eq!(get_str(&cache, "v").await.as_deref(), Some("one"));
    }

    pub async fn test_delete_many_no_keys(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        cache.delete_many(Vec::<&str>::new()).await.unwrap();
    }

    pub async fn test_clear(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        cache
            .set_many([("key1", "spam"), ("key2", "eggs")], Timeout::Default)
            .await
            .unwrap();
        cache.set_for("forever", &1, Timeout::Never).await.unwrap();
        cache.clear().await.unwrap();
        assert_eq!(get_str(&cache, "key1").await, None);
        assert_eq!(get_str(&cache, "key2").await, None);
        assert!(!has(&cache, "forever").await);
        let got: HashMap<String, String> = cache.get_many(["key1", "key2"]).await.unwrap();
        assert!(got.is_empty());
        // Usable afterwards; clearing an empty cache is fine.
        cache.set("key1", "again").await.unwrap();
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("again"));
        cache.clear().await.unwrap();
        cache.clear().await.unwrap();
        assert_eq!(get_str(&cache, "key1").await, None);
    }

    pub async fn test_long_timeout(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        let t = THIRTY_DAYS_AND_A_SECOND;
        cache.set_for("key1", "eggs", t).await.unwrap();
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("eggs"));
        assert!(cache.add_for("key2", "ham", t).await.unwrap());
        assert_eq!(get_str(&cache, "key2").await.as_deref(), Some("ham"));
        cache
            .set_many([("key3", "sausage"), ("key4", "lobster bisque")], t)
            .await
            .unwrap();
        assert_eq!(get_str(&cache, "key3").await.as_deref(), Some("sausage"));
        assert_eq!(
            get_str(&cache, "key4").await.as_deref(),
            Some("lobster bisque")
        );
        if clock.is_real() {
            // Real time cannot wait 30 days: the server holds each key with a
            // relative TTL of 30 days + 1 s (an absolute epoch read as a
            // duration would be decades; read as a date, long past).
            for key in ["key1", "key2", "key3", "key4"] {
                assert_expires_within(&clock, &cache, key, secs(t - 10), secs(t)).await;
            }
            return;
        }
        // Relative, not an absolute epoch: still there 30 days later...
        clock.advance(secs(30 * DAY)).await;
        for key in ["key1", "key2", "key3", "key4"] {
            assert!(has(&cache, key).await, "{key} after 30 days");
        }
        // ...and gone once the 30 days + 1 s have passed.
        clock.advance(secs(2)).await;
        for key in ["key1", "key2", "key3", "key4"] {
            assert!(!has(&cache, key).await, "{key} after 30 days + 2 s");
        }
    }

    pub async fn test_forever_timeout(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        cache.set_for("key1", "eggs", Timeout::Never).await.unwrap();
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("eggs"));
        assert!(cache.add_for("key2", "ham", Timeout::Never).await.unwrap());
        assert_eq!(get_str(&cache, "key2").await.as_deref(), Some("ham"));
        assert!(
            !cache
                .add_for("key1", "new eggs", Timeout::Never)
                .await
                .unwrap()
        );
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("eggs"));
        cache
            .set_many(
                [("key3", "sausage"), ("key4", "lobster bisque")],
                Timeout::Never,
            )
            .await
            .unwrap();
        // An Option<Duration> of None is "never" too.
        cache
            .set_for("key6", "option", None::<Duration>)
            .await
            .unwrap();
        cache.set_for("key5", "belgian fries", 1).await.unwrap();
        assert!(cache.touch("key5", Timeout::Never).await.unwrap());
        if clock.is_real() {
            // Real time cannot wait 10 years: the server keeps every key without
            // a TTL.
            for key in ["key1", "key2", "key3", "key4", "key5", "key6"] {
                assert_persistent(&clock, &cache, key).await;
            }
        } else {
            clock.advance(secs(10 * 365 * DAY)).await;
        }
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("eggs"));
        assert_eq!(get_str(&cache, "key2").await.as_deref(), Some("ham"));
        assert_eq!(get_str(&cache, "key3").await.as_deref(), Some("sausage"));
        assert_eq!(
            get_str(&cache, "key4").await.as_deref(),
            Some("lobster bisque")
        );
        assert_eq!(
            get_str(&cache, "key5").await.as_deref(),
            Some("belgian fries")
        );
        assert_eq!(get_str(&cache, "key6").await.as_deref(), Some("option"));
    }

    pub async fn test_zero_timeout(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        cache.set_for("key1", "eggs", 0).await.unwrap();
        assert_eq!(get_str(&cache, "key1").await, None);
        assert!(!has(&cache, "key1").await);
        // add with 0 answers true and stores nothing.
        assert!(cache.add_for("key2", "ham", 0).await.unwrap());
        assert_eq!(get_str(&cache, "key2").await, None);
        assert!(!has(&cache, "key2").await);
        cache
            .set_many([("key3", "sausage"), ("key4", "lobster bisque")], 0)
            .await
            .unwrap();
        assert_eq!(get_str(&cache, "key3").await, None);
        assert_eq!(get_str(&cache, "key4").await, None);
        cache.set_for("key5", "belgian fries", 1).await.unwrap();
        assert!(cache.touch("key5", 0).await.unwrap());
        assert_eq!(get_str(&cache, "key5").await, None);
        // set with 0 over a live value removes it (it expires at once).
        cache.set("key6", "old").await.unwrap();
        cache.set_for("key6", "new", 0).await.unwrap();
        assert_eq!(get_str(&cache, "key6").await, None);
        // add with 0 over a live value: false, the value stays.
        cache.set("key7", "kept").await.unwrap();
        assert!(!cache.add_for("key7", "other", 0).await.unwrap());
        assert_eq!(get_str(&cache, "key7").await.as_deref(), Some("kept"));
        // Zero as a Duration and as a float too.
        cache.set_for("key8", "eggs", Duration::ZERO).await.unwrap();
        cache.set_for("key9", "eggs", 0.0).await.unwrap();
        assert!(!has(&cache, "key8").await);
        assert!(!has(&cache, "key9").await);
    }

    /// B43: a negative timeout is already expired.
    pub async fn test_negative_timeout(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        cache.set_for("key1", "eggs", -1).await.unwrap();
        assert_eq!(get_str(&cache, "key1").await, None);
        cache.set("key2", "old").await.unwrap();
        cache.set_for("key2", "new", -10).await.unwrap();
        assert_eq!(get_str(&cache, "key2").await, None);
        assert!(cache.add_for("key3", "ham", -1).await.unwrap());
        assert_eq!(get_str(&cache, "key3").await, None);
        cache.set("key4", "here").await.unwrap();
        assert!(cache.touch("key4", -1).await.unwrap());
        assert_eq!(get_str(&cache, "key4").await, None);
    }

    pub async fn test_float_timeout(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        cache.set_for("key1", "spam", 100.2).await.unwrap();
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("spam"));
        if clock.is_whole_seconds() {
            // Real time cannot wait 100 s, and the server keeps whole seconds:
            // 100.2 s is rounded up to 101 s, not down to 100 s.
            assert_whole_second_ttl(&clock, &cache, "key1", 100.2, 101).await;
            // Fractions of short timeouts round up too: 1.2 s becomes 2 s, which
            // lives over a second on the server's clock, so it is there at 0.5 s
            // and gone at 3.1 s. Half a second becomes 1 s, never 0 (Memcached's
            // "never expires"): the server holds it with a time to live (or has
            // already let it go), and it is gone by then as well.
            let expiry = clock.short_expiry();
            cache.set_for("fraction", "second", 1.2).await.unwrap();
            cache.set_for("half", "second", 0.5).await.unwrap();
            match clock.server_ttl(&cache, "half").await {
                None | Some(ServerTtl::Missing) => {}
                Some(ServerTtl::Expires(left)) => assert!(left <= secs(1), "half: {left:?}"),
                Some(ServerTtl::Persistent) => panic!("half a second was stored as never"),
            }
            clock.advance(expiry.present_at).await;
            assert_eq!(get_str(&cache, "fraction").await.as_deref(), Some("second"));
            clock.advance(expiry.gone_after).await;
            assert_eq!(get_str(&cache, "fraction").await, None);
            assert_eq!(get_str(&cache, "half").await, None);
            return;
        }
        if clock.is_real() {
            // Real time cannot wait 100 s: right after the set, the server's TTL
            // is over 100 s (100.2 s is not rounded down to 100 s).
            assert_expires_within(&clock, &cache, "key1", ms(100_001), ms(100_200)).await;
        }
        // Half a second: present at 0.4 s (real time: 0.25 s), gone at 0.6 s.
        let (present_at, gone_after) = clock.pick((ms(400), ms(200)), (ms(250), ms(350)));
        cache.set_for("half", "second", 0.5).await.unwrap();
        assert_eq!(get_str(&cache, "half").await.as_deref(), Some("second"));
        clock.advance(present_at).await;
        assert_eq!(get_str(&cache, "half").await.as_deref(), Some("second"));
        clock.advance(gone_after).await;
        assert_eq!(get_str(&cache, "half").await, None);
        if clock.is_real() {
            return;
        }
        // 100.2 s is not rounded down to 100 s.
        clock.advance(Duration::from_millis(99_500)).await;
        assert_eq!(get_str(&cache, "key1").await.as_deref(), Some("spam"));
        clock.advance(Duration::from_millis(400)).await;
        assert_eq!(get_str(&cache, "key1").await, None);
    }

    /// DefaultNonExpiringCacheKeyTests: values set without a timeout live 300 s.
    pub async fn test_default_expiration_time_for_keys_is_5_minutes(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        cache.set("key1", "spam").await.unwrap();
        assert!(cache.add("key2", "eggs").await.unwrap());
        cache
            .set_many([("key3", "ham")], Timeout::Default)
            .await
            .unwrap();
        if clock.is_real() {
            // Real time cannot wait 299 s: the server's TTL is 300 s.
            for key in ["key1", "key2", "key3"] {
                assert_expires_within(&clock, &cache, key, secs(290), secs(300)).await;
            }
            return;
        }
        clock.advance(secs(299)).await;
        for key in ["key1", "key2", "key3"] {
            assert!(has(&cache, key).await, "{key} at 299 s");
        }
        clock.advance(secs(2)).await;
        for key in ["key1", "key2", "key3"] {
            assert!(!has(&cache, key).await, "{key} at 301 s");
        }
    }

    /// DefaultNonExpiringCacheKeyTests: a cache whose TIMEOUT is None keeps
    /// values set without a timeout forever.
    pub async fn test_caches_set_with_timeout_as_none_set_non_expiring_key(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        let never = shared(&cache).timeout(Timeout::Never).build();
        never.set("key1", "spam").await.unwrap();
        if clock.is_real() {
            // Real time cannot wait 10 years: the server keeps it without a TTL.
            assert_persistent(&clock, &never, "key1").await;
        } else {
            clock.advance(secs(10 * 365 * DAY)).await;
        }
        assert_eq!(get_str(&never, "key1").await.as_deref(), Some("spam"));
        // An explicit timeout still applies (real time: see `short_expiry`).
        let expiry = clock.short_expiry();
        never.set_for("key2", "eggs", expiry.timeout).await.unwrap();
        clock.advance(expiry.present_at).await;
        assert_eq!(get_str(&never, "key2").await.as_deref(), Some("eggs"));
        clock.advance(expiry.gone_after).await;
        assert_eq!(get_str(&never, "key2").await, None);
    }

    /// The operations Django's `_perform_invalid_key_test` runs, on a key that
    /// Memcached would reject: accepted with a warning by default, refused with
    /// `InvalidKey` in strict mode, and always refused by a backend that
    /// rejects such keys (`caps.rejects_invalid_keys`).
    async fn check_invalid_key(cache: &Cache, caps: Capabilities, key: &str) {
        let made = format!("{}:{}:{key}", cache.key_prefix(), cache.version());
        if caps.rejects_invalid_keys {
            // Django's BaseMemcachedTests: InvalidCacheKey, without strict mode.
            assert_every_operation_refused(cache, key, &made).await;
        } else {
            assert_eq!(cache.make_key(key, None).unwrap(), made);
            check_invalid_key_warns(cache, key, &made).await;
        }

        // Strict mode refuses every operation and stores nothing, whatever the
        // backend.
        let strict = shared(cache)
            .key_prefix(cache.key_prefix())
            .version(cache.version())
            .strict_keys(true)
            .build();
        assert_every_operation_refused(&strict, key, &made).await;
    }

    /// The fixture declares what the backend does: a wrong flag would test the
    /// wrong behaviour, not merely fail.
    #[track_caller]
    fn assert_declared_key_policy(cache: &Cache, caps: Capabilities) {
        assert_eq!(
            caps.rejects_invalid_keys,
            cache.backend().key_policy() == KeyPolicy::Reject,
            "the fixture's rejects_invalid_keys disagrees with the backend's key_policy"
        );
    }

    /// A lenient cache stores an invalid key and logs a warning naming it for
    /// every operation.
    async fn check_invalid_key_warns(cache: &Cache, key: &str, made: &str) {
        let log = WarnLog::default();

        let op = "set";
        log.expect_warning(made, op, cache.set(key, &1))
            .await
            .unwrap();
        let op = "get";
        let got = log.expect_warning(made, op, get_int(cache, key)).await;
        assert_eq!(got, Some(1), "lenient backends still store the value");
        let op = "add";
        assert!(
            !log.expect_warning(made, op, cache.add(key, &2))
                .await
                .unwrap()
        );
        let op = "has_key";
        assert!(log.expect_warning(made, op, has(cache, key)).await);
        let op = "touch";
        assert!(
            log.expect_warning(made, op, cache.touch(key, 100))
                .await
                .unwrap()
        );
        let op = "incr";
        assert_eq!(
            log.expect_warning(made, op, cache.incr(key, 1))
                .await
                .unwrap(),
            2
        );
        let op = "get_many";
        let got: HashMap<String, i64> = log
            .expect_warning(made, op, cache.get_many([key]))
            .await
            .unwrap();
        assert_eq!(got.get(key), Some(&2));
        let op = "delete";
        assert!(
            log.expect_warning(made, op, cache.delete(key))
                .await
                .unwrap()
        );
        let op = "set_many";
        let failed = log
            .expect_warning(made, op, cache.set_many([(key, 3)], Timeout::Default))
            .await
            .unwrap();
        assert!(failed.is_empty());
        let op = "delete_many";
        log.expect_warning(made, op, cache.delete_many([key]))
            .await
            .unwrap();
        let op = "get_or_set";
        let got = log
            .expect_warning(
                made,
                op,
                cache.get_or_set(key, || async { 4 }, Timeout::Default),
            )
            .await
            .unwrap();
        assert_eq!(got, 4);
        cache.delete(key).await.unwrap();
    }

    /// Every operation on `key` through `cache` fails with `InvalidKey` naming
    /// `made` (the key after the key function), computes nothing, stores
    /// nothing, and refuses a batch that holds it whole; valid keys still work.
    async fn assert_every_operation_refused(cache: &Cache, key: &str, made: &str) {
        assert_invalid_key(cache.make_key(key, None), made, "make_key");
        assert_invalid_key(cache.set(key, &1).await, made, "set");
        assert_invalid_key(cache.set_for(key, &1, 10).await, made, "set_for");
        assert_invalid_key(cache.add(key, &1).await, made, "add");
        assert_invalid_key(cache.get::<i64>(key).await, made, "get");
        assert_invalid_key(cache.get_or(key, 0i64).await, made, "get_or");
        assert_invalid_key(cache.has_key(key).await, made, "has_key");
        assert_invalid_key(cache.touch(key, 10).await, made, "touch");
        assert_invalid_key(cache.delete(key).await, made, "delete");
        assert_invalid_key(cache.incr(key, 1).await, made, "incr");
        assert_invalid_key(cache.decr(key, 1).await, made, "decr");
        assert_invalid_key(cache.incr_version(key, 1).await, made, "incr_version");
        assert_invalid_key(
            cache.get_many::<i64, _>(["fine", key]).await,
            made,
            "get_many",
        );
        assert_invalid_key(
            cache
                .set_many([("fine", 1), (key, 1)], Timeout::Default)
                .await,
            made,
            "set_many",
        );
        assert_invalid_key(cache.delete_many(["fine", key]).await, made, "delete_many");
        let calls = AtomicUsize::new(0);
        let calls_ref = &calls;
        let result = cache
            .get_or_set(
                key,
                move || async move {
                    calls_ref.fetch_add(1, Ordering::SeqCst);
                    5i64
                },
                Timeout::Default,
            )
            .await;
        assert_invalid_key(result, made, "get_or_set");
        assert_eq!(calls.load(Ordering::SeqCst), 0, "get_or_set computed");
        // Nothing reached the backend: it holds nothing under the key (or, if it
        // cannot hold such a key at all, says so).
        match cache.backend().get(made).await {
            Ok(None) | Err(BackendError::InvalidKey(_)) => {}
            other => panic!("a refused key was stored: {other:?}"),
        }
        assert!(
            !has(cache, "fine").await,
            "a batch with an invalid key is refused whole"
        );
        // Valid keys are fine.
        cache.set("fine", &1).await.unwrap();
        assert_eq!(get_int(cache, "fine").await, Some(1));
        assert!(cache.delete("fine").await.unwrap());
    }

    /// A key Memcached cannot store for its length in bytes, under 250
    /// characters: `Cache` refuses it for a key-rejecting backend (which counts
    /// bytes, as Memcached does), with `CacheError::InvalidKey`.
    #[track_caller]
    fn assert_refused_for_bytes<T: fmt::Debug>(result: Result<T, CacheError>, made: &str) {
        match result {
            Err(CacheError::InvalidKey { key, .. }) => assert_eq!(key, made),
            other => panic!("expected {made:?} refused as an invalid key, got {other:?}"),
        }
    }

    pub async fn test_invalid_key_characters(make: Make) {
        let Fixture {
            cache,
            caps,
            keep: _keep,
            ..
        } = make().await;
        assert_declared_key_policy(&cache, caps);
        // Spaces and control characters; non-ASCII alone is fine.
        check_invalid_key(&cache, caps, "key with spaces and 清").await;
        check_invalid_key(&cache, caps, "tab\there").await;
        check_invalid_key(&cache, caps, "newline\n").await;
        check_invalid_key(&cache, caps, "del\x7f").await;
        let strict = shared(&cache).strict_keys(true).build();
        strict.set("清华-ünïcode", &1).await.unwrap();
        assert_eq!(get_int(&strict, "清华-ünïcode").await, Some(1));
        assert_eq!(get_int(&cache, "清华-ünïcode").await, Some(1));
    }

    pub async fn test_invalid_key_length(make: Make) {
        let Fixture {
            cache,
            caps,
            keep: _keep,
            ..
        } = make().await;
        assert_declared_key_policy(&cache, caps);
        // Django's key of 251 characters.
        check_invalid_key(&cache, caps, &"a".repeat(251)).await;
        // The length counts after the key function: ":1:" + 248 = 251.
        check_invalid_key(&cache, caps, &"a".repeat(248)).await;
        // 250 characters is the limit.
        let strict = shared(&cache).strict_keys(true).build();
        let at_limit = "a".repeat(247);
        strict.set(at_limit.as_str(), &1).await.unwrap();
        assert_eq!(get_int(&strict, at_limit.as_str()).await, Some(1));
        assert_eq!(get_int(&cache, at_limit.as_str()).await, Some(1));
        let wide = "清".repeat(247);
        if caps.rejects_invalid_keys {
            // Memcached's limit is 250 bytes: 250 characters of three bytes
            // each are refused, by the plain cache and the strict one alike...
            let made = format!(":1:{wide}");
            assert_refused_for_bytes(cache.set(wide.as_str(), &2).await, &made);
            assert_refused_for_bytes(strict.set(wide.as_str(), &2).await, &made);
            assert_refused_for_bytes(cache.get::<i64>(wide.as_str()).await, &made);
            // ...and ":1:" + 82 × 3 = 249 bytes are stored.
            let fits = "清".repeat(82);
            strict.set(fits.as_str(), &2).await.unwrap();
            assert_eq!(get_int(&strict, fits.as_str()).await, Some(2));
            let over = "清".repeat(83);
            assert_refused_for_bytes(cache.set(over.as_str(), &3).await, &format!(":1:{over}"));
        } else {
            // Characters, not bytes.
            strict.set(wide.as_str(), &2).await.unwrap();
            assert_eq!(get_int(&strict, wide.as_str()).await, Some(2));
        }
    }

    pub async fn test_invalid_with_version_key_length(make: Make) {
        let Fixture {
            cache,
            caps,
            keep: _keep,
            ..
        } = make().await;
        assert_declared_key_policy(&cache, caps);
        // A key function that appends the version pushes a 249-character key over.
        let versioned = shared(&cache)
            .key_function(|key, _prefix, version| format!("{key}:{version}"))
            .build();
        let key = "a".repeat(249);
        let made = format!("{key}:1");
        let strict = shared(&cache)
            .key_function(|key, _prefix, version| format!("{key}:{version}"))
            .strict_keys(true)
            .build();
        assert_invalid_key(strict.set(key.as_str(), &1).await, &made, "set");
        assert_invalid_key(strict.get::<i64>(key.as_str()).await, &made, "get");
        if caps.rejects_invalid_keys {
            // Refused without strict mode too (Django's BaseMemcachedTests).
            assert_invalid_key(versioned.make_key(&key, None), &made, "make_key");
            assert_invalid_key(versioned.set(key.as_str(), &1).await, &made, "set");
            assert_invalid_key(versioned.get::<i64>(key.as_str()).await, &made, "get");
        } else {
            assert_eq!(versioned.make_key(&key, None).unwrap(), made);
            let log = WarnLog::default();
            log.expect_warning(&made, "set", versioned.set(key.as_str(), &1))
                .await
                .unwrap();
            let got = log
                .expect_warning(&made, "get", get_int(&versioned, key.as_str()))
                .await;
            assert_eq!(got, Some(1));
        }
        // 248 + ":1" = 250: fine.
        let short = "a".repeat(248);
        strict.set(short.as_str(), &2).await.unwrap();
        assert_eq!(get_int(&strict, short.as_str()).await, Some(2));
        assert_eq!(get_int(&versioned, short.as_str()).await, Some(2));
    }

    pub async fn test_cache_versioning_get_set(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let v2 = shared(&cache).version(2).build();

        // set, using default version = 1
        cache.set("answer1", &42).await.unwrap();
        assert_eq!(get_int(&cache, "answer1").await, Some(42));
        assert_eq!(get_int(&cache, ("answer1", 1)).await, Some(42));
        assert_eq!(get_int(&cache, ("answer1", 2)).await, None);
        assert_eq!(get_int(&v2, "answer1").await, None);
        assert_eq!(get_int(&v2, ("answer1", 1)).await, Some(42));
        assert_eq!(get_int(&v2, ("answer1", 2)).await, None);

        // set, default version = 1, but manually override version = 2
        cache.set(("answer2", 2), &42).await.unwrap();
        assert_eq!(get_int(&cache, "answer2").await, None);
        assert_eq!(get_int(&cache, ("answer2", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer2", 2)).await, Some(42));
        assert_eq!(get_int(&v2, "answer2").await, Some(42));
        assert_eq!(get_int(&v2, ("answer2", 1)).await, None);
        assert_eq!(get_int(&v2, ("answer2", 2)).await, Some(42));

        // v2 set, using default version = 2
        v2.set("answer3", &42).await.unwrap();
        assert_eq!(get_int(&cache, "answer3").await, None);
        assert_eq!(get_int(&cache, ("answer3", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer3", 2)).await, Some(42));
        assert_eq!(get_int(&v2, "answer3").await, Some(42));
        assert_eq!(get_int(&v2, ("answer3", 1)).await, None);
        assert_eq!(get_int(&v2, ("answer3", 2)).await, Some(42));

        // v2 set, default version = 2, but manually override version = 1
        v2.set(("answer4", 1), &42).await.unwrap();
        assert_eq!(get_int(&cache, "answer4").await, Some(42));
        assert_eq!(get_int(&cache, ("answer4", 1)).await, Some(42));
        assert_eq!(get_int(&cache, ("answer4", 2)).await, None);
        assert_eq!(get_int(&v2, "answer4").await, None);
        assert_eq!(get_int(&v2, ("answer4", 1)).await, Some(42));
        assert_eq!(get_int(&v2, ("answer4", 2)).await, None);

        // The default key format: "<prefix>:<version>:<key>".
        assert_eq!(cache.make_key("k", None).unwrap(), ":1:k");
        assert_eq!(v2.make_key("k", None).unwrap(), ":2:k");
        assert_eq!(cache.make_key("k", Some(3)).unwrap(), ":3:k");
    }

    pub async fn test_cache_versioning_add(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let v2 = shared(&cache).version(2).build();

        // add, default version = 1, but manually override version = 2
        assert!(cache.add(("answer1", 2), &42).await.unwrap());
        assert_eq!(get_int(&cache, ("answer1", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer1", 2)).await, Some(42));

        assert!(!cache.add(("answer1", 2), &37).await.unwrap());
        assert_eq!(get_int(&cache, ("answer1", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer1", 2)).await, Some(42));

        assert!(cache.add(("answer1", 1), &37).await.unwrap());
        assert_eq!(get_int(&cache, ("answer1", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer1", 2)).await, Some(42));

        // v2 add, using default version = 2
        assert!(v2.add("answer2", &42).await.unwrap());
        assert_eq!(get_int(&cache, ("answer2", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer2", 2)).await, Some(42));

        assert!(!v2.add("answer2", &37).await.unwrap());
        assert_eq!(get_int(&cache, ("answer2", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer2", 2)).await, Some(42));

        assert!(v2.add(("answer2", 1), &37).await.unwrap());
        assert_eq!(get_int(&cache, ("answer2", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer2", 2)).await, Some(42));

        // v2 add, default version = 2, but manually override version = 1
        assert!(v2.add(("answer3", 1), &42).await.unwrap());
        assert_eq!(get_int(&cache, ("answer3", 1)).await, Some(42));
        assert_eq!(get_int(&cache, ("answer3", 2)).await, None);

        assert!(!v2.add(("answer3", 1), &37).await.unwrap());
        assert_eq!(get_int(&cache, ("answer3", 1)).await, Some(42));
        assert_eq!(get_int(&cache, ("answer3", 2)).await, None);

        assert!(v2.add("answer3", &37).await.unwrap());
        assert_eq!(get_int(&cache, ("answer3", 1)).await, Some(42));
        assert_eq!(get_int(&cache, ("answer3", 2)).await, Some(37));
    }

    pub async fn test_cache_versioning_has_key(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let v2 = shared(&cache).version(2).build();
        cache.set("answer1", &42).await.unwrap();

        assert!(has(&cache, "answer1").await);
        assert!(has(&cache, ("answer1", 1)).await);
        assert!(!has(&cache, ("answer1", 2)).await);

        assert!(!has(&v2, "answer1").await);
        assert!(has(&v2, ("answer1", 1)).await);
        assert!(!has(&v2, ("answer1", 2)).await);
    }

    pub async fn test_cache_versioning_delete(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let v2 = shared(&cache).version(2).build();

        cache.set(("answer1", 1), &37).await.unwrap();
        cache.set(("answer1", 2), &42).await.unwrap();
        assert!(cache.delete("answer1").await.unwrap());
        assert_eq!(get_int(&cache, ("answer1", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer1", 2)).await, Some(42));

        cache.set(("answer2", 1), &37).await.unwrap();
        cache.set(("answer2", 2), &42).await.unwrap();
        assert!(cache.delete(("answer2", 2)).await.unwrap());
        assert_eq!(get_int(&cache, ("answer2", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer2", 2)).await, None);

        cache.set(("answer3", 1), &37).await.unwrap();
        cache.set(("answer3", 2), &42).await.unwrap();
        assert!(v2.delete("answer3").await.unwrap());
        assert_eq!(get_int(&cache, ("answer3", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer3", 2)).await, None);

        cache.set(("answer4", 1), &37).await.unwrap();
        cache.set(("answer4", 2), &42).await.unwrap();
        assert!(v2.delete(("answer4", 1)).await.unwrap());
        assert_eq!(get_int(&cache, ("answer4", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer4", 2)).await, Some(42));
    }

    pub async fn test_cache_versioning_incr_decr(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let v2 = shared(&cache).version(2).build();

        cache.set(("answer1", 1), &37).await.unwrap();
        cache.set(("answer1", 2), &42).await.unwrap();
        assert_eq!(cache.incr("answer1", 1).await.unwrap(), 38);
        assert_eq!(get_int(&cache, ("answer1", 1)).await, Some(38));
        assert_eq!(get_int(&cache, ("answer1", 2)).await, Some(42));
        assert_eq!(cache.decr("answer1", 1).await.unwrap(), 37);
        assert_eq!(get_int(&cache, ("answer1", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer1", 2)).await, Some(42));

        cache.set(("answer2", 1), &37).await.unwrap();
        cache.set(("answer2", 2), &42).await.unwrap();
        assert_eq!(cache.incr(("answer2", 2), 1).await.unwrap(), 43);
        assert_eq!(get_int(&cache, ("answer2", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer2", 2)).await, Some(43));
        assert_eq!(cache.decr(("answer2", 2), 1).await.unwrap(), 42);
        assert_eq!(get_int(&cache, ("answer2", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer2", 2)).await, Some(42));

        cache.set(("answer3", 1), &37).await.unwrap();
        cache.set(("answer3", 2), &42).await.unwrap();
        assert_eq!(v2.incr("answer3", 1).await.unwrap(), 43);
        assert_eq!(get_int(&cache, ("answer3", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer3", 2)).await, Some(43));
        assert_eq!(v2.decr("answer3", 1).await.unwrap(), 42);
        assert_eq!(get_int(&cache, ("answer3", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer3", 2)).await, Some(42));

        cache.set(("answer4", 1), &37).await.unwrap();
        cache.set(("answer4", 2), &42).await.unwrap();
        assert_eq!(v2.incr(("answer4", 1), 1).await.unwrap(), 38);
        assert_eq!(get_int(&cache, ("answer4", 1)).await, Some(38));
        assert_eq!(get_int(&cache, ("answer4", 2)).await, Some(42));
        assert_eq!(v2.decr(("answer4", 1), 1).await.unwrap(), 37);
        assert_eq!(get_int(&cache, ("answer4", 1)).await, Some(37));
        assert_eq!(get_int(&cache, ("answer4", 2)).await, Some(42));

        // A version that holds nothing.
        assert_key_not_found(cache.incr(("answer4", 3), 1).await, "answer4");
    }

    pub async fn test_cache_versioning_get_set_many(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let v2 = shared(&cache).version(2).build();
        let both = |a: &'static str, b: &'static str| map([(a, 37), (b, 42)]);
        let none = HashMap::<String, i32>::new();

        // set, using default version = 1
        cache
            .set_many([("ford1", 37), ("arthur1", 42)], Timeout::Default)
            .await
            .unwrap();
        let got: HashMap<String, i32> = cache.get_many(["ford1", "arthur1"]).await.unwrap();
        assert_eq!(got, both("ford1", "arthur1"));
        let got: HashMap<String, i32> = cache
            .get_many([("ford1", 1), ("arthur1", 1)])
            .await
            .unwrap();
        assert_eq!(got, both("ford1", "arthur1"));
        let got: HashMap<String, i32> = cache
            .get_many([("ford1", 2), ("arthur1", 2)])
            .await
            .unwrap();
        assert_eq!(got, none);
        let got: HashMap<String, i32> = v2.get_many(["ford1", "arthur1"]).await.unwrap();
        assert_eq!(got, none);
        let got: HashMap<String, i32> = v2.get_many([("ford1", 1), ("arthur1", 1)]).await.unwrap();
        assert_eq!(got, both("ford1", "arthur1"));
        let got: HashMap<String, i32> = v2.get_many([("ford1", 2), ("arthur1", 2)]).await.unwrap();
        assert_eq!(got, none);

        // set, default version = 1, but manually override version = 2
        cache
            .set_many([(("ford2", 2), 37), (("arthur2", 2), 42)], Timeout::Default)
            .await
            .unwrap();
        let got: HashMap<String, i32> = cache.get_many(["ford2", "arthur2"]).await.unwrap();
        assert_eq!(got, none);
        let got: HashMap<String, i32> = cache
            .get_many([("ford2", 1), ("arthur2", 1)])
            .await
            .unwrap();
        assert_eq!(got, none);
        let got: HashMap<String, i32> = cache
            .get_many([("ford2", 2), ("arthur2", 2)])
            .await
            .unwrap();
        assert_eq!(got, both("ford2", "arthur2"));
        let got: HashMap<String, i32> = v2.get_many(["ford2", "arthur2"]).await.unwrap();
        assert_eq!(got, both("ford2", "arthur2"));
        let got: HashMap<String, i32> = v2.get_many([("ford2", 1), ("arthur2", 1)]).await.unwrap();
        assert_eq!(got, none);
        let got: HashMap<String, i32> = v2.get_many([("ford2", 2), ("arthur2", 2)]).await.unwrap();
        assert_eq!(got, both("ford2", "arthur2"));

        // v2 set, using default version = 2
        v2.set_many([("ford3", 37), ("arthur3", 42)], Timeout::Default)
            .await
            .unwrap();
        let got: HashMap<String, i32> = cache.get_many(["ford3", "arthur3"]).await.unwrap();
        assert_eq!(got, none);
        let got: HashMap<String, i32> = cache
            .get_many([("ford3", 2), ("arthur3", 2)])
            .await
            .unwrap();
        assert_eq!(got, both("ford3", "arthur3"));
        let got: HashMap<String, i32> = v2.get_many(["ford3", "arthur3"]).await.unwrap();
        assert_eq!(got, both("ford3", "arthur3"));
        let got: HashMap<String, i32> = v2.get_many([("ford3", 1), ("arthur3", 1)]).await.unwrap();
        assert_eq!(got, none);

        // v2 set, default version = 2, but manually override version = 1
        v2.set_many([(("ford4", 1), 37), (("arthur4", 1), 42)], Timeout::Default)
            .await
            .unwrap();
        let got: HashMap<String, i32> = cache.get_many(["ford4", "arthur4"]).await.unwrap();
        assert_eq!(got, both("ford4", "arthur4"));
        let got: HashMap<String, i32> = cache
            .get_many([("ford4", 2), ("arthur4", 2)])
            .await
            .unwrap();
        assert_eq!(got, none);
        let got: HashMap<String, i32> = v2.get_many(["ford4", "arthur4"]).await.unwrap();
        assert_eq!(got, none);
        let got: HashMap<String, i32> = v2.get_many([("ford4", 1), ("arthur4", 1)]).await.unwrap();
        assert_eq!(got, both("ford4", "arthur4"));
    }

    pub async fn test_incr_version(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let v2 = shared(&cache).version(2).build();

        cache.set(("answer", 2), &42).await.unwrap();
        assert_eq!(get_int(&cache, "answer").await, None);
        assert_eq!(get_int(&cache, ("answer", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer", 2)).await, Some(42));
        assert_eq!(get_int(&cache, ("answer", 3)).await, None);

        assert_eq!(cache.incr_version(("answer", 2), 1).await.unwrap(), 3);
        assert_eq!(get_int(&cache, "answer").await, None);
        assert_eq!(get_int(&cache, ("answer", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer", 2)).await, None);
        assert_eq!(get_int(&cache, ("answer", 3)).await, Some(42));

        v2.set("answer2", &42).await.unwrap();
        assert_eq!(get_int(&v2, "answer2").await, Some(42));
        assert_eq!(get_int(&v2, ("answer2", 1)).await, None);
        assert_eq!(get_int(&v2, ("answer2", 2)).await, Some(42));
        assert_eq!(get_int(&v2, ("answer2", 3)).await, None);

        assert_eq!(v2.incr_version("answer2", 1).await.unwrap(), 3);
        assert_eq!(get_int(&v2, "answer2").await, None);
        assert_eq!(get_int(&v2, ("answer2", 1)).await, None);
        assert_eq!(get_int(&v2, ("answer2", 2)).await, None);
        assert_eq!(get_int(&v2, ("answer2", 3)).await, Some(42));

        // A larger delta, and a non-integer value moves too.
        cache.set("text", "moved").await.unwrap();
        assert_eq!(cache.incr_version("text", 5).await.unwrap(), 6);
        assert_eq!(get_str(&cache, "text").await, None);
        assert_eq!(get_str(&cache, ("text", 6)).await.as_deref(), Some("moved"));

        assert_key_not_found(
            cache.incr_version("does_not_exist", 1).await,
            "does_not_exist",
        );
        assert_eq!(get_int(&cache, ("does_not_exist", 2)).await, None);

        // A stored None moves.
        cache.set("null", &None::<i32>).await.unwrap();
        assert_eq!(cache.incr_version("null", 1).await.unwrap(), 2);
        let got: Option<Option<i32>> = cache.get(("null", 2)).await.unwrap();
        assert_eq!(got, Some(None));
        assert!(!has(&cache, "null").await);
    }

    pub async fn test_decr_version(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let v2 = shared(&cache).version(2).build();

        cache.set(("answer", 2), &42).await.unwrap();
        assert_eq!(get_int(&cache, "answer").await, None);
        assert_eq!(get_int(&cache, ("answer", 1)).await, None);
        assert_eq!(get_int(&cache, ("answer", 2)).await, Some(42));

        assert_eq!(cache.decr_version(("answer", 2), 1).await.unwrap(), 1);
        assert_eq!(get_int(&cache, "answer").await, Some(42));
        assert_eq!(get_int(&cache, ("answer", 1)).await, Some(42));
        assert_eq!(get_int(&cache, ("answer", 2)).await, None);

        v2.set("answer2", &42).await.unwrap();
        assert_eq!(get_int(&v2, "answer2").await, Some(42));
        assert_eq!(get_int(&v2, ("answer2", 1)).await, None);
        assert_eq!(get_int(&v2, ("answer2", 2)).await, Some(42));

        assert_eq!(v2.decr_version("answer2", 1).await.unwrap(), 1);
        assert_eq!(get_int(&v2, "answer2").await, None);
        assert_eq!(get_int(&v2, ("answer2", 1)).await, Some(42));
        assert_eq!(get_int(&v2, ("answer2", 2)).await, None);

        assert_key_not_found(
            cache.decr_version(("does_not_exist", 2), 1).await,
            "does_not_exist",
        );

        cache.set(("null", 2), &None::<i32>).await.unwrap();
        assert_eq!(cache.decr_version(("null", 2), 1).await.unwrap(), 1);
        let got: Option<Option<i32>> = cache.get(("null", 1)).await.unwrap();
        assert_eq!(got, Some(None));
        assert!(!has(&cache, ("null", 2)).await);
    }

    pub async fn test_custom_key_func(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let custom =
            |key: &str, prefix: &str, version: u32| format!("CUSTOM-{prefix}-{version}-{key}");
        // Two caches with the same custom function (Django's custom_key and
        // custom_key2) share keys; the default function does not see them.
        let custom_key = shared(&cache).key_function(custom).build();
        let custom_key2 = shared(&cache).key_function(custom).build();
        assert_eq!(
            custom_key.make_key("answer", None).unwrap(),
            "CUSTOM--1-answer"
        );
        assert_eq!(
            custom_key.make_key("answer", Some(3)).unwrap(),
            "CUSTOM--3-answer"
        );

        cache.set("answer1", &42).await.unwrap();
        assert_eq!(get_int(&cache, "answer1").await, Some(42));
        assert_eq!(get_int(&custom_key, "answer1").await, None);
        assert_eq!(get_int(&custom_key2, "answer1").await, None);

        custom_key.set("answer2", &42).await.unwrap();
        assert_eq!(get_int(&cache, "answer2").await, None);
        assert_eq!(get_int(&custom_key, "answer2").await, Some(42));
        assert_eq!(get_int(&custom_key2, "answer2").await, Some(42));

        // A different custom function is a different key space too.
        let other = shared(&cache)
            .key_function(|key, prefix, version| format!("OTHER|{prefix}|{version}|{key}"))
            .build();
        assert_eq!(get_int(&other, "answer2").await, None);
        assert!(!other.delete("answer2").await.unwrap());
        assert_eq!(get_int(&custom_key, "answer2").await, Some(42));
        // The key function sees the prefix and the per-call version.
        let prefixed = shared(&cache).key_prefix("p").key_function(custom).build();
        prefixed.set(("answer3", 7), &1).await.unwrap();
        assert_eq!(
            cache.backend().get("CUSTOM-p-7-answer3").await.unwrap(),
            Some(Bytes::from_static(b"1"))
        );
    }

    pub async fn test_get_or_set(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        assert_eq!(get_int(&cache, "projector").await, None);
        let got = cache
            .get_or_set("projector", || async { 42 }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, 42);
        assert_eq!(get_int(&cache, "projector").await, Some(42));
        // A hit returns the stored value, not the new default.
        let got = cache
            .get_or_set("projector", || async { 7 }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, 42);

        let got = cache
            .get_or_set("null", || async { None::<i32> }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, None);
        // The previous get_or_set stored None.
        let got: Option<i32> = cache.get_or("null", Some(1)).await.unwrap();
        assert_eq!(got, None);
        assert!(has(&cache, "null").await);

        // The timeout applies to the stored value (real time: see
        // `short_expiry`).
        let expiry = clock.short_expiry();
        let got = cache
            .get_or_set("brief", || async { "short".to_owned() }, expiry.timeout)
            .await
            .unwrap();
        assert_eq!(got, "short");
        clock.advance(expiry.present_at).await;
        assert_eq!(get_str(&cache, "brief").await.as_deref(), Some("short"));
        clock.advance(expiry.gone_after).await;
        assert_eq!(get_str(&cache, "brief").await, None);
        // A zero timeout returns the value and stores nothing.
        let got = cache.get_or_set("zero", || async { 5 }, 0).await.unwrap();
        assert_eq!(got, 5);
        assert!(!has(&cache, "zero").await);
    }

    pub async fn test_get_or_set_callable(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let calls = AtomicUsize::new(0);
        let calls_ref = &calls;
        let my_callable = move || async move {
            calls_ref.fetch_add(1, Ordering::SeqCst);
            "value".to_owned()
        };
        let got = cache
            .get_or_set("mykey", my_callable, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, "value");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A hit does not call it.
        let got = cache
            .get_or_set("mykey", my_callable, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, "value");
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // The closure may await.
        let got = cache
            .get_or_set(
                "awaited",
                || async {
                    tokio::task::yield_now().await;
                    vec![1u8, 2, 3]
                },
                Timeout::Default,
            )
            .await
            .unwrap();
        assert_eq!(got, vec![1, 2, 3]);

        let got = cache
            .get_or_set("null", || async { None::<String> }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, None);
        let got: Option<String> = cache
            .get_or("null", Some("default".to_owned()))
            .await
            .unwrap();
        assert_eq!(got, None);
    }

    pub async fn test_get_or_set_version(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let got = cache
            .get_or_set(("brian", 2), || async { 1979 }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, 1979);
        assert_eq!(get_int(&cache, ("brian", 1)).await, None);
        let got = cache
            .get_or_set(("brian", 1), || async { 42 }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, 42);
        let got = cache
            .get_or_set(("brian", 2), || async { 1 }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, 1979);
        assert_eq!(get_int(&cache, ("brian", 3)).await, None);
        assert_eq!(get_int(&cache, "brian").await, Some(42));
    }

    /// Many callers race on one key, each with its own value: one add wins, and
    /// every caller gets the stored value.
    pub async fn test_get_or_set_racing(make: Make) {
        const CALLERS: usize = 16;
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        for round in 0..20 {
            let key = format!("racing-{round}");
            let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
            let mut tasks = Vec::new();
            for caller in 0..CALLERS {
                let cache = cache.clone();
                let barrier = barrier.clone();
                let key = key.clone();
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    cache
                        .get_or_set(
                            key.as_str(),
                            move || async move {
                                tokio::task::yield_now().await;
                                format!("value-{caller}")
                            },
                            Timeout::Never,
                        )
                        .await
                        .unwrap()
                }));
            }
            let mut seen = Vec::new();
            for task in tasks {
                seen.push(task.await.unwrap());
            }
            let stored = get_str(&cache, key.as_str())
                .await
                .expect("a value is stored");
            assert!(
                seen.iter().all(|v| *v == stored),
                "round {round}: stored {stored:?}, callers got {seen:?}"
            );
        }
    }

    /// Django's test_get_or_set_racing: when add loses and the winner's value is
    /// gone by the re-read, the caller gets its own default.
    pub async fn test_get_or_set_racing_add_lost(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let losing = Cache::new(AddAlwaysLoses(cache.backend().clone()));
        let got = losing
            .get_or_set("key", || async { "default".to_owned() }, Timeout::Default)
            .await
            .unwrap();
        assert_eq!(got, "default");
        assert_eq!(get_str(&cache, "key").await, None);
    }

    /// A stored value that does not decode is a typed error, not a panic, and
    /// the key can be overwritten.
    pub async fn test_get_corrupt_value(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let garbage: [&'static [u8]; 3] = [
            b"\xff\xfe garbage \x00\x01",
            // The codec tag, then a length that runs past the end.
            b"\x00\xff\xff\xff\xff\xff\xff\xff",
            b"",
        ];
        for (i, bytes) in garbage.into_iter().enumerate() {
            let key = format!("corrupt{i}");
            let made = cache.make_key(&key, None).unwrap();
            cache
                .backend()
                .set(&made, Bytes::from_static(bytes), None)
                .await
                .unwrap();
            assert_decode(cache.get::<String>(key.as_str()).await, &key);
            assert_decode(cache.get::<Stuff>(key.as_str()).await, &key);
            assert_decode(cache.get_many::<String, _>([key.as_str()]).await, &key);
            assert_decode(
                cache
                    .get_or_set(key.as_str(), || async { "x".to_owned() }, Timeout::Default)
                    .await,
                &key,
            );
            // Present, just unreadable.
            assert!(has(&cache, key.as_str()).await);
            cache.set(key.as_str(), "fixed").await.unwrap();
            assert_eq!(
                get_str(&cache, key.as_str()).await.as_deref(),
                Some("fixed")
            );
        }
        // A value of another type is a decode error too.
        cache.set("text", "not a struct").await.unwrap();
        assert_decode(cache.get::<Stuff>("text").await, "text");
        cache.set("number", &300).await.unwrap();
        assert_decode(cache.get::<u8>("number").await, "number");
        assert_decode(cache.get::<String>("number").await, "number");
    }

    // -----------------------------------------------------------------------
    // Sets (`Backend::set_add` / `set_take`: the response cache's tag index).
    // Not Django's: the backend is called directly, with keys made by the
    // cache (so a server backend's namespace and Memcached's key rules apply).
    // -----------------------------------------------------------------------

    /// The backend key of the set `name`.
    fn set_key(cache: &Cache, name: &str) -> String {
        cache.make_key(name, None).expect("make_key")
    }

    fn member(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn members<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Bytes> {
        let mut members: Vec<Bytes> = names.into_iter().map(member).collect();
        members.sort();
        members
    }

    /// `set_take`, sorted (sets have no order).
    async fn take(cache: &Cache, key: &str) -> Vec<Bytes> {
        let mut taken = cache.backend().set_take(key).await.expect("set_take");
        taken.sort();
        taken
    }

    /// Adds then takes: each member once, whatever the number of adds; a
    /// taken set is gone; an absent set takes as empty.
    pub async fn test_set_add_take(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let backend = cache.backend();
        let key = set_key(&cache, "tag:a");
        for m in ["u1", "u2", "u1", "u3", "u2"] {
            backend.set_add(&key, member(m), secs(60)).await.unwrap();
        }
        // Any bytes are a member, the empty string included.
        let binary = Bytes::from_static(b"\0\xff\r\n END");
        backend
            .set_add(&key, binary.clone(), secs(60))
            .await
            .unwrap();
        backend.set_add(&key, Bytes::new(), secs(60)).await.unwrap();
        backend.set_add(&key, Bytes::new(), secs(60)).await.unwrap();
        let mut expected = members(["u1", "u2", "u3", ""]);
        expected.push(binary);
        expected.sort();
        assert_eq!(take(&cache, &key).await, expected);
        // Taken: gone.
        assert!(take(&cache, &key).await.is_empty());

        // An absent set: empty, and still empty the second time.
        let absent = set_key(&cache, "tag:never");
        assert!(take(&cache, &absent).await.is_empty());
        assert!(take(&cache, &absent).await.is_empty());

        // Sets are apart from each other, and a taken set fills again.
        let (one, two) = (set_key(&cache, "tag:one"), set_key(&cache, "tag:two"));
        backend.set_add(&one, member("x"), secs(60)).await.unwrap();
        backend.set_add(&two, member("y"), secs(60)).await.unwrap();
        assert_eq!(take(&cache, &one).await, members(["x"]));
        backend.set_add(&one, member("z"), secs(60)).await.unwrap();
        assert_eq!(take(&cache, &one).await, members(["z"]));
        assert_eq!(take(&cache, &two).await, members(["y"]));
    }

    /// A key holding something else (a plain value) does not wedge a set: an
    /// add replaces it with a new set, and a take finds no members in it.
    pub async fn test_set_over_a_plain_value(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let backend = cache.backend();
        let key = set_key(&cache, "plain");
        backend.set(&key, member("not a set"), None).await.unwrap();
        backend.set_add(&key, member("m"), secs(60)).await.unwrap();
        assert_eq!(take(&cache, &key).await, members(["m"]));
        backend.set(&key, member("not a set"), None).await.unwrap();
        assert!(take(&cache, &key).await.is_empty());
    }

    /// A set lives at least `ttl` from its latest add: a shorter ttl never
    /// shortens it (not even a set that never expires), a longer one extends
    /// it, and a set left alone expires.
    pub async fn test_set_ttl(make: Make) {
        let Fixture {
            cache,
            clock,
            keep: _keep,
            ..
        } = make().await;
        let backend = cache.backend();
        let expiry = clock.short_expiry();
        let short = Duration::from_secs_f64(expiry.timeout);
        let long = secs(10);
        let key = |name: &str| set_key(&cache, name);

        backend
            .set_add(&key("long-first"), member("a"), long)
            .await
            .unwrap();
        backend
            .set_add(&key("long-first"), member("b"), short)
            .await
            .unwrap();
        backend
            .set_add(&key("long-last"), member("a"), short)
            .await
            .unwrap();
        backend
            .set_add(&key("long-last"), member("b"), long)
            .await
            .unwrap();
        backend
            .set_add(&key("forever"), member("a"), short)
            .await
            .unwrap();
        assert!(backend.touch(&key("forever"), None).await.unwrap());
        backend
            .set_add(&key("forever"), member("b"), short)
            .await
            .unwrap();
        backend
            .set_add(&key("early"), member("a"), short)
            .await
            .unwrap();
        backend
            .set_add(&key("brief"), member("a"), short)
            .await
            .unwrap();

        // Real time: the server keeps the first two for the long ttl (a
        // whole-second server may read a tick less), the third forever.
        for name in ["long-first", "long-last"] {
            match clock.server_ttl(&cache, name).await {
                None => {}
                Some(ServerTtl::Expires(left)) => assert!(
                    secs(8) < left && left <= long,
                    "{name} expires in {left:?}, expected about {long:?}"
                ),
                Some(other) => panic!("{name}: expected a TTL of {long:?}, server says {other:?}"),
            }
        }
        if let Some(ttl) = clock.server_ttl(&cache, "forever").await {
            assert_eq!(ttl, ServerTtl::Persistent, "forever");
        }

        clock.advance(expiry.present_at).await;
        assert_eq!(take(&cache, &key("early")).await, members(["a"]));
        clock.advance(expiry.gone_after).await;
        assert!(take(&cache, &key("brief")).await.is_empty());
        // 5 s in all on a manual clock; real time waits no longer than the
        // short ttl needs (the server's TTLs were read above).
        clock.advance(clock.pick(secs(3), Duration::ZERO)).await;
        for name in ["long-first", "long-last", "forever"] {
            assert_eq!(
                take(&cache, &key(name)).await,
                members(["a", "b"]),
                "{name}"
            );
        }
    }

    /// Concurrent adds to one set all land, and takes racing adds never lose
    /// a member: each added member is taken exactly once, by a racing take or
    /// by the last one.
    pub async fn test_set_add_concurrent(make: Make) {
        const ADDERS: usize = 50;
        const TAKERS: usize = 5;
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let names: Vec<String> = (0..ADDERS).map(|i| format!("m{i}")).collect();
        let expected = members(names.iter().map(String::as_str));

        let key = set_key(&cache, "racing-adds");
        let barrier = Arc::new(tokio::sync::Barrier::new(ADDERS));
        let mut tasks = Vec::new();
        for name in &names {
            let (backend, barrier) = (cache.backend().clone(), barrier.clone());
            let (key, m) = (key.clone(), member(name));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                backend.set_add(&key, m, secs(60)).await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(take(&cache, &key).await, expected);

        let key = set_key(&cache, "racing-takes");
        let barrier = Arc::new(tokio::sync::Barrier::new(ADDERS + TAKERS));
        let mut adders = Vec::new();
        for name in &names {
            let (backend, barrier) = (cache.backend().clone(), barrier.clone());
            let (key, m) = (key.clone(), member(name));
            adders.push(tokio::spawn(async move {
                barrier.wait().await;
                backend.set_add(&key, m, secs(60)).await.unwrap();
            }));
        }
        let mut takers = Vec::new();
        for _ in 0..TAKERS {
            let (backend, barrier) = (cache.backend().clone(), barrier.clone());
            let key = key.clone();
            takers.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut taken = Vec::new();
                for _ in 0..4 {
                    taken.extend(backend.set_take(&key).await.unwrap());
                    tokio::task::yield_now().await;
                }
                taken
            }));
        }
        for task in adders {
            task.await.unwrap();
        }
        let mut taken = Vec::new();
        for task in takers {
            taken.extend(task.await.unwrap());
        }
        taken.extend(take(&cache, &key).await);
        taken.sort();
        assert_eq!(taken, expected);
    }

    /// `clear` removes sets with everything else.
    pub async fn test_set_clear(make: Make) {
        let Fixture {
            cache, keep: _keep, ..
        } = make().await;
        let backend = cache.backend();
        let (one, two) = (set_key(&cache, "tag:one"), set_key(&cache, "tag:two"));
        backend.set_add(&one, member("x"), secs(60)).await.unwrap();
        backend.set_add(&two, member("y"), secs(60)).await.unwrap();
        cache.set("plain", "value").await.unwrap();
        cache.clear().await.unwrap();
        assert!(take(&cache, &one).await.is_empty());
        assert!(take(&cache, &two).await.is_empty());
        assert!(!has(&cache, "plain").await);
        // Usable again.
        backend.set_add(&one, member("z"), secs(60)).await.unwrap();
        assert_eq!(take(&cache, &one).await, members(["z"]));
    }
}

// ---------------------------------------------------------------------------
// The macro that runs the suite
// ---------------------------------------------------------------------------

/// `conformance!(name, make)` makes a module `name` with one `#[tokio::test]`
/// per suite test, each calling `make` (a [`Make`]) for its fixture;
/// `conformance!(name, make, extra { items })` adds backend-specific items to the
/// module.
macro_rules! conformance {
    (@current_thread $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                $crate::conformance::suite::$test(make_cache).await;
            }
        )*
    };
    ($module:ident, $make:expr $(, extra { $($extra:item)* })? $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            fn make_cache() -> tower_response_cache::backend::BoxFuture<
                'static,
                $crate::conformance::Fixture,
            > {
                let make: $crate::conformance::Make = $make;
                make()
            }

            conformance!(@current_thread
                test_simple,
                test_default_used_when_none_is_set,
                test_add,
                test_prefix,
                test_non_existent,
                test_get_many,
                test_delete,
                test_delete_nonexistent,
                test_has_key,
                test_incr,
                test_decr,
                test_incr_decr_timeout,
                test_close,
                test_data_types,
                test_expiration,
                test_touch,
                test_unicode,
                test_binary_string,
                test_set_many,
                test_set_many_returns_empty_list_on_success,
                test_set_many_expiration,
                test_set_many_empty_data,
                test_delete_many,
                test_delete_many_no_keys,
                test_clear,
                test_long_timeout,
                test_forever_timeout,
                test_zero_timeout,
                test_negative_timeout,
                test_float_timeout,
                test_default_expiration_time_for_keys_is_5_minutes,
                test_caches_set_with_timeout_as_none_set_non_expiring_key,
                test_invalid_key_characters,
                test_invalid_key_length,
                test_invalid_with_version_key_length,
                test_cache_versioning_get_set,
                test_cache_versioning_add,
                test_cache_versioning_has_key,
                test_cache_versioning_delete,
                test_cache_versioning_incr_decr,
                test_cache_versioning_get_set_many,
                test_incr_version,
                test_decr_version,
                test_custom_key_func,
                test_get_or_set,
                test_get_or_set_callable,
                test_get_or_set_version,
                test_get_or_set_racing_add_lost,
                test_get_corrupt_value,
                test_set_add_take,
                test_set_over_a_plain_value,
                test_set_ttl,
                test_set_clear,
            );

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn test_get_or_set_racing() {
                $crate::conformance::suite::test_get_or_set_racing(make_cache).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn test_set_add_concurrent() {
                $crate::conformance::suite::test_set_add_concurrent(make_cache).await;
            }

            $($($extra)*)?
        }
    };
}
