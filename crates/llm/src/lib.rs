//! The model behind Switchyard's classification phase: an OpenAI-compatible
//! chat-completions client (OpenAI, Ollama, vLLM, llama.cpp server ...) that
//! implements the engine's [`Model`] trait.
//!
//! Each request is answered within the turn's budget (`LLM_TIMEOUT`, 5 s by
//! default: a conversation never waits longer), with one retry when a call
//! fails fast (429, 5xx, connection reset) and time remains, behind a circuit
//! breaker (5 failed calls in a row open it for 30 s; a timeout counts only
//! when the call had the whole `LLM_TIMEOUT`) and a bounded cache of
//! classification answers (extraction answers, the customer's own data, are
//! never cached).
//! Failures are answers too (`Answer::Failed`): the keyword classifier then
//! decides. Neither the API key nor the prompt or the customer's text is ever
//! logged.
//!
//! # Layout
//! - [`wire`]: the only code that knows the chat-completions JSON.
//! - [`breaker`]: the circuit breaker.
//! - [`cache`]: the bounded answer cache.
//! - [`transcribe`]: speech to text (`/audio/transcriptions`, multipart) for voice notes.

pub mod breaker;
pub mod cache;
pub mod transcribe;
pub mod wire;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use switchyard_engine::classify::{Answer, Model, Request, Usage, Wanted};
use switchyard_engine::text::normalize;

use crate::breaker::Breaker;
use crate::cache::Cache;

/// Longest customer text sent to the model; the rest is cut (it costs tokens
/// and never changes an intent).
const MAX_TEXT_CHARS: usize = 1000;
/// Pause before the one retry.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Where the model is and how long a turn may wait for it.
#[derive(Clone)]
pub struct Settings {
    /// `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama) ...
    pub base_url: reqwest::Url,
    pub api_key: Option<String>,
    pub model: String,
    pub timeout: Duration,
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    pub cache_capacity: usize,
}

impl std::fmt::Debug for Settings {
    /// The API key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads `LLM_BASE_URL`, `LLM_API_KEY`, `LLM_MODEL` and `LLM_TIMEOUT`
    /// values. `Ok(None)` without `LLM_BASE_URL`: offline, the keyword
    /// classifiers decide. Every problem is one line naming the value.
    pub fn parse(
        base_url: Option<&str>,
        api_key: Option<&str>,
        model: Option<&str>,
        timeout: Option<&str>,
    ) -> Result<Option<Settings>, Vec<String>> {
        let mut problems = Vec::new();
        let timeout = match timeout.map(str::trim) {
            None | Some("") => Duration::from_secs(5),
            Some(text) => match switchyard_engine::time::parse_duration(text) {
                Ok(duration) if duration >= Duration::from_millis(10) && duration <= Duration::from_secs(120) => duration,
                Ok(_) => {
                    problems.push(format!("LLM_TIMEOUT '{text}' must be between 10ms and 120s"));
                    Duration::from_secs(5)
                }
                Err(problem) => {
                    problems.push(format!("LLM_TIMEOUT: {problem}"));
                    Duration::from_secs(5)
                }
            },
        };
        let Some(base_url) = base_url.map(str::trim).filter(|url| !url.is_empty()) else {
            if model.is_some_and(|model| !model.trim().is_empty()) {
                problems.push("LLM_MODEL is set but LLM_BASE_URL is not (set LLM_BASE_URL, e.g. http://localhost:11434/v1)".to_owned());
            }
            return if problems.is_empty() { Ok(None) } else { Err(problems) };
        };
        let url = match reqwest::Url::parse(base_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
            Ok(url) => {
                problems.push(format!("LLM_BASE_URL '{base_url}' must be an http or https URL, not '{}'", url.scheme()));
                None
            }
            Err(problem) => {
                problems.push(format!("LLM_BASE_URL '{base_url}' is not a URL ({problem}); e.g. https://api.openai.com/v1"));
                None
            }
        };
        let model = match model.map(str::trim).filter(|model| !model.is_empty()) {
            Some(model) => model.to_owned(),
            None => {
                problems.push("LLM_MODEL is required when LLM_BASE_URL is set (e.g. gpt-4o-mini, llama3.2)".to_owned());
                String::new()
            }
        };
        match url {
            Some(base_url) if problems.is_empty() => Ok(Some(Settings {
                base_url,
                api_key: api_key.map(str::trim).filter(|key| !key.is_empty()).map(str::to_owned),
                model,
                timeout,
                breaker_threshold: 5,
                breaker_cooldown: Duration::from_secs(30),
                cache_capacity: 4096,
            })),
            _ => Err(problems),
        }
    }

    fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.as_str().trim_end_matches('/'))
    }
}

/// Per (flow, version, task) figures since start, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskStats {
    /// Questions answered (cache hits and failures included).
    pub requests: u64,
    /// HTTP calls made (retries included).
    pub calls: u64,
    pub cache_hits: u64,
    /// Questions that ended without an answer, by reason.
    pub failures: BTreeMap<String, u64>,
    pub latency_ms_total: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// The OpenAI-compatible model.
pub struct Llm {
    settings: Settings,
    http: reqwest::Client,
    endpoint: String,
    breaker: Breaker,
    cache: Cache,
    /// Cleared when the server refuses the JSON-schema response format;
    /// later calls then rely on tolerant parsing.
    schema_supported: AtomicBool,
    stats: Mutex<BTreeMap<(String, u32, String), TaskStats>>,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Why one HTTP call gave no answer.
#[derive(Debug)]
enum CallError {
    /// Worth one retry: 429, 5xx, connection trouble.
    Retryable(String),
    /// The server does not want the JSON-schema response format.
    SchemaRefused,
    /// The provider answered, but not usefully (401, 404, a non-completion body).
    Final(String),
    Timeout,
}

impl Llm {
    pub fn new(settings: Settings) -> Result<Llm, String> {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let http = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("llm http client: {err}"))?;
        Ok(Llm {
            endpoint: settings.endpoint(),
            breaker: Breaker::new(settings.breaker_threshold, settings.breaker_cooldown),
            cache: Cache::new(settings.cache_capacity),
            schema_supported: AtomicBool::new(true),
            stats: Mutex::new(BTreeMap::new()),
            settings,
            http,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Figures per (flow, version, task).
    pub fn stats(&self) -> BTreeMap<(String, u32, String), TaskStats> {
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn record(&self, request: &Request, update: impl FnOnce(&mut TaskStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (request.flow.as_str().to_owned(), request.version.number(), request.task.to_owned());
        update(stats.entry(key).or_default());
    }

    /// Answers one request before `deadline`.
    pub async fn answer(&self, request: &Request, deadline: Instant) -> Answer {
        let started = Instant::now();
        let system = wire::system_message(request.prompt, request.ask);
        let text: String = request.text.chars().take(MAX_TEXT_CHARS).collect();
        let fingerprint = prompt_fingerprint(&self.settings.model, &system, request.ask);
        // Only classification answers are cached. An extraction answer is the
        // customer's own data (CPF, e-mail ...): keyed on the normalised text,
        // which turns punctuation into spaces, `joao.silva arroba gmail` and
        // `joao_silva arroba gmail` would share an entry and the second customer
        // would be given the first one's e-mail. Keyed on the exact text it would
        // almost never be hit, and would keep personal data in memory for nothing.
        let cache_key = matches!(request.ask, Wanted::Class(_)).then(|| normalize(&text));
        let cached = cache_key.as_deref().and_then(|normalized| self.cache.get(&fingerprint, normalized));
        let answer = match cached {
            Some(values) => {
                self.record(request, |stats| stats.cache_hits += 1);
                Answer::Values { values, usage: Usage { cached: true, ..Usage::default() } }
            }
            None => self.call_with_retry(request, &system, &text, &fingerprint, cache_key.as_deref(), deadline).await,
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        self.record(request, |stats| {
            stats.requests += 1;
            stats.latency_ms_total += latency_ms;
            match &answer {
                Answer::Values { usage, .. } => {
                    stats.prompt_tokens += usage.prompt_tokens;
                    stats.completion_tokens += usage.completion_tokens;
                }
                Answer::Failed { reason, .. } => *stats.failures.entry(reason.clone()).or_default() += 1,
            }
        });
        match &answer {
            Answer::Values { usage, .. } => tracing::debug!(
                flow = %request.flow, version = %request.version, task = request.task,
                latency_ms, prompt_tokens = usage.prompt_tokens, completion_tokens = usage.completion_tokens,
                cached = usage.cached, "model answered"
            ),
            Answer::Failed { reason, .. } => tracing::warn!(
                flow = %request.flow, version = %request.version, task = request.task,
                latency_ms, reason = %reason, "model gave no answer; keywords decide"
            ),
        }
        answer
    }

    async fn call_with_retry(
        &self,
        request: &Request,
        system: &str,
        text: &str,
        fingerprint: &str,
        cache_key: Option<&str>,
        deadline: Instant,
    ) -> Answer {
        let started = Instant::now();
        let failed = |reason: &str| Answer::Failed { reason: reason.to_owned(), latency_ms: started.elapsed().as_millis() as u64 };
        let mut retried = false;
        loop {
            // The budget first: `allow()` on an open circuit past its cooldown
            // makes this call the half-open trial, and a trial that is never
            // sent would leave the circuit half-open for good.
            let Some(remaining) = deadline.checked_duration_since(Instant::now()).filter(|left| !left.is_zero()) else {
                return failed("timeout");
            };
            if !self.breaker.allow() {
                return failed("circuit_open");
            }
            let full_wait = gets_full_wait(remaining, self.settings.timeout);
            let with_schema = self.schema_supported.load(Ordering::Relaxed);
            self.record(request, |stats| stats.calls += 1);
            let call_started = Instant::now();
            let result = tokio::time::timeout(remaining, self.call(system, text, request, with_schema)).await;
            let result = result.unwrap_or(Err(CallError::Timeout));
            match result {
                Ok(completion) => {
                    self.breaker.success();
                    let usage = Usage {
                        latency_ms: call_started.elapsed().as_millis() as u64,
                        prompt_tokens: completion.prompt_tokens,
                        completion_tokens: completion.completion_tokens,
                        cached: false,
                    };
                    return match wire::values(&completion.content) {
                        Some(values) => {
                            if let Some(normalized) = cache_key {
                                self.cache.put(fingerprint, normalized, values.clone());
                            }
                            Answer::Values { values, usage }
                        }
                        None => Answer::Failed { reason: "malformed".to_owned(), latency_ms: usage.latency_ms },
                    };
                }
                Err(CallError::SchemaRefused) if with_schema => {
                    // Not the provider's fault: ask again at once without the
                    // schema, and from now on always.
                    self.breaker.success();
                    self.schema_supported.store(false, Ordering::Relaxed);
                    tracing::info!("the model server refused the JSON-schema response format; using plain JSON answers");
                }
                Err(CallError::SchemaRefused) => {
                    self.breaker.success();
                    return failed("http_400");
                }
                Err(CallError::Final(reason)) => {
                    self.breaker.success();
                    return failed(&reason);
                }
                Err(CallError::Timeout) if full_wait => {
                    self.breaker.failure();
                    return failed("timeout");
                }
                Err(CallError::Timeout) => {
                    // Cut short by what was left of the turn's budget (a later
                    // round, or the retry), not by LLM_TIMEOUT: no verdict on
                    // the provider, but a half-open trial is given back.
                    self.breaker.release();
                    return failed("timeout");
                }
                Err(CallError::Retryable(reason)) => {
                    let opened = self.breaker.failure();
                    if opened {
                        tracing::warn!(reason = %reason, "model circuit opened: keywords decide until it recovers");
                    }
                    let fits = deadline.checked_duration_since(Instant::now()).is_some_and(|left| left > RETRY_PAUSE * 2);
                    if retried || !fits || opened {
                        return failed(&reason);
                    }
                    retried = true;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    async fn call(&self, system: &str, text: &str, request: &Request, with_schema: bool) -> Result<wire::Completion, CallError> {
        let body = wire::body(&self.settings.model, system, text, request.ask, with_schema);
        let mut builder = self.http.post(&self.endpoint).json(&body);
        if let Some(key) = &self.settings.api_key {
            builder = builder.bearer_auth(key);
        }
        let response = builder.send().await.map_err(|err| {
            if err.is_timeout() { CallError::Timeout } else { CallError::Retryable("unreachable".to_owned()) }
        })?;
        let status = response.status();
        let body = response.text().await.map_err(|_| CallError::Retryable("unreachable".to_owned()))?;
        if status.is_success() {
            return wire::completion(&body).ok_or_else(|| CallError::Final("malformed".to_owned()));
        }
        let code = status.as_u16();
        if code == 400 && with_schema {
            let message = wire::error_message(&body).unwrap_or_default().to_lowercase();
            if message.contains("response_format") || message.contains("json_schema") || message.contains("schema") {
                return Err(CallError::SchemaRefused);
            }
        }
        if code == 429 || code == 408 || status.is_server_error() {
            return Err(CallError::Retryable(format!("http_{code}")));
        }
        Err(CallError::Final(format!("http_{code}")))
    }
}

/// Whether a call that may wait `given` had the configured `timeout` to
/// answer, so that its timeout is the provider's failure. The first round of
/// a turn is given the timeout less the few moments the turn took before
/// asking, hence the tenth of slack; a later round or a retry with less left
/// is limited by the turn's budget, and its timeout says nothing about the
/// provider.
fn gets_full_wait(given: Duration, timeout: Duration) -> bool {
    given >= timeout - timeout / 10
}

/// SHA-256 over the model, the system message and the answer schema: two
/// versions with different prompts never share cache entries.
pub fn prompt_fingerprint(model: &str, system: &str, ask: switchyard_engine::classify::Wanted) -> String {
    let mut hasher = Sha256::new();
    for part in [model, system, &wire::schema(ask).to_string()] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Model for Llm {
    fn decide<'a>(&'a self, requests: &'a [Request], budget: Duration) -> Pin<Box<dyn Future<Output = Vec<Answer>> + Send + 'a>> {
        Box::pin(async move {
            let deadline = Instant::now() + budget;
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                answers.push(self.answer(request, deadline).await);
            }
            answers
        })
    }

    fn budget(&self) -> Duration {
        self.settings.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_without_a_base_url_and_one_line_per_bad_value() {
        assert!(matches!(Settings::parse(None, None, None, None), Ok(None)));
        let problems = Settings::parse(Some("localhost:11434"), None, None, Some("soon")).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|line| line.contains("LLM_TIMEOUT") && line.contains("'soon'")), "{problems:?}");
        assert!(problems.iter().any(|line| line.contains("LLM_BASE_URL 'localhost:11434'")), "{problems:?}");
        assert!(problems.iter().any(|line| line.contains("LLM_MODEL is required")), "{problems:?}");
        let problems = Settings::parse(Some("not a url"), None, Some("m"), None).unwrap_err();
        assert!(problems[0].contains("'not a url' is not a URL"), "{problems:?}");
        let settings = Settings::parse(Some("http://127.0.0.1:11434/v1/"), Some("sk-secret"), Some("llama3.2"), Some("750ms"))
            .unwrap()
            .unwrap();
        assert_eq!(settings.timeout, Duration::from_millis(750));
        assert_eq!(settings.endpoint(), "http://127.0.0.1:11434/v1/chat/completions");
        assert!(!format!("{settings:?}").contains("sk-secret"));
    }
}
