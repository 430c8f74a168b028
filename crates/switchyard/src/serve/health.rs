//! `GET /healthz` (the process answers) and `GET /readyz` (the store answers,
//! its migrations ran, and the server is not shutting down).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
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
