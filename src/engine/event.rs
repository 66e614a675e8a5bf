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
        /// A login was refused (`reason`: LOGIN_FAILURE's); `username` is the name tried
        /// when no such account exists.
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
        /// CHANGE_PASSWORD was refused (`reason`: LOGIN_FAILURE's `INVALID_CREDENTIALS` for
        /// a wrong old password, `THROTTLED` or `SERVER_BUSY`).
        PasswordChangeFailed = 15 => "password_change_failed",
        /// An administrator (ADMIN_SET_PASSWORD, the actor) or the operator (`sessiond user
        /// passwd`, no actor) set the account's password; its sessions were revoked.
        PasswordReset = 16 => "password_reset",
        /// The operator deleted the account (`sessiond user delete`); `username` keeps its
        /// name, which no longer follows from `user_id`.
        UserDeleted = 17 => "user_deleted",
    }
}

impl AuditKind {
    /// The name of `reason` in the table this kind's reasons come from (protocol.md 5.37);
    /// None for 0 where the kind has no reason, or a code the table lacks.
    pub fn reason_name(self, reason: u16) -> Option<&'static str> {
        use crate::protocol::{ExpiredReason, LoginFailureReason, RevokeReason, Role};
        let known = |name: &'static str| (!name.starts_with("UNKNOWN")).then_some(name);
        match self {
            AuditKind::Revoked => known(RevokeReason::from_u16(reason).name()),
            AuditKind::ExpiredIdle | AuditKind::ExpiredAbsolute => {
                known(ExpiredReason::from_u16(reason).name())
            }
            AuditKind::LoginFailed | AuditKind::PasswordChangeFailed => {
                known(LoginFailureReason::from_u16(reason).name())
            }
            AuditKind::RoleChanged | AuditKind::UserCreated => u8::try_from(reason)
                .ok()
                .and_then(Role::from_u8)
                .map(Role::name),
            _ => None,
        }
    }
}

/// Who caused an audited event, when it was not the subject itself: the administrator,
/// the user acting from another session, the login that took a session's place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The acting account.
    pub user_id: u64,
    /// The session it acted from (0: none, e.g. before its own login completed).
    pub session_id: u64,
    /// Its address, `ip:port`.
    pub address: String,
    /// Its client program.
    pub client: String,
    /// Its platform.
    pub platform: String,
}

/// One entry of the audit trail: what happened, when, to whom, why, by whom, from where
/// (protocol.md 5.36). Typed fields carry the meaning; `detail` is a note for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// When it happened, Unix ms.
    pub at_ms: u64,
    /// What happened.
    pub kind: AuditKind,
    /// The reason code, from the protocol table the kind names (protocol.md 5.36); 0: none.
    pub reason: u16,
    /// The account, 0 when none is known (a failed login for an unknown name).
    pub user_id: u64,
    /// The name a login tried when no such account exists (`user_id` 0), or the name of
    /// the account a `user_deleted` record removed; empty otherwise (the account's name
    /// follows from `user_id`).
    pub username: String,
    /// The session, 0 when none is involved.
    pub session_id: u64,
    /// The address involved as `ip:port` (the connection's, or the session's last);
    /// empty for the operator commands' records.
    pub address: String,
    /// The device involved: the client program (LOGIN_REQUEST's, VERIFY_SESSION's, or
    /// the session's).
    pub client: String,
    /// ... and its platform.
    pub platform: String,
    /// Who caused it, when not the subject itself.
    pub actor: Option<Actor>,
    /// A note for people (see each [`AuditKind`]); may be empty. The journal keeps at most
    /// [`MAX_DETAIL`] bytes of it.
    pub detail: String,
}

impl Audit {
    /// A record of `kind` about `user_id`'s session `session_id` seen from `address`;
    /// the time is set when it is appended.
    pub fn new(
        kind: AuditKind,
        user_id: u64,
        session_id: u64,
        address: impl Into<String>,
    ) -> Audit {
        Audit {
            at_ms: 0,
            kind,
            reason: 0,
            user_id,
            username: String::new(),
            session_id,
            address: address.into(),
            client: String::new(),
            platform: String::new(),
            actor: None,
            detail: String::new(),
        }
    }

    /// With a reason code.
    pub fn reason(mut self, reason: u16) -> Audit {
        self.reason = reason;
        self
    }

    /// With the device involved.
    pub fn device(mut self, client: &str, platform: &str) -> Audit {
        self.client = client.to_owned();
        self.platform = platform.to_owned();
        self
    }

    /// With who caused it.
    pub fn actor(mut self, actor: Actor) -> Audit {
        self.actor = Some(actor);
        self
    }

    /// With a note for people.
    pub fn note(mut self, detail: impl Into<String>) -> Audit {
        self.detail = detail.into();
        self
    }

    /// With the name a login tried (for an unknown account), or a deleted account's name.
    pub fn tried(mut self, username: &str) -> Audit {
        self.username = username.to_owned();
        self
    }
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
    /// An account removed for good (`sessiond user delete`, after its sessions ended):
    /// its name is free again; its id is never given out again.
    UserDeleted {
        /// The account's id.
        user_id: u64,
    },
    /// In a snapshot: the id the next account created gets, written when it is not one
    /// above the highest id held (the accounts above were deleted), so that ids stay
    /// unique across compactions.
    NextUserId {
        /// The next account's id.
        id: u64,
    },
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
    /// A live session's attribute set (`value` Some) or removed (None); in a snapshot,
    /// each attribute of each live session.
    SessionAttr {
        /// The session's public id.
        id: u64,
        /// The attribute's name.
        key: String,
        /// Its value; None: removed.
        value: Option<Vec<u8>>,
    },
    /// An account's profile attribute set (`value` Some) or removed; in a snapshot, each
    /// attribute of each profile.
    UserProfile {
        /// The account.
        user_id: u64,
        /// The attribute's name.
        key: String,
        /// Its value; None: removed.
        value: Option<Vec<u8>>,
    },
    /// An account's application role (empty: none); in a snapshot, each account's.
    UserAppRole {
        /// The account.
        user_id: u64,
        /// The role.
        role: String,
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
        assert_eq!(AuditKind::Revoked.reason_name(1), Some("NEW_LOGIN"));
        assert_eq!(AuditKind::Revoked.reason_name(0x77), None);
        assert_eq!(AuditKind::ExpiredIdle.reason_name(1), Some("IDLE"));
        assert_eq!(
            AuditKind::PasswordChangeFailed.reason_name(6),
            Some("THROTTLED")
        );
        assert_eq!(AuditKind::RoleChanged.reason_name(1), Some("admin"));
        assert_eq!(AuditKind::SessionCreated.reason_name(0), None);
        assert_eq!(AuditKind::PasswordReset.reason_name(0), None);
        assert_eq!(
            AuditKind::from_name("user_deleted"),
            Some(AuditKind::UserDeleted)
        );
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
