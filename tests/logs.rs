//! The log (issue 19, point 5): `--log-format json` writes one JSON object per line with
//! the message's fields; no line holds a password or a token; a flood of lines a peer can
//! cause is cut, with one line saying how many were dropped.

#![allow(clippy::disallowed_methods)] // a real server in real time, every wait bounded

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::live::Live;
use common::process::fresh_dir;
use sessiond::client::{Client, LoginOutcome, ResumeOutcome};

const LIMIT: Duration = Duration::from_secs(20);

fn start(dir: &std::path::Path, extra: &[&str]) -> (Live, String, String) {
    let mut cmd = common::process::server_command(dir);
    cmd.args(extra).env("RUST_LOG", "info");
    let server = Live::spawn(&mut cmd);
    let out = server.wait_for("sessiond: listening on ", LIMIT);
    let (addr, pw) = common::process::address_and_password(&out);
    (server, addr, pw)
}

/// Every line of `text` is one JSON object with exactly the documented keys (checked by
/// Python's json module, which the Python client's tests need anyway); the lines that
/// fail, as Python says them.
fn json_lines_failing(text: &str) -> String {
    let check = "import sys, json\n\
                 for l in sys.stdin:\n\
                 \x20   o = json.loads(l)\n\
                 \x20   assert list(o) == ['time', 'level', 'target', 'message', 'fields'], l\n\
                 \x20   assert all(isinstance(v, str) for v in o['fields'].values()), l\n";
    let mut child = Command::new("python3")
        .args(["-c", check])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        String::new()
    } else {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

#[test]
fn json_lines_carry_fields_and_never_a_secret() {
    let dir = fresh_dir("logs-json");
    let (server, addr, pw) = start(&dir, &["--log-format", "json"]);
    let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    let token = match c.login("admin", &pw, "cli", "linux").unwrap() {
        LoginOutcome::Success(s) => s.token,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        c.login("admin", "wrong password", "cli", "linux"),
        Err(_) | Ok(_)
    ));
    drop(c);
    let mut r = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
    assert!(matches!(
        r.resume(&token, "cli", "linux").unwrap(),
        ResumeOutcome::Valid(_)
    ));
    let err = server.wait_for_stderr("session resumed", 1, LIMIT);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 3, "{err}");
    assert_eq!(json_lines_failing(&err), "", "{err}");
    let login = lines
        .iter()
        .find(|l| l.contains("login ok"))
        .expect("the login's line");
    assert!(login.contains("\"fields\":{\"user\":\"admin\""), "{login}");
    assert!(!err.contains(&pw), "the password is in the log");
    assert!(!err.contains(&token.to_hex()), "the token is in the log");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lines of `target`'s refusals written, and the ones said to be dropped.
fn refusals(err: &str) -> (u64, u64) {
    let written = err.matches("connection refused").count() as u64;
    let dropped = err
        .lines()
        .filter(|l| l.contains("were not written") && l.contains("sessiond::engine"))
        .filter_map(|l| {
            l.split("] ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    (written, dropped)
}

#[test]
fn a_flood_of_refusals_is_cut_and_counted() {
    let dir = fresh_dir("logs-flood");
    let (server, addr, _) = start(&dir, &["--max-connections", "1"]);
    let _held = TcpStream::connect(&addr).unwrap();
    // 600 refusals, each of which would be a line, in bursts of 120 that the server takes
    // at once: it is stopped (SIGSTOP) while the kernel queues a burst's connections (its
    // listen backlog holds 128), then resumed; the burst's last connection getting its
    // answer says the server took them all. So a loaded machine cannot spread the flood
    // thinly over the log's one-second windows.
    let signal = |sig: &str| {
        let st = Command::new("kill")
            .args([sig, &server.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    let t0 = std::time::Instant::now();
    let mut flood: Vec<TcpStream> = Vec::new();
    for _ in 0..5 {
        signal("-STOP");
        flood.extend((0..120).map(|_| TcpStream::connect(&addr).unwrap()));
        signal("-CONT");
        let last = flood.last_mut().unwrap();
        last.set_read_timeout(Some(LIMIT)).unwrap();
        let mut answer = [0u8; 64];
        let _ = std::io::Read::read(last, &mut answer);
    }
    server.wait_for_stderr("connection refused", 100, LIMIT);
    drop(flood);
    // a window later, one more refusal: its line comes after the count of those dropped
    std::thread::sleep(Duration::from_millis(1200));
    let _late = TcpStream::connect(&addr).unwrap();
    let deadline = std::time::Instant::now() + LIMIT;
    let (written, dropped) = loop {
        let (w, d) = refusals(&server.output().1);
        if w + d >= 601 || std::time::Instant::now() > deadline {
            break (w, d);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let windows = t0.elapsed().as_secs() + 1;
    // every refusal is either written or counted, and at most 200 a second are written
    assert_eq!(written + dropped, 601, "{}", server.output().1);
    assert!(
        dropped > 0 && written <= 200 * windows,
        "{written} written, {dropped} dropped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
