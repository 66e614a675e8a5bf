//! The engine's durable vocabulary: one typed event per change of durable state (users,
//! sessions and their ends, the audit trail).
//!
//! Owns what the events mean. Not how they are stored: `store::record` frames them as
//! journal records, and a networked authority maps them its own way; the fold from events
//! back to state is `engine::replay`.

use crate::protocol::wire_enum;
use crate::session::{Digest, User};

/// Longest free-text detail in an audit event.
pub const MAX_DETAIL: usize = 256;

wire_enum! {
    /// How a session ended, as recorded.
    pub closed enum EndKind: u8, to_u8, from_u8 {
        /// LOGOUT_REQUEST, or LOGOUT_ALL `all` for the caller's own session.
        LoggedOut = 1 => "logged_out",
        /// No activity for the idle expiry.
        ExpiredIdle = 2 => "expired_idle",
        /// The lifetime ran out.
        ExpiredAbsolute = 3 => "expired_absolute",
        /// Revoked (a new login, a takeover, the user, an administrator).
        Revoked = 4 => "revoked",
    }
}

/// A session as the journal knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// Public id (protocol.md `session_id`).
    pub id: u64,
    /// Whose session.
    pub user_id: u64,
    /// SHA-256 of the token (the token itself is never stored).
    pub digest: Digest,
    /// LOGIN_REQUEST's (or the last VERIFY_SESSION's) `client`.
    pub client: String,
    /// ... and `platform`.
    pub platform: String,
    /// The address the session was last used from.
    pub peer: String,
    /// Unix ms.
    pub created_ms: u64,
    /// The last activity journaled, Unix ms (coarse: see [`Event::SessionActivity`]).
    pub last_activity_ms: u64,
    /// Absolute expiry, Unix ms.
    pub expires_ms: u64,
}

wire_enum! {
    /// What an audit record is about (protocol.md 5.27 `kind`).
    pub closed enum AuditKind: u8, to_u8, from_u8 {
        /// A login created the session.
        SessionCreated = 1 => "session_created",
        /// VERIFY_SESSION resumed it on a new connection.
        SessionResumed = 2 => "session_resumed",
        /// Its connection went away; the session lives on.
        SessionDetached = 3 => "session_detached",
        /// Ended: no activity for the idle expiry.
        ExpiredIdle = 4 => "expired_idle",
        /// Ended: its lifetime ran out.
        ExpiredAbsolute = 5 => "expired_absolute",
        /// Ended by its own logout.
        LoggedOut = 6 => "logged_out",
        /// Ended by a revocation; `detail` names the reason and who caused it.
        Revoked = 7 => "revoked",
        /// A login was refused; `detail` names the username tried and why.
        LoginFailed = 8 => "login_failed",
        /// REGISTER_REQUEST created the account.
        Registered = 9 => "registered",
        /// An administrator suspended the account (`detail`: by whom).
        Suspended = 10 => "suspended",
        /// An administrator lifted the suspension.
        Unsuspended = 11 => "unsuspended",
        /// `detail`: old and new role, by whom.
        RoleChanged = 12 => "role_changed",
        /// CHANGE_PASSWORD succeeded.
        PasswordChanged = 13 => "password_changed",
        /// An operator created the account (`sessiond user add`).
        UserCreated = 14 => "user_created",
    }
}

/// One entry of the audit trail: what happened, when, to whom, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// When it happened, Unix ms.
    pub at_ms: u64,
    /// What happened.
    pub kind: AuditKind,
    /// The account, 0 when none is known (a failed login for an unknown name).
    pub user_id: u64,
    /// The session, 0 when none is involved.
    pub session_id: u64,
    /// The address involved as `ip:port` (the connection's, or the session's last);
    /// empty for the operator commands' records.
    pub address: String,
    /// Free text (see each [`AuditKind`]); may be empty. The journal keeps at most
    /// [`MAX_DETAIL`] bytes of it.
    pub detail: String,
}

/// One durable change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An entry of the audit trail.
    Audit(Audit),
    /// An account created (and, in a snapshot, each account).
    UserCreated(User),
    /// The whole record again after a change (password, role, suspension).
    UserUpdated(User),
    /// A successful login.
    LastLogin {
        /// Whose.
        user_id: u64,
        /// When, Unix ms.
        at_ms: u64,
    },
    /// A session created by a login (and, in a snapshot, each live session).
    SessionCreated(StoredSession),
    /// Coarse: at detach, logout and at most every few minutes, never per heartbeat.
    SessionActivity {
        /// The session's public id.
        id: u64,
        /// Its last activity, Unix ms.
        at_ms: u64,
    },
    /// A session ended.
    SessionEnded {
        /// The session's public id.
        id: u64,
        /// How.
        kind: EndKind,
        /// When, Unix ms.
        at_ms: u64,
    },
    /// First record of a snapshot: it holds everything up to journal record `base_seq`.
    SnapshotBase {
        /// The number of the last journal record the snapshot covers.
        base_seq: u64,
    },
    /// In a snapshot: an ended session still remembered until `keep_until_ms`.
    Tombstone {
        /// The session's public id; 0 (not kept) in snapshots written since tombstones
        /// became compact, and ignored on replay.
        id: u64,
        /// Its token's digest.
        digest: Digest,
        /// How it ended.
        kind: EndKind,
        /// Until when it is remembered, Unix ms.
        keep_until_ms: u64,
    },
    /// An account's failure streak changed (protocol.md 4, "Account policies"), so a
    /// restart does not lift a brute-force delay.
    FailureStreak {
        /// The account.
        user_id: u64,
        /// Wrong passwords in a row; 0: reset by a success.
        failures: u32,
        /// Attempts are refused until then, Unix ms (0: no delay).
        until_ms: u64,
    },
    /// An account's successful logins on one UTC day, while a daily limit is on, so a
    /// restart does not reset the limit.
    DailyLogins {
        /// The account.
        user_id: u64,
        /// The UTC day, in days since 1970-01-01.
        day: u64,
        /// Logins that day so far.
        count: u32,
    },
}

/// A session that ended: enough to tell a later resume of its token why it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedSession {
    /// Its token's digest.
    pub digest: Digest,
    /// How it ended.
    pub kind: EndKind,
    /// When the session would have expired, Unix ms: the tombstone is kept at least
    /// until then.
    pub expires_ms: u64,
    /// When it ended, Unix ms; 0 for one restored from a snapshot's tombstone.
    pub ended_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_kinds_are_numbered_and_named_one_to_one() {
        for (i, &k) in AuditKind::ALL.iter().enumerate() {
            assert_eq!(k as u8 as usize, i + 1);
            assert_eq!(AuditKind::from_u8(k as u8), Some(k));
            assert_eq!(AuditKind::from_name(k.name()), Some(k));
        }
        assert_eq!(AuditKind::from_u8(0), None);
        assert_eq!(AuditKind::from_u8(AuditKind::ALL.len() as u8 + 1), None);
    }
}

/// Records for unit tests of the modules that store and replay events.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::StoredSession;
    use crate::auth::PasswordRecord;
    use crate::protocol::Role;
    use crate::session::{Digest, User};

    pub(crate) fn user(id: u64, name: &str) -> User {
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

    pub(crate) fn session(id: u64, user_id: u64) -> StoredSession {
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
}
