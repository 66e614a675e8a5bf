//! Example client: resumes the session in its token file when it has one and logs in
//! otherwise, saves the token (mode 0600), heartbeats at the interval the server gives,
//! and takes commands from stdin: `heartbeat`, `whoami`, `logout`, `quit` (end of input
//! also quits). Server pushes are shown in plain words. A dead token (revoked, expired,
//! logged out) is deleted; a lost connection is re-established with backoff and the
//! session resumed, never logged out.
//!
//! ```text
//! cargo run --example client -- --user admin
//! SESSIOND_PASSWORD=... cargo run --example client -- --addr 127.0.0.1:7450 --user admin
//! SESSIOND_PASSWORD=... cargo run --example client -- --user carol --register carol@example.org
//! ```
//! Without SESSIOND_PASSWORD the password is read from the first line of stdin (only when
//! a login is needed).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use sessiond::client::{Client, ClientError, LoginOutcome, RegisterOutcome, ResumeOutcome};
use sessiond::protocol::{Message, SessionInfo, Token};

const CLIENT_NAME: &str = "sessiond-example";

struct Args {
    addr: String,
    user: String,
    token_file: PathBuf,
    register: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:7450".into(),
        user: "admin".into(),
        token_file: PathBuf::from("sessiond.token"),
        register: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = val()?,
            "--user" => a.user = val()?,
            "--token-file" => a.token_file = PathBuf::from(val()?),
            "--register" => a.register = Some(val()?),
            "-h" | "--help" => {
                return Err(
                    "usage: client [--addr HOST:PORT] [--user NAME] [--token-file PATH] \
                            [--register EMAIL]\n\
                            password: $SESSIOND_PASSWORD or the first line of stdin"
                        .into(),
                )
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(a)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("client: {e}");
        std::process::exit(1);
    }
}

/// Why the command loop returned.
enum Exit {
    /// The user quit (or stdin ended).
    Quit,
    /// The connection broke; reconnect and resume.
    Reconnect,
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    // stdin on its own thread, so heartbeats keep their rhythm while we wait for input
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut password: Option<String> = std::env::var("SESSIOND_PASSWORD").ok();
    if let Some(email) = &args.register {
        let pw = password_from(&mut password, &args.user, &rx)?;
        let mut c = Client::connect(args.addr.as_str(), Duration::from_secs(5))?;
        match c.register(&args.user, &pw, email)? {
            RegisterOutcome::Success(s) => {
                println!("registered {} (user {})", s.username, s.user_id)
            }
            RegisterOutcome::Failure(f) => {
                return Err(
                    format!("registration failed: {} ({})", f.message, f.reason.name()).into(),
                )
            }
        }
        let _ = c.disconnect();
    }
    let mut backoff = Duration::from_millis(200);
    let mut attempts = 0;
    loop {
        let mut client = match Client::connect(args.addr.as_str(), Duration::from_secs(5)) {
            Ok(c) => c,
            Err(e) if attempts < 30 => {
                attempts += 1;
                println!(
                    "cannot connect ({e}); retrying in {} ms",
                    backoff.as_millis()
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        attempts = 0;
        backoff = Duration::from_millis(200);
        let session = match start_session(&mut client, &args, &mut password, &rx) {
            Ok(s) => s,
            Err(e) if e.is_network() => {
                println!("connection lost while starting the session ({e}); reconnecting");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        print_session(&session);
        match command_loop(&mut client, &session, &args, &rx)? {
            Exit::Quit => return Ok(()),
            Exit::Reconnect => {
                println!("connection lost; reconnecting to resume the session");
                std::thread::sleep(backoff);
            }
        }
    }
}

/// Resumes the stored session, or logs in when there is none or it is dead.
fn start_session(
    client: &mut Client,
    args: &Args,
    password: &mut Option<String>,
    rx: &Receiver<String>,
) -> Result<SessionInfo, ClientError> {
    if let Some(token) = load_token(&args.token_file) {
        match client.resume(&token, CLIENT_NAME, std::env::consts::OS)? {
            ResumeOutcome::Valid(s) => {
                println!("resumed the stored session");
                return Ok(s);
            }
            ResumeOutcome::Invalid(i) => {
                println!(
                    "the stored session cannot be resumed ({}); logging in",
                    i.reason.name().to_lowercase().replace('_', " ")
                );
                let _ = std::fs::remove_file(&args.token_file);
            }
            ResumeOutcome::Duplicate(_) => {
                return Err(ClientError::Usage(
                    "this session is already in use on another connection",
                ));
            }
        }
    }
    let pw = password_from(password, &args.user, rx)
        .map_err(|_| ClientError::Usage("no password given"))?;
    match client.login(&args.user, &pw, CLIENT_NAME, std::env::consts::OS)? {
        LoginOutcome::Success(s) => {
            if let Err(e) = save_token(&args.token_file, &s.token) {
                println!("warning: cannot save the token: {e}");
            } else {
                println!("token saved to {} (mode 0600)", args.token_file.display());
            }
            Ok(s.session)
        }
        LoginOutcome::Failure(f) => {
            println!("login failed: {} ({})", f.message, f.reason.name());
            Err(ClientError::Usage("login failed"))
        }
    }
}

fn command_loop(
    client: &mut Client,
    session: &SessionInfo,
    args: &Args,
    rx: &Receiver<String>,
) -> Result<Exit, Box<dyn std::error::Error>> {
    println!("commands: heartbeat, whoami, logout, quit");
    let interval = Duration::from_millis(u64::from(session.heartbeat_interval_ms).max(100));
    let mut logged_in = true;
    let mut next_hb = Instant::now() + interval;
    loop {
        let wait = next_hb.saturating_duration_since(Instant::now());
        let cmd = match rx.recv_timeout(wait) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                next_hb += interval;
                if logged_in {
                    if let Err(e) = client.heartbeat() {
                        return handle_error(e, args);
                    }
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => "quit".to_owned(),
        };
        let result = match cmd.trim() {
            "" => Ok(()),
            "heartbeat" | "hb" => client
                .heartbeat()
                .map(|ack| println!("HEARTBEAT_ACK server_time={}", ack.server_time)),
            "whoami" => {
                match client.session() {
                    Some(s) => print_session(s),
                    None => println!("not logged in"),
                }
                Ok(())
            }
            "logout" => client.logout().map(|sid| {
                logged_in = false;
                let _ = std::fs::remove_file(&args.token_file);
                println!("LOGOUT_SUCCESS session={sid:016x}; token file removed");
            }),
            "quit" | "exit" => {
                // A graceful disconnect; the session stays resumable.
                if let Err(e) = client_disconnect(client) {
                    println!("disconnect: {e}");
                }
                return Ok(Exit::Quit);
            }
            other => {
                println!("unknown command {other:?}: heartbeat, whoami, logout, quit");
                Ok(())
            }
        };
        if let Err(e) = result {
            return handle_error(e, args);
        }
        for f in client.take_pushes() {
            if let Message::DisconnectAck(a) = f.message {
                println!("server closed the connection: {}", a.reason.name());
            }
        }
    }
}

fn client_disconnect(client: &mut Client) -> Result<(), ClientError> {
    let reply = client.request(Message::DisconnectRequest(
        sessiond::protocol::DisconnectRequest,
    ))?;
    if let Message::DisconnectAck(a) = reply.message {
        println!("DISCONNECT_ACK reason={}", a.reason.name());
    }
    Ok(())
}

/// A failed request: tell the user in plain words; delete a dead token; reconnect after
/// network trouble.
fn handle_error(e: ClientError, args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    if e.token_is_dead() {
        println!("{e}");
        let _ = std::fs::remove_file(&args.token_file);
        println!("the stored token was deleted");
        return Ok(Exit::Quit);
    }
    if e.is_network() {
        println!("{e}");
        return Ok(Exit::Reconnect);
    }
    Err(e.into())
}

fn password_from(
    cached: &mut Option<String>,
    user: &str,
    rx: &Receiver<String>,
) -> Result<String, Box<dyn std::error::Error>> {
    if let Some(p) = cached {
        return Ok(p.clone());
    }
    eprint!("password for {user}: ");
    std::io::stderr().flush()?;
    let p = rx.recv().map_err(|_| "no password given")?;
    *cached = Some(p.clone());
    Ok(p)
}

fn print_session(s: &SessionInfo) {
    println!(
        "logged in as {} (user {}, {}), session {:016x}; heartbeat every {} ms, timeout {} ms",
        s.username,
        s.user_id,
        s.role.name(),
        s.session_id,
        s.heartbeat_interval_ms,
        s.heartbeat_timeout_ms
    );
}

fn load_token(path: &Path) -> Option<Token> {
    Token::from_hex(&std::fs::read_to_string(path).ok()?)
}

fn save_token(path: &Path, token: &Token) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    // An existing file keeps its old mode on open; make sure it is owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    writeln!(f, "{}", token.to_hex())
}
