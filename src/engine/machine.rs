//! The connection state machine: decoding a connection's buffered frames, the one match
//! on (state, message) that is protocol.md section 4's table, the connection's deadline,
//! and the replies and moves every state shares (errors, DISCONNECT_ACK, closing,
//! detaching the session).

use std::time::Instant;

use log::{debug, info};

use super::event::{Audit, AuditKind, Event};
use super::{manage, slot, storage, End, Engine, TimerKey};
use crate::conn::{ConnId, ConnState};
use crate::protocol::{
    self, DisconnectAck, DisconnectReason, ErrorCode, Flags, Frame, GeneralFailure, HeartbeatAck,
    Message, Opcode,
};

impl Engine {
    /// Decodes and handles buffered frames of `id`, at most `frames_per_turn` of them,
    /// as one step (`durability`). After the peer's FIN, closes once none is left.
    pub(super) fn process(&mut self, id: ConnId, now: Instant) {
        self.begin_step();
        self.process_frames(id, now);
        self.end_step();
    }

    fn process_frames(&mut self, id: ConnId, now: Instant) {
        let mut handled = 0;
        loop {
            let Some(conn) = slot(&mut self.conns, id) else {
                return;
            };
            if !conn.reads_frames() {
                return;
            }
            if handled == self.cfg.frames_per_turn {
                // Fairness: others get a turn; the next turn comes back to this one.
                self.wakeups.push(id);
                return;
            }
            let Some(io) = conn.io_if_any() else {
                break;
            };
            match protocol::decode(&mut io.input, self.limits) {
                Ok(Some(frame)) => self.on_frame(id, frame, now),
                Ok(None) => break,
                Err(e) => self.on_decode_error(id, e, now),
            }
            handled += 1;
        }
        if let Some(conn) = self.conn(id) {
            if conn.input_closed && conn.reads_frames() {
                // Nothing complete is left and nothing more will come.
                debug!("peer closed conn={}", id.index);
                self.close(id, now);
            }
        }
    }

    /// The one match on (state, message): protocol.md section 4's table.
    fn on_frame(&mut self, id: ConnId, frame: Frame, now: Instant) {
        let rid = frame.request_id;
        let Some(conn) = self.conn(id) else {
            return;
        };
        match (conn.state(), frame.message) {
            // protocol.md 5.8: "Allowed in every state, without a token".
            (_, Message::DisconnectRequest(_)) => {
                self.mark_valid_streak(id);
                debug!("disconnect requested conn={}", id.index);
                self.finish(id, rid, Flags::FATAL, DisconnectReason::ClientRequest, now);
            }
            // protocol.md 4, "When storage is unavailable": refused, state unchanged.
            (state @ (ConnState::AwaitingAuth { .. } | ConnState::Active { .. }), m)
                if !self.storage_available()
                    && storage::needs_storage(
                        matches!(state, ConnState::AwaitingAuth { .. }),
                        &m,
                    ) =>
            {
                self.refuse_for_storage(id, rid, &m, now);
            }
            (&ConnState::AwaitingAuth { deadline }, Message::LoginRequest(req)) => {
                self.start_login(id, rid, req, deadline, now);
            }
            (&ConnState::AwaitingAuth { deadline }, Message::RegisterRequest(req)) => {
                self.start_register(id, rid, req, deadline, now);
            }
            (ConnState::AwaitingAuth { .. }, Message::VerifySession(v)) => {
                self.verify_session(id, rid, v, now);
            }
            (ConnState::AwaitingAuth { .. }, other) => {
                // protocol.md 4: anything else before login is "fatal AUTH_REQUIRED".
                let msg = format!("{} before login: log in first", other.opcode().name());
                self.reply_error(id, rid, ErrorCode::AuthRequired, &msg, true, now);
            }
            (ConnState::Active { .. }, Message::Heartbeat(hb)) => {
                if self.check_token(id, rid, &hb.token, now).is_some() {
                    self.stats.heartbeats += 1;
                    let server_time = self.unix_ms(now);
                    self.mark_valid_streak(id);
                    self.send(
                        id,
                        rid,
                        Flags::NONE,
                        &Message::HeartbeatAck(HeartbeatAck { server_time }),
                        now,
                    );
                }
            }
            (ConnState::Active { .. }, Message::LogoutRequest(req)) => {
                if let Some(sid) = self.check_token(id, rid, &req.token, now) {
                    self.mark_valid_streak(id);
                    self.logout(id, rid, sid, now);
                }
            }
            (ConnState::Active { .. }, other) if manage::is_management(&other) => {
                self.manage(id, rid, other, now);
            }
            (ConnState::Active { .. }, other) => {
                let msg = format!("{} is not allowed after login", other.opcode().name());
                self.reply_error(id, rid, ErrorCode::UnexpectedFrame, &msg, false, now);
            }
            // `process` takes no frames in these states.
            (
                ConnState::Authenticating(_)
                | ConnState::ChangingPassword { .. }
                | ConnState::Closing,
                _,
            ) => {}
        }
    }

    fn on_decode_error(&mut self, id: ConnId, e: protocol::DecodeError, now: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let before_login = matches!(conn.state(), ConnState::AwaitingAuth { .. });
        // protocol.md 2: "A connection that is not yet logged in gets every error in steps
        // 5 to 7 as a fatal error, except errors in the payload of a frame allowed before
        // login".
        let allowed_before_login = [
            Opcode::LoginRequest,
            Opcode::RegisterRequest,
            Opcode::VerifySession,
        ]
        .iter()
        .any(|&op| op as u8 == e.opcode);
        let fatal = e.kind.breaks_framing() || (before_login && !allowed_before_login);
        if e.kind.breaks_framing() {
            if let Some(io) = conn.io_if_any() {
                io.input.clear();
            }
        }
        self.stats.protocol_errors += 1;
        debug!("decode error conn={}: {}", id.index, e);
        let (code, msg) = (e.kind.code(), e.kind.message());
        if e.kind.unreadable_header() {
            // Not a frame of this protocol: an answer to the connection, not to a request.
            let failure = Message::GeneralFailure(GeneralFailure::new(code, msg));
            self.send(id, 0, Flags::PUSH | Flags::FATAL, &failure, now);
            self.close(id, now);
            return;
        }
        self.reply_error(id, e.request_id, code, msg, fatal, now);
    }

    /// The connection's one timer fired: the login deadline, or the heartbeat timeout
    /// and the bound session's expiry (the earlier of the two: `activate`).
    pub(super) fn conn_timer(&mut self, id: ConnId, now: Instant) {
        let hb_timeout = self.cfg.heartbeat_timeout;
        let idle = self.cfg.session_idle;
        let Some(conn) = slot(&mut self.conns, id) else {
            return;
        };
        conn.timer = None;
        let due = match *conn.state() {
            ConnState::AwaitingAuth { deadline } => deadline,
            ConnState::Active { session_id } | ConnState::ChangingPassword { session_id, .. } => {
                // The bound session's expiry rides on this timer (see `activate`), and so
                // does the heartbeat timeout: every valid request on a logged-in
                // connection carries the token, whose check stores the session's last
                // activity (protocol.md 7).
                match self.sessions.get(session_id) {
                    // bound to no session: nothing keeps it alive
                    None => now,
                    Some(s) => {
                        if let Some(why) = s.expired(now, idle, &self.clock) {
                            self.end_session(session_id, End::Expired(why), 0, now);
                            return;
                        }
                        let active = self.clock.instant(s.last_activity_ms);
                        (active + hb_timeout).min(s.deadline(idle, &self.clock))
                    }
                }
            }
            ConnState::Authenticating(_) | ConnState::Closing => return,
        };
        if now < due {
            // Lazy reset: requests since the timer was set only stored the activity.
            let t = self.wheel.insert(due, TimerKey::Conn(id));
            if let Some(conn) = self.conn_mut(id) {
                conn.timer = Some(t);
            }
            return;
        }
        let peer = conn.peer;
        if let Some(session_id) = conn.session_id() {
            self.stats.idle_timeouts += 1;
            info!(
                "heartbeat timeout session={:016x} peer={} after {:?}",
                session_id, peer, hb_timeout
            );
            self.push_close(id, DisconnectReason::IdleTimeout, now);
        } else {
            self.stats.login_timeouts += 1;
            info!("login timeout peer={peer}");
            self.push_close(id, DisconnectReason::LoginTimeout, now);
        }
    }

    // ---- replies and moves every state shares --------------------------------------------

    /// Resets the error streak (a frame was answered with something else than an error).
    pub(super) fn mark_valid_streak(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.consecutive_errors = 0;
        }
    }

    /// Queues a GENERAL_FAILURE. Fatal ones close the connection; the error streak closes
    /// it too once it reaches the limit.
    pub(super) fn reply_error(
        &mut self,
        id: ConnId,
        rid: u32,
        code: ErrorCode,
        msg: &str,
        fatal: bool,
        now: Instant,
    ) {
        let max = self.cfg.max_consecutive_errors;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.consecutive_errors = conn.consecutive_errors.saturating_add(1);
        let streak = u32::from(conn.consecutive_errors);
        let flags = if fatal { Flags::FATAL } else { Flags::NONE };
        let failure = Message::GeneralFailure(GeneralFailure::new(code, msg));
        self.send(id, rid, flags, &failure, now);
        if fatal {
            self.close(id, now);
        } else if streak >= max {
            let notice = Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::TooManyErrors,
                "too many errors in a row",
            ));
            self.send(id, 0, Flags::PUSH | Flags::FATAL, &notice, now);
            self.close(id, now);
        }
    }

    /// Replies DISCONNECT_ACK and closes.
    pub(super) fn finish(
        &mut self,
        id: ConnId,
        rid: u32,
        flags: Flags,
        reason: DisconnectReason,
        now: Instant,
    ) {
        let ack = Message::DisconnectAck(DisconnectAck { reason });
        self.send(id, rid, flags, &ack, now);
        self.close(id, now);
    }

    /// Pushes DISCONNECT_ACK and closes.
    pub(super) fn push_close(&mut self, id: ConnId, reason: DisconnectReason, now: Instant) {
        self.finish(id, 0, Flags::PUSH | Flags::FATAL, reason, now);
    }

    /// Moves to Closing: nothing more is read or sent; the socket closes once the output
    /// is flushed. The session, if any, survives detached.
    pub(super) fn close(&mut self, id: ConnId, now: Instant) {
        self.detach(id, now);
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let was_hashing = conn.close();
        let ip = conn.peer.ip();
        let timer = conn.timer.take();
        if was_hashing {
            self.policy.hash_done(ip);
        }
        if let Some(t) = timer {
            self.wheel.cancel(t);
        }
        self.flag(id);
    }

    /// Unbinds the connection's session, if it is bound to this connection. The connection
    /// keeps its state; callers move it on (to Closing, or AwaitingAuth after a logout).
    pub(super) fn detach(&mut self, id: ConnId, now: Instant) {
        self.unbind(id, true, now);
    }

    /// Unbinds `id`'s session from it because the session is ending: nothing is journaled
    /// or audited for the detach (the end says it all).
    pub(super) fn detach_for_end(&mut self, id: ConnId, now: Instant) {
        self.unbind(id, false, now);
    }

    fn unbind(&mut self, id: ConnId, lives_on: bool, now: Instant) {
        let Some(sid) = self.conn(id).and_then(|c| c.session_id()) else {
            return;
        };
        let at = self.unix_ms(now);
        if self.sessions.get(sid).and_then(|s| s.conn) != Some(id) {
            return;
        }
        self.sessions.unbind(sid);
        self.attached -= 1;
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        debug!("session={:016x} detached", sid);
        if !lives_on {
            return;
        }
        // Last activity is persisted coarsely: here, and every `activity_save_interval`
        // while requests come (`check_token`).
        let last = s.last_activity_ms;
        s.saved_activity_ms = last;
        let (user_id, peer) = (s.user_id, s.peer);
        let mut a = Audit::new(AuditKind::SessionDetached, user_id, sid, peer.to_string());
        if let Some(s) = self.sessions.get(sid) {
            let (client, platform) = self.sessions.device(s);
            a = a.device(client, platform);
        }
        self.watch_session(sid);
        self.events.push(Event::SessionActivity {
            id: sid,
            at_ms: last.min(at),
        });
        self.audit(a, now);
    }

    /// Appends an audit record, stamped `now` (journaled with the turn's commit).
    pub(super) fn audit(&mut self, mut a: Audit, now: Instant) {
        a.at_ms = self.unix_ms(now);
        self.audit_log.push(&a);
        self.events.push(Event::Audit(a));
    }
}
