//! §5.11 to §5.14 (VERIFY_SESSION, SESSION_VALID, SESSION_INVALID, DUPLICATE_SESSION): coming back with a token.

use std::time::Duration;

use crate::common::harness::*;
use sessiond::engine::{DuplicatePolicy, EngineConfig};
use sessiond::protocol::*;

#[test]
fn a_session_survives_the_heartbeat_timeout_and_resumes() {
    let (mut h, a, tok) = Harness::logged_in(EngineConfig::default());
    h.advance(Duration::from_secs(15));
    assert_eq!(disconnect_reason(&h.one(a)), DisconnectReason::IdleTimeout);
    h.remove(a);
    // a new connection resumes without a password
    let b = h.connect();
    let rid = h.send(b, verify(&tok));
    let f = h.one(b);
    assert_eq!(f.request_id, rid);
    let Message::SessionValid(v) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(v.session.username, "alice");
    assert_eq!(v.session.heartbeat_timeout_ms, 15_000);
    assert_eq!(
        v.session.session_expires,
        1_767_225_600_000 + 24 * 3600 * 1000
    );
    h.send(b, hb(&tok));
    assert!(matches!(h.one(b).message, Message::HeartbeatAck(_)));
    assert_eq!(h.engine.stats().resumes, 1);
    assert_eq!(h.engine.attached_sessions(), 1);
}

#[test]
fn an_unknown_token_is_invalid_and_the_connection_can_still_log_in() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    h.send(c, verify(&Token([3; 32])));
    let f = h.one(c);
    assert_eq!(invalid_reason(&f), InvalidReason::Unknown);
    assert!(!h.closing(c));
    h.login_ok(c);
}

#[test]
fn duplicate_resume_is_rejected_by_default() {
    let (mut h, a, tok) = Harness::logged_in(EngineConfig::default());
    let b = h.connect();
    h.send(b, verify(&tok));
    let f = h.one(b);
    assert_eq!(f.flags, Flags::FATAL);
    assert!(matches!(f.message, Message::DuplicateSession(_)));
    assert!(h.closing(b));
    h.send(a, hb(&tok));
    assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
}

#[test]
fn duplicate_resume_with_takeover_moves_the_session() {
    let mut h = Harness::new(EngineConfig {
        duplicate: DuplicatePolicy::Takeover,
        ..EngineConfig::default()
    });
    let a = h.connect();
    let tok = h.login_ok(a);
    let b = h.connect();
    h.send(b, verify(&tok));
    assert!(matches!(h.one(b).message, Message::SessionValid(_)));
    let fa = h.one(a);
    let Message::SessionRevoked(r) = fa.message else {
        panic!("{fa:?}")
    };
    assert_eq!(r.reason, RevokeReason::TakenOver);
    assert_eq!(r.by_client, "tablet");
    assert!(h.closing(a));
    h.send(b, hb(&tok));
    assert!(matches!(h.one(b).message, Message::HeartbeatAck(_)));
    assert_eq!(h.engine.attached_sessions(), 1);
}

#[test]
fn logged_out_and_expired_tokens_say_why() {
    let cfg = EngineConfig {
        session_idle: Duration::from_secs(60),
        tombstone_min: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let (mut h, a, tok) = Harness::logged_in(cfg);
    h.send(
        a,
        Message::LogoutRequest(LogoutRequest { token: tok.clone() }),
    );
    h.frames(a);
    h.send(a, verify(&tok));
    assert_eq!(invalid_reason(&h.one(a)), InvalidReason::LoggedOut);

    let tok2 = h.login_ok(a);
    h.send(a, Message::DisconnectRequest(DisconnectRequest));
    h.frames(a);
    h.remove(a);
    h.advance(Duration::from_secs(60));
    assert!(h.engine.sessions().is_empty());
    let b = h.connect();
    h.send(b, verify(&tok2));
    assert_eq!(invalid_reason(&h.one(b)), InvalidReason::Expired);
    // tombstones are forgotten by the sweep: after the retention the token is unknown
    h.advance(Duration::from_secs(24 * 3600));
    assert_eq!(h.engine.sessions().tombstones(), 0);
    let c = h.connect();
    h.send(c, verify(&tok2));
    assert_eq!(invalid_reason(&h.one(c)), InvalidReason::Unknown);
}

/// protocol.md 7: a dead token says why until its absolute expiry would have passed, and
/// a snapshot (a compaction, then a restart) keeps that time rather than restarting the
/// hour from the snapshot.
#[test]
fn a_tombstone_keeps_its_time_through_a_snapshot() {
    use sessiond::engine::replay::State;
    let cfg = EngineConfig {
        session_idle: Duration::from_secs(12 * 3600),
        session_lifetime: Duration::from_secs(10 * 3600),
        tombstone_min: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    let (mut h, a, tok) = Harness::logged_in(cfg.clone());
    h.send(
        a,
        Message::LogoutRequest(LogoutRequest { token: tok.clone() }),
    );
    h.frames(a);
    assert_eq!(h.engine.sessions().tombstones(), 1);
    let mut state = State::new();
    for ev in h.engine.snapshot_events(h.now) {
        state.apply(ev).unwrap();
    }
    let mut again = Harness::new(cfg);
    again.engine.restore(state, again.now);
    assert_eq!(again.engine.sessions().tombstones(), 1);
    again.advance(Duration::from_secs(2 * 3600));
    let b = again.connect();
    again.send(b, verify(&tok));
    assert_eq!(invalid_reason(&again.one(b)), InvalidReason::LoggedOut);
    // forgotten once the session would have expired (by the next minute's sweep)
    again.advance(Duration::from_secs(8 * 3600 + 61));
    assert_eq!(again.engine.sessions().tombstones(), 0);
    let c = again.connect();
    again.send(c, verify(&tok));
    assert_eq!(invalid_reason(&again.one(c)), InvalidReason::Unknown);
}

#[test]
fn a_session_active_before_the_monotonic_clock_began_is_restored() {
    // After a reboot the monotonic clock starts near zero: a session whose last activity
    // was before it (here ten years before the engine's start) must still come back, with
    // its idle expiry counted from that activity.
    const YEAR_MS: u64 = 365 * 86_400_000;
    let cfg = EngineConfig {
        session_idle: Duration::from_millis(20 * YEAR_MS),
        session_lifetime: Duration::from_millis(40 * YEAR_MS),
        ..EngineConfig::default()
    };
    let mut h = Harness::new(cfg);
    let start_ms = h.engine.unix_ms(h.now);
    let tok = Token([5; 32]);
    let mut state = sessiond::engine::replay::State::new();
    state.sessions.insert(
        77,
        sessiond::engine::event::StoredSession {
            id: 77,
            user_id: 1,
            digest: sessiond::session::Digest::of(&tok),
            client: "old".into(),
            platform: "box".into(),
            peer: "10.0.0.1:5000".into(),
            created_ms: start_ms - 10 * YEAR_MS,
            last_activity_ms: start_ms - 10 * YEAR_MS,
            expires_ms: start_ms + 30 * YEAR_MS,
        },
    );
    h.engine.restore(state, h.now);
    assert_eq!(h.engine.sessions().len(), 1);
    let s = h.engine.sessions().get(77).unwrap();
    assert_eq!(s.last_activity_ms, start_ms - 10 * YEAR_MS);
    let c = h.connect();
    h.send(c, verify(&tok));
    assert!(matches!(h.one(c).message, Message::SessionValid(_)));
}
