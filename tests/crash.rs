//! Crash safety of the journal, end to end: a real `sessiond` process is killed with
//! SIGKILL at pseudo-random moments while a client registers users and logs them in;
//! after every restart each registration and login the client saw acknowledged must still
//! be there (the user can log in, the token resumes). The journal is compacted every few
//! KiB, so kills also land in the middle of snapshots. Bounded: 20 rounds by default, each
//! a fraction of a second; `SESSIOND_CRASH_ROUNDS=200 cargo test --test crash -- --nocapture`
//! is the long mode (the README's "Crash tests").
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{fresh_dir, Running};
use sessiond::client::{Client, LoginOutcome, RegisterOutcome, ResumeOutcome};
use sessiond::protocol::Token;

/// Rounds in the default suite; `SESSIOND_CRASH_ROUNDS` sets another number.
const ROUNDS: u64 = 20;

fn rounds() -> u64 {
    std::env::var("SESSIOND_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS)
}

/// What the client saw acknowledged: (username, password, token of its login if any).
type Acked = Arc<Mutex<Vec<(String, String, Option<Token>)>>>;

fn work(addr: String, round: u64, acked: Acked) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for i in 0..1000 {
        if Instant::now() > deadline {
            return;
        }
        let Ok(mut c) = Client::connect(addr.as_str(), Duration::from_secs(2)) else {
            return;
        };
        let name = format!("u{round}x{i}");
        let pw = format!("password {round}/{i}");
        match c.register(&name, &pw, "x@example.org") {
            Ok(RegisterOutcome::Success(_)) => {
                acked.lock().unwrap().push((name.clone(), pw.clone(), None))
            }
            _ => return,
        }
        match c.login(&name, &pw, "crash", "test") {
            Ok(LoginOutcome::Success(s)) => {
                let mut a = acked.lock().unwrap();
                if let Some(entry) = a.iter_mut().find(|e| e.0 == name) {
                    entry.2 = Some(s.token);
                }
            }
            _ => return,
        }
    }
}

#[test]
fn acknowledged_registrations_and_logins_survive_kill_9() {
    let dir = fresh_dir("crash");
    let acked: Acked = Arc::new(Mutex::new(Vec::new()));
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut checked = 0;
    let rounds = rounds();
    for round in 0..rounds {
        // (the address throttle opened: every round logs in again every user whose own
        // login was not acknowledged)
        let flags = [
            "--snapshot-kb",
            "4",
            "--login-burst",
            "100000",
            "--login-rate",
            "100000",
        ];
        let mut server = Running::start_with(&dir, &flags);
        let addr = server.addr.clone();
        // everything acknowledged before earlier kills is here
        for (name, pw, token) in acked.lock().unwrap().iter() {
            let mut c = Client::connect(addr.as_str(), Duration::from_secs(5)).unwrap();
            if let Some(t) = token {
                match c.resume(t, "crash", "test").unwrap() {
                    ResumeOutcome::Valid(s) => assert_eq!(&s.username, name),
                    other => panic!("round {round}: session of {name} lost: {other:?}"),
                }
            } else {
                match c.login(name, pw, "crash", "test").unwrap() {
                    LoginOutcome::Success(_) => {}
                    other => panic!("round {round}: user {name} lost: {other:?}"),
                }
            }
            checked += 1;
        }
        let worker = {
            let (addr, acked) = (addr.clone(), acked.clone());
            std::thread::spawn(move || work(addr, round, acked))
        };
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(30 + rng % 150));
        server.child.kill().unwrap(); // SIGKILL: no shutdown path runs
        server.child.wait().unwrap();
        worker.join().unwrap();
    }
    let acked = acked.lock().unwrap().len();
    let archived =
        std::fs::read_dir(dir.join(sessiond::store::ARCHIVE_DIR)).map_or(0, |d| d.count());
    eprintln!(
        "{rounds} kills: {acked} acknowledged registrations (with their logins), {checked} \
         checks after restarts, 0 lost; {archived} snapshots taken"
    );
    assert!(archived > 0, "no kill could land near a snapshot");
    assert!(checked > 0, "no acknowledged work was ever checked");
    let _ = std::fs::remove_dir_all(&dir);
}
