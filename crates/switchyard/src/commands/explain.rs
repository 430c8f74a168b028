//! `switchyard explain`: the version a new session would get now, and why.

use std::process::ExitCode;

use switchyard_engine::ids::FlowId;
use switchyard_engine::registry::suggest;
use switchyard_engine::time::Timestamp;

pub async fn run(flow: &str, contact: &str, instance: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (_, engine, _store) = match super::setup_with_store().await? {
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
    let value = switchyard::rollout::explanation(&engine, flow, &instance, &contact, Timestamp::now_utc());
    if json {
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    let text = |key: &str| value[key].as_str().unwrap_or("-").to_owned();
    println!("{flow}@{} (reason: {})", text("version"), text("reason"));
    println!("  why: {}", text("explanation"));
    println!("  fingerprint: {}", text("fingerprint"));
    match value["override"].as_str() {
        Some(version) => println!("  1. override   matched   FLOW_VERSION_OVERRIDES sets {flow}={version}"),
        None => println!("  1. override   -         FLOW_VERSION_OVERRIDES does not name {flow}"),
    }
    let checks = value["rules"].as_array().cloned().unwrap_or_default();
    let mut step = 2;
    for kind in ["pin", "instance", "schedule", "split", "promote"] {
        match checks.iter().find(|check| check["rule"] == kind) {
            Some(check) => {
                let matched = if check["matched"] == true { "matched" } else { "-" };
                println!("  {step}. {kind:<10} {matched:<9} {}", check["detail"].as_str().unwrap_or(""));
            }
            None if value["override"].is_null() && !checks.is_empty() => println!("  {step}. {kind:<10} -         not reached (a rule above matched)"),
            None => println!("  {step}. {kind:<10} -         no rules"),
        }
        step += 1;
    }
    println!("  {step}. active     {}", if value["reason"] == "active" { "matched   the version declared active in code" } else { "-" });
    println!("  contact {} on instance {instance}; only new sessions are resolved, live ones keep their version", contact.masked());
    Ok(ExitCode::SUCCESS)
}
