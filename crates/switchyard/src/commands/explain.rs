//! `switchyard explain`: the version a new session would get now, and why.

use std::process::ExitCode;

use switchyard_engine::ids::FlowId;
use switchyard_engine::registry::suggest;
use switchyard_engine::time::Timestamp;

pub async fn run(flow: &str, contact: &str, instance: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (_, engine, _store) = match super::setup_with_existing_store().await? {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    let registry = engine.registry();
    if !registry.has_flow(flow) {
        let names: Vec<&str> = registry.flows().into_iter().map(FlowId::as_str).collect();
        let hint = match suggest(flow, names.iter().copied()) {
            Some(name) => format!(" (did you mean '{name}'?)"),
            None => format!(" (flows: {})", names.join(", ")),
        };
        super::report(&[format!("--flow '{flow}' is not a compiled flow{hint}")]);
        return Ok(ExitCode::from(super::INVALID));
    }
    let (contact, instance) = match super::contact_and_instance(contact, instance) {
        Ok(parsed) => parsed,
        Err(code) => return Ok(code),
    };
    let explanation = switchyard::views::records::explain(&engine, flow, &instance, &contact, Timestamp::now_utc());
    if json {
        println!("{}", serde_json::to_value(&explanation)?);
        return Ok(ExitCode::SUCCESS);
    }
    let text = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
    println!("{flow}@{} (reason: {})", text(&explanation.version), text(&explanation.reason));
    println!("  why: {}", explanation.explanation);
    println!("  fingerprint: {}", text(&explanation.fingerprint));
    match &explanation.forced {
        Some(version) => println!("  1. override   matched   FLOW_VERSION_OVERRIDES sets {flow}={version}"),
        None => println!("  1. override   -         FLOW_VERSION_OVERRIDES does not name {flow}"),
    }
    let mut step = 2;
    for kind in ["pin", "instance", "schedule", "split", "promote"] {
        match explanation.rules.iter().find(|check| check.rule == kind) {
            Some(check) => {
                let matched = if check.matched { "matched" } else { "-" };
                println!("  {step}. {kind:<10} {matched:<9} {}", check.detail);
            }
            None if explanation.forced.is_none() && !explanation.rules.is_empty() => println!("  {step}. {kind:<10} -         not reached (a rule above matched)"),
            None => println!("  {step}. {kind:<10} -         no rules"),
        }
        step += 1;
    }
    println!("  {step}. active     {}", if explanation.reason.as_deref() == Some("active") { "matched   the version declared active in code" } else { "-" });
    println!("  contact {} on instance {instance}; only new sessions are resolved, live ones keep their version", contact.masked());
    if !explanation.called_by.is_empty() {
        println!("  called by {}: each call resolves {flow} by these rules when it starts", explanation.called_by.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
