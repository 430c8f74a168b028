//! Sessions for operators (`switchyard sessions`): the live ones, filtered,
//! and one contact's whole history across instances and aliases.

use switchyard_engine::event::Event;
use switchyard_engine::ids::{Contact, InstanceId, SessionId, Version};
use switchyard_engine::session::Session;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::aliases::linked_ids;
use crate::backend::{both, Backend};
use crate::codec::{event_from_row, session_columns, session_from_row};
use crate::report::{bind_window, window, Window};

/// Which live sessions to list; `None` matches everything.
#[derive(Clone, Debug, Default)]
pub struct LiveFilter<'a> {
    pub flow: Option<&'a str>,
    pub version: Option<Version>,
    pub step: Option<&'a str>,
    pub instance: Option<&'a InstanceId>,
}

/// Sessions in insertion order within a start time: SQLite's `rowid`,
/// PostgreSQL's `seq` (the one dialect detail here).
macro_rules! live {
    ($insertion:literal) => {
        concat!(
            "SELECT ", session_columns!(), " FROM sessions WHERE outcome IS NULL AND ($1 IS NULL OR flow = $1) AND ($2 IS NULL OR version = $2) \
             AND ($3 IS NULL OR step = $3) AND ($4 IS NULL OR instance = $4) ORDER BY started_at, ", $insertion, " LIMIT $5"
        )
    };
}
macro_rules! history {
    ($insertion:literal) => {
        concat!(linked_ids!(), "SELECT ", session_columns!(), " FROM sessions WHERE contact IN (SELECT id FROM ids) ORDER BY started_at DESC, ", $insertion, " DESC")
    };
}
/// Sessions of `version` that a global command ended, per (step, command).
const COMMANDS: &str = concat!(
    "SELECT e.step, substr(e.detail, 9) AS command, COUNT(*) FROM events e JOIN sessions s ON s.id = e.session_id \
     WHERE e.kind IN ('cancelled', 'handoff') AND e.detail LIKE 'command:%' AND s.version = $2 AND ",
    window!("s.", "$1", "$3", "$4", "$5", "$6"),
    " GROUP BY e.step, command ORDER BY e.step, command"
);

/// Outermost live sessions past their expiry, oldest first (the sweep ends
/// their calls with them). `$bucket` is PostgreSQL's range on the expiry's
/// five-minute bucket, its `sessions_due` key (postgres 0016): the bucket
/// never decreases with `expires_at`, so the range only narrows the walk.
macro_rules! expired {
    ($bucket:literal) => {
        concat!(
            "SELECT ", session_columns!(), " FROM sessions WHERE outcome IS NULL AND ", $bucket,
            "expires_at <= $1 AND depth = 0 ORDER BY expires_at, id LIMIT $2"
        )
    };
}
const OF_CONTACT: &str = concat!("SELECT ", session_columns!(), " FROM sessions WHERE instance = $1 AND contact = $2 ORDER BY started_at DESC, id DESC");
const EVENTS_OF: &str = "SELECT session_id, flow, version, at, step, kind, reason, reason_detail, fingerprint, detail \
                         FROM events WHERE session_id = $1 ORDER BY seq";
const SENT_IDS: &str = "SELECT provider_id FROM outbox WHERE instance = $1 AND contact = $2 AND sent_at >= $3 AND provider_id IS NOT NULL ORDER BY seq";

// The engine's `Store` and `Queue` reads that are the same on both backends;
// each backend's trait impl calls these.
both! {
    pub(crate) async fn expired_sessions(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(Self::dialect(expired!(""), expired!("expires_bucket <= $1 / 300000 AND ")))
            .bind(now.as_millis())
            .bind(i64::from(limit))
            .fetch_all(self.reads())
            .await
            .map_err(Self::map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    pub(crate) async fn contact_sessions(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(OF_CONTACT).bind(instance.as_str()).bind(contact.as_str()).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    pub(crate) async fn session_events(&self, session: SessionId) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(EVENTS_OF).bind(session.to_string()).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter().map(event_from_row).collect()
    }

    pub(crate) async fn provider_ids_since(&self, instance: &InstanceId, contact: &Contact, since: Timestamp) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(SENT_IDS).bind(instance.as_str()).bind(contact.as_str()).bind(since.as_millis()).fetch_all(self.reads()).await.map_err(Self::map_err)
    }
}

both! {
    /// Live sessions matching `filter` (even those past their expiry that the
    /// sweeper has not reached yet), longest-running first, at most `limit`.
    pub async fn live_sessions(&self, filter: &LiveFilter<'_>, limit: u32) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(Self::dialect(live!("rowid"), live!("seq")))
            .bind(filter.flow)
            .bind(filter.version.map(|version| i64::from(version.number())))
            .bind(filter.step)
            .bind(filter.instance.map(InstanceId::as_str))
            .bind(i64::from(limit))
            .fetch_all(self.reads())
            .await
            .map_err(Self::map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    /// Every session of `contact` and of its aliases (`aliases`) on every
    /// instance, newest first.
    pub async fn history_of(&self, contact: &Contact) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(Self::dialect(history!("rowid"), history!("seq")))
            .bind(contact.as_str())
            .fetch_all(self.reads())
            .await
            .map_err(Self::map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    /// Sessions of `version` in `window` that a global command ended
    /// (event detail `command:<name>`), per (step, command), ordered by step
    /// and command: where customers gave up or asked for a person.
    pub async fn commands_by_step(&self, window: &Window<'_>, version: Version) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows: Vec<(Option<String>, String, i64)> =
            bind_window!(sqlx::query_as(COMMANDS), window, version).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        Ok(rows.into_iter().map(|(step, command, count)| (step.unwrap_or_default(), command, count.max(0) as u64)).collect())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use switchyard_engine::session::Outcome;

    use super::*;
    use crate::sqlite::SqliteStore;

    /// Inserts a session row as a turn would have committed it.
    #[allow(clippy::too_many_arguments)] // reason: the row's columns, spelled out in each test
    pub(crate) async fn insert(store: &SqliteStore, instance: &str, contact: &str, flow: &str, version: i64, step: &str, started: i64, outcome: Option<Outcome>) {
        sqlx::query(
            "INSERT INTO sessions (id, instance, contact, flow, version, fingerprint, reason, step, data, attempts, turns, \
             started_at, last_input_at, expires_at, outcome, ended_at, revision) \
             VALUES (?, ?, ?, ?, ?, 'ff', 'active', ?, '{}', 0, 1, ?, ?, ?, ?, ?, 1)",
        )
        .bind(switchyard_engine::ids::SessionId::generate(switchyard_engine::time::Timestamp::from_millis(started)).to_string())
        .bind(instance)
        .bind(contact)
        .bind(flow)
        .bind(version)
        .bind(step)
        .bind(started)
        .bind(started)
        .bind(started + 1_800_000)
        .bind(outcome.map(Outcome::as_str))
        .bind(outcome.map(|_| started + 1000))
        .execute(store.writer())
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn live_sessions_are_filtered_by_flow_version_step_and_instance() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        insert(&store, "vendas", "5511900000001", "billing", 1, "ask", 1_000, None).await;
        insert(&store, "vendas", "5511900000002", "billing", 2, "ask", 2_000, None).await;
        insert(&store, "suporte", "5511900000003", "billing", 2, "confirm", 3_000, None).await;
        insert(&store, "vendas", "5511900000004", "billing", 2, "ask", 500, Some(Outcome::Completed)).await;
        let ids = |sessions: Vec<Session>| sessions.iter().map(|session| session.contact().as_str().to_owned()).collect::<Vec<_>>();

        let all = store.live_sessions(&LiveFilter::default(), 100).await.unwrap();
        assert_eq!(ids(all), ["5511900000001", "5511900000002", "5511900000003"], "live only, oldest first");
        let v2 = LiveFilter { flow: Some("billing"), version: Some(Version::new(2)), ..LiveFilter::default() };
        assert_eq!(ids(store.live_sessions(&v2, 100).await.unwrap()), ["5511900000002", "5511900000003"]);
        let step = LiveFilter { step: Some("confirm"), ..LiveFilter::default() };
        assert_eq!(ids(store.live_sessions(&step, 100).await.unwrap()), ["5511900000003"]);
        let vendas = InstanceId::parse("vendas").unwrap();
        let instance = LiveFilter { instance: Some(&vendas), version: Some(Version::new(2)), ..LiveFilter::default() };
        assert_eq!(ids(store.live_sessions(&instance, 100).await.unwrap()), ["5511900000002"]);
        assert!(store.live_sessions(&LiveFilter { flow: Some("unknown"), ..LiveFilter::default() }, 100).await.unwrap().is_empty());
        assert_eq!(store.live_sessions(&LiveFilter::default(), 1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn history_spans_instances_newest_first() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        insert(&store, "vendas", "5511900000001", "unknown", 1, "choose", 1_000, Some(Outcome::Completed)).await;
        insert(&store, "suporte", "5511900000001", "billing", 2, "ask", 5_000, None).await;
        insert(&store, "vendas", "5511900000009", "billing", 1, "ask", 3_000, None).await;
        let history = store.history_of(&Contact::parse("5511900000001").unwrap()).await.unwrap();
        let seen: Vec<(&str, &str, Option<Outcome>)> =
            history.iter().map(|session| (session.instance().as_str(), session.flow().as_str(), session.outcome())).collect();
        assert_eq!(seen, [("suporte", "billing", None), ("vendas", "unknown", Some(Outcome::Completed))]);
    }
}
