//! The engine's outputs to its driver (`poll_*`): a connection's transmit, the next hash
//! job, the next deadline, and whether a connection takes more input; and the frames
//! queued on the way (`send`). (The event batch is in `durability`.)

use std::time::Instant;

use bytes::BytesMut;
use log::warn;

use super::{slot, trim, Engine};
use crate::auth::HashJob;
use crate::conn::{Conn, ConnId};
use crate::protocol::{self, Flags, Message};

/// What one connection's socket gets in this turn ([`Engine::poll_transmit`]).
#[derive(Debug)]
pub struct Transmit<'a> {
    /// Encoded frames to write now, if any may go: write as much as the socket takes and
    /// advance past it; the rest stays for the next transmit (the driver asks for one
    /// when the socket is writable again: [`Engine::handle_writable`]). None while the
    /// output waits for a journal batch (`durability`), or when there is none.
    pub bytes: Option<&'a mut BytesMut>,
    /// The connection is done: once `bytes` are all written, close it (send FIN, then
    /// tell the engine [`Engine::handle_closed`]). Never set while output is held.
    pub close: bool,
}

impl Engine {
    /// What to write to `id` now, and whether to close it after. The turn calls it for
    /// every connection with output or closing ([`Engine::turn`]); a driver may also call
    /// it between turns. After the bytes are written the engine gives the connection's
    /// buffers back to the shared pool (at the next [`Engine::release_buffers`], which the
    /// turn does right after its transmits).
    #[must_use]
    pub fn poll_transmit(&mut self, id: ConnId) -> Transmit<'_> {
        let durable = self.durable_seq;
        let Some(c) = slot(&mut self.conns, id) else {
            // Gone already: nothing to send; the socket, if the driver has one, closes.
            return Transmit {
                bytes: None,
                close: true,
            };
        };
        if c.hold > durable {
            // protocol.md 9: the reply depends on a batch not yet durable.
            return Transmit {
                bytes: None,
                close: false,
            };
        }
        let close = c.is_closing();
        Transmit {
            bytes: c
                .io_if_any()
                .map(|io| &mut io.output)
                .filter(|o| !o.is_empty()),
            close,
        }
    }

    /// The next password hash to run, if any: answer it with
    /// [`Engine::handle_hash_result`] once run, or [`Engine::handle_hash_refused`] if it
    /// cannot be taken now. The turn hands every job to its shell.
    #[must_use]
    pub fn poll_hash_job(&mut self) -> Option<HashJob> {
        self.hash_jobs.pop_front()
    }

    /// When the engine wants [`Engine::turn`] called again at the latest: the wheel's next
    /// deadline, or `now` itself when work is left for the next turn (a connection woken
    /// with frames still buffered, output released or queued since the last turn). None:
    /// nothing is due until an input comes.
    #[must_use]
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if !self.wakeups.is_empty() || !self.flagged.is_empty() {
            return Some(now);
        }
        self.wheel.next_deadline()
    }

    /// Whether the driver should read more bytes for `id` now. False once the connection
    /// is closing or the peer's FIN came; while a hash is under way (no frames are taken)
    /// once a frame's worth is buffered; and always at two frames' worth buffered. The rest
    /// waits in the kernel, which is the back-pressure.
    #[must_use]
    pub fn wants_input(&self, id: ConnId) -> bool {
        match self.conn(id) {
            Some(c) => {
                !c.is_closing()
                    && !c.input_closed
                    && (c.reads_frames() || c.input_len() < self.cfg.max_frame)
                    && c.input_len() < 2 * self.cfg.max_frame
            }
            None => false,
        }
    }

    /// Whether `id`'s output waits for a batch that is not durable yet.
    pub fn is_held(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(|c| c.hold > self.durable_seq)
    }

    /// `(input, output)` bytes buffered for `id`.
    pub fn buffered(&self, id: ConnId) -> (usize, usize) {
        self.conn(id)
            .map_or((0, 0), |c| (c.input_len(), c.output_len()))
    }

    /// Whether `id` holds buffers at all (an idle connection does not).
    pub fn holds_buffers(&self, id: ConnId) -> bool {
        self.conn(id).is_some_and(Conn::holds_buffers)
    }

    /// Gives `id`'s buffers back to the shared pool once both are empty (the turn does
    /// it after each transmit; a driver that writes between turns may call it).
    pub fn release_buffers(&mut self, id: ConnId) {
        if let Some(c) = slot(&mut self.conns, id) {
            c.release_buffers(&mut self.bufs);
        }
    }

    /// Encodes a frame into the connection's output, for the next transmit.
    pub(super) fn send(&mut self, id: ConnId, rid: u32, flags: Flags, msg: &Message, now: Instant) {
        let max_output = self.cfg.max_output;
        let Some(conn) = slot(&mut self.conns, id) else {
            return;
        };
        if conn.is_closing() {
            return; // the FATAL frame was the last one
        }
        let out = &mut conn.io(&mut self.bufs).output;
        protocol::encode_message(rid, flags, msg, out);
        self.step_sent.push(id);
        if out.len() > max_output {
            // The peer is not reading. Holding more would let it grow our memory; the
            // queued frames are dropped and the connection closes at once.
            out.clear();
            self.stats.output_overflows += 1;
            warn!(
                "peer not reading, output over {} bytes: closing conn={} peer={}",
                max_output, id.index, conn.peer
            );
            self.close(id, now);
            return;
        }
        self.flag(id);
    }

    /// Puts `id` on this turn's transmit list (once).
    pub(super) fn flag(&mut self, id: ConnId) {
        if let Some(c) = self.conn_mut(id) {
            if !c.flagged {
                c.flagged = true;
                self.flagged.push(id);
            }
        }
    }

    /// The connections to transmit this turn, in the order they were flagged; their
    /// marks are cleared.
    pub(super) fn take_flagged(&mut self, out: &mut Vec<ConnId>) {
        for id in self.flagged.drain(..) {
            if let Some(c) = slot(&mut self.conns, id) {
                c.flagged = false;
                out.push(id);
            }
        }
    }

    /// Gives back what a burst made the engine's lists grow to, once they are drained.
    pub(super) fn trim_scratch(&mut self) {
        trim(&mut self.step_sent);
        trim(&mut self.wakeups);
        trim(&mut self.flagged);
        trim(&mut self.scratch);
        trim(&mut self.events);
        if self.hash_jobs.is_empty() && self.hash_jobs.capacity() > super::SCRATCH_KEEP {
            self.hash_jobs = Default::default();
        }
        if self.held.is_empty() && self.held.capacity() > super::SCRATCH_KEEP {
            self.held = Default::default();
        }
    }
}
