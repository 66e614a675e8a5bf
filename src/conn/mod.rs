//! Per-connection state: the state machine's states, the byte buffers, and the timers.
//!
//! Owns what one connection is. The transitions (the one `match` on state and message) live
//! in `engine`, which also owns the tables a transition touches. Nothing here does I/O.
//!
//! ```text
//!                  TCP accept
//!                      |
//!                      v   login deadline runs
//!       +------> AwaitingAuth ----------------------------+
//!       |          |      ^                               | login deadline:
//!       |          |      | LOGIN_FAILURE, REGISTER_*,    |   DISCONNECT_ACK(LOGIN_TIMEOUT)
//!       |          |      | SESSION_INVALID               |
//!       | LOGIN_REQUEST,  |                               |
//!       | REGISTER_REQUEST|                               |
//!       |          v      |                               |
//!       |      Authenticating (hash on a worker;          |
//!       |          |        input left unread)            |
//!       |          | LOGIN_SUCCESS       VERIFY_SESSION:  |
//!       |          v                     SESSION_VALID    |
//!       |       Active <-----------------------------     |
//!       |          |   \   HEARTBEAT / HEARTBEAT_ACK      |
//!       |  LOGOUT_SUCCESS \ heartbeat timeout:            |
//!       +----------+       \  DISCONNECT_ACK(IDLE_TIMEOUT)|
//!                           v                             v
//!   any state --DISCONNECT_REQUEST--> Closing <-----------+
//!             (DISCONNECT_ACK)          also after any FATAL frame (SESSION_REVOKED,
//!                                       SESSION_EXPIRED, DUPLICATE_SESSION, errors);
//!                                       output is flushed, then the socket closes
//! ```

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Instant;

use bytes::BytesMut;

use crate::timer::TimerId;

mod peer;

pub use peer::Peer;

/// A connection's key: its slab index plus a generation, so an event or a hash result for
/// a connection that has since closed (its slot reused) is recognised and dropped
/// (h2's `Key { index, stream_id }` ABA guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
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
#[derive(Debug)]
pub enum ConnState {
    /// Waiting for LOGIN_REQUEST; `deadline` is the login deadline.
    AwaitingAuth { deadline: Instant },
    /// A password is being verified on a worker. Input stays buffered, unread, until the
    /// answer comes, so frames pipelined behind the login keep their order.
    Authenticating(Box<PendingAuth>),
    /// Logged in to `session_id`.
    Active { session_id: u64 },
    /// The last frame is queued; the socket closes once output is flushed.
    Closing,
}

/// What the engine remembers while a password hash (or a new account's write) is under
/// way for a connection.
#[derive(Debug)]
pub struct PendingAuth {
    pub request_id: u32,
    pub kind: PendingKind,
    pub username: String,
    pub client: String,
    pub platform: String,
    /// The login deadline still in force if this fails.
    pub deadline: Instant,
}

#[derive(Debug)]
pub enum PendingKind {
    /// LOGIN_REQUEST: verifying; `user_id` is None for an unknown username (a dummy hash
    /// runs instead, at the same cost).
    Login { user_id: Option<u64> },
    /// REGISTER_REQUEST: hashing the new password.
    Register { email: String },
}

impl ConnState {
    pub fn name(&self) -> &'static str {
        match self {
            ConnState::AwaitingAuth { .. } => "AWAITING_AUTH",
            ConnState::Authenticating(_) => "AUTHENTICATING",
            ConnState::Active { .. } => "ACTIVE",
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
}

/// One client connection, as the engine sees it.
#[derive(Debug)]
pub struct Conn {
    pub id: ConnId,
    pub state: ConnState,
    pub peer: Peer,
    /// The byte buffers, only while bytes are in flight: an idle connection holds none
    /// (they go back to the engine's [`BufPool`]).
    io: Option<Box<IoBufs>>,
    /// The connection's one deadline timer: the login deadline in AwaitingAuth, the
    /// heartbeat timeout in Active.
    pub timer: Option<TimerId>,
    /// Last valid frame (protocol.md 7: resets the heartbeat timeout). Stored, not
    /// rescheduled: the timer re-arms from it when it fires.
    pub last_valid: Instant,
    /// Error replies in a row (protocol.md 2: 16 close the connection).
    pub consecutive_errors: u8,
    /// The peer closed its side; close once buffered frames are handled.
    pub peer_closed: bool,
    /// Already on the engine's list of connections with output to flush.
    pub flagged: bool,
    /// The journal batch this connection's output waits for: nothing is written until
    /// that batch is durable (0: nothing to wait for). See `engine::durability`.
    pub hold: u64,
    /// A password hash for this connection is in flight (login, registration, password
    /// change): counted against its address until it ends (`LoginPolicy::hash_done`).
    pub hashing: bool,
    /// CHANGE_PASSWORD's request id while its hash runs; no frames are read meanwhile.
    pub changing: Option<u32>,
}

impl Conn {
    pub fn new(id: ConnId, peer: SocketAddr, now: Instant, login_deadline: Instant) -> Conn {
        Conn {
            id,
            state: ConnState::AwaitingAuth {
                deadline: login_deadline,
            },
            peer: peer.into(),
            io: None,
            timer: None,
            last_valid: now,
            consecutive_errors: 0,
            peer_closed: false,
            flagged: false,
            hold: 0,
            hashing: false,
            changing: None,
        }
    }

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

    pub fn is_closing(&self) -> bool {
        matches!(self.state, ConnState::Closing)
    }

    /// Whether `process` may decode frames now.
    pub fn reads_frames(&self) -> bool {
        self.state.reads_frames() && self.changing.is_none()
    }

    /// The session this connection is logged in to.
    pub fn session_id(&self) -> Option<u64> {
        match self.state {
            ConnState::Active { session_id } => Some(session_id),
            _ => None,
        }
    }
}

/// A connection's byte buffers.
#[derive(Debug, Default)]
pub struct IoBufs {
    /// Bytes read but not yet decoded. The server module reads into it.
    pub input: BytesMut,
    /// Encoded frames not yet written. The server module writes from it.
    pub output: BytesMut,
}

/// Spare buffers, shared by all connections: a request borrows a pair, and the pair comes
/// back once its reply is written, so 10,000 idle connections hold no buffer memory, and
/// the heartbeat path does not allocate while at most `MAX_SPARE` connections are busy in
/// one loop turn (beyond that, a pair is allocated and freed per request).
#[derive(Debug, Default)]
pub struct BufPool {
    // Boxed on purpose: a connection holds `Box<IoBufs>`, and the box is reused whole.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<IoBufs>>,
}

impl BufPool {
    /// Pairs kept for reuse: enough for a turn of 1,000 busy connections without an
    /// allocation each (64 cost ~10% of heartbeat throughput at 1,000 connections), few
    /// enough that the pairs a login burst leaves behind cost ~20 bytes a session at
    /// 10,000 (benches/BENCHMARKS.md).
    pub const MAX_SPARE: usize = 1024;
    /// A buffer that grew past this (a burst, a big frame) is freed, not kept.
    pub const MAX_KEPT_CAPACITY: usize = 256;

    fn take(&mut self) -> Box<IoBufs> {
        self.spare.pop().unwrap_or_default()
    }

    fn give(&mut self, mut b: Box<IoBufs>) {
        if self.spare.len() >= Self::MAX_SPARE {
            return;
        }
        for buf in [&mut b.input, &mut b.output] {
            buf.clear();
            if buf.capacity() > Self::MAX_KEPT_CAPACITY {
                *buf = BytesMut::new();
            }
        }
        self.spare.push(b);
    }

    /// Pairs waiting for reuse.
    pub fn spare(&self) -> usize {
        self.spare.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let t = Instant::now();
        let peer = "127.0.0.1:9".parse().unwrap();
        let mut pool = BufPool::default();
        let mut c = Conn::new(
            ConnId {
                index: 0,
                generation: NonZeroU32::MIN,
            },
            peer,
            t,
            t,
        );
        assert!(!c.holds_buffers());
        c.io(&mut pool).output.extend_from_slice(&[1; 10]);
        c.release_buffers(&mut pool);
        assert!(c.holds_buffers(), "kept while output is pending");
        c.io(&mut pool).output.clear();
        c.io(&mut pool).input.extend_from_slice(&[0; 100_000]);
        c.io(&mut pool).input.clear();
        c.release_buffers(&mut pool);
        assert!(!c.holds_buffers());
        assert_eq!(pool.spare(), 1);
        // the big buffer was freed on the way back; the pair is reused
        let b = c.io(&mut pool);
        assert!(b.input.capacity() <= BufPool::MAX_KEPT_CAPACITY);
        assert_eq!(pool.spare(), 0);
        // the pool is bounded
        for _ in 0..BufPool::MAX_SPARE + 10 {
            pool.give(Box::default());
        }
        assert_eq!(pool.spare(), BufPool::MAX_SPARE);
    }

    #[test]
    fn a_connection_record_stays_small() {
        // 10,000 idle connections: each costs this plus its socket (issue 9's budget)
        assert!(std::mem::size_of::<Conn>() <= 96);
        assert_eq!(std::mem::size_of::<Option<ConnId>>(), 8);
    }

    #[test]
    fn only_waiting_and_active_read_frames() {
        let t = Instant::now();
        assert!(ConnState::AwaitingAuth { deadline: t }.reads_frames());
        assert!(ConnState::Active { session_id: 1 }.reads_frames());
        assert!(!ConnState::Closing.reads_frames());
    }
}
