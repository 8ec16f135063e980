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
//! Shapes are interned in one process-wide table of weak references, swept as
//! it grows. A response whose names make a shape past [`MAX_SHAPES`] live ones
//! (a hostile origin inventing names) gets a shape of its own, outside the
//! table, which its entry's weight then pays for.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, PoisonError, RwLock, Weak};

use http::header::{AGE, CACHE_STATUS};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Live shapes the table keeps at most.
const MAX_SHAPES: usize = 4096;

/// What every position holds until a hit writes it (never served).
const PLACEHOLDER: HeaderValue = HeaderValue::from_static("0");

/// One layout of stored header fields: the response's names in order, then an
/// `Age` slot and, when the storing layer sends `Cache-Status`, a
/// `Cache-Status` slot after any values the response brought.
#[derive(Debug)]
pub(crate) struct Shape {
    /// Every position with a placeholder, in serving order.
    map: HeaderMap,
    /// The response's own names, in the map's iteration order (its key in the table).
    names: Box<[HeaderName]>,
    /// Positions in the map's iteration order.
    age_at: Option<usize>,
    status_at: Option<usize>,
    /// Whether the table shares it (else it is one entry's alone).
    interned: bool,
}

/// The key of a shape in the table: its names and whether it has a status slot.
type Key = (Box<[HeaderName]>, bool);

struct Table {
    shapes: HashMap<Key, Weak<Shape>>,
    /// Shapes made since dead references were last swept out. A sweep comes
    /// after as many as the table holds (at least 64), so its cost spreads to
    /// a constant per shape made, and a table full of dead shapes soon empties.
    made: usize,
}

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(|| {
    RwLock::new(Table {
        shapes: HashMap::new(),
        made: 0,
    })
});

impl Shape {
    /// The shape of these names (grouped as a `HeaderMap` iterates them, `Age`
    /// left out), shared when one is live.
    pub(crate) fn of(names: Vec<HeaderName>, status_slot: bool) -> Arc<Self> {
        let key: Key = (names.into_boxed_slice(), status_slot);
        let found = TABLE
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .shapes
            .get(&key)
            .and_then(Weak::upgrade);
        if let Some(shape) = found {
            return shape;
        }
        let mut table = TABLE.write().unwrap_or_else(PoisonError::into_inner);
        // Another writer may have made it meanwhile.
        if let Some(shape) = table.shapes.get(&key).and_then(Weak::upgrade) {
            return shape;
        }
        table.made += 1;
        if table.made >= table.shapes.len().max(64) {
            table.shapes.retain(|_, shape| shape.strong_count() > 0);
            table.made = 0;
        }
        let interned = table.shapes.len() < MAX_SHAPES;
        let shape = Arc::new(Self::lay_out(key.0.clone(), status_slot, interned));
        if interned {
            table.shapes.insert(key, Arc::downgrade(&shape));
        }
        shape
    }

    fn lay_out(names: Box<[HeaderName]>, status_slot: bool, interned: bool) -> Self {
        let mut map = HeaderMap::with_capacity(names.len() + 2);
        for name in &names {
            // The names came out of a `HeaderMap`, so they fit in one.
            let _ = map.try_append(name.clone(), PLACEHOLDER);
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
            age_at,
            status_at,
            interned,
        }
    }

    /// The response's own names, in serving order.
    pub(crate) fn names(&self) -> &[HeaderName] {
        &self.names
    }

    /// The map of placeholders a hit fills.
    pub(crate) fn map(&self) -> &HeaderMap {
        &self.map
    }

    pub(crate) fn age_at(&self) -> Option<usize> {
        self.age_at
    }

    pub(crate) fn status_at(&self) -> Option<usize> {
        self.status_at
    }

    /// Whether the table shares it; if not, the one entry holding it pays
    /// for it.
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
        let a = Shape::of(vec![CONTENT_TYPE, CACHE_CONTROL], true);
        let b = Shape::of(vec![CONTENT_TYPE, CACHE_CONTROL], true);
        assert!(Arc::ptr_eq(&a, &b));
        let other_order = Shape::of(vec![CACHE_CONTROL, CONTENT_TYPE], true);
        assert!(!Arc::ptr_eq(&a, &other_order));
        let no_slot = Shape::of(vec![CONTENT_TYPE, CACHE_CONTROL], false);
        assert!(!Arc::ptr_eq(&a, &no_slot));
        assert!(a.is_interned());
    }

    #[test]
    fn slots_follow_the_responses_own_names() {
        let shape = Shape::of(vec![CONTENT_TYPE, CACHE_STATUS, CACHE_STATUS], true);
        let order: Vec<&HeaderName> = shape.map().keys().collect();
        assert_eq!(order, [&CONTENT_TYPE, &CACHE_STATUS, &AGE]);
        // Iteration: content-type, status, status, slot, age.
        assert_eq!(shape.status_at(), Some(3));
        assert_eq!(shape.age_at(), Some(4));
        let plain = Shape::of(vec![CONTENT_TYPE], false);
        assert_eq!((plain.age_at(), plain.status_at()), (Some(1), None));
    }

    #[test]
    fn a_dropped_shape_is_made_again() {
        let name = HeaderName::from_static("x-shape-test-dropped");
        let first = Shape::of(vec![name.clone()], false);
        let weak = Arc::downgrade(&first);
        drop(first);
        assert!(weak.upgrade().is_none());
        let again = Shape::of(vec![name], false);
        assert_eq!(again.names().len(), 1);
    }
}
