//! protocol.md is the contract: every ```` ```hex example=NAME ```` block in it is decoded
//! by the codec, compared with the message the spec describes, and encoded back to the same
//! bytes. A block without an expectation here, or an expectation without a block, fails.

mod common;

use std::collections::BTreeMap;

use common::spec::examples;

use sessiond::protocol::{
    decode_slice, DisconnectAck, DisconnectReason, DisconnectRequest, DuplicateSession, ErrorCode,
    ExpiredReason, Flags, Frame, GeneralFailure, Heartbeat, HeartbeatAck, InvalidReason,
    LoginFailure, LoginFailureReason, LoginRequest, LoginSuccess, LogoutRequest, LogoutSuccess,
    Message, RegisterFailure, RegisterFailureReason, RegisterRequest, RegisterSuccess,
    RevokeReason, Role, SessionExpired, SessionInfo, SessionInvalid, SessionRevoked, SessionValid,
    Token, VerifySession,
};
use sessiond::protocol::{
    AdminListSessions, AdminSetAttr, AdminSetPassword, AdminSetRole, AdminStats, AttrGet,
    AttrRemove, AttrSet, Attrs, AuditActor, AuditEntry, AuditPage, AuditQuery, AuditRecord,
    AuditRecords, AuditSearch, ChangePassword, Done, ListSessions, LogoutAll, LogoutScope,
    NewLogin, ServerShutdown, SessionEntry, SessionList, SessionTarget, Stats, UserTarget,
};
use sessiond::protocol::{
    AdminListUsers, AdminSetAppRole, AdminSetProfile, ProfileGet, ProfileSet, UserEntry, UserInfo,
    UserList,
};

fn token() -> Token {
    Token(core::array::from_fn(|i| i as u8))
}

/// The session of the examples: alice (user 2), session 7, created at `created` and
/// expiring 24 h after it (the default lifetime).
fn info(last_login: u64, created: u64) -> SessionInfo {
    SessionInfo {
        session_id: 7,
        user_id: 2,
        role: Role::User,
        username: "alice".into(),
        user_created: 1_767_225_600_000,
        last_login,
        session_created: created,
        session_expires: created + 86_400_000,
        idle_expiry_ms: 1_800_000,
        heartbeat_interval_ms: 5_000,
        heartbeat_timeout_ms: 15_000,
    }
}

fn expected() -> BTreeMap<&'static str, Frame> {
    let mut m = BTreeMap::new();
    m.insert(
        "login_request",
        Frame::reply(
            1,
            Message::LoginRequest(LoginRequest {
                username: "alice".into(),
                password: "pa;ss".into(),
                client: "cli".into(),
                platform: "linux".into(),
            }),
        ),
    );
    m.insert(
        "login_success",
        Frame::reply(
            1,
            Message::LoginSuccess(LoginSuccess {
                token: token(),
                session: info(0, 1_767_225_600_000),
            }),
        ),
    );
    m.insert(
        "login_failure",
        Frame::reply(
            1,
            Message::LoginFailure(LoginFailure {
                reason: LoginFailureReason::InvalidCredentials,
                retry_after_ms: 0,
                message: "invalid username or password".into(),
            }),
        ),
    );
    m.insert(
        "heartbeat",
        Frame::reply(2, Message::Heartbeat(Heartbeat { token: token() })),
    );
    m.insert(
        "heartbeat_ack",
        Frame::reply(
            2,
            Message::HeartbeatAck(HeartbeatAck {
                server_time: 1_767_225_605_000,
            }),
        ),
    );
    m.insert(
        "logout_request",
        Frame::reply(3, Message::LogoutRequest(LogoutRequest { token: token() })),
    );
    m.insert(
        "logout_success",
        Frame::reply(3, Message::LogoutSuccess(LogoutSuccess { session_id: 7 })),
    );
    m.insert(
        "disconnect_request",
        Frame::reply(4, Message::DisconnectRequest(DisconnectRequest)),
    );
    m.insert(
        "disconnect_ack",
        Frame {
            request_id: 4,
            flags: Flags::FATAL,
            message: Message::DisconnectAck(DisconnectAck {
                reason: DisconnectReason::ClientRequest,
            }),
        },
    );
    m.insert(
        "disconnect_ack_idle",
        Frame::push(
            Message::DisconnectAck(DisconnectAck {
                reason: DisconnectReason::IdleTimeout,
            }),
            true,
        ),
    );
    m.insert(
        "general_failure",
        Frame::reply(
            5,
            Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::InvalidToken,
                "unknown token",
            )),
        ),
    );
    m.insert(
        "general_failure_fatal",
        Frame {
            request_id: 9,
            flags: Flags::FATAL,
            message: Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::AuthRequired,
                "log in first",
            )),
        },
    );
    m.insert(
        "general_failure_too_many_errors",
        Frame::push(
            Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::TooManyErrors,
                "too many errors in a row",
            )),
            true,
        ),
    );
    m.insert(
        "general_failure_tls_required",
        Frame::push(
            Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::TlsRequired,
                "this port speaks TLS: connect with TLS",
            )),
            true,
        ),
    );
    m.insert(
        "general_failure_bad_magic",
        Frame::push(
            Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::BadMagic,
                "bad magic: not a sessiond frame",
            )),
            true,
        ),
    );
    m.insert(
        "general_failure_too_large",
        Frame {
            request_id: 1,
            flags: Flags::FATAL,
            message: Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::FrameTooLarge,
                "frame too large",
            )),
        },
    );
    m.insert(
        "verify_session",
        Frame::reply(
            1,
            Message::VerifySession(VerifySession {
                token: token(),
                client: "cli".into(),
                platform: "linux".into(),
            }),
        ),
    );
    m.insert(
        "session_valid",
        Frame::reply(
            1,
            Message::SessionValid(SessionValid {
                session: info(1_767_229_200_000, 1_767_229_200_000),
            }),
        ),
    );
    m.insert(
        "session_invalid",
        Frame::reply(
            1,
            Message::SessionInvalid(SessionInvalid {
                reason: InvalidReason::Revoked,
                message: "session revoked".into(),
            }),
        ),
    );
    m.insert(
        "duplicate_session",
        Frame {
            request_id: 1,
            flags: Flags::FATAL,
            message: Message::DuplicateSession(DuplicateSession {
                session_id: 7,
                message: "session is in use on another connection".into(),
            }),
        },
    );
    m.insert(
        "register_request",
        Frame::reply(
            1,
            Message::RegisterRequest(RegisterRequest {
                username: "carol".into(),
                password: "s3cret;pass".into(),
                email: "carol@example.org".into(),
            }),
        ),
    );
    m.insert(
        "register_success",
        Frame::reply(
            1,
            Message::RegisterSuccess(RegisterSuccess {
                user_id: 3,
                username: "carol".into(),
            }),
        ),
    );
    m.insert(
        "register_failure",
        Frame::reply(
            1,
            Message::RegisterFailure(RegisterFailure {
                reason: RegisterFailureReason::UsernameTaken,
                message: "username taken".into(),
            }),
        ),
    );
    m.insert(
        "session_revoked",
        Frame::push(
            Message::SessionRevoked(SessionRevoked {
                session_id: 7,
                reason: RevokeReason::NewLogin,
                by_client: "phone".into(),
                by_platform: "android".into(),
                by_address: "192.0.2.7:51000".into(),
                at: 1_767_229_200_000,
            }),
            true,
        ),
    );
    m.insert(
        "session_expired",
        Frame::push(
            Message::SessionExpired(SessionExpired {
                session_id: 7,
                reason: ExpiredReason::Idle,
            }),
            true,
        ),
    );
    m.insert(
        "login_failure_storage",
        Frame::reply(
            1,
            Message::LoginFailure(LoginFailure {
                reason: LoginFailureReason::StorageUnavailable,
                retry_after_ms: 1000,
                message: "storage unavailable; retry in 1000 ms".into(),
            }),
        ),
    );
    m.insert(
        "general_failure_storage",
        Frame::reply(
            2,
            Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::StorageUnavailable,
                "storage unavailable; retry in 1000 ms",
            )),
        ),
    );
    m.insert(
        "login_failure_throttled",
        Frame::reply(
            1,
            Message::LoginFailure(LoginFailure {
                reason: LoginFailureReason::Throttled,
                retry_after_ms: 2000,
                message: "too many attempts; retry later".into(),
            }),
        ),
    );
    m.insert(
        "new_login",
        Frame::push(
            Message::NewLogin(NewLogin {
                session_id: 8,
                client: "phone".into(),
                platform: "android".into(),
                address: "192.0.2.7:51000".into(),
                at: T0 + 3_600_000,
            }),
            false,
        ),
    );
    m.insert(
        "list_sessions",
        Frame::reply(
            1,
            Message::ListSessions(ListSessions {
                token: token(),
                offset: 0,
                limit: 20,
            }),
        ),
    );
    m.insert(
        "session_list",
        Frame::reply(
            1,
            Message::SessionList(SessionList {
                total: 1,
                sessions: vec![SessionEntry {
                    session_id: 7,
                    current: true,
                    connected: true,
                    user_id: 2,
                    username: "alice".into(),
                    client: "cli".into(),
                    platform: "linux".into(),
                    address: "192.0.2.1:40000".into(),
                    created: T0,
                    last_active: T0 + 60_000,
                    expires: T0 + 86_400_000,
                }],
            }),
        ),
    );
    m.insert(
        "revoke_session",
        Frame::reply(
            1,
            Message::RevokeSession(SessionTarget {
                token: token(),
                session_id: 8,
            }),
        ),
    );
    m.insert(
        "logout_all",
        Frame::reply(
            1,
            Message::LogoutAll(LogoutAll {
                token: token(),
                scope: LogoutScope::Others,
            }),
        ),
    );
    m.insert(
        "change_password",
        Frame::reply(
            1,
            Message::ChangePassword(ChangePassword {
                token: token(),
                old: "pa;ss".into(),
                new: "new pass;word".into(),
            }),
        ),
    );
    m.insert("done", Frame::reply(1, Message::Done(Done { affected: 2 })));
    m.insert(
        "audit_query",
        Frame::reply(
            1,
            Message::AuditQuery(AuditQuery {
                token: token(),
                username: String::new(),
                kind: 0,
                from: T0,
                to: 0,
                cursor: 0,
                limit: 50,
            }),
        ),
    );
    m.insert(
        "audit_page",
        Frame::reply(
            1,
            Message::AuditPage(AuditPage {
                next_cursor: 0,
                entries: vec![AuditEntry {
                    seq: 1,
                    at: T0,
                    kind: 1,
                    user_id: 2,
                    username: "alice".into(),
                    session_id: 7,
                    address: "192.0.2.1:40000".into(),
                    detail: "cli linux".into(),
                }],
            }),
        ),
    );
    m.insert(
        "audit_search",
        Frame::reply(
            1,
            Message::AuditSearch(AuditSearch {
                query: AuditQuery {
                    token: token(),
                    username: String::new(),
                    kind: 0,
                    from: 0,
                    to: 0,
                    cursor: 0,
                    limit: 10,
                },
                newest_first: true,
            }),
        ),
    );
    m.insert(
        "audit_records",
        Frame::reply(
            1,
            Message::AuditRecords(AuditRecords {
                next_cursor: 12,
                records: vec![AuditRecord {
                    seq: 12,
                    at: T0 + 3_600_000,
                    kind: 7,
                    reason: 1,
                    user_id: 2,
                    username: "alice".into(),
                    session_id: 7,
                    address: "192.0.2.1:40000".into(),
                    client: "cli".into(),
                    platform: "linux".into(),
                    actor: AuditActor {
                        user_id: 2,
                        username: "alice".into(),
                        session_id: 8,
                        address: "192.0.2.7:51000".into(),
                        client: "phone".into(),
                        platform: "android".into(),
                    },
                    note: "NEW_LOGIN".into(),
                }],
            }),
        ),
    );
    m.insert(
        "attr_set",
        Frame::reply(
            1,
            Message::AttrSet(AttrSet {
                token: token(),
                key: "game".into(),
                value: b"456".to_vec(),
            }),
        ),
    );
    m.insert(
        "attr_remove",
        Frame::reply(
            1,
            Message::AttrRemove(AttrRemove {
                token: token(),
                key: "game".into(),
            }),
        ),
    );
    m.insert(
        "attr_get",
        Frame::reply(
            1,
            Message::AttrGet(AttrGet {
                token: token(),
                key: String::new(),
            }),
        ),
    );
    m.insert(
        "attrs_push",
        Frame::push(
            Message::Attrs(Attrs {
                session_id: 7,
                attrs: vec![("game".into(), b"456".to_vec())],
            }),
            false,
        ),
    );
    m.insert(
        "admin_set_attr",
        Frame::reply(
            1,
            Message::AdminSetAttr(AdminSetAttr {
                token: token(),
                session_id: 7,
                key: "game".into(),
                remove: false,
                value: b"457".to_vec(),
            }),
        ),
    );
    m.insert(
        "general_failure_limit",
        Frame::reply(
            1,
            Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::LimitExceeded,
                "a session holds at most 64 attributes",
            )),
        ),
    );
    m.insert(
        "profile_set",
        Frame::reply(
            1,
            Message::ProfileSet(ProfileSet {
                token: token(),
                key: "display_name".into(),
                remove: false,
                value: "Alice A.".into(),
            }),
        ),
    );
    m.insert(
        "profile_get",
        Frame::reply(
            1,
            Message::ProfileGet(ProfileGet {
                token: token(),
                key: String::new(),
            }),
        ),
    );
    m.insert(
        "user_info_push",
        Frame::push(
            Message::UserInfo(UserInfo {
                user_id: 2,
                app_role: "educator".into(),
                profile: vec![("display_name".into(), "Alice A.".into())],
            }),
            false,
        ),
    );
    m.insert(
        "admin_set_profile",
        Frame::reply(
            1,
            Message::AdminSetProfile(AdminSetProfile {
                token: token(),
                username: "alice".into(),
                key: "display_name".into(),
                remove: false,
                value: "Alice A.".into(),
            }),
        ),
    );
    m.insert(
        "admin_set_app_role",
        Frame::reply(
            1,
            Message::AdminSetAppRole(AdminSetAppRole {
                token: token(),
                username: "alice".into(),
                role: "educator".into(),
            }),
        ),
    );
    m.insert(
        "admin_list_users",
        Frame::reply(
            1,
            Message::AdminListUsers(AdminListUsers {
                token: token(),
                offset: 0,
                limit: 0,
            }),
        ),
    );
    m.insert(
        "user_list",
        Frame::reply(
            1,
            Message::UserList(UserList {
                total: 1,
                users: vec![UserEntry {
                    user_id: 2,
                    username: "alice".into(),
                    role: Role::User,
                    app_role: "educator".into(),
                    suspended: false,
                    created: T0,
                    last_login: T0 + 3_600_000,
                }],
            }),
        ),
    );
    m.insert(
        "admin_list_sessions",
        Frame::reply(
            1,
            Message::AdminListSessions(AdminListSessions {
                token: token(),
                username: "alice".into(),
                offset: 0,
                limit: 0,
            }),
        ),
    );
    m.insert(
        "admin_revoke_session",
        Frame::reply(
            1,
            Message::AdminRevokeSession(SessionTarget {
                token: token(),
                session_id: 7,
            }),
        ),
    );
    let alice = || UserTarget {
        token: token(),
        username: "alice".into(),
    };
    m.insert(
        "admin_logout_user",
        Frame::reply(1, Message::AdminLogoutUser(alice())),
    );
    m.insert(
        "admin_suspend_user",
        Frame::reply(1, Message::AdminSuspendUser(alice())),
    );
    m.insert(
        "admin_unsuspend_user",
        Frame::reply(1, Message::AdminUnsuspendUser(alice())),
    );
    m.insert(
        "admin_set_role",
        Frame::reply(
            1,
            Message::AdminSetRole(AdminSetRole {
                token: token(),
                username: "alice".into(),
                role: Role::Admin,
            }),
        ),
    );
    m.insert(
        "admin_set_password",
        Frame::reply(
            1,
            Message::AdminSetPassword(AdminSetPassword {
                token: token(),
                username: "alice".into(),
                password: "n3w;pass wd".into(),
            }),
        ),
    );
    m.insert(
        "admin_stats",
        Frame::reply(1, Message::AdminStats(AdminStats { token: token() })),
    );
    m.insert(
        "stats",
        Frame::reply(
            1,
            Message::Stats(Stats {
                values: vec![("connections".into(), 12), ("sessions_live".into(), 40)],
            }),
        ),
    );
    m.insert(
        "server_shutdown",
        Frame::push(
            Message::ServerShutdown(ServerShutdown {
                reconnect_after_ms: 1000,
                message: "server shutting down; sessions survive: reconnect and resume".into(),
            }),
            false,
        ),
    );
    m.insert(
        "server_busy",
        Frame::push(
            Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::ServerBusy,
                "server full: too many connections",
            )),
            true,
        ),
    );
    m
}

/// 2026-01-01T00:00:00Z, the examples' clock.
const T0: u64 = 1_767_225_600_000;

#[test]
fn every_example_in_protocol_md_decodes_and_encodes_exactly() {
    // The WebSocket examples wrap frame examples: `websocket_examples_wrap_the_frames`.
    let ex: BTreeMap<_, _> = examples()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("ws_"))
        .collect();
    let want = expected();
    assert_eq!(
        ex.keys().map(String::as_str).collect::<Vec<_>>(),
        want.keys().copied().collect::<Vec<_>>(),
        "examples in protocol.md and expectations here differ"
    );
    for (name, bytes) in &ex {
        let frame = &want[name.as_str()];
        let (got, n) = decode_slice(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(n, bytes.len(), "{name}: length");
        assert_eq!(&got, frame, "{name}: decoded");
        assert_eq!(&frame.to_vec(), bytes, "{name}: encoded");
    }
}

/// protocol.md "WebSocket transport": each `ws_NAME` example is one final binary
/// WebSocket frame (masked from the client, unmasked from the server) whose payload is the
/// frame example `NAME`, byte for byte.
#[test]
fn websocket_examples_wrap_the_frames() {
    let ex = examples();
    let mut seen = 0;
    for (name, bytes) in ex.iter().filter(|(n, _)| n.starts_with("ws_")) {
        let inner = &ex[name.trim_start_matches("ws_")];
        assert_eq!(bytes[0], 0x82, "{name}: final binary frame");
        let masked = bytes[1] & 0x80 != 0;
        let len = usize::from(bytes[1] & 0x7f);
        assert!(len < 126 && len == inner.len(), "{name}: length {len}");
        let payload: Vec<u8> = if masked {
            let mask = &bytes[2..6];
            assert_eq!(bytes.len(), 6 + len, "{name}");
            bytes[6..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect()
        } else {
            assert_eq!(bytes.len(), 2 + len, "{name}");
            bytes[2..].to_vec()
        };
        assert_eq!(&payload, inner, "{name}");
        let (frame, _) = decode_slice(&payload).unwrap();
        // The client masks (its HEARTBEAT), the server does not (the answer).
        let from_client = matches!(frame.message, Message::Heartbeat(_));
        assert_eq!(masked, from_client, "{name}: masking");
        seen += 1;
    }
    assert_eq!(seen, 2, "the heartbeat and its answer");
}

#[test]
fn every_opcode_in_the_spec_table_is_known_to_the_codec() {
    use sessiond::protocol::Opcode;
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    let mut seen = 0;
    for line in spec.lines() {
        // rows like "| `0x01` | LOGIN_REQUEST | client -> server | 5.1 |"
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // opcodes have two hex digits (`0x01`); reason and error codes have four
        if cells.len() < 5 || !cells[1].starts_with("`0x") || cells[1].len() != 6 {
            continue;
        }
        let Ok(code) = u8::from_str_radix(cells[1].trim_matches('`').trim_start_matches("0x"), 16)
        else {
            continue;
        };
        let name = cells[2].split_whitespace().next().unwrap_or("");
        if name == "(never" {
            assert!(Opcode::from_u8(code).is_none());
            continue;
        }
        let op = Opcode::from_u8(code).unwrap_or_else(|| panic!("0x{code:02x} {name} unknown"));
        assert_eq!(op.name(), name, "opcode 0x{code:02x}");
        seen += 1;
    }
    assert_eq!(seen, 52, "opcodes found in the table");
    assert_eq!(
        seen,
        Opcode::ALL.len(),
        "the codec knows opcodes the table lacks"
    );
}

#[test]
fn every_error_code_in_the_spec_table_matches_the_codec() {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    let section = spec
        .split("## 6. Error codes")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let mut seen = 0;
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with("`0x") || cells[1].contains('-') {
            continue;
        }
        let code =
            u16::from_str_radix(cells[1].trim_matches('`').trim_start_matches("0x"), 16).unwrap();
        let name = cells[2].trim_matches('`');
        assert_eq!(ErrorCode::from_u16(code).name(), name, "code 0x{code:04x}");
        seen += 1;
    }
    assert_eq!(seen, 23);
    assert_eq!(
        seen,
        ErrorCode::ALL.len(),
        "the codec knows codes the table lacks"
    );
}

/// The section of protocol.md under the heading that starts with `heading`.
fn section(spec: &str, heading: &str) -> String {
    let start = spec
        .find(&format!("\n### {heading}"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    let rest = &spec[start + 1..];
    let end = rest[4..].find("\n#").map_or(rest.len(), |i| i + 4);
    rest[..end].to_owned()
}

/// Every reason the codec knows is in its message's section with the same value and name,
/// and the section names no value the codec lacks (a row `| `0xNNNN` | `NAME` | ...` or,
/// inline, `` `0xNNNN` `NAME` ``).
#[test]
fn every_reason_table_in_the_spec_matches_the_codec() {
    use sessiond::protocol::{
        DisconnectReason, ExpiredReason, InvalidReason, LoginFailureReason, RegisterFailureReason,
        RevokeReason,
    };
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    let tables: [(&str, Vec<(u16, &str)>); 6] = [
        (
            "5.3 ",
            LoginFailureReason::ALL
                .iter()
                .map(|r| (r.to_u16(), r.name()))
                .collect(),
        ),
        (
            "5.9 ",
            DisconnectReason::ALL
                .iter()
                .map(|r| (r.to_u16(), r.name()))
                .collect(),
        ),
        (
            "5.13 ",
            InvalidReason::ALL
                .iter()
                .map(|r| (r.to_u16(), r.name()))
                .collect(),
        ),
        (
            "5.17 ",
            RegisterFailureReason::ALL
                .iter()
                .map(|r| (r.to_u16(), r.name()))
                .collect(),
        ),
        (
            "5.18 ",
            RevokeReason::ALL
                .iter()
                .map(|r| (r.to_u16(), r.name()))
                .collect(),
        ),
        (
            "5.19 ",
            ExpiredReason::ALL
                .iter()
                .map(|r| (r.to_u16(), r.name()))
                .collect(),
        ),
    ];
    for (heading, known) in tables {
        let text = section(&spec, heading);
        let flat = text.replace("` | `", "` `");
        for (value, name) in &known {
            let pair = format!("`0x{value:04x}` `{name}`");
            assert!(flat.contains(&pair), "section {heading}lacks {pair}");
        }
        // every `0xNNNN` `NAME` pair the section states (ranges such as reserved ones are
        // written `0xNNNN`-`0xNNNN` and are not pairs)
        let pairs: Vec<(u16, &str)> = flat
            .split("`0x")
            .skip(1)
            .filter_map(|t| {
                let (hex, rest) = t.split_at_checked(4)?;
                let name = rest.strip_prefix("` `")?.split('`').next()?;
                Some((u16::from_str_radix(hex, 16).ok()?, name))
            })
            .collect();
        assert!(!pairs.is_empty(), "section {heading}has no reason table");
        for (v, name) in pairs {
            assert!(
                known.contains(&(v, name)),
                "section {heading}names 0x{v:04x} {name}, which the codec does not know"
            );
        }
    }
}
