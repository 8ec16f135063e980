//! A backend on one or more Memcached servers (Django's `PyMemcacheCache`), so
//! that every instance of a service shares one cache.
//!
//! # The client
//!
//! The wire protocol is spoken by [async-memcached] 0.9 (Shopify): tokio-native,
//! maintained, bytes in and out, both the ASCII and the meta protocol. Above all,
//! since 0.9 an operation that is cancelled or fails half-way closes its
//! connection (a half-read reply can never answer the next request) and
//! `Client::is_closed` says so; that is what lets this backend put a timeout on
//! every operation and simply drop a connection that did not finish. The
//! alternatives leave that to the caller: `memcache-async` speaks the protocol
//! over any stream with no connection handling, and the `memcache` crate blocks.
//!
//! One `Client` is one connection used through `&mut self`, so the backend keeps
//! a small pool per server (see [`MemcachedBackendBuilder::connections_per_server`]).
//! Two gaps in the client are worked around: its ASCII `get` reply parser
//! refuses keys with non-ASCII bytes (which Memcached accepts), so reads use the
//! meta protocol's `mg`; it has no `touch`, so `touch` is `mg <key> T<ttl>`. The
//! meta protocol needs Memcached 1.6 or later. The client connects over IPv4 (or
//! a host name that resolves to an IPv4 address) only.
//!
//! What users need to know (servers, failures, semantics) is on
//! [`MemcachedBackend`], since this module is private.
//!
//! [async-memcached]: https://docs.rs/async-memcached

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::{
    AsciiProtocol, Client, Error as ClientError, ErrorKind, MetaProtocol, MetaValue, Status,
};
use bytes::Bytes;
use tokio::sync::{Semaphore, SemaphorePermit};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use super::{Backend, BackendError, BoxFuture, KeyPolicy, Ttl, set_codec};
use crate::clock::unix_millis;

/// Memcached's port when a server is named without one.
const DEFAULT_PORT: u16 = 11211;
/// Long enough for a round trip on a local network, short enough that a dead
/// server costs a request little.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// Connections kept per server by default.
const DEFAULT_CONNECTIONS: usize = 4;
/// Memcached's default item size limit (`-I 1m`).
const DEFAULT_MAX_VALUE_SIZE: usize = 1024 * 1024;
/// Memcached's limit on key length, in bytes.
const MAX_KEY_BYTES: usize = 250;
/// The longest time to live Memcached reads as relative; longer ones must be
/// absolute Unix times.
const MAX_RELATIVE_EXPIRY: u64 = 30 * 24 * 60 * 60;
/// The URL scheme of [`MemcachedBackend::from_url`].
const URL_SCHEME: &str = "memcached://";
/// How many read-then-compare-and-swap rounds `set_add` and `set_take` try:
/// each lost round means another writer's round won, so running out takes
/// that many writers on one key at once (and the timeout bounds it anyway).
const SET_ATTEMPTS: usize = 64;
/// Room left, beyond the key, for the item header the server counts against
/// its item size limit (about 50 bytes with CAS; generously rounded up). A set
/// must never reach the server's limit: a refused write also removes the item
/// it would have replaced, that is, the whole set.
const SET_ITEM_OVERHEAD: usize = 128;

/// A cache on a pool of Memcached servers (Django's `PyMemcacheCache`): one cache
/// shared by every instance of a service, with Memcached's semantics (below).
///
/// Clones share the servers and their connections.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_response_cache::backend::MemcachedBackend;
///
/// # async fn run() -> Result<(), tower_response_cache::backend::BackendError> {
/// let backend = MemcachedBackend::builder(["10.0.0.5:11211", "10.0.0.6:11211"])
///     .timeout(Duration::from_millis(20))
///     .build()
///     .await?;
/// let same = MemcachedBackend::from_url("memcached://10.0.0.5:11211,10.0.0.6:11211")?
///     .build()
///     .await?;
/// # let _ = (backend, same);
/// # Ok(())
/// # }
/// ```
///
/// # Servers
///
/// A key lives on one server, chosen by rendezvous (highest random weight)
/// hashing: each server gets a score `xxh3_64(key, seed = xxh3_64(server))` and
/// the highest wins. Every process that lists the same servers, in any order,
/// picks the same server for a key; adding or removing a server moves only the
/// keys that go to (or came from) that server. Servers are named as written
/// (`cache1:11211` and `10.0.0.5:11211` are two names even if they are one
/// machine), so every instance must list them the same way.
///
/// # Connections and failures
///
/// Connections are made when first needed (a server that is down when the
/// service starts does not stop it) and kept for reuse, at most
/// `connections_per_server` per server. Every operation, waiting for a free
/// connection and connecting included, has one timeout
/// ([`BackendError::Timeout`]). A connection that fails or times out is dropped;
/// an I/O error also drops that server's idle connections, since the server has
/// most likely restarted, so the next operation connects afresh. A refused
/// connection is an immediate [`BackendError::Other`]. Nothing is retried:
/// callers (the response cache) treat an error as a miss.
///
/// The backend needs a tokio runtime with the I/O and time drivers enabled (what
/// `#[tokio::main]` gives).
///
/// # Memcached's semantics
///
/// These are Memcached's, and so also those of Django's Memcached backends; they
/// differ from the in-process and file backends:
///
/// - Times to live are whole seconds, rounded up (half a second becomes one, never
///   zero, which would mean "never"). Memcached's clock ticks once a second, so a
///   value may expire up to a second early. Over 30 days, a time to live is sent
///   as an absolute Unix time (as Memcached requires), read against the server's
///   clock.
/// - Keys are refused ([`BackendError::InvalidKey`]) when over 250 bytes or when
///   they hold spaces, control characters or DEL; [`key_policy`] is
///   [`KeyPolicy::Reject`], so [`Cache`](crate::Cache) refuses them first.
/// - A value over the item size limit is refused with
///   [`BackendError::ValueTooLarge`] and, as Django does after a failed `set`,
///   the key's old value is deleted. Any other refused `set` deletes it too.
/// - Counters are unsigned 64-bit: `incr` with a negative delta is Memcached's
///   `decr`, which stops at 0 instead of going negative; a stored negative
///   number is not a number to Memcached ([`BackendError::NotAnInteger`]). A
///   result over `i64::MAX` is [`BackendError::NotAnInteger`] as on the other
///   backends, but Memcached has stored it: the backend undoes it at once with
///   the opposite operation, and a concurrent reader may see the passing value.
///   A `decr` that shortens a number leaves it padded with spaces on the server
///   (`"10"` becomes `"9 "`); `get` strips that padding from values that are
///   digits followed by spaces.
/// - `clear` is `flush_all` on every server: it empties the servers entirely,
///   not only this cache's keys (Django does the same).
/// - Memcached has no sets: a set of [`set_add`] is one item in
///   [`set_codec`](super::set_codec)'s format, changed by optimistic
///   compare-and-swap (`mg` with its CAS value, then `ms` with `C<cas>`, or in
///   add mode `ME` for a new set), retried when another writer came first, so
///   concurrent adds from any number of instances all land. [`set_take`] is
///   `mg` then `md` with `C<cas>`: it removes exactly the set it read, or reads
///   again. This needs CAS on the servers (the default; `-C` turns it off).
///   The set's life is the item's: the server's remaining time to live (`mg`
///   flag `t`) is kept when longer than asked. A set whose encoding, with its
///   key and the item's header, would be over the item size limit is
///   [`BackendError::ValueTooLarge`], and the set is left as it was (the
///   server would remove it on refusing the write, which is why
///   `max_value_size` must not exceed the servers' `-I` when sets are used).
///
/// [`set_add`]: Backend::set_add
/// [`set_take`]: Backend::set_take
/// - The server may evict any value early when it runs out of memory.
///
/// [`key_policy`]: Backend::key_policy
#[derive(Clone)]
pub struct MemcachedBackend {
    inner: Arc<Inner>,
}

/// Settings for a [`MemcachedBackend`]: its servers, the timeout of each
/// operation, the size of its connection pools and the largest value it stores.
///
/// Made by [`MemcachedBackend::builder`] or [`MemcachedBackend::from_url`];
/// nothing is checked or connected until [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct MemcachedBackendBuilder {
    servers: Vec<String>,
    timeout: Duration,
    connections_per_server: usize,
    max_value_size: usize,
}

/// What clones of a [`MemcachedBackend`] share.
struct Inner {
    servers: Vec<Server>,
    timeout: Duration,
    connections_per_server: usize,
    max_value_size: usize,
}

/// One Memcached server and its connections.
struct Server {
    /// `host:port`, as configured (its identity for hashing).
    addr: String,
    /// What the client connects to: `tcp://host:port`.
    dsn: String,
    /// The server's hashing seed, from its address.
    seed: u64,
    /// Connections not in use. Never more than the semaphore's permits, since a
    /// connection only comes back here from a holder of a permit.
    idle: Mutex<Vec<Client>>,
    /// One permit per connection the server may have in use at once.
    permits: Semaphore,
}

/// A connection taken from a server's pool for one operation.
///
/// Dropped without [`release`](Pooled::release) (the operation was cancelled by
/// its timeout, say), it closes the connection: the reply may still be on its
/// way, and must never answer the next request.
struct Pooled<'a> {
    server: &'a Server,
    client: Client,
    _permit: SemaphorePermit<'a>,
}

/// A client error with the server it came from, for logs.
#[derive(Debug, thiserror::Error)]
#[error("memcached server {server}: {source}")]
struct ServerError {
    server: String,
    source: ClientError,
}

impl MemcachedBackend {
    /// Starts configuring a backend on `servers`, each `host:port` (the port
    /// defaults to 11211; a `tcp://` prefix is allowed).
    pub fn builder(
        servers: impl IntoIterator<Item = impl Into<String>>,
    ) -> MemcachedBackendBuilder {
        MemcachedBackendBuilder {
            servers: servers.into_iter().map(Into::into).collect(),
            timeout: DEFAULT_TIMEOUT,
            connections_per_server: DEFAULT_CONNECTIONS,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
        }
    }

    /// Starts configuring a backend from a URL naming its servers, for
    /// configuration kept as one string: `memcached://h1:11211,h2:11211`.
    ///
    /// # Errors
    ///
    /// [`BackendError::Other`] when the URL has another scheme, no server, or a
    /// user, path or query (none of which this backend uses: refusing them beats
    /// ignoring a setting the caller thinks is in force).
    pub fn from_url(url: &str) -> Result<MemcachedBackendBuilder, BackendError> {
        let bad = |reason: &str| BackendError::Other(format!("bad URL {url:?}: {reason}").into());
        let rest = url
            .get(..URL_SCHEME.len())
            .filter(|scheme| scheme.eq_ignore_ascii_case(URL_SCHEME))
            .and_then(|_| url.get(URL_SCHEME.len()..))
            .ok_or_else(|| bad("the scheme must be memcached://"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(c) = rest.chars().find(|c| matches!(c, '/' | '?' | '#' | '@')) {
            return Err(bad(&format!("unexpected {c:?}: only servers are read")));
        }
        if rest.is_empty() {
            return Err(bad("no server"));
        }
        Ok(Self::builder(rest.split(',')))
    }

    /// The servers, as `host:port`, in the order given.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.inner.servers.iter().map(|s| s.addr.as_str())
    }

    /// The server that holds `key`, as `host:port`: for operators tracing a key
    /// to a machine.
    pub fn server_for(&self, key: &str) -> &str {
        &self.inner.servers[self.inner.pick(key)].addr
    }
}

impl fmt::Debug for MemcachedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedBackend")
            .field("servers", &self.servers().collect::<Vec<_>>())
            .field("timeout", &self.inner.timeout)
            .field("connections_per_server", &self.inner.connections_per_server)
            .field("max_value_size", &self.inner.max_value_size)
            .finish()
    }
}

impl MemcachedBackendBuilder {
    /// The longest one operation may take, waiting for a connection and
    /// connecting included (default 50 ms); past it the operation fails with
    /// [`BackendError::Timeout`], so a slow or unreachable server costs a request
    /// at most this.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many connections each server may have at once (default 4, at least
    /// 1). Operations beyond that wait for a free connection, within their
    /// timeout; raise it for many concurrent requests per process.
    #[must_use]
    pub fn connections_per_server(mut self, n: usize) -> Self {
        self.connections_per_server = n.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// The largest value stored, in bytes (default 1 MiB, Memcached's default
    /// item size limit). Set it to the servers' `-I` when that was changed:
    /// larger values are refused without a round trip carrying them.
    #[must_use]
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// Checks the server names and returns the backend. Nothing is connected
    /// yet: each server is connected to when first used, so a server that is
    /// down does not stop the application from starting.
    ///
    /// # Errors
    ///
    /// [`BackendError::Other`] when there is no server, or a server name is not
    /// `host[:port]`.
    pub async fn build(self) -> Result<MemcachedBackend, BackendError> {
        let mut servers: Vec<Server> = Vec::with_capacity(self.servers.len());
        for name in &self.servers {
            let addr = normalise(name)?;
            if servers.iter().any(|s| s.addr == addr) {
                continue;
            }
            servers.push(Server {
                dsn: format!("tcp://{addr}"),
                seed: xxh3_64(addr.as_bytes()),
                addr,
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(self.connections_per_server),
            });
        }
        if servers.is_empty() {
            return Err(BackendError::Other("no memcached server given".into()));
        }
        Ok(MemcachedBackend {
            inner: Arc::new(Inner {
                servers,
                timeout: self.timeout,
                connections_per_server: self.connections_per_server,
                max_value_size: self.max_value_size,
            }),
        })
    }
}

/// `host:port` from a server name, or why it is not one.
fn normalise(name: &str) -> Result<String, BackendError> {
    let bad = |reason: &str| {
        BackendError::Other(format!("bad memcached server {name:?}: {reason}").into())
    };
    let trimmed = name.trim();
    let addr = trimmed.strip_prefix("tcp://").unwrap_or(trimmed);
    let addr = addr.strip_suffix('/').unwrap_or(addr);
    if addr.is_empty() {
        return Err(bad("empty"));
    }
    if addr.contains("://") {
        return Err(bad("only tcp:// servers are supported"));
    }
    if addr
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '@' | ','))
    {
        return Err(bad("expected host[:port]"));
    }
    if addr.ends_with(']') {
        return Ok(format!("{addr}:{DEFAULT_PORT}"));
    }
    match addr.rsplit_once(':') {
        None => Ok(format!("{addr}:{DEFAULT_PORT}")),
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(addr.to_owned())
        }
        Some(_) => Err(bad("expected host[:port] with a port from 0 to 65535")),
    }
}

impl Inner {
    /// The index of the server that holds `key` (rendezvous hashing).
    fn pick(&self, key: &str) -> usize {
        let mut best = (0, (0, 0));
        for (i, server) in self.servers.iter().enumerate() {
            // The seed breaks (astronomically unlikely) ties the same way in
            // every process, whatever the order of the servers.
            let score = (xxh3_64_with_seed(key.as_bytes(), server.seed), server.seed);
            if i == 0 || score > best.1 {
                best = (i, score);
            }
        }
        best.0
    }

    fn server(&self, key: &str) -> &Server {
        &self.servers[self.pick(key)]
    }

    /// Runs `op` within the operation timeout.
    async fn timed<T>(
        &self,
        op: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        tokio::time::timeout(self.timeout, op)
            .await
            .unwrap_or(Err(BackendError::Timeout(self.timeout)))
    }

    fn too_large(&self, size: usize) -> BackendError {
        BackendError::ValueTooLarge {
            size,
            limit: self.max_value_size,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BackendError> {
        check_key(key)?;
        let server = self.server(key);
        let mut conn = server.checkout().await?;
        let result = conn
            .client
            .meta_get(key, false, None, Some(&["v"][..]))
            .await;
        conn.release();
        Ok(result.map_err(|e| server.error(e))?.map(stored_value))
    }

    /// The values of `keys`, all held by `server`, keyed by key.
    async fn get_from(
        &self,
        server: &Server,
        keys: &[&str],
    ) -> Result<HashMap<Vec<u8>, Bytes>, BackendError> {
        let mut conn = server.checkout().await?;
        let result = conn.client.meta_get_multi(keys, Some(&["v"][..])).await;
        conn.release();
        let found = result.map_err(|e| server.error(e))?;
        Ok(found
            .into_iter()
            .filter_map(|v| Some((v.key.clone()?, stored_value(v))))
            .collect())
    }

    /// `set` (`add` when `only_new`); `Ok(false)` when `add` found a value.
    /// Anything the server refuses deletes the key when `set`, as Django does.
    async fn store(
        &self,
        key: &str,
        value: &[u8],
        ttl: Ttl,
        only_new: bool,
    ) -> Result<bool, BackendError> {
        check_key(key)?;
        if value.len() > self.max_value_size {
            if !only_new {
                self.timed(self.remove(key)).await?;
            }
            return Err(self.too_large(value.len()));
        }
        let exptime = expiry(ttl, SystemTime::now());
        let server = self.server(key);
        let (result, answered) = self
            .timed(async {
                let mut conn = server.checkout().await?;
                let result = if only_new {
                    conn.client.add(key, value, Some(exptime), None).await
                } else {
                    conn.client.set(key, value, Some(exptime), None).await
                };
                // An open connection means the server answered (with a refusal,
                // if anything); a closed one leaves the outcome unknown.
                let answered = !conn.client.is_closed();
                conn.release();
                Ok((result, answered))
            })
            .await?;
        let error = match result {
            Ok(()) => return Ok(true),
            Err(ClientError::Protocol(Status::NotStored)) if only_new => return Ok(false),
            Err(error) => error,
        };
        let refused = if is_too_large(&error) {
            // The server's own limit (its item size, which counts the key and
            // the item's header too) is lower than the configured one.
            BackendError::ValueTooLarge {
                size: value.len(),
                limit: value.len().saturating_sub(1).min(self.max_value_size),
            }
        } else {
            server.error(error)
        };
        if answered && !only_new {
            self.timed(self.remove(key)).await?;
        }
        Err(refused)
    }

    async fn remove(&self, key: &str) -> Result<bool, BackendError> {
        check_key(key)?;
        let server = self.server(key);
        let mut conn = server.checkout().await?;
        let result = conn.client.delete(key).await;
        conn.release();
        match result {
            Ok(()) => Ok(true),
            Err(ClientError::Protocol(Status::NotFound)) => Ok(false),
            Err(error) => Err(server.error(error)),
        }
    }

    async fn touch(&self, key: &str, ttl: Ttl) -> Result<bool, BackendError> {
        check_key(key)?;
        let exptime = format!("T{}", expiry(ttl, SystemTime::now()));
        let server = self.server(key);
        let mut conn = server.checkout().await?;
        // `s` (the size) makes a hit answer `HD s<n>` rather than a bare `HD`,
        // which the client cannot tell from a miss.
        let result = conn
            .client
            .meta_get(key, false, None, Some(&[exptime.as_str(), "s"][..]))
            .await;
        conn.release();
        Ok(result.map_err(|e| server.error(e))?.is_some())
    }

    async fn incr(&self, key: &str, delta: i64) -> Result<i64, BackendError> {
        check_key(key)?;
        let server = self.server(key);
        let mut conn = server.checkout().await?;
        let amount = delta.unsigned_abs();
        let up = delta >= 0;
        let result = if up {
            conn.client.increment(key, amount).await
        } else {
            conn.client.decrement(key, amount).await
        };
        let outcome = match result {
            Ok(n) => match i64::try_from(n) {
                Ok(n) => Ok(n),
                // Past i64::MAX (Memcached counts to u64::MAX): undone at once
                // with the opposite operation, so the value is left alone as on
                // the other backends (a concurrent `incr` in between may see
                // the passing value, and fail the same way).
                Err(_) => {
                    let undo = if up {
                        conn.client.decrement(key, amount).await
                    } else {
                        conn.client.increment(key, amount).await
                    };
                    match undo {
                        Ok(_) => Err(BackendError::NotAnInteger),
                        Err(error) => Err(server.error(error)),
                    }
                }
            },
            Err(ClientError::Protocol(Status::NotFound)) => Err(BackendError::KeyNotFound),
            // "cannot increment or decrement non-numeric value"
            Err(ClientError::Protocol(Status::Error(ErrorKind::Client(_)))) => {
                Err(BackendError::NotAnInteger)
            }
            Err(error) => Err(server.error(error)),
        };
        conn.release();
        outcome
    }

    async fn set_add(&self, key: &str, member: &[u8], ttl: Duration) -> Result<(), BackendError> {
        check_key(key)?;
        let server = self.server(key);
        let mut conn = server.checkout().await?;
        let result = self
            .set_add_on(server, &mut conn.client, key, member, ttl)
            .await;
        conn.release();
        result
    }

    /// `set_add`'s rounds on one connection: read the set with its CAS value
    /// and remaining time to live, then write it back only if nobody wrote in
    /// between (`C<cas>`; add mode `ME` when there was none). A lost round
    /// (`EX`, `NF`, `NS`) reads again.
    async fn set_add_on(
        &self,
        server: &Server,
        client: &mut Client,
        key: &str,
        member: &[u8],
        ttl: Duration,
    ) -> Result<(), BackendError> {
        let wanted = whole_seconds(ttl);
        for _ in 0..SET_ATTEMPTS {
            let found = client
                .meta_get(key, false, None, Some(&["v", "c", "t"][..]))
                .await
                .map_err(|e| server.error(e))?;
            let (mut set, cas, left) = match found {
                Some(item) => {
                    let data = Bytes::from(item.data.unwrap_or_default());
                    // Anything else under the key is replaced by a new set.
                    let set = set_codec::decode(&data).unwrap_or_default();
                    (set, Some(item.cas.unwrap_or(0)), item.ttl_remaining)
                }
                None => (set_codec::Set::default(), None, None),
            };
            // How long the set must live, in the server's whole seconds
            // (`None`: forever). `t` is the item's expiry minus the server's
            // now, so writing it back keeps the same expiry.
            let keep = match left {
                Some(-1) => None,
                Some(left) => Some(u64::try_from(left).unwrap_or(0).max(wanted)),
                None => Some(wanted),
            };
            let known = set.members.iter().any(|m| m == member);
            let long_enough = match left {
                Some(-1) => true,
                Some(left) => u64::try_from(left).is_ok_and(|left| left >= wanted),
                None => false,
            };
            if known && long_enough {
                // Already there, for long enough: nothing to write.
                return Ok(());
            }
            if !known {
                set.members.push(Bytes::copy_from_slice(member));
            }
            let now = SystemTime::now();
            set.expires_at = keep.map_or(u64::MAX, |secs| {
                unix_millis(now).saturating_add(secs.saturating_mul(1000))
            });
            let value = set_codec::encode(&set);
            let limit = self
                .max_value_size
                .saturating_sub(key.len() + SET_ITEM_OVERHEAD);
            if value.len() > limit {
                return Err(BackendError::ValueTooLarge {
                    size: value.len(),
                    limit,
                });
            }
            let exptime = format!("T{}", expiry(keep.map(Duration::from_secs), now));
            let mode = cas.map_or_else(|| "ME".to_owned(), |cas| format!("C{cas}"));
            let stored = client
                .meta_set(
                    key,
                    value.as_ref(),
                    false,
                    None,
                    Some(&[exptime.as_str(), mode.as_str()][..]),
                )
                .await;
            match stored {
                Ok(_) => return Ok(()),
                // EX: changed since read; NF: gone since read; NS: created
                // since read. Another writer won this round.
                Err(ClientError::Protocol(
                    Status::Exists | Status::NotFound | Status::NotStored,
                )) => {}
                Err(error) if is_too_large(&error) => {
                    return Err(BackendError::ValueTooLarge {
                        size: value.len(),
                        limit: value.len().saturating_sub(1).min(self.max_value_size),
                    });
                }
                Err(error) => return Err(server.error(error)),
            }
        }
        Err(lost_every_round(key))
    }

    async fn set_take(&self, key: &str) -> Result<Vec<Bytes>, BackendError> {
        check_key(key)?;
        let server = self.server(key);
        let mut conn = server.checkout().await?;
        let result = Self::set_take_on(server, &mut conn.client, key).await;
        conn.release();
        result
    }

    /// `set_take`'s rounds: read the set with its CAS value, then delete it
    /// only if it is still that set (`md` with `C<cas>`), so a member added in
    /// between is never deleted unseen: the delete fails (`EX`) and the set is
    /// read again.
    async fn set_take_on(
        server: &Server,
        client: &mut Client,
        key: &str,
    ) -> Result<Vec<Bytes>, BackendError> {
        for _ in 0..SET_ATTEMPTS {
            let found = client
                .meta_get(key, false, None, Some(&["v", "c"][..]))
                .await
                .map_err(|e| server.error(e))?;
            let Some(item) = found else {
                return Ok(Vec::new());
            };
            let cas = format!("C{}", item.cas.unwrap_or(0));
            match client
                .meta_delete(key, false, None, Some(&[cas.as_str()][..]))
                .await
            {
                Ok(_) => {
                    let data = Bytes::from(item.data.unwrap_or_default());
                    return Ok(set_codec::decode(&data)
                        .map(|set| set.members)
                        .unwrap_or_default());
                }
                // Changed since read (a member added): read again.
                Err(ClientError::Protocol(Status::Exists)) => {}
                // Gone since read: another take (or a delete, or expiry) got it.
                Err(ClientError::Protocol(Status::NotFound)) => return Ok(Vec::new()),
                Err(error) => return Err(server.error(error)),
            }
        }
        Err(lost_every_round(key))
    }

    async fn flush(&self, server: &Server) -> Result<(), BackendError> {
        let mut conn = server.checkout().await?;
        let result = conn.client.flush_all().await;
        conn.release();
        result.map_err(|e| server.error(e))
    }

    /// Drops every idle connection.
    fn disconnect(&self) {
        for server in &self.servers {
            server.idle().clear();
        }
    }
}

impl Server {
    fn idle(&self) -> MutexGuard<'_, Vec<Client>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection for one operation: an idle one, or a new one.
    async fn checkout(&self) -> Result<Pooled<'_>, BackendError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| BackendError::Other(Box::new(e)))?;
        let idle = self.idle().pop();
        let client = match idle {
            Some(client) => client,
            None => Client::new(&self.dsn).await.map_err(|e| self.error(e))?,
        };
        Ok(Pooled {
            server: self,
            client,
            _permit: permit,
        })
    }

    /// The backend error for a client error. A broken connection most likely
    /// means the server restarted: the idle ones are as dead, so they go too.
    fn error(&self, error: ClientError) -> BackendError {
        if matches!(
            error,
            ClientError::Io(_) | ClientError::Connect(_) | ClientError::ConnectionClosed
        ) {
            self.idle().clear();
        }
        BackendError::Other(Box::new(ServerError {
            server: self.addr.clone(),
            source: error,
        }))
    }
}

impl Pooled<'_> {
    /// Gives the connection back for reuse, unless the operation closed it.
    fn release(self) {
        if !self.client.is_closed() {
            self.server.idle().push(self.client);
        }
    }
}

/// Refuses keys Memcached would refuse, before they reach the wire.
fn check_key(key: &str) -> Result<(), BackendError> {
    if key.is_empty() {
        return Err(BackendError::InvalidKey("empty key".to_owned()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(BackendError::InvalidKey(format!(
            "{key:?} is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    if key.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(BackendError::InvalidKey(format!(
            "{key:?} contains spaces or control characters"
        )));
    }
    Ok(())
}

/// Memcached's `exptime` for a time to live: 0 for never, whole seconds
/// (rounded up) up to 30 days, an absolute Unix time beyond, -1 (already
/// expired) for zero.
fn expiry(ttl: Ttl, now: SystemTime) -> i64 {
    let Some(ttl) = ttl else {
        return 0;
    };
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    if secs == 0 {
        return -1;
    }
    if secs <= MAX_RELATIVE_EXPIRY {
        return i64::try_from(secs).unwrap_or(i64::MAX);
    }
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Memcached reads exptime as a signed 32-bit number.
    let at = now
        .saturating_add(secs)
        .min(u64::from(i32::MAX.unsigned_abs()));
    i64::try_from(at).unwrap_or(i64::MAX)
}

/// A time to live in whole seconds, rounded up, at least 1 (as [`expiry`]
/// sends it).
fn whole_seconds(ttl: Duration) -> u64 {
    ttl.as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0))
        .max(1)
}

/// The error of a set operation that lost every compare-and-swap round.
fn lost_every_round(key: &str) -> BackendError {
    BackendError::Other(
        format!("{key:?}: the set changed under each of {SET_ATTEMPTS} attempts to update it")
            .into(),
    )
}

/// Whether the server refused a value as over its item size limit
/// (`SERVER_ERROR object too large for cache`).
fn is_too_large(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Protocol(Status::Error(ErrorKind::Server(message)))
            if message.contains("too large")
    )
}

/// A value as stored. A counter that `decr` shortened is padded with spaces by
/// Memcached (`"10"` becomes `"9 "`); digits followed by spaces lose the spaces.
fn stored_value(value: MetaValue) -> Bytes {
    let mut data = value.data.unwrap_or_default();
    if let Some(last) = data.iter().rposition(|&b| b != b' ')
        && last + 1 < data.len()
        && data[..=last].iter().all(u8::is_ascii_digit)
    {
        data.truncate(last + 1);
    }
    Bytes::from(data)
}

/// Runs `futures` concurrently and returns their outputs in order (one
/// operation per server, each with its own timeout, so several servers cost
/// one timeout, not one each).
async fn join_all<T>(futures: Vec<BoxFuture<'_, T>>) -> Vec<T> {
    let mut slots: Vec<(BoxFuture<'_, T>, Option<T>)> =
        futures.into_iter().map(|f| (f, None)).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in &mut slots {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    slots.into_iter().filter_map(|(_, output)| output).collect()
}

impl Backend for MemcachedBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
        Box::pin(self.inner.timed(self.inner.get(key)))
    }

    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move { self.inner.store(key, &value, ttl, false).await.map(drop) })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move { self.inner.store(key, &value, ttl, true).await })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(self.inner.timed(self.inner.remove(key)))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(self.inner.timed(self.inner.touch(key, ttl)))
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64, BackendError>> {
        Box::pin(self.inner.timed(self.inner.incr(key, delta)))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let flushes = inner
                .servers
                .iter()
                .map(|server| -> BoxFuture<'_, _> { Box::pin(inner.timed(inner.flush(server))) })
                .collect();
            // Every server is flushed even when one fails; the first error wins.
            join_all(flushes).await.into_iter().collect()
        })
    }

    /// One multi-get (`mg ... k q` pipelined) per server holding some of the
    /// keys, the servers asked concurrently.
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, BackendError>> {
        Box::pin(async move {
            let inner = &*self.inner;
            let mut by_server: Vec<Vec<&str>> = vec![Vec::new(); inner.servers.len()];
            for key in keys {
                check_key(key)?;
                by_server[inner.pick(key)].push(key.as_str());
            }
            let lookups = inner
                .servers
                .iter()
                .zip(&by_server)
                .filter(|(_, keys)| !keys.is_empty())
                .map(|(server, keys)| -> BoxFuture<'_, _> {
                    Box::pin(inner.timed(inner.get_from(server, keys)))
                })
                .collect();
            let mut found = HashMap::new();
            for values in join_all(lookups).await {
                found.extend(values?);
            }
            Ok(keys
                .iter()
                .map(|key| found.get(key.as_bytes()).cloned())
                .collect())
        })
    }

    fn set_add<'a>(
        &'a self,
        key: &'a str,
        member: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            self.inner
                .timed(self.inner.set_add(key, &member, ttl))
                .await
        })
    }

    fn set_take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<Bytes>, BackendError>> {
        Box::pin(self.inner.timed(self.inner.set_take(key)))
    }

    fn close(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        self.inner.disconnect();
        super::ready(Ok(()))
    }

    fn key_policy(&self) -> KeyPolicy {
        KeyPolicy::Reject
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn expiry_rounds_up_and_goes_absolute_past_thirty_days() {
        let now = at(1_700_000_000);
        assert_eq!(expiry(None, now), 0);
        assert_eq!(expiry(Some(Duration::ZERO), now), -1);
        assert_eq!(expiry(Some(Duration::from_millis(500)), now), 1);
        assert_eq!(expiry(Some(Duration::from_millis(1001)), now), 2);
        assert_eq!(expiry(Some(Duration::from_secs(300)), now), 300);
        assert_eq!(expiry(Some(Duration::from_secs(2_592_000)), now), 2_592_000);
        assert_eq!(
            expiry(Some(Duration::from_secs(2_592_001)), now),
            1_700_000_000 + 2_592_001
        );
        assert_eq!(expiry(Some(Duration::MAX), now), i64::from(i32::MAX));
    }

    #[test]
    fn keys_follow_memcached_rules() {
        assert!(check_key(&"a".repeat(250)).is_ok());
        assert!(check_key("ünïcode").is_ok());
        for bad in [
            "a".repeat(251),
            "清".repeat(84),
            "has space".to_owned(),
            "tab\t".to_owned(),
            "del\x7f".to_owned(),
            "nl\n".to_owned(),
            String::new(),
        ] {
            assert!(
                matches!(check_key(&bad), Err(BackendError::InvalidKey(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn server_names() {
        assert_eq!(normalise("h1").unwrap(), "h1:11211");
        assert_eq!(normalise("tcp://h1:12345").unwrap(), "h1:12345");
        assert_eq!(normalise(" 10.0.0.1:1 ").unwrap(), "10.0.0.1:1");
        assert_eq!(normalise("[::1]").unwrap(), "[::1]:11211");
        for bad in ["", "h1:", "h1:99999", "unix:///tmp/s", "a b:1", ":11211"] {
            assert!(normalise(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn urls() {
        let backend = MemcachedBackend::from_url("memcached://h1:1,h2/")
            .unwrap()
            .build()
            .await
            .unwrap();
        assert_eq!(backend.servers().collect::<Vec<_>>(), ["h1:1", "h2:11211"]);
        // Extreme settings are clamped, never a panic.
        let backend = MemcachedBackend::builder(["h1", "tcp://h1:11211"])
            .connections_per_server(usize::MAX)
            .build()
            .await
            .unwrap();
        assert_eq!(backend.servers().count(), 1, "duplicates are one server");
        assert!(
            MemcachedBackend::builder(Vec::<String>::new())
                .build()
                .await
                .is_err()
        );
        for bad in [
            "redis://h1",
            "memcached://",
            "memcached://h1?timeout=1",
            "memcached://u@h1",
            "memcached://h1/x",
            "memcached://h1,,h2",
        ] {
            let built = match MemcachedBackend::from_url(bad) {
                Ok(builder) => builder.build().await.map(drop),
                Err(e) => Err(e),
            };
            assert!(built.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn padded_counters_lose_their_padding_only() {
        let value = |data: &[u8]| {
            stored_value(MetaValue {
                data: Some(data.to_vec()),
                ..MetaValue::default()
            })
        };
        assert_eq!(value(b"9 "), Bytes::from_static(b"9"));
        assert_eq!(value(b"123   "), Bytes::from_static(b"123"));
        assert_eq!(value(b"12"), Bytes::from_static(b"12"));
        assert_eq!(value(b"a "), Bytes::from_static(b"a "));
        assert_eq!(value(b"  "), Bytes::from_static(b"  "));
        assert_eq!(value(b"-1 "), Bytes::from_static(b"-1 "));
        assert_eq!(stored_value(MetaValue::default()), Bytes::new());
    }

    #[tokio::test]
    async fn rendezvous_is_independent_of_server_order() {
        let ab = MemcachedBackend::builder(["a:1", "b:1", "c:1"])
            .build()
            .await
            .unwrap();
        let ca = MemcachedBackend::builder(["c:1", "a:1", "b:1"])
            .build()
            .await
            .unwrap();
        let mut counts = HashMap::new();
        for i in 0..3000 {
            let key = format!("key{i}");
            assert_eq!(ab.server_for(&key), ca.server_for(&key));
            *counts.entry(ab.server_for(&key).to_owned()).or_insert(0) += 1;
        }
        // Roughly even: each server gets a third, give or take.
        assert!(
            counts.values().all(|&n| (800..1200).contains(&n)),
            "{counts:?}"
        );
        // Removing a server moves only its own keys.
        let ab_only = MemcachedBackend::builder(["a:1", "b:1"])
            .build()
            .await
            .unwrap();
        for i in 0..3000 {
            let key = format!("key{i}");
            if ab.server_for(&key) != "c:1" {
                assert_eq!(ab.server_for(&key), ab_only.server_for(&key));
            }
        }
    }
}
