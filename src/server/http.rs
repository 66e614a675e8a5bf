//! The metrics listener's HTTP/1.1: `GET /metrics`, `/healthz` and `/readyz`, one request
//! per connection, served on the loop without blocking it.
//!
//! Owns the listener, its connections (at most [`MAX_CONNS`]; beyond, a new one is closed
//! at once), their one deadline each, and the request and response bytes. A request head
//! is parsed with httparse and bounded ([`MAX_HEAD`]: beyond it, 400); `/healthz` is
//! answered here (the loop answering is the health), `/metrics` and `/readyz` by the shell
//! ([`Ask`], `metrics`). Anything else: 404, and 405 for a method other than GET or HEAD.
//! Every response says `Connection: close`. Does not own what the endpoints say.
//!
//! One connection, from accept to close:
//!
//! ```text
//!   accept ──> Reading ──(head complete)──> Writing ──(all written: FIN)──> Draining
//!                 │  (too long, malformed: 400)──^                              │
//!                 │                                                             │
//!                 └──(peer's FIN, error)──> closed <──(peer's FIN, error)───────┘
//!   and from any state, the deadline (DEADLINE after accept) ──> closed
//! ```
//!
//! Draining reads and drops what the peer still sends until its FIN, so that closing
//! does not turn into a reset that could destroy the response in flight.
//!
//! Design: a fixed deadline from accept bounds everything a peer can hold, whether it
//! sends nothing, half a head, or does not read: the queue of deadlines is in order
//! (constant delay), so a `VecDeque` is its timer, as for the lingering protocol sockets.
//! The cap on connections is small because they come out of the descriptors the server
//! keeps for itself (`fd_limit`: 32 to 64), not the clients' budget; a scraper needs one.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::drain;

/// Metrics connections open at once; beyond, a new one is closed at once.
pub(super) const MAX_CONNS: usize = 16;

/// The longest request head taken (request line and headers), in bytes.
pub(super) const MAX_HEAD: usize = 8 * 1024;

/// Headers a request may have.
const MAX_HEADERS: usize = 32;

/// How long a metrics connection may stay open, from accept to close.
pub(super) const DEADLINE: Duration = Duration::from_secs(2);

/// The tokens of metrics connections: bit 31 set, the slot in bits 0-7 and a generation
/// in bits 8-30 (stale events fail it), the upper half clear: a protocol connection's
/// token has its generation (at least 1) there (`ConnId::to_u64`), so none is one of these.
const TAG: usize = 1 << 31;
const SLOT_BITS: u32 = 8;
const GENERATIONS: u32 = 1 << (31 - SLOT_BITS);
const _: () = assert!(MAX_CONNS <= 1 << SLOT_BITS, "every slot has a token");

/// Whether `t` is a metrics connection's token.
pub(super) fn owns(t: Token) -> bool {
    t.0 >> 31 == 1
}

/// What a request asks the shell for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    /// `/metrics`: the exposition.
    Metrics,
    /// `/readyz`: 200, or 503 with the reason.
    Ready,
}

/// A request the shell is to answer ([`MetricsServer::respond`]).
#[derive(Debug)]
pub(super) struct Pending {
    token: Token,
    /// HEAD: the same status and headers, no body.
    head_only: bool,
    pub ask: Ask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Unavailable,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::Unavailable => "503 Service Unavailable",
        }
    }
}

/// A response: its status, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reply {
    status: Status,
    content_type: &'static str,
    body: String,
}

pub(super) const TEXT: &str = "text/plain; charset=utf-8";

impl Reply {
    fn text(status: Status, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: TEXT,
            body: body.into(),
        }
    }

    /// 200 with a line of text.
    pub(super) fn ok(body: impl Into<String>) -> Reply {
        Reply::text(Status::Ok, body)
    }

    /// 503 with the reason.
    pub(super) fn unavailable(body: impl Into<String>) -> Reply {
        Reply::text(Status::Unavailable, body)
    }

    /// 200 with a Prometheus text exposition.
    pub(super) fn metrics(body: String) -> Reply {
        Reply {
            status: Status::Ok,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body,
        }
    }

    /// The response's bytes (without the body for HEAD).
    fn encode(&self, head_only: bool) -> Vec<u8> {
        let allow = if self.status == Status::MethodNotAllowed {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let mut out = closing_head(
            self.status.line(),
            allow,
            self.content_type,
            self.body.len(),
        )
        .into_bytes();
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// The head of a response after which the connection closes: the status line, `extra`
/// headers (each ending in CRLF), the body's type and length. The metrics listener's and
/// the WebSocket upgrade's refusals both answer this way.
pub(super) fn closing_head(status: &str, extra: &str, content_type: &str, length: usize) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

/// What a request head says, once parsed.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// More bytes are needed (httparse's `Status::Partial`, within [`MAX_HEAD`]).
    Partial,
    /// The shell answers (GET or HEAD of `/metrics`, `/readyz`).
    Ask { ask: Ask, head_only: bool },
    /// Answered here.
    Reply { reply: Reply, head_only: bool },
}

/// Reads what `head` (the bytes received so far) asks for.
fn parse(head: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let bad = |why: &str| Parsed::Reply {
        reply: Reply::text(Status::BadRequest, format!("bad request: {why}\n")),
        head_only: false,
    };
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        // Incomplete input is no error, up to the bound.
        Ok(httparse::Status::Partial) if head.len() < MAX_HEAD => return Parsed::Partial,
        Ok(httparse::Status::Partial) => return bad("request head too long"),
        Err(e) => return bad(&e.to_string()),
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return bad("no request line");
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let head_only = method == "HEAD";
    let known = match path {
        "/metrics" => Some(Some(Ask::Metrics)),
        "/readyz" => Some(Some(Ask::Ready)),
        "/healthz" => Some(None),
        _ => None,
    };
    let reply = |status, body: &str| Parsed::Reply {
        reply: Reply::text(status, body),
        head_only,
    };
    match known {
        None => reply(Status::NotFound, "not found\n"),
        Some(_) if method != "GET" && !head_only => Parsed::Reply {
            reply: Reply::text(Status::MethodNotAllowed, "method not allowed\n"),
            head_only: false,
        },
        Some(Some(ask)) => Parsed::Ask { ask, head_only },
        // the loop answered: it runs
        Some(None) => reply(Status::Ok, "ok\n"),
    }
}

/// Where a connection is (the diagram in the module docs).
enum State {
    /// The head so far.
    Reading(Vec<u8>),
    /// The response, and how much of it is written.
    Writing { out: Vec<u8>, at: usize },
    /// Written and FIN sent; what the peer still sends is dropped.
    Draining,
}

struct Conn {
    stream: TcpStream,
    token: Token,
    state: State,
    /// WRITABLE interest is registered (only while a response waits for room).
    writable: bool,
}

/// The metrics listener and its connections.
pub(super) struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
    started: Instant,
    conns: Vec<Option<Conn>>,
    open: usize,
    next_generation: u32,
    /// Each connection's deadline, in order (the delay is constant).
    deadlines: VecDeque<(Instant, Token)>,
}

impl MetricsServer {
    /// Serves on `listener`, registered with `token`; `started` is the server's start. A
    /// listener off loopback is logged as a warning: the endpoints are unauthenticated.
    pub(super) fn start(
        listener: std::net::TcpListener,
        registry: &Registry,
        token: Token,
        started: Instant,
    ) -> io::Result<MetricsServer> {
        let mut listener = TcpListener::from_std(listener);
        registry.register(&mut listener, token, Interest::READABLE)?;
        let addr = listener.local_addr()?;
        if addr.ip().is_loopback() {
            info!("metrics on http://{addr}/metrics (and /healthz, /readyz)");
        } else {
            warn!(
                "metrics on {addr}, not a loopback address: /metrics, /healthz and /readyz \
                 answer anyone who can reach it (no authentication)"
            );
        }
        Ok(MetricsServer::new(listener, addr, started))
    }

    fn new(listener: TcpListener, addr: SocketAddr, started: Instant) -> MetricsServer {
        MetricsServer {
            addr,
            listener,
            started,
            conns: (0..MAX_CONNS).map(|_| None).collect(),
            open: 0,
            next_generation: 1,
            deadlines: VecDeque::new(),
        }
    }

    /// The address it listens on (the port chosen, for port 0).
    pub(super) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// When the server started.
    pub(super) fn started(&self) -> Instant {
        self.started
    }

    /// The earliest deadline of a connection, if any is waiting.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.front().map(|(d, _)| *d)
    }

    /// Accepts until `WouldBlock`.
    pub(super) fn accept_all(&mut self, registry: &Registry, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.add(registry, stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, say: what waits is taken at the next connection's
                    // edge (the scraper comes back); the protocol listener has its own pause.
                    debug!("metrics accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn add(&mut self, registry: &Registry, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        let Some(slot) = self.conns.iter().position(Option::is_none) else {
            debug!("metrics connection from {peer} closed: {MAX_CONNS} already open");
            return; // dropped: closed at once
        };
        let generation = self.next_generation;
        self.next_generation = (generation + 1) % GENERATIONS;
        let token = Token(TAG | (generation as usize) << SLOT_BITS | slot);
        if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
            debug!("cannot register metrics connection from {peer}: {e}");
            return;
        }
        self.conns[slot] = Some(Conn {
            stream,
            token,
            state: State::Reading(Vec::new()),
            writable: false,
        });
        self.open += 1;
        self.deadlines.push_back((now + DEADLINE, token));
    }

    /// Handles a readiness event of connection `ev.token()`; a complete request the
    /// shell is to answer comes back, for [`respond`](Self::respond).
    pub(super) fn on_event(&mut self, registry: &Registry, ev: &Event) -> Option<Pending> {
        let token = ev.token();
        let conn = self.conn_mut(token)?;
        let step = match &mut conn.state {
            State::Reading(head) => read_head(&mut conn.stream, head),
            State::Writing { .. } if ev.is_writable() => Step::Write,
            State::Writing { .. } => Step::Wait,
            State::Draining => match drain(&mut conn.stream) {
                true => Step::Close,
                false => Step::Wait,
            },
        };
        match step {
            Step::Wait => None,
            Step::Close => {
                self.close(registry, token);
                None
            }
            Step::Parsed(Parsed::Partial) => None,
            Step::Parsed(Parsed::Ask { ask, head_only }) => Some(Pending {
                token,
                head_only,
                ask,
            }),
            Step::Parsed(Parsed::Reply { reply, head_only }) => {
                self.start_reply(registry, token, &reply, head_only);
                None
            }
            Step::Write => {
                self.write(registry, token);
                None
            }
        }
    }

    /// Answers the request `p` with `reply`.
    pub(super) fn respond(&mut self, registry: &Registry, p: Pending, reply: &Reply) {
        self.start_reply(registry, p.token, reply, p.head_only);
    }

    /// Closes the connections whose deadline has come.
    pub(super) fn expire(&mut self, registry: &Registry, now: Instant) {
        while let Some(&(deadline, token)) = self.deadlines.front() {
            if deadline > now {
                return;
            }
            self.deadlines.pop_front();
            // A stale entry (already closed, slot reused) fails the generation check.
            if self.conn_mut(token).is_some() {
                debug!("metrics connection closed at its deadline");
                self.close(registry, token);
            }
        }
    }

    fn start_reply(&mut self, registry: &Registry, token: Token, reply: &Reply, head_only: bool) {
        let Some(conn) = self.conn_mut(token) else {
            return;
        };
        conn.state = State::Writing {
            out: reply.encode(head_only),
            at: 0,
        };
        self.write(registry, token);
    }

    /// Writes what is left of the response until it is out (then FIN, and Draining) or
    /// the socket is full (then WRITABLE is registered).
    fn write(&mut self, registry: &Registry, token: Token) {
        let Some(conn) = self.conn_mut(token) else {
            return;
        };
        let State::Writing { out, at } = &mut conn.state else {
            return;
        };
        let outcome = loop {
            if *at == out.len() {
                break Ok(true);
            }
            match conn.stream.write(&out[*at..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => *at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
        };
        let done = match outcome {
            Ok(done) => done,
            Err(e) => {
                debug!("metrics write failed: {e}");
                self.close(registry, token);
                return;
            }
        };
        // WRITABLE registered while output waits, and only then
        if done == conn.writable {
            let interest = if done {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            if registry
                .reregister(&mut conn.stream, token, interest)
                .is_err()
            {
                self.close(registry, token);
                return;
            }
            conn.writable = !done;
        }
        if done {
            conn.state = State::Draining;
            if conn.stream.shutdown(Shutdown::Write).is_err() || drain(&mut conn.stream) {
                self.close(registry, token);
            }
        }
    }

    fn conn_mut(&mut self, token: Token) -> Option<&mut Conn> {
        let slot = token.0 & ((1 << SLOT_BITS) - 1);
        self.conns
            .get_mut(slot)
            .and_then(Option::as_mut)
            .filter(|c| c.token == token)
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        let slot = token.0 & ((1 << SLOT_BITS) - 1);
        if let Some(c) = self.conns.get_mut(slot) {
            if c.as_ref().is_some_and(|c| c.token == token) {
                if let Some(mut c) = c.take() {
                    let _ = registry.deregister(&mut c.stream);
                    self.open -= 1;
                }
            }
        }
    }

    /// Metrics connections open.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open
    }
}

/// What to do with a connection after its event.
enum Step {
    Wait,
    Close,
    Parsed(Parsed),
    Write,
}

/// Reads into `head` until `WouldBlock`, the head is complete, or it passes the bound.
fn read_head(stream: &mut TcpStream, head: &mut Vec<u8>) -> Step {
    let mut chunk = [0u8; 2048];
    loop {
        // at most one byte past the bound: enough to know it is passed
        let room = (MAX_HEAD + 1 - head.len()).min(chunk.len());
        match stream.read(&mut chunk[..room]) {
            // the peer closed before a whole request: nothing to answer
            Ok(0) => return Step::Close,
            Ok(n) => {
                head.extend_from_slice(&chunk[..n]);
                match parse(head) {
                    Parsed::Partial => continue,
                    done => return Step::Parsed(done),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Step::Close,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(p: Parsed) -> (Status, bool) {
        match p {
            Parsed::Reply { reply, head_only } => (reply.status, head_only),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routes_and_methods() {
        let ask = |ask, head_only| Parsed::Ask { ask, head_only };
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            ask(Ask::Metrics, false)
        );
        assert_eq!(
            parse(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            ask(Ask::Metrics, true)
        );
        assert_eq!(
            parse(b"GET /readyz HTTP/1.1\r\n\r\n"),
            ask(Ask::Ready, false)
        );
        assert_eq!(
            status(parse(b"GET /healthz HTTP/1.1\r\n\r\n")),
            (Status::Ok, false)
        );
        assert_eq!(
            status(parse(b"GET / HTTP/1.1\r\n\r\n")),
            (Status::NotFound, false)
        );
        assert_eq!(
            status(parse(b"DELETE /x HTTP/1.1\r\n\r\n")),
            (Status::NotFound, false)
        );
        let post = parse(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(status(post), (Status::MethodNotAllowed, false));
    }

    #[test]
    fn incomplete_heads_wait_and_bad_or_long_ones_are_400() {
        assert_eq!(parse(b""), Parsed::Partial);
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"),
            Parsed::Partial
        );
        assert_eq!(
            status(parse(b"GET /metrics JUNK\r\n\r\n")).0,
            Status::BadRequest
        );
        assert_eq!(
            status(parse(b"\x00\x01\x02 / HTTP/1.1\r\n\r\n")).0,
            Status::BadRequest
        );
        let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(status(parse(&long)).0, Status::BadRequest);
        long.truncate(MAX_HEAD - 1);
        assert_eq!(parse(&long), Parsed::Partial, "within the bound: wait");
        let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            status(parse(&many)).0,
            Status::BadRequest,
            "too many headers"
        );
    }

    #[test]
    fn responses_say_their_length_and_close_and_head_has_no_body() {
        let r = Reply::ok("ok\n");
        let full = String::from_utf8(r.encode(false)).unwrap();
        assert_eq!(
            full,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\
             Connection: close\r\n\r\nok\n"
        );
        let head = String::from_utf8(r.encode(true)).unwrap();
        assert!(head.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n"));
        let r = Reply::text(Status::MethodNotAllowed, "no\n").encode(false);
        assert!(String::from_utf8(r)
            .unwrap()
            .contains("\r\nAllow: GET, HEAD\r\n"));
    }

    #[test]
    fn tokens_never_name_a_protocol_connection() {
        let t = Token(TAG | ((GENERATIONS - 1) as usize) << SLOT_BITS | (MAX_CONNS - 1));
        assert!(owns(t));
        assert!(crate::conn::ConnId::from_u64(t.0 as u64).is_none());
        assert!(!owns(Token(usize::MAX)) && !owns(Token(1 << 32 | 5)));
    }

    /// A listener on loopback, its poll, and the server over it (real time).
    fn serve() -> (mio::Poll, MetricsServer, Instant) {
        let poll = mio::Poll::new().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        #[allow(clippy::disallowed_methods)] // a real socket test in real time
        let t0 = Instant::now();
        let m = MetricsServer::start(l, poll.registry(), LISTENER, t0).unwrap();
        (poll, m, t0)
    }

    const LISTENER: Token = Token(usize::MAX);

    #[test]
    fn a_response_bigger_than_the_socket_goes_out_on_writable_and_nothing_waits() {
        let (mut poll, mut m, t0) = serve();
        let mut client = std::net::TcpStream::connect(m.local_addr()).unwrap();
        client.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut events = mio::Events::with_capacity(64);
        let body = "x".repeat(8 << 20);
        let pending = loop {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            let mut asked = None;
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    m.accept_all(poll.registry(), t0);
                } else {
                    asked = asked.or(m.on_event(poll.registry(), ev));
                }
            }
            if let Some(p) = asked {
                break p;
            }
        };
        assert_eq!(pending.ask, Ask::Metrics);
        // the client reads nothing yet: respond returns with most of the body buffered
        m.respond(poll.registry(), pending, &Reply::metrics(body.clone()));
        let conn = m.conns.iter().flatten().next().expect("open");
        assert!(conn.writable, "WRITABLE registered while output waits");
        assert!(matches!(&conn.state, State::Writing { out, at } if *at < out.len()));
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client.read_to_end(&mut got).unwrap();
            got
        });
        while m.open() > 0 {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            for ev in events.iter() {
                assert!(m.on_event(poll.registry(), ev).is_none());
            }
        }
        let got = reader.join().unwrap();
        let head = Reply::metrics(body).encode(true).len();
        assert_eq!(got.len(), head + (8 << 20), "all of it, then the close");
    }

    #[test]
    fn a_server_over_loopback_caps_connections_and_expires_them() {
        let (mut poll, mut m, t0) = serve();
        let addr = m.local_addr();
        let clients: Vec<_> = (0..MAX_CONNS + 2)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let mut events = mio::Events::with_capacity(64);
        while m.open() < MAX_CONNS {
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .unwrap();
            m.accept_all(poll.registry(), t0);
        }
        // the ones beyond the cap are closed at once
        let mut closed = 0;
        for mut c in clients.iter().skip(MAX_CONNS) {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            if matches!(c.read(&mut [0u8; 8]), Ok(0)) {
                closed += 1;
            }
        }
        assert_eq!((m.open(), closed), (MAX_CONNS, 2));
        m.expire(poll.registry(), t0 + DEADLINE - Duration::from_millis(1));
        assert_eq!(m.open(), MAX_CONNS, "not before the deadline");
        m.expire(poll.registry(), t0 + DEADLINE);
        assert_eq!(m.open(), 0);
        assert_eq!(m.next_deadline(), None);
    }
}
