//! Passwords: PBKDF2 records, and the worker pool that hashes them off the event loop.
//!
//! Owns the password record format and every PBKDF2 computation. The loop never calls
//! `PasswordRecord::verify` itself: at 600,000 iterations one check takes about a third of
//! a second, so the engine hands [`HashJob`]s to the [`HashPool`], whose threads answer
//! through a channel and wake the loop with `mio::Waker`.

mod password;
mod pool;

pub use password::{PasswordRecord, RecordParseError, Secret};
pub use pool::{run_job, HashJob, HashPool, HashResult, JobKind, JobOutcome, PoolFull};

/// PBKDF2-HMAC-SHA256 iterations for new records (OWASP's 2023 recommendation).
pub const DEFAULT_ITERATIONS: u32 = 600_000;
