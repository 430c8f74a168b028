//! `switchyard explain`: the version a new session would get now, and why.

use std::process::ExitCode;

use switchyard_engine::ids::{Contact, FlowId, InstanceId};
use switchyard_engine::registry::suggest;
use switchyard_engine::resolve::Reason;
use switchyard_engine::time::Timestamp;

pub fn run(flow: &str, contact: &str, instance: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (_, engine) = match super::setup() {
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
    let contact = match Contact::parse(contact) {
        Ok(contact) => contact,
        Err(problem) => {
            super::report(&[format!("--contact: {problem}")]);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let instance = match InstanceId::parse(instance) {
        Ok(instance) => instance,
        Err(problem) => {
            super::report(&[format!("--instance: {problem}")]);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let Some(resolution) = engine.resolve(flow, &instance, &contact, Timestamp::now_utc()) else {
        anyhow::bail!("flow '{flow}' has no version to resolve");
    };
    let version = registry
        .get(flow, resolution.version)
        .ok_or_else(|| anyhow::anyhow!("{flow}@{} is not compiled in", resolution.version))?;
    let why = match &resolution.reason {
        Reason::Override => format!("FLOW_VERSION_OVERRIDES sets {flow}={}", resolution.version),
        Reason::Active => format!("{} is the version declared active in code", resolution.version),
        Reason::Rule { rule, detail } => {
            format!("rollout rule '{rule}'{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())
        }
    };
    if json {
        let value = serde_json::json!({
            "flow": flow,
            "version": resolution.version.to_string(),
            "reason": resolution.reason.name(),
            "reason_detail": resolution.reason.detail(),
            "explanation": why,
            "lifecycle": version.lifecycle().as_str(),
            "fingerprint": version.fingerprint().as_str(),
            "instance": instance.as_str(),
            "overrides": engine.resolver().overrides().to_string(),
        });
        println!("{value}");
    } else {
        println!("{flow}@{} (reason: {})", resolution.version, resolution.reason);
        println!("  why: {why}");
        println!("  lifecycle: {}, fingerprint: {}", version.lifecycle().as_str(), version.fingerprint().short());
        println!("  contact {} on instance {instance}; only new sessions are resolved, live ones keep their version", contact.masked());
    }
    Ok(ExitCode::SUCCESS)
}
