//! The drill (issue #15 §5): shipping `digital_certificate@v3` the way the
//! README's "Shipping a new version" says, with the real binary on a fresh
//! SQLite database, command by command:
//!
//! 1. scaffold the next version (`flows new`, into a scratch copy of the
//!    flows crate: the repository is not touched);
//! 2. check every version (`check`; the transcripts of every version run in
//!    `crates/flows/tests/transcripts`, the README's `cargo test` line);
//! 3. pin an internal test number to v3 and talk to it;
//! 4. split 90/10 with a handoff guard;
//! 5. simulated traffic in which v3 hands off far more: the guard rolls v3
//!    back, with the numbers in the audit;
//! 6. "fixed": the split is set again, traffic in which v3 does better, and
//!    `report` names v3 the winner; `promote`;
//! 7. `audit ran` names v3's fingerprint for the window;
//! 8. `FLOW_VERSION_OVERRIDES=digital_certificate=v2` beats all of it.
//!
//! Throughout, a customer who started on v1 before the drill stays live on
//! v1, and no session is ever seen on a version other than its first.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The version being shipped and the one it is compared with.
const CANDIDATE: &str = "v3";
const BASELINE: &str = "v1";
/// The version the break-glass override names.
const BREAK_GLASS: &str = "v2";
const TESTER: &str = "5511900000099";
/// A customer mid-purchase when the drill starts.
const LIVE_CUSTOMER: &str = "5511955550001";

fn switchyard(args: &[&str], db: &str, env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in ["FLOW_VERSION_OVERRIDES", "SESSION_TTL", "HANDOFF_TTL", "LLM_BASE_URL"] {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", db).env("USER", "drill");
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&ok(output)).expect("json")
}

/// The last reply of a `chat --json` run (one JSON object per line).
fn last_reply(output: &Output) -> Value {
    ok(output)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .rfind(|line| line["type"] == "reply")
        .expect("a reply")
}

/// Every session id seen so far with the version it had: a session that
/// shows up on another version fails the drill.
#[derive(Default)]
struct Versions(BTreeMap<String, String>);

impl Versions {
    fn observe(&mut self, db: &str, moment: &str) {
        let live = json(&switchyard(&["sessions", "list", "--json"], db, &[], ""));
        for session in live.as_array().unwrap() {
            let id = session["id"].as_str().unwrap().to_owned();
            let version = format!("{}@{}", session["flow"].as_str().unwrap(), session["version"].as_str().unwrap());
            let first = self.0.entry(id.clone()).or_insert_with(|| version.clone());
            assert_eq!(*first, version, "{moment}: live session {id} changed version");
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn shipping_v3_through_pin_guarded_split_rollback_verdict_promote_and_break_glass() {
    let db = support::fresh_db();
    let mut versions = Versions::default();

    // Before the drill: a customer stops mid-purchase on the active version.
    let started = last_reply(&switchyard(&["chat", "--json", "--contact", LIVE_CUSTOMER], &db, &[], "quero comprar um certificado\n"));
    assert_eq!(started["version"], BASELINE, "{started}");
    versions.observe(&db, "before the drill");
    assert_eq!(versions.0.len(), 1);

    // 1. Scaffold the next version into a scratch copy of the flows crate.
    let scratch = std::env::temp_dir().join(format!("switchyard-drill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let flows = Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows");
    copy_dir(&flows.join("src/digital_certificate/v3"), &scratch.join("src/digital_certificate/v3"));
    let dir = scratch.display().to_string();
    // (v4 exists already: it calls dc_purchase; the next free number is v5.)
    ok(&switchyard(&["flows", "new", "digital_certificate@v5", "--from", CANDIDATE, "--dir", &dir], &db, &[], ""));
    let v5 = std::fs::read_to_string(scratch.join("src/digital_certificate/v5/mod.rs")).unwrap();
    assert!(v5.contains("VersionDecl::new(\"digital_certificate\", 5, Lifecycle::Inactive)"), "the copy is v5 and inactive");
    assert!(!flows.join("src/digital_certificate/v5").exists(), "the repository is not touched");
    let _ = std::fs::remove_dir_all(&scratch);

    // 2. Every version validates; v3 is compiled, inactive, with its fingerprint.
    ok(&switchyard(&["check"], &db, &[], ""));
    let compiled = json(&switchyard(&["flows", "--json"], &db, &[], ""));
    let v3 = compiled.as_array().unwrap().iter().find(|fv| fv["flow"] == "digital_certificate" && fv["version"] == CANDIDATE).expect("v3");
    assert_eq!(v3["lifecycle"], "inactive");
    let fingerprint = v3["fingerprint"].as_str().unwrap().to_owned();

    // 3. Pin the internal tester to v3; the tester's conversation runs on v3.
    ok(&switchyard(&["rollout", "pin", &format!("digital_certificate@{CANDIDATE}"), TESTER, "--reason", "internal tester"], &db, &[], ""));
    let tester = last_reply(&switchyard(&["chat", "--json", "--contact", TESTER], &db, &[], "quero comprar um e-cpf a1\n"));
    assert_eq!((tester["flow"].as_str(), tester["version"].as_str()), (Some("digital_certificate"), Some(CANDIDATE)), "{tester}");
    versions.observe(&db, "after the pin");

    // 4. A 90/10 split guarded on the handoff rate.
    let weights = format!("{BASELINE}=90,{CANDIDATE}=10");
    let guarded = ["--guard", "handoff", "--guard-min-sessions", "30"];
    let split: Vec<&str> = ["rollout", "split", "digital_certificate", &weights].into_iter().chain(guarded).chain(["--reason", "10% canary"]).collect();
    ok(&switchyard(&split, &db, &[], ""));
    versions.observe(&db, "after the split");

    // 5. v3 hands off far more: the guard rolls it back, with the numbers.
    ok(&switchyard(&["simulate", "--contacts", "500", "--behave", &format!("{BASELINE}:human=0.05"), "--behave", &format!("{CANDIDATE}:human=0.5"), "--json"], &db, &[], ""));
    versions.observe(&db, "after the bad traffic");
    let checked = ok(&switchyard(&["rollout", "check-guards"], &db, &[], ""));
    assert!(checked.contains(&format!("guard ROLLED BACK {CANDIDATE}")), "{checked}");
    let audit = json(&switchyard(&["audit", "--flow", "digital_certificate", "--json"], &db, &[], ""));
    let rollback = audit.as_array().unwrap().iter().find(|record| record["action"] == "guard_rollback").expect("audited");
    let reason = rollback["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("handoff rate of {CANDIDATE}")) && reason.contains("finished") && reason.contains('%'), "{reason}");
    let explained = json(&switchyard(&["explain", "--flow", "digital_certificate", "--contact", "5511988887777", "--json"], &db, &[], ""));
    assert_eq!(explained["version"], BASELINE, "new customers are back on the baseline");
    versions.observe(&db, "after the rollback");

    // 6. Fixed: the split again, traffic where v3 does better (on its own
    // instance, so the verdict reads this run only), the verdict, promote.
    let again = ["rollout", "split", "digital_certificate", &weights, "--reason", "v3 fixed, canary again"];
    ok(&switchyard(&again, &db, &[], ""));
    let behave = [format!("{BASELINE}:human=0.25"), format!("{CANDIDATE}:human=0.02")];
    let good = ["simulate", "--contacts", "800", "--instance", "canary2", "--first-contact", "5599910000000", "--behave", &behave[0], "--behave", &behave[1], "--json"];
    ok(&switchyard(&good, &db, &[], ""));
    versions.observe(&db, "after the good traffic");
    let versions_arg = format!("{BASELINE},{CANDIDATE}");
    let report = json(&switchyard(
        &["report", "digital_certificate", "--versions", &versions_arg, "--instance", "canary2", "--min-finished", "50", "--json"],
        &db,
        &[],
        "",
    ));
    let verdict = report["comparison"]["verdict"].as_str().unwrap();
    assert!(verdict.starts_with(&format!("{CANDIDATE} completes more often than {BASELINE}")), "{verdict}");
    ok(&switchyard(&["rollout", "promote", &format!("digital_certificate@{CANDIDATE}"), "--reason", "v3 wins the canary"], &db, &[], ""));
    ok(&switchyard(&["rollout", "clear", "digital_certificate", "--kind", "split", "--reason", "canary done"], &db, &[], ""));
    let explained = json(&switchyard(&["explain", "--flow", "digital_certificate", "--contact", "5511988887777", "--json"], &db, &[], ""));
    assert_eq!((explained["version"].as_str(), explained["reason"].as_str()), (Some(CANDIDATE), Some("promote")));
    versions.observe(&db, "after promote");

    // 7. Which versions served the window, with v3's fingerprint.
    let ran = json(&switchyard(&["audit", "ran", "--flow", "digital_certificate", "--from", "2020-01-01", "--to", "2099-01-01", "--json"], &db, &[], ""));
    let served = ran.as_array().unwrap().iter().find(|row| row["version"] == CANDIDATE).expect("v3 served");
    assert_eq!(served["fingerprint"], fingerprint.as_str());
    assert!(served["sessions"].as_u64().unwrap() > 50, "{served}");

    // 8. Break glass: the override beats the promotion and the pin.
    let glass = [("FLOW_VERSION_OVERRIDES", "digital_certificate=v2")];
    for contact in [TESTER, "5511988887777"] {
        let explained = json(&switchyard(&["explain", "--flow", "digital_certificate", "--contact", contact, "--json"], &db, &glass, ""));
        assert_eq!((explained["version"].as_str(), explained["reason"].as_str()), (Some(BREAK_GLASS), Some("override")), "{contact}");
    }
    let overridden = last_reply(&switchyard(&["chat", "--json", "--contact", "5511977776666"], &db, &glass, "quero renovar meu certificado\n"));
    assert_eq!(overridden["version"], BREAK_GLASS, "{overridden}");

    // The customer who started before the drill is still live on v1, and no
    // session seen during the drill changed version.
    versions.observe(&db, "after break glass");
    let live = json(&switchyard(&["sessions", "list", "--json"], &db, &[], ""));
    let customer = live.as_array().unwrap().iter().find(|session| session["contact"] == LIVE_CUSTOMER).expect("still live");
    assert_eq!(customer["version"], BASELINE);
}
