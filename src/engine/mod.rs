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
//!
//! `auth_flow` holds how a connection gets a session (login, registration, resume);
//! `ending` how sessions end (logout, expiry, revocation) and the token check.

mod audit_log;
mod auth_flow;
mod busy;
mod durability;
mod ending;
pub mod event;
mod inline;
mod manage;
mod policy;
pub mod replay;

pub use audit_log::{AuditFilter, AuditLog};
pub use durability::EventBatch;
pub use policy::{LoginPolicy, PolicyConfig, Refusal};

use std::collections::VecDeque;

use busy::BusyPacer;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log::{debug, info, warn};
use slab::Slab;

use crate::auth::{HashJob, PasswordRecord};
use crate::conn::{BufPool, Conn, ConnId, ConnState, Peer};
use crate::engine::event::{Audit, AuditKind, EndKind, EndedSession, Event, StoredSession};
use crate::protocol::{
    self, DecodeLimits, DisconnectAck, DisconnectReason, ErrorCode, Flags, Frame, GeneralFailure,
    HeartbeatAck, InvalidReason, Message, Opcode, RevokeReason,
};
use crate::session::{Expiry, SessionTable, UserTable, WallClock};
use crate::timer::TimerWheel;

/// What happens to a new login when its user already has `max_sessions_per_user`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLimit {
    /// The oldest session is revoked (its connection told SESSION_REVOKED, NEW_LOGIN).
    RevokeOldest,
    /// The login fails with LOGIN_FAILURE SESSION_LIMIT.
    RejectNew,
}

/// What VERIFY_SESSION does when the session is bound to another live connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicatePolicy {
    /// DUPLICATE_SESSION to the newcomer, which is closed.
    Reject,
    /// SESSION_REVOKED (TAKEN_OVER) to the old connection, which is closed.
    Takeover,
}

/// How a session ended (see `ending`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    LoggedOut,
    Expired(Expiry),
    Revoked {
        reason: RevokeReason,
        by_client: String,
        by_platform: String,
        by_address: String,
    },
}

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
    /// protocol.md 2: error replies in a row that close the connection (at most 255: the
    /// streak is counted in a byte).
    pub max_consecutive_errors: u32,
    /// The timer wheel's resolution.
    pub tick: Duration,
    /// The least `retry_after` in LOGIN_FAILURE SERVER_BUSY (when many are refused at
    /// once, later ones wait longer: `engine::busy`).
    pub busy_retry_after: Duration,
    /// Live sessions one account may have; 0 means no limit.
    pub max_sessions_per_user: usize,
    pub on_limit: OnLimit,
    pub duplicate: DuplicatePolicy,
    /// Whether REGISTER_REQUEST is accepted.
    pub registration_open: bool,
    /// protocol.md 5.15: shortest password a new account may have, in bytes.
    pub min_password_len: usize,
    /// PBKDF2 iterations for new accounts.
    pub iterations: u32,
    /// How long a dead token is remembered at least (beyond its own expiry), so a resume
    /// can say "revoked" or "logged out" rather than "unknown".
    pub tombstone_min: Duration,
    /// At most one summary log line per this interval.
    pub summary_interval: Duration,
    /// A connected session's last activity is journaled when it is this much newer than
    /// the journaled one (and at detach), not per heartbeat. After a crash a session
    /// comes back with its idle timer at most this much too early.
    pub activity_save_interval: Duration,
    /// Brute-force throttling and the daily login limit.
    pub policy: PolicyConfig,
    /// Audit records held in memory for AUDIT_QUERY (the journal keeps them all).
    pub audit_window: usize,
    /// Connections at once, in all and from one IP address; beyond them a new
    /// connection gets a FATAL SERVER_BUSY and is closed. 0: no limit.
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// SERVER_SHUTDOWN's `reconnect_after_ms`.
    pub shutdown_reconnect_after: Duration,
}

impl EngineConfig {
    /// Connection slots reserved at startup (the connection, session, timer and socket
    /// arrays): the connection limit, at most 64k. Address space the kernel backs page by
    /// page as connections come, and no regrowth copies or strands the old arrays.
    pub fn reserved_connections(&self) -> usize {
        self.max_connections.min(MAX_RESERVED)
    }
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
            max_sessions_per_user: 1,
            on_limit: OnLimit::RevokeOldest,
            duplicate: DuplicatePolicy::Reject,
            registration_open: true,
            min_password_len: 8,
            iterations: crate::auth::DEFAULT_ITERATIONS,
            tombstone_min: Duration::from_secs(60 * 60),
            summary_interval: Duration::from_secs(60),
            activity_save_interval: Duration::from_secs(5 * 60),
            policy: PolicyConfig::default(),
            audit_window: 100_000,
            max_connections: 16_384,
            max_connections_per_address: 1_024,
            shutdown_reconnect_after: Duration::from_secs(1),
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
    /// Refused by throttling (account delay, address bucket or hash cap).
    pub logins_throttled: u64,
    pub heartbeats: u64,
    pub logouts: u64,
    pub idle_timeouts: u64,
    pub login_timeouts: u64,
    pub sessions_expired: u64,
    pub revocations: u64,
    pub resumes: u64,
    pub registrations: u64,
    pub protocol_errors: u64,
    pub output_overflows: u64,
    pub password_changes: u64,
    /// Connections refused at accept (connection limits).
    pub connections_refused: u64,
}

/// What a wheel entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKey {
    /// The connection's login deadline or heartbeat timeout, by its state.
    Conn(ConnId),
    /// A session's idle / absolute expiry.
    Session(u64),
    /// Forget an ended session's tombstone.
    Tombstone(u64),
    /// The summary log line.
    Summary,
}

/// The sans-IO session server.
pub struct Engine {
    cfg: EngineConfig,
    limits: DecodeLimits,
    conns: Slab<Conn>,
    /// Spare connection buffers (idle connections hold none).
    bufs: BufPool,
    /// The generation the next connection gets (never 0; wraps to 1).
    next_generation: NonZeroU32,
    users: UserTable,
    sessions: SessionTable,
    /// Sessions bound to a live connection (kept as a count: no scans).
    attached: usize,
    wheel: TimerWheel<TimerKey>,
    /// Verified instead of a real record when the username is unknown, at the same cost.
    dummy: PasswordRecord,
    origin: Instant,
    clock: WallClock,
    hash_jobs: Vec<HashJob>,
    /// Durable changes for the journal, taken by the server once per loop turn.
    events: Vec<Event>,
    /// The last batch handed out by `take_batch`, and the last one known durable.
    batch_seq: u64,
    durable_seq: u64,
    /// Connections whose output waits for a batch, in batch order.
    held: VecDeque<(u64, ConnId)>,
    /// `events.len()` when the current step began, and the connections it wrote to.
    step_mark: usize,
    step_sent: Vec<ConnId>,
    wakeups: Vec<ConnId>,
    flagged: Vec<ConnId>,
    stats: Stats,
    policy: LoginPolicy,
    /// `retry_after` of SERVER_BUSY refusals, spread at the measured hash rate.
    busy: BusyPacer,
    audit_log: AuditLog,
    /// Size of the journal as last reported by the store (ADMIN_STATS).
    journal_bytes: u64,
    /// Open connections per peer IP (for `max_connections_per_address`).
    per_address: hashbrown::HashMap<std::net::IpAddr, u32>,
    summary_expired: u64,
    last_summary: (Stats, usize, usize),
    last_now: Instant,
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
        let policy = LoginPolicy::new(cfg.policy.clone());
        let audit_log = AuditLog::new(cfg.audit_window);
        let busy = BusyPacer::new(cfg.busy_retry_after);
        let room = cfg.reserved_connections();
        let mut wheel = TimerWheel::with_capacity(origin, cfg.tick, 2 * room);
        wheel.insert(origin + cfg.summary_interval, TimerKey::Summary);
        Engine {
            limits: DecodeLimits::server(cfg.max_frame),
            wheel,
            cfg,
            conns: Slab::with_capacity(room),
            bufs: BufPool::default(),
            next_generation: NonZeroU32::MIN,
            users,
            sessions: SessionTable::with_capacity(room),
            attached: 0,
            dummy,
            origin,
            clock: WallClock::new(origin, origin_unix_ms),
            hash_jobs: Vec::new(),
            events: Vec::new(),
            batch_seq: 0,
            durable_seq: 0,
            held: VecDeque::new(),
            step_mark: 0,
            step_sent: Vec::new(),
            wakeups: Vec::new(),
            flagged: Vec::new(),
            stats: Stats::default(),
            policy,
            busy,
            audit_log,
            journal_bytes: 0,
            per_address: hashbrown::HashMap::new(),
            summary_expired: 0,
            last_summary: (Stats::default(), 0, 0),
            last_now: origin,
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

    /// Timers scheduled (connections' deadlines, detached sessions' expiries, tombstones,
    /// the summary line).
    pub fn timers_scheduled(&self) -> usize {
        self.wheel.len()
    }

    /// Unix milliseconds at `now`.
    pub fn unix_ms(&self, now: Instant) -> u64 {
        self.clock.ms(now)
    }

    // ---- the server module's interface -------------------------------------------------

    /// A new TCP connection. Its login deadline starts now.
    pub fn accept(&mut self, peer: SocketAddr, now: Instant) -> ConnId {
        self.last_now = self.last_now.max(now);
        let entry = self.conns.vacant_entry();
        let id = ConnId {
            index: entry.key() as u32,
            generation: self.next_generation,
        };
        self.next_generation = self
            .next_generation
            .checked_add(1)
            .unwrap_or(NonZeroU32::MIN);
        let deadline = now + self.cfg.login_timeout;
        let mut conn = Conn::new(id, peer, now, deadline);
        conn.timer = Some(self.wheel.insert(deadline, TimerKey::Conn(id)));
        entry.insert(conn);
        self.stats.accepted += 1;
        debug!("accept conn={} peer={}", id.index, peer);
        let from_peer = self.per_address.entry(peer.ip()).or_insert(0);
        *from_peer += 1;
        let over_total =
            self.cfg.max_connections > 0 && self.conns.len() > self.cfg.max_connections;
        let over_peer = self.cfg.max_connections_per_address > 0
            && *from_peer as usize > self.cfg.max_connections_per_address;
        if over_total || over_peer {
            self.stats.connections_refused += 1;
            let why = if over_total {
                "server full: too many connections"
            } else {
                "too many connections from your address"
            };
            info!("connection refused ({why}): peer={peer}");
            self.begin_step();
            let busy = GeneralFailure::new(ErrorCode::ServerBusy, why);
            self.send(
                id,
                0,
                Flags::PUSH | Flags::FATAL,
                &Message::GeneralFailure(busy),
            );
            self.close(id);
            self.end_step();
        }
        id
    }

    /// Graceful shutdown: every open connection gets SERVER_SHUTDOWN and DISCONNECT_ACK
    /// (SERVER_SHUTDOWN) and closes; sessions survive, detached, resumable after a restart.
    pub fn shutdown(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        self.begin_step();
        let notice = Message::ServerShutdown(protocol::ServerShutdown {
            reconnect_after_ms: millis(self.cfg.shutdown_reconnect_after),
            message: "server shutting down; sessions survive: reconnect and resume".into(),
        });
        let ids: Vec<ConnId> = self.conns.iter().map(|(_, c)| c.id).collect();
        for id in ids {
            self.send(id, 0, Flags::PUSH, &notice);
            self.push_close(id, DisconnectReason::ServerShutdown);
        }
        self.end_step();
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
                    && (c.reads_frames() || c.input_len() < self.cfg.max_frame)
                    && c.input_len() < 2 * self.cfg.max_frame
            }
            None => false,
        }
    }

    /// The buffer the server reads into.
    pub fn input_mut(&mut self, id: ConnId) -> Option<&mut BytesMut> {
        let c = slot(&mut self.conns, id)?;
        Some(&mut c.io(&mut self.bufs).input)
    }

    /// The bytes waiting to be written (None: the connection holds no buffers, so none).
    pub fn output_mut(&mut self, id: ConnId) -> Option<&mut BytesMut> {
        let c = slot(&mut self.conns, id)?;
        c.io_if_any().map(|b| &mut b.output)
    }

    /// `(input, output)` bytes buffered for `id`.
    pub fn buffered(&self, id: ConnId) -> (usize, usize) {
        self.conn(id)
            .map_or((0, 0), |c| (c.input_len(), c.output_len()))
    }

    /// Whether `id` holds buffers at all (an idle connection does not).
    pub fn holds_buffers(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(Conn::holds_buffers)
    }

    /// Gives a connection's buffers back to the shared pool once both are empty. The
    /// server calls it after writing a connection's output out.
    pub fn release_buffers(&mut self, id: ConnId) {
        if let Some(c) = slot(&mut self.conns, id) {
            c.release_buffers(&mut self.bufs);
        }
    }

    /// Gives back what a burst made the engine's scratch lists grow to, once they are
    /// drained (the server calls it at the end of each turn): a burst of 10,000 logins
    /// must not leave its high-water mark allocated for good.
    pub fn trim_scratch(&mut self) {
        trim(&mut self.step_sent);
        trim(&mut self.wakeups);
        trim(&mut self.flagged);
        trim(&mut self.hash_jobs);
        trim(&mut self.events);
        if self.held.is_empty() && self.held.capacity() > SCRATCH_KEEP {
            self.held = VecDeque::new();
        }
    }

    /// True once a closing connection has nothing left to write: the socket may close.
    pub fn ready_to_close(&self, id: ConnId) -> bool {
        self.conn(id)
            .is_none_or(|c| c.is_closing() && c.output_len() == 0)
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

    /// Brings back a session from the journal at startup, with its deadlines recomputed
    /// from the stored wall-clock times. One that expired while the server was down is
    /// ended now (and the end journaled).
    pub fn restore_session(&mut self, s: StoredSession, now: Instant) {
        if self.users.get(s.user_id).is_none() {
            return;
        }
        let peer = s
            .peer
            .parse::<SocketAddr>()
            .map(Peer::from)
            .unwrap_or(Peer::UNKNOWN);
        let session = crate::session::Session {
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
        };
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

    /// Brings back the tombstone of a session that ended before a restart, so resuming
    /// its token still says why; forgotten at the usual time (`tombstone_min` after the
    /// end, and not before the session would have expired).
    pub fn restore_ended(&mut self, sid: u64, ended: EndedSession, now: Instant) {
        let now_ms = self.unix_ms(now);
        let keep_until_ms = ended
            .expires_ms
            .max(ended.ended_ms + self.cfg.tombstone_min.as_millis() as u64);
        if keep_until_ms <= now_ms {
            return;
        }
        let why = match ended.kind {
            EndKind::LoggedOut => InvalidReason::LoggedOut,
            EndKind::ExpiredIdle | EndKind::ExpiredAbsolute => InvalidReason::Expired,
            EndKind::Revoked => InvalidReason::Revoked,
        };
        self.sessions.insert_ended(sid, ended.digest, why);
        let at = self.clock.instant(keep_until_ms);
        self.wheel.insert(at, TimerKey::Tombstone(sid));
    }

    /// Everything durable as events, for a snapshot: each user (with its last login),
    /// each live session (with its last activity), each remembered tombstone. O(n): the
    /// server calls it only when the journal is compacted.
    pub fn snapshot_events(&self, now: Instant) -> Vec<Event> {
        let now_ms = self.unix_ms(now);
        let mut out = Vec::with_capacity(self.users.len() + self.sessions.len());
        for u in self.users.all() {
            out.push(Event::UserCreated(u.clone()));
        }
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
        }
        let keep_until_ms = now_ms + self.cfg.tombstone_min.as_millis() as u64;
        for (id, digest, why) in self.sessions.ended_iter() {
            let kind = match why {
                InvalidReason::LoggedOut => EndKind::LoggedOut,
                InvalidReason::Expired => EndKind::ExpiredIdle,
                _ => EndKind::Revoked,
            };
            out.push(Event::Tombstone {
                id,
                digest,
                kind,
                keep_until_ms,
            });
        }
        out
    }

    /// The earliest deadline, for the poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// The peer closed its sending side (read returned 0). Frames already received are
    /// still handled; then the connection closes.
    pub fn peer_closed(&mut self, id: ConnId, now: Instant) {
        self.last_now = self.last_now.max(now);
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
        let ip = conn.peer.ip();
        if let Some(n) = self.per_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&ip);
            }
        }
        if conn.hashing {
            self.policy.hash_done(conn.peer.ip());
        }
        if let Some(t) = conn.timer {
            self.wheel.cancel(t);
        }
        debug!("closed conn={} peer={}", id.index, conn.peer);
    }

    /// Decodes and handles buffered frames, at most `frames_per_turn` of them.
    pub fn process(&mut self, id: ConnId, now: Instant) {
        self.begin_step();
        self.process_frames(id, now);
        self.end_step();
    }

    fn process_frames(&mut self, id: ConnId, now: Instant) {
        self.last_now = self.last_now.max(now);
        let mut handled = 0;
        loop {
            let Some(conn) = slot(&mut self.conns, id) else {
                return;
            };
            if !conn.reads_frames() {
                return;
            }
            if handled == self.cfg.frames_per_turn {
                // Fairness: others get a turn; the server comes back to this one.
                self.wakeups.push(id);
                return;
            }
            let Some(io) = conn.io_if_any() else {
                break;
            };
            match protocol::decode(&mut io.input, self.limits) {
                Ok(Some(frame)) => self.on_frame(id, frame, now),
                Ok(None) => break,
                Err(e) => self.on_decode_error(id, e),
            }
            handled += 1;
        }
        if let Some(conn) = self.conn(id) {
            if conn.peer_closed && conn.reads_frames() {
                // Nothing complete is left and nothing more will come.
                debug!("peer closed conn={}", id.index);
                self.close(id);
            }
        }
    }

    /// Fires every deadline that has passed.
    pub fn on_timers(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        while let Some((_, key)) = self.wheel.poll_expired(now) {
            self.begin_step();
            match key {
                TimerKey::Conn(id) => self.conn_timer(id, now),
                TimerKey::Session(sid) => self.session_timer(sid, now),
                TimerKey::Tombstone(sid) => self.sessions.forget(sid),
                TimerKey::Summary => self.summary_timer(now),
            }
            self.end_step();
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
                self.start_login(id, rid, req, deadline);
            }
            (ConnState::AwaitingAuth { deadline }, Message::RegisterRequest(req)) => {
                let deadline = *deadline;
                self.start_register(id, rid, req, deadline);
            }
            (ConnState::AwaitingAuth { .. }, Message::VerifySession(v)) => {
                self.verify_session(id, rid, v, now);
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
            (ConnState::Active { .. }, other) if manage::is_management(&other) => {
                self.manage(id, rid, other, now);
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
        self.reply_error(id, e.request_id, e.kind.code(), e.kind.message(), fatal);
    }

    fn conn_timer(&mut self, id: ConnId, now: Instant) {
        let hb_timeout = self.cfg.heartbeat_timeout;
        let idle = self.cfg.session_idle;
        let Some(conn) = slot(&mut self.conns, id) else {
            return;
        };
        conn.timer = None;
        let due = match conn.state {
            ConnState::AwaitingAuth { deadline } => deadline,
            ConnState::Active { session_id } => {
                // The bound session's expiry rides on this timer (see `activate`).
                if let Some(s) = self.sessions.get(session_id) {
                    if let Some(why) = s.expired(now, idle, &self.clock) {
                        self.end_session(session_id, End::Expired(why), 0, now);
                        return;
                    }
                    (conn.last_valid + hb_timeout).min(s.deadline(idle, &self.clock))
                } else {
                    conn.last_valid + hb_timeout
                }
            }
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

    // ---- output helpers ---------------------------------------------------------------

    /// Resets the error streak (a frame was answered with something else than an error).
    fn mark_valid_streak(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            c.consecutive_errors = 0;
        }
    }

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
        conn.consecutive_errors = conn.consecutive_errors.saturating_add(1);
        let streak = u32::from(conn.consecutive_errors);
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
        let out = &mut conn.io(&mut self.bufs).output;
        protocol::encode_message(rid, flags, msg, out);
        self.step_sent.push(id);
        if out.len() > max_output {
            // The peer is not reading. Holding more would let it grow our memory; the
            // queued frames are dropped and the connection closes at once.
            out.clear();
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
        if let Some(io) = conn.io_if_any() {
            io.input.clear();
        }
        if let Some(t) = conn.timer.take() {
            self.wheel.cancel(t);
        }
        self.flag(id);
    }

    /// Unbinds the connection's session, if it is bound to this connection. The connection
    /// keeps its state; callers move it on (to Closing, or AwaitingAuth after a logout).
    fn detach(&mut self, id: ConnId) {
        let Some(sid) = self.conn(id).and_then(|c| c.session_id()) else {
            return;
        };
        let at = self.unix_ms(self.wheel_now());
        if let Some(s) = self.sessions.get_mut(sid) {
            if s.conn == Some(id) {
                s.conn = None;
                self.attached -= 1;
                debug!("session={:016x} detached", sid);
                // Last activity is persisted coarsely: here, and every
                // `activity_save_interval` while requests come (`check_token`).
                let last = s.last_activity_ms;
                s.saved_activity_ms = last;
                let (user_id, peer) = (s.user_id, s.peer);
                self.watch_session(sid);
                self.events.push(Event::SessionActivity {
                    id: sid,
                    at_ms: last.min(at),
                });
                self.audit(
                    AuditKind::SessionDetached,
                    user_id,
                    sid,
                    peer.to_string(),
                    "",
                );
            }
        }
    }

    /// Appends an audit record (journaled with the turn's commit).
    fn audit(
        &mut self,
        kind: AuditKind,
        user_id: u64,
        session_id: u64,
        address: impl Into<String>,
        detail: impl Into<String>,
    ) {
        let at_ms = self.unix_ms(self.last_now);
        let a = Audit {
            at_ms,
            kind,
            user_id,
            session_id,
            address: address.into(),
            detail: detail.into(),
        };
        self.audit_log.push(&a);
        self.events.push(Event::Audit(a));
    }

    /// The latest time the engine has been told (for events recorded where no `now` is
    /// passed in).
    fn wheel_now(&self) -> Instant {
        self.last_now
    }
}

/// Most connections (and sessions, and twice the timers) reserved at startup.
const MAX_RESERVED: usize = 65_536;

/// Entries a scratch list keeps between turns; more is given back once it is drained.
const SCRATCH_KEEP: usize = 1024;

/// Frees a drained list's burst-sized allocation (see [`Engine::trim_scratch`]).
pub(crate) fn trim<T>(v: &mut Vec<T>) {
    if v.is_empty() && v.capacity() > SCRATCH_KEEP {
        *v = Vec::new();
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
