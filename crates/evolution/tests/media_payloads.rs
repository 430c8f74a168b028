//! Voice notes, images, documents and choice replies in the shapes Evolution
//! 2.3.6 sends (`tests/fixtures/real/`, origins in SOURCES.md), and the
//! media routes of the client (`getBase64FromMediaMessage`, `sendMedia`,
//! `sendButtons`/`sendList`, `sendText` with `delay`) against a loopback
//! server that records each request body and answers with the recorded
//! responses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use switchyard_evolution::client::{EvolutionClient, SendError, Sent};
use switchyard_evolution::media::{Choice, OutgoingMedia};
use switchyard_evolution::webhook::{Audio, Content, Media, MediaKind, WebhookKind, parse};

fn real_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real")
}

fn content_of(name: &str) -> (String, Content) {
    let body = std::fs::read(real_dir().join(name)).unwrap();
    match parse(&body).unwrap_or_else(|err| panic!("{name}: {err}")).kind {
        WebhookKind::Message(incoming) => (incoming.message_id, incoming.content),
        other => panic!("{name}: {other:?}"),
    }
}

fn voice_note(transcript: Option<&str>) -> Content {
    Content::Audio(Audio {
        transcript: transcript.map(Into::into),
        mimetype: Some("audio/ogg; codecs=opus".into()),
        seconds: Some(6),
        bytes: Some(15872),
        voice_note: true,
    })
}

#[test]
fn a_voice_note_without_speech_to_text_has_no_transcript() {
    let (id, content) = content_of("v2.3.6-upsert-audio-ptt.json");
    assert_eq!(id, "3A5D1E2F3A4B5C6D7E8F");
    assert_eq!(content, voice_note(None));
}

#[test]
fn speech_to_text_is_the_transcript_without_evolutions_prefix() {
    let (_, content) = content_of("v2.3.6-upsert-audio-speech-to-text.json");
    assert_eq!(content, voice_note(Some("Oi, eu queria a segunda via do meu boleto")));
    assert_eq!(content.as_text(), Some("Oi, eu queria a segunda via do meu boleto"));
}

#[test]
fn a_failed_speech_to_text_is_no_transcript() {
    let (_, content) = content_of("v2.3.6-upsert-audio-speech-to-text-null.json");
    assert_eq!(content, voice_note(None));
}

#[test]
fn images_and_documents_are_references_not_bytes() {
    let (id, content) = content_of("v2.3.6-upsert-image.json");
    assert_eq!(id, "3AD0C1B2A3F4E5D6C7B8");
    assert_eq!(
        content,
        Content::Media(Media {
            kind: MediaKind::Image,
            mimetype: Some("image/jpeg".into()),
            file_name: None,
            caption: Some("comprovante do pix".into()),
            bytes: Some(184_320),
        })
    );
    let (_, content) = content_of("v2.3.6-upsert-document.json");
    assert_eq!(
        content,
        Content::Media(Media {
            kind: MediaKind::Document,
            mimetype: Some("application/pdf".into()),
            file_name: Some("comprovante-pagamento.pdf".into()),
            caption: None,
            bytes: Some(48_211),
        })
    );
}

#[test]
fn choice_replies_read_as_the_options_number() {
    // Baileys: the row / button id, which is the option's number.
    assert_eq!(content_of("v2.3.6-upsert-list-response.json").1, Content::Text("2".into()));
    assert_eq!(content_of("v2.3.6-upsert-buttons-response.json").1, Content::Text("3".into()));
    // Cloud API: the tapped button's title, which starts with the number.
    assert_eq!(content_of("v2.3.6-cloud-upsert-interactive-reply.json").1, Content::Text("1. Segunda via".into()));
}

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// Records `(route, body)` and answers with `responses/<instance>.json`
/// (status from the name's first part; `sendmedia`/`getbase64-201` are 201).
async fn answer(State(seen): State<Seen>, UrlPath((route, instance)): UrlPath<(String, String)>, body: String) -> Response {
    seen.lock().unwrap().push((route, serde_json::from_str(&body).unwrap()));
    let file = real_dir().join("responses").join(format!("{instance}.json"));
    let body = std::fs::read_to_string(file).unwrap();
    let status = instance.split('-').find_map(|part| part.parse::<u16>().ok()).unwrap_or(201);
    (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body).into_response()
}

async fn server() -> (EvolutionClient, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/message/{route}/{instance}", post(answer))
        .route("/chat/{route}/{instance}", post(answer))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = EvolutionClient::new(&format!("http://{addr}"), Some("global-key".into()), HashMap::new(), Duration::from_secs(5)).unwrap();
    (client, seen)
}

#[tokio::test]
async fn get_base64_fetches_by_message_id_and_decodes() {
    let (client, seen) = server().await;
    let fetched = client.fetch_media("getbase64-201-v2.3.6", "3A5D1E2F3A4B5C6D7E8F", 1 << 20).await.unwrap();
    assert!(fetched.bytes.starts_with(b"OggS"));
    assert_eq!(fetched.mimetype.as_deref(), Some("audio/ogg; codecs=opus"));
    let (route, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(route, "getBase64FromMediaMessage");
    assert_eq!(body, serde_json::json!({"message": {"key": {"id": "3A5D1E2F3A4B5C6D7E8F"}}, "convertToMp4": false}));
    // A file larger than allowed is refused, not read whole.
    assert!(matches!(client.fetch_media("getbase64-201-v2.3.6", "X", 4).await, Err(SendError::Rejected { status: 413, .. })));
    assert!(matches!(client.fetch_media("getbase64-400-not-found", "X", 1 << 20).await, Err(SendError::Rejected { status: 400, .. })));
}

#[tokio::test]
async fn send_media_posts_the_documented_body() {
    let (client, seen) = server().await;
    let media = OutgoingMedia {
        kind: MediaKind::Document,
        media: "https://certifacil.example/boleto/1a2b3c4d.pdf".into(),
        mimetype: "application/pdf".into(),
        file_name: Some("boleto-1a2b3c4d.pdf".into()),
        caption: "Aqui está o seu boleto".into(),
    };
    let sent = client.send_media("sendmedia-201-v2.3.6", "5521987650111", &media, Duration::from_millis(1200)).await;
    assert_eq!(sent, Ok(Sent { message_id: Some("3EB0D1E2F3A4B5C6D7E8F9".into()) }));
    let (route, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(route, "sendMedia");
    assert_eq!(
        body,
        serde_json::json!({"number": "5521987650111", "mediatype": "document", "mimetype": "application/pdf",
            "media": "https://certifacil.example/boleto/1a2b3c4d.pdf", "fileName": "boleto-1a2b3c4d.pdf",
            "caption": "Aqui está o seu boleto", "delay": 1200})
    );
}

#[tokio::test]
async fn typing_delay_and_choices_go_in_the_request() {
    let (client, seen) = server().await;
    client.send_text_typing("sendtext-201-v2.3.6", "5521987650111", "Olá!", Duration::from_millis(900)).await.unwrap();
    client.send_text_typing("sendtext-201-v2.3.6", "5521987650111", "Olá!", Duration::ZERO).await.unwrap();
    let choices: Vec<Choice> =
        ["1. Segunda via", "2. Parcelar"].iter().enumerate().map(|(i, title)| Choice { id: (i + 1).to_string(), title: (*title).into() }).collect();
    client.send_choices("sendtext-201-v2.3.6", "5521987650111", "O que você precisa?", &choices, "Opções", Duration::ZERO).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0].1["delay"], 900);
    assert!(seen[1].1.get("delay").is_none(), "no delay key when typing is off");
    assert_eq!(seen[2].0, "sendButtons");
    assert_eq!(seen[2].1["buttons"][1], serde_json::json!({"type": "reply", "displayText": "2. Parcelar", "id": "2"}));
}
