//! `switchyard rollout ...`: read and change the runtime policy. Each change
//! reads the flow's current rules, applies one edit, validates the result
//! against the compiled versions and stores it with an audit record.

use std::process::ExitCode;

use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::registry::Registry;
use switchyard_engine::rollout::{FlowRules, InstanceRule, Pin, Schedule, Split, Weight};
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::rules_to_json;

use crate::cli::RolloutAction;
use switchyard::rollout::ChangeError;

/// The local user, recorded as the actor of CLI changes.
fn actor() -> String {
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

/// Parses `v1=90,v2=10`.
fn weights(text: &str) -> Result<Vec<(Version, Weight)>, String> {
    text.split(',')
        .map(|entry| {
            let (version, weight) = entry
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("weight '{}' must look like v2=10 (the whole list like v1=90,v2=10)", entry.trim()))?;
            Ok((Version::parse(version.trim())?, Weight::parse(weight.trim())?))
        })
        .collect()
}

pub async fn run(action: RolloutAction) -> anyhow::Result<ExitCode> {
    let (config, engine) = match super::setup() {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    let store = super::open_store(&config).await?;
    let registry = engine.registry();
    let (policy, _) = store.load_policy().await?;
    let current = |flow: &str| policy.get(flow).cloned().unwrap_or_default();

    // Every action but `show` becomes (flow, new rules, action name, reason).
    let edit: Result<(String, FlowRules, &str, String), String> = match action {
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
                    }
                    if let Some(version) = rules.promoted {
                        println!("  promote   {version} is the policy's active version");
                    }
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        RolloutAction::Pin { spec: text, contacts: numbers, reason } => spec(registry, &text).and_then(|(flow, version)| {
            let mut rules = current(&flow);
            for contact in contacts(&numbers)? {
                rules.pins.retain(|pin| pin.contact != contact);
                rules.pins.push(Pin { contact, version });
            }
            Ok((flow, rules, "pin", reason))
        }),
        RolloutAction::Unpin { flow: name, contacts: numbers, reason } => flow(registry, &name).and_then(|flow| {
            let mut rules = current(&flow);
            for contact in contacts(&numbers)? {
                let before = rules.pins.len();
                rules.pins.retain(|pin| pin.contact != contact);
                if rules.pins.len() == before {
                    return Err(format!("{} is not pinned in {flow}", contact.masked()));
                }
            }
            Ok((flow, rules, "unpin", reason))
        }),
        RolloutAction::Instance { spec: text, instance, reason } => spec(registry, &text).and_then(|(flow, version)| {
            let instance = InstanceId::parse(&instance)?;
            let mut rules = current(&flow);
            rules.instances.retain(|rule| rule.instance != instance);
            rules.instances.push(InstanceRule { instance, version });
            Ok((flow, rules, "instance", reason))
        }),
        RolloutAction::Schedule { spec: text, from, until, reason } => spec(registry, &text).and_then(|(flow, version)| {
            let schedule = Schedule::new(version, time("--from", &from)?, time("--until", &until)?)?;
            let mut rules = current(&flow);
            rules.schedules.push(schedule);
            Ok((flow, rules, "schedule", reason))
        }),
        RolloutAction::Split { flow: name, weights: text, salt, memory_days, reason } => flow(registry, &name).and_then(|flow| {
            let split = Split::new(weights(&text)?, salt, memory_days)?;
            let mut rules = current(&flow);
            rules.split = Some(split);
            Ok((flow, rules, "split", reason))
        }),
        RolloutAction::Promote { spec: text, reason } => spec(registry, &text).map(|(flow, version)| {
            let mut rules = current(&flow);
            rules.promoted = Some(version);
            (flow, rules, "promote", reason)
        }),
        RolloutAction::Clear { flow: name, kind, reason } => flow(registry, &name).and_then(|flow| {
            let mut rules = current(&flow);
            match kind.as_str() {
                "pin" => rules.pins.clear(),
                "instance" => rules.instances.clear(),
                "schedule" => rules.schedules.clear(),
                "split" => rules.split = None,
                "promote" => rules.promoted = None,
                "all" => rules = FlowRules::default(),
                other => return Err(format!("--kind '{other}' must be pin, instance, schedule, split, promote or all")),
            }
            Ok((flow, rules, "clear", reason))
        }),
    };
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
