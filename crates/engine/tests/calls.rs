//! Calls between flows (`switchyard_engine::call`): a step runs another
//! flow and gets control back; each frame is a session with its own version,
//! resolved by the callee's own policy; the whole stack ends together on
//! expiry, global commands, handoff and failure.

use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::engine::{Content, ContactState, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::event::EventKind;
use switchyard_engine::flow::{Lifecycle, Next, VersionDecl};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::kinds::{Ask, Call, Menu, Say, To};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::rollout::{FlowRules, Pin, Rules, Split, Weight};
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::time::Timestamp;

const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);

fn name(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (trimmed.len() >= 2 && trimmed.chars().all(|ch| ch.is_alphabetic() || ch == ' ')).then(|| trimmed.to_owned())
}

/// The parent: a menu whose options call `purchase` (by policy or fixed at
/// v2) and then thank the customer by the name the callee collected.
fn parent() -> VersionDecl {
    VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[menu]\n1 comprar, 2 comprar v2, 3 atendente\n[invalid]\nopção inválida\n[handoff]\natendente\n[thanks]\nObrigado, {name}!\n")
        .entry("menu")
        .step(
            "menu",
            Menu::new("menu", "invalid")
                .option(&["comprar"], To::Step("buy"))
                .option(&["fixo"], To::Step("buy_fixed"))
                .option(&["humano"], To::Handoff),
        )
        .step("buy", Call::new("purchase").then(To::Step("thanks")))
        .step("buy_fixed", Call::new("purchase@v2").then(To::Step("thanks")))
        .step("thanks", Say::finish("thanks"))
}

fn purchase(version: u32, lifecycle: Lifecycle) -> VersionDecl {
    let texts: &'static str = if version == 1 {
        "[ask_name]\nQual o seu nome? (v1)\n[bad_name]\nnome inválido\n[handoff]\natendente\n"
    } else {
        "[ask_name]\nSeu nome, por favor (v2)\n[bad_name]\nnome inválido\n[handoff]\natendente\n[confirm]\nConfirma, {name}? (v2)\n[confirm.invalid]\nsim ou não\n"
    };
    let decl = VersionDecl::new("purchase", version, lifecycle).texts(texts).entry("ask_name");
    if version == 1 {
        decl.step("ask_name", Ask::new("ask_name", "name", name, "bad_name", To::Complete))
    } else {
        decl.step("ask_name", Ask::new("ask_name", "name", name, "bad_name", To::Step("confirm")))
            .step("confirm", Menu::new("confirm", "confirm.invalid").option(&["sim"], To::Complete).option(&["humano"], To::Handoff))
            .step_map(1, &[("ask_name", "ask_name")])
    }
}

fn registry() -> Arc<Registry> {
    Arc::new(
        Registry::new(vec![parent(), purchase(1, Lifecycle::Active), purchase(2, Lifecycle::Inactive)]).expect("test flows are valid"),
    )
}

fn engine(rules: Rules) -> Engine {
    let registry = registry();
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(rules));
    Engine::new(registry, resolver, EngineConfig { entry_flow: switchyard_engine::ids::FlowId::new_static("unknown"), ..EngineConfig::default() })
        .unwrap()
}

fn pinned(contact: &str, version: u32) -> Rules {
    let mut rules = Rules::new();
    rules.set("purchase", FlowRules { pins: vec![Pin { contact: who(contact), version: Version::new(version) }], ..FlowRules::default() });
    rules
}

fn who(contact: &str) -> Contact {
    Contact::parse(contact).unwrap()
}

fn instance() -> InstanceId {
    InstanceId::parse("vendas").unwrap()
}

struct Harness {
    engine: Engine,
    store: MemoryStore,
    now: Timestamp,
}

impl Harness {
    fn new(rules: Rules) -> Harness {
        Harness { engine: engine(rules), store: MemoryStore::new(), now: T0 }
    }
    fn state(&self, contact: &str) -> ContactState {
        self.store.contact_state_now(&instance(), &who(contact))
    }
    fn send(&mut self, contact: &str, text: &str) -> Turn {
        self.now = self.now.plus(Duration::from_secs(1));
        let inbound = Inbound { instance: instance(), contact: who(contact), content: Content::Text(text.to_owned()) };
        let turn = self.engine.turn(self.state(contact), &inbound, self.now);
        self.store.commit_now(&turn).expect("commit");
        turn
    }
}

fn said(turn: &Turn) -> String {
    turn.replies.iter().map(|reply| reply.text.as_str()).collect::<Vec<_>>().join(" | ")
}

fn ended<'a>(turn: &'a Turn, flow: &str) -> &'a Session {
    turn.ended().find(|session| session.flow().as_str() == flow).unwrap_or_else(|| panic!("no {flow} session ended in {:?}", turn.sessions))
}

fn detail_of(turn: &Turn, session: &Session) -> Option<String> {
    turn.events.iter().find(|event| event.session == session.id() && matches!(event.kind, EventKind::Ended { .. })).and_then(|event| match &event.kind {
        EventKind::Ended { detail, .. } => detail.clone(),
        _ => None,
    })
}

const ANA: &str = "5511900000001";

#[test]
fn a_call_runs_the_callee_in_its_own_session_and_returns_its_data_to_the_caller() {
    let mut harness = Harness::new(Rules::new());
    harness.send(ANA, "oi");
    let turn = harness.send(ANA, "1");
    assert!(said(&turn).contains("Qual o seu nome? (v1)"), "{}", said(&turn));
    let state = harness.state(ANA);
    let (root, calls) = (state.session.expect("the caller is live"), state.calls);
    assert_eq!((root.flow().as_str(), root.step().as_str(), root.depth(), root.parent()), ("unknown", "buy", 0, None));
    assert_eq!(calls.len(), 1);
    let callee = &calls[0];
    assert_eq!((callee.flow().as_str(), callee.version(), callee.depth(), callee.parent()), ("purchase", Version::new(1), 1, Some(root.id())));
    assert_eq!(callee.reason().name(), "active");
    assert_eq!(callee.fingerprint(), harness.engine.registry().get("purchase", Version::new(1)).unwrap().fingerprint());
    // The callee's events carry its own flow@version, the caller's its own.
    assert!(turn.events.iter().any(|e| e.session == callee.id() && e.flow.as_str() == "purchase" && matches!(e.kind, EventKind::Started { .. })));
    assert!(turn.events.iter().filter(|e| e.session == root.id()).all(|e| e.flow.as_str() == "unknown"));

    let turn = harness.send(ANA, "Ana");
    assert_eq!(said(&turn), "Obrigado, Ana!");
    let callee = ended(&turn, "purchase");
    assert_eq!((callee.outcome(), detail_of(&turn, callee).as_deref()), (Some(Outcome::Completed), Some("returned")));
    let caller = ended(&turn, "unknown");
    assert_eq!((caller.outcome(), caller.step().as_str(), caller.data().get("name")), (Some(Outcome::Completed), "thanks", Some("Ana")));
    assert!(harness.state(ANA).session.is_none() && harness.state(ANA).calls.is_empty());
}

#[test]
fn a_callee_split_inside_a_fixed_parent_gives_each_customer_a_callee_version_by_its_own_policy() {
    let mut rules = Rules::new();
    let split = Split::new(vec![(Version::new(1), Weight::percent(50)), (Version::new(2), Weight::percent(50))], None, 0).unwrap();
    rules.set("purchase", FlowRules { split: Some(split), ..FlowRules::default() });
    let mut harness = Harness::new(rules);
    let mut seen = Vec::new();
    for n in 0..40 {
        let contact = format!("55119{n:08}");
        harness.send(&contact, "oi");
        harness.send(&contact, "1");
        let state = harness.state(&contact);
        let root = state.session.unwrap();
        assert_eq!((root.flow().as_str(), root.version()), ("unknown", Version::new(1)), "the parent is fixed");
        let callee = &state.calls[0];
        assert_eq!(callee.reason().name(), "split");
        // The split bucket decides, exactly as it would for a new session of `purchase`.
        let resolved = harness.engine.resolve("purchase", &instance(), &who(&contact), harness.now).unwrap();
        assert_eq!(callee.version(), resolved.version);
        seen.push(callee.version());
    }
    assert!(seen.contains(&Version::new(1)) && seen.contains(&Version::new(2)), "both arms served: {seen:?}");
}

#[test]
fn a_call_with_a_fixed_version_ignores_the_callee_policy() {
    let mut harness = Harness::new(pinned(ANA, 1));
    harness.send(ANA, "oi");
    let turn = harness.send(ANA, "2");
    assert!(said(&turn).contains("(v2)"), "{}", said(&turn));
    let callee = &harness.state(ANA).calls[0];
    assert_eq!((callee.version(), callee.reason().to_string()), (Version::new(2), "call (fixed)".to_owned()));
}

#[test]
fn a_customer_mid_call_keeps_the_callee_version_when_its_policy_changes() {
    let mut harness = Harness::new(pinned(ANA, 2));
    harness.send(ANA, "oi");
    harness.send(ANA, "1");
    assert_eq!(harness.state(ANA).calls[0].version(), Version::new(2));
    // The team moves purchase back to v1 (a policy swap, as `serve` polls it).
    harness.engine.resolver().set_policy(Arc::new(pinned(ANA, 1)));
    assert_eq!(harness.engine.resolve("purchase", &instance(), &who(ANA), harness.now).unwrap().version, Version::new(1));
    let turn = harness.send(ANA, "Ana");
    assert!(said(&turn).contains("Confirma, Ana? (v2)"), "{}", said(&turn));
    assert_eq!(harness.state(ANA).calls[0].version(), Version::new(2));
    let turn = harness.send(ANA, "sim");
    assert_eq!(said(&turn), "Obrigado, Ana!");
    assert_eq!(ended(&turn, "purchase").version(), Version::new(2));
    // The next call resolves anew.
    harness.send(ANA, "oi");
    harness.send(ANA, "1");
    assert_eq!(harness.state(ANA).calls[0].version(), Version::new(1));
}

#[test]
fn evacuating_a_callee_version_restarts_the_frame_under_the_same_caller() {
    let mut harness = Harness::new(pinned(ANA, 2));
    harness.send(ANA, "oi");
    harness.send(ANA, "1");
    let state = harness.state(ANA);
    let (root, old) = (state.session.clone().unwrap(), state.calls[0].clone());
    assert!(harness.engine.evacuate_in(state.clone(), old.id(), harness.now).unwrap_err().contains("still resolve to v2"));
    assert!(harness.engine.evacuate(old.clone(), harness.now).unwrap_err().contains("called by another flow"));
    harness.engine.resolver().set_policy(Arc::new(Rules::new()));
    let turn = harness.engine.evacuate_in(state, old.id(), harness.now).unwrap();
    harness.store.commit_now(&turn).unwrap();
    let gone = ended(&turn, "purchase");
    assert_eq!((gone.id(), gone.outcome(), detail_of(&turn, gone).as_deref()), (old.id(), Some(Outcome::Cancelled), Some("evacuated")));
    assert!(said(&turn).contains("precisei reiniciar") && said(&turn).contains("Qual o seu nome? (v1)"), "{}", said(&turn));
    let state = harness.state(ANA);
    let root_after = state.session.unwrap();
    assert_eq!((root_after.id(), root_after.version(), root_after.step().as_str()), (root.id(), Version::new(1), "buy"));
    let new = &state.calls[0];
    assert_eq!((new.version(), new.parent(), new.depth(), new.reason().name()), (Version::new(1), Some(root.id()), 1, "active"));
    let turn = harness.send(ANA, "Ana");
    assert_eq!(said(&turn), "Obrigado, Ana!");
}

#[test]
fn expiry_inside_a_call_ends_the_whole_stack_at_the_innermost_step() {
    let mut harness = Harness::new(pinned(ANA, 2));
    harness.send(ANA, "oi");
    harness.send(ANA, "1");
    harness.send(ANA, "Ana");
    harness.now = harness.now.plus(Duration::from_secs(31 * 60));
    let turn = harness.engine.expire_all(harness.state(ANA), harness.now).expect("a live stack");
    harness.store.commit_now(&turn).unwrap();
    let (callee, caller) = (ended(&turn, "purchase"), ended(&turn, "unknown"));
    assert_eq!((callee.outcome(), callee.step().as_str()), (Some(Outcome::Expired), "confirm"));
    assert_eq!((caller.outcome(), caller.step().as_str()), (Some(Outcome::Expired), "buy"));
    assert!(harness.state(ANA).session.is_none() && harness.state(ANA).calls.is_empty());

    // A message after the TTL expires the stack and starts over, in one turn.
    harness.send(ANA, "oi");
    harness.send(ANA, "1");
    harness.now = harness.now.plus(Duration::from_secs(31 * 60));
    let turn = harness.send(ANA, "oi");
    assert_eq!(turn.ended().filter(|session| session.outcome() == Some(Outcome::Expired)).count(), 2);
    assert!(said(&turn).contains("1 comprar"), "{}", said(&turn));
}

#[test]
fn a_global_command_inside_a_call_ends_the_whole_stack() {
    for (word, outcome) in [("sair", Outcome::Cancelled), ("atendente", Outcome::Handoff), ("menu", Outcome::Cancelled)] {
        let mut harness = Harness::new(Rules::new());
        harness.send(ANA, "oi");
        harness.send(ANA, "1");
        let turn = harness.send(ANA, word);
        let (callee, caller) = (ended(&turn, "purchase"), ended(&turn, "unknown"));
        assert_eq!((callee.outcome(), callee.step().as_str()), (Some(outcome), "ask_name"), "{word}");
        assert_eq!((caller.outcome(), caller.step().as_str()), (Some(outcome), "buy"), "{word}");
        let command = detail_of(&turn, callee);
        assert!(command.as_deref().is_some_and(|detail| detail.starts_with("command:")), "{word}: {command:?}");
        assert_eq!(detail_of(&turn, caller), command);
        assert_eq!(turn.handoff_until.is_some(), outcome == Outcome::Handoff, "{word}");
        let state = harness.state(ANA);
        assert!(state.calls.is_empty(), "{word}");
        // `menu` starts the entry flow again, at depth 0.
        assert_eq!(state.session.is_some(), word == "menu", "{word}");
    }
}

#[test]
fn a_handoff_inside_a_callee_ends_the_whole_stack_and_silences_the_bot() {
    let mut harness = Harness::new(pinned(ANA, 2));
    harness.send(ANA, "oi");
    harness.send(ANA, "1");
    harness.send(ANA, "Ana");
    let turn = harness.send(ANA, "humano");
    assert_eq!(ended(&turn, "purchase").outcome(), Some(Outcome::Handoff));
    assert_eq!((ended(&turn, "unknown").outcome(), ended(&turn, "unknown").step().as_str()), (Some(Outcome::Handoff), "buy"));
    assert!(turn.handoff_until.is_some());
    let turn = harness.send(ANA, "oi?");
    assert!(turn.silenced);
}

#[test]
fn an_operator_takeover_or_a_reset_inside_a_call_ends_the_whole_stack() {
    let mut harness = Harness::new(Rules::new());
    harness.send(ANA, "oi");
    harness.send(ANA, "1");
    let turn = harness.engine.takeover(harness.state(ANA), &instance(), &who(ANA), harness.now);
    assert_eq!(turn.ended().filter(|session| session.outcome() == Some(Outcome::Handoff)).count(), 2);
    let turn = harness.engine.close_all(harness.state(ANA), Outcome::Cancelled, "reset", harness.now).unwrap();
    harness.store.commit_now(&turn).unwrap();
    assert_eq!(turn.ended().count(), 2);
    assert!(harness.state(ANA).session.is_none());
}

#[test]
fn the_registry_refuses_calls_to_unknown_flows_and_versions() {
    let caller = |target: &'static str| {
        VersionDecl::new("unknown", 1, Lifecycle::Active).texts("[x]\nx\n").entry("go").step("go", Call::new(target))
    };
    let errors = Registry::new(vec![caller("purchse"), purchase(1, Lifecycle::Active)]).unwrap_err();
    assert_eq!(errors.iter().map(ToString::to_string).collect::<Vec<_>>(), vec!["unknown@v1: step 'go' calls unknown flow 'purchse' (did you mean 'purchase'?)"]);
    let errors = Registry::new(vec![caller("purchase@v9"), purchase(1, Lifecycle::Active)]).unwrap_err();
    assert_eq!(errors.iter().map(ToString::to_string).collect::<Vec<_>>(), vec!["unknown@v1: step 'go' calls purchase@v9, which is not compiled (compiled: v1)"]);
    let errors = Registry::new(vec![caller("purchase@2"), purchase(1, Lifecycle::Active)]).unwrap_err();
    assert!(errors[0].to_string().contains("call 'purchase@2': version '2' must look like v<N>"), "{}", errors[0]);
}

#[test]
fn a_flow_that_calls_itself_fails_the_session_instead_of_looping() {
    let looping = VersionDecl::new("unknown", 1, Lifecycle::Active).texts("[x]\nx\n").entry("go").step("go", Call::new("unknown").then(Next::Complete));
    let registry = Arc::new(Registry::new(vec![looping]).unwrap());
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    let engine = Engine::new(registry, resolver, EngineConfig { entry_flow: switchyard_engine::ids::FlowId::new_static("unknown"), ..EngineConfig::default() }).unwrap();
    let inbound = Inbound { instance: instance(), contact: who(ANA), content: Content::Text("oi".to_owned()) };
    let turn = engine.turn(ContactState::default(), &inbound, T0);
    assert!(turn.live().is_none());
    assert!(turn.ended().all(|session| session.outcome() == Some(Outcome::Failed)));
    assert!(turn.events.iter().any(|e| matches!(&e.kind, EventKind::Ended { detail: Some(d), .. } if d.contains("nested deeper than 8"))));
    let store = MemoryStore::new();
    store.commit_now(&turn).expect("a failed stack commits");
}
