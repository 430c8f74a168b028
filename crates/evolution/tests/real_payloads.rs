//! Payloads in the shapes Evolution API really sent (v2.1, v2.2, v2.3),
//! taken from Evolution's own source and docs and from webhooks users logged
//! in its issue tracker (anonymised): `tests/fixtures/real/`, each one's
//! origin in `SOURCES.md`. Webhooks are parsed with exact expectations;
//! sendText answers and error bodies go through the real client against a
//! loopback server that answers with them. `switchyard`'s serve tests post
//! the webhooks through the real server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use switchyard_evolution::client::{EvolutionClient, SendError, Sent};
use switchyard_evolution::webhook::{
    Chat, Content, Identity, IgnoreReason, Incoming, Webhook, WebhookKind, parse,
};

fn real_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real")
}

fn parse_real(name: &str) -> Webhook {
    let path = real_dir().join(name);
    let body = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    parse(&body).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn message(id: &str, sender: Identity, push_name: Option<&str>, ts: i64, text: &str) -> WebhookKind {
    WebhookKind::Message(Incoming {
        message_id: id.into(),
        chat: Chat::Direct,
        sender,
        push_name: push_name.map(Into::into),
        timestamp_secs: Some(ts),
        content: Content::Text(text.into()),
    })
}

/// Field by field first (`Incoming`'s `Debug` is masked), then whole.
fn assert_real(name: &str, event: &str, kind: WebhookKind) {
    let actual = parse_real(name);
    if let (WebhookKind::Message(got), WebhookKind::Message(want)) = (&actual.kind, &kind) {
        assert_eq!(got.message_id, want.message_id, "{name}: id");
        assert_eq!(got.content.as_text(), want.content.as_text(), "{name}: text");
        assert_eq!(got.sender.phone, want.sender.phone, "{name}: phone");
        assert_eq!(got.sender.lid, want.sender.lid, "{name}: lid");
        assert_eq!(got.sender.reply_to, want.sender.reply_to, "{name}: reply_to");
        assert_eq!(got.push_name, want.push_name, "{name}: push name");
        assert_eq!(got.timestamp_secs, want.timestamp_secs, "{name}: timestamp");
        assert_eq!(got.chat, want.chat, "{name}: chat");
    }
    assert_eq!(actual, Webhook { instance: "loja-teste".into(), event: event.into(), kind, chatwoot: None }, "{name}");
}

/// Every file under `real/` (webhooks) and `real/responses/` has a test
/// below and a line in SOURCES.md.
#[test]
fn every_real_payload_is_tested_and_sourced() {
    let sources = std::fs::read_to_string(real_dir().join("SOURCES.md")).unwrap();
    let mut names = Vec::new();
    for dir in [real_dir(), real_dir().join("responses")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".json") {
                assert!(sources.contains(&format!("`{name}`")), "{name} has no line in SOURCES.md");
                names.push(name);
            }
        }
    }
    names.sort();
    let tested = [
        "400-connection-closed.json", "400-not-on-whatsapp.json", "400-validation.json", "401-unauthorized.json",
        "404-instance-does-not-exist.json", "500-connection-closed.json", "sendtext-201-docs.json", "sendtext-201-v2.3.6.json",
        "v2.1.0-upsert-extended-text.json", "v2.2.0-upsert-no-push-name.json", "v2.2.3-upsert-lid-only.json",
        "v2.3-messages-update-deleted.json", "v2.3.6-send-message-chatwoot-agent.json", "v2.3.6-upsert-chatwoot-ids.json",
        "v2.3.6-upsert-fromme-echo.json", "v2.3.6-upsert-lid-with-phone-alt.json",
        // Media and choices: tests/media_payloads.rs.
        "getbase64-201-v2.3.6.json", "getbase64-400-not-found.json", "sendmedia-201-v2.3.6.json",
        "v2.3.6-cloud-upsert-interactive-reply.json", "v2.3.6-upsert-audio-ptt.json",
        "v2.3.6-upsert-audio-speech-to-text-null.json", "v2.3.6-upsert-audio-speech-to-text.json",
        "v2.3.6-upsert-buttons-response.json", "v2.3.6-upsert-document.json", "v2.3.6-upsert-image.json",
        "v2.3.6-upsert-list-response.json",
    ];
    let mut tested = tested;
    tested.sort();
    assert_eq!(names, tested, "add a test for each new payload");
}

#[test]
fn v2_1_0_extended_text_keeps_its_type_name_and_is_read_from_conversation() {
    assert_real(
        "v2.1.0-upsert-extended-text.json",
        "messages.upsert",
        message(
            "3AF1C2D3E4F5A6B7C8D9",
            Identity { phone: Some("5521987650101".into()), lid: None, reply_to: "5521987650101".into() },
            Some("Carla Teste"),
            1_724_526_000,
            "Boa tarde, preciso da segunda via do boleto",
        ),
    );
}

#[test]
fn v2_2_0_without_a_push_name() {
    assert_real(
        "v2.2.0-upsert-no-push-name.json",
        "messages.upsert",
        message(
            "BAE5A1B2C3D4E5F6",
            Identity { phone: Some("5521987650102".into()), lid: None, reply_to: "5521987650102".into() },
            None,
            1_729_260_000,
            "quero comprar um certificado",
        ),
    );
}

#[test]
fn v2_2_3_lid_only_with_blanked_bytes_replies_to_the_lid() {
    assert_real(
        "v2.2.3-upsert-lid-only.json",
        "messages.upsert",
        message(
            "3A7E0D1C2B3A49586970",
            Identity { phone: None, lid: Some("187654321012345".into()), reply_to: "187654321012345@lid".into() },
            Some("Rodrigo Teste"),
            1_773_027_345,
            "Oi",
        ),
    );
}

#[test]
fn v2_3_6_lid_with_the_phone_in_remote_jid_alt_replies_to_the_phone() {
    assert_real(
        "v2.3.6-upsert-lid-with-phone-alt.json",
        "messages.upsert",
        message(
            "3EB0A1B2C3D4E5F6A7B8C9",
            Identity { phone: Some("5521987650103".into()), lid: Some("187654321012346".into()), reply_to: "5521987650103".into() },
            Some("Beatriz Teste"),
            1_762_200_000,
            "Meu certificado venceu, como renovo?",
        ),
    );
}

#[test]
fn v2_3_a_deleted_message_update_is_a_receipt() {
    assert_real("v2.3-messages-update-deleted.json", "messages.update", WebhookKind::Ignored { reason: IgnoreReason::Receipt });
}

/// Answers every sendText with the status and body of `responses/<instance>.json`.
async fn answer(UrlPath(instance): UrlPath<String>) -> Response {
    let body = std::fs::read_to_string(real_dir().join("responses").join(format!("{instance}.json"))).unwrap();
    let status = match instance.split('-').next().unwrap() {
        "sendtext" => 201,
        code => code.parse().unwrap(),
    };
    (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body).into_response()
}

#[tokio::test]
async fn send_text_answers_and_error_bodies_map_to_exact_outcomes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/message/sendText/{instance}", post(answer))).await.unwrap() });
    let client = EvolutionClient::new(&format!("http://{addr}"), Some("global-key".into()), HashMap::new(), Duration::from_secs(5)).unwrap();
    let rejected = |status: u16, reason: &str| Err(SendError::Rejected { status, reason: reason.into() });
    let cases: [(&str, Result<Sent, SendError>); 8] = [
        ("sendtext-201-docs", Ok(Sent { message_id: Some("BAE5C0FFEE123456".into()) })),
        ("sendtext-201-v2.3.6", Ok(Sent { message_id: Some("3EB0F00DBABE0011223344".into()) })),
        ("400-validation", rejected(400, "bad request: instance requires property \"text\"")),
        ("400-not-on-whatsapp", rejected(400, "number is not on whatsapp")),
        ("400-connection-closed", Err(SendError::Retryable("server error 400: error: connection closed".into()))),
        ("401-unauthorized", Err(SendError::Unauthorized("status 401: check the global or instance api key".into()))),
        ("404-instance-does-not-exist", rejected(404, "instance or route not found: the \"loja-teste\" instance does not exist")),
        ("500-connection-closed", Err(SendError::Retryable("server error 500: connection closed".into()))),
    ];
    for (instance, expected) in cases {
        assert_eq!(client.send_text(instance, "5521987650101", "Olá!").await, expected, "{instance}");
    }
}

#[test]
fn chatwoot_ids_and_api_sends_are_read() {
    let upsert = parse_real("v2.3.6-upsert-chatwoot-ids.json");
    assert_eq!(upsert.chatwoot, Some(switchyard_evolution::webhook::ChatwootRef { conversation_id: 41, inbox_id: Some(3) }));
    assert!(matches!(upsert.kind, WebhookKind::Message(_)));
    let agent = parse_real("v2.3.6-send-message-chatwoot-agent.json");
    let WebhookKind::ApiSend(incoming) = agent.kind else { panic!("{:?}", agent.kind) };
    assert_eq!((incoming.message_id.as_str(), incoming.sender.phone.as_deref()), ("3EB0A1B2C3D4E5F6A7B8C9", Some("5521987650131")));
    assert_eq!(agent.chatwoot, None);
    let echo = parse_real("v2.3.6-upsert-fromme-echo.json");
    assert!(matches!(echo.kind, WebhookKind::OperatorMessage(_)), "{:?}", echo.kind);
}
