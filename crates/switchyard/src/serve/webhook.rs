//! `POST /webhooks/evolution`: authenticate, parse, store in the inbox,
//! acknowledge. Nothing else happens on the request path, so Evolution gets
//! its answer in milliseconds and never retries a message we already have.
//!
//! Status codes are chosen for Evolution's retry policy: 2xx for everything
//! accepted or deliberately ignored; 4xx (never retried) for input that will
//! never be valid; 5xx only when a retry can succeed (the store is down).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::middleware::Next;
use axum::{Extension, Json, Router};
use tower_http::timeout::TimeoutLayer;
use serde_json::json;
use switchyard_engine::engine::Content;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::queue::{Accepted, InboxEntry, InboxKind, Queue};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_evolution::auth;
use switchyard_evolution::webhook::{self as evolution, Chat, Incoming, WebhookKind};

use super::AppState;

/// Outside in: count the answer, authenticate on the headers, start the
/// request timeout, read the body (at most `WEBHOOK_MAX_BODY_BYTES`),
/// handle. A request without a valid secret gets its 401 before one byte of
/// its body is read; a stalled body gets 408; every answer, 401, 408 and 413
/// included, is counted in `switchyard_webhook_requests_total`.
pub fn router(state: &AppState) -> axum::Router<AppState> {
    let config = state.config();
    Router::new()
        .route("/webhooks/evolution", post(receive))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.http.request_timeout))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), authenticate_first))
}

async fn authenticate_first(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let response = match authenticate(&state, request.headers()) {
        Auth::Denied => {
            tracing::warn!("webhook refused: missing or wrong secret");
            rejected(StatusCode::UNAUTHORIZED, "missing or wrong webhook secret")
        }
        auth => {
            request.extensions_mut().insert(auth);
            next.run(request).await
        }
    };
    state.inner.metrics.webhook_result(response.status());
    response
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

fn rejected(status: StatusCode, reason: impl Into<String>) -> Response {
    reply(status, json!({ "error": reason.into() }))
}

/// 503 with `Retry-After`: the store cannot take the message now (down, or
/// its write queue is full); Evolution retries, nothing is lost.
fn unavailable() -> Response {
    let mut response = rejected(StatusCode::SERVICE_UNAVAILABLE, "store unavailable, retry later");
    response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    response
}

/// Who the request proves to be.
#[derive(Clone)]
enum Auth {
    /// No secret is configured: every request is accepted (warned at start).
    Open,
    /// The global secret or JWT matched: any instance.
    Global,
    /// A per-instance secret matched: only these instances.
    Instances(Vec<String>),
    Denied,
}

fn authenticate(state: &AppState, headers: &HeaderMap) -> Auth {
    let config = state.config();
    let presented_secret = headers.get(config.webhook_secret_header.as_str()).and_then(|value| value.to_str().ok());
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if config.webhook_secret.is_none() && config.webhook_secrets.is_empty() && config.webhook_jwt_key.is_none() {
        return Auth::Open;
    }
    if let (Some(expected), Some(presented)) = (&config.webhook_secret, presented_secret) && auth::secret_matches(expected, presented) {
        return Auth::Global;
    }
    if let (Some(key), Some(token)) = (&config.webhook_jwt_key, bearer)
        && auth::verify_jwt(token, key, Timestamp::now_utc().as_millis() / 1000).is_ok()
    {
        return Auth::Global;
    }
    if let Some(presented) = presented_secret {
        // Compare against every instance's secret (constant time each) so the
        // timing does not reveal which instance a guess is close to.
        let mut matched = Vec::new();
        for (instance, expected) in &config.webhook_secrets {
            if auth::secret_matches(expected, presented) {
                matched.push(instance.clone());
            }
        }
        if !matched.is_empty() {
            return Auth::Instances(matched);
        }
    }
    Auth::Denied
}

async fn receive(State(state): State<AppState>, Extension(auth): Extension<Auth>, body: Bytes) -> Response {
    let webhook = match evolution::parse(&body) {
        Ok(webhook) => webhook,
        Err(err) => {
            tracing::warn!(error = %err, "webhook refused: malformed body");
            return rejected(StatusCode::BAD_REQUEST, err.to_string());
        }
    };
    if let Auth::Instances(allowed) = &auth && !allowed.contains(&webhook.instance) {
        tracing::warn!(instance = %webhook.instance, "webhook refused: secret belongs to another instance");
        return rejected(StatusCode::UNAUTHORIZED, "the webhook secret does not belong to this instance");
    }
    let instance = match InstanceId::parse(&webhook.instance) {
        Ok(instance) => instance,
        Err(problem) => return rejected(StatusCode::BAD_REQUEST, problem),
    };
    let chatwoot = webhook.chatwoot.filter(|_| state.config().chatwoot.account(instance.as_str()).is_some());
    match webhook.kind {
        WebhookKind::Message(incoming) => accept(&state, instance, incoming, false, chatwoot).await,
        WebhookKind::OperatorMessage(incoming) => {
            if state.config().takeover_on_from_me {
                accept(&state, instance, incoming, true, chatwoot).await
            } else {
                ignored("operator messages do not pause the bot (TAKEOVER_ON_FROM_ME=false)")
            }
        }
        // With Chatwoot, an agent's reply arrives as an API send; without
        // it, API sends are our own replies echoed.
        WebhookKind::ApiSend(incoming) => {
            if state.config().takeover_on_from_me && state.config().chatwoot.account(instance.as_str()).is_some() {
                accept(&state, instance, incoming, true, chatwoot).await
            } else {
                ignored(&evolution::IgnoreReason::OwnApiSend.to_string())
            }
        }
        WebhookKind::Connection { state: connection, status_reason } => record_connection(&state, &instance, &connection, status_reason).await,
        WebhookKind::Ignored { reason } => ignored(&reason.to_string()),
    }
}

/// The longest connection state word accepted (Evolution's are `open`,
/// `connecting`, `close`, `refused`).
const MAX_STATE_LEN: usize = 32;

/// Stores what a `connection.update` said, for the health page of every
/// process; the store being down asks Evolution to retry.
async fn record_connection(state: &AppState, instance: &InstanceId, connection: &str, status_reason: Option<i64>) -> Response {
    if connection.is_empty() || connection.len() > MAX_STATE_LEN || !connection.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_') {
        // Logged whole (the log layer escapes and masks every field); answered
        // escaped, masked and cut short.
        tracing::warn!(%instance, state = %connection, "webhook refused: not a connection state");
        let shown: String = connection.chars().take(MAX_STATE_LEN).collect();
        let shown = switchyard_engine::mask::mask_text(&shown);
        return rejected(StatusCode::BAD_REQUEST, format!("data.state {shown:?} is not a connection state (open, connecting, close, refused)"));
    }
    if connection == "open" {
        tracing::info!(%instance, "evolution instance connected");
    } else {
        tracing::warn!(%instance, state = %connection, status_reason, "evolution instance is not connected");
    }
    match state.store().record_connection(instance, connection, status_reason, Timestamp::now_utc()).await {
        Ok(()) => ignored("connection update recorded"),
        Err(err) => {
            tracing::error!(error = %err, "connection state write failed: asking Evolution to retry");
            unavailable()
        }
    }
}

fn ignored(reason: &str) -> Response {
    reply(StatusCode::OK, json!({ "status": "ignored", "reason": reason }))
}

async fn accept(state: &AppState, instance: InstanceId, incoming: Incoming, operator: bool, chatwoot: Option<evolution::ChatwootRef>) -> Response {
    match incoming.chat {
        Chat::StatusBroadcast => return ignored("status broadcasts are never answered"),
        Chat::Group { .. } if !state.config().answer_groups => return ignored("group messages are ignored (ANSWER_GROUPS=false)"),
        Chat::Group { .. } | Chat::Direct => {}
    }
    let chat = crate::ignore::ChatRef {
        instance: instance.as_str(),
        group: match &incoming.chat {
            Chat::Group { jid } => Some(jid.as_str()),
            _ => None,
        },
        phone: incoming.sender.phone.as_deref(),
        lid: incoming.sender.lid.as_deref(),
    };
    if state.config().ignore.matches(&chat) {
        return ignored("this chat is on the ignore list (IGNORE_JIDS)");
    }
    let kind = if operator {
        InboxKind::Operator
    } else {
        match incoming.content {
            evolution::Content::Text(text) => InboxKind::Customer(Content::Text(text)),
            evolution::Content::Audio(audio) => InboxKind::Customer(Content::Audio { transcript: audio.transcript }),
            evolution::Content::Media(media) => InboxKind::Customer(Content::Attachment(switchyard_engine::media::Attachment {
                message_id: incoming.message_id.clone(),
                kind: media.kind.as_str().to_owned(),
                mimetype: media.mimetype,
                file_name: media.file_name,
                caption: media.caption,
            })),
            evolution::Content::Unsupported(kind) => InboxKind::Customer(Content::Unsupported(kind)),
            evolution::Content::Ignored(kind) => return ignored(&format!("{kind} messages are not answered")),
        }
    };
    let contact = match Contact::parse(incoming.sender.canonical()) {
        Ok(contact) => contact,
        Err(problem) => return rejected(StatusCode::BAD_REQUEST, format!("data.key: {problem}")),
    };
    if let Err(response) = link_alias(state, &incoming.sender, &instance, &incoming.message_id).await {
        return response;
    }
    if let Some(link) = chatwoot
        && let Err(err) = state.store().link_chatwoot(&instance, &contact, link.conversation_id, link.inbox_id, Timestamp::now_utc()).await
    {
        tracing::error!(error = %err, "chatwoot link write failed: asking Evolution to retry");
        return unavailable();
    }
    let entry = InboxEntry {
        instance,
        contact,
        message_id: incoming.message_id,
        reply_to: incoming.sender.reply_to.clone(),
        kind,
        sent_at: incoming.timestamp_secs.map(|secs| Timestamp::from_millis(secs.saturating_mul(1000))),
        received_at: Timestamp::now_utc(),
    };
    match state.store().accept(&entry).await {
        Ok(Accepted::New(seq)) => {
            tracing::info!(request_id = %entry.message_id, instance = %entry.instance, contact = %entry.contact.masked(), seq, "message accepted");
            let _ = state.inner.wake_processor.send((entry.instance.clone(), entry.contact.clone()));
            reply(StatusCode::OK, json!({ "status": "accepted" }))
        }
        Ok(Accepted::Duplicate) => reply(StatusCode::OK, json!({ "status": "duplicate" })),
        Err(err @ StoreError::Unavailable(_)) => {
            tracing::error!(error = %err, "inbox unavailable: asking Evolution to retry");
            unavailable()
        }
        Err(err) => {
            tracing::error!(error = %err, "inbox write failed: asking Evolution to retry");
            rejected(StatusCode::INTERNAL_SERVER_ERROR, "could not store the message, retry later")
        }
    }
}

/// Refuses an erased contact's pseudonym as a sender (it would reopen the
/// erased history) and records the phone↔LID link when a new message names
/// both, before the message is stored, so an erasure of either id finds the
/// rows of the other.
async fn link_alias(state: &AppState, sender: &evolution::Identity, instance: &InstanceId, message_id: &str) -> Result<(), Response> {
    let ids: Vec<Contact> = [&sender.phone, &sender.lid].into_iter().flatten().filter_map(|id| Contact::parse(id).ok()).collect();
    if let Some(pseudonym) = ids.iter().find(|id| id.is_pseudonym()) {
        return Err(rejected(StatusCode::BAD_REQUEST, format!("data.key: contact '{}' is an erased contact's pseudonym, not a customer", pseudonym.as_str())));
    }
    let [phone, lid] = ids.as_slice() else { return Ok(()) };
    match state.store().link_alias(phone, lid, instance, message_id, Timestamp::now_utc()).await {
        Ok(()) => Ok(()),
        Err(err) => {
            tracing::error!(error = %err, "alias link write failed: asking Evolution to retry");
            Err(unavailable())
        }
    }
}
