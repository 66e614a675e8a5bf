//! The heartbeat family (protocol.md 5.4 and 5.5): HEARTBEAT and HEARTBEAT_ACK.
//!
//! These are the hot path: both decode without allocating.

use bytes::BufMut;

use super::error::DecodeErrorKind;
use super::wire::{Reader, Token, TOKEN_LEN};

/// HEARTBEAT (0x04): `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The token of the session this connection logged in to.
    pub token: Token,
}

impl Heartbeat {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Heartbeat { token: r.token()? })
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

/// HEARTBEAT_ACK (0x05): `server_time` (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatAck {
    /// The server's clock when it answered (Unix ms).
    pub server_time: u64,
}

impl HeartbeatAck {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(HeartbeatAck {
            server_time: r.u64()?,
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        8
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.server_time);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode_slice, DecodeErrorKind, Frame, Message};

    #[rustfmt::skip]
    const HEARTBEAT: [u8; 46] = [
        0x53, 0x44, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x20, // header: op 04, req 2, len 32
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, // token
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    ];

    #[rustfmt::skip]
    const HEARTBEAT_ACK: [u8; 22] = [
        0x53, 0x44, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x08, // header: op 05, req 2, len 8
        0x00, 0x00, 0x01, 0x9b, 0x76, 0xda, 0xbb, 0x88, // 2026-01-01T00:00:05Z
    ];

    #[test]
    fn heartbeat_vector() {
        let frame = Frame::reply(
            2,
            Message::Heartbeat(Heartbeat {
                token: Token(core::array::from_fn(|i| i as u8)),
            }),
        );
        assert_eq!(
            decode_slice(&HEARTBEAT),
            Ok((frame.clone(), HEARTBEAT.len()))
        );
        assert_eq!(frame.to_vec(), HEARTBEAT);
    }

    #[test]
    fn heartbeat_with_short_or_long_token_is_malformed() {
        let mut short = HEARTBEAT[..45].to_vec();
        short[13] = 31;
        assert_eq!(
            decode_slice(&short).unwrap_err().kind,
            DecodeErrorKind::Truncated
        );
        let mut long = HEARTBEAT.to_vec();
        long[13] = 33;
        long.push(0x20);
        assert_eq!(
            decode_slice(&long).unwrap_err().kind,
            DecodeErrorKind::TrailingBytes
        );
    }

    #[test]
    fn heartbeat_ack_vector() {
        let frame = Frame::reply(
            2,
            Message::HeartbeatAck(HeartbeatAck {
                server_time: 1_767_225_605_000,
            }),
        );
        assert_eq!(
            decode_slice(&HEARTBEAT_ACK),
            Ok((frame.clone(), HEARTBEAT_ACK.len()))
        );
        assert_eq!(frame.to_vec(), HEARTBEAT_ACK);
    }
}
