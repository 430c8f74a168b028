//! Health: the [`crate::views::health`] view (each instance's WhatsApp
//! connection as its last `connection.update` said, the outbox and its
//! oldest unsent reply, send failures by reason, the LLM breaker, contacts
//! on human hold) and the split guards; a release button on every held
//! contact, through [`crate::sessions::release_hold`] (audited with the
//! signed-in token's name).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::time::Timestamp;

use super::auth::{FormData, Operator};
use super::i18n::Lang;
use super::overview::{guard_view, GuardView};
use super::{render, when, Chrome, UiState};
use crate::views::health::{age_text, Health};

pub struct ConnectionRow {
    pub instance: String,
    /// The state word, with ✓ for open and ⚠ otherwise.
    pub state: String,
    pub open: bool,
    pub reason: String,
    pub since: String,
    pub heard: String,
}

pub struct HoldRow {
    pub instance: String,
    pub masked: String,
    /// The contact as stored: the release form's hidden field, never shown.
    pub contact: String,
    pub cause: String,
    pub since: String,
    pub until: String,
}

#[derive(Template)]
#[template(path = "ui/health.html")]
struct HealthPage {
    chrome: Chrome,
    connections: Vec<ConnectionRow>,
    outbox_depth: u64,
    /// When the oldest unsent reply was queued, and how long it has waited.
    oldest_unsent: Option<(String, String)>,
    failures: Vec<(String, u64)>,
    /// What the failures are counted over.
    failures_since: String,
    breaker: (&'static str, &'static str),
    on_hold: u64,
    /// When the longest-running hold started, and how long ago.
    oldest_hold: Option<(String, String)>,
    holds: Vec<HoldRow>,
    /// Says that only the first ones are listed, when more are on hold.
    holds_more: Option<String>,
    guards: Vec<(String, GuardView)>,
}

fn age_since(now: Timestamp, at: Timestamp) -> String {
    age_text(u64::try_from(now.millis_since(at).max(0) / 1000).unwrap_or(0))
}

fn page_of(lang: Lang, chrome: Chrome, health: Health, guards: Vec<(String, GuardView)>) -> HealthPage {
    let now = health.at;
    let connections = health
        .connections
        .into_iter()
        .map(|connection| ConnectionRow {
            instance: connection.instance,
            state: format!("{} {}", if connection.open { "✓" } else { "⚠" }, connection.state),
            open: connection.open,
            reason: connection.status_reason.map(|reason| reason.to_string()).unwrap_or_default(),
            since: format!("{} ({})", when(connection.since), lang.f("ago", &[&age_since(now, connection.since)])),
            heard: when(connection.heard_at),
        })
        .collect();
    let breaker = match health.llm_breaker {
        None => (lang.t("breaker_off"), "neutral"),
        Some("open") => (lang.t("breaker_open"), "worse"),
        Some(_) => (lang.t("breaker_closed"), "better"),
    };
    let holds_more = (health.on_hold > health.holds.len() as u64).then(|| lang.f("holds_more", &[&health.holds.len(), &health.on_hold]));
    HealthPage {
        chrome,
        connections,
        outbox_depth: health.outbox_depth,
        oldest_unsent: health.oldest_unsent.map(|at| (when(at), lang.f("waiting_for", &[&age_since(now, at)]))),
        failures: health.send_failures.into_iter().map(|failure| (failure.reason, failure.count)).collect(),
        failures_since: lang.f("failures_since", &[&when(health.failures_since)]),
        breaker,
        on_hold: health.on_hold,
        oldest_hold: health.oldest_hold.map(|at| (when(at), lang.f("ago", &[&age_since(now, at)]))),
        holds: health
            .holds
            .into_iter()
            .map(|hold| HoldRow {
                instance: hold.instance,
                masked: hold.contact_masked,
                contact: hold.contact,
                cause: match hold.cause.as_deref() {
                    Some("takeover") => lang.t("cause_takeover").to_owned(),
                    Some(_) => lang.t("cause_handoff").to_owned(),
                    None => String::new(),
                },
                since: hold.since.map(|since| format!("{} ({})", when(since), lang.f("ago", &[&age_since(now, since)]))).unwrap_or_default(),
                until: when(hold.until),
            })
            .collect(),
        holds_more,
        guards,
    }
}

async fn render_page(state: &UiState, lang: Lang, operator: &Operator, notice: Option<String>) -> Response {
    let health = match crate::serve::health::view(&state.app, Timestamp::now_utc()).await {
        Ok(health) => health,
        Err(err) => return super::store_failed(state, lang, operator, &err),
    };
    let policy = match state.app.store().load_policy().await {
        Ok((policy, _)) => policy,
        Err(err) => return super::store_failed(state, lang, operator, &err),
    };
    let guards = policy.flows().filter_map(|(flow, rules)| guard_view(lang, rules).map(|guard| (flow.to_owned(), guard))).collect();
    let mut chrome = Chrome::new(lang, Some(operator), "health", "/ui/health", lang.t("health"));
    chrome.notice = notice;
    render(StatusCode::OK, &page_of(lang, chrome, health, guards))
}

/// `GET /ui/health`.
pub async fn page(State(state): State<UiState>, headers: HeaderMap, Extension(operator): Extension<Operator>) -> Response {
    render_page(&state, Lang::of(&headers), &operator, None).await
}

/// `POST /ui/health/release` with `instance`, `contact` and an optional
/// `reason`: the bot answers the contact again; the audit names the
/// signed-in token.
pub async fn release(State(state): State<UiState>, headers: HeaderMap, Extension(operator): Extension<Operator>, Extension(form): Extension<FormData>) -> Response {
    let lang = Lang::of(&headers);
    let parsed = InstanceId::parse(form.get("instance").trim())
        .map_err(|problem| format!("instance: {problem}"))
        .and_then(|instance| Contact::parse(form.get("contact").trim()).map(|contact| (instance, contact)).map_err(|problem| format!("contact: {problem}")));
    let (instance, contact) = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => return super::message(&state, lang, Some(&operator), StatusCode::BAD_REQUEST, &problem),
    };
    let reason = match form.get("reason").trim() {
        "" => "released from the console",
        reason => reason,
    };
    match crate::sessions::release_hold(state.app.store(), &instance, &contact, &operator.name, reason).await {
        Ok(released) => {
            let notice = match released.audit_seq {
                Some(seq) => lang.f("released", &[&contact.masked(), &seq]),
                None => lang.f("not_on_hold", &[&contact.masked()]),
            };
            render_page(&state, lang, &operator, Some(notice)).await
        }
        Err(err) => super::store_failed(&state, lang, &operator, &err),
    }
}
