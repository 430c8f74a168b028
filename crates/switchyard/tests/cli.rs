//! The `switchyard` binary, run as a user runs it: a real process, real
//! environment variables, a real SQLite file per test.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh database URL under the temp directory, unique per test.
fn fresh_db() -> String {
    let dir = std::env::temp_dir().join(format!("switchyard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!("cli-{}.db", NEXT.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&path);
    format!("sqlite://{}", path.display())
}

/// A fresh path for a TOML configuration file.
fn temp_toml() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("cli-{}.toml", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// Every variable the binary reads that a test may set is cleared first, so only `env` counts.
const CLEARED: &[&str] = &[
    "FLOW_VERSION_OVERRIDES", "DATABASE_URL", "SESSION_TTL", "HANDOFF_TTL", "SWITCHYARD_CONFIG", "EVOLUTION_URL", "EVOLUTION_API_KEY",
    "DEBOUNCE", "IGNORE_JIDS", "RETENTION", "LOG_FORMAT", "COMMANDS_MENU", "COMMANDS_EXIT", "COMMANDS_HUMAN", "WEBHOOK_SECRETS",
    "DATABASE_MAX_CONNECTIONS", "DATABASE_ACQUIRE_TIMEOUT", "LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL", "LLM_TIMEOUT",
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

/// Parses `chat --json` output: one JSON object per line.
fn json_lines(output: &Output) -> Vec<Value> {
    stdout(output).lines().map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"))).collect()
}

fn replies(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|line| line["type"] == "reply").collect()
}

fn session_ends(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|line| line["type"] == "session_end").collect()
}

#[test]
fn flows_json_reports_every_reference_version_with_its_shape() {
    let output = switchyard(&["flows", "--json"], &[], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&output)).unwrap();
    let find = |flow: &str, version: &str| {
        rows.iter().find(|row| row["flow"] == flow && row["version"] == version).unwrap_or_else(|| panic!("{flow}@{version} missing"))
    };
    let dc = find("digital_certificate", "v1");
    assert_eq!(dc["steps"], 16);
    assert_eq!(dc["subroutes"], serde_json::json!(["purchase", "renewal", "support", "requirements", "status"]));
    assert_eq!(dc["lifecycle"], "active");
    let billing = find("billing", "v1");
    assert_eq!((billing["steps"].as_u64(), billing["subroutes"].as_array().map(Vec::len)), (Some(2), Some(1)));
    assert_eq!(find("general_support", "v1")["steps"], 3);
    assert_eq!(find("unknown", "v1")["steps"], 2);
    assert_eq!(find("unknown", "v1")["subroutes"], serde_json::json!([]));
    assert_eq!(dc["calls"], serde_json::json!([]));
    // v4's subroutes are flows of their own, listed as the calls it makes.
    let v4 = find("digital_certificate", "v4");
    assert_eq!(v4["calls"], serde_json::json!(["dc_purchase", "dc_renewal", "dc_support", "dc_requirements", "dc_status"]), "{v4}");
    assert_eq!(find("dc_renewal", "v1")["calls"], serde_json::json!(["dc_purchase"]));
    assert_eq!(find("digital_certificate", "v2")["lifecycle"], "inactive");
    assert_eq!(find("billing", "v2")["lifecycle"], "inactive");

    let mut fingerprints: Vec<&str> = rows.iter().map(|row| row["fingerprint"].as_str().unwrap()).collect();
    for fingerprint in &fingerprints {
        assert_eq!(fingerprint.len(), 64, "sha-256 hex: {fingerprint}");
        assert!(fingerprint.chars().all(|ch| ch.is_ascii_hexdigit()));
    }
    fingerprints.sort_unstable();
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), rows.len(), "each version has its own fingerprint");
}

#[test]
fn flows_table_marks_the_overridden_version() {
    let output = switchyard(&["flows"], &[("FLOW_VERSION_OVERRIDES", "digital_certificate=v2")], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let line = text.lines().find(|line| line.starts_with("digital_certificate") && line.contains(" v2 ")).unwrap();
    assert!(line.contains("<- override"), "{text}");
    let line = text.lines().find(|line| line.starts_with("digital_certificate") && line.contains(" v1 ")).unwrap();
    assert!(!line.contains("override"), "{text}");
}

#[test]
fn flows_show_and_graph_describe_one_version_and_refuse_unknown_ones() {
    let output = switchyard(&["flows", "show", "digital_certificate@v1", "--json"], &[], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let shown: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(shown["entry"], "route");
    assert_eq!(shown["steps"].as_array().unwrap().len(), 16);
    let route = shown["steps"].as_array().unwrap().iter().find(|step| step["id"] == "route").unwrap();
    assert!(route["transitions"].as_array().unwrap().contains(&Value::from("purchase.choose_type")));

    let output = switchyard(&["flows", "graph", "digital_certificate@v1"], &[], "");
    assert!(output.status.success());
    let graph = stdout(&output);
    assert!(graph.starts_with("flowchart TD\n"), "{graph}");
    assert!(graph.contains("subgraph purchase"));
    assert!(graph.contains("route --> purchase__choose_type"));

    let output = switchyard(&["flows", "show", "digital_certificate@v9"], &[], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("flow 'digital_certificate' has no version v9 (compiled: v1, v2, v3, v4)"), "{}", stderr(&output));
    let output = switchyard(&["flows", "graph", "digitl_certificate@v1"], &[], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("unknown flow 'digitl_certificate' (did you mean 'digital_certificate'?)"));
}

#[test]
fn check_passes_on_the_shipped_flows_and_a_valid_override() {
    let output = switchyard(&["check"], &[("FLOW_VERSION_OVERRIDES", " digital_certificate = v1 , billing=v2")], "");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("overrides: digital_certificate=v1,billing=v2"));
}

#[test]
fn check_exits_1_naming_each_bad_override_entry() {
    let cases = [
        ("digital_certificate", "entry 'digital_certificate' must look like flow=vN"),
        ("digital_certificat=v1", "unknown flow 'digital_certificat' (did you mean 'digital_certificate'?)"),
        ("digital_certificate=v7", "flow 'digital_certificate' has no version v7"),
        ("billing=v1,billing=v2", "entry 'billing=v2': flow 'billing' is overridden twice"),
        ("billing=latest", "entry 'billing=latest': version 'latest' must look like v<N>"),
    ];
    for (value, expected) in cases {
        let output = switchyard(&["check"], &[("FLOW_VERSION_OVERRIDES", value)], "");
        assert_eq!(output.status.code(), Some(1), "{value}");
        let err = stderr(&output);
        assert!(err.contains(expected), "{value}: {err}");
        assert_eq!(err.lines().count(), 1, "one line per problem: {err}");
        // The commands that run conversations refuse the same value.
        let output = switchyard(&["chat", "--json"], &[("FLOW_VERSION_OVERRIDES", value), ("DATABASE_URL", &fresh_db())], "oi\n");
        assert_eq!(output.status.code(), Some(1), "{value}");
        assert!(stdout(&output).is_empty(), "no conversation with a bad override");
    }
}

#[test]
fn check_names_bad_durations_and_database_urls() {
    let output = switchyard(&["check"], &[("SESSION_TTL", "30"), ("DATABASE_URL", "mysql://x")], "");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("SESSION_TTL: duration '30' must be a number with a unit"), "{err}");
    assert!(err.contains("DATABASE_URL scheme 'mysql' is not supported"), "{err}");

    let output = switchyard(&["check"], &[("DATABASE_MAX_CONNECTIONS", "0"), ("DATABASE_ACQUIRE_TIMEOUT", "soon")], "");
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("DATABASE_MAX_CONNECTIONS '0' must be a whole number from 1 to 1000"), "{err}");
    assert!(err.contains("DATABASE_ACQUIRE_TIMEOUT"), "{err}");
}

#[test]
fn a_postgres_url_is_used_and_its_password_never_printed() {
    let output = switchyard(&["check"], &[("DATABASE_URL", "postgres://app:s3cret@127.0.0.1:1/none")], "");
    let out = format!("{}{}", stdout(&output), stderr(&output));
    assert!(out.contains("postgres://app:***@127.0.0.1:1/none"), "{out}");
    assert!(!out.contains("s3cret"), "{out}");
    // Opening a store that does not answer fails naming it, password hidden.
    let output = switchyard(&["handoff", "release", "5511911110001", "--instance", "loja-bot"], &[("DATABASE_URL", "postgres://app:s3cret@127.0.0.1:1/none"), ("DATABASE_ACQUIRE_TIMEOUT", "1s")], "");
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("postgres://app:***@127.0.0.1:1/none") && !err.contains("s3cret"), "{err}");
}

#[test]
fn explain_says_which_version_and_why() {
    let db = fresh_db();
    let env = [("DATABASE_URL", db.as_str())];
    assert!(switchyard(&["chat"], &env, "").status.success(), "chat creates the store");
    let output = switchyard(&["explain", "--flow", "digital_certificate", "--contact", "5511988887777", "--json"], &env, "");
    assert!(output.status.success(), "{}", stderr(&output));
    let value: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!((value["flow"].as_str(), value["version"].as_str(), value["reason"].as_str()), (Some("digital_certificate"), Some("v1"), Some("active")));

    let env = [("DATABASE_URL", db.as_str()), ("FLOW_VERSION_OVERRIDES", "digital_certificate=v2")];
    let output = switchyard(&["explain", "--flow", "digital_certificate", "--contact", "5511988887777", "--json"], &env, "");
    let value: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!((value["version"].as_str(), value["reason"].as_str()), (Some("v2"), Some("override")));

    let env = [("DATABASE_URL", db.as_str())];
    let output = switchyard(&["explain", "--flow", "biling", "--contact", "5511988887777"], &env, "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--flow 'biling' is not a compiled flow (did you mean 'billing'?)"));
    let output = switchyard(&["explain", "--flow", "billing", "--contact", "not-a-phone"], &env, "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--contact: contact"), "{}", stderr(&output));
}

#[test]
fn commands_that_read_the_store_never_create_one_and_name_the_missing_file() {
    let dir = std::env::temp_dir().join(format!("switchyard-cli-{}", std::process::id())).join(format!("empty-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    let explicit = dir.join("elsewhere.db");
    let explicit_url = format!("sqlite://{}", explicit.display());
    let commands: &[&[&str]] = &[
        &["explain", "--flow", "billing", "--contact", "5511988887777"],
        &["report", "billing"],
        &["audit"],
        &["audit", "ran", "--flow", "billing", "--from", "2020-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z"],
        &["rollout", "show"],
        &["rollout", "status", "billing"],
        &["sessions", "list"],
        &["sessions", "show", "5511988887777"],
        &["sessions", "export", "--flow", "billing", "--masked"],
        &["sessions", "end", "5511988887777"],
        &["sessions", "forget", "5511988887777", "--reason", "ticket 1"],
        &["handoff", "release", "5511988887777"],
    ];
    for args in commands {
        // Without DATABASE_URL: the default file in the working directory.
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command.args(*args).current_dir(&dir).stdin(Stdio::null());
        for name in CLEARED {
            command.env_remove(name);
        }
        let output = command.output().expect("run switchyard");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains("no database at switchyard.db (DATABASE_URL is not set"), "{args:?}: {err}");
        assert!(!dir.join("switchyard.db").exists(), "{args:?} created switchyard.db");

        let output = switchyard(args, &[("DATABASE_URL", &explicit_url)], "");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&format!("no database at {} (DATABASE_URL {explicit_url})", explicit.display())), "{args:?}: {err}");
        assert!(!explicit.exists(), "{args:?} created {}", explicit.display());
    }
    // A command that writes still creates the store, and the readers then read it.
    let env = [("DATABASE_URL", explicit_url.as_str())];
    assert!(switchyard(&["chat"], &env, "").status.success());
    assert!(explicit.exists());
    let output = switchyard(&["rollout", "status", "billing"], &env, "");
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn a_chat_session_keeps_its_version_after_the_override_changes() {
    let db = fresh_db();
    let contact = ["--contact", "5511977776666"];
    // Start a digital_certificate session on the active version (v1).
    let output = switchyard(&["chat", "--json", contact[0], contact[1]], &[("DATABASE_URL", &db)], "quero renovar meu certificado\n");
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let last = replies(&lines).last().copied().expect("a reply").clone();
    assert_eq!((last["flow"].as_str(), last["version"].as_str()), (Some("digital_certificate"), Some("v1")));

    // Redeploy with the override pointing at v2: the same contact stays on v1.
    let env = [("DATABASE_URL", db.as_str()), ("FLOW_VERSION_OVERRIDES", "digital_certificate=v2")];
    let output = switchyard(&["chat", "--json", contact[0], contact[1]], &env, "/state\n");
    let state: Value = serde_json::from_str(stdout(&output).lines().next().unwrap()).unwrap();
    assert_eq!((state["flow"].as_str(), state["version"].as_str()), (Some("digital_certificate"), Some("v1")));

    // A new contact follows the override, with the reason recorded.
    let output = switchyard(&["chat", "--json", "--contact", "5511955554444"], &env, "quero renovar meu certificado\n/state\n");
    let lines = json_lines(&output);
    let state = lines.iter().find(|line| line["type"] == "state").unwrap();
    assert_eq!((state["version"].as_str(), state["reason"].as_str()), (Some("v2"), Some("override")));
}

#[test]
fn chat_wait_expires_the_session_at_its_step_and_the_next_message_starts_afresh() {
    let db = fresh_db();
    let output = switchyard(&["chat", "--json"], &[("DATABASE_URL", &db)], "oi\n/wait 29m\n/state\n/wait 2m\noi\n");
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let state = lines.iter().find(|line| line["type"] == "state").unwrap();
    assert_eq!(state["flow"], "unknown", "still live after 29 minutes");
    let ends = session_ends(&lines);
    assert_eq!(ends.len(), 1, "{lines:?}");
    assert_eq!((ends[0]["outcome"].as_str(), ends[0]["step"].as_str()), (Some("expired"), Some("choose")));
    // The greeting comes again after the expiry: a new session.
    let end_idx = lines.iter().position(|line| line["type"] == "session_end").unwrap();
    assert!(lines[end_idx + 1..].iter().any(|line| line["type"] == "reply" && line["step"] == "choose"));
}

#[test]
fn chat_reset_ends_the_session_as_cancelled_and_exits_0_at_end_of_input() {
    let db = fresh_db();
    let output = switchyard(&["chat", "--json"], &[("DATABASE_URL", &db)], "oi\n/reset\n/bogus\n");
    assert_eq!(output.status.code(), Some(0));
    let lines = json_lines(&output);
    let ends = session_ends(&lines);
    assert_eq!(ends[0]["outcome"], "cancelled");
    assert!(stderr(&output).contains("unknown console command '/bogus'"));
}

#[test]
fn a_piped_chat_buys_a_certificate_on_v1_and_in_fewer_turns_on_v2() {
    let v1_script = "oi\n1\n1\n1\n1\n123.456.789-09\ncliente@exemplo.com.br\n1\nsim\n";
    let output = switchyard(&["chat", "--json", "--contact", "5511944440001"], &[("DATABASE_URL", &fresh_db())], v1_script);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let end = session_ends(&lines).into_iter().find(|end| end["flow"] == "digital_certificate").expect("a purchase session ended").clone();
    assert_eq!((end["version"].as_str(), end["outcome"].as_str(), end["step"].as_str()), (Some("v1"), Some("completed"), Some("purchase.confirm_order")));
    assert!(replies(&lines).iter().any(|reply| reply["text"].as_str().unwrap().contains("Pedido *CF-")), "an order was created");

    let v2_script = "oi\n1\n1\n1\nmeu cpf é 123.456.789-09 e o email cliente@exemplo.com.br\nsim\n";
    let env = [("DATABASE_URL", fresh_db()), ("FLOW_VERSION_OVERRIDES", "digital_certificate=v2".to_owned())];
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let output = switchyard(&["chat", "--json", "--contact", "5511944440002"], &env, v2_script);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let end = session_ends(&lines).into_iter().find(|end| end["flow"] == "digital_certificate").expect("a purchase session ended").clone();
    assert_eq!((end["version"].as_str(), end["outcome"].as_str()), (Some("v2"), Some("completed")));
    assert!(v2_script.lines().count() < v1_script.lines().count(), "fewer customer turns on v2");
}

#[test]
fn flows_diff_lists_what_changed_between_two_versions() {
    let output = switchyard(&["flows", "diff", "digital_certificate@v1", "digital_certificate@v2", "--json"], &[], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let diff: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let list = |key: &str| diff[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert!(list("steps_added").contains(&"purchase.choose_product".to_owned()));
    assert!(list("steps_removed").contains(&"purchase.choose_media".to_owned()));
    assert!(!list("steps_added").contains(&"renewal.collect_document".to_owned()), "unchanged steps are not listed");
    let route = diff["transitions_changed"].as_array().unwrap().iter().find(|change| change["step"] == "route").expect("route changed");
    assert!(route["after"].as_array().unwrap().contains(&Value::from("purchase.choose_product")));
    assert_ne!(diff["fingerprints"]["from"], diff["fingerprints"]["to"]);

    let same = switchyard(&["flows", "diff", "billing@v1", "billing@v1", "--json"], &[], "");
    let same: Value = serde_json::from_str(&stdout(&same)).unwrap();
    assert!(same["steps_added"].as_array().unwrap().is_empty() && same["texts_reworded"].as_array().unwrap().is_empty());

    let bad = switchyard(&["flows", "diff", "billing@v1", "billing@v7"], &[], "");
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("has no version v7"));
}

#[test]
fn check_names_bad_llm_settings_one_line_each() {
    let output = switchyard(&["check"], &[("LLM_BASE_URL", "localhost:11434"), ("LLM_TIMEOUT", "soon"), ("LLM_MODEL", "llama3.2")], "");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let errors = stderr(&output);
    assert!(errors.lines().any(|line| line.contains("LLM_BASE_URL 'localhost:11434'")), "{errors}");
    assert!(errors.lines().any(|line| line.contains("LLM_TIMEOUT") && line.contains("'soon'")), "{errors}");
    let output = switchyard(&["check"], &[("LLM_BASE_URL", "http://127.0.0.1:11434/v1")], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("LLM_MODEL is required"), "{}", stderr(&output));
}

#[test]
fn eval_classifier_scores_the_keyword_classifier_on_the_labelled_set() {
    let output = switchyard(&["eval-classifier", "unknown@v1", "--json"], &[], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let results: Value = serde_json::from_str(&stdout(&output)).expect("json");
    let intent = &results[0];
    assert_eq!(intent["task"], "intent");
    assert!(intent["messages"].as_u64().unwrap() >= 150, "{intent}");
    assert!(intent["model"].is_null(), "no LLM_BASE_URL: keywords only");
    let keyword = &intent["classifiers"][0];
    assert_eq!(keyword["classifier"], "keyword");
    // The bar for the keyword classifier (BENCHMARKS.md has the figures).
    assert!(keyword["accuracy"].as_f64().unwrap() >= 0.85, "{keyword}");
    let per_class: Vec<&str> = keyword["per_class"].as_array().unwrap().iter().map(|class| class["class"].as_str().unwrap()).collect();
    assert_eq!(per_class, ["billing", "digital_certificate", "general_support", "human", "none"]);
    let misses = keyword["misses"].as_array().unwrap().len() as u64;
    assert_eq!(keyword["total"].as_u64().unwrap() - keyword["correct"].as_u64().unwrap(), misses);

    let output = switchyard(&["eval-classifier", "digital_certificate@v2"], &[], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("task 'route'") && text.contains("renewal") && text.contains("confusions"), "{text}");
}

/// unknown@v2's entry routing, offline, on the two held-out sets: the
/// issue's bar is 90% for the weighed decision (BENCHMARKS.md has the figures).
#[test]
fn eval_classifier_scores_the_trained_classifier_and_the_weighed_decision_on_held_out_sets() {
    let output = switchyard(&["eval-classifier", "unknown@v2", "--json"], &[], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let results: Value = serde_json::from_str(&stdout(&output)).expect("json");
    let sets: Vec<&str> = results.as_array().unwrap().iter().map(|result| result["set"].as_str().unwrap()).collect();
    assert_eq!(sets, ["eval/classifier.tsv", "eval/first_messages.tsv"]);
    for result in results.as_array().unwrap() {
        assert_eq!(result["trained_on"], "examples/intent.tsv");
        let names: Vec<&str> = result["classifiers"].as_array().unwrap().iter().map(|c| c["classifier"].as_str().unwrap()).collect();
        assert_eq!(names, ["keyword", "trained", "weighed"]);
        let (keyword, weighed) = (&result["classifiers"][0], &result["classifiers"][2]);
        assert!(weighed["accuracy"].as_f64().unwrap() >= 0.90, "{}: {weighed}", result["set"]);
        assert!(weighed["correct"].as_u64() > keyword["correct"].as_u64(), "{}: weighing beats keywords alone", result["set"]);
    }
    assert!(results[1]["messages"].as_u64().unwrap() >= 70);
}

#[test]
fn eval_classifier_refuses_unknown_versions_and_versions_without_a_classifier() {
    let output = switchyard(&["eval-classifier", "digital_certificate@v9"], &[], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("v9"), "{}", stderr(&output));
    let output = switchyard(&["eval-classifier", "billing@v1"], &[], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("billing@v1: has no classification task"), "{}", stderr(&output));
}

/// The console with a model: a message the keywords miss is routed by the
/// stand-in OpenAI-compatible server (real loopback socket), and the
/// `chat --json` replies show where it went.
#[tokio::test]
async fn chat_with_a_model_routes_what_the_keywords_miss() {
    use axum::routing::post;
    use axum::Json;
    async fn completions(Json(body): Json<Value>) -> Json<Value> {
        let classes = body["response_format"]["json_schema"]["schema"]["properties"]["class"]["enum"].to_string();
        let class = if classes.contains("digital_certificate") { "digital_certificate" } else { "status" };
        Json(serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("{{\"class\":\"{class}\"}}")}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 200, "completion_tokens": 6, "total_tokens": 206},
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().route("/v1/chat/completions", post(completions))).await.unwrap() });
    let db = fresh_db();
    let url = format!("http://{addr}/v1");
    let output = tokio::task::spawn_blocking(move || {
        switchyard(
            &["chat", "--json"],
            &[("DATABASE_URL", &db), ("LLM_BASE_URL", &url), ("LLM_MODEL", "stand-in"), ("LLM_TIMEOUT", "2s")],
            "comprei semana passada e ate agora nada, cade?\n",
        )
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let last = replies(&lines).last().cloned().cloned().expect("a reply");
    assert_eq!((last["flow"].as_str(), last["step"].as_str()), (Some("digital_certificate"), Some("status.collect_order")), "{lines:?}");
}

/// With a model configured, eval-classifier scores it alone and as
/// production runs it (keywords first). The stand-in always answers
/// `purchase`, so the expected figures follow from the labels.
#[tokio::test]
async fn eval_classifier_scores_the_model_and_keywords_plus_model_when_configured() {
    use axum::routing::post;
    use axum::Json;
    async fn completions(Json(body): Json<Value>) -> Json<Value> {
        Json(serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"class\":\"purchase\"}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 180, "completion_tokens": 5, "total_tokens": 185},
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().route("/v1/chat/completions", post(completions))).await.unwrap() });
    let url = format!("http://{addr}/v1");
    let output = tokio::task::spawn_blocking(move || {
        switchyard(&["eval-classifier", "digital_certificate@v1", "--json"], &[("LLM_BASE_URL", &url), ("LLM_MODEL", "stand-in")], "")
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let results: Value = serde_json::from_str(&stdout(&output)).expect("json");
    let classifiers = results[0]["classifiers"].as_array().unwrap();
    let names: Vec<&str> = classifiers.iter().map(|c| c["classifier"].as_str().unwrap()).collect();
    assert_eq!(names, ["keyword", "model", "keyword+model"]);
    let (keyword, model, both) = (&classifiers[0], &classifiers[1], &classifiers[2]);
    let purchase_total = keyword["per_class"].as_array().unwrap().iter().find(|c| c["class"] == "purchase").unwrap()["total"].clone();
    assert_eq!(model["correct"], purchase_total, "the model is right exactly on the purchase messages");
    let purchase_misses = keyword["misses"].as_array().unwrap().iter().filter(|miss| miss["expected"] == "purchase").count() as u64;
    assert_eq!(both["correct"].as_u64().unwrap(), keyword["correct"].as_u64().unwrap() + purchase_misses);
}

// Operator settings and `switchyard sessions` (issue #9).

#[test]
fn the_config_file_sets_what_the_environment_can_and_the_environment_wins() {
    let file = temp_toml();
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
        ("IGNORE_JIDS", "***********00,@g.us", "file"),
        ("BIND_ADDR", "0.0.0.0:8080", "default"),
    ] {
        assert!(out.lines().any(|line| line.contains(name) && line.contains(value) && line.ends_with(&format!("({source})"))), "{name}: {out}");
    }
    for secret in ["supersecret-key", "whsec-vendas", "5511999990000"] {
        assert!(!out.contains(secret), "{secret} printed: {out}");
    }
}

#[test]
fn an_unknown_key_in_the_config_file_is_refused_naming_it() {
    let file = temp_toml();
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

    let ended = switchyard(&["sessions", "end", "5511977770001", "--reason", "ticket 9"], &env, "");
    assert!(stdout(&ended).contains("ended 1 live session"), "{}{}", stdout(&ended), stderr(&ended));
    let audit: Vec<Value> = serde_json::from_str(&stdout(&switchyard(&["audit", "--json"], &env, ""))).unwrap();
    let ending = audit.iter().find(|record| record["action"] == "end_session").expect("the end is audited");
    assert!(ending["actor"].as_str().unwrap().starts_with("cli:") && ending["reason"] == "ticket 9", "{ending}");
    let live: Vec<Value> = serde_json::from_str(&stdout(&switchyard(&["sessions", "list", "--json"], &env, ""))).unwrap();
    assert!(live.is_empty());

    let history: Vec<Value> = serde_json::from_str(&stdout(&switchyard(&["sessions", "show", "+55 11 97777-0001", "--json"], &env, ""))).unwrap();
    let seen: Vec<(&str, &str, &str)> = history
        .iter()
        .map(|session| (session["flow"].as_str().unwrap(), session["version"].as_str().unwrap(), session["outcome"].as_str().unwrap_or("live")))
        .collect();
    assert_eq!(seen, [("digital_certificate", "v1", "cancelled"), ("unknown", "v1", "completed")], "newest first");
    assert_eq!(
        history[0]["path"],
        serde_json::json!(["route", "purchase.choose_type", "purchase.choose_media", "[cancelled: operator]"]),
        "the steps the customer went through and how it ended"
    );
    let text = stdout(&switchyard(&["sessions", "show", "5511977770001"], &env, ""));
    assert!(text.contains("route → purchase.choose_type → purchase.choose_media → [cancelled: operator]"), "{text}");
    assert!(text.contains("cancelled at purchase.choose_media") && text.contains("5511*******01") && !text.contains("5511977770001"), "{text}");
    let bad = switchyard(&["sessions", "show", "not-a-number"], &env, "");
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("CONTACT"), "{}", stderr(&bad));
}

#[test]
fn a_send_timeout_longer_than_half_a_claim_is_refused() {
    let output = switchyard(&["check"], &[("EVOLUTION_URL", "http://127.0.0.1:8080"), ("SEND_TIMEOUT", "60s")], "");
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stderr(&output).contains("SEND_TIMEOUT '60s' must be at most 15s"), "{}", stderr(&output));
    let output = switchyard(&["check"], &[("EVOLUTION_URL", "http://127.0.0.1:8080"), ("SEND_TIMEOUT", "15s")], "");
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn check_names_an_extreme_send_throttle_instead_of_panicking() {
    // `1e-300/s` made `Duration::from_secs_f64` panic: the interval is past what a Duration holds.
    for value in ["1e-300/s", "1e300/s", "5e-324/s"] {
        let output = switchyard(&["check"], &[("EVOLUTION_URL", "http://127.0.0.1:9"), ("SEND_THROTTLE", value)], "");
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{value}: {err}");
        assert!(!err.contains("panicked"), "{value}: {err}");
        assert!(err.lines().any(|line| line.contains(&format!("SEND_THROTTLE '{value}'"))), "{value}: {err}");
    }
    let output = switchyard(&["check"], &[("EVOLUTION_URL", "http://127.0.0.1:9"), ("SEND_THROTTLE", "0.5/s")], "");
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn check_redacts_padded_secrets_url_credentials_and_ignored_prefixes() {
    let output = switchyard(
        &["check"],
        &[
            ("EVOLUTION_URL", "https://evo:evopass@127.0.0.1:9"),
            ("EVOLUTION_API_KEY", "c2VjcmV0a2V5="),
            ("WEBHOOK_SECRET", "d2hzZWNyZXQ="),
            ("ADMIN_TOKEN", "YWRtaW4tdG9rZW4="),
            ("WEBHOOK_SECRETS", "vendas=dmVuZGFz"),
            ("LLM_BASE_URL", "https://llmuser:llmpass@127.0.0.1:11434/v1"),
            ("LLM_API_KEY", "sk-bGxta2V5=="),
            ("LLM_MODEL", "llama3.2"),
            ("IGNORE_JIDS", "5511988887777*,@g.us"),
        ],
        "",
    );
    let out = format!("{}{}", stdout(&output), stderr(&output));
    assert!(output.status.success(), "{out}");
    for (name, value) in [
        ("EVOLUTION_URL", "https://evo:***@127.0.0.1:9"),
        ("EVOLUTION_API_KEY", "<redacted>"),
        ("WEBHOOK_SECRET", "<redacted>"),
        ("ADMIN_TOKEN", "<redacted>"),
        ("WEBHOOK_SECRETS", "vendas=<redacted>"),
        ("LLM_BASE_URL", "https://llmuser:***@127.0.0.1:11434/v1"),
        ("LLM_API_KEY", "<redacted>"),
        ("IGNORE_JIDS", "***********77*,@g.us"),
    ] {
        assert!(out.lines().any(|line| line.contains(name) && line.contains(value)), "{name}: {out}");
    }
    for secret in ["evopass", "c2VjcmV0a2V5", "d2hzZWNyZXQ", "YWRtaW4tdG9rZW4", "dmVuZGFz", "llmpass", "bGxta2V5", "5511988887777", "119888877"] {
        assert!(!out.contains(secret), "{secret} printed: {out}");
    }
}
