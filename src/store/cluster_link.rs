//! A cluster node's link to the other nodes, on a thread of its own with its own database
//! connection (the store thread's commits never wait for it, nor it for them).
//!
//! - **The others' records**: it reads the log after the last record it read and hands
//!   the other nodes' records to the loop in log order ([`FromLink::Records`]), which
//!   applies them to its engine (`Engine::apply_remote`): their accounts and sessions,
//!   and the ends of sessions bound here, whose connections are told at once.
//! - **How far this node has applied the log**: once the loop has applied records (and
//!   written what they made it tell its connections), it says so ([`ToLink::Applied`]);
//!   the link writes it to the node's row (`sessiond_nodes.applied`).
//! - **Barriers**: a batch that creates, resumes or ends a session, or makes or changes an
//!   account, is not answered until every other live node has applied it
//!   ([`ToLink::Await`], [`FromLink::Released`]): by then the node holding an old
//!   connection of the account has told it and closed it, or its lease ran out and it
//!   stopped by itself. So a new session is never usable while an old one it displaced
//!   still answers heartbeats elsewhere. (A node alone, as its commit found, answers at
//!   once: `server::peers`.)
//! - **Live nodes**: which nodes' leases hold ([`FromLink::Nodes`]); the lowest-numbered
//!   live node sweeps the detached sessions' expiry for the cluster.
//! - **Account names**: a registration's name is reserved in `sessiond_accounts`, with an
//!   id from the database's sequence, before the engine creates the account
//!   ([`ToLink::Reserve`]).
//!
//! `NOTIFY` is the doorbell (each commit rings `sessiond_log`, each applied position
//! `sessiond_applied`), heard by a second thread that only listens; the link also polls,
//! so a lost notification delays, never loses, anything.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use log::{error, info, warn};
use mio::Waker;
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;

use super::cluster::{connect_within, decode, describe, reserve_account, LIVE};
use crate::auth::{HashResult, Reservation};
use crate::engine::event::Event;

/// What the link needs: the database, and who this node is there.
#[derive(Debug, Clone)]
pub struct LinkSpec {
    /// The connection string.
    pub url: String,
    /// The node's name (for log lines).
    pub node: String,
    /// The node's writer id (its row of `sessiond_nodes`; its own records carry it).
    pub writer: i64,
    /// The node's lease.
    pub lease: Duration,
    /// The last log record the node's start read.
    pub read_from: i64,
    /// Sessions bound to connections on other live nodes then: (session, writer).
    pub bound: Vec<(u64, i64)>,
}

/// What the loop tells the link.
#[derive(Debug)]
pub enum ToLink {
    /// The loop has applied every log record up to this one.
    Applied(i64),
    /// Batches up to `batch` are durable, their records ending at log record
    /// `position`: release them once every other live node has applied that far.
    Await {
        /// The engine's batch number.
        batch: u64,
        /// The log record their commit ended at.
        position: i64,
    },
    /// A registration's hash is done: reserve the name its result asks for.
    Reserve(HashResult),
    /// A notification came (from the listening thread).
    Doorbell,
}

/// What the link tells the loop.
#[derive(Debug)]
pub enum FromLink {
    /// The other nodes' records, in log order, each with its writer; `through` is the
    /// last log record read, this node's own included (report it applied after these).
    Records {
        /// The last record read.
        through: i64,
        /// The others' records.
        events: Vec<(i64, Event)>,
    },
    /// The live nodes' writer ids (this one's included), when they change; `sweeper`:
    /// this node has the lowest id, and sweeps the detached sessions' expiry.
    Nodes {
        /// The live writers.
        live: Vec<i64>,
        /// Whether this node sweeps.
        sweeper: bool,
    },
    /// Every other live node has applied the batches up to this one.
    Released(u64),
    /// A reservation answered: the result with its [`Reservation`] filled in.
    Reserved(HashResult),
}

/// The loop's handle on the link thread.
pub struct Link {
    tx: Sender<ToLink>,
    rx: Receiver<FromLink>,
}

/// How often the log and the nodes are looked at without a notification.
const POLL: Duration = Duration::from_millis(200);
/// ... and while batches wait for the others.
/// (The doorbell rings when another node has applied more; this is the fallback.)
const POLL_AWAITING: Duration = Duration::from_millis(50);
/// Records read at once, at most (a node far behind catches up in several reads).
const READ_LIMIT: i64 = 20_000;

impl Link {
    /// Starts the link's threads; `waker` wakes the loop when something comes.
    pub fn start(spec: LinkSpec, waker: Arc<Waker>) -> io::Result<Link> {
        let (tx, rx) = mpsc::channel();
        let (out_tx, out_rx) = mpsc::channel();
        let bell = tx.clone();
        let url = spec.url.clone();
        let (lease, me) = (spec.lease, spec.writer.to_string());
        thread::Builder::new()
            .name("sessiond-listen".into())
            .spawn(move || listen(&url, lease, &me, bell))?;
        thread::Builder::new()
            .name("sessiond-link".into())
            .spawn(move || LinkThread::new(spec, out_tx, waker).run(rx))?;
        Ok(Link { tx, rx: out_rx })
    }

    /// Tells the link thread (which lives as long as the process).
    pub fn send(&self, m: ToLink) {
        let _ = self.tx.send(m);
    }

    /// The link's next news, if any.
    pub fn try_recv(&self) -> Option<FromLink> {
        self.rx.try_recv().ok()
    }
}

#[allow(clippy::disallowed_methods)] // the link thread's own clock, for its polling
fn now() -> Instant {
    Instant::now()
}

/// The listening thread: rings the link's doorbell at each notification but for this
/// node's own commits (their payload is its writer id); reconnects after a failure. Ends
/// when the link thread is gone.
fn listen(url: &str, lease: Duration, me: &str, bell: Sender<ToLink>) {
    loop {
        let mut client = match connect_within(url, Some(lease)) {
            Ok(c) => c,
            Err(_) => {
                thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if client
            .batch_execute("LISTEN sessiond_log; LISTEN sessiond_applied")
            .is_err()
        {
            thread::sleep(Duration::from_secs(1));
            continue;
        }
        loop {
            let mut n = client.notifications();
            let mut it = n.timeout_iter(Duration::from_secs(1));
            match it.next() {
                Ok(Some(n)) if n.channel() == "sessiond_log" && n.payload() == me => {}
                Ok(Some(_)) => {
                    if bell.send(ToLink::Doorbell).is_err() {
                        return;
                    }
                }
                Err(_) => break, // the connection broke: connect again
                Ok(None) => {}
            }
            drop(it);
            drop(n);
            if client.is_closed() {
                break;
            }
        }
    }
}

struct LinkThread {
    spec: LinkSpec,
    out: Sender<FromLink>,
    waker: Arc<Waker>,
    client: Option<Client>,
    /// The last log record read.
    read: i64,
    /// How far the loop has applied the log, and how far the node's row says.
    applied: i64,
    applied_told: i64,
    /// The last record handed to the loop and not yet reported applied, and the last of
    /// this node's own records read after it (applied already, but not before the
    /// others' records ahead of them are).
    forwarded: Option<i64>,
    own_after: i64,
    /// Batches waiting for the others, in order: (batch, position).
    awaits: VecDeque<(u64, i64)>,
    reservations: Vec<HashResult>,
    live: Vec<i64>,
    next_nodes: Instant,
    /// When the database was last found away (warned once per outage).
    away: bool,
}

impl LinkThread {
    fn new(spec: LinkSpec, out: Sender<FromLink>, waker: Arc<Waker>) -> LinkThread {
        LinkThread {
            read: spec.read_from,
            applied: spec.read_from,
            applied_told: spec.read_from,
            forwarded: None,
            own_after: 0,
            spec,
            out,
            waker,
            client: None,
            awaits: VecDeque::new(),
            reservations: Vec::new(),
            live: Vec::new(),
            next_nodes: now(),
            away: false,
        }
    }

    fn run(mut self, rx: Receiver<ToLink>) {
        loop {
            let wait = if self.awaits.is_empty() {
                POLL
            } else {
                POLL_AWAITING
            };
            match rx.recv_timeout(wait) {
                Ok(m) => self.take(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(m) = rx.try_recv() {
                self.take(m);
            }
            let told = match self.step() {
                Ok(told) => {
                    if std::mem::take(&mut self.away) {
                        info!("cluster link: the database answers again");
                    }
                    told
                }
                Err(e) => {
                    if !std::mem::replace(&mut self.away, true) {
                        warn!("cluster link: {e}; trying again");
                    }
                    self.client = None;
                    // Refused, not kept waiting: the client may retry.
                    let refused = !self.reservations.is_empty();
                    for mut r in self.reservations.drain(..) {
                        r.reserve = Reservation::Unavailable;
                        let _ = self.out.send(FromLink::Reserved(r));
                    }
                    if !refused {
                        thread::sleep(Duration::from_millis(250));
                    }
                    refused
                }
            };
            if told {
                if let Err(e) = self.waker.wake() {
                    error!("cluster link cannot wake the loop: {e}");
                }
            }
        }
    }

    fn take(&mut self, m: ToLink) {
        match m {
            ToLink::Applied(n) => {
                self.applied = self.applied.max(n);
                if self.forwarded.is_some_and(|f| n >= f) {
                    self.forwarded = None;
                    self.applied = self.applied.max(self.own_after);
                }
            }
            ToLink::Await { batch, position } => self.awaits.push_back((batch, position)),
            ToLink::Reserve(r) => self.reservations.push(r),
            ToLink::Doorbell => {}
        }
    }

    /// One round: reservations, the log, the applied position, the nodes and the
    /// barriers. True if the loop was told something.
    fn step(&mut self) -> Result<bool, String> {
        let db = |e: postgres::Error| describe(&e);
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client =
                Some(connect_within(&self.spec.url, Some(self.spec.lease)).map_err(|e| e.0)?);
        }
        let mut told = false;
        let me = self.spec.writer;
        let client = self.client.as_mut().expect("connected above");
        // Each is answered once: taken off the list only when its answer is known (on a
        // failure the rest are refused by `run`).
        while let Some(r) = self.reservations.last() {
            let answer = match &r.reserve {
                Reservation::Wanted(name) => match reserve_account(client, name).map_err(db)? {
                    Some(id) => Reservation::Reserved(id),
                    None => Reservation::Taken,
                },
                other => other.clone(),
            };
            let mut r = self.reservations.pop().expect("looked at above");
            r.reserve = answer;
            let _ = self.out.send(FromLink::Reserved(r));
            told = true;
        }
        let rows = client
            .query(
                // This node's own records are applied already: their bodies stay there.
                "SELECT seq, writer, kind, CASE WHEN writer = $3 THEN NULL ELSE body END
                   FROM sessiond_events WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&self.read, &READ_LIMIT, &me],
            )
            .map_err(db)?;
        if let Some(last) = rows.last() {
            let through: i64 = last.get(0);
            let mut events = Vec::new();
            for row in &rows {
                let (seq, writer, kind, body): (i64, i64, i16, Option<&[u8]>) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                let Some(body) = body.filter(|_| writer != me) else {
                    continue;
                };
                match decode(seq, kind, body) {
                    Ok(ev) => events.push((writer, ev)),
                    Err(e) => error!("cluster link: {e}; skipped"),
                }
            }
            self.read = through;
            if !events.is_empty() {
                self.forwarded = Some(through);
                let _ = self.out.send(FromLink::Records { through, events });
                told = true;
            } else if self.forwarded.is_some() {
                // Only this node's own records, behind others' the loop has not applied.
                self.own_after = through;
            } else {
                // Only this node's own records: applied already.
                self.applied = self.applied.max(through);
            }
        }
        if self.applied > self.applied_told {
            client
                .execute(
                    "WITH moved AS (
                     UPDATE sessiond_nodes SET applied = $2 WHERE writer = $1 RETURNING 1
                 )
                 SELECT pg_notify('sessiond_applied', '') FROM moved",
                    &[&me, &self.applied],
                )
                .map_err(db)?;
            self.applied_told = self.applied;
        }
        if !self.awaits.is_empty() || now() >= self.next_nodes {
            self.next_nodes = now() + (self.spec.lease / 4).clamp(POLL, Duration::from_secs(1));
            let nodes = client
                .query(
                    &format!(
                        "SELECT writer, applied FROM sessiond_nodes WHERE serves AND {LIVE} ORDER BY writer"
                    ),
                    &[],
                )
                .map_err(db)?;
            let live: Vec<i64> = nodes.iter().map(|r| r.get(0)).collect();
            if live != self.live {
                let sweeper = live.first() == Some(&me);
                self.live = live.clone();
                let _ = self.out.send(FromLink::Nodes { live, sweeper });
                told = true;
            }
            let slowest = nodes
                .iter()
                .filter(|r| r.get::<_, i64>(0) != me)
                .map(|r| r.get::<_, i64>(1))
                .min()
                .unwrap_or(i64::MAX);
            let mut released = None;
            while let Some(&(batch, position)) = self.awaits.front() {
                if position > slowest {
                    break;
                }
                self.awaits.pop_front();
                released = Some(batch);
            }
            if let Some(b) = released {
                let _ = self.out.send(FromLink::Released(b));
                told = true;
            }
        }
        Ok(told)
    }
}
