//! `switchyard rollout ...`: read and change the runtime policy. Each change
//! reads the flow's current rules, applies one edit, validates the result
//! against the compiled versions and stores it with an audit record.

use std::process::ExitCode;

use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::registry::Registry;
use switchyard_engine::rollout::FlowRules;
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::rules_to_json;

use crate::cli::RolloutAction;
use switchyard::rollout::ChangeError;
use switchyard::steer::{parse_weights, Edit, GuardSpec};

/// The local user, recorded as the actor of CLI changes.
pub(crate) fn actor() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

fn invalid(problems: Vec<String>) -> ExitCode {
    super::report(&problems);
    ExitCode::from(super::INVALID)
}

/// `flow@vN` as (flow, version), checked against the registry.
fn spec(registry: &Registry, spec: &str) -> Result<(String, Version), String> {
    registry.lookup(spec).map(|fv| (fv.flow().as_str().to_owned(), fv.version()))
}

fn flow(registry: &Registry, flow: &str) -> Result<String, String> {
    if registry.has_flow(flow) {
        Ok(flow.to_owned())
    } else {
        let names: Vec<&str> = registry.flows().into_iter().map(|flow| flow.as_str()).collect();
        Err(match switchyard_engine::registry::suggest(flow, names.iter().copied()) {
            Some(name) => format!("unknown flow '{flow}' (did you mean '{name}'?)"),
            None => format!("unknown flow '{flow}' (flows: {})", names.join(", ")),
        })
    }
}

fn contacts(texts: &[String]) -> Result<Vec<Contact>, String> {
    texts.iter().map(|text| Contact::parse(text)).collect()
}

fn time(name: &str, text: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(text).map_err(|problem| format!("{name}: {problem}"))
}

pub async fn run(action: RolloutAction) -> anyhow::Result<ExitCode> {
    let (config, engine) = match super::setup().await {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    // Reading the policy never creates a store; changing it does (the first change of a new install).
    let store = if matches!(action, RolloutAction::Show { .. } | RolloutAction::Status { .. }) {
        match super::existing_store_or_refuse(&config).await? {
            Ok(store) => store,
            Err(code) => return Ok(code),
        }
    } else {
        super::open_store(&config).await?
    };
    // Evacuation and the override notes resolve as serve would: with the stored policy.
    switchyard::rollout::load_into(&store, &engine).await?;
    let registry = &engine.registry();
    let (policy, _) = store.load_policy().await?;
    let current = |flow: &str| policy.get(flow).cloned().unwrap_or_default();

    // Every action but `show` becomes (flow, new rules, action name, reason).
    let edit: Result<(String, Edit, String), String> = match action {
        RolloutAction::Show { flow: only, json } => {
            let overrides = engine.resolver().overrides();
            let flows: Vec<(&str, &FlowRules)> = policy.flows().filter(|(flow, _)| only.as_deref().is_none_or(|only| only == *flow)).collect();
            if json {
                let map: serde_json::Map<String, serde_json::Value> = flows.iter().map(|(flow, rules)| ((*flow).to_owned(), rules_to_json(rules))).collect();
                println!("{}", serde_json::json!({ "overrides": overrides.to_string(), "flows": map }));
            } else {
                println!("FLOW_VERSION_OVERRIDES: {}", if overrides.is_empty() { "(none)".to_owned() } else { format!("{overrides} (beats every rule below)") });
                if flows.is_empty() {
                    println!("no rollout rules: new sessions get the version declared active in code");
                }
                for (flow, rules) in flows {
                    println!("\n{flow}");
                    for pin in &rules.pins {
                        println!("  pin       {} -> {}", pin.contact.masked(), pin.version);
                    }
                    for rule in &rules.instances {
                        println!("  instance  {} -> {}", rule.instance, rule.version);
                    }
                    for schedule in &rules.schedules {
                        println!("  schedule  {} from {} until {}", schedule.version, schedule.from, schedule.until);
                    }
                    if let Some(split) = &rules.split {
                        let weights: Vec<String> = split.weights.iter().map(|(version, weight)| format!("{version}={weight}%")).collect();
                        println!("  split     {} (salt {}, memory {} days)", weights.join(", "), split.salt_for(flow), split.memory_days);
                        if let Some(guard) = &split.guard {
                            let state = match &guard.tripped {
                                Some(trip) => format!("TRIPPED at {}: {}", trip.at, trip.reason),
                                None => "armed".to_owned(),
                            };
                            println!(
                                "  guard     {} rate, {} finished per version, tolerance {} points, confidence {}: {state}",
                                guard.metric,
                                guard.min_sessions,
                                f64::from(guard.tolerance_hundredths) / 100.0,
                                f64::from(guard.confidence_permille) / 1000.0
                            );
                        }
                    }
                    if let Some(version) = rules.promoted {
                        println!("  promote   {version} is the policy's active version");
                    }
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        RolloutAction::CheckGuards => {
            for outcome in switchyard::report::evaluate_guards(&store).await? {
                match outcome {
                    switchyard::report::GuardOutcome::Held { flow, reason } => println!("{flow}: guard holds: {reason}"),
                    switchyard::report::GuardOutcome::RolledBack { flow, candidate, record } => {
                        println!("{flow}: guard ROLLED BACK {candidate} (audit #{}): {}", record.seq, record.reason)
                    }
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        RolloutAction::Status { flow: name, json } => {
            let flow = match flow(registry, &name) {
                Ok(flow) => flow,
                Err(problem) => return Ok(invalid(vec![problem])),
            };
            return status(&store, &engine, &flow, json).await;
        }
        RolloutAction::Evacuate { spec: text, reason } => {
            let (flow, version) = match spec(registry, &text) {
                Ok(found) => found,
                Err(problem) => return Ok(invalid(vec![problem])),
            };
            if reason.trim().is_empty() {
                return Ok(invalid(vec!["a reason is required (--reason \"...\")".to_owned()]));
            }
            return evacuate(&store, &engine, &flow, version, &reason).await;
        }
        RolloutAction::Pin { spec: text, contacts: numbers, reason } => spec(registry, &text).and_then(|(flow, version)| {
            Ok((flow, Edit::Pin { version, contacts: contacts(&numbers)? }, reason))
        }),
        RolloutAction::Unpin { flow: name, contacts: numbers, reason } => {
            flow(registry, &name).and_then(|flow| Ok((flow, Edit::Unpin { contacts: contacts(&numbers)? }, reason)))
        }
        RolloutAction::Instance { spec: text, instance, reason } => spec(registry, &text).and_then(|(flow, version)| {
            Ok((flow, Edit::Instance { version, instance: InstanceId::parse(&instance)? }, reason))
        }),
        RolloutAction::Schedule { spec: text, from, until, reason } => spec(registry, &text).and_then(|(flow, version)| {
            Ok((flow, Edit::Schedule { version, from: time("--from", &from)?, until: time("--until", &until)? }, reason))
        }),
        RolloutAction::Split { flow: name, weights: text, salt, memory_days, guard, guard_min_sessions, guard_tolerance, guard_confidence, reason } => flow(registry, &name).and_then(|flow| {
            let guard = guard.map(|metric| GuardSpec { metric, min_sessions: guard_min_sessions, tolerance_points: guard_tolerance, confidence: guard_confidence });
            Ok((flow, Edit::Split { weights: parse_weights(&text)?, salt, memory_days, guard }, reason))
        }),
        RolloutAction::Promote { spec: text, reason } => spec(registry, &text).map(|(flow, version)| (flow, Edit::Promote { version }, reason)),
        RolloutAction::Clear { flow: name, kind, reason } => flow(registry, &name).map(|flow| (flow, Edit::Clear { kind }, reason)),
    };
    // Applied to the policy read above, validated and stored as the API and the console do.
    let edit = edit.and_then(|(flow, edit, reason)| {
        let rules = edit.apply(&flow, &current(&flow)).map_err(|problem| problem.replace("guard ", "--guard-").replace("--guard-metric", "--guard"))?;
        Ok((flow, rules, edit.action(), reason))
    });
    let (flow, rules, action, reason) = match edit {
        Ok(edit) => edit,
        Err(problem) => return Ok(invalid(vec![problem])),
    };
    match switchyard::rollout::change(&store, registry, &flow, &rules, &actor(), action, &reason).await {
        Ok(record) => {
            println!("{action} applied to {flow} (audit #{}); running servers follow within a second", record.seq);
            if let Some(version) = engine.resolver().overrides().get(&flow) {
                println!("note: FLOW_VERSION_OVERRIDES sets {flow}={version}, which still beats this rule");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ChangeError::Invalid(problems)) => Ok(invalid(problems)),
        Err(ChangeError::Store(err)) => Err(err.into()),
    }
}

async fn status(store: &switchyard_store::Db, engine: &switchyard_engine::engine::Engine, flow: &str, json: bool) -> anyhow::Result<ExitCode> {
    let now = Timestamp::now_utc();
    let rows = store.version_status(flow, now.minus(std::time::Duration::from_secs(3600))).await?;
    let recent_total: i64 = rows.iter().map(|row| row.started_recently).sum();
    let share = |count: i64| if recent_total == 0 { 0.0 } else { count as f64 * 100.0 / recent_total as f64 };
    let registry = engine.registry();
    let mut versions: Vec<Version> = registry.versions_of(flow).map(|fv| fv.version()).collect();
    versions.extend(rows.iter().map(|row| row.version).filter(|version| registry.get(flow, *version).is_none()));
    let lines: Vec<serde_json::Value> = versions
        .iter()
        .map(|version| {
            let row = rows.iter().find(|row| row.version == *version);
            let compiled = registry.get(flow, *version);
            serde_json::json!({
                "version": version.to_string(),
                "lifecycle": compiled.map(|fv| fv.lifecycle().as_str()).unwrap_or("not compiled in"),
                "live_sessions": row.map_or(0, |row| row.live),
                "last_expiry": row.and_then(|row| row.last_expiry).map(|at| at.to_string()),
                "new_sessions_last_hour": row.map_or(0, |row| row.started_recently),
                "share_last_hour_percent": (share(row.map_or(0, |row| row.started_recently)) * 10.0).round() / 10.0,
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::Value::Array(lines));
        return Ok(ExitCode::SUCCESS);
    }
    println!("{flow}: {recent_total} new sessions in the last hour");
    for line in lines {
        let drained = match line["last_expiry"].as_str() {
            Some(at) => format!("drained by {at} unless customers write"),
            None => "drained".to_owned(),
        };
        println!(
            "  {}  {:<15} {:>5} live  {:>5.1}% of new  {drained}",
            line["version"].as_str().unwrap_or("?"),
            line["lifecycle"].as_str().unwrap_or("?"),
            line["live_sessions"],
            line["share_last_hour_percent"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn evacuate(
    store: &switchyard_store::Db,
    engine: &std::sync::Arc<switchyard_engine::engine::Engine>,
    flow: &str,
    version: Version,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    match switchyard::steer::evacuate(store, engine, flow, version, &actor(), reason).await {
        Ok(done) => {
            println!(
                "{} live {flow}@{version} sessions restarted on the current version ({} customers get the message through Evolution)",
                done.moved, done.queued
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ChangeError::Invalid(problems)) => Ok(invalid(problems)),
        Err(ChangeError::Store(err)) => Err(err.into()),
    }
}
