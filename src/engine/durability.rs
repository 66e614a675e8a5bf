//! Replies that wait for the journal.
//!
//! protocol.md 9: a reply that depends on a durable change (REGISTER_SUCCESS,
//! LOGIN_SUCCESS, LOGOUT_SUCCESS, a revocation, an audited failure) leaves only after the
//! change is durable. The engine groups its events into numbered batches (one per loop
//! turn, [`Engine::poll_batch`]); the driver makes each batch durable (the server on its
//! store thread) and reports it with [`Engine::handle_durable`].
//!
//! Which output depends on a batch is decided per *step* (one connection's frames handled,
//! one hash result, one timer): if the step recorded any event, every
//! connection it wrote to is held until the batch that will carry those events is durable.
//! A held connection's output is not written at all (later frames queue behind the held
//! one, so the byte stream keeps its order); other connections, and steps that record
//! nothing (heartbeats), are not delayed. A heartbeat never waits for an fsync unless it
//! is queued behind a reply on the same connection that does.

use super::event::Event;
use super::Engine;

/// The durable changes of one loop turn.
#[derive(Debug)]
pub struct EventBatch {
    /// Increasing from 1; [`Engine::handle_durable`] is called with it once the batch is
    /// durable.
    pub seq: u64,
    /// The changes, in the order they happened.
    pub events: Vec<Event>,
}

impl Engine {
    /// Durable changes since the last call, as the next batch; None when there are none.
    /// The turn takes it once, after everything that may record an event, and hands it
    /// to [`super::Shell::commit`].
    #[must_use]
    pub fn poll_batch(&mut self) -> Option<EventBatch> {
        if self.events.is_empty() {
            return None;
        }
        self.batch_seq += 1;
        self.step_mark = 0;
        self.note_batch_out(self.batch_seq, self.events.len());
        Some(EventBatch {
            seq: self.batch_seq,
            // An exact-size copy goes (batches may queue behind a slow fsync: they hold
            // what they carry, no more); the engine's list keeps its room for the next
            // turn instead of growing again from empty.
            events: self.events.drain(..).collect(),
        })
    }

    /// Every batch up to `seq` is durable, and the store now holds `store_bytes` (0 if
    /// it cannot tell; ADMIN_STATS `journal_bytes`): the output that waited for them goes
    /// in the next turn. (No `now`: releasing output decides nothing.)
    pub fn handle_durable(&mut self, seq: u64, store_bytes: u64) {
        self.journal_bytes = store_bytes;
        self.durable_seq = self.durable_seq.max(seq);
        self.note_batches_durable(seq);
        while let Some(&(s, id)) = self.held.front() {
            if s > self.durable_seq {
                break;
            }
            self.held.pop_front();
            if self.conn(id).is_some_and(|c| c.hold <= self.durable_seq) {
                self.flag(id);
            }
        }
    }

    /// Connections waiting for the journal (for stats and tests).
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Records an event that no reply depends on: it goes into the batch but holds no
    /// connection (the periodic last-activity record of a heartbeat).
    pub(super) fn record_quietly(&mut self, ev: Event) {
        self.events.push(ev);
        self.step_mark += 1;
    }

    pub(super) fn begin_step(&mut self) {
        self.step_mark = self.events.len();
        self.step_sent.clear();
    }

    /// Holds every connection written to in this step if the step recorded an event.
    pub(super) fn end_step(&mut self) {
        if self.events.len() > self.step_mark {
            let seq = self.batch_seq + 1;
            for i in 0..self.step_sent.len() {
                let id = self.step_sent[i];
                if let Some(c) = super::slot(&mut self.conns, id) {
                    if c.hold != seq {
                        c.hold = seq;
                        self.held.push_back((seq, id));
                    }
                }
            }
        }
        self.step_sent.clear();
        self.step_mark = self.events.len();
    }
}
