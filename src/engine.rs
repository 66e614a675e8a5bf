//! The sans-IO server: every protocol decision, with bytes and `now` in and frames, hash
//! jobs and deadlines out.
//!
//! Owns the connection slab, the user and session tables, the timer wheel and the one
//! `match` of (state, message) that is the connection state machine of protocol.md
//! section 4. Does not own sockets, threads or the clock: the `server` module reads bytes
//! into [`Engine::input_mut`], calls [`Engine::process`], writes [`Engine::output_mut`],
//! runs the [`HashJob`]s it takes from [`Engine::take_hash_jobs`] and feeds the answers
//! back, and calls [`Engine::on_timers`] at [`Engine::next_deadline`]. Tests drive the same
//! calls with made-up `Instant`s.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log::{debug, error, info, warn};
use slab::Slab;

use crate::auth::{HashJob, HashResult, JobKind, JobOutcome, PasswordRecord};
use crate::conn::{Conn, ConnId, ConnState, PendingLogin};
use crate::protocol::{
    self, DecodeLimits, DisconnectAck, DisconnectReason, ErrorCode, Flags, Frame, GeneralFailure,
    HeartbeatAck, LoginFailure, LoginFailureReason, LoginRequest, LoginSuccess, LogoutSuccess,
    Message, Opcode, Token,
};
use crate::session::{token, Digest, Expiry, Session, SessionTable, UserTable};
use crate::timer::TimerWheel;

/// Deadlines and limits of the protocol (protocol.md section 7) and of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    /// protocol.md 7 "login deadline".
    pub login_timeout: Duration,
    pub session_idle: Duration,
    pub session_lifetime: Duration,
    /// Maximum frame size, header included.
    pub max_frame: usize,
    /// Frames handled per connection per call to `process` before others get a turn.
    pub frames_per_turn: usize,
    /// A peer whose unsent output passes this is disconnected (it is not reading).
    pub max_output: usize,
    /// protocol.md 2: error replies in a row that close the connection.
    pub max_consecutive_errors: u32,
    /// The timer wheel's resolution.
    pub tick: Duration,
    /// `retry_after` in LOGIN_FAILURE SERVER_BUSY.
    pub busy_retry_after: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(15),
            login_timeout: Duration::from_secs(10),
            session_idle: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(24 * 60 * 60),
            max_frame: protocol::DEFAULT_MAX_FRAME,
            frames_per_turn: 64,
            max_output: 1 << 20,
            max_consecutive_errors: 16,
            tick: Duration::from_millis(10),
            busy_retry_after: Duration::from_secs(1),
        }
    }
}

/// Counters since start, for logs and (later) the admin stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub accepted: u64,
    pub logins_ok: u64,
    pub logins_failed: u64,
    pub logins_busy: u64,
    pub heartbeats: u64,
    pub logouts: u64,
    pub idle_timeouts: u64,
    pub login_timeouts: u64,
    pub sessions_expired: u64,
    pub protocol_errors: u64,
    pub output_overflows: u64,
}

/// What a wheel entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKey {
    /// The connection's login deadline or heartbeat timeout, by its state.
    Conn(ConnId),
    /// A session's idle / absolute expiry.
    Session(u64),
}

/// The sans-IO session server.
pub struct Engine {
    cfg: EngineConfig,
    limits: DecodeLimits,
    conns: Slab<Conn>,
    next_generation: u32,
    users: UserTable,
    sessions: SessionTable,
    /// Sessions bound to a live connection (kept as a count: no scans).
    attached: usize,
    wheel: TimerWheel<TimerKey>,
    /// Verified instead of a real record when the username is unknown, at the same cost.
    dummy: PasswordRecord,
    origin: Instant,
    origin_unix_ms: u64,
    hash_jobs: Vec<HashJob>,
    wakeups: Vec<ConnId>,
    flagged: Vec<ConnId>,
    stats: Stats,
}

impl Engine {
    /// `origin` and `origin_unix_ms` name the same moment on the monotonic and the wall
    /// clock; wall times on the wire are derived from `now` through them.
    ///
    /// Design: deriving wall time from the monotonic clock keeps the engine deterministic
    /// under test (one injected clock, not two) and immune to wall-clock steps; the cost
    /// is drift from NTP slews over very long uptimes, irrelevant at millisecond display
    /// precision.
    pub fn new(
        cfg: EngineConfig,
        users: UserTable,
        dummy: PasswordRecord,
        origin: Instant,
        origin_unix_ms: u64,
    ) -> Engine {
        Engine {
            limits: DecodeLimits::server(cfg.max_frame),
            wheel: TimerWheel::new(origin, cfg.tick),
            cfg,
            conns: Slab::new(),
            next_generation: 0,
            users,
            sessions: SessionTable::new(),
            attached: 0,
            dummy,
            origin,
            origin_unix_ms,
            hash_jobs: Vec::new(),
            wakeups: Vec::new(),
            flagged: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn users(&self) -> &UserTable {
        &self.users
    }

    pub fn users_mut(&mut self) -> &mut UserTable {
        &mut self.users
    }

    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub fn attached_sessions(&self) -> usize {
        self.attached
    }

    /// Unix milliseconds at `now`.
    pub fn unix_ms(&self, now: Instant) -> u64 {
        self.origin_unix_ms + now.saturating_duration_since(self.origin).as_millis() as u64
    }

    // ---- the server module's interface -------------------------------------------------

    /// A new TCP connection. Its login deadline starts now.
    pub fn accept(&mut self, peer: SocketAddr, now: Instant) -> ConnId {
        self.next_generation = self.next_generation.wrapping_add(1);
        let entry = self.conns.vacant_entry();
        let id = ConnId {
            index: entry.key() as u32,
            generation: self.next_generation,
        };
        let deadline = now + self.cfg.login_timeout;
        let mut conn = Conn::new(id, peer, now, deadline);
        conn.timer = Some(self.wheel.insert(deadline, TimerKey::Conn(id)));
        entry.insert(conn);
        self.stats.accepted += 1;
        debug!("accept conn={} peer={}", id.index, peer);
        id
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns
            .get(id.index as usize)
            .filter(|c| c.id.generation == id.generation)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        slot(&mut self.conns, id)
    }

    /// Whether `id` names a connection that is still open (not stale).
    pub fn contains(&self, id: ConnId) -> bool {
        self.conn(id).is_some()
    }

    /// Whether the server should read more bytes for `id` now. False while the engine is
    /// not taking frames (a login being hashed, closing) and a frame's worth is already
    /// buffered: the rest waits in the kernel, which is the back-pressure.
    pub fn wants_input(&self, id: ConnId) -> bool {
        match self.conn(id) {
            Some(c) => {
                !c.is_closing()
                    && !c.peer_closed
                    && (c.state.reads_frames() || c.input.len() < self.cfg.max_frame)
                    && c.input.len() < 2 * self.cfg.max_frame
            }
            None => false,
        }
    }

    /// The buffer the server reads into.
    pub fn input_mut(&mut self, id: ConnId) -> Option<&mut BytesMut> {
        self.conn_mut(id).map(|c| &mut c.input)
    }

    /// The bytes waiting to be written.
    pub fn output_mut(&mut self, id: ConnId) -> Option<&mut BytesMut> {
        self.conn_mut(id).map(|c| &mut c.output)
    }

    /// True once a closing connection has nothing left to write: the socket may close.
    pub fn ready_to_close(&self, id: ConnId) -> bool {
        self.conn(id)
            .is_none_or(|c| c.is_closing() && c.output.is_empty())
    }

    /// Connections with output to write or that are closing, since the last call.
    pub fn take_flagged(&mut self, out: &mut Vec<ConnId>) {
        for id in self.flagged.drain(..) {
            if let Some(c) = slot(&mut self.conns, id) {
                c.flagged = false;
                out.push(id);
            }
        }
    }

    /// Connections that have buffered input to process again without a new readiness
    /// event (a login was decided; the per-turn frame cap was hit).
    pub fn take_wakeups(&mut self, out: &mut Vec<ConnId>) {
        out.append(&mut self.wakeups);
    }

    /// Whether `take_wakeups` would return anything (the loop must not sleep then).
    pub fn has_wakeups(&self) -> bool {
        !self.wakeups.is_empty()
    }

    /// Password hashes to run; answer each with `on_hash_result` or `hash_rejected`.
    pub fn take_hash_jobs(&mut self) -> Vec<HashJob> {
        std::mem::take(&mut self.hash_jobs)
    }

    /// The earliest deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// The peer closed its sending side (read returned 0). Frames already received are
    /// still handled; then the connection closes.
    pub fn peer_closed(&mut self, id: ConnId, now: Instant) {
        if let Some(c) = self.conn_mut(id) {
            c.peer_closed = true;
            self.process(id, now);
        }
    }

    /// The socket is gone (closed after `ready_to_close`, or failed). Frees the slot.
    pub fn remove(&mut self, id: ConnId) {
        if self.conn(id).is_none() {
            return;
        }
        self.detach(id);
        let conn = self.conns.remove(id.index as usize);
        if let Some(t) = conn.timer {
            self.wheel.cancel(t);
        }
        debug!("closed conn={} peer={}", id.index, conn.peer);
    }

    /// Decodes and handles buffered frames, at most `frames_per_turn` of them.
    pub fn process(&mut self, id: ConnId, now: Instant) {
        let mut handled = 0;
        loop {
            let Some(conn) = slot(&mut self.conns, id) else {
                return;
            };
            if !conn.state.reads_frames() {
                return;
            }
            if handled == self.cfg.frames_per_turn {
                // Fairness: others get a turn; the server comes back to this one.
                self.wakeups.push(id);
                return;
            }
            match protocol::decode(&mut conn.input, self.limits) {
                Ok(Some(frame)) => self.on_frame(id, frame, now),
                Ok(None) => break,
                Err(e) => self.on_decode_error(id, e),
            }
            handled += 1;
        }
        if let Some(conn) = self.conn(id) {
            if conn.peer_closed && conn.state.reads_frames() {
                // Nothing complete is left and nothing more will come.
                debug!("peer closed conn={}", id.index);
                self.close(id);
            }
        }
    }

    /// A worker finished a hash job.
    pub fn on_hash_result(&mut self, result: HashResult, now: Instant) {
        let id = ConnId::from_u64(result.ticket);
        // None: the connection closed while its password was being hashed.
        let Some(pending) = self.end_authenticating(id) else {
            return;
        };
        match result.outcome {
            JobOutcome::Verified(true) => match pending.user_id {
                Some(uid) if self.users.get(uid).is_some() => self.login_ok(id, uid, &pending, now),
                _ => self.login_failed(id, &pending, now),
            },
            JobOutcome::Verified(false) => self.login_failed(id, &pending, now),
            JobOutcome::Created(_) | JobOutcome::Failed(_) => {
                error!("password check failed on a worker: conn={}", id.index);
                self.rearm_login_deadline(id, pending.deadline);
                self.reply_error(
                    id,
                    pending.request_id,
                    ErrorCode::InternalError,
                    "login could not be checked",
                    false,
                );
            }
        }
        // Frames that arrived behind the login can be handled now.
        self.wakeups.push(id);
    }

    /// Leaves Authenticating for AwaitingAuth (with the login deadline still in force) and
    /// returns what was pending; None if `id` is stale or not authenticating.
    fn end_authenticating(&mut self, id: ConnId) -> Option<Box<PendingLogin>> {
        let conn = self.conn_mut(id)?;
        if !matches!(conn.state, ConnState::Authenticating(_)) {
            return None;
        }
        let ConnState::Authenticating(pending) =
            std::mem::replace(&mut conn.state, ConnState::Closing)
        else {
            return None;
        };
        conn.state = ConnState::AwaitingAuth {
            deadline: pending.deadline,
        };
        Some(pending)
    }

    /// The hash pool was full: the login is refused with SERVER_BUSY and a retry-after.
    pub fn hash_rejected(&mut self, job: HashJob, now: Instant) {
        let id = ConnId::from_u64(job.ticket);
        let Some(pending) = self.end_authenticating(id) else {
            return;
        };
        self.stats.logins_busy += 1;
        warn!(
            "login refused, hash queue full: user={} peer={}",
            pending.username,
            self.conn(id)
                .map(|c| c.peer.to_string())
                .unwrap_or_default()
        );
        self.rearm_login_deadline(id, pending.deadline);
        let retry = self.cfg.busy_retry_after.as_millis().min(u32::MAX as u128) as u32;
        self.send(
            id,
            pending.request_id,
            Flags::NONE,
            &Message::LoginFailure(LoginFailure {
                reason: LoginFailureReason::ServerBusy,
                retry_after_ms: retry,
                message: "server busy, retry later".into(),
            }),
        );
        let _ = now;
        self.wakeups.push(id);
    }

    /// Fires every deadline that has passed.
    pub fn on_timers(&mut self, now: Instant) {
        while let Some((_, key)) = self.wheel.poll_expired(now) {
            match key {
                TimerKey::Conn(id) => self.conn_timer(id, now),
                TimerKey::Session(sid) => self.session_timer(sid, now),
            }
        }
    }

    // ---- the state machine ------------------------------------------------------------

    /// The one match on (state, message): protocol.md section 4's table.
    fn on_frame(&mut self, id: ConnId, frame: Frame, now: Instant) {
        let rid = frame.request_id;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        match (&conn.state, frame.message) {
            // protocol.md 5.8: "Allowed in every state, without a token".
            (_, Message::DisconnectRequest(_)) => {
                self.mark_valid(id, now);
                debug!("disconnect requested conn={}", id.index);
                self.finish(id, rid, Flags::FATAL, DisconnectReason::ClientRequest);
            }
            (ConnState::AwaitingAuth { deadline }, Message::LoginRequest(req)) => {
                let deadline = *deadline;
                self.start_login(id, rid, req, deadline, now);
            }
            (ConnState::AwaitingAuth { .. }, other) => {
                // protocol.md 4: anything else before login is "fatal AUTH_REQUIRED".
                let msg = format!("{} before login: log in first", other.opcode().name());
                self.reply_error(id, rid, ErrorCode::AuthRequired, &msg, true);
            }
            (ConnState::Active { .. }, Message::Heartbeat(hb)) => {
                if self.check_token(id, rid, &hb.token, now).is_some() {
                    self.stats.heartbeats += 1;
                    let server_time = self.unix_ms(now);
                    self.mark_valid(id, now);
                    self.send(
                        id,
                        rid,
                        Flags::NONE,
                        &Message::HeartbeatAck(HeartbeatAck { server_time }),
                    );
                }
            }
            (ConnState::Active { .. }, Message::LogoutRequest(req)) => {
                if let Some(sid) = self.check_token(id, rid, &req.token, now) {
                    self.mark_valid(id, now);
                    self.logout(id, rid, sid, now);
                }
            }
            (ConnState::Active { .. }, other) => {
                let msg = format!("{} is not allowed after login", other.opcode().name());
                self.reply_error(id, rid, ErrorCode::UnexpectedFrame, &msg, false);
            }
            // `process` takes no frames in these states.
            (ConnState::Authenticating(_) | ConnState::Closing, _) => {}
        }
    }

    fn on_decode_error(&mut self, id: ConnId, e: protocol::DecodeError) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let before_login = matches!(conn.state, ConnState::AwaitingAuth { .. });
        // protocol.md 2: "A connection that is not yet logged in gets every error in steps
        // 5 to 7 as a fatal error, except errors in a LOGIN_REQUEST payload".
        let fatal =
            e.kind.breaks_framing() || (before_login && e.opcode != Opcode::LoginRequest as u8);
        if e.kind.breaks_framing() {
            conn.input.clear();
        }
        self.stats.protocol_errors += 1;
        debug!("decode error conn={}: {}", id.index, e);
        self.reply_error(id, e.request_id, e.kind.code(), e.kind.message(), fatal);
    }

    fn start_login(
        &mut self,
        id: ConnId,
        rid: u32,
        req: LoginRequest,
        deadline: Instant,
        now: Instant,
    ) {
        let _ = now;
        let (user_id, record) = match self.users.by_name(&req.username) {
            Some(u) => (Some(u.id), u.password.clone()),
            // Unknown users cost the same hash: timing does not reveal who exists.
            None => (None, self.dummy.clone()),
        };
        self.hash_jobs.push(HashJob {
            ticket: id.to_u64(),
            kind: JobKind::Verify {
                password: req.password,
                record,
            },
        });
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.consecutive_errors = 0;
        // The login deadline's timer is dropped while the hash runs (the client did send
        // its login in time) and re-armed if the login fails.
        let timer = conn.timer.take();
        conn.state = ConnState::Authenticating(Box::new(PendingLogin {
            request_id: rid,
            user_id,
            username: req.username,
            client: req.client,
            platform: req.platform,
            deadline,
        }));
        if let Some(t) = timer {
            self.wheel.cancel(t);
        }
    }

    fn login_ok(&mut self, id: ConnId, uid: u64, pending: &PendingLogin, now: Instant) {
        let now_ms = self.unix_ms(now);
        let Some(peer) = self.conn(id).map(|c| c.peer) else {
            return;
        };
        let (token, session_id) = match self.new_session(id, uid, pending, peer, now) {
            Ok(x) => x,
            Err(e) => {
                error!("cannot create a session: {e}");
                self.rearm_login_deadline(id, pending.deadline);
                self.reply_error(
                    id,
                    pending.request_id,
                    ErrorCode::InternalError,
                    "session could not be created",
                    false,
                );
                return;
            }
        };
        let Some(user) = self.users.get_mut(uid) else {
            return;
        };
        let last_login = user.last_login_ms;
        user.last_login_ms = now_ms;
        let (username, role, user_created) = (user.username.clone(), user.role, user.created_ms);
        let hb_timeout = self.cfg.heartbeat_timeout;
        let Some(conn) = slot(&mut self.conns, id) else {
            return;
        };
        conn.state = ConnState::Active { session_id };
        conn.last_valid = now;
        conn.consecutive_errors = 0;
        conn.timer = Some(self.wheel.insert(now + hb_timeout, TimerKey::Conn(id)));
        self.attached += 1;
        self.stats.logins_ok += 1;
        info!(
            "login ok user={} session={:016x} peer={} client={:?} platform={:?}",
            username, session_id, peer, pending.client, pending.platform
        );
        let lifetime = self.cfg.session_lifetime;
        let msg = Message::LoginSuccess(LoginSuccess {
            token,
            session_id,
            user_id: uid,
            role,
            username,
            user_created,
            last_login,
            session_created: now_ms,
            session_expires: now_ms + lifetime.as_millis() as u64,
            idle_expiry_ms: millis(self.cfg.session_idle),
            heartbeat_interval_ms: millis(self.cfg.heartbeat_interval),
            heartbeat_timeout_ms: millis(self.cfg.heartbeat_timeout),
        });
        self.send(id, pending.request_id, Flags::NONE, &msg);
    }

    /// Draws a token and an id, and records the session bound to `id`.
    fn new_session(
        &mut self,
        id: ConnId,
        uid: u64,
        pending: &PendingLogin,
        peer: SocketAddr,
        now: Instant,
    ) -> std::io::Result<(Token, u64)> {
        let now_ms = self.unix_ms(now);
        let lifetime = self.cfg.session_lifetime;
        for _ in 0..4 {
            let tok = token::generate()?;
            let session = Session {
                id: token::random_id()?,
                user_id: uid,
                digest: Digest::of(&tok),
                created: now,
                created_ms: now_ms,
                last_activity: now,
                expires_at: now + lifetime,
                expires_ms: now_ms + lifetime.as_millis() as u64,
                client: pending.client.clone(),
                platform: pending.platform.clone(),
                peer,
                conn: Some(id),
                timer: None,
            };
            let sid = session.id;
            let deadline = session.deadline(self.cfg.session_idle);
            if self.sessions.insert(session).is_ok() {
                let t = self.wheel.insert(deadline, TimerKey::Session(sid));
                if let Some(s) = self.sessions.get_mut(sid) {
                    s.timer = Some(t);
                }
                return Ok((tok, sid));
            }
        }
        Err(std::io::Error::other("session id collisions"))
    }

    fn login_failed(&mut self, id: ConnId, pending: &PendingLogin, now: Instant) {
        let _ = now;
        self.stats.logins_failed += 1;
        let peer = self
            .conn(id)
            .map(|c| c.peer.to_string())
            .unwrap_or_default();
        info!("login failed user={} peer={}", pending.username, peer);
        self.rearm_login_deadline(id, pending.deadline);
        // protocol.md 5.3: "the server does not say which" part was wrong.
        self.send(
            id,
            pending.request_id,
            Flags::NONE,
            &Message::LoginFailure(LoginFailure {
                reason: LoginFailureReason::InvalidCredentials,
                retry_after_ms: 0,
                message: "invalid username or password".into(),
            }),
        );
    }

    fn rearm_login_deadline(&mut self, id: ConnId, deadline: Instant) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        if let Some(t) = conn.timer.take() {
            self.wheel.cancel(t);
        }
        let t = self.wheel.insert(deadline, TimerKey::Conn(id));
        if let Some(conn) = self.conn_mut(id) {
            conn.timer = Some(t);
        }
    }

    /// protocol.md 6, the token check: digest, then expiry. Returns the session id when
    /// the token is this connection's live session; otherwise the error is sent.
    fn check_token(&mut self, id: ConnId, rid: u32, tok: &Token, now: Instant) -> Option<u64> {
        let sid = self.conn(id)?.session_id()?;
        let d = Digest::of(tok);
        let idle = self.cfg.session_idle;
        let Some(session) = self.sessions.get_mut(sid) else {
            // An Active connection always has its session; if not, say so rather than panic.
            error!("conn={} is active without its session", id.index);
            self.reply_error(id, rid, ErrorCode::InternalError, "session missing", true);
            return None;
        };
        if !session.digest.ct_eq(&d) {
            let code = if self.sessions.id_by_digest(&d).is_some() {
                ErrorCode::TokenMismatch
            } else {
                ErrorCode::InvalidToken
            };
            let msg = match code {
                ErrorCode::TokenMismatch => "token belongs to another session",
                _ => "unknown token",
            };
            self.reply_error(id, rid, code, msg, false);
            return None;
        }
        if let Some(why) = session.expired(now, idle) {
            self.expire_session(sid, why, rid);
            return None;
        }
        session.last_activity = now;
        Some(sid)
    }

    fn logout(&mut self, id: ConnId, rid: u32, sid: u64, now: Instant) {
        self.detach(id);
        if let Some(s) = self.sessions.remove(sid) {
            if let Some(t) = s.timer {
                self.wheel.cancel(t);
            }
            let user = self
                .users
                .get(s.user_id)
                .map(|u| u.username.as_str())
                .unwrap_or("?");
            info!("logout user={} session={:016x} peer={}", user, sid, s.peer);
        }
        self.stats.logouts += 1;
        let deadline = now + self.cfg.login_timeout;
        if let Some(conn) = self.conn_mut(id) {
            conn.state = ConnState::AwaitingAuth { deadline };
        }
        self.rearm_login_deadline(id, deadline);
        self.send(
            id,
            rid,
            Flags::NONE,
            &Message::LogoutSuccess(LogoutSuccess { session_id: sid }),
        );
    }

    fn conn_timer(&mut self, id: ConnId, now: Instant) {
        let hb_timeout = self.cfg.heartbeat_timeout;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.timer = None;
        let due = match conn.state {
            ConnState::AwaitingAuth { deadline } => deadline,
            ConnState::Active { .. } => conn.last_valid + hb_timeout,
            ConnState::Authenticating(_) | ConnState::Closing => return,
        };
        if now < due {
            // Lazy reset: frames since the timer was set only stored `last_valid`.
            let t = self.wheel.insert(due, TimerKey::Conn(id));
            if let Some(conn) = self.conn_mut(id) {
                conn.timer = Some(t);
            }
            return;
        }
        let peer = conn.peer;
        if let ConnState::Active { session_id } = conn.state {
            self.stats.idle_timeouts += 1;
            info!(
                "heartbeat timeout session={:016x} peer={} after {:?}",
                session_id, peer, hb_timeout
            );
            self.push_close(id, DisconnectReason::IdleTimeout);
        } else {
            self.stats.login_timeouts += 1;
            info!("login timeout peer={peer}");
            self.push_close(id, DisconnectReason::LoginTimeout);
        }
    }

    fn session_timer(&mut self, sid: u64, now: Instant) {
        let idle = self.cfg.session_idle;
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        s.timer = None;
        match s.expired(now, idle) {
            None => {
                let due = s.deadline(idle);
                let t = self.wheel.insert(due, TimerKey::Session(sid));
                if let Some(s) = self.sessions.get_mut(sid) {
                    s.timer = Some(t);
                }
            }
            Some(why) => self.expire_session(sid, why, 0),
        }
    }

    /// Ends an expired session. A live connection on it gets a fatal TOKEN_EXPIRED (as the
    /// reply to `rid`, or as a push when `rid` is 0) and closes.
    fn expire_session(&mut self, sid: u64, why: Expiry, rid: u32) {
        let Some(s) = self.sessions.remove(sid) else {
            return;
        };
        if let Some(t) = s.timer {
            self.wheel.cancel(t);
        }
        self.stats.sessions_expired += 1;
        let user = self
            .users
            .get(s.user_id)
            .map(|u| u.username.as_str())
            .unwrap_or("?");
        info!(
            "session expired ({:?}) user={} session={:016x}",
            why, user, sid
        );
        if let Some(cid) = s.conn {
            if self.conn(cid).and_then(|c| c.session_id()) == Some(sid) {
                self.attached -= 1;
                if let Some(c) = self.conn_mut(cid) {
                    // The session is gone; nothing to detach when the connection closes.
                    c.state = ConnState::AwaitingAuth {
                        deadline: c.last_valid,
                    };
                }
                let what = match why {
                    Expiry::Idle => "session expired (idle)",
                    Expiry::Absolute => "session expired (lifetime)",
                };
                let flags = if rid == 0 {
                    Flags::PUSH | Flags::FATAL
                } else {
                    Flags::FATAL
                };
                let msg =
                    Message::GeneralFailure(GeneralFailure::new(ErrorCode::TokenExpired, what));
                self.send(cid, rid, flags, &msg);
                self.close(cid);
            }
        }
    }

    // ---- output helpers ---------------------------------------------------------------

    /// Counts a frame as valid: resets the heartbeat timeout (by storing the time) and the
    /// error streak.
    fn mark_valid(&mut self, id: ConnId, now: Instant) {
        if let Some(c) = self.conn_mut(id) {
            c.last_valid = now;
            c.consecutive_errors = 0;
        }
    }

    /// Queues a GENERAL_FAILURE. Fatal ones close the connection; the error streak closes
    /// it too once it reaches the limit.
    fn reply_error(&mut self, id: ConnId, rid: u32, code: ErrorCode, msg: &str, fatal: bool) {
        let max = self.cfg.max_consecutive_errors;
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.consecutive_errors += 1;
        let streak = conn.consecutive_errors;
        let flags = if fatal { Flags::FATAL } else { Flags::NONE };
        self.send(
            id,
            rid,
            flags,
            &Message::GeneralFailure(GeneralFailure::new(code, msg)),
        );
        if fatal {
            self.close(id);
        } else if streak >= max {
            self.send(
                id,
                0,
                Flags::PUSH | Flags::FATAL,
                &Message::GeneralFailure(GeneralFailure::new(
                    ErrorCode::TooManyErrors,
                    "too many errors in a row",
                )),
            );
            self.close(id);
        }
    }

    /// Replies DISCONNECT_ACK and closes.
    fn finish(&mut self, id: ConnId, rid: u32, flags: Flags, reason: DisconnectReason) {
        self.send(
            id,
            rid,
            flags,
            &Message::DisconnectAck(DisconnectAck { reason }),
        );
        self.close(id);
    }

    /// Pushes DISCONNECT_ACK and closes.
    fn push_close(&mut self, id: ConnId, reason: DisconnectReason) {
        self.finish(id, 0, Flags::PUSH | Flags::FATAL, reason);
    }

    /// Encodes a frame into the connection's output.
    fn send(&mut self, id: ConnId, rid: u32, flags: Flags, msg: &Message) {
        let max_output = self.cfg.max_output;
        let Some(conn) = slot(&mut self.conns, id) else {
            return;
        };
        if conn.is_closing() {
            return; // the FATAL frame was the last one
        }
        protocol::encode_message(rid, flags, msg, &mut conn.output);
        if conn.output.len() > max_output {
            // The peer is not reading. Holding more would let it grow our memory; the
            // queued frames are dropped and the connection closes at once.
            conn.output.clear();
            self.stats.output_overflows += 1;
            warn!(
                "peer not reading, output over {} bytes: closing conn={} peer={}",
                max_output, id.index, conn.peer
            );
            self.close(id);
            return;
        }
        self.flag(id);
    }

    fn flag(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            if !c.flagged {
                c.flagged = true;
                self.flagged.push(id);
            }
        }
    }

    /// Moves to Closing: nothing more is read or sent; the socket closes once the output
    /// is flushed. The session, if any, survives detached.
    fn close(&mut self, id: ConnId) {
        self.detach(id);
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        conn.state = ConnState::Closing;
        conn.input.clear();
        if let Some(t) = conn.timer.take() {
            self.wheel.cancel(t);
        }
        self.flag(id);
    }

    /// Unbinds the connection's session, if it has one, and leaves the connection in
    /// Closing; a caller that keeps the connection open (logout) sets the next state.
    fn detach(&mut self, id: ConnId) {
        let Some(sid) = self.conn(id).and_then(|c| c.session_id()) else {
            return;
        };
        if let Some(s) = self.sessions.get_mut(sid) {
            if s.conn == Some(id) {
                s.conn = None;
                self.attached -= 1;
                debug!("session={:016x} detached", sid);
            }
        }
        if let Some(c) = self.conn_mut(id) {
            c.state = ConnState::Closing;
        }
    }
}

/// The connection `id` names, if it is still open: a borrow of the slab alone, so the
/// rest of the engine stays usable beside it.
fn slot(conns: &mut Slab<Conn>, id: ConnId) -> Option<&mut Conn> {
    conns
        .get_mut(id.index as usize)
        .filter(|c| c.id.generation == id.generation)
}

fn millis(d: Duration) -> u32 {
    d.as_millis().min(u32::MAX as u128) as u32
}
