//! Password-hashing jobs: what the engine asks for (verify, create, change, reset) and
//! what comes back, and [`run_job`], the computation itself.
//!
//! Pure: no threads, no waking. The server's hash pool (`server::hash_pool`) runs jobs on
//! worker threads; tests and tools run them inline.

use super::password::PasswordRecord;
use crate::protocol::Secret;

/// Work for a hashing thread (or whoever runs [`run_job`]). `ticket` comes back unchanged in the result.
#[derive(Debug)]
pub struct HashJob {
    /// The caller's name for the job (the engine's is [`ConnId::to_u64`] of the
    /// connection that asked).
    ///
    /// [`ConnId::to_u64`]: crate::conn::ConnId::to_u64
    pub ticket: u64,
    /// What to compute.
    pub kind: JobKind,
    /// A name to reserve once the hash is done (a cluster's new account), handed back in
    /// the result as [`Reservation::Wanted`]. (Boxed: one word in the job, which queues.)
    pub reserve: Option<Box<String>>,
}

impl HashJob {
    /// The job's [`HashJob::reserve`] as its result says it.
    pub fn reservation(&mut self) -> Reservation {
        match self.reserve.take() {
            Some(name) => Reservation::Wanted(*name),
            None => Reservation::None,
        }
    }
}

/// A new account's name to reserve in a store shared by several servers, which gives out
/// names and ids (`store::cluster_link`), and what came of it. A single server gives ids
/// out itself and asks for nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Reservation {
    /// Nothing to reserve.
    #[default]
    None,
    /// This name is to be reserved (the job's result goes to the shared store first).
    Wanted(String),
    /// Reserved for the new account, with this id.
    Reserved(u64),
    /// Another account has the name.
    Taken,
    /// The shared store could not be asked: retry later.
    Unavailable,
}

/// What a hash job computes.
#[derive(Debug)]
pub enum JobKind {
    /// Check a password against a stored record.
    Verify {
        /// The password given.
        password: Secret,
        /// The stored record to check it against.
        record: PasswordRecord,
    },
    /// Hash a new password into a record.
    Create {
        /// The new password.
        password: Secret,
        /// PBKDF2 iterations for the new record.
        iterations: u32,
    },
    /// Check `old` against `record`; only if it matches, hash `new` (CHANGE_PASSWORD).
    Change {
        /// The current password given.
        old: Secret,
        /// The stored record `old` must match.
        record: PasswordRecord,
        /// The new password.
        new: Secret,
        /// PBKDF2 iterations for the new record.
        iterations: u32,
    },
    /// Hash `password` into a new record for the account `user_id`, with no old password
    /// to check (ADMIN_SET_PASSWORD).
    Reset {
        /// The account the record is for: not looked at, handed back with the record (the
        /// answer says whose it is without the caller keeping it anywhere).
        user_id: u64,
        /// The new password.
        password: Secret,
        /// PBKDF2 iterations for the new record.
        iterations: u32,
    },
}

/// A finished job, for [`Engine::handle_hash_result`](crate::engine::Engine::handle_hash_result).
#[derive(Debug)]
pub struct HashResult {
    /// The job's [`HashJob::ticket`].
    pub ticket: u64,
    /// What it computed.
    pub outcome: JobOutcome,
    /// The job's [`HashJob::reserve`], answered once the shared store has been asked.
    pub reserve: Reservation,
}

/// What a job computed.
#[derive(Debug)]
pub enum JobOutcome {
    /// [`JobKind::Verify`]: whether the password matches the record.
    Verified(bool),
    /// [`JobKind::Create`]: the new record.
    Created(PasswordRecord),
    /// The new record; None when the old password did not match.
    Changed(Option<PasswordRecord>),
    /// [`JobKind::Reset`]: the new record for `user_id`.
    Reset {
        /// The job's `user_id`.
        user_id: u64,
        /// The new record.
        record: PasswordRecord,
    },
    /// No record could be made (iterations out of range, or the OS's random generator
    /// failed).
    Failed(std::io::ErrorKind),
}

/// Does one job on the calling thread (what a worker does; tests call it directly).
pub fn run_job(kind: JobKind) -> JobOutcome {
    match kind {
        JobKind::Verify { password, record } => {
            JobOutcome::Verified(record.verify(password.as_bytes()))
        }
        JobKind::Create {
            password,
            iterations,
        } => match PasswordRecord::create(password.as_bytes(), iterations) {
            Ok(r) => JobOutcome::Created(r),
            Err(e) => JobOutcome::Failed(e.kind()),
        },
        JobKind::Change {
            old,
            record,
            new,
            iterations,
        } => {
            if !record.verify(old.as_bytes()) {
                return JobOutcome::Changed(None);
            }
            match PasswordRecord::create(new.as_bytes(), iterations) {
                Ok(r) => JobOutcome::Changed(Some(r)),
                Err(e) => JobOutcome::Failed(e.kind()),
            }
        }
        JobKind::Reset {
            user_id,
            password,
            iterations,
        } => match PasswordRecord::create(password.as_bytes(), iterations) {
            Ok(record) => JobOutcome::Reset { user_id, record },
            Err(e) => JobOutcome::Failed(e.kind()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_hashes_the_new_password_for_its_account() {
        let job = JobKind::Reset {
            user_id: 7,
            password: Secret::from("a new password"),
            iterations: 1,
        };
        match run_job(job) {
            JobOutcome::Reset { user_id, record } => {
                assert_eq!(user_id, 7);
                assert!(record.verify(b"a new password"));
                assert!(!record.verify(b"the old one"));
            }
            other => panic!("{other:?}"),
        }
        let job = JobKind::Reset {
            user_id: 7,
            password: Secret::from("x"),
            iterations: 0,
        };
        assert!(matches!(run_job(job), JobOutcome::Failed(_)));
    }
}
