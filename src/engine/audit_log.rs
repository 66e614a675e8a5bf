//! The audit trail in memory, for AUDIT_QUERY and AUDIT_SEARCH: the newest records,
//! numbered.
//!
//! Owns the bounded window of records the server can answer queries from and the query
//! itself. The journal (and its archive) holds the complete trail; `sessiond audit` reads
//! that offline. Records are numbered from 1 in the order they happened during this run
//! (the ones replayed at startup first); a query's cursor is such a number.
//!
//! A record is held in at most 72 bytes: the address as a 20-byte [`Peer`], the note (and
//! an address that is not `ip:port`) and the device as interned labels, and what few
//! records have (an actor, the name an unknown login tried) in a box of its own. The
//! window's 100,000 records cost ~7 MB.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::conn::Peer;
use crate::engine::event::{Actor, Audit, AuditKind};
use crate::labels::{LabelId, Labels};

/// Records scanned by one query at most, so a query with a rare filter cannot hold the
/// loop: the page then comes back short with a cursor to continue from.
pub const MAX_SCAN: usize = 20_000;

/// What a query wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this account's records.
    pub user_id: Option<u64>,
    /// Only this kind (its record byte); None: all.
    pub kind: Option<u8>,
    /// Only records with `at_ms` at or after this, Unix ms.
    pub from_ms: u64,
    /// Only records with `at_ms` before this, Unix ms; 0: no bound.
    pub to_ms: u64,
    /// Newest first: the cursor is then an exclusive upper bound (0: from the newest).
    pub newest_first: bool,
}

impl AuditFilter {
    fn matches(&self, a: &Record) -> bool {
        self.user_id.is_none_or(|u| a.user_id == u)
            && self.kind.is_none_or(|k| a.kind as u8 == k)
            && a.at_ms >= self.from_ms
            && (self.to_ms == 0 || a.at_ms < self.to_ms)
    }
}

/// One record as the window holds it.
#[derive(Debug)]
struct Record {
    at_ms: u64,
    user_id: u64,
    session_id: u64,
    /// The address when it is a socket address printed the usual way.
    peer: Option<Peer>,
    /// `(detail, address)` when either is not covered above: the detail, and the address
    /// if it is text other than `peer`'s (the operator commands' empty one is `("", "")`
    /// only when the detail is not empty too).
    text: Option<LabelId>,
    /// `(client, platform)` when either is not empty.
    device: Option<LabelId>,
    /// What few records have.
    rare: Option<Box<Rare>>,
    reason: u16,
    kind: AuditKind,
}

#[derive(Debug)]
struct Rare {
    tried: String,
    actor: Option<Actor>,
}

/// The newest audit records, numbered, for AUDIT_QUERY (see the module docs).
#[derive(Debug)]
pub struct AuditLog {
    records: VecDeque<Record>,
    labels: Labels,
    /// The number of `records[0]`.
    first_seq: u64,
    capacity: usize,
}

impl AuditLog {
    /// An empty window holding at most `capacity` records (at least 1).
    pub fn new(capacity: usize) -> AuditLog {
        AuditLog {
            records: VecDeque::new(),
            labels: Labels::default(),
            first_seq: 1,
            capacity: capacity.max(1),
        }
    }

    /// Appends a record as the newest, dropping the oldest when the window is full.
    pub fn push(&mut self, a: &Audit) {
        if self.records.len() == self.capacity {
            if let Some(old) = self.records.pop_front() {
                for l in [old.text, old.device].into_iter().flatten() {
                    self.labels.release(l);
                }
            }
            self.first_seq += 1;
        }
        // Only an address that prints back exactly is kept as a Peer.
        let peer = a
            .address
            .parse::<SocketAddr>()
            .ok()
            .map(Peer::from)
            .filter(|p| p.to_string() == a.address);
        let address_text = if peer.is_some() { "" } else { &a.address };
        let text = (!a.detail.is_empty() || !address_text.is_empty())
            .then(|| self.labels.acquire(&a.detail, address_text));
        let device = (!a.client.is_empty() || !a.platform.is_empty())
            .then(|| self.labels.acquire(&a.client, &a.platform));
        let rare = (!a.username.is_empty() || a.actor.is_some()).then(|| {
            Box::new(Rare {
                tried: a.username.clone(),
                actor: a.actor.clone(),
            })
        });
        self.records.push_back(Record {
            at_ms: a.at_ms,
            user_id: a.user_id,
            session_id: a.session_id,
            peer,
            text,
            device,
            rare,
            reason: a.reason,
            kind: a.kind,
        });
    }

    fn audit(&self, r: &Record) -> Audit {
        let (detail, address_text) = r.text.map_or(("", ""), |t| self.labels.get(t));
        let (client, platform) = r.device.map_or(("", ""), |t| self.labels.get(t));
        let address = r
            .peer
            .map_or_else(|| address_text.to_owned(), |p| p.to_string());
        let mut a = Audit::new(r.kind, r.user_id, r.session_id, address)
            .reason(r.reason)
            .device(client, platform)
            .note(detail);
        a.at_ms = r.at_ms;
        if let Some(rare) = &r.rare {
            a.username.clone_from(&rare.tried);
            a.actor.clone_from(&rare.actor);
        }
        a
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Up to `limit` matching records from number `cursor` on (0: the oldest held), with
    /// the cursor to continue from (0 when nothing after them is left to look at). With
    /// `newest_first`, the records numbered below `cursor` (0: every one), newest first,
    /// and the cursor to continue below.
    pub fn query(&self, f: &AuditFilter, cursor: u64, limit: usize) -> (Vec<(u64, Audit)>, u64) {
        let end = self.first_seq + self.records.len() as u64;
        if f.newest_first {
            return self.query_back(f, if cursor == 0 { end } else { cursor.min(end) }, limit);
        }
        let start = cursor.max(self.first_seq);
        let mut out = Vec::new();
        let mut seq = start;
        let mut scanned = 0;
        while seq < end && out.len() < limit && scanned < MAX_SCAN {
            let r = &self.records[(seq - self.first_seq) as usize];
            if f.matches(r) {
                out.push((seq, self.audit(r)));
            }
            seq += 1;
            scanned += 1;
        }
        let next = if seq < end { seq } else { 0 };
        (out, next)
    }

    /// `query` newest first: records numbered below `below`.
    fn query_back(&self, f: &AuditFilter, below: u64, limit: usize) -> (Vec<(u64, Audit)>, u64) {
        let mut out = Vec::new();
        let mut seq = below;
        let mut scanned = 0;
        while seq > self.first_seq && out.len() < limit && scanned < MAX_SCAN {
            seq -= 1;
            let r = &self.records[(seq - self.first_seq) as usize];
            if f.matches(r) {
                out.push((seq, self.audit(r)));
            }
            scanned += 1;
        }
        let next = if seq > self.first_seq { seq } else { 0 };
        (out, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at_ms: u64, kind: AuditKind, user_id: u64) -> Audit {
        let mut a = Audit::new(kind, user_id, 0, "");
        a.at_ms = at_ms;
        a
    }

    #[test]
    fn newest_first_pages_down_with_the_cursor() {
        let mut log = AuditLog::new(8);
        for i in 0..10 {
            log.push(&rec(i, AuditKind::LoginFailed, i % 2));
        }
        // held: 3..=10; user 1's are the odd at_ms, i.e. the even numbers
        let f = AuditFilter {
            user_id: Some(1),
            newest_first: true,
            ..AuditFilter::default()
        };
        let (page, next) = log.query(&f, 0, 2);
        assert_eq!(page.iter().map(|p| p.0).collect::<Vec<_>>(), [10, 8]);
        assert_eq!(next, 8);
        let (page, next) = log.query(&f, next, 2);
        assert_eq!(page.iter().map(|p| p.0).collect::<Vec<_>>(), [6, 4]);
        let (page, next) = log.query(&f, next, 2);
        assert!(page.is_empty());
        assert_eq!(next, 0);
        // a cursor past the end means "from the newest"; one below the window, nothing
        assert_eq!(log.query(&f, 99, 1).0[0].0, 10);
        assert_eq!(log.query(&f, 2, 5), (Vec::new(), 0));
    }

    #[test]
    fn typed_fields_come_back_and_their_labels_go_with_the_record() {
        let mut log = AuditLog::new(1);
        let actor = Actor {
            user_id: 1,
            session_id: 9,
            address: "192.0.2.1:7".into(),
            client: "admin".into(),
            platform: "cli".into(),
        };
        let mut a = Audit::new(AuditKind::Revoked, 2, 7, "192.0.2.2:8")
            .reason(5)
            .device("game", "linux")
            .actor(actor)
            .note("by root");
        a.at_ms = 5;
        log.push(&a);
        assert_eq!(log.query(&AuditFilter::default(), 0, 1).0, [(1, a)]);
        let failed = Audit::new(AuditKind::LoginFailed, 0, 0, "192.0.2.2:9").tried("eve");
        log.push(&failed);
        assert_eq!(log.query(&AuditFilter::default(), 0, 1).0, [(2, failed)]);
        assert_eq!(log.labels.count(), 0);
    }

    #[test]
    fn pages_through_matches_with_the_cursor() {
        let mut log = AuditLog::new(100);
        for i in 0..10 {
            log.push(&rec(i, AuditKind::LoginFailed, i % 2));
        }
        let f = AuditFilter {
            user_id: Some(1),
            ..AuditFilter::default()
        };
        let (page, next) = log.query(&f, 0, 3);
        assert_eq!(page.iter().map(|p| p.0).collect::<Vec<_>>(), [2, 4, 6]);
        let (page, next) = log.query(&f, next, 3);
        assert_eq!(page.iter().map(|p| p.0).collect::<Vec<_>>(), [8, 10]);
        assert_eq!(next, 0);
    }

    #[test]
    fn filters_by_kind_and_time() {
        let mut log = AuditLog::new(100);
        log.push(&rec(100, AuditKind::SessionCreated, 1));
        log.push(&rec(200, AuditKind::LoggedOut, 1));
        log.push(&rec(300, AuditKind::SessionCreated, 1));
        let f = AuditFilter {
            kind: Some(AuditKind::SessionCreated as u8),
            from_ms: 150,
            to_ms: 301,
            ..AuditFilter::default()
        };
        let (page, _) = log.query(&f, 0, 10);
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].1.at_ms, 300);
    }

    #[test]
    fn the_window_drops_the_oldest_and_numbers_stay() {
        let mut log = AuditLog::new(3);
        for i in 0..5 {
            log.push(&rec(i, AuditKind::LoggedOut, 1));
        }
        let (page, _) = log.query(&AuditFilter::default(), 0, 10);
        assert_eq!(page.iter().map(|p| p.0).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(page[0].1.at_ms, 2);
    }

    #[test]
    fn a_scan_is_bounded() {
        let mut log = AuditLog::new(MAX_SCAN * 2);
        for i in 0..(MAX_SCAN as u64 + 5) {
            log.push(&rec(i, AuditKind::LoggedOut, 1));
        }
        let f = AuditFilter {
            user_id: Some(2),
            ..AuditFilter::default()
        };
        let (page, next) = log.query(&f, 0, 10);
        assert!(page.is_empty());
        assert_eq!(next, MAX_SCAN as u64 + 1);
        let (page, next) = log.query(&f, next, 10);
        assert!(page.is_empty());
        assert_eq!(next, 0);
    }

    #[test]
    fn records_come_back_exactly_and_labels_go_with_evicted_records() {
        let mut log = AuditLog::new(3);
        let cases = [
            ("127.0.0.1:4000", ""),
            ("[::1]:9", "game linux"),
            ("", "admin -> user by root"),
            ("not an address", ""),
            ("", ""),
        ];
        for (i, (address, detail)) in cases.iter().enumerate() {
            let mut a = rec(i as u64, AuditKind::SessionCreated, 7);
            a.address = (*address).into();
            a.detail = (*detail).into();
            a.session_id = 40 + i as u64;
            log.push(&a);
        }
        let (page, _) = log.query(&AuditFilter::default(), 0, 10);
        let got: Vec<(u64, String, String, u64)> = page
            .into_iter()
            .map(|(seq, a)| (seq, a.address, a.detail, a.session_id))
            .collect();
        assert_eq!(
            got,
            [
                (3, String::new(), "admin -> user by root".into(), 42),
                (4, "not an address".into(), String::new(), 43),
                (5, String::new(), String::new(), 44),
            ]
        );
        // the two evicted records' labels are gone; the held ones' stay
        assert_eq!(log.labels.count(), 2);
        assert!(size_of::<Record>() <= 72, "{}", size_of::<Record>());
    }
}
