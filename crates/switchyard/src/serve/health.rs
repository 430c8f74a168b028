//! `GET /healthz` (the process answers), `GET /readyz` (the store answers,
//! its migrations ran, and the server is not shutting down), and the
//! operator's `GET /api/health` (admin token): the [`crate::views::health`]
//! view the console's health page shows, as JSON.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use switchyard_engine::time::Timestamp;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/api/health", get(operator_health))
}

/// Send failures are counted over the last day.
pub(crate) const FAILURES_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The health view at `now`, with this process's view of the model breaker.
pub(crate) async fn view(state: &AppState, now: Timestamp) -> Result<crate::views::health::Health, switchyard_engine::store::StoreError> {
    let breaker = state.config().model.as_ref().map(|llm| llm.breaker_open());
    crate::views::health::health(state.store(), now, now.minus(FAILURES_WINDOW), breaker).await
}

async fn operator_health(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(response) = super::admin::authorized(&state, &headers) {
        return response;
    }
    match view(&state, Timestamp::now_utc()).await {
        Ok(health) => (StatusCode::OK, Json(health)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "health view failed in the store");
            super::admin::error(StatusCode::SERVICE_UNAVAILABLE, "store unavailable, retry later")
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if *state.inner.stopping.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    // Migrations run before the server starts, so a reachable store is a ready one.
    if state.store().ready().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unreachable")
    }
}
