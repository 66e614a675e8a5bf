//! `sessiond repair`: brings a damaged data directory back to a consistent state, and
//! says exactly what was kept and what was lost (`--check` says it without changing
//! anything).
//!
//! The state is rebuilt from the best source there is, in this order: the snapshot; else
//! `snapshot.prev` and the archived journal segments after it (the newest segment is the
//! journal the snapshot replaced, so this loses nothing); else the archived segments
//! alone when they start at the first record (the whole history); else the journal alone
//! when it does. Then the journal's records are applied up to its first damage, which is
//! cut off. A rebuilt snapshot is written in place of the damaged or missing one (the
//! damaged file is set aside, never deleted); a journal that cannot continue the rebuilt
//! state is set aside too. When no source can rebuild the state, nothing is changed and
//! the report says so.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::journal::{replay_any, Record, Replay};
use super::journal_file::{apply_records, load_snapshot, write_snapshot_file};
use super::layout::{
    self, archive_segments, context, exists, sync_dir, JOURNAL_FILE, SNAPSHOT_FILE,
    SNAPSHOT_PREV_FILE, SNAPSHOT_TMP,
};
use crate::engine::replay::State;

/// What a repair found and did (or, with `--check`, would do).
#[derive(Debug, Default)]
pub struct RepairReport {
    /// One line per finding and action, for the operator.
    pub lines: Vec<String>,
    /// Whether the directory was (or would be) changed.
    pub changed: bool,
    /// Whether acknowledged changes were (or would be) lost: bytes of the journal cut
    /// off, or a journal set aside.
    pub lost: bool,
    /// Whether a consistent state could be rebuilt at all (false: nothing was changed).
    pub recoverable: bool,
    /// Whole records with a bad checksum at the journal's end (truncated as a torn
    /// write at startup; counted here).
    pub damaged_tail_records: u64,
}

/// Repairs `dir` (or, with `check`, only reports). The data directory's lock must be held.
pub fn repair(dir: &Path, check: bool) -> io::Result<RepairReport> {
    let mut rep = RepairReport::default();
    let would = if check { "would " } else { "" };
    if !check {
        layout::clean_leftovers(dir)?;
    }
    let (mut state, base, from) = match rebuild_base(dir, &mut rep)? {
        Some(b) => b,
        None => {
            rep.lines.push(
                "no snapshot, previous snapshot or archived history can rebuild the state: \
                 nothing was changed; restore the data directory from a backup"
                    .into(),
            );
            return Ok(rep);
        }
    };
    rep.recoverable = true;
    let snapshot_rebuilt = from != "snapshot";
    // The snapshot holds the state as of `base`; the journal's records after it stay
    // where they are and are applied at startup.
    let snapshot_events = snapshot_rebuilt.then(|| state.snapshot_events());
    let mut last = base;
    let journal = dir.join(JOURNAL_FILE);
    let bytes = match fs::read(&journal) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(context("read", &journal)(e)),
    };
    let (r, damage) = valid_prefix(&bytes);
    if let Some(t) = r.torn.filter(|t| t.complete_seq.is_some()) {
        rep.damaged_tail_records = 1;
        rep.lines.push(format!(
            "{}: the last record (at offset {}) is whole but its checksum does not match",
            journal.display(),
            t.offset
        ));
    }
    let mut keep_len = r.valid_len;
    let first = r.records.first().map(|rec| rec.seq);
    let mut set_journal_aside = false;
    if first.is_some_and(|f| f > last + 1) {
        rep.lines.push(format!(
            "{}: starts at record {} but the rebuilt state ends at {last}: the records in \
             between are gone; the journal {would}be set aside",
            journal.display(),
            first.unwrap_or(0)
        ));
        set_journal_aside = true;
        rep.lost = true;
    } else {
        // Apply record by record: one that does not parse or apply is damage too.
        let mut applied = 0;
        for rec in r.records.iter() {
            if rec.seq <= last {
                continue;
            }
            let one: &[Record<'_>] = std::slice::from_ref(rec);
            if let Err(e) = apply_records(&journal, one, last, &mut state, &String::new) {
                rep.lines.push(format!("{e}"));
                keep_len = rec.offset;
                break;
            }
            last = rec.seq;
            applied += 1;
        }
        rep.lines.push(format!(
            "{}: {applied} record(s) after the {from} kept (up to record {last})",
            journal.display()
        ));
    }
    if let Some((offset, why)) = &damage {
        rep.lines.push(format!(
            "{}: damaged at offset {offset} ({why})",
            journal.display()
        ));
    }
    let dropped = bytes.len() as u64 - keep_len;
    if !set_journal_aside && dropped > 0 {
        let damaged = damage.is_some() || keep_len < r.valid_len;
        rep.lost |= damaged;
        rep.changed = true;
        let what = if damaged {
            "after the damage: the changes in them are lost"
        } else {
            "of a torn write at the end (never acknowledged)"
        };
        rep.lines.push(format!(
            "{}: {would}cut to {keep_len} byte(s), dropping {dropped} byte(s) {what}",
            journal.display()
        ));
    }
    if snapshot_rebuilt {
        rep.changed = true;
    }
    if set_journal_aside {
        rep.changed = true;
    }
    if check || !rep.changed {
        if !rep.changed {
            rep.lines.push("nothing to repair".into());
        }
        return Ok(rep);
    }
    // Carry it out: the snapshot first (the journal's records after `base` stay valid on
    // top of it), then the journal.
    if let Some(events) = snapshot_events {
        let snap = dir.join(SNAPSHOT_FILE);
        if exists(&snap)? {
            let aside = set_aside(&snap)?;
            rep.lines.push(format!(
                "damaged {} set aside as {}",
                snap.display(),
                aside.display()
            ));
        }
        let tmp = dir.join(SNAPSHOT_TMP);
        write_snapshot_file(&tmp, base, &events)?;
        fs::rename(&tmp, &snap).map_err(context("rename", &tmp))?;
        sync_dir(dir)?;
        rep.lines
            .push(format!("{} rebuilt up to record {base}", snap.display()));
    }
    if set_journal_aside {
        let aside = set_aside(&journal)?;
        rep.lines.push(format!(
            "{} set aside as {}",
            journal.display(),
            aside.display()
        ));
    } else if dropped > 0 {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&journal)
            .map_err(context("open", &journal))?;
        f.set_len(keep_len)
            .and_then(|()| f.sync_all())
            .map_err(context("truncate", &journal))?;
    }
    Ok(rep)
}

/// The journal's records up to its first damage, and the damage (offset, why) if any.
fn valid_prefix(bytes: &[u8]) -> (Replay<'_>, Option<(u64, String)>) {
    match replay_any(bytes) {
        Ok(r) => (r, None),
        Err(c) => {
            let cut = &bytes[..c.offset as usize];
            let r = replay_any(cut).unwrap_or(Replay {
                records: Vec::new(),
                valid_len: 0,
                torn: None,
            });
            (r, Some((c.offset, c.why.to_owned())))
        }
    }
}

/// The best base there is: (the state, the record it is as of, where it came from).
fn rebuild_base(dir: &Path, rep: &mut RepairReport) -> io::Result<Option<(State, u64, String)>> {
    let snap = dir.join(SNAPSHOT_FILE);
    if exists(&snap)? {
        let mut st = State::new();
        match load_snapshot(&snap, &mut st, &String::new) {
            Ok(base) => {
                rep.lines
                    .push(format!("{}: intact, up to record {base}", snap.display()));
                return Ok(Some((st, base, "snapshot".into())));
            }
            Err(e) => rep.lines.push(format!("{e}")),
        }
    } else {
        rep.lines.push(format!("{}: missing", snap.display()));
    }
    let segments = archive_segments(dir)?;
    let prev = dir.join(SNAPSHOT_PREV_FILE);
    if exists(&prev)? {
        let mut st = State::new();
        match load_snapshot(&prev, &mut st, &String::new) {
            Ok(base) => {
                let (last, used) = apply_segments(&segments, base, &mut st, rep)?;
                rep.lines.push(format!(
                    "{}: intact, up to record {base}; with {used} archived segment(s) the \
                     state is rebuilt up to record {last}",
                    prev.display()
                ));
                return Ok(Some((st, last, "previous snapshot and archive".into())));
            }
            Err(e) => rep.lines.push(format!("{e}")),
        }
    }
    if let Some((_, first)) = segments.first() {
        let starts_at_one = fs::read(first).ok().and_then(|b| {
            replay_any(&b)
                .ok()
                .and_then(|r| r.records.first().map(|r| r.seq))
        }) == Some(1);
        if starts_at_one {
            let mut st = State::new();
            let (last, used) = apply_segments(&segments, 0, &mut st, rep)?;
            rep.lines.push(format!(
                "the archive holds the whole history: {used} segment(s), up to record {last}"
            ));
            return Ok(Some((st, last, "archive".into())));
        }
        rep.lines.push(format!(
            "{}/: does not start at the first record (older segments expired): it cannot \
             rebuild the state alone",
            dir.join(layout::ARCHIVE_DIR).display()
        ));
    }
    let journal = dir.join(JOURNAL_FILE);
    let starts_at_one = fs::read(&journal)
        .ok()
        .and_then(|b| valid_prefix(&b).0.records.first().map(|r| r.seq))
        == Some(1);
    if starts_at_one && segments.is_empty() {
        return Ok(Some((State::new(), 0, "first record".into())));
    }
    Ok(None)
}

/// Applies the archived segments that continue `base`, in order; stops at a gap or at
/// damage. Returns the last record applied and how many segments were used.
fn apply_segments(
    segments: &[(u64, PathBuf)],
    base: u64,
    st: &mut State,
    rep: &mut RepairReport,
) -> io::Result<(u64, usize)> {
    let mut last = base;
    let mut used = 0;
    for (end, path) in segments {
        if *end <= last {
            continue;
        }
        let bytes = fs::read(path).map_err(context("read", path))?;
        let (r, damage) = valid_prefix(&bytes);
        let first = r.records.first().map(|x| x.seq).unwrap_or(u64::MAX);
        if first > last + 1 {
            rep.lines.push(format!(
                "{}: starts at record {first}, after a gap from {last}: not used",
                path.display()
            ));
            break;
        }
        if let Err(e) = apply_records(path, &r.records, last, st, &String::new) {
            rep.lines.push(format!("{e}: not used"));
            break;
        }
        last = r.records.last().map_or(last, |x| x.seq.max(last));
        used += 1;
        if let Some((offset, why)) = damage {
            rep.lines.push(format!(
                "{}: damaged at offset {offset} ({why}); used up to record {last}",
                path.display()
            ));
            break;
        }
    }
    Ok((last, used))
}

/// Renames `path` to `path.damaged-<unix ms>` and returns the new name.
fn set_aside(path: &Path) -> io::Result<PathBuf> {
    #[allow(clippy::disallowed_methods)] // a name for the operator, not a decision
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".damaged-{ms}"));
    let aside = PathBuf::from(name);
    fs::rename(path, &aside).map_err(context("rename", path))?;
    Ok(aside)
}
