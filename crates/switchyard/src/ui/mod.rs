//! The operator console at `/ui`, served by `serve` on its own listener
//! (`CONSOLE_BIND_ADDR`): server-rendered HTML (askama templates under
//! `templates/ui/`), htmx for partial refresh, SVG charts drawn here, and the
//! assets compiled into the binary. Every page reads without JavaScript.
//!
//! - [`auth`]: sign-in with an admin token, the session cookie, CSRF, the rate limit.
//! - [`i18n`]: English and Brazilian Portuguese.
//! - [`svg`]: whiskers, funnels, sparklines.
//! - [`overview`], [`flow`], [`health`], [`sessions`], [`steering`]: the pages.
//!
//! Changes go through the same services as the CLI and the admin API
//! ([`crate::steer`], [`crate::rollout`], [`crate::sessions`]), with the
//! signed-in token's name as the actor.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::serve::AppState;

pub mod auth;
mod flow;
mod health;
pub mod i18n;
mod overview;
mod sessions;
mod steering;
pub mod svg;

use auth::Operator;
use i18n::Lang;

/// The console's state: the server's, and the sign-in rate limit.
#[derive(Clone)]
pub struct UiState {
    app: AppState,
    limiter: Arc<auth::Limiter>,
}

/// The console's routes, for its own listener.
pub fn router(app: AppState) -> Router {
    let state = UiState { app, limiter: Arc::new(auth::Limiter::default()) };
    let signed_in = Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(overview::page))
        .route("/ui/flows/{flow}", get(flow::page))
        .route("/ui/flows/{flow}/steer", get(steering::page))
        .route("/ui/flows/{flow}/steer/{action}/confirm", post(steering::confirm))
        .route("/ui/flows/{flow}/steer/{action}/apply", post(steering::apply))
        .route("/ui/health", get(health::page))
        .route("/ui/health/release", post(health::release))
        .route("/ui/sessions", get(sessions::page).post(sessions::find))
        .route("/ui/sessions/end", post(sessions::end))
        .route("/ui/sessions/forget/confirm", post(sessions::forget_confirm))
        .route("/ui/sessions/forget", post(sessions::forget))
        .route("/ui/logout", post(auth::logout))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_operator));
    let timeout = tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.app.config().http.request_timeout);
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/login", get(auth::login_form).post(auth::login))
        .route("/ui/lang", get(switch_lang))
        .route("/ui/assets/htmx.min.js", get(htmx))
        .route("/ui/assets/console.css", get(css))
        .merge(signed_in)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .layer(timeout)
        .with_state(state)
}

/// What every page's frame needs: language, who is signed in, the CSRF
/// token for its forms, which tab is current.
pub struct Chrome {
    pub lang: Lang,
    pub operator: Option<String>,
    pub csrf: String,
    pub nav: &'static str,
    /// This page's path, where the language switch comes back to.
    pub path: String,
    pub title: String,
    /// A one-line result of the last action.
    pub notice: Option<String>,
}

impl Chrome {
    pub fn new(lang: Lang, operator: Option<&Operator>, nav: &'static str, path: &str, title: impl Into<String>) -> Chrome {
        Chrome {
            lang,
            operator: operator.map(|operator| operator.name.clone()),
            csrf: operator.map(|operator| operator.csrf.clone()).unwrap_or_default(),
            nav,
            path: safe_back(path).to_owned(),
            title: title.into(),
            notice: None,
        }
    }
}

/// A console path to come back to; anything else goes to the overview (no open redirects).
fn safe_back(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or("/ui");
    if path.starts_with("/ui") && !path.contains("//") && path.chars().all(|c| c.is_ascii_alphanumeric() || "/_-.@".contains(c)) {
        path
    } else {
        "/ui"
    }
}

/// Renders a page, or a plain 500 naming the template problem.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "console template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("template error: {err}")).into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "ui/message.html")]
struct MessagePage<'a> {
    chrome: Chrome,
    class: &'a str,
    text: &'a str,
}

/// A page with one sentence: an error, a refusal, the console being off.
pub fn message(_state: &UiState, lang: Lang, operator: Option<&Operator>, status: StatusCode, text: &str) -> Response {
    let title = if status.is_success() { lang.t("console") } else { lang.t("error") };
    let class = if status.is_success() { "notice" } else { "error" };
    render(status, &MessagePage { chrome: Chrome::new(lang, operator, "", "/ui", title), class, text })
}

/// The store failed: say so, log why.
pub fn store_failed(state: &UiState, lang: Lang, operator: &Operator, err: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %err, "console request failed in the store");
    message(state, lang, Some(operator), StatusCode::SERVICE_UNAVAILABLE, lang.t("store_unavailable"))
}

#[derive(Template)]
#[template(path = "ui/login.html")]
struct LoginPage {
    chrome: Chrome,
    problem: Option<String>,
}

pub fn login_page(lang: Lang, status: StatusCode, problem: Option<String>) -> Response {
    render(status, &LoginPage { chrome: Chrome::new(lang, None, "", "/ui/login", lang.t("sign_in")), problem })
}

async fn not_found(headers: HeaderMap, State(state): State<UiState>) -> Response {
    let lang = Lang::of(&headers);
    message(&state, lang, None, StatusCode::NOT_FOUND, lang.t("not_found"))
}

#[derive(serde::Deserialize)]
struct LangQuery {
    to: String,
    #[serde(default)]
    back: String,
}

/// `GET /ui/lang?to=pt-BR&back=/ui/health`: remembers the choice in a cookie.
async fn switch_lang(State(state): State<UiState>, headers: HeaderMap, Query(query): Query<LangQuery>) -> Response {
    let lang = Lang::parse(&query.to).unwrap_or(Lang::En);
    let mut response = Redirect::to(safe_back(&query.back)).into_response();
    let secure = auth::secure(&state, &headers);
    response
        .headers_mut()
        .append(header::SET_COOKIE, auth::set_cookie(i18n::LANG_COOKIE, lang.code(), std::time::Duration::from_secs(365 * 24 * 3600), secure));
    response
}

async fn htmx() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("assets/htmx.min.js"))
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", include_str!("assets/console.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// Scripts and styles only from this console, no framing, no referrer to
/// other sites (`no-referrer` would make Chromium send `Origin: null` on our
/// own forms, which the CSRF check refuses),
/// and signed-in pages are not cached.
async fn security_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Formats a timestamp to the minute, UTC (`2026-12-03 09:15 UTC`).
pub fn when(at: switchyard_engine::time::Timestamp) -> String {
    let text = at.to_string();
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => text,
    }
}

/// A percentage with one decimal.
pub fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_returned_to() {
        assert_eq!(safe_back("/ui/flows/digital_certificate"), "/ui/flows/digital_certificate");
        assert_eq!(safe_back("/ui/health?x=1"), "/ui/health");
        assert_eq!(safe_back("https://evil.example/ui"), "/ui");
        assert_eq!(safe_back("//evil.example"), "/ui");
        assert_eq!(safe_back("/ui//evil.example"), "/ui");
        assert_eq!(safe_back("/ui/\"><script>"), "/ui");
    }
}
