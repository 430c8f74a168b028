//! Health: each instance's WhatsApp connection (`connection.update`, as this
//! process heard it), the outbox, the LLM breaker, split guards, and the
//! release of a contact on human hold.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::queue::Queue as _;
use switchyard_engine::store::Store as _;

use super::auth::{FormData, Operator};
use super::i18n::Lang;
use super::overview::{guard_view, GuardView};
use super::{render, when, Chrome, UiState};

pub struct ConnectionRow {
    pub instance: String,
    /// The state word, with ✓ for open and ⚠ otherwise.
    pub state: String,
    pub open: bool,
    pub reason: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "ui/health.html")]
struct HealthPage {
    chrome: Chrome,
    connections: Vec<ConnectionRow>,
    outbox_depth: u64,
    breaker: (&'static str, &'static str),
    guards: Vec<(String, GuardView)>,
}

async fn render_page(state: &UiState, lang: Lang, operator: &Operator, notice: Option<String>) -> Response {
    let depth = match state.app.store().outbox_depth().await {
        Ok(depth) => depth,
        Err(err) => return super::store_failed(state, lang, operator, &err),
    };
    let policy = match state.app.store().load_policy().await {
        Ok((policy, _)) => policy,
        Err(err) => return super::store_failed(state, lang, operator, &err),
    };
    let connections = state
        .app
        .connections()
        .into_iter()
        .map(|(instance, connection)| {
            let open = connection.state == "open";
            ConnectionRow {
                instance,
                state: format!("{} {}", if open { "✓" } else { "⚠" }, connection.state),
                open,
                reason: connection.status_reason.map(|reason| reason.to_string()).unwrap_or_default(),
                at: when(connection.at),
            }
        })
        .collect();
    let breaker = match &state.app.config().model {
        None => (lang.t("breaker_off"), "neutral"),
        Some(llm) if llm.breaker_open() => (lang.t("breaker_open"), "worse"),
        Some(_) => (lang.t("breaker_closed"), "better"),
    };
    let guards = policy.flows().filter_map(|(flow, rules)| guard_view(lang, rules).map(|guard| (flow.to_owned(), guard))).collect();
    let mut chrome = Chrome::new(lang, Some(operator), "health", "/ui/health", lang.t("health"));
    chrome.notice = notice;
    render(StatusCode::OK, &HealthPage { chrome, connections, outbox_depth: depth, breaker, guards })
}

/// `GET /ui/health`.
pub async fn page(State(state): State<UiState>, headers: HeaderMap, Extension(operator): Extension<Operator>) -> Response {
    render_page(&state, Lang::of(&headers), &operator, None).await
}

/// `POST /ui/health/release` with `instance` and `contact`: the bot answers the contact again.
pub async fn release(State(state): State<UiState>, headers: HeaderMap, Extension(operator): Extension<Operator>, Extension(form): Extension<FormData>) -> Response {
    let lang = Lang::of(&headers);
    let parsed = InstanceId::parse(form.get("instance")).and_then(|instance| Contact::parse(form.get("contact")).map(|contact| (instance, contact)));
    let (instance, contact) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => return super::message(&state, lang, Some(&operator), StatusCode::BAD_REQUEST, &problem),
    };
    match state.app.store().release_handoff(&instance, &contact).await {
        Ok(released) => {
            tracing::info!(%instance, contact = %contact.masked(), released, actor = %operator.name, "handoff release requested in the console");
            let notice = if released { lang.f("released", &[&contact.masked()]) } else { lang.f("not_on_hold", &[&contact.masked()]) };
            render_page(&state, lang, &operator, Some(notice)).await
        }
        Err(err) => super::store_failed(&state, lang, &operator, &err),
    }
}
