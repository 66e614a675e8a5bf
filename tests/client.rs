//! The client library against real sockets: automatic heartbeats keep an idle client
//! alive, and a server that stops answering is detected within its heartbeat timeout.

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
