//! The store thread: makes the engine's event batches durable off the loop.
//!
//! The loop sends each turn's [`EventBatch`] and goes on serving; this thread appends it
//! to the [`Store`], commits (one write and one fdatasync), and reports the batch durable
//! through the loop's `mio::Waker`; the engine then releases the replies that waited for
//! it (`engine::durability`). Batches that arrive while a commit is running are appended
//! together and made durable by the next one: a slow disk makes groups larger, not the
//! loop slower (LevelDB's writer queue, PostgreSQL's group commit).
//!
//! A commit refused for want of space (`StoreError::retryable`) keeps its records and is
//! tried again after a growing wait (250 ms, doubling to 5 s); the loop is told once when
//! the store stops taking commits and once when it takes them again. A snapshot that
//! fails for a transient reason (out of descriptors, say) leaves the journal as it was and
//! is asked for again 30 s later. Any other failure is reported and ends the thread; the
//! server stops without acknowledging anything that waited for it. Snapshots are written
//! here too: the loop builds the state's events when the store asks for one and sends
//! them in line with the batches, so the snapshot holds exactly the batches sent before
//! it.

use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{error, info, warn};
use mio::Waker;

use super::metrics::{Histogram, Snapshot};
use crate::engine::event::Event;
use crate::engine::EventBatch;
use crate::store::Store;

/// Commands taken in one go before a commit, at most (bounds one group's memory).
const MAX_GROUP: usize = 1024;

enum Command {
    /// A batch, and when the loop handed it over.
    Batch(EventBatch, Instant),
    /// The whole state, replacing everything committed so far.
    Snapshot(Vec<Event>),
}

/// What the thread tells the loop.
pub(super) enum Report {
    /// Every batch up to `seq` is durable; the journal now holds `journal_bytes`; in a
    /// log shared with other servers, they end at record `position`.
    Durable {
        seq: u64,
        journal_bytes: u64,
        position: u64,
        alone: bool,
    },
    /// The journal passed its size threshold: send a snapshot.
    WantsSnapshot,
    /// The store refuses commits (a full disk), or takes them again: the engine refuses
    /// or serves the requests that need a durable write.
    Storage {
        /// Whether commits go through.
        available: bool,
    },
    /// Nothing after this may be acknowledged; the thread has stopped.
    Failed(io::Error),
}

pub(super) struct Committer {
    tx: Option<Sender<Command>>,
    reports: Receiver<Report>,
    thread: Option<JoinHandle<()>>,
    /// Each batch's time from `send_batch` to durable (`/metrics`).
    latencies: Arc<Histogram>,
}

impl Committer {
    pub(super) fn start(store: Box<dyn Store>, waker: Arc<Waker>) -> io::Result<Committer> {
        let (tx, rx) = mpsc::channel();
        let (report_tx, reports) = mpsc::channel();
        let latencies = Arc::new(Histogram::new());
        let thread = {
            let latencies = latencies.clone();
            thread::Builder::new()
                .name("sessiond-store".into())
                .spawn(move || store_thread(store, rx, report_tx, waker, latencies))?
        };
        Ok(Committer {
            tx: Some(tx),
            reports,
            thread: Some(thread),
            latencies,
        })
    }

    pub(super) fn send_batch(&self, batch: EventBatch) {
        self.send(Command::Batch(batch, now()));
    }

    /// How long batches took from `send_batch` to durable, so far.
    pub(super) fn latencies(&self) -> Snapshot {
        self.latencies.snapshot()
    }

    pub(super) fn send_snapshot(&self, events: Vec<Event>) {
        self.send(Command::Snapshot(events));
    }

    fn send(&self, cmd: Command) {
        // A send fails only after the thread stopped on an error, which it has reported.
        if let Some(tx) = &self.tx {
            let _ = tx.send(cmd);
        }
    }

    pub(super) fn try_report(&self) -> Option<Report> {
        self.reports.try_recv().ok()
    }

    /// Lets the thread go without waiting for it (it may be stuck on a database that does
    /// not answer): for a server that stops because its store's fence passed, where nothing
    /// more may be acknowledged anyway.
    pub(super) fn abandon(mut self) {
        self.tx = None;
        // Dropping the handle detaches the thread; the process is about to end.
        self.thread = None;
    }

    /// Waits until everything sent is durable, and stops the thread. Returns the first
    /// failure not yet taken with `try_report`.
    pub(super) fn finish(&mut self) -> io::Result<()> {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                return Err(io::Error::other("the store thread panicked"));
            }
        }
        while let Some(r) = self.try_report() {
            if let Report::Failed(e) = r {
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// First wait before a commit refused for want of space is tried again; it doubles up to
/// `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Wait before a snapshot that failed for a transient reason is asked for again.
const SNAPSHOT_RETRY: Duration = Duration::from_secs(30);

#[allow(clippy::disallowed_methods)] // the store thread is the shell's: its own clock
fn now() -> Instant {
    Instant::now()
}

/// The store thread's state between groups.
struct Thread {
    store: Box<dyn Store>,
    /// The highest batch appended and not yet durable (a commit refused for want of
    /// space keeps it, for the retry).
    uncommitted: Option<u64>,
    /// The store is refusing commits (full disk): when to try again, and the next wait.
    full: Option<(Instant, Duration)>,
    /// A snapshot was asked for and not yet written.
    asked: bool,
    /// A snapshot failed for a transient reason: not asked for again before then.
    snapshot_after: Option<Instant>,
    /// When each batch appended and not yet durable was handed over, and the histogram
    /// their time to durable goes into.
    handed_over: Vec<Instant>,
    latencies: Arc<Histogram>,
}

fn store_thread(
    store: Box<dyn Store>,
    rx: Receiver<Command>,
    reports: Sender<Report>,
    waker: Arc<Waker>,
    latencies: Arc<Histogram>,
) {
    let tell = |r: Report| {
        let _ = reports.send(r);
        if let Err(e) = waker.wake() {
            error!("store thread cannot wake the loop: {e}");
        }
    };
    let mut t = Thread {
        store,
        uncommitted: None,
        full: None,
        asked: false,
        snapshot_after: None,
        handed_over: Vec::new(),
        latencies,
    };
    let mut group = Vec::with_capacity(MAX_GROUP);
    let tick = t.store.tick_interval();
    let mut next_tick = tick.map(|d| now() + d);
    loop {
        // Wait for work; while the store is full, only until the next retry; and until the
        // store's next upkeep.
        let until = match (t.full.map(|(at, _)| at), next_tick) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let first = match until {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(now())) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(cmd) => Some(cmd),
                Err(_) => break,
            },
        };
        if let (Some(at), Some(every)) = (next_tick, tick) {
            if now() >= at {
                next_tick = Some(now() + every);
                match t.store.tick() {
                    Ok(()) => {}
                    Err(e) if e.retryable => warn!("store upkeep: {e}; trying again"),
                    Err(e) => {
                        tell(Report::Failed(e.error));
                        return;
                    }
                }
            }
        }
        group.extend(first);
        group.extend(rx.try_iter().take(MAX_GROUP - group.len()));
        if let Err(e) = t.run(&mut group, &tell) {
            tell(Report::Failed(e));
            return;
        }
    }
    // The loop is gone (shutdown): a last try for what is still buffered.
    if let Some(seq) = t.uncommitted {
        if let Some(full) = t.full.as_mut() {
            full.0 = now();
        }
        if let Err(e) = t.commit(&tell) {
            tell(Report::Failed(e));
        } else if t.uncommitted.is_some() {
            error!(
                "shutting down with batches up to {seq} not durable (the store still refuses \
                 writes): the replies that waited for them were never sent"
            );
        }
    }
}

impl Thread {
    /// Appends the group's batches and commits them (once; more only around a snapshot).
    /// Returns a fatal failure.
    fn run(&mut self, group: &mut Vec<Command>, tell: &impl Fn(Report)) -> io::Result<()> {
        for cmd in group.drain(..) {
            match cmd {
                Command::Batch(b, at) => {
                    for ev in &b.events {
                        self.store.append(ev)?;
                    }
                    self.uncommitted = Some(b.seq);
                    self.handed_over.push(at);
                }
                Command::Snapshot(events) => {
                    self.commit(tell)?;
                    if self.uncommitted.is_some() {
                        // The journal is refusing writes: no snapshot now; asked again.
                        self.asked = false;
                        continue;
                    }
                    match self.store.write_snapshot(&events) {
                        Ok(()) => self.asked = false,
                        Err(e) if e.retryable => {
                            warn!(
                                "snapshot not written ({e}); the journal goes on, next try in \
                                 {} s",
                                SNAPSHOT_RETRY.as_secs()
                            );
                            self.asked = false;
                            self.snapshot_after = Some(now() + SNAPSHOT_RETRY);
                        }
                        Err(e) => return Err(e.error),
                    }
                }
            }
        }
        self.commit(tell)?;
        let may_ask = self.snapshot_after.is_none_or(|t| now() >= t);
        if !self.asked && may_ask && self.uncommitted.is_none() && self.store.needs_snapshot() {
            self.asked = true;
            self.snapshot_after = None;
            tell(Report::WantsSnapshot);
        }
        Ok(())
    }

    /// Commits what is buffered. A full disk is no failure: the store is marked full (the
    /// loop is told once), and the same records are tried again after a growing wait.
    fn commit(&mut self, tell: &impl Fn(Report)) -> io::Result<()> {
        let Some(seq) = self.uncommitted else {
            return Ok(());
        };
        if self.full.is_some_and(|(at, _)| now() < at) {
            return Ok(()); // not yet time to try again
        }
        match self.store.commit() {
            Ok(()) => {
                self.uncommitted = None;
                let durable = now();
                for at in self.handed_over.drain(..) {
                    self.latencies
                        .observe(durable.saturating_duration_since(at));
                }
                if self.handed_over.capacity() > MAX_GROUP {
                    // a full disk's backlog is not kept allocated
                    self.handed_over = Vec::new();
                }
                if self.full.take().is_some() {
                    info!("storage writable again: the store caught up to batch {seq}");
                    tell(Report::Storage { available: true });
                }
                let journal_bytes = self.store.size_bytes();
                let (position, alone) = (self.store.position(), self.store.alone());
                tell(Report::Durable {
                    seq,
                    journal_bytes,
                    position,
                    alone,
                });
                Ok(())
            }
            Err(e) if e.retryable => {
                let wait = match self.full {
                    None => {
                        error!(
                            "{e}: writes that need the store are refused until it takes \
                             commits again (heartbeats go on); retrying"
                        );
                        tell(Report::Storage { available: false });
                        RETRY_FIRST
                    }
                    Some((_, wait)) => (wait * 2).min(RETRY_MAX),
                };
                self.full = Some((now() + wait, wait));
                Ok(())
            }
            Err(e) => Err(e.error),
        }
    }
}
