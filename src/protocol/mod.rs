//! The wire codec for protocol.md, version 1: bytes in, [`Frame`]s out, and back.
//!
//! Owns: the header, every message layout, the error codes, and the rules "incomplete input
//! is not an error" (`Ok(None)`), "an oversized length is refused before buffering" and "a
//! payload must be consumed exactly". It knows nothing of connections, sessions or time:
//! which frame is allowed in which state, and whether an error is fatal there, is the
//! engine's one (state, message) match (`engine`, protocol.md section 4).
//!
//! One file per message family, each with `decode`, `encode`, `encoded_len` and its hex
//! vectors from protocol.md in `mod tests`. The opcode table and the wire enums are each
//! declared once (`macros`): a new opcode is one line below plus its codec file.

mod macros;

mod attrs;
mod audit;
mod disconnect;
mod error;
mod header;
mod heartbeat;
mod login;
mod logout;
mod manage;
mod profile;
mod push;
mod register;
mod resume;
mod secret;
mod wire;

use bytes::{Buf, BufMut, BytesMut};

use macros::messages;
pub(crate) use macros::wire_enum;

pub use attrs::{
    AdminSetAttr, AttrGet, AttrRemove, AttrSet, Attrs, MAX_ATTRS, MAX_ATTR_BYTES, MAX_ATTR_KEY,
    MAX_ATTR_VALUE,
};
pub use audit::{
    AuditActor, AuditEntry, AuditPage, AuditQuery, AuditRecord, AuditRecords, AuditSearch,
    MAX_DETAIL, MAX_RECORDS,
};
pub use disconnect::{DisconnectAck, DisconnectReason, DisconnectRequest};
pub use error::{DecodeError, DecodeErrorKind, ErrorCode, GeneralFailure, MAX_MESSAGE};
pub use header::{Flags, Header, DEFAULT_MAX_FRAME, HEADER_LEN, MAGIC, MIN_MAX_FRAME, VERSION};
pub use heartbeat::{Heartbeat, HeartbeatAck};
pub use login::{
    LoginFailure, LoginFailureReason, LoginRequest, LoginSuccess, Role, SessionInfo,
    MAX_DEVICE_FIELD, MAX_PASSWORD, MAX_USERNAME,
};
pub use logout::{LogoutRequest, LogoutSuccess};
pub use manage::{
    AdminListSessions, AdminSetPassword, AdminSetRole, AdminStats, ChangePassword, Done,
    ListSessions, LogoutAll, LogoutScope, SessionEntry, SessionList, SessionTarget, Stats,
    UserTarget, MAX_PAGE, MAX_STAT_NAME,
};
pub use profile::{
    AdminListUsers, AdminSetAppRole, AdminSetProfile, ProfileGet, ProfileSet, UserEntry, UserInfo,
    UserList, MAX_ROLE_NAME,
};
pub use push::{
    ExpiredReason, NewLogin, RevokeReason, ServerShutdown, SessionExpired, SessionRevoked,
    MAX_ADDRESS,
};
pub use register::{
    valid_email, valid_new_username, RegisterFailure, RegisterFailureReason, RegisterRequest,
    RegisterSuccess, MAX_EMAIL, MAX_NEW_USERNAME, MIN_NEW_USERNAME,
};
pub use resume::{DuplicateSession, InvalidReason, SessionInvalid, SessionValid, VerifySession};
pub use secret::Secret;
pub use wire::{put_str, Reader, Token, TOKEN_LEN};

messages! {
    /// 5.1, client: log in with a username and password.
    0x01 "LOGIN_REQUEST" LoginRequest(LoginRequest),
    /// 5.2, server: the login worked; the session's token and facts.
    0x02 "LOGIN_SUCCESS" LoginSuccess(LoginSuccess),
    /// 5.3, server: the login was refused, and why.
    0x03 "LOGIN_FAILURE" LoginFailure(LoginFailure),
    /// 5.4, client: the connection and its session are alive.
    0x04 "HEARTBEAT" Heartbeat(Heartbeat),
    /// 5.5, server: the answer to HEARTBEAT, with the server's time.
    0x05 "HEARTBEAT_ACK" HeartbeatAck(HeartbeatAck),
    /// 5.6, client: end this session for good.
    0x06 "LOGOUT_REQUEST" LogoutRequest(LogoutRequest),
    /// 5.7, server: the session has ended; the connection may log in again.
    0x07 "LOGOUT_SUCCESS" LogoutSuccess(LogoutSuccess),
    /// 5.8, client: close the connection; the session survives.
    0x08 "DISCONNECT_REQUEST" DisconnectRequest(DisconnectRequest),
    /// 5.9, server: the last frame before the server closes, and why.
    0x09 "DISCONNECT_ACK" DisconnectAck(DisconnectAck),
    /// 5.10, server: a request failed (section 6's codes).
    0x0f "GENERAL_FAILURE" GeneralFailure(GeneralFailure),
    /// 5.11, client: resume a session with its token.
    0x10 "VERIFY_SESSION" VerifySession(VerifySession),
    /// 5.12, server: the session is resumed on this connection.
    0x11 "SESSION_VALID" SessionValid(SessionValid),
    /// 5.13, server: the token cannot be resumed, and why.
    0x12 "SESSION_INVALID" SessionInvalid(SessionInvalid),
    /// 5.14, server: the session is in use on another connection.
    0x13 "DUPLICATE_SESSION" DuplicateSession(DuplicateSession),
    /// 5.15, client: create an account.
    0x20 "REGISTER_REQUEST" RegisterRequest(RegisterRequest),
    /// 5.16, server: the account exists now.
    0x21 "REGISTER_SUCCESS" RegisterSuccess(RegisterSuccess),
    /// 5.17, server: the account was not created, and why.
    0x22 "REGISTER_FAILURE" RegisterFailure(RegisterFailure),
    /// 5.18, server push: this connection's session was revoked, by what.
    0x30 "SESSION_REVOKED" SessionRevoked(SessionRevoked),
    /// 5.19, server: this connection's session expired.
    0x31 "SESSION_EXPIRED" SessionExpired(SessionExpired),
    /// 5.20, server push: the account logged in somewhere else.
    0x32 "NEW_LOGIN" NewLogin(NewLogin),
    /// 5.35, server push: the server is shutting down; reconnect and resume.
    0x33 "SERVER_SHUTDOWN" ServerShutdown(ServerShutdown),
    /// 5.46, server: an account's application role and profile (a reply, or a push after
    /// LOGIN_SUCCESS and SESSION_VALID).
    0x34 "USER_INFO" UserInfo(UserInfo),
    /// 5.21, client: the caller's own sessions, one page.
    0x40 "LIST_SESSIONS" ListSessions(ListSessions),
    /// 5.23, server: a page of sessions.
    0x41 "SESSION_LIST" SessionList(SessionList),
    /// 5.22, client: end one of the caller's own sessions.
    0x42 "REVOKE_SESSION" RevokeSession(SessionTarget),
    /// 5.24, client: end the caller's other sessions, or all of them.
    0x43 "LOGOUT_ALL" LogoutAll(LogoutAll),
    /// 5.25, client: change the account's password (ends the other sessions).
    0x44 "CHANGE_PASSWORD" ChangePassword(ChangePassword),
    /// 5.26, server: a management request was carried out.
    0x45 "DONE" Done(Done),
    /// 5.27, client: a page of the audit trail.
    0x46 "AUDIT_QUERY" AuditQuery(AuditQuery),
    /// 5.28, server: audit records.
    0x47 "AUDIT_PAGE" AuditPage(AuditPage),
    /// 5.36, client: a page of the audit trail with typed fields, either way.
    0x48 "AUDIT_SEARCH" AuditSearch(AuditSearch),
    /// 5.37, server: typed audit records.
    0x49 "AUDIT_RECORDS" AuditRecords(AuditRecords),
    /// 5.39, client: set an attribute of this session.
    0x4a "ATTR_SET" AttrSet(AttrSet),
    /// 5.40, client: remove an attribute of this session.
    0x4b "ATTR_REMOVE" AttrRemove(AttrRemove),
    /// 5.41, client: this session's attributes, or one.
    0x4c "ATTR_GET" AttrGet(AttrGet),
    /// 5.42, server: a session's attributes (a reply, or a push after SESSION_VALID).
    0x4d "ATTRS" Attrs(Attrs),
    /// 5.44, client: set or remove an attribute of the caller's profile.
    0x4e "PROFILE_SET" ProfileSet(ProfileSet),
    /// 5.45, client: the caller's application role and profile.
    0x4f "PROFILE_GET" ProfileGet(ProfileGet),
    /// 5.29, admin: every session, or one user's.
    0x50 "ADMIN_LIST_SESSIONS" AdminListSessions(AdminListSessions),
    /// 5.30, admin: end any session.
    0x52 "ADMIN_REVOKE_SESSION" AdminRevokeSession(SessionTarget),
    /// 5.31, admin: end every session of a user.
    0x53 "ADMIN_LOGOUT_USER" AdminLogoutUser(UserTarget),
    /// 5.31, admin: suspend an account (its sessions end; logins fail).
    0x54 "ADMIN_SUSPEND_USER" AdminSuspendUser(UserTarget),
    /// 5.31, admin: lift a suspension.
    0x55 "ADMIN_UNSUSPEND_USER" AdminUnsuspendUser(UserTarget),
    /// 5.32, admin: change an account's role.
    0x56 "ADMIN_SET_ROLE" AdminSetRole(AdminSetRole),
    /// 5.33, admin: the server's counters.
    0x57 "ADMIN_STATS" AdminStats(AdminStats),
    /// 5.34, server: named counters.
    0x58 "STATS" Stats(Stats),
    /// 5.38, admin: set an account's password (its sessions end).
    0x59 "ADMIN_SET_PASSWORD" AdminSetPassword(AdminSetPassword),
    /// 5.43, admin: set or remove an attribute of any session.
    0x5a "ADMIN_SET_ATTR" AdminSetAttr(AdminSetAttr),
    /// 5.47, admin: set or remove an attribute of any account's profile.
    0x5b "ADMIN_SET_PROFILE" AdminSetProfile(AdminSetProfile),
    /// 5.48, admin: an account's application role.
    0x5c "ADMIN_SET_APP_ROLE" AdminSetAppRole(AdminSetAppRole),
    /// 5.49, admin: the accounts, with their roles, a page.
    0x5d "ADMIN_LIST_USERS" AdminListUsers(AdminListUsers),
    /// 5.50, server: a page of accounts.
    0x5e "USER_LIST" UserList(UserList),
}

/// One frame: header fields plus the decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Chosen by the client, echoed in the reply; 0 on a push (protocol.md 2).
    pub request_id: u32,
    /// Header flags.
    pub flags: Flags,
    /// The message; its variant gives the opcode.
    pub message: Message,
}

impl Frame {
    /// A request, or a reply echoing `request_id`, with no flags.
    pub fn reply(request_id: u32, message: Message) -> Frame {
        Frame {
            request_id,
            flags: Flags::NONE,
            message,
        }
    }

    /// A server push: request id 0, `PUSH`, and `FATAL` when the server closes after it.
    pub fn push(message: Message, fatal: bool) -> Frame {
        let flags = if fatal {
            Flags::PUSH | Flags::FATAL
        } else {
            Flags::PUSH
        };
        Frame {
            request_id: 0,
            flags,
            message,
        }
    }

    /// Total encoded size, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.message.encoded_len()
    }

    /// Appends the frame, header and payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        encode_message(self.request_id, self.flags, &self.message, dst);
    }

    /// The encoded frame.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode(&mut v);
        v
    }
}

/// Encodes a frame from its parts without building a [`Frame`] (the server's reply path).
pub fn encode_message<B: BufMut>(request_id: u32, flags: Flags, message: &Message, dst: &mut B) {
    let len = message.encoded_len();
    Header {
        opcode: message.opcode() as u8,
        flags,
        request_id,
        // Every message of this version is far below 4 GiB; encoded_len is bounded by the
        // field maxima.
        length: len as u32,
    }
    .write(dst);
    message.encode_payload(dst);
}

/// What the decoder enforces beyond the layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Maximum frame size, header included.
    pub max_frame: usize,
    /// protocol.md: "A client MUST send `flags = 0`." The server decodes with this set;
    /// clients decode server frames (which carry flags) with it clear.
    pub require_zero_flags: bool,
}

impl DecodeLimits {
    /// For a server decoding client frames.
    pub fn server(max_frame: usize) -> Self {
        DecodeLimits {
            max_frame,
            require_zero_flags: true,
        }
    }

    /// For a client decoding server frames.
    pub fn client(max_frame: usize) -> Self {
        DecodeLimits {
            max_frame,
            require_zero_flags: false,
        }
    }
}

/// Decodes one frame from the front of `buf`.
///
/// - `Ok(None)`: not enough bytes yet; nothing is consumed. When the header is complete,
///   room for the rest of the frame is reserved (bounded by `max_frame`).
/// - `Ok(Some(frame))`: the frame's bytes are consumed.
/// - `Err(e)` with `!e.kind.breaks_framing()`: the frame's bytes are consumed and the next
///   frame can be decoded. With `breaks_framing()`, nothing more can be read.
pub fn decode(buf: &mut BytesMut, limits: DecodeLimits) -> Result<Option<Frame>, DecodeError> {
    match decode_from(buf, limits) {
        Ok(Some((frame, n))) => {
            buf.advance(n);
            Ok(Some(frame))
        }
        Ok(None) => {
            if let Ok(Some(h)) = Header::parse(buf, limits.max_frame) {
                buf.reserve(h.frame_len() - buf.len());
            }
            Ok(None)
        }
        Err((e, n)) => {
            buf.advance(n);
            Err(e)
        }
    }
}

/// Decodes one frame from the front of `buf` without consuming anything: the frame and its
/// length, or `Ok(None)` when incomplete. On error, also says how many bytes the bad frame
/// occupied (0 when framing broke).
#[allow(clippy::type_complexity)]
pub fn decode_from(
    buf: &[u8],
    limits: DecodeLimits,
) -> Result<Option<(Frame, usize)>, (DecodeError, usize)> {
    let header = match Header::parse(buf, limits.max_frame) {
        Ok(Some(h)) => h,
        Ok(None) => return Ok(None),
        Err(kind) => {
            // protocol.md 2: bytes with a wrong magic or version are not a header, so
            // nothing in them is echoed; a header with a bad length is one.
            let request_id = if buf.len() >= 10 && !kind.unreadable_header() {
                u32::from_be_bytes([buf[6], buf[7], buf[8], buf[9]])
            } else {
                0
            };
            let opcode = buf.get(3).copied().unwrap_or(0);
            return Err((
                DecodeError {
                    kind,
                    request_id,
                    opcode,
                },
                0,
            ));
        }
    };
    let frame_len = header.frame_len();
    if buf.len() < frame_len {
        return Ok(None);
    }
    let fail = |kind| {
        Err((
            DecodeError {
                kind,
                request_id: header.request_id,
                opcode: header.opcode,
            },
            frame_len,
        ))
    };
    // protocol.md 2, "Header checks, in order": opcode, then flags, then the payload.
    let Some(opcode) = Opcode::from_u8(header.opcode) else {
        return fail(DecodeErrorKind::UnknownOpcode(header.opcode));
    };
    if limits.require_zero_flags && header.flags != Flags::NONE {
        return fail(DecodeErrorKind::BadFlags);
    }
    let mut r = Reader::new(&buf[HEADER_LEN..frame_len]);
    let message = match Message::decode(opcode, &mut r) {
        Ok(m) => m,
        Err(kind) => return fail(kind),
    };
    // protocol.md 2: "a payload MUST be consumed exactly".
    if let Err(kind) = r.finish() {
        return fail(kind);
    }
    Ok(Some((
        Frame {
            request_id: header.request_id,
            flags: header.flags,
            message,
        },
        frame_len,
    )))
}

/// Test and tool convenience: decodes the complete frame at the front of `buf` as a client
/// would (flags allowed, no size limit), with its length. Incomplete input is `Truncated`.
pub fn decode_slice(buf: &[u8]) -> Result<(Frame, usize), DecodeError> {
    match decode_from(buf, DecodeLimits::client(usize::MAX)) {
        Ok(Some(x)) => Ok(x),
        Ok(None) => Err(DecodeError {
            kind: DecodeErrorKind::Truncated,
            request_id: 0,
            opcode: buf.get(3).copied().unwrap_or(0),
        }),
        Err((e, _)) => Err(e),
    }
}

/// Test helper for the hex vectors: `bytes` decodes to exactly `frame`, and `frame`
/// encodes to exactly `bytes`.
#[cfg(test)]
pub(crate) fn check_vector(bytes: &[u8], frame: Frame) {
    assert_eq!(decode_slice(bytes), Ok((frame.clone(), bytes.len())));
    assert_eq!(frame.to_vec(), bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(id: u32) -> Vec<u8> {
        Frame::reply(
            id,
            Message::Heartbeat(Heartbeat {
                token: Token([7; 32]),
            }),
        )
        .to_vec()
    }

    #[test]
    fn incomplete_input_is_none_and_consumes_nothing() {
        let bytes = heartbeat(1);
        for n in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..n]);
            assert_eq!(
                decode(&mut buf, DecodeLimits::server(4096)),
                Ok(None),
                "{n}"
            );
            assert_eq!(buf.len(), n);
        }
    }

    #[test]
    fn stream_split_at_every_offset_decodes_the_same() {
        let mut stream = Vec::new();
        for id in 1..=5 {
            stream.extend(heartbeat(id));
        }
        stream.extend(Frame::reply(6, Message::DisconnectRequest(DisconnectRequest)).to_vec());
        for split in 0..=stream.len() {
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(chunk);
                while let Some(f) = decode(&mut buf, DecodeLimits::server(4096)).unwrap() {
                    out.push(f.request_id);
                }
            }
            assert_eq!(out, [1, 2, 3, 4, 5, 6], "split at {split}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn oversized_length_is_refused_before_payload_arrives() {
        // 14-byte header announcing 1 MiB: refused at once, nothing reserved
        let hdr = [
            0x53, 0x44, 0x01, 0x04, 0, 0, 0, 0, 0, 1, 0x00, 0x10, 0x00, 0x00,
        ];
        let mut buf = BytesMut::from(&hdr[..]);
        let err = decode(&mut buf, DecodeLimits::server(65_536)).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::FrameTooLarge);
        assert!(err.kind.breaks_framing());
        assert_eq!(err.request_id, 1);
        assert!(buf.capacity() < 65_536);
    }

    #[test]
    fn payload_errors_skip_the_frame_and_keep_framing() {
        let mut stream = Vec::new();
        // unknown opcode 0x7e with a 3-byte payload
        stream.extend([
            0x53, 0x44, 0x01, 0x7e, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3, 1, 2, 3,
        ]);
        stream.extend(heartbeat(10));
        let mut buf = BytesMut::from(&stream[..]);
        let lim = DecodeLimits::server(4096);
        let e = decode(&mut buf, lim).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::UnknownOpcode(0x7e));
        assert_eq!((e.request_id, e.opcode), (9, 0x7e));
        assert!(!e.kind.breaks_framing());
        assert_eq!(decode(&mut buf, lim).unwrap().unwrap().request_id, 10);
    }

    #[test]
    fn client_flags_are_refused_by_the_server_only() {
        let mut bytes = heartbeat(3);
        bytes[5] = 0x02;
        let e = decode(&mut BytesMut::from(&bytes[..]), DecodeLimits::server(4096)).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::BadFlags);
        let f = decode(&mut BytesMut::from(&bytes[..]), DecodeLimits::client(4096)).unwrap();
        assert_eq!(f.unwrap().flags, Flags::PUSH);
    }

    #[test]
    fn every_opcode_round_trips() {
        let msgs = [
            Message::LoginRequest(LoginRequest {
                username: "u".into(),
                password: Secret::from("p"),
                client: String::new(),
                platform: "p".into(),
            }),
            Message::LoginFailure(LoginFailure {
                reason: LoginFailureReason::ServerBusy,
                retry_after_ms: 250,
                message: "busy".into(),
            }),
            Message::HeartbeatAck(HeartbeatAck { server_time: 1 }),
            Message::LogoutRequest(LogoutRequest {
                token: Token([1; 32]),
            }),
            Message::LogoutSuccess(LogoutSuccess { session_id: 9 }),
            Message::DisconnectAck(DisconnectAck {
                reason: DisconnectReason::LoginTimeout,
            }),
            Message::GeneralFailure(GeneralFailure::new(ErrorCode::Other(0x77), "x")),
        ];
        for m in msgs {
            let f = Frame::reply(42, m);
            let bytes = f.to_vec();
            assert_eq!(bytes.len(), f.encoded_len());
            assert_eq!(decode_slice(&bytes), Ok((f.clone(), bytes.len())));
        }
    }
}
