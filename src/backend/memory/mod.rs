//! The embedded default backend, on [`map::ClockMap`].

mod map;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;

use self::map::{Change, ClockMap, KeyRef, Weighed};
use super::{Backend, BackendError, BoxFuture, Ttl, add_delta, parse_integer, ready, set_codec};
use crate::clock::{Clock, SystemClock, duration_millis};
use crate::entry::{Entry, Index, Stored};

/// The embedded default backend: an in-process cache bounded by entry count and
/// by total bytes, evicting by CLOCK (an approximation of least recently used).
///
/// Response entries are kept decoded, so a hit costs an `Arc` clone and a `Bytes`
/// clone, never a copy or a parse. Lookups are synchronous (a shared lock on one
/// of several shards, one table probe), which lets the layer answer a hit
/// inside `Service::call` without an async state machine. Clones of a
/// `MemoryBackend` share one store.
///
/// ```
/// use tower_response_cache::backend::MemoryBackend;
///
/// let backend = MemoryBackend::builder()
///     .max_entries(50_000)
///     .max_bytes(256 * 1024 * 1024)
///     .build();
/// # let _ = backend;
/// ```
#[derive(Clone, Debug)]
pub struct MemoryBackend {
    map: Arc<ClockMap<Slot>>,
    /// Decides when byte values expire, and when response entries may be
    /// reclaimed (their freshness is the layer's to decide).
    clock: Arc<dyn Clock>,
}

#[derive(Clone, Debug)]
enum MemValue {
    /// Boxed: a `Bytes` is 32 bytes, and every node is as large as its
    /// largest value. Response entries, most of a layer's cache, would pay
    /// for it; a byte value pays a block and a pointer instead.
    Bytes(Box<Bytes>),
    /// A set of [`Backend::set_add`]. Changed in place, and only inside the
    /// map's per-key compute, which serialises every change to one key; `get`
    /// reads it in [`set_codec`]'s format.
    Set(Arc<Mutex<Members>>),
    Stored(Stored),
}

/// The members of a set: unique, in insertion order.
#[derive(Debug, Default)]
struct Members {
    order: Vec<Bytes>,
    index: HashSet<Bytes>,
    /// The members' total length, for the byte limit.
    bytes: usize,
}

impl Members {
    fn new(members: impl IntoIterator<Item = Bytes>) -> Self {
        let mut set = Self::default();
        for member in members {
            set.insert(member);
        }
        set
    }

    fn insert(&mut self, member: Bytes) {
        if self.index.insert(member.clone()) {
            self.bytes += member.len();
            self.order.push(member);
        }
    }
}

/// The lock guards no invariant a panic could break halfway.
fn lock(members: &Mutex<Members>) -> MutexGuard<'_, Members> {
    members.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A value with its expiry.
#[derive(Clone, Debug)]
struct Slot {
    value: MemValue,
    /// Unix milliseconds on the backend's clock: after it a byte value is gone,
    /// and a response entry may be reclaimed.
    /// `u64::MAX`: never (a `u64`, not an `Option`: eight bytes less per node).
    expires_at: u64,
}

/// Configures a [`MemoryBackend`].
#[derive(Debug, Clone)]
pub struct MemoryBackendBuilder {
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryBackendBuilder {
    fn default() -> Self {
        Self {
            max_entries: Some(10_000),
            max_bytes: Some(128 * 1024 * 1024),
            clock: Arc::new(SystemClock),
        }
    }
}

impl MemoryBackendBuilder {
    /// At most this many values (default 10,000); `0` means no count limit.
    #[must_use]
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = (n > 0).then_some(n);
        self
    }

    /// At most about this many bytes, counted as the heap the values and their
    /// bookkeeping take: bodies, headers, keys and per-entry structures
    /// (default 128 MiB); `0` means no byte limit. A value heavier than the
    /// whole limit is not stored, nor (limit or not) one of 4 GiB or more.
    #[must_use]
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = (n > 0).then_some(n);
        self
    }

    /// The time source that decides when values expire (default the system
    /// clock; tests pass a [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the backend. When a write goes past a limit, values are evicted
    /// by CLOCK: expired values first, then values not read since the hand
    /// last passed. A value just stored is never the one turned away (an
    /// `add`-based lock relies on it).
    pub fn build(self) -> MemoryBackend {
        MemoryBackend {
            map: Arc::new(ClockMap::new(self.max_entries, self.max_bytes)),
            clock: self.clock,
        }
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackendBuilder::default().build()
    }
}

impl MemoryBackend {
    /// A backend with the default limits (10,000 values, 128 MiB) and the system
    /// clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Configures limits.
    pub fn builder() -> MemoryBackendBuilder {
        MemoryBackendBuilder::default()
    }

    /// How many values are held (expired ones until they are reclaimed).
    pub fn entry_count(&self) -> u64 {
        self.map.len()
    }

    /// The approximate heap held, in bytes: what the byte limit counts.
    pub fn weighted_size(&self) -> u64 {
        self.map.weighted_size()
    }

    pub(crate) fn get_stored(&self, key: u128) -> Option<Stored> {
        self.map
            .read(KeyRef::Response(key), |slot| match &slot.value {
                MemValue::Stored(s) => Some(s.clone()),
                MemValue::Bytes(_) | MemValue::Set(_) => None,
            })
            .flatten()
    }

    /// Stores a response entry or index; `ttl` (from now, on the backend's
    /// clock) is when it may be reclaimed.
    pub(crate) fn put_stored(&self, key: u128, value: Stored, ttl: Duration) {
        let now = self.now();
        let slot = Slot {
            value: MemValue::Stored(value),
            expires_at: expiry(now, Some(ttl)),
        };
        self.map.insert(KeyRef::Response(key), now, slot);
    }

    pub(crate) fn delete_stored(&self, key: u128) {
        self.map.remove(KeyRef::Response(key));
    }

    /// Removes every stored response entry `remove` picks; returns them. A scan
    /// of the whole cache: the response store's tag purge, which must not
    /// depend on an index that eviction could drop.
    pub(crate) fn remove_stored_where(&self, remove: impl Fn(&Entry) -> bool) -> Vec<Arc<Entry>> {
        self.map
            .remove_where(
                |slot| matches!(&slot.value, MemValue::Stored(Stored::Entry(e)) if remove(e)),
            )
            .into_iter()
            .filter_map(|slot| match slot.value {
                MemValue::Stored(Stored::Entry(entry)) => Some(entry),
                _ => None,
            })
            .collect()
    }
}

impl Weighed for Slot {
    fn weight(&self) -> u64 {
        let size = match &self.value {
            // The bytes and their box.
            MemValue::Bytes(b) => b.len() + std::mem::size_of::<Bytes>(),
            // Two handles per member (order and index) and the hash slot.
            MemValue::Set(m) => {
                let m = lock(m);
                m.bytes + 80 * m.order.len()
            }
            MemValue::Stored(Stored::Entry(e)) => entry_weight(e),
            MemValue::Stored(Stored::Index(i)) => index_weight(i),
        };
        u64::try_from(size).unwrap_or(u64::MAX)
    }

    fn deadline(&self) -> u64 {
        self.expires_at
    }
}

/// An entry's heap, from the layout `benches/scale.rs` measures: the `Arc`
/// block, its content's buffer (key material, header values, body) and that
/// buffer's shared count, the header names when the entry's shape is its own
/// (a header-map bucket and index per field and the names; a shared shape is
/// nobody's), the Vary'd values and the tags.
fn entry_weight(e: &Entry) -> usize {
    const ARC: usize = 16;
    const SHARED_COUNT: usize = 24;
    const HEADER_BUCKET: usize = 112;
    let shape = e.content.shape();
    let shape = if shape.is_interned() {
        0
    } else {
        shape
            .names()
            .iter()
            .map(|n| n.as_str().len() + HEADER_BUCKET)
            .sum()
    };
    let pairs = e.vary.pairs();
    let vary: usize = pairs
        .iter()
        .map(|(_, v)| v.as_ref().map_or(0, Bytes::len))
        .sum::<usize>()
        + std::mem::size_of_val(pairs)
        + if pairs.is_empty() { 0 } else { 16 };
    let tags: usize = e.tags.iter().map(|t| t.len() + 24).sum();
    std::mem::size_of::<Entry>() + ARC + e.content.len() + SHARED_COUNT + shape + vary + tags
}

fn index_weight(i: &Index) -> usize {
    i.variants.iter().map(|v| 64 + 24 * v.names.len()).sum()
}

impl MemoryBackend {
    fn now(&self) -> u64 {
        self.clock.now_millis()
    }

    /// A byte-value slot expiring `ttl` from now on the backend's clock.
    fn byte_slot(&self, value: Bytes, ttl: Ttl) -> Slot {
        Slot {
            value: MemValue::Bytes(Box::new(value)),
            expires_at: expiry(self.now(), ttl),
        }
    }

    /// Whether a slot holds a value of the trait (bytes or a set) that has not
    /// expired.
    fn alive(&self, slot: &Slot) -> bool {
        matches!(slot.value, MemValue::Bytes(_) | MemValue::Set(_)) && slot.expires_at > self.now()
    }

    /// What `get` answers for a slot: a live byte value as it is, a live set in
    /// [`set_codec`]'s format.
    fn readable(&self, slot: &Slot) -> Option<Bytes> {
        if !self.alive(slot) {
            return None;
        }
        match &slot.value {
            MemValue::Bytes(b) => Some(Bytes::clone(b)),
            MemValue::Set(m) => Some(set_codec::encode(&set_codec::Set {
                expires_at: slot.expires_at,
                members: lock(m).order.clone(),
            })),
            MemValue::Stored(_) => None,
        }
    }

    /// One change to a text key, serialised with every other change to it.
    fn compute<R>(&self, key: &str, f: impl FnOnce(Option<&Slot>) -> (Change<Slot>, R)) -> R {
        self.map.compute(KeyRef::Text(key), self.now(), f)
    }
}

/// When a value stored at `now` with `ttl` expires (`u64::MAX`: never).
fn expiry(now: u64, ttl: Ttl) -> u64 {
    ttl.map_or(u64::MAX, |d| now.saturating_add(duration_millis(d)))
}

impl Backend for MemoryBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
        let value = match self.map.read(KeyRef::Text(key), |slot| self.readable(slot)) {
            Some(Some(value)) => Some(value),
            Some(None) => {
                // Expired by the clock: remove it, unless a write replaced it meanwhile.
                self.compute(key, |slot| match slot {
                    Some(slot) if !self.alive(slot) => (Change::Remove, ()),
                    _ => (Change::Keep, ()),
                });
                None
            }
            None => None,
        };
        ready(Ok(value))
    }

    // Writes go through the per-key compute, like `add`, `touch` and `incr`, so
    // that they are serialised with them: an `incr` never overwrites a `set`.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let slot = self.byte_slot(value, ttl);
        self.compute(key, |_| (Change::Put(slot), ()));
        ready(Ok(()))
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let slot = self.byte_slot(value, ttl);
        let added = self.compute(key, |existing| match existing {
            Some(e) if self.alive(e) => (Change::Keep, false),
            _ => (Change::Put(slot), true),
        });
        ready(Ok(added))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        let live = self.compute(key, |existing| match existing {
            Some(e) => (Change::Remove, self.alive(e)),
            None => (Change::Keep, false),
        });
        ready(Ok(live))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> BoxFuture<'a, Result<bool, BackendError>> {
        let touched = self.compute(key, |existing| match existing {
            // The same value (a set keeps its members), a new expiry.
            Some(e) if self.alive(e) => {
                let slot = Slot {
                    value: e.value.clone(),
                    expires_at: expiry(self.now(), ttl),
                };
                (Change::Put(slot), true)
            }
            Some(_) => (Change::Remove, false),
            None => (Change::Keep, false),
        });
        ready(Ok(touched))
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64, BackendError>> {
        let outcome = self.compute(key, |existing| {
            let Some(slot) = existing else {
                return (Change::Keep, Err(BackendError::KeyNotFound));
            };
            if !self.alive(slot) {
                return (Change::Remove, Err(BackendError::KeyNotFound));
            }
            let MemValue::Bytes(value) = &slot.value else {
                return (Change::Keep, Err(BackendError::NotAnInteger));
            };
            match parse_integer(value).and_then(|n| add_delta(n, delta)) {
                // Same expiry, on the backend's clock.
                Ok(n) => {
                    let slot = Slot {
                        value: MemValue::Bytes(Box::new(Bytes::from(n.to_string()))),
                        expires_at: slot.expires_at,
                    };
                    (Change::Put(slot), Ok(n))
                }
                Err(error) => (Change::Keep, Err(error)),
            }
        });
        ready(outcome)
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        self.map.clear();
        ready(Ok(()))
    }

    /// One per-key compute: the members are added in place and the slot put
    /// back with the later of its expiry and `now + ttl`, so concurrent adds
    /// (serialised on the key) all land.
    fn set_add<'a>(
        &'a self,
        key: &'a str,
        member: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let until = self.now().saturating_add(duration_millis(ttl));
        self.compute(key, |existing| {
            let live = existing.filter(|s| self.alive(s));
            let (members, expires_at) = match live {
                // A set, or bytes in set_codec's format (the trait's
                // default wrote them): kept, with their expiry if later.
                Some(slot) => {
                    let expires_at = slot.expires_at.max(until);
                    match &slot.value {
                        MemValue::Set(m) => (Arc::clone(m), expires_at),
                        MemValue::Bytes(b) => match set_codec::decode(b) {
                            Some(set) => {
                                (Arc::new(Mutex::new(Members::new(set.members))), expires_at)
                            }
                            None => (Arc::default(), until),
                        },
                        MemValue::Stored(_) => (Arc::default(), until),
                    }
                }
                // Nothing, something expired, or other bytes: a new set.
                None => (Arc::default(), until),
            };
            lock(&members).insert(member);
            let slot = Slot {
                value: MemValue::Set(members),
                expires_at,
            };
            (Change::Put(slot), ())
        });
        ready(Ok(()))
    }

    /// One per-key compute that removes the set and copies its members out,
    /// so an add is either in what is returned or runs after, on a new set.
    fn set_take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<Bytes>, BackendError>> {
        let members = self.compute(key, |existing| {
            let Some(slot) = existing else {
                return (Change::Keep, Vec::new());
            };
            let members = if self.alive(slot) {
                match &slot.value {
                    // A copy: a `get` that read the slot before keeps a
                    // consistent view.
                    MemValue::Set(m) => lock(m).order.clone(),
                    MemValue::Bytes(b) => set_codec::decode(b)
                        .map(|set| set.members)
                        .unwrap_or_default(),
                    MemValue::Stored(_) => Vec::new(),
                }
            } else {
                Vec::new()
            };
            (Change::Remove, members)
        });
        ready(Ok(members))
    }

    fn as_memory(&self) -> Option<&MemoryBackend> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn byte_values_round_trip_and_delete() {
        let b = MemoryBackend::new();
        assert_eq!(b.get("k").await.unwrap(), None);
        b.set("k", Bytes::from_static(b"v"), None).await.unwrap();
        assert_eq!(b.get("k").await.unwrap(), Some(Bytes::from_static(b"v")));
        assert!(b.delete("k").await.unwrap());
        assert!(!b.delete("k").await.unwrap());
        assert_eq!(b.get("k").await.unwrap(), None);
    }

    /// A value just stored is never the one turned away when the store is full,
    /// however popular the old ones are (an `add`-based lock relies on it).
    #[tokio::test]
    async fn a_new_value_is_kept_when_full_of_popular_ones() {
        let b = MemoryBackend::builder()
            .max_entries(10)
            .max_bytes(0)
            .build();
        for i in 0..10 {
            b.set(&format!("old{i}"), Bytes::from_static(b"v"), None)
                .await
                .unwrap();
        }
        for _ in 0..50 {
            for i in 0..10 {
                b.get(&format!("old{i}")).await.unwrap();
            }
        }
        assert!(b.add("lock", Bytes::from_static(b"1"), None).await.unwrap());
        assert_eq!(b.get("lock").await.unwrap().as_deref(), Some(&b"1"[..]));
        assert!(!b.add("lock", Bytes::from_static(b"2"), None).await.unwrap());
        assert!(b.entry_count() <= 10);
    }

    /// A set is a value of the trait like any other: `get` reads it in
    /// set_codec's format, `touch` keeps its members, `add` sees it, `incr`
    /// refuses it, and it expires on the backend's clock.
    #[tokio::test]
    async fn sets_are_values_on_the_backend_clock() {
        use std::time::UNIX_EPOCH;

        use crate::clock::ManualClock;

        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let b = MemoryBackend::builder().clock(clock.clone()).build();
        let ttl = Duration::from_secs(10);
        b.set_add("s", Bytes::from_static(b"a"), ttl).await.unwrap();
        b.set_add("s", Bytes::from_static(b"b"), Duration::from_secs(1))
            .await
            .unwrap();
        let read = b.get("s").await.unwrap().expect("a set is a value");
        let set = set_codec::decode(&read).expect("set_codec format");
        assert_eq!(set.expires_at, 1_700_000_010_000);
        assert_eq!(set.members, [&b"a"[..], &b"b"[..]]);
        assert!(!b.add("s", Bytes::from_static(b"x"), None).await.unwrap());
        assert!(matches!(
            b.incr("s", 1).await,
            Err(BackendError::NotAnInteger)
        ));

        // touch: same members, new expiry.
        assert!(b.touch("s", Some(Duration::from_secs(2))).await.unwrap());
        clock.advance(Duration::from_secs(1));
        b.set_add("s", Bytes::from_static(b"c"), Duration::from_millis(500))
            .await
            .unwrap();
        clock.advance(Duration::from_millis(999));
        let mut members = b.set_take("s").await.unwrap();
        members.sort();
        assert_eq!(members, [&b"a"[..], &b"b"[..], &b"c"[..]]);

        // Expired on the clock: gone for every operation, and a new set starts.
        b.set_add("e", Bytes::from_static(b"old"), Duration::from_secs(1))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.get("e").await.unwrap(), None);
        b.set_add("f", Bytes::from_static(b"old"), Duration::from_secs(1))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(1));
        b.set_add("f", Bytes::from_static(b"new"), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(b.set_take("f").await.unwrap(), [&b"new"[..]]);
        assert!(b.set_take("f").await.unwrap().is_empty());
    }

    /// Bytes in set_codec's format (what the trait's default `set_add`
    /// writes) are taken over as a set, with their expiry.
    #[tokio::test]
    async fn encoded_sets_are_read_as_sets() {
        let b = MemoryBackend::new();
        let encoded = set_codec::encode(&set_codec::Set {
            expires_at: u64::MAX,
            members: vec![Bytes::from_static(b"a")],
        });
        b.set("s", encoded, None).await.unwrap();
        b.set_add("s", Bytes::from_static(b"b"), Duration::from_secs(1))
            .await
            .unwrap();
        b.set_add("s", Bytes::from_static(b"a"), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            b.map.read(KeyRef::Text("s"), |slot| slot.expires_at),
            Some(u64::MAX),
            "a value that never expires keeps never expiring"
        );
        assert_eq!(b.set_take("s").await.unwrap(), [&b"a"[..], &b"b"[..]]);
    }

    #[tokio::test]
    async fn count_limit_holds() {
        let b = MemoryBackend::builder()
            .max_entries(10)
            .max_bytes(0)
            .build();
        for i in 0..100 {
            b.set(&format!("k{i}"), Bytes::from_static(b"v"), None)
                .await
                .unwrap();
        }
        assert!(b.entry_count() <= 10);
    }

    #[tokio::test]
    async fn byte_limit_holds_with_both_limits() {
        let b = MemoryBackend::builder()
            .max_entries(1000)
            .max_bytes(64 * 1024)
            .build();
        for i in 0..100 {
            b.set(&format!("k{i}"), Bytes::from(vec![0u8; 4096]), None)
                .await
                .unwrap();
        }
        assert!(b.weighted_size() <= 64 * 1024);
        assert!(b.entry_count() <= 16);
    }
}
