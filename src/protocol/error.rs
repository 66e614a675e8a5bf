//! Error codes on the wire and decode errors in the codec (protocol.md section 6), plus the
//! GENERAL_FAILURE message (section 5.10) that carries them.
//!
//! Owns: the mapping from a decode failure to its wire code and to whether the frame
//! boundary survived. Does not decide whether an error is fatal for a connection: that
//! depends on the connection's state and is the engine's decision.

use std::fmt;

use bytes::BufMut;

use super::macros::wire_enum;
use super::wire::{put_str, str_len, Reader};

wire_enum! {
    /// GENERAL_FAILURE codes (protocol.md 6). Unknown codes from a newer server decode as
    /// `Other`.
    pub open enum ErrorCode: u16, to_u16, from_u16, unknown "UNKNOWN_ERROR_CODE" {
        /// Payload too short, bytes left over, or a field value out of range.
        MalformedFrame = 0x0001 => "MALFORMED_FRAME",
        /// `14 + length` over the maximum frame size.
        FrameTooLarge = 0x0002 => "FRAME_TOO_LARGE",
        /// The first two bytes of a frame are not `53 44`.
        BadMagic = 0x0003 => "BAD_MAGIC",
        /// A version byte other than 1.
        UnsupportedVersion = 0x0004 => "UNSUPPORTED_VERSION",
        /// An opcode this version does not define.
        UnknownOpcode = 0x0005 => "UNKNOWN_OPCODE",
        /// A `str` field is not valid UTF-8.
        InvalidUtf8 = 0x0006 => "INVALID_UTF8",
        /// A `str` field over its maximum length.
        FieldTooLong = 0x0007 => "FIELD_TOO_LONG",
        /// A client frame with flag bits set.
        BadFlags = 0x0008 => "BAD_FLAGS",
        /// A known frame not allowed in the current state or direction.
        UnexpectedFrame = 0x0009 => "UNEXPECTED_FRAME",
        /// Anything but the frames allowed before login.
        AuthRequired = 0x000a => "AUTH_REQUIRED",
        /// The token is not one of a live session.
        InvalidToken = 0x000b => "INVALID_TOKEN",
        /// The token is another live session's, not this connection's.
        TokenMismatch = 0x000d => "TOKEN_MISMATCH",
        /// 16 error replies in a row on one connection.
        TooManyErrors = 0x000e => "TOO_MANY_ERRORS",
        /// The server could not carry out a valid request.
        InternalError = 0x000f => "INTERNAL_ERROR",
        /// The caller may not do this (an admin operation, another user's session).
        Forbidden = 0x0010 => "FORBIDDEN",
        /// An administrator named a user or session that does not exist.
        NotFound = 0x0011 => "NOT_FOUND",
        /// A field's value is not acceptable (a new password too short, say).
        InvalidArgument = 0x0012 => "INVALID_ARGUMENT",
        /// CHANGE_PASSWORD: the old password is wrong.
        WrongPassword = 0x0013 => "WRONG_PASSWORD",
        /// Too many attempts, or the server is busy: retry later (the message says when).
        Throttled = 0x0014 => "THROTTLED",
        /// The server takes no more connections (in all, or from this address); FATAL.
        ServerBusy = 0x0015 => "SERVER_BUSY",
        /// The server cannot make changes durable now (its disk is full, or far behind):
        /// the request was not carried out; retry later. Never fatal.
        StorageUnavailable = 0x0016 => "STORAGE_UNAVAILABLE",
        /// The connection spoke the protocol in plain TCP to a port that speaks TLS: sent
        /// in plain TCP, FATAL (protocol.md 1, "TLS").
        TlsRequired = 0x0017 => "TLS_REQUIRED",
        /// A request would take a session past a documented bound (its attributes: 64 of
        /// them, 4,096 bytes of keys and values); nothing was changed. Never fatal.
        LimitExceeded = 0x0018 => "LIMIT_EXCEEDED",
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:04x})", self.name(), self.to_u16())
    }
}

/// Why a frame could not be decoded. Small and `Copy`: it sits on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// `magic` is not `0x5344` (`BAD_MAGIC`).
    BadMagic,
    /// A `version` other than 1, the byte received (`UNSUPPORTED_VERSION`).
    UnsupportedVersion(u8),
    /// `14 + length` over the maximum frame size (`FRAME_TOO_LARGE`).
    FrameTooLarge,
    /// An opcode this version does not define, the byte received (`UNKNOWN_OPCODE`).
    UnknownOpcode(u8),
    /// A client frame with flag bits set (`BAD_FLAGS`).
    BadFlags,
    /// The payload ended before the last field.
    Truncated,
    /// Bytes left after the last field.
    TrailingBytes,
    /// A `str` field is not valid UTF-8 (`INVALID_UTF8`).
    InvalidUtf8,
    /// A `str` length prefix over the field's maximum (`FIELD_TOO_LONG`).
    FieldTooLong,
    /// A field holds a value its type does not allow (an unknown role, say).
    InvalidValue,
}

impl DecodeErrorKind {
    /// True when the frame boundary is lost (the header itself was bad): the stream cannot
    /// be read any further and the connection must close.
    pub fn breaks_framing(self) -> bool {
        matches!(
            self,
            DecodeErrorKind::BadMagic
                | DecodeErrorKind::UnsupportedVersion(_)
                | DecodeErrorKind::FrameTooLarge
        )
    }

    /// True when the bytes are not a header of this protocol at all (wrong magic or
    /// version): nothing in them is read, and the answer is a push with request id 0
    /// (protocol.md 2, "Header checks").
    pub fn unreadable_header(self) -> bool {
        matches!(
            self,
            DecodeErrorKind::BadMagic | DecodeErrorKind::UnsupportedVersion(_)
        )
    }

    /// The GENERAL_FAILURE code for it (protocol.md 6).
    pub fn code(self) -> ErrorCode {
        match self {
            DecodeErrorKind::BadMagic => ErrorCode::BadMagic,
            DecodeErrorKind::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            DecodeErrorKind::FrameTooLarge => ErrorCode::FrameTooLarge,
            DecodeErrorKind::UnknownOpcode(_) => ErrorCode::UnknownOpcode,
            DecodeErrorKind::BadFlags => ErrorCode::BadFlags,
            DecodeErrorKind::Truncated
            | DecodeErrorKind::TrailingBytes
            | DecodeErrorKind::InvalidValue => ErrorCode::MalformedFrame,
            DecodeErrorKind::InvalidUtf8 => ErrorCode::InvalidUtf8,
            DecodeErrorKind::FieldTooLong => ErrorCode::FieldTooLong,
        }
    }

    /// A short human-readable message for the GENERAL_FAILURE frame.
    pub fn message(self) -> &'static str {
        match self {
            DecodeErrorKind::BadMagic => "bad magic: not a sessiond frame",
            DecodeErrorKind::UnsupportedVersion(_) => "unsupported version; this server speaks 1",
            DecodeErrorKind::FrameTooLarge => "frame too large",
            DecodeErrorKind::UnknownOpcode(_) => "unknown opcode",
            DecodeErrorKind::BadFlags => "client frames must have flags = 0",
            DecodeErrorKind::Truncated => "payload shorter than its layout",
            DecodeErrorKind::TrailingBytes => "bytes left over after the last field",
            DecodeErrorKind::InvalidUtf8 => "string field is not valid UTF-8",
            DecodeErrorKind::FieldTooLong => "string field longer than its maximum",
            DecodeErrorKind::InvalidValue => "field value out of range",
        }
    }
}

/// A decode failure together with what is known of the frame it happened in, so the reply
/// can echo the request id. When `kind.breaks_framing()` is false the frame's bytes have
/// been consumed and decoding may continue with the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// What was wrong.
    pub kind: DecodeErrorKind,
    /// The frame's request id, or 0 when the header was not readable.
    pub request_id: u32,
    /// The raw opcode byte, or 0 when the header was not readable.
    pub opcode: u8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (opcode 0x{:02x}, request {}): {}",
            self.kind.code(),
            self.opcode,
            self.request_id,
            self.kind.message()
        )
    }
}

impl std::error::Error for DecodeError {}

/// Longest `message`, in bytes (0..=256): GENERAL_FAILURE, LOGIN_FAILURE, SESSION_INVALID,
/// DUPLICATE_SESSION, REGISTER_FAILURE and SERVER_SHUTDOWN (protocol.md 5).
pub const MAX_MESSAGE: usize = 256;

/// GENERAL_FAILURE (0x0f): `code u16, message str(0..=256)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralFailure {
    /// Error code (protocol.md 6).
    pub code: ErrorCode,
    /// Human readable; never parse it (0..=256 bytes).
    pub message: String,
}

impl GeneralFailure {
    /// From its two fields.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        GeneralFailure {
            code,
            message: message.into(),
        }
    }

    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let code = ErrorCode::from_u16(r.u16()?);
        let message = r.string(MAX_MESSAGE)?.to_owned();
        Ok(GeneralFailure { code, message })
    }

    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        2 + str_len(&self.message, MAX_MESSAGE)
    }

    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u16(self.code.to_u16());
        put_str(dst, &self.message, MAX_MESSAGE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode_slice, Flags, Frame, Message};

    #[test]
    fn codes_round_trip() {
        for v in 0..=0x20u16 {
            assert_eq!(ErrorCode::from_u16(v).to_u16(), v);
        }
    }

    #[test]
    fn general_failure_vector() {
        // protocol.md 5.10: heartbeat (request 5) with an unknown token
        let bytes = [
            0x53, 0x44, 0x01, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
            0x11, // header
            0x00, 0x0b, // INVALID_TOKEN
            0x00, 0x0d, b'u', b'n', b'k', b'n', b'o', b'w', b'n', b' ', b't', b'o', b'k', b'e',
            b'n',
        ];
        let expected = Frame::reply(
            5,
            Message::GeneralFailure(GeneralFailure::new(
                ErrorCode::InvalidToken,
                "unknown token",
            )),
        );
        assert_eq!(decode_slice(&bytes), Ok((expected.clone(), bytes.len())));
        assert_eq!(expected.to_vec(), bytes);
    }

    #[test]
    fn general_failure_fatal_vector() {
        // protocol.md 5.10: fatal AUTH_REQUIRED, request 9
        let bytes = [
            0x53, 0x44, 0x01, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00,
            0x10, // header, FATAL
            0x00, 0x0a, // AUTH_REQUIRED
            0x00, 0x0c, b'l', b'o', b'g', b' ', b'i', b'n', b' ', b'f', b'i', b'r', b's', b't',
        ];
        let (frame, n) = decode_slice(&bytes).unwrap();
        assert_eq!(n, bytes.len());
        assert_eq!(frame.flags, Flags::FATAL);
        assert_eq!(frame.request_id, 9);
        assert_eq!(
            frame.message,
            Message::GeneralFailure(GeneralFailure::new(ErrorCode::AuthRequired, "log in first"))
        );
    }

    #[test]
    fn overlong_message_is_truncated_on_a_char_boundary() {
        let long = "é".repeat(200); // 400 bytes
        let gf = GeneralFailure::new(ErrorCode::InternalError, long);
        let mut out = Vec::new();
        gf.encode(&mut out);
        assert_eq!(out.len(), gf.encoded_len());
        let mut r = Reader::new(&out);
        let back = GeneralFailure::decode(&mut r).unwrap();
        assert_eq!(back.message.len(), 256);
        assert!(r.finish().is_ok());
    }
}
