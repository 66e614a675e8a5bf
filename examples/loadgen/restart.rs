//! `--mode restart`: back to service after a restart (issue 17, point 5). Every connection
//! logs in and heartbeats (ping-pong); then the server is stopped (SIGTERM, by whoever
//! runs this: `benches/restart.sh`) and started again. Each client, told SERVER_SHUTDOWN,
//! waits its `reconnect_after_ms` plus a random part of up to as much again (protocol.md
//! 5.35), reconnects (again after 200 ms, doubling, while the server is still down),
//! resumes with VERIFY_SESSION (no password, no hashing) and heartbeats again. Reported:
//! the time from the first SERVER_SHUTDOWN until every client is back, the heartbeat p99
//! of the ones already back meanwhile, and the new server's CPU time so far (from
//! `--server-pid-file`, which the script rewrites with the new server's pid).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use sessiond::protocol::{self, DecodeLimits, Message, VerifySession};

use super::{
    cpu_secs, flush, login_msg, percentile, ping, read_in, record, register_accounts, Args, Conn,
    Role, State,
};

/// Where a client is in the restart.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    /// Logging in, then heartbeating, until SERVER_SHUTDOWN.
    Serving,
    /// Told to go; reconnects at the instant given.
    Away(Instant),
    /// Connecting, then VERIFY_SESSION sent.
    Resuming,
    /// Resumed: heartbeating again.
    Back,
}

/// The longest a run waits for the stop, and then for everyone to be back.
const PATIENCE: Duration = Duration::from_secs(300);
/// The first wait before connecting again to a server still down.
const RETRY_FIRST: Duration = Duration::from_millis(200);

pub(super) fn run(a: &Args) -> io::Result<()> {
    if a.accounts > 0 {
        register_accounts(a)?;
    }
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(a.conns);
    for i in 0..a.conns {
        let mut c = connect(&poll, a.addr, i)?;
        c.queue(login_msg(a, i));
        conns.push(c);
    }
    let mut phase = vec![Phase::Serving; a.conns];
    let mut tries = vec![0u32; a.conns];
    // When each client away (or refused a login with SERVER_BUSY) tries again, earliest
    // first.
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut logged_in, mut back) = (0usize, 0usize);
    let mut first_shutdown: Option<Instant> = None;
    let mut first_back: Option<Instant> = None;
    let mut reconnect_after = Duration::ZERO;
    let mut latencies: Vec<u32> = Vec::with_capacity(1 << 20);
    let mut round_trips = 0u64;
    let started = Instant::now();
    let limits = DecodeLimits::client(1 << 20);
    while back < a.conns {
        let now = Instant::now();
        let waited = first_shutdown.map_or(now - started, |t| now - t);
        if waited > PATIENCE {
            return Err(io::Error::other(format!(
                "{} of {} back after {} s",
                back,
                a.conns,
                waited.as_secs()
            )));
        }
        // reconnect (or log in again) those whose time has come
        while let Some(&Reverse((at, i))) = due.peek() {
            if at > now {
                break;
            }
            due.pop();
            if phase[i] == Phase::Serving {
                conns[i].queue(login_msg(a, i));
                flush(&mut conns[i]);
            }
            if let Phase::Away(at) = phase[i] {
                if at <= now {
                    let token = conns[i].token.take();
                    conns[i] = connect(&poll, a.addr, i)?;
                    let c = &mut conns[i];
                    c.queue(Message::VerifySession(VerifySession {
                        token: token.clone().unwrap_or(protocol::Token([0; 32])),
                        client: String::new(),
                        platform: String::new(),
                    }));
                    c.token = token;
                    phase[i] = Phase::Resuming;
                }
            }
        }
        let wait = due
            .peek()
            .map_or(Duration::from_millis(50), |Reverse((at, _))| {
                at.saturating_duration_since(now)
                    .min(Duration::from_millis(50))
            });
        poll.poll(&mut events, Some(wait))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            if phase[i] == Phase::Resuming && (ev.is_error() || ev.is_read_closed()) {
                // the server is still down: again later, backing off
                let delay = RETRY_FIRST.saturating_mul(1 << tries[i].min(5));
                tries[i] += 1;
                let at = Instant::now() + delay;
                phase[i] = Phase::Away(at);
                due.push(Reverse((at, i)));
                continue;
            }
            if ev.is_writable() {
                flush(c); // (a new connection's VERIFY_SESSION goes once it is up)
            }
            if !ev.is_readable() {
                continue;
            }
            let gone = read_in(c, &mut buf).is_err();
            let now = Instant::now();
            loop {
                let frame = match protocol::decode(&mut c.input, limits) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return Err(io::Error::other(format!("bad frame: {e}"))),
                };
                match frame.message {
                    Message::LoginSuccess(s) => {
                        c.token = Some(s.token);
                        logged_in += 1;
                        if logged_in == a.conns {
                            eprintln!("loadgen: all {} in; stop the server now", a.conns);
                        }
                        ping(c, now);
                    }
                    Message::LoginFailure(f) if f.retry_after_ms > 0 => {
                        // SERVER_BUSY: this tool's logins come all at once
                        let after = Duration::from_millis(u64::from(f.retry_after_ms));
                        due.push(Reverse((now + after, i)));
                    }
                    Message::LoginFailure(f) => {
                        return Err(io::Error::other(format!("login failed: {}", f.message)))
                    }
                    Message::HeartbeatAck(_) => {
                        let sent = c.pings.pop_front().unwrap_or(now);
                        if phase[i] == Phase::Back && first_shutdown.is_some() {
                            record(&mut latencies, &mut round_trips, sent, now);
                        }
                        ping(c, now);
                    }
                    Message::ServerShutdown(s) => {
                        let t = *first_shutdown.get_or_insert(now);
                        reconnect_after = Duration::from_millis(u64::from(s.reconnect_after_ms));
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let jitter =
                            reconnect_after.mul_f64((rng >> 11) as f64 / (1u64 << 53) as f64);
                        let at = t.max(now) + reconnect_after + jitter;
                        phase[i] = Phase::Away(at);
                        due.push(Reverse((at, i)));
                        tries[i] = 0;
                        c.pings.clear();
                    }
                    Message::DisconnectAck(_) => {}
                    Message::SessionValid(_) if phase[i] == Phase::Resuming => {
                        phase[i] = Phase::Back;
                        back += 1;
                        first_back.get_or_insert(now);
                        ping(c, now);
                    }
                    Message::NewLogin(_) => {}
                    other => {
                        return Err(io::Error::other(format!(
                            "unexpected {} in {:?}",
                            other.opcode().name(),
                            phase[i]
                        )))
                    }
                }
            }
            flush(c);
            if gone && matches!(phase[i], Phase::Away(_)) {
                // the server closed after DISCONNECT_ACK: close our side too (it lingers
                // for our FIN before it can stop)
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
            }
            if gone && matches!(phase[i], Phase::Serving | Phase::Back) {
                return Err(io::Error::other(format!(
                    "server closed a connection ({:?})",
                    phase[i]
                )));
            }
        }
    }
    let t0 = first_shutdown.unwrap_or(started);
    let all_back = t0.elapsed().as_secs_f64();
    let first = first_back.map_or(0.0, |t| t.duration_since(t0).as_secs_f64());
    let cpu = a
        .server_pid_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.trim().parse::<u32>().ok())
        .and_then(cpu_secs)
        .unwrap_or(-1.0);
    let own_cpu = cpu_secs(std::process::id()).unwrap_or(-1.0);
    eprintln!(
        "loadgen: own CPU {own_cpu:.2} s in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    latencies.sort_unstable();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "restart: {} clients; SERVER_SHUTDOWN said come back after {} ms (each waited that \
         and up to as much again); first back {first:.2} s after it, all back after \
         {all_back:.2} s; heartbeats of those back meanwhile p50 {p50} us, p99 {p99} us ({round_trips} \
         round trips); new server CPU {cpu:.2} s",
        a.conns,
        reconnect_after.as_millis()
    );
    println!(
        "{{\"mode\":\"restart\",\"conns\":{},\"reconnect_after_ms\":{},\"first_back_secs\":{first:.3},\"all_back_secs\":{all_back:.3},\"back_p50_us\":{p50},\"back_p99_us\":{p99},\"back_round_trips\":{round_trips},\"server_cpu_secs\":{cpu:.2}}}",
        a.conns,
        reconnect_after.as_millis()
    );
    Ok(())
}

/// A new connection for client `i` (its token set by the caller).
fn connect(poll: &Poll, addr: SocketAddr, i: usize) -> io::Result<Conn> {
    let mut stream = TcpStream::connect(addr)?;
    poll.registry().register(
        &mut stream,
        Token(i),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    Ok(Conn {
        stream,
        tls: None,
        role: Role::Pinger,
        state: State::LoggingIn,
        input: BytesMut::with_capacity(4096),
        output: Vec::with_capacity(256),
        token: None,
        sent_at: Instant::now(),
        pings: Default::default(),
        next_id: 0,
        ws: None,
    })
}
