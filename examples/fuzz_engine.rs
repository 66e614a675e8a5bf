//! AFL++ target: the connection state machine (the sans-IO engine) fed an arbitrary
//! sequence of events read from the input: connections opening and closing, bytes arriving
//! (often whole valid frames, sometimes raw bytes), time passing, driven through the
//! engine's one turn as the server drives it. Checks that nothing
//! panics, everything the server would write decodes as valid frames, and the session
//! counts stay consistent.
//!
//! ```text
//! cargo afl build --release --features fuzz --example fuzz_engine
//! mkdir -p /tmp/fe/in && printf '\x00\x03\x03\x05\x03\x04' > /tmp/fe/in/seed
//! cargo afl fuzz -i /tmp/fe/in -o /tmp/fe/out -V 600 target/release/examples/fuzz_engine
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sessiond::auth::PasswordRecord;
use sessiond::conn::ConnId;
use sessiond::engine::{Engine, EngineConfig, InlineShell};
use sessiond::protocol::{
    self, DecodeLimits, Frame, Heartbeat, LoginRequest, LogoutRequest, Message, Role, Token,
    VerifySession,
};
use sessiond::session::UserTable;

fn main() {
    let mut users = UserTable::new();
    let rec = PasswordRecord::create(b"pw", 1).unwrap();
    users
        .create("alice", rec.clone(), Role::User, "", 0)
        .unwrap();
    users.create("bob", rec, Role::Admin, "", 0).unwrap();
    let dummy = PasswordRecord::dummy(1).unwrap();
    afl::fuzz!(|data: &[u8]| {
        run(data, users_clone(&users), dummy.clone());
    });
}

fn users_clone(u: &UserTable) -> UserTable {
    let mut t = UserTable::new();
    for user in u.all() {
        t.restore(user.clone()).unwrap();
    }
    t
}

fn run(data: &[u8], users: UserTable, dummy: PasswordRecord) {
    let cfg = EngineConfig {
        iterations: 1,
        max_sessions_per_user: 2,
        ..EngineConfig::default()
    };
    #[allow(clippy::disallowed_methods)] // an arbitrary origin for the made-up clock
    let mut now = Instant::now();
    let mut e = Engine::new(cfg, users, dummy, now, 0);
    let mut shell = InlineShell::default();
    let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut conns: Vec<ConnId> = Vec::new();
    let mut tokens: Vec<Token> = Vec::new();
    let mut it = data.iter().copied();
    while let Some(op) = it.next() {
        let arg = it.next().unwrap_or(0) as usize;
        let pick = |conns: &[ConnId]| conns.get(arg % conns.len().max(1)).copied();
        match op % 8 {
            0 => conns.push(e.handle_accept(peer, now)),
            1 => now += Duration::from_millis((arg as u64) * 250),
            2 => {
                if let Some(id) = pick(&conns) {
                    if arg.is_multiple_of(2) {
                        e.handle_closed(id, now);
                        conns.retain(|c| *c != id);
                    } else {
                        e.handle_peer_closed(id, now);
                    }
                }
            }
            3..=6 => {
                if let Some(id) = pick(&conns) {
                    let token = tokens.get(arg % tokens.len().max(1)).cloned();
                    e.handle_input(id, &frame(op, arg, token), now);
                }
            }
            _ => {
                // raw bytes straight from the input
                if let Some(id) = pick(&conns) {
                    let raw: Vec<u8> = it.by_ref().take(arg % 32).collect();
                    e.handle_input(id, &raw, now);
                }
            }
        }
        step(&mut e, &mut shell, now, &mut conns, &mut tokens);
    }
}

fn frame(op: u8, arg: usize, token: Option<Token>) -> Vec<u8> {
    let token = token.unwrap_or(Token([arg as u8; 32]));
    let msg = match (op % 8, arg % 4) {
        (3, _) => Message::LoginRequest(LoginRequest {
            username: ["alice", "bob", "carol"][arg % 3].into(),
            password: if arg.is_multiple_of(2) { "pw" } else { "no" }.into(),
            client: String::new(),
            platform: String::new(),
        }),
        (4, _) => Message::Heartbeat(Heartbeat { token }),
        (5, 0) => Message::LogoutRequest(LogoutRequest { token }),
        (5, _) => Message::VerifySession(VerifySession {
            token,
            client: String::new(),
            platform: String::new(),
        }),
        _ => Message::ListSessions(protocol::ListSessions {
            token,
            offset: 0,
            limit: 0,
        }),
    };
    Frame::reply(arg as u32, msg).to_vec()
}

/// The server loop's turns (the engine's one turn, through the in-memory shell), checking
/// what they write.
fn step(
    e: &mut Engine,
    shell: &mut InlineShell,
    now: Instant,
    conns: &mut Vec<ConnId>,
    tokens: &mut Vec<Token>,
) {
    assert!(shell.settle(e, now), "the engine did not settle");
    for &id in conns.iter() {
        let mut out = bytes::BytesMut::from(&shell.take_written(id)[..]);
        while let Some(f) = protocol::decode(&mut out, DecodeLimits::client(1 << 20))
            .expect("the server wrote an invalid frame")
        {
            if let Message::LoginSuccess(s) = f.message {
                tokens.push(s.token);
            }
        }
        assert!(out.is_empty(), "partial frame in output");
    }
    conns.retain(|&c| !shell.is_closed(c));
    assert!(e.attached_sessions() <= e.sessions().len());
    assert_eq!(e.connection_count(), conns.len());
}
