//! Group commit for PostgreSQL: one task per store owns a write connection,
//! takes every hot-path write that is queued (inbox accepts, inbound turns,
//! sent marks; up to [`MAX_BATCH`]) into one transaction, commits once, and
//! then answers each waiter.
//!
//! A batch costs about ten round trips and one WAL flush whatever its size:
//! the accepts are one multi-row `INSERT ... SELECT FROM UNNEST`, the sent
//! marks one `UPDATE ... FROM UNNEST`, and the turns one statement per kind
//! of row (inbox flips, session updates, session inserts, events, split
//! assignments, handoffs, replies), each over all the batch's turns.
//!
//! Every turn keeps its own checks. The inbox flip (`processed_at` from
//! NULL, body unchanged) and the session revision check are made per row:
//! a turn whose flip is refused is answered [`StoreError::Conflict`] and
//! left out; a turn whose session update or insert is refused is too, and
//! the turns' part of the transaction is rolled back to its savepoint and
//! written again without it. A statement that fails outright (a bad value)
//! sends the batch's turns (or accepts) down a slow path, one savepoint
//! each, so only the bad one fails. Nobody is answered before the `COMMIT`
//! returns, and a failed commit fails every write of the batch: nothing is
//! acknowledged that is not on disk. Each writer bumps the `/metrics`
//! counters on a shard of its own, so two nodes' writers never wait for
//! each other there; a batch PostgreSQL still rolls back to break a
//! deadlock runs again, up to three times, before its writes fail.
//!
//! Batching is adaptive: the task waits for the first write and then takes
//! only what is already waiting, so a lone write commits at once and a burst
//! shares one commit. The queue is bounded: an accept on a full queue fails
//! at once with [`StoreError::Unavailable`] (the webhook answers 503 with
//! `Retry-After`); turns and sent marks wait for room.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Postgres, Row};
use switchyard_engine::engine::Turn;
use switchyard_engine::ids::StepId;
use switchyard_engine::queue::{Accepted, InboxEntry, Pending};
use switchyard_engine::session::Outcome;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use tokio::sync::{mpsc, oneshot};

use crate::codec::{data_to_json, event_columns, inbox_columns, rich_to_json};
use crate::postgres::map_err;

/// The most writes one transaction takes.
pub const MAX_BATCH: usize = 512;
/// Writes that may wait for the writer before an accept is refused.
pub const QUEUE: usize = 4096;

/// An inbox entry, as bound.
#[derive(Debug)]
pub(crate) struct AcceptRow {
    instance: String,
    message_id: String,
    contact: String,
    reply_to: String,
    kind: &'static str,
    body: Option<String>,
    sent_at: Option<i64>,
    received_at: i64,
    /// The lease owner to take the contact's lease as, with the entry, when
    /// the entry is new and the lease free (see [`ACCEPT_MANY`]).
    lease_as: Option<Arc<str>>,
}

impl AcceptRow {
    pub fn new(entry: &InboxEntry) -> AcceptRow {
        let (kind, body) = inbox_columns(&entry.kind);
        AcceptRow {
            instance: entry.instance.as_str().to_owned(),
            message_id: entry.message_id.clone(),
            contact: entry.contact.as_str().to_owned(),
            reply_to: entry.reply_to.clone(),
            kind,
            body,
            sent_at: entry.sent_at.map(Timestamp::as_millis),
            received_at: entry.received_at.as_millis(),
            lease_as: None,
        }
    }
}

#[derive(Debug)]
struct SessionRow {
    id: String,
    instance: String,
    contact: String,
    flow: String,
    version: i64,
    fingerprint: String,
    reason: String,
    reason_detail: Option<String>,
    step: String,
    data: String,
    attempts: i64,
    turns: i64,
    started_at: i64,
    last_input_at: i64,
    expires_at: i64,
    outcome: Option<&'static str>,
    ended_at: Option<i64>,
    revision: i64,
    parent: Option<String>,
    depth: i64,
}

#[derive(Debug)]
struct EventRow {
    session_id: String,
    flow: String,
    version: i64,
    at: i64,
    step: Option<String>,
    kind: String,
    reason: Option<String>,
    reason_detail: Option<String>,
    fingerprint: Option<String>,
    detail: Option<String>,
}

#[derive(Debug)]
struct ReplyRow {
    text: String,
    session_id: Option<String>,
    rich: Option<String>,
}

/// A turn's rows, built on the caller's thread so the writer only binds them.
#[derive(Debug)]
pub(crate) struct TurnRows {
    instance: String,
    contact: String,
    /// Stored sessions (revision > 0), updated when still at their revision.
    updates: Vec<SessionRow>,
    /// New sessions.
    inserts: Vec<SessionRow>,
    events: Vec<EventRow>,
    /// (flow, version, assigned_at)
    assignments: Vec<(String, i64, i64)>,
    handoff_until: Option<i64>,
    replies: Vec<ReplyRow>,
}

impl TurnRows {
    pub fn new(turn: &Turn) -> TurnRows {
        let (mut updates, mut inserts) = (Vec::new(), Vec::new());
        for session in &turn.sessions {
            let record = session.record();
            let row = SessionRow {
                id: record.id.to_string(),
                instance: record.instance.as_str().to_owned(),
                contact: record.contact.as_str().to_owned(),
                flow: record.flow.as_str().to_owned(),
                version: i64::from(record.version.number()),
                fingerprint: record.fingerprint.as_str().to_owned(),
                reason: record.reason.name().to_owned(),
                reason_detail: record.reason.detail().map(str::to_owned),
                step: record.step.as_str().to_owned(),
                data: data_to_json(&record.data),
                attempts: i64::from(record.attempts),
                turns: i64::from(record.turns),
                started_at: record.started_at.as_millis(),
                last_input_at: record.last_input_at.as_millis(),
                expires_at: record.expires_at.as_millis(),
                outcome: record.outcome.map(Outcome::as_str),
                ended_at: record.ended_at.map(Timestamp::as_millis),
                revision: record.revision as i64,
                parent: record.parent.map(|id| id.to_string()),
                depth: i64::from(record.depth),
            };
            if record.revision == 0 { inserts.push(row) } else { updates.push(row) }
        }
        let events = turn
            .events
            .iter()
            .map(|event| {
                let (reason, reason_detail, fingerprint, detail) = event_columns(&event.kind);
                EventRow {
                    session_id: event.session.to_string(),
                    flow: event.flow.as_str().to_owned(),
                    version: i64::from(event.version.number()),
                    at: event.at.as_millis(),
                    step: event.step.as_ref().map(StepId::as_str).map(str::to_owned),
                    kind: event.kind.name().to_owned(),
                    reason: reason.map(str::to_owned),
                    reason_detail: reason_detail.map(str::to_owned),
                    fingerprint: fingerprint.map(str::to_owned),
                    detail,
                }
            })
            .collect();
        TurnRows {
            instance: turn.instance.as_str().to_owned(),
            contact: turn.contact.as_str().to_owned(),
            updates,
            inserts,
            events,
            assignments: turn.assignments.iter().map(|(flow, version, at)| (flow.as_str().to_owned(), i64::from(version.number()), at.as_millis())).collect(),
            handoff_until: turn.handoff_until.map(Timestamp::as_millis),
            replies: turn
                .replies
                .iter()
                .map(|reply| ReplyRow { text: reply.text.to_string(), session_id: reply.session.map(|id| id.to_string()), rich: rich_to_json(reply.rich.as_ref()) })
                .collect(),
        }
    }
}

/// Where a turn's replies go and what they carry besides the turn.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub reply_to: String,
    pub created_at: i64,
    pub request_id: Option<String>,
}

/// An inbound turn: the inbox entry it consumes and its rows.
#[derive(Debug)]
pub(crate) struct Inbound {
    seq: i64,
    body: Option<String>,
    reply_to: String,
    rows: TurnRows,
    /// The lease owner to give the contact up as, in the turn's own
    /// transaction, when no other entry of the contact waits then.
    release_as: Option<Arc<str>>,
}

impl Inbound {
    pub fn new(turn: &Turn, pending: &Pending, reply_to: &str) -> Inbound {
        Inbound { seq: pending.seq, body: inbox_columns(&pending.entry.kind).1, reply_to: reply_to.to_owned(), rows: TurnRows::new(turn), release_as: None }
    }

    /// Also gives up `owner`'s lease on the contact once the turn is
    /// written, if nothing else of the contact waits (see [`release_all`]).
    pub fn releasing(mut self, owner: Arc<str>) -> Inbound {
        self.release_as = Some(owner);
        self
    }
}

fn stale(id: &str, revision: i64) -> StoreError {
    StoreError::Conflict(format!("session {id} is no longer live at revision {revision}"))
}

fn taken(seq: i64) -> StoreError {
    StoreError::Conflict(format!("inbox entry {seq} is processed, changed or gone"))
}

/// The batch's session updates, each only at the revision it was computed
/// from and while the session is live (`num_nulls`: see [`acquire`]).
const SESSION_UPDATE: &str = "UPDATE sessions s SET step = u.step, data = u.data, attempts = u.attempts, turns = u.turns, \
     last_input_at = u.last_input_at, expires_at = u.expires_at, outcome = u.outcome, ended_at = u.ended_at, \
     revision = s.revision + 1 \
     FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::BIGINT[], \
                 $8::TEXT[], $9::BIGINT[], $10::BIGINT[]) \
          AS u(id, step, data, attempts, turns, last_input_at, expires_at, outcome, ended_at, revision) \
     WHERE s.id = u.id AND s.revision = u.revision AND num_nulls(s.outcome) = 1 RETURNING s.id";

/// The batch's inbox entries flipped to processed, each only while
/// unprocessed and unchanged (`num_nulls`: see [`acquire`]).
const FLIP: &str = "UPDATE inbox i SET processed_at = i.received_at FROM UNNEST($1::BIGINT[], $2::TEXT[]) AS u(seq, body) \
     WHERE i.seq = u.seq AND num_nulls(i.processed_at) = 1 AND i.body IS NOT DISTINCT FROM u.body \
     RETURNING i.seq, i.received_at, i.message_id";

/// Writes the sessions, events, split assignments, handoffs and replies of
/// `turns` (with, per turn, where its replies go). Stops at the first kind of
/// session write some turn had refused and returns those turns (by index,
/// with why): the rows written so far include theirs, so the caller rolls
/// back and writes again without them.
pub(crate) async fn write_rows(
    connection: &mut PgConnection,
    turns: &[(&TurnRows, Option<&Outbound>)],
) -> Result<Vec<(usize, StoreError)>, sqlx::Error> {
    // Session updates, each only at the revision it was computed from.
    let updates: Vec<(usize, &SessionRow)> = turns.iter().enumerate().flat_map(|(idx, (rows, _))| rows.updates.iter().map(move |row| (idx, row))).collect();
    if !updates.is_empty() {
        let done: Vec<String> = sqlx::query_scalar(
            SESSION_UPDATE,
        )
        .bind(updates.iter().map(|(_, row)| row.id.as_str()).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, row)| row.step.as_str()).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, row)| row.data.as_str()).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, row)| row.attempts).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, row)| row.turns).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, row)| row.last_input_at).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, row)| row.expires_at).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, row)| row.outcome).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, row)| row.ended_at).collect::<Vec<_>>())
        .bind(updates.iter().map(|(_, row)| row.revision).collect::<Vec<_>>())
        .fetch_all(&mut *connection)
        .await?;
        let refused = missing(&updates, &done);
        if !refused.is_empty() {
            return Ok(refused);
        }
    }
    // New sessions; one a live session already holds the place of is refused.
    let inserts: Vec<(usize, &SessionRow)> = turns.iter().enumerate().flat_map(|(idx, (rows, _))| rows.inserts.iter().map(move |row| (idx, row))).collect();
    if !inserts.is_empty() {
        let done: Vec<String> = sqlx::query_scalar(
            "INSERT INTO sessions (id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, \
             attempts, turns, started_at, last_input_at, expires_at, outcome, ended_at, revision, parent, depth) \
             SELECT id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, \
             attempts, turns, started_at, last_input_at, expires_at, outcome, ended_at, 1, parent, depth \
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], \
                         $9::TEXT[], $10::TEXT[], $11::BIGINT[], $12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::BIGINT[], \
                         $16::TEXT[], $17::BIGINT[], $18::TEXT[], $19::BIGINT[]) \
                  AS u(id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, attempts, turns, \
                       started_at, last_input_at, expires_at, outcome, ended_at, parent, depth) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(inserts.iter().map(|(_, row)| row.id.as_str()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.instance.as_str()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.contact.as_str()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.flow.as_str()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.version).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.fingerprint.as_str()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.reason.as_str()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.reason_detail.as_deref()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.step.as_str()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.data.as_str()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.attempts).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.turns).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.started_at).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.last_input_at).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.expires_at).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.outcome).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.ended_at).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.parent.as_deref()).collect::<Vec<_>>())
        .bind(inserts.iter().map(|(_, row)| row.depth).collect::<Vec<_>>())
        .fetch_all(&mut *connection)
        .await?;
        let refused = missing(&inserts, &done);
        if !refused.is_empty() {
            return Ok(refused);
        }
    }
    let events: Vec<&EventRow> = turns.iter().flat_map(|(rows, _)| rows.events.iter()).collect();
    if !events.is_empty() {
        sqlx::query(
            "INSERT INTO events (session_id, flow, version, at, step, kind, reason, reason_detail, fingerprint, detail) \
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
                                  $8::TEXT[], $9::TEXT[], $10::TEXT[])",
        )
        .bind(events.iter().map(|row| row.session_id.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|row| row.flow.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|row| row.version).collect::<Vec<_>>())
        .bind(events.iter().map(|row| row.at).collect::<Vec<_>>())
        .bind(events.iter().map(|row| row.step.as_deref()).collect::<Vec<_>>())
        .bind(events.iter().map(|row| row.kind.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|row| row.reason.as_deref()).collect::<Vec<_>>())
        .bind(events.iter().map(|row| row.reason_detail.as_deref()).collect::<Vec<_>>())
        .bind(events.iter().map(|row| row.fingerprint.as_deref()).collect::<Vec<_>>())
        .bind(events.iter().map(|row| row.detail.as_deref()).collect::<Vec<_>>())
        .execute(&mut *connection)
        .await?;
    }
    // One row per (contact, flow) in a statement (ON CONFLICT DO UPDATE may
    // not touch a row twice): the last one wins, as one by one.
    let mut assignments: Vec<(&str, &str, i64, i64)> = Vec::new();
    for (rows, _) in turns {
        for (flow, version, at) in &rows.assignments {
            assignments.retain(|(contact, other, _, _)| !(*contact == rows.contact && *other == flow.as_str()));
            assignments.push((rows.contact.as_str(), flow.as_str(), *version, *at));
        }
    }
    if !assignments.is_empty() {
        sqlx::query(
            "INSERT INTO split_assignments (contact, flow, version, assigned_at) \
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[]) \
             ON CONFLICT (contact, flow) DO UPDATE SET version = excluded.version, assigned_at = excluded.assigned_at",
        )
        .bind(assignments.iter().map(|row| row.0).collect::<Vec<_>>())
        .bind(assignments.iter().map(|row| row.1).collect::<Vec<_>>())
        .bind(assignments.iter().map(|row| row.2).collect::<Vec<_>>())
        .bind(assignments.iter().map(|row| row.3).collect::<Vec<_>>())
        .execute(&mut *connection)
        .await?;
    }
    let mut handoffs: Vec<(&str, &str, i64)> = Vec::new();
    for (rows, _) in turns {
        if let Some(until) = rows.handoff_until {
            handoffs.retain(|(instance, contact, _)| !(*instance == rows.instance && *contact == rows.contact));
            handoffs.push((rows.instance.as_str(), rows.contact.as_str(), until));
        }
    }
    if !handoffs.is_empty() {
        sqlx::query(
            "INSERT INTO handoffs (instance, contact, until) SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[]) \
             ON CONFLICT (instance, contact) DO UPDATE SET until = excluded.until",
        )
        .bind(handoffs.iter().map(|row| row.0).collect::<Vec<_>>())
        .bind(handoffs.iter().map(|row| row.1).collect::<Vec<_>>())
        .bind(handoffs.iter().map(|row| row.2).collect::<Vec<_>>())
        .execute(&mut *connection)
        .await?;
    }
    let replies: Vec<(&TurnRows, &Outbound)> = turns.iter().filter_map(|(rows, out)| out.map(|out| (*rows, out))).collect();
    insert_replies(connection, &replies).await?;
    Ok(Vec::new())
}

/// Queues the replies of `turns`, in the turns' order and each turn's order
/// (seq is the sending order within a contact).
pub(crate) async fn insert_replies(connection: &mut PgConnection, turns: &[(&TurnRows, &Outbound)]) -> Result<(), sqlx::Error> {
    let replies: Vec<(&TurnRows, &Outbound, &ReplyRow)> = turns.iter().flat_map(|(rows, out)| rows.replies.iter().map(move |reply| (*rows, *out, reply))).collect();
    if replies.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO outbox (instance, contact, reply_to, text, session_id, created_at, next_attempt_at, request_id, rich) \
         SELECT instance, contact, reply_to, text, session_id, created_at, $9, request_id, rich \
         FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::TEXT[], $8::TEXT[]) \
              AS u(instance, contact, reply_to, text, session_id, created_at, request_id, rich)",
    )
    .bind(replies.iter().map(|(rows, _, _)| rows.instance.as_str()).collect::<Vec<_>>())
    .bind(replies.iter().map(|(rows, _, _)| rows.contact.as_str()).collect::<Vec<_>>())
    .bind(replies.iter().map(|(_, out, _)| out.reply_to.as_str()).collect::<Vec<_>>())
    .bind(replies.iter().map(|(_, _, reply)| reply.text.as_str()).collect::<Vec<_>>())
    .bind(replies.iter().map(|(_, _, reply)| reply.session_id.as_deref()).collect::<Vec<_>>())
    .bind(replies.iter().map(|(_, out, _)| out.created_at).collect::<Vec<_>>())
    .bind(replies.iter().map(|(_, out, _)| out.request_id.as_deref()).collect::<Vec<_>>())
    .bind(replies.iter().map(|(_, _, reply)| reply.rich.as_deref()).collect::<Vec<_>>())
    .bind(i64::MIN)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The turns (by index) whose session rows are not among `done`, each once.
fn missing(rows: &[(usize, &SessionRow)], done: &[String]) -> Vec<(usize, StoreError)> {
    let done: HashSet<&str> = done.iter().map(String::as_str).collect();
    let mut refused: Vec<(usize, StoreError)> = Vec::new();
    for (idx, row) in rows {
        if !done.contains(row.id.as_str()) && !refused.iter().any(|(other, _)| other == idx) {
            refused.push((*idx, stale(&row.id, row.revision)));
        }
    }
    refused
}

/// What a write asks for.
#[derive(Debug)]
enum Work {
    Accept(AcceptRow),
    Turn(Box<Inbound>),
    /// (seq, provider id) marked sent at the timestamp.
    Sent(Vec<(i64, Option<String>)>, i64),
}

/// What a write got.
#[derive(Debug)]
enum Done {
    /// An accept, and whether this process took the contact's lease with it.
    Accepted(Accepted, bool),
    Written,
    /// A turn written and, with it, its contact's lease given up: nothing
    /// else of the contact waited.
    Released,
}

struct Job {
    work: Work,
    done: oneshot::Sender<Result<Done, StoreError>>,
}

/// The handle to the writer task; clones share it. The task ends when the
/// last handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    capacity: usize,
    /// The lease owner accepts take a new entry's contact as.
    lease_as: Arc<str>,
}

pub(crate) fn copy(err: &StoreError) -> StoreError {
    match err {
        StoreError::Conflict(message) => StoreError::Conflict(message.clone()),
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        StoreError::Corrupt(message) => StoreError::Corrupt(message.clone()),
        StoreError::Other(message) => StoreError::Other(message.clone()),
    }
}

fn gone() -> StoreError {
    StoreError::Unavailable("the PostgreSQL writer stopped".to_owned())
}

impl Writer {
    /// Starts the writer task on `pool` (it keeps one connection while the
    /// connection works), with room for `queue` waiting writes; accepts
    /// take their contact's lease as `lease_as`.
    pub fn start(pool: PgPool, queue: usize, lease_as: Arc<str>) -> Writer {
        let (sender, jobs) = mpsc::channel(queue.max(1));
        tokio::spawn(run(pool, jobs));
        Writer { queue: sender, capacity: queue.max(1), lease_as }
    }

    /// Writes waiting for the writer (the batch in progress not counted).
    pub fn backlog(&self) -> usize {
        self.capacity - self.queue.capacity()
    }

    async fn write(&self, work: Work) -> Result<Done, StoreError> {
        let (done, answer) = oneshot::channel();
        self.queue.send(Job { work, done }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Stores an inbox entry, or refuses at once when the queue is full; for
    /// a new entry, also takes its contact's lease when nobody holds it
    /// (true: taken, for [`crate::postgres::LEASE`]).
    pub async fn accept(&self, entry: &InboxEntry) -> Result<(Accepted, bool), StoreError> {
        let (done, answer) = oneshot::channel();
        let row = AcceptRow { lease_as: Some(Arc::clone(&self.lease_as)), ..AcceptRow::new(entry) };
        self.queue.try_send(Job { work: Work::Accept(row), done }).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::Unavailable(format!("the write queue is full ({} writes waiting): retry later", self.capacity))
            }
            mpsc::error::TrySendError::Closed(_) => gone(),
        })?;
        match answer.await.map_err(|_| gone())?? {
            Done::Accepted(accepted, leased) => Ok((accepted, leased)),
            Done::Written | Done::Released => Err(StoreError::Other("the writer answered an accept with no seq".to_owned())),
        }
    }

    /// Writes the turn; true when its contact's lease was given up with it
    /// ([`Inbound::releasing`]).
    pub async fn commit_inbound(&self, inbound: Inbound) -> Result<bool, StoreError> {
        Ok(matches!(self.write(Work::Turn(Box::new(inbound))).await?, Done::Released))
    }

    pub async fn sent(&self, sent: Vec<(i64, Option<String>)>, at: Timestamp) -> Result<(), StoreError> {
        if sent.is_empty() {
            return Ok(());
        }
        self.write(Work::Sent(sent, at.as_millis())).await.map(drop)
    }
}

async fn run(pool: PgPool, mut jobs: mpsc::Receiver<Job>) {
    let mut kept: Option<PoolConnection<Postgres>> = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = jobs.recv().await {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut connection = match kept.take() {
            Some(connection) => connection,
            None => match acquire(&pool).await {
                Ok(connection) => connection,
                Err(err) => {
                    let err = map_err(err);
                    for job in batch.drain(..) {
                        let _ = job.done.send(Err(copy(&err)));
                    }
                    continue;
                }
            },
        };
        let works: Vec<&Work> = batch.iter().map(|job| &job.work).collect();
        match commit_batch(&mut connection, &works).await {
            Ok(results) => {
                kept = Some(connection);
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.done.send(result);
                }
            }
            Err(err) => {
                // The connection may be broken (a database restart) or in
                // an unknown state: give it up; the next batch takes a fresh one.
                let _ = connection.close().await;
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(copy(&err)));
                }
            }
        }
    }
}

/// The writer's connection, with a counter shard of its own (postgres
/// 0017): the first of the 16 whose session advisory lock no other
/// connection on this schema holds, named in `switchyard.counter_shard` for
/// the counter triggers. Two nodes' writers then never bump the same
/// counter rows, so neither waits for the other's commit and they cannot
/// deadlock on them. With every shard held (more than 16 writers) the
/// setting stays empty and the triggers fall back to the backend's pid.
/// The lock and the setting live as long as the connection.
///
/// The connection also plans for what it runs: every statement here joins
/// a batch's arrays (1 to [`MAX_BATCH`] rows) to a large table by key, and
/// the plan wanted is always the same: each array row probes an index. A
/// cached generic plan guesses 10 rows for an array, and on a young or
/// churning table the statistics say a handful of live sessions or
/// unprocessed entries: PostgreSQL scanned every live session and every
/// unprocessed entry per batch (through the partial indexes on `outcome IS
/// NULL` and `processed_at IS NULL`, or the whole table) and joined the
/// array to them by hash or by rescanning the array once per row. In some
/// runs its CPU per message rose by a third to a half (`loadgen 1000` on 2
/// nodes; BENCHMARKS, tenth session). So on this connection hash joins,
/// merge joins, bitmap scans and sequential scans are off, and the flip and
/// the session update state "unprocessed" and "live" as `num_nulls(..) =
/// 1`, which those partial indexes cannot answer: what is left is the key
/// probe.
async fn acquire(pool: &PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    let mut connection = pool.acquire().await?;
    sqlx::query(
        "SELECT set_config('switchyard.counter_shard', COALESCE((SELECT shard::TEXT FROM generate_series(0, 15) AS shard \
         WHERE pg_try_advisory_lock(hashtext('switchyard.counter_shard ' || current_schema()), shard) LIMIT 1), ''), false), \
         set_config('enable_hashjoin', 'off', false), set_config('enable_mergejoin', 'off', false), \
         set_config('enable_bitmapscan', 'off', false), set_config('enable_seqscan', 'off', false)",
    )
    .execute(&mut *connection)
    .await?;
    Ok(connection)
}

async fn control(connection: &mut PgConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql).execute(&mut *connection).await.map(drop)
}

/// One transaction for the whole batch. `Err`: the batch failed as a whole
/// (every waiter gets it); otherwise one answer per write.
async fn commit_batch(connection: &mut PgConnection, batch: &[&Work]) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
    let failed = |what: &str, err: sqlx::Error| match map_err(err) {
        StoreError::Unavailable(message) => StoreError::Unavailable(format!("{what}: {message}")),
        other => StoreError::Unavailable(format!("{what}: {other}")),
    };
    let mut results: Vec<Option<Result<Done, StoreError>>> = batch.iter().map(|_| None).collect();
    let mut tries = 1;
    loop {
        let outcome = async {
            control(connection, "BEGIN").await?;
            accept_all(connection, batch, &mut results).await?;
            turns_all(connection, batch, &mut results).await?;
            release_all(connection, batch, &mut results).await?;
            sent_all(connection, batch, &mut results).await?;
            control(connection, "COMMIT").await
        }
        .await;
        match outcome {
            Ok(()) => break,
            Err(err) => {
                let _ = control(connection, "ROLLBACK").await;
                // Writers claim counter shards of their own (`acquire`), but
                // other connections (the sender's failure marks) and writers
                // past the 16th share them (`pg_backend_pid() % 16`), in an
                // order set by their statements, so PostgreSQL may still
                // pick a transaction as a deadlock's victim: the batch rolled back
                // whole, and runs again as PostgreSQL advises, rather than
                // failing every waiter (the webhook's 503).
                if tries < MAX_TRIES && is_deadlock(&err) {
                    tries += 1;
                    results.iter_mut().for_each(|result| *result = None);
                    continue;
                }
                return Err(failed("the write did not commit (nor did any other write of its batch)", err));
            }
        }
    }
    Ok(results.into_iter().map(|result| result.unwrap_or_else(|| Err(StoreError::Other("the writer skipped a write".to_owned())))).collect())
}

/// The batch's inbox entries, and for the new ones their contacts' leases
/// ($9 the owner, NULL for none; $10 until; $11 now), taken where free or
/// already $9's, as the processor's lease read takes them. A lease another
/// live process holds is left alone before the upsert, which would lock
/// its row until this batch commits (even without changing it), while
/// that process's own batch deletes it: two writers each waiting for the
/// other (a deadlock PostgreSQL breaks after a second). The rest are taken
/// in key order. The process that
/// accepted an entry wakes its own processor for it, which then reads
/// without writing the lease (one lease write per message less, in a
/// statement per batch). Rows: `(seq, instance, message_id)` per new entry,
/// then `(NULL, instance, contact)` per lease taken.
const ACCEPT_MANY: &str = "WITH ins AS ( \
     INSERT INTO inbox (instance, message_id, contact, reply_to, kind, body, sent_at, received_at) \
     SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::BIGINT[], $8::BIGINT[]) \
     ON CONFLICT (instance, message_id) DO NOTHING RETURNING seq, instance, message_id, contact), \
     lease AS ( \
     INSERT INTO contact_leases (instance, contact, owner, until) \
     SELECT DISTINCT instance, contact, $9::TEXT, $10::BIGINT FROM ins WHERE $9::TEXT IS NOT NULL \
       AND NOT EXISTS (SELECT 1 FROM contact_leases l WHERE l.instance = ins.instance AND l.contact = ins.contact \
                       AND l.owner <> $9 AND l.until > $11 AND NOT pg_try_advisory_xact_lock_shared(hashtextextended(l.owner, 0))) \
     ORDER BY instance, contact \
     ON CONFLICT (instance, contact) DO UPDATE SET owner = excluded.owner, until = excluded.until \
     WHERE contact_leases.owner = excluded.owner OR contact_leases.until <= $11 \
        OR pg_try_advisory_xact_lock_shared(hashtextextended(contact_leases.owner, 0)) RETURNING instance, contact) \
     SELECT seq, instance, message_id FROM ins UNION ALL SELECT NULL, instance, contact FROM lease";

/// What [`ACCEPT_MANY`] stored: the seq of each new entry by `(instance,
/// message_id)`, and the `(instance, contact)` whose lease it took.
type Stored = (HashMap<(String, String), i64>, HashSet<(String, String)>);

async fn insert_accepts(connection: &mut PgConnection, rows: &[&AcceptRow]) -> Result<Stored, sqlx::Error> {
    let now = Timestamp::now_utc().as_millis();
    let lease_as = rows.first().and_then(|row| row.lease_as.as_deref());
    let until = now.saturating_add(i64::try_from(crate::postgres::LEASE.as_millis()).unwrap_or(i64::MAX));
    let returned = sqlx::query(ACCEPT_MANY)
        .bind(rows.iter().map(|row| row.instance.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.message_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.contact.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.reply_to.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.kind).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.body.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.sent_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.received_at).collect::<Vec<_>>())
        .bind(lease_as)
        .bind(until)
        .bind(now)
        .fetch_all(&mut *connection)
        .await?;
    let (mut seqs, mut leased) = (HashMap::new(), HashSet::new());
    for row in &returned {
        let key = (row.try_get::<String, _>(1)?, row.try_get::<String, _>(2)?);
        match row.try_get::<Option<i64>, _>(0)? {
            Some(seq) => {
                seqs.insert(key, seq);
            }
            None => {
                leased.insert(key);
            }
        }
    }
    Ok((seqs, leased))
}

/// The batch's inbox entries in one statement, the transaction's first. If
/// it fails (a value the database refuses), the transaction starts over and
/// each entry goes in its own savepoint, so only the bad one fails.
async fn accept_all(connection: &mut PgConnection, batch: &[&Work], results: &mut [Option<Result<Done, StoreError>>]) -> Result<(), sqlx::Error> {
    let accepts: Vec<(usize, &AcceptRow)> = batch
        .iter()
        .enumerate()
        .filter_map(|(idx, work)| match work {
            Work::Accept(row) => Some((idx, row)),
            _ => None,
        })
        .collect();
    if accepts.is_empty() {
        return Ok(());
    }
    let rows: Vec<&AcceptRow> = accepts.iter().map(|(_, row)| *row).collect();
    match insert_accepts(connection, &rows).await {
        Ok((mut seqs, leased)) => {
            // A redelivery within the batch: the first one is new, the rest duplicates.
            for (idx, row) in &accepts {
                let accepted = seqs.remove(&(row.instance.clone(), row.message_id.clone())).map_or(Accepted::Duplicate, Accepted::New);
                let took = matches!(accepted, Accepted::New(_)) && leased.contains(&(row.instance.clone(), row.contact.clone()));
                results[*idx] = Some(Ok(Done::Accepted(accepted, took)));
            }
            Ok(())
        }
        Err(err) if is_connection(&err) => Err(err),
        Err(_) => {
            control(connection, "ROLLBACK").await?;
            control(connection, "BEGIN").await?;
            for (idx, row) in &accepts {
                control(connection, "SAVEPOINT one").await?;
                match insert_accepts(connection, &[row]).await {
                    Ok((seqs, leased)) => {
                        let accepted = seqs.into_values().next().map_or(Accepted::Duplicate, Accepted::New);
                        results[*idx] = Some(Ok(Done::Accepted(accepted, !leased.is_empty())));
                        control(connection, "RELEASE one").await?;
                    }
                    Err(err) if is_connection(&err) => return Err(err),
                    Err(err) => {
                        results[*idx] = Some(Err(map_err(err)));
                        control(connection, "ROLLBACK TO one").await?;
                        control(connection, "RELEASE one").await?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// A failure that is not one statement's refusal: the connection (or the
/// database) is gone or going.
/// How many times a batch runs when PostgreSQL picks it as a deadlock's or a
/// serialization failure's victim.
const MAX_TRIES: u32 = 3;

/// A transaction PostgreSQL rolled back to break a deadlock or a
/// serialization conflict: running it again is the remedy.
fn is_deadlock(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

fn is_connection(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }
        _ => true,
    }
}

/// Flips the inbox entries of `turns` from unprocessed: (received_at,
/// message_id) by seq, for the ones flipped.
async fn flip(connection: &mut PgConnection, turns: &[&Inbound]) -> Result<HashMap<i64, (i64, String)>, sqlx::Error> {
    let rows = sqlx::query(
        FLIP,
    )
    .bind(turns.iter().map(|turn| turn.seq).collect::<Vec<_>>())
    .bind(turns.iter().map(|turn| turn.body.as_deref()).collect::<Vec<_>>())
    .fetch_all(&mut *connection)
    .await?;
    rows.iter().map(|row| Ok((row.try_get::<i64, _>(0)?, (row.try_get::<i64, _>(1)?, row.try_get::<String, _>(2)?)))).collect()
}

/// What writing some turns together came to.
enum Written {
    /// The turns written; the others (by index) were refused at their inbox
    /// entry and wrote nothing.
    Stands(Vec<(usize, StoreError)>),
    /// These turns (by index) were refused at a session after their rows
    /// were partly written: roll back and write the rest again.
    Stale(Vec<(usize, StoreError)>),
}

async fn write_turns(connection: &mut PgConnection, turns: &[&Inbound]) -> Result<Written, sqlx::Error> {
    let flipped = flip(connection, turns).await?;
    let mut refused = Vec::new();
    let mut written: Vec<usize> = Vec::new();
    let mut outbound: Vec<Outbound> = Vec::new();
    for (idx, turn) in turns.iter().enumerate() {
        match flipped.get(&turn.seq) {
            Some((received_at, message_id)) => {
                written.push(idx);
                outbound.push(Outbound { reply_to: turn.reply_to.clone(), created_at: *received_at, request_id: Some(message_id.clone()) });
            }
            None => refused.push((idx, taken(turn.seq))),
        }
    }
    let pairs: Vec<(&TurnRows, Option<&Outbound>)> = written.iter().zip(&outbound).map(|(idx, out)| (&turns[*idx].rows, Some(out))).collect();
    let stale = write_rows(connection, &pairs).await?;
    Ok(if stale.is_empty() { Written::Stands(refused) } else { Written::Stale(stale.into_iter().map(|(idx, err)| (written[idx], err)).collect()) })
}

/// The batch's inbound turns, written together in a savepoint; see the
/// module doc.
async fn turns_all(connection: &mut PgConnection, batch: &[&Work], results: &mut [Option<Result<Done, StoreError>>]) -> Result<(), sqlx::Error> {
    let mut live: Vec<(usize, &Inbound)> = Vec::new();
    let (mut seqs, mut contacts, mut sessions) = (HashSet::new(), HashSet::new(), HashSet::new());
    for (idx, work) in batch.iter().enumerate() {
        let Work::Turn(turn) = work else { continue };
        // Two turns of one contact (or entry, or session) in a batch: the
        // later one was computed without the earlier; it is refused and the
        // processor computes it again.
        let fresh = seqs.insert(turn.seq)
            & contacts.insert((turn.rows.instance.as_str(), turn.rows.contact.as_str()))
            & turn.rows.updates.iter().chain(&turn.rows.inserts).all(|row| sessions.insert(row.id.as_str()));
        if fresh {
            live.push((idx, turn));
        } else {
            results[idx] = Some(Err(StoreError::Conflict(format!("inbox entry {} raced another turn of its contact in one write", turn.seq))));
        }
    }
    while !live.is_empty() {
        control(connection, "SAVEPOINT turns").await?;
        let turns: Vec<&Inbound> = live.iter().map(|(_, turn)| *turn).collect();
        match write_turns(connection, &turns).await {
            Ok(Written::Stands(refused)) => {
                control(connection, "RELEASE turns").await?;
                for (idx, _) in &live {
                    results[*idx] = Some(Ok(Done::Written));
                }
                for (position, err) in refused {
                    results[live[position].0] = Some(Err(err));
                }
                return Ok(());
            }
            Ok(Written::Stale(stale)) => {
                control(connection, "ROLLBACK TO turns").await?;
                control(connection, "RELEASE turns").await?;
                let positions: HashSet<usize> = stale.iter().map(|(position, _)| *position).collect();
                for (position, err) in stale {
                    results[live[position].0] = Some(Err(err));
                }
                let mut position = 0;
                live.retain(|_| {
                    position += 1;
                    !positions.contains(&(position - 1))
                });
            }
            Err(err) if is_connection(&err) => return Err(err),
            Err(_) => {
                // A value the database refused: each turn on its own.
                control(connection, "ROLLBACK TO turns").await?;
                control(connection, "RELEASE turns").await?;
                for (idx, turn) in &live {
                    control(connection, "SAVEPOINT one").await?;
                    let outcome = match write_turns(connection, &[turn]).await {
                        Ok(Written::Stands(refused)) | Ok(Written::Stale(refused)) => refused.into_iter().next().map_or(Ok(Done::Written), |(_, err)| Err(err)),
                        Err(err) if is_connection(&err) => return Err(err),
                        Err(err) => Err(map_err(err)),
                    };
                    if outcome.is_ok() {
                        control(connection, "RELEASE one").await?;
                    } else {
                        control(connection, "ROLLBACK TO one").await?;
                        control(connection, "RELEASE one").await?;
                    }
                    results[*idx] = Some(outcome);
                }
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Gives up, in one statement, the contact leases of the batch's written
/// turns that asked for it ([`Inbound::releasing`]) where no entry of the
/// contact is left unprocessed: the processor then stops without reading
/// the inbox once more only to find it empty (a round trip per message). The
/// read sees every entry committed before the statement began; one that
/// commits later is the accepting process's to take: its lease try waits
/// for this transaction's row lock on the lease and then finds it gone. A
/// turn whose lease stays (something waits, or the lease is not this
/// process's any more) is answered as written, and the processor reads on.
async fn release_all(connection: &mut PgConnection, batch: &[&Work], results: &mut [Option<Result<Done, StoreError>>]) -> Result<(), sqlx::Error> {
    let asks: Vec<(usize, &Inbound, &str)> = batch
        .iter()
        .enumerate()
        .filter_map(|(idx, work)| match (work, &results[idx]) {
            (Work::Turn(turn), Some(Ok(Done::Written))) => turn.release_as.as_deref().map(|owner| (idx, &**turn, owner)),
            _ => None,
        })
        .collect();
    if asks.is_empty() {
        return Ok(());
    }
    let released = sqlx::query(
        "DELETE FROM contact_leases l USING UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[]) AS u(instance, contact, owner) \
         WHERE l.instance = u.instance AND l.contact = u.contact AND l.owner = u.owner \
         AND NOT EXISTS (SELECT 1 FROM inbox i WHERE i.processed_at IS NULL AND i.instance = u.instance AND i.contact = u.contact) \
         RETURNING l.instance, l.contact",
    )
    .bind(asks.iter().map(|(_, turn, _)| turn.rows.instance.as_str()).collect::<Vec<_>>())
    .bind(asks.iter().map(|(_, turn, _)| turn.rows.contact.as_str()).collect::<Vec<_>>())
    .bind(asks.iter().map(|(_, _, owner)| *owner).collect::<Vec<_>>())
    .fetch_all(&mut *connection)
    .await?;
    let released: HashSet<(String, String)> =
        released.iter().map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?))).collect::<Result<_, sqlx::Error>>()?;
    for (idx, turn, _) in asks {
        if released.contains(&(turn.rows.instance.clone(), turn.rows.contact.clone())) {
            results[idx] = Some(Ok(Done::Released));
        }
    }
    Ok(())
}

/// The batch's sent marks, in one statement.
async fn sent_all(connection: &mut PgConnection, batch: &[&Work], results: &mut [Option<Result<Done, StoreError>>]) -> Result<(), sqlx::Error> {
    let marks: Vec<(usize, i64, Option<&str>, i64)> = batch
        .iter()
        .enumerate()
        .flat_map(|(idx, work)| match work {
            Work::Sent(marks, at) => marks.iter().map(|(seq, provider_id)| (idx, *seq, provider_id.as_deref(), *at)).collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    if marks.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE outbox o SET sent_at = u.at, provider_id = u.provider_id, attempts = o.attempts + 1, attempted_at = NULL, \
         claimed_by = NULL, claim_until = NULL FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[]) AS u(seq, provider_id, at) \
         WHERE o.seq = u.seq",
    )
    .bind(marks.iter().map(|mark| mark.1).collect::<Vec<_>>())
    .bind(marks.iter().map(|mark| mark.2).collect::<Vec<_>>())
    .bind(marks.iter().map(|mark| mark.3).collect::<Vec<_>>())
    .execute(&mut *connection)
    .await?;
    for (idx, work) in batch.iter().enumerate() {
        if matches!(work, Work::Sent(..)) {
            results[idx] = Some(Ok(Done::Written));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{acquire, FLIP, SESSION_UPDATE};

    /// The flip and the session update probe their tables' primary keys on
    /// the writer's connection even as a generic plan over empty tables
    /// (what a cached statement gets on a fresh database): no scan of every
    /// unprocessed entry or live session through a partial index.
    #[tokio::test]
    async fn the_flip_and_the_session_update_probe_by_key_whatever_the_statistics() {
        let Some(schema) = crate::testing::fresh_postgres_url().await else { return };
        let store = crate::postgres::PgStore::open(&schema, &crate::postgres::PgSettings::default()).await.unwrap();
        let mut connection = acquire(store.pool()).await.unwrap();
        sqlx::raw_sql("SET plan_cache_mode = force_generic_plan").execute(&mut *connection).await.unwrap();
        let cases = [
            (FLIP, "('{1}', '{x}')", "inbox_pkey"),
            (SESSION_UPDATE, "('{a}', '{s}', '{}', '{1}', '{1}', '{1}', '{1}', '{null}', '{null}', '{1}')", "sessions_pkey"),
        ];
        for (n, (sql, args, key)) in cases.into_iter().enumerate() {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE plan{n} AS {sql}"))).execute(&mut *connection).await.unwrap();
            let plan: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE plan{n}{args}"))).fetch_all(&mut *connection).await.unwrap();
            let plan = plan.join("\n");
            assert!(plan.contains(&format!("Index Scan using {key}")), "{plan}");
            assert!(!plan.contains("Seq Scan") && !plan.contains("_pending") && !plan.contains("one_live"), "{plan}");
        }
    }
}
