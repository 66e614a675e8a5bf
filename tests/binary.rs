//! The `sessiond` binary as an operator runs it: first start creates `admin` and prints its
//! password once; a restart on the same data directory does not; the printed password
//! works; registered users survive the restart.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sessiond::client::{Client, LoginOutcome, RegisterOutcome, ResumeOutcome};

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--iterations",
            "1000",
            "--data-dir",
        ])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sessiond");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running { child, lines }
}

/// Lines printed until "listening on ADDR"; returns them and the address.
fn until_listening(r: &Running) -> (Vec<String>, String) {
    let mut seen = Vec::new();
    loop {
        let line = r
            .lines
            .recv_timeout(Duration::from_secs(30))
            .expect("sessiond did not start");
        if let Some(addr) = line.strip_prefix("sessiond: listening on ") {
            return (seen, addr.to_owned());
        }
        seen.push(line);
    }
}

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("sessiond-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn first_start_prints_the_admin_password_once_and_data_survives_a_restart() {
    let dir = tmpdir();
    let first = start(&dir);
    let (lines, addr) = until_listening(&first);
    let password = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("admin password printed")
        .to_owned();
    assert_eq!(password.len(), 20);
    let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    let admin = match c.login("admin", &password, "t", "p").unwrap() {
        LoginOutcome::Success(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(admin.session.role.name(), "admin");
    drop(c);
    let mut r = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    assert!(matches!(
        r.register("dana", "long enough", "dana@example.org")
            .unwrap(),
        RegisterOutcome::Success(_)
    ));
    drop(first);

    let second = start(&dir);
    let (lines, addr) = until_listening(&second);
    assert!(
        lines.iter().all(|l| !l.contains("password")),
        "printed again: {lines:?}"
    );
    // the session granted before the restart resumes with its token (journaled)
    let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    match c.resume(&admin.token, "t", "p").unwrap() {
        ResumeOutcome::Valid(info) => assert_eq!(info.session_id, admin.session.session_id),
        other => panic!("{other:?}"),
    }
    c.heartbeat().unwrap();
    let mut d = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    assert!(matches!(
        d.login("dana", "long enough", "t", "p").unwrap(),
        LoginOutcome::Success(_)
    ));
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_flags_exit_with_status_2_and_help_exits_0() {
    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option"));
    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--heartbeat-timeout"));
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let dir = std::env::temp_dir().join(format!("sessiond-bin-lock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = start(&dir);
    let _ = until_listening(&first);
    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--iterations",
            "1000",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another sessiond"), "{err}");
    assert!(err.contains(&first.child.id().to_string()), "{err}");
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corruption_in_the_middle_refuses_to_start_until_repaired() {
    let dir = std::env::temp_dir().join(format!("sessiond-bin-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = start(&dir);
    let (lines, addr) = until_listening(&first);
    let password = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap()
        .to_owned();
    // a few journal records: logins and a logout
    for _ in 0..3 {
        let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
        assert!(matches!(
            c.login("admin", &password, "t", "p").unwrap(),
            LoginOutcome::Success(_)
        ));
        c.logout().unwrap();
    }
    drop(first);
    let journal = dir.join("journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    assert!(bytes.len() > 100);
    // damage the second record (the first is the admin account, which must survive)
    let recs = sessiond::store::journal::replay(&bytes, 1).unwrap().records;
    assert!(recs.len() > 4);
    let second = recs[1].offset;
    bytes[second as usize + 20] ^= 0x40;
    std::fs::write(&journal, &bytes).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("corrupt at offset {second}")),
        "{err}"
    );
    assert!(err.contains("sessiond repair"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(["repair", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), second);

    let again = start(&dir);
    let (_, addr) = until_listening(&again);
    let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    assert!(matches!(
        c.login("admin", &password, "t", "p").unwrap(),
        LoginOutcome::Success(_)
    ));
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_tail_is_truncated_and_the_server_starts() {
    let dir = std::env::temp_dir().join(format!("sessiond-bin-torn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = start(&dir);
    let (lines, addr) = until_listening(&first);
    let password = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap()
        .to_owned();
    let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    let s = match c.login("admin", &password, "t", "p").unwrap() {
        LoginOutcome::Success(s) => s,
        other => panic!("{other:?}"),
    };
    drop(c);
    drop(first);
    // half a record appended, as a crash in the middle of a write leaves it
    let journal = dir.join("journal");
    let good = std::fs::metadata(&journal).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0, 0, 0, 40, 1, 2, 3]).unwrap();
    drop(f);
    let again = start(&dir);
    let (_, addr) = until_listening(&again);
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), good);
    let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    assert!(matches!(
        c.resume(&s.token, "t", "p").unwrap(),
        ResumeOutcome::Valid(_)
    ));
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dead_token_still_says_why_after_a_restart() {
    use sessiond::protocol::InvalidReason;
    let dir = std::env::temp_dir().join(format!("sessiond-bin-tomb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = start(&dir);
    let (lines, addr) = until_listening(&first);
    let password = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap()
        .to_owned();
    let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    let s = match c.login("admin", &password, "t", "p").unwrap() {
        LoginOutcome::Success(s) => s,
        other => panic!("{other:?}"),
    };
    c.logout().unwrap();
    drop(c);
    drop(first);
    let again = start(&dir);
    let (_, addr) = until_listening(&again);
    let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    match c.resume(&s.token, "t", "p").unwrap() {
        ResumeOutcome::Invalid(i) => assert_eq!(i.reason, InvalidReason::LoggedOut),
        other => panic!("{other:?}"),
    }
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}
