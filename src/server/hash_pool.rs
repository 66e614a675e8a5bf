//! A bounded pool of password-hashing threads that answer the event loop through a channel
//! and `mio::Waker`.
//!
//! Design: one `Mutex<VecDeque>` + `Condvar` queue shared by the workers, so `submit` can
//! refuse at capacity without blocking (the engine turns that into LOGIN_FAILURE
//! SERVER_BUSY); results go back over an mpsc channel and one `wake()` per result (mio
//! coalesces wakes the loop has not yet seen).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use log::{error, warn};
use mio::Waker;

use crate::auth::{run_job, HashJob, HashResult, JobOutcome};

/// `submit` found the queue full; the job is handed back.
pub(super) struct PoolFull(pub HashJob);

struct Queue {
    jobs: VecDeque<HashJob>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    in_flight: AtomicUsize,
}

impl Shared {
    /// A poisoned lock means a worker panicked while holding it; the queue itself is still
    /// consistent (every operation on it is a single push or pop), so keep going.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The hashing threads.
pub(super) struct HashPool {
    shared: Arc<Shared>,
    results: Receiver<HashResult>,
    workers: Vec<JoinHandle<()>>,
    capacity: usize,
}

impl HashPool {
    /// Starts `workers` threads (at least one). At most `queue_capacity` jobs wait for a
    /// thread; `submit` refuses beyond that.
    pub fn new(workers: usize, queue_capacity: usize, waker: Arc<Waker>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::with_capacity(queue_capacity.min(QUEUE_KEEP)),
                closed: false,
            }),
            ready: Condvar::new(),
            in_flight: AtomicUsize::new(0),
        });
        let (tx, results) = mpsc::channel();
        let mut handles = Vec::new();
        for n in 0..workers.max(1) {
            let shared = shared.clone();
            let tx: Sender<HashResult> = tx.clone();
            let waker = waker.clone();
            let h = std::thread::Builder::new()
                .name(format!("sessiond-hash-{n}"))
                .spawn(move || {
                    lower_priority();
                    worker(&shared, &tx, &waker)
                })?;
            handles.push(h);
        }
        Ok(HashPool {
            shared,
            results,
            workers: handles,
            capacity: queue_capacity,
        })
    }

    /// Queues a job without blocking; `Err(PoolFull(job))` when `queued() == capacity`.
    pub fn submit(&self, job: HashJob) -> Result<(), PoolFull> {
        let mut q = self.shared.lock();
        if q.closed || q.jobs.len() >= self.capacity {
            return Err(PoolFull(job));
        }
        q.jobs.push_back(job);
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        drop(q);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// The next finished job, if any; never blocks.
    pub fn try_recv(&self) -> Option<HashResult> {
        self.results.try_recv().ok()
    }

    /// Jobs submitted and not yet answered.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Jobs waiting for a thread.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.shared.lock().jobs.len()
    }

    /// Worker threads started.
    #[cfg(test)]
    pub fn workers(&self) -> usize {
        self.workers.len()
    }
}

impl Drop for HashPool {
    /// Drops queued jobs, lets running ones finish (one hash at most), joins the threads.
    fn drop(&mut self) {
        {
            let mut q = self.shared.lock();
            q.closed = true;
            q.jobs.clear();
        }
        self.shared.ready.notify_all();
        for h in self.workers.drain(..) {
            if h.join().is_err() {
                error!("a hashing thread panicked");
            }
        }
    }
}

fn worker(shared: &Shared, tx: &Sender<HashResult>, waker: &Waker) {
    loop {
        let job = {
            let mut q = shared.lock();
            loop {
                if let Some(job) = q.jobs.pop_front() {
                    if q.jobs.is_empty() && q.jobs.capacity() > QUEUE_KEEP {
                        // a burst's queue is not kept allocated once it has drained
                        q.jobs = VecDeque::with_capacity(QUEUE_KEEP);
                    }
                    break job;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let ticket = job.ticket;
        let outcome = catch_unwind(AssertUnwindSafe(|| run_job(job.kind)))
            .unwrap_or(JobOutcome::Failed(std::io::ErrorKind::Other));
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        if tx.send(HashResult { ticket, outcome }).is_err() {
            return; // the pool is gone
        }
        if let Err(e) = waker.wake() {
            warn!("hash worker cannot wake the loop: {e}");
        }
    }
}

/// Queue slots kept allocated (more grow in a burst and are given back when it drains).
const QUEUE_KEEP: usize = 1024;

/// How much nicer than the event loop a hash worker runs (Unix niceness, 0-19).
pub const WORKER_NICENESS: i32 = 19;

/// Makes the calling thread (a hash worker) yield the CPU to the event loop when the
/// machine is saturated: a login storm then slows logins, not everyone's heartbeats.
/// Measured with 4 connections logging in and out at PBKDF2 10,000 on 2 cores beside
/// the load generator: heartbeat p99 3.7-4.1x its calm value without it; at niceness 10
/// 2.0-4.4x; at 19 1.85-2.3 ms against 0.93-1.2 ms calm (mean 1.9x). The price: logins
/// get only the CPU the loop leaves (300-1,800 per 4 s in those runs).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // On Linux, niceness is per thread: setpriority on this thread's id.
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), WORKER_NICENESS) {
            warn!("cannot lower the hash worker's priority: {e}");
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // the shell's threads answer in real time
mod tests {
    use super::*;
    use crate::auth::{JobKind, PasswordRecord};
    use crate::protocol::Secret;
    use mio::{Events, Poll, Token};
    use std::time::{Duration, Instant};

    const WAKE: Token = Token(7);

    fn pool(workers: usize, cap: usize) -> (Poll, HashPool) {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).unwrap());
        let p = HashPool::new(workers, cap, waker).unwrap();
        (poll, p)
    }

    /// Waits on the poll (bounded) until `n` results have come back through the waker.
    fn collect(poll: &mut Poll, p: &HashPool, n: usize) -> Vec<HashResult> {
        let mut events = Events::with_capacity(8);
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while out.len() < n {
            assert!(Instant::now() < deadline, "results did not arrive");
            poll.poll(&mut events, Some(Duration::from_millis(200)))
                .unwrap();
            while let Some(r) = p.try_recv() {
                out.push(r);
            }
        }
        out
    }

    #[test]
    fn verify_and_create_answer_through_the_waker() {
        let (mut poll, p) = pool(2, 16);
        let rec = PasswordRecord::create(b"right", 1000).unwrap();
        for (t, pw) in [(1, "right"), (2, "wrong")] {
            p.submit(HashJob {
                ticket: t,
                kind: JobKind::Verify {
                    password: Secret::from(pw),
                    record: rec.clone(),
                },
            })
            .map_err(|_| "full")
            .unwrap();
        }
        p.submit(HashJob {
            ticket: 3,
            kind: JobKind::Create {
                password: Secret::from("new"),
                iterations: 1000,
            },
        })
        .map_err(|_| "full")
        .unwrap();
        let mut r = collect(&mut poll, &p, 3);
        r.sort_by_key(|r| r.ticket);
        assert!(matches!(r[0].outcome, JobOutcome::Verified(true)));
        assert!(matches!(r[1].outcome, JobOutcome::Verified(false)));
        match &r[2].outcome {
            JobOutcome::Created(rec) => assert!(rec.verify(b"new")),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.in_flight(), 0);
        assert_eq!(p.workers(), 2);
    }

    #[test]
    fn refuses_beyond_capacity_and_drop_joins() {
        let (mut poll, p) = pool(1, 2);
        // One slow job occupies the worker; the queue holds two more; the fourth is refused
        // (the first may still be queued, so allow one more to be taken).
        let slow = PasswordRecord::create(b"x", 200_000).unwrap();
        let mut accepted = 0;
        let mut refused = 0;
        for t in 0..6 {
            let job = HashJob {
                ticket: t,
                kind: JobKind::Verify {
                    password: Secret::from("x"),
                    record: slow.clone(),
                },
            };
            match p.submit(job) {
                Ok(()) => accepted += 1,
                Err(PoolFull(j)) => {
                    assert_eq!(j.ticket, t);
                    refused += 1;
                }
            }
        }
        assert!((2..=3).contains(&accepted), "accepted {accepted}");
        assert_eq!(accepted + refused, 6);
        assert!(p.queued() <= 2);
        collect(&mut poll, &p, 1);
        let start = Instant::now();
        drop(p);
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
