//! The flow report's figures as a mergeable [`Tally`], and the hourly
//! rollups that keep the report fast on a big store.
//!
//! A tally holds exactly what the report needs of a set of sessions (counts
//! by outcome, the turns and completion times behind the medians, funnel
//! rows, global commands, classification and form-slot counts, split
//! starts), and two tallies of disjoint sessions merge into the tally of
//! both. The store keeps one tally per (flow, hour of session start) for
//! hours whose sessions have all finished (`report_hours`); a report merges
//! the stored hours inside its window and counts the rest (the edges, the
//! recent hours, any hour not rolled yet) from the event log, so its
//! figures are the same either way. [`refresh`] rolls up what is missing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_engine::classify::Classifier;
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_store::figures::HOUR_MILLIS;
use switchyard_store::report::Window;
use switchyard_store::Db;

/// What sessions a tally covers: `flow` started in `[since, until)` (millis), optionally on one instance.
#[derive(Clone, Copy, Debug)]
pub struct Range<'a> {
    pub flow: &'a str,
    pub since: i64,
    pub until: i64,
    pub instance: Option<&'a InstanceId>,
}

/// The figures of one version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionTally {
    pub started: u64,
    pub completed: u64,
    pub handoff: u64,
    pub expired: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub live: u64,
    /// Sessions the split assigned (reason `split`), for the sample-ratio check.
    pub split_started: u64,
    /// Finished sessions by customer turns.
    pub turns: BTreeMap<u32, u64>,
    /// Start-to-completion times of completed sessions, milliseconds.
    pub completion_millis: Vec<i64>,
    /// Per step: sessions that reached it, and those that ended there by outcome.
    pub funnel: BTreeMap<String, StepTally>,
    /// Per (step, command): sessions a global command ended there.
    pub commands: BTreeMap<String, BTreeMap<String, u64>>,
    pub classification: ClassificationTally,
    /// Per slot.
    pub slots: BTreeMap<String, crate::views::flow::SlotFigures>,
}

/// One funnel step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTally {
    pub reached: u64,
    pub expired: u64,
    pub handoff: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// Classification counts; latencies kept whole for the percentiles.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassificationTally {
    pub decisions: u64,
    pub by_keyword: u64,
    pub by_trained: u64,
    pub by_model: u64,
    pub model_calls: u64,
    pub cache_hits: u64,
    pub failures: BTreeMap<String, u64>,
    pub latencies_ms: Vec<u64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// The figures of a set of sessions, per version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub versions: BTreeMap<u32, VersionTally>,
}

fn add_map<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (key, count) in from {
        *into.entry(key.clone()).or_default() += count;
    }
}

impl Tally {
    /// Adds the figures of other sessions (disjoint from these).
    pub fn merge(&mut self, other: &Tally) {
        for (number, theirs) in &other.versions {
            let ours = self.versions.entry(*number).or_default();
            ours.started += theirs.started;
            ours.completed += theirs.completed;
            ours.handoff += theirs.handoff;
            ours.expired += theirs.expired;
            ours.failed += theirs.failed;
            ours.cancelled += theirs.cancelled;
            ours.live += theirs.live;
            ours.split_started += theirs.split_started;
            add_map(&mut ours.turns, &theirs.turns);
            ours.completion_millis.extend_from_slice(&theirs.completion_millis);
            for (step, row) in &theirs.funnel {
                let mine = ours.funnel.entry(step.clone()).or_default();
                mine.reached += row.reached;
                mine.expired += row.expired;
                mine.handoff += row.handoff;
                mine.failed += row.failed;
                mine.cancelled += row.cancelled;
            }
            for (step, commands) in &theirs.commands {
                add_map(ours.commands.entry(step.clone()).or_default(), commands);
            }
            let (mine, yours) = (&mut ours.classification, &theirs.classification);
            mine.decisions += yours.decisions;
            mine.by_keyword += yours.by_keyword;
            mine.by_trained += yours.by_trained;
            mine.by_model += yours.by_model;
            mine.model_calls += yours.model_calls;
            mine.cache_hits += yours.cache_hits;
            add_map(&mut mine.failures, &yours.failures);
            mine.latencies_ms.extend_from_slice(&yours.latencies_ms);
            mine.prompt_tokens += yours.prompt_tokens;
            mine.completion_tokens += yours.completion_tokens;
            for (slot, figures) in &theirs.slots {
                let mine = ours.slots.entry(slot.clone()).or_default();
                mine.filled += figures.filled;
                mine.on_entering += figures.on_entering;
                mine.missed += figures.missed;
                add_map(&mut mine.by_source, &figures.by_source);
                add_map(&mut mine.missed_by_reason, &figures.missed_by_reason);
            }
        }
    }
}

/// Counts the tally of `range` from the sessions and the event log.
pub async fn count(store: &Db, range: Range<'_>) -> Result<Tally, StoreError> {
    let window = Window {
        flow: range.flow,
        since: Some(Timestamp::from_millis(range.since)),
        until: Some(Timestamp::from_millis(range.until)),
        instance: range.instance,
        reason: None,
    };
    let mut tally = Tally::default();
    for aggregate in store.version_aggregates(&window).await? {
        let counts = aggregate.counts;
        let version = tally.versions.entry(aggregate.version.number()).or_default();
        version.started = counts.started;
        version.completed = counts.completed;
        version.handoff = counts.handoff;
        version.expired = counts.expired;
        version.failed = counts.failed;
        version.cancelled = counts.cancelled;
        version.live = counts.live;
        for turns in counts.turns_of_finished {
            *version.turns.entry(turns).or_default() += 1;
        }
        version.completion_millis = counts.completion_millis;
    }
    let split = Window { reason: Some("split"), ..window.clone() };
    for aggregate in store.version_aggregates(&split).await? {
        tally.versions.entry(aggregate.version.number()).or_default().split_started = aggregate.counts.started;
    }
    let numbers: Vec<u32> = tally.versions.keys().copied().collect();
    for number in numbers {
        let version = Version::new(number);
        let funnel = store.funnel(&window, version).await?;
        let commands = store.commands_by_step(&window, version).await?;
        let entry = tally.versions.entry(number).or_default();
        for step in funnel {
            entry.funnel.insert(
                step.step,
                StepTally {
                    reached: step.reached,
                    expired: step.expired_here,
                    handoff: step.handed_off_here,
                    failed: step.failed_here,
                    cancelled: step.cancelled_here,
                },
            );
        }
        for (step, command, n) in commands {
            *entry.commands.entry(step).or_default().entry(command).or_default() += n;
        }
    }
    for (version, decision) in store.classifications(&window).await? {
        let c = &mut tally.versions.entry(version.number()).or_default().classification;
        c.decisions += 1;
        match decision.classifier {
            Classifier::Keyword => c.by_keyword += 1,
            Classifier::Trained => c.by_trained += 1,
            Classifier::Model => c.by_model += 1,
        }
        if let Some(fallback) = &decision.fallback {
            *c.failures.entry(fallback.clone()).or_default() += 1;
        }
        if let Some(usage) = &decision.usage {
            if usage.cached {
                c.cache_hits += 1;
            } else {
                c.model_calls += 1;
                c.latencies_ms.push(usage.latency_ms);
            }
            c.prompt_tokens += usage.prompt_tokens;
            c.completion_tokens += usage.completion_tokens;
        }
    }
    let slot_events: Vec<(Version, EventKind)> = store.slot_events(&window).await?;
    let mut by_version: BTreeMap<u32, Vec<&EventKind>> = BTreeMap::new();
    for (version, event) in &slot_events {
        by_version.entry(version.number()).or_default().push(event);
    }
    for (number, events) in by_version {
        tally.versions.entry(number).or_default().slots = crate::views::flow::SlotFigures::of(events);
    }
    Ok(tally)
}

/// The tally of `range`: stored hours inside it merged, the rest counted.
/// With an instance, everything is counted (rollups are per flow).
pub async fn tally(store: &Db, range: Range<'_>) -> Result<Tally, StoreError> {
    if range.instance.is_some() || range.until <= range.since {
        return count(store, range).await;
    }
    // Full hours inside the window; the ragged edges are counted.
    let first_hour = range.since.div_euclid(HOUR_MILLIS) + i64::from(range.since.rem_euclid(HOUR_MILLIS) != 0);
    let end_hour = range.until.div_euclid(HOUR_MILLIS);
    let stored = if first_hour < end_hour { store.report_hours(range.flow, first_hour, end_hour).await? } else { Vec::new() };
    let mut tally = Tally::default();
    let mut cursor = range.since;
    for (hour, json) in stored {
        let hour_tally: Tally = serde_json::from_str(&json).map_err(|err| StoreError::Corrupt(format!("report_hours {}: {err}", range.flow)))?;
        let start = hour * HOUR_MILLIS;
        if cursor < start {
            tally.merge(&count(store, Range { since: cursor, until: start, ..range }).await?);
        }
        tally.merge(&hour_tally);
        cursor = start + HOUR_MILLIS;
    }
    if cursor < range.until {
        tally.merge(&count(store, Range { since: cursor, until: range.until, ..range }).await?);
    }
    Ok(tally)
}

/// Rolls up the hours of `flow` that ended before `now` (less a margin for
/// clocks), have no live session and no rollup yet, at most `limit` of them,
/// oldest first. Returns how many it stored.
pub async fn refresh(store: &Db, flow: &str, now: Timestamp, limit: usize) -> Result<usize, StoreError> {
    const MARGIN_MILLIS: i64 = 5 * 60 * 1000;
    let Some(first) = store.first_start(flow).await? else { return Ok(0) };
    let (from_hour, to_hour) = (first.as_millis().div_euclid(HOUR_MILLIS), (now.as_millis() - MARGIN_MILLIS).div_euclid(HOUR_MILLIS));
    if from_hour >= to_hour {
        return Ok(0);
    }
    let rolled: std::collections::BTreeSet<i64> = store.rolled_hours(flow, from_hour, to_hour).await?.into_iter().collect();
    let live: std::collections::BTreeSet<i64> = store.live_hours(flow).await?.into_iter().collect();
    let mut stored = 0;
    for hour in (from_hour..to_hour).filter(|hour| !rolled.contains(hour) && !live.contains(hour)).take(limit) {
        let tally = count(store, Range { flow, since: hour * HOUR_MILLIS, until: (hour + 1) * HOUR_MILLIS, instance: None }).await?;
        let json = serde_json::to_string(&tally).map_err(|err| StoreError::Other(format!("rollup as JSON: {err}")))?;
        stored += usize::from(store.save_report_hour(flow, hour, &json).await?);
    }
    Ok(stored)
}
