//! `EvolutionClient` against a stand-in Evolution server: a small axum app
//! on 127.0.0.1:0 over a real socket, which records each request and answers
//! according to the instance name in the path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_evolution::client::{ClientError, EvolutionClient, SendError, Sent};
use switchyard_evolution::stored::SentQuery;

const PN: &str = "5521987650001";
const GLOBAL_KEY: &str = "global-key-0001";
const SENT_ID: &str = "3EB05A1C9D7E22F4B8C0A1";

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    apikey: Option<String>,
    content_type: Option<String>,
    body: Value,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.0.lock().expect("recorder lock"))
    }
}

fn error_body(status: u16, error: &str, message: Value) -> Value {
    json!({"status": status, "error": error, "response": {"message": message}})
}

/// Answers like Evolution 2.3.6 would for the scenario named by the instance.
async fn stand_in(
    State(recorder): State<Recorder>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    recorder.0.lock().expect("recorder lock").push(Recorded {
        method,
        path: uri.path().to_owned(),
        apikey: header("apikey"),
        content_type: header("content-type"),
        body: request.clone(),
    });
    if uri.path().starts_with("/chat/findMessages/") {
        let body = include_str!("fixtures/rest/find-messages-2.3.6.json");
        return (StatusCode::OK, [("content-type", "application/json")], body).into_response();
    }
    let instance = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    let number = request
        .get("number")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let (status, body) = match instance.as_str() {
        "not-on-whatsapp" => (
            400,
            error_body(
                400,
                "Bad Request",
                json!([{"jid": format!("{number}@s.whatsapp.net"), "exists": false, "number": number}]),
            ),
        ),
        "bad-body" => (
            400,
            error_body(
                400,
                "Bad Request",
                json!([["instance requires property \"text\""]]),
            ),
        ),
        "wrong-key" => (401, error_body(401, "Unauthorized", json!("Unauthorized"))),
        "ghost" => (
            404,
            error_body(
                404,
                "Not Found",
                json!(["The \"ghost\" instance does not exist"]),
            ),
        ),
        "socket-down" => (
            500,
            error_body(500, "Internal Server Error", json!("Connection Closed")),
        ),
        "unlicensed" => (
            503,
            json!({"error": "service not activated", "code": "LICENSE_REQUIRED", "register_url": "https://license.example.test/register"}),
        ),
        "overloaded" => (503, json!({"error": "Service Unavailable"})),
        "gateway-timeout" => (504, json!({"message": "upstream request timeout"})),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (201, json!({}))
        }
        _ => (
            201,
            json!({
                "key": {"remoteJid": format!("{number}@s.whatsapp.net"), "fromMe": true, "id": SENT_ID},
                "pushName": "Você",
                "status": "PENDING",
                "message": {"conversation": request.get("text")},
                "contextInfo": {"mentionedJid": [], "groupMentions": [], "ephemeralSettingTimestamp": {"low": 1762017810, "high": 0, "unsigned": false}, "disappearingMode": {"initiator": 0}},
                "messageType": "conversation",
                "messageTimestamp": 1762190990,
                "instanceId": "0b7c1d2e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
                "source": "web"
            }),
        ),
    };
    let status = StatusCode::from_u16(status).expect("valid status");
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn start() -> (SocketAddr, Recorder) {
    let recorder = Recorder::default();
    let app = Router::new()
        .fallback(stand_in)
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, recorder)
}

fn client(base: &str, instance_keys: &[(&str, &str)], timeout: Duration) -> EvolutionClient {
    let keys = instance_keys
        .iter()
        .map(|(instance, key)| ((*instance).to_owned(), (*key).to_owned()))
        .collect();
    EvolutionClient::new(base, Some(GLOBAL_KEY.to_owned()), keys, timeout).expect("valid client")
}

fn global_client(addr: SocketAddr) -> EvolutionClient {
    client(&format!("http://{addr}"), &[], Duration::from_secs(5))
}

#[tokio::test]
async fn sends_text_with_the_global_key() {
    let (addr, recorder) = start().await;
    let sent = global_client(addr)
        .send_text("loja-teste", PN, "Olá! Seu pedido saiu.")
        .await;
    assert_eq!(
        sent,
        Ok(Sent {
            message_id: Some(SENT_ID.into())
        })
    );

    let requests = recorder.take();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/message/sendText/loja-teste");
    assert_eq!(request.apikey.as_deref(), Some(GLOBAL_KEY));
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        request.body,
        json!({"number": PN, "text": "Olá! Seu pedido saiu."})
    );
}

#[tokio::test]
async fn per_instance_key_wins_over_the_global_one() {
    let (addr, recorder) = start().await;
    let client = client(
        &format!("http://{addr}"),
        &[("loja-a", "token-a")],
        Duration::from_secs(5),
    );
    client.send_text("loja-a", PN, "a").await.expect("sent");
    client.send_text("loja-b", PN, "b").await.expect("sent");
    let keys: Vec<_> = recorder
        .take()
        .into_iter()
        .map(|r| (r.path, r.apikey))
        .collect();
    assert_eq!(
        keys,
        [
            (
                "/message/sendText/loja-a".to_owned(),
                Some("token-a".to_owned())
            ),
            (
                "/message/sendText/loja-b".to_owned(),
                Some(GLOBAL_KEY.to_owned())
            ),
        ]
    );
}

#[tokio::test]
async fn lid_reply_address_is_sent_as_given() {
    let (addr, recorder) = start().await;
    global_client(addr)
        .send_text("loja-teste", "112233445566701@lid", "oi")
        .await
        .expect("sent");
    assert_eq!(recorder.take()[0].body["number"], "112233445566701@lid");
}

#[tokio::test]
async fn base_path_prefix_and_instance_encoding() {
    let (addr, recorder) = start().await;
    let client = client(
        &format!("http://{addr}/evolution/"),
        &[],
        Duration::from_secs(5),
    );
    client
        .send_text("loja teste/1?x#y", PN, "oi")
        .await
        .expect("sent");
    assert_eq!(
        recorder.take()[0].path,
        "/evolution/message/sendText/loja%20teste%2F1%3Fx%23y"
    );
}

#[tokio::test]
async fn error_statuses_map_to_outcomes() {
    let (addr, _recorder) = start().await;
    let client = global_client(addr);
    let cases: [(&str, SendError); 7] = [
        (
            "not-on-whatsapp",
            SendError::Rejected {
                status: 400,
                reason: "number is not on whatsapp".into(),
            },
        ),
        (
            "bad-body",
            SendError::Rejected {
                status: 400,
                reason: "bad request: instance requires property \"text\"".into(),
            },
        ),
        (
            "wrong-key",
            SendError::Unauthorized("status 401: check the global or instance api key".into()),
        ),
        (
            "ghost",
            SendError::Rejected {
                status: 404,
                reason: "instance or route not found: the \"ghost\" instance does not exist".into(),
            },
        ),
        (
            "socket-down",
            SendError::Retryable("server error 500: connection closed".into()),
        ),
        (
            "unlicensed",
            SendError::Retryable(
                "evolution server is not licensed (503 license_required): activate it".into(),
            ),
        ),
        (
            "overloaded",
            SendError::Retryable("server error 503".into()),
        ),
    ];
    for (instance, expected) in cases {
        let got = client.send_text(instance, PN, "texto secreto").await;
        assert_eq!(got, Err(expected), "{instance}");
        let shown = format!(
            "{} {:?}",
            got.as_ref().unwrap_err(),
            got.as_ref().unwrap_err()
        );
        assert!(!shown.contains(PN) && !shown.contains("secreto"), "{shown}");
    }
}

#[tokio::test]
async fn a_slow_server_times_out_as_unanswered() {
    let (addr, _recorder) = start().await;
    let client = client(&format!("http://{addr}"), &[], Duration::from_millis(300));
    // The stand-in's slow route answers after seconds; the client's own
    // timeout is what ends the call, and the reason says so.
    let got = client.send_text("slow", PN, "oi").await;
    assert_eq!(
        got,
        Err(SendError::Unanswered("no answer within 300 ms".into()))
    );
    assert!(got.unwrap_err().is_retryable());
}

#[tokio::test]
async fn a_closed_port_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let got = global_client(addr).send_text("loja-teste", PN, "oi").await;
    assert_eq!(
        got,
        Err(SendError::Retryable(
            "could not connect to the evolution server".into()
        ))
    );
}

#[tokio::test]
async fn an_instance_without_any_key_is_not_sent() {
    let (addr, recorder) = start().await;
    let keys = HashMap::from([("loja-a".to_owned(), "token-a".to_owned())]);
    let client = EvolutionClient::new(
        &format!("http://{addr}"),
        None,
        keys,
        Duration::from_secs(5),
    )
    .expect("valid client");
    let got = client.send_text("loja-b", PN, "oi").await;
    assert_eq!(
        got,
        Err(SendError::Unauthorized(
            "no api key configured for instance `loja-b`".into()
        ))
    );
    assert!(recorder.take().is_empty());
}

#[tokio::test]
async fn a_client_without_any_key_builds_and_refuses_every_send_without_sending() {
    let (addr, recorder) = start().await;
    let client = EvolutionClient::new(&format!("http://{addr}"), Some("  ".into()), HashMap::new(), Duration::from_secs(5))
        .expect("serve starts with only the evolution url");
    let got = client.send_text("loja-a", PN, "oi").await;
    assert!(matches!(got, Err(SendError::Unauthorized(_))), "{got:?}");
    assert!(recorder.take().is_empty());
}

#[test]
fn constructor_validates_its_configuration() {
    let key = || Some(GLOBAL_KEY.to_owned());
    let none = HashMap::new;
    let ten = Duration::from_secs(10);
    let cases = [
        (
            EvolutionClient::new("ftp://evo.example.test", key(), none(), ten),
            "evolution base url `ftp://evo.example.test` must use http or https",
        ),
        (
            EvolutionClient::new("evo.example.test", key(), none(), ten),
            "evolution base url `evo.example.test` is not a valid http(s) url",
        ),
        (
            EvolutionClient::new(
                "https://user:pw@evo.example.test:8080?x=1",
                key(),
                none(),
                ten,
            ),
            "evolution base url `https://***@evo.example.test:8080?x=1` must not have a query or fragment",
        ),
        (
            EvolutionClient::new("https://evo.example.test", key(), none(), Duration::ZERO),
            "evolution request timeout must be greater than zero",
        ),
        (
            EvolutionClient::new(
                "https://evo.example.test",
                None,
                HashMap::from([("loja".to_owned(), "bad\nkey".to_owned())]),
                ten,
            ),
            "evolution api key for instance `loja` contains characters not allowed in a header",
        ),
    ];
    for (result, expected) in cases {
        let err: ClientError = result.expect_err(expected);
        assert_eq!(err.to_string(), expected);
    }
    assert!(EvolutionClient::new("https://evo.example.test/base/", key(), none(), ten).is_ok());
}

#[test]
fn debug_hides_the_keys() {
    let client = EvolutionClient::new(
        "https://evo.example.test",
        Some(GLOBAL_KEY.to_owned()),
        HashMap::from([("loja".to_owned(), "instance-token-xyz".to_owned())]),
        Duration::from_secs(10),
    )
    .expect("valid");
    let debug = format!("{client:?}");
    assert!(
        !debug.contains(GLOBAL_KEY) && !debug.contains("instance-token-xyz"),
        "{debug}"
    );
    assert!(debug.contains("loja"), "{debug}");
}

/// A server that reads the whole request and closes the connection without
/// a word: the text may have gone out, so the send is unanswered, not a
/// refusal.
#[tokio::test]
async fn a_connection_dropped_after_the_request_is_unanswered() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(read) = socket.read(&mut buf).await {
                request.extend_from_slice(&buf[..read]);
                if read == 0 || request.windows(4).any(|w| w == b"\r\n\r\n") && request.ends_with(b"}") {
                    break;
                }
            }
            let _ = socket.shutdown().await;
        }
    });
    let got = global_client(addr).send_text("loja-teste", PN, "oi").await;
    assert_eq!(got, Err(SendError::Unanswered("connection dropped before an answer".into())));
}

#[tokio::test]
async fn gateway_errors_are_unanswered_and_evolution_errors_are_refusals() {
    let (addr, _recorder) = start().await;
    let got = global_client(addr).send_text("socket-down", PN, "oi").await;
    assert!(matches!(got, Err(SendError::Retryable(_))), "{got:?}");
    let got = global_client(addr).send_text("gateway-timeout", PN, "oi").await;
    assert_eq!(got, Err(SendError::Unanswered("gateway error 504: evolution's answer was lost".into())));
}

/// `findMessages` with the chat, `fromMe` and the window, answered with the
/// 2.3.6 record shape (`tests/fixtures/rest/`): our text is found with its
/// id; an earlier reply already accounted for, the customer's message and a
/// text we did not send are not.
#[tokio::test]
async fn find_sent_asks_for_the_chats_own_messages_in_the_window() {
    let (addr, recorder) = start().await;
    let client = client(&format!("http://{addr}"), &[("loja-a", "token-a")], Duration::from_secs(5));
    let reply = "Certificado digital, certo! Você quer comprar um novo ou renovar?";
    let query = SentQuery { number: PN, text: reply, since_millis: 1_795_000_011_500, until_millis: 1_795_000_020_000, known_ids: &[] };
    let found = client.find_sent("loja-a", &query).await;
    assert_eq!(found, Ok(Some(Sent { message_id: Some("3EB0C431D2F5A7E9B1C0A2".into()) })));

    let requests = recorder.take();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, Method::POST);
    assert_eq!(requests[0].path, "/chat/findMessages/loja-a");
    assert_eq!(requests[0].apikey.as_deref(), Some("token-a"));
    assert_eq!(
        requests[0].body,
        json!({"where": {"key": {"remoteJid": format!("{PN}@s.whatsapp.net"), "fromMe": true},
                         "messageTimestamp": {"gte": 1_795_000_009_500_i64, "lte": 1_795_000_022_000_i64}},
               "offset": 100, "page": 1})
    );

    let known = ["3EB0C431D2F5A7E9B1C0A2".to_owned()];
    let accounted = SentQuery { known_ids: &known, ..query };
    assert_eq!(client.find_sent("loja-a", &accounted).await, Ok(None), "an earlier reply's message is not this one");
    let customers = SentQuery { text: "1", ..query };
    assert_eq!(client.find_sent("loja-a", &customers).await, Ok(None), "the customer's message is not ours");
    let earlier = SentQuery { text: "Olá! Sou o assistente da CertiFácil. Como posso ajudar?", ..query };
    assert_eq!(client.find_sent("loja-a", &earlier).await, Ok(None), "sent before the window");
}

#[tokio::test]
async fn find_sent_errors_are_errors_not_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let query = SentQuery { number: PN, text: "oi", since_millis: 0, until_millis: 1, known_ids: &[] };
    let got = global_client(addr).find_sent("loja-teste", &query).await;
    assert!(matches!(got, Err(SendError::Retryable(_))), "{got:?}");
}
