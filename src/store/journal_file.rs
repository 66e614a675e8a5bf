//! The journal in the data directory: opening it (replay, torn-tail truncation, refusal on
//! corruption), appending events with group commit, and `sessiond repair`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use log::{info, warn};

use super::journal::{replay, replay_any, JournalWriter};
use super::record;
use crate::engine::event::Event;
use crate::engine::replay::State;
use crate::session::UserTable;

/// The journal's file name in the data directory.
pub const JOURNAL_FILE: &str = "journal";

/// Why the journal could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Reading, creating or truncating a file of the data directory failed.
    Io(io::Error),
    /// Damage that is not a torn tail of the journal (damage before its end, any damage in
    /// the snapshot, a record that does not parse or apply, records missing between the
    /// snapshot and the journal): the server refuses to start.
    Corrupt {
        /// The damaged file (the journal or the snapshot).
        path: PathBuf,
        /// Byte offset of the damaged record in that file.
        offset: u64,
        /// What is wrong.
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

/// Snapshot and archive settings.
#[derive(Debug, Clone, Copy)]
pub struct JournalOptions {
    /// Past this many bytes the journal is compacted into a snapshot.
    pub snapshot_bytes: u64,
    /// Archived journal segments (the audit history before a snapshot) older than this
    /// (by modification time) are deleted, each time a snapshot is written.
    pub audit_retention: std::time::Duration,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            snapshot_bytes: 64 << 20,
            audit_retention: std::time::Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// The snapshot's file name in the data directory: the whole state as of a journal
/// record, in the journal's record format.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// The directory, in the data directory, of the journals a snapshot replaced
/// (`journal-<seq>`, kept for their audit records).
pub const ARCHIVE_DIR: &str = "archive";

/// The open journal, appending after its last valid record.
pub struct Journal {
    dir: PathBuf,
    opts: JournalOptions,
    writer: JournalWriter<File>,
}

impl Journal {
    /// Buffers an event; durable after `commit`.
    pub fn append(&mut self, ev: &Event) -> io::Result<()> {
        let (kind, payload) = record::encode(ev);
        self.writer.append(kind, &payload).map(|_| ())
    }

    /// One write and one fdatasync for everything appended since the last commit.
    pub fn commit(&mut self) -> io::Result<()> {
        self.writer.commit()
    }

    /// Bytes of the journal file durable so far (since the last snapshot); the same as
    /// [`size_bytes`](Self::size_bytes).
    pub fn size(&self) -> u64 {
        self.writer.size()
    }

    /// The journal file's size (since the last snapshot).
    pub fn size_bytes(&self) -> u64 {
        self.writer.size()
    }

    /// Whether the journal has grown past the snapshot threshold.
    pub fn needs_snapshot(&self) -> bool {
        self.writer.size() > self.opts.snapshot_bytes
    }

    /// Compacts: writes `events` (the whole durable state, as of the last committed
    /// record) as the new snapshot, then starts an empty journal; the old journal moves to
    /// `archive/` (it holds the audit history), and archives past the retention go.
    ///
    /// Crash-safe at every step: the snapshot is written to a temporary file, synced,
    /// renamed and the directory synced; until the journal is replaced, startup loads the
    /// new snapshot and skips the journal records it already holds (by sequence number).
    pub fn write_snapshot(&mut self, events: &[Event]) -> io::Result<()> {
        self.writer.commit()?;
        let base_seq = self.writer.next_seq() - 1;
        let tmp = self.dir.join(format!("{SNAPSHOT_FILE}.tmp"));
        {
            let file = File::create(&tmp)?;
            let mut w = JournalWriter::new(file, 1, 0);
            let (k, p) = record::encode(&Event::SnapshotBase { base_seq });
            w.append(k, &p)?;
            for ev in events {
                let (k, p) = record::encode(ev);
                w.append(k, &p)?;
            }
            w.commit()?;
        }
        fs::rename(&tmp, self.dir.join(SNAPSHOT_FILE))?;
        sync_dir(&self.dir)?;
        // The old journal is now redundant for state; keep it for its audit records.
        let archive = self.dir.join(ARCHIVE_DIR);
        fs::create_dir_all(&archive)?;
        let journal = self.dir.join(JOURNAL_FILE);
        fs::rename(&journal, archive.join(format!("journal-{base_seq:020}")))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        sync_dir(&archive)?;
        self.writer = JournalWriter::new(file, base_seq + 1, 0);
        info!(
            "snapshot written: {} record(s) up to journal record {base_seq}",
            events.len()
        );
        self.expire_archives();
        Ok(())
    }

    fn expire_archives(&self) {
        let Ok(entries) = fs::read_dir(self.dir.join(ARCHIVE_DIR)) else {
            return;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > self.opts.audit_retention);
            if old {
                match fs::remove_file(e.path()) {
                    Ok(()) => info!(
                        "audit archive {} past retention, removed",
                        e.path().display()
                    ),
                    Err(err) => warn!("cannot remove {}: {err}", e.path().display()),
                }
            }
        }
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn corrupt(path: &Path, offset: u64, why: impl Into<String>) -> OpenError {
    OpenError::Corrupt {
        path: path.to_path_buf(),
        offset,
        why: why.into(),
    }
}

/// Folds the records of one file into `state`, skipping those at or below `skip_upto`.
fn apply_records(
    path: &Path,
    records: &[super::journal::Record<'_>],
    skip_upto: u64,
    state: &mut State,
) -> Result<(), OpenError> {
    for rec in records.iter().filter(|r| r.seq > skip_upto) {
        let ev = record::decode(rec.kind, rec.payload).map_err(|_| {
            corrupt(
                path,
                rec.offset,
                format!("record of type {} does not parse", rec.kind),
            )
        })?;
        state
            .apply(ev)
            .map_err(|e| corrupt(path, rec.offset, e.0))?;
    }
    Ok(())
}

/// Opens (or creates) the journal in `dir`: loads the snapshot if there is one, replays
/// the journal records after it over `users`, truncates a torn tail with a warning, and
/// returns the journal ready for appends with the rebuilt state.
pub fn open_journal(dir: &Path, users: UserTable) -> Result<(Journal, State), OpenError> {
    open_journal_with(dir, users, JournalOptions::default())
}

/// Like [`open_journal`], with `opts` for snapshots and archives.
pub fn open_journal_with(
    dir: &Path,
    users: UserTable,
    opts: JournalOptions,
) -> Result<(Journal, State), OpenError> {
    let mut state = State {
        users,
        ..State::new()
    };
    // A snapshot that never got renamed into place is garbage.
    let _ = fs::remove_file(dir.join(format!("{SNAPSHOT_FILE}.tmp")));
    let snap_path = dir.join(SNAPSHOT_FILE);
    let mut base = 0;
    match fs::read(&snap_path) {
        Ok(bytes) => {
            // Synced before it was renamed into place: any damage is real corruption.
            let r = replay(&bytes, 1).map_err(|c| corrupt(&snap_path, c.offset, c.why))?;
            if let Some(t) = r.torn {
                return Err(corrupt(&snap_path, t.offset, t.why));
            }
            let first = r
                .records
                .first()
                .map(|rec| record::decode(rec.kind, rec.payload));
            let Some(Ok(Event::SnapshotBase { base_seq })) = first else {
                return Err(corrupt(
                    &snap_path,
                    0,
                    "snapshot does not start with its base",
                ));
            };
            base = base_seq;
            apply_records(&snap_path, &r.records[1..], 0, &mut state)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let path = dir.join(JOURNAL_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let r = replay_any(&bytes).map_err(|c| corrupt(&path, c.offset, c.why))?;
    if let Some(first) = r.records.first() {
        // The journal continues the snapshot: no record may be missing in between.
        if first.seq > base + 1 {
            return Err(corrupt(
                &path,
                first.offset,
                format!(
                    "journal starts at record {} but the snapshot ends at {base}",
                    first.seq
                ),
            ));
        }
    }
    apply_records(&path, &r.records, base, &mut state)?;
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
        "journal {}: snapshot up to record {base}, {} journal record(s), {} live session(s)",
        path.display(),
        r.records.len(),
        state.sessions.len()
    );
    let next_seq = r
        .records
        .last()
        .map(|rec| rec.seq + 1)
        .unwrap_or(base + 1)
        .max(base + 1);
    Ok((
        Journal {
            dir: dir.to_path_buf(),
            opts,
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
    let keep = match replay_any(&bytes) {
        Ok(r) => r.valid_len,
        Err(c) => c.offset,
    };
    let file = OpenOptions::new().write(true).open(&path)?;
    file.set_len(keep)?;
    file.sync_all()?;
    Ok((keep, bytes.len() as u64 - keep))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PasswordRecord;
    use crate::engine::event::{EndKind, StoredSession};
    use crate::protocol::Role;
    use crate::session::{Digest, User};

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sessiond-jf-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn alice() -> User {
        User {
            id: 1,
            username: "alice".into(),
            password: PasswordRecord::create(b"pw", 1).unwrap(),
            role: Role::User,
            email: String::new(),
            created_ms: 1,
            last_login_ms: 0,
            suspended: false,
        }
    }

    fn session(id: u64) -> StoredSession {
        StoredSession {
            id,
            user_id: 1,
            digest: Digest([id as u8; 32]),
            client: String::new(),
            platform: String::new(),
            peer: "127.0.0.1:1".into(),
            created_ms: 10,
            last_activity_ms: 10,
            expires_ms: 1_000_000,
        }
    }

    fn append_all(j: &mut Journal, evs: &[Event]) {
        for e in evs {
            j.append(e).unwrap();
        }
        j.commit().unwrap();
    }

    #[test]
    fn snapshot_then_journal_rebuilds_the_same_state() {
        let d = dir("snap");
        let (mut j, _) = open_journal(&d, UserTable::new()).unwrap();
        append_all(
            &mut j,
            &[
                Event::UserCreated(alice()),
                Event::SessionCreated(session(7)),
                Event::SessionCreated(session(8)),
                Event::SessionEnded {
                    id: 7,
                    kind: EndKind::Revoked,
                    at_ms: 20,
                },
            ],
        );
        let old_journal = fs::read(d.join(JOURNAL_FILE)).unwrap();
        j.write_snapshot(&[
            Event::UserCreated(alice()),
            Event::SessionCreated(session(8)),
            Event::Tombstone {
                id: 7,
                digest: Digest([7; 32]),
                kind: EndKind::Revoked,
                keep_until_ms: 5_000,
            },
        ])
        .unwrap();
        assert_eq!(j.size(), 0);
        append_all(&mut j, &[Event::SessionCreated(session(9))]);
        drop(j);
        let (_, st) = open_journal(&d, UserTable::new()).unwrap();
        assert_eq!(st.users.len(), 1);
        let mut ids: Vec<u64> = st.sessions.keys().copied().collect();
        ids.sort();
        assert_eq!(ids, [8, 9]);
        assert_eq!(st.ended[&7].kind, EndKind::Revoked);
        assert_eq!(fs::read_dir(d.join(ARCHIVE_DIR)).unwrap().count(), 1);

        // a crash after the snapshot's rename but before the journal moved: the old
        // journal is back in place; its records are already in the snapshot and skipped
        fs::write(d.join(JOURNAL_FILE), &old_journal).unwrap();
        let (mut j, st) = open_journal(&d, UserTable::new()).unwrap();
        let mut ids: Vec<u64> = st.sessions.keys().copied().collect();
        ids.sort();
        assert_eq!(ids, [8]);
        // and appending continues after the last record
        append_all(&mut j, &[Event::SessionCreated(session(10))]);
        drop(j);
        let (_, st) = open_journal(&d, UserTable::new()).unwrap();
        assert!(st.sessions.contains_key(&10));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_gap_between_snapshot_and_journal_is_refused() {
        let d = dir("gap");
        let (mut j, _) = open_journal(&d, UserTable::new()).unwrap();
        append_all(&mut j, &[Event::UserCreated(alice())]);
        j.write_snapshot(&[Event::UserCreated(alice())]).unwrap();
        drop(j);
        // a journal whose first record is far past the snapshot's base
        let mut w = JournalWriter::new(super::super::journal::MemFile::new(), 50, 0);
        let (k, p) = record::encode(&Event::SessionCreated(session(3)));
        w.append(k, &p).unwrap();
        w.commit().unwrap();
        fs::write(d.join(JOURNAL_FILE), w.file().bytes()).unwrap();
        match open_journal(&d, UserTable::new()) {
            Err(OpenError::Corrupt { why, .. }) => {
                assert!(why.contains("starts at record 50"), "{why}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let _ = fs::remove_dir_all(&d);
    }
}
