//! Authentication end to end, through the real server on loopback: the
//! admin API's token on every route its OpenAPI document lists, the admin
//! API closed when no token is configured, per-instance webhook secrets, and
//! Evolution's `jwt_key` bearer tokens.

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::{snapshot, upsert, ServeProcess, StandIn, TestApp};

const RIGHT: &str = "tok-right-8c1f";
const CONTACT: &str = "5511911119001";

/// A value for each parameter and body field the admin API documents. A
/// route that brings a new name fails the test until it is given one here.
fn sample(name: &str) -> &'static str {
    match name {
        "flow" => "digital_certificate",
        "contact" => CONTACT,
        "instance" => "loja-bot",
        "since" => "2026-01-01T00:00:00Z",
        "until" => "2030-01-01T00:00:00Z",
        "versions" => "v1,v2",
        "version" => "v1",
        "min_finished" => "1",
        "step" => "purchase.collect_document",
        "limit" => "10",
        "reason" => "auth test",
        "candidate" => "v2",
        "baseline" => "v1",
        "min_sessions" => "1",
        "document" => "flow = \"billing\"",
        other => panic!("no sample value for the admin API parameter '{other}': add one to tests/auth.rs"),
    }
}

/// One operation of the admin API, filled with sample values.
#[derive(Debug)]
struct Call {
    method: reqwest::Method,
    /// The documented path, e.g. `/api/sessions/{contact}`.
    route: String,
    /// The path with its parameters filled and the query appended.
    url_path: String,
    body: Option<Value>,
    /// `false` for operations documented with `security: []`.
    secured: bool,
}

/// A body with every property of the request schema: strings get their
/// sample, integers theirs as a number, times theirs as text, other
/// objects (`$ref`s such as `FlowRules`) an empty object.
fn body_for(schema: &Value) -> Value {
    let mut body = serde_json::Map::new();
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let value = match property["type"].as_str() {
            Some("string") => json!(sample(name)),
            Some("integer") => json!(sample(name).parse::<u64>().expect("integer samples are numbers")),
            _ if property["$ref"] == "#/components/schemas/Time" => json!(sample(name)),
            _ if property.get("$ref").is_some() => json!({}),
            other => panic!("body field '{name}' of type {other:?} has no sample: add one to tests/auth.rs"),
        };
        body.insert(name.clone(), value);
    }
    Value::Object(body)
}

/// Every operation `GET /api/openapi.json` lists.
async fn documented_calls(base: &str) -> Vec<Call> {
    let http = support::http();
    let response = http.get(format!("{base}/api/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200, "the contract is readable without a token");
    let document: Value = response.json().await.unwrap();
    let default_secured = document["security"].as_array().is_some_and(|schemes| !schemes.is_empty());
    let mut calls = Vec::new();
    for (route, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let mut url_path = route.clone();
            let mut query = Vec::new();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                match parameter["in"].as_str() {
                    Some("path") => url_path = url_path.replace(&format!("{{{name}}}"), sample(name)),
                    Some("query") => query.push(format!("{name}={}", sample(name))),
                    other => panic!("{method} {route}: parameter '{name}' in {other:?}"),
                }
            }
            if !query.is_empty() {
                url_path = format!("{url_path}?{}", query.join("&"));
            }
            let body = operation.get("requestBody").map(|request| body_for(&request["content"]["application/json"]["schema"]));
            let secured = operation.get("security").map_or(default_secured, |schemes| schemes.as_array().is_some_and(|s| !s.is_empty()));
            calls.push(Call { method: method.to_uppercase().parse().unwrap(), route: route.clone(), url_path, body, secured });
        }
    }
    assert!(calls.len() >= 10, "the document lists the admin API: {calls:?}");
    calls
}

async fn call(base: &str, call: &Call, token: Option<&str>) -> (u16, Value) {
    let mut request = support::http().request(call.method.clone(), format!("{base}{}", call.url_path));
    if let Some(body) = &call.body {
        request = request.json(body);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The contact has a live session, so `end` and `forget` have something to
/// change if a refused call got through.
async fn with_a_live_session(app: &TestApp) {
    assert_eq!(app.webhook(&upsert("AUTH-LIVE-1", CONTACT, "quero comprar um certificado", 1_795_000_000)).await.0, 200);
    app.wait_idle().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL").await, 1);
}

#[tokio::test]
async fn every_documented_route_wants_the_right_token() {
    let app = TestApp::spawn_configured(|config| config.admin_tokens = vec![("ops".to_owned(), RIGHT.to_owned())]).await;
    with_a_live_session(&app).await;
    let base = format!("http://{}", app.addr);
    let calls = documented_calls(&base).await;
    let before = snapshot(app.pool()).await;

    for entry in calls.iter().filter(|entry| entry.secured) {
        for (who, token) in [("no token", None), ("a wrong token", Some("tok-wrong")), ("the token's prefix", Some(&RIGHT[..8]))] {
            let (status, body) = call(&base, entry, token).await;
            assert_eq!(status, 401, "{} {} with {who}: {body}", entry.method, entry.route);
            assert!(body["error"].is_string(), "{} {}: a one-line reason: {body}", entry.method, entry.route);
        }
        // The right token under another scheme is not a bearer token.
        let mut request = support::http().request(entry.method.clone(), format!("{base}{}", entry.url_path)).header("authorization", format!("Basic {RIGHT}"));
        if let Some(body) = &entry.body {
            request = request.json(body);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{} {} with Basic", entry.method, entry.route);
    }
    assert_eq!(snapshot(app.pool()).await, before, "a refused call changed the database");

    for entry in &calls {
        let token = entry.secured.then_some(RIGHT);
        let (status, body) = call(&base, entry, token).await;
        assert_eq!(status, 200, "{} {} with the right token: {body}", entry.method, entry.route);
    }
    // The calls that got through did change it: the checks above could fail.
    assert_ne!(snapshot(app.pool()).await, before);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL").await, 0, "end/forget ended the live session");
    let actors: Vec<String> = sqlx::query_scalar("SELECT actor FROM audit").fetch_all(app.pool()).await.unwrap();
    assert!(actors.iter().any(|actor| actor == "ops"), "the token's name is the actor: {actors:?}");
    app.stop().await;
}

#[tokio::test]
async fn serve_without_admin_tokens_answers_401_everywhere_and_changes_nothing() {
    let evolution = StandIn::start().await;
    let db = support::fresh_db();
    // The real binary, configured from the environment without ADMIN_TOKEN(S).
    let server = ServeProcess::start(&db, &evolution, &[]).await;
    let http = support::http();
    let body = upsert("AUTH-CLOSED-1", CONTACT, "quero comprar um certificado", 1_795_000_000);
    assert_eq!(http.post(format!("{}/webhooks/evolution", server.url)).json(&body).send().await.unwrap().status(), 200);
    evolution.wait_for(1).await;
    let store = switchyard_store::sqlite::SqliteStore::open(&db).await.unwrap();
    support::wait_until(|| async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL").fetch_one(store.pool()).await.unwrap() == 0
    })
    .await;
    let before = snapshot(store.pool()).await;

    let calls = documented_calls(&server.url).await;
    for entry in calls.iter().filter(|entry| entry.secured) {
        for token in [None, Some(RIGHT), Some("")] {
            let (status, body) = call(&server.url, entry, token).await;
            assert_eq!(status, 401, "{} {} with {token:?}: {body}", entry.method, entry.route);
            assert!(body["error"].as_str().is_some_and(|reason| reason.contains("ADMIN_TOKEN")), "says how to open it: {body}");
        }
    }
    assert_eq!(snapshot(store.pool()).await, before, "a call to the closed admin API changed the database");
}

#[tokio::test]
async fn a_webhook_secret_of_one_instance_is_refused_for_another_and_stores_nothing() {
    let app = TestApp::spawn_configured(|config| {
        config.webhook_secrets = [("loja-bot".to_owned(), "sec-loja".to_owned()), ("vendas".to_owned(), "sec-vendas".to_owned())].into();
    })
    .await;
    let for_loja = upsert("AUTH-INST-1", CONTACT, "oi", 1_795_000_000);
    let mut for_vendas = upsert("AUTH-INST-2", CONTACT, "oi", 1_795_000_001);
    for_vendas["instance"] = json!("vendas");
    let before = snapshot(app.pool()).await;

    let (status, body) = app.webhook_with(&for_loja.to_string(), Some("sec-vendas")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "the webhook secret does not belong to this instance");
    let (status, body) = app.webhook_with(&for_vendas.to_string(), Some("sec-loja")).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("the webhook secret does not belong to this instance")));
    for secret in [None, Some("sec-other"), Some("sec-lojaX"), Some("")] {
        assert_eq!(app.webhook_with(&for_loja.to_string(), secret).await.0, 401, "{secret:?}");
    }
    assert_eq!(snapshot(app.pool()).await, before, "a refused webhook stored something");

    // Each instance's own secret is accepted, for that instance.
    assert_eq!(app.webhook_with(&for_loja.to_string(), Some("sec-loja")).await.0, 200);
    assert_eq!(app.webhook_with(&for_vendas.to_string(), Some("sec-vendas")).await.0, 200);
    let stored: Vec<String> = sqlx::query_scalar("SELECT instance FROM inbox ORDER BY instance").fetch_all(app.pool()).await.unwrap();
    assert_eq!(stored, ["loja-bot", "vendas"]);
    app.stop().await;
}

const JWT_KEY: &str = "evolution-jwt-key-for-tests";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs as Evolution's `jsonwebtoken` does for a `jwt_key` header: HS256
/// over `header.claims`.
fn mint(header: &Value, claims: &Value, key: &str) -> String {
    let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

fn claims(iat: i64) -> Value {
    json!({"iat": iat, "exp": iat + 600, "app": "evolution", "action": "webhook"})
}

async fn post_with_bearer(app: &TestApp, body: &Value, token: &str) -> (u16, Value) {
    let response = support::http().post(format!("http://{}/webhooks/evolution", app.addr)).bearer_auth(token).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_jwt_key_token_is_accepted_when_valid_and_refused_when_expired_forged_or_unsigned() {
    let app = TestApp::spawn_configured(|config| config.webhook_jwt_key = Some(JWT_KEY.to_owned())).await;
    let now = switchyard_engine::time::Timestamp::now_utc().as_millis() / 1000;
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims(now).to_string().as_bytes()));
    let refused = [
        ("expired", mint(&hs256, &claims(now - 3600), JWT_KEY)),
        ("signed with another key", mint(&hs256, &claims(now), "another-key")),
        ("alg none", unsigned),
        ("alg none with the HS256 signature", {
            let signed = mint(&hs256, &claims(now), JWT_KEY);
            let signature = signed.rsplit('.').next().unwrap().to_owned();
            format!("{}.{}.{signature}", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims(now).to_string().as_bytes()))
        }),
        ("for another action", mint(&hs256, &json!({"iat": now, "exp": now + 600, "app": "evolution", "action": "other"}), JWT_KEY)),
        ("not a jwt", "abc.def".to_owned()),
    ];
    let before = snapshot(app.pool()).await;
    for (idx, (what, token)) in refused.iter().enumerate() {
        let body = upsert(&format!("AUTH-JWT-BAD-{idx}"), CONTACT, "oi", 1_795_000_000);
        let (status, answer) = post_with_bearer(&app, &body, token).await;
        assert_eq!(status, 401, "a token {what}: {answer}");
    }
    assert_eq!(app.webhook(&upsert("AUTH-JWT-NONE", CONTACT, "oi", 1_795_000_000)).await.0, 401, "no token at all");
    assert_eq!(snapshot(app.pool()).await, before, "a refused webhook stored something");

    let valid = mint(&hs256, &claims(now - 5), JWT_KEY);
    let (status, answer) = post_with_bearer(&app, &upsert("AUTH-JWT-OK", CONTACT, "oi", 1_795_000_000), &valid).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);
    app.evolution.wait_for(1).await;
    app.stop().await;
}
