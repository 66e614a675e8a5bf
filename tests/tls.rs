//! TLS on the listener and in the client (issue 8), with certificates made inside the
//! test by rcgen: the full life cycle over TLS, a wrong CA or name refused, a plaintext
//! client failing cleanly, a stalled handshake dropped at the login deadline while other
//! clients carry on, the plain loopback listener beside TLS, and WebSocket inside TLS (`wss://`).
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

#[path = "../examples/shared/ws_client.rs"]
#[allow(dead_code)]
mod ws_client;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::wire::closed_within;
use common::{TestServer, ALICE_PW};
use sessiond::client::{Client, ClientError, LoginOutcome};
use sessiond::tls::{client_config, server_config, Trust};

fn tls_server(pki: &Pki, tune: impl FnOnce(&mut sessiond::server::ServerConfig)) -> TestServer {
    let cfg = server_config(&pki.path("cert.pem"), &pki.path("key.pem")).unwrap();
    TestServer::start_with(|c| {
        c.tls = Some(cfg);
        tune(c);
    })
}

fn trusting(ca: &Path) -> Arc<rustls::ClientConfig> {
    client_config(&Trust::CaFile(ca.to_path_buf())).unwrap()
}

fn tls_client(server: &TestServer, pki: &Pki) -> Client {
    Client::connect_tls(
        server.addr,
        "localhost",
        trusting(&pki.path("ca.pem")),
        Duration::from_secs(5),
    )
    .expect("TLS connect")
}

#[test]
fn the_whole_life_cycle_runs_over_tls() {
    let pki = Pki::new("life");
    let server = tls_server(&pki, |_| {});
    let mut c = tls_client(&server, &pki);
    let s = match c.login("alice", ALICE_PW, "tls", "test").unwrap() {
        LoginOutcome::Success(s) => s,
        other => panic!("{other:?}"),
    };
    for _ in 0..10 {
        c.heartbeat().unwrap();
    }
    assert_eq!(c.list_sessions(0, 0).unwrap().total, 1);
    c.disconnect().unwrap();
    // resume on a new TLS connection, then log out
    let mut c = tls_client(&server, &pki);
    assert!(matches!(
        c.resume(&s.token, "tls", "test").unwrap(),
        sessiond::client::ResumeOutcome::Valid(_)
    ));
    c.logout().unwrap();
    // an IP address as the server name works too (it is in the certificate)
    let mut c = Client::connect_tls(
        server.addr,
        "127.0.0.1",
        trusting(&pki.path("ca.pem")),
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(matches!(
        c.login("alice", ALICE_PW, "tls", "test").unwrap(),
        LoginOutcome::Success(_)
    ));
}

#[test]
fn a_wrong_ca_or_name_is_refused_and_skipping_verification_is_explicit() {
    let pki = Pki::new("trust");
    let other = Pki::new("other");
    let server = tls_server(&pki, |_| {});
    let e = Client::connect_tls(
        server.addr,
        "localhost",
        trusting(&other.path("ca.pem")),
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert!(matches!(e, ClientError::Tls(_)), "{e:?}");
    assert!(!e.is_network());
    let e = Client::connect_tls(
        server.addr,
        "example.org",
        trusting(&pki.path("ca.pem")),
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert!(matches!(e, ClientError::Tls(_)), "{e:?}");
    // the loudly named option connects to anything
    let insecure = client_config(&Trust::InsecureSkipVerify).unwrap();
    let mut c =
        Client::connect_tls(server.addr, "example.org", insecure, Duration::from_secs(5)).unwrap();
    assert!(matches!(
        c.login("alice", ALICE_PW, "tls", "test").unwrap(),
        LoginOutcome::Success(_)
    ));
}

#[test]
fn a_plaintext_client_gets_a_clear_failure_not_a_hang() {
    let pki = Pki::new("plain");
    let server = tls_server(&pki, |_| {});
    let mut c = server.client();
    c.set_timeout(Duration::from_secs(10));
    let t = Instant::now();
    let e = c.login("alice", ALICE_PW, "plain", "test").unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    // protocol.md 1: a frame on the TLS port is answered, in plain TCP, TLS_REQUIRED
    assert!(
        matches!(
            &e,
            ClientError::Server { failure, fatal: true }
                if failure.code == sessiond::protocol::ErrorCode::TlsRequired
        ),
        "{e:?}"
    );
}

#[test]
fn a_stalled_handshake_is_dropped_at_the_login_deadline_while_others_go_on() {
    let pki = Pki::new("stall");
    let server = tls_server(&pki, |c| {
        c.engine.login_timeout = Duration::from_millis(500)
    });
    let mut stalled = TcpStream::connect(server.addr).unwrap();
    // the first bytes of a ClientHello record, and then nothing
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])
        .unwrap();
    let t = Instant::now();
    let mut c = tls_client(&server, &pki);
    assert!(matches!(
        c.login("alice", ALICE_PW, "tls", "test").unwrap(),
        LoginOutcome::Success(_)
    ));
    for _ in 0..20 {
        let h = Instant::now();
        c.heartbeat().unwrap();
        assert!(h.elapsed() < Duration::from_millis(500));
    }
    assert!(closed_within(&mut stalled, Duration::from_secs(5)));
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(450), "{took:?}");
}

#[test]
fn a_plain_loopback_listener_serves_local_tools_beside_tls() {
    let pki = Pki::new("both");
    let server = tls_server(&pki, |c| {
        c.plain_listen = Some("127.0.0.1:0".parse().unwrap())
    });
    let plain = server.plain_addr.expect("plain listener");
    let mut c = Client::connect(plain, Duration::from_secs(5)).unwrap();
    assert!(matches!(
        c.login("alice", ALICE_PW, "local", "test").unwrap(),
        LoginOutcome::Success(_)
    ));
    let mut t = tls_client(&server, &pki);
    assert!(matches!(
        t.login("bob", common::BOB_PW, "tls", "test").unwrap(),
        LoginOutcome::Success(_)
    ));
    // a plain listener on a public address is refused
    let cfg = server_config(&pki.path("cert.pem"), &pki.path("key.pem")).unwrap();
    let bad = sessiond::server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(cfg),
        plain_listen: Some("0.0.0.0:0".parse().unwrap()),
        ..Default::default()
    };
    assert!(sessiond::server::Server::bind(bad, sessiond::session::UserTable::new()).is_err());
}

/// `--ws-listen` with TLS is `wss://`: the upgrade and the frames travel inside TLS.
#[test]
fn websocket_over_tls_is_wss() {
    use std::io::Read;
    let pki = Pki::new("wss");
    let server = tls_server(&pki, |c| c.ws_listen = Some("127.0.0.1:0".parse().unwrap()));
    let addr = server.ws_addr.expect("ws listener");
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = sessiond::tls::server_name("localhost").unwrap();
    let conn = rustls::ClientConnection::new(trusting(&pki.path("ca.pem")), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut input = bytes::BytesMut::new();
    let read_more = |tls: &mut rustls::StreamOwned<_, TcpStream>, input: &mut bytes::BytesMut| {
        assert!(Instant::now() < deadline, "timed out");
        let mut chunk = [0u8; 4096];
        let n = tls.read(&mut chunk).expect("read");
        assert!(n > 0, "closed");
        input.extend_from_slice(&chunk[..n]);
    };
    tls.write_all(&ws_client::upgrade_request("localhost", None))
        .unwrap();
    while ws_client::read_upgrade(&mut input).unwrap().is_none() {
        read_more(&mut tls, &mut input);
    }
    let mut login = Vec::new();
    ws_client::encode(
        ws_client::BINARY,
        &common::wire::login_bytes(1, "alice", ALICE_PW),
        [1, 2, 3, 4],
        &mut login,
    );
    tls.write_all(&login).unwrap();
    let payload = loop {
        if let Some((op, _, p)) = ws_client::decode(&mut input).unwrap() {
            assert_eq!(op, ws_client::BINARY);
            break p;
        }
        read_more(&mut tls, &mut input);
    };
    let (frame, _) = sessiond::protocol::decode_slice(&payload).unwrap();
    assert!(
        matches!(frame.message, sessiond::protocol::Message::LoginSuccess(_)),
        "{frame:?}"
    );
}
