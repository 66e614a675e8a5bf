//! A thread that makes new users durable off the event loop, answering through a channel
//! and `mio::Waker` (the same shape as the hash pool).
//!
//! Design: a registration's REGISTER_SUCCESS must not leave before the account is on disk,
//! and an fsync must not stall the loop, so the loop hands the write here and sends the
//! reply when the answer comes back.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use log::{error, warn};
use mio::Waker;

use super::users_file::append_user;
use crate::session::User;

/// A user to make durable; `ticket` comes back in the result.
pub struct PersistJob {
    pub ticket: u64,
    pub user: User,
}

/// The outcome of a [`PersistJob`].
pub struct PersistResult {
    pub ticket: u64,
    pub user_id: u64,
    pub ok: bool,
}

/// The writer thread; stops when dropped.
pub struct UserWriter {
    jobs: Option<Sender<PersistJob>>,
    results: Receiver<PersistResult>,
    thread: Option<JoinHandle<()>>,
}

impl UserWriter {
    /// Starts the thread writing to `dir/users`.
    pub fn start(dir: PathBuf, waker: Arc<Waker>) -> std::io::Result<UserWriter> {
        let (tx, rx) = mpsc::channel::<PersistJob>();
        let (rtx, results) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("sessiond-store".into())
            .spawn(move || {
                for job in rx {
                    let ok = match append_user(&dir, &job.user) {
                        Ok(()) => true,
                        Err(e) => {
                            error!(
                                "cannot write user {} to {}: {e}",
                                job.user.username,
                                dir.display()
                            );
                            false
                        }
                    };
                    let r = PersistResult {
                        ticket: job.ticket,
                        user_id: job.user.id,
                        ok,
                    };
                    if rtx.send(r).is_err() {
                        return;
                    }
                    if let Err(e) = waker.wake() {
                        warn!("store thread cannot wake the loop: {e}");
                    }
                }
            })?;
        Ok(UserWriter {
            jobs: Some(tx),
            results,
            thread: Some(thread),
        })
    }

    /// Queues a write; never blocks. False if the thread is gone.
    pub fn submit(&self, job: PersistJob) -> bool {
        self.jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    /// The next finished write, if any.
    pub fn try_recv(&self) -> Option<PersistResult> {
        self.results.try_recv().ok()
    }
}

impl Drop for UserWriter {
    /// Finishes queued writes (they were promised to nobody yet, but they are cheap) and
    /// joins the thread.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
