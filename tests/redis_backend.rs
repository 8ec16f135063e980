//! The Redis backend against a real `redis-server` that these tests start
//! themselves: the shared conformance suite (`tests/conformance`, in real time)
//! and Redis-specific behaviour (namespaced `clear`, `FLUSHDB` opt-in, long and
//! kept TTLs, a server killed and restarted under a live backend).
//!
//! `redis-server` must be installed (`.ci/run` installs it); without it every
//! test fails with a message saying so, rather than skipping.
#![cfg(feature = "redis")]

mod common;
#[macro_use]
mod conformance;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::{Fixture, ServerTtl, TtlProbe};
use tower_response_cache::Cache;
use tower_response_cache::backend::{Backend, BackendError, BoxFuture, RedisBackend};

// ---------------------------------------------------------------------------
// The server harness
// ---------------------------------------------------------------------------

/// How long a starting server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// A `redis-server` process on a free loopback port, killed when dropped (also
/// when a test panics and unwinds).
struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Arguments beyond the port and the no-persistence settings.
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server with `extra` arguments and waits until it answers.
    fn start(extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let mut last_error = String::new();
        // A free port may be taken by someone else before the server binds it:
        // then the server exits, and another port is tried.
        for _ in 0..3 {
            let mut server = RedisServer {
                child: None,
                port: free_port(),
                extra: extra.clone(),
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("could not start redis-server: {last_error}");
    }

    /// Starts the process on `self.port` and waits until it answers `PING`.
    fn spawn(&mut self) -> Result<(), String> {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => self.child = Some(child),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed, and the Redis backend tests need it: \
                 install it (`apt-get install redis-server`; .ci/run does)"
            ),
            Err(error) => panic!("could not run redis-server: {error}"),
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("redis-server on port {port} exited: {status}"));
            }
            if answers_ping(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "redis-server on port {port} did not accept connections within {READY_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL) and waits for it to exit.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same arguments.
    fn restart(&mut self) {
        self.kill();
        if let Err(error) = self.spawn() {
            panic!("could not restart redis-server: {error}");
        }
    }

    /// The server's URL, database `db`, with an optional password.
    fn url_with(&self, password: Option<&str>, db: u32) -> String {
        match password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/{db}", self.port),
            None => format!("redis://127.0.0.1:{}/{db}", self.port),
        }
    }

    fn url(&self) -> String {
        self.url_with(None, 0)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nobody listens on right now: bind port 0, read it, let it go.
fn free_port() -> u16 {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port on 127.0.0.1");
    listener.local_addr().expect("local address").port()
}

/// Whether a Redis server answers on `port` (`+PONG`, or `-NOAUTH` when it wants
/// a password).
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 16];
    matches!(stream.read(&mut reply), Ok(n) if n > 0 && (reply[0] == b'+' || reply[0] == b'-'))
}

/// The server the conformance tests share: started by the first test that needs
/// it, killed when the last test holding it ends (a static is never dropped, so
/// the tests hold it, not the static).
fn shared_server() -> Arc<RedisServer> {
    static SHARED: Mutex<Weak<RedisServer>> = Mutex::new(Weak::new());
    let mut slot = SHARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(RedisServer::start(&[]));
    *slot = Arc::downgrade(&server);
    server
}

/// A namespace no other test of this run uses.
fn fresh_namespace() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("trc-test-{}:", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A plain connection for looking behind the backend's back.
async fn raw(url: &str) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(url)
        .expect("redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

/// The server's `PTTL` of a full (namespaced) key.
async fn pttl(url: &str, full_key: &str) -> ServerTtl {
    let mut conn = raw(url).await;
    let ms: i64 = ::redis::cmd("PTTL")
        .arg(full_key)
        .query_async(&mut conn)
        .await
        .expect("PTTL");
    match ms {
        -2 => ServerTtl::Missing,
        -1 => ServerTtl::Persistent,
        ms => ServerTtl::Expires(Duration::from_millis(ms.unsigned_abs())),
    }
}

/// Reads the `PTTL` of a key of `namespace` on the server at `url`.
fn ttl_probe(url: String, namespace: String) -> TtlProbe {
    Arc::new(move |key: String| {
        let url = url.clone();
        let full = format!("{namespace}{key}");
        Box::pin(async move { pttl(&url, &full).await })
    })
}

/// A backend on `server` under `namespace`, with the default settings.
async fn backend_on(url: &str, namespace: &str) -> RedisBackend {
    RedisBackend::builder(url)
        .namespace(namespace)
        .build()
        .await
        .expect("connect to the test redis-server")
}

/// The conformance suite's fixture: a fresh namespace on the shared server,
/// real time, and the server's `PTTL` as the TTL probe.
fn redis_cache() -> BoxFuture<'static, Fixture> {
    Box::pin(async {
        let server = shared_server();
        let namespace = fresh_namespace();
        let backend = backend_on(&server.url(), &namespace).await;
        let probe = ttl_probe(server.url(), namespace);
        Fixture::server(Cache::new(backend), Some(probe), Box::new(server))
    })
}

conformance!(redis, redis_cache);

// ---------------------------------------------------------------------------
// Redis-specific behaviour
// ---------------------------------------------------------------------------

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn bytes(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[tokio::test]
async fn clear_deletes_only_the_namespace() {
    let server = shared_server();
    let url = server.url();
    // Glob characters in the namespace are matched literally: unescaped,
    // `<base>n*[ab]?\:*` would also match `<base>nXaY:k`.
    let base = fresh_namespace();
    let namespace = format!("{base}n*[ab]?\\:");
    let lookalike = format!("{base}nXaY:k");
    let backend = backend_on(&url, &namespace).await;
    let neighbour = backend_on(&url, &fresh_namespace()).await;
    backend.set("k1", bytes("1"), None).await.unwrap();
    backend.set("k2", bytes("2"), Some(DAY)).await.unwrap();
    neighbour.set("k1", bytes("kept"), None).await.unwrap();
    let mut conn = raw(&url).await;
    let _: () = ::redis::cmd("SET")
        .arg(&lookalike)
        .arg("kept")
        .query_async(&mut conn)
        .await
        .unwrap();

    backend.clear().await.unwrap();

    assert_eq!(backend.get("k1").await.unwrap(), None);
    assert_eq!(backend.get("k2").await.unwrap(), None);
    assert_eq!(neighbour.get("k1").await.unwrap(), Some(bytes("kept")));
    let outside: Option<String> = ::redis::cmd("GET")
        .arg(&lookalike)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(outside.as_deref(), Some("kept"));
}

#[tokio::test]
async fn clear_scans_in_batches() {
    let server = shared_server();
    let backend = backend_on(&server.url(), &fresh_namespace()).await;
    let items: Vec<(String, Bytes)> = (0..2500).map(|i| (format!("k{i}"), bytes("v"))).collect();
    assert!(backend.set_many(items, None).await.unwrap().is_empty());
    backend.clear().await.unwrap();
    let keys: Vec<String> = (0..2500).map(|i| format!("k{i}")).collect();
    let left = backend.get_many(&keys).await.unwrap();
    assert!(left.iter().all(Option::is_none));
}

#[tokio::test]
async fn flush_db_on_clear_empties_the_database() {
    let server = shared_server();
    // Database 5 is this test's alone; database 0 is the other tests'.
    let url = server.url_with(None, 5);
    let backend = RedisBackend::builder(&url)
        .namespace(fresh_namespace())
        .flush_db_on_clear(true)
        .build()
        .await
        .unwrap();
    let other_db = backend_on(&server.url(), &fresh_namespace()).await;
    backend.set("mine", bytes("1"), None).await.unwrap();
    other_db
        .set("elsewhere", bytes("kept"), None)
        .await
        .unwrap();
    let mut conn = raw(&url).await;
    let _: () = ::redis::cmd("SET")
        .arg("not-a-cache-key")
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();

    backend.clear().await.unwrap();

    assert_eq!(backend.get("mine").await.unwrap(), None);
    let size: u64 = ::redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    assert_eq!(size, 0, "FLUSHDB leaves nothing in the database");
    assert_eq!(
        other_db.get("elsewhere").await.unwrap(),
        Some(bytes("kept")),
        "FLUSHDB, not FLUSHALL"
    );
}

#[tokio::test]
async fn ttl_over_thirty_days_is_relative() {
    let server = shared_server();
    let namespace = fresh_namespace();
    let backend = backend_on(&server.url(), &namespace).await;
    let ttl = 31 * DAY;
    backend.set("set", bytes("v"), Some(ttl)).await.unwrap();
    assert!(backend.add("add", bytes("v"), Some(ttl)).await.unwrap());
    let failed = backend
        .set_many(vec![("many".to_owned(), bytes("v"))], Some(ttl))
        .await
        .unwrap();
    assert!(failed.is_empty());
    for key in ["set", "add", "many"] {
        assert_eq!(backend.get(key).await.unwrap(), Some(bytes("v")), "{key}");
        match pttl(&server.url(), &format!("{namespace}{key}")).await {
            ServerTtl::Expires(left) => assert!(
                ttl - Duration::from_secs(10) <= left && left <= ttl,
                "{key}: {left:?} left of {ttl:?}"
            ),
            other => panic!("{key}: expected a TTL of 31 days, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn incr_is_atomic_keeps_the_ttl_and_types_its_errors() {
    let server = shared_server();
    let namespace = fresh_namespace();
    let backend = backend_on(&server.url(), &namespace).await;
    backend
        .set("counter", bytes("41"), Some(Duration::from_secs(100)))
        .await
        .unwrap();
    assert_eq!(backend.incr("counter", 1).await.unwrap(), 42);
    assert_eq!(backend.incr("counter", -50).await.unwrap(), -8);
    match pttl(&server.url(), &format!("{namespace}counter")).await {
        ServerTtl::Expires(left) => {
            assert!(left > Duration::ZERO && left <= Duration::from_secs(100))
        }
        other => panic!("INCRBY lost the TTL: {other:?}"),
    }
    backend.set("forever", bytes("1"), None).await.unwrap();
    assert_eq!(backend.incr("forever", 1).await.unwrap(), 2);
    assert_eq!(
        pttl(&server.url(), &format!("{namespace}forever")).await,
        ServerTtl::Persistent
    );

    assert!(matches!(
        backend.incr("missing", 1).await,
        Err(BackendError::KeyNotFound)
    ));
    // The script does not create the key it did not find.
    assert_eq!(backend.get("missing").await.unwrap(), None);
    backend.set("text", bytes("abc"), None).await.unwrap();
    assert!(matches!(
        backend.incr("text", 1).await,
        Err(BackendError::NotAnInteger)
    ));
    backend
        .set("max", Bytes::from(i64::MAX.to_string()), None)
        .await
        .unwrap();
    assert!(matches!(
        backend.incr("max", 1).await,
        Err(BackendError::NotAnInteger)
    ));
    // A key of another type (written by someone else) is not an integer either.
    let mut conn = raw(&server.url()).await;
    let _: () = ::redis::cmd("RPUSH")
        .arg(format!("{namespace}list"))
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(matches!(
        backend.incr("list", 1).await,
        Err(BackendError::NotAnInteger)
    ));

    // Concurrent increments are never lost.
    backend.set("hits", bytes("0"), None).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let backend = backend.clone();
            tokio::spawn(async move { backend.incr("hits", 1).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(backend.get("hits").await.unwrap(), Some(bytes("50")));
}

#[tokio::test]
async fn touch_answers_whether_the_key_exists() {
    let server = shared_server();
    let namespace = fresh_namespace();
    let backend = backend_on(&server.url(), &namespace).await;
    let url = server.url();
    // PERSIST answers 0 for a key without a TTL: touch must still say true.
    backend.set("persistent", bytes("v"), None).await.unwrap();
    assert!(backend.touch("persistent", None).await.unwrap());
    backend
        .set("expiring", bytes("v"), Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(backend.touch("expiring", None).await.unwrap());
    assert_eq!(
        pttl(&url, &format!("{namespace}expiring")).await,
        ServerTtl::Persistent
    );
    assert!(
        backend
            .touch("expiring", Some(Duration::from_millis(1500)))
            .await
            .unwrap()
    );
    assert!(matches!(
        pttl(&url, &format!("{namespace}expiring")).await,
        ServerTtl::Expires(left) if left <= Duration::from_millis(1500)
    ));
    assert!(!backend.touch("missing", None).await.unwrap());
    assert!(
        !backend
            .touch("missing", Some(Duration::from_secs(1)))
            .await
            .unwrap()
    );
    assert_eq!(
        pttl(&url, &format!("{namespace}missing")).await,
        ServerTtl::Missing
    );
}

#[tokio::test]
async fn two_backends_share_one_cache() {
    let server = shared_server();
    let namespace = fresh_namespace();
    let one = Cache::new(backend_on(&server.url(), &namespace).await);
    let two = Cache::new(backend_on(&server.url(), &namespace).await);
    one.set("page", "stored by one").await.unwrap();
    let got: Option<String> = two.get("page").await.unwrap();
    assert_eq!(got.as_deref(), Some("stored by one"));
    assert!(two.delete("page").await.unwrap());
    let got: Option<String> = one.get("page").await.unwrap();
    assert_eq!(got, None);
}

#[tokio::test]
async fn bad_urls_and_refused_connections_are_errors() {
    assert!(matches!(
        RedisBackend::builder("rediss://127.0.0.1:6379/0")
            .build()
            .await,
        Err(BackendError::Other(_))
    ));
    assert!(matches!(
        RedisBackend::builder("http://127.0.0.1/").build().await,
        Err(BackendError::Other(_))
    ));
    // Nobody listens on a fresh free port.
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let result = RedisBackend::builder(&url)
        .connect_timeout(Duration::from_secs(1))
        .build()
        .await;
    assert!(
        matches!(
            result,
            Err(BackendError::Other(_) | BackendError::Timeout(_))
        ),
        "{result:?}"
    );
}

/// Every operation, for checking that each returns an error when the server is
/// gone.
async fn every_operation(backend: &RedisBackend) -> Vec<(&'static str, Result<(), BackendError>)> {
    let keys = vec!["a".to_owned(), "b".to_owned()];
    let ttl = Some(Duration::from_secs(10));
    let mut out = Vec::new();
    out.push(("get", backend.get("a").await.map(drop)));
    out.push(("set", backend.set("a", bytes("1"), ttl).await));
    out.push(("add", backend.add("b", bytes("v"), ttl).await.map(drop)));
    out.push(("touch", backend.touch("a", ttl).await.map(drop)));
    out.push(("persist", backend.touch("a", None).await.map(drop)));
    out.push(("incr", backend.incr("a", 1).await.map(drop)));
    out.push(("delete", backend.delete("a").await.map(drop)));
    out.push(("get_many", backend.get_many(&keys).await.map(drop)));
    out.push((
        "set_many",
        backend
            .set_many(vec![("a".to_owned(), bytes("v"))], ttl)
            .await
            .map(drop),
    ));
    out.push(("delete_many", backend.delete_many(&keys).await));
    out.push(("clear", backend.clear().await));
    out
}

#[tokio::test]
async fn a_killed_server_gives_errors_and_a_restarted_one_is_used_again() {
    // A server of this test's own, with a password (which Debug must not show).
    let mut server = RedisServer::start(&["--requirepass", "s3cret"]);
    let timeout = Duration::from_millis(50);
    let backend = RedisBackend::builder(&server.url_with(Some("s3cret"), 0))
        .timeout(timeout)
        .build()
        .await
        .expect("connect with the password");
    assert!(!format!("{backend:?}").contains("s3cret"));
    backend.set("before", bytes("1"), None).await.unwrap();
    assert_eq!(backend.get("before").await.unwrap(), Some(bytes("1")));

    server.kill();
    // Each operation returns (an error) instead of hanging: the guard below is
    // only there to turn a hang into a failure.
    let guard = timeout * 11 + Duration::from_secs(2);
    let results = tokio::time::timeout(guard, every_operation(&backend))
        .await
        .expect("operations on a dead server must return, not hang");
    for (op, result) in results {
        assert!(
            matches!(
                result,
                Err(BackendError::Other(_) | BackendError::Timeout(_))
            ),
            "{op} on a dead server: {result:?}"
        );
    }

    // The same backend, not rebuilt, works again once the server is back (its
    // connection manager reconnects; retry while it does).
    server.restart();
    let mut recovered = false;
    for _ in 0..100 {
        if backend.set("after", bytes("2"), None).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        recovered,
        "the backend did not reconnect to the restarted server"
    );
    assert_eq!(backend.get("after").await.unwrap(), Some(bytes("2")));
    // The server kept nothing on disk: the old value is gone.
    assert_eq!(backend.get("before").await.unwrap(), None);
    let results = every_operation(&backend).await;
    for (op, result) in results {
        assert!(result.is_ok(), "{op} after the restart: {result:?}");
    }
}

/// A layer over a new connection to `url` under `namespace`.
async fn layer_on(url: &str, namespace: &str) -> tower_response_cache::CacheLayer {
    tower_response_cache::CacheLayer::builder()
        .backend(backend_on(url, namespace).await)
        .build()
}

/// Two instances on one Redis share pages and their variants, and a purge
/// through one is seen by the other.
#[tokio::test]
async fn two_instances_share_pages_variants_and_purges() {
    let server = shared_server();
    let namespace = fresh_namespace();
    let calls = common::Calls::default();
    let layer_a = layer_on(&server.url(), &namespace).await;
    let a = common::instance(&layer_a, &calls);
    let layer_b = layer_on(&server.url(), &namespace).await;
    let b = common::instance(&layer_b, &calls);
    let en = || common::get("http://example.com/p").header("accept-language", "en");
    let fr = || common::get("http://example.com/p").header("accept-language", "fr");

    assert_eq!(common::send(&a, en()).await.1, "body 1");
    let (parts, body) = common::send(&b, en()).await;
    assert_eq!(body, "body 1");
    assert!(common::header(&parts, "cache-status").is_some_and(|s| s.contains("; hit;")));
    assert_eq!(common::send(&b, fr()).await.1, "body 2");
    assert_eq!(common::send(&a, fr()).await.1, "body 2");
    assert_eq!(common::send(&a, en()).await.1, "body 1");
    assert_eq!(calls.get(), 2);

    assert!(layer_a.purge("https://example.com/p").await.unwrap());
    assert_eq!(common::send(&b, fr()).await.1, "body 3");
    assert_eq!(common::send(&b, en()).await.1, "body 4");
}

/// Tags are indexed in Redis: a tag purged through one instance removes what the
/// other instance stored under it, and nothing else.
#[tokio::test]
async fn a_tag_purged_through_one_instance_is_gone_for_the_other() {
    let server = shared_server();
    let namespace = fresh_namespace();
    let layer_a = layer_on(&server.url(), &namespace).await;
    let layer_b = layer_on(&server.url(), &namespace).await;
    common::a_tag_purge_reaches_the_other_instance(&layer_a, &layer_b).await;
}

/// Redis dies in the middle of a stream of requests: every request is still
/// answered correctly (from the inner service), the failures are counted, and
/// once Redis is back the same service gets hits again without a restart.
/// (Real waits here: the server needs real time to restart and the client to
/// reconnect.)
#[tokio::test]
async fn killing_redis_mid_stream_never_fails_a_request_and_hits_come_back() {
    let mut server = RedisServer::start(&[]);
    let backend = RedisBackend::builder(&server.url())
        .timeout(Duration::from_millis(50))
        .build()
        .await
        .expect("connect");
    let layer = tower_response_cache::CacheLayer::builder()
        .backend(backend)
        .build();
    let svc = common::path_echo(&layer);
    for i in 0..30 {
        if i == 10 {
            server.kill();
        }
        if i == 20 {
            server.restart();
        }
        let path = format!("/p/{}", i % 3);
        let (parts, body) = common::send(&svc, common::get(&path)).await;
        assert_eq!(parts.status, http::StatusCode::OK, "request {i}");
        assert_eq!(body, format!("page {path}"), "request {i}");
    }
    let stats = layer.stats();
    assert!(
        stats.backend_errors + stats.backend_timeouts > 0,
        "the outage was not counted: {stats:?}"
    );
    // Hits come back on the same service once the client has reconnected.
    let mut hit = false;
    for _ in 0..100 {
        let (parts, body) = common::send(&svc, common::get("/p/0")).await;
        assert_eq!(body, "page /p/0");
        if common::header(&parts, "cache-status").is_some_and(|s| s.contains("; hit;")) {
            hit = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hit, "no hit after Redis came back");
}
