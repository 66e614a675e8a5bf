//! §2 Frame header and §6 Error codes: what a malformed, unexpected or foreign frame gets, and when it closes the connection.

use crate::common::harness::*;
use sessiond::engine::EngineConfig;
use sessiond::protocol::*;

#[test]
fn anything_but_login_before_login_is_fatal_auth_required() {
    for msg in [
        hb(&Token([0; 32])),
        Message::LogoutRequest(LogoutRequest {
            token: Token([0; 32]),
        }),
    ] {
        let mut h = Harness::new(EngineConfig::default());
        let c = h.connect();
        let rid = h.send(c, msg);
        let f = h.one(c);
        assert_eq!(f.request_id, rid);
        assert_eq!(f.flags, Flags::FATAL);
        assert_eq!(error_code(&f), ErrorCode::AuthRequired);
        assert!(h.closing(c));
    }
    // an unknown opcode before login: fatal too
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    h.feed(c, &[0x53, 0x44, 0x01, 0x7e, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0]);
    let f = h.one(c);
    assert_eq!(error_code(&f), ErrorCode::UnknownOpcode);
    assert!(f.flags.is_fatal());
}

#[test]
fn after_login_bad_frames_are_answered_and_the_connection_goes_on() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    // unknown opcode, with a payload that must be skipped
    h.feed(
        c,
        &[
            0x53, 0x44, 0x01, 0x7e, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2, 0xde, 0xad,
        ],
    );
    let f = h.one(c);
    assert_eq!(
        (f.request_id, error_code(&f)),
        (9, ErrorCode::UnknownOpcode)
    );
    // a second LOGIN_REQUEST while ACTIVE
    h.send(c, login_msg("alice", ALICE_PW));
    assert_eq!(error_code(&h.one(c)), ErrorCode::UnexpectedFrame);
    // a server-only frame sent by the client
    h.send(c, Message::HeartbeatAck(HeartbeatAck { server_time: 0 }));
    assert_eq!(error_code(&h.one(c)), ErrorCode::UnexpectedFrame);
    // flags set by a client
    let mut bad = Frame::reply(4, hb(&tok)).to_vec();
    bad[5] = 0x01;
    h.feed(c, &bad);
    assert_eq!(error_code(&h.one(c)), ErrorCode::BadFlags);
    // invalid UTF-8 inside a LOGIN_REQUEST while active
    let mut login = Frame::reply(5, login_msg("alice", "pw")).to_vec();
    login[16] = 0xff;
    h.feed(c, &login);
    assert_eq!(error_code(&h.one(c)), ErrorCode::InvalidUtf8);
    // truncated payload (heartbeat with a 31-byte token)
    let mut short = Frame::reply(6, hb(&tok)).to_vec();
    short.pop();
    short[13] = 31;
    h.feed(c, &short);
    assert_eq!(error_code(&h.one(c)), ErrorCode::MalformedFrame);
    assert!(!h.closing(c));
    h.send(c, hb(&tok));
    assert!(matches!(h.one(c).message, Message::HeartbeatAck(_)));
}

#[test]
fn oversized_length_and_bad_magic_are_fatal() {
    let (mut h, c, _) = Harness::logged_in(EngineConfig::default());
    h.feed(
        c,
        &[
            0x53, 0x44, 0x01, 0x04, 0, 0, 0, 0, 0, 7, 0x00, 0x10, 0x00, 0x00,
        ],
    );
    let f = h.one(c);
    assert_eq!(
        (f.request_id, error_code(&f)),
        (7, ErrorCode::FrameTooLarge)
    );
    assert_eq!(
        f.flags,
        Flags::FATAL,
        "a readable header: a reply, not a push"
    );
    assert!(h.closing(c));

    // Not a header of this protocol: nothing in it is echoed, whatever follows (here 18
    // bytes, so bytes 6..10 exist), and the answer is a push (protocol.md 2).
    let c = h.connect();
    h.feed(c, b"GET / HTTP/1.1\r\n\r\n");
    let f = h.one(c);
    assert_eq!(error_code(&f), ErrorCode::BadMagic);
    assert_eq!((f.request_id, f.flags), (0, Flags::PUSH | Flags::FATAL));
    assert!(h.closing(c));

    for bytes in [
        &[0x53, 0x44, 0x02][..],
        &[0x53, 0x44, 0x02, 4, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0],
    ] {
        let c = h.connect();
        h.feed(c, bytes);
        let f = h.one(c);
        assert_eq!(error_code(&f), ErrorCode::UnsupportedVersion);
        assert_eq!((f.request_id, f.flags), (0, Flags::PUSH | Flags::FATAL));
    }
}

#[test]
fn sixteen_errors_in_a_row_close_the_connection() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    for i in 0..15 {
        h.send(c, hb(&Token([9; 32])));
        assert_eq!(h.frames(c).len(), 1, "error {i}");
    }
    // a valid frame resets the streak
    h.send(c, hb(&tok));
    h.frames(c);
    for _ in 0..15 {
        h.send(c, hb(&Token([9; 32])));
    }
    assert!(!h.closing(c));
    assert_eq!(h.frames(c).len(), 15);
    let rid = h.send(c, hb(&Token([9; 32])));
    // protocol.md 2: the 16th gets its own reply, then the notice as a push
    let f = h.frames(c);
    assert_eq!(f.len(), 2);
    assert_eq!(error_code(&f[0]), ErrorCode::InvalidToken);
    assert_eq!((f[0].request_id, f[0].flags), (rid, Flags::NONE));
    assert_eq!(error_code(&f[1]), ErrorCode::TooManyErrors);
    assert_eq!(
        (f[1].request_id, f[1].flags),
        (0, Flags::PUSH | Flags::FATAL)
    );
    assert!(h.closing(c));
}

#[test]
fn bad_flags_are_fatal_before_login_except_in_the_frames_allowed_there() {
    // in a HEARTBEAT before login: fatal
    let mut h = Harness::new(EngineConfig::default());
    let c = h.connect();
    let mut bad = Frame::reply(3, hb(&Token([0; 32]))).to_vec();
    bad[5] = 0x01;
    h.feed(c, &bad);
    let f = h.one(c);
    assert_eq!((error_code(&f), f.request_id), (ErrorCode::BadFlags, 3));
    assert!(f.flags.is_fatal());
    assert!(h.closing(c));
    // in each of the frames allowed before login: answered, the connection stays, and a
    // login afterwards works
    for msg in [
        login_msg("alice", ALICE_PW),
        register("carol", "long enough pw", "carol@example.org"),
        verify(&Token([1; 32])),
    ] {
        let mut h = Harness::new(EngineConfig::default());
        let c = h.connect();
        let mut bad = Frame::reply(4, msg).to_vec();
        bad[5] = 0x02;
        h.feed(c, &bad);
        let f = h.one(c);
        assert_eq!((error_code(&f), f.request_id), (ErrorCode::BadFlags, 4));
        assert_eq!(f.flags, Flags::NONE);
        assert!(!h.closing(c));
        h.login_ok(c);
    }
}

#[test]
fn a_server_only_frame_first_is_fatal_auth_required() {
    for msg in [
        Message::HeartbeatAck(HeartbeatAck { server_time: 0 }),
        Message::Done(Done { affected: 0 }),
    ] {
        let mut h = Harness::new(EngineConfig::default());
        let c = h.connect();
        let rid = h.send(c, msg);
        let f = h.one(c);
        assert_eq!(
            (error_code(&f), f.request_id),
            (ErrorCode::AuthRequired, rid)
        );
        assert_eq!(f.flags, Flags::FATAL);
        assert!(h.closing(c));
    }
}

#[test]
fn foreign_and_unknown_tokens_get_general_failure() {
    let (mut h, [(a, tok_a), (_, tok_b)]) = Harness::logged_in_pair(EngineConfig::default());
    h.send(a, hb(&tok_b));
    let f = h.one(a);
    assert_eq!(error_code(&f), ErrorCode::TokenMismatch);
    assert_eq!(f.flags, Flags::NONE);
    h.send(a, hb(&Token([0xab; 32])));
    assert_eq!(error_code(&h.one(a)), ErrorCode::InvalidToken);
    // the connection is fine afterwards
    h.send(a, hb(&tok_a));
    assert!(matches!(h.one(a).message, Message::HeartbeatAck(_)));
}

#[test]
fn a_thousand_pipelined_heartbeats_are_answered_in_order() {
    let (mut h, c, tok) = Harness::logged_in(EngineConfig::default());
    let mut bytes = Vec::new();
    for rid in 1000..2000u32 {
        bytes.extend(Frame::reply(rid, hb(&tok)).to_vec());
    }
    h.feed(c, &bytes);
    let f = h.frames(c);
    let ids: Vec<u32> = f.iter().map(|f| f.request_id).collect();
    assert_eq!(ids, (1000..2000).collect::<Vec<_>>());
    assert!(f
        .iter()
        .all(|f| matches!(f.message, Message::HeartbeatAck(_))));
}
