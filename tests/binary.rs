//! The `sessiond` binary as an operator runs it: the first start creates `admin` and prints
//! its password once; data and sessions survive restarts and SIGKILL; a torn journal tail
//! is truncated; damage in the middle refuses to start until `sessiond repair`; one server
//! per data directory; exit codes.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

use std::process::Command;

use common::process::{fresh_dir, sessiond, Running};
use sessiond::client::{LoginOutcome, RegisterOutcome, ResumeOutcome};
use sessiond::protocol::InvalidReason;

#[test]
fn first_start_prints_the_admin_password_once_and_data_survives_a_restart() {
    let dir = fresh_dir("bin-first");
    let first = Running::start(&dir);
    let password = first.password.clone().expect("admin password printed");
    assert_eq!(password.len(), 20);
    let (c, admin) = first.login("admin", &password);
    assert_eq!(admin.session.role.name(), "admin");
    drop(c);
    let mut r = first.client();
    assert!(matches!(
        r.register("dana", "long enough", "dana@example.org")
            .unwrap(),
        RegisterOutcome::Success(_)
    ));
    drop(first); // SIGKILL

    let second = Running::start(&dir);
    assert!(
        second.password.is_none(),
        "printed again: {:?}",
        second.printed
    );
    // the session granted before the kill resumes with its token (journaled)
    let mut c = second.client();
    match c.resume(&admin.token, "t", "p").unwrap() {
        ResumeOutcome::Valid(info) => assert_eq!(info.session_id, admin.session.session_id),
        other => panic!("{other:?}"),
    }
    c.heartbeat().unwrap();
    second.login("dana", "long enough");
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
    let dir = fresh_dir("bin-lock");
    let first = Running::start(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
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
    let dir = fresh_dir("bin-corrupt");
    let first = Running::start(&dir);
    let password = first.password.clone().unwrap();
    // a few journal records: logins and logouts
    for _ in 0..3 {
        let (mut c, _) = first.login("admin", &password);
        c.logout().unwrap();
    }
    drop(first);
    let journal = dir.join(sessiond::store::JOURNAL_FILE);
    let mut bytes = std::fs::read(&journal).unwrap();
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

    let again = Running::start(&dir);
    again.login("admin", &password);
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_tail_is_truncated_and_the_server_starts() {
    let dir = fresh_dir("bin-torn");
    let first = Running::start(&dir);
    let password = first.password.clone().unwrap();
    let (c, s) = first.login("admin", &password);
    drop(c);
    drop(first);
    // half a record appended, as a crash in the middle of a write leaves it
    let journal = dir.join(sessiond::store::JOURNAL_FILE);
    let good = std::fs::metadata(&journal).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0, 0, 0, 40, 1, 2, 3]).unwrap();
    drop(f);
    let again = Running::start(&dir);
    assert_eq!(std::fs::metadata(&journal).unwrap().len(), good);
    let mut c = again.client();
    assert!(matches!(
        c.resume(&s.token, "t", "p").unwrap(),
        ResumeOutcome::Valid(_)
    ));
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dead_token_still_says_why_after_a_restart() {
    let dir = fresh_dir("bin-tomb");
    let first = Running::start(&dir);
    let password = first.password.clone().unwrap();
    let (mut c, s) = first.login("admin", &password);
    c.logout().unwrap();
    drop(c);
    drop(first);
    let again = Running::start(&dir);
    let mut c = again.client();
    match c.resume(&s.token, "t", "p").unwrap() {
        ResumeOutcome::Invalid(i) => assert_eq!(i.reason, InvalidReason::LoggedOut),
        other => panic!("{other:?}"),
    }
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_admin_login_works_with_the_printed_password_only() {
    let dir = fresh_dir("bin-admin");
    let first = Running::start(&dir);
    let mut c = first.client();
    assert!(matches!(
        c.login("admin", "not the password", "t", "p").unwrap(),
        LoginOutcome::Failure(_)
    ));
    first.login("admin", first.password.as_deref().unwrap());
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_journal_is_compacted_into_a_snapshot_and_everything_survives() {
    let dir = fresh_dir("bin-snap");
    let first = Running::start_with(
        &dir,
        &["--snapshot-kb", "1", "--max-sessions-per-user", "0"],
    );
    let password = first.password.clone().unwrap();
    let mut tokens = Vec::new();
    for _ in 0..12 {
        let (c, s) = first.login("admin", &password);
        drop(c);
        tokens.push(s.token);
    }
    let (mut c, s) = first.login("admin", &password);
    c.logout().unwrap();
    drop(first);
    assert!(dir.join(sessiond::store::SNAPSHOT_FILE).exists());
    let archived = std::fs::read_dir(dir.join(sessiond::store::ARCHIVE_DIR))
        .unwrap()
        .count();
    assert!(archived >= 1, "old journal segments are archived");
    let journal = std::fs::metadata(dir.join(sessiond::store::JOURNAL_FILE)).unwrap();
    assert!(
        journal.len() < 4096,
        "journal was compacted: {} bytes",
        journal.len()
    );

    let again = Running::start(&dir);
    for t in &tokens {
        let mut c = again.client();
        assert!(matches!(
            c.resume(t, "t", "p").unwrap(),
            ResumeOutcome::Valid(_)
        ));
    }
    let mut c = again.client();
    match c.resume(&s.token, "t", "p").unwrap() {
        ResumeOutcome::Invalid(i) => assert_eq!(i.reason, InvalidReason::LoggedOut),
        other => panic!("{other:?}"),
    }
    again.login("admin", &password);
    drop(again);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn operators_create_users_set_roles_and_read_the_audit_trail_offline() {
    let dir = fresh_dir("bin-ops");
    let d = dir.to_str().unwrap();
    let first = Running::start(&dir);
    // a live server owns the directory: account changes are refused, reading is not
    let (code, _, err) = sessiond(&["user", "add", "carol", "--data-dir", d], "");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("lock") || err.contains("in use"), "{err}");
    let mut c = first.client();
    assert!(matches!(
        c.login("carol", "whatever1", "t", "p").unwrap(),
        LoginOutcome::Failure(_)
    ));
    drop(first);

    let (code, out, err) = sessiond(
        &[
            "user",
            "add",
            "carol",
            "--role",
            "admin",
            "--password-stdin",
            "--iterations",
            "1000",
            "--data-dir",
            d,
        ],
        "carol's password\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("created user carol (id 2, role admin)"),
        "{out}"
    );
    assert!(!out.contains("carol's password"));
    let (code, out, _) = sessiond(
        &[
            "user",
            "add",
            "erin",
            "--data-dir",
            d,
            "--iterations",
            "1000",
        ],
        "",
    );
    assert_eq!(code, Some(0));
    let erin_pw = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("generated password printed")
        .to_owned();
    let (code, out, _) = sessiond(&["user", "set-role", "carol", "user", "--data-dir", d], "");
    assert_eq!((code, out.trim()), (Some(0), "carol: role admin -> user"));
    let (code, out, _) = sessiond(&["user", "list", "--data-dir", d], "");
    assert_eq!(code, Some(0));
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..4], ["ID", "USER", "ROLE", "SUSPENDED"]);
    assert_eq!(rows[2][..4], ["2", "carol", "user", "no"]);
    assert_eq!(rows[3][..3], ["3", "erin", "user"]);

    let second = Running::start(&dir);
    let (_c, s) = second.login("carol", "carol's password");
    assert_eq!(s.session.role.name(), "user");
    second.login("erin", &erin_pw);
    drop(second);

    let (code, out, err) = sessiond(&["audit", "--user", "carol", "--data-dir", d], "");
    assert_eq!(code, Some(0), "{err}");
    let kinds: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    // (TIME is "YYYY-MM-DD HH:MM:SS UTC": three words)
    assert_eq!(
        kinds,
        ["user_created", "role_changed", "session_created"],
        "{out}"
    );
    // typed columns: TIME (3 words) KIND REASON USER SESSION ADDRESS DEVICE BY NOTE
    let row = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    let (_, out, _) = sessiond(&["audit", "--kind", "login_failed", "--data-dir", d], "");
    assert_eq!(out.lines().count(), 2, "{out}");
    let failed = row(out.lines().nth(1).unwrap());
    assert_eq!(
        failed[3..6],
        ["login_failed", "INVALID_CREDENTIALS", "carol"],
        "{out}"
    );
    assert!(out.contains("carol: invalid credentials"), "{out}");
    // the newest N, still oldest first; the operator's role change: the new role, no actor
    let args = ["audit", "--user", "carol", "--limit", "2", "--data-dir", d];
    let (_, out, _) = sessiond(&args, "");
    let rows: Vec<Vec<String>> = out.lines().skip(1).map(row).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0][3..6], ["role_changed", "user", "carol"], "{out}");
    assert_eq!(rows[0][6..10], ["-", "-", "-", "-"], "{out}");
    assert_eq!(rows[1][3], "session_created", "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_shuts_down_gracefully_and_sessions_resume_after_the_restart() {
    use sessiond::client::ClientError;
    use sessiond::protocol::{DisconnectReason, Message};
    use std::time::Duration;
    let dir = fresh_dir("bin-term");
    let mut first = Running::start(&dir);
    let pw = first.password.clone().unwrap();
    let (mut c, s) = first.login("admin", &pw);
    first.terminate();
    let notice = c
        .poll_push(Duration::from_secs(5))
        .unwrap()
        .expect("notice");
    assert!(
        matches!(notice.message, Message::ServerShutdown(_)),
        "{notice:?}"
    );
    match c.poll_push(Duration::from_secs(5)) {
        Err(ClientError::Closed(Some(r))) => assert_eq!(r, DisconnectReason::ServerShutdown),
        other => panic!("{other:?}"),
    }
    drop(c);
    assert_eq!(first.wait_exit(Duration::from_secs(10)), Some(0));
    drop(first);
    let second = Running::start(&dir);
    let mut c = second.client();
    match c.resume(&s.token, "t", "p").unwrap() {
        ResumeOutcome::Valid(info) => assert_eq!(info.session_id, s.session.session_id),
        other => panic!("{other:?}"),
    }
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

/// CPU seconds (user + system) the process has used, from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_name.split_whitespace().collect();
    // fields 14 and 15 of stat(5): utime, stime (clock ticks, 100 per second on Linux)
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[test]
fn running_out_of_file_descriptors_neither_spins_nor_stalls() {
    use std::time::{Duration, Instant};
    let dir = fresh_dir("bin-emfile");
    let first = Running::start_limited(&dir, 48);
    let pw = first.password.clone().unwrap();
    let (mut admin, _) = first.login("admin", &pw);
    // far more connections than the server has descriptors for; the kernel queues them
    let mut flood: Vec<sessiond::client::Client> = (0..80).map(|_| first.client()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let pid = first.child.id();
    let before = cpu_secs(pid);
    let t = Instant::now();
    // the connection it has keeps being served
    for _ in 0..10 {
        admin.heartbeat().expect("served while out of descriptors");
        std::thread::sleep(Duration::from_millis(100));
    }
    let used = cpu_secs(pid) - before;
    let wall = t.elapsed().as_secs_f64();
    assert!(
        used < 0.5 * wall,
        "the loop spins: {used:.2} s of CPU in {wall:.2} s"
    );
    // Descriptors come back (the first connections, which it accepted, close) while no new
    // connection arrives: the queued ones must be accepted all the same, not wait for a
    // listener event that never comes. The last one queued is answered: served, or told
    // SERVER_BUSY when the dead connections queued ahead of it (accepted, their end not yet
    // read) still fill the connection limit at that moment; that race is the kernel's order,
    // and either answer proves it was accepted. A stall would be a timeout here.
    let mut last = flood.pop().unwrap();
    drop(flood);
    drop(admin);
    last.set_timeout(Duration::from_secs(10));
    match last.login("admin", &pw, "t", "p") {
        Ok(LoginOutcome::Success(_)) => {}
        Err(sessiond::client::ClientError::Server {
            failure,
            fatal: true,
        }) if failure.code == sessiond::protocol::ErrorCode::ServerBusy => {}
        other => panic!("a queued connection was never answered: {other:?}"),
    }
    drop(last);
    // And once the dead ones are read, a new connection is served (bounded retries: the
    // refused ones linger a moment).
    let served = (0..30).any(|_| {
        let mut c = first.client();
        c.set_timeout(Duration::from_secs(5));
        let ok = matches!(
            c.login("admin", &pw, "t", "p"),
            Ok(LoginOutcome::Success(_))
        );
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(served, "no connection served after the flood ended");
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_binary_serves_tls_with_a_certificate_from_files() {
    use common::pki::Pki;
    use sessiond::client::Client;
    use sessiond::tls::{client_config, Trust};
    use std::time::Duration;
    let pki = Pki::new("bin");
    let dir = fresh_dir("bin-tls");
    let (cert, key) = (pki.path("cert.pem"), pki.path("key.pem"));
    let first = Running::start_with(
        &dir,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let pw = first.password.clone().unwrap();
    let trust = client_config(&Trust::CaFile(pki.path("ca.pem"))).unwrap();
    let mut c = Client::connect_tls(
        first.addr.as_str(),
        "localhost",
        trust,
        Duration::from_secs(5),
    )
    .unwrap();
    assert!(matches!(
        c.login("admin", &pw, "t", "p").unwrap(),
        LoginOutcome::Success(_)
    ));
    c.heartbeat().unwrap();
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}

/// How `token` resumes on `server`: None when valid, else SESSION_INVALID's reason.
fn resumes(server: &Running, token: &sessiond::protocol::Token) -> Option<InvalidReason> {
    let mut c = server.client();
    match c.resume(token, "t", "p").unwrap() {
        ResumeOutcome::Valid(_) => None,
        ResumeOutcome::Invalid(i) => Some(i.reason),
        other => panic!("{other:?}"),
    }
}

/// Whether `user` logs in with `password`.
fn logs_in(server: &Running, user: &str, password: &str) -> bool {
    let mut c = server.client();
    match c.login(user, password, "t", "p").unwrap() {
        LoginOutcome::Success(_) => true,
        LoginOutcome::Failure(_) => false,
    }
}

#[test]
fn user_passwd_sets_a_password_offline_and_the_old_sessions_are_dead_after_a_restart() {
    let dir = fresh_dir("bin-passwd");
    let d = dir.to_str().unwrap();
    // several sessions per account: no token below dies of a newer login
    let first = Running::start_with(&dir, &["--max-sessions-per-user", "0"]);
    let admin_pw = first.password.clone().unwrap();
    let mut r = first.client();
    assert!(matches!(
        r.register("dana", "dana's first", "dana@example.org")
            .unwrap(),
        RegisterOutcome::Success(_)
    ));
    let (_c, dana) = first.login("dana", "dana's first");
    let (_c2, admin) = first.login("admin", &admin_pw);
    // beside a live server: refused, nothing changed
    let (code, out, err) = sessiond(&["user", "passwd", "dana", "--data-dir", d], "");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(err.contains("in use by another sessiond"), "{err}");
    assert!(!out.contains("password"), "{out}");
    assert!(logs_in(&first, "dana", "dana's first"));
    drop(first);

    let args = [
        "user",
        "passwd",
        "dana",
        "--password-stdin",
        "--iterations",
        "1000",
        "--data-dir",
        d,
    ];
    let (code, out, err) = sessiond(&args, "7 bytes\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(err.contains("at least 8 bytes"), "{err}");
    assert!(
        !err.contains("7 bytes\n") && !out.contains("7 bytes"),
        "{out}{err}"
    );
    // (dana has two live sessions: the one above and the one `logs_in` left detached)
    let (code, out, err) = sessiond(&args, "dana's second\n");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "dana: password set; 2 live session(s) ended");
    // a generated one is printed once
    let args = [
        "user",
        "passwd",
        "admin",
        "--iterations",
        "1000",
        "--data-dir",
        d,
    ];
    let (code, out, err) = sessiond(&args, "");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("admin: password set; "), "{out}");
    let new_admin_pw = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("generated password printed")
        .to_owned();
    assert_eq!(new_admin_pw.len(), 20);
    let (code, _, err) = sessiond(&["user", "passwd", "nobody", "--data-dir", d], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("no user nobody"), "{err}");

    let second = Running::start(&dir);
    assert_eq!(resumes(&second, &dana.token), Some(InvalidReason::Revoked));
    assert_eq!(resumes(&second, &admin.token), Some(InvalidReason::Revoked));
    assert!(!logs_in(&second, "dana", "dana's first"));
    assert!(logs_in(&second, "dana", "dana's second"));
    assert!(!logs_in(&second, "admin", &admin_pw));
    assert!(logs_in(&second, "admin", &new_admin_pw));
    drop(second);
    // audited as the server would: the reset, then each revocation (PASSWORD_RESET)
    let (_, out, _) = sessiond(&["audit", "--user", "dana", "--data-dir", d], "");
    let kinds: Vec<(&str, &str)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[3], w[4])
        })
        .filter(|(k, _)| ["password_reset", "revoked"].contains(k))
        .collect();
    assert_eq!(
        kinds,
        [
            ("password_reset", "-"),
            ("revoked", "PASSWORD_RESET"),
            ("revoked", "PASSWORD_RESET")
        ],
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_delete_removes_the_account_for_good_and_frees_its_name() {
    let dir = fresh_dir("bin-delete");
    let d = dir.to_str().unwrap();
    // a small snapshot limit: the journal is compacted on the way, and the deleted
    // account's id must not come back with the snapshot
    let snap = ["--snapshot-kb", "1"];
    let first = Running::start_with(&dir, &snap);
    let admin_pw = first.password.clone().unwrap();
    let mut r = first.client();
    let RegisterOutcome::Success(old) = r.register("dana", "dana's pass", "d@x.org").unwrap()
    else {
        panic!("registration refused")
    };
    let (_c, dana) = first.login("dana", "dana's pass");
    let (code, _, err) = sessiond(&["user", "delete", "dana", "--yes", "--data-dir", d], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("in use by another sessiond"), "{err}");
    drop(first);

    // no --yes: says what it would do, changes nothing
    let (code, out, err) = sessiond(&["user", "delete", "dana", "--data-dir", d], "");
    assert_eq!(code, Some(1), "{out}");
    assert!(err.contains("would delete dana"), "{err}");
    assert!(err.contains("--yes"), "{err}");
    // the last administrator stays, --yes or not
    let (code, _, err) = sessiond(&["user", "delete", "admin", "--yes", "--data-dir", d], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("last administrator"), "{err}");
    let (code, out, err) = sessiond(&["user", "delete", "dana", "--yes", "--data-dir", d], "");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        format!(
            "deleted user dana (id {}, role user); 1 live session(s) ended",
            old.user_id
        )
    );
    let (_, out, _) = sessiond(&["user", "list", "--data-dir", d], "");
    assert!(!out.contains("dana"), "{out}");

    let second = Running::start_with(&dir, &snap);
    assert_eq!(resumes(&second, &dana.token), Some(InvalidReason::Revoked));
    assert!(!logs_in(&second, "dana", "dana's pass"));
    // compaction: logins until the journal has been folded into a snapshot
    let journal = dir.join(sessiond::store::JOURNAL_FILE);
    let snapshot = dir.join(sessiond::store::SNAPSHOT_FILE);
    let before = std::fs::metadata(&journal).unwrap().len();
    for _ in 0..40 {
        if snapshot.exists() && std::fs::metadata(&journal).unwrap().len() < before {
            break;
        }
        assert!(logs_in(&second, "admin", &admin_pw));
    }
    assert!(snapshot.exists(), "no snapshot written");
    drop(second);

    let third = Running::start(&dir);
    let mut r = third.client();
    let RegisterOutcome::Success(new) = r.register("dana", "another dana", "e@x.org").unwrap()
    else {
        panic!("the name is not free again")
    };
    assert!(
        new.user_id > old.user_id,
        "id {} given out again",
        new.user_id
    );
    assert!(logs_in(&third, "dana", "another dana"));
    assert!(!logs_in(&third, "dana", "dana's pass"));
    drop(third);
    // the audit trail keeps the deleted account's records, under its name
    let (_, out, _) = sessiond(&["audit", "--kind", "user_deleted", "--data-dir", d], "");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].contains("dana (user) deleted by operator"), "{out}");
    // `--user dana`: the records of both accounts that bore the name
    let (_, out, _) = sessiond(&["audit", "--user", "dana", "--data-dir", d], "");
    let kinds: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|&&k| k == "registered").count(),
        2,
        "{out}"
    );
    assert!(kinds.contains(&"user_deleted"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `sessiond` run with stdin piped (for `--admin-password-file -`), its stdout read
/// until it listens; killed on drop.
struct Piped {
    child: std::process::Child,
    addr: String,
    printed: Vec<String>,
}

impl Piped {
    fn start(dir: &std::path::Path, extra: &[&str], stdin: &str) -> Piped {
        use std::io::{BufRead, BufReader, Write};
        use std::process::Stdio;
        let child = common::process::server_command(dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // killed and reaped on drop from here on, whatever fails below
        let mut p = Piped {
            child,
            addr: String::new(),
            printed: Vec::new(),
        };
        let mut input = p.child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = p.child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("sessiond did not start; printed {:?}", p.printed));
            if let Some(a) = line.strip_prefix("sessiond: listening on ") {
                p.addr = a.split_whitespace().next().unwrap().to_owned();
                return p;
            }
            p.printed.push(line);
        }
    }

    /// Stops it and returns what it wrote to stderr (the log).
    fn stop(mut self) -> String {
        use std::io::Read;
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut log);
        }
        log
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_first_administrator_takes_its_password_from_a_file_or_stdin_and_nothing_is_printed() {
    use sessiond::client::Client;
    use std::time::Duration;
    let login = |addr: &str, pw: &str| {
        let mut c = Client::connect(addr, Duration::from_secs(5)).unwrap();
        matches!(
            c.login("admin", pw, "t", "p").unwrap(),
            LoginOutcome::Success(_)
        )
    };
    // from a file
    let dir = fresh_dir("bin-pwfile");
    let file = fresh_dir("bin-pwfile-secret");
    std::fs::write(&file, "the file's admin pw\n").unwrap();
    let f = file.to_str().unwrap();
    let s = Piped::start(&dir, &["--admin-password-file", f], "");
    assert_eq!(
        s.printed,
        [format!(
            "sessiond: first start, created the administrator account admin with the \
             password from {f}"
        )]
    );
    assert!(login(&s.addr, "the file's admin pw"));
    let log = s.stop();
    assert!(!log.contains("the file's admin pw"), "{log}");
    // a later start with the file: the account is not touched
    std::fs::write(&file, "another password\n").unwrap();
    let s = Piped::start(&dir, &["--admin-password-file", f], "");
    assert!(s.printed.is_empty(), "{:?}", s.printed);
    assert!(login(&s.addr, "the file's admin pw"));
    assert!(!login(&s.addr, "another password"));
    let log = s.stop();
    assert!(!log.contains("another password"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);

    // from stdin
    let dir = fresh_dir("bin-pwstdin");
    let s = Piped::start(&dir, &["--admin-password-file", "-"], "typed on stdin\n");
    assert_eq!(
        s.printed,
        [
            "sessiond: first start, created the administrator account admin with the password \
          from stdin"
        ]
    );
    assert!(login(&s.addr, "typed on stdin"));
    let log = s.stop();
    assert!(!log.contains("typed on stdin"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);

    // unreadable, or too short: refused before the data directory is touched
    let dir = fresh_dir("bin-pwbad");
    std::fs::write(&file, "short\n").unwrap();
    for (path, why) in [
        ("/nonexistent/sessiond-admin-pw", "No such file"),
        (f, "at least 8 bytes"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sessiond"))
            .args(["--listen", "127.0.0.1:0", "--admin-password-file", path])
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("--admin-password-file {path}")),
            "{err}"
        );
        assert!(err.contains(why), "{err}");
        assert!(!err.contains("short"), "the content is never shown: {err}");
        assert!(out.stdout.is_empty());
        assert!(!dir.exists(), "the data directory was created");
    }
    let _ = std::fs::remove_file(&file);
}
