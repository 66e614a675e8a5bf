//! A sessiond whose journal is slowed on purpose: every commit (write + fdatasync) takes
//! `--commit-delay-ms` longer. For measuring what a slow disk does to memory and to the
//! heartbeats of the others (`benches/slow_disk.sh`, issue 16): with the bound on what
//! waits for the disk (`--max-undurable-events`, 0 for none) requests that need a durable
//! write are refused with STORAGE_UNAVAILABLE past it, and memory stays bounded.
//!
//! ```text
//! cargo run --release --example slowdisk -- --listen 127.0.0.1:7480 --commit-delay-ms 200
//! ```
#![allow(clippy::disallowed_methods)] // a tool that runs in real time

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use sessiond::auth::PasswordRecord;
use sessiond::engine::event::Event;
use sessiond::protocol::Role;
use sessiond::server::{Server, ServerConfig};
use sessiond::session::token::random_password;
use sessiond::store::{self, Journal, Store, StoreError};

/// A sessiond on a journal slowed on purpose
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:7480")]
    listen: std::net::SocketAddr,
    /// Data directory (created; a fresh one makes a fresh admin, printed once)
    #[arg(long, default_value = "/tmp/sessiond-slowdisk")]
    data_dir: PathBuf,
    /// Milliseconds added to every journal commit
    #[arg(long, default_value_t = 200)]
    commit_delay_ms: u64,
    /// Events waiting for the disk beyond which writes are refused (0: no bound)
    #[arg(long, default_value_t = sessiond::engine::EngineConfig::default().max_undurable_events)]
    max_undurable_events: usize,
    /// PBKDF2 iterations
    #[arg(long, default_value_t = 1000)]
    iterations: u32,
}

/// The journal, with every commit delayed.
struct Slow {
    journal: Journal,
    delay: Duration,
}

impl Store for Slow {
    fn append(&mut self, ev: &Event) -> std::io::Result<()> {
        self.journal.append(ev)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        std::thread::sleep(self.delay);
        self.journal.commit()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let a = Args::parse();
    store::ensure_data_dir(&a.data_dir)?;
    let _lock = store::lock_data_dir(&a.data_dir)?;
    let (mut journal, mut state) =
        store::open_journal(&a.data_dir, sessiond::session::UserTable::new())?;
    if state.users.is_empty() {
        let pw = random_password(20)?;
        let rec = PasswordRecord::create(pw.as_bytes(), a.iterations)?;
        let admin = state
            .users
            .create("admin", rec, Role::Admin, "", 0)
            .map_err(|_| "admin")?
            .clone();
        journal.append(&Event::UserCreated(admin))?;
        journal.commit()?;
        println!("password: {pw}");
    }
    let mut cfg = ServerConfig {
        listen: a.listen,
        iterations: a.iterations,
        handle_signals: true,
        ..ServerConfig::default()
    };
    cfg.engine.max_undurable_events = a.max_undurable_events;
    cfg.engine.max_sessions_per_user = 0;
    cfg.engine.policy.address_burst = 1_000_000;
    cfg.engine.policy.address_rate_per_min = 1_000_000;
    cfg.engine.policy.address_hashes = 100_000;
    cfg.engine.max_connections_per_address = 20_000;
    let slow = Slow {
        journal,
        delay: Duration::from_millis(a.commit_delay_ms),
    };
    let mut server = Server::bind_with_store(cfg, state, Some(Box::new(slow)))?;
    println!("listening on {}", server.local_addr());
    server.run()?;
    Ok(())
}
