//! One connection as the engine sees it: its key, its state in protocol.md section 4 (one
//! enum, each state carrying what it needs), its buffers and its deadline timer.
//!
//! Owns what one connection is and the legal moves between its states: every change of
//! [`ConnState`] is one of the transition methods on [`Conn`] below. Which message causes
//! which move is the engine's one (state, message) match; the engine also owns the tables
//! a move touches (sessions, timers, the login policy). Nothing here does I/O.

mod bufs;
mod peer;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Instant;

pub use bufs::{BufPool, IoBufs};
pub use peer::Peer;

use crate::timer::TimerId;

/// A connection's key: its slab index plus a generation, so an event or a hash result for
/// a connection that has since closed (its slot reused) is recognised and dropped
/// (h2's `Key { index, stream_id }` ABA guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// The connection's slot in the engine's slab.
    pub index: u32,
    /// Never 0, so `Option<ConnId>` is 8 bytes (a session record keeps one).
    pub generation: NonZeroU32,
}

impl ConnId {
    /// Packs into one u64 (mio tokens, hash job tickets).
    pub fn to_u64(self) -> u64 {
        (u64::from(self.generation.get()) << 32) | u64::from(self.index)
    }

    /// The id `to_u64` packed; None for a value no connection packs to (generation 0:
    /// the server's own tokens).
    pub fn from_u64(v: u64) -> Option<ConnId> {
        Some(ConnId {
            index: v as u32,
            generation: NonZeroU32::new((v >> 32) as u32)?,
        })
    }
}

/// Where a connection is in protocol.md section 4.
///
/// ```text
///                  TCP accept
///                      |
///                      v        login deadline runs
///      +-------> AwaitingAuth --------------------------------------+
///      |          |   ^    |  ^                                     | login deadline:
///      | LOGIN_   |   |    |  | VERIFY_SESSION: SESSION_INVALID     |  DISCONNECT_ACK
///      | REQUEST, |   |    +--+ (no hash)                           |  (LOGIN_TIMEOUT)
///      | REGISTER_|   | LOGIN_FAILURE,                              |
///      | REQUEST  |   | REGISTER_SUCCESS, REGISTER_FAILURE          |
///      |          v   |                                             |
///      |    Authenticating (hash on a worker; input left unread)    |
///      |          |                                                 |
///      | LOGIN_SUCCESS        VERIFY_SESSION: SESSION_VALID         |
///      |          v           (from AwaitingAuth)                   |
///      |       Active <-- HEARTBEAT / HEARTBEAT_ACK, management     |
///      |        |   ^                                               |
///      |  CHANGE_   | DONE, or an error                             |
///      |  PASSWORD  |                                               |
///      |        v   |                                               |
///      |   ChangingPassword (hash on a worker; input left unread)   |
///      |                                                            |
///      +-- LOGOUT_SUCCESS (from Active)                             v
///   any state --DISCONNECT_REQUEST, any FATAL frame, shutdown--> Closing
///   (heartbeat timeout, SESSION_REVOKED, SESSION_EXPIRED, DUPLICATE_SESSION, fatal
///   errors); the output is flushed, then the socket closes
/// ```
///
/// A hash runs for the connection exactly while it is in `Authenticating` or
/// `ChangingPassword`, and counts against its address (`LoginPolicy::hash_done` when it
/// leaves: [`Conn::close`] and the `end_*` transitions say so).
#[derive(Debug)]
pub enum ConnState {
    /// Waiting for LOGIN_REQUEST, REGISTER_REQUEST or VERIFY_SESSION until `deadline`,
    /// the login deadline (protocol.md 7).
    AwaitingAuth {
        /// When the connection is closed with LOGIN_TIMEOUT if nobody has logged in.
        deadline: Instant,
    },
    /// A password is being hashed on a worker (a login or a registration). Input stays
    /// buffered, unread, until the answer comes, so frames pipelined behind the request
    /// keep their order.
    Authenticating(Box<PendingAuth>),
    /// Logged in to `session_id`.
    Active {
        /// The session this connection is bound to.
        session_id: u64,
    },
    /// Logged in, with CHANGE_PASSWORD's hash running on a worker: nothing more is read
    /// until it is answered.
    ChangingPassword {
        /// The session this connection is bound to.
        session_id: u64,
        /// CHANGE_PASSWORD's request id, echoed by its answer.
        request_id: u32,
    },
    /// The last frame is queued; the socket closes once output is flushed.
    Closing,
}

/// What the engine remembers while a login's or a registration's password hash is under
/// way for a connection.
#[derive(Debug)]
pub struct PendingAuth {
    /// The request's id, echoed by its answer.
    pub request_id: u32,
    /// Login or registration.
    pub kind: PendingKind,
    /// The username given.
    pub username: String,
    /// LOGIN_REQUEST's `client` (empty for a registration).
    pub client: String,
    /// LOGIN_REQUEST's `platform` (empty for a registration).
    pub platform: String,
    /// The login deadline still in force if this fails.
    pub deadline: Instant,
}

/// Which request is waiting for its hash.
#[derive(Debug)]
pub enum PendingKind {
    /// LOGIN_REQUEST: verifying; `user_id` is None for an unknown username (a dummy hash
    /// runs instead, at the same cost).
    Login {
        /// The account named, if it exists.
        user_id: Option<u64>,
        /// Which of its password records the hash checks (a stamp of it): a password
        /// changed or reset while the hash ran makes the result stale.
        record_stamp: u64,
    },
    /// REGISTER_REQUEST: hashing the new password.
    Register {
        /// The new account's email address.
        email: String,
    },
}

impl ConnState {
    /// The state's name in protocol.md.
    pub fn name(&self) -> &'static str {
        match self {
            ConnState::AwaitingAuth { .. } => "AWAITING_AUTH",
            ConnState::Authenticating(_) => "AUTHENTICATING",
            ConnState::Active { .. } => "ACTIVE",
            ConnState::ChangingPassword { .. } => "ACTIVE (changing password)",
            ConnState::Closing => "CLOSING",
        }
    }

    /// Whether frames are taken from the input buffer in this state.
    pub fn reads_frames(&self) -> bool {
        matches!(
            self,
            ConnState::AwaitingAuth { .. } | ConnState::Active { .. }
        )
    }

    /// Whether a password hash runs for the connection in this state.
    fn hashing(&self) -> bool {
        matches!(
            self,
            ConnState::Authenticating(_) | ConnState::ChangingPassword { .. }
        )
    }
}

/// One client connection, as the engine sees it.
#[derive(Debug)]
pub struct Conn {
    /// This connection's key.
    pub id: ConnId,
    /// Where it comes from.
    pub peer: Peer,
    state: ConnState,
    /// The byte buffers, only while bytes are in flight: an idle connection holds none
    /// (they go back to the engine's [`BufPool`]).
    io: Option<Box<IoBufs>>,
    /// The connection's one deadline timer: the login deadline in AwaitingAuth, the
    /// heartbeat timeout (and the bound session's expiry) when logged in.
    pub timer: Option<TimerId>,
    /// While logged in: the keyed tag of the session's token (`session::token`), which a
    /// request's token is checked against before any digest is computed.
    pub token_tag: u64,
    /// Error replies in a row (protocol.md 2: 16 close the connection).
    pub consecutive_errors: u8,
    /// The peer sent its FIN: once the frames already buffered are handled, the
    /// connection closes.
    ///
    /// Design: not a state. The FIN can come in any state (behind a login still being
    /// hashed, say), and the state machine goes on as before until the buffered frames
    /// are handled; it only means no more input will come.
    pub input_closed: bool,
    /// Output bookkeeping of the engine's turn (`engine::durability`), not protocol
    /// state: already on the list of connections to transmit this turn...
    pub(crate) flagged: bool,
    /// ... and the journal batch this connection's output waits for: nothing is written
    /// until that batch is durable (0: nothing to wait for).
    pub(crate) hold: u64,
}

impl Conn {
    /// A connection just accepted: AwaitingAuth until `login_deadline`.
    pub fn new(id: ConnId, peer: SocketAddr, login_deadline: Instant) -> Conn {
        Conn {
            id,
            peer: peer.into(),
            state: ConnState::AwaitingAuth {
                deadline: login_deadline,
            },
            io: None,
            timer: None,
            token_tag: 0,
            consecutive_errors: 0,
            input_closed: false,
            flagged: false,
            hold: 0,
        }
    }

    /// The state, to match on.
    pub fn state(&self) -> &ConnState {
        &self.state
    }

    // ---- transitions: the only places `state` changes -----------------------------------

    /// AwaitingAuth -> Authenticating: the request's hash is handed to a worker.
    pub fn begin_auth(&mut self, pending: PendingAuth) {
        debug_assert!(matches!(self.state, ConnState::AwaitingAuth { .. }));
        self.consecutive_errors = 0;
        self.state = ConnState::Authenticating(Box::new(pending));
    }

    /// Authenticating -> AwaitingAuth (the login deadline of the request still in force):
    /// the hash answered, or was refused. Returns what was pending; None (and no change)
    /// in any other state (the connection closed meanwhile).
    pub fn end_auth(&mut self) -> Option<Box<PendingAuth>> {
        match std::mem::replace(&mut self.state, ConnState::Closing) {
            ConnState::Authenticating(pending) => {
                self.state = ConnState::AwaitingAuth {
                    deadline: pending.deadline,
                };
                Some(pending)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// AwaitingAuth -> Active: logged in (LOGIN_SUCCESS) or resumed (SESSION_VALID) with
    /// the token whose tag is `token_tag`. The error streak starts afresh (the heartbeat
    /// timeout runs from the session's last activity).
    pub fn activate(&mut self, session_id: u64, token_tag: u64) {
        debug_assert!(matches!(self.state, ConnState::AwaitingAuth { .. }));
        self.state = ConnState::Active { session_id };
        self.token_tag = token_tag;
        self.consecutive_errors = 0;
    }

    /// Active -> ChangingPassword: CHANGE_PASSWORD's hash is handed to a worker. False
    /// (and no change) when the connection is not Active.
    pub fn begin_password_change(&mut self, request_id: u32) -> bool {
        let ConnState::Active { session_id } = self.state else {
            return false;
        };
        self.state = ConnState::ChangingPassword {
            session_id,
            request_id,
        };
        true
    }

    /// ChangingPassword -> Active: the hash answered, or was refused. Returns the request
    /// id to answer; None (and no change) in any other state (the session ended and the
    /// connection closed meanwhile).
    pub fn end_password_change(&mut self) -> Option<u32> {
        let ConnState::ChangingPassword {
            session_id,
            request_id,
        } = self.state
        else {
            return None;
        };
        self.state = ConnState::Active { session_id };
        Some(request_id)
    }

    /// Active -> AwaitingAuth: the connection's own session ended by its request
    /// (LOGOUT_REQUEST, LOGOUT_ALL `all`); it may log in again before `deadline`.
    pub fn log_out(&mut self, deadline: Instant) {
        debug_assert!(matches!(self.state, ConnState::Active { .. }));
        self.state = ConnState::AwaitingAuth { deadline };
    }

    /// Any state -> Closing: nothing more is read (buffered input is dropped) or sent
    /// after the frames already queued. Returns whether a password hash was running for
    /// it (the engine gives its address's share back).
    pub fn close(&mut self) -> bool {
        let was_hashing = self.state.hashing();
        self.state = ConnState::Closing;
        if let Some(io) = self.io_if_any() {
            io.input.clear();
        }
        was_hashing
    }

    // ---- what the state says ------------------------------------------------------------

    /// Whether the engine takes frames from the input buffer now.
    pub fn reads_frames(&self) -> bool {
        self.state.reads_frames()
    }

    /// Whether a password hash runs for this connection now.
    pub fn hashing(&self) -> bool {
        self.state.hashing()
    }

    /// Whether CHANGE_PASSWORD's hash runs for this connection (a hash answer for it is
    /// that request's).
    pub fn changing_password(&self) -> bool {
        matches!(self.state, ConnState::ChangingPassword { .. })
    }

    /// Whether the connection is closing (its last frame is queued).
    pub fn is_closing(&self) -> bool {
        matches!(self.state, ConnState::Closing)
    }

    /// The session this connection is logged in to.
    pub fn session_id(&self) -> Option<u64> {
        match self.state {
            ConnState::Active { session_id } | ConnState::ChangingPassword { session_id, .. } => {
                Some(session_id)
            }
            _ => None,
        }
    }

    // ---- buffers ------------------------------------------------------------------------

    /// The buffers, taken from `pool` if the connection holds none.
    pub fn io(&mut self, pool: &mut BufPool) -> &mut IoBufs {
        self.io.get_or_insert_with(|| pool.take())
    }

    /// The buffers if the connection holds any.
    pub fn io_if_any(&mut self) -> Option<&mut IoBufs> {
        self.io.as_deref_mut()
    }

    /// Bytes read but not yet decoded.
    pub fn input_len(&self) -> usize {
        self.io.as_ref().map_or(0, |b| b.input.len())
    }

    /// Encoded bytes not yet written.
    pub fn output_len(&self) -> usize {
        self.io.as_ref().map_or(0, |b| b.output.len())
    }

    /// Whether the connection holds buffers at all (an idle one does not).
    pub fn holds_buffers(&self) -> bool {
        self.io.is_some()
    }

    /// Gives the buffers back to `pool` if both are empty.
    pub fn release_buffers(&mut self, pool: &mut BufPool) {
        if self.input_len() == 0 && self.output_len() == 0 {
            if let Some(b) = self.io.take() {
                pool.give(b);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // an arbitrary origin for made-up times
mod tests {
    use super::*;

    fn conn() -> Conn {
        let id = ConnId {
            index: 0,
            generation: NonZeroU32::MIN,
        };
        Conn::new(id, "127.0.0.1:9".parse().unwrap(), Instant::now())
    }

    fn pending(deadline: Instant) -> PendingAuth {
        PendingAuth {
            request_id: 7,
            kind: PendingKind::Login {
                user_id: Some(1),
                record_stamp: 0,
            },
            username: "alice".into(),
            client: String::new(),
            platform: String::new(),
            deadline,
        }
    }

    #[test]
    fn conn_id_packs_both_halves() {
        let id = ConnId {
            index: 0xdead_beef,
            generation: NonZeroU32::new(0x0102_0304).unwrap(),
        };
        assert_eq!(id.to_u64(), 0x0102_0304_dead_beef);
        assert_eq!(ConnId::from_u64(id.to_u64()), Some(id));
        assert_eq!(ConnId::from_u64(0xdead_beef), None);
    }

    #[test]
    fn buffers_come_and_go_through_the_pool() {
        let mut pool = BufPool::default();
        let mut c = conn();
        assert!(!c.holds_buffers());
        c.io(&mut pool).output.extend_from_slice(&[1; 10]);
        c.release_buffers(&mut pool);
        assert!(c.holds_buffers(), "kept while output is pending");
        c.io(&mut pool).output.clear();
        c.release_buffers(&mut pool);
        assert!(!c.holds_buffers());
        assert_eq!(pool.spare(), 1);
    }

    #[test]
    fn a_connection_record_stays_small() {
        // 10,000 idle connections: each costs this plus its socket (issue 9's budget)
        assert!(size_of::<Conn>() <= 96);
        assert_eq!(size_of::<Option<ConnId>>(), 8);
    }

    #[test]
    fn a_login_goes_through_authenticating_and_back() {
        let mut c = conn();
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        assert!(c.reads_frames() && !c.hashing());
        c.begin_auth(pending(deadline));
        assert!(!c.reads_frames() && c.hashing());
        assert_eq!(c.state().name(), "AUTHENTICATING");
        let p = c.end_auth().expect("was authenticating");
        assert_eq!(p.request_id, 7);
        assert!(matches!(c.state(), ConnState::AwaitingAuth { deadline: d } if *d == deadline));
        assert!(c.end_auth().is_none(), "only from Authenticating");
        c.activate(42, 7);
        assert_eq!(c.session_id(), Some(42));
    }

    #[test]
    fn a_password_change_holds_the_session_and_stops_reading() {
        let mut c = conn();
        assert!(!c.begin_password_change(3), "not logged in");
        c.activate(42, 7);
        assert!(c.begin_password_change(3));
        assert!(!c.reads_frames() && c.hashing());
        assert_eq!(c.session_id(), Some(42));
        assert_eq!(c.end_password_change(), Some(3));
        assert!(c.reads_frames() && !c.hashing());
        assert_eq!(c.end_password_change(), None);
    }

    #[test]
    fn closing_says_whether_a_hash_was_running_and_drops_input() {
        let mut pool = BufPool::default();
        let mut c = conn();
        c.io(&mut pool).input.extend_from_slice(b"partial");
        c.begin_auth(pending(Instant::now()));
        assert!(c.close());
        assert!(c.is_closing() && !c.reads_frames() && c.session_id().is_none());
        assert_eq!(c.input_len(), 0);
        assert!(!c.close(), "no hash runs while closing");
        assert!(c.end_auth().is_none());
    }

    #[test]
    fn logging_out_waits_for_a_new_login() {
        let mut c = conn();
        c.activate(42, 7);
        c.log_out(Instant::now());
        assert!(matches!(c.state(), ConnState::AwaitingAuth { .. }));
        assert_eq!(c.session_id(), None);
    }
}
