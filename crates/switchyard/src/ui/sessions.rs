//! Sessions: find a contact's sessions (the contact shown masked), see each
//! one's steps, end a live one, forget the contact (LGPD) with a reason. The
//! number travels in POST bodies only, never in a URL.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::store::Store as _;

use super::auth::{FormData, Operator};
use super::i18n::Lang;
use super::{render, when, Chrome, UiState};

pub struct SessionView {
    pub id: String,
    pub instance: String,
    pub flow: String,
    pub version: String,
    pub reason: String,
    pub turns: u32,
    pub started: String,
    pub live: bool,
    pub outcome: String,
    pub steps: Vec<String>,
}

#[derive(Template)]
#[template(path = "ui/sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    /// The number searched for (carried in the forms), and masked for display.
    contact: String,
    masked: String,
    /// "No sessions for 5511*******02."
    no_history: String,
    searched: bool,
    sessions: Vec<SessionView>,
}

#[derive(Template)]
#[template(path = "ui/forget.html")]
struct ForgetConfirm {
    chrome: Chrome,
    contact: String,
    masked: String,
    reason: String,
    live: usize,
    total: usize,
}

fn empty(lang: Lang, operator: &Operator, notice: Option<String>) -> SessionsPage {
    let mut chrome = Chrome::new(lang, Some(operator), "sessions", "/ui/sessions", lang.t("sessions"));
    chrome.notice = notice;
    SessionsPage { chrome, contact: String::new(), masked: String::new(), no_history: String::new(), searched: false, sessions: Vec::new() }
}

/// `GET /ui/sessions`: the search form.
pub async fn page(headers: HeaderMap, Extension(operator): Extension<Operator>) -> Response {
    render(StatusCode::OK, &empty(Lang::of(&headers), &operator, None))
}

async fn show(state: &UiState, lang: Lang, operator: &Operator, contact: &Contact, notice: Option<String>) -> Response {
    let store = state.app.store();
    let history = match store.history_of(contact).await {
        Ok(history) => history,
        Err(err) => return super::store_failed(state, lang, operator, &err),
    };
    let mut sessions = Vec::new();
    for session in &history {
        let events = match store.events_of(session.id()).await {
            Ok(events) => events,
            Err(err) => return super::store_failed(state, lang, operator, &err),
        };
        let mut steps: Vec<String> = events
            .iter()
            .filter(|event| matches!(event.kind, EventKind::Started { .. } | EventKind::StepEntered))
            .filter_map(|event| event.step.as_ref().map(|step| step.as_str().to_owned()))
            .collect();
        // A start is also an entry into its first step.
        steps.dedup();
        sessions.push(SessionView {
            id: session.id().to_string(),
            instance: session.instance().as_str().to_owned(),
            flow: session.flow().as_str().to_owned(),
            version: session.version().to_string(),
            reason: session.reason().name().to_owned(),
            turns: session.turns(),
            started: when(session.started_at()),
            live: session.is_live(),
            outcome: session.outcome().map_or_else(|| lang.t("live").to_owned(), |outcome| outcome.as_str().to_owned()),
            steps,
        });
    }
    let mut page = empty(lang, operator, notice);
    page.contact = contact.as_str().to_owned();
    page.masked = contact.masked();
    page.no_history = lang.f("no_history", &[&page.masked]);
    page.searched = true;
    page.sessions = sessions;
    render(StatusCode::OK, &page)
}

fn contact_of(state: &UiState, lang: Lang, operator: &Operator, form: &FormData) -> Result<Contact, Response> {
    Contact::parse(form.get("contact")).map_err(|problem| super::message(state, lang, Some(operator), StatusCode::BAD_REQUEST, &problem))
}

/// The contact and the (required) reason of a forget form.
fn contact_and_reason<'a>(state: &UiState, lang: Lang, operator: &Operator, form: &'a FormData) -> Result<(Contact, &'a str), Response> {
    let contact = contact_of(state, lang, operator, form)?;
    match form.get("reason").trim() {
        "" => Err(super::message(state, lang, Some(operator), StatusCode::BAD_REQUEST, lang.t("reason_help"))),
        reason => Ok((contact, reason)),
    }
}

/// `POST /ui/sessions` with `contact`: the contact's sessions on every instance.
pub async fn find(State(state): State<UiState>, headers: HeaderMap, Extension(operator): Extension<Operator>, Extension(form): Extension<FormData>) -> Response {
    let lang = Lang::of(&headers);
    match contact_of(&state, lang, &operator, &form) {
        Ok(contact) => show(&state, lang, &operator, &contact, None).await,
        Err(response) => response,
    }
}

/// `POST /ui/sessions/end` with `contact` and `instance`: ends its live session there (`cancelled`, `operator`).
pub async fn end(State(state): State<UiState>, headers: HeaderMap, Extension(operator): Extension<Operator>, Extension(form): Extension<FormData>) -> Response {
    let lang = Lang::of(&headers);
    let contact = match contact_of(&state, lang, &operator, &form) {
        Ok(contact) => contact,
        Err(response) => return response,
    };
    let instance = match InstanceId::parse(form.get("instance")) {
        Ok(instance) => instance,
        Err(problem) => return super::message(&state, lang, Some(&operator), StatusCode::BAD_REQUEST, &problem),
    };
    match crate::sessions::end_by_hand(state.app.engine(), state.app.store(), &contact, Some(&instance), &operator.name, "ended in the console").await {
        Ok(ended) => {
            let notice = lang.f("ended", &[&ended.ended]);
            show(&state, lang, &operator, &contact, Some(notice)).await
        }
        Err(err) => super::store_failed(&state, lang, &operator, &err),
    }
}

/// `POST /ui/sessions/forget/confirm`: what erasing will do, before doing it.
pub async fn forget_confirm(State(state): State<UiState>, headers: HeaderMap, Extension(operator): Extension<Operator>, Extension(form): Extension<FormData>) -> Response {
    let lang = Lang::of(&headers);
    let (contact, reason) = match contact_and_reason(&state, lang, &operator, &form) {
        Ok(pair) => pair,
        Err(response) => return response,
    };
    let history = match state.app.store().history_of(&contact).await {
        Ok(history) => history,
        Err(err) => return super::store_failed(&state, lang, &operator, &err),
    };
    let title = lang.t("forget");
    render(
        StatusCode::OK,
        &ForgetConfirm {
            chrome: Chrome::new(lang, Some(&operator), "sessions", "/ui/sessions", title),
            contact: contact.as_str().to_owned(),
            masked: contact.masked(),
            reason: reason.to_owned(),
            live: history.iter().filter(|session| session.is_live()).count(),
            total: history.len(),
        },
    )
}

/// `POST /ui/sessions/forget` with `contact` and `reason`: erases the contact, audited with the token's name.
pub async fn forget(State(state): State<UiState>, headers: HeaderMap, Extension(operator): Extension<Operator>, Extension(form): Extension<FormData>) -> Response {
    let lang = Lang::of(&headers);
    let (contact, reason) = match contact_and_reason(&state, lang, &operator, &form) {
        Ok(pair) => pair,
        Err(response) => return response,
    };
    match crate::sessions::forget(state.app.engine(), state.app.store(), &contact, &operator.name, reason).await {
        Ok((erasure, _)) => {
            tracing::info!(contact = %contact.masked(), audit_seq = erasure.audit_seq, actor = %operator.name, "contact erased in the console");
            render(StatusCode::OK, &empty(lang, &operator, Some(lang.f("forgotten", &[&erasure.audit_seq, &erasure.pseudonym]))))
        }
        Err(err) => super::store_failed(&state, lang, &operator, &err),
    }
}
