//! How a connection gets a session: LOGIN_REQUEST, REGISTER_REQUEST and VERIFY_SESSION,
//! the hash and store answers they wait for, and the session limit per user.

use std::time::{Duration, Instant};

use log::{debug, error, info};

use super::ending::By;
use super::event::{Actor, Audit, AuditKind, Event, StoredSession};
use super::{millis, slot, DuplicatePolicy, End, Engine, OnLimit, Refusal, TimerKey};
use crate::auth::{HashJob, HashResult, JobKind, JobOutcome, Reservation};
use crate::conn::{Conn, ConnId, ConnState, Peer, PendingAuth, PendingKind};
use crate::protocol::{
    valid_email, valid_new_username, DuplicateSession, ErrorCode, Flags, InvalidReason,
    LoginFailure, LoginFailureReason, LoginRequest, LoginSuccess, Message, RegisterFailure,
    RegisterFailureReason, RegisterRequest, RegisterSuccess, RevokeReason, SessionInfo,
    SessionInvalid, SessionValid, Token, VerifySession,
};
use crate::session::{token, Digest, Session};

impl Engine {
    pub(super) fn start_login(
        &mut self,
        id: ConnId,
        rid: u32,
        req: LoginRequest,
        deadline: Instant,
        now: Instant,
    ) {
        let (user_id, record) = match self.users.by_name(&req.username) {
            Some(u) => (Some(u.id), u.password.clone()),
            // Unknown users cost the same hash: timing does not reveal who exists.
            None => (None, self.dummy.clone()),
        };
        if let Err(wait) = self.admit_hash(id, user_id, now) {
            self.mark_valid_streak(id);
            let failure = LoginFailure {
                reason: LoginFailureReason::Throttled,
                retry_after_ms: millis(wait),
                message: "too many attempts; retry later".into(),
            };
            let tried = Tried::of(&req.username, &req.client, &req.platform);
            self.refuse_login(id, rid, user_id.unwrap_or(0), tried, failure, now);
            return;
        }
        let record_stamp = stamp(&record);
        let job = JobKind::Verify {
            password: req.password,
            record,
        };
        let pending = PendingAuth {
            request_id: rid,
            kind: PendingKind::Login {
                user_id,
                record_stamp,
            },
            username: req.username,
            client: req.client,
            platform: req.platform,
            deadline,
        };
        self.start_hash(id, job, pending);
    }

    pub(super) fn start_register(
        &mut self,
        id: ConnId,
        rid: u32,
        req: RegisterRequest,
        deadline: Instant,
        now: Instant,
    ) {
        // protocol.md 5.15: the checks, in this order.
        let refusal = if !self.cfg.registration_open {
            Some((
                RegisterFailureReason::RegistrationClosed,
                "registration is closed",
            ))
        } else if !valid_new_username(&req.username) {
            Some((
                RegisterFailureReason::InvalidUsername,
                "username must be 3-32 of a-z 0-9 . _ - starting with a letter or digit",
            ))
        } else if req.password.len() < self.cfg.min_password_len {
            Some((
                RegisterFailureReason::PasswordTooShort,
                "password too short",
            ))
        } else if !valid_email(&req.email) {
            Some((RegisterFailureReason::InvalidEmail, "invalid email address"))
        } else if self.users.by_name(&req.username).is_some() {
            Some((RegisterFailureReason::UsernameTaken, "username taken"))
        } else {
            None
        };
        if let Some((reason, msg)) = refusal {
            self.register_failed(id, rid, reason, msg, now);
            return;
        }
        if self.admit_hash(id, None, now).is_err() {
            self.stats.logins_throttled += 1;
            let msg = "too many attempts from your address; retry later";
            self.register_failed(id, rid, RegisterFailureReason::ServerBusy, msg, now);
            return;
        }
        let job = JobKind::Create {
            password: req.password,
            iterations: self.cfg.iterations,
        };
        let pending = PendingAuth {
            request_id: rid,
            kind: PendingKind::Register { email: req.email },
            username: req.username,
            client: String::new(),
            platform: String::new(),
            deadline,
        };
        self.start_hash(id, job, pending);
    }

    /// Asks the login policy whether a hash may start for `id` (an attempt for `user`);
    /// on yes the caller moves the connection into a hashing state (Authenticating or
    /// ChangingPassword), which counts against its address until it leaves it; on no the
    /// error says how long to wait.
    pub(super) fn admit_hash(
        &mut self,
        id: ConnId,
        user: Option<u64>,
        now: Instant,
    ) -> Result<(), Duration> {
        let Some(ip) = self.conn(id).map(|c| c.peer.ip()) else {
            return Err(Duration::ZERO);
        };
        self.policy
            .admit(user, ip, now)
            .map_err(|Refusal::Throttled(wait)| wait)
    }

    fn start_hash(&mut self, id: ConnId, kind: JobKind, pending: PendingAuth) {
        // A cluster's new account: its name is reserved in the shared store once hashed.
        let reserve = match &pending.kind {
            PendingKind::Register { .. } if self.cfg.cluster => {
                Some(Box::new(pending.username.clone()))
            }
            _ => None,
        };
        self.hash_jobs.push_back(HashJob {
            ticket: id.to_u64(),
            kind,
            reserve,
        });
        let Some(conn) = slot(&mut self.conns, id) else {
            return;
        };
        // The login deadline's timer is dropped while the hash runs (the client did send
        // its request in time) and re-armed if the request fails.
        let timer = conn.timer.take();
        conn.begin_auth(pending);
        if let Some(t) = timer {
            self.wheel.cancel(t);
        }
    }

    /// A hash job handed out by [`Engine::poll_hash_job`] finished (on a worker, or
    /// inline): its request is answered.
    pub fn handle_hash_result(&mut self, result: HashResult, now: Instant) {
        self.begin_step();
        self.hash_result(result, now);
        self.end_step();
    }

    fn hash_result(&mut self, result: HashResult, now: Instant) {
        self.busy.hash_done();
        let Some(id) = ConnId::from_u64(result.ticket) else {
            return;
        };
        if self.conn(id).is_some_and(Conn::changing_password) {
            self.change_password_result(id, Ok(result.outcome), now);
            return;
        }
        // None: the connection closed while its password was being hashed.
        let Some(pending) = self.end_authenticating(id) else {
            return;
        };
        match (result.outcome, &pending.kind) {
            // The password it was checked against is still the account's (not changed or
            // reset while the hash ran).
            (
                JobOutcome::Verified(true),
                PendingKind::Login {
                    user_id: Some(uid),
                    record_stamp,
                },
            ) if self
                .users
                .get(*uid)
                .is_some_and(|u| stamp(&u.password) == *record_stamp) =>
            {
                self.login_ok(id, *uid, &pending, now)
            }
            (JobOutcome::Verified(_), PendingKind::Login { .. }) => {
                self.login_failed(id, &pending, now)
            }
            (JobOutcome::Created(_), PendingKind::Register { .. })
                if result.reserve == Reservation::Unavailable =>
            {
                self.rearm_login_deadline(id, pending.deadline);
                self.refuse_registration_for_storage(id, pending.request_id, now);
            }
            (JobOutcome::Created(record), PendingKind::Register { email }) => {
                // Checked again: another registration of the name may have won meanwhile
                // (here, or in a cluster on any node: the shared store reserved it).
                let now_ms = self.unix_ms(now);
                let email = email.clone();
                let role = crate::protocol::Role::User;
                let created = match result.reserve {
                    Reservation::Reserved(uid) => {
                        let name = &pending.username;
                        self.users
                            .create_as(uid, name, record, role, &email, now_ms)
                    }
                    Reservation::None => {
                        self.users
                            .create(&pending.username, record, role, &email, now_ms)
                    }
                    _ => Err(crate::session::UsernameTaken),
                };
                match created {
                    Ok(user) => {
                        let user = user.clone();
                        // The reply below is held until this event is durable
                        // (`durability`): REGISTER_SUCCESS implies the account survives.
                        self.events.push(Event::UserCreated(user.clone()));
                        let peer = self
                            .conn(id)
                            .map(|c| c.peer.to_string())
                            .unwrap_or_default();
                        let a = Audit::new(AuditKind::Registered, user.id, 0, peer);
                        self.audit(a, now);
                        self.stats.registrations += 1;
                        info!("registered user={} id={}", user.username, user.id);
                        self.rearm_login_deadline(id, pending.deadline);
                        self.send(
                            id,
                            pending.request_id,
                            Flags::NONE,
                            &Message::RegisterSuccess(RegisterSuccess {
                                user_id: user.id,
                                username: user.username,
                            }),
                            now,
                        );
                    }
                    Err(_) => self.register_failed(
                        id,
                        pending.request_id,
                        RegisterFailureReason::UsernameTaken,
                        "username taken",
                        now,
                    ),
                }
            }
            (outcome, _) => {
                error!(
                    "password job failed on a worker: conn={} ({:?})",
                    id.index, outcome
                );
                self.rearm_login_deadline(id, pending.deadline);
                self.reply_error(
                    id,
                    pending.request_id,
                    ErrorCode::InternalError,
                    "password could not be processed",
                    false,
                    now,
                );
            }
        }
        // Frames that arrived behind the request can be handled now.
        self.wakeups.push(id);
    }

    /// A hash job could not be taken (the workers' queue is full): its request is refused
    /// with SERVER_BUSY and a retry-after (`engine::busy`).
    pub fn handle_hash_refused(&mut self, job: HashJob, now: Instant) {
        self.begin_step();
        self.busy_reply(job, now);
        self.end_step();
    }

    fn busy_reply(&mut self, job: HashJob, now: Instant) {
        let Some(id) = ConnId::from_u64(job.ticket) else {
            return;
        };
        if self.conn(id).is_some_and(Conn::changing_password) {
            self.change_password_result(id, Err(job.kind), now);
            return;
        }
        let Some(pending) = self.end_authenticating(id) else {
            return;
        };
        self.stats.logins_busy += 1;
        debug!(
            "request refused, hash queue full: user={} peer={}",
            pending.username,
            self.conn(id)
                .map(|c| c.peer.to_string())
                .unwrap_or_default()
        );
        self.rearm_login_deadline(id, pending.deadline);
        let retry_after = self.busy.refuse(now);
        let msg = match pending.kind {
            PendingKind::Register { .. } => Message::RegisterFailure(RegisterFailure {
                reason: RegisterFailureReason::ServerBusy,
                message: "server busy, retry later".into(),
            }),
            _ => {
                self.stats
                    .count_login_failure(LoginFailureReason::ServerBusy);
                Message::LoginFailure(LoginFailure {
                    reason: LoginFailureReason::ServerBusy,
                    retry_after_ms: millis(retry_after),
                    message: "server busy, retry later".into(),
                })
            }
        };
        self.send(id, pending.request_id, Flags::NONE, &msg, now);
        self.wakeups.push(id);
    }

    /// Leaves Authenticating for AwaitingAuth (with the login deadline still in force) and
    /// returns what was pending; None if `id` is stale or not authenticating.
    fn end_authenticating(&mut self, id: ConnId) -> Option<Box<PendingAuth>> {
        let conn = self.conn_mut(id)?;
        let pending = conn.end_auth()?;
        let ip = conn.peer.ip();
        self.policy.hash_done(ip);
        Some(pending)
    }

    fn login_ok(&mut self, id: ConnId, uid: u64, pending: &PendingAuth, now: Instant) {
        let now_ms = self.unix_ms(now);
        let Some(peer) = self.conn(id).map(|c| c.peer) else {
            return;
        };
        if self.policy.succeeded(uid) {
            self.record_streak(uid);
        }
        let suspended = self.users.get(uid).is_some_and(|u| u.suspended);
        let refusal = if suspended {
            Some((
                LoginFailureReason::Suspended,
                0,
                "account suspended".to_owned(),
            ))
        } else if let Err(wait_ms) = self.count_daily(uid, now_ms) {
            let limit = self.policy.config().daily_logins;
            let msg = format!("daily login limit ({limit}) reached; resets at 00:00 UTC");
            Some((
                LoginFailureReason::DailyLimit,
                wait_ms.min(u32::MAX as u64) as u32,
                msg,
            ))
        } else {
            None
        };
        if let Some((reason, retry_after_ms, message)) = refusal {
            self.rearm_login_deadline(id, pending.deadline);
            let failure = LoginFailure {
                reason,
                retry_after_ms,
                message,
            };
            self.refuse_login(id, pending.request_id, uid, pending.tried(), failure, now);
            return;
        }
        // protocol.md 5.2 / the session limit: decided here, on the one loop thread, so
        // two logins racing cannot both win.
        let max = self.cfg.max_sessions_per_user;
        let live = self.sessions.of_user(uid);
        // Ended once the new session exists (so each record can name it as the cause).
        let mut displaced: Vec<u64> = Vec::new();
        if max > 0 && live.len() >= max {
            match self.cfg.on_limit {
                OnLimit::RejectNew => {
                    self.rearm_login_deadline(id, pending.deadline);
                    let failure = LoginFailure {
                        reason: LoginFailureReason::SessionLimit,
                        retry_after_ms: 0,
                        message: format!(
                            "at most {max} session(s) per user; log out elsewhere first"
                        ),
                    };
                    let tried = pending.tried();
                    self.refuse_login(id, pending.request_id, uid, tried, failure, now);
                    return;
                }
                OnLimit::RevokeOldest => {
                    let excess = live.len() + 1 - max;
                    displaced = live.take(excess).collect();
                }
            }
        }
        let (token, session_id) = match self.new_session(uid, pending, peer, now) {
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
                    now,
                );
                return;
            }
        };
        let by = Actor {
            user_id: uid,
            session_id,
            address: peer.to_string(),
            client: pending.client.clone(),
            platform: pending.platform.clone(),
        };
        for sid in displaced {
            let reason = RevokeReason::NewLogin;
            let end = End::Revoked {
                reason,
                by: by.clone(),
            };
            self.end_session(sid, end, 0, now);
        }
        self.activate(id, session_id, &token, now);
        let Some(user) = self.users.get_mut(uid) else {
            return;
        };
        let last_login = user.last_login_ms;
        user.last_login_ms = now_ms;
        self.events.push(Event::LastLogin {
            user_id: uid,
            at_ms: now_ms,
        });
        self.notify_new_login(uid, session_id, Some(id), now);
        self.stats.logins_ok += 1;
        let a = Audit::new(AuditKind::SessionCreated, uid, session_id, peer.to_string())
            .device(&pending.client, &pending.platform);
        self.audit(a, now);
        info!(
            "login ok user={} session={:016x} peer={} client={:?} platform={:?}",
            pending.username, session_id, peer, pending.client, pending.platform
        );
        let Some(session) = self.session_info(session_id, last_login) else {
            return;
        };
        self.send(
            id,
            pending.request_id,
            Flags::NONE,
            &Message::LoginSuccess(LoginSuccess { token, session }),
            now,
        );
        // protocol.md 5.46: the account's application role and profile follow, if any.
        self.push_user_info(id, uid, now);
    }

    /// Binds `id` to `session_id`, whose token (just checked) is `token`: ACTIVE, the
    /// token's tag kept for later checks, heartbeat timeout armed. While bound, the
    /// connection's one timer also watches the session's expiry (the earlier of the two
    /// deadlines), so an attached session costs no timer of its own.
    fn activate(&mut self, id: ConnId, session_id: u64, token: &Token, now: Instant) {
        let tag = self.token_tag(token);
        let Some(s) = self.sessions.get(session_id) else {
            return;
        };
        let due =
            (now + self.cfg.heartbeat_timeout).min(s.deadline(self.cfg.session_idle, &self.clock));
        let Some(conn) = slot(&mut self.conns, id) else {
            // not bound after all
            self.watch_session(session_id);
            return;
        };
        conn.activate(session_id, tag);
        let old = conn
            .timer
            .replace(self.wheel.insert(due, TimerKey::Conn(id)));
        if let Some(t) = old {
            self.wheel.cancel(t);
        }
        if self.sessions.bind(session_id, id) {
            self.attached += 1;
            if let Some(t) = self
                .sessions
                .get_mut(session_id)
                .and_then(|s| s.timer.take())
            {
                self.wheel.cancel(t);
            }
        }
    }

    /// What LOGIN_SUCCESS and SESSION_VALID say about a session.
    fn session_info(&self, sid: u64, last_login: u64) -> Option<SessionInfo> {
        let s = self.sessions.get(sid)?;
        let u = self.users.get(s.user_id)?;
        Some(SessionInfo {
            session_id: sid,
            user_id: u.id,
            role: u.role,
            username: u.username.clone(),
            user_created: u.created_ms,
            last_login,
            session_created: s.created_ms,
            session_expires: s.expires_ms,
            idle_expiry_ms: millis(self.cfg.session_idle),
            heartbeat_interval_ms: millis(self.cfg.heartbeat_interval),
            heartbeat_timeout_ms: millis(self.cfg.heartbeat_timeout),
        })
    }

    /// Draws a token and an id and records the session, with no timer: the caller binds it
    /// with `activate` next.
    fn new_session(
        &mut self,
        uid: u64,
        pending: &PendingAuth,
        peer: Peer,
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
                created_ms: now_ms,
                expires_ms: now_ms + lifetime.as_millis() as u64,
                saved_activity_ms: now_ms,
                last_activity_ms: self.clock.ms_ceil(now),
                device: self
                    .sessions
                    .intern_device(&pending.client, &pending.platform),
                peer,
                conn: None,
                timer: None,
            };
            let sid = session.id;
            let stored = StoredSession {
                id: sid,
                user_id: uid,
                digest: session.digest,
                client: pending.client.clone(),
                platform: pending.platform.clone(),
                peer: peer.to_string(),
                created_ms: now_ms,
                last_activity_ms: now_ms,
                expires_ms: session.expires_ms,
            };
            if self.sessions.insert(session).is_ok() {
                // No timer yet: `activate`, next, binds it to the connection's (or gives
                // it its own if the connection is gone).
                self.events.push(Event::SessionCreated(stored));
                return Ok((tok, sid));
            }
        }
        Err(std::io::Error::other("session id collisions"))
    }

    /// Journals `user`'s failure streak as the policy holds it now (protocol.md 4: a
    /// restart does not lift a delay).
    pub(super) fn record_streak(&mut self, user: u64) {
        let (failures, until) = self.policy.streak(user).unwrap_or((0, None));
        let until_ms = until.map_or(0, |t| self.clock.ms_ceil(t));
        self.events.push(Event::FailureStreak {
            user_id: user,
            failures,
            until_ms,
        });
    }

    /// Counts a login against the daily limit (when one is set), journaling the count.
    fn count_daily(&mut self, user: u64, now_ms: u64) -> Result<(), u64> {
        self.policy.count_daily(user, now_ms)?;
        if self.policy.config().daily_logins > 0 {
            if let Some((day, count)) = self.policy.daily_count(user) {
                self.events.push(Event::DailyLogins {
                    user_id: user,
                    day,
                    count,
                });
            }
        }
        Ok(())
    }

    fn login_failed(&mut self, id: ConnId, pending: &PendingAuth, now: Instant) {
        let uid = match pending.kind {
            PendingKind::Login { user_id, .. } => user_id.unwrap_or(0),
            _ => 0,
        };
        if uid != 0 {
            let delay = self.policy.failed(uid, now);
            self.record_streak(uid);
            if let Some(delay) = delay {
                info!(
                    "user={} throttled for {:?} after repeated failures",
                    pending.username, delay
                );
            }
        }
        self.rearm_login_deadline(id, pending.deadline);
        // protocol.md 5.3: "the server does not say which" part was wrong.
        let failure = LoginFailure {
            reason: LoginFailureReason::InvalidCredentials,
            retry_after_ms: 0,
            message: "invalid username or password".into(),
        };
        self.refuse_login(id, pending.request_id, uid, pending.tried(), failure, now);
    }

    /// Answers a login with LOGIN_FAILURE, every reason the same way: counted (throttled
    /// apart), logged, and audited as `login_failed` with the name tried and the reason.
    fn refuse_login(
        &mut self,
        id: ConnId,
        rid: u32,
        uid: u64,
        tried: Tried<'_>,
        f: LoginFailure,
        now: Instant,
    ) {
        let peer = self
            .conn(id)
            .map(|c| c.peer.to_string())
            .unwrap_or_default();
        if f.reason == LoginFailureReason::Throttled {
            self.stats.logins_throttled += 1;
        } else {
            self.stats.logins_failed += 1;
        }
        self.stats.count_login_failure(f.reason);
        let why = f.reason.name().to_lowercase().replace('_', " ");
        info!("login refused ({why}) user={} peer={peer}", tried.username);
        let detail = format!("{}: {why}", tried.username);
        let mut a = Audit::new(AuditKind::LoginFailed, uid, 0, peer)
            .reason(f.reason.to_u16())
            .device(tried.client, tried.platform)
            .note(detail);
        if uid == 0 {
            a = a.tried(tried.username);
        }
        self.audit(a, now);
        self.send(id, rid, Flags::NONE, &Message::LoginFailure(f), now);
    }

    fn register_failed(
        &mut self,
        id: ConnId,
        rid: u32,
        reason: RegisterFailureReason,
        msg: &str,
        now: Instant,
    ) {
        self.rearm_login_deadline_if_missing(id);
        self.mark_valid_streak(id);
        let failure = RegisterFailure {
            reason,
            message: msg.into(),
        };
        self.send(
            id,
            rid,
            Flags::NONE,
            &Message::RegisterFailure(failure),
            now,
        );
    }

    /// VERIFY_SESSION (protocol.md 5.11): resume a session on this connection.
    pub(super) fn verify_session(&mut self, id: ConnId, rid: u32, v: VerifySession, now: Instant) {
        let d = Digest::of(&v.token);
        self.mark_valid_streak(id);
        let Some(sid) = self.sessions.id_by_digest(&d) else {
            let reason = self
                .sessions
                .ended_reason(&d)
                .unwrap_or(InvalidReason::Unknown);
            self.session_invalid(id, rid, reason, now);
            return;
        };
        let idle = self.cfg.session_idle;
        let Some(s) = self.sessions.get(sid) else {
            return;
        };
        if let Some(why) = s.expired(now, idle, &self.clock) {
            self.end_session(sid, End::Expired(why), 0, now);
            self.session_invalid(id, rid, InvalidReason::Expired, now);
            return;
        }
        let Some(peer) = self.conn(id).map(|c| c.peer) else {
            return;
        };
        if self.cfg.duplicate == DuplicatePolicy::Reject && self.bound_elsewhere(sid) {
            // In use on another node (which, under Takeover, closes its connection when
            // it reads this resume: `remote`).
            info!("resume refused, session in use on another node: session={sid:016x} peer={peer}");
            let msg = Message::DuplicateSession(DuplicateSession {
                session_id: sid,
                message: "session is in use on another connection".into(),
            });
            self.send(id, rid, Flags::FATAL, &msg, now);
            self.close(id, now);
            return;
        }
        if let Some(other) = s.conn.filter(|&c| self.contains(c)) {
            match self.cfg.duplicate {
                DuplicatePolicy::Reject => {
                    info!("resume refused, session in use: session={sid:016x} peer={peer}");
                    self.send(
                        id,
                        rid,
                        Flags::FATAL,
                        &Message::DuplicateSession(DuplicateSession {
                            session_id: sid,
                            message: "session is in use on another connection".into(),
                        }),
                        now,
                    );
                    self.close(id, now);
                    return;
                }
                DuplicatePolicy::Takeover => {
                    self.detach(other, now);
                    let address = peer.to_string();
                    let by = By {
                        client: &v.client,
                        platform: &v.platform,
                        address: &address,
                    };
                    self.push_revoked(other, sid, RevokeReason::TakenOver, &by, now);
                    self.stats.takeovers += 1;
                    self.close(other, now);
                }
            }
        }
        if let Some(s) = self.sessions.get_mut(sid) {
            s.last_activity_ms = self.clock.ms_ceil(now);
            s.peer = peer;
        }
        if !v.client.is_empty() || !v.platform.is_empty() {
            self.sessions.set_device(sid, &v.client, &v.platform);
        }
        self.activate(id, sid, &v.token, now);
        self.stats.resumes += 1;
        let last_login = self
            .sessions
            .get(sid)
            .and_then(|s| self.users.get(s.user_id))
            .map(|u| u.last_login_ms)
            .unwrap_or(0);
        info!("session resumed session={sid:016x} peer={peer}");
        if let Some(s) = self.sessions.get(sid) {
            let (client, platform) = self.sessions.device(s);
            let a = Audit::new(AuditKind::SessionResumed, s.user_id, sid, peer.to_string())
                .device(client, platform);
            self.audit(a, now);
        }
        let Some(session) = self.session_info(sid, last_login) else {
            return;
        };
        self.send(
            id,
            rid,
            Flags::NONE,
            &Message::SessionValid(SessionValid { session }),
            now,
        );
        // protocol.md 5.42: the attributes follow as a push (a client that does not know
        // ATTRS ignores it, protocol.md 8).
        if let Some(uid) = self.sessions.get(sid).map(|s| s.user_id) {
            self.push_user_info(id, uid, now);
        }
        self.push_attrs(id, sid, now);
    }

    fn session_invalid(&mut self, id: ConnId, rid: u32, reason: InvalidReason, now: Instant) {
        let message = match reason {
            InvalidReason::Unknown => "unknown session",
            InvalidReason::Expired => "session expired",
            InvalidReason::Revoked => "session revoked",
            InvalidReason::LoggedOut => "session logged out",
            InvalidReason::Other(_) => "session not valid",
        };
        self.send(
            id,
            rid,
            Flags::NONE,
            &Message::SessionInvalid(SessionInvalid {
                reason,
                message: message.into(),
            }),
            now,
        );
    }

    pub(super) fn rearm_login_deadline(&mut self, id: ConnId, deadline: Instant) {
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

    /// In AwaitingAuth the login deadline timer normally runs; this restores it where a
    /// refusal happens without a hash having dropped it (it is a no-op otherwise).
    fn rearm_login_deadline_if_missing(&mut self, id: ConnId) {
        let Some(conn) = self.conn(id) else { return };
        if let (None, ConnState::AwaitingAuth { deadline }) = (conn.timer, conn.state()) {
            let deadline = *deadline;
            self.rearm_login_deadline(id, deadline);
        }
    }
}

/// What a refused login tried: the name and the device it gave.
#[derive(Clone, Copy)]
struct Tried<'a> {
    username: &'a str,
    client: &'a str,
    platform: &'a str,
}

impl<'a> Tried<'a> {
    fn of(username: &'a str, client: &'a str, platform: &'a str) -> Tried<'a> {
        Tried {
            username,
            client,
            platform,
        }
    }
}

impl PendingAuth {
    fn tried(&self) -> Tried<'_> {
        Tried::of(&self.username, &self.client, &self.platform)
    }
}

/// A stamp of a password record, to tell whether the account's record is still the one a
/// hash checked (its salt differs from any record made since): hashed where it lies, no
/// text form made on the loop.
fn stamp(record: &crate::auth::PasswordRecord) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    record.hash(&mut h);
    h.finish()
}
