//! [`CacheHandle`]: what an application does to its cache from outside the
//! request flow: purge a URL or a tag after an update, clear everything, read
//! the counters.

use std::sync::Arc;

use http::Request;

use crate::backend::BackendError;
use crate::key::{PrimaryKey, under_both_schemes};
use crate::layer::Shared;

/// A URL given to [`CacheHandle::purge`] is not an absolute `http(s)` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an absolute URL: {0:?}")]
pub struct InvalidUrl(pub String);

/// What a cache has counted since its layer was built (every service and
/// handle of one layer shares them).
///
/// A backend that fails or times out never fails a request: the lookup is a miss
/// and the write is skipped. `backend_errors` and `backend_timeouts` are how to
/// notice it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Requests answered from a fresh stored response (or a stale one the
    /// request's `max-stale` accepted).
    pub hits: u64,
    /// GET and HEAD requests that went to the inner service.
    pub misses: u64,
    /// Stale responses served by stale-while-revalidate or stale-if-error.
    pub stale_served: u64,
    /// Responses written to the backend.
    pub stores: u64,
    /// Body bytes of those responses.
    pub bytes_stored: u64,
    /// Requests that waited for another request's miss (coalescing).
    pub coalesced: u64,
    /// Backend operations that failed (refused connection, protocol error...).
    pub backend_errors: u64,
    /// Backend operations that did not answer within the backend's timeout.
    pub backend_timeouts: u64,
}

/// A handle to one [`CacheLayer`](crate::CacheLayer)'s cache
/// ([`CacheLayer::handle`](crate::CacheLayer::handle)).
///
/// Purges go to the backend, so with a shared backend (Redis, Memcached) every
/// instance sees them.
///
/// ```
/// use tower_response_cache::CacheLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let layer = CacheLayer::new();
/// let cache = layer.handle();
/// // After updating product 7 (and everything its response tagged `product-7`):
/// cache.purge("https://shop.example/products/7").await.unwrap();
/// cache.purge_tag("product-7").await;
/// # }
/// ```
#[derive(Clone)]
pub struct CacheHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CacheHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheHandle")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl CacheHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let (backend_errors, backend_timeouts) = self.shared.store.failures();
        self.shared
            .counters
            .snapshot(backend_errors, backend_timeouts)
    }

    /// Removes every stored response for a URL (all its `Vary` variants, GET and
    /// HEAD) from the backend, so every layer sharing that backend sees it gone:
    /// call it after updating what the URL shows. `url` is absolute
    /// (`https://example.com/products/7?page=2`). It is purged under both `http`
    /// and `https`: an HTTP/1.1 request does not say its scheme, so the layer
    /// may have stored it under either. The key hook runs on a GET request for
    /// the URL, so hook components taken from other headers are absent.
    /// `Ok(true)` if something was stored.
    ///
    /// ```
    /// use tower_response_cache::CacheLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = CacheLayer::new().handle();
    /// assert!(!cache.purge("https://example.com/products/7").await.unwrap());
    /// assert!(cache.purge("/no/host").await.is_err());
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidUrl`] when `url` is not an absolute `http(s)` URL.
    pub async fn purge(&self, url: &str) -> Result<bool, InvalidUrl> {
        let invalid = || InvalidUrl(url.to_owned());
        let uri: http::Uri = url.parse().map_err(|_| invalid())?;
        let (Some(authority), Some(path)) = (uri.authority(), uri.path_and_query()) else {
            return Err(invalid());
        };
        let config = &self.shared.config;
        let mut purged = false;
        for uri in under_both_schemes(authority.as_str(), path) {
            let (parts, ()) = Request::get(uri)
                .body(())
                .map_err(|_| invalid())?
                .into_parts();
            let key = PrimaryKey::new(
                &config.key_prefix,
                config.version,
                &parts,
                config.key_hook.as_ref(),
            );
            purged |= self.shared.store.purge(key.hash).await;
        }
        Ok(purged)
    }

    /// Removes every stored response whose response carried `tag` in its tag
    /// field ([`tag_header`](crate::CacheLayerBuilder::tag_header), `Cache-Tag`
    /// by default); returns how many URLs were purged. The tag index lives in
    /// the backend, so a purge from one instance reaches what every instance
    /// stored.
    pub async fn purge_tag(&self, tag: &str) -> usize {
        self.shared.store.purge_tag(tag).await
    }

    /// Removes everything the backend holds (Django's `cache.clear()`): with a
    /// backend shared with the low-level [`Cache`](crate::Cache), its values go
    /// too.
    ///
    /// # Errors
    ///
    /// The backend's error when it could not clear.
    pub async fn clear(&self) -> Result<(), BackendError> {
        self.shared.store.clear().await
    }
}
