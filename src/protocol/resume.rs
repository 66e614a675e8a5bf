//! The resume family (protocol.md 5.11 to 5.14): VERIFY_SESSION, SESSION_VALID,
//! SESSION_INVALID, DUPLICATE_SESSION.

use bytes::BufMut;

use super::error::{DecodeErrorKind, MAX_MESSAGE};
use super::login::{SessionInfo, MAX_DEVICE_FIELD};
use super::macros::wire_enum;
use super::wire::{put_str, str_len, Reader, Token, TOKEN_LEN};

/// VERIFY_SESSION (0x10): `token, client str(0..=64), platform str(0..=64)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySession {
    /// The stored token of the session to resume.
    pub token: Token,
    /// Device: client program (0..=64 bytes); empty: the session keeps the one it had.
    pub client: String,
    /// Device: platform, may be empty (0..=64 bytes).
    pub platform: String,
}

impl VerifySession {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(VerifySession {
            token: r.token()?,
            client: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            platform: r.string(MAX_DEVICE_FIELD)?.to_owned(),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN
            + str_len(&self.client, MAX_DEVICE_FIELD)
            + str_len(&self.platform, MAX_DEVICE_FIELD)
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_str(dst, &self.client, MAX_DEVICE_FIELD);
        put_str(dst, &self.platform, MAX_DEVICE_FIELD);
    }
}

/// SESSION_VALID (0x11): the [`SessionInfo`] of the resumed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionValid {
    /// The resumed session's info block.
    pub session: SessionInfo,
}

impl SessionValid {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(SessionValid {
            session: SessionInfo::decode(r)?,
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        self.session.encoded_len()
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        self.session.encode(dst);
    }
}

wire_enum! {
    /// Why a token cannot be resumed (protocol.md 5.13).
    pub open enum InvalidReason: u16, to_u16, from_u16, unknown "UNKNOWN_REASON" {
        /// No such session (never existed, or ended too long ago to remember).
        Unknown = 0x0001 => "UNKNOWN",
        /// The session expired (idle or absolute).
        Expired = 0x0002 => "EXPIRED",
        /// The session was revoked.
        Revoked = 0x0003 => "REVOKED",
        /// The session was logged out.
        LoggedOut = 0x0004 => "LOGGED_OUT",
    }
}

/// SESSION_INVALID (0x12): `reason u16, message str(0..=256)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInvalid {
    /// Why the token cannot be resumed.
    pub reason: InvalidReason,
    /// Human readable (0..=256 bytes).
    pub message: String,
}

impl SessionInvalid {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(SessionInvalid {
            reason: InvalidReason::from_u16(r.u16()?),
            message: r.string(MAX_MESSAGE)?.to_owned(),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        2 + str_len(&self.message, MAX_MESSAGE)
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u16(self.reason.to_u16());
        put_str(dst, &self.message, MAX_MESSAGE);
    }
}

/// DUPLICATE_SESSION (0x13): `session_id u64, message str(0..=256)`. Always FATAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateSession {
    /// The session that is in use.
    pub session_id: u64,
    /// Text for the user (0..=256 bytes).
    pub message: String,
}

impl DuplicateSession {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(DuplicateSession {
            session_id: r.u64()?,
            message: r.string(MAX_MESSAGE)?.to_owned(),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        8 + str_len(&self.message, MAX_MESSAGE)
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.session_id);
        put_str(dst, &self.message, MAX_MESSAGE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{check_vector as check, Flags, Frame, Message, Role};

    #[test]
    #[rustfmt::skip]
    fn verify_session_vector() {
        let bytes = [
            0x53, 0x44, 0x01, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2c, // header: op 10, req 1, len 44
            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, // token
            0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
            0x00, 0x03, b'c', b'l', b'i',                  // client "cli"
            0x00, 0x05, b'l', b'i', b'n', b'u', b'x',      // platform "linux"
        ];
        check(&bytes, Frame::reply(1, Message::VerifySession(VerifySession {
            token: Token(core::array::from_fn(|i| i as u8)),
            client: "cli".into(),
            platform: "linux".into(),
        })));
    }

    #[test]
    #[rustfmt::skip]
    fn session_valid_vector() {
        let bytes = [
            0x53, 0x44, 0x01, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x44, // header: op 11, req 1, len 68
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // session 7
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, // user 2
            0x00,                                           // role user
            0x00, 0x05, b'a', b'l', b'i', b'c', b'e',       // username
            0x00, 0x00, 0x01, 0x9b, 0x76, 0xda, 0xa8, 0x00, // user created 2026-01-01T00:00Z
            0x00, 0x00, 0x01, 0x9b, 0x77, 0x11, 0x96, 0x80, // last login 2026-01-01T01:00Z
            0x00, 0x00, 0x01, 0x9b, 0x77, 0x11, 0x96, 0x80, // session created 01:00Z
            0x00, 0x00, 0x01, 0x9b, 0x7c, 0x37, 0xf2, 0x80, // expires 2026-01-02T01:00Z (24 h)
            0x00, 0x1b, 0x77, 0x40,                         // idle expiry 30 min
            0x00, 0x00, 0x13, 0x88,                         // heartbeat interval 5 s
            0x00, 0x00, 0x3a, 0x98,                         // heartbeat timeout 15 s
        ];
        check(&bytes, Frame::reply(1, Message::SessionValid(SessionValid {
            session: SessionInfo {
                session_id: 7,
                user_id: 2,
                role: Role::User,
                username: "alice".into(),
                user_created: 1_767_225_600_000,
                last_login: 1_767_229_200_000,
                session_created: 1_767_229_200_000,
                session_expires: 1_767_315_600_000,
                idle_expiry_ms: 1_800_000,
                heartbeat_interval_ms: 5_000,
                heartbeat_timeout_ms: 15_000,
            },
        })));
    }

    #[test]
    #[rustfmt::skip]
    fn session_invalid_vector() {
        let bytes = [
            0x53, 0x44, 0x01, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x13, // header: op 12, req 1, len 19
            0x00, 0x03,                                     // REVOKED
            0x00, 0x0f, b's', b'e', b's', b's', b'i', b'o', b'n', b' ', b'r', b'e', b'v', b'o', b'k', b'e', b'd',
        ];
        check(&bytes, Frame::reply(1, Message::SessionInvalid(SessionInvalid {
            reason: InvalidReason::Revoked,
            message: "session revoked".into(),
        })));
    }

    #[test]
    fn duplicate_session_vector() {
        let mut bytes = vec![
            0x53, 0x44, 0x01, 0x13, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
            0x31, // FATAL, len 49
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // session 7
            0x00, 0x27, // 39-byte message
        ];
        bytes.extend_from_slice(b"session is in use on another connection");
        check(
            &bytes,
            Frame {
                request_id: 1,
                flags: Flags::FATAL,
                message: Message::DuplicateSession(DuplicateSession {
                    session_id: 7,
                    message: "session is in use on another connection".into(),
                }),
            },
        );
    }
}
