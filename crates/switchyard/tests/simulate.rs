//! `switchyard simulate` as a user runs it: the real binary against a fresh
//! SQLite file per test, checked through its JSON summary and through what
//! it left in the database (sessions, events, `audit ran`).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;
use switchyard_store::sqlite::SqliteStore;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh database URL under the temp directory, unique per call.
fn fresh_db() -> String {
    let dir = std::env::temp_dir().join(format!("switchyard-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!("simulate-{}.db", NEXT.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&path);
    format!("sqlite://{}", path.display())
}

fn switchyard(args: &[&str], db: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in ["FLOW_VERSION_OVERRIDES", "SESSION_TTL", "HANDOFF_TTL"] {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", db).env("USER", "simulate-test");
    let mut child = command.spawn().expect("spawn switchyard");
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "stderr: {}", stderr(output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `simulate --json` with `args` and returns its summary.
fn simulate(db: &str, args: &[&str]) -> Value {
    let mut all = vec!["simulate", "--json"];
    all.extend_from_slice(args);
    let output = switchyard(&all, db);
    let out = ok(&output);
    assert_eq!(out.lines().count(), 1, "--json prints exactly one object: {out}");
    serde_json::from_str(out.trim()).unwrap_or_else(|err| panic!("{err}: {out}"))
}

/// The summary row of `version` (panics when the version got no row).
fn row<'a>(summary: &'a Value, version: &str) -> &'a Value {
    summary["versions"]
        .as_array()
        .and_then(|rows| rows.iter().find(|row| row["version"] == version))
        .unwrap_or_else(|| panic!("no row for {version}: {summary}"))
}

fn count(summary: &Value, version: &str, field: &str) -> u64 {
    row(summary, version)[field].as_u64().unwrap_or_else(|| panic!("{field} of {version}: {summary}"))
}

/// Runs one query on the test's database.
fn query<T>(db: &str, run: impl AsyncFnOnce(&sqlx::SqlitePool) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(db).await.unwrap();
        run(store.pool()).await
    })
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn by_default_every_customer_completes_on_the_active_version() {
    let db = fresh_db();
    let before = now_millis();
    let summary = simulate(&db, &["--contacts", "100"]);
    assert_eq!((summary["flow"].as_str(), summary["contacts"].as_u64()), (Some("digital_certificate"), Some(100)));
    assert_eq!(summary["versions"].as_array().map(Vec::len), Some(1), "{summary}");
    assert_eq!(count(&summary, "v1", "customers"), 100);
    assert_eq!(count(&summary, "v1", "completed"), 100);
    for field in ["handoff", "expired", "failed", "cancelled"] {
        assert_eq!(count(&summary, "v1", field), 0, "{field}");
    }

    // The database holds 100 completed digital_certificate sessions ...
    let (completed, live): (i64, i64) = query(&db, async |pool| {
        let completed = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE flow = 'digital_certificate' AND version = 1 AND outcome = 'completed'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        let live = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE outcome IS NULL").fetch_one(pool).await.unwrap();
        (completed, live)
    });
    assert_eq!((completed, live), (100, 0));

    // ... which `audit ran` counts too.
    let output = switchyard(&["audit", "ran", "--flow", "digital_certificate", "--from", "2020-01-01", "--to", "2099-01-01", "--json"], &db);
    let ran: Value = serde_json::from_str(&ok(&output)).unwrap();
    assert_eq!(ran.as_array().map(Vec::len), Some(1), "{ran}");
    assert_eq!((ran[0]["version"].as_str(), ran[0]["sessions"].as_u64()), (Some("v1"), Some(100)));

    // Events carry simulated time: spread over the run (two minutes between
    // customers), ending around the real now, never after it.
    let (first, last): (i64, i64) =
        query(&db, async |pool| sqlx::query_as("SELECT MIN(at), MAX(at) FROM events").fetch_one(pool).await.unwrap());
    assert!(last - first >= 99 * 120_000, "spread: {first}..{last}");
    assert!(last <= now_millis(), "no event in the future");
    assert!(before - last < 2 * 3_600_000, "the run ends within two hours of now: {last} vs {before}");
}

#[test]
fn a_stored_split_decides_the_versions_and_each_version_behaves_as_told() {
    let db = fresh_db();
    ok(&switchyard(&["rollout", "split", "digital_certificate", "v1=50,v2=50", "--reason", "test"], &db));
    let summary = simulate(&db, &["--contacts", "100", "--behave", "v1:complete=1", "--behave", "v2:human=0.5"]);
    let (v1, v2) = (count(&summary, "v1", "customers"), count(&summary, "v2", "customers"));
    assert_eq!(v1 + v2, 100);
    assert!((30..=70).contains(&v1), "roughly half each: v1 {v1}, v2 {v2}");
    assert_eq!(count(&summary, "v1", "completed"), v1);
    assert_eq!(count(&summary, "v1", "handoff"), 0);
    let handoffs = count(&summary, "v2", "handoff");
    assert!(handoffs > 0 && handoffs < v2, "about half of v2 hands off: {handoffs} of {v2}");
    assert_eq!(count(&summary, "v2", "completed") + handoffs, v2);
    let share = row(&summary, "v1")["share"].as_f64().unwrap() + row(&summary, "v2")["share"].as_f64().unwrap();
    assert!((share - 1.0).abs() < 1e-9, "{summary}");

    // The store agrees, and every handoff happened at a purchase step of v2.
    let rows: Vec<(i64, String, String, i64)> = query(&db, async |pool| {
        sqlx::query_as(
            "SELECT version, kind, step, COUNT(*) FROM events WHERE flow = 'digital_certificate' \
             AND kind IN ('completed', 'handoff', 'expired', 'failed', 'cancelled') GROUP BY version, kind, step",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    let total = |version: i64, kind: &str| rows.iter().filter(|r| r.0 == version && r.1 == kind).map(|r| r.3 as u64).sum::<u64>();
    assert_eq!((total(1, "completed"), total(1, "handoff")), (v1, 0));
    assert_eq!(total(2, "handoff"), handoffs);
    let v2_steps = ["purchase.choose_product", "purchase.collect_details", "purchase.confirm_order"];
    for (_, _, step, _) in rows.iter().filter(|r| r.0 == 2 && r.1 == "handoff") {
        assert!(v2_steps.contains(&step.as_str()), "handoff at {step}");
    }
}

#[test]
fn a_silent_drop_off_expires_every_session_at_the_given_step() {
    let db = fresh_db();
    let summary = simulate(&db, &["--contacts", "20", "--behave", "v1:silent=1@purchase.collect_document"]);
    assert_eq!(count(&summary, "v1", "customers"), 20);
    assert_eq!(count(&summary, "v1", "expired"), 20, "{summary}");
    assert_eq!(count(&summary, "v1", "completed"), 0);

    let expiries: Vec<(String, i64, i64)> = query(&db, async |pool| {
        sqlx::query_as(
            "SELECT e.step, e.at, s.last_input_at FROM events e JOIN sessions s ON s.id = e.session_id \
             WHERE e.kind = 'expired' AND e.flow = 'digital_certificate'",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    assert_eq!(expiries.len(), 20);
    for (step, at, last_input) in expiries {
        assert_eq!(step, "purchase.collect_document");
        // The engine dates an expiry when the TTL ran out, not when it was noticed.
        assert_eq!(at - last_input, 30 * 60_000, "expired after the session TTL of silence");
    }
}

#[test]
fn the_same_seed_gives_the_same_result() {
    let args = ["--contacts", "60", "--seed", "42", "--behave", "v1:complete=0.5,human=0.25,silent=0.25,think=5s"];
    let (first_db, second_db) = (fresh_db(), fresh_db());
    let first = simulate(&first_db, &args);
    assert_eq!(simulate(&second_db, &args), first);
    // A rerun on the same database meets the first run's handoff holds and still repeats.
    assert_eq!(simulate(&first_db, &args), first);
    for field in ["completed", "handoff", "expired"] {
        assert!(count(&first, "v1", field) > 0, "{field}: {first}");
    }
    let mut other = args.to_vec();
    other[3] = "43";
    assert_ne!(simulate(&fresh_db(), &other), first, "another seed, other choices");
}

#[test]
fn the_text_summary_is_a_table_without_a_progress_bar_when_not_on_a_terminal() {
    let db = fresh_db();
    let output = switchyard(&["simulate", "--contacts", "5", "--behave", "v1:human=1@purchase.collect_email"], &db);
    let out = ok(&output);
    assert!(out.contains("simulated 5 digital_certificate customers on instance 'simulator' (seed 1)"), "{out}");
    let line = out.lines().find(|line| line.starts_with("v1 ")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), ["v1", "5", "100.0%", "0", "5", "0", "0", "0"]);
    assert!(out.contains("v1: complete 0%, human 100% at purchase.collect_email, think 20s"), "{out}");
    assert_eq!(stderr(&output), "", "stderr is not a terminal: no progress bar");
}

#[test]
fn bad_arguments_are_refused_with_one_line_each() {
    let cases: &[(&[&str], &str)] = &[
        (&["--flow", "digitl_certificate"], "--flow 'digitl_certificate' is not a compiled flow (did you mean 'digital_certificate'?)"),
        (&["--flow", "billing"], "--flow 'billing': the simulator has no walk for it (supported: digital_certificate)"),
        (&["--contacts", "0"], "--contacts must be at least 1"),
        (&["--first-contact", "12ab"], "--first-contact: contact"),
        (&["--first-contact", "99999999999999999999", "--contacts", "2"], "between 5 and 20 digits"),
        (&["--instance", "a b"], "--instance: instance 'a b'"),
        (&["--behave", "v1"], "--behave 'v1': must look like"),
        (&["--behave", "v9:human=1"], "--behave 'v9:human=1': flow 'digital_certificate' has no version v9 (compiled: v1, v2, v3, v4)"),
        (&["--behave", "v1:human=0.6,silent=0.6"], "probabilities add up to 1.2, more than 1"),
        (&["--behave", "v1:human=lots"], "human: probability 'lots' must be a number from 0 to 1"),
        (&["--behave", "v1:wander=0.5"], "unknown behaviour 'wander'"),
        (&["--behave", "v1:think=soon"], "think: duration 'soon'"),
        (&["--behave", "v2:silent=1@purchase.collect_document"], "digital_certificate@v2 has no step 'purchase.collect_document'"),
        (&["--behave", "v1:silent=1@renewal.collect_document"], "is not on the simulated walk"),
        (&["--behave", "v1:human=1", "--behave", "v1:silent=1"], "--behave 'v1:silent=1': v1 already has a behaviour"),
        (&["--behave", "v1:think=45m"], "--behave v1: think 2700s is not shorter than SESSION_TTL (1800s)"),
    ];
    for (args, expected) in cases {
        let db = fresh_db();
        let mut all = vec!["simulate"];
        all.extend_from_slice(args);
        let output = switchyard(&all, &db);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", stderr(&output));
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("error: ") && err.contains(expected), "{args:?}: {err}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn customers_of_v4_answer_the_flow_it_calls_and_end_as_planned() {
    let db = fresh_db();
    ok(&switchyard(&["rollout", "split", "digital_certificate", "v3=50,v4=50", "--reason", "test"], &db));
    let mut all = vec!["simulate", "--json", "--contacts", "40", "--behave", "v4:human=0.25,silent=0.25"];
    let output = switchyard(&all, &db);
    let summary: Value = serde_json::from_str(ok(&output).trim()).unwrap();
    assert!(!stderr(&output).contains("planned to"), "every customer ends as planned: {}", stderr(&output));
    let v4 = count(&summary, "v4", "customers");
    assert!(v4 > 0 && v4 < 40, "about half on v4: {summary}");
    let (completed, handoff, expired) = (count(&summary, "v4", "completed"), count(&summary, "v4", "handoff"), count(&summary, "v4", "expired"));
    assert_eq!(completed + handoff + expired, v4, "{summary}");
    assert!(completed > 0 && handoff > 0 && expired > 0, "each behaviour happened: {summary}");

    // The purchases happened in dc_purchase, called by v4: one call per v4
    // customer, ending as its caller did, at the form's step.
    let calls: Vec<(String, String, i64)> = query(&db, async |pool| {
        sqlx::query_as(
            "SELECT c.outcome, c.step, COUNT(*) FROM sessions c JOIN sessions p ON p.id = c.parent \
             WHERE c.flow = 'dc_purchase' AND p.flow = 'digital_certificate' AND p.version = 4 GROUP BY c.outcome, c.step",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    });
    let total = |outcome: &str| calls.iter().filter(|row| row.0 == outcome).map(|row| row.2 as u64).sum::<u64>();
    assert!(calls.iter().all(|row| row.1 == "purchase.order"), "{calls:?}");
    assert_eq!((total("completed"), total("handoff"), total("expired")), (completed, handoff, expired), "{calls:?}");
    let live: i64 = query(&db, async |pool| sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE outcome IS NULL").fetch_one(pool).await.unwrap());
    assert_eq!(live, 0, "nothing is left live");

    // A step of the called flow is a step the behaviour may name.
    all.truncate(4);
    all.extend(["--behave", "v4:silent=1@purchase.order"]);
    let summary: Value = serde_json::from_str(ok(&switchyard(&all, &db)).trim()).unwrap();
    assert_eq!(count(&summary, "v4", "expired"), count(&summary, "v4", "customers"), "{summary}");
}
