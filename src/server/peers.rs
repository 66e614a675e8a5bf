//! The loop's side of a cluster node's link to the others (`store::cluster_link`): the
//! others' records handed to the engine, how far they are applied told back once the turn
//! that applied them has written its pushes, the batches whose answers wait for the other
//! nodes (a barrier), and registrations' names reserved before the engine makes the
//! account.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use mio::Waker;

use crate::auth::{HashResult, Reservation};
use crate::engine::event::{AuditKind, Event};
use crate::engine::{Engine, EventBatch};
use crate::store::cluster_link::{FromLink, Link, LinkSpec, ToLink};

pub(super) struct Peers {
    link: Link,
    /// Batches sent to the store whose answers wait for the other nodes, oldest first.
    gated: VecDeque<u64>,
    /// Batches durable and waiting for the other nodes to apply them, oldest first.
    awaiting: VecDeque<u64>,
    /// The last log record applied and not yet told to the link (after the turn).
    applied: Option<i64>,
}

impl Peers {
    pub(super) fn start(spec: LinkSpec, waker: Arc<Waker>) -> io::Result<Peers> {
        Ok(Peers {
            link: Link::start(spec, waker)?,
            gated: VecDeque::new(),
            awaiting: VecDeque::new(),
            applied: None,
        })
    }

    /// A batch goes to the store: if it creates, resumes or ends a session, or makes or
    /// changes an account (so that it can be used on any node next), its answers wait until every other live node has applied it (see
    /// `store::cluster_link`).
    pub(super) fn sent(&mut self, batch: &EventBatch) {
        let gates = batch.events.iter().any(|ev| match ev {
            Event::SessionCreated(_)
            | Event::SessionEnded { .. }
            | Event::UserCreated(_)
            | Event::UserUpdated(_) => true,
            Event::Audit(a) => a.kind == AuditKind::SessionResumed,
            _ => false,
        });
        if gates {
            self.gated.push_back(batch.seq);
        }
    }

    /// Batches up to `seq` are durable, their records ending at log record `position`,
    /// and no other node was live at their commit if `alone`: true if they wait for the
    /// other nodes (the link releases them later), false if the engine may be told now.
    pub(super) fn durable(&mut self, seq: u64, position: u64, alone: bool) -> bool {
        let mut gated = false;
        while self.gated.front().is_some_and(|&b| b <= seq) {
            self.gated.pop_front();
            gated = true;
        }
        // Behind a batch that waits, every later one waits too (answers go in order).
        if (alone || !gated) && self.awaiting.is_empty() {
            return false;
        }
        self.awaiting.push_back(seq);
        self.link.send(ToLink::Await {
            batch: seq,
            position: position as i64,
        });
        true
    }

    /// A hash result that must first reserve its account's name goes to the link (and
    /// comes back through [`Peers::drain`]); any other is given back.
    pub(super) fn reserve(&mut self, result: HashResult) -> Option<HashResult> {
        if matches!(result.reserve, Reservation::Wanted(_)) {
            self.link.send(ToLink::Reserve(result));
            return None;
        }
        Some(result)
    }

    /// What the link has brought, handed to the engine.
    pub(super) fn drain(&mut self, engine: &mut Engine, now: Instant) {
        while let Some(m) = self.link.try_recv() {
            match m {
                FromLink::Records { through, events } => {
                    engine.apply_remote(&events, now);
                    self.applied = Some(through);
                }
                FromLink::Nodes { live, sweeper } => engine.set_nodes(&live, sweeper),
                FromLink::Released(batch) => {
                    while self.awaiting.front().is_some_and(|&b| b <= batch) {
                        self.awaiting.pop_front();
                    }
                    engine.handle_durable(batch, 0);
                }
                FromLink::Reserved(result) => engine.handle_hash_result(result, now),
            }
        }
    }

    /// After the turn: the records applied before it are told applied (the pushes they
    /// caused are written by now).
    pub(super) fn after_turn(&mut self) {
        if let Some(n) = self.applied.take() {
            self.link.send(ToLink::Applied(n));
        }
    }
}
