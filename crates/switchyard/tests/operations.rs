//! Operator features through the real server (real webhooks, a stand-in
//! Evolution API): debounce, ignore lists, retention, and masked logs from
//! the real `serve` binary.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{upsert, StandIn, TestApp};
use switchyard::ignore::IgnoreList;
use switchyard::serve::Debounce;

/// How many turns answered `contact`: a turn's replies share their
/// `created_at` (the inbound entry's arrival).
async fn answering_turns(app: &TestApp, contact: &str) -> i64 {
    let pool = sqlx::SqlitePool::connect(&app.db).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(DISTINCT created_at) FROM outbox WHERE contact = ?").bind(contact).fetch_one(&pool).await.unwrap()
}

const BURST: [&str; 3] = ["oi", "tudo bem?", "quero meu boleto"];

#[tokio::test]
async fn three_messages_within_the_debounce_window_make_one_turn_and_spaced_out_make_three() {
    // A window long enough for three loopback webhooks on a busy machine.
    let app = TestApp::spawn_configured(|config| config.debounce = Debounce::everywhere(Duration::from_secs(2))).await;
    // Within the window: one input, "oi\ntudo bem?\nquero meu boleto",
    // which the entry flow routes straight to billing.
    for (idx, text) in BURST.iter().enumerate() {
        app.webhook(&upsert(&format!("BURST-{idx}"), "5511922220001", text, 1_795_000_000 + idx as i64)).await;
    }
    app.wait_idle().await;
    assert_eq!(answering_turns(&app, "5511922220001").await, 1);
    let texts = app.texts_for("5511922220001").await;
    assert!(!texts.iter().any(|text| text.contains("Como posso te ajudar hoje?")), "no menu for a burst that says what it wants: {texts:#?}");
    assert!(texts.iter().any(|text| text.contains("segunda via")), "billing answered: {texts:#?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox WHERE contact = '5511922220001'").await, 3, "every message is kept");
    assert_eq!(app.count("SELECT turns FROM sessions WHERE contact = '5511922220001' AND flow = 'billing'").await, 1);

    // The same three, each sent once the one before it was answered (its
    // window closed and its turn committed): three turns, in order.
    for (idx, text) in BURST.iter().enumerate() {
        app.webhook(&upsert(&format!("SLOW-{idx}"), "5511922220002", text, 1_795_000_000 + idx as i64)).await;
        support::wait_until(|| async { app.count("SELECT COUNT(*) FROM inbox WHERE contact = '5511922220002' AND processed_at IS NULL").await == 0 }).await;
    }
    app.wait_idle().await;
    assert_eq!(answering_turns(&app, "5511922220002").await, 3);
    let texts = app.texts_for("5511922220002").await;
    assert!(texts.first().is_some_and(|text| text.contains("CertiFácil")), "the greeting came first: {texts:#?}");
    app.stop().await;
}

#[tokio::test]
async fn without_debounce_each_message_is_its_own_turn() {
    let app = TestApp::spawn().await;
    for (idx, text) in BURST.iter().enumerate() {
        app.webhook(&upsert(&format!("OFF-{idx}"), "5511922220003", text, 1_795_000_000 + idx as i64)).await;
    }
    app.wait_idle().await;
    assert_eq!(answering_turns(&app, "5511922220003").await, 3);
    app.stop().await;
}

#[tokio::test]
async fn ignored_numbers_and_groups_are_never_answered_nor_stored() {
    let app = TestApp::spawn_configured(|config| {
        config.ignore = IgnoreList::parse("5511933330000, loja-bot=551144*, @g.us").unwrap();
    })
    .await;
    for (idx, number) in ["5511933330000", "5511444455556", "5511933330001"].iter().enumerate() {
        let (status, body) = app.webhook(&upsert(&format!("IGN-{idx}"), number, "oi", 1_795_000_000)).await;
        assert_eq!(status, 200);
        let expected = if idx < 2 { "ignored" } else { "accepted" };
        assert_eq!(body["status"], expected, "{number}: {body}");
    }
    app.wait_idle().await;
    let sent = app.evolution.sent();
    assert!(sent.iter().all(|send| send.number == "5511933330001"), "{sent:#?}");
    assert!(!sent.is_empty());
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_sweeper_purges_message_texts_past_the_retention_period_and_keeps_the_counts() {
    let app = TestApp::spawn_configured(|config| {
        config.retention = Some(Duration::from_millis(1));
        config.sweep_interval = Duration::from_millis(100);
    })
    .await;
    app.webhook(&upsert("RET-1", "5511922220004", "meu cpf é 529.982.247-25", 1_795_000_000)).await;
    app.wait_idle().await;
    support::wait_until(|| async {
        app.count("SELECT COUNT(*) FROM inbox WHERE body IS NOT NULL").await == 0
            && app.count("SELECT COUNT(*) FROM outbox WHERE text <> ''").await == 0
    })
    .await;
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1, "the message is still counted");
    assert!(app.count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL").await >= 1, "the replies are still counted");
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 1);
    app.stop().await;
}

/// Starts the real `serve` binary on a free port, its output to `log` (or
/// nowhere); returns it with its base URL and the thread copying its output.
fn spawn_serve(db: &str, evolution_url: &str, env: &[(&str, &str)], log: Option<std::fs::File>) -> (std::process::Child, String, std::thread::JoinHandle<()>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.arg("serve").stdin(Stdio::null());
    for name in ["FLOW_VERSION_OVERRIDES", "SESSION_TTL", "HANDOFF_TTL", "SWITCHYARD_CONFIG", "WEBHOOK_SECRET", "DEBOUNCE", "LOG_FORMAT", "RUST_LOG"] {
        command.env_remove(name);
    }
    command
        .env("DATABASE_URL", db)
        .env("TYPING", "off")
        .env("EVOLUTION_URL", evolution_url)
        .env("EVOLUTION_API_KEY", "global-key")
        .env("SEND_THROTTLE", "off")
        .envs(env.iter().copied());
    let (child, addr, copier) = support::spawn_serve_on_free_port(command, log);
    (child, format!("http://{addr}"), copier)
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    support::wait_until(|| async { http.get(format!("{base}/readyz")).send().await.is_ok_and(|response| response.status() == 200) }).await;
}

#[tokio::test]
async fn a_burst_cut_by_a_crash_is_answered_once_after_the_restart() {
    let evolution = StandIn::start().await;
    let db = support::fresh_db();
    let http = support::http();
    let (mut first, base, _) = spawn_serve(&db, &evolution.url, &[("DEBOUNCE", "5s")], None);
    wait_ready(&http, &base).await;
    for (idx, text) in BURST.iter().enumerate() {
        let body = upsert(&format!("CRASH-{idx}"), "5511922220005", text, 1_795_000_000 + idx as i64);
        assert_eq!(http.post(format!("{base}/webhooks/evolution")).json(&body).send().await.unwrap().status(), 200);
    }
    // kill -9 inside the window: the burst is only in the inbox.
    first.kill().unwrap();
    first.wait().unwrap();
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").fetch_one(&pool).await.unwrap();
    assert_eq!(pending, 3, "accepted messages survive the crash");
    assert!(evolution.sent().is_empty());

    let (mut second, base, _) = spawn_serve(&db, &evolution.url, &[("DEBOUNCE", "5s")], None);
    wait_ready(&http, &base).await;
    // Settled: every entry processed, every reply sent; nothing more can go out.
    support::wait_until(|| async {
        let unsettled: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL) + (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        unsettled == 0 && !evolution.sent().is_empty()
    })
    .await;
    let sent = evolution.sent();
    assert_eq!(sent.len() as i64, sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox").fetch_one(&pool).await.unwrap(), "each reply once");
    assert!(sent.iter().all(|send| send.text.contains("segunda via")), "one turn for the whole burst, answered by billing: {sent:#?}");
    let turns: i64 = sqlx::query_scalar("SELECT COUNT(DISTINCT created_at) FROM outbox").fetch_one(&pool).await.unwrap();
    assert_eq!(turns, 1);
    second.kill().unwrap();
    second.wait().unwrap();
}

/// Runs a whole purchase with CPF and e-mail through the real `serve`
/// binary (real webhooks over loopback, a stand-in Evolution) at `debug`,
/// and returns everything it wrote.
async fn logs_of_a_purchase(number: &str, log_format: &str) -> String {
    let evolution = StandIn::start().await;
    let db = support::fresh_db();
    let log_path = std::env::temp_dir().join(format!("switchyard-log-{}-{number}-{log_format}.txt", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let (mut child, base, copier) = spawn_serve(&db, &evolution.url, &[("LOG_FORMAT", log_format), ("RUST_LOG", "debug")], Some(log));
    let http = support::http();
    wait_ready(&http, &base).await;

    let purchase = ["quero comprar um certificado", "1", "1", "meu cpf é 529.982.247-25", "Ana.Souza@Exemplo.com.br", "1", "sim"];
    for (idx, text) in purchase.iter().enumerate() {
        let body = upsert(&format!("LOG-{idx}"), number, text, 1_795_000_000 + idx as i64);
        let response = http.post(format!("{base}/webhooks/evolution")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    support::wait_until(|| async { evolution.sent().iter().any(|send| send.text.contains("criado!")) }).await;
    assert!(evolution.sent().iter().all(|send| send.number == number));
    // SIGTERM: a graceful stop flushes everything.
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exits cleanly on SIGTERM");
    copier.join().expect("the log copier");
    let mut logs = String::new();
    std::fs::File::open(&log_path).unwrap().read_to_string(&mut logs).unwrap();
    logs
}

fn assert_nothing_personal(logs: &str, number: &str) {
    for secret in [number, &number[2..], "52998224725", "529.982.247-25", "98224725", "ana.souza", "Ana.Souza"] {
        assert!(!logs.contains(secret), "'{secret}' appears in the log:\n{logs}");
    }
}

#[tokio::test]
async fn the_serve_binary_logs_a_whole_purchase_without_an_unmasked_phone_cpf_or_email() {
    let logs = logs_of_a_purchase("5511955556666", "text").await;
    assert_nothing_personal(&logs, "5511955556666");
    // The log is real: it tells the conversation, masked, with request ids.
    assert!(logs.contains("5511*******66"), "contacts appear masked:\n{logs}");
    assert!(logs.contains("***.***.***-25"), "the CPF the customer wrote is logged masked (debug):\n{logs}");
    assert!(logs.contains("***@Exemplo.com.br"), "the e-mail the customer wrote is logged masked (debug):\n{logs}");
    for event in ["message accepted", "turn committed", "reply sent"] {
        assert!(logs.lines().any(|line| line.contains(event) && line.contains("request_id=LOG-3")), "'{event}' with request_id=LOG-3:\n{logs}");
    }
    assert!(logs.contains("session ended"), "{logs}");
}

#[tokio::test]
async fn json_logs_are_masked_too_and_carry_the_request_id() {
    let logs = logs_of_a_purchase("5511955557777", "json").await;
    assert_nothing_personal(&logs, "5511955557777");
    let lines: Vec<serde_json::Value> = logs.lines().filter(|line| line.starts_with('{')).map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(lines.len() > 10, "{logs}");
    let wrote = lines.iter().find(|line| line["fields"]["message"] == "customer wrote" && line["span"]["request_id"] == "LOG-3").expect("customer text at debug");
    assert_eq!(wrote["fields"]["text"], "meu cpf é ***.***.***-25");
    assert!(lines.iter().any(|line| line["fields"]["message"] == "reply sent" && line["fields"]["request_id"] == "LOG-3"), "{logs}");
}
