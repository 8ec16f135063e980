//! Time sources.
//!
//! Freshness is decided by the layer from the timestamps inside each entry and a
//! [`Clock`], never by a backend's own expiry. That keeps time testable: tests
//! drive a [`ManualClock`] forward instead of sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's clock ([`SystemTime::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; clones share one time.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tower_response_cache::{Clock, ManualClock};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_468_749_600));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_468_749_605));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    /// Milliseconds since the Unix epoch.
    millis: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock stopped at `start` (times before the Unix epoch count as the epoch).
    pub fn new(start: SystemTime) -> Self {
        Self {
            millis: Arc::new(AtomicU64::new(unix_millis(start))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `to`, forward or back.
    pub fn set(&self, to: SystemTime) {
        self.millis.store(unix_millis(to), Ordering::SeqCst);
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// Milliseconds since the Unix epoch, saturating at both ends.
pub(crate) fn unix_millis(t: SystemTime) -> u64 {
    // In `u64`s: `Duration::as_millis` is a `u128` sum, read on every hit.
    t.duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs()
            .saturating_mul(1000)
            .saturating_add(u64::from(d.subsec_millis()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_millis_saturates_at_both_ends() {
        assert_eq!(
            unix_millis(UNIX_EPOCH + Duration::from_millis(1_500)),
            1_500
        );
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
        // Past `u64::MAX` milliseconds, where the platform's time reaches.
        if let Some(far) = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 1000 + 1)) {
            assert_eq!(unix_millis(far), u64::MAX);
        }
    }
}
