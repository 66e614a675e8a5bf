//! `sessiond --cluster URL` against a real PostgreSQL that the test starts itself
//! (`common::pg`: initdb and pg_ctl in a temporary directory, on a free port), one node at
//! a time (several at once: `cluster_nodes.rs`): the schema created at first start,
//! accounts and sessions kept across a kill -9; a node whose lease ran out fenced, a node
//! cut off for a whole lease stopping by itself; the database
//! stopped and started again under a running node (a lease longer than the outage):
//! heartbeats answered throughout, writes refused with STORAGE_UNAVAILABLE, then served
//! again, and nothing that was acknowledged lost; the operator commands and check-config.
//!
//! Without PostgreSQL installed the tests say so and pass, unless
//! `SESSIOND_REQUIRE_POSTGRES=1` (as `.ci/run` sets), which makes them fail.
#![allow(clippy::disallowed_methods)] // real servers in real time

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::pg::Pg;
use common::process::{fresh_dir, sessiond, Running};
use sessiond::client::{Client, LoginOutcome, RegisterOutcome, ResumeOutcome};
use sessiond::protocol::{LoginFailureReason, RegisterFailureReason};

const PW: &str = "cluster-password-1";

/// A node with a one-second write lease (quick takeovers in these tests).
fn node(pg: &Pg, name: &str) -> (Running, std::path::PathBuf) {
    node_with(pg, name, "1s")
}

fn node_with(pg: &Pg, name: &str, lease: &str) -> (Running, std::path::PathBuf) {
    node_args(pg, name, lease, &[])
}

fn node_args(pg: &Pg, name: &str, lease: &str, extra: &[&str]) -> (Running, std::path::PathBuf) {
    let mut args = vec!["--max-sessions-per-user", "0"];
    args.extend_from_slice(extra);
    pg.node(name, lease, &args)
}

/// Registers `name` on a new connection to `node`, which must accept it.
fn register_on(node: &Running, name: &str) {
    let mut c = node.client();
    assert!(matches!(
        register(&mut c, name),
        RegisterOutcome::Success(_)
    ));
}

/// alice, registered and logged in on `node`.
fn alice_on(node: &Running) -> (Client, sessiond::protocol::LoginSuccess) {
    register_on(node, "alice");
    node.login("alice", PW)
}

fn register(c: &mut Client, name: &str) -> RegisterOutcome {
    c.register(name, PW, &format!("{name}@example.org"))
        .expect("register answered")
}

#[test]
fn a_node_keeps_accounts_and_sessions_in_postgresql_across_a_kill() {
    let Some(pg) = Pg::start_or_skip("keep") else {
        return;
    };
    let (mut a, dir) = node(&pg, "a");
    assert!(a.password.is_some(), "first start: an admin is created");
    let (_alice, s) = alice_on(&a);
    let token = s.token.clone();
    // kill -9: what was acknowledged is in the database.
    a.child.kill().unwrap();
    a.child.wait().unwrap();

    let (b, _dir_b) = node(&pg, "a");
    assert!(
        b.password.is_none(),
        "the cluster has accounts: no new admin"
    );
    // The killed process's session was connected there: in use until its lease (1 s, and
    // half a lease more) has run out, then resumable.
    let t = Instant::now();
    loop {
        let mut c = b.client();
        match c.resume(&token, "t", "p").unwrap() {
            ResumeOutcome::Valid(info) => {
                assert_eq!(info.username, "alice");
                break;
            }
            ResumeOutcome::Duplicate(_) if t.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => panic!("the session did not survive: {other:?}"),
        }
    }
    // The schema is versioned in the database.
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let v: i32 = db
        .query_one("SELECT version FROM sessiond_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, sessiond::store::cluster::SCHEMA_VERSION);
    let nodes: Vec<String> = db
        .query("SELECT DISTINCT node FROM sessiond_events", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(nodes, ["a"]);
    // check-config looks, changing nothing.
    let (code, text, _) = sessiond(
        &["check-config", "--cluster", &pg.url(), "--node-id", "c"],
        "",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "reachable, schema version {}; node c",
            sessiond::store::cluster::SCHEMA_VERSION
        )),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unreachable_database_is_a_clear_error_at_check_and_start() {
    // Port 1 on loopback: nothing listens (no PostgreSQL needed for this one).
    let url = "postgresql://postgres@127.0.0.1:1/postgres";
    for args in [
        vec!["check-config", "--cluster", url],
        vec!["--listen", "127.0.0.1:0", "--cluster", url],
    ] {
        let (code, out, err) = sessiond(&args, "");
        assert_ne!(code, Some(0), "{args:?}");
        let text = format!("{out}{err}");
        assert!(
            text.contains("cannot connect to the cluster database"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("password"), "{text}");
    }
}

#[test]
fn a_node_whose_lease_ran_out_commits_nothing_more_and_stops() {
    let Some(pg) = Pg::start_or_skip("fenced") else {
        return;
    };
    let (mut a, _dir) = node_with(&pg, "a", "30s");
    // Its lease ends on the database's clock (as after a partition the others saw as its
    // death): the others may have taken its sessions.
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    db.execute(
        "UPDATE sessiond_nodes SET lease_until = now() - interval '1 hour'",
        &[],
    )
    .unwrap();
    let before: i64 = db
        .query_one("SELECT head FROM sessiond_log", &[])
        .unwrap()
        .get(0);
    let mut c = a.client();
    c.set_timeout(Duration::from_secs(5));
    // The registration's commit is fenced: it is never acknowledged, and the node stops.
    assert!(
        !matches!(
            c.register("mallory", PW, "m@example.org"),
            Ok(RegisterOutcome::Success(_))
        ),
        "a fenced writer acknowledged a change"
    );
    let code = a.wait_exit(Duration::from_secs(10));
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}");
    let after: i64 = db
        .query_one("SELECT head FROM sessiond_log", &[])
        .unwrap()
        .get(0);
    assert_eq!(before, after, "a fenced writer wrote to the log");
}

#[test]
fn a_writer_cut_off_for_a_whole_lease_fences_itself_and_a_new_one_takes_over() {
    let Some(pg) = Pg::start_or_skip("cutoff") else {
        return;
    };
    let (mut a, _dir) = node(&pg, "a");
    let (_alice, _) = alice_on(&a);
    pg.stop_server();
    let t = Instant::now();
    let code = a.wait_exit(Duration::from_secs(15));
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    pg.start_server().unwrap();
    let (b, _dir_b) = node(&pg, "b");
    let (_alice, _) = b.login("alice", PW);
}

#[test]
fn the_database_away_and_back_heartbeats_go_on_and_nothing_acknowledged_is_lost() {
    let Some(pg) = Pg::start_or_skip("away") else {
        return;
    };
    // A lease longer than the outage: the node keeps serving through it.
    let (a, dir) = node_with(&pg, "a", "60s");
    let (mut alice, _) = alice_on(&a);
    let mut acknowledged = vec!["alice".to_owned()];
    let mut reg = a.client();
    for i in 0..5 {
        let name = format!("before{i}");
        if let RegisterOutcome::Success(_) = register(&mut reg, &name) {
            acknowledged.push(name);
        }
    }

    pg.stop_server();
    pg.wait_until(false, Duration::from_secs(10));
    // Writes are refused once the node has seen a commit fail; heartbeats go on.
    let t = Instant::now();
    let mut refused = false;
    let mut i = 0;
    while !refused {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "logins were never refused"
        );
        alice
            .heartbeat()
            .expect("heartbeats answered while the database is away");
        let name = format!("during{i}");
        i += 1;
        let mut c = a.client();
        c.set_timeout(Duration::from_secs(2));
        match c.register(&name, PW, &format!("{name}@example.org")) {
            Ok(RegisterOutcome::Failure(f)) => {
                assert_eq!(f.reason, RegisterFailureReason::StorageUnavailable);
            }
            // Acknowledged only once durable: it counts (and must survive).
            Ok(RegisterOutcome::Success(_)) => acknowledged.push(name),
            // Held while its commit waits for the database: not acknowledged.
            Err(_) => {}
        }
        // (Not alice: a login held for its commit would hold the NEW_LOGIN push to alice's
        // connection with it, and her heartbeats behind that.)
        let mut c = a.client();
        c.set_timeout(Duration::from_secs(2));
        match c.login("before0", PW, "t", "p") {
            Ok(LoginOutcome::Failure(f)) => {
                assert_eq!(f.reason, LoginFailureReason::StorageUnavailable);
                refused = true;
            }
            // The first one may wait for the commit that finds the database away.
            Ok(LoginOutcome::Success(_)) | Err(_) => {}
        }
    }
    for _ in 0..5 {
        alice
            .heartbeat()
            .expect("heartbeats answered while the database is away");
        std::thread::sleep(Duration::from_millis(100));
    }

    pg.start_server().unwrap();
    // The node comes back by itself: a registration goes through again.
    let t = Instant::now();
    loop {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "writes never came back"
        );
        alice.heartbeat().expect("heartbeats answered");
        let mut c = a.client();
        if let RegisterOutcome::Success(_) = register(&mut c, "after") {
            acknowledged.push("after".into());
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(alice);
    // A graceful stop gives the lease up: the next node need not wait it out.
    let mut a = a;
    let _ = Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status();
    assert_eq!(a.wait_exit(Duration::from_secs(10)), Some(0));

    // A new node reads everything acknowledged back from the database.
    let (b, _dir_b) = node(&pg, "a");
    for name in &acknowledged {
        let mut c = b.client();
        match c.login(name, PW, "t", "p").unwrap() {
            LoginOutcome::Success(_) => {}
            other => panic!("{name} was acknowledged but is gone: {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `sessiond user ...` and `sessiond audit` with `--cluster`: changes before a node starts
/// and beside running ones (which read them from the log), the audit read any time.
#[test]
fn operator_commands_work_against_the_cluster() {
    let Some(pg) = Pg::start_or_skip("ops") else {
        return;
    };
    let url = pg.url();
    let ops = |args: &[&str], stdin: &str| {
        let args: Vec<&str> = args.iter().copied().chain(["--cluster", &url]).collect();
        sessiond(&args, stdin)
    };
    let (code, _, err) = ops(
        &[
            "user",
            "add",
            "bob",
            "--password-stdin",
            "--iterations",
            "1000",
        ],
        "bob-password-1\n",
    );
    assert_eq!(code, Some(0), "{err}");
    let (a, dir) = node(&pg, "a");
    assert!(
        a.password.is_none(),
        "the cluster has an account: no admin made"
    );
    let (_bob, _) = a.login("bob", "bob-password-1");
    // Beside a running node: the command writes to the log like a node, and the node
    // reads it (its account name and id given out by the database).
    let (code, _, err) = ops(
        &[
            "user",
            "add",
            "carol",
            "--password-stdin",
            "--iterations",
            "1000",
        ],
        "carol-password-1\n",
    );
    assert_eq!(code, Some(0), "{err}");
    let t = Instant::now();
    loop {
        let mut c = a.client();
        match c.login("carol", "carol-password-1", "t", "p").unwrap() {
            LoginOutcome::Success(_) => break,
            other => assert!(
                t.elapsed() < Duration::from_secs(5),
                "the node never saw carol: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // A name the cluster has is refused, whoever made it.
    let (code, _, err) = ops(
        &["user", "add", "carol", "--password-stdin"],
        "x-password-1\n",
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("carol exists"), "{err}");
    // The audit trail reads beside it.
    let (code, text, err) = ops(&["audit", "--user", "bob"], "");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("user_created") && text.contains("session_created"),
        "{text}"
    );
    drop(a);
    let (_, text, err) = ops(&["user", "list"], "");
    // (bob came first: the node made no admin of its own)
    assert!(
        text.contains("bob") && text.contains("carol") && !text.contains("admin"),
        "{text}{err}"
    );
    // Nor does a database from the future start.
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    db.execute("UPDATE sessiond_schema SET version = 99", &[])
        .unwrap();
    let (code, _, err) = sessiond(&["--listen", "127.0.0.1:0", "--cluster", &pg.url()], "");
    assert!(
        code != Some(0) && err.contains("schema version 99"),
        "{err}"
    );
    db.execute("UPDATE sessiond_schema SET version = 2", &[])
        .unwrap();
    let (code, _, _) = ops(&["repair"], "");
    assert_ne!(code, Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_snapshot_bounds_what_a_start_reads_and_the_state_survives_it() {
    let Some(pg) = Pg::start_or_skip("snapshot") else {
        return;
    };
    // No retention: the records a snapshot holds go with it.
    let (mut a, _dir) = node_args(
        &pg,
        "a",
        "1s",
        &["--snapshot-kb", "1", "--audit-retention-days", "0"],
    );
    register_on(&a, "alice");
    let mut tokens = Vec::new();
    for _ in 0..20 {
        let (_c, s) = a.login("alice", PW);
        tokens.push(s.token.clone());
    }
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let t = Instant::now();
    let base = loop {
        let base: i64 = db
            .query_one(
                "SELECT coalesce(max(base_seq), 0) FROM sessiond_snapshots WHERE complete",
                &[],
            )
            .unwrap()
            .get(0);
        if base > 0 {
            break base;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no snapshot was written"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // More after the snapshot: the start must read both.
    let (_c, s) = a.login("alice", PW);
    tokens.push(s.token.clone());
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let head: i64 = db
        .query_one("SELECT head FROM sessiond_log", &[])
        .unwrap()
        .get(0);
    assert!(
        head > base,
        "records after the snapshot: head {head}, base {base}"
    );
    let covered: i64 = db
        .query_one(
            "SELECT count(*) FROM sessiond_events WHERE seq <= $1",
            &[&base],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        covered, 0,
        "records past the retention held by the snapshot remain"
    );
    // The audit still names the account (from the snapshot).
    let (code, text, _) = sessiond(&["audit", "--user", "alice", "--cluster", &pg.url()], "");
    assert!(code == Some(0) && text.contains("alice"), "{text}");
    std::thread::sleep(Duration::from_millis(1_200)); // the killed node's lease
    let (b, _dir_b) = node(&pg, "b");
    for token in &tokens {
        let mut c = b.client();
        match c.resume(token, "t", "p").unwrap() {
            ResumeOutcome::Valid(info) => assert_eq!(info.username, "alice"),
            other => panic!("a session did not survive the snapshot: {other:?}"),
        }
    }
}

/// A database that hangs (frozen: connections open, nothing answered) leaves the store
/// thread waiting; the event loop still stops the node when its lease runs out (telling
/// its clients to go elsewhere), so that the other nodes may take its sessions over
/// without two nodes serving one.
#[test]
fn a_writer_whose_database_hangs_stops_at_its_lease() {
    let Some(pg) = Pg::start_or_skip("hang") else {
        return;
    };
    let (mut a, _dir) = node_with(&pg, "a", "2s");
    let (mut alice, _) = alice_on(&a);
    pg.freeze();
    let t = Instant::now();
    // A change now waits on the frozen database; heartbeats are answered meanwhile.
    let mut c = a.client();
    c.set_timeout(Duration::from_millis(500));
    let _ = c.register("bob", PW, "bob@example.org");
    let _ = alice.heartbeat();
    let code = a.wait_exit(Duration::from_secs(10));
    let took = t.elapsed();
    pg.thaw();
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}");
    assert!(
        took < Duration::from_secs(4),
        "stopped after {took:?}, lease 2 s"
    );
    // alice was told to go elsewhere before the node went.
    let mut told = alice
        .take_pushes()
        .iter()
        .any(|f| matches!(f.message, sessiond::protocol::Message::ServerShutdown(_)));
    while !told {
        match alice.recv(Duration::from_secs(2)) {
            Ok(f) => told |= matches!(f.message, sessiond::protocol::Message::ServerShutdown(_)),
            Err(_) => break,
        }
    }
    assert!(told, "no SERVER_SHUTDOWN before a fenced node went");
}

/// A snapshot of more than one chunk (over 1,000 events: one per live session), written
/// while logins go on, read back whole by the next node.
#[test]
fn a_snapshot_larger_than_a_chunk_is_read_back_whole() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 150;
    let Some(pg) = Pg::start_or_skip("big-snapshot") else {
        return;
    };
    let (mut a, _dir) = node_args(&pg, "a", "2s", &["--snapshot-kb", "32"]);
    register_on(&a, "alice");
    let addr = a.addr.clone();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let mut c = Client::connect(addr.as_str(), Duration::from_secs(10)).unwrap();
                    match c.login("alice", PW, "t", "p").unwrap() {
                        LoginOutcome::Success(_) => {}
                        other => panic!("{other:?}"),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let t = Instant::now();
    let (base, rows) = loop {
        let row = db
            .query_one(
                "SELECT s.base_seq, (SELECT count(*) FROM sessiond_snapshot e
                                      WHERE e.base_seq = s.base_seq)
                   FROM sessiond_snapshots s WHERE complete
                  ORDER BY base_seq DESC LIMIT 1",
                &[],
            )
            .ok();
        if let Some(row) = row {
            let (base, rows): (i64, i64) = (row.get(0), row.get(1));
            if rows > 1_000 {
                break (base, rows);
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no snapshot over a chunk"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        a.child.try_wait().unwrap().is_none(),
        "the writer stopped during snapshots"
    );
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(3_500)); // the killed node's lease and grace
    let (_, text, err) = sessiond(&["user", "list", "--cluster", &pg.url()], "");
    let live = THREADS * PER_THREAD;
    assert!(
        text.lines()
            .any(|l| l.contains("alice") && l.split_whitespace().nth(4) == Some(&live.to_string())),
        "snapshot at {base} with {rows} rows; want {live} live sessions:\n{text}{err}"
    );
}

/// A TCP proxy in front of PostgreSQL that, once armed, lets the next client message that
/// names `sessiond_commits` (a group commit) through, waits for the database's answer,
/// and then cuts the client's side without passing the answer on: the commit landed, and
/// the node cannot know it.
struct LosingProxy {
    port: u16,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Copies `from` to `to` while `pass` says so of each chunk read; then, or at the end of
/// `from`, shuts both down.
fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    mut pass: impl FnMut(&[u8]) -> bool,
) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 65536];
    loop {
        let n = match from.read(&mut buf) {
            Ok(n) if n > 0 && pass(&buf[..n]) => n,
            _ => break,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

impl LosingProxy {
    fn start(upstream: u16) -> LosingProxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicUsize::new(0));
        let (armed2, cut2) = (armed.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let (armed, cut) = (armed2.clone(), cut2.clone());
                // The commit went through and its answer is being held back.
                let holding = Arc::new(AtomicBool::new(false));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let holding2 = holding.clone();
                // database -> node: the commit's answer dropped, and the node's connection
                // cut.
                std::thread::spawn(move || {
                    pump(s2, c2, |_| {
                        if !holding2.load(Ordering::SeqCst) {
                            return true;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        cut.fetch_add(1, Ordering::SeqCst);
                        false
                    })
                });
                // node -> database: the first commit after arming is let through and
                // its answer held back.
                std::thread::spawn(move || {
                    pump(client, server, |bytes| {
                        let commit = bytes.windows(16).any(|w| w == b"sessiond_commits");
                        if commit && armed.swap(false, Ordering::SeqCst) {
                            holding.store(true, Ordering::SeqCst);
                        }
                        true
                    })
                });
            }
        });
        LosingProxy { port, armed, cut }
    }

    fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// A commit whose answer is lost (it landed; the connection broke before the node heard)
/// is retried on a new connection, recognised as landed, and acknowledged once: its
/// events are in the log once, not twice.
#[test]
fn a_commit_whose_answer_is_lost_is_applied_once() {
    use std::sync::atomic::Ordering;
    let Some(pg) = Pg::start_or_skip("lost-answer") else {
        return;
    };
    let proxy = LosingProxy::start(pg.port);
    let dir = fresh_dir("cluster-lost");
    let url = proxy.url();
    let a = Running::start_with(
        &dir,
        &[
            "--cluster",
            &url,
            "--node-id",
            "a",
            "--cluster-lease",
            "30s",
        ],
    );
    proxy.armed.store(true, Ordering::SeqCst);
    let mut c = a.client();
    c.set_timeout(Duration::from_secs(20));
    match register(&mut c, "dora") {
        RegisterOutcome::Success(_) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        proxy.cut.load(Ordering::SeqCst),
        1,
        "the answer was not cut"
    );
    // In the log once: the registration's account record.
    let mut db = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let commits: i64 = db
        .query_one("SELECT count(*) FROM sessiond_commits", &[])
        .unwrap()
        .get(0);
    let events: i64 = db
        .query_one("SELECT count(*) FROM sessiond_events", &[])
        .unwrap()
        .get(0);
    let head: i64 = db
        .query_one("SELECT head FROM sessiond_log", &[])
        .unwrap()
        .get(0);
    assert_eq!(events, head, "a gap or a duplicate in the log");
    let (_dora, _) = a.login("dora", PW);
    // And a new node reads it back consistent (a double UserCreated would not fold).
    // Killed: its 30 s lease is ended by hand, or b's login would wait it out (until
    // then a might still hold a connection the login must revoke).
    drop(a);
    let mut db2 = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    db2.execute(
        "UPDATE sessiond_nodes SET lease_until = now() - interval '1 hour' WHERE node = 'a'",
        &[],
    )
    .unwrap();
    let (b, _dir_b) = node(&pg, "b");
    let (_dora, _) = b.login("dora", PW);
    assert!(commits >= 2, "the admin's and dora's commits: {commits}");
}

/// `/metrics` of a cluster node says how long its write lease has left.
#[test]
fn metrics_show_the_lease_left() {
    use std::io::{Read, Write};
    let Some(pg) = Pg::start_or_skip("metrics") else {
        return;
    };
    let port = common::free_port();
    let metrics = format!("127.0.0.1:{port}");
    let (_a, _dir) = node_args(&pg, "a", "9s", &["--metrics-listen", &metrics]);
    let mut s = std::net::TcpStream::connect(&metrics).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let left: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("sessiond_cluster_lease_remaining_seconds "))
        .unwrap_or_else(|| panic!("no lease gauge in {text}"))
        .trim()
        .parse()
        .unwrap();
    assert!(left > 3.0 && left <= 9.0, "{left}");
}
