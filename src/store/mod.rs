//! Everything that touches files: the data directory, its lock, and the journal.
//!
//! Owns file formats and durability. No other module opens files. The loop does not call
//! in here for each change: the engine emits events in one batch per loop iteration, and
//! the server's store thread appends them and makes them durable with one commit (one
//! write, one fdatasync) for every batch that arrived since its last one; replies that
//! depend on a batch wait for it (`server::committer`, `engine::durability`).
//!
//! - `journal`: record framing (length, CRC-32C, type, sequence), group-commit writer,
//!   replay with torn-tail detection.
//! - `record`: how each event is laid out as a record (type byte and payload); what an
//!   event means, and the state replay rebuilds, are the engine's (`engine::event`,
//!   `engine::replay`).
//! - `journal_file`: the journal in the data directory: open (refusing damage and state
//!   gone missing), group commit with a full disk undone and retried, snapshots.
//! - `layout`: the directory's files, its identity, the archive, crash leftovers.
//! - `repair`: `sessiond repair` and `sessiond repair --check`.
//! - `lock`: one server per data directory.
//! - `audit_trail`: the whole audit trail (archive and journal), read-only.
//! - `cluster`: the same events in a log table on PostgreSQL (`--cluster URL`), written
//!   by several nodes at once.
//! - `cluster_link`: a node's thread that follows the others' records, tells the others
//!   how far it has applied them, and reserves account names.

mod audit_trail;
pub mod cluster;
pub mod cluster_link;
mod crc32c;
pub mod journal;
mod journal_file;
mod layout;
mod lock;
pub mod record;
mod repair;

pub use audit_trail::{read_audit_trail, AuditTrail};
pub use journal_file::{open_journal, open_journal_with, Journal, JournalOptions, OpenError};
pub use layout::{
    archive_segments, ARCHIVE_DIR, IDENTITY_FILE, JOURNAL_FILE, SNAPSHOT_FILE, SNAPSHOT_PREV_FILE,
};
pub use lock::{lock_data_dir, DataDirLock, LOCK_FILE};
pub use repair::{repair, RepairReport};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::Reservation;
use crate::engine::event::Event;

/// A store operation that failed.
#[derive(Debug)]
pub struct StoreError {
    /// What failed (naming the operation and the file).
    pub error: io::Error,
    /// True: nothing durable changed and nothing is lost; the same work can be done again
    /// later (a full disk, a snapshot that could not be written). False: nothing after
    /// this may be acknowledged, and the server stops.
    pub retryable: bool,
}

impl StoreError {
    /// A failure the store can come back from.
    pub fn retry(error: io::Error) -> Self {
        StoreError {
            error,
            retryable: true,
        }
    }

    /// A failure after which nothing may be acknowledged.
    pub fn fatal(error: io::Error) -> Self {
        StoreError {
            error,
            retryable: false,
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for StoreError {}

/// What the server needs from durable storage, called on its store thread: append a group
/// of events, then make them durable. The embedded [`Journal`] is the default; a networked
/// store shared by several servers can implement the same calls (and load its state at
/// startup the way `open_journal` does).
pub trait Store: Send {
    /// Buffers one event; durable after `commit`.
    fn append(&mut self, ev: &Event) -> io::Result<()>;
    /// Makes everything appended durable. A retryable error leaves everything appended
    /// buffered, for the next commit; after a fatal one nothing more may be acknowledged.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Bytes the store holds now (ADMIN_STATS `journal_bytes`); 0 if it cannot tell.
    fn size_bytes(&self) -> u64 {
        0
    }
    /// Whether the store wants the whole state as a snapshot now (after a commit).
    fn needs_snapshot(&self) -> bool {
        false
    }
    /// Replaces everything committed so far with `events`, the whole state. A retryable
    /// error leaves the store as it was (the snapshot is asked for again later).
    fn write_snapshot(&mut self, events: &[Event]) -> Result<(), StoreError> {
        let _ = events;
        Ok(())
    }
    /// How often the store thread calls [`tick`](Store::tick) while it has nothing else to
    /// do; None: never (the journal needs no upkeep).
    fn tick_interval(&self) -> Option<Duration> {
        None
    }
    /// Upkeep between commits (the cluster store renews its node's lease). A fatal error
    /// stops the server, as a failed commit does.
    fn tick(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The deadline past which the server must stop serving, unless the store moves it
    /// (the cluster node's lease); None: no such deadline.
    fn fence(&self) -> Option<Fence> {
        None
    }
    /// Where the last commit ended in a log shared with other servers (the cluster's log
    /// record number); 0 for a store of this server's own.
    fn position(&self) -> u64 {
        0
    }
    /// Whether no other server shared the store when the last commit was made (nothing
    /// waits for others then); true for a store of this server's own.
    fn alone(&self) -> bool {
        true
    }
    /// For a store shared with other servers: how to follow their changes and answer for
    /// this one's (`cluster_link`); None for a store of this server's own.
    fn link_spec(&self) -> Option<cluster_link::LinkSpec> {
        None
    }
    /// Reserves `username` for a new account in a store shared with other servers, which
    /// gives out names and ids: [`Reservation::Reserved`] with the id, or `Taken`. A store
    /// of this server's own answers [`Reservation::None`]: the caller gives the id.
    fn reserve_account(&mut self, username: &str) -> Result<Reservation, StoreError> {
        let _ = username;
        Ok(Reservation::None)
    }
}

/// Makes an account in `users` for an operator command or the first start, with the id
/// the store gives (a cluster reserves the name in the database first) or else the next
/// one of `users`: None if the name is taken (here, or on any node of a cluster). The
/// caller appends its `UserCreated`.
pub fn create_account(
    store: &mut dyn Store,
    users: &mut crate::session::UserTable,
    name: &str,
    record: crate::auth::PasswordRecord,
    role: crate::protocol::Role,
    email: &str,
    at_ms: u64,
) -> Result<Option<crate::session::User>, StoreError> {
    if users.by_name(name).is_some() {
        return Ok(None);
    }
    let made = match store.reserve_account(name)? {
        Reservation::Reserved(id) => users.create_as(id, name, record, role, email, at_ms),
        Reservation::None => users.create(name, record, role, email, at_ms),
        _ => return Ok(None),
    };
    Ok(made.ok().cloned())
}

/// A deadline the store thread moves and the event loop watches: past it, the server stops
/// serving at once (the other nodes may have taken its sessions over by then). The loop
/// never waits on the store for it, so a store thread stuck on a dead database cannot
/// keep a fenced node serving.
#[derive(Debug, Clone)]
pub struct Fence {
    base: Instant,
    /// Nanoseconds after `base`.
    deadline: Arc<AtomicU64>,
}

impl Fence {
    /// A fence at `deadline`.
    pub fn new(deadline: Instant) -> Fence {
        let base = deadline;
        Fence {
            base,
            deadline: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves the deadline (never back).
    pub fn extend_to(&self, deadline: Instant) {
        let ns = deadline.saturating_duration_since(self.base).as_nanos() as u64;
        self.deadline.fetch_max(ns, Ordering::Release);
    }

    /// The deadline now.
    pub fn deadline(&self) -> Instant {
        self.base + Duration::from_nanos(self.deadline.load(Ordering::Acquire))
    }
}

impl Store for Journal {
    fn size_bytes(&self) -> u64 {
        Journal::size(self)
    }

    fn needs_snapshot(&self) -> bool {
        Journal::needs_snapshot(self)
    }

    fn write_snapshot(&mut self, events: &[Event]) -> Result<(), StoreError> {
        Journal::write_snapshot(self, events)
    }

    fn append(&mut self, ev: &Event) -> io::Result<()> {
        Journal::append(self, ev)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Journal::commit(self)
    }
}

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
