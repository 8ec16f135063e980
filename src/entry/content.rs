//! [`Content`]: what an entry holds as bytes, in one buffer.
//!
//! A stored response's key material, header values and body were three
//! blocks, each with its own handle in the entry and, once served, its own
//! shared count. In one buffer they are one block and one count, and the
//! entry keeps one handle and two offsets. The collector copies the body into
//! a fresh buffer anyway (a chunk may be a slice of a much larger read
//! buffer), so the material and values ride along at the cost of a few
//! hundred bytes copied per store. Byte backends carry the same buffer at the
//! end of the envelope, so a decoded entry is a slice of what was read.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName};

use super::DecodeError;
use crate::headers::shape::Shape;
use crate::headers::stored::{self, StoredHeaders};

/// An entry's key material, then its header values (laid out by
/// [`stored::write`]), then its body; and the layout of the header names.
#[derive(Debug, Clone)]
pub(crate) struct Content {
    shape: Arc<Shape>,
    buf: Bytes,
    /// Where the header values start (the material's length).
    values_at: u32,
    /// Where the body starts.
    body_at: u32,
}

/// Where each section of a buffer ends, while it is written.
fn offset(buf: &BytesMut) -> Option<u32> {
    u32::try_from(buf.len()).ok()
}

/// A buffer of `head` bytes' room plus the body's, `head` to be written first.
fn buffer(head: usize, chunks: &[Bytes]) -> BytesMut {
    BytesMut::with_capacity(head + chunks.iter().map(Bytes::len).sum::<usize>())
}

fn put_body(buf: &mut BytesMut, chunks: &[Bytes]) {
    for chunk in chunks {
        buf.extend_from_slice(chunk);
    }
}

/// Whether each name's values are consecutive, as a `HeaderMap` iterates
/// them and as a [`Shape`] lays them out (a name that comes back after
/// another would pair values with the wrong names).
fn is_grouped(names: &[HeaderName]) -> bool {
    let mut ended = HashSet::new();
    names
        .windows(2)
        .all(|pair| pair[0] == pair[1] || (ended.insert(&pair[0]) && !ended.contains(&pair[1])))
}

impl Content {
    /// The content for `material`, `fields` and a body in `chunks`. `None`
    /// when the material and fields come to 4 GiB or more (no response can
    /// carry such a header section; a key hook could make such material), or
    /// when [`stored::write`] refuses a value (2 GiB or more, or bytes only
    /// http's unchecked constructors take).
    pub(crate) fn new(
        material: &[u8],
        fields: &HeaderMap,
        status_slot: bool,
        chunks: &[Bytes],
    ) -> Option<Self> {
        let mut buf = buffer(material.len() + stored::written_len(fields), chunks);
        buf.extend_from_slice(material);
        let values_at = offset(&buf)?;
        let shape = stored::write(fields, status_slot, &mut buf)?;
        let body_at = offset(&buf)?;
        put_body(&mut buf, chunks);
        Some(Self {
            shape,
            buf: buf.freeze(),
            values_at,
            body_at,
        })
    }

    /// The same material and fields with a body in `chunks` instead.
    pub(crate) fn with_body(&self, chunks: &[Bytes]) -> Self {
        let head = &self.buf[..self.body_at as usize];
        let mut buf = buffer(head.len(), chunks);
        buf.extend_from_slice(head);
        put_body(&mut buf, chunks);
        Self {
            shape: Arc::clone(&self.shape),
            buf: buf.freeze(),
            values_at: self.values_at,
            body_at: self.body_at,
        }
    }

    /// The same material and body with `fields` instead (a 304's refresh);
    /// `None` as for [`Content::new`].
    pub(crate) fn with_fields(&self, fields: &HeaderMap, status_slot: bool) -> Option<Self> {
        Self::new(self.material(), fields, status_slot, &[self.body()])
    }

    /// The primary key material the entry was stored under.
    pub(crate) fn material(&self) -> &[u8] {
        &self.buf[..self.values_at as usize]
    }

    /// The stored header fields.
    pub(crate) fn headers(&self) -> StoredHeaders<'_> {
        StoredHeaders::new(&self.shape, &self.buf, self.values_at as usize)
    }

    /// The body: a slice of the buffer, not a copy.
    pub(crate) fn body(&self) -> Bytes {
        self.buf.slice(self.body_at as usize..)
    }

    pub(crate) fn body_len(&self) -> usize {
        self.buf.len() - self.body_at as usize
    }

    /// The buffer's length (for weighing an entry).
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The layout of the header names (for weighing an entry).
    pub(crate) fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The buffer and its two offsets, as the envelope carries them.
    pub(crate) fn raw(&self) -> (&[u8], u32, u32) {
        (&self.buf, self.values_at, self.body_at)
    }

    /// Content read back from an envelope: `buf` with its offsets, the header
    /// names in order, and whether the layout has a `Cache-Status` slot.
    /// Checked whole, so that a corrupt value is an error and a hit never
    /// hands out bytes a header value may not hold.
    pub(crate) fn from_raw(
        buf: Bytes,
        values_at: u32,
        body_at: u32,
        names: Vec<HeaderName>,
        status_slot: bool,
    ) -> Result<Self, DecodeError> {
        let section = buf
            .get(values_at as usize..body_at as usize)
            .ok_or(DecodeError::Invalid("content offsets"))?;
        if !is_grouped(&names) {
            return Err(DecodeError::Invalid("header names"));
        }
        if stored::checked_len(section, names.len()) != Some(section.len()) {
            return Err(DecodeError::Invalid("header values"));
        }
        Ok(Self {
            // No values held: a hit from a byte backend waits for a round
            // trip, next to which slicing a value out of the buffer is nothing.
            shape: Shape::of(names, Vec::new(), status_slot),
            buf,
            values_at,
            body_at,
        })
    }
}

impl PartialEq for Content {
    fn eq(&self, other: &Self) -> bool {
        self.material() == other.material()
            && self.headers() == other.headers()
            && self.buf[self.body_at as usize..] == other.buf[other.body_at as usize..]
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use http::header::{CONTENT_TYPE, ETAG};

    use super::*;

    fn fields(etag: &'static str) -> HeaderMap {
        let mut fields = HeaderMap::new();
        fields.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        fields.insert(ETAG, HeaderValue::from_static(etag));
        fields
    }

    fn chunks(parts: &[&'static str]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::from_static(p.as_bytes()))
            .collect()
    }

    #[test]
    fn each_section_reads_back_and_each_can_be_replaced() {
        let content =
            Content::new(b"key", &fields("\"a\""), true, &chunks(&["he", "llo"])).unwrap();
        assert_eq!(content.material(), b"key");
        assert_eq!(content.headers().fields(), fields("\"a\""));
        assert_eq!(
            (&content.body()[..], content.body_len()),
            (&b"hello"[..], 5)
        );

        let rebodied = content.with_body(&chunks(&["bye"]));
        assert_eq!(rebodied.material(), b"key");
        assert_eq!(rebodied.headers().fields(), fields("\"a\""));
        assert_eq!(&rebodied.body()[..], b"bye");

        let refreshed = content.with_fields(&fields("\"b\""), false).unwrap();
        assert_eq!(refreshed.material(), b"key");
        assert_eq!(refreshed.headers().fields(), fields("\"b\""));
        assert!(!refreshed.headers().has_status_slot());
        assert_eq!(&refreshed.body()[..], b"hello");
    }

    #[test]
    fn raw_parts_read_back_only_when_consistent() {
        let content = Content::new(b"key", &fields("\"a\""), true, &chunks(&["hello"])).unwrap();
        let (buf, values_at, body_at) = content.raw();
        let buf = Bytes::copy_from_slice(buf);
        let names = || vec![CONTENT_TYPE, ETAG];
        let back = Content::from_raw(buf.clone(), values_at, body_at, names(), true).unwrap();
        assert_eq!(back, content);
        // Offsets out of order or past the end, a name too many or too few.
        for (at, end) in [
            (body_at, values_at),
            (values_at, 1_000),
            (values_at, body_at - 1),
        ] {
            assert!(Content::from_raw(buf.clone(), at, end, names(), true).is_err());
        }
        assert!(Content::from_raw(buf.clone(), values_at, body_at, vec![ETAG], true).is_err());
        let mut three = names();
        three.push(ETAG);
        assert!(Content::from_raw(buf, values_at, body_at, three, true).is_err());
    }

    /// Names laid out as a `HeaderMap` would never iterate them (one coming
    /// back after another) are refused: values would go to the wrong names.
    #[test]
    fn names_that_are_not_grouped_are_refused() {
        let mut twice = fields("\"a\"");
        twice.append(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        let content = Content::new(b"key", &twice, true, &[]).unwrap();
        let (buf, values_at, body_at) = content.raw();
        let buf = Bytes::copy_from_slice(buf);
        let grouped = vec![CONTENT_TYPE, CONTENT_TYPE, ETAG];
        assert!(Content::from_raw(buf.clone(), values_at, body_at, grouped, true).is_ok());
        let apart = vec![CONTENT_TYPE, ETAG, CONTENT_TYPE];
        assert_eq!(
            Content::from_raw(buf, values_at, body_at, apart, true),
            Err(DecodeError::Invalid("header names"))
        );
        assert!(is_grouped(&[ETAG, ETAG]) && is_grouped(&[]));
        assert!(!is_grouped(&[ETAG, CONTENT_TYPE, http::header::VARY, ETAG]));
    }
}
