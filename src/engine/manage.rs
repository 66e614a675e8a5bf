//! Session management over the protocol (protocol.md 5.21 to 5.34, 5.36 to 5.38): a user's
//! own sessions (list, revoke, log out everywhere, change password), the audit trail, and
//! the administrators' operations (every session, force-logout, suspension, roles, stats,
//! setting a password).
//!
//! Every request carries the connection's token (checked like a heartbeat's). Access rule:
//! a user acts on their own sessions only, and asking about anyone else's gets FORBIDDEN
//! whether or not the session exists; the ADMIN_* operations answer FORBIDDEN to users.

use std::time::Instant;

use log::info;

use super::event::{Actor, Audit, AuditKind, Event};
use super::{millis, End, Engine};
use crate::auth::{HashJob, JobKind, JobOutcome, PasswordRecord};
use crate::conn::ConnId;
use crate::protocol::{
    AdminListSessions, AdminSetPassword, AdminSetRole, ChangePassword, Done, ErrorCode, Flags,
    ListSessions, LoginFailureReason, LogoutAll, LogoutScope, Message, NewLogin, RevokeReason,
    Role, SessionEntry, SessionList, SessionTarget, Stats, Token, UserTarget, MAX_PAGE,
};
use crate::session::{Session, User};

/// Whether `m` is one of the requests this module answers (the ones carrying a token
/// besides HEARTBEAT and LOGOUT_REQUEST).
pub(super) fn is_management(m: &Message) -> bool {
    token_of(m).is_some()
}

/// protocol.md 5: opcodes 0x50 to 0x7f are the administrators'.
fn is_admin_only(m: &Message) -> bool {
    (0x50..=0x7f).contains(&(m.opcode() as u8))
}

/// NEW_LOGIN goes to at most this many connections of the account (protocol.md 5.20).
pub const MAX_NEW_LOGIN_NOTICES: usize = 32;

/// Who sent a management request.
pub(super) struct Caller {
    pub(super) session_id: u64,
    pub(super) user_id: u64,
    pub(super) username: String,
    pub(super) role: Role,
    pub(super) client: String,
    pub(super) platform: String,
    pub(super) address: String,
}

impl Caller {
    /// The `End` of a session this caller revokes.
    fn revokes(&self, reason: RevokeReason) -> End {
        End::Revoked {
            reason,
            by: self.actor(),
        }
    }

    /// The caller as the actor of what it does.
    pub(super) fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id,
            session_id: self.session_id,
            address: self.address.clone(),
            client: self.client.clone(),
            platform: self.platform.clone(),
        }
    }

    /// An audit record of `kind` about the caller's own session.
    fn own(&self, kind: AuditKind) -> Audit {
        Audit::new(kind, self.user_id, self.session_id, self.address.clone())
            .device(&self.client, &self.platform)
    }
}

fn token_of(m: &Message) -> Option<&Token> {
    Some(match m {
        Message::ListSessions(r) => &r.token,
        Message::RevokeSession(r) | Message::AdminRevokeSession(r) => &r.token,
        Message::LogoutAll(r) => &r.token,
        Message::ChangePassword(r) => &r.token,
        Message::AuditQuery(r) => &r.token,
        Message::AuditSearch(r) => &r.query.token,
        Message::AttrSet(r) => &r.token,
        Message::AttrRemove(r) => &r.token,
        Message::AttrGet(r) => &r.token,
        Message::AdminSetAttr(r) => &r.token,
        Message::ProfileSet(r) => &r.token,
        Message::ProfileGet(r) => &r.token,
        Message::AdminSetProfile(r) => &r.token,
        Message::AdminSetAppRole(r) => &r.token,
        Message::AdminListUsers(r) => &r.token,
        Message::AdminListSessions(r) => &r.token,
        Message::AdminLogoutUser(r)
        | Message::AdminSuspendUser(r)
        | Message::AdminUnsuspendUser(r) => &r.token,
        Message::AdminSetRole(r) => &r.token,
        Message::AdminStats(r) => &r.token,
        Message::AdminSetPassword(r) => &r.token,
        _ => return None,
    })
}

impl Engine {
    /// Answers one management request on an ACTIVE connection.
    pub(super) fn manage(&mut self, id: ConnId, rid: u32, msg: Message, now: Instant) {
        let Some(token) = token_of(&msg) else {
            return;
        };
        let Some(sid) = self.check_token(id, rid, token, now) else {
            return;
        };
        self.mark_valid_streak(id);
        let Some(caller) = self.caller(id, sid) else {
            return;
        };
        if is_admin_only(&msg) && caller.role != Role::Admin {
            let what = msg.opcode().name();
            info!(
                "forbidden {what} user={} peer={}",
                caller.username, caller.address
            );
            let code = ErrorCode::Forbidden;
            self.reply_error(id, rid, code, "administrators only", false, now);
            return;
        }
        match msg {
            Message::ListSessions(r) => self.list_own(id, rid, &caller, r, now),
            Message::RevokeSession(r) => self.revoke_own(id, rid, &caller, r, now),
            Message::LogoutAll(r) => self.logout_all(id, rid, &caller, r, now),
            Message::ChangePassword(r) => self.start_change_password(id, rid, &caller, r, now),
            Message::AuditQuery(r) => self.audit_query(id, rid, &caller, r, now),
            Message::AuditSearch(r) => self.audit_search(id, rid, &caller, r, now),
            Message::AdminListSessions(r) => self.admin_list(id, rid, &caller, r, now),
            Message::AdminRevokeSession(r) => self.admin_revoke(id, rid, &caller, r, now),
            Message::AdminLogoutUser(r) => self.admin_logout_user(id, rid, &caller, r, now),
            Message::AdminSuspendUser(r) => self.admin_suspend(id, rid, &caller, r, true, now),
            Message::AdminUnsuspendUser(r) => self.admin_suspend(id, rid, &caller, r, false, now),
            Message::AdminSetRole(r) => self.admin_set_role(id, rid, &caller, r, now),
            Message::AdminStats(_) => self.admin_stats(id, rid, now),
            Message::AdminSetPassword(r) => self.start_admin_set_password(id, rid, &caller, r, now),
            Message::AttrSet(r) => self.attr_set(id, rid, &caller, r, now),
            Message::AttrRemove(r) => self.attr_remove(id, rid, &caller, r, now),
            Message::AttrGet(r) => self.attr_get(id, rid, &caller, r, now),
            Message::AdminSetAttr(r) => self.admin_set_attr(id, rid, r, now),
            Message::ProfileSet(r) => self.profile_set(id, rid, &caller, r, now),
            Message::ProfileGet(r) => self.profile_get(id, rid, &caller, r, now),
            Message::AdminSetProfile(r) => self.admin_set_profile(id, rid, r, now),
            Message::AdminSetAppRole(r) => self.admin_set_app_role(id, rid, &caller, r, now),
            Message::AdminListUsers(r) => self.admin_list_users(id, rid, r, now),
            _ => {}
        }
    }

    fn caller(&self, id: ConnId, sid: u64) -> Option<Caller> {
        let s = self.sessions.get(sid)?;
        let u = self.users.get(s.user_id)?;
        let (client, platform) = self.sessions.device(s);
        Some(Caller {
            session_id: sid,
            user_id: u.id,
            username: u.username.clone(),
            role: u.role,
            client: client.to_owned(),
            platform: platform.to_owned(),
            address: self
                .conn(id)
                .map(|c| c.peer.to_string())
                .unwrap_or_default(),
        })
    }

    fn done(&mut self, id: ConnId, rid: u32, affected: u32, now: Instant) {
        self.send(id, rid, Flags::NONE, &Message::Done(Done { affected }), now);
    }

    fn entry(&self, s: &Session, current: u64) -> SessionEntry {
        let last = s.last_activity_ms;
        let (client, platform) = self.sessions.device(s);
        SessionEntry {
            session_id: s.id,
            current: s.id == current,
            connected: s.conn.is_some_and(|c| self.contains(c)),
            user_id: s.user_id,
            username: self
                .users
                .get(s.user_id)
                .map(|u| u.username.clone())
                .unwrap_or_default(),
            client: client.to_owned(),
            platform: platform.to_owned(),
            address: s.peer.to_string(),
            created: s.created_ms,
            last_active: last,
            expires: s.expires_ms,
        }
    }

    /// One page of `ids` (oldest first) as SESSION_LIST.
    #[allow(clippy::too_many_arguments)] // a request's page: who, which, where, when
    fn send_page(
        &mut self,
        id: ConnId,
        rid: u32,
        ids: &[u64],
        offset: u32,
        limit: u16,
        current: u64,
        now: Instant,
    ) {
        let limit = page_limit(limit);
        let sessions = ids
            .iter()
            .skip(offset as usize)
            .take(limit)
            .filter_map(|&sid| self.sessions.get(sid))
            .map(|s| self.entry(s, current))
            .collect();
        let total = ids.len().min(u32::MAX as usize) as u32;
        self.send(
            id,
            rid,
            Flags::NONE,
            &Message::SessionList(SessionList { total, sessions }),
            now,
        );
    }

    fn list_own(&mut self, id: ConnId, rid: u32, c: &Caller, r: ListSessions, now: Instant) {
        let ids: Vec<u64> = self.sessions.of_user(c.user_id).collect();
        self.send_page(id, rid, &ids, r.offset, r.limit, c.session_id, now);
    }

    fn revoke_own(&mut self, id: ConnId, rid: u32, c: &Caller, r: SessionTarget, now: Instant) {
        let mine = self
            .sessions
            .get(r.session_id)
            .is_some_and(|s| s.user_id == c.user_id);
        if !mine {
            // The same answer for "not yours" and "does not exist": ids are not probed.
            self.reply_error(
                id,
                rid,
                ErrorCode::Forbidden,
                "not a session of yours",
                false,
                now,
            );
            return;
        }
        // DONE first: revoking the current session ends this connection right after it.
        self.done(id, rid, 1, now);
        self.end_session(r.session_id, c.revokes(RevokeReason::ByUser), 0, now);
    }

    /// Ends every session of `user_id` but `except`, telling their connections `reason`.
    fn revoke_user(&mut self, user_id: u64, except: Option<u64>, end: &End, now: Instant) -> u32 {
        let ids: Vec<u64> = self
            .sessions
            .of_user(user_id)
            .filter(|&s| Some(s) != except)
            .collect();
        for &sid in &ids {
            self.end_session(sid, end.clone(), 0, now);
        }
        ids.len() as u32
    }

    fn logout_all(&mut self, id: ConnId, rid: u32, c: &Caller, r: LogoutAll, now: Instant) {
        let end = c.revokes(RevokeReason::ByUser);
        let mut n = self.revoke_user(c.user_id, Some(c.session_id), &end, now);
        if r.scope == LogoutScope::All {
            // The current session ends as a logout: this connection stays open, logged out.
            self.end_session(c.session_id, End::LoggedOut, rid, now);
            self.stats.logouts += 1;
            self.logged_out(id, now);
            n += 1;
        }
        self.done(id, rid, n, now);
    }

    fn start_change_password(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        r: ChangePassword,
        now: Instant,
    ) {
        if r.new.len() < self.cfg.min_password_len {
            let msg = format!(
                "new password must be at least {} bytes",
                self.cfg.min_password_len
            );
            self.reply_error(id, rid, ErrorCode::InvalidArgument, &msg, false, now);
            return;
        }
        let Some(record) = self.users.get(c.user_id).map(|u| u.password.clone()) else {
            return;
        };
        // A wrong old password counts as a failed login: the same policy admits the hash.
        if let Err(wait) = self.admit_hash(id, Some(c.user_id), now) {
            self.stats.logins_throttled += 1;
            let msg = format!("too many attempts; retry in {} ms", millis(wait));
            let a = c
                .own(AuditKind::PasswordChangeFailed)
                .reason(LoginFailureReason::Throttled.to_u16())
                .note(msg.clone());
            self.audit(a, now);
            self.reply_error(id, rid, ErrorCode::Throttled, &msg, false, now);
            return;
        }
        self.hash_jobs.push_back(HashJob {
            ticket: id.to_u64(),
            reserve: None,
            kind: JobKind::Change {
                old: r.old,
                record,
                new: r.new,
                iterations: self.cfg.iterations,
            },
        });
        if let Some(conn) = self.conn_mut(id) {
            conn.begin_password_change(rid);
        }
    }

    /// The hash of a CHANGE_PASSWORD or an ADMIN_SET_PASSWORD finished (`Ok`: what it
    /// computed), or the pool refused it (`Err`: the job given back, which says which of
    /// the two it was).
    pub(super) fn change_password_result(
        &mut self,
        id: ConnId,
        answer: Result<JobOutcome, JobKind>,
        now: Instant,
    ) {
        let Some(conn) = self.conn_mut(id) else {
            return;
        };
        let Some(rid) = conn.end_password_change() else {
            return;
        };
        let ip = conn.peer.ip();
        self.policy.hash_done(ip);
        self.wakeups.push(id);
        // The session may have ended while the hash ran (revoked, expired): then the
        // connection has already been told and closed.
        let Some(sid) = self.conn(id).and_then(|c| c.session_id()) else {
            return;
        };
        let Some(c) = self.caller(id, sid) else {
            return;
        };
        let outcome = match answer {
            Ok(JobOutcome::Reset { user_id, record }) => {
                self.admin_password_set(id, rid, &c, user_id, record, now);
                return;
            }
            Err(JobKind::Reset { .. }) => {
                // protocol.md 5.38: a full hash queue is THROTTLED, and not audited.
                let retry_after = self.busy.refuse(now);
                let msg = format!("server busy; retry in {} ms", millis(retry_after));
                self.reply_error(id, rid, ErrorCode::Throttled, &msg, false, now);
                return;
            }
            Ok(outcome) => Some(outcome),
            Err(_) => None,
        };
        match outcome {
            Some(JobOutcome::Changed(Some(record))) => {
                if self.policy.succeeded(c.user_id) {
                    self.record_streak(c.user_id);
                }
                self.update_user(c.user_id, |u| u.password = record);
                self.stats.password_changes += 1;
                self.audit(c.own(AuditKind::PasswordChanged), now);
                info!("password changed user={} peer={}", c.username, c.address);
                let end = c.revokes(RevokeReason::PasswordChanged);
                let n = self.revoke_user(c.user_id, Some(sid), &end, now);
                self.done(id, rid, n, now);
            }
            Some(JobOutcome::Changed(None)) => {
                self.policy.failed(c.user_id, now);
                self.record_streak(c.user_id);
                let a = c
                    .own(AuditKind::PasswordChangeFailed)
                    .reason(LoginFailureReason::InvalidCredentials.to_u16())
                    .note("wrong old password");
                self.audit(a, now);
                let code = ErrorCode::WrongPassword;
                self.reply_error(id, rid, code, "old password is wrong", false, now);
            }
            None => {
                let retry_after = self.busy.refuse(now);
                // Not audited, like a login refused SERVER_BUSY (protocol.md 4, "Audit").
                let msg = format!("server busy; retry in {} ms", millis(retry_after));
                self.reply_error(id, rid, ErrorCode::Throttled, &msg, false, now);
            }
            Some(other) => {
                log::error!("password change job failed: {other:?}");
                self.reply_error(
                    id,
                    rid,
                    ErrorCode::InternalError,
                    "password not changed",
                    false,
                    now,
                );
            }
        }
    }

    /// ADMIN_SET_PASSWORD (protocol.md 5.38): the target, then the password's length, then
    /// the address's throttle; the new password is hashed off the loop, like
    /// CHANGE_PASSWORD's, and answered in [`Engine::admin_password_set`].
    ///
    /// Design: the connection waits in CHANGE_PASSWORD's state (`ChangingPassword`: no
    /// frame behind the request is read until it is answered, and the hash counts against
    /// the address) rather than one of its own: only what the answer does differs, and the
    /// job says which request it was ([`JobKind::Reset`] carries the account, so nothing
    /// is kept per request beside the connection's state).
    fn start_admin_set_password(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        r: AdminSetPassword,
        now: Instant,
    ) {
        // "NOT_FOUND for an unknown username" (the caller is an administrator: names may
        // be told apart).
        let Some(uid) = self.target_user(id, rid, &r.username, now) else {
            return;
        };
        // "a password below the server's minimum length: INVALID_ARGUMENT"
        if r.password.len() < self.cfg.min_password_len {
            let msg = format!(
                "password must be at least {} bytes",
                self.cfg.min_password_len
            );
            self.reply_error(id, rid, ErrorCode::InvalidArgument, &msg, false, now);
            return;
        }
        // The address's limits only: the account's failure delay is what a reset lifts.
        if let Err(wait) = self.admit_hash(id, None, now) {
            self.stats.logins_throttled += 1;
            let msg = format!("too many attempts; retry in {} ms", millis(wait));
            self.reply_error(id, rid, ErrorCode::Throttled, &msg, false, now);
            return;
        }
        info!(
            "admin {} sets a password user={} peer={}",
            c.username, r.username, c.address
        );
        self.hash_jobs.push_back(HashJob {
            ticket: id.to_u64(),
            reserve: None,
            kind: JobKind::Reset {
                user_id: uid,
                password: r.password,
                iterations: self.cfg.iterations,
            },
        });
        if let Some(conn) = self.conn_mut(id) {
            conn.begin_password_change(rid);
        }
    }

    /// ADMIN_SET_PASSWORD's hash is done: the record replaces `user_id`'s, the account's
    /// failure streak goes, every session of it is revoked (`PASSWORD_RESET`, by the
    /// administrator), and DONE says how many; all of it journaled in this step, so DONE
    /// leaves once it is durable (`durability`).
    fn admin_password_set(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        user_id: u64,
        record: PasswordRecord,
        now: Instant,
    ) {
        // Read again: another administrator may have changed the caller's role meanwhile.
        if c.role != Role::Admin {
            let code = ErrorCode::Forbidden;
            self.reply_error(id, rid, code, "administrators only", false, now);
            return;
        }
        let Some(name) = self.users.get(user_id).map(|u| u.username.clone()) else {
            self.reply_error(id, rid, ErrorCode::NotFound, "no such user", false, now);
            return;
        };
        self.update_user(user_id, |u| u.password = record);
        if self.policy.succeeded(user_id) {
            self.record_streak(user_id);
        }
        let a = Audit::new(AuditKind::PasswordReset, user_id, 0, c.address.clone())
            .actor(c.actor())
            .note(format!("by {}", c.username));
        self.audit(a, now);
        info!("admin {} set the password of user={}", c.username, name);
        // DONE first: the administrator may have named their own account, whose sessions
        // (this one included) end too.
        let n = self.sessions.of_user(user_id).len() as u32;
        self.done(id, rid, n, now);
        let end = c.revokes(RevokeReason::PasswordReset);
        self.revoke_user(user_id, None, &end, now);
    }

    /// Changes a user record and journals the whole record.
    fn update_user(&mut self, user_id: u64, f: impl FnOnce(&mut User)) {
        if let Some(u) = self.users.get_mut(user_id) {
            f(u);
            let u = u.clone();
            self.events.push(Event::UserUpdated(u));
        }
    }

    /// The named user, or NOT_FOUND answered.
    fn target_user(&mut self, id: ConnId, rid: u32, name: &str, now: Instant) -> Option<u64> {
        let found = self.users.by_name(name).map(|u| u.id);
        if found.is_none() {
            self.reply_error(id, rid, ErrorCode::NotFound, "no such user", false, now);
        }
        found
    }

    fn admin_list(&mut self, id: ConnId, rid: u32, c: &Caller, r: AdminListSessions, now: Instant) {
        if r.username.is_empty() {
            // Table order: stable while sessions do not change; filter by user for a list
            // in creation order.
            let ids: Vec<u64> = self
                .sessions
                .iter()
                .skip(r.offset as usize)
                .take(page_limit(r.limit))
                .map(|s| s.id)
                .collect();
            let sessions = ids
                .iter()
                .filter_map(|&sid| self.sessions.get(sid))
                .map(|s| self.entry(s, c.session_id))
                .collect();
            let total = self.sessions.len().min(u32::MAX as usize) as u32;
            let msg = Message::SessionList(SessionList { total, sessions });
            self.send(id, rid, Flags::NONE, &msg, now);
            return;
        }
        let Some(uid) = self.target_user(id, rid, &r.username, now) else {
            return;
        };
        let ids: Vec<u64> = self.sessions.of_user(uid).collect();
        self.send_page(id, rid, &ids, r.offset, r.limit, c.session_id, now);
    }

    fn admin_revoke(&mut self, id: ConnId, rid: u32, c: &Caller, r: SessionTarget, now: Instant) {
        if self.sessions.get(r.session_id).is_none() {
            self.reply_error(id, rid, ErrorCode::NotFound, "no such session", false, now);
            return;
        }
        self.done(id, rid, 1, now);
        self.end_session(r.session_id, c.revokes(RevokeReason::ByAdmin), 0, now);
    }

    fn admin_logout_user(&mut self, id: ConnId, rid: u32, c: &Caller, r: UserTarget, now: Instant) {
        let Some(uid) = self.target_user(id, rid, &r.username, now) else {
            return;
        };
        info!("admin {} logs out user={}", c.username, r.username);
        // Reply first: the admin may be logging out their own account.
        let n = self.sessions.of_user(uid).len() as u32;
        self.done(id, rid, n, now);
        self.revoke_user(uid, None, &c.revokes(RevokeReason::ByAdmin), now);
    }

    fn admin_suspend(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        r: UserTarget,
        suspend: bool,
        now: Instant,
    ) {
        let Some(uid) = self.target_user(id, rid, &r.username, now) else {
            return;
        };
        if self.users.get(uid).is_some_and(|u| u.suspended != suspend) {
            self.update_user(uid, |u| u.suspended = suspend);
            let kind = if suspend {
                AuditKind::Suspended
            } else {
                AuditKind::Unsuspended
            };
            let a = Audit::new(kind, uid, 0, c.address.clone())
                .actor(c.actor())
                .note(format!("by {}", c.username));
            self.audit(a, now);
            info!(
                "admin {} {} user={}",
                c.username,
                if suspend { "suspends" } else { "unsuspends" },
                r.username
            );
        }
        if !suspend {
            self.done(id, rid, 0, now);
            return;
        }
        let n = self.sessions.of_user(uid).len() as u32;
        self.done(id, rid, n, now);
        self.revoke_user(uid, None, &c.revokes(RevokeReason::AccountSuspended), now);
    }

    fn admin_set_role(&mut self, id: ConnId, rid: u32, c: &Caller, r: AdminSetRole, now: Instant) {
        let Some(uid) = self.target_user(id, rid, &r.username, now) else {
            return;
        };
        let old = self.users.get(uid).map(|u| u.role).unwrap_or(r.role);
        if old != r.role {
            self.update_user(uid, |u| u.role = r.role);
            let note = format!("{} -> {} by {}", old.name(), r.role.name(), c.username);
            let a = Audit::new(AuditKind::RoleChanged, uid, 0, c.address.clone())
                .reason(u16::from(r.role.to_u8()))
                .actor(c.actor())
                .note(note);
            self.audit(a, now);
            info!(
                "admin {} sets role of {} to {}",
                c.username,
                r.username,
                r.role.name()
            );
        }
        self.done(id, rid, u32::from(old != r.role), now);
    }

    fn admin_stats(&mut self, id: ConnId, rid: u32, now: Instant) {
        let s = self.stats;
        let live = self.sessions.len() as u64;
        let attached = self.attached as u64;
        let values = [
            ("connections", self.conns.len() as u64),
            ("sessions_live", live),
            ("sessions_connected", attached),
            ("sessions_detached", live.saturating_sub(attached)),
            ("users", self.users.len() as u64),
            ("logins_ok", s.logins_ok),
            ("logins_failed", s.logins_failed),
            ("logins_throttled", s.logins_throttled),
            ("logins_busy", s.logins_busy),
            ("heartbeats", s.heartbeats),
            ("expiries", s.sessions_expired),
            ("revocations", s.revocations),
            ("logouts", s.logouts),
            ("registrations", s.registrations),
            ("resumes", s.resumes),
            ("password_changes", s.password_changes),
            ("protocol_errors", s.protocol_errors),
            ("connections_refused", s.connections_refused),
            ("output_overflows", s.output_overflows),
            (
                "uptime_ms",
                now.saturating_duration_since(self.origin).as_millis() as u64,
            ),
            ("journal_bytes", self.journal_bytes),
            ("storage_available", u64::from(self.storage_available())),
            ("storage_backlog_events", self.undurable_events as u64),
            ("storage_refusals", s.storage_refusals),
            ("audit_records_held", self.audit_log.len() as u64),
            ("idle_timeouts", s.idle_timeouts),
            ("login_timeouts", s.login_timeouts),
            ("takeovers", s.takeovers),
            ("session_ends_logged_out", s.session_ends.logged_out),
            ("session_ends_expired_idle", s.session_ends.expired_idle),
            (
                "session_ends_expired_absolute",
                s.session_ends.expired_absolute,
            ),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        // The same counts /metrics has by reason (protocol.md 5.34: names are lowercase).
        .chain(
            LoginFailureReason::ALL
                .iter()
                .zip(s.login_failures)
                .map(|(r, n)| (format!("logins_failed_{}", r.name().to_lowercase()), n)),
        )
        .chain(
            RevokeReason::ALL
                .iter()
                .zip(s.session_ends.revoked)
                .map(|(r, n)| (format!("revocations_{}", r.name().to_lowercase()), n)),
        )
        .collect();
        self.send(id, rid, Flags::NONE, &Message::Stats(Stats { values }), now);
    }

    /// NEW_LOGIN to every other live connection of `user_id`'s sessions.
    pub(super) fn notify_new_login(
        &mut self,
        user_id: u64,
        new_sid: u64,
        except: Option<ConnId>,
        now: Instant,
    ) {
        let Some(s) = self.sessions.get(new_sid) else {
            return;
        };
        let (client, platform) = self.sessions.device(s);
        let msg = Message::NewLogin(NewLogin {
            session_id: new_sid,
            client: client.to_owned(),
            platform: platform.to_owned(),
            address: s.peer.to_string(),
            at: s.created_ms,
        });
        // The newest sessions first, and a bounded number of them: an account with
        // thousands of live connections must not make each login cost thousands of frames.
        // (The bound ones only, newest bound first: a login's cost does not grow with the
        // account's detached sessions.)
        let targets: Vec<ConnId> = self
            .sessions
            .connected_of_user(user_id)
            .map(|(_, c)| c)
            .filter(|&c| Some(c) != except && self.contains(c))
            .take(MAX_NEW_LOGIN_NOTICES)
            .collect();
        for c in targets {
            self.send(c, 0, Flags::PUSH, &msg, now);
        }
    }

    /// After the connection's session ended by its own request: AWAITING_AUTH again, with
    /// a fresh login deadline.
    pub(super) fn logged_out(&mut self, id: ConnId, now: Instant) {
        let deadline = now + self.cfg.login_timeout;
        if let Some(conn) = self.conn_mut(id) {
            conn.log_out(deadline);
        }
        self.rearm_login_deadline(id, deadline);
    }
}

/// A request's page size: 0 means the most, and never more than `MAX_PAGE`.
pub(super) fn page_limit(limit: u16) -> usize {
    match limit as usize {
        0 => MAX_PAGE,
        n => n.min(MAX_PAGE),
    }
}
