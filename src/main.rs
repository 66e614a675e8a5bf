//! The `sessiond` binary: parse options, open the data directory, create the first admin
//! if there are no users, then run the server loop.

use std::io::Write;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{info, warn};
use sessiond::auth::PasswordRecord;
use sessiond::cli::{self, Command};
use sessiond::engine::event::Event;
use sessiond::logging::{self, LogFormat};
use sessiond::protocol::Role;
use sessiond::server::{Listeners, Reload, Reloader, Server};
use sessiond::session::token::random_password;
use sessiond::session::UserTable;
use sessiond::store;

fn main() -> ExitCode {
    let parsed = cli::parse(std::env::args_os().skip(1));
    let (format, filter) = match &parsed {
        Ok(Command::Run(o) | Command::CheckConfig(o)) => (o.log_format, o.log_level.clone()),
        _ => (
            LogFormat::Text,
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        ),
    };
    if let Err(e) = logging::init(format, &filter) {
        eprintln!("sessiond: {e}");
    }
    let opts = match parsed {
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
    let result = run(*opts);
    log::logger().flush();
    match result {
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

/// What a start should say about its listener and certificate: a plaintext listener off
/// loopback, a certificate that has expired or expires within 14 days.
fn warnings(opts: &cli::Options) -> Vec<String> {
    let mut out = Vec::new();
    if opts.tls.is_none() && !opts.server.listen.ip().is_loopback() {
        out.push(format!(
            "listening on {} without TLS: passwords and tokens cross the network in the \
             clear (--tls-cert and --tls-key)",
            opts.server.listen
        ));
    }
    if let Some(ws) = opts.server.ws_listen {
        if opts.tls.is_none() && !ws.ip().is_loopback() {
            out.push(format!(
                "WebSocket on {ws} without TLS: passwords and tokens cross the network in \
                 the clear, and browsers refuse ws:// from https:// pages (--tls-cert and \
                 --tls-key make it wss://)"
            ));
        }
        if opts.server.ws_origins.allows_any() {
            out.push(
                "--ws-allowed-origin '*': a page of any site may open connections from its \
                 visitors' browsers; name the origins of your pages instead"
                    .into(),
            );
        }
    }
    if let Some((cert, _)) = &opts.tls {
        #[allow(clippy::disallowed_methods)] // the binary reads the wall clock for this check
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Ok(Some(w)) = sessiond::cert_validity::warning(cert, now) {
            out.push(w);
        }
    }
    out
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
            let ws = cfg.ws_listen.map_or(String::new(), |w| {
                let scheme = if tls_ok { "wss" } else { "ws" };
                format!(", WebSocket {scheme}://{w}/ (origins: {})", cfg.ws_origins)
            });
            format!("{addr} ({kind}){plain}{ws}")
        }),
    );
    match &opts.cluster {
        Some(c) => report(
            "cluster database",
            store::cluster::check_cluster(c).map_err(|e| e.to_string()),
        ),
        None => report(
            "data directory",
            check_data_dir(&opts.data_dir).map(|()| opts.data_dir.display().to_string()),
        ),
    }
    // `-` (stdin) is not read here: a check must not take a line meant for the start.
    if let Some(path) = opts
        .admin_password_file
        .as_ref()
        .filter(|p| p.as_os_str() != "-")
    {
        report(
            "admin password file",
            sessiond::ops::read_password_file(path)
                .map(|_| {
                    format!(
                        "{} (8 to 1,024 bytes; used on a first start)",
                        path.display()
                    )
                })
                .map_err(|e| e.to_string()),
        );
    }
    for w in warnings(opts) {
        println!("WARNING {w}");
    }
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

/// What SIGHUP does: the command line parsed again (so the `--config` file read again),
/// its TLS files loaded, and the settings a running server cannot change named.
fn reloader(argv: Vec<std::ffi::OsString>, running: cli::Options) -> Reloader {
    Reloader::new(move || {
        let o = match cli::parse(argv.clone()) {
            Ok(Command::Run(o)) => *o,
            Ok(_) => return Err("the command line is not a server's any more".into()),
            Err(e) => {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                return Err(first.trim_start_matches("error: ").to_owned());
            }
        };
        let tls = load_tls(&o)?;
        for w in warnings(&o) {
            warn!("{w}");
        }
        // What a running server keeps until a restart: named with its old and new value.
        let (r, n) = (&running, &o);
        let fixed: [(&str, String, String); 12] = [
            (
                "listen",
                r.server.listen.to_string(),
                n.server.listen.to_string(),
            ),
            (
                "plain-listen",
                format!("{:?}", r.server.plain_listen),
                format!("{:?}", n.server.plain_listen),
            ),
            (
                "ws-listen",
                format!("{:?}", r.server.ws_listen),
                format!("{:?}", n.server.ws_listen),
            ),
            (
                "metrics-listen",
                format!("{:?}", r.server.metrics_listen),
                format!("{:?}", n.server.metrics_listen),
            ),
            (
                "reuse-port",
                r.server.reuse_port.to_string(),
                n.server.reuse_port.to_string(),
            ),
            (
                "listen-backlog",
                r.server.listen_backlog.to_string(),
                n.server.listen_backlog.to_string(),
            ),
            (
                "data-dir",
                r.data_dir.display().to_string(),
                n.data_dir.display().to_string(),
            ),
            (
                "hash-workers",
                r.server.hash_workers.to_string(),
                n.server.hash_workers.to_string(),
            ),
            (
                "hash-queue",
                r.server.hash_queue.to_string(),
                n.server.hash_queue.to_string(),
            ),
            (
                "shutdown-grace",
                format!("{:?}", r.server.shutdown_grace),
                format!("{:?}", n.server.shutdown_grace),
            ),
            (
                "journal",
                format!("{:?}", r.journal),
                format!("{:?}", n.journal),
            ),
            (
                "log-format",
                r.log_format.to_string(),
                n.log_format.to_string(),
            ),
        ];
        let mut restart_only: Vec<String> = fixed
            .into_iter()
            .filter(|(_, old, new)| old != new)
            .map(|(name, old, new)| format!("{name}: {old} -> {new}"))
            .collect();
        if r.cluster != n.cluster {
            // Named, not shown: a connection string may hold a password.
            restart_only.push("cluster, node-id: changed".into());
        }
        Ok(Reload {
            tls,
            engine: o.server.engine,
            iterations: o.server.iterations,
            log_filter: o.log_level,
            ws_origins: o.server.ws_origins,
            restart_only,
        })
    })
}

fn run(opts: cli::Options) -> Result<(), Box<dyn std::error::Error>> {
    // Everything that can refuse a start is checked before any state is created, so a
    // start that fails creates no account and prints no password.
    let tls = load_tls(&opts)?;
    for w in warnings(&opts) {
        warn!("{w}");
    }
    let cfg = sessiond::server::ServerConfig {
        // SIGTERM / SIGINT: graceful shutdown (SERVER_SHUTDOWN to every client, journal
        // durable, exit 0); SIGHUP: reload.
        handle_signals: true,
        tls,
        reloader: Some(reloader(
            std::env::args_os().skip(1).collect(),
            opts.clone(),
        )),
        log_filter: opts.log_level.clone(),
        ..opts.server.clone()
    };
    // The server binds first, so that a start that cannot listen changes nothing.
    let listeners = Listeners::bind(&cfg)?;
    // Read and checked (8 to 1024 bytes) before the data directory is touched, like
    // everything that can refuse a start; used only if this is the first start.
    let admin_password = match &opts.admin_password_file {
        Some(path) => Some(sessiond::ops::read_password_file(path)?),
        None => None,
    };
    let dir = &opts.data_dir;
    // One server per data directory (or cluster log); held until the process exits.
    let mut _lock = None;
    let (mut journal, mut state, place): (Box<dyn store::Store>, _, String) = match &opts.cluster {
        Some(c) => {
            let (s, state) = store::cluster::open_cluster(c, UserTable::new(), true)?;
            (
                Box::new(s),
                state,
                format!("the cluster database (node {})", c.node),
            )
        }
        None => {
            store::ensure_data_dir(dir)
                .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
            _lock = Some(store::lock_data_dir(dir)?);
            let (j, state) = store::open_journal_with(dir, UserTable::new(), opts.journal)?;
            (
                Box::new(j),
                state,
                format!("data directory {}", dir.display()),
            )
        }
    };
    if state.users.is_empty() {
        let password = match admin_password {
            Some(p) => p,
            None => sessiond::protocol::Secret::from(random_password(20)?),
        };
        let record = PasswordRecord::create(password.as_bytes(), opts.server.iterations)?;
        #[allow(clippy::disallowed_methods)] // the binary stamps the first account at its creation
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        // In a cluster another node starting at the same moment may make it first.
        let made = store::create_account(
            &mut *journal,
            &mut state.users,
            "admin",
            record,
            Role::Admin,
            "",
            now_ms,
        )?;
        if let Some(admin) = made {
            // Durable before the password is shown.
            journal.append(&Event::UserCreated(admin))?;
            journal.commit()?;
            let mut out = std::io::stdout().lock();
            match &opts.admin_password_file {
                // The operator knows the password: nothing of it is printed or logged.
                Some(path) => {
                    let from = if path.as_os_str() == "-" {
                        "stdin".to_owned()
                    } else {
                        path.display().to_string()
                    };
                    writeln!(
                        out,
                        "sessiond: first start, created the administrator account admin with \
                     the password from {from}"
                    )?;
                }
                // Printed once, to stdout only (never to the log); only the hash is stored.
                None => {
                    writeln!(
                        out,
                        "sessiond: first start, created the administrator account"
                    )?;
                    writeln!(out, "    username: admin")?;
                    let shown = String::from_utf8_lossy(password.as_bytes());
                    writeln!(out, "    password: {shown}")?;
                    writeln!(
                        out,
                        "This password is shown only now; sessiond keeps only its hash."
                    )?;
                }
            }
            out.flush()?;
            info!("created account admin in {place}");
        } else {
            info!("the administrator account admin was just created by another node");
        }
    } else if admin_password.is_some() {
        info!("--admin-password-file not used: {place} has accounts");
    }
    info!(
        "{}: {} user(s), {} live session(s); {} hash worker(s) at {} PBKDF2 \
         iterations",
        place,
        state.users.len(),
        state.sessions.len(),
        opts.server.hash_workers,
        opts.server.iterations
    );
    let mut server = Server::start(cfg, listeners, state, Some(journal))?;
    let scheme = if opts.tls.is_some() { " (TLS)" } else { "" };
    if let Some(a) = server.ws_addr() {
        // Before "listening on", which tells a supervisor (and the tests) the start is over.
        let ws = if opts.tls.is_some() { "wss" } else { "ws" };
        println!("sessiond: websocket listening on {ws}://{a}/");
    }
    println!("sessiond: listening on {}{scheme}", server.local_addr());
    if let Some(a) = server.plain_addr() {
        println!("sessiond: plain listener for local tools on {a}");
    }
    server.run()?;
    Ok(())
}
