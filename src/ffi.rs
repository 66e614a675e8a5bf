//! The C ABI: an opaque client handle over the blocking [`Client`], for test harnesses
//! written in C. The header is `examples/c/sessiond.h`; `examples/c/harness.c` uses it.
//!
//! Rules every function here follows:
//! - Pointers are checked: a NULL where one is required answers `SESSIOND_ERR_ARGUMENT`.
//!   Strings are NUL-terminated UTF-8, borrowed for the duration of the call only.
//! - Nothing unwinds across the boundary: each body runs under `catch_unwind`, and a panic
//!   answers `SESSIOND_ERR_PANIC`.
//! - Every function but `sessiond_last_error` and `sessiond_free` returns a status
//!   (`SESSIOND_OK` = 0); on failure `sessiond_last_error` describes it (kept per thread).
//! - Memory: the handle is allocated by `sessiond_connect` or `sessiond_connect_tls` and
//!   released by `sessiond_free` (exactly once); every other buffer is the caller's, with
//!   its capacity passed in.
//!
//! `unsafe` lives only in this module, each block with its SAFETY argument.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::client::{Client, ClientError, LoginOutcome, ResumeOutcome};
use crate::protocol::{Message, Token};

/// Status: the call succeeded.
pub const SESSIOND_OK: c_int = 0;
/// Status: a bad argument (a NULL pointer, a string that is not UTF-8 or too long, a token
/// that is not 64 hex digits, a buffer too small), or a call that needs a session when
/// there is none (not logged in).
pub const SESSIOND_ERR_ARGUMENT: c_int = 1;
/// Status: the connection could not be made, or it broke.
pub const SESSIOND_ERR_NETWORK: c_int = 2;
/// Status: no reply in time, or the server stopped answering heartbeats.
pub const SESSIOND_ERR_TIMEOUT: c_int = 3;
/// Status: the server said no (a login failure, a GENERAL_FAILURE such as `FORBIDDEN`, a
/// session in use on another connection).
pub const SESSIOND_ERR_REFUSED: c_int = 4;
/// Status: the session was revoked or expired, or the token given to `sessiond_resume` is
/// dead.
pub const SESSIOND_ERR_SESSION_ENDED: c_int = 5;
/// Status: the server sent a frame that does not decode, or a reply this call does not
/// expect.
pub const SESSIOND_ERR_PROTOCOL: c_int = 6;
/// Status: an internal error (a panic), caught at the boundary.
pub const SESSIOND_ERR_PANIC: c_int = 7;
/// Status of `sessiond_next_event`: no push arrived in time.
pub const SESSIOND_NO_EVENT: c_int = 8;
/// Status: the connection is closed (by `sessiond_disconnect`, or by the server).
pub const SESSIOND_ERR_CLOSED: c_int = 9;
/// Status: TLS failed: the certificate is not trusted, the name does not match, the peer
/// does not speak TLS, or the TLS configuration (`ca_file`) could not be loaded.
pub const SESSIOND_ERR_TLS: c_int = 10;

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

/// Text fields of the C structs: up to 64 bytes of UTF-8 and a NUL.
pub const SESSIOND_TEXT: usize = 65;

/// The opaque handle (`sessiond_client` in C).
pub struct SessiondClient {
    /// None after `sessiond_disconnect`.
    client: Option<Client>,
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

/// A push from the server (`sessiond_event` in C).
#[repr(C)]
pub struct SessiondEvent {
    /// One of the `SESSIOND_EVENT_*` kinds.
    pub kind: c_int,
    /// The protocol's reason code (revocation, expiry, disconnect), 0 if none.
    pub reason: u32,
    /// The session it is about (the new one for NEW_LOGIN), 0 if none.
    pub session_id: u64,
    /// Plain words about it, NUL-terminated, cut to fit.
    pub detail: [c_char; 257],
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// A failure: its status and message.
struct Fail(c_int, String);

impl From<ClientError> for Fail {
    fn from(e: ClientError) -> Self {
        let status = match &e {
            ClientError::Io(_) => SESSIOND_ERR_NETWORK,
            ClientError::Timeout => SESSIOND_ERR_TIMEOUT,
            ClientError::Closed(_) => SESSIOND_ERR_CLOSED,
            ClientError::Server { .. } => SESSIOND_ERR_REFUSED,
            ClientError::Decode(_) | ClientError::Unexpected(_) => SESSIOND_ERR_PROTOCOL,
            ClientError::Revoked(_) | ClientError::Expired(_) => SESSIOND_ERR_SESSION_ENDED,
            ClientError::Usage(_) => SESSIOND_ERR_ARGUMENT,
            ClientError::Tls(_) => SESSIOND_ERR_TLS,
        };
        Fail(status, e.to_string())
    }
}

fn arg(msg: &str) -> Fail {
    Fail(SESSIOND_ERR_ARGUMENT, msg.to_owned())
}

/// Runs `f` with panics caught, turning its outcome into a status and the error message.
fn guard(f: impl FnOnce() -> Result<c_int, Fail>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(status)) => status,
        Ok(Err(Fail(status, msg))) => {
            set_error(&msg);
            status
        }
        Err(_) => {
            set_error("internal error (a panic was caught at the C boundary)");
            SESSIOND_ERR_PANIC
        }
    }
}

/// Borrows a C string argument.
fn text<'a>(p: *const c_char, name: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(arg(&format!("{name} is NULL")));
    }
    // SAFETY: the caller passes a NUL-terminated string that stays valid for this call
    // (the header's contract); NULL was excluded above.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| arg(&format!("{name} is not UTF-8")))
}

/// The connected client behind a handle.
fn client<'a>(h: *mut SessiondClient) -> Result<&'a mut Client, Fail> {
    if h.is_null() {
        return Err(arg("client handle is NULL"));
    }
    // SAFETY: a non-NULL handle comes from `sessiond_connect` and has not been freed (the
    // header's contract); the caller does not use one handle from two threads at once.
    let h = unsafe { &mut *h };
    h.client
        .as_mut()
        .ok_or(Fail(SESSIOND_ERR_CLOSED, "disconnected".into()))
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

/// The connect calls' common part: checks `out` and `addr`, runs `connect` with the
/// address and the timeout, and hands the client out through `out`.
fn connect_into(
    out: *mut *mut SessiondClient,
    addr: *const c_char,
    timeout_ms: u32,
    connect: impl FnOnce(&str, Duration) -> Result<Client, Fail>,
) -> c_int {
    guard(|| {
        if out.is_null() {
            return Err(arg("out is NULL"));
        }
        let addr = text(addr, "addr")?;
        let timeout = Duration::from_millis(timeout_ms.max(1) as u64);
        let client = connect(addr, timeout)?;
        let h = Box::into_raw(Box::new(SessiondClient {
            client: Some(client),
        }));
        // SAFETY: `out` is non-NULL (checked above) and points to writable storage for one
        // pointer (the header's contract).
        unsafe { *out = h };
        Ok(SESSIOND_OK)
    })
}

/// The message of the last failed call on this thread (an empty string if none). Valid
/// until the next `sessiond_*` call on the same thread; owned by the library.
#[no_mangle]
pub extern "C" fn sessiond_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Connects to `addr` (`host:port`) within `timeout_ms` (also each later call's reply
/// timeout). On success `*out` holds a new handle for `sessiond_free`.
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

/// `sessiond_connect_tls` flag: do not check the server's certificate. Testing only:
/// anyone on the path could then read passwords and tokens.
pub const SESSIOND_TLS_INSECURE_SKIP_VERIFY: u32 = 1;

/// Connects with TLS to `addr`, checking the certificate for `server_name` against the
/// CA certificates in the PEM file `ca_file`, or the system's roots when `ca_file` is
/// NULL; `flags` may hold [`SESSIOND_TLS_INSECURE_SKIP_VERIFY`]. `timeout_ms` is as for
/// `sessiond_connect`. On success `*out` holds a new handle for `sessiond_free`. A
/// certificate that is not trusted, or a `ca_file` that cannot be loaded, gives
/// `SESSIOND_ERR_TLS`.
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
        let trust = if flags & SESSIOND_TLS_INSECURE_SKIP_VERIFY != 0 {
            crate::tls::Trust::InsecureSkipVerify
        } else if ca_file.is_null() {
            crate::tls::Trust::SystemRoots
        } else {
            crate::tls::Trust::CaFile(text(ca_file, "ca_file")?.into())
        };
        let cfg = crate::tls::client_config(&trust)
            .map_err(|e| Fail(SESSIOND_ERR_TLS, format!("TLS configuration: {e}")))?;
        Ok(Client::connect_tls(addr, name, cfg, timeout)?)
    })
}

/// LOGIN_REQUEST. `SESSIOND_ERR_REFUSED` when the server says no (the reason is in
/// `sessiond_last_error`).
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
        let (u, p) = (text(username, "username")?, text(password, "password")?);
        let (cn, pl) = (
            text(client_name, "client_name")?,
            text(platform, "platform")?,
        );
        match client(h)?.login(u, p, cn, pl)? {
            LoginOutcome::Success(_) => Ok(SESSIOND_OK),
            LoginOutcome::Failure(f) => Err(Fail(
                SESSIOND_ERR_REFUSED,
                format!("login failed: {}: {}", f.reason.name(), f.message),
            )),
        }
    })
}

/// VERIFY_SESSION: resumes the session of a token in hex (64 digits, as `sessiond_token`
/// writes it) on this connection. `SESSIOND_ERR_SESSION_ENDED` when the token is dead;
/// `SESSIOND_ERR_REFUSED` when the session is in use on another connection (the server
/// then closes this one).
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
        let token = Token::from_hex(text(token_hex, "token_hex")?)
            .ok_or(arg("token_hex is not 64 hex digits"))?;
        let (cn, pl) = (
            text(client_name, "client_name")?,
            text(platform, "platform")?,
        );
        match client(h)?.resume(&token, cn, pl)? {
            ResumeOutcome::Valid(_) => Ok(SESSIOND_OK),
            ResumeOutcome::Invalid(i) => Err(Fail(
                SESSIOND_ERR_SESSION_ENDED,
                format!("session invalid: {}", i.reason.name()),
            )),
            ResumeOutcome::Duplicate(_) => Err(Fail(
                SESSIOND_ERR_REFUSED,
                "session in use on another connection".into(),
            )),
        }
    })
}

/// Writes the session token as 64 hex digits and a NUL into `buf` (`len` >= 65).
/// `SESSIOND_ERR_ARGUMENT` when not logged in.
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
        if buf.is_null() || len < 65 {
            return Err(arg("buf must hold 65 bytes"));
        }
        let hex = client(h)?
            .token()
            .map(Token::to_hex)
            .ok_or(arg("not logged in"))?;
        // SAFETY: `buf` is non-NULL and writable for `len` >= 65 bytes (checked above and
        // the header's contract); the slice does not outlive this call.
        let dst = unsafe { std::slice::from_raw_parts_mut(buf, len) };
        fill(dst, &hex);
        Ok(SESSIOND_OK)
    })
}

/// HEARTBEAT; `*server_time_ms` (if not NULL) receives the server's clock, Unix
/// milliseconds.
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
        let ack = client(h)?.heartbeat()?;
        if !server_time_ms.is_null() {
            // SAFETY: non-NULL, and points to a writable u64 (the header's contract).
            unsafe { *server_time_ms = ack.server_time };
        }
        Ok(SESSIOND_OK)
    })
}

/// LIST_SESSIONS: fills up to `cap` entries of `out` (the caller's array) with the
/// account's live sessions, oldest first (one page: at most 100), and sets `*count` to how
/// many were written. `out` may be NULL when `cap` is 0.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread; `out` is NULL or valid for writing
/// `cap` entries; `count` is NULL or valid for writing a `usize`.
#[no_mangle]
pub unsafe extern "C" fn sessiond_list_sessions(
    h: *mut SessiondClient,
    out: *mut SessiondSession,
    cap: usize,
    count: *mut usize,
) -> c_int {
    guard(|| {
        if count.is_null() || (out.is_null() && cap > 0) {
            return Err(arg("out or count is NULL"));
        }
        let list = client(h)?.list_sessions(0, 0)?;
        let n = list.sessions.len().min(cap);
        for (i, s) in list.sessions.iter().take(n).enumerate() {
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
            // SAFETY: `out` points to at least `cap` writable entries and `i < n <= cap`;
            // `write` does not read or drop the (uninitialised) old value.
            unsafe { out.add(i).write(e) };
        }
        // SAFETY: non-NULL (checked above), points to a writable size_t.
        unsafe { *count = n };
        Ok(SESSIOND_OK)
    })
}

/// LOGOUT_REQUEST: ends the session; the connection stays open.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn sessiond_logout(h: *mut SessiondClient) -> c_int {
    guard(|| {
        client(h)?.logout()?;
        Ok(SESSIOND_OK)
    })
}

/// DISCONNECT_REQUEST, then close. The session survives (resume it later). The handle
/// stays valid (later calls answer `SESSIOND_ERR_CLOSED`) until `sessiond_free`.
///
/// # Safety
/// `h` is NULL or a handle from `sessiond_connect` or `sessiond_connect_tls` that is
/// not yet freed and not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn sessiond_disconnect(h: *mut SessiondClient) -> c_int {
    guard(|| {
        client(h)?;
        // SAFETY: as in `client`: a live handle from `sessiond_connect`.
        let c = unsafe { &mut *h }
            .client
            .take()
            .ok_or(arg("disconnected"))?;
        c.disconnect()?;
        Ok(SESSIOND_OK)
    })
}

/// Waits up to `timeout_ms` for a push (heartbeats go out meanwhile) and describes it in
/// `*ev`: `SESSIOND_OK` with an event, `SESSIOND_NO_EVENT` if none came. A push that ends
/// the session or the connection is reported as its event too.
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
        if ev.is_null() {
            return Err(arg("ev is NULL"));
        }
        let c = client(h)?;
        let frame = match c.wait_push(Duration::from_millis(timeout_ms as u64)) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(SESSIOND_NO_EVENT),
            // A push that ends the session or the connection is kept in the queue too.
            Err(
                e @ (ClientError::Revoked(_) | ClientError::Expired(_) | ClientError::Closed(_)),
            ) => match c.take_pushes().pop() {
                Some(f) => f,
                None => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        let (kind, reason, session_id, detail) = match &frame.message {
            Message::NewLogin(n) => (
                SESSIOND_EVENT_NEW_LOGIN,
                0,
                n.session_id,
                format!("new login: {} {} from {}", n.client, n.platform, n.address),
            ),
            Message::SessionRevoked(r) => (
                SESSIOND_EVENT_REVOKED,
                r.reason.to_u16() as u32,
                r.session_id,
                crate::client::describe_revoked(r),
            ),
            Message::SessionExpired(x) => (
                SESSIOND_EVENT_EXPIRED,
                x.reason.to_u16() as u32,
                x.session_id,
                crate::client::describe_expired(x),
            ),
            Message::ServerShutdown(x) => (
                SESSIOND_EVENT_SHUTDOWN,
                0,
                0,
                format!("server shutting down: {}", x.message),
            ),
            Message::DisconnectAck(d) => (
                SESSIOND_EVENT_DISCONNECTED,
                d.reason.to_u16() as u32,
                0,
                format!("disconnected: {}", d.reason.name()),
            ),
            other => (SESSIOND_EVENT_OTHER, 0, 0, other.opcode().name().to_owned()),
        };
        let mut out = SessiondEvent {
            kind,
            reason,
            session_id,
            detail: [0; 257],
        };
        fill(&mut out.detail, &detail);
        // SAFETY: non-NULL (checked above), points to a writable sessiond_event.
        unsafe { ev.write(out) };
        Ok(SESSIOND_OK)
    })
}

/// Releases a handle from `sessiond_connect` or `sessiond_connect_tls` (closing its
/// connection if still open).
/// NULL is ignored. The handle must not be used afterwards.
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
    fn a_refused_connection_is_a_network_error() {
        let mut h = std::ptr::null_mut();
        // port 1 on loopback: nothing listens there
        let addr = CString::new("127.0.0.1:1").unwrap();
        // SAFETY: a valid C string and a valid out pointer.
        let st = unsafe { sessiond_connect(addr.as_ptr(), 1000, &mut h) };
        assert_eq!(st, SESSIOND_ERR_NETWORK);
        assert!(h.is_null());
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
