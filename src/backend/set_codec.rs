//! The byte format of the sets behind [`Backend::set_add`](super::Backend::set_add)
//! for backends that keep a set as one plain value (the trait's default, the
//! file and Memcached backends): the set's own expiry, then its members.
//!
//! Layout: magic `TRS\0`, the expiry in Unix milliseconds (`u64`, big-endian),
//! then each member as a `u32` length and its bytes. Members are unique.

use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};

use crate::clock::{duration_millis, unix_millis};

const MAGIC: &[u8; 4] = b"TRS\x00";

/// A decoded set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    /// Unix milliseconds after which the set is gone.
    pub expires_at: u64,
    /// The members, in insertion order.
    pub members: Vec<Bytes>,
}

impl Set {
    /// Adds `member` (once) and extends the set's life to at least `now + ttl`.
    pub fn insert(&mut self, member: Bytes, now: u64, ttl: Duration) {
        if !self.members.contains(&member) {
            self.members.push(member);
        }
        let until = now.saturating_add(duration_millis(ttl));
        self.expires_at = self.expires_at.max(until);
    }

    /// The time to live that keeps the set until its expiry (at least 1 ms).
    pub fn ttl(&self, now: u64) -> Duration {
        Duration::from_millis(self.expires_at.saturating_sub(now).max(1))
    }
}

/// The system clock in Unix milliseconds.
pub fn now_millis() -> u64 {
    unix_millis(SystemTime::now())
}

/// Encodes a set.
pub fn encode(set: &Set) -> Bytes {
    let len: usize = set.members.iter().map(|m| 4 + m.len()).sum();
    let mut w = BytesMut::with_capacity(12 + len);
    w.put_slice(MAGIC);
    w.put_u64(set.expires_at);
    for m in &set.members {
        w.put_u32(u32::try_from(m.len()).unwrap_or(u32::MAX));
        w.put_slice(m);
    }
    w.freeze()
}

/// Decodes a set; `None` for anything that is not one (never panics).
pub fn decode(bytes: &Bytes) -> Option<Set> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (expiry, mut rest) = rest.split_first_chunk::<8>()?;
    let mut members = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if tail.len() < len {
            return None;
        }
        let start = bytes.len() - tail.len();
        members.push(bytes.slice(start..start + len));
        rest = &tail[len..];
    }
    Some(Set {
        expires_at: u64::from_be_bytes(*expiry),
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_members_unique_and_the_longest_life() {
        let mut set = Set::default();
        set.insert(Bytes::from_static(b"a"), 1_000, Duration::from_secs(10));
        set.insert(Bytes::from_static(b"bb"), 1_000, Duration::from_secs(1));
        set.insert(Bytes::from_static(b"a"), 1_000, Duration::from_secs(5));
        assert_eq!(set.members.len(), 2);
        assert_eq!(set.expires_at, 11_000);
        assert_eq!(set.ttl(2_000), Duration::from_secs(9));
        assert_eq!(decode(&encode(&set)), Some(set));
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        let good = encode(&Set {
            expires_at: 5,
            members: vec![Bytes::from_static(b"xyz")],
        });
        for cut in 0..good.len() {
            let _ = decode(&good.slice(..cut));
        }
        assert_eq!(decode(&good.slice(..good.len() - 1)), None);
        assert_eq!(decode(&Bytes::from_static(b"nope")), None);
    }
}
