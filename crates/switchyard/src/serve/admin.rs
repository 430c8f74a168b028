//! The admin API under `/api`, closed unless an admin token is configured
//! (`ADMIN_TOKEN`, or named ones in `ADMIN_TOKENS=name=token,...`); every call
//! carries `Authorization: Bearer <token>`, and the token's name is recorded
//! as the actor of every change. The contract is `GET /api/openapi.json`.
//!
//! - `GET /api/rollout`: the override and every flow's rules.
//! - `PUT /api/rollout/{flow}` `{"rules": {...}, "reason": "..."}`: replace a
//!   flow's rules (validated, audited); `{"rules": {}}` clears them.
//! - `GET /api/explain?flow=&contact=&instance=`: the whole evaluation.
//! - `GET /api/audit?flow=&since=&until=`: policy changes and deploys.
//! - `GET /api/report?flow=&versions=&since=&until=&instance=&min_finished=`: the per-version report.
//! - `POST /api/handoffs/release` `{"instance","contact","reason"?}`: the bot answers the contact again (audited).
//! - `GET /api/health`: connections, outbox, send failures, the LLM breaker, holds (`views::health`).
//! - `GET /api/sessions?flow=&version=&step=&instance=&limit=`: live sessions.
//! - `GET /api/sessions/{contact}`: the contact's history on every instance.
//! - `POST /api/sessions/{contact}/end` `{"instance"?}`: end its live session(s) (`cancelled`, `operator`).
//! - `POST /api/sessions/{contact}/forget` `{"reason"}`: erase the contact (LGPD), audited with the token's name.
//! - `POST /api/replay` `{"flow","candidate",...}`: recorded sessions through a candidate (see `replay.rs`).

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::{rules_from_json, rules_to_json};

use super::AppState;
use crate::rollout::ChangeError;
use crate::views::records::AuditEntry;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/handoffs/release", post(release))
        .route("/api/rollout", get(show_rollout))
        .route("/api/rollout/{flow}", put(set_rollout))
        .route("/api/explain", get(explain))
        .route("/api/audit", get(audit))
        .route("/api/report", get(report))
        .route("/api/sessions", get(list_sessions))
        .route("/api/sessions/{contact}", get(show_sessions))
        .route("/api/sessions/{contact}/end", post(end_sessions))
        .route("/api/sessions/{contact}/forget", post(forget_contact))
        .route("/api/replay", post(super::replay::replay))
        .route("/api/openapi.json", get(openapi))
        // A flow document may be up to `document::MAX_BYTES`; a bigger body is a 413.
        .route("/api/flows", post(publish_flow).layer(DefaultBodyLimit::max(crate::document::MAX_BYTES * 2 + 64 * 1024)))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), token_first))
}

/// Admin bodies are a few small JSON fields.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request that carries a body (every method but GET) shows its token
/// before the body is read, so no one without one makes the server buffer
/// anything. The handlers check the token again for the actor's name.
async fn token_first(State(state): State<AppState>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if request.method() != axum::http::Method::GET
        && let Err(response) = authorized(&state, request.headers())
    {
        return response;
    }
    next.run(request).await
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// The name of the presented token, or the 401 to answer.
pub(super) fn authorized(state: &AppState, headers: &HeaderMap) -> Result<String, Response> {
    let tokens = &state.config().admin_tokens;
    if tokens.is_empty() {
        return Err(error(StatusCode::UNAUTHORIZED, "the admin API is closed: set ADMIN_TOKEN or ADMIN_TOKENS to open it"));
    }
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(presented) = presented else {
        return Err(error(StatusCode::UNAUTHORIZED, "missing bearer token"));
    };
    // Compare with every token (constant time each) so timing reveals nothing.
    let mut matched = None;
    for (name, token) in tokens {
        if switchyard_evolution::auth::secret_matches(token, presented) {
            matched = Some(name.clone());
        }
    }
    matched.ok_or_else(|| error(StatusCode::UNAUTHORIZED, "wrong bearer token"))
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, Response> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("body field '{name}' is required and must be a string")))
}

pub(super) fn parse_body(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|err| error(StatusCode::BAD_REQUEST, format!("body is not JSON: {err}")))
}

async fn release(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let actor = match authorized(&state, &headers) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let (instance, contact) = match (field(&body, "instance"), field(&body, "contact")) {
        (Ok(instance), Ok(contact)) => (instance, contact),
        (Err(response), _) | (_, Err(response)) => return response,
    };
    let instance = match InstanceId::parse(instance) {
        Ok(instance) => instance,
        Err(problem) => return error(StatusCode::BAD_REQUEST, problem),
    };
    let contact = match Contact::parse(contact) {
        Ok(contact) => contact,
        Err(problem) => return error(StatusCode::BAD_REQUEST, problem),
    };
    let reason = body.get("reason").and_then(Value::as_str).unwrap_or("released through the admin API");
    match crate::sessions::release_hold(state.store(), &instance, &contact, &actor, reason).await {
        Ok(released) => (StatusCode::OK, Json(released)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "handoff release failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable, retry later")
        }
    }
}

async fn show_rollout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return response;
    }
    match state.store().load_policy().await {
        Ok((rules, revision)) => {
            let flows: serde_json::Map<String, Value> = rules.flows().map(|(flow, rules)| (flow.to_owned(), rules_to_json(rules))).collect();
            let overrides = state.engine().resolver().overrides().to_string();
            (StatusCode::OK, Json(json!({ "overrides": overrides, "revision": revision, "flows": flows }))).into_response()
        }
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {err}")),
    }
}

/// `POST /api/flows`: `{"document": "<TOML>", "reason": "..."}` publishes
/// the document as the next version of its flow (see [`crate::document`]).
async fn publish_flow(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let actor = match authorized(&state, &headers) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let Some(source) = body.get("document").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "body field 'document' is required (the flow document, TOML, as a string)");
    };
    let reason = body.get("reason").and_then(Value::as_str).unwrap_or_default();
    let names = state.config().endpoint_names();
    let checks = crate::document::publish::Checks { endpoints: &names, base: None };
    match crate::document::publish::publish(state.store(), &state.engine().registry(), source, &actor, reason, checks).await {
        Ok(published) => {
            tracing::info!(flow = %published.flow, version = %published.version, %actor, seq = published.audit_seq, "flow version published");
            let body = json!({
                "flow": published.flow,
                "version": published.version.to_string(),
                "fingerprint": published.fingerprint,
                "lifecycle": "inactive",
                "audit_seq": published.audit_seq,
            });
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Err(crate::document::publish::PublishError::Invalid(problems)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": problems.join("; "), "problems": problems }))).into_response()
        }
        Err(crate::document::publish::PublishError::Store(switchyard_engine::store::StoreError::Conflict(problem))) => error(StatusCode::CONFLICT, problem),
        Err(crate::document::publish::PublishError::Store(err)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {err}")),
    }
}

async fn set_rollout(State(state): State<AppState>, headers: HeaderMap, Path(flow): Path<String>, body: axum::body::Bytes) -> Response {
    let actor = match authorized(&state, &headers) {
        Ok(actor) => actor,
        Err(response) => return response,
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let reason = body.get("reason").and_then(Value::as_str).unwrap_or_default();
    let Some(document) = body.get("rules") else {
        return error(StatusCode::BAD_REQUEST, "body field 'rules' is required (an object; {} clears the flow's rules)");
    };
    let rules = match rules_from_json(document) {
        Ok(rules) => rules,
        Err(problem) => return error(StatusCode::BAD_REQUEST, format!("rules: {problem}")),
    };
    let action = if rules.is_empty() { "clear" } else { "set" };
    match crate::rollout::change(state.store(), &state.engine().registry(), &flow, &rules, &actor, action, reason).await {
        Ok(record) => {
            tracing::info!(%flow, %actor, seq = record.seq, "rollout policy changed");
            (StatusCode::OK, Json(AuditEntry::from(&record))).into_response()
        }
        Err(ChangeError::Invalid(problems)) => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": problems.join("; "), "problems": problems }))).into_response(),
        Err(ChangeError::Store(err)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {err}")),
    }
}

async fn explain(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return response;
    }
    let (Some(flow), Some(contact)) = (query.get("flow"), query.get("contact")) else {
        return error(StatusCode::BAD_REQUEST, "query parameters 'flow' and 'contact' are required");
    };
    if !state.engine().registry().has_flow(flow) {
        return error(StatusCode::BAD_REQUEST, format!("flow '{flow}' is not compiled in"));
    }
    let contact = match Contact::parse(contact) {
        Ok(contact) => contact,
        Err(problem) => return error(StatusCode::BAD_REQUEST, problem),
    };
    let instance = match InstanceId::parse(query.get("instance").map_or("default", String::as_str)) {
        Ok(instance) => instance,
        Err(problem) => return error(StatusCode::BAD_REQUEST, problem),
    };
    let explanation = crate::views::records::explain(state.engine(), flow, &instance, &contact, Timestamp::now_utc());
    (StatusCode::OK, Json(explanation)).into_response()
}

async fn audit(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return response;
    }
    let time = |name: &str| -> Result<Option<Timestamp>, Response> {
        query
            .get(name)
            .map(|text| Timestamp::parse_rfc3339(text).map_err(|problem| error(StatusCode::BAD_REQUEST, format!("{name}: {problem}"))))
            .transpose()
    };
    let (since, until) = match (time("since"), time("until")) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(response), _) | (_, Err(response)) => return response,
    };
    match state.store().audit(query.get("flow").map(String::as_str), since, until).await {
        Ok(records) => (StatusCode::OK, Json(records.iter().map(AuditEntry::from).collect::<Vec<_>>())).into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {err}")),
    }
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

async fn report(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return response;
    }
    let Some(flow) = query.get("flow") else { return error(StatusCode::BAD_REQUEST, "query parameter 'flow' is required") };
    if !state.engine().registry().has_flow(flow) {
        return error(StatusCode::BAD_REQUEST, format!("flow '{flow}' is not compiled in"));
    }
    let mut report_query = crate::views::flow::ReportQuery { min_finished: 100, ..Default::default() };
    for (name, value) in &query {
        let parsed: Result<(), String> = match name.as_str() {
            "flow" => Ok(()),
            "since" => Timestamp::parse_rfc3339(value).map(|t| report_query.since = Some(t)),
            "until" => Timestamp::parse_rfc3339(value).map(|t| report_query.until = Some(t)),
            "instance" => InstanceId::parse(value).map(|i| report_query.instance = Some(i)),
            "min_finished" => value.parse().map(|n| report_query.min_finished = n).map_err(|_| format!("'{value}' is not a number")),
            "versions" => value
                .split(',')
                .map(|v| switchyard_engine::ids::Version::parse(v.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map(|versions| report_query.versions = Some(versions)),
            other => Err(format!("unknown query parameter '{other}'")),
        };
        if let Err(problem) = parsed {
            return error(StatusCode::BAD_REQUEST, format!("{name}: {problem}"));
        }
    }
    match crate::views::flow::flow_report(state.store(), state.engine(), flow, &report_query).await {
        Ok(report) => (StatusCode::OK, Json(report)).into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {err}")),
    }
}

fn store_unavailable(err: &switchyard_engine::store::StoreError) -> Response {
    tracing::error!(error = %err, "admin request failed in the store");
    error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable, retry later")
}

/// The token's name and the contact in the path, or the 401/400 to answer.
fn actor_and_contact(state: &AppState, headers: &HeaderMap, contact: &str) -> Result<(String, Contact), Response> {
    let actor = authorized(state, headers)?;
    let contact = Contact::parse(contact).map_err(|problem| error(StatusCode::BAD_REQUEST, problem))?;
    Ok((actor, contact))
}

async fn list_sessions(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return response;
    }
    if let Some(unknown) = query.keys().find(|key| !matches!(key.as_str(), "flow" | "version" | "step" | "instance" | "limit")) {
        return error(StatusCode::BAD_REQUEST, format!("unknown query parameter '{unknown}' (flow, version, step, instance, limit)"));
    }
    let version = match query.get("version").map(|text| switchyard_engine::ids::Version::parse(text)).transpose() {
        Ok(version) => version,
        Err(problem) => return error(StatusCode::BAD_REQUEST, format!("version: {problem}")),
    };
    let instance = match query.get("instance").map(|text| InstanceId::parse(text)).transpose() {
        Ok(instance) => instance,
        Err(problem) => return error(StatusCode::BAD_REQUEST, format!("instance: {problem}")),
    };
    let limit = match query.get("limit").map(|text| text.parse::<u32>()).transpose() {
        Ok(limit) => limit.unwrap_or(200).min(5000),
        Err(_) => return error(StatusCode::BAD_REQUEST, format!("limit '{}' must be a whole number", query["limit"])),
    };
    let filter = switchyard_store::sessions::LiveFilter {
        flow: query.get("flow").map(String::as_str),
        version,
        step: query.get("step").map(String::as_str),
        instance: instance.as_ref(),
    };
    match state.store().live_sessions(&filter, limit).await {
        Ok(sessions) => Json(Value::Array(sessions.iter().map(crate::sessions::session_json).collect())).into_response(),
        Err(err) => store_unavailable(&err),
    }
}

async fn show_sessions(State(state): State<AppState>, headers: HeaderMap, Path(contact): Path<String>) -> Response {
    let contact = match actor_and_contact(&state, &headers, &contact) {
        Ok((_, contact)) => contact,
        Err(response) => return response,
    };
    match state.store().history_of(&contact).await {
        Ok(sessions) => Json(Value::Array(sessions.iter().map(crate::sessions::session_json).collect())).into_response(),
        Err(err) => store_unavailable(&err),
    }
}

async fn end_sessions(State(state): State<AppState>, headers: HeaderMap, Path(contact): Path<String>, body: axum::body::Bytes) -> Response {
    let (actor, contact) = match actor_and_contact(&state, &headers, &contact) {
        Ok(pair) => pair,
        Err(response) => return response,
    };
    let body = if body.is_empty() { json!({}) } else {
        match parse_body(&body) {
            Ok(body) => body,
            Err(response) => return response,
        }
    };
    let instance = match body.get("instance") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match InstanceId::parse(text) {
            Ok(instance) => Some(instance),
            Err(problem) => return error(StatusCode::BAD_REQUEST, problem),
        },
        Some(_) => return error(StatusCode::BAD_REQUEST, "body field 'instance' must be a string"),
    };
    let reason = match body.get("reason") {
        None | Some(Value::Null) => "",
        Some(Value::String(text)) => text.as_str(),
        Some(_) => return error(StatusCode::BAD_REQUEST, "body field 'reason' must be a string"),
    };
    match crate::sessions::end_by_hand(state.engine(), state.store(), &contact, instance.as_ref(), &actor, reason).await {
        Ok(ended) => Json(json!({ "ended": ended.ended, "audit_seqs": ended.audit_seqs })).into_response(),
        Err(err) => store_unavailable(&err),
    }
}

async fn forget_contact(State(state): State<AppState>, headers: HeaderMap, Path(contact): Path<String>, body: axum::body::Bytes) -> Response {
    let (actor, contact) = match actor_and_contact(&state, &headers, &contact) {
        Ok(pair) => pair,
        Err(response) => return response,
    };
    let body = match parse_body(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    let reason = match field(&body, "reason") {
        Ok(reason) if !reason.trim().is_empty() => reason.trim().to_owned(),
        Ok(_) => return error(StatusCode::BAD_REQUEST, "body field 'reason' must say why (the request or ticket)"),
        Err(response) => return response,
    };
    match crate::sessions::forget(state.engine(), state.store(), &contact, &actor, &reason).await {
        Ok((erasure, ended)) => {
            tracing::info!(contact = %contact.masked(), audit_seq = erasure.audit_seq, %actor, "contact erased");
            Json(json!({
                "pseudonym": erasure.pseudonym,
                "audit_seq": erasure.audit_seq,
                "ids": erasure.ids,
                "ended": ended,
                "rows": erasure.rows_json(),
            }))
            .into_response()
        }
        Err(err) => store_unavailable(&err),
    }
}
