//! The sans-IO server: every protocol decision, with bytes and `now` in and frames, hash
//! jobs, durable events and deadlines out.
//!
//! Owns the connection slab, the user and session tables, the timer wheel and the one
//! `match` of (state, message) that is the connection state machine of protocol.md
//! section 4. Does not own sockets, threads or the clock: whoever drives it (the server
//! loop in production; [`InlineShell`] in tests, the fuzzer and tools) passes `now` into
//! every call. The contract, in the manner of quinn-proto's `Connection`:
//!
//! - inputs, `handle_*` (`input`, `auth_flow`, `durability`): a connection accepted,
//!   bytes read, the peer's FIN, the socket gone, a hash's answer or refusal, a batch
//!   durable, a deadline, shutdown;
//! - outputs, `poll_*` (`output`, `durability`): a connection's transmit (its bytes, and
//!   whether to close after them), the next hash job, the next event batch, the next
//!   deadline;
//! - [`Engine::turn`] (`turn`): the order of one loop turn, written once, which every
//!   driver runs through its [`Shell`].
//!
//! Inside: `machine` is the (state, message) match and the connection-level replies;
//! `auth_flow` how a connection gets a session (login, registration, resume); `ending` how
//! sessions end (logout, expiry, revocation) and the token check; `manage` the
//! management requests; `event` the durable vocabulary and `replay` its fold back into
//! state; `restore` bringing that state back at startup and writing it out for a snapshot;
//! `policy`, `busy` and `audit_log` the login policy, SERVER_BUSY's pacing and the audit
//! window.

mod attrs;
mod audit_log;
mod audit_queries;
mod auth_flow;
mod busy;
mod durability;
mod ending;
pub mod event;
mod inline;
mod input;
mod machine;
mod manage;
mod output;
mod policy;
mod profile;
mod reconfigure;
pub mod remote;
pub mod replay;
mod restore;
mod storage;
mod turn;

pub use audit_log::{AuditFilter, AuditLog};
pub use durability::EventBatch;
pub use inline::InlineShell;
pub use output::Transmit;
pub use policy::{LoginPolicy, PolicyConfig, Refusal};
pub use reconfigure::Reconfigured;
pub use turn::Shell;

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::auth::{HashJob, PasswordRecord};
use crate::conn::{BufPool, Conn, ConnId};
use crate::protocol::{self, DecodeLimits, LoginFailureReason, RevokeReason};
use crate::session::token::TokenKey;
use crate::session::{Expiry, SessionTable, UserTable, WallClock};
use crate::timer::TimerWheel;
use busy::BusyPacer;
use event::Actor;
use event::Event;

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
    /// By whom: the login, the user or the administrator that caused it.
    Revoked {
        reason: RevokeReason,
        by: Actor,
    },
}

/// Deadlines and limits of the protocol (protocol.md section 7) and of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// protocol.md 7 "heartbeat interval": how often a client should send HEARTBEAT,
    /// advertised in LOGIN_SUCCESS and SESSION_VALID. The server enforces only
    /// [`heartbeat_timeout`](Self::heartbeat_timeout).
    pub heartbeat_interval: Duration,
    /// protocol.md 7 "heartbeat timeout": silence after which a logged-in connection is
    /// closed (DISCONNECT_ACK IDLE_TIMEOUT), counted from its last valid frame; the
    /// session survives, detached.
    pub heartbeat_timeout: Duration,
    /// protocol.md 7 "login deadline": time to log in after connecting (and after a
    /// LOGOUT_SUCCESS); then DISCONNECT_ACK LOGIN_TIMEOUT.
    pub login_timeout: Duration,
    /// protocol.md 7 "session idle expiry": a session ends after this long without
    /// activity (a valid request with its token, or its resumption).
    pub session_idle: Duration,
    /// protocol.md 7 "session absolute expiry": a session ends this long after login,
    /// whatever happens.
    pub session_lifetime: Duration,
    /// Largest frame accepted, header included, in bytes.
    pub max_frame: usize,
    /// Frames handled per connection per call to `process` before others get a turn.
    pub frames_per_turn: usize,
    /// A peer whose unsent output passes this many bytes is disconnected (it is not
    /// reading).
    pub max_output: usize,
    /// protocol.md 2: error replies in a row that close the connection (at most 255: the
    /// streak is counted in a byte).
    pub max_consecutive_errors: u32,
    /// The timer wheel's resolution: a deadline fires up to one tick late, never early.
    /// Must not be zero.
    pub tick: Duration,
    /// The least `retry_after` in LOGIN_FAILURE SERVER_BUSY (when many are refused at
    /// once, later ones wait longer: `engine::busy`).
    pub busy_retry_after: Duration,
    /// Live sessions one account may have; 0 means no limit.
    pub max_sessions_per_user: usize,
    /// What a login beyond [`max_sessions_per_user`](Self::max_sessions_per_user) does.
    pub on_limit: OnLimit,
    /// What a resume (VERIFY_SESSION) of a session in use on another connection does.
    pub duplicate: DuplicatePolicy,
    /// Whether REGISTER_REQUEST is accepted.
    pub registration_open: bool,
    /// Shortest password a new account (protocol.md 5.15) or CHANGE_PASSWORD's new
    /// password may have, in bytes.
    pub min_password_len: usize,
    /// PBKDF2 iterations for new password records (registration, CHANGE_PASSWORD). The
    /// server replaces it with [`ServerConfig::iterations`](crate::server::ServerConfig::iterations).
    pub iterations: u32,
    /// How long a dead token is remembered at least after its session ended (and at
    /// least until the session would have expired), so a resume can say "revoked" or
    /// "logged out" rather than "unknown".
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
    /// Open connections in all; beyond it a new connection gets a FATAL SERVER_BUSY push
    /// and is closed. 0: no limit.
    pub max_connections: usize,
    /// The same, per client IP address. 0: no limit.
    pub max_connections_per_address: usize,
    /// SERVER_SHUTDOWN's `reconnect_after_ms`.
    pub shutdown_reconnect_after: Duration,
    /// Events handed to the store and not yet durable beyond which requests that need a
    /// durable write are refused (STORAGE_UNAVAILABLE) until half of them are durable:
    /// the bound on what a slow disk makes wait in memory. 0: no bound.
    pub max_undurable_events: usize,
    /// The `retry_after` of a STORAGE_UNAVAILABLE refusal.
    pub storage_retry_after: Duration,
    /// The application roles an administrator may give (`--role`; protocol.md 5.48):
    /// beyond `user` and `admin`, which only `admin` of grants the administrative
    /// requests.
    pub app_roles: Vec<String>,
    /// Other servers share the store (a cluster): a new account's name is reserved in it
    /// before the account is made (`auth::Reservation`), the others' changes come in
    /// through [`Engine::apply_remote`], and a detached session's expiry is ended by the
    /// sweeper node only. Set by the server from its store, not an option.
    pub cluster: bool,
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
            max_undurable_events: 50_000,
            storage_retry_after: Duration::from_secs(1),
            app_roles: Vec::new(),
            cluster: false,
        }
    }
}

/// Counters since start, for the summary log line and ADMIN_STATS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted (those refused at accept included).
    pub accepted: u64,
    /// Logins answered with LOGIN_SUCCESS.
    pub logins_ok: u64,
    /// Logins answered with LOGIN_FAILURE other than THROTTLED or SERVER_BUSY (invalid
    /// credentials, suspended, daily limit, session limit).
    pub logins_failed: u64,
    /// Logins and registrations refused with SERVER_BUSY because the hash queue was full.
    pub logins_busy: u64,
    /// Refused by throttling (account delay, address bucket or hash cap).
    pub logins_throttled: u64,
    /// HEARTBEATs answered with HEARTBEAT_ACK.
    pub heartbeats: u64,
    /// Sessions ended by their own logout (LOGOUT_REQUEST, LOGOUT_ALL `all`).
    pub logouts: u64,
    /// Logged-in connections closed by the heartbeat timeout.
    pub idle_timeouts: u64,
    /// Connections closed by the login deadline.
    pub login_timeouts: u64,
    /// Sessions ended by their idle or absolute expiry.
    pub sessions_expired: u64,
    /// Sessions ended by a revocation.
    pub revocations: u64,
    /// Sessions resumed with VERIFY_SESSION.
    pub resumes: u64,
    /// Accounts created by REGISTER_REQUEST.
    pub registrations: u64,
    /// Frames that could not be decoded.
    pub protocol_errors: u64,
    /// Connections closed because their unsent output passed
    /// [`max_output`](EngineConfig::max_output).
    pub output_overflows: u64,
    /// Passwords changed with CHANGE_PASSWORD.
    pub password_changes: u64,
    /// Connections refused at accept (connection limits).
    pub connections_refused: u64,
    /// Requests refused with STORAGE_UNAVAILABLE.
    pub storage_refusals: u64,
    /// LOGIN_FAILUREs sent, by reason, in [`LoginFailureReason::ALL`]'s order: each one
    /// counted once, whatever decided it (unlike `logins_failed`, `logins_busy` and
    /// `logins_throttled`, which also count registrations and password changes refused).
    pub login_failures: [u64; LoginFailureReason::ALL.len()],
    /// Sessions ended, by how.
    pub session_ends: SessionEnds,
    /// Sessions taken over by a VERIFY_SESSION on another connection (the old one told
    /// SESSION_REVOKED TAKEN_OVER): the session lives on, so no end is counted.
    pub takeovers: u64,
}

/// Sessions ended since start, by how (every end goes through `ending::end_session`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionEnds {
    /// By their own logout.
    pub logged_out: u64,
    /// By the idle expiry.
    pub expired_idle: u64,
    /// By the absolute expiry.
    pub expired_absolute: u64,
    /// By a revocation, by reason, in [`RevokeReason::ALL`]'s order.
    pub revoked: [u64; RevokeReason::ALL.len()],
}

impl Stats {
    /// Counts a LOGIN_FAILURE with `reason` (the server sends only reasons it knows).
    pub(crate) fn count_login_failure(&mut self, reason: LoginFailureReason) {
        if let Some(i) = LoginFailureReason::ALL.iter().position(|&r| r == reason) {
            self.login_failures[i] += 1;
        }
    }
}

/// How often the tombstones whose time has come are forgotten: one timer for all of
/// them, so a tombstone may outlive its promised time by up to this much, never less.
const TOMBSTONE_SWEEP: Duration = Duration::from_secs(60);

/// What a wheel entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKey {
    /// The connection's login deadline or heartbeat timeout, by its state.
    Conn(ConnId),
    /// A session's idle / absolute expiry.
    Session(u64),
    /// Forget the tombstones whose time has come (every [`TOMBSTONE_SWEEP`]).
    TombstoneSweep,
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
    /// The key of the tags bound connections keep of their tokens (`session::token`);
    /// None if the OS generator failed (every check then takes the digest path).
    token_key: Option<TokenKey>,
    origin: Instant,
    clock: WallClock,
    hash_jobs: VecDeque<HashJob>,
    /// Durable changes for the journal, taken once per turn ([`Engine::poll_batch`]).
    events: Vec<Event>,
    /// The last batch handed out by `poll_batch`, and the last one known durable.
    batch_seq: u64,
    durable_seq: u64,
    /// Connections whose output waits for a batch, in batch order.
    held: VecDeque<(u64, ConnId)>,
    /// `events.len()` when the current step began, and the connections it wrote to.
    step_mark: usize,
    step_sent: Vec<ConnId>,
    /// Connections with input to handle again without new bytes (a login was decided;
    /// the per-turn frame cap was hit), for the next turn.
    wakeups: Vec<ConnId>,
    /// Connections to transmit this turn (output to write, or closing).
    flagged: Vec<ConnId>,
    /// A turn's own lists, kept between turns so a turn does not allocate.
    scratch: Vec<ConnId>,
    stats: Stats,
    policy: LoginPolicy,
    /// `retry_after` of SERVER_BUSY refusals, spread at the measured hash rate.
    busy: BusyPacer,
    audit_log: AuditLog,
    /// Size of the journal as last reported by the store (ADMIN_STATS).
    journal_bytes: u64,
    /// The store refuses commits (a full disk): `storage`.
    store_full: bool,
    /// Too many events wait for the disk: `storage`.
    backlogged: bool,
    /// Batches handed out and not yet durable, with their event counts, and the sum.
    undurable: VecDeque<(u64, usize)>,
    undurable_events: usize,
    /// Open connections per peer IP (for `max_connections_per_address`).
    per_address: hashbrown::HashMap<std::net::IpAddr, u32>,
    summary_expired: u64,
    last_summary: (Stats, usize, usize),
    /// The other nodes of a cluster, as far as this one needs them (`remote`).
    remote: remote::Remote,
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
        wheel.insert(origin + TOMBSTONE_SWEEP, TimerKey::TombstoneSweep);
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
            token_key: match TokenKey::random() {
                Ok(k) => Some(k),
                Err(e) => {
                    log::warn!("no key for token tags ({e}): every request's token is hashed");
                    None
                }
            },
            origin,
            clock: WallClock::new(origin, origin_unix_ms),
            hash_jobs: VecDeque::new(),
            events: Vec::new(),
            batch_seq: 0,
            durable_seq: 0,
            held: VecDeque::new(),
            step_mark: 0,
            step_sent: Vec::new(),
            wakeups: Vec::new(),
            flagged: Vec::new(),
            scratch: Vec::new(),
            stats: Stats::default(),
            policy,
            busy,
            audit_log,
            journal_bytes: 0,
            store_full: false,
            backlogged: false,
            undurable: VecDeque::new(),
            undurable_events: 0,
            per_address: hashbrown::HashMap::new(),
            summary_expired: 0,
            last_summary: (Stats::default(), 0, 0),
            remote: remote::Remote::default(),
        }
    }

    // ---- queries ------------------------------------------------------------------------

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Every account.
    pub fn users(&self) -> &UserTable {
        &self.users
    }

    /// Every live session.
    pub fn sessions(&self) -> &SessionTable {
        &self.sessions
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Sessions bound to a live connection.
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

    /// Whether `id` names a connection that is still open (not stale).
    pub fn contains(&self, id: ConnId) -> bool {
        self.conn(id).is_some()
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns
            .get(id.index as usize)
            .filter(|c| c.id.generation == id.generation)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        slot(&mut self.conns, id)
    }

    /// The tag a connection bound with `token` keeps (0 without a key: never matches a
    /// check, which then takes the digest path).
    fn token_tag(&self, token: &protocol::Token) -> u64 {
        self.token_key.as_ref().map_or(0, |k| k.tag(token))
    }
}

/// Most connections (and sessions, and twice the timers) reserved at startup.
const MAX_RESERVED: usize = 65_536;

/// Entries a scratch list keeps between turns; more is given back once it is drained.
const SCRATCH_KEEP: usize = 1024;

/// Frees a drained list's burst-sized allocation (a burst of 10,000 logins must not leave
/// its high-water mark allocated for good).
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
