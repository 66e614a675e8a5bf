//! The C ABI: an opaque client handle over the blocking [`Client`], for test harnesses
//! written in C. The header is `examples/c/sessiond.h` (tests/c_harness.rs checks its
//! constants, functions and struct layouts against this file); `examples/c/harness.c`
//! calls every function and checks every documented failure.
//!
//! Rules every function here follows:
//! - Pointers are checked: a NULL where one is required answers `SESSIOND_ERR_ARGUMENT`.
//!   Strings are NUL-terminated UTF-8, borrowed for the duration of the call only.
//! - Nothing unwinds across the boundary: each body runs under `catch_unwind`, and a panic
//!   answers `SESSIOND_ERR_PANIC`.
//! - Every function returns a status (`SESSIOND_OK` = 0) but `sessiond_free` and the four
//!   that cannot fail (`sessiond_last_error`, `sessiond_version`, `sessiond_status_name`,
//!   `sessiond_status_message`); on failure `sessiond_last_error` describes it (per thread).
//! - Out-parameters are cleared first: after a failure each non-NULL one holds NULL, 0, an
//!   empty string or an all-zero struct, never a stale or partial value. The one exception
//!   beside the session list's array: `sessiond_get_attr`'s `*len` after a buffer too small
//!   holds the size needed (that is its answer).
//! - Memory: the handle is allocated by `sessiond_connect` or `sessiond_connect_tls` and
//!   released by `sessiond_free` (exactly once); every other buffer is the caller's, with
//!   its capacity passed in; the strings the library hands out are static, or per thread.
//!
//! A handle's life (the private `State`):
//!
//! ```text
//!  sessiond_connect[_tls]
//!          |
//!          v        the server ends the session (SESSION_REVOKED, SESSION_EXPIRED)
//!  +----> Open -----------------------------------------------------> Over(Session)
//!  |       | \      the server sends bytes that are not frames
//!  |       |  +-----------------------------------------------------> Over(Garbled)
//!  |       |   \    any other end: sessiond_disconnect, DISCONNECT_ACK, a fatal error,
//!  |       |    \   EOF or reset (a killed server, over TCP or TLS), heartbeats unanswered
//!  +-------+     +--------------------------------------------------> Over(Connection)
//!  login, logout, resume, register, ...: the connection stays open
//! ```
//!
//! An `Over` handle answers every call with one status (SESSION_ENDED, PROTOCOL or CLOSED)
//! and the same message, however often it is asked, until `sessiond_free`; the call during
//! which the connection ended answers it too unless that call had its own answer first.
//! Design: the status is decided once, when the connection ends, because the client
//! underneath only knows "closed" and "not logged in" afterwards, which made the second
//! call after a revocation answer differently from the first.
//!
//! `unsafe` lives only in this module, each block with its SAFETY argument.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::client::{
    describe_expired, describe_revoked, Client, ClientError, LoginOutcome, RegisterOutcome,
    ResumeOutcome,
};
use crate::protocol::{
    self, DisconnectRequest, Frame, LogoutScope, Message, SessionEntry, SessionInfo, Token,
};

/// Status: the call succeeded.
pub const SESSIOND_OK: c_int = 0;
/// Status: a bad argument (a NULL pointer, a string that is not UTF-8 or too long, a token
/// that is not 64 hex digits, a buffer too small, a timeout of 0, unknown flag bits), or a
/// call that needs a session when there is none (never logged in, or logged out by this
/// handle).
pub const SESSIOND_ERR_ARGUMENT: c_int = 1;
/// Status: the connection could not be made (refused, unreachable, a name that does not
/// resolve). A connection that breaks later is `SESSIOND_ERR_CLOSED`.
pub const SESSIOND_ERR_NETWORK: c_int = 2;
/// Status: no reply within the handle's timeout (or no connection within it). The
/// connection stays open; a reply that comes later is reported by `sessiond_next_event`
/// as `SESSIOND_EVENT_OTHER`.
pub const SESSIOND_ERR_TIMEOUT: c_int = 3;
/// Status: the server said no (a login or registration failure, a GENERAL_FAILURE such as
/// `FORBIDDEN` or `WRONG_PASSWORD`, a session in use on another connection).
pub const SESSIOND_ERR_REFUSED: c_int = 4;
/// Status: the server ended this handle's session (revoked, expired): from then on every
/// call on the handle answers it. Also `sessiond_resume`'s answer for a dead token (that
/// handle stays open: log in on it).
pub const SESSIOND_ERR_SESSION_ENDED: c_int = 5;
/// Status: the server sent bytes that are not frames of protocol.md (every call answers it
/// from then on), or a reply this call does not expect (the connection stays open).
pub const SESSIOND_ERR_PROTOCOL: c_int = 6;
/// Status: an internal error (a panic), caught at the boundary.
pub const SESSIOND_ERR_PANIC: c_int = 7;
/// Status of `sessiond_next_event`: no push arrived in time.
pub const SESSIOND_NO_EVENT: c_int = 8;
/// Status: the connection is over without the session having ended: closed by
/// `sessiond_disconnect`, or by the server (DISCONNECT_ACK, a fatal error), lost (EOF or a
/// reset: a killed server, over TCP and TLS alike), or given up (the server stopped
/// answering heartbeats). Every call answers it from then on; the session may live on.
pub const SESSIOND_ERR_CLOSED: c_int = 9;
/// Status: TLS failed: the certificate is not trusted, the name does not match, the peer
/// does not speak TLS, or the TLS configuration (`ca_file`) could not be loaded.
pub const SESSIOND_ERR_TLS: c_int = 10;
/// Status of `sessiond_get_attr`: the session holds no attribute of that key. An answer,
/// not a failure (like `SESSIOND_NO_EVENT`): `sessiond_last_error` is left as it was.
pub const SESSIOND_NOT_SET: c_int = 11;

/// Event kind: another device logged in to this account (NEW_LOGIN); `session_id` is the
/// new session.
pub const SESSIOND_EVENT_NEW_LOGIN: c_int = 1;
/// Event kind: this session was revoked (SESSION_REVOKED); `reason` is its protocol.md
/// 5.18 code.
pub const SESSIOND_EVENT_REVOKED: c_int = 2;
/// Event kind: this session expired (SESSION_EXPIRED); `reason` is 1 (idle) or 2
/// (absolute).
pub const SESSIOND_EVENT_EXPIRED: c_int = 3;
/// Event kind: the server closed the connection with DISCONNECT_ACK; `reason` is its
/// protocol.md 5.9 code.
pub const SESSIOND_EVENT_DISCONNECTED: c_int = 4;
/// Event kind: any other frame the server sent unasked; `detail` names its message.
pub const SESSIOND_EVENT_OTHER: c_int = 5;
/// Event kind: the server is stopping (SERVER_SHUTDOWN); reconnect later and resume.
pub const SESSIOND_EVENT_SHUTDOWN: c_int = 6;
/// Event kind: the resumed session's attributes (the ATTRS push right after a resume of a
/// session that holds some, protocol.md 5.42); `reason` is how many, `detail` names their
/// keys. Read the values with `sessiond_get_attr`.
pub const SESSIOND_EVENT_ATTRS: c_int = 7;

/// `sessiond_identity.role`: an ordinary account (protocol.md 5.2).
/// (Its wire value: a unit test checks it against `Role`.)
pub const SESSIOND_ROLE_USER: c_int = 0;
/// `sessiond_identity.role`: an administrator.
pub const SESSIOND_ROLE_ADMIN: c_int = 1;

/// `sessiond_connect_tls` flag: do not check the server's certificate. Testing only:
/// anyone on the path could then read passwords and tokens.
pub const SESSIOND_TLS_INSECURE_SKIP_VERIFY: u32 = 1;
/// `sessiond_logout_all` flag: end this handle's session too (LOGOUT_ALL `ALL`); without
/// it, only the account's other sessions end (`OTHERS`).
pub const SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT: u32 = 1;

/// Text fields of the C structs: up to 64 bytes of UTF-8 and a NUL.
pub const SESSIOND_TEXT: usize = 65;
/// `sessiond_event.detail`: up to 256 bytes of UTF-8 and a NUL.
pub const SESSIOND_DETAIL: usize = 257;
/// The buffer `sessiond_token` needs: 64 hex digits and a NUL.
pub const SESSIOND_TOKEN_SIZE: usize = 65;
/// The longest attribute key, bytes of UTF-8 (protocol.md 5.39).
pub const SESSIOND_ATTR_KEY_MAX: usize = protocol::MAX_ATTR_KEY;
/// The longest attribute value, bytes; a session holds at most 4,096 bytes of keys and
/// values together, and 64 attributes (protocol.md 5.39).
pub const SESSIOND_ATTR_VALUE_MAX: usize = protocol::MAX_ATTR_VALUE;
/// The wire protocol this library speaks (protocol.md's version byte).
pub const SESSIOND_PROTOCOL_VERSION: u32 = protocol::VERSION as u32;
/// The library's version (the crate's), as `sessiond_version` returns it.
pub const SESSIOND_VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the crate version has a NUL"),
    };

/// Every integer constant of `sessiond.h`, by name (tests/c_harness.rs checks the header
/// against this list, and this list against the constants above).
pub const HEADER_CONSTANTS: &[(&str, i64)] = &[
    ("SESSIOND_OK", SESSIOND_OK as i64),
    ("SESSIOND_ERR_ARGUMENT", SESSIOND_ERR_ARGUMENT as i64),
    ("SESSIOND_ERR_NETWORK", SESSIOND_ERR_NETWORK as i64),
    ("SESSIOND_ERR_TIMEOUT", SESSIOND_ERR_TIMEOUT as i64),
    ("SESSIOND_ERR_REFUSED", SESSIOND_ERR_REFUSED as i64),
    (
        "SESSIOND_ERR_SESSION_ENDED",
        SESSIOND_ERR_SESSION_ENDED as i64,
    ),
    ("SESSIOND_ERR_PROTOCOL", SESSIOND_ERR_PROTOCOL as i64),
    ("SESSIOND_ERR_PANIC", SESSIOND_ERR_PANIC as i64),
    ("SESSIOND_NO_EVENT", SESSIOND_NO_EVENT as i64),
    ("SESSIOND_ERR_CLOSED", SESSIOND_ERR_CLOSED as i64),
    ("SESSIOND_ERR_TLS", SESSIOND_ERR_TLS as i64),
    ("SESSIOND_NOT_SET", SESSIOND_NOT_SET as i64),
    ("SESSIOND_EVENT_NEW_LOGIN", SESSIOND_EVENT_NEW_LOGIN as i64),
    ("SESSIOND_EVENT_REVOKED", SESSIOND_EVENT_REVOKED as i64),
    ("SESSIOND_EVENT_EXPIRED", SESSIOND_EVENT_EXPIRED as i64),
    (
        "SESSIOND_EVENT_DISCONNECTED",
        SESSIOND_EVENT_DISCONNECTED as i64,
    ),
    ("SESSIOND_EVENT_OTHER", SESSIOND_EVENT_OTHER as i64),
    ("SESSIOND_EVENT_SHUTDOWN", SESSIOND_EVENT_SHUTDOWN as i64),
    ("SESSIOND_EVENT_ATTRS", SESSIOND_EVENT_ATTRS as i64),
    ("SESSIOND_ROLE_USER", SESSIOND_ROLE_USER as i64),
    ("SESSIOND_ROLE_ADMIN", SESSIOND_ROLE_ADMIN as i64),
    (
        "SESSIOND_TLS_INSECURE_SKIP_VERIFY",
        SESSIOND_TLS_INSECURE_SKIP_VERIFY as i64,
    ),
    (
        "SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT",
        SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT as i64,
    ),
    ("SESSIOND_TEXT", SESSIOND_TEXT as i64),
    ("SESSIOND_DETAIL", SESSIOND_DETAIL as i64),
    ("SESSIOND_TOKEN_SIZE", SESSIOND_TOKEN_SIZE as i64),
    ("SESSIOND_ATTR_KEY_MAX", SESSIOND_ATTR_KEY_MAX as i64),
    ("SESSIOND_ATTR_VALUE_MAX", SESSIOND_ATTR_VALUE_MAX as i64),
    (
        "SESSIOND_PROTOCOL_VERSION",
        SESSIOND_PROTOCOL_VERSION as i64,
    ),
];

/// Every status: its value, its constant's name, and what it means.
const STATUSES: [(c_int, &CStr, &CStr); 12] = [
    (SESSIOND_OK, c"SESSIOND_OK", c"success"),
    (
        SESSIOND_ERR_ARGUMENT,
        c"SESSIOND_ERR_ARGUMENT",
        c"bad argument, or the call needs a session and the handle has none",
    ),
    (
        SESSIOND_ERR_NETWORK,
        c"SESSIOND_ERR_NETWORK",
        c"the connection could not be made",
    ),
    (
        SESSIOND_ERR_TIMEOUT,
        c"SESSIOND_ERR_TIMEOUT",
        c"no reply in time; the connection stays open",
    ),
    (
        SESSIOND_ERR_REFUSED,
        c"SESSIOND_ERR_REFUSED",
        c"the server said no",
    ),
    (
        SESSIOND_ERR_SESSION_ENDED,
        c"SESSIOND_ERR_SESSION_ENDED",
        c"the server ended the session (revoked or expired), or the token is dead",
    ),
    (
        SESSIOND_ERR_PROTOCOL,
        c"SESSIOND_ERR_PROTOCOL",
        c"the server sent something that is not the sessiond protocol",
    ),
    (
        SESSIOND_ERR_PANIC,
        c"SESSIOND_ERR_PANIC",
        c"internal error in the library",
    ),
    (
        SESSIOND_NO_EVENT,
        c"SESSIOND_NO_EVENT",
        c"no event arrived in time",
    ),
    (
        SESSIOND_ERR_CLOSED,
        c"SESSIOND_ERR_CLOSED",
        c"the connection is over (disconnected, closed by the server, lost or given up)",
    ),
    (SESSIOND_ERR_TLS, c"SESSIOND_ERR_TLS", c"TLS failed"),
    (
        SESSIOND_NOT_SET,
        c"SESSIOND_NOT_SET",
        c"the session holds no attribute of that key",
    ),
];

/// The opaque handle (`sessiond_client` in C).
pub struct SessiondClient {
    state: State,
}

/// Where a handle is in its life (the diagram in the module docs).
enum State {
    /// Connected: logged in or not.
    Open(Client),
    /// The connection ended; the client is gone and the handle answers with its end.
    Over(Over),
}

/// A handle whose connection ended.
struct Over {
    end: End,
    /// What `sessiond_last_error` says for every call from now on.
    why: String,
    /// Pushes that arrived before the end and no `sessiond_next_event` has taken yet.
    pushes: VecDeque<Frame>,
}

/// How the connection ended.
enum End {
    /// The server ended the session: `SESSION_ENDED`.
    Session,
    /// The server sent bytes that are not frames: `PROTOCOL`. With the session the handle
    /// had, which may live on.
    Garbled(Option<Kept>),
    /// Any other end: `CLOSED`. With the session the handle had, which may live on (resume
    /// it on a new handle).
    Connection(Option<Kept>),
}

/// A session remembered past the end of its connection.
struct Kept {
    token: Token,
    info: SessionInfo,
}

impl Over {
    fn status(&self) -> c_int {
        match self.end {
            End::Session => SESSIOND_ERR_SESSION_ENDED,
            End::Garbled(_) => SESSIOND_ERR_PROTOCOL,
            End::Connection(_) => SESSIOND_ERR_CLOSED,
        }
    }

    fn fail(&self) -> Fail {
        Fail::Status(self.status(), self.why.clone())
    }

    /// What the ended connection leaves of the client: its pushes, the session it had, and
    /// how it ended. `err` is the failure of the call during which it ended, if any.
    fn of(c: &mut Client, err: Option<&Fail>) -> Over {
        let kept = match (c.token(), c.session()) {
            (Some(t), Some(s)) => Some(Kept {
                token: t.clone(),
                info: s.clone(),
            }),
            _ => None,
        };
        let mut pushes: VecDeque<Frame> = c.take_pushes().into();
        let mut unanswered = matches!(err, Some(Fail::Client(ClientError::Timeout)));
        if c.is_closed() {
            // Frames read before the end that no call has taken yet. On a closed connection
            // `recv` only drains what was read: it ends with `Closed` and reads nothing.
            loop {
                match c.recv(Duration::ZERO) {
                    Ok(f) => pushes.push_back(f),
                    Err(ClientError::Timeout) => unanswered = true,
                    Err(_) => break,
                }
            }
        }
        let ended = pushes.iter().find_map(|f| match &f.message {
            Message::SessionRevoked(r) => Some(describe_revoked(r)),
            Message::SessionExpired(x) => Some(describe_expired(x)),
            _ => None,
        });
        // SESSION_EXPIRED as a reply (protocol.md 5.19) is an error, not a queued push:
        // keep it as the event it stands for, so next_event reports every end alike.
        let ended = ended.or_else(|| match err {
            Some(Fail::Client(ClientError::Expired(x))) => {
                pushes.push_back(Frame::push(Message::SessionExpired(*x), true));
                Some(describe_expired(x))
            }
            Some(Fail::Client(ClientError::Revoked(r))) => {
                pushes.push_back(Frame::push(Message::SessionRevoked(r.clone()), true));
                Some(describe_revoked(r))
            }
            _ => None,
        });
        let (end, why) = match (ended, err) {
            (Some(why), _) => (End::Session, why),
            (None, Some(Fail::Client(ClientError::Decode(e)))) => (
                End::Garbled(kept),
                format!("bad frame from the server ({e}); the connection is closed"),
            ),
            (None, _) => (End::Connection(kept), lost(err, unanswered, &pushes)),
        };
        Over { end, why, pushes }
    }

    /// The session the connection had, if it may live on.
    fn kept(&self) -> Result<&Kept, Fail> {
        match &self.end {
            End::Garbled(Some(k)) | End::Connection(Some(k)) => Ok(k),
            _ => Err(self.fail()),
        }
    }
}

/// How a connection that did not end its session was lost, in words.
fn lost(err: Option<&Fail>, unanswered: bool, pushes: &VecDeque<Frame>) -> String {
    if unanswered {
        return "connection given up: the server stopped answering heartbeats".into();
    }
    let ack = pushes.iter().rev().find_map(|f| match &f.message {
        Message::DisconnectAck(d) => Some(d.reason),
        _ => None,
    });
    let ack = match err {
        Some(Fail::Client(ClientError::Closed(Some(r)))) => Some(*r),
        _ => ack,
    };
    match (err, ack) {
        (Some(Fail::Client(ClientError::Io(e))), _) => format!("connection lost: {e}"),
        (Some(Fail::Client(ClientError::Server { failure, .. })), _) => format!(
            "the server closed the connection after {}: {}",
            failure.code, failure.message
        ),
        (Some(Fail::Status(_, msg)), _) => {
            format!("the server closed the connection after: {msg}")
        }
        (_, Some(r)) => format!("the server closed the connection ({})", r.name()),
        (_, None) => "the server closed the connection".into(),
    }
}

impl SessiondClient {
    /// Runs `f` on the open client. If the connection ended meanwhile, the handle is over
    /// from now on, and a client failure of `f` becomes the end's status and words (an
    /// answer `f` had, success or not, stands).
    fn run<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T, Fail>) -> Result<T, Fail> {
        let client = match &mut self.state {
            State::Open(c) => c,
            State::Over(o) => return Err(o.fail()),
        };
        let result = f(client);
        let err = result.as_ref().err();
        let session_ended = matches!(
            err,
            Some(Fail::Client(
                ClientError::Revoked(_) | ClientError::Expired(_)
            ))
        );
        if !client.is_closed() && !session_ended {
            return result;
        }
        let over = Over::of(client, err);
        let fail = over.fail();
        // Dropping the client closes its socket.
        self.state = State::Over(over);
        match result {
            Err(Fail::Client(_)) => Err(fail),
            answer => answer,
        }
    }

    /// The session the handle knows: the live one, or the one it had when its connection
    /// ended without ending the session.
    fn session(&self) -> Result<(&Token, &SessionInfo), Fail> {
        match &self.state {
            State::Open(c) => c
                .token()
                .zip(c.session())
                .ok_or_else(|| arg("not logged in")),
            State::Over(o) => o.kept().map(|k| (&k.token, &k.info)),
        }
    }

    /// The oldest push an over handle still holds.
    fn pop_push(&mut self) -> Option<Frame> {
        match &mut self.state {
            State::Open(_) => None,
            State::Over(o) => o.pushes.pop_front(),
        }
    }
}

/// One session in `sessiond_list_sessions` (`sessiond_session` in C).
#[repr(C)]
pub struct SessiondSession {
    /// The public session id.
    pub session_id: u64,
    /// 1: the session of this connection; else 0.
    pub current: c_int,
    /// 1: a connection is bound to the session now; else 0.
    pub connected: c_int,
    /// When the session was created, Unix milliseconds.
    pub created_ms: u64,
    /// The last valid request with its token, Unix milliseconds.
    pub last_active_ms: u64,
    /// Its absolute expiry, Unix milliseconds.
    pub expires_ms: u64,
    /// The client program given at login (or at the last resume that gave one),
    /// NUL-terminated, cut to fit.
    pub client: [c_char; SESSIOND_TEXT],
    /// Its platform, NUL-terminated, cut to fit.
    pub platform: [c_char; SESSIOND_TEXT],
    /// The peer address (`ip:port`) of the login or last resume, NUL-terminated, cut to fit.
    pub address: [c_char; SESSIOND_TEXT],
}

impl SessiondSession {
    fn of(s: &SessionEntry) -> SessiondSession {
        let mut e = SessiondSession {
            session_id: s.session_id,
            current: c_int::from(s.current),
            connected: c_int::from(s.connected),
            created_ms: s.created,
            last_active_ms: s.last_active,
            expires_ms: s.expires,
            client: [0; SESSIOND_TEXT],
            platform: [0; SESSIOND_TEXT],
            address: [0; SESSIOND_TEXT],
        };
        fill(&mut e.client, &s.client);
        fill(&mut e.platform, &s.platform);
        fill(&mut e.address, &s.address);
        e
    }
}

/// Who a handle is logged in as (`sessiond_identity` in C): the SessionInfo of its login or
/// resume.
#[repr(C)]
pub struct SessiondIdentity {
    /// The public session id.
    pub session_id: u64,
    /// The account's id.
    pub user_id: u64,
    /// `SESSIOND_ROLE_USER` or `SESSIOND_ROLE_ADMIN`.
    pub role: c_int,
    /// The account's name, NUL-terminated.
    pub username: [c_char; SESSIOND_TEXT],
    /// When the account was created, Unix milliseconds.
    pub user_created_ms: u64,
    /// The account's previous login (for a resume: its last one), 0 if none.
    pub last_login_ms: u64,
    /// When the session was created, Unix milliseconds.
    pub session_created_ms: u64,
    /// The session's absolute expiry, Unix milliseconds.
    pub session_expires_ms: u64,
    /// The session ends after this long without a request.
    pub idle_expiry_ms: u32,
    /// The server wants a heartbeat this often (the library sends them while it waits).
    pub heartbeat_interval_ms: u32,
    /// The server closes a connection silent for this long.
    pub heartbeat_timeout_ms: u32,
}

impl SessiondIdentity {
    fn of(s: &SessionInfo) -> SessiondIdentity {
        let mut id = SessiondIdentity {
            session_id: s.session_id,
            user_id: s.user_id,
            role: c_int::from(s.role.to_u8()),
            username: [0; SESSIOND_TEXT],
            user_created_ms: s.user_created,
            last_login_ms: s.last_login,
            session_created_ms: s.session_created,
            session_expires_ms: s.session_expires,
            idle_expiry_ms: s.idle_expiry_ms,
            heartbeat_interval_ms: s.heartbeat_interval_ms,
            heartbeat_timeout_ms: s.heartbeat_timeout_ms,
        };
        fill(&mut id.username, &s.username);
        id
    }
}

/// A push from the server (`sessiond_event` in C).
#[repr(C)]
pub struct SessiondEvent {
    /// One of the `SESSIOND_EVENT_*` kinds (0 when there is no event).
    pub kind: c_int,
    /// The protocol's reason code (revocation, expiry, disconnect), 0 if none.
    pub reason: u32,
    /// The session it is about (the new one for NEW_LOGIN), 0 if none.
    pub session_id: u64,
    /// Plain words about it, NUL-terminated, cut to fit.
    pub detail: [c_char; SESSIOND_DETAIL],
}

impl SessiondEvent {
    fn of(frame: &Frame) -> SessiondEvent {
        let (kind, reason, session_id, detail) = match &frame.message {
            Message::NewLogin(n) => (
                SESSIOND_EVENT_NEW_LOGIN,
                0,
                n.session_id,
                format!("new login: {} {} from {}", n.client, n.platform, n.address),
            ),
            Message::SessionRevoked(r) => (
                SESSIOND_EVENT_REVOKED,
                u32::from(r.reason.to_u16()),
                r.session_id,
                describe_revoked(r),
            ),
            Message::SessionExpired(x) => (
                SESSIOND_EVENT_EXPIRED,
                u32::from(x.reason.to_u16()),
                x.session_id,
                describe_expired(x),
            ),
            Message::ServerShutdown(x) => (
                SESSIOND_EVENT_SHUTDOWN,
                0,
                0,
                format!("server shutting down: {}", x.message),
            ),
            Message::Attrs(a) => {
                let keys: Vec<&str> = a.attrs.iter().map(|(k, _)| k.as_str()).collect();
                (
                    SESSIOND_EVENT_ATTRS,
                    a.attrs.len() as u32,
                    a.session_id,
                    format!("session attributes: {}", keys.join(", ")),
                )
            }
            Message::DisconnectAck(d) => (
                SESSIOND_EVENT_DISCONNECTED,
                u32::from(d.reason.to_u16()),
                0,
                format!("disconnected: {}", d.reason.name()),
            ),
            other => (SESSIOND_EVENT_OTHER, 0, 0, other.opcode().name().to_owned()),
        };
        let mut ev = SessiondEvent {
            kind,
            reason,
            session_id,
            detail: [0; SESSIOND_DETAIL],
        };
        fill(&mut ev.detail, &detail);
        ev
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// A failure on its way to the caller.
enum Fail {
    /// The ABI's own answer: a status and its message.
    Status(c_int, String),
    /// What the client said: [`status_of`] maps it, or the handle's end replaces it.
    Client(ClientError),
}

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Self {
        Fail::Client(e)
    }
}

/// The status of a client error while the connection is open (or not yet made).
fn status_of(e: &ClientError) -> c_int {
    match e {
        ClientError::Io(_) => SESSIOND_ERR_NETWORK,
        ClientError::Timeout => SESSIOND_ERR_TIMEOUT,
        ClientError::Closed(_) => SESSIOND_ERR_CLOSED,
        ClientError::Server { .. } => SESSIOND_ERR_REFUSED,
        ClientError::Decode(_) | ClientError::Unexpected(_) => SESSIOND_ERR_PROTOCOL,
        ClientError::Revoked(_) | ClientError::Expired(_) => SESSIOND_ERR_SESSION_ENDED,
        ClientError::Usage(_) => SESSIOND_ERR_ARGUMENT,
        ClientError::Tls(_) => SESSIOND_ERR_TLS,
    }
}

fn arg(msg: impl Into<String>) -> Fail {
    Fail::Status(SESSIOND_ERR_ARGUMENT, msg.into())
}

fn refused(msg: String) -> Fail {
    Fail::Status(SESSIOND_ERR_REFUSED, msg)
}

/// Runs `f` with panics caught, turning its outcome into a status and the error message.
fn guard(f: impl FnOnce() -> Result<c_int, Fail>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(status)) => status,
        Ok(Err(Fail::Status(status, msg))) => {
            set_error(&msg);
            status
        }
        Ok(Err(Fail::Client(e))) => {
            set_error(&e.to_string());
            status_of(&e)
        }
        Err(_) => {
            set_error("internal error (a panic was caught at the C boundary)");
            SESSIOND_ERR_PANIC
        }
    }
}

/// Types whose all-zero bytes are a valid value: what an out-parameter holds after a
/// failure, padding included (the header promises "all zero").
///
/// # Safety
/// Only for types valid when every byte is 0: integers, raw pointers (NULL), and
/// `#[repr(C)]` structs of those and of arrays of them.
unsafe trait Zeroable {}
// SAFETY: integers and raw pointers are valid when zero.
unsafe impl Zeroable for u32 {}
// SAFETY: as above.
unsafe impl Zeroable for u64 {}
// SAFETY: as above.
unsafe impl Zeroable for usize {}
// SAFETY: as above.
unsafe impl Zeroable for c_int {}
// SAFETY: a NULL pointer.
unsafe impl Zeroable for *mut SessiondClient {}
// SAFETY: `#[repr(C)]`, integers and arrays of `c_char` only.
unsafe impl Zeroable for SessiondIdentity {}
// SAFETY: `#[repr(C)]`, integers and an array of `c_char` only.
unsafe impl Zeroable for SessiondEvent {}

/// An out-parameter: NULL, or valid for writing one `T` during the call.
struct Out<T>(*mut T);

impl<T> Out<T> {
    /// # Safety
    /// `p` is NULL or valid for writing one `T` until the call returns (each function's
    /// contract in the header).
    unsafe fn new(p: *mut T) -> Out<T> {
        Out(p)
    }

    fn is_null(&self) -> bool {
        self.0.is_null()
    }

    /// Writes `v` unless the pointer is NULL (the old value is neither read nor dropped).
    fn set(&self, v: T) {
        if !self.0.is_null() {
            // SAFETY: non-NULL, so valid for writing one `T` (`Out::new`'s contract).
            unsafe { self.0.write(v) };
        }
    }
}

impl<T: Zeroable> Out<T> {
    /// Sets every byte to 0 (padding too) unless the pointer is NULL.
    fn clear(&self) {
        if !self.0.is_null() {
            // SAFETY: non-NULL, so valid for writing one `T` (`Out::new`'s contract); all
            // zero is a valid `T` (`Zeroable`).
            unsafe { self.0.write_bytes(0, 1) };
        }
    }
}

/// Borrows a C string argument.
fn text<'a>(p: *const c_char, name: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(arg(format!("{name} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string that stays valid for this call
    // (the header's contract); NULL was excluded above.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| arg(format!("{name} is not UTF-8")))
}

/// The handle behind a pointer.
fn handle<'a>(h: *mut SessiondClient) -> Result<&'a mut SessiondClient, Fail> {
    if h.is_null() {
        return Err(arg("client handle is NULL"));
    }
    // SAFETY: a non-NULL handle comes from `sessiond_connect` or `sessiond_connect_tls`
    // and has not been freed (the header's contract); the caller does not use one handle
    // from two threads at once.
    Ok(unsafe { &mut *h })
}

/// Copies `s` into a fixed C buffer, cut at a character boundary, NUL-terminated.
fn fill(dst: &mut [c_char], s: &str) {
    let max = dst.len() - 1;
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    for (d, b) in dst.iter_mut().zip(&s.as_bytes()[..end]) {
        *d = *b as c_char;
    }
    dst[end] = 0;
}

/// The connect calls' common part: clears `*out`, checks `addr` and the timeout, runs
/// `connect` with them, and hands the client out through `out`.
fn connect_into(
    out: *mut *mut SessiondClient,
    addr: *const c_char,
    timeout_ms: u32,
    connect: impl FnOnce(&str, Duration) -> Result<Client, Fail>,
) -> c_int {
    guard(|| {
        // SAFETY: the header's contract: `out` is NULL or valid for writing one pointer.
        let out = unsafe { Out::new(out) };
        if out.is_null() {
            return Err(arg("out is NULL"));
        }
        out.clear();
        let addr = text(addr, "addr")?;
        if timeout_ms == 0 {
            return Err(arg("timeout_ms is 0 (give at least 1 millisecond)"));
        }
        let client = connect(addr, Duration::from_millis(u64::from(timeout_ms)))?;
        out.set(Box::into_raw(Box::new(SessiondClient {
            state: State::Open(client),
        })));
        Ok(SESSIOND_OK)
    })
}

/// The message of the last failed call on this thread (an empty string if none; a call
/// that succeeds leaves it as it was). Valid until the next `sessiond_*` call on the same
/// thread; owned by the library.
#[no_mangle]
pub extern "C" fn sessiond_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The library's version (static, e.g. "0.1.0"); `*protocol` (if not NULL) receives the
/// protocol version it speaks. Compare with `SESSIOND_VERSION` and
/// `SESSIOND_PROTOCOL_VERSION` to catch a header that does not match the library.
///
/// # Safety
/// `protocol` is NULL or valid for writing a `u32`.
#[no_mangle]
pub unsafe extern "C" fn sessiond_version(protocol: *mut u32) -> *const c_char {
    // SAFETY: the contract above.
    unsafe { Out::new(protocol) }.set(SESSIOND_PROTOCOL_VERSION);
    SESSIOND_VERSION.as_ptr()
}

/// The name of a status's constant ("SESSIOND_ERR_CLOSED"), or "unknown" for a value that
/// is not a status. Static.
#[no_mangle]
pub extern "C" fn sessiond_status_name(status: c_int) -> *const c_char {
    STATUSES
        .iter()
        .find(|s| s.0 == status)
        .map_or(c"unknown", |s| s.1)
        .as_ptr()
}

/// What a status means, in a few words ("not a sessiond status" for a value that is not
/// one). Static.
#[no_mangle]
pub extern "C" fn sessiond_status_message(status: c_int) -> *const c_char {
    STATUSES
        .iter()
        .find(|s| s.0 == status)
        .map_or(c"not a sessiond status", |s| s.2)
        .as_ptr()
}

/// Connects to `addr` (`host:port`) within `timeout_ms` (also each later call's reply
/// timeout; 0 is refused). On success `*out` holds a new handle for `sessiond_free`; on
/// failure NULL.
///
/// # Safety
/// `addr` is NULL or a NUL-terminated string valid for the call; `out` is NULL or valid
/// for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn sessiond_connect(
    addr: *const c_char,
    timeout_ms: u32,
    out: *mut *mut SessiondClient,
) -> c_int {
    connect_into(out, addr, timeout_ms, |addr, timeout| {
        Ok(Client::connect(addr, timeout)?)
    })
}

/// Connects with TLS to `addr`, checking the certificate for `server_name` against the
/// CA certificates in the PEM file `ca_file`, or the system's roots when `ca_file` is
/// NULL; `flags` may hold [`SESSIOND_TLS_INSECURE_SKIP_VERIFY`] (other bits are refused).
/// `timeout_ms` is as for `sessiond_connect`. On success `*out` holds a new handle for
/// `sessiond_free`; on failure NULL. A certificate that is not trusted, or a `ca_file`
/// that cannot be loaded, gives `SESSIOND_ERR_TLS`.
///
/// # Safety
/// `addr`, `server_name` and `ca_file` are each NULL or a NUL-terminated string valid
/// for the call; `out` is NULL or valid for writing one pointer.
#[no_mangle]
pub unsafe extern "C" fn sessiond_connect_tls(
    addr: *const c_char,
    server_name: *const c_char,
    ca_file: *const c_char,
    flags: u32,
    timeout_ms: u32,
    out: *mut *mut SessiondClient,
) -> c_int {
    connect_into(out, addr, timeout_ms, |addr, timeout| {
        let name = text(server_name, "server_name")?;
        let unknown = flags & !SESSIOND_TLS_INSECURE_SKIP_VERIFY;
        if unknown != 0 {
            return Err(arg(format!("unknown flag bits 0x{unknown:x}")));
        }
        let trust = if flags & SESSIOND_TLS_INSECURE_SKIP_VERIFY != 0 {
            crate::tls::Trust::InsecureSkipVerify
        } else if ca_file.is_null() {
            crate::tls::Trust::SystemRoots
        } else {
            crate::tls::Trust::CaFile(text(ca_file, "ca_file")?.into())
        };
        let cfg = crate::tls::client_config(&trust)
            .map_err(|e| Fail::Status(SESSIOND_ERR_TLS, format!("TLS configuration: {e}")))?;
        Ok(Client::connect_tls(addr, name, cfg, timeout)?)
    })
}

/// REGISTER_REQUEST: creates an account (before logging in; the connection stays logged
/// out). `email` is a contact address (protocol.md 5.15: `name@domain.tld`).
/// `SESSIOND_ERR_REFUSED` when the server says no (name taken, password too short, email
/// not an address, registration closed: the reason is in `sessiond_last_error`).
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `username`, `password` and `email` are
/// each NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn sessiond_register(
    h: *mut SessiondClient,
    username: *const c_char,
    password: *const c_char,
    email: *const c_char,
) -> c_int {
    guard(|| {
        let h = handle(h)?;
        let (u, p) = (text(username, "username")?, text(password, "password")?);
        let email = text(email, "email")?;
        h.run(|c| match c.register(u, p, email)? {
            RegisterOutcome::Success(_) => Ok(SESSIOND_OK),
            RegisterOutcome::Failure(f) => Err(refused(format!(
                "registration refused: {}: {}",
                f.reason.name(),
                f.message
            ))),
        })
    })
}

/// LOGIN_REQUEST. `SESSIOND_ERR_REFUSED` when the server says no (the reason is in
/// `sessiond_last_error`); the connection stays open for another attempt.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `username`, `password`, `client_name`
/// and `platform` are each NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn sessiond_login(
    h: *mut SessiondClient,
    username: *const c_char,
    password: *const c_char,
    client_name: *const c_char,
    platform: *const c_char,
) -> c_int {
    guard(|| {
        let h = handle(h)?;
        let (u, p) = (text(username, "username")?, text(password, "password")?);
        let (cn, pl) = (
            text(client_name, "client_name")?,
            text(platform, "platform")?,
        );
        h.run(|c| match c.login(u, p, cn, pl)? {
            LoginOutcome::Success(_) => Ok(SESSIOND_OK),
            LoginOutcome::Failure(f) => Err(refused(format!(
                "login failed: {}: {}",
                f.reason.name(),
                f.message
            ))),
        })
    })
}

/// VERIFY_SESSION: resumes the session of a token in hex (64 digits, as `sessiond_token`
/// writes it) on this connection. `SESSIOND_ERR_SESSION_ENDED` when the token is dead (the
/// handle stays open: log in on it); `SESSIOND_ERR_REFUSED` when the session is in use on
/// another connection (the server then closes this one: later calls answer CLOSED). A
/// session that holds attributes is followed by its ATTRS push: `SESSIOND_EVENT_ATTRS`.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `token_hex`, `client_name` and
/// `platform` are each NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn sessiond_resume(
    h: *mut SessiondClient,
    token_hex: *const c_char,
    client_name: *const c_char,
    platform: *const c_char,
) -> c_int {
    guard(|| {
        let h = handle(h)?;
        let token = Token::from_hex(text(token_hex, "token_hex")?)
            .ok_or(arg("token_hex is not 64 hex digits"))?;
        let (cn, pl) = (
            text(client_name, "client_name")?,
            text(platform, "platform")?,
        );
        h.run(|c| match c.resume(&token, cn, pl)? {
            ResumeOutcome::Valid(_) => Ok(SESSIOND_OK),
            ResumeOutcome::Invalid(i) => Err(Fail::Status(
                SESSIOND_ERR_SESSION_ENDED,
                format!("session invalid: {}", i.reason.name()),
            )),
            ResumeOutcome::Duplicate(_) => {
                Err(refused("session in use on another connection".into()))
            }
        })
    })
}

/// Writes the session token as 64 hex digits and a NUL into `buf` (`len` >= 65,
/// `SESSIOND_TOKEN_SIZE`). After a connection end that did not end the session (CLOSED,
/// PROTOCOL) it still answers the token the handle had, for a resume on a new handle.
/// `SESSIOND_ERR_ARGUMENT` when not logged in. On failure `buf` holds "" (if `len` > 0).
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `buf` is NULL or valid for writing `len`
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn sessiond_token(
    h: *mut SessiondClient,
    buf: *mut c_char,
    len: usize,
) -> c_int {
    guard(|| {
        if !buf.is_null() && len > 0 {
            // SAFETY: non-NULL and writable for `len` > 0 bytes (the header's contract).
            unsafe { buf.write(0) };
        }
        let h = handle(h)?;
        if buf.is_null() || len < SESSIOND_TOKEN_SIZE {
            return Err(arg("buf must hold 65 bytes"));
        }
        let hex = h.session()?.0.to_hex();
        // SAFETY: `buf` is non-NULL and writable for `len` >= 65 bytes (checked above and
        // the header's contract); the slice does not outlive this call.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        fill(dst, &hex);
        Ok(SESSIOND_OK)
    })
}

/// Who the handle is logged in as: `*out` receives the session's SessionInfo (from the
/// login or resume). Like `sessiond_token`, it still answers after a connection end that
/// did not end the session. `SESSIOND_ERR_ARGUMENT` when not logged in. On failure `*out`
/// is all zero.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `out` is NULL or valid for writing one
/// [`SessiondIdentity`].
#[no_mangle]
pub unsafe extern "C" fn sessiond_whoami(
    h: *mut SessiondClient,
    out: *mut SessiondIdentity,
) -> c_int {
    guard(|| {
        // SAFETY: the contract above.
        let out = unsafe { Out::new(out) };
        out.clear();
        let h = handle(h)?;
        if out.is_null() {
            return Err(arg("out is NULL"));
        }
        out.set(SessiondIdentity::of(h.session()?.1));
        Ok(SESSIOND_OK)
    })
}

/// HEARTBEAT; `*server_time_ms` (if not NULL) receives the server's clock, Unix
/// milliseconds (0 on failure).
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `server_time_ms` is NULL or valid for
/// writing a `u64`.
#[no_mangle]
pub unsafe extern "C" fn sessiond_heartbeat(
    h: *mut SessiondClient,
    server_time_ms: *mut u64,
) -> c_int {
    guard(|| {
        // SAFETY: the contract above.
        let out = unsafe { Out::new(server_time_ms) };
        out.clear();
        let ack = handle(h)?.run(|c| Ok(c.heartbeat()?))?;
        out.set(ack.server_time);
        Ok(SESSIOND_OK)
    })
}

/// LIST_SESSIONS, as many pages as it takes: the first `cap` of the account's live
/// sessions, oldest first, and how many there are in all.
fn read_sessions(c: &mut Client, cap: usize) -> Result<(Vec<SessionEntry>, usize), Fail> {
    let mut got = Vec::new();
    let mut offset = 0u32;
    loop {
        // limit 0 would ask for a full page; with cap 0 one entry tells the total
        let want = (cap - got.len()).clamp(1, protocol::MAX_PAGE) as u16;
        let page = c.list_sessions(offset, want)?;
        let total = page.total as usize;
        let fresh = page.sessions.len();
        offset = offset.saturating_add(fresh as u32);
        got.extend(page.sessions.into_iter().take(cap - got.len()));
        if fresh == 0 || got.len() >= cap.min(total) {
            return Ok((got, total));
        }
    }
}

/// LIST_SESSIONS: fills `out` (the caller's array of `cap` entries) with the first `cap`
/// of the account's live sessions, oldest first, reading as many pages (100 each) as that
/// takes. `*count` = entries written; `*total` (if not NULL) = the account's live sessions
/// in all, so `*count < *total` means `out` was too small. `out` may be NULL when `cap`
/// is 0 (to learn the total). On failure `*count` and `*total` are 0 and `out` is not
/// written.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `out` is NULL or valid for writing
/// `cap` entries; `count` and `total` are each NULL or valid for writing a `usize`.
#[no_mangle]
pub unsafe extern "C" fn sessiond_list_sessions(
    h: *mut SessiondClient,
    out: *mut SessiondSession,
    cap: usize,
    count: *mut usize,
    total: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: the contract above.
        let (count, total) = unsafe { (Out::new(count), Out::new(total)) };
        count.clear();
        total.clear();
        let h = handle(h)?;
        if count.is_null() {
            return Err(arg("count is NULL"));
        }
        if out.is_null() && cap > 0 {
            return Err(arg("out is NULL but cap is not 0"));
        }
        let (list, all) = h.run(|c| read_sessions(c, cap))?;
        for (i, s) in list.iter().enumerate() {
            // SAFETY: `out` points to at least `cap` writable entries and `i < list.len()
            // <= cap`; `write` does not read or drop the (uninitialised) old value.
            unsafe { out.add(i).write(SessiondSession::of(s)) };
        }
        count.set(list.len());
        total.set(all);
        Ok(SESSIOND_OK)
    })
}

/// REVOKE_SESSION: ends one of the account's sessions (`session_id` from
/// `sessiond_list_sessions`). `SESSIOND_ERR_REFUSED` (`FORBIDDEN`) when it is not one of
/// them. Revoking this handle's own session answers OK; the server then ends the
/// connection, and later calls answer `SESSIOND_ERR_SESSION_ENDED`.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn sessiond_revoke_session(h: *mut SessiondClient, session_id: u64) -> c_int {
    guard(|| {
        handle(h)?.run(|c| Ok(c.revoke_session(session_id)?))?;
        Ok(SESSIOND_OK)
    })
}

/// LOGOUT_ALL: ends the account's other sessions, and with
/// `SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT` in `flags` this one too (then the handle is logged
/// out, as after `sessiond_logout`, and may log in again). Other flag bits are refused.
/// `*ended` (if not NULL) = sessions ended (0 on failure).
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `ended` is NULL or valid for writing a
/// `u32`.
#[no_mangle]
pub unsafe extern "C" fn sessiond_logout_all(
    h: *mut SessiondClient,
    flags: u32,
    ended: *mut u32,
) -> c_int {
    guard(|| {
        // SAFETY: the contract above.
        let ended = unsafe { Out::new(ended) };
        ended.clear();
        let h = handle(h)?;
        let unknown = flags & !SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT;
        if unknown != 0 {
            return Err(arg(format!("unknown flag bits 0x{unknown:x}")));
        }
        let scope = if flags & SESSIOND_LOGOUT_ALL_INCLUDE_CURRENT != 0 {
            LogoutScope::All
        } else {
            LogoutScope::Others
        };
        ended.set(h.run(|c| Ok(c.logout_all(scope)?))?);
        Ok(SESSIOND_OK)
    })
}

/// CHANGE_PASSWORD: the account's other sessions end; this one stays. `*revoked` (if not
/// NULL) = sessions ended (0 on failure). `SESSIOND_ERR_REFUSED` for a wrong old password
/// (`WRONG_PASSWORD`) or a new one the server does not accept (`INVALID_ARGUMENT`).
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `old_password` and `new_password` are
/// each NULL or a NUL-terminated string valid for the call; `revoked` is NULL or valid for
/// writing a `u32`.
#[no_mangle]
pub unsafe extern "C" fn sessiond_change_password(
    h: *mut SessiondClient,
    old_password: *const c_char,
    new_password: *const c_char,
    revoked: *mut u32,
) -> c_int {
    guard(|| {
        // SAFETY: the contract above.
        let revoked = unsafe { Out::new(revoked) };
        revoked.clear();
        let h = handle(h)?;
        let old = text(old_password, "old_password")?;
        let new = text(new_password, "new_password")?;
        if old.len().max(new.len()) > protocol::MAX_PASSWORD {
            return Err(arg("a password is longer than 1024 bytes"));
        }
        revoked.set(h.run(|c| Ok(c.change_password(old, new)?))?);
        Ok(SESSIOND_OK)
    })
}

/// An attribute key argument: 1 to 64 bytes of UTF-8 (the client would cut a longer one).
fn attr_key<'a>(p: *const c_char) -> Result<&'a str, Fail> {
    let key = text(p, "key")?;
    if key.is_empty() || key.len() > SESSIOND_ATTR_KEY_MAX {
        return Err(arg(format!(
            "key must be 1 to {SESSIOND_ATTR_KEY_MAX} bytes (it is {})",
            key.len()
        )));
    }
    Ok(key)
}

/// ATTR_SET: sets attribute `key` of this session to the `len` bytes at `value` (any bytes,
/// NUL included; `value` may be NULL when `len` is 0), replacing its value; durable when
/// it returns. `SESSIOND_ERR_ARGUMENT` for a key that is not 1 to 64 bytes of UTF-8 or a
/// value over 3,904 bytes; `SESSIOND_ERR_REFUSED` (`LIMIT_EXCEEDED` in
/// `sessiond_last_error`) when the session would hold more than 64 attributes or 4,096
/// bytes of keys and values (nothing changed).
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `key` is NULL or a NUL-terminated string
/// valid for the call; `value` is NULL or valid for reading `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn sessiond_set_attr(
    h: *mut SessiondClient,
    key: *const c_char,
    value: *const c_void,
    len: usize,
) -> c_int {
    guard(|| {
        let h = handle(h)?;
        let key = attr_key(key)?;
        if len > SESSIOND_ATTR_VALUE_MAX {
            return Err(arg(format!(
                "value is {len} bytes, longer than {SESSIOND_ATTR_VALUE_MAX}"
            )));
        }
        let value: &[u8] = match (value.is_null(), len) {
            (_, 0) => &[],
            (true, _) => return Err(arg("value is NULL but len is not 0")),
            // SAFETY: non-NULL and readable for `len` bytes (the contract above); the slice
            // does not outlive this call.
            (false, _) => unsafe { std::slice::from_raw_parts(value.cast::<u8>(), len) },
        };
        h.run(|c| Ok(c.set_attr(key, value)?))?;
        Ok(SESSIOND_OK)
    })
}

/// ATTR_GET of one key: copies its value into `buf` (`cap` bytes) and its size into
/// `*len`; when `cap > *len` a NUL follows it (handy for text; a value may hold NULs of its
/// own). `SESSIOND_NOT_SET` when the session holds no such key (`*len` 0; not a failure).
/// A `cap` below the value's size: `SESSIOND_ERR_ARGUMENT` with `*len` = the size needed
/// and `buf` not written (`buf` may be NULL with `cap` 0, to ask for the size). `buf` is
/// written only on `SESSIOND_OK`; after every other answer `*len` is 0.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `key` is NULL or a NUL-terminated string
/// valid for the call; `buf` is NULL or valid for writing `cap` bytes; `len` is NULL or
/// valid for writing a `usize`.
#[no_mangle]
pub unsafe extern "C" fn sessiond_get_attr(
    h: *mut SessiondClient,
    key: *const c_char,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: the contract above.
        let len = unsafe { Out::new(len) };
        len.clear();
        let h = handle(h)?;
        if len.is_null() {
            return Err(arg("len is NULL"));
        }
        let key = attr_key(key)?;
        if buf.is_null() && cap > 0 {
            return Err(arg("buf is NULL but cap is not 0"));
        }
        let attrs = h.run(|c| Ok(c.get_attrs(key)?))?;
        let Some((_, value)) = attrs.into_iter().find(|(k, _)| k == key) else {
            return Ok(SESSIOND_NOT_SET);
        };
        if value.len() > cap {
            len.set(value.len());
            return Err(arg(format!(
                "buf too small: cap is {cap} bytes, the value is {}",
                value.len()
            )));
        }
        if !value.is_empty() {
            // SAFETY: `buf` is non-NULL (cap >= value.len() > 0, checked above) and
            // writable for `cap` bytes (the contract above); `value` is our own vector, so
            // the two do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), buf.cast::<u8>(), value.len()) };
        }
        if cap > value.len() {
            // SAFETY: `value.len() < cap`, inside the caller's `cap` writable bytes, and
            // `buf` is non-NULL since `cap > 0`.
            unsafe { buf.cast::<u8>().add(value.len()).write(0) };
        }
        len.set(value.len());
        Ok(SESSIOND_OK)
    })
}

/// ATTR_REMOVE: removes attribute `key` of this session (durable when it returns).
/// `*removed` (if not NULL) = 1 if it was set, 0 if not (and 0 on failure).
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `key` is NULL or a NUL-terminated string
/// valid for the call; `removed` is NULL or valid for writing a `c_int`.
#[no_mangle]
pub unsafe extern "C" fn sessiond_remove_attr(
    h: *mut SessiondClient,
    key: *const c_char,
    removed: *mut c_int,
) -> c_int {
    guard(|| {
        // SAFETY: the contract above.
        let removed = unsafe { Out::new(removed) };
        removed.clear();
        let h = handle(h)?;
        let key = attr_key(key)?;
        let was = h.run(|c| Ok(c.remove_attr(key)?))?;
        removed.set(c_int::from(was));
        Ok(SESSIOND_OK)
    })
}

/// LOGOUT_REQUEST: ends the session; the connection stays open for another login.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn sessiond_logout(h: *mut SessiondClient) -> c_int {
    guard(|| {
        handle(h)?.run(|c| Ok(c.logout()?))?;
        Ok(SESSIOND_OK)
    })
}

/// DISCONNECT_REQUEST, then close. The session survives (`sessiond_token` still gives its
/// token, to resume it later). The handle stays valid (later calls answer
/// `SESSIOND_ERR_CLOSED`) until `sessiond_free`.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn sessiond_disconnect(h: *mut SessiondClient) -> c_int {
    guard(|| {
        let h = handle(h)?;
        h.run(|c| {
            let reply = c.request(Message::DisconnectRequest(DisconnectRequest))?;
            match reply.message {
                Message::DisconnectAck(_) => Ok(()),
                _ => Err(ClientError::Unexpected(Box::new(reply)).into()),
            }
        })?;
        let why = "disconnected by sessiond_disconnect".to_owned();
        // The server closes after DISCONNECT_ACK, so `run` has usually ended the handle
        // already, in the server's words; this end was ours.
        let mut over = match &mut h.state {
            State::Over(o) => {
                o.why = why;
                return Ok(SESSIOND_OK);
            }
            State::Open(c) => Over::of(c, None),
        };
        over.why = why;
        h.state = State::Over(over);
        Ok(SESSIOND_OK)
    })
}

/// Waits up to `timeout_ms` for a push (heartbeats go out meanwhile; 0: no waiting, only
/// what has already arrived) and describes it in `*ev`: `SESSIOND_OK` with an event,
/// `SESSIOND_NO_EVENT` if none came (`*ev` then all zero, as on failure). The pushes that
/// arrived before the connection ended, the one that ended it included (REVOKED, EXPIRED,
/// DISCONNECTED), are delivered first, each once, even when another call has already
/// answered the end; then the handle's end status is the answer.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `ev` is NULL or valid for writing one
/// [`SessiondEvent`].
#[no_mangle]
pub unsafe extern "C" fn sessiond_next_event(
    h: *mut SessiondClient,
    timeout_ms: u32,
    ev: *mut SessiondEvent,
) -> c_int {
    guard(|| {
        // SAFETY: the contract above.
        let ev = unsafe { Out::new(ev) };
        ev.clear();
        let h = handle(h)?;
        if ev.is_null() {
            return Err(arg("ev is NULL"));
        }
        // 0 still reads what is already in the socket: one millisecond at most.
        let wait = Duration::from_millis(u64::from(timeout_ms.max(1)));
        let frame = match h.pop_push() {
            Some(f) => f,
            None => match h.run(|c| Ok(c.wait_push(wait)?)) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(SESSIOND_NO_EVENT),
                Err(fail) => h.pop_push().ok_or(fail)?,
            },
        };
        ev.set(SessiondEvent::of(&frame));
        Ok(SESSIOND_OK)
    })
}

/// Releases a handle from `sessiond_connect` or `sessiond_connect_tls` (closing its
/// connection if still open). NULL is ignored. The handle must not be used afterwards.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is not
/// yet freed and not in use by another thread; it is not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn sessiond_free(h: *mut SessiondClient) {
    if h.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: a non-NULL handle comes from `Box::into_raw` in `connect_into` (both
        // connect calls) and is freed exactly once (the header's contract).
        drop(unsafe { Box::from_raw(h) });
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_arguments_are_refused_not_dereferenced() {
        // SAFETY: NULL pointers are part of the contract (refused).
        let st = unsafe { sessiond_connect(std::ptr::null(), 10, std::ptr::null_mut()) };
        assert_eq!(st, SESSIOND_ERR_ARGUMENT);
        // SAFETY: the library's NUL-terminated error string, read before the next call.
        let msg = unsafe { CStr::from_ptr(sessiond_last_error()) };
        assert_eq!(msg.to_str().unwrap(), "out is NULL");
        // SAFETY: NULL handles are part of the contract (refused, or ignored by free).
        unsafe {
            let st = sessiond_heartbeat(std::ptr::null_mut(), std::ptr::null_mut());
            assert_eq!(st, SESSIOND_ERR_ARGUMENT);
            assert_eq!(sessiond_logout(std::ptr::null_mut()), SESSIOND_ERR_ARGUMENT);
            sessiond_free(std::ptr::null_mut());
        }
    }

    #[test]
    fn a_refused_connection_is_a_network_error_and_clears_out() {
        // a stale value, to be cleared
        let mut h = std::ptr::dangling_mut::<SessiondClient>();
        // port 1 on loopback: nothing listens there
        let addr = CString::new("127.0.0.1:1").unwrap();
        // SAFETY: a valid C string and a valid out pointer.
        let st = unsafe { sessiond_connect(addr.as_ptr(), 1000, &mut h) };
        assert_eq!(st, SESSIOND_ERR_NETWORK);
        assert!(h.is_null());
        // SAFETY: as above; a zero timeout is refused before any connection is tried.
        let st = unsafe { sessiond_connect(addr.as_ptr(), 0, &mut h) };
        assert_eq!(st, SESSIOND_ERR_ARGUMENT);
    }

    #[test]
    fn every_status_has_a_name_and_a_meaning() {
        for (i, (status, name, meaning)) in STATUSES.iter().enumerate() {
            assert_eq!(*status, i as c_int, "statuses are 0..=11 in order");
            // SAFETY: static NUL-terminated strings.
            let got = unsafe { CStr::from_ptr(sessiond_status_name(*status)) };
            assert_eq!(got, *name);
            assert!(!meaning.is_empty());
            let (n, v) = HEADER_CONSTANTS[i];
            assert_eq!((n, v), (name.to_str().unwrap(), i64::from(*status)));
        }
        // SAFETY: static NUL-terminated strings.
        let unknown = unsafe { CStr::from_ptr(sessiond_status_name(-1)) };
        assert_eq!(unknown, c"unknown");
    }

    #[test]
    fn role_constants_are_the_wire_values() {
        use crate::protocol::Role;
        assert_eq!(SESSIOND_ROLE_USER, c_int::from(Role::User.to_u8()));
        assert_eq!(SESSIOND_ROLE_ADMIN, c_int::from(Role::Admin.to_u8()));
    }

    #[test]
    fn fill_cuts_on_a_character_boundary() {
        let mut buf = [1 as c_char; 4];
        fill(&mut buf, "aéz");
        assert_eq!(buf.map(|b| b as u8), [b'a', 0xc3, 0xa9, 0]);
        fill(&mut buf, "abcdé");
        assert_eq!(buf.map(|b| b as u8), [b'a', b'b', b'c', 0]);
    }
}
