//! A backend on a Redis server (feature `redis`), so that every instance of a
//! service shares one cache: a page stored by one process is a hit in the others,
//! and a purge through one is seen by all.
//!
//! Built on [redis-rs](https://docs.rs/redis) with tokio and a
//! `ConnectionManager`: one multiplexed connection per backend (clones share it),
//! replaced in the background when it breaks, so a restarted server is used again
//! without rebuilding anything.
//!
//! # Commands
//!
//! | operation | Redis |
//! | --- | --- |
//! | `get` | `GET` |
//! | `set` | `SET key value PX ms` (no time to live: plain `SET`, which persists) |
//! | `add` | `SET key value NX PX ms` |
//! | `delete` | `DEL` |
//! | `touch` | `PEXPIRE`; to persist, a Lua script running `PERSIST` then `EXISTS` (`PERSIST` alone answers 0 for a key that exists without a time to live) |
//! | `incr` | a Lua script: `EXISTS`, then `INCRBY` (one atomic step; `INCRBY` keeps the time to live) |
//! | `get_many` | one `MGET` |
//! | `set_many` | one pipeline of `SET .. PX` (one round trip) |
//! | `delete_many` | one `DEL k1 k2 ..` |
//! | `set_add` | a Lua script: `SADD`, then `PEXPIRE` when the set is new or its `PTTL` is shorter than asked (one atomic step) |
//! | `set_take` | a Lua script: `SMEMBERS` then `UNLINK` (one atomic step) |
//! | `clear` | `SCAN MATCH <namespace>*` and `UNLINK` in batches; `FLUSHDB` only if asked for |
//!
//! Times to live are sent in milliseconds, rounded up (a value never lives
//! shorter than asked), at least 1 ms. Every key is prefixed with the backend's
//! namespace (default `trc:`), so several caches, or other data, can share one
//! database (sets too: they are Redis sets under namespaced keys). Unlike
//! Django's `RedisCache`, `clear` deletes only this namespace:
//! `FLUSHDB` is an explicit opt-in ([`RedisBackendBuilder::flush_db_on_clear`]).
//!
//! # Failures
//!
//! Each round trip is bounded by the backend's timeout (default 50 ms); a call
//! that takes longer is [`BackendError::Timeout`], and a refused connection, a
//! broken pipe or a protocol error is [`BackendError::Other`]. The response cache
//! turns either into a miss; the low-level API hands it to the caller. Nothing
//! here panics. The backend needs a tokio runtime (with its time and I/O drivers)
//! to run on; called outside one, an operation is an error.
//!
//! # URLs
//!
//! `redis://[user:pass@]host:port/db`, and `redis+unix:///path/to.sock?db=N` for a
//! Unix socket. `rediss://` (TLS) is refused with an error: redis-rs's rustls
//! support needs the application to install a rustls crypto provider (it panics
//! without one), and its native-tls support needs OpenSSL headers at build time;
//! neither fits a default build of this crate.
//!
//! # Redis Cluster
//!
//! Not supported. redis-rs has a separate cluster client (`cluster-async`) with
//! its own connection type; `MGET`, multi-key `DEL` and the pipelined `set_many`
//! would fail across hash slots (`CROSSSLOT`) and `clear` would have to scan every
//! primary. Point the backend at one server (or a proxy in front of a cluster).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue, RedisError, RedisResult, Script};

use super::{Backend, BackendError, BoxFuture, Ttl};

/// Default bound on one round trip: a cache that answers slower than this is
/// better treated as a miss.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// Default bound on connecting when the backend is built.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default key prefix.
const DEFAULT_NAMESPACE: &str = "trc:";
/// How many keys one `SCAN` step asks for while clearing.
const SCAN_BATCH: usize = 1000;
/// The longest time to live sent to Redis, in milliseconds: far beyond any real
/// use, and far enough below `i64::MAX` that Redis never refuses it for
/// overflowing its clock.
const MAX_TTL_MS: u128 = 1 << 60;
/// How often the connection manager retries one reconnection before giving up
/// until the next operation asks again: a cache must fail fast, not queue.
const RECONNECT_RETRIES: usize = 2;
/// The longest pause between two reconnection attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// `incr`: the existence check and the increment must be one atomic step, or a
/// key that expires in between would be created by `INCRBY` (Django's two calls
/// have that race). `INCRBY` keeps the time to live.
const INCR_SCRIPT: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then \
     return redis.call('INCRBY', KEYS[1], ARGV[1]) \
     else return false end";

/// `touch` without a time to live: `PERSIST` answers 0 both for a missing key and
/// for one that already persists, so when it answers 0, `EXISTS` tells which.
const PERSIST_SCRIPT: &str = "if redis.call('PERSIST', KEYS[1]) == 1 then return 1 end \
     return redis.call('EXISTS', KEYS[1])";

/// `set_add`: one atomic step, so concurrent adds all land and none sees a set
/// without its time to live. A key holding another type (a plain value) is
/// replaced by a new set, as the other backends do. The time to live is set
/// when the set is new, and raised when it is shorter than asked (`PTTL` is
/// -1 for a set that already never expires, which is kept). `ARGV[2]` goes to
/// `PEXPIRE` as sent: a Lua number could be formatted as a float.
const SET_ADD_SCRIPT: &str = "local kind = redis.call('TYPE', KEYS[1]).ok \
     if kind ~= 'set' and kind ~= 'none' then redis.call('DEL', KEYS[1]) kind = 'none' end \
     redis.call('SADD', KEYS[1], ARGV[1]) \
     local left = redis.call('PTTL', KEYS[1]) \
     if kind == 'none' or (left >= 0 and left < tonumber(ARGV[2])) then \
     redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
     return 1";

/// `set_take`: the members and the removal in one atomic step, so an add
/// lands either before (and is returned) or after (in a new set). Another
/// type under the key is removed and holds no members.
const SET_TAKE_SCRIPT: &str = "local kind = redis.call('TYPE', KEYS[1]).ok \
     if kind == 'none' then return {} end \
     local members = {} \
     if kind == 'set' then members = redis.call('SMEMBERS', KEYS[1]) end \
     redis.call('UNLINK', KEYS[1]) \
     return members";

/// A cache on a Redis server, shared by every process that points at it.
///
/// Use it when several instances of a service must see one cache. Clones share
/// one connection. Built with [`RedisBackend::builder`]:
///
/// ```no_run
/// # async fn demo() -> Result<(), tower_response_cache::backend::BackendError> {
/// use std::time::Duration;
/// use tower_response_cache::backend::RedisBackend;
///
/// let backend = RedisBackend::builder("redis://127.0.0.1:6379/0")
///     .namespace("shop:")
///     .timeout(Duration::from_millis(30))
///     .build()
///     .await?;
/// # let _ = backend;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

/// What clones of a [`RedisBackend`] share.
struct Inner {
    conn: ConnectionManager,
    namespace: String,
    /// `SCAN MATCH` pattern for the namespace: glob characters escaped, then `*`.
    pattern: String,
    timeout: Duration,
    flush_db_on_clear: bool,
    /// `host:port` or the socket path, for `Debug` (no credentials).
    addr: String,
    db: i64,
    incr: Script,
    persist: Script,
    set_add: Script,
    set_take: Script,
}

/// Settings for a [`RedisBackend`]: where the server is, how long to wait for it,
/// and which keys belong to this cache.
///
/// Made by [`RedisBackend::builder`]; nothing connects until
/// [`build`](Self::build). Its `Debug` output hides the URL's password.
#[derive(Clone)]
pub struct RedisBackendBuilder {
    url: String,
    timeout: Duration,
    connect_timeout: Duration,
    namespace: String,
    flush_db_on_clear: bool,
}

impl RedisBackend {
    /// Starts configuring a backend on the server at `url`
    /// (`redis://[user:pass@]host:port/db`).
    pub fn builder(url: &str) -> RedisBackendBuilder {
        RedisBackendBuilder {
            url: url.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            flush_db_on_clear: false,
        }
    }

    /// The prefix of every key this backend writes, for tools that inspect the
    /// server.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The key stored on the server for a cache key.
    fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.inner.namespace.len() + key.len());
        full.push_str(&self.inner.namespace);
        full.push_str(key);
        full
    }

    /// A handle on the shared connection (an `Arc` clone).
    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// Runs one round trip within the timeout, keeping redis-rs's error so the
    /// caller can classify it.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = RedisResult<T>>,
    ) -> Result<RedisResult<T>, BackendError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(other("the Redis backend must run on a tokio runtime"));
        }
        tokio::time::timeout(self.inner.timeout, op)
            .await
            .map_err(|_| BackendError::Timeout(self.inner.timeout))
    }

    /// Runs one round trip within the timeout.
    async fn run<T>(&self, op: impl Future<Output = RedisResult<T>>) -> Result<T, BackendError> {
        self.bounded(op)
            .await?
            .map_err(|error| convert(error, self.inner.timeout))
    }

    /// Sends one command and reads its answer as `T`.
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, BackendError> {
        let mut conn = self.conn();
        self.run(cmd.query_async(&mut conn)).await
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("addr", &self.inner.addr)
            .field("db", &self.inner.db)
            .field("namespace", &self.inner.namespace)
            .field("timeout", &self.inner.timeout)
            .field("flush_db_on_clear", &self.inner.flush_db_on_clear)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RedisBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackendBuilder")
            .field("url", &redact(&self.url))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("namespace", &self.namespace)
            .field("flush_db_on_clear", &self.flush_db_on_clear)
            .finish()
    }
}

impl RedisBackendBuilder {
    /// The longest one round trip may take (default 50 ms) before it is
    /// [`BackendError::Timeout`]: a slow cache must not slow every request down.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest [`build`](Self::build) waits for the first connection (default
    /// 1 s), and each later reconnection attempt too: a service should start (and
    /// serve uncached) even when Redis is down.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The prefix of every key (default `"trc:"`), so that several caches or
    /// other data share one database; [`clear`](Backend::clear) deletes only keys
    /// under it. An empty namespace makes `clear` delete every key of the
    /// database.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Makes [`clear`](Backend::clear) run `FLUSHDB` (Django's behaviour), which
    /// deletes every key of the database, this cache's or not (default `false`:
    /// only the namespace is deleted). Worth it only for a database that holds
    /// nothing but this cache, where it is faster than scanning.
    #[must_use]
    pub fn flush_db_on_clear(mut self, flush: bool) -> Self {
        self.flush_db_on_clear = flush;
        self
    }

    /// Parses the URL and connects.
    ///
    /// # Errors
    ///
    /// [`BackendError::Other`] for a URL that does not parse, a `rediss://` URL,
    /// or a server that refuses the connection or the credentials;
    /// [`BackendError::Timeout`] when no connection is made within the connect
    /// timeout.
    pub async fn build(self) -> Result<RedisBackend, BackendError> {
        let scheme = self.url.split("://").next().unwrap_or_default();
        if scheme.eq_ignore_ascii_case("rediss") || scheme.eq_ignore_ascii_case("valkeys") {
            return Err(other(
                "rediss:// (TLS) is not supported by the Redis backend of this crate",
            ));
        }
        let client = Client::open(self.url.as_str()).map_err(|error| {
            // redis-rs's messages name the problem, never the URL's password.
            other(format!("invalid Redis URL {}: {error}", redact(&self.url)))
        })?;
        let info = client.get_connection_info();
        let addr = info.addr().to_string();
        let db = info.redis_settings().db();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(other("the Redis backend must be built on a tokio runtime"));
        }
        let conn = tokio::time::timeout(
            self.connect_timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| BackendError::Timeout(self.connect_timeout))?
        .map_err(|error| convert(error, self.connect_timeout))?;
        let pattern = format!("{}*", glob_escape(&self.namespace));
        Ok(RedisBackend {
            inner: Arc::new(Inner {
                conn,
                namespace: self.namespace,
                pattern,
                timeout: self.timeout,
                flush_db_on_clear: self.flush_db_on_clear,
                addr,
                db,
                incr: Script::new(INCR_SCRIPT),
                persist: Script::new(PERSIST_SCRIPT),
                set_add: Script::new(SET_ADD_SCRIPT),
                set_take: Script::new(SET_TAKE_SCRIPT),
            }),
        })
    }
}

/// A backend error for anything that is neither a timeout nor one of the typed
/// cases.
fn other(message: impl Into<String>) -> BackendError {
    BackendError::Other(message.into().into())
}

/// redis-rs's timeouts (its own response timeout) are timeouts here too;
/// everything else (refused, dropped, protocol) is `Other`.
fn convert(error: RedisError, timeout: Duration) -> BackendError {
    if error.is_timeout() {
        BackendError::Timeout(timeout)
    } else {
        BackendError::Other(Box::new(error))
    }
}

/// Whether `INCRBY` refused the value: not an integer (`ERR value is not an
/// integer or out of range`), an overflow (`ERR increment or decrement would
/// overflow`) or a key of another type (`WRONGTYPE`).
fn is_not_an_integer(error: &RedisError) -> bool {
    match error.code() {
        None => false,
        Some("WRONGTYPE") => true,
        Some(_) => {
            let text = error.to_string();
            text.contains("not an integer") || text.contains("overflow")
        }
    }
}

/// A time to live in whole milliseconds for `PX`/`PEXPIRE`: rounded up, at least
/// 1 (Redis refuses 0), at most [`MAX_TTL_MS`].
fn millis(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000).clamp(1, MAX_TTL_MS);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// `s` with the characters that `SCAN MATCH` treats as glob syntax escaped.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `url` without its password (userinfo and query string hidden), for `Debug`
/// and error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsed URL>".to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, _)) => (rest, "?<hidden>"),
        None => (rest, ""),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:<hidden>@{host}{path}{query}")
        }
        None => format!("{scheme}://{authority}{path}{query}"),
    }
}

impl Backend for RedisBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
        Box::pin(async move { self.query(redis::cmd("GET").arg(self.key(key))).await })
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.key(key)).arg(value.as_ref());
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(millis(ttl));
            }
            self.query(&cmd).await
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.key(key)).arg(value.as_ref()).arg("NX");
            if let Some(ttl) = ttl {
                cmd.arg("PX").arg(millis(ttl));
            }
            // `OK` when stored, nil when the key holds a value.
            let stored: Option<()> = self.query(&cmd).await?;
            Ok(stored.is_some())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            let removed: u64 = self.query(redis::cmd("DEL").arg(self.key(key))).await?;
            Ok(removed > 0)
        })
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            let key = self.key(key);
            let touched: u64 = match ttl {
                Some(ttl) => {
                    self.query(redis::cmd("PEXPIRE").arg(&key).arg(millis(ttl)))
                        .await?
                }
                None => {
                    let mut conn = self.conn();
                    self.run(self.inner.persist.key(&key).invoke_async(&mut conn))
                        .await?
                }
            };
            Ok(touched == 1)
        })
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64, BackendError>> {
        Box::pin(async move {
            let mut conn = self.conn();
            let result: RedisResult<Option<i64>> = self
                .bounded(
                    self.inner
                        .incr
                        .key(self.key(key))
                        .arg(delta)
                        .invoke_async(&mut conn),
                )
                .await?;
            match result {
                Ok(Some(value)) => Ok(value),
                Ok(None) => Err(BackendError::KeyNotFound),
                Err(error) if is_not_an_integer(&error) => Err(BackendError::NotAnInteger),
                Err(error) => Err(convert(error, self.inner.timeout)),
            }
        })
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            if self.inner.flush_db_on_clear {
                // ASYNC: the keys vanish at once; the server frees them in the
                // background instead of blocking every client meanwhile.
                return self.query(redis::cmd("FLUSHDB").arg("ASYNC")).await;
            }
            // SCAN may return a key more than once and never misses one that
            // exists for the whole scan; each step is one bounded round trip.
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = self
                    .query(
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(&self.inner.pattern)
                            .arg("COUNT")
                            .arg(SCAN_BATCH),
                    )
                    .await?;
                if !keys.is_empty() {
                    let _: u64 = self.query(redis::cmd("UNLINK").arg(&keys)).await?;
                }
                if next == 0 {
                    return Ok(());
                }
                cursor = next;
            }
        })
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, BackendError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            let mut cmd = redis::cmd("MGET");
            for key in keys {
                cmd.arg(self.key(key));
            }
            let values: Vec<Option<Bytes>> = self.query(&cmd).await?;
            if values.len() != keys.len() {
                return Err(other(format!(
                    "MGET of {} keys answered {} values",
                    keys.len(),
                    values.len()
                )));
            }
            Ok(values)
        })
    }

    fn set_many<'a>(
        &'a self,
        items: Vec<(String, Bytes)>,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            if items.is_empty() {
                return Ok(Vec::new());
            }
            let px = ttl.map(millis);
            let mut pipe = redis::pipe();
            // Per-command results, so one refused value fails only its key.
            pipe.ignore_errors();
            for (key, value) in &items {
                pipe.cmd("SET").arg(self.key(key)).arg(value.as_ref());
                if let Some(px) = px {
                    pipe.arg("PX").arg(px);
                }
            }
            let mut conn = self.conn();
            let results: Vec<RedisResult<()>> = self.run(pipe.query_async(&mut conn)).await?;
            if results.len() != items.len() {
                return Err(other(format!(
                    "a pipeline of {} SETs answered {} results",
                    items.len(),
                    results.len()
                )));
            }
            Ok(items
                .into_iter()
                .zip(results)
                .filter_map(|((key, _), result)| result.is_err().then_some(key))
                .collect())
        })
    }

    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            let mut cmd = redis::cmd("DEL");
            for key in keys {
                cmd.arg(self.key(key));
            }
            let _: u64 = self.query(&cmd).await?;
            Ok(())
        })
    }

    fn set_add<'a>(
        &'a self,
        key: &'a str,
        member: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let mut conn = self.conn();
            let _: i64 = self
                .run(
                    self.inner
                        .set_add
                        .key(self.key(key))
                        .arg(member.as_ref())
                        .arg(millis(ttl))
                        .invoke_async(&mut conn),
                )
                .await?;
            Ok(())
        })
    }

    fn set_take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<Bytes>, BackendError>> {
        Box::pin(async move {
            let mut conn = self.conn();
            self.run(
                self.inner
                    .set_take
                    .key(self.key(key))
                    .invoke_async(&mut conn),
            )
            .await
        })
    }

    /// Nothing to release: the connection is shared by clones and reopened by
    /// itself, so the backend stays usable.
    fn close(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("trc:"), "trc:");
        assert_eq!(glob_escape(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
    }

    #[test]
    fn millis_round_up_and_stay_positive() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::from_micros(1_500)), 2);
        assert_eq!(millis(Duration::from_millis(100_200)), 100_200);
        assert_eq!(millis(Duration::MAX), 1 << 60);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:secret@host:6379/2"),
            "redis://user:<hidden>@host:6379/2"
        );
        assert_eq!(
            redact("redis://:secret@host:6379"),
            "redis://:<hidden>@host:6379"
        );
        assert_eq!(redact("redis://host:6379/0"), "redis://host:6379/0");
        assert_eq!(
            redact("redis+unix:///tmp/r.sock?pass=secret"),
            "redis+unix:///tmp/r.sock?<hidden>"
        );
        assert!(!format!("{:?}", RedisBackend::builder("redis://u:pw@h:1/0")).contains("pw"));
    }
}
