//! Experiments end to end: simulated customers on a split, the report, the
//! guard, and `/metrics` agreeing with the report.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::{StandIn, TestApp};

fn switchyard(args: &[&str], db: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in ["FLOW_VERSION_OVERRIDES", "SESSION_TTL", "HANDOFF_TTL"] {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", db);
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"").unwrap();
    child.wait_with_output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn report(db: &str) -> Value {
    serde_json::from_str(&ok(&switchyard(&["report", "digital_certificate", "--json"], db))).unwrap()
}

fn version<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["versions"].as_array().unwrap().iter().find(|v| v["version"] == name).unwrap_or_else(|| panic!("{name} in {report}"))
}

#[test]
fn the_guard_rolls_back_a_candidate_that_hands_off_more_and_never_flaps() {
    let db = support::fresh_db();
    ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=50,v2=50", "--guard", "handoff", "--guard-min-sessions", "100", "--reason", "guarded test"], &db));
    ok(&switchyard(&["simulate", "--contacts", "500", "--behave", "v1:human=0.05", "--behave", "v2:human=0.4", "--json"], &db));
    let before = report(&db);
    assert!(before["comparison"]["verdict"].as_str().unwrap().contains("hands off more often"), "{}", before["comparison"]);
    assert_eq!(before["sample_ratio"]["mismatch"], false);

    let checked = ok(&switchyard(&["rollout", "check-guards"], &db));
    assert!(checked.contains("guard ROLLED BACK v2"), "{checked}");
    let again = ok(&switchyard(&["rollout", "check-guards"], &db));
    assert!(!again.contains("ROLLED BACK"), "a tripped guard stays tripped and does not act again: {again}");
    // The split's weights now (v2 at 0%) did not assign these sessions: no
    // sample-ratio alarm after a rollback.
    assert!(report(&db)["sample_ratio"].is_null(), "{}", report(&db)["sample_ratio"]);

    let audit: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["audit", "--flow", "digital_certificate", "--json"], &db))).unwrap();
    let rollback = audit.iter().find(|record| record["action"] == "guard_rollback").expect("audited");
    assert_eq!(rollback["actor"], "guard");
    let reason = rollback["reason"].as_str().unwrap();
    assert!(reason.contains("handoff rate of v2") && reason.contains("finished") && reason.contains("tolerated"), "{reason}");
    assert_eq!(rollback["after"]["split"]["weights"], serde_json::json!([["v1", "100"], ["v2", "0"]]));
    assert!(rollback["after"]["split"]["guard"]["tripped"]["reason"].is_string());
    assert_eq!(audit.iter().filter(|record| record["action"] == "guard_rollback").count(), 1);

    // New customers now get the baseline.
    for contact in ["5511911110001", "5511911110002", "5511911110003"] {
        let explained: Value = serde_json::from_str(&ok(&switchyard(&["explain", "--flow", "digital_certificate", "--contact", contact, "--json"], &db))).unwrap();
        assert_eq!(explained["version"], "v1");
    }
}

/// A guard judges its own experiment: sessions an earlier split assigned to
/// the same versions (here a bad v2 before the guard existed) do not count,
/// and a ramp of the same versions keeps what the guard has seen.
#[test]
fn a_guard_ignores_an_earlier_experiments_sessions_and_a_ramp_keeps_its_mark() {
    let db = support::fresh_db();
    ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=50,v2=50", "--reason", "unguarded first run"], &db));
    ok(&switchyard(&["simulate", "--contacts", "400", "--behave", "v1:human=0.05", "--behave", "v2:human=0.5", "--json"], &db));
    ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=50,v2=50", "--guard", "handoff", "--guard-min-sessions", "100", "--reason", "v2 fixed, guarded"], &db));
    let checked = ok(&switchyard(&["rollout", "check-guards"], &db));
    assert!(!checked.contains("ROLLED BACK"), "the first run's sessions are not this guard's: {checked}");
    assert!(checked.contains("guard holds"), "{checked}");

    // The re-run behaves alike on both versions: still no rollback.
    ok(&switchyard(&["simulate", "--contacts", "400", "--first-contact", "5511930000000", "--behave", "v1:human=0.1", "--behave", "v2:human=0.1", "--json"], &db));
    let checked = ok(&switchyard(&["rollout", "check-guards"], &db));
    assert!(checked.contains("guard holds"), "{checked}");
    let policy = |db: &str| -> Value {
        let audit: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["audit", "--flow", "digital_certificate", "--json"], db))).unwrap();
        audit.iter().rev().find(|record| record["action"] == "split").expect("a split record")["after"]["split"]["guard"].clone()
    };
    let mark = policy(&db)["armed_after_event"].as_i64().expect("the guard carries its mark");
    assert!(mark > 0, "armed after the first run's events: {mark}");

    // A ramp of the same versions is the same experiment: the mark stays.
    ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=20,v2=80", "--guard", "handoff", "--guard-min-sessions", "100", "--reason", "ramp"], &db));
    assert_eq!(policy(&db)["armed_after_event"].as_i64(), Some(mark));
}

/// A ramp changes the odds: the sample-ratio check compares only the draws
/// made at the new weights. Counting the 90/10 sessions against 50/50 would
/// cry MISMATCH on every ramp.
#[test]
fn after_a_ramp_the_sample_ratio_check_counts_only_draws_at_the_new_weights() {
    let db = support::fresh_db();
    ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=90,v2=10", "--reason", "canary"], &db));
    ok(&switchyard(&["simulate", "--contacts", "400", "--json"], &db));
    let canary = report(&db)["sample_ratio"].clone();
    assert_eq!(canary["mismatch"], false, "{canary}");
    let counted = |srm: &Value| srm["observed"].as_array().unwrap().iter().map(|row| row["sessions"].as_u64().unwrap()).sum::<u64>();
    assert_eq!(counted(&canary), 400, "{canary}");

    ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=50,v2=50", "--reason", "ramp"], &db));
    ok(&switchyard(&["simulate", "--contacts", "400", "--first-contact", "5511940000000", "--json"], &db));
    let ramped = report(&db);
    let srm = &ramped["sample_ratio"];
    assert_eq!(counted(srm), 400, "only the draws since the ramp: {srm}");
    assert_eq!(srm["mismatch"], false, "{srm}");
    // The report itself still covers all 800 split sessions.
    let started: u64 = ramped["versions"].as_array().unwrap().iter().map(|v| v["started"].as_u64().unwrap()).sum();
    assert_eq!(started, 800, "{}", ramped["versions"]);
}

#[test]
fn when_both_versions_behave_alike_the_guard_holds_and_the_report_finds_no_difference() {
    let db = support::fresh_db();
    ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=50,v2=50", "--guard", "handoff", "--guard-min-sessions", "100", "--reason", "guarded test"], &db));
    ok(&switchyard(&["simulate", "--contacts", "400", "--behave", "v1:human=0.1", "--behave", "v2:human=0.1", "--json"], &db));
    let checked = ok(&switchyard(&["rollout", "check-guards"], &db));
    assert!(checked.contains("guard holds"), "{checked}");
    let report = report(&db);
    let verdict = report["comparison"]["verdict"].as_str().unwrap();
    assert!(verdict.contains("no significant difference"), "{verdict}");
    assert!(version(&report, "v1")["handoff"].as_u64().unwrap() > 0);
}

#[test]
fn a_drop_off_injected_at_collect_document_shows_at_that_step_in_the_funnel() {
    let db = support::fresh_db();
    ok(&switchyard(&["simulate", "--contacts", "60", "--behave", "v1:silent=0.5@purchase.collect_document", "--json"], &db));
    let report = report(&db);
    let v1 = version(&report, "v1");
    let funnel = v1["funnel"].as_array().unwrap();
    let step = |name: &str| funnel.iter().find(|step| step["step"] == name).unwrap_or_else(|| panic!("{name} in {funnel:?}"));
    let expired_at_document = step("purchase.collect_document")["expired_here"].as_u64().unwrap();
    assert!(expired_at_document > 10, "{expired_at_document}");
    assert_eq!(expired_at_document, v1["expired"].as_u64().unwrap(), "every drop-off is at that step");
    assert!(step("purchase.collect_email")["reached"].as_u64().unwrap() < step("purchase.collect_document")["reached"].as_u64().unwrap());
    let order: Vec<&str> = funnel.iter().map(|step| step["step"].as_str().unwrap()).collect();
    let position = |name: &str| order.iter().position(|step| *step == name).unwrap();
    assert!(position("purchase.choose_type") < position("purchase.collect_document"), "steps in declaration order: {order:?}");
}

/// Parses the Prometheus text format strictly enough to catch malformed lines.
fn parse_metrics(text: &str) -> Vec<(String, Vec<(String, String)>, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = rest
                    .split(',')
                    .map(|pair| {
                        let (key, quoted) = pair.split_once('=').unwrap_or_else(|| panic!("bad label: {line}"));
                        (key.to_owned(), quoted.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), Vec::new()),
        };
        assert!(name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'), "bad metric name: {line}");
        samples.push((name, labels, value));
    }
    samples
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_match_the_report() {
    let db = support::fresh_db();
    ok(&switchyard(&["simulate", "--contacts", "80", "--behave", "v1:human=0.2,silent=0.2", "--json"], &db));
    let report = report(&db);
    let evolution = StandIn::start().await;
    let app = TestApp::spawn_with(&db, &evolution, |_| {}).await;
    app.webhook(&support::upsert("M-1", "5511911119999", "oi", 1_795_000_000)).await;
    app.wait_idle().await;
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    let samples = parse_metrics(&text);
    let sessions = |outcome: &str| {
        samples
            .iter()
            .find(|(name, labels, _)| {
                name == "switchyard_sessions"
                    && labels.contains(&("flow".to_owned(), "digital_certificate".to_owned()))
                    && labels.contains(&("version".to_owned(), "v1".to_owned()))
                    && labels.contains(&("outcome".to_owned(), outcome.to_owned()))
            })
            .map(|(_, _, value)| *value as u64)
            .unwrap_or(0)
    };
    let v1 = version(&report, "v1");
    for outcome in ["completed", "handoff", "expired"] {
        assert_eq!(sessions(outcome), v1[outcome].as_u64().unwrap(), "{outcome}");
    }
    let value = |name: &str| samples.iter().find(|(n, labels, _)| n == name && labels.is_empty()).map(|(_, _, v)| *v).unwrap();
    assert_eq!(value("switchyard_messages_in_total"), 1.0);
    assert!(value("switchyard_messages_out_total") >= 1.0);
    assert_eq!(value("switchyard_outbox_depth"), 0.0);
    assert!(samples.iter().any(|(n, labels, v)| n == "switchyard_webhook_requests_total" && labels == &vec![("status".to_owned(), "200".to_owned())] && *v == 1.0));
    assert!(samples.iter().any(|(n, _, v)| n == "switchyard_processing_seconds_count" && *v >= 1.0));
    assert!(samples.iter().any(|(n, labels, _)| n == "switchyard_send_seconds_bucket" && labels == &vec![("le".to_owned(), "+Inf".to_owned())]));
    app.stop().await;
}

#[tokio::test]
async fn when_two_servers_evaluate_the_same_guard_only_one_acts() {
    let schema = switchyard_store::testing::fresh_postgres_url().await;
    let mut databases = vec![support::fresh_db()];
    databases.extend(schema.as_deref().map(str::to_owned));
    for db in databases {
        ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=50,v2=50", "--guard", "handoff", "--reason", "guarded"], &db));
        ok(&switchyard(&["simulate", "--contacts", "400", "--behave", "v2:human=0.5", "--json"], &db));
        let settings = switchyard_store::PgSettings::default();
        let first = switchyard_store::open(&db, &settings).await.unwrap();
        let second = switchyard_store::open(&db, &settings).await.unwrap();
        let (a, b) = tokio::join!(switchyard::report::evaluate_guards(&first), switchyard::report::evaluate_guards(&second));
        let acted = [a.unwrap(), b.unwrap()]
            .iter()
            .flatten()
            .filter(|outcome| matches!(outcome, switchyard::report::GuardOutcome::RolledBack { .. }))
            .count();
        assert_eq!(acted, 1, "on {}", first.backend());
    }
}

/// The report's slot table: where v3's form got its values and where
/// customers got stuck (those asking for a person miss at the product question).
#[test]
fn the_report_shows_where_form_slots_came_from_and_where_customers_got_stuck() {
    let db = support::fresh_db();
    ok(&switchyard(&["rollout", "split", "digital_certificate", "v2=50,v3=50", "--reason", "form test"], &db));
    ok(&switchyard(&["simulate", "--contacts", "60", "--behave", "v3:human=0.5@purchase.order", "--json"], &db));
    let report = report(&db);
    let v3 = version(&report, "v3");
    let slots = &v3["slots"];
    let completed = v3["completed"].as_u64().unwrap();
    assert!(completed > 0, "{v3}");
    for (slot, source) in [("holder", "keyword"), ("media", "keyword"), ("document", "validator"), ("email", "validator")] {
        assert_eq!(slots[slot]["by_source"][source].as_u64(), Some(slots[slot]["filled"].as_u64().unwrap()), "{slot}: {slots}");
        assert!(slots[slot]["filled"].as_u64().unwrap() >= completed, "{slot}: {slots}");
    }
    assert!(slots["holder"]["missed_by_reason"]["nothing"].as_u64().unwrap() > 0, "{slots}");
    assert_eq!(version(&report, "v2")["slots"], serde_json::json!({}), "v2 has no form");
    let text = ok(&switchyard(&["report", "digital_certificate"], &db));
    assert!(text.contains("form slots: where the values came from"), "{text}");
}
