//! The classification phase through the engine's public API, on a small
//! test flow and a model that answers from memory (no I/O): what a turn asks,
//! how an answer, a failure and an invalid class are applied, and how
//! `service::run_turn` hands the model its budget.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use switchyard_engine::classify::{Answer, Classification, Classifier, Model, Request, Task, Usage, Wanted};
use switchyard_engine::engine::{Content, ContactState, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::event::EventKind;
use switchyard_engine::flow::{Lifecycle, Next, VersionDecl};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::kinds::{Custom, To};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::service::run_turn;
use switchyard_engine::time::Timestamp;

fn keywords(text: &str) -> Option<&'static str> {
    if text.contains("loja") { Some("shop") } else { None }
}

const ROUTE: Task = Task { name: "route", file: "prompts/route.txt", prompt: "Classify.", ask: Wanted::Class(&["shop", "help"]), keywords: Some(keywords) };

fn engine() -> Engine {
    let entry = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[menu]\n1 loja, 2 ajuda\n[invalid]\nnão entendi\n[shop]\nloja\n[help]\najuda\n")
        .task(ROUTE)
        .entry("menu")
        .step(
            "menu",
            Custom::new(&[To::Step("shop"), To::Step("help")], |ctx, text| match ctx.classify(&ROUTE, text) {
                Some("shop") => Next::Goto("shop"),
                Some(_) => Next::Goto("help"),
                None => {
                    ctx.say("invalid");
                    Next::Retry
                }
            })
            .on_enter(|ctx| {
                ctx.say("menu");
                Next::Wait
            })
            .texts(&["menu", "invalid"]),
        )
        .step("shop", Custom::new(&[], |_, _| Next::Wait).on_enter(|ctx| {
            ctx.say("shop");
            Next::Wait
        }).texts(&["shop"]))
        .step("help", Custom::new(&[], |_, _| Next::Wait).on_enter(|ctx| {
            ctx.say("help");
            Next::Wait
        }).texts(&["help"]));
    let registry = Arc::new(Registry::new(vec![entry]).expect("valid"));
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    Engine::new(registry, resolver, EngineConfig::default()).expect("engine")
}

fn inbound(text: &str) -> Inbound {
    Inbound { instance: InstanceId::parse("console").unwrap(), contact: Contact::parse("5511900000001").unwrap(), content: Content::Text(text.to_owned()) }
}

const NOW: Timestamp = Timestamp::from_millis(1_795_000_000_000);

/// The state after "oi": a session waiting at the menu.
fn waiting(engine: &Engine) -> ContactState {
    let turn = engine.turn(ContactState::default(), &inbound("oi"), NOW);
    ContactState { session: turn.live().cloned(), ..ContactState::default() }
}

fn decisions(turn: &Turn) -> Vec<Classification> {
    turn.events.iter().filter_map(|event| match &event.kind {
        EventKind::Classified(decision) => Some(decision.clone()),
        _ => None,
    }).collect()
}

/// A model that answers every request the same, and records the budgets it got.
struct Fixed {
    answer: Answer,
    budgets: Mutex<Vec<Duration>>,
    asked: Mutex<Vec<Request>>,
}

impl Model for Fixed {
    fn decide<'a>(&'a self, requests: &'a [Request], budget: Duration) -> Pin<Box<dyn Future<Output = Vec<Answer>> + Send + 'a>> {
        self.budgets.lock().unwrap().push(budget);
        self.asked.lock().unwrap().extend(requests.iter().cloned());
        let answers = requests.iter().map(|_| self.answer.clone()).collect();
        Box::pin(async move { answers })
    }
    fn budget(&self) -> Duration {
        Duration::from_secs(5)
    }
}

/// Runs a future that never waits (the fixed model answers at once).
fn ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the test model never waits"),
    }
}

fn fixed(answer: Answer) -> Fixed {
    Fixed { answer, budgets: Mutex::new(Vec::new()), asked: Mutex::new(Vec::new()) }
}

fn class(name: &str) -> Answer {
    Answer::Values { values: vec![("class".to_owned(), name.to_owned())], usage: Usage { latency_ms: 80, prompt_tokens: 40, completion_tokens: 5, cached: false } }
}

fn step(turn: &Turn) -> String {
    turn.live().map(|session| session.step().to_string()).unwrap_or_default()
}

#[test]
fn offline_the_keywords_decide_and_the_question_is_left_in_the_turn() {
    let engine = engine();
    let turn = engine.turn(waiting(&engine), &inbound("preciso de uma mão aqui"), NOW);
    assert_eq!(step(&turn), "menu");
    assert_eq!(turn.requests.len(), 1);
    assert_eq!((turn.requests[0].task, turn.requests[0].text.as_str(), turn.requests[0].prompt), ("route", "preciso de uma mão aqui", "Classify."));
    let decided = decisions(&turn);
    assert_eq!(decided, [Classification { task: "route".into(), classifier: Classifier::Keyword, answer: None, fallback: None, usage: None }]);
    // Sure keywords, numbers and greetings ask nothing.
    for text in ["vou na loja", "2", "oi, bom dia"] {
        assert!(engine.turn(waiting(&engine), &inbound(text), NOW).requests.is_empty(), "{text}");
    }
}

#[test]
fn a_valid_answer_decides_and_its_cost_is_recorded() {
    let engine = engine();
    let model = fixed(class("help"));
    let turn = ready(run_turn(&engine, Some(&model), waiting(&engine), &inbound("preciso de uma mão aqui"), NOW));
    assert_eq!(step(&turn), "help");
    let decided = decisions(&turn);
    assert_eq!(decided.len(), 1);
    assert_eq!((decided[0].classifier, decided[0].answer.as_deref()), (Classifier::Model, Some("help")));
    assert_eq!(decided[0].usage.map(|usage| usage.prompt_tokens), Some(40));
    assert_eq!(model.asked.lock().unwrap().len(), 1);
    let budgets = model.budgets.lock().unwrap().clone();
    assert!(budgets.len() == 1 && budgets[0] <= Duration::from_secs(5), "{budgets:?}");
}

#[test]
fn failures_and_unknown_classes_leave_the_keyword_decision_with_the_reason() {
    let engine = engine();
    for (answer, reason) in [
        (Answer::Failed { reason: "timeout".into(), latency_ms: 5000 }, "timeout"),
        (class("refund"), "invalid_answer"),
        (Answer::Values { values: vec![], usage: Usage::default() }, "invalid_answer"),
    ] {
        let model = fixed(answer);
        let turn = ready(run_turn(&engine, Some(&model), waiting(&engine), &inbound("preciso de uma mão aqui"), NOW));
        assert_eq!(step(&turn), "menu", "{reason}");
        assert_eq!(turn.replies.last().map(|reply| reply.text.as_str()), Some("não entendi"));
        let decided = decisions(&turn);
        assert_eq!((decided[0].classifier, decided[0].fallback.as_deref()), (Classifier::Keyword, Some(reason)));
    }
    // "none" is an answer: the model decided there is nothing to pick.
    let turn = ready(run_turn(&engine, Some(&fixed(class("none"))), waiting(&engine), &inbound("preciso de uma mão aqui"), NOW));
    assert_eq!(step(&turn), "menu");
    assert_eq!((decisions(&turn)[0].classifier, decisions(&turn)[0].fallback.as_deref()), (Classifier::Model, None));
}

#[test]
fn without_questions_the_model_is_not_consulted() {
    let engine = engine();
    let model = fixed(class("help"));
    let turn = ready(run_turn(&engine, Some(&model), waiting(&engine), &inbound("vou na loja"), NOW));
    assert_eq!(step(&turn), "shop");
    assert!(model.asked.lock().unwrap().is_empty());
}

// Weighed tasks (`VersionDecl::weighed`, `Ctx::weigh`): the keyword hit
// "loja" is weak evidence, the trained classifier is trained on the examples below.

const EXAMPLES: &str = "shop\tquero comprar na loja\nshop\tquero fazer uma compra\nshop\tcomprar um presente\nshop\tvou comprar agora\nshop\tquero ver os produtos para comprar\n\
help\tpreciso de ajuda com um problema\nhelp\tmeu pedido veio quebrado, me ajuda\nhelp\ttive um problema na entrega\nhelp\tsocorro, deu erro\nhelp\tajuda por favor, nao funciona\n\
none\toi\nnone\tbom dia\nnone\tola tudo bem\n";

fn sure(text: &str) -> Option<&'static str> {
    (switchyard_engine::text::normalize(text) == "loja").then_some("shop")
}

const WEIGHED: switchyard_engine::trained::Weighing =
    switchyard_engine::trained::Weighing { task: ROUTE, file: "examples/route.tsv", examples: EXAMPLES, sure: Some(sure) };

fn weighed_engine() -> Engine {
    let entry = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[menu]\n1 loja, 2 ajuda\n[invalid]\nnão entendi\n[shop]\nloja\n[help]\najuda\n")
        .weighed(WEIGHED)
        .entry("menu")
        .step(
            "menu",
            Custom::new(&[To::Step("shop"), To::Step("help")], |ctx, text| match ctx.weigh(&ROUTE, text) {
                Some("shop") => Next::Goto("shop"),
                Some(_) => Next::Goto("help"),
                None => {
                    ctx.say("invalid");
                    Next::Retry
                }
            })
            .on_enter(|ctx| {
                ctx.say("menu");
                Next::Wait
            })
            .texts(&["menu", "invalid"]),
        )
        .step("shop", Custom::new(&[], |_, _| Next::Wait).on_enter(|ctx| {
            ctx.say("shop");
            Next::Wait
        }).texts(&["shop"]))
        .step("help", Custom::new(&[], |_, _| Next::Wait).on_enter(|ctx| {
            ctx.say("help");
            Next::Wait
        }).texts(&["help"]));
    let registry = Arc::new(Registry::new(vec![entry]).expect("valid"));
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    Engine::new(registry, resolver, EngineConfig::default()).expect("engine")
}

#[test]
fn a_weak_keyword_hit_does_not_veto_the_trained_classifier_and_a_sure_match_decides_at_once() {
    let engine = weighed_engine();
    let turn = engine.turn(waiting(&engine), &inbound("comprei na loja e deu problema, preciso de ajuda"), NOW);
    assert_eq!(step(&turn), "help");
    assert_eq!(decisions(&turn)[0].classifier, Classifier::Trained);
    assert!(turn.requests.is_empty(), "clear offline: the model is not asked");
    let turn = engine.turn(waiting(&engine), &inbound("Loja!"), NOW);
    assert_eq!(step(&turn), "shop");
    assert_eq!((decisions(&turn)[0].classifier, decisions(&turn)[0].answer.as_deref()), (Classifier::Keyword, Some("shop")));
}

#[test]
fn when_the_offline_evidence_is_unsure_the_model_weighs_in() {
    let engine = weighed_engine();
    let unsure = "hmm, nao sei bem o que escolher";
    let turn = engine.turn(waiting(&engine), &inbound(unsure), NOW);
    assert_eq!(step(&turn), "menu", "offline, thin evidence is nothing");
    assert_eq!(turn.requests.len(), 1);
    let model = fixed(class("help"));
    let turn = ready(run_turn(&engine, Some(&model), waiting(&engine), &inbound(unsure), NOW));
    assert_eq!(step(&turn), "help");
    assert_eq!((decisions(&turn)[0].classifier, decisions(&turn)[0].answer.as_deref()), (Classifier::Model, Some("help")));
}

#[test]
fn examples_with_a_label_the_task_does_not_have_are_refused_naming_the_file() {
    let bad = switchyard_engine::trained::Weighing { examples: "shop\tcomprar\nrefund\tdevolver\n", ..WEIGHED };
    let decl = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[menu]\nx\n")
        .weighed(bad)
        .entry("menu")
        .step("menu", Custom::new(&[], |_, _| Next::Wait).texts(&["menu"]));
    let errors = Registry::new(vec![decl]).expect_err("refused");
    assert_eq!(errors[0].to_string(), "unknown@v1: examples/route.tsv: label 'refund' is not a class of task 'route' (shop, help or none)");
}
