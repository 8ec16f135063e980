//! [`Shape`]: the header names of stored responses, kept once for all the
//! entries that share them.
//!
//! An `http::HeaderMap` costs 104 bytes per field (its bucket) plus its index,
//! whatever the values hold: with small bodies, more than half of what an entry
//! weighs. A service's responses mostly carry the same names in the same order,
//! so the names, with the `Age` and `Cache-Status` slots, are laid out once as
//! a map of placeholder values, and each entry keeps only its values
//! ([`StoredHeaders`](super::stored::StoredHeaders)). A hit clones the shared
//! map and writes every value in one pass: what cloning the entry's own map
//! cost, with no field hashed again.
//!
//! A shape may also hold values: those of fields whose values many responses
//! repeat (a `Content-Type`, a route's `Cache-Control`), kept once for the
//! process as static bytes ([`common`](super::interned::common)). A hit then
//! copies them with the map, where a value sliced out of the entry's buffer
//! takes and releases a reference count (two atomic writes) per hit. The
//! entry still keeps every value (its buffer is what byte backends carry), so
//! a shape with values and one without serve the same fields.
//!
//! Shapes are interned in one process-wide table of weak references, swept as
//! it grows. Shared shapes are charged to no entry's weight, so the table is
//! bounded: at most [`MAX_SHAPES`] of them, each of at most [`MAX_SHARED_NAMES`]
//! names and [`MAX_SHARED_NAME_BYTES`] bytes of names (a few MB at worst). A
//! response past those bounds (a hostile origin inventing names, say) gets a
//! shape of its own, outside the table, which its entry's weight pays for.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock, Weak};

use bytes::Bytes;
use http::header::{AGE, CACHE_STATUS};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Shapes the table keeps at most.
const MAX_SHAPES: usize = 1024;

/// Names a shared shape has at most.
const MAX_SHARED_NAMES: usize = 32;

/// Bytes of names a shared shape has at most.
const MAX_SHARED_NAME_BYTES: usize = 1024;

/// Shapes with values the table keeps at most: the rest of it stays for
/// shapes of names alone, so an origin whose values vary (a `max-age` per
/// page) falls back to sharing names, never to a shape per entry.
const MAX_VALUED_SHAPES: usize = MAX_SHAPES / 2;

/// Own values a shape may hold, by position (the bits behind [`Shape::holds`]).
pub(crate) const MAX_HELD: usize = 64;

/// While the table (or its share for shapes with values) is full, shapes
/// asked for between two sweeps at most.
const SWEEP_WHEN_FULL: usize = 64;

/// What every position holds until a hit writes it (never served).
const PLACEHOLDER: HeaderValue = HeaderValue::from_static("0");

/// A value a shape holds for every entry made with it (static bytes from
/// [`common`](super::interned::common)), or `None`: each entry's own.
pub(crate) type Held = Option<&'static [u8]>;

/// One layout of stored header fields: the response's names in order, then an
/// `Age` slot and, when the storing layer sends `Cache-Status`, a
/// `Cache-Status` slot after any values the response brought.
#[derive(Debug)]
pub(crate) struct Shape {
    /// Every position with a placeholder or a held value, in serving order.
    map: HeaderMap,
    /// The response's own names, in the map's iteration order (its key in the table).
    names: Box<[HeaderName]>,
    /// Bit `i`: the `i`th own value is held in the map.
    held: u64,
    /// Positions in the map's iteration order.
    age_at: Option<usize>,
    status_at: Option<usize>,
    /// Whether the table shares it (else only the entries made with it hold it).
    interned: bool,
}

/// The key of a shape in the table: its names, the values it holds (empty when
/// none), and whether it has a status slot.
type Key = (Box<[HeaderName]>, Box<[Held]>, bool);

fn holds_values(key: &Key) -> bool {
    !key.1.is_empty()
}

struct Table {
    shapes: HashMap<Key, Weak<Shape>>,
    /// Keys that hold values ([`MAX_VALUED_SHAPES`] at most).
    valued: usize,
    /// Dead references are swept out when the table reaches this length: twice
    /// what the last sweep left (at least 64), so a sweep's cost spreads to a
    /// constant per shape made.
    sweep_at: usize,
    /// Shapes asked for since the last sweep: a full table is swept again
    /// after [`SWEEP_WHEN_FULL`] of them, so dead shapes do not keep it full.
    made: usize,
}

impl Table {
    fn new() -> Self {
        Self {
            shapes: HashMap::new(),
            valued: 0,
            sweep_at: 64,
            made: 0,
        }
    }

    /// Whether `key` holds values and their share of the table is taken.
    fn no_room_for(&self, key: &Key) -> bool {
        holds_values(key) && self.valued >= MAX_VALUED_SHAPES
    }
}

/// The process-wide table.
static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(|| RwLock::new(Table::new()));

impl Shape {
    /// The shape of these names (grouped as a `HeaderMap` iterates them, `Age`
    /// left out) holding the `held` values (by position; `None` for each
    /// entry's own), shared when one is live.
    pub(crate) fn of(names: Vec<HeaderName>, held: Vec<Held>, status_slot: bool) -> Arc<Self> {
        Self::of_in(&TABLE, names, held, status_slot)
    }

    /// [`Shape::of`] in a given table (tests fill their own).
    fn of_in(
        table: &RwLock<Table>,
        names: Vec<HeaderName>,
        mut held: Vec<Held>,
        status_slot: bool,
    ) -> Arc<Self> {
        // One key per layout: no values held is an empty list.
        held.truncate(names.len().min(MAX_HELD));
        if held.iter().all(Option::is_none) {
            held.clear();
        }
        let mut key: Key = (
            names.into_boxed_slice(),
            held.into_boxed_slice(),
            status_slot,
        );
        let shareable = key.0.len() <= MAX_SHARED_NAMES
            && key.0.iter().map(|n| n.as_str().len()).sum::<usize>() <= MAX_SHARED_NAME_BYTES;
        if !shareable {
            return Arc::new(Self::lay_out(key, false));
        }
        let found = table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .shapes
            .get(&key)
            .and_then(Weak::upgrade);
        if let Some(shape) = found {
            return shape;
        }
        let mut table = table.write().unwrap_or_else(PoisonError::into_inner);
        // Another writer may have made it meanwhile.
        if let Some(shape) = table.shapes.get(&key).and_then(Weak::upgrade) {
            return shape;
        }
        let len = table.shapes.len();
        let full = len >= MAX_SHAPES || table.no_room_for(&key);
        if len >= table.sweep_at || (full && table.made >= SWEEP_WHEN_FULL) {
            table.shapes.retain(|_, shape| shape.strong_count() > 0);
            table.valued = table.shapes.keys().filter(|key| holds_values(key)).count();
            table.sweep_at = (2 * table.shapes.len()).max(64);
            table.made = 0;
        }
        table.made += 1;
        if table.no_room_for(&key) && !table.shapes.contains_key(&key) {
            // No room for more values: the names alone, each entry's values.
            key.1 = Box::new([]);
            if let Some(shape) = table.shapes.get(&key).and_then(Weak::upgrade) {
                return shape;
            }
        }
        // A dead entry under the same key is replaced whatever the count.
        let replaces = table.shapes.contains_key(&key);
        let interned = table.shapes.len() < MAX_SHAPES || replaces;
        let shape = Arc::new(Self::lay_out(key.clone(), interned));
        if interned {
            if holds_values(&key) && !replaces {
                table.valued += 1;
            }
            table.shapes.insert(key, Arc::downgrade(&shape));
        }
        shape
    }

    fn lay_out((names, held, status_slot): Key, interned: bool) -> Self {
        // `names` counts values, not fields: a guess of the size only.
        let mut map = HeaderMap::try_with_capacity(names.len() + 2).unwrap_or_default();
        let mut bits = 0;
        for (i, name) in names.iter().enumerate() {
            let value =
                held.get(i).copied().flatten().and_then(|bytes| {
                    HeaderValue::from_maybe_shared(Bytes::from_static(bytes)).ok()
                });
            if value.is_some() {
                bits |= 1 << i;
            }
            // The names came out of a `HeaderMap`, grouped by name, so they fit
            // in one: grouped, each value after the first adds no field.
            let _ = map.try_append(name.clone(), value.unwrap_or(PLACEHOLDER));
        }
        let _ = map.try_append(AGE, PLACEHOLDER);
        let status_slot = status_slot && map.try_append(CACHE_STATUS, PLACEHOLDER).is_ok();
        let age_at = positions(&map, &AGE).next();
        // The slot is the last `Cache-Status` value, after the response's own.
        let status_at = status_slot
            .then(|| positions(&map, &CACHE_STATUS).last())
            .flatten();
        Self {
            map,
            names,
            held: bits,
            age_at,
            status_at,
            interned,
        }
    }

    /// The response's own names, in serving order.
    pub(crate) fn names(&self) -> &[HeaderName] {
        &self.names
    }

    /// The map of placeholders (and held values) a hit fills.
    pub(crate) fn map(&self) -> &HeaderMap {
        &self.map
    }

    /// Whether the `i`th own value is in the map already (a hit leaves it).
    #[inline]
    pub(crate) fn holds(&self, i: usize) -> bool {
        i < MAX_HELD && self.held >> i & 1 == 1
    }

    pub(crate) fn age_at(&self) -> Option<usize> {
        self.age_at
    }

    pub(crate) fn status_at(&self) -> Option<usize> {
        self.status_at
    }

    /// Whether the table shares it; if not, each entry holding it pays for it
    /// (twice over when a refreshed entry keeps its predecessor's).
    pub(crate) fn is_interned(&self) -> bool {
        self.interned
    }
}

/// Positions of a name's values in a map's iteration order.
fn positions<'a>(map: &'a HeaderMap, name: &'a HeaderName) -> impl Iterator<Item = usize> + 'a {
    map.iter()
        .enumerate()
        .filter(move |(_, (n, _))| *n == name)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CACHE_CONTROL, CONTENT_TYPE};

    #[test]
    fn the_same_names_share_one_shape() {
        let a = Shape::of(vec![CONTENT_TYPE, CACHE_CONTROL], vec![], true);
        let b = Shape::of(vec![CONTENT_TYPE, CACHE_CONTROL], vec![], true);
        assert!(Arc::ptr_eq(&a, &b));
        let other_order = Shape::of(vec![CACHE_CONTROL, CONTENT_TYPE], vec![], true);
        assert!(!Arc::ptr_eq(&a, &other_order));
        let no_slot = Shape::of(vec![CONTENT_TYPE, CACHE_CONTROL], vec![], false);
        assert!(!Arc::ptr_eq(&a, &no_slot));
        assert!(a.is_interned());
    }

    #[test]
    fn slots_follow_the_responses_own_names() {
        let shape = Shape::of(vec![CONTENT_TYPE, CACHE_STATUS, CACHE_STATUS], vec![], true);
        let order: Vec<&HeaderName> = shape.map().keys().collect();
        assert_eq!(order, [&CONTENT_TYPE, &CACHE_STATUS, &AGE]);
        // Iteration: content-type, status, status, slot, age.
        assert_eq!(shape.status_at(), Some(3));
        assert_eq!(shape.age_at(), Some(4));
        let plain = Shape::of(vec![CONTENT_TYPE], vec![], false);
        assert_eq!((plain.age_at(), plain.status_at()), (Some(1), None));
    }

    #[test]
    fn large_layouts_are_not_shared() {
        let names: Vec<HeaderName> = (0..=MAX_SHARED_NAMES)
            .map(|i| HeaderName::try_from(format!("x-shape-test-many-{i}")).unwrap())
            .collect();
        assert!(!Shape::of(names, vec![], false).is_interned());
        let long = HeaderName::try_from("x".repeat(MAX_SHARED_NAME_BYTES + 1)).unwrap();
        assert!(!Shape::of(vec![long], vec![], false).is_interned());
    }

    #[test]
    fn a_table_full_of_dead_shapes_is_swept_and_shares_again() {
        // A table of its own: filling the process-wide one would keep the
        // tests running beside this one from sharing shapes.
        let table = RwLock::new(Table::new());
        let of = |names, status_slot| Shape::of_in(&table, names, vec![], status_slot);
        let unique = |tag: &str, i: usize| {
            vec![HeaderName::try_from(format!("x-shape-test-{tag}-{i}")).unwrap()]
        };
        let live: Vec<Arc<Shape>> = (0..MAX_SHAPES + SWEEP_WHEN_FULL)
            .map(|i| of(unique("full", i), false))
            .collect();
        assert!(
            live.iter().any(|shape| !shape.is_interned()),
            "the table filled up"
        );
        drop(live);
        // Within the shapes made between two sweeps of a full table, one is
        // shared again, and the same names then find it.
        let shared = (0..=SWEEP_WHEN_FULL)
            .map(|i| (i, of(unique("after", i), false)))
            .find(|(_, shape)| shape.is_interned());
        let (i, shape) = shared.expect("a sweep made room");
        assert!(Arc::ptr_eq(&shape, &of(unique("after", i), false)));
    }

    #[test]
    fn a_dropped_shape_is_made_again() {
        let name = HeaderName::from_static("x-shape-test-dropped");
        let first = Shape::of(vec![name.clone()], vec![], false);
        let weak = Arc::downgrade(&first);
        drop(first);
        assert!(weak.upgrade().is_none());
        // Made again, and shared again under the same names.
        let again = Shape::of(vec![name.clone()], vec![], false);
        assert!(again.is_interned());
        assert!(Arc::ptr_eq(&again, &Shape::of(vec![name], vec![], false)));
    }

    fn held(value: &'static str) -> Held {
        Some(value.as_bytes())
    }

    #[test]
    fn held_values_sit_in_the_map_and_key_the_shape() {
        let names = || vec![CONTENT_TYPE, CACHE_CONTROL];
        let shape = Shape::of(names(), vec![held("text/html"), None], true);
        assert!(shape.holds(0) && !shape.holds(1));
        assert_eq!(shape.map()[CONTENT_TYPE], "text/html");
        assert_eq!(shape.map()[CACHE_CONTROL], PLACEHOLDER);
        let same = Shape::of(names(), vec![held("text/html"), None], true);
        assert!(Arc::ptr_eq(&shape, &same));
        let other = Shape::of(names(), vec![held("text/plain"), None], true);
        assert!(!Arc::ptr_eq(&shape, &other));
        // Holding nothing is one layout however it is said.
        let plain = Shape::of(names(), vec![], true);
        assert!(!plain.holds(0) && !plain.holds(1));
        assert!(Arc::ptr_eq(
            &plain,
            &Shape::of(names(), vec![None, None], true)
        ));
    }

    #[test]
    fn past_its_share_of_the_table_a_shape_holds_names_alone() {
        let table = RwLock::new(Table::new());
        let names = || vec![CONTENT_TYPE];
        let values: Vec<&'static str> = (0..=MAX_VALUED_SHAPES)
            .map(|i| &*Box::leak(format!("text/x-{i}").into_boxed_str()))
            .collect();
        let live: Vec<Arc<Shape>> = values[..MAX_VALUED_SHAPES]
            .iter()
            .map(|v| Shape::of_in(&table, names(), vec![held(v)], false))
            .collect();
        assert!(live.iter().all(|s| s.holds(0) && s.is_interned()));
        let over = Shape::of_in(
            &table,
            names(),
            vec![held(values[MAX_VALUED_SHAPES])],
            false,
        );
        assert!(!over.holds(0));
        assert!(over.is_interned(), "names alone are still shared");
        let again = Shape::of_in(&table, names(), vec![held("text/y")], false);
        assert!(Arc::ptr_eq(&over, &again));
        // Dead shapes with values make room again once swept.
        drop(live);
        let shared = (0..=SWEEP_WHEN_FULL + 64)
            .map(|i| {
                let value = Box::leak(format!("text/z-{i}").into_boxed_str());
                Shape::of_in(&table, names(), vec![held(value)], false)
            })
            .find(|shape| shape.holds(0));
        assert!(shared.is_some(), "a sweep made room for values");
    }
}
