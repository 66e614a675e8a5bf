//! §5.6 to §5.9 (LOGOUT_*, DISCONNECT_*) and §5.35 SERVER_SHUTDOWN: how a connection and its session part.

use std::time::Duration;

use crate::common::harness::*;
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

#[test]
fn logout_ends_the_session_and_allows_a_new_login() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
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
    let (mut h, c, _) = Harness::logged_in(cfg);
    h.send(c, Message::DisconnectRequest(DisconnectRequest));
    assert_eq!(
        disconnect_reason(&h.one(c)),
        DisconnectReason::ClientRequest
    );
    h.remove(c);
    assert_eq!(h.engine.sessions().len(), 1);
    h.advance(Duration::from_secs(60) - tick());
    assert_eq!(h.engine.sessions().len(), 1);
    h.advance(tick());
    assert!(h.engine.sessions().is_empty());
    assert_eq!(h.engine.stats().sessions_expired, 1);
}

#[test]
fn peer_close_handles_buffered_frames_then_closes() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    // a heartbeat, then the FIN right behind it, in one read
    h.feed_and_close(c, &Frame::reply(5, hb(&tok)).to_vec());
    let f = h.one(c);
    assert!(matches!(f.message, Message::HeartbeatAck(_)));
    assert!(h.closing(c));
    assert_eq!(h.engine.attached_sessions(), 0);
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
    h.engine.handle_shutdown(h.now);
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
