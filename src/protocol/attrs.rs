//! Session attributes (protocol.md 5.39 to 5.42): a small map the application keeps in a
//! session, set and read by the session's own connection (and by an administrator), and
//! pushed after SESSION_VALID when a session that holds some is resumed.

use bytes::BufMut;

use super::error::DecodeErrorKind;
use super::wire::{put_str, str_len, Reader, Token, TOKEN_LEN};

/// Longest attribute key, bytes of UTF-8.
pub const MAX_ATTR_KEY: usize = 64;
/// Longest attribute value, bytes: ATTR_SET and ADMIN_SET_ATTR at their longest still fit
/// the smallest maximum frame size (4,096, protocol.md 2).
pub const MAX_ATTR_VALUE: usize = 3904;
/// Most attributes one session holds.
pub const MAX_ATTRS: usize = 64;
/// Most bytes of keys and values together one session holds.
pub const MAX_ATTR_BYTES: usize = 4096;

/// A key: 1..=64 bytes of UTF-8.
pub(super) fn key(r: &mut Reader<'_>) -> Result<String, DecodeErrorKind> {
    match r.string(MAX_ATTR_KEY)? {
        "" => Err(DecodeErrorKind::InvalidValue),
        k => Ok(k.to_owned()),
    }
}

/// A `bytes` field: `u16` length, then the bytes (protocol.md 3).
pub(super) fn bytes(r: &mut Reader<'_>, max: usize) -> Result<Vec<u8>, DecodeErrorKind> {
    Ok(r.bytes(max)?.to_vec())
}

pub(super) fn put_bytes<B: BufMut>(dst: &mut B, b: &[u8], max: usize) {
    let b = &b[..b.len().min(max)];
    dst.put_u16(b.len() as u16);
    dst.put_slice(b);
}

pub(super) fn bytes_len(b: &[u8], max: usize) -> usize {
    2 + b.len().min(max)
}

/// `remove u8, value bytes`, with the rule that a removal carries no value.
pub(super) fn remove_and_value(r: &mut Reader<'_>) -> Result<(bool, Vec<u8>), DecodeErrorKind> {
    let remove = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(DecodeErrorKind::InvalidValue),
    };
    let value = bytes(r, MAX_ATTR_VALUE)?;
    if remove && !value.is_empty() {
        return Err(DecodeErrorKind::InvalidValue);
    }
    Ok((remove, value))
}

/// Bytes of `key str, remove u8, value bytes`.
pub(super) fn change_len(key: &str, value: &[u8]) -> usize {
    str_len(key, MAX_ATTR_KEY) + 1 + bytes_len(value, MAX_ATTR_VALUE)
}

/// Appends `key str, remove u8, value bytes`.
pub(super) fn put_change<B: BufMut>(dst: &mut B, key: &str, remove: bool, value: &[u8]) {
    put_str(dst, key, MAX_ATTR_KEY);
    dst.put_u8(u8::from(remove));
    put_bytes(dst, value, MAX_ATTR_VALUE);
}

/// ATTR_SET (0x4a): `token, key str(1..=64), value bytes(0..=3904)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrSet {
    /// This connection's session token.
    pub token: Token,
    /// The attribute's name.
    pub key: String,
    /// Its value (opaque bytes).
    pub value: Vec<u8>,
}

impl AttrSet {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(AttrSet {
            token: r.token()?,
            key: key(r)?,
            value: bytes(r, MAX_ATTR_VALUE)?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + str_len(&self.key, MAX_ATTR_KEY) + bytes_len(&self.value, MAX_ATTR_VALUE)
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_str(dst, &self.key, MAX_ATTR_KEY);
        put_bytes(dst, &self.value, MAX_ATTR_VALUE);
    }
}

/// A request of `token` and an attribute `key`, the key read by `$read` (which decides
/// whether it may be empty).
macro_rules! token_and_key {
    ($(#[$doc:meta])* $name:ident, $key_doc:literal, $read:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// This connection's session token.
            pub token: Token,
            #[doc = $key_doc]
            pub key: String,
        }

        impl $name {
            /// Decodes the payload (header excluded); `Err` on a short or malformed
            /// payload. Leftover bytes are for [`Reader::finish`].
            pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
                let token = r.token()?;
                let read: fn(&mut Reader<'_>) -> Result<String, DecodeErrorKind> = $read;
                Ok($name { token, key: read(r)? })
            }
            /// Payload bytes.
            pub fn encoded_len(&self) -> usize {
                TOKEN_LEN + str_len(&self.key, MAX_ATTR_KEY)
            }
            /// Appends the payload.
            pub fn encode<B: BufMut>(&self, dst: &mut B) {
                dst.put_slice(self.token.as_bytes());
                put_str(dst, &self.key, MAX_ATTR_KEY);
            }
        }
    };
}

pub(super) use token_and_key;

token_and_key!(
    /// ATTR_REMOVE (0x4b): `token, key str(1..=64)`.
    AttrRemove,
    "The attribute's name.",
    key
);

token_and_key!(
    /// ATTR_GET (0x4c): `token, key str(0..=64)`; empty for every attribute.
    AttrGet,
    "The attribute's name; empty for all.",
    |r| Ok(r.string(MAX_ATTR_KEY)?.to_owned())
);

/// ATTRS (0x4d): `session_id u64, count u16, count x (key str(1..=64), value bytes)`: the
/// answer to ATTR_GET, and a push after SESSION_VALID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs {
    /// Whose attributes.
    pub session_id: u64,
    /// Key and value, by key.
    pub attrs: Vec<(String, Vec<u8>)>,
}

impl Attrs {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let session_id = r.u64()?;
        let n = r.u16()? as usize;
        if n > MAX_ATTRS {
            return Err(DecodeErrorKind::InvalidValue);
        }
        let mut attrs = Vec::with_capacity(n);
        for _ in 0..n {
            attrs.push((key(r)?, bytes(r, MAX_ATTR_VALUE)?));
        }
        Ok(Attrs { session_id, attrs })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        10 + self
            .page()
            .iter()
            .map(|(k, v)| str_len(k, MAX_ATTR_KEY) + bytes_len(v, MAX_ATTR_VALUE))
            .sum::<usize>()
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.session_id);
        dst.put_u16(self.page().len() as u16);
        for (k, v) in self.page() {
            put_str(dst, k, MAX_ATTR_KEY);
            put_bytes(dst, v, MAX_ATTR_VALUE);
        }
    }
    fn page(&self) -> &[(String, Vec<u8>)] {
        &self.attrs[..self.attrs.len().min(MAX_ATTRS)]
    }
}

/// ADMIN_SET_ATTR (0x5a): `token, session_id u64, key str(1..=64), remove u8, value
/// bytes(0..=3904)`: an administrator sets (remove 0) or removes (remove 1, value empty) an
/// attribute of any session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSetAttr {
    /// This connection's session token.
    pub token: Token,
    /// The session whose attribute it is.
    pub session_id: u64,
    /// The attribute's name.
    pub key: String,
    /// Remove it rather than set it.
    pub remove: bool,
    /// Its value (empty when removing).
    pub value: Vec<u8>,
}

impl AdminSetAttr {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let token = r.token()?;
        let session_id = r.u64()?;
        let key = key(r)?;
        let (remove, value) = remove_and_value(r)?;
        Ok(AdminSetAttr {
            token,
            session_id,
            key,
            remove,
            value,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + 8 + change_len(&self.key, &self.value)
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        dst.put_u64(self.session_id);
        put_change(dst, &self.key, self.remove, &self.value);
    }
}
