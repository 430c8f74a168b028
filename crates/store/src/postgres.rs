//! The PostgreSQL store: for teams running several `serve` processes behind
//! a load balancer on one database. Same tables and row meanings as SQLite
//! (see [`crate::codec`]); what differs is how processes share the work.
//!
//! # Several processes, one database
//! - **Inbound, exactly once.** `(instance, message_id)` is unique, so a
//!   redelivery is dropped whichever process it reaches. A turn commits in one
//!   transaction that first flips `inbox.processed_at` from NULL (a row lock:
//!   a second process doing the same entry waits, then finds it done and
//!   rolls back) and checks the session revision it computed from.
//! - **Per-contact order.** A process works through a contact's inbox only
//!   while it holds the contact's lease (`contact_leases`, renewed with every
//!   entry, lapsing after [`LEASE`] if the process dies), always taking the
//!   oldest unprocessed entry. The accept of a new entry takes the lease
//!   when it is free, and the turn that leaves nothing waiting gives it up
//!   in its own transaction, so a message costs no lease write of its own.
//!   A lease whose owner's node lock is free (the process died; see below)
//!   is free at once, as its claims are. The lease only saves duplicate
//!   work; order and exactly-once rest on the transaction above.
//! - **Each reply sent once.** The sender claims due rows with
//!   `FOR UPDATE SKIP LOCKED` (one contact's oldest unsent reply at a time),
//!   so two processes never hold the same row, and renews the claim as it
//!   records each attempt (`outbox_attempt`, refused once the claim is
//!   another's). Each process holds a session advisory lock on its own name
//!   for its lifetime, on a connection of its own: when the process dies its
//!   session ends, the lock is free, and the others take its claims at once;
//!   otherwise a claim lapses after [`CLAIM`]. A taken-over reply whose
//!   attempt was under way is unsure (`attempted_at`), never sent blindly.
//! - **Policy.** Every transaction that appends to the audit log first takes
//!   one advisory transaction lock, so the audit seq (the policy revision all
//!   processes poll) grows in commit order, and read-then-write changes
//!   (guards, CAS) cannot interleave.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Row, SqlSafeStr};
use switchyard_engine::engine::{ContactState, Turn};
use switchyard_engine::event::Event;
use switchyard_engine::ids::{Contact, InstanceId, SessionId};
use switchyard_engine::queue::{Accepted, InboxEntry, Outgoing, Pending, Queue};
use switchyard_engine::session::Session;
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::Timestamp;

use crate::codec::{
    contact_state_from_rows, inbox_from_row, key_from_row,
    outgoing_from_row, session_columns,
};
use crate::pg_writer::{insert_replies, write_rows, Inbound, Outbound, TurnRows, Writer};

/// How long a process keeps a contact to itself without renewing.
pub const LEASE: Duration = Duration::from_secs(10);
/// How long a claimed reply stays with the process that claimed it. The
/// sender sizes its batches so that throttling plus a send's timeout fit well
/// inside it, so a live sender's claim never lapses under it.
pub const CLAIM: Duration = Duration::from_secs(30);
/// How often a process checks that its node lock's connection is alive
/// (and takes the lock again after the database came back).
const NODE_LOCK_CHECK: Duration = Duration::from_secs(1);
/// A pooled connection idle this long is pinged before it is handed out.
const IDLE_PING: Duration = Duration::from_secs(1);
/// How long an entry waits before another process's scan for work nobody
/// woke it for ([`Queue::pending_contacts`]) takes it up. The process that
/// accepted an entry wakes its own processor for it at once; a scan every
/// 500 ms by each other process that also took up entries just accepted
/// raced that wake-up for the contact's lease, and the loser's lease try
/// and release were two round trips for nothing (PostgreSQL's CPU per
/// message fell 9% with the scan five times rarer, 3 pairs at 1 000
/// contacts on 2 nodes). Past this, an entry is nobody's: its process
/// stopped or never woke for it, or it lost a narrow race (its process
/// tried the contact while the other process, already past its last read,
/// still held the lease) and waits this long instead of one scan period.
const SCAN_GRACE: Duration = Duration::from_secs(2);
/// A contact lease this process took less than this long ago is not
/// written again by `next_pending` (it runs for [`LEASE`]).
const LEASE_RENEW: Duration = Duration::from_secs(5);
/// The advisory lock every audit-appending transaction takes.
const AUDIT_LOCK: i64 = 0x5357_4954_4348; // "SWITCH"

/// The contact's oldest unprocessed entry ($1 instance, $2 contact), as
/// `inbox_from_row` reads it; `next_pending`'s order.
macro_rules! next_entry {
    () => {
        concat!("SELECT ", entry_columns!(), " FROM inbox WHERE processed_at IS NULL AND instance = $1 AND contact = $2 ", entry_order!())
    };
}

/// An inbox entry's columns as `inbox_from_row` reads them.
macro_rules! entry_columns {
    () => {
        "seq, instance, message_id, contact, reply_to, kind, body, sent_at, received_at"
    };
}

/// The customer's order of a contact's entries: the oldest first.
macro_rules! entry_order {
    () => {
        "ORDER BY COALESCE(sent_at, received_at), seq LIMIT 1"
    };
}

/// A live session `s`'s columns beside its entry's, as
/// `contact_state_from_rows` reads them.
macro_rules! state_columns {
    () => {
        "s.id, s.flow, s.version, s.fingerprint, s.reason, s.reason_detail, s.step, s.data, s.attempts, \
         s.turns, s.started_at, s.last_input_at, s.expires_at, s.outcome, s.ended_at, s.revision, s.parent, s.depth"
    };
}

/// The entry `e` joined with the contact's state as `contact_state` reads
/// it: one row per live session (outermost first), or one with NULL session
/// columns; none when there is no entry. The session's instance and contact
/// are the entry's.
macro_rules! with_state {
    () => {
        concat!(
            "SELECT e.*, ", state_columns!(), ", \
             (SELECT until FROM handoffs h WHERE h.instance = $1 AND h.contact = $2) AS handoff_until, \
             (SELECT string_agg(a.flow || ' ' || a.version || ' ' || a.assigned_at, ',') FROM split_assignments a WHERE a.contact = $2) AS assignments \
             FROM e LEFT JOIN sessions s ON s.instance = $1 AND s.contact = $2 AND s.outcome IS NULL ORDER BY s.depth"
        )
    };
}

/// [`with_state!`] for many held contacts at once ($1 instances, $2
/// contacts, $3 this process): each contact's oldest unprocessed entry with
/// its live sessions (by depth), the contact's lease given up where nothing
/// waits, as the single read does it. The `OFFSET 0` fences keep each
/// subquery a probe per contact (a flattened join could be planned as a
/// scan of every unprocessed entry or live session; see `pg_writer`'s
/// `acquire`).
const READ_MANY: &str = concat!(
    "WITH k AS (SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[]) AS k(instance, contact)), \
     e AS (SELECT n.* FROM k CROSS JOIN LATERAL (SELECT ", entry_columns!(), " FROM inbox \
         WHERE processed_at IS NULL AND instance = k.instance AND contact = k.contact ", entry_order!(), ") n), \
     gone AS (DELETE FROM contact_leases l USING k WHERE l.instance = k.instance AND l.contact = k.contact AND l.owner = $3 \
         AND NOT EXISTS (SELECT 1 FROM e WHERE e.instance = k.instance AND e.contact = k.contact)) \
     SELECT e.*, ", state_columns!(), ", \
         (SELECT until FROM handoffs h WHERE h.instance = e.instance AND h.contact = e.contact) AS handoff_until, \
         (SELECT string_agg(a.flow || ' ' || a.version || ' ' || a.assigned_at, ',') FROM split_assignments a \
          WHERE a.contact = e.contact) AS assignments \
     FROM e LEFT JOIN LATERAL (SELECT * FROM sessions x WHERE x.instance = e.instance AND x.contact = e.contact \
         AND x.outcome IS NULL OFFSET 0) s ON true \
     ORDER BY e.instance, e.contact, s.depth"
);

/// The most held contacts one [`READ_MANY`] reads.
const MAX_READS: usize = 256;

/// Reads of held contacts ([`PgStore::next_pending_with_state`]'s path
/// without a lease write), batched: one task takes every read waiting and
/// makes it one statement ([`READ_MANY`]), so a turn's read is not a round
/// trip of its own under load. Adaptive, as the writer: a lone read goes at
/// once.
#[derive(Clone, Debug)]
struct Reader {
    queue: tokio::sync::mpsc::UnboundedSender<ReadJob>,
}

type ReadKey = (String, String);

#[derive(Debug)]
struct ReadJob {
    key: ReadKey,
    done: tokio::sync::oneshot::Sender<Result<Vec<sqlx::postgres::PgRow>, StoreError>>,
}

impl Reader {
    fn start(pool: PgPool, node: Arc<str>) -> Reader {
        let (queue, jobs) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(read_many(pool, node, jobs));
        Reader { queue }
    }

    /// The contact's rows as [`with_state!`] reads them; none when nothing
    /// waits (the lease is then given up).
    async fn read(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<sqlx::postgres::PgRow>, StoreError> {
        let stopped = || StoreError::Unavailable("the PostgreSQL reader stopped".to_owned());
        let (done, answer) = tokio::sync::oneshot::channel();
        self.queue.send(ReadJob { key: (instance.as_str().to_owned(), contact.as_str().to_owned()), done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn read_many(pool: PgPool, node: Arc<str>, mut jobs: tokio::sync::mpsc::UnboundedReceiver<ReadJob>) {
    // A second read of a contact already in the batch waits for the next one
    // (one task per contact makes it rare): both would take the same rows.
    // Deferred reads go first, in the order they came, each key once.
    let mut later: std::collections::VecDeque<ReadJob> = std::collections::VecDeque::new();
    loop {
        let mut batch: Vec<ReadJob> = Vec::new();
        for job in std::mem::take(&mut later) {
            if batch.len() < MAX_READS && !batch.iter().any(|other| other.key == job.key) {
                batch.push(job);
            } else {
                later.push_back(job);
            }
        }
        if batch.is_empty() {
            match jobs.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
        }
        while batch.len() < MAX_READS {
            let Ok(job) = jobs.try_recv() else { break };
            if batch.iter().any(|other| other.key == job.key) {
                later.push_back(job);
            } else {
                batch.push(job);
            }
        }
        let result = sqlx::query(READ_MANY)
            .bind(batch.iter().map(|job| job.key.0.as_str()).collect::<Vec<_>>())
            .bind(batch.iter().map(|job| job.key.1.as_str()).collect::<Vec<_>>())
            .bind(&*node)
            .fetch_all(&pool)
            .await;
        match result {
            Ok(rows) => {
                // A row without its key cannot be routed: every read of the
                // batch fails (and is retried) rather than one of them
                // taking "nothing" for an answer.
                let mut by_key: std::collections::HashMap<ReadKey, Vec<sqlx::postgres::PgRow>> = std::collections::HashMap::new();
                let mut unkeyed = None;
                for row in rows {
                    match (row.try_get::<String, _>("instance"), row.try_get::<String, _>("contact")) {
                        (Ok(instance), Ok(contact)) => by_key.entry((instance, contact)).or_default().push(row),
                        (Err(err), _) | (_, Err(err)) => unkeyed = Some(StoreError::Corrupt(format!("a read of held contacts: {err}"))),
                    }
                }
                for job in batch {
                    let answer = match &unkeyed {
                        Some(err) => Err(crate::pg_writer::copy(err)),
                        None => Ok(by_key.remove(&job.key).unwrap_or_default()),
                    };
                    let _ = job.done.send(answer);
                }
            }
            Err(err) => {
                let message = map_err(err);
                for job in batch {
                    let _ = job.done.send(Err(crate::pg_writer::copy(&message)));
                }
            }
        }
    }
}

fn migrator() -> Migrator {
    let migration = |version: i64, description: &'static str, sql: &'static str| {
        Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
    };
    Migrator::with_migrations(vec![
        migration(1, "schema", include_str!("../migrations/postgres/0001_schema.sql")),
        migration(2, "contact and retention indexes", include_str!("../migrations/postgres/0002_contact_indexes.sql")),
        migration(3, "outbox request ids", include_str!("../migrations/postgres/0003_outbox_request_id.sql")),
        migration(4, "contact aliases, two-digit pin details", include_str!("../migrations/postgres/0004_contact_aliases.sql")),
        migration(5, "metric counters", include_str!("../migrations/postgres/0005_metric_counters.sql")),
        migration(6, "outbox attempts of unknown outcome", include_str!("../migrations/postgres/0006_outbox_unsure.sql")),
        migration(8, "console indexes and report rollups", include_str!("../migrations/postgres/0008_console_indexes.sql")),
        migration(9, "holds and chatwoot links", include_str!("../migrations/postgres/0009_holds_and_chatwoot.sql")),
        migration(10, "outbox files and menu options", include_str!("../migrations/postgres/0010_outbox_rich.sql")),
        migration(11, "flow documents", include_str!("../migrations/postgres/0011_flow_documents.sql")),
        migration(12, "calls between flows", include_str!("../migrations/postgres/0012_session_calls.sql")),
        migration(13, "instance connections", include_str!("../migrations/postgres/0013_instance_connections.sql")),
        migration(14, "console at scale: covering start index", include_str!("../migrations/postgres/0014_console_scale.sql")),
        migration(15, "metric counters per statement", include_str!("../migrations/postgres/0015_statement_counters.sql")),
        migration(16, "session updates heap-only", include_str!("../migrations/postgres/0016_session_hot_updates.sql")),
        migration(17, "a counter shard per writer", include_str!("../migrations/postgres/0017_writer_counter_shard.sql")),
        migration(18, "outbox room for claims", include_str!("../migrations/postgres/0018_outbox_room_for_claims.sql")),
        migration(19, "no pending order index", include_str!("../migrations/postgres/0019_no_pending_order_index.sql")),
    ])
}

/// Connection settings beyond the URL (the name is older than the SQLite
/// field).
#[derive(Clone, Debug)]
pub struct PgSettings {
    /// Connections per process (`DATABASE_MAX_CONNECTIONS`).
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing with a
    /// retryable error.
    pub acquire_timeout: Duration,
    /// SQLite only: how commits reach the disk (`SQLITE_SYNCHRONOUS`).
    pub sqlite_synchronous: crate::sqlite::Synchronous,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings { max_connections: 10, acquire_timeout: Duration::from_secs(5), sqlite_synchronous: crate::sqlite::Synchronous::Full }
    }
}

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// For contact leases and send-attempt marks: `synchronous_commit = off`,
    /// so they do not wait for a WAL flush (a lease lost in a database crash
    /// only costs a duplicate computation, refused at commit).
    leases: PgPool,
    /// This process's name in leases and claims.
    node: Arc<str>,
    /// Group commit of the hot-path writes (inbox, inbound turns, sent marks).
    writer: Writer,
    /// Batched reads of held contacts (on the `leases` pool).
    reader: Reader,
    /// The contacts whose lease this process holds, with when it last wrote
    /// it: `next_pending` renews it only after [`LEASE_RENEW`] (see there).
    held: Arc<std::sync::Mutex<std::collections::HashMap<(InstanceId, Contact), std::time::Instant>>>,
    /// The contacts whose lease `next_pending` gave up because nothing
    /// waited: the `release_contact` that follows has nothing left to do.
    released: Arc<std::sync::Mutex<std::collections::HashSet<(InstanceId, Contact)>>>,
    /// Held for as long as any clone of this store lives.
    _node_lock: Arc<NodeLock>,
}

/// This process's session advisory lock on its own name
/// (`hashtextextended(node, 0)`), held on a dedicated connection: while the
/// lock is held its claims are its own; once its session ends (the process
/// died or lost the database) the other processes take them over at once.
/// The keeper task checks the connection every [`NODE_LOCK_CHECK`] and takes
/// the lock again on a new one after an outage.
#[derive(Debug)]
struct NodeLock {
    keeper: tokio::task::JoinHandle<()>,
}

impl Drop for NodeLock {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

impl NodeLock {
    async fn take(options: PgConnectOptions, node: Arc<str>) -> Result<NodeLock, sqlx::Error> {
        let connection = lock_node(&options, &node).await?;
        let keeper = tokio::spawn(async move {
            let mut connection = Some(connection);
            loop {
                tokio::time::sleep(NODE_LOCK_CHECK).await;
                let alive = match connection.as_mut() {
                    Some(connection) => sqlx::query("SELECT 1").execute(&mut *connection).await.is_ok(),
                    None => false,
                };
                if !alive {
                    connection = lock_node(&options, &node).await.ok();
                }
            }
        });
        Ok(NodeLock { keeper })
    }
}

async fn lock_node(options: &PgConnectOptions, node: &str) -> Result<PgConnection, sqlx::Error> {
    let mut connection = PgConnection::connect_with(options).await?;
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))").bind(node).execute(&mut connection).await?;
    Ok(connection)
}

pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.as_ref() {
                // unique violation, serialization failure, deadlock
                "23505" | "40001" | "40P01" => StoreError::Conflict(db.message().to_owned()),
                // connection exceptions, shutdown, too many connections, recovery
                code if code.starts_with("08") || code.starts_with("57P") || code == "53300" => {
                    StoreError::Unavailable(db.message().to_owned())
                }
                _ => StoreError::Other(err.to_string()),
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
            StoreError::Unavailable(err.to_string())
        }
        _ => StoreError::Other(err.to_string()),
    }
}

/// The URL without its password (in the user part or as a `password` /
/// `sslpassword` query parameter), for messages and logs.
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match base[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &base[..scheme + 3], &base[at..]),
            None => base.to_owned(),
        },
        _ => base.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") || name.eq_ignore_ascii_case("sslpassword") => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

impl PgStore {
    /// Connects to `url` (`postgres://...`) and runs the migrations (under
    /// PostgreSQL's migration lock, so processes starting together are safe).
    pub async fn open(url: &str, settings: &PgSettings) -> Result<PgStore, StoreError> {
        PgStore::open_with_queue(url, settings, crate::pg_writer::QUEUE).await
    }

    /// [`PgStore::open`] with room for `queue` writes waiting for the
    /// writer (tests fill a small one).
    pub async fn open_with_queue(url: &str, settings: &PgSettings, queue: usize) -> Result<PgStore, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|err| StoreError::Other(format!("DATABASE_URL '{}' is not a valid PostgreSQL URL: {err}", redact(url))))?
            .application_name("switchyard");
        let connect = |max: u32, options: PgConnectOptions| {
            PgPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(settings.acquire_timeout)
                .idle_timeout(Some(Duration::from_secs(600)))
                // A connection that broke while idle (a database restart) is
                // noticed before it is handed out: one that sat idle a while
                // is pinged first. Not every one: a ping is a round trip, and
                // sqlx already pings each connection as it comes back (a
                // broken one is dropped then), so under load a statement
                // costs one round trip instead of two on the way out.
                .test_before_acquire(false)
                .before_acquire(|connection, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= IDLE_PING {
                            sqlx::Connection::ping(connection).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
        };
        let unavailable = |err: sqlx::Error| StoreError::Unavailable(format!("cannot connect to '{}': {err}", redact(url)));
        let pool = connect(settings.max_connections, options.clone()).await.map_err(unavailable)?;
        let leases = connect(settings.max_connections.div_ceil(4).max(1), options.clone().options([("synchronous_commit", "off")]))
            .await
            .map_err(unavailable)?;
        migrator().run(&pool).await.map_err(|err| StoreError::Other(format!("migrating '{}' failed: {err}", redact(url))))?;
        let node: Arc<str> = format!("{}-{}", std::process::id(), uuid_like()).into();
        let node_lock = NodeLock::take(options.clone(), Arc::clone(&node)).await.map_err(unavailable)?;
        let writer = Writer::start(pool.clone(), queue, Arc::clone(&node));
        let reader = Reader::start(leases.clone(), Arc::clone(&node));
        Ok(PgStore { pool, leases, node, writer, reader, held: Arc::default(), released: Arc::default(), _node_lock: Arc::new(node_lock) })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// This process's name in leases and claims.
    pub fn node(&self) -> &str {
        &self.node
    }

    pub async fn ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    fn held_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<(InstanceId, Contact), std::time::Instant>> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn released_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<(InstanceId, Contact)>> {
        self.released.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes waiting for the writer (the batch being written not counted).
    #[doc(hidden)]
    pub fn write_backlog(&self) -> usize {
        self.writer.backlog()
    }
}

/// A name unique enough to tell processes apart (pid alone repeats across
/// machines): the pid plus the nanoseconds of the start.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos());
    format!("{:x}", nanos & 0xffff_ffff_ffff)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

pub(crate) async fn lock_audit(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_LOCK).execute(&mut **tx).await.map_err(map_err)?;
    Ok(())
}

/// Writes a turn inside `tx`: sessions (insert or revision-checked update),
/// events, split assignments and the handoff hold, one statement per kind
/// of row ([`crate::pg_writer::write_rows`]).
pub(crate) async fn write_turn(tx: &mut Tx<'_>, turn: &Turn) -> Result<(), StoreError> {
    let rows = TurnRows::new(turn);
    let refused = write_rows(tx, &[(&rows, None)]).await.map_err(map_err)?;
    match refused.into_iter().next() {
        Some((_, err)) => Err(err),
        None => Ok(()),
    }
}

/// Queues a turn's replies inside `tx`, in one statement.
pub(crate) async fn queue_replies(tx: &mut Tx<'_>, turn: &Turn, reply_to: &str, created_at: i64, request_id: Option<&str>) -> Result<(), StoreError> {
    if turn.replies.is_empty() {
        return Ok(());
    }
    let rows = TurnRows::new(turn);
    let out = Outbound { reply_to: reply_to.to_owned(), created_at, request_id: request_id.map(str::to_owned) };
    insert_replies(tx, &[(&rows, &out)]).await.map_err(map_err)
}

impl Store for PgStore {
    async fn contact_state(&self, instance: &InstanceId, contact: &Contact) -> Result<ContactState, StoreError> {
        // One row per live session (the outermost and the stack of calls, by
        // depth); one row with NULL session columns when there is none.
        let rows = sqlx::query(concat!(
            "SELECT ", session_columns!(), ", \
             (SELECT until FROM handoffs h WHERE h.instance = $1 AND h.contact = $2) AS handoff_until, \
             (SELECT string_agg(a.flow || ' ' || a.version || ' ' || a.assigned_at, ',') FROM split_assignments a WHERE a.contact = $2) AS assignments \
             FROM (SELECT 1) AS one LEFT JOIN sessions ON instance = $1 AND contact = $2 AND outcome IS NULL ORDER BY depth"
        ))
        .bind(instance.as_str())
        .bind(contact.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        contact_state_from_rows(&rows)
    }

    async fn commit(&self, turn: &Turn) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        write_turn(&mut tx, turn).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError> {
        self.expired_sessions(now, limit).await
    }

    async fn sessions_of(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<Session>, StoreError> {
        self.contact_sessions(instance, contact).await
    }

    async fn events_of(&self, session: SessionId) -> Result<Vec<Event>, StoreError> {
        self.session_events(session).await
    }

    async fn release_handoff(&self, instance: &InstanceId, contact: &Contact) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM handoffs WHERE instance = $1 AND contact = $2")
            .bind(instance.as_str())
            .bind(contact.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(RELEASED).bind(instance.as_str()).bind(contact.as_str()).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }
}

impl Queue for PgStore {
    /// Through the writer: many accepts share one statement and one commit;
    /// refused at once (`Unavailable`) when its queue is full. A new entry
    /// takes its contact's lease when nobody holds it (this process wakes
    /// its own processor for it, whose read then writes no lease). A
    /// process that dies between the accept and the turn leaves the entry
    /// to the others at once: its node lock, and so its lease, went with it.
    async fn accept(&self, entry: &InboxEntry) -> Result<Accepted, StoreError> {
        let (accepted, leased) = self.writer.accept(entry).await?;
        if leased {
            self.held_lock().insert((entry.instance.clone(), entry.contact.clone()), std::time::Instant::now());
        }
        Ok(accepted)
    }

    /// Contacts with unprocessed entries that no other process holds,
    /// received at least [`SCAN_GRACE`] ago (the accepting process has
    /// woken for newer ones).
    async fn pending_contacts(&self, limit: u32) -> Result<Vec<(InstanceId, Contact)>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.instance, i.contact, MIN(i.seq) AS first FROM inbox i WHERE i.processed_at IS NULL AND i.received_at <= $4 \
             AND NOT EXISTS (SELECT 1 FROM contact_leases l WHERE l.instance = i.instance AND l.contact = i.contact \
                             AND l.owner <> $1 AND l.until > $2 AND NOT pg_try_advisory_xact_lock_shared(hashtextextended(l.owner, 0))) \
             GROUP BY i.instance, i.contact ORDER BY first LIMIT $3",
        )
        .bind(&*self.node)
        .bind(Timestamp::now_utc().as_millis())
        .bind(i64::from(limit))
        .bind(Timestamp::now_utc().as_millis() - millis(SCAN_GRACE))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(key_from_row).collect()
    }

    /// Takes (or renews) the contact's lease and reads its oldest
    /// unprocessed entry, in one round trip; `None` when another process
    /// holds the contact (see [`PgStore::next_pending_with_state`]).
    async fn next_pending(&self, instance: &InstanceId, contact: &Contact) -> Result<Option<Pending>, StoreError> {
        Ok(self.next_pending_with_state(instance, contact).await?.map(|(pending, _)| pending))
    }

    /// Through the writer, together with the other turns, accepts and sent
    /// marks waiting: refused alone (`Conflict`) when its entry is taken or
    /// a session it read has moved on.
    async fn commit_inbound(&self, turn: &Turn, pending: &Pending, reply_to: &str) -> Result<(), StoreError> {
        self.writer.commit_inbound(Inbound::new(turn, pending, reply_to)).await.map(drop)
    }

    /// Claims and returns each contact's oldest unsent reply, if due and not
    /// claimed by a live process (`claim_due`).
    async fn due_outbox(&self, now: Timestamp, limit: u32) -> Result<Vec<Outgoing>, StoreError> {
        self.claim_due(now, limit, false).await
    }

    /// Only while the claim is still this process's: renewed from `at`, so
    /// the send has a whole claim ahead of it. Written without waiting for a
    /// WAL flush (the `leases` pool): the mark only matters if this process
    /// dies, and losing it too takes a database crash at the same moment.
    async fn outbox_attempt(&self, seq: i64, at: Timestamp) -> Result<bool, StoreError> {
        Ok(self.outbox_attempt_many(&[seq], at).await? == [seq])
    }

    /// Left alone when another process has taken the claim over: it already
    /// knows the reply is unsure (this attempt's `attempted_at`).
    async fn outbox_unsure(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, \
             unsure_since = COALESCE(unsure_since, attempted_at), attempted_at = NULL, claimed_by = NULL, claim_until = NULL \
             WHERE seq = $3 AND sent_at IS NULL AND (claimed_by IS NULL OR claimed_by = $4)",
        )
        .bind(next_at.as_millis())
        .bind(error)
        .bind(seq)
        .bind(&*self.node)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn sent_ids_since(&self, instance: &InstanceId, contact: &Contact, since: Timestamp) -> Result<Vec<String>, StoreError> {
        self.provider_ids_since(instance, contact, since).await
    }

    async fn outbox_sent(&self, seq: i64, provider_id: Option<&str>, at: Timestamp) -> Result<(), StoreError> {
        self.writer.sent(vec![(seq, provider_id.map(str::to_owned))], at).await
    }

    /// Left alone when another process has taken the claim over (this
    /// process's lock was lost): the row is that process's now.
    async fn outbox_retry(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2, attempted_at = NULL, \
             claimed_by = NULL, claim_until = NULL WHERE seq = $3 AND sent_at IS NULL AND (claimed_by IS NULL OR claimed_by = $4)",
        )
        .bind(next_at.as_millis())
        .bind(error)
        .bind(seq)
        .bind(&*self.node)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn outbox_failed(&self, seq: i64, reason: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE outbox SET failed_at = $1, last_error = $2, attempts = attempts + 1, attempted_at = NULL, \
             claimed_by = NULL, claim_until = NULL WHERE seq = $3 AND sent_at IS NULL AND failed_at IS NULL",
        )
        .bind(at.as_millis())
        .bind(reason)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO events (session_id, flow, version, at, step, kind, detail) \
                 SELECT s.id, s.flow, s.version, $1, s.step, 'undeliverable', $2 FROM outbox o JOIN sessions s ON s.id = o.session_id \
                 WHERE o.seq = $3",
            )
            .bind(at.as_millis())
            .bind(reason)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        let depth: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(value), 0)::BIGINT FROM counters WHERE name = 'outbox_depth'")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(depth.max(0) as u64)
    }

    /// Gives up the lease; true when entries wait that nobody holds (they
    /// arrived, through another process, while this one held the contact).
    /// One statement: its read sees the leases as they were before its own
    /// `DELETE`, so this process's lease is left out by owner.
    async fn release_contact(&self, instance: &InstanceId, contact: &Contact) -> Result<bool, StoreError> {
        let key = (instance.clone(), contact.clone());
        self.held_lock().remove(&key);
        // `next_pending` found nothing and gave the lease up in the same
        // statement (one snapshot, as below): nothing waited then.
        if self.released_lock().remove(&key) {
            return Ok(false);
        }
        sqlx::query_scalar(
            "WITH gone AS (DELETE FROM contact_leases WHERE instance = $1 AND contact = $2 AND owner = $3) \
             SELECT EXISTS (SELECT 1 FROM inbox WHERE processed_at IS NULL AND instance = $1 AND contact = $2) \
             AND NOT EXISTS (SELECT 1 FROM contact_leases WHERE instance = $1 AND contact = $2 AND owner <> $3 AND until > $4 \
                             AND NOT pg_try_advisory_xact_lock_shared(hashtextextended(owner, 0)))",
        )
        .bind(instance.as_str())
        .bind(contact.as_str())
        .bind(&*self.node)
        .bind(Timestamp::now_utc().as_millis())
        .fetch_one(&self.leases)
        .await
        .map_err(map_err)
    }
}

/// Evacuation and batched send marks: the same operations as
/// [`crate::sqlite::SqliteStore`]'s.
impl PgStore {
    /// [`Queue::next_pending`] with the contact's state
    /// ([`Store::contact_state`]) read in the same statement, so a turn
    /// costs one round trip less. Takes (or renews) the contact's lease and
    /// reads its oldest unprocessed entry; `None` when another process holds
    /// the contact (the data-modifying `WITH` runs whether or not the read
    /// needs it, and the read happens only when the lease is ours) or when
    /// nothing waits. The state is as fresh as a `contact_state` call right
    /// after: the turn's commit still checks every session's revision.
    pub async fn next_pending_with_state(&self, instance: &InstanceId, contact: &Contact) -> Result<Option<(Pending, ContactState)>, StoreError> {
        let key = (instance.clone(), contact.clone());
        self.released_lock().remove(&key);
        // The lease taken moments ago (the entry before this one) still
        // runs: no lease write. Skipping it is safe: the lease only saves
        // duplicate work (see the module doc), and it is renewed well
        // before it lapses. When nothing waits, the lease is given up in
        // the same statement (what `release_contact` would do next: its
        // read and its delete share one snapshot there too).
        let fresh = self.held_lock().get(&key).is_some_and(|at| at.elapsed() < LEASE_RENEW);
        if fresh {
            let rows = self.reader.read(instance, contact).await?;
            if rows.is_empty() {
                self.held_lock().remove(&key);
                self.released_lock().insert(key);
                return Ok(None);
            }
            return pending_with_state(&rows);
        }
        let taken_at = std::time::Instant::now();
        let now = Timestamp::now_utc();
        let rows = sqlx::query(concat!(
            "WITH lease AS ( \
                INSERT INTO contact_leases (instance, contact, owner, until) VALUES ($1, $2, $3, $4) \
                ON CONFLICT (instance, contact) DO UPDATE SET owner = excluded.owner, until = excluded.until \
                WHERE contact_leases.owner = excluded.owner OR contact_leases.until <= $5 \
                   OR pg_try_advisory_xact_lock_shared(hashtextextended(contact_leases.owner, 0)) RETURNING owner), \
             e AS (SELECT * FROM (",
            next_entry!(),
            ") n WHERE EXISTS (SELECT 1 FROM lease)) ",
            with_state!()
        ))
        .bind(instance.as_str())
        .bind(contact.as_str())
        .bind(&*self.node)
        .bind(now.as_millis() + millis(LEASE))
        .bind(now.as_millis())
        .fetch_all(&self.leases)
        .await
        .map_err(map_err)?;
        // An entry came back: the lease is ours (none does when another
        // process holds the contact, or when there is nothing to do).
        if rows.is_empty() {
            return Ok(None);
        }
        self.held_lock().insert(key, taken_at);
        pending_with_state(&rows)
    }

    /// [`Queue::commit_inbound`] that also gives the contact's lease up in
    /// the turn's transaction when no other entry of the contact waits then
    /// (`pg_writer`'s `release_all`). Answers whether the processor should
    /// look at the contact again: false once the lease went with the turn,
    /// so the read that would only find the inbox empty, and give the lease
    /// up, is not made.
    pub async fn commit_inbound_releasing(&self, turn: &Turn, pending: &Pending, reply_to: &str) -> Result<bool, StoreError> {
        let inbound = Inbound::new(turn, pending, reply_to).releasing(Arc::clone(&self.node));
        let released = self.writer.commit_inbound(inbound).await?;
        if released {
            self.held_lock().remove(&(turn.instance.clone(), turn.contact.clone()));
        }
        Ok(!released)
    }

    pub async fn commit_with_replies(&self, turn: &Turn) -> Result<bool, StoreError> {
        let reply_to: Option<String> =
            sqlx::query_scalar("SELECT reply_to FROM inbox WHERE instance = $1 AND contact = $2 ORDER BY seq DESC LIMIT 1")
                .bind(turn.instance.as_str())
                .bind(turn.contact.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        write_turn(&mut tx, turn).await?;
        if let Some(reply_to) = &reply_to {
            queue_replies(&mut tx, turn, reply_to, Timestamp::now_utc().as_millis(), None).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(reply_to.is_some())
    }

    /// Claims each contact's oldest unsent reply, if due and not claimed by
    /// a live process ([`Queue::due_outbox`]); with `attempt`, the claim
    /// also marks the attempt of every reply never tried before, the mark
    /// [`PgStore::outbox_attempt_many`] would write next, in the same
    /// statement: one row version and one round trip less per reply. The
    /// replies come back as they were before the claim (a reply marked now
    /// reads as never tried, not as unsure). For unthrottled sends, which go
    /// out as soon as a send slot is free (the sender writes the attempt
    /// again when that took half a claim): a throttled reply is marked just
    /// before its request.
    pub async fn claim_due(&self, now: Timestamp, limit: u32, attempt: bool) -> Result<Vec<Outgoing>, StoreError> {
        // A claim is free when it lapsed, or at once when its owner's node
        // lock is gone (the process died: its session ended with it). The
        // lock is probed only for a claim still running, by trying it
        // shared for this transaction: a live owner holds it exclusively.
        // (Reading `pg_locks` instead took every lock-manager partition on
        // each poll, whatever the outbox held.)
        //
        // Three steps, each its own plan: the contacts' heads in one pass
        // over `outbox_waiting` in its own order (`DISTINCT ON`), the due
        // and free ones first by seq; those rows locked through the primary
        // key, skipping any another process holds, and checked again on
        // their latest version (`picked`, which keeps the attempt columns
        // as they were for the answer); the claim written. The waiting
        // replies were walked with a `MIN(seq)` probe each (2-3x the time
        // at a thousand waiting). The recheck reads `COALESCE(sent_at,
        // failed_at) IS NULL` so the planner cannot take a waiting-reply
        // index for it, which it did on a fresh table: a walk of every
        // waiting reply to find a few seqs.
        let rows = sqlx::query(
            "WITH picked AS MATERIALIZED ( \
                SELECT l.seq, l.attempted_at AS was_attempted, l.unsure_since AS was_unsure FROM outbox l WHERE l.seq = ANY (ARRAY( \
                    SELECT h.seq FROM ( \
                        SELECT DISTINCT ON (instance, contact) seq, next_attempt_at, claim_until, claimed_by FROM outbox \
                        WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY instance, contact, seq) h \
                    WHERE h.next_attempt_at <= $3 AND (h.claim_until IS NULL OR h.claim_until <= $3 \
                          OR (h.claimed_by <> $1 AND pg_try_advisory_xact_lock_shared(hashtextextended(h.claimed_by, 0)))) \
                    ORDER BY h.seq LIMIT $4)) \
                AND COALESCE(l.sent_at, l.failed_at) IS NULL \
                AND (l.claim_until IS NULL OR l.claim_until <= $3 \
                     OR (l.claimed_by <> $1 AND pg_try_advisory_xact_lock_shared(hashtextextended(l.claimed_by, 0)))) \
                FOR UPDATE SKIP LOCKED) \
             UPDATE outbox o SET claimed_by = $1, claim_until = $2, \
                attempted_at = CASE WHEN $5 AND p.was_attempted IS NULL AND p.was_unsure IS NULL THEN $3 ELSE o.attempted_at END \
             FROM picked p WHERE o.seq = p.seq \
             RETURNING o.seq, o.instance, o.contact, o.reply_to, o.text, o.session_id, o.attempts, o.created_at, o.request_id, o.rich, \
                COALESCE(p.was_unsure, p.was_attempted) AS unsure_since, p.was_attempted AS attempted_at",
        )
        .bind(&*self.node)
        .bind(now.as_millis() + millis(CLAIM))
        .bind(now.as_millis())
        .bind(i64::from(limit))
        .bind(attempt)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut due = rows.iter().map(outgoing_from_row).collect::<Result<Vec<_>, _>>()?;
        due.sort_by_key(|outgoing| outgoing.seq);
        Ok(due)
    }

    /// [`Queue::outbox_attempt`] for several replies, in one statement: the
    /// seqs marked. Only while the claim is still this process's: renewed
    /// from `at`, so the send has a whole claim ahead of it. Written without
    /// waiting for a WAL flush (the `leases` pool): the mark only matters if
    /// this process dies, and losing it too takes a database crash at the
    /// same moment.
    pub async fn outbox_attempt_many(&self, seqs: &[i64], at: Timestamp) -> Result<Vec<i64>, StoreError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let mut marked: Vec<i64> = sqlx::query_scalar(
            "UPDATE outbox SET unsure_since = COALESCE(unsure_since, attempted_at), attempted_at = $1, claim_until = $2 \
             WHERE seq = ANY($3::BIGINT[]) AND sent_at IS NULL AND failed_at IS NULL AND claimed_by = $4 RETURNING seq",
        )
        .bind(at.as_millis())
        .bind(at.as_millis() + millis(CLAIM))
        .bind(seqs)
        .bind(&*self.node)
        .fetch_all(&self.leases)
        .await
        .map_err(map_err)?;
        marked.sort_unstable();
        Ok(marked)
    }

    /// [`Queue::outbox_sent`] for several replies (`(seq, provider id)`),
    /// in one statement.
    pub async fn outbox_sent_many(&self, sent: &[(i64, Option<String>)], at: Timestamp) -> Result<(), StoreError> {
        self.writer.sent(sent.to_vec(), at).await
    }
}

fn pending_with_state(rows: &[sqlx::postgres::PgRow]) -> Result<Option<(Pending, ContactState)>, StoreError> {
    let Some(first) = rows.first() else { return Ok(None) };
    Ok(Some((inbox_from_row(first)?, contact_state_from_rows(rows)?)))
}

/// Closes the contact's live hold (`holds`) as released by hand ($1
/// instance, $2 contact), on PostgreSQL's clock in Unix milliseconds.
const RELEASED: &str = "UPDATE holds SET ended_at = CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT), ended_by = 'release' \
                        WHERE instance = $1 AND contact = $2 AND ended_at IS NULL AND until > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_lose_their_password_in_messages() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/switchyard"), "postgres://app:***@db:5432/switchyard");
        assert_eq!(redact("postgres://root@127.0.0.1/test"), "postgres://root@127.0.0.1/test");
        assert_eq!(redact("postgres:///test"), "postgres:///test");
        assert_eq!(redact("postgres://app@db/x?password=s3cret&sslmode=disable"), "postgres://app@db/x?password=***&sslmode=disable");
        assert_eq!(redact("postgres://app:pw@db/x?options=-c%20search_path%3Dt"), "postgres://app:***@db/x?options=-c%20search_path%3Dt");
    }
}
