//! Whether durable writes can be taken now, and the refusal when they cannot
//! (protocol.md 4, "When storage is unavailable").
//!
//! Two things stop them: the store refusing commits (a full disk: [`Engine::handle_storage`],
//! reported by the shell), and too many events handed out in batches not yet durable (a
//! slow disk): past `max_undurable_events` the engine stops taking requests that would
//! add more, and takes them again once the backlog is down to half. Meanwhile everything
//! that needs no new durable write goes on: heartbeats, listings, statistics, disconnects.
//! A refused request changes nothing and is not audited (the audit trail is on the storage
//! that is unavailable); the client retries after `retry_after`.

use std::time::Instant;

use log::{info, warn};

use super::{millis, Engine};
use crate::conn::ConnId;
use crate::protocol::{
    ErrorCode, Flags, LoginFailure, LoginFailureReason, Message, RegisterFailure,
    RegisterFailureReason,
};

/// Whether `m`, sent before login (`before_login`) or after, is a request that records a
/// durable change when it is carried out, and so is refused while storage is unavailable.
/// A request not allowed in that state gets its usual error instead.
pub(super) fn needs_storage(before_login: bool, m: &Message) -> bool {
    let login = matches!(
        m,
        Message::LoginRequest(_) | Message::RegisterRequest(_) | Message::VerifySession(_)
    );
    if before_login {
        return login;
    }
    matches!(
        m,
        Message::LogoutRequest(_)
            | Message::RevokeSession(_)
            | Message::LogoutAll(_)
            | Message::ChangePassword(_)
            | Message::AdminRevokeSession(_)
            | Message::AdminLogoutUser(_)
            | Message::AdminSuspendUser(_)
            | Message::AdminUnsuspendUser(_)
            | Message::AdminSetRole(_)
            | Message::AdminSetPassword(_)
            | Message::AttrSet(_)
            | Message::AttrRemove(_)
            | Message::AdminSetAttr(_)
            | Message::ProfileSet(_)
            | Message::AdminSetProfile(_)
            | Message::AdminSetAppRole(_)
    )
}

impl Engine {
    /// The store stopped taking commits (`available` false: a full disk; what was handed
    /// out stays with it and is retried) or takes them again. Logged once per change.
    /// (No `now`: it decides nothing time-dependent.)
    pub fn handle_storage(&mut self, available: bool) {
        let before = self.storage_available();
        self.store_full = !available;
        self.log_storage_change(before);
    }

    /// Whether requests that need a durable write are taken now.
    pub fn storage_available(&self) -> bool {
        !self.store_full && !self.backlogged
    }

    /// Events handed out in batches that are not durable yet.
    pub fn undurable_events(&self) -> usize {
        self.undurable_events
    }

    /// Counts a batch handed out (from `poll_batch`).
    pub(super) fn note_batch_out(&mut self, seq: u64, events: usize) {
        self.undurable.push_back((seq, events));
        self.undurable_events += events;
        let max = self.cfg.max_undurable_events;
        if max > 0 && !self.backlogged && self.undurable_events > max {
            let before = self.storage_available();
            self.backlogged = true;
            self.log_storage_change(before);
        }
    }

    /// Counts the batches up to `seq` durable (from `handle_durable`).
    pub(super) fn note_batches_durable(&mut self, seq: u64) {
        while let Some(&(s, n)) = self.undurable.front() {
            if s > seq {
                break;
            }
            self.undurable.pop_front();
            self.undurable_events -= n;
        }
        if self.backlogged && self.undurable_events <= self.cfg.max_undurable_events / 2 {
            let before = self.storage_available();
            self.backlogged = false;
            self.log_storage_change(before);
        }
    }

    fn log_storage_change(&self, before: bool) {
        let now = self.storage_available();
        if now == before {
            return;
        }
        if now {
            info!("storage available again: logins and changes are taken");
        } else if self.store_full {
            warn!("storage unavailable (the store refuses writes): refusing logins and changes with STORAGE_UNAVAILABLE; heartbeats go on");
        } else {
            warn!(
                "storage behind: {} events wait for the disk (limit {}): refusing logins and \
                 changes with STORAGE_UNAVAILABLE until half of them are durable",
                self.undurable_events, self.cfg.max_undurable_events
            );
        }
    }

    /// Refuses `m` (which `needs_storage`) because storage is unavailable: LOGIN_FAILURE
    /// or REGISTER_FAILURE with reason STORAGE_UNAVAILABLE, else GENERAL_FAILURE
    /// STORAGE_UNAVAILABLE; never fatal, never audited.
    pub(super) fn refuse_for_storage(&mut self, id: ConnId, rid: u32, m: &Message, now: Instant) {
        let asked = match m {
            Message::LoginRequest(_) => Asked::Login,
            Message::RegisterRequest(_) => Asked::Register,
            _ => Asked::Other,
        };
        self.refuse_asked_for_storage(id, rid, asked, now);
    }

    /// A registration whose name the shared store could not reserve (it is away):
    /// REGISTER_FAILURE STORAGE_UNAVAILABLE, as for any store that refuses writes.
    pub(super) fn refuse_registration_for_storage(&mut self, id: ConnId, rid: u32, now: Instant) {
        self.refuse_asked_for_storage(id, rid, Asked::Register, now);
    }

    fn refuse_asked_for_storage(&mut self, id: ConnId, rid: u32, asked: Asked, now: Instant) {
        self.stats.storage_refusals += 1;
        self.mark_valid_streak(id);
        let retry_after_ms = millis(self.cfg.storage_retry_after);
        let message = format!("storage unavailable; retry in {retry_after_ms} ms");
        let reply = match asked {
            Asked::Login => {
                self.stats
                    .count_login_failure(LoginFailureReason::StorageUnavailable);
                Message::LoginFailure(LoginFailure {
                    reason: LoginFailureReason::StorageUnavailable,
                    retry_after_ms,
                    message,
                })
            }
            Asked::Register => Message::RegisterFailure(RegisterFailure {
                reason: RegisterFailureReason::StorageUnavailable,
                message,
            }),
            Asked::Other => Message::GeneralFailure(crate::protocol::GeneralFailure::new(
                ErrorCode::StorageUnavailable,
                &message,
            )),
        };
        self.send(id, rid, Flags::NONE, &reply, now);
    }
}

/// Which kind of refusal a request refused for storage gets.
enum Asked {
    Login,
    Register,
    Other,
}
