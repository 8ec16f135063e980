//! What the cache keeps: stored responses ([`Entry`]), per-URL variant indexes
//! ([`Index`]), and the versioned binary envelope they travel in to byte backends.
//!
//! The in-memory backend keeps these values decoded (a hit clones an `Arc`); every
//! other backend stores [`encode`]d bytes, and anything [`decode`] cannot read is a
//! miss, so a format change or a corrupt value never fails a request.

mod content;

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::AGE;
use http::{HeaderName, StatusCode};

pub(crate) use self::content::Content;

/// Which request method produced a stored response.
///
/// A HEAD request may be answered from a stored GET (its headers, no body); a GET is
/// never answered from a stored HEAD, which has no body to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoredMethod {
    Get,
    Head,
}

/// Who a stored response may be served to, as far as `Authorization` goes.
///
/// A response that is not `public` and was produced for an anonymous request must
/// never reach an authorised one, nor the reverse (DESIGN.md, departure 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthScope {
    /// `public`: anyone.
    Any,
    /// Requests without a non-empty `Authorization`.
    Anonymous,
    /// Requests with a non-empty `Authorization` (also varied on its value).
    Authorized,
}

impl AuthScope {
    /// Whether a request that is (or is not) authorised may be served this entry.
    pub(crate) fn admits(self, authorized: bool) -> bool {
        match self {
            AuthScope::Any => true,
            AuthScope::Anonymous => !authorized,
            AuthScope::Authorized => authorized,
        }
    }
}

/// The request header values a stored response was selected by (its `Vary`).
///
/// Names are lower-case, sorted and unique; a value is `None` when the request did
/// not carry the header at all (absent differs from empty), otherwise all of the
/// request's lines for that name combined.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct VaryValues {
    /// `None` when the response has no `Vary` (most do not): a word in every
    /// entry, and a block only in those that vary.
    pairs: Option<Box<Pairs>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pairs(Box<[(HeaderName, Option<Bytes>)]>);

impl VaryValues {
    /// Names (as described above) with their values.
    pub(crate) fn new(pairs: Vec<(HeaderName, Option<Bytes>)>) -> Self {
        Self {
            pairs: (!pairs.is_empty()).then(|| Box::new(Pairs(pairs.into()))),
        }
    }

    /// Each name with its value, in name order.
    pub(crate) fn pairs(&self) -> &[(HeaderName, Option<Bytes>)] {
        self.pairs.as_deref().map_or(&[], |p| &p.0)
    }
}

/// How a hit tells its `Age`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgeRule {
    /// Django's arithmetic, when the stored response has an integer `max-age`
    /// and a valid `Expires`: `Age = max(0, max_age - (expires - now))`, so
    /// that `max-age - Age` is exactly the time the page has left in this
    /// cache. Kept as `expires - max_age` (Unix seconds): then
    /// `Age = max(0, now - since)`.
    Django { since: i64 },
    /// RFC 9111's: the age the response had already reached when stored (its
    /// corrected initial age; 0 in app mode), plus the time since.
    Resident { initial_age: u64 },
}

impl AgeRule {
    /// Django's rule for a response's `max-age` and `Expires` (Unix seconds).
    pub(crate) fn django(max_age: i64, expires: i64) -> Self {
        Self::Django {
            since: expires.saturating_sub(max_age),
        }
    }
}

/// When a stored response must be checked with the origin before it is used
/// (shared mode; app mode stores neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Revalidate {
    /// `no-cache`: on every use, fresh or not.
    pub(crate) every_use: bool,
    /// `must-revalidate`, `proxy-revalidate`, `s-maxage`: never served stale.
    pub(crate) once_stale: bool,
}

/// One stored response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The primary key material (URL, prefix, hook components; checked on
    /// every hit so a hash collision can only ever be a miss), the header
    /// fields and the body.
    pub(crate) content: Content,
    pub(crate) method: StoredMethod,
    pub(crate) auth: AuthScope,
    pub(crate) vary: VaryValues,
    pub(crate) status: StatusCode,
    /// Unix milliseconds.
    pub(crate) stored_at: u64,
    /// Unix milliseconds; fresh while `now < fresh_until`.
    pub(crate) fresh_until: u64,
    /// Unix milliseconds; kept (stale, for revalidation) until then.
    pub(crate) kept_until: u64,
    pub(crate) age: AgeRule,
    pub(crate) revalidate: Revalidate,
    /// Seconds past freshness the response may be served stale, while
    /// revalidating in the background / when the inner service fails (RFC 5861).
    pub(crate) stale_while_revalidate: u32,
    pub(crate) stale_if_error: u32,
    /// The response's tags (its tag field), for `purge_tag`.
    pub(crate) tags: Box<[String]>,
}

impl Entry {
    /// RFC 9111's age at `now_ms`: the initial age plus the whole seconds
    /// since the entry was stored (a Django-rule entry arrived with none).
    pub(crate) fn resident_age(&self, now_ms: u64) -> u64 {
        let initial = match self.age {
            AgeRule::Resident { initial_age } => initial_age,
            AgeRule::Django { .. } => 0,
        };
        initial.saturating_add(now_ms.saturating_sub(self.stored_at) / 1000)
    }
}

/// Where the variants of one URL live when there is more than one.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Index {
    /// Oldest first.
    pub(crate) variants: Vec<VariantRef>,
}

/// An index's description of one variant: enough to tell, from a request alone,
/// whether that variant is the one to fetch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VariantRef {
    /// Hash of the method, scope and Vary'd values; also names the variant's key.
    pub(crate) id: u128,
    pub(crate) method: StoredMethod,
    pub(crate) auth: AuthScope,
    pub(crate) names: Vec<HeaderName>,
    /// The variant's [`Entry::kept_until`].
    pub(crate) kept_until: u64,
}

/// A value under a response key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stored {
    Entry(Arc<Entry>),
    Index(Arc<Index>),
}

/// Why stored bytes could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The bytes do not start with this crate's magic number.
    #[error("not a tower-response-cache entry")]
    BadMagic,
    /// Written by a format version this build does not read.
    #[error("unsupported entry format version {0}")]
    UnsupportedVersion(u8),
    /// The value ends before its fields do, or carries bytes after them.
    #[error("truncated or oversized entry")]
    Truncated,
    /// A field holds a value that cannot be what it claims (bad status, header, tag).
    #[error("invalid field in entry: {0}")]
    Invalid(&'static str),
}

const MAGIC: &[u8; 4] = b"TRC\x00";
const FORMAT_VERSION: u8 = 5;
const KIND_ENTRY: u8 = 1;
const KIND_INDEX: u8 = 2;

/// Serialises a stored value into the versioned envelope.
pub(crate) fn encode(value: &Stored) -> Bytes {
    let mut w = BytesMut::with_capacity(match value {
        Stored::Entry(e) => 128 + e.content.len() + 32 * e.content.headers().len(),
        Stored::Index(i) => 32 + 64 * i.variants.len(),
    });
    w.put_slice(MAGIC);
    w.put_u8(FORMAT_VERSION);
    match value {
        Stored::Entry(e) => {
            w.put_u8(KIND_ENTRY);
            put_entry(&mut w, e);
        }
        Stored::Index(i) => {
            w.put_u8(KIND_INDEX);
            put_len(&mut w, i.variants.len());
            for v in &i.variants {
                w.put_u128(v.id);
                w.put_u8(method_tag(v.method));
                w.put_u8(auth_tag(v.auth));
                put_names(&mut w, v.names.iter());
                w.put_u64(v.kept_until);
            }
        }
    }
    w.freeze()
}

fn put_entry(w: &mut BytesMut, e: &Entry) {
    w.put_u8(method_tag(e.method));
    w.put_u8(auth_tag(e.auth));
    let vary = e.vary.pairs();
    put_names(w, vary.iter().map(|(name, _)| name));
    for (_, value) in vary {
        match value {
            None => w.put_u8(0),
            Some(v) => {
                w.put_u8(1);
                put_bytes(w, v);
            }
        }
    }
    w.put_u16(e.status.as_u16());
    put_names(w, e.content.shape().names().iter());
    w.put_u8(u8::from(e.content.headers().has_status_slot()));
    w.put_u64(e.stored_at);
    w.put_u64(e.fresh_until);
    w.put_u64(e.kept_until);
    match e.age {
        AgeRule::Resident { initial_age } => {
            w.put_u8(0);
            w.put_u64(initial_age);
        }
        AgeRule::Django { since } => {
            w.put_u8(1);
            w.put_i64(since);
        }
    }
    w.put_u8(u8::from(e.revalidate.every_use) | u8::from(e.revalidate.once_stale) << 1);
    w.put_u32(e.stale_while_revalidate);
    w.put_u32(e.stale_if_error);
    put_len(w, e.tags.len());
    for tag in &e.tags {
        put_bytes(w, tag.as_bytes());
    }
    // A decoded entry's content is a slice of the value, not a copy.
    let (buf, values_at, body_at) = e.content.raw();
    w.put_u32(values_at);
    w.put_u32(body_at);
    put_bytes(w, buf);
}

fn put_len(w: &mut BytesMut, len: usize) {
    // Lengths are bounded by max_body_size and header limits far below 4 GiB;
    // saturating keeps a pathological value decodable as "truncated" instead of wrong.
    w.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
}

fn put_bytes(w: &mut BytesMut, b: &[u8]) {
    put_len(w, b.len());
    w.put_slice(b);
}

fn put_names<'a>(w: &mut BytesMut, names: impl ExactSizeIterator<Item = &'a HeaderName>) {
    put_len(w, names.len());
    for n in names {
        put_bytes(w, n.as_str().as_bytes());
    }
}

fn method_tag(m: StoredMethod) -> u8 {
    match m {
        StoredMethod::Get => 1,
        StoredMethod::Head => 2,
    }
}

fn auth_tag(a: AuthScope) -> u8 {
    match a {
        AuthScope::Any => 1,
        AuthScope::Anonymous => 2,
        AuthScope::Authorized => 3,
    }
}

/// Reads a value written by [`encode`]; anything else is an error, never a panic.
pub(crate) fn decode(bytes: &Bytes) -> Result<Stored, DecodeError> {
    let mut r = Reader { buf: bytes.clone() };
    if r.take(MAGIC.len())? != MAGIC[..] {
        return Err(DecodeError::BadMagic);
    }
    let version = r.u8()?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let value = match r.u8()? {
        KIND_ENTRY => Stored::Entry(Arc::new(r.entry()?)),
        KIND_INDEX => {
            let n = r.len()?;
            let mut variants = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                variants.push(VariantRef {
                    id: r.u128()?,
                    method: r.method()?,
                    auth: r.auth()?,
                    names: r.names()?,
                    kept_until: r.u64()?,
                });
            }
            Stored::Index(Arc::new(Index { variants }))
        }
        _ => return Err(DecodeError::Invalid("value kind")),
    };
    if !r.buf.is_empty() {
        return Err(DecodeError::Truncated);
    }
    Ok(value)
}

struct Reader {
    buf: Bytes,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        Ok(self.buf.split_to(n))
    }

    /// Fixed-size fields are copied out and the buffer advanced: no new
    /// `Bytes` handle (a reference count up and down) per field.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        if self.buf.remaining() < N {
            return Err(DecodeError::Truncated);
        }
        self.buf.copy_to_slice(&mut out);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_be_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = u32::from_be_bytes(self.array()?);
        let n = usize::try_from(n).map_err(|_| DecodeError::Truncated)?;
        // A length can never exceed what is left: reject before allocating for it.
        if n > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.len()?;
        self.take(n)
    }

    /// A length-prefixed field, read in place (no `Bytes` handle).
    fn read<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R, DecodeError> {
        let n = self.len()?;
        let read = f(&self.buf[..n]);
        self.buf.advance(n);
        Ok(read)
    }

    fn name(&mut self) -> Result<HeaderName, DecodeError> {
        self.read(HeaderName::from_bytes)?
            .map_err(|_| DecodeError::Invalid("header name"))
    }

    fn names(&mut self) -> Result<Vec<HeaderName>, DecodeError> {
        let n = self.len()?;
        // Sized up front, so that the layout's boxed slice takes the vector's
        // block as it is (a collected `Result` starts at four and is shrunk).
        let mut names = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            names.push(self.name()?);
        }
        Ok(names)
    }

    fn method(&mut self) -> Result<StoredMethod, DecodeError> {
        match self.u8()? {
            1 => Ok(StoredMethod::Get),
            2 => Ok(StoredMethod::Head),
            _ => Err(DecodeError::Invalid("method")),
        }
    }

    fn auth(&mut self) -> Result<AuthScope, DecodeError> {
        match self.u8()? {
            1 => Ok(AuthScope::Any),
            2 => Ok(AuthScope::Anonymous),
            3 => Ok(AuthScope::Authorized),
            _ => Err(DecodeError::Invalid("auth scope")),
        }
    }

    fn entry(&mut self) -> Result<Entry, DecodeError> {
        let method = self.method()?;
        let auth = self.auth()?;
        let names = self.names()?;
        let mut vary = Vec::with_capacity(names.len());
        for name in names {
            let value = match self.u8()? {
                0 => None,
                1 => Some(self.bytes()?),
                _ => return Err(DecodeError::Invalid("vary value tag")),
            };
            vary.push((name, value));
        }
        let status = StatusCode::from_u16(u16::from_be_bytes(self.array()?))
            .map_err(|_| DecodeError::Invalid("status"))?;
        let header_names = self.names()?;
        if header_names.contains(&AGE) {
            // A layout's own `Age` is a slot, never a stored field.
            return Err(DecodeError::Invalid("header name"));
        }
        let status_slot = match self.u8()? {
            flag @ 0..=1 => flag == 1,
            _ => return Err(DecodeError::Invalid("status slot flag")),
        };
        let stored_at = self.u64()?;
        let fresh_until = self.u64()?;
        let kept_until = self.u64()?;
        let age = match self.u8()? {
            0 => AgeRule::Resident {
                initial_age: self.u64()?,
            },
            1 => AgeRule::Django {
                since: i64::from_be_bytes(self.array()?),
            },
            _ => return Err(DecodeError::Invalid("age rule tag")),
        };
        let revalidate = match self.u8()? {
            flags @ 0..=3 => Revalidate {
                every_use: flags & 1 != 0,
                once_stale: flags & 2 != 0,
            },
            _ => return Err(DecodeError::Invalid("revalidation flags")),
        };
        let stale_while_revalidate = u32::from_be_bytes(self.array()?);
        let stale_if_error = u32::from_be_bytes(self.array()?);
        let count = self.len()?;
        let mut tags = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let tag = self.read(|tag| std::str::from_utf8(tag).map(String::from))?;
            tags.push(tag.map_err(|_| DecodeError::Invalid("tag"))?);
        }
        let values_at = u32::from_be_bytes(self.array()?);
        let body_at = u32::from_be_bytes(self.array()?);
        let buf = self.bytes()?;
        let content = Content::from_raw(buf, values_at, body_at, header_names, status_slot)?;
        Ok(Entry {
            content,
            method,
            auth,
            vary: VaryValues::new(vary),
            status,
            stored_at,
            fresh_until,
            kept_until,
            age,
            revalidate,
            stale_while_revalidate,
            stale_if_error,
            tags: tags.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn sample() -> Entry {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        let body = Bytes::from_static(b"hello");
        Entry {
            content: Content::new(b"material", &headers, true, &[body]).unwrap(),
            method: StoredMethod::Head,
            auth: AuthScope::Authorized,
            vary: VaryValues::new(vec![
                (
                    HeaderName::from_static("accept"),
                    Some(Bytes::from_static(b"")),
                ),
                (HeaderName::from_static("x-a"), None),
            ]),
            status: StatusCode::NOT_FOUND,
            stored_at: 1,
            fresh_until: 2,
            kept_until: 3,
            age: AgeRule::django(-5, 1_468_749_600),
            revalidate: Revalidate {
                every_use: false,
                once_stale: true,
            },
            stale_while_revalidate: 5,
            stale_if_error: 6,
            tags: Box::new(["a".into(), "b\u{e9}".into()]),
        }
    }

    #[test]
    fn entry_round_trips_with_repeated_headers_and_absent_vs_empty_values() {
        let value = Stored::Entry(Arc::new(sample()));
        assert_eq!(decode(&encode(&value)).unwrap(), value);
        let resident = Stored::Entry(Arc::new(Entry {
            age: AgeRule::Resident { initial_age: 4 },
            ..sample()
        }));
        assert_eq!(decode(&encode(&resident)).unwrap(), resident);
    }

    /// Every stored response pays for one (in its `Arc` block), so its size
    /// is watched: see `benches/scale.rs`.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn entries_stay_small() {
        assert_eq!(std::mem::size_of::<Entry>(), 128);
    }

    #[test]
    fn index_round_trips() {
        let value = Stored::Index(Arc::new(Index {
            variants: vec![VariantRef {
                id: u128::MAX - 7,
                method: StoredMethod::Get,
                auth: AuthScope::Any,
                names: vec![HeaderName::from_static("accept-language")],
                kept_until: 20,
            }],
        }));
        assert_eq!(decode(&encode(&value)).unwrap(), value);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode(&Stored::Entry(Arc::new(sample())));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn foreign_and_future_values_are_rejected() {
        assert_eq!(
            decode(&Bytes::from_static(b"{\"json\":1}")),
            Err(DecodeError::BadMagic)
        );
        let mut future = encode(&Stored::Entry(Arc::new(sample()))).to_vec();
        future[4] = 99;
        assert_eq!(
            decode(&Bytes::from(future)),
            Err(DecodeError::UnsupportedVersion(99))
        );
        let mut trailing = encode(&Stored::Entry(Arc::new(sample()))).to_vec();
        trailing.push(0);
        assert_eq!(decode(&Bytes::from(trailing)), Err(DecodeError::Truncated));
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let bytes = encode(&Stored::Entry(Arc::new(sample()))).to_vec();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                let _ = decode(&Bytes::from(b));
            }
        }
    }
}
