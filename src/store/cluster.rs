//! The store on PostgreSQL (`--cluster URL`): the journal's events in one ordered log
//! table, shared through the database instead of a file.
//!
//! Owns the schema (created and migrated here, versioned in `sessiond_schema`), the log's
//! order, the writer's exclusion, and exactly-once commits. What the events mean is the
//! engine's, as for the journal: a start folds the log into the state (`engine::replay`),
//! and each group commit appends its events in one transaction.
//!
//! - **Order**: every commit moves the one row of `sessiond_log` (`head`, the last
//!   sequence number given out) under its row lock and numbers its events after it, so the
//!   log's order is the commits' order, without gaps, whoever writes.
//! - **Exactly once**: each commit first inserts its `(writer, commit_no)` into
//!   `sessiond_commits`. When a connection breaks during COMMIT nobody knows whether it
//!   landed; the retry's insert then fails with a unique violation if it did, and the
//!   retry counts as done, so a commit is never applied twice nor lost.
//! - **One writer**: until nodes share the log (issue 22's takeover across nodes), one
//!   server at a time writes it: the writer holds a session advisory lock. A second
//!   server, or an operator command beside a running one, is refused, as a second server
//!   on one data directory is. After a reconnect the lock is taken again, or the store
//!   stops (another writer got in).
//! - **The database away**: a commit that cannot reach the database is a retryable
//!   failure; the committer retries with backoff and the engine refuses what needs a
//!   durable write (STORAGE_UNAVAILABLE) until a commit goes through, while heartbeats go
//!   on. Nothing acknowledged depends on a commit that did not land.
//!
//! Not yet: snapshots (a start reads the whole log), several writers.

use std::io;
use std::time::Duration;

use log::{info, warn};
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use super::record;
use super::{Store, StoreError};
use crate::engine::event::Event;
use crate::engine::replay::State;
use crate::session::UserTable;

/// The schema this build writes. A database at a newer version is refused.
pub const SCHEMA_VERSION: i32 = 1;

/// The advisory lock key of the one writer (`sessiond` in ASCII).
const WRITER_LOCK: i64 = 0x7365_7373_696f_6e64;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations, in order: migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the log.
    "CREATE TABLE sessiond_log (
        id smallint PRIMARY KEY CHECK (id = 1),
        head bigint NOT NULL
    );
    INSERT INTO sessiond_log (id, head) VALUES (1, 0);
    CREATE TABLE sessiond_events (
        seq bigint PRIMARY KEY,
        kind smallint NOT NULL,
        body bytea NOT NULL,
        node text NOT NULL,
        committed_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE sessiond_commits (
        writer bigint NOT NULL,
        commit_no bigint NOT NULL,
        PRIMARY KEY (writer, commit_no)
    );",
];

/// Where and as whom: the database and this node's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// A PostgreSQL connection string (`postgresql://user@host:port/db` or
    /// `host=... dbname=...`).
    pub url: String,
    /// This node's name, recorded with every event it writes.
    pub node: String,
}

/// Why the cluster store did not open.
#[derive(Debug)]
pub struct ClusterError(pub String);

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterError {}

fn err(what: &str) -> impl Fn(postgres::Error) -> ClusterError + '_ {
    move |e| ClusterError(format!("{what}: {}", describe(&e)))
}

/// A database error in one line (the server's message when there is one).
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The log on PostgreSQL, as the server's [`Store`].
pub struct ClusterStore {
    opts: ClusterOptions,
    /// None after a connection broke, until the next commit reconnects.
    client: Option<Client>,
    /// This process's writer id (random) and its commits so far: `sessiond_commits`.
    writer: i64,
    commits: i64,
    pending: Vec<(i16, Vec<u8>)>,
    /// The events of the commit under way, kept until it is known to have landed.
    committing: Vec<(i16, Vec<u8>)>,
}

/// Connects, creates or migrates the schema, takes the writer's lock and reads the whole
/// log into the state (`users` first, as `open_journal` takes them).
pub fn open_cluster(
    opts: &ClusterOptions,
    users: UserTable,
) -> Result<(ClusterStore, State), ClusterError> {
    let mut client = connect(&opts.url)?;
    migrate(&mut client)?;
    take_writer_lock(&mut client)?;
    let mut state = State {
        users,
        ..State::new()
    };
    let rows = client
        .query(
            "SELECT seq, kind, body FROM sessiond_events ORDER BY seq",
            &[],
        )
        .map_err(err("reading the log"))?;
    for (expect, row) in (1i64..).zip(rows.iter()) {
        let (seq, kind, body): (i64, i16, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
        if seq != expect {
            return Err(ClusterError(format!(
                "the log skips from {} to {seq}: records are missing",
                expect - 1
            )));
        }
        let ev = decode(seq, kind, &body)?;
        state
            .apply(ev)
            .map_err(|e| ClusterError(format!("log record {seq}: {}", e.0)))?;
    }
    info!(
        "cluster log: {} record(s), {} user(s), {} live session(s)",
        rows.len(),
        state.users.len(),
        state.sessions.len()
    );
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| ClusterError(format!("random writer id: {e}")))?;
    let store = ClusterStore {
        opts: opts.clone(),
        client: Some(client),
        writer: i64::from_le_bytes(id),
        commits: 0,
        pending: Vec::new(),
        committing: Vec::new(),
    };
    Ok((store, state))
}

/// `sessiond audit --cluster`: every audit record in the log, oldest first, with the
/// accounts' names; reads only, so it may run beside a live node.
pub fn read_cluster_audit(url: &str) -> Result<super::AuditTrail, ClusterError> {
    let mut client = connect(url)?;
    let rows = client
        .query(
            "SELECT seq, kind, body FROM sessiond_events ORDER BY seq",
            &[],
        )
        .map_err(err("reading the log"))?;
    let mut trail = super::AuditTrail {
        records: Vec::new(),
        usernames: Default::default(),
    };
    for row in &rows {
        let (seq, kind, body): (i64, i16, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
        match decode(seq, kind, &body)? {
            Event::Audit(a) => trail.records.push(a),
            Event::UserCreated(u) | Event::UserUpdated(u) => {
                trail.usernames.insert(u.id, u.username);
            }
            _ => {}
        }
    }
    Ok(trail)
}

/// Log record `seq` as an event.
fn decode(seq: i64, kind: i16, body: &[u8]) -> Result<Event, ClusterError> {
    u8::try_from(kind)
        .ok()
        .and_then(|k| record::decode(k, body).ok())
        .ok_or_else(|| ClusterError(format!("log record {seq} (type {kind}) is not an event")))
}

/// `sessiond check-config`: whether the database answers and what its schema is, changing
/// nothing.
pub fn check_cluster(opts: &ClusterOptions) -> Result<String, ClusterError> {
    let mut client = connect(&opts.url)?;
    let exists: bool = client
        .query_one("SELECT to_regclass('sessiond_schema') IS NOT NULL", &[])
        .map_err(err("schema"))?
        .get(0);
    let version: Option<i32> = if exists {
        client
            .query_opt("SELECT version FROM sessiond_schema", &[])
            .map_err(err("schema version"))?
            .map(|r| r.get(0))
    } else {
        None
    };
    match version {
        Some(v) if v > SCHEMA_VERSION => Err(ClusterError(format!(
            "schema version {v}, newer than this sessiond's {SCHEMA_VERSION}: upgrade sessiond"
        ))),
        Some(v) if v == SCHEMA_VERSION => {
            Ok(format!("reachable, schema version {v}; node {}", opts.node))
        }
        Some(v) => Ok(format!(
            "reachable, schema version {v} (migrated to {SCHEMA_VERSION} at start); node {}",
            opts.node
        )),
        None => Ok(format!(
            "reachable, no sessiond schema yet (created at start); node {}",
            opts.node
        )),
    }
}

fn connect(url: &str) -> Result<Client, ClusterError> {
    let mut cfg: postgres::Config = url.parse().map_err(|e| {
        ClusterError(format!(
            "--cluster: not a PostgreSQL connection string: {e}"
        ))
    })?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(CONNECT_TIMEOUT);
    }
    cfg.application_name("sessiond");
    cfg.connect(NoTls).map_err(|e| {
        ClusterError(format!(
            "cannot connect to the cluster database: {}",
            describe(&e)
        ))
    })
}

/// Brings the schema to [`SCHEMA_VERSION`], one transaction per step; concurrent starts
/// wait for each other (an advisory lock for the transaction).
fn migrate(client: &mut Client) -> Result<(), ClusterError> {
    let mut tx = client.transaction().map_err(err("migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&(WRITER_LOCK + 1)])
        .map_err(err("migration lock"))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS sessiond_schema (version integer NOT NULL)")
        .map_err(err("schema table"))?;
    let version: i32 = match tx
        .query_opt("SELECT version FROM sessiond_schema", &[])
        .map_err(err("schema version"))?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO sessiond_schema (version) VALUES (0)", &[])
                .map_err(err("schema version"))?;
            0
        }
    };
    if version > SCHEMA_VERSION {
        return Err(ClusterError(format!(
            "the cluster database is at schema version {version}; this sessiond knows up to {SCHEMA_VERSION}: upgrade sessiond"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql)
            .map_err(err(&format!("schema migration {i} -> {}", i + 1)))?;
        info!("cluster database: schema migrated to version {}", i + 1);
    }
    tx.execute(
        "UPDATE sessiond_schema SET version = $1",
        &[&SCHEMA_VERSION],
    )
    .map_err(err("schema version"))?;
    tx.commit().map_err(err("migration"))
}

fn take_writer_lock(client: &mut Client) -> Result<(), ClusterError> {
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK])
        .map_err(err("writer lock"))?
        .get(0);
    if got {
        Ok(())
    } else {
        Err(ClusterError(
            "another sessiond (or an operator command) is writing this cluster's log: one \
             writer at a time for now"
                .into(),
        ))
    }
}

impl ClusterStore {
    /// The connection, reconnecting (and taking the writer's lock again) if it broke.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let mut c =
                connect(&self.opts.url).map_err(|e| StoreError::retry(io::Error::other(e.0)))?;
            take_writer_lock(&mut c).map_err(|e| StoreError::fatal(io::Error::other(e.0)))?;
            info!("cluster database: reconnected");
            self.client = Some(c);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// One commit's transaction: its id, the log's head moved, its events.
    fn write(&mut self, commit_no: i64) -> Result<(), postgres::Error> {
        let (writer, node) = (self.writer, self.opts.node.clone());
        let events = std::mem::take(&mut self.committing);
        let n = events.len() as i64;
        let kinds: Vec<i16> = events.iter().map(|(k, _)| *k).collect();
        let bodies: Vec<&[u8]> = events.iter().map(|(_, b)| b.as_slice()).collect();
        let client = self.client.as_mut().expect("connected by commit");
        let result = (|| {
            let mut tx = client.transaction()?;
            tx.execute(
                "INSERT INTO sessiond_commits (writer, commit_no) VALUES ($1, $2)",
                &[&writer, &commit_no],
            )?;
            let head: i64 = tx
                .query_one(
                    "UPDATE sessiond_log SET head = head + $1 WHERE id = 1 RETURNING head",
                    &[&n],
                )?
                .get(0);
            tx.execute(
                "INSERT INTO sessiond_events (seq, kind, body, node)
                 SELECT $1 + o, k, b, $4 FROM unnest($2::smallint[], $3::bytea[])
                     WITH ORDINALITY AS e(k, b, o)",
                &[&(head - n), &kinds, &bodies, &node],
            )?;
            tx.commit()
        })();
        self.committing = events;
        result
    }
}

impl Store for ClusterStore {
    fn append(&mut self, ev: &Event) -> io::Result<()> {
        let (kind, body) = record::encode(ev);
        self.pending.push((i16::from(kind), body));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if self.committing.is_empty() {
            if self.pending.is_empty() {
                return Ok(());
            }
            // A new commit: its number is fixed until it is known to have landed.
            self.committing = std::mem::take(&mut self.pending);
            self.commits += 1;
        }
        self.client()?;
        match self.write(self.commits) {
            Ok(()) => {
                self.committing.clear();
                Ok(())
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                // The commit number is taken: an earlier attempt of this very commit did
                // land (its COMMIT's answer was lost).
                info!("cluster database: a commit retried after a lost answer had landed");
                self.committing.clear();
                Ok(())
            }
            Err(e) if e.is_closed() || e.as_db_error().is_none() => {
                warn!("cluster database unreachable: {}", describe(&e));
                self.client = None;
                Err(StoreError::retry(io::Error::other(format!(
                    "cluster database: {}",
                    describe(&e)
                ))))
            }
            Err(e) if is_transient(&e) => Err(StoreError::retry(io::Error::other(format!(
                "cluster database: {}",
                describe(&e)
            )))),
            Err(e) => Err(StoreError::fatal(io::Error::other(format!(
                "cluster database: {}",
                describe(&e)
            )))),
        }
    }
}

/// Server-side errors worth retrying: the server shutting down or restarting, too many
/// connections, serialization failures.
fn is_transient(e: &postgres::Error) -> bool {
    let Some(code) = e.code() else {
        return true;
    };
    let c = code.code();
    c.starts_with("08") // connection exceptions
        || c.starts_with("57P") // operator intervention: shutdown, crash shutdown
        || c == "53300" // too many connections
        || c == "40001" // serialization failure
        || c == "40P01" // deadlock detected
}
