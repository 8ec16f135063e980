use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::ops::compute::{CompResult, Op};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use std::hash::BuildHasher as _;

use super::{Backend, BackendError, BoxFuture, Ttl, add_delta, parse_integer, set_codec};
use crate::clock::{Clock, SystemClock, unix_millis};
use crate::entry::{Entry, Index, Stored};

/// The embedded default backend: an in-process cache on [moka], bounded by entry
/// count and by total bytes.
///
/// Response entries are kept decoded, so a hit costs an `Arc` clone and a `Bytes`
/// clone, never a copy or a parse. Lookups are synchronous (moka's `sync::Cache`:
/// lock-free reads, short critical sections), which lets the layer answer a hit
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
///
/// [moka]: https://docs.rs/moka
#[derive(Clone, Debug)]
pub struct MemoryBackend {
    cache: Cache<MemKey, Slot, KeyHasher>,
    /// Decides when byte values expire (response entries carry their own
    /// freshness, decided by the layer).
    clock: Arc<dyn Clock>,
}

/// Hashes [`MemKey`]s for moka's table. A response key is already an xxh3-128
/// hash: it is mixed with this instance's random keys instead of being hashed
/// again (SipHash was a tenth of an in-memory hit). Text keys go through xxh3
/// seeded with the same secret. Both stay unpredictable to clients, so they
/// cannot aim many keys at one bucket.
#[derive(Clone)]
struct KeyHasher {
    keys: [u64; 2],
}

impl KeyHasher {
    fn new() -> Self {
        let random = std::collections::hash_map::RandomState::new();
        Self {
            keys: [random.hash_one(1u8) | 1, random.hash_one(2u8) | 1],
        }
    }
}

impl std::hash::BuildHasher for KeyHasher {
    type Hasher = MixHasher;

    fn build_hasher(&self) -> MixHasher {
        MixHasher {
            keys: self.keys,
            state: 0,
        }
    }
}

/// See [`KeyHasher`].
struct MixHasher {
    keys: [u64; 2],
    state: u64,
}

impl std::hash::Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.state
    }

    fn write(&mut self, bytes: &[u8]) {
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.keys[0]);
        self.state = (self.state ^ h).wrapping_mul(self.keys[1]);
    }

    fn write_u128(&mut self, n: u128) {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "the two halves of the hash, on purpose"
        )]
        let (low, high) = (n as u64, (n >> 64) as u64);
        let mixed = (low ^ self.keys[0]).wrapping_mul(self.keys[1])
            ^ (high ^ self.keys[1])
                .wrapping_mul(self.keys[0])
                .rotate_left(29);
        self.state = (self.state ^ mixed).wrapping_mul(self.keys[1]);
    }

    fn write_isize(&mut self, n: isize) {
        #[allow(clippy::cast_sign_loss, reason = "an enum discriminant")]
        let n = n as u64;
        self.state = (self.state ^ n).wrapping_mul(self.keys[0]).rotate_left(17);
    }
}

/// Keys: the low-level API's strings and the response cache's hashed keys live side
/// by side and can never collide.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum MemKey {
    Text(Arc<str>),
    Response(u128),
}

#[derive(Clone, Debug)]
enum MemValue {
    Bytes(Bytes),
    /// A set of [`Backend::set_add`]. Changed in place, and only inside moka's
    /// per-key compute, which serialises every change to one key; `get` reads
    /// it in [`set_codec`]'s format.
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
    /// From now, in real time: when moka may reclaim the value (read by
    /// [`SlotExpiry`]).
    ttl: Ttl,
    /// Unix milliseconds on the backend's clock after which a byte value is gone.
    expires_at: Option<u64>,
}

struct SlotExpiry;

impl Expiry<MemKey, Slot> for SlotExpiry {
    fn expire_after_create(&self, _: &MemKey, slot: &Slot, _: Instant) -> Option<Duration> {
        slot.ttl
    }

    fn expire_after_update(
        &self,
        _: &MemKey,
        slot: &Slot,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        slot.ttl
    }
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

    /// At most about this many bytes of values, bodies and headers included
    /// (default 128 MiB); `0` means no byte limit.
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

    /// Builds the backend.
    pub fn build(self) -> MemoryBackend {
        // Strict LRU, as Django's LocMemCache: a value just stored is never the one
        // turned away (moka's default TinyLFU may refuse a new key when full, which
        // would break `add`-based locks and make fresh pages vanish).
        let mut builder = Cache::builder()
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(SlotExpiry);
        // moka bounds one weighted total. To bound both count and bytes, weigh each
        // value at no less than max_bytes / max_entries: then max_bytes of weight
        // holds at most max_entries values and at most max_bytes of data.
        builder = match (self.max_entries, self.max_bytes) {
            (None, None) => builder,
            (Some(n), None) => builder.max_capacity(n),
            (entries, Some(bytes)) => {
                let floor = entries.map_or(1, |n| (bytes / n).max(1));
                builder
                    .max_capacity(bytes)
                    .weigher(move |_: &MemKey, slot: &Slot| {
                        u32::try_from(slot.weight().max(floor)).unwrap_or(u32::MAX)
                    })
            }
        };
        MemoryBackend {
            cache: builder.build_with_hasher(KeyHasher::new()),
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

    /// How many values are held, after pending evictions have run.
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// The approximate total size of what is held, in bytes (values weigh at least
    /// their share of the byte limit), after pending evictions have run.
    pub fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }

    pub(crate) fn get_stored(&self, key: u128) -> Option<Stored> {
        match self.cache.get(&MemKey::Response(key))?.value {
            MemValue::Stored(s) => Some(s),
            MemValue::Bytes(_) | MemValue::Set(_) => None,
        }
    }

    pub(crate) fn put_stored(&self, key: u128, value: Stored, ttl: Duration) {
        let slot = Slot {
            value: MemValue::Stored(value),
            ttl: Some(ttl),
            expires_at: None,
        };
        self.cache.insert(MemKey::Response(key), slot);
    }

    pub(crate) fn delete_stored(&self, key: u128) {
        self.cache.invalidate(&MemKey::Response(key));
    }

    /// Removes every stored response entry `remove` picks; returns them. A scan
    /// of the whole cache: the response store's tag purge, which must not
    /// depend on an index that LRU eviction could drop.
    pub(crate) fn remove_stored_where(
        &self,
        remove: impl Fn(&crate::entry::Entry) -> bool,
    ) -> Vec<Arc<crate::entry::Entry>> {
        let mut removed = Vec::new();
        for (key, slot) in &self.cache {
            if let MemValue::Stored(Stored::Entry(entry)) = &slot.value
                && remove(entry)
            {
                self.cache.invalidate(key.as_ref());
                removed.push(entry.clone());
            }
        }
        removed
    }
}

impl Slot {
    /// Approximate heap footprint, for the byte limit.
    fn weight(&self) -> u64 {
        const OVERHEAD: usize = 96;
        let size = match &self.value {
            MemValue::Bytes(b) => b.len(),
            // Two handles per member (order and index) and the hash slot.
            MemValue::Set(m) => {
                let m = lock(m);
                m.bytes + 80 * m.order.len()
            }
            MemValue::Stored(Stored::Entry(e)) => entry_weight(e),
            MemValue::Stored(Stored::Index(i)) => index_weight(i),
        };
        u64::try_from(size + OVERHEAD).unwrap_or(u64::MAX)
    }
}

fn entry_weight(e: &Entry) -> usize {
    let headers: usize = e
        .headers
        .as_map()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 32)
        .sum();
    let vary: usize = e
        .vary
        .values
        .iter()
        .map(|v| v.as_ref().map_or(0, Bytes::len) + 40)
        .sum();
    256 + e.body.len() + e.material.len() + headers + vary
}

fn index_weight(i: &Index) -> usize {
    i.variants.iter().map(|v| 64 + 24 * v.names.len()).sum()
}

impl MemoryBackend {
    fn now(&self) -> u64 {
        unix_millis(self.clock.now())
    }

    /// A byte-value slot expiring `ttl` from now on the backend's clock.
    fn byte_slot(&self, value: Bytes, ttl: Ttl) -> Slot {
        Slot {
            value: MemValue::Bytes(value),
            ttl,
            expires_at: ttl.map(|d| self.now().saturating_add(millis(d))),
        }
    }

    /// Whether a slot holds a value of the trait (bytes or a set) that has not
    /// expired.
    fn alive(&self, slot: &Slot) -> bool {
        matches!(slot.value, MemValue::Bytes(_) | MemValue::Set(_))
            && slot.expires_at.is_none_or(|at| at > self.now())
    }

    /// What `get` answers for a slot: a live byte value as it is, a live set in
    /// [`set_codec`]'s format.
    fn readable(&self, slot: &Slot) -> Option<Bytes> {
        if !self.alive(slot) {
            return None;
        }
        match &slot.value {
            MemValue::Bytes(b) => Some(b.clone()),
            MemValue::Set(m) => Some(set_codec::encode(&set_codec::Set {
                expires_at: slot.expires_at.unwrap_or(u64::MAX),
                members: lock(m).order.clone(),
            })),
            MemValue::Stored(_) => None,
        }
    }

    /// The time to live, from now in real time, that lets moka reclaim a value
    /// expiring at `expires_at` on the backend's clock.
    fn remaining(&self, expires_at: Option<u64>) -> Ttl {
        expires_at.map(|at| Duration::from_millis(at.saturating_sub(self.now()).max(1)))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn text(key: &str) -> MemKey {
    MemKey::Text(key.into())
}

impl Backend for MemoryBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
        let key = text(key);
        let found = self.cache.get(&key);
        let value = found.as_ref().and_then(|slot| self.readable(slot));
        if found.is_some() && value.is_none() {
            // Expired by the clock: remove it, unless a write replaced it meanwhile.
            self.cache.entry(key).and_compute_with(|e| match e {
                Some(e) if !self.alive(e.value()) => Op::Remove,
                _ => Op::Nop,
            });
        }
        Box::pin(std::future::ready(Ok(value)))
    }

    // Writes go through moka's per-key compute, like `add`, `touch` and `incr`, so
    // that they are serialised with them: an `incr` never overwrites a `set`.
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let slot = self.byte_slot(value, ttl);
        self.cache
            .entry(text(key))
            .and_compute_with(|_| Op::Put(slot));
        Box::pin(std::future::ready(Ok(())))
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Ttl,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        let slot = self.byte_slot(value, ttl);
        let result = self
            .cache
            .entry(text(key))
            .and_compute_with(|existing| match existing {
                Some(e) if self.alive(e.value()) => Op::Nop,
                _ => Op::Put(slot),
            });
        let added = matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        );
        Box::pin(std::future::ready(Ok(added)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
        let result = self
            .cache
            .entry(text(key))
            .and_compute_with(|e| if e.is_some() { Op::Remove } else { Op::Nop });
        let live = matches!(result, CompResult::Removed(e) if self.alive(e.value()));
        Box::pin(std::future::ready(Ok(live)))
    }

    fn touch<'a>(&'a self, key: &'a str, ttl: Ttl) -> BoxFuture<'a, Result<bool, BackendError>> {
        let result = self
            .cache
            .entry(text(key))
            .and_compute_with(|existing| match existing {
                Some(e) if self.alive(e.value()) => {
                    // The same value (a set keeps its members), a new expiry.
                    let expires_at = ttl.map(|d| self.now().saturating_add(millis(d)));
                    Op::Put(Slot {
                        value: e.value().value.clone(),
                        ttl,
                        expires_at,
                    })
                }
                Some(_) => Op::Remove,
                None => Op::Nop,
            });
        let touched = matches!(result, CompResult::ReplacedWith(_));
        Box::pin(std::future::ready(Ok(touched)))
    }

    fn incr<'a>(&'a self, key: &'a str, delta: i64) -> BoxFuture<'a, Result<i64, BackendError>> {
        let mut outcome = Err(BackendError::KeyNotFound);
        self.cache.entry(text(key)).and_compute_with(|existing| {
            let Some(entry) = existing else {
                return Op::Nop;
            };
            let slot = entry.value();
            if !self.alive(slot) {
                return Op::Remove;
            }
            let MemValue::Bytes(value) = &slot.value else {
                outcome = Err(BackendError::NotAnInteger);
                return Op::Nop;
            };
            match parse_integer(value).and_then(|n| add_delta(n, delta)) {
                Ok(n) => {
                    outcome = Ok(n);
                    // Same expiry: the remaining time, on the backend's clock.
                    Op::Put(Slot {
                        value: MemValue::Bytes(Bytes::from(n.to_string())),
                        ttl: self.remaining(slot.expires_at),
                        expires_at: slot.expires_at,
                    })
                }
                Err(error) => {
                    outcome = Err(error);
                    Op::Nop
                }
            }
        });
        Box::pin(std::future::ready(outcome))
    }

    fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        self.cache.invalidate_all();
        Box::pin(std::future::ready(Ok(())))
    }

    /// One per-key compute: the members are added in place and the slot put
    /// back with the later of its expiry and `now + ttl`, so concurrent adds
    /// (serialised by moka on the key) all land.
    fn set_add<'a>(
        &'a self,
        key: &'a str,
        member: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        let until = self.now().saturating_add(millis(ttl));
        self.cache.entry(text(key)).and_compute_with(|existing| {
            let live = existing
                .as_ref()
                .map(|e| e.value())
                .filter(|s| self.alive(s));
            let (members, expires_at) = match live {
                // A set, or bytes in set_codec's format (the trait's
                // default wrote them): kept, with their expiry if later.
                Some(slot) => {
                    let expires_at = slot.expires_at.map(|at| at.max(until));
                    match &slot.value {
                        MemValue::Set(m) => (Arc::clone(m), expires_at),
                        MemValue::Bytes(b) => match set_codec::decode(b) {
                            Some(set) => {
                                (Arc::new(Mutex::new(Members::new(set.members))), expires_at)
                            }
                            None => (Arc::default(), Some(until)),
                        },
                        MemValue::Stored(_) => (Arc::default(), Some(until)),
                    }
                }
                // Nothing, something expired, or other bytes: a new set.
                None => (Arc::default(), Some(until)),
            };
            lock(&members).insert(member);
            Op::Put(Slot {
                value: MemValue::Set(members),
                ttl: self.remaining(expires_at),
                expires_at,
            })
        });
        Box::pin(std::future::ready(Ok(())))
    }

    /// One per-key compute that removes the set and copies its members out,
    /// so an add is either in what is returned or runs after, on a new set.
    fn set_take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Vec<Bytes>, BackendError>> {
        let mut members = Vec::new();
        self.cache.entry(text(key)).and_compute_with(|existing| {
            let Some(entry) = existing else {
                return Op::Nop;
            };
            let slot = entry.value();
            if self.alive(slot) {
                members = match &slot.value {
                    // A copy: a `get` that read the slot before keeps a
                    // consistent view.
                    MemValue::Set(m) => lock(m).order.clone(),
                    MemValue::Bytes(b) => set_codec::decode(b)
                        .map(|set| set.members)
                        .unwrap_or_default(),
                    MemValue::Stored(_) => Vec::new(),
                };
            }
            Op::Remove
        });
        Box::pin(std::future::ready(Ok(members)))
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
        b.cache.run_pending_tasks();
        assert!(b.add("lock", Bytes::from_static(b"1"), None).await.unwrap());
        b.cache.run_pending_tasks();
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
            b.cache.get(&text("s")).map(|slot| slot.expires_at),
            Some(None),
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
