//! The data directory under faults (issue 16), against the real binary: a lost snapshot
//! is refused, not mistaken for a new install; `sessiond repair` rebuilds a damaged or
//! missing snapshot without loss and `--check` changes nothing; a journal ending in 2 MiB
//! of header-like bytes starts in time; a client holding every descriptor it can get
//! cannot stop the server while snapshots are due.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::process::{fresh_dir, Running};
use sessiond::client::ResumeOutcome;
use sessiond::protocol::Token;
use sessiond::store::{ARCHIVE_DIR, JOURNAL_FILE, SNAPSHOT_FILE, SNAPSHOT_PREV_FILE};

fn sessiond(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A directory that went through at least two snapshots (so it holds `snapshot`,
/// `snapshot.prev` and archived journals), with the admin's password and live tokens.
fn compacted_dir(tag: &str) -> (std::path::PathBuf, String, Vec<(u64, Token)>) {
    let dir = fresh_dir(tag);
    let s = Running::start_with(
        &dir,
        &["--snapshot-kb", "1", "--max-sessions-per-user", "0"],
    );
    let pw = s.password.clone().unwrap();
    let mut tokens = Vec::new();
    for _ in 0..40 {
        let (c, l) = s.login("admin", &pw);
        drop(c);
        tokens.push((l.session.session_id, l.token));
        if dir.join(SNAPSHOT_PREV_FILE).exists() && tokens.len() >= 20 {
            break;
        }
    }
    // stopped gracefully, so that no snapshot is left half written (a kill -9 could leave a
    // snapshot.tmp, which the next start or repair clears: not what these tests are about)
    let mut s = s;
    s.terminate();
    assert_eq!(s.wait_exit(Duration::from_secs(15)), Some(0));
    assert!(
        dir.join(SNAPSHOT_PREV_FILE).exists(),
        "two snapshots were written"
    );
    (dir, pw, tokens)
}

fn all_resume(dir: &Path, pw: &str, tokens: &[(u64, Token)]) {
    let s = Running::start(dir);
    assert!(s.password.is_none(), "not a new install");
    for (_, t) in tokens {
        let mut c = s.client();
        assert!(matches!(
            c.resume(t, "t", "p").unwrap(),
            ResumeOutcome::Valid(_)
        ));
    }
    s.login("admin", pw);
}

#[test]
fn a_lost_snapshot_is_refused_and_repair_rebuilds_it_from_the_archive() {
    let (dir, pw, tokens) = compacted_dir("dd-lost");
    // the sessions the snapshot holds (those of the emptied journal are lost with it)
    let in_snapshot = sessions_in(&dir.join(SNAPSHOT_FILE));
    let tokens: Vec<_> = tokens
        .into_iter()
        .filter(|(id, _)| in_snapshot.contains(id))
        .collect();
    assert!(!tokens.is_empty());
    // the fault campaign's case: the snapshot deleted and the journal emptied
    std::fs::remove_file(dir.join(SNAPSHOT_FILE)).unwrap();
    std::fs::write(dir.join(JOURNAL_FILE), b"").unwrap();
    let out = sessiond(&["--listen", "127.0.0.1:0"], &dir);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("snapshot is missing"), "{said}");
    assert!(said.contains("sessiond repair --check"), "{said}");
    assert!(
        !said.contains("first start"),
        "mistaken for a new install: {said}"
    );
    // --check says what it would do and changes nothing
    let before: Vec<_> = listing(&dir);
    let out = sessiond(&["repair", "--check"], &dir);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a repair is needed: {}",
        text(&out)
    );
    assert!(text(&out).contains(SNAPSHOT_PREV_FILE), "{}", text(&out));
    assert_eq!(listing(&dir), before, "--check changed the directory");
    let out = sessiond(&["repair"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("rebuilt"), "{}", text(&out));
    // nothing acknowledged is lost: every session, the admin's password
    all_resume(&dir, &pw, &tokens);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_snapshot_is_set_aside_and_rebuilt_without_loss() {
    let (dir, pw, tokens) = compacted_dir("dd-damaged");
    let snap = dir.join(SNAPSHOT_FILE);
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&snap, &bytes).unwrap();
    let out = sessiond(&["--listen", "127.0.0.1:0"], &dir);
    assert!(!out.status.success());
    assert!(text(&out).contains("corrupt at offset"), "{}", text(&out));
    let out = sessiond(&["repair"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    let aside = std::fs::read_dir(&dir).unwrap().flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .starts_with("snapshot.damaged-")
    });
    assert!(aside, "the damaged snapshot is kept aside");
    assert!(!text(&out).contains("lost"), "nothing lost: {}", text(&out));
    all_resume(&dir, &pw, &tokens);
    // a consistent directory: --check finds nothing to do
    let out = sessiond(&["repair", "--check"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nothing_to_rebuild_from_is_said_and_changes_nothing() {
    let (dir, _, _) = compacted_dir("dd-nothing");
    for f in [SNAPSHOT_FILE, SNAPSHOT_PREV_FILE] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    // the archive no longer starts at the first record
    let mut segs: Vec<_> = std::fs::read_dir(dir.join(ARCHIVE_DIR))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    segs.sort();
    std::fs::remove_file(&segs[0]).unwrap();
    // (a snapshot the server was still writing when it stopped is not state: any start or
    // repair clears it; gone before the listing, so the listing is the state alone)
    let _ = std::fs::remove_file(dir.join("snapshot.tmp"));
    let before = listing(&dir);
    let out = sessiond(&["repair"], &dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("restore the data directory from a backup"),
        "{}",
        text(&out)
    );
    assert_eq!(listing(&dir), before);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tail_of_header_like_bytes_neither_spins_startup_nor_repair() {
    let dir = fresh_dir("dd-spin");
    let s = Running::start(&dir);
    let pw = s.password.clone().unwrap();
    let (_, l) = s.login("admin", &pw);
    drop(s);
    let mut tail = Vec::with_capacity(2 << 20);
    for _ in 0..(2 << 20) / 4 {
        tail.extend_from_slice(&[0x00, 0x0f, 0xff, 0xf0]);
    }
    let journal = dir.join(JOURNAL_FILE);
    let good = std::fs::metadata(&journal).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut f, &tail).unwrap();
    drop(f);
    let t = Instant::now();
    let out = sessiond(&["repair", "--check"], &dir);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "repair --check took {:?}",
        t.elapsed()
    );
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{}",
        text(&out)
    );
    let t = Instant::now();
    let s = Running::start(&dir);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "startup took {:?}",
        t.elapsed()
    );
    assert_eq!(
        std::fs::metadata(&journal).unwrap().len(),
        good,
        "the torn tail is cut"
    );
    let mut c = s.client();
    assert!(matches!(
        c.resume(&l.token, "t", "p").unwrap(),
        ResumeOutcome::Valid(_)
    ));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clients_holding_every_descriptor_cannot_stop_the_server_while_snapshots_are_due() {
    let dir = fresh_dir("dd-emfile");
    let flags = [
        "--snapshot-kb",
        "1",
        "--max-connections",
        "0",
        "--login-burst",
        "1000",
        "--login-rate",
        "100000",
    ];
    let s = Running::start_limited_with(&dir, 64, &flags);
    let pw = s.password.clone().unwrap();
    // one connection logged in first, then far more idle ones than there are descriptors:
    // past the cap (the limit less the store's reserve) they are refused, not served
    let (mut admin, _) = s.login("admin", &pw);
    let idle: Vec<_> = (0..100)
        .filter_map(|_| std::net::TcpStream::connect(s.addr.as_str()).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // journal growth on the one connection: every change makes the journal pass 1 KiB,
    // so snapshots are due all along, and each needs descriptors
    for i in 0..40 {
        admin
            .change_password(&pw, &pw)
            .unwrap_or_else(|e| panic!("change {i}: {e}"));
        admin.heartbeat().unwrap();
    }
    assert!(dir.join(SNAPSHOT_FILE).exists(), "snapshots were written");
    assert!(dir.join(SNAPSHOT_PREV_FILE).exists(), "more than one");
    drop(idle);
    drop(admin);
    drop(s);
    let again = Running::start(&dir);
    again.login("admin", &pw);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ids of the sessions a snapshot file holds.
fn sessions_in(snapshot: &Path) -> Vec<u64> {
    let bytes = std::fs::read(snapshot).unwrap();
    sessiond::store::journal::replay(&bytes, 1)
        .unwrap()
        .records
        .iter()
        .filter_map(
            |r| match sessiond::store::record::decode(r.kind, r.payload) {
                Ok(sessiond::engine::event::Event::SessionCreated(s)) => Some(s.id),
                _ => None,
            },
        )
        .collect()
}

/// Names and sizes of every file under `dir`, sorted.
fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().is_some_and(|n| n != "LOCK") {
                out.push((
                    p.display().to_string(),
                    std::fs::metadata(&p).unwrap().len(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_whole_last_record_with_a_bad_checksum_is_reported_and_cut() {
    let dir = fresh_dir("dd-lastcrc");
    let s = Running::start(&dir);
    let pw = s.password.clone().unwrap();
    s.login("admin", &pw);
    drop(s);
    let journal = dir.join(JOURNAL_FILE);
    let mut bytes = std::fs::read(&journal).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    std::fs::write(&journal, &bytes).unwrap();
    let out = sessiond(&["repair", "--check"], &dir);
    assert!(
        text(&out).contains("whole but its checksum does not match"),
        "{}",
        text(&out)
    );
    // startup cuts it, saying so at error level with the record's number
    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = out.id();
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let said = String::from_utf8_lossy(&out.wait_with_output().unwrap().stderr).into_owned();
    assert!(
        said.contains("ERROR") && said.contains("the last record (number"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_error_names_its_file_and_is_said_once() {
    let dir = fresh_dir("dd-once");
    std::fs::create_dir_all(&dir).unwrap();
    // the journal's place taken by a directory: reading it fails
    std::fs::create_dir_all(dir.join(JOURNAL_FILE)).unwrap();
    let out = sessiond(&["--listen", "127.0.0.1:0"], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let path = dir.join(JOURNAL_FILE).display().to_string();
    assert!(err.contains(&path), "names the file: {err}");
    assert_eq!(err.matches(&path).count(), 1, "said once: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
