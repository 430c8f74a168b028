//! Test support for the server: spawn the real app on port 0 with a fresh
//! SQLite file, and a stand-in Evolution API on a loopback socket.

#![allow(dead_code)] // reason: each test file uses a different part of the support module

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use switchyard::config::ServeConfig;
use switchyard::serve::Server;
use switchyard_engine::engine::{Engine, EngineConfig};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_store::sqlite::SqliteStore;

pub mod proxy;
pub mod traffic;

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// A fresh SQLite URL under the temp directory, unique per call.
pub fn fresh_db() -> String {
    let dir = std::env::temp_dir().join(format!("switchyard-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("serve-{}.db", NEXT_DB.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&path);
    format!("sqlite://{}", path.display())
}

/// An HTTP client for the tests. reqwest is built without a default crypto
/// provider (see the evolution crate), so the test installs ring's first.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Polls `condition` every 20 ms for up to 15 s.
pub async fn wait_until<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..750 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not met within 15 s");
}

/// A `messages.upsert` webhook as Evolution 2.3.x sends it for a text message.
pub fn upsert(message_id: &str, number: &str, text: &str, timestamp: i64) -> Value {
    json!({
        "event": "messages.upsert",
        "instance": "loja-bot",
        "data": {
            "key": {"remoteJid": format!("{number}@s.whatsapp.net"), "fromMe": false, "id": message_id},
            "pushName": "Cliente Teste",
            "status": "DELIVERY_ACK",
            "message": {"conversation": text, "messageContextInfo": {"deviceListMetadata": {}}},
            "messageType": "conversation",
            "messageTimestamp": timestamp,
            "instanceId": "5f0c2a8e-3b1d-4e7a-9c64-2d8b1f7e9a30",
            "source": "android"
        },
        "destination": "http://localhost/webhooks/evolution",
        "date_time": "2026-11-25T09:00:00.000Z",
        "sender": "5511988880000@s.whatsapp.net",
        "server_url": "http://localhost:8080",
        "apikey": null
    })
}

/// One sendText the stand-in received (and, as Evolution does, stored).
#[derive(Clone, Debug)]
pub struct Sent {
    pub instance: String,
    pub number: String,
    pub text: String,
    pub apikey: Option<String>,
    /// `key.id` of the sent message.
    pub id: String,
    /// `messageTimestamp`: Unix seconds.
    pub at: i64,
}

#[derive(Default)]
struct StandInState {
    sent: Mutex<Vec<Sent>>,
    /// 0: answer 201; otherwise answer this status.
    fail_status: AtomicU16,
    refused: AtomicUsize,
    rejected_numbers: Mutex<HashSet<String>>,
    next_id: AtomicU32,
    /// How long a send waits, after it is stored, before it is answered.
    answer_delay_ms: AtomicU64,
    /// While set, a stored send is not answered (until released or 60 s).
    hold: AtomicBool,
    /// Sends to swallow: not stored, answered after `answer_delay_ms` with a 500.
    lose: AtomicUsize,
    /// `findMessages` requests answered.
    finds: AtomicUsize,
    /// sendText requests being handled now, and the most at any one time.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Counts a sendText request in flight while it lives.
struct InFlight<'a>(&'a StandInState);

impl<'a> InFlight<'a> {
    fn enter(state: &'a StandInState) -> InFlight<'a> {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A stand-in Evolution API speaking the real wire format of sendText.
#[derive(Clone)]
pub struct StandIn {
    pub url: String,
    state: Arc<StandInState>,
}

async fn send_text(State(state): State<Arc<StandInState>>, Path(instance): Path<String>, headers: HeaderMap, body: String) -> (StatusCode, Json<Value>) {
    let body: Value = match serde_json::from_str(&body) {
        Ok(body) => body,
        Err(_) => return (StatusCode::BAD_REQUEST, Json(json!({"status": 400, "error": "Bad Request", "response": {"message": ["invalid json"]}}))),
    };
    let _in_flight = InFlight::enter(&state);
    let fail = state.fail_status.load(Ordering::SeqCst);
    if fail != 0 {
        state.refused.fetch_add(1, Ordering::SeqCst);
        let status = StatusCode::from_u16(fail).unwrap();
        return (status, Json(json!({"status": fail, "error": "Service Unavailable", "response": {"message": "Connection Closed"}})));
    }
    let number = body["number"].as_str().unwrap_or_default().to_owned();
    if state.rejected_numbers.lock().unwrap().contains(&number) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": 400, "error": "Bad Request", "response": {"message": [{"jid": format!("{number}@s.whatsapp.net"), "exists": false, "number": number}]}})),
        );
    }
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    let apikey = headers.get("apikey").and_then(|value| value.to_str().ok()).map(str::to_owned);
    let delay = Duration::from_millis(state.answer_delay_ms.load(Ordering::SeqCst));
    if state.lose.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok() {
        // Evolution failed this one without sending it, and too slowly to answer in time.
        tokio::time::sleep(delay).await;
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"status": 500, "error": "Internal Server Error", "response": {"message": "Connection Closed"}})));
    }
    let id = format!("3EB0{:018X}", state.next_id.fetch_add(1, Ordering::SeqCst));
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    state.sent.lock().unwrap().push(Sent { instance, number: number.clone(), text: text.clone(), apikey, id: id.clone(), at });
    // Stored (and, for WhatsApp, sent); the answer may still be late or lost.
    tokio::time::sleep(delay).await;
    for _ in 0..3000 {
        if !state.hold.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (
        StatusCode::CREATED,
        Json(json!({
            "key": {"remoteJid": format!("{number}@s.whatsapp.net"), "fromMe": true, "id": id},
            "pushName": "Você", "status": "PENDING",
            "message": {"conversation": text},
            "messageType": "conversation", "messageTimestamp": at,
            "instanceId": "5f0c2a8e-3b1d-4e7a-9c64-2d8b1f7e9a30", "source": "web"
        })),
    )
}

/// `POST /chat/findMessages/{instance}` as Evolution 2.3.6 answers it, from
/// the sends stored above: `where.key.remoteJid` (`fromMe` is always true
/// here), `where.messageTimestamp.{gte,lte}` in milliseconds (both or
/// neither), newest first, `{messages: {total, pages, currentPage, records}}`.
async fn find_messages(State(state): State<Arc<StandInState>>, Path(instance): Path<String>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    state.finds.fetch_add(1, Ordering::SeqCst);
    let jid = body.pointer("/where/key/remoteJid").and_then(Value::as_str).map(str::to_owned);
    let window = match (body.pointer("/where/messageTimestamp/gte").and_then(Value::as_i64), body.pointer("/where/messageTimestamp/lte").and_then(Value::as_i64)) {
        (Some(gte), Some(lte)) => Some((gte.div_euclid(1000), lte.div_euclid(1000))),
        _ => None,
    };
    let mut records: Vec<Value> = state
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|sent| sent.instance == instance)
        .filter(|sent| jid.as_deref().is_none_or(|jid| jid == format!("{}@s.whatsapp.net", sent.number)))
        .filter(|sent| window.is_none_or(|(gte, lte)| (gte..=lte).contains(&sent.at)))
        .map(|sent| {
            json!({
                "id": format!("cm{}", sent.id.to_lowercase()),
                "key": {"id": sent.id, "fromMe": true, "remoteJid": format!("{}@s.whatsapp.net", sent.number)},
                "pushName": "Você", "messageType": "conversation",
                "message": {"conversation": sent.text},
                "messageTimestamp": sent.at,
                "instanceId": "5f0c2a8e-3b1d-4e7a-9c64-2d8b1f7e9a30", "source": "web",
                "contextInfo": null, "MessageUpdate": [{"status": "SERVER_ACK"}]
            })
        })
        .collect();
    records.reverse();
    let total = records.len();
    let page = body.get("offset").and_then(Value::as_u64).unwrap_or(50) as usize;
    records.truncate(page);
    (StatusCode::OK, Json(json!({"messages": {"total": total, "pages": total.div_ceil(page.max(1)), "currentPage": 1, "records": records}})))
}

impl StandIn {
    pub async fn start() -> StandIn {
        let state = Arc::new(StandInState::default());
        let router = Router::new()
            .route("/message/sendText/{instance}", post(send_text))
            .route("/chat/findMessages/{instance}", post(find_messages))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        StandIn { url: format!("http://{addr}"), state }
    }
    pub fn sent(&self) -> Vec<Sent> {
        self.state.sent.lock().unwrap().clone()
    }
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }
    pub fn fail_with(&self, status: u16) {
        self.state.fail_status.store(status, Ordering::SeqCst);
    }
    pub fn recover(&self) {
        self.state.fail_status.store(0, Ordering::SeqCst);
    }
    /// Sends are stored at once but answered `delay` later.
    pub fn answer_after(&self, delay: Duration) {
        self.state.answer_delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }
    /// Stored sends go unanswered until [`StandIn::release`].
    pub fn hold(&self) {
        self.state.hold.store(true, Ordering::SeqCst);
    }
    pub fn release(&self) {
        self.state.hold.store(false, Ordering::SeqCst);
    }
    /// The next `count` sends fail inside Evolution: not stored, and answered
    /// (with a 500) only after the answer delay.
    pub fn lose_next(&self, count: usize) {
        self.state.lose.store(count, Ordering::SeqCst);
    }
    /// The most sendText requests in flight at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
    /// `findMessages` requests so far.
    pub fn finds(&self) -> usize {
        self.state.finds.load(Ordering::SeqCst)
    }
    pub fn reject_number(&self, number: &str) {
        self.state.rejected_numbers.lock().unwrap().insert(number.to_owned());
    }
    /// Waits until at least `count` sends arrived; returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Sent> {
        for _ in 0..750 {
            let sent = self.sent();
            if sent.len() >= count {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {count} sends, got {:#?}", self.sent());
    }
}

pub fn test_config(evolution_url: &str) -> ServeConfig {
    let mut config = ServeConfig::defaults(evolution_url);
    config.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    config.evolution_api_key = Some("global-key".to_owned());
    config.send_timeout = Duration::from_secs(2);
    config.send_interval = None;
    config.sweep_interval = Duration::from_secs(3600);
    config
}

pub fn engine() -> Arc<Engine> {
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows"));
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    Arc::new(Engine::new(registry, resolver, EngineConfig::default()).unwrap())
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub evolution: StandIn,
    pub db: String,
    pub server: Server,
    http: reqwest::Client,
    store: SqliteStore,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_configured(|_| {}).await
    }

    pub async fn spawn_configured(configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let evolution = StandIn::start().await;
        TestApp::spawn_with(&fresh_db(), &evolution, configure).await
    }

    pub async fn spawn_with(db: &str, evolution: &StandIn, configure: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let mut config = test_config(&evolution.url);
        configure(&mut config);
        let store = SqliteStore::open(db).await.expect("open store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::start(listener, engine(), Arc::new(switchyard_store::Db::Sqlite(store.clone())), config).await.expect("server starts");
        TestApp { addr: server.addr, evolution: evolution.clone(), db: db.to_owned(), server, http: http(), store }
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self.http.get(format!("http://{}{path}", self.addr)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn webhook(&self, body: &Value) -> (u16, Value) {
        self.webhook_with(&body.to_string(), None).await
    }

    pub async fn webhook_with(&self, body: &str, secret: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("http://{}/webhooks/evolution", self.addr))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(secret) = secret {
            request = request.header("x-webhook-secret", secret);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post_admin(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(format!("http://{}{path}", self.addr)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until every inbox entry is processed and every reply is sent or failed.
    pub async fn wait_idle(&self) {
        wait_until(|| async {
            self.count("SELECT (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL) + \
                        (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL)")
                .await
                == 0
        })
        .await;
    }

    pub async fn get_admin(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self.http.get(format!("http://{}{path}", self.addr)).bearer_auth(token).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn put_admin(&self, path: &str, body: Value, token: &str) -> (u16, Value) {
        let response = self.http.put(format!("http://{}{path}", self.addr)).bearer_auth(token).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub fn pool(&self) -> &sqlx::SqlitePool {
        self.store.pool()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(self.store.pool()).await.unwrap()
    }

    pub async fn scalar(&self, sql: &'static str) -> String {
        sqlx::query_scalar(sql).fetch_one(self.store.pool()).await.unwrap()
    }

    pub async fn texts_for(&self, contact: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT text FROM outbox WHERE contact = ? ORDER BY seq").bind(contact).fetch_all(self.store.pool()).await.unwrap()
    }
}

/// Every row of every table of a SQLite store, as text: two snapshots are
/// equal exactly when nothing in the database changed.
pub async fn snapshot(pool: &sqlx::SqlitePool) -> String {
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_sqlx%' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .fetch_all(pool)
        .await
        .unwrap();
    let mut out = String::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid").bind(&table).fetch_all(pool).await.unwrap();
        let row = columns.iter().map(|column| format!("quote(\"{column}\")")).collect::<Vec<_>>().join(" || ',' || ");
        // Sorted here: a WITHOUT ROWID table has no rowid to order by.
        let sql = format!("SELECT {row} FROM \"{table}\"");
        let mut rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.unwrap();
        rows.sort();
        out.push_str(&format!("== {table}\n{}\n", rows.join("\n")));
    }
    out
}

/// A real `switchyard serve` process, killed (SIGKILL) when dropped so a
/// failing test leaks no server.
pub struct ServeProcess {
    child: std::process::Child,
    pub url: String,
}

impl ServeProcess {
    /// Starts the binary on a port of its own choosing against `db` and
    /// `evolution` and waits until it is ready. `env` adds or overrides variables.
    pub async fn start(db: &str, evolution: &StandIn, env: &[(&str, &str)]) -> ServeProcess {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", db)
            .env("EVOLUTION_URL", &evolution.url)
            .env("EVOLUTION_API_KEY", "k")
            .env("TYPING", "off")
            .env("RUST_LOG", "warn");
        for (name, value) in env {
            command.env(name, value);
        }
        let (child, addr, _) = spawn_serve_on_free_port(command, None);
        let process = ServeProcess { child, url: format!("http://{addr}") };
        let http = http();
        wait_until(|| async { http.get(format!("{}/readyz", process.url)).send().await.is_ok_and(|r| r.status() == 200) }).await;
        process
    }

    /// The process id (to read its memory from /proc, or find its claims).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no drain, no goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns a `switchyard serve` command on `127.0.0.1:0` and returns it with
/// the address it bound, read from its "switchyard serving" log line: no
/// port is picked, released and bound again, so no other process can take
/// it in between. The process's output goes on to `log` (or is drained) by
/// the returned thread, which ends when the process does.
pub fn spawn_serve_on_free_port(mut command: std::process::Command, log: Option<std::fs::File>) -> (std::process::Child, SocketAddr, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, Write};
    let filter = command
        .get_envs()
        .find(|(name, _)| *name == "RUST_LOG")
        .and_then(|(_, value)| value.map(|value| value.to_string_lossy().into_owned()))
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    command
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("CONSOLE_BIND_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", format!("{filter},switchyard::commands::serve=info"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().expect("spawn serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (found, addr) = std::sync::mpsc::channel();
    let copier = std::thread::spawn(move || {
        let mut log = log;
        let mut found = Some(found);
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(log) = log.as_mut() {
                let _ = writeln!(log, "{line}");
            }
            if line.contains("switchyard serving") && let (Some(sender), Some(addr)) = (found.as_ref(), serving_addr(&line)) {
                let _ = sender.send(addr);
                found = None;
            }
        }
    });
    match addr.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => (child, addr, copier),
        Err(_) => {
            let _ = child.kill();
            panic!("serve did not say where it listens within 60 s");
        }
    }
}

/// `addr=127.0.0.1:PORT` (text logs) or `"addr":"127.0.0.1:PORT"` (JSON).
fn serving_addr(line: &str) -> Option<SocketAddr> {
    let start = line.find("addr=").map(|at| at + 5).or_else(|| line.find("\"addr\":\"").map(|at| at + 8))?;
    let rest = &line[start..];
    let end = rest.find(|ch: char| !(ch.is_ascii_digit() || ch == '.' || ch == ':')).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
