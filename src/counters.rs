//! The layer's counters ([`CacheStats`]), and their export through the `metrics`
//! crate when the `metrics` feature is on.
//!
//! Relaxed atomics: each counter is exact on its own, and a snapshot of several
//! may be a few events apart. They are striped: each thread adds to one of
//! several cache-line-sized shards, so hits on different cores never contend
//! for one line (a shared counter was a cache-line transfer per hit); a
//! snapshot sums the shards.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::handle::CacheStats;

/// Shards per layer: a power of two, above the core counts where striping
/// matters. Threads beyond it share shards (still correct, a little contention).
const SHARDS: usize = 16;

#[derive(Debug)]
pub(crate) struct Counters {
    shards: Box<[Shard]>,
}

/// One thread group's counters, alone on its cache line(s).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    hits: AtomicU64,
    misses: AtomicU64,
    stale_served: AtomicU64,
    stores: AtomicU64,
    bytes_stored: AtomicU64,
    coalesced: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

/// The calling thread's shard number, handed out round-robin on first use.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
    }
    INDEX.with(|index| {
        index.get().unwrap_or_else(|| {
            let next = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            index.set(Some(next));
            next
        })
    })
}

/// Adds one to a counter, and to its `metrics` twin.
macro_rules! count {
    ($fn:ident, $field:ident, $metric:literal) => {
        pub(crate) fn $fn(&self) {
            self.shard().$field.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!($metric).increment(1);
        }
    };
}

impl Counters {
    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// One counter summed over the shards.
    fn sum(&self, counter: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|shard| counter(shard).load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

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
        let shard = self.shard();
        shard.stores.fetch_add(1, Ordering::Relaxed);
        shard.bytes_stored.fetch_add(bytes, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("tower_response_cache_stores_total").increment(1);
            metrics::counter!("tower_response_cache_bytes_stored_total").increment(bytes);
        }
    }

    pub(crate) fn snapshot(&self, backend_errors: u64, backend_timeouts: u64) -> CacheStats {
        CacheStats {
            hits: self.sum(|s| &s.hits),
            misses: self.sum(|s| &s.misses),
            stale_served: self.sum(|s| &s.stale_served),
            stores: self.sum(|s| &s.stores),
            bytes_stored: self.sum(|s| &s.bytes_stored),
            coalesced: self.sum(|s| &s.coalesced),
            backend_errors,
            backend_timeouts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sums_every_threads_shard() {
        let counters = Counters::default();
        std::thread::scope(|scope| {
            for _ in 0..SHARDS + 3 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        counters.hit();
                    }
                    counters.stored(10);
                });
            }
        });
        let threads = u64::try_from(SHARDS + 3).unwrap();
        let stats = counters.snapshot(0, 0);
        assert_eq!(stats.hits, 100 * threads);
        assert_eq!(stats.stores, threads);
        assert_eq!(stats.bytes_stored, 10 * threads);
        assert_eq!(stats.misses, 0);
    }
}
