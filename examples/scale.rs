//! The engine driven without sockets, past what the descriptor limit allows real
//! connections (issue 17): every byte the process allocates is counted, so the figures
//! are the engine's own, not the allocator's or the kernel's.
//!
//! - `sessions`: N users each log in on their own connection and stay connected; then
//!   bytes per connected session, and the cost of a heartbeat (fed in batches of 64 per
//!   turn, to connections in a scattered order, as readiness would come).
//! - `churn`: one account logs in and out again and again on new connections; the bytes
//!   each cycle leaves behind (the audit window filled first, so what grows is the
//!   tombstones), then how much is left once every tombstone's time has passed.
//!
//! ```text
//! cargo run --release --example scale -- sessions 10000 100000 1000000
//! cargo run --release --example scale -- sessions 10000 --attr-bytes 1024
//! cargo run --release --example scale -- churn --cycles 100000
//! ```
#![allow(clippy::disallowed_methods)] // a tool that measures real time
#![allow(unsafe_code)] // a counting global allocator must implement the unsafe trait

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use sessiond::auth::PasswordRecord;
use sessiond::conn::ConnId;
use sessiond::engine::{Engine, EngineConfig, InlineShell};
use sessiond::protocol::{
    decode_slice, AttrSet, Frame, Heartbeat, LoginRequest, LogoutRequest, Message, Role, Token,
};
use sessiond::session::UserTable;

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        // SAFETY: `p` came from this allocator with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Relaxed);
        LIVE.fetch_sub(l.size(), Relaxed);
        // SAFETY: as for `dealloc`, and `new` is the caller's valid size.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> usize {
    LIVE.load(Relaxed)
}

const PW: &str = "scale password";

/// The engine without sockets, to scale
#[derive(Parser, Debug)]
struct Args {
    #[command(subcommand)]
    run: Run,
}

#[derive(Subcommand, Debug)]
enum Run {
    /// Connected sessions: bytes each, and the cost of a heartbeat, at each count
    Sessions {
        /// Session counts to measure (a fresh engine for each)
        #[arg(required = true)]
        counts: Vec<usize>,
        /// Heartbeats to time at each count (at least one per connection)
        #[arg(long, default_value_t = 2_000_000)]
        heartbeats: usize,
        /// Bytes of attributes (keys and values) each session is given, in 4 attributes
        #[arg(long, default_value_t = 0)]
        attr_bytes: usize,
    },
    /// Login/logout cycles: the bytes each leaves behind
    Churn {
        /// Cycles measured
        #[arg(long, default_value_t = 100_000)]
        cycles: usize,
        /// Cycles run first, so the audit window is full before measuring
        #[arg(long, default_value_t = 60_000)]
        warmup: usize,
    },
}

fn config(max_connections: usize) -> EngineConfig {
    let mut cfg = EngineConfig {
        iterations: 1,
        max_connections,
        max_connections_per_address: 0,
        ..EngineConfig::default()
    };
    // every login comes from one address: its throttle opened
    cfg.policy.address_burst = u32::MAX;
    cfg.policy.address_rate_per_min = u32::MAX;
    cfg.policy.address_hashes = u32::MAX;
    cfg.policy.daily_logins = 0;
    cfg
}

fn users(n: usize) -> UserTable {
    let rec = PasswordRecord::create(PW.as_bytes(), 1).expect("getrandom");
    let mut t = UserTable::new();
    for i in 0..n {
        t.create(&format!("u{i}"), rec.clone(), Role::User, "", 0)
            .expect("distinct names");
    }
    t
}

fn engine(cfg: EngineConfig, users: UserTable, now: Instant) -> Engine {
    let dummy = PasswordRecord::dummy(1).expect("getrandom");
    Engine::new(cfg, users, dummy, now, 1_767_225_600_000)
}

fn login(e: &mut Engine, sh: &mut InlineShell, user: usize, now: Instant) -> (ConnId, Token) {
    let c = e.handle_accept("127.0.0.1:2".parse().expect("address"), now);
    let req = Message::LoginRequest(LoginRequest {
        username: format!("u{user}"),
        password: PW.into(),
        client: "scale".into(),
        platform: "linux".into(),
    });
    e.handle_input(c, &Frame::reply(1, req).to_vec(), now);
    assert!(sh.settle(e, now), "the engine settles");
    sh.journal.clear();
    let out = sh.take_written(c);
    match decode_slice(&out).map(|(f, _)| f.message) {
        Ok(Message::LoginSuccess(s)) => (c, s.token),
        other => panic!("login of u{user}: {other:?}"),
    }
}

/// Gives the session of `c` attributes of `bytes` in all (4 of them, keys `a0`..`a3`).
fn set_attrs(
    e: &mut Engine,
    sh: &mut InlineShell,
    c: ConnId,
    token: &Token,
    bytes: usize,
    now: Instant,
) {
    for k in 0..4 {
        let key = format!("a{k}");
        let value = vec![b'v'; (bytes / 4).saturating_sub(key.len())];
        let req = Message::AttrSet(AttrSet {
            token: token.clone(),
            key,
            value,
        });
        e.handle_input(c, &Frame::reply(2, req).to_vec(), now);
        assert!(sh.settle(e, now), "the engine settles");
        sh.journal.clear();
        let out = sh.take_written(c);
        assert!(
            matches!(
                decode_slice(&out).map(|(f, _)| f.message),
                Ok(Message::Done(_))
            ),
            "the attribute is set"
        );
    }
}

fn sessions(counts: &[usize], heartbeats: usize, attr_bytes: usize) {
    println!("| sessions | bytes per connected session | heartbeat through the turn | RSS |");
    println!("|---:|---:|---:|---:|");
    for &n in counts {
        let now = Instant::now();
        let mut sh = InlineShell::default();
        let mut conns = Vec::with_capacity(n);
        let accounts = users(n);
        let base = live(); // the accounts are not counted; the engine's arrays are
        let mut e = engine(config(n), accounts, now);
        for u in 0..n {
            let (c, token) = login(&mut e, &mut sh, u, now);
            if attr_bytes > 0 {
                set_attrs(&mut e, &mut sh, c, &token, attr_bytes, now);
            }
            conns.push((c, token));
        }
        let per_session = (live() - base) as f64 / n as f64;
        assert_eq!(e.attached_sessions(), n);
        // scattered order: a stride prime to n walks every connection once per pass
        let stride = (0..)
            .map(|k| n / 2 + 1 + k)
            .find(|s| gcd(*s, n) == 1)
            .unwrap_or(1);
        let frames: Vec<Vec<u8>> = conns
            .iter()
            .map(|(_, t)| {
                Frame::reply(9, Message::Heartbeat(Heartbeat { token: t.clone() })).to_vec()
            })
            .collect();
        let total = heartbeats.max(n);
        let (mut i, mut done) = (0usize, 0usize);
        let t0 = Instant::now();
        while done < total {
            let batch = 64.min(total - done);
            let first = i;
            for _ in 0..batch {
                e.handle_input(conns[i].0, &frames[i], now);
                i = (i + stride) % n;
            }
            e.turn(now, &mut sh);
            let mut j = first;
            for _ in 0..batch {
                assert!(!sh.take_written(conns[j].0).is_empty(), "an answer");
                j = (j + stride) % n;
            }
            done += batch;
        }
        let ns = t0.elapsed().as_nanos() as f64 / total as f64;
        println!(
            "| {n} | {per_session:.0} B | {ns:.0} ns | {:.0} MiB |",
            rss_mib()
        );
    }
}

fn churn(cycles: usize, warmup: usize) {
    let mut now = Instant::now();
    let mut e = engine(config(1024), users(1), now);
    let mut sh = InlineShell::default();
    let cycle = |e: &mut Engine, sh: &mut InlineShell, now: Instant| {
        let (c, token) = login(e, sh, 0, now);
        let out = Frame::reply(2, Message::LogoutRequest(LogoutRequest { token }));
        e.handle_input(c, &out.to_vec(), now);
        e.handle_closed(c, now);
        assert!(sh.settle(e, now), "the engine settles");
        sh.journal.clear();
        sh.take_written(c);
    };
    for _ in 0..warmup {
        cycle(&mut e, &mut sh, now);
    }
    let (before, tombs_before, rss_before) = (live(), e.sessions().tombstones(), rss_mib());
    for _ in 0..cycles {
        cycle(&mut e, &mut sh, now);
    }
    let after = live();
    let tombs = e.sessions().tombstones() - tombs_before;
    println!(
        "{cycles} cycles after {warmup}: {:.0} bytes allocated per cycle ({:.0} of RSS), \
         {tombs} more tombstones, {} in all ({:.1} MiB allocated)",
        (after as f64 - before as f64) / cycles as f64,
        (rss_mib() - rss_before) * 1048576.0 / cycles as f64,
        e.sessions().tombstones(),
        after as f64 / 1048576.0
    );
    // a day and an hour on, in minute steps: every tombstone's time has passed
    for _ in 0..(25 * 60) {
        now += Duration::from_secs(60);
        e.handle_timeout(now);
    }
    assert!(sh.settle(&mut e, now), "the engine settles");
    println!(
        "a day later: {} tombstones, {:.1} MiB allocated ({:.1} MiB fewer)",
        e.sessions().tombstones(),
        live() as f64 / 1048576.0,
        (after as f64 - live() as f64) / 1048576.0
    );
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1048576.0
}

fn main() {
    match Args::parse().run {
        Run::Sessions {
            counts,
            heartbeats,
            attr_bytes,
        } => sessions(&counts, heartbeats, attr_bytes),
        Run::Churn { cycles, warmup } => churn(cycles, warmup),
    }
}
