//! Load generator: the real server over loopback, a stand-in Evolution API
//! that receives the sends, and N concurrent customers each walking the
//! digital-certificate purchase (one message at a time, waiting for the
//! bot's replies before the next, as a person does).
//!
//! Reports messages/s (customer messages fully answered per second) and the
//! latency from the webhook POST to the turn's last reply reaching the
//! stand-in (p50, p99, max).
//!
//! ```text
//! cargo build --release -p switchyard
//! cargo run --release -p switchyard --example loadgen -- [CONTACTS] [DATABASE_URL] [NODES] [--in-process] [--rounds=N]
//! ```
//! Defaults: 1000 contacts, a fresh SQLite file in the temp directory, one
//! node, one round (`--rounds=N`: each contact walks the purchase N times in
//! a row, a new session each time, so a small CONTACTS still runs long
//! enough for the CPU figures to be steady). Each node is a `switchyard serve` process (the release binary next
//! to this example, or `SWITCHYARD_BIN`), started with this process's
//! environment (`SQLITE_SYNCHRONOUS`, `DATABASE_MAX_CONNECTIONS` ... pass
//! through), so the load and the servers do not share a process. With
//! NODES > 1 (PostgreSQL) the messages alternate between the nodes.
//! `--in-process` runs the servers inside this process instead (the older
//! measurements). `--floor` runs the `http_floor` example (next to this one,
//! or `FLOOR_BIN`) in place of `switchyard serve`: the same HTTP in and out
//! per message with no store and no engine, the upper bound of the path on
//! this machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use switchyard::config::ServeConfig;
use switchyard::serve::Server;
use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::time::Timestamp;
use tokio::sync::watch;

/// jemalloc, as `switchyard serve` (see its `main.rs`): the load and its
/// stand-in share the machine's cores with the servers, and with glibc's
/// malloc they took ~15-20% more CPU per message (BENCHMARKS, "eleventh
/// session").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The v1 purchase, from the first "oi" to the confirmed order.
const PURCHASE: &[&str] = &["oi", "1", "1", "1", "1", "123.456.789-09", "cliente@exemplo.com.br", "1", "sim"];

type Counters = Arc<HashMap<String, watch::Sender<usize>>>;

async fn send_text(State(counters): State<Counters>, Path(_instance): Path<String>, body: String) -> (StatusCode, Json<Value>) {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let number = body["number"].as_str().unwrap_or_default();
    if let Some(counter) = counters.get(number) {
        counter.send_modify(|count| *count += 1);
    }
    (StatusCode::CREATED, Json(json!({"key": {"remoteJid": format!("{number}@s.whatsapp.net"), "fromMe": true, "id": "3EB0LOADGEN"}, "status": "PENDING"})))
}

fn engine() -> Arc<Engine> {
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows"));
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    Arc::new(Engine::new(registry, resolver, EngineConfig::default()).expect("engine"))
}

/// How many replies each message of the script produces, learnt by running
/// it once through the engine alone.
fn replies_per_message(engine: &Engine, rounds: usize) -> Vec<usize> {
    let store = MemoryStore::new();
    let instance = InstanceId::parse("loja-bot").unwrap();
    let contact = Contact::parse("5511900000000").unwrap();
    (0..rounds)
        .flat_map(|_| PURCHASE.iter())
        .map(|line| {
            let state = store.contact_state_now(&instance, &contact);
            let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text((*line).to_owned()) };
            let turn = engine.turn(state, &inbound, Timestamp::now_utc());
            store.commit_now(&turn).unwrap();
            turn.replies.len()
        })
        .collect()
}

fn webhook(number: &str, seq: usize, text: &str) -> String {
    json!({
        "event": "messages.upsert", "instance": "loja-bot",
        "data": {
            "key": {"remoteJid": format!("{number}@s.whatsapp.net"), "fromMe": false, "id": format!("LG{number}{seq:03}")},
            "pushName": "Cliente", "status": "DELIVERY_ACK",
            "message": {"conversation": text}, "messageType": "conversation",
            "messageTimestamp": 1_795_000_000 + seq as i64, "source": "android"
        },
        "sender": "5511988880000@s.whatsapp.net"
    })
    .to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx]
}

/// CPU seconds (user + system) a process used so far, from /proc (Linux);
/// `None` elsewhere. On a shared machine this is steadier than throughput.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Starts `switchyard serve` (or, with `floor`, the `http_floor` example
/// told the replies per message) on a free port and waits for `/readyz`.
async fn spawn_serve(database_url: &str, evolution_url: &str, floor: Option<&[usize]>) -> anyhow::Result<(std::process::Child, String)> {
    let (variable, name, hint) = match floor {
        None => ("SWITCHYARD_BIN", "switchyard", "cargo build --release -p switchyard"),
        Some(_) => ("FLOOR_BIN", "examples/http_floor", "cargo build --release -p switchyard --example http_floor"),
    };
    let binary = match std::env::var_os(variable) {
        Some(path) => std::path::PathBuf::from(path),
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .map(|dir| dir.join(name))
            .ok_or_else(|| anyhow::anyhow!("cannot find {name}: set {variable}"))?,
    };
    anyhow::ensure!(binary.exists(), "{} does not exist: run `{hint}` or set {variable}", binary.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut command = std::process::Command::new(&binary);
    if let Some(replies) = floor {
        command.env("FLOOR_REPLIES", replies.iter().map(usize::to_string).collect::<Vec<_>>().join(","));
    }
    let mut child = command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("EVOLUTION_URL", evolution_url)
        .env("EVOLUTION_API_KEY", "loadgen-key")
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("CONSOLE_BIND_ADDR", "off")
        .env("SEND_THROTTLE", "off")
        .env("TYPING", "off")
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()))
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|err| anyhow::anyhow!("cannot start {}: {err}", binary.display()))?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http.get(format!("{url}/readyz")).send().await.is_ok_and(|response| response.status().is_success()) {
            return Ok((child, url));
        }
        // A server that refused its settings has said why on stderr
        // (inherited): stop now rather than poll it for 30 s.
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("{} exited ({status}) before it was ready", binary.display());
        }
        anyhow::ensure!(Instant::now() < deadline, "{} did not become ready within 30 s", binary.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The server's own warnings (RUST_LOG=warn) explain a bad run.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
    }
    // reqwest is built without a default TLS provider; its clients need one
    // installed before the first is built (the readiness poll below).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let in_process = std::env::args().any(|arg| arg == "--in-process");
    let floor = std::env::args().any(|arg| arg == "--floor");
    anyhow::ensure!(!(floor && in_process), "--floor and --in-process exclude each other");
    let rounds: usize = match std::env::args().find_map(|arg| arg.strip_prefix("--rounds=").map(str::to_owned)) {
        Some(text) => text.parse().ok().filter(|n| *n >= 1).ok_or_else(|| anyhow::anyhow!("--rounds '{text}' must be a positive number"))?,
        None => 1,
    };
    let mut args = std::env::args().skip(1).filter(|arg| !arg.starts_with("--"));
    let contacts: usize = match args.next() {
        Some(text) => text.parse().map_err(|_| anyhow::anyhow!("CONTACTS '{text}' must be a positive number"))?,
        None => 1000,
    };
    let database_url = args.next().unwrap_or_else(|| {
        let path = std::env::temp_dir().join(format!("switchyard-loadgen-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        format!("sqlite://{}", path.display())
    });
    let nodes: usize = match args.next() {
        Some(text) => text.parse().ok().filter(|n| *n >= 1).ok_or_else(|| anyhow::anyhow!("NODES '{text}' must be a positive number"))?,
        None => 1,
    };

    let engine = engine();
    let expected = replies_per_message(&engine, rounds);
    let numbers: Vec<String> = (0..contacts).map(|n| format!("55119{n:08}")).collect();
    let counters: Counters = Arc::new(numbers.iter().map(|number| (number.clone(), watch::channel(0).0)).collect());

    let stand_in = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let stand_in_url = format!("http://{}", stand_in.local_addr()?);
    let router = Router::new().route("/message/sendText/{instance}", post(send_text)).with_state(Arc::clone(&counters));
    tokio::spawn(async move { axum::serve(stand_in, router).await });

    let mut servers = Vec::with_capacity(nodes);
    let mut processes = Vec::with_capacity(nodes);
    let mut urls = Vec::with_capacity(nodes);
    for _ in 0..nodes {
        if in_process {
            let mut settings = switchyard_store::PgSettings::default();
            if let Ok(text) = std::env::var("DATABASE_MAX_CONNECTIONS") {
                settings.max_connections = text.parse().map_err(|_| anyhow::anyhow!("DATABASE_MAX_CONNECTIONS '{text}' must be a number"))?;
            }
            if let Ok(text) = std::env::var("SQLITE_SYNCHRONOUS") {
                settings.sqlite_synchronous = switchyard_store::Synchronous::parse(&text).map_err(|err| anyhow::anyhow!(err))?;
            }
            let store = Arc::new(switchyard_store::open(&database_url, &settings).await?);
            let mut config = ServeConfig::defaults(&stand_in_url);
            config.send_interval = None;
            config.evolution_api_key = Some("loadgen-key".to_owned());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let server = Server::start(listener, Arc::clone(&engine), store, config).await?;
            urls.push(format!("http://{}/webhooks/evolution", server.addr));
            servers.push(server);
        } else {
            let (child, url) = spawn_serve(&database_url, &stand_in_url, floor.then_some(expected.as_slice())).await?;
            urls.push(format!("{url}/webhooks/evolution"));
            processes.push(child);
        }
    }
    let urls: Arc<Vec<String>> = Arc::new(urls);
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;

    let latencies = Arc::new(Mutex::new(Vec::with_capacity(contacts * PURCHASE.len() * rounds)));
    let pids: Vec<u32> = processes.iter().map(std::process::Child::id).collect();
    let cpu = |pids: &[u32]| -> Option<f64> { pids.iter().map(|pid| cpu_seconds(*pid)).sum() };
    let (self_cpu_before, serve_cpu_before) = (cpu_seconds(std::process::id()), cpu(&pids));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let retries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for number in numbers {
        let (http, urls, counters, latencies, expected, retries) = (http.clone(), Arc::clone(&urls), Arc::clone(&counters), Arc::clone(&latencies), expected.clone(), Arc::clone(&retries));
        tasks.spawn(async move {
            let mut received = counters[&number].subscribe();
            let mut target = 0;
            for (seq, line) in (0..rounds).flat_map(|_| PURCHASE.iter()).enumerate() {
                target += expected[seq];
                let posted = Instant::now();
                let url = &urls[seq % urls.len()];
                // A 503 asks the gateway to retry (Evolution does, after
                // `Retry-After`): so does the load, counting each retry.
                loop {
                    let response = http.post(url).header("content-type", "application/json").body(webhook(&number, seq, line)).send().await?;
                    if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                        retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    anyhow::ensure!(response.status().is_success(), "webhook answered {}", response.status());
                    break;
                }
                received.wait_for(|count| *count >= target).await?;
                latencies.lock().unwrap().push(posted.elapsed());
            }
            anyhow::Ok(())
        });
    }
    // The first failure is reported after the servers are stopped, so a
    // failed run leaves no `serve` process behind.
    let mut failed: Option<anyhow::Error> = None;
    while let Some(result) = tasks.join_next().await {
        if let Err(err) = result.map_err(anyhow::Error::from).and_then(|done| done) {
            failed.get_or_insert(err);
            tasks.abort_all();
        }
    }
    let elapsed = started.elapsed();
    let (self_cpu, serve_cpu) = (cpu_seconds(std::process::id()), cpu(&pids));
    for server in servers {
        server.shutdown().await;
    }
    for mut child in processes {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(err) = failed {
        return Err(err);
    }

    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_unstable();
    let messages = latencies.len();
    println!(
        "store:           {} ({nodes} node{}, {}; SQLITE_SYNCHRONOUS={})",
        if floor { "none: the HTTP floor (http_floor)".to_owned() } else { switchyard_store::redact_url(&database_url) },
        if nodes == 1 { "" } else { "s" },
        if in_process { "in this process" } else { "serve processes" },
        std::env::var("SQLITE_SYNCHRONOUS").unwrap_or_else(|_| "full".to_owned())
    );
    println!("contacts:        {contacts}");
    println!(
        "messages:        {messages} ({} per purchase, {} replies each, {rounds} round{})",
        PURCHASE.len(),
        expected.iter().take(PURCHASE.len()).sum::<usize>(),
        if rounds == 1 { "" } else { "s" }
    );
    println!("retried (503):   {}", retries.load(std::sync::atomic::Ordering::Relaxed));
    println!("elapsed:         {:.2} s", elapsed.as_secs_f64());
    println!("throughput:      {:.0} messages/s", messages as f64 / elapsed.as_secs_f64());
    println!("latency p50:     {:.2} ms", percentile(&latencies, 0.50).as_secs_f64() * 1000.0);
    println!("latency p99:     {:.2} ms", percentile(&latencies, 0.99).as_secs_f64() * 1000.0);
    println!("latency max:     {:.2} ms", latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0);
    let per_message = |after: Option<f64>, before: Option<f64>| match (after, before) {
        (Some(after), Some(before)) if messages > 0 => format!("{:.0} µs", (after - before) * 1e6 / messages as f64),
        _ => "n/a".to_owned(),
    };
    if in_process {
        println!("cpu per message: {} (servers and load in this process)", per_message(self_cpu, self_cpu_before));
    } else {
        println!(
            "cpu per message: serve {}, loadgen {} (user + system)",
            per_message(serve_cpu, serve_cpu_before),
            per_message(self_cpu, self_cpu_before)
        );
    }
    Ok(())
}
