//! The human desk (Chatwoot): what a hold records, the worker that makes a
//! handoff's Chatwoot calls from the durable queue in the `holds` rows, and
//! `POST /webhooks/chatwoot/{secret}`, which gives a resolved conversation
//! back to the bot.
//!
//! A handoff's calls run in order (find the conversation, open or pending,
//! team, labels, private note); each one done is recorded, so a retry after
//! a Chatwoot outage resumes where it stopped and nothing is lost. The note
//! goes last: it is the one call that is not idempotent.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use switchyard_engine::engine::{Reply, Turn};
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::session::Outcome;
use switchyard_engine::time::Timestamp;
use switchyard_store::holds::{DeskJob, DeskRequest, HoldCause, HoldStart};
use tokio::sync::watch;

use super::AppState;
use crate::chatwoot::{ChatwootError, Given};
use crate::hours::Status;

/// How long a claimed job is left to one attempt before another may take it.
const LEASE: Duration = Duration::from_secs(60);
/// How often the queue is looked at when nothing wakes the worker.
const POLL: Duration = Duration::from_millis(250);
/// The longest wait between two attempts of one job.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The hold a turn starts, if it holds the contact: its cause, and for a
/// handoff on an instance with Chatwoot, the calls to make. Outside
/// business hours the customer is told when a person will answer (a reply
/// added to the turn) and the conversation is left pending.
pub(super) fn hold_of(state: &AppState, turn: &mut Turn, operator: bool, now: Timestamp) -> Option<HoldStart> {
    let until = turn.handoff_until?;
    let cause = if operator { HoldCause::Takeover } else { HoldCause::Handoff };
    let ended = turn.sessions.iter().rev().find(|session| session.outcome() == Some(Outcome::Handoff) || session.outcome() == Some(Outcome::Failed));
    let (flow, version) = (ended.map(|session| session.flow().as_str().to_owned()), ended.map(|session| session.version().number()));
    let mut status = "open";
    if cause == HoldCause::Handoff {
        let hours = (state.config().hours_clock)();
        let when = match state.config().business_hours.status(turn.instance.as_str(), hours) {
            Status::Open => None,
            Status::ClosedUntil { words, .. } => Some(words),
            Status::ClosedIndefinitely => Some("assim que possível".to_owned()),
        };
        if let Some(when) = when {
            status = "pending";
            let last = turn.replies.last().cloned();
            turn.replies.push(Reply {
                session: last.as_ref().and_then(|reply| reply.session),
                flow: last.as_ref().and_then(|reply| reply.flow.clone()),
                version: last.as_ref().and_then(|reply| reply.version),
                step: last.as_ref().and_then(|reply| reply.step.clone()),
                text: format!("Agora estamos fora do horário de atendimento. Uma pessoa da nossa equipe vai te responder {when}. 🙂").into(),
                rich: None,
            });
        }
    }
    let desk = (cause == HoldCause::Handoff && state.config().chatwoot.account(turn.instance.as_str()).is_some())
        .then(|| DeskRequest { status: status.to_owned(), note: note(turn, status) });
    Some(HoldStart { cause, at: now, until, flow, version, desk })
}

/// The private note: what the bot learned, for the agent. The customer's
/// answers are shown as given (the agent needs them); the classification
/// is masked like a log line.
fn note(turn: &Turn, status: &str) -> String {
    let mut lines = vec!["🤖 Switchyard: atendimento passado para uma pessoa.".to_owned()];
    match turn.sessions.iter().rev().find(|session| !session.is_live()) {
        Some(session) => {
            lines.push(format!("Fluxo: {}@{} · etapa: {}", session.flow(), session.version(), session.step()));
            let detail = turn.events.iter().rev().find_map(|event| match &event.kind {
                EventKind::Ended { detail, .. } if event.session == session.id() => Some(detail.clone().unwrap_or_else(|| "handoff".to_owned())),
                _ => None,
            });
            if let Some(detail) = detail {
                lines.push(format!("Motivo: {}", switchyard_engine::mask::mask_text(&detail)));
            }
            if session.data().is_empty() {
                lines.push("Respostas: nenhuma ainda.".to_owned());
            } else {
                lines.push("Respostas:".to_owned());
                lines.extend(session.data().iter().map(|(key, value)| format!("- {key}: {value}")));
            }
        }
        None => lines.push("Sem fluxo em andamento.".to_owned()),
    }
    for event in &turn.events {
        if let EventKind::Classified(classification) = &event.kind {
            let answer = classification.answer.as_deref().map_or_else(|| "(nada)".to_owned(), switchyard_engine::mask::mask_text);
            lines.push(format!("Classificação: {} = {} ({})", classification.task, answer, classification.classifier.as_str()));
        }
    }
    if status == "pending" {
        lines.push("Fora do horário de atendimento: o cliente foi avisado de quando será atendido.".to_owned());
    }
    lines.join("\n")
}

/// Makes the Chatwoot calls of due handoffs until shutdown.
pub(super) async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    if !state.config().chatwoot.is_on() {
        return;
    }
    loop {
        tokio::select! {
            _ = state.inner.wake_desk.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = super::stopped(&mut stop) => return,
        }
        let now = Timestamp::now_utc();
        let jobs = match state.store().desk_due(now, LEASE.as_millis() as i64, 20).await {
            Ok(jobs) => jobs,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the Chatwoot queue; retrying");
                continue;
            }
        };
        for job in jobs {
            work(&state, job).await;
        }
    }
}

/// One attempt at one job's remaining calls.
async fn work(state: &AppState, job: DeskJob) {
    let store = state.store();
    let contact = job.contact.masked();
    let Some(account) = state.config().chatwoot.account(job.instance.as_str()).cloned() else {
        let _ = store.desk_done(job.seq, Timestamp::now_utc(), Some("chatwoot is off for this instance")).await;
        return;
    };
    let client = &state.inner.chatwoot;
    let config = &state.config().chatwoot;
    let mut step = job.step;
    let mut conversation = job.conversation;
    let result: Result<(), ChatwootError> = async {
        let conversation = match conversation {
            Some(id) => id,
            None => {
                let linked = store.chatwoot_link(&job.instance, &job.contact).await.map_err(|err| ChatwootError::Retry(err.to_string()))?;
                let id = match linked {
                    Some(id) => id,
                    None => client.find_conversation(&account, job.contact.as_str()).await?,
                };
                conversation = Some(id);
                id
            }
        };
        let calls: [(u32, bool); 4] = [(1, true), (2, config.team_id.is_some()), (3, !config.labels.is_empty()), (4, true)];
        for (number, wanted) in calls {
            if step >= number {
                continue;
            }
            if wanted {
                match number {
                    1 => client.set_status(&account, conversation, &job.status).await?,
                    2 => client.assign_team(&account, conversation, config.team_id.unwrap_or_default()).await?,
                    3 => client.add_labels(&account, conversation, &config.labels).await?,
                    _ => client.private_note(&account, conversation, &job.note).await?,
                }
            }
            step = number;
            if number < 4 {
                store.desk_progress(job.seq, step, Some(conversation)).await.map_err(|err| ChatwootError::Retry(err.to_string()))?;
            }
        }
        Ok(())
    }
    .await;
    let now = Timestamp::now_utc();
    match result {
        Ok(()) => {
            tracing::info!(instance = %job.instance, contact = %contact, conversation, status = %job.status, "chatwoot told of the handoff");
            if let Err(err) = store.desk_done(job.seq, now, None).await {
                tracing::warn!(error = %err, "cannot record a finished Chatwoot job; it may be redone");
            }
        }
        Err(ChatwootError::Retry(problem)) => {
            let wait = Duration::from_millis(250).saturating_mul(1u32 << job.attempts.min(12)).min(MAX_BACKOFF);
            tracing::warn!(instance = %job.instance, contact = %contact, attempts = job.attempts, retry_in_ms = wait.as_millis() as u64, error = %problem, "chatwoot call failed; will retry");
            if conversation != job.conversation {
                let _ = store.desk_progress(job.seq, step, conversation).await;
            }
            let _ = store.desk_retry(job.seq, now.plus(wait), &problem).await;
        }
        Err(ChatwootError::Refused(problem)) => {
            tracing::error!(instance = %job.instance, contact = %contact, error = %problem, "chatwoot refused the handoff's call; giving up on it");
            let _ = store.desk_done(job.seq, now, Some(&problem)).await;
        }
    }
}

/// `POST /webhooks/chatwoot/{secret}`.
pub(super) fn router(state: &AppState) -> Router<AppState> {
    Router::new().route("/webhooks/chatwoot/{secret}", post(receive)).layer(DefaultBodyLimit::max(state.config().max_body_bytes))
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

async fn receive(State(state): State<AppState>, Path(secret): Path<String>, body: Bytes) -> Response {
    let Some(expected) = state.config().chatwoot.webhook_secret.as_deref() else {
        return answer(StatusCode::NOT_FOUND, json!({"error": "the chatwoot webhook is off: set CHATWOOT_WEBHOOK_SECRET"}));
    };
    if !switchyard_evolution::auth::secret_matches(expected, &secret) {
        tracing::warn!("chatwoot webhook refused: wrong secret");
        return answer(StatusCode::UNAUTHORIZED, json!({"error": "wrong chatwoot webhook secret"}));
    }
    let (conversation, phone) = match crate::chatwoot::parse_webhook(&body) {
        Ok(Given::Resolved { conversation, phone }) => (conversation, phone),
        Ok(Given::Nothing(reason)) => return answer(StatusCode::OK, json!({"status": "ignored", "reason": reason})),
        Err(problem) => {
            tracing::warn!(error = %problem, "chatwoot webhook refused: malformed body");
            return answer(StatusCode::BAD_REQUEST, json!({"error": problem}));
        }
    };
    let now = Timestamp::now_utc();
    let store = state.store();
    let mut targets: Vec<(String, String)> = match store.chatwoot_contacts(conversation).await {
        Ok(targets) => targets,
        Err(err) => return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": format!("store unavailable: {err}")})),
    };
    if targets.is_empty()
        && let Some(contact) = phone.as_deref().and_then(|phone| Contact::parse(phone).ok())
    {
        match store.held_instances(&contact, now).await {
            Ok(instances) => targets.extend(instances.into_iter().map(|instance| (instance, contact.as_str().to_owned()))),
            Err(err) => return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": format!("store unavailable: {err}")})),
        }
    }
    let mut released = 0;
    for (instance, contact) in targets {
        let (Ok(instance), Ok(contact)) = (InstanceId::parse(&instance), Contact::parse(&contact)) else { continue };
        match store.give_back(&instance, &contact, now).await {
            Ok(true) => {
                released += 1;
                tracing::info!(%instance, contact = %contact.masked(), conversation, "conversation resolved in chatwoot: the bot answers again");
            }
            Ok(false) => {}
            Err(err) => return answer(StatusCode::SERVICE_UNAVAILABLE, json!({"error": format!("store unavailable: {err}")})),
        }
    }
    answer(StatusCode::OK, json!({"status": if released > 0 { "released" } else { "not_on_hold" }, "released": released}))
}
