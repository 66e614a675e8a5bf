//! The journal in the data directory: opening it (replay, torn-tail truncation, refusal on
//! corruption), appending events with group commit, and `sessiond repair`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use log::{info, warn};

use super::event::{Event, State};
use super::journal::{replay, JournalWriter};
use crate::session::UserTable;

pub const JOURNAL_FILE: &str = "journal";

/// Why the journal could not be opened.
#[derive(Debug)]
pub enum OpenError {
    Io(io::Error),
    /// Damage before the end: the server refuses to start.
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
            OpenError::Corrupt { path, offset, why } => write!(
                f,
                "{} is corrupt at offset {offset} ({why}) and valid records follow; \
                 refusing to start. `sessiond repair --data-dir {}` truncates it at that \
                 offset (the records after it are lost)",
                path.display(),
                path.parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        }
    }
}

impl std::error::Error for OpenError {}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

/// The open journal, appending after its last valid record.
pub struct Journal {
    writer: JournalWriter<File>,
}

impl Journal {
    /// Buffers an event; durable after `commit`.
    pub fn append(&mut self, ev: &Event) -> io::Result<()> {
        let (kind, payload) = ev.encode();
        self.writer.append(kind, &payload).map(|_| ())
    }

    /// One write and one fdatasync for everything appended since the last commit.
    pub fn commit(&mut self) -> io::Result<()> {
        self.writer.commit()
    }

    pub fn size(&self) -> u64 {
        self.writer.size()
    }
}

/// Opens (or creates) `dir/journal` and replays it over `users`: returns the journal ready
/// for appends and the rebuilt state. A torn tail is truncated with a warning.
pub fn open_journal(dir: &Path, users: UserTable) -> Result<(Journal, State), OpenError> {
    let path = dir.join(JOURNAL_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let r = replay(&bytes, 1).map_err(|c| OpenError::Corrupt {
        path: path.clone(),
        offset: c.offset,
        why: c.why.into(),
    })?;
    let mut state = State {
        users,
        ..State::new()
    };
    for rec in &r.records {
        let ev = Event::decode(rec.kind, rec.payload).map_err(|_| OpenError::Corrupt {
            path: path.clone(),
            offset: rec.offset,
            why: format!("record of type {} does not parse", rec.kind),
        })?;
        state.apply(ev).map_err(|e| OpenError::Corrupt {
            path: path.clone(),
            offset: rec.offset,
            why: e.0,
        })?;
    }
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    if let Some(t) = r.torn {
        warn!(
            "{}: torn tail at offset {} ({}); truncating {} byte(s)",
            path.display(),
            t.offset,
            t.why,
            bytes.len() as u64 - r.valid_len
        );
        file.set_len(r.valid_len)?;
        file.sync_all()?;
    }
    info!(
        "journal {}: {} record(s), {} live session(s)",
        path.display(),
        r.records.len(),
        state.sessions.len()
    );
    let next_seq = r.records.len() as u64 + 1;
    Ok((
        Journal {
            writer: JournalWriter::new(file, next_seq, r.valid_len),
        },
        state,
    ))
}

/// `sessiond repair`: truncates the journal before its first damaged record. Returns
/// (bytes kept, bytes dropped).
pub fn repair_journal(dir: &Path) -> io::Result<(u64, u64)> {
    let path = dir.join(JOURNAL_FILE);
    let bytes = fs::read(&path)?;
    let keep = match replay(&bytes, 1) {
        Ok(r) => r.valid_len,
        Err(c) => c.offset,
    };
    let file = OpenOptions::new().write(true).open(&path)?;
    file.set_len(keep)?;
    file.sync_all()?;
    Ok((keep, bytes.len() as u64 - keep))
}
