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
    Ok(store.change_policy(flow, rules, actor, action, reason.trim(), Timestamp::now_utc()).await?)
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

/// The whole resolution for one contact, as `explain --json` and
/// `GET /api/explain` show it: the override, every rule considered, the winner.
pub fn explanation(
    engine: &Engine,
    flow: &str,
    instance: &switchyard_engine::ids::InstanceId,
    contact: &switchyard_engine::ids::Contact,
    now: Timestamp,
) -> Value {
    use switchyard_engine::resolve::Reason;
    let explained = engine.explain(flow, instance, contact, now);
    let checks: Vec<Value> = explained
        .evaluation
        .as_ref()
        .map(|evaluation| {
            evaluation
                .checks
                .iter()
                .map(|check| {
                    json!({
                        "rule": check.rule,
                        "matched": check.matched,
                        "version": check.version.map(|version| version.to_string()),
                        "detail": check.detail,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let resolution = explained.resolution.as_ref();
    let registry = engine.registry();
    let fingerprint = resolution.and_then(|resolution| registry.get(flow, resolution.version)).map(|fv| fv.fingerprint().as_str().to_owned());
    let explanation = match resolution.map(|resolution| (&resolution.reason, resolution.version)) {
        Some((Reason::Override, version)) => format!("FLOW_VERSION_OVERRIDES sets {flow}={version}; it beats every rule"),
        Some((Reason::Active, version)) => format!("no rule matched: {version} is the version declared active in code"),
        Some((Reason::Rule { rule, detail }, version)) => {
            format!("rule '{rule}' chose {version}{}", detail.as_deref().map(|detail| format!(" ({detail})")).unwrap_or_default())
        }
        None => format!("flow '{flow}' is not compiled in"),
    };
    json!({
        "flow": flow,
        "version": resolution.map(|resolution| resolution.version.to_string()),
        "reason": resolution.map(|resolution| resolution.reason.name().to_owned()),
        "reason_detail": resolution.and_then(|resolution| resolution.reason.detail().map(str::to_owned)),
        "explanation": explanation,
        "fingerprint": fingerprint,
        "override": explained.overridden.map(|version| version.to_string()),
        "overrides": engine.resolver().overrides().to_string(),
        "rules": checks,
        "instance": instance.as_str(),
        "contact": contact.masked(),
    })
}
