//! The session table: live sessions by public id and by token digest, and the expiry rule.
//!
//! Owns: which sessions exist, which connection (if any) each is bound to, and when each
//! expires. Pure logic: times come in as arguments; the timer entries that drive expiry
//! belong to the engine, which stores their ids here.

use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;

use super::attrs::{AttrLimit, Attributes};
use super::clock::WallClock;
use super::token::Digest;
use super::tombstones::Tombstones;
use crate::conn::{ConnId, Peer};
use crate::labels::{LabelId, Labels};
use crate::protocol::InvalidReason;
use crate::timer::TimerId;

/// One login session: 120 bytes, kept in a slab with 8 bytes of links to its user's other
/// sessions (dense; no per-session heap blocks).
#[derive(Debug)]
pub struct Session {
    /// Public id (protocol.md `session_id`): random, not a secret.
    pub id: u64,
    /// Whose session.
    pub user_id: u64,
    /// SHA-256 of the token (the table's index; the token itself is not kept).
    pub digest: Digest,
    /// Unix ms.
    pub created_ms: u64,
    /// Absolute expiry, Unix ms.
    pub expires_ms: u64,
    /// The last activity the journal holds, Unix ms (persisted coarsely: at detach, and
    /// at most every `activity_save_interval` while requests keep coming).
    pub saved_activity_ms: u64,
    /// Last valid request carrying this session's token, Unix ms rounded up
    /// ([`WallClock::ms_ceil`]: the idle expiry is never early). Wall time, not an
    /// `Instant`: a session restored after a reboot may have been active before the
    /// monotonic clock's start. Heartbeats only store this; the expiry timer reads it
    /// when it fires (lazy reset).
    pub last_activity_ms: u64,
    /// Client and platform, interned in the table ([`SessionTable::device`]).
    pub device: LabelId,
    /// The address the session was last used from.
    pub peer: Peer,
    /// The connection this session is bound to, if one is live.
    pub conn: Option<ConnId>,
    /// The engine's expiry timer for this session.
    pub timer: Option<TimerId>,
}

/// Why a session ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No activity for the idle expiry.
    Idle,
    /// Its lifetime ran out.
    Absolute,
}

impl Session {
    /// When the session expires if nothing else happens: the earlier of its absolute expiry
    /// and `idle` after its last activity.
    pub fn deadline(&self, idle: Duration, clock: &WallClock) -> Instant {
        clock.instant(self.expires_ms.min(self.idle_expiry_ms(idle)))
    }

    /// Unix ms at which the session expires idle.
    fn idle_expiry_ms(&self, idle: Duration) -> u64 {
        let idle_ms = idle.as_nanos().div_ceil(1_000_000) as u64;
        self.last_activity_ms.saturating_add(idle_ms)
    }

    /// Whether the session has expired at `now`, and why. Absolute wins a tie: it is the
    /// stricter promise.
    pub fn expired(&self, now: Instant, idle: Duration, clock: &WallClock) -> Option<Expiry> {
        let now_ms = clock.ms(now);
        if now_ms >= self.expires_ms {
            Some(Expiry::Absolute)
        } else if now_ms >= self.idle_expiry_ms(idle) {
            Some(Expiry::Idle)
        } else {
            None
        }
    }
}

/// A record and its links in its user's lists.
#[derive(Debug)]
struct Slot {
    s: Session,
    /// Slab keys of the user's previous (older) and next (newer) session, or `NIL`.
    older: u32,
    newer: u32,
    /// The same among the user's sessions bound to a connection (`NIL` when unbound).
    conn_older: u32,
    conn_newer: u32,
}

const NIL: u32 = u32::MAX;

/// Whose list `l` is: its oldest session's user (lists are never empty).
fn owner(slots: &Slab<Slot>, l: &UserList) -> u64 {
    slots[l.oldest as usize].s.user_id
}

/// One user's live sessions: the slab keys of both ends of the list, and its length; and
/// both ends of the list of those bound to a connection (`NIL` when none is).
#[derive(Debug, Clone, Copy)]
struct UserList {
    oldest: u32,
    newest: u32,
    len: u32,
    conn_oldest: u32,
    conn_newest: u32,
}

/// A user's live session ids, oldest first ([`SessionTable::of_user`]); `rev()` gives the
/// newest first.
#[derive(Debug, Clone)]
pub struct UserSessions<'a> {
    slots: &'a Slab<Slot>,
    front: u32,
    back: u32,
    left: usize,
}

impl Iterator for UserSessions<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let slot = &self.slots[self.front as usize];
        self.front = slot.newer;
        Some(slot.s.id)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for UserSessions<'_> {
    fn next_back(&mut self) -> Option<u64> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let slot = &self.slots[self.back as usize];
        self.back = slot.older;
        Some(slot.s.id)
    }
}

impl ExactSizeIterator for UserSessions<'_> {}

/// `insert` found the session's id or token digest already in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collision;

/// Sessions by id, with indexes by token digest and by user, and the tombstones of ended
/// sessions (so a resume of a revoked or logged-out token can say why it fails).
///
/// The records sit in a slab; the two indexes hold only its 4-byte keys (hashed by the
/// record's id and digest), so a session costs its record plus about 10 bytes of index.
///
/// Design: a user's sessions are a doubly linked list through their slots, oldest first,
/// and the by-user index holds only each list's ends and length (12 bytes per user with
/// sessions). A login allocates nothing: no per-user vector to grow (one with 10,000
/// sessions used to regrow to 128 KiB mid-burst, leaving its old copies behind as holes in
/// the heap) and no map entry with its own heap block per user.
#[derive(Debug, Default)]
pub struct SessionTable {
    slots: Slab<Slot>,
    by_id: HashTable<u32>,
    by_digest: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Each user's list of live sessions (found by hashing the user id; the oldest slot's
    /// record says whose list it is).
    by_user: HashTable<UserList>,
    tombs: Tombstones,
    devices: Labels,
    /// The attributes of the sessions that hold some (none: no entry, no cost).
    attrs: hashbrown::HashMap<u64, Attributes>,
}

impl SessionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `n` sessions, reserved up front: a large reservation is address space
    /// that the kernel backs only as sessions arrive, and no regrowth copies (or leaves
    /// behind) the old array.
    pub fn with_capacity(n: usize) -> Self {
        SessionTable {
            slots: Slab::with_capacity(n),
            ..Self::default()
        }
    }

    /// A reference to the interned label `(client, platform)`, for a new session's
    /// `device` (the table releases it when the session goes, or when `insert` refuses).
    pub fn intern_device(&mut self, client: &str, platform: &str) -> LabelId {
        self.devices.acquire(client, platform)
    }

    /// `(client, platform)` of a live session's device.
    pub fn device(&self, s: &Session) -> (&str, &str) {
        self.devices.get(s.device)
    }

    /// Relabels a live session (a resume that names its device).
    pub fn set_device(&mut self, id: u64, client: &str, platform: &str) {
        let fresh = self.devices.acquire(client, platform);
        match self.get_mut(id) {
            Some(s) => {
                let old = std::mem::replace(&mut s.device, fresh);
                self.devices.release(old);
            }
            None => self.devices.release(fresh),
        }
    }

    /// Distinct device labels held.
    pub fn device_labels(&self) -> usize {
        self.devices.count()
    }

    fn key_by_id(&self, id: u64) -> Option<u32> {
        let slots = &self.slots;
        self.by_id
            .find(self.hasher.hash_one(id), |&k| slots[k as usize].s.id == id)
            .copied()
    }

    fn key_by_digest(&self, d: &Digest) -> Option<u32> {
        let slots = &self.slots;
        self.by_digest
            .find(self.hasher.hash_one(d), |&k| {
                slots[k as usize].s.digest == *d
            })
            .copied()
    }

    fn user_list(&self, user_id: u64) -> Option<&UserList> {
        let slots = &self.slots;
        self.by_user.find(self.hasher.hash_one(user_id), |l| {
            owner(slots, l) == user_id
        })
    }

    /// Appends slot `k` (already in the slab) to its user's list, as the newest.
    fn link(&mut self, k: u32) {
        let user_id = self.slots[k as usize].s.user_id;
        let hash = self.hasher.hash_one(user_id);
        let (slots, hasher) = (&mut self.slots, &self.hasher);
        let found = self.by_user.find_mut(hash, |l| owner(slots, l) == user_id);
        match found {
            Some(l) => {
                slots[l.newest as usize].newer = k;
                slots[k as usize].older = l.newest;
                l.newest = k;
                l.len += 1;
            }
            None => {
                let l = UserList {
                    oldest: k,
                    newest: k,
                    len: 1,
                    conn_oldest: NIL,
                    conn_newest: NIL,
                };
                self.by_user
                    .insert_unique(hash, l, |l| hasher.hash_one(owner(slots, l)));
            }
        }
    }

    /// Takes slot `k` (still in the slab) out of its user's list.
    fn unlink(&mut self, k: u32) {
        let Slot {
            older,
            newer,
            ref s,
            ..
        } = self.slots[k as usize];
        let user_id = s.user_id;
        let hash = self.hasher.hash_one(user_id);
        if older != NIL {
            self.slots[older as usize].newer = newer;
        }
        if newer != NIL {
            self.slots[newer as usize].older = older;
        }
        let slots = &self.slots;
        let Ok(mut e) = self
            .by_user
            .find_entry(hash, |l| owner(slots, l) == user_id)
        else {
            return;
        };
        let l = e.get_mut();
        l.len -= 1;
        if l.len == 0 {
            e.remove();
            return;
        }
        if l.oldest == k {
            l.oldest = newer;
        }
        if l.newest == k {
            l.newest = older;
        }
    }

    /// Adds a session. Refuses it if its id or digest is already present, live or ended (a
    /// 2^-64 or 2^-256 event; the caller draws again).
    pub fn insert(&mut self, mut s: Session) -> Result<(), Collision> {
        if self.key_by_id(s.id).is_some()
            || self.key_by_digest(&s.digest).is_some()
            || self.tombs.reason(&s.digest).is_some()
        {
            self.devices.release(s.device);
            return Err(Collision);
        }
        let (id_hash, digest_hash) = (self.hasher.hash_one(s.id), self.hasher.hash_one(s.digest));
        let bound = s.conn.take();
        let k = self.slots.insert(Slot {
            s,
            older: NIL,
            newer: NIL,
            conn_older: NIL,
            conn_newer: NIL,
        }) as u32;
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_id
            .insert_unique(id_hash, k, |&k| hasher.hash_one(slots[k as usize].s.id));
        self.by_digest.insert_unique(digest_hash, k, |&k| {
            hasher.hash_one(slots[k as usize].s.digest)
        });
        self.link(k);
        if let Some(c) = bound {
            self.bind_slot(k, c);
        }
        Ok(())
    }

    /// Binds the live session `id` to connection `conn` (the newest of its user's bound
    /// sessions); false if there is no such session.
    pub fn bind(&mut self, id: u64, conn: ConnId) -> bool {
        let Some(k) = self.key_by_id(id) else {
            return false;
        };
        if self.slots[k as usize].s.conn.is_some() {
            self.unbind_slot(k);
        }
        self.bind_slot(k, conn);
        true
    }

    /// Unbinds the live session `id` from its connection; returns the connection.
    pub fn unbind(&mut self, id: u64) -> Option<ConnId> {
        let k = self.key_by_id(id)?;
        self.unbind_slot(k)
    }

    /// The user's sessions bound to a connection, newest bound first: (session id,
    /// connection). O(what is taken): detached sessions are not on this list.
    pub fn connected_of_user(&self, user_id: u64) -> impl Iterator<Item = (u64, ConnId)> + '_ {
        let mut k = self.user_list(user_id).map_or(NIL, |l| l.conn_newest);
        std::iter::from_fn(move || {
            if k == NIL {
                return None;
            }
            let slot = &self.slots[k as usize];
            k = slot.conn_older;
            slot.s.conn.map(|c| (slot.s.id, c))
        })
    }

    fn bind_slot(&mut self, k: u32, conn: ConnId) {
        let user_id = self.slots[k as usize].s.user_id;
        self.slots[k as usize].s.conn = Some(conn);
        let hash = self.hasher.hash_one(user_id);
        let slots = &mut self.slots;
        let Some(l) = self.by_user.find_mut(hash, |l| owner(slots, l) == user_id) else {
            return;
        };
        slots[k as usize].conn_older = l.conn_newest;
        slots[k as usize].conn_newer = NIL;
        if l.conn_newest != NIL {
            slots[l.conn_newest as usize].conn_newer = k;
        } else {
            l.conn_oldest = k;
        }
        l.conn_newest = k;
    }

    fn unbind_slot(&mut self, k: u32) -> Option<ConnId> {
        let slot = &mut self.slots[k as usize];
        let conn = slot.s.conn.take()?;
        let (older, newer, user_id) = (slot.conn_older, slot.conn_newer, slot.s.user_id);
        slot.conn_older = NIL;
        slot.conn_newer = NIL;
        if older != NIL {
            self.slots[older as usize].conn_newer = newer;
        }
        if newer != NIL {
            self.slots[newer as usize].conn_older = older;
        }
        let hash = self.hasher.hash_one(user_id);
        let slots = &self.slots;
        if let Some(l) = self.by_user.find_mut(hash, |l| owner(slots, l) == user_id) {
            if l.conn_newest == k {
                l.conn_newest = older;
            }
            if l.conn_oldest == k {
                l.conn_oldest = newer;
            }
        }
        Some(conn)
    }

    /// The live session with public id `id`.
    pub fn get(&self, id: u64) -> Option<&Session> {
        self.key_by_id(id).map(|k| &self.slots[k as usize].s)
    }

    /// The live session with public id `id`, to change.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut Session> {
        self.key_by_id(id).map(|k| &mut self.slots[k as usize].s)
    }

    /// The public id of the live session whose token has digest `d`.
    pub fn id_by_digest(&self, d: &Digest) -> Option<u64> {
        self.key_by_digest(d).map(|k| self.slots[k as usize].s.id)
    }

    /// Live session ids of `user_id`, oldest first (`.rev()`: newest first).
    pub fn of_user(&self, user_id: u64) -> UserSessions<'_> {
        let l = self.user_list(user_id).copied().unwrap_or(UserList {
            oldest: NIL,
            newest: NIL,
            len: 0,
            conn_oldest: NIL,
            conn_newest: NIL,
        });
        UserSessions {
            slots: &self.slots,
            front: l.oldest,
            back: l.newest,
            left: l.len as usize,
        }
    }

    /// Removes a live session without a trace (tests, and sessions that never reached a
    /// client).
    /// The returned record's device label is released (read it before).
    pub fn remove(&mut self, id: u64) -> Option<Session> {
        let slots = &self.slots;
        let (k, _) = self
            .by_id
            .find_entry(self.hasher.hash_one(id), |&k| slots[k as usize].s.id == id)
            .ok()?
            .remove();
        let d = self.slots[k as usize].s.digest;
        if let Ok(e) = self
            .by_digest
            .find_entry(self.hasher.hash_one(d), |&x| x == k)
        {
            e.remove();
        }
        self.unbind_slot(k);
        self.unlink(k);
        let s = self.slots.remove(k as usize).s;
        self.devices.release(s.device);
        self.attrs.remove(&id);
        Some(s)
    }

    /// A live session's attributes (None: it holds none, or is not live).
    pub fn attrs(&self, id: u64) -> Option<&Attributes> {
        self.attrs.get(&id)
    }

    /// Sets an attribute of the live session `id` (false: no such session), or refuses
    /// past a bound with nothing changed.
    pub fn set_attr(&mut self, id: u64, key: &str, value: &[u8]) -> Result<bool, AttrLimit> {
        if self.get(id).is_none() {
            return Ok(false);
        }
        let mut a = self.attrs.remove(&id).unwrap_or_default();
        let r = a.set(key, value);
        if !a.is_empty() {
            self.attrs.insert(id, a);
        }
        r.map(|()| true)
    }

    /// Removes an attribute of the live session `id`; whether it was there.
    pub fn remove_attr(&mut self, id: u64, key: &str) -> bool {
        let Some(a) = self.attrs.get_mut(&id) else {
            return false;
        };
        let removed = a.remove(key);
        if a.is_empty() {
            self.attrs.remove(&id);
        }
        removed
    }

    /// Ends a live session: removes it and remembers why under its digest until
    /// `until_ms` (Unix ms) at least; [`SessionTable::forget_expired`] forgets it after.
    pub fn end(&mut self, id: u64, why: InvalidReason, until_ms: u64) -> Option<Session> {
        let s = self.remove(id)?;
        self.tombs.insert(s.digest, why, until_ms);
        Some(s)
    }

    /// Remembers an ended session restored from storage (no live session is involved).
    pub fn insert_ended(&mut self, digest: Digest, why: InvalidReason, until_ms: u64) {
        self.tombs.insert(digest, why, until_ms);
    }

    /// Why the session with this digest ended, if it did and is still remembered.
    pub fn ended_reason(&self, d: &Digest) -> Option<InvalidReason> {
        self.tombs.reason(d)
    }

    /// Forgets the tombstones whose time has come by `now_ms`; returns how many.
    pub fn forget_expired(&mut self, now_ms: u64) -> usize {
        self.tombs.expire(now_ms)
    }

    /// Live sessions.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is no live session.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every live session (for snapshots; O(n), never on a per-frame path).
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.slots.iter().map(|(_, slot)| &slot.s)
    }

    /// Every remembered ended session: (digest, why, remembered until, Unix ms).
    pub fn ended_iter(&self) -> impl Iterator<Item = (Digest, InvalidReason, u64)> + '_ {
        self.tombs.iter()
    }

    /// Ended sessions still remembered.
    pub fn tombstones(&self) -> usize {
        self.tombs.len()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an arbitrary origin for made-up times
mod tests {
    use super::*;
    use crate::protocol::Token;

    fn session(t: &mut SessionTable, id: u64, tok: u8) -> Session {
        Session {
            id,
            user_id: 1,
            digest: Digest::of(&Token([tok; 32])),
            created_ms: 0,
            expires_ms: 100_000,
            saved_activity_ms: 0,
            last_activity_ms: 0,
            device: t.intern_device("c", "p"),
            peer: Peer::UNKNOWN,
            conn: None,
            timer: None,
        }
    }

    /// The per-user lists against a model (a Vec per user), through a fixed pseudo-random
    /// mix of inserts and removals over five users: order, both directions, lengths.
    #[test]
    fn user_lists_match_a_model() {
        let mut t = SessionTable::new();
        let mut model: Vec<Vec<u64>> = vec![Vec::new(); 5];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next_id = 1u64;
        for step in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let user = (x % 5) as usize;
            let live: usize = model.iter().map(Vec::len).sum();
            if live == 0 || !(x >> 8).is_multiple_of(3) {
                let mut s = session(&mut t, next_id, 0);
                s.user_id = user as u64 + 1;
                s.digest = Digest::of(&Token([0; 32]));
                s.digest.0[..8].copy_from_slice(&next_id.to_le_bytes());
                t.insert(s).unwrap();
                model[user].push(next_id);
                next_id += 1;
            } else if !model[user].is_empty() {
                let i = ((x >> 16) as usize) % model[user].len();
                let id = model[user].remove(i);
                assert_eq!(t.remove(id).unwrap().id, id);
            }
            for (u, want) in model.iter().enumerate() {
                let uid = u as u64 + 1;
                assert_eq!(t.of_user(uid).len(), want.len(), "step {step}");
                assert_eq!(&t.of_user(uid).collect::<Vec<_>>(), want, "step {step}");
                let mut back: Vec<u64> = t.of_user(uid).rev().collect();
                back.reverse();
                assert_eq!(&back, want, "step {step}");
            }
        }
        assert_eq!(t.len(), model.iter().map(Vec::len).sum::<usize>());
    }

    /// The lists of bound sessions against a model: binds, rebinds, unbinds and removals
    /// in a fixed pseudo-random mix over four users; newest bound first.
    #[test]
    fn bound_lists_match_a_model() {
        use std::num::NonZeroU32;
        let conn = |n: u64| ConnId {
            index: n as u32,
            generation: NonZeroU32::MIN,
        };
        let mut t = SessionTable::new();
        // per user: live ids, and bound (id, conn) in bind order
        let mut live: Vec<Vec<u64>> = vec![Vec::new(); 4];
        let mut bound: Vec<Vec<(u64, ConnId)>> = vec![Vec::new(); 4];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next_id = 1u64;
        for step in 0..3_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 4) as usize;
            let pick = |v: &Vec<u64>| v[((x >> 20) as usize) % v.len()];
            match (x >> 8) % 5 {
                0 | 1 => {
                    let mut s = session(&mut t, next_id, 0);
                    s.user_id = u as u64 + 1;
                    s.digest.0[..8].copy_from_slice(&next_id.to_le_bytes());
                    t.insert(s).unwrap();
                    live[u].push(next_id);
                    next_id += 1;
                }
                2 if !live[u].is_empty() => {
                    let id = pick(&live[u]);
                    let c = conn(step);
                    assert!(t.bind(id, c));
                    bound[u].retain(|&(s, _)| s != id);
                    bound[u].push((id, c));
                }
                3 if !live[u].is_empty() => {
                    let id = pick(&live[u]);
                    let was = bound[u].iter().position(|&(s, _)| s == id);
                    let got = t.unbind(id);
                    assert_eq!(got, was.map(|i| bound[u].remove(i).1), "step {step}");
                }
                4 if !live[u].is_empty() => {
                    let id = pick(&live[u]);
                    live[u].retain(|&s| s != id);
                    bound[u].retain(|&(s, _)| s != id);
                    t.remove(id).unwrap();
                }
                _ => {}
            }
            for (u, want) in bound.iter().enumerate() {
                let got: Vec<(u64, ConnId)> = t.connected_of_user(u as u64 + 1).collect();
                let mut want = want.clone();
                want.reverse();
                assert_eq!(got, want, "step {step}, user {u}");
            }
        }
    }

    #[test]
    fn insert_lookup_remove() {
        let mut t = SessionTable::new();
        let s = session(&mut t, 7, 1);
        t.insert(s).unwrap();
        let s = session(&mut t, 7, 2);
        assert!(t.insert(s).is_err(), "duplicate id");
        let s = session(&mut t, 8, 1);
        assert!(t.insert(s).is_err(), "duplicate digest");
        assert_eq!(
            t.device_labels(),
            1,
            "refused sessions give their label back"
        );
        assert_eq!(t.id_by_digest(&Digest::of(&Token([1; 32]))), Some(7));
        assert_eq!(t.device(t.get(7).unwrap()), ("c", "p"));
        assert_eq!(t.of_user(1).collect::<Vec<_>>(), [7]);
        assert_eq!(t.remove(7).unwrap().id, 7);
        assert_eq!(t.id_by_digest(&Digest::of(&Token([1; 32]))), None);
        assert!(t.is_empty());
        assert_eq!(t.of_user(1).len(), 0);
        assert_eq!(t.device_labels(), 0);
    }

    #[test]
    fn indexes_stay_right_through_slot_reuse() {
        let mut t = SessionTable::with_capacity(4);
        for i in 0..200u64 {
            let s = session(&mut t, 1000 + i, i as u8);
            t.insert(s).unwrap();
            if i % 3 == 0 {
                t.end(1000 + i, InvalidReason::Revoked, 0).unwrap();
                t.forget_expired(1000);
            }
        }
        for i in 0..200u64 {
            let d = Digest::of(&Token([i as u8; 32]));
            let live = i % 3 != 0;
            assert_eq!(t.get(1000 + i).is_some(), live, "session {i}");
            assert_eq!(t.id_by_digest(&d), live.then_some(1000 + i));
            if live {
                assert_eq!(t.get(1000 + i).unwrap().digest, d);
            }
        }
        assert_eq!(t.len(), 133);
        assert_eq!(t.iter().count(), 133);
        let s = session(&mut t, 5, 0);
        t.insert(s).unwrap();
        assert_eq!(t.id_by_digest(&Digest::of(&Token([0; 32]))), Some(5));
        t.set_device(5, "other", "os");
        assert_eq!(t.device(t.get(5).unwrap()), ("other", "os"));
        assert_eq!(t.device_labels(), 2);
    }

    #[test]
    fn ended_sessions_leave_a_tombstone_until_its_time() {
        let mut t = SessionTable::new();
        let s = session(&mut t, 7, 1);
        t.insert(s).unwrap();
        let s = session(&mut t, 8, 2);
        t.insert(s).unwrap();
        assert_eq!(t.of_user(1).collect::<Vec<_>>(), [7, 8]);
        let d = Digest::of(&Token([1; 32]));
        assert_eq!(t.end(7, InvalidReason::Revoked, 60_000).unwrap().id, 7);
        assert_eq!(t.of_user(1).collect::<Vec<_>>(), [8]);
        assert_eq!(t.id_by_digest(&d), None);
        assert_eq!(t.ended_reason(&d), Some(InvalidReason::Revoked));
        // an ended digest is not handed out again while remembered
        let s = session(&mut t, 9, 1);
        assert!(t.insert(s).is_err());
        assert_eq!(t.forget_expired(60_000), 0, "not before its time");
        assert_eq!(t.forget_expired(61_000), 1);
        assert_eq!(t.ended_reason(&d), None);
        assert_eq!(t.tombstones(), 0);
    }

    #[test]
    fn expiry_rule() {
        let t0 = Instant::now();
        let clock = WallClock::new(t0, 0);
        let idle = Duration::from_secs(30);
        let mut t = SessionTable::new();
        let mut s = session(&mut t, 1, 1);
        assert_eq!(s.deadline(idle, &clock), t0 + idle);
        assert_eq!(s.expired(t0 + Duration::from_secs(29), idle, &clock), None);
        assert_eq!(s.expired(t0 + idle, idle, &clock), Some(Expiry::Idle));
        s.last_activity_ms = 90_000;
        assert_eq!(s.deadline(idle, &clock), t0 + Duration::from_secs(100));
        assert_eq!(
            s.expired(t0 + Duration::from_secs(100), idle, &clock),
            Some(Expiry::Absolute)
        );
    }

    #[test]
    fn a_session_record_stays_small() {
        // what a live session costs besides ~10 bytes of index (issue 9's memory budget)
        assert!(size_of::<Session>() <= 120);
        assert!(
            size_of::<Slot>() <= 136,
            "the record and its links in its user's two lists"
        );
    }
}
