//! The audit trail's requests (protocol.md 5.27, 5.28, 5.36, 5.37): who may see which
//! records, and the two answers: AUDIT_PAGE (the meaning in text, for the clients written
//! against it) and AUDIT_RECORDS (typed, either way). The records themselves are
//! `audit_log`'s.

use std::time::Instant;

use super::audit_log::AuditFilter;
use super::event::AuditKind;
use super::manage::{page_limit, Caller};
use super::Engine;
use crate::conn::ConnId;
use crate::protocol::{
    AuditActor, AuditEntry, AuditPage, AuditQuery, AuditRecord, AuditRecords, AuditSearch,
    ErrorCode, Flags, Message, Role, MAX_RECORDS,
};

impl Engine {
    /// The filter of an AUDIT_QUERY or AUDIT_SEARCH, or the refusal answered.
    fn audit_filter(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        q: &AuditQuery,
        newest_first: bool,
        now: Instant,
    ) -> Option<AuditFilter> {
        let user_id = if q.username.is_empty() {
            (c.role != Role::Admin).then_some(c.user_id)
        } else if q.username == c.username {
            Some(c.user_id)
        } else if c.role != Role::Admin {
            let code = ErrorCode::Forbidden;
            self.reply_error(id, rid, code, "only your own events", false, now);
            return None;
        } else {
            match self.users.by_name(&q.username) {
                Some(u) => Some(u.id),
                None => {
                    self.reply_error(id, rid, ErrorCode::NotFound, "no such user", false, now);
                    return None;
                }
            }
        };
        let kind = match q.kind {
            0 => None,
            k if AuditKind::from_u8(k).is_some() => Some(k),
            _ => {
                let code = ErrorCode::InvalidArgument;
                self.reply_error(id, rid, code, "unknown event kind", false, now);
                return None;
            }
        };
        Some(AuditFilter {
            user_id,
            kind,
            from_ms: q.from,
            to_ms: q.to,
            newest_first,
        })
    }

    fn username_of(&self, user_id: u64) -> String {
        self.users
            .get(user_id)
            .map(|u| u.username.clone())
            .unwrap_or_default()
    }

    /// AUDIT_QUERY: oldest first, the meaning in the detail text (protocol.md 5.28).
    pub(super) fn audit_query(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        q: AuditQuery,
        now: Instant,
    ) {
        let Some(filter) = self.audit_filter(id, rid, c, &q, false, now) else {
            return;
        };
        let (found, next_cursor) = self.audit_log.query(&filter, q.cursor, page_limit(q.limit));
        let entries = found
            .into_iter()
            .map(|(seq, a)| AuditEntry {
                seq,
                at: a.at_ms,
                kind: a.kind as u8,
                user_id: a.user_id,
                username: self.username_of(a.user_id),
                session_id: a.session_id,
                // The device was this page's detail before records were typed.
                detail: if a.detail.is_empty() {
                    format!("{} {}", a.client, a.platform).trim().to_owned()
                } else {
                    a.detail
                },
                address: a.address,
            })
            .collect();
        let page = AuditPage {
            next_cursor,
            entries,
        };
        self.send(id, rid, Flags::NONE, &Message::AuditPage(page), now);
    }

    /// AUDIT_SEARCH: typed records, either way (protocol.md 5.36).
    pub(super) fn audit_search(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        s: AuditSearch,
        now: Instant,
    ) {
        let q = &s.query;
        let Some(filter) = self.audit_filter(id, rid, c, q, s.newest_first, now) else {
            return;
        };
        let limit = page_limit(q.limit).min(MAX_RECORDS);
        let (found, next_cursor) = self.audit_log.query(&filter, q.cursor, limit);
        let records = found
            .into_iter()
            .map(|(seq, a)| {
                let actor = a.actor.map_or_else(AuditActor::default, |x| AuditActor {
                    username: self.username_of(x.user_id),
                    user_id: x.user_id,
                    session_id: x.session_id,
                    address: x.address,
                    client: x.client,
                    platform: x.platform,
                });
                AuditRecord {
                    seq,
                    at: a.at_ms,
                    kind: a.kind as u8,
                    reason: a.reason,
                    user_id: a.user_id,
                    username: if a.user_id == 0 {
                        a.username
                    } else {
                        self.username_of(a.user_id)
                    },
                    session_id: a.session_id,
                    address: a.address,
                    client: a.client,
                    platform: a.platform,
                    actor,
                    note: a.detail,
                }
            })
            .collect();
        let page = AuditRecords {
            next_cursor,
            records,
        };
        self.send(id, rid, Flags::NONE, &Message::AuditRecords(page), now);
    }
}
