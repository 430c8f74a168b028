//! Aggregates for per-version reports, read from the sessions table and the
//! event log (SQLite). The engine's analytics module turns them into rates,
//! intervals and verdicts; this module only counts.

use sqlx::Row;
use switchyard_engine::analytics::VersionCounts;
use switchyard_engine::classify::Classification;
use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::codec::Columns;
use crate::sqlite::{map_err, SqliteStore};

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

impl SqliteStore {
    /// Every classification decision (`classified` events) of the window's
    /// sessions, with its version, oldest first. The caller aggregates.
    pub async fn classifications(&self, window: &Window<'_>) -> Result<Vec<(Version, Classification)>, StoreError> {
        let rows = crate::report::bind_window!(sqlx::query(
            "SELECT s.version AS version, e.detail AS detail FROM events e JOIN sessions s ON s.id = e.session_id \
             WHERE e.kind = 'classified' AND s.flow = ?1 AND s.started_at >= ?2 AND s.started_at < ?3 \
             AND (?4 IS NULL OR s.instance = ?4) AND (?5 IS NULL OR s.reason = ?5) ORDER BY e.at",
        ), window)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        rows.iter().map(classification_from_row).collect()
    }

    /// Every form event (`slot_filled`, `slot_missed`) of the window's
    /// sessions, with its version, oldest first. The caller aggregates.
    pub async fn slot_events(&self, window: &Window<'_>) -> Result<Vec<(Version, switchyard_engine::event::EventKind)>, StoreError> {
        let rows = crate::report::bind_window!(sqlx::query(
            "SELECT s.version AS version, e.kind AS kind, e.detail AS detail FROM events e JOIN sessions s ON s.id = e.session_id \
             WHERE e.kind IN ('slot_filled', 'slot_missed') AND s.flow = ?1 AND s.started_at >= ?2 AND s.started_at < ?3 \
             AND (?4 IS NULL OR s.instance = ?4) AND (?5 IS NULL OR s.reason = ?5) ORDER BY e.at",
        ), window)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        rows.iter().map(slot_event_from_row).collect()
    }

    /// Per-version counts, versions in ascending order.
    pub async fn version_aggregates(&self, window: &Window<'_>) -> Result<Vec<VersionAggregate>, StoreError> {
        let rows = crate::report::bind_window!(sqlx::query(
            "SELECT version, COUNT(*) AS started, SUM(outcome = 'completed') AS completed, SUM(outcome = 'handoff') AS handoff, \
             SUM(outcome = 'expired') AS expired, SUM(outcome = 'failed') AS failed, SUM(outcome = 'cancelled') AS cancelled, \
             SUM(outcome IS NULL) AS live FROM sessions \
             WHERE flow = ?1 AND started_at >= ?2 AND started_at < ?3 AND (?4 IS NULL OR instance = ?4) AND (?5 IS NULL OR reason = ?5) \
             GROUP BY version ORDER BY version",
        ), window)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        let mut aggregates = rows.iter().map(aggregate_from_row).collect::<Result<Vec<_>, _>>()?;
        let details = crate::report::bind_window!(sqlx::query(
            "SELECT version, turns, outcome, started_at, ended_at FROM sessions \
             WHERE flow = ?1 AND started_at >= ?2 AND started_at < ?3 AND (?4 IS NULL OR instance = ?4) AND (?5 IS NULL OR reason = ?5) AND outcome IS NOT NULL",
        ), window)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        for row in &details {
            add_detail(&mut aggregates, row)?;
        }
        Ok(aggregates)
    }

    /// The funnel of one version: per step, sessions that entered it and the
    /// sessions that ended there by outcome. Steps in no particular order
    /// (the caller orders them as the version declares them).
    pub async fn funnel(&self, window: &Window<'_>, version: Version) -> Result<Vec<StepAggregate>, StoreError> {
        let reached = crate::report::bind_window!(sqlx::query(
            "SELECT e.step AS step, COUNT(DISTINCT e.session_id) AS reached FROM events e JOIN sessions s ON s.id = e.session_id \
             WHERE e.kind = 'step_entered' AND s.flow = ?1 AND s.version = ?2 AND s.started_at >= ?3 AND s.started_at < ?4 \
             AND (?5 IS NULL OR s.instance = ?5) AND (?6 IS NULL OR s.reason = ?6) GROUP BY e.step",
        ), window, version)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        let ended = crate::report::bind_window!(sqlx::query(
            "SELECT step, SUM(outcome = 'expired') AS expired, SUM(outcome = 'handoff') AS handoff, SUM(outcome = 'failed') AS failed, \
             SUM(outcome = 'cancelled') AS cancelled FROM sessions \
             WHERE flow = ?1 AND version = ?2 AND started_at >= ?3 AND started_at < ?4 AND (?5 IS NULL OR instance = ?5) \
             AND (?6 IS NULL OR reason = ?6) AND outcome IS NOT NULL GROUP BY step",
        ), window, version)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        funnel_from_rows(&reached, &ended)
    }

    /// Sessions by (flow, version, outcome or "live"), for `/metrics`: the
    /// totals the triggers keep (migration 0008), not a count of the table.
    pub async fn session_totals(&self) -> Result<Vec<(String, Version, String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT flow, version, outcome, sessions FROM session_counts WHERE sessions > 0 ORDER BY flow, version, outcome",
        )
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let version: i64 = row.try_get("version").map_err(map_err)?;
                Ok((
                    row.try_get("flow").map_err(map_err)?,
                    Version::new(u32::try_from(version).map_err(|err| StoreError::Corrupt(err.to_string()))?),
                    row.try_get("outcome").map_err(map_err)?,
                    row.count("sessions")?,
                ))
            })
            .collect()
    }

    /// Messages in (inbox rows) and out (replies delivered), for `/metrics`.
    pub async fn message_totals(&self) -> Result<(u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT value FROM counters WHERE name = 'messages_in') AS inbound, \
             (SELECT value FROM counters WHERE name = 'messages_out') AS outbound",
        )
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        Ok((row.count("inbound")?, row.count("outbound")?))
    }
}
