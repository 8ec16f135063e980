//! Where bytes are kept: the [`Backend`] trait and the backends that ship with the
//! crate.
//!
//! A backend stores opaque byte values under string keys with an optional time to
//! live, and offers the few operations that must be atomic to be correct (`add`,
//! `incr`). It knows nothing of HTTP or serde: the response cache and the
//! low-level [`Cache`](crate::Cache) API build on it.
//!
//! Backends that live in this process can also hand the response cache decoded
//! entries directly (see [`Backend::as_memory`]), so a hit never serialises.

mod dummy;
mod file;
#[cfg(feature = "memcached")]
mod memcached;
mod memory;
#[cfg(feature = "redis")]
mod redis;
pub mod set_codec;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

pub use dummy::DummyBackend;
pub use file::{FileBackend, FileBackendBuilder};
#[cfg(feature = "memcached")]
pub use memcached::{MemcachedBackend, MemcachedBackendBuilder};
pub use memory::{MemoryBackend, MemoryBackendBuilder};
#[cfg(feature = "redis")]
pub use redis::{RedisBackend, RedisBackendBuilder};

/// A boxed, `Send` future: what [`Backend`] methods return, so the trait stays
/// object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An answer known at once, for backends that never wait.
pub(crate) fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(std::future::ready(value))
}

/// How long a value lives in a backend: `None` means it never expires.
///
/// Zero and negative timeouts never reach a backend: [`Cache`](crate::Cache) turns
/// them into a delete, as Django does.
pub type Ttl = Option<Duration>;

/// A failure of a backend operation.
///
/// The response cache treats every backend error as a miss (the request is served
/// by the inner service); the low-level API hands it to the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// `incr` on a key that holds no value.
    #[error("key not found")]
    KeyNotFound,
    /// `incr` on a value that is not a decimal integer (or would overflow).
    #[error("value is not an integer")]
    NotAnInteger,
    /// The key breaks the backend's rules (Memcached: over 250 bytes, or spaces
    /// and control characters).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The value is larger than the backend can store (Memcached's item size
    /// limit); any previous value under the key has been removed.
    #[error("value of {size} bytes is over the backend's limit of {limit} bytes")]
    ValueTooLarge {
        /// The value's size.
        size: usize,
        /// The largest value the backend stores.
        limit: usize,
    },
    /// The backend did not answer within its timeout.
    #[error("cache backend timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Reading or writing the backend's storage failed.
    #[error("cache backend I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else a backend implementation reports (connection refused,
    /// protocol error).
    #[error("cache backend error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// How a backend treats keys that Memcached would reject (Django's
/// `validate_key`: longer than 250 characters, or containing spaces or control
/// characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPolicy {
    /// The backend accepts any key; the cache only logs a warning (so code moved
    /// to Memcached later does not break silently).
    Warn,
    /// The backend cannot store such keys: the cache refuses them with
    /// [`CacheError::InvalidKey`](crate::CacheError::InvalidKey).
    Reject,
}

/// A cache backend: byte values under string keys, with a time to live.
///
/// Implementations must be cheap to call concurrently from many tasks. Values
/// written by [`Cache`](crate::Cache) for integers are their decimal ASCII form,
/// so that [`incr`](Backend::incr) can be one atomic operation where the store has
/// one (Redis `INCRBY`, Memcached `incr`).
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// The value under `key`, or `None` when there is none (or it expired).
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>>;

    /// Stores `value` under `key`, replacing any previous value.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// Stores `value` only if `key` holds nothing (or only an expired value);
    /// `true` if it was stored. Atomic: of two concurrent adds, one wins.
    fn add<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Removes `key`; `true` if something was removed.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Gives `key` a new time to live; `true` if it holds a value.
    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Adds `delta` to the decimal integer under `key`, keeping its expiry, and
    /// returns the new value. [`BackendError::KeyNotFound`] when there is no
    /// value, [`BackendError::NotAnInteger`] when it is not an integer.
    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64, BackendError>>;

    /// Removes every value this backend holds for this cache.
    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>>;

    /// The values of several keys, in order (one round trip where the backend
    /// can; by default one `get` each).
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, BackendError>> {
        Box::pin(async move {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                values.push(self.get(key).await?);
            }
            Ok(values)
        })
    }

    /// Stores several values with one time to live; returns the keys that could
    /// not be stored (by default one `set` each).
    fn set_many<'a>(
        &'a self,
        items: Vec<(String, Bytes)>,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<Vec<String>, BackendError>> {
        Box::pin(async move {
            let mut failed = Vec::new();
            for (key, value) in items {
                if self.set(&key, value, ttl).await.is_err() {
                    failed.push(key);
                }
            }
            Ok(failed)
        })
    }

    /// Removes several keys (by default one `delete` each).
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            for key in keys {
                self.delete(key).await?;
            }
            Ok(())
        })
    }

    /// Adds `member` to the set of byte strings under `key`, creating the set,
    /// and keeps the set for at least `ttl` from now (a longer life it already
    /// has is kept). The response cache's tag index lives in these sets, so a
    /// tag purged on one instance is purged for every instance sharing the
    /// backend.
    ///
    /// By default a read-modify-write through [`get`](Backend::get) and
    /// [`set`](Backend::set) of a value in [`set_codec`]'s format: correct
    /// alone, but two concurrent `set_add`s on one key can lose one member.
    /// Every backend of this crate overrides it with an atomic operation.
    fn set_add<'a>(
        &'a self,
        key: &'a str,
        member: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(async move {
            let now = set_codec::now_millis();
            let mut set = match self.get(key).await? {
                Some(bytes) => set_codec::decode(&bytes).unwrap_or_default(),
                None => set_codec::Set::default(),
            };
            set.insert(member, now, ttl);
            let ttl = set.ttl(now);
            self.set(key, set_codec::encode(&set), Some(ttl)).await
        })
    }

    /// Removes the set under `key` and returns its members (none when there is
    /// no set). By default a [`get`](Backend::get) then a
    /// [`delete`](Backend::delete).
    fn set_take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<Bytes>, BackendError>> {
        Box::pin(async move {
            let Some(bytes) = self.get(key).await? else {
                return Ok(Vec::new());
            };
            self.delete(key).await?;
            Ok(set_codec::decode(&bytes)
                .map(|set| set.members)
                .unwrap_or_default())
        })
    }

    /// Releases connections or handles; the backend stays usable and reopens
    /// them when next used. Nothing to do by default.
    fn close(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async { Ok(()) })
    }

    /// How the cache must treat keys Memcached would reject.
    fn key_policy(&self) -> KeyPolicy {
        KeyPolicy::Warn
    }

    /// The in-process fast path: a backend that is (or wraps) a [`MemoryBackend`]
    /// returns it here, and the response cache then keeps decoded entries in it
    /// instead of encoded bytes.
    fn as_memory(&self) -> Option<&MemoryBackend> {
        None
    }
}

/// Parses a stored decimal integer (what `incr` works on).
pub(crate) fn parse_integer(value: &[u8]) -> Result<i64, BackendError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(BackendError::NotAnInteger)
}

/// `value + delta`, or [`BackendError::NotAnInteger`] on overflow.
pub(crate) fn add_delta(value: i64, delta: i64) -> Result<i64, BackendError> {
    value.checked_add(delta).ok_or(BackendError::NotAnInteger)
}
