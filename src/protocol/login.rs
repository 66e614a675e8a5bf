//! The login family (protocol.md 5.1 to 5.3): LOGIN_REQUEST, LOGIN_SUCCESS, LOGIN_FAILURE.

use bytes::BufMut;

use super::error::{DecodeErrorKind, MAX_MESSAGE};
use super::macros::wire_enum;
use super::secret::Secret;
use super::wire::{put_str, str_len, Reader, Token, TOKEN_LEN};

/// protocol.md 3: "username: 1 to 64 bytes of UTF-8".
pub const MAX_USERNAME: usize = 64;
/// protocol.md 3: "password: 0 to 1,024 bytes of UTF-8".
pub const MAX_PASSWORD: usize = 1024;
/// protocol.md 5.1: `client` and `platform` are 0..=64 bytes.
pub const MAX_DEVICE_FIELD: usize = 64;

wire_enum! {
    /// An account's role (protocol.md 5.2 `role`). protocol.md 5.2: "other values MUST
    /// be rejected as MALFORMED_FRAME" (`from_u8` is None for them).
    pub closed enum Role: u8, to_u8, from_u8 {
        /// An ordinary account: its own sessions and events.
        User = 0 => "user",
        /// May also use the ADMIN_* requests.
        Admin = 1 => "admin",
    }
}

/// LOGIN_REQUEST (0x01). `Debug` redacts the password (through [`Secret`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// Account name (1..=64 bytes).
    pub username: String,
    /// The password, exactly as typed (0..=1024 bytes).
    pub password: Secret,
    /// Device: client program name and version, may be empty (0..=64 bytes).
    pub client: String,
    /// Device: platform, may be empty (0..=64 bytes).
    pub platform: String,
}

impl LoginRequest {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let username = r.string(MAX_USERNAME)?;
        // protocol.md 3: a username is "1 to 64 bytes".
        if username.is_empty() {
            return Err(DecodeErrorKind::InvalidValue);
        }
        let username = username.to_owned();
        let password = Secret::decode(r)?;
        let client = r.string(MAX_DEVICE_FIELD)?.to_owned();
        let platform = r.string(MAX_DEVICE_FIELD)?.to_owned();
        Ok(LoginRequest {
            username,
            password,
            client,
            platform,
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        str_len(&self.username, MAX_USERNAME)
            + self.password.encoded_len()
            + str_len(&self.client, MAX_DEVICE_FIELD)
            + str_len(&self.platform, MAX_DEVICE_FIELD)
    }

    /// Appends the payload.
    ///
    /// Callers check `username` and `password` against their limits first (the client does,
    /// in `LoginRequest::check`); fields past their limit would be cut.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        put_str(dst, &self.username, MAX_USERNAME);
        self.password.encode(dst);
        put_str(dst, &self.client, MAX_DEVICE_FIELD);
        put_str(dst, &self.platform, MAX_DEVICE_FIELD);
    }

    /// The limits of protocol.md 3 and 5.1, for clients to check user input before sending.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.username.is_empty() || self.username.len() > MAX_USERNAME {
            return Err("username must be 1 to 64 bytes");
        }
        if self.password.len() > MAX_PASSWORD {
            return Err("password must be at most 1024 bytes");
        }
        if std::str::from_utf8(self.password.as_bytes()).is_err() {
            return Err("password must be valid UTF-8");
        }
        if self.client.len() > MAX_DEVICE_FIELD || self.platform.len() > MAX_DEVICE_FIELD {
            return Err("client and platform must be at most 64 bytes each");
        }
        Ok(())
    }
}

/// What the server tells a client about its session and account, in LOGIN_SUCCESS after
/// the token and as the whole of SESSION_VALID (protocol.md 5.2 and 5.12). Times are Unix
/// milliseconds, durations milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Public id of the session (not a secret).
    pub session_id: u64,
    /// The account's id.
    pub user_id: u64,
    /// The account's role.
    pub role: Role,
    /// Account name (1..=64 bytes).
    pub username: String,
    /// When the account was created (Unix ms).
    pub user_created: u64,
    /// The account's previous successful login, 0 if none (Unix ms). In SESSION_VALID: its
    /// last one (the one that created this session, or a later one).
    pub last_login: u64,
    /// When the session was created, by its login (Unix ms).
    pub session_created: u64,
    /// Absolute expiry: the session ends then whatever happens (Unix ms).
    pub session_expires: u64,
    /// The session ends after this long without any valid request (millis).
    pub idle_expiry_ms: u32,
    /// Send a HEARTBEAT this often (millis).
    pub heartbeat_interval_ms: u32,
    /// The server closes the connection after this long without a valid frame (millis).
    pub heartbeat_timeout_ms: u32,
}

impl SessionInfo {
    /// Decodes the block; `Err` on a short or malformed block. Leftover bytes are for
    /// [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(SessionInfo {
            session_id: r.u64()?,
            user_id: r.u64()?,
            role: Role::from_u8(r.u8()?).ok_or(DecodeErrorKind::InvalidValue)?,
            username: r.string(MAX_USERNAME)?.to_owned(),
            user_created: r.u64()?,
            last_login: r.u64()?,
            session_created: r.u64()?,
            session_expires: r.u64()?,
            idle_expiry_ms: r.u32()?,
            heartbeat_interval_ms: r.u32()?,
            heartbeat_timeout_ms: r.u32()?,
        })
    }

    /// Block bytes.
    pub fn encoded_len(&self) -> usize {
        8 + 8 + 1 + str_len(&self.username, MAX_USERNAME) + 8 * 4 + 4 * 3
    }

    /// Appends the block.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.session_id);
        dst.put_u64(self.user_id);
        dst.put_u8(self.role.to_u8());
        put_str(dst, &self.username, MAX_USERNAME);
        dst.put_u64(self.user_created);
        dst.put_u64(self.last_login);
        dst.put_u64(self.session_created);
        dst.put_u64(self.session_expires);
        dst.put_u32(self.idle_expiry_ms);
        dst.put_u32(self.heartbeat_interval_ms);
        dst.put_u32(self.heartbeat_timeout_ms);
    }
}

/// LOGIN_SUCCESS (0x02): `token` then [`SessionInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSuccess {
    /// The session token; send it in every later request.
    pub token: Token,
    /// The session info block.
    pub session: SessionInfo,
}

impl LoginSuccess {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(LoginSuccess {
            token: r.token()?,
            session: SessionInfo::decode(r)?,
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + self.session.encoded_len()
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        self.session.encode(dst);
    }
}

wire_enum! {
    /// LOGIN_FAILURE reasons (protocol.md 5.3).
    pub open enum LoginFailureReason: u16, to_u16, from_u16, unknown "UNKNOWN_REASON" {
        /// Unknown user or wrong password (the server does not say which).
        InvalidCredentials = 0x0001 => "INVALID_CREDENTIALS",
        /// The hash queue is full; `retry_after_ms` says when to come back.
        ServerBusy = 0x0002 => "SERVER_BUSY",
        /// `max_sessions_per_user` reached and the server is set to `on_limit = reject_new`.
        SessionLimit = 0x0003 => "SESSION_LIMIT",
        /// An administrator suspended the account.
        Suspended = 0x0004 => "SUSPENDED",
        /// The account reached its daily login limit (UTC day).
        DailyLimit = 0x0005 => "DAILY_LIMIT",
        /// Too many attempts (for this account or from this address); `retry_after_ms` says
        /// when to try again.
        Throttled = 0x0006 => "THROTTLED",
        /// The server cannot make a login durable now (its disk is full, or far behind);
        /// no password was checked; `retry_after_ms` says when to try again.
        StorageUnavailable = 0x0007 => "STORAGE_UNAVAILABLE",
    }
}

/// LOGIN_FAILURE (0x03).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginFailure {
    /// Why the login failed.
    pub reason: LoginFailureReason,
    /// When non-zero: do not try again before this long (millis).
    pub retry_after_ms: u32,
    /// Human readable, for logs; never parse it (0..=256 bytes).
    pub message: String,
}

impl LoginFailure {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(LoginFailure {
            reason: LoginFailureReason::from_u16(r.u16()?),
            retry_after_ms: r.u32()?,
            message: r.string(MAX_MESSAGE)?.to_owned(),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        2 + 4 + str_len(&self.message, MAX_MESSAGE)
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u16(self.reason.to_u16());
        dst.put_u32(self.retry_after_ms);
        put_str(dst, &self.message, MAX_MESSAGE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode_slice, Frame, Message};

    fn token() -> Token {
        Token(core::array::from_fn(|i| i as u8))
    }

    #[rustfmt::skip]
    const LOGIN_REQUEST: [u8; 40] = [
        0x53, 0x44, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1a, // header: op 01, req 1, len 26
        0x00, 0x05, b'a', b'l', b'i', b'c', b'e',      // username "alice"
        0x00, 0x05, b'p', b'a', b';', b's', b's',      // password "pa;ss"
        0x00, 0x03, b'c', b'l', b'i',                  // client "cli"
        0x00, 0x05, b'l', b'i', b'n', b'u', b'x',      // platform "linux"
    ];

    fn login_request() -> LoginRequest {
        LoginRequest {
            username: "alice".into(),
            password: Secret::from("pa;ss"),
            client: "cli".into(),
            platform: "linux".into(),
        }
    }

    #[test]
    fn fields_past_their_limit_are_cut_between_characters_and_counted_as_cut() {
        // 63 ASCII bytes and a 2-byte character: the username is cut to 63 bytes
        let req = LoginRequest {
            username: format!("{}é", "u".repeat(MAX_USERNAME - 1)),
            password: Secret::from("pw"),
            client: String::new(),
            platform: String::new(),
        };
        assert!(req.check().is_err());
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(out.len(), req.encoded_len());
        let f = Frame::reply(1, Message::LoginRequest(req)).to_vec();
        let (back, n) = decode_slice(&f).unwrap();
        assert_eq!(n, f.len());
        let Message::LoginRequest(back) = back.message else {
            panic!("{back:?}")
        };
        assert_eq!(back.username.len(), MAX_USERNAME - 1);
    }

    #[test]
    fn login_request_vector() {
        let frame = Frame::reply(1, Message::LoginRequest(login_request()));
        assert_eq!(
            decode_slice(&LOGIN_REQUEST),
            Ok((frame.clone(), LOGIN_REQUEST.len()))
        );
        assert_eq!(frame.to_vec(), LOGIN_REQUEST);
    }

    #[test]
    fn login_request_rejects_empty_username_and_junk() {
        // username of length 0
        let mut r = Reader::new(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
        assert_eq!(
            LoginRequest::decode(&mut r),
            Err(DecodeErrorKind::InvalidValue)
        );
        // a valid payload followed by one junk byte: the frame-level decode must refuse it
        let mut bytes = LOGIN_REQUEST.to_vec();
        bytes[13] += 1;
        bytes.push(0xee);
        let err = decode_slice(&bytes).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::TrailingBytes);
        // password with invalid UTF-8
        let mut bytes = LOGIN_REQUEST.to_vec();
        bytes[23] = 0xc3; // 'p' -> start of a 2-byte sequence followed by 'a'
        assert_eq!(
            decode_slice(&bytes).unwrap_err().kind,
            DecodeErrorKind::InvalidUtf8
        );
    }

    #[test]
    fn login_request_check() {
        let mut req = login_request();
        assert!(req.check().is_ok());
        req.username = "x".repeat(65);
        assert!(req.check().is_err());
        req.username = String::new();
        assert!(req.check().is_err());
    }

    #[rustfmt::skip]
    const LOGIN_SUCCESS: [u8; 114] = [
        0x53, 0x44, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x64, // header: op 02, req 1, len 100
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, // token
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // session id 7
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, // user id 2
        0x00,                                           // role user
        0x00, 0x05, b'a', b'l', b'i', b'c', b'e',       // username
        0x00, 0x00, 0x01, 0x9b, 0x76, 0xda, 0xa8, 0x00, // user created 2026-01-01
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // last login: never
        0x00, 0x00, 0x01, 0x9b, 0x76, 0xda, 0xa8, 0x00, // session created
        0x00, 0x00, 0x01, 0x9b, 0x7c, 0x01, 0x04, 0x00, // session expires +24 h
        0x00, 0x1b, 0x77, 0x40,                         // idle expiry 1,800,000 ms
        0x00, 0x00, 0x13, 0x88,                         // heartbeat interval 5,000 ms
        0x00, 0x00, 0x3a, 0x98,                         // heartbeat timeout 15,000 ms
    ];

    #[test]
    fn login_success_vector() {
        let msg = LoginSuccess {
            token: token(),
            session: alice_info(),
        };
        assert_eq!(msg.encoded_len(), 100);
        let frame = Frame::reply(1, Message::LoginSuccess(msg));
        assert_eq!(
            decode_slice(&LOGIN_SUCCESS),
            Ok((frame.clone(), LOGIN_SUCCESS.len()))
        );
        assert_eq!(frame.to_vec(), LOGIN_SUCCESS);
    }

    /// The session of the protocol.md examples.
    pub(crate) fn alice_info() -> SessionInfo {
        SessionInfo {
            session_id: 7,
            user_id: 2,
            role: Role::User,
            username: "alice".into(),
            user_created: 1_767_225_600_000,
            last_login: 0,
            session_created: 1_767_225_600_000,
            session_expires: 1_767_312_000_000,
            idle_expiry_ms: 1_800_000,
            heartbeat_interval_ms: 5_000,
            heartbeat_timeout_ms: 15_000,
        }
    }

    #[test]
    fn login_success_rejects_unknown_role() {
        let mut bytes = LOGIN_SUCCESS;
        bytes[14 + 32 + 16] = 0x02;
        assert_eq!(
            decode_slice(&bytes).unwrap_err().kind,
            DecodeErrorKind::InvalidValue
        );
    }

    #[rustfmt::skip]
    const LOGIN_FAILURE: [u8; 50] = [
        0x53, 0x44, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x24, // header: op 03, req 1, len 36
        0x00, 0x01,             // INVALID_CREDENTIALS
        0x00, 0x00, 0x00, 0x00, // retry after: none
        0x00, 0x1c,             // message, 28 bytes:
        b'i', b'n', b'v', b'a', b'l', b'i', b'd', b' ', b'u', b's', b'e', b'r', b'n', b'a',
        b'm', b'e', b' ', b'o', b'r', b' ', b'p', b'a', b's', b's', b'w', b'o', b'r', b'd',
    ];

    #[test]
    fn login_failure_vector() {
        let frame = Frame::reply(
            1,
            Message::LoginFailure(LoginFailure {
                reason: LoginFailureReason::InvalidCredentials,
                retry_after_ms: 0,
                message: "invalid username or password".into(),
            }),
        );
        assert_eq!(
            decode_slice(&LOGIN_FAILURE),
            Ok((frame.clone(), LOGIN_FAILURE.len()))
        );
        assert_eq!(frame.to_vec(), LOGIN_FAILURE);
    }
}
