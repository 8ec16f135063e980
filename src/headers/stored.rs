//! [`StoredHeaders`]: a stored response's header fields, laid out so that a hit
//! copies them once and writes every value in one pass.
//!
//! Every hit adds `Age` and, by default, a `Cache-Status` entry. Appending them
//! to a copy of a map grows it (a reallocation, two hashed inserts), and
//! building a fresh map hashes every field again: either was a fifth of the
//! layer's cost of an in-memory hit. So the names are laid out once, with both
//! fields as placeholders ("slots"), in a [`Shape`] that entries with the same
//! names share; an entry keeps only its values, and a hit clones the shape's
//! map and writes the values and the slots into the copy.
//!
//! The values sit back to back in a section of the entry's one buffer
//! ([`crate::entry::Content`]), after a table of their lengths, where a
//! `HeaderValue` apiece was 40 bytes each plus a block and a count for every
//! value the origin or the layer built. A hit hands out slices of the buffer.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{
    ACCEPT_RANGES, ACCESS_CONTROL_ALLOW_ORIGIN, AGE, CACHE_CONTROL, CACHE_STATUS, CONTENT_ENCODING,
    CONTENT_LANGUAGE, CONTENT_TYPE, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, VARY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::interned::common;
use super::shape::{Held, MAX_HELD, Shape};

/// The header fields of a stored response, read in place: the shared layout
/// of its names (with an `Age` slot and, when the storing layer adds
/// `Cache-Status`, a `Cache-Status` slot after any entries the response
/// brought), and its values' section of the entry's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredHeaders<'a> {
    shape: &'a Shape,
    /// The entry's buffer. From `at`: a `u32` per value of [`Shape::names`]
    /// (its length, the top bit set when it is sensitive), then the values'
    /// bytes, as [`write`] lays them out.
    buf: &'a Bytes,
    at: usize,
}

/// The top bit of a value's length word: the value is sensitive (kept out of
/// HTTP/2 header compression tables).
const SENSITIVE: u32 = 1 << 31;

/// Values of this many bytes or more do not fit a length word. No peer can
/// send one (hyper refuses header sections over 100 KiB); an in-process
/// service might, and [`write`] refuses its response.
const MAX_VALUE_LEN: usize = SENSITIVE as usize;

/// The fields a layout keeps: all but the response's own `Age` (the entry's
/// `AgeRule` accounts for it; a hit writes the slot).
fn kept(fields: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    fields.iter().filter(|(name, _)| **name != AGE)
}

/// Fields whose value a route sends the same in every response, so that a
/// shape may hold it ([`common`]). Not `Expires`, `ETag`, `Last-Modified`,
/// `Content-Length` and the like: values that differ per response would only
/// fill the tables.
fn is_repeated(name: &HeaderName) -> bool {
    [
        CONTENT_TYPE,
        CACHE_CONTROL,
        VARY,
        CONTENT_ENCODING,
        CONTENT_LANGUAGE,
        ACCEPT_RANGES,
        X_CONTENT_TYPE_OPTIONS,
        X_FRAME_OPTIONS,
        REFERRER_POLICY,
        STRICT_TRANSPORT_SECURITY,
        ACCESS_CONTROL_ALLOW_ORIGIN,
    ]
    .contains(name)
}

/// How many bytes [`write`] adds for `fields`.
pub(crate) fn written_len(fields: &HeaderMap) -> usize {
    kept(fields).map(|(_, value)| 4 + value.len()).sum()
}

/// RFC 9110's field-value bytes, as `HeaderValue`'s checked constructors
/// accept them.
fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Lays out a response's fields: appends their values' section to `out` and
/// returns the layout of their names. `None` (and `out` as it was) when a
/// value does not fit a length word ([`MAX_VALUE_LEN`]), or holds bytes
/// `HeaderValue` only takes unchecked: a hit hands values out unchecked,
/// which debug builds check again (and would panic on).
pub(crate) fn write(
    fields: &HeaderMap,
    status_slot: bool,
    out: &mut BytesMut,
) -> Option<Arc<Shape>> {
    let storable =
        |value: &HeaderValue| value.len() < MAX_VALUE_LEN && is_field_value(value.as_bytes());
    if !kept(fields).all(|(_, value)| storable(value)) {
        return None;
    }
    let names = kept(fields).map(|(name, _)| name.clone()).collect();
    let held: Vec<Held> = kept(fields)
        .take(MAX_HELD)
        .map(|(name, value)| {
            let repeated = is_repeated(name) && !value.is_sensitive();
            repeated.then(|| common(value.as_bytes())).flatten()
        })
        .collect();
    // Every value is written, held or not: the buffer is what byte backends
    // carry, and a shape that holds nothing serves it whole.
    for (_, value) in kept(fields) {
        // Below `MAX_VALUE_LEN`: the top bit is free.
        let len = u32::try_from(value.len()).unwrap_or(0);
        out.put_u32(if value.is_sensitive() {
            len | SENSITIVE
        } else {
            len
        });
    }
    for (_, value) in kept(fields) {
        out.put_slice(value.as_bytes());
    }
    Some(Shape::of(names, held, status_slot))
}

/// How long a values' section of `count` values at the start of `section`
/// is, if it is one [`write`] could have made (for stored bytes read back:
/// a hit hands its values out unchecked).
pub(crate) fn checked_len(section: &[u8], count: usize) -> Option<usize> {
    let words = section.get(..count.checked_mul(4)?)?;
    let mut end = words.len();
    for word in words.chunks_exact(4) {
        let word = u32::from_be_bytes(word.try_into().ok()?);
        let value = section.get(end..end.checked_add((word & !SENSITIVE) as usize)?)?;
        if !is_field_value(value) {
            return None;
        }
        end += value.len();
    }
    Some(end)
}

impl<'a> StoredHeaders<'a> {
    /// The fields laid out by [`write`] at `at` in `buf`, named by `shape`.
    pub(crate) fn new(shape: &'a Shape, buf: &'a Bytes, at: usize) -> Self {
        Self { shape, buf, at }
    }

    /// Where each own value lies in the buffer, in order, with its length
    /// word (for [`StoredHeaders::value`]).
    #[inline]
    fn spans(self) -> impl Iterator<Item = (usize, u32)> + 'a {
        // `write` wrote a length word per name, then exactly those lengths.
        let lengths = &self.buf[self.at..self.at + 4 * self.len()];
        let mut start = self.at + lengths.len();
        lengths.chunks_exact(4).map(move |word| {
            let word = u32::from_be_bytes(word.try_into().unwrap_or_default());
            let at = start;
            start += (word & !SENSITIVE) as usize;
            (at, word)
        })
    }

    /// The value at a span: a slice of the buffer, so no value is copied.
    #[inline]
    fn value(self, (start, word): (usize, u32)) -> HeaderValue {
        let slice = self.buf.slice(start..start + (word & !SENSITIVE) as usize);
        // SAFETY: `write` or `checked_len` found these to be bytes a
        // `HeaderValue` may hold.
        let mut value = unsafe { HeaderValue::from_maybe_shared_unchecked(slice) };
        value.set_sensitive(word & SENSITIVE != 0);
        value
    }

    /// The own values, in order.
    fn values(self) -> impl Iterator<Item = HeaderValue> + 'a {
        self.spans().map(move |span| self.value(span))
    }

    /// Whether the layout has a `Cache-Status` slot (for the envelope).
    pub(crate) fn has_status_slot(self) -> bool {
        self.shape.status_at().is_some()
    }

    /// The response's own fields, in order, without the slots.
    pub(crate) fn iter(self) -> impl Iterator<Item = (&'a HeaderName, HeaderValue)> {
        self.shape.names().iter().zip(self.values())
    }

    /// How many own values there are (a name counts once per value).
    pub(crate) fn len(self) -> usize {
        self.shape.names().len()
    }

    /// The response's own fields as a map, without the slots (for reading
    /// validators, a 304's fields, and the start of a 304 refresh).
    pub(crate) fn fields(self) -> HeaderMap {
        // `len` counts values, not fields: a guess of the size only.
        let mut fields = HeaderMap::try_with_capacity(self.len()).unwrap_or_default();
        for (name, value) in self.iter() {
            // They came out of a `HeaderMap`, so they fit in one.
            let _ = fields.try_append(name.clone(), value);
        }
        fields
    }

    /// The fields to send: a copy of the shape's map with every value it does
    /// not hold, `Age` and `Cache-Status` written in (the status slot removed
    /// when this layer sends no `Cache-Status`).
    pub(crate) fn to_response(
        self,
        age: HeaderValue,
        cache_status: Option<HeaderValue>,
    ) -> HeaderMap {
        let shape = self.shape;
        if cache_status.is_none() && shape.status_at().is_some() {
            // A layer that sends no `Cache-Status` serving what one that does
            // stored (a shared backend): no slot to fill.
            let mut headers = self.fields();
            let _ = headers.try_insert(AGE, age);
            return headers;
        }
        let mut headers = shape.map().clone();
        let mut spans = self.spans().enumerate();
        let mut age = Some(age);
        let mut cache_status = cache_status;
        for (at, slot) in headers.values_mut().enumerate() {
            if Some(at) == shape.age_at() {
                if let Some(age) = age.take() {
                    *slot = age;
                }
            } else if Some(at) == shape.status_at() {
                if let Some(status) = cache_status.take() {
                    *slot = status;
                }
            } else if let Some((i, span)) = spans.next()
                && !shape.holds(i)
            {
                *slot = self.value(span);
            }
        }
        // Slots a shape could not hold (a map at its size limit).
        if let Some(age) = age {
            let _ = headers.try_insert(AGE, age);
        }
        if let Some(status) = cache_status {
            let _ = headers.try_append(CACHE_STATUS, status);
        }
        headers
    }
}

impl PartialEq for StoredHeaders<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.has_status_slot() == other.has_status_slot() && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::ETAG;

    /// Fields laid out as an entry's content does, after some key material.
    struct Laid {
        shape: Arc<Shape>,
        buf: Bytes,
    }

    const MATERIAL: &[u8] = b"key material";

    fn lay(fields: HeaderMap, status_slot: bool) -> Laid {
        let mut buf = BytesMut::from(MATERIAL);
        let shape = write(&fields, status_slot, &mut buf).unwrap();
        assert_eq!(buf.len() - MATERIAL.len(), written_len(&fields));
        Laid {
            shape,
            buf: buf.freeze(),
        }
    }

    impl Laid {
        fn headers(&self) -> StoredHeaders<'_> {
            StoredHeaders::new(&self.shape, &self.buf, MATERIAL.len())
        }
    }

    fn upstream() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert(AGE, HeaderValue::from_static("30"));
        h.append(CACHE_STATUS, HeaderValue::from_static("origin; hit"));
        h
    }

    fn values(h: &HeaderMap, name: http::HeaderName) -> Vec<&str> {
        h.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn a_hit_fills_both_slots_after_the_upstream_entries() {
        let stored_laid = lay(upstream(), true);
        let stored = stored_laid.headers();
        let out = stored.to_response(
            HeaderValue::from_static("7"),
            Some(HeaderValue::from_static("tower-response-cache; hit")),
        );
        assert_eq!(values(&out, AGE), ["7"]);
        assert_eq!(
            values(&out, CACHE_STATUS),
            ["origin; hit", "tower-response-cache; hit"]
        );
        assert_eq!(values(&out, CONTENT_TYPE), ["text/plain"]);
    }

    #[test]
    fn the_status_slot_goes_when_the_layer_sends_no_status() {
        let stored_laid = lay(upstream(), true);
        let stored = stored_laid.headers();
        let out = stored.to_response(HeaderValue::from_static("1"), None);
        assert_eq!(values(&out, CACHE_STATUS), ["origin; hit"]);
    }

    #[test]
    fn without_a_status_slot_the_status_is_appended() {
        let stored_laid = lay(upstream(), false);
        let stored = stored_laid.headers();
        let out = stored.to_response(
            HeaderValue::from_static("1"),
            Some(HeaderValue::from_static("tower-response-cache; hit")),
        );
        assert_eq!(
            values(&out, CACHE_STATUS),
            ["origin; hit", "tower-response-cache; hit"]
        );
    }

    #[test]
    fn every_value_is_served_in_order_around_the_slots() {
        let mut fields = upstream();
        fields.append(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        fields.insert(ETAG, HeaderValue::from_static("\"v1\""));
        let stored_laid = lay(fields, true);
        let stored = stored_laid.headers();
        let out = stored.to_response(
            HeaderValue::from_static("3"),
            Some(HeaderValue::from_static("tower-response-cache; hit")),
        );
        let served: Vec<(&str, &str)> = out
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            served,
            [
                ("content-type", "text/plain"),
                ("content-type", "text/html"),
                ("cache-status", "origin; hit"),
                ("cache-status", "tower-response-cache; hit"),
                ("etag", "\"v1\""),
                ("age", "3"),
            ]
        );
    }

    #[test]
    fn repeated_values_come_from_the_shape_and_the_rest_from_the_entry() {
        let mut fields = HeaderMap::new();
        fields.insert(CONTENT_TYPE, HeaderValue::from_static("text/x-held-test"));
        let mut private = HeaderValue::from_static("no-store-held-test");
        private.set_sensitive(true);
        fields.insert(CACHE_CONTROL, private);
        fields.insert(ETAG, HeaderValue::from_static("\"e\""));
        let (a, b) = (lay(fields.clone(), true), lay(fields, true));
        assert!(Arc::ptr_eq(&a.shape, &b.shape));
        let serve = |laid: &Laid| {
            let status = HeaderValue::from_static("tower-response-cache; hit");
            laid.headers()
                .to_response(HeaderValue::from_static("1"), Some(status))
        };
        let (out_a, out_b) = (serve(&a), serve(&b));
        let at = |out: &HeaderMap, name| out[name].as_bytes().as_ptr();
        // Held: the same static bytes for both entries, in neither's buffer.
        assert_eq!(at(&out_a, CONTENT_TYPE), at(&out_b, CONTENT_TYPE));
        assert!(!a.buf.as_ptr_range().contains(&at(&out_a, CONTENT_TYPE)));
        // A per-response value, and a sensitive one: each entry's own bytes.
        for name in [ETAG, CACHE_CONTROL] {
            assert!(a.buf.as_ptr_range().contains(&at(&out_a, name.clone())));
        }
        assert!(out_a[CACHE_CONTROL].is_sensitive());
        // The entry keeps every value, held or not.
        assert_eq!(a.headers().fields()[CONTENT_TYPE], "text/x-held-test");
    }

    #[test]
    fn a_shape_that_holds_values_serves_what_one_without_does() {
        let mut fields = upstream();
        fields.append(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        fields.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
        fields.insert(ETAG, HeaderValue::from_static("\"v1\""));
        let laid = lay(fields, true);
        let names: Vec<HeaderName> = laid.shape.names().to_vec();
        let bare = Shape::of(names, Vec::new(), true);
        assert!(laid.shape.holds(0) && !bare.holds(0));
        let with = |shape: &Shape| {
            StoredHeaders::new(shape, &laid.buf, MATERIAL.len()).to_response(
                HeaderValue::from_static("2"),
                Some(HeaderValue::from_static("tower-response-cache; hit")),
            )
        };
        let served = |map: HeaderMap| -> Vec<(String, Vec<u8>)> {
            map.iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        assert_eq!(served(with(&laid.shape)), served(with(&bare)));
    }

    #[test]
    fn values_keep_their_bytes_and_sensitivity() {
        let mut fields = HeaderMap::new();
        let mut token = HeaderValue::from_static("secret");
        token.set_sensitive(true);
        fields.insert(http::header::SET_COOKIE, token);
        fields.insert(CONTENT_TYPE, HeaderValue::from_static(""));
        let long = "x".repeat(70_000);
        fields.insert(ETAG, HeaderValue::from_str(&long).unwrap());
        let stored_laid = lay(fields, false);
        let stored = stored_laid.headers();
        let out = stored.to_response(HeaderValue::from_static("0"), None);
        let cookie = out.get(http::header::SET_COOKIE).unwrap();
        assert_eq!(
            (cookie.as_bytes(), cookie.is_sensitive()),
            (&b"secret"[..], true)
        );
        assert_eq!(out.get(CONTENT_TYPE).unwrap(), "");
        assert!(!out.get(ETAG).unwrap().is_sensitive());
        assert_eq!(out.get(ETAG).unwrap().len(), 70_000);
        assert_eq!(stored_laid.buf.len(), MATERIAL.len() + 4 * 3 + 6 + 70_000);
        let section = &stored_laid.buf[MATERIAL.len()..];
        assert_eq!(checked_len(section, 3), Some(section.len()));
    }

    #[test]
    fn tens_of_thousands_of_values_of_one_name_are_all_served() {
        // More values than a `HeaderMap` can be sized for in advance.
        let mut fields = HeaderMap::new();
        for i in 0..30_000 {
            fields.append("x-many", HeaderValue::from(i));
        }
        let stored_laid = lay(fields, true);
        let stored = stored_laid.headers();
        let out = stored.to_response(
            HeaderValue::from_static("4"),
            Some(HeaderValue::from_static("tower-response-cache; hit")),
        );
        let served: Vec<&HeaderValue> = out.get_all("x-many").iter().collect();
        assert_eq!(served.len(), 30_000);
        assert_eq!(served[0], "0");
        assert_eq!(served[29_999], "29999");
        assert_eq!(values(&out, AGE), ["4"]);
        assert_eq!(stored.fields().get_all("x-many").iter().count(), 30_000);
    }

    #[test]
    fn entries_with_the_same_names_keep_their_own_values() {
        let one_laid = lay(upstream(), true);
        let one = one_laid.headers();
        let mut other = upstream();
        other.insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
        let other_laid = lay(other, true);
        let other = other_laid.headers();
        assert_ne!(one, other);
        let served = other.to_response(HeaderValue::from_static("0"), None);
        assert_eq!(values(&served, CONTENT_TYPE), ["image/png"]);
        assert_eq!(values(&one.fields(), CONTENT_TYPE), ["text/plain"]);
    }

    /// The bytes `HeaderValue::from_bytes` takes; a value made unchecked from
    /// any other is not stored (a debug build's hit would panic on it).
    #[test]
    fn field_values_are_what_checked_constructors_take() {
        for ok in [&b""[..], b"a b\tc", b"\x80\xff", b"~!"] {
            assert!(is_field_value(ok), "{ok:?}");
            assert!(HeaderValue::from_bytes(ok).is_ok());
        }
        for bad in [&b"\n"[..], b"a\rb", b"\x00", b"\x7f", b"\x1f"] {
            assert!(!is_field_value(bad), "{bad:?}");
            assert!(HeaderValue::from_bytes(bad).is_err());
        }
    }

    /// What a decoded entry's values must pass before a hit hands them out
    /// unchecked.
    #[test]
    fn only_well_formed_sections_pass_the_check() {
        let laid = lay(upstream(), true);
        let section = &laid.buf[MATERIAL.len()..];
        let count = laid.shape.names().len();
        assert_eq!(checked_len(section, count), Some(section.len()));
        assert_eq!(checked_len(&section[..section.len() - 1], count), None);
        // One word too many reads "text" as a length.
        assert_eq!(checked_len(section, count + 1), None);
        let mut control = section.to_vec();
        control[4 * count] = b'\n';
        assert_eq!(checked_len(&control, count), None);
    }

    #[test]
    fn fields_are_the_response_without_the_slots() {
        let stored_laid = lay(upstream(), true);
        let stored = stored_laid.headers();
        let fields = stored.fields();
        assert!(fields.get(AGE).is_none());
        assert_eq!(values(&fields, CACHE_STATUS), ["origin; hit"]);
        assert_eq!(values(&fields, CONTENT_TYPE), ["text/plain"]);
    }
}
