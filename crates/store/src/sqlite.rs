//! The SQLite store: one file, WAL journal, migrations embedded in the binary
//! and run on open. Meant for one process; commits are serialised by SQLite.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlSafeStr;
use switchyard_engine::engine::{ContactState, Turn};
use switchyard_engine::queue::{Accepted, InboxEntry, Outgoing, Pending, Queue};
use switchyard_engine::event::Event;
use switchyard_engine::ids::{Contact, InstanceId, SessionId, StepId};
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::Timestamp;

use crate::codec::{contact_state_from_rows, ContactRows, data_to_json, event_columns, inbox_columns, session_columns, FromColumns};
use crate::reader::Cursor;
use crate::writer::{bind, Param, Results, Statement, Writer};

/// Migrations, embedded so the binary needs no files beside it.
pub(crate) fn migrator() -> Migrator {
    let migration = |version: i64, description: &'static str, sql: &'static str| {
        Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
    };
    Migrator::with_migrations(vec![
        migration(1, "sessions and events", include_str!("../migrations/sqlite/0001_sessions_and_events.sql")),
        migration(2, "inbox and outbox", include_str!("../migrations/sqlite/0002_inbox_and_outbox.sql")),
        migration(3, "policy and audit", include_str!("../migrations/sqlite/0003_policy_and_audit.sql")),
        migration(4, "split assignments", include_str!("../migrations/sqlite/0004_split_assignments.sql")),
        migration(5, "contact and retention indexes", include_str!("../migrations/sqlite/0005_contact_indexes.sql")),
        migration(6, "outbox request ids", include_str!("../migrations/sqlite/0006_outbox_request_id.sql")),
        migration(7, "contact aliases, two-digit pin details", include_str!("../migrations/sqlite/0007_contact_aliases.sql")),
        migration(8, "metric counters", include_str!("../migrations/sqlite/0008_metric_counters.sql")),
        migration(9, "outbox attempts of unknown outcome", include_str!("../migrations/sqlite/0009_outbox_unsure.sql")),
        migration(11, "console indexes and report rollups", include_str!("../migrations/sqlite/0011_console_indexes.sql")),
        migration(12, "holds and chatwoot links", include_str!("../migrations/sqlite/0012_holds_and_chatwoot.sql")),
        migration(13, "outbox files and menu options", include_str!("../migrations/sqlite/0013_outbox_rich.sql")),
        migration(14, "flow documents", include_str!("../migrations/sqlite/0014_flow_documents.sql")),
        migration(15, "calls between flows", include_str!("../migrations/sqlite/0015_session_calls.sql")),
        migration(16, "instance connections", include_str!("../migrations/sqlite/0016_instance_connections.sql")),
        migration(17, "console at scale: covering start index", include_str!("../migrations/sqlite/0017_console_scale.sql")),
        migration(19, "counter triggers: one counter row per change", include_str!("../migrations/sqlite/0019_counter_triggers.sql")),
        migration(20, "session counters without an upsert", include_str!("../migrations/sqlite/0020_session_counts_without_upsert.sql")),
        migration(21, "no index of unprocessed entries by seq", include_str!("../migrations/sqlite/0021_no_pending_order_index.sql")),
        migration(22, "outbox attempts recorded at commit", include_str!("../migrations/sqlite/0022_outbox_attempt_by.sql")),
    ])
}

/// How SQLite syncs a commit to disk (`SQLITE_SYNCHRONOUS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit is on the disk before it is acknowledged: a power loss
    /// loses nothing acknowledged. With group commit one fsync covers a
    /// whole batch, so this costs little.
    #[default]
    Full,
    /// In WAL mode a process crash loses nothing, but a power loss (or an
    /// OS crash) can drop the last commits, acknowledged ones included.
    Normal,
}

impl Synchronous {
    /// `full` or `normal`, in any case.
    pub fn parse(text: &str) -> Result<Synchronous, String> {
        match text.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            _ => Err(format!("SQLITE_SYNCHRONOUS '{text}' must be full or normal")),
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Reads use `pool`, which in WAL mode never blocks the writer, except the
/// hot-path ones (the inbox, a contact's state, the due outbox), which run
/// on the [`Writer`] thread's warm connection. The hot writes (inbox,
/// turns, outbox marks) go to that group-commit thread; the rare ones
/// (policy, erasure, retention, bursts) use the `writer` pool's one
/// connection with `BEGIN IMMEDIATE`, so SQLite's lock serialises the two.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    /// The writer thread, which runs the hot-path reads too (none for an
    /// in-memory database: its writes and reads use `writer` and `pool`).
    group: Option<Writer>,
    /// The token of the sender that takes this process's replies with
    /// their attempts recorded in the turn's commit (0: none; see
    /// [`SqliteStore::attempt_at_commit`]).
    attempt_by: Arc<AtomicI64>,
}

pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_owned()),
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(err.to_string())
        }
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5") | Some("6")) => {
            // SQLITE_BUSY / SQLITE_LOCKED after the busy timeout.
            StoreError::Unavailable(db.message().to_owned())
        }
        _ => StoreError::Other(err.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH` or
    /// `sqlite::memory:`) and runs the migrations.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(url, Synchronous::default()).await
    }

    /// [`SqliteStore::open`] with the commit durability chosen.
    pub async fn open_with(url: &str, synchronous: Synchronous) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|err| StoreError::Other(format!("DATABASE_URL '{url}' is not a valid SQLite URL: {err}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match synchronous {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Deleted and overwritten content is zeroed, so an erased value
            // does not linger in free pages or unused cell space (the WAL
            // is truncated after an erasure: `privacy`).
            .pragma("secure_delete", "ON")
            // As the writer thread's connection, so a commit here does not
            // checkpoint a WAL that one is still growing.
            .pragma("wal_autocheckpoint", crate::writer::WAL_AUTOCHECKPOINT.to_string());
        let in_memory = url.contains(":memory:");
        let connect = |max: u32| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(if in_memory { 1 } else { 0 })
                .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
                .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(3600)) })
                .connect_with(options.clone())
        };
        let writer = connect(1).await.map_err(|err| StoreError::Unavailable(format!("cannot open '{url}': {err}")))?;
        migrator()
            .run(&writer)
            .await
            .map_err(|err| StoreError::Other(format!("migrating '{url}' failed: {err}")))?;
        // An in-memory database exists per connection: share the writer.
        let pool = if in_memory {
            writer.clone()
        } else {
            connect(4).await.map_err(|err| StoreError::Unavailable(format!("cannot open '{url}': {err}")))?
        };
        // An in-memory database cannot be opened twice: its writes run on
        // the writer pool's connection.
        let group = if in_memory {
            None
        } else {
            let path = options.get_filename().to_string_lossy().into_owned();
            Some(crate::writer::start(&path, synchronous.pragma())?)
        };
        Ok(SqliteStore { pool, writer, group, attempt_by: Arc::default() })
    }

    /// Applies `statements` in one transaction (grouped with other writes),
    /// waiting for room in the writer's queue. (Here and in the reads, the
    /// in-memory database's sqlx futures are boxed: they are kilobytes, and
    /// inline they would size every future awaiting a file store's call.)
    pub(crate) async fn write(&self, statements: Vec<Statement>) -> Result<Results, StoreError> {
        match &self.group {
            Some(group) => group.write(statements).await,
            None => Box::pin(crate::writer::direct(&self.writer, statements)).await,
        }
    }

    /// [`SqliteStore::write`], refused with [`StoreError::Unavailable`] when
    /// the writer's queue is full.
    pub(crate) async fn try_write(&self, statements: Vec<Statement>) -> Result<Results, StoreError> {
        match &self.group {
            Some(group) => group.try_write(statements).await,
            None => Box::pin(crate::writer::direct(&self.writer, statements)).await,
        }
    }

    /// Every row of a hot-path read, decoded: on the writer's connection
    /// ([`Writer::read`]), through `pool` for an in-memory database.
    async fn read_all<T: FromColumns + Send + 'static>(&self, sql: &'static str, params: &[Param]) -> Result<Vec<T>, StoreError> {
        match &self.group {
            Some(writer) => {
                let params = params.to_vec();
                writer.read(move |cursor| cursor.all(sql, &params, |row| T::from_columns(row))).await
            }
            None => Box::pin(bind(sqlx::query(sql), params).fetch_all(&self.pool)).await.map_err(map_err)?.iter().map(T::from_columns).collect(),
        }
    }

    /// The first row of a hot-path read, decoded ([`SqliteStore::read_all`]).
    async fn read_first<T: FromColumns + Send + 'static>(&self, sql: &'static str, params: &[Param]) -> Result<Option<T>, StoreError> {
        match &self.group {
            Some(writer) => {
                let params = params.to_vec();
                writer.read(move |cursor| cursor.first(sql, &params, |row| T::from_columns(row))).await
            }
            None => Box::pin(bind(sqlx::query(sql), params).fetch_optional(&self.pool)).await.map_err(map_err)?.as_ref().map(T::from_columns).transpose(),
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// True when the database answers and every migration has run.
    pub async fn ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// A turn's writes: sessions (insert or revision-checked update), events,
/// split assignments and the handoff hold. The session writes are
/// `OR FAIL`, as the replies' are ([`reply_statements`] says why).
pub(crate) fn turn_statements(turn: &Turn, out: &mut Vec<Statement>) {
    for session in &turn.sessions {
        let record = session.record();
        if record.revision == 0 {
            out.push(Statement::new(
                "INSERT OR FAIL INTO sessions (id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, \
                 attempts, turns, started_at, last_input_at, expires_at, outcome, ended_at, revision, parent, depth) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                vec![
                    record.id.to_string().into(),
                    record.instance.as_str().into(),
                    record.contact.as_str().into(),
                    record.flow.as_str().into(),
                    i64::from(record.version.number()).into(),
                    record.fingerprint.as_str().into(),
                    record.reason.name().into(),
                    record.reason.detail().into(),
                    record.step.as_str().into(),
                    data_to_json(&record.data).into(),
                    i64::from(record.attempts).into(),
                    i64::from(record.turns).into(),
                    record.started_at.as_millis().into(),
                    record.last_input_at.as_millis().into(),
                    record.expires_at.as_millis().into(),
                    record.outcome.map(Outcome::as_str).into(),
                    record.ended_at.map(Timestamp::as_millis).into(),
                    record.parent.map(|id| id.to_string()).into(),
                    i64::from(record.depth).into(),
                ],
            ));
        } else {
            let mut params: Vec<Param> = vec![
                record.step.as_str().into(),
                data_to_json(&record.data).into(),
                i64::from(record.attempts).into(),
                i64::from(record.turns).into(),
                record.last_input_at.as_millis().into(),
                record.expires_at.as_millis().into(),
            ];
            // A turn that leaves the session live does not name `outcome`:
            // SQLite rewrites every index whose key or `WHERE` names a
            // column the statement sets, changed or not, and three partial
            // indexes (`sessions_one_live` among them) are `WHERE outcome ...`.
            let sql = match record.outcome {
                None => {
                    "UPDATE OR FAIL sessions SET step = ?, data = ?, attempts = ?, turns = ?, last_input_at = ?, expires_at = ?, \
                     revision = revision + 1 WHERE id = ? AND revision = ? AND outcome IS NULL"
                }
                Some(outcome) => {
                    params.push(outcome.as_str().into());
                    params.push(record.ended_at.map(Timestamp::as_millis).into());
                    "UPDATE OR FAIL sessions SET step = ?, data = ?, attempts = ?, turns = ?, last_input_at = ?, expires_at = ?, \
                     outcome = ?, ended_at = ?, revision = revision + 1 WHERE id = ? AND revision = ? AND outcome IS NULL"
                }
            };
            params.push(record.id.to_string().into());
            params.push((record.revision as i64).into());
            out.push(Statement::one(sql, params, format!("session {} is no longer live at revision {}", record.id, record.revision)));
        }
    }
    for event in &turn.events {
        let (reason, reason_detail, fingerprint, detail) = event_columns(&event.kind);
        out.push(Statement::new(
            "INSERT INTO events (session_id, flow, version, at, step, kind, reason, reason_detail, fingerprint, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                event.session.to_string().into(),
                event.flow.as_str().into(),
                i64::from(event.version.number()).into(),
                event.at.as_millis().into(),
                event.step.as_ref().map(StepId::as_str).into(),
                event.kind.name().into(),
                reason.into(),
                reason_detail.into(),
                fingerprint.into(),
                detail.into(),
            ],
        ));
    }
    for (flow, version, at) in &turn.assignments {
        out.push(Statement::new(
            "INSERT INTO split_assignments (contact, flow, version, assigned_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (contact, flow) DO UPDATE SET version = excluded.version, assigned_at = excluded.assigned_at",
            vec![turn.contact.as_str().into(), flow.as_str().into(), i64::from(version.number()).into(), at.as_millis().into()],
        ));
    }
    if let Some(until) = turn.handoff_until {
        out.push(Statement::new(
            "INSERT INTO handoffs (instance, contact, until) VALUES (?, ?, ?) \
             ON CONFLICT (instance, contact) DO UPDATE SET until = excluded.until",
            vec![turn.instance.as_str().into(), turn.contact.as_str().into(), until.as_millis().into()],
        ));
    }
}

/// What caused a turn's replies: the inbox entry (its arrival time and
/// message id go with them), or nothing (an evacuation, queued now).
pub(crate) enum Cause<'a> {
    Inbox(&'a Pending),
    Now(i64),
}

/// A turn's replies for the outbox, in order.
///
/// The hot writes that fire the counter triggers (0019) are `OR FAIL`: with
/// the default `ABORT`, a statement that writes through a trigger keeps a
/// statement journal, a copy of every page it touches, to undo itself
/// alone, and that was a tenth of the writer thread's time. No write needs
/// that: a write that fails is undone whole, by the batch's rollback or
/// its savepoint ([`crate::writer`]), and a one-row write checks its
/// constraints before it changes anything. The cause's arrival time and
/// message id come from the entry the turn read, not from a `SELECT` of
/// the inbox, which with a trigger on the outbox also copied its result
/// into a temporary table first. `attempt`: the (token, time) the replies'
/// first attempts are recorded with ([`SqliteStore::attempt_at_commit`]).
pub(crate) fn reply_statements(turn: &Turn, reply_to: &str, cause: &Cause<'_>, attempt: Option<(i64, i64)>, out: &mut Vec<Statement>) {
    let (created_at, request_id): (i64, Option<&str>) = match cause {
        Cause::Inbox(pending) => (pending.entry.received_at.as_millis(), Some(pending.entry.message_id.as_str())),
        Cause::Now(at) => (*at, None),
    };
    let (attempt_by, attempted_at) = attempt.unzip();
    for reply in &turn.replies {
        out.push(Statement::new(
            "INSERT OR FAIL INTO outbox (instance, contact, reply_to, text, session_id, next_attempt_at, rich, created_at, request_id, attempt_by, attempted_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                turn.instance.as_str().into(),
                turn.contact.as_str().into(),
                reply_to.into(),
                reply.text.as_str().into(),
                reply.session.map(|id| id.to_string()).into(),
                i64::MIN.into(),
                crate::codec::rich_to_json(reply.rich.as_ref()).into(),
                created_at.into(),
                request_id.into(),
                attempt_by.into(),
                attempted_at.into(),
            ],
        ));
    }
}

/// The most replies of one contact [`SqliteStore::due_runs`] hands out at once.
pub const RUN: usize = 8;

const OUTBOX_ATTEMPT: &str = "UPDATE outbox SET unsure_since = COALESCE(unsure_since, attempted_at), attempted_at = ?, attempt_by = NULL \
                              WHERE seq = ? AND sent_at IS NULL AND failed_at IS NULL";

const OUTBOX_SENT: &str = "UPDATE OR FAIL outbox SET sent_at = ?, provider_id = ?, attempts = attempts + 1, attempted_at = NULL WHERE seq = ?";

impl Store for SqliteStore {
    async fn contact_state(&self, instance: &InstanceId, contact: &Contact) -> Result<ContactState, StoreError> {
        let params: [Param; 2] = [instance.as_str().into(), contact.as_str().into()];
        match &self.group {
            Some(writer) => writer.read(move |cursor| read_contact_state(cursor, &params)).await,
            None => contact_state_from_rows(&Box::pin(bind(sqlx::query(CONTACT_STATE), &params).fetch_all(&self.pool)).await.map_err(map_err)?),
        }
    }

    async fn commit(&self, turn: &Turn) -> Result<(), StoreError> {
        let mut statements = Vec::new();
        turn_statements(turn, &mut statements);
        self.write(statements).await.map(drop)
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
        let done = self
            .write(vec![Statement::new(
                "DELETE FROM handoffs WHERE instance = ? AND contact = ?",
                vec![instance.as_str().into(), contact.as_str().into()],
            ),
            Statement::new(RELEASED, vec![instance.as_str().into(), contact.as_str().into()])])
            .await?;
        Ok(done[0].unwrap_or(0) > 0)
    }
}

impl Queue for SqliteStore {
    async fn accept(&self, entry: &InboxEntry) -> Result<Accepted, StoreError> {
        let (kind, body) = inbox_columns(&entry.kind);
        let inserted = self
            .try_write(vec![Statement::returning(
                "INSERT OR FAIL INTO inbox (instance, message_id, contact, reply_to, kind, body, sent_at, received_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instance, message_id) DO NOTHING RETURNING seq",
                vec![
                    entry.instance.as_str().into(),
                    entry.message_id.as_str().into(),
                    entry.contact.as_str().into(),
                    entry.reply_to.as_str().into(),
                    kind.into(),
                    body.into(),
                    entry.sent_at.map(Timestamp::as_millis).into(),
                    entry.received_at.as_millis().into(),
                ],
            )])
            .await?;
        Ok(match inserted[0] {
            Some(seq) => Accepted::New(seq),
            None => Accepted::Duplicate,
        })
    }

    async fn pending_contacts(&self, limit: u32) -> Result<Vec<(InstanceId, Contact)>, StoreError> {
        self.read_all(PENDING_CONTACTS, &[i64::from(limit).into()])
        .await
    }

    async fn next_pending(&self, instance: &InstanceId, contact: &Contact) -> Result<Option<Pending>, StoreError> {
        self.read_first(NEXT_PENDING, &[instance.as_str().into(), contact.as_str().into(), 1i64.into()]).await
    }

    async fn commit_inbound(&self, turn: &Turn, pending: &Pending, reply_to: &str) -> Result<(), StoreError> {
        let seq = pending.seq;
        let mut statements = vec![Statement::one(
            "UPDATE inbox SET processed_at = received_at WHERE seq = ? AND processed_at IS NULL AND body IS ?",
            vec![seq.into(), inbox_columns(&pending.entry.kind).1.into()],
            format!("inbox entry {seq} is processed, changed or gone"),
        )];
        turn_statements(turn, &mut statements);
        reply_statements(turn, reply_to, &Cause::Inbox(pending), self.commit_attempt(), &mut statements);
        self.write(statements).await.map(drop)
    }

    async fn due_outbox(&self, now: Timestamp, limit: u32) -> Result<Vec<Outgoing>, StoreError> {
        // Each contact's head is found in the waiting replies' partial index
        // (`outbox_waiting`, one pass, the minimum per contact), then read by
        // seq. The former `seq = (SELECT MIN ...)` per row was planned (no
        // ANALYZE statistics) as a scan of the whole outbox in seq order,
        // sent rows included: its cost grew with the history, not the work.
        self.read_all(
            "SELECT seq, instance, contact, reply_to, text, session_id, attempts, created_at, request_id, rich, \
             COALESCE(unsure_since, attempted_at) AS unsure_since, attempted_at FROM outbox \
             WHERE seq IN (SELECT MIN(seq) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL GROUP BY instance, contact) \
             AND next_attempt_at <= ? ORDER BY seq LIMIT ?",
            &[now.as_millis().into(), i64::from(limit).into()],
        )
        .await
    }

    async fn outbox_attempt(&self, seq: i64, at: Timestamp) -> Result<bool, StoreError> {
        Ok(self.outbox_attempt_many(&[seq], at).await? == [seq])
    }

    async fn outbox_unsure(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError> {
        self.write(vec![Statement::new(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, \
             unsure_since = COALESCE(unsure_since, attempted_at), attempted_at = NULL WHERE seq = ? AND sent_at IS NULL",
            vec![next_at.as_millis().into(), error.into(), seq.into()],
        )])
        .await
        .map(drop)
    }

    async fn sent_ids_since(&self, instance: &InstanceId, contact: &Contact, since: Timestamp) -> Result<Vec<String>, StoreError> {
        self.provider_ids_since(instance, contact, since).await
    }

    async fn outbox_sent(&self, seq: i64, provider_id: Option<&str>, at: Timestamp) -> Result<(), StoreError> {
        self.write(vec![Statement::new(OUTBOX_SENT, vec![at.as_millis().into(), provider_id.into(), seq.into()])])
        .await
        .map(drop)
    }

    async fn outbox_retry(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError> {
        self.write(vec![Statement::new(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, attempted_at = NULL \
             WHERE seq = ? AND sent_at IS NULL",
            vec![next_at.as_millis().into(), error.into(), seq.into()],
        )])
        .await
        .map(drop)
    }

    async fn outbox_failed(&self, seq: i64, reason: &str, at: Timestamp) -> Result<(), StoreError> {
        // The event is written only when this call marked the reply failed
        // (the `changes()` of the update just before it in the same write).
        self.write(vec![
            Statement::new(
                "UPDATE outbox SET failed_at = ?, last_error = ?, attempts = attempts + 1, attempted_at = NULL \
                 WHERE seq = ? AND sent_at IS NULL AND failed_at IS NULL",
                vec![at.as_millis().into(), reason.into(), seq.into()],
            ),
            Statement::new(
                "INSERT INTO events (session_id, flow, version, at, step, kind, detail) \
                 SELECT s.id, s.flow, s.version, ?, s.step, 'undeliverable', ? FROM outbox o JOIN sessions s ON s.id = o.session_id \
                 WHERE o.seq = ? AND changes() = 1",
                vec![at.as_millis().into(), reason.into(), seq.into()],
            ),
        ])
        .await
        .map(drop)
    }

    async fn outbox_depth(&self) -> Result<u64, StoreError> {
        let depth: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE name = 'outbox_depth'")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(depth.max(0) as u64)
    }
}

impl SqliteStore {
    /// [`Queue::outbox_attempt`] for several replies, in one write: the
    /// seqs marked (a reply sent or failed meanwhile is left out).
    pub async fn outbox_attempt_many(&self, seqs: &[i64], at: Timestamp) -> Result<Vec<i64>, StoreError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let statements = seqs.iter().map(|seq| Statement::new(OUTBOX_ATTEMPT, vec![at.as_millis().into(), (*seq).into()])).collect();
        let done = self.write(statements).await?;
        Ok(seqs.iter().zip(done).filter(|(_, changed)| *changed == Some(1)).map(|(seq, _)| *seq).collect())
    }

    /// From now on, a turn's replies are queued with their first attempt on
    /// record, as `token`'s (a nonzero number that names this process's
    /// sender): [`SqliteStore::due_runs`] hands them to that sender as
    /// attempted already, so no write stands between the turn's commit and
    /// the send. Anyone else (a later process, after a crash) finds an
    /// attempt cut short: unsure, checked with Evolution before sending.
    /// Only a file database (one `serve` holds it): `false` and nothing
    /// changes on an in-memory one, or for a zero token.
    pub fn attempt_at_commit(&self, token: i64) -> bool {
        let on = self.group.is_some() && token != 0;
        if on {
            self.attempt_by.store(token, Ordering::Relaxed);
        }
        on
    }

    /// Turns [`SqliteStore::attempt_at_commit`] off: later turns queue
    /// their replies unattempted.
    pub fn stop_attempts_at_commit(&self) {
        self.attempt_by.store(0, Ordering::Relaxed);
    }

    /// The (token, time) a turn committed now records its replies'
    /// attempts with, if any.
    pub(crate) fn commit_attempt(&self) -> Option<(i64, i64)> {
        match self.attempt_by.load(Ordering::Relaxed) {
            0 => None,
            token => Some((token, Timestamp::now_utc().as_millis())),
        }
    }

    /// [`Queue::due_outbox`], and behind each contact's due head the
    /// replies queued after it that were never requested and are due (at
    /// most [`RUN`] a contact; none past one that is not), in order. The
    /// sender delivers a contact's whole turn in one round instead of one
    /// reply per round. Heads only on an in-memory database.
    ///
    /// With them, the seqs whose first attempt was recorded at their
    /// turn's commit for `token` ([`SqliteStore::attempt_at_commit`]) and
    /// not requested since: they come back as not unsure (their
    /// `attempted_at` is the commit's), and need no attempt written before
    /// their send.
    pub async fn due_runs(&self, now: Timestamp, limit: u32, token: i64) -> Result<(Vec<Outgoing>, Vec<i64>), StoreError> {
        use crate::codec::Columns;
        let Some(writer) = &self.group else { return Ok((Box::pin(self.due_outbox(now, limit)).await?, Vec::new())) };
        let params: [Param; 3] = [now.as_millis().into(), i64::from(limit).into(), token.into()];
        // `fresh`: attempted at the commit for `token`, no outcome since
        // (every outcome clears `attempted_at` and counts in `attempts`).
        let read = move |cursor: &mut Cursor<'_>| cursor.all(
            "WITH heads AS (SELECT seq, instance, contact FROM outbox \
               WHERE seq IN (SELECT MIN(seq) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL GROUP BY instance, contact) \
               AND next_attempt_at <= ?1 ORDER BY seq LIMIT ?2), \
             rows AS (SELECT o.*, h.seq AS head, \
               (o.attempt_by IS ?3 AND o.attempts = 0 AND o.unsure_since IS NULL AND o.attempted_at IS NOT NULL) AS fresh \
               FROM heads h JOIN outbox o ON o.instance = h.instance AND o.contact = h.contact AND o.seq >= h.seq \
               AND o.sent_at IS NULL AND o.failed_at IS NULL) \
             SELECT seq, instance, contact, reply_to, text, session_id, attempts, created_at, request_id, rich, \
             CASE WHEN fresh THEN NULL ELSE COALESCE(unsure_since, attempted_at) END AS unsure_since, \
             attempted_at, head, fresh, \
             (next_attempt_at <= ?1 AND attempts = 0 AND unsure_since IS NULL AND (attempted_at IS NULL OR fresh)) AS plain \
             FROM rows ORDER BY head, seq",
            &params,
            |row| Ok((crate::codec::outgoing_from_row(row)?, row.int("head")?, row.int("fresh")? != 0, row.int("plain")? != 0)),
        );
        let rows = writer.read(read).await?;
        let (mut due, mut fresh) = (Vec::with_capacity(rows.len()), Vec::new());
        let mut run: (i64, usize, bool) = (i64::MIN, 0, false); // head, length, cut
        for (outgoing, head, attempted, plain) in rows {
            if head != run.0 {
                run = (head, 0, false);
            }
            let is_head = outgoing.seq == head;
            run.2 |= !is_head && (!plain || run.1 >= RUN);
            if !run.2 {
                run.1 += 1;
                if attempted {
                    fresh.push(outgoing.seq);
                }
                due.push(outgoing);
            }
        }
        Ok((due, fresh))
    }

    /// Moves the attempt mark of a reply this process marked and has not
    /// requested yet (by the sender's batch write, or at its turn's commit
    /// for `token`) to `at`, just before its request: the mark is what a
    /// later start lets settle, so it must not be much older than the
    /// request. Unlike [`Queue::outbox_attempt`] it leaves the reply as
    /// sure as it was. `false`: sent, failed or not marked meanwhile.
    pub async fn renew_attempt(&self, seq: i64, token: i64, at: Timestamp) -> Result<bool, StoreError> {
        let done = self
            .write(vec![Statement::new(
                "UPDATE outbox SET attempted_at = ?, attempt_by = NULL WHERE seq = ? AND sent_at IS NULL AND failed_at IS NULL \
                 AND attempted_at IS NOT NULL AND unsure_since IS NULL AND (attempt_by IS NULL OR attempt_by = ?)",
                vec![at.as_millis().into(), seq.into(), token.into()],
            )])
            .await?;
        Ok(done.first() == Some(&Some(1)))
    }

    /// At a graceful stop: takes back the attempts recorded at commit for
    /// `token` whose replies were never requested (all but `keep`, whose
    /// requests went out with no outcome on record), so the next process
    /// sends them at once instead of checking them first. Returns how many.
    pub async fn take_back_commit_attempts(&self, token: i64, keep: &[i64]) -> Result<usize, StoreError> {
        let keep = format!("[{}]", keep.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
        let done = self
            .write(vec![Statement::new(
                "UPDATE outbox SET attempted_at = NULL, attempt_by = NULL WHERE sent_at IS NULL AND failed_at IS NULL \
                 AND attempt_by = ? AND attempts = 0 AND unsure_since IS NULL AND attempted_at IS NOT NULL \
                 AND seq NOT IN (SELECT value FROM json_each(?))",
                vec![token.into(), keep.into()],
            )])
            .await?;
        Ok(done.first().copied().flatten().and_then(|changed| usize::try_from(changed).ok()).unwrap_or(0))
    }

    /// Takes back the attempt marks of replies marked but never requested
    /// (a reply ahead of them in their contact's run failed): they are
    /// plain due replies again, not unsure ones. Only first attempts are
    /// touched.
    pub async fn outbox_unattempt_many(&self, seqs: &[i64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let statements = seqs
            .iter()
            .map(|seq| {
                Statement::new(
                    "UPDATE outbox SET attempted_at = NULL, attempt_by = NULL WHERE seq = ? AND sent_at IS NULL AND failed_at IS NULL AND unsure_since IS NULL",
                    vec![(*seq).into()],
                )
            })
            .collect();
        self.write(statements).await.map(drop)
    }

    /// [`Queue::outbox_sent`] for several replies (`(seq, provider id)`),
    /// in one write.
    pub async fn outbox_sent_many(&self, sent: &[(i64, Option<String>)], at: Timestamp) -> Result<(), StoreError> {
        let statements = sent
            .iter()
            .map(|(seq, provider_id)| {
                Statement::new(OUTBOX_SENT, vec![at.as_millis().into(), provider_id.as_deref().into(), (*seq).into()])
            })
            .collect();
        self.write(statements).await.map(drop)
    }

    /// Commits a turn made outside a message (an evacuation) and queues its
    /// replies to the contact's last known address, if the contact ever wrote
    /// through a channel. Returns whether the replies were queued.
    pub async fn commit_with_replies(&self, turn: &Turn) -> Result<bool, StoreError> {
        let reply_to: Option<String> =
            sqlx::query_scalar("SELECT reply_to FROM inbox WHERE instance = ? AND contact = ? ORDER BY seq DESC LIMIT 1")
                .bind(turn.instance.as_str())
                .bind(turn.contact.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        let mut statements = Vec::new();
        turn_statements(turn, &mut statements);
        if let Some(reply_to) = &reply_to {
            reply_statements(turn, reply_to, &Cause::Now(Timestamp::now_utc().as_millis()), self.commit_attempt(), &mut statements);
        }
        self.write(statements).await?;
        Ok(reply_to.is_some())
    }
}

/// The contacts with entries waiting, oldest first.
const PENDING_CONTACTS: &str =
    "SELECT instance, contact, MIN(seq) AS first FROM inbox WHERE processed_at IS NULL GROUP BY instance, contact ORDER BY first LIMIT ?";

/// A contact's oldest unprocessed entries, in the order they are processed
/// (`?3` at most).
const NEXT_PENDING: &str = "SELECT seq, instance, message_id, contact, reply_to, kind, body, sent_at, received_at FROM inbox \
                            WHERE processed_at IS NULL AND instance = ? AND contact = ? \
                            ORDER BY COALESCE(sent_at, received_at), seq LIMIT ?";

impl SqliteStore {
    /// [`Queue::next_pending`], and whether another unprocessed entry of the
    /// contact waits behind it, from the same read. The processor stops
    /// after a turn when none did (and no wake-up came for the contact
    /// since) instead of reading the inbox once more only to find it empty.
    /// On a file the contact's state comes with the entry, read in the same
    /// job on the writer's connection (nothing commits in between), as
    /// PostgreSQL reads it in the same statement: one hand-off to the
    /// writer's thread per turn instead of two.
    pub async fn next_pending_and_more(&self, instance: &InstanceId, contact: &Contact) -> Result<crate::NextPending, StoreError> {
        let params: [Param; 3] = [instance.as_str().into(), contact.as_str().into(), 2i64.into()];
        let Some(writer) = &self.group else {
            let mut rows = self.read_all::<Pending>(NEXT_PENDING, &params).await?.into_iter();
            let first = rows.next();
            return Ok((first.map(|pending| (pending, None)), rows.next().is_some()));
        };
        let read = move |cursor: &mut Cursor<'_>| {
            let mut first = None;
            let mut more = false;
            cursor.each(NEXT_PENDING, &params, |row| {
                match first {
                    None => first = Some(Pending::from_columns(row)?),
                    Some(_) => more = true,
                }
                Ok(())
            })?;
            let Some(first) = first else { return Ok((None, more)) };
            let state = read_contact_state(cursor, &params[..2])?;
            Ok((Some((first, Some(state))), more))
        };
        writer.read(read).await
    }
}

/// A contact's live sessions (the outermost and the stack of calls, by
/// depth: one row each; one row with NULL session columns when there is
/// none), its handoff and its split assignments. `?1` instance, `?2` contact.
///
/// `INDEXED BY sessions_one_live`: left to itself, SQLite's planner took
/// `sessions_by_contact` for this join, which holds every session the
/// contact ever had, and read each one's row to find it finished, so the
/// read a turn needs grew with the contact's history (a returning
/// customer's 40th purchase read 40 rows; it was a sixth of the writer
/// thread in `loadgen 50 --rounds=40`). The live-session index holds only
/// the live ones. (Should the index go, this statement fails to prepare
/// instead of silently scanning.)
const CONTACT_STATE: &str = concat!(
    "SELECT ", session_columns!(), ", \
     (SELECT until FROM handoffs h WHERE h.instance = ?1 AND h.contact = ?2) AS handoff_until, \
     (SELECT group_concat(a.flow || ' ' || a.version || ' ' || a.assigned_at, ',') FROM split_assignments a WHERE a.contact = ?2) AS assignments \
     FROM (SELECT 1) LEFT JOIN sessions INDEXED BY sessions_one_live ON instance = ?1 AND contact = ?2 AND outcome IS NULL ORDER BY depth",
);

/// [`CONTACT_STATE`] for `params` (instance, contact), decoded.
fn read_contact_state(cursor: &mut Cursor<'_>, params: &[Param]) -> Result<ContactState, StoreError> {
    let mut state = ContactRows::default();
    cursor.each(CONTACT_STATE, params, |row| state.push(row))?;
    Ok(state.finish())
}

/// Closes the contact's live hold (`holds`) as released by hand ($1
/// instance, $2 contact), on SQLite's clock in Unix milliseconds.
const RELEASED: &str = "UPDATE holds SET ended_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), ended_by = 'release' \
                        WHERE instance = $1 AND contact = $2 AND ended_at IS NULL AND until > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";


#[cfg(test)]
mod tests {
    use super::*;

    /// The steps of `sql`'s plan (on a fresh store, parameters unbound) that
    /// read `table`, and the whole plan for the failure message.
    async fn plan_for(sql: &str, table: &str) -> (Vec<String>, Vec<String>) {
        let store = SqliteStore::open(&crate::testing::fresh_sqlite_url("plan")).await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))).fetch_all(store.pool()).await.unwrap();
        let plan: Vec<String> = plan.into_iter().map(|row| row.3).collect();
        (plan.iter().filter(|detail| detail.contains(&format!(" {table} "))).cloned().collect(), plan)
    }

    /// The contact-state read finds the live sessions through the index of
    /// live sessions, not through every session the contact ever had.
    #[tokio::test]
    async fn the_contact_state_read_uses_the_live_session_index() {
        let (sessions, plan) = plan_for(CONTACT_STATE, "sessions").await;
        assert_eq!(sessions, ["SEARCH sessions USING INDEX sessions_one_live (instance=? AND contact=?) LEFT-JOIN"], "{plan:?}");
    }

    /// The scan for contacts with waiting entries groups them through the
    /// index of unprocessed entries by contact (migration 0021 dropped the
    /// one by seq), not through every entry ever received.
    #[tokio::test]
    async fn the_waiting_contacts_scan_uses_the_unprocessed_entries_index() {
        let (inbox, plan) = plan_for(PENDING_CONTACTS, "inbox").await;
        assert_eq!(inbox, ["SCAN inbox USING INDEX inbox_pending"], "{plan:?}");
    }

    /// The bundled SQLite is built as `.cargo/config.toml` asks: without
    /// the memory statistics' mutex and without the page cache shared by all
    /// connections (a `LIBSQLITE3_FLAGS` of one's own replaces that setting,
    /// and a build started outside the workspace does not read it).
    #[tokio::test]
    async fn the_bundled_sqlite_is_built_without_its_global_mutexes() {
        let store = SqliteStore::open(&crate::testing::fresh_sqlite_url("options")).await.unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options").fetch_all(store.pool()).await.unwrap();
        assert!(
            options.iter().any(|option| option == "DEFAULT_MEMSTATUS=0") && !options.iter().any(|option| option == "ENABLE_MEMORY_MANAGEMENT"),
            "LIBSQLITE3_FLAGS from .cargo/config.toml did not reach the SQLite build: {options:?}"
        );
    }

    /// Every connection that commits waits for the same WAL length before it
    /// checkpoints: more pages than SQLite's default (1 000) written through
    /// the writer thread stay in the WAL (in WAL mode the database file grows
    /// only when a checkpoint copies pages into it), and a commit on a pool
    /// connection then does not copy them either.
    #[tokio::test]
    async fn every_connection_checkpoints_at_the_same_wal_length() {
        const _: () = assert!(crate::writer::WAL_AUTOCHECKPOINT > 1_000, "longer than SQLite's default");
        let url = crate::testing::fresh_sqlite_url("checkpoint");
        let store = SqliteStore::open(&url).await.unwrap();
        let path = url.trim_start_matches("sqlite://").to_owned();
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        let group = store.group.as_ref().expect("a file store has a writer thread");
        const INSERT: &str = "INSERT INTO inbox (instance, message_id, contact, reply_to, kind, body, received_at) VALUES (?1, ?2, ?3, ?3, 'text', ?4, 0)";
        for batch in 0..12 {
            let rows = (0..100)
                .map(|row| {
                    let id = format!("CKPT-{batch}-{row}");
                    Statement::new(INSERT, vec![Param::Text("vendas".into()), Param::Text(id), Param::Text("5511900000001".into()), Param::Text("x".repeat(4_000))])
                })
                .collect();
            group.write(rows).await.unwrap();
        }
        assert_eq!(size(), before, "the writer thread checkpointed before {} pages", crate::writer::WAL_AUTOCHECKPOINT);
        sqlx::query("INSERT INTO audit (at, actor, action, reason) VALUES (0, 'test', 'test', 'a pool commit')").execute(store.writer()).await.unwrap();
        assert_eq!(size(), before, "a pool connection checkpointed the writer thread's WAL");
    }
}
