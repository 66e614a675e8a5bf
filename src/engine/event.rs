//! The engine's durable vocabulary: one typed event per change of durable state (users,
//! sessions and their ends, the audit trail).
//!
//! Owns what the events mean. Not how they are stored: `store::record` frames them as
//! journal records, and a networked authority maps them its own way; the fold from events
//! back to state is `engine::replay`.

use crate::session::{Digest, User};

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
    /// The kind whose record byte is `v`.
    pub fn from_u8(v: u8) -> Option<EndKind> {
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

/// A session that ended: enough to tell a later resume of its token why it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedSession {
    pub digest: Digest,
    pub kind: EndKind,
    /// When the session would have expired: the tombstone is kept at least until then.
    pub expires_ms: u64,
    pub ended_ms: u64,
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
}
