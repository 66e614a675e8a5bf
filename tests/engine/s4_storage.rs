//! §4 "When storage is unavailable": a full disk or a disk far behind refuses what would
//! change durable state, serves the rest, and comes back by itself.

use crate::common::harness::*;
use crate::common::spec::examples;
use sessiond::engine::event::{AuditKind, Event};
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

#[test]
fn a_full_disk_refuses_changes_with_the_spec_bytes_and_heartbeats_go_on() {
    let (mut h, a, tok) = Harness::logged_in(EngineConfig::default());
    h.engine.handle_storage(false);
    assert!(!h.engine.storage_available());
    h.shell.journal.clear();
    // a login on a new connection: LOGIN_FAILURE STORAGE_UNAVAILABLE, byte for byte
    let b = h.connect();
    h.feed(b, &Frame::reply(1, login_msg("bob", ALICE_PW)).to_vec());
    assert_eq!(
        h.shell.take_written(b),
        examples()["login_failure_storage"],
        "protocol.md's example"
    );
    assert!(!h.closing(b), "not fatal: the connection may try again");
    // a logout (request id 2): GENERAL_FAILURE STORAGE_UNAVAILABLE, the session lives on
    h.feed(
        a,
        &Frame::reply(
            2,
            Message::LogoutRequest(LogoutRequest { token: tok.clone() }),
        )
        .to_vec(),
    );
    assert_eq!(
        h.shell.take_written(a),
        examples()["general_failure_storage"]
    );
    assert_eq!(h.engine.sessions().len(), 1);
    // what needs no write is served: heartbeats, listings, stats
    h.send(a, hb(&tok));
    assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
    h.send(
        a,
        Message::ListSessions(ListSessions {
            token: tok.clone(),
            offset: 0,
            limit: 0,
        }),
    );
    assert!(matches!(h.one(a).message, Message::SessionList(_)));
    // refusals change nothing and are not audited (the trail is on that disk)
    assert!(!h
        .shell
        .journal
        .iter()
        .any(|e| matches!(e, Event::Audit(x) if x.kind == AuditKind::LoginFailed)));
    assert_eq!(h.engine.stats().storage_refusals, 2);
    // space returns: everything is taken again, without a restart
    h.engine.handle_storage(true);
    h.login_as(b, "bob");
}

#[test]
fn a_resume_and_an_admin_change_are_refused_but_a_request_not_allowed_keeps_its_error() {
    let (mut h, [(_, tok_a), (b, tok_b)]) = Harness::logged_in_pair(EngineConfig::default());
    h.engine.handle_storage(false);
    let c = h.connect();
    h.send(c, verify(&tok_a));
    assert_eq!(error_code(&h.one(c)), ErrorCode::StorageUnavailable);
    h.send(
        b,
        Message::AdminSuspendUser(UserTarget {
            token: tok_b.clone(),
            username: "alice".into(),
        }),
    );
    assert_eq!(error_code(&h.one(b)), ErrorCode::StorageUnavailable);
    assert!(!h.engine.users().by_name("alice").unwrap().suspended);
    // a heartbeat before login is still AUTH_REQUIRED, fatal, as ever
    let d = h.connect();
    h.send(d, hb(&tok_a));
    assert_eq!(error_code(&h.one(d)), ErrorCode::AuthRequired);
    // a second login while active is still UNEXPECTED_FRAME
    h.send(b, login_msg("bob", ALICE_PW));
    assert_eq!(error_code(&h.one(b)), ErrorCode::UnexpectedFrame);
}

#[test]
fn a_slow_disk_bounds_what_waits_for_it_and_takes_requests_again_at_half() {
    let mut h = Harness::new(EngineConfig {
        max_undurable_events: 8,
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    // the disk does not keep up: nothing becomes durable
    h.shell.auto_durable = false;
    let first = h.connect();
    h.send(first, login_msg("alice", ALICE_PW));
    let per_login = h.engine.undurable_events();
    assert!(per_login > 0 && per_login <= 8, "{per_login}");
    assert!(h.engine.storage_available());
    // logins are taken until the events waiting pass the bound, then refused
    let mut refused = None;
    for i in 0..8 {
        let c = h.connect();
        h.send(c, login_msg("alice", ALICE_PW));
        if !h.engine.storage_available() && refused.is_none() {
            refused = Some(i);
            // the one that passed the bound was taken (its reply waits for the disk)
            assert!(h.frames(c).is_empty());
            continue;
        }
        if refused.is_some() {
            let f = h.one(c);
            assert_eq!(failure_reason(&f).0, LoginFailureReason::StorageUnavailable);
        }
    }
    assert!(refused.is_some(), "the bound was never reached");
    let backlog = h.engine.undurable_events();
    assert!(backlog <= 8 + per_login, "bounded: {backlog}");
    // the disk catches up: the held replies go out and requests are taken again
    h.make_durable();
    assert_eq!(h.engine.undurable_events(), 0);
    assert!(h.engine.storage_available());
    let f = h.frames(first);
    assert!(matches!(f[0].message, Message::LoginSuccess(_)), "{f:?}");
    h.shell.auto_durable = true;
    let c = h.connect();
    h.login_ok(c);
}
