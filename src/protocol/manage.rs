//! Session management (protocol.md 5.21 to 5.34, 5.38): a user's own sessions and the
//! operations of administrators (the audit trail's requests are `audit`'s). Every request carries the
//! connection's session token, like HEARTBEAT; changes are answered with DONE, lists with
//! SESSION_LIST or STATS.

use bytes::BufMut;

use super::error::DecodeErrorKind;
use super::login::{Role, MAX_DEVICE_FIELD, MAX_USERNAME};
use super::macros::wire_enum;
use super::push::MAX_ADDRESS;
use super::secret::Secret;
use super::wire::{put_str, str_len, Reader, Token, TOKEN_LEN};

/// Longest statistic name in STATS.
pub const MAX_STAT_NAME: usize = 64;
/// Most entries in one SESSION_LIST, AUDIT_PAGE or STATS.
pub const MAX_PAGE: usize = 100;

/// A username that names an account: 1..=64 bytes (protocol.md 3; empty is
/// MALFORMED_FRAME, as in LOGIN_REQUEST).
fn account_name(r: &mut Reader<'_>) -> Result<String, DecodeErrorKind> {
    match r.string(MAX_USERNAME)? {
        "" => Err(DecodeErrorKind::InvalidValue),
        name => Ok(name.to_owned()),
    }
}

pub(super) fn count<T>(
    r: &mut Reader<'_>,
    item: impl Fn(&mut Reader<'_>) -> Result<T, DecodeErrorKind>,
) -> Result<Vec<T>, DecodeErrorKind> {
    let n = r.u16()? as usize;
    if n > MAX_PAGE {
        return Err(DecodeErrorKind::InvalidValue);
    }
    (0..n).map(|_| item(r)).collect()
}

/// LIST_SESSIONS (0x40): `token, offset u32, limit u16`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSessions {
    /// This connection's session token.
    pub token: Token,
    /// Entries to skip.
    pub offset: u32,
    /// Most entries wanted (0: a full page).
    pub limit: u16,
}

impl ListSessions {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(ListSessions {
            token: r.token()?,
            offset: r.u32()?,
            limit: r.u16()?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + 6
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        dst.put_u32(self.offset);
        dst.put_u16(self.limit);
    }
}

/// One session in SESSION_LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// Public session id.
    pub session_id: u64,
    /// The session the request was sent with.
    pub current: bool,
    /// A connection is bound to it now.
    pub connected: bool,
    /// The owner's account id.
    pub user_id: u64,
    /// The owner's name (1..=64 bytes).
    pub username: String,
    /// Device: client program, as given at login or at the last resume that gave one
    /// (0..=64 bytes).
    pub client: String,
    /// Device platform (0..=64 bytes).
    pub platform: String,
    /// The peer address of the login or last resume (0..=64 bytes).
    pub address: String,
    /// When the session was created (Unix ms).
    pub created: u64,
    /// The last valid request with its token (Unix ms).
    pub last_active: u64,
    /// Absolute expiry (Unix ms).
    pub expires: u64,
}

impl SessionEntry {
    const CURRENT: u8 = 0x01;
    const CONNECTED: u8 = 0x02;

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let session_id = r.u64()?;
        let flags = r.u8()?;
        if flags & !(Self::CURRENT | Self::CONNECTED) != 0 {
            return Err(DecodeErrorKind::InvalidValue);
        }
        Ok(SessionEntry {
            session_id,
            current: flags & Self::CURRENT != 0,
            connected: flags & Self::CONNECTED != 0,
            user_id: r.u64()?,
            username: r.string(MAX_USERNAME)?.to_owned(),
            client: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            platform: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            address: r.string(MAX_ADDRESS)?.to_owned(),
            created: r.u64()?,
            last_active: r.u64()?,
            expires: r.u64()?,
        })
    }

    fn encoded_len(&self) -> usize {
        8 + 1
            + 8
            + str_len(&self.username, MAX_USERNAME)
            + str_len(&self.client, MAX_DEVICE_FIELD)
            + str_len(&self.platform, MAX_DEVICE_FIELD)
            + str_len(&self.address, MAX_ADDRESS)
            + 24
    }

    fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.session_id);
        let mut flags = 0;
        if self.current {
            flags |= Self::CURRENT;
        }
        if self.connected {
            flags |= Self::CONNECTED;
        }
        dst.put_u8(flags);
        dst.put_u64(self.user_id);
        put_str(dst, &self.username, MAX_USERNAME);
        put_str(dst, &self.client, MAX_DEVICE_FIELD);
        put_str(dst, &self.platform, MAX_DEVICE_FIELD);
        put_str(dst, &self.address, MAX_ADDRESS);
        dst.put_u64(self.created);
        dst.put_u64(self.last_active);
        dst.put_u64(self.expires);
    }
}

/// SESSION_LIST (0x41): `total u32, count u16, count x entry`. `total` counts every match,
/// of which this page holds `count` starting at the request's offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionList {
    /// How many sessions match in all.
    pub total: u32,
    /// This page's entries (0..=100; `encode` sends the first 100).
    pub sessions: Vec<SessionEntry>,
}

impl SessionList {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(SessionList {
            total: r.u32()?,
            sessions: count(r, SessionEntry::decode)?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        6 + self.page().iter().map(|e| e.encoded_len()).sum::<usize>()
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u32(self.total);
        dst.put_u16(self.page().len() as u16);
        self.page().iter().for_each(|e| e.encode(dst));
    }
    fn page(&self) -> &[SessionEntry] {
        &self.sessions[..self.sessions.len().min(MAX_PAGE)]
    }
}

/// REVOKE_SESSION (0x42) and ADMIN_REVOKE_SESSION (0x52): `token, session_id u64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTarget {
    /// This connection's session token.
    pub token: Token,
    /// The session to end (REVOKE_SESSION: one of the caller's own).
    pub session_id: u64,
}

impl SessionTarget {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(SessionTarget {
            token: r.token()?,
            session_id: r.u64()?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + 8
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        dst.put_u64(self.session_id);
    }
}

wire_enum! {
    /// Which sessions LOGOUT_ALL ends (protocol.md 5.24 `scope`).
    pub closed enum LogoutScope: u8, to_u8, from_u8 {
        /// Every session of the user but the one the request was sent with.
        Others = 1 => "others",
        /// Every session, the current one included (the connection is then logged out).
        All = 2 => "all",
    }
}

/// LOGOUT_ALL (0x43): `token, scope u8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutAll {
    /// This connection's session token.
    pub token: Token,
    /// Which sessions to end.
    pub scope: LogoutScope,
}

impl LogoutAll {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let token = r.token()?;
        let scope = LogoutScope::from_u8(r.u8()?).ok_or(DecodeErrorKind::InvalidValue)?;
        Ok(LogoutAll { token, scope })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + 1
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        dst.put_u8(self.scope as u8);
    }
}

/// CHANGE_PASSWORD (0x44): `token, old str, new str`. `Debug` redacts both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePassword {
    /// This connection's session token.
    pub token: Token,
    /// The current password (0..=1024 bytes).
    pub old: Secret,
    /// The new password (0..=1024 bytes; at least the server's minimum length, default 8).
    pub new: Secret,
}

impl ChangePassword {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(ChangePassword {
            token: r.token()?,
            old: Secret::decode(r)?,
            new: Secret::decode(r)?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + self.old.encoded_len() + self.new.encoded_len()
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        self.old.encode(dst);
        self.new.encode(dst);
    }
}

/// DONE (0x45): `affected u32`: a management request was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Sessions ended by the request (ADMIN_SET_ROLE: 1 if the role changed, 0 if not;
    /// ADMIN_UNSUSPEND_USER: 0).
    pub affected: u32,
}

impl Done {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Done { affected: r.u32()? })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        4
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u32(self.affected);
    }
}

/// ADMIN_LIST_SESSIONS (0x50): `token, username str, offset u32, limit u16` (empty
/// username: every user's sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminListSessions {
    /// This connection's session token.
    pub token: Token,
    /// Only this user's sessions (oldest first); empty: every session (0..=64 bytes).
    pub username: String,
    /// Entries to skip.
    pub offset: u32,
    /// Most entries wanted (0: a full page).
    pub limit: u16,
}

impl AdminListSessions {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(AdminListSessions {
            token: r.token()?,
            username: r.string(MAX_USERNAME)?.to_owned(),
            offset: r.u32()?,
            limit: r.u16()?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + str_len(&self.username, MAX_USERNAME) + 6
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_str(dst, &self.username, MAX_USERNAME);
        dst.put_u32(self.offset);
        dst.put_u16(self.limit);
    }
}

/// ADMIN_LOGOUT_USER (0x53), ADMIN_SUSPEND_USER (0x54), ADMIN_UNSUSPEND_USER (0x55):
/// `token, username str`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTarget {
    /// This connection's session token.
    pub token: Token,
    /// The account (1..=64 bytes).
    pub username: String,
}

impl UserTarget {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(UserTarget {
            token: r.token()?,
            username: account_name(r)?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + str_len(&self.username, MAX_USERNAME)
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_str(dst, &self.username, MAX_USERNAME);
    }
}

/// ADMIN_SET_ROLE (0x56): `token, username str, role u8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSetRole {
    /// This connection's session token.
    pub token: Token,
    /// The account (1..=64 bytes).
    pub username: String,
    /// The new role.
    pub role: Role,
}

impl AdminSetRole {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(AdminSetRole {
            token: r.token()?,
            username: account_name(r)?,
            role: Role::from_u8(r.u8()?).ok_or(DecodeErrorKind::InvalidValue)?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + str_len(&self.username, MAX_USERNAME) + 1
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_str(dst, &self.username, MAX_USERNAME);
        dst.put_u8(self.role.to_u8());
    }
}

/// ADMIN_SET_PASSWORD (0x59): `token, username str, password str`. `Debug` redacts the
/// password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSetPassword {
    /// This connection's session token.
    pub token: Token,
    /// The account (1..=64 bytes).
    pub username: String,
    /// Its new password (0..=1024 bytes; at least the server's minimum length, default 8).
    pub password: Secret,
}

impl AdminSetPassword {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(AdminSetPassword {
            token: r.token()?,
            username: account_name(r)?,
            password: Secret::decode(r)?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + str_len(&self.username, MAX_USERNAME) + self.password.encoded_len()
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_str(dst, &self.username, MAX_USERNAME);
        self.password.encode(dst);
    }
}

/// ADMIN_STATS (0x57): `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminStats {
    /// This connection's session token.
    pub token: Token,
}

impl AdminStats {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(AdminStats { token: r.token()? })
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

/// STATS (0x58): `count u16, count x (name str, value u64)`: named counters, so a newer
/// server can add some without a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Named counters, `(name, value)`: names 1..=64 bytes, 0..=100 of them (`encode`
    /// sends the first 100).
    pub values: Vec<(String, u64)>,
}

impl Stats {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(Stats {
            values: count(r, |r| Ok((r.string(MAX_STAT_NAME)?.to_owned(), r.u64()?)))?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        2 + self
            .page()
            .iter()
            .map(|(n, _)| str_len(n, MAX_STAT_NAME) + 8)
            .sum::<usize>()
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u16(self.page().len() as u16);
        for (n, v) in self.page() {
            put_str(dst, n, MAX_STAT_NAME);
            dst.put_u64(*v);
        }
    }
    fn page(&self) -> &[(String, u64)] {
        &self.values[..self.values.len().min(MAX_PAGE)]
    }

    /// The value named `name`.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{check_vector as check, decode_slice, Frame, Message};

    #[test]
    #[rustfmt::skip]
    fn admin_set_password_vector() {
        let mut bytes = vec![
            0x53, 0x44, 0x01, 0x59, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x34, // op 59, rid 1, len 52
        ];
        bytes.extend((0u8..32).collect::<Vec<u8>>());                   // token 00..1f
        bytes.extend_from_slice(&[0x00, 0x05, b'a', b'l', b'i', b'c', b'e']); // username
        bytes.extend_from_slice(&[0x00, 0x0b]);                           // password, 11 bytes:
        bytes.extend_from_slice(b"n3w;pass wd");
        let msg = AdminSetPassword {
            token: Token(core::array::from_fn(|i| i as u8)),
            username: "alice".into(),
            password: "n3w;pass wd".into(),
        };
        assert!(!format!("{msg:?}").contains("n3w"), "Debug shows no password");
        check(&bytes, Frame::reply(1, Message::AdminSetPassword(msg)));
        // trailing junk is left unread: the frame's length says where it ends
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(decode_slice(&longer).map(|(_, n)| n), Ok(bytes.len()));
    }

    #[test]
    #[rustfmt::skip]
    fn admin_set_password_needs_a_username() {
        let mut bytes = vec![
            0x53, 0x44, 0x01, 0x59, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x24, // len 36
        ];
        bytes.extend([0u8; 32]);                   // token
        bytes.extend_from_slice(&[0x00, 0x00]);    // username: empty
        bytes.extend_from_slice(&[0x00, 0x00]);    // password: empty
        let e = decode_slice(&bytes).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::InvalidValue);
    }
}
