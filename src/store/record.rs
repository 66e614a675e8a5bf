//! Journal records: how each engine event is laid out as a record's type byte and
//! payload (protocol.md's field encodings: big-endian integers, u16-prefixed UTF-8).
//!
//! Owns the record format of events, nothing of their meaning (`engine::event`) and
//! nothing of framing or files (`journal`, `journal_file`).

use bytes::BufMut;

use crate::auth::PasswordRecord;
use crate::engine::event::{Actor, Audit, AuditKind, EndKind, Event, StoredSession, MAX_DETAIL};
use crate::protocol::{
    put_str, Reader, Role, MAX_ADDRESS, MAX_ATTR_KEY, MAX_ATTR_VALUE, MAX_DEVICE_FIELD, MAX_EMAIL,
    MAX_ROLE_NAME, MAX_USERNAME,
};
use crate::session::{Digest, User};

/// Record type bytes.
mod kind {
    pub const USER_CREATED: u8 = 1;
    pub const LAST_LOGIN: u8 = 2;
    pub const SESSION_CREATED: u8 = 3;
    pub const SESSION_ACTIVITY: u8 = 4;
    pub const SESSION_ENDED: u8 = 5;
    /// The first audit layout (untyped: the meaning in the detail text); still read.
    pub const AUDIT_V1: u8 = 6;
    pub const SNAPSHOT_BASE: u8 = 7;
    pub const TOMBSTONE: u8 = 8;
    pub const USER_UPDATED: u8 = 9;
    pub const FAILURE_STREAK: u8 = 10;
    pub const DAILY_LOGINS: u8 = 11;
    /// Audit records with typed fields (reason, device, actor), written since issue 18.
    pub const AUDIT: u8 = 12;
    /// `sessiond user delete` (issue 19); journals written before never hold one.
    pub const USER_DELETED: u8 = 13;
    /// In snapshots written since accounts can be deleted, when there is one above.
    pub const NEXT_USER_ID: u8 = 14;
    /// A session attribute set or removed (issue 20).
    pub const SESSION_ATTR: u8 = 15;
    /// A profile attribute set or removed (issue 20).
    pub const USER_PROFILE: u8 = 16;
    /// An account's application role (issue 20).
    pub const USER_APP_ROLE: u8 = 17;
}

/// A record whose payload does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEvent {
    /// The record's type byte.
    pub kind: u8,
}

/// The record type and payload of `ev`.
pub fn encode(ev: &Event) -> (u8, Vec<u8>) {
    let mut b = Vec::with_capacity(128);
    let k = match ev {
        Event::SnapshotBase { base_seq } => {
            b.put_u64(*base_seq);
            kind::SNAPSHOT_BASE
        }
        Event::Tombstone {
            id,
            digest,
            kind: end,
            keep_until_ms,
        } => {
            b.put_u64(*id);
            b.put_slice(&digest.0);
            b.put_u8(*end as u8);
            b.put_u64(*keep_until_ms);
            kind::TOMBSTONE
        }
        Event::Audit(a) => {
            put_audit(&mut b, a);
            kind::AUDIT
        }
        Event::UserCreated(u) => {
            put_user(&mut b, u);
            kind::USER_CREATED
        }
        Event::UserUpdated(u) => {
            put_user(&mut b, u);
            kind::USER_UPDATED
        }
        Event::UserDeleted { user_id } => {
            b.put_u64(*user_id);
            kind::USER_DELETED
        }
        Event::NextUserId { id } => {
            b.put_u64(*id);
            kind::NEXT_USER_ID
        }
        Event::SessionAttr { id, key, value } => {
            b.put_u64(*id);
            put_attr(&mut b, key, value.as_deref());
            kind::SESSION_ATTR
        }
        Event::UserProfile {
            user_id,
            key,
            value,
        } => {
            b.put_u64(*user_id);
            put_attr(&mut b, key, value.as_deref());
            kind::USER_PROFILE
        }
        Event::UserAppRole { user_id, role } => {
            b.put_u64(*user_id);
            put_str(&mut b, role, MAX_ROLE_NAME);
            kind::USER_APP_ROLE
        }
        Event::LastLogin { user_id, at_ms } => {
            b.put_u64(*user_id);
            b.put_u64(*at_ms);
            kind::LAST_LOGIN
        }
        Event::SessionCreated(s) => {
            b.put_u64(s.id);
            b.put_u64(s.user_id);
            b.put_slice(&s.digest.0);
            put_str(&mut b, &s.client, MAX_DEVICE_FIELD);
            put_str(&mut b, &s.platform, MAX_DEVICE_FIELD);
            put_str(&mut b, &s.peer, MAX_ADDRESS);
            b.put_u64(s.created_ms);
            b.put_u64(s.last_activity_ms);
            b.put_u64(s.expires_ms);
            kind::SESSION_CREATED
        }
        Event::FailureStreak {
            user_id,
            failures,
            until_ms,
        } => {
            b.put_u64(*user_id);
            b.put_u32(*failures);
            b.put_u64(*until_ms);
            kind::FAILURE_STREAK
        }
        Event::DailyLogins {
            user_id,
            day,
            count,
        } => {
            b.put_u64(*user_id);
            b.put_u64(*day);
            b.put_u32(*count);
            kind::DAILY_LOGINS
        }
        Event::SessionActivity { id, at_ms } => {
            b.put_u64(*id);
            b.put_u64(*at_ms);
            kind::SESSION_ACTIVITY
        }
        Event::SessionEnded {
            id,
            kind: end,
            at_ms,
        } => {
            b.put_u64(*id);
            b.put_u8(*end as u8);
            b.put_u64(*at_ms);
            kind::SESSION_ENDED
        }
    };
    (k, b)
}

/// The event a record of type `k` with `payload` holds.
pub fn decode(k: u8, payload: &[u8]) -> Result<Event, BadEvent> {
    let bad = BadEvent { kind: k };
    let mut r = Reader::new(payload);
    let ev = (|| -> Option<Event> {
        Some(match k {
            kind::USER_CREATED => Event::UserCreated(read_user(&mut r)?),
            kind::USER_UPDATED => Event::UserUpdated(read_user(&mut r)?),
            kind::AUDIT_V1 => {
                let at_ms = r.u64().ok()?;
                let kind = AuditKind::from_u8(r.u8().ok()?)?;
                let (user_id, session_id) = (r.u64().ok()?, r.u64().ok()?);
                let address = r.string(MAX_ADDRESS).ok()?;
                let mut a = Audit::new(kind, user_id, session_id, address);
                a.at_ms = at_ms;
                Event::Audit(a.note(r.string(MAX_DETAIL).ok()?))
            }
            kind::AUDIT => Event::Audit(read_audit(&mut r)?),
            kind::SNAPSHOT_BASE => Event::SnapshotBase {
                base_seq: r.u64().ok()?,
            },
            kind::TOMBSTONE => Event::Tombstone {
                id: r.u64().ok()?,
                digest: Digest(*r.token().ok()?.as_bytes()),
                kind: EndKind::from_u8(r.u8().ok()?)?,
                keep_until_ms: r.u64().ok()?,
            },
            kind::USER_DELETED => Event::UserDeleted {
                user_id: r.u64().ok()?,
            },
            kind::NEXT_USER_ID => Event::NextUserId { id: r.u64().ok()? },
            kind::SESSION_ATTR => {
                let id = r.u64().ok()?;
                let (key, value) = read_attr(&mut r)?;
                Event::SessionAttr { id, key, value }
            }
            kind::USER_PROFILE => {
                let user_id = r.u64().ok()?;
                let (key, value) = read_attr(&mut r)?;
                Event::UserProfile {
                    user_id,
                    key,
                    value,
                }
            }
            kind::USER_APP_ROLE => Event::UserAppRole {
                user_id: r.u64().ok()?,
                role: r.string(MAX_ROLE_NAME).ok()?.to_owned(),
            },
            kind::LAST_LOGIN => Event::LastLogin {
                user_id: r.u64().ok()?,
                at_ms: r.u64().ok()?,
            },
            kind::SESSION_CREATED => {
                let id = r.u64().ok()?;
                let user_id = r.u64().ok()?;
                let digest = Digest(*r.token().ok()?.as_bytes());
                Event::SessionCreated(StoredSession {
                    id,
                    user_id,
                    digest,
                    client: r.string(MAX_DEVICE_FIELD).ok()?.to_owned(),
                    platform: r.string(MAX_DEVICE_FIELD).ok()?.to_owned(),
                    peer: r.string(MAX_ADDRESS).ok()?.to_owned(),
                    created_ms: r.u64().ok()?,
                    last_activity_ms: r.u64().ok()?,
                    expires_ms: r.u64().ok()?,
                })
            }
            kind::FAILURE_STREAK => Event::FailureStreak {
                user_id: r.u64().ok()?,
                failures: r.u32().ok()?,
                until_ms: r.u64().ok()?,
            },
            kind::DAILY_LOGINS => Event::DailyLogins {
                user_id: r.u64().ok()?,
                day: r.u64().ok()?,
                count: r.u32().ok()?,
            },
            kind::SESSION_ACTIVITY => Event::SessionActivity {
                id: r.u64().ok()?,
                at_ms: r.u64().ok()?,
            },
            kind::SESSION_ENDED => Event::SessionEnded {
                id: r.u64().ok()?,
                kind: EndKind::from_u8(r.u8().ok()?)?,
                at_ms: r.u64().ok()?,
            },
            _ => return None,
        })
    })()
    .ok_or(bad)?;
    r.finish().map_err(|_| bad)?;
    Ok(ev)
}

/// The audit record's layout: `at u64, kind u8, reason u16, user_id u64, username str,
/// session_id u64, address str, client str, platform str, has_actor u8` (then, when 1,
/// `user_id u64, session_id u64, address str, client str, platform str`), `detail str`.
fn put_audit(b: &mut Vec<u8>, a: &Audit) {
    b.put_u64(a.at_ms);
    b.put_u8(a.kind as u8);
    b.put_u16(a.reason);
    b.put_u64(a.user_id);
    put_str(b, &a.username, MAX_USERNAME);
    b.put_u64(a.session_id);
    put_str(b, &a.address, MAX_ADDRESS);
    put_str(b, &a.client, MAX_DEVICE_FIELD);
    put_str(b, &a.platform, MAX_DEVICE_FIELD);
    match &a.actor {
        None => b.put_u8(0),
        Some(x) => {
            b.put_u8(1);
            b.put_u64(x.user_id);
            b.put_u64(x.session_id);
            put_str(b, &x.address, MAX_ADDRESS);
            put_str(b, &x.client, MAX_DEVICE_FIELD);
            put_str(b, &x.platform, MAX_DEVICE_FIELD);
        }
    }
    put_str(b, &a.detail, MAX_DETAIL);
}

fn read_audit(r: &mut Reader<'_>) -> Option<Audit> {
    let at_ms = r.u64().ok()?;
    let kind = AuditKind::from_u8(r.u8().ok()?)?;
    let reason = r.u16().ok()?;
    let user_id = r.u64().ok()?;
    let username = r.string(MAX_USERNAME).ok()?;
    let session_id = r.u64().ok()?;
    let mut a = Audit::new(kind, user_id, session_id, r.string(MAX_ADDRESS).ok()?)
        .reason(reason)
        .tried(username);
    a.at_ms = at_ms;
    let client = r.string(MAX_DEVICE_FIELD).ok()?;
    a = a.device(client, r.string(MAX_DEVICE_FIELD).ok()?);
    a.actor = match r.u8().ok()? {
        0 => None,
        1 => Some(Actor {
            user_id: r.u64().ok()?,
            session_id: r.u64().ok()?,
            address: r.string(MAX_ADDRESS).ok()?.to_owned(),
            client: r.string(MAX_DEVICE_FIELD).ok()?.to_owned(),
            platform: r.string(MAX_DEVICE_FIELD).ok()?.to_owned(),
        }),
        _ => return None,
    };
    Some(a.note(r.string(MAX_DETAIL).ok()?))
}

/// An attribute's layout: `key str, present u8`, then `value (u16 length, bytes)` when
/// present.
fn put_attr(b: &mut Vec<u8>, key: &str, value: Option<&[u8]>) {
    put_str(b, key, MAX_ATTR_KEY);
    match value {
        Some(v) => {
            let v = &v[..v.len().min(MAX_ATTR_VALUE)];
            b.put_u8(1);
            b.put_u16(v.len() as u16);
            b.put_slice(v);
        }
        None => b.put_u8(0),
    }
}

fn read_attr(r: &mut Reader<'_>) -> Option<(String, Option<Vec<u8>>)> {
    let key = r.string(MAX_ATTR_KEY).ok()?.to_owned();
    let value = match r.u8().ok()? {
        0 => None,
        1 => Some(r.bytes(MAX_ATTR_VALUE).ok()?.to_vec()),
        _ => return None,
    };
    Some((key, value))
}

/// The user record's layout (USER_CREATED and USER_UPDATED).
fn put_user(b: &mut Vec<u8>, u: &User) {
    b.put_u64(u.id);
    put_str(b, &u.username, MAX_USERNAME);
    b.put_u8(u.role.to_u8());
    put_str(b, &u.email, MAX_EMAIL);
    b.put_u64(u.created_ms);
    b.put_u64(u.last_login_ms);
    put_str(b, &u.password.encode(), 256);
    b.put_u8(u8::from(u.suspended));
}

fn read_user(r: &mut Reader<'_>) -> Option<User> {
    Some(User {
        id: r.u64().ok()?,
        username: r.string(MAX_USERNAME).ok()?.to_owned(),
        role: Role::from_u8(r.u8().ok()?)?,
        email: r.string(MAX_EMAIL).ok()?.to_owned(),
        created_ms: r.u64().ok()?,
        last_login_ms: r.u64().ok()?,
        password: PasswordRecord::parse(r.string(256).ok()?).ok()?,
        suspended: match r.u8().ok()? {
            0 => false,
            1 => true,
            _ => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::fixtures::{session, user};

    #[test]
    fn every_event_round_trips_and_junk_is_refused() {
        let events = [
            Event::Audit(
                Audit::new(AuditKind::Revoked, 1, 7, "[::1]:4000")
                    .reason(1)
                    .device("cli", "linux")
                    .actor(Actor {
                        user_id: 1,
                        session_id: 8,
                        address: "127.0.0.1:5000".into(),
                        client: "phone".into(),
                        platform: "android".into(),
                    })
                    .note("NEW_LOGIN by 127.0.0.1:5000"),
            ),
            Event::Audit(Audit::new(AuditKind::LoginFailed, 0, 0, "[::1]:4000").tried("mallory")),
            Event::UserCreated(user(1, "alice")),
            Event::LastLogin {
                user_id: 1,
                at_ms: 5,
            },
            Event::SessionCreated(session(7, 1)),
            Event::SessionActivity { id: 7, at_ms: 9 },
            Event::SnapshotBase { base_seq: 99 },
            Event::Tombstone {
                id: 3,
                digest: Digest([3; 32]),
                kind: EndKind::Revoked,
                keep_until_ms: 77,
            },
            Event::SessionEnded {
                id: 7,
                kind: EndKind::Revoked,
                at_ms: 10,
            },
            Event::FailureStreak {
                user_id: 1,
                failures: 6,
                until_ms: 12_345,
            },
            Event::DailyLogins {
                user_id: 1,
                day: 20_454,
                count: 3,
            },
            Event::UserDeleted { user_id: 4 },
            Event::NextUserId { id: 9 },
            Event::SessionAttr {
                id: 7,
                key: "game".into(),
                value: Some(b"\x00456".to_vec()),
            },
            Event::SessionAttr {
                id: 7,
                key: "game".into(),
                value: None,
            },
            Event::UserProfile {
                user_id: 1,
                key: "display_name".into(),
                value: Some("Alice A.".into()),
            },
            Event::UserProfile {
                user_id: 1,
                key: "display_name".into(),
                value: None,
            },
            Event::UserAppRole {
                user_id: 1,
                role: "finance".into(),
            },
            Event::Audit(
                Audit::new(AuditKind::UserDeleted, 4, 0, "")
                    .tried("carol")
                    .note("carol (user) deleted by operator"),
            ),
        ];
        for ev in events {
            let (k, p) = encode(&ev);
            assert_eq!(decode(k, &p), Ok(ev.clone()));
            let mut longer = p.clone();
            longer.push(0);
            assert_eq!(decode(k, &longer), Err(BadEvent { kind: k }));
            assert!(decode(k, &p[..p.len() - 1]).is_err());
        }
        assert!(decode(99, &[]).is_err());
    }

    #[test]
    fn the_new_records_have_their_own_type_bytes_and_old_ones_keep_theirs() {
        // a journal written before accounts could be deleted holds types 1..=12 only; each
        // keeps its meaning, and the new events take the next two
        assert_eq!(encode(&Event::UserCreated(user(1, "alice"))).0, 1);
        assert_eq!(
            encode(&Event::Audit(Audit::new(AuditKind::Revoked, 1, 7, ""))).0,
            12
        );
        assert_eq!(
            encode(&Event::UserDeleted { user_id: 4 }),
            (kind::USER_DELETED, vec![0, 0, 0, 0, 0, 0, 0, 4])
        );
        assert_eq!(encode(&Event::NextUserId { id: 9 }).0, kind::NEXT_USER_ID);
        assert_eq!((kind::USER_DELETED, kind::NEXT_USER_ID), (13, 14));
    }

    #[test]
    fn audit_records_of_the_first_layout_are_still_read() {
        // at 3, kind revoked, user 1, session 7, address, detail: as journals before typed
        // audit records hold them.
        let mut p = Vec::new();
        p.put_u64(3);
        p.put_u8(AuditKind::Revoked as u8);
        p.put_u64(1);
        p.put_u64(7);
        put_str(&mut p, "[::1]:4000", MAX_ADDRESS);
        put_str(&mut p, "NEW_LOGIN by 127.0.0.1:5000", MAX_DETAIL);
        let mut want = Audit::new(AuditKind::Revoked, 1, 7, "[::1]:4000");
        want.at_ms = 3;
        let want = want.note("NEW_LOGIN by 127.0.0.1:5000");
        assert_eq!(decode(kind::AUDIT_V1, &p), Ok(Event::Audit(want)));
        assert!(decode(kind::AUDIT_V1, &p[..p.len() - 1]).is_err());
    }
}
