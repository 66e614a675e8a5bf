//! Tombstones: what a resume of a dead token is told (revoked, logged out, expired), for
//! as long as protocol.md 7 says, at a small fixed cost per ended session.
//!
//! Design: a service doing a million logins a day keeps a million tombstones (each for at
//! least an hour, and until its session would have expired); at ~370 bytes each (two hash
//! maps keyed by id and digest, and a timer each) that was 370 MB. Here a tombstone is one
//! 24-byte record in a slab (the first half of the digest, the reason, forget-after in
//! seconds), found through a 4-byte index, and forgotten in time order from a heap of
//! 12-byte entries (about 50 bytes in all, plus the arrays' room to grow). Nothing else needs a dead session: its id is not kept, and no
//! timer is armed per tombstone (the engine sweeps the heap once a minute, so one may be
//! remembered up to a minute longer than promised, never shorter).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;

use super::token::Digest;
use crate::protocol::InvalidReason;

/// The first half of a token's digest: enough to tell dead tokens apart (two of them
/// share it with odds of 2^-64 among 2^32 tombstones, and nobody can make a token whose
/// digest starts with a chosen 128 bits), at half the room.
type Key = [u8; 16];

fn key_of(d: &Digest) -> Key {
    let mut k = [0; 16];
    k.copy_from_slice(&d.0[..16]);
    k
}

/// One ended session.
#[derive(Debug, Clone, Copy)]
struct Tomb {
    key: Key,
    /// Forgotten after this, Unix seconds (rounded up).
    until_s: u32,
    why: InvalidReason,
}

/// The ended sessions still remembered.
#[derive(Debug, Default)]
pub struct Tombstones {
    slots: Slab<Tomb>,
    by_digest: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// (forget after, slot, the slot's digest's first bytes: a stale entry, whose slot was
    /// reused, is recognised and skipped), earliest first.
    expiry: BinaryHeap<Reverse<(u32, u32, u32)>>,
}

fn seconds(ms: u64) -> u32 {
    ms.div_ceil(1000).min(u64::from(u32::MAX)) as u32
}

fn fragment(k: &Key) -> u32 {
    u32::from_le_bytes([k[0], k[1], k[2], k[3]])
}

impl Tombstones {
    fn find(&self, key: &Key) -> Option<u32> {
        let slots = &self.slots;
        self.by_digest
            .find(self.hasher.hash_one(key), |&k| {
                slots[k as usize].key == *key
            })
            .copied()
    }

    /// Remembers that the session whose token has digest `d` ended, and `why`, until
    /// `until_ms` (Unix ms) at least. A second end of the same digest keeps the later
    /// time and the newer reason.
    pub fn insert(&mut self, d: Digest, why: InvalidReason, until_ms: u64) {
        let (key, until_s) = (key_of(&d), seconds(until_ms));
        if let Some(k) = self.find(&key) {
            let t = &mut self.slots[k as usize];
            t.why = why;
            if until_s > t.until_s {
                t.until_s = until_s;
                self.expiry.push(Reverse((until_s, k, fragment(&key))));
            }
            return;
        }
        let hash = self.hasher.hash_one(key);
        let k = self.slots.insert(Tomb { key, until_s, why }) as u32;
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_digest
            .insert_unique(hash, k, |&k| hasher.hash_one(slots[k as usize].key));
        self.expiry.push(Reverse((until_s, k, fragment(&key))));
    }

    /// Why the session with this digest ended, if it is still remembered.
    pub fn reason(&self, d: &Digest) -> Option<InvalidReason> {
        self.find(&key_of(d)).map(|k| self.slots[k as usize].why)
    }

    /// Forgets every tombstone whose time has come by `now_ms`; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let now_s = (now_ms / 1000).min(u64::from(u32::MAX)) as u32;
        let mut n = 0;
        while let Some(&Reverse((until_s, k, frag))) = self.expiry.peek() {
            if until_s >= now_s {
                break;
            }
            self.expiry.pop();
            let live = self
                .slots
                .get(k as usize)
                .is_some_and(|t| t.until_s == until_s && fragment(&t.key) == frag);
            if !live {
                continue; // extended since, or the slot was reused
            }
            let key = self.slots.remove(k as usize).key;
            let hash = self.hasher.hash_one(key);
            if let Ok(e) = self.by_digest.find_entry(hash, |&x| x == k) {
                e.remove();
            }
            n += 1;
        }
        if self.slots.is_empty() {
            // a burst's heap and slab are not kept allocated once it is forgotten
            self.expiry = BinaryHeap::new();
            self.slots = Slab::new();
        }
        n
    }

    /// Tombstones held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every tombstone: (the first half of its digest, the rest zero; why; forgotten
    /// after, Unix ms). Written to a snapshot and read back, it finds the same tokens.
    pub fn iter(&self) -> impl Iterator<Item = (Digest, InvalidReason, u64)> + '_ {
        self.slots.iter().map(|(_, t)| {
            let mut d = [0; 32];
            d[..16].copy_from_slice(&t.key);
            (Digest(d), t.why, u64::from(t.until_s) * 1000)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u32) -> Digest {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_le_bytes());
        b[4] = 1;
        Digest(b)
    }

    #[test]
    fn remembered_until_its_time_then_forgotten_in_order() {
        let mut t = Tombstones::default();
        t.insert(d(1), InvalidReason::Revoked, 10_000);
        t.insert(d(2), InvalidReason::LoggedOut, 5_000);
        assert_eq!(t.reason(&d(1)), Some(InvalidReason::Revoked));
        assert_eq!(t.expire(5_000), 0, "not before its time");
        assert_eq!(t.expire(6_000), 1);
        assert_eq!(t.reason(&d(2)), None);
        assert_eq!(t.reason(&d(1)), Some(InvalidReason::Revoked));
        assert_eq!(t.expire(11_000), 1);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_later_end_extends_and_a_reused_slot_is_not_forgotten_early() {
        let mut t = Tombstones::default();
        t.insert(d(1), InvalidReason::Expired, 2_000);
        t.insert(d(1), InvalidReason::Revoked, 9_000);
        assert_eq!(t.expire(3_000), 0, "extended");
        assert_eq!(t.reason(&d(1)), Some(InvalidReason::Revoked));
        assert_eq!(t.expire(10_000), 1);
        // slot 0 is reused by another digest with the same time as a stale entry
        t.insert(d(3), InvalidReason::Revoked, 2_000);
        t.insert(d(4), InvalidReason::Revoked, 20_000);
        assert_eq!(t.expire(3_000), 1);
        assert_eq!(t.reason(&d(4)), Some(InvalidReason::Revoked));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_tombstone_stays_small() {
        assert!(size_of::<Tomb>() <= 24);
    }

    #[test]
    fn what_it_lists_finds_the_same_tokens() {
        let mut t = Tombstones::default();
        let mut full = [9u8; 32];
        full[20] = 1;
        t.insert(Digest(full), InvalidReason::LoggedOut, 5_000);
        let (listed, why, until) = t.iter().next().unwrap();
        let mut again = Tombstones::default();
        again.insert(listed, why, until);
        assert_eq!(again.reason(&Digest(full)), Some(InvalidReason::LoggedOut));
        assert_eq!(until, 5_000);
    }
}
