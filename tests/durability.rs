//! Replies that depend on a journal write leave only once it is durable, and a slow sync
//! does not stall anyone else (issue 4: the store thread). A store whose commit blocks on
//! a gate stands in for a slow disk; one that fails stands in for a broken one.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time

mod common;

use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{TestServer, BOB_PW};
use sessiond::client::{Client, LoginOutcome};
use sessiond::engine::event::Event;
use sessiond::store::{Store, StoreError};

#[derive(Default)]
struct Disk {
    open: bool,
    fail: bool,
    /// A commit is waiting at the closed gate.
    waiting: bool,
    appended: Vec<Event>,
    durable: Vec<Event>,
    commits: usize,
}

/// A store whose commits wait while the gate is closed (or fail when told to).
#[derive(Clone)]
struct GatedStore(Arc<(Mutex<Disk>, Condvar)>);

impl GatedStore {
    fn new() -> GatedStore {
        let disk = Disk {
            open: true,
            ..Disk::default()
        };
        GatedStore(Arc::new((Mutex::new(disk), Condvar::new())))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Disk) -> R) -> R {
        let r = f(&mut self.0 .0.lock().unwrap());
        self.0 .1.notify_all();
        r
    }

    /// Waits (bounded) until a commit is blocked at the gate.
    fn wait_for_blocked_commit(&self) {
        let (lock, cv) = &*self.0;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut d = lock.lock().unwrap();
        while !d.waiting {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no commit reached the gate");
            d = cv.wait_timeout(d, left).unwrap().0;
        }
    }
}

impl Store for GatedStore {
    fn append(&mut self, ev: &Event) -> io::Result<()> {
        self.with(|d| d.appended.push(ev.clone()));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let (lock, cv) = &*self.0;
        let mut d = lock.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !d.open {
            d.waiting = true;
            cv.notify_all();
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the test never opened the gate");
            d = cv.wait_timeout(d, left).unwrap().0;
        }
        d.waiting = false;
        if d.fail {
            let eio = io::Error::other("simulated fsync failure (EIO)");
            return Err(StoreError::fatal(eio));
        }
        let batch = std::mem::take(&mut d.appended);
        d.durable.extend(batch);
        d.commits += 1;
        Ok(())
    }
}

fn session_created_for(d: &Disk, user_id: u64) -> bool {
    d.durable
        .iter()
        .any(|e| matches!(e, Event::SessionCreated(s) if s.user_id == user_id))
}

#[test]
fn a_slow_sync_holds_the_login_reply_while_other_clients_heartbeat() {
    let store = GatedStore::new();
    let server = TestServer::start_with_store(Box::new(store.clone()));
    let (mut alice, _) = server.alice();
    store.with(|d| d.open = false);

    let addr = server.addr;
    let (tx, rx) = mpsc::channel();
    let bob = std::thread::spawn(move || {
        let mut c = Client::connect(addr, Duration::from_secs(5)).unwrap();
        c.set_timeout(Duration::from_secs(20));
        let outcome = c.login("bob", BOB_PW, "late", "linux").unwrap();
        tx.send(Instant::now()).unwrap();
        (c, outcome)
    });
    store.wait_for_blocked_commit();
    // The disk is stuck on bob's login; alice is served all the same.
    for _ in 0..20 {
        let t = Instant::now();
        alice
            .heartbeat()
            .expect("heartbeat answered during the slow sync");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    assert!(
        rx.try_recv().is_err(),
        "LOGIN_SUCCESS was sent before its session was durable"
    );
    assert!(!store.with(|d| session_created_for(d, 2)));

    store.with(|d| d.open = true);
    let (mut bob, outcome) = bob.join().unwrap();
    assert!(matches!(outcome, LoginOutcome::Success(_)), "{outcome:?}");
    assert!(store.with(|d| session_created_for(d, 2)));
    bob.heartbeat().unwrap();
    alice.heartbeat().unwrap();
    drop(server);
    // The loop never waited: every turn's events went out in batches; slow commits only
    // make the groups larger.
    assert!(store.with(|d| d.commits) >= 2);
}

#[test]
fn a_failed_sync_stops_the_server_and_acknowledges_nothing() {
    let store = GatedStore::new();
    let server = TestServer::start_with_store(Box::new(store.clone()));
    let (mut alice, _) = server.alice();
    store.with(|d| d.fail = true);
    let mut c = server.client();
    c.set_timeout(Duration::from_secs(10));
    let r = c.login("bob", BOB_PW, "doomed", "linux");
    assert!(
        !matches!(r, Ok(LoginOutcome::Success(_))),
        "a login was acknowledged after the journal failed: {r:?}"
    );
    let err = server
        .join(Duration::from_secs(10))
        .expect_err("the server must stop on a failed sync");
    assert!(err.to_string().contains("simulated fsync failure"), "{err}");
    assert!(alice.heartbeat().is_err(), "the server is gone");
    assert!(!store.with(|d| session_created_for(d, 2)));
}
