//! The deterministic harness (quinn's `Pair` idea): drives the sans-IO engine with
//! made-up `Instant`s, runs password hashes synchronously, and checks every reply byte for
//! byte through the codec. No sockets, no threads, no sleeping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sessiond::auth::{run_job, HashResult, PasswordRecord};
use sessiond::conn::ConnId;
use sessiond::engine::{DuplicatePolicy, OnLimit};
use sessiond::engine::{Engine, EngineConfig};
use sessiond::protocol::{
    self, DecodeLimits, DisconnectReason, DisconnectRequest, ErrorCode, ExpiredReason, Flags,
    Frame, Heartbeat, InvalidReason, LoginFailureReason, LoginRequest, LogoutRequest, Message,
    RegisterFailureReason, RegisterRequest, RevokeReason, Role, Token, VerifySession,
};
use sessiond::session::UserTable;

const ALICE_PW: &str = "correct horse; battery";

struct Harness {
    engine: Engine,
    now: Instant,
    /// When false, hash jobs wait in `held` until `release_hashes`.
    hash_inline: bool,
    held: Vec<sessiond::auth::HashJob>,
    next_rid: u32,
    /// When true, every batch of events is durable as soon as it is taken; when false,
    /// batches wait in `pending` until `make_durable`.
    auto_durable: bool,
    pending: Vec<u64>,
    /// Every event taken from the engine, in order (what the journal would hold).
    journal: Vec<sessiond::engine::event::Event>,
}

impl Harness {
    fn new(mut cfg: EngineConfig) -> Harness {
        cfg.iterations = 1;
        let mut users = UserTable::new();
        let rec = PasswordRecord::create(ALICE_PW.as_bytes(), 1).unwrap();
        users
            .create("alice", rec.clone(), Role::User, "", 1_000)
            .unwrap();
        users.create("bob", rec, Role::Admin, "", 2_000).unwrap();
        let now = Instant::now();
        let dummy = PasswordRecord::dummy(1).unwrap();
        Harness {
            engine: Engine::new(cfg, users, dummy, now, 1_767_225_600_000),
            now,
            hash_inline: true,
            held: Vec::new(),
            next_rid: 1,
            auto_durable: true,
            pending: Vec::new(),
            journal: Vec::new(),
        }
    }

    fn connect(&mut self) -> ConnId {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        self.engine.accept(peer, self.now)
    }

    fn rid(&mut self) -> u32 {
        self.next_rid += 1;
        self.next_rid
    }

    /// Bytes arrive from the peer: processed like the server loop would.
    fn feed(&mut self, id: ConnId, bytes: &[u8]) {
        self.engine
            .input_mut(id)
            .expect("connection open")
            .extend_from_slice(bytes);
        self.engine.process(id, self.now);
        self.settle();
    }

    fn send(&mut self, id: ConnId, msg: Message) -> u32 {
        let rid = self.rid();
        self.feed(id, &Frame::reply(rid, msg).to_vec());
        rid
    }

    /// Runs hash jobs and deferred processing until nothing is left (bounded).
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let jobs = self.engine.take_hash_jobs();
            let mut wake = Vec::new();
            self.engine.take_wakeups(&mut wake);
            if jobs.is_empty() && wake.is_empty() {
                self.commit();
                return;
            }
            for job in jobs {
                if self.hash_inline {
                    let outcome = run_job(job.kind);
                    self.engine.on_hash_result(
                        HashResult {
                            ticket: job.ticket,
                            outcome,
                        },
                        self.now,
                    );
                } else {
                    self.held.push(job);
                }
            }
            for id in wake {
                self.engine.process(id, self.now);
            }
        }
        panic!("engine did not settle");
    }

    /// What the server does at the end of a turn: the events go to the journal as one
    /// batch, durable at once unless `auto_durable` is off.
    fn commit(&mut self) {
        if let Some(b) = self.engine.take_batch() {
            self.journal.extend(b.events);
            if self.auto_durable {
                self.engine.durable(b.seq);
            } else {
                self.pending.push(b.seq);
            }
        }
    }

    /// The store reports every pending batch durable.
    fn make_durable(&mut self) {
        if let Some(seq) = self.pending.pop() {
            self.pending.clear();
            self.engine.durable(seq);
        }
    }

    fn release_hashes(&mut self) {
        self.hash_inline = true;
        let held = std::mem::take(&mut self.held);
        for job in held {
            let outcome = run_job(job.kind);
            self.engine.on_hash_result(
                HashResult {
                    ticket: job.ticket,
                    outcome,
                },
                self.now,
            );
        }
        self.settle();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.engine.on_timers(self.now);
        self.settle();
    }

    /// Everything the engine queued for `id`, decoded; the output is consumed.
    fn frames(&mut self, id: ConnId) -> Vec<Frame> {
        if self.engine.is_held(id) {
            // The server writes nothing of a held connection.
            return Vec::new();
        }
        let Some(out) = self.engine.output_mut(id) else {
            return Vec::new();
        };
        let mut v = Vec::new();
        while let Some(f) = protocol::decode(out, DecodeLimits::client(1 << 20)).unwrap() {
            v.push(f);
        }
        assert!(out.is_empty(), "partial frame left in output");
        v
    }

    fn one(&mut self, id: ConnId) -> Frame {
        let mut f = self.frames(id);
        assert_eq!(f.len(), 1, "expected one frame, got {f:?}");
        f.remove(0)
    }

    fn closing(&self, id: ConnId) -> bool {
        self.engine.ready_to_close(id)
    }

    fn login(&mut self, id: ConnId, user: &str, pw: &str) -> Frame {
        let rid = self.send(id, login_msg(user, pw));
        let f = self.one(id);
        assert_eq!(f.request_id, rid);
        f
    }

    fn login_ok(&mut self, id: ConnId) -> Token {
        self.login_as(id, "alice")
    }

    /// Logs `user` (alice or bob; same password) in on `id`.
    fn login_as(&mut self, id: ConnId, user: &str) -> Token {
        match self.login(id, user, ALICE_PW).message {
            Message::LoginSuccess(s) => s.token,
            other => panic!("login failed: {other:?}"),
        }
    }
}

fn login_msg(user: &str, pw: &str) -> Message {
    Message::LoginRequest(LoginRequest {
        username: user.into(),
        password: pw.into(),
        client: "harness".into(),
        platform: "test".into(),
    })
}

fn hb(token: &Token) -> Message {
    Message::Heartbeat(Heartbeat {
        token: token.clone(),
    })
}

fn error_code(f: &Frame) -> ErrorCode {
    match &f.message {
        Message::GeneralFailure(g) => g.code,
        other => panic!("expected GENERAL_FAILURE, got {other:?}"),
    }
}

fn disconnect_reason(f: &Frame) -> DisconnectReason {
    match &f.message {
        Message::DisconnectAck(a) => a.reason,
        other => panic!("expected DISCONNECT_ACK, got {other:?}"),
    }
}

fn tick() -> Duration {
    EngineConfig::default().tick
}

#[test]
fn login_success_advertises_timing_and_user_data() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    let c = h.connect();
    h.advance(Duration::from_secs(2));
    let f = h.login(c, "alice", ALICE_PW);
    assert_eq!(f.flags, Flags::NONE);
    let Message::LoginSuccess(s) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(
        (
            s.session.user_id,
            s.session.role,
            s.session.username.as_str()
        ),
        (1, Role::User, "alice")
    );
    assert_eq!(s.session.user_created, 1_000);
    assert_eq!(s.session.last_login, 0);
    assert_eq!(s.session.session_created, 1_767_225_602_000);
    assert_eq!(
        s.session.session_expires,
        1_767_225_602_000 + 24 * 3600 * 1000
    );
    assert_eq!(s.session.heartbeat_interval_ms, 5_000);
    assert_eq!(s.session.heartbeat_timeout_ms, 15_000);
    assert_eq!(s.session.idle_expiry_ms, 1_800_000);
    assert_eq!(h.engine.sessions().len(), 1);
    assert_eq!(h.engine.attached_sessions(), 1);

    // A second login of the same user reports the first as last_login.
    let c2 = h.connect();
    h.advance(Duration::from_secs(1));
    let Message::LoginSuccess(s2) = h.login(c2, "alice", ALICE_PW).message else {
        panic!()
    };
    assert_eq!(s2.session.last_login, 1_767_225_602_000);
    assert_ne!(s2.token, s.token);
    assert_ne!(s2.session.session_id, s.session.session_id);
}

#[test]
fn wrong_password_and_unknown_user_fail_alike() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let a = h.login(c, "alice", "wrong");
    let b = h.login(c, "nobody", "wrong");
    for f in [&a, &b] {
        let Message::LoginFailure(lf) = &f.message else {
            panic!("{f:?}")
        };
        assert_eq!(lf.reason, LoginFailureReason::InvalidCredentials);
        assert_eq!(lf.message, "invalid username or password");
    }
    // still in AWAITING_AUTH: a correct login works on the same connection
    h.login_ok(c);
    assert_eq!(h.engine.stats().logins_failed, 2);
}

#[test]
fn heartbeats_keep_the_connection_past_the_timeout() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let tok = h.login_ok(c);
    for _ in 0..10 {
        h.advance(Duration::from_secs(5));
        let rid = h.send(c, hb(&tok));
        let f = h.one(c);
        assert_eq!(f.request_id, rid);
        assert!(matches!(f.message, Message::HeartbeatAck(_)));
    }
    // 50 s > 15 s timeout, still open
    assert!(!h.closing(c));
    assert_eq!(h.engine.stats().heartbeats, 10);
}

#[test]
fn silence_closes_within_timeout_plus_one_tick() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let tok = h.login_ok(c);
    h.advance(Duration::from_secs(7));
    h.send(c, hb(&tok));
    h.frames(c);
    // last valid frame at t=7 s: the deadline is t=22 s
    h.advance(Duration::from_secs(15) - tick());
    assert!(h.frames(c).is_empty());
    assert!(!h.closing(c));
    h.advance(tick());
    let f = h.one(c);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    assert_eq!(f.request_id, 0);
    assert_eq!(disconnect_reason(&f), DisconnectReason::IdleTimeout);
    assert!(h.closing(c));
    // the session survives, detached
    assert_eq!(h.engine.sessions().len(), 1);
    assert_eq!(h.engine.attached_sessions(), 0);
}

#[test]
fn login_deadline_is_not_extended_by_failed_logins() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    h.advance(Duration::from_secs(9));
    h.login(c, "alice", "wrong");
    h.advance(Duration::from_secs(1) - tick());
    assert!(!h.closing(c));
    h.advance(tick());
    let f = h.one(c);
    assert_eq!(disconnect_reason(&f), DisconnectReason::LoginTimeout);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    assert!(h.closing(c));
}

#[test]
fn frames_pipelined_behind_a_login_wait_for_its_answer() {
    let mut h = Harness::new(EngineConfig::default());
    h.hash_inline = false;
    let c = h.connect();
    let mut bytes = Frame::reply(1, login_msg("alice", ALICE_PW)).to_vec();
    bytes.extend(Frame::reply(2, Message::DisconnectRequest(DisconnectRequest)).to_vec());
    h.feed(c, &bytes);
    assert!(h.frames(c).is_empty(), "nothing answered while hashing");
    h.release_hashes();
    let f = h.frames(c);
    assert_eq!(f.len(), 2);
    assert!(matches!(f[0].message, Message::LoginSuccess(_)));
    assert_eq!(f[1].request_id, 2);
    assert_eq!(disconnect_reason(&f[1]), DisconnectReason::ClientRequest);
    assert_eq!(f[1].flags, Flags::FATAL);
    assert!(h.closing(c));
}

#[test]
fn foreign_and_unknown_tokens_get_general_failure() {
    let mut h = Harness::new(EngineConfig::default());
    let a = h.connect();
    let b = h.connect();
    let tok_a = h.login_ok(a);
    let tok_b = h.login_as(b, "bob");
    h.send(a, hb(&tok_b));
    let f = h.one(a);
    assert_eq!(error_code(&f), ErrorCode::TokenMismatch);
    assert_eq!(f.flags, Flags::NONE);
    h.send(a, hb(&Token([0xab; 32])));
    assert_eq!(error_code(&h.one(a)), ErrorCode::InvalidToken);
    // the connection is fine afterwards
    h.send(a, hb(&tok_a));
    assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
}

#[test]
fn invalid_frames_do_not_reset_the_heartbeat_timeout() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    h.login_ok(c);
    h.advance(Duration::from_secs(10));
    h.send(c, hb(&Token([1; 32])));
    h.frames(c);
    h.advance(Duration::from_secs(5));
    assert_eq!(disconnect_reason(&h.one(c)), DisconnectReason::IdleTimeout);
}

#[test]
fn anything_but_login_before_login_is_fatal_auth_required() {
    for msg in [
        hb(&Token([0; 32])),
        Message::LogoutRequest(LogoutRequest {
            token: Token([0; 32]),
        }),
    ] {
        let mut h = Harness::new(EngineConfig::default());
        let c = h.connect();
        let rid = h.send(c, msg);
        let f = h.one(c);
        assert_eq!(f.request_id, rid);
        assert_eq!(f.flags, Flags::FATAL);
        assert_eq!(error_code(&f), ErrorCode::AuthRequired);
        assert!(h.closing(c));
    }
    // an unknown opcode before login: fatal too
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    h.feed(c, &[0x53, 0x44, 0x01, 0x7e, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0]);
    let f = h.one(c);
    assert_eq!(error_code(&f), ErrorCode::UnknownOpcode);
    assert!(f.flags.is_fatal());
}

#[test]
fn after_login_bad_frames_are_answered_and_the_connection_goes_on() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let tok = h.login_ok(c);
    // unknown opcode, with a payload that must be skipped
    h.feed(
        c,
        &[
            0x53, 0x44, 0x01, 0x7e, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2, 0xde, 0xad,
        ],
    );
    let f = h.one(c);
    assert_eq!(
        (f.request_id, error_code(&f)),
        (9, ErrorCode::UnknownOpcode)
    );
    // a second LOGIN_REQUEST while ACTIVE
    h.send(c, login_msg("alice", ALICE_PW));
    assert_eq!(error_code(&h.one(c)), ErrorCode::UnexpectedFrame);
    // a server-only frame sent by the client
    h.send(
        c,
        Message::HeartbeatAck(protocol::HeartbeatAck { server_time: 0 }),
    );
    assert_eq!(error_code(&h.one(c)), ErrorCode::UnexpectedFrame);
    // flags set by a client
    let mut bad = Frame::reply(4, hb(&tok)).to_vec();
    bad[5] = 0x01;
    h.feed(c, &bad);
    assert_eq!(error_code(&h.one(c)), ErrorCode::BadFlags);
    // invalid UTF-8 inside a LOGIN_REQUEST while active
    let mut login = Frame::reply(5, login_msg("alice", "pw")).to_vec();
    login[16] = 0xff;
    h.feed(c, &login);
    assert_eq!(error_code(&h.one(c)), ErrorCode::InvalidUtf8);
    // truncated payload (heartbeat with a 31-byte token)
    let mut short = Frame::reply(6, hb(&tok)).to_vec();
    short.pop();
    short[13] = 31;
    h.feed(c, &short);
    assert_eq!(error_code(&h.one(c)), ErrorCode::MalformedFrame);
    assert!(!h.closing(c));
    h.send(c, hb(&tok));
    assert!(matches!(h.one(c).message, Message::HeartbeatAck(_)));
}

#[test]
fn oversized_length_and_bad_magic_are_fatal() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    h.login_ok(c);
    h.feed(
        c,
        &[
            0x53, 0x44, 0x01, 0x04, 0, 0, 0, 0, 0, 7, 0x00, 0x10, 0x00, 0x00,
        ],
    );
    let f = h.one(c);
    assert_eq!(
        (f.request_id, error_code(&f)),
        (7, ErrorCode::FrameTooLarge)
    );
    assert!(f.flags.is_fatal());
    assert!(h.closing(c));

    let c = h.connect();
    h.feed(c, b"GET / HTTP/1.1\r\n\r\n");
    let f = h.one(c);
    assert_eq!(error_code(&f), ErrorCode::BadMagic);
    assert!(h.closing(c));

    let c = h.connect();
    h.feed(c, &[0x53, 0x44, 0x02]);
    assert_eq!(error_code(&h.one(c)), ErrorCode::UnsupportedVersion);
}

#[test]
fn logout_ends_the_session_and_allows_a_new_login() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let tok = h.login_ok(c);
    let sid = h
        .engine
        .sessions()
        .id_by_digest(&sessiond::session::Digest::of(&tok));
    let rid = h.send(
        c,
        Message::LogoutRequest(LogoutRequest { token: tok.clone() }),
    );
    let f = h.one(c);
    assert_eq!(f.request_id, rid);
    let Message::LogoutSuccess(ls) = f.message else {
        panic!()
    };
    assert_eq!(Some(ls.session_id), sid);
    assert!(h.engine.sessions().is_empty());
    // back in AWAITING_AUTH: the old token now means "log in first"
    let c2 = h.connect();
    let tok2 = h.login_as(c2, "bob");
    h.send(c, hb(&tok2));
    assert_eq!(error_code(&h.one(c)), ErrorCode::AuthRequired);
    let c3 = h.connect();
    h.login_ok(c3);
    h.send(c3, Message::LogoutRequest(LogoutRequest { token: tok2 }));
    assert_eq!(error_code(&h.one(c3)), ErrorCode::TokenMismatch);
    h.advance(Duration::from_secs(10) + tick());
}

#[test]
fn disconnect_keeps_the_session_until_it_expires_idle() {
    let cfg = EngineConfig {
        session_idle: Duration::from_secs(60),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg);
    let c = h.connect();
    h.login_ok(c);
    h.send(c, Message::DisconnectRequest(DisconnectRequest));
    assert_eq!(
        disconnect_reason(&h.one(c)),
        DisconnectReason::ClientRequest
    );
    h.engine.remove(c);
    assert_eq!(h.engine.sessions().len(), 1);
    h.advance(Duration::from_secs(60) - tick());
    assert_eq!(h.engine.sessions().len(), 1);
    h.advance(tick());
    assert!(h.engine.sessions().is_empty());
    assert_eq!(h.engine.stats().sessions_expired, 1);
}

#[test]
fn absolute_expiry_reaches_a_live_connection() {
    let cfg = EngineConfig {
        session_lifetime: Duration::from_secs(12),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg);
    let c = h.connect();
    let tok = h.login_ok(c);
    h.advance(Duration::from_secs(6));
    h.send(c, hb(&tok));
    h.frames(c);
    h.advance(Duration::from_secs(6));
    let f = h.one(c);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    let Message::SessionExpired(e) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(e.reason, ExpiredReason::Absolute);
    assert!(h.closing(c));
    assert!(h.engine.sessions().is_empty());
    assert_eq!(h.engine.attached_sessions(), 0);
}

#[test]
fn sixteen_errors_in_a_row_close_the_connection() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let tok = h.login_ok(c);
    for i in 0..15 {
        h.send(c, hb(&Token([9; 32])));
        assert_eq!(h.frames(c).len(), 1, "error {i}");
    }
    // a valid frame resets the streak
    h.send(c, hb(&tok));
    h.frames(c);
    for _ in 0..15 {
        h.send(c, hb(&Token([9; 32])));
    }
    assert!(!h.closing(c));
    h.send(c, hb(&Token([9; 32])));
    let f = h.frames(c);
    let last = f.last().unwrap();
    assert_eq!(error_code(last), ErrorCode::TooManyErrors);
    assert!(last.flags.is_fatal());
    assert!(h.closing(c));
}

#[test]
fn a_thousand_pipelined_heartbeats_are_answered_in_order() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let tok = h.login_ok(c);
    let mut bytes = Vec::new();
    for rid in 1000..2000u32 {
        bytes.extend(Frame::reply(rid, hb(&tok)).to_vec());
    }
    h.feed(c, &bytes);
    let f = h.frames(c);
    let ids: Vec<u32> = f.iter().map(|f| f.request_id).collect();
    assert_eq!(ids, (1000..2000).collect::<Vec<_>>());
    assert!(f
        .iter()
        .all(|f| matches!(f.message, Message::HeartbeatAck(_))));
}

#[test]
fn a_peer_that_never_reads_is_cut_off_at_the_output_cap() {
    let cfg = EngineConfig {
        max_output: 4096,
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg);
    let c = h.connect();
    let tok = h.login_ok(c);
    let mut bytes = Vec::new();
    for rid in 0..500u32 {
        bytes.extend(Frame::reply(rid, hb(&tok)).to_vec());
    }
    h.feed(c, &bytes);
    assert!(h.closing(c));
    assert_eq!(h.engine.stats().output_overflows, 1);
    assert_eq!(h.engine.buffered(c).1, 0);
}

#[test]
fn a_full_hash_queue_answers_server_busy() {
    let mut h = Harness::new(EngineConfig::default());
    h.hash_inline = false;
    let c = h.connect();
    h.send(c, login_msg("alice", ALICE_PW));
    let job = h.held.pop().unwrap();
    h.engine.hash_rejected(job, h.now);
    h.settle();
    let Message::LoginFailure(lf) = h.one(c).message else {
        panic!()
    };
    assert_eq!(lf.reason, LoginFailureReason::ServerBusy);
    assert_eq!(lf.retry_after_ms, 1000);
    // the connection may try again
    h.hash_inline = true;
    h.login_ok(c);
}

/// protocol.md 5.3: refusals at one moment are told to come back one after another (at the
/// hash rate, here the prior 1,000 a second before any was measured), not all at once.
#[test]
fn server_busy_refusals_get_consecutive_retry_slots() {
    let mut h = Harness::new(EngineConfig::default());
    h.hash_inline = false;
    let conns: Vec<_> = (0..3).map(|_| h.connect()).collect();
    for &c in &conns {
        h.send(c, login_msg("alice", ALICE_PW));
    }
    for job in std::mem::take(&mut h.held) {
        h.engine.hash_rejected(job, h.now);
    }
    h.settle();
    let waits: Vec<u32> = conns
        .iter()
        .map(|&c| match h.one(c).message {
            Message::LoginFailure(lf) => lf.retry_after_ms,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(waits, [1000, 1001, 1002]);
}

#[test]
fn a_hash_result_for_a_closed_connection_is_dropped() {
    let mut h = Harness::new(EngineConfig::default());
    h.hash_inline = false;
    let c = h.connect();
    h.send(c, login_msg("alice", ALICE_PW));
    h.engine.remove(c);
    // the slot is reused by a new connection with another generation
    let c2 = h.connect();
    assert_eq!(c2.index, c.index);
    h.release_hashes();
    assert!(h.frames(c2).is_empty());
    assert!(h.engine.sessions().is_empty());
}

#[test]
fn peer_close_handles_buffered_frames_then_closes() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let tok = h.login_ok(c);
    h.engine
        .input_mut(c)
        .unwrap()
        .extend_from_slice(&Frame::reply(5, hb(&tok)).to_vec());
    h.engine.peer_closed(c, h.now);
    h.settle();
    let f = h.one(c);
    assert!(matches!(f.message, Message::HeartbeatAck(_)));
    assert!(h.closing(c));
    assert_eq!(h.engine.attached_sessions(), 0);
}

// ---- issue 3: resume, registration, single active session, expiry pushes -------------

fn verify(token: &Token) -> Message {
    Message::VerifySession(VerifySession {
        token: token.clone(),
        client: "tablet".into(),
        platform: "ios".into(),
    })
}

fn register(user: &str, pw: &str, email: &str) -> Message {
    Message::RegisterRequest(RegisterRequest {
        username: user.into(),
        password: pw.into(),
        email: email.into(),
    })
}

fn invalid_reason(f: &Frame) -> InvalidReason {
    match &f.message {
        Message::SessionInvalid(i) => i.reason,
        other => panic!("expected SESSION_INVALID, got {other:?}"),
    }
}

#[test]
fn two_device_timeline_new_login_revokes_the_old_one() {
    let mut h = Harness::new(EngineConfig::default());
    let a = h.connect();
    let tok_a = h.login_ok(a);
    h.advance(Duration::from_secs(3));
    h.send(a, hb(&tok_a));
    h.frames(a);
    // device B logs in with the same account
    let b = h.connect();
    let rid = h.send(b, login_msg("alice", ALICE_PW));
    let fb = h.one(b);
    assert_eq!(fb.request_id, rid);
    let Message::LoginSuccess(sb) = fb.message else {
        panic!("{fb:?}")
    };
    // A is told at once, with B's details, and closed
    let fa = h.one(a);
    assert_eq!(fa.flags, Flags::PUSH | Flags::FATAL);
    let Message::SessionRevoked(r) = fa.message else {
        panic!("{fa:?}")
    };
    assert_eq!(r.reason, RevokeReason::NewLogin);
    assert_eq!(
        (r.by_client.as_str(), r.by_platform.as_str()),
        ("harness", "test")
    );
    assert_eq!(r.by_address, "127.0.0.1:40000");
    assert_eq!(r.at, 1_767_225_603_000);
    assert!(h.closing(a));
    // A's token is dead: resuming it says so; B keeps working
    let a2 = h.connect();
    h.send(a2, verify(&tok_a));
    assert_eq!(invalid_reason(&h.one(a2)), InvalidReason::Revoked);
    h.send(b, hb(&sb.token));
    assert!(matches!(h.one(b).message, Message::HeartbeatAck(_)));
    assert_eq!(h.engine.sessions().len(), 1);
    assert_eq!(h.engine.stats().revocations, 1);
}

#[test]
fn reject_new_refuses_a_second_session() {
    let mut h = Harness::new(EngineConfig {
        on_limit: OnLimit::RejectNew,
        ..EngineConfig::default()
    });
    let a = h.connect();
    let tok = h.login_ok(a);
    let b = h.connect();
    let Message::LoginFailure(lf) = h.login(b, "alice", ALICE_PW).message else {
        panic!()
    };
    assert_eq!(lf.reason, LoginFailureReason::SessionLimit);
    h.send(a, hb(&tok));
    assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
    // with a limit of two, two live sessions are fine and the third is refused
    let mut h = Harness::new(EngineConfig {
        on_limit: OnLimit::RejectNew,
        max_sessions_per_user: 2,
        ..EngineConfig::default()
    });
    let (x, y, z) = (h.connect(), h.connect(), h.connect());
    h.login_ok(x);
    h.login_ok(y);
    assert!(matches!(
        h.login(z, "alice", ALICE_PW).message,
        Message::LoginFailure(_)
    ));
}

#[test]
fn a_session_survives_the_heartbeat_timeout_and_resumes() {
    let mut h = Harness::new(EngineConfig::default());
    let a = h.connect();
    let tok = h.login_ok(a);
    h.advance(Duration::from_secs(15));
    assert_eq!(disconnect_reason(&h.one(a)), DisconnectReason::IdleTimeout);
    h.engine.remove(a);
    // a new connection resumes without a password
    let b = h.connect();
    let rid = h.send(b, verify(&tok));
    let f = h.one(b);
    assert_eq!(f.request_id, rid);
    let Message::SessionValid(v) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(v.session.username, "alice");
    assert_eq!(v.session.heartbeat_timeout_ms, 15_000);
    assert_eq!(
        v.session.session_expires,
        1_767_225_600_000 + 24 * 3600 * 1000
    );
    h.send(b, hb(&tok));
    assert!(matches!(h.one(b).message, Message::HeartbeatAck(_)));
    assert_eq!(h.engine.stats().resumes, 1);
    assert_eq!(h.engine.attached_sessions(), 1);
}

#[test]
fn an_unknown_token_is_invalid_and_the_connection_can_still_log_in() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    h.send(c, verify(&Token([3; 32])));
    let f = h.one(c);
    assert_eq!(invalid_reason(&f), InvalidReason::Unknown);
    assert!(!h.closing(c));
    h.login_ok(c);
}

#[test]
fn duplicate_resume_is_rejected_by_default() {
    let mut h = Harness::new(EngineConfig::default());
    let a = h.connect();
    let tok = h.login_ok(a);
    let b = h.connect();
    h.send(b, verify(&tok));
    let f = h.one(b);
    assert_eq!(f.flags, Flags::FATAL);
    assert!(matches!(f.message, Message::DuplicateSession(_)));
    assert!(h.closing(b));
    h.send(a, hb(&tok));
    assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
}

#[test]
fn duplicate_resume_with_takeover_moves_the_session() {
    let mut h = Harness::new(EngineConfig {
        duplicate: DuplicatePolicy::Takeover,
        ..EngineConfig::default()
    });
    let a = h.connect();
    let tok = h.login_ok(a);
    let b = h.connect();
    h.send(b, verify(&tok));
    assert!(matches!(h.one(b).message, Message::SessionValid(_)));
    let fa = h.one(a);
    let Message::SessionRevoked(r) = fa.message else {
        panic!("{fa:?}")
    };
    assert_eq!(r.reason, RevokeReason::TakenOver);
    assert_eq!(r.by_client, "tablet");
    assert!(h.closing(a));
    h.send(b, hb(&tok));
    assert!(matches!(h.one(b).message, Message::HeartbeatAck(_)));
    assert_eq!(h.engine.attached_sessions(), 1);
}

#[test]
fn logged_out_and_expired_tokens_say_why() {
    let cfg = EngineConfig {
        session_idle: Duration::from_secs(60),
        tombstone_min: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg);
    let a = h.connect();
    let tok = h.login_ok(a);
    h.send(
        a,
        Message::LogoutRequest(LogoutRequest { token: tok.clone() }),
    );
    h.frames(a);
    h.send(a, verify(&tok));
    assert_eq!(invalid_reason(&h.one(a)), InvalidReason::LoggedOut);

    let tok2 = h.login_ok(a);
    h.send(a, Message::DisconnectRequest(DisconnectRequest));
    h.frames(a);
    h.engine.remove(a);
    h.advance(Duration::from_secs(60));
    assert!(h.engine.sessions().is_empty());
    let b = h.connect();
    h.send(b, verify(&tok2));
    assert_eq!(invalid_reason(&h.one(b)), InvalidReason::Expired);
    // tombstones are cleaned up by the wheel: after the retention the token is unknown
    h.advance(Duration::from_secs(24 * 3600));
    assert_eq!(h.engine.sessions().tombstones(), 0);
    let c = h.connect();
    h.send(c, verify(&tok2));
    assert_eq!(invalid_reason(&h.one(c)), InvalidReason::Unknown);
}

#[test]
fn idle_expiry_while_connected_is_pushed_before_the_close() {
    // the session's idle expiry shorter than the connection's heartbeat timeout
    let cfg = EngineConfig {
        session_idle: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg);
    let a = h.connect();
    h.login_ok(a);
    h.advance(Duration::from_secs(10) - tick());
    assert!(h.frames(a).is_empty());
    h.advance(tick());
    let f = h.one(a);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    let Message::SessionExpired(e) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(e.reason, ExpiredReason::Idle);
    assert!(h.closing(a));
}

#[test]
fn a_session_active_before_the_monotonic_clock_began_is_restored() {
    // After a reboot the monotonic clock starts near zero: a session whose last activity
    // was before it (here ten years before the engine's start) must still come back, with
    // its idle expiry counted from that activity.
    const YEAR_MS: u64 = 365 * 86_400_000;
    let cfg = EngineConfig {
        session_idle: Duration::from_millis(20 * YEAR_MS),
        session_lifetime: Duration::from_millis(40 * YEAR_MS),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg);
    let start_ms = h.engine.unix_ms(h.now);
    let tok = Token([5; 32]);
    h.engine.restore_session(
        sessiond::engine::event::StoredSession {
            id: 77,
            user_id: 1,
            digest: sessiond::session::Digest::of(&tok),
            client: "old".into(),
            platform: "box".into(),
            peer: "10.0.0.1:5000".into(),
            created_ms: start_ms - 10 * YEAR_MS,
            last_activity_ms: start_ms - 10 * YEAR_MS,
            expires_ms: start_ms + 30 * YEAR_MS,
        },
        h.now,
    );
    assert_eq!(h.engine.sessions().len(), 1);
    let s = h.engine.sessions().get(77).unwrap();
    assert_eq!(s.last_activity_ms, start_ms - 10 * YEAR_MS);
    let c = h.connect();
    h.send(c, verify(&tok));
    assert!(matches!(h.one(c).message, Message::SessionValid(_)));
}

#[test]
fn an_attached_session_rides_on_its_connections_timer() {
    let mut h = Harness::new(EngineConfig {
        duplicate: DuplicatePolicy::Takeover,
        ..EngineConfig::default()
    });
    let base = h.engine.timers_scheduled(); // the summary line's
    let a = h.connect();
    let tok = h.login_ok(a);
    assert_eq!(h.engine.timers_scheduled(), base + 1, "one timer for both");
    // unbound, the session gets its own back (expiry while detached: the test above)
    h.send(a, Message::DisconnectRequest(DisconnectRequest));
    h.frames(a);
    h.engine.remove(a);
    assert_eq!(h.engine.timers_scheduled(), base + 1);
    // a resume binds it to the new connection's timer again; a takeover hands it over
    let b = h.connect();
    h.send(b, verify(&tok));
    assert!(matches!(h.one(b).message, Message::SessionValid(_)));
    assert_eq!(h.engine.timers_scheduled(), base + 1);
    let c = h.connect();
    h.send(c, verify(&tok));
    assert!(matches!(h.one(c).message, Message::SessionValid(_)));
    h.frames(b);
    assert!(h.closing(b));
    assert_eq!(h.engine.timers_scheduled(), base + 1);
    assert_eq!(h.engine.attached_sessions(), 1);
}

#[test]
fn heartbeats_keep_the_session_from_idle_expiry() {
    let cfg = EngineConfig {
        session_idle: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg);
    let a = h.connect();
    let tok = h.login_ok(a);
    for _ in 0..10 {
        h.advance(Duration::from_secs(5));
        h.send(a, hb(&tok));
        assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
    }
}

#[test]
fn registration_then_login() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let rid = h.send(c, register("carol", "long enough;pw", "carol@example.org"));
    let f = h.one(c);
    assert_eq!(f.request_id, rid);
    let Message::RegisterSuccess(ok) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!((ok.user_id, ok.username.as_str()), (3, "carol"));
    let Message::LoginSuccess(s) = h.login(c, "carol", "long enough;pw").message else {
        panic!()
    };
    assert_eq!(s.session.role, Role::User);
    assert_eq!(
        h.engine.users().by_name("carol").unwrap().email,
        "carol@example.org"
    );
    assert_eq!(h.engine.stats().registrations, 1);
}

#[test]
fn registration_failures_name_the_reason() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let cases = [
        (
            register("alice", "long enough", "a@b.c"),
            RegisterFailureReason::UsernameTaken,
        ),
        (
            register("Al", "long enough", "a@b.c"),
            RegisterFailureReason::InvalidUsername,
        ),
        (
            register("dave", "short", "a@b.c"),
            RegisterFailureReason::PasswordTooShort,
        ),
        (
            register("dave", "long enough", "no-at-sign"),
            RegisterFailureReason::InvalidEmail,
        ),
    ];
    for (msg, want) in cases {
        h.send(c, msg);
        let f = h.one(c);
        let Message::RegisterFailure(rf) = f.message else {
            panic!("{f:?}")
        };
        assert_eq!(rf.reason, want);
    }
    assert!(!h.closing(c));
    let mut h = Harness::new(EngineConfig {
        registration_open: false,
        ..EngineConfig::default()
    });
    let c = h.connect();
    h.send(c, register("dave", "long enough", "a@b.c"));
    let Message::RegisterFailure(rf) = h.one(c).message else {
        panic!()
    };
    assert_eq!(rf.reason, RegisterFailureReason::RegistrationClosed);
}

#[test]
fn two_registrations_of_one_name_racing_cannot_both_win() {
    let mut h = Harness::new(EngineConfig::default());
    h.hash_inline = false;
    let (a, b) = (h.connect(), h.connect());
    h.send(a, register("erin", "long enough", "e@x.y"));
    h.send(b, register("erin", "long enough", "e@x.y"));
    h.release_hashes();
    let fa = h.one(a);
    let fb = h.one(b);
    assert!(matches!(fa.message, Message::RegisterSuccess(_)));
    let Message::RegisterFailure(rf) = fb.message else {
        panic!("{fb:?}")
    };
    assert_eq!(rf.reason, RegisterFailureReason::UsernameTaken);
}

#[test]
fn registration_and_sessions_are_recorded_as_events() {
    use sessiond::engine::event::{EndKind, Event};
    let mut h = Harness::new(EngineConfig::default());
    h.journal.clear();
    let c = h.connect();
    h.send(c, register("gus", "long enough", "g@x.y"));
    assert!(matches!(h.one(c).message, Message::RegisterSuccess(_)));
    let tok = match h.login(c, "gus", "long enough").message {
        Message::LoginSuccess(s) => s.token,
        other => panic!("{other:?}"),
    };
    h.advance(Duration::from_secs(3));
    h.send(c, hb(&tok));
    h.frames(c);
    h.send(c, Message::LogoutRequest(LogoutRequest { token: tok }));
    h.frames(c);
    let ev = std::mem::take(&mut h.journal);
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| match e {
            Event::Audit(a) => a.kind.name(),
            Event::UserCreated(u) => {
                assert_eq!(u.username, "gus");
                "user"
            }
            Event::LastLogin { .. } => "last_login",
            Event::SessionCreated(_) => "created",
            Event::SessionActivity { .. } => "activity",
            Event::SessionEnded { kind, .. } => {
                assert_eq!(*kind, EndKind::LoggedOut);
                "ended"
            }
            Event::UserUpdated(_) => "user_updated",
            Event::SnapshotBase { .. } | Event::Tombstone { .. } => "snapshot only",
        })
        .collect();
    // heartbeats are not journaled one by one
    assert_eq!(
        kinds,
        [
            "user",
            "registered",
            "created",
            "last_login",
            "session_created",
            "activity",
            "session_detached",
            "ended",
            "logged_out"
        ]
    );
}

#[test]
fn failures_and_revocations_reach_the_audit_trail() {
    use sessiond::engine::event::{AuditKind, Event};
    let mut h = Harness::new(EngineConfig::default());
    h.journal.clear();
    let a = h.connect();
    h.login(a, "alice", "wrong");
    h.login(a, "nobody", "wrong");
    h.login_ok(a);
    let b = h.connect();
    h.login_ok(b); // revokes a's session
    let audits: Vec<_> = std::mem::take(&mut h.journal)
        .into_iter()
        .filter_map(|e| match e {
            Event::Audit(a) => Some(a),
            _ => None,
        })
        .collect();
    let failed: Vec<_> = audits
        .iter()
        .filter(|a| a.kind == AuditKind::LoginFailed)
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!((failed[0].user_id, failed[1].user_id), (1, 0));
    assert_eq!(failed[1].detail, "nobody: invalid credentials");
    assert_eq!(failed[0].address, "127.0.0.1:40000");
    let revoked = audits
        .iter()
        .find(|a| a.kind == AuditKind::Revoked)
        .expect("revocation audited");
    assert_eq!(revoked.user_id, 1);
    assert!(
        revoked.detail.starts_with("NEW_LOGIN by 127.0.0.1:40000"),
        "{}",
        revoked.detail
    );
    assert!(audits.iter().all(|a| a.at_ms >= 1_767_225_600_000));
}

// ---- replies that wait for the journal (engine::durability) ---------------------------

#[test]
fn login_success_waits_for_its_batch_while_heartbeats_go_on() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    let a = h.connect();
    let tok_a = h.login_ok(a);
    h.auto_durable = false;
    let b = h.connect();
    let rid = h.send(b, login_msg("bob", ALICE_PW));
    assert!(h.engine.is_held(b));
    assert!(
        h.frames(b).is_empty(),
        "LOGIN_SUCCESS before the journal sync"
    );
    // a's heartbeats record nothing and are answered at once, batch pending or not
    for _ in 0..3 {
        h.send(a, hb(&tok_a));
        assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
    }
    assert!(!h.engine.is_held(a));
    assert_eq!(h.pending.len(), 1);
    h.make_durable();
    let f = h.one(b);
    assert_eq!(f.request_id, rid);
    assert!(matches!(f.message, Message::LoginSuccess(_)));
}

#[test]
fn a_failed_login_is_answered_only_once_audited() {
    let mut h = Harness::new(EngineConfig::default());
    h.auto_durable = false;
    let a = h.connect();
    h.send(a, login_msg("alice", "wrong password"));
    assert!(h.frames(a).is_empty());
    h.make_durable();
    assert!(matches!(h.one(a).message, Message::LoginFailure(_)));
}

#[test]
fn frames_behind_a_held_reply_keep_their_order() {
    let mut h = Harness::new(EngineConfig::default());
    let a = h.connect();
    let tok = h.login_ok(a);
    h.auto_durable = false;
    let mut bytes = Frame::reply(7, Message::LogoutRequest(LogoutRequest { token: tok })).to_vec();
    bytes.extend(Frame::reply(8, Message::DisconnectRequest(DisconnectRequest)).to_vec());
    h.feed(a, &bytes);
    assert!(h.frames(a).is_empty());
    h.make_durable();
    let f = h.frames(a);
    let rids: Vec<u32> = f.iter().map(|f| f.request_id).collect();
    assert_eq!(rids, [7, 8]);
    assert!(matches!(f[0].message, Message::LogoutSuccess(_)));
    assert!(matches!(f[1].message, Message::DisconnectAck(_)));
    assert!(h.closing(a));
}

#[test]
fn a_revocation_push_waits_for_the_batch_that_records_it() {
    let mut h = Harness::new(EngineConfig::default());
    let a = h.connect();
    h.login_ok(a);
    h.auto_durable = false;
    let b = h.connect();
    h.send(b, login_msg("alice", ALICE_PW));
    assert!(h.frames(a).is_empty() && h.frames(b).is_empty());
    assert_eq!(h.engine.held_count(), 2);
    h.make_durable();
    assert!(matches!(h.one(a).message, Message::SessionRevoked(_)));
    assert!(matches!(h.one(b).message, Message::LoginSuccess(_)));
    assert_eq!(h.engine.held_count(), 0);
}

#[test]
fn a_reply_waits_for_its_own_batch_not_a_later_one() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    h.auto_durable = false;
    let a = h.connect();
    h.send(a, login_msg("alice", ALICE_PW));
    let b = h.connect();
    h.send(b, login_msg("bob", ALICE_PW));
    assert_eq!(h.pending.len(), 2, "one batch per turn");
    // only the first batch is durable: a's reply goes, b's waits
    let first = h.pending.remove(0);
    h.engine.durable(first);
    assert!(matches!(h.one(a).message, Message::LoginSuccess(_)));
    assert!(h.frames(b).is_empty());
    h.make_durable();
    assert!(matches!(h.one(b).message, Message::LoginSuccess(_)));
}

#[test]
fn last_activity_is_journaled_every_few_minutes_without_holding_heartbeats() {
    use sessiond::engine::event::Event;
    let mut h = Harness::new(EngineConfig {
        activity_save_interval: Duration::from_secs(60),
        ..EngineConfig::default()
    });
    let c = h.connect();
    let tok = h.login_ok(c);
    h.journal.clear();
    h.auto_durable = false;
    let mut saved = Vec::new();
    // 10 minutes of heartbeats every 5 s: one activity record per minute, none held
    for _ in 0..120 {
        h.advance(Duration::from_secs(5));
        h.send(c, hb(&tok));
        assert!(matches!(h.one(c).message, Message::HeartbeatAck(_)));
        saved.extend(h.journal.drain(..).filter_map(|e| match e {
            Event::SessionActivity { at_ms, .. } => Some(at_ms),
            _ => None,
        }));
    }
    assert_eq!(saved.len(), 10, "{saved:?}");
    assert!(saved.windows(2).all(|w| w[1] - w[0] == 60_000), "{saved:?}");
    assert_eq!(h.engine.held_count(), 0);
}

// ---- account policies (issue 5), on the injected clock --------------------------------

fn failure_reason(f: &Frame) -> (LoginFailureReason, u32) {
    match &f.message {
        Message::LoginFailure(l) => (l.reason, l.retry_after_ms),
        other => panic!("expected LOGIN_FAILURE, got {other:?}"),
    }
}

#[test]
fn the_daily_login_limit_resets_at_utc_midnight() {
    let mut cfg = EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    };
    cfg.policy.daily_logins = 2;
    let mut h = Harness::new(cfg);
    // the harness clock starts at 2026-01-01 00:00:00 UTC
    h.advance(Duration::from_secs(23 * 3600));
    for _ in 0..2 {
        let c = h.connect();
        h.login_ok(c);
    }
    let c = h.connect();
    let f = h.login(c, "alice", ALICE_PW);
    assert_eq!(
        failure_reason(&f),
        (LoginFailureReason::DailyLimit, 3_600_000)
    );
    // bob has his own count
    let b = h.connect();
    h.login_as(b, "bob");
    h.advance(Duration::from_secs(3600));
    let c = h.connect();
    h.login_ok(c);
}

#[test]
fn five_failures_delay_the_account_exponentially_and_a_success_resets() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    for _ in 0..5 {
        let f = h.login(c, "alice", "wrong");
        assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
        h.advance(Duration::from_millis(10));
    }
    // now even the right password waits, without a hash being run
    let c2 = h.connect();
    let rid = h.send(c2, login_msg("alice", ALICE_PW));
    assert!(h.engine.take_hash_jobs().is_empty());
    let f = h.one(c2);
    assert_eq!(f.request_id, rid);
    let (reason, retry) = failure_reason(&f);
    assert_eq!(reason, LoginFailureReason::Throttled);
    assert!((900..=1000).contains(&retry), "{retry}");
    // bob is not affected
    let b = h.connect();
    h.login_as(b, "bob");
    h.advance(Duration::from_secs(1));
    let f = h.login(c2, "alice", "wrong");
    assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
    // the sixth failure doubles the delay
    let f = h.login(c2, "alice", ALICE_PW);
    let (reason, retry) = failure_reason(&f);
    assert_eq!(reason, LoginFailureReason::Throttled);
    assert!((1900..=2000).contains(&retry), "{retry}");
    h.advance(Duration::from_secs(2));
    let c3 = h.connect();
    h.login_ok(c3);
    // reset: five more failures are needed before the next delay
    let c4 = h.connect();
    for _ in 0..4 {
        let f = h.login(c4, "alice", "wrong");
        assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
    }
    let audited = h
        .journal
        .iter()
        .filter(|e| matches!(e, sessiond::engine::event::Event::Audit(a) if a.kind == sessiond::engine::event::AuditKind::LoginFailed))
        .count();
    assert_eq!(
        audited,
        5 + 2 + 1 + 4,
        "every failure, throttled ones too, is audited"
    );
}

#[test]
fn an_address_bucket_throttles_a_flood_of_attempts() {
    let mut cfg = EngineConfig::default();
    cfg.policy.address_burst = 3;
    cfg.policy.address_rate_per_min = 6; // one every 10 s
    let mut h = Harness::new(cfg);
    let c = h.connect();
    for user in ["nobody", "nobody2", "alice"] {
        let f = h.login(c, user, "wrong");
        assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
    }
    let f = h.login(c, "bob", ALICE_PW);
    assert_eq!(failure_reason(&f), (LoginFailureReason::Throttled, 10_000));
    h.advance(Duration::from_secs(10));
    let c2 = h.connect();
    h.login_as(c2, "bob");
}

// ---- hardening (issue 7) ---------------------------------------------------------------

#[test]
fn connections_past_the_limits_get_a_fatal_server_busy() {
    let mut h = Harness::new(EngineConfig {
        max_connections: 4,
        max_connections_per_address: 2,
        ..EngineConfig::default()
    });
    let a = h.connect();
    let b = h.connect();
    let c = h.connect(); // a third from 127.0.0.1
    let f = h.one(c);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    assert_eq!(error_code(&f), ErrorCode::ServerBusy);
    assert!(h.closing(c));
    assert!(h.frames(a).is_empty() && h.frames(b).is_empty());
    h.engine.remove(c);
    h.engine.remove(b);
    let d = h.connect(); // room again
    assert!(h.frames(d).is_empty());
    h.login_ok(d);
    // the total limit, from other addresses
    let mut others = Vec::new();
    for i in 0..3u8 {
        let peer = std::net::SocketAddr::from(([10, 0, 0, i + 1], 5000));
        others.push(h.engine.accept(peer, h.now));
    }
    h.settle();
    assert!(h.frames(others[0]).is_empty() && h.frames(others[1]).is_empty());
    assert_eq!(error_code(&h.one(others[2])), ErrorCode::ServerBusy);
    assert_eq!(h.engine.stats().connections_refused, 2);
}

#[test]
fn shutdown_tells_every_connection_and_keeps_the_sessions() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    let a = h.connect();
    let tok = h.login_ok(a);
    let b = h.connect(); // not logged in
    h.engine.shutdown(h.now);
    h.settle();
    for c in [a, b] {
        let f = h.frames(c);
        assert_eq!(f.len(), 2, "{f:?}");
        let Message::ServerShutdown(s) = &f[0].message else {
            panic!("{f:?}")
        };
        assert_eq!(s.reconnect_after_ms, 1000);
        assert_eq!(f[0].flags, Flags::PUSH);
        assert_eq!(f[1].flags, Flags::PUSH | Flags::FATAL);
        assert_eq!(disconnect_reason(&f[1]), DisconnectReason::ServerShutdown);
        assert!(h.closing(c));
    }
    // the session lives on, detached, and resumes
    assert_eq!(h.engine.sessions().len(), 1);
    assert_eq!(h.engine.attached_sessions(), 0);
    let c = h.connect();
    h.send(c, verify(&tok));
    assert!(matches!(h.one(c).message, Message::SessionValid(_)));
}

// ---- performance guards (issue 9) ------------------------------------------------------

#[test]
fn new_login_notices_go_to_at_most_32_connections() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    let mut conns = Vec::new();
    for i in 0..40u8 {
        let peer: SocketAddr = SocketAddr::from(([10, 0, 1, i], 4000));
        let c = h.engine.accept(peer, h.now);
        h.login_ok(c);
        conns.push(c);
    }
    for &c in &conns {
        h.frames(c); // earlier notices
    }
    let c = h.connect();
    h.login_ok(c);
    let told: Vec<usize> = conns
        .iter()
        .map(|&c| {
            h.frames(c)
                .iter()
                .filter(|f| matches!(f.message, Message::NewLogin(_)))
                .count()
        })
        .collect();
    assert_eq!(told.iter().sum::<usize>(), 32);
    // the newest sessions are the ones told
    assert!(told[..8].iter().all(|&n| n == 0) && told[8..].iter().all(|&n| n == 1));
}

#[test]
fn idle_connections_hold_no_buffers() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let tok = h.login_ok(c);
    let burst: Vec<u8> = (0..1000)
        .flat_map(|i| Frame::reply(i + 10, hb(&tok)).to_vec())
        .collect();
    h.feed(c, &burst);
    for _ in 0..100 {
        h.engine.process(c, h.now);
    }
    assert_eq!(h.frames(c).len(), 1000);
    assert!(h.engine.holds_buffers(c));
    h.engine.release_buffers(c);
    assert!(
        !h.engine.holds_buffers(c),
        "written out: the buffers go back"
    );
    // a partial frame keeps its buffer until the rest comes
    let frame = Frame::reply(7, hb(&tok)).to_vec();
    h.feed(c, &frame[..10]);
    h.engine.release_buffers(c);
    assert!(h.engine.holds_buffers(c));
    assert_eq!(h.engine.buffered(c), (10, 0));
    h.feed(c, &frame[10..]);
    assert!(matches!(h.one(c).message, Message::HeartbeatAck(_)));
    h.engine.release_buffers(c);
    assert!(!h.engine.holds_buffers(c));
    // and the connection works as before
    h.send(c, hb(&tok));
    assert!(matches!(h.one(c).message, Message::HeartbeatAck(_)));
}
