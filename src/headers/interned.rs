//! Header values made once and then shared as static bytes: small integers
//! ([`Interned`]) and the values many stored responses repeat ([`common`]).
//!
//! `Age` and the hit's `Cache-Status` (`...; ttl=N`) change every second, but take
//! few distinct values; formatting them on every hit costs two allocations that
//! a table lookup avoids. A table's values are formatted once and never freed,
//! so they are static bytes: handing one out touches no reference count (a
//! shared count would be one cache line that every hit on every thread writes).

use std::collections::HashSet;
use std::sync::{LazyLock, OnceLock, PoisonError, RwLock};

use bytes::Bytes;
use http::HeaderValue;

/// How many values each table keeps (larger integers are formatted per use).
const SIZE: usize = 1024;

/// `<prefix><n>` header values for `n` below [`SIZE`], made on first use.
pub(crate) struct Interned {
    prefix: &'static str,
    values: [OnceLock<HeaderValue>; SIZE],
}

impl Interned {
    pub(crate) const fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            values: [const { OnceLock::new() }; SIZE],
        }
    }

    pub(crate) fn get(&self, n: i64) -> HeaderValue {
        match usize::try_from(n).ok().and_then(|i| self.values.get(i)) {
            Some(slot) => slot.get_or_init(|| self.format_static(n)).clone(),
            None => self.format(n),
        }
    }

    fn format(&self, n: i64) -> HeaderValue {
        // A static prefix of visible ASCII and an integer: always a valid value.
        HeaderValue::try_from(self.text(n)).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The value for a table slot, in bytes that live as long as the table: at
    /// most [`SIZE`] short strings per table, each made once.
    fn format_static(&self, n: i64) -> HeaderValue {
        let text: &'static str = Box::leak(self.text(n).into_boxed_str());
        HeaderValue::from_maybe_shared(Bytes::from_static(text.as_bytes()))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    fn text(&self, n: i64) -> String {
        format!("{}{n}", self.prefix)
    }
}

/// Common values the process keeps at most: never freed, so bounded.
const MAX_COMMON: usize = 4096;

/// Bytes a common value has at most (with [`MAX_COMMON`], at most 512 KiB).
const MAX_COMMON_LEN: usize = 128;

/// The values kept so far.
static COMMON: LazyLock<RwLock<HashSet<&'static [u8]>>> =
    LazyLock::new(|| RwLock::new(HashSet::new()));

/// `value` as static bytes, kept once for the process: a value that many
/// responses share (a `Content-Type`, a route's `Cache-Control`), which a
/// [`Shape`](super::shape::Shape) can then hold so that a hit copies it with
/// the shape's map instead of slicing it out of the entry (a reference count
/// taken and released per value and per hit). `None` past the bounds: a long
/// value, or a full table (an origin that invents values fills it once, and
/// later values are then served from their entries, as before).
pub(crate) fn common(value: &[u8]) -> Option<&'static [u8]> {
    common_in(&COMMON, value)
}

/// [`common`] in a given table (tests fill their own).
fn common_in(table: &RwLock<HashSet<&'static [u8]>>, value: &[u8]) -> Option<&'static [u8]> {
    if value.len() > MAX_COMMON_LEN {
        return None;
    }
    if let Some(kept) = table
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(value)
    {
        return Some(kept);
    }
    let mut table = table.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(kept) = table.get(value) {
        return Some(kept);
    }
    if table.len() >= MAX_COMMON {
        return None;
    }
    let kept: &'static [u8] = Box::leak(value.into());
    table.insert(kept);
    Some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_values_are_kept_once_and_bounded() {
        let table = RwLock::new(HashSet::new());
        let a = common_in(&table, b"text/html").unwrap();
        let b = common_in(&table, b"text/html").unwrap();
        assert_eq!(a, b"text/html");
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(common_in(&table, &[b'x'; MAX_COMMON_LEN + 1]), None);
        for i in 1..MAX_COMMON {
            assert!(common_in(&table, format!("v{i}").as_bytes()).is_some());
        }
        // Full: a new value is refused, a kept one is still found.
        assert_eq!(common_in(&table, b"one too many"), None);
        assert_eq!(common_in(&table, b"text/html"), Some(a));
    }

    #[test]
    fn small_and_large_and_negative_values_format_the_same_way() {
        static T: Interned = Interned::new("ttl=");
        assert_eq!(T.get(0), "ttl=0");
        assert_eq!(T.get(5), "ttl=5");
        assert_eq!(T.get(5), "ttl=5");
        assert_eq!(T.get(1_000_000), "ttl=1000000");
        assert_eq!(T.get(-3), "ttl=-3");
    }

    #[test]
    fn a_table_slot_is_made_once_and_handed_out_without_copies() {
        static T: Interned = Interned::new("age=");
        let (a, b) = (T.get(7), T.get(7));
        assert_eq!(a.as_bytes().as_ptr(), b.as_bytes().as_ptr());
        // Past the table: formatted for each use.
        let (c, d) = (T.get(5_000), T.get(5_000));
        assert_eq!(c, d);
        assert_ne!(c.as_bytes().as_ptr(), d.as_bytes().as_ptr());
    }
}
