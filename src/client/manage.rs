//! The client side of session management (protocol.md 5.21 to 5.34, 5.36 to 5.38): own sessions, the
//! audit trail, and the administrators' operations. Each call sends the session's token
//! and returns the typed reply; FORBIDDEN, NOT_FOUND and the like come back as
//! `ClientError::Server` with their code.

use super::{Client, ClientError};
use crate::protocol::{
    AdminListSessions, AdminSetAttr, AdminSetPassword, AdminSetRole, AdminStats, AttrGet,
    AttrRemove, AttrSet, AuditPage, AuditQuery, AuditRecords, AuditSearch, ChangePassword,
    ListSessions, LogoutAll, LogoutScope, Message, Role, SessionList, SessionTarget, Stats, Token,
    UserTarget,
};
use crate::protocol::{
    AdminListUsers, AdminSetAppRole, AdminSetProfile, ProfileGet, ProfileSet, Secret, UserInfo,
    UserList, MAX_ATTR_KEY, MAX_ATTR_VALUE, MAX_ROLE_NAME,
};

/// What AUDIT_QUERY or AUDIT_SEARCH asks for (`Default`: your own events, or everyone's for an admin,
/// oldest first, a full page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRequest {
    /// Whose events; empty: your own (a user) or everyone's (an admin).
    pub username: String,
    /// An `AuditKind` record byte; 0 for every kind.
    pub kind: u8,
    /// Events at or after this, Unix milliseconds.
    pub from_ms: u64,
    /// Events before this, Unix milliseconds; 0: no upper bound.
    pub to_ms: u64,
    /// 0: from the oldest record the server holds; else the `next_cursor` of the previous
    /// AUDIT_PAGE.
    pub cursor: u64,
    /// 0: as many as the server sends in one page.
    pub limit: u16,
    /// AUDIT_SEARCH only: newest first (the cursor is then the `next_cursor` to continue
    /// below; 0 starts from the newest).
    pub newest_first: bool,
}

impl AuditRequest {
    fn query(&self, token: Token) -> AuditQuery {
        AuditQuery {
            token,
            username: self.username.clone(),
            kind: self.kind,
            from: self.from_ms,
            to: self.to_ms,
            cursor: self.cursor,
            limit: self.limit,
        }
    }
}

impl Client {
    fn expect_done(&mut self, m: Message) -> Result<u32, ClientError> {
        let reply = self.request(m)?;
        match reply.message {
            Message::Done(d) => Ok(d.affected),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    fn expect_list(&mut self, m: Message) -> Result<SessionList, ClientError> {
        let reply = self.request(m)?;
        match reply.message {
            Message::SessionList(l) => Ok(l),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// LIST_SESSIONS: a page of your sessions, oldest first (`limit` 0: a full page).
    pub fn list_sessions(&mut self, offset: u32, limit: u16) -> Result<SessionList, ClientError> {
        let token = self.current_token()?;
        self.expect_list(Message::ListSessions(ListSessions {
            token,
            offset,
            limit,
        }))
    }

    /// REVOKE_SESSION: ends one of your sessions (this one included: the server then
    /// closes this connection with SESSION_REVOKED after the reply).
    pub fn revoke_session(&mut self, session_id: u64) -> Result<u32, ClientError> {
        let token = self.current_token()?;
        self.expect_done(Message::RevokeSession(SessionTarget { token, session_id }))
    }

    /// LOGOUT_ALL: ends your other sessions, or all of them (then this connection is
    /// logged out and stays open). Returns how many ended.
    pub fn logout_all(&mut self, scope: LogoutScope) -> Result<u32, ClientError> {
        let token = self.current_token()?;
        let n = self.expect_done(Message::LogoutAll(LogoutAll { token, scope }))?;
        if scope == LogoutScope::All {
            self.forget_session();
        }
        Ok(n)
    }

    /// CHANGE_PASSWORD: returns how many other sessions were revoked.
    pub fn change_password(&mut self, old: &str, new: &str) -> Result<u32, ClientError> {
        let token = self.current_token()?;
        self.expect_done(Message::ChangePassword(ChangePassword {
            token,
            old: Secret::new(old.as_bytes().to_vec()),
            new: Secret::new(new.as_bytes().to_vec()),
        }))
    }

    /// AUDIT_QUERY.
    pub fn audit_query(&mut self, q: &AuditRequest) -> Result<AuditPage, ClientError> {
        let token = self.current_token()?;
        let reply = self.request(Message::AuditQuery(q.query(token)))?;
        match reply.message {
            Message::AuditPage(p) => Ok(p),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// AUDIT_SEARCH: typed records, oldest or newest first (`q.newest_first`).
    pub fn audit_search(&mut self, q: &AuditRequest) -> Result<AuditRecords, ClientError> {
        let token = self.current_token()?;
        let reply = self.request(Message::AuditSearch(AuditSearch {
            query: q.query(token),
            newest_first: q.newest_first,
        }))?;
        match reply.message {
            Message::AuditRecords(p) => Ok(p),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// ADMIN_LIST_SESSIONS: every session (`username` empty) or one user's.
    pub fn admin_list_sessions(
        &mut self,
        username: &str,
        offset: u32,
        limit: u16,
    ) -> Result<SessionList, ClientError> {
        let token = self.current_token()?;
        self.expect_list(Message::AdminListSessions(AdminListSessions {
            token,
            username: username.to_owned(),
            offset,
            limit,
        }))
    }

    /// ADMIN_REVOKE_SESSION.
    pub fn admin_revoke_session(&mut self, session_id: u64) -> Result<u32, ClientError> {
        let token = self.current_token()?;
        self.expect_done(Message::AdminRevokeSession(SessionTarget {
            token,
            session_id,
        }))
    }

    fn user_target(&self, username: &str) -> Result<UserTarget, ClientError> {
        Ok(UserTarget {
            token: self.current_token()?,
            username: username.to_owned(),
        })
    }

    /// ADMIN_LOGOUT_USER: returns how many sessions ended.
    pub fn admin_logout_user(&mut self, username: &str) -> Result<u32, ClientError> {
        let t = self.user_target(username)?;
        self.expect_done(Message::AdminLogoutUser(t))
    }

    /// ADMIN_SUSPEND_USER: returns how many sessions ended.
    pub fn admin_suspend_user(&mut self, username: &str) -> Result<u32, ClientError> {
        let t = self.user_target(username)?;
        self.expect_done(Message::AdminSuspendUser(t))
    }

    /// ADMIN_UNSUSPEND_USER.
    pub fn admin_unsuspend_user(&mut self, username: &str) -> Result<u32, ClientError> {
        let t = self.user_target(username)?;
        self.expect_done(Message::AdminUnsuspendUser(t))
    }

    /// ADMIN_SET_ROLE: returns 1 if the role changed, 0 if it already was `role`.
    pub fn admin_set_role(&mut self, username: &str, role: Role) -> Result<u32, ClientError> {
        let token = self.current_token()?;
        self.expect_done(Message::AdminSetRole(AdminSetRole {
            token,
            username: username.to_owned(),
            role,
        }))
    }

    /// ADMIN_SET_PASSWORD: sets `username`'s password (no old one needed) and ends every
    /// session of the account (this one too, when it is yours: the reply comes first);
    /// returns how many ended. `INVALID_ARGUMENT` below the server's minimum length,
    /// `NOT_FOUND`, `FORBIDDEN` for a non-administrator, `THROTTLED` come back as
    /// `ClientError::Server`.
    pub fn admin_set_password(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<u32, ClientError> {
        let token = self.current_token()?;
        self.expect_done(Message::AdminSetPassword(AdminSetPassword {
            token,
            username: username.to_owned(),
            password: Secret::new(password.as_bytes().to_vec()),
        }))
    }

    /// ATTR_SET: sets an attribute of this session (durable when it returns).
    /// `LIMIT_EXCEEDED` past the bounds (protocol.md 5.39) comes back as
    /// `ClientError::Server`.
    pub fn set_attr(&mut self, key: &str, value: &[u8]) -> Result<(), ClientError> {
        check_attr(key, value)?;
        let token = self.current_token()?;
        self.expect_done(Message::AttrSet(AttrSet {
            token,
            key: key.to_owned(),
            value: value.to_vec(),
        }))
        .map(drop)
    }

    /// ATTR_REMOVE: removes an attribute of this session; whether it was set.
    pub fn remove_attr(&mut self, key: &str) -> Result<bool, ClientError> {
        check_attr(key, b"")?;
        let token = self.current_token()?;
        self.expect_done(Message::AttrRemove(AttrRemove {
            token,
            key: key.to_owned(),
        }))
        .map(|n| n > 0)
    }

    /// ATTR_GET: this session's attributes (`key` empty), or the one named.
    pub fn get_attrs(&mut self, key: &str) -> Result<Vec<(String, Vec<u8>)>, ClientError> {
        if key.len() > MAX_ATTR_KEY {
            return Err(ClientError::Usage("an attribute key is at most 64 bytes"));
        }
        let token = self.current_token()?;
        let reply = self.request(Message::AttrGet(AttrGet {
            token,
            key: key.to_owned(),
        }))?;
        match reply.message {
            Message::Attrs(a) => Ok(a.attrs),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// ADMIN_SET_ATTR: sets (`Some`) or removes (`None`) an attribute of any session;
    /// returns how many changed (0: a removal of a key that was not set).
    pub fn admin_set_attr(
        &mut self,
        session_id: u64,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<u32, ClientError> {
        check_attr(key, value.unwrap_or_default())?;
        let token = self.current_token()?;
        self.expect_done(Message::AdminSetAttr(AdminSetAttr {
            token,
            session_id,
            key: key.to_owned(),
            remove: value.is_none(),
            value: value.map_or_else(Vec::new, <[u8]>::to_vec),
        }))
    }

    /// PROFILE_SET: sets (`Some`) or removes (`None`) an attribute of your account's
    /// profile; whether something changed.
    pub fn set_profile(&mut self, key: &str, value: Option<&[u8]>) -> Result<bool, ClientError> {
        check_attr(key, value.unwrap_or_default())?;
        let token = self.current_token()?;
        self.expect_done(Message::ProfileSet(ProfileSet {
            token,
            key: key.to_owned(),
            remove: value.is_none(),
            value: value.map_or_else(Vec::new, <[u8]>::to_vec),
        }))
        .map(|n| n > 0)
    }

    /// PROFILE_GET: your account's application role and profile (`key` empty: all of it).
    pub fn get_profile(&mut self, key: &str) -> Result<UserInfo, ClientError> {
        if key.len() > MAX_ATTR_KEY {
            return Err(ClientError::Usage("an attribute key is at most 64 bytes"));
        }
        let token = self.current_token()?;
        let reply = self.request(Message::ProfileGet(ProfileGet {
            token,
            key: key.to_owned(),
        }))?;
        match reply.message {
            Message::UserInfo(u) => Ok(u),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// ADMIN_SET_PROFILE: sets or removes an attribute of any account's profile.
    pub fn admin_set_profile(
        &mut self,
        username: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<u32, ClientError> {
        check_attr(key, value.unwrap_or_default())?;
        let token = self.current_token()?;
        self.expect_done(Message::AdminSetProfile(AdminSetProfile {
            token,
            username: username.to_owned(),
            key: key.to_owned(),
            remove: value.is_none(),
            value: value.map_or_else(Vec::new, <[u8]>::to_vec),
        }))
    }

    /// ADMIN_SET_APP_ROLE: gives an account one of the server's application roles (empty:
    /// none); 1 if it changed.
    pub fn admin_set_app_role(&mut self, username: &str, role: &str) -> Result<u32, ClientError> {
        if role.len() > MAX_ROLE_NAME {
            return Err(ClientError::Usage(
                "an application role is at most 32 bytes",
            ));
        }
        let token = self.current_token()?;
        self.expect_done(Message::AdminSetAppRole(AdminSetAppRole {
            token,
            username: username.to_owned(),
            role: role.to_owned(),
        }))
    }

    /// ADMIN_LIST_USERS: a page of the accounts, with their roles.
    pub fn admin_list_users(&mut self, offset: u32, limit: u16) -> Result<UserList, ClientError> {
        let token = self.current_token()?;
        let reply = self.request(Message::AdminListUsers(AdminListUsers {
            token,
            offset,
            limit,
        }))?;
        match reply.message {
            Message::UserList(l) => Ok(l),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// ADMIN_STATS.
    pub fn admin_stats(&mut self) -> Result<Stats, ClientError> {
        let token = self.current_token()?;
        let reply = self.request(Message::AdminStats(AdminStats { token }))?;
        match reply.message {
            Message::Stats(s) => Ok(s),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }
}

/// protocol.md 5.39: a key of 1..=64 bytes, a value of at most 3,904 (refused here, not cut
/// by the encoder).
fn check_attr(key: &str, value: &[u8]) -> Result<(), ClientError> {
    if key.is_empty() || key.len() > MAX_ATTR_KEY {
        return Err(ClientError::Usage("an attribute key is 1 to 64 bytes"));
    }
    if value.len() > MAX_ATTR_VALUE {
        return Err(ClientError::Usage(
            "an attribute value is at most 3,904 bytes",
        ));
    }
    Ok(())
}
