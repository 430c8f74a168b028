//! The SQLite store: one file, WAL journal, migrations embedded in the binary
//! and run on open. Meant for one process; commits are serialised by SQLite.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlSafeStr};
use switchyard_engine::engine::{ContactState, Turn};
use switchyard_engine::queue::{Accepted, InboxEntry, Outgoing, Pending, Queue};
use switchyard_engine::event::Event;
use switchyard_engine::ids::{Contact, InstanceId, SessionId, StepId, Version};
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::Timestamp;

use crate::codec::{
    assignments_from_text, corrupt, data_to_json, event_columns, event_from_row, inbox_columns, inbox_from_row, key_from_row,
    outgoing_from_row, session_from_row,
};

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
    ])
}

/// Two pools over one database file: every write goes through the single
/// `writer` connection, so concurrent writers wait in sqlx's queue instead of
/// in SQLite's busy handler (which sleeps in coarse steps); reads use
/// `pool`, which in WAL mode never blocks the writer.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
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
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|err| StoreError::Other(format!("DATABASE_URL '{url}' is not a valid SQLite URL: {err}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL survives a process crash; only a power loss
            // can drop the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Deleted and overwritten content is zeroed, so an erased value
            // does not linger in free pages or unused cell space (the WAL
            // is truncated after an erasure: `privacy`).
            .pragma("secure_delete", "ON");
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
        Ok(SqliteStore { pool, writer })
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

/// Writes a turn inside `tx`: sessions (insert or revision-checked update),
/// events and the handoff hold.
async fn write_turn(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, turn: &Turn) -> Result<(), StoreError> {
    for session in &turn.sessions {
        let record = session.record();
        if record.revision == 0 {
            sqlx::query(
                "INSERT INTO sessions (id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, \
                 attempts, turns, started_at, last_input_at, expires_at, outcome, ended_at, revision) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            )
            .bind(record.id.to_string())
            .bind(record.instance.as_str())
            .bind(record.contact.as_str())
            .bind(record.flow.as_str())
            .bind(i64::from(record.version.number()))
            .bind(record.fingerprint.as_str())
            .bind(record.reason.name())
            .bind(record.reason.detail())
            .bind(record.step.as_str())
            .bind(data_to_json(&record.data))
            .bind(i64::from(record.attempts))
            .bind(i64::from(record.turns))
            .bind(record.started_at.as_millis())
            .bind(record.last_input_at.as_millis())
            .bind(record.expires_at.as_millis())
            .bind(record.outcome.map(Outcome::as_str))
            .bind(record.ended_at.map(Timestamp::as_millis))
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        } else {
            let done = sqlx::query(
                "UPDATE sessions SET step = ?, data = ?, attempts = ?, turns = ?, last_input_at = ?, expires_at = ?, \
                 outcome = ?, ended_at = ?, revision = revision + 1 WHERE id = ? AND revision = ? AND outcome IS NULL",
            )
            .bind(record.step.as_str())
            .bind(data_to_json(&record.data))
            .bind(i64::from(record.attempts))
            .bind(i64::from(record.turns))
            .bind(record.last_input_at.as_millis())
            .bind(record.expires_at.as_millis())
            .bind(record.outcome.map(Outcome::as_str))
            .bind(record.ended_at.map(Timestamp::as_millis))
            .bind(record.id.to_string())
            .bind(record.revision as i64)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "session {} is no longer live at revision {}",
                    record.id, record.revision
                )));
            }
        }
    }
    for event in &turn.events {
        let (reason, reason_detail, fingerprint, detail) = event_columns(&event.kind);
        sqlx::query(
            "INSERT INTO events (session_id, flow, version, at, step, kind, reason, reason_detail, fingerprint, detail) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(event.session.to_string())
        .bind(event.flow.as_str())
        .bind(i64::from(event.version.number()))
        .bind(event.at.as_millis())
        .bind(event.step.as_ref().map(StepId::as_str))
        .bind(event.kind.name())
        .bind(reason)
        .bind(reason_detail)
        .bind(fingerprint)
        .bind(detail)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
    for (flow, version, at) in &turn.assignments {
        sqlx::query(
            "INSERT INTO split_assignments (contact, flow, version, assigned_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (contact, flow) DO UPDATE SET version = excluded.version, assigned_at = excluded.assigned_at",
        )
        .bind(turn.contact.as_str())
        .bind(flow.as_str())
        .bind(i64::from(version.number()))
        .bind(at.as_millis())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
    if let Some(until) = turn.handoff_until {
        sqlx::query(
            "INSERT INTO handoffs (instance, contact, until) VALUES (?, ?, ?) \
             ON CONFLICT (instance, contact) DO UPDATE SET until = excluded.until",
        )
        .bind(turn.instance.as_str())
        .bind(turn.contact.as_str())
        .bind(until.as_millis())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

/// Queues a turn's replies inside `tx`.
async fn queue_replies(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    turn: &Turn,
    reply_to: &str,
    created_at: i64,
    request_id: Option<&str>,
) -> Result<(), StoreError> {
    for reply in &turn.replies {
        sqlx::query(
            "INSERT INTO outbox (instance, contact, reply_to, text, session_id, created_at, next_attempt_at, request_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(turn.instance.as_str())
        .bind(turn.contact.as_str())
        .bind(reply_to)
        .bind(&reply.text)
        .bind(reply.session.map(|id| id.to_string()))
        .bind(created_at)
        .bind(i64::MIN)
        .bind(request_id)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

impl Store for SqliteStore {
    async fn contact_state(&self, instance: &InstanceId, contact: &Contact) -> Result<ContactState, StoreError> {
        let row = sqlx::query(
            "SELECT id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, attempts, turns, \
             started_at, last_input_at, expires_at, outcome, ended_at, revision, \
             (SELECT until FROM handoffs h WHERE h.instance = ?1 AND h.contact = ?2) AS handoff_until, \
             (SELECT group_concat(a.flow || ' ' || a.version || ' ' || a.assigned_at, ',') FROM split_assignments a WHERE a.contact = ?2) AS assignments \
             FROM (SELECT 1) LEFT JOIN sessions ON instance = ?1 AND contact = ?2 AND outcome IS NULL",
        )
        .bind(instance.as_str())
        .bind(contact.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let handoff_until: Option<i64> = row.try_get("handoff_until").map_err(|err| corrupt("handoff_until", err))?;
        let has_session = row.try_get::<Option<String>, _>("id").map_err(|err| corrupt("id", err))?.is_some();
        let assignments: Option<String> = row.try_get("assignments").map_err(|err| corrupt("assignments", err))?;
        let assignments = assignments_from_text(assignments.as_deref())?;
        Ok(ContactState {
            session: if has_session { Some(session_from_row(&row)?) } else { None },
            handoff_until: handoff_until.map(Timestamp::from_millis),
            assignments,
        })
    }

    async fn commit(&self, turn: &Turn) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        write_turn(&mut tx, turn).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, attempts, turns, \
             started_at, last_input_at, expires_at, outcome, ended_at, revision \
             FROM sessions WHERE outcome IS NULL AND expires_at <= ? ORDER BY expires_at, id LIMIT ?",
        )
        .bind(now.as_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn sessions_of(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, attempts, turns, \
             started_at, last_input_at, expires_at, outcome, ended_at, revision \
             FROM sessions WHERE instance = ? AND contact = ? ORDER BY started_at DESC, id DESC",
        )
        .bind(instance.as_str())
        .bind(contact.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn events_of(&self, session: SessionId) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT session_id, flow, version, at, step, kind, reason, reason_detail, fingerprint, detail \
             FROM events WHERE session_id = ? ORDER BY seq",
        )
        .bind(session.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn release_handoff(&self, instance: &InstanceId, contact: &Contact) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM handoffs WHERE instance = ? AND contact = ?")
            .bind(instance.as_str())
            .bind(contact.as_str())
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }
}

impl Queue for SqliteStore {
    async fn accept(&self, entry: &InboxEntry) -> Result<Accepted, StoreError> {
        let (kind, body) = inbox_columns(&entry.kind);
        let row = sqlx::query(
            "INSERT INTO inbox (instance, message_id, contact, reply_to, kind, body, sent_at, received_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (instance, message_id) DO NOTHING RETURNING seq",
        )
        .bind(entry.instance.as_str())
        .bind(&entry.message_id)
        .bind(entry.contact.as_str())
        .bind(&entry.reply_to)
        .bind(kind)
        .bind(body)
        .bind(entry.sent_at.map(Timestamp::as_millis))
        .bind(entry.received_at.as_millis())
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        match row {
            Some(row) => Ok(Accepted::New(row.try_get("seq").map_err(|err| corrupt("seq", err))?)),
            None => Ok(Accepted::Duplicate),
        }
    }

    async fn pending_contacts(&self, limit: u32) -> Result<Vec<(InstanceId, Contact)>, StoreError> {
        let rows = sqlx::query(
            "SELECT instance, contact, MIN(seq) AS first FROM inbox WHERE processed_at IS NULL \
             GROUP BY instance, contact ORDER BY first LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                key_from_row(row)
            })
            .collect()
    }

    async fn next_pending(&self, instance: &InstanceId, contact: &Contact) -> Result<Option<Pending>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, instance, message_id, contact, reply_to, kind, body, sent_at, received_at FROM inbox \
             WHERE processed_at IS NULL AND instance = ? AND contact = ? \
             ORDER BY COALESCE(sent_at, received_at), seq LIMIT 1",
        )
        .bind(instance.as_str())
        .bind(contact.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(inbox_from_row).transpose()
    }

    async fn commit_inbound(&self, turn: &Turn, pending: &Pending, reply_to: &str) -> Result<(), StoreError> {
        let seq = pending.seq;
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let processed: Option<(i64, String)> = sqlx::query_as(
            "UPDATE inbox SET processed_at = received_at WHERE seq = ? AND processed_at IS NULL AND body IS ? \
             RETURNING received_at, message_id",
        )
        .bind(seq)
        .bind(inbox_columns(&pending.entry.kind).1)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some((received_at, message_id)) = processed else {
            return Err(StoreError::Conflict(format!("inbox entry {seq} is processed, changed or gone")));
        };
        write_turn(&mut tx, turn).await?;
        queue_replies(&mut tx, turn, reply_to, received_at, Some(&message_id)).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn due_outbox(&self, now: Timestamp, limit: u32) -> Result<Vec<Outgoing>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, instance, contact, reply_to, text, session_id, attempts, created_at, request_id, \
             COALESCE(unsure_since, attempted_at) AS unsure_since, attempted_at FROM outbox o \
             WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ? \
             AND seq = (SELECT MIN(h.seq) FROM outbox h WHERE h.instance = o.instance AND h.contact = o.contact \
                        AND h.sent_at IS NULL AND h.failed_at IS NULL) \
             ORDER BY seq LIMIT ?",
        )
        .bind(now.as_millis())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(outgoing_from_row).collect()
    }

    async fn outbox_attempt(&self, seq: i64, at: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET unsure_since = COALESCE(unsure_since, attempted_at), attempted_at = ? \
             WHERE seq = ? AND sent_at IS NULL AND failed_at IS NULL",
        )
        .bind(at.as_millis())
        .bind(seq)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbox_unsure(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, \
             unsure_since = COALESCE(unsure_since, attempted_at), attempted_at = NULL WHERE seq = ? AND sent_at IS NULL",
        )
        .bind(next_at.as_millis())
        .bind(error)
        .bind(seq)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn sent_ids_since(&self, instance: &InstanceId, contact: &Contact, since: Timestamp) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT provider_id FROM outbox WHERE instance = $1 AND contact = $2 AND sent_at >= $3 AND provider_id IS NOT NULL ORDER BY seq",
        )
        .bind(instance.as_str())
        .bind(contact.as_str())
        .bind(since.as_millis())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)
    }

    async fn outbox_sent(&self, seq: i64, provider_id: Option<&str>, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET sent_at = ?, provider_id = ?, attempts = attempts + 1, attempted_at = NULL WHERE seq = ?")
            .bind(at.as_millis())
            .bind(provider_id)
            .bind(seq)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn outbox_retry(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, attempted_at = NULL \
             WHERE seq = ? AND sent_at IS NULL",
        )
        .bind(next_at.as_millis())
        .bind(error)
        .bind(seq)
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn outbox_failed(&self, seq: i64, reason: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE outbox SET failed_at = ?, last_error = ?, attempts = attempts + 1, attempted_at = NULL \
             WHERE seq = ? AND sent_at IS NULL AND failed_at IS NULL",
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
                 SELECT s.id, s.flow, s.version, ?, s.step, 'undeliverable', ? FROM outbox o JOIN sessions s ON s.id = o.session_id \
                 WHERE o.seq = ?",
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
        let depth: i64 = sqlx::query_scalar("SELECT value FROM counters WHERE name = 'outbox_depth'")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(depth.max(0) as u64)
    }
}

/// One version's share of a flow, for the drain view (`rollout status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionStatus {
    pub version: Version,
    pub live: i64,
    /// When the last live session expires if nobody writes (its sliding TTL).
    pub last_expiry: Option<Timestamp>,
    /// Sessions started since the `since` instant given to `version_status`.
    pub started_recently: i64,
}

impl SqliteStore {
    /// Live sessions and recent starts per version of `flow`.
    pub async fn version_status(&self, flow: &str, since: Timestamp) -> Result<Vec<VersionStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, SUM(outcome IS NULL) AS live, MAX(CASE WHEN outcome IS NULL THEN expires_at END) AS last_expiry, \
             SUM(started_at >= ?) AS recent FROM sessions WHERE flow = ? GROUP BY version ORDER BY version",
        )
        .bind(since.as_millis())
        .bind(flow)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let version: i64 = row.try_get("version").map_err(map_err)?;
                let last_expiry: Option<i64> = row.try_get("last_expiry").map_err(map_err)?;
                Ok(VersionStatus {
                    version: Version::new(u32::try_from(version).map_err(|err| corrupt("version", err))?),
                    live: row.try_get::<Option<i64>, _>("live").map_err(map_err)?.unwrap_or(0),
                    last_expiry: last_expiry.map(Timestamp::from_millis),
                    started_recently: row.try_get::<Option<i64>, _>("recent").map_err(map_err)?.unwrap_or(0),
                })
            })
            .collect()
    }

    /// Every live session of `flow@version`.
    pub async fn live_sessions_of(&self, flow: &str, version: Version) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, attempts, turns, \
             started_at, last_input_at, expires_at, outcome, ended_at, revision \
             FROM sessions WHERE flow = ? AND version = ? AND outcome IS NULL ORDER BY started_at",
        )
        .bind(flow)
        .bind(i64::from(version.number()))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
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
        let mut tx = self.writer.begin().await.map_err(map_err)?;
        write_turn(&mut tx, turn).await?;
        if let Some(reply_to) = &reply_to {
            queue_replies(&mut tx, turn, reply_to, Timestamp::now_utc().as_millis(), None).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(reply_to.is_some())
    }
}
