//! protocol.md "WebSocket transport" against a real server on 127.0.0.1:0: the handshake
//! and its refusals, frames in binary messages both ways (byte-exact), text, pings, the
//! close handshake, FATAL frames before the close, and the limits that hold as on TCP.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

#[path = "../examples/shared/ws_client.rs"]
#[allow(dead_code)]
mod ws_client;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::wire::{closed_within, hb_bytes, login_bytes, read_frames};
use common::{TestServer, ALICE_PW};
use sessiond::protocol::{
    decode_slice, DisconnectReason, Frame, Message, RevokeReason, Token, VerifySession,
};
use sessiond::server::{OriginPolicy, ServerConfig};
use ws_client::{BINARY, CLOSE, PING, PONG, TEXT};

/// The mask of protocol.md's example (any would do).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn server_with(tune: impl FnOnce(&mut ServerConfig)) -> TestServer {
    TestServer::start_with(|c| {
        c.ws_listen = Some("127.0.0.1:0".parse().unwrap());
        c.ws_origins = OriginPolicy::new(&["https://app.example"]);
        tune(c);
    })
}

fn server() -> TestServer {
    server_with(|_| {})
}

/// A WebSocket connection seen as raw bytes.
struct Ws {
    s: TcpStream,
    input: BytesMut,
}

impl Ws {
    /// Connects and upgrades; Err with the status line if refused.
    fn connect(addr: SocketAddr, origin: Option<&str>) -> Result<Ws, String> {
        let mut ws = Ws::raw(addr);
        ws.s.write_all(&ws_client::upgrade_request(&addr.to_string(), origin))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match ws_client::read_upgrade(&mut ws.input) {
                Ok(Some(_)) => return Ok(ws),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
            assert!(Instant::now() < deadline, "no upgrade answer");
            if !ws.fill(deadline) {
                return Err("closed during the upgrade".into());
            }
        }
    }

    fn open(server: &TestServer) -> Ws {
        Ws::connect(server.ws_addr.unwrap(), None).expect("upgrade")
    }

    fn raw(addr: SocketAddr) -> Ws {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Ws {
            s,
            input: BytesMut::new(),
        }
    }

    /// Reads once more (until `deadline`); false at EOF.
    fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; have {:?}", &self.input[..]);
        self.s.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 65536];
        match self.s.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.input.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read: {e}"),
        }
    }

    fn send(&mut self, opcode: u8, payload: &[u8]) {
        let mut out = Vec::new();
        ws_client::encode(opcode, payload, MASK, &mut out);
        self.s.write_all(&out).unwrap();
    }

    /// The next WebSocket frame (opcode, payload); None at EOF.
    fn next(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((op, fin, payload)) = ws_client::decode(&mut self.input).unwrap() {
                assert!(fin, "the server does not fragment");
                return Some((op, payload));
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// The protocol frames of the next binary message (each message holds whole frames).
    fn frames(&mut self) -> Vec<Frame> {
        let (op, payload) = self.next(Duration::from_secs(10)).expect("a message");
        assert_eq!(op, BINARY, "payload {payload:?}");
        let mut out = Vec::new();
        let mut at = 0;
        while at < payload.len() {
            let (f, n) = decode_slice(&payload[at..]).expect("whole frames");
            out.push(f);
            at += n;
        }
        assert!(!out.is_empty());
        out
    }

    fn one(&mut self) -> Frame {
        let mut f = self.frames();
        assert_eq!(f.len(), 1, "{f:?}");
        f.remove(0)
    }

    fn login(&mut self) -> Token {
        self.send(BINARY, &login_bytes(1, "alice", ALICE_PW));
        match self.one().message {
            Message::LoginSuccess(s) => s.token,
            other => panic!("{other:?}"),
        }
    }

    /// The close frame's code, then EOF.
    fn expect_close(&mut self, code: u16) {
        let (op, payload) = self.next(Duration::from_secs(10)).expect("a close frame");
        assert_eq!(op, CLOSE, "payload {payload:?}");
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
        assert!(
            self.next(Duration::from_secs(5)).is_none(),
            "EOF after close"
        );
    }
}

#[test]
fn a_heartbeat_in_a_masked_message_is_answered_in_one_message_as_protocol_md_shows() {
    let server = server();
    let mut ws = Ws::open(&server);
    let token = ws.login();
    // protocol.md's ws_heartbeat, with this session's token and request id 2.
    let hb = hb_bytes(2, &token);
    let mut wire = Vec::new();
    ws_client::encode(BINARY, &hb, MASK, &mut wire);
    assert_eq!(&wire[..6], &[0x82, 0xae, 0x37, 0xfa, 0x21, 0x3d]);
    ws.s.write_all(&wire).unwrap();
    let (op, payload) = ws.next(Duration::from_secs(5)).unwrap();
    assert_eq!(op, BINARY);
    assert_eq!(payload.len(), 22, "one HEARTBEAT_ACK: 82 16 ...");
    assert_eq!(
        &payload[..14],
        &[0x53, 0x44, 1, 5, 0, 0, 0, 0, 0, 2, 0, 0, 0, 8]
    );
}

#[test]
fn the_client_stream_ignores_message_boundaries() {
    let server = server();
    let mut ws = Ws::open(&server);
    // The login split over three messages.
    let login = login_bytes(1, "alice", ALICE_PW);
    for part in login.chunks(login.len() / 3 + 1) {
        ws.send(BINARY, part);
    }
    let Message::LoginSuccess(s) = ws.one().message else {
        panic!("no login");
    };
    // Three heartbeats in one message: three answers, in order, in whole frames.
    let three: Vec<u8> = (10..13).flat_map(|i| hb_bytes(i, &s.token)).collect();
    ws.send(BINARY, &three);
    let mut ids = Vec::new();
    while ids.len() < 3 {
        for f in ws.frames() {
            assert!(matches!(f.message, Message::HeartbeatAck(_)));
            ids.push(f.request_id);
        }
    }
    assert_eq!(ids, [10, 11, 12]);
}

#[test]
fn pings_get_pongs_but_do_not_keep_a_silent_session_connected() {
    let server = server_with(|c| {
        c.engine.heartbeat_interval = Duration::from_millis(100);
        c.engine.heartbeat_timeout = Duration::from_millis(500);
    });
    let mut ws = Ws::open(&server);
    ws.login();
    let t = Instant::now();
    let reason = loop {
        assert!(t.elapsed() < Duration::from_secs(5), "never timed out");
        ws.send(PING, b"are you there");
        match ws.next(Duration::from_secs(5)) {
            Some((PONG, p)) => assert_eq!(p, b"are you there"),
            Some((BINARY, p)) => match decode_slice(&p).unwrap().0.message {
                Message::DisconnectAck(a) => break a.reason,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(reason, DisconnectReason::IdleTimeout);
    assert!(t.elapsed() >= Duration::from_millis(450));
    // The pong of a ping in flight may come first; then the close.
    loop {
        match ws.next(Duration::from_secs(5)) {
            Some((PONG, _)) => continue,
            Some((CLOSE, p)) => {
                assert_eq!(&p[..2], &[0x03, 0xe8]);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_text_message_is_refused_with_1003_and_others_are_undisturbed() {
    let server = server();
    let mut other = Ws::open(&server);
    let token = other.login();
    let mut ws = Ws::open(&server);
    ws.send(TEXT, b"{\"op\":\"login\"}");
    ws.expect_close(1003);
    other.send(BINARY, &hb_bytes(2, &token));
    assert!(matches!(other.one().message, Message::HeartbeatAck(_)));
}

#[test]
fn an_oversized_message_is_refused_with_1009() {
    let server = server_with(|c| c.engine.max_frame = 4096);
    let mut ws = Ws::open(&server);
    ws.send(BINARY, &vec![0u8; 5000]);
    ws.expect_close(1009);
}

#[test]
fn the_client_close_detaches_the_session_after_answering_what_came_before() {
    let server = server();
    let mut ws = Ws::open(&server);
    let token = ws.login();
    // A heartbeat and the close frame in one write: the heartbeat is answered first.
    let mut out = Vec::new();
    ws_client::encode(BINARY, &hb_bytes(2, &token), MASK, &mut out);
    ws_client::encode(CLOSE, &[0x03, 0xe8], MASK, &mut out);
    ws.s.write_all(&out).unwrap();
    assert!(matches!(ws.one().message, Message::HeartbeatAck(_)));
    ws.expect_close(1000);
    // The session survives, detached: it resumes over TCP.
    let mut tcp = common::wire::raw(&server);
    let verify = Frame::reply(
        3,
        Message::VerifySession(VerifySession {
            token: token.clone(),
            client: "raw".into(),
            platform: "test".into(),
        }),
    );
    tcp.write_all(&verify.to_vec()).unwrap();
    let f = read_frames(&mut tcp, 1, Duration::from_secs(5));
    assert!(matches!(f[0].message, Message::SessionValid(_)), "{f:?}");
}

#[test]
fn a_fatal_push_arrives_before_the_1000_close() {
    let server = server();
    let mut first = Ws::open(&server);
    first.login();
    let mut second = Ws::open(&server);
    second.login();
    let f = first.one();
    let Message::SessionRevoked(r) = f.message else {
        panic!("{f:?}");
    };
    assert_eq!(r.reason, RevokeReason::NewLogin);
    first.expect_close(1000);
}

#[test]
fn origins_are_checked_and_requests_without_one_allowed() {
    let server = server();
    let addr = server.ws_addr.unwrap();
    assert!(Ws::connect(addr, None).is_ok());
    assert!(Ws::connect(addr, Some("https://app.example")).is_ok());
    let refused = Ws::connect(addr, Some("https://evil.example"))
        .err()
        .unwrap();
    assert!(refused.contains("403 Forbidden"), "{refused}");
    let any = server_with(|c| c.ws_origins = OriginPolicy::new(&["*"]));
    assert!(Ws::connect(any.ws_addr.unwrap(), Some("https://evil.example")).is_ok());
    let none = server_with(|c| c.ws_origins = OriginPolicy::default());
    let refused = Ws::connect(none.ws_addr.unwrap(), Some("https://app.example"))
        .err()
        .unwrap();
    assert!(refused.contains("403"), "{refused}");
}

/// Sends `request` on a fresh WebSocket-port connection and reads until the server closes
/// it (`fill` fails the test if it does not within 5 s): the response's status line.
fn http_status(server: &TestServer, request: &[u8]) -> String {
    let mut ws = Ws::raw(server.ws_addr.unwrap());
    ws.s.write_all(request).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ws.fill(deadline) {}
    let text = String::from_utf8_lossy(&ws.input).into_owned();
    text.lines().next().unwrap_or("").to_owned()
}

#[test]
fn bad_upgrades_get_http_errors_and_a_close() {
    let server = server();
    let status = http_status(&server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 426 Upgrade Required");
    let status = http_status(&server, b"POST / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    // A sessiond frame where the upgrade should be.
    let status = http_status(&server, &login_bytes(1, "alice", ALICE_PW));
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
    long.resize(20_000, b'a');
    let status = http_status(&server, &long);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[test]
fn a_handshake_that_never_ends_is_cut_at_the_login_deadline() {
    let server = server_with(|c| c.engine.login_timeout = Duration::from_millis(300));
    let mut ws = Ws::raw(server.ws_addr.unwrap());
    let t = Instant::now();
    ws.s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ws.fill(deadline) {
        // one byte at a time keeps nothing alive
        let _ = ws.s.write_all(b"X");
    }
    let text = String::from_utf8_lossy(&ws.input).into_owned();
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // Upgraded but never logged in: the protocol's own DISCONNECT_ACK, then the close.
    let mut ws = Ws::open(&server);
    let f = ws.one();
    assert!(matches!(
        f.message,
        Message::DisconnectAck(a) if a.reason == DisconnectReason::LoginTimeout
    ));
    ws.expect_close(1000);
}

#[test]
fn connection_limits_hold_for_websocket_connections() {
    let server = server_with(|c| c.engine.max_connections_per_address = 2);
    let _a = Ws::open(&server);
    let _b = Ws::open(&server);
    let refused = Ws::connect(server.ws_addr.unwrap(), None).err().unwrap();
    assert!(refused.contains("503 Service Unavailable"), "{refused}");
}

#[test]
fn a_websocket_peer_that_never_reads_is_cut_off_at_the_output_cap() {
    let server = server_with(|c| c.engine.max_output = 64 * 1024);
    let mut bystander = Ws::open(&server);
    let (mut admin, _) = server.login_as("bob", common::BOB_PW, "admin");
    let mut ws = Ws::open(&server);
    let token = ws.login();
    let mut burst = Vec::new();
    for i in 0..2_000u32 {
        ws_client::encode(BINARY, &hb_bytes(i + 2, &token), MASK, &mut burst);
    }
    ws.s.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let t = Instant::now();
    while common::output_overflows(&mut admin) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the server kept buffering for a WebSocket peer that never reads"
        );
        if ws.s.write_all(&burst).is_err() {
            break;
        }
    }
    assert!(closed_within(&mut ws.s, Duration::from_secs(10)));
    let token = bystander.login();
    bystander.send(BINARY, &hb_bytes(9, &token));
    assert!(matches!(bystander.one().message, Message::HeartbeatAck(_)));
}

#[test]
fn metrics_count_websocket_connections_and_upgrades() {
    let server = server_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap()));
    let _open = Ws::open(&server);
    let refused = Ws::connect(server.ws_addr.unwrap(), Some("https://evil.example"));
    assert!(refused.is_err());
    let metrics = server.metrics_addr.expect("metrics listener");
    let mut s = TcpStream::connect(metrics).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let value = |line: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(line))
            .unwrap_or_else(|| panic!("no {line} in {text}"))
            .trim()
            .to_owned()
    };
    assert_eq!(value("sessiond_connections_open{transport=\"ws\"}"), "1");
    assert_eq!(value("sessiond_connections_open{transport=\"plain\"}"), "0");
    assert_eq!(
        value("sessiond_websocket_upgrades_total{outcome=\"accepted\"}"),
        "1"
    );
    assert_eq!(
        value("sessiond_websocket_upgrades_total{outcome=\"refused\"}"),
        "1"
    );
}
