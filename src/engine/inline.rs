//! The server loop's turn without the server: for tests, fuzzing and tools that drive the
//! engine on one thread, with no sockets and no worker threads.

use std::time::Instant;

use bytes::BytesMut;

use super::Engine;
use crate::auth::{run_job, HashResult};
use crate::conn::ConnId;

impl Engine {
    /// What `server::Server` does after readiness events, on the calling thread: fire
    /// the timers, run the password hashes here, process deferred frames, make the
    /// journal batch durable at once, then hand each connection's output to `write`
    /// (which consumes what it takes) and remove the connections that are done. Returns
    /// the connections removed.
    pub fn turn_inline(
        &mut self,
        now: Instant,
        mut write: impl FnMut(ConnId, &mut BytesMut),
    ) -> Vec<ConnId> {
        self.on_timers(now);
        for job in self.take_hash_jobs() {
            let ticket = job.ticket;
            let outcome = run_job(job.kind);
            self.on_hash_result(HashResult { ticket, outcome }, now);
        }
        let mut ids = Vec::new();
        self.take_wakeups(&mut ids);
        for id in ids.drain(..) {
            self.process(id, now);
        }
        if let Some(b) = self.take_batch() {
            self.durable(b.seq);
        }
        self.take_flagged(&mut ids);
        let mut closed = Vec::new();
        for id in ids {
            if let Some(out) = self.output_mut(id) {
                write(id, out);
            }
            if self.ready_to_close(id) {
                self.remove(id);
                closed.push(id);
            }
        }
        closed
    }
}
