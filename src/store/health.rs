//! How the response store copes with a failing backend: every failure is a miss
//! (or a skipped write), counted, and logged without flooding the log when a
//! backend is down and every request fails the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::backend::BackendError;
use crate::clock::unix_millis;

/// At most one log line per this many milliseconds while failures continue.
const LOG_INTERVAL_MS: u64 = 10_000;

/// Failure counters of one store.
#[derive(Debug, Default)]
pub(crate) struct Health {
    errors: AtomicU64,
    timeouts: AtomicU64,
    /// Unix ms of the last log line (0: never logged).
    last_log: AtomicU64,
    /// Failures since the last log line.
    unlogged: AtomicU64,
}

impl Health {
    /// Counts a failure and logs it, or folds it into the next log line.
    pub(crate) fn record(&self, operation: &'static str, key: &str, error: &BackendError) {
        match error {
            BackendError::Timeout(_) => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                #[cfg(feature = "metrics")]
                metrics::counter!("tower_response_cache_backend_timeouts_total").increment(1);
            }
            _ => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                #[cfg(feature = "metrics")]
                metrics::counter!("tower_response_cache_backend_errors_total").increment(1);
            }
        }
        let now = unix_millis(SystemTime::now());
        let last = self.last_log.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= LOG_INTERVAL_MS;
        if due
            && self
                .last_log
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let suppressed = self.unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                %error,
                operation,
                key,
                suppressed,
                "cache backend failed; serving from the inner service (further failures are summarised every 10 s)"
            );
        } else {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub(crate) fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_kind_and_logged_once_per_interval() {
        let h = Health::default();
        for _ in 0..5 {
            h.record(
                "get",
                "k",
                &BackendError::Timeout(std::time::Duration::from_millis(50)),
            );
        }
        h.record("set", "k", &BackendError::KeyNotFound);
        assert_eq!(h.timeouts(), 5);
        assert_eq!(h.errors(), 1);
        // The first failure was logged; the other five wait for the next line.
        assert_eq!(h.unlogged.load(Ordering::Relaxed), 5);
    }
}
