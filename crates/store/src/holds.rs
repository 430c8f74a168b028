//! Holds: the bot silent for a contact while a person answers. Each hold is
//! a row (why it started, when, how it ended) so `report` can count
//! handoffs, takeovers and returns and sum the time on hold; a handoff's
//! row also carries the Chatwoot calls it needs (the desk columns), a
//! durable queue retried with backoff until Chatwoot has them.
//!
//! A hold starts in the transaction of the turn that started it
//! ([`Db::commit_inbound_holding`](crate::Db)), so a crash never leaves a
//! silent bot without its record, nor a record without the hold.

use switchyard_engine::engine::Turn;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::queue::{InboxKind, Pending};
use switchyard_engine::session::Outcome;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::backend::{both, Backend};
use crate::codec::{corrupt, inbox_columns};
use crate::postgres::{map_err as pg_err, PgStore};
use crate::sqlite::{Cause, SqliteStore};
use crate::writer::Statement;

/// Why a hold started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldCause {
    /// The bot handed the customer over (a flow step, `atendente`, a failure).
    Handoff,
    /// An agent wrote to the customer first (the bot did not hand over).
    Takeover,
}

impl HoldCause {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldCause::Handoff => "handoff",
            HoldCause::Takeover => "takeover",
        }
    }
}

/// What a new hold records, written with the turn that started it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldStart {
    pub cause: HoldCause,
    pub at: Timestamp,
    /// The hold's end unless released first (`HANDOFF_TTL`).
    pub until: Timestamp,
    /// The flow and version the contact was in, when a session ended with the hold.
    pub flow: Option<String>,
    pub version: Option<u32>,
    /// The Chatwoot calls to make; `None` when Chatwoot is off for the instance.
    pub desk: Option<DeskRequest>,
}

impl HoldStart {
    /// The hold a turn of the console channels (`chat`, `simulate`) starts,
    /// if it hands the contact over: a handoff (they have no operator
    /// messages and no Chatwoot), started `at` (the turn's time), in the
    /// flow and version whose session the handoff ended.
    pub fn handoff_of(turn: &Turn, at: Timestamp) -> Option<HoldStart> {
        let until = turn.handoff_until?;
        let ended = turn.sessions.iter().rev().find(|session| matches!(session.outcome(), Some(Outcome::Handoff | Outcome::Failed)));
        Some(HoldStart {
            cause: HoldCause::Handoff,
            at,
            until,
            flow: ended.map(|session| session.flow().as_str().to_owned()),
            version: ended.map(|session| session.version().number()),
            desk: None,
        })
    }
}

/// What Chatwoot is told about a handoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeskRequest {
    /// `open`, or `pending` outside business hours.
    pub status: String,
    /// The private note for the agent.
    pub note: String,
}

/// A handoff whose Chatwoot calls are due, claimed for one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeskJob {
    pub seq: i64,
    pub instance: InstanceId,
    pub contact: Contact,
    pub status: String,
    pub note: String,
    /// The conversation found so far (by an earlier attempt).
    pub conversation: Option<i64>,
    /// How many of the calls are done (they are made in order).
    pub step: u32,
    pub attempts: u32,
}

/// Whether a `fromMe` message is one of our own sends echoed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// Its id is a reply we sent.
    Ours,
    /// A send to this contact is in flight: its id is not known yet, ask again shortly.
    Unknown,
    /// Nobody here sent it: a person did.
    Theirs,
}

/// Hold counts over a period, for `report`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HoldFigures {
    pub handoffs: u64,
    pub takeovers: u64,
    /// Holds ended by a resolved Chatwoot conversation.
    pub returned: u64,
    /// Holds ended by the CLI or the admin API.
    pub released: u64,
    /// Holds ended by `HANDOFF_TTL`.
    pub expired: u64,
    /// Time on hold of the holds that ended, in milliseconds.
    pub held_millis: i64,
}

/// A live hold's `until` moves with a new hold on the same contact ($1
/// until, $2 instance, $3 contact, $4 at).
///
/// This and [`START`] also run on SQLite's writer thread, which binds by
/// position: each `$N` first appears after `$N-1`, so position and number agree.
const EXTEND: &str = "UPDATE holds SET until = $1 WHERE instance = $2 AND contact = $3 AND ended_at IS NULL AND until > $4";
/// A hold row, unless the contact has a live one (extended above).
const START: &str = "INSERT INTO holds (instance, contact, until, started_at, cause, flow, version, desk_status, desk_note, desk_next_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $8 IS NULL THEN NULL ELSE $4 END \
                     WHERE NOT EXISTS (SELECT 1 FROM holds WHERE instance = $1 AND contact = $2 AND ended_at IS NULL AND until > $4)";
/// Handoffs whose Chatwoot calls are due ($1 now, $2 limit).
const DUE: &str = "SELECT seq, instance, contact, desk_status, desk_note, desk_conversation, desk_step, desk_attempts, desk_next_at FROM holds \
                   WHERE desk_status IS NOT NULL AND desk_done_at IS NULL AND desk_next_at <= $1 ORDER BY desk_next_at, seq LIMIT $2";
/// Claims one due job: moves its next attempt to $3 if it is still at $2.
const CLAIM: &str = "UPDATE holds SET desk_next_at = $3, desk_attempts = desk_attempts + 1 WHERE seq = $1 AND desk_next_at = $2 AND desk_done_at IS NULL";
const PROGRESS: &str = "UPDATE holds SET desk_step = $2, desk_conversation = $3 WHERE seq = $1";
const RETRY: &str = "UPDATE holds SET desk_next_at = $2, desk_error = $3 WHERE seq = $1 AND desk_done_at IS NULL";
/// Done (or given up, with the reason): the note is not kept once delivered.
const DONE: &str = "UPDATE holds SET desk_done_at = $2, desk_error = $3, desk_note = NULL WHERE seq = $1";
const LINK: &str = "INSERT INTO chatwoot_links (instance, contact, conversation_id, inbox_id, seen_at) VALUES ($1, $2, $3, $4, $5) \
                    ON CONFLICT (instance, contact) DO UPDATE SET conversation_id = excluded.conversation_id, \
                    inbox_id = COALESCE(excluded.inbox_id, chatwoot_links.inbox_id), seen_at = excluded.seen_at";
const LINKED: &str = "SELECT conversation_id FROM chatwoot_links WHERE instance = $1 AND contact = $2";
const BY_CONVERSATION: &str = "SELECT instance, contact FROM chatwoot_links WHERE conversation_id = $1 ORDER BY instance, contact";
const HELD: &str = "SELECT instance FROM handoffs WHERE contact = $1 AND until > $2 ORDER BY instance";
const GIVE_BACK: [&str; 2] = [
    "DELETE FROM handoffs WHERE instance = $1 AND contact = $2",
    "UPDATE holds SET ended_at = $3, ended_by = 'resolved' WHERE instance = $1 AND contact = $2 AND ended_at IS NULL AND until > $3",
];
const OURS: &str = "SELECT COUNT(*) FROM outbox WHERE instance = $1 AND provider_id = $2";
/// A send to the contact is under way: its id is not recorded yet.
const IN_FLIGHT: &str = "SELECT COUNT(*) FROM outbox WHERE instance = $1 AND contact = $2 AND sent_at IS NULL AND failed_at IS NULL \
                         AND attempted_at IS NOT NULL";
const SKIP: &str = "UPDATE inbox SET processed_at = received_at WHERE seq = $1 AND processed_at IS NULL";
/// (cause, ended_by, ended, held millis) of holds started in [$1, $2), at $3.
const FIGURES: &str = "SELECT cause, COALESCE(ended_by, CASE WHEN until <= $3 THEN 'ttl' END) AS how, \
                       COUNT(*) AS holds, \
                       CAST(SUM(CASE WHEN ended_at IS NOT NULL THEN ended_at - started_at WHEN until <= $3 THEN until - started_at ELSE 0 END) AS BIGINT) AS held \
                       FROM holds WHERE started_at >= $1 AND started_at < $2 GROUP BY cause, how";

/// [`FIGURES`] per version of one flow (`$4`), on one instance (`$5`) or all.
const FIGURES_OF: &str = "SELECT version, cause, COALESCE(ended_by, CASE WHEN until <= $3 THEN 'ttl' END) AS how, \
                          COUNT(*) AS holds, \
                          CAST(SUM(CASE WHEN ended_at IS NOT NULL THEN ended_at - started_at WHEN until <= $3 THEN until - started_at ELSE 0 END) AS BIGINT) AS held \
                          FROM holds WHERE started_at >= $1 AND started_at < $2 AND flow = $4 AND version IS NOT NULL AND instance = COALESCE($5, instance) \
                          GROUP BY version, cause, how";

/// [`figures_from`] per version.
fn figures_by_version(rows: Vec<(i64, String, Option<String>, i64, Option<i64>)>) -> std::collections::BTreeMap<u32, HoldFigures> {
    let mut by_version: std::collections::BTreeMap<u32, Vec<(String, Option<String>, i64, Option<i64>)>> = std::collections::BTreeMap::new();
    for (version, cause, how, holds, held) in rows {
        if let Ok(version) = u32::try_from(version) {
            by_version.entry(version).or_default().push((cause, how, holds, held));
        }
    }
    by_version.into_iter().map(|(version, rows)| (version, figures_from(rows))).collect()
}

fn job_from(row: (i64, String, String, String, Option<String>, Option<i64>, i64, i64)) -> Result<DeskJob, StoreError> {
    let (seq, instance, contact, status, note, conversation, step, attempts) = row;
    Ok(DeskJob {
        seq,
        instance: InstanceId::parse(&instance).map_err(|err| corrupt("holds.instance", err))?,
        contact: Contact::parse(&contact).map_err(|err| corrupt("holds.contact", err))?,
        status,
        note: note.unwrap_or_default(),
        conversation,
        step: u32::try_from(step).unwrap_or(0),
        attempts: u32::try_from(attempts).unwrap_or(0),
    })
}

type JobRow = (i64, String, String, String, Option<String>, Option<i64>, i64, i64, i64);

fn split(row: JobRow) -> ((i64, String, String, String, Option<String>, Option<i64>, i64, i64), i64) {
    let (seq, instance, contact, status, note, conversation, step, attempts, next_at) = row;
    ((seq, instance, contact, status, note, conversation, step, attempts), next_at)
}

fn figures_from(rows: Vec<(String, Option<String>, i64, Option<i64>)>) -> HoldFigures {
    let mut figures = HoldFigures::default();
    for (cause, how, holds, held) in rows {
        let holds = u64::try_from(holds).unwrap_or(0);
        match cause.as_str() {
            "takeover" => figures.takeovers += holds,
            _ => figures.handoffs += holds,
        }
        match how.as_deref() {
            Some("resolved") => figures.returned += holds,
            Some("release") => figures.released += holds,
            Some("ttl") => figures.expired += holds,
            _ => {}
        }
        figures.held_millis += held.unwrap_or(0);
    }
    figures
}

fn echo_from(ours: i64, in_flight: i64) -> Echo {
    if ours > 0 {
        Echo::Ours
    } else if in_flight > 0 {
        Echo::Unknown
    } else {
        Echo::Theirs
    }
}

fn hold_params(turn: &Turn, hold: &HoldStart) -> (String, String, i64, i64, &'static str, Option<String>, Option<i64>, Option<String>, Option<String>) {
    (
        turn.instance.as_str().to_owned(),
        turn.contact.as_str().to_owned(),
        hold.until.as_millis(),
        hold.at.as_millis(),
        hold.cause.as_str(),
        hold.flow.clone(),
        hold.version.map(i64::from),
        hold.desk.as_ref().map(|desk| desk.status.clone()),
        hold.desk.as_ref().map(|desk| desk.note.clone()),
    )
}

/// Starting a hold is the one operation here whose backends differ: it
/// joins the turn's own write (SQLite's group commit, PostgreSQL's
/// transaction), so it is written with each.
impl SqliteStore {
    /// [`Queue::commit_inbound`](switchyard_engine::queue::Queue::commit_inbound)
    /// for a turn that holds the contact: the hold's row (or its live one
    /// extended) in the same transaction.
    pub async fn commit_inbound_holding(&self, turn: &Turn, pending: &Pending, reply_to: &str, hold: &HoldStart) -> Result<(), StoreError> {
        let seq = pending.seq;
        let mut statements = vec![Statement::one(
            "UPDATE inbox SET processed_at = received_at WHERE seq = ? AND processed_at IS NULL AND body IS ?",
            vec![seq.into(), inbox_columns(&pending.entry.kind).1.into()],
            format!("inbox entry {seq} is processed, changed or gone"),
        )];
        crate::sqlite::turn_statements(turn, &mut statements);
        crate::sqlite::reply_statements(turn, reply_to, &Cause::Inbox(pending), self.commit_attempt(), &mut statements);
        hold_statements(turn, hold, &mut statements);
        self.write(statements).await.map(drop)
    }

    /// [`Store::commit`](switchyard_engine::store::Store::commit) for a turn
    /// that holds the contact, without an inbox entry (`chat`, `simulate`):
    /// the hold's row (or its live one extended) in the same transaction.
    pub async fn commit_holding(&self, turn: &Turn, hold: &HoldStart) -> Result<(), StoreError> {
        let mut statements = Vec::new();
        crate::sqlite::turn_statements(turn, &mut statements);
        hold_statements(turn, hold, &mut statements);
        self.write(statements).await.map(drop)
    }
}

/// The hold's statements for SQLite's writer: its live row extended, or a
/// new one started.
fn hold_statements(turn: &Turn, hold: &HoldStart, statements: &mut Vec<Statement>) {
        let (instance, contact, until, at, cause, flow, version, status, note) = hold_params(turn, hold);
        statements.push(Statement::new(EXTEND, vec![until.into(), instance.as_str().into(), contact.as_str().into(), at.into()]));
        statements.push(Statement::new(
            START,
            vec![instance.into(), contact.into(), until.into(), at.into(), cause.into(), flow.into(), version.into(), status.into(), note.into()],
        ));
}

impl PgStore {
    pub async fn commit_inbound_holding(&self, turn: &Turn, pending: &Pending, reply_to: &str, hold: &HoldStart) -> Result<(), StoreError> {
        let seq = pending.seq;
        let mut tx = self.pool().begin().await.map_err(pg_err)?;
        let processed: Option<(i64, String)> = sqlx::query_as(
            "UPDATE inbox SET processed_at = received_at WHERE seq = $1 AND processed_at IS NULL \
             AND body IS NOT DISTINCT FROM $2 RETURNING received_at, message_id",
        )
        .bind(seq)
        .bind(inbox_columns(&pending.entry.kind).1)
        .fetch_optional(&mut *tx)
        .await
        .map_err(pg_err)?;
        let Some((received_at, message_id)) = processed else {
            return Err(StoreError::Conflict(format!("inbox entry {seq} is processed, changed or gone")));
        };
        crate::postgres::write_turn(&mut tx, turn).await?;
        crate::postgres::queue_replies(&mut tx, turn, reply_to, received_at, Some(&message_id)).await?;
        start_hold(&mut tx, turn, hold).await?;
        tx.commit().await.map_err(pg_err)
    }

    /// [`SqliteStore::commit_holding`] on PostgreSQL: the turn and its hold in one transaction.
    pub async fn commit_holding(&self, turn: &Turn, hold: &HoldStart) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await.map_err(pg_err)?;
        crate::postgres::write_turn(&mut tx, turn).await?;
        start_hold(&mut tx, turn, hold).await?;
        tx.commit().await.map_err(pg_err)
    }
}

/// The hold's row, or its live one extended, in a PostgreSQL transaction.
async fn start_hold(tx: &mut crate::postgres::Tx<'_>, turn: &Turn, hold: &HoldStart) -> Result<(), StoreError> {
    let (instance, contact, until, at, cause, flow, version, status, note) = hold_params(turn, hold);
    sqlx::query(EXTEND).bind(until).bind(&instance).bind(&contact).bind(at).execute(&mut **tx).await.map_err(pg_err)?;
    sqlx::query(START)
        .bind(instance)
        .bind(contact)
        .bind(until)
        .bind(at)
        .bind(cause)
        .bind(flow)
        .bind(version)
        .bind(status)
        .bind(note)
        .execute(&mut **tx)
        .await
        .map_err(pg_err)?;
    Ok(())
}

both! {
    /// Up to `limit` handoffs whose Chatwoot calls are due at `now`, each
    /// claimed until `now + lease` (another process skips it meanwhile).
    pub async fn desk_due(&self, now: Timestamp, lease_millis: i64, limit: u32) -> Result<Vec<DeskJob>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(DUE).bind(now.as_millis()).bind(i64::from(limit)).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        let mut jobs = Vec::new();
        for row in rows {
            let (row, next_at) = split(row);
            let claimed = sqlx::query(CLAIM)
                .bind(row.0)
                .bind(next_at)
                .bind(now.as_millis() + lease_millis)
                .execute(self.writes())
                .await
                .map_err(Self::map_err)?
                .rows_affected();
            if claimed == 1 {
                let mut job = job_from(row)?;
                job.attempts += 1;
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    /// `step` calls of the job are done; `conversation` is the one they went to.
    pub async fn desk_progress(&self, seq: i64, step: u32, conversation: Option<i64>) -> Result<(), StoreError> {
        sqlx::query(PROGRESS).bind(seq).bind(i64::from(step)).bind(conversation).execute(self.writes()).await.map_err(Self::map_err).map(drop)
    }

    /// Try the job again at `next_at`; `error` says why this attempt failed.
    pub async fn desk_retry(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError> {
        sqlx::query(RETRY).bind(seq).bind(next_at.as_millis()).bind(error).execute(self.writes()).await.map_err(Self::map_err).map(drop)
    }

    /// The job is over: done, or given up with `error`.
    pub async fn desk_done(&self, seq: i64, at: Timestamp, error: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(DONE).bind(seq).bind(at.as_millis()).bind(error).execute(self.writes()).await.map_err(Self::map_err).map(drop)
    }

    /// Records the Chatwoot conversation Evolution named for the contact.
    pub async fn link_chatwoot(&self, instance: &InstanceId, contact: &Contact, conversation: i64, inbox: Option<i64>, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query(LINK)
            .bind(instance.as_str())
            .bind(contact.as_str())
            .bind(conversation)
            .bind(inbox)
            .bind(at.as_millis())
            .execute(self.writes())
            .await
            .map_err(Self::map_err)
            .map(drop)
    }

    /// The contact's Chatwoot conversation, as Evolution last named it.
    pub async fn chatwoot_link(&self, instance: &InstanceId, contact: &Contact) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(LINKED).bind(instance.as_str()).bind(contact.as_str()).fetch_optional(self.reads()).await.map_err(Self::map_err)
    }

    /// The (instance, contact) pairs linked to a Chatwoot conversation.
    pub async fn chatwoot_contacts(&self, conversation: i64) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(BY_CONVERSATION).bind(conversation).fetch_all(self.reads()).await.map_err(Self::map_err)
    }

    /// The instances on which `contact` is on hold at `now`.
    pub async fn held_instances(&self, contact: &Contact, now: Timestamp) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(HELD).bind(contact.as_str()).bind(now.as_millis()).fetch_all(self.reads()).await.map_err(Self::map_err)
    }

    /// A person finished (Chatwoot resolved the conversation): the hold ends
    /// now. `false` when there was none.
    pub async fn give_back(&self, instance: &InstanceId, contact: &Contact, at: Timestamp) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(GIVE_BACK[0]).bind(instance.as_str()).bind(contact.as_str()).execute(&mut *tx).await.map_err(Self::map_err)?;
        sqlx::query(GIVE_BACK[1]).bind(instance.as_str()).bind(contact.as_str()).bind(at.as_millis()).execute(&mut *tx).await.map_err(Self::map_err)?;
        tx.commit().await.map_err(Self::map_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Is `message_id`, a `fromMe` message to `contact`, one of our sends?
    pub async fn echo_of(&self, instance: &InstanceId, contact: &Contact, message_id: &str) -> Result<Echo, StoreError> {
        let ours: i64 = sqlx::query_scalar(OURS).bind(instance.as_str()).bind(message_id).fetch_one(self.reads()).await.map_err(Self::map_err)?;
        let in_flight: i64 =
            sqlx::query_scalar(IN_FLIGHT).bind(instance.as_str()).bind(contact.as_str()).fetch_one(self.reads()).await.map_err(Self::map_err)?;
        Ok(echo_from(ours, in_flight))
    }

    /// Marks an inbox entry processed without a turn (an echo of our own send).
    pub async fn skip_inbox(&self, pending: &Pending) -> Result<(), StoreError> {
        debug_assert!(matches!(pending.entry.kind, InboxKind::Operator));
        sqlx::query(SKIP).bind(pending.seq).execute(self.writes()).await.map_err(Self::map_err).map(drop)
    }

    /// Holds started in [from, to), as seen at `now`.
    pub async fn hold_figures(&self, from: Timestamp, to: Timestamp, now: Timestamp) -> Result<HoldFigures, StoreError> {
        let rows =
            sqlx::query_as(FIGURES).bind(from.as_millis()).bind(to.as_millis()).bind(now.as_millis()).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        Ok(figures_from(rows))
    }

    /// Holds of `flow` started in [from, to), per version, on `instance` or all, as seen at `now`.
    pub async fn hold_figures_of(&self, flow: &str, instance: Option<&str>, from: Timestamp, to: Timestamp, now: Timestamp) -> Result<std::collections::BTreeMap<u32, HoldFigures>, StoreError> {
        let rows = sqlx::query_as(FIGURES_OF)
            .bind(from.as_millis())
            .bind(to.as_millis())
            .bind(now.as_millis())
            .bind(flow)
            .bind(instance)
            .fetch_all(self.reads())
            .await
            .map_err(Self::map_err)?;
        Ok(figures_by_version(rows))
    }

    /// Contacts on human hold at `now`: the count, the oldest start, and up
    /// to `limit` of them, the longest-running first.
    pub async fn live_holds(&self, now: Timestamp, limit: u32) -> Result<HoldList, StoreError> {
        let totals: (i64, Option<i64>) = sqlx::query_as(LIVE_COUNT).bind(now.as_millis()).fetch_one(self.reads()).await.map_err(Self::map_err)?;
        let rows: Vec<LiveRow> =
            sqlx::query_as(LIVE_LIST).bind(now.as_millis()).bind(i64::from(limit)).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        let holds = rows
            .into_iter()
            .map(|(instance, contact, until, since, cause)| {
                Ok(LiveHold {
                    instance: InstanceId::parse(&instance).map_err(|err| corrupt("handoffs.instance", err))?,
                    contact: Contact::parse(&contact).map_err(|err| corrupt("handoffs.contact", err))?,
                    until: Timestamp::from_millis(until),
                    since: since.map(Timestamp::from_millis),
                    cause,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(HoldList { count: u64::try_from(totals.0).unwrap_or(0), oldest: totals.1.map(Timestamp::from_millis), holds })
    }

    /// Ends the contact's hold by hand and records who did it and why in the
    /// audit log, in one transaction. `Some(audit seq)` when there was a hold
    /// to release, `None` (and no record) when there was none.
    pub async fn release_hold(&self, instance: &InstanceId, contact: &Contact, actor: &str, reason: &str, at: Timestamp) -> Result<Option<i64>, StoreError> {
        let after = serde_json::json!({ "instance": instance.as_str(), "contact": contact.as_str() }).to_string();
        let mut tx = self.begin_audit().await?;
        let deleted = sqlx::query(RELEASE_DELETE).bind(instance.as_str()).bind(contact.as_str()).execute(&mut *tx).await.map_err(Self::map_err)?;
        if deleted.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query(RELEASE_END).bind(instance.as_str()).bind(contact.as_str()).bind(at.as_millis()).execute(&mut *tx).await.map_err(Self::map_err)?;
        let seq: i64 =
            sqlx::query_scalar(RELEASE_AUDIT).bind(at.as_millis()).bind(actor).bind(reason).bind(&after).fetch_one(&mut *tx).await.map_err(Self::map_err)?;
        tx.commit().await.map_err(Self::map_err)?;
        Ok(Some(seq))
    }
}

/// One contact on human hold now, for the health view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveHold {
    pub instance: InstanceId,
    pub contact: Contact,
    /// The bot answers again at `until` unless released first.
    pub until: Timestamp,
    /// When the hold started (`None` for a hold older than the `holds` rows).
    pub since: Option<Timestamp>,
    /// `handoff` or `takeover`, when known.
    pub cause: Option<String>,
}

/// Contacts on hold now: how many, the oldest start, and the first of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldList {
    pub count: u64,
    /// When the longest-running hold started.
    pub oldest: Option<Timestamp>,
    /// The longest-running first, at most the limit asked for.
    pub holds: Vec<LiveHold>,
}

/// The live hold rows ($1 now) beside the `handoffs` rows that silence the bot.
const LIVE_COUNT: &str = "SELECT COUNT(*), MIN(s.started_at) FROM handoffs h \
                          LEFT JOIN holds s ON s.instance = h.instance AND s.contact = h.contact AND s.ended_at IS NULL AND s.until > $1 \
                          WHERE h.until > $1";
const LIVE_LIST: &str = "SELECT h.instance, h.contact, h.until, s.started_at, s.cause FROM handoffs h \
                         LEFT JOIN holds s ON s.instance = h.instance AND s.contact = h.contact AND s.ended_at IS NULL AND s.until > $1 \
                         WHERE h.until > $1 ORDER BY COALESCE(s.started_at, h.until), h.instance, h.contact LIMIT $2";
/// Released by hand: (instance, contact) as the audit record's `after`.
const RELEASE_DELETE: &str = "DELETE FROM handoffs WHERE instance = $1 AND contact = $2";
const RELEASE_END: &str = "UPDATE holds SET ended_at = $3, ended_by = 'release' WHERE instance = $1 AND contact = $2 AND ended_at IS NULL AND until > $3";
const RELEASE_AUDIT: &str = "INSERT INTO audit (at, actor, action, flow, reason, after) VALUES ($1, $2, 'release', NULL, $3, $4) RETURNING seq";

type LiveRow = (String, String, i64, Option<i64>, Option<String>);
