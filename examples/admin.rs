//! Administrator's command-line client: logs in, runs one command, then logs out and
//! disconnects (so each run leaves no session behind).
//!
//! ```text
//! cargo run --example admin -- [--addr HOST:PORT] [--user NAME] COMMAND [ARGS]
//!
//! sessions [USER]                    every live session, or USER's (`*`: this one)
//! revoke SESSION_ID                  end one session (16 hex digits as `sessions` prints
//!                                    them, or 0x..., or decimal)
//! logout-user USER                   end every session of USER
//! suspend USER | unsuspend USER      block (and log out) or unblock an account
//! set-role USER user|admin           change an account's role
//! stats                              the server's counters
//! audit [--user U] [--kind NAME] [--limit N]
//!                                    audit records, oldest first (N: default 100)
//! ```
//! `--addr` defaults to 127.0.0.1:7450 and `--user` to `admin`. The password is taken from
//! `SESSIOND_PASSWORD`, or else read as one line from stdin (a terminal echoes it; prefer
//! the variable or a pipe). The password and the session token are never printed.
//!
//! Exit status: 0 done; 1 the server refused (FORBIDDEN, NOT_FOUND, a failed login, ...,
//! shown as `error: CODE: message` on stderr); 2 usage error (bad arguments, no password);
//! 3 network error (cannot connect, timeout, connection closed).

use std::io::BufRead;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, RangedU64ValueParser, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};
use sessiond::client::{utc, AuditRequest, Client, ClientError, LoginOutcome};
use sessiond::engine::event::AuditKind;
use sessiond::protocol::{Role, SessionEntry, MAX_PAGE, MAX_USERNAME};

/// Upper bound on the pages one command fetches (a server sends at most 100 per page).
const MAX_PAGES: usize = 10_000;

/// Administrator's command-line client: logs in, runs one command, then logs out and
/// disconnects (so each run leaves no session behind).
#[derive(Parser)]
#[command(
    name = "admin",
    args_override_self = true,
    after_help = "password: $SESSIOND_PASSWORD or one line of stdin\n\
                  exit status: 0 done, 1 refused by the server, 2 usage error, 3 network error"
)]
struct Args {
    /// The server
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7450")]
    addr: String,
    /// The administrator to log in as
    #[arg(long, value_name = "NAME", default_value = "admin", value_parser = username)]
    user: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every live session, or USER's (`*` marks this one)
    Sessions {
        /// Only this user's sessions
        #[arg(value_parser = username)]
        user: Option<String>,
    },
    /// End one session
    Revoke {
        /// 16 hex digits as `sessions` prints them, or 0x..., or decimal
        #[arg(value_parser = session_id)]
        session_id: u64,
    },
    /// End every session of USER
    LogoutUser {
        /// The account
        #[arg(value_parser = username)]
        user: String,
    },
    /// Block an account (and log it out)
    Suspend {
        /// The account
        #[arg(value_parser = username)]
        user: String,
    },
    /// Unblock an account
    Unsuspend {
        /// The account
        #[arg(value_parser = username)]
        user: String,
    },
    /// Change an account's role
    SetRole {
        /// The account
        #[arg(value_parser = username)]
        user: String,
        /// The new role
        #[arg(value_enum)]
        role: RoleName,
    },
    /// The server's counters
    Stats,
    /// Audit records, oldest first
    Audit {
        /// Only this user's records
        #[arg(long, value_name = "U", value_parser = username)]
        user: Option<String>,
        /// Only records of this kind
        #[arg(long, value_name = "NAME", value_parser = audit_kind())]
        kind: Option<AuditKind>,
        /// At most N records
        #[arg(
            long,
            value_name = "N",
            default_value_t = 100,
            value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000)
        )]
        limit: usize,
    },
}

/// A role as `set-role` spells it.
#[derive(Clone, Copy, ValueEnum)]
enum RoleName {
    /// An ordinary account
    User,
    /// May run these commands
    Admin,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Role {
        match r {
            RoleName::User => Role::User,
            RoleName::Admin => Role::Admin,
        }
    }
}

/// What ends a run early: the exit status and the message for stderr.
struct Failure(i32, String);

const REFUSED: i32 = 1;
const USAGE_ERROR: i32 = 2;
const NETWORK: i32 = 3;

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        match e {
            e if e.is_network() => Failure(NETWORK, e.to_string()),
            ClientError::Server { failure, fatal } => {
                let closed = if fatal { " (connection closed)" } else { "" };
                let m = format!("{}: {}{closed}", failure.code.name(), failure.message);
                Failure(REFUSED, m)
            }
            ClientError::Usage(m) => Failure(USAGE_ERROR, m.to_owned()),
            other => Failure(REFUSED, other.to_string()),
        }
    }
}

fn main() {
    let args = Args::parse();
    if let Err(Failure(status, message)) = run(&args) {
        eprintln!("error: {message}");
        std::process::exit(status);
    }
}

fn username(u: &str) -> Result<String, String> {
    if u.is_empty() || u.len() > MAX_USERNAME {
        return Err(format!("a username is 1 to {MAX_USERNAME} bytes"));
    }
    Ok(u.to_owned())
}

/// 16 hex digits (as `sessions` prints them) or `0x...` are hex; anything else decimal.
fn session_id(s: &str) -> Result<u64, String> {
    let parsed = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None if s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(s, 16).ok()
        }
        None => s.parse().ok(),
    };
    parsed.ok_or(format!(
        "not a session id: {s:?} (16 hex digits, 0x..., or decimal)"
    ))
}

/// `--kind`: one of the names of [`AuditKind::ALL`], which the help lists.
fn audit_kind() -> impl TypedValueParser<Value = AuditKind> {
    PossibleValuesParser::new(AuditKind::ALL.iter().map(|k| k.name()))
        .try_map(|s| AuditKind::from_name(&s).ok_or("not an audit kind"))
}

fn read_password(user: &str) -> Result<String, Failure> {
    if let Ok(p) = std::env::var("SESSIOND_PASSWORD") {
        return Ok(p);
    }
    eprint!("password for {user} (one line from stdin, or set SESSIOND_PASSWORD): ");
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure(USAGE_ERROR, format!("cannot read the password: {e}")))?;
    eprintln!();
    if n == 0 {
        return Err(Failure(USAGE_ERROR, "no password given".into()));
    }
    let end = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(end);
    Ok(line)
}

fn run(args: &Args) -> Result<(), Failure> {
    let password = read_password(&args.user)?;
    let mut client = Client::connect(args.addr.as_str(), Duration::from_secs(10))?;
    let outcome = client.login(
        &args.user,
        &password,
        "sessiond-admin",
        std::env::consts::OS,
    )?;
    if let LoginOutcome::Failure(f) = outcome {
        let retry = match f.retry_after_ms {
            0 => String::new(),
            ms => format!(" (retry in {} s)", ms.div_ceil(1000)),
        };
        let reason = f.reason.name();
        let m = format!("login failed: {reason}: {}{retry}", f.message);
        return Err(Failure(REFUSED, m));
    }
    let result = execute(&mut client, &args.command);
    if !matches!(&result, Err(e) if e.is_network()) {
        finish(client);
    }
    result.map_err(Failure::from)
}

/// Logs out (no detached session is left behind) and disconnects. When the command ended
/// this very session (suspending yourself, say) the server has already closed the
/// connection, which is fine.
fn finish(mut client: Client) {
    match client.logout() {
        Ok(_) => {}
        Err(e) if e.token_is_dead() || e.is_network() => return,
        Err(e) => eprintln!("warning: logout: {e}"),
    }
    match client.disconnect() {
        Ok(_) => {}
        Err(e) if e.is_network() => {}
        Err(e) => eprintln!("warning: disconnect: {e}"),
    }
}

fn execute(c: &mut Client, command: &Command) -> Result<(), ClientError> {
    match command {
        Command::Sessions { user } => sessions(c, user.as_deref().unwrap_or("")),
        Command::Revoke { session_id: id } => {
            c.admin_revoke_session(*id)?;
            println!("revoked session {id:016x}");
            Ok(())
        }
        Command::LogoutUser { user: u } => {
            let n = c.admin_logout_user(u)?;
            println!("logged out {u}: {n} session(s) ended");
            Ok(())
        }
        Command::Suspend { user: u } => {
            let n = c.admin_suspend_user(u)?;
            println!("suspended {u}: {n} session(s) ended");
            Ok(())
        }
        Command::Unsuspend { user: u } => {
            c.admin_unsuspend_user(u)?;
            println!("unsuspended {u}");
            Ok(())
        }
        Command::SetRole { user: u, role } => {
            let role = Role::from(*role);
            match c.admin_set_role(u, role)? {
                0 => println!("{u} already has role {} (no change)", role.name()),
                _ => println!("{u} now has role {}", role.name()),
            }
            Ok(())
        }
        Command::Stats => stats(c),
        Command::Audit { user, kind, limit } => {
            let user = user.as_deref().unwrap_or("");
            audit(c, user, kind.map_or(0, |k| k as u8), *limit)
        }
    }
}

fn sessions(c: &mut Client, user: &str) -> Result<(), ClientError> {
    let mut all: Vec<SessionEntry> = Vec::new();
    let mut total = 0;
    for _ in 0..MAX_PAGES {
        let page = c.admin_list_sessions(user, all.len() as u32, 0)?;
        total = page.total;
        let got = page.sessions.len();
        all.extend(page.sessions);
        if got == 0 || all.len() >= total as usize {
            break;
        }
    }
    if all.is_empty() {
        println!("no live sessions");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all.iter().map(session_row).collect();
    table(
        &[
            "SESSION",
            "USER",
            "DEVICE",
            "ADDRESS",
            "CREATED",
            "LAST ACTIVE",
            "EXPIRES",
            "LIVE",
        ],
        &rows,
    );
    let mine = if all.iter().any(|s| s.current) {
        "; * = this session"
    } else {
        ""
    };
    println!(
        "{} of {total} session(s){mine}; live: a connection is bound to it",
        all.len()
    );
    Ok(())
}

fn session_row(s: &SessionEntry) -> Vec<String> {
    let device = match (s.client.as_str(), s.platform.as_str()) {
        ("", "") => "-".to_owned(),
        (c, "") | ("", c) => c.to_owned(),
        (c, p) => format!("{c} on {p}"),
    };
    vec![
        format!("{:016x}{}", s.session_id, if s.current { "*" } else { "" }),
        s.username.clone(),
        device,
        dash(&s.address),
        utc(s.created),
        utc(s.last_active),
        utc(s.expires),
        if s.connected { "yes" } else { "no" }.to_owned(),
    ]
}

fn stats(c: &mut Client) -> Result<(), ClientError> {
    let stats = c.admin_stats()?;
    let rows: Vec<Vec<String>> = stats
        .values
        .iter()
        .map(|(name, value)| vec![name.clone(), value.to_string()])
        .collect();
    table(&["NAME", "VALUE"], &rows);
    Ok(())
}

fn audit(c: &mut Client, user: &str, kind: u8, limit: usize) -> Result<(), ClientError> {
    let mut q = AuditRequest {
        username: user.to_owned(),
        kind,
        ..AuditRequest::default()
    };
    let mut rows = Vec::new();
    // One query scans at most 20,000 of the 100,000 records held, so a page may be
    // empty with a cursor to go on: the page bound covers that.
    for _ in 0..MAX_PAGES {
        q.limit = (limit - rows.len()).min(MAX_PAGE) as u16;
        let page = c.audit_query(&q)?;
        for e in page.entries.into_iter().take(limit - rows.len()) {
            let kind = AuditKind::from_u8(e.kind)
                .map(|k| k.name().to_owned())
                .unwrap_or_else(|| format!("kind {}", e.kind));
            let session = match e.session_id {
                0 => "-".to_owned(),
                id => format!("{id:016x}"),
            };
            rows.push(vec![
                e.seq.to_string(),
                utc(e.at),
                kind,
                dash(&e.username),
                session,
                dash(&e.address),
                dash(&e.detail),
            ]);
        }
        if page.next_cursor == 0 || rows.len() >= limit {
            break;
        }
        q.cursor = page.next_cursor;
    }
    if rows.is_empty() {
        println!("no audit records match");
        return Ok(());
    }
    let headers = [
        "SEQ", "TIME", "KIND", "USER", "SESSION", "ADDRESS", "DETAIL",
    ];
    table(&headers, &rows);
    Ok(())
}

fn dash(s: &str) -> String {
    if s.is_empty() { "-" } else { s }.to_owned()
}

/// Prints a table (`sessiond::client::table`).
fn table(headers: &[&str], rows: &[Vec<String>]) {
    for line in sessiond::client::table(headers, rows) {
        println!("{line}");
    }
}
