//! §4 "Several servers (a cluster)": two engines standing for two nodes, each handed the
//! other's journal as the cluster's log would (`Engine::apply_remote`), with made-up time.

use crate::common::harness::*;
use sessiond::engine::event::Event;
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

/// Writer ids of the two nodes.
const A: i64 = 1;
const B: i64 = 2;

fn node() -> Harness {
    Harness::new(EngineConfig {
        cluster: true,
        ..EngineConfig::default()
    })
}

/// What `from` committed since `*seen`, applied by `to` as written by `writer`.
fn ship(from: &Harness, seen: &mut usize, writer: i64, to: &mut Harness) {
    let records: Vec<(i64, Event)> = from.shell.journal[*seen..]
        .iter()
        .map(|e| (writer, e.clone()))
        .collect();
    *seen = from.shell.journal.len();
    to.engine.apply_remote(&records, to.now);
    to.settle();
}

#[test]
fn a_login_on_another_node_revokes_the_connection_here_with_its_device() {
    let (mut a, mut b) = (node(), node());
    let (mut seen_a, mut seen_b) = (0, 0);
    let old = a.connect();
    let old_tok = a.login_ok(old);
    ship(&a, &mut seen_a, A, &mut b);
    // On B, alice's session is known, connected on A: a resume there is refused.
    let dup = b.connect();
    b.send(dup, verify(&old_tok));
    assert!(matches!(b.one(dup).message, Message::DuplicateSession(_)));
    // A new login on B ends it (B knows it from the log) ...
    let new = b.connect();
    let new_tok = b.login_as(new, "alice");
    ship(&b, &mut seen_b, B, &mut a);
    // ... and A, applying that, tells its connection who and closes it.
    let f = a.one(old);
    assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
    let Message::SessionRevoked(r) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(r.reason, RevokeReason::NewLogin);
    assert_eq!(
        (r.by_client.as_str(), r.by_address.as_str()),
        ("harness", PEER)
    );
    assert!(a.closing(old));
    // A wrote nothing of its own for it: the end is B's record.
    assert_eq!(a.shell.journal.len(), seen_a);
    // Both nodes: one live session, the new one.
    assert_eq!(a.engine.sessions().len(), 1);
    assert_eq!(b.engine.sessions().len(), 1);
    b.send(new, hb(&new_tok));
    assert!(matches!(b.one(new).message, Message::HeartbeatAck(_)));
}

#[test]
fn logins_at_once_on_two_nodes_leave_the_higher_session_id_on_both() {
    let (mut a, mut b) = (node(), node());
    let (mut seen_a, mut seen_b) = (0, 0);
    // Neither knows of the other's login.
    let ca = a.connect();
    a.login_ok(ca);
    let cb = b.connect();
    b.login_ok(cb);
    let sid_a = a.engine.sessions().iter().next().unwrap().id;
    let sid_b = b.engine.sessions().iter().next().unwrap().id;
    ship(&a, &mut seen_a, A, &mut b);
    ship(&b, &mut seen_b, B, &mut a);
    // The loser's node wrote its end; the other node applies it.
    ship(&a, &mut seen_a, A, &mut b);
    ship(&b, &mut seen_b, B, &mut a);
    let (winner, loser, loser_node, loser_conn) = if sid_a > sid_b {
        (sid_a, sid_b, &mut b, cb)
    } else {
        (sid_b, sid_a, &mut a, ca)
    };
    let f = loser_node.one(loser_conn);
    let Message::SessionRevoked(r) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(r.reason, RevokeReason::NewLogin);
    assert_eq!(r.session_id, loser);
    for h in [&a, &b] {
        let live: Vec<u64> = h.engine.sessions().iter().map(|s| s.id).collect();
        assert_eq!(live, [winner], "every node keeps the same session");
    }
}

#[test]
fn a_resume_on_another_node_takes_the_session_over_from_here() {
    let cfg = || EngineConfig {
        cluster: true,
        duplicate: sessiond::engine::DuplicatePolicy::Takeover,
        ..EngineConfig::default()
    };
    let (mut a, mut b) = (Harness::new(cfg()), Harness::new(cfg()));
    let (mut seen_a, mut seen_b) = (0, 0);
    let old = a.connect();
    let tok = a.login_ok(old);
    ship(&a, &mut seen_a, A, &mut b);
    let new = b.connect();
    b.send(new, verify(&tok));
    assert!(matches!(b.one(new).message, Message::SessionValid(_)));
    ship(&b, &mut seen_b, B, &mut a);
    let f = a.one(old);
    let Message::SessionRevoked(r) = f.message else {
        panic!("{f:?}")
    };
    assert_eq!(r.reason, RevokeReason::TakenOver);
    assert!(a.closing(old));
    // The session lives on, on B.
    assert_eq!(a.engine.sessions().len(), 1);
    b.send(new, hb(&tok));
    assert!(matches!(b.one(new).message, Message::HeartbeatAck(_)));
}

#[test]
fn a_detached_session_expires_on_the_sweeper_only() {
    let (mut a, mut b) = (node(), node());
    let mut seen_a = 0;
    let c = a.connect();
    a.login_ok(c);
    a.engine.set_nodes(&[A, B], true);
    b.engine.set_nodes(&[A, B], false);
    // Detached on A (the client went away), known so on B.
    a.engine.handle_peer_closed(c, a.now);
    a.settle();
    ship(&a, &mut seen_a, A, &mut b);
    let idle = EngineConfig::default().session_idle + std::time::Duration::from_secs(60);
    a.advance(idle);
    b.advance(idle);
    assert_eq!(a.engine.sessions().len(), 0, "the sweeper ends it");
    assert_eq!(
        b.engine.sessions().len(),
        1,
        "the other node leaves it to the sweeper"
    );
    ship(&a, &mut seen_a, A, &mut b);
    assert_eq!(
        b.engine.sessions().len(),
        0,
        "and applies the sweeper's end"
    );
}
