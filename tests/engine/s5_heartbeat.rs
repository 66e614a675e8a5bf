//! §5.4 HEARTBEAT, §5.5 HEARTBEAT_ACK, §5.19 SESSION_EXPIRED and §7 Timing: the heartbeat timeout and session expiry, on the injected clock.

use std::time::Duration;

use crate::common::harness::*;
use sessiond::engine::{DuplicatePolicy, EngineConfig};
use sessiond::protocol::*;

#[test]
fn heartbeats_keep_the_connection_past_the_timeout() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    for _ in 0..10 {
        h.advance(Duration::from_secs(5));
        let rid = h.send(c, hb(&tok));
        let f = h.one(c);
        assert_eq!(f.request_id, rid);
        assert!(matches!(f.message, Message::HeartbeatAck(_)));
    }
    // 50 s > 15 s timeout, still open
    assert!(!h.closing(c));
    assert_eq!(h.engine.stats().heartbeats, 10);
}

#[test]
fn silence_closes_within_timeout_plus_one_tick() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    h.advance(Duration::from_secs(7));
    h.send(c, hb(&tok));
    h.frames(c);
    // last valid frame at t=7 s: the deadline is t=22 s
    h.advance(Duration::from_secs(15) - tick());
    assert!(h.frames(c).is_empty());
    assert!(!h.closing(c));
    h.advance(tick());
    let f = h.one(c);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    assert_eq!(f.request_id, 0);
    assert_eq!(disconnect_reason(&f), DisconnectReason::IdleTimeout);
    assert!(h.closing(c));
    // the session survives, detached
    assert_eq!(h.engine.sessions().len(), 1);
    assert_eq!(h.engine.attached_sessions(), 0);
}

#[test]
fn invalid_frames_do_not_reset_the_heartbeat_timeout() {
    let (mut h, c, _) = Harness::logged_in(EngineConfig::default());
    h.advance(Duration::from_secs(10));
    h.send(c, hb(&Token([1; 32])));
    h.frames(c);
    h.advance(Duration::from_secs(5));
    assert_eq!(disconnect_reason(&h.one(c)), DisconnectReason::IdleTimeout);
}

#[test]
fn heartbeats_keep_the_session_from_idle_expiry() {
    let cfg = EngineConfig {
        session_idle: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let (mut h, a, tok) = Harness::logged_in(cfg);
    for _ in 0..10 {
        h.advance(Duration::from_secs(5));
        h.send(a, hb(&tok));
        assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
    }
}

#[test]
fn an_attached_session_rides_on_its_connections_timer() {
    let mut h = Harness::new(EngineConfig {
        duplicate: DuplicatePolicy::Takeover,
        ..EngineConfig::default()
    });
    let base = h.engine.timers_scheduled(); // the summary line's
    let a = h.connect();
    let tok = h.login_ok(a);
    assert_eq!(h.engine.timers_scheduled(), base + 1, "one timer for both");
    // unbound, the session gets its own back (expiry while detached: the test above)
    h.send(a, Message::DisconnectRequest(DisconnectRequest));
    h.frames(a);
    h.remove(a);
    assert_eq!(h.engine.timers_scheduled(), base + 1);
    // a resume binds it to the new connection's timer again; a takeover hands it over
    let b = h.connect();
    h.send(b, verify(&tok));
    assert!(matches!(h.one(b).message, Message::SessionValid(_)));
    assert_eq!(h.engine.timers_scheduled(), base + 1);
    let c = h.connect();
    h.send(c, verify(&tok));
    assert!(matches!(h.one(c).message, Message::SessionValid(_)));
    h.frames(b);
    assert!(h.closing(b));
    assert_eq!(h.engine.timers_scheduled(), base + 1);
    assert_eq!(h.engine.attached_sessions(), 1);
}

#[test]
fn absolute_expiry_reaches_a_live_connection() {
    let cfg = EngineConfig {
        session_lifetime: Duration::from_secs(12),
        ..EngineConfig::default()
    };
    let (mut h, c, tok) = Harness::logged_in(cfg);
    h.advance(Duration::from_secs(6));
    h.send(c, hb(&tok));
    h.frames(c);
    h.advance(Duration::from_secs(6));
    let f = h.one(c);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    let Message::SessionExpired(e) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(e.reason, ExpiredReason::Absolute);
    assert!(h.closing(c));
    assert!(h.engine.sessions().is_empty());
    assert_eq!(h.engine.attached_sessions(), 0);
}

#[test]
fn idle_expiry_while_connected_is_pushed_before_the_close() {
    // the session's idle expiry shorter than the connection's heartbeat timeout
    let cfg = EngineConfig {
        session_idle: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let (mut h, a, _) = Harness::logged_in(cfg);
    h.advance(Duration::from_secs(10) - tick());
    assert!(h.frames(a).is_empty());
    h.advance(tick());
    let f = h.one(a);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    let Message::SessionExpired(e) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(e.reason, ExpiredReason::Idle);
    assert!(h.closing(a));
}
