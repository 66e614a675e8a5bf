//! §5.38 ADMIN_SET_PASSWORD: an administrator sets an account's password (hashed off the
//! loop); every session of the account is revoked (`PASSWORD_RESET`), DONE waits for the
//! journal, and the reset is audited with the administrator as actor.

use crate::common::harness::*;
use sessiond::conn::ConnId;
use sessiond::engine::event::{AuditKind, EndKind, Event};
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

const NEW_PW: &str = "a brand new; password";

fn set_password(tok: &Token, user: &str, pw: &str) -> Message {
    Message::AdminSetPassword(AdminSetPassword {
        token: tok.clone(),
        username: user.into(),
        password: pw.into(),
    })
}

/// Any number of sessions per account (alice gets two).
fn multi() -> EngineConfig {
    EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    }
}

/// Logs `user` in on a new connection: the connection, its token and its session id.
fn session_of(h: &mut Harness, user: &str) -> (ConnId, Token, u64) {
    let c = h.connect();
    match h.login(c, user, ALICE_PW).message {
        Message::LoginSuccess(s) => (c, s.token, s.session.session_id),
        other => panic!("login failed: {other:?}"),
    }
}

fn done(f: &Frame) -> u32 {
    match &f.message {
        Message::Done(d) => d.affected,
        other => panic!("expected DONE, got {other:?}"),
    }
}

fn revoked(f: &Frame) -> &SessionRevoked {
    match &f.message {
        Message::SessionRevoked(r) => r,
        other => panic!("expected SESSION_REVOKED, got {other:?}"),
    }
}

#[test]
fn a_reset_revokes_every_session_and_only_the_new_password_logs_in() {
    let mut h = Harness::new(multi());
    let (a1, tok1, sid1) = session_of(&mut h, "alice");
    let (a2, tok2, sid2) = session_of(&mut h, "alice");
    h.frames(a1); // NEW_LOGIN about a2
    let (b, tok_b, bob_sid) = session_of(&mut h, "bob");
    h.shell.journal.clear();
    let rid = h.send(b, set_password(&tok_b, "alice", NEW_PW));
    let reply = h.one(b);
    assert_eq!((reply.request_id, done(&reply)), (rid, 2));
    for (c, sid) in [(a1, sid1), (a2, sid2)] {
        let f = h.one(c);
        assert_eq!(f.flags, Flags::PUSH | Flags::FATAL);
        let r = revoked(&f);
        assert_eq!((r.session_id, r.reason), (sid, RevokeReason::PasswordReset));
        // by the administrator's connection
        assert_eq!(
            (r.by_client.as_str(), r.by_address.as_str()),
            ("harness", PEER)
        );
        assert!(h.closing(c));
    }
    // the administrator's own session goes on
    h.send(b, hb(&tok_b));
    assert!(matches!(h.one(b).message, Message::HeartbeatAck(_)));
    // journaled: the new record, the audit record, each end (and its `revoked` record)
    let journal = std::mem::take(&mut h.shell.journal);
    let updated = journal
        .iter()
        .find_map(|e| match e {
            Event::UserUpdated(u) => Some(u.clone()),
            _ => None,
        })
        .expect("the new record journaled");
    assert_eq!(updated.username, "alice");
    assert!(updated.password.verify(NEW_PW.as_bytes()));
    let ended: Vec<u64> = journal
        .iter()
        .filter_map(|e| match e {
            Event::SessionEnded { id, kind, .. } => {
                assert_eq!(*kind, EndKind::Revoked);
                Some(*id)
            }
            _ => None,
        })
        .collect();
    assert_eq!(ended, [sid1, sid2]);
    let reset = journal
        .iter()
        .find_map(|e| match e {
            Event::Audit(a) if a.kind == AuditKind::PasswordReset => Some(a.clone()),
            _ => None,
        })
        .expect("audited");
    assert_eq!((reset.user_id, reset.session_id, reset.reason), (1, 0, 0));
    let by = reset.actor.expect("the administrator is the actor");
    assert_eq!((by.user_id, by.session_id), (2, bob_sid));
    // the old tokens are dead, the old password too; the new one works
    let c = h.connect();
    for tok in [&tok1, &tok2] {
        h.send(c, verify(tok));
        assert_eq!(invalid_reason(&h.one(c)), InvalidReason::Revoked);
    }
    let (why, _) = failure_reason(&h.login(c, "alice", ALICE_PW));
    assert_eq!(why, LoginFailureReason::InvalidCredentials);
    assert!(matches!(
        h.login(c, "alice", NEW_PW).message,
        Message::LoginSuccess(_)
    ));
}

#[test]
fn done_and_the_revocations_wait_for_the_journal() {
    let mut h = Harness::new(multi());
    let (a, _, _) = session_of(&mut h, "alice");
    let (b, tok_b, _) = session_of(&mut h, "bob");
    h.shell.auto_durable = false;
    h.send(b, set_password(&tok_b, "alice", NEW_PW));
    assert!(h.frames(b).is_empty(), "DONE before the change is durable");
    assert!(
        h.frames(a).is_empty(),
        "SESSION_REVOKED before it is durable"
    );
    h.make_durable();
    assert_eq!(done(&h.one(b)), 1);
    assert_eq!(revoked(&h.one(a)).reason, RevokeReason::PasswordReset);
}

#[test]
fn frames_behind_the_request_wait_for_its_hash() {
    let mut h = Harness::new(multi());
    let (b, tok_b, _) = session_of(&mut h, "bob");
    h.shell.hash_inline = false;
    let mut bytes = Frame::reply(7, set_password(&tok_b, "alice", NEW_PW)).to_vec();
    bytes.extend(Frame::reply(8, hb(&tok_b)).to_vec());
    h.feed(b, &bytes);
    assert!(h.frames(b).is_empty(), "nothing answered while hashing");
    assert_eq!(h.shell.held_jobs.len(), 1);
    h.release_hashes();
    let f = h.frames(b);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!((f[0].request_id, done(&f[0])), (7, 0));
    assert_eq!(f[1].request_id, 8);
    assert!(matches!(f[1].message, Message::HeartbeatAck(_)));
}

#[test]
fn a_user_is_forbidden_whether_or_not_the_account_exists() {
    let mut h = Harness::new(multi());
    let (a, tok_a, _) = session_of(&mut h, "alice");
    for name in ["bob", "alice", "nobody"] {
        h.send(a, set_password(&tok_a, name, NEW_PW));
        assert_eq!(error_code(&h.one(a)), ErrorCode::Forbidden, "{name}");
    }
    assert_eq!(h.shell.jobs, 1, "no hash but alice's login");
    // bob's password is unchanged
    session_of(&mut h, "bob");
}

#[test]
fn an_unknown_account_is_not_found_and_a_short_password_an_invalid_argument() {
    let mut h = Harness::new(multi());
    let (b, tok_b, _) = session_of(&mut h, "bob");
    let (a, _, _) = session_of(&mut h, "alice");
    h.shell.journal.clear();
    let jobs = h.shell.jobs;
    h.send(b, set_password(&tok_b, "nobody", NEW_PW));
    assert_eq!(error_code(&h.one(b)), ErrorCode::NotFound);
    h.send(b, set_password(&tok_b, "alice", "7 bytes"));
    let f = h.one(b);
    assert_eq!(error_code(&f), ErrorCode::InvalidArgument);
    let Message::GeneralFailure(g) = &f.message else {
        unreachable!()
    };
    assert!(g.message.contains("at least 8 bytes"), "{}", g.message);
    assert!(!g.message.contains("7 bytes"), "the password is not echoed");
    // nothing hashed, changed or audited; alice's session lives on
    assert_eq!(h.shell.jobs, jobs);
    assert!(h.shell.journal.is_empty(), "{:?}", h.shell.journal);
    assert!(h.frames(a).is_empty());
    assert!(!h.closing(a));
    // the empty username is not even a valid frame
    let mut bytes = Frame::reply(9, set_password(&tok_b, "x", NEW_PW)).to_vec();
    bytes.splice(46..49, [0, 0]); // "x" (00 01 78) -> "" (00 00)
    let len = (bytes.len() - HEADER_LEN) as u32;
    bytes[10..14].copy_from_slice(&len.to_be_bytes());
    h.feed(b, &bytes);
    assert_eq!(error_code(&h.one(b)), ErrorCode::MalformedFrame);
}

#[test]
fn the_reset_is_in_the_audit_trail_with_the_administrator_as_actor() {
    let mut h = Harness::new(multi());
    let (_, _, alice_sid) = session_of(&mut h, "alice");
    let (b, tok_b, bob_sid) = session_of(&mut h, "bob");
    h.send(b, set_password(&tok_b, "alice", NEW_PW));
    assert_eq!(done(&h.one(b)), 1);
    h.send(
        b,
        Message::AuditSearch(AuditSearch {
            query: AuditQuery {
                token: tok_b.clone(),
                username: "alice".into(),
                kind: 0,
                from: 0,
                to: 0,
                cursor: 0,
                limit: 0,
            },
            newest_first: true,
        }),
    );
    let Message::AuditRecords(r) = h.one(b).message else {
        panic!("not AUDIT_RECORDS")
    };
    // newest first: the revocation, then the reset
    assert_eq!(r.records[0].kind, AuditKind::Revoked as u8);
    assert_eq!(r.records[0].session_id, alice_sid);
    assert_eq!(r.records[0].reason, RevokeReason::PasswordReset.to_u16());
    assert_eq!(r.records[0].actor.username, "bob");
    let reset = &r.records[1];
    assert_eq!(reset.kind, AuditKind::PasswordReset as u8);
    assert_eq!((reset.username.as_str(), reset.reason), ("alice", 0));
    assert_eq!(reset.address, PEER);
    assert_eq!(
        (reset.actor.username.as_str(), reset.actor.session_id),
        ("bob", bob_sid)
    );
    assert_eq!(reset.note, "by bob");
    assert!(!format!("{r:?}").contains(NEW_PW));
}

#[test]
fn an_administrator_resetting_their_own_account_gets_done_then_loses_the_session() {
    let mut h = Harness::new(multi());
    let (b, tok_b, bob_sid) = session_of(&mut h, "bob");
    let rid = h.send(b, set_password(&tok_b, "bob", NEW_PW));
    let f = h.frames(b);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!((f[0].request_id, done(&f[0])), (rid, 1));
    let r = revoked(&f[1]);
    assert_eq!(
        (r.session_id, r.reason),
        (bob_sid, RevokeReason::PasswordReset)
    );
    assert!(h.closing(b));
    let c = h.connect();
    assert!(matches!(
        h.login(c, "bob", NEW_PW).message,
        Message::LoginSuccess(_)
    ));
}

#[test]
fn a_reset_lifts_the_accounts_failure_delay() {
    let mut h = Harness::new(multi());
    let (b, tok_b, _) = session_of(&mut h, "bob");
    let c = h.connect();
    for _ in 0..6 {
        h.login(c, "alice", "wrong");
    }
    let (why, _) = failure_reason(&h.login(c, "alice", ALICE_PW));
    assert_eq!(why, LoginFailureReason::Throttled);
    h.shell.journal.clear();
    h.send(b, set_password(&tok_b, "alice", NEW_PW));
    assert_eq!(done(&h.one(b)), 0);
    assert!(h.shell.journal.iter().any(|e| matches!(
        e,
        Event::FailureStreak {
            user_id: 1,
            failures: 0,
            ..
        }
    )));
    assert!(matches!(
        h.login(c, "alice", NEW_PW).message,
        Message::LoginSuccess(_)
    ));
}

#[test]
fn a_full_hash_queue_is_throttled_and_changes_nothing() {
    let mut h = Harness::new(multi());
    let (a, _, _) = session_of(&mut h, "alice");
    let (b, tok_b, _) = session_of(&mut h, "bob");
    h.shell.hash_inline = false;
    h.shell.journal.clear();
    h.send(b, set_password(&tok_b, "alice", NEW_PW));
    h.refuse_held_hashes();
    let f = h.one(b);
    assert_eq!(error_code(&f), ErrorCode::Throttled);
    assert!(
        h.shell.journal.is_empty(),
        "not audited: {:?}",
        h.shell.journal
    );
    assert!(h.frames(a).is_empty());
    // the connection takes requests again; alice's password is the old one
    h.shell.hash_inline = true;
    h.send(b, hb(&tok_b));
    assert!(matches!(h.one(b).message, Message::HeartbeatAck(_)));
    session_of(&mut h, "alice");
}

#[test]
fn a_caller_demoted_while_the_hash_ran_is_forbidden() {
    let mut h = Harness::new(multi());
    let (b1, tok1, _) = session_of(&mut h, "bob");
    let (b2, tok2, _) = session_of(&mut h, "bob");
    h.frames(b1);
    h.shell.hash_inline = false;
    h.send(b1, set_password(&tok1, "alice", NEW_PW));
    // bob, from his other session, gives up the admin role before the hash is back
    h.send(
        b2,
        Message::AdminSetRole(AdminSetRole {
            token: tok2,
            username: "bob".into(),
            role: Role::User,
        }),
    );
    assert_eq!(done(&h.one(b2)), 1);
    h.release_hashes();
    assert_eq!(error_code(&h.one(b1)), ErrorCode::Forbidden);
    session_of(&mut h, "alice"); // the old password still works
}

#[test]
fn storage_unavailable_refuses_it_before_anything_else() {
    let mut h = Harness::new(multi());
    let (b, tok_b, _) = session_of(&mut h, "bob");
    h.engine.handle_storage(false);
    h.send(b, set_password(&tok_b, "alice", NEW_PW));
    assert_eq!(error_code(&h.one(b)), ErrorCode::StorageUnavailable);
    h.engine.handle_storage(true);
    session_of(&mut h, "alice");
}

/// A login whose hash ran against the old password, and finished after the reset took
/// effect, does not get in with the old password.
#[test]
fn a_login_checked_against_the_old_password_fails_once_it_is_reset() {
    let mut h = Harness::new(multi());
    let (b, tok_b, _) = session_of(&mut h, "bob");
    h.shell.hash_inline = false;
    let a = h.connect();
    let login_rid = h.send(a, login_msg("alice", ALICE_PW));
    let reset_rid = h.send(b, set_password(&tok_b, "alice", NEW_PW));
    assert_eq!(h.shell.held_jobs.len(), 2);
    // the reset's hash finishes first, then the login's
    h.shell.held_jobs.reverse();
    h.release_hashes();
    let f = h.one(b);
    assert_eq!((f.request_id, done(&f)), (reset_rid, 0));
    let f = h.one(a);
    assert_eq!(f.request_id, login_rid);
    assert_eq!(failure_reason(&f).0, LoginFailureReason::InvalidCredentials);
    // the new password works
    let c = h.connect();
    assert!(matches!(
        h.login(c, "alice", NEW_PW).message,
        Message::LoginSuccess(_)
    ));
}
