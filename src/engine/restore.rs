//! Startup and snapshots: bringing the durable state back into the engine (users,
//! sessions with their deadlines recomputed, tombstones, the audit window), and writing
//! the engine's state out as events for a snapshot.

use std::net::SocketAddr;
use std::time::Instant;

use super::event::{Audit, EndKind, EndedSession, Event, StoredSession};
use super::replay::State;
use super::{End, Engine};
use crate::conn::Peer;
use crate::protocol::InvalidReason;

impl Engine {
    /// Brings back what a replay rebuilt (`state`: the users are already the engine's
    /// own, from [`Engine::new`]; this adds the rest): the tombstones of ended sessions,
    /// the newest audit records, and the live sessions, each with its deadlines
    /// recomputed from the stored wall-clock times; one that expired while the server
    /// was down is ended now (and the end journaled with the first batch).
    pub fn restore(&mut self, state: State, now: Instant) {
        for ended in state.ended.into_values() {
            self.restore_ended(ended, now);
        }
        self.restore_audit(state.audit);
        for (user, (failures, until_ms)) in state.streaks {
            let until = (until_ms > 0).then(|| self.clock.instant(until_ms));
            self.policy.restore_streak(user, failures, until);
        }
        for (user, (day, count)) in state.daily {
            self.policy.restore_daily(user, day, count);
        }
        for (_, s) in state.sessions {
            self.restore_session(s, now);
        }
        // Only those of sessions still live (one that expired while the server was down
        // has just ended, and its attributes with it).
        for (id, attrs) in state.attrs {
            for (key, value) in attrs.iter() {
                let _ = self.sessions.set_attr(id, key, value);
            }
        }
    }

    /// Audit records replayed at startup, oldest first (the newest `audit_window` stay).
    fn restore_audit(&mut self, records: impl IntoIterator<Item = Audit>) {
        for a in records {
            self.audit_log.push(&a);
        }
    }

    /// Brings back a session from the journal at startup, with its deadlines recomputed
    /// from the stored wall-clock times. One that expired while the server was down is
    /// ended now (and the end journaled).
    fn restore_session(&mut self, s: StoredSession, now: Instant) {
        if self.users.get(s.user_id).is_none() {
            return;
        }
        let session = self.detached_session(&s);
        let (sid, expired) = (
            session.id,
            session.expired(now, self.cfg.session_idle, &self.clock),
        );
        if self.sessions.insert(session).is_err() {
            return;
        }
        match expired {
            Some(why) => self.end_session(sid, End::Expired(why), 0, now),
            None => self.watch_session(sid),
        }
    }

    /// A stored session as the table holds it, bound to no connection here (at startup,
    /// or made by another node of a cluster).
    pub(super) fn detached_session(&mut self, s: &StoredSession) -> crate::session::Session {
        let peer = s
            .peer
            .parse::<SocketAddr>()
            .map(Peer::from)
            .unwrap_or(Peer::UNKNOWN);
        crate::session::Session {
            id: s.id,
            user_id: s.user_id,
            digest: s.digest,
            created_ms: s.created_ms,
            expires_ms: s.expires_ms,
            saved_activity_ms: s.last_activity_ms,
            last_activity_ms: s.last_activity_ms,
            device: self.sessions.intern_device(&s.client, &s.platform),
            peer,
            conn: None,
            timer: None,
        }
    }

    /// Brings back the tombstone of a session that ended before a restart, so resuming
    /// its token still says why; forgotten at the usual time (`tombstone_min` after the
    /// end, and not before the session would have expired).
    fn restore_ended(&mut self, ended: EndedSession, now: Instant) {
        let now_ms = self.unix_ms(now);
        let keep_until_ms = ended
            .expires_ms
            .max(ended.ended_ms + self.cfg.tombstone_min.as_millis() as u64);
        if keep_until_ms <= now_ms {
            return;
        }
        let why = invalid_reason(ended.kind);
        self.sessions.insert_ended(ended.digest, why, keep_until_ms);
    }

    /// Everything durable as events, for a snapshot: each user (with its last login),
    /// each live session (with its last activity), each remembered tombstone, each
    /// account's failure streak and daily login count. O(n): the
    /// server calls it only when the journal is compacted.
    pub fn snapshot_events(&self, now: Instant) -> Vec<Event> {
        let now_ms = self.unix_ms(now);
        let mut out = Vec::with_capacity(self.users.len() + self.sessions.len());
        for u in self.users.all() {
            out.push(Event::UserCreated(u.clone()));
        }
        // Deleted accounts are not in a snapshot; their ids stay taken.
        if let Some(id) = self.users.next_id_beyond_accounts() {
            out.push(Event::NextUserId { id });
        }
        out.extend(super::replay::profile_and_role_events(&self.users));
        for s in self.sessions.iter() {
            let last = s.last_activity_ms;
            let (client, platform) = self.sessions.device(s);
            out.push(Event::SessionCreated(StoredSession {
                id: s.id,
                user_id: s.user_id,
                digest: s.digest,
                client: client.to_owned(),
                platform: platform.to_owned(),
                peer: s.peer.to_string(),
                created_ms: s.created_ms,
                last_activity_ms: last,
                expires_ms: s.expires_ms,
            }));
            if let Some(attrs) = self.sessions.attrs(s.id) {
                out.extend(attrs.iter().map(|(key, value)| Event::SessionAttr {
                    id: s.id,
                    key: key.to_owned(),
                    value: Some(value.to_vec()),
                }));
            }
        }
        let remembered = self.sessions.ended_iter().filter(|t| t.2 > now_ms);
        for (digest, why, keep_until_ms) in remembered {
            let kind = match why {
                InvalidReason::LoggedOut => EndKind::LoggedOut,
                InvalidReason::Expired => EndKind::ExpiredIdle,
                _ => EndKind::Revoked,
            };
            out.push(Event::Tombstone {
                id: 0, // a dead session's id is not kept (session/tombstones.rs)
                digest,
                kind,
                keep_until_ms,
            });
        }
        for (user_id, failures, until) in self.policy.streaks() {
            let until_ms = until.map_or(0, |t| self.clock.ms_ceil(t));
            out.push(Event::FailureStreak {
                user_id,
                failures,
                until_ms,
            });
        }
        for (user_id, day, count) in self.policy.daily_counts() {
            out.push(Event::DailyLogins {
                user_id,
                day,
                count,
            });
        }
        out
    }
}

/// What a resume of a session that ended so is told (SESSION_INVALID's reason).
pub(super) fn invalid_reason(kind: EndKind) -> InvalidReason {
    match kind {
        EndKind::LoggedOut => InvalidReason::LoggedOut,
        EndKind::ExpiredIdle | EndKind::ExpiredAbsolute => InvalidReason::Expired,
        EndKind::Revoked => InvalidReason::Revoked,
    }
}
