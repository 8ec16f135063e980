//! Cache keys.
//!
//! A response is found in two steps, as RFC 9111 §4.1 describes: the **primary
//! key** names the URL (scheme, host, path and query, plus the layer's key prefix,
//! version and key-hook components), and a **variant id** picks one stored response
//! by the request header values its `Vary` names.
//!
//! Both are 128-bit xxh3 hashes, so keys have a fixed, short length whatever the
//! URL. They only address: the full key material and the Vary'd values are kept in
//! each entry and compared on every hit, so a collision can cause a miss but never
//! serve the wrong response.
//!
//! Key format on byte backends: `<key_prefix>:<version>:<32 hex digits>` for the
//! URL, with `:<32 hex digits>` appended for one variant of it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, HOST};
use http::request::Parts;
use http::{HeaderMap, HeaderName};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::entry::{AuthScope, StoredMethod, VaryValues};

/// Key components added by a [key hook](crate::CacheLayerBuilder::key_hook).
///
/// Each pushed component is length-delimited, so `["ab", "c"]` and `["a", "bc"]`
/// are different keys.
#[derive(Debug)]
pub struct KeyParts<'a> {
    material: &'a mut Material,
}

impl KeyParts<'_> {
    /// Adds one component (a locale, a tenant id, a trusted `X-Forwarded-Proto`…).
    pub fn push(&mut self, component: impl AsRef<[u8]>) {
        put_component(self.material, component.as_ref());
    }
}

/// A closure that adds key components from the request (Django's i18n / time-zone
/// key suffix, generalised).
pub(crate) type KeyHook = Arc<dyn Fn(&Parts, &mut KeyParts<'_>) + Send + Sync>;

/// The URL-level key of one request.
#[derive(Debug, Clone)]
pub(crate) struct PrimaryKey {
    pub(crate) material: Material,
    pub(crate) hash: u128,
}

/// Bytes of key material kept in place before they move to the heap: a URL
/// with its host, path and a short query fits.
const INLINE: usize = 176;

/// A request's key material, built on every request and, on a hit, only hashed
/// and compared: kept in place up to [`INLINE`] bytes (its heap buffer's
/// allocation and free were a twentieth of the layer's cost of a hit), on the
/// heap past that.
#[derive(Clone)]
pub(crate) enum Material {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Material {
    fn new() -> Self {
        Self::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }

    #[inline]
    fn extend_from_slice(&mut self, data: &[u8]) {
        if let Self::Inline { len, bytes } = self {
            let start = usize::from(*len);
            let end = start + data.len();
            if let (Some(dest), Ok(end)) = (bytes.get_mut(start..end), u8::try_from(end)) {
                dest.copy_from_slice(data);
                *len = end;
                return;
            }
        }
        self.spill(data);
    }

    /// Moves the material to the heap (once) and adds `data`.
    #[cold]
    fn spill(&mut self, data: &[u8]) {
        match self {
            Self::Inline { len, bytes } => {
                let start = usize::from(*len);
                let mut heap = Vec::with_capacity(2 * (start + data.len()));
                heap.extend_from_slice(&bytes[..start]);
                heap.extend_from_slice(data);
                *self = Self::Heap(heap);
            }
            Self::Heap(heap) => heap.extend_from_slice(data),
        }
    }
}

impl std::ops::Deref for Material {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(heap) => heap,
        }
    }
}

impl std::ops::DerefMut for Material {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Self::Inline { len, bytes } => &mut bytes[..usize::from(*len)],
            Self::Heap(heap) => heap,
        }
    }
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Material").field(&&self[..]).finish()
    }
}

impl PrimaryKey {
    /// Builds the key: prefix, version, scheme, lower-cased host, path, query (an
    /// empty query is no query), then the hook's components.
    pub(crate) fn new(prefix: &str, version: u32, parts: &Parts, hook: Option<&KeyHook>) -> Self {
        let uri = &parts.uri;
        let mut material = Material::new();
        put_component(&mut material, prefix.as_bytes());
        put_len(
            &mut material,
            usize::try_from(version).unwrap_or(usize::MAX),
        );
        put_component(&mut material, uri.scheme_str().unwrap_or("http").as_bytes());
        let host = match uri.authority() {
            Some(a) => a.as_str().as_bytes(),
            // A pass over the fields, where `Host` comes first or soon, is
            // cheaper than hashing the name for `get`.
            None => parts
                .headers
                .iter()
                .find(|(name, _)| **name == HOST)
                .map_or(&b""[..], |(_, h)| h.as_bytes()),
        };
        put_component(&mut material, host);
        let lowered = material.len() - host.len();
        material[lowered..].make_ascii_lowercase();
        put_component(&mut material, uri.path().as_bytes());
        put_component(&mut material, uri.query().unwrap_or("").as_bytes());
        if let Some(hook) = hook {
            hook(
                parts,
                &mut KeyParts {
                    material: &mut material,
                },
            );
        }
        let hash = xxh3_128(&material);
        Self { material, hash }
    }
}

#[inline]
fn put_component(material: &mut Material, component: &[u8]) {
    put_len(material, component.len());
    material.extend_from_slice(component);
}

/// A length as a LEB128 varint: one byte below 128 (almost every part of a
/// URL), where a fixed four were a tenth of an entry's bookkeeping. Still
/// prefix-free, so components stay delimited.
#[inline]
fn put_len(material: &mut Material, len: usize) {
    match u8::try_from(len) {
        Ok(byte @ 0..0x80) => material.extend_from_slice(&[byte]),
        _ => put_long_len(material, len),
    }
}

#[cold]
fn put_long_len(material: &mut Material, len: usize) {
    let mut bytes = [0_u8; 10];
    let mut rest = len;
    let mut n = 0;
    while rest >= 0x80 {
        bytes[n] = u8::try_from(rest & 0x7f).unwrap_or(0) | 0x80;
        rest >>= 7;
        n += 1;
    }
    bytes[n] = u8::try_from(rest).unwrap_or(0);
    material.extend_from_slice(&bytes[..=n]);
}

/// `authority` + `path` as absolute URIs under `http` and `https`: an HTTP/1.1
/// request carries no scheme and is keyed `http`, an HTTP/2 one by its own, so a
/// purge must cover both (over-invalidating is safe, missing is not). Empty when
/// they do not form a URI.
pub(crate) fn under_both_schemes(
    authority: &str,
    path: &http::uri::PathAndQuery,
) -> Vec<http::Uri> {
    ["http", "https"]
        .into_iter()
        .filter_map(|scheme| {
            http::Uri::builder()
                .scheme(scheme)
                .authority(authority)
                .path_and_query(path.clone())
                .build()
                .ok()
        })
        .collect()
}

/// Where a value lives: a URL's slot, or one variant of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreKey {
    pub(crate) primary: u128,
    pub(crate) variant: Option<u128>,
}

impl StoreKey {
    pub(crate) fn url(primary: u128) -> Self {
        Self {
            primary,
            variant: None,
        }
    }

    pub(crate) fn variant(primary: u128, variant: u128) -> Self {
        Self {
            primary,
            variant: Some(variant),
        }
    }

    /// The key in the in-memory store.
    pub(crate) fn hash(&self) -> u128 {
        match self.variant {
            None => self.primary,
            Some(v) => {
                let mut both = [0u8; 32];
                both[..16].copy_from_slice(&self.primary.to_be_bytes());
                both[16..].copy_from_slice(&v.to_be_bytes());
                xxh3_128(&both)
            }
        }
    }

    /// The key on a byte backend.
    pub(crate) fn text(&self, prefix: &str, version: u32) -> String {
        let mut s = String::with_capacity(prefix.len() + 80);
        // Writing to a String cannot fail.
        let _ = write!(s, "{prefix}:{version}:{:032x}", self.primary);
        if let Some(v) = self.variant {
            let _ = write!(s, ":{v:032x}");
        }
        s
    }
}

/// All of a request's lines for `name`, combined as Django (and the ASGI/WSGI
/// servers) combine them: joined with `,`, or `; ` for `Cookie`. `None` when the
/// header is absent, which is not the same as present and empty.
pub(crate) fn combined_value<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Option<Cow<'h, [u8]>> {
    let mut lines = headers.get_all(name).iter();
    let first = lines.next()?;
    let Some(second) = lines.next() else {
        return Some(Cow::Borrowed(first.as_bytes()));
    };
    let sep: &[u8] = if name == COOKIE { b"; " } else { b"," };
    let mut joined = first.as_bytes().to_vec();
    for line in std::iter::once(second).chain(lines) {
        joined.extend_from_slice(sep);
        joined.extend_from_slice(line.as_bytes());
    }
    Some(Cow::Owned(joined))
}

/// Whether a request carries a non-empty `Authorization` (an empty one is anonymous,
/// as in Django).
pub(crate) fn is_authorized(headers: &HeaderMap) -> bool {
    // A pass over the names (cheap for standard headers) before the hashed lookup.
    if !headers.keys().any(|name| name == AUTHORIZATION) {
        return false;
    }
    headers
        .get_all(AUTHORIZATION)
        .iter()
        .any(|v| !v.as_bytes().iter().all(u8::is_ascii_whitespace))
}

/// Hashes a variant's identity: method, auth scope and Vary'd values.
struct VariantHasher(Xxh3);

impl VariantHasher {
    fn new(method: StoredMethod, auth: AuthScope) -> Self {
        let mut h = Xxh3::new();
        h.update(&[method as u8, auth as u8]);
        Self(h)
    }

    fn value(&mut self, name: &HeaderName, value: Option<&[u8]>) {
        let name = name.as_str().as_bytes();
        self.0.update(&(name.len() as u64).to_be_bytes());
        self.0.update(name);
        match value {
            None => self.0.update(&[0]),
            Some(v) => {
                self.0.update(&[1]);
                self.0.update(&(v.len() as u64).to_be_bytes());
                self.0.update(v);
            }
        }
    }

    fn finish(self) -> u128 {
        self.0.digest128()
    }
}

/// The variant id a request would have under a stored variant's names.
pub(crate) fn request_variant_id(
    method: StoredMethod,
    auth: AuthScope,
    names: &[HeaderName],
    headers: &HeaderMap,
) -> u128 {
    let mut h = VariantHasher::new(method, auth);
    for name in names {
        h.value(name, combined_value(headers, name).as_deref());
    }
    h.finish()
}

impl VaryValues {
    /// The values of `names` in the request that produced a response.
    pub(crate) fn capture(names: Vec<HeaderName>, headers: &HeaderMap) -> Self {
        Self::new(
            names
                .into_iter()
                .map(|n| {
                    let value = combined_value(headers, &n).map(|v| Bytes::copy_from_slice(&v));
                    (n, value)
                })
                .collect(),
        )
    }

    /// Whether a request carries exactly these values.
    pub(crate) fn matches(&self, headers: &HeaderMap) -> bool {
        self.pairs()
            .iter()
            .all(|(n, v)| combined_value(headers, n).as_deref() == v.as_deref())
    }

    /// The variant id of a stored response (equal to [`request_variant_id`] for the
    /// request that produced it).
    pub(crate) fn variant_id(&self, method: StoredMethod, auth: AuthScope) -> u128 {
        let mut h = VariantHasher::new(method, auth);
        for (name, value) in self.pairs() {
            h.value(name, value.as_deref());
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(uri: &str, host: Option<&str>) -> Parts {
        let mut b = Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn key(uri: &str, host: Option<&str>) -> u128 {
        PrimaryKey::new("", 1, &parts(uri, host), None).hash
    }

    #[test]
    fn host_case_is_normalised_but_query_order_is_not() {
        assert_eq!(
            key("/p", Some("Example.COM")),
            key("/p", Some("example.com"))
        );
        assert_ne!(key("/p?a=1&b=2", Some("h")), key("/p?b=2&a=1", Some("h")));
        assert_eq!(key("/p?", Some("h")), key("/p", Some("h")));
    }

    #[test]
    fn material_past_the_inline_size_moves_to_the_heap_whole() {
        let short = PrimaryKey::new("", 1, &parts("/p", Some("H")), None);
        assert!(matches!(short.material, Material::Inline { .. }));
        let path = format!("/{}", "a".repeat(INLINE));
        let long = PrimaryKey::new("", 1, &parts(&path, Some("H")), None);
        assert!(matches!(long.material, Material::Heap(_)));
        // Built in place or on the heap, the same bytes in the same order:
        // the prefix (empty), the version, the scheme, the host, the path (177
        // bytes: a two-byte length), the query (empty).
        let mut expected = vec![0, 1, 4];
        expected.extend_from_slice(b"http");
        expected.extend_from_slice(&[1, b'h', 0xb1, 0x01]);
        expected.extend_from_slice(path.as_bytes());
        expected.push(0);
        assert_eq!(&long.material[..], &expected[..]);
        assert_eq!(long.hash, xxh3_128(&expected));
        let other = format!("/{}b", "a".repeat(INLINE - 1));
        assert_ne!(key(&path, Some("h")), key(&other, Some("h")));
    }

    #[test]
    fn every_length_of_path_and_query_keeps_the_layout_and_lowers_only_the_host() {
        fn varint(out: &mut Vec<u8>, mut n: usize) {
            while n >= 0x80 {
                out.push(u8::try_from(n & 0x7f).unwrap() | 0x80);
                n >>= 7;
            }
            out.push(u8::try_from(n).unwrap());
        }
        // Around the one-byte lengths' end, past the in-place size, and far past
        // it; only the host is lowered (the prefix keeps its case).
        for len in [0, 1, 60, 126, 127, 128, 129, 150, 175, 176, 300, 20_000] {
            let path = format!("/{}", "P".repeat(len));
            let query = "Q".repeat(len);
            for (uri, query) in [(path.clone(), ""), (format!("{path}?{query}"), &query[..])] {
                let got = PrimaryKey::new("PRE", 300, &parts(&uri, Some("Ex.COM")), None);
                let mut expected = vec![3];
                expected.extend_from_slice(b"PRE");
                varint(&mut expected, 300);
                expected.push(4);
                expected.extend_from_slice(b"http");
                expected.push(6);
                expected.extend_from_slice(b"ex.com");
                for part in [&path[..], query] {
                    varint(&mut expected, part.len());
                    expected.extend_from_slice(part.as_bytes());
                }
                assert_eq!(&got.material[..], &expected[..], "{len}");
                assert_eq!(got.hash, xxh3_128(&expected));
            }
        }
    }

    #[test]
    fn prefix_version_and_hook_components_are_delimited() {
        let p = parts("/p", Some("h"));
        assert_ne!(
            PrimaryKey::new("a", 1, &p, None).hash,
            PrimaryKey::new("b", 1, &p, None).hash
        );
        assert_ne!(
            PrimaryKey::new("a", 1, &p, None).hash,
            PrimaryKey::new("a", 2, &p, None).hash
        );
        let split_ab: KeyHook = Arc::new(|_, k| {
            k.push("ab");
            k.push("c");
        });
        let split_bc: KeyHook = Arc::new(|_, k| {
            k.push("a");
            k.push("bc");
        });
        assert_ne!(
            PrimaryKey::new("", 1, &p, Some(&split_ab)).hash,
            PrimaryKey::new("", 1, &p, Some(&split_bc)).hash
        );
    }

    #[test]
    fn repeated_headers_combine_and_cookie_uses_semicolons() {
        let mut h = HeaderMap::new();
        h.append("x-a", "1".parse().unwrap());
        h.append("x-a", "2".parse().unwrap());
        h.append(COOKIE, "a=1".parse().unwrap());
        h.append(COOKIE, "b=2".parse().unwrap());
        assert_eq!(
            combined_value(&h, &HeaderName::from_static("x-a")).as_deref(),
            Some(&b"1,2"[..])
        );
        assert_eq!(
            combined_value(&h, &COOKIE).as_deref(),
            Some(&b"a=1; b=2"[..])
        );
        assert_eq!(combined_value(&h, &HeaderName::from_static("x-b")), None);
    }

    #[test]
    fn stored_and_request_variant_ids_agree_and_absent_differs_from_empty() {
        let names = vec![HeaderName::from_static("x-a")];
        let mut empty = HeaderMap::new();
        empty.insert("x-a", "".parse().unwrap());
        let absent = HeaderMap::new();
        let stored = VaryValues::capture(names.clone(), &empty);
        let id = stored.variant_id(StoredMethod::Get, AuthScope::Any);
        assert_eq!(
            id,
            request_variant_id(StoredMethod::Get, AuthScope::Any, &names, &empty)
        );
        assert_ne!(
            id,
            request_variant_id(StoredMethod::Get, AuthScope::Any, &names, &absent)
        );
        assert!(stored.matches(&empty));
        assert!(!stored.matches(&absent));
    }

    #[test]
    fn text_keys_carry_prefix_and_version() {
        let k = StoreKey::variant(1, 2).text("site", 3);
        assert_eq!(
            k,
            "site:3:00000000000000000000000000000001:00000000000000000000000000000002"
        );
    }
}
