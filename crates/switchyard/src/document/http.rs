//! The `http` step: a published flow reaching the team's own systems (an
//! n8n webhook, an order API) without a deploy.
//!
//! The step is pure, like every step: on entering it asks
//! [`Ctx::outside`] for the answer to its call and, the first time, waits
//! while the service ([`switchyard_engine::service::run_turn_with`]) makes
//! the call with [`Caller`] and runs the turn again with the answer, the
//! pattern model classification uses. The answer's JSON fills slots by JSON
//! pointer; a failure (timeout, a 4xx or 5xx, unreachable, JSON that does
//! not parse or lacks a mapped value) takes the `failure` branch.
//!
//! Endpoints are named in the configuration file, never in a document:
//!
//! ```toml
//! [endpoints.orders]
//! url = "https://erp.example.com/api"      # the base URL; a step adds its path
//! headers = { Authorization = "Bearer ..." } # secrets stay here
//! timeout = "3s"                           # per attempt (default 5s); one retry
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_engine::classify::{Answer, Outside, Request, Usage};
use switchyard_engine::flow::{Ctx, Next, Step, Target};

use super::Method;

/// The default time one attempt may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The built `http` step.
pub struct HttpStep {
    pub id: &'static str,
    pub endpoint: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub send: Vec<&'static str>,
    pub map: Vec<(&'static str, &'static str)>,
    pub then: Next,
    pub failure: Next,
}

impl HttpStep {
    /// The call as the caller reads it: method, path and the slots sent
    /// (a slot without a value is sent as null).
    fn call(&self, ctx: &Ctx<'_>) -> String {
        let body: BTreeMap<&str, Value> =
            self.send.iter().map(|slot| (*slot, ctx.data().get(slot).map_or(Value::Null, |value| Value::String(value.to_owned())))).collect();
        json!({"method": self.method.as_str(), "path": self.path, "body": body}).to_string()
    }

    /// The mapped slots from a response body, or why they cannot be read.
    fn read(&self, body: &str) -> Result<Vec<(&'static str, String)>, String> {
        let parsed: Value = serde_json::from_str(body).map_err(|_| "malformed_json".to_owned())?;
        self.map
            .iter()
            .map(|(slot, pointer)| match parsed.pointer(pointer) {
                Some(Value::String(text)) => Ok((*slot, text.clone())),
                Some(Value::Number(number)) => Ok((*slot, number.to_string())),
                Some(Value::Bool(flag)) => Ok((*slot, flag.to_string())),
                _ => Err(format!("missing {pointer}")),
            })
            .collect()
    }
}

impl Step for HttpStep {
    fn enter(&self, ctx: &mut Ctx<'_>) -> Next {
        let call = self.call(ctx);
        match ctx.outside(self.id, self.endpoint, call) {
            // The service makes the call and runs the turn again.
            None => Next::Wait,
            Some(Answer::Values { values, .. }) => {
                let body = values.iter().find(|(key, _)| key == "body").map_or("", |(_, body)| body.as_str());
                match self.read(body) {
                    Ok(filled) => {
                        for (slot, value) in filled {
                            ctx.data_mut().set(slot, value);
                        }
                        ctx.data_mut().remove("http_error");
                        self.then
                    }
                    Err(reason) => {
                        ctx.data_mut().set("http_error", reason);
                        self.failure
                    }
                }
            }
            Some(Answer::Failed { reason, .. }) => {
                ctx.data_mut().set("http_error", reason);
                self.failure
            }
        }
    }

    /// A session left waiting here (no caller ran the turn again) tries again.
    fn input(&self, ctx: &mut Ctx<'_>, _text: &str) -> Next {
        self.enter(ctx)
    }

    fn targets(&self) -> Vec<Target> {
        [self.then, self.failure].into_iter().filter_map(Next::target).collect()
    }
}

/// One allowed endpoint from the configuration file.
#[derive(Clone)]
pub struct Endpoint {
    pub name: String,
    /// The base URL, without a trailing `/`.
    pub url: String,
    /// Sent with every call; may hold secrets, so never shown or logged.
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("name", &self.name).field("url", &self.url).field("headers", &self.headers.len()).finish()
    }
}

/// Parses the configuration's `[endpoints]` table.
pub fn parse_endpoints(value: &toml::Value) -> Result<Vec<Endpoint>, Vec<String>> {
    let Some(table) = value.as_table() else { return Err(vec!["'endpoints' must be a table of [endpoints.NAME] tables".to_owned()]) };
    let mut endpoints = Vec::new();
    let mut problems = Vec::new();
    for (name, spec) in table {
        let valid_name = !name.is_empty() && name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-');
        if !valid_name {
            problems.push(format!("endpoint name '{name}' must be lowercase letters, digits, '_' or '-'"));
            continue;
        }
        let Some(spec) = spec.as_table() else {
            problems.push(format!("endpoint '{name}' must be a table with 'url' (and optional 'headers', 'timeout')"));
            continue;
        };
        for key in spec.keys() {
            if !["url", "headers", "timeout"].contains(&key.as_str()) {
                problems.push(format!("endpoint '{name}': unknown key '{key}' (known: url, headers, timeout)"));
            }
        }
        let url = match spec.get("url").and_then(toml::Value::as_str) {
            Some(url) if (url.starts_with("http://") || url.starts_with("https://")) && reqwest::Url::parse(url).is_ok() => url.trim_end_matches('/').to_owned(),
            Some(url) => {
                problems.push(format!("endpoint '{name}': url '{url}' is not an http(s) URL"));
                continue;
            }
            None => {
                problems.push(format!("endpoint '{name}' needs a url"));
                continue;
            }
        };
        let mut headers = Vec::new();
        match spec.get("headers") {
            None => {}
            Some(toml::Value::Table(table)) => {
                for (header, value) in table {
                    match value.as_str() {
                        Some(value) if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_ok() && reqwest::header::HeaderValue::from_str(value).is_ok() => {
                            headers.push((header.clone(), value.to_owned()));
                        }
                        _ => problems.push(format!("endpoint '{name}': header '{header}' must be a valid name with a string value")),
                    }
                }
            }
            Some(_) => problems.push(format!("endpoint '{name}': headers must be a table of name = \"value\"")),
        }
        let timeout = match spec.get("timeout") {
            None => DEFAULT_TIMEOUT,
            Some(value) => match value.as_str().map(switchyard_engine::time::parse_duration) {
                Some(Ok(duration)) if !duration.is_zero() => duration,
                _ => {
                    problems.push(format!("endpoint '{name}': timeout must be a duration such as \"3s\""));
                    continue;
                }
            },
        };
        endpoints.push(Endpoint { name: name.clone(), url, headers, timeout });
    }
    if problems.is_empty() { Ok(endpoints) } else { Err(problems) }
}

/// Makes the `http` steps' calls ([`Outside`]): each to its endpoint, with
/// the endpoint's headers and timeout, retried once after a timeout, a
/// connection failure or a 5xx.
#[derive(Clone, Debug)]
pub struct Caller {
    endpoints: Vec<Endpoint>,
    client: reqwest::Client,
}

impl Caller {
    pub fn new(endpoints: Vec<Endpoint>) -> Result<Caller, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("http step client: {err}"))?;
        Ok(Caller { endpoints, client })
    }

    async fn one(&self, request: &Request) -> Answer {
        let started = Instant::now();
        let failed = |reason: &str| Answer::Failed { reason: reason.to_owned(), latency_ms: elapsed_ms(started) };
        let Some(endpoint) = self.endpoints.iter().find(|endpoint| endpoint.name == request.prompt) else { return failed("unknown_endpoint") };
        let Ok(call) = serde_json::from_str::<Value>(&request.text) else { return failed("bad_call") };
        let path = call.get("path").and_then(Value::as_str).unwrap_or("");
        let body = call.get("body").cloned().unwrap_or(Value::Null);
        let get = call.get("method").and_then(Value::as_str) == Some("GET");
        let mut last = failed("unreachable");
        for _attempt in 0..2 {
            let url = format!("{}{path}", endpoint.url);
            let mut builder = if get {
                let query: Vec<(String, String)> = body
                    .as_object()
                    .map(|fields| fields.iter().filter_map(|(key, value)| value.as_str().map(|value| (key.clone(), value.to_owned()))).collect())
                    .unwrap_or_default();
                let mut url = match reqwest::Url::parse(&url) {
                    Ok(url) => url,
                    Err(_) => return failed("bad_url"),
                };
                url.query_pairs_mut().extend_pairs(query);
                self.client.get(url)
            } else {
                self.client.post(&url).header("content-type", "application/json").body(body.to_string())
            };
            for (name, value) in &endpoint.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            let sent = tokio::time::timeout(endpoint.timeout, async {
                let response = builder.send().await?;
                let status = response.status();
                let text = response.text().await?;
                Ok::<_, reqwest::Error>((status, text))
            })
            .await;
            match sent {
                Err(_) => last = failed("timeout"),
                Ok(Err(err)) if err.is_timeout() => last = failed("timeout"),
                Ok(Err(_)) => last = failed("unreachable"),
                Ok(Ok((status, text))) if status.is_success() => {
                    return Answer::Values {
                        values: vec![("status".to_owned(), status.as_u16().to_string()), ("body".to_owned(), text)],
                        usage: Usage { latency_ms: elapsed_ms(started), ..Usage::default() },
                    };
                }
                Ok(Ok((status, _))) if status.is_server_error() => last = failed(&format!("http_{}", status.as_u16())),
                // A 4xx will not change on a retry.
                Ok(Ok((status, _))) => return failed(&format!("http_{}", status.as_u16())),
            }
        }
        last
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Outside for Caller {
    fn call<'a>(&'a self, requests: &'a [Request]) -> Pin<Box<dyn Future<Output = Vec<Answer>> + Send + 'a>> {
        Box::pin(async move {
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                answers.push(self.one(request).await);
            }
            answers
        })
    }
}
