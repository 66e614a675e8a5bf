//! The sans-IO client state machine: everything a client of protocol.md does except the
//! socket and the clock, in the manner of quinn-proto's `Connection`.
//!
//! Owns request ids, the session (token and what LOGIN_SUCCESS / SESSION_VALID said),
//! automatic heartbeats at the server's interval with detection of a dead server, and the
//! sorting of incoming frames into replies and pushes. An application drives it from its
//! own event loop:
//!
//! - [`ClientCore::request`] queues a request; [`ClientCore::pending_output`] /
//!   [`ClientCore::consume_output`] give the bytes to write;
//! - [`ClientCore::handle_input`] takes bytes read from the socket
//!   ([`ClientCore::handle_eof`] when it closes);
//! - [`ClientCore::poll_timeout`] says when to call [`ClientCore::handle_timeout`];
//! - [`ClientCore::poll_event`] yields replies, pushes and the connection's end.
//!
//! The blocking [`super::Client`] is this plus a `TcpStream`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};

use crate::protocol::{
    self, DecodeError, DecodeLimits, Flags, Frame, Heartbeat, LogoutScope, Message, Opcode,
    SessionInfo, Token,
};

/// Largest frame the client accepts from a server (protocol.md: replies are at most
/// 64 KiB; pushes are smaller).
pub const CLIENT_MAX_FRAME: usize = 1 << 20;

/// What happened on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The reply to a request made with [`ClientCore::request`] (GENERAL_FAILURE too).
    Reply(Frame),
    /// A server push: NEW_LOGIN, SESSION_REVOKED, SESSION_EXPIRED, DISCONNECT_ACK
    /// (timeouts), a fatal GENERAL_FAILURE.
    Push(Frame),
    /// No HEARTBEAT_ACK within the heartbeat timeout: the server or the path is gone.
    /// The connection is given up; reconnect and resume the session.
    ServerUnresponsive,
    /// A reply this client cannot read (an opcode it does not know, a payload it cannot
    /// decode): the request `request_id` failed (protocol.md 8); the connection goes on.
    Unreadable {
        /// The request it answers.
        request_id: u32,
        /// What was wrong with it.
        error: DecodeError,
    },
    /// The connection is over: after a FATAL frame, the peer's close, or a frame whose
    /// header is bad.
    Closed,
}

/// A request waiting for its reply.
#[derive(Debug)]
struct Pending {
    id: u32,
    opcode: Opcode,
    /// LOGOUT_ALL's scope: `All` logs this connection out.
    logs_out: bool,
    /// VERIFY_SESSION's token: the session's token if the answer is SESSION_VALID.
    resumes: Option<Token>,
}

/// Automatic heartbeats, armed while logged in.
#[derive(Debug, Clone, Copy)]
struct Beat {
    interval: Duration,
    timeout: Duration,
    next: Instant,
    /// The automatic HEARTBEAT in flight: its id and the deadline for its ACK.
    awaiting: Option<(u32, Instant)>,
}

/// One connection's client state, driven by the caller's loop (module docs): bytes and
/// `now` in, bytes to write, events and the next deadline out.
#[derive(Debug)]
pub struct ClientCore {
    input: BytesMut,
    output: BytesMut,
    next_id: u32,
    pending: Vec<Pending>,
    token: Option<Token>,
    session: Option<SessionInfo>,
    auto_heartbeat: bool,
    beat: Option<Beat>,
    events: VecDeque<ClientEvent>,
    closed: bool,
}

impl Default for ClientCore {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientCore {
    /// A fresh connection's state, automatic heartbeats on.
    pub fn new() -> ClientCore {
        ClientCore {
            input: BytesMut::with_capacity(4096),
            output: BytesMut::with_capacity(256),
            next_id: 1,
            pending: Vec::new(),
            token: None,
            session: None,
            auto_heartbeat: true,
            beat: None,
            events: VecDeque::new(),
            closed: false,
        }
    }

    /// Whether the core sends HEARTBEATs on its own while logged in (default: yes). Their
    /// ACKs are consumed here and never show up as events.
    pub fn set_auto_heartbeat(&mut self, on: bool) {
        self.auto_heartbeat = on;
        if !on {
            self.beat = None;
        }
    }

    /// The session from the last LOGIN_SUCCESS or SESSION_VALID, until the core learns it
    /// ended (logout, revocation, expiry).
    pub fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref()
    }

    /// The current session's token, if logged in.
    pub fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }

    /// Logged out locally (the session ended); automatic heartbeats stop.
    pub fn forget_session(&mut self) {
        self.token = None;
        self.session = None;
        self.beat = None;
    }

    /// Whether the connection is over (`Closed` has been queued).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Queues `message` with a fresh request id and returns the id.
    pub fn request(&mut self, message: Message, now: Instant) -> u32 {
        let id = self.next_id;
        // Ids are never 0 (that marks pushes) and wrap after 4 billion requests.
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let (logs_out, resumes) = match &message {
            Message::LogoutAll(l) => (l.scope == LogoutScope::All, None),
            Message::VerifySession(v) => (false, Some(v.token.clone())),
            _ => (false, None),
        };
        self.pending.push(Pending {
            id,
            opcode: message.opcode(),
            logs_out,
            resumes,
        });
        protocol::encode_message(id, Flags::NONE, &message, &mut self.output);
        // Any request proves liveness as well as a heartbeat: the next one can wait.
        if let Some(b) = self.beat.as_mut() {
            if b.awaiting.is_none() {
                b.next = now + b.interval;
            }
        }
        id
    }

    /// Bytes waiting to be written to the socket.
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// `n` bytes of [`pending_output`](Self::pending_output) were written.
    pub fn consume_output(&mut self, n: usize) {
        self.output.advance(n.min(self.output.len()));
    }

    /// Bytes read from the socket. A frame whose header is bad ends the connection (the
    /// error is returned, and `Closed` queued). A frame with a readable header that cannot
    /// be decoded is skipped (protocol.md 8): a push is ignored, and a reply fails its
    /// request ([`ClientEvent::Unreadable`]).
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<(), DecodeError> {
        self.input.extend_from_slice(bytes);
        loop {
            match protocol::decode(&mut self.input, DecodeLimits::client(CLIENT_MAX_FRAME)) {
                Ok(Some(frame)) => self.on_frame(frame, now),
                Ok(None) => return Ok(()),
                Err(e) if e.kind.breaks_framing() => {
                    self.close();
                    return Err(e);
                }
                // A push (request id 0): ignored.
                Err(e) if e.request_id == 0 => {}
                Err(e) => {
                    let Some(i) = self.pending.iter().position(|p| p.id == e.request_id) else {
                        continue;
                    };
                    let p = self.pending.swap_remove(i);
                    if let Some(b) = self.beat.as_mut() {
                        if b.awaiting.is_some_and(|(id, _)| id == p.id) {
                            b.awaiting = None;
                        }
                    }
                    self.events.push_back(ClientEvent::Unreadable {
                        request_id: p.id,
                        error: e,
                    });
                }
            }
        }
    }

    /// The socket reached end of file (or failed).
    pub fn handle_eof(&mut self) {
        self.close();
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let b = self.beat.as_ref()?;
        Some(match b.awaiting {
            Some((_, deadline)) => deadline,
            None => b.next,
        })
    }

    /// Sends a heartbeat when one is due; gives the connection up when an ACK is late.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(mut b) = self.beat else {
            return;
        };
        if let Some((_, deadline)) = b.awaiting {
            if now >= deadline {
                self.beat = None;
                self.events.push_back(ClientEvent::ServerUnresponsive);
                self.close();
            }
            return;
        }
        if now >= b.next {
            let Some(token) = self.token.clone() else {
                self.beat = None;
                return;
            };
            let id = self.request(Message::Heartbeat(Heartbeat { token }), now);
            b.awaiting = Some((id, now + b.timeout));
            b.next = now + b.interval;
            self.beat = Some(b);
        }
    }

    /// The next event, oldest first; None when there is none.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.beat = None;
            self.events.push_back(ClientEvent::Closed);
        }
    }

    fn logged_in(&mut self, token: Token, info: SessionInfo, now: Instant) {
        if self.auto_heartbeat {
            let interval = Duration::from_millis(info.heartbeat_interval_ms.max(1) as u64);
            self.beat = Some(Beat {
                interval,
                timeout: Duration::from_millis(info.heartbeat_timeout_ms.max(1) as u64),
                next: now + interval,
                awaiting: None,
            });
        }
        self.token = Some(token);
        self.session = Some(info);
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        let fatal = frame.flags.is_fatal();
        if frame.flags.is_push() || frame.request_id == 0 {
            if matches!(
                frame.message,
                Message::SessionRevoked(_) | Message::SessionExpired(_)
            ) {
                self.forget_session();
            }
            self.events.push_back(ClientEvent::Push(frame));
        } else if let Some(i) = self.pending.iter().position(|p| p.id == frame.request_id) {
            let p = self.pending.swap_remove(i);
            let automatic = self
                .beat
                .and_then(|b| b.awaiting)
                .is_some_and(|(id, _)| id == p.id);
            if automatic {
                if let Some(b) = self.beat.as_mut() {
                    b.awaiting = None;
                }
                // Only an unexpected answer (the session just ended) is worth telling.
                if matches!(frame.message, Message::HeartbeatAck(_)) {
                    if fatal {
                        self.close();
                    }
                    return;
                }
            }
            self.track_session(&p, &frame, now);
            self.events.push_back(ClientEvent::Reply(frame));
        } else {
            // A reply to nothing asked: tell the application rather than drop it.
            self.events.push_back(ClientEvent::Push(frame));
        }
        if fatal {
            self.close();
        }
    }

    /// What a reply changes about the session.
    fn track_session(&mut self, p: &Pending, frame: &Frame, now: Instant) {
        match (&frame.message, p.opcode) {
            (Message::LoginSuccess(s), _) => {
                self.logged_in(s.token.clone(), s.session.clone(), now)
            }
            (Message::SessionValid(v), _) => {
                if let Some(t) = p.resumes.clone() {
                    self.logged_in(t, v.session.clone(), now);
                }
            }
            (Message::LogoutSuccess(_), _) | (Message::SessionExpired(_), _) => {
                self.forget_session()
            }
            (Message::Done(_), Opcode::LogoutAll) if p.logs_out => self.forget_session(),
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an arbitrary origin for made-up times
mod tests {
    use super::*;
    use crate::protocol::{HeartbeatAck, LoginSuccess, RevokeReason, Role, SessionRevoked};

    fn info() -> SessionInfo {
        SessionInfo {
            session_id: 7,
            user_id: 2,
            role: Role::User,
            username: "alice".into(),
            user_created: 0,
            last_login: 0,
            session_created: 0,
            session_expires: 0,
            idle_expiry_ms: 1_800_000,
            heartbeat_interval_ms: 5_000,
            heartbeat_timeout_ms: 15_000,
        }
    }

    fn token() -> Token {
        Token(core::array::from_fn(|i| i as u8))
    }

    fn reply(id: u32, m: Message) -> Vec<u8> {
        Frame::reply(id, m).to_vec()
    }

    /// Takes the frames the core wants to send.
    fn sent(c: &mut ClientCore) -> Vec<Frame> {
        let mut buf = BytesMut::from(c.pending_output());
        c.consume_output(buf.len());
        let mut out = Vec::new();
        while let Some(f) = protocol::decode(&mut buf, DecodeLimits::server(1 << 16)).unwrap() {
            out.push(f);
        }
        out
    }

    fn logged_in(t0: Instant) -> ClientCore {
        let mut c = ClientCore::new();
        let id = c.request(
            Message::LoginRequest(protocol::LoginRequest {
                username: "alice".into(),
                password: "pw".into(),
                client: String::new(),
                platform: String::new(),
            }),
            t0,
        );
        sent(&mut c);
        let ok = Message::LoginSuccess(LoginSuccess {
            token: token(),
            session: info(),
        });
        c.handle_input(&reply(id, ok), t0).unwrap();
        assert!(matches!(c.poll_event(), Some(ClientEvent::Reply(_))));
        c
    }

    #[test]
    fn unknown_pushes_are_ignored_and_an_unreadable_reply_fails_its_request() {
        let t0 = Instant::now();
        let mut c = logged_in(t0);
        // protocol.md 8: a push with an opcode this client does not know
        let push = [0x53, 0x44, 0x01, 0x7e, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        c.handle_input(&push, t0).unwrap();
        assert_eq!(c.poll_event(), None);
        assert!(!c.is_closed());
        // a reply with an unknown opcode to a pending request
        let id = c.request(Message::Heartbeat(Heartbeat { token: token() }), t0);
        sent(&mut c);
        let mut bad = vec![0x53, 0x44, 0x01, 0x7e, 0, 0];
        bad.extend(id.to_be_bytes());
        bad.extend([0, 0, 0, 0]);
        c.handle_input(&bad, t0).unwrap();
        match c.poll_event() {
            Some(ClientEvent::Unreadable { request_id, error }) => {
                assert_eq!(request_id, id);
                assert_eq!(error.kind, protocol::DecodeErrorKind::UnknownOpcode(0x7e));
            }
            other => panic!("{other:?}"),
        }
        assert!(!c.is_closed());
        // a bad header still ends the connection
        assert!(c.handle_input(b"HTTP/1.1 400", t0).is_err());
        assert!(c.is_closed());
    }

    #[test]
    fn heartbeats_go_out_on_the_interval_and_acks_are_absorbed() {
        let t0 = Instant::now();
        let mut c = logged_in(t0);
        assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        c.handle_timeout(t0 + Duration::from_secs(4));
        assert!(sent(&mut c).is_empty());
        let t1 = t0 + Duration::from_secs(5);
        c.handle_timeout(t1);
        let hb = sent(&mut c);
        assert_eq!(hb.len(), 1);
        assert!(matches!(hb[0].message, Message::Heartbeat(_)));
        let ack = Message::HeartbeatAck(HeartbeatAck { server_time: 1 });
        // split at every byte: framing is the core's job
        for b in reply(hb[0].request_id, ack) {
            c.handle_input(&[b], t1).unwrap();
        }
        assert_eq!(c.poll_event(), None, "automatic ACKs are not events");
        assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(5)));
    }

    #[test]
    fn a_missing_ack_means_the_server_is_gone() {
        let t0 = Instant::now();
        let mut c = logged_in(t0);
        let t1 = t0 + Duration::from_secs(5);
        c.handle_timeout(t1);
        sent(&mut c);
        assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(15)));
        c.handle_timeout(t1 + Duration::from_secs(14));
        assert_eq!(c.poll_event(), None);
        c.handle_timeout(t1 + Duration::from_secs(15));
        assert_eq!(c.poll_event(), Some(ClientEvent::ServerUnresponsive));
        assert_eq!(c.poll_event(), Some(ClientEvent::Closed));
        assert!(c.is_closed());
        // the token is kept: the application resumes with it on a new connection
        assert!(c.token().is_some());
    }

    #[test]
    fn a_revocation_push_ends_the_session_and_the_connection() {
        let t0 = Instant::now();
        let mut c = logged_in(t0);
        let push = Frame::push(
            Message::SessionRevoked(SessionRevoked {
                session_id: 7,
                reason: RevokeReason::NewLogin,
                by_client: String::new(),
                by_platform: String::new(),
                by_address: String::new(),
                at: 0,
            }),
            true,
        );
        c.handle_input(&push.to_vec(), t0).unwrap();
        assert!(matches!(c.poll_event(), Some(ClientEvent::Push(_))));
        assert_eq!(c.poll_event(), Some(ClientEvent::Closed));
        assert!(c.token().is_none());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn requests_postpone_the_next_heartbeat_and_garbage_closes() {
        let t0 = Instant::now();
        let mut c = logged_in(t0);
        let t1 = t0 + Duration::from_secs(3);
        c.request(
            Message::ListSessions(protocol::ListSessions {
                token: token(),
                offset: 0,
                limit: 0,
            }),
            t1,
        );
        assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(5)));
        assert!(c.handle_input(b"HTTP/1.1 400 Bad Request\r\n", t1).is_err());
        assert_eq!(c.poll_event(), Some(ClientEvent::Closed));
    }
}
