//! The append-only journal's record format, its group-commit writer, and replay with
//! torn-tail detection (in the manner of LevelDB's log and Redis's AOF).
//!
//! Owns bytes on disk and their integrity, nothing about what the records mean: a record is
//! a type byte, a sequence number and an opaque payload.
//!
//! ```text
//! offset size field
//! 0      4    length   payload bytes, big-endian
//! 4      4    crc32c   CRC-32C of bytes 8.. (type, seq, payload)
//! 8      1    type
//! 9      8    seq      one more than the previous record's
//! 17     len  payload
//! ```
//!
//! Recovery rules: a bad record (short, bad CRC, absurd length, wrong sequence) with no
//! valid record anywhere after it is a torn tail: the crash happened while it was being
//! written, and replay stops before it. A bad record followed by a valid one is corruption
//! in the middle: replay refuses, naming the offset.
//!
//! Recovery is linear in the file's size. Looking for a valid record after a bad one
//! tries every later offset, but a candidate's checksum is computed only when its header
//! could be a later record's (its length fits, and after a valid record its sequence
//! number is not past where records of at least 17 bytes each could have brought it), and
//! the
//! checksummed bytes are capped at a few times the rest of the file: past the cap the
//! damage is reported as corruption (refused, never guessed). So no input makes startup or
//! `sessiond repair` spin (a file of a repeated header-like pattern took hours before).

use std::io;

use byteorder::{BigEndian, ByteOrder};

use super::crc32c::crc32c;

/// Bytes before each payload.
pub const RECORD_HEADER: usize = 17;
/// Largest payload accepted; anything larger is treated as damage, not allocated.
pub const MAX_RECORD: usize = 1 << 20;

/// One record as found by replay, borrowing the journal's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Byte offset of the record's header in the journal.
    pub offset: u64,
    /// The type byte (opaque here; [`crate::store::record`] gives it a meaning).
    pub kind: u8,
    /// The sequence number.
    pub seq: u64,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// Where replay stopped at a torn tail, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn {
    /// Byte offset of the incomplete or damaged record (the valid prefix's length).
    pub offset: u64,
    /// What was wrong with it.
    pub why: &'static str,
    /// The record was whole (all its bytes there) but its checksum did not match: a torn
    /// write of its payload, or a record that was written and then damaged. Its sequence
    /// number as the header says (unverified).
    pub complete_seq: Option<u64>,
}

/// Damage before the end of the journal: replay refuses to guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corruption {
    /// Byte offset of the first damaged record.
    pub offset: u64,
    /// What was wrong with it.
    pub why: &'static str,
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "journal corrupt at offset {}: {} (valid records follow it)",
            self.offset, self.why
        )
    }
}

impl std::error::Error for Corruption {}

/// The records of a journal, the length of its valid prefix, and the torn tail if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay<'a> {
    /// The valid records, in file order.
    pub records: Vec<Record<'a>>,
    /// Bytes of whole, valid records: truncate the file to this before appending.
    pub valid_len: u64,
    /// The torn tail replay stopped at; None if the bytes end with a whole record.
    pub torn: Option<Torn>,
}

enum Parse<'a> {
    Ok(Record<'a>, usize),
    Incomplete(&'static str),
    Bad(&'static str),
    /// Whole, but the checksum does not match; the header's sequence number.
    BadChecksum(u64),
    /// Whole and checksummed, but not the sequence number expected.
    OutOfOrder,
}

fn parse_at(buf: &[u8], at: usize, expect_seq: Option<u64>) -> Parse<'_> {
    let rest = &buf[at..];
    if rest.len() < RECORD_HEADER {
        return Parse::Incomplete("incomplete record header");
    }
    let len = BigEndian::read_u32(&rest[0..4]) as usize;
    if len > MAX_RECORD {
        return Parse::Bad("record length out of range");
    }
    let end = RECORD_HEADER + len;
    if rest.len() < end {
        return Parse::Incomplete("incomplete record");
    }
    let seq = BigEndian::read_u64(&rest[9..17]);
    if BigEndian::read_u32(&rest[4..8]) != crc32c(&rest[8..end]) {
        return Parse::BadChecksum(seq);
    }
    if expect_seq.is_some_and(|s| s != seq) {
        return Parse::OutOfOrder;
    }
    Parse::Ok(
        Record {
            offset: at as u64,
            kind: rest[8],
            seq,
            payload: &rest[RECORD_HEADER..end],
        },
        end,
    )
}

/// Reads every record of `buf`; the first must carry `first_seq`.
pub fn replay(buf: &[u8], first_seq: u64) -> Result<Replay<'_>, Corruption> {
    replay_inner(buf, Some(first_seq))
}

/// Reads every record of `buf`, whatever sequence number the first one carries (a journal
/// started after a snapshot); the rest must follow it one by one.
pub fn replay_any(buf: &[u8]) -> Result<Replay<'_>, Corruption> {
    replay_inner(buf, None)
}

fn replay_inner(buf: &[u8], first_seq: Option<u64>) -> Result<Replay<'_>, Corruption> {
    let mut records = Vec::new();
    let mut at = 0usize;
    let mut expect = first_seq;
    while at < buf.len() {
        let (why, complete_seq) = match parse_at(buf, at, expect) {
            Parse::Ok(r, n) => {
                expect = Some(r.seq + 1);
                records.push(r);
                at += n;
                continue;
            }
            Parse::OutOfOrder => {
                // Whole and checksummed, but misnumbered: no torn write makes that.
                return Err(Corruption {
                    offset: at as u64,
                    why: "sequence number out of order",
                });
            }
            Parse::Incomplete(why) | Parse::Bad(why) => (why, None),
            Parse::BadChecksum(seq) => ("checksum mismatch", Some(seq)),
        };
        // A bad record is a torn tail only if nothing valid comes after it. Any CRC-valid
        // record later in the file means the damage is in the middle.
        match valid_record_after(buf, at, expect) {
            After::None => {}
            After::Found => {
                return Err(Corruption {
                    offset: at as u64,
                    why,
                })
            }
            After::Undecided => {
                return Err(Corruption {
                    offset: at as u64,
                    why: "damaged, and too much of the rest looks like records to tell a \
                          torn tail from damage in the middle",
                })
            }
        }
        return Ok(Replay {
            records,
            valid_len: at as u64,
            torn: Some(Torn {
                offset: at as u64,
                why,
                complete_seq,
            }),
        });
    }
    Ok(Replay {
        records,
        valid_len: at as u64,
        torn: None,
    })
}

/// What lies after a bad record.
#[derive(Debug, PartialEq, Eq)]
enum After {
    /// No valid record: the bad one is a torn tail.
    None,
    /// A valid record: the damage is in the middle.
    Found,
    /// The checksum budget ran out before the end: cannot tell.
    Undecided,
}

/// Checksummed bytes allowed per byte after the bad record, when looking for a valid
/// record behind it (plus one largest record).
const SCAN_BUDGET_FACTOR: u64 = 4;

/// Looks for a valid record at any offset after the bad one at `bad` (whose sequence
/// number should have been `expect`), in time linear in the bytes after it.
fn valid_record_after(buf: &[u8], bad: usize, expect: Option<u64>) -> After {
    let rest = (buf.len() - bad) as u64;
    let mut budget = SCAN_BUDGET_FACTOR * rest + MAX_RECORD as u64;
    for p in bad + 1..buf.len().saturating_sub(RECORD_HEADER - 1) {
        let h = &buf[p..];
        let len = BigEndian::read_u32(&h[0..4]) as usize;
        if len > MAX_RECORD || h.len() < RECORD_HEADER + len {
            continue;
        }
        if let Some(e) = expect {
            // Records between `bad` and `p` take at least a header each: a real record
            // at `p` carries at most `e` plus that many. (No lower bound: a file whose
            // numbering is off altogether is damage too.)
            let seq = BigEndian::read_u64(&h[9..17]);
            if seq > e.saturating_add(((p - bad) / RECORD_HEADER) as u64) {
                continue;
            }
        }
        let cost = (RECORD_HEADER + len) as u64;
        if cost > budget {
            return After::Undecided;
        }
        budget -= cost;
        if BigEndian::read_u32(&h[4..8]) == crc32c(&h[8..RECORD_HEADER + len]) {
            return After::Found;
        }
    }
    After::None
}

/// Where journal bytes go. The file system in production; memory in tests, where a crash
/// can drop everything written since the last sync.
pub trait JournalFile {
    /// Writes `data` at the end; durable only after `sync`.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file back to `len` bytes (what a failed append left beyond the durable
    /// end).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl JournalFile for std::fs::File {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, data)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// Whether `e` says the disk (or the user's quota) is full: the one failure of a write
/// after which the journal can go on once space returns.
pub fn is_out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// An in-memory journal file that knows which bytes a power loss would keep.
#[derive(Debug, Default, Clone)]
pub struct MemFile {
    data: Vec<u8>,
    synced: usize,
}

impl MemFile {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything appended so far, synced or not.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// What survives a power loss now: only what was synced.
    pub fn after_power_loss(&self) -> Vec<u8> {
        self.data[..self.synced].to_vec()
    }
}

impl JournalFile for MemFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.synced = self.data.len();
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.data.truncate(len as usize);
        self.synced = self.synced.min(self.data.len());
        Ok(())
    }
}

/// Appends records and makes them durable in groups: every record appended between two
/// `commit`s is written with one write and one sync (group commit, once per loop turn).
///
/// A failed sync, or a failed write for any reason but a full disk, is sticky: every later
/// commit fails too, so nothing appended after the failure is ever acknowledged (the
/// server stops instead: after a failed fsync the page cache cannot be trusted). A write
/// that fails for want of space (`is_out_of_space`) is undone instead: the file is cut
/// back to its durable length, the group stays buffered, and a later `commit` writes it
/// (with whatever was appended since) once space returns.
pub struct JournalWriter<F: JournalFile> {
    file: F,
    next_seq: u64,
    pending: Vec<u8>,
    size: u64,
    failed: bool,
}

/// Capacity the append buffer keeps between commits.
const PENDING_KEEP: usize = 64 * 1024;

impl<F: JournalFile> JournalWriter<F> {
    /// A writer appending after `size` valid bytes whose next record is `next_seq`.
    pub fn new(file: F, next_seq: u64, size: u64) -> Self {
        JournalWriter {
            file,
            next_seq,
            pending: Vec::new(),
            size,
            failed: false,
        }
    }

    /// Buffers one record; returns its sequence number. Durable after the next `commit`.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> io::Result<u64> {
        if payload.len() > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "record too large",
            ));
        }
        let seq = self.next_seq;
        let start = self.pending.len();
        self.pending.resize(start + RECORD_HEADER, 0);
        self.pending.extend_from_slice(payload);
        let rec = &mut self.pending[start..];
        BigEndian::write_u32(&mut rec[0..4], payload.len() as u32);
        rec[8] = kind;
        BigEndian::write_u64(&mut rec[9..17], seq);
        let crc = crc32c(&rec[8..]);
        BigEndian::write_u32(&mut rec[4..8], crc);
        self.next_seq += 1;
        Ok(seq)
    }

    /// Writes and syncs everything appended since the last commit.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "journal failed earlier; refusing to continue",
            ));
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.append(&self.pending) {
            let e = io::Error::new(e.kind(), format!("write: {e}"));
            if is_out_of_space(&e) && self.file.truncate(self.size).is_ok() {
                // Nothing of the group is durable, and nothing of it is left in the file.
                return Err(e);
            }
            self.failed = true;
            return Err(e);
        }
        match self
            .file
            .sync()
            .map_err(|e| io::Error::new(e.kind(), format!("fdatasync: {e}")))
        {
            Ok(()) => {
                self.size += self.pending.len() as u64;
                self.pending.clear();
                if self.pending.capacity() > PENDING_KEEP {
                    // a burst's group (10,000 logins: megabytes) is not kept for good
                    self.pending = Vec::new();
                }
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// Whether a failure made the writer refuse every later commit.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Bytes appended and not yet durable.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Bytes durable in the file.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The sequence number the next appended record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The file written to.
    pub fn file(&self) -> &F {
        &self.file
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test bounds recovery time in real time
mod tests {
    use super::*;

    fn journal(n: u64) -> (Vec<u8>, Vec<u64>) {
        let mut w = JournalWriter::new(MemFile::new(), 1, 0);
        for i in 0..n {
            let payload = vec![i as u8; (i * 7 % 40) as usize];
            w.append((i % 5) as u8, &payload).unwrap();
        }
        w.commit().unwrap();
        let bytes = w.file().bytes().to_vec();
        let ends = replay(&bytes, 1)
            .unwrap()
            .records
            .iter()
            .map(|r| r.offset + (RECORD_HEADER + r.payload.len()) as u64)
            .collect();
        (bytes, ends)
    }

    #[test]
    fn round_trip() {
        let (bytes, ends) = journal(20);
        let r = replay(&bytes, 1).unwrap();
        assert_eq!(r.records.len(), 20);
        assert_eq!(r.torn, None);
        assert_eq!(r.valid_len, bytes.len() as u64);
        assert_eq!(*ends.last().unwrap(), bytes.len() as u64);
        for (i, rec) in r.records.iter().enumerate() {
            assert_eq!(rec.seq, i as u64 + 1);
            assert_eq!(rec.kind, (i % 5) as u8);
            assert_eq!(rec.payload, vec![i as u8; i * 7 % 40].as_slice());
        }
    }

    #[test]
    fn truncation_at_every_offset_recovers_a_prefix() {
        let (bytes, ends) = journal(12);
        for cut in 0..=bytes.len() {
            let r = replay(&bytes[..cut], 1).unwrap();
            let whole = ends.iter().filter(|&&e| e <= cut as u64).count();
            assert_eq!(r.records.len(), whole, "cut at {cut}");
            let boundary = if whole == 0 { 0 } else { ends[whole - 1] };
            assert_eq!(r.valid_len, boundary, "cut at {cut}");
            assert_eq!(r.torn.is_some(), boundary != cut as u64, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_is_detected() {
        let (bytes, ends) = journal(8);
        let last_start = ends[ends.len() - 2] as usize;
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                match replay(&b, 1) {
                    // damage in the last record: a torn tail, the rest intact
                    Ok(r) => {
                        assert!(
                            i >= last_start,
                            "byte {i}: damage in the middle not refused"
                        );
                        assert_eq!(r.records.len(), ends.len() - 1);
                        assert_eq!(r.torn.unwrap().offset, last_start as u64);
                    }
                    // damage before it: refused, naming the damaged record's offset
                    Err(c) => {
                        assert!(i < last_start, "byte {i}");
                        let rec_start = std::iter::once(0)
                            .chain(ends.iter().copied())
                            .filter(|&e| e <= i as u64)
                            .max()
                            .unwrap();
                        assert_eq!(c.offset, rec_start, "byte {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn power_loss_keeps_exactly_what_was_committed() {
        let mut w = JournalWriter::new(MemFile::new(), 1, 0);
        w.append(1, b"registered alice").unwrap();
        w.append(2, b"login alice").unwrap();
        w.commit().unwrap();
        w.append(2, b"login bob").unwrap(); // never committed: never acknowledged
        let survived = w.file().after_power_loss();
        let r = replay(&survived, 1).unwrap();
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records[1].payload, b"login alice");
        assert_eq!(w.size(), survived.len() as u64);
        // appending continues with the next sequence number after a reopen
        let mut w2 = JournalWriter::new(MemFile::new(), r.records.len() as u64 + 1, r.valid_len);
        assert_eq!(w2.append(1, b"x").unwrap(), 3);
    }

    struct FailingFile {
        fail_sync: bool,
    }

    impl JournalFile for FailingFile {
        fn append(&mut self, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            if self.fail_sync {
                Err(io::Error::other("EIO"))
            } else {
                Ok(())
            }
        }
        fn truncate(&mut self, _: u64) -> io::Result<()> {
            Ok(())
        }
    }

    /// A file on a disk that fills up: appends past `room` bytes write what fits, then
    /// fail with ENOSPC (as write(2) does).
    struct SmallDisk {
        file: MemFile,
        room: usize,
    }

    impl JournalFile for SmallDisk {
        fn append(&mut self, data: &[u8]) -> io::Result<()> {
            let fits = self
                .room
                .saturating_sub(self.file.data.len())
                .min(data.len());
            self.file.append(&data[..fits])?;
            if fits < data.len() {
                return Err(io::ErrorKind::StorageFull.into());
            }
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            self.file.sync()
        }
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            self.file.truncate(len)
        }
    }

    #[test]
    fn a_full_disk_undoes_the_write_and_the_group_goes_out_when_space_returns() {
        let mut w = JournalWriter::new(
            SmallDisk {
                file: MemFile::new(),
                room: 40,
            },
            1,
            0,
        );
        w.append(1, b"fits").unwrap();
        w.commit().unwrap();
        let durable = w.size();
        w.append(2, b"this group does not fit in the space left")
            .unwrap();
        let e = w.commit().unwrap_err();
        assert!(is_out_of_space(&e) && !w.failed());
        assert_eq!(
            w.file().file.bytes().len() as u64,
            durable,
            "the partial write is cut"
        );
        w.append(3, b"more").unwrap();
        w.file.room = 1 << 20; // space returns
        w.commit().unwrap();
        let r = replay(w.file().file.bytes(), 1).unwrap();
        let seqs: Vec<u64> = r.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(r.torn, None);
    }

    #[test]
    fn replay_any_starts_at_the_first_sequence_number() {
        let mut w = JournalWriter::new(MemFile::new(), 41, 0);
        w.append(1, b"a").unwrap();
        w.append(1, b"b").unwrap();
        w.commit().unwrap();
        let r = replay_any(w.file().bytes()).unwrap();
        assert_eq!(
            r.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [41, 42]
        );
        assert!(replay(w.file().bytes(), 1).is_err());
    }

    #[test]
    fn a_failed_sync_is_sticky() {
        let mut w = JournalWriter::new(FailingFile { fail_sync: true }, 1, 0);
        w.append(1, b"a").unwrap();
        assert!(w.commit().is_err());
        w.file.fail_sync = false;
        w.append(1, b"b").unwrap();
        assert!(
            w.commit().is_err(),
            "nothing after a failure may be acknowledged"
        );
    }

    #[test]
    fn a_tail_of_header_like_bytes_recovers_in_linear_time() {
        // the fault campaign's case: 2 MiB of `00 0f ff f0` after valid records; every
        // offset reads as a header announcing ~1 MiB
        let (bytes, ends) = journal(5);
        let mut b = bytes.clone();
        for _ in 0..(2 << 20) / 4 {
            b.extend_from_slice(&[0x00, 0x0f, 0xff, 0xf0]);
        }
        let t = std::time::Instant::now();
        let r = replay(&b, 1).unwrap();
        assert_eq!(r.records.len(), 5);
        assert_eq!(r.valid_len, *ends.last().unwrap());
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
        // the same bytes as the whole journal (no sequence known): still an end
        let t = std::time::Instant::now();
        let _ = replay_any(&b[bytes.len()..]);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn a_whole_last_record_with_a_bad_checksum_is_told_apart() {
        let (bytes, ends) = journal(4);
        let mut b = bytes.clone();
        let last = ends[ends.len() - 2] as usize;
        *b.last_mut().unwrap() ^= 1;
        let t = replay(&b, 1).unwrap().torn.unwrap();
        assert_eq!((t.offset, t.complete_seq), (last as u64, Some(4)));
        // cut short, it is an ordinary torn write
        let t = replay(&bytes[..bytes.len() - 1], 1).unwrap().torn.unwrap();
        assert_eq!(t.complete_seq, None);
    }

    #[test]
    fn sequence_gaps_and_absurd_lengths_are_damage() {
        let (bytes, _) = journal(3);
        // replaying with the wrong first sequence number: the first record is "bad" and
        // valid records follow, so it is refused
        assert!(replay(&bytes, 5).is_err());
        // a header claiming 4 GiB at the end is a torn tail, never an allocation
        let mut b = bytes.clone();
        b.extend_from_slice(&[
            0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4,
        ]);
        let r = replay(&b, 1).unwrap();
        assert_eq!(r.records.len(), 3);
        assert_eq!(r.torn.unwrap().why, "record length out of range");
    }
}
