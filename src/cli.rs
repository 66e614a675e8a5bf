//! Command-line options of the `sessiond` binary: declarations, defaults and `--help`.
//!
//! Owns turning `argv` into a [`Command`]: the server's [`Options`] (a [`ServerConfig`],
//! [`JournalOptions`] and a data directory), `repair`, or an operator command of
//! [`crate::ops`]. Every option is declared once with clap derive: its help (the doc
//! comment), its default (taken from the library's own `Default`s) and its range, so the
//! parser, `--help` and the README's table (checked by `tests/options.rs`) cannot
//! disagree. The command-line names of the engine's policies (`--on-limit`,
//! `--duplicate`) are declared here too, as `ValueEnum` impls: the engine has no text
//! form of them.
//!
//! Does not act on the command: `src/main.rs` starts the server or `repair`, and
//! [`crate::ops::run`] runs the operator commands.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::num::{IntErrorKind, ParseIntError};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use clap::builder::{PossibleValue, RangedU64ValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use crate::config_file;
use crate::engine::{DuplicatePolicy, EngineConfig, OnLimit, PolicyConfig};
use crate::logging::{self, LogFormat};
use crate::ops::{DataDir, OpsCommand, ITERATION_RANGE};
use crate::protocol::{MAX_PASSWORD, MIN_MAX_FRAME};
use crate::server::{OriginPolicy, ServerConfig};
use crate::store::cluster::ClusterOptions;
use crate::store::JournalOptions;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub enum Command {
    /// `sessiond [OPTIONS]`: run the server.
    Run(Box<Options>),
    /// `sessiond repair [--check] [--data-dir DIR]`: bring a damaged data directory back
    /// to a consistent state (`check`: only report).
    Repair {
        /// The data directory.
        dir: PathBuf,
        /// Report what would be done; change nothing.
        check: bool,
    },
    /// `sessiond user ...` and `sessiond audit ...` (see [`crate::ops`]).
    Ops(OpsCommand),
    /// `sessiond check-config [--config FILE] [OPTIONS]`: what the server would run with,
    /// checked, without starting it.
    CheckConfig(Box<Options>),
}

/// What the server runs with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The listener, the engine's deadlines, limits and policies, the hash workers.
    pub server: ServerConfig,
    /// `--data-dir`: where the journal, snapshot and lock live.
    pub data_dir: PathBuf,
    /// `--snapshot-kb` and `--audit-retention-days`.
    pub journal: JournalOptions,
    /// `--cluster` and `--node-id`: the store on PostgreSQL instead of the data directory.
    pub cluster: Option<ClusterOptions>,
    /// `--tls-cert` and `--tls-key` (PEM), loaded by the binary at startup.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--log-format`: how log lines are written.
    pub log_format: LogFormat,
    /// `--log-level` (or `RUST_LOG`, or `info`): the log's filter.
    pub log_level: String,
    /// `--admin-password-file`: the first administrator's password, read from this file
    /// (`-`: one line of stdin) instead of generated and printed.
    pub admin_password_file: Option<PathBuf>,
}

/// Parses `args` (without the program name).
///
/// `--help` and `--version` come back as errors of kind [`ErrorKind::DisplayHelp`] and
/// [`ErrorKind::DisplayVersion`] whose text goes to stdout ([`clap::Error::use_stderr`]
/// is false); every other error is a usage error (exit status 2).
pub fn parse<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args = with_config_file(args.into_iter().map(Into::into).collect())?;
    let argv = std::iter::once(OsString::from(NAME)).chain(args);
    let cli = Cli::try_parse_from(argv).map_err(unknown_option)?;
    match cli.command {
        None => cli.server.into_options().map(|o| Command::Run(Box::new(o))),
        Some(Sub::CheckConfig { server }) => server
            .into_options()
            .map(|o| Command::CheckConfig(Box::new(o))),
        Some(Sub::Repair { data_dir, .. }) if data_dir.cluster.is_some() => Err(Cli::command()
            .error(
                ErrorKind::ArgumentConflict,
                "repair mends a data directory; a cluster's log is PostgreSQL's to keep",
            )),
        Some(Sub::Repair { data_dir, check }) => Ok(Command::Repair {
            dir: data_dir.path,
            check,
        }),
        Some(Sub::Ops(cmd)) => Ok(Command::Ops(cmd)),
    }
}

const NAME: &str = "sessiond";

/// `args` with the options of the `--config` file (if one is named) put before the ones
/// typed, so that a flag overrides the file (`config_file`). The file's values are parsed
/// on their own first, so that an error in one names the file.
fn with_config_file(mut args: Vec<OsString>) -> Result<Vec<OsString>, clap::Error> {
    let usage = |m: String| clap::Error::raw(ErrorKind::InvalidValue, format!("{m}\n"));
    let Some(path) = config_file::path_in(&args).map_err(usage)? else {
        return Ok(args);
    };
    let at = usize::from(args.first().is_some_and(|a| a == "check-config"));
    let cmd = Cli::command();
    let known = |name: &str| {
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(name) && !matches!(name, "help" | "version"))?;
        Some(match arg.get_action() {
            clap::ArgAction::SetTrue => config_file::OptionKind::Switch,
            _ => config_file::OptionKind::Value,
        })
    };
    let from_file = config_file::arguments(&path, &known).map_err(usage)?;
    let alone = std::iter::once(OsString::from(NAME)).chain(from_file.iter().cloned());
    if let Err(e) = Cli::try_parse_from(alone) {
        // A rule between options (`requires`) may be met by the flags typed.
        if e.kind() != ErrorKind::MissingRequiredArgument {
            let text = e.to_string();
            let text = text.trim_start_matches("error: ");
            let m = format!("config file {}: {text}", path.display());
            return Err(clap::Error::raw(e.kind(), m));
        }
    }
    args.splice(at..at, from_file);
    Ok(args)
}

/// `-V`: `sessiond 0.1.0 (protocol version 1)`.
fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} (protocol version {})",
            env!("CARGO_PKG_VERSION"),
            crate::protocol::VERSION
        )
    });
    &VERSION
}

/// A low-overhead login-session server (protocol.md)
///
/// On the first start with no users it creates an `admin` account with a random password
/// and prints it once. Logging: RUST_LOG=info (default), debug, warn.
#[derive(Parser, Debug)]
#[command(
    name = NAME,
    version = version(),
    args_conflicts_with_subcommands = true,
    args_override_self = true,
    after_help = "DUR is a number with an optional unit: ms, s (default), m, h. \
                  Examples: 500ms, 15, 30m, 24h (at most 49 days)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    server: ServerArgs,
}

/// The subcommands; without one, `sessiond` runs the server.
#[derive(Subcommand, Debug)]
enum Sub {
    /// Check the options, files and addresses a start would use, without starting
    ///
    /// Reads the --config file and the flags as a start would, loads the TLS files, binds
    /// the listen addresses (then lets them go), checks that the data directory is
    /// writable and not held by a running server, and prints the limits in force. Exit
    /// status 0 when a start would get past its checks, 2 otherwise.
    #[command(args_override_self = true)]
    CheckConfig {
        #[command(flatten)]
        server: Box<ServerArgs>,
    },
    /// Bring a damaged data directory back to a consistent state: rebuild a damaged or
    /// missing snapshot from the previous one and the archive, cut the journal before its
    /// first damage; say exactly what is kept and what is lost
    Repair {
        /// Only report what would be done (exit status 1 if a repair is needed)
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        data_dir: DataDir,
    },
    #[command(flatten)]
    Ops(OpsCommand),
}

/// Largest `--max-frame`: 16 MiB.
const MAX_FRAME_LIMIT: u64 = 16 << 20;

const SECS_PER_DAY: u64 = 86_400;

/// The server's options (`sessiond [OPTIONS]`).
#[derive(clap::Args, Debug)]
struct ServerArgs {
    /// read options from this TOML file: `key = value` per line, a key being a long option
    /// without `--` (flags given here override it; see examples/sessiond.toml)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// address to listen on
    #[arg(long, value_name = "ADDR", default_value_t = ServerConfig::default().listen)]
    listen: SocketAddr,
    /// TLS on the listener: certificate chain (PEM); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS on the listener: private key (PEM); needs --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// with TLS, a second plain listener; loopback addresses only
    #[arg(
        long,
        value_name = "ADDR",
        value_parser = loopback_address,
        requires = "tls_cert"
    )]
    plain_listen: Option<SocketAddr>,
    /// HTTP for /metrics (Prometheus), /healthz and /readyz on this address (a loopback
    /// one, unless you mean to expose them); off by default
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// the same protocol over WebSocket on this address (wss:// with --tls-cert); off by
    /// default
    #[arg(long, value_name = "ADDR")]
    ws_listen: Option<SocketAddr>,
    /// let several servers listen on the same addresses (SO_REUSEPORT; the kernel spreads
    /// new connections over them): cluster nodes sharing one machine's cores
    #[arg(long)]
    reuse_port: bool,
    /// connections each listener lets the kernel queue before they are accepted (capped by
    /// net.core.somaxconn): room for every client of a restarted server coming back at once
    #[arg(
        long,
        value_name = "N",
        default_value_t = ServerConfig::default().listen_backlog,
        value_parser = clap::value_parser!(u32).range(1..=65535)
    )]
    listen_backlog: u32,
    /// a browser origin that may open a WebSocket, e.g. https://app.example (repeatable;
    /// `*`: any; reloaded on SIGHUP); with none, pages are refused; clients that send no
    /// Origin (not browsers) always may connect
    #[arg(
        long = "ws-allowed-origin",
        value_name = "ORIGIN",
        value_parser = ws_origin,
        requires = "ws_listen"
    )]
    ws_allowed_origins: Vec<String>,
    /// log lines as text, or as one JSON object per line
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// which lines are logged: a level (error, warn, info, debug, trace) or, as RUST_LOG,
    /// MODULE=LEVEL parts (reloaded on SIGHUP) [default: $RUST_LOG, else info]
    #[arg(
        long,
        value_name = "FILTER",
        value_parser = logging::check_filter,
        hide_default_value = true
    )]
    log_level: Option<String>,
    /// on the first start, the administrator's password from this file (`-`: one line of
    /// stdin) instead of a random one printed once
    #[arg(long, value_name = "FILE")]
    admin_password_file: Option<PathBuf>,
    #[command(flatten)]
    data_dir: DataDir,
    /// with --cluster, this node's name in the cluster's records [default: the host name]
    #[arg(
        long,
        value_name = "NAME",
        value_parser = node_id,
        hide_default_value = true
    )]
    node_id: Option<String>,
    /// with --cluster, how long a node's lease lasts without a renewal: a node that cannot
    /// renew for this long stops by itself, and half a lease later the others take its
    /// sessions over
    #[arg(
        long,
        value_name = "DUR",
        value_parser = positive_duration,
        default_value_t = DurationArg(crate::store::cluster::DEFAULT_LEASE)
    )]
    cluster_lease: DurationArg,
    /// advertised in LOGIN_SUCCESS
    #[arg(
        long,
        value_name = "DUR",
        value_parser = positive_duration,
        default_value_t = DurationArg(EngineConfig::default().heartbeat_interval)
    )]
    heartbeat_interval: DurationArg,
    /// silence after which a connection is closed (longer than --heartbeat-interval)
    #[arg(
        long,
        value_name = "DUR",
        value_parser = positive_duration,
        default_value_t = DurationArg(EngineConfig::default().heartbeat_timeout)
    )]
    heartbeat_timeout: DurationArg,
    /// time to log in after connecting
    #[arg(
        long,
        value_name = "DUR",
        value_parser = positive_duration,
        default_value_t = DurationArg(EngineConfig::default().login_timeout)
    )]
    login_timeout: DurationArg,
    /// a session ends after this long without activity
    #[arg(
        long,
        value_name = "DUR",
        value_parser = positive_duration,
        default_value_t = DurationArg(EngineConfig::default().session_idle)
    )]
    session_idle: DurationArg,
    /// a session ends this long after login, whatever happens
    #[arg(
        long,
        value_name = "DUR",
        value_parser = positive_duration,
        default_value_t = DurationArg(EngineConfig::default().session_lifetime)
    )]
    session_lifetime: DurationArg,
    /// largest frame accepted (header included), 4096 to 16 MiB
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = EngineConfig::default().max_frame,
        value_parser = RangedU64ValueParser::<usize>::new().range(MIN_MAX_FRAME as u64..=MAX_FRAME_LIMIT)
    )]
    max_frame: usize,
    /// password-hashing threads; one core stays free for the event loop
    /// [default: cores - 1 (1..=8)]
    #[arg(
        long,
        value_name = "N",
        default_value_t = default_hash_workers(),
        hide_default_value = true,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=256)
    )]
    hash_workers: usize,
    /// logins waiting for a hash thread before SERVER_BUSY
    #[arg(long, value_name = "N", default_value_t = ServerConfig::default().hash_queue)]
    hash_queue: usize,
    /// PBKDF2-HMAC-SHA256 iterations for new password records
    #[arg(
        long,
        value_name = "N",
        default_value_t = ServerConfig::default().iterations,
        value_parser = clap::value_parser!(u32).range(ITERATION_RANGE)
    )]
    iterations: u32,
    /// live sessions per account (0 = no limit)
    #[arg(
        long,
        value_name = "N",
        default_value_t = EngineConfig::default().max_sessions_per_user
    )]
    max_sessions_per_user: usize,
    /// what a login beyond the limit does
    #[arg(
        long,
        value_name = "POLICY",
        value_enum,
        default_value_t = EngineConfig::default().on_limit
    )]
    on_limit: OnLimit,
    /// a resume of a session in use on another connection
    #[arg(
        long,
        value_name = "POLICY",
        value_enum,
        default_value_t = EngineConfig::default().duplicate
    )]
    duplicate: DuplicatePolicy,
    /// whether REGISTER_REQUEST is accepted
    #[arg(
        long,
        value_name = "STATE",
        value_enum,
        default_value_t = Registration(EngineConfig::default().registration_open)
    )]
    registration: Registration,
    /// an application role an administrator may give accounts (repeatable; 1 to 32 of
    /// a-z 0-9 _ -, not user or admin); carried to clients in USER_INFO
    #[arg(long = "role", value_name = "NAME", value_parser = app_role)]
    app_roles: Vec<String>,
    /// shortest password a new account may have (at most 1024)
    #[arg(
        long,
        value_name = "N",
        default_value_t = EngineConfig::default().min_password_len,
        value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_PASSWORD as u64)
    )]
    min_password_len: usize,
    /// successful logins per account per UTC day (0 = off)
    #[arg(
        long,
        value_name = "N",
        default_value_t = PolicyConfig::default().daily_logins
    )]
    daily_login_limit: u32,
    /// login attempts per address before throttling
    #[arg(
        long,
        value_name = "N",
        default_value_t = PolicyConfig::default().address_burst,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    login_burst: u32,
    /// per minute: how fast an address's attempts refill
    #[arg(
        long,
        value_name = "N",
        default_value_t = PolicyConfig::default().address_rate_per_min,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    login_rate: u32,
    /// password hashes in flight per address
    #[arg(
        long,
        value_name = "N",
        default_value_t = PolicyConfig::default().address_hashes,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    address_hashes: u32,
    /// audit records held in memory for AUDIT_QUERY (the journal keeps all)
    #[arg(
        long,
        value_name = "N",
        default_value_t = EngineConfig::default().audit_window,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    audit_window: usize,
    /// open connections in all (0 = no limit); beyond it SERVER_BUSY and close
    #[arg(
        long,
        value_name = "N",
        default_value_t = EngineConfig::default().max_connections
    )]
    max_connections: usize,
    /// the same, per client IP address
    #[arg(
        long,
        value_name = "N",
        default_value_t = EngineConfig::default().max_connections_per_address
    )]
    max_connections_per_address: usize,
    /// a peer whose unsent replies pass this many KiB (it is not reading) is disconnected
    #[arg(
        long,
        value_name = "N",
        default_value_t = EngineConfig::default().max_output >> 10,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    max_output_kb: usize,
    /// frames handled per connection per loop turn before others get theirs
    #[arg(
        long,
        value_name = "N",
        default_value_t = EngineConfig::default().frames_per_turn,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    frames_per_turn: usize,
    /// SERVER_SHUTDOWN's reconnect_after_ms: how long clients are told to wait before
    /// they come back (they add up to as much again at random)
    #[arg(
        long,
        value_name = "DUR",
        default_value_t = DurationArg(EngineConfig::default().shutdown_reconnect_after)
    )]
    shutdown_reconnect_after: DurationArg,
    /// on SIGTERM/SIGINT, how long clients get to take the shutdown notice
    #[arg(
        long,
        value_name = "DUR",
        default_value_t = DurationArg(ServerConfig::default().shutdown_grace)
    )]
    shutdown_grace: DurationArg,
    /// past this many KiB of journal, write a snapshot and start a new journal
    #[arg(
        long,
        value_name = "N",
        default_value_t = JournalOptions::default().snapshot_bytes >> 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    snapshot_kb: u64,
    /// archived journal segments (audit history) older than this many days are removed
    /// (with --cluster: log records older than this that a snapshot holds)
    #[arg(
        long,
        value_name = "N",
        default_value_t = JournalOptions::default().audit_retention.as_secs() / SECS_PER_DAY
    )]
    audit_retention_days: u64,
}

impl ServerArgs {
    /// The configuration the options describe, once the rules between options hold.
    fn into_options(self) -> Result<Options, clap::Error> {
        if self.heartbeat_timeout <= self.heartbeat_interval {
            return Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                format!(
                    "--heartbeat-timeout ({}) must be longer than --heartbeat-interval ({})",
                    self.heartbeat_timeout, self.heartbeat_interval
                ),
            ));
        }
        let engine = EngineConfig {
            heartbeat_interval: self.heartbeat_interval.0,
            heartbeat_timeout: self.heartbeat_timeout.0,
            login_timeout: self.login_timeout.0,
            session_idle: self.session_idle.0,
            session_lifetime: self.session_lifetime.0,
            max_frame: self.max_frame,
            frames_per_turn: self.frames_per_turn,
            max_output: self.max_output_kb.saturating_mul(1024),
            max_sessions_per_user: self.max_sessions_per_user,
            on_limit: self.on_limit,
            duplicate: self.duplicate,
            registration_open: self.registration.0,
            min_password_len: self.min_password_len,
            policy: PolicyConfig {
                address_burst: self.login_burst,
                address_rate_per_min: self.login_rate,
                address_hashes: self.address_hashes,
                daily_logins: self.daily_login_limit,
                ..PolicyConfig::default()
            },
            audit_window: self.audit_window,
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            shutdown_reconnect_after: self.shutdown_reconnect_after.0,
            app_roles: self.app_roles,
            ..EngineConfig::default()
        };
        let server = ServerConfig {
            listen: self.listen,
            engine,
            hash_workers: self.hash_workers,
            hash_queue: self.hash_queue,
            iterations: self.iterations,
            shutdown_grace: self.shutdown_grace.0,
            plain_listen: self.plain_listen,
            metrics_listen: self.metrics_listen,
            ws_listen: self.ws_listen,
            reuse_port: self.reuse_port,
            listen_backlog: self.listen_backlog,
            ws_origins: OriginPolicy::new(&self.ws_allowed_origins),
            ..ServerConfig::default()
        };
        let journal = JournalOptions {
            snapshot_bytes: self.snapshot_kb.saturating_mul(1024),
            audit_retention: Duration::from_secs(
                self.audit_retention_days.saturating_mul(SECS_PER_DAY),
            ),
        };
        Ok(Options {
            server,
            data_dir: self.data_dir.path,
            journal,
            cluster: self.data_dir.cluster.map(|url| ClusterOptions {
                url,
                node: self.node_id.unwrap_or_else(host_name),
                lease: self.cluster_lease.0,
                snapshot_bytes: self.snapshot_kb.saturating_mul(1024),
                audit_retention: Duration::from_secs(
                    self.audit_retention_days.saturating_mul(SECS_PER_DAY),
                ),
            }),
            // `requires` makes them come together.
            tls: self.tls_cert.zip(self.tls_key),
            log_format: self.log_format,
            log_level: match self.log_level {
                Some(spec) => spec,
                None => match std::env::var("RUST_LOG") {
                    Ok(spec) => logging::check_filter(&spec).map_err(|e| {
                        Cli::command().error(ErrorKind::InvalidValue, format!("RUST_LOG: {e}"))
                    })?,
                    Err(_) => "info".to_owned(),
                },
            },
            admin_password_file: self.admin_password_file,
        })
    }
}

/// One core less than the machine has (at least one, at most 8): a storm of logins must
/// not take the core the event loop runs on.
pub fn default_hash_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .clamp(1, 8)
}

/// A duration on the command line, in whole milliseconds: `500ms`, `15` (seconds), `15s`,
/// `30m`, `24h`; at most `u32::MAX` ms (49 days), the protocol's millisecond fields.
/// Prints in the largest unit that is exact (`5s`, `30m`, `24h`, `500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationArg(pub Duration);

/// The units, largest first, in milliseconds.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

impl fmt::Display for DurationArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        let (unit, per) = UNITS
            .into_iter()
            .find(|&(_, per)| ms != 0 && ms % per == 0)
            .unwrap_or(("s", 1_000));
        write!(f, "{}{unit}", ms / per)
    }
}

impl FromStr for DurationArg {
    type Err = String;

    fn from_str(v: &str) -> Result<Self, String> {
        let bad = || "not a duration (examples: 500ms, 15s, 30m, 24h)".to_owned();
        // Every duration must fit the protocol's u32 millisecond fields.
        let too_long = || format!("at most 49 days ({}ms)", u32::MAX);
        let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => v.split_at(i),
            None => (v, "s"),
        };
        let (_, per) = UNITS
            .into_iter()
            .find(|&(u, _)| u == unit)
            .ok_or_else(bad)?;
        let n: u64 = digits.parse().map_err(|e: ParseIntError| {
            if *e.kind() == IntErrorKind::PosOverflow {
                too_long()
            } else {
                bad()
            }
        })?;
        n.checked_mul(per)
            .filter(|&ms| ms <= u64::from(u32::MAX))
            .map(|ms| DurationArg(Duration::from_millis(ms)))
            .ok_or_else(too_long)
    }
}

/// A duration that must be greater than zero.
fn positive_duration(v: &str) -> Result<DurationArg, String> {
    let d: DurationArg = v.parse()?;
    if d.0.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// `--plain-listen`: the plain listener carries passwords in clear, so it stays on the
/// machine.
fn loopback_address(v: &str) -> Result<SocketAddr, String> {
    let a: SocketAddr = v
        .parse()
        .map_err(|_| "not an address (example: 127.0.0.1:7451)".to_owned())?;
    if !a.ip().is_loopback() {
        return Err("must be a loopback address (127.0.0.1, ::1)".into());
    }
    Ok(a)
}

/// `--on-limit revoke_oldest|reject_new`.
impl ValueEnum for OnLimit {
    fn value_variants<'a>() -> &'a [Self] {
        &[OnLimit::RevokeOldest, OnLimit::RejectNew]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            OnLimit::RevokeOldest => {
                PossibleValue::new("revoke_oldest").help("the oldest session is revoked")
            }
            OnLimit::RejectNew => {
                PossibleValue::new("reject_new").help("the login fails with SESSION_LIMIT")
            }
        })
    }
}

/// `--duplicate reject|takeover`.
impl ValueEnum for DuplicatePolicy {
    fn value_variants<'a>() -> &'a [Self] {
        &[DuplicatePolicy::Reject, DuplicatePolicy::Takeover]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            DuplicatePolicy::Reject => {
                PossibleValue::new("reject").help("the newcomer gets DUPLICATE_SESSION")
            }
            DuplicatePolicy::Takeover => {
                PossibleValue::new("takeover").help("the old connection is closed (TAKEN_OVER)")
            }
        })
    }
}

/// `--role NAME`: protocol.md 5.48's rule for an application role's name.
fn app_role(name: &str) -> Result<String, String> {
    let ok = (1..=crate::protocol::MAX_ROLE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !matches!(name, "user" | "admin");
    if ok {
        Ok(name.to_owned())
    } else {
        Err("1 to 32 of a-z 0-9 _ -, other than user and admin".into())
    }
}

/// `--node-id`: 1 to 64 of a-z A-Z 0-9 . _ -.
fn node_id(name: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(name.to_owned())
    } else {
        Err("1 to 64 of a-z A-Z 0-9 . _ -".into())
    }
}

/// `--node-id`'s default: the host's name, if it is a valid node id.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| node_id(h.trim()).ok())
        .unwrap_or_else(|| "sessiond".to_owned())
}

/// `--ws-allowed-origin`: `*`, `null`, or an origin as browsers send it,
/// `http(s)://host[:port]` with no path.
fn ws_origin(origin: &str) -> Result<String, String> {
    let o = origin.trim_end_matches('/');
    let host = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"));
    let ok = o == "*"
        || o == "null"
        || host.is_some_and(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
        });
    if ok {
        Ok(o.to_owned())
    } else {
        Err("an origin such as https://app.example or http://127.0.0.1:8080 (no path), or *".into())
    }
}

/// `--registration open|closed`: [`EngineConfig::registration_open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Registration(bool);

impl ValueEnum for Registration {
    fn value_variants<'a>() -> &'a [Self] {
        &[Registration(true), Registration(false)]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(if self.0 { "open" } else { "closed" }))
    }
}

/// clap's "unexpected argument" in this binary's words, `unknown option --bogus`, with
/// clap's suggestion and usage line. Design: scripts and `tests/binary.rs` match the words
/// `unknown option`, which the hand-written parser before clap printed.
fn unknown_option(e: clap::Error) -> clap::Error {
    if e.kind() != ErrorKind::UnknownArgument {
        return e;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let mut message = format!("unknown option {arg} (see --help)");
    if let Some(ContextValue::String(similar)) = e.get(ContextKind::SuggestedArg) {
        message.push_str(&format!("; did you mean {similar}?"));
    }
    if let Some(ContextValue::StyledStr(usage)) = e.get(ContextKind::Usage) {
        message.push_str(&format!("\n\n{usage}"));
    }
    message.push('\n');
    clap::Error::raw(ErrorKind::UnknownArgument, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::UserCommand;

    fn run(args: &[&str]) -> Result<Options, clap::Error> {
        match parse(args)? {
            Command::Run(o) => Ok(*o),
            other => panic!("{other:?}"),
        }
    }

    fn error(args: &[&str]) -> clap::Error {
        match parse(args) {
            Err(e) => e,
            Ok(c) => panic!("{args:?} parsed: {c:?}"),
        }
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_work_on_loopback() {
        let o = run(&[]).unwrap();
        assert_eq!(o.server.listen.to_string(), "127.0.0.1:7450");
        assert_eq!(o.server.engine.heartbeat_timeout, Duration::from_secs(15));
        assert_eq!(o.data_dir, PathBuf::from("sessiond-data"));
        assert_eq!(o.server.hash_workers, default_hash_workers());
        assert_eq!(o.tls, None);
    }

    #[test]
    fn defaults_are_the_librarys() {
        let o = run(&[]).unwrap();
        let (e, d) = (&o.server.engine, EngineConfig::default());
        assert_eq!(e.heartbeat_interval, d.heartbeat_interval);
        assert_eq!(e.login_timeout, d.login_timeout);
        assert_eq!(e.session_idle, d.session_idle);
        assert_eq!(e.session_lifetime, d.session_lifetime);
        assert_eq!(e.max_frame, d.max_frame);
        assert_eq!(e.max_output, d.max_output);
        assert_eq!(e.frames_per_turn, d.frames_per_turn);
        assert_eq!(e.max_sessions_per_user, d.max_sessions_per_user);
        assert_eq!(e.on_limit, d.on_limit);
        assert_eq!(e.duplicate, d.duplicate);
        assert_eq!(e.registration_open, d.registration_open);
        assert_eq!(e.min_password_len, d.min_password_len);
        assert_eq!(e.audit_window, d.audit_window);
        assert_eq!(e.max_connections, d.max_connections);
        assert_eq!(e.max_connections_per_address, d.max_connections_per_address);
        let p = PolicyConfig::default();
        assert_eq!(e.policy.address_burst, p.address_burst);
        assert_eq!(e.policy.address_rate_per_min, p.address_rate_per_min);
        assert_eq!(e.policy.address_hashes, p.address_hashes);
        assert_eq!(e.policy.daily_logins, p.daily_logins);
        let s = ServerConfig::default();
        assert_eq!(o.server.hash_queue, s.hash_queue);
        assert_eq!(o.server.iterations, s.iterations);
        assert_eq!(o.server.shutdown_grace, s.shutdown_grace);
        let j = JournalOptions::default();
        assert_eq!(o.journal.snapshot_bytes, j.snapshot_bytes);
        assert_eq!(o.journal.audit_retention, j.audit_retention);
    }

    #[test]
    fn flags_and_units() {
        let o = run(&[
            "--listen=127.0.0.1:0",
            "--heartbeat-interval",
            "500ms",
            "--heartbeat-timeout",
            "2s",
            "--session-idle=30m",
            "--session-lifetime=24h",
            "--login-timeout",
            "15",
            "--max-frame",
            "4096",
            "--iterations",
            "1000",
            "--on-limit=reject_new",
            "--duplicate",
            "takeover",
            "--registration=closed",
            "--max-sessions-per-user",
            "3",
            "--hash-workers",
            "3",
            "--hash-queue",
            "7",
            "--min-password-len",
            "12",
            "--shutdown-reconnect-after",
            "5s",
            "--log-level",
            "sessiond=debug,warn",
            "--log-format",
            "json",
            "--data-dir",
            "/tmp/x",
        ])
        .unwrap();
        assert_eq!(
            o.server.engine.shutdown_reconnect_after,
            Duration::from_secs(5)
        );
        assert_eq!(o.log_level, "sessiond=debug,warn");
        assert_eq!(o.log_format, LogFormat::Json);
        assert_eq!(o.server.engine.on_limit, OnLimit::RejectNew);
        assert_eq!(o.server.engine.duplicate, DuplicatePolicy::Takeover);
        assert!(!o.server.engine.registration_open);
        assert_eq!(o.server.engine.max_sessions_per_user, 3);
        assert_eq!(o.server.listen.port(), 0);
        assert_eq!(
            o.server.engine.heartbeat_interval,
            Duration::from_millis(500)
        );
        assert_eq!(o.server.engine.heartbeat_timeout, Duration::from_secs(2));
        assert_eq!(o.server.engine.login_timeout, Duration::from_secs(15));
        assert_eq!(o.server.engine.session_idle, Duration::from_secs(1800));
        assert_eq!(o.server.engine.session_lifetime, Duration::from_secs(86400));
        assert_eq!(o.server.engine.max_frame, 4096);
        assert_eq!(o.server.iterations, 1000);
        assert_eq!(o.server.hash_workers, 3);
        assert_eq!(o.server.hash_queue, 7);
        assert_eq!(o.server.engine.min_password_len, 12);
        assert_eq!(o.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn account_policy_flags() {
        let o = run(&[
            "--daily-login-limit",
            "3",
            "--login-burst=5",
            "--login-rate",
            "10",
            "--address-hashes",
            "2",
            "--audit-window",
            "500",
        ])
        .unwrap();
        let e = &o.server.engine;
        assert_eq!(e.policy.daily_logins, 3);
        assert_eq!(e.policy.address_burst, 5);
        assert_eq!(e.policy.address_rate_per_min, 10);
        assert_eq!(e.policy.address_hashes, 2);
        assert_eq!(e.audit_window, 500);
        assert!(run(&["--login-burst", "0"]).is_err());
        assert!(run(&["--login-rate", "0"]).is_err());
        assert!(run(&["--address-hashes", "0"]).is_err());
        assert!(run(&["--audit-window", "0"]).is_err());
        let o = run(&[
            "--max-output-kb",
            "64",
            "--frames-per-turn",
            "8",
            "--max-connections",
            "0",
            "--max-connections-per-address",
            "10",
            "--shutdown-grace",
            "500ms",
        ])
        .unwrap();
        assert_eq!(o.server.engine.max_output, 64 * 1024);
        assert_eq!(o.server.engine.frames_per_turn, 8);
        assert_eq!(o.server.engine.max_connections, 0);
        assert_eq!(o.server.engine.max_connections_per_address, 10);
        assert_eq!(o.server.shutdown_grace, Duration::from_millis(500));
        assert!(run(&["--frames-per-turn", "0"]).is_err());
        assert!(run(&["--max-output-kb", "0"]).is_err());
        let o = run(&[
            "--tls-cert",
            "c.pem",
            "--tls-key=k.pem",
            "--plain-listen",
            "127.0.0.1:7460",
        ])
        .unwrap();
        assert_eq!(
            o.tls,
            Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
        );
        assert_eq!(
            o.server.plain_listen,
            Some("127.0.0.1:7460".parse().unwrap())
        );
        assert!(run(&["--tls-cert", "c.pem"]).is_err());
        assert!(run(&["--tls-key", "k.pem"]).is_err());
        assert!(run(&["--plain-listen", "127.0.0.1:1"]).is_err());
        assert!(run(&[
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--plain-listen",
            "0.0.0.0:1"
        ])
        .is_err());
        assert!(run(&["--audit-window", "-1"]).is_err());
    }

    #[test]
    fn journal_flags_in_kib_and_days() {
        let o = run(&["--snapshot-kb", "2", "--audit-retention-days", "3"]).unwrap();
        assert_eq!(o.journal.snapshot_bytes, 2048);
        assert_eq!(o.journal.audit_retention, Duration::from_secs(3 * 86_400));
        assert!(run(&["--snapshot-kb", "0"]).is_err());
        let o = run(&["--audit-retention-days", "0"]).unwrap();
        assert_eq!(o.journal.audit_retention, Duration::ZERO);
    }

    #[test]
    fn rejects_nonsense() {
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["--listen"]).is_err());
        assert!(run(&["--listen", "nowhere"]).is_err());
        assert!(run(&["--max-frame", "10"]).is_err());
        assert!(run(&["--max-frame", "16777217"]).is_err());
        assert!(run(&["--max-frame", "16777216"]).is_ok());
        assert!(run(&["--heartbeat-interval", "20s"]).is_err());
        assert!(run(&["--heartbeat-interval", "0"]).is_err());
        assert!(run(&["--heartbeat-timeout", "5x"]).is_err());
        assert!(run(&["--login-timeout", "0ms"]).is_err());
        assert!(run(&["--session-idle", "0m"]).is_err());
        assert!(run(&["--session-lifetime", "0h"]).is_err());
        assert!(run(&["--iterations", "0"]).is_err());
        assert!(run(&["--iterations", "10000001"]).is_err());
        assert!(run(&["--hash-workers", "0"]).is_err());
        assert!(run(&["--hash-workers", "257"]).is_err());
        assert!(run(&["--min-password-len", "1025"]).is_err());
        assert!(run(&["--min-password-len", "1024"]).is_ok());
        assert!(run(&["--session-lifetime", "9999h"]).is_err());
        assert!(run(&["--on-limit", "sometimes"]).is_err());
        assert!(run(&["--duplicate", "maybe"]).is_err());
        assert!(run(&["--registration", "ajar"]).is_err());
        assert!(matches!(
            parse(["repair", "--data-dir", "/x"]),
            Ok(Command::Repair { dir, check: false }) if dir == std::path::Path::new("/x")
        ));
        assert!(matches!(
            parse(["repair", "--check"]),
            Ok(Command::Repair { dir, check: true }) if dir == std::path::Path::new("sessiond-data")
        ));
        assert!(parse(["repair", "--bogus"]).is_err());
        assert!(parse(["--listen", "127.0.0.1:0", "repair"]).is_err());
    }

    #[test]
    fn errors_name_the_flag() {
        let e = error(&["--bogus"]).to_string();
        assert!(e.contains("unknown option --bogus"), "{e}");
        assert_eq!(error(&["--bogus"]).kind(), ErrorKind::UnknownArgument);
        let e = error(&["--heartbeat-timeout", "5x"]).to_string();
        assert!(
            e.contains("--heartbeat-timeout") && e.contains("not a duration"),
            "{e}"
        );
        let e = error(&["--heartbeat-interval", "20s"]).to_string();
        assert!(e.contains("--heartbeat-timeout (15s)"), "{e}");
        assert!(e.contains("--heartbeat-interval (20s)"), "{e}");
        let e = error(&["--max-frame", "10"]).to_string();
        assert!(
            e.contains("--max-frame") && e.contains("4096..=16777216"),
            "{e}"
        );
        let e = error(&["--tls-cert", "c.pem"]).to_string();
        assert!(e.contains("--tls-key"), "{e}");
        let e = error(&[
            "--plain-listen",
            "10.0.0.1:1",
            "--tls-cert=c",
            "--tls-key=k",
        ]);
        assert!(e.to_string().contains("loopback"), "{e}");
        let e = error(&["audit", "--bogus"]).to_string();
        assert!(e.contains("unknown option --bogus"), "{e}");
        assert!(e.contains("sessiond audit"), "{e}");
        for e in [error(&["--bogus"]), error(&["--iterations", "0"])] {
            assert!(e.use_stderr(), "{e}");
        }
    }

    #[test]
    fn help_and_version_on_the_binary_and_every_subcommand() {
        for args in [
            &["--help"][..],
            &["-h"],
            &["repair", "--help"],
            &["user", "--help"],
            &["user", "add", "--help"],
            &["user", "set-role", "--help"],
            &["user", "list", "--help"],
            &["audit", "--help"],
        ] {
            let e = error(args);
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{args:?}: {e}");
            assert!(!e.use_stderr(), "{args:?}");
            assert!(e.to_string().contains("Usage: sessiond"), "{args:?}: {e}");
        }
        let help = error(&["--help"]).to_string();
        assert!(help.contains("--heartbeat-timeout <DUR>"), "{help}");
        assert!(help.contains("[default: 15s]"), "{help}");
        assert!(help.contains("[default: 30m]"), "{help}");
        let help = error(&["audit", "--help"]).to_string();
        assert!(help.contains("login_failed"), "{help}");
        let e = error(&["-V"]);
        assert_eq!(e.kind(), ErrorKind::DisplayVersion);
        assert_eq!(
            e.to_string().trim(),
            format!(
                "sessiond {} (protocol version 1)",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn operator_commands_come_through() {
        assert!(matches!(
            parse(["user", "list", "--data-dir", "d"]),
            Ok(Command::Ops(OpsCommand::User(UserCommand::List { data_dir })))
                if data_dir.path == std::path::Path::new("d")
        ));
        assert!(matches!(
            parse(["audit"]),
            Ok(Command::Ops(OpsCommand::Audit(_)))
        ));
        assert!(parse(["user"]).is_err());
    }

    #[test]
    fn durations_parse_in_every_unit() {
        let ms = |v: &str| v.parse::<DurationArg>().map(|d| d.0.as_millis());
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("15"), Ok(15_000));
        assert_eq!(ms("15s"), Ok(15_000));
        assert_eq!(ms("30m"), Ok(1_800_000));
        assert_eq!(ms("24h"), Ok(86_400_000));
        assert_eq!(ms("4294967295ms"), Ok(u128::from(u32::MAX)));
        assert_eq!(ms("1193h"), Ok(4_294_800_000));
        for bad in ["", "s", "5x", "-1s", "1.5s", "5 s", "1d"] {
            assert!(ms(bad).is_err(), "{bad:?}");
        }
        for too_long in [
            "4294967296ms",
            "1194h",
            "71583m",
            "9999h",
            "99999999999999999999h",
        ] {
            assert_eq!(
                ms(too_long),
                Err("at most 49 days (4294967295ms)".into()),
                "{too_long}"
            );
        }
    }

    #[test]
    fn durations_print_in_their_largest_exact_unit_and_read_back() {
        let show = |ms: u64| DurationArg(Duration::from_millis(ms)).to_string();
        assert_eq!(show(5_000), "5s");
        assert_eq!(show(1_800_000), "30m");
        assert_eq!(show(86_400_000), "24h");
        assert_eq!(show(500), "500ms");
        assert_eq!(show(1_500), "1500ms");
        assert_eq!(show(90_000), "90s");
        assert_eq!(show(0), "0s");
        for ms in [
            0,
            1,
            999,
            1_000,
            1_001,
            59_000,
            60_000,
            61_000,
            3_600_000,
            5_400_000,
            86_400_000,
            u64::from(u32::MAX),
        ] {
            let d = DurationArg(Duration::from_millis(ms));
            assert_eq!(d.to_string().parse::<DurationArg>(), Ok(d), "{d}");
        }
    }
}
