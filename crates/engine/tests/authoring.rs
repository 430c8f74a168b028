//! The flow-authoring API on small test flows: one `Next` for every
//! transition, dependencies through `Ctx::deps`, enter-only steps, the
//! opening message in every step of the first turn, typed texts, and the
//! form step (slots from any message, refusals, corrections, side
//! questions, confirmation, events).

use std::sync::Arc;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::event::EventKind;
use switchyard_engine::flow::{Ctx, Lifecycle, Next, Target, VersionDecl};
use switchyard_engine::form::{Extracted, Form, Said, Slot, Source};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::kinds::{Custom, To};
use switchyard_engine::registry::{Registry, RegistryError};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::session::Outcome;
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::time::Timestamp;
use switchyard_engine::text::normalize;

const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);

#[test]
fn the_former_transition_names_are_the_one_next_enum() {
    let to: To = To::Step("a.b");
    let target: Target = Target::Flow("billing");
    assert_eq!(to, Next::Goto("a.b"));
    assert_eq!(target, Next::Handover("billing"));
    assert_eq!(To::Complete.target(), None);
    assert_eq!(Next::Goto("x").target(), Some(Next::Goto("x")));
}

/// The back office a test version reaches through `Ctx::deps`.
struct Shop {
    greeting: &'static str,
}

fn hello(ctx: &mut Ctx<'_>) -> Next {
    let shop: &Shop = ctx.deps::<Shop>();
    let opening = ctx.opening().unwrap_or("-").to_owned();
    ctx.say_raw(format!("{} | opening: {opening}", shop.greeting));
    Next::Goto("second")
}

fn second(ctx: &mut Ctx<'_>) -> Next {
    let opening = ctx.opening().unwrap_or("-").to_owned();
    ctx.say_raw(format!("second sees: {opening}"));
    Next::Wait
}

fn second_input(ctx: &mut Ctx<'_>, _text: &str) -> Next {
    let opening = ctx.opening().unwrap_or("-").to_owned();
    ctx.say_raw(format!("later: {opening}"));
    Next::Goto("bye")
}

fn bye(ctx: &mut Ctx<'_>) -> Next {
    ctx.say("bye");
    Next::Complete
}

fn plain() -> VersionDecl {
    VersionDecl::new("unknown", 1, Lifecycle::Active)
        .typed_texts("[bye]\ntchau\n", &["bye"])
        .deps(Shop { greeting: "olá da loja" })
        .entry("first")
        .step("first", Custom::enter_only(&[Next::Goto("second")], hello))
        .step("second", Custom::new(&[Next::Goto("bye")], second_input).on_enter(second))
        .step("bye", Custom::enter_only(&[], bye))
}

fn engine(decls: Vec<VersionDecl>) -> Engine {
    let registry = Arc::new(Registry::new(decls).expect("valid test flows"));
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    Engine::new(registry, resolver, EngineConfig::default()).unwrap()
}

struct Chat {
    engine: Engine,
    store: MemoryStore,
    now: Timestamp,
}

impl Chat {
    fn new(decls: Vec<VersionDecl>) -> Chat {
        Chat { engine: engine(decls), store: MemoryStore::new(), now: T0 }
    }
    fn say(&mut self, text: &str) -> Turn {
        self.now = self.now.plus(std::time::Duration::from_secs(1));
        let (instance, contact) = (InstanceId::parse("vendas").unwrap(), Contact::parse("5511900000001").unwrap());
        let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text(text.to_owned()) };
        let turn = self.engine.turn(self.store.contact_state_now(&instance, &contact), &inbound, self.now);
        self.store.commit_now(&turn).expect("commit");
        turn
    }
}

fn replies(turn: &Turn) -> Vec<&str> {
    turn.replies.iter().map(|reply| reply.text.as_str()).collect()
}

#[test]
fn plain_functions_reach_the_deps_and_every_step_of_the_first_turn_sees_the_opening() {
    let mut chat = Chat::new(vec![plain()]);
    let turn = chat.say("quero um e-CPF");
    assert_eq!(replies(&turn), ["olá da loja | opening: quero um e-CPF", "second sees: quero um e-CPF"]);
    let turn = chat.say("ok");
    assert_eq!(replies(&turn), ["later: -", "tchau"]);
    assert_eq!(turn.ended().next().and_then(|session| session.outcome()), Some(Outcome::Completed));
}

#[test]
fn a_handler_asking_for_deps_the_version_lacks_fails_only_that_session() {
    let decl = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[bye]\ntchau\n")
        .entry("first")
        .step("first", Custom::enter_only(&[Next::Goto("second")], hello))
        .step("second", Custom::new(&[], second_input).on_enter(second));
    let mut chat = Chat::new(vec![decl]);
    let turn = chat.say("oi");
    assert_eq!(turn.ended().next().and_then(|session| session.outcome()), Some(Outcome::Failed));
    let detail = turn.events.iter().find_map(|event| match &event.kind {
        EventKind::Ended { detail: Some(detail), .. } => Some(detail.clone()),
        _ => None,
    });
    assert!(detail.is_some_and(|detail| detail.contains("declares no dependencies of type")));
}

#[test]
fn typed_texts_must_match_texts_txt() {
    let stale = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .typed_texts("[bye]\ntchau\n[new]\nnovo\n", &["bye"])
        .entry("bye")
        .step("bye", Custom::enter_only(&[], bye));
    let errors = Registry::new(vec![stale]).expect_err("a key without a constant");
    assert!(matches!(&errors[0], RegistryError::BadTexts { problem, .. } if problem.contains("'new'")), "{errors:?}");
    let missing = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .typed_texts("[bye]\ntchau\n", &["bye", "gone"])
        .entry("bye")
        .step("bye", Custom::enter_only(&[], bye));
    let errors = Registry::new(vec![missing]).expect_err("a constant without a text");
    assert!(errors[0].to_string().contains("has no text 'gone'"), "{}", errors[0]);
}

// ---- the form step --------------------------------------------------------

const FORM_TEXTS: &str = "\
[ask_size]\nQual tamanho? P, M ou G\n\
[ask_color]\nQual cor?\n\
[ask_email]\nQual o seu e-mail?\n\
[bad_email]\nEsse e-mail não é válido\n\
[summary]\nResumo: {size} {color} {email}\n\
[confirm.invalid]\nResponda sim ou não\n\
[price]\nCusta R$ 10\n\
[done]\nFeito\n\
[handoff]\natendente\n";

fn size(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    let words = normalize(said.text);
    match words.split(' ').find(|word| matches!(*word, "p" | "m" | "g" | "pequena" | "media" | "grande")) {
        Some(word) => Extracted::Value(word[..1].to_owned()),
        None => Extracted::Nothing,
    }
}

fn color(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    let words = normalize(said.text);
    match words.split(' ').find(|word| matches!(*word, "azul" | "verde")) {
        Some(word) => Extracted::Value(word.to_owned()),
        None => Extracted::Nothing,
    }
}

fn email(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    match said.text.split_whitespace().find(|word| word.contains('@')) {
        Some(word) if word.contains('.') && !word.starts_with('@') => Extracted::Value(word.to_lowercase()),
        Some(_) => Extracted::Refused("bad_email"),
        None => Extracted::Nothing,
    }
}

fn summary(ctx: &mut Ctx<'_>) {
    ctx.say("summary");
}

fn answer(ctx: &mut Ctx<'_>, text: &str) -> Option<Next> {
    match normalize(text).as_str() {
        "sim" => {
            ctx.say("done");
            Some(Next::Complete)
        }
        "nao" => Some(Next::Cancel),
        _ => None,
    }
}

fn price(ctx: &mut Ctx<'_>) {
    ctx.say("price");
}

fn form_version() -> VersionDecl {
    VersionDecl::new("unknown", 1, Lifecycle::Active).texts(FORM_TEXTS).entry("order").step(
        "order",
        Form::new(
            vec![
                Slot::new("size", "ask_size").by(Source::Keyword, size).clears(&["color"]),
                Slot::new("color", "ask_color").by(Source::Keyword, color),
                Slot::new("email", "ask_email").by(Source::Validator, email),
            ],
            |_ctx| Next::Complete,
        )
        .confirm(summary, answer, "confirm.invalid")
        .side(&["quanto custa", "preco"], price),
    )
}

fn slot_events(turn: &Turn) -> Vec<String> {
    turn.events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::SlotFilled { slot, source, entering } => Some(format!("filled {slot} by {source}{}", if *entering { " (entering)" } else { "" })),
            EventKind::SlotMissed { slot, reason } => Some(format!("missed {slot}: {reason}")),
            _ => None,
        })
        .collect()
}

fn retried(turn: &Turn) -> bool {
    turn.events.iter().any(|event| event.kind == EventKind::Retried)
}

#[test]
fn a_form_fills_what_the_opening_said_and_asks_only_for_the_rest() {
    let mut chat = Chat::new(vec![form_version()]);
    let turn = chat.say("quero uma camiseta G azul");
    assert_eq!(replies(&turn), ["Qual o seu e-mail?"]);
    assert_eq!(slot_events(&turn), ["filled size by keyword (entering)", "filled color by keyword (entering)"]);
    let turn = chat.say("ana@exemplo.com");
    assert_eq!(replies(&turn), ["Resumo: g azul ana@exemplo.com"]);
    let turn = chat.say("sim");
    assert_eq!(replies(&turn), ["Feito"]);
    assert_eq!(turn.ended().next().and_then(|session| session.outcome()), Some(Outcome::Completed));
}

#[test]
fn two_answers_in_one_message_and_a_refusal_that_says_why() {
    let mut chat = Chat::new(vec![form_version()]);
    assert_eq!(replies(&chat.say("oi")), ["Qual tamanho? P, M ou G"]);
    let turn = chat.say("M, verde");
    assert_eq!(replies(&turn), ["Qual o seu e-mail?"]);
    assert!(!retried(&turn));
    let turn = chat.say("ana@exemplo");
    assert_eq!(replies(&turn), ["Esse e-mail não é válido"]);
    assert!(retried(&turn));
    assert_eq!(slot_events(&turn), ["missed email: bad_email"]);
    let turn = chat.say("não sei");
    assert_eq!(replies(&turn), ["Qual o seu e-mail?"]);
    assert_eq!(slot_events(&turn), ["missed email: nothing"]);
    let turn = chat.say("hmm");
    assert_eq!(replies(&turn), ["atendente"]);
    assert_eq!(turn.ended().next().and_then(|session| session.outcome()), Some(Outcome::Handoff));
}

#[test]
fn a_correction_overwrites_and_clears_its_dependents_and_a_side_question_re_asks() {
    let mut chat = Chat::new(vec![form_version()]);
    chat.say("P azul");
    let turn = chat.say("quanto custa?");
    assert_eq!(replies(&turn), ["Custa R$ 10", "Qual o seu e-mail?"]);
    assert!(!retried(&turn));
    let turn = chat.say("ana@exemplo.com");
    assert_eq!(replies(&turn), ["Resumo: p azul ana@exemplo.com"]);
    // At the confirmation, a new size is a correction: the colour depends on it.
    let turn = chat.say("na verdade é G");
    assert_eq!(replies(&turn), ["Qual cor?"]);
    assert_eq!(slot_events(&turn), ["filled size by keyword"]);
    let turn = chat.say("verde");
    assert_eq!(replies(&turn), ["Resumo: g verde ana@exemplo.com"]);
    let turn = chat.say("talvez");
    assert_eq!(replies(&turn), ["Responda sim ou não"]);
    assert!(retried(&turn));
    assert_eq!(replies(&chat.say("sim")), ["Feito"]);
}

const FIELDS: switchyard_engine::classify::Task = switchyard_engine::classify::Task {
    name: "order",
    file: "prompts/order.txt",
    prompt: "extraia size, color e email",
    ask: switchyard_engine::classify::Wanted::Fields(&["size", "color", "email"]),
    keywords: None,
};

fn model_form() -> VersionDecl {
    VersionDecl::new("unknown", 1, Lifecycle::Active).texts(FORM_TEXTS).task(FIELDS).entry("order").step(
        "order",
        Form::new(
            vec![
                Slot::new("size", "ask_size").by(Source::Keyword, size),
                Slot::new("color", "ask_color").by(Source::Keyword, color),
                Slot::new("email", "ask_email").by(Source::Validator, email),
            ],
            |_ctx| Next::Complete,
        )
        .confirm(summary, answer, "confirm.invalid")
        .model(FIELDS),
    )
}

/// Slots the extractors miss go to the model; what it answers passes the
/// slot's own extractors (an invented colour is dropped) and is recorded
/// with the source `model`.
#[test]
fn the_model_fills_what_the_extractors_missed_through_the_same_extractors() {
    use switchyard_engine::classify::{Answer, Decisions, Usage};
    let engine = engine(vec![model_form()]);
    let (instance, contact) = (InstanceId::parse("vendas").unwrap(), Contact::parse("5511900000001").unwrap());
    let inbound = Inbound { instance, contact, content: Content::Text("quero a grandona".to_owned()) };
    let offline = engine.turn(Default::default(), &inbound, T0);
    assert_eq!(replies(&offline), ["Qual tamanho? P, M ou G"], "offline, the keywords alone");
    assert_eq!(offline.requests.len(), 1);
    let mut decisions = Decisions::default();
    let values = vec![("size".to_owned(), "grande".to_owned()), ("color".to_owned(), "roxo".to_owned())];
    decisions.push(offline.requests[0].clone(), Answer::Values { values, usage: Usage::default() });
    let turn = engine.turn_with(Default::default(), &inbound, T0, decisions);
    assert_eq!(replies(&turn), ["Qual cor?"], "roxo is no colour this form knows");
    assert_eq!(slot_events(&turn), ["filled size by model (entering)"]);
}

#[test]
fn an_interrupt_matches_its_phrase_at_any_word_and_nothing_else() {
    let decl = plain().interrupt(&["Segunda via", "cancelar"], Next::Goto("bye")).interrupt(&["2ª via"], Next::Goto("second"));
    let registry = Registry::new(vec![decl]).expect("valid test flow");
    let fv = registry.lookup("unknown@v1").expect("compiled");
    assert_eq!(fv.interrupt_for("quero a SEGUNDA-VIA!"), Some(Next::Goto("bye")));
    assert_eq!(fv.interrupt_for("cancelar"), Some(Next::Goto("bye")));
    assert_eq!(fv.interrupt_for("a 2ª via"), Some(Next::Goto("second")));
    for text in ["1", "123.456.789-09", "sim", "via segunda", "cancelarei", "", "ok 2"] {
        assert_eq!(fv.interrupt_for(text), None, "{text:?}");
    }
}
