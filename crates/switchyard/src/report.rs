//! The guard evaluator `serve` runs periodically. The report itself
//! (`switchyard report`, `GET /api/report`) is [`crate::views::flow`].

use switchyard_engine::analytics::{guard_decision, Guard, Metric, VersionReport};
use switchyard_engine::ids::Version;
use switchyard_engine::rollout::{FlowRules, GuardTrip, Weight};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::AuditRecord;
use switchyard_store::report::Window;
use switchyard_store::Db;

pub use crate::views::flow::ReportQuery;

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
        // (pinned testers and overrides would bias it) after the guard was
        // armed (an earlier experiment's split sessions are another population).
        let aggregates = match spec.armed_after_event {
            Some(mark) => store.split_population(flow, mark).await?,
            None => store.version_aggregates(&Window { flow, since: None, until: None, instance: None, reason: Some("split") }).await?,
        };
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
            let why = crate::views::verdict::guard_reason(&decision);
            if !decision.is_rollback() {
                outcomes.push(GuardOutcome::Held { flow: flow.to_owned(), reason: why });
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
                    guard.tripped = Some(GuardTrip { at: Timestamp::now_utc(), reason: why.clone() });
                }
            }
            let reason = format!("guard rolled {flow}@{candidate} back to {baseline}: {why}");
            if let Some(record) = store.change_policy_if(flow, flow_rules, &rolled_back, "guard", "guard_rollback", &reason, Timestamp::now_utc()).await? {
                tracing::warn!(%flow, %candidate, %baseline, reason = %why, "guard rolled the candidate back");
                outcomes.push(GuardOutcome::RolledBack { flow: flow.to_owned(), candidate: *candidate, record });
            }
            break;
        }
    }
    Ok(outcomes)
}
