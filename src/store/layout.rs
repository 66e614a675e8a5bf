//! The data directory's layout: its files' names, the identity that says a directory is
//! not new, the archive of old journal segments, and the leftovers a crash can leave
//! between the steps of a snapshot.
//!
//! ```text
//! DIR/IDENTITY        written with the first durable record: this directory holds state
//! DIR/LOCK            one server per directory (`lock`)
//! DIR/snapshot        the whole state as of journal record B (its first record says B)
//! DIR/snapshot.prev   the snapshot before it, as of B' (kept until the next is in place)
//! DIR/journal         the records after the snapshot (B+1 ...)
//! DIR/archive/journal-<B>   the journal the snapshot at B replaced: records B'+1 ..= B
//! ```
//!
//! With `snapshot.prev`, `archive/journal-<B>` and `journal`, a damaged `snapshot` can be
//! rebuilt without loss (`sessiond repair`), which is why the newest archive segment is
//! never expired.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The journal's file name in the data directory.
pub const JOURNAL_FILE: &str = "journal";
/// The snapshot's file name in the data directory: the whole state as of a journal
/// record, in the journal's record format.
pub const SNAPSHOT_FILE: &str = "snapshot";
/// The previous snapshot, kept until the next one is durable and in place.
pub const SNAPSHOT_PREV_FILE: &str = "snapshot.prev";
/// The directory, in the data directory, of the journals a snapshot replaced
/// (`journal-<seq>`, kept for their audit records).
pub const ARCHIVE_DIR: &str = "archive";
/// The file that marks a data directory as holding state (written with its first
/// durable record).
pub const IDENTITY_FILE: &str = "IDENTITY";

/// A snapshot being written (removed at startup if a crash left it).
pub(super) const SNAPSHOT_TMP: &str = "snapshot.tmp";
/// `snapshot.prev` being replaced.
pub(super) const SNAPSHOT_PREV_TMP: &str = "snapshot.prev.tmp";
/// The next journal, created before the current one is archived.
pub(super) const JOURNAL_NEXT: &str = "journal.next";

/// Wraps an I/O error with the operation and the file it was about, keeping its kind (a
/// full disk stays `StorageFull`): "append to /data/journal: No space left on device".
pub(crate) fn context<'a>(op: &str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    let op = op.to_owned();
    move |e| io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

/// fsync of a directory, so that a rename or a new file in it is durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(context("sync directory", dir))
}

/// Whether `path` exists; an error other than "not found" is returned.
pub(super) fn exists(path: &Path) -> io::Result<bool> {
    match fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(context("stat", path)(e)),
    }
}

/// The archived journal segments, by the sequence number their name says they end at
/// (`journal-<seq>`), oldest first.
pub fn archive_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let archive = dir.join(ARCHIVE_DIR);
    let entries = match fs::read_dir(&archive) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(context("list", &archive)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(context("list", &archive))?;
        let name = e.file_name();
        let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_prefix("journal-"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((seq, e.path()));
    }
    out.sort();
    Ok(out)
}

/// Writes `IDENTITY` (a random id and the time, for the operator's eyes) durably.
pub(super) fn write_identity(dir: &Path, now_ms: u64) -> io::Result<()> {
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(io::Error::other)?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(IDENTITY_FILE);
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    let text = format!(
        "sessiond data directory\nid {hex}\ncreated_ms {now_ms}\n\
         This directory holds state: a missing snapshot or journal here is damage, not a \
         new install.\n"
    );
    (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })()
    .map_err(context("write", &path))?;
    sync_dir(dir)
}

/// Removes or finishes what a crash between the steps of a snapshot can leave: a
/// snapshot never renamed into place, a half-replaced `snapshot.prev`, and the next
/// journal (kept as the journal if the old one was already archived).
pub(super) fn clean_leftovers(dir: &Path) -> io::Result<()> {
    for name in [SNAPSHOT_TMP, SNAPSHOT_PREV_TMP] {
        let p = dir.join(name);
        match fs::remove_file(&p) {
            Ok(()) => log::info!("removed {} left by an interrupted snapshot", p.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(context("remove", &p)(e)),
        }
    }
    let next = dir.join(JOURNAL_NEXT);
    if exists(&next)? {
        let journal = dir.join(JOURNAL_FILE);
        if exists(&journal)? {
            fs::remove_file(&next).map_err(context("remove", &next))?;
        } else {
            // The old journal was archived, the new one not yet renamed: it is the journal.
            fs::rename(&next, &journal).map_err(context("rename", &next))?;
            log::info!(
                "{} put in place (an interrupted snapshot)",
                journal.display()
            );
        }
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sessiond-layout-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join(ARCHIVE_DIR)).unwrap();
        d
    }

    #[test]
    fn archive_segments_sort_by_sequence_and_skip_strangers() {
        let d = dir("arch");
        for n in [
            "journal-00000000000000000200",
            "journal-00000000000000000013",
            "notes",
        ] {
            fs::write(d.join(ARCHIVE_DIR).join(n), b"").unwrap();
        }
        let segs: Vec<u64> = archive_segments(&d)
            .unwrap()
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(segs, [13, 200]);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn leftovers_are_removed_or_finished() {
        let d = dir("left");
        fs::write(d.join(SNAPSHOT_TMP), b"x").unwrap();
        fs::write(d.join(JOURNAL_NEXT), b"").unwrap();
        // no journal: the next one takes its place
        clean_leftovers(&d).unwrap();
        assert!(!d.join(SNAPSHOT_TMP).exists() && !d.join(JOURNAL_NEXT).exists());
        assert!(d.join(JOURNAL_FILE).exists());
        // with a journal: the next one is dropped
        fs::write(d.join(JOURNAL_FILE), b"kept").unwrap();
        fs::write(d.join(JOURNAL_NEXT), b"").unwrap();
        clean_leftovers(&d).unwrap();
        assert_eq!(fs::read(d.join(JOURNAL_FILE)).unwrap(), b"kept");
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn errors_name_the_operation_and_the_file_and_keep_their_kind() {
        let p = Path::new("/data/journal");
        let e = context("append to", p)(io::Error::from(io::ErrorKind::StorageFull));
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(
            e.to_string().starts_with("append to /data/journal: "),
            "{e}"
        );
    }
}
