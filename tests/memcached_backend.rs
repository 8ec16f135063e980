//! The Memcached backend against real `memcached` processes that the tests start
//! themselves (one per test, on a free port): Memcached's semantics, the server
//! pool, failures and reconnection, the low-level [`Cache`] over it, the shared
//! conformance suite (`tests/conformance`, in real time, with Memcached's
//! capabilities declared), and the response cache shared by two instances and
//! surviving a server killed mid-stream.
//!
//! `memcached` must be installed (CI's `.ci/run` installs it); without it every
//! test fails and says so.

#![cfg(feature = "memcached")]

mod common;
#[macro_use]
mod conformance;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance::{Capabilities, Fixture, ServerTtl, TtlProbe};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tower_response_cache::backend::{Backend, BackendError, BoxFuture, MemcachedBackend};
use tower_response_cache::{Cache, CacheError, Timeout};

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A `memcached` process on its own port, killed when dropped (also when the
/// test panics).
struct Memcached {
    port: u16,
    child: Option<Child>,
}

impl Memcached {
    fn start() -> Self {
        Self::on_port(free_port())
    }

    fn on_port(port: u16) -> Self {
        let child = Command::new("memcached")
            .args(["-p", &port.to_string(), "-l", "127.0.0.1", "-U", "0"])
            // One worker thread: the machine running the tests is small. `-u`
            // only matters when run as root, which memcached otherwise refuses.
            .args(["-t", "1", "-u", "nobody"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `memcached` ({e}): these tests need it installed \
                     (apt-get install memcached; CI's .ci/run installs it)"
                )
            });
        let mut server = Memcached {
            port,
            child: Some(child),
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!(
                    "memcached on port {} exited ({status}): {stderr}",
                    self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "memcached on port {} did not accept connections within 5 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends one raw command line and returns the first line of the reply, to
    /// see what the server holds without going through the backend.
    fn raw(&self, command: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .expect("write");
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            stream.read_exact(&mut byte).expect("read");
            reply.push(byte[0]);
        }
        String::from_utf8(reply)
            .expect("utf-8")
            .trim_end()
            .to_owned()
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Generous: the tests share two cores with other builds; the default 50 ms is
/// exercised where timing is the point.
const TEST_TIMEOUT: Duration = Duration::from_secs(2);

async fn backend(servers: &[&Memcached]) -> MemcachedBackend {
    MemcachedBackend::builder(servers.iter().map(|s| s.addr()))
        .timeout(TEST_TIMEOUT)
        .build()
        .await
        .expect("build")
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

#[track_caller]
fn assert_invalid_key<T: std::fmt::Debug>(result: Result<T, BackendError>) {
    assert!(
        matches!(result, Err(BackendError::InvalidKey(_))),
        "expected InvalidKey, got {result:?}"
    );
}

// ---------------------------------------------------------------------------
// One server: Memcached's semantics
// ---------------------------------------------------------------------------

#[tokio::test]
async fn set_get_delete() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
    cache.set("k", b("v1"), None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), Some(b("v1")));
    cache.set("k", b("v2"), secs(60)).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), Some(b("v2")));
    assert!(cache.delete("k").await.unwrap());
    assert!(!cache.delete("k").await.unwrap());
    assert_eq!(cache.get("k").await.unwrap(), None);

    // Empty, binary and non-ASCII: stored as given.
    cache.set("empty", Bytes::new(), None).await.unwrap();
    assert_eq!(cache.get("empty").await.unwrap(), Some(Bytes::new()));
    let binary = Bytes::from_static(b"\0\r\nEND\r\n\xff ");
    cache.set("binary", binary.clone(), None).await.unwrap();
    assert_eq!(cache.get("binary").await.unwrap(), Some(binary));
    cache.set("清-ünï", b("ok"), None).await.unwrap();
    assert_eq!(cache.get("清-ünï").await.unwrap(), Some(b("ok")));
    assert_eq!(server.raw("mg 清-ünï s"), "HD s2");
}

#[tokio::test]
async fn add_only_stores_new_keys() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    assert!(cache.add("k", b("first"), None).await.unwrap());
    assert!(!cache.add("k", b("second"), None).await.unwrap());
    assert_eq!(cache.get("k").await.unwrap(), Some(b("first")));
    cache.delete("k").await.unwrap();
    assert!(cache.add("k", b("third"), secs(60)).await.unwrap());
    assert_eq!(cache.get("k").await.unwrap(), Some(b("third")));
}

#[tokio::test]
async fn concurrent_adds_have_one_winner() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            cache.add("lock", b(&i.to_string()), None).await.unwrap()
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn touch_and_expiry() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    assert!(!cache.touch("missing", secs(60)).await.unwrap());

    // Values that are changed right after being set live two seconds, not one:
    // Memcached's clock ticks once a second, so a one-second value may be gone
    // at once.
    cache.set("short", b("v"), secs(2)).await.unwrap();
    cache.set("made-permanent", b("v"), secs(2)).await.unwrap();
    assert!(cache.touch("made-permanent", None).await.unwrap());
    cache.set("extended", b("v"), secs(2)).await.unwrap();
    assert!(cache.touch("extended", secs(60)).await.unwrap());
    cache.set("counter", b("1"), secs(2)).await.unwrap();
    assert_eq!(cache.incr("counter", 1).await.unwrap(), 2);
    // Half a second is rounded up to one second, never to 0 ("never
    // expires"): the server holds it with a time to live, or has let it go.
    cache
        .set("half-second", b("v"), Some(Duration::from_millis(500)))
        .await
        .unwrap();
    let reply = server.raw("mg half-second t");
    assert!(
        reply == "EN" || reply == "HD t0" || reply == "HD t1",
        "{reply}"
    );

    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(cache.get("short").await.unwrap(), None);
    assert_eq!(cache.get("half-second").await.unwrap(), None);
    assert_eq!(cache.get("made-permanent").await.unwrap(), Some(b("v")));
    assert_eq!(cache.get("extended").await.unwrap(), Some(b("v")));
    // incr kept the counter's expiry.
    assert_eq!(cache.get("counter").await.unwrap(), None);
    assert!(!cache.touch("short", None).await.unwrap());
}

#[tokio::test]
async fn timeouts_over_thirty_days_are_absolute() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    let thirty_one_days = secs(31 * 24 * 60 * 60);
    cache.set("long", b("v"), thirty_one_days).await.unwrap();
    assert_eq!(cache.get("long").await.unwrap(), Some(b("v")));
    assert!(
        cache
            .add("long-add", b("v"), thirty_one_days)
            .await
            .unwrap()
    );
    assert_eq!(cache.get("long-add").await.unwrap(), Some(b("v")));
    cache.set("touched", b("v"), secs(60)).await.unwrap();
    assert!(cache.touch("touched", thirty_one_days).await.unwrap());
    assert_eq!(cache.get("touched").await.unwrap(), Some(b("v")));

    // The server reads the remaining time as about 31 days.
    for key in ["long", "long-add", "touched"] {
        let reply = server.raw(&format!("mg {key} t"));
        let ttl: i64 = reply
            .strip_prefix("HD t")
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("{key}: {reply}"));
        assert!(
            (31 * 86_400 - 10..=31 * 86_400 + 1).contains(&ttl),
            "{key}: {ttl}"
        );
    }
    // Exactly 30 days is still relative.
    cache
        .set("thirty", b("v"), secs(30 * 24 * 60 * 60))
        .await
        .unwrap();
    assert_eq!(cache.get("thirty").await.unwrap(), Some(b("v")));
}

#[tokio::test]
async fn incr_and_decr_are_memcached_counters() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    assert!(matches!(
        cache.incr("missing", 1).await,
        Err(BackendError::KeyNotFound)
    ));
    assert!(matches!(
        cache.incr("missing", -1).await,
        Err(BackendError::KeyNotFound)
    ));

    cache.set("n", b("10"), None).await.unwrap();
    assert_eq!(cache.incr("n", 5).await.unwrap(), 15);
    assert_eq!(cache.incr("n", 0).await.unwrap(), 15);
    assert_eq!(cache.incr("n", -6).await.unwrap(), 9);
    // Memcached pads the shortened number ("9 "); `get` strips the padding.
    assert_eq!(cache.get("n").await.unwrap(), Some(b("9")));
    assert_eq!(cache.incr("n", 91).await.unwrap(), 100);
    assert_eq!(cache.get("n").await.unwrap(), Some(b("100")));
    // Unsigned: decr stops at zero.
    assert_eq!(cache.incr("n", -1000).await.unwrap(), 0);
    assert_eq!(cache.get("n").await.unwrap(), Some(b("0")));
    assert_eq!(cache.incr("n", i64::MIN).await.unwrap(), 0);

    cache.set("text", b("abc"), None).await.unwrap();
    assert!(matches!(
        cache.incr("text", 1).await,
        Err(BackendError::NotAnInteger)
    ));
    // A negative number is not a number to Memcached.
    cache.set("negative", b("-5"), None).await.unwrap();
    assert!(matches!(
        cache.incr("negative", 1).await,
        Err(BackendError::NotAnInteger)
    ));
    // Past i64::MAX: refused, and undone on the server.
    let max = i64::MAX.to_string();
    cache.set("big", b(&max), None).await.unwrap();
    assert!(matches!(
        cache.incr("big", 1).await,
        Err(BackendError::NotAnInteger)
    ));
    assert_eq!(cache.get("big").await.unwrap(), Some(b(&max)));
    // A counter beyond i64 written by another client stays as it is too.
    let beyond = "9223372036854775900";
    cache.set("beyond", b(beyond), None).await.unwrap();
    assert!(matches!(
        cache.incr("beyond", -1).await,
        Err(BackendError::NotAnInteger)
    ));
    assert_eq!(cache.get("beyond").await.unwrap(), Some(b(beyond)));
    // The connection is still in step after all those refusals.
    assert_eq!(cache.get("text").await.unwrap(), Some(b("abc")));
}

#[tokio::test]
async fn values_over_the_limit_are_refused_and_the_old_value_deleted() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    let limit = 1024 * 1024;

    cache.set("k", b("old"), None).await.unwrap();
    let too_big = Bytes::from(vec![b'x'; limit + 1]);
    match cache.set("k", too_big.clone(), None).await {
        Err(BackendError::ValueTooLarge { size, limit: l }) => {
            assert_eq!((size, l), (limit + 1, limit));
        }
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
    assert_eq!(cache.get("k").await.unwrap(), None);

    // Within the configured limit but over the server's item size (which
    // counts the key and the item header): the server's refusal is the same
    // error, and the old value goes too.
    cache.set("k", b("old"), None).await.unwrap();
    let server_too_big = Bytes::from(vec![b'x'; limit - 10]);
    assert!(matches!(
        cache.set("k", server_too_big.clone(), None).await,
        Err(BackendError::ValueTooLarge { .. })
    ));
    assert_eq!(cache.get("k").await.unwrap(), None);

    // add refuses too, but never touches an existing value.
    cache.set("k", b("old"), None).await.unwrap();
    assert!(matches!(
        cache.add("k", too_big, None).await,
        Err(BackendError::ValueTooLarge { .. })
    ));
    assert!(matches!(
        cache.add("k", server_too_big, None).await,
        Err(BackendError::ValueTooLarge { .. })
    ));
    assert_eq!(cache.get("k").await.unwrap(), Some(b("old")));

    // A configured limit is honoured, and a large value under it is stored.
    let small = MemcachedBackend::builder([server.addr()])
        .max_value_size(10)
        .timeout(TEST_TIMEOUT)
        .build()
        .await
        .unwrap();
    assert!(matches!(
        small.set("k", b("01234567890"), None).await,
        Err(BackendError::ValueTooLarge {
            size: 11,
            limit: 10
        })
    ));
    let large = Bytes::from(vec![b'y'; 512 * 1024]);
    cache.set("large", large.clone(), None).await.unwrap();
    assert_eq!(cache.get("large").await.unwrap(), Some(large));
}

#[tokio::test]
async fn set_many_reports_the_keys_it_could_not_store() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    let failed = cache
        .set_many(
            vec![
                ("a".to_owned(), b("1")),
                ("big".to_owned(), Bytes::from(vec![0u8; 2 * 1024 * 1024])),
                ("b".to_owned(), b("2")),
            ],
            secs(60),
        )
        .await
        .unwrap();
    assert_eq!(failed, ["big"]);
    assert_eq!(cache.get("a").await.unwrap(), Some(b("1")));
    assert_eq!(cache.get("b").await.unwrap(), Some(b("2")));
}

#[tokio::test]
async fn keys_memcached_cannot_store_are_refused() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    let long = "k".repeat(251);
    let long_in_bytes = "清".repeat(84); // 84 characters, 252 bytes
    for key in [
        "has space",
        "tab\t",
        "new\nline",
        "del\x7f",
        long.as_str(),
        long_in_bytes.as_str(),
        "",
    ] {
        assert_invalid_key(cache.get(key).await);
        assert_invalid_key(cache.set(key, b("v"), None).await);
        assert_invalid_key(cache.add(key, b("v"), None).await);
        assert_invalid_key(cache.delete(key).await);
        assert_invalid_key(cache.touch(key, None).await);
        assert_invalid_key(cache.incr(key, 1).await);
        assert_invalid_key(cache.get_many(&["ok".to_owned(), key.to_owned()]).await);
    }
    let longest = "k".repeat(250);
    cache.set(&longest, b("v"), None).await.unwrap();
    assert_eq!(cache.get(&longest).await.unwrap(), Some(b("v")));
}

#[tokio::test]
async fn clear_flushes_the_server() {
    let server = Memcached::start();
    let cache = backend(&[&server]).await;
    cache.set("a", b("1"), None).await.unwrap();
    // A key written by someone else on the same server goes too.
    assert_eq!(server.raw("ms foreign 1\r\nx"), "HD");
    cache.clear().await.unwrap();
    assert_eq!(cache.get("a").await.unwrap(), None);
    assert_eq!(server.raw("mg foreign v"), "EN");
}

#[tokio::test]
async fn concurrent_use_shares_a_few_connections() {
    let server = Memcached::start();
    let cache = MemcachedBackend::builder([server.addr()])
        .connections_per_server(2)
        .timeout(Duration::from_secs(5))
        .build()
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("k{i}");
            let value = b(&"v".repeat(i * 100));
            cache.set(&key, value.clone(), None).await.unwrap();
            assert_eq!(cache.get(&key).await.unwrap(), Some(value));
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.write_all(b"stats\r\n").unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.ends_with("END\r\n") {
        let n = stream.read(&mut buf).unwrap();
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    let total: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("STAT total_connections "))
        .and_then(|n| n.trim().parse().ok())
        .expect("total_connections");
    // Two pooled connections, plus the raw ones of this test and memcached's
    // own listening socket count.
    assert!(total <= 6, "{total} connections for 2 permitted");
}

// ---------------------------------------------------------------------------
// Several servers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn keys_spread_over_servers_and_each_stays_on_one() {
    let one = Memcached::start();
    let two = Memcached::start();
    let pool = backend(&[&one, &two]).await;
    let only_one = backend(&[&one]).await;
    let only_two = backend(&[&two]).await;
    // The same servers listed the other way round.
    let reversed = backend(&[&two, &one]).await;

    let keys: Vec<String> = (0..100).map(|i| format!("key:{i}")).collect();
    for key in &keys {
        pool.set(key, b(key), None).await.unwrap();
    }
    let mut on_one = 0;
    for key in &keys {
        let a = only_one.get(key).await.unwrap();
        let b2 = only_two.get(key).await.unwrap();
        assert!(
            a.is_some() != b2.is_some(),
            "{key} must be on exactly one server"
        );
        on_one += usize::from(a.is_some());
        let expected = if a.is_some() { one.addr() } else { two.addr() };
        assert_eq!(pool.server_for(key), expected);
        assert_eq!(reversed.get(key).await.unwrap(), Some(b(key)));
    }
    assert!(
        (25..=75).contains(&on_one),
        "{on_one} of 100 keys on one server"
    );

    // Writing again sends every key to the same server.
    for key in &keys {
        pool.set(key, b("again"), None).await.unwrap();
    }
    for key in &keys {
        let a = only_one.get(key).await.unwrap();
        let b2 = only_two.get(key).await.unwrap();
        assert_eq!(a.or(b2), Some(b("again")));
    }

    // get_many: one multi-get per server, answers in the order asked, misses
    // and repeats included.
    let mut asked = keys.clone();
    asked.insert(3, "missing".to_owned());
    asked.push(keys[0].clone());
    let values = pool.get_many(&asked).await.unwrap();
    assert_eq!(values.len(), asked.len());
    for (key, value) in asked.iter().zip(&values) {
        let expected = (key != "missing").then(|| b("again"));
        assert_eq!(value, &expected, "{key}");
    }
    assert!(pool.get_many(&[]).await.unwrap().is_empty());

    // clear empties both servers.
    pool.clear().await.unwrap();
    assert!(
        pool.get_many(&keys)
            .await
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_server_that_is_down_fails_fast() {
    let mut server = Memcached::start();
    let cache = MemcachedBackend::builder([server.addr()])
        .build()
        .await
        .unwrap();
    cache.set("k", b("v"), None).await.unwrap();
    server.stop();

    let started = Instant::now();
    for _ in 0..10 {
        assert!(cache.get("k").await.is_err());
        assert!(cache.set("k", b("v"), None).await.is_err());
        assert!(cache.incr("k", 1).await.is_err());
        assert!(cache.get_many(&["k".to_owned()]).await.is_err());
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "40 operations on a dead server took {:?}",
        started.elapsed()
    );
    // Once the stale connection is gone, a refused connection is `Other`.
    assert!(matches!(cache.get("k").await, Err(BackendError::Other(_))));

    // A backend built while the server is down builds, and fails per operation.
    let never = MemcachedBackend::builder([format!("127.0.0.1:{}", free_port())])
        .build()
        .await
        .unwrap();
    assert!(matches!(never.get("k").await, Err(BackendError::Other(_))));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts connections (the kernel does, into the backlog) but never reads.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let cache = MemcachedBackend::builder([addr]).build().await.unwrap();
    assert!(format!("{cache:?}").contains("50ms"), "{cache:?}");
    for _ in 0..3 {
        let started = Instant::now();
        match cache.get("k").await {
            Err(BackendError::Timeout(t)) => assert_eq!(t, Duration::from_millis(50)),
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let started = Instant::now();
    assert!(matches!(
        cache.set("k", b("v"), None).await,
        Err(BackendError::Timeout(_))
    ));
    assert!(matches!(cache.clear().await, Err(BackendError::Timeout(_))));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn the_same_backend_works_again_after_a_restart() {
    let mut server = Memcached::start();
    let port = server.port;
    let cache = backend(&[&server]).await;
    // Several pooled connections, all of which the restart breaks.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            cache.set(&format!("k{i}"), b("v"), None).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    server.stop();
    assert!(cache.get("k0").await.is_err());
    let server = Memcached::on_port(port);

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut failures = 0;
    while cache.set("after", b("restart"), None).await.is_err() {
        failures += 1;
        assert!(
            Instant::now() < deadline,
            "no recovery after {failures} tries"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The broken connections were dropped together, not one failure each.
    assert!(failures <= 1, "{failures} failures before recovering");
    assert_eq!(cache.get("after").await.unwrap(), Some(b("restart")));
    // A restarted memcached is empty.
    assert_eq!(cache.get("k0").await.unwrap(), None);
    drop(server);
}

// ---------------------------------------------------------------------------
// The low-level Cache over Memcached
// ---------------------------------------------------------------------------

#[tokio::test]
async fn cache_round_trip() {
    let server = Memcached::start();
    let cache = Cache::new(backend(&[&server]).await);
    cache.set("greeting", "hello").await.unwrap();
    assert_eq!(
        cache.get::<String>("greeting").await.unwrap().as_deref(),
        Some("hello")
    );
    cache.set("items", &vec![1, 2, 3]).await.unwrap();
    assert_eq!(
        cache.get::<Vec<i32>>("items").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    cache.set_for("visits", &10, Timeout::Never).await.unwrap();
    assert_eq!(cache.incr("visits", 1).await.unwrap(), 11);
    assert_eq!(cache.decr("visits", 2).await.unwrap(), 9);
    // The padded "9 " on the server reads back as the integer.
    assert_eq!(cache.get::<i64>("visits").await.unwrap(), Some(9));
    assert!(matches!(
        cache.incr("greeting", 1).await,
        Err(CacheError::NotAnInteger(_))
    ));
    assert!(matches!(
        cache.incr("nothing", 1).await,
        Err(CacheError::KeyNotFound(_))
    ));
    // Counters Memcached cannot go below zero.
    assert_eq!(cache.decr("visits", 100).await.unwrap(), 0);
    // Keys as Django makes them: prefix:version:key.
    assert_eq!(server.raw("mg :1:greeting s").split(' ').next(), Some("HD"));
}

#[tokio::test]
async fn cache_refuses_keys_memcached_cannot_store() {
    let server = Memcached::start();
    let cache = Cache::new(backend(&[&server]).await);
    match cache.set("has space", "v").await {
        Err(CacheError::InvalidKey { key, .. }) => assert_eq!(key, ":1:has space"),
        other => panic!("expected InvalidKey, got {other:?}"),
    }
    assert!(matches!(
        cache.get::<String>(&*"k".repeat(250)).await,
        Err(CacheError::InvalidKey { .. })
    ));
}

// ---------------------------------------------------------------------------
// The response cache over Memcached
// ---------------------------------------------------------------------------

/// A layer over a backend of its own on `server`.
async fn layer_on(server: &Memcached) -> tower_response_cache::CacheLayer {
    tower_response_cache::CacheLayer::builder()
        .backend(backend(&[server]).await)
        .build()
}

fn is_hit(parts: &http::response::Parts) -> bool {
    common::header(parts, "cache-status").is_some_and(|s| s.contains("; hit;"))
}

/// Tags are indexed in Memcached (a CAS-updated set): a tag purged through one
/// instance removes what the other stored under it, and nothing else.
#[tokio::test]
async fn a_tag_purged_through_one_instance_is_gone_for_the_other() {
    let server = Memcached::start();
    let layer_a = layer_on(&server).await;
    let layer_b = layer_on(&server).await;
    common::a_tag_purge_reaches_the_other_instance(&layer_a, &layer_b).await;
}

/// Two instances on one Memcached server share pages and their variants, and a
/// purge through one is seen by the other.
#[tokio::test]
async fn two_instances_share_pages_variants_and_purges() {
    let server = Memcached::start();
    let calls = common::Calls::default();
    let layer_a = layer_on(&server).await;
    let a = common::instance(&layer_a, &calls);
    let layer_b = layer_on(&server).await;
    let b = common::instance(&layer_b, &calls);
    let en = || common::get("http://example.com/p").header("accept-language", "en");
    let fr = || common::get("http://example.com/p").header("accept-language", "fr");

    let (parts, body) = common::send(&a, en()).await;
    assert_eq!(body, "body 1");
    assert!(!is_hit(&parts));
    // Stored through `a`, a hit through `b`.
    let (parts, body) = common::send(&b, en()).await;
    assert_eq!(body, "body 1");
    assert!(
        is_hit(&parts),
        "{:?}",
        common::header(&parts, "cache-status")
    );
    // Another variant of the same page, stored through `b`, a hit through `a`,
    // and the first variant is still there.
    assert_eq!(common::send(&b, fr()).await.1, "body 2");
    let (parts, body) = common::send(&a, fr()).await;
    assert_eq!(body, "body 2");
    assert!(is_hit(&parts));
    assert_eq!(common::send(&a, en()).await.1, "body 1");
    assert_eq!(calls.get(), 2);
    assert_eq!(layer_a.stats().backend_errors, 0);
    assert_eq!(layer_b.stats().backend_errors, 0);

    // Purged through `a` (under https: both schemes go): both variants are gone
    // for `b`.
    assert!(layer_a.purge("https://example.com/p").await.unwrap());
    assert_eq!(common::send(&b, fr()).await.1, "body 3");
    assert_eq!(common::send(&b, en()).await.1, "body 4");
    // Nothing left to purge for `b` after `a` purges again.
    assert!(layer_a.purge("http://example.com/p").await.unwrap());
    assert!(!layer_b.purge("http://example.com/p").await.unwrap());
}

/// Memcached dies in the middle of a stream of requests: every request is still
/// answered correctly (from the inner service), the failures are counted, and
/// once Memcached is back on the same port the same service gets hits again,
/// without being rebuilt. (Real waits here: the server needs real time to
/// restart.)
#[tokio::test]
async fn killing_memcached_mid_stream_never_fails_a_request_and_hits_come_back() {
    let mut server = Memcached::start();
    let port = server.port;
    // The default 50 ms timeout: a dead server must cost a request little.
    let backend = MemcachedBackend::builder([server.addr()])
        .build()
        .await
        .expect("build");
    let layer = tower_response_cache::CacheLayer::builder()
        .backend(backend)
        .build();
    let svc = common::path_echo(&layer);
    let mut hits_before_the_kill = 0;
    for i in 0..30 {
        if i == 10 {
            server.stop();
        }
        if i == 20 {
            server = Memcached::on_port(port);
        }
        let path = format!("/p/{}", i % 3);
        let started = Instant::now();
        let (parts, body) = common::send(&svc, common::get(&path)).await;
        assert_eq!(parts.status, http::StatusCode::OK, "request {i}");
        assert_eq!(body, format!("page {path}"), "request {i}");
        if i < 10 && is_hit(&parts) {
            hits_before_the_kill += 1;
        }
        // A dead server is a refused connection or a timeout, not a hang.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    // The cache was in use before the outage (requests 3 to 9 repeat 0 to 2).
    assert!(hits_before_the_kill > 0, "no hit before the kill");
    let stats = layer.stats();
    assert!(
        stats.backend_errors + stats.backend_timeouts > 0,
        "the outage was not counted: {stats:?}"
    );
    // Hits come back on the same service: the restarted server is empty, so the
    // first request stores the page again and a later one is a hit.
    let mut hit = false;
    for _ in 0..100 {
        let (parts, body) = common::send(&svc, common::get("/p/0")).await;
        assert_eq!(body, "page /p/0");
        if is_hit(&parts) {
            hit = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hit, "no hit after Memcached came back");
    drop(server);
}

// ---------------------------------------------------------------------------
// The shared conformance suite, one server per test
// ---------------------------------------------------------------------------

/// A fresh server per test: no namespace in Memcached, and `clear` flushes the
/// whole server. Memcached differs from the defaults in every capability the
/// suite knows: whole-second TTLs, unsigned counters, and keys refused rather
/// than stored with a warning (see `MemcachedBackend`'s documentation).
fn memcached_cache() -> BoxFuture<'static, Fixture> {
    Box::pin(async {
        let server = Memcached::start();
        let port = server.port;
        let cache = Cache::new(backend(&[&server]).await);
        let probe: TtlProbe = Arc::new(move |key: String| Box::pin(server_ttl(port, key)));
        Fixture::server(cache, Some(probe), Box::new(server)).with_capabilities(Capabilities {
            whole_second_ttl: true,
            unsigned_counters: true,
            rejects_invalid_keys: true,
        })
    })
}

/// The server's remaining time to live for `key` (`mg <key> t`: `t-1` is
/// never).
async fn server_ttl(port: u16, key: String) -> ServerTtl {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut stream = BufReader::new(stream);
    stream
        .get_mut()
        .write_all(format!("mg {key} t\r\n").as_bytes())
        .await
        .expect("write");
    let mut reply = String::new();
    stream.read_line(&mut reply).await.expect("read");
    match reply.trim_end() {
        "EN" => ServerTtl::Missing,
        "HD t-1" => ServerTtl::Persistent,
        other => {
            let secs = other
                .strip_prefix("HD t")
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("mg {key} t: {other}"));
            ServerTtl::Expires(Duration::from_secs(secs))
        }
    }
}

conformance!(memcached, memcached_cache);
