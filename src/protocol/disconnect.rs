//! The disconnect family (protocol.md 5.8 and 5.9): DISCONNECT_REQUEST and DISCONNECT_ACK.

use bytes::BufMut;

use super::error::DecodeErrorKind;
use super::macros::wire_enum;
use super::wire::Reader;

/// DISCONNECT_REQUEST (0x08): empty payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisconnectRequest;

impl DisconnectRequest {
    /// Decodes the empty payload; never `Err`. Leftover bytes are for [`Reader::finish`].
    pub fn decode(_r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(DisconnectRequest)
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        0
    }

    /// Appends the payload (nothing).
    pub fn encode<B: BufMut>(&self, _dst: &mut B) {}
}

wire_enum! {
    /// Why the server closes (protocol.md 5.9).
    pub open enum DisconnectReason: u16, to_u16, from_u16, unknown "UNKNOWN_REASON" {
        /// The client sent DISCONNECT_REQUEST.
        ClientRequest = 0x0000 => "CLIENT_REQUEST",
        /// No valid frame for the heartbeat timeout.
        IdleTimeout = 0x0001 => "IDLE_TIMEOUT",
        /// Not logged in within the login deadline.
        LoginTimeout = 0x0002 => "LOGIN_TIMEOUT",
        /// The server is shutting down (after SERVER_SHUTDOWN); the session survives.
        ServerShutdown = 0x0003 => "SERVER_SHUTDOWN",
    }
}

/// DISCONNECT_ACK (0x09): `reason u16`. Always sent with the FATAL flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisconnectAck {
    /// Why the connection closes.
    pub reason: DisconnectReason,
}

impl DisconnectAck {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(DisconnectAck {
            reason: DisconnectReason::from_u16(r.u16()?),
        })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        2
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u16(self.reason.to_u16());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode_slice, Flags, Frame, Message};

    #[test]
    fn disconnect_request_vector() {
        // header only: op 08, request 4, length 0; then a junk byte that must stay unread
        let bytes = [
            0x53, 0x44, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
            0xaa,
        ];
        let frame = Frame::reply(4, Message::DisconnectRequest(DisconnectRequest));
        assert_eq!(decode_slice(&bytes), Ok((frame.clone(), 14)));
        assert_eq!(frame.to_vec(), bytes[..14]);
    }

    #[test]
    fn disconnect_ack_vectors() {
        // reply to request 4, FATAL
        let reply = [
            0x53, 0x44, 0x01, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
            0x02, // header
            0x00, 0x00, // CLIENT_REQUEST
        ];
        let frame = Frame {
            request_id: 4,
            flags: Flags::FATAL,
            message: Message::DisconnectAck(DisconnectAck {
                reason: DisconnectReason::ClientRequest,
            }),
        };
        assert_eq!(decode_slice(&reply), Ok((frame.clone(), reply.len())));
        assert_eq!(frame.to_vec(), reply);

        // pushed on idle timeout: FATAL | PUSH, request id 0
        let push = [
            0x53, 0x44, 0x01, 0x09, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, // header
            0x00, 0x01, // IDLE_TIMEOUT
        ];
        let frame = Frame::push(
            Message::DisconnectAck(DisconnectAck {
                reason: DisconnectReason::IdleTimeout,
            }),
            true,
        );
        assert_eq!(decode_slice(&push), Ok((frame.clone(), push.len())));
        assert_eq!(frame.to_vec(), push);
    }
}
