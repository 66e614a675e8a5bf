//! systemd's notify protocol (issue 19, point 3), captured on a Unix datagram socket named
//! by NOTIFY_SOCKET: READY=1 once listening, WATCHDOG=1 while the loop runs,
//! RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1 at shutdown; and the example unit
//! file asks for what the server does.

#![allow(clippy::disallowed_methods)] // a real server in real time, every wait bounded

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use common::live::Live;
use common::process::fresh_dir;

const LIMIT: Duration = Duration::from_secs(20);

/// Notices until one contains `what` (bounded); all of them.
fn until(sock: &UnixDatagram, what: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + LIMIT;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.contains(what);
            seen.push(msg);
            if done {
                return;
            }
        }
    }
    panic!("no {what:?} within {LIMIT:?}; got {seen:?}");
}

#[test]
fn the_server_tells_systemd_ready_watchdog_reloading_and_stopping() {
    let dir = fresh_dir("systemd");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut cmd = common::process::server_command(&dir.join("data"));
    cmd.env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID");
    let server = Live::spawn(&mut cmd);
    let mut seen = Vec::new();
    until(&sock, "READY=1", &mut seen);
    let ready = seen.last().unwrap().clone();
    let out = server.wait_for("sessiond: listening on ", LIMIT);
    let addr = out
        .lines()
        .find_map(|l| l.strip_prefix("sessiond: listening on "))
        .unwrap()
        .to_owned();
    assert!(
        ready.contains(&format!("STATUS=listening on {addr}")),
        "{ready}"
    );
    // the watchdog, at half of WATCHDOG_USEC: several within a second
    let t = Instant::now();
    let mut pings = Vec::new();
    for _ in 0..3 {
        until(&sock, "WATCHDOG=1", &mut pings);
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{pings:?}");
    // SIGHUP: RELOADING=1 with the monotonic time, then READY=1
    let kill = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &server.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    kill("-HUP");
    let mut reload = Vec::new();
    until(&sock, "RELOADING=1", &mut reload);
    assert!(
        reload.last().unwrap().contains("MONOTONIC_USEC="),
        "{reload:?}"
    );
    until(&sock, "READY=1", &mut reload);
    kill("-TERM");
    let mut stop = Vec::new();
    until(&sock, "STOPPING=1", &mut stop);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_example_unit_is_a_notify_service_that_reloads_with_sighup() {
    let unit = include_str!("../examples/sessiond.service");
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "--config /etc/sessiond/sessiond.toml",
    ] {
        assert!(unit.contains(line), "the unit lacks {line}");
    }
    // every option it passes is one the binary takes
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    let parsed = sessiond::cli::parse(
        args.iter()
            .map(|a| a.replace("/etc/sessiond/sessiond.toml", "examples/sessiond.toml")),
    );
    assert!(parsed.is_ok(), "{exec}: {:?}", parsed.err());
}
