//! The memory backend's store: a sharded hash map bounded by entry count and by
//! bytes, evicting with CLOCK (second chance).
//!
//! Why not moka, DESIGN.md's first choice (ARCHITECTURE.md has the figures): on
//! an in-memory hit, moka's `get` was about a quarter of the layer's work (its
//! concurrent table, the read log for LRU, amortised housekeeping and its own
//! clock), and it kept about 350 bytes in 7 allocations per entry beside the
//! value. Here a read is a shared lock on one shard, one probe, and at most one
//! relaxed store of a reference bit; an entry is one slot in its shard's vector
//! and one index in its table.
//!
//! Eviction is global: both limits are counted over all shards, and when an
//! insert goes past one, shards give up victims in turn, each by its own CLOCK
//! hand. A value just stored is never its own insert's victim, so an `add`-based
//! lock on a full cache holds.

use std::hash::BuildHasher as _;
use std::num::NonZero;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;

/// A key as stored: the low-level API's text keys and the response cache's
/// hashed keys side by side, never equal to each other.
#[derive(Debug)]
enum Key {
    Text(Box<str>),
    /// A `u128` as two halves, so a key needs 8-byte alignment, not 16.
    Response([u64; 2]),
}

/// A key as looked up: borrowed, so a read of a text key allocates nothing.
#[derive(Debug, Clone, Copy)]
pub(super) enum KeyRef<'a> {
    Text(&'a str),
    Response(u128),
}

fn halves(n: u128) -> [u64; 2] {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the two halves of the hash, on purpose"
    )]
    [n as u64, (n >> 64) as u64]
}

impl Key {
    fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Self::Text(text) => KeyRef::Text(text),
            Self::Response([low, high]) => {
                KeyRef::Response(u128::from(*low) | (u128::from(*high) << 64))
            }
        }
    }

    fn is(&self, other: KeyRef<'_>) -> bool {
        match (self, other) {
            (Self::Text(a), KeyRef::Text(b)) => **a == *b,
            (Self::Response(a), KeyRef::Response(b)) => *a == halves(b),
            _ => false,
        }
    }
}

impl From<KeyRef<'_>> for Key {
    fn from(key: KeyRef<'_>) -> Self {
        match key {
            KeyRef::Text(text) => Self::Text(text.into()),
            KeyRef::Response(n) => Self::Response(halves(n)),
        }
    }
}

/// Hashes keys with this instance's random keys. A response key is already an
/// xxh3-128 hash: it is mixed, not hashed again (SipHash was a tenth of a hit).
/// Text keys go through xxh3 seeded with the same secret. Both stay
/// unpredictable to clients, so they cannot aim many keys at one bucket.
#[derive(Debug)]
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

    fn hash(&self, key: KeyRef<'_>) -> u64 {
        let [k0, k1] = self.keys;
        match key {
            KeyRef::Text(text) => xxhash_rust::xxh3::xxh3_64_with_seed(text.as_bytes(), k0),
            KeyRef::Response(n) => {
                let [low, high] = halves(n);
                ((low ^ k0).wrapping_mul(k1) ^ (high ^ k1).wrapping_mul(k0).rotate_left(29))
                    .wrapping_mul(k1)
            }
        }
    }
}

/// What the map needs to know of a value.
pub(super) trait Weighed {
    /// Approximate heap bytes the value holds, for the byte limit (the map adds
    /// its own slot).
    fn weight(&self) -> u64;
    /// Unix milliseconds on the backend's clock after which the value may be
    /// reclaimed; `u64::MAX` for never. Read on every step of the CLOCK hand,
    /// so it should be a field.
    fn deadline(&self) -> u64;
}

/// What a [`ClockMap::compute`] does to its key.
pub(super) enum Change<V> {
    Keep,
    Put(V),
    Remove,
}

/// One stored value. Kept small (56 bytes with the memory backend's values),
/// since every entry pays for one: the key's hash is computed again when a
/// node moves or goes (cheap for response keys, already hashes), and the
/// deadline is the value's own.
struct Node<V> {
    key: Key,
    value: V,
    /// What the node counts against the byte limit; a value that would weigh
    /// more than `u32::MAX` is not stored.
    weight: u32,
    /// CLOCK's second chance: set when the value is stored or read, cleared as
    /// the hand passes it.
    referenced: AtomicBool,
}

/// One shard: nodes in a vector (the CLOCK's circle), and a table of their
/// positions (`u32`: half a `usize`'s table bytes; a shard never holds four
/// billion values).
struct Shard<V> {
    table: HashTable<u32>,
    nodes: Vec<Node<V>>,
    hand: usize,
}

/// A node's position, as the table keeps it.
fn position(at: usize) -> u32 {
    // `push` refuses a node past `u32::MAX`.
    u32::try_from(at).unwrap_or(u32::MAX)
}

impl<V> Default for Shard<V> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            nodes: Vec::new(),
            hand: 0,
        }
    }
}

impl<V: Weighed> Shard<V> {
    fn find(&self, hash: u64, key: KeyRef<'_>) -> Option<usize> {
        let nodes = &self.nodes;
        self.table
            .find(hash, |&i| nodes[i as usize].key.is(key))
            .map(|&i| i as usize)
    }

    /// Adds a node; `false` (and nothing added) when the shard is at
    /// `u32::MAX` nodes. The vector grows by an eighth, not by doubling: its
    /// spare room is what every node costs beyond its own bytes.
    fn push(&mut self, hasher: &KeyHasher, hash: u64, node: Node<V>) -> bool {
        let Ok(at) = u32::try_from(self.nodes.len()) else {
            return false;
        };
        if self.nodes.len() == self.nodes.capacity() {
            self.nodes.reserve_exact((self.nodes.len() / 8).max(16));
        }
        self.nodes.push(node);
        let nodes = &self.nodes;
        self.table
            .insert_unique(hash, at, |&i| hasher.hash(nodes[i as usize].key.as_ref()));
        true
    }

    /// Removes the node at `at`; the last node (the newest) takes its place.
    fn remove_at(&mut self, hasher: &KeyHasher, at: usize) -> Node<V> {
        let hash = hasher.hash(self.nodes[at].key.as_ref());
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == position(at)) {
            entry.remove();
        }
        let last = self.nodes.len() - 1;
        if at != last {
            let hash = hasher.hash(self.nodes[last].key.as_ref());
            if let Some(moved) = self.table.find_mut(hash, |&i| i == position(last)) {
                *moved = position(at);
            }
        }
        self.nodes.swap_remove(at)
    }

    /// CLOCK: removes, from the hand on, the first node that has expired or
    /// is not referenced, clearing the bits it passes. The node under `keep`
    /// (the value just stored) is passed over. Two turns at most: the first
    /// may only clear bits.
    fn evict_one(&mut self, hasher: &KeyHasher, now: u64, keep: KeyRef<'_>) -> Option<Node<V>> {
        for _ in 0..2 * self.nodes.len() {
            if self.hand >= self.nodes.len() {
                self.hand = 0;
            }
            let node = &mut self.nodes[self.hand];
            // Expired, or (not `keep`) unreferenced; a referenced bit passed is cleared.
            let evict = node.value.deadline() <= now
                || (!node.key.is(keep) && !std::mem::replace(node.referenced.get_mut(), false));
            if evict {
                return Some(self.take_at_hand(hasher));
            }
            self.hand += 1;
        }
        None
    }

    /// Removes the node under the hand, which then passes the node moved into
    /// its place: that is the newest node, and it gets a whole turn before
    /// the hand comes back to it, as if it had been stored behind the hand.
    fn take_at_hand(&mut self, hasher: &KeyHasher) -> Node<V> {
        let node = self.remove_at(hasher, self.hand);
        self.hand += 1;
        node
    }

    /// The node under the hand if it has expired, and the hand moves on: a
    /// few steps per write reclaim expired values before the limits are
    /// reached.
    fn reclaim_step(&mut self, hasher: &KeyHasher, now: u64) -> Option<Node<V>> {
        if self.hand >= self.nodes.len() {
            self.hand = 0;
        }
        if self.nodes.get(self.hand)?.value.deadline() <= now {
            return Some(self.take_at_hand(hasher));
        }
        self.hand += 1;
        None
    }
}

/// A shard alone on its cache lines, so locking one never slows another.
#[repr(align(128))]
struct Padded<V>(RwLock<Shard<V>>);

/// The map. See the module documentation.
pub(super) struct ClockMap<V> {
    shards: Box<[Padded<V>]>,
    hasher: KeyHasher,
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    len: AtomicU64,
    bytes: AtomicU64,
    /// The shard that gives up the next victim.
    next_victim: AtomicUsize,
}

impl<V> std::fmt::Debug for ClockMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockMap")
            .field("shards", &self.shards.len())
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("bytes", &self.bytes.load(Ordering::Relaxed))
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// Expired nodes reclaimed, at most, per write.
const RECLAIM_STEPS: usize = 2;

/// How many shards: about four per core, up to 64, and no more than one per 64
/// allowed entries, so a small cache keeps one CLOCK and evicts as a whole.
fn shard_count(max_entries: Option<u64>) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, NonZero::get);
    let wanted = (cores * 4).next_power_of_two().min(64);
    let allowed = max_entries.map_or(64, |n| (n / 64).clamp(1, 64));
    // The largest power of two not above `allowed`.
    let allowed = 1usize << (63 - allowed.leading_zeros());
    wanted.min(allowed)
}

fn read<V>(shard: &Padded<V>) -> RwLockReadGuard<'_, Shard<V>> {
    // A panic under the lock (in a caller's closure) leaves no half-made node.
    shard.0.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<V>(shard: &Padded<V>) -> RwLockWriteGuard<'_, Shard<V>> {
    shard.0.write().unwrap_or_else(PoisonError::into_inner)
}

impl<V: Weighed> ClockMap<V> {
    /// What a node costs beyond its value's weight: the node itself, the
    /// vector's spare room (an eighth once grown; a vector does not shrink
    /// after removals), and its table slots: 5 bytes each (a position and a
    /// control byte), and a table at most 7/8 full that doubles holds 8/7 to
    /// 16/7 slots per node.
    const NODE_WEIGHT: u64 = {
        let node = std::mem::size_of::<Node<V>>() as u64;
        node + node / 8 + 16 * 5 / 7
    };

    /// A map holding at most `max_entries` values and `max_bytes` of weight
    /// (`None`: no limit).
    pub(super) fn new(max_entries: Option<u64>, max_bytes: Option<u64>) -> Self {
        Self {
            shards: (0..shard_count(max_entries))
                .map(|_| Padded(RwLock::default()))
                .collect(),
            hasher: KeyHasher::new(),
            max_entries,
            max_bytes,
            len: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            next_victim: AtomicUsize::new(0),
        }
    }

    /// How many values are held.
    pub(super) fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }

    /// The total weight held, the map's own slots included.
    pub(super) fn weighted_size(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn shard(&self, hash: u64) -> &Padded<V> {
        // Bits apart from the table's (low bits pick the bucket, the top seven
        // are its tag), so a shard's keys still spread over its table.
        #[allow(clippy::cast_possible_truncation, reason = "a few bits are used")]
        let bits = (hash >> 32) as usize;
        &self.shards[bits & (self.shards.len() - 1)]
    }

    /// Reads a value in place, marking it used.
    pub(super) fn read<R>(&self, key: KeyRef<'_>, f: impl FnOnce(&V) -> R) -> Option<R> {
        let hash = self.hasher.hash(key);
        let shard = read(self.shard(hash));
        let node = &shard.nodes[shard.find(hash, key)?];
        // Written only when clear: readers of a hot value leave its line shared.
        if !node.referenced.load(Ordering::Relaxed) {
            node.referenced.store(true, Ordering::Relaxed);
        }
        Some(f(&node.value))
    }

    /// Decides what becomes of a key from what it holds, under its shard's
    /// write lock, so that changes to one key never interleave. `now` is the
    /// backend's clock (for reclaiming expired values).
    pub(super) fn compute<R>(
        &self,
        key: KeyRef<'_>,
        now: u64,
        f: impl FnOnce(Option<&V>) -> (Change<V>, R),
    ) -> R {
        let hash = self.hasher.hash(key);
        let mut shard = write(self.shard(hash));
        let found = shard.find(hash, key);
        let (change, result) = f(found.map(|at| &shard.nodes[at].value));
        let value = match (change, found) {
            (Change::Keep, _) | (Change::Remove, None) => return result,
            (Change::Remove, Some(at)) => {
                let node = shard.remove_at(&self.hasher, at);
                self.forget(&node);
                return result;
            }
            (Change::Put(value), _) => value,
        };
        let weight = u32::try_from(value.weight().saturating_add(Self::NODE_WEIGHT))
            .ok()
            .filter(|&w| self.max_bytes.is_none_or(|max| u64::from(w) <= max));
        let Some(weight) = weight else {
            // Too heavy to hold at all; what it replaces goes too, so a read
            // never finds an older value than the last write.
            if let Some(at) = found {
                let node = shard.remove_at(&self.hasher, at);
                self.forget(&node);
            }
            return result;
        };
        if let Some(at) = found {
            let node = &mut shard.nodes[at];
            // One change, so no other thread sees both weights counted.
            if weight >= node.weight {
                self.bytes
                    .fetch_add(u64::from(weight - node.weight), Ordering::Relaxed);
            } else {
                self.bytes
                    .fetch_sub(u64::from(node.weight - weight), Ordering::Relaxed);
            }
            node.value = value;
            node.weight = weight;
            *node.referenced.get_mut() = true;
        } else {
            let node = Node {
                key: key.into(),
                value,
                weight,
                referenced: AtomicBool::new(true),
            };
            if !shard.push(&self.hasher, hash, node) {
                return result;
            }
            self.len.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(u64::from(weight), Ordering::Relaxed);
        }
        for _ in 0..RECLAIM_STEPS {
            if let Some(node) = shard.reclaim_step(&self.hasher, now) {
                self.forget(&node);
            }
        }
        drop(shard);
        self.evict(now, key);
        result
    }

    /// Stores a value, replacing any other under its key.
    pub(super) fn insert(&self, key: KeyRef<'_>, now: u64, value: V) {
        self.compute(key, now, |_| (Change::Put(value), ()));
    }

    /// Removes a key's value; returns it.
    pub(super) fn remove(&self, key: KeyRef<'_>) -> Option<V> {
        let hash = self.hasher.hash(key);
        let mut shard = write(self.shard(hash));
        let at = shard.find(hash, key)?;
        let node = shard.remove_at(&self.hasher, at);
        self.forget(&node);
        Some(node.value)
    }

    /// Removes every value `remove` picks; returns them. Each shard is locked
    /// for its own pass only.
    pub(super) fn remove_where(&self, mut remove: impl FnMut(&V) -> bool) -> Vec<V> {
        let mut removed = Vec::new();
        for padded in &self.shards {
            let mut shard = write(padded);
            let mut at = 0;
            while at < shard.nodes.len() {
                if remove(&shard.nodes[at].value) {
                    let node = shard.remove_at(&self.hasher, at);
                    self.forget(&node);
                    removed.push(node.value);
                } else {
                    at += 1;
                }
            }
        }
        removed
    }

    /// Removes everything. Values are dropped outside the locks.
    pub(super) fn clear(&self) {
        for padded in &self.shards {
            let nodes = {
                let mut shard = write(padded);
                shard.table.clear();
                shard.hand = 0;
                std::mem::take(&mut shard.nodes)
            };
            for node in &nodes {
                self.forget(node);
            }
        }
    }

    fn forget(&self, node: &Node<V>) {
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.bytes
            .fetch_sub(u64::from(node.weight), Ordering::Relaxed);
    }

    fn over(&self) -> bool {
        self.max_entries.is_some_and(|max| self.len() > max)
            || self.max_bytes.is_some_and(|max| self.weighted_size() > max)
    }

    /// Evicts until both limits hold, one victim per shard in turn (from a
    /// shard that moves on with every call, then each shard in order, so one
    /// call visits them all); the value under `keep` stays. Stops when no
    /// shard has anything to give.
    fn evict(&self, now: u64, keep: KeyRef<'_>) {
        let mut turn = self.next_victim.fetch_add(1, Ordering::Relaxed);
        let mut empty_turns = 0;
        while self.over() && empty_turns < self.shards.len() {
            let mut shard = write(&self.shards[turn % self.shards.len()]);
            turn = turn.wrapping_add(1);
            match shard.evict_one(&self.hasher, now, keep) {
                Some(node) => {
                    self.forget(&node);
                    empty_turns = 0;
                }
                None => empty_turns += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct V {
        weight: u64,
        deadline: u64,
    }

    impl Weighed for V {
        fn weight(&self) -> u64 {
            self.weight
        }
        fn deadline(&self) -> u64 {
            self.deadline
        }
    }

    fn v(weight: u64) -> V {
        V {
            weight,
            deadline: u64::MAX,
        }
    }

    fn text(i: usize) -> String {
        format!("k{i}")
    }

    #[test]
    fn reads_writes_and_removes_both_kinds_of_key() {
        let map = ClockMap::new(None, None);
        map.insert(KeyRef::Text("a"), 0, v(1));
        map.insert(KeyRef::Response(7), 0, v(2));
        map.insert(KeyRef::Response(7 << 64), 0, v(3));
        assert_eq!(map.read(KeyRef::Text("a"), |v| v.weight), Some(1));
        assert_eq!(map.read(KeyRef::Response(7), |v| v.weight), Some(2));
        assert_eq!(map.read(KeyRef::Response(7 << 64), |v| v.weight), Some(3));
        assert_eq!(map.read(KeyRef::Text("b"), |v| v.weight), None);
        assert_eq!(map.len(), 3);
        map.insert(KeyRef::Text("a"), 0, v(4));
        assert_eq!(map.len(), 3, "a replacement is not a new value");
        assert_eq!(map.remove(KeyRef::Text("a")), Some(v(4)));
        assert_eq!(map.remove(KeyRef::Text("a")), None);
        assert_eq!(map.read(KeyRef::Response(7), |v| v.weight), Some(2));
        map.clear();
        assert_eq!((map.len(), map.weighted_size()), (0, 0));
        assert_eq!(map.read(KeyRef::Response(7), |v| v.weight), None);
    }

    /// Every key stays findable through many removals (each moves another
    /// node into the freed place).
    #[test]
    fn removals_keep_every_other_key_findable() {
        let map = ClockMap::new(None, None);
        for i in 0..2_000 {
            map.insert(KeyRef::Text(&text(i)), 0, v(0));
        }
        for i in (0..2_000).step_by(3) {
            assert!(map.remove(KeyRef::Text(&text(i))).is_some());
        }
        for i in 0..2_000 {
            let found = map.read(KeyRef::Text(&text(i)), |_| ()).is_some();
            assert_eq!(found, i % 3 != 0, "key {i}");
        }
        assert_eq!(map.len(), 2_000 - 667);
    }

    #[test]
    fn remove_where_takes_what_it_picks() {
        let map = ClockMap::new(None, None);
        for i in 0..100 {
            map.insert(KeyRef::Text(&text(i)), 0, v(i as u64));
        }
        let mut removed: Vec<u64> = map
            .remove_where(|value| value.weight % 10 == 0)
            .into_iter()
            .map(|v| v.weight)
            .collect();
        removed.sort_unstable();
        assert_eq!(removed, (0..100).step_by(10).collect::<Vec<u64>>());
        assert_eq!(map.len(), 90);
        assert_eq!(map.read(KeyRef::Text("k11"), |v| v.weight), Some(11));
        assert_eq!(map.read(KeyRef::Text("k10"), |v| v.weight), None);
    }

    /// CLOCK: values read since the hand last passed survive; the others go.
    #[test]
    fn read_values_get_a_second_chance() {
        let map = ClockMap::new(Some(10), None);
        assert_eq!(map.shards.len(), 1);
        for i in 0..10 {
            map.insert(KeyRef::Text(&text(i)), 0, v(0));
        }
        // The first overflow clears every bit and evicts one old value.
        map.insert(KeyRef::Text("new0"), 0, v(0));
        assert_eq!(map.len(), 10);
        let read: Vec<usize> = (0..10)
            .step_by(2)
            .filter(|&i| map.read(KeyRef::Text(&text(i)), |_| ()).is_some())
            .collect();
        let unread = 9 - read.len();
        for n in 1..5 {
            map.insert(KeyRef::Text(&format!("new{n}")), 0, v(0));
        }
        assert_eq!(map.len(), 10);
        for &i in &read {
            assert!(map.read(KeyRef::Text(&text(i)), |_| ()).is_some(), "k{i}");
        }
        let left = (1..10)
            .step_by(2)
            .filter(|&i| map.read(KeyRef::Text(&text(i)), |_| ()).is_some())
            .count();
        assert_eq!(left, unread - 4, "the unread values went instead");
    }

    /// A value stored into a full cache whose older values were all read
    /// since the last sweep (so the sweep clears them all and evicts one, and
    /// the new value takes its place) is not the next write's victim.
    #[test]
    fn a_value_just_stored_survives_the_next_write() {
        let map = ClockMap::new(Some(10), None);
        for i in 0..10 {
            map.insert(KeyRef::Text(&text(i)), 0, v(0));
        }
        // One sweep clears every bit; then all but one old value are read.
        map.insert(KeyRef::Text("first"), 0, v(0));
        for i in 0..10 {
            map.read(KeyRef::Text(&text(i)), |_| ());
        }
        map.insert(KeyRef::Text("lock"), 0, v(0));
        map.insert(KeyRef::Text("x"), 0, v(0));
        assert!(map.read(KeyRef::Text("lock"), |_| ()).is_some());
        assert_eq!(map.len(), 10);
    }

    #[test]
    fn both_limits_hold_and_a_new_value_stays() {
        let map = ClockMap::new(Some(1_000), Some(10_000));
        let slot = ClockMap::<V>::NODE_WEIGHT;
        for i in 0..500 {
            map.insert(KeyRef::Text(&text(i)), 0, v(400));
            assert!(map.weighted_size() <= 10_000);
            assert!(
                map.read(KeyRef::Text(&text(i)), |_| ()).is_some(),
                "k{i} just stored"
            );
        }
        assert_eq!(map.len(), 10_000 / (400 + slot));
        let many = ClockMap::new(Some(100), None);
        for i in 0..1_000 {
            many.insert(KeyRef::Text(&text(i)), 0, v(0));
            assert!(many.read(KeyRef::Text(&text(i)), |_| ()).is_some());
        }
        assert_eq!(many.len(), 100);
    }

    /// A value heavier than the whole byte limit is not stored, and takes the
    /// value it would have replaced with it.
    #[test]
    fn a_value_over_the_byte_limit_is_refused_and_replaces_nothing() {
        let map = ClockMap::new(None, Some(1_000));
        map.insert(KeyRef::Text("k"), 0, v(10));
        map.insert(KeyRef::Text("k"), 0, v(5_000));
        assert_eq!(map.read(KeyRef::Text("k"), |v| v.weight), None);
        assert_eq!((map.len(), map.weighted_size()), (0, 0));
        // Without a byte limit, a node's weight must still fit its `u32`.
        let unlimited = ClockMap::new(None, None);
        unlimited.insert(KeyRef::Text("k"), 0, v(10));
        unlimited.insert(KeyRef::Text("k"), 0, v(u64::from(u32::MAX)));
        assert_eq!(unlimited.read(KeyRef::Text("k"), |v| v.weight), None);
        assert_eq!((unlimited.len(), unlimited.weighted_size()), (0, 0));
    }

    fn expiring(deadline: u64) -> V {
        V {
            weight: 0,
            deadline,
        }
    }

    /// Writes reclaim expired values before any limit is reached (in the
    /// shard they write to: one here).
    #[test]
    fn writes_reclaim_expired_values() {
        let map = ClockMap::new(Some(100), None);
        assert_eq!(map.shards.len(), 1);
        for i in 0..10 {
            map.insert(KeyRef::Text(&text(i)), 0, expiring(100));
        }
        for i in 10..30 {
            map.insert(KeyRef::Text(&text(i)), 99, v(0));
        }
        assert_eq!(map.len(), 30, "nothing has expired at 99");
        for i in 30..70 {
            map.insert(KeyRef::Text(&text(i)), 100, v(0));
        }
        assert_eq!(map.len(), 60, "the ten expired values are gone");
        assert!((0..10).all(|i| map.read(KeyRef::Text(&text(i)), |_| ()).is_none()));
    }

    /// When full, expired values go first, however recently read.
    #[test]
    fn expired_values_are_the_first_victims() {
        let map = ClockMap::new(Some(10), None);
        for i in 0..10 {
            let deadline = if i % 2 == 0 { 100 } else { u64::MAX };
            map.insert(KeyRef::Text(&text(i)), 0, expiring(deadline));
            map.read(KeyRef::Text(&text(i)), |_| ());
        }
        for n in 0..5 {
            map.insert(KeyRef::Text(&format!("new{n}")), 100, v(0));
        }
        assert_eq!(map.len(), 10);
        for i in 0..10 {
            let found = map.read(KeyRef::Text(&text(i)), |_| ()).is_some();
            assert_eq!(found, i % 2 == 1, "k{i}");
        }
    }

    #[test]
    fn compute_sees_the_value_and_decides() {
        let map = ClockMap::new(None, None);
        let added = map.compute(KeyRef::Text("k"), 0, |found| match found {
            Some(_) => (Change::Keep, false),
            None => (Change::Put(v(1)), true),
        });
        assert!(added);
        let again = map.compute(KeyRef::Text("k"), 0, |found| match found {
            Some(_) => (Change::Keep, false),
            None => (Change::Put(v(2)), true),
        });
        assert!(!again);
        assert_eq!(map.read(KeyRef::Text("k"), |v| v.weight), Some(1));
    }

    /// Every entry pays for a node (with the memory backend's values), so its
    /// size is watched: see `benches/scale.rs`.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn nodes_stay_small() {
        assert_eq!(std::mem::size_of::<Node<super::super::Slot>>(), 56);
    }

    #[test]
    fn small_caches_have_one_shard() {
        assert_eq!(shard_count(Some(10)), 1);
        assert_eq!(shard_count(Some(127)), 1);
        assert_eq!(shard_count(Some(128)), 2.min(shard_count(None)));
        assert!(shard_count(None).is_power_of_two());
        assert!(shard_count(Some(u64::MAX)) <= 64);
    }
}
