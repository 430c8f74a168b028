//! Admin paths end to end, the HTTP API against the CLI on one store: the
//! report with filters, `rollout show`/`unpin` and the audit, operator
//! takeovers (off, and on an expired session), `handoff release` on SQLite,
//! and the bad inputs each path must refuse with a one-line reason.

mod support;

use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use support::{upsert, ServeProcess, StandIn, TestApp};

const TOKEN: &str = "tok-admin-paths";

fn switchyard(args: &[&str], db: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in ["FLOW_VERSION_OVERRIDES", "SESSION_TTL", "HANDOFF_TTL", "SWITCHYARD_CONFIG"] {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", db).env("USER", "ana").output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json_of(output: &Output) -> Value {
    serde_json::from_str(&ok(output)).unwrap()
}

async fn app() -> TestApp {
    TestApp::spawn_configured(|config| config.admin_tokens = vec![("ops".to_owned(), TOKEN.to_owned())]).await
}

async fn say(app: &TestApp, id: &str, contact: &str, text: &str) {
    assert_eq!(app.webhook(&upsert(id, contact, text, 1_795_000_000)).await.0, 200);
    app.wait_idle().await;
}

#[tokio::test]
async fn the_report_api_with_filters_equals_report_json() {
    let app = app().await;
    // Two purchases started on the entry menu, one completed, one handed off.
    for (n, lines) in [
        ("5511977770001", &["quero comprar um certificado", "1", "1", "529.982.247-25", "ana@exemplo.com.br", "1", "sim"][..]),
        ("5511977770002", &["quero comprar um certificado", "1", "atendente"][..]),
        ("5511977770003", &["quero a segunda via do boleto"][..]),
    ] {
        for (idx, line) in lines.iter().enumerate() {
            say(&app, &format!("REP-{n}-{idx}"), n, line).await;
        }
    }
    let filters = [
        ("versions", "v1,v2"),
        ("since", "2020-01-01T00:00:00Z"),
        ("until", "2099-01-01T00:00:00Z"),
        ("instance", "loja-bot"),
        ("min_finished", "1"),
    ];
    let query: Vec<String> = filters.iter().map(|(name, value)| format!("{name}={value}")).collect();
    let (status, api) = app.get_admin(&format!("/api/report?flow=digital_certificate&{}", query.join("&")), TOKEN).await;
    assert_eq!(status, 200, "{api}");
    let cli = json_of(&switchyard(
        &[
            "report", "digital_certificate", "--versions", "v1,v2", "--since", "2020-01-01T00:00:00Z", "--until", "2099-01-01T00:00:00Z",
            "--instance", "loja-bot", "--min-finished", "1", "--json",
        ],
        &app.db,
    ));
    assert_eq!(api, cli, "GET /api/report and report --json disagree");
    // The filters did something: the sessions are in the report, and another
    // instance has none of them.
    let text = api.to_string();
    assert!(text.contains("\"v1\""), "{api}");
    let (_, elsewhere) = app.get_admin("/api/report?flow=digital_certificate&instance=suporte&min_finished=1", TOKEN).await;
    let cli_elsewhere = json_of(&switchyard(&["report", "digital_certificate", "--instance", "suporte", "--min-finished", "1", "--json"], &app.db));
    assert_eq!(elsewhere, cli_elsewhere);
    assert_ne!(elsewhere, api, "the instance filter changes the report");
    app.stop().await;
}

#[tokio::test]
async fn rollout_show_and_unpin_round_trip_with_the_api_and_the_audit() {
    let app = app().await;
    let tester = "5511977771111";
    ok(&switchyard(&["rollout", "pin", "digital_certificate@v2", tester, "--reason", "tester on v2"], &app.db));
    let shown = json_of(&switchyard(&["rollout", "show", "--json"], &app.db));
    let (status, api) = app.get_admin("/api/rollout", TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(shown["flows"], api["flows"], "rollout show --json vs GET /api/rollout");
    assert!(api["flows"]["digital_certificate"].to_string().contains(tester), "{api}");
    let one_flow = json_of(&switchyard(&["rollout", "show", "digital_certificate", "--json"], &app.db));
    assert!(one_flow.to_string().contains(tester), "{one_flow}");

    ok(&switchyard(&["rollout", "unpin", "digital_certificate", tester, "--reason", "done testing"], &app.db));
    let shown = json_of(&switchyard(&["rollout", "show", "--json"], &app.db));
    let (_, api) = app.get_admin("/api/rollout", TOKEN).await;
    assert_eq!(shown["flows"], api["flows"]);
    assert!(!api.to_string().contains(tester), "the pin is gone: {api}");
    // The server resolves by the stored policy again (it polls the audit).
    support::wait_until(|| async {
        let (_, explained) = app.get_admin(&format!("/api/explain?flow=digital_certificate&contact={tester}&instance=loja-bot"), TOKEN).await;
        explained["reason"] == "active"
    })
    .await;

    // Both changes are in the audit, the same through the API and the CLI.
    let (status, audit) = app.get_admin("/api/audit?flow=digital_certificate", TOKEN).await;
    assert_eq!(status, 200);
    let cli_audit = json_of(&switchyard(&["audit", "--flow", "digital_certificate", "--json"], &app.db));
    assert_eq!(audit, cli_audit, "GET /api/audit vs audit --json");
    let changes: Vec<(String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|record| record["flow"] == "digital_certificate")
        .map(|record| (record["action"].as_str().unwrap_or_default().to_owned(), record["actor"].as_str().unwrap_or_default().to_owned(), record["reason"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let expected = |action: &str, reason: &str| (action.to_owned(), "cli:ana".to_owned(), reason.to_owned());
    assert_eq!(changes, [expected("pin", "tester on v2"), expected("unpin", "done testing")], "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn with_takeover_off_an_operator_message_changes_nothing() {
    let app = TestApp::spawn_configured(|config| config.takeover_on_from_me = false).await;
    let contact = "5511977772222";
    say(&app, "TK-0", contact, "oi").await;
    let mut operator = upsert("TK-1", contact, "Oi, aqui é a Ana", 1_795_000_010);
    operator["data"]["key"]["fromMe"] = json!(true);
    let (status, body) = app.webhook(&operator).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ignored")), "{body}");
    assert!(body["reason"].as_str().unwrap_or_default().contains("TAKEOVER_ON_FROM_ME=false"), "{body}");
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions WHERE outcome IS NULL").await, 1, "the session goes on");
    // The bot keeps answering.
    let before = app.texts_for(contact).await.len();
    say(&app, "TK-2", contact, "2").await;
    assert!(app.texts_for(contact).await.len() > before);
    app.stop().await;
}

#[tokio::test]
async fn a_takeover_on_an_expired_session_ends_it_expired_and_silences_the_bot() {
    let evolution = StandIn::start().await;
    let db = support::fresh_db();
    // A short TTL, and no sweep: the session is past its TTL when the operator types.
    let server = ServeProcess::start(&db, &evolution, &[("SESSION_TTL", "2s"), ("SWEEP_INTERVAL", "1h")]).await;
    let store = switchyard_store::sqlite::SqliteStore::open(&db).await.unwrap();
    let count = |sql: &'static str| {
        let pool = store.pool().clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    let http = support::http();
    let post = |body: Value| {
        let (http, url) = (http.clone(), server.url.clone());
        async move { http.post(format!("{url}/webhooks/evolution")).json(&body).send().await.unwrap().status().as_u16() }
    };
    let contact = "5511977773333";
    assert_eq!(post(upsert("EXP-0", contact, "oi", 1_795_000_000)).await, 200);
    support::wait_until(|| async { count("SELECT COUNT(*) FROM sessions WHERE outcome IS NULL").await == 1 }).await;
    let expires_at = count("SELECT expires_at FROM sessions WHERE outcome IS NULL").await;
    support::wait_until(|| async { switchyard_engine::time::Timestamp::now_utc().as_millis() > expires_at }).await;
    assert_eq!(count("SELECT COUNT(*) FROM sessions WHERE outcome IS NULL").await, 1, "not swept yet: still live in the store");

    let mut operator = upsert("EXP-1", contact, "Oi, aqui é a Ana", 1_795_000_100);
    operator["data"]["key"]["fromMe"] = json!(true);
    assert_eq!(post(operator).await, 200);
    support::wait_until(|| async { count("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await == 0 }).await;
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM sessions").fetch_one(store.pool()).await.unwrap();
    assert_eq!(outcome, "expired", "a session past its TTL ends expired, not handed off");
    assert_eq!(count("SELECT COUNT(*) FROM handoffs").await, 1, "the human has the chat");

    let replies = count("SELECT COUNT(*) FROM outbox").await;
    assert_eq!(post(upsert("EXP-2", contact, "quero comprar", 1_795_000_200)).await, 200);
    support::wait_until(|| async { count("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await == 0 }).await;
    assert_eq!(count("SELECT COUNT(*) FROM outbox").await, replies, "the bot stays silent");
    assert_eq!(count("SELECT COUNT(*) FROM sessions WHERE outcome IS NULL").await, 0);
}

#[tokio::test]
async fn handoff_release_from_the_cli_works_on_sqlite() {
    let app = app().await;
    let contact = "5511977774444";
    say(&app, "HR-0", contact, "oi").await;
    let mut operator = upsert("HR-1", contact, "Oi, aqui é a Ana", 1_795_000_010);
    operator["data"]["key"]["fromMe"] = json!(true);
    assert_eq!(app.webhook(&operator).await.0, 200);
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM handoffs").await == 1 }).await;

    let output = ok(&switchyard(&["handoff", "release", contact, "--instance", "loja-bot", "--reason", "ticket 7"], &app.db));
    assert!(!output.trim().is_empty(), "says what it did");
    assert_eq!(app.count("SELECT COUNT(*) FROM handoffs").await, 0);
    let audit = app.scalar("SELECT actor || ' ' || action || ' ' || reason FROM audit WHERE action = 'release'").await;
    assert!(audit.starts_with("cli:") && audit.ends_with(" release ticket 7"), "audited with the local user: {audit}");
    let before = app.texts_for(contact).await.len();
    say(&app, "HR-2", contact, "oi").await;
    assert!(app.texts_for(contact).await.len() > before, "the bot answers again");
    app.stop().await;
}

/// A refused request: 400 and a one-line error naming what was wrong.
fn assert_refused(status: u16, body: &Value, names: &str) {
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap_or_else(|| panic!("an error field: {body}"));
    assert!(error.contains(names) && !error.contains('\n') && error.len() < 300, "{error}");
}

async fn send_raw(app: &TestApp, method: reqwest::Method, path: &str, body: &str) -> (u16, Value) {
    let response = support::http()
        .request(method, format!("http://{}{path}", app.addr))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_admin_input_is_refused_naming_the_problem_and_changes_nothing() {
    let app = app().await;
    say(&app, "BAD-0", "5511977775555", "oi").await;
    let before = support::snapshot(app.pool()).await;

    let (status, body) = app.post_admin("/api/handoffs/release", json!({"instance": "loja-bot"}), Some(TOKEN)).await;
    assert_refused(status, &body, "'contact'");
    let (status, body) = app.post_admin("/api/handoffs/release", json!({"contact": "5511977775555"}), Some(TOKEN)).await;
    assert_refused(status, &body, "'instance'");
    let (status, body) = send_raw(&app, reqwest::Method::POST, "/api/handoffs/release", "instance=loja-bot").await;
    assert_refused(status, &body, "not JSON");
    let (status, body) = send_raw(&app, reqwest::Method::PUT, "/api/rollout/digital_certificate", "{\"rules\": ").await;
    assert_refused(status, &body, "not JSON");
    let (status, body) = app.get_admin("/api/explain?flow=digital_certificate&contact=abc-def", TOKEN).await;
    assert_refused(status, &body, "contact '");
    assert!(body["error"].as_str().unwrap().contains("must be a phone number"), "{body}");
    assert_eq!(support::snapshot(app.pool()).await, before, "a refused request changed the database");

    for args in [&["audit", "--since", "garbage"][..], &["report", "digital_certificate", "--since", "garbage"][..]] {
        let output = switchyard(args, &app.db);
        assert!(!output.status.success(), "{args:?} must fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line: {stderr}");
        assert!(lines[0].contains("garbage"), "{args:?}: names the bad value: {stderr}");
    }
    assert_eq!(support::snapshot(app.pool()).await, before);
    app.stop().await;
}
