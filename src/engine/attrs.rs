//! Session attributes over the protocol (protocol.md 5.39 to 5.43): ATTR_SET, ATTR_REMOVE
//! and ATTR_GET on the caller's own session, ADMIN_SET_ATTR on any, and the ATTRS push
//! that follows SESSION_VALID.
//!
//! A change is journaled with the turn like every other (DONE leaves once it is durable)
//! and is not audited: attributes are the application's state, not an account's history.

use std::time::Instant;

use super::event::Event;
use super::manage::Caller;
use super::Engine;
use crate::conn::ConnId;
use crate::protocol::{
    AdminSetAttr, AttrGet, AttrRemove, AttrSet, Attrs, Done, ErrorCode, Flags, Message,
};

impl Engine {
    /// ATTR_SET: the caller's own session.
    pub(super) fn attr_set(&mut self, id: ConnId, rid: u32, c: &Caller, r: AttrSet, now: Instant) {
        self.set_attr(id, rid, c.session_id, &r.key, Some(r.value), now);
    }

    /// ATTR_REMOVE: the caller's own session.
    pub(super) fn attr_remove(
        &mut self,
        id: ConnId,
        rid: u32,
        c: &Caller,
        r: AttrRemove,
        now: Instant,
    ) {
        self.set_attr(id, rid, c.session_id, &r.key, None, now);
    }

    /// ADMIN_SET_ATTR: any live session (NOT_FOUND otherwise).
    pub(super) fn admin_set_attr(&mut self, id: ConnId, rid: u32, r: AdminSetAttr, now: Instant) {
        if self.sessions.get(r.session_id).is_none() {
            self.reply_error(id, rid, ErrorCode::NotFound, "no such session", false, now);
            return;
        }
        let value = (!r.remove).then_some(r.value);
        self.set_attr(id, rid, r.session_id, &r.key, value, now);
    }

    /// Sets (Some) or removes (None) `key` of session `sid`, journals it, answers DONE
    /// (`affected`: 1, or 0 for a key that was not there), or LIMIT_EXCEEDED.
    fn set_attr(
        &mut self,
        id: ConnId,
        rid: u32,
        sid: u64,
        key: &str,
        value: Option<Vec<u8>>,
        now: Instant,
    ) {
        let changed = match &value {
            Some(v) => match self.sessions.set_attr(sid, key, v) {
                Ok(live) => live,
                Err(limit) => {
                    let code = ErrorCode::LimitExceeded;
                    self.reply_error(id, rid, code, &limit.describe(), false, now);
                    return;
                }
            },
            None => self.sessions.remove_attr(sid, key),
        };
        if changed {
            self.events.push(Event::SessionAttr {
                id: sid,
                key: key.to_owned(),
                value,
            });
        }
        let affected = u32::from(changed);
        self.send(id, rid, Flags::NONE, &Message::Done(Done { affected }), now);
    }

    /// ATTR_GET: every attribute of the caller's session, or the one named (none if it is
    /// not set).
    pub(super) fn attr_get(&mut self, id: ConnId, rid: u32, c: &Caller, r: AttrGet, now: Instant) {
        let attrs = self.attrs_of(c.session_id, &r.key);
        self.send(id, rid, Flags::NONE, &Message::Attrs(attrs), now);
    }

    /// After SESSION_VALID: the resumed session's attributes as a push, when it holds some.
    pub(super) fn push_attrs(&mut self, id: ConnId, sid: u64, now: Instant) {
        if self.sessions.attrs(sid).is_some() {
            let attrs = self.attrs_of(sid, "");
            self.send(id, 0, Flags::PUSH, &Message::Attrs(attrs), now);
        }
    }

    fn attrs_of(&self, sid: u64, key: &str) -> Attrs {
        let attrs = self.sessions.attrs(sid).map_or_else(Vec::new, |a| {
            a.iter()
                .filter(|(k, _)| key.is_empty() || *k == key)
                .map(|(k, v)| (k.to_owned(), v.to_vec()))
                .collect()
        });
        Attrs {
            session_id: sid,
            attrs,
        }
    }
}
