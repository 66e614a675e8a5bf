//! Command-line options of the `sessiond` binary: parsing, defaults and `--help`.
//!
//! Owns turning `argv` into a [`ServerConfig`] plus a data directory. Hand-written: a
//! dozen flags do not justify a parser dependency.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::{DuplicatePolicy, OnLimit};
use crate::protocol::MIN_MAX_FRAME;
use crate::server::ServerConfig;
use crate::store::JournalOptions;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub enum Command {
    Run(Box<Options>),
    /// `sessiond repair [--data-dir DIR]`: truncate a damaged journal.
    Repair(PathBuf),
    /// `sessiond user ...` and `sessiond audit ...` (see [`crate::ops`]).
    Ops(crate::ops::OpsCommand),
    Help,
    Version,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub server: ServerConfig,
    pub data_dir: PathBuf,
    pub journal: JournalOptions,
    /// `--tls-cert` and `--tls-key` (PEM), loaded by the binary at startup.
    pub tls: Option<(PathBuf, PathBuf)>,
}

pub const HELP: &str = "\
sessiond: a low-overhead login-session server (protocol.md, version 1)

USAGE:
    sessiond [OPTIONS]
    sessiond repair [--data-dir DIR]    truncate a damaged journal before its first bad
                                        record (the records after it are lost)
    sessiond user add|set-role|list ... manage accounts offline (see below)
    sessiond audit [...]                print the audit trail

On the first start with no users it creates an `admin` account with a random
password and prints it once. Logging: RUST_LOG=info (default), debug, warn.

OPTIONS:
    --listen ADDR               address to listen on          [default: 127.0.0.1:7450]
    --data-dir DIR              where users are kept          [default: ./sessiond-data]
    --tls-cert FILE             TLS on the listener: certificate chain (PEM)
    --tls-key FILE              ... and its private key (PEM)
    --plain-listen ADDR         with TLS: also a plain listener, loopback only
    --heartbeat-interval DUR    advertised heartbeat interval [default: 5s]
    --heartbeat-timeout DUR     close after this much silence [default: 15s]
    --login-timeout DUR         time to log in after connect  [default: 10s]
    --session-idle DUR          session idle expiry           [default: 30m]
    --session-lifetime DUR      session absolute expiry       [default: 24h]
    --max-frame BYTES           maximum frame size            [default: 65536, min 1024]
    --hash-workers N            password hashing threads      [default: cores - 1]
    --hash-queue N              logins waiting for a hash     [default: 256]
    --iterations N              PBKDF2-HMAC-SHA256 iterations [default: 600000]
    --max-sessions-per-user N   live sessions per account, 0 = no limit [default: 1]
    --on-limit POLICY           revoke_oldest | reject_new    [default: revoke_oldest]
    --duplicate POLICY          resume of a session in use elsewhere:
                                reject | takeover             [default: reject]
    --registration STATE        open | closed                 [default: open]
    --min-password-len N        shortest password for new accounts [default: 8]
    --daily-login-limit N       successful logins per account per UTC day, 0 = off [default: 0]
    --login-burst N             login attempts per address before throttling [default: 30]
    --login-rate N              ... refilled at N per minute  [default: 60]
    --address-hashes N          password hashes in flight per address [default: 8]
    --audit-window N            audit records held in memory for AUDIT_QUERY [default: 100000]
    --max-connections N         open connections in all, 0 = no limit [default: 16384]
    --max-connections-per-address N   ... from one IP address [default: 1024]
    --max-output-kb N           unsent output per connection before it is cut off [default: 1024]
    --frames-per-turn N         frames handled per connection per loop turn [default: 64]
    --shutdown-grace DUR        SIGTERM/SIGINT: time clients get to take the notice [default: 3s]
    --snapshot-kb N             compact the journal into a snapshot past N KiB [default: 65536]
    --audit-retention-days N    keep archived audit history this long [default: 90]
    -h, --help                  print this help
    -V, --version               print the version

DUR is a number with an optional unit: ms, s (default), m, h. Example: 500ms, 15, 30m.
";

/// Parses `args` (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut server = ServerConfig {
        hash_workers: default_hash_workers(),
        ..ServerConfig::default()
    };
    let mut data_dir = PathBuf::from("sessiond-data");
    let mut journal = JournalOptions::default();
    let (mut tls_cert, mut tls_key): (Option<PathBuf>, Option<PathBuf>) = (None, None);
    let mut it = args.into_iter().peekable();
    if matches!(it.peek().map(String::as_str), Some("user" | "audit")) {
        let rest: Vec<String> = it.collect();
        return crate::ops::parse(&rest, data_dir).map(Command::Ops);
    }
    if it.peek().map(String::as_str) == Some("repair") {
        it.next();
        return match (it.next().as_deref(), it.next(), it.next()) {
            (None, _, _) => Ok(Command::Repair(data_dir)),
            (Some("--data-dir"), Some(d), None) => Ok(Command::Repair(PathBuf::from(d))),
            _ => Err("usage: sessiond repair [--data-dir DIR]".into()),
        };
    }
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let e = &mut server.engine;
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--listen" => {
                let v = value(&flag)?;
                server.listen = v
                    .parse::<SocketAddr>()
                    .map_err(|_| format!("--listen: not an address: {v}"))?;
            }
            "--data-dir" => data_dir = PathBuf::from(value(&flag)?),
            "--tls-cert" => tls_cert = Some(PathBuf::from(value(&flag)?)),
            "--tls-key" => tls_key = Some(PathBuf::from(value(&flag)?)),
            "--plain-listen" => {
                let v = value(&flag)?;
                let a: SocketAddr = v
                    .parse()
                    .map_err(|_| format!("--plain-listen: not an address: {v}"))?;
                if !a.ip().is_loopback() {
                    return Err(format!(
                        "--plain-listen must be a loopback address, not {v}"
                    ));
                }
                server.plain_listen = Some(a);
            }
            "--heartbeat-interval" => e.heartbeat_interval = duration(&flag, &value(&flag)?)?,
            "--heartbeat-timeout" => e.heartbeat_timeout = duration(&flag, &value(&flag)?)?,
            "--login-timeout" => e.login_timeout = duration(&flag, &value(&flag)?)?,
            "--session-idle" => e.session_idle = duration(&flag, &value(&flag)?)?,
            "--session-lifetime" => e.session_lifetime = duration(&flag, &value(&flag)?)?,
            "--max-frame" => {
                let n: usize = number(&flag, &value(&flag)?)?;
                if !(MIN_MAX_FRAME..=16 << 20).contains(&n) {
                    return Err(format!("--max-frame must be {MIN_MAX_FRAME}..=16777216"));
                }
                e.max_frame = n;
            }
            "--hash-workers" => {
                server.hash_workers = number(&flag, &value(&flag)?)?;
                if !(1..=256).contains(&server.hash_workers) {
                    return Err("--hash-workers must be 1..=256".into());
                }
            }
            "--hash-queue" => server.hash_queue = number(&flag, &value(&flag)?)?,
            "--iterations" => {
                server.iterations = number(&flag, &value(&flag)?)?;
                if !(1..=10_000_000).contains(&server.iterations) {
                    return Err("--iterations must be 1..=10000000".into());
                }
            }
            "--max-sessions-per-user" => e.max_sessions_per_user = number(&flag, &value(&flag)?)?,
            "--on-limit" => {
                e.on_limit = match value(&flag)?.as_str() {
                    "revoke_oldest" => OnLimit::RevokeOldest,
                    "reject_new" => OnLimit::RejectNew,
                    v => return Err(format!("--on-limit: revoke_oldest or reject_new, not {v}")),
                }
            }
            "--duplicate" => {
                e.duplicate = match value(&flag)?.as_str() {
                    "reject" => DuplicatePolicy::Reject,
                    "takeover" => DuplicatePolicy::Takeover,
                    v => return Err(format!("--duplicate: reject or takeover, not {v}")),
                }
            }
            "--registration" => {
                e.registration_open = match value(&flag)?.as_str() {
                    "open" => true,
                    "closed" => false,
                    v => return Err(format!("--registration: open or closed, not {v}")),
                }
            }
            "--min-password-len" => {
                e.min_password_len = number(&flag, &value(&flag)?)?;
                if e.min_password_len > crate::protocol::MAX_PASSWORD {
                    return Err("--min-password-len must be at most 1024".into());
                }
            }
            "--daily-login-limit" => e.policy.daily_logins = number(&flag, &value(&flag)?)?,
            "--login-burst" => e.policy.address_burst = at_least_1(&flag, &value(&flag)?)?,
            "--login-rate" => e.policy.address_rate_per_min = at_least_1(&flag, &value(&flag)?)?,
            "--address-hashes" => e.policy.address_hashes = at_least_1(&flag, &value(&flag)?)?,
            "--audit-window" => e.audit_window = at_least_1(&flag, &value(&flag)?)?,
            "--max-connections" => e.max_connections = number(&flag, &value(&flag)?)?,
            "--max-output-kb" => {
                e.max_output = at_least_1::<usize>(&flag, &value(&flag)?)?.saturating_mul(1024)
            }
            "--frames-per-turn" => e.frames_per_turn = at_least_1(&flag, &value(&flag)?)?,
            "--max-connections-per-address" => {
                e.max_connections_per_address = number(&flag, &value(&flag)?)?
            }
            "--shutdown-grace" => server.shutdown_grace = duration(&flag, &value(&flag)?)?,
            "--snapshot-kb" => {
                let kb: u64 = number(&flag, &value(&flag)?)?;
                if kb == 0 {
                    return Err("--snapshot-kb must be at least 1".into());
                }
                journal.snapshot_bytes = kb << 10;
            }
            "--audit-retention-days" => {
                let days: u64 = number(&flag, &value(&flag)?)?;
                journal.audit_retention = Duration::from_secs(days.saturating_mul(86_400));
            }
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    let e = &server.engine;
    if e.heartbeat_interval.is_zero() || e.heartbeat_timeout <= e.heartbeat_interval {
        return Err("--heartbeat-timeout must be longer than --heartbeat-interval (> 0)".into());
    }
    if e.login_timeout.is_zero() || e.session_idle.is_zero() || e.session_lifetime.is_zero() {
        return Err("timeouts must be greater than zero".into());
    }
    let tls = match (tls_cert, tls_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    if server.plain_listen.is_some() && tls.is_none() {
        return Err("--plain-listen is for use beside TLS (--tls-cert, --tls-key)".into());
    }
    Ok(Command::Run(Box::new(Options {
        server,
        data_dir,
        journal,
        tls,
    })))
}

/// One core less than the machine has (at least one, at most 8): a storm of logins must
/// not take the core the event loop runs on.
pub fn default_hash_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .clamp(1, 8)
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
}

/// `500ms`, `15`, `15s`, `30m`, `24h`.
pub fn duration(flag: &str, v: &str) -> Result<Duration, String> {
    let bad = || format!("{flag}: not a duration: {v} (examples: 500ms, 15s, 30m, 24h)");
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    // Every duration must fit the protocol's u32 millisecond fields.
    if d.as_millis() > u32::MAX as u128 {
        return Err(format!("{flag}: at most 49 days"));
    }
    Ok(d)
}

/// A number that must be at least 1.
fn at_least_1<T: std::str::FromStr + PartialOrd + From<u8>>(
    flag: &str,
    v: &str,
) -> Result<T, String> {
    let n: T = number(flag, v)?;
    if n < T::from(1) {
        return Err(format!("{flag} must be at least 1"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(o) => Ok(*o),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_work_on_loopback() {
        let o = run(&[]).unwrap();
        assert_eq!(o.server.listen.to_string(), "127.0.0.1:7450");
        assert_eq!(o.server.engine.heartbeat_timeout, Duration::from_secs(15));
        assert_eq!(o.data_dir, PathBuf::from("sessiond-data"));
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
        ])
        .unwrap();
        assert_eq!(o.server.engine.on_limit, OnLimit::RejectNew);
        assert_eq!(o.server.engine.duplicate, DuplicatePolicy::Takeover);
        assert!(!o.server.engine.registration_open);
        assert_eq!(o.server.engine.max_sessions_per_user, 3);
        assert_eq!(o.server.listen.port(), 0);
        assert_eq!(
            o.server.engine.heartbeat_interval,
            Duration::from_millis(500)
        );
        assert_eq!(o.server.engine.session_idle, Duration::from_secs(1800));
        assert_eq!(o.server.engine.session_lifetime, Duration::from_secs(86400));
        assert_eq!(o.server.engine.max_frame, 4096);
        assert_eq!(o.server.iterations, 1000);
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
        assert_eq!(
            o.server.shutdown_grace,
            std::time::Duration::from_millis(500)
        );
        assert!(run(&["--frames-per-turn", "0"]).is_err());
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
    fn rejects_nonsense() {
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["--listen"]).is_err());
        assert!(run(&["--max-frame", "10"]).is_err());
        assert!(run(&["--heartbeat-interval", "20s"]).is_err());
        assert!(run(&["--heartbeat-timeout", "5x"]).is_err());
        assert!(run(&["--iterations", "0"]).is_err());
        assert!(run(&["--session-lifetime", "9999h"]).is_err());
        assert!(run(&["--on-limit", "sometimes"]).is_err());
        assert!(run(&["--duplicate", "maybe"]).is_err());
        assert!(matches!(parse(["-h".to_string()]), Ok(Command::Help)));
        assert!(matches!(
            parse(["repair".to_string(), "--data-dir".into(), "/x".into()]),
            Ok(Command::Repair(d)) if d == std::path::Path::new("/x")
        ));
        assert!(parse(["repair".to_string(), "--bogus".into()]).is_err());
    }
}
