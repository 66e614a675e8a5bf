//! §4 "Sessions per account", §5.18 SESSION_REVOKED and §5.20 NEW_LOGIN: a new login and the sessions already there.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::harness::*;
use sessiond::engine::{EngineConfig, OnLimit};
use sessiond::protocol::*;

#[test]
fn two_device_timeline_new_login_revokes_the_old_one() {
    let (mut h, a, tok_a) = Harness::logged_in(EngineConfig::default());
    h.advance(Duration::from_secs(3));
    h.send(a, hb(&tok_a));
    h.frames(a);
    // device B logs in with the same account
    let b = h.connect();
    let rid = h.send(b, login_msg("alice", ALICE_PW));
    let fb = h.one(b);
    assert_eq!(fb.request_id, rid);
    let Message::LoginSuccess(sb) = fb.message else {
        panic!("{fb:?}")
    };
    // A is told at once, with B's details, and closed
    let fa = h.one(a);
    assert_eq!(fa.flags, Flags::PUSH | Flags::FATAL);
    let Message::SessionRevoked(r) = fa.message else {
        panic!("{fa:?}")
    };
    assert_eq!(r.reason, RevokeReason::NewLogin);
    assert_eq!(
        (r.by_client.as_str(), r.by_platform.as_str()),
        ("harness", "test")
    );
    assert_eq!(r.by_address, "127.0.0.1:40000");
    assert_eq!(r.at, 1_767_225_603_000);
    assert!(h.closing(a));
    // A's token is dead: resuming it says so; B keeps working
    let a2 = h.connect();
    h.send(a2, verify(&tok_a));
    assert_eq!(invalid_reason(&h.one(a2)), InvalidReason::Revoked);
    h.send(b, hb(&sb.token));
    assert!(matches!(h.one(b).message, Message::HeartbeatAck(_)));
    assert_eq!(h.engine.sessions().len(), 1);
    assert_eq!(h.engine.stats().revocations, 1);
}

#[test]
fn reject_new_refuses_a_second_session() {
    let mut h = Harness::new(EngineConfig {
        on_limit: OnLimit::RejectNew,
        ..EngineConfig::default()
    });
    let a = h.connect();
    let tok = h.login_ok(a);
    let b = h.connect();
    let Message::LoginFailure(lf) = h.login(b, "alice", ALICE_PW).message else {
        panic!()
    };
    assert_eq!(lf.reason, LoginFailureReason::SessionLimit);
    h.send(a, hb(&tok));
    assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
    // with a limit of two, two live sessions are fine and the third is refused
    let mut h = Harness::new(EngineConfig {
        on_limit: OnLimit::RejectNew,
        max_sessions_per_user: 2,
        ..EngineConfig::default()
    });
    let (x, y, z) = (h.connect(), h.connect(), h.connect());
    h.login_ok(x);
    h.login_ok(y);
    assert!(matches!(
        h.login(z, "alice", ALICE_PW).message,
        Message::LoginFailure(_)
    ));
}

#[test]
fn new_login_notices_go_to_at_most_32_connections() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    let mut conns = Vec::new();
    for i in 0..40u8 {
        let peer: SocketAddr = SocketAddr::from(([10, 0, 1, i], 4000));
        let c = h.connect_from(peer);
        h.login_ok(c);
        conns.push(c);
    }
    for &c in &conns {
        h.frames(c); // earlier notices
    }
    let c = h.connect();
    h.login_ok(c);
    let told: Vec<usize> = conns
        .iter()
        .map(|&c| {
            h.frames(c)
                .iter()
                .filter(|f| matches!(f.message, Message::NewLogin(_)))
                .count()
        })
        .collect();
    assert_eq!(told.iter().sum::<usize>(), 32);
    // the newest sessions are the ones told
    assert!(told[..8].iter().all(|&n| n == 0) && told[8..].iter().all(|&n| n == 1));
}
