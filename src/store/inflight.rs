//! Misses in progress: request coalescing, hit-for-miss markers, and the
//! guard that keeps background refreshes to one per URL.
//!
//! The first miss for a URL (and method, and authorisation) leads: it holds a
//! [`Lead`] while its response is fetched and stored. Misses that arrive
//! meanwhile follow: they wait until the lead ends, then look the store up
//! again. Whatever way the lead ends (stored, not storable, failed, cancelled,
//! dropped), its `Drop` wakes the followers, so none is ever stranded; they
//! also stop waiting after the lock timeout.
//!
//! A lead that ends with a response that could not be stored leaves a
//! hit-for-miss marker: until it expires, misses for that URL neither lead nor
//! follow, so an uncacheable URL never queues.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use tokio::sync::watch;

/// How a lead ended, as followers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Not yet.
    Pending,
    /// The response was stored: look it up.
    Stored,
    /// Not stored (uncacheable, failed, cancelled): fetch your own.
    NotStored,
}

enum Slot {
    InFlight(Arc<watch::Sender<Ended>>),
    /// Hit-for-miss: the URL's last response was not storable (until, Unix ms).
    Uncacheable(u64),
}

/// Beyond this many slots, expired markers are swept (and markers dropped if
/// that is not enough): the map stays bounded whatever clients request.
const MAX_SLOTS: usize = 65_536;

/// The misses in progress of one layer.
#[derive(Default)]
pub(crate) struct Flights {
    slots: Mutex<HashMap<u128, Slot>>,
}

/// What a miss is to do.
pub(crate) enum Role {
    /// Fetch it; the [`Lead`] wakes the followers when dropped.
    Lead(Lead),
    /// Another request is fetching it: wait on this.
    Follow(watch::Receiver<Ended>),
    /// A hit-for-miss marker: fetch it, alone, without queueing anyone.
    Alone,
}

impl Flights {
    /// Joins the miss for `key` at `now` (Unix ms): leads it, follows it, or
    /// (marked uncacheable) goes alone.
    pub(crate) fn join(self: &Arc<Self>, key: u128, now: u64) -> Role {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        match slots.get(&key) {
            Some(Slot::InFlight(sender)) => return Role::Follow(sender.subscribe()),
            Some(Slot::Uncacheable(until)) if *until > now => return Role::Alone,
            _ => {}
        }
        if slots.len() >= MAX_SLOTS {
            slots.retain(|_, slot| match slot {
                Slot::InFlight(_) => true,
                Slot::Uncacheable(until) => *until > now,
            });
            if slots.len() >= MAX_SLOTS {
                slots.retain(|_, slot| matches!(slot, Slot::InFlight(_)));
            }
        }
        let (sender, _) = watch::channel(Ended::Pending);
        let sender = Arc::new(sender);
        slots.insert(key, Slot::InFlight(sender.clone()));
        Role::Lead(Lead {
            flights: self.clone(),
            key,
            sender,
            ended: Ended::NotStored,
            uncacheable_until: None,
        })
    }

    /// Only leads: `Some` when nobody else is fetching `key` (a background
    /// refresh runs only then).
    pub(crate) fn lead(self: &Arc<Self>, key: u128, now: u64) -> Option<Lead> {
        match self.join(key, now) {
            Role::Lead(lead) => Some(lead),
            Role::Follow(_) | Role::Alone => None,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The right and duty to fetch one URL. Dropping it ends the lead: followers
/// wake with what [`stored`](Lead::stored) or [`uncacheable`](Lead::uncacheable)
/// said, or [`Ended::NotStored`] when neither was called.
pub(crate) struct Lead {
    flights: Arc<Flights>,
    key: u128,
    sender: Arc<watch::Sender<Ended>>,
    ended: Ended,
    uncacheable_until: Option<u64>,
}

impl Lead {
    /// The response is stored: followers look it up.
    pub(crate) fn stored(mut self) {
        self.ended = Ended::Stored;
    }

    /// The response cannot be stored: followers fetch their own, and until
    /// `until` (Unix ms) misses for the URL go alone.
    pub(crate) fn uncacheable(mut self, until: u64) {
        self.uncacheable_until = Some(until);
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        {
            let mut slots = self
                .flights
                .slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let ours = matches!(slots.get(&self.key), Some(Slot::InFlight(s)) if Arc::ptr_eq(s, &self.sender));
            if ours {
                match self.uncacheable_until {
                    Some(until) => {
                        slots.insert(self.key, Slot::Uncacheable(until));
                    }
                    None => {
                        slots.remove(&self.key);
                    }
                }
            }
        }
        self.sender.send_replace(self.ended);
    }
}

/// Waits for a lead to end; `Ended::NotStored` when it has not within
/// `timeout`, or its sender is gone.
///
/// The timeout needs tokio's time driver. A runtime built without it makes
/// tokio panic when the timer is created; that panic is caught here and the
/// follower waits for the lead alone (whose `Drop` always wakes it), so a
/// misconfigured runtime costs the timeout, never the request.
pub(crate) async fn wait(
    mut follower: watch::Receiver<Ended>,
    timeout: std::time::Duration,
) -> Ended {
    let timer = std::panic::catch_unwind(|| tokio::time::sleep(timeout)).ok();
    let mut timer = pin!(timer);
    let mut ended = pin!(follower.wait_for(|e| *e != Ended::Pending));
    poll_fn(|cx| {
        if let Poll::Ready(ended) = ended.as_mut().poll(cx) {
            return Poll::Ready(ended.map_or(Ended::NotStored, |e| *e));
        }
        match timer.as_mut().as_pin_mut().map(|timer| timer.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ended::NotStored),
            Some(Poll::Pending) | None => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn followers_wake_with_the_lead_s_outcome() {
        let flights = Arc::new(Flights::default());
        let Role::Lead(lead) = flights.join(1, 0) else {
            panic!("first miss leads");
        };
        let Role::Follow(follower) = flights.join(1, 0) else {
            panic!("second miss follows");
        };
        lead.stored();
        assert_eq!(wait(follower, Duration::from_secs(5)).await, Ended::Stored);
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join(1, 0), Role::Lead(_)));
    }

    #[tokio::test]
    async fn a_dropped_lead_releases_its_followers() {
        let flights = Arc::new(Flights::default());
        let lead = flights.lead(1, 0).expect("leads");
        let Role::Follow(follower) = flights.join(1, 0) else {
            panic!("follows");
        };
        drop(lead);
        assert_eq!(
            wait(follower, Duration::from_secs(5)).await,
            Ended::NotStored
        );
    }

    #[tokio::test(start_paused = true)]
    async fn followers_give_up_after_the_lock_timeout() {
        let flights = Arc::new(Flights::default());
        let _lead = flights.lead(1, 0).expect("leads");
        let Role::Follow(follower) = flights.join(1, 0) else {
            panic!("follows");
        };
        assert_eq!(
            wait(follower, Duration::from_secs(5)).await,
            Ended::NotStored
        );
    }

    #[test]
    fn a_runtime_without_timers_still_wakes_followers() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let ended = runtime.block_on(async {
            let flights = Arc::new(Flights::default());
            let lead = flights.lead(1, 0).expect("leads");
            let Role::Follow(follower) = flights.join(1, 0) else {
                panic!("follows");
            };
            lead.stored();
            wait(follower, Duration::from_secs(5)).await
        });
        assert_eq!(ended, Ended::Stored);
    }

    #[test]
    fn uncacheable_urls_go_alone_until_the_marker_expires() {
        let flights = Arc::new(Flights::default());
        flights.lead(1, 0).expect("leads").uncacheable(1_000);
        assert!(matches!(flights.join(1, 999), Role::Alone));
        assert!(flights.lead(1, 999).is_none());
        assert!(matches!(flights.join(1, 1_000), Role::Lead(_)));
    }

    #[test]
    fn markers_are_bounded() {
        let flights = Arc::new(Flights::default());
        for key in 0..(MAX_SLOTS as u128 + 10) {
            flights.lead(key, 0).expect("leads").uncacheable(10);
        }
        assert!(flights.len() <= MAX_SLOTS);
    }
}
