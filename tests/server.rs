//! Integration tests against a real server on 127.0.0.1:0, byte-exact through the codec.
//! Real-time tests use short configured timeouts and generous upper bounds.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

use std::io::{Read, Write};

use std::time::{Duration, Instant};

use common::wire::{closed_within, hb_bytes, raw, raw_login, read_frames};
use common::{TestServer, ALICE_PW, BOB_PW};
use sessiond::client::{is_server_error, ClientError, LoginOutcome};
use sessiond::protocol::{
    decode_slice, DisconnectReason, ErrorCode, Flags, Frame, Heartbeat, LoginFailureReason,
    Message, Role, Token,
};

#[test]
fn login_success_and_failure() {
    let server = TestServer::start();
    let (_c, s) = server.alice();
    assert_eq!(s.session.username, "alice");
    assert_eq!(s.session.role, Role::User);
    assert_eq!(s.session.heartbeat_interval_ms, 5_000);
    assert_eq!(s.session.heartbeat_timeout_ms, 15_000);

    let mut c = server.client();
    let wrong = c.login("alice", "nope", "t", "p").unwrap();
    let unknown = c.login("mallory", "nope", "t", "p").unwrap();
    for out in [wrong, unknown] {
        match out {
            LoginOutcome::Failure(f) => {
                assert_eq!(f.reason, LoginFailureReason::InvalidCredentials)
            }
            other => panic!("{other:?}"),
        }
    }
    // same connection, right password (with separators in it) for another user
    match c.login("bob", BOB_PW, "t", "p").unwrap() {
        LoginOutcome::Success(s) => assert_eq!(s.session.role, Role::Admin),
        other => panic!("{other:?}"),
    }
}

#[test]
fn heartbeats_keep_the_session_past_the_timeout() {
    let server = TestServer::start_with(|c| {
        c.engine.heartbeat_interval = Duration::from_millis(150);
        c.engine.heartbeat_timeout = Duration::from_millis(600);
    });
    let (mut c, s) = server.alice();
    assert_eq!(s.session.heartbeat_timeout_ms, 600);
    let start = Instant::now();
    let mut acks = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        std::thread::sleep(Duration::from_millis(150));
        c.heartbeat().expect("heartbeat answered");
        acks += 1;
    }
    assert!(acks >= 5);
    assert!(c.take_pushes().is_empty());
}

#[test]
fn silence_gets_disconnect_ack_and_close_within_timeout_plus_tick() {
    let timeout = Duration::from_millis(400);
    let server = TestServer::start_with(|c| {
        c.engine.heartbeat_interval = Duration::from_millis(100);
        c.engine.heartbeat_timeout = timeout;
    });
    let (mut s, _tok) = raw_login(&server);
    let start = Instant::now();
    let f = read_frames(&mut s, 1, Duration::from_secs(10));
    let elapsed = start.elapsed();
    assert_eq!(f[0].flags, Flags::PUSH | Flags::FATAL);
    assert_eq!(f[0].request_id, 0);
    assert!(matches!(
        f[0].message,
        Message::DisconnectAck(a) if a.reason == DisconnectReason::IdleTimeout
    ));
    // Never early; late by at most a tick plus scheduling (generous bound for CI).
    assert!(
        elapsed + Duration::from_millis(15) >= timeout,
        "{elapsed:?}"
    );
    assert!(
        elapsed < timeout + Duration::from_millis(1000),
        "{elapsed:?}"
    );
    assert!(closed_within(&mut s, Duration::from_secs(5)));
}

#[test]
fn login_deadline_closes_silent_connections() {
    let server = TestServer::start_with(|c| c.engine.login_timeout = Duration::from_millis(300));
    let mut s = raw(&server);
    let f = read_frames(&mut s, 1, Duration::from_secs(10));
    assert!(matches!(
        f[0].message,
        Message::DisconnectAck(a) if a.reason == DisconnectReason::LoginTimeout
    ));
    assert!(closed_within(&mut s, Duration::from_secs(5)));
}

#[test]
fn wrong_or_foreign_token_gets_general_failure() {
    let server = TestServer::start();
    let (mut a, _) = server.alice();
    let (_b, sb) = server.bob();
    let err = a
        .request(Message::Heartbeat(Heartbeat {
            token: sb.token.clone(),
        }))
        .unwrap_err();
    assert!(is_server_error(&err, ErrorCode::TokenMismatch), "{err}");
    let err = a
        .request(Message::Heartbeat(Heartbeat {
            token: Token([0x5a; 32]),
        }))
        .unwrap_err();
    assert!(is_server_error(&err, ErrorCode::InvalidToken), "{err}");
    assert!(matches!(err, ClientError::Server { fatal: false, .. }));
    // still usable
    a.heartbeat().unwrap();
}

#[test]
fn logout_then_graceful_disconnect() {
    let server = TestServer::start();
    let (mut c, s) = server.alice();
    c.heartbeat().unwrap();
    assert_eq!(c.logout().unwrap(), s.session.session_id);
    // the token is dead: a new connection logging in gets a different session
    let (_c2, s2) = server.alice();
    assert_ne!(s2.session.session_id, s.session.session_id);
    assert_eq!(c.disconnect().unwrap(), DisconnectReason::ClientRequest);

    // the same on a raw socket, to see the close itself
    let (mut s, tok) = raw_login(&server);
    let mut bytes = Frame::reply(
        2,
        Message::LogoutRequest(sessiond::protocol::LogoutRequest { token: tok }),
    )
    .to_vec();
    bytes.extend(
        Frame::reply(
            3,
            Message::DisconnectRequest(sessiond::protocol::DisconnectRequest),
        )
        .to_vec(),
    );
    s.write_all(&bytes).unwrap();
    let f = read_frames(&mut s, 2, Duration::from_secs(10));
    assert!(matches!(f[0].message, Message::LogoutSuccess(_)));
    assert_eq!((f[1].request_id, f[1].flags), (3, Flags::FATAL));
    assert!(closed_within(&mut s, Duration::from_secs(5)));
}

#[test]
fn a_thousand_pipelined_heartbeats_in_one_write_are_answered_in_order() {
    let server = TestServer::start();
    let (mut s, tok) = raw_login(&server);
    let mut bytes = Vec::new();
    for rid in 10..1010u32 {
        bytes.extend(hb_bytes(rid, &tok));
    }
    s.write_all(&bytes).unwrap();
    let f = read_frames(&mut s, 1000, Duration::from_secs(20));
    let ids: Vec<u32> = f.iter().map(|f| f.request_id).collect();
    assert_eq!(ids, (10..1010).collect::<Vec<_>>());
    assert!(f
        .iter()
        .all(|f| matches!(f.message, Message::HeartbeatAck(_))));
}

#[test]
fn garbage_and_oversized_frames_get_a_fatal_error_and_others_are_undisturbed() {
    let server = TestServer::start();
    // bob, so that the raw alice logins below do not revoke this session
    let (mut good, _) = server.bob();

    let mut http = raw(&server);
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let f = read_frames(&mut http, 1, Duration::from_secs(10));
    assert!(f[0].flags.is_fatal());
    assert!(matches!(&f[0].message, Message::GeneralFailure(g) if g.code == ErrorCode::BadMagic));
    assert!(closed_within(&mut http, Duration::from_secs(5)));
    good.heartbeat().unwrap();

    let (mut big, _) = raw_login(&server);
    // a 1 MiB heartbeat announced: refused from the header alone
    big.write_all(&[
        0x53, 0x44, 0x01, 0x04, 0, 0, 0, 0, 0, 7, 0x00, 0x10, 0x00, 0x00,
    ])
    .unwrap();
    let f = read_frames(&mut big, 1, Duration::from_secs(10));
    assert_eq!(f[0].request_id, 7);
    assert!(
        matches!(&f[0].message, Message::GeneralFailure(g) if g.code == ErrorCode::FrameTooLarge)
    );
    assert!(closed_within(&mut big, Duration::from_secs(5)));
    good.heartbeat().unwrap();

    // the exact bytes of protocol.md's FRAME_TOO_LARGE answer, request id 1
    let mut big = raw(&server);
    big.write_all(&[
        0x53, 0x44, 0x01, 0x04, 0, 0, 0, 0, 0, 1, 0x00, 0x10, 0x00, 0x00,
    ])
    .unwrap();
    let mut got = vec![0u8; 33];
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    big.read_exact(&mut got).unwrap();
    assert_eq!(
        got,
        [
            0x53, 0x44, 0x01, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x13,
            0x00, 0x02, 0x00, 0x0f, b'f', b'r', b'a', b'm', b'e', b' ', b't', b'o', b'o', b' ',
            b'l', b'a', b'r', b'g', b'e'
        ]
    );
    let (frame, n) = decode_slice(&got).unwrap();
    assert_eq!(n, got.len());
    assert!(frame.flags.is_fatal());
    good.heartbeat().unwrap();
}

#[test]
fn a_heartbeat_before_login_is_fatal_auth_required() {
    let server = TestServer::start();
    let mut s = raw(&server);
    s.write_all(&hb_bytes(9, &Token([0; 32]))).unwrap();
    let f = read_frames(&mut s, 1, Duration::from_secs(10));
    assert_eq!((f[0].request_id, f[0].flags), (9, Flags::FATAL));
    assert!(
        matches!(&f[0].message, Message::GeneralFailure(g) if g.code == ErrorCode::AuthRequired)
    );
    assert!(closed_within(&mut s, Duration::from_secs(5)));
}

#[test]
fn many_clients_log_in_concurrently() {
    // one account, eight devices: lift the one-session-per-user default
    let server = TestServer::start_with(|c| c.engine.max_sessions_per_user = 0);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut c =
                    sessiond::client::Client::connect(addr, Duration::from_secs(5)).unwrap();
                match c.login("alice", ALICE_PW, "t", "p").unwrap() {
                    LoginOutcome::Success(_) => {}
                    other => panic!("{other:?}"),
                }
                for _ in 0..20 {
                    c.heartbeat().unwrap();
                }
                c.disconnect().unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), DisconnectReason::ClientRequest);
    }
}

// ---- issue 3: resume, single active session, registration, over real sockets -------

#[test]
fn two_devices_second_login_revokes_the_first_at_once() {
    use sessiond::client::ResumeOutcome;
    use sessiond::protocol::{InvalidReason, RevokeReason};
    let server = TestServer::start();
    let (mut a, sa) = server.login_as("alice", ALICE_PW, "laptop");
    a.heartbeat().unwrap();
    // device B logs in with the same account
    let (mut b, _sb) = server.login_as("alice", ALICE_PW, "phone");
    // A is told at once: the push is already on its socket
    let start = Instant::now();
    let push = a.poll_push(Duration::from_secs(5));
    assert!(start.elapsed() < Duration::from_secs(2));
    let err = push.unwrap_err();
    let ClientError::Revoked(r) = &err else {
        panic!("{err}")
    };
    assert_eq!(r.reason, RevokeReason::NewLogin);
    assert_eq!(r.by_client, "phone");
    assert_eq!(r.session_id, sa.session.session_id);
    assert!(r.by_address.starts_with("127.0.0.1:"));
    assert!(err.token_is_dead());
    assert!(
        err.to_string().contains("logged in somewhere else"),
        "{err}"
    );
    // A's token now gets SESSION_INVALID (revoked); B keeps working
    let mut a2 = server.client();
    match a2.resume(&sa.token, "laptop", "linux").unwrap() {
        ResumeOutcome::Invalid(i) => assert_eq!(i.reason, InvalidReason::Revoked),
        other => panic!("{other:?}"),
    }
    for _ in 0..3 {
        b.heartbeat().unwrap();
    }
}

#[test]
fn a_dropped_connection_resumes_with_the_token() {
    use sessiond::client::ResumeOutcome;
    let server = TestServer::start();
    let (c, s) = server.alice();
    drop(c); // the network goes away: no logout, no disconnect
             // the server notices the close and detaches; resuming may race it, so retry briefly
    let deadline = Instant::now() + Duration::from_secs(5);
    let info = loop {
        let mut c2 = server.client();
        match c2.resume(&s.token, "test", "linux").unwrap() {
            ResumeOutcome::Valid(info) => {
                c2.heartbeat().unwrap();
                break info;
            }
            ResumeOutcome::Duplicate(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(info.session_id, s.session.session_id);
    assert_eq!(info.username, "alice");
}

#[test]
fn idle_timeout_keeps_the_session_for_a_resume() {
    use sessiond::client::ResumeOutcome;
    let server = TestServer::start_with(|c| {
        c.engine.heartbeat_interval = Duration::from_millis(100);
        c.engine.heartbeat_timeout = Duration::from_millis(300);
    });
    let (mut s, tok) = raw_login(&server);
    let f = read_frames(&mut s, 1, Duration::from_secs(10));
    assert!(matches!(
        f[0].message,
        Message::DisconnectAck(a) if a.reason == DisconnectReason::IdleTimeout
    ));
    let mut c = server.client();
    assert!(matches!(
        c.resume(&tok, "t", "p").unwrap(),
        ResumeOutcome::Valid(_)
    ));
    c.heartbeat().unwrap();
}

#[test]
fn registration_is_durable_before_success_and_then_logs_in() {
    use sessiond::client::RegisterOutcome;
    use sessiond::engine::event::Event;
    use sessiond::protocol::RegisterFailureReason;
    use sessiond::store::journal::replay;
    let dir = std::env::temp_dir().join(format!("sessiond-reg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = TestServer::start_journaled(&dir);
    let mut c = server.client();
    match c
        .register("carol", "long enough;pw", "carol@example.org")
        .unwrap()
    {
        RegisterOutcome::Success(s) => assert_eq!(s.username, "carol"),
        other => panic!("{other:?}"),
    }
    // in the journal, synced, by the time the reply arrived
    let bytes = std::fs::read(dir.join(sessiond::store::JOURNAL_FILE)).unwrap();
    let created = replay(&bytes, 1)
        .unwrap()
        .records
        .iter()
        .filter_map(
            |r| match sessiond::store::record::decode(r.kind, r.payload) {
                Ok(Event::UserCreated(u)) => Some(u),
                _ => None,
            },
        )
        .collect::<Vec<_>>();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].email, "carol@example.org");
    match c
        .register("carol", "long enough;pw", "carol@example.org")
        .unwrap()
    {
        RegisterOutcome::Failure(f) => assert_eq!(f.reason, RegisterFailureReason::UsernameTaken),
        other => panic!("{other:?}"),
    }
    match c.login("carol", "long enough;pw", "t", "p").unwrap() {
        LoginOutcome::Success(s) => assert_eq!(s.session.username, "carol"),
        other => panic!("{other:?}"),
    }
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- issue 4: a failed journal write stops the server before anything is acknowledged --

struct FailingStore;

impl sessiond::store::Store for FailingStore {
    fn append(&mut self, _: &sessiond::engine::event::Event) -> std::io::Result<()> {
        Ok(())
    }
    fn commit(&mut self) -> Result<(), sessiond::store::StoreError> {
        let eio = std::io::Error::other("simulated EIO on fdatasync");
        Err(sessiond::store::StoreError::fatal(eio))
    }
}

fn state_with(users: sessiond::session::UserTable) -> sessiond::engine::replay::State {
    sessiond::engine::replay::State {
        users,
        ..sessiond::engine::replay::State::new()
    }
}

#[test]
fn a_failed_commit_stops_the_server_without_acknowledging() {
    use sessiond::auth::PasswordRecord;
    use sessiond::server::{Server, ServerConfig};
    use sessiond::session::UserTable;
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        iterations: 1000,
        ..ServerConfig::default()
    };
    let mut users = UserTable::new();
    let rec = PasswordRecord::create(ALICE_PW.as_bytes(), 1000).unwrap();
    users.create("alice", rec, Role::User, "", 1).unwrap();
    let mut server =
        Server::bind_with_store(cfg, state_with(users), Some(Box::new(FailingStore))).unwrap();
    let addr = server.local_addr();
    let run = std::thread::spawn(move || server.run());
    let mut c = sessiond::client::Client::connect(addr, Duration::from_secs(5)).unwrap();
    // the login's session must be journaled before LOGIN_SUCCESS may leave; the commit
    // fails, so the client never sees a success
    let r = c.login("alice", ALICE_PW, "t", "p");
    assert!(
        matches!(r, Err(ref e) if e.is_network()),
        "expected the connection to drop, got {r:?}"
    );
    let result = run.join().unwrap();
    assert!(result.is_err(), "the server must stop on a failed commit");
}

#[test]
fn graceful_shutdown_notifies_clients_and_returns_promptly() {
    use sessiond::protocol::{DisconnectReason, Message};
    let server = TestServer::start();
    let (mut alice, _) = server.alice();
    // not logged in, but surely accepted (it got an answer) before the shutdown
    let mut idle = server.client();
    assert!(matches!(
        idle.login("alice", "wrong", "t", "p").unwrap(),
        LoginOutcome::Failure(_)
    ));
    let t = Instant::now();
    let stopper = server.stop_in_background();
    for c in [&mut alice, &mut idle] {
        let first = c
            .poll_push(Duration::from_secs(5))
            .unwrap()
            .expect("a notice");
        assert!(
            matches!(first.message, Message::ServerShutdown(_)),
            "{first:?}"
        );
        match c.poll_push(Duration::from_secs(5)) {
            Err(ClientError::Closed(Some(r))) => {
                assert_eq!(r, DisconnectReason::ServerShutdown)
            }
            other => panic!("{other:?}"),
        }
    }
    drop((alice, idle));
    stopper.join().unwrap().expect("clean stop");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn a_request_followed_at_once_by_fin_is_answered_and_the_close_seen() {
    let server = TestServer::start();
    for _ in 0..20 {
        let (mut s, tok) = raw_login(&server);
        s.write_all(&hb_bytes(7, &tok)).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let f = read_frames(&mut s, 1, Duration::from_secs(5));
        assert!(matches!(f[0].message, Message::HeartbeatAck(_)));
        // the server noticed the FIN (with the data or after it) and closed, long before
        // any timeout
        assert!(closed_within(&mut s, Duration::from_secs(3)));
    }
}

/// A restart's clients all come back at once: the listener queues them until the loop
/// accepts. With std's backlog (128) the 130th connection's handshake would be dropped
/// and this connect would time out; the default holds a thousand and more.
#[test]
fn the_listener_queues_a_crowd_before_any_is_accepted() {
    let cfg = sessiond::server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    assert!(cfg.listen_backlog >= 1024, "{}", cfg.listen_backlog);
    let listeners = sessiond::server::Listeners::bind(&cfg).unwrap();
    let addr = listeners.local_addr().unwrap();
    let queued: Vec<std::net::TcpStream> = (0..600)
        .map(|i| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("connection {i} not queued: {e}"))
        })
        .collect();
    assert_eq!(queued.len(), 600);
}
