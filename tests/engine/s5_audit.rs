//! §5.36 / §5.37 AUDIT_SEARCH and AUDIT_RECORDS: typed audit records (reason, device, who
//! acted), newest first, and AUDIT_QUERY's text kept for the clients written before.

use crate::common::harness::*;
use sessiond::engine::event::AuditKind;
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

/// Logs `user` in on a new connection: the connection, its token and its session id.
fn session_of(h: &mut Harness, user: &str) -> (sessiond::conn::ConnId, Token, u64) {
    let c = h.connect();
    match h.login(c, user, ALICE_PW).message {
        Message::LoginSuccess(s) => (c, s.token, s.session.session_id),
        other => panic!("login failed: {other:?}"),
    }
}

fn search(h: &mut Harness, c: sessiond::conn::ConnId, tok: &Token, q: AuditSearch) -> AuditRecords {
    let q = AuditSearch {
        query: AuditQuery {
            token: tok.clone(),
            ..q.query
        },
        ..q
    };
    h.send(c, Message::AuditSearch(q));
    match h.one(c).message {
        Message::AuditRecords(r) => r,
        other => panic!("not AUDIT_RECORDS: {other:?}"),
    }
}

fn newest(limit: u16) -> AuditSearch {
    AuditSearch {
        query: AuditQuery {
            token: Token([0; 32]),
            username: String::new(),
            kind: 0,
            from: 0,
            to: 0,
            cursor: 0,
            limit,
        },
        newest_first: true,
    }
}

fn of_kind(r: &AuditRecords, k: AuditKind) -> Vec<&AuditRecord> {
    r.records.iter().filter(|a| a.kind == k as u8).collect()
}

#[test]
fn a_revocation_names_the_login_that_caused_it() {
    let mut h = Harness::new(EngineConfig::default());
    let (_, _, first) = session_of(&mut h, "alice");
    let (b, tok_b, second) = session_of(&mut h, "alice");
    let r = search(&mut h, b, &tok_b, newest(0));
    let revoked = of_kind(&r, AuditKind::Revoked);
    assert_eq!(revoked.len(), 1);
    let rev = revoked[0];
    assert_eq!((rev.user_id, rev.session_id), (1, first));
    assert_eq!(rev.username, "alice");
    assert_eq!(rev.reason, RevokeReason::NewLogin.to_u16());
    assert_eq!(
        (rev.client.as_str(), rev.platform.as_str()),
        ("harness", "test")
    );
    let by = &rev.actor;
    assert_eq!((by.user_id, by.session_id), (1, second));
    assert_eq!(by.username, "alice");
    assert_eq!(by.address, PEER);
    assert_eq!(
        (by.client.as_str(), by.platform.as_str()),
        ("harness", "test")
    );
    // the newest first: the second session's creation is the first record
    let created = &r.records[0];
    assert_eq!(created.kind, AuditKind::SessionCreated as u8);
    assert_eq!((created.session_id, created.reason), (second, 0));
    assert_eq!(
        (created.client.as_str(), created.address.as_str()),
        ("harness", PEER)
    );
    assert_eq!(created.actor, AuditActor::default());
    assert!(r.records.windows(2).all(|w| w[0].seq > w[1].seq));
}

#[test]
fn refused_logins_and_password_changes_carry_their_reason() {
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    h.login(c, "nobody", "x");
    h.login(c, "alice", "wrong");
    let (c, tok, sid) = session_of(&mut h, "alice");
    // five wrong old passwords make a failure streak; the sixth attempt is throttled
    for _ in 0..6 {
        h.send(
            c,
            Message::ChangePassword(ChangePassword {
                token: tok.clone(),
                old: "wrong".into(),
                new: "a new password".into(),
            }),
        );
        h.frames(c);
    }
    // an administrator sees everyone's records, the unknown name's too
    let (b, tok_b, _) = session_of(&mut h, "bob");
    let r = search(&mut h, b, &tok_b, newest(0));
    let failed = of_kind(&r, AuditKind::LoginFailed);
    assert_eq!(failed.len(), 2);
    let invalid = LoginFailureReason::InvalidCredentials.to_u16();
    // newest first: alice's wrong password, then the unknown name
    assert_eq!(
        (failed[0].user_id, failed[0].username.as_str()),
        (1, "alice")
    );
    assert_eq!(
        (failed[1].user_id, failed[1].username.as_str()),
        (0, "nobody")
    );
    assert!(failed
        .iter()
        .all(|f| f.reason == invalid && f.client == "harness"));
    let changes = of_kind(&r, AuditKind::PasswordChangeFailed);
    assert_eq!(changes.len(), 6, "{changes:#?}");
    assert_eq!(changes[0].reason, LoginFailureReason::Throttled.to_u16());
    assert!(changes[1..].iter().all(|f| f.reason == invalid));
    assert!(changes
        .iter()
        .all(|f| f.session_id == sid && f.platform == "test"));
}

#[test]
fn an_administrator_is_the_actor_of_what_it_does() {
    let mut h = Harness::new(EngineConfig::default());
    let (_, _, alice_sid) = session_of(&mut h, "alice");
    let (b, tok_b, bob_sid) = session_of(&mut h, "bob");
    h.send(
        b,
        Message::AdminSuspendUser(UserTarget {
            token: tok_b.clone(),
            username: "alice".into(),
        }),
    );
    assert!(matches!(h.one(b).message, Message::Done(_)));
    let r = search(&mut h, b, &tok_b, newest(0));
    let suspended = of_kind(&r, AuditKind::Suspended)[0];
    assert_eq!(
        (suspended.user_id, suspended.username.as_str()),
        (1, "alice")
    );
    assert_eq!(
        (suspended.actor.user_id, suspended.actor.session_id),
        (2, bob_sid)
    );
    assert_eq!(suspended.actor.username, "bob");
    let revoked = of_kind(&r, AuditKind::Revoked)[0];
    assert_eq!(revoked.session_id, alice_sid);
    assert_eq!(revoked.reason, RevokeReason::AccountSuspended.to_u16());
    assert_eq!(revoked.actor.username, "bob");
}

#[test]
fn pages_hold_fifty_and_the_cursor_goes_on_in_either_order() {
    let mut h = Harness::new(EngineConfig {
        max_sessions_per_user: 0,
        ..EngineConfig::default()
    });
    let c = h.connect_from("192.0.2.9:1000".parse().unwrap());
    for _ in 0..60 {
        h.login(c, "nobody", "x"); // audited, throttled or not
    }
    let (b, tok, _) = session_of(&mut h, "bob");
    let all = |newest_first| AuditSearch {
        newest_first,
        ..newest(500)
    };
    let mut seen = Vec::new();
    for newest_first in [true, false] {
        let mut q = all(newest_first);
        let mut pages = 0;
        let mut seqs = Vec::new();
        loop {
            let r = search(&mut h, b, &tok, q.clone());
            assert!(r.records.len() <= MAX_RECORDS);
            seqs.extend(r.records.iter().map(|a| a.seq));
            pages += 1;
            if r.next_cursor == 0 || pages > 5 {
                break;
            }
            q.query.cursor = r.next_cursor;
        }
        assert_eq!(pages, 2, "61 records and more: two pages of at most 50");
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        if newest_first {
            sorted.reverse();
        }
        assert_eq!(seqs, sorted);
        seen.push(seqs);
    }
    seen[1].reverse();
    assert_eq!(seen[0], seen[1], "both orders see the same records");
}

#[test]
fn the_old_page_keeps_the_meaning_in_its_text() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    h.send(
        c,
        Message::AuditQuery(AuditQuery {
            token: tok,
            username: String::new(),
            kind: AuditKind::SessionCreated as u8,
            from: 0,
            to: 0,
            cursor: 0,
            limit: 0,
        }),
    );
    match h.one(c).message {
        Message::AuditPage(p) => assert_eq!(p.entries[0].detail, "harness test"),
        other => panic!("{other:?}"),
    }
}
