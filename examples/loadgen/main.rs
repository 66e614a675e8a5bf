//! Load generator: N connections, each logging in and then doing HEARTBEAT /
//! HEARTBEAT_ACK ping-pong (one outstanding at a time) for T seconds. Prints round trips per
//! second and latency percentiles, as text and as one JSON line.
//!
//! `--target echo` drives the bare mio echo server (`examples/echo.rs`) the same way (no
//! login; the 46-byte heartbeat frame comes back as is), which is the ceiling to compare
//! with. `--storm K` adds K connections that log in and out in a loop during the
//! measurement, so the heartbeat latency can be compared with and without password hashing
//! going on.
//!
//! ```text
//! cargo run --release -- --iterations 10000 --data-dir /tmp/sd &      # prints the admin password
//! cargo run --release --example echo -- 127.0.0.1:7451 &
//! cargo run --release --example loadgen -- --addr 127.0.0.1:7450 --password PW --conns 100 --secs 10
//! cargo run --release --example loadgen -- --target echo --addr 127.0.0.1:7451 --conns 100 --secs 10
//! ```
//! One thread and one `Poll` drive every connection, so the generator's own cost per round
//! trip is the same for both targets. `--tls-ca CA.pem` runs the same ping-pong over TLS
//! (the server's certificate must be for `localhost`), for the TLS-vs-plaintext rate.
//!
//! `--mode idle --server-pid PID` logs every connection in, sends nothing more, and reads
//! the server's RSS growth per session and its CPU use from `/proc`. Every connection logs
//! in as `--user` (one account; each login then sends NEW_LOGIN to up to 32 of the
//! others) unless `--accounts N` spreads the logins over N accounts, registered first.
//!
//! `--ws` speaks WebSocket to sessiond's `--ws-listen` port instead (protocol.md
//! "WebSocket transport"; with `--tls-ca`, `wss://`): each frame in a masked binary
//! message, for the WebSocket-vs-TCP rate and the bytes per idle WebSocket session.
//!
//! `--mode rush` logs every connection in at once, each heartbeating from its own login
//! on, and reports how long until all are in (`join_secs`, and the heartbeat p99 of
//! those already in); `--mode join` is the same with no heartbeat until all are in.
#![allow(clippy::disallowed_methods)] // a tool that runs in real time

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::builder::RangedU64ValueParser;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, ValueEnum};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use sessiond::protocol::{
    self, DecodeLimits, Frame, Heartbeat, LoginRequest, LogoutRequest, Message,
    Token as SessionToken,
};

/// Load generator for sessiond (and the bare echo server, its ceiling): heartbeat
/// ping-pong, login storms, logins per second, idle memory per session.
#[derive(Clone, Parser)]
#[command(name = "loadgen", args_override_self = true)]
struct Args {
    /// The server to drive
    #[arg(long, value_name = "A", default_value = "127.0.0.1:7450")]
    addr: SocketAddr,
    /// What listens at --addr
    #[arg(long, value_enum, default_value_t = Target::Sessiond)]
    target: Target,
    /// Measured connections
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..)
    )]
    conns: usize,
    /// Seconds to measure
    #[arg(
        long,
        value_name = "T",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    secs: u64,
    /// The account every connection logs in as (unless --accounts)
    #[arg(long, value_name = "U", default_value = "admin")]
    user: String,
    /// The password of --user [default: $SESSIOND_PASSWORD, else empty]
    #[arg(
        long,
        value_name = "P",
        default_value_t = env_password(),
        hide_default_value = true,
        allow_hyphen_values = true
    )]
    password: String,
    /// Extra connections that log in and out in a loop during the measurement
    #[arg(long, value_name = "K", default_value_t = 0)]
    storm: usize,
    /// Heartbeats each measured connection keeps in flight (pipelined; 1: ping-pong)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pipeline: u32,
    /// TLS, trusting this CA file (the server's certificate must be for `localhost`)
    #[arg(long = "tls-ca", value_name = "CA.pem")]
    ca_file: Option<std::path::PathBuf>,
    /// WebSocket: --addr is sessiond's --ws-listen port
    #[arg(long)]
    ws: bool,
    /// What to measure
    #[arg(long, value_enum, default_value_t = Mode::PingPong)]
    mode: Mode,
    /// The server's pid, for the idle mode's memory and CPU readings, and the server's CPU
    /// per round trip in the others (from /proc)
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// A file holding the (new) server's pid, read once every client is back after a
    /// restart, for its CPU time (--mode restart)
    #[arg(long, value_name = "FILE")]
    server_pid_file: Option<std::path::PathBuf>,
    /// Logins outstanding at once while connecting (0: every connection at once)
    #[arg(long, value_name = "N", default_value_t = 0)]
    in_flight: usize,
    /// With --mode restart: each client heartbeats once every MS milliseconds, as real
    /// clients do (0: ping-pong, each heartbeat as soon as the last is answered)
    #[arg(long, value_name = "MS", default_value_t = 0)]
    every: u64,
    /// With --mode restart: the clients split over this many threads, each with its own
    /// poll, so that one thread's reconnects (mostly the kernel's work on loopback) do not
    /// hold the others' answers back
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=64))]
    threads: usize,
    /// Spread the logins over this many accounts (`load0`, `load1`, ...), registered
    /// first; 0: every connection logs in as --user
    #[arg(long, value_name = "N", default_value_t = 0)]
    accounts: usize,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Target {
    /// Log in, then heartbeat
    Sessiond,
    /// The bare echo server (examples/echo.rs), the ceiling: no login; the heartbeat
    /// frame comes back as is
    Echo,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Mode {
    /// HEARTBEAT / HEARTBEAT_ACK ping-pong (with --storm K: while K connections log in
    /// and out)
    #[value(name = "pingpong")]
    PingPong,
    /// Log every connection in, then send nothing: the server's memory per session and
    /// its CPU use while idle (needs --server-pid)
    Idle,
    /// Every connection logs in and out in a loop: logins per second
    Logins,
    /// pingpong with --storm at least 4
    Storm,
    /// Every connection logs in at once and heartbeats (ping-pong) from its own login
    /// on, as the clients of a restarted server do: the time until all are in (`join_secs`)
    /// and the heartbeat p99 meanwhile, then pingpong for --secs
    Rush,
    /// rush without the heartbeats until every connection is in: the calm time to join
    Join,
    /// Log every connection in and heartbeat; when the server is stopped (SIGTERM) and
    /// started again, come back as SERVER_SHUTDOWN says and resume: the time until all
    /// are back (benches/restart.sh drives it)
    Restart,
}

/// `--password`'s default.
fn env_password() -> String {
    std::env::var("SESSIOND_PASSWORD").unwrap_or_default()
}

impl Args {
    /// The command line, with the checks between options; exits with a usage error.
    fn parse_checked() -> Args {
        let mut a = Args::parse();
        if a.mode == Mode::Storm {
            a.storm = a.storm.max(4);
        }
        let conflict = if a.mode == Mode::Idle && a.server_pid.is_none() {
            Some("--mode idle needs --server-pid")
        } else if a.accounts > 0 && (a.ca_file.is_some() || a.target == Target::Echo) {
            Some("--accounts registers over plain TCP to sessiond only")
        } else if a.mode == Mode::Restart
            && (a.ca_file.is_some() || a.target == Target::Echo || a.ws)
        {
            Some("--mode restart drives sessiond over plain TCP only")
        } else if a.ws && (a.target == Target::Echo || a.accounts > 0) {
            Some("--ws drives sessiond's WebSocket port, logging in as --user")
        } else {
            None
        };
        if let Some(m) = conflict {
            Args::command().error(ErrorKind::ArgumentConflict, m).exit();
        }
        a
    }
}

#[derive(PartialEq)]
enum Role {
    /// Measured: heartbeat ping-pong.
    Pinger,
    /// Background: login, logout, login, ...
    Stormer,
}

#[derive(PartialEq)]
enum State {
    LoggingIn,
    Ready,
    Waiting,
    LoggingOut,
}

struct Conn {
    stream: TcpStream,
    /// The TLS session (`--tls-ca`), driven here in the same loop as the sockets.
    tls: Option<Box<rustls::ClientConnection>>,
    role: Role,
    state: State,
    input: BytesMut,
    output: Vec<u8>,
    token: Option<SessionToken>,
    sent_at: Instant,
    /// When each heartbeat in flight was sent, oldest first (answers come in order).
    pings: std::collections::VecDeque<Instant>,
    next_id: u32,
    /// `--ws`: the WebSocket layer between the socket's bytes and `input`/`output`.
    ws: Option<Box<WsLayer>>,
}

/// A load connection's WebSocket state: the upgrade, then frames in masked messages.
struct WsLayer {
    upgraded: bool,
    /// Bytes from the socket (the upgrade's response, then WebSocket frames).
    raw: BytesMut,
    /// Messages queued before the upgrade's answer (a client must wait for it).
    held: Vec<u8>,
    mask: [u8; 4],
    frame: Vec<u8>,
}

impl Conn {
    /// A connection just dialled: logging in, nothing sent or received, plain TCP (the
    /// caller adds TLS or WebSocket).
    fn new(stream: TcpStream, role: Role) -> Conn {
        Conn {
            stream,
            tls: None,
            role,
            state: State::LoggingIn,
            input: BytesMut::with_capacity(4096),
            output: Vec::with_capacity(256),
            token: None,
            sent_at: Instant::now(),
            pings: Default::default(),
            next_id: 0,
            ws: None,
        }
    }

    fn queue(&mut self, msg: Message) {
        self.next_id = self.next_id.wrapping_add(1);
        let Some(ws) = self.ws.as_deref_mut() else {
            Frame::reply(self.next_id, msg).encode(&mut self.output);
            return;
        };
        ws.frame.clear();
        Frame::reply(self.next_id, msg).encode(&mut ws.frame);
        let out = if ws.upgraded {
            &mut self.output
        } else {
            &mut ws.held
        };
        ws_client::encode(ws_client::BINARY, &ws.frame, ws.mask, out);
    }

    /// Where the socket's (decrypted) bytes go.
    fn sink(&mut self) -> &mut BytesMut {
        sink_of(&mut self.ws, &mut self.input)
    }

    /// `--ws`: the upgrade's answer, then the binary messages' payloads into `input`.
    fn unwrap_ws(&mut self) -> io::Result<()> {
        let Some(ws) = self.ws.as_deref_mut() else {
            return Ok(());
        };
        if !ws.upgraded {
            match ws_client::read_upgrade(&mut ws.raw) {
                Ok(Some(_)) => {
                    ws.upgraded = true;
                    self.output.append(&mut ws.held);
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
        while let Some((op, _, payload)) =
            ws_client::decode(&mut ws.raw).map_err(io::Error::other)?
        {
            match op {
                ws_client::BINARY => self.input.extend_from_slice(&payload),
                ws_client::CLOSE => return Err(io::Error::other("the server closed a WebSocket")),
                _ => {}
            }
        }
        Ok(())
    }
}

#[path = "../shared/ws_client.rs"]
#[allow(dead_code)]
mod ws_client;

mod restart;

fn main() {
    let a = Args::parse_checked();
    let result = if a.mode == Mode::Restart {
        restart::run(&a)
    } else {
        run(a)
    };
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

/// The login of connection `i`: as `--user`, or with `--accounts N` as account `i % N`.
fn login_msg(a: &Args, i: usize) -> Message {
    let (username, password) = match a.accounts {
        0 => (a.user.clone(), a.password.as_str()),
        n => (format!("load{}", i % n), ACCOUNT_PASSWORD),
    };
    Message::LoginRequest(LoginRequest {
        username,
        password: password.into(),
        client: "loadgen".into(),
        platform: std::env::consts::OS.into(),
    })
}

/// The password of the `--accounts` accounts.
const ACCOUNT_PASSWORD: &str = "loadgen-account-password";

/// Registers accounts `load0` .. `load{n-1}` (one that exists already is fine: a second
/// run against the same server), from 16 threads with a connection each.
fn register_accounts(a: &Args) -> io::Result<()> {
    use sessiond::client::{Client, RegisterOutcome};
    use sessiond::protocol::RegisterFailureReason;
    const THREADS: usize = 16;
    let n = a.accounts;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let addr = a.addr;
            std::thread::spawn(move || -> Result<(), String> {
                let err = |e: sessiond::client::ClientError| e.to_string();
                let mut c = Client::connect(addr, Duration::from_secs(30)).map_err(err)?;
                for i in (t..n).step_by(THREADS) {
                    let name = format!("load{i}");
                    let email = format!("{name}@example.com");
                    // Bounded: SERVER_BUSY a thousand times in a row is a stuck server.
                    for attempt in 0.. {
                        match c.register(&name, ACCOUNT_PASSWORD, &email).map_err(err)? {
                            RegisterOutcome::Success(_) => break,
                            RegisterOutcome::Failure(f) => match f.reason {
                                RegisterFailureReason::UsernameTaken => break,
                                RegisterFailureReason::ServerBusy if attempt < 1000 => {
                                    std::thread::sleep(Duration::from_millis(20))
                                }
                                _ => return Err(format!("register {name}: {}", f.message)),
                            },
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| io::Error::other("a registration thread panicked"))?
            .map_err(io::Error::other)?;
    }
    Ok(())
}

fn run(a: Args) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut conns: Vec<Conn> = Vec::new();
    let tls_cfg = match &a.ca_file {
        Some(ca) => Some(sessiond::tls::client_config(
            &sessiond::tls::Trust::CaFile(ca.clone()),
        )?),
        None => None,
    };
    let name = sessiond::tls::server_name("localhost")?;
    let total = a.conns + if a.target == Target::Echo { 0 } else { a.storm };
    if a.accounts > 0 {
        register_accounts(&a)?;
        // The registrations' own connections are gone before the baseline is read.
        std::thread::sleep(Duration::from_secs(1));
    }
    // Before the first connection: the idle mode's growth includes everything the
    // connections cost the server (accepts, logins, their transient allocations).
    let rss_before = a.server_pid.and_then(rss_kb);
    let started = Instant::now();
    // Heartbeats answered while others were still logging in (--mode rush).
    let mut join_latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut join_round_trips: u64 = 0;
    let mut join_secs = 0.0;
    // The server's CPU time when the measurement began (with --server-pid).
    let mut cpu_at_start: Option<f64> = None;
    // Connections whose first login waits for one in flight to finish (`--in-flight`).
    let mut waiting: std::collections::VecDeque<usize> = Default::default();
    let mut start_login: Vec<usize> = Vec::new();
    for i in 0..total {
        let mut stream = dial(a.addr, i)?;
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let role = if i < a.conns && a.mode != Mode::Logins {
            Role::Pinger
        } else {
            Role::Stormer
        };
        let tls = match &tls_cfg {
            Some(cfg) => Some(Box::new(
                rustls::ClientConnection::new(cfg.clone(), name.clone())
                    .map_err(io::Error::other)?,
            )),
            None => None,
        };
        let mut c = Conn::new(stream, role);
        c.tls = tls;
        if a.ws {
            let host = a.addr.to_string();
            c.output = ws_client::upgrade_request(&host, None);
            c.ws = Some(Box::new(WsLayer {
                upgraded: false,
                raw: BytesMut::with_capacity(4096),
                held: Vec::new(),
                mask: (i as u32 ^ 0x5eed_1e55).to_be_bytes(),
                frame: Vec::with_capacity(64),
            }));
        }
        if a.target == Target::Echo {
            c.state = State::Ready;
            c.token = Some(SessionToken([0x42; 32]));
        } else if a.in_flight == 0 || i < a.in_flight {
            c.queue(login_msg(&a, i));
        } else {
            waiting.push_back(i);
        }
        conns.push(c);
    }
    let mut events = Events::with_capacity(4096);
    let setup_deadline = Instant::now() + Duration::from_secs(120);
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut round_trips: u64 = 0;
    let mut logins: u64 = 0;
    let mut errors: u64 = 0;
    // Requests refused with STORAGE_UNAVAILABLE (and tried again).
    let mut refused: u64 = 0;
    let mut measuring_since: Option<Instant> = None;
    let mut end = Instant::now() + Duration::from_secs(a.secs);
    let mut buf = vec![0u8; 64 * 1024];
    let mut login_latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut retries: std::collections::VecDeque<(Instant, usize)> = Default::default();
    loop {
        let now = Instant::now();
        // Start the clock once every pinger is logged in (or at once for echo).
        if measuring_since.is_none()
            && conns
                .iter()
                .filter(|c| c.role == Role::Pinger)
                .all(|c| c.state != State::LoggingIn)
        {
            measuring_since = Some(now);
            join_secs = now.duration_since(started).as_secs_f64();
            cpu_at_start = a.server_pid.and_then(cpu_secs);
            end = now + Duration::from_secs(a.secs);
            if a.mode == Mode::Idle {
                return idle(&a, &mut poll, &mut events, &conns, rss_before);
            }
            for c in conns.iter_mut().filter(|c| c.role == Role::Pinger) {
                // (in a rush the ones already in are heartbeating: pipeline 1)
                if a.mode != Mode::Rush {
                    for _ in 0..a.pipeline {
                        ping(c, now);
                    }
                }
            }
            flush_all(&mut conns);
        }
        if measuring_since.is_none() && now > setup_deadline {
            return Err(io::Error::other(
                "not every connection logged in within 120 s",
            ));
        }
        if measuring_since.is_some() && now >= end {
            break;
        }
        // Logins refused with SERVER_BUSY go again once their retry-after has passed
        // (one constant delay: the queue is in time order).
        while let Some(&(due, i)) = retries.front() {
            if due > now {
                break;
            }
            retries.pop_front();
            let c = &mut conns[i];
            if c.state == State::LoggingOut {
                let token = c.token.clone().unwrap_or(SessionToken([0; 32]));
                c.queue(Message::LogoutRequest(LogoutRequest { token }));
            } else {
                c.queue(login_msg(&a, i));
            }
            flush(c);
        }
        let wait = retries
            .front()
            .map_or(Duration::from_millis(50), |&(due, _)| {
                due.saturating_duration_since(now)
                    .min(Duration::from_millis(50))
            });
        poll.poll(&mut events, Some(wait))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            if ev.is_writable() {
                flush(c);
            }
            if !ev.is_readable() {
                continue;
            }
            read_in(c, &mut buf)?;
            c.unwrap_ws()?;
            let now = Instant::now();
            loop {
                if a.target == Target::Echo {
                    // The echo answers with our own 46-byte heartbeat frame.
                    if c.input.len() < 46 {
                        break;
                    }
                    let _ = c.input.split_to(46);
                    if measuring_since.is_some() {
                        let sent = c.pings.pop_front().unwrap_or(now);
                        record(&mut latencies, &mut round_trips, sent, now);
                        ping(c, now);
                    }
                    continue;
                }
                let frame = match protocol::decode(&mut c.input, DecodeLimits::client(1 << 20)) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return Err(io::Error::other(format!("bad frame: {e}"))),
                };
                match (frame.message, &c.state) {
                    (Message::LoginSuccess(s), State::LoggingIn) => {
                        logins += 1;
                        if a.mode == Mode::Logins {
                            let us = now.duration_since(c.sent_at).as_micros() as u32;
                            if login_latencies.len() < login_latencies.capacity() {
                                login_latencies.push(us);
                            }
                        }
                        c.token = Some(s.token);
                        c.state = State::Ready;
                        // One finished, the next may start: at most `--in-flight` at once.
                        if let Some(next) = waiting.pop_front() {
                            start_login.push(next);
                        }
                        if c.role == Role::Stormer {
                            let token = c.token.clone().unwrap_or(SessionToken([0; 32]));
                            c.queue(Message::LogoutRequest(LogoutRequest { token }));
                            c.state = State::LoggingOut;
                        } else if measuring_since.is_some() || a.mode == Mode::Rush {
                            ping(c, now);
                        }
                    }
                    (Message::LoginFailure(f), _)
                        if matches!(
                            f.reason,
                            protocol::LoginFailureReason::ServerBusy
                                | protocol::LoginFailureReason::StorageUnavailable
                        ) =>
                    {
                        // The hash queue is full, or the server's disk cannot keep up: ask
                        // again when the server says.
                        if f.reason == protocol::LoginFailureReason::StorageUnavailable {
                            refused += 1;
                        }
                        let after = Duration::from_millis(u64::from(f.retry_after_ms));
                        retries.push_back((now + after, i));
                    }
                    (Message::GeneralFailure(g), State::LoggingOut)
                        if g.code == protocol::ErrorCode::StorageUnavailable =>
                    {
                        // A logout refused while storage is unavailable: again in a second.
                        refused += 1;
                        retries.push_back((now + Duration::from_secs(1), i));
                    }
                    (Message::LoginFailure(f), _) => {
                        return Err(io::Error::other(format!(
                            "login failed: {} (check --user / --password)",
                            f.message
                        )))
                    }
                    (Message::LogoutSuccess(_), State::LoggingOut) => {
                        c.queue(login_msg(&a, i));
                        c.sent_at = now;
                        c.state = State::LoggingIn;
                    }
                    (Message::HeartbeatAck(_), State::Waiting) => {
                        if measuring_since.is_some() {
                            let sent = c.pings.pop_front().unwrap_or(now);
                            record(&mut latencies, &mut round_trips, sent, now);
                            ping(c, now);
                        } else if a.mode == Mode::Rush {
                            let sent = c.pings.pop_front().unwrap_or(now);
                            record(&mut join_latencies, &mut join_round_trips, sent, now);
                            ping(c, now);
                        } else {
                            c.state = State::Ready;
                        }
                    }
                    // NEW_LOGIN: the other connections of the account hear of each login
                    // (every load connection shares one account); nothing to do.
                    (Message::NewLogin(_), _) if frame.flags.is_push() => {}
                    (Message::GeneralFailure(g), _) => {
                        errors += 1;
                        if frame.flags.is_fatal() {
                            return Err(io::Error::other(format!("server error: {}", g.code)));
                        }
                    }
                    (other, _) => {
                        return Err(io::Error::other(format!(
                            "unexpected {}",
                            other.opcode().name()
                        )))
                    }
                }
            }
            flush(c);
        }
        for i in start_login.drain(..) {
            let c = &mut conns[i];
            c.queue(login_msg(&a, i));
            c.sent_at = Instant::now();
            flush(c);
        }
    }
    let secs = measuring_since
        .map(|s| s.elapsed().as_secs_f64())
        .unwrap_or(0.0)
        .max(1e-9);
    if a.mode == Mode::Logins {
        latencies = login_latencies;
        round_trips = logins;
    }
    latencies.sort_unstable();
    let pct = |p: f64| percentile(&latencies, p);
    let rps = round_trips as f64 / secs;
    // Microseconds of the server's CPU per round trip measured (0 without --server-pid).
    let cpu_us = match (cpu_at_start, a.server_pid.and_then(cpu_secs)) {
        (Some(t0), Some(t1)) if round_trips > 0 => (t1 - t0) * 1e6 / round_trips as f64,
        _ => 0.0,
    };
    join_latencies.sort_unstable();
    let join_p99 = percentile(&join_latencies, 0.99);
    let mode = match a.mode {
        Mode::Logins => "logins",
        Mode::Rush => "rush",
        Mode::Join => "join",
        _ if a.storm > 0 => "storm",
        _ => "pingpong",
    };
    let target = match (a.target, a.ca_file.is_some(), a.ws) {
        (Target::Echo, _, _) => "echo",
        (Target::Sessiond, true, true) => "sessiond+wss",
        (Target::Sessiond, false, true) => "sessiond+ws",
        (Target::Sessiond, true, false) => "sessiond+tls",
        (Target::Sessiond, false, false) => "sessiond",
    };
    println!(
        "{target}: {} conns all in after {join_secs:.2} s ({join_round_trips} heartbeats meanwhile, p99 {join_p99} us); {:.1} s: {round_trips} round trips, {rps:.0}/s, p50 {} us, p99 {} us, p999 {} us, storm logins {logins}, errors {errors}, storage refusals {refused}",
        a.conns,
        secs,
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );
    println!(
        "{{\"mode\":\"{mode}\",\"target\":\"{target}\",\"conns\":{},\"storm\":{},\"pipeline\":{},\"secs\":{secs:.3},\"round_trips\":{round_trips},\"rps\":{rps:.1},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"logins\":{logins},\"errors\":{errors},\"refused\":{refused},\"join_secs\":{join_secs:.3},\"join_round_trips\":{join_round_trips},\"join_p99_us\":{join_p99},\"server_cpu_us_per_rt\":{cpu_us:.3}}}",
        a.conns,
        a.storm,
        a.pipeline,
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );
    Ok(())
}

/// The `p` quantile of sorted `lat` (0 when empty).
fn percentile(lat: &[u32], p: f64) -> u32 {
    if lat.is_empty() {
        return 0;
    }
    let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
    lat[i.min(lat.len() - 1)]
}

/// Resident memory of `pid` in KiB (VmRSS of /proc/PID/status).
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) of `pid` in seconds (/proc/PID/stat, 100 ticks a second).
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Idle mode: every connection is logged in; now measure the server, sending nothing.
fn idle(
    a: &Args,
    poll: &mut Poll,
    events: &mut Events,
    conns: &[Conn],
    rss_before: Option<u64>,
) -> io::Result<()> {
    let pid = a.server_pid.expect("checked in Args::parse_checked");
    let wait = |poll: &mut Poll, events: &mut Events, d: Duration| -> io::Result<()> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            poll.poll(events, Some(until - Instant::now()))?;
        }
        Ok(())
    };
    // let the server settle (allocations of the login burst returned)
    wait(poll, events, Duration::from_secs(2))?;
    let rss_after = rss_kb(pid).ok_or_else(|| io::Error::other("cannot read the server's RSS"))?;
    let cpu0 = cpu_secs(pid).ok_or_else(|| io::Error::other("cannot read the server's CPU"))?;
    let t = Instant::now();
    wait(poll, events, Duration::from_secs(a.secs))?;
    let cpu = cpu_secs(pid).unwrap_or(cpu0) - cpu0;
    let secs = t.elapsed().as_secs_f64();
    let before = rss_before.unwrap_or(0);
    let per_session = (rss_after.saturating_sub(before) * 1024) as f64 / conns.len() as f64;
    println!(
        "idle: {} sessions; server RSS {before} KiB -> {rss_after} KiB ({per_session:.0} bytes per session); CPU {:.3} s in {secs:.1} s ({:.2}% of a core)",
        conns.len(),
        cpu,
        100.0 * cpu / secs
    );
    println!(
        "{{\"mode\":\"idle\",\"sessions\":{},\"accounts\":{},\"rss_before_kb\":{before},\"rss_after_kb\":{rss_after},\"bytes_per_session\":{per_session:.0},\"cpu_secs\":{cpu:.3},\"secs\":{secs:.1},\"cpu_pct\":{:.3}}}",
        conns.len(),
        a.accounts.max(1),
        100.0 * cpu / secs
    );
    Ok(())
}

/// The loopback addresses a connection to 127.0.0.1 comes from, in turn.
const SOURCES: u8 = 16;
/// Linux's errno for a non-blocking connect under way.
const EINPROGRESS: i32 = 115;

/// A non-blocking connection to `addr` for client `i`. To 127.0.0.1 it comes from one of
/// [`SOURCES`] loopback addresses (127.0.0.2 and up) in turn: connect() from one address
/// to one address and port searches the ephemeral range port by port against every
/// connection already made there, which made this tool's reconnects quadratic. Measured
/// in a restart of 17,000 clients: 56% of the generator's CPU in the kernel's
/// `__inet_check_established` and `__inet_hash_connect`, the clients' resumes done by 4
/// to 5 s after the server was back, the server itself mostly idle. Real clients come
/// from many addresses, so this is the generator's cost, not the server's.
fn dial(addr: SocketAddr, i: usize) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    if addr.ip() != std::net::IpAddr::from([127, 0, 0, 1]) {
        return TcpStream::connect(addr);
    }
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    let source = SocketAddr::from(([127, 0, 0, 2 + (i % usize::from(SOURCES)) as u8], 0));
    socket.bind(&source.into())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {} // WRITABLE says when
        Err(e) => return Err(e),
    }
    let stream: std::net::TcpStream = socket.into();
    Ok(TcpStream::from_std(stream))
}

fn ping(c: &mut Conn, now: Instant) {
    let Some(token) = c.token.clone() else { return };
    c.queue(Message::Heartbeat(Heartbeat { token }));
    c.pings.push_back(now);
    c.state = State::Waiting;
    flush(c);
}

fn record(lat: &mut Vec<u32>, n: &mut u64, sent: Instant, now: Instant) {
    *n += 1;
    let us = now.duration_since(sent).as_micros().min(u32::MAX as u128) as u32;
    if lat.len() < lat.capacity() {
        lat.push(us);
    }
}

fn flush_all(conns: &mut [Conn]) {
    for c in conns {
        flush(c);
    }
}

/// Reads until `WouldBlock`, through TLS when the connection has it.
fn read_in(c: &mut Conn, buf: &mut [u8]) -> io::Result<()> {
    let closed = || io::Error::other("server closed a connection");
    let Some(tls) = c.tls.as_mut() else {
        loop {
            match c.stream.read(buf) {
                Ok(0) => return Err(closed()),
                Ok(n) => c.sink().extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    };
    loop {
        match tls.read_tls(&mut c.stream) {
            Ok(0) => return Err(closed()),
            Ok(_) => {
                tls.process_new_packets().map_err(io::Error::other)?;
                loop {
                    match tls.reader().read(buf) {
                        Ok(0) => return Err(closed()),
                        Ok(n) => sink_of(&mut c.ws, &mut c.input).extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// [`Conn::sink`] for when the TLS session is borrowed.
fn sink_of<'a>(ws: &'a mut Option<Box<WsLayer>>, input: &'a mut BytesMut) -> &'a mut BytesMut {
    match ws.as_deref_mut() {
        Some(ws) => &mut ws.raw,
        None => input,
    }
}

fn flush(c: &mut Conn) {
    if let Some(tls) = c.tls.as_mut() {
        // Plaintext into rustls (held until the handshake is done), records out.
        if !c.output.is_empty() {
            if let Ok(n) = tls.writer().write(&c.output) {
                c.output.drain(..n);
            }
        }
        while tls.wants_write() {
            match tls.write_tls(&mut c.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock, or still connecting: WRITABLE comes later.
                Err(_) => return,
            }
        }
        return;
    }
    while !c.output.is_empty() {
        match c.stream.write(&c.output) {
            Ok(n) => {
                c.output.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A connection still connecting reports NotConnected; WRITABLE comes later.
            Err(_) => return,
        }
    }
}
