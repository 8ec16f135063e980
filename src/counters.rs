//! The layer's counters ([`CacheStats`]), and their export through the `metrics`
//! crate when the `metrics` feature is on.
//!
//! Relaxed atomics: each counter is exact on its own, and a snapshot of several
//! may be a few events apart.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::handle::CacheStats;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale_served: AtomicU64,
    stores: AtomicU64,
    bytes_stored: AtomicU64,
    coalesced: AtomicU64,
}

/// Adds one to a counter, and to its `metrics` twin.
macro_rules! count {
    ($fn:ident, $field:ident, $metric:literal) => {
        pub(crate) fn $fn(&self) {
            self.$field.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!($metric).increment(1);
        }
    };
}

impl Counters {
    count!(hit, hits, "tower_response_cache_hits_total");
    count!(miss, misses, "tower_response_cache_misses_total");
    count!(
        stale,
        stale_served,
        "tower_response_cache_stale_served_total"
    );
    count!(coalesced, coalesced, "tower_response_cache_coalesced_total");

    /// A response written: one store, `bytes` of body.
    pub(crate) fn stored(&self, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.stores.fetch_add(1, Ordering::Relaxed);
        self.bytes_stored.fetch_add(bytes, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("tower_response_cache_stores_total").increment(1);
            metrics::counter!("tower_response_cache_bytes_stored_total").increment(bytes);
        }
    }

    pub(crate) fn snapshot(&self, backend_errors: u64, backend_timeouts: u64) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stale_served: self.stale_served.load(Ordering::Relaxed),
            stores: self.stores.load(Ordering::Relaxed),
            bytes_stored: self.bytes_stored.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            backend_errors,
            backend_timeouts,
        }
    }
}
