//! Example client: logs in, saves the session token to a file (mode 0600), heartbeats at
//! the interval the server gives, prints what the server sends, and takes commands from
//! stdin: `logout`, `heartbeat`, `whoami`, `quit`. End of input also disconnects.
//!
//! ```text
//! cargo run --example client -- --user admin
//! SESSIOND_PASSWORD=... cargo run --example client -- --addr 127.0.0.1:7450 --user admin
//! ```
//! Without SESSIOND_PASSWORD the password is read from the first line of stdin.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use sessiond::client::{Client, ClientError, LoginOutcome};
use sessiond::protocol::{LoginSuccess, Message};

struct Args {
    addr: String,
    user: String,
    token_file: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:7450".into(),
        user: "admin".into(),
        token_file: PathBuf::from("sessiond.token"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = val()?,
            "--user" => a.user = val()?,
            "--token-file" => a.token_file = PathBuf::from(val()?),
            "-h" | "--help" => {
                return Err(
                    "usage: client [--addr HOST:PORT] [--user NAME] [--token-file PATH]\n\
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
    let password = match std::env::var("SESSIOND_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprint!("password for {}: ", args.user);
            std::io::stderr().flush()?;
            rx.recv().map_err(|_| "no password given")?
        }
    };

    let mut client = Client::connect(args.addr.as_str(), Duration::from_secs(5))?;
    println!("connected to {}", client.peer_addr()?);
    let session = match client.login(
        &args.user,
        &password,
        "sessiond-example",
        std::env::consts::OS,
    )? {
        LoginOutcome::Success(s) => s,
        LoginOutcome::Failure(f) => {
            return Err(format!("login failed: {} ({})", f.message, f.reason.name()).into())
        }
    };
    drop(password);
    save_token(&args.token_file, &session)?;
    print_session(&session);
    println!(
        "token saved to {} (mode 0600). commands: heartbeat, whoami, logout, quit",
        args.token_file.display()
    );

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
                    report(client.heartbeat().map(|_| ()), "heartbeat")?;
                }
                print_pushes(&mut client);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => "quit".to_owned(),
        };
        match cmd.trim() {
            "" => {}
            "heartbeat" | "hb" => {
                let ack = client.heartbeat()?;
                println!("HEARTBEAT_ACK server_time={}", ack.server_time);
            }
            "whoami" => match client.session() {
                Some(s) => print_session(s),
                None => println!("not logged in"),
            },
            "logout" => {
                let sid = client.logout()?;
                logged_in = false;
                let _ = std::fs::remove_file(&args.token_file);
                println!("LOGOUT_SUCCESS session={sid:016x}; token file removed");
            }
            "quit" | "exit" => {
                let reason = client.disconnect()?;
                println!("DISCONNECT_ACK reason={}", reason.name());
                return Ok(());
            }
            other => println!("unknown command {other:?}: heartbeat, whoami, logout, quit"),
        }
        print_pushes(&mut client);
    }
}

/// A failed heartbeat ends the program with the server's reason.
fn report(r: Result<(), ClientError>, what: &str) -> Result<(), Box<dyn std::error::Error>> {
    r.map_err(|e| format!("{what}: {e}").into())
}

fn print_pushes(client: &mut Client) {
    for f in client.take_pushes() {
        match f.message {
            Message::DisconnectAck(a) => {
                println!("server closed the connection: {}", a.reason.name())
            }
            Message::GeneralFailure(g) => println!("server error: {} {}", g.code, g.message),
            other => println!("server sent {}", other.opcode().name()),
        }
    }
}

fn print_session(s: &LoginSuccess) {
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

fn save_token(path: &PathBuf, s: &LoginSuccess) -> std::io::Result<()> {
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
    writeln!(f, "{}", s.token.to_hex())
}
