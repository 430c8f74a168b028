//! What a hostile or careless world does to `serve` (issue 13): blank
//! secrets, bodies before authentication, stalled clients, too many
//! connections, odd instance names, over-long message ids, `/metrics`.
//! Everything runs through the real server on loopback; configuration
//! through the real binary.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::fresh_db;

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
