//! What the journal records: one typed event per change of durable state, and the state
//! that replaying them rebuilds.
//!
//! Owns the meaning of journal records (the record type byte and the payload layout) and
//! the fold from events to [`State`]. Payloads use the wire protocol's field encodings
//! (big-endian integers, u16-prefixed UTF-8 strings).

use std::collections::VecDeque;

use bytes::BufMut;
use hashbrown::HashMap;

use crate::auth::PasswordRecord;
use crate::protocol::{
    put_str, Reader, Role, MAX_ADDRESS, MAX_DEVICE_FIELD, MAX_EMAIL, MAX_USERNAME,
};
use crate::session::{Digest, User, UserTable};

/// Longest free-text detail in an audit event.
pub const MAX_DETAIL: usize = 256;

/// How a session ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    LoggedOut = 1,
    ExpiredIdle = 2,
    ExpiredAbsolute = 3,
    Revoked = 4,
}

impl EndKind {
    fn from_u8(v: u8) -> Option<EndKind> {
        Some(match v {
            1 => EndKind::LoggedOut,
            2 => EndKind::ExpiredIdle,
            3 => EndKind::ExpiredAbsolute,
            4 => EndKind::Revoked,
            _ => return None,
        })
    }
}

/// A session as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub id: u64,
    pub user_id: u64,
    pub digest: Digest,
    pub client: String,
    pub platform: String,
    pub peer: String,
    pub created_ms: u64,
    pub last_activity_ms: u64,
    pub expires_ms: u64,
}

/// What an audit record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    SessionCreated = 1,
    SessionResumed = 2,
    SessionDetached = 3,
    ExpiredIdle = 4,
    ExpiredAbsolute = 5,
    LoggedOut = 6,
    /// `detail` names the reason and who caused it.
    Revoked = 7,
    /// `detail` names the username tried and why it failed.
    LoginFailed = 8,
    Registered = 9,
    /// An administrator suspended the account (`detail`: by whom).
    Suspended = 10,
    Unsuspended = 11,
    /// `detail`: old and new role, by whom.
    RoleChanged = 12,
    PasswordChanged = 13,
    /// An operator created the account (`sessiond user add`).
    UserCreated = 14,
}

impl AuditKind {
    /// The kind whose record byte is `v`.
    pub fn from_u8(v: u8) -> Option<AuditKind> {
        Self::ALL.into_iter().find(|&k| k as u8 == v)
    }

    /// Every kind, in record-byte order.
    pub const ALL: [AuditKind; 14] = {
        use AuditKind::*;
        [
            SessionCreated,
            SessionResumed,
            SessionDetached,
            ExpiredIdle,
            ExpiredAbsolute,
            LoggedOut,
            Revoked,
            LoginFailed,
            Registered,
            Suspended,
            Unsuspended,
            RoleChanged,
            PasswordChanged,
            UserCreated,
        ]
    };

    /// The kind named `name` (as [`AuditKind::name`] spells it).
    pub fn from_name(name: &str) -> Option<AuditKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        use AuditKind::*;
        match self {
            SessionCreated => "session_created",
            SessionResumed => "session_resumed",
            SessionDetached => "session_detached",
            ExpiredIdle => "expired_idle",
            ExpiredAbsolute => "expired_absolute",
            LoggedOut => "logged_out",
            Revoked => "revoked",
            LoginFailed => "login_failed",
            Registered => "registered",
            Suspended => "suspended",
            Unsuspended => "unsuspended",
            RoleChanged => "role_changed",
            PasswordChanged => "password_changed",
            UserCreated => "user_created",
        }
    }
}

/// One entry of the audit trail: what happened, when, to whom, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub at_ms: u64,
    pub kind: AuditKind,
    /// 0 when no account is known (a failed login for an unknown name).
    pub user_id: u64,
    /// 0 when no session is involved.
    pub session_id: u64,
    pub address: String,
    pub detail: String,
}

/// One durable change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Audit(Audit),
    UserCreated(User),
    /// The whole record again after a change (password, role, suspension).
    UserUpdated(User),
    LastLogin {
        user_id: u64,
        at_ms: u64,
    },
    SessionCreated(StoredSession),
    /// Coarse: at detach, logout and at most every few minutes, never per heartbeat.
    SessionActivity {
        id: u64,
        at_ms: u64,
    },
    SessionEnded {
        id: u64,
        kind: EndKind,
        at_ms: u64,
    },
    /// First record of a snapshot: it holds everything up to journal record `base_seq`.
    SnapshotBase {
        base_seq: u64,
    },
    /// In a snapshot: an ended session still remembered until `keep_until_ms`.
    Tombstone {
        id: u64,
        digest: Digest,
        kind: EndKind,
        keep_until_ms: u64,
    },
}

/// Record type bytes.
mod kind {
    pub const USER_CREATED: u8 = 1;
    pub const LAST_LOGIN: u8 = 2;
    pub const SESSION_CREATED: u8 = 3;
    pub const SESSION_ACTIVITY: u8 = 4;
    pub const SESSION_ENDED: u8 = 5;
    pub const AUDIT: u8 = 6;
    pub const SNAPSHOT_BASE: u8 = 7;
    pub const TOMBSTONE: u8 = 8;
    pub const USER_UPDATED: u8 = 9;
}

/// A record whose payload does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEvent {
    pub kind: u8,
}

impl Event {
    /// The record type and payload.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        let mut b = Vec::with_capacity(128);
        let k = match self {
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
                b.put_u64(a.at_ms);
                b.put_u8(a.kind as u8);
                b.put_u64(a.user_id);
                b.put_u64(a.session_id);
                put_str(&mut b, &a.address, MAX_ADDRESS);
                put_str(&mut b, &a.detail, MAX_DETAIL);
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

    pub fn decode(k: u8, payload: &[u8]) -> Result<Event, BadEvent> {
        let bad = BadEvent { kind: k };
        let mut r = Reader::new(payload);
        let ev = (|| -> Option<Event> {
            Some(match k {
                kind::USER_CREATED => Event::UserCreated(read_user(&mut r)?),
                kind::USER_UPDATED => Event::UserUpdated(read_user(&mut r)?),
                kind::AUDIT => Event::Audit(Audit {
                    at_ms: r.u64().ok()?,
                    kind: AuditKind::from_u8(r.u8().ok()?)?,
                    user_id: r.u64().ok()?,
                    session_id: r.u64().ok()?,
                    address: r.string(MAX_ADDRESS).ok()?.to_owned(),
                    detail: r.string(MAX_DETAIL).ok()?.to_owned(),
                }),
                kind::SNAPSHOT_BASE => Event::SnapshotBase {
                    base_seq: r.u64().ok()?,
                },
                kind::TOMBSTONE => Event::Tombstone {
                    id: r.u64().ok()?,
                    digest: Digest(*r.token().ok()?.as_bytes()),
                    kind: EndKind::from_u8(r.u8().ok()?)?,
                    keep_until_ms: r.u64().ok()?,
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
        role: Role::from_u8(r.u8().ok()?).ok()?,
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

/// A session that ended: enough to tell a later resume of its token why it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedSession {
    pub digest: Digest,
    pub kind: EndKind,
    /// When the session would have expired: the tombstone is kept at least until then.
    pub expires_ms: u64,
    pub ended_ms: u64,
}

/// Durable state rebuilt from events: every user, the sessions that have not ended, and
/// the ones that did (pruned by the caller to those still worth remembering).
#[derive(Debug, Default)]
pub struct State {
    pub users: UserTable,
    pub sessions: HashMap<u64, StoredSession>,
    pub ended: HashMap<u64, EndedSession>,
    /// Audit records replayed.
    pub audit_records: u64,
    /// The newest `AUDIT_REPLAY_WINDOW` of them, oldest first (for AUDIT_QUERY after a
    /// restart; the journal and its archive keep them all).
    pub audit: VecDeque<Audit>,
}

/// Audit records a replay keeps in memory at most.
pub const AUDIT_REPLAY_WINDOW: usize = 100_000;

/// Why an event could not be applied (a journal that contradicts itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistent(pub String);

impl State {
    pub fn new() -> State {
        State {
            users: UserTable::new(),
            sessions: HashMap::new(),
            ended: HashMap::new(),
            audit_records: 0,
            audit: VecDeque::new(),
        }
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, ev: Event) -> Result<(), Inconsistent> {
        match ev {
            Event::Audit(a) => {
                self.audit_records += 1;
                if self.audit.len() == AUDIT_REPLAY_WINDOW {
                    self.audit.pop_front();
                }
                self.audit.push_back(a);
            }
            Event::SnapshotBase { .. } => {}
            Event::Tombstone {
                id,
                digest,
                kind,
                keep_until_ms,
            } => {
                self.ended.insert(
                    id,
                    EndedSession {
                        digest,
                        kind,
                        expires_ms: keep_until_ms,
                        ended_ms: 0,
                    },
                );
            }
            Event::UserCreated(u) => {
                let name = u.username.clone();
                self.users
                    .restore(u)
                    .map_err(|_| Inconsistent(format!("user {name} created twice")))?;
            }
            Event::UserUpdated(u) => {
                let Some(old) = self.users.get_mut(u.id) else {
                    return Err(Inconsistent(format!("update of unknown user {}", u.id)));
                };
                if old.username != u.username {
                    return Err(Inconsistent(format!("user {} renamed", u.id)));
                }
                *old = u;
            }
            Event::LastLogin { user_id, at_ms } => {
                if let Some(u) = self.users.get_mut(user_id) {
                    u.last_login_ms = u.last_login_ms.max(at_ms);
                }
            }
            Event::SessionCreated(s) => {
                if self.users.get(s.user_id).is_none() {
                    return Err(Inconsistent(format!(
                        "session {:016x} of unknown user {}",
                        s.id, s.user_id
                    )));
                }
                self.sessions.insert(s.id, s);
            }
            Event::SessionActivity { id, at_ms } => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.last_activity_ms = s.last_activity_ms.max(at_ms);
                }
            }
            Event::SessionEnded { id, kind, at_ms } => {
                if let Some(s) = self.sessions.remove(&id) {
                    self.ended.insert(
                        id,
                        EndedSession {
                            digest: s.digest,
                            kind,
                            expires_ms: s.expires_ms,
                            ended_ms: at_ms,
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_kinds_are_numbered_and_named_one_to_one() {
        for (i, k) in AuditKind::ALL.into_iter().enumerate() {
            assert_eq!(k as u8 as usize, i + 1);
            assert_eq!(AuditKind::from_u8(k as u8), Some(k));
            assert_eq!(AuditKind::from_name(k.name()), Some(k));
        }
        assert_eq!(AuditKind::from_u8(0), None);
        assert_eq!(AuditKind::from_u8(AuditKind::ALL.len() as u8 + 1), None);
    }

    fn user(id: u64, name: &str) -> User {
        User {
            id,
            username: name.into(),
            password: PasswordRecord::create(b"pw", 1).unwrap(),
            role: Role::User,
            email: format!("{name}@example.org"),
            created_ms: 1_000,
            last_login_ms: 0,
            suspended: false,
        }
    }

    fn session(id: u64, user_id: u64) -> StoredSession {
        StoredSession {
            id,
            user_id,
            digest: Digest([id as u8; 32]),
            client: "cli".into(),
            platform: "linux".into(),
            peer: "127.0.0.1:5000".into(),
            created_ms: 2_000,
            last_activity_ms: 2_000,
            expires_ms: 90_000,
        }
    }

    #[test]
    fn every_event_round_trips_and_junk_is_refused() {
        let events = [
            Event::Audit(Audit {
                at_ms: 3,
                kind: AuditKind::Revoked,
                user_id: 1,
                session_id: 7,
                address: "[::1]:4000".into(),
                detail: "NEW_LOGIN by 127.0.0.1:5000".into(),
            }),
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
        ];
        for ev in events {
            let (k, p) = ev.encode();
            assert_eq!(Event::decode(k, &p), Ok(ev.clone()));
            let mut longer = p.clone();
            longer.push(0);
            assert_eq!(Event::decode(k, &longer), Err(BadEvent { kind: k }));
            assert!(Event::decode(k, &p[..p.len() - 1]).is_err());
        }
        assert!(Event::decode(99, &[]).is_err());
    }

    #[test]
    fn replay_keeps_users_and_live_sessions_only() {
        let mut st = State::new();
        for ev in [
            Event::UserCreated(user(1, "alice")),
            Event::UserCreated(user(2, "bob")),
            Event::SessionCreated(session(7, 1)),
            Event::SessionCreated(session(8, 2)),
            Event::LastLogin {
                user_id: 1,
                at_ms: 2_000,
            },
            Event::SessionActivity {
                id: 8,
                at_ms: 3_000,
            },
            Event::SessionEnded {
                id: 7,
                kind: EndKind::LoggedOut,
                at_ms: 4_000,
            },
        ] {
            st.apply(ev).unwrap();
        }
        assert_eq!(st.users.len(), 2);
        assert_eq!(st.users.by_name("alice").unwrap().last_login_ms, 2_000);
        assert_eq!(st.sessions.len(), 1);
        assert_eq!(st.sessions[&8].last_activity_ms, 3_000);
        assert_eq!(st.ended[&7].kind, EndKind::LoggedOut);
        assert_eq!(st.ended[&7].digest, Digest([7; 32]));
        assert!(st.apply(Event::UserCreated(user(3, "alice"))).is_err());
        assert!(st.apply(Event::SessionCreated(session(9, 42))).is_err());
    }
}
