//! The whole audit trail as the data directory holds it: the archived journal segments
//! (oldest first, `archive/journal-<seq>`, zero-padded so names sort by sequence) and then
//! the live journal (and the snapshot, for the names of accounts). Read-only; used by
//! `sessiond audit`, which may run beside a live server (a record being written is a torn
//! tail and simply not shown yet).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hashbrown::HashMap;

use super::journal::replay_any;
use super::record;
use super::{ARCHIVE_DIR, JOURNAL_FILE, SNAPSHOT_FILE};
use crate::engine::event::{Audit, Event};

/// The audit records of a data directory, and the names of the accounts they mention.
#[derive(Debug, Default)]
pub struct AuditTrail {
    /// Oldest first.
    pub records: Vec<Audit>,
    /// Account id to username, from every account record seen (snapshot included).
    pub usernames: HashMap<u64, String>,
}

/// Every audit record in `dir`, oldest first.
pub fn read_audit_trail(dir: &Path) -> io::Result<AuditTrail> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir.join(ARCHIVE_DIR)) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("journal-"))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    files.sort();
    let journal = dir.join(JOURNAL_FILE);
    if !journal.exists() && files.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no journal in {}", dir.display()),
        ));
    }
    files.insert(0, dir.join(SNAPSHOT_FILE));
    files.push(journal);
    let mut out = AuditTrail::default();
    for path in files {
        let buf = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let replay = replay_any(&buf).map_err(|c| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {c}", path.display()),
            )
        })?;
        for r in replay.records {
            match record::decode(r.kind, r.payload) {
                Ok(Event::Audit(a)) => out.records.push(a),
                Ok(Event::UserCreated(u) | Event::UserUpdated(u)) => {
                    out.usernames.insert(u.id, u.username);
                }
                _ => {}
            }
        }
    }
    Ok(out)
}
