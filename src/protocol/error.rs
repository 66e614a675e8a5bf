//! Error codes on the wire and decode errors in the codec (protocol.md section 6), plus the
//! GENERAL_FAILURE message (section 5.10) that carries them.
//!
//! Owns: the mapping from a decode failure to its wire code and to whether the frame
//! boundary survived. Does not decide whether an error is fatal for a connection: that
//! depends on the connection's state and lives in `conn`.

use std::fmt;

use bytes::BufMut;

use super::wire::{put_str, str_len, Reader};

/// GENERAL_FAILURE codes. Unknown codes from a newer server decode as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MalformedFrame,
    FrameTooLarge,
    BadMagic,
    UnsupportedVersion,
    UnknownOpcode,
    InvalidUtf8,
    FieldTooLong,
    BadFlags,
    UnexpectedFrame,
    AuthRequired,
    InvalidToken,
    TokenMismatch,
    TooManyErrors,
    InternalError,
    /// The caller may not do this (an admin operation, another user's session).
    Forbidden,
    /// The named user or session does not exist (admin operations only).
    NotFound,
    /// A field's value is not acceptable (a new password too short, say).
    InvalidArgument,
    /// CHANGE_PASSWORD: the old password is wrong.
    WrongPassword,
    /// Too many attempts, or the server is busy: retry later (the message says when).
    Throttled,
    /// The server takes no more connections (in all, or from this address); FATAL.
    ServerBusy,
    Other(u16),
}

impl ErrorCode {
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::MalformedFrame => 0x0001,
            ErrorCode::FrameTooLarge => 0x0002,
            ErrorCode::BadMagic => 0x0003,
            ErrorCode::UnsupportedVersion => 0x0004,
            ErrorCode::UnknownOpcode => 0x0005,
            ErrorCode::InvalidUtf8 => 0x0006,
            ErrorCode::FieldTooLong => 0x0007,
            ErrorCode::BadFlags => 0x0008,
            ErrorCode::UnexpectedFrame => 0x0009,
            ErrorCode::AuthRequired => 0x000a,
            ErrorCode::InvalidToken => 0x000b,
            ErrorCode::TokenMismatch => 0x000d,
            ErrorCode::TooManyErrors => 0x000e,
            ErrorCode::InternalError => 0x000f,
            ErrorCode::Forbidden => 0x0010,
            ErrorCode::NotFound => 0x0011,
            ErrorCode::InvalidArgument => 0x0012,
            ErrorCode::WrongPassword => 0x0013,
            ErrorCode::Throttled => 0x0014,
            ErrorCode::ServerBusy => 0x0015,
            ErrorCode::Other(v) => v,
        }
    }

    pub fn from_u16(v: u16) -> ErrorCode {
        match v {
            0x0001 => ErrorCode::MalformedFrame,
            0x0002 => ErrorCode::FrameTooLarge,
            0x0003 => ErrorCode::BadMagic,
            0x0004 => ErrorCode::UnsupportedVersion,
            0x0005 => ErrorCode::UnknownOpcode,
            0x0006 => ErrorCode::InvalidUtf8,
            0x0007 => ErrorCode::FieldTooLong,
            0x0008 => ErrorCode::BadFlags,
            0x0009 => ErrorCode::UnexpectedFrame,
            0x000a => ErrorCode::AuthRequired,
            0x000b => ErrorCode::InvalidToken,
            0x000d => ErrorCode::TokenMismatch,
            0x000e => ErrorCode::TooManyErrors,
            0x000f => ErrorCode::InternalError,
            0x0010 => ErrorCode::Forbidden,
            0x0011 => ErrorCode::NotFound,
            0x0012 => ErrorCode::InvalidArgument,
            0x0013 => ErrorCode::WrongPassword,
            0x0014 => ErrorCode::Throttled,
            0x0015 => ErrorCode::ServerBusy,
            other => ErrorCode::Other(other),
        }
    }

    /// The name protocol.md uses.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::MalformedFrame => "MALFORMED_FRAME",
            ErrorCode::FrameTooLarge => "FRAME_TOO_LARGE",
            ErrorCode::BadMagic => "BAD_MAGIC",
            ErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            ErrorCode::UnknownOpcode => "UNKNOWN_OPCODE",
            ErrorCode::InvalidUtf8 => "INVALID_UTF8",
            ErrorCode::FieldTooLong => "FIELD_TOO_LONG",
            ErrorCode::BadFlags => "BAD_FLAGS",
            ErrorCode::UnexpectedFrame => "UNEXPECTED_FRAME",
            ErrorCode::AuthRequired => "AUTH_REQUIRED",
            ErrorCode::InvalidToken => "INVALID_TOKEN",
            ErrorCode::TokenMismatch => "TOKEN_MISMATCH",
            ErrorCode::TooManyErrors => "TOO_MANY_ERRORS",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::WrongPassword => "WRONG_PASSWORD",
            ErrorCode::Throttled => "THROTTLED",
            ErrorCode::ServerBusy => "SERVER_BUSY",
            ErrorCode::Other(_) => "UNKNOWN_ERROR_CODE",
        }
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
    BadMagic,
    UnsupportedVersion(u8),
    FrameTooLarge,
    UnknownOpcode(u8),
    BadFlags,
    /// The payload ended before the last field.
    Truncated,
    /// Bytes left after the last field.
    TrailingBytes,
    InvalidUtf8,
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

/// Longest `message` the server sends in GENERAL_FAILURE and LOGIN_FAILURE.
pub const MAX_MESSAGE: usize = 256;

/// GENERAL_FAILURE (0x0f): `code u16, message str(0..=256)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralFailure {
    pub code: ErrorCode,
    pub message: String,
}

impl GeneralFailure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        GeneralFailure {
            code,
            message: message.into(),
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let code = ErrorCode::from_u16(r.u16()?);
        let message = r.string(MAX_MESSAGE)?.to_owned();
        Ok(GeneralFailure { code, message })
    }

    pub fn encoded_len(&self) -> usize {
        2 + str_len(&self.message, MAX_MESSAGE)
    }

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
