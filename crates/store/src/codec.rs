//! How the engine's types become columns and back, shared by every SQL
//! backend: the backends differ in dialect and locking, not in what a row
//! means. A row is read through [`Columns`], implemented for each driver's
//! row type.

use serde_json::Value;
use sqlx::Row;
use switchyard_engine::classify::Classification;
use switchyard_engine::engine::Content;
use switchyard_engine::media::{Attachment, FileKind, OutgoingFile, Rich};
use switchyard_engine::event::{Event, EventKind};
use switchyard_engine::ids::{Contact, Fingerprint, FlowId, InstanceId, SessionId, StepId, Version};
use switchyard_engine::queue::{InboxEntry, InboxKind, Outgoing, Pending};
use switchyard_engine::resolve::Reason;
use switchyard_engine::session::{Data, Outcome, Session, SessionRecord};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {err}"))
}

/// Typed access to a result row by column name, whatever the driver.
pub(crate) trait Columns {
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError>;

    /// A count column (NULL when nothing was summed) as an unsigned number.
    fn count(&self, name: &str) -> Result<u64, StoreError> {
        Ok(self.opt_int(name)?.unwrap_or(0).max(0) as u64)
    }

    fn version(&self, name: &str) -> Result<Version, StoreError> {
        Ok(Version::new(u32::try_from(self.int(name)?).map_err(|err| corrupt(name, err))?))
    }
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, name: &str) -> Result<String, StoreError> {
                self.try_get(name).map_err(|err| corrupt(name, err))
            }
            fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
                self.try_get(name).map_err(|err| corrupt(name, err))
            }
            fn int(&self, name: &str) -> Result<i64, StoreError> {
                self.try_get(name).map_err(|err| corrupt(name, err))
            }
            fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(name).map_err(|err| corrupt(name, err))
            }
        }
    };
}

columns_for!(sqlx::sqlite::SqliteRow);
columns_for!(sqlx::postgres::PgRow);

/// A SQLite row read without sqlx (the hot-path reads, `reader`), with
/// its statement's column names resolved once per statement. rusqlite
/// finds a column by name by asking SQLite for the name of every column in
/// turn (a C string converted each time): for a 20-column session row,
/// ~400 conversions. Here a name is compared with the statement's names
/// from where the previous one was found (decoders mostly read columns in
/// their select order, so usually the first comparison hits), and the
/// value is read by index.
pub(crate) struct NamedRow<'a> {
    row: &'a rusqlite::Row<'a>,
    names: &'a [Box<str>],
    next: std::cell::Cell<usize>,
}

impl<'a> NamedRow<'a> {
    pub fn new(row: &'a rusqlite::Row<'a>, names: &'a [Box<str>]) -> NamedRow<'a> {
        NamedRow { row, names, next: std::cell::Cell::new(0) }
    }

    fn index(&self, name: &str) -> Result<usize, StoreError> {
        let count = self.names.len();
        let start = self.next.get();
        for offset in 0..count {
            let index = if start + offset < count { start + offset } else { start + offset - count };
            if &*self.names[index] == name {
                self.next.set(index + 1);
                return Ok(index);
            }
        }
        Err(corrupt(name, "no such column"))
    }

    fn get<T: rusqlite::types::FromSql>(&self, name: &str) -> Result<T, StoreError> {
        self.row.get(self.index(name)?).map_err(|err| corrupt(name, err))
    }
}

impl Columns for NamedRow<'_> {
    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.get(name)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.get(name)
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.get(name)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.get(name)
    }
}

/// A value decoded from one result row, whichever the driver.
pub(crate) trait FromColumns: Sized {
    fn from_columns(row: &impl Columns) -> Result<Self, StoreError>;
}

impl FromColumns for Pending {
    fn from_columns(row: &impl Columns) -> Result<Self, StoreError> {
        inbox_from_row(row)
    }
}

impl FromColumns for Outgoing {
    fn from_columns(row: &impl Columns) -> Result<Self, StoreError> {
        outgoing_from_row(row)
    }
}

impl FromColumns for Session {
    fn from_columns(row: &impl Columns) -> Result<Self, StoreError> {
        session_from_row(row)
    }
}

impl FromColumns for (InstanceId, Contact) {
    fn from_columns(row: &impl Columns) -> Result<Self, StoreError> {
        key_from_row(row)
    }
}

pub(crate) fn data_to_json(data: &Data) -> String {
    let map: serde_json::Map<String, Value> = data.iter().map(|(key, value)| (key.to_owned(), Value::String(value.to_owned()))).collect();
    Value::Object(map).to_string()
}

pub(crate) fn data_from_json(text: &str) -> Result<Data, StoreError> {
    let value: Value = serde_json::from_str(text).map_err(|err| corrupt("session data", err))?;
    let Value::Object(map) = value else {
        return Err(corrupt("session data", "not a JSON object"));
    };
    let mut data = Data::default();
    for (key, value) in map {
        let Value::String(value) = value else {
            return Err(corrupt("session data", format!("value of '{key}' is not a string")));
        };
        data.set(key, value);
    }
    Ok(data)
}

/// The session columns every query that reads whole sessions selects (a
/// macro, so queries stay string literals through `concat!`).
macro_rules! session_columns {
    () => {
        "id, instance, contact, flow, version, fingerprint, reason, reason_detail, step, data, \
         attempts, turns, started_at, last_input_at, expires_at, outcome, ended_at, revision, parent, depth"
    };
}
pub(crate) use session_columns;

pub(crate) fn session_from_row(row: &impl Columns) -> Result<Session, StoreError> {
    let count = |name: &str| u32::try_from(row.int(name)?).map_err(|err| corrupt(name, err));
    let reason_detail = row.opt_text("reason_detail")?;
    let record = SessionRecord {
        id: SessionId::parse(&row.text("id")?).map_err(|err| corrupt("id", err))?,
        instance: InstanceId::parse(&row.text("instance")?).map_err(|err| corrupt("instance", err))?,
        contact: Contact::parse(&row.text("contact")?).map_err(|err| corrupt("contact", err))?,
        flow: FlowId::new(row.text("flow")?),
        version: row.version("version")?,
        fingerprint: Fingerprint::new(row.text("fingerprint")?),
        reason: Reason::from_parts(&row.text("reason")?, reason_detail.as_deref()),
        step: StepId::new(row.text("step")?),
        data: data_from_json(&row.text("data")?)?,
        attempts: count("attempts")?,
        turns: count("turns")?,
        started_at: Timestamp::from_millis(row.int("started_at")?),
        last_input_at: Timestamp::from_millis(row.int("last_input_at")?),
        expires_at: Timestamp::from_millis(row.int("expires_at")?),
        outcome: row.opt_text("outcome")?.map(|text| Outcome::parse(&text)).transpose().map_err(|err| corrupt("outcome", err))?,
        ended_at: row.opt_int("ended_at")?.map(Timestamp::from_millis),
        revision: u64::try_from(row.int("revision")?).map_err(|err| corrupt("revision", err))?,
        parent: row.opt_text("parent")?.map(|id| SessionId::parse(&id)).transpose().map_err(|err| corrupt("parent", err))?,
        depth: u32::try_from(row.int("depth")?).map_err(|err| corrupt("depth", err))?,
    };
    Session::restore(record).map_err(|err| corrupt("session", err))
}

/// The nullable columns of an event row: (reason, reason_detail,
/// fingerprint, detail).
pub(crate) fn event_columns(kind: &EventKind) -> (Option<&str>, Option<&str>, Option<&str>, Option<String>) {
    match kind {
        EventKind::Started { reason, fingerprint } => (Some(reason.name()), reason.detail(), Some(fingerprint.as_str()), None),
        EventKind::Ended { detail, .. } => (None, None, None, detail.clone()),
        EventKind::Undeliverable { reason } => (None, None, None, Some(reason.clone())),
        EventKind::Received { medium } => (None, None, None, Some(medium.clone())),
        EventKind::Classified(classification) => (None, None, None, Some(classification.encode())),
        EventKind::SlotFilled { .. } | EventKind::SlotMissed { .. } => (None, None, None, kind.slot_detail()),
        EventKind::StepEntered | EventKind::Retried => (None, None, None, None),
    }
}

pub(crate) fn event_from_row(row: &impl Columns) -> Result<Event, StoreError> {
    let kind = match row.text("kind")?.as_str() {
        "started" => EventKind::Started {
            reason: Reason::from_parts(&row.opt_text("reason")?.unwrap_or_default(), row.opt_text("reason_detail")?.as_deref()),
            fingerprint: Fingerprint::new(row.opt_text("fingerprint")?.unwrap_or_default()),
        },
        "step_entered" => EventKind::StepEntered,
        "retried" => EventKind::Retried,
        "undeliverable" => EventKind::Undeliverable { reason: row.opt_text("detail")?.unwrap_or_default() },
        "received" => EventKind::Received { medium: row.opt_text("detail")?.unwrap_or_default() },
        "classified" => EventKind::Classified(
            Classification::decode(&row.opt_text("detail")?.unwrap_or_default()).map_err(|err| corrupt("classified event", err))?,
        ),
        name @ ("slot_filled" | "slot_missed") => EventKind::slot_from_detail(name, &row.opt_text("detail")?.unwrap_or_default())
            .map_err(|err| corrupt("slot event", err))?,
        other => EventKind::Ended {
            outcome: Outcome::parse(other).map_err(|err| corrupt("event kind", err))?,
            detail: row.opt_text("detail")?,
        },
    };
    Ok(Event {
        session: SessionId::parse(&row.text("session_id")?).map_err(|err| corrupt("session_id", err))?,
        flow: FlowId::new(row.text("flow")?),
        version: row.version("version")?,
        at: Timestamp::from_millis(row.int("at")?),
        step: row.opt_text("step")?.map(StepId::new),
        kind,
    })
}

/// An inbox entry's (kind, body) columns: a voice note's body is its
/// transcript, an attachment's a JSON reference (never the bytes).
pub(crate) fn inbox_columns(kind: &InboxKind) -> (&'static str, Option<String>) {
    match kind {
        InboxKind::Customer(Content::Text(text)) => ("text", Some(text.clone())),
        InboxKind::Customer(Content::Audio { transcript }) => ("audio", transcript.clone()),
        InboxKind::Customer(Content::Attachment(file)) => ("attachment", Some(attachment_to_json(file))),
        InboxKind::Customer(Content::Unsupported(kind)) => ("unsupported", Some(kind.clone())),
        InboxKind::Operator => ("operator", None),
    }
}

fn attachment_to_json(file: &Attachment) -> String {
    serde_json::json!({
        "message_id": file.message_id,
        "kind": file.kind,
        "mimetype": file.mimetype,
        "file_name": file.file_name,
        "caption": file.caption,
    })
    .to_string()
}

/// An attachment's reference; a purged one (no body) reads as an
/// unsupported attachment.
fn attachment_from_json(body: Option<&str>) -> Result<Content, StoreError> {
    let Some(body) = body else { return Ok(Content::Unsupported("attachment".to_owned())) };
    let value: serde_json::Value = serde_json::from_str(body).map_err(|err| corrupt("inbox attachment", err))?;
    let text = |key: &str| value.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    Ok(Content::Attachment(Attachment {
        message_id: text("message_id").ok_or_else(|| corrupt("inbox attachment", "no message_id"))?,
        kind: text("kind").unwrap_or_default(),
        mimetype: text("mimetype"),
        file_name: text("file_name"),
        caption: text("caption"),
    }))
}

/// An outbox row's `rich` column: what a reply carries besides its text.
pub(crate) fn rich_to_json(rich: Option<&Rich>) -> Option<String> {
    let value = match rich? {
        Rich::File(file) => serde_json::json!({
            "file": {"kind": file.kind.as_str(), "url": file.url, "mimetype": file.mimetype, "file_name": file.file_name}
        }),
        Rich::Choices(titles) => serde_json::json!({ "choices": &titles[..] }),
    };
    Some(value.to_string())
}

pub(crate) fn rich_from_json(text: Option<&str>) -> Result<Option<Rich>, StoreError> {
    let Some(text) = text else { return Ok(None) };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|err| corrupt("outbox rich", err))?;
    if let Some(file) = value.get("file") {
        let field = |key: &str| file.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
        let kind = field("kind").and_then(|kind| FileKind::parse(&kind)).ok_or_else(|| corrupt("outbox rich", "file kind"))?;
        return Ok(Some(Rich::File(OutgoingFile {
            kind,
            url: field("url").ok_or_else(|| corrupt("outbox rich", "file url"))?,
            mimetype: field("mimetype").unwrap_or_default(),
            file_name: field("file_name"),
        })));
    }
    if let Some(choices) = value.get("choices").and_then(serde_json::Value::as_array) {
        return Ok(Some(Rich::Choices(choices.iter().filter_map(|title| title.as_str().map(str::to_owned)).collect())));
    }
    Err(corrupt("outbox rich", "neither file nor choices"))
}

pub(crate) fn inbox_from_row(row: &impl Columns) -> Result<Pending, StoreError> {
    let body = row.opt_text("body")?;
    let kind = match row.text("kind")?.as_str() {
        "text" => InboxKind::Customer(Content::Text(body.unwrap_or_default())),
        "audio" => InboxKind::Customer(Content::Audio { transcript: body }),
        "attachment" => InboxKind::Customer(attachment_from_json(body.as_deref())?),
        "unsupported" => InboxKind::Customer(Content::Unsupported(body.unwrap_or_default())),
        "operator" => InboxKind::Operator,
        other => return Err(corrupt("inbox kind", other)),
    };
    Ok(Pending {
        seq: row.int("seq")?,
        entry: InboxEntry {
            instance: InstanceId::parse(&row.text("instance")?).map_err(|err| corrupt("instance", err))?,
            contact: Contact::parse(&row.text("contact")?).map_err(|err| corrupt("contact", err))?,
            message_id: row.text("message_id")?,
            reply_to: row.text("reply_to")?,
            kind,
            sent_at: row.opt_int("sent_at")?.map(Timestamp::from_millis),
            received_at: Timestamp::from_millis(row.int("received_at")?),
        },
    })
}

/// An outbox row. Its queries read `COALESCE(unsure_since, attempted_at) AS
/// unsure_since`: an attempt whose outcome was never recorded makes the
/// reply unsure too.
pub(crate) fn outgoing_from_row(row: &impl Columns) -> Result<Outgoing, StoreError> {
    Ok(Outgoing {
        seq: row.int("seq")?,
        instance: InstanceId::parse(&row.text("instance")?).map_err(|err| corrupt("instance", err))?,
        contact: Contact::parse(&row.text("contact")?).map_err(|err| corrupt("contact", err))?,
        reply_to: row.text("reply_to")?,
        text: row.text("text")?,
        session: row.opt_text("session_id")?.map(|id| SessionId::parse(&id)).transpose().map_err(|err| corrupt("session_id", err))?,
        attempts: u32::try_from(row.int("attempts")?).map_err(|err| corrupt("attempts", err))?,
        created_at: Timestamp::from_millis(row.int("created_at")?),
        request_id: row.opt_text("request_id")?,
        unsure_since: row.opt_int("unsure_since")?.map(Timestamp::from_millis),
        attempted_at: row.opt_int("attempted_at")?.map(Timestamp::from_millis),
        rich: rich_from_json(row.opt_text("rich")?.as_deref())?,
    })
}

/// A (instance, contact) pair read from a row.
pub(crate) fn key_from_row(row: &impl Columns) -> Result<(InstanceId, Contact), StoreError> {
    Ok((
        InstanceId::parse(&row.text("instance")?).map_err(|err| corrupt("instance", err))?,
        Contact::parse(&row.text("contact")?).map_err(|err| corrupt("contact", err))?,
    ))
}

/// Split assignments as aggregated into one text column: `flow version at`
/// entries separated by commas.
/// A contact's state from the rows of its live sessions joined with its
/// handoff hold and assignments (one row, with NULL session columns, when
/// it has no live session), ordered by depth: the first is the outermost
/// session, the others the stack of calls (see `switchyard_engine::call`).
pub(crate) fn contact_state_from_rows<R: Columns>(rows: &[R]) -> Result<switchyard_engine::engine::ContactState, StoreError> {
    let mut state = ContactRows::default();
    for row in rows {
        state.push(row)?;
    }
    Ok(state.finish())
}

/// [`contact_state_from_rows`] one row at a time, for drivers whose rows
/// live only while they are visited (rusqlite).
#[derive(Default)]
pub(crate) struct ContactRows {
    state: switchyard_engine::engine::ContactState,
    seen: bool,
}

impl ContactRows {
    pub fn push(&mut self, row: &impl Columns) -> Result<(), StoreError> {
        if !self.seen {
            // The first row (the others repeat these columns).
            self.seen = true;
            self.state.handoff_until = row.opt_int("handoff_until")?.map(Timestamp::from_millis);
            self.state.assignments = assignments_from_text(row.opt_text("assignments")?.as_deref())?;
        }
        if row.opt_text("id")?.is_some() {
            let session = session_from_row(row)?;
            match self.state.session {
                None => self.state.session = Some(session),
                Some(_) => self.state.calls.push(session),
            }
        }
        Ok(())
    }

    pub fn finish(self) -> switchyard_engine::engine::ContactState {
        self.state
    }
}

pub(crate) fn assignments_from_text(text: Option<&str>) -> Result<Vec<(FlowId, Version, Timestamp)>, StoreError> {
    text.unwrap_or("")
        .split(',')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let mut parts = entry.split(' ');
            let (Some(flow), Some(version), Some(at), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                return Err(corrupt("split_assignments", entry));
            };
            let version: u32 = version.parse().map_err(|err| corrupt("split_assignments.version", err))?;
            let at: i64 = at.parse().map_err(|err| corrupt("split_assignments.assigned_at", err))?;
            Ok((FlowId::new(flow), Version::new(version), Timestamp::from_millis(at)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_through_json() {
        let mut data = Data::default();
        data.set("document", "123.456.789-09");
        data.set("email", "ana@example.com");
        assert_eq!(data_from_json(&data_to_json(&data)).unwrap(), data);
        assert!(matches!(data_from_json("[1]"), Err(StoreError::Corrupt(_))));
        assert!(matches!(data_from_json("{\"a\":1}"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn assignments_parse_and_reject_garbage() {
        let parsed = assignments_from_text(Some("billing 2 1000,dc 1 5")).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0], (FlowId::new("billing"), Version::new(2), Timestamp::from_millis(1000)));
        assert!(assignments_from_text(None).unwrap().is_empty());
        assert!(matches!(assignments_from_text(Some("billing two 1")), Err(StoreError::Corrupt(_))));
        assert!(matches!(assignments_from_text(Some("billing 2")), Err(StoreError::Corrupt(_))));
    }
}
