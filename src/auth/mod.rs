//! Passwords, without threads: PBKDF2 records and the hash jobs the engine asks for.
//!
//! Owns the password record format and every PBKDF2 computation ([`run_job`]). The loop
//! never runs a job itself: at 600,000 iterations one check takes about a third of a
//! second, so the engine hands [`HashJob`]s out and the server's hash pool
//! (`server::hash_pool`) runs them on worker threads, answering through the loop's waker.

mod job;
mod password;

pub use job::{run_job, HashJob, HashResult, JobKind, JobOutcome, Reservation};
pub use password::{PasswordRecord, RecordParseError};

/// PBKDF2-HMAC-SHA256 iterations for new records (OWASP's 2023 recommendation).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
