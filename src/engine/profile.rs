//! Account profiles and application roles over the protocol (protocol.md 5.44 to 5.48):
//! PROFILE_SET and PROFILE_GET on the caller's account, ADMIN_SET_PROFILE on any,
//! ADMIN_SET_APP_ROLE among the roles the operator declared, and the USER_INFO push after
//! LOGIN_SUCCESS and SESSION_VALID for an account that has either. Changes are journaled
//! with the turn (DONE once durable); a role change is audited.

use std::time::Instant;

use super::event::{Audit, AuditKind, Event};
use super::manage::Caller;
use super::Engine;
use crate::conn::ConnId;
use crate::protocol::{
    AdminListUsers, AdminSetAppRole, AdminSetProfile, Done, ErrorCode, Flags, Message, ProfileGet,
    ProfileSet, UserEntry, UserInfo, UserList,
};

impl Engine {
    /// PROFILE_SET: the caller's own account.
    pub(super) fn profile_set(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        r: ProfileSet,
        now: Instant,
    ) {
        let value = (!r.remove).then_some(r.value);
        self.set_profile(id, rid, c.user_id, &r.key, value, now);
    }

    /// ADMIN_SET_PROFILE: any account (NOT_FOUND otherwise).
    pub(super) fn admin_set_profile(
        &mut self,
        id: ConnId,
        rid: u32,
        r: AdminSetProfile,
        now: Instant,
    ) {
        let Some(uid) = self.users.by_name(&r.username).map(|u| u.id) else {
            self.reply_error(id, rid, ErrorCode::NotFound, "no such user", false, now);
            return;
        };
        let value = (!r.remove).then_some(r.value);
        self.set_profile(id, rid, uid, &r.key, value, now);
    }

    fn set_profile(
        &mut self,
        id: ConnId,
        rid: u32,
        uid: u64,
        key: &str,
        value: Option<Vec<u8>>,
        now: Instant,
    ) {
        let changed = match self.users.set_profile(uid, key, value.as_deref()) {
            Ok(c) => c,
            Err(limit) => {
                let code = ErrorCode::LimitExceeded;
                self.reply_error(id, rid, code, &limit.describe(), false, now);
                return;
            }
        };
        if changed {
            self.events.push(Event::UserProfile {
                user_id: uid,
                key: key.to_owned(),
                value,
            });
        }
        let affected = u32::from(changed);
        self.send(id, rid, Flags::NONE, &Message::Done(Done { affected }), now);
    }

    /// ADMIN_SET_APP_ROLE: one of the roles the operator declared, or none.
    pub(super) fn admin_set_app_role(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        r: AdminSetAppRole,
        now: Instant,
    ) {
        let Some(uid) = self.users.by_name(&r.username).map(|u| u.id) else {
            self.reply_error(id, rid, ErrorCode::NotFound, "no such user", false, now);
            return;
        };
        if !r.role.is_empty() && !self.cfg.app_roles.contains(&r.role) {
            let msg = if self.cfg.app_roles.is_empty() {
                "the server declares no application roles (--role)".to_owned()
            } else {
                format!(
                    "not a role of this server: {}",
                    self.cfg.app_roles.join(", ")
                )
            };
            self.reply_error(id, rid, ErrorCode::InvalidArgument, &msg, false, now);
            return;
        }
        let old = self.users.app_role(uid).unwrap_or("").to_owned();
        let changed = self.users.set_app_role(uid, &r.role);
        if changed {
            self.events.push(Event::UserAppRole {
                user_id: uid,
                role: r.role.clone(),
            });
            let note = format!(
                "application role {:?} -> {:?} by {}",
                old, r.role, c.username
            );
            let a = Audit::new(AuditKind::RoleChanged, uid, 0, c.address.clone())
                .actor(c.actor())
                .note(note);
            self.audit(a, now);
        }
        let affected = u32::from(changed);
        self.send(id, rid, Flags::NONE, &Message::Done(Done { affected }), now);
    }

    /// PROFILE_GET: the caller's account as USER_INFO.
    pub(super) fn profile_get(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        r: ProfileGet,
        now: Instant,
    ) {
        let info = self.user_info(c.user_id, &r.key);
        self.send(id, rid, Flags::NONE, &Message::UserInfo(info), now);
    }

    /// After LOGIN_SUCCESS and SESSION_VALID: the account's role and profile as a push,
    /// when it has either.
    pub(super) fn push_user_info(&mut self, id: ConnId, uid: u64, now: Instant) {
        if self.users.profile(uid).is_some() || self.users.app_role(uid).is_some() {
            let info = self.user_info(uid, "");
            self.send(id, 0, Flags::PUSH, &Message::UserInfo(info), now);
        }
    }

    fn user_info(&self, uid: u64, key: &str) -> UserInfo {
        let profile = self.users.profile(uid).map_or_else(Vec::new, |p| {
            p.iter()
                .filter(|(k, _)| key.is_empty() || *k == key)
                .map(|(k, v)| (k.to_owned(), v.to_vec()))
                .collect()
        });
        UserInfo {
            user_id: uid,
            app_role: self.users.app_role(uid).unwrap_or("").to_owned(),
            profile,
        }
    }

    /// ADMIN_LIST_USERS: a page of the accounts by id, with their roles.
    pub(super) fn admin_list_users(
        &mut self,
        id: ConnId,
        rid: u32,
        r: AdminListUsers,
        now: Instant,
    ) {
        let mut all = self.users.all();
        all.sort_unstable_by_key(|u| u.id);
        let limit = super::manage::page_limit(r.limit);
        let users = all
            .iter()
            .skip(r.offset as usize)
            .take(limit)
            .map(|u| UserEntry {
                user_id: u.id,
                username: u.username.clone(),
                role: u.role,
                app_role: self.users.app_role(u.id).unwrap_or("").to_owned(),
                suspended: u.suspended,
                created: u.created_ms,
                last_login: u.last_login_ms,
            })
            .collect();
        let list = UserList {
            total: all.len().min(u32::MAX as usize) as u32,
            users,
        };
        self.send(id, rid, Flags::NONE, &Message::UserList(list), now);
    }
}
