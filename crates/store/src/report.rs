//! Aggregates for per-version reports, read from the sessions table and the
//! event log, both backends; the drain view (`rollout status`). The engine's analytics module turns them into rates,
//! intervals and verdicts; this module only counts.

use switchyard_engine::analytics::VersionCounts;
use switchyard_engine::classify::Classification;
use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::session::Session;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::backend::{both, Backend};
use crate::codec::{session_columns, session_from_row, Columns};

/// Which sessions a report covers: those of `flow` started in [since, until),
/// optionally on one instance.
#[derive(Clone, Debug)]
pub struct Window<'a> {
    pub flow: &'a str,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub instance: Option<&'a InstanceId>,
    /// Only sessions resolved for this reason (`split` for an A/B population).
    pub reason: Option<&'a str>,
}

/// One version's counts in a window (the engine's analytics type, so reports
/// compute rates from exactly what was counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionAggregate {
    pub version: Version,
    pub counts: VersionCounts,
}

/// One step of a version's funnel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepAggregate {
    pub step: String,
    /// Sessions that entered the step.
    pub reached: u64,
    pub expired_here: u64,
    pub handed_off_here: u64,
    pub failed_here: u64,
    pub cancelled_here: u64,
}

/// Binds a report window's parameters in the order every report query
/// takes them, on either backend: flow, [version,] since, until, instance,
/// reason.
macro_rules! bind_window {
    ($query:expr, $window:expr $(, $version:expr)?) => {{
        let window: &$crate::report::Window<'_> = $window;
        $query
            .bind(window.flow)
            $(.bind(i64::from($version.number())))?
            .bind(window.since.map_or(i64::MIN, switchyard_engine::time::Timestamp::as_millis))
            .bind(window.until.map_or(i64::MAX, switchyard_engine::time::Timestamp::as_millis))
            .bind(window.instance.map(switchyard_engine::ids::InstanceId::as_str))
            .bind(window.reason)
    }};
}
pub(crate) use bind_window;

/// One `classified` event row (version, detail) of the window's sessions.
pub(crate) fn classification_from_row(row: &impl Columns) -> Result<(Version, Classification), StoreError> {
    let classification = Classification::decode(&row.opt_text("detail")?.unwrap_or_default())
        .map_err(|problem| StoreError::Corrupt(format!("classified event: {problem}")))?;
    Ok((row.version("version")?, classification))
}

/// One form event row (version, kind, detail) of the window's sessions.
pub(crate) fn slot_event_from_row(row: &impl Columns) -> Result<(Version, switchyard_engine::event::EventKind), StoreError> {
    let kind = switchyard_engine::event::EventKind::slot_from_detail(&row.text("kind")?, &row.opt_text("detail")?.unwrap_or_default())
        .map_err(|problem| StoreError::Corrupt(format!("slot event: {problem}")))?;
    Ok((row.version("version")?, kind))
}

/// One row of the per-version counts query.
pub(crate) fn aggregate_from_row(row: &impl Columns) -> Result<VersionAggregate, StoreError> {
    Ok(VersionAggregate {
        version: row.version("version")?,
        counts: VersionCounts {
            started: row.count("started")?,
            completed: row.count("completed")?,
            handoff: row.count("handoff")?,
            expired: row.count("expired")?,
            failed: row.count("failed")?,
            cancelled: row.count("cancelled")?,
            live: row.count("live")?,
            turns_of_finished: Vec::new(),
            completion_millis: Vec::new(),
        },
    })
}

/// Adds one finished session (version, turns, outcome, started_at,
/// ended_at) to its version's medians.
pub(crate) fn add_detail(aggregates: &mut [VersionAggregate], row: &impl Columns) -> Result<(), StoreError> {
    let version = row.version("version")?;
    let Some(aggregate) = aggregates.iter_mut().find(|aggregate| aggregate.version == version) else { return Ok(()) };
    aggregate.counts.turns_of_finished.push(u32::try_from(row.int("turns")?.max(0)).unwrap_or(u32::MAX));
    if row.opt_text("outcome")?.as_deref() == Some("completed")
        && let Some(ended) = row.opt_int("ended_at")?
    {
        aggregate.counts.completion_millis.push(ended - row.int("started_at")?);
    }
    Ok(())
}

/// Joins the funnel's two queries: sessions that reached each step, and
/// sessions that ended there by outcome.
pub(crate) fn funnel_from_rows<R: Columns>(reached: &[R], ended: &[R]) -> Result<Vec<StepAggregate>, StoreError> {
    let mut steps: Vec<StepAggregate> = Vec::new();
    for row in reached {
        steps.push(StepAggregate { step: row.opt_text("step")?.unwrap_or_default(), reached: row.count("reached")?, ..StepAggregate::default() });
    }
    for row in ended {
        let step = row.text("step")?;
        let index = match steps.iter().position(|aggregate| aggregate.step == step) {
            Some(index) => index,
            None => {
                steps.push(StepAggregate { step, ..StepAggregate::default() });
                steps.len() - 1
            }
        };
        let aggregate = &mut steps[index];
        aggregate.expired_here = row.count("expired")?;
        aggregate.handed_off_here = row.count("handoff")?;
        aggregate.failed_here = row.count("failed")?;
        aggregate.cancelled_here = row.count("cancelled")?;
    }
    Ok(steps)
}

/// A report's sessions: `flow` = `$1` [, `version` = `$2`], started in
/// [since, until), on `instance` or all, resolved for `reason` or any (the
/// order [`bind_window!`] binds them in).
macro_rules! window {
    ($s:literal, $flow:literal, $since:literal, $until:literal, $instance:literal, $reason:literal) => {
        concat!($s, "flow = ", $flow, " AND ", $s, "started_at >= ", $since, " AND ", $s, "started_at < ", $until,
                " AND (", $instance, " IS NULL OR ", $s, "instance = ", $instance, ") AND (", $reason, " IS NULL OR ", $s, "reason = ", $reason, ")")
    };
}
pub(crate) use window;

/// Outcome counts of a group of sessions, as [`aggregate_from_row`] reads them.
macro_rules! outcome_counts {
    ($s:literal) => {
        concat!("COUNT(*) AS started, COUNT(*) FILTER (WHERE ", $s, "outcome = 'completed') AS completed, \
                 COUNT(*) FILTER (WHERE ", $s, "outcome = 'handoff') AS handoff, COUNT(*) FILTER (WHERE ", $s, "outcome = 'expired') AS expired, \
                 COUNT(*) FILTER (WHERE ", $s, "outcome = 'failed') AS failed, COUNT(*) FILTER (WHERE ", $s, "outcome = 'cancelled') AS cancelled, \
                 COUNT(*) FILTER (WHERE ", $s, "outcome IS NULL) AS live")
    };
}
pub(crate) use outcome_counts;

const CLASSIFICATIONS: &str = concat!(
    "SELECT s.version AS version, e.detail AS detail FROM events e JOIN sessions s ON s.id = e.session_id \
     WHERE e.kind = 'classified' AND ",
    window!("s.", "$1", "$2", "$3", "$4", "$5"),
    " ORDER BY e.at, e.seq"
);
const SLOT_EVENTS: &str = concat!(
    "SELECT s.version AS version, e.kind AS kind, e.detail AS detail FROM events e JOIN sessions s ON s.id = e.session_id \
     WHERE e.kind IN ('slot_filled', 'slot_missed') AND ",
    window!("s.", "$1", "$2", "$3", "$4", "$5"),
    " ORDER BY e.at, e.seq"
);
const AGGREGATES: &str = concat!(
    "SELECT version, ",
    outcome_counts!(""),
    " FROM sessions WHERE ",
    window!("", "$1", "$2", "$3", "$4", "$5"),
    " GROUP BY version ORDER BY version"
);
/// The finished sessions of [`AGGREGATES`], for the medians.
const FINISHED: &str = concat!(
    "SELECT version, turns, outcome, started_at, ended_at FROM sessions WHERE ",
    window!("", "$1", "$2", "$3", "$4", "$5"),
    " AND outcome IS NOT NULL"
);
const REACHED: &str = concat!(
    "SELECT e.step AS step, COUNT(DISTINCT e.session_id) AS reached FROM events e JOIN sessions s ON s.id = e.session_id \
     WHERE e.kind = 'step_entered' AND s.version = $2 AND ",
    window!("s.", "$1", "$3", "$4", "$5", "$6"),
    " GROUP BY e.step"
);
const ENDED: &str = concat!(
    "SELECT step, COUNT(*) FILTER (WHERE outcome = 'expired') AS expired, COUNT(*) FILTER (WHERE outcome = 'handoff') AS handoff, \
     COUNT(*) FILTER (WHERE outcome = 'failed') AS failed, COUNT(*) FILTER (WHERE outcome = 'cancelled') AS cancelled \
     FROM sessions WHERE version = $2 AND ",
    window!("", "$1", "$3", "$4", "$5", "$6"),
    " AND outcome IS NOT NULL GROUP BY step"
);
/// The totals the triggers keep (sharded on PostgreSQL: summed).
const SESSION_TOTALS: &str = "SELECT flow, version, outcome, CAST(SUM(sessions) AS BIGINT) AS sessions FROM session_counts \
                              GROUP BY flow, version, outcome HAVING SUM(sessions) > 0 ORDER BY flow, version, outcome";
const MESSAGE_TOTALS: &str = "SELECT (SELECT CAST(COALESCE(SUM(value), 0) AS BIGINT) FROM counters WHERE name = 'messages_in') AS inbound, \
                              (SELECT CAST(COALESCE(SUM(value), 0) AS BIGINT) FROM counters WHERE name = 'messages_out') AS outbound";
/// The drain view: live sessions, last expiry and starts since `$1`, per
/// version of `$2`, without reading the flow's history (it counted every
/// session the flow ever had: 0.7 s on SQLite, 0.4 s on PostgreSQL at a
/// million sessions). The versions and their live counts are the counters
/// the triggers keep (`session_counts`); the recent starts a range of
/// `sessions_by_flow` per version; the last expiry a walk of the live
/// sessions' index (`sessions_due` on SQLite, from the latest expiry down to
/// the first of this flow and version; `sessions_one_live` on PostgreSQL,
/// whose `sessions_due` holds expiry buckets of the outermost sessions
/// only). SQLite, which keeps no statistics, would take
/// `sessions_by_flow` for that one (every session of the version): the `+`
/// hides flow and version from it, as in `figures::live_by_version`. $1
/// since, $2 flow; public so a test can read its plan.
macro_rules! version_status {
    ($plus:literal) => {
        concat!(
            "SELECT c.version, c.live, \
             (SELECT MAX(s.expires_at) FROM sessions s WHERE s.outcome IS NULL AND ", $plus, "s.flow = $2 AND ", $plus, "s.version = c.version) AS last_expiry, \
             (SELECT COUNT(*) FROM sessions s WHERE s.flow = $2 AND s.version = c.version AND s.started_at >= $1) AS recent \
             FROM (SELECT version, CAST(SUM(CASE WHEN outcome = 'live' THEN sessions ELSE 0 END) AS BIGINT) AS live \
             FROM session_counts WHERE flow = $2 GROUP BY version HAVING SUM(sessions) > 0) AS c ORDER BY c.version"
        )
    };
}
/// The drain view (`version_status!`) as SQLite runs it.
pub const VERSION_STATUS_SQLITE: &str = version_status!("+");
/// The drain view as PostgreSQL runs it (its planner has statistics).
pub const VERSION_STATUS_POSTGRES: &str = version_status!("");
const LIVE_OF: &str = concat!("SELECT ", session_columns!(), " FROM sessions WHERE flow = $1 AND version = $2 AND outcome IS NULL ORDER BY started_at");

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

both! {
    /// Every classification decision (`classified` events) of the window's
    /// sessions, with its version, oldest first. The caller aggregates.
    pub async fn classifications(&self, window: &Window<'_>) -> Result<Vec<(Version, Classification)>, StoreError> {
        let rows = bind_window!(sqlx::query(CLASSIFICATIONS), window).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter().map(classification_from_row).collect()
    }

    /// Every form event (`slot_filled`, `slot_missed`) of the window's
    /// sessions, with its version, oldest first. The caller aggregates.
    pub async fn slot_events(&self, window: &Window<'_>) -> Result<Vec<(Version, switchyard_engine::event::EventKind)>, StoreError> {
        let rows = bind_window!(sqlx::query(SLOT_EVENTS), window).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter().map(slot_event_from_row).collect()
    }

    /// Per-version counts, versions in ascending order.
    pub async fn version_aggregates(&self, window: &Window<'_>) -> Result<Vec<VersionAggregate>, StoreError> {
        let rows = bind_window!(sqlx::query(AGGREGATES), window).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        let mut aggregates = rows.iter().map(aggregate_from_row).collect::<Result<Vec<_>, _>>()?;
        let details = bind_window!(sqlx::query(FINISHED), window).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        for row in &details {
            add_detail(&mut aggregates, row)?;
        }
        Ok(aggregates)
    }

    /// The funnel of one version: per step, sessions that entered it and the
    /// sessions that ended there by outcome. Steps in no particular order
    /// (the caller orders them as the version declares them).
    pub async fn funnel(&self, window: &Window<'_>, version: Version) -> Result<Vec<StepAggregate>, StoreError> {
        let reached = bind_window!(sqlx::query(REACHED), window, version).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        let ended = bind_window!(sqlx::query(ENDED), window, version).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        funnel_from_rows(&reached, &ended)
    }

    /// Sessions by (flow, version, outcome or "live"), for `/metrics`: the
    /// totals the triggers keep, not a count of the table.
    pub async fn session_totals(&self) -> Result<Vec<(String, Version, String, u64)>, StoreError> {
        let rows = sqlx::query(SESSION_TOTALS).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter().map(|row| Ok((row.text("flow")?, row.version("version")?, row.text("outcome")?, row.count("sessions")?))).collect()
    }

    /// Messages in (inbox rows) and out (replies delivered), for `/metrics`.
    pub async fn message_totals(&self) -> Result<(u64, u64), StoreError> {
        let row = sqlx::query(MESSAGE_TOTALS).fetch_one(self.reads()).await.map_err(Self::map_err)?;
        Ok((row.count("inbound")?, row.count("outbound")?))
    }

    /// Live sessions and recent starts per version of `flow`.
    pub async fn version_status(&self, flow: &str, since: Timestamp) -> Result<Vec<VersionStatus>, StoreError> {
        let rows = sqlx::query(Self::dialect(VERSION_STATUS_SQLITE, VERSION_STATUS_POSTGRES)).bind(since.as_millis()).bind(flow).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter()
            .map(|row| {
                Ok(VersionStatus {
                    version: row.version("version")?,
                    live: row.opt_int("live")?.unwrap_or(0),
                    last_expiry: row.opt_int("last_expiry")?.map(Timestamp::from_millis),
                    started_recently: row.opt_int("recent")?.unwrap_or(0),
                })
            })
            .collect()
    }

    /// Every live session of `flow@version`.
    pub async fn live_sessions_of(&self, flow: &str, version: Version) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(LIVE_OF).bind(flow).bind(i64::from(version.number())).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter().map(session_from_row).collect()
    }
}
