//! The engine's own paths, with no sockets (driven through its turn by the in-memory
//! shell): a heartbeat on a bound connection (the tag check, the reply), and a whole login
//! (LOGIN_REQUEST at 1 PBKDF2 iteration, the session made, NEW_LOGIN to the account's
//! other connections, LOGOUT) on an account that already has 0 / 1k / 10k / 100k detached
//! sessions: its cost must not grow with them (issue 17).
//!
//! `cargo bench --bench engine`
#![allow(clippy::disallowed_methods)] // a benchmark measures real time

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sessiond::auth::PasswordRecord;
use sessiond::conn::ConnId;
use sessiond::engine::event::StoredSession;
use sessiond::engine::replay::State;
use sessiond::engine::{Engine, EngineConfig, InlineShell};
use sessiond::protocol::{Frame, Heartbeat, LoginRequest, LogoutRequest, Message, Role, Token};
use sessiond::session::{Digest, UserTable};

const PW: &str = "bench password";

fn engine(detached: u64) -> (Engine, InlineShell, Instant) {
    let mut users = UserTable::new();
    let rec = PasswordRecord::create(PW.as_bytes(), 1).unwrap();
    users.create("load", rec, Role::User, "", 0).unwrap();
    let mut cfg = EngineConfig {
        iterations: 1,
        max_sessions_per_user: 0,
        max_connections: 0,
        max_connections_per_address: 0,
        ..EngineConfig::default()
    };
    // one address logs in again and again: the address throttle opened
    cfg.policy.address_burst = u32::MAX;
    cfg.policy.address_rate_per_min = u32::MAX;
    cfg.policy.address_hashes = u32::MAX;
    let now = Instant::now();
    let start_ms = 1_767_225_600_000;
    let mut e = Engine::new(cfg, users, PasswordRecord::dummy(1).unwrap(), now, start_ms);
    let mut state = State::new();
    for i in 0..detached {
        let mut t = [0u8; 32];
        t[..8].copy_from_slice(&i.to_le_bytes());
        let id = i + 1;
        state.sessions.insert(
            id,
            StoredSession {
                id,
                user_id: 1,
                digest: Digest::of(&Token(t)),
                client: "old".into(),
                platform: "linux".into(),
                peer: "127.0.0.1:1".into(),
                created_ms: start_ms,
                last_activity_ms: start_ms,
                expires_ms: start_ms + 86_400_000,
            },
        );
    }
    e.restore(state, now);
    (e, InlineShell::default(), now)
}

fn login(e: &mut Engine, shell: &mut InlineShell, now: Instant) -> (ConnId, Token) {
    let c = e.handle_accept("127.0.0.1:2".parse().unwrap(), now);
    let req = Message::LoginRequest(LoginRequest {
        username: "load".into(),
        password: PW.into(),
        client: "bench".into(),
        platform: "linux".into(),
    });
    e.handle_input(c, &Frame::reply(1, req).to_vec(), now);
    assert!(shell.settle(e, now));
    let out = shell.take_written(c);
    let (f, _) = sessiond::protocol::decode_slice(&out).unwrap();
    let Message::LoginSuccess(s) = f.message else {
        panic!("{f:?}")
    };
    (c, s.token)
}

fn heartbeat(c: &mut Criterion) {
    let (mut e, mut shell, now) = engine(0);
    let (conn, token) = login(&mut e, &mut shell, now);
    let hb = Frame::reply(7, Message::Heartbeat(Heartbeat { token })).to_vec();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("heartbeat through the turn", |b| {
        b.iter(|| {
            e.handle_input(conn, black_box(&hb), now);
            e.turn(now, &mut shell);
            black_box(shell.take_written(conn));
        })
    });
    g.finish();
}

fn login_vs_detached(c: &mut Criterion) {
    let mut g = c.benchmark_group("login with detached sessions on the account");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    for n in [0u64, 1_000, 10_000, 100_000] {
        let (mut e, mut shell, now) = engine(n);
        // a few connected ones, who hear of each login
        for _ in 0..4 {
            login(&mut e, &mut shell, now);
        }
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let (c, token) = login(&mut e, &mut shell, now);
                let out = Frame::reply(2, Message::LogoutRequest(LogoutRequest { token }));
                e.handle_input(c, &out.to_vec(), now);
                e.handle_closed(c, now);
                assert!(shell.settle(&mut e, now));
                shell.journal.clear();
                black_box(shell.take_written(c));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, heartbeat, login_vs_detached);
criterion_main!(benches);
