//! Subroutes as versioned flows (#19 part 2), end to end: the real `serve`
//! binary on loopback, webhooks in, a stand-in Evolution API out, and the CLI
//! on the same store. `digital_certificate@v4` calls `dc_purchase`,
//! `dc_renewal` (which calls `dc_purchase` itself when a certificate cannot
//! be renewed), `dc_support`, `dc_requirements` and `dc_status`; each call is
//! a session of its own, resolved by the callee's policy.
//!
//! - a callee split inside a fixed parent, reported per callee version
//!   (`report`, `explain`, `rollout status`, `audit ran`), on SQLite and on
//!   PostgreSQL (skipped with a note where none answers);
//! - a customer mid-call keeps the callee version when its policy changes;
//! - evacuating a callee version restarts the frame under the same caller;
//! - expiry, a global command and a handoff end the whole stack, each frame
//!   recorded at its own step (the innermost at the customer's).

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::{upsert, wait_until, ServeProcess, StandIn};

const TOKEN: &str = "tok";

fn switchyard(args: &[&str], db: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args);
    for name in ["FLOW_VERSION_OVERRIDES", "SESSION_TTL", "HANDOFF_TTL", "SWITCHYARD_CONFIG"] {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", db).env("USER", "ana").output().unwrap()
}

fn ok(output: &Output) -> String {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_str(&ok(output)).unwrap()
}

/// The store under a `serve` process, read directly by the test.
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Pool {
    async fn connect(db: &str) -> Pool {
        if db.starts_with("sqlite:") {
            Pool::Sqlite(sqlx::SqlitePool::connect(db).await.unwrap())
        } else {
            Pool::Postgres(sqlx::PgPool::connect(db).await.unwrap())
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        match self {
            Pool::Sqlite(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await.unwrap(),
            Pool::Postgres(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await.unwrap(),
        }
    }

    /// (flow, version, step, outcome or "live", depth, parent's flow or "-")
    /// of every session of `contact`, oldest first.
    async fn stack_of(&self, contact: &str) -> Vec<(String, i64, String, String, i64, String)> {
        let sql = format!(
            "SELECT s.flow, CAST(s.version AS BIGINT), s.step, COALESCE(s.outcome, 'live'), CAST(s.depth AS BIGINT), COALESCE(p.flow, '-') \
             FROM sessions s LEFT JOIN sessions p ON p.id = s.parent WHERE s.contact = '{contact}' ORDER BY s.started_at, s.depth"
        );
        match self {
            Pool::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.unwrap(),
            Pool::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.unwrap(),
        }
    }

    /// Every inbox entry processed and every reply sent or failed.
    async fn wait_idle(&self) {
        wait_until(|| async {
            self.count(
                "SELECT (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL) + \
                 (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL)",
            )
            .await
                == 0
        })
        .await;
    }
}

/// One `serve` process with the admin API on, and what the test needs around it.
struct Deployment {
    db: String,
    evolution: StandIn,
    server: ServeProcess,
    pool: Pool,
    http: reqwest::Client,
    next_message: std::sync::atomic::AtomicU32,
}

impl Deployment {
    async fn start(db: &str, env: &[(&str, &str)]) -> Deployment {
        let evolution = StandIn::start().await;
        let mut all = vec![("ADMIN_TOKENS", "ops=tok")];
        all.extend_from_slice(env);
        let server = ServeProcess::start(db, &evolution, &all).await;
        let pool = Pool::connect(db).await;
        Deployment { db: db.to_owned(), evolution, server, pool, http: support::http(), next_message: Default::default() }
    }

    /// The customer says `text`; returns once the turn is committed and its replies sent.
    async fn say(&self, contact: &str, text: &str) {
        self.post(contact, text).await;
        self.pool.wait_idle().await;
    }

    async fn post(&self, contact: &str, text: &str) {
        let n = self.next_message.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = upsert(&format!("SUB-{n}"), contact, text, 1_795_000_000 + i64::from(n));
        let response = self.http.post(format!("{}/webhooks/evolution", self.server.url)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Several customers' conversations side by side: each round, every
    /// customer with a message left sends it, then every turn is waited for.
    async fn conversations(&self, scripts: &[(&str, &[&str])]) {
        let rounds = scripts.iter().map(|(_, messages)| messages.len()).max().unwrap_or(0);
        for round in 0..rounds {
            for (contact, messages) in scripts {
                if let Some(text) = messages.get(round) {
                    self.post(contact, text).await;
                }
            }
            self.pool.wait_idle().await;
        }
    }

    async fn conversation(&self, contact: &str, messages: &[&str]) {
        for text in messages {
            self.say(contact, text).await;
        }
    }

    /// What the customer received, in order.
    fn received(&self, contact: &str) -> Vec<String> {
        self.evolution.sent().into_iter().filter(|sent| sent.number == contact).map(|sent| sent.text).collect()
    }

    async fn api(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}{path}", self.server.url)).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Waits until the server resolves `flow` for `contact` with `reason` (it polls the policy).
    async fn wait_for_policy(&self, flow: &str, contact: &str, reason: &str) {
        let path = format!("/api/explain?flow={flow}&contact={contact}&instance=loja-bot");
        wait_until(|| async { self.api(&path).await["reason"] == reason }).await;
    }

    fn cli(&self, args: &[&str]) -> String {
        ok(&switchyard(args, &self.db))
    }
}

const BUY_AT_ONCE: &[&str] = &["quero comprar e-cpf a1, cpf 529.982.247-25, ana@exemplo.com", "sim"];
/// A renewal that cannot be (expired long ago): the renewal calls the purchase.
const RENEW_THEN_BUY: &[&str] =
    &["preciso renovar o certificado", "111.444.777-35", "1", "e-cpf a3 token, ana@exemplo.com", "111.444.777-35", "sim"];

fn contact(n: usize) -> String {
    format!("55119{n:08}")
}

/// The split test, on whichever backend `db` is.
async fn callee_split_inside_a_fixed_parent(db: &str) {
    let app = Deployment::start(db, &[]).await;
    app.cli(&["rollout", "promote", "digital_certificate@v4", "--reason", "the parent under test"]);
    app.cli(&["rollout", "split", "dc_purchase", "v1=50,v2=50", "--reason", "v2's shorter questions"]);
    app.wait_for_policy("dc_purchase", &contact(1), "split").await;

    // Ten customers buy straight away; four renew a certificate that expired
    // long ago and buy from inside the renewal (a second parent).
    let buyers: Vec<String> = (1..=10).map(contact).collect();
    let renewers: Vec<String> = (11..=14).map(contact).collect();
    let scripts: Vec<(&str, &[&str])> = buyers
        .iter()
        .map(|buyer| (buyer.as_str(), BUY_AT_ONCE))
        .chain(renewers.iter().map(|renewer| (renewer.as_str(), RENEW_THEN_BUY)))
        .collect();
    app.conversations(&scripts).await;

    // The parent is fixed: every digital_certificate session is v4, and completed.
    assert_eq!(app.pool.count("SELECT COUNT(*) FROM sessions WHERE flow = 'digital_certificate' AND version <> 4").await, 0);
    assert_eq!(app.pool.count("SELECT COUNT(*) FROM sessions WHERE flow = 'digital_certificate' AND outcome = 'completed'").await, 14);
    // Each customer's purchase is a session of its own under its caller.
    let mut got: Vec<(String, i64)> = Vec::new();
    for customer in buyers.iter().chain(&renewers) {
        let stack = app.pool.stack_of(customer).await;
        let purchase: Vec<_> = stack.iter().filter(|row| row.0 == "dc_purchase").collect();
        assert_eq!(purchase.len(), 1, "{customer}: {stack:?}");
        let (_, version, step, outcome, depth, caller) = purchase[0];
        assert_eq!((step.as_str(), outcome.as_str()), ("purchase.order", "completed"), "{customer}");
        let expected_caller = if renewers.contains(customer) { ("dc_renewal", 2) } else { ("digital_certificate", 1) };
        assert_eq!((caller.as_str(), *depth), expected_caller, "{customer}: {stack:?}");
        // The API's session history names each frame's caller and depth.
        let history = app.api(&format!("/api/sessions/{customer}")).await;
        let sessions = history.as_array().unwrap();
        let frame = sessions.iter().find(|session| session["flow"] == "dc_purchase").unwrap();
        let called_by = sessions.iter().find(|session| session["id"] == frame["parent"]).unwrap_or_else(|| panic!("{customer}: {history:#}"));
        assert_eq!((called_by["flow"].as_str(), frame["depth"].as_i64()), (Some(expected_caller.0), Some(expected_caller.1)), "{frame}");
        let outermost = sessions.iter().find(|session| session["flow"] == "digital_certificate").unwrap();
        assert_eq!((outermost["parent"].is_null(), outermost["depth"].as_i64()), (true, Some(0)), "{outermost}");
        // `explain` on the callee names the version its call got.
        let explained = app.api(&format!("/api/explain?flow=dc_purchase&contact={customer}&instance=loja-bot")).await;
        assert_eq!((explained["version"].as_str(), explained["reason"].as_str()), (Some(format!("v{version}").as_str()), Some("split")));
        got.push((customer.clone(), *version));
    }
    // The CLI's `explain` says the same (one customer is enough).
    let (customer, version) = &got[0];
    let explained = json(&switchyard(&["explain", "--flow", "dc_purchase", "--contact", customer, "--instance", "loja-bot", "--json"], db));
    assert_eq!(explained["version"], format!("v{version}"));
    assert_eq!(explained["called_by"], serde_json::json!(["dc_renewal@v1 at renewal.check_certificate", "digital_certificate@v4 at purchase"]));
    let api = app.api(&format!("/api/explain?flow=dc_purchase&contact={customer}&instance=loja-bot")).await;
    assert_eq!(api["called_by"], explained["called_by"], "the API explains a callee as the CLI does: {api}");
    let count = |version: i64| got.iter().filter(|(_, v)| *v == version).count() as u64;
    let (v1, v2) = (count(1), count(2));
    assert!(v1 > 0 && v2 > 0, "a 50/50 split of 14 customers uses both versions: {got:?}");
    // v2's wording reached exactly the customers its split chose.
    for (customer, version) in &got {
        let saw_v2 = app.received(customer).iter().any(|text| text.contains("Posso criar o pedido?"));
        assert_eq!(saw_v2, *version == 2, "{customer} on v{version}");
    }

    // `report dc_purchase` compares the callee's versions, whichever parent called them.
    let report = json(&switchyard(&["report", "dc_purchase", "--json"], db));
    let figures = |version: &str| report["versions"].as_array().unwrap().iter().find(|row| row["version"] == version).cloned().unwrap();
    for (version, expected) in [("v1", v1), ("v2", v2)] {
        let row = figures(version);
        assert_eq!((row["started"].as_u64(), row["completed"].as_u64(), row["live"].as_u64()), (Some(expected), Some(expected), Some(0)), "{row}");
        assert_eq!(row["funnel"][0]["step"], "purchase.order");
    }
    assert!(!report["sample_ratio"].is_null(), "the split's sample ratio is checked: {report}");
    let api = app.api("/api/report?flow=dc_purchase").await;
    assert_eq!(api["versions"], report["versions"], "the API's report is the CLI's");
    // The parent's report counts its own sessions, not its callees'.
    let parent = json(&switchyard(&["report", "digital_certificate", "--json"], db));
    let v4 = parent["versions"].as_array().unwrap().iter().find(|row| row["version"] == "v4").unwrap();
    assert_eq!(v4["started"], 14);

    // `audit ran` and `rollout status` per callee version.
    let ran = json(&switchyard(&["audit", "ran", "--flow", "dc_purchase", "--from", "2020-01-01", "--to", "2099-01-01", "--json"], db));
    let ran: Vec<(String, u64)> =
        ran.as_array().unwrap().iter().map(|row| (row["version"].as_str().unwrap().to_owned(), row["sessions"].as_u64().unwrap())).collect();
    assert_eq!(ran, vec![("v1".to_owned(), v1), ("v2".to_owned(), v2)]);
    let status = json(&switchyard(&["rollout", "status", "dc_purchase", "--json"], db));
    let share: f64 = status.as_array().unwrap().iter().map(|row| row["share_last_hour_percent"].as_f64().unwrap()).sum();
    assert!((share - 100.0).abs() < 0.01, "{status}");
    assert!(status.as_array().unwrap().iter().all(|row| row["live_sessions"] == 0), "{status}");
}

#[tokio::test]
async fn a_callee_split_inside_a_fixed_parent_is_reported_per_callee_version_on_sqlite() {
    callee_split_inside_a_fixed_parent(&support::fresh_db()).await;
}

#[tokio::test]
async fn a_callee_split_inside_a_fixed_parent_is_reported_per_callee_version_on_postgres() {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    callee_split_inside_a_fixed_parent(&db).await;
}

#[tokio::test]
async fn a_customer_mid_call_keeps_the_callee_version_when_its_policy_changes() {
    let db = support::fresh_db();
    let app = Deployment::start(&db, &[]).await;
    let (early, late) = (contact(21), contact(22));
    app.cli(&["rollout", "promote", "digital_certificate@v4", "--reason", "the parent under test"]);
    app.cli(&["rollout", "promote", "dc_purchase@v2", "--reason", "try v2"]);
    app.wait_for_policy("dc_purchase", &early, "promote").await;

    app.conversation(&early, &["quero comprar um certificado", "1"]).await;
    let live = |stack: &[(String, i64, String, String, i64, String)]| {
        stack.iter().filter(|row| row.3 == "live").map(|row| (row.0.clone(), row.1)).collect::<Vec<_>>()
    };
    let stack = app.pool.stack_of(&early).await;
    assert_eq!(live(&stack), vec![("digital_certificate".to_owned(), 4), ("dc_purchase".to_owned(), 2)]);

    // The policy moves back to v1 while the customer is inside the call.
    app.cli(&["rollout", "clear", "dc_purchase", "--reason", "v2 converts worse"]);
    app.wait_for_policy("dc_purchase", &early, "active").await;
    app.conversation(&early, &["529.982.247-25 ana@exemplo.com", "sim"]).await;
    let stack = app.pool.stack_of(&early).await;
    let purchases: Vec<_> = stack.iter().filter(|row| row.0 == "dc_purchase").map(|row| (row.1, row.3.as_str())).collect();
    assert_eq!(purchases, vec![(2, "completed")], "one frame, kept on v2 to the end: {stack:?}");
    assert!(app.received(&early).last().unwrap().contains("criado!"), "{:?}", app.received(&early));
    assert!(app.received(&early).iter().any(|text| text.contains("Posso criar o pedido?")), "v2's summary after the change");

    // A call that starts now gets v1.
    app.conversation(&late, &["quero comprar um certificado"]).await;
    assert_eq!(live(&app.pool.stack_of(&late).await), vec![("digital_certificate".to_owned(), 4), ("dc_purchase".to_owned(), 1)]);
}

#[tokio::test]
async fn evacuating_a_callee_version_restarts_its_frame_under_the_same_caller() {
    let db = support::fresh_db();
    let app = Deployment::start(&db, &[]).await;
    let (first, second) = (contact(31), contact(32));
    app.cli(&["rollout", "promote", "digital_certificate@v4", "--reason", "the parent under test"]);
    app.cli(&["rollout", "promote", "dc_purchase@v2", "--reason", "try v2"]);
    app.wait_for_policy("dc_purchase", &first, "promote").await;
    for customer in [&first, &second] {
        app.conversation(customer, &["quero comprar um e-cpf a1"]).await;
    }
    // Refused while new calls would still get v2.
    let refused = switchyard(&["rollout", "evacuate", "dc_purchase@v2", "--reason", "bug in v2"], &db);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("still resolve to v2"), "{}", String::from_utf8_lossy(&refused.stderr));

    app.cli(&["rollout", "clear", "dc_purchase", "--reason", "bug in v2"]);
    let moved = app.cli(&["rollout", "evacuate", "dc_purchase@v2", "--reason", "bug in v2"]);
    assert!(moved.starts_with("2 live dc_purchase@v2 sessions restarted"), "{moved}");
    app.pool.wait_idle().await;
    for customer in [&first, &second] {
        let stack = app.pool.stack_of(customer).await;
        let rows: Vec<(&str, i64, &str, i64, &str)> =
            stack.iter().filter(|row| row.0 != "unknown").map(|row| (row.0.as_str(), row.1, row.3.as_str(), row.4, row.5.as_str())).collect();
        assert_eq!(
            rows,
            vec![
                ("digital_certificate", 4, "live", 0, "-"),
                ("dc_purchase", 2, "cancelled", 1, "digital_certificate"),
                ("dc_purchase", 1, "live", 1, "digital_certificate"),
            ],
            "{customer}"
        );
        assert!(app.received(customer).iter().any(|text| text.starts_with("Desculpe, precisei reiniciar")), "{:?}", app.received(customer));
    }
    // The caller is the same session: both frames name it.
    assert_eq!(
        app.pool.count(&format!("SELECT COUNT(DISTINCT parent) FROM sessions WHERE flow = 'dc_purchase' AND contact = '{first}'")).await,
        1
    );
    assert_eq!(app.pool.count("SELECT COUNT(*) FROM sessions WHERE flow = 'dc_purchase' AND version = 2 AND outcome IS NULL").await, 0);

    // The purchase goes on on v1 with what v2 collected (the product, by the step map).
    app.conversation(&first, &["529.982.247-25 ana@exemplo.com"]).await;
    let summary = app.received(&first).last().cloned().unwrap();
    assert!(summary.contains("e-CPF A1") && summary.contains("Está tudo certo?"), "v1's summary with the carried product: {summary}");
    app.conversation(&first, &["sim"]).await;
    let outcomes: Vec<(String, i64, String)> =
        app.pool.stack_of(&first).await.into_iter().filter(|row| row.0 != "unknown").map(|row| (row.0, row.1, row.3)).collect();
    assert_eq!(outcomes[0], ("digital_certificate".to_owned(), 4, "completed".to_owned()));
    assert_eq!(outcomes[2], ("dc_purchase".to_owned(), 1, "completed".to_owned()));

    let audit = json(&switchyard(&["audit", "--flow", "dc_purchase", "--json"], &db));
    let evacuation = audit.as_array().unwrap().iter().find(|record| record["action"] == "evacuate").expect("audited");
    assert_eq!((evacuation["reason"].as_str(), evacuation["after"]["sessions"].as_i64()), (Some("bug in v2"), Some(2)));
    let status = json(&switchyard(&["rollout", "status", "dc_purchase", "--json"], &db));
    let live = |version: &str| status.as_array().unwrap().iter().find(|row| row["version"] == version).unwrap()["live_sessions"].as_i64();
    assert_eq!((live("v1"), live("v2")), (Some(1), Some(0)));
}

/// Every session of the contact but the entry flow's: (flow, step, outcome).
async fn ends(app: &Deployment, customer: &str) -> Vec<(String, String, String)> {
    let stack = app.pool.stack_of(customer).await;
    stack.into_iter().filter(|row| row.0 != "unknown").map(|row| (row.0, row.2, row.3)).collect()
}

fn rows(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    expected.iter().map(|(flow, step, outcome)| ((*flow).to_owned(), (*step).to_owned(), (*outcome).to_owned())).collect()
}

#[tokio::test]
async fn a_handoff_and_a_global_command_end_the_whole_stack_at_the_innermost_step() {
    let db = support::fresh_db();
    let app = Deployment::start(&db, &[]).await;
    let (asks, leaves, nested) = (contact(41), contact(42), contact(43));
    app.cli(&["rollout", "promote", "digital_certificate@v4", "--reason", "the parent under test"]);
    app.wait_for_policy("digital_certificate", &asks, "promote").await;

    app.conversation(&asks, &["quero renovar meu certificado", "529.982.247-25", "atendente"]).await;
    assert_eq!(
        ends(&app, &asks).await,
        rows(&[("digital_certificate", "renewal", "handoff"), ("dc_renewal", "renewal.confirm_renewal", "handoff")])
    );
    let before = app.received(&asks).len();
    app.say(&asks, "oi?").await;
    assert_eq!(app.received(&asks).len(), before, "the bot is silent after the handoff");

    app.conversation(&leaves, &["meu token do certificado não é reconhecido no computador", "sair"]).await;
    assert_eq!(
        ends(&app, &leaves).await,
        rows(&[("digital_certificate", "support", "cancelled"), ("dc_support", "support.troubleshoot", "cancelled")])
    );
    assert!(app.received(&leaves).last().unwrap().contains("encerrei o atendimento"));

    // Three frames deep: the purchase the renewal called.
    app.conversation(&nested, &["preciso renovar o certificado", "111.444.777-35", "1", "atendente"]).await;
    assert_eq!(
        ends(&app, &nested).await,
        rows(&[
            ("digital_certificate", "renewal", "handoff"),
            ("dc_renewal", "renewal.check_certificate", "handoff"),
            ("dc_purchase", "purchase.order", "handoff"),
        ])
    );
    // The funnel of each callee loses the customer where they were.
    let report = json(&switchyard(&["report", "dc_renewal", "--json"], &db));
    let funnel = &report["versions"][0]["funnel"];
    let at = |step: &str| funnel.as_array().unwrap().iter().find(|row| row["step"] == step).cloned().unwrap();
    assert_eq!(at("renewal.confirm_renewal")["handed_off_here"], 1, "{funnel}");
    assert_eq!(at("renewal.check_certificate")["handed_off_here"], 1, "{funnel}");
}

#[tokio::test]
async fn expiry_inside_a_call_ends_the_whole_stack_at_the_innermost_step() {
    let db = support::fresh_db();
    let app = Deployment::start(&db, &[("SESSION_TTL", "3s"), ("SWEEP_INTERVAL", "1s")]).await;
    let customer = contact(51);
    app.cli(&["rollout", "promote", "digital_certificate@v4", "--reason", "the parent under test"]);
    app.wait_for_policy("digital_certificate", &customer, "promote").await;
    app.conversation(&customer, &["preciso renovar o certificado", "111.444.777-35", "1"]).await;
    // The sweeper expires the outermost session's stack.
    wait_until(|| async { app.pool.count(&format!("SELECT COUNT(*) FROM sessions WHERE contact = '{customer}' AND outcome IS NULL")).await == 0 }).await;
    assert_eq!(
        ends(&app, &customer).await,
        rows(&[
            ("digital_certificate", "renewal", "expired"),
            ("dc_renewal", "renewal.check_certificate", "expired"),
            ("dc_purchase", "purchase.order", "expired"),
        ])
    );
    let report = json(&switchyard(&["report", "dc_purchase", "--json"], &db));
    let v1 = &report["versions"][0];
    assert_eq!((v1["version"].as_str(), v1["expired"].as_u64()), (Some("v1"), Some(1)), "{v1}");
    assert_eq!(v1["funnel"][0]["expired_here"], 1);
}

/// `chat`'s `/state` shows the frame the customer is talking to: the callee,
/// its version and the reason its call resolved it.
#[test]
fn chat_state_shows_the_called_flow_and_its_version() {
    use std::io::Write as _;
    let db = support::fresh_db();
    ok(&switchyard(&["rollout", "promote", "digital_certificate@v4", "--reason", "the parent under test"], &db));
    ok(&switchyard(&["rollout", "pin", "dc_purchase@v2", "5511900000061", "--reason", "tester on v2"], &db));
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["chat", "--json", "--contact", "5511900000061"])
        .env_remove("FLOW_VERSION_OVERRIDES")
        .env("DATABASE_URL", &db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all("quero comprar um certificado\n/state\n".as_bytes()).unwrap();
    let output = ok(&child.wait_with_output().unwrap());
    let state: Value = output.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).find(|line| line["type"] == "state").unwrap();
    assert_eq!((state["flow"].as_str(), state["version"].as_str(), state["step"].as_str()), (Some("digital_certificate"), Some("v4"), Some("purchase")));
    let calls = state["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{state}");
    assert_eq!((calls[0]["flow"].as_str(), calls[0]["version"].as_str(), calls[0]["step"].as_str(), calls[0]["reason"].as_str()), (Some("dc_purchase"), Some("v2"), Some("purchase.order"), Some("pin")));
}

/// A guard on a callee's split judges the callee's sessions: `dc_purchase@v2`
/// handing off more rolls `dc_purchase` back to v1, and the parent's policy
/// is untouched.
#[tokio::test]
async fn a_guard_on_a_callee_split_rolls_the_callee_back() {
    let db = support::fresh_db();
    let app = Deployment::start(&db, &[]).await;
    app.cli(&["rollout", "promote", "digital_certificate@v4", "--reason", "the parent under test"]);
    app.cli(&["rollout", "split", "dc_purchase", "v1=50,v2=50", "--guard", "handoff", "--guard-min-sessions", "5", "--reason", "guarded v2"]);
    app.wait_for_policy("dc_purchase", &contact(70), "split").await;
    // Customers on v2 give up and ask for a person; those on v1 buy.
    let mut scripts: Vec<(String, &[&str])> = Vec::new();
    for n in 70..90 {
        let customer = contact(n);
        let explained = app.api(&format!("/api/explain?flow=dc_purchase&contact={customer}&instance=loja-bot")).await;
        let script: &[&str] = if explained["version"] == "v2" { &["quero comprar um certificado", "atendente"] } else { BUY_AT_ONCE };
        scripts.push((customer, script));
    }
    let borrowed: Vec<(&str, &[&str])> = scripts.iter().map(|(customer, script)| (customer.as_str(), *script)).collect();
    app.conversations(&borrowed).await;
    let report = json(&switchyard(&["report", "dc_purchase", "--json"], &db));
    for row in report["versions"].as_array().unwrap() {
        assert!(row["finished"].as_u64().unwrap() >= 5, "both versions have enough finished sessions for the guard: {row}");
    }

    let checked = app.cli(&["rollout", "check-guards"]);
    assert!(checked.contains("dc_purchase: guard ROLLED BACK v2"), "{checked}");
    assert!(!checked.contains("digital_certificate: guard ROLLED BACK"), "{checked}");
    app.wait_for_policy("dc_purchase", &contact(99), "split").await;
    wait_until(|| async { app.api(&format!("/api/explain?flow=dc_purchase&contact={}&instance=loja-bot", contact(98))).await["version"] == "v1" }).await;
    let parent = app.api(&format!("/api/explain?flow=digital_certificate&contact={}&instance=loja-bot", contact(98))).await;
    assert_eq!((parent["version"].as_str(), parent["reason"].as_str()), (Some("v4"), Some("promote")));
    let audit = json(&switchyard(&["audit", "--flow", "dc_purchase", "--json"], &db));
    assert!(audit.as_array().unwrap().iter().any(|record| record["action"] == "guard_rollback" && record["actor"] == "guard"), "{audit}");
}
