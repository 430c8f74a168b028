//! Rollout policy changes, shared by the CLI (`switchyard rollout ...`) and
//! the admin API: validate against the compiled versions, require a reason,
//! store with an audit record, and the deploy manifest `serve` records.

use serde_json::{json, Value};
use switchyard_engine::engine::Engine;
use switchyard_engine::registry::Registry;
use switchyard_engine::rollout::FlowRules;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::AuditRecord;
use switchyard_store::Db;

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The change is refused; one line per problem.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Replaces `flow`'s rules with `rules` after checking them, recording who,
/// why, before and after.
pub async fn change(
    store: &Db,
    registry: &Registry,
    flow: &str,
    rules: &FlowRules,
    actor: &str,
    action: &str,
    reason: &str,
) -> Result<AuditRecord, ChangeError> {
    let mut problems = Vec::new();
    if reason.trim().is_empty() {
        problems.push("a reason is required (--reason \"...\"): the audit log records why every change was made".to_owned());
    }
    problems.extend(rules.validate(flow, registry));
    if !problems.is_empty() {
        return Err(ChangeError::Invalid(problems));
    }
    let now = Timestamp::now_utc();
    let (stored, _) = store.load_policy().await?;
    let rules = stamp_marks(stored.get(flow), rules, || store.event_watermark()).await?;
    Ok(store.change_policy(flow, &rules, actor, action, reason.trim(), now).await?)
}

/// `rules` with its split's marks stamped. A guard keeps its mark while its
/// split keeps the same versions in the same order and has not tripped (a
/// ramp from 10% to 50% is the same experiment); otherwise it is armed at
/// the event log's current end (a new experiment, or one restarted after a
/// rollback), and judges only sessions its split assigned after that. The
/// weights' own mark moves whenever the weights change (the ramp included):
/// the sample-ratio check compares only draws made at these weights.
async fn stamp_marks<F, Fut>(before: Option<&FlowRules>, rules: &FlowRules, watermark: F) -> Result<FlowRules, StoreError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<i64, StoreError>>,
{
    let mut rules = rules.clone();
    let Some(split) = rules.split.as_mut() else { return Ok(rules) };
    let old_split = before.and_then(|before| before.split.as_ref());
    let versions: Vec<_> = split.weights.iter().map(|(version, _)| *version).collect();
    let guard_mark = split.guard.as_ref().filter(|guard| guard.armed_after_event.is_none()).map(|guard| {
        old_split
            .filter(|old| old.weights.iter().map(|(version, _)| *version).eq(versions.iter().copied()))
            .and_then(|old| old.guard.as_ref())
            .filter(|old| old.tripped.is_none() && guard.tripped.is_none())
            // A guard stored before the mark existed stays unmarked (it
            // counts every split session, as it always did) until its
            // experiment changes.
            .map(|old| old.armed_after_event)
    });
    // The server owns this mark: kept from the stored split while the
    // weights are the same (unmarked stays unmarked, counting every draw),
    // stamped now when they changed or the split is new.
    let kept = old_split.filter(|old| old.weights == split.weights).map(|old| old.weights_after_event);
    let needs_reading = matches!(guard_mark, Some(None)) || kept.is_none();
    let now = if needs_reading { Some(watermark().await?) } else { None };
    if let (Some(guard), Some(mark)) = (split.guard.as_mut(), guard_mark) {
        guard.armed_after_event = mark.unwrap_or(now);
    }
    split.weights_after_event = kept.unwrap_or(now);
    Ok(rules)
}

/// What this process runs: every flow version with lifecycle and fingerprint,
/// the override, and the build's commit.
pub fn manifest(engine: &Engine) -> Value {
    let versions: Vec<Value> = engine
        .registry()
        .all()
        .iter()
        .map(|version| {
            json!({
                "flow": version.flow().as_str(),
                "version": version.version().to_string(),
                "lifecycle": version.lifecycle().as_str(),
                "fingerprint": version.fingerprint().as_str(),
            })
        })
        .collect();
    json!({
        "versions": versions,
        "overrides": engine.resolver().overrides().to_string(),
        "build_commit": env!("SWITCHYARD_BUILD_COMMIT"),
        "switchyard_version": env!("CARGO_PKG_VERSION"),
    })
}

/// Loads the stored policy into the engine, dropping (with a returned
/// warning each) rules that name versions this build does not compile, so a
/// rollback deploy never refuses to start over a stale rule.
///
/// Versions published as documents since the last call are added to the
/// engine first (a publish moves the same revision), so rules may name them.
pub async fn load_into(store: &Db, engine: &Engine) -> Result<(i64, Vec<String>), StoreError> {
    // The revision first: a publish landing after it shows as a newer
    // revision at the next poll, never as one already counted but not loaded.
    let revision = store.policy_revision().await?;
    let mut warnings = crate::document::publish::load_new(store, engine).await?;
    let (mut rules, _) = store.load_policy().await?;
    let flows: Vec<String> = rules.flows().map(|(flow, _)| flow.to_owned()).collect();
    for flow in flows {
        let problems = rules.get(&flow).map(|flow_rules| flow_rules.validate(&flow, &engine.registry())).unwrap_or_default();
        if !problems.is_empty() {
            warnings.extend(problems.into_iter().map(|problem| format!("stored rule ignored: {problem}")));
            rules.set(&flow, FlowRules::default());
        }
    }
    engine.resolver().set_policy(std::sync::Arc::new(rules));
    Ok((revision, warnings))
}
