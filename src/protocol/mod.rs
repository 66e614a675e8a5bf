//! The wire codec for protocol.md, version 1: bytes in, [`Frame`]s out, and back.
//!
//! Owns: the header, every message layout, the error codes, and the rules "incomplete input
//! is not an error" (`Ok(None)`), "an oversized length is refused before buffering" and "a
//! payload must be consumed exactly". It knows nothing of connections, sessions or time:
//! which frame is allowed when is decided in `conn`.
//!
//! One file per message family, each with `decode`, `encode`, `encoded_len` and its hex
//! vectors from protocol.md in `mod tests`.

mod disconnect;
mod error;
mod header;
mod heartbeat;
mod login;
mod logout;
mod manage;
mod push;
mod register;
mod resume;
mod secret;
mod wire;

use bytes::{Buf, BufMut, BytesMut};

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
    AdminListSessions, AdminSetRole, AdminStats, AuditEntry, AuditPage, AuditQuery, ChangePassword,
    Done, ListSessions, LogoutAll, LogoutScope, SessionEntry, SessionList, SessionTarget, Stats,
    UserTarget, MAX_DETAIL, MAX_PAGE, MAX_STAT_NAME,
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

/// Opcodes of version 1 (protocol.md section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    LoginRequest = 0x01,
    LoginSuccess = 0x02,
    LoginFailure = 0x03,
    Heartbeat = 0x04,
    HeartbeatAck = 0x05,
    LogoutRequest = 0x06,
    LogoutSuccess = 0x07,
    DisconnectRequest = 0x08,
    DisconnectAck = 0x09,
    GeneralFailure = 0x0f,
    VerifySession = 0x10,
    SessionValid = 0x11,
    SessionInvalid = 0x12,
    DuplicateSession = 0x13,
    RegisterRequest = 0x20,
    RegisterSuccess = 0x21,
    RegisterFailure = 0x22,
    SessionRevoked = 0x30,
    SessionExpired = 0x31,
    NewLogin = 0x32,
    ServerShutdown = 0x33,
    ListSessions = 0x40,
    SessionList = 0x41,
    RevokeSession = 0x42,
    LogoutAll = 0x43,
    ChangePassword = 0x44,
    Done = 0x45,
    AuditQuery = 0x46,
    AuditPage = 0x47,
    AdminListSessions = 0x50,
    AdminRevokeSession = 0x52,
    AdminLogoutUser = 0x53,
    AdminSuspendUser = 0x54,
    AdminUnsuspendUser = 0x55,
    AdminSetRole = 0x56,
    AdminStats = 0x57,
    Stats = 0x58,
}

impl Opcode {
    pub fn from_u8(v: u8) -> Option<Opcode> {
        Some(match v {
            0x01 => Opcode::LoginRequest,
            0x02 => Opcode::LoginSuccess,
            0x03 => Opcode::LoginFailure,
            0x04 => Opcode::Heartbeat,
            0x05 => Opcode::HeartbeatAck,
            0x06 => Opcode::LogoutRequest,
            0x07 => Opcode::LogoutSuccess,
            0x08 => Opcode::DisconnectRequest,
            0x09 => Opcode::DisconnectAck,
            0x0f => Opcode::GeneralFailure,
            0x10 => Opcode::VerifySession,
            0x11 => Opcode::SessionValid,
            0x12 => Opcode::SessionInvalid,
            0x13 => Opcode::DuplicateSession,
            0x20 => Opcode::RegisterRequest,
            0x21 => Opcode::RegisterSuccess,
            0x22 => Opcode::RegisterFailure,
            0x30 => Opcode::SessionRevoked,
            0x31 => Opcode::SessionExpired,
            0x32 => Opcode::NewLogin,
            0x33 => Opcode::ServerShutdown,
            0x40 => Opcode::ListSessions,
            0x41 => Opcode::SessionList,
            0x42 => Opcode::RevokeSession,
            0x43 => Opcode::LogoutAll,
            0x44 => Opcode::ChangePassword,
            0x45 => Opcode::Done,
            0x46 => Opcode::AuditQuery,
            0x47 => Opcode::AuditPage,
            0x50 => Opcode::AdminListSessions,
            0x52 => Opcode::AdminRevokeSession,
            0x53 => Opcode::AdminLogoutUser,
            0x54 => Opcode::AdminSuspendUser,
            0x55 => Opcode::AdminUnsuspendUser,
            0x56 => Opcode::AdminSetRole,
            0x57 => Opcode::AdminStats,
            0x58 => Opcode::Stats,
            _ => return None,
        })
    }

    /// The name protocol.md uses.
    pub fn name(self) -> &'static str {
        match self {
            Opcode::LoginRequest => "LOGIN_REQUEST",
            Opcode::LoginSuccess => "LOGIN_SUCCESS",
            Opcode::LoginFailure => "LOGIN_FAILURE",
            Opcode::Heartbeat => "HEARTBEAT",
            Opcode::HeartbeatAck => "HEARTBEAT_ACK",
            Opcode::LogoutRequest => "LOGOUT_REQUEST",
            Opcode::LogoutSuccess => "LOGOUT_SUCCESS",
            Opcode::DisconnectRequest => "DISCONNECT_REQUEST",
            Opcode::DisconnectAck => "DISCONNECT_ACK",
            Opcode::GeneralFailure => "GENERAL_FAILURE",
            Opcode::VerifySession => "VERIFY_SESSION",
            Opcode::SessionValid => "SESSION_VALID",
            Opcode::SessionInvalid => "SESSION_INVALID",
            Opcode::DuplicateSession => "DUPLICATE_SESSION",
            Opcode::RegisterRequest => "REGISTER_REQUEST",
            Opcode::RegisterSuccess => "REGISTER_SUCCESS",
            Opcode::RegisterFailure => "REGISTER_FAILURE",
            Opcode::SessionRevoked => "SESSION_REVOKED",
            Opcode::SessionExpired => "SESSION_EXPIRED",
            Opcode::NewLogin => "NEW_LOGIN",
            Opcode::ServerShutdown => "SERVER_SHUTDOWN",
            Opcode::ListSessions => "LIST_SESSIONS",
            Opcode::SessionList => "SESSION_LIST",
            Opcode::RevokeSession => "REVOKE_SESSION",
            Opcode::LogoutAll => "LOGOUT_ALL",
            Opcode::ChangePassword => "CHANGE_PASSWORD",
            Opcode::Done => "DONE",
            Opcode::AuditQuery => "AUDIT_QUERY",
            Opcode::AuditPage => "AUDIT_PAGE",
            Opcode::AdminListSessions => "ADMIN_LIST_SESSIONS",
            Opcode::AdminRevokeSession => "ADMIN_REVOKE_SESSION",
            Opcode::AdminLogoutUser => "ADMIN_LOGOUT_USER",
            Opcode::AdminSuspendUser => "ADMIN_SUSPEND_USER",
            Opcode::AdminUnsuspendUser => "ADMIN_UNSUSPEND_USER",
            Opcode::AdminSetRole => "ADMIN_SET_ROLE",
            Opcode::AdminStats => "ADMIN_STATS",
            Opcode::Stats => "STATS",
        }
    }
}

/// Every message of version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    LoginRequest(LoginRequest),
    LoginSuccess(LoginSuccess),
    LoginFailure(LoginFailure),
    Heartbeat(Heartbeat),
    HeartbeatAck(HeartbeatAck),
    LogoutRequest(LogoutRequest),
    LogoutSuccess(LogoutSuccess),
    DisconnectRequest(DisconnectRequest),
    DisconnectAck(DisconnectAck),
    GeneralFailure(GeneralFailure),
    VerifySession(VerifySession),
    SessionValid(SessionValid),
    SessionInvalid(SessionInvalid),
    DuplicateSession(DuplicateSession),
    RegisterRequest(RegisterRequest),
    RegisterSuccess(RegisterSuccess),
    RegisterFailure(RegisterFailure),
    SessionRevoked(SessionRevoked),
    SessionExpired(SessionExpired),
    NewLogin(NewLogin),
    ServerShutdown(ServerShutdown),
    ListSessions(ListSessions),
    SessionList(SessionList),
    RevokeSession(SessionTarget),
    LogoutAll(LogoutAll),
    ChangePassword(ChangePassword),
    Done(Done),
    AuditQuery(AuditQuery),
    AuditPage(AuditPage),
    AdminListSessions(AdminListSessions),
    AdminRevokeSession(SessionTarget),
    AdminLogoutUser(UserTarget),
    AdminSuspendUser(UserTarget),
    AdminUnsuspendUser(UserTarget),
    AdminSetRole(AdminSetRole),
    AdminStats(AdminStats),
    Stats(Stats),
}

impl Message {
    pub fn opcode(&self) -> Opcode {
        match self {
            Message::LoginRequest(_) => Opcode::LoginRequest,
            Message::LoginSuccess(_) => Opcode::LoginSuccess,
            Message::LoginFailure(_) => Opcode::LoginFailure,
            Message::Heartbeat(_) => Opcode::Heartbeat,
            Message::HeartbeatAck(_) => Opcode::HeartbeatAck,
            Message::LogoutRequest(_) => Opcode::LogoutRequest,
            Message::LogoutSuccess(_) => Opcode::LogoutSuccess,
            Message::DisconnectRequest(_) => Opcode::DisconnectRequest,
            Message::DisconnectAck(_) => Opcode::DisconnectAck,
            Message::GeneralFailure(_) => Opcode::GeneralFailure,
            Message::VerifySession(_) => Opcode::VerifySession,
            Message::SessionValid(_) => Opcode::SessionValid,
            Message::SessionInvalid(_) => Opcode::SessionInvalid,
            Message::DuplicateSession(_) => Opcode::DuplicateSession,
            Message::RegisterRequest(_) => Opcode::RegisterRequest,
            Message::RegisterSuccess(_) => Opcode::RegisterSuccess,
            Message::RegisterFailure(_) => Opcode::RegisterFailure,
            Message::SessionRevoked(_) => Opcode::SessionRevoked,
            Message::SessionExpired(_) => Opcode::SessionExpired,
            Message::NewLogin(_) => Opcode::NewLogin,
            Message::ServerShutdown(_) => Opcode::ServerShutdown,
            Message::ListSessions(_) => Opcode::ListSessions,
            Message::SessionList(_) => Opcode::SessionList,
            Message::RevokeSession(_) => Opcode::RevokeSession,
            Message::LogoutAll(_) => Opcode::LogoutAll,
            Message::ChangePassword(_) => Opcode::ChangePassword,
            Message::Done(_) => Opcode::Done,
            Message::AuditQuery(_) => Opcode::AuditQuery,
            Message::AuditPage(_) => Opcode::AuditPage,
            Message::AdminListSessions(_) => Opcode::AdminListSessions,
            Message::AdminRevokeSession(_) => Opcode::AdminRevokeSession,
            Message::AdminLogoutUser(_) => Opcode::AdminLogoutUser,
            Message::AdminSuspendUser(_) => Opcode::AdminSuspendUser,
            Message::AdminUnsuspendUser(_) => Opcode::AdminUnsuspendUser,
            Message::AdminSetRole(_) => Opcode::AdminSetRole,
            Message::AdminStats(_) => Opcode::AdminStats,
            Message::Stats(_) => Opcode::Stats,
        }
    }

    fn decode(opcode: Opcode, r: &mut Reader<'_>) -> Result<Message, DecodeErrorKind> {
        Ok(match opcode {
            Opcode::LoginRequest => Message::LoginRequest(LoginRequest::decode(r)?),
            Opcode::LoginSuccess => Message::LoginSuccess(LoginSuccess::decode(r)?),
            Opcode::LoginFailure => Message::LoginFailure(LoginFailure::decode(r)?),
            Opcode::Heartbeat => Message::Heartbeat(Heartbeat::decode(r)?),
            Opcode::HeartbeatAck => Message::HeartbeatAck(HeartbeatAck::decode(r)?),
            Opcode::LogoutRequest => Message::LogoutRequest(LogoutRequest::decode(r)?),
            Opcode::LogoutSuccess => Message::LogoutSuccess(LogoutSuccess::decode(r)?),
            Opcode::DisconnectRequest => Message::DisconnectRequest(DisconnectRequest::decode(r)?),
            Opcode::DisconnectAck => Message::DisconnectAck(DisconnectAck::decode(r)?),
            Opcode::GeneralFailure => Message::GeneralFailure(GeneralFailure::decode(r)?),
            Opcode::VerifySession => Message::VerifySession(VerifySession::decode(r)?),
            Opcode::SessionValid => Message::SessionValid(SessionValid::decode(r)?),
            Opcode::SessionInvalid => Message::SessionInvalid(SessionInvalid::decode(r)?),
            Opcode::DuplicateSession => Message::DuplicateSession(DuplicateSession::decode(r)?),
            Opcode::RegisterRequest => Message::RegisterRequest(RegisterRequest::decode(r)?),
            Opcode::RegisterSuccess => Message::RegisterSuccess(RegisterSuccess::decode(r)?),
            Opcode::RegisterFailure => Message::RegisterFailure(RegisterFailure::decode(r)?),
            Opcode::SessionRevoked => Message::SessionRevoked(SessionRevoked::decode(r)?),
            Opcode::SessionExpired => Message::SessionExpired(SessionExpired::decode(r)?),
            Opcode::NewLogin => Message::NewLogin(NewLogin::decode(r)?),
            Opcode::ServerShutdown => Message::ServerShutdown(ServerShutdown::decode(r)?),
            Opcode::ListSessions => Message::ListSessions(ListSessions::decode(r)?),
            Opcode::SessionList => Message::SessionList(SessionList::decode(r)?),
            Opcode::RevokeSession => Message::RevokeSession(SessionTarget::decode(r)?),
            Opcode::LogoutAll => Message::LogoutAll(LogoutAll::decode(r)?),
            Opcode::ChangePassword => Message::ChangePassword(ChangePassword::decode(r)?),
            Opcode::Done => Message::Done(Done::decode(r)?),
            Opcode::AuditQuery => Message::AuditQuery(AuditQuery::decode(r)?),
            Opcode::AuditPage => Message::AuditPage(AuditPage::decode(r)?),
            Opcode::AdminListSessions => Message::AdminListSessions(AdminListSessions::decode(r)?),
            Opcode::AdminRevokeSession => Message::AdminRevokeSession(SessionTarget::decode(r)?),
            Opcode::AdminLogoutUser => Message::AdminLogoutUser(UserTarget::decode(r)?),
            Opcode::AdminSuspendUser => Message::AdminSuspendUser(UserTarget::decode(r)?),
            Opcode::AdminUnsuspendUser => Message::AdminUnsuspendUser(UserTarget::decode(r)?),
            Opcode::AdminSetRole => Message::AdminSetRole(AdminSetRole::decode(r)?),
            Opcode::AdminStats => Message::AdminStats(AdminStats::decode(r)?),
            Opcode::Stats => Message::Stats(Stats::decode(r)?),
        })
    }

    /// Payload bytes (header excluded).
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::LoginRequest(m) => m.encoded_len(),
            Message::LoginSuccess(m) => m.encoded_len(),
            Message::LoginFailure(m) => m.encoded_len(),
            Message::Heartbeat(m) => m.encoded_len(),
            Message::HeartbeatAck(m) => m.encoded_len(),
            Message::LogoutRequest(m) => m.encoded_len(),
            Message::LogoutSuccess(m) => m.encoded_len(),
            Message::DisconnectRequest(m) => m.encoded_len(),
            Message::DisconnectAck(m) => m.encoded_len(),
            Message::GeneralFailure(m) => m.encoded_len(),
            Message::VerifySession(m) => m.encoded_len(),
            Message::SessionValid(m) => m.encoded_len(),
            Message::SessionInvalid(m) => m.encoded_len(),
            Message::DuplicateSession(m) => m.encoded_len(),
            Message::RegisterRequest(m) => m.encoded_len(),
            Message::RegisterSuccess(m) => m.encoded_len(),
            Message::RegisterFailure(m) => m.encoded_len(),
            Message::SessionRevoked(m) => m.encoded_len(),
            Message::SessionExpired(m) => m.encoded_len(),
            Message::NewLogin(m) => m.encoded_len(),
            Message::ServerShutdown(m) => m.encoded_len(),
            Message::ListSessions(m) => m.encoded_len(),
            Message::SessionList(m) => m.encoded_len(),
            Message::RevokeSession(m) => m.encoded_len(),
            Message::LogoutAll(m) => m.encoded_len(),
            Message::ChangePassword(m) => m.encoded_len(),
            Message::Done(m) => m.encoded_len(),
            Message::AuditQuery(m) => m.encoded_len(),
            Message::AuditPage(m) => m.encoded_len(),
            Message::AdminListSessions(m) => m.encoded_len(),
            Message::AdminRevokeSession(m) => m.encoded_len(),
            Message::AdminLogoutUser(m) => m.encoded_len(),
            Message::AdminSuspendUser(m) => m.encoded_len(),
            Message::AdminUnsuspendUser(m) => m.encoded_len(),
            Message::AdminSetRole(m) => m.encoded_len(),
            Message::AdminStats(m) => m.encoded_len(),
            Message::Stats(m) => m.encoded_len(),
        }
    }

    fn encode_payload<B: BufMut>(&self, dst: &mut B) {
        match self {
            Message::LoginRequest(m) => m.encode(dst),
            Message::LoginSuccess(m) => m.encode(dst),
            Message::LoginFailure(m) => m.encode(dst),
            Message::Heartbeat(m) => m.encode(dst),
            Message::HeartbeatAck(m) => m.encode(dst),
            Message::LogoutRequest(m) => m.encode(dst),
            Message::LogoutSuccess(m) => m.encode(dst),
            Message::DisconnectRequest(m) => m.encode(dst),
            Message::DisconnectAck(m) => m.encode(dst),
            Message::GeneralFailure(m) => m.encode(dst),
            Message::VerifySession(m) => m.encode(dst),
            Message::SessionValid(m) => m.encode(dst),
            Message::SessionInvalid(m) => m.encode(dst),
            Message::DuplicateSession(m) => m.encode(dst),
            Message::RegisterRequest(m) => m.encode(dst),
            Message::RegisterSuccess(m) => m.encode(dst),
            Message::RegisterFailure(m) => m.encode(dst),
            Message::SessionRevoked(m) => m.encode(dst),
            Message::SessionExpired(m) => m.encode(dst),
            Message::NewLogin(m) => m.encode(dst),
            Message::ServerShutdown(m) => m.encode(dst),
            Message::ListSessions(m) => m.encode(dst),
            Message::SessionList(m) => m.encode(dst),
            Message::RevokeSession(m) => m.encode(dst),
            Message::LogoutAll(m) => m.encode(dst),
            Message::ChangePassword(m) => m.encode(dst),
            Message::Done(m) => m.encode(dst),
            Message::AuditQuery(m) => m.encode(dst),
            Message::AuditPage(m) => m.encode(dst),
            Message::AdminListSessions(m) => m.encode(dst),
            Message::AdminRevokeSession(m) => m.encode(dst),
            Message::AdminLogoutUser(m) => m.encode(dst),
            Message::AdminSuspendUser(m) => m.encode(dst),
            Message::AdminUnsuspendUser(m) => m.encode(dst),
            Message::AdminSetRole(m) => m.encode(dst),
            Message::AdminStats(m) => m.encode(dst),
            Message::Stats(m) => m.encode(dst),
        }
    }
}

/// One frame: header fields plus the decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub request_id: u32,
    pub flags: Flags,
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

    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        encode_message(self.request_id, self.flags, &self.message, dst);
    }

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
            let request_id = if buf.len() >= 10 {
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

/// Test and tool convenience: decodes exactly one complete frame as a client would (flags
/// allowed, no size limit). Incomplete input is `Truncated`.
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
                password: crate::protocol::Secret::from("p"),
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
