//! Flows as data, end to end on loopback: a document published with
//! `POST /api/flows` reaches a second `serve` process within a second and
//! survives a restart; a split between a code and a data version of one
//! flow serves both (SQLite, and PostgreSQL with two real processes); every
//! refused document stores nothing; the `http` step against a stand-in
//! endpoint (success, timeout, 500, malformed JSON); the `call` step (a
//! document calls a compiled flow and gets control back; export of a
//! compiled call); the commands see published versions; the JSON Schema
//! matches the parser.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{fresh_db, upsert, ServeProcess, StandIn, TestApp};
use switchyard::document::http::{Caller, Endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "tok-docs-51a0";

/// The fixture document with its transcript inline (the API has no folder
/// to read a referenced one from).
fn billing_document() -> String {
    let source = include_str!("fixtures/documents/billing.toml");
    let transcript = include_str!("fixtures/documents/billing.txt");
    source.replace("transcripts = [\"billing.txt\"]", &format!("transcript = '''\n{transcript}'''"))
}

async fn publish(app: &TestApp, document: &str) -> (u16, Value) {
    app.post_admin("/api/flows", json!({"document": document, "reason": "flows as data test"}), Some(TOKEN)).await
}

async fn stored(app: &TestApp) -> (i64, i64) {
    (app.count("SELECT COUNT(*) FROM flow_documents").await, app.count("SELECT COUNT(*) FROM audit WHERE action = 'publish'").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_version_reaches_a_second_serve_within_a_second_and_survives_a_restart() {
    let db = fresh_db();
    let evolution = StandIn::start().await;
    let app = TestApp::spawn_with(&db, &evolution, |config| config.admin_tokens = vec![("ops".to_owned(), TOKEN.to_owned())]).await;
    let other = ServeProcess::start(&db, &evolution, &[("ADMIN_TOKEN", TOKEN)]).await;

    let (status, body) = publish(&app, &billing_document()).await;
    assert_eq!(status, 201, "{body}");
    let published = Instant::now();
    let version = body["version"].as_str().unwrap().to_owned();
    assert!(version.trim_start_matches('v').parse::<u32>().unwrap() >= 3, "after the compiled v1 and v2: {body}");
    assert_eq!(body["lifecycle"], "inactive");
    assert_eq!(body["fingerprint"].as_str().unwrap().len(), 64);
    let audit: (String, String) = sqlx::query_as("SELECT actor, after FROM audit WHERE action = 'publish'").fetch_one(app.pool()).await.unwrap();
    assert_eq!(audit.0, "ops");
    assert!(audit.1.contains(body["fingerprint"].as_str().unwrap()), "the audit names the fingerprint: {}", audit.1);

    // The other process accepts a pin to the new version once it has loaded it.
    let http = support::http();
    let pin = json!({"rules": {"pins": [{"contact": "5511911110001", "version": version}]}, "reason": "try the data version"});
    let mut loaded_after = None;
    while published.elapsed() < Duration::from_secs(5) {
        let response = http.put(format!("{}/api/rollout/billing", other.url)).bearer_auth(TOKEN).json(&pin).send().await.unwrap();
        if response.status() == 200 {
            loaded_after = Some(published.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let loaded_after = loaded_after.expect("the second serve never loaded the published version");
    assert!(loaded_after < Duration::from_secs(1), "loaded after {loaded_after:?}");

    // A second publish is the next version; the first is untouched.
    let (status, again) = publish(&app, &billing_document()).await;
    assert_eq!(status, 201, "{again}");
    assert_ne!(again["version"], body["version"]);
    assert_eq!(app.count("SELECT COUNT(*) FROM flow_documents").await, 2);

    // After a restart the versions are loaded from the store.
    app.stop().await;
    drop(other);
    let restarted = TestApp::spawn_with(&db, &evolution, |config| config.admin_tokens = vec![("ops".to_owned(), TOKEN.to_owned())]).await;
    let (status, body) = restarted.put_admin("/api/rollout/billing", pin.clone(), TOKEN).await;
    assert_eq!(status, 200, "the restarted serve knows {version}: {body}");
    restarted.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_between_a_code_version_and_a_data_version_serves_both() {
    let app = TestApp::spawn_configured(|config| config.admin_tokens = vec![("ops".to_owned(), TOKEN.to_owned())]).await;
    let (status, body) = publish(&app, &billing_document()).await;
    assert_eq!(status, 201, "{body}");
    let version = body["version"].as_str().unwrap().to_owned();
    let split = json!({"rules": {"split": {"weights": [["v1", "50"], [version.clone(), "50"]]}}, "reason": "code against data"});
    // The publishing serve loads the version at its next poll (100 ms).
    let started = Instant::now();
    let mut answer = app.put_admin("/api/rollout/billing", split.clone(), TOKEN).await;
    while answer.0 != 200 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        answer = app.put_admin("/api/rollout/billing", split.clone(), TOKEN).await;
    }
    assert_eq!(answer.0, 200, "the split names the data version: {}", answer.1);
    // The change applies at the serve's next policy poll (within 100 ms): wait for it, as a customer would not notice.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let (_, explained) = app.get_admin("/api/explain?flow=billing&contact=5511922200000", TOKEN).await;
        if explained.to_string().contains("split") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in 0..24 {
        let (status, _) = app.webhook(&upsert(&format!("DOCSPLIT{n:02}"), &format!("55119222{n:05}"), "segunda via do boleto", 1_764_000_000 + n)).await;
        assert_eq!(status, 200);
    }
    app.wait_idle().await;
    let versions: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT version, fingerprint, COUNT(*) FROM sessions WHERE flow = 'billing' GROUP BY version, fingerprint ORDER BY version")
            .fetch_all(app.pool())
            .await
            .unwrap();
    let wanted: i64 = version.trim_start_matches('v').parse().unwrap();
    assert!(versions.iter().any(|(number, _, _)| *number == 1), "code v1 served: {versions:?}");
    let data = versions.iter().find(|(number, _, _)| *number == wanted).unwrap_or_else(|| panic!("data {version} served: {versions:?}"));
    assert_eq!(data.1, body["fingerprint"].as_str().unwrap(), "sessions record the document's fingerprint");
    // The data version's sessions asked its own question.
    let texts: Vec<String> = sqlx::query_scalar("SELECT text FROM outbox").fetch_all(app.pool()).await.unwrap();
    assert!(texts.iter().any(|text| text.contains("Para a segunda via, me envie")), "{texts:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_document_is_refused_with_a_clear_error_and_stores_nothing() {
    let app = TestApp::spawn_configured(|config| {
        config.admin_tokens = vec![("ops".to_owned(), TOKEN.to_owned())];
        // The allow-list: one endpoint, `erp`.
        config.endpoints = vec![Endpoint { name: "erp".to_owned(), url: "http://127.0.0.1:9/api".to_owned(), headers: Vec::new(), timeout: Duration::from_secs(1) }];
    })
    .await;
    let good = billing_document();
    let many_steps: String = {
        let mut text = String::from("flow = \"billing\"\nentry = \"s0\"\n[texts]\nt = \"x\"\n");
        for n in 0..10_000 {
            text.push_str(&format!("[[steps]]\nid = \"s{n}\"\nkind = \"say\"\ntext = \"t\"\nthen = \"s{}\"\n", n + 1));
        }
        text
    };
    let http_step = |endpoint: &str, path: &str| {
        good.replace(
            "kind = \"action\"\nfunction = \"backend.open_invoice@1\"\non = { found = \"found\", none = \"none\", no_document = \"human\" }",
            &format!("kind = \"http\"\nendpoint = \"{endpoint}\"\nmethod = \"POST\"\npath = \"{path}\"\nthen = \"found\"\nfailure = \"human\""),
        )
    };
    let not_allowed = http_step("orders_api", "/orders");
    assert_ne!(not_allowed, good);
    let calling = call_document("dc_purchase@v1", CALL_TRANSCRIPT);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("malformed TOML", "flow = \"billing\"\nentry = ".to_owned(), 422, "line 2"),
        ("unknown function", good.replace("validate.document@1", "validate.documnet@1"), 422, "did you mean 'validate.document@1'"),
        ("unknown step", good.replace("then = \"lookup\"", "then = \"lookpu\""), 422, "did you mean 'lookup'"),
        ("missing text", good.replace("prompt = \"identify.prompt\"", "prompt = \"identify.promt\""), 422, "did you mean 'identify.prompt'"),
        ("10,000 steps", many_steps, 422, "the limit is 1000"),
        ("10 MB", format!("{good}\n# {}\n", "x".repeat(10 * 1024 * 1024)), 413, ""),
        ("endpoint not in the allow-list", not_allowed, 422, "endpoint 'orders_api', which the configuration's [endpoints] does not allow (allowed: erp)"),
        ("a URL outside the allow-list", http_step("erp", "https://evil.example/steal"), 422, "path 'https://evil.example/steal' must start with '/'"),
        ("credentials in the path", http_step("erp", "@evil.example/steal"), 422, "hold no host or credentials"),
        ("call of an unknown flow", calling.replace("\"dc_purchase@v1\"", "\"dc_purchse\""), 422, "step 'buy' calls unknown flow 'dc_purchse' (did you mean 'dc_purchase'?)"),
        ("call of a version that does not exist", calling.replace("\"dc_purchase@v1\"", "\"dc_purchase@v9\""), 422, "step 'buy' calls dc_purchase@v9, which does not exist (dc_purchase has v1, v2)"),
        ("call with a malformed version", calling.replace("\"dc_purchase@v1\"", "\"dc_purchase@1\""), 422, "call 'dc_purchase@1'"),
        ("call of its own flow", calling.replace("\"dc_purchase@v1\"", "\"digital_certificate\""), 422, "calls its own flow 'digital_certificate'"),
        ("failing transcript", good.replace("< R$ 289,90", "< R$ 1,00"), 422, "transcript"),
        ("no reason", good.clone(), 422, "reason"),
    ];
    for (name, document, status, says) in cases {
        let before = (stored(&app).await, support::snapshot(app.pool()).await);
        let reason = if name == "no reason" { "" } else { "refusal test" };
        let url = format!("http://{}/api/flows", app.addr);
        let sent = support::http().post(url).bearer_auth(TOKEN).json(&json!({"document": document, "reason": reason})).send().await;
        let (got, body) = match sent {
            Ok(response) => (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null)),
            // The server answers 413 and closes before the client has written the whole body.
            Err(_) if status == 413 => (413, Value::Null),
            Err(err) => panic!("{name}: {err}"),
        };
        assert_eq!(got, status, "{name}: {body}");
        if !says.is_empty() {
            assert!(body["error"].as_str().is_some_and(|error| error.contains(says)), "{name}: the error says {says:?}: {body}");
        }
        assert!((stored(&app).await, support::snapshot(app.pool()).await) == before, "{name}: nothing stored");
    }
    // The same documents without their defect are published.
    for document in [&good, &calling] {
        let (status, body) = publish(&app, document).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(stored(&app).await, (2, 2));
    app.stop().await;
}

/// A loopback HTTP server answering by path: `/ok` JSON, `/slow` too late,
/// `/fail` 500, `/bad` not JSON. Counts requests per path.
async fn stand_in() -> (String, Arc<[AtomicUsize; 4]>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
    let seen = Arc::clone(&counts);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let read = socket.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..read]).to_string();
                let path = request.split(' ').nth(1).unwrap_or("").to_owned();
                let (index, status, body) = match path.as_str() {
                    "/ok" => (0, "200 OK", r#"{"order":{"id":"A-1001","total":159.9}}"#),
                    "/slow" => (1, "200 OK", r#"{"order":{"id":"late"}}"#),
                    "/fail" => (2, "500 Internal Server Error", r#"{"error":"boom"}"#),
                    _ => (3, "200 OK", "<html>not json</html>"),
                };
                seen[index].fetch_add(1, Ordering::SeqCst);
                if index == 1 {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                let response = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, counts)
}

fn http_document(path: &str) -> String {
    format!(
        r#"flow = "billing"
entry = "ask"

[texts]
ask = "Qual o seu e-mail?"
bad = "E-mail inválido."
done = "Pedido {{order_id}} criado."
sorry = "Não consegui criar o pedido agora."
handoff = "Vou chamar uma pessoa."

[[steps]]
id = "ask"
kind = "ask"
prompt = "ask"
invalid = "bad"
save_as = "email"
validate = "validate.email@1"
then = "order"

[[steps]]
id = "order"
kind = "http"
endpoint = "erp"
method = "POST"
path = "{path}"
send = ["email"]
map = {{ order_id = "/order/id" }}
then = "done"
failure = "sorry"

[[steps]]
id = "done"
kind = "end"
text = "done"

[[steps]]
id = "sorry"
kind = "end"
text = "sorry"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_step_maps_success_and_takes_the_failure_branch_on_timeout_500_and_malformed_json() {
    use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound};
    use switchyard_engine::ids::{Contact, InstanceId};
    use switchyard_engine::memory::MemoryStore;
    use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
    use switchyard_engine::store::Store;

    let (url, counts) = stand_in().await;
    let endpoints = vec![Endpoint { name: "erp".to_owned(), url, headers: vec![("authorization".to_owned(), "Bearer s3cret".to_owned())], timeout: Duration::from_millis(500) }];
    let caller = Caller::new(endpoints).unwrap();
    let cases = [("/ok", "Pedido A-1001 criado.", 0, 1), ("/slow", "Não consegui criar o pedido agora.", 1, 2), ("/fail", "Não consegui criar o pedido agora.", 2, 2), ("/bad", "Não consegui criar o pedido agora.", 3, 1)];
    for (path, reply, index, calls) in cases {
        let document = switchyard::document::parse(&http_document(path)).unwrap();
        let code = switchyard_flows::registry(&switchyard_flows::Deps::demo()).unwrap();
        let version = switchyard::document::publish::next_version(&code, &[], "billing");
        let registry = Arc::new(switchyard::document::publish::extend(&code, &document, version, Some(&["erp".to_owned()])).unwrap());
        let overrides = Overrides::parse(&format!("billing=v{version}"), &registry).unwrap();
        let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
        let config = EngineConfig { entry_flow: switchyard_engine::ids::FlowId::new_static("billing"), ..EngineConfig::default() };
        let engine = Engine::new(registry, resolver, config).unwrap();
        let store = MemoryStore::new();
        let (instance, contact) = (InstanceId::parse("vendas").unwrap(), Contact::parse("5511933330001").unwrap());
        let mut last = Vec::new();
        for text in ["oi", "ana@example.com"] {
            let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text(text.to_owned()) };
            let state = store.contact_state(&instance, &contact).await.unwrap();
            let turn = switchyard_engine::service::run_turn_with(&engine, None, Some(&caller), state, &inbound, switchyard_engine::time::Timestamp::now_utc()).await;
            store.commit(&turn).await.unwrap();
            last = turn.replies.iter().map(|reply| reply.text.clone()).collect();
        }
        assert_eq!(last, vec![reply.to_owned()], "{path}");
        assert_eq!(counts[index].load(Ordering::SeqCst), calls, "{path}: calls made (one retry after a timeout or a 5xx)");
    }
}

/// The real binary with only `env` set (besides PATH), as a user runs it.
fn cli(args: &[&str], env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("USER", "docs-test");
    command.envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn switchyard");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().expect("wait");
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/documents/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `flows publish` from the command line, then every command that reads
/// versions sees the published one exactly like `serve` does: `flows`,
/// `flows show/graph/diff/snapshot/export`, `check`, `rollout pin`,
/// `explain`, `chat`, `report`, `audit` and `audit ran`.
#[test]
fn commands_see_a_version_published_to_the_store() {
    let db = fresh_db();
    let env = [("DATABASE_URL", db.as_str())];
    // Refused from the command line: one line naming the problem, exit 1, nothing stored.
    let dir = std::env::temp_dir().join(format!("switchyard-docs-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(fixture("billing.toml")).unwrap().replace("transcripts = [\"billing.txt\"]", &format!("transcripts = [\"{}\"]", fixture("billing.txt")));
    let refused = [
        ("malformed.toml", "flow = \"billing\"\nentry = ".to_owned(), "line 2"),
        ("unknown-function.toml", good.replace("validate.document@1", "validate.documnet@1"), "names unknown function 'validate.documnet@1' (did you mean 'validate.document@1'?)"),
        ("huge.toml", format!("{good}\n# {}\n", "x".repeat(10 * 1024 * 1024)), "the limit is 1048576 bytes"),
        ("many-steps.toml", (0..10_000).fold(String::from("flow = \"billing\"\nentry = \"s0\"\n[texts]\nt = \"x\"\n"), |text, n| text + &format!("[[steps]]\nid = \"s{n}\"\nkind = \"say\"\ntext = \"t\"\n")), "10000 steps; the limit is 1000"),
    ];
    for (name, document, says) in refused {
        let path = dir.join(name);
        std::fs::write(&path, document).unwrap();
        let (code, out, err) = cli(&["flows", "publish", path.to_str().unwrap(), "--reason", "refused"], &env, "");
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(err.contains(says) && err.lines().count() == 1, "{name}: {err}");
    }
    let (code, out, err) = cli(&["audit", "--json"], &env, "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[]", "nothing stored, nothing audited");
    let (code, out, err) = cli(&["flows", "publish", &fixture("billing.toml"), "--reason", "billing as data"], &env, "");
    assert_eq!(code, 0, "{out}{err}");
    // "published billing@vN (inactive), fingerprint F"
    let label = out.split_whitespace().nth(1).expect("the version").to_owned();
    let version = label.trim_start_matches("billing@").to_owned();
    let fingerprint = out.split("fingerprint ").nth(1).and_then(|rest| rest.split_whitespace().next()).expect("the fingerprint").to_owned();
    assert!(version.trim_start_matches('v').parse::<u32>().unwrap() >= 3, "{out}");
    let source = std::fs::read_to_string(fixture("billing.toml")).unwrap();
    assert_eq!(fingerprint, switchyard::document::parse(&source).unwrap().fingerprint());

    let (code, out, err) = cli(&["flows", "--json"], &env, "");
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    let row = rows.iter().find(|row| row["flow"] == "billing" && row["version"] == version.as_str()).unwrap_or_else(|| panic!("{label} listed: {out}"));
    assert_eq!((row["lifecycle"].as_str(), row["fingerprint"].as_str(), row["folder"].as_null()), (Some("inactive"), Some(fingerprint.as_str()), Some(())));

    let (code, out, err) = cli(&["flows", "show", &label], &env, "");
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("{label}  (inactive, 5 steps)")), "{out}");
    assert!(out.contains(&format!("fingerprint: {fingerprint}")) && out.contains("published to the store as a document"), "{out}");
    assert!(out.contains("identify") && out.contains("-> lookup"), "{out}");
    let (code, out, err) = cli(&["flows", "graph", &label], &env, "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("identify --> lookup"), "{out}");
    let (code, out, err) = cli(&["flows", "diff", "billing@v2", &label, "--json"], &env, "");
    assert_eq!(code, 0, "{err}");
    let diff: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(diff["fingerprints"]["to"].as_str(), Some(fingerprint.as_str()), "{out}");
    let (code, out, err) = cli(&["flows", "snapshot", &label, "--format", "json"], &env, "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&fingerprint), "{out}");
    // Export prints the published document itself.
    let (code, out, err) = cli(&["flows", "export", &label], &env, "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, source);
    let (code, out, err) = cli(&["check"], &env, "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(") && out.contains("1 published as documents)"), "{out}");

    // A pin names the data version; explain and a conversation follow it.
    let contact = "5511966660001";
    let (code, out, err) = cli(&["rollout", "pin", &label, contact, "--reason", "try the data version"], &env, "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = cli(&["explain", "--flow", "billing", "--contact", contact, "--json"], &env, "");
    assert_eq!(code, 0, "{err}");
    let explained: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((explained["version"].as_str(), explained["reason"].as_str()), (Some(version.as_str()), Some("pin")), "{out}");
    assert_eq!(explained["fingerprint"].as_str(), Some(fingerprint.as_str()), "{out}");
    // The deploy override may name it too.
    let overridden = format!("billing={version}");
    let with_override = [("DATABASE_URL", db.as_str()), ("FLOW_VERSION_OVERRIDES", overridden.as_str())];
    let (code, out, err) = cli(&["explain", "--flow", "billing", "--contact", "5511966660002", "--json"], &with_override, "");
    assert_eq!(code, 0, "{err}");
    let explained: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((explained["version"].as_str(), explained["reason"].as_str()), (Some(version.as_str()), Some("override")), "{out}");
    let (code, out, err) = cli(&["check"], &with_override, "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("overrides: {overridden}")), "{out}");
    let (code, out, err) = cli(&["chat", "--json", "--contact", contact], &env, "segunda via do boleto\n529.982.247-25\n");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Para a segunda via, me envie") && out.contains("R$ 289,90"), "{out}");

    let (code, out, err) = cli(&["report", "billing", "--json"], &env, "");
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let figures = report["versions"].as_array().unwrap().iter().find(|row| row["version"] == version.as_str()).unwrap_or_else(|| panic!("{label} in the report: {out}"));
    assert_eq!(figures["fingerprint"].as_str(), Some(fingerprint.as_str()), "{out}");
    assert_eq!(figures["started"].as_u64(), Some(1), "{out}");
    let (code, out, err) = cli(&["report", "billing"], &env, "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&version), "{out}");

    // The publish is audited: actor, reason, fingerprint.
    let (code, out, err) = cli(&["audit", "--flow", "billing", "--json"], &env, "");
    assert_eq!(code, 0, "{err}");
    let records: Vec<Value> = serde_json::from_str(&out).unwrap();
    let publish = records.iter().find(|record| record["action"] == "publish").unwrap_or_else(|| panic!("a publish record: {out}"));
    assert_eq!((publish["actor"].as_str(), publish["reason"].as_str()), (Some("cli:docs-test"), Some("billing as data")), "{out}");
    assert!(publish.to_string().contains(&fingerprint), "{publish}");
    let (code, out, err) = cli(&["audit", "ran", "--flow", "billing", "--from", "2020-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z", "--json"], &env, "");
    assert_eq!(code, 0, "{err}");
    let ran: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(ran.iter().any(|row| row["version"] == version.as_str() && row["fingerprint"] == fingerprint.as_str()), "{out}");
}

/// The same as the first test, on PostgreSQL with real `serve` processes:
/// a version published through one process reaches the other within a
/// second; a split between code v1 and the data version serves both from
/// both processes; a refused document stores nothing; after both
/// processes are gone a new one runs the version from the store. Skipped
/// where no PostgreSQL answers (fails instead with SWITCHYARD_REQUIRE_POSTGRES=1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_published_version_reaches_every_serve_survives_a_restart_and_splits_with_code() {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    let evolution = StandIn::start().await;
    let a = ServeProcess::start(&db, &evolution, &[("ADMIN_TOKEN", TOKEN)]).await;
    let b = ServeProcess::start(&db, &evolution, &[("ADMIN_TOKEN", TOKEN)]).await;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let http = support::http();
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };

    let response = http.post(format!("{}/api/flows", a.url)).bearer_auth(TOKEN).json(&json!({"document": billing_document(), "reason": "billing as data on postgres"})).send().await.unwrap();
    let published = Instant::now();
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.unwrap();
    let version = body["version"].as_str().unwrap().to_owned();
    let fingerprint = body["fingerprint"].as_str().unwrap().to_owned();
    let (actor, reason, after): (String, String, String) =
        sqlx::query_as("SELECT actor, reason, after FROM audit WHERE action = 'publish'").fetch_one(&pool).await.unwrap();
    assert_eq!((actor.as_str(), reason.as_str()), ("admin", "billing as data on postgres"));
    assert!(after.contains(&fingerprint), "the audit names the fingerprint: {after}");

    // b accepts a split naming the data version as soon as it has loaded it.
    let split = json!({"rules": {"split": {"weights": [["v1", "50"], [version.clone(), "50"]]}}, "reason": "code against data"});
    let mut loaded_after = None;
    while published.elapsed() < Duration::from_secs(5) {
        let response = http.put(format!("{}/api/rollout/billing", b.url)).bearer_auth(TOKEN).json(&split).send().await.unwrap();
        if response.status() == 200 {
            loaded_after = Some(published.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let loaded_after = loaded_after.expect("the second serve never loaded the published version");
    assert!(loaded_after < Duration::from_secs(1), "loaded after {loaded_after:?}");

    // A refused document stores nothing on PostgreSQL either.
    let before = (count("SELECT COUNT(*) FROM flow_documents").await, count("SELECT COUNT(*) FROM audit").await);
    let bad = billing_document().replace("validate.document@1", "validate.documnet@1");
    let response = http.post(format!("{}/api/flows", b.url)).bearer_auth(TOKEN).json(&json!({"document": bad, "reason": "refused"})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 422);
    assert!(response.text().await.unwrap().contains("did you mean 'validate.document@1'"));
    assert_eq!((count("SELECT COUNT(*) FROM flow_documents").await, count("SELECT COUNT(*) FROM audit").await), before);

    // Both processes apply the split (their next poll), then serve both versions.
    for url in [&a.url, &b.url] {
        support::wait_until(|| async {
            let response = http.get(format!("{url}/api/explain?flow=billing&contact=5511922200000")).bearer_auth(TOKEN).send().await.unwrap();
            response.text().await.unwrap_or_default().contains("split")
        })
        .await;
    }
    let urls = [a.url.clone(), b.url.clone()];
    for n in 0..24i64 {
        let body = upsert(&format!("PGDOC{n:02}"), &format!("55119333{n:05}"), "segunda via do boleto", 1_764_000_000 + n);
        let response = http.post(format!("{}/webhooks/evolution", urls[n as usize % 2])).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    support::wait_until(|| async { count("SELECT COUNT(*) FROM sessions WHERE flow = 'billing'").await == 24 }).await;
    let versions: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT version, fingerprint, COUNT(*) FROM sessions WHERE flow = 'billing' GROUP BY version, fingerprint ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let wanted: i64 = version.trim_start_matches('v').parse().unwrap();
    assert!(versions.iter().any(|(number, _, _)| *number == 1), "code v1 served: {versions:?}");
    let data = versions.iter().find(|(number, _, _)| *number == wanted).unwrap_or_else(|| panic!("data {version} served: {versions:?}"));
    assert_eq!(data.1, fingerprint, "sessions record the document's fingerprint");
    assert_eq!(versions.len(), 2, "{versions:?}");
    evolution.wait_for(24).await;
    let texts: Vec<String> = sqlx::query_scalar("SELECT text FROM outbox").fetch_all(&pool).await.unwrap();
    assert!(texts.iter().any(|text| text.contains("Para a segunda via, me envie")), "the data version asked its own question: {texts:?}");

    // Restart: both processes gone, a new one runs the version from the store at once.
    drop(a);
    drop(b);
    let c = ServeProcess::start(&db, &evolution, &[("ADMIN_TOKEN", TOKEN)]).await;
    let pin = json!({"rules": {"pins": [{"contact": "5511933399999", "version": version}]}, "reason": "after the restart"});
    let response = http.put(format!("{}/api/rollout/billing", c.url)).bearer_auth(TOKEN).json(&pin).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "the restarted serve knows {version}: {}", response.text().await.unwrap_or_default());
    support::wait_until(|| async {
        let response = http.get(format!("{}/api/explain?flow=billing&contact=5511933399999", c.url)).bearer_auth(TOKEN).send().await.unwrap();
        response.text().await.unwrap_or_default().contains("pin")
    })
    .await;
    let body = upsert("PGDOC-AFTER", "5511933399999", "segunda via do boleto", 1_764_000_100);
    assert_eq!(http.post(format!("{}/webhooks/evolution", c.url)).json(&body).send().await.unwrap().status().as_u16(), 200);
    support::wait_until(|| async { count("SELECT COUNT(*) FROM sessions WHERE flow = 'billing' AND contact LIKE '%33399999%'").await == 1 }).await;
    let (number, recorded): (i64, String) = sqlx::query_as("SELECT version, fingerprint FROM sessions WHERE flow = 'billing' AND contact LIKE '%33399999%'").fetch_one(&pool).await.unwrap();
    assert_eq!((number, recorded), (wanted, fingerprint));
    drop(c);
    pool.close().await;
}

/// A data version of `digital_certificate` whose purchase is the compiled
/// `dc_purchase` flow (`callee`: `dc_purchase` or `dc_purchase@vN`), then a
/// thank-you that uses the e-mail the callee collected.
fn call_document(callee: &str, transcript: &str) -> String {
    format!(
        r#"flow = "digital_certificate"
description = "The purchase as a call of dc_purchase, then a thank-you"
entry = "buy"
{transcript}
[texts]
thanks = "Obrigado! Qualquer dúvida sobre o pedido, responda para {{email}}."

[[steps]]
id = "buy"
kind = "call"
flow = "{callee}"
then = "thanks"

[[steps]]
id = "thanks"
kind = "end"
text = "thanks"
"#
    )
}

/// The purchase of `dc_purchase@v1`'s exact transcript, then the caller's thank-you.
const CALL_TRANSCRIPT: &str = "transcript = '''
=== a compra pelo fluxo chamado, e o controle volta
> quero comprar um certificado
< Qual certificado você quer?
> 1
< Agora me envie o *CPF* do titular
> 529.982.247-25
< Agora só falta o seu *e-mail*
> ana@exemplo.com
< Está tudo certo?
> sim
< criado!
< Obrigado! Qualquer dúvida sobre o pedido, responda para ana@exemplo.com.
= completed at purchase.order
= completed at thanks
'''
";

#[test]
fn a_published_document_calls_a_compiled_flow_and_gets_control_back() {
    use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound};
    use switchyard_engine::ids::{Contact, FlowId, InstanceId, Version};
    use switchyard_engine::memory::MemoryStore;
    use switchyard_engine::resolve::{Overrides, Resolver};
    use switchyard_engine::rollout::{FlowRules, Pin, Rules};
    use switchyard_engine::session::Outcome;

    let code = switchyard_flows::registry(&switchyard_flows::Deps::demo()).unwrap();
    let version = switchyard::document::publish::next_version(&code, &[], "digital_certificate");
    let ana = Contact::parse("5511944440001").unwrap();
    let instance = InstanceId::parse("vendas").unwrap();
    // dc_purchase's own policy pins Ana to v2: a call by name follows it, a fixed call does not.
    let mut rules = Rules::new();
    rules.set("dc_purchase", FlowRules { pins: vec![Pin { contact: ana.clone(), version: Version::new(2) }], ..FlowRules::default() });
    for (callee, version_seen, reason) in [("dc_purchase@v1", 1, "call"), ("dc_purchase", 2, "pin")] {
        let document = switchyard::document::parse(&call_document(callee, "")).unwrap();
        let registry = Arc::new(switchyard::document::publish::extend(&code, &document, version, Some(&[])).unwrap());
        let overrides = Overrides::parse(&format!("digital_certificate=v{version}"), &registry).unwrap();
        let resolver = Resolver::new(&registry, overrides, Box::new(rules.clone()));
        let config = EngineConfig { entry_flow: FlowId::new_static("digital_certificate"), ..EngineConfig::default() };
        let engine = Engine::new(registry, resolver, config).unwrap();
        let store = MemoryStore::new();
        let mut now = switchyard_engine::time::Timestamp::from_millis(1_795_000_000_000);
        let mut send = |text: &str| {
            now = now.plus(Duration::from_secs(1));
            let inbound = Inbound { instance: instance.clone(), contact: ana.clone(), content: Content::Text(text.to_owned()) };
            let turn = engine.turn(store.contact_state_now(&instance, &ana), &inbound, now);
            store.commit_now(&turn).unwrap();
            turn
        };
        send("quero comprar um certificado");
        let state = store.contact_state_now(&instance, &ana);
        let caller = state.session.clone().expect("the document's session is live");
        assert_eq!((caller.flow().as_str(), caller.version(), caller.step().as_str()), ("digital_certificate", Version::new(version), "buy"), "{callee}");
        assert_eq!(caller.fingerprint().as_str(), document.fingerprint());
        let frame = state.calls.first().unwrap_or_else(|| panic!("{callee}: the callee runs in a frame of its own"));
        assert_eq!((frame.flow().as_str(), frame.version(), frame.parent(), frame.depth()), ("dc_purchase", Version::new(version_seen), Some(caller.id()), 1), "{callee}");
        assert_eq!(frame.reason().name(), reason, "{callee}");
        if version_seen != 1 {
            continue;
        }
        for text in ["1", "529.982.247-25", "ana@exemplo.com"] {
            send(text);
        }
        let turn = send("sim");
        let said: Vec<&str> = turn.replies.iter().map(|reply| reply.text.as_str()).collect();
        assert!(said.first().is_some_and(|text| text.contains("criado!")), "the callee's last reply first: {said:?}");
        assert_eq!(said.last(), Some(&"Obrigado! Qualquer dúvida sobre o pedido, responda para ana@exemplo.com."), "control and data came back: {said:?}");
        let ended: Vec<(String, Option<Outcome>, String)> =
            turn.ended().map(|session| (session.flow().as_str().to_owned(), session.outcome(), session.step().as_str().to_owned())).collect();
        assert!(ended.contains(&("dc_purchase".to_owned(), Some(Outcome::Completed), "purchase.order".to_owned())), "{ended:?}");
        assert!(ended.contains(&("digital_certificate".to_owned(), Some(Outcome::Completed), "thanks".to_owned())), "{ended:?}");
        assert!(store.contact_state_now(&instance, &ana).session.is_none());
    }

    // Publishing runs the document's transcripts through the call as well.
    let document = switchyard::document::parse(&call_document("dc_purchase@v1", CALL_TRANSCRIPT)).unwrap();
    let failures = switchyard::document::publish::run_transcripts(&document, version, None, &[]);
    assert!(failures.is_empty(), "{failures:#?}");
    let wrong = switchyard::document::parse(&call_document("dc_purchase@v1", &CALL_TRANSCRIPT.replace("= completed at thanks", "= completed at buy"))).unwrap();
    assert_eq!(switchyard::document::publish::run_transcripts(&wrong, version, None, &[]).len(), 1, "a wrong end is a failure");
}

/// The JSON Schema and the document type agree: every kind's properties
/// are the fields the parser reads for it, and its required ones are those
/// without a default.
#[test]
fn the_schema_describes_every_step_kind_as_the_parser_reads_it() {
    use std::collections::BTreeSet;
    let schema: Value = serde_json::from_str(include_str!("../../../schemas/flow-document.schema.json")).unwrap();
    let kinds = schema["$defs"]["step"]["oneOf"].as_array().unwrap();
    let mut documented = BTreeSet::new();
    // One step of each kind with every optional field set, in a document that parses.
    let every = [
        ("menu", "id = \"m\"\nprompt = \"t\"\ninvalid = \"t\"\noptions = [{ words = [\"a\"], to = \"complete\", set = { k = \"v\" } }]\nexhausted = \"t\"\nmax_attempts = 2"),
        ("ask", "id = \"m\"\nprompt = \"t\"\ninvalid = \"t\"\nsave_as = \"x\"\nvalidate = \"validate.email@1\"\nthen = \"complete\"\nexhausted = \"t\"\nmax_attempts = 2"),
        ("say", "id = \"m\"\ntext = \"t\"\nthen = \"complete\""),
        ("form", "id = \"m\"\nslots = [{ name = \"x\", question = \"t\", extract = [\"a@1\"] }]\nthen = \"complete\"\nexhausted = \"t\"\nmax_attempts = 2"),
        ("handoff", "id = \"m\"\ntext = \"t\""),
        ("end", "id = \"m\"\ntext = \"t\""),
        ("action", "id = \"m\"\nfunction = \"a@1\"\non = { found = \"complete\" }"),
        ("route", "id = \"m\"\ntask = \"x\"\nroutes = { a = \"complete\" }\notherwise = \"complete\""),
        ("call", "id = \"m\"\nflow = \"dc_purchase@v2\"\nthen = \"complete\""),
        ("http", "id = \"m\"\nendpoint = \"erp\"\nmethod = \"GET\"\npath = \"/x\"\nsend = [\"a\"]\nmap = { a = \"/b\" }\nthen = \"complete\"\nfailure = \"complete\""),
    ];
    for (kind, fields) in every {
        let source = format!("flow = \"billing\"\nentry = \"m\"\n[[steps]]\nkind = \"{kind}\"\n{fields}\n");
        let document = switchyard::document::parse(&source).unwrap_or_else(|err| panic!("{kind}: {err}"));
        let written = serde_json::to_value(&document.steps[0]).unwrap();
        let read: BTreeSet<String> = written.as_object().unwrap().keys().cloned().collect();
        let described = kinds.iter().find(|entry| entry["properties"]["kind"]["const"] == kind).unwrap_or_else(|| panic!("the schema has no '{kind}' step"));
        let properties: BTreeSet<String> = described["properties"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(properties, read, "{kind}: the schema's properties are the parser's fields");
        // Each required field is one the parser refuses to go without.
        for required in described["required"].as_array().unwrap().iter().map(|name| name.as_str().unwrap()).filter(|name| *name != "kind") {
            let without: String = source.lines().filter(|line| !line.starts_with(&format!("{required} ="))).collect::<Vec<_>>().join("\n");
            assert!(switchyard::document::parse(&without).is_err(), "{kind}: '{required}' is required by the schema but optional to the parser");
        }
        documented.insert(kind);
    }
    assert_eq!(documented.len(), kinds.len(), "every kind in the schema is one the parser reads");
}

#[test]
fn export_writes_a_compiled_call_as_a_call_step() {
    let code = switchyard_flows::registry(&switchyard_flows::Deps::demo()).unwrap();
    let (document, missing) = switchyard::document::export(code.lookup("digital_certificate@v4").unwrap());
    // v4 routes, then calls one flow per subroute (`purchase` calls `dc_purchase`).
    let call = switchyard::document::Step::Call { id: "purchase".to_owned(), flow: "dc_purchase".to_owned(), then: "complete".to_owned() };
    assert!(document.steps.contains(&call), "{:?}", document.steps);
    assert!(!missing.contains(&"purchase".to_owned()), "{missing:?}");
    // What export writes reads back as the same steps.
    let again = switchyard::document::parse(&document.to_toml().unwrap()).unwrap();
    assert_eq!(again.steps, document.steps);
}

/// What `serve` and the commands load from the store: a document calling a
/// data version of another flow loads whatever order the store lists them
/// in (here the caller first, both published in the same millisecond); a
/// stored document whose fingerprint does not match is skipped with a
/// warning, never half-loaded.
#[test]
fn published_versions_load_in_any_order_and_a_tampered_one_is_skipped() {
    use switchyard_engine::ids::Version;
    use switchyard_store::documents::StoredDocument;

    let code = switchyard_flows::registry(&switchyard_flows::Deps::demo()).unwrap();
    let callee_version = switchyard::document::publish::next_version(&code, &[], "dc_purchase");
    let callee = r#"flow = "dc_purchase"
entry = "ask"

[texts]
ask = "Qual o seu e-mail?"
bad = "E-mail inválido."
handoff = "Vou chamar uma pessoa."

[[steps]]
id = "ask"
kind = "ask"
prompt = "ask"
invalid = "bad"
save_as = "email"
validate = "validate.email@1"
then = "complete"
"#;
    let caller = call_document(&format!("dc_purchase@v{callee_version}"), "").replace("flow = \"digital_certificate\"", "flow = \"billing\"");
    let caller_version = switchyard::document::publish::next_version(&code, &[], "billing");
    let at = switchyard_engine::time::Timestamp::from_millis(1_795_000_000_000);
    let stored = |flow: &str, version: u32, source: &str| StoredDocument {
        flow: flow.to_owned(),
        version: Version::new(version),
        fingerprint: switchyard::document::parse(source).unwrap().fingerprint(),
        source: source.to_owned(),
        published_at: at,
        actor: "test".to_owned(),
        reason: "test".to_owned(),
    };
    // Alone, the caller is refused: the version it fixes is not there.
    let (none, warnings) = switchyard::document::publish::with_published(&code, &[stored("billing", caller_version, &caller)]);
    assert!(none.is_none());
    assert!(warnings.len() == 1 && warnings[0].contains(&format!("calls dc_purchase@v{callee_version}, which does not exist")), "{warnings:?}");

    let mut tampered = stored("billing", caller_version + 1, &caller);
    tampered.source = tampered.source.replace("Obrigado!", "Pague aqui:");
    let listed = [stored("billing", caller_version, &caller), tampered, stored("dc_purchase", callee_version, callee)];
    let (registry, warnings) = switchyard::document::publish::with_published(&code, &listed);
    let registry = registry.unwrap_or_else(|| panic!("versions were added: {warnings:?}"));
    assert!(registry.get("billing", Version::new(caller_version)).is_some() && registry.get("dc_purchase", Version::new(callee_version)).is_some());
    assert!(registry.get("billing", Version::new(caller_version + 1)).is_none());
    assert_eq!(warnings, vec![format!("published billing@v{} skipped: its fingerprint or flow does not match the stored one", caller_version + 1)]);
    // Loading again adds nothing.
    let (again, warnings) = switchyard::document::publish::with_published(&registry, &listed[..1]);
    assert!(again.is_none() && warnings.is_empty());
}

/// On the real server: a published `digital_certificate` version whose
/// purchase calls the compiled `dc_purchase`; a customer pinned to it buys
/// through the callee and gets the document's thank-you after it returns.
/// The session rows record the stack (the callee's parent and depth).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_server_a_published_version_calls_a_compiled_flow_and_gets_control_back() {
    let app = TestApp::spawn_configured(|config| config.admin_tokens = vec![("ops".to_owned(), TOKEN.to_owned())]).await;
    let (status, body) = publish(&app, &call_document("dc_purchase", CALL_TRANSCRIPT)).await;
    assert_eq!(status, 201, "{body}");
    let version = body["version"].as_str().unwrap().to_owned();
    let contact = "5511955550001";
    let pin = json!({"rules": {"pins": [{"contact": contact, "version": version}]}, "reason": "buy through the data version"});
    let started = Instant::now();
    let mut answer = app.put_admin("/api/rollout/digital_certificate", pin.clone(), TOKEN).await;
    while answer.0 != 200 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        answer = app.put_admin("/api/rollout/digital_certificate", pin.clone(), TOKEN).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
    support::wait_until(|| async {
        let (_, explained) = app.get_admin(&format!("/api/explain?flow=digital_certificate&contact={contact}"), TOKEN).await;
        explained["version"] == version.as_str()
    })
    .await;
    for (n, text) in ["quero comprar um certificado", "1", "529.982.247-25", "ana@exemplo.com", "sim"].into_iter().enumerate() {
        let (status, _) = app.webhook(&upsert(&format!("DOCCALL{n}"), contact, text, 1_764_000_000 + n as i64)).await;
        assert_eq!(status, 200);
        app.wait_idle().await;
    }
    let texts = app.texts_for(contact).await;
    assert!(texts.iter().any(|text| text.contains("criado!")), "the callee created the order: {texts:?}");
    assert_eq!(texts.last().map(String::as_str), Some("Obrigado! Qualquer dúvida sobre o pedido, responda para ana@exemplo.com."), "{texts:?}");
    let rows: Vec<(String, String, i64, String, Option<String>, i64, String)> = sqlx::query_as(
        "SELECT id, flow, version, step, parent, depth, outcome FROM sessions WHERE flow IN ('digital_certificate', 'dc_purchase') ORDER BY depth",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (caller, callee) = (&rows[0], &rows[1]);
    let wanted: i64 = version.trim_start_matches('v').parse().unwrap();
    assert_eq!((caller.1.as_str(), caller.2, caller.3.as_str(), caller.5, caller.6.as_str()), ("digital_certificate", wanted, "thanks", 0, "completed"), "{rows:?}");
    assert_eq!((callee.1.as_str(), callee.2, callee.4.as_deref(), callee.5, callee.6.as_str()), ("dc_purchase", 1, Some(caller.0.as_str()), 1, "completed"), "{rows:?}");
    app.stop().await;
}
