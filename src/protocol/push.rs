//! Server pushes (protocol.md 5.18 to 5.20 and 5.35): SESSION_REVOKED and SESSION_EXPIRED,
//! which end a session and always carry FATAL (SESSION_EXPIRED can also be a reply);
//! NEW_LOGIN and SERVER_SHUTDOWN, without FATAL.

use bytes::BufMut;

use super::error::{DecodeErrorKind, MAX_MESSAGE};
use super::login::MAX_DEVICE_FIELD;
use super::macros::wire_enum;
use super::wire::{put_str, str_len, Reader};

/// Longest address field, in bytes (0..=64): SESSION_REVOKED, NEW_LOGIN, SESSION_LIST and
/// AUDIT_PAGE (protocol.md 5.18, 5.20, 5.23, 5.28).
pub const MAX_ADDRESS: usize = 64;

wire_enum! {
    /// Why a session was revoked (protocol.md 5.18).
    pub open enum RevokeReason: u16, to_u16, from_u16, unknown "UNKNOWN_REASON" {
        /// A new login of the same account took the session's place.
        NewLogin = 0x0001 => "NEW_LOGIN",
        /// A VERIFY_SESSION of the same token on another connection took it over.
        TakenOver = 0x0002 => "TAKEN_OVER",
        /// The user revoked it from another session (REVOKE_SESSION, LOGOUT_ALL).
        ByUser = 0x0003 => "REVOKED_BY_USER",
        /// The user changed the account's password from another session.
        PasswordChanged = 0x0004 => "PASSWORD_CHANGED",
        /// An administrator revoked it (ADMIN_REVOKE_SESSION, ADMIN_LOGOUT_USER).
        ByAdmin = 0x0005 => "REVOKED_BY_ADMIN",
        /// An administrator suspended the account.
        AccountSuspended = 0x0006 => "ACCOUNT_SUSPENDED",
        /// An administrator set the account's password (ADMIN_SET_PASSWORD).
        PasswordReset = 0x0007 => "PASSWORD_RESET",
    }
}

/// SESSION_REVOKED (0x30): `session_id u64, reason u16, by_client str, by_platform str,
/// by_address str, at time`. The `by_*` fields describe the login or connection that
/// caused the revocation (empty when there is none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRevoked {
    /// The session that ended.
    pub session_id: u64,
    /// Why it was revoked.
    pub reason: RevokeReason,
    /// The client program of the login or connection that caused it (0..=64 bytes).
    pub by_client: String,
    /// Its platform (0..=64 bytes).
    pub by_platform: String,
    /// Its address, `ip:port` or `[v6]:port` (0..=64 bytes).
    pub by_address: String,
    /// When (Unix ms).
    pub at: u64,
}

impl SessionRevoked {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(SessionRevoked {
            session_id: r.u64()?,
            reason: RevokeReason::from_u16(r.u16()?),
            by_client: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            by_platform: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            by_address: r.string(MAX_ADDRESS)?.to_owned(),
            at: r.u64()?,
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        8 + 2
            + str_len(&self.by_client, MAX_DEVICE_FIELD)
            + str_len(&self.by_platform, MAX_DEVICE_FIELD)
            + str_len(&self.by_address, MAX_ADDRESS)
            + 8
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.session_id);
        dst.put_u16(self.reason.to_u16());
        put_str(dst, &self.by_client, MAX_DEVICE_FIELD);
        put_str(dst, &self.by_platform, MAX_DEVICE_FIELD);
        put_str(dst, &self.by_address, MAX_ADDRESS);
        dst.put_u64(self.at);
    }
}

/// NEW_LOGIN (0x32), a push without FATAL: `session_id u64, client str, platform str,
/// address str, at time`: a new session of the same account was created elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogin {
    /// The new session.
    pub session_id: u64,
    /// Its client program (0..=64 bytes).
    pub client: String,
    /// Its platform (0..=64 bytes).
    pub platform: String,
    /// Its address, `ip:port` (0..=64 bytes).
    pub address: String,
    /// When it was created (Unix ms).
    pub at: u64,
}

impl NewLogin {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(NewLogin {
            session_id: r.u64()?,
            client: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            platform: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            address: r.string(MAX_ADDRESS)?.to_owned(),
            at: r.u64()?,
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        8 + str_len(&self.client, MAX_DEVICE_FIELD)
            + str_len(&self.platform, MAX_DEVICE_FIELD)
            + str_len(&self.address, MAX_ADDRESS)
            + 8
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.session_id);
        put_str(dst, &self.client, MAX_DEVICE_FIELD);
        put_str(dst, &self.platform, MAX_DEVICE_FIELD);
        put_str(dst, &self.address, MAX_ADDRESS);
        dst.put_u64(self.at);
    }
}

/// SERVER_SHUTDOWN (0x33), a push without FATAL: `reconnect_after_ms u32, message str`.
/// The server is stopping; DISCONNECT_ACK `SERVER_SHUTDOWN` follows. Sessions survive:
/// reconnect (not before `reconnect_after_ms`) and resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerShutdown {
    /// A hint: reconnecting sooner will likely fail (millis).
    pub reconnect_after_ms: u32,
    /// Human readable (0..=256 bytes).
    pub message: String,
}

impl ServerShutdown {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(ServerShutdown {
            reconnect_after_ms: r.u32()?,
            message: r.string(MAX_MESSAGE)?.to_owned(),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        4 + str_len(&self.message, MAX_MESSAGE)
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u32(self.reconnect_after_ms);
        put_str(dst, &self.message, MAX_MESSAGE);
    }
}

wire_enum! {
    /// Which clock ended a session (protocol.md 5.19).
    pub open enum ExpiredReason: u16, to_u16, from_u16, unknown "UNKNOWN_REASON" {
        /// No activity for the idle expiry.
        Idle = 0x0001 => "IDLE",
        /// Its lifetime is over.
        Absolute = 0x0002 => "ABSOLUTE",
    }
}

/// SESSION_EXPIRED (0x31): `session_id u64, reason u16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpired {
    /// The session that ended.
    pub session_id: u64,
    /// Which expiry ended it.
    pub reason: ExpiredReason,
}

impl SessionExpired {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(SessionExpired {
            session_id: r.u64()?,
            reason: ExpiredReason::from_u16(r.u16()?),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        10
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.session_id);
        dst.put_u16(self.reason.to_u16());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{check_vector as check, Frame, Message};

    #[test]
    #[rustfmt::skip]
    fn session_revoked_vector() {
        let mut bytes = vec![
            0x53, 0x44, 0x01, 0x30, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x33, // op 30, FATAL|PUSH, len 51
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // session 7
            0x00, 0x01,                                     // NEW_LOGIN
            0x00, 0x05, b'p', b'h', b'o', b'n', b'e',       // by client
            0x00, 0x07, b'a', b'n', b'd', b'r', b'o', b'i', b'd', // by platform
            0x00, 0x0f,                                     // by address, 15 bytes:
        ];
        bytes.extend_from_slice(b"192.0.2.7:51000");
        bytes.extend_from_slice(&[0x00, 0x00, 0x01, 0x9b, 0x77, 0x11, 0x96, 0x80]); // at 01:00Z
        check(&bytes, Frame::push(Message::SessionRevoked(SessionRevoked {
            session_id: 7,
            reason: RevokeReason::NewLogin,
            by_client: "phone".into(),
            by_platform: "android".into(),
            by_address: "192.0.2.7:51000".into(),
            at: 1_767_229_200_000,
        }), true));
    }

    #[test]
    #[rustfmt::skip]
    fn session_expired_vector() {
        let bytes = [
            0x53, 0x44, 0x01, 0x31, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, // op 31, FATAL|PUSH, len 10
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // session 7
            0x00, 0x01,                                     // IDLE
        ];
        check(&bytes, Frame::push(Message::SessionExpired(SessionExpired {
            session_id: 7,
            reason: ExpiredReason::Idle,
        }), true));
    }
}
