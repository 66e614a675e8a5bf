//! The client library against real sockets: automatic heartbeats keep an idle client
//! alive, and a server that stops answering is detected within its heartbeat timeout.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::TestServer;
use sessiond::client::{Client, ClientError, LoginOutcome};
use sessiond::protocol::{
    self, DecodeLimits, Frame, LoginSuccess, Message, Role, SessionInfo, Token,
};

#[test]
fn an_idle_client_is_kept_alive_by_automatic_heartbeats() {
    let server = TestServer::start_with(|c| {
        c.engine.heartbeat_interval = Duration::from_millis(100);
        c.engine.heartbeat_timeout = Duration::from_millis(400);
    });
    let (mut alice, _) = server.alice();
    // four heartbeat timeouts of doing nothing but waiting
    assert!(alice
        .wait_push(Duration::from_millis(1600))
        .unwrap()
        .is_none());
    alice.list_sessions(0, 0).expect("still connected");

    // without them the server closes the connection
    let (mut quiet, _) = server.alice_on(|c| c.set_auto_heartbeat(false));
    std::thread::sleep(Duration::from_millis(800));
    assert!(quiet.list_sessions(0, 0).is_err());
}

#[test]
fn a_server_that_stops_answering_heartbeats_is_detected() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A server that answers the login, then reads and never answers again.
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = bytes::BytesMut::new();
        let mut chunk = [0u8; 1024];
        let login = loop {
            let n = s.read(&mut chunk).unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(f) = protocol::decode(&mut buf, DecodeLimits::server(1 << 16)).unwrap() {
                break f;
            }
        };
        let ok = Message::LoginSuccess(LoginSuccess {
            token: Token([7; 32]),
            session: SessionInfo {
                session_id: 1,
                user_id: 1,
                role: Role::User,
                username: "alice".into(),
                user_created: 0,
                last_login: 0,
                session_created: 0,
                session_expires: 0,
                idle_expiry_ms: 60_000,
                heartbeat_interval_ms: 50,
                heartbeat_timeout_ms: 200,
            },
        });
        s.write_all(&Frame::reply(login.request_id, ok).to_vec())
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut heartbeats = 0;
        while let Ok(n) = s.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Ok(Some(f)) = protocol::decode(&mut buf, DecodeLimits::server(1 << 16)) {
                assert!(matches!(f.message, Message::Heartbeat(_)));
                heartbeats += 1;
            }
        }
        heartbeats
    });
    let mut c = Client::connect(addr, Duration::from_secs(5)).unwrap();
    assert!(matches!(
        c.login("alice", "pw", "t", "p").unwrap(),
        LoginOutcome::Success(_)
    ));
    let t = Instant::now();
    let e = c.wait_push(Duration::from_secs(10)).unwrap_err();
    assert!(matches!(e, ClientError::Timeout), "{e:?}");
    // the first heartbeat after 50 ms, its ACK overdue 200 ms later
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(240) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(c.token().is_some(), "the token is kept for a resume");
    drop(c);
    assert_eq!(fake.join().unwrap(), 1, "one heartbeat, then it gave up");
}

#[test]
fn reconnect_with_backoff_resumes_the_session_after_a_server_restart() {
    use sessiond::client::{reconnect_and_resume, Backoff, ResumeOutcome};
    let dir = std::env::temp_dir().join(format!("sessiond-reconnect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = TestServer::start_journaled(&dir);
    let addr = server.addr;
    let (mut alice, s) = server.alice();
    drop(server);
    assert!(alice.heartbeat().is_err(), "the server is gone");
    // it comes back on the same address a little later
    let d2 = dir.clone();
    let restarted = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        TestServer::start_journaled_with(&d2, |c| c.listen = addr)
    });
    let backoff = Backoff {
        first: Duration::from_millis(50),
        max: Duration::from_millis(200),
        attempts: 40,
    };
    let t = Instant::now();
    let (mut c, outcome) =
        reconnect_and_resume(addr, &s.token, "t", "p", Duration::from_secs(2), backoff).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    match outcome {
        ResumeOutcome::Valid(info) => assert_eq!(info.session_id, s.session.session_id),
        other => panic!("{other:?}"),
    }
    c.heartbeat().unwrap();
    let server = restarted.join().unwrap();
    drop(c);
    drop(server);
    // nothing listening at all: the attempts run out with a network error
    let few = Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(10),
        attempts: 3,
    };
    let e =
        reconnect_and_resume(addr, &s.token, "t", "p", Duration::from_secs(1), few).unwrap_err();
    assert!(e.is_network(), "{e:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
