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

    /// The current time in milliseconds since the Unix epoch (0 before it):
    /// the unit freshness is decided in, read once per request. A clock that
    /// keeps milliseconds can say so without a [`SystemTime`] in between; it
    /// must read the same time as [`Clock::now`] (the layer uses both: one
    /// for freshness, the other for the dates it writes).
    fn now_millis(&self) -> u64 {
        unix_millis(self.now())
    }
}

/// The operating system's wall clock, read coarsely.
///
/// On Linux this is `CLOCK_REALTIME_COARSE`: the time of the kernel's last
/// tick (up to one tick, 1 to 10 ms, behind the precise clock), read from
/// shared memory. The precise clock costs a hardware counter read, which on a
/// virtual machine was a twentieth of a whole hit. Freshness is decided to
/// the millisecond and `Age` is sent in whole seconds, so the lag shows only
/// within a tick of a second's boundary (an `Age` one lower, an entry fresh a
/// tick longer). Elsewhere, [`SystemTime::now`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        coarse::since_epoch().map_or_else(SystemTime::now, |d| UNIX_EPOCH + d)
    }

    fn now_millis(&self) -> u64 {
        coarse::since_epoch().map_or_else(|| unix_millis(SystemTime::now()), duration_millis)
    }
}

#[cfg(target_os = "linux")]
mod coarse {
    use std::mem::MaybeUninit;
    use std::time::Duration;

    /// The coarse clock's reading; `None` if the kernel refuses it (then the
    /// precise clock is read) or it is before the epoch.
    pub(super) fn since_epoch() -> Option<Duration> {
        // Uninitialised, not a literal: some targets' `timespec` has private
        // padding fields.
        let mut ts = MaybeUninit::<libc::timespec>::uninit();
        // SAFETY: `ts` is valid for writes of a `timespec`; nothing else is
        // touched.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, ts.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: the call succeeded, so it wrote the whole `timespec`.
        let ts = unsafe { ts.assume_init() };
        let secs = u64::try_from(ts.tv_sec).ok()?;
        let nanos = u32::try_from(ts.tv_nsec).ok()?;
        Some(Duration::new(secs, nanos))
    }
}

#[cfg(not(target_os = "linux"))]
mod coarse {
    /// No coarse clock here: the precise one is read.
    pub(super) fn since_epoch() -> Option<std::time::Duration> {
        None
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

    /// Moves the clock forward by `by` (stopping at the last millisecond a
    /// `u64` holds).
    pub fn advance(&self, by: Duration) {
        let by = duration_millis(by);
        let _ = self
            .millis
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| {
                Some(now.saturating_add(by))
            });
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
        from_unix_millis(self.now_millis())
    }

    fn now_millis(&self) -> u64 {
        self.millis.load(Ordering::SeqCst)
    }
}

/// Milliseconds since the Unix epoch, saturating at both ends.
pub(crate) fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, duration_millis)
}

/// Whole milliseconds of `d`, saturating.
pub(crate) fn duration_millis(d: Duration) -> u64 {
    // In `u64`s: `Duration::as_millis` is a `u128` sum, read on every hit.
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

/// The time `millis` after the Unix epoch.
pub(crate) fn from_unix_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_reads_the_wall_clock_to_within_a_tick() {
        let before = unix_millis(SystemTime::now());
        let millis = SystemClock.now_millis();
        let time = unix_millis(SystemClock.now());
        let after = unix_millis(SystemTime::now());
        // The coarse clock is the last tick's time: never ahead of the precise
        // clock, and behind it by one tick at most (10 ms at the slowest
        // kernel tick; 50 ms leaves room and still catches lost milliseconds).
        for read in [millis, time] {
            assert!(read <= after, "{read} ms is ahead of {after} ms");
            assert!(read + 50 >= before, "{read} ms is far behind {before} ms");
        }
    }

    #[test]
    fn manual_clock_keeps_milliseconds() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_millis(1_234));
        clock.advance(Duration::from_millis(5));
        assert_eq!(clock.now_millis(), 1_239);
        assert_eq!(clock.now(), from_unix_millis(1_239));
        // Past the end it stops, never wraps back to the epoch.
        clock.advance(Duration::MAX);
        assert_eq!(clock.now_millis(), u64::MAX);
    }

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
