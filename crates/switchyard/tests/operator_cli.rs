//! The operator's command line as a real process: the TOML file and the
//! environment, `check`'s effective configuration, bad values named, and
//! `switchyard sessions` over a real SQLite file.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn temp_path(extension: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("ops-{}.{extension}", NEXT.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&path);
    path
}

fn fresh_db() -> String {
    format!("sqlite://{}", temp_path("db").display())
}

/// Every variable the binary reads is cleared, so only `env` counts.
const CLEARED: &[&str] = &[
    "FLOW_VERSION_OVERRIDES", "DATABASE_URL", "SESSION_TTL", "HANDOFF_TTL", "SWITCHYARD_CONFIG", "EVOLUTION_URL", "EVOLUTION_API_KEY",
    "DEBOUNCE", "IGNORE_JIDS", "RETENTION", "LOG_FORMAT", "COMMANDS_MENU", "COMMANDS_EXIT", "COMMANDS_HUMAN", "WEBHOOK_SECRETS",
];

fn switchyard(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in CLEARED {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn switchyard");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().expect("wait")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_config_file_sets_what_the_environment_can_and_the_environment_wins() {
    let file = temp_path("toml");
    std::fs::write(
        &file,
        "session_ttl = '45m'\nhandoff_ttl = '2h'\ndebounce = { vendas = '3s' }\nevolution_url = 'http://127.0.0.1:9'\n\
         evolution_api_key = 'supersecret-key'\nwebhook_secrets = { vendas = 'whsec-vendas' }\ncommands_exit = ['tchau', 'sair']\n\
         ignore_jids = ['5511999990000', '@g.us']\nretention = '90d'\n",
    )
    .unwrap();
    let output = switchyard(&["check"], &[("SWITCHYARD_CONFIG", file.to_str().unwrap()), ("SESSION_TTL", "10m")], "");
    let out = stdout(&output);
    assert!(output.status.success(), "{}{out}", stderr(&output));
    assert!(out.contains("session ttl: 600s, handoff ttl: 7200s"), "env beats file, file beats default: {out}");
    assert!(out.contains("exit [tchau, sair]"), "{out}");
    assert!(out.contains(&format!("configuration file: {}", file.display())), "{out}");
    for (name, value, source) in [
        ("SESSION_TTL", "10m", "env"),
        ("HANDOFF_TTL", "2h", "file"),
        ("DEBOUNCE", "vendas=3s", "file"),
        ("EVOLUTION_API_KEY", "<redacted>", "file"),
        ("WEBHOOK_SECRETS", "vendas=<redacted>", "file"),
        ("RETENTION", "90d", "file"),
        ("BIND_ADDR", "0.0.0.0:8080", "default"),
    ] {
        assert!(out.lines().any(|line| line.contains(name) && line.contains(value) && line.ends_with(&format!("({source})"))), "{name}: {out}");
    }
    for secret in ["supersecret-key", "whsec-vendas"] {
        assert!(!out.contains(secret), "{secret} printed: {out}");
    }
}

#[test]
fn an_unknown_key_in_the_config_file_is_refused_naming_it() {
    let file = temp_path("toml");
    std::fs::write(&file, "session_ttl = '45m'\nsesion_ttl = '1h'\n").unwrap();
    for args in [&["check"][..], &["serve"][..], &["chat"][..]] {
        let output = switchyard(args, &[("SWITCHYARD_CONFIG", file.to_str().unwrap()), ("EVOLUTION_URL", "http://127.0.0.1:9")], "");
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains("unknown key 'sesion_ttl'"), "{args:?}: {}", stderr(&output));
    }
    let missing = switchyard(&["check"], &[("SWITCHYARD_CONFIG", "/nonexistent/switchyard.toml")], "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("'/nonexistent/switchyard.toml' cannot be read"), "{}", stderr(&missing));
}

#[test]
fn bad_operator_settings_are_each_named_in_one_line() {
    let output = switchyard(
        &["check"],
        &[
            ("EVOLUTION_URL", "http://127.0.0.1:9"),
            ("DEBOUNCE", "vendas=3"),
            ("IGNORE_JIDS", "fornecedor"),
            ("RETENTION", "5m"),
            ("LOG_FORMAT", "xml"),
            ("COMMANDS_MENU", "menu,sair"),
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    for named in ["DEBOUNCE: entry 'vendas=3'", "IGNORE_JIDS: entry 'fornecedor'", "RETENTION '5m'", "LOG_FORMAT 'xml'", "command word 'sair'"] {
        assert!(err.contains(named), "{named}: {err}");
    }
    assert!(err.lines().all(|line| line.starts_with("error: ")), "{err}");
}

#[test]
fn configured_command_words_work_in_the_console() {
    let db = fresh_db();
    let output = switchyard(&["chat", "--json"], &[("DATABASE_URL", &db), ("COMMANDS_EXIT", "tchau")], "quero comprar um certificado\ntchau\n");
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<Value> = stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let end = lines.iter().find(|line| line["type"] == "session_end" && line["flow"] == "digital_certificate").expect("the purchase ended");
    assert_eq!((end["outcome"].as_str(), end["step"].as_str()), (Some("cancelled"), Some("purchase.choose_type")));
}

#[test]
fn sessions_lists_shows_and_ends_a_live_session() {
    let db = fresh_db();
    let env = [("DATABASE_URL", db.as_str())];
    let chat = switchyard(&["chat", "--contact", "5511977770001", "--instance", "vendas"], &env, "quero comprar um certificado\n1\n");
    assert!(chat.status.success(), "{}", stderr(&chat));

    let list = switchyard(&["sessions", "list", "--json"], &env, "");
    assert!(list.status.success(), "{}", stderr(&list));
    let live: Vec<Value> = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(live.len(), 1, "{live:#?}");
    assert_eq!(
        (live[0]["contact"].as_str(), live[0]["flow"].as_str(), live[0]["version"].as_str(), live[0]["step"].as_str()),
        (Some("5511977770001"), Some("digital_certificate"), Some("v1"), Some("purchase.choose_media"))
    );
    for filter in [&["--flow", "billing"][..], &["--step", "purchase.collect_email"][..], &["--instance", "suporte"][..], &["--flow", "digital_certificate", "--version", "v2"][..]] {
        let args: Vec<&str> = ["sessions", "list", "--json"].iter().chain(filter).copied().collect();
        let none: Vec<Value> = serde_json::from_str(&stdout(&switchyard(&args, &env, ""))).unwrap();
        assert!(none.is_empty(), "{filter:?}: {none:#?}");
    }
    let table = stdout(&switchyard(&["sessions", "list", "--flow", "digital_certificate", "--version", "v1"], &env, ""));
    assert!(table.contains("digital_certificate@v1") && table.contains("purchase.choose_media"), "{table}");
    let bad = switchyard(&["sessions", "list", "--version", "2"], &env, "");
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("--version"), "{}", stderr(&bad));

    let ended = switchyard(&["sessions", "end", "5511977770001"], &env, "");
    assert!(stdout(&ended).contains("ended 1 live session"), "{}{}", stdout(&ended), stderr(&ended));
    let live: Vec<Value> = serde_json::from_str(&stdout(&switchyard(&["sessions", "list", "--json"], &env, ""))).unwrap();
    assert!(live.is_empty());

    let history: Vec<Value> = serde_json::from_str(&stdout(&switchyard(&["sessions", "show", "+55 11 97777-0001", "--json"], &env, ""))).unwrap();
    let seen: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|session| (session["flow"].as_str().unwrap(), session["version"].as_str().unwrap(), session["outcome"].as_str().unwrap_or("live")))
        .collect();
    assert_eq!(seen, [("digital_certificate", "v1", "cancelled"), ("unknown", "v1", "completed")], "newest first");
    let text = stdout(&switchyard(&["sessions", "show", "5511977770001"], &env, ""));
    assert!(text.contains("cancelled at purchase.choose_media") && text.contains("5511*******01") && !text.contains("5511977770001"), "{text}");
    let bad = switchyard(&["sessions", "show", "not-a-number"], &env, "");
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("CONTACT"), "{}", stderr(&bad));
}
