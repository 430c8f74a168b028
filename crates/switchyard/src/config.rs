//! Configuration from the environment. Every variable is parsed strictly; a
//! bad value is reported naming the variable and the value.

use std::time::Duration;

use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::Overrides;
use switchyard_engine::time::parse_duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    /// The raw `FLOW_VERSION_OVERRIDES`; parsed against the registry by [`Config::overrides`].
    pub overrides: String,
    pub session_ttl: Duration,
    pub handoff_ttl: Duration,
}

fn var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid UTF-8")),
    }
}

fn duration_var(name: &str, default: Duration, problems: &mut Vec<String>) -> Duration {
    match var(name) {
        Ok(None) => default,
        Ok(Some(text)) => match parse_duration(&text) {
            Ok(duration) if duration >= Duration::from_secs(1) => duration,
            Ok(_) => {
                problems.push(format!("{name} '{text}' must be at least 1s"));
                default
            }
            Err(problem) => {
                problems.push(format!("{name}: {problem}"));
                default
            }
        },
        Err(problem) => {
            problems.push(problem);
            default
        }
    }
}

impl Config {
    /// Reads the environment; returns every problem, one line each.
    pub fn from_env() -> Result<Config, Vec<String>> {
        let mut problems = Vec::new();
        let database_url = match var("DATABASE_URL") {
            Ok(Some(url)) if url.trim().is_empty() => {
                problems.push("DATABASE_URL is set but empty (unset it to use sqlite://switchyard.db)".to_owned());
                String::new()
            }
            Ok(Some(url)) if !url.starts_with("sqlite:") => {
                let scheme = url.split_once(':').map_or(url.as_str(), |(scheme, _)| scheme).to_owned();
                problems.push(format!(
                    "DATABASE_URL scheme '{scheme}' is not supported: use sqlite://PATH (for example sqlite://switchyard.db)"
                ));
                url
            }
            Ok(Some(url)) => url,
            Ok(None) => switchyard_store::DEFAULT_DATABASE_URL.to_owned(),
            Err(problem) => {
                problems.push(problem);
                String::new()
            }
        };
        let overrides = match var("FLOW_VERSION_OVERRIDES") {
            Ok(value) => value.unwrap_or_default(),
            Err(problem) => {
                problems.push(problem);
                String::new()
            }
        };
        let session_ttl = duration_var("SESSION_TTL", Duration::from_secs(30 * 60), &mut problems);
        let handoff_ttl = duration_var("HANDOFF_TTL", Duration::from_secs(24 * 3600), &mut problems);
        if problems.is_empty() {
            Ok(Config { database_url, overrides, session_ttl, handoff_ttl })
        } else {
            Err(problems)
        }
    }

    pub fn overrides(&self, registry: &Registry) -> Result<Overrides, Vec<String>> {
        Overrides::parse(&self.overrides, registry)
    }
}
