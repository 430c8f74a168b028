//! `switchyard replay` and `sessions export --masked` as processes, on a
//! SQLite store seeded by real traffic through the real server (webhooks in,
//! a stand-in Evolution API out): the divergences constructed below come
//! out exactly, a masked corpus replays to the same aggregate without the
//! personal data, `--fail-on-regression` decides in both directions, and the
//! store is byte for byte the same after a replay.

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::{fresh_db, upsert, StandIn, TestApp};

const CPF: &str = "529.982.247-25";
const EMAIL: &str = "Ana.Souza@Exemplo.com.br";

/// Customers served by v1 (the active version): a purchase completed, and
/// one who is not understood until a person takes over.
const V1_COMPLETE: (&str, &[&str]) = ("5511911110001", &["quero comprar um certificado", "1", "1", CPF, EMAIL, "1", "sim"]);
const V1_LOST: (&str, &[&str]) = ("5511911110002", &["quero comprar um certificado", "🤷", "🤷", "🤷"]);
/// Customers pinned to v2: the three-step purchase, CPF and e-mail in one message.
const V2_COMPLETE: (&str, &[&str]) = ("5511911110003", &["quero comprar um certificado", "1", "529.982.247-25, Ana.Souza@Exemplo.com.br", "sim"]);
const V2_COMPLETE_TOO: (&str, &[&str]) = ("5511911110004", &["quero comprar um certificado", "1", "meu cpf é 529.982.247-25 e o email ana.souza@exemplo.com.br", "sim"]);

fn switchyard(args: &[&str], db: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args);
    for name in ["FLOW_VERSION_OVERRIDES", "SESSION_TTL", "HANDOFF_TTL", "SWITCHYARD_CONFIG", "RETENTION"] {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", db).env("USER", "tester");
    command.output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "status {:?}, stderr: {}", output.status, String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&String::from_utf8_lossy(&output.stdout)).unwrap_or_else(|err| {
        panic!("not JSON ({err}): {}\nstderr: {}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    })
}

/// A store with the four conversations above, through the real server.
async fn seeded() -> String {
    let db = fresh_db();
    ok(&switchyard(&["rollout", "pin", "digital_certificate@v2", V2_COMPLETE.0, V2_COMPLETE_TOO.0, "--reason", "replay test"], &db));
    let evolution = StandIn::start().await;
    let app = TestApp::spawn_with(&db, &evolution, |_| {}).await;
    for (contact, (number, texts)) in [V1_COMPLETE, V1_LOST, V2_COMPLETE, V2_COMPLETE_TOO].iter().enumerate() {
        for (idx, text) in texts.iter().enumerate() {
            let (status, _) = app.webhook(&upsert(&format!("R{contact}-{idx}"), number, text, 1_795_000_000 + 30 * idx as i64)).await;
            assert_eq!(status, 200);
            app.wait_idle().await;
        }
    }
    app.stop().await;
    db
}

/// Every table's row count, and the bytes of the database files.
async fn snapshot(db: &str) -> (Vec<(String, i64)>, Vec<Vec<u8>>) {
    let pool = sqlx::SqlitePool::connect(db).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetch_all(&pool).await.unwrap();
    let mut counts = Vec::new();
    for table in tables {
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM \"{table}\""))).fetch_one(&pool).await.unwrap();
        counts.push((table, count));
    }
    pool.close().await;
    let path = db.strip_prefix("sqlite://").unwrap();
    let files = ["", "-wal"].iter().map(|suffix| std::fs::read(format!("{path}{suffix}")).unwrap_or_default()).collect();
    (counts, files)
}

fn by_session(document: &Value) -> Vec<Value> {
    document["sessions"].as_array().unwrap().clone()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/replay/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A session's (aligned, divergence's message index and steps, outcomes).
type Shape = (u64, Option<(u64, String, String)>, Value);

/// Each session's [`Shape`], in start order.
fn shape(document: &Value) -> Vec<Shape> {
    by_session(document)
        .iter()
        .map(|session| {
            let divergence = session["divergence"].as_object().map(|d| {
                (d["message"].as_u64().unwrap(), d["baseline_step"].as_str().unwrap().to_owned(), d["candidate_step"].as_str().unwrap().to_owned())
            });
            (session["aligned"].as_u64().unwrap(), divergence, session["outcome"].clone())
        })
        .collect()
}

#[tokio::test]
async fn replaying_v2_against_v1_and_v1_against_v2_finds_the_constructed_divergences_and_writes_nothing() {
    let db = seeded().await;
    let before = snapshot(&db).await;
    assert!(before.0.iter().any(|(table, count)| table == "inbox" && *count == 19), "the traffic is stored: {:?}", before.0);

    // v2 against the version that served each session.
    let v2 = json(&switchyard(&["replay", "digital_certificate", "--candidate", "v2", "--json"], &db));
    let outcome = |base: &str, cand: &str| serde_json::json!({"baseline": base, "candidate": cand});
    assert_eq!(
        shape(&v2),
        vec![
            // v1's type menu and v2's product menu are the same question (v2's
            // step map); after "1" v1 asks the media, v2 the CPF and e-mail.
            (2, Some((2, "purchase.choose_media".to_owned(), "purchase.collect_details".to_owned())), Value::Null),
            // Not understood twice at the menu, by both: a person takes over.
            (3, None, outcome("handoff", "handoff")),
            (4, None, outcome("completed", "completed")),
            (4, None, outcome("completed", "completed")),
        ]
    );
    let sessions = by_session(&v2);
    assert_eq!(sessions[0]["divergence"]["text"], "1", "the customer's text at the divergence");
    assert_eq!(sessions[1]["understood"], serde_json::json!({"baseline": 1, "candidate": 1}));
    assert!(sessions.iter().all(|session| session["baseline_reproduced"] == true), "each baseline replay ends as recorded: {sessions:#?}");
    let aggregate = &v2["aggregate"];
    assert_eq!(aggregate["sessions"], 4);
    assert_eq!(aggregate["aligned_messages_understood"]["baseline"]["trials"], 13);
    assert_eq!(aggregate["aligned_messages_understood"]["baseline"]["successes"], 11);
    assert_eq!(aggregate["aligned_messages_understood"]["candidate"]["successes"], 11);
    assert_eq!(aggregate["handoff"]["candidate"]["successes"], 1);
    assert_eq!((aggregate["aligned_to_end"].as_u64(), aggregate["ends_differently"].as_u64()), (Some(3), Some(0)));
    assert_eq!(aggregate["enough"], false);
    assert!(aggregate["verdict"].as_str().unwrap().starts_with("not enough data yet: 4 sessions replayed"), "{}", aggregate["verdict"]);

    // v1 against the served versions: the v2 sessions diverge where v1 asks the media.
    let v1 = json(&switchyard(&["replay", "digital_certificate", "--candidate", "v1", "--json"], &db));
    assert_eq!(
        shape(&v1),
        vec![
            (7, None, outcome("completed", "completed")),
            (3, None, outcome("handoff", "handoff")),
            (2, Some((2, "purchase.collect_details".to_owned(), "purchase.choose_media".to_owned())), Value::Null),
            (2, Some((2, "purchase.collect_details".to_owned(), "purchase.choose_media".to_owned())), Value::Null),
        ]
    );
    // The text report says the same, with the texts masked.
    let text = ok(&switchyard(&["replay", "digital_certificate", "--candidate", "v1", "--baseline", "v2"], &db));
    assert!(text.contains("diverges at message 3: purchase.collect_details → purchase.choose_media on \"***.***.***-25, ***@Exemplo.com.br\""), "{text}");
    assert!(!text.contains(CPF) && !text.to_lowercase().contains(&EMAIL.to_lowercase()), "{text}");

    assert_eq!(snapshot(&db).await, before, "replay wrote nothing: same row counts, same bytes");
}

#[tokio::test]
async fn a_masked_export_holds_no_personal_data_and_replays_to_the_same_aggregate() {
    let db = seeded().await;
    let before = snapshot(&db).await;
    let refused = switchyard(&["sessions", "export", "--flow", "digital_certificate"], &db);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("pass --masked"));
    let corpus = ok(&switchyard(&["sessions", "export", "--flow", "digital_certificate", "--masked"], &db));
    assert_eq!(corpus.lines().count(), 4, "{corpus}");
    let lower = corpus.to_lowercase();
    for secret in [CPF, "52998224725", "ana.souza", V1_COMPLETE.0, V2_COMPLETE.0, "11110001"] {
        assert!(!lower.contains(&secret.to_lowercase()), "{secret} is in the corpus:\n{corpus}");
    }
    assert!(corpus.contains("@exemplo.com.br"), "e-mails keep their shape: {corpus}");
    let path = std::env::temp_dir().join(format!("replay-corpus-{}.jsonl", std::process::id()));
    std::fs::write(&path, &corpus).unwrap();
    let path = path.display().to_string();
    for candidate in ["v1", "v2"] {
        let from_store = json(&switchyard(&["replay", "digital_certificate", "--candidate", candidate, "--json"], &db));
        let from_corpus = json(&switchyard(&["replay", "digital_certificate", "--candidate", candidate, "--corpus", &path, "--json"], &db));
        assert_eq!(from_corpus["aggregate"], from_store["aggregate"], "{candidate}: the masked corpus replays like the store");
        assert_eq!(shape(&from_corpus), shape(&from_store));
    }
    assert_eq!(snapshot(&db).await, before, "export and replay wrote nothing");
}

/// Row counts of every table (a running server's file bytes may move with
/// its own checkpoints, so only rows are compared while it runs).
async fn rows(db: &str) -> Vec<(String, i64)> {
    snapshot(db).await.0
}

#[tokio::test]
async fn post_api_replay_answers_the_cli_document_and_writes_nothing() {
    let db = seeded().await;
    let cli = json(&switchyard(&["replay", "digital_certificate", "--candidate", "v2", "--json"], &db));
    let evolution = StandIn::start().await;
    let app = TestApp::spawn_with(&db, &evolution, |config| config.admin_tokens = vec![("ops".to_owned(), "replay-token".to_owned())]).await;
    let before = rows(&db).await;

    let body = serde_json::json!({"flow": "digital_certificate", "candidate": "v2"});
    let (status, api) = app.post_admin("/api/replay", body.clone(), Some("replay-token")).await;
    assert_eq!(status, 200, "{api}");
    for field in ["flow", "candidate", "baseline", "skipped", "aggregate", "sessions"] {
        assert_eq!(api[field], cli[field], "{field}: the API answers what the CLI prints");
    }
    assert_eq!((api["selected"].as_u64(), api["replayed"].as_u64(), api["complete"].as_bool()), (Some(4), Some(4), Some(true)), "{api}");
    assert_eq!(api["budget_ms"], 20_000, "the budget stays under HTTP_REQUEST_TIMEOUT (30 s)");

    // A fixed baseline and a limit: the oldest session only.
    let (status, one) = app
        .post_admin("/api/replay", serde_json::json!({"flow": "digital_certificate", "candidate": "v1", "baseline": "v2", "limit": 1}), Some("replay-token"))
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!((one["baseline"].as_str(), one["replayed"].as_u64()), (Some("v2"), Some(1)), "{one}");

    // Bad bodies: one message naming the bad value; no token: 401.
    let cases = [
        (serde_json::json!({"flow": "digital_certificate"}), "'flow' and 'candidate' are required"),
        (serde_json::json!({"flow": "digital_certificate", "candidate": "v9"}), "candidate: flow 'digital_certificate' has no version v9"),
        (serde_json::json!({"flow": "digital_certificat", "candidate": "v2"}), "flow 'digital_certificat' is not compiled in"),
        (serde_json::json!({"flow": "digital_certificate", "candidate": "v2", "limit": 0}), "'limit' must be a whole number from 1 to 10000, not 0"),
        (serde_json::json!({"flow": "digital_certificate", "candidate": "v2", "limit": 20000}), "not 20000"),
        (serde_json::json!({"flow": "digital_certificate", "candidate": "v2", "since": "ontem"}), "body field 'since'"),
        (serde_json::json!({"flow": "digital_certificate", "candidate": "v2", "canddiate": "v1"}), "body field 'canddiate' is not one of"),
        (serde_json::json!(["digital_certificate"]), "body must be a JSON object"),
    ];
    for (body, expected) in cases {
        let (status, answer) = app.post_admin("/api/replay", body.clone(), Some("replay-token")).await;
        let message = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(message.contains(expected) && !message.contains('\n'), "{body}: {message}");
    }
    let (status, _) = app.post_admin("/api/replay", body.clone(), None).await;
    assert_eq!(status, 401);
    let (status, _) = app.post_admin("/api/replay", body, Some("wrong")).await;
    assert_eq!(status, 401);

    assert_eq!(rows(&db).await, before, "the replays over the API wrote no row");
    assert!(evolution.sent().is_empty(), "and sent nothing: {:?}", evolution.sent());
    app.stop().await;
}

#[tokio::test]
async fn fail_on_regression_exits_1_only_when_the_candidate_is_significantly_worse() {
    let db = fresh_db();
    let corpus = fixture("pessoa_fisica.jsonl");
    // v1's type menu understands "pessoa física"; v2's product menu does not.
    let worse = switchyard(&["replay", "digital_certificate", "--candidate", "v2", "--corpus", &corpus, "--min-sessions", "20", "--fail-on-regression", "--json"], &db);
    assert_eq!(worse.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&worse.stderr));
    let worse = json(&worse);
    assert_eq!(worse["aggregate"]["aligned_messages_understood"]["baseline"]["successes"], 60);
    assert_eq!(worse["aggregate"]["aligned_messages_understood"]["candidate"]["successes"], 30);
    assert_eq!(worse["aggregate"]["new_reprompts_by_step"]["purchase.choose_product"], 30);
    assert!(worse["aggregate"]["verdict"].as_str().unwrap().contains("significantly worse on aligned messages"), "{}", worse["aggregate"]["verdict"]);

    let better = switchyard(&["replay", "digital_certificate", "--candidate", "v1", "--baseline", "v2", "--corpus", &corpus, "--min-sessions", "20", "--fail-on-regression"], &db);
    assert_eq!(better.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&better.stderr));
    assert!(String::from_utf8_lossy(&better.stdout).contains("significantly better on aligned messages"));

    // The same regression on too few sessions names nobody and fails nothing.
    let small = switchyard(&["replay", "digital_certificate", "--candidate", "v2", "--corpus", &corpus, "--fail-on-regression"], &db);
    assert_eq!(small.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&small.stdout).contains("not enough data yet: 30 sessions replayed, 70 more needed"));
}

#[tokio::test]
async fn bad_input_is_one_line_naming_it() {
    let db = fresh_db();
    let cases: [(&[&str], &str); 4] = [
        (&["replay", "digital_certificat", "--candidate", "v2"], "flow 'digital_certificat' is not compiled in"),
        (&["replay", "digital_certificate", "--candidate", "v9"], "--candidate: flow 'digital_certificate' has no version v9"),
        (&["replay", "digital_certificate", "--candidate", "v2", "--since", "yesterday"], "--since"),
        (&["replay", "digital_certificate", "--candidate", "v2", "--corpus", "/nonexistent/corpus.jsonl"], "--corpus /nonexistent/corpus.jsonl"),
    ];
    for (args, expected) in cases {
        let output = switchyard(args, &db);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected) && stderr.lines().count() == 1, "{args:?}: {stderr}");
    }
    let path = std::env::temp_dir().join(format!("replay-bad-{}.jsonl", std::process::id()));
    std::fs::write(&path, "{\"session\":\"x\"}\n").unwrap();
    let output = switchyard(&["replay", "digital_certificate", "--candidate", "v2", "--corpus", &path.display().to_string()], &db);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains(":1: 'version' is missing"), "{stderr}");
}

#[tokio::test]
async fn an_erased_contact_is_neither_exported_nor_replayed() {
    let db = seeded().await;
    ok(&switchyard(&["sessions", "forget", V1_COMPLETE.0, "--reason", "titular pediu"], &db));
    let replayed = json(&switchyard(&["replay", "digital_certificate", "--candidate", "v2", "--json"], &db));
    assert_eq!((replayed["skipped"].as_u64(), replayed["aggregate"]["sessions"].as_u64()), (Some(1), Some(3)), "{replayed}");
    let export = switchyard(&["sessions", "export", "--flow", "digital_certificate", "--masked"], &db);
    assert_eq!(ok(&export).lines().count(), 3);
    assert!(String::from_utf8_lossy(&export.stderr).contains("exported 3 sessions of digital_certificate, masked; 1 left out"));
}
