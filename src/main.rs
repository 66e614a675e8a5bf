//! The `sessiond` binary: parse options, open the data directory, create the first admin
//! if there are no users, then run the server loop.

use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use log::info;
use sessiond::auth::PasswordRecord;
use sessiond::cli::{self, Command};
use sessiond::engine::event::Event;
use sessiond::protocol::Role;
use sessiond::server::Server;
use sessiond::session::token::random_password;
use sessiond::session::UserTable;
use sessiond::store;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let opts = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(o)) => o,
        Ok(Command::Ops(cmd)) => {
            let mut out = std::io::stdout().lock();
            return match sessiond::ops::run(cmd, &mut out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sessiond: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Ok(Command::Repair { dir, check }) => return repair(&dir, check),
        // --help and --version (stdout, 0) or a usage error (stderr, 2), as clap renders them.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(*opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, here (the log line would say it a second time).
            eprintln!("sessiond: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `sessiond repair [--check]`: prints what was found and done. Exit status: 0 consistent
/// (or repaired), 1 a repair is needed (`--check`) or nothing can rebuild the state.
fn repair(dir: &std::path::Path, check: bool) -> ExitCode {
    let report = store::lock_data_dir(dir).and_then(|_lock| store::repair(dir, check));
    match report {
        Ok(r) => {
            for line in &r.lines {
                println!("sessiond repair: {line}");
            }
            if r.lost {
                println!(
                    "sessiond repair: acknowledged changes {}lost (see above)",
                    if check { "would be " } else { "were " }
                );
            }
            if !r.recoverable || (check && r.changed) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("sessiond repair: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: cli::Options) -> Result<(), Box<dyn std::error::Error>> {
    let dir = &opts.data_dir;
    store::ensure_data_dir(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    // One server per data directory; held until the process exits.
    let _lock = store::lock_data_dir(dir)?;
    let (mut journal, mut state) = store::open_journal_with(dir, UserTable::new(), opts.journal)?;
    if state.users.is_empty() {
        let password = random_password(20)?;
        let record = PasswordRecord::create(password.as_bytes(), opts.server.iterations)?;
        #[allow(clippy::disallowed_methods)] // the binary stamps the first account at its creation
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        let admin = state
            .users
            .create("admin", record, Role::Admin, "", now_ms)
            .map_err(|_| "cannot create the admin account")?
            .clone();
        // Durable before the password is shown.
        journal.append(&Event::UserCreated(admin))?;
        journal.commit()?;
        // Printed once, to stdout only (never to the log); only the hash is stored.
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "sessiond: first start, created the administrator account"
        )?;
        writeln!(out, "    username: admin")?;
        writeln!(out, "    password: {password}")?;
        writeln!(
            out,
            "This password is shown only now; sessiond keeps only its hash."
        )?;
        out.flush()?;
        info!("created account admin in {}", dir.display());
    }
    info!(
        "data directory {}: {} user(s), {} live session(s); {} hash worker(s) at {} PBKDF2 \
         iterations",
        dir.display(),
        state.users.len(),
        state.sessions.len(),
        opts.server.hash_workers,
        opts.server.iterations
    );
    let tls = match &opts.tls {
        Some((cert, key)) => {
            Some(sessiond::tls::server_config(cert, key).map_err(|e| format!("TLS: {e}"))?)
        }
        None => None,
    };
    let cfg = sessiond::server::ServerConfig {
        // SIGTERM / SIGINT: graceful shutdown (SERVER_SHUTDOWN to every client, journal
        // durable, exit 0).
        handle_signals: true,
        tls,
        ..opts.server.clone()
    };
    let mut server = Server::bind_with_store(cfg, state, Some(Box::new(journal)))
        .map_err(|e| format!("cannot listen on {}: {e}", opts.server.listen))?;
    let scheme = if opts.tls.is_some() { " (TLS)" } else { "" };
    println!("sessiond: listening on {}{scheme}", server.local_addr());
    if let Some(a) = server.plain_addr() {
        println!("sessiond: plain listener for local tools on {a}");
    }
    server.run()?;
    Ok(())
}
