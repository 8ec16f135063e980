//! The response store: finds and keeps stored responses and their variants on top
//! of a backend.
//!
//! Layout, the same on every backend: the URL's slot ([`StoreKey::url`]) holds the
//! stored response itself while the URL has one variant (one round trip per hit),
//! and an [`Index`] of variants once it has several, each variant then under its
//! own key (two round trips). The in-memory backend keeps these values decoded;
//! byte backends get the envelope of [`crate::entry`].
//!
//! Every backend failure is logged and treated as a miss: the cache can make a
//! request slower, never fail it.

mod health;
pub(crate) mod inflight;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_128;

use crate::backend::{Backend, BackendError, MemoryBackend};
use crate::entry::{self, Entry, Index, Stored, StoredMethod, VariantRef};
use crate::key::{PrimaryKey, StoreKey, request_variant_id};

/// The request-side facts a lookup needs.
pub(crate) struct RequestFacts<'a> {
    pub(crate) method: StoredMethod,
    pub(crate) authorized: bool,
    pub(crate) headers: &'a HeaderMap,
}

/// The outcome of a lookup (freshness is the caller's call).
pub(crate) enum Lookup {
    Found(Arc<Entry>),
    /// Nothing stored for the URL.
    UriMiss,
    /// Something is stored for the URL, but no variant fits this request.
    VaryMiss,
    /// The backend could not be read (an error or a timeout): nothing known.
    Unavailable,
}

enum Backing {
    Memory(MemoryBackend),
    Bytes { backend: Arc<dyn Backend> },
}

/// Stored responses over one backend.
pub(crate) struct ResponseStore {
    backing: Backing,
    /// Key prefix and version, as in every key this store writes.
    prefix: String,
    version: u32,
    max_variants: usize,
    health: health::Health,
}

impl std::fmt::Debug for ResponseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend: &dyn std::fmt::Debug = match &self.backing {
            Backing::Memory(m) => m,
            Backing::Bytes { backend, .. } => backend,
        };
        f.debug_struct("ResponseStore")
            .field("backend", backend)
            .field("max_variants", &self.max_variants)
            .finish()
    }
}

impl ResponseStore {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        prefix: &str,
        version: u32,
        max_variants: usize,
    ) -> Self {
        let backing = match backend.as_memory() {
            Some(memory) => Backing::Memory(memory.clone()),
            None => Backing::Bytes { backend },
        };
        Self {
            backing,
            prefix: prefix.to_owned(),
            version,
            max_variants: max_variants.max(1),
            health: health::Health::default(),
        }
    }

    async fn get(&self, key: StoreKey) -> Option<Stored> {
        self.fetch(key).await.ok().flatten()
    }

    /// Reads a value; `Err` when the backend failed (already counted and logged).
    async fn fetch(&self, key: StoreKey) -> Result<Option<Stored>, Unreadable> {
        match &self.backing {
            Backing::Memory(m) => Ok(m.get_stored(key.hash())),
            Backing::Bytes { backend } => {
                let text = key.text(&self.prefix, self.version);
                let bytes = match backend.get(&text).await {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => return Ok(None),
                    Err(error) => {
                        self.health.record("get", &text, &error);
                        return Err(Unreadable);
                    }
                };
                match entry::decode(&bytes) {
                    Ok(value) => Ok(Some(value)),
                    Err(error) => {
                        tracing::warn!(%error, key = %text, "unreadable cache value; removing it");
                        if let Err(error) = backend.delete(&text).await {
                            self.health.record("delete", &text, &error);
                        }
                        Ok(None)
                    }
                }
            }
        }
    }

    async fn put(&self, key: StoreKey, value: Stored, ttl: Duration) {
        match &self.backing {
            Backing::Memory(m) => m.put_stored(key.hash(), value, ttl),
            Backing::Bytes { backend } => {
                let text = key.text(&self.prefix, self.version);
                if let Err(error) = backend.set(&text, entry::encode(&value), Some(ttl)).await {
                    self.health.record("set", &text, &error);
                }
            }
        }
    }

    async fn delete(&self, key: StoreKey) {
        match &self.backing {
            Backing::Memory(m) => m.delete_stored(key.hash()),
            Backing::Bytes { backend } => {
                let text = key.text(&self.prefix, self.version);
                if let Err(error) = backend.delete(&text).await {
                    self.health.record("delete", &text, &error);
                }
            }
        }
    }

    /// Backend failures so far: `(errors, timeouts)`.
    pub(crate) fn failures(&self) -> (u64, u64) {
        (self.health.errors(), self.health.timeouts())
    }

    /// Finds the stored response for a request without waiting, when the backend
    /// is in-process; `None` for a backend that needs a round trip.
    pub(crate) fn lookup_now(&self, key: &PrimaryKey, req: &RequestFacts<'_>) -> Option<Lookup> {
        let Backing::Memory(m) = &self.backing else {
            return None;
        };
        Some(
            match url_slot(m.get_stored(StoreKey::url(key.hash).hash()), key, req) {
                UrlSlot::Settled(lookup) => lookup,
                UrlSlot::Variants(index) => candidates(&index, req)
                    .find_map(|id| {
                        variant(
                            m.get_stored(StoreKey::variant(key.hash, id).hash()),
                            key,
                            req,
                        )
                    })
                    .map_or(Lookup::VaryMiss, Lookup::Found),
            },
        )
    }

    /// Finds the stored response for a request, if any variant fits it.
    pub(crate) async fn lookup(&self, key: &PrimaryKey, req: &RequestFacts<'_>) -> Lookup {
        let Ok(found) = self.fetch(StoreKey::url(key.hash)).await else {
            return Lookup::Unavailable;
        };
        let index = match url_slot(found, key, req) {
            UrlSlot::Settled(lookup) => return lookup,
            UrlSlot::Variants(index) => index,
        };
        for id in candidates(&index, req) {
            let found = self.get(StoreKey::variant(key.hash, id)).await;
            if let Some(entry) = variant(found, key, req) {
                return Lookup::Found(entry);
            }
        }
        Lookup::VaryMiss
    }

    /// Removes every stored variant of a URL (GET and HEAD), by the hash of its
    /// primary key; `true` if anything was stored for it.
    pub(crate) async fn purge(&self, primary: u128) -> bool {
        let url = StoreKey::url(primary);
        let found = self.get(url).await;
        if let Some(Stored::Index(index)) = &found {
            for v in &index.variants {
                self.delete(StoreKey::variant(primary, v.id)).await;
            }
        }
        self.delete(url).await;
        found.is_some()
    }

    /// Purges every URL stored with `tag`; how many URLs that was. In memory a
    /// scan of the entries (eviction cannot lose it an index); on other
    /// backends the tag's set of URL hashes, taken atomically.
    pub(crate) async fn purge_tag(&self, tag: &str) -> usize {
        if let Backing::Memory(m) = &self.backing {
            let removed = m.remove_stored_where(|entry| entry.tags.iter().any(|t| t == tag));
            let urls: HashSet<&[u8]> = removed.iter().map(|e| e.content.material()).collect();
            return urls.len();
        }
        let key = self.tag_key(tag);
        let members = match self.backend().set_take(&key).await {
            Ok(members) => members,
            Err(error) => {
                self.health.record("set_take", &key, &error);
                return 0;
            }
        };
        let mut purged = 0;
        for member in members {
            let Ok(hash) = <[u8; 16]>::try_from(&member[..]) else {
                continue;
            };
            if self.purge(u128::from_be_bytes(hash)).await {
                purged += 1;
            }
        }
        purged
    }

    /// Empties the backend.
    pub(crate) async fn clear(&self) -> Result<(), BackendError> {
        self.backend().clear().await
    }

    /// The backend through the trait (the memory backend too: the tag index
    /// uses its byte values).
    fn backend(&self) -> &dyn Backend {
        match &self.backing {
            Backing::Memory(m) => m,
            Backing::Bytes { backend, .. } => backend.as_ref(),
        }
    }

    /// Where the URLs tagged `tag` are listed: `<prefix>:<version>:tag:<32 hex>`.
    fn tag_key(&self, tag: &str) -> String {
        format!(
            "{}:{}:tag:{:032x}",
            self.prefix,
            self.version,
            xxh3_128(tag.as_bytes())
        )
    }

    /// Lists `primary` under each tag, for as long as the entry is kept;
    /// `false` if any tag could not be written (the caller then removes the
    /// entry: an entry its tags do not list could never be purged by them).
    pub(crate) async fn tag(&self, primary: u128, tags: &[String], ttl: Duration) -> bool {
        if matches!(self.backing, Backing::Memory(_)) {
            // Entries carry their tags; `purge_tag` scans them.
            return true;
        }
        for tag in tags {
            let key = self.tag_key(tag);
            let member = Bytes::copy_from_slice(&primary.to_be_bytes());
            if let Err(error) = self.backend().set_add(&key, member, ttl).await {
                // The entry goes anyway: no need to wait on the other tags.
                self.health.record("set_add", &key, &error);
                return false;
            }
        }
        true
    }

    /// Stores a response as a variant of its URL, replacing the variant it
    /// supersedes and evicting the oldest beyond `max_variants`.
    ///
    /// Concurrent inserts for one URL race on the index; the loser's variant is
    /// simply not found later (a miss), never served wrongly.
    pub(crate) async fn insert(&self, key: &PrimaryKey, entry: Entry, now: u64) {
        let url = StoreKey::url(key.hash);
        let new = variant_ref(&entry);
        // The same variant stored by a HEAD is superseded by a GET (which serves both).
        let head_twin = (entry.method == StoredMethod::Get)
            .then(|| entry.vary.variant_id(StoredMethod::Head, entry.auth));
        let supersedes = |id: u128| id == new.id || Some(id) == head_twin;
        let entry = Arc::new(entry);
        // Survivors, oldest first; `Some` marks the URL slot's former sole entry,
        // which moves to its own variant key if it survives. `dropped`: variant
        // keys of the index that no longer belong to it.
        let mut dropped = Vec::new();
        let mut kept: Vec<(VariantRef, Option<Arc<Entry>>)> = match self.get(url).await {
            Some(Stored::Entry(old))
                if old.content.material() == &key.material[..]
                    && old.kept_until > now
                    && !supersedes(variant_ref(&old).id) =>
            {
                vec![(variant_ref(&old), Some(old))]
            }
            Some(Stored::Index(index)) => {
                let mut kept = Vec::with_capacity(index.variants.len() + 1);
                for v in index.variants.iter() {
                    if v.kept_until > now && !supersedes(v.id) {
                        kept.push((v.clone(), None));
                    } else {
                        dropped.push(v.id);
                    }
                }
                kept
            }
            _ => Vec::new(),
        };
        while kept.len() >= self.max_variants {
            let (oldest, migrating) = kept.remove(0);
            if migrating.is_none() {
                dropped.push(oldest.id);
            }
        }
        if kept.is_empty() {
            // Back to one variant: it lives in the URL slot, no variant key remains.
            for id in dropped {
                self.delete(StoreKey::variant(key.hash, id)).await;
            }
            self.put(url, Stored::Entry(entry), ttl(new.kept_until, now))
                .await;
            return;
        }
        // The new variant's key is about to be written anyway.
        for id in dropped.into_iter().filter(|id| *id != new.id) {
            self.delete(StoreKey::variant(key.hash, id)).await;
        }
        let mut variants = Vec::with_capacity(kept.len() + 1);
        for (v, migrating) in kept {
            if let Some(old) = migrating {
                let old_key = StoreKey::variant(key.hash, v.id);
                self.put(old_key, Stored::Entry(old), ttl(v.kept_until, now))
                    .await;
            }
            variants.push(v);
        }
        let new_key = StoreKey::variant(key.hash, new.id);
        self.put(new_key, Stored::Entry(entry), ttl(new.kept_until, now))
            .await;
        variants.push(new);
        let until = variants.iter().map(|v| v.kept_until).max().unwrap_or(now);
        self.put(
            url,
            Stored::Index(Arc::new(Index { variants })),
            ttl(until, now),
        )
        .await;
    }
}

/// A backend read failed.
struct Unreadable;

/// What a URL's slot says about a request.
enum UrlSlot {
    Settled(Lookup),
    /// Several variants: look further, in [`candidates`] order.
    Variants(Arc<Index>),
}

fn url_slot(found: Option<Stored>, key: &PrimaryKey, req: &RequestFacts<'_>) -> UrlSlot {
    UrlSlot::Settled(match found {
        None => Lookup::UriMiss,
        Some(Stored::Entry(e)) if e.content.material() != &key.material[..] => Lookup::UriMiss,
        Some(Stored::Entry(e)) if serves(&e, req) => Lookup::Found(e),
        Some(Stored::Entry(_)) => Lookup::VaryMiss,
        Some(Stored::Index(index)) => return UrlSlot::Variants(index),
    })
}

/// The ids of the variants that fit a request, best first: a HEAD prefers a stored
/// GET, a GET only ever takes a stored GET, and among variants that fit, the most
/// recent wins (RFC 9111 §4.1).
fn candidates<'i>(index: &'i Index, req: &'i RequestFacts<'_>) -> impl Iterator<Item = u128> + 'i {
    let methods: &[StoredMethod] = match req.method {
        StoredMethod::Get => &[StoredMethod::Get],
        StoredMethod::Head => &[StoredMethod::Get, StoredMethod::Head],
    };
    methods.iter().flat_map(move |&method| {
        index
            .variants
            .iter()
            .rev()
            .filter(move |v| {
                v.method == method
                    && v.auth.admits(req.authorized)
                    && request_variant_id(v.method, v.auth, &v.names, req.headers) == v.id
            })
            .map(|v| v.id)
    })
}

/// The variant found under a candidate's key, if it really is this request's.
fn variant(found: Option<Stored>, key: &PrimaryKey, req: &RequestFacts<'_>) -> Option<Arc<Entry>> {
    match found {
        Some(Stored::Entry(e)) if e.content.material() == &key.material[..] && serves(&e, req) => {
            Some(e)
        }
        _ => None,
    }
}

/// Whether a stored response may answer this request (method, scope, Vary'd values).
fn serves(e: &Entry, req: &RequestFacts<'_>) -> bool {
    (e.method == StoredMethod::Get || req.method == StoredMethod::Head)
        && e.auth.admits(req.authorized)
        && e.vary.matches(req.headers)
}

fn variant_ref(e: &Entry) -> VariantRef {
    VariantRef {
        id: e.vary.variant_id(e.method, e.auth),
        method: e.method,
        auth: e.auth,
        names: e
            .vary
            .pairs()
            .iter()
            .map(|(name, _)| name.clone())
            .collect(),
        kept_until: e.kept_until,
    }
}

/// Backend time to live for something kept until `until` (at least 1 ms).
fn ttl(until: u64, now: u64) -> Duration {
    Duration::from_millis(until.saturating_sub(now).max(1))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{HeaderName, HeaderValue, Request, StatusCode};

    use super::*;
    use crate::backend::{BackendError, BoxFuture, DummyBackend, Ttl};
    use crate::entry::{AgeRule, AuthScope, Content, Revalidate, VaryValues};

    /// The memory backend seen only through its byte interface, as a remote
    /// backend is: every value goes through the envelope. Counts its `get`s
    /// (round trips, on a remote backend).
    #[derive(Debug, Clone)]
    struct BytesOnly(MemoryBackend, Arc<std::sync::atomic::AtomicUsize>);

    impl BytesOnly {
        fn new(memory: MemoryBackend) -> Self {
            Self(memory, Arc::default())
        }

        fn gets(&self) -> usize {
            self.1.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl Backend for BytesOnly {
        fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, BackendError>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.get(key)
        }
        fn set<'a>(
            &'a self,
            key: &'a str,
            value: Bytes,
            ttl: Ttl,
        ) -> BoxFuture<'a, Result<(), BackendError>> {
            self.0.set(key, value, ttl)
        }
        fn add<'a>(
            &'a self,
            key: &'a str,
            value: Bytes,
            ttl: Ttl,
        ) -> BoxFuture<'a, Result<bool, BackendError>> {
            self.0.add(key, value, ttl)
        }
        fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, BackendError>> {
            self.0.delete(key)
        }
        fn touch<'a>(
            &'a self,
            key: &'a str,
            ttl: Ttl,
        ) -> BoxFuture<'a, Result<bool, BackendError>> {
            self.0.touch(key, ttl)
        }
        fn incr<'a>(
            &'a self,
            key: &'a str,
            delta: i64,
        ) -> BoxFuture<'a, Result<i64, BackendError>> {
            self.0.incr(key, delta)
        }
        fn clear(&self) -> BoxFuture<'_, Result<(), BackendError>> {
            self.0.clear()
        }
    }

    const NOW: u64 = 1_000_000;

    fn primary(uri: &str) -> PrimaryKey {
        let parts = Request::get(uri).body(()).unwrap().into_parts().0;
        PrimaryKey::new("p", 1, &parts, None)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect()
    }

    fn entry(
        key: &PrimaryKey,
        vary: &[&'static str],
        req: &HeaderMap,
        body: &'static str,
    ) -> Entry {
        stored_as(&key.material, vary, req, body)
    }

    fn stored_as(
        material: &[u8],
        vary: &[&'static str],
        req: &HeaderMap,
        body: &'static str,
    ) -> Entry {
        let names = vary.iter().map(|n| HeaderName::from_static(n)).collect();
        let body = Bytes::from_static(body.as_bytes());
        Entry {
            content: Content::new(material, &HeaderMap::new(), true, &[body]).unwrap(),
            method: StoredMethod::Get,
            auth: AuthScope::Anonymous,
            vary: VaryValues::capture(names, req),
            status: StatusCode::OK,
            stored_at: NOW,
            fresh_until: NOW + 60_000,
            kept_until: NOW + 60_000,
            age: AgeRule::Resident { initial_age: 0 },
            revalidate: Revalidate::default(),
            stale_while_revalidate: 0,
            stale_if_error: 0,
            tags: Box::default(),
        }
    }

    async fn found(store: &ResponseStore, key: &PrimaryKey, req: &HeaderMap) -> Option<Bytes> {
        let facts = RequestFacts {
            method: StoredMethod::Get,
            authorized: false,
            headers: req,
        };
        match store.lookup(key, &facts).await {
            Lookup::Found(e) => Some(e.content.body()),
            _ => None,
        }
    }

    fn stores() -> Vec<(ResponseStore, MemoryBackend)> {
        let memory = MemoryBackend::new();
        let bytes = MemoryBackend::new();
        vec![
            (
                ResponseStore::new(Arc::new(memory.clone()), "p", 1, 4),
                memory,
            ),
            (
                ResponseStore::new(Arc::new(BytesOnly::new(bytes.clone())), "p", 1, 4),
                bytes,
            ),
        ]
    }

    #[tokio::test]
    async fn variants_coexist_on_both_paths() {
        for (store, _) in stores() {
            let key = primary("http://h/p");
            let en = headers(&[("accept-language", "en")]);
            let de = headers(&[("accept-language", "de")]);
            store
                .insert(&key, entry(&key, &["accept-language"], &en, "en"), NOW)
                .await;
            store
                .insert(&key, entry(&key, &["accept-language"], &de, "de"), NOW)
                .await;
            assert_eq!(found(&store, &key, &en).await.as_deref(), Some(&b"en"[..]));
            assert_eq!(found(&store, &key, &de).await.as_deref(), Some(&b"de"[..]));
            assert_eq!(found(&store, &key, &HeaderMap::new()).await, None);
        }
    }

    #[tokio::test]
    async fn variant_cap_evicts_the_oldest_and_its_key() {
        for (store, backend) in stores() {
            let key = primary("http://h/p");
            let values = ["a", "b", "c", "d", "e", "f"];
            for v in values {
                let req = headers(&[("x-v", v)]);
                store
                    .insert(&key, entry(&key, &["x-v"], &req, v), NOW)
                    .await;
            }
            for (i, v) in values.iter().enumerate() {
                let hit = found(&store, &key, &headers(&[("x-v", v)])).await;
                assert_eq!(hit.is_some(), i >= 2, "variant {v}");
            }
            // Four variants and one index: evicted variants leave nothing behind.
            assert_eq!(backend.entry_count(), 5);
        }
    }

    #[tokio::test]
    async fn corrupt_values_are_misses_and_are_removed() {
        let backend = MemoryBackend::new();
        let store = ResponseStore::new(Arc::new(BytesOnly::new(backend.clone())), "p", 1, 4);
        let key = primary("http://h/p");
        let text = StoreKey::url(key.hash).text("p", 1);
        backend
            .set(&text, Bytes::from_static(b"TRC\0\x01\x01garbage"), None)
            .await
            .unwrap();
        assert_eq!(found(&store, &key, &HeaderMap::new()).await, None);
        assert_eq!(backend.get(&text).await.unwrap(), None);
    }

    /// A hit costs one backend round trip for a URL with one variant, and two
    /// once it has several (the index, then the variant).
    #[tokio::test]
    async fn a_hit_is_one_round_trip_without_variants_and_two_with() {
        let bytes = BytesOnly::new(MemoryBackend::new());
        let store = ResponseStore::new(Arc::new(bytes.clone()), "p", 1, 4);
        let plain = primary("http://h/plain");
        store
            .insert(&plain, entry(&plain, &[], &HeaderMap::new(), "x"), NOW)
            .await;
        let before = bytes.gets();
        assert!(found(&store, &plain, &HeaderMap::new()).await.is_some());
        assert_eq!(bytes.gets() - before, 1);

        let varied = primary("http://h/varied");
        let en = headers(&[("accept-language", "en")]);
        let de = headers(&[("accept-language", "de")]);
        store
            .insert(
                &varied,
                entry(&varied, &["accept-language"], &en, "en"),
                NOW,
            )
            .await;
        store
            .insert(
                &varied,
                entry(&varied, &["accept-language"], &de, "de"),
                NOW,
            )
            .await;
        let before = bytes.gets();
        assert!(found(&store, &varied, &de).await.is_some());
        assert_eq!(bytes.gets() - before, 2);
    }

    #[tokio::test]
    async fn dummy_backend_never_finds_anything() {
        let store = ResponseStore::new(Arc::new(DummyBackend), "p", 1, 4);
        let key = primary("http://h/p");
        store
            .insert(&key, entry(&key, &[], &HeaderMap::new(), "x"), NOW)
            .await;
        assert_eq!(found(&store, &key, &HeaderMap::new()).await, None);
    }

    #[tokio::test]
    async fn a_hash_collision_is_a_miss_not_a_wrong_hit() {
        for (store, _) in stores() {
            let key = primary("http://h/p");
            let impostor = stored_as(b"another url's material", &[], &HeaderMap::new(), "x");
            store.insert(&key, impostor, NOW).await;
            assert_eq!(found(&store, &key, &HeaderMap::new()).await, None);
        }
    }
}
