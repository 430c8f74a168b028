//! `switchyard check`: validates the registry and the configuration, one
//! line per problem; exit 0 when all is well, 1 otherwise. Versions
//! published to the store are loaded as `serve` loads them: one that would
//! be skipped is a warning (as `serve` logs it), not a failure.

use std::process::ExitCode;

use switchyard::config::Config;

pub async fn run() -> ExitCode {
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
    // With an Evolution URL configured, what `serve` needs is checked too.
    if switchyard::config::var("EVOLUTION_URL").ok().flatten().is_some()
        && let Err(serve_problems) = switchyard::config::ServeConfig::from_env()
    {
        problems.extend(serve_problems);
    }
    // Versions published to the store, loaded as `serve` loads them (a
    // version it would skip is a warning); the override may name one.
    let compiled = registry.as_ref().map_or(0, |registry| registry.all().len());
    let registry = match (registry, &config) {
        (Some(registry), Some(config)) => Some(super::with_store(std::sync::Arc::new(registry), config).await),
        (registry, _) => registry.map(std::sync::Arc::new),
    };
    let mut overrides = None;
    if let Some(registry) = &registry {
        // Parse the override even when another variable is bad: report everything at once.
        let raw = switchyard::config::var("FLOW_VERSION_OVERRIDES").ok().flatten().unwrap_or_default();
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
    let published = registry.all().len().saturating_sub(compiled);
    println!("ok: {} flow versions in {flows} flows are valid ({compiled} compiled, {published} published as documents)", registry.all().len());
    if overrides.is_empty() {
        println!("overrides: none");
    } else {
        println!("overrides: {overrides}");
    }
    println!("database: {}", switchyard_store::redact_url(&config.database_url));
    println!("session ttl: {}s, handoff ttl: {}s", config.session_ttl.as_secs(), config.handoff_ttl.as_secs());
    println!(
        "global commands: menu [{}], exit [{}], human [{}]",
        config.commands.menu.join(", "),
        config.commands.exit.join(", "),
        config.commands.human.join(", ")
    );
    match switchyard::config_file::path() {
        Some(path) => println!("configuration file: {path}"),
        None => println!("configuration file: none (set SWITCHYARD_CONFIG or add switchyard.toml)"),
    }
    println!("effective configuration (environment > file > default; secrets redacted):");
    for (name, value, source) in switchyard::config_file::effective() {
        let source = match source {
            switchyard::config_file::Source::Environment => "env",
            switchyard::config_file::Source::File => "file",
            switchyard::config_file::Source::Default => "default",
        };
        println!("  {name:<24} {value}  ({source})");
    }
    ExitCode::SUCCESS
}
