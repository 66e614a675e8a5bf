//! The Rust client for protocol.md version 1: a sans-IO state machine ([`ClientCore`],
//! for applications with their own event loop) and a blocking [`Client`] on top of it
//! (used by the examples, the C ABI and the tests).
//!
//! The blocking client owns one TCP connection: each call sends its request and waits for
//! the reply with the same id, keeping server pushes (frames with the `PUSH` flag) in a
//! queue for the caller. While it waits (in a call, or in [`Client::wait_push`]) it sends
//! the automatic heartbeats the core schedules at the interval the server advertised, and
//! reports a server that stops answering them as [`ClientError::Timeout`].

mod core;
mod manage;
mod reconnect;
mod stream;
mod text;

pub use self::core::{ClientCore, ClientEvent, CLIENT_MAX_FRAME};
pub use manage::AuditRequest;
pub use reconnect::{reconnect_and_resume, Backoff};
pub use text::table;

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};

use std::time::{Duration, Instant};
use stream::Stream;

use crate::protocol::Secret;
use crate::protocol::{
    self, DecodeError, DisconnectReason, DisconnectRequest, DuplicateSession, ErrorCode, Frame,
    GeneralFailure, Heartbeat, HeartbeatAck, LoginFailure, LoginRequest, LoginSuccess,
    LogoutRequest, Message, RegisterFailure, RegisterRequest, RegisterSuccess, SessionExpired,
    SessionInfo, SessionInvalid, SessionRevoked, Token, VerifySession,
};

/// Why a client call failed.
#[derive(Debug)]
pub enum ClientError {
    /// A network error: connecting, reading or writing failed (a timeout is `Timeout`).
    Io(io::Error),
    /// No reply within the timeout.
    Timeout,
    /// The server closed the connection; with the reason when it said one.
    Closed(Option<DisconnectReason>),
    /// The server answered GENERAL_FAILURE. `fatal`: it closes the connection after it.
    Server {
        /// The GENERAL_FAILURE as received: error code and message.
        failure: GeneralFailure,
        /// The frame carried `FATAL`.
        fatal: bool,
    },
    /// The server sent bytes that are not a valid frame.
    Decode(DecodeError),
    /// The server answered with a message this call does not expect.
    Unexpected(Box<Frame>),
    /// The server ended the session: revoked (a new login elsewhere, ...). The connection
    /// is closed and the token is dead.
    Revoked(SessionRevoked),
    /// The session expired. The connection is closed and the token is dead.
    Expired(SessionExpired),
    /// The call needs a session (log in first) or its input is invalid.
    Usage(&'static str),
    /// TLS failed: the certificate was not trusted, the name did not match, or the peer
    /// does not speak TLS. Not a network problem: retrying will not help.
    Tls(String),
}

/// Connects to the first address of `addr` that answers within `timeout`.
fn tcp_connect<A: ToSocketAddrs>(addr: A, timeout: Duration) -> Result<TcpStream, ClientError> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))
        .into())
}

/// A connect-time error from rustls (wrapped in `io::Error`) as `ClientError::Tls`.
fn tls_error(e: io::Error) -> ClientError {
    let is_tls = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    if is_tls {
        ClientError::Tls(e.to_string())
    } else {
        e.into()
    }
}

impl ClientError {
    /// True when the stored token can never work again (delete it).
    pub fn token_is_dead(&self) -> bool {
        matches!(self, ClientError::Revoked(_) | ClientError::Expired(_))
    }

    /// True for network trouble, where reconnecting and resuming is the right move.
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            ClientError::Io(_) | ClientError::Timeout | ClientError::Closed(_)
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "network error: {e}"),
            ClientError::Timeout => f.write_str("no answer from the server in time"),
            ClientError::Closed(Some(r)) => {
                write!(f, "server closed the connection ({})", r.name())
            }
            ClientError::Closed(None) => f.write_str("server closed the connection"),
            ClientError::Server { failure, fatal } => write!(
                f,
                "server error {}: {}{}",
                failure.code,
                failure.message,
                if *fatal { " (connection closed)" } else { "" }
            ),
            ClientError::Decode(e) => write!(f, "bad frame from server: {e}"),
            ClientError::Unexpected(fr) => {
                write!(f, "unexpected {} from server", fr.message.opcode().name())
            }
            ClientError::Revoked(r) => f.write_str(&describe_revoked(r)),
            ClientError::Expired(e) => f.write_str(&describe_expired(e)),
            ClientError::Usage(m) => f.write_str(m),
            ClientError::Tls(m) => write!(f, "TLS: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout,
            _ => ClientError::Io(e),
        }
    }
}

/// Result of a login attempt that reached the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// LOGIN_SUCCESS: logged in; the token and the session are kept by the client.
    Success(LoginSuccess),
    /// LOGIN_FAILURE: refused, with the reason; the connection stays open.
    Failure(LoginFailure),
}

/// Result of VERIFY_SESSION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeOutcome {
    /// The session is live again on this connection.
    Valid(SessionInfo),
    /// The token is dead (the reason says why); the connection stays open for a login.
    Invalid(SessionInvalid),
    /// The session is in use on another connection; the server closed this one.
    Duplicate(DuplicateSession),
}

/// Result of REGISTER_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// REGISTER_SUCCESS: the account was created.
    Success(RegisterSuccess),
    /// REGISTER_FAILURE: refused, with the reason.
    Failure(RegisterFailure),
}

/// SESSION_REVOKED in plain words.
pub fn describe_revoked(r: &SessionRevoked) -> String {
    let why = match r.reason {
        protocol::RevokeReason::NewLogin => "you logged in somewhere else",
        protocol::RevokeReason::TakenOver => "the session was resumed on another connection",
        protocol::RevokeReason::ByUser => "you signed it out from another session",
        protocol::RevokeReason::PasswordChanged => "the account's password was changed",
        protocol::RevokeReason::ByAdmin => "an administrator signed it out",
        protocol::RevokeReason::AccountSuspended => "the account was suspended",
        protocol::RevokeReason::PasswordReset => "an administrator reset the password",
        protocol::RevokeReason::Other(_) => "the server revoked it",
    };
    let device = match (r.by_client.as_str(), r.by_platform.as_str()) {
        ("", "") => String::new(),
        (c, "") | ("", c) => format!(" with {c}"),
        (c, p) => format!(" with {c} on {p}"),
    };
    let from = if r.by_address.is_empty() {
        String::new()
    } else {
        format!(" from {}", r.by_address)
    };
    format!("session ended: {why}{device}{from} at {}", utc(r.at))
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC` (the civil-from-days algorithm; no
/// calendar crate for one line of output).
pub fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// SESSION_EXPIRED in plain words.
pub fn describe_expired(e: &SessionExpired) -> String {
    match e.reason {
        protocol::ExpiredReason::Idle => "session ended: it was idle too long; log in again".into(),
        protocol::ExpiredReason::Absolute => {
            "session ended: it reached its maximum lifetime; log in again".into()
        }
        protocol::ExpiredReason::Other(_) => "session ended: it expired; log in again".into(),
    }
}

/// One connection to a sessiond server.
pub struct Client {
    stream: Stream,
    core: ClientCore,
    pushes: VecDeque<Frame>,
    timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.stream.tcp().peer_addr().ok())
            .field("tls", &self.stream.is_tls())
            .field("session", &self.core.session().map(|s| s.session_id))
            .field("closed", &self.core.is_closed())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects with a timeout (each resolved address is tried in turn).
    pub fn connect<A: ToSocketAddrs>(addr: A, timeout: Duration) -> Result<Client, ClientError> {
        let tcp = tcp_connect(addr, timeout)?;
        Client::from_stream(Stream::Plain(tcp), timeout)
    }

    /// Connects with TLS: the server's certificate is checked against `tls` (see
    /// [`crate::tls::client_config`]) for `server_name`. The handshake completes (or
    /// fails, as [`ClientError::Tls`]) before this returns.
    pub fn connect_tls<A: ToSocketAddrs>(
        addr: A,
        server_name: &str,
        tls: std::sync::Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let name = crate::tls::server_name(server_name).map_err(ClientError::Io)?;
        let tcp = tcp_connect(addr, timeout)?;
        // the handshake runs now, bounded like every later call
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        let stream = Stream::tls(tcp, tls, name).map_err(tls_error)?;
        Client::from_stream(stream, timeout)
    }

    fn from_stream(stream: Stream, timeout: Duration) -> Result<Client, ClientError> {
        let tcp = stream.tcp();
        tcp.set_nodelay(true)?;
        tcp.set_write_timeout(Some(timeout))?;
        Ok(Client {
            stream,
            core: ClientCore::new(),
            pushes: VecDeque::new(),
            timeout,
        })
    }

    /// The server's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.tcp().peer_addr()
    }

    /// How long each call waits for its reply.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The session from the last successful login or resume, if any.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.core.session()
    }

    /// The token of the current session, if logged in.
    pub fn token(&self) -> Option<&Token> {
        self.core.token()
    }

    /// Whether the connection is over (closed by either side, broken, or given up after
    /// unanswered heartbeats): every later request fails with `ClientError::Closed`.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Whether the client heartbeats on its own while it waits (default: yes).
    pub fn set_auto_heartbeat(&mut self, on: bool) {
        self.core.set_auto_heartbeat(on);
    }

    /// Pushes received so far and not yet taken.
    pub fn take_pushes(&mut self) -> Vec<Frame> {
        self.pushes.drain(..).collect()
    }

    /// LOGIN_REQUEST. A LOGIN_FAILURE is `Ok(LoginOutcome::Failure)`, not an error.
    pub fn login(
        &mut self,
        username: &str,
        password: &str,
        client: &str,
        platform: &str,
    ) -> Result<LoginOutcome, ClientError> {
        let req = LoginRequest {
            username: username.to_owned(),
            password: Secret::from(password),
            client: client.to_owned(),
            platform: platform.to_owned(),
        };
        req.check().map_err(ClientError::Usage)?;
        let reply = self.request(Message::LoginRequest(req))?;
        match reply.message {
            Message::LoginSuccess(s) => Ok(LoginOutcome::Success(s)),
            Message::LoginFailure(f) => Ok(LoginOutcome::Failure(f)),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// VERIFY_SESSION: resumes the session of a stored token on this connection.
    pub fn resume(
        &mut self,
        token: &Token,
        client: &str,
        platform: &str,
    ) -> Result<ResumeOutcome, ClientError> {
        let reply = self.request(Message::VerifySession(VerifySession {
            token: token.clone(),
            client: client.to_owned(),
            platform: platform.to_owned(),
        }))?;
        match reply.message {
            Message::SessionValid(v) => Ok(ResumeOutcome::Valid(v.session)),
            Message::SessionInvalid(i) => Ok(ResumeOutcome::Invalid(i)),
            Message::DuplicateSession(d) => Ok(ResumeOutcome::Duplicate(d)),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// REGISTER_REQUEST. A REGISTER_FAILURE is `Ok(RegisterOutcome::Failure)`.
    pub fn register(
        &mut self,
        username: &str,
        password: &str,
        email: &str,
    ) -> Result<RegisterOutcome, ClientError> {
        if username.is_empty() || username.len() > protocol::MAX_USERNAME {
            return Err(ClientError::Usage("username must be 1 to 64 bytes"));
        }
        if password.len() > protocol::MAX_PASSWORD || email.len() > protocol::MAX_EMAIL {
            return Err(ClientError::Usage("password or email too long"));
        }
        let reply = self.request(Message::RegisterRequest(RegisterRequest {
            username: username.to_owned(),
            password: Secret::from(password),
            email: email.to_owned(),
        }))?;
        match reply.message {
            Message::RegisterSuccess(s) => Ok(RegisterOutcome::Success(s)),
            Message::RegisterFailure(f) => Ok(RegisterOutcome::Failure(f)),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// HEARTBEAT with the session's token.
    pub fn heartbeat(&mut self) -> Result<HeartbeatAck, ClientError> {
        let token = self.current_token()?;
        let reply = self.request(Message::Heartbeat(Heartbeat { token }))?;
        match reply.message {
            Message::HeartbeatAck(a) => Ok(a),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// LOGOUT_REQUEST; returns the id of the session that ended.
    pub fn logout(&mut self) -> Result<u64, ClientError> {
        let token = self.current_token()?;
        let reply = self.request(Message::LogoutRequest(LogoutRequest { token }))?;
        match reply.message {
            Message::LogoutSuccess(s) => Ok(s.session_id),
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    /// DISCONNECT_REQUEST, then waits for DISCONNECT_ACK and the close.
    pub fn disconnect(mut self) -> Result<DisconnectReason, ClientError> {
        let reply = self.request(Message::DisconnectRequest(DisconnectRequest))?;
        match reply.message {
            Message::DisconnectAck(a) => {
                let _ = self.stream.tcp().shutdown(Shutdown::Both);
                Ok(a.reason)
            }
            _ => Err(ClientError::Unexpected(Box::new(reply))),
        }
    }

    fn current_token(&self) -> Result<Token, ClientError> {
        self.core
            .token()
            .cloned()
            .ok_or(ClientError::Usage("not logged in"))
    }

    /// Sends `message` with a fresh request id and waits for the reply carrying that id.
    /// GENERAL_FAILURE replies become `ClientError::Server`.
    pub fn request(&mut self, message: Message) -> Result<Frame, ClientError> {
        if self.core.is_closed() {
            return Err(ClientError::Closed(None));
        }
        let id = self.core.request(message, now());
        self.flush()?;
        let deadline = now() + self.timeout;
        loop {
            while let Some(ev) = self.core.poll_event() {
                match ev {
                    ClientEvent::Reply(frame) if frame.request_id == id => {
                        return self.classify(frame)
                    }
                    ClientEvent::Reply(frame) | ClientEvent::Push(frame) => {
                        self.note_push(frame)?
                    }
                    ClientEvent::Unreadable { request_id, error } if request_id == id => {
                        return Err(ClientError::Decode(error))
                    }
                    ClientEvent::Unreadable { .. } => {}
                    ClientEvent::ServerUnresponsive => return Err(ClientError::Timeout),
                    ClientEvent::Closed => return Err(ClientError::Closed(None)),
                }
            }
            self.pump(deadline)?;
        }
    }

    /// A reply to a request: GENERAL_FAILURE and SESSION_EXPIRED become errors.
    fn classify(&mut self, frame: Frame) -> Result<Frame, ClientError> {
        match frame.message {
            Message::GeneralFailure(failure) => {
                let fatal = frame.flags.is_fatal();
                Err(ClientError::Server { failure, fatal })
            }
            // protocol.md 5.19: the reply to a request whose session had just expired.
            Message::SessionExpired(e) => Err(ClientError::Expired(e)),
            _ => Ok(frame),
        }
    }

    /// Writes what the core has queued.
    fn flush(&mut self) -> Result<(), ClientError> {
        let out = self.core.pending_output();
        if out.is_empty() {
            return Ok(());
        }
        let n = out.len();
        if let Err(e) = self.stream.write_all(out) {
            self.core.handle_eof();
            return Err(e.into());
        }
        self.core.consume_output(n);
        Ok(())
    }

    /// One step of waiting: the core's timer if it is due, else one read (bounded by
    /// `deadline` and the core's next timer). `Timeout` once `deadline` has passed.
    fn pump(&mut self, deadline: Instant) -> Result<(), ClientError> {
        let at = now();
        if self.core.poll_timeout().is_some_and(|t| t <= at) {
            self.core.handle_timeout(at);
            return self.flush();
        }
        if at >= deadline {
            return Err(ClientError::Timeout);
        }
        let wake = self
            .core
            .poll_timeout()
            .map_or(deadline, |t| t.min(deadline));
        let left = wake
            .saturating_duration_since(at)
            .max(Duration::from_millis(1));
        self.stream.tcp().set_read_timeout(Some(left))?;
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => self.core.handle_eof(),
            Ok(n) => self
                .core
                .handle_input(&buf[..n], now())
                .map_err(ClientError::Decode)?,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                self.core.handle_eof();
                return Err(e.into());
            }
        }
        self.flush()
    }

    fn forget_session(&mut self) {
        self.core.forget_session();
    }

    /// A push or stray frame: queued; a fatal one also ends the connection, and one that
    /// ends the session is returned as its error.
    fn note_push(&mut self, frame: Frame) -> Result<(), ClientError> {
        let fatal = frame.flags.is_fatal();
        match &frame.message {
            Message::SessionRevoked(r) => {
                let r = r.clone();
                self.pushes.push_back(frame);
                return Err(ClientError::Revoked(r));
            }
            Message::SessionExpired(e) => {
                let e = *e;
                self.pushes.push_back(frame);
                return Err(ClientError::Expired(e));
            }
            _ => {}
        }
        let reason = match &frame.message {
            Message::DisconnectAck(a) => Some(a.reason),
            _ => None,
        };
        let failure = match &frame.message {
            Message::GeneralFailure(g) => Some(g.clone()),
            _ => None,
        };
        self.pushes.push_back(frame);
        if fatal {
            if let Some(failure) = failure {
                return Err(ClientError::Server {
                    failure,
                    fatal: true,
                });
            }
            return Err(ClientError::Closed(reason));
        }
        Ok(())
    }

    /// Writes a frame as is (tests use it to send frames in odd orders).
    pub fn send(&mut self, frame: &Frame) -> Result<(), ClientError> {
        self.send_raw(&frame.to_vec())
    }

    /// Writes raw bytes (tests use it for malformed input).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// The next frame from the server (a reply to something sent with [`send`] or a
    /// push), waiting at most `timeout`.
    ///
    /// [`send`]: Self::send
    pub fn recv(&mut self, timeout: Duration) -> Result<Frame, ClientError> {
        let deadline = now() + timeout;
        loop {
            match self.core.poll_event() {
                Some(ClientEvent::Reply(f) | ClientEvent::Push(f)) => return Ok(f),
                Some(ClientEvent::Unreadable { error, .. }) => {
                    return Err(ClientError::Decode(error))
                }
                Some(ClientEvent::ServerUnresponsive) => return Err(ClientError::Timeout),
                Some(ClientEvent::Closed) => return Err(ClientError::Closed(None)),
                None if self.core.is_closed() => return Err(ClientError::Closed(None)),
                None => self.pump(deadline)?,
            }
        }
    }

    /// Waits up to `timeout` for a push; returns `Ok(None)` if none came. A push that ends
    /// the session or the connection comes back as its error (`Revoked`, `Expired`,
    /// `Closed`), with the frame also kept for `take_pushes`.
    pub fn poll_push(&mut self, timeout: Duration) -> Result<Option<Frame>, ClientError> {
        if let Some(f) = self.pushes.pop_front() {
            return Ok(Some(f));
        }
        match self.recv(timeout) {
            Ok(f) => {
                self.note_push(f)?;
                Ok(self.pushes.pop_front())
            }
            Err(ClientError::Timeout) if !self.core.is_closed() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like [`poll_push`](Self::poll_push), under its usual name for applications that
    /// idle between requests: heartbeats go out meanwhile.
    pub fn wait_push(&mut self, timeout: Duration) -> Result<Option<Frame>, ClientError> {
        self.poll_push(timeout)
    }
}

/// True when `e` is a GENERAL_FAILURE with `code`.
pub fn is_server_error(e: &ClientError, code: ErrorCode) -> bool {
    matches!(e, ClientError::Server { failure, .. } if failure.code == code)
}

/// The blocking client's clock: it runs in real time (the sans-IO [`ClientCore`] takes
/// `now` from here).
#[allow(clippy::disallowed_methods)] // the blocking client is a shell: it owns the clock
fn now() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_767_229_200_000), "2026-01-01 01:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_795_414_466_227), "2026-11-23 06:14:26 UTC");
    }

    #[test]
    fn revocation_in_plain_words() {
        let r = SessionRevoked {
            session_id: 7,
            reason: protocol::RevokeReason::NewLogin,
            by_client: "phone".into(),
            by_platform: "android".into(),
            by_address: "192.0.2.7:51000".into(),
            at: 1_767_229_200_000,
        };
        assert_eq!(
            describe_revoked(&r),
            "session ended: you logged in somewhere else with phone on android from \
             192.0.2.7:51000 at 2026-01-01 01:00:00 UTC"
        );
    }
}
