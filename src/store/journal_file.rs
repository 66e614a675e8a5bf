//! The journal in the data directory: opening it (snapshot and journal replayed,
//! torn-tail truncation, refusal on damage or on state gone missing), appending events
//! with group commit, and compacting it into a snapshot.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use log::{error, info, warn};

use super::journal::{is_out_of_space, replay, replay_any, JournalWriter, Record};
use super::layout::{
    self, archive_segments, context, exists, sync_dir, ARCHIVE_DIR, IDENTITY_FILE, JOURNAL_FILE,
    JOURNAL_NEXT, SNAPSHOT_FILE, SNAPSHOT_PREV_FILE, SNAPSHOT_PREV_TMP, SNAPSHOT_TMP,
};
use super::{record, StoreError};
use crate::engine::event::Event;
use crate::engine::replay::State;
use crate::session::UserTable;

/// Why the journal could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Reading, creating or truncating a file of the data directory failed (the error
    /// names the operation and the file).
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
        /// What the operator can do about it.
        advice: String,
    },
    /// The directory holds state (its `IDENTITY`, archived journals or a previous
    /// snapshot say so) but the snapshot that state lives in is gone: starting would look
    /// like a new install and lose every account.
    Missing {
        /// The directory.
        dir: PathBuf,
        /// What is missing and what is there.
        why: String,
        /// What the operator can do about it.
        advice: String,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
            OpenError::Corrupt {
                path,
                offset,
                why,
                advice,
            } => write!(
                f,
                "{} is corrupt at offset {offset} ({why}); refusing to start. {advice}",
                path.display()
            ),
            OpenError::Missing { dir, why, advice } => write!(
                f,
                "{}: {why}; refusing to start rather than begin again empty. {advice}",
                dir.display()
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
    /// (by modification time) are deleted, each time a snapshot is written; the newest
    /// segment is always kept (`layout`).
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

/// The open journal, appending after its last valid record.
pub struct Journal {
    dir: PathBuf,
    opts: JournalOptions,
    writer: JournalWriter<File>,
    /// A new directory: `IDENTITY` is written with the first durable record.
    identity_pending: bool,
    /// Whole records with a bad checksum found at the journal's end when it was opened.
    damaged_tail: u64,
}

impl Journal {
    /// Buffers an event; durable after `commit`.
    pub fn append(&mut self, ev: &Event) -> io::Result<()> {
        let (kind, payload) = record::encode(ev);
        self.writer
            .append(kind, &payload)
            .map(|_| ())
            .map_err(context("append to", &self.dir.join(JOURNAL_FILE)))
    }

    /// One write and one fdatasync for everything appended since the last commit. A full
    /// disk is retryable (nothing of the group was made durable, and it stays buffered);
    /// anything else is fatal.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        let path = self.dir.join(JOURNAL_FILE);
        if let Err(e) = self.writer.commit() {
            let retry = !self.writer.failed() && is_out_of_space(&e);
            let e = context("journal", &path)(e);
            return Err(if retry {
                StoreError::retry(e)
            } else {
                StoreError::fatal(e)
            });
        }
        if self.identity_pending && self.writer.size() > 0 {
            layout::write_identity(&self.dir, unix_ms()).map_err(StoreError::fatal)?;
            self.identity_pending = false;
        }
        Ok(())
    }

    /// Bytes of the journal file durable so far (since the last snapshot).
    pub fn size(&self) -> u64 {
        self.writer.size()
    }

    /// Bytes appended and waiting for a commit.
    pub fn pending_bytes(&self) -> usize {
        self.writer.pending_bytes()
    }

    /// Whole records with a bad checksum that opening found at the journal's end (and
    /// truncated).
    pub fn damaged_tail_records(&self) -> u64 {
        self.damaged_tail
    }

    /// Whether the journal has grown past the snapshot threshold.
    pub fn needs_snapshot(&self) -> bool {
        self.writer.size() > self.opts.snapshot_bytes
    }

    /// Compacts: writes `events` (the whole durable state, as of the last committed
    /// record) as the new snapshot, then starts an empty journal; the old journal moves to
    /// `archive/` (it holds the audit history), the old snapshot becomes `snapshot.prev`,
    /// and archives past the retention go.
    ///
    /// Crash-safe at every step, and a failure before the new journal is in place is
    /// retryable: the journal goes on being appended to as before. The steps: the new
    /// snapshot to `snapshot.tmp`, synced; an empty `journal.next`, synced; the current
    /// snapshot linked as `snapshot.prev`; `snapshot.tmp` renamed over `snapshot` (from
    /// here startup loads it and skips the journal records it already holds); `journal`
    /// to the archive; `journal.next` to `journal`; the directories synced.
    pub fn write_snapshot(&mut self, events: &[Event]) -> Result<(), StoreError> {
        self.commit()?;
        let base_seq = self.writer.next_seq() - 1;
        let dir = self.dir.clone();
        let tmp = dir.join(SNAPSHOT_TMP);
        let next = dir.join(JOURNAL_NEXT);
        let cleanup = || {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(&next);
            let _ = fs::remove_file(dir.join(SNAPSHOT_PREV_TMP));
        };
        let prepared = (|| -> io::Result<File> {
            write_snapshot_file(&tmp, base_seq, events)?;
            let file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&next)
                .map_err(context("create", &next))?;
            file.sync_all().map_err(context("sync", &next))?;
            let snap = dir.join(SNAPSHOT_FILE);
            if exists(&snap)? {
                let prev_tmp = dir.join(SNAPSHOT_PREV_TMP);
                fs::hard_link(&snap, &prev_tmp).map_err(context("link", &prev_tmp))?;
                let prev = dir.join(SNAPSHOT_PREV_FILE);
                fs::rename(&prev_tmp, &prev).map_err(context("rename", &prev_tmp))?;
            }
            fs::rename(&tmp, &snap).map_err(context("rename", &tmp))?;
            sync_dir(&dir)?;
            Ok(file)
        })();
        let file = match prepared {
            Ok(f) => f,
            Err(e) => {
                cleanup();
                // The journal is untouched; the snapshot is tried again later.
                return Err(StoreError::retry(e));
            }
        };
        // The new snapshot is in place. Replace the journal; until then the old one goes
        // on (its records up to `base_seq` are skipped at startup).
        let archive = dir.join(ARCHIVE_DIR);
        let journal = dir.join(JOURNAL_FILE);
        let archived = archive.join(format!("journal-{base_seq:020}"));
        let moved = fs::create_dir_all(&archive)
            .map_err(context("create", &archive))
            .and_then(|()| fs::rename(&journal, &archived).map_err(context("rename", &journal)));
        if let Err(e) = moved {
            cleanup();
            return Err(StoreError::retry(e));
        }
        if let Err(e) = fs::rename(&next, &journal).map_err(context("rename", &next)) {
            // Put the old journal back, or nothing after this may be acknowledged: the
            // writer would append to a file startup no longer reads.
            return match fs::rename(&archived, &journal) {
                Ok(()) => {
                    cleanup();
                    Err(StoreError::retry(e))
                }
                Err(back) => Err(StoreError::fatal(io::Error::new(
                    back.kind(),
                    format!("{e}; and moving {} back failed: {back}", archived.display()),
                ))),
            };
        }
        sync_dir(&dir)
            .and_then(|()| sync_dir(&archive))
            .map_err(StoreError::fatal)?;
        self.writer = JournalWriter::new(file, base_seq + 1, 0);
        info!(
            "snapshot written: {} record(s) up to journal record {base_seq}",
            events.len()
        );
        self.expire_archives();
        Ok(())
    }

    /// Removes archived segments past the retention, never the newest (with
    /// `snapshot.prev` it rebuilds a damaged snapshot).
    fn expire_archives(&self) {
        let Ok(mut segments) = archive_segments(&self.dir) else {
            return;
        };
        segments.pop();
        for (_, path) in segments {
            let old = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > self.opts.audit_retention);
            if old {
                match fs::remove_file(&path) {
                    Ok(()) => info!("audit archive {} past retention, removed", path.display()),
                    Err(err) => warn!("cannot remove {}: {err}", path.display()),
                }
            }
        }
    }
}

#[allow(clippy::disallowed_methods)] // the store stamps the directory's creation
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes a snapshot file (its base record, then `events`) and syncs it.
pub(super) fn write_snapshot_file(path: &Path, base_seq: u64, events: &[Event]) -> io::Result<()> {
    let file = File::create(path).map_err(context("create", path))?;
    let mut w = JournalWriter::new(file, 1, 0);
    let (k, p) = record::encode(&Event::SnapshotBase { base_seq });
    w.append(k, &p).map_err(context("write", path))?;
    for ev in events {
        let (k, p) = record::encode(ev);
        w.append(k, &p).map_err(context("write", path))?;
    }
    w.commit().map_err(context("write", path))
}

fn corrupt(path: &Path, offset: u64, why: impl Into<String>, advice: String) -> OpenError {
    OpenError::Corrupt {
        path: path.to_path_buf(),
        offset,
        why: why.into(),
        advice,
    }
}

/// What `sessiond repair` can do about damage in the journal at a record boundary.
fn journal_advice(dir: &Path) -> String {
    format!(
        "`sessiond repair --data-dir {}` keeps everything before the damage and says what \
         is lost (`--check` first reports without changing anything)",
        dir.display()
    )
}

/// What `sessiond repair` can do about a damaged or missing snapshot.
fn snapshot_advice(dir: &Path) -> String {
    let prev = dir.join(SNAPSHOT_PREV_FILE).exists();
    let segments = archive_segments(dir).map(|s| s.len()).unwrap_or(0);
    let from = match (prev, segments) {
        (true, _) => format!("from {SNAPSHOT_PREV_FILE} and {ARCHIVE_DIR}/"),
        (false, n) if n > 0 => format!("from {ARCHIVE_DIR}/ if it holds the whole history"),
        _ => "from nothing here: restore the snapshot from a backup".to_owned(),
    };
    format!(
        "`sessiond repair --check --data-dir {}` says what can be rebuilt ({from})",
        dir.display()
    )
}

/// Folds the records of one file into `state`, skipping those at or below `skip_upto`.
pub(super) fn apply_records(
    path: &Path,
    records: &[Record<'_>],
    skip_upto: u64,
    state: &mut State,
    advice: &dyn Fn() -> String,
) -> Result<(), OpenError> {
    for rec in records.iter().filter(|r| r.seq > skip_upto) {
        let ev = record::decode(rec.kind, rec.payload).map_err(|_| {
            let why = format!("record {} of type {} does not parse", rec.seq, rec.kind);
            corrupt(path, rec.offset, why, advice())
        })?;
        state
            .apply(ev)
            .map_err(|e| corrupt(path, rec.offset, e.0, advice()))?;
    }
    Ok(())
}

/// A snapshot file read back: its base and the state it holds (folded into `state`).
pub(super) fn load_snapshot(
    path: &Path,
    state: &mut State,
    advice: &dyn Fn() -> String,
) -> Result<u64, OpenError> {
    let bytes = fs::read(path).map_err(context("read", path))?;
    // Synced before it was renamed into place: any damage is real corruption.
    let r = replay(&bytes, 1).map_err(|c| corrupt(path, c.offset, c.why, advice()))?;
    if let Some(t) = r.torn {
        return Err(corrupt(path, t.offset, t.why, advice()));
    }
    let first = r
        .records
        .first()
        .map(|rec| record::decode(rec.kind, rec.payload));
    let Some(Ok(Event::SnapshotBase { base_seq })) = first else {
        return Err(corrupt(
            path,
            0,
            "snapshot does not start with its base",
            advice(),
        ));
    };
    apply_records(path, &r.records[1..], 0, state, advice)?;
    Ok(base_seq)
}

/// Opens (or creates) the journal in `dir`: loads the snapshot if there is one, replays
/// the journal records after it over `users`, truncates a torn tail, and returns the
/// journal ready for appends with the rebuilt state.
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
    layout::clean_leftovers(dir)?;
    let identity = exists(&dir.join(IDENTITY_FILE))?;
    let snap_path = dir.join(SNAPSHOT_FILE);
    let has_snapshot = exists(&snap_path)?;
    let base = if has_snapshot {
        load_snapshot(&snap_path, &mut state, &|| snapshot_advice(dir))?
    } else {
        0
    };
    let path = dir.join(JOURNAL_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(context("read", &path)(e).into()),
    };
    if bytes.len() > PROGRESS_AT {
        info!("replaying {} ({} MiB)", path.display(), bytes.len() >> 20);
    }
    let r = replay_any(&bytes).map_err(|c| corrupt(&path, c.offset, c.why, journal_advice(dir)))?;
    if !has_snapshot {
        refuse_if_state_is_missing(dir, identity, r.records.first().map(|r| r.seq))?;
    }
    if let Some(first) = r.records.first() {
        // The journal continues the snapshot: no record may be missing in between.
        if first.seq > base + 1 {
            let why = format!(
                "journal starts at record {} but the snapshot ends at {base}",
                first.seq
            );
            return Err(corrupt(&path, first.offset, why, snapshot_advice(dir)));
        }
    }
    apply_records(&path, &r.records, base, &mut state, &|| journal_advice(dir))?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(context("open", &path))?;
    let mut damaged_tail = 0;
    if let Some(t) = r.torn {
        let dropped = bytes.len() as u64 - r.valid_len;
        match t.complete_seq {
            Some(seq) => {
                damaged_tail = 1;
                error!(
                    "{}: the last record (number {seq}, at offset {}) is whole but its \
                     checksum does not match: damaged after it was written, or a write \
                     torn inside it. Truncating {dropped} byte(s); if that record was \
                     acknowledged, its change is lost",
                    path.display(),
                    t.offset
                );
            }
            None => warn!(
                "{}: torn tail at offset {} ({}); truncating {dropped} byte(s)",
                path.display(),
                t.offset,
                t.why
            ),
        }
        file.set_len(r.valid_len)
            .and_then(|()| file.sync_all())
            .map_err(context("truncate", &path))?;
    }
    let holds_state = has_snapshot || !r.records.is_empty();
    if holds_state && !identity {
        // A directory from before IDENTITY existed: it holds state, so it says so now.
        layout::write_identity(dir, unix_ms())?;
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
            identity_pending: !holds_state,
            damaged_tail,
        },
        state,
    ))
}

/// Journal files larger than this get a progress line when opened.
const PROGRESS_AT: usize = 64 << 20;

/// Without a snapshot, the journal must hold the whole history (start at record 1). A
/// directory that held state before (its `IDENTITY`, a previous snapshot, archived
/// journals) and has neither is refused.
fn refuse_if_state_is_missing(
    dir: &Path,
    identity: bool,
    first_seq: Option<u64>,
) -> Result<(), OpenError> {
    let prev = exists(&dir.join(SNAPSHOT_PREV_FILE))?;
    let segments = archive_segments(dir)?.len();
    if first_seq == Some(1) && !prev && segments == 0 {
        return Ok(()); // never compacted: the journal is the whole history
    }
    let mut there = Vec::new();
    if identity {
        there.push(IDENTITY_FILE.to_owned());
    }
    if prev {
        there.push(SNAPSHOT_PREV_FILE.to_owned());
    }
    if segments > 0 {
        there.push(format!("{segments} archived journal(s)"));
    }
    if there.is_empty() && first_seq.is_none() {
        return Ok(()); // a new directory
    }
    let journal = match first_seq {
        None => "an empty journal".to_owned(),
        Some(s) => format!("a journal starting at record {s}"),
    };
    Err(OpenError::Missing {
        dir: dir.to_path_buf(),
        why: format!(
            "{SNAPSHOT_FILE} is missing: the directory holds {} and {journal}, so its \
             state was in a snapshot",
            there.join(", ")
        ),
        advice: snapshot_advice(dir),
    })
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
        assert_eq!(st.ended[&Digest([7; 32])].kind, EndKind::Revoked);
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

    #[test]
    fn a_snapshot_that_cannot_be_written_is_retryable_and_the_journal_goes_on() {
        let d = dir("snapfail");
        let (mut j, _) = open_journal(&d, UserTable::new()).unwrap();
        append_all(&mut j, &[Event::UserCreated(alice())]);
        // the temporary file's place is taken: creating it fails (as on EMFILE)
        fs::create_dir_all(d.join(SNAPSHOT_TMP)).unwrap();
        let e = j
            .write_snapshot(&[Event::UserCreated(alice())])
            .unwrap_err();
        assert!(e.retryable, "{e}");
        fs::remove_dir_all(d.join(SNAPSHOT_TMP)).unwrap();
        append_all(&mut j, &[Event::SessionCreated(session(5))]);
        drop(j);
        let (mut j, st) = open_journal(&d, UserTable::new()).unwrap();
        assert!(st.sessions.contains_key(&5) && st.users.len() == 1);
        // and the next try works, keeping the snapshot before it as snapshot.prev
        j.write_snapshot(&[
            Event::UserCreated(alice()),
            Event::SessionCreated(session(5)),
        ])
        .unwrap();
        append_all(&mut j, &[Event::SessionCreated(session(6))]);
        j.write_snapshot(&[Event::UserCreated(alice())]).unwrap();
        assert!(d.join(SNAPSHOT_PREV_FILE).exists());
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn identity_comes_with_the_first_durable_record_not_before() {
        let d = dir("ident");
        let (mut j, _) = open_journal(&d, UserTable::new()).unwrap();
        assert!(
            !d.join(IDENTITY_FILE).exists(),
            "a start that commits nothing"
        );
        drop(j);
        // so a failed first start (nothing committed) is still a new directory
        let (j2, _) = open_journal(&d, UserTable::new()).unwrap();
        j = j2;
        append_all(&mut j, &[Event::UserCreated(alice())]);
        assert!(d.join(IDENTITY_FILE).exists());
        drop(j);
        // now an emptied journal is state gone missing, not a new install
        fs::write(d.join(JOURNAL_FILE), b"").unwrap();
        match open_journal(&d, UserTable::new()) {
            Err(OpenError::Missing { why, .. }) => assert!(why.contains("missing"), "{why}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        let _ = fs::remove_dir_all(&d);
    }
}
