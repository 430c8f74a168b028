//! LGPD erasure end to end: a real purchase through the real server (real
//! webhooks, a stand-in Evolution API), then `switchyard sessions forget`
//! as a process; afterwards no text column of any table holds the contact's
//! number, CPF or e-mail, nor do the raw bytes of the SQLite files (`.db`,
//! `-wal`, `-shm`), the report's counts are unchanged and the audit
//! records the erasure. The contact's `@lid` alias goes with its number.

mod support;

use std::process::{Command, Output};

use serde_json::{json, Value};
use support::{upsert, TestApp};

const NUMBER: &str = "5511911119999";
const CPF_DIGITS: &str = "52998224725";
const CPF: &str = "529.982.247-25";
const EMAIL: &str = "ana.souza@exemplo.com.br";

fn switchyard(args: &[&str], db: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args);
    for name in ["FLOW_VERSION_OVERRIDES", "SESSION_TTL", "HANDOFF_TTL", "SWITCHYARD_CONFIG"] {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", db).env("USER", "dpo");
    command.output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every (table, column, value) whose text contains `needle` (case-insensitive), over every text column of every table.
async fn rows_containing(pool: &sqlx::SqlitePool, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, c.name FROM sqlite_master m JOIN pragma_table_info(m.name) c \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND upper(c.type) IN ('TEXT', '')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(columns.len() > 30, "every text column is searched: {columns:?}");
    let mut found = Vec::new();
    for (table, column) in columns {
        let sql = format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\" WHERE instr(lower(CAST(\"{column}\" AS TEXT)), lower(?)) > 0");
        let hits: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(needle).fetch_all(pool).await.unwrap();
        found.extend(hits.into_iter().map(|value| format!("{table}.{column}: {}", value.unwrap_or_default())));
    }
    found
}

/// Which of `needles` (compared case-insensitively) occur anywhere in the
/// raw bytes of the SQLite database at `db` and its `-wal` and `-shm` files:
/// free pages, unused cell space and old WAL frames included.
fn raw_bytes_containing(db: &str, needles: &[&str]) -> Vec<String> {
    let path = db.strip_prefix("sqlite://").expect("a sqlite url");
    let mut found = Vec::new();
    let mut files = 0;
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        let Ok(bytes) = std::fs::read(&file) else { continue };
        files += 1;
        let bytes = bytes.to_ascii_lowercase();
        for needle in needles {
            let needle = needle.to_ascii_lowercase();
            let copies = bytes.windows(needle.len()).filter(|window| *window == needle.as_bytes()).count();
            if copies > 0 {
                found.push(format!("{file}: {copies} copies of {needle}"));
            }
        }
    }
    assert!(files >= 1, "the database file exists: {path}");
    found
}

fn versions(report: &str) -> Value {
    let report: Value = serde_json::from_str(report).unwrap();
    report["versions"].clone()
}

#[tokio::test]
async fn after_sessions_forget_no_row_holds_the_number_cpf_or_email_and_the_counts_and_audit_agree() {
    let app = TestApp::spawn().await;
    // One full purchase with CPF and e-mail, and another customer for contrast.
    let purchase = ["quero comprar um certificado", "1", "1", CPF, "Ana.Souza@Exemplo.com.br", "1", "sim"];
    for (idx, text) in purchase.iter().enumerate() {
        app.webhook(&upsert(&format!("ERASE-{idx}"), NUMBER, text, 1_795_000_000 + idx as i64)).await;
    }
    for (idx, text) in ["oi", "2"].iter().enumerate() {
        app.webhook(&upsert(&format!("KEEP-{idx}"), "5511911118888", text, 1_795_000_000 + idx as i64)).await;
    }
    app.wait_idle().await;
    let sent = app.evolution.sent();
    assert!(sent.iter().any(|send| send.number == NUMBER && send.text.contains("criado!")), "the purchase completed: {sent:#?}");
    let pool = sqlx::SqlitePool::connect(&app.db).await.unwrap();
    for needle in [NUMBER, CPF, EMAIL] {
        assert!(!rows_containing(&pool, needle).await.is_empty(), "the search finds {needle} before the erasure");
    }
    // A pin names the number in the policy and its audit record.
    ok(&switchyard(&["rollout", "pin", "digital_certificate@v2", NUMBER, "--reason", &format!("tester {NUMBER}")], &app.db));
    // A hold released by hand names the number in its audit record.
    app.webhook(&upsert("ERASE-HOLD", NUMBER, "atendente", 1_795_000_100)).await;
    app.wait_idle().await;
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM handoffs").await == 1 }).await;
    ok(&switchyard(&["handoff", "release", NUMBER, "--instance", "loja-bot", "--reason", "back to the bot"], &app.db));
    let audited = rows_containing(&pool, NUMBER).await;
    assert!(audited.iter().any(|row| row.starts_with("audit.after: ") && row.contains("\"instance\":\"loja-bot\"")), "the release's audit names the number: {audited:#?}");
    let reports_before = (
        ok(&switchyard(&["report", "digital_certificate", "--json"], &app.db)),
        ok(&switchyard(&["report", "unknown", "--json"], &app.db)),
    );

    let refused = switchyard(&["sessions", "forget", NUMBER], &app.db);
    assert!(!refused.status.success(), "--reason is required");
    let erased = ok(&switchyard(&["sessions", "forget", NUMBER, "--reason", "titular pediu a exclusão (ticket 4242)"], &app.db));
    assert!(erased.contains("erased 5511*******99"), "{erased}");
    assert!(!erased.contains(NUMBER), "{erased}");

    for needle in [NUMBER, CPF, CPF_DIGITS, EMAIL, "Ana.Souza", "11119999"] {
        let left = rows_containing(&pool, needle).await;
        assert!(left.is_empty(), "{needle} is still stored: {left:#?}");
    }
    // Nor on disk: not in free pages, unused cell space or the WAL.
    let on_disk = raw_bytes_containing(&app.db, &[NUMBER, CPF, CPF_DIGITS, EMAIL, "11119999"]);
    assert!(on_disk.is_empty(), "erased data is still on disk: {on_disk:#?}");
    // The other customer is untouched.
    assert!(!rows_containing(&pool, "5511911118888").await.is_empty());
    assert!(!raw_bytes_containing(&app.db, &["5511911118888"]).is_empty(), "the byte search finds what is stored");
    // The analytics are exactly the same.
    let reports_after = (
        ok(&switchyard(&["report", "digital_certificate", "--json"], &app.db)),
        ok(&switchyard(&["report", "unknown", "--json"], &app.db)),
    );
    assert_eq!(versions(&reports_after.0), versions(&reports_before.0));
    assert_eq!(versions(&reports_after.1), versions(&reports_before.1));
    assert!(reports_after.0.contains("\"started\":1"), "the compared report counts something: {}", reports_after.0);
    // The audit says who erased whom (by pseudonym), when and why.
    let audit: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["audit", "--json"], &app.db))).unwrap();
    let erasure = audit.iter().find(|record| record["action"] == "erasure").expect("an erasure record");
    assert_eq!(erasure["actor"], "cli:dpo");
    assert_eq!(erasure["reason"], "titular pediu a exclusão (ticket 4242)");
    let pseudonym = erasure["after"]["pseudonym"].as_str().unwrap();
    assert!(erasure["after"]["rows"]["sessions"].as_u64().unwrap() >= 2, "{erasure}");
    assert!(erasure["after"]["rows"]["outbox"].as_u64().unwrap() >= 7, "{erasure}");
    // History under the pseudonym still shows the journey, without the person.
    let history: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["sessions", "show", pseudonym, "--json"], &app.db))).unwrap();
    assert!(history.iter().any(|session| session["flow"] == "digital_certificate" && session["outcome"] == "completed"), "{history:#?}");
    app.stop().await;
}

#[tokio::test]
async fn the_admin_api_lists_ends_and_forgets_sessions_with_the_tokens_name_as_actor() {
    let app = TestApp::spawn_configured(|config| config.admin_tokens = vec![("suporte".to_owned(), "tok-suporte".to_owned())]).await;
    for (idx, text) in ["quero comprar um certificado", "1", CPF].iter().enumerate() {
        app.webhook(&upsert(&format!("API-{idx}"), NUMBER, text, 1_795_000_000 + idx as i64)).await;
    }
    app.webhook(&upsert("API-OTHER", "5511911117777", "oi", 1_795_000_000)).await;
    app.wait_idle().await;

    let (status, live) = app.get_admin("/api/sessions?flow=digital_certificate", "tok-suporte").await;
    assert_eq!(status, 200);
    let live = live.as_array().unwrap();
    assert_eq!(live.len(), 1, "{live:#?}");
    assert_eq!((live[0]["contact"].as_str(), live[0]["step"].as_str()), (Some(NUMBER), Some("purchase.choose_media")));
    let (status, body) = app.get_admin("/api/sessions?version=two", "tok-suporte").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("two"), "{body}");
    let (status, _) = app.get_admin("/api/sessions", "wrong").await;
    assert_eq!(status, 401);

    let (status, body) = app.post_admin("/api/sessions/5511911117777/end", json!({"reason": 7}), Some("tok-suporte")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("'reason'"), "{body}");
    let (status, body) = app.post_admin("/api/sessions/5511911117777/end", json!({"reason": "cliente pediu por telefone"}), Some("tok-suporte")).await;
    assert_eq!((status, body["ended"].as_u64()), (200, Some(1)));
    let (_, audit) = app.get_admin("/api/audit", "tok-suporte").await;
    let ending = audit.as_array().unwrap().iter().find(|record| record["action"] == "end_session").expect("an end is audited").clone();
    assert_eq!(body["audit_seqs"], json!([ending["seq"]]), "{body} {ending}");
    assert_eq!((ending["actor"].as_str(), ending["reason"].as_str(), ending["flow"].as_str()), (Some("suporte"), Some("cliente pediu por telefone"), Some("unknown")), "the session it ended was in the unknown-intent flow");
    assert!(!ending.to_string().contains("5511911117777") && ending.to_string().contains("77"), "only the masked tail: {ending}");
    let (status, body) = app.post_admin(&format!("/api/sessions/{NUMBER}/forget"), json!({"reason": " "}), Some("tok-suporte")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.post_admin(&format!("/api/sessions/{NUMBER}/forget"), json!({"reason": "pedido LGPD 77"}), Some("tok-suporte")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended"], 1, "the live purchase ended first: {body}");
    let pseudonym = body["pseudonym"].as_str().unwrap().to_owned();

    let pool = sqlx::SqlitePool::connect(&app.db).await.unwrap();
    for needle in [NUMBER, CPF, CPF_DIGITS] {
        let left = rows_containing(&pool, needle).await;
        assert!(left.is_empty(), "{needle} is still stored: {left:#?}");
    }
    let (_, history) = app.get_admin(&format!("/api/sessions/{NUMBER}"), "tok-suporte").await;
    assert_eq!(history, json!([]));
    let (_, history) = app.get_admin(&format!("/api/sessions/{pseudonym}"), "tok-suporte").await;
    let outcomes: Vec<&str> = history.as_array().unwrap().iter().map(|session| session["outcome"].as_str().unwrap_or("live")).collect();
    assert_eq!(outcomes, ["cancelled", "completed"], "{history:#}");
    let (_, audit) = app.get_admin("/api/audit", "tok-suporte").await;
    let erasure = audit.as_array().unwrap().iter().find(|record| record["action"] == "erasure").expect("audited").clone();
    assert_eq!((erasure["actor"].as_str(), erasure["reason"].as_str()), (Some("suporte"), Some("pedido LGPD 77")));
    let (_, openapi) = app.get("/api/openapi.json").await;
    for path in ["/api/sessions", "/api/sessions/{contact}", "/api/sessions/{contact}/end", "/api/sessions/{contact}/forget"] {
        assert!(openapi.contains(&format!("\"{path}\"")), "{path} documented");
    }
    app.stop().await;
}

/// Every (table, column, value) on PostgreSQL whose text contains `needle`,
/// over every text column of every table of the test's schema.
async fn pg_rows_containing(pool: &sqlx::PgPool, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns \
         WHERE table_schema = current_schema() AND data_type = 'text' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(columns.len() > 30, "every text column is searched: {columns:?}");
    let mut found = Vec::new();
    for (table, column) in columns {
        let sql = format!("SELECT \"{column}\" FROM \"{table}\" WHERE strpos(lower(\"{column}\"), lower($1)) > 0");
        let hits: Vec<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(needle).fetch_all(pool).await.unwrap();
        found.extend(hits.into_iter().map(|value| format!("{table}.{column}: {}", value.unwrap_or_default())));
    }
    found
}

/// The same erasure on PostgreSQL, through a real `serve` process.
#[tokio::test]
async fn on_postgres_too_forget_leaves_no_trace_and_the_counts_stand() {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    let evolution = support::StandIn::start().await;
    let server = support::ServeProcess::start(&db, &evolution, &[]).await;
    let http = support::http();
    let purchase = ["quero comprar um certificado", "1", "1", CPF, "Ana.Souza@Exemplo.com.br", "1", "sim"];
    for (idx, text) in purchase.iter().enumerate() {
        let body = upsert(&format!("PG-ERASE-{idx}"), NUMBER, text, 1_795_000_000 + idx as i64);
        assert_eq!(http.post(format!("{}/webhooks/evolution", server.url)).json(&body).send().await.unwrap().status(), 200);
    }
    let body = upsert("PG-KEEP-0", "5511911118888", "oi", 1_795_000_000);
    assert_eq!(http.post(format!("{}/webhooks/evolution", server.url)).json(&body).send().await.unwrap().status(), 200);
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    support::wait_until(|| async {
        let waiting: i64 = sqlx::query_scalar("SELECT (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL) + (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL)")
            .fetch_one(&pool)
            .await
            .unwrap();
        waiting == 0 && evolution.sent().iter().any(|send| send.number == NUMBER && send.text.contains("criado!"))
    })
    .await;
    for needle in [NUMBER, CPF, EMAIL] {
        assert!(!pg_rows_containing(&pool, needle).await.is_empty(), "the search finds {needle} before the erasure");
    }
    ok(&switchyard(&["rollout", "pin", "digital_certificate@v2", NUMBER, "--reason", &format!("tester {NUMBER}")], &db));
    let before = ok(&switchyard(&["report", "digital_certificate", "--json"], &db));

    let erased = ok(&switchyard(&["sessions", "forget", NUMBER, "--reason", "titular pediu a exclusão"], &db));
    assert!(erased.contains("erased 5511*******99") && !erased.contains(NUMBER), "{erased}");
    for needle in [NUMBER, CPF, CPF_DIGITS, EMAIL, "Ana.Souza", "11119999"] {
        let left = pg_rows_containing(&pool, needle).await;
        assert!(left.is_empty(), "{needle} is still stored: {left:#?}");
    }
    assert!(!pg_rows_containing(&pool, "5511911118888").await.is_empty(), "the other customer is untouched");
    let after = ok(&switchyard(&["report", "digital_certificate", "--json"], &db));
    assert_eq!(versions(&after), versions(&before));
    assert!(after.contains("\"started\":1"), "{after}");
    let audit: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["audit", "--json"], &db))).unwrap();
    assert!(audit.iter().any(|record| record["action"] == "erasure" && record["actor"] == "cli:dpo"), "{audit:#?}");
}

const LID: &str = "204837561234567";
const ALIAS_NUMBER: &str = "5511933332222";

/// A customer message whose `key` is `key` (Evolution's LID shapes).
fn upsert_keyed(key: Value, text: &str, timestamp: i64) -> Value {
    let mut body = upsert("unused", ALIAS_NUMBER, text, timestamp);
    body["data"]["key"] = key;
    body
}

/// Evolution 2.3.5+: first a message while WhatsApp only gave the `@lid`
/// (no alternative JID), then the purchase from the phone number with the
/// LID as `remoteJidAlt`.
fn lid_then_phone_conversation() -> Vec<Value> {
    let mut bodies = vec![upsert_keyed(
        json!({"remoteJid": format!("{LID}@lid"), "fromMe": false, "id": "LID-ONLY-1", "addressingMode": "lid"}),
        &format!("oi, meu cpf é {CPF} e meu email {EMAIL}"),
        1_795_000_000,
    )];
    let purchase = ["quero comprar um certificado", "1", "1", CPF, EMAIL, "1", "sim"];
    for (idx, text) in purchase.iter().enumerate() {
        bodies.push(upsert_keyed(
            json!({"remoteJid": format!("{ALIAS_NUMBER}@s.whatsapp.net"), "remoteJidAlt": format!("{LID}@lid"),
                   "fromMe": false, "id": format!("ALT-{idx}"), "addressingMode": "pn"}),
            text,
            1_795_000_100 + idx as i64,
        ));
    }
    bodies
}

/// Every spelling of the number an operator may have typed in a reason.
const SPELLED: [&str; 3] = ["+55 11 93333-2222", "(11) 93333-2222", "11933332222"];

#[tokio::test]
async fn forgetting_a_phone_number_also_erases_what_was_stored_under_its_lid() {
    let app = TestApp::spawn().await;
    for body in lid_then_phone_conversation() {
        assert_eq!(app.webhook(&body).await.0, 200, "{body}");
    }
    app.wait_idle().await;
    assert!(app.evolution.sent().iter().any(|send| send.number == format!("{LID}@lid")), "the LID-only message was answered on the LID");
    assert!(app.evolution.sent().iter().any(|send| send.number == ALIAS_NUMBER && send.text.contains("criado!")), "the purchase completed");
    let pool = sqlx::SqlitePool::connect(&app.db).await.unwrap();
    // A handler panic quoting the customer (free text in the event log).
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO events (session_id, flow, version, at, step, kind, detail) \
         SELECT id, flow, version, started_at, step, 'failed', 'panic: cpf {CPF} email {EMAIL}' FROM sessions WHERE contact = '{LID}'"
    )))
    .execute(&pool)
    .await
    .unwrap();
    for needle in [LID, ALIAS_NUMBER, CPF, EMAIL] {
        assert!(!rows_containing(&pool, needle).await.is_empty(), "the search finds {needle} before the erasure");
    }
    // The history of the number shows the sessions held under its LID too.
    let history: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["sessions", "show", ALIAS_NUMBER, "--json"], &app.db))).unwrap();
    let contacts: Vec<&str> = history.iter().filter_map(|session| session["contact"].as_str()).collect();
    assert!(contacts.contains(&LID) && contacts.contains(&ALIAS_NUMBER), "{history:#?}");
    // Audit reasons naming the number in other spellings.
    ok(&switchyard(&["rollout", "pin", "digital_certificate@v2", ALIAS_NUMBER, "--reason", &format!("tester {}", SPELLED[0])], &app.db));
    ok(&switchyard(&["rollout", "unpin", "digital_certificate", ALIAS_NUMBER, "--reason", &format!("done: {} / {}", SPELLED[1], SPELLED[2])], &app.db));

    let erased = ok(&switchyard(&["sessions", "forget", ALIAS_NUMBER, "--reason", "titular pediu a exclusão"], &app.db));
    assert!(!erased.contains(ALIAS_NUMBER) && !erased.contains(LID), "{erased}");

    let needles = [LID, ALIAS_NUMBER, CPF, CPF_DIGITS, EMAIL, "93333-2222", "933332222"];
    for needle in needles {
        let left = rows_containing(&pool, needle).await;
        assert!(left.is_empty(), "{needle} is still stored: {left:#?}");
    }
    let on_disk = raw_bytes_containing(&app.db, &needles);
    assert!(on_disk.is_empty(), "erased data is still on disk: {on_disk:#?}");
    let history: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["sessions", "show", LID, "--json"], &app.db))).unwrap();
    assert_eq!(history, Vec::<Value>::new(), "nothing left under the LID");
    // Evolution redelivers an old message naming both ids: it is a
    // duplicate, and the link does not come back with it.
    let (status, body) = app.webhook(&lid_then_phone_conversation()[1]).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")), "{body}");
    for needle in [LID, ALIAS_NUMBER] {
        let left = rows_containing(&pool, needle).await;
        assert!(left.is_empty(), "{needle} came back: {left:#?}");
    }

    // The pseudonym is not a customer: a webhook from it is refused and starts nothing.
    let audit: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["audit", "--json"], &app.db))).unwrap();
    let pseudonym = audit.iter().find(|record| record["action"] == "erasure").expect("audited")["after"]["pseudonym"].as_str().unwrap().to_owned();
    let sessions_before = app.count("SELECT COUNT(*) FROM sessions").await;
    let (status, body) = app.webhook(&upsert("PSEUDO-1", &pseudonym, "oi", 1_795_000_900)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("pseudonym"), "{body}");
    let (status, _) = app.webhook(&upsert("REAL-1", "5511911117777", "oi", 1_795_000_901)).await;
    assert_eq!(status, 200, "a real customer's message right after is accepted");
    app.wait_idle().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, sessions_before + 1, "only the real customer started a session");
    assert!(app.evolution.sent().iter().all(|send| !send.number.contains(&pseudonym[..10])), "the pseudonym was never answered");
    app.stop().await;
}

/// The same on PostgreSQL: no row of either id survives, and the erasure
/// vacuums what it touched so no dead row version keeps them.
#[tokio::test]
async fn on_postgres_forgetting_a_phone_number_erases_its_lid_rows_too() {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    let evolution = support::StandIn::start().await;
    let server = support::ServeProcess::start(&db, &evolution, &[]).await;
    let http = support::http();
    for body in lid_then_phone_conversation() {
        assert_eq!(http.post(format!("{}/webhooks/evolution", server.url)).json(&body).send().await.unwrap().status(), 200);
    }
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    support::wait_until(|| async {
        let waiting: i64 = sqlx::query_scalar("SELECT (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL) + (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL)")
            .fetch_one(&pool)
            .await
            .unwrap();
        waiting == 0 && evolution.sent().iter().any(|send| send.number == ALIAS_NUMBER && send.text.contains("criado!"))
    })
    .await;
    ok(&switchyard(&["rollout", "pin", "digital_certificate@v2", ALIAS_NUMBER, "--reason", &format!("tester {}", SPELLED[1])], &db));
    for needle in [LID, ALIAS_NUMBER, CPF, EMAIL, "93333-2222"] {
        assert!(!pg_rows_containing(&pool, needle).await.is_empty(), "the search finds {needle} before the erasure");
    }
    let history: Vec<Value> = serde_json::from_str(&ok(&switchyard(&["sessions", "show", LID, "--json"], &db))).unwrap();
    assert!(history.iter().any(|session| session["contact"] == ALIAS_NUMBER), "the LID's history shows the number's sessions: {history:#?}");

    ok(&switchyard(&["sessions", "forget", ALIAS_NUMBER, "--reason", "titular pediu a exclusão"], &db));
    for needle in [LID, ALIAS_NUMBER, CPF, CPF_DIGITS, EMAIL, "93333-2222"] {
        let left = pg_rows_containing(&pool, needle).await;
        assert!(left.is_empty(), "{needle} is still stored: {left:#?}");
    }
    // The erasure vacuumed the tables it touched (a dead row version would
    // otherwise keep the old values until autovacuum came by).
    let vacuumed: Vec<(String,)> = sqlx::query_as(
        "SELECT relname::TEXT FROM pg_stat_user_tables WHERE schemaname = current_schema() AND last_vacuum IS NOT NULL ORDER BY relname",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let vacuumed: Vec<&str> = vacuumed.iter().map(|(name,)| name.as_str()).collect();
    for table in ["audit", "contact_aliases", "events", "inbox", "outbox", "sessions"] {
        assert!(vacuumed.contains(&table), "{table} was vacuumed: {vacuumed:?}");
    }
}
