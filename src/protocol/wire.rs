//! Field encodings shared by every message (protocol.md section 3): a bounds-checked
//! reader over one payload, string and token writers, and the [`Token`] type.
//!
//! Design: the reader borrows the payload slice and hands out `&str` views, so a message
//! that needs no owned strings (HEARTBEAT, LOGOUT_REQUEST) decodes without allocating.

use std::fmt;

use byteorder::{BigEndian, ByteOrder};
use bytes::BufMut;

use super::error::DecodeErrorKind;

/// Bytes in a session token.
pub const TOKEN_LEN: usize = 32;

/// A session token as it travels on the wire. The server never stores one (it keeps the
/// SHA-256 digest), and `Debug` never prints one.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub [u8; TOKEN_LEN]);

impl Token {
    /// The token's bytes.
    pub fn as_bytes(&self) -> &[u8; TOKEN_LEN] {
        &self.0
    }

    /// Lowercase hex, for clients that store the token in a file. Never log this.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(TOKEN_LEN * 2);
        for b in self.0 {
            s.push(char::from(HEX[(b >> 4) as usize]));
            s.push(char::from(HEX[(b & 0xf) as usize]));
        }
        s
    }

    /// Parses 64 hex digits (either case, surrounding whitespace allowed).
    pub fn from_hex(s: &str) -> Option<Token> {
        let s = s.trim().as_bytes();
        if s.len() != TOKEN_LEN * 2 {
            return None;
        }
        let mut out = [0u8; TOKEN_LEN];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(Token(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A cursor over one frame's payload. Every read is bounds-checked; running out of bytes is
/// `Truncated`, and [`Reader::finish`] rejects leftovers (rustls's `Reader::expect_empty`).
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeErrorKind> {
        let end = self.pos.checked_add(n).ok_or(DecodeErrorKind::Truncated)?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeErrorKind::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, DecodeErrorKind> {
        Ok(self.take(1)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeErrorKind> {
        Ok(BigEndian::read_u16(self.take(2)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeErrorKind> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeErrorKind> {
        Ok(BigEndian::read_u64(self.take(8)?))
    }

    /// Reads a `token` (32 bytes).
    pub fn token(&mut self) -> Result<Token, DecodeErrorKind> {
        let mut t = [0u8; TOKEN_LEN];
        t.copy_from_slice(self.take(TOKEN_LEN)?);
        Ok(Token(t))
    }

    /// A `str` field of at most `max` bytes. The length check comes before the bounds
    /// check, so an absurd prefix is reported as what it is.
    pub fn string(&mut self, max: usize) -> Result<&'a str, DecodeErrorKind> {
        let len = self.u16()? as usize;
        if len > max {
            return Err(DecodeErrorKind::FieldTooLong);
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeErrorKind::InvalidUtf8)
    }

    /// A `bytes` field of at most `max` bytes (protocol.md 3): the length check first, as
    /// for a `str`.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeErrorKind> {
        let len = self.u16()? as usize;
        if len > max {
            return Err(DecodeErrorKind::FieldTooLong);
        }
        self.take(len)
    }

    /// protocol.md: "a payload MUST be consumed exactly".
    pub fn finish(&self) -> Result<(), DecodeErrorKind> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(DecodeErrorKind::TrailingBytes)
        }
    }
}

/// Bytes `s` occupies as a `str` field of maximum `max` (prefix included).
pub fn str_len(s: &str, max: usize) -> usize {
    2 + clip(s, max).len()
}

/// Writes a `str` field. Text beyond `max` bytes is cut at a character boundary, so an
/// encoder can never emit a field the peer must reject; callers that must not lose text
/// (usernames, passwords) validate lengths before building the message.
pub fn put_str<B: BufMut>(dst: &mut B, s: &str, max: usize) {
    let s = clip(s, max);
    // `clip` bounds the length by `max`, and every maximum in the protocol fits in a u16.
    dst.put_u16(s.len() as u16);
    dst.put_slice(s.as_bytes());
}

fn clip(s: &str, max: usize) -> &str {
    let max = max.min(u16::MAX as usize);
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_integers_big_endian() {
        let b = [
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
            0x0f,
        ];
        let mut r = Reader::new(&b);
        assert_eq!(r.u8(), Ok(0x01));
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.u32(), Ok(0x0405_0607));
        assert_eq!(r.u64(), Ok(0x0809_0a0b_0c0d_0e0f));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(r.u8(), Err(DecodeErrorKind::Truncated));
    }

    #[test]
    fn strings() {
        // "a;b" then trailing junk 0xff that finish() must reject
        let b = [0x00, 0x03, b'a', b';', b'b', 0xff];
        let mut r = Reader::new(&b);
        assert_eq!(r.string(64), Ok("a;b"));
        assert_eq!(r.finish(), Err(DecodeErrorKind::TrailingBytes));

        // prefix says 5 but only 2 bytes follow
        assert_eq!(
            Reader::new(&[0x00, 0x05, b'a', b'b']).string(64),
            Err(DecodeErrorKind::Truncated)
        );
        // over the field maximum, reported before the bounds check
        assert_eq!(
            Reader::new(&[0xff, 0xff]).string(64),
            Err(DecodeErrorKind::FieldTooLong)
        );
        // invalid UTF-8 (a lone continuation byte)
        assert_eq!(
            Reader::new(&[0x00, 0x01, 0x80]).string(64),
            Err(DecodeErrorKind::InvalidUtf8)
        );
        // empty
        assert_eq!(Reader::new(&[0x00, 0x00]).string(64), Ok(""));
    }

    #[test]
    fn put_str_clips_on_char_boundary() {
        let mut out = Vec::new();
        put_str(&mut out, "aé", 2); // 'é' is 2 bytes: only "a" fits
        assert_eq!(out, [0x00, 0x01, b'a']);
        assert_eq!(str_len("aé", 2), 3);
    }

    #[test]
    fn token_hex_round_trip_and_redaction() {
        let t = Token(core::array::from_fn(|i| i as u8));
        let hex = t.to_hex();
        assert_eq!(&hex[..8], "00010203");
        assert_eq!(Token::from_hex(&hex.to_uppercase()), Some(t.clone()));
        assert_eq!(Token::from_hex("abc"), None);
        assert_eq!(Token::from_hex(&"zz".repeat(32)), None);
        assert!(!format!("{t:?}").contains("0001"));
    }
}
