//! §4 "Sessions are durable": which replies wait for the journal, what is journaled and audited.

use std::time::Duration;

use crate::common::harness::*;
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

#[test]
fn registration_and_sessions_are_recorded_as_events() {
    use sessiond::engine::event::{EndKind, Event};
    let mut h = Harness::new(EngineConfig::default());
    h.shell.journal.clear();
    let c = h.connect();
    h.send(c, register("gus", "long enough", "g@x.y"));
    assert!(matches!(h.one(c).message, Message::RegisterSuccess(_)));
    let tok = match h.login(c, "gus", "long enough").message {
        Message::LoginSuccess(s) => s.token,
        other => panic!("{other:?}"),
    };
    h.advance(Duration::from_secs(3));
    h.send(c, hb(&tok));
    h.frames(c);
    h.send(c, Message::LogoutRequest(LogoutRequest { token: tok }));
    h.frames(c);
    let ev = std::mem::take(&mut h.shell.journal);
    let kinds: Vec<&str> = ev
        .iter()
        .map(|e| match e {
            Event::Audit(a) => a.kind.name(),
            Event::UserCreated(u) => {
                assert_eq!(u.username, "gus");
                "user"
            }
            Event::LastLogin { .. } => "last_login",
            Event::SessionCreated(_) => "created",
            Event::SessionActivity { .. } => "activity",
            Event::SessionEnded { kind, .. } => {
                assert_eq!(*kind, EndKind::LoggedOut);
                "ended"
            }
            Event::UserUpdated(_) => "user_updated",
            Event::FailureStreak { .. } => "failure_streak",
            Event::DailyLogins { .. } => "daily_logins",
            Event::UserDeleted { .. } => "user_deleted",
            Event::SessionAttr { .. } => "session_attr",
            Event::UserProfile { .. } => "user_profile",
            Event::UserAppRole { .. } => "user_app_role",
            Event::SnapshotBase { .. } | Event::Tombstone { .. } | Event::NextUserId { .. } => {
                "snapshot only"
            }
        })
        .collect();
    // heartbeats are not journaled one by one; a session that ends is not "detached" first
    // (protocol.md 5.27: detached means the session lives on)
    assert_eq!(
        kinds,
        [
            "user",
            "registered",
            "created",
            "last_login",
            "session_created",
            "ended",
            "logged_out"
        ]
    );
}

#[test]
fn failures_and_revocations_reach_the_audit_trail() {
    use sessiond::engine::event::{AuditKind, Event};
    let mut h = Harness::new(EngineConfig::default());
    h.shell.journal.clear();
    let a = h.connect();
    h.login(a, "alice", "wrong");
    h.login(a, "nobody", "wrong");
    h.login_ok(a);
    let b = h.connect();
    h.login_ok(b); // revokes a's session
    let audits: Vec<_> = std::mem::take(&mut h.shell.journal)
        .into_iter()
        .filter_map(|e| match e {
            Event::Audit(a) => Some(a),
            _ => None,
        })
        .collect();
    let failed: Vec<_> = audits
        .iter()
        .filter(|a| a.kind == AuditKind::LoginFailed)
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!((failed[0].user_id, failed[1].user_id), (1, 0));
    assert_eq!(failed[1].detail, "nobody: invalid credentials");
    assert_eq!(failed[0].address, "127.0.0.1:40000");
    let revoked = audits
        .iter()
        .find(|a| a.kind == AuditKind::Revoked)
        .expect("revocation audited");
    assert_eq!(revoked.user_id, 1);
    assert!(
        revoked.detail.starts_with("NEW_LOGIN by 127.0.0.1:40000"),
        "{}",
        revoked.detail
    );
    assert!(audits.iter().all(|a| a.at_ms >= 1_767_225_600_000));
}

#[test]
fn login_success_waits_for_its_batch_while_heartbeats_go_on() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    let a = h.connect();
    let tok_a = h.login_ok(a);
    h.shell.auto_durable = false;
    let b = h.connect();
    let rid = h.send(b, login_msg("bob", ALICE_PW));
    assert!(h.engine.is_held(b));
    assert!(
        h.frames(b).is_empty(),
        "LOGIN_SUCCESS before the journal sync"
    );
    // a's heartbeats record nothing and are answered at once, batch pending or not
    for _ in 0..3 {
        h.send(a, hb(&tok_a));
        assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
    }
    assert!(!h.engine.is_held(a));
    assert_eq!(h.shell.pending.len(), 1);
    h.make_durable();
    let f = h.one(b);
    assert_eq!(f.request_id, rid);
    assert!(matches!(f.message, Message::LoginSuccess(_)));
}

#[test]
fn a_failed_login_is_answered_only_once_audited() {
    let mut h = Harness::new(EngineConfig::default());
    h.shell.auto_durable = false;
    let a = h.connect();
    h.send(a, login_msg("alice", "wrong password"));
    assert!(h.frames(a).is_empty());
    h.make_durable();
    assert!(matches!(h.one(a).message, Message::LoginFailure(_)));
}

#[test]
fn frames_behind_a_held_reply_keep_their_order() {
    let (mut h, a, tok) = Harness::logged_in(EngineConfig::default());
    h.shell.auto_durable = false;
    let mut bytes = Frame::reply(7, Message::LogoutRequest(LogoutRequest { token: tok })).to_vec();
    bytes.extend(Frame::reply(8, Message::DisconnectRequest(DisconnectRequest)).to_vec());
    h.feed(a, &bytes);
    assert!(h.frames(a).is_empty());
    h.make_durable();
    let f = h.frames(a);
    let rids: Vec<u32> = f.iter().map(|f| f.request_id).collect();
    assert_eq!(rids, [7, 8]);
    assert!(matches!(f[0].message, Message::LogoutSuccess(_)));
    assert!(matches!(f[1].message, Message::DisconnectAck(_)));
    assert!(h.closing(a));
}

#[test]
fn a_revocation_push_waits_for_the_batch_that_records_it() {
    let (mut h, a, _) = Harness::logged_in(EngineConfig::default());
    h.shell.auto_durable = false;
    let b = h.connect();
    h.send(b, login_msg("alice", ALICE_PW));
    assert!(h.frames(a).is_empty() && h.frames(b).is_empty());
    assert_eq!(h.engine.held_count(), 2);
    h.make_durable();
    assert!(matches!(h.one(a).message, Message::SessionRevoked(_)));
    assert!(matches!(h.one(b).message, Message::LoginSuccess(_)));
    assert_eq!(h.engine.held_count(), 0);
}

#[test]
fn a_reply_waits_for_its_own_batch_not_a_later_one() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    h.shell.auto_durable = false;
    let a = h.connect();
    h.send(a, login_msg("alice", ALICE_PW));
    let b = h.connect();
    h.send(b, login_msg("bob", ALICE_PW));
    assert_eq!(h.shell.pending.len(), 2, "one batch per turn");
    // only the first batch is durable: a's reply goes, b's waits
    let first = h.shell.pending.remove(0);
    h.durable(first);
    assert!(matches!(h.one(a).message, Message::LoginSuccess(_)));
    assert!(h.frames(b).is_empty());
    h.make_durable();
    assert!(matches!(h.one(b).message, Message::LoginSuccess(_)));
}

#[test]
fn last_activity_is_journaled_every_few_minutes_without_holding_heartbeats() {
    use sessiond::engine::event::Event;
    let mut h = Harness::new(EngineConfig {
        activity_save_interval: Duration::from_secs(60),
        ..EngineConfig::default()
    });
    let c = h.connect();
    let tok = h.login_ok(c);
    h.shell.journal.clear();
    h.shell.auto_durable = false;
    let mut saved = Vec::new();
    // 10 minutes of heartbeats every 5 s: one activity record per minute, none held
    for _ in 0..120 {
        h.advance(Duration::from_secs(5));
        h.send(c, hb(&tok));
        assert!(matches!(h.one(c).message, Message::HeartbeatAck(_)));
        saved.extend(h.shell.journal.drain(..).filter_map(|e| match e {
            Event::SessionActivity { at_ms, .. } => Some(at_ms),
            _ => None,
        }));
    }
    assert_eq!(saved.len(), 10, "{saved:?}");
    assert!(saved.windows(2).all(|w| w[1] - w[0] == 60_000), "{saved:?}");
    assert_eq!(h.engine.held_count(), 0);
}
