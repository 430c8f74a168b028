//! `switchyard flows snapshot`, run as an auditor runs it: a real process.
//! Expectations come from the compiled registry itself (the same crate the
//! binary links), so the test follows the flows when they change.

use std::process::{Command, Output};

use serde_json::Value;
use switchyard_engine::registry::Registry;

const SPEC: &str = "digital_certificate@v1";

fn switchyard(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args);
    // Snapshots describe one named version; no setting may change them.
    for name in ["FLOW_VERSION_OVERRIDES", "DATABASE_URL", "SESSION_TTL", "HANDOFF_TTL"] {
        command.env_remove(name);
    }
    command.output().expect("run switchyard")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn registry() -> Registry {
    switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("the reference flows are valid")
}

/// The fingerprint `switchyard flows --json` reports for digital_certificate@v1.
fn listed_fingerprint() -> String {
    let output = switchyard(&["flows", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Value = serde_json::from_str(&stdout(&output)).expect("flows --json is JSON");
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["flow"] == "digital_certificate" && row["version"] == "v1")
        .expect("flows --json lists digital_certificate@v1");
    row["fingerprint"].as_str().unwrap().to_owned()
}

#[test]
fn markdown_snapshot_holds_the_full_fingerprint_every_step_and_every_text() {
    let output = switchyard(&["flows", "snapshot", SPEC, "--format", "md"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = stdout(&output);
    assert!(doc.starts_with("# Snapshot: digital_certificate@v1\n"), "{doc}");

    let fingerprint = listed_fingerprint();
    assert_eq!(fingerprint.len(), 64, "flows --json reports a full SHA-256");
    assert!(doc.contains(&fingerprint), "{doc}");

    let registry = registry();
    let version = registry.lookup(SPEC).unwrap();
    assert_eq!(version.steps().len(), 16);
    for step in version.steps() {
        assert!(doc.contains(&format!("`{}`", step.id)), "step {} missing", step.id);
    }
    for (key, text) in version.texts().sorted() {
        assert!(doc.contains(&format!("### {key}\n")), "text {key} missing");
        assert!(doc.contains(text), "text {key} altered");
    }
    for section in ["## Steps", "## Interrupts", "## Texts", "## Files"] {
        assert!(doc.contains(section), "section {section} missing");
    }
}

#[test]
fn json_snapshot_parses_and_matches_the_listing() {
    let output = switchyard(&["flows", "snapshot", SPEC, "--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let value: Value = serde_json::from_str(&stdout(&output)).expect("the snapshot is one JSON document");

    let registry = registry();
    let version = registry.lookup(SPEC).unwrap();
    assert_eq!(value["flow"], "digital_certificate");
    assert_eq!(value["version"], "v1");
    assert_eq!(value["fingerprint"], listed_fingerprint());
    assert_eq!(value["steps"].as_array().unwrap().len(), 16);
    let texts = value["texts"].as_object().unwrap();
    assert_eq!(texts.len(), version.texts().sorted().len());
    for (key, text) in version.texts().sorted() {
        assert_eq!(texts[key], text, "text {key}");
    }
    for key in ["lifecycle", "description", "folder", "entry", "subroutes", "interrupts", "files", "generated_at", "switchyard_version"] {
        assert!(value.get(key).is_some(), "key {key} missing");
    }
    assert_eq!(value["switchyard_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn an_unknown_version_is_one_line_and_exit_1() {
    let output = switchyard(&["flows", "snapshot", "digital_certificate@v99", "--format", "md"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: ") && err.contains("v99"), "{err}");
}

#[test]
fn an_unknown_format_is_one_line_naming_it_and_exit_1() {
    let output = switchyard(&["flows", "snapshot", SPEC, "--format", "pdf"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.trim_end(), "error: --format 'pdf' must be md or json");
}
