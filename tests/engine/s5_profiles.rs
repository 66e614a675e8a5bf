//! §5.44 to §5.48: account profiles and application roles, set by the user or an
//! administrator, durable, and pushed as USER_INFO after LOGIN_SUCCESS and SESSION_VALID
//! (only for accounts that have one or the other); only `admin` grants administration.

use crate::common::harness::*;
use sessiond::conn::ConnId;
use sessiond::engine::event::{AuditKind, Event};
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

fn roles() -> EngineConfig {
    EngineConfig {
        app_roles: vec!["educator".into(), "finance".into()],
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    }
}

fn done(f: &Frame) -> u32 {
    match &f.message {
        Message::Done(d) => d.affected,
        other => panic!("expected DONE, got {other:?}"),
    }
}

fn set_role(tok: &Token, user: &str, role: &str) -> Message {
    Message::AdminSetAppRole(AdminSetAppRole {
        token: tok.clone(),
        username: user.into(),
        role: role.into(),
    })
}

fn profile_set(tok: &Token, key: &str, value: Option<&str>) -> Message {
    Message::ProfileSet(ProfileSet {
        token: tok.clone(),
        key: key.into(),
        remove: value.is_none(),
        value: value.unwrap_or_default().into(),
    })
}

/// Logs alice in on a new connection: its frames (LOGIN_SUCCESS first) and the token.
fn alice_login(h: &mut Harness) -> (ConnId, Vec<Frame>) {
    let c = h.connect();
    h.send(c, login_msg("alice", ALICE_PW));
    (c, h.frames(c))
}

#[test]
fn a_role_and_a_profile_come_with_the_login_and_the_resume() {
    let mut h = Harness::new(roles());
    // nothing yet: LOGIN_SUCCESS alone
    let (a, f) = alice_login(&mut h);
    assert_eq!(f.len(), 1);
    let tok_a = match &f[0].message {
        Message::LoginSuccess(s) => s.token.clone(),
        other => panic!("{other:?}"),
    };
    let b = h.connect();
    let tok_b = h.login_as(b, "bob");
    h.send(b, set_role(&tok_b, "alice", "educator"));
    assert_eq!(done(&h.one(b)), 1);
    h.send(b, set_role(&tok_b, "alice", "educator"));
    assert_eq!(done(&h.one(b)), 0, "already hers");
    h.send(a, profile_set(&tok_a, "display_name", Some("Alice A.")));
    assert_eq!(done(&h.one(a)), 1);
    // a new login: LOGIN_SUCCESS, then the push with both
    let (_, f) = alice_login(&mut h);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(matches!(f[0].message, Message::LoginSuccess(_)));
    assert_eq!((f[1].request_id, f[1].flags), (0, Flags::PUSH));
    let want = UserInfo {
        user_id: 1,
        app_role: "educator".into(),
        profile: vec![("display_name".into(), "Alice A.".into())],
    };
    assert_eq!(f[1].message, Message::UserInfo(want.clone()));
    // (the first connection was told of the new login)
    let told = h.frames(a);
    assert!(matches!(&told[..], [t] if matches!(t.message, Message::NewLogin(_))));
    // a resume: SESSION_VALID, USER_INFO, then ATTRS
    h.send(
        a,
        Message::AttrSet(AttrSet {
            token: tok_a.clone(),
            key: "game".into(),
            value: b"1".to_vec(),
        }),
    );
    h.one(a);
    h.remove(a);
    let a2 = h.connect();
    h.send(a2, verify(&tok_a));
    let f = h.frames(a2);
    let kinds: Vec<_> = f.iter().map(|f| f.message.opcode()).collect();
    assert_eq!(
        kinds,
        [Opcode::SessionValid, Opcode::UserInfo, Opcode::Attrs],
        "{f:?}"
    );
    // PROFILE_GET: all, and one by name
    h.send(
        a2,
        Message::ProfileGet(ProfileGet {
            token: tok_a.clone(),
            key: String::new(),
        }),
    );
    assert_eq!(h.one(a2).message, Message::UserInfo(want));
    h.send(a2, profile_set(&tok_a, "display_name", None));
    assert_eq!(done(&h.one(a2)), 1);
    h.send(a2, profile_set(&tok_a, "display_name", None));
    assert_eq!(done(&h.one(a2)), 0);
}

#[test]
fn only_declared_roles_are_given_and_only_admin_grants_administration() {
    let mut h = Harness::new(roles());
    let b = h.connect();
    let tok_b = h.login_as(b, "bob");
    h.send(b, set_role(&tok_b, "alice", "root"));
    let f = h.one(b);
    assert_eq!(error_code(&f), ErrorCode::InvalidArgument);
    h.send(b, set_role(&tok_b, "nobody", "finance"));
    assert_eq!(error_code(&h.one(b)), ErrorCode::NotFound);
    h.send(b, set_role(&tok_b, "alice", "finance"));
    assert_eq!(done(&h.one(b)), 1);
    let audited = h.shell.journal.iter().any(|e| {
        matches!(e, Event::Audit(a) if a.kind == AuditKind::RoleChanged
            && a.actor.as_ref().is_some_and(|x| x.user_id == 2))
    });
    assert!(audited, "the change is audited with bob as actor");
    // alice, a `finance` user, is still no administrator
    let a = h.connect();
    let tok_a = h.login_ok(a);
    h.send(a, set_role(&tok_a, "bob", ""));
    assert_eq!(error_code(&h.one(a)), ErrorCode::Forbidden);
    h.send(
        a,
        Message::AdminStats(AdminStats {
            token: tok_a.clone(),
        }),
    );
    assert_eq!(error_code(&h.one(a)), ErrorCode::Forbidden);
    // cleared: her logins carry no push again
    h.send(b, set_role(&tok_b, "alice", ""));
    assert_eq!(done(&h.one(b)), 1);
    let (_, f) = alice_login(&mut h);
    assert_eq!(f.len(), 1);
}

#[test]
fn an_administrator_sets_any_profile_and_bounds_hold() {
    let mut h = Harness::new(roles());
    let b = h.connect();
    let tok_b = h.login_as(b, "bob");
    let admin_set = |key: &str, value: Vec<u8>| {
        Message::AdminSetProfile(AdminSetProfile {
            token: tok_b.clone(),
            username: "alice".into(),
            key: key.into(),
            remove: false,
            value,
        })
    };
    for i in 0..64 {
        h.send(b, admin_set(&format!("k{i:02}"), Vec::new()));
        assert_eq!(done(&h.one(b)), 1);
    }
    h.send(b, admin_set("one-more", Vec::new()));
    assert_eq!(error_code(&h.one(b)), ErrorCode::LimitExceeded);
    let (a, f) = alice_login(&mut h);
    match &f[1].message {
        Message::UserInfo(u) => assert_eq!(u.profile.len(), 64),
        other => panic!("{other:?}"),
    }
    let tok_a = match &f[0].message {
        Message::LoginSuccess(s) => s.token.clone(),
        other => panic!("{other:?}"),
    };
    // a user may not use the admin request
    h.send(
        a,
        Message::AdminSetProfile(AdminSetProfile {
            token: tok_a,
            username: "bob".into(),
            key: "k".into(),
            remove: false,
            value: Vec::new(),
        }),
    );
    assert_eq!(error_code(&h.one(a)), ErrorCode::Forbidden);
}

#[test]
fn profiles_and_roles_survive_a_restart_through_a_snapshot() {
    use sessiond::engine::replay::State;
    let mut h = Harness::new(roles());
    let b = h.connect();
    let tok_b = h.login_as(b, "bob");
    h.send(b, set_role(&tok_b, "alice", "educator"));
    h.one(b);
    let a = h.connect();
    let tok_a = h.login_ok(a);
    h.send(a, profile_set(&tok_a, "display_name", Some("Alice A.")));
    h.one(a);
    let mut state = State::new();
    for u in h.engine.users().all() {
        state.users.restore(u.clone()).unwrap();
    }
    for ev in h.shell.journal.drain(..) {
        state.apply(ev).unwrap();
    }
    let mut compacted = State::new();
    for ev in state.snapshot_events() {
        compacted.apply(ev).unwrap();
    }
    // the server builds its engine from the replayed accounts (their profiles and roles
    // with them), as `Server::start` does
    let mut again = Harness::new(roles());
    let mut cfg = roles();
    cfg.iterations = 1;
    let users = std::mem::take(&mut compacted.users);
    let dummy = sessiond::auth::PasswordRecord::dummy(1).unwrap();
    again.engine = sessiond::engine::Engine::new(cfg, users, dummy, again.now, START_MS);
    again.engine.restore(compacted, again.now);
    let c = again.connect();
    again.send(c, login_msg("alice", ALICE_PW));
    let f = again.frames(c);
    assert_eq!(
        f.last().unwrap().message,
        Message::UserInfo(UserInfo {
            user_id: 1,
            app_role: "educator".into(),
            profile: vec![("display_name".into(), "Alice A.".into())],
        })
    );
}

#[test]
fn administrators_list_the_accounts_with_both_roles() {
    let mut h = Harness::new(roles());
    let b = h.connect();
    let tok_b = h.login_as(b, "bob");
    h.send(b, set_role(&tok_b, "alice", "educator"));
    h.one(b);
    let list = |tok: &Token, offset: u32, limit: u16| {
        Message::AdminListUsers(AdminListUsers {
            token: tok.clone(),
            offset,
            limit,
        })
    };
    h.send(b, list(&tok_b, 0, 0));
    match h.one(b).message {
        Message::UserList(l) => {
            assert_eq!(l.total, 2);
            let got: Vec<_> = l
                .users
                .iter()
                .map(|u| (u.user_id, u.username.as_str(), u.role, u.app_role.as_str()))
                .collect();
            assert_eq!(
                got,
                [
                    (1, "alice", Role::User, "educator"),
                    (2, "bob", Role::Admin, "")
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    // a page
    h.send(b, list(&tok_b, 1, 1));
    match h.one(b).message {
        Message::UserList(l) => assert_eq!((l.total, l.users[0].username.as_str()), (2, "bob")),
        other => panic!("{other:?}"),
    }
    let a = h.connect();
    let tok_a = h.login_ok(a);
    h.send(a, list(&tok_a, 0, 0));
    assert_eq!(error_code(&h.one(a)), ErrorCode::Forbidden);
}
