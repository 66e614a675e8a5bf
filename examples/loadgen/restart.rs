//! `--mode restart`: back to service after a restart (issue 17, point 5). Every connection
//! logs in and heartbeats (ping-pong, or once every `--every` ms); then the server is stopped (SIGTERM, by whoever
//! runs this: `benches/restart.sh`) and started again. Each client, told SERVER_SHUTDOWN,
//! waits its `reconnect_after_ms` plus a random part of up to as much again (protocol.md
//! 5.35), reconnects (again after 200 ms, doubling, while the server is still down),
//! resumes with VERIFY_SESSION (no password, no hashing) and heartbeats again. Reported:
//! the time from the first SERVER_SHUTDOWN until every client is back, how long each
//! resume took (from its connect to SESSION_VALID), the heartbeat p99 of the ones already
//! back meanwhile, and the new server's CPU time so far (from
//! `--server-pid-file`, which the script rewrites with the new server's pid).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use sessiond::protocol::{self, DecodeLimits, Message, VerifySession};

use super::{
    cpu_secs, dial, flush, login_msg, percentile, ping, read_in, record, register_accounts, Args,
    Conn, Role,
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
/// A client thread's error when another one failed first.
const STOPPED: &str = "stopped: another client thread failed";
/// The first wait before connecting again to a server still down.
const RETRY_FIRST: Duration = Duration::from_millis(200);

pub(super) fn run(a: &Args) -> io::Result<()> {
    if a.accounts > 0 {
        register_accounts(a)?;
    }
    let started = Instant::now();
    let logged_in = AtomicUsize::new(0);
    // This process's CPU time when the first SERVER_SHUTDOWN came.
    let cpu_at_stop = OnceLock::new();
    // Set by a thread that failed, so that the others stop too.
    let failed = AtomicBool::new(false);
    let threads = a.threads.min(a.conns);
    let shares: Vec<Share> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let clients: Vec<usize> = (t..a.conns).step_by(threads).collect();
                let (logged_in, cpu_at_stop, failed) = (&logged_in, &cpu_at_stop, &failed);
                scope.spawn(move || {
                    let r = share(a, &clients, logged_in, cpu_at_stop, failed);
                    if r.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        let mut results: Vec<io::Result<Share>> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| io::Error::other("a client thread panicked"))?
            })
            .collect();
        // The error of the thread that failed first, not of those it stopped.
        results.sort_by_key(|r| matches!(r, Err(e) if e.to_string() == STOPPED));
        results.into_iter().collect::<io::Result<Vec<Share>>>()
    })?;
    let t0 = shares
        .iter()
        .filter_map(|s| s.first_shutdown)
        .min()
        .unwrap_or(started);
    let last_back = shares.iter().map(|s| s.last_back).max().unwrap_or(t0);
    let all_back = last_back.saturating_duration_since(t0).as_secs_f64();
    let first = shares
        .iter()
        .filter_map(|s| s.first_back)
        .min()
        .map_or(0.0, |t| t.saturating_duration_since(t0).as_secs_f64());
    let reconnect_after = shares
        .iter()
        .map(|s| s.reconnect_after)
        .max()
        .unwrap_or_default();
    let round_trips: u64 = shares.iter().map(|s| s.round_trips).sum();
    let mut latencies: Vec<u32> = Vec::new();
    let mut resumes: Vec<u32> = Vec::new();
    for s in &shares {
        latencies.extend_from_slice(&s.latencies);
        resumes.extend_from_slice(&s.resumes);
    }
    let cpu = a
        .server_pid_file
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| s.trim().parse::<u32>().ok())
        .and_then(cpu_secs)
        .unwrap_or(-1.0);
    let own_cpu = cpu_secs(std::process::id()).unwrap_or(-1.0);
    let own_restart = own_cpu - cpu_at_stop.get().copied().unwrap_or(0.0);
    eprintln!(
        "loadgen: own CPU {own_cpu:.2} s in {:.1} s ({threads} threads)",
        started.elapsed().as_secs_f64()
    );
    latencies.sort_unstable();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    resumes.sort_unstable();
    let (r50, r99) = (percentile(&resumes, 0.5), percentile(&resumes, 0.99));
    let rmax = resumes.last().copied().unwrap_or(0);
    println!(
        "restart: {} clients; SERVER_SHUTDOWN said come back after {} ms (each waited that \
         and up to as much again); first back {first:.2} s after it, all back after \
         {all_back:.2} s; a resume took p50 {r50} us, p99 {r99} us, at most {rmax} us from \
         its connect; heartbeats of those back meanwhile p50 {p50} us, p99 {p99} us ({round_trips} \
         round trips); new server CPU {cpu:.2} s; this tool's CPU from the stop on \
         {own_restart:.2} s",
        a.conns,
        reconnect_after.as_millis()
    );
    println!(
        "{{\"mode\":\"restart\",\"conns\":{},\"reconnect_after_ms\":{},\"first_back_secs\":{first:.3},\"all_back_secs\":{all_back:.3},\"resume_p50_us\":{r50},\"resume_p99_us\":{r99},\"resume_max_us\":{rmax},\"back_p50_us\":{p50},\"back_p99_us\":{p99},\"back_round_trips\":{round_trips},\"server_cpu_secs\":{cpu:.2},\"loadgen_cpu_secs\":{own_restart:.2}}}",
        a.conns,
        reconnect_after.as_millis()
    );
    Ok(())
}

/// What one thread's clients saw (merged by [`run`]); their connections are kept open
/// until every thread is done.
struct Share {
    first_shutdown: Option<Instant>,
    first_back: Option<Instant>,
    last_back: Instant,
    reconnect_after: Duration,
    latencies: Vec<u32>,
    round_trips: u64,
    resumes: Vec<u32>,
    _conns: Vec<Conn>,
}

/// Drives `clients` (their indexes among all of them) on this thread's own poll until
/// every one is back; `logged_in` counts the logins of every thread, `cpu_at_stop` takes
/// the process's CPU time at the first SERVER_SHUTDOWN any thread sees; `failed` says
/// another thread has given up.
fn share(
    a: &Args,
    clients: &[usize],
    logged_in: &AtomicUsize,
    cpu_at_stop: &OnceLock<f64>,
    failed: &AtomicBool,
) -> io::Result<Share> {
    let mut poll = Poll::new()?;
    let n = clients.len();
    let mut conns = Vec::with_capacity(n);
    for (j, &i) in clients.iter().enumerate() {
        let mut c = connect(&poll, a.addr, i, j)?;
        c.queue(login_msg(a, i));
        conns.push(c);
    }
    let mut phase = vec![Phase::Serving; n];
    let mut tries = vec![0u32; n];
    // When each client's last connect was made, and how long each resume took from it.
    let mut dialed = vec![Instant::now(); n];
    let mut resumes: Vec<u32> = Vec::with_capacity(n);
    // When each client away (or refused a login with SERVER_BUSY) tries again, earliest
    // first.
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    // With --every: when each client heartbeats next, earliest first.
    let mut beats: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let every = Duration::from_millis(a.every);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut events = Events::with_capacity(4096);
    let mut buf = vec![0u8; 64 * 1024];
    let mut back = 0usize;
    let mut first_shutdown: Option<Instant> = None;
    let mut first_back: Option<Instant> = None;
    let mut last_back = Instant::now();
    let mut reconnect_after = Duration::ZERO;
    let mut latencies: Vec<u32> = Vec::with_capacity((1 << 20) / a.threads.max(1));
    let mut round_trips = 0u64;
    let started = Instant::now();
    let limits = DecodeLimits::client(1 << 20);
    while back < n {
        if failed.load(Ordering::Relaxed) {
            return Err(io::Error::other(STOPPED));
        }
        let now = Instant::now();
        let waited = first_shutdown.map_or(now - started, |t| now - t);
        if waited > PATIENCE {
            return Err(io::Error::other(format!(
                "{} of {} back after {} s",
                back,
                n,
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
                conns[i].queue(login_msg(a, clients[i]));
                flush(&mut conns[i]);
            }
            if let Phase::Away(at) = phase[i] {
                if at <= now {
                    let token = conns[i].token.take();
                    conns[i] = connect(&poll, a.addr, clients[i], i)?;
                    dialed[i] = now;
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
        while let Some(&Reverse((at, i))) = beats.peek() {
            if at > now {
                break;
            }
            beats.pop();
            let c = &mut conns[i];
            if matches!(phase[i], Phase::Serving | Phase::Back) && c.pings.is_empty() {
                ping(c, now);
            }
        }
        let next = [due.peek(), beats.peek()]
            .into_iter()
            .flatten()
            .map(|Reverse((at, _))| *at)
            .min();
        let wait = next.map_or(Duration::from_millis(50), |at| {
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
                        if logged_in.fetch_add(1, Ordering::Relaxed) + 1 == a.conns {
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
                        if every.is_zero() {
                            ping(c, now);
                        } else {
                            beats.push(Reverse((sent + every, i)));
                        }
                    }
                    Message::ServerShutdown(s) => {
                        cpu_at_stop.get_or_init(|| cpu_secs(std::process::id()).unwrap_or(0.0));
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
                        record(&mut resumes, &mut 0, dialed[i], now);
                        first_back.get_or_insert(now);
                        last_back = now;
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
                // for our FIN before it can stop), and hear no more of it: a shutdown
                // wakes the socket's waiters, so epoll would report it again, and again
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                let _ = poll.registry().deregister(&mut c.stream);
            }
            if gone && matches!(phase[i], Phase::Serving | Phase::Back) {
                return Err(io::Error::other(format!(
                    "server closed a connection ({:?})",
                    phase[i]
                )));
            }
        }
    }
    Ok(Share {
        first_shutdown,
        first_back,
        last_back,
        reconnect_after,
        latencies,
        round_trips,
        resumes,
        _conns: conns,
    })
}

/// A new connection for client `i`, registered as `token` (its token set by the caller).
fn connect(poll: &Poll, addr: SocketAddr, i: usize, token: usize) -> io::Result<Conn> {
    let mut stream = dial(addr, i)?;
    poll.registry().register(
        &mut stream,
        Token(token),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    Ok(Conn::new(stream, Role::Pinger))
}
