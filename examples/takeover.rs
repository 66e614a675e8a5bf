//! Takeover latency across two servers (cluster nodes, issue 22): one connection logs in
//! on `--first`, then another logs in to the same account on `--second`; measured from
//! the second login's request to the first connection's SESSION_REVOKED, and to the second
//! login's LOGIN_SUCCESS. Repeated `--rounds` times, alternating which node goes first;
//! prints the medians and 99th percentiles in microseconds as `key=value` fields.
//!
//! ```text
//! cargo run --release --example takeover -- --first 127.0.0.1:7450 --second 127.0.0.1:7451 \
//!     --user admin --rounds 200        # the password from SESSIOND_PASSWORD
//! ```
//!
//! With the same address twice it measures a takeover on one server, for comparison. The
//! account must allow one session (the default `--max-sessions-per-user 1`).
#![allow(clippy::disallowed_methods)] // a measuring tool: real time

use std::time::{Duration, Instant};

use clap::Parser;
use sessiond::client::{Client, ClientError, LoginOutcome};
use sessiond::protocol::Message;

#[derive(Parser)]
#[command(about = "takeover latency across two sessiond nodes")]
struct Args {
    /// the node the old connection logs in on
    #[arg(long, value_name = "HOST:PORT")]
    first: String,
    /// the node the new login is made on
    #[arg(long, value_name = "HOST:PORT")]
    second: String,
    /// the account (one session per account on the servers)
    #[arg(long, default_value = "admin")]
    user: String,
    /// its password [default: $SESSIOND_PASSWORD]
    #[arg(long)]
    password: Option<String>,
    /// takeovers measured
    #[arg(long, default_value_t = 200)]
    rounds: usize,
}

fn login(addr: &str, user: &str, password: &str, device: &str) -> Result<Client, String> {
    let mut c = Client::connect(addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    match c.login(user, password, device, "takeover") {
        Ok(LoginOutcome::Success(_)) => Ok(c),
        other => Err(format!("login on {addr}: {other:?}")),
    }
}

/// The instant SESSION_REVOKED arrived on `c`.
fn revoked_at(mut c: Client) -> Result<Instant, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match c.recv(Duration::from_secs(1)) {
            Ok(f) if matches!(f.message, Message::SessionRevoked(_)) => return Ok(Instant::now()),
            Ok(_) | Err(ClientError::Timeout) => {}
            Err(e) => return Err(format!("closed before SESSION_REVOKED: {e}")),
        }
    }
    Err("no SESSION_REVOKED within 30 s".into())
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> Result<(), String> {
    let mut a = Args::parse();
    if a.password.is_none() {
        a.password = std::env::var("SESSIOND_PASSWORD").ok();
    }
    let password = a
        .password
        .clone()
        .ok_or("no --password nor SESSIOND_PASSWORD")?;
    let (mut to_push, mut to_success) = (Vec::new(), Vec::new());
    let mut old = login(&a.first, &a.user, &password, "old")?;
    for i in 0..a.rounds {
        // Alternate: the old connection on first, the new on second, then back.
        let (new_addr, device) = if i % 2 == 0 {
            (&a.second, "new-b")
        } else {
            (&a.first, "new-a")
        };
        let watcher = std::thread::spawn(move || revoked_at(old));
        std::thread::sleep(Duration::from_millis(5));
        let mut c = Client::connect(new_addr.as_str(), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let sent = Instant::now();
        match c.login(&a.user, &password, device, "takeover") {
            Ok(LoginOutcome::Success(_)) => {}
            other => return Err(format!("login on {new_addr}: {other:?}")),
        }
        let succeeded = Instant::now();
        let pushed = watcher.join().map_err(|_| "watcher panicked")??;
        to_push.push(pushed.saturating_duration_since(sent).as_micros() as u64);
        to_success.push(succeeded.saturating_duration_since(sent).as_micros() as u64);
        old = c;
    }
    println!(
        "rounds={} push_p50_us={} push_p99_us={} success_p50_us={} success_p99_us={}",
        a.rounds,
        percentile(&mut to_push, 0.5),
        percentile(&mut to_push, 0.99),
        percentile(&mut to_success, 0.5),
        percentile(&mut to_success, 0.99),
    );
    Ok(())
}
