//! Raw-socket helpers: frames in and out of a `TcpStream` without the client library, for
//! tests that send what a well-behaved client never would.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sessiond::protocol::{DecodeLimits, Frame, Heartbeat, Message, Token};

use super::{TestServer, ALICE_PW};

/// Reads from a raw socket until `n` frames have arrived (bounded by `timeout`).
pub fn read_frames(s: &mut TcpStream, n: usize, timeout: Duration) -> Vec<Frame> {
    let deadline = Instant::now() + timeout;
    let mut buf = bytes::BytesMut::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    while out.len() < n {
        while let Some(f) =
            sessiond::protocol::decode(&mut buf, DecodeLimits::client(1 << 20)).unwrap()
        {
            out.push(f);
        }
        if out.len() >= n {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out with {} of {n} frames",
            out.len()
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    out
}

/// True once the server has closed the socket (EOF), within `timeout`.
pub fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut b = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

pub fn raw(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.addr).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

pub fn login_bytes(rid: u32, user: &str, pw: &str) -> Vec<u8> {
    Frame::reply(
        rid,
        Message::LoginRequest(sessiond::protocol::LoginRequest {
            username: user.into(),
            password: pw.into(),
            client: "raw".into(),
            platform: "test".into(),
        }),
    )
    .to_vec()
}

pub fn raw_login(server: &TestServer) -> (TcpStream, Token) {
    let mut s = raw(server);
    s.write_all(&login_bytes(1, "alice", ALICE_PW)).unwrap();
    let f = read_frames(&mut s, 1, Duration::from_secs(10));
    match &f[0].message {
        Message::LoginSuccess(ls) => (s, ls.token.clone()),
        other => panic!("{other:?}"),
    }
}

pub fn hb_bytes(rid: u32, token: &Token) -> Vec<u8> {
    Frame::reply(
        rid,
        Message::Heartbeat(Heartbeat {
            token: token.clone(),
        }),
    )
    .to_vec()
}
