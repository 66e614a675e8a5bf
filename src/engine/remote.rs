//! A cluster's other nodes: their changes applied here, where their connections are.
//!
//! Every node folds the shared log into its engine. Its own records are applied as it
//! makes them; the others' come in order through [`Engine::apply_remote`] (read by
//! `store::cluster_link`). Applying one never writes anything, except where this node
//! holds the connection the record concerns and must act on it:
//!
//! - a session **ended** elsewhere (a login's NEW_LOGIN, LOGOUT_ALL, a password change, an
//!   administrator) whose connection is here: it is told (SESSION_REVOKED with the
//!   device, address and time of the cause, or SESSION_EXPIRED) and closed;
//! - a session **resumed** elsewhere while bound here: SESSION_REVOKED TAKEN_OVER, closed;
//! - a **login** elsewhere: the account's connections here get NEW_LOGIN, as for one here;
//! - an account **suspended** elsewhere while logging in here at the same moment: the
//!   session made here ends here (ACCOUNT_SUSPENDED);
//! - two logins of one account **at once** on two nodes, neither knowing the other's, past
//!   `max_sessions_per_user`: the session with the higher id stays, on every node alike;
//!   the node holding the other ends it (NEW_LOGIN, by the winner's device) and writes
//!   the end.
//!
//! Where sessions are bound is learnt from the audit records: a session is bound to the
//! node that wrote its `session_created` or `session_resumed`, until that node writes its
//! `session_detached` or leaves the cluster ([`Engine::set_nodes`]).

use std::time::Instant;

use hashbrown::HashMap;
use log::{info, warn};

use super::ending::By;
use super::event::{Actor, Audit, AuditKind, EndKind, Event, StoredSession};
use super::{End, Engine};
use crate::conn::ConnId;
use crate::protocol::{ExpiredReason, Flags, Message, RevokeReason, SessionExpired};

/// What this node knows of the others (all empty outside a cluster).
#[derive(Debug, Default)]
pub(super) struct Remote {
    /// Sessions bound to a connection on another node: session id -> that node's writer.
    pub bound: HashMap<u64, i64>,
    /// Whether this node ends the detached sessions' expiry (the cluster's sweeper).
    pub sweeper: bool,
}

/// Where sessions' connections are, as a log record says (the same rule at a start's read
/// of the log, `store::cluster`, and here): a session is bound to the node (`writer`) that
/// wrote its `session_created` or `session_resumed`, until that node's `session_detached`
/// or the session's end.
pub fn track_binding(bound: &mut HashMap<u64, i64>, writer: i64, ev: &Event) {
    match ev {
        Event::Audit(a) => match a.kind {
            AuditKind::SessionCreated | AuditKind::SessionResumed => {
                bound.insert(a.session_id, writer);
            }
            AuditKind::SessionDetached if bound.get(&a.session_id) == Some(&writer) => {
                bound.remove(&a.session_id);
            }
            _ => {}
        },
        Event::SessionEnded { id, .. } => {
            bound.remove(id);
        }
        _ => {}
    }
}

/// How far after a record ending a session its audit record is looked for.
const AUDIT_LOOKAHEAD: usize = 8;

impl Engine {
    /// Applies the other nodes' records, in log order, each with the writer that wrote it.
    pub fn apply_remote(&mut self, records: &[(i64, Event)], now: Instant) {
        self.begin_step();
        let mut logins: Vec<(u64, u64)> = Vec::new();
        let mut suspended: Vec<u64> = Vec::new();
        for (i, (writer, ev)) in records.iter().enumerate() {
            track_binding(&mut self.remote.bound, *writer, ev);
            match ev {
                Event::Audit(a) => self.remote_audit(a, now),
                Event::UserCreated(u) => {
                    if self.users.restore(u.clone()).is_err() {
                        warn!("cluster: account {} ({}) is here already", u.username, u.id);
                    }
                }
                Event::UserUpdated(u) => {
                    if let Some(old) = self.users.get_mut(u.id) {
                        if old.username == u.username {
                            *old = u.clone();
                        }
                    }
                    if u.suspended {
                        suspended.push(u.id);
                    }
                }
                Event::UserDeleted { user_id } => {
                    if let Some(name) = self.users.get(*user_id).map(|u| u.username.clone()) {
                        self.users.remove(&name);
                    }
                }
                Event::NextUserId { id } => self.users.reserve_ids_below(*id),
                Event::LastLogin { user_id, at_ms } => {
                    if let Some(u) = self.users.get_mut(*user_id) {
                        u.last_login_ms = u.last_login_ms.max(*at_ms);
                    }
                }
                Event::SessionCreated(s) => {
                    if self.remote_session(s) {
                        logins.push((s.user_id, s.id));
                    }
                }
                Event::SessionActivity { id, at_ms } => {
                    if let Some(s) = self.sessions.get_mut(*id) {
                        s.last_activity_ms = s.last_activity_ms.max(*at_ms);
                        s.saved_activity_ms = s.saved_activity_ms.max(*at_ms);
                    }
                }
                Event::SessionEnded { id, kind, at_ms } => {
                    let rest = &records[i + 1..records.len().min(i + 1 + AUDIT_LOOKAHEAD)];
                    let cause = rest.iter().find_map(|(_, e)| match e {
                        Event::Audit(a) if a.session_id == *id => Some(a),
                        _ => None,
                    });
                    self.remote_end(*id, *kind, *at_ms, cause, now);
                }
                Event::FailureStreak {
                    user_id,
                    failures,
                    until_ms,
                } => {
                    let until = (*until_ms > 0).then(|| self.clock.instant(*until_ms));
                    self.policy.restore_streak(*user_id, *failures, until);
                }
                Event::DailyLogins {
                    user_id,
                    day,
                    count,
                } => self.policy.restore_daily(*user_id, *day, *count),
                Event::SessionAttr { id, key, value } => {
                    let _ = match value {
                        Some(v) => self.sessions.set_attr(*id, key, v).is_ok(),
                        None => self.sessions.remove_attr(*id, key),
                    };
                }
                Event::UserProfile {
                    user_id,
                    key,
                    value,
                } => {
                    let _ = self.users.set_profile(*user_id, key, value.as_deref());
                }
                Event::UserAppRole { user_id, role } => {
                    self.users.set_app_role(*user_id, role);
                }
                // Only in snapshots.
                Event::SnapshotBase { .. } | Event::Tombstone { .. } => {}
            }
        }
        // After the suspension's own ends (which follow it in the log) are applied.
        for uid in suspended {
            self.end_suspended_here(uid, now);
        }
        let mut accounts: Vec<u64> = logins.iter().map(|&(uid, _)| uid).collect();
        accounts.sort_unstable();
        accounts.dedup();
        for uid in accounts {
            self.settle_concurrent_logins(uid, now);
        }
        // The account's connections left here hear of each login as of one made here
        // (those it displaced were told SESSION_REVOKED and closed above).
        for (uid, sid) in logins {
            self.notify_new_login(uid, sid, None, now);
        }
        self.end_step();
    }

    /// The live nodes changed: sessions bound on a node that left are detached now
    /// (resumable here, and swept by the sweeper). `sweeper`: this node sweeps.
    pub fn set_nodes(&mut self, live: &[i64], sweeper: bool) {
        let before = self.remote.bound.len();
        self.remote.bound.retain(|_, w| live.contains(w));
        let freed = before - self.remote.bound.len();
        if freed > 0 {
            info!("cluster: {freed} session(s) of nodes that left are detached");
        }
        if sweeper != self.remote.sweeper {
            info!(
                "cluster: this node {} the detached sessions' expiry",
                if sweeper {
                    "now sweeps"
                } else {
                    "no longer sweeps"
                }
            );
        }
        self.remote.sweeper = sweeper;
    }

    /// At start: the sessions the log says are bound on other live nodes.
    pub fn bind_remote(&mut self, bound: &[(u64, i64)]) {
        for &(sid, writer) in bound {
            if self.sessions.get(sid).is_some() {
                self.remote.bound.insert(sid, writer);
            }
        }
    }

    /// Whether this node may end session `sid` on its idle or absolute expiry: always
    /// outside a cluster; in one, not while it is bound on another node (whose own timer
    /// watches it), and a detached one only on the sweeper.
    pub(super) fn sweeps(&self, sid: u64) -> bool {
        if !self.cfg.cluster {
            return true;
        }
        let bound_here = self.sessions.get(sid).is_some_and(|s| s.conn.is_some());
        bound_here || (self.remote.sweeper && !self.remote.bound.contains_key(&sid))
    }

    /// Whether session `sid` is bound to a connection on another node.
    pub(super) fn bound_elsewhere(&self, sid: u64) -> bool {
        self.remote.bound.contains_key(&sid)
    }

    fn remote_audit(&mut self, a: &Audit, now: Instant) {
        self.audit_log.push(a);
        let sid = a.session_id;
        if a.kind == AuditKind::SessionResumed {
            // Resumed there while bound here: this connection is the one left over.
            if let Some(cid) = self.bound_here(sid) {
                self.detach_for_end(cid, now);
                let by = By {
                    client: &a.client,
                    platform: &a.platform,
                    address: &a.address,
                };
                self.push_revoked(cid, sid, RevokeReason::TakenOver, &by, now);
                self.stats.takeovers += 1;
                self.close(cid, now);
                info!("session taken over by another node: session={sid:016x}");
            }
        }
    }

    /// The connection here bound to session `sid`, if any.
    fn bound_here(&self, sid: u64) -> Option<ConnId> {
        self.sessions
            .get(sid)
            .and_then(|s| s.conn)
            .filter(|&c| self.conn(c).and_then(|c| c.session_id()) == Some(sid))
    }

    /// A session another node created: here it is detached (bound there). False if it
    /// could not be taken (its account unknown, or here already).
    fn remote_session(&mut self, s: &StoredSession) -> bool {
        if self.users.get(s.user_id).is_none() || self.sessions.get(s.id).is_some() {
            return false;
        }
        let session = self.detached_session(s);
        if self.sessions.insert(session).is_err() {
            return false;
        }
        self.watch_session(s.id);
        true
    }

    /// A session another node ended: gone here too, and its connection here, if it has
    /// one, told why (from `cause`, the end's audit record) and closed.
    fn remote_end(
        &mut self,
        sid: u64,
        kind: EndKind,
        at_ms: u64,
        cause: Option<&Audit>,
        now: Instant,
    ) {
        let Some(expires_ms) = self.sessions.get(sid).map(|s| s.expires_ms) else {
            return;
        };
        let bound = self.bound_here(sid);
        if let Some(cid) = bound {
            self.detach_for_end(cid, now);
        }
        let why = super::restore::invalid_reason(kind);
        let keep_until_ms = expires_ms.max(at_ms + self.cfg.tombstone_min.as_millis() as u64);
        if let Some(s) = self.sessions.end(sid, why, keep_until_ms) {
            if let Some(t) = s.timer {
                self.wheel.cancel(t);
            }
        }
        let Some(cid) = bound else {
            return;
        };
        match kind {
            EndKind::Revoked => {
                let reason = cause
                    .map(|a| RevokeReason::from_u16(a.reason))
                    .unwrap_or(RevokeReason::ByAdmin);
                let actor = cause.and_then(|a| a.actor.as_ref());
                let by = By {
                    client: actor.map_or("", |a| a.client.as_str()),
                    platform: actor.map_or("", |a| a.platform.as_str()),
                    address: actor.map_or("", |a| a.address.as_str()),
                };
                self.push_revoked(cid, sid, reason, &by, now);
                self.stats.revocations += 1;
                info!(
                    "session revoked on another node ({}): session={sid:016x}",
                    reason.name()
                );
            }
            EndKind::ExpiredIdle | EndKind::ExpiredAbsolute => {
                let reason = if kind == EndKind::ExpiredIdle {
                    ExpiredReason::Idle
                } else {
                    ExpiredReason::Absolute
                };
                let msg = Message::SessionExpired(SessionExpired {
                    session_id: sid,
                    reason,
                });
                self.send(cid, 0, Flags::PUSH | Flags::FATAL, &msg, now);
            }
            // Logged out by its own connection, which is not here: nothing to say.
            EndKind::LoggedOut => {}
        }
        self.close(cid, now);
    }

    /// An account suspended on another node, which ended every session of it that it
    /// knew: those bound here that it did not know yet (a login here at the same moment)
    /// end here, as the suspension's.
    fn end_suspended_here(&mut self, uid: u64, now: Instant) {
        let here: Vec<u64> = self
            .sessions
            .connected_of_user(uid)
            .map(|(sid, _)| sid)
            .collect();
        for sid in here {
            let by = Actor {
                user_id: 0,
                session_id: 0,
                address: String::new(),
                client: String::new(),
                platform: String::new(),
            };
            let reason = RevokeReason::AccountSuspended;
            self.end_session(sid, End::Revoked { reason, by }, 0, now);
        }
    }

    /// Logins of `uid` made at once on several nodes (neither knew the other's) may leave
    /// more live sessions than allowed: the highest ids stay, as on every node; this node
    /// ends those of the rest that are its own (bound here, or detached when it sweeps),
    /// as revoked by the newest login. The others' nodes end theirs.
    fn settle_concurrent_logins(&mut self, uid: u64, now: Instant) {
        let max = self.cfg.max_sessions_per_user;
        if max == 0 {
            return;
        }
        let mut live: Vec<u64> = self.sessions.of_user(uid).collect();
        if live.len() <= max {
            return;
        }
        live.sort_unstable_by(|a, b| b.cmp(a));
        let winner = live[0];
        let Some(by) = self.sessions.get(winner).map(|s| {
            let (client, platform) = self.sessions.device(s);
            Actor {
                user_id: uid,
                session_id: winner,
                address: s.peer.to_string(),
                client: client.to_owned(),
                platform: platform.to_owned(),
            }
        }) else {
            return;
        };
        for &sid in &live[max..] {
            let ours = match self.remote.bound.get(&sid) {
                Some(_) => false,
                None => self.bound_here(sid).is_some() || self.remote.sweeper,
            };
            if ours {
                let reason = RevokeReason::NewLogin;
                let by = by.clone();
                info!("cluster: logins at once on two nodes; session={sid:016x} gives way");
                self.end_session(sid, End::Revoked { reason, by }, 0, now);
            }
        }
    }
}
