//! Administrator's command-line client: runs one command in the administrator's session,
//! which it keeps between runs, so running it never ends another session.
//!
//! ```text
//! cargo run --example admin -- [--addr HOST:PORT] [--user NAME] [--token-file PATH]
//!                              [--login] COMMAND [ARGS]
//!
//! sessions [USER]                    every live session, or USER's (`*`: this one)
//! revoke SESSION_ID                  end one session (16 hex digits as `sessions` prints
//!                                    them, or 0x..., or decimal)
//! logout-user USER                   end every session of USER
//! suspend USER | unsuspend USER      block (and log out) or unblock an account
//! set-role USER user|admin           change an account's role
//! set-password USER                  set USER's password (every session of USER ends;
//!                                    the new password from stdin, see below)
//! set-attr SESSION_ID KEY VALUE      set an attribute of any session (VALUE as text;
//!                                    its connection is not told)
//! unset-attr SESSION_ID KEY          remove an attribute of any session
//! set-app-role USER ROLE             give USER one of the server's application roles
//!                                    (its `--role`s); empty or `-`: none
//! set-profile USER KEY VALUE         set an attribute of USER's profile (VALUE as text)
//! unset-profile USER KEY             remove an attribute of USER's profile
//! stats                              the server's counters
//! users                              every account with its roles (ADMIN_LIST_USERS)
//! audit [--user U] [--kind NAME] [--limit N]
//!                                    the newest N audit records (default 100), printed
//!                                    oldest first
//! logout                             end the kept session and remove the token file
//! ```
//!
//! **The session.** The token of the administrator's session is kept in `--token-file`
//! (mode 0600; default `$HOME/.sessiond-admin.token`, or `sessiond-admin.token` in the
//! current directory when `HOME` is not set). Each run resumes it with VERIFY_SESSION and
//! ends with a disconnect, not a logout, so the next run resumes it again. The tool logs
//! in (as `--user`, default `admin`) only when the file holds no session that is still
//! valid, and then saves the new token there. So a series of commands is one session and
//! one login, instead of a login per command that, with one session per account (the
//! server's default), would end the account's other session each time. `logout` ends it
//! for good.
//!
//! `--token-file` may name the token file of the interactive client (`examples/client.rs`,
//! `sessiond.token`) to work in the operator's own session. While that client is
//! connected the server refuses to bind the session to a second connection
//! (DUPLICATE_SESSION, under its default `duplicate = reject`; `takeover` would move the
//! session here and end the client's connection): the tool then says so and stops
//! (status 1). It does not fall back to a login, which would end the client's session,
//! unless `--login` is given: log in with the password even when the file holds a
//! session, and keep the new one in the file. A valid session of another account than an
//! explicit `--user` is refused (status 2) rather than used or replaced.
//!
//! The password (needed only to log in) is taken from `SESSIOND_PASSWORD`, or else read
//! as one line from stdin, with echo off when stdin is a terminal. The password and the
//! session token are never printed.
//!
//! `set-password USER` reads the new password first, before it connects (typing takes
//! a while; a connection would sit idle meanwhile): one line of stdin, or, at a terminal,
//! typed twice with echo off. Only then, if a login is needed, the administrator's own
//! password as above (so from a pipe: the new password on the first line, the
//! administrator's on the second, unless `SESSIOND_PASSWORD` holds it). The server checks
//! the length (INVALID_ARGUMENT below its minimum, 8 bytes by default). Resetting your
//! own account's password ends this session too (the token file goes).
//!
//! Exit status: 0 done; 1 the server refused (FORBIDDEN, NOT_FOUND, a failed login, a
//! session in use elsewhere, ..., shown as `error: ...` on stderr); 2 usage error (bad
//! arguments, no password, another account's session); 3 network error (cannot connect,
//! timeout, connection closed).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::builder::{PossibleValuesParser, RangedU64ValueParser, TypedValueParser};
use clap::{Parser, Subcommand, ValueEnum};
use sessiond::client::{utc, AuditRequest, Client, ClientError, LoginOutcome, ResumeOutcome};
use sessiond::engine::event::AuditKind;
use sessiond::protocol::{
    AuditActor, AuditRecord, Role, SessionEntry, MAX_ATTR_KEY, MAX_ATTR_VALUE, MAX_RECORDS,
    MAX_ROLE_NAME, MAX_USERNAME,
};

#[path = "shared/secrets.rs"]
mod secrets;
use secrets::{echo, load_token, save_token};

/// Upper bound on the pages one command fetches (a server sends at most 100 per page).
const MAX_PAGES: usize = 10_000;
/// The account `--user` defaults to.
const DEFAULT_USER: &str = "admin";
/// The token file's name, in `$HOME` (with a leading dot) or the current directory.
const TOKEN_FILE: &str = "sessiond-admin.token";

/// Administrator's command-line client: runs one command in the administrator's session,
/// which it keeps in --token-file between runs (resumed each time; logs in only when the
/// file holds no valid session).
#[derive(Parser)]
#[command(
    name = "admin",
    args_override_self = true,
    after_help = "session: each run resumes the session kept in --token-file and disconnects \
                  (no logout), so the next run resumes it too; it logs in only when the file \
                  holds no valid session. A session in use on another connection (say, the \
                  interactive client's, with --token-file sessiond.token) is refused \
                  (DUPLICATE_SESSION), never replaced by a login, unless --login is given.\n\
                  password: $SESSIOND_PASSWORD or one line of stdin (echo off at a terminal); \
                  only needed to log in. set-password reads the new password first (one line \
                  of stdin; typed twice, echo off, at a terminal), then the login password \
                  if one is needed\n\
                  exit status: 0 done, 1 refused by the server, 2 usage error, 3 network error"
)]
struct Args {
    /// The server
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7450")]
    addr: String,
    /// The administrator to log in as [default: admin]; given explicitly, a kept session
    /// of another account is refused
    #[arg(long, value_name = "NAME", value_parser = username)]
    user: Option<String>,
    /// Where the session's token is kept between runs (mode 0600)
    /// [default: $HOME/.sessiond-admin.token]
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Log in with the password even when the token file holds a session, and keep the
    /// new one there (with one session per account this ends the account's other session)
    #[arg(long)]
    login: bool,
    #[command(subcommand)]
    command: Command,
}

impl Args {
    fn token_file(&self) -> PathBuf {
        if let Some(p) = &self.token_file {
            return p.clone();
        }
        match std::env::var_os("HOME") {
            Some(home) if !home.is_empty() => Path::new(&home).join(format!(".{TOKEN_FILE}")),
            _ => PathBuf::from(TOKEN_FILE),
        }
    }
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
    /// Set USER's password (every session of USER ends); the new one is read from stdin
    /// first (typed twice, echo off, at a terminal)
    SetPassword {
        /// The account
        #[arg(value_parser = username)]
        user: String,
    },
    /// Set an attribute of any session (a connection bound to it is not told)
    SetAttr {
        /// 16 hex digits as `sessions` prints them, or 0x..., or decimal
        #[arg(value_parser = session_id)]
        session_id: u64,
        /// The attribute's name (1 to 64 bytes)
        #[arg(value_parser = attr_key)]
        key: String,
        /// Its value, as text (at most 3,904 bytes)
        #[arg(value_parser = attr_value)]
        value: String,
    },
    /// Remove an attribute of any session
    UnsetAttr {
        /// 16 hex digits as `sessions` prints them, or 0x..., or decimal
        #[arg(value_parser = session_id)]
        session_id: u64,
        /// The attribute's name
        #[arg(value_parser = attr_key)]
        key: String,
    },
    /// Give USER one of the server's application roles (declared with its --role), or none
    /// (its sessions learn it at their next login or resume)
    SetAppRole {
        /// The account
        #[arg(value_parser = username)]
        user: String,
        /// The role; an empty string or `-`: none
        #[arg(value_parser = app_role)]
        role: String,
    },
    /// Set an attribute of USER's profile (sent to the user in USER_INFO)
    SetProfile {
        /// The account
        #[arg(value_parser = username)]
        user: String,
        /// The attribute's name (1 to 64 bytes)
        #[arg(value_parser = attr_key)]
        key: String,
        /// Its value, as text (at most 3,904 bytes)
        #[arg(value_parser = attr_value)]
        value: String,
    },
    /// Remove an attribute of USER's profile
    UnsetProfile {
        /// The account
        #[arg(value_parser = username)]
        user: String,
        /// The attribute's name
        #[arg(value_parser = attr_key)]
        key: String,
    },
    /// The server's counters
    Stats,
    /// Every account, with its protocol and application roles
    Users,
    /// The newest audit records, printed oldest first
    Audit {
        /// Only this user's records
        #[arg(long, value_name = "U", value_parser = username)]
        user: Option<String>,
        /// Only records of this kind
        #[arg(long, value_name = "NAME", value_parser = audit_kind())]
        kind: Option<AuditKind>,
        /// The newest N records
        #[arg(
            long,
            value_name = "N",
            default_value_t = 100,
            value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000)
        )]
        limit: usize,
    },
    /// End the kept session and remove the token file
    Logout,
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

/// An attribute key: 1 to 64 bytes (checked here: the client would cut a longer one).
fn attr_key(k: &str) -> Result<String, String> {
    if k.is_empty() || k.len() > MAX_ATTR_KEY {
        return Err(format!("a key is 1 to {MAX_ATTR_KEY} bytes"));
    }
    Ok(k.to_owned())
}

fn attr_value(v: &str) -> Result<String, String> {
    if v.len() > MAX_ATTR_VALUE {
        return Err(format!("a value is at most {MAX_ATTR_VALUE} bytes"));
    }
    Ok(v.to_owned())
}

/// `set-app-role`'s ROLE: `-` or empty for none; at most 32 bytes (whether the server
/// declares it is the server's to say: INVALID_ARGUMENT, listing the roles it has).
fn app_role(r: &str) -> Result<String, String> {
    let r = if r == "-" { "" } else { r };
    if r.len() > MAX_ROLE_NAME {
        return Err(format!("a role is at most {MAX_ROLE_NAME} bytes"));
    }
    Ok(r.to_owned())
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
    read_secret(&format!(
        "password for {user} (one line from stdin, or set SESSIOND_PASSWORD): "
    ))
}

/// `set-password`'s new password: one line of stdin; at a terminal, typed twice.
fn read_new_password(user: &str) -> Result<String, Failure> {
    let first = read_secret(&format!("new password for {user}: "))?;
    if std::io::stdin().is_terminal() && read_secret("the same again: ")? != first {
        return Err(Failure(USAGE_ERROR, "the two passwords differ".into()));
    }
    Ok(first)
}

/// One line of stdin after `prompt` (on stderr), with echo off when stdin is a terminal.
fn read_secret(prompt: &str) -> Result<String, Failure> {
    // echo off first: what is typed once the prompt shows is never echoed
    let quiet = std::io::stdin().is_terminal().then(echo::Off::new);
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    drop(quiet);
    eprintln!();
    let n = read.map_err(|e| Failure(USAGE_ERROR, format!("cannot read the password: {e}")))?;
    if n == 0 {
        return Err(Failure(USAGE_ERROR, "no password given".into()));
    }
    let end = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(end);
    Ok(line)
}

fn run(args: &Args) -> Result<(), Failure> {
    let path = args.token_file();
    let logout = matches!(args.command, Command::Logout);
    // before any connection: see the module docs
    let new_password = match &args.command {
        Command::SetPassword { user } => Some(read_new_password(user)?),
        _ => None,
    };
    let Some(mut client) = session(args, &path, !logout)? else {
        println!("no kept session in {}", path.display());
        return Ok(());
    };
    let result = execute(&mut client, &args.command, new_password.as_deref());
    if logout && result.is_ok() {
        let _ = std::fs::remove_file(&path);
        println!("{} removed", path.display());
    }
    finish(client, &path, &result);
    result.map_err(Failure::from)
}

fn connect(args: &Args) -> Result<Client, Failure> {
    let addr = args.addr.as_str();
    Client::connect(addr, Duration::from_secs(10))
        .map_err(|e| Failure(NETWORK, format!("cannot connect to {addr}: {e}")))
}

/// This run's session: the one in the token file, resumed; or else (`may_login`) a new
/// login, whose token is then kept there. `None`: no session and `may_login` is false.
fn session(args: &Args, path: &Path, may_login: bool) -> Result<Option<Client>, Failure> {
    let file = path.display();
    // --login skips the kept session, except for `logout`, which is about that one
    if let Some(token) = load_token(path).filter(|_| !args.login || !may_login) {
        let mut c = connect(args)?;
        // Design: no device in VERIFY_SESSION, so a borrowed session (the interactive
        // client's) keeps the device it has; the tool's own says sessiond-admin anyway.
        match c.resume(&token, "", "")? {
            ResumeOutcome::Valid(s) => match &args.user {
                Some(u) if *u != s.username => {
                    let _ = c.disconnect();
                    let m = format!(
                        "{file} holds a session of {}, not {u}: use another --token-file, \
                         or --login to log in as {u} and keep that session instead",
                        s.username
                    );
                    return Err(Failure(USAGE_ERROR, m));
                }
                _ => return Ok(Some(c)),
            },
            ResumeOutcome::Invalid(i) => {
                let _ = std::fs::remove_file(path);
                let next = if may_login {
                    "logging in"
                } else {
                    "removed it"
                };
                eprintln!(
                    "note: the session kept in {file} has ended ({}); {next}",
                    i.reason.name()
                );
                let _ = c.disconnect();
            }
            // protocol.md 5.14: "The token is still valid (do not delete it)."
            ResumeOutcome::Duplicate(d) => {
                let m = format!(
                    "the session kept in {file} ({:016x}) is in use on another connection \
                     (an interactive client?), and the server lets one connection at a time \
                     hold a session (DUPLICATE_SESSION). Quit that client (its session stays) \
                     and run this again, or use another --token-file; --login logs in anew \
                     instead, which with one session per account ends the other session",
                    d.session_id
                );
                return Err(Failure(REFUSED, m));
            }
        }
    }
    if !may_login {
        return Ok(None);
    }
    let user = args.user.as_deref().unwrap_or(DEFAULT_USER);
    let password = read_password(user)?;
    // a fresh connection: the login deadline runs from the accept, and the password may
    // have taken a while to type
    let mut c = connect(args)?;
    let outcome = c.login(user, &password, "sessiond-admin", std::env::consts::OS)?;
    match outcome {
        LoginOutcome::Success(s) => {
            match save_token(path, &s.token) {
                Ok(()) => eprintln!("logged in as {user}; the session is kept in {file}"),
                Err(e) => eprintln!(
                    "warning: cannot keep the session in {file} ({e}); the next run logs in again"
                ),
            }
            Ok(Some(c))
        }
        LoginOutcome::Failure(f) => {
            let retry = match f.retry_after_ms {
                0 => String::new(),
                ms => format!(" (retry in {} s)", ms.div_ceil(1000)),
            };
            let reason = f.reason.name();
            let m = format!("login failed: {reason}: {}{retry}", f.message);
            Err(Failure(REFUSED, m))
        }
    }
}

/// Disconnects, leaving the session for the next run (no logout). When the command ended
/// this very session (suspending yourself, say) the server has closed the connection and
/// the token is dead: the file goes.
fn finish(client: Client, path: &Path, result: &Result<(), ClientError>) {
    let dead = match result {
        Err(e) if e.token_is_dead() => true,
        Err(e) if e.is_network() => return,
        _ => match client.disconnect() {
            Ok(_) => false,
            Err(e) if e.token_is_dead() => true,
            Err(e) if e.is_network() => false,
            Err(e) => {
                eprintln!("warning: disconnect: {e}");
                false
            }
        },
    };
    if dead {
        let _ = std::fs::remove_file(path);
    }
}

/// Runs `command`; `new_password` is `set-password`'s, read before connecting.
fn execute(
    c: &mut Client,
    command: &Command,
    new_password: Option<&str>,
) -> Result<(), ClientError> {
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
        Command::SetPassword { user: u } => {
            let password = new_password.ok_or(ClientError::Usage("no new password"))?;
            let n = c.admin_set_password(u, password)?;
            println!("set the password of {u}: {n} session(s) ended");
            Ok(())
        }
        Command::SetAttr {
            session_id: id,
            key,
            value,
        } => {
            c.admin_set_attr(*id, key, Some(value.as_bytes()))?;
            println!("set {key} of session {id:016x} ({} bytes)", value.len());
            Ok(())
        }
        Command::UnsetAttr {
            session_id: id,
            key,
        } => {
            match c.admin_set_attr(*id, key, None)? {
                0 => println!("{key} of session {id:016x} was not set (no change)"),
                _ => println!("removed {key} of session {id:016x}"),
            }
            Ok(())
        }
        Command::SetAppRole { user: u, role } => {
            let shown = if role.is_empty() {
                "no application role"
            } else {
                role
            };
            match c.admin_set_app_role(u, role)? {
                0 => println!("{u} already has {shown} (no change)"),
                _ if role.is_empty() => println!("{u} now has no application role"),
                _ => println!("{u} now has application role {role}"),
            }
            Ok(())
        }
        Command::SetProfile {
            user: u,
            key,
            value,
        } => {
            c.admin_set_profile(u, key, Some(value.as_bytes()))?;
            println!("set {key} of {u}'s profile ({} bytes)", value.len());
            Ok(())
        }
        Command::UnsetProfile { user: u, key } => {
            match c.admin_set_profile(u, key, None)? {
                0 => println!("{key} of {u}'s profile was not set (no change)"),
                _ => println!("removed {key} of {u}'s profile"),
            }
            Ok(())
        }
        Command::Stats => stats(c),
        Command::Users => users(c),
        Command::Logout => {
            let id = c.logout()?;
            println!("logged out session {id:016x}");
            Ok(())
        }
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
    vec![
        format!("{:016x}{}", s.session_id, if s.current { "*" } else { "" }),
        s.username.clone(),
        device(&s.client, &s.platform),
        dash(&s.address),
        utc(s.created),
        utc(s.last_active),
        utc(s.expires),
        if s.connected { "yes" } else { "no" }.to_owned(),
    ]
}

fn users(c: &mut Client) -> Result<(), ClientError> {
    let mut rows = Vec::new();
    let mut total = 0;
    for _ in 0..MAX_PAGES {
        let page = c.admin_list_users(rows.len() as u32, 0)?;
        total = page.total;
        let got = page.users.len();
        rows.extend(page.users.iter().map(|u| {
            vec![
                u.user_id.to_string(),
                u.username.clone(),
                u.role.name().to_owned(),
                dash(&u.app_role),
                if u.suspended { "yes" } else { "no" }.to_owned(),
                utc(u.created),
                if u.last_login == 0 {
                    "-".to_owned()
                } else {
                    utc(u.last_login)
                },
            ]
        }));
        if got == 0 || rows.len() >= total as usize {
            break;
        }
    }
    table(
        &[
            "ID",
            "USER",
            "ROLE",
            "APP ROLE",
            "SUSPENDED",
            "CREATED",
            "LAST LOGIN",
        ],
        &rows,
    );
    println!("{} of {total} account(s)", rows.len());
    Ok(())
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

/// The newest `limit` records (AUDIT_SEARCH newest first, following `next_cursor`),
/// printed oldest first.
fn audit(c: &mut Client, user: &str, kind: u8, limit: usize) -> Result<(), ClientError> {
    let mut q = AuditRequest {
        username: user.to_owned(),
        kind,
        newest_first: true,
        ..AuditRequest::default()
    };
    let mut newest: Vec<AuditRecord> = Vec::new();
    // One search scans at most 20,000 of the 100,000 records held, so a page may be
    // empty with a cursor to go on: the page bound covers that.
    for _ in 0..MAX_PAGES {
        let want = (limit - newest.len()).min(MAX_RECORDS);
        q.limit = want as u16;
        let page = c.audit_search(&q)?;
        newest.extend(page.records.into_iter().take(want));
        if page.next_cursor == 0 || newest.len() >= limit {
            break;
        }
        q.cursor = page.next_cursor;
    }
    if newest.is_empty() {
        println!("no audit records match");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = newest.iter().rev().map(audit_row).collect();
    let headers = [
        "TIME", "KIND", "REASON", "USER", "SESSION", "ADDRESS", "DEVICE", "BY", "NOTE",
    ];
    table(&headers, &rows);
    Ok(())
}

fn audit_row(r: &AuditRecord) -> Vec<String> {
    let kind = AuditKind::from_u8(r.kind);
    let reason = match kind.and_then(|k| k.reason_name(r.reason)) {
        Some(name) => name.to_owned(),
        None if r.reason == 0 => "-".to_owned(),
        None => format!("{:#06x}", r.reason),
    };
    vec![
        utc(r.at),
        kind.map_or_else(|| format!("kind {}", r.kind), |k| k.name().to_owned()),
        reason,
        dash(&r.username),
        session_hex(r.session_id),
        dash(&r.address),
        device(&r.client, &r.platform),
        actor(&r.actor),
        dash(&r.note),
    ]
}

/// Who caused it: `NAME (session ID, ADDRESS, DEVICE)`, each part when known; `-`: the
/// subject itself, a timer or the operator.
fn actor(a: &AuditActor) -> String {
    let name = match (a.username.as_str(), a.user_id) {
        ("", 0) => String::new(),
        ("", id) => format!("user {id}"),
        (n, _) => n.to_owned(),
    };
    let mut parts = Vec::new();
    if a.session_id != 0 {
        parts.push(format!("session {:016x}", a.session_id));
    }
    if !a.address.is_empty() {
        parts.push(a.address.clone());
    }
    if !a.client.is_empty() || !a.platform.is_empty() {
        parts.push(device(&a.client, &a.platform));
    }
    match (name.is_empty(), parts.is_empty()) {
        (true, true) => "-".to_owned(),
        (false, true) => name,
        (true, false) => format!("({})", parts.join(", ")),
        (false, false) => format!("{name} ({})", parts.join(", ")),
    }
}

fn session_hex(id: u64) -> String {
    match id {
        0 => "-".to_owned(),
        id => format!("{id:016x}"),
    }
}

/// `client on platform`, either alone, or `-`.
fn device(client: &str, platform: &str) -> String {
    match (client, platform) {
        ("", "") => "-".to_owned(),
        (c, "") | ("", c) => c.to_owned(),
        (c, p) => format!("{c} on {p}"),
    }
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
