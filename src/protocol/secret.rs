//! [`Secret`]: a password as the codec hands it over (LOGIN_REQUEST, REGISTER_REQUEST,
//! CHANGE_PASSWORD): zeroed when dropped, never shown by `Debug`.

use std::fmt;

use bytes::BufMut;

use super::error::DecodeErrorKind;
use super::login::MAX_PASSWORD;
use super::wire::Reader;

/// A password in memory. Zeroed on drop; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes the password's bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The password's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The password field (protocol.md 3: `str`, 0..=1,024 bytes of UTF-8), the one place its
/// encoding is written for the three messages that carry one.
impl Secret {
    /// Reads a password field.
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Secret, DecodeErrorKind> {
        Ok(Secret::new(r.string(MAX_PASSWORD)?.as_bytes().to_vec()))
    }

    /// The bytes that go on the wire: at most [`MAX_PASSWORD`], cut where what is left is
    /// still valid UTF-8 (never inside a character), like every other `str` field.
    /// Callers that must not lose any of it check the length first.
    fn field(&self) -> &[u8] {
        let b = &self.0;
        if b.len() <= MAX_PASSWORD {
            return b;
        }
        let mut end = MAX_PASSWORD;
        while end > 0 && std::str::from_utf8(&b[..end]).is_err() && MAX_PASSWORD - end < 3 {
            end -= 1;
        }
        &b[..end]
    }

    /// Bytes the field takes, length prefix included.
    pub(super) fn encoded_len(&self) -> usize {
        2 + self.field().len()
    }

    /// Appends the field.
    pub(super) fn encode<B: BufMut>(&self, dst: &mut B) {
        let b = self.field();
        // `field` is at most MAX_PASSWORD (1,024) bytes.
        dst.put_u16(b.len() as u16);
        dst.put_slice(b);
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the zeroing from being optimised away as a dead store.
        std::hint::black_box(&self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.as_bytes().to_vec())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_it_and_drop_zeroes_it() {
        assert_eq!(
            format!("{:?}", Secret::from("hunter2")),
            "Secret(<redacted>)"
        );
        let s = Secret::from(String::from("pw"));
        assert_eq!((s.len(), s.as_bytes()), (2, &b"pw"[..]));
        assert!(!s.is_empty());
    }

    #[test]
    fn a_long_password_is_cut_between_characters() {
        // 1,023 ASCII bytes and a 2-byte character: the cut at 1,024 would split it
        let s = Secret::from(format!("{}é", "a".repeat(MAX_PASSWORD - 1)));
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(out.len(), s.encoded_len());
        assert_eq!(
            u16::from_be_bytes([out[0], out[1]]) as usize,
            MAX_PASSWORD - 1
        );
        assert!(std::str::from_utf8(&out[2..]).is_ok());
        let short = Secret::from("pw");
        assert_eq!(short.encoded_len(), 4);
    }
}
