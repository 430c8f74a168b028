//! `switchyard serve`: the Evolution API channel.
//!
//! ```text
//! POST /webhooks/evolution ─> authenticate ─> parse ─> inbox (dedup) ─> 200
//!                                                        │ wake
//! processor: per contact, oldest first ─> engine turn ─> one transaction:
//!            session + events + inbox processed + outbox
//!                                                        │ wake
//! sender: each contact's oldest unsent reply ─> Evolution sendText
//!         (throttled per instance; retries with backoff; 400 = undeliverable)
//! ```
//!
//! Everything between the 200 and the delivery lives in the store, so a crash
//! loses nothing: on start the processor and the sender pick up where the
//! rows say they are.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use switchyard_engine::engine::Engine;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_evolution::client::EvolutionClient;
use switchyard_store::Db;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::config::ServeConfig;

mod admin;
mod debounce;
mod desk;
pub(crate) mod health;
mod listen;
pub mod media;
mod metrics;
mod processor;
mod replay;
mod sender;
mod webhook;

pub use debounce::Debounce;
pub use listen::HttpLimits;
pub use media::{MediaConfig, Typing};

/// The store the server runs on.
pub type ServerStore = Arc<Db>;

/// Shared by every request handler and background task.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<Engine>,
    store: ServerStore,
    config: ServeConfig,
    client: EvolutionClient,
    /// Contacts with new inbox entries, for the processor.
    wake_processor: mpsc::UnboundedSender<(InstanceId, Contact)>,
    /// New outbox rows, for the sender.
    wake_sender: Notify,
    /// The Chatwoot client, and new handoffs for its worker.
    chatwoot: crate::chatwoot::ChatwootClient,
    wake_desk: Notify,
    /// Flips to true when shutdown starts: readiness goes red.
    stopping: watch::Receiver<bool>,
    metrics: metrics::Metrics,
    /// Voice-note transcriptions spent this hour (`TRANSCRIBE_PER_HOUR`).
    transcriptions: media::HourlyBudget,
}

impl AppState {
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.inner.engine
    }
    pub(crate) fn store(&self) -> &ServerStore {
        &self.inner.store
    }
    pub(crate) fn config(&self) -> &ServeConfig {
        &self.inner.config
    }
}

/// Resolves once shutdown has been requested.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await (it is not Send).
    let _ = stop.wait_for(|stop| *stop).await;
}

/// How often each process checks the stored policy for changes: a change
/// made through any process applies everywhere within this interval.
const POLICY_POLL: std::time::Duration = std::time::Duration::from_millis(100);

async fn watch_policy(state: AppState, mut revision: i64, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(POLICY_POLL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        match state.store().policy_revision().await {
            Ok(current) if current != revision => match crate::rollout::load_into(state.store(), state.engine()).await {
                Ok((loaded, warnings)) => {
                    for warning in warnings {
                        tracing::warn!("{warning}");
                    }
                    tracing::info!(revision = loaded, "rollout policy reloaded");
                    revision = loaded;
                }
                Err(err) => tracing::warn!(error = %err, "cannot reload the rollout policy; keeping the previous one"),
            },
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot check the rollout policy"),
        }
    }
}

/// Evaluates split guards every `GUARD_INTERVAL`; a rollback is a policy
/// change like any other, so every process picks it up through `watch_policy`.
async fn watch_guards(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config().guard_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        if let Err(err) = crate::report::evaluate_guards(state.store()).await {
            tracing::warn!(error = %err, "guard evaluation failed; will retry");
        }
    }
}

/// How many hours one rollup tick rolls up at most, over every flow: a
/// store with a month of history catches up in a few ticks without one
/// tick hogging the database.
pub const ROLLUP_HOURS_PER_TICK: usize = 48;

/// Rolls up finished hours of the flow report every `ROLLUP_INTERVAL`
/// (`views::rollup::refresh`), at most [`ROLLUP_HOURS_PER_TICK`] hours a
/// tick, oldest first. Several processes may do it at once on PostgreSQL:
/// an hour's rollup is computed from finished sessions only and stored with
/// an upsert, so two processes write the same figures.
async fn watch_rollups(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config().rollup_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut stop) => return,
        }
        let now = switchyard_engine::time::Timestamp::now_utc();
        let mut budget = ROLLUP_HOURS_PER_TICK;
        let flows: Vec<String> = state.engine().registry().flows().into_iter().map(|flow| flow.as_str().to_owned()).collect();
        for flow in flows {
            if budget == 0 || *stop.borrow() {
                break;
            }
            match crate::views::rollup::refresh(state.store(), &flow, now, budget).await {
                Ok(stored) => {
                    budget = budget.saturating_sub(stored);
                    if stored > 0 {
                        tracing::debug!(%flow, hours = stored, "report hours rolled up");
                    }
                }
                Err(err) => tracing::warn!(%flow, error = %err, "rolling up report hours failed; will retry"),
            }
        }
    }
}

/// The HTTP routes. Every request must be answered within
/// `HTTP_REQUEST_TIMEOUT`, body included (408 otherwise); the webhook sets
/// its own, inside its authentication, so a 408 is counted like any answer.
pub fn app(state: AppState) -> Router {
    let timeout = tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, state.config().http.request_timeout);
    Router::new()
        .merge(webhook::router(&state))
        .merge(health::router().merge(admin::router(&state)).merge(metrics::router(&state)).merge(desk::router(&state)).layer(timeout))
        .with_state(state)
}

/// A running server: its address, and the handle that stops it.
pub struct Server {
    pub addr: SocketAddr,
    /// Where the console (`/ui`) listens, when `console_bind` is set.
    pub console_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Serves on `listener` (port 0 in tests), binds the console's own
    /// listener when `config.console_bind` is set, and starts the
    /// processor, the sender and the sweeper.
    pub async fn start(listener: TcpListener, engine: Arc<Engine>, store: ServerStore, config: ServeConfig) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        let console = match config.console_bind {
            Some(bind) => Some(TcpListener::bind(bind).await.map_err(|err| {
                anyhow::anyhow!("binding the console on CONSOLE_BIND_ADDR {bind}: {err} (choose another address, or off)")
            })?),
            None => None,
        };
        let console_addr = console.as_ref().map(TcpListener::local_addr).transpose()?;
        let client = EvolutionClient::new(
            &config.evolution_url,
            config.evolution_api_key.clone(),
            config.evolution_instance_keys.clone(),
            config.send_timeout,
        )
        .map_err(|err| anyhow::anyhow!("{err}"))?;
        let chatwoot = crate::chatwoot::ChatwootClient::new(config.send_timeout).map_err(|err| anyhow::anyhow!("{err}"))?;
        // The stored rollout policy applies before the first message, and the
        // deploy manifest says what this process runs (compliance).
        let (revision, warnings) = crate::rollout::load_into(&store, &engine).await.map_err(|err| anyhow::anyhow!("loading the rollout policy: {err}"))?;
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        store
            .record_deploy(&crate::rollout::manifest(&engine), "serve started", switchyard_engine::time::Timestamp::now_utc())
            .await
            .map_err(|err| anyhow::anyhow!("recording the deploy manifest: {err}"))?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        let state = AppState {
            inner: Arc::new(Inner {
                engine,
                store,
                config,
                client,
                wake_processor: wake_tx,
                wake_sender: Notify::new(),
                chatwoot,
                wake_desk: Notify::new(),
                stopping: stop_rx.clone(),
                metrics: metrics::Metrics::default(),
                transcriptions: media::HourlyBudget::default(),
            }),
        };
        let mut tasks = Vec::new();
        let router = app(state.clone());
        tasks.push(tokio::spawn(listen::serve(listener, router, state.config().http, stop_rx.clone())));
        if let Some(console) = console {
            tasks.push(tokio::spawn(listen::serve(console, crate::ui::router(state.clone()), state.config().http, stop_rx.clone())));
        }
        tasks.push(tokio::spawn(processor::run(state.clone(), wake_rx, stop_rx.clone())));
        tasks.push(tokio::spawn(sender::run(state.clone(), stop_rx.clone())));
        tasks.push(tokio::spawn(processor::sweep(state.clone(), stop_rx.clone())));
        tasks.push(tokio::spawn(desk::run(state.clone(), stop_rx.clone())));
        tasks.push(tokio::spawn(watch_policy(state.clone(), revision, stop_rx.clone())));
        tasks.push(tokio::spawn(watch_guards(state.clone(), stop_rx.clone())));
        tasks.push(tokio::spawn(watch_rollups(state.clone(), stop_rx)));
        Ok(Server { addr, console_addr, stop: stop_tx, tasks })
    }

    /// Graceful shutdown: stop accepting, finish the turns and sends in
    /// flight, return. What is left in the inbox and outbox is picked up by
    /// the next start.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
