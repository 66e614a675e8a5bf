//! The shell: the only module that knows mio. One `Poll`, the listeners, the client
//! sockets, the hash workers and the store thread, and the loop that moves bytes and
//! answers between them and the [`Engine`].
//!
//! Owns sockets, threads and the clock. Every protocol decision is the engine's; this
//! module reads until `WouldBlock` and hands the bytes in, hands in hash answers and the
//! store's reports as they come, then runs the engine's turn ([`Engine::turn`]) through
//! `Io`, its [`Shell`]: hash jobs to the pool, the batch to the store thread, transmits
//! to the sockets (registering `WRITABLE` only while output is pending). It sleeps until
//! an input comes or the next deadline (the engine's, or its own: lingering sockets, a
//! paused accept).
//!
//! Loop rules (mio's `tcp_server` example): drain accepts, reads and writes until
//! `WouldBlock`; `Ok(0)` from read is the peer closing; retry `Interrupted`; ignore events
//! whose token names a closed connection (the token carries the slot's generation).

mod committer;
mod fd_limit;
mod hash_pool;
mod http;
mod metrics;
mod notify;
mod peers;
mod reload;
mod transport;
mod ws;

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::auth::{HashJob, PasswordRecord};
use crate::conn::ConnId;
use crate::engine::replay::State;
use crate::engine::{Engine, EngineConfig, EventBatch, Shell, Stats, Transmit};
use crate::session::UserTable;
use crate::store::{self, Store};
use committer::{Committer, Report};
use hash_pool::{HashPool, PoolFull};
use notify::Notify;
use reload::Reloads;
pub use reload::{Reload, Reloader};
use transport::ReadStep;
pub use ws::upgrade::accept_key as websocket_accept_key;
pub use ws::OriginPolicy;
use ws::WsConn;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("sessiond packs (generation, index) into a mio Token and needs 64-bit usize");

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
/// The optional plain listener beside a TLS one (loopback only).
const PLAIN_LISTENER: Token = Token(usize::MAX - 3);
/// The metrics listener (`--metrics-listen`); its connections' tokens are `http`'s.
const METRICS_LISTENER: Token = Token(usize::MAX - 4);
/// The WebSocket listener (`--ws-listen`).
const WS_LISTENER: Token = Token(usize::MAX - 5);
/// How long accepting pauses after the process ran out of file descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Bytes read per `read` call, into one buffer shared by all connections.
const READ_CHUNK: usize = 16 * 1024;

/// The shell's one clock: every `now` the engine is given comes from here.
#[allow(clippy::disallowed_methods)] // the shell owns the clock (clippy.toml)
fn now() -> Instant {
    Instant::now()
}

/// Unix milliseconds now, once, to pair with [`now`] at startup (`Engine::new`).
#[allow(clippy::disallowed_methods)] // the shell owns the clock (clippy.toml)
fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The main listener's address (TLS if `tls` is set).
    pub listen: SocketAddr,
    /// The protocol's deadlines and limits.
    pub engine: EngineConfig,
    /// Threads hashing passwords.
    pub hash_workers: usize,
    /// Logins waiting for a hash thread before new ones get SERVER_BUSY.
    pub hash_queue: usize,
    /// PBKDF2 iterations for new records and for the dummy record.
    pub iterations: u32,
    /// How long a closing socket waits for the peer's FIN after the last frame, so the
    /// kernel does not turn the close into a reset that could destroy that frame.
    pub linger: Duration,
    /// Graceful shutdown: how long the server waits for every connection to take its
    /// SERVER_SHUTDOWN notice before it closes the rest.
    pub shutdown_grace: Duration,
    /// Stop gracefully on SIGTERM and SIGINT (the binary sets it; embedded servers use
    /// `ServerHandle::shutdown`).
    pub handle_signals: bool,
    /// TLS on `listen` (see `crate::tls::server_config`); None: plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// With TLS: a second, plain listener for local tools. Must be a loopback address.
    pub plain_listen: Option<SocketAddr>,
    /// HTTP for `/metrics` (Prometheus text), `/healthz` and `/readyz`; None: off.
    pub metrics_listen: Option<SocketAddr>,
    /// The same protocol over WebSocket (protocol.md 1), TLS if `tls` is set; None: off.
    pub ws_listen: Option<SocketAddr>,
    /// Listen with SO_REUSEPORT, so that several servers (cluster nodes) share the
    /// addresses and the kernel spreads new connections over them.
    pub reuse_port: bool,
    /// How many connections each listener lets the kernel hold before they are accepted.
    /// Every client of a restarted server comes back within a second or two: with std's
    /// 128 the kernel dropped thousands of their handshakes (measured:
    /// `benches/restart.sh`), and each dropped one waits 1 s, then 3 s, to try again.
    pub listen_backlog: u32,
    /// Which browser origins may open a WebSocket (requests without Origin always may).
    pub ws_origins: OriginPolicy,
    /// With `handle_signals`: what SIGHUP reloads (None: SIGHUP is logged and ignored).
    pub reloader: Option<Reloader>,
    /// The log's filter in force at start (a reload says how it changed).
    pub log_filter: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7450)),
            engine: EngineConfig::default(),
            hash_workers: 2,
            hash_queue: 256,
            iterations: crate::auth::DEFAULT_ITERATIONS,
            linger: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(3),
            handle_signals: false,
            tls: None,
            plain_listen: None,
            metrics_listen: None,
            ws_listen: None,
            reuse_port: false,
            listen_backlog: 4096,
            ws_origins: OriginPolicy::default(),
            reloader: None,
            log_filter: String::new(),
        }
    }
}

/// Stops a running server from another thread.
#[derive(Clone)]
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ServerHandle {
    /// Asks the loop to return; it does within one iteration.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            warn!("cannot wake the server loop: {e}");
        }
    }
}

struct Sock {
    stream: TcpStream,
    id: ConnId,
    /// WRITABLE interest is registered (only while output is pending).
    writable: bool,
    /// The write side is shut down; waiting for the peer's FIN or the linger deadline.
    lingering: bool,
    /// The TLS session of a connection to the TLS listener.
    tls: Option<Box<rustls::ServerConnection>>,
    /// Nothing has been read yet (a TLS port checks the first bytes for a plaintext frame).
    fresh: bool,
    /// A connection to the WebSocket listener: the handshake, then the framing.
    ws: Option<Box<WsConn>>,
}

/// Which listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The main listener (TLS if configured).
    Main,
    /// The plain loopback listener beside TLS.
    Plain,
    /// The WebSocket listener (TLS if configured).
    Ws,
}

/// A bound server, ready to `run`: the engine and its shell.
pub struct Server {
    engine: Engine,
    io: Io,
}

/// The server's side of the engine: sockets, threads, and its own deadlines. The engine's
/// [`Shell`].
struct Io {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    plain: Option<(TcpListener, SocketAddr)>,
    ws: Option<(TcpListener, SocketAddr)>,
    ws_origins: OriginPolicy,
    /// WebSocket bytes are framed here and written at once; only what the socket does not
    /// take stays with the connection (`WsConn::borrow_scratch`).
    ws_scratch: bytes::BytesMut,
    /// The binary payloads of one read, handed to the engine together.
    ws_inbox: Vec<u8>,
    /// WebSocket upgrades accepted and refused (`/metrics`).
    ws_upgrades: [u64; 2],
    /// `/metrics`, `/healthz` and `/readyz` over HTTP (`http`, `metrics`).
    metrics: Option<http::MetricsServer>,
    socks: Vec<Option<Sock>>,
    pool: HashPool,
    /// The store thread making each turn's events durable; replies that depend on them
    /// wait for it. None keeps everything in memory (tests, tools).
    committer: Option<Committer>,
    /// The store's deadline to stop serving by, unless it moves it (the cluster's write
    /// lease): watched here, so that a store thread stuck on a dead database cannot keep
    /// the node serving past it.
    fence: Option<store::Fence>,
    /// A cluster node's link to the other nodes (`peers`).
    peers: Option<peers::Peers>,
    /// In memory: the batches to report durable at once, after the turn.
    durable_now: Option<u64>,
    /// The store asked for a snapshot; sent after the next batch.
    snapshot_wanted: bool,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    linger: Duration,
    /// Lingering sockets by deadline. The linger time is constant, so deadlines are pushed
    /// in order and a queue is a complete timer for them.
    lingering: VecDeque<(Instant, ConnId)>,
    /// Sockets that ended during the engine's turn (closed after their last transmit, or
    /// failed), reported to the engine right after it.
    ended: Vec<ConnId>,
    /// Accepting is paused until then (the process ran out of file descriptors).
    accept_paused: Option<Instant>,
    /// Client sockets open (live and lingering), and the most there may be: what the
    /// descriptor limit leaves after the server's own reserve (`fd_limit`). At the
    /// budget, accepting waits (the kernel queues) until a socket closes.
    sockets_open: usize,
    socket_budget: usize,
    /// Accepting stopped at the budget; when a socket closes, `accept_resume` asks the
    /// next iteration to accept again (the listener is edge-triggered).
    accept_full: bool,
    accept_resume: bool,
    /// Sockets lingering, and the most that may: beyond it the oldest is closed at once
    /// (refused connections must not pile up holding descriptors).
    lingering_open: usize,
    max_lingering: usize,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    /// What SIGHUP reloads, the reload in flight, and the log filter in force.
    reloader: Option<Reloader>,
    reloads: Reloads,
    log_filter: String,
    /// systemd's notify socket and watchdog (nothing without `NOTIFY_SOCKET`).
    notify: Notify,
    shutdown_grace: Duration,
    read_buf: Box<[u8]>,
}

/// The server's listening sockets, bound (and checked against the configuration) before
/// the server starts.
#[derive(Debug)]
pub struct Listeners {
    main: std::net::TcpListener,
    plain: Option<std::net::TcpListener>,
    metrics: Option<std::net::TcpListener>,
    ws: Option<std::net::TcpListener>,
}

/// A listening socket on `addr` (SO_REUSEADDR, as std's `TcpListener::bind` sets) with
/// room for `backlog` connections waiting to be accepted (std's bind allows 128); with
/// `reuse_port`, SO_REUSEPORT too.
fn listen_on(
    addr: SocketAddr,
    reuse_port: bool,
    backlog: u32,
) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())?;
    // The kernel caps it at net.core.somaxconn (4096 by default since Linux 5.4).
    s.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(s.into())
}

impl Listeners {
    /// Binds `cfg.listen`, `cfg.plain_listen`, `cfg.metrics_listen` and `cfg.ws_listen`;
    /// an error names the address.
    pub fn bind(cfg: &ServerConfig) -> io::Result<Listeners> {
        let (reuse, backlog) = (cfg.reuse_port, cfg.listen_backlog);
        let bind = |addr: SocketAddr| {
            listen_on(addr, reuse, backlog)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
        };
        let plain = match cfg.plain_listen {
            Some(addr) if cfg.tls.is_none() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a plain listener ({addr}) is only for use beside TLS"),
                ))
            }
            Some(addr) if !addr.ip().is_loopback() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the plain listener must be on loopback, not {addr}"),
                ))
            }
            Some(addr) => Some(bind(addr)?),
            None => None,
        };
        let main = bind(cfg.listen)?;
        let metrics = cfg.metrics_listen.map(bind).transpose()?;
        let ws = cfg.ws_listen.map(bind).transpose()?;
        Ok(Listeners {
            main,
            plain,
            metrics,
            ws,
        })
    }

    /// The main listener's address (the port chosen, for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.main.local_addr()
    }
}

impl Server {
    /// Binds the listener and starts the hash workers, with everything in memory only.
    pub fn bind(cfg: ServerConfig, users: UserTable) -> io::Result<Server> {
        let state = State {
            users,
            ..State::new()
        };
        Self::bind_with_store(cfg, state, None)
    }

    /// Like `bind`, starting from `state` (a replayed journal: users, live sessions with
    /// their deadlines recomputed, tombstones of ended ones) and recording every durable
    /// change in `store`.
    pub fn bind_with_store(
        cfg: ServerConfig,
        state: State,
        store: Option<Box<dyn Store>>,
    ) -> io::Result<Server> {
        let listeners = Listeners::bind(&cfg)?;
        Self::start(cfg, listeners, state, store)
    }

    /// Like `bind_with_store`, on listeners bound beforehand (the binary binds them before
    /// it creates any state, so a start that cannot listen changes nothing).
    pub fn start(
        cfg: ServerConfig,
        listeners: Listeners,
        mut state: State,
        store: Option<Box<dyn Store>>,
    ) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listeners.main);
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let plain = match listeners.plain {
            Some(l) => {
                let mut l = TcpListener::from_std(l);
                let a = l.local_addr()?;
                poll.registry()
                    .register(&mut l, PLAIN_LISTENER, Interest::READABLE)?;
                Some((l, a))
            }
            None => None,
        };
        let ws = match listeners.ws {
            Some(l) => {
                let mut l = TcpListener::from_std(l);
                let a = l.local_addr()?;
                poll.registry()
                    .register(&mut l, WS_LISTENER, Interest::READABLE)?;
                Some((l, a))
            }
            None => None,
        };
        let metrics = listeners
            .metrics
            .map(|l| http::MetricsServer::start(l, poll.registry(), METRICS_LISTENER, now()))
            .transpose()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let pool = HashPool::new(cfg.hash_workers, cfg.hash_queue, waker.clone())?;
        let dummy = PasswordRecord::dummy(cfg.iterations)?;
        let start = now();
        // One iteration count for every record the server makes (ServerConfig's), and
        // no more connections than the descriptor limit leaves room for.
        let budget = fd_limit::Budget::new(cfg.engine.max_connections, fd_limit::raise());
        let engine_cfg = EngineConfig {
            iterations: cfg.iterations,
            max_connections: budget.connections,
            cluster: store.as_ref().is_some_and(|s| s.link_spec().is_some()),
            ..cfg.engine.clone()
        };
        let users = std::mem::take(&mut state.users);
        let mut engine = Engine::new(engine_cfg, users, dummy, start, unix_ms_now());
        engine.expect_hash_rate(pool.expected_rate(cfg.iterations));
        engine.restore(state, start);
        let signals = if cfg.handle_signals {
            let mut s = signal_hook_mio::v1_0::Signals::new([
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGHUP,
            ])?;
            poll.registry()
                .register(&mut s, SIGNALS, Interest::READABLE)?;
            Some(s)
        } else {
            None
        };
        let fence = store.as_ref().and_then(|s| s.fence());
        let peers = match store.as_ref().and_then(|s| s.link_spec()) {
            Some(spec) => {
                engine.bind_remote(&spec.bound);
                Some(peers::Peers::start(spec, waker.clone())?)
            }
            None => None,
        };
        let committer = match store {
            Some(store) => Some(Committer::start(store, waker.clone())?),
            None => None,
        };
        let io = Io {
            poll,
            listener,
            local_addr,
            tls: cfg.tls.clone(),
            plain,
            ws,
            ws_origins: cfg.ws_origins.clone(),
            ws_scratch: bytes::BytesMut::new(),
            ws_upgrades: [0; 2],
            ws_inbox: Vec::new(),
            metrics,
            socks: Vec::with_capacity(engine.config().reserved_connections()),
            pool,
            committer,
            fence,
            peers,
            durable_now: None,
            snapshot_wanted: false,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            linger: cfg.linger,
            lingering: VecDeque::new(),
            ended: Vec::new(),
            accept_paused: None,
            sockets_open: 0,
            socket_budget: budget.sockets,
            accept_full: false,
            accept_resume: false,
            lingering_open: 0,
            max_lingering: budget.lingering,
            signals,
            reloader: cfg.reloader.clone(),
            reloads: Reloads::new(),
            log_filter: cfg.log_filter.clone(),
            notify: Notify::from_env(start),
            shutdown_grace: cfg.shutdown_grace,
            read_buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
        };
        Ok(Server { engine, io })
    }

    /// The main listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.io.local_addr
    }

    /// The plain loopback listener's address, when there is one.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.io.plain.as_ref().map(|(_, a)| *a)
    }

    /// The WebSocket listener's address, when there is one.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.io.ws.as_ref().map(|(_, a)| *a)
    }

    /// The metrics listener's address, when there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.io.metrics.as_ref().map(|m| m.local_addr())
    }

    /// A handle that stops the loop from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            stop: self.io.stop.clone(),
            waker: self.io.waker.clone(),
        }
    }

    /// The engine's counters.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// Runs until [`ServerHandle::shutdown`] (or SIGTERM/SIGINT with `handle_signals`).
    /// Returns an error only if polling itself fails or the store fails; a failing
    /// connection is closed and the loop goes on.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        info!("listening on {}", self.io.local_addr);
        let status = format!("listening on {}", self.io.local_addr);
        self.io.notify.ready(&status);
        while !self.io.stop.load(Ordering::SeqCst) {
            let timeout = self.poll_timeout(now());
            self.iterate(&mut events, timeout)?;
        }
        self.shut_down()?;
        info!("server stopped");
        Ok(())
    }

    /// One loop iteration: wait for readiness (at most `timeout`), hand in what happened,
    /// then run the shell's own deadlines and the engine's turn.
    fn iterate(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        match self.io.poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let now = now();
        if let Some(f) = self.io.fence.as_ref().filter(|f| now >= f.deadline()) {
            // Design: no graceful shutdown here (it would wait for durable writes that
            // cannot come). The clients are told at once to go elsewhere, and the
            // connections close with the process.
            let late = now.saturating_duration_since(f.deadline());
            self.engine.handle_fenced(now);
            self.engine.turn(now, &mut self.io);
            if let Some(c) = self.io.committer.take() {
                c.abandon();
            }
            return Err(io::Error::other(format!(
                "the cluster lease of this node was not renewed in time ({late:?} past it): this \
                 node stops serving (fenced), so that another may take over"
            )));
        }
        self.io.dispatch(&mut self.engine, events, now)?;
        // Every turn, not only when the waker's event comes up: with thousands of sockets
        // ready, a poll returns 1,024 events and the waker's may be ten polls away, and
        // each login waits for two of its wakes (the hash, then the durable write).
        self.io.drain_threads(&mut self.engine, now)?;
        self.io.expire_lingering(&mut self.engine, now);
        self.io.expire_metrics(now);
        let room_again = std::mem::take(&mut self.io.accept_resume);
        if room_again || self.io.accept_paused.is_some_and(|t| t <= now) {
            self.io.accept_paused = None;
            for via in [Via::Main, Via::Plain, Via::Ws] {
                self.io.accept_all(&mut self.engine, now, via);
            }
        }
        self.turn(now);
        self.io.notify.tick(now);
        Ok(())
    }

    /// The engine's turn through the shell, then what the turn left the shell to report:
    /// sockets that ended, and (in memory) batches durable at once.
    fn turn(&mut self, now: Instant) {
        self.engine.turn(now, &mut self.io);
        if let Some(p) = self.io.peers.as_mut() {
            p.after_turn();
        }
        for id in std::mem::take(&mut self.io.ended) {
            self.io.drop_conn(&mut self.engine, id, now);
        }
        if let Some(seq) = self.io.durable_now.take() {
            self.engine.handle_durable(seq, 0);
        }
    }

    /// The earliest of the engine's deadline and the shell's own (lingering sockets, a
    /// paused accept), as a poll timeout.
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        let engine = self.engine.poll_timeout(now);
        let linger = self.io.lingering.front().map(|(d, _)| *d);
        let resume = self.io.accept_resume.then_some(now);
        let watchdog = self.io.notify.deadline();
        let metrics = self.io.metrics.as_ref().and_then(|m| m.next_deadline());
        let fence = self.io.fence.as_ref().map(|f| f.deadline());
        [
            engine,
            linger,
            self.io.accept_paused,
            resume,
            watchdog,
            metrics,
            fence,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|d| d.saturating_duration_since(now))
    }

    /// Graceful shutdown: stop accepting; tell every connection (SERVER_SHUTDOWN, then
    /// DISCONNECT_ACK) once the sessions' last state is durable; give them
    /// `shutdown_grace` to read it; make the journal durable; return.
    fn shut_down(&mut self) -> io::Result<()> {
        let _ = self.io.poll.registry().deregister(&mut self.io.listener);
        self.io.notify.send("STOPPING=1");
        let start = now();
        let open = self.io.socks.iter().flatten().count();
        info!("shutting down: telling {open} connection(s)");
        self.engine.handle_shutdown(start);
        self.turn(start);
        let deadline = start + self.io.shutdown_grace;
        let mut events = Events::with_capacity(1024);
        while self.io.socks.iter().any(Option::is_some) {
            let now = now();
            if now >= deadline {
                let left = self.io.socks.iter().flatten().count();
                warn!("shutdown grace over: closing {left} connection(s) that did not finish");
                break;
            }
            let left = deadline - now;
            let timeout = self.poll_timeout(now).map_or(left, |t| t.min(left));
            self.iterate(&mut events, Some(timeout))?;
        }
        // Whatever the last turn recorded is durable before the server returns.
        if let Some(batch) = self.engine.poll_batch() {
            if let Some(c) = self.io.committer.as_ref() {
                c.send_batch(batch);
            }
        }
        if let Some(c) = self.io.committer.as_mut() {
            c.finish()?;
        }
        Ok(())
    }
}

impl Shell for Io {
    fn read(&mut self, engine: &mut Engine, id: ConnId, now: Instant) {
        self.on_readable(engine, id, now, true);
    }

    fn hash(&mut self, job: HashJob) -> Result<(), HashJob> {
        self.pool.submit(job).map_err(|PoolFull(job)| job)
    }

    /// Group commit (Redis's `beforeSleep`): the turn's changes go to the store thread as
    /// one batch, followed by a snapshot if the store asked for one.
    fn commit(&mut self, batch: EventBatch, engine: &Engine, now: Instant) {
        let Some(c) = self.committer.as_ref() else {
            self.durable_now = Some(batch.seq);
            return;
        };
        if let Some(p) = self.peers.as_mut() {
            p.sent(&batch);
        }
        c.send_batch(batch);
        if std::mem::take(&mut self.snapshot_wanted) {
            // Design: the state's events are built on the loop (O(users + sessions), once
            // per `snapshot_bytes` of journal) so that they match the batches exactly;
            // encoding, writing and syncing happen on the store thread.
            c.send_snapshot(engine.snapshot_events(now));
        }
    }

    /// Writes what the engine has for `id` (and what TLS has of its own) until it is gone
    /// or the socket is full; `WRITABLE` is registered while bytes are left. Once the
    /// engine is done with the connection and everything is out, the socket lingers.
    fn transmit(&mut self, id: ConnId, t: Transmit<'_>) {
        let Some(sock) = sock_in(&mut self.socks, id) else {
            return;
        };
        if sock.lingering {
            return;
        }
        let written = match sock.ws.as_deref_mut() {
            Some(ws) => ws::ws_write(
                &mut sock.stream,
                sock.tls.as_deref_mut(),
                ws,
                &mut self.ws_scratch,
                t.bytes,
                t.close,
            ),
            None => transport::write(&mut sock.stream, sock.tls.as_deref_mut(), t.bytes),
        };
        let pending = match written {
            Ok(p) => p,
            Err(e) => {
                debug!("write error conn={}: {e}", id.index);
                self.ended.push(id);
                return;
            }
        };
        if pending != sock.writable {
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let token = Token(id.to_u64() as usize);
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut sock.stream, token, interest)
            {
                debug!("reregister failed conn={}: {e}", id.index);
                self.ended.push(id);
                return;
            }
            sock.writable = pending;
        }
        if t.close && !pending {
            if let Some(tls) = sock.tls.as_deref_mut() {
                // close_notify, best effort: the FIN follows either way.
                tls.send_close_notify();
                let _ = transport::write(&mut sock.stream, Some(tls), None);
            }
            self.start_linger(id);
        }
    }
}

impl Io {
    /// Hands each readiness event to its owner: the listener, the signals, or a
    /// connection (the waker only ends the poll: see `drain_threads`).
    fn dispatch(&mut self, engine: &mut Engine, events: &Events, now: Instant) -> io::Result<()> {
        for ev in events.iter() {
            match ev.token() {
                LISTENER => self.accept_all(engine, now, Via::Main),
                PLAIN_LISTENER => self.accept_all(engine, now, Via::Plain),
                WS_LISTENER => self.accept_all(engine, now, Via::Ws),
                WAKER => {} // what it woke for is taken every turn: drain_threads
                SIGNALS => self.on_signals(),
                t if t == METRICS_LISTENER || http::owns(t) => self.on_metrics(engine, ev, now),
                token => {
                    let Some(id) = ConnId::from_u64(token.0 as u64) else {
                        continue;
                    };
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        // A FIN that came with the data is not a new edge later: read
                        // until end of file then, not just until a short read.
                        let to_eof = ev.is_read_closed() || ev.is_error();
                        self.on_readable(engine, id, now, to_eof);
                    }
                    if ev.is_writable() {
                        engine.handle_writable(id);
                    }
                }
            }
        }
        Ok(())
    }

    fn on_signals(&mut self) {
        let Some(s) = self.signals.as_mut() else {
            return;
        };
        let mut hup = false;
        for sig in s.pending() {
            if sig == signal_hook::consts::SIGHUP {
                hup = true;
            } else {
                info!("signal {sig}: shutting down gracefully");
                self.stop.store(true, Ordering::SeqCst);
            }
        }
        if hup {
            match &self.reloader {
                Some(r) => {
                    info!("SIGHUP: reloading the configuration");
                    self.notify.reloading();
                    self.reloads.start(r, &self.waker);
                }
                None => info!("SIGHUP: nothing to reload"),
            }
        }
    }

    /// A reload's settings, taken (SIGHUP): TLS for the connections accepted from now on,
    /// the engine's limits at once (the connection limit capped by the descriptors as at
    /// start), the log's filter; what changed is logged, and what only a restart changes.
    fn take_reload(&mut self, engine: &mut Engine) {
        let Some((result, again)) = self.reloads.try_recv() else {
            return;
        };
        match result {
            Err(e) => warn!("SIGHUP: reload failed, nothing changed: {e}"),
            Ok(r) => {
                let budget = fd_limit::Budget::new(r.engine.max_connections, fd_limit::raise());
                let cfg = EngineConfig {
                    iterations: r.iterations,
                    max_connections: budget.connections,
                    ..r.engine
                };
                engine.expect_hash_rate(self.pool.expected_rate(r.iterations));
                let mut done = engine.reconfigure(cfg);
                let mut restart = std::mem::take(&mut done.need_restart);
                restart.extend(r.restart_only);
                match (self.tls.is_some(), r.tls) {
                    (true, Some(tls)) => {
                        self.tls = Some(tls);
                        done.changed
                            .push("TLS certificate and key: reloaded".into());
                    }
                    (false, None) => {}
                    (false, Some(_)) | (true, None) => restart.push("TLS on or off".into()),
                }
                if r.ws_origins != self.ws_origins {
                    let old = std::mem::replace(&mut self.ws_origins, r.ws_origins);
                    done.changed
                        .push(format!("WebSocket origins: {old} -> {}", self.ws_origins));
                }
                if r.log_filter != self.log_filter {
                    crate::logging::set_filter(&r.log_filter);
                    let old = std::mem::replace(&mut self.log_filter, r.log_filter.clone());
                    done.changed
                        .push(format!("log filter: {old} -> {}", r.log_filter));
                }
                if done.changed.is_empty() {
                    info!("SIGHUP: reloaded, nothing changed");
                } else {
                    info!("SIGHUP: reloaded; {}", done.changed.join("; "));
                }
                if !restart.is_empty() {
                    warn!(
                        "SIGHUP: kept until a restart: {} (the running values stay)",
                        restart.join("; ")
                    );
                }
            }
        }
        if again {
            if let Some(r) = &self.reloader {
                self.reloads.start(r, &self.waker);
                return;
            }
        }
        let status = format!("listening on {}", self.local_addr);
        self.notify.ready(&status);
    }

    /// What the other threads have answered: hash results, then the store thread's news.
    fn drain_threads(&mut self, engine: &mut Engine, now: Instant) -> io::Result<()> {
        while let Some(result) = self.pool.try_recv() {
            let result = match self.peers.as_mut() {
                Some(p) => p.reserve(result),
                None => Some(result),
            };
            if let Some(result) = result {
                engine.handle_hash_result(result, now);
            }
        }
        if let Some(p) = self.peers.as_mut() {
            p.drain(engine, now);
        }
        self.take_reload(engine);
        self.drain_reports(engine)
    }

    /// The store thread's news: batches now durable (their replies are released), a
    /// snapshot wanted, or a failure, which stops the server.
    fn drain_reports(&mut self, engine: &mut Engine) -> io::Result<()> {
        let Some(c) = self.committer.as_ref() else {
            return Ok(());
        };
        while let Some(report) = c.try_report() {
            match report {
                Report::Durable {
                    seq,
                    journal_bytes,
                    position,
                    alone,
                } => {
                    let waits = self
                        .peers
                        .as_mut()
                        .is_some_and(|p| p.durable(seq, position, alone));
                    if !waits {
                        engine.handle_durable(seq, journal_bytes);
                    }
                }
                Report::WantsSnapshot => self.snapshot_wanted = true,
                Report::Storage { available } => engine.handle_storage(available),
                Report::Failed(e) => {
                    // Said once, by whoever runs the server (the binary prints it).
                    return Err(io::Error::new(
                        e.kind(),
                        format!("stopping: {e}; nothing after it was acknowledged"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Accepts until `WouldBlock` on the listener `via`.
    fn accept_all(&mut self, engine: &mut Engine, now: Instant, via: Via) {
        // Paused (out of descriptors), or shutting down: the listeners are left alone.
        if self.accept_paused.is_some() || self.stop.load(Ordering::SeqCst) {
            return;
        }
        let tls = self.tls.is_some() && via != Via::Plain;
        loop {
            if self.sockets_open >= self.socket_budget {
                // The rest of the descriptors are the server's own: the connections wait
                // in the kernel's queue until one closes.
                self.accept_full = true;
                return;
            }
            let listener = match via {
                Via::Main => &self.listener,
                Via::Plain => match &self.plain {
                    Some((l, _)) => l,
                    None => return,
                },
                Via::Ws => match &self.ws {
                    Some((l, _)) => l,
                    None => return,
                },
            };
            match listener.accept() {
                Ok((stream, peer)) => self.add_conn(engine, stream, peer, now, tls, via),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS...: the pending connections stay in the
                    // backlog. Retrying at once would spin (the listener stays readable);
                    // waiting for the next readiness event could stall (it is edge
                    // triggered). So accepting pauses briefly and resumes on a timer (both
                    // listeners), while the connections already open are served.
                    warn!(
                        "accept failed: {e}; pausing accepts for {} ms",
                        ACCEPT_PAUSE.as_millis()
                    );
                    self.accept_paused = Some(now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    fn add_conn(
        &mut self,
        engine: &mut Engine,
        mut stream: TcpStream,
        peer: SocketAddr,
        now: Instant,
        tls: bool,
        via: Via,
    ) {
        let tls = match (tls, self.tls.as_ref()) {
            (true, Some(cfg)) => match rustls::ServerConnection::new(cfg.clone()) {
                Ok(c) => Some(Box::new(c)),
                Err(e) => {
                    warn!("cannot start TLS for {peer}: {e}");
                    return;
                }
            },
            _ => None,
        };
        // Small request/response frames: do not let Nagle hold a reply back.
        if let Err(e) = stream.set_nodelay(true) {
            debug!("set_nodelay failed for {peer}: {e}");
        }
        let id = engine.handle_accept(peer, now);
        let token = Token(id.to_u64() as usize);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            warn!("cannot register {peer}: {e}");
            engine.handle_closed(id, now);
            return;
        }
        let idx = id.index as usize;
        if self.socks.len() <= idx {
            self.socks.resize_with(idx + 1, || None);
        }
        self.sockets_open += 1;
        self.socks[idx] = Some(Sock {
            stream,
            id,
            writable: false,
            lingering: false,
            tls,
            fresh: via != Via::Ws,
            ws: (via == Via::Ws).then(|| Box::new(WsConn::new())),
        });
    }

    fn sock_mut(&mut self, id: ConnId) -> Option<&mut Sock> {
        sock_in(&mut self.socks, id)
    }

    /// Reads until the socket is drained (a short read, or `WouldBlock`; until end of file
    /// when `to_eof`, i.e. the peer's FIN is already known) or until the engine stops
    /// taking input, handing each chunk to the engine as it arrives.
    fn on_readable(&mut self, engine: &mut Engine, id: ConnId, now: Instant, to_eof: bool) {
        let Some(sock) = self.sock_mut(id) else {
            return;
        };
        if sock.lingering {
            self.drain_lingering(engine, id, now);
            return;
        }
        while engine.wants_input(id) {
            let Some(sock) = self
                .socks
                .get_mut(id.index as usize)
                .and_then(|s| s.as_mut())
            else {
                return;
            };
            let is_tls = sock.tls.is_some();
            let first = std::mem::take(&mut sock.fresh);
            match transport::read(
                &mut sock.stream,
                sock.tls.as_deref_mut(),
                &mut self.read_buf,
                first,
            ) {
                ReadStep::Eof => {
                    if let Some(ws) = sock.ws.as_deref_mut() {
                        ws.peer_closed();
                    }
                    engine.handle_peer_closed(id, now);
                    return;
                }
                ReadStep::Data(n) => {
                    if sock.ws.is_some() {
                        if !self.ws_data(engine, id, n, now) {
                            return;
                        }
                    } else {
                        engine.handle_input(id, &self.read_buf[..n], now);
                    }
                    if !is_tls && !to_eof && n < self.read_buf.len() {
                        // A short read drained the socket's receive queue: the read that
                        // would only answer WouldBlock is skipped (one syscall less per
                        // request). Anything arriving later, a FIN included, is a new edge
                        // and comes back as a new readiness event.
                        return;
                    }
                }
                ReadStep::Progress => {
                    // TLS: handshake records to answer now, not after the turn.
                    if is_tls {
                        self.flush_tls(engine, id, now);
                    }
                }
                ReadStep::WouldBlock => {
                    if is_tls {
                        self.flush_tls(engine, id, now);
                    }
                    return;
                }
                ReadStep::Failed(e) => {
                    debug!("read error conn={}: {e}", id.index);
                    self.drop_conn(engine, id, now);
                    return;
                }
            }
        }
    }

    /// Writes the records TLS has of its own (a handshake) at once, not after the turn;
    /// the engine's output goes with the turn's transmits.
    fn flush_tls(&mut self, engine: &mut Engine, id: ConnId, now: Instant) {
        let Some(sock) = self.sock_mut(id) else {
            return;
        };
        match transport::write(&mut sock.stream, sock.tls.as_deref_mut(), None) {
            // Records left: WRITABLE is registered by the turn's transmit (the engine
            // flags the connection), or now if the engine has nothing for it.
            Ok(true) if !sock.writable => engine.handle_writable(id),
            Ok(_) => {}
            Err(e) => {
                debug!("write error conn={}: {e}", id.index);
                self.drop_conn(engine, id, now);
            }
        }
    }

    /// Everything is written: send FIN and wait (bounded) for the peer's, discarding what it
    /// still sends, so the last frame is not lost to a reset. (During the turn: the
    /// socket's end is reported to the engine after it.)
    fn start_linger(&mut self, id: ConnId) {
        let deadline = now() + self.linger;
        let Some(sock) = sock_in(&mut self.socks, id) else {
            return;
        };
        if sock.stream.shutdown(Shutdown::Write).is_err() {
            self.ended.push(id);
            return;
        }
        sock.lingering = true;
        let done = drain(&mut sock.stream);
        self.lingering.push_back((deadline, id));
        self.lingering_open += 1;
        if done {
            self.ended.push(id);
        } else if self.lingering_open > self.max_lingering {
            self.cut_oldest_lingering(id);
        }
    }

    /// Too many sockets linger: the oldest (not `keep`) is closed now, after the turn.
    fn cut_oldest_lingering(&mut self, keep: ConnId) {
        while let Some((_, id)) = self.lingering.pop_front() {
            if id == keep {
                self.lingering.push_back((now() + self.linger, id));
                continue;
            }
            if let Some(s) = sock_in(&mut self.socks, id).filter(|s| s.lingering) {
                s.lingering = false;
                self.lingering_open -= 1;
                self.ended.push(id);
                return;
            }
        }
    }

    fn drain_lingering(&mut self, engine: &mut Engine, id: ConnId, now: Instant) {
        let Some(sock) = self.sock_mut(id) else {
            return;
        };
        if drain(&mut sock.stream) {
            self.drop_conn(engine, id, now);
        }
    }

    fn expire_lingering(&mut self, engine: &mut Engine, now: Instant) {
        while let Some(&(deadline, id)) = self.lingering.front() {
            if deadline > now {
                return;
            }
            self.lingering.pop_front();
            // A stale entry (already closed, slot reused) fails the generation check.
            if self.sock_mut(id).is_some_and(|s| s.lingering) {
                self.drop_conn(engine, id, now);
            }
        }
    }

    /// Closes the socket and tells the engine the connection is gone.
    fn drop_conn(&mut self, engine: &mut Engine, id: ConnId, now: Instant) {
        if let Some(slot) = self.socks.get_mut(id.index as usize) {
            if slot.as_ref().is_some_and(|s| s.id == id) {
                if let Some(mut sock) = slot.take() {
                    let _ = self.poll.registry().deregister(&mut sock.stream);
                    self.sockets_open -= 1;
                    if sock.lingering {
                        self.lingering_open -= 1;
                    }
                    if std::mem::take(&mut self.accept_full) {
                        self.accept_resume = true;
                    }
                }
            }
        }
        engine.handle_closed(id, now);
    }
}

/// The socket of `id`, if it is still open (a borrow of the table alone).
fn sock_in(socks: &mut [Option<Sock>], id: ConnId) -> Option<&mut Sock> {
    socks
        .get_mut(id.index as usize)
        .and_then(|s| s.as_mut())
        .filter(|s| s.id == id)
}

/// Reads and discards what a lingering socket still gets (a protocol or a metrics
/// connection's); true once it is done (the peer's FIN, or an error), false while it may
/// send more.
pub(super) fn drain(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}
