//! The HTTP floor of the durable path: what `switchyard serve` does over
//! HTTP for one customer message, and nothing else. It receives Evolution's
//! `messages.upsert` webhook (axum, parsed by the same
//! `switchyard_evolution::webhook::parse`), answers 200, then sends as many
//! replies as the real bot would through the same `EvolutionClient`
//! (`sendText`, one after another per message, at most `SEND_CONCURRENCY`
//! in flight as the real sender), with no store and no engine.
//!
//! It is started by the load generator in place of `switchyard serve`
//! (`loadgen CONTACTS --floor`), with the same environment plus
//! `FLOOR_REPLIES`: the replies the script's message number N gets, comma
//! separated (message N is the one whose id ends in N after the number,
//! the load generator's ids). So the same load against it measures the
//! upper bound of the real path on this machine: the HTTP work on both
//! sides, the load generator and its stand-in.
//!
//! ```text
//! cargo build --release -p switchyard --example loadgen --example http_floor
//! target/release/examples/loadgen 1000 --floor
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use switchyard_evolution::client::EvolutionClient;
use switchyard_evolution::webhook::{self, WebhookKind};
use tokio::sync::Semaphore;

/// The same allocator as `switchyard serve` (see its `main.rs`), so the
/// floor and the path it bounds are measured alike.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A reply of typical length for the purchase script (the bot's menus and
/// confirmations are 100-300 characters).
const REPLY: &str = "Perfeito! Para emitir o seu certificado digital A1 (pessoa física) precisamos confirmar alguns dados. \
                     Responda com o número da opção desejada ou digite *menu* para voltar ao início.";

struct Floor {
    client: EvolutionClient,
    /// Replies per message number of the script.
    replies: Vec<usize>,
    /// Sends in flight at most (the real sender's `SEND_CONCURRENCY`).
    sends: Arc<Semaphore>,
}

async fn receive(State(floor): State<Arc<Floor>>, body: Bytes) -> Response {
    let parsed = match webhook::parse(&body) {
        Ok(parsed) => parsed,
        Err(err) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": err.to_string() }))).into_response(),
    };
    let WebhookKind::Message(incoming) = parsed.kind else {
        return (StatusCode::OK, Json(json!({ "status": "ignored" }))).into_response();
    };
    // The load generator's ids are `LG{number}{message number}`.
    let number = incoming.sender.reply_to.clone();
    let replies = incoming
        .message_id
        .strip_prefix("LG")
        .and_then(|rest| rest.strip_prefix(number.as_str()))
        .and_then(|seq| seq.parse::<usize>().ok())
        .and_then(|seq| floor.replies.get(seq).copied())
        .unwrap_or(1);
    let (floor, instance) = (Arc::clone(&floor), parsed.instance);
    tokio::spawn(async move {
        // One after another, as the sender keeps a contact's order.
        for _ in 0..replies {
            let Ok(_slot) = floor.sends.acquire().await else { return };
            while let Err(err) = floor.client.send_text(&instance, &number, REPLY).await {
                eprintln!("http_floor: send failed ({err}); retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    (StatusCode::OK, Json(json!({ "status": "accepted" }))).into_response()
}

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name).map_err(|_| anyhow::anyhow!("{name} must be set (the load generator sets it: `loadgen CONTACTS --floor`)"))
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bind = env("BIND_ADDR")?;
    let replies: Vec<usize> = env("FLOOR_REPLIES")?
        .split(',')
        .map(|count| count.trim().parse().map_err(|_| anyhow::anyhow!("FLOOR_REPLIES: '{count}' is not a number")))
        .collect::<anyhow::Result<_>>()?;
    let concurrency: usize = match std::env::var("SEND_CONCURRENCY") {
        Ok(text) => text.parse().ok().filter(|n| *n >= 1).ok_or_else(|| anyhow::anyhow!("SEND_CONCURRENCY '{text}' must be a positive number"))?,
        Err(_) => 8,
    };
    let client = EvolutionClient::new(&env("EVOLUTION_URL")?, std::env::var("EVOLUTION_API_KEY").ok(), Default::default(), Duration::from_secs(10))?;
    let floor = Arc::new(Floor { client, replies, sends: Arc::new(Semaphore::new(concurrency)) });
    // The same runtime as `switchyard serve`: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&bind).await.map_err(|err| anyhow::anyhow!("BIND_ADDR {bind}: {err}"))?;
        let router = Router::new()
            .route("/webhooks/evolution", post(receive))
            .route("/readyz", axum::routing::get(|| async { "ready" }))
            .with_state(floor);
        axum::serve(listener, router).await?;
        anyhow::Ok(())
    })
}
