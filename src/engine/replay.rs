//! Replay: the fold from durable events back to the state they describe (what a journal,
//! a snapshot or a database holds), and the state the engine starts from.

use std::collections::VecDeque;

use hashbrown::HashMap;

use super::event::{Audit, EndedSession, Event, StoredSession};
use crate::session::{Digest, UserTable};

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
        out.extend(self.sessions.values().cloned().map(Event::SessionCreated));
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
    use crate::engine::event::EndKind;

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
}
