//! Configuration from the environment, then the optional TOML file
//! ([`crate::config_file`]). Every variable is parsed strictly; a bad value
//! is reported naming the variable and the value. [`Config`] is what
//! every command needs; [`ServeConfig`] adds what only `serve` needs.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use switchyard_engine::engine::GlobalCommands;
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
    /// PostgreSQL pool settings (`DATABASE_MAX_CONNECTIONS`,
    /// `DATABASE_ACQUIRE_TIMEOUT`; SQLite ignores them) and SQLite's
    /// `SQLITE_SYNCHRONOUS`.
    pub database: switchyard_store::PgSettings,
    /// The model for classification (`LLM_*`); `None`: offline, keywords decide.
    pub llm: Option<switchyard_llm::Settings>,
    /// `COMMANDS_MENU`, `COMMANDS_EXIT`, `COMMANDS_HUMAN`: the words of the global commands.
    pub commands: GlobalCommands,
}

/// The variable `name` from the environment, else from the configuration
/// file ([`crate::config_file`]).
pub fn var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(crate::config_file::value(name).map(str::to_owned)),
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
        let mut problems: Vec<String> = crate::config_file::problems().to_vec();
        problems.extend(blank_secrets());
        let database_url = match var("DATABASE_URL") {
            Ok(Some(url)) if url.trim().is_empty() => {
                problems.push("DATABASE_URL is set but empty (unset it to use sqlite://switchyard.db)".to_owned());
                String::new()
            }
            Ok(Some(url)) if !["sqlite:", "postgres:", "postgresql:"].iter().any(|scheme| url.starts_with(scheme)) => {
                let scheme = url.split_once(':').map_or(url.as_str(), |(scheme, _)| scheme).to_owned();
                problems.push(format!(
                    "DATABASE_URL scheme '{scheme}' is not supported: use sqlite://PATH (for example sqlite://switchyard.db) or postgres://USER@HOST/DATABASE"
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
        let defaults = switchyard_store::PgSettings::default();
        let max_connections = match var("DATABASE_MAX_CONNECTIONS") {
            Ok(None) => defaults.max_connections,
            Ok(Some(text)) => match text.trim().parse::<u32>() {
                Ok(count) if (1..=1000).contains(&count) => count,
                _ => {
                    problems.push(format!("DATABASE_MAX_CONNECTIONS '{text}' must be a whole number from 1 to 1000"));
                    defaults.max_connections
                }
            },
            Err(problem) => {
                problems.push(problem);
                defaults.max_connections
            }
        };
        let acquire_timeout = duration_var("DATABASE_ACQUIRE_TIMEOUT", defaults.acquire_timeout, &mut problems);
        let sqlite_synchronous = match var("SQLITE_SYNCHRONOUS") {
            Ok(None) => defaults.sqlite_synchronous,
            Ok(Some(text)) => switchyard_store::Synchronous::parse(text.trim()).unwrap_or_else(|problem| {
                problems.push(problem);
                defaults.sqlite_synchronous
            }),
            Err(problem) => {
                problems.push(problem);
                defaults.sqlite_synchronous
            }
        };
        let database = switchyard_store::PgSettings { max_connections, acquire_timeout, sqlite_synchronous };
        let mut llm_vars = Vec::new();
        for name in ["LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL", "LLM_TIMEOUT"] {
            llm_vars.push(var(name).unwrap_or_else(|problem| {
                problems.push(problem);
                None
            }));
        }
        let llm = match switchyard_llm::Settings::parse(llm_vars[0].as_deref(), llm_vars[1].as_deref(), llm_vars[2].as_deref(), llm_vars[3].as_deref()) {
            Ok(llm) => llm,
            Err(llm_problems) => {
                problems.extend(llm_problems);
                None
            }
        };
        let commands = commands_var(&mut problems);
        if problems.is_empty() {
            Ok(Config { database_url, overrides, session_ttl, handoff_ttl, database, llm, commands })
        } else {
            Err(problems)
        }
    }

    pub fn overrides(&self, registry: &Registry) -> Result<Overrides, Vec<String>> {
        Overrides::parse(&self.overrides, registry)
    }
}

/// Every secret or token variable that is set but blank. Read as unset it
/// would open what it guards (a blank `WEBHOOK_SECRET` let anyone post
/// webhooks), so it is a configuration error: `check` names it, and every
/// command that runs conversations, `serve` included, refuses to start.
pub fn blank_secrets() -> Vec<String> {
    crate::config_file::SETTINGS
        .iter()
        .filter(|(_, _, secret)| *secret)
        .filter_map(|(name, _, _)| match var(name) {
            Ok(Some(value)) if value.trim().is_empty() => {
                Some(format!("{name} is set but blank: a blank secret protects nothing; give it a value or unset it"))
            }
            _ => None,
        })
        .collect()
}

/// The global commands: each variable is a comma-separated word list
/// (`COMMANDS_EXIT=sair,encerrar,tchau`); set but empty turns that command off.
fn commands_var(problems: &mut Vec<String>) -> GlobalCommands {
    let mut commands = GlobalCommands::default();
    for (name, slot) in [("COMMANDS_MENU", &mut commands.menu), ("COMMANDS_EXIT", &mut commands.exit), ("COMMANDS_HUMAN", &mut commands.human)] {
        match var(name) {
            Ok(None) => {}
            Ok(Some(text)) => {
                let words: Vec<String> = text.split(',').map(str::trim).filter(|word| !word.is_empty()).map(str::to_owned).collect();
                if let Some(word) = words.iter().find(|word| switchyard_engine::text::normalize(word).is_empty()) {
                    problems.push(format!("{name}: '{word}' has no letters or digits to match"));
                }
                *slot = words;
            }
            Err(problem) => problems.push(problem),
        }
    }
    let all = [&commands.menu, &commands.exit, &commands.human];
    for (idx, list) in all.iter().enumerate() {
        for word in list.iter() {
            let normal = switchyard_engine::text::normalize(word);
            if all[idx + 1..].iter().any(|other| other.iter().any(|other| switchyard_engine::text::normalize(other) == normal)) {
                problems.push(format!("command word '{word}' is given to two commands (COMMANDS_MENU, COMMANDS_EXIT, COMMANDS_HUMAN)"));
            }
        }
    }
    commands
}

/// Where the console listens unless `CONSOLE_BIND_ADDR` says otherwise:
/// loopback only, so it is reached through a proxy or a tunnel.
pub const DEFAULT_CONSOLE_BIND: &str = "127.0.0.1:8081";

/// What `serve` needs beyond [`Config`].
#[derive(Clone)]
pub struct ServeConfig {
    pub bind: SocketAddr,
    /// `CONSOLE_BIND_ADDR`: where the operator console (`/ui`) listens, apart
    /// from the webhook and API port; `None` (`off`) serves no console.
    pub console_bind: Option<SocketAddr>,
    /// `CONSOLE_SECURE_COOKIE`: mark the console's cookie `Secure` even when
    /// the request does not say it came over TLS (`X-Forwarded-Proto: https`).
    pub console_secure_cookie: bool,
    pub evolution_url: String,
    pub evolution_api_key: Option<String>,
    pub evolution_instance_keys: HashMap<String, String>,
    pub send_timeout: Duration,
    /// Minimum interval between two sends on one instance; `None` = no throttle.
    pub send_interval: Option<Duration>,
    /// `SEND_CONCURRENCY`: sends in flight at once per instance (at least 1).
    pub send_concurrency: usize,
    pub webhook_secret: Option<String>,
    pub webhook_secrets: HashMap<String, String>,
    pub webhook_secret_header: String,
    pub webhook_jwt_key: Option<String>,
    pub max_body_bytes: usize,
    /// `HTTP_HEADER_TIMEOUT`, `HTTP_REQUEST_TIMEOUT`, `HTTP_MAX_CONNECTIONS`.
    pub http: crate::serve::HttpLimits,
    pub answer_groups: bool,
    pub takeover_on_from_me: bool,
    /// (name, token): each admin API token has a name, recorded as the actor
    /// of every change made with it.
    pub admin_tokens: Vec<(String, String)>,
    /// `METRICS_TOKEN`: when set, `/metrics` wants it as a bearer token.
    pub metrics_token: Option<String>,
    pub sweep_interval: Duration,
    /// How often split guards are evaluated.
    pub guard_interval: Duration,
    /// How often finished hours of the flow report are rolled up.
    pub rollup_interval: Duration,
    /// The model that answers what the keyword classifiers cannot (built
    /// from [`Config::llm`]); `None`: offline.
    pub model: Option<std::sync::Arc<switchyard_llm::Llm>>,
    /// The configuration file's `[endpoints]`: what published `http` steps
    /// may call, and the caller that calls them.
    pub endpoints: Vec<crate::document::http::Endpoint>,
    pub caller: Option<std::sync::Arc<crate::document::http::Caller>>,
    /// `DEBOUNCE`: per-instance windows that join a contact's burst into one input; off by default.
    pub debounce: crate::serve::Debounce,
    /// `IGNORE_JIDS`: chats the bot never answers.
    pub ignore: crate::ignore::IgnoreList,
    /// `RETENTION`: message texts and session data older than this are purged by the sweeper; `None` keeps them.
    pub retention: Option<Duration>,
    /// `LOG_FORMAT=json`: JSON lines instead of text.
    pub log_json: bool,
    /// `CHATWOOT_*`: where handoffs are announced and conversations given back; off when unset.
    pub chatwoot: crate::chatwoot::ChatwootConfig,
    /// `BUSINESS_HOURS`: when a person answers, per instance; always when unset.
    pub business_hours: crate::hours::BusinessHours,
    /// What "now" is for business hours (the wall clock; tests fix it).
    pub hours_clock: fn() -> switchyard_engine::time::Timestamp,
    /// Voice notes, typing and choices (`TRANSCRIBE*`, `TYPING*`, `EVOLUTION_CLOUD_INSTANCES`).
    pub media: crate::serve::MediaConfig,
}

impl std::fmt::Debug for ServeConfig {
    /// Secrets are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("bind", &self.bind)
            .field("console_bind", &self.console_bind)
            .field("evolution_url", &self.evolution_url)
            .field("evolution_api_key", &self.evolution_api_key.as_ref().map(|_| "<redacted>"))
            .field("evolution_instance_keys", &self.evolution_instance_keys.keys().collect::<Vec<_>>())
            .field("send_interval", &self.send_interval)
            .field("send_concurrency", &self.send_concurrency)
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "<redacted>"))
            .field("webhook_secrets", &self.webhook_secrets.keys().collect::<Vec<_>>())
            .field("webhook_jwt_key", &self.webhook_jwt_key.as_ref().map(|_| "<redacted>"))
            .field("http", &self.http)
            .field("answer_groups", &self.answer_groups)
            .field("takeover_on_from_me", &self.takeover_on_from_me)
            .field("admin_tokens", &self.admin_tokens.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("debounce", &self.debounce.to_string())
            .field("ignore", &self.ignore.to_string())
            .field("retention", &self.retention)
            .field("chatwoot", &self.chatwoot)
            .field("business_hours", &self.business_hours)
            .field("media", &self.media)
            .finish_non_exhaustive()
    }
}

fn text_var(name: &str, problems: &mut Vec<String>) -> Option<String> {
    match var(name) {
        Ok(Some(value)) if value.trim().is_empty() => None,
        Ok(value) => value.map(|value| value.trim().to_owned()),
        Err(problem) => {
            problems.push(problem);
            None
        }
    }
}

fn bool_var(name: &str, default: bool, problems: &mut Vec<String>) -> bool {
    match text_var(name, problems) {
        None => default,
        Some(value) => match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                problems.push(format!("{name} '{value}' must be true or false"));
                default
            }
        },
    }
}

/// Parses `name=value,name=value` (instance keys and secrets). Values are
/// secrets: a problem message names the entry's instance, never its value.
fn map_var(name: &str, problems: &mut Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let Some(raw) = text_var(name, problems) else { return map };
    for (idx, entry) in raw.split(',').enumerate() {
        let entry = entry.trim();
        match entry.split_once('=') {
            Some((instance, value)) if !instance.trim().is_empty() && !value.trim().is_empty() => {
                if map.insert(instance.trim().to_owned(), value.trim().to_owned()).is_some() {
                    problems.push(format!("{name}: instance '{}' is listed twice", instance.trim()));
                }
            }
            Some((instance, _)) if !instance.trim().is_empty() => {
                problems.push(format!("{name}: entry for instance '{}' has an empty value", instance.trim()))
            }
            _ => problems.push(format!("{name}: entry {} must look like instance=value", idx + 1)),
        }
    }
    map
}

impl ServeConfig {
    /// The names of the endpoints `http` steps may call.
    pub fn endpoint_names(&self) -> Vec<String> {
        self.endpoints.iter().map(|endpoint| endpoint.name.clone()).collect()
    }

    /// Allows `endpoints` for `http` steps, with a caller for them.
    pub fn with_endpoints(mut self, endpoints: Vec<crate::document::http::Endpoint>) -> Result<ServeConfig, String> {
        self.caller = Some(std::sync::Arc::new(crate::document::http::Caller::new(endpoints.clone())?));
        self.endpoints = endpoints;
        Ok(self)
    }

    /// The defaults every variable falls back to, for a given Evolution URL;
    /// but no console, so an embedded server (the tests) binds only the
    /// listener it is given.
    pub fn defaults(evolution_url: &str) -> ServeConfig {
        ServeConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 8080)),
            console_bind: None,
            console_secure_cookie: false,
            evolution_url: evolution_url.trim_end_matches('/').to_owned(),
            evolution_api_key: None,
            evolution_instance_keys: HashMap::new(),
            send_timeout: Duration::from_secs(10),
            send_interval: Some(Duration::from_millis(50)),
            send_concurrency: 8,
            webhook_secret: None,
            webhook_secrets: HashMap::new(),
            webhook_secret_header: "x-webhook-secret".to_owned(),
            webhook_jwt_key: None,
            max_body_bytes: 2 * 1024 * 1024,
            http: crate::serve::HttpLimits::default(),
            answer_groups: false,
            takeover_on_from_me: true,
            admin_tokens: Vec::new(),
            metrics_token: None,
            sweep_interval: Duration::from_secs(15),
            guard_interval: Duration::from_secs(30),
            rollup_interval: Duration::from_secs(60),
            model: None,
            endpoints: Vec::new(),
            caller: None,
            debounce: crate::serve::Debounce::default(),
            ignore: crate::ignore::IgnoreList::default(),
            retention: None,
            log_json: false,
            chatwoot: crate::chatwoot::ChatwootConfig::default(),
            business_hours: crate::hours::BusinessHours::default(),
            hours_clock: switchyard_engine::time::Timestamp::now_utc,
            media: crate::serve::MediaConfig::default(),
        }
    }

    pub fn from_env() -> Result<ServeConfig, Vec<String>> {
        let mut problems = Vec::new();
        let bind_text = text_var("BIND_ADDR", &mut problems).unwrap_or_else(|| "0.0.0.0:8080".to_owned());
        let bind = match bind_text.parse::<SocketAddr>() {
            Ok(bind) => bind,
            Err(_) => {
                problems.push(format!("BIND_ADDR '{bind_text}' must be an address and port such as 0.0.0.0:8080"));
                SocketAddr::from(([0, 0, 0, 0], 8080))
            }
        };
        let console_text = text_var("CONSOLE_BIND_ADDR", &mut problems).unwrap_or_else(|| DEFAULT_CONSOLE_BIND.to_owned());
        let console_bind = match console_text.as_str() {
            "off" => None,
            text => match text.parse::<SocketAddr>() {
                Ok(console) if console == bind && console.port() != 0 => {
                    problems.push(format!("CONSOLE_BIND_ADDR '{text}' is BIND_ADDR too: give the console its own port, such as 127.0.0.1:8081 (or off)"));
                    None
                }
                Ok(console) => Some(console),
                Err(_) => {
                    problems.push(format!("CONSOLE_BIND_ADDR '{text}' must be an address and port such as 127.0.0.1:8081, or off"));
                    None
                }
            },
        };
        let evolution_url = match text_var("EVOLUTION_URL", &mut problems) {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => url.trim_end_matches('/').to_owned(),
            Some(url) => {
                problems.push(format!("EVOLUTION_URL '{url}' must start with http:// or https://"));
                String::new()
            }
            None => {
                problems.push("EVOLUTION_URL is required: the base URL of your Evolution API server, e.g. http://localhost:8080".to_owned());
                String::new()
            }
        };
        let send_interval = match text_var("SEND_THROTTLE", &mut problems).as_deref() {
            None => Some(Duration::from_millis(50)),
            Some("off") | Some("0") => None,
            Some(text) => match text.strip_suffix("/s").and_then(|n| n.trim().parse::<f64>().ok()) {
                // `1e-300/s` would be an interval past what a Duration holds
                // (`from_secs_f64` panics) and `1e300/s` rounds to zero: both
                // are rejected with the message below, not a panic.
                Some(per_second) if per_second > 0.0 && per_second.is_finite() => match Duration::try_from_secs_f64(1.0 / per_second) {
                    Ok(interval) if !interval.is_zero() => Some(interval),
                    _ => {
                        problems.push(format!("SEND_THROTTLE '{text}' is out of range: messages per second per instance, such as 20/s, or off"));
                        None
                    }
                },
                _ => {
                    problems.push(format!("SEND_THROTTLE '{text}' must be messages per second per instance, such as 20/s, or off"));
                    None
                }
            },
        };
        let max_body_bytes = match text_var("WEBHOOK_MAX_BODY_BYTES", &mut problems) {
            None => 2 * 1024 * 1024,
            Some(text) => match text.parse::<usize>() {
                Ok(bytes) if bytes >= 1024 => bytes,
                _ => {
                    problems.push(format!("WEBHOOK_MAX_BODY_BYTES '{text}' must be a number of bytes, at least 1024"));
                    2 * 1024 * 1024
                }
            },
        };
        let http_defaults = crate::serve::HttpLimits::default();
        let http = crate::serve::HttpLimits {
            header_timeout: duration_var("HTTP_HEADER_TIMEOUT", http_defaults.header_timeout, &mut problems),
            request_timeout: duration_var("HTTP_REQUEST_TIMEOUT", http_defaults.request_timeout, &mut problems),
            max_connections: match text_var("HTTP_MAX_CONNECTIONS", &mut problems) {
                None => http_defaults.max_connections,
                Some(text) => match text.parse::<usize>() {
                    Ok(count) if (1..=100_000).contains(&count) => count,
                    _ => {
                        problems.push(format!("HTTP_MAX_CONNECTIONS '{text}' must be a whole number from 1 to 100000"));
                        http_defaults.max_connections
                    }
                },
            },
        };
        let send_timeout_for_media = duration_var("SEND_TIMEOUT", Duration::from_secs(10), &mut Vec::new());
        let media = crate::serve::MediaConfig::from_env(send_timeout_for_media, &mut problems);
        let config = ServeConfig {
            media,
            bind,
            console_bind,
            console_secure_cookie: bool_var("CONSOLE_SECURE_COOKIE", false, &mut problems),
            evolution_url,
            evolution_api_key: text_var("EVOLUTION_API_KEY", &mut problems),
            evolution_instance_keys: map_var("EVOLUTION_INSTANCE_KEYS", &mut problems),
            send_timeout: {
                let timeout = duration_var("SEND_TIMEOUT", Duration::from_secs(10), &mut problems);
                // A reply being sent is claimed for CLAIM; a send that could
                // outlast half of it might be sent again by another process.
                let most = switchyard_store::postgres::CLAIM / 2;
                if timeout > most {
                    problems.push(format!("SEND_TIMEOUT '{}s' must be at most {}s", timeout.as_secs(), most.as_secs()));
                }
                timeout
            },
            send_interval,
            send_concurrency: match text_var("SEND_CONCURRENCY", &mut problems) {
                None => 8,
                Some(text) => match text.parse::<usize>() {
                    Ok(count) if (1..=1000).contains(&count) => count,
                    _ => {
                        problems.push(format!("SEND_CONCURRENCY '{text}' must be a number of sends in flight per instance, from 1 to 1000"));
                        8
                    }
                },
            },
            webhook_secret: text_var("WEBHOOK_SECRET", &mut problems),
            webhook_secrets: map_var("WEBHOOK_SECRETS", &mut problems),
            webhook_secret_header: text_var("WEBHOOK_SECRET_HEADER", &mut problems)
                .unwrap_or_else(|| "x-webhook-secret".to_owned())
                .to_ascii_lowercase(),
            webhook_jwt_key: text_var("WEBHOOK_JWT_KEY", &mut problems),
            max_body_bytes,
            http,
            answer_groups: bool_var("ANSWER_GROUPS", false, &mut problems),
            takeover_on_from_me: bool_var("TAKEOVER_ON_FROM_ME", true, &mut problems),
            admin_tokens: {
                let mut tokens: Vec<(String, String)> = map_var("ADMIN_TOKENS", &mut problems).into_iter().collect();
                tokens.sort();
                if let Some(token) = text_var("ADMIN_TOKEN", &mut problems) {
                    tokens.push(("admin".to_owned(), token));
                }
                tokens
            },
            metrics_token: text_var("METRICS_TOKEN", &mut problems),
            sweep_interval: duration_var("SWEEP_INTERVAL", Duration::from_secs(15), &mut problems),
            guard_interval: duration_var("GUARD_INTERVAL", Duration::from_secs(30), &mut problems),
            rollup_interval: duration_var("ROLLUP_INTERVAL", Duration::from_secs(60), &mut problems),
            model: None,
            endpoints: crate::config_file::endpoints().to_vec(),
            caller: match crate::document::http::Caller::new(crate::config_file::endpoints().to_vec()) {
                Ok(caller) => Some(std::sync::Arc::new(caller)),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
            debounce: text_var("DEBOUNCE", &mut problems)
                .map(|text| crate::serve::Debounce::parse(&text).map_err(|problem| problems.push(format!("DEBOUNCE: {problem}"))).unwrap_or_default())
                .unwrap_or_default(),
            ignore: text_var("IGNORE_JIDS", &mut problems)
                .map(|text| crate::ignore::IgnoreList::parse(&text).map_err(|problem| problems.push(format!("IGNORE_JIDS: {problem}"))).unwrap_or_default())
                .unwrap_or_default(),
            retention: match text_var("RETENTION", &mut problems).as_deref() {
                None | Some("off") => None,
                Some(text) => match parse_duration(text) {
                    Ok(duration) if duration >= Duration::from_secs(3600) => Some(duration),
                    Ok(_) => {
                        problems.push(format!("RETENTION '{text}' must be at least 1h (or off)"));
                        None
                    }
                    Err(problem) => {
                        problems.push(format!("RETENTION: {problem}"));
                        None
                    }
                },
            },
            chatwoot: crate::chatwoot::ChatwootConfig::from_env(&mut problems),
            business_hours: match var("BUSINESS_HOURS") {
                Ok(Some(text)) if text.trim().is_empty() => {
                    problems.push("BUSINESS_HOURS is set but blank: give a timetable (*=mon-fri 09:00-18:00) or unset it".to_owned());
                    crate::hours::BusinessHours::default()
                }
                Ok(Some(text)) => crate::hours::BusinessHours::parse(&text).unwrap_or_else(|problem| {
                    problems.push(format!("BUSINESS_HOURS: {problem}"));
                    crate::hours::BusinessHours::default()
                }),
                Ok(None) => crate::hours::BusinessHours::default(),
                Err(problem) => {
                    problems.push(problem);
                    crate::hours::BusinessHours::default()
                }
            },
            hours_clock: switchyard_engine::time::Timestamp::now_utc,
            log_json: match text_var("LOG_FORMAT", &mut problems).map(|text| text.to_ascii_lowercase()).as_deref() {
                None | Some("text") => false,
                Some("json") => true,
                Some(other) => {
                    problems.push(format!("LOG_FORMAT '{other}' must be text or json"));
                    false
                }
            },
        };
        if axum::http::HeaderName::from_bytes(config.webhook_secret_header.as_bytes()).is_err() {
            problems.push(format!("WEBHOOK_SECRET_HEADER '{}' is not a valid header name", config.webhook_secret_header));
        }
        if problems.is_empty() { Ok(config) } else { Err(problems) }
    }
}
