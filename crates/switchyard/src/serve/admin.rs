//! The admin API under `/api`, closed unless `ADMIN_TOKEN` is set; every call
//! carries `Authorization: Bearer <ADMIN_TOKEN>`.
//!
//! - `POST /api/handoffs/release` `{"instance","contact"}`: the bot answers
//!   the contact again.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::store::Store;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/handoffs/release", post(release))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn authorized(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(expected) = &state.config().admin_token else {
        return Err(error(StatusCode::UNAUTHORIZED, "the admin API is closed: set ADMIN_TOKEN to open it"));
    };
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(token) if switchyard_evolution::auth::secret_matches(expected, token) => Ok(()),
        _ => Err(error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")),
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Result<&'a str, Response> {
    body.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("body field '{name}' is required and must be a string")))
}

async fn release(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(response) = authorized(&state, &headers) {
        return response;
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => return error(StatusCode::BAD_REQUEST, format!("body is not JSON: {err}")),
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
    match state.store().release_handoff(&instance, &contact).await {
        Ok(released) => {
            tracing::info!(%instance, contact = %contact.masked(), released, "handoff release requested");
            (StatusCode::OK, Json(json!({ "released": released }))).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "handoff release failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable, retry later")
        }
    }
}
