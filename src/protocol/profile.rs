//! Account profiles and application roles (protocol.md 5.44 to 5.48): PROFILE_SET and
//! PROFILE_GET on the caller's account, ADMIN_SET_PROFILE and ADMIN_SET_APP_ROLE on any,
//! and USER_INFO, the reply and the push after LOGIN_SUCCESS and SESSION_VALID; the
//! administrators' list of accounts with their roles (ADMIN_LIST_USERS, USER_LIST, 5.49
//! and 5.50). A profile attribute follows a session attribute's rules (`attrs`).

use bytes::BufMut;

use super::attrs::{
    bytes, bytes_len, change_len, key, put_bytes, put_change, remove_and_value, token_and_key,
    MAX_ATTRS, MAX_ATTR_KEY, MAX_ATTR_VALUE,
};
use super::error::DecodeErrorKind;
use super::login::{Role, MAX_USERNAME};
use super::manage::{count, MAX_PAGE};
use super::wire::{put_str, str_len, Reader, Token, TOKEN_LEN};

/// Longest application role name (`--role`).
pub const MAX_ROLE_NAME: usize = 32;

/// PROFILE_SET (0x4e): `token, key str(1..=64), remove u8, value bytes(0..=3904)`: the
/// caller sets (remove 0) or removes (remove 1, value empty) an attribute of its own
/// account's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSet {
    /// This connection's session token.
    pub token: Token,
    /// The attribute's name.
    pub key: String,
    /// Remove it rather than set it.
    pub remove: bool,
    /// Its value (empty when removing).
    pub value: Vec<u8>,
}

impl ProfileSet {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let token = r.token()?;
        let key = key(r)?;
        let (remove, value) = remove_and_value(r)?;
        Ok(ProfileSet {
            token,
            key,
            remove,
            value,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + change_len(&self.key, &self.value)
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_change(dst, &self.key, self.remove, &self.value);
    }
}

/// ADMIN_SET_PROFILE (0x5b): `token, username str(1..=64), key str(1..=64), remove u8,
/// value bytes(0..=3904)`: an administrator sets or removes an attribute of any account's
/// profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSetProfile {
    /// This connection's session token.
    pub token: Token,
    /// Whose profile.
    pub username: String,
    /// The attribute's name.
    pub key: String,
    /// Remove it rather than set it.
    pub remove: bool,
    /// Its value (empty when removing).
    pub value: Vec<u8>,
}

impl AdminSetProfile {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let token = r.token()?;
        let username = match r.string(MAX_USERNAME)? {
            "" => return Err(DecodeErrorKind::InvalidValue),
            u => u.to_owned(),
        };
        let key = key(r)?;
        let (remove, value) = remove_and_value(r)?;
        Ok(AdminSetProfile {
            token,
            username,
            key,
            remove,
            value,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + str_len(&self.username, MAX_USERNAME) + change_len(&self.key, &self.value)
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_str(dst, &self.username, MAX_USERNAME);
        put_change(dst, &self.key, self.remove, &self.value);
    }
}

/// ADMIN_SET_APP_ROLE (0x5c): `token, username str(1..=64), role str(0..=32)`: the
/// account's application role (one the operator declared with `--role`), or none (empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSetAppRole {
    /// This connection's session token.
    pub token: Token,
    /// Whose role.
    pub username: String,
    /// The role; empty: none.
    pub role: String,
}

impl AdminSetAppRole {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let token = r.token()?;
        let username = match r.string(MAX_USERNAME)? {
            "" => return Err(DecodeErrorKind::InvalidValue),
            u => u.to_owned(),
        };
        Ok(AdminSetAppRole {
            token,
            username,
            role: r.string(MAX_ROLE_NAME)?.to_owned(),
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + str_len(&self.username, MAX_USERNAME) + str_len(&self.role, MAX_ROLE_NAME)
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_str(dst, &self.username, MAX_USERNAME);
        put_str(dst, &self.role, MAX_ROLE_NAME);
    }
}

token_and_key!(
    /// PROFILE_GET (0x4f): `token, key str(0..=64)`: the caller's account as USER_INFO,
    /// its profile's attributes all (empty key) or the one named.
    ProfileGet,
    "The attribute wanted; empty for all.",
    |r| Ok(r.string(MAX_ATTR_KEY)?.to_owned())
);

/// USER_INFO (0x34): `user_id u64, app_role str(0..=32), count u16, count x (key
/// str(1..=64), value bytes)`: an account's application role and profile; the reply to
/// PROFILE_GET, and a push after LOGIN_SUCCESS and SESSION_VALID when the account has
/// either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// Whose.
    pub user_id: u64,
    /// Its application role; empty: none.
    pub app_role: String,
    /// The profile's attributes, by key.
    pub profile: Vec<(String, Vec<u8>)>,
}

impl UserInfo {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let user_id = r.u64()?;
        let app_role = r.string(MAX_ROLE_NAME)?.to_owned();
        let n = r.u16()? as usize;
        if n > MAX_ATTRS {
            return Err(DecodeErrorKind::InvalidValue);
        }
        let mut profile = Vec::with_capacity(n);
        for _ in 0..n {
            profile.push((key(r)?, bytes(r, MAX_ATTR_VALUE)?));
        }
        Ok(UserInfo {
            user_id,
            app_role,
            profile,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        8 + str_len(&self.app_role, MAX_ROLE_NAME)
            + 2
            + self
                .page()
                .iter()
                .map(|(k, v)| str_len(k, MAX_ATTR_KEY) + bytes_len(v, MAX_ATTR_VALUE))
                .sum::<usize>()
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.user_id);
        put_str(dst, &self.app_role, MAX_ROLE_NAME);
        dst.put_u16(self.page().len() as u16);
        for (k, v) in self.page() {
            put_str(dst, k, MAX_ATTR_KEY);
            put_bytes(dst, v, MAX_ATTR_VALUE);
        }
    }
    fn page(&self) -> &[(String, Vec<u8>)] {
        &self.profile[..self.profile.len().min(MAX_ATTRS)]
    }
}

/// ADMIN_LIST_USERS (0x5d): `token, offset u32, limit u16`: the accounts, by id, a page
/// (LIST_SESSIONS's layout).
pub type AdminListUsers = super::manage::ListSessions;

/// One account in USER_LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// The account's id.
    pub user_id: u64,
    /// Its name (1..=64 bytes).
    pub username: String,
    /// Its protocol role.
    pub role: Role,
    /// Its application role; empty: none.
    pub app_role: String,
    /// Suspended by an administrator.
    pub suspended: bool,
    /// When it was created (Unix ms).
    pub created: u64,
    /// Its last successful login (Unix ms; 0: never).
    pub last_login: u64,
}

impl UserEntry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(UserEntry {
            user_id: r.u64()?,
            username: r.string(MAX_USERNAME)?.to_owned(),
            role: Role::from_u8(r.u8()?).ok_or(DecodeErrorKind::InvalidValue)?,
            app_role: r.string(MAX_ROLE_NAME)?.to_owned(),
            suspended: match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeErrorKind::InvalidValue),
            },
            created: r.u64()?,
            last_login: r.u64()?,
        })
    }
    fn encoded_len(&self) -> usize {
        8 + str_len(&self.username, MAX_USERNAME)
            + 1
            + str_len(&self.app_role, MAX_ROLE_NAME)
            + 1
            + 16
    }
    fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.user_id);
        put_str(dst, &self.username, MAX_USERNAME);
        dst.put_u8(self.role.to_u8());
        put_str(dst, &self.app_role, MAX_ROLE_NAME);
        dst.put_u8(u8::from(self.suspended));
        dst.put_u64(self.created);
        dst.put_u64(self.last_login);
    }
}

/// USER_LIST (0x5e): `total u32, count u16, count x entry`: a page of accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserList {
    /// Accounts in all.
    pub total: u32,
    /// This page (`encode` sends the first [`MAX_PAGE`]).
    pub users: Vec<UserEntry>,
}

impl UserList {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(UserList {
            total: r.u32()?,
            users: count(r, UserEntry::decode)?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        6 + self
            .page()
            .iter()
            .map(UserEntry::encoded_len)
            .sum::<usize>()
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u32(self.total);
        dst.put_u16(self.page().len() as u16);
        self.page().iter().for_each(|e| e.encode(dst));
    }
    fn page(&self) -> &[UserEntry] {
        &self.users[..self.users.len().min(MAX_PAGE)]
    }
}
