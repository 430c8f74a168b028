//! The optional TOML configuration file. It holds everything the
//! environment can set, under the variable's name in lower case; the
//! environment wins over the file, the file over the defaults.
//!
//! ```toml
//! database_url = "sqlite:///var/lib/switchyard/switchyard.db"
//! session_ttl = "30m"
//! answer_groups = false
//! webhook_max_body_bytes = 2097152
//! ignore_jids = ["5511999990000", "@g.us"]      # lists join with ","
//! debounce = { vendas = "3s", suporte = "off" } # tables become name=value,...
//! ```
//!
//! One table is not a variable: `[endpoints.NAME]`, the allow-list of URLs
//! (with headers and secrets) that flow documents' `http` steps may call by
//! name (see [`crate::document::http`]).
//!
//! The file is `SWITCHYARD_CONFIG` when set (it must exist), else
//! `switchyard.toml` in the working directory when there is one.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Every setting: (variable, default as shown by `check`, secret).
pub const SETTINGS: &[(&str, &str, bool)] = &[
    ("DATABASE_URL", "sqlite://switchyard.db", false),
    ("DATABASE_MAX_CONNECTIONS", "10", false),
    ("DATABASE_ACQUIRE_TIMEOUT", "5s", false),
    ("SQLITE_SYNCHRONOUS", "full", false),
    ("FLOW_VERSION_OVERRIDES", "", false),
    ("SESSION_TTL", "30m", false),
    ("HANDOFF_TTL", "24h", false),
    ("LLM_BASE_URL", "", false),
    ("LLM_API_KEY", "", true),
    ("LLM_MODEL", "", false),
    ("LLM_TIMEOUT", "5s", false),
    ("COMMANDS_MENU", "menu", false),
    ("COMMANDS_EXIT", "sair,encerrar", false),
    ("COMMANDS_HUMAN", "atendente,humano", false),
    ("EVOLUTION_URL", "", false),
    ("EVOLUTION_API_KEY", "", true),
    ("EVOLUTION_INSTANCE_KEYS", "", true),
    ("BIND_ADDR", "0.0.0.0:8080", false),
    ("CONSOLE_BIND_ADDR", "127.0.0.1:8081", false),
    ("CONSOLE_SECURE_COOKIE", "false", false),
    ("WEBHOOK_SECRET", "", true),
    ("WEBHOOK_SECRETS", "", true),
    ("WEBHOOK_SECRET_HEADER", "x-webhook-secret", false),
    ("WEBHOOK_JWT_KEY", "", true),
    ("WEBHOOK_MAX_BODY_BYTES", "2097152", false),
    ("HTTP_HEADER_TIMEOUT", "10s", false),
    ("HTTP_REQUEST_TIMEOUT", "30s", false),
    ("HTTP_MAX_CONNECTIONS", "256", false),
    ("SEND_THROTTLE", "20/s", false),
    ("SEND_TIMEOUT", "10s", false),
    ("SEND_CONCURRENCY", "8", false),
    ("ANSWER_GROUPS", "false", false),
    ("TAKEOVER_ON_FROM_ME", "true", false),
    ("ADMIN_TOKENS", "", true),
    ("ADMIN_TOKEN", "", true),
    ("METRICS_TOKEN", "", true),
    ("SWEEP_INTERVAL", "15s", false),
    ("GUARD_INTERVAL", "30s", false),
    ("ROLLUP_INTERVAL", "60s", false),
    ("DEBOUNCE", "off", false),
    ("IGNORE_JIDS", "", false),
    ("RETENTION", "off", false),
    ("CHATWOOT_URL", "", false),
    ("CHATWOOT_ACCOUNT_ID", "", false),
    ("CHATWOOT_TOKEN", "", true),
    ("CHATWOOT_ACCOUNT_IDS", "", false),
    ("CHATWOOT_TOKENS", "", true),
    ("CHATWOOT_WEBHOOK_SECRET", "", true),
    ("CHATWOOT_TEAM_ID", "", false),
    ("CHATWOOT_LABELS", "", false),
    ("BUSINESS_HOURS", "", false),
    ("LOG_FORMAT", "text", false),
    ("RUST_LOG", "info", false),
];

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Environment,
    File,
    Default,
}

#[derive(Debug)]
struct Loaded {
    path: Option<String>,
    values: BTreeMap<String, String>,
    endpoints: Vec<crate::document::http::Endpoint>,
    problems: Vec<String>,
}

static LOADED: OnceLock<Loaded> = OnceLock::new();

fn loaded() -> &'static Loaded {
    LOADED.get_or_init(|| {
        let (path, required) = match std::env::var("SWITCHYARD_CONFIG") {
            Ok(path) if !path.trim().is_empty() => (path, true),
            _ => ("switchyard.toml".to_owned(), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse(&text).and_then(|values| endpoints_in(&text).map(|endpoints| (values, endpoints))) {
                Ok((values, endpoints)) => Loaded { path: Some(path), values, endpoints, problems: Vec::new() },
                Err(problems) => Loaded {
                    path: Some(path.clone()),
                    values: BTreeMap::new(),
                    endpoints: Vec::new(),
                    problems: problems.into_iter().map(|problem| format!("{path}: {problem}")).collect(),
                },
            },
            Err(err) if required || err.kind() != std::io::ErrorKind::NotFound => Loaded {
                path: Some(path.clone()),
                values: BTreeMap::new(),
                endpoints: Vec::new(),
                problems: vec![format!("SWITCHYARD_CONFIG '{path}' cannot be read: {err}")],
            },
            Err(_) => Loaded { path: None, values: BTreeMap::new(), endpoints: Vec::new(), problems: Vec::new() },
        }
    })
}

/// Turns one TOML value into the text the variable would hold.
fn flatten(key: &str, value: &toml::Value) -> Result<String, String> {
    let scalar = |value: &toml::Value| match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Boolean(flag) => Ok(flag.to_string()),
        toml::Value::Float(number) => Ok(number.to_string()),
        _ => Err(format!("key '{key}' must hold a string, number or boolean (or a list or table of them)")),
    };
    match value {
        toml::Value::Array(items) => Ok(items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?.join(",")),
        toml::Value::Table(table) => {
            Ok(table.iter().map(|(name, value)| scalar(value).map(|value| format!("{name}={value}"))).collect::<Result<Vec<_>, _>>()?.join(","))
        }
        other => scalar(other),
    }
}

/// Parses the file's text: every key must be a known setting.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, Vec<String>> {
    let table: toml::Table = text.parse().map_err(|err: toml::de::Error| vec![format!("not valid TOML: {}", err.message())])?;
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in &table {
        if key == "endpoints" {
            continue; // not a variable: see `endpoints_in`
        }
        let name = key.to_ascii_uppercase();
        if key != &key.to_ascii_lowercase() || !SETTINGS.iter().any(|(known, _, _)| *known == name) {
            let hint = SETTINGS
                .iter()
                .map(|(known, _, _)| known.to_ascii_lowercase())
                .find(|known| known.contains(&key.to_ascii_lowercase()) || key.to_ascii_lowercase().contains(known.as_str()))
                .map(|known| format!(" (did you mean '{known}'?)"))
                .unwrap_or_default();
            problems.push(format!("unknown key '{key}'{hint}: keys are the environment variables in lower case"));
            continue;
        }
        match flatten(key, value) {
            Ok(text) => {
                values.insert(name, text);
            }
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() { Ok(values) } else { Err(problems) }
}

/// The `[endpoints]` allow-list in the file's text (none when absent).
pub fn endpoints_in(text: &str) -> Result<Vec<crate::document::http::Endpoint>, Vec<String>> {
    let table: toml::Table = text.parse().map_err(|err: toml::de::Error| vec![format!("not valid TOML: {}", err.message())])?;
    match table.get("endpoints") {
        None => Ok(Vec::new()),
        Some(value) => crate::document::http::parse_endpoints(value),
    }
}

/// The endpoints `http` steps may call, from the file.
pub fn endpoints() -> &'static [crate::document::http::Endpoint] {
    &loaded().endpoints
}

/// The file's problems (unreadable, bad TOML, unknown keys), one line each.
pub fn problems() -> &'static [String] {
    &loaded().problems
}

/// The file in use, if any.
pub fn path() -> Option<&'static str> {
    loaded().path.as_deref()
}

/// The file's value for `name` (the variable's name).
pub fn value(name: &str) -> Option<&'static str> {
    loaded().values.get(name).map(String::as_str)
}

/// Every setting's effective value and where it came from, secrets redacted
/// (a database URL's password too) and numbers masked, for `check`.
pub fn effective() -> Vec<(&'static str, String, Source)> {
    SETTINGS
        .iter()
        .map(|(name, default, secret)| {
            let (value, source) = match std::env::var(name) {
                Ok(value) => (value, Source::Environment),
                Err(_) => match value(name) {
                    Some(value) => (value.to_owned(), Source::File),
                    None => ((*default).to_owned(), Source::Default),
                },
            };
            let shown = if value.is_empty() {
                "(none)".to_owned()
            } else if *secret {
                redact_secret(name, &value)
            } else if *name == "EVOLUTION_URL" || *name == "LLM_BASE_URL" || *name == "CHATWOOT_URL" {
                redact_url_credentials(&value)
            } else if *name == "DATABASE_URL" {
                switchyard_store::redact_url(&value)
            } else if *name == "IGNORE_JIDS" {
                // Customers' and suppliers' numbers: shown masked like in logs.
                switchyard_engine::mask::mask_text(&value)
            } else {
                value
            };
            (*name, shown, source)
        })
        .collect()
}

/// The settings that hold `name=secret,...` lists: only these keep the
/// names. Every other secret is one value, which may itself contain `=`
/// (base64 padding), so it is never split.
const NAMED_SECRET_LISTS: &[&str] = &["EVOLUTION_INSTANCE_KEYS", "WEBHOOK_SECRETS", "ADMIN_TOKENS", "CHATWOOT_TOKENS"];

/// `name=secret,...` keeps the names; a single-value secret, whatever it
/// holds, becomes `<redacted>`.
fn redact_secret(setting: &str, value: &str) -> String {
    if !NAMED_SECRET_LISTS.contains(&setting) {
        return "<redacted>".to_owned();
    }
    value
        .split(',')
        .map(|entry| match entry.split_once('=') {
            Some((name, _)) => format!("{}=<redacted>", name.trim()),
            None => "<redacted>".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `https://user:password@host/...` as `https://user:***@host/...`, and
/// `https://token@host/...` as `https://***@host/...` (over HTTP a lone user
/// name is often a token). Only the authority (up to the first `/`, `?` or
/// `#` after `://`) is looked at, so an `@` in the path or query (an
/// e-mail in a parameter) is not taken for credentials.
fn redact_url_credentials(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|idx| idx + 3) else { return url.to_owned() };
    let rest = &url[scheme_end..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_len].rfind('@') else { return url.to_owned() };
    let shown = match rest[..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{}{shown}{}", &url[..scheme_end], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_lists_and_tables_become_variable_text() {
        let values = parse(
            "database_url = 'sqlite://x.db'\nanswer_groups = true\nwebhook_max_body_bytes = 4096\n\
             ignore_jids = ['5511999990000', '@g.us']\ndebounce = { vendas = '3s', suporte = 'off' }\n",
        )
        .unwrap();
        assert_eq!(values["DATABASE_URL"], "sqlite://x.db");
        assert_eq!(values["ANSWER_GROUPS"], "true");
        assert_eq!(values["WEBHOOK_MAX_BODY_BYTES"], "4096");
        assert_eq!(values["IGNORE_JIDS"], "5511999990000,@g.us");
        assert_eq!(values["DEBOUNCE"], "suporte=off,vendas=3s");
    }

    #[test]
    fn unknown_keys_and_bad_toml_are_named() {
        let problems = parse("session_tll = '30m'\nDATABASE_URL = 'x'\n").unwrap_err();
        assert!(problems.iter().any(|problem| problem.contains("unknown key 'session_tll'")), "{problems:?}");
        assert!(problems.iter().any(|problem| problem.contains("'DATABASE_URL'")), "{problems:?}");
        let problems = parse("retention = 'off'\ndebounce_window = '3s'").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("'debounce_window'") && problems[0].contains("did you mean 'debounce'"), "{problems:?}");
        assert!(parse("a = ").unwrap_err()[0].starts_with("not valid TOML"));
        assert!(parse("session_ttl = 2026-01-01").unwrap_err()[0].contains("'session_ttl'"));
    }

    #[test]
    fn secrets_and_url_passwords_are_redacted() {
        assert_eq!(redact_secret("WEBHOOK_SECRETS", "vendas=abc,suporte=def"), "vendas=<redacted>,suporte=<redacted>");
        assert_eq!(redact_secret("WEBHOOK_SECRETS", "vendas=c2VjcmV0="), "vendas=<redacted>");
        assert_eq!(redact_secret("ADMIN_TOKEN", "abc"), "<redacted>");
        assert_eq!(switchyard_store::redact_url("postgres://app:s3cret@db:5432/switchyard"), "postgres://app:***@db:5432/switchyard");
        assert_eq!(switchyard_store::redact_url("sqlite://switchyard.db"), "sqlite://switchyard.db");
    }

    #[test]
    fn single_value_secrets_are_redacted_whole_even_with_base64_padding() {
        // `c2VjcmV0=` used to show as `c2VjcmV0=<redacted>`: the secret in full.
        for name in ["EVOLUTION_API_KEY", "WEBHOOK_SECRET", "WEBHOOK_JWT_KEY", "ADMIN_TOKEN", "LLM_API_KEY"] {
            assert_eq!(redact_secret(name, "c2VjcmV0="), "<redacted>", "{name}");
            assert_eq!(redact_secret(name, "a=b,c=d"), "<redacted>", "{name}");
        }
        for name in NAMED_SECRET_LISTS {
            assert_eq!(redact_secret(name, "loja=c2VjcmV0=,outra=eA=="), "loja=<redacted>,outra=<redacted>", "{name}");
        }
    }

    #[test]
    fn credentials_in_http_urls_are_redacted() {
        assert_eq!(redact_url_credentials("https://evo:s3cret@evolution.example.com/api"), "https://evo:***@evolution.example.com/api");
        assert_eq!(redact_url_credentials("http://user:p@ss:w0rd@127.0.0.1:8080"), "http://user:***@127.0.0.1:8080");
        assert_eq!(redact_url_credentials("https://sk-token123@llm.example.com/v1"), "https://***@llm.example.com/v1");
        assert_eq!(redact_url_credentials("http://127.0.0.1:11434/v1"), "http://127.0.0.1:11434/v1");
        assert_eq!(redact_url_credentials("https://host:8080/v1?owner=ana@x.com"), "https://host:8080/v1?owner=ana@x.com");
    }
}
