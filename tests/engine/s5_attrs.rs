//! §5.39 to §5.43, session attributes: set, removed and read by the session's own
//! connection (and an administrator), bounded, durable, pushed after SESSION_VALID, and
//! gone with the session.

use crate::common::harness::*;
use sessiond::conn::ConnId;
use sessiond::engine::event::Event;
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

fn set(tok: &Token, key: &str, value: &[u8]) -> Message {
    Message::AttrSet(AttrSet {
        token: tok.clone(),
        key: key.into(),
        value: value.to_vec(),
    })
}

fn get_all(h: &mut Harness, c: ConnId, tok: &Token) -> Vec<(String, Vec<u8>)> {
    h.send(
        c,
        Message::AttrGet(AttrGet {
            token: tok.clone(),
            key: String::new(),
        }),
    );
    match h.one(c).message {
        Message::Attrs(a) => a.attrs,
        other => panic!("not ATTRS: {other:?}"),
    }
}

fn done(f: &Frame) -> u32 {
    match &f.message {
        Message::Done(d) => d.affected,
        other => panic!("expected DONE, got {other:?}"),
    }
}

#[test]
fn set_get_remove_and_their_answers() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    h.send(c, set(&tok, "game", b"456"));
    assert_eq!(done(&h.one(c)), 1);
    h.send(c, set(&tok, "cart", b"\x00\x01binary"));
    assert_eq!(done(&h.one(c)), 1);
    h.send(c, set(&tok, "game", b"457"));
    assert_eq!(done(&h.one(c)), 1);
    assert_eq!(
        get_all(&mut h, c, &tok),
        [
            ("cart".to_owned(), b"\x00\x01binary".to_vec()),
            ("game".to_owned(), b"457".to_vec())
        ]
    );
    // one by name; an unset one is an empty ATTRS
    h.send(
        c,
        Message::AttrGet(AttrGet {
            token: tok.clone(),
            key: "game".into(),
        }),
    );
    match h.one(c).message {
        Message::Attrs(a) => assert_eq!(a.attrs, [("game".to_owned(), b"457".to_vec())]),
        other => panic!("{other:?}"),
    }
    let remove = |key: &str| {
        Message::AttrRemove(AttrRemove {
            token: tok.clone(),
            key: key.into(),
        })
    };
    h.send(c, remove("game"));
    assert_eq!(done(&h.one(c)), 1);
    h.send(c, remove("game"));
    assert_eq!(done(&h.one(c)), 0);
    assert_eq!(get_all(&mut h, c, &tok).len(), 1);
}

#[test]
fn bounds_are_refused_with_the_documented_errors_and_change_nothing() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    for i in 0..64 {
        h.send(c, set(&tok, &format!("k{i:02}"), b""));
        assert_eq!(done(&h.one(c)), 1);
    }
    h.send(c, set(&tok, "one-more", b""));
    let f = h.one(c);
    assert_eq!(error_code(&f), ErrorCode::LimitExceeded);
    assert!(!f.flags.is_fatal());
    // 4,096 bytes of keys and values in all: 64 keys of 3 bytes hold 192, a longest value
    // 3,904 more; the last byte left goes, one more does not
    h.send(c, set(&tok, "k00", &[7; MAX_ATTR_VALUE]));
    assert_eq!(done(&h.one(c)), 1);
    h.send(c, set(&tok, "k01", &[7; 4096 - 192 - MAX_ATTR_VALUE + 1]));
    assert_eq!(error_code(&h.one(c)), ErrorCode::LimitExceeded);
    h.send(c, set(&tok, "k01", &[7; 4096 - 192 - MAX_ATTR_VALUE]));
    assert_eq!(done(&h.one(c)), 1);
    // the wire's own limits: an empty key, a value over 3,904 bytes
    h.send(c, set(&tok, "", b"x"));
    assert_eq!(error_code(&h.one(c)), ErrorCode::MalformedFrame);
    let mut long = Frame::reply(9, set(&tok, "k", b"")).to_vec();
    // the value's length prefix at the payload's end, made 4,097
    let n = long.len();
    long[n - 2..].copy_from_slice(&3905u16.to_be_bytes());
    long.extend(vec![0; 3905]);
    let len = (long.len() - HEADER_LEN) as u32;
    long[10..14].copy_from_slice(&len.to_be_bytes());
    h.feed(c, &long);
    assert_eq!(error_code(&h.one(c)), ErrorCode::FieldTooLong);
    assert!(!h.closing(c));
    assert_eq!(get_all(&mut h, c, &tok).len(), 64);
}

#[test]
fn a_resume_gets_its_attributes_pushed_after_session_valid() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    h.send(c, set(&tok, "game", b"456"));
    h.one(c);
    h.remove(c);
    let c2 = h.connect();
    let rid = h.send(c2, verify(&tok));
    let f = h.frames(c2);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].request_id, rid);
    assert!(matches!(f[0].message, Message::SessionValid(_)));
    assert_eq!((f[1].request_id, f[1].flags), (0, Flags::PUSH));
    match &f[1].message {
        Message::Attrs(a) => assert_eq!(a.attrs, [("game".to_owned(), b"456".to_vec())]),
        other => panic!("{other:?}"),
    }
    // a session without attributes gets no push
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    h.remove(c);
    let c2 = h.connect();
    h.send(c2, verify(&tok));
    assert_eq!(h.frames(c2).len(), 1);
}

#[test]
fn an_ended_session_takes_its_attributes_with_it() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    h.send(c, set(&tok, "game", b"456"));
    h.one(c);
    h.send(
        c,
        Message::LogoutRequest(LogoutRequest { token: tok.clone() }),
    );
    h.frames(c);
    let tok2 = h.login_ok(c);
    assert!(get_all(&mut h, c, &tok2).is_empty());
    // a session revoked by a new login: the new one starts with none
    h.send(c, set(&tok2, "game", b"1"));
    h.one(c);
    let c3 = h.connect();
    let tok3 = h.login_ok(c3);
    assert!(get_all(&mut h, c3, &tok3).is_empty());
    let ended = h
        .shell
        .journal
        .iter()
        .filter(|e| matches!(e, Event::SessionEnded { .. }))
        .count();
    assert_eq!(ended, 2);
}

#[test]
fn attributes_are_durable_before_done_and_survive_a_restart() {
    use sessiond::engine::replay::State;
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    h.shell.auto_durable = false;
    h.send(c, set(&tok, "game", b"456"));
    assert!(h.frames(c).is_empty(), "DONE before the journal sync");
    h.make_durable();
    assert_eq!(done(&h.one(c)), 1);
    h.shell.auto_durable = true;
    h.send(c, set(&tok, "cart", b"3 items"));
    h.one(c);
    h.send(
        c,
        Message::AttrRemove(AttrRemove {
            token: tok.clone(),
            key: "cart".into(),
        }),
    );
    h.one(c);
    let mut state = State::new();
    for u in h.engine.users().all() {
        state.users.restore(u.clone()).unwrap();
    }
    for ev in h.shell.journal.drain(..) {
        state.apply(ev).unwrap();
    }
    // through a snapshot too
    let mut again_state = State::new();
    for ev in state.snapshot_events() {
        again_state.apply(ev).unwrap();
    }
    let mut again = Harness::new(EngineConfig::default());
    again.engine.restore(again_state, again.now);
    let c = again.connect();
    again.send(c, verify(&tok));
    let f = again.frames(c);
    match &f.last().unwrap().message {
        Message::Attrs(a) => assert_eq!(a.attrs, [("game".to_owned(), b"456".to_vec())]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_administrator_sets_any_sessions_attributes_and_a_user_may_not() {
    let mut h = Harness::new(EngineConfig::default());
    let a = h.connect();
    let tok_a = match h.login(a, "alice", ALICE_PW).message {
        Message::LoginSuccess(s) => s,
        other => panic!("{other:?}"),
    };
    let sid = tok_a.session.session_id;
    let b = h.connect();
    let tok_b = h.login_as(b, "bob");
    let admin_set = |tok: &Token, session_id: u64, remove: bool, value: &[u8]| {
        Message::AdminSetAttr(AdminSetAttr {
            token: tok.clone(),
            session_id,
            key: "role-hint".into(),
            remove,
            value: value.to_vec(),
        })
    };
    h.send(b, admin_set(&tok_b, sid, false, b"teacher"));
    assert_eq!(done(&h.one(b)), 1);
    assert_eq!(
        get_all(&mut h, a, &tok_a.token),
        [("role-hint".to_owned(), b"teacher".to_vec())]
    );
    h.send(b, admin_set(&tok_b, 12345, false, b"x"));
    assert_eq!(error_code(&h.one(b)), ErrorCode::NotFound);
    h.send(a, admin_set(&tok_a.token, sid, false, b"admin"));
    assert_eq!(error_code(&h.one(a)), ErrorCode::Forbidden);
    h.send(b, admin_set(&tok_b, sid, true, b""));
    assert_eq!(done(&h.one(b)), 1);
    assert!(get_all(&mut h, a, &tok_a.token).is_empty());
    // remove with a value is malformed
    h.send(b, admin_set(&tok_b, sid, true, b"x"));
    assert_eq!(error_code(&h.one(b)), ErrorCode::MalformedFrame);
}
