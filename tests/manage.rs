//! Issue 5 over real sockets: a user's own sessions per device, the access rules, the
//! administrators' operations, suspension of a user with live connections, and audit
//! queries returning exactly the events of a scenario.

mod common;

use std::time::Duration;

use common::{TestServer, ALICE_PW, BOB_PW};
use sessiond::client::{
    is_server_error, AuditRequest, Client, ClientError, LoginOutcome, ResumeOutcome,
};
use sessiond::engine::event::AuditKind;
use sessiond::protocol::{
    ErrorCode, InvalidReason, LoginFailureReason, LogoutScope, Message, RevokeReason, Role,
    SessionList,
};

fn multi() -> TestServer {
    TestServer::start_with(|c| c.engine.max_sessions_per_user = 0)
}

/// The next push within a few seconds; SESSION_REVOKED comes back as its error.
fn next_push(c: &mut Client) -> Result<Message, ClientError> {
    match c.poll_push(Duration::from_secs(5))? {
        Some(f) => Ok(f.message),
        None => panic!("no push within 5 s"),
    }
}

fn revoked_reason(e: ClientError) -> RevokeReason {
    match e {
        ClientError::Revoked(r) => r.reason,
        other => panic!("expected SESSION_REVOKED, got {other:?}"),
    }
}

/// Waits for the SESSION_REVOKED that ends `c`'s session (NEW_LOGIN pushes may come
/// first) and returns its reason.
fn revocation(c: &mut Client) -> RevokeReason {
    for _ in 0..16 {
        match c.poll_push(Duration::from_secs(5)) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no revocation within 5 s"),
            Err(e) => return revoked_reason(e),
        }
    }
    panic!("no revocation after 16 pushes")
}

fn ids(l: &SessionList) -> Vec<u64> {
    l.sessions.iter().map(|e| e.session_id).collect()
}

#[test]
fn a_user_lists_and_revokes_own_sessions_per_device() {
    let server = multi();
    let (mut phone, ps) = server.login_as("alice", ALICE_PW, "phone");
    let (mut laptop, ls) = server.login_as("alice", ALICE_PW, "laptop");
    // the phone hears of the new login at once, with the laptop's device and address
    match next_push(&mut phone).unwrap() {
        Message::NewLogin(n) => {
            assert_eq!(n.session_id, ls.session.session_id);
            assert_eq!(
                (n.client.as_str(), n.platform.as_str()),
                ("laptop", "linux")
            );
            assert!(n.address.starts_with("127.0.0.1:"), "{}", n.address);
        }
        other => panic!("{other:?}"),
    }
    let list = laptop.list_sessions(0, 0).unwrap();
    assert_eq!(list.total, 2);
    assert_eq!(ids(&list), [ps.session.session_id, ls.session.session_id]);
    let (p, l) = (&list.sessions[0], &list.sessions[1]);
    assert_eq!((p.client.as_str(), l.client.as_str()), ("phone", "laptop"));
    assert!(!p.current && l.current);
    assert!(p.connected && l.connected);
    assert_eq!(p.username, "alice");
    assert!(p.created <= l.created && l.last_active >= l.created && p.expires > p.created);
    // paging
    let page = laptop.list_sessions(1, 1).unwrap();
    assert_eq!((page.total, ids(&page)), (2, vec![ls.session.session_id]));

    assert_eq!(laptop.revoke_session(ps.session.session_id).unwrap(), 1);
    let e = phone.heartbeat().unwrap_err();
    assert_eq!(revoked_reason(e), RevokeReason::ByUser);
    let list = laptop.list_sessions(0, 0).unwrap();
    assert_eq!(ids(&list), [ls.session.session_id]);
    // the phone's token is dead
    let mut again = server.client();
    match again.resume(&ps.token, "phone", "linux").unwrap() {
        ResumeOutcome::Invalid(i) => assert_eq!(i.reason, InvalidReason::Revoked),
        other => panic!("{other:?}"),
    }
}

#[test]
fn users_cannot_touch_other_users_sessions_or_admin_operations() {
    let server = multi();
    let (mut alice, _) = server.alice();
    let (_bob, bs) = server.bob();
    // someone else's session and a made-up id get the same answer
    for sid in [bs.session.session_id, 0x1234_5678] {
        let e = alice.revoke_session(sid).unwrap_err();
        assert!(is_server_error(&e, ErrorCode::Forbidden), "{e:?}");
    }
    let own = alice.list_sessions(0, 0).unwrap();
    assert!(own.sessions.iter().all(|s| s.username == "alice"));
    assert_eq!(own.total, 1);
    let forbidden = |r: Result<(), ClientError>| {
        let e = r.unwrap_err();
        assert!(is_server_error(&e, ErrorCode::Forbidden), "{e:?}");
    };
    forbidden(alice.admin_list_sessions("", 0, 0).map(drop));
    forbidden(alice.admin_revoke_session(bs.session.session_id).map(drop));
    forbidden(alice.admin_logout_user("bob").map(drop));
    forbidden(alice.admin_suspend_user("bob").map(drop));
    forbidden(alice.admin_unsuspend_user("alice").map(drop));
    forbidden(alice.admin_set_role("alice", Role::Admin).map(drop));
    forbidden(alice.admin_stats().map(drop));
    let q = AuditRequest {
        username: "bob".into(),
        ..AuditRequest::default()
    };
    forbidden(alice.audit_query(&q).map(drop));
    // none of that broke the connection or touched bob
    alice.heartbeat().unwrap();
    let mut bob2 = server.client();
    assert!(matches!(
        bob2.resume(&bs.token, "x", "y").unwrap(),
        ResumeOutcome::Duplicate(_)
    ));
}

#[test]
fn logout_all_others_then_all() {
    let server = multi();
    let (mut a, _) = server.login_as("alice", ALICE_PW, "a");
    let (mut b, _) = server.login_as("alice", ALICE_PW, "b");
    let (mut c, _) = server.login_as("alice", ALICE_PW, "c");
    assert_eq!(c.logout_all(LogoutScope::Others).unwrap(), 2);
    for x in [&mut a, &mut b] {
        // NEW_LOGIN pushes may come first; the revocation follows
        let reason = revocation(x);
        assert_eq!(reason, RevokeReason::ByUser);
    }
    assert_eq!(c.list_sessions(0, 0).unwrap().total, 1);
    let (_d, _) = server.login_as("alice", ALICE_PW, "d");
    assert_eq!(c.logout_all(LogoutScope::All).unwrap(), 2);
    // this connection is logged out, not closed: it can log in again
    assert!(c.token().is_none());
    assert!(matches!(
        c.login("alice", ALICE_PW, "c", "linux").unwrap(),
        LoginOutcome::Success(_)
    ));
}

#[test]
fn change_password_revokes_the_other_sessions() {
    let server = multi();
    let (mut a, _) = server.login_as("alice", ALICE_PW, "a");
    let (mut b, _) = server.login_as("alice", ALICE_PW, "b");
    let e = b
        .change_password("wrong", "a new long password")
        .unwrap_err();
    assert!(is_server_error(&e, ErrorCode::WrongPassword), "{e:?}");
    let e = b.change_password(ALICE_PW, "short").unwrap_err();
    assert!(is_server_error(&e, ErrorCode::InvalidArgument), "{e:?}");
    assert_eq!(
        b.change_password(ALICE_PW, "a new long password").unwrap(),
        1
    );
    let reason = revocation(&mut a);
    assert_eq!(reason, RevokeReason::PasswordChanged);
    b.heartbeat().expect("the changing session stays");
    let mut c = server.client();
    match c.login("alice", ALICE_PW, "c", "linux").unwrap() {
        LoginOutcome::Failure(f) => assert_eq!(f.reason, LoginFailureReason::InvalidCredentials),
        other => panic!("old password still works: {other:?}"),
    }
    assert!(matches!(
        c.login("alice", "a new long password", "c", "linux")
            .unwrap(),
        LoginOutcome::Success(_)
    ));
}

#[test]
fn suspension_ends_live_sessions_and_blocks_login_until_lifted() {
    let server = multi();
    let (mut a1, _) = server.login_as("alice", ALICE_PW, "a1");
    let (mut a2, _) = server.login_as("alice", ALICE_PW, "a2");
    let (mut admin, _) = server.bob();
    assert_eq!(admin.admin_suspend_user("alice").unwrap(), 2);
    for a in [&mut a1, &mut a2] {
        let reason = revocation(a);
        assert_eq!(reason, RevokeReason::AccountSuspended);
    }
    let mut c = server.client();
    match c.login("alice", ALICE_PW, "again", "linux").unwrap() {
        LoginOutcome::Failure(f) => assert_eq!(f.reason, LoginFailureReason::Suspended),
        other => panic!("{other:?}"),
    }
    assert_eq!(admin.admin_unsuspend_user("alice").unwrap(), 0);
    assert!(matches!(
        c.login("alice", ALICE_PW, "again", "linux").unwrap(),
        LoginOutcome::Success(_)
    ));
    let e = admin.admin_suspend_user("nobody").unwrap_err();
    assert!(is_server_error(&e, ErrorCode::NotFound), "{e:?}");
}

#[test]
fn admins_list_revoke_force_logout_set_roles_and_read_stats() {
    let server = multi();
    let (_a1, s1) = server.login_as("alice", ALICE_PW, "a1");
    let (mut a2, _) = server.login_as("alice", ALICE_PW, "a2");
    let (mut admin, bs) = server.bob();
    let all = admin.admin_list_sessions("", 0, 0).unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(all.sessions.len(), 3);
    let own: Vec<_> = all.sessions.iter().filter(|s| s.current).collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].session_id, bs.session.session_id);
    let alices = admin.admin_list_sessions("alice", 0, 1).unwrap();
    assert_eq!(
        (alices.total, ids(&alices)),
        (2, vec![s1.session.session_id])
    );

    assert_eq!(
        admin.admin_revoke_session(s1.session.session_id).unwrap(),
        1
    );
    let e = admin
        .admin_revoke_session(s1.session.session_id)
        .unwrap_err();
    assert!(is_server_error(&e, ErrorCode::NotFound), "{e:?}");
    assert_eq!(admin.admin_logout_user("alice").unwrap(), 1);
    let reason = revocation(&mut a2);
    assert_eq!(reason, RevokeReason::ByAdmin);

    assert_eq!(admin.admin_set_role("alice", Role::Admin).unwrap(), 1);
    assert_eq!(admin.admin_set_role("alice", Role::Admin).unwrap(), 0);
    let (mut alice_admin, s) = server.login_as("alice", ALICE_PW, "new");
    assert_eq!(s.session.role, Role::Admin);
    let stats = alice_admin.admin_stats().unwrap();
    assert_eq!(stats.get("sessions_live"), Some(2));
    assert_eq!(stats.get("logins_ok"), Some(4));
    assert_eq!(stats.get("revocations"), Some(2));
    // by reason: the two were an administrator's (one session, then logout-user)
    assert_eq!(stats.get("revocations_revoked_by_admin"), Some(2));
    assert_eq!(stats.get("revocations_new_login"), Some(0));
    assert!(stats.get("logins_failed_invalid_credentials").is_some());
    assert!(stats.values.len() <= sessiond::protocol::MAX_PAGE);
    assert!(stats.get("uptime_ms").is_some() && stats.get("journal_bytes").is_some());
    assert!(stats.get("heartbeats").is_some() && stats.get("expiries").is_some());
}

#[test]
fn audit_queries_return_exactly_the_scenarios_events() {
    let server = multi();
    let mut c = server.client();
    assert!(matches!(
        c.login("alice", "wrong", "x", "y").unwrap(),
        LoginOutcome::Failure(_)
    ));
    let (mut a, s) = server.login_as("alice", ALICE_PW, "phone");
    let (mut b, _) = server.login_as("alice", ALICE_PW, "laptop");
    b.logout().unwrap();
    let (mut admin, _) = server.bob();
    let page = a.audit_query(&AuditRequest::default()).unwrap();
    let kinds: Vec<_> = page
        .entries
        .iter()
        .map(|e| AuditKind::from_u8(e.kind).unwrap().name())
        .collect();
    assert_eq!(
        kinds,
        [
            "login_failed",
            "session_created",
            "session_created",
            "logged_out"
        ]
    );
    assert!(page.entries.iter().all(|e| e.username == "alice"));
    assert_eq!(page.entries[1].session_id, s.session.session_id);
    assert_eq!(page.entries[0].detail, "alice: invalid credentials");
    assert_eq!(page.next_cursor, 0);
    // the admin sees everyone's (bob's login too), filtered by kind and paged
    let q = AuditRequest {
        kind: AuditKind::SessionCreated as u8,
        limit: 2,
        ..AuditRequest::default()
    };
    let p1 = admin.audit_query(&q).unwrap();
    assert_eq!(p1.entries.len(), 2);
    assert_ne!(p1.next_cursor, 0);
    let p2 = admin
        .audit_query(&AuditRequest {
            cursor: p1.next_cursor,
            ..q.clone()
        })
        .unwrap();
    let users: Vec<_> = p1
        .entries
        .iter()
        .chain(&p2.entries)
        .map(|e| e.username.as_str())
        .collect();
    assert_eq!(users, ["alice", "alice", "bob"]);
    // by user and time range
    let last = page.entries.last().unwrap().at;
    let q = AuditRequest {
        username: "alice".into(),
        from_ms: last,
        to_ms: last + 1,
        kind: AuditKind::LoggedOut as u8,
        ..AuditRequest::default()
    };
    assert_eq!(admin.audit_query(&q).unwrap().entries.len(), 1);
    let e = admin
        .audit_query(&AuditRequest {
            username: "nobody".into(),
            ..AuditRequest::default()
        })
        .unwrap_err();
    assert!(is_server_error(&e, ErrorCode::NotFound), "{e:?}");
    let _ = BOB_PW;
}

#[test]
fn suspension_roles_and_the_audit_trail_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("sessiond-manage-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    {
        let server = TestServer::start_journaled(&dir);
        let (mut admin, _) = server.bob();
        let (_a, _) = server.alice();
        assert_eq!(admin.admin_suspend_user("alice").unwrap(), 1);
        assert_eq!(admin.admin_set_role("alice", Role::Admin).unwrap(), 1);
    }
    let server = TestServer::start_journaled(&dir);
    let mut c = server.client();
    match c.login("alice", ALICE_PW, "x", "y").unwrap() {
        LoginOutcome::Failure(f) => assert_eq!(f.reason, LoginFailureReason::Suspended),
        other => panic!("suspension lost in the restart: {other:?}"),
    }
    let (mut admin, _) = server.bob();
    admin.admin_unsuspend_user("alice").unwrap();
    let (_a, s) = server.alice();
    assert_eq!(s.session.role, Role::Admin, "role lost in the restart");
    // the events before the restart are still queryable
    let q = AuditRequest {
        username: "alice".into(),
        ..AuditRequest::default()
    };
    let kinds: Vec<_> = admin
        .audit_query(&q)
        .unwrap()
        .entries
        .iter()
        .map(|e| AuditKind::from_u8(e.kind).unwrap().name())
        .collect();
    assert_eq!(
        kinds,
        [
            "session_created",
            "suspended",
            "revoked",
            "role_changed",
            "login_failed",
            "unsuspended",
            "session_created"
        ]
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
