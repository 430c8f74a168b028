//! Voice notes, files, typing and choices through the real server on
//! loopback (issue #18), against two stand-ins speaking the real wire
//! formats: an Evolution API (sendText, sendMedia, sendButtons, sendList,
//! getBase64FromMediaMessage, findMessages; bodies as in Evolution 2.3.6's
//! DTOs and validation schemas) and an OpenAI-compatible transcription
//! endpoint (`POST /v1/audio/transcriptions`, multipart in, `{"text"}` out).
//! Webhooks are the recorded payloads of `crates/evolution/tests/fixtures/real/`.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use support::{fresh_db, test_config, upsert, wait_until};
use switchyard::serve::{MediaConfig, Server, Typing};
use switchyard_engine::engine::{Engine, EngineConfig};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_store::sqlite::SqliteStore;

fn real(name: &str) -> Value {
    let path = format!("{}/../evolution/tests/fixtures/real/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))).unwrap()
}

/// A recorded webhook re-addressed: another instance, message id and number.
fn readdressed(name: &str, instance: &str, id: &str, number: &str) -> Value {
    let mut body = real(name);
    body["instance"] = json!(instance);
    body["data"]["key"]["id"] = json!(id);
    body["data"]["key"]["remoteJid"] = json!(format!("{number}@s.whatsapp.net"));
    body["data"]["messageTimestamp"] = json!(now_secs());
    body
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn on(instance: &str, mut body: Value) -> Value {
    body["instance"] = json!(instance);
    body
}

/// Every request the Evolution stand-in received: (route, instance, body).
#[derive(Default)]
struct Evo {
    seen: Mutex<Vec<(String, String, Value)>>,
    next_id: AtomicUsize,
}

type Shared = Arc<Evo>;

async fn evolution(State(evo): State<Shared>, Path((route, instance)): Path<(String, String)>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    evo.seen.lock().unwrap().push((route.clone(), instance, body.clone()));
    match route.as_str() {
        "getBase64FromMediaMessage" => {
            let answer = real("responses/getbase64-201-v2.3.6.json");
            (StatusCode::CREATED, Json(answer))
        }
        "findMessages" => (StatusCode::OK, Json(json!({"messages": {"total": 0, "pages": 0, "currentPage": 1, "records": []}}))),
        _ => {
            let id = format!("3EB0{:018X}", evo.next_id.fetch_add(1, Ordering::SeqCst));
            let number = body["number"].as_str().unwrap_or_default();
            (
                StatusCode::CREATED,
                Json(json!({"key": {"remoteJid": format!("{number}@s.whatsapp.net"), "fromMe": true, "id": id},
                            "status": "PENDING", "messageType": "conversation", "messageTimestamp": now_secs()})),
            )
        }
    }
}

/// The transcription stand-in: answers `{"text": ...}` (or `status`) after `delay_ms`.
#[derive(Default)]
struct Whisper {
    bodies: Mutex<Vec<Vec<u8>>>,
    content_types: Mutex<Vec<String>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
}

async fn transcriptions(State(whisper): State<Arc<Whisper>>, headers: axum::http::HeaderMap, body: axum::body::Bytes) -> (StatusCode, Json<Value>) {
    whisper.bodies.lock().unwrap().push(body.to_vec());
    whisper.content_types.lock().unwrap().push(headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned());
    tokio::time::sleep(Duration::from_millis(whisper.delay_ms.load(Ordering::SeqCst))).await;
    match whisper.status.load(Ordering::SeqCst) {
        0 => (StatusCode::OK, Json(json!({"text": "Oi, eu queria a segunda via do boleto"}))),
        status => (StatusCode::from_u16(status).unwrap(), Json(json!({"error": {"message": "server error", "type": "server_error"}}))),
    }
}

struct Rig {
    app: Server,
    url: String,
    evo: Shared,
    whisper: Arc<Whisper>,
    store: SqliteStore,
    http: reqwest::Client,
}

async fn listen(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The real server with billing pinned to `billing_version`, `media` set up by `configure`.
async fn rig(billing_version: &str, configure: impl FnOnce(&mut MediaConfig, &str)) -> Rig {
    let evo: Shared = Arc::default();
    let evo_url = listen(
        Router::new()
            .route("/message/{route}/{instance}", post(evolution))
            .route("/chat/{route}/{instance}", post(evolution))
            .with_state(Arc::clone(&evo)),
    )
    .await;
    let whisper: Arc<Whisper> = Arc::default();
    let whisper_url = listen(Router::new().route("/v1/audio/transcriptions", post(transcriptions)).with_state(Arc::clone(&whisper))).await;
    let mut config = test_config(&evo_url);
    configure(&mut config.media, &format!("{whisper_url}/v1"));
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).unwrap());
    let overrides = Overrides::parse(&format!("billing={billing_version}"), &registry).unwrap();
    let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
    let engine = Arc::new(Engine::new(registry, resolver, EngineConfig::default()).unwrap());
    let store = SqliteStore::open(&fresh_db()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Server::start(listener, engine, Arc::new(switchyard_store::Db::Sqlite(store.clone())), config).await.unwrap();
    let url = format!("http://{}", app.addr);
    Rig { app, url, evo, whisper, store, http: support::http() }
}

fn transcribing(media: &mut MediaConfig, base: &str) {
    media.transcribe = true;
    media.transcribe_timeout = Duration::from_millis(800);
    media.transcriber = Some(
        switchyard_llm::transcribe::Transcriber::new(&reqwest::Url::parse(base).unwrap(), Some("sk-test".into()), "whisper-1", Some("pt"), Duration::from_millis(800))
            .unwrap(),
    );
}

impl Rig {
    async fn post(&self, body: &Value) {
        let response = self.http.post(format!("{}/webhooks/evolution", self.url)).json(body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    /// Sends (not fetches or lookups) to `number`, in order: (route, body).
    fn sends_to(&self, number: &str) -> Vec<(String, Value)> {
        self.evo
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(route, _, body)| route.starts_with("send") && body["number"] == number)
            .map(|(route, _, body)| (route.clone(), body.clone()))
            .collect()
    }

    async fn wait_sends(&self, number: &str, count: usize) -> Vec<(String, Value)> {
        for _ in 0..500 {
            if self.sends_to(number).len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.sends_to(number).len() < count {
            let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as("SELECT text, last_error, attempts FROM outbox").fetch_all(self.store.pool()).await.unwrap();
            let inbox: Vec<(String, Option<i64>)> = sqlx::query_as("SELECT kind, processed_at FROM inbox").fetch_all(self.store.pool()).await.unwrap();
            panic!("expected {count} sends to {number}; seen {:?}; outbox {rows:?}; inbox {inbox:?}", self.evo.seen.lock().unwrap());
        }
        self.sends_to(number)
    }

    async fn idle(&self) {
        wait_until(|| async {
            let pending: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL) + (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL)",
            )
            .fetch_one(self.store.pool())
            .await
            .unwrap();
            pending == 0
        })
        .await;
    }

    async fn details(&self, kind: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT COALESCE(detail, '') FROM events WHERE kind = ? ORDER BY seq").bind(kind).fetch_all(self.store.pool()).await.unwrap()
    }
}

const UNSUPPORTED: &str = "Por enquanto eu só consigo entender mensagens de texto";

#[tokio::test]
async fn a_voice_note_with_speech_to_text_is_read_as_its_text() {
    let rig = rig("v2", |_, _| {}).await;
    rig.post(&real("v2.3.6-upsert-audio-speech-to-text.json")).await;
    let sends = rig.wait_sends("5521987650112", 1).await;
    assert!(sends[0].1["text"].as_str().unwrap().contains("CPF"), "billing asks for the document: {sends:?}");
    assert_eq!(rig.details("received").await, vec!["audio"], "the turn is marked as audio");
    assert!(rig.whisper.bodies.lock().unwrap().is_empty(), "Evolution's text is used, nothing transcribed");
    rig.app.shutdown().await;
}

#[tokio::test]
async fn a_voice_note_without_it_is_fetched_and_transcribed_through_the_stand_in() {
    let rig = rig("v2", transcribing).await;
    rig.post(&real("v2.3.6-upsert-audio-ptt.json")).await;
    let sends = rig.wait_sends("5521987650111", 1).await;
    assert!(sends[0].1["text"].as_str().unwrap().contains("CPF"), "the transcript routed to billing: {sends:?}");
    let fetched: Vec<Value> =
        rig.evo.seen.lock().unwrap().iter().filter(|(route, ..)| route == "getBase64FromMediaMessage").map(|(.., body)| body.clone()).collect();
    assert_eq!(fetched, vec![json!({"message": {"key": {"id": "3A5D1E2F3A4B5C6D7E8F"}}, "convertToMp4": false})]);
    let body = rig.whisper.bodies.lock().unwrap()[0].clone();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("name=\"file\"; filename=\"audio.ogg\"") && text.contains("OggS"), "the audio is the file part");
    assert!(text.contains("name=\"model\"\r\n\r\nwhisper-1"), "{text}");
    assert!(rig.whisper.content_types.lock().unwrap()[0].starts_with("multipart/form-data; boundary="));
    assert_eq!(rig.details("received").await, vec!["audio"]);
    rig.app.shutdown().await;
}

#[tokio::test]
async fn a_failed_or_slow_transcription_gets_the_polite_answer_and_loses_nothing() {
    let rig = rig("v2", transcribing).await;
    rig.whisper.status.store(500, Ordering::SeqCst);
    rig.post(&readdressed("v2.3.6-upsert-audio-ptt.json", "loja-teste", "3A0000000000000FAIL01", "5521987650201")).await;
    let sends = rig.wait_sends("5521987650201", 1).await;
    assert!(sends[0].1["text"].as_str().unwrap().contains(UNSUPPORTED), "{sends:?}");

    rig.whisper.status.store(0, Ordering::SeqCst);
    rig.whisper.delay_ms.store(3_000, Ordering::SeqCst);
    rig.post(&readdressed("v2.3.6-upsert-audio-ptt.json", "loja-teste", "3A0000000000000SLOW01", "5521987650202")).await;
    let started = std::time::Instant::now();
    let sends = rig.wait_sends("5521987650202", 1).await;
    assert!(started.elapsed() < Duration::from_millis(2_500), "the budget (800 ms) bounds the wait, not the endpoint");
    assert!(sends[0].1["text"].as_str().unwrap().contains(UNSUPPORTED), "{sends:?}");
    // Both entries were processed and both answers delivered; the customer
    // can write again and is answered.
    rig.idle().await;
    rig.post(&on("loja-teste", upsert("3A0000000000000TEXT01", "5521987650202", "quero a segunda via do boleto", now_secs()))).await;
    let sends = rig.wait_sends("5521987650202", 2).await;
    assert!(sends[1].1["text"].as_str().unwrap().contains("CPF"), "{sends:?}");
    assert!(rig.details("received").await.is_empty(), "no voice note was read");
    rig.app.shutdown().await;
}

#[tokio::test]
async fn billing_v3_sends_the_boleto_as_a_pdf_document() {
    let rig = rig("v3", |_, _| {}).await;
    let number = "5521987650301";
    rig.post(&upsert("3A0000000000000BOL001", number, "quero a segunda via do boleto", now_secs())).await;
    rig.wait_sends(number, 1).await;
    rig.post(&upsert("3A0000000000000BOL002", number, "529.982.247-25", now_secs() + 1)).await;
    rig.idle().await;
    let sends = rig.sends_to(number);
    let media: Vec<&Value> = sends.iter().filter(|(route, _)| route == "sendMedia").map(|(_, body)| body).collect();
    assert_eq!(media.len(), 1, "{sends:#?}");
    let document = media[0];
    assert_eq!(document["mediatype"], "document");
    assert_eq!(document["mimetype"], "application/pdf");
    assert!(document["media"].as_str().unwrap().starts_with("https://certifacil.example/boleto/"), "{document}");
    assert!(document["media"].as_str().unwrap().ends_with(".pdf"), "{document}");
    assert!(document["fileName"].as_str().unwrap().starts_with("boleto-"), "{document}");
    assert!(document["caption"].as_str().unwrap().contains("R$ 289,90"), "{document}");
    assert!(!sends.iter().any(|(_, body)| body["text"].as_str().is_some_and(|text| text.contains("Ou pague pelo link"))), "not a link");
    // The outbox kept the file and marked it sent with Evolution's id, as any reply.
    let (rich, provider): (String, String) = sqlx::query_as("SELECT rich, provider_id FROM outbox WHERE rich LIKE '%\"file\"%'").fetch_one(rig.store.pool()).await.unwrap();
    assert!(rich.contains("application/pdf") && provider.starts_with("3EB0"), "{rich} {provider}");
    rig.app.shutdown().await;
}

#[tokio::test]
async fn billing_v3_takes_a_payment_receipt_as_an_attachment() {
    let rig = rig("v3", |_, _| {}).await;
    let number = "5521987650114";
    rig.post(&upsert("3A0000000000000REC001", number, "já paguei", now_secs())).await;
    rig.wait_sends(number, 1).await;
    rig.post(&upsert("3A0000000000000REC002", number, "529.982.247-25", now_secs() + 1)).await;
    rig.wait_sends(number, 2).await;
    rig.post(&readdressed("v2.3.6-upsert-image.json", "loja-bot", "3AD0C1B2A3F4E5D6C7B8", number)).await;
    rig.idle().await;
    let sends = rig.sends_to(number);
    let last = sends.last().unwrap().1["text"].as_str().unwrap().to_owned();
    assert!(last.contains("comprovante"), "{sends:#?}");
    let data: String = sqlx::query_scalar("SELECT data FROM sessions WHERE contact = ? AND flow = 'billing'").bind(number).fetch_one(rig.store.pool()).await.unwrap();
    assert!(data.contains("image:3AD0C1B2A3F4E5D6C7B8:image/jpeg"), "the reference, not the bytes: {data}");
    assert_eq!(rig.details("received").await, vec!["image"]);
    let kind: String = sqlx::query_scalar("SELECT kind FROM inbox WHERE message_id = '3AD0C1B2A3F4E5D6C7B8'").fetch_one(rig.store.pool()).await.unwrap();
    assert_eq!(kind, "attachment");
    rig.app.shutdown().await;
}

#[tokio::test]
async fn typing_auto_puts_a_delay_sized_to_the_text_on_each_send() {
    let rig = rig("v2", |media, _| media.typing = Typing::Auto { cap: Duration::from_millis(1_500) }).await;
    let number = "5521987650401";
    rig.post(&upsert("3A0000000000000TYP001", number, "quero a segunda via do boleto", now_secs())).await;
    let sends = rig.wait_sends(number, 1).await;
    let delay = sends[0].1["delay"].as_u64().expect("a delay key");
    assert!((600..=1_500).contains(&delay), "{delay}");
    rig.app.shutdown().await;

    let off = self::rig("v2", |_, _| {}).await;
    let rig = off;
    rig.post(&upsert("3A0000000000000TYP002", number, "quero a segunda via do boleto", now_secs())).await;
    let sends = rig.wait_sends(number, 1).await;
    assert!(sends[0].1.get("delay").is_none(), "typing is off by default in tests: {sends:?}");
    rig.app.shutdown().await;
}

#[tokio::test]
async fn a_menu_goes_as_buttons_on_a_cloud_api_instance_and_the_reply_picks_the_option() {
    let rig = rig("v3", |media, _| media.cloud_instances = HashSet::from(["loja-cloud".to_owned()])).await;
    let number = "5521987650118";
    rig.post(&on("loja-cloud", upsert("wamid.A1", number, "financeiro", now_secs()))).await;
    rig.wait_sends(number, 1).await;
    rig.post(&on("loja-cloud", upsert("wamid.A2", number, "529.982.247-25", now_secs() + 1))).await;
    let sends = rig.wait_sends(number, 2).await;
    let (route, buttons) = &sends[1];
    assert_eq!(route, "sendButtons", "{sends:#?}");
    let ids: Vec<&str> = buttons["buttons"].as_array().unwrap().iter().map(|button| button["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert!(buttons["buttons"][1]["displayText"].as_str().unwrap().starts_with("2. Parcelar"), "{buttons}");
    assert!(!buttons["title"].as_str().unwrap().contains("1️⃣"), "the options are the buttons: {buttons}");
    // The Cloud API reply: the tapped button's title as `conversation`.
    let mut reply = real("v2.3.6-cloud-upsert-interactive-reply.json");
    reply["instance"] = json!("loja-cloud");
    reply["data"]["key"]["remoteJid"] = json!(format!("{number}@s.whatsapp.net"));
    reply["data"]["message"]["conversation"] = buttons["buttons"][1]["displayText"].clone();
    reply["data"]["messageTimestamp"] = json!(now_secs() + 2);
    rig.post(&reply).await;
    let sends = rig.wait_sends(number, 3).await;
    assert!(sends[2].1["text"].as_str().unwrap().contains("parcelar no boleto"), "option 2 (installments): {sends:#?}");

    // The same menu on a Baileys instance: numbered text, no buttons.
    let other = "5521987650119";
    rig.post(&upsert("3A0000000000000MEN001", other, "financeiro", now_secs())).await;
    rig.wait_sends(other, 1).await;
    rig.post(&upsert("3A0000000000000MEN002", other, "529.982.247-25", now_secs() + 1)).await;
    let sends = rig.wait_sends(other, 2).await;
    assert_eq!(sends[1].0, "sendText");
    assert!(sends[1].1["text"].as_str().unwrap().contains("2️⃣"), "{sends:#?}");
    rig.app.shutdown().await;
}
