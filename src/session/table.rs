//! The session table: live sessions by public id and by token digest, and the expiry rule.
//!
//! Owns: which sessions exist, which connection (if any) each is bound to, and when each
//! expires. Pure logic: times come in as arguments; the timer entries that drive expiry
//! belong to the engine, which stores their ids here.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use super::token::Digest;
use crate::conn::ConnId;
use crate::protocol::InvalidReason;
use crate::timer::TimerId;

/// One login session.
#[derive(Debug)]
pub struct Session {
    /// Public id (protocol.md `session_id`): random, not a secret.
    pub id: u64,
    pub user_id: u64,
    pub digest: Digest,
    pub created: Instant,
    /// Unix ms of `created`.
    pub created_ms: u64,
    /// Last valid request carrying this session's token. Heartbeats only store this; the
    /// expiry timer reads it when it fires (lazy reset).
    pub last_activity: Instant,
    /// The last activity the journal holds (persisted coarsely: at detach, and at most
    /// every `activity_save_interval` while requests keep coming).
    pub saved_activity: Instant,
    /// Absolute expiry.
    pub expires_at: Instant,
    pub expires_ms: u64,
    pub client: String,
    pub platform: String,
    pub peer: SocketAddr,
    /// The connection this session is bound to, if one is live.
    pub conn: Option<ConnId>,
    /// The engine's expiry timer for this session.
    pub timer: Option<TimerId>,
}

/// Why a session ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Idle,
    Absolute,
}

impl Session {
    /// When the session expires if nothing else happens: the earlier of its absolute expiry
    /// and `idle` after its last activity.
    pub fn deadline(&self, idle: Duration) -> Instant {
        self.expires_at.min(self.last_activity + idle)
    }

    /// Unix ms of `last_activity` (derived from `created`, whose wall time is known).
    pub fn last_activity_ms(&self) -> u64 {
        self.created_ms
            + self
                .last_activity
                .saturating_duration_since(self.created)
                .as_millis() as u64
    }

    /// Whether the session has expired at `now`, and why. Absolute wins a tie: it is the
    /// stricter promise.
    pub fn expired(&self, now: Instant, idle: Duration) -> Option<Expiry> {
        if now >= self.expires_at {
            Some(Expiry::Absolute)
        } else if now >= self.last_activity + idle {
            Some(Expiry::Idle)
        } else {
            None
        }
    }
}

/// `insert` found the session's id or token digest already in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collision;

/// Sessions by id, with indexes by token digest and by user, and the tombstones of ended
/// sessions (so a resume of a revoked or logged-out token can say why it fails).
#[derive(Debug, Default)]
pub struct SessionTable {
    by_id: HashMap<u64, Session>,
    by_digest: HashMap<Digest, u64>,
    /// Live session ids per user, oldest first (a user has a handful at most).
    by_user: HashMap<u64, Vec<u64>>,
    ended: HashMap<Digest, InvalidReason>,
    ended_by_id: HashMap<u64, Digest>,
}

impl SessionTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a session. Refuses it if its id or digest is already present, live or ended (a
    /// 2^-64 or 2^-256 event; the caller draws again).
    pub fn insert(&mut self, s: Session) -> Result<(), Collision> {
        if self.by_id.contains_key(&s.id)
            || self.by_digest.contains_key(&s.digest)
            || self.ended_by_id.contains_key(&s.id)
            || self.ended.contains_key(&s.digest)
        {
            return Err(Collision);
        }
        self.by_digest.insert(s.digest, s.id);
        self.by_user.entry(s.user_id).or_default().push(s.id);
        self.by_id.insert(s.id, s);
        Ok(())
    }

    pub fn get(&self, id: u64) -> Option<&Session> {
        self.by_id.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Session> {
        self.by_id.get_mut(&id)
    }

    pub fn id_by_digest(&self, d: &Digest) -> Option<u64> {
        self.by_digest.get(d).copied()
    }

    /// Live sessions of `user_id`, oldest first.
    pub fn of_user(&self, user_id: u64) -> &[u64] {
        self.by_user.get(&user_id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Removes a live session without a trace (tests, and sessions that never reached a
    /// client).
    pub fn remove(&mut self, id: u64) -> Option<Session> {
        let s = self.by_id.remove(&id)?;
        self.by_digest.remove(&s.digest);
        if let Some(v) = self.by_user.get_mut(&s.user_id) {
            v.retain(|&x| x != id);
            if v.is_empty() {
                self.by_user.remove(&s.user_id);
            }
        }
        Some(s)
    }

    /// Ends a live session: removes it and remembers why under its digest until
    /// [`SessionTable::forget`].
    pub fn end(&mut self, id: u64, why: InvalidReason) -> Option<Session> {
        let s = self.remove(id)?;
        self.ended.insert(s.digest, why);
        self.ended_by_id.insert(id, s.digest);
        Some(s)
    }

    /// Remembers an ended session restored from storage (no live session is involved).
    pub fn insert_ended(&mut self, id: u64, digest: Digest, why: InvalidReason) {
        self.ended.insert(digest, why);
        self.ended_by_id.insert(id, digest);
    }

    /// Why the session with this digest ended, if it did and is still remembered.
    pub fn ended_reason(&self, d: &Digest) -> Option<InvalidReason> {
        self.ended.get(d).copied()
    }

    /// Drops the tombstone of an ended session.
    pub fn forget(&mut self, id: u64) {
        if let Some(d) = self.ended_by_id.remove(&id) {
            self.ended.remove(&d);
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every live session (for snapshots; O(n), never on a per-frame path).
    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.by_id.values()
    }

    /// Every remembered ended session: (id, digest, why).
    pub fn ended_iter(&self) -> impl Iterator<Item = (u64, Digest, InvalidReason)> + '_ {
        self.ended_by_id
            .iter()
            .filter_map(|(&id, d)| self.ended.get(d).map(|&why| (id, *d, why)))
    }

    /// Ended sessions still remembered.
    pub fn tombstones(&self) -> usize {
        self.ended.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Token;

    fn session(id: u64, t0: Instant, tok: u8) -> Session {
        Session {
            id,
            user_id: 1,
            digest: Digest::of(&Token([tok; 32])),
            created: t0,
            created_ms: 0,
            last_activity: t0,
            saved_activity: t0,
            expires_at: t0 + Duration::from_secs(100),
            expires_ms: 100_000,
            client: String::new(),
            platform: String::new(),
            peer: "127.0.0.1:1".parse().unwrap(),
            conn: None,
            timer: None,
        }
    }

    #[test]
    fn insert_lookup_remove() {
        let t0 = Instant::now();
        let mut t = SessionTable::new();
        t.insert(session(7, t0, 1)).unwrap();
        assert!(t.insert(session(7, t0, 2)).is_err(), "duplicate id");
        assert!(t.insert(session(8, t0, 1)).is_err(), "duplicate digest");
        assert_eq!(t.id_by_digest(&Digest::of(&Token([1; 32]))), Some(7));
        assert_eq!(t.of_user(1), [7]);
        assert_eq!(t.remove(7).unwrap().id, 7);
        assert_eq!(t.id_by_digest(&Digest::of(&Token([1; 32]))), None);
        assert!(t.is_empty());
        assert!(t.of_user(1).is_empty());
    }

    #[test]
    fn ended_sessions_leave_a_tombstone_until_forgotten() {
        let t0 = Instant::now();
        let mut t = SessionTable::new();
        t.insert(session(7, t0, 1)).unwrap();
        t.insert(session(8, t0, 2)).unwrap();
        assert_eq!(t.of_user(1), [7, 8]);
        let d = Digest::of(&Token([1; 32]));
        assert_eq!(t.end(7, InvalidReason::Revoked).unwrap().id, 7);
        assert_eq!(t.of_user(1), [8]);
        assert_eq!(t.id_by_digest(&d), None);
        assert_eq!(t.ended_reason(&d), Some(InvalidReason::Revoked));
        // an ended id or digest is not handed out again while remembered
        assert!(t.insert(session(7, t0, 3)).is_err());
        assert!(t.insert(session(9, t0, 1)).is_err());
        t.forget(7);
        assert_eq!(t.ended_reason(&d), None);
        assert_eq!(t.tombstones(), 0);
    }

    #[test]
    fn expiry_rule() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(30);
        let mut s = session(1, t0, 1);
        assert_eq!(s.deadline(idle), t0 + idle);
        assert_eq!(s.expired(t0 + Duration::from_secs(29), idle), None);
        assert_eq!(s.expired(t0 + idle, idle), Some(Expiry::Idle));
        s.last_activity = t0 + Duration::from_secs(90);
        assert_eq!(s.deadline(idle), t0 + Duration::from_secs(100));
        assert_eq!(
            s.expired(t0 + Duration::from_secs(100), idle),
            Some(Expiry::Absolute)
        );
    }
}
