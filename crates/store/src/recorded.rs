//! Recorded conversations for `switchyard replay` and `sessions export`:
//! each session of a flow with the customer messages it handled, read from
//! the inbox. Read-only: nothing here writes.
//!
//! The inbox does not name the session a message went to, so a session's
//! messages are those of its (instance, contact) from the last one received
//! at or before the session started (the message that started it) up to the
//! session's end, in the order the processor takes them (the customer's
//! clock, then arrival). Operator messages are left out.

use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::backend::{both, Backend};

/// Which sessions to read: `flow`'s sessions started in [since, until) on `instance`.
#[derive(Clone, Debug)]
pub struct RecordedFilter<'a> {
    pub flow: &'a str,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub instance: Option<&'a InstanceId>,
    pub limit: u32,
}

/// One inbound message as stored: `body` is `None` when it was purged
/// (`RETENTION`) or erased (`sessions forget`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedMessage {
    pub at: Timestamp,
    /// `text` or `unsupported` (then `body` is the content's kind: `audio` ...).
    pub kind: String,
    pub body: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedSession {
    pub id: String,
    pub instance: String,
    pub contact: String,
    pub version: Version,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// `completed`, `handoff` ...; `None` while live.
    pub outcome: Option<String>,
    pub messages: Vec<RecordedMessage>,
}

impl RecordedSession {
    /// False when a text of the session was purged or erased, or when no
    /// message could be found: such a session cannot be replayed or exported.
    pub fn is_complete(&self) -> bool {
        !self.messages.is_empty() && self.messages.iter().all(|message| message.body.is_some())
    }
}

type SessionRow = (String, String, String, i64, i64, Option<i64>, Option<String>);
type MessageRow = (String, Option<String>, i64);

const SESSIONS: &str = "SELECT id, instance, contact, version, started_at, ended_at, outcome FROM sessions \
     WHERE flow = $1 AND started_at >= $2 AND started_at < $3 AND ($4 IS NULL OR instance = $4) ORDER BY started_at, id LIMIT $5";
const MESSAGES: &str = "SELECT kind, body, received_at FROM inbox WHERE instance = $1 AND contact = $2 \
     AND kind IN ('text', 'unsupported') AND processed_at IS NOT NULL AND received_at <= $3 ORDER BY COALESCE(sent_at, received_at), seq";

both! {
    /// The sessions of `filter.flow`, oldest first, with their messages.
    pub async fn recorded_sessions(&self, filter: &RecordedFilter<'_>) -> Result<Vec<RecordedSession>, StoreError> {
        let rows: Vec<SessionRow> = sqlx::query_as(SESSIONS)
            .bind(filter.flow)
            .bind(filter.since.map_or(i64::MIN, Timestamp::as_millis))
            .bind(filter.until.map_or(i64::MAX, Timestamp::as_millis))
            .bind(filter.instance.map(InstanceId::as_str))
            .bind(i64::from(filter.limit))
            .fetch_all(self.reads())
            .await
            .map_err(Self::map_err)?;
        let mut sessions = Vec::with_capacity(rows.len());
        for (id, instance, contact, version, started_at, ended_at, outcome) in rows {
            let version = u32::try_from(version)
                .ok()
                .filter(|number| *number > 0)
                .map(Version::new)
                .ok_or_else(|| StoreError::Corrupt(format!("session {id} has version {version}")))?;
            let messages: Vec<MessageRow> = sqlx::query_as(MESSAGES)
                .bind(&instance)
                .bind(&contact)
                .bind(ended_at.unwrap_or(i64::MAX))
                .fetch_all(self.reads())
                .await
                .map_err(Self::map_err)?;
            // The message that started the session is the last one that had
            // arrived when it started; every later one up to its end is its.
            let opening = messages.iter().rposition(|(_, _, received)| *received <= started_at);
            let messages = match opening {
                Some(first) => messages[first..]
                    .iter()
                    .map(|(kind, body, received)| RecordedMessage { at: Timestamp::from_millis(*received), kind: kind.clone(), body: body.clone() })
                    .collect(),
                None => Vec::new(),
            };
            sessions.push(RecordedSession {
                id,
                instance,
                contact,
                version,
                started_at: Timestamp::from_millis(started_at),
                ended_at: ended_at.map(Timestamp::from_millis),
                outcome,
                messages,
            });
        }
        Ok(sessions)
    }
}
