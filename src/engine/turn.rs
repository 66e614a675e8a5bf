//! One loop turn, written once: the order in which the engine's deferred work runs after
//! a round of inputs, and the [`Shell`] it runs it through.
//!
//! The server loop (sockets, worker threads, the store thread), the deterministic harness
//! and the fuzzer ([`super::InlineShell`]: everything on the calling thread) all drive the
//! engine the same way: hand in what happened (`handle_*`), then call [`Engine::turn`],
//! then sleep until an input comes or [`Engine::poll_timeout`] passes. So what the tests
//! and the fuzzer exercise is the order production runs.

use std::time::Instant;

use super::{Engine, EventBatch, Transmit};
use crate::auth::HashJob;
use crate::conn::ConnId;

/// What a turn needs from whoever owns the sockets, the hash workers and the store.
pub trait Shell {
    /// `id` can take input again (a login was decided, or the per-turn frame cap left
    /// frames for later) and [`Engine::wants_input`] says it wants more than it holds:
    /// read what its socket has now and hand it in with [`Engine::handle_input`] (and
    /// [`Engine::handle_peer_closed`] at end of file), for as long as `wants_input` says
    /// so. A shell whose bytes are all handed in already does nothing.
    fn read(&mut self, engine: &mut Engine, id: ConnId, now: Instant);

    /// Starts a password hash: on a worker, answered later with
    /// [`Engine::handle_hash_result`]. Gives the job back when it cannot be taken now (a
    /// full queue): the engine refuses its request (SERVER_BUSY) in this turn.
    fn hash(&mut self, job: HashJob) -> Result<(), HashJob>;

    /// Makes `batch` durable, and reports it with [`Engine::handle_durable`] when it is;
    /// the replies that depend on it stay held until then. `engine` is there for a store
    /// that wants the whole state now ([`Engine::snapshot_events`]).
    fn commit(&mut self, batch: EventBatch, engine: &Engine, now: Instant);

    /// Writes what `t` holds to `id`'s socket (advancing past what was written), and
    /// closes the socket once `t.close` is set and nothing is left; a socket that closes
    /// (or fails) is reported with [`Engine::handle_closed`] after the turn.
    fn transmit(&mut self, id: ConnId, t: Transmit<'_>);
}

impl Engine {
    /// One turn, after this round's inputs were handed in:
    ///
    /// 1. connections woken for input they could not take before: their buffered frames,
    ///    then [`Shell::read`] if they want more;
    /// 2. every deadline that has passed ([`Engine::handle_timeout`]);
    /// 3. password hashes to the shell ([`Shell::hash`]); what it cannot take is refused;
    /// 4. the turn's durable events as one batch ([`Shell::commit`]: group commit, Redis's
    ///    `beforeSleep`), after everything that may record one;
    /// 5. every connection with output or closing: [`Engine::poll_transmit`] to
    ///    [`Shell::transmit`], and its buffers back to the pool once written out.
    pub fn turn(&mut self, now: Instant, shell: &mut impl Shell) {
        let mut ids = std::mem::take(&mut self.scratch);
        ids.append(&mut self.wakeups);
        for &id in &ids {
            self.process(id, now);
            if self.wants_input(id) {
                shell.read(self, id, now);
            }
        }
        ids.clear();
        self.handle_timeout(now);
        while let Some(job) = self.poll_hash_job() {
            if let Err(job) = shell.hash(job) {
                self.handle_hash_refused(job, now);
            }
        }
        if let Some(batch) = self.poll_batch() {
            shell.commit(batch, self, now);
        }
        self.take_flagged(&mut ids);
        for &id in &ids {
            let t = self.poll_transmit(id);
            shell.transmit(id, t);
            self.release_buffers(id);
        }
        ids.clear();
        self.scratch = ids;
        self.trim_scratch();
    }
}
