//! Chatwoot handoff, takeover and give-back, and business hours, over real
//! loopback HTTP: the real server, a stand-in Evolution API and a stand-in
//! Chatwoot answering with the shapes recorded in `fixtures/chatwoot/`.

mod support;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Value};
use support::{upsert, wait_until, TestApp};
use switchyard::chatwoot::{Account, ChatwootConfig};
use switchyard_engine::time::Timestamp;

const TOKEN: &str = "cw-token-teste";
const SECRET: &str = "cw-webhook-secret-teste";

/// One call the stand-in Chatwoot received.
#[derive(Clone, Debug)]
struct Call {
    method: String,
    path: String,
    body: Value,
}

#[derive(Default)]
struct DeskState {
    calls: Mutex<Vec<Call>>,
    /// 0: answer; otherwise every call gets this status.
    fail: AtomicU16,
    refused: Mutex<usize>,
}

/// A stand-in Chatwoot on loopback.
#[derive(Clone)]
struct Desk {
    url: String,
    state: Arc<DeskState>,
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/chatwoot/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn evolution_fixture(name: &str) -> Value {
    let path = format!("{}/../evolution/tests/fixtures/real/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn handle(State(state): State<Arc<DeskState>>, method: Method, Path(path): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap, body: String) -> (StatusCode, Json<Value>) {
    let fail = state.fail.load(Ordering::SeqCst);
    if fail != 0 {
        *state.refused.lock().unwrap() += 1;
        return (StatusCode::from_u16(fail).unwrap(), Json(json!({"error": "Service Unavailable"})));
    }
    if headers.get("api_access_token").and_then(|value| value.to_str().ok()) != Some(TOKEN) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"errors": ["You need to sign in or sign up before continuing."]})));
    }
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let full = match &query {
        Some(query) => format!("{path}?{query}"),
        None => path.clone(),
    };
    state.calls.lock().unwrap().push(Call { method: method.to_string(), path: full, body: body.clone() });
    let parts: Vec<&str> = path.split('/').collect();
    let answer = match (method.as_str(), parts.as_slice()) {
        ("GET", ["api", "v1", "accounts", "1", "contacts", "search"]) => fixture("contacts-search.json"),
        ("GET", ["api", "v1", "accounts", "1", "contacts", "207", "conversations"]) => fixture("contact-conversations.json"),
        ("POST", ["api", "v1", "accounts", "1", "conversations", id, "toggle_status"]) => {
            let mut answer = fixture("toggle_status.json");
            answer["payload"]["conversation_id"] = json!(id.parse::<i64>().unwrap());
            answer["payload"]["current_status"] = body["status"].clone();
            answer
        }
        ("POST", ["api", "v1", "accounts", "1", "conversations", _, "messages"]) => {
            let mut answer = fixture("messages-create-private.json");
            answer["content"] = body["content"].clone();
            answer
        }
        ("GET" | "POST", ["api", "v1", "accounts", "1", "conversations", _, "labels"]) => fixture("labels.json"),
        ("POST", ["api", "v1", "accounts", "1", "conversations", _, "assignments"]) => fixture("assignments-team.json"),
        _ => return (StatusCode::NOT_FOUND, Json(json!({"error": "Resource could not be found"}))),
    };
    (StatusCode::OK, Json(answer))
}

impl Desk {
    async fn start() -> Desk {
        let state = Arc::new(DeskState::default());
        let router = Router::new().route("/{*path}", any(handle)).with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Desk { url, state }
    }

    fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    fn calls_to(&self, suffix: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|call| call.path.ends_with(suffix)).collect()
    }

    fn config(&self) -> ChatwootConfig {
        ChatwootConfig {
            default: Some(Account { url: self.url.clone(), account_id: 1, token: TOKEN.to_owned() }),
            webhook_secret: Some(SECRET.to_owned()),
            ..ChatwootConfig::default()
        }
    }
}

async fn spawn(desk: &Desk, configure: impl FnOnce(&mut switchyard::config::ServeConfig)) -> TestApp {
    let chatwoot = desk.config();
    TestApp::spawn_configured(move |config| {
        config.chatwoot = chatwoot;
        configure(config);
    })
    .await
}

/// A customer message as Evolution sends it with its Chatwoot integration on.
fn upsert_in_chatwoot(id: &str, number: &str, text: &str, at: i64, conversation: i64) -> Value {
    let mut body = upsert(id, number, text, at);
    body["data"]["chatwootConversationId"] = json!(conversation);
    body["data"]["chatwootInboxId"] = json!(3);
    body["data"]["chatwootMessageId"] = json!(9000 + at % 1000);
    body
}

/// The recorded `send.message` of an agent's Chatwoot reply, to `number`.
fn agent_reply(id: &str, number: &str) -> Value {
    let mut body = evolution_fixture("v2.3.6-send-message-chatwoot-agent.json");
    body["instance"] = json!("loja-bot");
    body["data"]["key"]["id"] = json!(id);
    body["data"]["key"]["remoteJid"] = json!(format!("{number}@s.whatsapp.net"));
    body
}

async fn chatwoot_webhook(app: &TestApp, secret: &str, body: &Value) -> (u16, Value) {
    let response = support::http().post(format!("http://{}/webhooks/chatwoot/{secret}", app.addr)).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn chatwoot_down_the_hold_still_happens_and_the_calls_reach_it_when_it_is_back() {
    let desk = Desk::start().await;
    desk.state.fail.store(503, Ordering::SeqCst);
    let app = spawn(&desk, |_| {}).await;
    let number = "5511911110071";
    app.webhook(&upsert_in_chatwoot("CW-1", number, "oi", 1_796_000_000, 41)).await;
    app.wait_idle().await;
    app.webhook(&upsert_in_chatwoot("CW-2", number, "atendente", 1_796_000_010, 41)).await;
    app.wait_idle().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs WHERE contact = '5511911110071'").await, 1, "on hold although Chatwoot is down");
    let texts = app.texts_for(number).await;
    assert!(texts.last().unwrap().contains("pessoa da nossa equipe"), "{texts:?}");
    wait_until(|| async { *desk.state.refused.lock().unwrap() >= 2 }).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM holds WHERE desk_done_at IS NULL AND desk_attempts >= 1 AND desk_error LIKE '%HTTP 503%'").await, 1);
    // While it is down the customer writes again: silence, a person has it.
    app.webhook(&upsert_in_chatwoot("CW-3", number, "alô?", 1_796_000_020, 41)).await;
    app.wait_idle().await;
    assert_eq!(app.texts_for(number).await.len(), texts.len(), "no bot reply during the hold");

    desk.state.fail.store(0, Ordering::SeqCst);
    wait_until(|| async { !desk.calls_to("/messages").is_empty() }).await;
    let toggles = desk.calls_to("/toggle_status");
    assert_eq!(toggles.len(), 1, "{:?}", desk.calls());
    assert_eq!((toggles[0].path.as_str(), &toggles[0].body), ("api/v1/accounts/1/conversations/41/toggle_status", &json!({"status": "open"})));
    let notes = desk.calls_to("/messages");
    assert_eq!(notes.len(), 1, "one note, not one per retry");
    assert_eq!((notes[0].body["private"].as_bool(), notes[0].body["message_type"].as_str()), (Some(true), Some("outgoing")));
    let note = notes[0].body["content"].as_str().unwrap();
    assert!(note.contains("Fluxo: unknown@v") && note.contains("Motivo: command:human"), "{note}");
    wait_until(|| async { app.count("SELECT COUNT(*) FROM holds WHERE desk_done_at IS NOT NULL AND desk_error IS NULL AND desk_note IS NULL").await == 1 }).await;
    assert_eq!(app.scalar("SELECT cause FROM holds").await, "handoff");
    app.stop().await;
}

#[tokio::test]
async fn an_agent_reply_with_no_session_holds_the_contact_and_resolved_gives_it_back() {
    let desk = Desk::start().await;
    let app = spawn(&desk, |_| {}).await;
    let number = "5511911110071";
    // The agent writes first, from Chatwoot: Evolution's `send.message`.
    let (status, _) = app.webhook(&agent_reply("3EB0AGENT000000000001", number)).await;
    assert_eq!(status, 200);
    app.wait_idle().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0, "there was no session");
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs WHERE contact = '5511911110071'").await, 1, "the hold is created anyway");
    assert_eq!(app.scalar("SELECT cause FROM holds").await, "takeover");
    assert_eq!(app.count("SELECT COUNT(*) FROM holds WHERE desk_status IS NOT NULL").await, 0, "no Chatwoot call for a takeover");
    app.webhook(&upsert("AG-2", number, "oi, tudo bem?", 1_796_000_010)).await;
    app.wait_idle().await;
    assert!(app.texts_for(number).await.is_empty(), "the bot does not talk over the agent");

    // Wrong secret, then an unrelated status: nothing changes.
    let resolved = fixture("conversation_status_changed-resolved.json");
    assert_eq!(chatwoot_webhook(&app, "wrong", &resolved).await.0, 401);
    let mut opened = resolved.clone();
    opened["status"] = json!("open");
    assert_eq!(chatwoot_webhook(&app, SECRET, &opened).await.1["status"], "ignored");
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs").await, 1);
    // Resolved in Chatwoot (no link recorded: found by the sender's identifier).
    let (status, body) = chatwoot_webhook(&app, SECRET, &resolved).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("released")), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs").await, 0);
    assert_eq!(app.scalar("SELECT ended_by FROM holds").await, "resolved");
    // The next message starts a fresh session and is answered.
    app.webhook(&upsert("AG-3", number, "oi", 1_796_000_020)).await;
    app.wait_idle().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
    assert!(!app.texts_for(number).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn conversation_updated_to_resolved_gives_back_too() {
    let desk = Desk::start().await;
    let app = spawn(&desk, |config| config.admin_tokens = vec![("ops".to_owned(), "report-token".to_owned())]).await;
    let number = "5511911110071";
    app.webhook(&upsert_in_chatwoot("CU-1", number, "atendente", 1_796_000_000, 41)).await;
    app.wait_idle().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs").await, 1);
    let (status, body) = chatwoot_webhook(&app, SECRET, &fixture("conversation_updated-resolved.json")).await;
    assert_eq!((status, body["released"].as_i64()), (200, Some(1)), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs").await, 0);
    // `report` counts the hold under the version that handed off, given back, with its time on hold.
    let (status, report) = app.get_admin("/api/report?flow=unknown", "report-token").await;
    assert_eq!(status, 200, "{report}");
    let holds = &report["versions"][0]["holds"];
    assert_eq!(report["versions"][0]["version"], "v1", "{report}");
    assert_eq!(
        [&holds["handoffs"], &holds["takeovers"], &holds["returned"], &holds["released"], &holds["expired"]].map(|value| value.as_u64()),
        [Some(1), Some(0), Some(1), Some(0), Some(0)],
        "{holds}"
    );
    let seconds = holds["on_hold_seconds"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&seconds), "the hold lasted from the handoff to the resolve: {seconds} s");
    app.stop().await;
}

/// Wednesday 2026-12-02, 22:00 in São Paulo.
fn wednesday_22h() -> Timestamp {
    Timestamp::parse_rfc3339("2026-12-02T22:00:00-03:00").unwrap()
}

#[tokio::test]
async fn a_handoff_at_22h_on_a_weekday_says_when_a_person_answers_and_leaves_chatwoot_pending() {
    let desk = Desk::start().await;
    let app = spawn(&desk, |config| {
        config.business_hours = switchyard::hours::BusinessHours::parse("*=mon-fri 09:00-18:00; sat 09:00-13:00").unwrap();
        config.hours_clock = wednesday_22h;
    })
    .await;
    // A Cloud API instance: no chatwootConversationId, so the conversation
    // is found through contact search.
    let number = "5511911110071";
    app.webhook(&upsert("H-1", number, "atendente", 1_796_000_000)).await;
    app.wait_idle().await;
    let texts = app.texts_for(number).await;
    assert!(texts.iter().any(|text| text.contains("fora do horário") && text.contains("amanhã (quinta), às 09:00")), "{texts:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs").await, 1, "the hold is kept");
    wait_until(|| async { !desk.calls_to("/messages").is_empty() }).await;
    let paths: Vec<String> = desk.calls().iter().map(|call| format!("{} {}", call.method, call.path)).collect();
    assert_eq!(
        paths[..3],
        [
            "GET api/v1/accounts/1/contacts/search?q=5511911110071".to_owned(),
            "GET api/v1/accounts/1/contacts/207/conversations".to_owned(),
            "POST api/v1/accounts/1/conversations/41/toggle_status".to_owned(),
        ],
        "the open conversation (41, pending) is chosen over the resolved one (12)"
    );
    assert_eq!(desk.calls_to("/toggle_status")[0].body, json!({"status": "pending"}));
    app.stop().await;
}

#[tokio::test]
async fn our_own_send_echoed_back_is_not_a_takeover() {
    let desk = Desk::start().await;
    let app = spawn(&desk, |_| {}).await;
    let number = "5511911110072";
    // The send is held by Evolution: its echo arrives before its answer.
    app.evolution.hold();
    app.webhook(&upsert("E-1", number, "oi", 1_796_000_000)).await;
    let sent = app.evolution.wait_for(1).await;
    let mut echo = evolution_fixture("v2.3.6-send-message-chatwoot-agent.json");
    echo["instance"] = json!("loja-bot");
    echo["data"]["key"]["id"] = json!(sent[0].id);
    echo["data"]["key"]["remoteJid"] = json!(format!("{number}@s.whatsapp.net"));
    echo["data"]["message"]["conversation"] = json!(sent[0].text);
    assert_eq!(app.webhook(&echo).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.evolution.release();
    app.wait_idle().await;
    // A later reply's echo arrives after its answer, as a fromMe upsert
    // (evolution-api #1340): matched by the recorded provider id.
    app.webhook(&upsert("E-2", number, "1", 1_796_000_010)).await;
    let sent = app.evolution.wait_for(2).await;
    app.wait_idle().await;
    let mut upsert_echo = evolution_fixture("v2.3.6-upsert-fromme-echo.json");
    upsert_echo["instance"] = json!("loja-bot");
    upsert_echo["data"]["key"]["id"] = json!(sent.last().unwrap().id);
    upsert_echo["data"]["key"]["remoteJid"] = json!(format!("{number}@s.whatsapp.net"));
    assert_eq!(app.webhook(&upsert_echo).await.0, 200);
    app.wait_idle().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs").await, 0, "our echoes are not a person");
    assert_eq!(app.count("SELECT COUNT(*) FROM holds").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox WHERE kind = 'operator' AND processed_at IS NOT NULL").await, 2, "both echoes seen and set aside");
    let before = app.evolution.sent().len();
    app.webhook(&upsert("E-3", number, "menu", 1_796_000_020)).await;
    app.wait_idle().await;
    assert!(app.evolution.sent().len() > before, "the bot still answers");
    app.stop().await;
}
