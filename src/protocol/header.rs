//! The fixed 14-byte frame header (protocol.md section 2).
//!
//! Owns the header layout and the checks that can be made from the header alone (magic,
//! version, declared length). It does not know opcodes or payloads.

use byteorder::{BigEndian, ByteOrder};
use bytes::BufMut;

use super::error::DecodeErrorKind;

/// `SD` in ASCII.
pub const MAGIC: u16 = 0x5344;
/// The only version this codec speaks.
pub const VERSION: u8 = 1;
/// Bytes in every header.
pub const HEADER_LEN: usize = 14;
/// Lowest configurable maximum frame size, header included (protocol.md 2: "never below
/// 4,096"): every request fits in it with every field at its longest.
pub const MIN_MAX_FRAME: usize = 4096;
/// Default maximum frame size in bytes, header + payload (protocol.md 2).
pub const DEFAULT_MAX_FRAME: usize = 65_536;

/// Header flag bits (protocol.md "Flags").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(pub u16);

impl Flags {
    /// No flag set: what a client MUST send.
    pub const NONE: Flags = Flags(0);
    /// The last frame the server sends on this connection.
    pub const FATAL: Flags = Flags(0x0001);
    /// A frame not caused by a request; its request id is 0.
    pub const PUSH: Flags = Flags(0x0002);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether [`FATAL`](Self::FATAL) is set.
    pub fn is_fatal(self) -> bool {
        self.contains(Flags::FATAL)
    }

    /// Whether [`PUSH`](Self::PUSH) is set.
    pub fn is_push(self) -> bool {
        self.contains(Flags::PUSH)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// A parsed header. `opcode` stays a raw byte here: an unknown opcode is a payload-level
/// error (the frame boundary is still known), decided by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message type (protocol.md 5), the raw byte.
    pub opcode: u8,
    /// Flag bits.
    pub flags: Flags,
    /// Chosen by the client, echoed in the reply; 0 on a push.
    pub request_id: u32,
    /// Payload length in bytes (header excluded).
    pub length: u32,
}

impl Header {
    /// Parses and checks the first [`HEADER_LEN`] bytes of `buf`. Returns `Ok(None)` when
    /// fewer bytes are available. Checks run in the order protocol.md lists them, so a peer
    /// that is not speaking this protocol at all is told `BAD_MAGIC` first.
    pub fn parse(buf: &[u8], max_frame: usize) -> Result<Option<Header>, DecodeErrorKind> {
        // A wrong magic is visible from the first two bytes; say so without waiting for 14
        // (a peer speaking HTTP or TLS gets its answer at once).
        if buf.len() >= 2 && BigEndian::read_u16(&buf[0..2]) != MAGIC {
            return Err(DecodeErrorKind::BadMagic);
        }
        if buf.len() >= 3 && buf[2] != VERSION {
            return Err(DecodeErrorKind::UnsupportedVersion(buf[2]));
        }
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let header = Header {
            opcode: buf[3],
            flags: Flags(BigEndian::read_u16(&buf[4..6])),
            request_id: BigEndian::read_u32(&buf[6..10]),
            length: BigEndian::read_u32(&buf[10..14]),
        };
        // protocol.md: "A frame whose `14 + length` exceeds the maximum frame size MUST be
        // rejected with a fatal GENERAL_FAILURE `FRAME_TOO_LARGE`" -- checked before any of
        // the payload is buffered.
        if header.length as u64 + HEADER_LEN as u64 > max_frame as u64 {
            return Err(DecodeErrorKind::FrameTooLarge);
        }
        Ok(Some(header))
    }

    /// Total bytes of the frame this header starts.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.length as usize
    }

    /// Appends the 14 header bytes, [`MAGIC`] and [`VERSION`] included.
    pub fn write<B: BufMut>(&self, dst: &mut B) {
        dst.put_u16(MAGIC);
        dst.put_u8(VERSION);
        dst.put_u8(self.opcode);
        dst.put_u16(self.flags.0);
        dst.put_u32(self.request_id);
        dst.put_u32(self.length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_fields() {
        // magic, version 1, opcode 0x04, flags 0x0003, request id 0x01020304, length 32
        let bytes = [
            0x53, 0x44, 0x01, 0x04, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x20,
        ];
        let h = Header::parse(&bytes, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(h.opcode, 0x04);
        assert_eq!(h.flags, Flags::FATAL | Flags::PUSH);
        assert_eq!(h.request_id, 0x0102_0304);
        assert_eq!(h.length, 32);
        assert_eq!(h.frame_len(), 46);
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn short_input_is_not_an_error() {
        let bytes = [
            0x53, 0x44, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        ];
        for n in 0..bytes.len() {
            assert_eq!(
                Header::parse(&bytes[..n], DEFAULT_MAX_FRAME),
                Ok(None),
                "{n}"
            );
        }
    }

    #[test]
    fn bad_magic_and_version_are_seen_early() {
        // "GE" of an HTTP request line
        assert_eq!(Header::parse(b"GE", 4096), Err(DecodeErrorKind::BadMagic));
        // TLS ClientHello starts 16 03 01
        assert_eq!(
            Header::parse(&[0x16, 0x03, 0x01], 4096),
            Err(DecodeErrorKind::BadMagic)
        );
        assert_eq!(
            Header::parse(&[0x53, 0x44, 0x02], 4096),
            Err(DecodeErrorKind::UnsupportedVersion(2))
        );
    }

    #[test]
    fn length_limit_is_inclusive_of_header() {
        // 14 + 4082 = 4096: allowed; 14 + 4083: too large
        let mut ok = [
            0x53, 0x44, 0x01, 0x04, 0, 0, 0, 0, 0, 1, 0x00, 0x00, 0x0f, 0xf2,
        ];
        assert!(Header::parse(&ok, 4096).unwrap().is_some());
        ok[13] = 0xf3;
        assert_eq!(
            Header::parse(&ok, 4096),
            Err(DecodeErrorKind::FrameTooLarge)
        );
        // u32::MAX length must not overflow
        let huge = [
            0x53, 0x44, 0x01, 0x04, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(
            Header::parse(&huge, usize::MAX),
            Ok(Some(Header {
                opcode: 4,
                flags: Flags::NONE,
                request_id: 1,
                length: u32::MAX
            }))
        );
        assert_eq!(
            Header::parse(&huge, 65_536),
            Err(DecodeErrorKind::FrameTooLarge)
        );
    }
}
