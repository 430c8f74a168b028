//! `switchyard serve`: validates everything, opens the store, serves until
//! SIGINT/SIGTERM, then drains in-flight work.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use switchyard::config::ServeConfig;
use switchyard::serve::Server;

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub async fn run() -> anyhow::Result<ExitCode> {
    // Every configuration problem is reported before anything starts.
    let setup = super::setup().await;
    let serve_config = ServeConfig::from_env();
    let ((config, engine), mut serve_config) = match (setup, serve_config) {
        (Ok(setup), Ok(serve_config)) => (setup, serve_config),
        (setup, serve_config) => {
            if let Err(problems) = serve_config {
                super::report(&problems);
            }
            let _ = setup;
            eprintln!("error: serve refuses to start until the configuration is fixed (`switchyard check` lists the problems)");
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    switchyard::logs::init(serve_config.log_json);
    let started = std::time::Instant::now();
    if serve_config.webhook_secret.is_none() && serve_config.webhook_secrets.is_empty() && serve_config.webhook_jwt_key.is_none() {
        tracing::warn!("no WEBHOOK_SECRET, WEBHOOK_SECRETS or WEBHOOK_JWT_KEY: anyone who reaches this port can post webhooks");
    }
    if serve_config.metrics_token.is_none() {
        tracing::warn!("no METRICS_TOKEN: anyone who reaches this port can read /metrics");
    }
    if serve_config.evolution_api_key.is_none() && serve_config.evolution_instance_keys.is_empty() {
        tracing::warn!("no EVOLUTION_API_KEY or EVOLUTION_INSTANCE_KEYS: Evolution will refuse every send; replies wait in the outbox until a key is set");
    }
    if !engine.resolver().overrides().is_empty() {
        tracing::warn!(overrides = %engine.resolver().overrides(), "FLOW_VERSION_OVERRIDES is set: new sessions of these flows get the overridden version");
    }
    let store = switchyard_store::open(&config.database_url, &config.database)
        .await
        .with_context(|| format!("opening the store at {}", switchyard_store::redact_url(&config.database_url)))?;
    let listener = tokio::net::TcpListener::bind(serve_config.bind)
        .await
        .with_context(|| format!("binding {}", serve_config.bind))?;
    serve_config.model = super::model(&config)?;
    match &serve_config.model {
        Some(llm) => tracing::info!(model = %llm.settings().model, timeout_ms = llm.settings().timeout.as_millis() as u64, "model classification on; keywords decide when it fails"),
        None => tracing::info!("no LLM_BASE_URL: the keyword classifiers decide"),
    }
    if serve_config.media.transcribe
        && let Some(llm) = &config.llm
    {
        let transcriber = switchyard_llm::transcribe::Transcriber::new(
            &llm.base_url,
            llm.api_key.clone(),
            &serve_config.media.transcribe_model,
            Some(serve_config.media.transcribe_language.as_str()),
            serve_config.media.transcribe_timeout,
        )
        .map_err(anyhow::Error::msg)?;
        tracing::info!(model = %serve_config.media.transcribe_model, per_hour = serve_config.media.transcribe_per_hour, "voice notes without speechToText are transcribed");
        serve_config.media.transcriber = Some(transcriber);
    }
    let server = Server::start(listener, engine, Arc::new(store), serve_config).await?;
    tracing::info!(addr = %server.addr, database = %switchyard_store::redact_url(&config.database_url), ready_in_ms = started.elapsed().as_millis() as u64, "switchyard serving");
    shutdown_signal().await;
    tracing::info!("shutting down: finishing turns and sends in flight");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
