//! Example client, interactive or scripted.
//!
//! **Interactive** (the default): resumes the session in its token file when it has one
//! and logs in as `--user` otherwise, saves the token (mode 0600), heartbeats at the
//! interval the server gives, shows server pushes as they arrive (a new login elsewhere,
//! a revocation, an expiry) in plain words, and takes commands at a prompt
//! (`sessiond alice> `; `help` lists them, one line each):
//!
//! ```text
//! login USER [PASSWORD]      register USER EMAIL [PASSWORD]    whoami
//! sessions                   revoke SESSION_ID                 heartbeat
//! logout                     logout-all [others|all]           passwd [OLD NEW]
//! set KEY VALUE              get [KEY]                         unset KEY
//! profile [KEY]              profile-set KEY VALUE             profile-unset KEY
//! help                       quit
//! ```
//!
//! **Session attributes** (protocol.md 5.39 to 5.42): `set KEY VALUE` stores the rest of
//! the line (trimmed) as the value's UTF-8 bytes, `get` shows every attribute (or `get
//! KEY` the one) as `key=value`, `unset KEY` removes one. A value is shown bare when it is
//! text without blanks, quotes or control characters, quoted with escapes (`"a b"`) when
//! it is other text, and as `0x` and hex digits when it is not UTF-8. They live in the
//! session: a resume (the next start, or after a lost connection) brings them back in the
//! server's ATTRS push, shown as `session attributes: game=456` (script mode: a `push
//! attrs session=... count=N key=value ...` line).
//!
//! **Profile and application role** (protocol.md 5.44 to 5.46): the account's own, kept by
//! the server. `profile` shows them (PROFILE_GET; `profile KEY`: that attribute only) as
//! `role: educator; profile: display_name=Alice A.`, `profile-set KEY VALUE` sets an
//! attribute (the rest of the line, as text), `profile-unset KEY` removes one; the role is
//! an administrator's to give (`examples/admin.rs set-app-role`). When the account has
//! either, the server pushes them (USER_INFO) right after a login or a resume, shown the
//! same way (script mode: a `push user_info user_id=N role=R count=N key=value ...` line,
//! values written as `get` writes them, `role=` empty for none).
//!
//! A password that is not in the command (nor in `SESSIOND_PASSWORD`) is asked for, and
//! read with echo off when stdin is a terminal (`stty -echo`); from a pipe it is one line,
//! as is every command (which the prompt then repeats, so a transcript reads like a
//! session at a terminal).
//!
//! A dead token (revoked, expired, logged out) is deleted; a lost connection is
//! re-established with backoff (200 ms doubling to 10 s, 30 attempts in a row at most)
//! and the session resumed, never logged out. A server never reached is tried 5 times
//! (about 3 s), then the client stops: `cannot connect to 127.0.0.1:7450: Connection
//! refused (after 5 attempts)` on stderr, exit status 3.
//!
//! **Script** (`--script`, for test harnesses and shells): the same commands, from the
//! arguments after `--` (separated by `;`) or else one per line of stdin, plus `resume`
//! (the token file's session) and `wait MS` (wait for pushes, heartbeating). Nothing
//! happens implicitly. Each command prints one line: `ok COMMAND key=value ...` or
//! `error COMMAND CLASS CODE message`; pushes print as `push KIND key=value ...`. The
//! first error stops the script, and the exit status says which class of failure it was:
//!
//! | status | class | meaning |
//! |-------:|-------|---------|
//! | 0 | - | every command succeeded |
//! | 1 | `refused` | the server said no (LOGIN_FAILURE, FORBIDDEN, WRONG_PASSWORD, SESSION_INVALID, ...) |
//! | 2 | `usage` | a bad command or argument, or no session for a command that needs one |
//! | 3 | `network` | cannot connect, connection lost, or no answer in time |
//! | 4 | `session_ended` | the session was revoked or expired |
//! | 5 | `protocol` | the server sent something this client does not understand |
//!
//! ```text
//! cargo run --example client -- --user admin
//! SESSIOND_PASSWORD=... cargo run --example client -- --addr 127.0.0.1:7450 --user admin
//! SESSIOND_PASSWORD=... cargo run --example client -- --user carol --register carol@example.org
//! cargo run --example client -- --script -- 'login alice pw; sessions; logout'
//! ```
//!
//! TLS: `--ca-file ca.pem` (trust that CA) or `--tls` (the system's roots), with the
//! certificate checked against `--server-name` (default: the host of `--addr`);
//! `--insecure-skip-verify` turns checking off, for local testing only.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use clap::Parser;
use sessiond::client::{
    describe_expired, describe_revoked, table, utc, Client, ClientError, LoginOutcome,
    RegisterOutcome, ResumeOutcome,
};
use sessiond::protocol::{
    Frame, LogoutScope, Message, SessionInfo, SessionList, UserInfo, MAX_ATTR_KEY, MAX_ATTR_VALUE,
};
use sessiond::tls::{client_config, Trust};

#[path = "shared/secrets.rs"]
mod secrets;
use secrets::{echo, load_token, save_token};

const CLIENT_NAME: &str = "sessiond-example";

/// The commands and what each does: `help` prints them, and a known command with the
/// wrong arguments gets its line.
const HELP: &[(&str, &str)] = &[
    (
        "login USER [PASSWORD]",
        "log in (the password is asked for when not given)",
    ),
    (
        "register USER EMAIL [PASSWORD]",
        "create an account (then `login`)",
    ),
    ("whoami", "this session: user, role, session id"),
    ("sessions", "your sessions (* marks this one)"),
    ("revoke SESSION_ID", "end one of your sessions"),
    (
        "heartbeat",
        "send a heartbeat now (they also go out on their own)",
    ),
    ("logout", "end this session and remove the token file"),
    (
        "logout-all [others|all]",
        "end your other sessions (the default), or all",
    ),
    (
        "passwd [OLD NEW]",
        "change your password (asked for when not given)",
    ),
    (
        "set KEY VALUE",
        "set an attribute of this session (VALUE: the rest of the line, as text)",
    ),
    ("get [KEY]", "this session's attributes, or the one named"),
    ("unset KEY", "remove an attribute of this session"),
    (
        "profile [KEY]",
        "your account's application role and profile, or one attribute of it",
    ),
    (
        "profile-set KEY VALUE",
        "set an attribute of your profile (VALUE: the rest of the line, as text)",
    ),
    ("profile-unset KEY", "remove an attribute of your profile"),
    ("resume", "resume the token file's session (script mode)"),
    (
        "wait MS",
        "wait up to MS milliseconds for a push (script mode)",
    ),
    ("help", "this list"),
    (
        "quit",
        "disconnect and exit; the session stays for the next start",
    ),
];

/// Attempts to reach a server this run has never reached before giving up (with the
/// backoff below: about 3 s in all).
const CONNECT_ATTEMPTS: u32 = 5;
/// Attempts in a row to get a lost connection back before giving up (about 4.5 min).
const RECONNECT_ATTEMPTS: u32 = 30;
/// The first wait before a retry, doubled after each failure up to `BACKOFF_MAX`.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Example sessiond client: interactive (resumes or logs in, heartbeats, shows pushes,
/// takes commands at a prompt: `help` lists them) or scripted (--script: one result line
/// per command and an exit status per class of failure).
#[derive(Parser)]
#[command(
    name = "client",
    args_override_self = true,
    after_help = "password: in the command, $SESSIOND_PASSWORD, or a line of stdin (echo off \
                  at a terminal)\n\
                  connecting: a server never reached is tried 5 times (about 3 s), then exit \
                  status 3; a lost connection is re-made with backoff (up to 30 tries in a row) \
                  and the session resumed"
)]
struct Args {
    /// The server
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7450")]
    addr: String,
    /// Log in as NAME when the token file holds no session to resume (interactive)
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Where the session token is kept (mode 0600)
    #[arg(long, value_name = "PATH", default_value = "sessiond.token")]
    token_file: PathBuf,
    /// Register --user with this email first (interactive)
    #[arg(long, value_name = "EMAIL")]
    register: Option<String>,
    /// TLS, trusting the system's root certificates
    #[arg(long, conflicts_with = "ca_file")]
    tls: bool,
    /// TLS, trusting the CA certificates in this PEM file
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// The name the server's certificate must be for [default: the host of --addr]
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// TLS without checking the server's certificate: anyone on the path can read the
    /// password and token (testing only)
    #[arg(long, conflicts_with_all = ["tls", "ca_file"])]
    insecure_skip_verify: bool,
    /// Script mode: the commands after `--`, or else one per line of stdin
    #[arg(long)]
    script: bool,
    /// The script (script mode even without --script): commands separated by `;`, the
    /// words after `--` joined by spaces first
    #[arg(last = true, value_name = "CMD")]
    commands: Vec<String>,
}

impl Args {
    /// TLS, and what to trust (the three options exclude each other: a check the user
    /// asked for is never silently dropped, and a warning that nothing is checked is never
    /// printed for a check that is made after all).
    fn trust(&self) -> Option<Trust> {
        if self.insecure_skip_verify {
            Some(Trust::InsecureSkipVerify)
        } else if let Some(ca) = &self.ca_file {
            Some(Trust::CaFile(ca.clone()))
        } else {
            self.tls.then_some(Trust::SystemRoots)
        }
    }

    /// Script mode's commands (none given: read from stdin), or `None` for interactive.
    fn script(&self) -> Option<Vec<String>> {
        if !self.script && self.commands.is_empty() {
            return None;
        }
        let cmds = self.commands.join(" ");
        Some(
            cmds.split(';')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// Failure classes and their exit statuses (the module docs' table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Refused = 1,
    Usage = 2,
    Network = 3,
    SessionEnded = 4,
    Protocol = 5,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Refused => "refused",
            Class::Usage => "usage",
            Class::Network => "network",
            Class::SessionEnded => "session_ended",
            Class::Protocol => "protocol",
        }
    }
}

/// A failed command: its class, a code word and a message.
struct Failure(Class, String, String);

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let msg = e.to_string();
        match e {
            ClientError::Io(_) | ClientError::Timeout => {
                Failure(Class::Network, "NETWORK".into(), msg)
            }
            ClientError::Closed(r) => {
                Failure(Class::Network, r.map_or("CLOSED", |r| r.name()).into(), msg)
            }
            ClientError::Server { failure, .. } => {
                Failure(Class::Refused, failure.code.name().into(), failure.message)
            }
            ClientError::Revoked(r) => Failure(Class::SessionEnded, r.reason.name().into(), msg),
            ClientError::Expired(x) => Failure(Class::SessionEnded, x.reason.name().into(), msg),
            ClientError::Decode(_) | ClientError::Unexpected(_) => {
                Failure(Class::Protocol, "PROTOCOL".into(), msg)
            }
            ClientError::Usage(m) => Failure(Class::Usage, "USAGE".into(), m.into()),
            ClientError::Tls(_) => Failure(Class::Protocol, "TLS".into(), msg),
        }
    }
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure(Class::Usage, "USAGE".into(), msg.into())
}

/// A failed connect, naming the address: `cannot connect to HOST:PORT: Connection
/// refused` (the OS's words without their `(os error N)`).
fn connect_failure(addr: &str, e: ClientError) -> Failure {
    let why = match &e {
        ClientError::Io(io) => {
            let text = io.to_string();
            match text.find(" (os error ") {
                Some(i) => text[..i].to_owned(),
                None => text,
            }
        }
        ClientError::Timeout => "no answer in time".to_owned(),
        _ => return e.into(),
    };
    Failure(
        Class::Network,
        "NETWORK".into(),
        format!("cannot connect to {addr}: {why}"),
    )
}

/// A command line as it may be shown: the words where a password goes, and any after
/// them, as `***`.
fn masked(line: &str) -> String {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let secret_from = match words.first().copied() {
        Some("login") => 2,
        Some("register") => 3,
        Some("passwd") => 1,
        _ => usize::MAX,
    };
    if secret_from < words.len() {
        words.truncate(secret_from);
        words.push("***");
    }
    words.join(" ")
}

/// A command's name: the first word of its `HELP` line.
fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

/// What a command produced: the `key=value` words of its `ok` line and, interactively,
/// lines to show.
#[derive(Default)]
struct Done {
    fields: Vec<(String, String)>,
    text: Vec<String>,
}

impl Done {
    fn field(mut self, k: &str, v: impl ToString) -> Self {
        self.fields.push((k.into(), v.to_string()));
        self
    }
    fn say(mut self, line: impl Into<String>) -> Self {
        self.text.push(line.into());
        self
    }
}

/// What the interactive loop does after a failure.
enum Next {
    Exit(i32),
    Reconnect,
    Continue,
}

/// The client program's state: a connection (made on demand) and where the token lives.
struct App {
    args: Args,
    client: Option<Client>,
    password: Option<String>,
    lines: Receiver<String>,
    /// stdin is a terminal: secrets are read with echo off, and commands are not repeated.
    tty: bool,
    /// A connection to the server was made at least once in this run.
    connected_once: bool,
    /// A login or resume succeeded at least once in this run.
    had_session: bool,
    /// Script mode: pushes print as `push ...` lines.
    script: bool,
}

fn main() {
    let args = Args::parse();
    if args.insecure_skip_verify {
        eprintln!(
            "WARNING: --insecure-skip-verify: the server's certificate is NOT checked; \
             anyone on the path can read your password and token. Testing only."
        );
    }
    // stdin on its own thread, so heartbeats and pushes keep going while we wait for input
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let script = args.script();
    let mut app = App {
        args,
        client: None,
        password: std::env::var("SESSIOND_PASSWORD").ok(),
        lines: rx,
        tty: std::io::stdin().is_terminal(),
        connected_once: false,
        had_session: false,
        script: script.is_some(),
    };
    let status = match script {
        Some(cmds) => app.run_script(cmds),
        None => app.run_interactive(),
    };
    std::process::exit(status);
}

impl App {
    fn connection(&mut self) -> Result<&mut Client, Failure> {
        if self.client.is_none() {
            let timeout = Duration::from_secs(5);
            let addr = self.args.addr.as_str();
            let c = match self.args.trust() {
                None => Client::connect(addr, timeout),
                Some(trust) => {
                    let cfg = client_config(&trust)
                        .map_err(|e| Failure(Class::Usage, "TLS".into(), e.to_string()))?;
                    // the name to check: --server-name, else the host part of --addr
                    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                    let name = self.args.server_name.as_deref().unwrap_or(host);
                    Client::connect_tls(addr, name.trim_matches(['[', ']']), cfg, timeout)
                }
            };
            self.client = Some(c.map_err(|e| connect_failure(addr, e))?);
            self.connected_once = true;
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn password(&mut self, user: &str, given: Option<&str>) -> Result<String, Failure> {
        if let Some(p) = given {
            return Ok(p.to_owned());
        }
        if let Some(p) = &self.password {
            return Ok(p.clone());
        }
        let p = self.secret(&format!("password for {user}: "))?;
        self.password = Some(p.clone());
        Ok(p)
    }

    /// Asks for a secret on stderr and reads the next line of stdin, with echo off when
    /// stdin is a terminal. The session (if any) keeps heartbeating meanwhile, so a slow
    /// typist does not time the connection out.
    fn secret(&mut self, prompt: &str) -> Result<String, Failure> {
        // echo off first: what is typed once the prompt shows is never echoed
        let quiet = self.tty.then(echo::Off::new);
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let line = loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => break Some(line),
                Err(RecvTimeoutError::Disconnected) => break None,
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(c) = self.client.as_mut().filter(|c| c.session().is_some()) {
                        // Design: a push or an error is left to the command that asked,
                        // which meets it on its request; here we only keep time.
                        if let Ok(Some(f)) = c.wait_push(Duration::from_millis(1)) {
                            print_push(&f, self.script);
                        }
                    }
                }
            }
        };
        if quiet.is_some() {
            // the Enter that ended the line was not echoed either
            eprintln!();
        }
        drop(quiet);
        line.ok_or_else(|| usage("no password given"))
    }

    // ---- commands --------------------------------------------------------------------

    /// Runs one command line.
    fn command(&mut self, line: &str) -> Result<Done, Failure> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["login", user, rest @ ..] if rest.len() <= 1 => {
                self.login(user, rest.first().copied())
            }
            ["register", user, email, rest @ ..] if rest.len() <= 1 => {
                self.register(user, email, rest.first().copied())
            }
            ["resume"] => self.resume(),
            ["whoami"] => self.whoami(),
            ["heartbeat" | "hb"] => {
                let ack = self.connection()?.heartbeat()?;
                Ok(Done::default()
                    .field("server_time", ack.server_time)
                    .say(format!("HEARTBEAT_ACK server_time={}", ack.server_time)))
            }
            ["sessions"] => self.sessions(),
            ["revoke", id] => {
                let id = parse_id(id).ok_or_else(|| usage(format!("not a session id: {id}")))?;
                let n = self.connection()?.revoke_session(id)?;
                Ok(Done::default()
                    .field("session", format!("{id:016x}"))
                    .field("affected", n)
                    .say(format!("revoked session {id:016x}")))
            }
            ["logout"] => {
                let sid = self.connection()?.logout()?;
                let _ = std::fs::remove_file(&self.args.token_file);
                Ok(Done::default()
                    .field("session", format!("{sid:016x}"))
                    .say(format!(
                        "LOGOUT_SUCCESS session={sid:016x}; token file removed"
                    )))
            }
            ["logout-all", rest @ ..] if rest.len() <= 1 => {
                let scope = match rest.first().copied().unwrap_or("others") {
                    "others" => LogoutScope::Others,
                    "all" => LogoutScope::All,
                    s => return Err(usage(format!("scope must be others or all, not {s}"))),
                };
                let n = self.connection()?.logout_all(scope)?;
                if scope == LogoutScope::All {
                    let _ = std::fs::remove_file(&self.args.token_file);
                }
                Ok(Done::default()
                    .field("ended", n)
                    .say(format!("{n} session(s) ended")))
            }
            ["passwd", old, new] => self.passwd(old, new),
            ["set", key, _, ..] => self.set_attr(key, after_words(line, 2)),
            ["get", rest @ ..] if rest.len() <= 1 => self.get_attrs(rest.first().copied()),
            ["unset", key] => {
                let key = attr_key(key)?;
                let removed = self.connection()?.remove_attr(key)?;
                Ok(Done::default()
                    .field("key", shown_key(key))
                    .field("removed", u8::from(removed))
                    .say(if removed {
                        format!("removed {}", shown_key(key))
                    } else {
                        format!("{} was not set", shown_key(key))
                    }))
            }
            ["profile", rest @ ..] if rest.len() <= 1 => self.profile(rest.first().copied()),
            ["profile-set", key, _, ..] => self.profile_set(key, after_words(line, 2)),
            ["profile-unset", key] => {
                let key = attr_key(key)?;
                let removed = self.connection()?.set_profile(key, None)?;
                Ok(Done::default()
                    .field("key", shown_key(key))
                    .field("removed", u8::from(removed))
                    .say(if removed {
                        format!("removed {} from your profile", shown_key(key))
                    } else {
                        format!("{} was not in your profile", shown_key(key))
                    }))
            }
            ["passwd"] => {
                let c = self.client.as_ref();
                c.and_then(|c| c.session())
                    .ok_or_else(|| usage("not logged in"))?;
                let old = self.secret("current password: ")?;
                let new = self.secret("new password: ")?;
                if self.secret("new password again: ")? != new {
                    return Err(usage("the two new passwords differ; nothing changed"));
                }
                self.passwd(&old, &new)
            }
            ["help" | "?"] => {
                let names: Vec<&str> = HELP.iter().map(|(cmd, _)| first_word(cmd)).collect();
                let width = HELP.iter().map(|(cmd, _)| cmd.len()).max().unwrap_or(0);
                let mut d = Done::default().field("commands", names.join(","));
                for (cmd, what) in HELP {
                    d = d.say(format!("  {cmd:width$}  {what}"));
                }
                Ok(d)
            }
            ["wait", ms] => {
                let ms: u64 = ms.parse().map_err(|_| usage("wait needs milliseconds"))?;
                // Heartbeats go out meanwhile; the first push that arrives is printed.
                if let Some(f) = self.connection()?.wait_push(Duration::from_millis(ms))? {
                    print_push(&f, true);
                }
                Ok(Done::default())
            }
            [] => Ok(Done::default()),
            [word, ..] => match HELP.iter().find(|(cmd, _)| first_word(cmd) == *word) {
                Some((cmd, _)) => Err(usage(format!("usage: {cmd}"))),
                None => Err(usage(format!(
                    "unknown command {word:?}; `help` lists the commands"
                ))),
            },
        }
    }

    fn set_attr(&mut self, key: &str, value: &str) -> Result<Done, Failure> {
        let key = attr_key(key)?;
        if value.len() > MAX_ATTR_VALUE {
            return Err(usage(format!(
                "a value is at most {MAX_ATTR_VALUE} bytes (this one is {})",
                value.len()
            )));
        }
        self.connection()?.set_attr(key, value.as_bytes())?;
        let (k, v) = (shown_key(key), shown(value.as_bytes()));
        Ok(Done::default()
            .field("key", &k)
            .field("bytes", value.len())
            .say(format!("set {k}={v}")))
    }

    fn profile(&mut self, key: Option<&str>) -> Result<Done, Failure> {
        let wanted = key.map(attr_key).transpose()?;
        let info = self.connection()?.get_profile(wanted.unwrap_or(""))?;
        let mut d = Done::default()
            .field("role", shown(info.app_role.as_bytes()))
            .field("count", info.profile.len());
        for (k, v) in &info.profile {
            d = d.field(&shown_key(k), shown(v));
        }
        Ok(d.say(describe_user_info(&info)))
    }

    fn profile_set(&mut self, key: &str, value: &str) -> Result<Done, Failure> {
        let key = attr_key(key)?;
        if value.len() > MAX_ATTR_VALUE {
            return Err(usage(format!(
                "a value is at most {MAX_ATTR_VALUE} bytes (this one is {})",
                value.len()
            )));
        }
        let changed = self
            .connection()?
            .set_profile(key, Some(value.as_bytes()))?;
        let (k, v) = (shown_key(key), shown(value.as_bytes()));
        Ok(Done::default()
            .field("key", &k)
            .field("bytes", value.len())
            .field("changed", u8::from(changed))
            .say(format!("profile: set {k}={v}")))
    }

    fn get_attrs(&mut self, key: Option<&str>) -> Result<Done, Failure> {
        let wanted = key.map(attr_key).transpose()?;
        let attrs = self.connection()?.get_attrs(wanted.unwrap_or(""))?;
        let mut d = Done::default().field("count", attrs.len());
        for (k, v) in &attrs {
            let (k, v) = (shown_key(k), shown(v));
            d = d.say(format!("{k}={v}")).field(&k, v);
        }
        if attrs.is_empty() {
            d = d.say(match wanted {
                Some(k) => format!("{} is not set", shown_key(k)),
                None => "no attributes".to_owned(),
            });
        }
        Ok(d)
    }

    fn passwd(&mut self, old: &str, new: &str) -> Result<Done, Failure> {
        let n = self.connection()?.change_password(old, new)?;
        // a later login after a lost connection needs the new one
        if self.password.is_some() {
            self.password = Some(new.to_owned());
        }
        Ok(Done::default()
            .field("revoked", n)
            .say(format!("password changed; {n} other session(s) signed out")))
    }

    fn login(&mut self, user: &str, given: Option<&str>) -> Result<Done, Failure> {
        let pw = self.password(user, given)?;
        let os = std::env::consts::OS;
        match self.connection()?.login(user, &pw, CLIENT_NAME, os)? {
            LoginOutcome::Success(s) => {
                self.had_session = true;
                // Design: as after a resume (below), the USER_INFO push (protocol.md 5.46)
                // follows LOGIN_SUCCESS at once when the account has a role or a profile;
                // one heartbeat makes sure it is queued for `show_pushes`.
                self.connection()?.heartbeat()?;
                let saved = save_token(&self.args.token_file, &s.token);
                let mut d = session_done(&s.session);
                d = match saved {
                    Ok(()) => d.say(format!(
                        "token saved to {} (mode 0600)",
                        self.args.token_file.display()
                    )),
                    Err(e) => d.say(format!("warning: cannot save the token: {e}")),
                };
                Ok(d)
            }
            LoginOutcome::Failure(f) => Err(Failure(
                Class::Refused,
                f.reason.name().into(),
                if f.retry_after_ms > 0 {
                    format!("{} (retry in {} ms)", f.message, f.retry_after_ms)
                } else {
                    f.message
                },
            )),
        }
    }

    fn register(&mut self, user: &str, email: &str, given: Option<&str>) -> Result<Done, Failure> {
        let pw = self.password(user, given)?;
        match self.connection()?.register(user, &pw, email)? {
            RegisterOutcome::Success(s) => Ok(Done::default()
                .field("user", &s.username)
                .field("user_id", s.user_id)
                .say(format!("registered {} (user {})", s.username, s.user_id))),
            RegisterOutcome::Failure(f) => {
                Err(Failure(Class::Refused, f.reason.name().into(), f.message))
            }
        }
    }

    fn resume(&mut self) -> Result<Done, Failure> {
        let token = load_token(&self.args.token_file)
            .ok_or_else(|| usage(format!("no token in {}", self.args.token_file.display())))?;
        let os = std::env::consts::OS;
        match self.connection()?.resume(&token, CLIENT_NAME, os)? {
            ResumeOutcome::Valid(s) => {
                self.had_session = true;
                // Design: the USER_INFO and ATTRS pushes (protocol.md 5.46, 5.42) follow
                // SESSION_VALID at once when the account has a role or a profile and the
                // session holds attributes, and nothing says whether they will. A
                // reply to any later request comes after it, so one heartbeat makes sure
                // it is queued for `show_pushes` rather than guessing with a wait.
                self.connection()?.heartbeat()?;
                Ok(session_done(&s).say("resumed the stored session"))
            }
            ResumeOutcome::Invalid(i) => {
                let _ = std::fs::remove_file(&self.args.token_file);
                Err(Failure(
                    Class::Refused,
                    i.reason.name().into(),
                    "the stored session cannot be resumed; token file removed".into(),
                ))
            }
            ResumeOutcome::Duplicate(_) => Err(Failure(
                Class::Refused,
                "DUPLICATE_SESSION".into(),
                "the session is in use on another connection".into(),
            )),
        }
    }

    fn whoami(&mut self) -> Result<Done, Failure> {
        let s = self
            .client
            .as_ref()
            .and_then(|c| c.session())
            .ok_or_else(|| usage("not logged in"))?;
        Ok(session_done(s))
    }

    fn sessions(&mut self) -> Result<Done, Failure> {
        let c = self.connection()?;
        let mut all = Vec::new();
        // paged; bounded by the total the server reports (and a hard cap)
        for _ in 0..1000 {
            let SessionList { total, sessions } = c.list_sessions(all.len() as u32, 0)?;
            let got = sessions.len();
            all.extend(sessions);
            if got == 0 || all.len() >= total as usize {
                break;
            }
        }
        let mut d = Done::default().field("count", all.len());
        let current = all.iter().find(|s| s.current).map(|s| s.session_id);
        if let Some(id) = current {
            d = d.field("current", format!("{id:016x}"));
        }
        let ids: Vec<String> = all
            .iter()
            .map(|s| format!("{:016x}", s.session_id))
            .collect();
        d = d.field("ids", ids.join(","));
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|s| {
                vec![
                    format!("{:016x}{}", s.session_id, if s.current { "*" } else { "" }),
                    format!("{} {}", s.client, s.platform).trim().to_owned(),
                    s.address.clone(),
                    utc(s.created),
                    utc(s.last_active),
                    if s.connected { "yes" } else { "no" }.into(),
                ]
            })
            .collect();
        for line in table(
            &[
                "SESSION",
                "DEVICE",
                "ADDRESS",
                "CREATED",
                "LAST ACTIVE",
                "LIVE",
            ],
            &rows,
        ) {
            d = d.say(line);
        }
        Ok(d.say("* = this session"))
    }

    // ---- the two modes -----------------------------------------------------------------

    fn run_script(&mut self, mut cmds: Vec<String>) -> i32 {
        if cmds.is_empty() {
            cmds = self.lines.iter().collect();
        }
        for line in cmds {
            let name = line.split_whitespace().next().unwrap_or("").to_owned();
            let result = self.command(&line);
            self.show_pushes(true);
            match result {
                Ok(d) => {
                    let mut out = format!("ok {name}");
                    for (k, v) in &d.fields {
                        out.push_str(&format!(" {k}={v}"));
                    }
                    println!("{out}");
                }
                Err(Failure(class, code, msg)) => {
                    println!("error {name} {} {code} {msg}", class.name());
                    if class == Class::SessionEnded {
                        let _ = std::fs::remove_file(&self.args.token_file);
                    }
                    return class as i32;
                }
            }
        }
        0
    }

    fn run_interactive(&mut self) -> i32 {
        let mut register = self.args.user.clone().zip(self.args.register.clone());
        // failed attempts in a row, and the wait before the next
        let mut failures = 0;
        let mut backoff = BACKOFF_FIRST;
        loop {
            let started = match register.take() {
                Some((user, email)) => self.register_first(&user, &email),
                None => Ok(()),
            };
            match started.and_then(|()| self.start_session()) {
                Ok(()) => {
                    failures = 0;
                    backoff = BACKOFF_FIRST;
                }
                Err(Failure(Class::Network, _, msg)) => {
                    self.client = None;
                    failures += 1;
                    let limit = if self.connected_once {
                        RECONNECT_ATTEMPTS
                    } else {
                        CONNECT_ATTEMPTS
                    };
                    if failures >= limit {
                        eprintln!("{msg} (after {failures} attempts)");
                        return Class::Network as i32;
                    }
                    println!("{msg}; retrying in {} ms", backoff.as_millis());
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
                Err(Failure(c, code, msg)) => {
                    println!("{msg} ({code})");
                    return c as i32;
                }
            }
            match self.interact() {
                Some(status) => return status,
                None => {
                    // the connection broke: reconnect and resume, never log out
                    println!("connection lost; reconnecting to resume the session");
                    self.client = None;
                    std::thread::sleep(backoff);
                }
            }
        }
    }

    /// `--register`: creates the account before the first login.
    fn register_first(&mut self, user: &str, email: &str) -> Result<(), Failure> {
        match self.register(user, email, None) {
            Ok(d) => {
                d.text.iter().for_each(|l| println!("{l}"));
                Ok(())
            }
            Err(Failure(c, code, msg)) if c != Class::Network => {
                Err(Failure(c, code, format!("registration failed: {msg}")))
            }
            Err(f) => Err(f),
        }
    }

    /// Resumes the stored session, or logs in as `--user`; with neither, waits for a
    /// `login` command.
    fn start_session(&mut self) -> Result<(), Failure> {
        self.connection()?;
        if load_token(&self.args.token_file).is_some() {
            match self.resume() {
                Ok(d) => {
                    d.text.iter().for_each(|l| println!("{l}"));
                    // the account's role and profile, the session's attributes, if any
                    // (the USER_INFO and ATTRS pushes)
                    self.show_pushes(false);
                    return Ok(());
                }
                // Design: the session is bound to another connection. When it was ours
                // a moment ago, that is the lost connection the server has not noticed
                // yet: retry (its heartbeat timeout frees it). Otherwise another client
                // has it, and logging in instead would end it: stop and say so.
                Err(Failure(Class::Refused, code, _)) if code == "DUPLICATE_SESSION" => {
                    let file = self.args.token_file.display();
                    return Err(if self.had_session {
                        Failure(
                            Class::Network,
                            code,
                            "the session is still bound to the lost connection".into(),
                        )
                    } else {
                        Failure(
                            Class::Refused,
                            code,
                            format!(
                                "the session in {file} is in use on another connection: \
                                 quit that client first, or use another --token-file"
                            ),
                        )
                    });
                }
                Err(Failure(Class::Refused, code, _)) => {
                    let why = code.to_lowercase().replace('_', " ");
                    println!("the stored session cannot be resumed ({why}); logging in");
                }
                Err(f) => return Err(f),
            }
        }
        match self.args.user.clone() {
            Some(user) => {
                let d = self.login(&user, None)?;
                d.text.iter().for_each(|l| println!("{l}"));
                // the account's role and profile, if it has either (the USER_INFO push)
                self.show_pushes(false);
            }
            None => println!("not logged in: use `login USER`"),
        }
        Ok(())
    }

    /// `sessiond USER> `, or `sessiond> ` with no session.
    fn prompt(&self) -> String {
        match self.client.as_ref().and_then(|c| c.session()) {
            Some(s) => format!("sessiond {}> ", s.username),
            None => "sessiond> ".into(),
        }
    }

    /// The command loop. Returns the exit status, or None to reconnect.
    fn interact(&mut self) -> Option<i32> {
        println!("type `help` for the commands");
        // the prompt is on screen, waiting for a line
        let mut prompted = false;
        loop {
            if !prompted {
                print!("{}", self.prompt());
                let _ = std::io::stdout().flush();
                prompted = true;
            }
            let line = match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    // keep the connection alive (automatic heartbeats) and show pushes
                    if let Some(c) = self.client.as_mut() {
                        match c.wait_push(Duration::from_millis(1)) {
                            Ok(Some(f)) => {
                                println!();
                                print_push(&f, false);
                                prompted = false;
                            }
                            Ok(None) => {}
                            Err(e) => {
                                println!();
                                prompted = false;
                                match self.on_error(e.into()) {
                                    Next::Exit(status) => return Some(status),
                                    Next::Reconnect => return None,
                                    Next::Continue => {}
                                }
                            }
                        }
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    if self.tty {
                        println!();
                    }
                    "quit".into()
                }
            };
            prompted = false;
            if !self.tty {
                // what a terminal would have echoed, so a piped transcript reads right
                println!("{}", masked(&line));
            }
            if matches!(line.trim(), "quit" | "exit") {
                if let Some(c) = self.client.take() {
                    match c.disconnect() {
                        Ok(r) => println!("DISCONNECT_ACK reason={}", r.name()),
                        Err(e) => println!("disconnect: {e}"),
                    }
                }
                return Some(0);
            }
            match self.command(&line) {
                Ok(d) => d.text.iter().for_each(|l| println!("{l}")),
                Err(f) => match self.on_error(f) {
                    Next::Exit(status) => return Some(status),
                    Next::Reconnect => return None,
                    Next::Continue => {}
                },
            }
            self.show_pushes(false);
        }
    }

    /// Interactive handling of a failure: say it; a dead session deletes the token and
    /// ends the program; a network failure reconnects; anything else leaves the prompt.
    fn on_error(&mut self, Failure(class, code, msg): Failure) -> Next {
        match class {
            Class::SessionEnded => {
                println!("{msg}");
                let _ = std::fs::remove_file(&self.args.token_file);
                println!("the stored token was deleted");
                Next::Exit(class as i32)
            }
            Class::Network => {
                println!("{msg}");
                Next::Reconnect
            }
            _ => {
                println!("error: {msg} ({code})");
                Next::Continue
            }
        }
    }

    /// Prints the pushes that arrived during the last command.
    fn show_pushes(&mut self, script: bool) {
        if let Some(c) = self.client.as_mut() {
            for f in c.take_pushes() {
                print_push(&f, script);
            }
        }
    }
}

fn print_push(f: &Frame, script: bool) {
    let (kind, fields, words) = match &f.message {
        Message::NewLogin(n) => (
            "new_login",
            format!("session={:016x} address={}", n.session_id, n.address),
            format!(
                "new login to your account: {} {} from {} at {}",
                n.client,
                n.platform,
                n.address,
                utc(n.at)
            ),
        ),
        Message::SessionRevoked(r) => (
            "revoked",
            format!("session={:016x} reason={}", r.session_id, r.reason.name()),
            describe_revoked(r),
        ),
        Message::SessionExpired(x) => (
            "expired",
            format!("session={:016x} reason={}", x.session_id, x.reason.name()),
            describe_expired(x),
        ),
        Message::ServerShutdown(x) => (
            "server_shutdown",
            format!("reconnect_after_ms={}", x.reconnect_after_ms),
            format!("the server is shutting down: {}", x.message),
        ),
        Message::Attrs(a) => {
            let pairs: Vec<String> = a
                .attrs
                .iter()
                .map(|(k, v)| format!("{}={}", shown_key(k), shown(v)))
                .collect();
            (
                "attrs",
                format!(
                    "session={:016x} count={} {}",
                    a.session_id,
                    a.attrs.len(),
                    pairs.join(" ")
                )
                .trim_end()
                .to_owned(),
                format!("session attributes: {}", pairs.join(" ")),
            )
        }
        Message::UserInfo(u) => {
            let pairs: Vec<String> = u
                .profile
                .iter()
                .map(|(k, v)| format!("{}={}", shown_key(k), shown(v)))
                .collect();
            (
                "user_info",
                format!(
                    "user_id={} role={} count={} {}",
                    u.user_id,
                    shown(u.app_role.as_bytes()),
                    u.profile.len(),
                    pairs.join(" ")
                )
                .trim_end()
                .to_owned(),
                describe_user_info(u),
            )
        }
        Message::DisconnectAck(a) => (
            "disconnected",
            format!("reason={}", a.reason.name()),
            format!("server closed the connection: {}", a.reason.name()),
        ),
        other => (
            "other",
            format!("opcode={}", other.opcode().name()),
            format!("server sent {}", other.opcode().name()),
        ),
    };
    if script {
        println!("push {kind} {fields}");
    } else {
        println!("{words}");
    }
}

fn session_done(s: &SessionInfo) -> Done {
    Done::default()
        .field("user", &s.username)
        .field("user_id", s.user_id)
        .field("role", s.role.name())
        .field("session", format!("{:016x}", s.session_id))
        .say(format!(
            "logged in as {} (user {}, {}), session {:016x}; heartbeat every {} ms, timeout {} ms",
            s.username,
            s.user_id,
            s.role.name(),
            s.session_id,
            s.heartbeat_interval_ms,
            s.heartbeat_timeout_ms
        ))
}

/// `role: educator; profile: display_name=Alice A.`: for people, so text is shown as it
/// is (only a value that is not plain text is written as `get` writes it).
fn describe_user_info(u: &UserInfo) -> String {
    let role = if u.app_role.is_empty() {
        "none"
    } else {
        &u.app_role
    };
    let pairs: Vec<String> = u
        .profile
        .iter()
        .map(|(k, v)| match std::str::from_utf8(v) {
            Ok(t) if !t.chars().any(char::is_control) => format!("{k}={t}"),
            _ => format!("{k}={}", shown(v)),
        })
        .collect();
    let profile = if pairs.is_empty() {
        "(empty)".to_owned()
    } else {
        pairs.join(", ")
    };
    format!("role: {role}; profile: {profile}")
}

/// 16 hex digits (as printed), `0x...`, or decimal.
fn parse_id(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok();
    }
    if s.len() == 16 {
        return u64::from_str_radix(s, 16).ok();
    }
    s.parse().ok()
}

/// An attribute key as given: 1 to 64 bytes (the protocol's bounds, checked here so that
/// the server sees the key that was typed).
fn attr_key(key: &str) -> Result<&str, Failure> {
    if key.is_empty() || key.len() > MAX_ATTR_KEY {
        return Err(usage(format!(
            "a key is 1 to {MAX_ATTR_KEY} bytes (this one is {})",
            key.len()
        )));
    }
    Ok(key)
}

/// The text of `line` after its first `n` words, without the blanks around it.
fn after_words(line: &str, n: usize) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest.trim_end()
}

/// An attribute's key or value as printed: bare when it is text without blanks, quotes or
/// control characters (and does not start with `0x`), quoted with escapes when it is other
/// text, `0x` and hex digits when it is not UTF-8. So `key=value` words stay one word each
/// and no two values print alike.
fn shown(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(t)
            if !t.starts_with("0x")
                && !t
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"') =>
        {
            t.to_owned()
        }
        Ok(t) => format!("{t:?}"),
        Err(_) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}

/// A key as printed: like a value, and quoted when it holds `=`, so `key=value` splits at
/// its first `=`.
fn shown_key(key: &str) -> String {
    if key.contains('=') {
        format!("{key:?}")
    } else {
        shown(key.as_bytes())
    }
}
