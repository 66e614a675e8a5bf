//! The deterministic engine harness (quinn's `Pair` idea): the sans-IO engine driven
//! through its one turn ([`Engine::turn`]) by an [`InlineShell`], with made-up `Instant`s,
//! password hashes run synchronously, and every reply checked byte for byte through the
//! codec. No sockets, no threads, no sleeping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sessiond::auth::PasswordRecord;
use sessiond::conn::ConnId;
use sessiond::engine::{Engine, EngineConfig, InlineShell};
use sessiond::protocol::{
    self, DecodeLimits, DisconnectReason, ErrorCode, Frame, Heartbeat, InvalidReason,
    LoginFailureReason, LoginRequest, Message, RegisterRequest, Role, Token, VerifySession,
};
use sessiond::session::UserTable;

/// alice's and bob's password in the harness.
pub const ALICE_PW: &str = "correct horse; battery";
/// The harness's wall clock at its start: 2026-01-01 00:00:00 UTC.
pub const START_MS: u64 = 1_767_225_600_000;
/// Where [`Harness::connect`]'s connections come from.
pub const PEER: &str = "127.0.0.1:40000";

/// An engine, its in-memory shell and the clock they run on.
pub struct Harness {
    pub engine: Engine,
    pub shell: InlineShell,
    pub now: Instant,
    next_rid: u32,
}

impl Harness {
    /// An engine with `cfg` (1 PBKDF2 iteration) and two accounts: alice (user 1, role
    /// user) and bob (user 2, admin), both with [`ALICE_PW`].
    pub fn new(mut cfg: EngineConfig) -> Harness {
        cfg.iterations = 1;
        let mut users = UserTable::new();
        let rec = PasswordRecord::create(ALICE_PW.as_bytes(), 1).unwrap();
        users
            .create("alice", rec.clone(), Role::User, "", 1_000)
            .unwrap();
        users.create("bob", rec, Role::Admin, "", 2_000).unwrap();
        #[allow(clippy::disallowed_methods)] // an arbitrary origin for the made-up clock
        let now = Instant::now();
        let dummy = PasswordRecord::dummy(1).unwrap();
        Harness {
            engine: Engine::new(cfg, users, dummy, now, START_MS),
            shell: InlineShell::default(),
            now,
            next_rid: 1,
        }
    }

    /// The most common setup: a harness with `cfg` and alice logged in on one connection.
    pub fn logged_in(cfg: EngineConfig) -> (Harness, ConnId, Token) {
        let mut h = Harness::new(cfg);
        let c = h.connect();
        let tok = h.login_ok(c);
        (h, c, tok)
    }

    /// Two connections logged in at once, alice's and bob's.
    pub fn logged_in_pair(cfg: EngineConfig) -> (Harness, [(ConnId, Token); 2]) {
        let mut h = Harness::new(cfg);
        let (a, b) = (h.connect(), h.connect());
        let tok_a = h.login_ok(a);
        let tok_b = h.login_as(b, "bob");
        (h, [(a, tok_a), (b, tok_b)])
    }

    /// A connection from [`PEER`].
    pub fn connect(&mut self) -> ConnId {
        self.connect_from(PEER.parse().unwrap())
    }

    /// A connection from `peer`.
    pub fn connect_from(&mut self, peer: SocketAddr) -> ConnId {
        let id = self.engine.handle_accept(peer, self.now);
        self.settle();
        id
    }

    /// A fresh request id.
    pub fn rid(&mut self) -> u32 {
        self.next_rid += 1;
        self.next_rid
    }

    /// Bytes arrive from the peer, then the turns run until nothing is left to do.
    pub fn feed(&mut self, id: ConnId, bytes: &[u8]) {
        self.engine.handle_input(id, bytes, self.now);
        self.settle();
    }

    /// Bytes arrive with the peer's FIN behind them (one read, then end of file).
    pub fn feed_and_close(&mut self, id: ConnId, bytes: &[u8]) {
        self.engine.handle_input(id, bytes, self.now);
        self.engine.handle_peer_closed(id, self.now);
        self.settle();
    }

    /// Sends `msg` as a request with a fresh id; returns the id.
    pub fn send(&mut self, id: ConnId, msg: Message) -> u32 {
        let rid = self.rid();
        self.feed(id, &Frame::reply(rid, msg).to_vec());
        rid
    }

    /// Runs turns until the engine is quiet (bounded).
    pub fn settle(&mut self) {
        assert!(
            self.shell.settle(&mut self.engine, self.now),
            "engine did not settle"
        );
    }

    /// The store reports every pending batch durable.
    pub fn make_durable(&mut self) {
        self.shell.make_durable(None);
        self.settle();
    }

    /// The store reports the batches up to `seq` durable.
    pub fn durable(&mut self, seq: u64) {
        self.shell.make_durable(Some(seq));
        self.settle();
    }

    /// Runs the hash jobs held back (`shell.hash_inline = false`) and hashes inline from
    /// now on.
    pub fn release_hashes(&mut self) {
        self.shell.hash_inline = true;
        self.shell.release_jobs();
        self.settle();
    }

    /// The hash pool refuses every job held back (a full queue).
    pub fn refuse_held_hashes(&mut self) {
        for job in std::mem::take(&mut self.shell.held_jobs) {
            self.engine.handle_hash_refused(job, self.now);
        }
        self.settle();
    }

    /// Time passes; the deadlines due fire.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.settle();
    }

    /// The socket of `id` goes away (the peer reset it).
    pub fn remove(&mut self, id: ConnId) {
        self.engine.handle_closed(id, self.now);
        self.settle();
    }

    /// Everything the engine transmitted to `id` since the last call, decoded.
    pub fn frames(&mut self, id: ConnId) -> Vec<Frame> {
        let mut out = bytes::BytesMut::from(&self.shell.take_written(id)[..]);
        let mut v = Vec::new();
        while let Some(f) = protocol::decode(&mut out, DecodeLimits::client(1 << 20)).unwrap() {
            v.push(f);
        }
        assert!(out.is_empty(), "partial frame transmitted");
        v
    }

    /// The one frame transmitted to `id`.
    pub fn one(&mut self, id: ConnId) -> Frame {
        let mut f = self.frames(id);
        assert_eq!(f.len(), 1, "expected one frame, got {f:?}");
        f.remove(0)
    }

    /// Whether the server is done with `id`: its last frame went out and it closed.
    pub fn closing(&self, id: ConnId) -> bool {
        self.shell.is_closed(id) || !self.engine.contains(id)
    }

    /// Logs `user` in on `id` with `pw`; returns the answer.
    pub fn login(&mut self, id: ConnId, user: &str, pw: &str) -> Frame {
        let rid = self.send(id, login_msg(user, pw));
        let mut frames = self.frames(id);
        // Only the USER_INFO push (protocol.md 5.46) may follow the answer.
        assert!(
            frames.len() == 1
                || (frames.len() == 2 && matches!(frames[1].message, Message::UserInfo(_))),
            "{frames:?}"
        );
        let f = frames.swap_remove(0);
        assert_eq!(f.request_id, rid);
        f
    }

    /// Logs alice in on `id`; returns the token.
    pub fn login_ok(&mut self, id: ConnId) -> Token {
        self.login_as(id, "alice")
    }

    /// Logs `user` (alice or bob; same password) in on `id`.
    pub fn login_as(&mut self, id: ConnId, user: &str) -> Token {
        match self.login(id, user, ALICE_PW).message {
            Message::LoginSuccess(s) => s.token,
            other => panic!("login failed: {other:?}"),
        }
    }
}

/// LOGIN_REQUEST from the device "harness" / "test".
pub fn login_msg(user: &str, pw: &str) -> Message {
    Message::LoginRequest(LoginRequest {
        username: user.into(),
        password: pw.into(),
        client: "harness".into(),
        platform: "test".into(),
    })
}

/// HEARTBEAT with `token`.
pub fn hb(token: &Token) -> Message {
    Message::Heartbeat(Heartbeat {
        token: token.clone(),
    })
}

/// VERIFY_SESSION of `token` from the device "tablet" / "ios".
pub fn verify(token: &Token) -> Message {
    Message::VerifySession(VerifySession {
        token: token.clone(),
        client: "tablet".into(),
        platform: "ios".into(),
    })
}

/// REGISTER_REQUEST.
pub fn register(user: &str, pw: &str, email: &str) -> Message {
    Message::RegisterRequest(RegisterRequest {
        username: user.into(),
        password: pw.into(),
        email: email.into(),
    })
}

/// GENERAL_FAILURE's code.
pub fn error_code(f: &Frame) -> ErrorCode {
    match &f.message {
        Message::GeneralFailure(g) => g.code,
        other => panic!("expected GENERAL_FAILURE, got {other:?}"),
    }
}

/// DISCONNECT_ACK's reason.
pub fn disconnect_reason(f: &Frame) -> DisconnectReason {
    match &f.message {
        Message::DisconnectAck(a) => a.reason,
        other => panic!("expected DISCONNECT_ACK, got {other:?}"),
    }
}

/// SESSION_INVALID's reason.
pub fn invalid_reason(f: &Frame) -> InvalidReason {
    match &f.message {
        Message::SessionInvalid(i) => i.reason,
        other => panic!("expected SESSION_INVALID, got {other:?}"),
    }
}

/// LOGIN_FAILURE's reason and retry-after.
pub fn failure_reason(f: &Frame) -> (LoginFailureReason, u32) {
    match &f.message {
        Message::LoginFailure(l) => (l.reason, l.retry_after_ms),
        other => panic!("expected LOGIN_FAILURE, got {other:?}"),
    }
}

/// The timer wheel's resolution.
pub fn tick() -> Duration {
    EngineConfig::default().tick
}
