//! `POST /api/replay`: what `switchyard replay FLOW --candidate vN --json`
//! prints, over the admin API. The body names the flow, the candidate and
//! optionally the baseline, the window (`since`, `until`, `instance`),
//! `limit` (default 1,000, at most 10,000 sessions) and `min_sessions`.
//! The recorded sessions are read from the store and replayed through the
//! pure engine on a blocking thread, each in its own in-memory store: the
//! replay writes nothing and queues no message. It stops at a time budget
//! (a tenth of a second short of `HTTP_REQUEST_TIMEOUT`, at most
//! [`BUDGET`]); the answer says how many sessions it replayed of how many it
//! selected, and `"complete": false` when the budget cut it short.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use switchyard_engine::ids::InstanceId;
use switchyard_engine::time::Timestamp;
use switchyard_store::recorded::RecordedFilter;

use super::admin::{authorized, error, parse_body};
use super::AppState;
use crate::replay::corpus::Conversation;
use crate::replay::{aggregate, choose, document, replay_all};

/// Sessions replayed when the body names no limit.
const DEFAULT_LIMIT: u32 = 1_000;
/// The most a request may ask for (the CLI has no such bound).
const MAX_LIMIT: u32 = 10_000;
/// The longest a replay runs before it answers with what it has.
pub const BUDGET: Duration = Duration::from_secs(20);
/// Replayed sessions before a winner may be named, as on the command line.
const DEFAULT_MIN_SESSIONS: u64 = 100;

fn optional<'a>(body: &'a Value, name: &str, problems: &mut Vec<String>) -> Option<&'a str> {
    match body.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(other) => {
            problems.push(format!("body field '{name}' must be a string, not {other}"));
            None
        }
    }
}

fn number(body: &Value, name: &str, default: u64, max: u64, problems: &mut Vec<String>) -> u64 {
    match body.get(name) {
        None | Some(Value::Null) => default,
        Some(value) => match value.as_u64() {
            Some(number) if (1..=max).contains(&number) => number,
            _ => {
                problems.push(format!("body field '{name}' must be a whole number from 1 to {max}, not {value}"));
                default
            }
        },
    }
}

fn time(body: &Value, name: &str, problems: &mut Vec<String>) -> Option<Timestamp> {
    let text = optional(body, name, problems)?;
    Timestamp::parse_rfc3339(text).map_err(|problem| problems.push(format!("body field '{name}': {problem}"))).ok()
}

pub(super) async fn replay(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let started = Instant::now();
    if let Err(response) = authorized(&state, &headers) {
        return response;
    }
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut problems = Vec::new();
    let known = ["flow", "candidate", "baseline", "since", "until", "instance", "limit", "min_sessions"];
    if let Some(fields) = body.as_object() {
        problems.extend(fields.keys().filter(|key| !known.contains(&key.as_str())).map(|key| format!("body field '{key}' is not one of {}", known.join(", "))));
    } else {
        problems.push("body must be a JSON object".to_owned());
    }
    let flow = optional(&body, "flow", &mut problems);
    let candidate = optional(&body, "candidate", &mut problems);
    let baseline = optional(&body, "baseline", &mut problems);
    let (since, until) = (time(&body, "since", &mut problems), time(&body, "until", &mut problems));
    let instance = optional(&body, "instance", &mut problems).and_then(|text| InstanceId::parse(text).map_err(|problem| problems.push(format!("body field 'instance': {problem}"))).ok());
    let limit = number(&body, "limit", u64::from(DEFAULT_LIMIT), u64::from(MAX_LIMIT), &mut problems) as u32;
    let min_sessions = number(&body, "min_sessions", DEFAULT_MIN_SESSIONS, u64::from(u32::MAX), &mut problems);
    let (Some(flow), Some(candidate)) = (flow, candidate) else {
        problems.push("body fields 'flow' and 'candidate' are required strings".to_owned());
        return error(StatusCode::BAD_REQUEST, problems.join("; "));
    };
    let registry = state.engine().registry().clone();
    let choice = match choose(&registry, flow, ("candidate", candidate), baseline.map(|text| ("baseline", text))) {
        Ok(choice) if problems.is_empty() => choice,
        Ok(_) => return error(StatusCode::BAD_REQUEST, problems.join("; ")),
        Err(mut more) => {
            problems.append(&mut more);
            return error(StatusCode::BAD_REQUEST, problems.join("; "));
        }
    };

    let filter = RecordedFilter { flow, since, until, instance: instance.as_ref(), limit };
    let recorded = match state.store().recorded_sessions(&filter).await {
        Ok(recorded) => recorded,
        Err(err) => {
            tracing::error!(error = %err, "replay could not read the recorded sessions");
            return error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable, retry later");
        }
    };
    let selected = recorded.len();
    let conversations: Vec<Conversation> = recorded.iter().filter_map(|session| Conversation::from_recorded(flow, session)).collect();
    let skipped = (selected - conversations.len()) as u64;
    let replayer = match choice.replayer(registry, state.engine().config(), &conversations) {
        Ok(replayer) => replayer,
        Err(problem) => return error(StatusCode::UNPROCESSABLE_ENTITY, problem),
    };
    let budget = BUDGET.min(state.config().http.request_timeout.saturating_sub(Duration::from_millis(100)));
    let deadline = started + budget;
    let ran = tokio::task::spawn_blocking(move || {
        let results = replay_all(&replayer, &choice, &conversations, Some(deadline), |_| {});
        let summary = aggregate(&results, min_sessions);
        let mut answer = document(&choice.flow, choice.candidate, choice.baseline, skipped, &results, &summary);
        if let Value::Object(fields) = &mut answer {
            fields.insert("replayed".to_owned(), json!(results.len()));
            fields.insert("selected".to_owned(), json!(conversations.len()));
            fields.insert("complete".to_owned(), json!(results.len() == conversations.len()));
            fields.insert("budget_ms".to_owned(), json!(budget.as_millis() as u64));
        }
        answer
    })
    .await;
    match ran {
        Ok(answer) => (StatusCode::OK, Json(answer)).into_response(),
        Err(err) => {
            // Each session's panic is already caught as its own failure; this is the replay itself.
            tracing::error!(error = %err, "replay task failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "the replay failed; see the server log")
        }
    }
}
