//! How sessions end: logout, expiry (idle or absolute), revocation; the token check on
//! every request; the tombstones that let a dead token say why it is dead; and the summary
//! log line.

use std::time::Instant;

use log::{info, warn};

use super::event::{Audit, AuditKind, EndKind, Event};
use super::{End, Engine, TimerKey};
use crate::conn::ConnId;
use crate::protocol::{
    ErrorCode, ExpiredReason, Flags, InvalidReason, LogoutSuccess, Message, RevokeReason,
    SessionExpired, SessionRevoked, Token,
};
use crate::session::{Digest, Expiry};

/// Who caused a revocation: the device and address of the login or connection behind it
/// (SESSION_REVOKED's `by_*` fields).
pub(super) struct By<'a> {
    pub client: &'a str,
    pub platform: &'a str,
    pub address: &'a str,
}

/// How long a node that does not sweep a due session waits before it looks again.
const SWEEP_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

impl Engine {
    /// protocol.md 6, the token check: the token is this connection's session's (its tag,
    /// or failing that its digest), then expiry. Returns the session id when it is;
    /// otherwise the answer is sent.
    pub(super) fn check_token(
        &mut self,
        id: ConnId,
        rid: u32,
        tok: &Token,
        now: Instant,
    ) -> Option<u64> {
        let conn = self.conn(id)?;
        let sid = conn.session_id()?;
        // The bound connection's tag first (`session::token`): no digest for the usual
        // case, a right token on its own connection.
        let tagged = self
            .token_key
            .as_ref()
            .is_some_and(|k| k.tag(tok) == conn.token_tag);
        let idle = self.cfg.session_idle;
        let Some(session) = self.sessions.get_mut(sid) else {
            // An Active connection always has its session; if not, say so rather than panic.
            log::error!("conn={} is active without its session", id.index);
            let code = ErrorCode::InternalError;
            self.reply_error(id, rid, code, "session missing", true, now);
            return None;
        };
        if !tagged {
            let d = Digest::of(tok);
            if !session.digest.ct_eq(&d) {
                let (code, msg) = if self.sessions.id_by_digest(&d).is_some() {
                    (ErrorCode::TokenMismatch, "token belongs to another session")
                } else {
                    (ErrorCode::InvalidToken, "unknown token")
                };
                self.reply_error(id, rid, code, msg, false, now);
                return None;
            }
        }
        if let Some(why) = session.expired(now, idle, &self.clock) {
            // Due but its timer has not fired yet (within a tick): end it now, answering
            // this request with SESSION_EXPIRED.
            self.end_session(sid, End::Expired(why), rid, now);
            return None;
        }
        let at_ms = self.clock.ms_ceil(now);
        session.last_activity_ms = at_ms;
        if at_ms.saturating_sub(session.saved_activity_ms)
            >= self.cfg.activity_save_interval.as_millis() as u64
        {
            session.saved_activity_ms = at_ms;
            // Nothing the client is told depends on this record: its reply is not held.
            self.record_quietly(Event::SessionActivity { id: sid, at_ms });
        }
        Some(sid)
    }

    pub(super) fn logout(&mut self, id: ConnId, rid: u32, sid: u64, now: Instant) {
        self.end_session(sid, End::LoggedOut, rid, now);
        self.stats.logouts += 1;
        self.logged_out(id, now);
        self.send(
            id,
            rid,
            Flags::NONE,
            &Message::LogoutSuccess(LogoutSuccess { session_id: sid }),
            now,
        );
    }

    /// Ends a live session for good. Its token is remembered as dead (with the reason) for
    /// at least `tombstone_min` and at least until it would have expired. A connection
    /// bound to it is told why (SESSION_EXPIRED or SESSION_REVOKED, FATAL; as the reply to
    /// `rid` when a request found it, as a push when `rid` is 0) and closes; after a logout
    /// the caller answers instead.
    pub(super) fn end_session(&mut self, sid: u64, end: End, rid: u32, now: Instant) {
        let bound = self
            .sessions
            .get(sid)
            .and_then(|s| s.conn)
            .filter(|&c| self.conn(c).and_then(|c| c.session_id()) == Some(sid));
        if let Some(cid) = bound {
            self.detach_for_end(cid, now);
        }
        let why = match &end {
            End::LoggedOut => InvalidReason::LoggedOut,
            End::Expired(_) => InvalidReason::Expired,
            End::Revoked { .. } => InvalidReason::Revoked,
        };
        let at_ms = self.unix_ms(now);
        let kind = match &end {
            End::LoggedOut => EndKind::LoggedOut,
            End::Expired(Expiry::Idle) => EndKind::ExpiredIdle,
            End::Expired(Expiry::Absolute) => EndKind::ExpiredAbsolute,
            End::Revoked { .. } => EndKind::Revoked,
        };
        let Some((expires_ms, client, platform)) = self.sessions.get(sid).map(|s| {
            // Read now: the table lets go of the device label when the session ends.
            let (c, p) = self.sessions.device(s);
            (s.expires_ms, c.to_owned(), p.to_owned())
        }) else {
            return;
        };
        let keep_until_ms = expires_ms.max(at_ms + self.cfg.tombstone_min.as_millis() as u64);
        let Some(s) = self.sessions.end(sid, why, keep_until_ms) else {
            return;
        };
        let ends = &mut self.stats.session_ends;
        match &end {
            End::LoggedOut => ends.logged_out += 1,
            End::Expired(Expiry::Idle) => ends.expired_idle += 1,
            End::Expired(Expiry::Absolute) => ends.expired_absolute += 1,
            End::Revoked { reason, .. } => {
                if let Some(i) = RevokeReason::ALL.iter().position(|r| r == reason) {
                    ends.revoked[i] += 1;
                }
            }
        }
        if let Some(t) = s.timer {
            self.wheel.cancel(t);
        }
        self.events.push(Event::SessionEnded {
            id: sid,
            kind,
            at_ms,
        });
        let a = Audit::new(AuditKind::LoggedOut, s.user_id, sid, s.peer.to_string())
            .device(&client, &platform);
        let a = match &end {
            End::LoggedOut => a,
            End::Expired(Expiry::Idle) => Audit {
                kind: AuditKind::ExpiredIdle,
                ..a.reason(ExpiredReason::Idle.to_u16())
            },
            End::Expired(Expiry::Absolute) => Audit {
                kind: AuditKind::ExpiredAbsolute,
                ..a.reason(ExpiredReason::Absolute.to_u16())
            },
            End::Revoked { reason, by } => {
                let note = format!(
                    "{} by {} ({} {})",
                    reason.name(),
                    by.address,
                    by.client,
                    by.platform
                );
                Audit {
                    kind: AuditKind::Revoked,
                    ..a.reason(reason.to_u16()).actor(by.clone()).note(note)
                }
            }
        };
        self.audit(a, now);
        let user = self
            .users
            .get(s.user_id)
            .map(|u| u.username.clone())
            .unwrap_or_default();
        match end {
            End::LoggedOut => {
                info!("logout user={} session={:016x} peer={}", user, sid, s.peer);
            }
            End::Expired(why) => {
                self.stats.sessions_expired += 1;
                self.summary_expired += 1;
                let reason = match why {
                    Expiry::Idle => ExpiredReason::Idle,
                    Expiry::Absolute => ExpiredReason::Absolute,
                };
                info!(
                    "session expired ({}) user={} session={:016x}",
                    reason.name(),
                    user,
                    sid
                );
                if let Some(cid) = bound {
                    let flags = if rid == 0 {
                        Flags::PUSH | Flags::FATAL
                    } else {
                        Flags::FATAL
                    };
                    let msg = Message::SessionExpired(SessionExpired {
                        session_id: sid,
                        reason,
                    });
                    self.send(cid, rid, flags, &msg, now);
                    self.close(cid, now);
                }
            }
            End::Revoked { reason, by } => {
                self.stats.revocations += 1;
                info!(
                    "session revoked ({}) user={} session={:016x} by {}",
                    reason.name(),
                    user,
                    sid,
                    by.address
                );
                if let Some(cid) = bound {
                    let by = By {
                        client: &by.client,
                        platform: &by.platform,
                        address: &by.address,
                    };
                    self.push_revoked(cid, sid, reason, &by, now);
                    self.close(cid, now);
                }
            }
        }
    }

    /// Queues SESSION_REVOKED (FATAL | PUSH) on `cid`, saying `by` whom and when (`now`);
    /// the caller closes it.
    pub(super) fn push_revoked(
        &mut self,
        cid: ConnId,
        sid: u64,
        reason: RevokeReason,
        by: &By<'_>,
        now: Instant,
    ) {
        let msg = Message::SessionRevoked(SessionRevoked {
            session_id: sid,
            reason,
            by_client: by.client.into(),
            by_platform: by.platform.into(),
            by_address: by.address.into(),
            at: self.unix_ms(now),
        });
        self.send(cid, 0, Flags::PUSH | Flags::FATAL, &msg, now);
    }

    pub(super) fn session_timer(&mut self, sid: u64, now: Instant) {
        let idle = self.cfg.session_idle;
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        s.timer = None;
        match s.expired(now, idle, &self.clock) {
            // Lazy reset: activity since the timer was set only stored a timestamp.
            None => self.watch_session(sid),
            Some(why) if self.sweeps(sid) => self.end_session(sid, End::Expired(why), 0, now),
            // Another node's to end (`remote`): looked at again later, in case that
            // node leaves.
            Some(_) => {
                let t = self.wheel.insert(now + SWEEP_RETRY, TimerKey::Session(sid));
                if let Some(s) = self.sessions.get_mut(sid) {
                    s.timer = Some(t);
                }
            }
        }
    }

    /// Gives a session not bound to a connection its own expiry timer, unless it has one
    /// (a bound session's expiry rides on its connection's timer: `activate`).
    pub(super) fn watch_session(&mut self, sid: u64) {
        let Some(s) = self.sessions.get(sid) else {
            return;
        };
        if s.timer.is_some() {
            return;
        }
        let due = s.deadline(self.cfg.session_idle, &self.clock);
        let t = self.wheel.insert(due, TimerKey::Session(sid));
        if let Some(s) = self.sessions.get_mut(sid) {
            s.timer = Some(t);
        }
    }

    /// Logs what changed since the last line, at most once per `summary_interval`, and
    /// nothing when nothing happened.
    pub(super) fn summary_timer(&mut self, now: Instant) {
        let snapshot = (self.stats, self.sessions.len(), self.attached);
        if snapshot != self.last_summary {
            let live = self.sessions.len();
            info!(
                "sessions: {} active, {} detached, {} expired since last line; {} connections",
                self.attached,
                live - self.attached.min(live),
                self.summary_expired,
                self.conns.len()
            );
            let busy = self.stats.logins_busy - self.last_summary.0.logins_busy;
            if busy > 0 {
                // One line for an overload, not one per refused request.
                warn!("{busy} requests refused with SERVER_BUSY since last line (hash queue full)");
            }
            self.summary_expired = 0;
            self.last_summary = (self.stats, self.sessions.len(), self.attached);
        }
        self.wheel
            .insert(now + self.cfg.summary_interval, TimerKey::Summary);
    }
}
