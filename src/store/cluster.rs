//! The store on PostgreSQL (`--cluster URL`): the journal's events in one ordered log
//! table, shared through the database instead of a file.
//!
//! Owns the schema (created and migrated here in one transaction, versioned in
//! `sessiond_schema`), the log's order, the nodes' leases, account names, and exactly-once
//! commits. What the events mean is the engine's, as for the journal: a start folds the
//! log into the state (`engine::replay`), and each group commit appends its events in one
//! statement. Following the other nodes' records is `cluster_link`'s.
//!
//! - **Order**: every commit moves the one row of `sessiond_log` (`head`, the last
//!   sequence number given out) under its row lock and numbers its events after it, so the
//!   log's order is the commits' order, without gaps, whichever node writes.
//! - **Exactly once**: each commit first inserts its `(writer, commit_no)` into
//!   `sessiond_commits`. When a connection breaks during COMMIT nobody knows whether it
//!   landed; the retry's insert then fails with a unique violation if it did, and the
//!   retry counts as done, so a commit is never applied twice nor lost.
//! - **Nodes and their leases**: every server (and operator command) is a writer with a
//!   random id and a row of `sessiond_nodes`, its lease renewed on the database's clock
//!   every third of `--cluster-lease` and by every commit. Every commit checks, in its
//!   statement, that the lease has not run out (the fencing): a node whose lease ran out
//!   (the others may have taken its sessions over) commits nothing more and stops. A node
//!   that cannot renew for a whole lease stops by itself (its connections close): the
//!   event loop watches the deadline this store moves at each renewal (`Store::fence`),
//!   so that a store thread stuck on a silent database cannot delay it. The others count
//!   it gone half a lease after its lease ran out (`LIVE`).
//! - **Account names**: `sessiond_accounts` holds every account's name and id; a new one
//!   is reserved there first, with an id from the sequence `sessiond_user_ids`
//!   ([`reserve_account`]), so no two nodes make the same name or id.
//! - **The database away**: a commit that cannot reach the database is a retryable
//!   failure; the committer retries with backoff and the engine refuses what needs a
//!   durable write (STORAGE_UNAVAILABLE) until a commit goes through, while heartbeats go
//!   on. Nothing acknowledged depends on a commit that did not land.
//! - **Snapshots**: past `--snapshot-kb` of log since the last one, the whole state is
//!   written to `sessiond_snapshot` (replacing the previous one) as of the log's head; a
//!   start reads it and the log after it. The log is the audit trail: the records a
//!   snapshot holds go once they are older than the audit retention.

use std::io;
use std::time::{Duration, Instant};

use log::{info, warn};
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use super::cluster_link::LinkSpec;
use super::record;
use super::{Fence, Store, StoreError};
use crate::auth::Reservation;
use crate::engine::event::Event;
use crate::engine::remote::track_binding;
use crate::engine::replay::State;
use crate::session::UserTable;

/// The schema this build writes. A database at a newer version is refused.
pub const SCHEMA_VERSION: i32 = 2;

/// The advisory lock key that serializes migrations (`sessiond` in ASCII).
const MIGRATION_LOCK: i64 = 0x7365_7373_696f_6e64;

/// The advisory lock key held by the node writing a snapshot (`snapshot` in ASCII).
const SNAPSHOT_LOCK: i64 = 0x736e_6170_7368_6f74;

/// A node's lease's length by default (`--cluster-lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

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
    );
    CREATE TABLE sessiond_writer (
        id smallint PRIMARY KEY CHECK (id = 1),
        node text,
        writer bigint,
        epoch bigint NOT NULL,
        lease_until timestamptz,
        lease_seconds float8 NOT NULL DEFAULT 0
    );
    INSERT INTO sessiond_writer (id, epoch) VALUES (1, 0);
    CREATE TABLE sessiond_snapshots (
        base_seq bigint PRIMARY KEY,
        complete boolean NOT NULL DEFAULT false
    );
    CREATE TABLE sessiond_snapshot (
        base_seq bigint NOT NULL,
        ord integer NOT NULL,
        kind smallint NOT NULL,
        body bytea NOT NULL,
        PRIMARY KEY (base_seq, ord)
    );",
    // 1 -> 2: several nodes write at once, each under its own lease; who wrote each
    // record; accounts' names and ids given out by the database.
    "DROP TABLE sessiond_writer;
    CREATE TABLE sessiond_nodes (
        writer bigint PRIMARY KEY,
        node text NOT NULL,
        lease_until timestamptz NOT NULL,
        lease_seconds float8 NOT NULL,
        applied bigint NOT NULL DEFAULT 0,
        serves boolean NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now()
    );
    ALTER TABLE sessiond_events ADD COLUMN writer bigint NOT NULL DEFAULT 0;
    CREATE SEQUENCE sessiond_user_ids;
    CREATE TABLE sessiond_accounts (
        user_id bigint PRIMARY KEY,
        username text NOT NULL UNIQUE
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
    /// How long the node's lease lasts without a renewal.
    pub lease: Duration,
    /// Log bytes after the snapshot beyond which a new snapshot is written (`--snapshot-kb`).
    pub snapshot_bytes: u64,
    /// Log records older than this and held by the snapshot are removed when one is
    /// written (`--audit-retention-days`: the log is the audit trail).
    pub audit_retention: Duration,
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
pub(crate) fn describe(e: &postgres::Error) -> String {
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
    /// When the last renewal that succeeded was sent (this process's clock, so the lease
    /// is over here no later than in the database).
    renewed_at: Instant,
    /// Log bytes committed since the snapshot (a start reads them after it).
    since_snapshot: u64,
    /// `renewed_at + lease`, for the event loop to watch (`Store::fence`).
    fence: Fence,
    /// Accounts deleted by the events pending or committing: their names are freed in
    /// `sessiond_accounts` by the same commit.
    deleted: Vec<i64>,
    /// The log record the last commit ended at (`Store::position`), and whether no other
    /// serving node was live then (`Store::alone`).
    position: i64,
    alone: bool,
    /// The last log record the start read: the node's tail of the others' records
    /// (`cluster_link`) goes on from it.
    read_from: i64,
    /// Sessions bound on other live nodes when the start read the log.
    bound: Vec<(u64, i64)>,
}

/// What has been read from the database: the state folded so far, the last log record
/// in it, and the log bytes after the snapshot.
struct Loaded {
    state: State,
    last: i64,
    since_snapshot: u64,
    /// Sessions bound to a connection on some node, as the log's audit records say
    /// (`session_created` and `session_resumed` bind, `session_detached` and the end
    /// unbind): session -> that node's writer. Only for records after the snapshot.
    bound: hashbrown::HashMap<u64, i64>,
}

/// Reads the snapshot (the whole state as of log record `base`), then the log after it.
fn load(client: &mut Client, users: UserTable) -> Result<Loaded, ClusterError> {
    let mut state = State {
        users,
        ..State::new()
    };
    let base: i64 = client
        .query_one(
            "SELECT coalesce(max(base_seq), 0) FROM sessiond_snapshots WHERE complete",
            &[],
        )
        .map_err(err("reading the snapshot"))?
        .get(0);
    let snapshot = client
        .query(
            "SELECT kind, body FROM sessiond_snapshot WHERE base_seq = $1 ORDER BY ord",
            &[&base],
        )
        .map_err(err("reading the snapshot"))?;
    for row in &snapshot {
        let ev = decode(base, row.get(0), row.get::<_, &[u8]>(1))?;
        state
            .apply(ev)
            .map_err(|e| ClusterError(format!("snapshot at {base}: {}", e.0)))?;
    }
    let mut loaded = Loaded {
        state,
        last: base,
        since_snapshot: 0,
        bound: hashbrown::HashMap::new(),
    };
    if !catch_up(client, &mut loaded)? {
        return Err(ClusterError(format!(
            "the log does not continue the snapshot at record {base}: records are missing"
        )));
    }
    info!(
        "cluster log: a snapshot at record {base} ({} events) and the log to record {}; \
         {} user(s), {} live session(s)",
        snapshot.len(),
        loaded.last,
        loaded.state.users.len(),
        loaded.state.sessions.len()
    );
    Ok(loaded)
}

/// Applies the log records after `loaded.last`. False if the next one is gone (removed
/// past the retention before this reader got to it): read everything again then.
fn catch_up(client: &mut Client, loaded: &mut Loaded) -> Result<bool, ClusterError> {
    let rows = client
        .query(
            "SELECT seq, kind, body, writer FROM sessiond_events WHERE seq > $1 ORDER BY seq",
            &[&loaded.last],
        )
        .map_err(err("reading the log"))?;
    for row in &rows {
        let (seq, kind, body, writer): (i64, i16, &[u8], i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if seq != loaded.last + 1 {
            return Ok(false);
        }
        let ev = decode(seq, kind, body)?;
        track_binding(&mut loaded.bound, writer, &ev);
        // Several nodes write the log at once: a record that lost a race (an update of an
        // account another node deleted a moment before) no longer applies, and is passed
        // over rather than keeping every node from starting.
        if let Err(e) = loaded.state.apply(ev) {
            warn!("cluster log: record {seq} ({}) passed over", e.0);
        }
        loaded.last = seq;
        loaded.since_snapshot += body.len() as u64;
    }
    Ok(true)
}

/// Connects, creates or migrates the schema, reads the state (`users` first, as
/// `open_journal` takes them), brings the database's account names up to date with it, and
/// joins the cluster as a writer with a lease of its own (a row of `sessiond_nodes`).
///
/// `serves`: a server's node, which follows the log and which the others wait for (see
/// `cluster_link`); false for an operator command, which only writes.
pub fn open_cluster(
    opts: &ClusterOptions,
    users: UserTable,
    serves: bool,
) -> Result<(ClusterStore, State), ClusterError> {
    let mut client = connect_within(&opts.url, Some(opts.lease))?;
    migrate(&mut client)?;
    let mut id = [0u8; 8];
    getrandom::fill(&mut id).map_err(|e| ClusterError(format!("random writer id: {e}")))?;
    // Positive, so that it sorts and prints plainly; never 0 (records of schema 1).
    let writer = (i64::from_le_bytes(id) & i64::MAX).max(1);
    let mut loaded = load(&mut client, users)?;
    register_accounts(&mut client, &loaded.state.users)?;
    let renewed_at = now();
    client
        .execute(
            "INSERT INTO sessiond_nodes (writer, node, lease_until, lease_seconds, applied, serves)
             VALUES ($1, $2, now() + $3 * interval '1 second', $3, $4, $5)",
            &[
                &writer,
                &opts.node,
                &opts.lease.as_secs_f64(),
                &loaded.last,
                &serves,
            ],
        )
        .map_err(err("joining the cluster"))?;
    // What was committed before the row existed, when the others did not wait for this
    // node yet: read now, before it serves (later commits wait for it).
    if !catch_up(&mut client, &mut loaded)? {
        return Err(ClusterError(
            "the log lost records while this node read it".into(),
        ));
    }
    let others: Vec<String> = client
        .query(
            &format!("SELECT node FROM sessiond_nodes WHERE writer <> $1 AND serves AND {LIVE}"),
            &[&writer],
        )
        .map_err(err("the cluster's nodes"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    info!(
        "cluster: node {} joined (writer {writer:016x}); other live nodes: {}",
        opts.node,
        if others.is_empty() {
            "none".to_owned()
        } else {
            others.join(", ")
        }
    );
    let live: Vec<i64> = client
        .query(
            &format!("SELECT writer FROM sessiond_nodes WHERE serves AND {LIVE}"),
            &[],
        )
        .map_err(err("the cluster's nodes"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let Loaded {
        state,
        since_snapshot,
        last,
        bound,
    } = loaded;
    let bound = bound
        .into_iter()
        .filter(|(_, w)| *w != writer && live.contains(w))
        .collect();
    let store = ClusterStore {
        opts: opts.clone(),
        client: Some(client),
        writer,
        commits: 0,
        pending: Vec::new(),
        committing: Vec::new(),
        deleted: Vec::new(),
        renewed_at,
        since_snapshot,
        fence: Fence::new(renewed_at + opts.lease),
        position: last,
        alone: false,
        read_from: last,
        bound,
    };
    Ok((store, state))
}

/// Which rows of `sessiond_nodes` are live nodes: their lease has not run out, on the
/// database's clock, for more than half a lease.
///
/// Design: the half lease of grace covers the holder's own reaction. A node cut off from
/// the database finds its lease over by its own clock (which starts each lease before the
/// database's does) at its next upkeep, a third of a lease apart at most, and stops; only
/// then may the others treat its sessions as detached, or two nodes could each have a
/// client heartbeating on one session.
pub(crate) const LIVE: &str = "lease_until >= now() - lease_seconds * interval '0.5 second'";

/// Puts every account of `users` into `sessiond_accounts` (a database of schema 1 had
/// none there) and moves the id sequence past them, so that ids the database gives out
/// are new.
fn register_accounts(client: &mut Client, users: &UserTable) -> Result<(), ClusterError> {
    let all = users.all();
    let ids: Vec<i64> = all.iter().map(|u| u.id as i64).collect();
    let names: Vec<&str> = all.iter().map(|u| u.username.as_str()).collect();
    client
        .execute(
            "INSERT INTO sessiond_accounts (user_id, username)
             SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&ids, &names],
        )
        .map_err(err("account names"))?;
    let top = users
        .next_id_beyond_accounts()
        .unwrap_or(0)
        .max(ids.iter().copied().max().unwrap_or(0) as u64 + 1) as i64;
    client
        .query_one(
            "SELECT setval('sessiond_user_ids',
                    greatest($1::bigint - 1, (SELECT last_value FROM sessiond_user_ids), 1))",
            &[&top],
        )
        .map_err(err("account ids"))?;
    Ok(())
}

/// Reserves `username` for a new account in the whole cluster and gives it an id from the
/// database's sequence; None if the name is taken (by any node, or a deleted account's
/// name not yet freed by its deletion's commit).
pub fn reserve_account(
    client: &mut impl postgres::GenericClient,
    username: &str,
) -> Result<Option<u64>, postgres::Error> {
    let row = client.query_opt(
        "INSERT INTO sessiond_accounts (user_id, username)
         VALUES (nextval('sessiond_user_ids'), $1)
         ON CONFLICT DO NOTHING
         RETURNING user_id",
        &[&username],
    )?;
    Ok(row.map(|r| r.get::<_, i64>(0) as u64))
}

/// `sessiond audit --cluster`: every audit record in the log (those past the retention are
/// gone), oldest first, with the accounts' names (from the snapshot and the log); reads
/// only, so it may run beside a live node.
pub fn read_cluster_audit(url: &str) -> Result<super::AuditTrail, ClusterError> {
    let mut client = connect(url)?;
    let mut names = hashbrown::HashMap::new();
    for row in client
        .query(
            "SELECT base_seq, kind, body FROM sessiond_snapshot
              WHERE base_seq = (SELECT max(base_seq) FROM sessiond_snapshots WHERE complete)
              ORDER BY ord",
            &[],
        )
        .map_err(err("reading the snapshot"))?
    {
        if let Event::UserCreated(u) = decode(row.get(0), row.get(1), row.get::<_, &[u8]>(2))? {
            names.insert(u.id, u.username);
        }
    }
    let rows = client
        .query(
            "SELECT seq, kind, body FROM sessiond_events ORDER BY seq",
            &[],
        )
        .map_err(err("reading the log"))?;
    let mut trail = super::AuditTrail {
        records: Vec::new(),
        usernames: names,
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
pub(crate) fn decode(seq: i64, kind: i16, body: &[u8]) -> Result<Event, ClusterError> {
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
    connect_within(url, None)
}

/// A connection whose attempts and unanswered sends give up within a third of `lease`
/// (TCP_USER_TIMEOUT), so that the store thread is not stuck on a database that went
/// silent while its lease runs out.
pub(crate) fn connect_within(url: &str, lease: Option<Duration>) -> Result<Client, ClusterError> {
    let mut cfg: postgres::Config = url.parse().map_err(|e| {
        ClusterError(format!(
            "--cluster: not a PostgreSQL connection string: {e}"
        ))
    })?;
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(CONNECT_TIMEOUT);
    }
    if let Some(lease) = lease {
        // Whole seconds: the kernel's keepalive and the client's timeouts take no less.
        let bound = Duration::from_secs((lease / 3).as_secs().max(1));
        cfg.connect_timeout(bound.min(CONNECT_TIMEOUT));
        cfg.tcp_user_timeout(bound);
        cfg.keepalives(true);
        cfg.keepalives_idle(bound);
    }
    cfg.application_name("sessiond");
    cfg.connect(NoTls).map_err(|e| {
        ClusterError(format!(
            "cannot connect to the cluster database: {}",
            describe(&e)
        ))
    })
}

/// Brings the schema to [`SCHEMA_VERSION`], every step in one transaction (all or
/// nothing); concurrent starts wait for each other (an advisory lock for the transaction).
fn migrate(client: &mut Client) -> Result<(), ClusterError> {
    let mut tx = client.transaction().map_err(err("migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
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

#[allow(clippy::disallowed_methods)] // the store thread's clock, for the lease
fn now() -> Instant {
    Instant::now()
}

/// Renews this node's lease (in a commit's transaction, or alone): false if it ran out
/// (on the database's clock) before this renewal, or the node's row is gone.
fn renew(
    client: &mut impl postgres::GenericClient,
    writer: i64,
    lease: Duration,
) -> Result<bool, postgres::Error> {
    let n = client.execute(
        "UPDATE sessiond_nodes SET lease_until = now() + $2 * interval '1 second'
          WHERE writer = $1 AND lease_until > now()",
        &[&writer, &lease.as_secs_f64()],
    )?;
    Ok(n == 1)
}

/// The fatal error of a node whose lease ran out: the others may have taken its sessions.
fn lost_lease() -> StoreError {
    StoreError::fatal(io::Error::other(
        "cluster: this node's lease ran out before it could renew it: it stops writing \
         (fenced), since the other nodes may have taken its sessions over",
    ))
}

impl ClusterStore {
    /// The connection, reconnecting if it broke (the lease is checked by the next
    /// transaction, not here).
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let c = connect_within(&self.opts.url, Some(self.opts.lease))
                .map_err(|e| StoreError::retry(io::Error::other(e.0)))?;
            info!("cluster database: reconnected");
            self.client = Some(c);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// One commit, as one statement (so one round trip and one transaction): the lease
    /// renewed, the commit's id recorded, the log's head moved under its row lock, the
    /// events numbered after it. If this writer no longer holds the lease, the first step
    /// finds no row and nothing is written: false.
    ///
    /// Design: one statement of data-modifying CTEs instead of BEGIN, four statements and
    /// COMMIT: a login's commit waited for six round trips before, now for one (and the
    /// database's own commit), which is most of what a login gains from the cluster.
    fn write(&mut self, commit_no: i64) -> Result<Option<(i64, i64)>, postgres::Error> {
        let (writer, node, lease) = (self.writer, self.opts.node.clone(), self.opts.lease);
        let events = std::mem::take(&mut self.committing);
        let n = events.len() as i64;
        let kinds: Vec<i16> = events.iter().map(|(k, _)| *k).collect();
        let bodies: Vec<&[u8]> = events.iter().map(|(_, b)| b.as_slice()).collect();
        let client = self.client.as_mut().expect("connected by commit");
        let result = client.query_opt(
            "WITH lease AS (
                 UPDATE sessiond_nodes SET lease_until = now() + $3 * interval '1 second'
                  WHERE writer = $1 AND lease_until > now()
                 RETURNING 1
             ), done AS (
                 INSERT INTO sessiond_commits (writer, commit_no)
                 SELECT $1, $2 FROM lease
                 RETURNING 1
             ), head AS (
                 UPDATE sessiond_log SET head = head + $4
                   FROM done
                  WHERE id = 1
                 RETURNING head
             ), ins AS (
                 INSERT INTO sessiond_events (seq, kind, body, node, writer)
                 SELECT head.head - $4 + e.o, e.k, e.b, $7, $1
                   FROM head, unnest($5::smallint[], $6::bytea[]) WITH ORDINALITY AS e(k, b, o)
                 RETURNING 1
             ), freed AS (
                 DELETE FROM sessiond_accounts
                  WHERE user_id = ANY($8::bigint[]) AND EXISTS (SELECT 1 FROM done)
                 RETURNING 1
             ), bell AS (
                 SELECT pg_notify('sessiond_log', $1::text) FROM head
             )
             SELECT head.head,
                    -- the other live nodes (`LIVE`), which its answers wait for
                    (SELECT count(*) FROM sessiond_nodes n
                      WHERE n.writer <> $1 AND n.serves
                        AND n.lease_until >= now() - n.lease_seconds * interval '0.5 second')
               FROM head, bell",
            &[
                &writer,
                &commit_no,
                &lease.as_secs_f64(),
                &n,
                &kinds,
                &bodies,
                &node,
                &self.deleted,
            ],
        );
        self.committing = events;
        result.map(|row| row.map(|r| (r.get(0), r.get(1))))
    }

    /// A failure to reach the database: retryable, the connection dropped for the next try.
    /// (A lease that runs out meanwhile is the event loop's to act on: `Store::fence`.)
    fn unreachable(&mut self, e: &postgres::Error) -> StoreError {
        self.client = None;
        let text = format!("cluster database: {}", describe(e));
        warn!("{text}");
        StoreError::retry(io::Error::other(text))
    }

    /// The snapshot itself, under the snapshot lock: the log folded here, as of its last
    /// record.
    ///
    /// Design: folded from the log, not taken from the engine. A node's engine holds its
    /// own records at once and the others' a moment later, so its state is not the log up
    /// to any one record; the log's prefix is, whoever wrote it.
    fn write_folded_snapshot(&mut self) -> Result<(), StoreError> {
        const CHUNK: usize = 1_000;
        let client = self.client()?;
        let loaded =
            load(client, UserTable::new()).map_err(|e| StoreError::retry(io::Error::other(e.0)))?;
        let base = loaded.last;
        let events = loaded.state.snapshot_events();
        let (writer, lease) = (self.writer, self.opts.lease);
        let retention = self.opts.audit_retention.as_secs_f64();
        let encoded: Vec<(i16, Vec<u8>)> = events
            .iter()
            .map(|ev| {
                let (k, b) = record::encode(ev);
                (i16::from(k), b)
            })
            .collect();
        // One step: a transaction that renews the lease first (None: lost), then `f`.
        let step =
            |store: &mut ClusterStore,
             f: &mut dyn FnMut(&mut postgres::Transaction<'_>) -> Result<i64, postgres::Error>|
             -> Result<i64, StoreError> {
                let started = now();
                let client = store.client()?;
                let result = (|| -> Result<Option<i64>, postgres::Error> {
                    let mut tx = client.transaction()?;
                    if !renew(&mut tx, writer, lease)? {
                        return Ok(None);
                    }
                    let v = f(&mut tx)?;
                    tx.commit()?;
                    Ok(Some(v))
                })();
                match result {
                    Ok(Some(v)) => {
                        store.renewed_at = started;
                        store.fence.extend_to(started + lease);
                        Ok(v)
                    }
                    Ok(None) => Err(lost_lease()),
                    Err(e) => Err(store.unreachable(&e)),
                }
            };
        step(self, &mut |tx| {
            tx.execute(
                "DELETE FROM sessiond_snapshot WHERE base_seq = $1",
                &[&base],
            )?;
            tx.execute(
                "INSERT INTO sessiond_snapshots (base_seq) VALUES ($1)
                 ON CONFLICT (base_seq) DO UPDATE SET complete = false",
                &[&base],
            )?;
            Ok(base)
        })?;
        for (i, chunk) in encoded.chunks(CHUNK).enumerate() {
            let kinds: Vec<i16> = chunk.iter().map(|(k, _)| *k).collect();
            let bodies: Vec<&[u8]> = chunk.iter().map(|(_, b)| b.as_slice()).collect();
            let first = (i * CHUNK) as i64;
            step(self, &mut |tx| {
                tx.execute(
                    "INSERT INTO sessiond_snapshot (base_seq, ord, kind, body)
                     SELECT $1, $2 + o, k, b FROM unnest($3::smallint[], $4::bytea[])
                         WITH ORDINALITY AS e(k, b, o)",
                    &[&base, &first, &kinds, &bodies],
                )
                .map(|n| n as i64)
            })?;
        }
        let removed = step(self, &mut |tx| {
            tx.execute(
                "UPDATE sessiond_snapshots SET complete = true WHERE base_seq = $1",
                &[&base],
            )?;
            tx.execute(
                "DELETE FROM sessiond_snapshot WHERE base_seq <> $1",
                &[&base],
            )?;
            tx.execute(
                "DELETE FROM sessiond_snapshots WHERE base_seq <> $1",
                &[&base],
            )?;
            // The history past the retention, now that the snapshot holds the state.
            tx.execute(
                "DELETE FROM sessiond_events
                  WHERE seq <= $1 AND committed_at < now() - $2 * interval '1 second'",
                &[&base, &retention],
            )
            .map(|n| n as i64)
        })?;
        if removed > 0 {
            info!("cluster: {removed} log record(s) past the audit retention removed");
        }
        info!(
            "cluster: snapshot of {} events at log record {base}",
            events.len()
        );
        self.since_snapshot = 0;
        Ok(())
    }
}

impl Store for ClusterStore {
    fn append(&mut self, ev: &Event) -> io::Result<()> {
        if let Event::UserDeleted { user_id } = ev {
            self.deleted.push(*user_id as i64);
        }
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
        let started = now();
        match self.write(self.commits) {
            Ok(Some((head, others))) => {
                self.position = head;
                self.alone = others == 0;
                self.deleted.clear();
                self.fence.extend_to(started + self.opts.lease);
                self.since_snapshot += self
                    .committing
                    .iter()
                    .map(|(_, b)| b.len() as u64)
                    .sum::<u64>();
                self.committing.clear();
                self.renewed_at = started;
                Ok(())
            }
            Ok(None) => Err(lost_lease()),
            Err(e)
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    && e.as_db_error().and_then(|d| d.constraint())
                        == Some("sessiond_commits_pkey") =>
            {
                // The commit number is taken: an earlier attempt of this very commit did
                // land (its COMMIT's answer was lost).
                info!("cluster database: a commit retried after a lost answer had landed");
                self.committing.clear();
                self.deleted.clear();
                // Where it ended is not known: the log's head now is at or past it, and
                // the others are waited for.
                self.alone = false;
                if let Some(c) = self.client.as_mut() {
                    if let Ok(row) = c.query_one("SELECT head FROM sessiond_log WHERE id = 1", &[])
                    {
                        self.position = row.get(0);
                    }
                }
                Ok(())
            }
            Err(e) if e.is_closed() || e.as_db_error().is_none() || is_transient(&e) => {
                Err(self.unreachable(&e))
            }
            Err(e) => Err(StoreError::fatal(io::Error::other(format!(
                "cluster database: {}",
                describe(&e)
            )))),
        }
    }

    fn needs_snapshot(&self) -> bool {
        self.since_snapshot > self.opts.snapshot_bytes
    }

    /// The whole state (`events`, as of the last commit) as the new snapshot: written in
    /// chunks of 1,000 events, each in a transaction of its own that renews the lease (a large state takes
    /// longer than a lease to write), then marked complete, and the previous one removed,
    /// in a last transaction. A start reads only a complete snapshot; one left half written
    /// by a crash is removed by the next. The log is kept (it is the audit trail) but for
    /// the records past the retention that the new snapshot holds.
    fn write_snapshot(&mut self, _engine_state: &[Event]) -> Result<(), StoreError> {
        self.commit()?;
        if !self.committing.is_empty() || !self.pending.is_empty() {
            return Err(StoreError::retry(io::Error::other("commits pending")));
        }
        // One node at a time (a session's lock: gone with its connection).
        let client = self.client()?;
        let got = client.query_one("SELECT pg_try_advisory_lock($1)", &[&SNAPSHOT_LOCK]);
        match got {
            Ok(row) if row.get::<_, bool>(0) => {}
            Ok(_) => {
                info!("cluster: another node is writing a snapshot; not this one");
                self.since_snapshot = 0;
                return Ok(());
            }
            Err(e) => return Err(self.unreachable(&e)),
        }
        let result = self.write_folded_snapshot();
        if let Some(c) = self.client.as_mut().filter(|c| !c.is_closed()) {
            let _ = c.query_one("SELECT pg_advisory_unlock($1)", &[&SNAPSHOT_LOCK]);
        }
        result
    }
    fn tick_interval(&self) -> Option<Duration> {
        Some((self.opts.lease / 3).max(Duration::from_millis(50)))
    }

    /// Renews the node's lease when a third of it has passed since the last renewal.
    fn tick(&mut self) -> Result<(), StoreError> {
        if self.renewed_at.elapsed() < self.opts.lease / 3 {
            return Ok(());
        }
        let (writer, lease) = (self.writer, self.opts.lease);
        let started = now();
        let result = renew(self.client()?, writer, lease);
        match result {
            Ok(true) => {
                self.renewed_at = started;
                self.fence.extend_to(started + lease);
                Ok(())
            }
            Ok(false) => Err(lost_lease()),
            Err(e) => Err(self.unreachable(&e)),
        }
    }

    fn fence(&self) -> Option<Fence> {
        Some(self.fence.clone())
    }

    fn reserve_account(&mut self, username: &str) -> Result<Reservation, StoreError> {
        let client = self.client()?;
        match reserve_account(client, username) {
            Ok(Some(id)) => Ok(Reservation::Reserved(id)),
            Ok(None) => Ok(Reservation::Taken),
            Err(e) => Err(self.unreachable(&e)),
        }
    }

    fn position(&self) -> u64 {
        self.position as u64
    }

    fn alone(&self) -> bool {
        self.alone
    }

    fn link_spec(&self) -> Option<LinkSpec> {
        Some(LinkSpec {
            url: self.opts.url.clone(),
            node: self.opts.node.clone(),
            writer: self.writer,
            lease: self.opts.lease,
            read_from: self.read_from,
            bound: self.bound.clone(),
        })
    }
}

impl Drop for ClusterStore {
    /// Leaves the cluster: the node's row goes, so that the others need not wait its
    /// lease out before they count its sessions as detached.
    fn drop(&mut self) {
        if let Some(c) = self.client.as_mut().filter(|c| !c.is_closed()) {
            let _ = c.execute(
                "WITH gone AS (DELETE FROM sessiond_nodes WHERE writer = $1 RETURNING 1)
                 SELECT pg_notify('sessiond_applied', '') FROM gone",
                &[&self.writer],
            );
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
