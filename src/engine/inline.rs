//! A [`Shell`] that does everything on the calling thread, for the deterministic harness,
//! the randomized tests, the fuzzer and tools: hashes run at once (or wait until the
//! caller releases them), batches are durable at once (or when the caller says), and what
//! the engine transmits is collected per connection. No sockets, no threads, no clock.

use std::time::Instant;

use hashbrown::{HashMap, HashSet};

use super::event::Event;
use super::{Engine, EventBatch, Shell, Transmit};
use crate::auth::{run_job, HashJob, HashResult};
use crate::conn::ConnId;

/// Turns [`InlineShell::settle`] runs at most before it gives up.
const MAX_TURNS: usize = 10_000;

/// The engine's environment, in memory (see the module docs).
#[derive(Debug)]
pub struct InlineShell {
    /// Run each hash job as the turn hands it out (the default), or keep it in
    /// `held_jobs` until [`InlineShell::release_jobs`].
    pub hash_inline: bool,
    /// Jobs kept while `hash_inline` is off, in the order they came.
    pub held_jobs: Vec<HashJob>,
    /// Report each batch durable as soon as it is committed (the default), or keep its
    /// number in `pending` until [`InlineShell::make_durable`].
    pub auto_durable: bool,
    /// Batches committed and not yet reported durable, oldest first.
    pub pending: Vec<u64>,
    /// Every event committed, in order: what a journal would hold.
    pub journal: Vec<Event>,
    /// Hash jobs handed to this shell so far (run or held).
    pub jobs: u64,
    results: Vec<HashResult>,
    durable: Option<u64>,
    written: HashMap<ConnId, Vec<u8>>,
    not_reading: HashSet<ConnId>,
    closing: Vec<ConnId>,
    closed: HashSet<ConnId>,
}

impl Default for InlineShell {
    fn default() -> Self {
        InlineShell {
            hash_inline: true,
            held_jobs: Vec::new(),
            auto_durable: true,
            pending: Vec::new(),
            journal: Vec::new(),
            jobs: 0,
            results: Vec::new(),
            durable: None,
            written: HashMap::new(),
            not_reading: HashSet::new(),
            closing: Vec::new(),
            closed: HashSet::new(),
        }
    }
}

impl InlineShell {
    /// Runs turns at `now` until nothing is left to do: hash answers and durable reports
    /// delivered, woken connections handled, closed connections reported to the engine.
    /// False if the engine kept finding work for `MAX_TURNS` turns (it should never).
    #[must_use]
    pub fn settle(&mut self, engine: &mut Engine, now: Instant) -> bool {
        for _ in 0..MAX_TURNS {
            for r in std::mem::take(&mut self.results) {
                engine.handle_hash_result(r, now);
            }
            if let Some(seq) = self.durable.take() {
                engine.handle_durable(seq, 0);
            }
            engine.turn(now, self);
            let closed_some = !self.closing.is_empty();
            for id in std::mem::take(&mut self.closing) {
                engine.handle_closed(id, now);
                self.closed.insert(id);
            }
            let woken = engine.poll_timeout(now).is_some_and(|t| t <= now);
            if !woken && !closed_some && self.results.is_empty() && self.durable.is_none() {
                return true;
            }
        }
        false
    }

    /// Runs the jobs kept while `hash_inline` was off; their answers go in at the next
    /// [`InlineShell::settle`].
    pub fn release_jobs(&mut self) {
        for job in std::mem::take(&mut self.held_jobs) {
            self.run(job);
        }
    }

    /// Reports the pending batches durable up to `seq` (all of them when None), at the
    /// next [`InlineShell::settle`].
    pub fn make_durable(&mut self, seq: Option<u64>) {
        let upto = seq.or(self.pending.last().copied());
        if let Some(upto) = upto {
            self.pending.retain(|&s| s > upto);
            self.durable = Some(self.durable.map_or(upto, |d| d.max(upto)));
        }
    }

    /// Everything transmitted to `id` since the last call.
    pub fn take_written(&mut self, id: ConnId) -> Vec<u8> {
        self.written.remove(&id).unwrap_or_default()
    }

    /// Whether the engine closed `id` (its last bytes taken, then the socket closed).
    pub fn is_closed(&self, id: ConnId) -> bool {
        self.closed.contains(&id)
    }

    /// Makes `id` a peer that does not read (`false`: one that reads again): its
    /// transmits are left in the engine's output, which grows.
    pub fn set_reading(&mut self, id: ConnId, reading: bool) {
        if reading {
            self.not_reading.remove(&id);
        } else {
            self.not_reading.insert(id);
        }
    }

    fn run(&mut self, job: HashJob) {
        let mut job = job;
        let (ticket, reserve) = (job.ticket, job.reservation());
        let outcome = run_job(job.kind);
        self.results.push(HashResult {
            ticket,
            outcome,
            reserve,
        });
    }
}

impl Shell for InlineShell {
    /// Every byte is handed in as it comes (`handle_input`): nothing waits in a socket.
    fn read(&mut self, _engine: &mut Engine, _id: ConnId, _now: Instant) {}

    fn hash(&mut self, job: HashJob) -> Result<(), HashJob> {
        self.jobs += 1;
        if self.hash_inline {
            self.run(job);
        } else {
            self.held_jobs.push(job);
        }
        Ok(())
    }

    fn commit(&mut self, batch: EventBatch, _engine: &Engine, _now: Instant) {
        self.journal.extend(batch.events);
        if self.auto_durable {
            self.durable = Some(batch.seq);
        } else {
            self.pending.push(batch.seq);
        }
    }

    fn transmit(&mut self, id: ConnId, t: Transmit<'_>) {
        let reading = !self.not_reading.contains(&id);
        let mut left = 0;
        if let Some(bytes) = t.bytes {
            if reading {
                self.written.entry(id).or_default().extend_from_slice(bytes);
                bytes.clear();
            }
            left = bytes.len();
        }
        if t.close && left == 0 {
            self.closing.push(id);
        }
    }
}
