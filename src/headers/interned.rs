//! Header values for small integers, formatted once and then shared.
//!
//! `Age` and the hit's `Cache-Status` (`...; ttl=N`) change every second, but take
//! few distinct values; formatting them on every hit costs two allocations that
//! a table lookup avoids. A table's values are formatted once and never freed,
//! so they are static bytes: handing one out touches no reference count (a
//! shared count would be one cache line that every hit on every thread writes).

use std::sync::OnceLock;

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

#[cfg(test)]
mod tests {
    use super::*;

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
