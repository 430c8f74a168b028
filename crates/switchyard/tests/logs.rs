//! The log lines of the real `switchyard serve` binary, captured from its
//! stdout: a field value that carries a newline cannot forge a line of its
//! own (issue #13, finding 6), and what the lines say stays masked.

mod support;

use std::process::{Child, Command, Stdio};

use serde_json::json;
use support::{fresh_db, http, upsert, wait_until, StandIn};

const SECRET: &str = "logs-test-secret";
/// What an attacker wants a reader (or a log shipper) to see as a line.
const FORGED: &str = "2026-12-03T00:00:00.000000Z  INFO admin token accepted actor=root";

struct Serve {
    child: Child,
    url: String,
    log: std::path::PathBuf,
}

impl Serve {
    async fn start(evolution: &StandIn, log_format: &str) -> Serve {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::env::temp_dir().join(format!("switchyard-logs-{}-{port}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", fresh_db())
            .env("EVOLUTION_URL", &evolution.url)
            .env("EVOLUTION_API_KEY", "k")
            .env("TYPING", "off")
            .env("WEBHOOK_SECRET", SECRET)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("CONSOLE_BIND_ADDR", "off")
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", log_format)
            .stdout(Stdio::from(file))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let serve = Serve { child, url: format!("http://127.0.0.1:{port}"), log };
        let client = http();
        wait_until(|| async { client.get(format!("{}/readyz", serve.url)).send().await.is_ok_and(|r| r.status() == 200) }).await;
        serve
    }

    async fn webhook(&self, body: &serde_json::Value) -> u16 {
        let response = http()
            .post(format!("{}/webhooks/evolution", self.url))
            .header("x-webhook-secret", SECRET)
            .json(body)
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has a line containing `needle`, and returns the log.
    async fn wait_for_line(&self, needle: &str) -> String {
        wait_until(|| async { self.log().contains(needle) }).await;
        self.log()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn connection_update(state: &str) -> serde_json::Value {
    json!({
        "event": "connection.update",
        "instance": "loja-bot",
        "data": {"instance": "loja-bot", "state": state, "statusReason": 401},
        "date_time": "2026-12-03T00:00:00.000Z",
        "sender": "5511988880000@s.whatsapp.net",
        "server_url": "http://localhost:8080",
        "apikey": null
    })
}

/// Every line of the log starts with the timestamp of a real event, and
/// none is the forged one.
fn assert_no_forged_line(log: &str) {
    assert!(!log.is_empty());
    for line in log.lines() {
        assert!(!line.starts_with(FORGED), "forged line in the log:\n{log}");
        assert!(line.starts_with("20") || line.starts_with('{'), "a line that is not an event: {line:?}\n{log}");
        assert!(!line.contains('\r') && !line.contains('\u{2028}') && !line.contains('\u{1b}'), "{line:?}");
    }
}

#[tokio::test]
async fn a_newline_in_a_connection_state_or_message_id_cannot_forge_a_text_line() {
    let evolution = StandIn::start().await;
    let serve = Serve::start(&evolution, "text").await;

    // Not a state word: refused (400), and logged with the value on one line.
    let state = format!("close\n{FORGED}\r\n{FORGED}\u{2028}{FORGED}\u{1b}[2K");
    assert_eq!(serve.webhook(&connection_update(&state)).await, 400);
    let log = serve.wait_for_line("webhook refused: not a connection state").await;
    let line = log.lines().find(|line| line.contains("webhook refused: not a connection state")).unwrap();
    // The whole value is on its one line, escaped.
    assert!(line.contains(&format!("close\\n{FORGED}\\r\\n{FORGED}\\u{{2028}}{FORGED}\\u{{1b}}[2K")), "{line}");

    // A message id is logged on `message accepted` (or on its refusal, if a
    // length or charset rule refuses it): either way not as two lines.
    let id = format!("3EB0C0FFEE\n{FORGED} contact=5511977770001");
    let status = serve.webhook(&upsert(&id, "5511977770001", "oi, meu cpf é 529.982.247-25", 1_764_720_000)).await;
    let marker = if status == 200 { "message accepted" } else { "webhook refused" };
    let log = serve.wait_for_line(marker).await;
    assert_no_forged_line(&log);
    assert!(!log.contains("5511977770001") && !log.contains("529.982.247"), "{log}");
}

#[tokio::test]
async fn json_lines_stay_one_json_object_each() {
    let evolution = StandIn::start().await;
    let serve = Serve::start(&evolution, "json").await;
    let state = format!("close\n{FORGED}\u{2028}x");
    assert_eq!(serve.webhook(&connection_update(&state)).await, 400);
    let log = serve.wait_for_line("webhook refused: not a connection state").await;
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        if value["fields"]["message"] == "webhook refused: not a connection state" {
            assert_eq!(value["fields"]["state"], format!("close\n{FORGED}\u{2028}x"));
        }
    }
}
