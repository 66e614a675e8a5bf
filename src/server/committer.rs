//! The store thread: makes the engine's event batches durable off the loop.
//!
//! The loop sends each turn's [`EventBatch`] and goes on serving; this thread appends it
//! to the [`Store`], commits (one write and one fdatasync), and reports the batch durable
//! through the loop's `mio::Waker`; the engine then releases the replies that waited for
//! it (`engine::durability`). Batches that arrive while a commit is running are appended
//! together and made durable by the next one: a slow disk makes groups larger, not the
//! loop slower (LevelDB's writer queue, PostgreSQL's group commit).
//!
//! A failed append, commit or snapshot is reported and ends the thread; the server stops
//! without writing anything that waited for it. Snapshots are written here too: the loop
//! builds the state's events when the store asks for one and sends them in line with the
//! batches, so the snapshot holds exactly the batches sent before it.

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use log::error;
use mio::Waker;

use crate::engine::event::Event;
use crate::engine::EventBatch;
use crate::store::Store;

/// Commands taken in one go before a commit, at most (bounds one group's memory).
const MAX_GROUP: usize = 1024;

enum Command {
    Batch(EventBatch),
    /// The whole state, replacing everything committed so far.
    Snapshot(Vec<Event>),
}

/// What the thread tells the loop.
pub(super) enum Report {
    /// Every batch up to `seq` is durable; the journal now holds `journal_bytes`.
    Durable { seq: u64, journal_bytes: u64 },
    /// The journal passed its size threshold: send a snapshot.
    WantsSnapshot,
    /// Nothing after this may be acknowledged; the thread has stopped.
    Failed(io::Error),
}

pub(super) struct Committer {
    tx: Option<Sender<Command>>,
    reports: Receiver<Report>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub(super) fn start(store: Box<dyn Store>, waker: Arc<Waker>) -> io::Result<Committer> {
        let (tx, rx) = mpsc::channel();
        let (report_tx, reports) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("sessiond-store".into())
            .spawn(move || store_thread(store, rx, report_tx, waker))?;
        Ok(Committer {
            tx: Some(tx),
            reports,
            thread: Some(thread),
        })
    }

    pub(super) fn send_batch(&self, batch: EventBatch) {
        self.send(Command::Batch(batch));
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

fn store_thread(
    mut store: Box<dyn Store>,
    rx: Receiver<Command>,
    reports: Sender<Report>,
    waker: Arc<Waker>,
) {
    let tell = |r: Report| {
        let _ = reports.send(r);
        if let Err(e) = waker.wake() {
            error!("store thread cannot wake the loop: {e}");
        }
    };
    let mut asked = false;
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Ok(first) = rx.recv() {
        group.push(first);
        group.extend(rx.try_iter().take(MAX_GROUP - 1));
        match commit_group(&mut *store, &mut group, &tell) {
            Ok(snapshotted) => asked &= !snapshotted,
            Err(e) => {
                error!("journal write failed, stopping: {e}");
                tell(Report::Failed(e));
                return;
            }
        }
        if !asked && store.needs_snapshot() {
            asked = true;
            tell(Report::WantsSnapshot);
        }
    }
}

/// Appends the group's batches with one commit (more only around a snapshot); returns
/// whether a snapshot was written.
fn commit_group(
    store: &mut dyn Store,
    group: &mut Vec<Command>,
    tell: &impl Fn(Report),
) -> io::Result<bool> {
    let mut uncommitted = None;
    let mut snapshotted = false;
    for cmd in group.drain(..) {
        match cmd {
            Command::Batch(b) => {
                for ev in &b.events {
                    store.append(ev)?;
                }
                uncommitted = Some(b.seq);
            }
            Command::Snapshot(events) => {
                if let Some(seq) = uncommitted.take() {
                    store.commit()?;
                    let journal_bytes = store.size_bytes();
                    tell(Report::Durable { seq, journal_bytes });
                }
                store.write_snapshot(&events)?;
                snapshotted = true;
            }
        }
    }
    if let Some(seq) = uncommitted {
        store.commit()?;
        let journal_bytes = store.size_bytes();
        tell(Report::Durable { seq, journal_bytes });
    }
    Ok(snapshotted)
}
