//! The audit trail's requests (protocol.md 5.27, 5.28, 5.36, 5.37): AUDIT_QUERY answered
//! with AUDIT_PAGE (each record's meaning in free text, kept for the clients written
//! against it), and AUDIT_SEARCH answered with AUDIT_RECORDS (typed fields: reason, device,
//! who acted; the text a note; oldest or newest first).

use bytes::BufMut;

use super::error::DecodeErrorKind;
use super::login::{MAX_DEVICE_FIELD, MAX_USERNAME};
use super::manage::{count, MAX_PAGE};
use super::push::MAX_ADDRESS;
use super::wire::{put_str, str_len, Reader, Token, TOKEN_LEN};

/// Longest `detail` of an audit entry (`note` of a record).
pub const MAX_DETAIL: usize = 256;
/// Most records in one AUDIT_RECORDS: 50 at their longest fit in 65,536 bytes.
pub const MAX_RECORDS: usize = 50;

/// AUDIT_QUERY (0x46): `token, username str, kind u8, from u64, to u64, cursor u64,
/// limit u16`. Empty username: the caller's own events (a user) or everyone's (an admin);
/// kind 0: every kind; to 0: no upper bound; cursor 0: from the oldest record held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// This connection's session token.
    pub token: Token,
    /// Whose events (0..=64 bytes); empty: the caller's own (a user), everyone's (an admin).
    pub username: String,
    /// One event kind (protocol.md 5.27); 0: all kinds.
    pub kind: u8,
    /// Events at or after this (Unix ms).
    pub from: u64,
    /// Events before this; 0: no upper bound (Unix ms).
    pub to: u64,
    /// 0: from the oldest record held; else a `next_cursor` from AUDIT_PAGE.
    pub cursor: u64,
    /// Most entries wanted (0: a full page).
    pub limit: u16,
}

impl AuditQuery {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(AuditQuery {
            token: r.token()?,
            username: r.string(MAX_USERNAME)?.to_owned(),
            kind: r.u8()?,
            from: r.u64()?,
            to: r.u64()?,
            cursor: r.u64()?,
            limit: r.u16()?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + str_len(&self.username, MAX_USERNAME) + 1 + 24 + 2
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(self.token.as_bytes());
        put_str(dst, &self.username, MAX_USERNAME);
        dst.put_u8(self.kind);
        dst.put_u64(self.from);
        dst.put_u64(self.to);
        dst.put_u64(self.cursor);
        dst.put_u16(self.limit);
    }
}

/// One record in AUDIT_PAGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The record's number: increasing, valid for cursors within one server run.
    pub seq: u64,
    /// When the event happened (Unix ms).
    pub at: u64,
    /// Event kind, protocol.md 5.27's table; a client MUST accept kinds it does not know.
    pub kind: u8,
    /// The account; 0 when none is known (a login for an unknown name).
    pub user_id: u64,
    /// The account's name, empty when `user_id` is 0 (0..=64 bytes).
    pub username: String,
    /// The session; 0 when none is involved.
    pub session_id: u64,
    /// The peer address involved (0..=64 bytes).
    pub address: String,
    /// Human readable (0..=256 bytes).
    pub detail: String,
}

impl AuditEntry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(AuditEntry {
            seq: r.u64()?,
            at: r.u64()?,
            kind: r.u8()?,
            user_id: r.u64()?,
            username: r.string(MAX_USERNAME)?.to_owned(),
            session_id: r.u64()?,
            address: r.string(MAX_ADDRESS)?.to_owned(),
            detail: r.string(MAX_DETAIL)?.to_owned(),
        })
    }
    fn encoded_len(&self) -> usize {
        8 + 8
            + 1
            + 8
            + str_len(&self.username, MAX_USERNAME)
            + 8
            + str_len(&self.address, MAX_ADDRESS)
            + str_len(&self.detail, MAX_DETAIL)
    }
    fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.seq);
        dst.put_u64(self.at);
        dst.put_u8(self.kind);
        dst.put_u64(self.user_id);
        put_str(dst, &self.username, MAX_USERNAME);
        dst.put_u64(self.session_id);
        put_str(dst, &self.address, MAX_ADDRESS);
        put_str(dst, &self.detail, MAX_DETAIL);
    }
}

/// AUDIT_PAGE (0x47): `next_cursor u64, count u16, count x entry`. `next_cursor` 0: no
/// more records match; otherwise send it as the next query's cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// 0: nothing more matches; else send it as the next query's `cursor`.
    pub next_cursor: u64,
    /// This page's records (0..=100; `encode` sends the first 100).
    pub entries: Vec<AuditEntry>,
}

impl AuditPage {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(AuditPage {
            next_cursor: r.u64()?,
            entries: count(r, AuditEntry::decode)?,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        10 + self.page().iter().map(|e| e.encoded_len()).sum::<usize>()
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.next_cursor);
        dst.put_u16(self.page().len() as u16);
        self.page().iter().for_each(|e| e.encode(dst));
    }
    fn page(&self) -> &[AuditEntry] {
        &self.entries[..self.entries.len().min(MAX_PAGE)]
    }
}

/// AUDIT_SEARCH (0x48): AUDIT_QUERY's fields, then `order u8` (0: oldest first, from
/// `cursor` on; 1: newest first, below `cursor`, 0 meaning from the newest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSearch {
    /// The filter and the page, as in AUDIT_QUERY (`limit` at most [`MAX_RECORDS`]).
    pub query: AuditQuery,
    /// Newest first.
    pub newest_first: bool,
}

impl AuditSearch {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let query = AuditQuery::decode(r)?;
        let newest_first = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeErrorKind::InvalidValue),
        };
        Ok(AuditSearch {
            query,
            newest_first,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        self.query.encoded_len() + 1
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        self.query.encode(dst);
        dst.put_u8(u8::from(self.newest_first));
    }
}

/// Who caused a record, in AUDIT_RECORDS: all zero and empty when nobody did but the
/// subject itself (or a timer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditActor {
    /// The acting account; 0: none.
    pub user_id: u64,
    /// Its name (0..=64 bytes).
    pub username: String,
    /// The session it acted from; 0: none.
    pub session_id: u64,
    /// Its address (0..=64 bytes).
    pub address: String,
    /// Its client program (0..=64 bytes).
    pub client: String,
    /// Its platform (0..=64 bytes).
    pub platform: String,
}

/// One record in AUDIT_RECORDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The record's number (as in AUDIT_PAGE).
    pub seq: u64,
    /// When (Unix ms).
    pub at: u64,
    /// Event kind, protocol.md 5.27's table; a client MUST accept kinds it does not know.
    pub kind: u8,
    /// Reason code from the table the kind names (protocol.md 5.36); 0: none.
    pub reason: u16,
    /// The account; 0 when none is known.
    pub user_id: u64,
    /// The account's name, or the name a login tried for an unknown account (0..=64).
    pub username: String,
    /// The session; 0 when none is involved.
    pub session_id: u64,
    /// The subject's address (0..=64 bytes).
    pub address: String,
    /// The subject's client program (0..=64 bytes).
    pub client: String,
    /// ... and platform (0..=64 bytes).
    pub platform: String,
    /// Who caused it.
    pub actor: AuditActor,
    /// A note for people (0..=256 bytes); never parse it.
    pub note: String,
}

impl AuditRecord {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        Ok(AuditRecord {
            seq: r.u64()?,
            at: r.u64()?,
            kind: r.u8()?,
            reason: r.u16()?,
            user_id: r.u64()?,
            username: r.string(MAX_USERNAME)?.to_owned(),
            session_id: r.u64()?,
            address: r.string(MAX_ADDRESS)?.to_owned(),
            client: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            platform: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            actor: AuditActor {
                user_id: r.u64()?,
                username: r.string(MAX_USERNAME)?.to_owned(),
                session_id: r.u64()?,
                address: r.string(MAX_ADDRESS)?.to_owned(),
                client: r.string(MAX_DEVICE_FIELD)?.to_owned(),
                platform: r.string(MAX_DEVICE_FIELD)?.to_owned(),
            },
            note: r.string(MAX_DETAIL)?.to_owned(),
        })
    }
    fn encoded_len(&self) -> usize {
        let a = &self.actor;
        8 + 8
            + 1
            + 2
            + 8
            + str_len(&self.username, MAX_USERNAME)
            + 8
            + str_len(&self.address, MAX_ADDRESS)
            + str_len(&self.client, MAX_DEVICE_FIELD)
            + str_len(&self.platform, MAX_DEVICE_FIELD)
            + 8
            + str_len(&a.username, MAX_USERNAME)
            + 8
            + str_len(&a.address, MAX_ADDRESS)
            + str_len(&a.client, MAX_DEVICE_FIELD)
            + str_len(&a.platform, MAX_DEVICE_FIELD)
            + str_len(&self.note, MAX_DETAIL)
    }
    fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.seq);
        dst.put_u64(self.at);
        dst.put_u8(self.kind);
        dst.put_u16(self.reason);
        dst.put_u64(self.user_id);
        put_str(dst, &self.username, MAX_USERNAME);
        dst.put_u64(self.session_id);
        put_str(dst, &self.address, MAX_ADDRESS);
        put_str(dst, &self.client, MAX_DEVICE_FIELD);
        put_str(dst, &self.platform, MAX_DEVICE_FIELD);
        let a = &self.actor;
        dst.put_u64(a.user_id);
        put_str(dst, &a.username, MAX_USERNAME);
        dst.put_u64(a.session_id);
        put_str(dst, &a.address, MAX_ADDRESS);
        put_str(dst, &a.client, MAX_DEVICE_FIELD);
        put_str(dst, &a.platform, MAX_DEVICE_FIELD);
        put_str(dst, &self.note, MAX_DETAIL);
    }
}

/// AUDIT_RECORDS (0x49): `next_cursor u64, count u16, count x record` (0..=50).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecords {
    /// 0: nothing more matches; else send it as the next search's `cursor` (same order).
    pub next_cursor: u64,
    /// This page's records (`encode` sends the first [`MAX_RECORDS`]).
    pub records: Vec<AuditRecord>,
}

impl AuditRecords {
    /// Decodes the payload (header excluded); `Err` on a short or malformed payload.
    /// Leftover bytes are for [`Reader::finish`].
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeErrorKind> {
        let next_cursor = r.u64()?;
        let records = count(r, AuditRecord::decode)?;
        if records.len() > MAX_RECORDS {
            return Err(DecodeErrorKind::InvalidValue);
        }
        Ok(AuditRecords {
            next_cursor,
            records,
        })
    }
    /// Payload bytes.
    pub fn encoded_len(&self) -> usize {
        10 + self.page().iter().map(|e| e.encoded_len()).sum::<usize>()
    }
    /// Appends the payload.
    pub fn encode<B: BufMut>(&self, dst: &mut B) {
        dst.put_u64(self.next_cursor);
        dst.put_u16(self.page().len() as u16);
        self.page().iter().for_each(|e| e.encode(dst));
    }
    fn page(&self) -> &[AuditRecord] {
        &self.records[..self.records.len().min(MAX_RECORDS)]
    }
}
