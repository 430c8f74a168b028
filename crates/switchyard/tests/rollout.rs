//! Runtime rollout policy end to end: the CLI changes it, `explain` and new
//! sessions follow it, the audit log records it, and a second server applies
//! a change made through the first within a second.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use support::{upsert, StandIn, TestApp};

fn switchyard(args: &[&str], db: &str, stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in ["FLOW_VERSION_OVERRIDES", "SESSION_TTL", "HANDOFF_TTL"] {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", db).env("USER", "ana");
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn explain(db: &str, contact: &str, instance: &str) -> Value {
    let output = switchyard(&["explain", "--flow", "digital_certificate", "--contact", contact, "--instance", instance, "--json"], db, "");
    serde_json::from_str(&ok(&output)).unwrap()
}

#[test]
fn cli_rules_decide_new_sessions_in_precedence_order_and_are_audited() {
    let db = support::fresh_db();
    let tester = "5511900001111";
    let customer = "5511900002222";
    // No store yet: explain says so rather than create an empty one; chat creates it.
    let missing = switchyard(&["explain", "--flow", "digital_certificate", "--contact", customer], &db, "");
    assert_eq!(missing.status.code(), Some(1), "{}", String::from_utf8_lossy(&missing.stderr));
    ok(&switchyard(&["chat"], &db, ""));
    assert_eq!(explain(&db, customer, "vendas")["reason"], "active");

    ok(&switchyard(&["rollout", "promote", "digital_certificate@v2", "--reason", "v2 is the new default"], &db, ""));
    assert_eq!((explain(&db, customer, "vendas")["version"].as_str(), explain(&db, customer, "vendas")["reason"].as_str()), (Some("v2"), Some("promote")));

    ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=100,v2=0", "--reason", "hold v2 back"], &db, ""));
    assert_eq!(explain(&db, customer, "vendas")["reason"], "split", "the split beats promote");
    assert_eq!(explain(&db, customer, "vendas")["version"], "v1");

    ok(&switchyard(&["rollout", "instance", "digital_certificate@v2", "vendas", "--reason", "sales line on v2"], &db, ""));
    assert_eq!(explain(&db, customer, "vendas")["reason"], "instance");
    assert_eq!(explain(&db, customer, "suporte")["reason"], "split", "other instances are unaffected");

    ok(&switchyard(&["rollout", "pin", "digital_certificate@v1", tester, "--reason", "internal tester stays on v1"], &db, ""));
    let explained = explain(&db, tester, "vendas");
    assert_eq!((explained["version"].as_str(), explained["reason"].as_str()), (Some("v1"), Some("pin")));
    assert_eq!(explained["rules"][0]["matched"], true);

    // A schedule that already ended sends nobody anywhere; one that is open wins over the split.
    ok(&switchyard(&["rollout", "schedule", "digital_certificate@v2", "--from", "2020-01-01", "--until", "2020-02-01", "--reason", "last campaign"], &db, ""));
    assert_eq!(explain(&db, customer, "suporte")["reason"], "split");
    ok(&switchyard(&["rollout", "schedule", "digital_certificate@v2", "--from", "2020-01-01", "--until", "2099-01-01", "--reason", "long campaign"], &db, ""));
    assert_eq!(explain(&db, customer, "suporte")["reason"], "schedule");

    // The override still beats every rule.
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    let output = command
        .args(["explain", "--flow", "digital_certificate", "--contact", tester, "--instance", "vendas", "--json"])
        .env("DATABASE_URL", &db)
        .env("FLOW_VERSION_OVERRIDES", "digital_certificate=v2")
        .output()
        .unwrap();
    let explained: Value = serde_json::from_str(&ok(&output)).unwrap();
    assert_eq!((explained["version"].as_str(), explained["reason"].as_str()), (Some("v2"), Some("override")));

    // Each change is in the audit log with who, when, why, before and after.
    let records: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["audit", "--flow", "digital_certificate", "--json"], &db, ""))).unwrap();
    let actions: Vec<&str> = records.iter().map(|record| record["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["promote", "split", "instance", "pin", "schedule", "schedule"]);
    assert!(records.iter().all(|record| record["actor"] == "cli:ana" && record["at"].as_str().is_some_and(|at| at.ends_with('Z'))));
    assert_eq!(records[0]["reason"], "v2 is the new default");
    assert_eq!(records[0]["before"], Value::Null);
    assert_eq!(records[0]["after"]["promoted"], "v2");
    assert_eq!(records[1]["before"], records[0]["after"]);
    assert_eq!(records[3]["after"]["pins"][0]["version"], "v1");

    ok(&switchyard(&["rollout", "clear", "digital_certificate", "--reason", "rollback"], &db, ""));
    assert_eq!(explain(&db, tester, "vendas")["reason"], "active");
}

#[test]
fn bad_rollout_changes_are_refused_naming_the_problem_and_change_nothing() {
    let db = support::fresh_db();
    let cases: [(&[&str], &str); 6] = [
        (&["rollout", "split", "digital_certificate", "v1=90,v2=5", "--reason", "x"], "sum to 95, not 100"),
        (&["rollout", "promote", "digital_certificate@v9", "--reason", "x"], "has no version v9"),
        (&["rollout", "split", "digital_certificat", "v1=50,v2=50", "--reason", "x"], "did you mean 'digital_certificate'"),
        (&["rollout", "pin", "billing@v2", "not-a-number", "--reason", "x"], "contact"),
        (&["rollout", "promote", "billing@v2", "--reason", "  "], "a reason is required"),
        (&["rollout", "schedule", "billing@v2", "--from", "amanhã", "--until", "2027-01-01", "--reason", "x"], "--from: time 'amanhã'"),
    ];
    for (args, expected) in cases {
        let output = switchyard(args, &db, "");
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let output = switchyard(&["rollout", "promote", "billing@v2"], &db, "");
    assert_eq!(output.status.code(), Some(2), "clap refuses a missing --reason");
    let records: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["audit", "--json"], &db, ""))).unwrap();
    assert!(records.is_empty(), "nothing was changed: {records:?}");
}

#[test]
fn audit_ran_matches_the_sessions_actually_served() {
    let db = support::fresh_db();
    ok(&switchyard(&["rollout", "pin", "digital_certificate@v2", "5511900003333", "5511900004444", "--reason", "testers"], &db, ""));
    for contact in ["5511900003333", "5511900004444", "5511900005555"] {
        ok(&switchyard(&["chat", "--json", "--contact", contact], &db, "quero renovar meu certificado\n"));
    }
    let ran: Vec<Value> = serde_json::from_str(&ok(&switchyard(
        &["audit", "ran", "--flow", "digital_certificate", "--from", "2020-01-01", "--to", "2099-01-01", "--json"],
        &db,
        "",
    )))
    .unwrap();
    let counts: Vec<(&str, i64)> = ran.iter().map(|row| (row["version"].as_str().unwrap(), row["sessions"].as_i64().unwrap())).collect();
    assert_eq!(counts, vec![("v1", 1), ("v2", 2)]);
    let flows: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["flows", "--json"], &db, ""))).unwrap();
    for row in &ran {
        let compiled = flows.iter().find(|flow| flow["flow"] == "digital_certificate" && flow["version"] == row["version"]).unwrap();
        assert_eq!(row["fingerprint"], compiled["fingerprint"]);
    }
    let none: Vec<Value> = serde_json::from_str(&ok(&switchyard(
        &["audit", "ran", "--flow", "digital_certificate", "--from", "2020-01-01", "--to", "2020-02-01", "--json"],
        &db,
        "",
    )))
    .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn a_rule_changed_through_one_server_is_applied_by_another() {
    let evolution = StandIn::start().await;
    let db = support::fresh_db();
    let configure = |config: &mut switchyard::config::ServeConfig| config.admin_tokens = vec![("release-bot".to_owned(), "tok".to_owned())];
    let first = TestApp::spawn_with(&db, &evolution, configure).await;
    let second = TestApp::spawn_with(&db, &evolution, configure).await;
    let contact = "5511900006666";
    let query = format!("/api/explain?flow=digital_certificate&contact={contact}&instance=loja-bot");
    let (status, before) = second.get_admin(&query, "tok").await;
    assert_eq!((status, before["reason"].as_str()), (200, Some("active")));

    let body = json!({"rules": {"pins": [{"contact": contact, "version": "v2"}]}, "reason": "try v2 on a tester"});
    let (status, record) = first.put_admin("/api/rollout/digital_certificate", body, "tok").await;
    assert_eq!(status, 200, "{record}");
    assert_eq!((record["actor"].as_str(), record["action"].as_str()), (Some("release-bot"), Some("set")));
    // The second server picks the change up from the store by itself (it
    // polls the audit every 100 ms; the deadline is only there to end a hang).
    support::wait_until(|| async { second.get_admin(&query, "tok").await.1["reason"] == "pin" }).await;
    // A new session on the second server gets the pinned version.
    second.webhook(&upsert("POL-1", contact, "quero comprar um certificado", 1_795_000_000)).await;
    second.wait_idle().await;
    let version: String = second.scalar("SELECT version || '/' || reason FROM sessions WHERE flow = 'digital_certificate'").await;
    assert_eq!(version, "2/pin");

    // A refused change says why and changes nothing.
    let (status, refused) = first.put_admin("/api/rollout/digital_certificate", json!({"rules": {"promoted": "v9"}, "reason": "x"}), "tok").await;
    assert_eq!(status, 422);
    assert!(refused["error"].as_str().unwrap().contains("v9"), "{refused}");
    let (status, _) = first.put_admin("/api/rollout/digital_certificate", json!({"rules": {}}), "tok").await;
    assert_eq!(status, 422, "a reason is required");
    let (status, _) = first.put_admin("/api/rollout/digital_certificate", json!({"rules": {}, "reason": "x"}), "wrong").await;
    assert_eq!(status, 401);
    let (_, audit) = first.get_admin("/api/audit?flow=digital_certificate", "tok").await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|record| record["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["deploy", "deploy", "set"], "two deploy manifests, one change");
    assert!(audit[0]["after"]["versions"].as_array().unwrap().iter().any(|v| v["flow"] == "digital_certificate" && v["fingerprint"].as_str().unwrap().len() == 64));

    let (status, openapi) = first.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    let openapi: Value = serde_json::from_str(&openapi).unwrap();
    for path in ["/api/rollout", "/api/rollout/{flow}", "/api/explain", "/api/audit", "/api/handoffs/release"] {
        assert!(openapi["paths"].get(path).is_some(), "{path} documented");
    }
    first.stop().await;
    second.stop().await;
}

#[test]
fn status_shows_the_drain_and_evacuate_moves_live_sessions_to_the_current_version() {
    let db = support::fresh_db();
    let (first, second) = ("5511900007777", "5511900008888");
    ok(&switchyard(&["rollout", "pin", "digital_certificate@v2", first, second, "--reason", "early testers"], &db, ""));
    for contact in [first, second] {
        ok(&switchyard(&["chat", "--json", "--contact", contact], &db, "quero renovar meu certificado\n"));
    }
    let status: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["rollout", "status", "digital_certificate", "--json"], &db, ""))).unwrap();
    let v2 = status.iter().find(|row| row["version"] == "v2").unwrap();
    assert_eq!((v2["live_sessions"].as_i64(), v2["share_last_hour_percent"].as_f64()), (Some(2), Some(100.0)));
    assert!(v2["last_expiry"].as_str().is_some());

    // Refused while new sessions would still get v2.
    let output = switchyard(&["rollout", "evacuate", "digital_certificate@v2", "--reason", "bug in v2"], &db, "");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("still resolve to v2"));

    ok(&switchyard(&["rollout", "clear", "digital_certificate", "--reason", "bug in v2"], &db, ""));
    let moved = ok(&switchyard(&["rollout", "evacuate", "digital_certificate@v2", "--reason", "bug in v2"], &db, ""));
    assert!(moved.starts_with("2 live digital_certificate@v2 sessions restarted"), "{moved}");
    let status: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["rollout", "status", "digital_certificate", "--json"], &db, ""))).unwrap();
    let live = |version: &str| status.iter().find(|row| row["version"] == version).unwrap()["live_sessions"].as_i64();
    assert_eq!((live("v1"), live("v2")), (Some(2), Some(0)));
    let state: Value = serde_json::from_str(ok(&switchyard(&["chat", "--json", "--contact", first], &db, "/state\n")).lines().next().unwrap()).unwrap();
    assert_eq!((state["flow"].as_str(), state["version"].as_str()), (Some("digital_certificate"), Some("v1")));
    let records: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["audit", "--json"], &db, ""))).unwrap();
    let evacuation = records.iter().find(|record| record["action"] == "evacuate").expect("audited");
    assert_eq!((evacuation["reason"].as_str(), evacuation["after"]["sessions"].as_i64()), (Some("bug in v2"), Some(2)));
}

async fn serve_process(db: &str, evolution: &StandIn) -> (support::ServeProcess, String) {
    let process = support::ServeProcess::start(db, evolution, &[("ADMIN_TOKENS", "release-bot=tok")]).await;
    let url = process.url.clone();
    (process, url)
}

#[tokio::test]
async fn two_serve_processes_on_one_store_apply_a_change() {
    let evolution = StandIn::start().await;
    let db = support::fresh_db();
    let (_first, first_url) = serve_process(&db, &evolution).await;
    let (_second, second_url) = serve_process(&db, &evolution).await;
    let http = support::http();
    let explain = format!("{second_url}/api/explain?flow=billing&contact=5511900009999&instance=loja-bot");
    let reason = |value: &Value| value["reason"].as_str().unwrap_or_default().to_owned();
    let before: Value = http.get(&explain).bearer_auth("tok").send().await.unwrap().json().await.unwrap();
    assert_eq!(reason(&before), "active");

    let response = http
        .put(format!("{first_url}/api/rollout/billing"))
        .bearer_auth("tok")
        .json(&json!({"rules": {"schedules": [{"version": "v2", "from": "2020-01-01", "until": "2099-01-01"}]}, "reason": "invoice season"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let now = || async { http.get(&explain).bearer_auth("tok").send().await.unwrap().json::<Value>().await.unwrap() };
    support::wait_until(|| async { reason(&now().await) == "schedule" }).await;
    assert_eq!(now().await["version"], "v2");
}

#[test]
fn evacuating_v1_mid_purchase_continues_the_purchase_on_v2() {
    let db = support::fresh_db();
    let contact = "5511900001212";
    ok(&switchyard(&["chat", "--json", "--contact", contact], &db, "quero comprar um certificado\n1\n"));
    ok(&switchyard(&["rollout", "promote", "digital_certificate@v2", "--reason", "v2 is ready"], &db, ""));
    ok(&switchyard(&["rollout", "evacuate", "digital_certificate@v1", "--reason", "move everyone to v2"], &db, ""));
    let state: Value = serde_json::from_str(ok(&switchyard(&["chat", "--json", "--contact", contact], &db, "/state\n")).lines().next().unwrap()).unwrap();
    assert_eq!((state["version"].as_str(), state["step"].as_str()), (Some("v2"), Some("purchase.choose_product")));
}
