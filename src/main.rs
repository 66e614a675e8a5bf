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
use sessiond::server::{Listeners, Server};
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
        Ok(Command::CheckConfig(o)) => return check_config(&o),
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

/// The TLS configuration `opts` names, loaded and checked (an error names the file).
fn load_tls(opts: &cli::Options) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, String> {
    match &opts.tls {
        Some((cert, key)) => sessiond::tls::server_config(cert, key)
            .map(Some)
            .map_err(|e| format!("TLS: {e}")),
        None => Ok(None),
    }
}

/// Whether the data directory can be the server's: created if missing (as a start
/// would), writable, and not held by a running server.
fn check_data_dir(dir: &std::path::Path) -> Result<(), String> {
    store::ensure_data_dir(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let probe = dir.join(".sessiond-check");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("data directory {} is not writable: {e}", dir.display()))?;
    store::lock_data_dir(dir)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `sessiond check-config`: every check a start makes before it creates anything, and
/// what it would run with. Exit status 0 when a start would get past them, 2 otherwise.
fn check_config(opts: &cli::Options) -> ExitCode {
    let mut failed = false;
    let mut report = |what: &str, r: Result<String, String>| match r {
        Ok(detail) => println!("ok      {what}: {detail}"),
        Err(e) => {
            failed = true;
            println!("FAILED  {what}: {e}");
        }
    };
    let tls = load_tls(opts);
    let tls_ok = tls.as_ref().is_ok_and(|t| t.is_some());
    report(
        "tls",
        tls.as_ref()
            .map(|t| match (t, &opts.tls) {
                (Some(_), Some((cert, key))) => {
                    format!("certificate {} with key {}", cert.display(), key.display())
                }
                _ => "off (plain TCP)".to_owned(),
            })
            .map_err(Clone::clone),
    );
    let cfg = sessiond::server::ServerConfig {
        tls: tls.ok().flatten(),
        ..opts.server.clone()
    };
    report(
        "listen",
        Listeners::bind(&cfg).map_err(|e| e.to_string()).map(|l| {
            let addr = l.local_addr().map_or(cfg.listen, |a| a);
            let plain = cfg
                .plain_listen
                .map_or(String::new(), |p| format!(", plain listener {p}"));
            let kind = if tls_ok { "TLS" } else { "plain" };
            format!("{addr} ({kind}){plain}")
        }),
    );
    report(
        "data directory",
        check_data_dir(&opts.data_dir).map(|()| opts.data_dir.display().to_string()),
    );
    let e = &opts.server.engine;
    println!(
        "        limits: {} connections ({} per address), {} session(s) per user, frames up \
         to {} bytes; heartbeat every {:?}, timeout {:?}; sessions idle {:?}, lifetime {:?}",
        e.max_connections,
        e.max_connections_per_address,
        e.max_sessions_per_user,
        e.max_frame,
        e.heartbeat_interval,
        e.heartbeat_timeout,
        e.session_idle,
        e.session_lifetime
    );
    if failed {
        println!("sessiond check-config: a start would fail (see above)");
        ExitCode::from(2)
    } else {
        println!("sessiond check-config: ok");
        ExitCode::SUCCESS
    }
}

fn run(opts: cli::Options) -> Result<(), Box<dyn std::error::Error>> {
    // Everything that can refuse a start is checked before any state is created, so a
    // start that fails creates no account and prints no password.
    let tls = load_tls(&opts)?;
    let cfg = sessiond::server::ServerConfig {
        // SIGTERM / SIGINT: graceful shutdown (SERVER_SHUTDOWN to every client, journal
        // durable, exit 0).
        handle_signals: true,
        tls,
        ..opts.server.clone()
    };
    let listeners = Listeners::bind(&cfg)?;
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
    let mut server = Server::start(cfg, listeners, state, Some(Box::new(journal)))?;
    let scheme = if opts.tls.is_some() { " (TLS)" } else { "" };
    println!("sessiond: listening on {}{scheme}", server.local_addr());
    if let Some(a) = server.plain_addr() {
        println!("sessiond: plain listener for local tools on {a}");
    }
    server.run()?;
    Ok(())
}
