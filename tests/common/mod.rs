//! Helpers for integration tests: a real server on 127.0.0.1:0 in a thread, stopped and
//! joined on drop.
#![allow(dead_code)]

pub mod process;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use sessiond::auth::PasswordRecord;
use sessiond::client::{Client, LoginOutcome};
use sessiond::protocol::{LoginSuccess, Role};
use sessiond::server::{Server, ServerConfig, ServerHandle};
use sessiond::session::UserTable;

pub const ALICE_PW: &str = "correct horse; battery";
pub const BOB_PW: &str = "hunter2:with;separators";
/// Low iterations keep tests fast; the cost model is the same code.
pub const TEST_ITERATIONS: u32 = 1_000;

pub struct TestServer {
    pub addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|_| {})
    }

    /// A server journaling to `dir` (a fresh journal there).
    pub fn start_journaled(dir: &std::path::Path) -> TestServer {
        Self::start_inner(|_| {}, Some(dir))
    }

    pub fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> TestServer {
        Self::start_inner(tune, None)
    }

    fn start_inner(
        tune: impl FnOnce(&mut ServerConfig),
        journal_dir: Option<&std::path::Path>,
    ) -> TestServer {
        let mut cfg = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            iterations: TEST_ITERATIONS,
            hash_workers: 2,
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
        let mut server = match journal_dir {
            Some(dir) => {
                let (journal, state) = sessiond::store::open_journal(dir, users).expect("journal");
                Server::bind_with_store(cfg, state, Some(Box::new(journal))).expect("bind")
            }
            None => Server::bind(cfg, users).expect("bind"),
        };
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = std::thread::Builder::new()
            .name("sessiond-test-server".into())
            .spawn(move || server.run().expect("server loop"))
            .unwrap();
        TestServer {
            addr,
            handle,
            thread: Some(thread),
        }
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

    /// A client logged in as `user` from device `client`.
    pub fn login_as(&self, user: &str, pw: &str, client: &str) -> (Client, LoginSuccess) {
        let mut c = self.client();
        match c.login(user, pw, client, "linux").expect("login") {
            LoginOutcome::Success(s) => (c, s),
            LoginOutcome::Failure(f) => panic!("login failed: {f:?}"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
