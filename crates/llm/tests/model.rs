//! The model client against a stand-in OpenAI-compatible server on a real
//! loopback socket, speaking the chat-completions wire format, and through
//! the real engine, flows and conversation service.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use switchyard_engine::classify::{Answer, Classification, Classifier, Model, Request, Wanted};
use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::service::Conversations;
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::time::SystemClock;
use switchyard_llm::{Llm, Settings};

/// What the stand-in answers to one call.
#[derive(Clone, Debug)]
enum Reply {
    /// 200 with `{"class": ...}` as the message content.
    Class(&'static str),
    /// 200 with this message content.
    Content(&'static str),
    /// An OpenAI-style error body with this status.
    Error(u16),
    /// Waits, then answers.
    Slow(Duration, &'static str),
    /// Never answers: only the client's own timeout ends the call.
    Hang,
}

type Answerer = Arc<dyn Fn(&Value, usize) -> Reply + Send + Sync>;

#[derive(Clone)]
struct StandIn {
    /// Chooses the reply from the request body and the call number (0-based).
    answer: Answerer,
    calls: Arc<AtomicUsize>,
    bodies: Arc<Mutex<Vec<Value>>>,
    authorization: Arc<Mutex<Vec<String>>>,
}

async fn completions(State(stand_in): State<StandIn>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let call = stand_in.calls.fetch_add(1, Ordering::SeqCst);
    stand_in.bodies.lock().unwrap().push(body.clone());
    if let Some(value) = headers.get("authorization").and_then(|value| value.to_str().ok()) {
        stand_in.authorization.lock().unwrap().push(value.to_owned());
    }
    let completion = |content: String| {
        Json(json!({
            "id": format!("chatcmpl-{call}"),
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": body["model"],
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 120 + call, "completion_tokens": 7, "total_tokens": 127 + call },
        }))
        .into_response()
    };
    match (stand_in.answer)(&body, call) {
        Reply::Class(class) => completion(json!({ "class": class }).to_string()),
        Reply::Content(content) => completion(content.to_owned()),
        Reply::Slow(delay, class) => {
            tokio::time::sleep(delay).await;
            completion(json!({ "class": class }).to_string())
        }
        Reply::Hang => std::future::pending().await,
        Reply::Error(status) => {
            let (message, kind) = match status {
                429 => ("Rate limit reached for requests", "requests"),
                400 => ("Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.", "invalid_request_error"),
                _ => ("The server had an error while processing your request. Sorry about that!", "server_error"),
            };
            let body = json!({ "error": { "message": message, "type": kind, "param": null, "code": null } });
            (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
        }
    }
}

impl StandIn {
    async fn start(answer: impl Fn(&Value, usize) -> Reply + Send + Sync + 'static) -> (StandIn, SocketAddr) {
        let stand_in = StandIn {
            answer: Arc::new(answer),
            calls: Arc::new(AtomicUsize::new(0)),
            bodies: Arc::new(Mutex::new(Vec::new())),
            authorization: Arc::new(Mutex::new(Vec::new())),
        };
        let app = Router::new().route("/v1/chat/completions", post(completions)).with_state(stand_in.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (stand_in, addr)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn system_prompts(&self) -> Vec<String> {
        self.bodies.lock().unwrap().iter().map(|body| body["messages"][0]["content"].as_str().unwrap_or_default().to_owned()).collect()
    }
}

/// The classes a request body's schema allows, to answer per task.
fn classes(body: &Value) -> Vec<String> {
    body["response_format"]["json_schema"]["schema"]["properties"]["class"]["enum"]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn settings(addr: SocketAddr, timeout: Duration) -> Settings {
    let url = format!("http://{addr}/v1");
    let timeout = format!("{}ms", timeout.as_millis());
    let mut settings = Settings::parse(Some(&url), Some("sk-test-key"), Some("stand-in-model"), Some(&timeout)).unwrap().unwrap();
    settings.breaker_threshold = 3;
    settings.breaker_cooldown = Duration::from_millis(300);
    settings
}

fn engine(overrides: &str) -> Arc<Engine> {
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).unwrap());
    let overrides = Overrides::parse(overrides, &registry).unwrap();
    let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
    Arc::new(Engine::new(registry, resolver, EngineConfig::default()).unwrap())
}

struct Chat {
    conversations: Conversations<MemoryStore, SystemClock>,
    contact: Contact,
}

impl Chat {
    fn new(engine: Arc<Engine>, llm: Option<Arc<Llm>>) -> Chat {
        let model = llm.map(|llm| llm as Arc<dyn Model>);
        Chat {
            conversations: Conversations::new(engine, MemoryStore::new(), SystemClock).with_model(model),
            contact: Contact::parse("5511988887777").unwrap(),
        }
    }

    /// Sends `text`, returns the committed turn and how long it took.
    async fn say(&self, text: &str) -> (Turn, Duration) {
        let inbound = Inbound {
            instance: InstanceId::parse("console").unwrap(),
            contact: self.contact.clone(),
            content: Content::Text(text.to_owned()),
        };
        let started = Instant::now();
        let turn = self.conversations.handle(&inbound).await.unwrap();
        (turn, started.elapsed())
    }
}

fn decisions(turn: &Turn) -> Vec<(String, Classification)> {
    turn.events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::Classified(classification) => Some((event.flow.as_str().to_owned(), classification.clone())),
            _ => None,
        })
        .collect()
}

fn replies(turn: &Turn) -> String {
    turn.replies.iter().map(|reply| reply.text.as_str()).collect::<Vec<_>>().join("\n---\n")
}

fn live_step(turn: &Turn) -> String {
    turn.live().map(|session| format!("{}@{}:{}", session.flow(), session.version(), session.step())).unwrap_or_default()
}

/// A message the keywords miss ("cadê?") is routed by the model twice in
/// one turn: `unknown` to the certificate flow, then its `route` to `status`.
#[tokio::test]
async fn a_message_the_keywords_miss_is_classified_by_the_model_with_tokens_counted() {
    let (stand_in, addr) = StandIn::start(|body, _| {
        if classes(body).contains(&"digital_certificate".to_owned()) { Reply::Class("digital_certificate") } else { Reply::Class("status") }
    })
    .await;
    let llm = Arc::new(Llm::new(settings(addr, Duration::from_secs(2))).unwrap());
    let chat = Chat::new(engine(""), Some(Arc::clone(&llm)));
    let (turn, _) = chat.say("comprei semana passada e ate agora nada, cade?").await;
    assert_eq!(live_step(&turn), "digital_certificate@v1:status.collect_order", "{}", replies(&turn));
    let decided = decisions(&turn);
    assert_eq!(decided.len(), 2, "{decided:?}");
    for ((flow, decision), (expected_flow, class)) in decided.iter().zip([("unknown", "digital_certificate"), ("digital_certificate", "status")]) {
        assert_eq!(flow, expected_flow);
        assert_eq!(decision.classifier, Classifier::Model);
        assert_eq!(decision.answer.as_deref(), Some(class));
        let usage = decision.usage.expect("model usage");
        assert!(usage.prompt_tokens >= 120 && usage.completion_tokens == 7, "{usage:?}");
    }
    assert_eq!(stand_in.calls(), 2);
    assert_eq!(stand_in.authorization.lock().unwrap().as_slice(), ["Bearer sk-test-key", "Bearer sk-test-key"]);
    let body = &stand_in.bodies.lock().unwrap()[0];
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["messages"][1]["content"], "comprei semana passada e ate agora nada, cade?");
    let stats = llm.stats();
    let route = &stats[&("digital_certificate".to_owned(), 1, "route".to_owned())];
    assert_eq!((route.requests, route.calls, route.completion_tokens), (1, 1, 7));
    assert!(!format!("{llm:?}").contains("sk-test-key"));
}

/// Without a model, or when the keywords are sure, or for a menu number,
/// nothing is sent: the offline behaviour and no money spent.
#[tokio::test]
async fn keywords_that_are_sure_greetings_and_menu_numbers_never_call_the_model() {
    let (stand_in, addr) = StandIn::start(|_, _| Reply::Class("billing")).await;
    let llm = Arc::new(Llm::new(settings(addr, Duration::from_secs(2))).unwrap());
    let chat = Chat::new(engine(""), Some(Arc::clone(&llm)));
    let (turn, _) = chat.say("quero renovar meu certificado").await;
    assert_eq!(live_step(&turn), "digital_certificate@v1:renewal.collect_document");
    let decided = decisions(&turn);
    assert_eq!(decided.len(), 2, "unknown and route, both by keywords: {decided:?}");
    assert!(decided.iter().all(|(_, decision)| decision.classifier == Classifier::Keyword && decision.usage.is_none()));
    let other = Chat { contact: Contact::parse("5511977776666").unwrap(), ..Chat::new(engine(""), Some(llm)) };
    let (turn, _) = other.say("oi, boa tarde!").await;
    assert_eq!(live_step(&turn), "unknown@v1:choose");
    let (turn, _) = other.say("2").await;
    assert_eq!(live_step(&turn), "billing@v1:identify");
    assert_eq!(stand_in.calls(), 0, "a sure keyword, a greeting and a menu number cost nothing");
}

/// The failures: malformed content, a timeout, 429, 500 and a class that
/// does not exist. Each ends in the keyword decision (here: the main menu,
/// because the keywords find nothing) with the reason recorded, and no turn
/// waits longer than the timeout.
#[tokio::test]
async fn every_model_failure_falls_back_to_the_keywords_within_the_timeout() {
    let timeout = Duration::from_millis(400);
    let cases: Vec<(&str, Reply, &str, usize)> = vec![
        ("malformed", Reply::Content("Acho que o cliente quer status"), "malformed", 1),
        ("truncated json", Reply::Content("{\"class\": \"dig"), "malformed", 1),
        ("timeout", Reply::Hang, "timeout", 1),
        ("429", Reply::Error(429), "http_429", 2),
        ("500", Reply::Error(500), "http_500", 2),
        ("unknown class", Reply::Class("refund"), "invalid_answer", 1),
    ];
    for (name, reply, reason, calls) in cases {
        let (stand_in, addr) = StandIn::start(move |_, _| reply.clone()).await;
        let chat = Chat::new(engine(""), Some(Arc::new(Llm::new(settings(addr, timeout)).unwrap())));
        // The provider that never answers is left by the timeout: the turn
        // ends at all only because of it (the outer deadline only ends a hang).
        let (turn, _) = tokio::time::timeout(Duration::from_secs(60), chat.say("e ai blz? tenho uma parada pra resolver"))
            .await
            .unwrap_or_else(|_| panic!("{name}: the turn did not end"));
        assert_eq!(live_step(&turn), "unknown@v1:choose", "{name}: {}", replies(&turn));
        let decided = decisions(&turn);
        assert_eq!(decided.len(), 1, "{name}: {decided:?}");
        assert_eq!(decided[0].1.classifier, Classifier::Keyword, "{name}");
        assert_eq!(decided[0].1.fallback.as_deref(), Some(reason), "{name}");
        assert_eq!(stand_in.calls(), calls, "{name}: calls (one retry for 429 and 5xx)");
    }
}

/// One 429 then an answer: the retry answers the question.
#[tokio::test]
async fn a_429_is_retried_once_and_the_retry_answers() {
    let (stand_in, addr) = StandIn::start(|_, call| if call == 0 { Reply::Error(429) } else { Reply::Class("billing") }).await;
    let chat = Chat::new(engine(""), Some(Arc::new(Llm::new(settings(addr, Duration::from_secs(2))).unwrap())));
    let (turn, _) = chat.say("to devendo uma conta ai").await;
    assert_eq!(live_step(&turn), "billing@v1:identify");
    assert_eq!(stand_in.calls(), 2);
}

fn request(text: &str) -> Request {
    Request {
        flow: switchyard_engine::ids::FlowId::new("unknown"),
        version: Version::new(1),
        task: "intent",
        prompt: "Classifique.",
        ask: Wanted::Class(&["billing", "digital_certificate"]),
        text: text.to_owned(),
    }
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_and_closes_again() {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&healthy);
    let (stand_in, addr) =
        StandIn::start(move |_, _| if flag.load(Ordering::SeqCst) { Reply::Class("billing") } else { Reply::Error(503) }).await;
    let llm = Llm::new(settings(addr, Duration::from_secs(2))).unwrap();
    let deadline = || Instant::now() + Duration::from_secs(2);
    // Threshold 3: the first question fails twice (call and retry), the second once more: open.
    for text in ["um", "dois"] {
        assert!(matches!(llm.answer(&request(text), deadline()).await, Answer::Failed { ref reason, .. } if reason == "http_503"));
    }
    assert!(llm.breaker_open());
    let calls = stand_in.calls();
    assert_eq!(calls, 3, "the breaker opened at the third failed call; no retry after that");
    // Answered by the breaker itself: nothing reaches the provider.
    let answer = llm.answer(&request("tres"), deadline()).await;
    assert!(matches!(answer, Answer::Failed { ref reason, .. } if reason == "circuit_open"), "{answer:?}");
    assert_eq!(stand_in.calls(), calls, "nothing is sent while open");
    // After the cooldown one trial goes through; the provider is back, the circuit closes.
    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(matches!(llm.answer(&request("quatro"), deadline()).await, Answer::Values { .. }));
    assert!(!llm.breaker_open());
    assert!(matches!(llm.answer(&request("cinco"), deadline()).await, Answer::Values { .. }));
    assert_eq!(stand_in.calls(), calls + 2);
    assert_eq!(llm.stats()[&("unknown".to_owned(), 1, "intent".to_owned())].failures["circuit_open"], 1);
}

/// Opens `llm`'s circuit (threshold 3) against a stand-in that answers 503.
async fn open_circuit(llm: &Llm) {
    for text in ["um", "dois"] {
        llm.answer(&request(text), Instant::now() + Duration::from_secs(2)).await;
    }
    assert!(llm.breaker_open());
}

/// The breaker's trial is not spent on a request with no budget left: after
/// the open period such a request fails as a timeout without a call, and the
/// next request with budget is the trial, which closes the circuit. The same
/// when the trial is sent but cut short by what was left of the budget.
#[tokio::test]
async fn a_request_without_budget_after_the_open_period_does_not_leave_the_circuit_half_open() {
    let state = Arc::new(AtomicUsize::new(0)); // 0: failing, 1: slow, 2: healthy
    let flag = Arc::clone(&state);
    let (stand_in, addr) = StandIn::start(move |_, _| match flag.load(Ordering::SeqCst) {
        0 => Reply::Error(503),
        1 => Reply::Slow(Duration::from_secs(3), "billing"),
        _ => Reply::Class("billing"),
    })
    .await;
    let llm = Llm::new(settings(addr, Duration::from_secs(2))).unwrap();
    let deadline = || Instant::now() + Duration::from_secs(2);
    open_circuit(&llm).await;
    let calls = stand_in.calls();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let answer = llm.answer(&request("sem tempo"), Instant::now()).await;
    assert!(matches!(answer, Answer::Failed { ref reason, .. } if reason == "timeout"), "{answer:?}");
    assert_eq!(stand_in.calls(), calls, "no budget, no call");
    state.store(2, Ordering::SeqCst);
    let answer = llm.answer(&request("tres"), deadline()).await;
    assert!(matches!(answer, Answer::Values { .. }), "the trial goes through: {answer:?}");
    assert!(!llm.breaker_open(), "and closes the circuit");
    assert_eq!(stand_in.calls(), calls + 1);

    // The trial is sent, but only with 100 ms of budget left, to a provider
    // that takes longer: no verdict, and the next request is the trial.
    state.store(0, Ordering::SeqCst);
    open_circuit(&llm).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    state.store(1, Ordering::SeqCst);
    let answer = llm.answer(&request("pouco tempo"), Instant::now() + Duration::from_millis(100)).await;
    assert!(matches!(answer, Answer::Failed { ref reason, .. } if reason == "timeout"), "{answer:?}");
    state.store(2, Ordering::SeqCst);
    let answer = llm.answer(&request("quatro"), deadline()).await;
    assert!(matches!(answer, Answer::Values { .. }), "{answer:?}");
    assert!(!llm.breaker_open());
}

/// Timeouts are the provider's failures only when it had the whole
/// LLM_TIMEOUT: a healthy but slowish model cut short by what was left of
/// the turn's budget never opens the circuit, while the same model timing out
/// with the full timeout does (threshold 3).
#[tokio::test]
async fn timeouts_cut_short_by_the_budget_do_not_open_the_circuit() {
    let timeout = Duration::from_millis(300);
    let (stand_in, addr) = StandIn::start(|_, _| Reply::Slow(Duration::from_millis(600), "billing")).await;
    let llm = Llm::new(settings(addr, timeout)).unwrap();
    for call in 0..5 {
        let answer = llm.answer(&request(&format!("pergunta {call}")), Instant::now() + Duration::from_millis(100)).await;
        assert!(matches!(answer, Answer::Failed { ref reason, .. } if reason == "timeout"), "{answer:?}");
    }
    assert_eq!(stand_in.calls(), 5, "each was sent");
    assert!(!llm.breaker_open(), "five budget-limited timeouts say nothing about the provider");
    // The first request of a turn gets the whole timeout; a request after it
    // in the same turn gets what is left.
    let requests = [request("primeira"), request("segunda")];
    let answers = llm.decide(&requests, timeout).await;
    assert!(answers.iter().all(|answer| matches!(answer, Answer::Failed { reason, .. } if reason == "timeout")), "{answers:?}");
    assert!(!llm.breaker_open(), "one full timeout is below the threshold");
    for call in 0..2 {
        let answer = llm.answer(&request(&format!("inteira {call}")), Instant::now() + timeout).await;
        assert!(matches!(answer, Answer::Failed { ref reason, .. } if reason == "timeout"), "{answer:?}");
    }
    assert!(llm.breaker_open(), "three timeouts with the whole timeout open it");
}

/// A server that refuses the JSON-schema response format gets the question
/// again without it, and the JSON is read from whatever the content holds.
#[tokio::test]
async fn a_server_without_json_schema_support_is_asked_again_in_plain_json() {
    let (stand_in, addr) = StandIn::start(|body, _| {
        if body.get("response_format").is_some() { Reply::Error(400) } else { Reply::Content("Claro! ```json\n{\"class\": \"billing\"}\n```") }
    })
    .await;
    let llm = Llm::new(settings(addr, Duration::from_secs(2))).unwrap();
    let answer = llm.answer(&request("boleto"), Instant::now() + Duration::from_secs(2)).await;
    assert!(matches!(&answer, Answer::Values { values, .. } if values == &[("class".to_owned(), "billing".to_owned())]), "{answer:?}");
    llm.answer(&request("outra coisa"), Instant::now() + Duration::from_secs(2)).await;
    assert_eq!(stand_in.calls(), 3, "refused once, then never sent again");
}

#[tokio::test]
async fn answers_are_cached_by_normalised_text_and_prompt() {
    let (stand_in, addr) = StandIn::start(|_, _| Reply::Class("billing")).await;
    let llm = Llm::new(settings(addr, Duration::from_secs(2))).unwrap();
    let deadline = || Instant::now() + Duration::from_secs(2);
    llm.answer(&request("Tô DEVENDO!"), deadline()).await;
    let again = llm.answer(&request("to devendo"), deadline()).await;
    assert!(matches!(again, Answer::Values { usage, .. } if usage.cached && usage.prompt_tokens == 0));
    let other_prompt = Request { prompt: "Outro prompt.", ..request("to devendo") };
    llm.answer(&other_prompt, deadline()).await;
    assert_eq!(stand_in.calls(), 2, "the same text under another prompt is another question");
}

/// Two customers whose e-mails differ only in punctuation: their texts
/// normalise to the same words, so a cache keyed on normalised text would give
/// the second customer the first one's e-mail. Extraction is never cached
/// (each customer's text is sent), while a classification of the same two
/// texts is still answered once and then from the cache.
#[tokio::test]
async fn extraction_is_never_cached_but_classification_of_equal_normalised_texts_is() {
    let (stand_in, addr) = StandIn::start(|body, _| {
        let text = body["messages"][1]["content"].as_str().unwrap_or_default();
        if !classes(body).is_empty() {
            Reply::Class("billing")
        } else if text.contains("joao.silva") {
            Reply::Content(r#"{"email": "joao.silva@gmail.com"}"#)
        } else if text.contains("joao_silva") {
            Reply::Content(r#"{"email": "joao_silva@gmail.com"}"#)
        } else {
            Reply::Content(r#"{"email": null}"#)
        }
    })
    .await;
    let llm = Llm::new(settings(addr, Duration::from_secs(2))).unwrap();
    let deadline = || Instant::now() + Duration::from_secs(2);
    let first = "meu email e joao.silva arroba gmail ponto com";
    let second = "meu email e joao_silva arroba gmail ponto com";
    assert_eq!(switchyard_engine::text::normalize(first), switchyard_engine::text::normalize(second), "the premise: one normalised text");
    let extract = |text: &str| Request { task: "details", prompt: "Extraia.", ask: Wanted::Fields(&["email"]), ..request(text) };
    let email = |answer: &Answer| match answer {
        Answer::Values { values, usage } => {
            (values.iter().find(|(field, _)| field == "email").map(|(_, value)| value.clone()), usage.cached)
        }
        Answer::Failed { reason, .. } => panic!("no answer: {reason}"),
    };
    let answer = llm.answer(&extract(first), deadline()).await;
    assert_eq!(email(&answer), (Some("joao.silva@gmail.com".to_owned()), false));
    let answer = llm.answer(&extract(second), deadline()).await;
    assert_eq!(email(&answer), (Some("joao_silva@gmail.com".to_owned()), false), "the second customer gets their own e-mail");
    let answer = llm.answer(&extract(first), deadline()).await;
    assert_eq!(email(&answer), (Some("joao.silva@gmail.com".to_owned()), false), "not even the exact same text is cached");
    assert_eq!(stand_in.calls(), 3, "every extraction is asked");

    let classified = llm.answer(&request(first), deadline()).await;
    assert!(matches!(classified, Answer::Values { usage, .. } if !usage.cached), "{classified:?}");
    let classified = llm.answer(&request(second), deadline()).await;
    assert!(
        matches!(&classified, Answer::Values { values, usage } if usage.cached && values == &[("class".to_owned(), "billing".to_owned())]),
        "{classified:?}"
    );
    assert_eq!(stand_in.calls(), 4, "the classification was asked once");
    let stats = llm.stats();
    assert_eq!(stats[&("unknown".to_owned(), 1, "details".to_owned())].cache_hits, 0);
    assert_eq!(stats[&("unknown".to_owned(), 1, "intent".to_owned())].cache_hits, 1);
}

/// Use case 3: the same message in `digital_certificate` v1 and v2 is sent
/// with each version's own routing prompt.
#[tokio::test]
async fn digital_certificate_v1_and_v2_send_different_prompts_for_the_same_message() {
    let message = "oi, sobre meu certificado digital: deu ruim aqui, me ajuda";
    let mut prompts = Vec::new();
    for version in [1, 2] {
        let (stand_in, addr) = StandIn::start(|_, _| Reply::Class("support")).await;
        let engine = engine(&format!("digital_certificate=v{version}"));
        let expected_prompt = engine.registry().get("digital_certificate", Version::new(version)).unwrap().task("route").unwrap().prompt;
        let chat = Chat::new(Arc::clone(&engine), Some(Arc::new(Llm::new(settings(addr, Duration::from_secs(2))).unwrap())));
        let (turn, _) = chat.say(message).await;
        assert_eq!(live_step(&turn), format!("digital_certificate@v{version}:support.identify_issue"), "{}", replies(&turn));
        let sent = stand_in.system_prompts();
        assert_eq!(sent.len(), 1, "only the route question: the keywords routed 'certificado' to the flow");
        assert!(sent[0].starts_with(expected_prompt.trim_end()), "v{version} sends its own prompt file");
        assert_eq!(stand_in.bodies.lock().unwrap()[0]["messages"][1]["content"], message);
        prompts.push(sent[0].clone());
    }
    assert_ne!(prompts[0], prompts[1]);
}

/// digital_certificate@v2 extraction: the parser finds the CPF, the model
/// the e-mail written in words; a document the customer did not type is refused.
#[tokio::test]
async fn extraction_asks_only_for_what_the_parsers_missed_and_validates_the_answer() {
    let (stand_in, addr) = StandIn::start(|body, _| {
        let text = body["messages"][1]["content"].as_str().unwrap_or_default();
        if text.contains("arroba") {
            Reply::Content(r#"{"document": "529.982.247-25", "email": "joao.silva@gmail.com"}"#)
        } else {
            // Invented: a valid CPF the customer never typed.
            Reply::Content(r#"{"document": "111.444.777-35", "email": null}"#)
        }
    })
    .await;
    let chat = Chat::new(engine("digital_certificate=v2"), Some(Arc::new(Llm::new(settings(addr, Duration::from_secs(2))).unwrap())));
    chat.say("quero comprar um certificado").await;
    let (turn, _) = chat.say("1").await;
    assert_eq!(live_step(&turn), "digital_certificate@v2:purchase.collect_details", "{}", replies(&turn));
    let calls = stand_in.calls();
    let (turn, _) = chat.say("meu cpf e 529.982.247-25 e o email joao.silva arroba gmail ponto com").await;
    assert_eq!(live_step(&turn), "digital_certificate@v2:purchase.confirm_order", "{}", replies(&turn));
    assert_eq!(stand_in.calls(), calls + 1);
    let decided = decisions(&turn);
    assert_eq!(decided.iter().find(|(_, d)| d.task == "details").map(|(_, d)| d.answer.clone()), Some(Some("document+email".to_owned())));
    assert!(replies(&turn).contains("joao.silva@gmail.com"), "{}", replies(&turn));

    let other = Chat { contact: Contact::parse("5511955554444").unwrap(), ..Chat::new(engine("digital_certificate=v2"), Some(Arc::new(Llm::new(settings(addr, Duration::from_secs(2))).unwrap()))) };
    other.say("quero comprar um certificado").await;
    other.say("1").await;
    let (turn, _) = other.say("meu email e maria@exemplo.com.br, o cpf te passo depois").await;
    assert_eq!(live_step(&turn), "digital_certificate@v2:purchase.collect_details");
    let details = decisions(&turn).into_iter().find(|(_, d)| d.task == "details").map(|(_, d)| d).unwrap();
    assert_eq!((details.answer, details.fallback.as_deref()), (None, Some("invalid_answer")), "the invented CPF is refused");
}
