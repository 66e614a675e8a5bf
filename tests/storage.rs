//! A full disk does not drop anyone (issue 16): while the store refuses writes the server
//! keeps its connections and answers heartbeats, refuses what needs a durable write with
//! STORAGE_UNAVAILABLE, retries the writes it had already taken, and comes back by itself
//! when space returns, losing nothing it acknowledged. Once with an injected store, once
//! with a real journal on a small tmpfs (as root; skipped with a message otherwise).
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestServer, ALICE_PW, BOB_PW};
use sessiond::client::{Client, LoginOutcome};
use sessiond::engine::event::Event;
use sessiond::protocol::LoginFailureReason;
use sessiond::store::{Store, StoreError};

#[derive(Default)]
struct Disk {
    full: bool,
    appended: Vec<Event>,
    durable: Vec<Event>,
    refused_commits: usize,
}

/// A store whose commits are refused for want of space while `full` is set, keeping what
/// was appended (as the journal does).
#[derive(Clone, Default)]
struct FullDisk(Arc<Mutex<Disk>>);

impl FullDisk {
    fn with<R>(&self, f: impl FnOnce(&mut Disk) -> R) -> R {
        f(&mut self.0.lock().unwrap())
    }
}

impl Store for FullDisk {
    fn append(&mut self, ev: &Event) -> io::Result<()> {
        self.with(|d| d.appended.push(ev.clone()));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.with(|d| {
            if d.full {
                d.refused_commits += 1;
                let e = io::Error::new(io::ErrorKind::StorageFull, "No space left on device");
                return Err(StoreError::retry(e));
            }
            let group: Vec<Event> = d.appended.drain(..).collect();
            d.durable.extend(group);
            Ok(())
        })
    }
}

/// Polls `f` until it holds (bounded).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn login(addr: std::net::SocketAddr, user: &str, pw: &str) -> LoginOutcome {
    let mut c = Client::connect(addr, Duration::from_secs(30)).unwrap();
    c.login(user, pw, "t", "p").unwrap()
}

#[test]
fn a_full_disk_refuses_changes_answers_heartbeats_and_recovers_by_itself() {
    let disk = FullDisk::default();
    let server = TestServer::start_with_store(Box::new(disk.clone()));
    // an account that exists in the store: alice is in the state, not the store
    let (mut alice, _) = server.alice();
    disk.with(|d| d.full = true);
    // bob's login is taken before the store refuses its first write: its reply waits
    // for the disk, like any reply that reports a change
    let addr = server.addr;
    let bob = std::thread::spawn(move || login(addr, "bob", BOB_PW));
    eventually("the store refused a commit", || {
        disk.with(|d| d.refused_commits > 0)
    });
    // from then on, what needs a durable write is refused at once, and not fatal
    let mut c = server.client();
    match c.login("alice", ALICE_PW, "t", "p").unwrap() {
        LoginOutcome::Failure(f) => {
            assert_eq!(f.reason, LoginFailureReason::StorageUnavailable);
            assert!(f.retry_after_ms >= 1000);
        }
        other => panic!("{other:?}"),
    }
    // heartbeats go on all along
    for _ in 0..3 {
        alice.heartbeat().unwrap();
    }
    assert!(
        !bob.is_finished(),
        "LOGIN_SUCCESS before the change was durable"
    );
    // space returns: the server retries by itself, bob's login completes, logins work
    disk.with(|d| d.full = false);
    match bob.join().unwrap() {
        LoginOutcome::Success(s) => assert_eq!(s.session.username, "bob"),
        other => panic!("{other:?}"),
    }
    // (a new login of alice's, which revokes the first: one session per account)
    eventually("logins taken again", || {
        matches!(
            c.login("alice", ALICE_PW, "t", "p"),
            Ok(LoginOutcome::Success(_))
        )
    });
    c.heartbeat().unwrap();
    // nothing acknowledged was lost: bob's session is in what the store made durable
    let durable_sessions = disk.with(|d| {
        d.durable
            .iter()
            .filter(|e| matches!(e, Event::SessionCreated(s) if s.user_id == 2))
            .count()
    });
    assert_eq!(durable_sessions, 1);
}

// ---- the same with a real journal on a full file system ---------------------------------

/// A tmpfs of `kib` KiB at a fresh directory, unmounted on drop; None (with a message) if
/// this process may not mount one.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(kib: u64) -> Option<Tmpfs> {
        let dir = std::env::temp_dir().join(format!("sessiond-tmpfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: cannot mount a tmpfs here (needs root): the full-disk path is covered by the injected store");
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fills the file system of `dir` with `filler` until it refuses (ENOSPC).
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0xa5u8; 4096];
    loop {
        match io::Write::write_all(&mut f, &chunk) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    // whatever is left in the last partial page too
    let _ = io::Write::write_all(&mut f, &[0u8; 1]);
    filler
}

#[test]
fn a_journal_on_a_full_file_system_refuses_then_recovers_and_restarts_with_everything() {
    let Some(fs) = Tmpfs::mount(2048) else {
        return;
    };
    let dir = fs.0.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let server = TestServer::start_journaled(&dir);
    let (mut alice, _) = server.alice();
    let filler = fill(&fs.0);
    // logins until one is refused: the journal hit the full disk (the login that did is
    // held until space returns)
    let addr = server.addr;
    let mut held = Vec::new();
    let mut refused = false;
    for _ in 0..200 {
        let mut c = Client::connect(addr, Duration::from_secs(1)).unwrap();
        match c.login("bob", BOB_PW, "t", "p") {
            Ok(LoginOutcome::Success(_)) => {}
            Ok(LoginOutcome::Failure(f)) if f.reason == LoginFailureReason::StorageUnavailable => {
                refused = true;
                break;
            }
            Ok(LoginOutcome::Failure(f)) => panic!("{f:?}"),
            Err(_) => held.push(c), // its reply waits for the disk
        }
    }
    assert!(refused, "the full disk never showed");
    alice.heartbeat().unwrap();
    std::fs::remove_file(&filler).unwrap();
    eventually("logins taken again", || {
        matches!(login(addr, "bob", BOB_PW), LoginOutcome::Success(_))
    });
    alice.heartbeat().unwrap();
    let (_, s) = server.bob();
    drop(alice);
    drop(held);
    drop(server);
    // a restart finds everything acknowledged, the last login included
    let again = TestServer::start_journaled(&dir);
    let mut c = again.client();
    assert!(matches!(
        c.resume(&s.token, "t", "p").unwrap(),
        sessiond::client::ResumeOutcome::Valid(_)
    ));
}
