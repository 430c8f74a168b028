//! What a hostile or careless world does to `serve` (issue 13): blank
//! secrets, bodies before authentication, stalled clients, too many
//! connections, odd instance names, over-long message ids, `/metrics`.
//! Everything runs through the real server on loopback; configuration
//! through the real binary.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{fresh_db, upsert, TestApp};

/// Runs the binary with only `env` (plus PATH) in a fresh working directory.
fn switchyard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = std::env::temp_dir().join(format!("switchyard-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .args(args)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", fresh_db())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run switchyard")
}

/// Every secret or token variable.
const SECRETS: &[&str] = &[
    "WEBHOOK_SECRET",
    "WEBHOOK_SECRETS",
    "WEBHOOK_JWT_KEY",
    "ADMIN_TOKEN",
    "ADMIN_TOKENS",
    "EVOLUTION_API_KEY",
    "EVOLUTION_INSTANCE_KEYS",
    "LLM_API_KEY",
];

#[test]
fn a_secret_set_but_blank_is_named_by_check_and_refused_by_serve() {
    for name in SECRETS {
        for blank in ["", "   ", "\t"] {
            let output = switchyard(&["check"], &[("EVOLUTION_URL", "http://127.0.0.1:1"), (name, blank)]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "check with {name}={blank:?}: {stderr}");
            assert!(stderr.contains(&format!("{name} is set but blank")), "check names {name}: {stderr}");
        }
        // Without EVOLUTION_URL too: a blank secret is wrong whatever runs.
        let output = switchyard(&["check"], &[(name, " ")]);
        assert_eq!(output.status.code(), Some(1), "check without EVOLUTION_URL, {name} blank");
    }
    // serve refuses at once, before it listens, with the problem on one line.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    for name in ["WEBHOOK_SECRET", "WEBHOOK_JWT_KEY", "ADMIN_TOKEN", "LLM_API_KEY"] {
        let started = std::time::Instant::now();
        let output = switchyard(&["serve"], &[("EVOLUTION_URL", "http://127.0.0.1:1"), ("BIND_ADDR", &bind), (name, "  ")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "serve with {name} blank: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let lines: Vec<&str> = stderr.lines().filter(|line| line.contains(name)).collect();
        assert_eq!(lines, [format!("error: {name} is set but blank: a blank secret protects nothing; give it a value or unset it")], "{stderr}");
    }
    // The same variables with a value are fine.
    let output = switchyard(&["check"], &[("EVOLUTION_URL", "http://127.0.0.1:1"), ("WEBHOOK_SECRET", "s3cret")]);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn instance_names_of_only_dots_or_not_one_path_segment_are_refused_with_400() {
    let app = TestApp::spawn_configured(|config| config.admin_tokens = vec![("ops".to_owned(), "ops-token".to_owned())]).await;
    let long = "x".repeat(101);
    for name in [".", "..", "...", "a/b", "../message", "a\nb", "a b", long.as_str()] {
        let mut body = upsert("INST-1", "5511911110101", "oi", 1_795_000_000);
        body["instance"] = json!(name);
        let (status, reply) = app.webhook(&body).await;
        assert_eq!(status, 400, "webhook from instance {name:?}: {reply}");
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("instance '"), "the 400 says what is wrong: {error}");
        assert!(!error.contains('\n'), "one line: {error:?}");

        let (status, reply) = app.post_admin("/api/handoffs/release", json!({"instance": name, "contact": "5511911110101"}), Some("ops-token")).await;
        assert_eq!(status, 400, "admin release on instance {name:?}: {reply}");
        let (status, reply) = app.post_admin("/api/sessions/5511911110101/end", json!({"instance": name}), Some("ops-token")).await;
        assert_eq!(status, 400, "admin end on instance {name:?}: {reply}");
    }
    let (status, reply) = app.get_admin("/api/explain?flow=billing&contact=5511911110101&instance=..", "ops-token").await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0, "nothing stored");
    // A dotted name that is not only dots is an ordinary instance.
    let mut body = upsert("INST-2", "5511911110101", "oi", 1_795_000_000);
    body["instance"] = json!("loja.bot");
    assert_eq!(app.webhook(&body).await.0, 200);
    let sent = app.evolution.wait_for(1).await;
    assert!(sent.iter().all(|sent| sent.instance == "loja.bot"), "{sent:#?}");
    app.stop().await;
}

#[tokio::test]
async fn a_message_id_over_128_bytes_is_refused_with_400_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    for id in ["A".repeat(129), "x12345678901".repeat(1000)] {
        let (status, reply) = app.webhook(&upsert(&id, "5511911110102", "oi", 1_795_000_000)).await;
        assert_eq!(status, 400, "{reply}");
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.contains("data.key.id") && error.contains("128 bytes"), "{error}");
        assert!(!error.contains("AAAA") && !error.contains("x1234"), "the id itself is not echoed: {error}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0, "nothing stored");
    // 128 bytes is still an id.
    let (status, reply) = app.webhook(&upsert(&"B".repeat(128), "5511911110102", "oi", 1_795_000_000)).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("accepted")), "{reply}");
    app.wait_idle().await;
    assert_eq!(app.count("SELECT MAX(LENGTH(message_id)) FROM inbox").await, 128);
    app.stop().await;
}
