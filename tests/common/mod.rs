//! Helpers for integration tests: a real server on 127.0.0.1:0 in a thread, stopped and
//! joined on drop.
#![allow(clippy::disallowed_methods)] // this test runs a real server in real time
#![allow(dead_code)]

pub mod harness;
pub mod live;
pub mod pg;
pub mod pki;
pub mod process;
pub mod spec;
pub mod wire;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use sessiond::auth::PasswordRecord;
use sessiond::client::{Client, LoginOutcome};
use sessiond::engine::replay::State;
use sessiond::protocol::{LoginSuccess, Role};
use sessiond::server::{Server, ServerConfig, ServerHandle};
use sessiond::session::UserTable;
use sessiond::store::Store;

pub const ALICE_PW: &str = "correct horse; battery";
pub const BOB_PW: &str = "hunter2:with;separators";
/// Low iterations keep tests fast; the cost model is the same code.
pub const TEST_ITERATIONS: u32 = 1_000;

pub struct TestServer {
    pub addr: SocketAddr,
    /// The plain loopback listener beside TLS, if configured.
    pub plain_addr: Option<SocketAddr>,
    /// The WebSocket listener, if configured.
    pub ws_addr: Option<SocketAddr>,
    /// The metrics listener, if configured.
    pub metrics_addr: Option<SocketAddr>,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    /// A server journaling to `dir` (a fresh journal there).
    pub fn start_journaled(dir: &std::path::Path) -> TestServer {
        Self::start_inner(|_| {}, Backing::Dir(dir))
    }

    /// A server journaling to `dir`, tuned by `tune`.
    pub fn start_journaled_with(
        dir: &std::path::Path,
        tune: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        Self::start_inner(tune, Backing::Dir(dir))
    }

    pub fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> TestServer {
        Self::start_inner(tune, Backing::Memory)
    }

    /// A server recording its events in `store` (alice and bob are not in it).
    pub fn start_with_store(store: Box<dyn Store>) -> TestServer {
        Self::start_inner(|_| {}, Backing::Store(store))
    }

    /// Like `start_with_store`, tuned by `tune`.
    pub fn start_with_store_tuned(
        store: Box<dyn Store>,
        tune: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        Self::start_inner(tune, Backing::Store(store))
    }

    fn start_inner(tune: impl FnOnce(&mut ServerConfig), backing: Backing<'_>) -> TestServer {
        let mut cfg = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            iterations: TEST_ITERATIONS,
            hash_workers: 2,
            // Clients still open when a test drops its server need not hold it up long.
            shutdown_grace: Duration::from_millis(500),
            ..ServerConfig::default()
        };
        tune(&mut cfg);
        let mut users = UserTable::new();
        let a = PasswordRecord::create(ALICE_PW.as_bytes(), TEST_ITERATIONS).unwrap();
        users
            .create("alice", a, Role::User, "alice@example.org", 1_000)
            .unwrap();
        let b = PasswordRecord::create(BOB_PW.as_bytes(), TEST_ITERATIONS).unwrap();
        users.create("bob", b, Role::Admin, "", 2_000).unwrap();
        let mut server = match backing {
            Backing::Dir(dir) => {
                let (journal, state) = sessiond::store::open_journal(dir, users).expect("journal");
                Server::bind_with_store(cfg, state, Some(Box::new(journal))).expect("bind")
            }
            Backing::Store(store) => {
                let state = State {
                    users,
                    ..State::new()
                };
                Server::bind_with_store(cfg, state, Some(store)).expect("bind")
            }
            Backing::Memory => Server::bind(cfg, users).expect("bind"),
        };
        let addr = server.local_addr();
        let plain_addr = server.plain_addr();
        let ws_addr = server.ws_addr();
        let metrics_addr = server.metrics_addr();
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("sessiond-test-server".into())
            .spawn(move || server.run())
            .unwrap();
        TestServer {
            addr,
            plain_addr,
            ws_addr,
            metrics_addr,
            handle,
            thread: Some(thread),
        }
    }

    /// Asks the server to stop (gracefully) and returns a thread that joins it.
    pub fn stop_in_background(mut self) -> JoinHandle<std::io::Result<()>> {
        self.handle.shutdown();
        self.thread.take().expect("running")
    }

    /// Waits (bounded) for the server loop to return by itself, and returns its result.
    pub fn join(mut self, timeout: Duration) -> std::io::Result<()> {
        let t = self.thread.take().expect("running");
        let deadline = std::time::Instant::now() + timeout;
        while !t.is_finished() {
            assert!(std::time::Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
        t.join().expect("server thread panicked")
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr, Duration::from_secs(5)).expect("connect")
    }

    /// A client logged in as alice.
    pub fn alice(&self) -> (Client, LoginSuccess) {
        self.login_as("alice", ALICE_PW, "test")
    }

    /// A client logged in as bob.
    pub fn bob(&self) -> (Client, LoginSuccess) {
        self.login_as("bob", BOB_PW, "test")
    }

    /// A client tuned by `tune` (before it logs in), logged in as alice.
    pub fn alice_on(&self, tune: impl FnOnce(&mut Client)) -> (Client, LoginSuccess) {
        let mut c = self.client();
        tune(&mut c);
        match c.login("alice", ALICE_PW, "test", "linux").expect("login") {
            LoginOutcome::Success(s) => (c, s),
            LoginOutcome::Failure(f) => panic!("login failed: {f:?}"),
        }
    }

    /// A client logged in as `user` from device `client`.
    pub fn login_as(&self, user: &str, pw: &str, client: &str) -> (Client, LoginSuccess) {
        let mut c = self.client();
        match c.login(user, pw, client, "linux").expect("login") {
            LoginOutcome::Success(s) => (c, s),
            LoginOutcome::Failure(f) => panic!("login failed: {f:?}"),
        }
    }
}

enum Backing<'a> {
    Memory,
    Dir(&'a std::path::Path),
    Store(Box<dyn Store>),
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let result = t.join().expect("server thread panicked");
            if !std::thread::panicking() {
                result.expect("server loop");
            }
        }
    }
}

/// ADMIN_STATS `output_overflows`: peers cut off at the output cap so far.
pub fn output_overflows(admin: &mut Client) -> u64 {
    admin
        .admin_stats()
        .unwrap()
        .get("output_overflows")
        .unwrap()
}

/// A loopback port that was free a moment ago (nothing listens on it now).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}
