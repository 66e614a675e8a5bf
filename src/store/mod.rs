//! Everything that touches files: the data directory and the users file.
//!
//! Owns file formats and durability (write to a temporary file, fsync, rename, fsync the
//! directory). No other module opens files. The loop never calls in here: users are loaded
//! before it starts and the first admin is created before it starts.
//!
//! Design: version 1 persists users only, in a small text file rewritten whole when it
//! changes, and appended to by registrations. Sessions live in memory
//! and end with the process; the append-only journal that makes them durable replaces
//! this file behind the same `load` / `save` calls.

mod crc32c;
pub mod event;
pub mod journal;
mod journal_file;
mod lock;
mod users_file;
mod writer;

pub use journal_file::{open_journal, repair_journal, Journal, OpenError, JOURNAL_FILE};
pub use lock::{lock_data_dir, DataDirLock, LOCK_FILE};
pub use users_file::{append_user, load_users, save_users, UsersFileError, USERS_FILE};
pub use writer::{PersistJob, PersistResult, UserWriter};

use std::fs;
use std::io;
use std::path::Path;

/// Creates the data directory (owner-only on Unix) if it does not exist.
pub fn ensure_data_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}
