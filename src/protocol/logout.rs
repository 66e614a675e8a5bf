//! The logout family (protocol.md 5.6 and 5.7): LOGOUT_REQUEST and LOGOUT_SUCCESS.

use bytes::BufMut;

use super::error::DecodeErrorKind;
use super::wire::{Reader, Token, TOKEN_LEN};

/// LOGOUT_REQUEST (0x06): `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// This connection's session token.
    pub token: Token,
}

impl LogoutRequest {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(LogoutRequest { token: r.token()? })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
    }
}

/// LOGOUT_SUCCESS (0x07): `session_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutSuccess {
    /// The session that ended.
    pub session_id: u64,
}

impl LogoutSuccess {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(LogoutSuccess {
            session_id: r.u64()?,
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        8
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.session_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode_slice, Frame, Message};

    #[rustfmt::skip]
    const LOGOUT_REQUEST: [u8; 46] = [
        0x53, 0x44, 0x01, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x20, // header: op 06, req 3, len 32
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, // token
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    ];

    #[rustfmt::skip]
    const LOGOUT_SUCCESS: [u8; 22] = [
        0x53, 0x44, 0x01, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, // header: op 07, req 3, len 8
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // session 7
    ];

    #[test]
    fn logout_request_vector() {
        let frame = Frame::reply(
            3,
            Message::LogoutRequest(LogoutRequest {
                token: Token(core::array::from_fn(|i| i as u8)),
            }),
        );
        assert_eq!(
            decode_slice(&LOGOUT_REQUEST),
            Ok((frame.clone(), LOGOUT_REQUEST.len()))
        );
        assert_eq!(frame.to_vec(), LOGOUT_REQUEST);
    }

    #[test]
    fn logout_success_vector() {
        let frame = Frame::reply(3, Message::LogoutSuccess(LogoutSuccess { session_id: 7 }));
        assert_eq!(
            decode_slice(&LOGOUT_SUCCESS),
            Ok((frame.clone(), LOGOUT_SUCCESS.len()))
        );
        assert_eq!(frame.to_vec(), LOGOUT_SUCCESS);
    }
}
