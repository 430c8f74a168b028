//! Per-version reports and A/B comparisons (`switchyard report`, `GET
//! /api/report`), and the guard evaluator `serve` runs periodically.
//!
//! Counting is the store's job (`switchyard_store::report`); the statistics
//! are the engine's (`switchyard_engine::analytics`). This module joins them
//! and shapes the JSON both the CLI and the API print.

use switchyard_engine::classify::{Classification, Classifier};
use serde_json::{json, Value};
use switchyard_engine::analytics::{self, compare, guard_decision, Guard, Metric, Rate, VersionCounts, VersionReport};
use switchyard_engine::engine::Engine;
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::rollout::{FlowRules, GuardTrip, Weight};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::AuditRecord;
use switchyard_store::report::{VersionAggregate, Window};
use switchyard_store::Db;

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

fn rate_json(rate: &Rate) -> Value {
    json!({ "value": rate.value, "low": rate.low, "high": rate.high, "successes": rate.successes, "trials": rate.trials })
}

/// The whole report as JSON.
/// Who decided a version's classifications, and what the model cost:
/// decisions by classifier, model calls (cache hits apart), failures by
/// reason, latency and tokens.
pub fn classification_json(decisions: &[&Classification]) -> Value {
    let mut by_keyword = 0u64;
    let mut by_model = 0u64;
    let mut by_trained = 0u64;
    let mut calls = 0u64;
    let mut cached = 0u64;
    let mut latencies: Vec<u64> = Vec::new();
    let mut prompt_tokens = 0u64;
    let mut completion_tokens = 0u64;
    let mut failures: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for decision in decisions {
        match decision.classifier {
            Classifier::Keyword => by_keyword += 1,
            Classifier::Trained => by_trained += 1,
            Classifier::Model => by_model += 1,
        }
        if let Some(fallback) = &decision.fallback {
            *failures.entry(fallback.as_str()).or_default() += 1;
        }
        if let Some(usage) = &decision.usage {
            if usage.cached {
                cached += 1;
            } else {
                calls += 1;
                latencies.push(usage.latency_ms);
            }
            prompt_tokens += usage.prompt_tokens;
            completion_tokens += usage.completion_tokens;
        }
    }
    latencies.sort_unstable();
    let percentile = |p: f64| (!latencies.is_empty()).then(|| latencies[((latencies.len() - 1) as f64 * p).round() as usize]);
    json!({
        "decisions": decisions.len(), "by_keyword": by_keyword, "by_trained": by_trained, "by_model": by_model,
        "model_calls": calls, "cache_hits": cached, "model_failures": failures.values().sum::<u64>(), "failures": failures,
        "latency_ms_p50": percentile(0.5), "latency_ms_p95": percentile(0.95),
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
    })
}

/// Where a version's form slots came from and where customers got stuck:
/// per slot, fills by source (and how many from the message that led to the
/// form), and misses by reason (`nothing`, or the refusal's text key).
pub fn slots_json(events: &[&EventKind]) -> Value {
    let mut slots: std::collections::BTreeMap<&str, (std::collections::BTreeMap<&str, u64>, u64, std::collections::BTreeMap<&str, u64>)> =
        std::collections::BTreeMap::new();
    for event in events {
        match event {
            EventKind::SlotFilled { slot, source, entering } => {
                let entry = slots.entry(slot.as_str()).or_default();
                *entry.0.entry(source.as_str()).or_default() += 1;
                entry.1 += u64::from(*entering);
            }
            EventKind::SlotMissed { slot, reason } => {
                *slots.entry(slot.as_str()).or_default().2.entry(reason.as_str()).or_default() += 1;
            }
            _ => {}
        }
    }
    Value::Object(
        slots
            .into_iter()
            .map(|(slot, (filled, entering, missed))| {
                let value = json!({
                    "filled": filled.values().sum::<u64>(), "by_source": filled, "on_entering": entering,
                    "missed": missed.values().sum::<u64>(), "missed_by_reason": missed,
                });
                (slot.to_owned(), value)
            })
            .collect(),
    )
}

pub async fn build(store: &Db, engine: &Engine, flow: &str, query: &ReportQuery) -> Result<Value, StoreError> {
    let window = Window { flow, since: query.since, until: query.until, instance: query.instance.as_ref(), reason: None };
    let aggregates: Vec<VersionAggregate> = store
        .version_aggregates(&window)
        .await?
        .into_iter()
        .filter(|aggregate| query.versions.as_ref().is_none_or(|versions| versions.contains(&aggregate.version)))
        .collect();
    let mut reports: Vec<VersionReport> = aggregates.iter().map(|aggregate| VersionReport::new(aggregate.version, aggregate.counts.clone())).collect();
    // Versions asked for but without sessions still appear, with zeros.
    if let Some(versions) = &query.versions {
        for version in versions {
            if !reports.iter().any(|report| report.version == *version) {
                reports.push(VersionReport::new(*version, VersionCounts::default()));
            }
        }
        reports.sort_by_key(|report| versions.iter().position(|v| *v == report.version));
    }

    let classifications = store.classifications(&window).await?;
    let slot_events = store.slot_events(&window).await?;
    let mut versions_json = Vec::new();
    for report in &reports {
        let decisions: Vec<&Classification> =
            classifications.iter().filter(|(version, _)| *version == report.version).map(|(_, decision)| decision).collect();
        let mut funnel = store.funnel(&window, report.version).await?;
        // Steps in the order the version declares them; unknown ones last.
        if let Some(compiled) = engine.registry().get(flow, report.version) {
            funnel.sort_by_key(|step| compiled.steps().iter().position(|declared| declared.id == step.step).unwrap_or(usize::MAX));
        }
        let commands = store.commands_by_step(&window, report.version).await?;
        let commands_at = |step: &str| -> serde_json::Map<String, Value> {
            commands.iter().filter(|(at, _, _)| at == step).map(|(_, command, count)| (command.clone(), json!(count))).collect()
        };
        let counts = &report.counts;
        versions_json.push(json!({
            "version": report.version.to_string(),
            "fingerprint": engine.registry().get(flow, report.version).map(|fv| fv.fingerprint().as_str().to_owned()),
            "started": counts.started, "completed": counts.completed, "handoff": counts.handoff, "expired": counts.expired,
            "failed": counts.failed, "cancelled": counts.cancelled, "live": counts.live, "finished": counts.finished(),
            "completion_rate": rate_json(&report.completion), "handoff_rate": rate_json(&report.handoff),
            "expiry_rate": rate_json(&report.expiry), "failure_rate": rate_json(&report.failure),
            "median_turns": report.median_turns, "median_completion_seconds": report.median_completion_millis.map(|millis| millis / 1000.0),
            "funnel": funnel.iter().map(|step| json!({
                "step": step.step, "reached": step.reached, "expired_here": step.expired_here, "handed_off_here": step.handed_off_here,
                "failed_here": step.failed_here, "cancelled_here": step.cancelled_here,
                // Of those, ended by a global command (menu, exit, human).
                "commands_here": commands_at(&step.step),
            })).collect::<Vec<_>>(),
            "classification": classification_json(&decisions),
            "slots": slots_json(&slot_events.iter().filter(|(version, _)| *version == report.version).map(|(_, event)| event).collect::<Vec<_>>()),
        }));
    }

    let comparison = match reports.as_slice() {
        [baseline, candidate, ..] => {
            let comparison = compare(baseline, candidate, query.min_finished);
            let two = |two: &analytics::TwoProportion| json!({ "difference": two.difference, "low": two.low, "high": two.high, "z": two.z, "p_value": two.p_value });
            json!({
                "baseline": comparison.baseline.to_string(), "candidate": comparison.candidate.to_string(),
                "completion": two(&comparison.completion), "handoff": two(&comparison.handoff),
                "enough": comparison.enough, "needed_more": comparison.needed_more, "verdict": comparison.verdict,
            })
        }
        _ => Value::Null,
    };

    // Sample-ratio mismatch: split-served sessions against the split's weights.
    let (rules, _) = store.load_policy().await?;
    let sample_ratio = match rules.get(flow).and_then(|rules| rules.split.clone()) {
        Some(split) => {
            let split_window = Window { reason: Some("split"), ..window.clone() };
            let served = store.version_aggregates(&split_window).await?;
            let observed: Vec<u64> =
                split.weights.iter().map(|(version, _)| served.iter().find(|a| a.version == *version).map_or(0, |a| a.counts.started)).collect();
            let weights: Vec<f64> = split.weights.iter().map(|(_, weight)| f64::from(weight.hundredths()) / 100.0).collect();
            analytics::sample_ratio(&observed, &weights).map(|srm| {
                json!({
                    "observed": split.weights.iter().zip(&observed).map(|((version, weight), count)| json!({"version": version.to_string(), "weight": weight.to_string(), "sessions": count})).collect::<Vec<_>>(),
                    "chi_square": srm.chi_square, "degrees_of_freedom": srm.degrees_of_freedom, "p_value": srm.p_value, "mismatch": srm.mismatch,
                })
            })
        }
        None => None,
    };

    Ok(json!({
        "flow": flow,
        "since": query.since.map(|t| t.to_string()),
        "until": query.until.map(|t| t.to_string()),
        "instance": query.instance.as_ref().map(InstanceId::as_str),
        "min_finished": query.min_finished,
        "versions": versions_json,
        "comparison": comparison,
        "sample_ratio": sample_ratio,
    }))
}

/// What one guard evaluation did for a flow.
#[derive(Debug)]
pub enum GuardOutcome {
    Held { flow: String, reason: String },
    RolledBack { flow: String, candidate: Version, record: AuditRecord },
}

fn guard_of(spec: &switchyard_engine::rollout::SplitGuard) -> Result<Guard, String> {
    Guard::new(
        Metric::parse(&spec.metric)?,
        spec.min_sessions,
        f64::from(spec.tolerance_hundredths) / 100.0,
        f64::from(spec.confidence_permille) / 1000.0,
    )
}

/// Evaluates every armed guard once. A candidate significantly worse than
/// the baseline loses its share to the baseline, the guard is marked tripped
/// (so it never flaps), and the audit records the numbers. The change is a
/// compare-and-swap, so when several servers evaluate at once only one acts.
pub async fn evaluate_guards(store: &Db) -> Result<Vec<GuardOutcome>, StoreError> {
    let (rules, _) = store.load_policy().await?;
    let mut outcomes = Vec::new();
    for (flow, flow_rules) in rules.flows() {
        let Some(split) = &flow_rules.split else { continue };
        let Some(spec) = split.guard.as_ref().filter(|guard| guard.tripped.is_none()) else { continue };
        let guard = match guard_of(spec) {
            Ok(guard) => guard,
            Err(problem) => {
                outcomes.push(GuardOutcome::Held { flow: flow.to_owned(), reason: format!("guard ignored: {problem}") });
                continue;
            }
        };
        // Only the A/B population counts: sessions the split itself assigned
        // (pinned testers and overrides would bias it), whenever they started.
        let window = Window { flow, since: None, until: None, instance: None, reason: Some("split") };
        let aggregates = store.version_aggregates(&window).await?;
        let report_of = |version: Version| {
            let counts = aggregates.iter().find(|a| a.version == version).map(|a| a.counts.clone()).unwrap_or_default();
            VersionReport::new(version, counts)
        };
        let Some((baseline, _)) = split.weights.first() else { continue };
        let baseline_report = report_of(*baseline);
        for (candidate, weight) in split.weights.iter().skip(1) {
            if weight.hundredths() == 0 {
                continue;
            }
            let decision = guard_decision(&guard, &baseline_report, &report_of(*candidate));
            if !decision.is_rollback() {
                outcomes.push(GuardOutcome::Held { flow: flow.to_owned(), reason: decision.reason().to_owned() });
                continue;
            }
            let mut rolled_back: FlowRules = flow_rules.clone();
            if let Some(new_split) = rolled_back.split.as_mut() {
                let moved: u32 = new_split.weights.iter().skip(1).map(|(_, weight)| weight.hundredths()).sum();
                for (version, weight) in new_split.weights.iter_mut() {
                    *weight = if version == baseline {
                        Weight::from_hundredths(weight.hundredths() + moved).unwrap_or(Weight::percent(100))
                    } else {
                        Weight::percent(0)
                    };
                }
                if let Some(guard) = new_split.guard.as_mut() {
                    guard.tripped = Some(GuardTrip { at: Timestamp::now_utc(), reason: decision.reason().to_owned() });
                }
            }
            let reason = format!("guard rolled {flow}@{candidate} back to {baseline}: {}", decision.reason());
            if let Some(record) = store.change_policy_if(flow, flow_rules, &rolled_back, "guard", "guard_rollback", &reason, Timestamp::now_utc()).await? {
                tracing::warn!(%flow, %candidate, %baseline, reason = %decision.reason(), "guard rolled the candidate back");
                outcomes.push(GuardOutcome::RolledBack { flow: flow.to_owned(), candidate: *candidate, record });
            }
            break;
        }
    }
    Ok(outcomes)
}
