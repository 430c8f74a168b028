//! The classification phase in the real server: a webhook message the
//! keywords miss is classified by a stand-in OpenAI-compatible model on a
//! loopback socket, and `/metrics` and `report` show the calls, latency and
//! tokens per version.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};
use support::{upsert, TestApp};

static CALLS: AtomicUsize = AtomicUsize::new(0);

async fn completions(Json(body): Json<Value>) -> Json<Value> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    let classes = body["response_format"]["json_schema"]["schema"]["properties"]["class"]["enum"].to_string();
    let class = if classes.contains("digital_certificate") { "digital_certificate" } else { "status" };
    Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": json!({"class": class}).to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 250, "completion_tokens": 6, "total_tokens": 256},
    }))
}

#[tokio::test]
async fn the_server_asks_the_model_and_metrics_and_report_show_its_cost_per_version() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new().route("/v1/chat/completions", post(completions))).await.unwrap() });
    let url = format!("http://{addr}/v1");
    let settings = switchyard_llm::Settings::parse(Some(&url), Some("sk-x"), Some("stand-in"), Some("2s")).unwrap().unwrap();
    let llm = Arc::new(switchyard_llm::Llm::new(settings).unwrap());
    let app = TestApp::spawn_configured(|config| config.model = Some(Arc::clone(&llm))).await;

    let (status, _) = app.webhook(&upsert("LLM-1", "5511933330001", "comprei semana passada e ate agora nada, cade?", 1_795_000_000)).await;
    assert_eq!(status, 200);
    app.webhook(&upsert("LLM-2", "5511933330002", "quero renovar meu certificado", 1_795_000_001)).await;
    app.wait_idle().await;
    assert_eq!(CALLS.load(Ordering::SeqCst), 2, "two questions for the first customer, none for the sure keywords");
    let texts = app.texts_for("5511933330001").await;
    assert!(!texts.is_empty());

    let (status, metrics) = app.get("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "switchyard_llm_requests_total{flow=\"digital_certificate\",version=\"v1\",task=\"route\"} 1",
        "switchyard_llm_requests_total{flow=\"unknown\",version=\"v1\",task=\"intent\"} 1",
        "switchyard_llm_prompt_tokens_total{flow=\"digital_certificate\",version=\"v1\",task=\"route\"} 250",
        "switchyard_llm_completion_tokens_total{flow=\"unknown\",version=\"v1\",task=\"intent\"} 6",
        "switchyard_llm_circuit_open 0",
    ] {
        assert!(metrics.lines().any(|candidate| candidate == line), "missing {line}:\n{metrics}");
    }

    let store = switchyard_store::open(&app.db, &switchyard_store::PgSettings::default()).await.unwrap();
    let query = switchyard::views::flow::ReportQuery { versions: None, since: None, until: None, instance: None, min_finished: 100 };
    let report = switchyard::views::flow::flow_report(&store, &support::engine(), "digital_certificate", &query).await.unwrap();
    let classification = &report.versions[0].classification;
    assert_eq!(classification.decisions, 2, "{classification:?}");
    assert_eq!(classification.by_model, 1, "{classification:?}");
    assert_eq!(classification.by_keyword, 1, "{classification:?}");
    assert_eq!(classification.model_calls, 1);
    assert_eq!(classification.prompt_tokens, 250);
    assert!(classification.latency_ms_p50.is_some_and(|ms| ms < Duration::from_secs(2).as_millis() as u64));
    app.stop().await;
}
