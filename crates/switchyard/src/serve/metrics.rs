//! `GET /metrics` in Prometheus text format.
//!
//! Counts that must agree with `report` (sessions by flow/version/outcome,
//! messages in and out, outbox depth) are read from the store at scrape
//! time, so every process reports the same totals; they are counters the
//! store's triggers keep, so a scrape costs a few rows, not a table count. Per-process figures
//! (webhook results, processing and send latency) live in memory here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use switchyard_engine::queue::Queue;

use super::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A fixed-bucket latency histogram.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(idx) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[idx].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (idx, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[idx].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// This process's counters.
#[derive(Default)]
pub struct Metrics {
    webhook_results: Mutex<BTreeMap<u16, u64>>,
    pub processing: Histogram,
    pub send: Histogram,
}

impl Metrics {
    pub fn webhook_result(&self, status: StatusCode) {
        *self.webhook_results.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(status.as_u16()).or_default() += 1;
    }
}

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new().route("/metrics", get(render)).route_layer(axum::middleware::from_fn_with_state(state.clone(), token))
}

/// With `METRICS_TOKEN` set, a scrape must present it as a bearer token
/// (Prometheus: `authorization: {credentials: ...}`); without it, 401.
async fn token(State(state): State<AppState>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if let Some(expected) = &state.config().metrics_token {
        let presented = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if !presented.is_some_and(|presented| switchyard_evolution::auth::secret_matches(expected, presented)) {
            return (StatusCode::UNAUTHORIZED, [(axum::http::header::WWW_AUTHENTICATE, "Bearer")], "missing or wrong METRICS_TOKEN\n").into_response();
        }
    }
    next.run(request).await
}

/// Label values are escaped as the text format requires.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

async fn render(State(state): State<AppState>) -> Response {
    let store = state.store();
    let (sessions, messages, depth) = match (store.session_totals().await, store.message_totals().await, store.outbox_depth().await) {
        (Ok(sessions), Ok(messages), Ok(depth)) => (sessions, messages, depth),
        _ => return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response(),
    };
    let mut out = String::new();
    out.push_str("# HELP switchyard_sessions Sessions by flow, version and outcome (live = not ended), from the store.\n# TYPE switchyard_sessions gauge\n");
    for (flow, version, outcome, count) in &sessions {
        let _ = writeln!(out, "switchyard_sessions{{flow=\"{}\",version=\"{version}\",outcome=\"{}\"}} {count}", label(flow), label(outcome));
    }
    let _ = writeln!(out, "# HELP switchyard_messages_in_total Inbound messages accepted (all processes).\n# TYPE switchyard_messages_in_total counter\nswitchyard_messages_in_total {}", messages.0);
    let _ = writeln!(out, "# HELP switchyard_messages_out_total Replies delivered (all processes).\n# TYPE switchyard_messages_out_total counter\nswitchyard_messages_out_total {}", messages.1);
    let _ = writeln!(out, "# HELP switchyard_outbox_depth Replies waiting for delivery.\n# TYPE switchyard_outbox_depth gauge\nswitchyard_outbox_depth {depth}");
    out.push_str("# HELP switchyard_webhook_requests_total Webhook requests answered by this process, by status.\n# TYPE switchyard_webhook_requests_total counter\n");
    let results = state.inner.metrics.webhook_results.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    for (status, count) in results {
        let _ = writeln!(out, "switchyard_webhook_requests_total{{status=\"{status}\"}} {count}");
    }
    state.inner.metrics.processing.render(&mut out, "switchyard_processing_seconds", "Time to run and commit one turn (this process).");
    state.inner.metrics.send.render(&mut out, "switchyard_send_seconds", "Time of one sendText call to Evolution (this process).");
    guard_states(&state, &mut out).await;
    model_stats(&state, &mut out);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Model classification per flow version and task (this process): requests,
/// HTTP calls, cache hits, failures by reason, latency and tokens.
fn model_stats(state: &AppState, out: &mut String) {
    let Some(llm) = &state.config().model else { return };
    let stats = llm.stats();
    type Series = (&'static str, &'static str, &'static str, fn(&switchyard_llm::TaskStats) -> f64);
    let series: [Series; 6] = [
        ("switchyard_llm_requests_total", "counter", "Questions for the model (cache hits and failures included).", |s| s.requests as f64),
        ("switchyard_llm_calls_total", "counter", "HTTP calls to the model (retries included).", |s| s.calls as f64),
        ("switchyard_llm_cache_hits_total", "counter", "Questions answered from the cache.", |s| s.cache_hits as f64),
        ("switchyard_llm_latency_seconds_total", "counter", "Time spent waiting for the model.", |s| s.latency_ms_total as f64 / 1000.0),
        ("switchyard_llm_prompt_tokens_total", "counter", "Prompt tokens the provider counted.", |s| s.prompt_tokens as f64),
        ("switchyard_llm_completion_tokens_total", "counter", "Completion tokens the provider counted.", |s| s.completion_tokens as f64),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for ((flow, version, task), task_stats) in &stats {
            let _ = writeln!(out, "{name}{{flow=\"{}\",version=\"v{version}\",task=\"{}\"}} {}", label(flow), label(task), value(task_stats));
        }
    }
    out.push_str("# HELP switchyard_llm_failures_total Questions the model did not answer usefully, by reason (keywords decided).\n# TYPE switchyard_llm_failures_total counter\n");
    for ((flow, version, task), task_stats) in &stats {
        for (reason, count) in &task_stats.failures {
            let _ = writeln!(out, "switchyard_llm_failures_total{{flow=\"{}\",version=\"v{version}\",task=\"{}\",reason=\"{}\"}} {count}", label(flow), label(task), label(reason));
        }
    }
    let _ = writeln!(out, "# HELP switchyard_llm_circuit_open 1 while the model's circuit breaker is open.\n# TYPE switchyard_llm_circuit_open gauge\nswitchyard_llm_circuit_open {}", u8::from(llm.breaker_open()));
}

/// `switchyard_guard_state{flow}`: 0 no guard, 1 armed, 2 tripped (rolled back).
async fn guard_states(state: &AppState, out: &mut String) {
    let Ok((rules, _)) = state.store().load_policy().await else { return };
    out.push_str("# HELP switchyard_guard_state Split guard per flow: 0 none, 1 armed, 2 tripped (rolled back).\n# TYPE switchyard_guard_state gauge\n");
    for (flow, flow_rules) in rules.flows() {
        let value = match flow_rules.split.as_ref().and_then(|split| split.guard.as_ref()) {
            None => 0,
            Some(guard) if guard.tripped.is_some() => 2,
            Some(_) => 1,
        };
        let _ = writeln!(out, "switchyard_guard_state{{flow=\"{}\"}} {value}", label(flow));
    }
}
