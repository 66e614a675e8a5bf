//! Password-hashing jobs: what the engine asks for (verify, create, change) and what
//! comes back, and [`run_job`], the computation itself.
//!
//! Pure: no threads, no waking. The server's hash pool (`server::hash_pool`) runs jobs on
//! worker threads; tests and tools run them inline.

use super::password::PasswordRecord;
use crate::protocol::Secret;

/// Work for a hashing thread (or whoever runs [`run_job`]). `ticket` comes back unchanged in the result.
#[derive(Debug)]
pub struct HashJob {
    pub ticket: u64,
    pub kind: JobKind,
}

#[derive(Debug)]
pub enum JobKind {
    /// Check a password against a stored record.
    Verify {
        password: Secret,
        record: PasswordRecord,
    },
    /// Hash a new password into a record.
    Create { password: Secret, iterations: u32 },
    /// Check `old` against `record`; only if it matches, hash `new` (CHANGE_PASSWORD).
    Change {
        old: Secret,
        record: PasswordRecord,
        new: Secret,
        iterations: u32,
    },
}

#[derive(Debug)]
pub struct HashResult {
    pub ticket: u64,
    pub outcome: JobOutcome,
}

#[derive(Debug)]
pub enum JobOutcome {
    Verified(bool),
    Created(PasswordRecord),
    /// The new record; None when the old password did not match.
    Changed(Option<PasswordRecord>),
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
    }
}
