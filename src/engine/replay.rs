//! Replay: the fold from durable events back to the state they describe (what a journal,
//! a snapshot or a database holds), and the state the engine starts from.

use std::collections::VecDeque;

use hashbrown::HashMap;

use super::event::{Audit, EndKind, EndedSession, Event, StoredSession};
use crate::session::{Attributes, Digest, UserTable};

/// Durable state rebuilt from events: every user, the sessions that have not ended, and
/// the ones that did (pruned by the caller to those still worth remembering).
#[derive(Debug, Default)]
pub struct State {
    /// Every account.
    pub users: UserTable,
    /// Sessions that have not ended, by public id.
    pub sessions: HashMap<u64, StoredSession>,
    /// Sessions that ended and are still remembered, by token digest (a tombstone in a
    /// snapshot does not keep its session's id).
    pub ended: HashMap<Digest, EndedSession>,
    /// Audit records replayed.
    pub audit_records: u64,
    /// The newest `AUDIT_REPLAY_WINDOW` of them, oldest first (for AUDIT_QUERY after a
    /// restart; the journal and its archive keep them all).
    pub audit: VecDeque<Audit>,
    /// Accounts with a failure streak: user id -> (failures, refused until, Unix ms).
    pub streaks: HashMap<u64, (u32, u64)>,
    /// Successful logins per account on its latest UTC day: user id -> (day, count).
    pub daily: HashMap<u64, (u64, u32)>,
    /// The attributes of the live sessions that hold some, by session id.
    pub attrs: HashMap<u64, Attributes>,
}

/// The events that hold every account's profile and application role, for a snapshot.
pub(crate) fn profile_and_role_events(users: &UserTable) -> Vec<Event> {
    let mut out = Vec::new();
    for (user_id, p) in users.profiles() {
        out.extend(p.iter().map(|(k, v)| Event::UserProfile {
            user_id,
            key: k.to_owned(),
            value: Some(v.to_vec()),
        }));
    }
    out.extend(users.app_roles().map(|(user_id, role)| Event::UserAppRole {
        user_id,
        role: role.to_owned(),
    }));
    out
}

/// Audit records a replay keeps in memory at most.
pub const AUDIT_REPLAY_WINDOW: usize = 100_000;

/// Why an event could not be applied (a journal that contradicts itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistent(pub String);

impl State {
    /// The state before any event: no users, no sessions.
    pub fn new() -> State {
        State {
            users: UserTable::new(),
            sessions: HashMap::new(),
            ended: HashMap::new(),
            audit_records: 0,
            audit: VecDeque::new(),
            streaks: HashMap::new(),
            daily: HashMap::new(),
            attrs: HashMap::new(),
        }
    }

    /// The events that hold this state in a snapshot: every user, every live session,
    /// every remembered end (kept at least until the session would have expired).
    pub fn snapshot_events(&self) -> Vec<Event> {
        let mut out = Vec::with_capacity(self.users.len() + self.sessions.len() + self.ended.len());
        out.extend(
            self.users
                .all()
                .into_iter()
                .cloned()
                .map(Event::UserCreated),
        );
        // Deleted accounts are not in a snapshot; their ids stay taken.
        out.extend(
            self.users
                .next_id_beyond_accounts()
                .map(|id| Event::NextUserId { id }),
        );
        out.extend(profile_and_role_events(&self.users));
        out.extend(self.sessions.values().cloned().map(Event::SessionCreated));
        for (&id, a) in &self.attrs {
            out.extend(a.iter().map(|(k, v)| Event::SessionAttr {
                id,
                key: k.to_owned(),
                value: Some(v.to_vec()),
            }));
        }
        out.extend(self.ended.values().map(|e| Event::Tombstone {
            id: 0,
            digest: e.digest,
            kind: e.kind,
            keep_until_ms: e.expires_ms.max(e.ended_ms),
        }));
        out.extend(
            self.streaks
                .iter()
                .map(|(&user_id, &(failures, until_ms))| Event::FailureStreak {
                    user_id,
                    failures,
                    until_ms,
                }),
        );
        out.extend(
            self.daily
                .iter()
                .map(|(&user_id, &(day, count))| Event::DailyLogins {
                    user_id,
                    day,
                    count,
                }),
        );
        out
    }

    /// Folds one event into the state.
    pub fn apply(&mut self, ev: Event) -> Result<(), Inconsistent> {
        match ev {
            Event::FailureStreak {
                user_id,
                failures,
                until_ms,
            } => {
                if failures == 0 {
                    self.streaks.remove(&user_id);
                } else {
                    self.streaks.insert(user_id, (failures, until_ms));
                }
            }
            Event::DailyLogins {
                user_id,
                day,
                count,
            } => {
                let e = self.daily.entry(user_id).or_insert((day, count));
                if day >= e.0 {
                    *e = (day, count);
                }
            }
            Event::Audit(a) => {
                self.audit_records += 1;
                if self.audit.len() == AUDIT_REPLAY_WINDOW {
                    self.audit.pop_front();
                }
                self.audit.push_back(a);
            }
            Event::SnapshotBase { .. } => {}
            Event::Tombstone {
                id: _,
                digest,
                kind,
                keep_until_ms,
            } => {
                self.ended.insert(
                    digest,
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
            Event::UserDeleted { user_id } => {
                let Some(name) = self.users.get(user_id).map(|u| u.username.clone()) else {
                    return Err(Inconsistent(format!("delete of unknown user {user_id}")));
                };
                self.users.remove(&name);
                self.streaks.remove(&user_id);
                self.daily.remove(&user_id);
                // Its sessions were ended before it (`sessiond user delete` journals each
                // end); any still live end here, revoked, so no token outlives its account.
                let live: Vec<u64> = self
                    .sessions
                    .values()
                    .filter(|s| s.user_id == user_id)
                    .map(|s| s.id)
                    .collect();
                for id in live {
                    if let Some(s) = self.sessions.remove(&id) {
                        self.ended.insert(
                            s.digest,
                            EndedSession {
                                digest: s.digest,
                                kind: EndKind::Revoked,
                                expires_ms: s.expires_ms,
                                ended_ms: 0,
                            },
                        );
                    }
                }
            }
            Event::NextUserId { id } => self.users.reserve_ids_below(id),
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
            Event::SessionAttr { id, key, value } => {
                if self.sessions.contains_key(&id) {
                    let a = self.attrs.entry(id).or_default();
                    match value {
                        // Within bounds when it was journaled: the bounds are constants.
                        Some(v) => {
                            let _ = a.set(&key, &v);
                        }
                        None => {
                            a.remove(&key);
                        }
                    }
                    if a.is_empty() {
                        self.attrs.remove(&id);
                    }
                }
            }
            Event::UserProfile {
                user_id,
                key,
                value,
            } => {
                // Within bounds when it was journaled: the bounds are constants.
                let _ = self.users.set_profile(user_id, &key, value.as_deref());
            }
            Event::UserAppRole { user_id, role } => {
                self.users.set_app_role(user_id, &role);
            }
            Event::SessionEnded { id, kind, at_ms } => {
                self.attrs.remove(&id);
                if let Some(s) = self.sessions.remove(&id) {
                    self.ended.insert(
                        s.digest,
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
    use crate::engine::event::fixtures::{session, user};

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
        assert_eq!(st.ended[&Digest([7; 32])].kind, EndKind::LoggedOut);
        assert!(st.apply(Event::UserCreated(user(3, "alice"))).is_err());
        assert!(st.apply(Event::SessionCreated(session(9, 42))).is_err());
    }

    /// `sessiond user delete`'s records, as it journals them, folded back; then a snapshot
    /// of the result, folded into a fresh state.
    #[test]
    fn a_deleted_user_is_gone_its_name_free_and_its_id_never_reused() {
        let mut st = State::new();
        for ev in [
            Event::UserCreated(user(1, "alice")),
            Event::UserCreated(user(2, "carol")),
            Event::SessionCreated(session(7, 2)),
            Event::SessionCreated(session(8, 2)),
            Event::SessionCreated(session(9, 1)),
            Event::FailureStreak {
                user_id: 2,
                failures: 6,
                until_ms: 50_000,
            },
            Event::DailyLogins {
                user_id: 2,
                day: 20_454,
                count: 3,
            },
            // one end journaled before the delete; session 8 is left to the delete itself
            Event::SessionEnded {
                id: 7,
                kind: EndKind::Revoked,
                at_ms: 4_000,
            },
            Event::UserDeleted { user_id: 2 },
        ] {
            st.apply(ev).unwrap();
        }
        assert!(st.users.by_name("carol").is_none());
        assert!(st.users.get(2).is_none());
        assert_eq!(st.sessions.keys().copied().collect::<Vec<_>>(), [9]);
        for d in [Digest([7; 32]), Digest([8; 32])] {
            assert_eq!(
                st.ended[&d].kind,
                EndKind::Revoked,
                "tokens resume as REVOKED"
            );
        }
        assert!(st.streaks.is_empty() && st.daily.is_empty());
        assert!(st.apply(Event::UserDeleted { user_id: 2 }).is_err());
        assert!(st.apply(Event::SessionCreated(session(10, 2))).is_err());

        let snap = st.snapshot_events();
        assert!(!snap
            .iter()
            .any(|e| matches!(e, Event::UserCreated(u) if u.id == 2)));
        assert!(snap.contains(&Event::NextUserId { id: 3 }));
        let mut again = State::new();
        for ev in snap {
            again.apply(ev).unwrap();
        }
        // the name is free again, with a new id
        let carol = again
            .users
            .create(
                "carol",
                user(0, "x").password,
                crate::protocol::Role::User,
                "",
                9,
            )
            .unwrap();
        assert_eq!(carol.id, 3);
        // a snapshot with nothing deleted says nothing of ids
        let mut plain = State::new();
        plain.apply(Event::UserCreated(user(1, "alice"))).unwrap();
        assert!(!plain
            .snapshot_events()
            .iter()
            .any(|e| matches!(e, Event::NextUserId { .. })));
    }
}
