//! The audit trail in memory, for AUDIT_QUERY: the newest records, numbered.
//!
//! Owns the bounded window of records the server can answer queries from and the query
//! itself. The journal (and its archive) holds the complete trail; `sessiond audit` reads
//! that offline. Records are numbered from 1 in the order they happened during this run
//! (the ones replayed at startup first); a query's cursor is such a number.
//!
//! A record is held in 56 bytes with no heap block of its own: the address as a 20-byte
//! [`Peer`], the detail (and an address that is not `ip:port`) as an interned label. The
//! window's 100,000 records cost ~5.6 MB instead of ~15.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::conn::Peer;
use crate::engine::event::{Audit, AuditKind};
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
    kind: AuditKind,
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
                if let Some(t) = old.text {
                    self.labels.release(t);
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
        self.records.push_back(Record {
            at_ms: a.at_ms,
            user_id: a.user_id,
            session_id: a.session_id,
            peer,
            text,
            kind: a.kind,
        });
    }

    fn audit(&self, r: &Record) -> Audit {
        let (detail, address_text) = r.text.map_or(("", ""), |t| self.labels.get(t));
        Audit {
            at_ms: r.at_ms,
            kind: r.kind,
            user_id: r.user_id,
            session_id: r.session_id,
            address: r
                .peer
                .map_or_else(|| address_text.to_owned(), |p| p.to_string()),
            detail: detail.to_owned(),
        }
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
    /// the cursor to continue from (0 when nothing after them is left to look at).
    pub fn query(&self, f: &AuditFilter, cursor: u64, limit: usize) -> (Vec<(u64, Audit)>, u64) {
        let end = self.first_seq + self.records.len() as u64;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at_ms: u64, kind: AuditKind, user_id: u64) -> Audit {
        Audit {
            at_ms,
            kind,
            user_id,
            session_id: 0,
            address: String::new(),
            detail: String::new(),
        }
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
        assert!(size_of::<Record>() <= 56);
    }
}
