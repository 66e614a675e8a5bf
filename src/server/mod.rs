//! The only module that knows mio: one `Poll`, the listener, the client sockets, the hash
//! pool's waker, and the loop that moves bytes between sockets and the [`Engine`].
//!
//! Owns sockets and readiness. Every protocol decision is the engine's; this module reads
//! until `WouldBlock`, hands the bytes over, writes what the engine queued, registers
//! `WRITABLE` only while output is pending, and sleeps until the wheel's next deadline.
//!
//! Loop rules (mio's `tcp_server` example): drain accepts, reads and writes until
//! `WouldBlock`; `Ok(0)` from read is the peer closing; retry `Interrupted`; ignore events
//! whose token names a closed connection (the token carries the slot's generation).

mod committer;
mod hash_pool;
mod transport;

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, error, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::auth::PasswordRecord;
use crate::conn::ConnId;
use crate::engine::replay::State;
use crate::engine::{Engine, EngineConfig, Stats};
use crate::session::UserTable;
use crate::store::Store;
use committer::{Committer, Report};
use hash_pool::{HashPool, PoolFull};
use transport::ReadStep;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("sessiond packs (generation, index) into a mio Token and needs 64-bit usize");

const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
/// The optional plain listener beside a TLS one (loopback only).
const PLAIN_LISTENER: Token = Token(usize::MAX - 3);
/// How long accepting pauses after the process ran out of file descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Bytes read per `read` call, into one buffer shared by all connections.
const READ_CHUNK: usize = 16 * 1024;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
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
}

/// A bound server, ready to `run`.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    plain: Option<(TcpListener, SocketAddr)>,
    engine: Engine,
    socks: Vec<Option<Sock>>,
    pool: HashPool,
    /// The store thread making each turn's events durable; replies that depend on them
    /// wait for it. None keeps everything in memory (tests, tools).
    committer: Option<Committer>,
    /// The store asked for a snapshot; sent after this turn's batch.
    snapshot_wanted: bool,
    /// Connections whose socket became writable this turn.
    writable: Vec<ConnId>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    linger: Duration,
    /// Lingering sockets by deadline. The linger time is constant, so deadlines are pushed
    /// in order and a queue is a complete timer for them.
    lingering: VecDeque<(Instant, ConnId)>,
    /// Accepting is paused until then (the process ran out of file descriptors).
    accept_paused: Option<Instant>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
    shutdown_grace: Duration,
    read_buf: Box<[u8]>,
    scratch: Vec<ConnId>,
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
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(cfg.listen)?;
        let local_addr = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
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
            Some(addr) => {
                let mut l = TcpListener::bind(addr)?;
                let a = l.local_addr()?;
                poll.registry()
                    .register(&mut l, PLAIN_LISTENER, Interest::READABLE)?;
                Some((l, a))
            }
            None => None,
        };
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let pool = HashPool::new(cfg.hash_workers, cfg.hash_queue, waker.clone())?;
        let dummy = PasswordRecord::dummy(cfg.iterations)?;
        let now = Instant::now();
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        // One iteration count for every record the server makes (ServerConfig's).
        let engine_cfg = EngineConfig {
            iterations: cfg.iterations,
            ..cfg.engine.clone()
        };
        let mut engine = Engine::new(engine_cfg, state.users, dummy, now, unix_ms);
        for (sid, ended) in state.ended {
            engine.restore_ended(sid, ended, now);
        }
        engine.restore_audit(state.audit);
        for (_, s) in state.sessions {
            engine.restore_session(s, now);
        }
        let signals = if cfg.handle_signals {
            let mut s = signal_hook_mio::v1_0::Signals::new([
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGINT,
            ])?;
            poll.registry()
                .register(&mut s, SIGNALS, Interest::READABLE)?;
            Some(s)
        } else {
            None
        };
        let committer = match store {
            Some(store) => Some(Committer::start(store, waker.clone())?),
            None => None,
        };
        Ok(Server {
            poll,
            listener,
            local_addr,
            tls: cfg.tls.clone(),
            plain,
            engine,
            socks: Vec::with_capacity(cfg.engine.reserved_connections()),
            pool,
            committer,
            snapshot_wanted: false,
            writable: Vec::new(),
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            linger: cfg.linger,
            lingering: VecDeque::new(),
            accept_paused: None,
            signals,
            shutdown_grace: cfg.shutdown_grace,
            read_buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
            scratch: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The plain loopback listener's address, when there is one.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().map(|(_, a)| *a)
    }

    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            stop: self.stop.clone(),
            waker: self.waker.clone(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// Runs until [`ServerHandle::shutdown`]. Returns an error only if polling itself
    /// fails; a failing connection is closed and the loop goes on.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        info!("listening on {}", self.local_addr);
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = self.poll_timeout(Instant::now());
            self.iterate(&mut events, timeout)?;
        }
        self.shut_down()?;
        info!("server stopped");
        Ok(())
    }

    /// One loop iteration: wait for readiness (at most `timeout`), handle it, then the
    /// turn's deferred work, commit and writes.
    fn iterate(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        match self.poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        self.dispatch(events, now)?;
        self.turn(now)
    }

    /// Hands each readiness event to its owner: the listener, the waker (hash results and
    /// the store thread's reports), the signals, or a connection.
    fn dispatch(&mut self, events: &Events, now: Instant) -> io::Result<()> {
        for ev in events.iter() {
            match ev.token() {
                LISTENER => self.accept_all(now, false),
                PLAIN_LISTENER => self.accept_all(now, true),
                WAKER => {
                    self.drain_results(now);
                    self.drain_reports()?;
                }
                SIGNALS => self.on_signals(),
                token => {
                    let Some(id) = ConnId::from_u64(token.0 as u64) else {
                        continue;
                    };
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        // A FIN that came with the data is not a new edge later: read
                        // until end of file then, not just until a short read.
                        let to_eof = ev.is_read_closed() || ev.is_error();
                        self.on_readable(id, now, to_eof);
                    }
                    if ev.is_writable() {
                        self.writable.push(id);
                    }
                }
            }
        }
        Ok(())
    }

    fn on_signals(&mut self) {
        if let Some(s) = self.signals.as_mut() {
            for sig in s.pending() {
                info!("signal {sig}: shutting down gracefully");
                self.stop.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Graceful shutdown: stop accepting; tell every connection (SERVER_SHUTDOWN, then
    /// DISCONNECT_ACK) once the sessions' last state is durable; give them
    /// `shutdown_grace` to read it; make the journal durable; return.
    fn shut_down(&mut self) -> io::Result<()> {
        let _ = self.poll.registry().deregister(&mut self.listener);
        let start = Instant::now();
        let open = self.socks.iter().flatten().count();
        info!("shutting down: telling {open} connection(s)");
        self.engine.shutdown(start);
        self.turn(start)?;
        let deadline = start + self.shutdown_grace;
        let mut events = Events::with_capacity(1024);
        while self.socks.iter().any(Option::is_some) {
            let now = Instant::now();
            if now >= deadline {
                let left = self.socks.iter().flatten().count();
                warn!("shutdown grace over: closing {left} connection(s) that did not finish");
                break;
            }
            let left = deadline - now;
            let timeout = self.poll_timeout(now).map_or(left, |t| t.min(left));
            self.iterate(&mut events, Some(timeout))?;
        }
        // Whatever the last turn recorded is durable before the server returns.
        self.send_batch();
        if let Some(c) = self.committer.as_mut() {
            c.finish()?;
        }
        Ok(())
    }

    /// The part of an iteration after readiness events: deferred work, timers, hash jobs,
    /// and writing everything queued.
    fn turn(&mut self, now: Instant) -> io::Result<()> {
        self.engine.take_wakeups(&mut self.scratch);
        let mut ids = std::mem::take(&mut self.scratch);
        for id in ids.drain(..) {
            self.on_readable(id, now, true);
        }
        self.scratch = ids;
        self.engine.on_timers(now);
        self.expire_lingering(now);
        if self.accept_paused.is_some_and(|t| t <= now) {
            self.accept_paused = None;
            self.accept_all(now, false);
            self.accept_all(now, true);
        }
        for job in self.engine.take_hash_jobs() {
            if let Err(PoolFull(job)) = self.pool.submit(job) {
                self.engine.hash_rejected(job, now);
            }
        }
        // Group commit (Redis's beforeSleep): this turn's changes go to the store thread
        // as one batch; the replies that depend on them stay held until it is durable.
        self.send_batch();
        self.engine.take_flagged(&mut self.scratch);
        self.scratch.append(&mut self.writable);
        let mut ids = std::mem::take(&mut self.scratch);
        for id in ids.drain(..) {
            self.flush(id);
        }
        self.scratch = ids;
        crate::engine::trim(&mut self.scratch);
        crate::engine::trim(&mut self.writable);
        self.engine.trim_scratch();
        Ok(())
    }

    /// Hands this turn's events to the store thread (or, in memory, marks them durable
    /// at once), followed by a snapshot if the store asked for one.
    fn send_batch(&mut self) {
        let Some(batch) = self.engine.take_batch() else {
            return;
        };
        let Some(c) = self.committer.as_ref() else {
            self.engine.durable(batch.seq);
            return;
        };
        c.send_batch(batch);
        if std::mem::take(&mut self.snapshot_wanted) {
            // Design: the state's events are built on the loop (O(users + sessions), once
            // per `snapshot_bytes` of journal) so that they match the batches exactly;
            // encoding, writing and syncing happen on the store thread.
            c.send_snapshot(self.engine.snapshot_events(Instant::now()));
        }
    }

    /// The store thread's news: batches now durable (their replies are released), a
    /// snapshot wanted, or a failure, which stops the server.
    fn drain_reports(&mut self) -> io::Result<()> {
        let Some(c) = self.committer.as_ref() else {
            return Ok(());
        };
        while let Some(report) = c.try_report() {
            match report {
                Report::Durable { seq, journal_bytes } => {
                    self.engine.note_journal_bytes(journal_bytes);
                    self.engine.durable(seq);
                }
                Report::WantsSnapshot => self.snapshot_wanted = true,
                Report::Failed(e) => {
                    error!("stopping: the journal failed ({e}); nothing after it is acknowledged");
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if self.engine.has_wakeups() {
            return Some(Duration::ZERO);
        }
        let wheel = self.engine.next_deadline();
        let linger = self.lingering.front().map(|(d, _)| *d);
        let next = [wheel, linger, self.accept_paused]
            .into_iter()
            .flatten()
            .min();
        next.map(|d| d.saturating_duration_since(now))
    }

    /// Accepts until `WouldBlock` on the main listener (TLS if configured) or, with
    /// `plain`, on the plain loopback one.
    fn accept_all(&mut self, now: Instant, plain: bool) {
        // Paused (out of descriptors), or shutting down: the listeners are left alone.
        if self.accept_paused.is_some() || self.stop.load(Ordering::SeqCst) {
            return;
        }
        let tls = self.tls.is_some() && !plain;
        loop {
            let listener = match (&self.plain, plain) {
                (Some((l, _)), true) => l,
                (None, true) => return,
                (_, false) => &self.listener,
            };
            match listener.accept() {
                Ok((stream, peer)) => self.add_conn(stream, peer, now, tls),
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

    fn add_conn(&mut self, mut stream: TcpStream, peer: SocketAddr, now: Instant, tls: bool) {
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
        let id = self.engine.accept(peer, now);
        let token = Token(id.to_u64() as usize);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            warn!("cannot register {peer}: {e}");
            self.engine.remove(id);
            return;
        }
        let idx = id.index as usize;
        if self.socks.len() <= idx {
            self.socks.resize_with(idx + 1, || None);
        }
        self.socks[idx] = Some(Sock {
            stream,
            id,
            writable: false,
            lingering: false,
            tls,
        });
    }

    fn sock_mut(&mut self, id: ConnId) -> Option<&mut Sock> {
        self.socks
            .get_mut(id.index as usize)
            .and_then(|s| s.as_mut())
            .filter(|s| s.id == id)
    }

    /// Reads until the socket is drained (a short read, or `WouldBlock`; until end of file
    /// when `to_eof`, i.e. the peer's FIN is already known) or until the engine stops
    /// taking input, handing each chunk to the engine as it arrives.
    fn on_readable(&mut self, id: ConnId, now: Instant, to_eof: bool) {
        let Some(sock) = self.sock_mut(id) else {
            return;
        };
        if sock.lingering {
            self.drain_lingering(id);
            return;
        }
        loop {
            if !self.engine.wants_input(id) {
                // Still process what is buffered (the state may allow frames again).
                self.engine.process(id, now);
                return;
            }
            let Some(sock) = self
                .socks
                .get_mut(id.index as usize)
                .and_then(|s| s.as_mut())
            else {
                return;
            };
            let is_tls = sock.tls.is_some();
            match transport::read(
                &mut sock.stream,
                sock.tls.as_deref_mut(),
                &mut self.read_buf,
            ) {
                ReadStep::Eof => {
                    self.engine.peer_closed(id, now);
                    return;
                }
                ReadStep::Data(n) => {
                    if let Some(input) = self.engine.input_mut(id) {
                        input.extend_from_slice(&self.read_buf[..n]);
                    }
                    self.engine.process(id, now);
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
                        self.flush(id);
                    }
                }
                ReadStep::WouldBlock => {
                    self.engine.process(id, now);
                    if is_tls {
                        self.flush(id);
                    }
                    return;
                }
                ReadStep::Failed(e) => {
                    debug!("read error conn={}: {e}", id.index);
                    self.drop_conn(id);
                    return;
                }
            }
        }
    }

    /// Writes queued output until it is gone or the socket is full.
    fn flush(&mut self, id: ConnId) {
        let Some(sock) = self
            .socks
            .get_mut(id.index as usize)
            .and_then(|s| s.as_mut())
            .filter(|s| s.id == id)
        else {
            return;
        };
        if sock.lingering {
            return;
        }
        // A held reply waits for the journal (`Engine::durable` flags it again); TLS may
        // still have records of its own to send meanwhile.
        let held = self.engine.is_held(id);
        if held && sock.tls.is_none() {
            return;
        }
        let out = if held {
            None
        } else {
            self.engine.output_mut(id)
        };
        let pending = match transport::write(&mut sock.stream, sock.tls.as_deref_mut(), out) {
            Ok(p) => p,
            Err(e) => {
                debug!("write error conn={}: {e}", id.index);
                self.drop_conn(id);
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
                self.drop_conn(id);
                return;
            }
            sock.writable = pending;
        }
        if !pending && !held {
            self.engine.release_buffers(id);
        }
        if !pending && !held && self.engine.ready_to_close(id) {
            if let Some(tls) = sock.tls.as_deref_mut() {
                // close_notify, best effort: the FIN follows either way.
                tls.send_close_notify();
                let _ = transport::write(&mut sock.stream, Some(tls), None);
            }
            self.start_linger(id);
        }
    }

    /// Everything is written: send FIN and wait (bounded) for the peer's, discarding what it
    /// still sends, so the last frame is not lost to a reset.
    fn start_linger(&mut self, id: ConnId) {
        let deadline = Instant::now() + self.linger;
        let Some(sock) = self.sock_mut(id) else {
            return;
        };
        if sock.stream.shutdown(Shutdown::Write).is_err() {
            self.drop_conn(id);
            return;
        }
        sock.lingering = true;
        self.lingering.push_back((deadline, id));
        self.drain_lingering(id);
    }

    fn drain_lingering(&mut self, id: ConnId) {
        let Some(sock) = self.sock_mut(id) else {
            return;
        };
        let mut sink = [0u8; 4096];
        loop {
            match sock.stream.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        self.drop_conn(id);
    }

    fn expire_lingering(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.lingering.front() {
            if deadline > now {
                return;
            }
            self.lingering.pop_front();
            // A stale entry (already closed, slot reused) fails the generation check.
            if self.sock_mut(id).is_some_and(|s| s.lingering) {
                self.drop_conn(id);
            }
        }
    }

    /// Closes the socket and frees the connection.
    fn drop_conn(&mut self, id: ConnId) {
        if let Some(slot) = self.socks.get_mut(id.index as usize) {
            if slot.as_ref().is_some_and(|s| s.id == id) {
                if let Some(mut sock) = slot.take() {
                    let _ = self.poll.registry().deregister(&mut sock.stream);
                }
            }
        }
        self.engine.remove(id);
    }

    /// The waker fired: hash results.
    fn drain_results(&mut self, now: Instant) {
        while let Some(result) = self.pool.try_recv() {
            self.engine.on_hash_result(result, now);
        }
    }
}
