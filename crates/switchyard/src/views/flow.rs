//! One flow's report (`switchyard report`, `GET /api/report`, the console's
//! flow page): per-version counts and rates with 95% Wilson intervals, the
//! funnel with drop-off per step and the global commands used there, who
//! classified and what the model cost, where form slots came from, the A/B
//! comparison with its verdict, and the sample-ratio check of a split.
//!
//! Counting is the store's job; the statistics are the engine's
//! (`switchyard_engine::analytics`); this module joins them into
//! [`FlowReport`] and writes the sentences people read.

use std::collections::BTreeMap;

use serde::Serialize;
use switchyard_engine::analytics::{self, compare, Rate, TwoProportion, VersionCounts, VersionReport};
use switchyard_engine::classify::{Classification, Classifier};
use switchyard_engine::engine::Engine;
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_store::Db;

use super::rollup::{ClassificationTally, Range, StepTally, Tally, VersionTally};
use super::{rfc3339_opt, version_text};

/// What a report covers.
#[derive(Clone, Debug, Default)]
pub struct ReportQuery {
    pub versions: Option<Vec<Version>>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub instance: Option<InstanceId>,
    /// Finished sessions per version before a winner may be named.
    pub min_finished: u64,
}

/// The whole report of one flow.
#[derive(Clone, Debug, Serialize)]
pub struct FlowReport {
    pub flow: String,
    #[serde(serialize_with = "rfc3339_opt")]
    pub since: Option<Timestamp>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub until: Option<Timestamp>,
    pub instance: Option<String>,
    pub min_finished: u64,
    /// Versions with sessions in the window (and those asked for), in order.
    pub versions: Vec<VersionFigures>,
    /// The first two versions compared; `None` with fewer than two.
    pub comparison: Option<ComparisonFigures>,
    /// The split's served sessions against its weights; `None` without a split.
    pub sample_ratio: Option<SampleRatioFigures>,
}

/// One version's figures in the window.
#[derive(Clone, Debug, Serialize)]
pub struct VersionFigures {
    #[serde(serialize_with = "version_text")]
    pub version: Version,
    /// `None` when the version is not compiled into this binary.
    pub fingerprint: Option<String>,
    pub started: u64,
    pub completed: u64,
    pub handoff: u64,
    pub expired: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub live: u64,
    pub finished: u64,
    pub completion_rate: RateFigure,
    pub handoff_rate: RateFigure,
    pub expiry_rate: RateFigure,
    pub failure_rate: RateFigure,
    /// Median customer turns of finished sessions.
    pub median_turns: Option<f64>,
    /// Median start-to-completion time of completed sessions.
    pub median_completion_seconds: Option<f64>,
    /// Steps in the order the version declares them; unknown ones last.
    pub funnel: Vec<FunnelStepFigures>,
    pub classification: ClassificationFigures,
    /// Per form slot.
    pub slots: BTreeMap<String, SlotFigures>,
    /// Contacts held for a person from this version's sessions.
    pub holds: HoldsFigures,
}

/// Holds that started in the window from a version's sessions: handed off by
/// the bot or taken over by an agent, how they ended, and the time on hold
/// (of holds that ended).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct HoldsFigures {
    pub handoffs: u64,
    pub takeovers: u64,
    /// Given back by a resolved Chatwoot conversation.
    pub returned: u64,
    /// Released by the CLI or the admin API.
    pub released: u64,
    /// Ended by `HANDOFF_TTL`.
    pub expired: u64,
    pub on_hold_seconds: f64,
}

impl From<switchyard_store::holds::HoldFigures> for HoldsFigures {
    fn from(figures: switchyard_store::holds::HoldFigures) -> HoldsFigures {
        HoldsFigures {
            handoffs: figures.handoffs,
            takeovers: figures.takeovers,
            returned: figures.returned,
            released: figures.released,
            expired: figures.expired,
            on_hold_seconds: figures.held_millis as f64 / 1000.0,
        }
    }
}

/// A proportion with its 95% Wilson interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RateFigure {
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub successes: u64,
    pub trials: u64,
}

impl From<Rate> for RateFigure {
    fn from(rate: Rate) -> RateFigure {
        RateFigure { value: rate.value, low: rate.low, high: rate.high, successes: rate.successes, trials: rate.trials }
    }
}

/// One funnel step of a version.
#[derive(Clone, Debug, Serialize)]
pub struct FunnelStepFigures {
    pub step: String,
    /// Sessions that entered the step.
    pub reached: u64,
    pub expired_here: u64,
    pub handed_off_here: u64,
    pub failed_here: u64,
    pub cancelled_here: u64,
    /// Ended here without completing (the four above).
    pub lost_here: u64,
    /// `lost_here` over `reached`, with its interval.
    pub drop_off: RateFigure,
    /// Of those, ended by a global command (menu, exit, human), by command.
    pub commands_here: BTreeMap<String, u64>,
}

/// Who decided a version's classifications, and what the model cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ClassificationFigures {
    pub decisions: u64,
    pub by_keyword: u64,
    pub by_trained: u64,
    pub by_model: u64,
    /// Model calls that reached the provider (cache hits apart).
    pub model_calls: u64,
    pub cache_hits: u64,
    pub model_failures: u64,
    /// Failures by reason.
    pub failures: BTreeMap<String, u64>,
    pub latency_ms_p50: Option<u64>,
    pub latency_ms_p95: Option<u64>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl ClassificationFigures {
    /// Aggregates decisions: by classifier, model calls (cache hits apart),
    /// failures by reason, latency percentiles and tokens.
    pub fn of<'a>(decisions: impl IntoIterator<Item = &'a Classification>) -> ClassificationFigures {
        let mut figures = ClassificationFigures::default();
        let mut latencies: Vec<u64> = Vec::new();
        for decision in decisions {
            figures.decisions += 1;
            match decision.classifier {
                Classifier::Keyword => figures.by_keyword += 1,
                Classifier::Trained => figures.by_trained += 1,
                Classifier::Model => figures.by_model += 1,
            }
            if let Some(fallback) = &decision.fallback {
                *figures.failures.entry(fallback.as_str().to_owned()).or_default() += 1;
            }
            if let Some(usage) = &decision.usage {
                if usage.cached {
                    figures.cache_hits += 1;
                } else {
                    figures.model_calls += 1;
                    latencies.push(usage.latency_ms);
                }
                figures.prompt_tokens += usage.prompt_tokens;
                figures.completion_tokens += usage.completion_tokens;
            }
        }
        figures.model_failures = figures.failures.values().sum();
        latencies.sort_unstable();
        let percentile = |p: f64| (!latencies.is_empty()).then(|| latencies[((latencies.len() - 1) as f64 * p).round() as usize]);
        figures.latency_ms_p50 = percentile(0.5);
        figures.latency_ms_p95 = percentile(0.95);
        figures
    }
}

/// Where one form slot's values came from and where customers got stuck.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct SlotFigures {
    pub filled: u64,
    /// Fills by source.
    pub by_source: BTreeMap<String, u64>,
    /// Fills from the message that led to the form.
    pub on_entering: u64,
    pub missed: u64,
    /// Misses by reason (`nothing`, or the refusal's text key).
    pub missed_by_reason: BTreeMap<String, u64>,
}

impl SlotFigures {
    /// Per slot, from form events (`slot_filled`, `slot_missed`); other events are ignored.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a EventKind>) -> BTreeMap<String, SlotFigures> {
        let mut slots: BTreeMap<String, SlotFigures> = BTreeMap::new();
        for event in events {
            match event {
                EventKind::SlotFilled { slot, source, entering } => {
                    let figures = slots.entry(slot.clone()).or_default();
                    figures.filled += 1;
                    *figures.by_source.entry(source.as_str().to_owned()).or_default() += 1;
                    figures.on_entering += u64::from(*entering);
                }
                EventKind::SlotMissed { slot, reason } => {
                    let figures = slots.entry(slot.clone()).or_default();
                    figures.missed += 1;
                    *figures.missed_by_reason.entry(reason.as_str().to_owned()).or_default() += 1;
                }
                _ => {}
            }
        }
        slots
    }
}

/// A difference of two proportions (candidate minus baseline).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct DifferenceFigures {
    pub difference: f64,
    /// The 95% Newcombe interval of the difference.
    pub low: f64,
    pub high: f64,
    pub z: f64,
    pub p_value: f64,
}

impl From<&TwoProportion> for DifferenceFigures {
    fn from(two: &TwoProportion) -> DifferenceFigures {
        DifferenceFigures { difference: two.difference, low: two.low, high: two.high, z: two.z, p_value: two.p_value }
    }
}

/// The first two versions compared on completion and handoff.
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonFigures {
    #[serde(serialize_with = "version_text")]
    pub baseline: Version,
    #[serde(serialize_with = "version_text")]
    pub candidate: Version,
    pub completion: DifferenceFigures,
    pub handoff: DifferenceFigures,
    /// Both versions have `min_finished` finished sessions.
    pub enough: bool,
    pub needed_more: u64,
    /// The plain-English verdict.
    pub verdict: String,
    /// The comparison itself, for a renderer that words the verdict in
    /// another language (the console); not serialised.
    #[serde(skip)]
    pub outcome: analytics::Comparison,
}

/// The sessions a split served against its weights (Pearson's chi-square).
#[derive(Clone, Debug, Serialize)]
pub struct SampleRatioFigures {
    pub observed: Vec<SplitShare>,
    /// `null` in JSON when infinite (traffic to a version weighted 0).
    pub chi_square: f64,
    pub degrees_of_freedom: u32,
    pub p_value: f64,
    /// `p_value < 0.001`: distrust the comparison.
    pub mismatch: bool,
}

/// One version of a split: its weight and the sessions it was served.
#[derive(Clone, Debug, Serialize)]
pub struct SplitShare {
    #[serde(serialize_with = "version_text")]
    pub version: Version,
    /// The weight as configured (`50`, `12.5`).
    pub weight: String,
    pub sessions: u64,
}

/// The report of `flow` over `query`: stored hourly rollups merged where
/// they cover the window, the rest counted from the event log
/// ([`super::rollup::tally`]).
pub async fn flow_report(store: &Db, engine: &Engine, flow: &str, query: &ReportQuery) -> Result<FlowReport, StoreError> {
    let range = Range {
        flow,
        since: query.since.map_or(i64::MIN, Timestamp::as_millis),
        until: query.until.map_or(i64::MAX, Timestamp::as_millis),
        instance: query.instance.as_ref(),
    };
    let tally = super::rollup::tally(store, range).await?;
    let mut numbers: Vec<u32> = tally
        .versions
        .iter()
        .filter(|(_, version)| version.started > 0)
        .map(|(number, _)| *number)
        .filter(|number| query.versions.as_ref().is_none_or(|versions| versions.contains(&Version::new(*number))))
        .collect();
    // Versions asked for but without sessions still appear, with zeros.
    if let Some(versions) = &query.versions {
        for version in versions {
            if !numbers.contains(&version.number()) {
                numbers.push(version.number());
            }
        }
        numbers.sort_by_key(|number| versions.iter().position(|v| v.number() == *number));
    }
    let empty = VersionTally::default();
    let instance = query.instance.as_ref().map(InstanceId::as_str);
    let holds = store.hold_figures_of(flow, instance, Timestamp::from_millis(range.since), Timestamp::from_millis(range.until), Timestamp::now_utc()).await?;
    let registry = engine.registry();
    let mut reports = Vec::new();
    let mut versions = Vec::new();
    for number in numbers {
        let version = Version::new(number);
        let counted = tally.versions.get(&number).unwrap_or(&empty);
        let mut report = VersionReport::new(
            version,
            VersionCounts {
                started: counted.started,
                completed: counted.completed,
                handoff: counted.handoff,
                expired: counted.expired,
                failed: counted.failed,
                cancelled: counted.cancelled,
                live: counted.live,
                turns_of_finished: Vec::new(),
                completion_millis: Vec::new(),
            },
        );
        report.median_turns = median_of_counts(&counted.turns);
        report.median_completion_millis = median_of(counted.completion_millis.clone());
        let mut funnel: Vec<FunnelStepFigures> = counted.funnel.iter().map(|(step, row)| funnel_step(step, row, counted.commands.get(step))).collect();
        // Steps in the order the version declares them; unknown ones last.
        if let Some(compiled) = registry.get(flow, version) {
            funnel.sort_by_key(|step| compiled.steps().iter().position(|declared| declared.id == step.step).unwrap_or(usize::MAX));
        }
        let fingerprint = registry.get(flow, version).map(|fv| fv.fingerprint().as_str().to_owned());
        let held = holds.get(&number).copied().unwrap_or_default().into();
        versions.push(version_figures(&report, fingerprint, funnel, classification(&counted.classification), counted.slots.clone(), held));
        reports.push(report);
    }

    let comparison = match reports.as_slice() {
        [baseline, candidate, ..] => {
            let comparison = compare(baseline, candidate, query.min_finished);
            Some(ComparisonFigures {
                baseline: comparison.baseline,
                candidate: comparison.candidate,
                completion: (&comparison.completion).into(),
                handoff: (&comparison.handoff).into(),
                enough: comparison.enough,
                needed_more: comparison.needed_more,
                verdict: super::verdict::sentence(&comparison, crate::ui::i18n::Lang::En),
                outcome: comparison,
            })
        }
        _ => None,
    };

    Ok(FlowReport {
        flow: flow.to_owned(),
        since: query.since,
        until: query.until,
        instance: query.instance.as_ref().map(|instance| instance.as_str().to_owned()),
        min_finished: query.min_finished,
        versions,
        comparison,
        sample_ratio: sample_ratio(store, flow, &tally).await?,
    })
}

/// The median of values given as (value, how many): the middle one, or the
/// mean of the two middle ones for an even count.
fn median_of_counts(counts: &BTreeMap<u32, u64>) -> Option<f64> {
    let total: u64 = counts.values().sum();
    if total == 0 {
        return None;
    }
    let nth = |n: u64| {
        let mut seen = 0;
        counts.iter().find_map(|(value, count)| {
            seen += count;
            (seen > n).then_some(f64::from(*value))
        })
    };
    let (below, above) = (nth((total - 1) / 2)?, nth(total / 2)?);
    Some(below + (above - below) / 2.0)
}

/// The median of some values; the mean of the two middle ones for an even count.
fn median_of(mut values: Vec<i64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let (below, above) = (values[(values.len() - 1) / 2] as f64, values[values.len() / 2] as f64);
    Some(below + (above - below) / 2.0)
}

fn classification(tally: &ClassificationTally) -> ClassificationFigures {
    let mut latencies = tally.latencies_ms.clone();
    latencies.sort_unstable();
    let percentile = |p: f64| (!latencies.is_empty()).then(|| latencies[((latencies.len() - 1) as f64 * p).round() as usize]);
    ClassificationFigures {
        decisions: tally.decisions,
        by_keyword: tally.by_keyword,
        by_trained: tally.by_trained,
        by_model: tally.by_model,
        model_calls: tally.model_calls,
        cache_hits: tally.cache_hits,
        model_failures: tally.failures.values().sum(),
        failures: tally.failures.clone(),
        latency_ms_p50: percentile(0.5),
        latency_ms_p95: percentile(0.95),
        prompt_tokens: tally.prompt_tokens,
        completion_tokens: tally.completion_tokens,
    }
}

fn version_figures(
    report: &VersionReport,
    fingerprint: Option<String>,
    funnel: Vec<FunnelStepFigures>,
    classification: ClassificationFigures,
    slots: BTreeMap<String, SlotFigures>,
    holds: HoldsFigures,
) -> VersionFigures {
    let counts = &report.counts;
    VersionFigures {
        version: report.version,
        fingerprint,
        started: counts.started,
        completed: counts.completed,
        handoff: counts.handoff,
        expired: counts.expired,
        failed: counts.failed,
        cancelled: counts.cancelled,
        live: counts.live,
        finished: counts.finished(),
        completion_rate: report.completion.into(),
        handoff_rate: report.handoff.into(),
        expiry_rate: report.expiry.into(),
        failure_rate: report.failure.into(),
        median_turns: report.median_turns,
        median_completion_seconds: report.median_completion_millis.map(|millis| millis / 1000.0),
        funnel,
        classification,
        slots,
        holds,
    }
}

fn funnel_step(step: &str, row: &StepTally, commands: Option<&BTreeMap<String, u64>>) -> FunnelStepFigures {
    let engine_step = analytics::FunnelStep {
        step: step.to_owned(),
        reached: row.reached,
        expired_here: row.expired,
        handed_off_here: row.handoff,
        failed_here: row.failed,
        cancelled_here: row.cancelled,
    };
    FunnelStepFigures {
        step: step.to_owned(),
        reached: row.reached,
        expired_here: row.expired,
        handed_off_here: row.handoff,
        failed_here: row.failed,
        cancelled_here: row.cancelled,
        lost_here: engine_step.lost_here(),
        drop_off: engine_step.drop_off().into(),
        commands_here: commands.cloned().unwrap_or_default(),
    }
}

/// Sample-ratio mismatch: the split's draws against its weights. Not
/// checked once the split's guard has rolled it back: the weights now (the
/// candidate at 0%) are not the ones that assigned its sessions, and every
/// rollback would read as a mismatch.
async fn sample_ratio(store: &Db, flow: &str, tally: &Tally) -> Result<Option<SampleRatioFigures>, StoreError> {
    let (rules, _) = store.load_policy().await?;
    let Some(split) = rules.get(flow).and_then(|rules| rules.split.clone()) else { return Ok(None) };
    if split.guard.as_ref().is_some_and(|guard| guard.tripped.is_some()) {
        return Ok(None);
    }
    // Only the draws made at these weights: since they were set (a ramp drew
    // its earlier sessions at other odds), and not the contacts the split's
    // memory kept on an earlier draw. A split stored before the mark existed
    // is compared over the report's window, as before.
    let observed: Vec<u64> = match split.weights_after_event {
        Some(mark) => {
            let drawn = store.split_draws(flow, mark).await?;
            split.weights.iter().map(|(version, _)| drawn.iter().find(|(number, _)| *number == version.number()).map_or(0, |(_, count)| *count)).collect()
        }
        None => split.weights.iter().map(|(version, _)| tally.versions.get(&version.number()).map_or(0, |counted| counted.split_started)).collect(),
    };
    let weights: Vec<f64> = split.weights.iter().map(|(_, weight)| f64::from(weight.hundredths()) / 100.0).collect();
    Ok(analytics::sample_ratio(&observed, &weights).map(|srm| SampleRatioFigures {
        observed: split
            .weights
            .iter()
            .zip(&observed)
            .map(|((version, weight), sessions)| SplitShare { version: *version, weight: weight.to_string(), sessions: *sessions })
            .collect(),
        chi_square: srm.chi_square,
        degrees_of_freedom: srm.degrees_of_freedom,
        p_value: srm.p_value,
        mismatch: srm.mismatch,
    }))
}
