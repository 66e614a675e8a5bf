//! protocol.md 2, "Frame size": every request fits in the smallest maximum frame size a
//! server may be set to (4,096 bytes) with every field at its longest, and every reply in
//! 65,536 bytes; the string limits the spec gives are the codec's.

use sessiond::protocol::{
    decode_slice, AuditActor, AuditEntry, AuditPage, AuditQuery, AuditRecord, AuditRecords,
    AuditSearch, ChangePassword, DecodeErrorKind, DecodeLimits, Frame, LoginRequest, Message,
    RegisterRequest, RegisterSuccess, SessionEntry, SessionList, Stats, Token, VerifySession,
    MAX_DETAIL, MAX_DEVICE_FIELD, MAX_EMAIL, MAX_PAGE, MAX_PASSWORD, MAX_RECORDS, MAX_STAT_NAME,
    MAX_USERNAME, MIN_MAX_FRAME,
};

fn text(n: usize) -> String {
    "x".repeat(n)
}

fn secret(n: usize) -> sessiond::protocol::Secret {
    text(n).as_str().into()
}

#[test]
fn every_request_at_its_longest_fits_the_smallest_frame_limit() {
    assert_eq!(MIN_MAX_FRAME, 4096);
    let token = Token([7; 32]);
    let requests = [
        Message::LoginRequest(LoginRequest {
            username: text(MAX_USERNAME),
            password: secret(MAX_PASSWORD),
            client: text(MAX_DEVICE_FIELD),
            platform: text(MAX_DEVICE_FIELD),
        }),
        Message::RegisterRequest(RegisterRequest {
            username: text(MAX_USERNAME),
            password: secret(MAX_PASSWORD),
            email: text(MAX_EMAIL),
        }),
        Message::VerifySession(VerifySession {
            token: token.clone(),
            client: text(MAX_DEVICE_FIELD),
            platform: text(MAX_DEVICE_FIELD),
        }),
        Message::ChangePassword(ChangePassword {
            token: token.clone(),
            old: secret(MAX_PASSWORD),
            new: secret(MAX_PASSWORD),
        }),
        Message::AttrSet(sessiond::protocol::AttrSet {
            token: token.clone(),
            key: text(sessiond::protocol::MAX_ATTR_KEY),
            value: vec![0xff; sessiond::protocol::MAX_ATTR_VALUE],
        }),
        Message::AdminSetAttr(sessiond::protocol::AdminSetAttr {
            token: token.clone(),
            session_id: u64::MAX,
            key: text(sessiond::protocol::MAX_ATTR_KEY),
            remove: false,
            value: vec![0xff; sessiond::protocol::MAX_ATTR_VALUE],
        }),
        Message::AdminSetProfile(sessiond::protocol::AdminSetProfile {
            token: token.clone(),
            username: text(MAX_USERNAME),
            key: text(sessiond::protocol::MAX_ATTR_KEY),
            remove: false,
            value: vec![0xff; sessiond::protocol::MAX_ATTR_VALUE],
        }),
        Message::ProfileSet(sessiond::protocol::ProfileSet {
            token: token.clone(),
            key: text(sessiond::protocol::MAX_ATTR_KEY),
            remove: false,
            value: vec![0xff; sessiond::protocol::MAX_ATTR_VALUE],
        }),
        Message::AuditSearch(AuditSearch {
            query: AuditQuery {
                token,
                username: text(MAX_USERNAME),
                kind: 1,
                from: 1,
                to: 2,
                cursor: 3,
                limit: 4,
            },
            newest_first: true,
        }),
    ];
    let mut largest = 0;
    for m in requests {
        let bytes = Frame::reply(1, m).to_vec();
        largest = largest.max(bytes.len());
        let limits = DecodeLimits::server(MIN_MAX_FRAME);
        let decoded = sessiond::protocol::decode(&mut bytes.as_slice().into(), limits);
        assert!(matches!(decoded, Ok(Some(_))), "{decoded:?}");
    }
    // the spec names the largest: ADMIN_SET_PROFILE with a 64-byte name and key and a
    // 3,904-byte value
    assert_eq!(largest, 4085);
}

#[test]
fn every_reply_at_its_longest_fits_in_65536_bytes() {
    let entry = SessionEntry {
        session_id: 1,
        current: true,
        connected: true,
        user_id: 2,
        username: text(MAX_USERNAME),
        client: text(MAX_DEVICE_FIELD),
        platform: text(MAX_DEVICE_FIELD),
        address: text(64),
        created: 1,
        last_active: 2,
        expires: 3,
    };
    let page_entry = AuditEntry {
        seq: 1,
        at: 2,
        kind: 3,
        user_id: 4,
        username: text(MAX_USERNAME),
        session_id: 5,
        address: text(64),
        detail: text(MAX_DETAIL),
    };
    let actor = AuditActor {
        user_id: 1,
        username: text(MAX_USERNAME),
        session_id: 2,
        address: text(64),
        client: text(MAX_DEVICE_FIELD),
        platform: text(MAX_DEVICE_FIELD),
    };
    let record = AuditRecord {
        seq: 1,
        at: 2,
        kind: 3,
        reason: 4,
        user_id: 5,
        username: text(MAX_USERNAME),
        session_id: 6,
        address: text(64),
        client: text(MAX_DEVICE_FIELD),
        platform: text(MAX_DEVICE_FIELD),
        actor,
        note: text(MAX_DETAIL),
    };
    let replies = [
        Message::SessionList(SessionList {
            total: u32::MAX,
            sessions: vec![entry; MAX_PAGE],
        }),
        Message::AuditPage(AuditPage {
            next_cursor: 1,
            entries: vec![page_entry; MAX_PAGE],
        }),
        Message::AuditRecords(AuditRecords {
            next_cursor: 1,
            records: vec![record; MAX_RECORDS],
        }),
        Message::Stats(Stats {
            values: vec![(text(MAX_STAT_NAME), u64::MAX); MAX_PAGE],
        }),
        // the most a session holds: 64 attributes, 4,096 bytes of keys and values
        Message::Attrs(sessiond::protocol::Attrs {
            session_id: 1,
            attrs: (0..sessiond::protocol::MAX_ATTRS)
                .map(|i| (format!("{i:02}"), vec![0; 4096 / 64 - 2]))
                .collect(),
        }),
    ];
    // protocol.md 2: "a client MUST accept frames up to 65,536 bytes"
    const _: () = assert!(sessiond::client::CLIENT_MAX_FRAME >= 65_536);
    for m in replies {
        let bytes = Frame::reply(1, m.clone()).to_vec();
        assert!(
            bytes.len() <= 65_536,
            "{:?}: {} bytes",
            m.opcode(),
            bytes.len()
        );
        assert_eq!(decode_slice(&bytes).unwrap().0.message, m);
    }
}

#[test]
fn a_registered_name_is_at_most_32_bytes_on_the_wire() {
    let ok = Frame::reply(
        1,
        Message::RegisterSuccess(RegisterSuccess {
            user_id: 3,
            username: text(32),
        }),
    )
    .to_vec();
    assert!(decode_slice(&ok).is_ok());
    // 33 bytes: a hand-made payload, since the encoder clips
    let mut bad = ok[..14].to_vec();
    bad[13] = 8 + 2 + 33;
    bad.extend(3u64.to_be_bytes());
    bad.extend(33u16.to_be_bytes());
    bad.extend(text(33).bytes());
    let e = decode_slice(&bad).unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::FieldTooLong);
}

/// protocol.md 5.28 / 5.37: "a client MUST accept kinds it does not know" (and reasons).
#[test]
fn records_of_kinds_and_reasons_not_yet_defined_decode() {
    let record = AuditRecord {
        seq: 1,
        at: 2,
        kind: 0xee,
        reason: 0xbeef,
        user_id: 0,
        username: String::new(),
        session_id: 0,
        address: String::new(),
        client: String::new(),
        platform: String::new(),
        actor: AuditActor::default(),
        note: String::new(),
    };
    let m = Message::AuditRecords(AuditRecords {
        next_cursor: 0,
        records: vec![record],
    });
    let bytes = Frame::reply(1, m.clone()).to_vec();
    assert_eq!(decode_slice(&bytes).unwrap().0.message, m);
}

/// protocol.md 5.31 / 5.32: a username that names an account is 1..=64 bytes; an empty one
/// is MALFORMED_FRAME (not NOT_FOUND), as in LOGIN_REQUEST.
#[test]
fn an_empty_target_username_is_malformed() {
    use sessiond::protocol::{AdminSetRole, Role, UserTarget};
    let token = Token([1; 32]);
    for m in [
        Message::AdminSuspendUser(UserTarget {
            token: token.clone(),
            username: String::new(),
        }),
        Message::AdminSetRole(AdminSetRole {
            token,
            username: String::new(),
            role: Role::User,
        }),
    ] {
        let bytes = Frame::reply(1, m).to_vec();
        let e = decode_slice(&bytes).unwrap_err();
        assert_eq!(e.kind.code(), sessiond::protocol::ErrorCode::MalformedFrame);
    }
}
