//! `switchyard check`: validates the registry and the configuration, one
//! line per problem; exit 0 when all is well, 1 otherwise.

use std::process::ExitCode;

use switchyard::config::Config;

pub fn run() -> ExitCode {
    let mut problems = Vec::new();
    let registry = match switchyard_flows::registry(&switchyard_flows::Deps::demo()) {
        Ok(registry) => Some(registry),
        Err(errors) => {
            problems.extend(errors.iter().map(ToString::to_string));
            None
        }
    };
    let config = match Config::from_env() {
        Ok(config) => Some(config),
        Err(config_problems) => {
            problems.extend(config_problems);
            None
        }
    };
    let mut overrides = None;
    if let Some(registry) = &registry {
        // Parse the override even when another variable is bad: report everything at once.
        let raw = std::env::var("FLOW_VERSION_OVERRIDES").unwrap_or_default();
        match switchyard_engine::resolve::Overrides::parse(&raw, registry) {
            Ok(parsed) => overrides = Some(parsed),
            Err(override_problems) => problems.extend(override_problems),
        }
    }
    if !problems.is_empty() {
        super::report(&problems);
        return ExitCode::from(super::INVALID);
    }
    let (Some(registry), Some(config), Some(overrides)) = (registry, config, overrides) else {
        return ExitCode::from(super::INVALID);
    };
    let flows = registry.flows().len();
    println!("ok: {} flow versions in {flows} flows are valid", registry.all().len());
    if overrides.is_empty() {
        println!("overrides: none");
    } else {
        println!("overrides: {overrides}");
    }
    println!("database: {}", switchyard_store::redact_url(&config.database_url));
    println!("session ttl: {}s, handoff ttl: {}s", config.session_ttl.as_secs(), config.handoff_ttl.as_secs());
    ExitCode::SUCCESS
}
