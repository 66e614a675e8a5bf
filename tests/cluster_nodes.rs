//! Several `sessiond --cluster` nodes serving one PostgreSQL at once (started by the test
//! itself, `common::pg`): accounts made on one node log in on another; a login on one node
//! revokes the account's connection on another, which is told before the new login
//! succeeds; a session resumes on another node, and a second resume of a session in use
//! elsewhere is refused; an administrator's force logout and suspension reach every node; 1,000 logins
//! racing over three nodes never leave two working sessions of one account; a node killed
//! with -9 leaves its sessions resumable elsewhere after its lease; nodes share one port
//! with `--reuse-port`; two nodes ride out PostgreSQL going away and coming back.
//!
//! Without PostgreSQL installed the tests say so and pass, unless
//! `SESSIOND_REQUIRE_POSTGRES=1` (as `.ci/run` sets), which makes them fail.
#![allow(clippy::disallowed_methods)] // real servers in real time

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pg::Pg;
use common::process::Running;
use sessiond::client::{Client, ClientError, LoginOutcome, RegisterOutcome, ResumeOutcome};
use sessiond::protocol::{Message, RevokeReason};

const PW: &str = "cluster-password-1";

/// `n` nodes named a, b, c, ... on `pg`, each with its own port, a 2 s lease and one
/// session per account.
fn nodes(pg: &Pg, n: usize, extra: &[&str]) -> Vec<Running> {
    (0..n)
        .map(|i| {
            let name = ((b'a' + i as u8) as char).to_string();
            pg.node(&name, "2s", extra).0
        })
        .collect()
}

fn register_on(node: &Running, name: &str) {
    let mut c = node.client();
    match c.register(name, PW, &format!("{name}@example.org")) {
        Ok(RegisterOutcome::Success(_)) => {}
        other => panic!("registering {name}: {other:?}"),
    }
}

/// A login of `user` on `node`: the client and when the success arrived.
fn login_at(node: &Running, user: &str, device: &str) -> (Client, Instant) {
    let mut c = node.client();
    match c.login(user, PW, device, "test").expect("login answered") {
        LoginOutcome::Success(_) => (c, Instant::now()),
        other => panic!("login of {user} on {}: {other:?}", node.addr),
    }
}

/// Waits (bounded) on `c` for SESSION_REVOKED; its reason, device and arrival.
fn revoked(c: &mut Client) -> (RevokeReason, String, Instant) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match c.recv(Duration::from_secs(1)) {
            Ok(f) => {
                if let Message::SessionRevoked(r) = f.message {
                    return (r.reason, r.by_client, Instant::now());
                }
            }
            Err(ClientError::Timeout) => {}
            Err(e) => panic!("closed without SESSION_REVOKED: {e}"),
        }
    }
    panic!("no SESSION_REVOKED within 10 s");
}

#[test]
fn a_login_on_one_node_revokes_the_connection_on_another_before_it_succeeds() {
    let Some(pg) = Pg::start_or_skip("nodes-takeover") else {
        return;
    };
    let n = nodes(&pg, 3, &[]);
    // Made on a: known on every node at once (REGISTER_SUCCESS waits for them).
    register_on(&n[0], "alice");
    let (mut old, _) = login_at(&n[0], "alice", "phone");
    for (i, node) in n.iter().enumerate().skip(1).chain([(0, &n[0])]) {
        let device = format!("device-{i}");
        let watcher = std::thread::spawn(move || {
            let r = revoked(&mut old);
            (r, old)
        });
        // The old connection reads while the new login is made on another node.
        std::thread::sleep(Duration::from_millis(100));
        let (new, succeeded) = login_at(node, "alice", &device);
        let ((reason, by, told), mut gone) = watcher.join().unwrap();
        assert_eq!(reason, RevokeReason::NewLogin);
        assert_eq!(by, device, "SESSION_REVOKED names the new device");
        assert!(
            told <= succeeded,
            "the old connection was told {:?} after the new login succeeded",
            told - succeeded
        );
        assert!(gone.heartbeat().is_err(), "the old connection still works");
        old = new;
    }
    // One working session, on the last node.
    old.heartbeat().expect("the newest session works");
}

#[test]
fn a_session_resumes_on_another_node_and_a_duplicate_across_nodes_is_refused() {
    let Some(pg) = Pg::start_or_skip("nodes-resume") else {
        return;
    };
    let n = nodes(&pg, 2, &[]);
    register_on(&n[0], "bob");
    let (mut c, _) = login_at(&n[0], "bob", "laptop");
    let token = c.token().unwrap().clone();
    // In use on a: a resume on b is refused (DUPLICATE_SESSION, the default policy).
    let mut d = n[1].client();
    match d.resume(&token, "laptop", "test").unwrap() {
        ResumeOutcome::Duplicate(_) => {}
        other => panic!("a duplicate across nodes: {other:?}"),
    }
    c.heartbeat().expect("the first connection keeps working");
    // Detached on a (a graceful disconnect): resumable on b.
    c.disconnect().unwrap();
    let t = Instant::now();
    loop {
        let mut e = n[1].client();
        match e.resume(&token, "laptop", "test").unwrap() {
            ResumeOutcome::Valid(info) => {
                assert_eq!(info.username, "bob");
                e.heartbeat().expect("resumed on b");
                break;
            }
            // The detach is read from the log a moment later.
            ResumeOutcome::Duplicate(_) => {
                assert!(t.elapsed() < Duration::from_secs(5), "never detached on b");
            }
            other => panic!("resume on b: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_administrators_force_logout_and_suspension_reach_every_node() {
    let Some(pg) = Pg::start_or_skip("nodes-admin") else {
        return;
    };
    let n = nodes(&pg, 3, &["--max-sessions-per-user", "0"]);
    let admin_pw = n[0]
        .password
        .clone()
        .expect("the first node made the admin");
    register_on(&n[1], "carol");
    let mut held: Vec<Client> = n
        .iter()
        .map(|node| login_at(node, "carol", "x").0)
        .collect();
    let mut admin = n[2].client();
    match admin.login("admin", &admin_pw, "console", "test").unwrap() {
        LoginOutcome::Success(_) => {}
        other => panic!("admin login: {other:?}"),
    }
    let ended = admin.admin_logout_user("carol").unwrap();
    assert_eq!(ended, 3, "every node's session ended");
    for c in &mut held {
        let (reason, by, _) = revoked(c);
        assert_eq!(reason, RevokeReason::ByAdmin);
        assert_eq!(by, "console");
    }
    // A suspension reaches every node the same way, and no node lets the account in.
    let mut held: Vec<Client> = n
        .iter()
        .map(|node| login_at(node, "carol", "y").0)
        .collect();
    assert_eq!(admin.admin_suspend_user("carol").unwrap(), 3);
    for c in &mut held {
        assert_eq!(revoked(c).0, RevokeReason::AccountSuspended);
    }
    for node in &n {
        let mut c = node.client();
        match c.login("carol", PW, "z", "test").unwrap() {
            LoginOutcome::Failure(f) => {
                assert_eq!(f.reason, sessiond::protocol::LoginFailureReason::Suspended)
            }
            other => panic!("a suspended account logged in on {}: {other:?}", node.addr),
        }
    }
}

/// 1,000 logins of four accounts from twelve threads over three nodes: after each
/// success, every connection of the account whose login succeeded earlier is probed with a
/// heartbeat, and at most one of them may answer.
#[test]
fn racing_logins_over_three_nodes_never_leave_two_working_sessions() {
    let Some(pg) = Pg::start_or_skip("nodes-race") else {
        return;
    };
    let n = nodes(&pg, 3, &[]);
    let addrs: Arc<Vec<String>> = Arc::new(n.iter().map(|r| r.addr.clone()).collect());
    const ACCOUNTS: usize = 4;
    const THREADS: usize = 12;
    const PER_THREAD: usize = 84; // 1,008 in all
    for a in 0..ACCOUNTS {
        register_on(&n[a % 3], &format!("racer{a}"));
    }
    // Per account: the clients whose login succeeded, probed under the account's lock.
    let held: Arc<Vec<Mutex<Vec<Client>>>> =
        Arc::new((0..ACCOUNTS).map(|_| Mutex::new(Vec::new())).collect());
    let started = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (addrs, held) = (addrs.clone(), held.clone());
            std::thread::spawn(move || {
                let mut worst = 0;
                for i in 0..PER_THREAD {
                    assert!(started.elapsed() < Duration::from_secs(120), "too slow");
                    let account = (t + i) % ACCOUNTS;
                    let addr = addrs[(t * 7 + i) % 3].as_str();
                    let mut c = Client::connect(addr, Duration::from_secs(5)).expect("connect");
                    let name = format!("racer{account}");
                    match c.login(&name, PW, &format!("t{t}-{i}"), "race") {
                        Ok(LoginOutcome::Success(_)) => {}
                        other => panic!("login: {other:?}"),
                    }
                    let mut list = held[account].lock().unwrap();
                    list.push(c);
                    let mut working = 0;
                    list.retain_mut(|c| {
                        let ok = c.heartbeat().is_ok();
                        working += usize::from(ok);
                        ok
                    });
                    worst = worst.max(working);
                    assert!(working <= 1, "{working} working sessions of {name} at once");
                }
                worst
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a racing thread failed");
    }
    // In the end: one live session per account in the database's view too.
    let mut admin_pw = None;
    for node in n.iter() {
        admin_pw = admin_pw.or(node.password.clone());
    }
    let mut admin = n[0].client();
    match admin
        .login("admin", admin_pw.as_deref().unwrap(), "console", "test")
        .unwrap()
    {
        LoginOutcome::Success(_) => {}
        other => panic!("admin login: {other:?}"),
    }
    for a in 0..ACCOUNTS {
        let list = admin
            .admin_list_sessions(&format!("racer{a}"), 0, 100)
            .unwrap();
        assert!(
            list.sessions.len() <= 1,
            "racer{a} has {} live sessions",
            list.sessions.len()
        );
    }
}

/// Two nodes on one port (`--reuse-port`); the one holding a session is killed with -9:
/// after its lease the session resumes on the other, on the same address.
#[test]
fn a_killed_nodes_sessions_resume_on_another_after_its_lease() {
    let Some(pg) = Pg::start_or_skip("nodes-kill") else {
        return;
    };
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let shared = ["--reuse-port", "--listen", addr.as_str()];
    let (mut a, _da) = pg.node("a", "1s", &shared);
    // Made while a listens alone, so this connection is a's.
    register_on(&a, "dave");
    let (held, _) = login_at(&a, "dave", "t");
    let token = held.token().unwrap().clone();
    let (b, _db) = pg.node("b", "1s", &shared);
    assert_eq!(a.addr, b.addr, "one address for both");

    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = Instant::now();
    loop {
        let mut c = b.client();
        match c.resume(&token, "t", "test") {
            Ok(ResumeOutcome::Valid(info)) => {
                assert_eq!(info.username, "dave");
                c.heartbeat().expect("resumed on the other node");
                break;
            }
            // Bound on a until its lease (and half a lease of grace) has run out.
            Ok(ResumeOutcome::Duplicate(_)) | Err(_) => {
                assert!(
                    killed.elapsed() < Duration::from_secs(8),
                    "not resumable after {:?}",
                    killed.elapsed()
                );
            }
            Ok(other) => panic!("resume after the kill: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        killed.elapsed() >= Duration::from_millis(900),
        "taken over before the dead node's lease ran out: {:?}",
        killed.elapsed()
    );
}

/// PostgreSQL stopped under two nodes and started again: heartbeats answered on both
/// throughout, logins refused with STORAGE_UNAVAILABLE, then served again on both, and a
/// takeover across the nodes works again. Leases longer than the outage.
#[test]
fn two_nodes_ride_out_the_database_going_away() {
    use sessiond::protocol::LoginFailureReason;
    let Some(pg) = Pg::start_or_skip("nodes-away") else {
        return;
    };
    let n: Vec<Running> = ["a", "b"]
        .iter()
        .map(|name| pg.node(name, "60s", &["--max-sessions-per-user", "0"]).0)
        .collect();
    register_on(&n[0], "erin");
    register_on(&n[1], "fred");
    let mut held: Vec<Client> = n.iter().map(|node| login_at(node, "erin", "x").0).collect();
    pg.stop_server();
    pg.wait_until(false, Duration::from_secs(10));
    let t = Instant::now();
    let mut refused = [false, false];
    while refused != [true, true] {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "logins never refused"
        );
        for c in &mut held {
            c.heartbeat()
                .expect("heartbeats answered while the database is away");
        }
        for (i, node) in n.iter().enumerate() {
            let mut c = node.client();
            c.set_timeout(Duration::from_secs(2));
            if let Ok(LoginOutcome::Failure(f)) = c.login("fred", PW, "y", "test") {
                assert_eq!(f.reason, LoginFailureReason::StorageUnavailable);
                refused[i] = true;
            }
        }
    }
    pg.start_server().unwrap();
    let t = Instant::now();
    let mut served = [false, false];
    while served != [true, true] {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "logins never came back"
        );
        for c in &mut held {
            c.heartbeat().expect("heartbeats answered");
        }
        for (i, node) in n.iter().enumerate() {
            let mut c = node.client();
            c.set_timeout(Duration::from_secs(5));
            served[i] |= matches!(
                c.login("fred", PW, "y", "test"),
                Ok(LoginOutcome::Success(_))
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // The nodes follow each other again: an account made on b now logs in on a.
    register_on(&n[1], "gina");
    login_at(&n[0], "gina", "z");
}
