//! Engine behaviour through its public API, on small test flows: the session
//! contract of DESIGN section 3 (pinning, expiry, failure, handover, handoff)
//! and the registry's validation messages.

use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::event::EventKind;
use switchyard_engine::flow::{Lifecycle, Next, VersionDecl};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::kinds::{Ask, Custom, Menu, Say, To};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Reason, Resolver};
use switchyard_engine::session::Outcome;
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::time::Timestamp;

const ENTRY_TEXTS: &str = "[menu]\n1 loja, 2 quebrado\n[invalid]\nopção inválida\n[handoff]\nchamando atendente\n";
const SHOP_V1_TEXTS: &str = "[ask_name]\nQual o seu nome? (v1)\n[bad_name]\nnome inválido\n[handoff]\natendente\n[confirm]\nConfirma, {name}? (v1)\n[confirm.invalid]\nsim ou não\n[done]\nPedido feito (v1)\n";
const SHOP_V2_TEXTS: &str = "[ask_name]\nSeu nome, por favor (v2)\n[bad_name]\nnome inválido\n[handoff]\natendente\n[done]\nPedido feito (v2), {name}\n";

fn name(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (trimmed.len() >= 2 && trimmed.chars().all(|ch| ch.is_alphabetic() || ch == ' ')).then(|| trimmed.to_owned())
}

fn entry_v1() -> VersionDecl {
    VersionDecl::new("unknown", 1, Lifecycle::Active).texts(ENTRY_TEXTS).entry("menu").step(
        "menu",
        Menu::new("menu", "invalid").option(&["loja", "comprar"], To::Flow("shop")).option(&["quebrado"], To::Flow("broken")),
    )
}

fn shop_v1() -> VersionDecl {
    VersionDecl::new("shop", 1, Lifecycle::Active)
        .texts(SHOP_V1_TEXTS)
        .entry("order.ask_name")
        .step("order.ask_name", Ask::new("ask_name", "name", name, "bad_name", To::Step("order.confirm")))
        .step("order.confirm", Menu::new("confirm", "confirm.invalid").option(&["sim"], To::Step("order.done")).option(&["nao"], To::Cancel))
        .step("order.done", Say::finish("done"))
}

fn shop_v2() -> VersionDecl {
    VersionDecl::new("shop", 2, Lifecycle::Inactive)
        .texts(SHOP_V2_TEXTS)
        .entry("ask_name")
        .step("ask_name", Ask::new("ask_name", "name", name, "bad_name", To::Step("done")))
        .step("done", Say::finish("done"))
}

/// A flow whose second step panics, and whose `wander` step goes where it did not declare.
fn broken_v1() -> VersionDecl {
    VersionDecl::new("broken", 1, Lifecycle::Active)
        .texts("[hello]\nolá\n")
        .entry("start")
        .step(
            "start",
            Custom::new(&[To::Step("explode")], |_ctx, text| if text == "wander" { Next::Goto("nowhere") } else { Next::Goto("explode") })
                .on_enter(|ctx| {
                    ctx.say("hello");
                    Next::Wait
                })
                .texts(&["hello"]),
        )
        .step(
            "explode",
            // It says something before it panics: that reply must not go out.
            Custom::new(&[], |_ctx, _text| Next::Wait)
                .on_enter(|ctx| {
                    ctx.say("hello");
                    panic!("the backend returned nonsense")
                })
                .texts(&["hello"]),
        )
}

fn registry() -> Arc<Registry> {
    Arc::new(Registry::new(vec![entry_v1(), shop_v1(), shop_v2(), broken_v1()]).expect("test flows are valid"))
}

#[test]
fn a_handoff_or_cancel_the_flow_does_not_announce_still_tells_the_customer() {
    let silent = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[menu]\n1 humano, 2 sair\n[invalid]\nx\n[handoff]\ny\n")
        .entry("menu")
        .step("menu", Menu::new("menu", "invalid").option(&["humano"], To::Handoff).option(&["sair"], To::Cancel));
    let registry = Arc::new(Registry::new(vec![silent]).unwrap());
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    let engine = Engine::new(registry, resolver, EngineConfig::default()).unwrap();
    for (choice, outcome, fragment) in [("1", Outcome::Handoff, "pessoa da nossa equipe"), ("2", Outcome::Cancelled, "encerrei o atendimento")] {
        let store = MemoryStore::new();
        let inbound = |text: &str| Inbound { instance: instance(), contact: Contact::parse("5511900000009").unwrap(), content: Content::Text(text.to_owned()) };
        let turn = engine.turn(Default::default(), &inbound("oi"), T0);
        store.commit_now(&turn).unwrap();
        let turn = engine.turn(store.contact_state_now(&instance(), &Contact::parse("5511900000009").unwrap()), &inbound(choice), T0);
        assert_eq!(turn.ended().next().unwrap().outcome(), Some(outcome));
        assert_reply(&turn, fragment);
    }
}

struct Harness {
    engine: Engine,
    store: MemoryStore,
    now: Timestamp,
}

const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);

impl Harness {
    fn new(overrides: &str) -> Harness {
        Harness { engine: engine(overrides), store: MemoryStore::new(), now: T0 }
    }

    /// A redeploy: same store, new engine with other overrides.
    fn redeploy(&mut self, overrides: &str) {
        self.engine = engine(overrides);
    }

    fn send(&mut self, contact: &str, text: &str) -> Turn {
        self.send_content(contact, Content::Text(text.to_owned()))
    }

    fn send_content(&mut self, contact: &str, content: Content) -> Turn {
        let inbound = Inbound { instance: instance(), contact: Contact::parse(contact).unwrap(), content };
        let state = self.store.contact_state_now(&inbound.instance, &inbound.contact);
        let turn = self.engine.turn(state, &inbound, self.now);
        self.store.commit_now(&turn).expect("commit");
        turn
    }

    fn wait(&mut self, duration: Duration) {
        self.now = self.now.plus(duration);
    }
}

fn engine(overrides: &str) -> Engine {
    let registry = registry();
    let overrides = Overrides::parse(overrides, &registry).expect("valid overrides");
    let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
    Engine::new(registry, resolver, EngineConfig::default()).unwrap()
}

fn instance() -> InstanceId {
    InstanceId::parse("vendas").unwrap()
}

fn texts(turn: &Turn) -> Vec<&str> {
    turn.replies.iter().map(|reply| reply.text.as_str()).collect()
}

#[track_caller]
fn assert_reply(turn: &Turn, fragment: &str) {
    assert!(texts(turn).iter().any(|text| text.contains(fragment)), "no reply contains {fragment:?}: {:?}", texts(turn));
}

#[test]
fn a_new_contact_is_routed_by_the_entry_flow_and_served_by_the_active_version() {
    let mut harness = Harness::new("");
    let turn = harness.send("5511900000001", "oi");
    assert_reply(&turn, "1 loja");
    let turn = harness.send("5511900000001", "quero comprar");
    assert_reply(&turn, "Qual o seu nome? (v1)");
    let ended = turn.ended().next().expect("the router session ended");
    assert_eq!((ended.flow().as_str(), ended.outcome()), ("unknown", Some(Outcome::Completed)));
    let live = turn.live().expect("a shop session started");
    assert_eq!((live.flow().as_str(), live.version(), live.reason()), ("shop", Version::new(1), &Reason::Active));
    assert!(turn.events.iter().any(|event| matches!(&event.kind, EventKind::Ended { detail: Some(detail), .. } if detail == "handover:shop")));

    harness.send("5511900000001", "Ana");
    let turn = harness.send("5511900000001", "sim");
    assert_reply(&turn, "Pedido feito (v1)");
    assert_eq!(turn.ended().next().map(|s| s.outcome()), Some(Some(Outcome::Completed)));
}

#[test]
fn a_session_keeps_its_version_after_the_override_changes_and_new_sessions_follow_it() {
    let mut harness = Harness::new("");
    harness.send("5511900000001", "oi");
    let turn = harness.send("5511900000001", "1");
    assert_eq!(turn.live().unwrap().version(), Version::new(1));

    // Redeploy with the override pointing at v2: the live session stays on v1.
    harness.redeploy("shop=v2");
    let turn = harness.send("5511900000001", "Ana");
    assert_reply(&turn, "Confirma, Ana? (v1)");
    assert_eq!(turn.live().unwrap().version(), Version::new(1));
    assert_eq!(turn.live().unwrap().reason(), &Reason::Active);

    // A new contact gets v2, with the override as its reason.
    harness.send("5511900000002", "oi");
    let turn = harness.send("5511900000002", "1");
    assert_reply(&turn, "Seu nome, por favor (v2)");
    assert_eq!(turn.live().unwrap().version(), Version::new(2));
    assert_eq!(turn.live().unwrap().reason(), &Reason::Override);

    // Rolling back affects new sessions only.
    harness.redeploy("shop=v1");
    let turn = harness.send("5511900000002", "Bia");
    assert_reply(&turn, "Pedido feito (v2)");
}

#[test]
fn after_thirty_minutes_of_silence_the_session_expires_at_its_step_and_the_next_message_starts_afresh() {
    let mut harness = Harness::new("");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "1");
    harness.send("5511900000001", "Ana");

    // 29 minutes: still the same session.
    harness.wait(Duration::from_secs(29 * 60));
    let state = harness.store.contact_state_now(&instance(), &Contact::parse("5511900000001").unwrap());
    let session = state.session.expect("live");
    assert!(session.expires_at() > harness.now);

    // The sweeper expires it after 30 minutes of silence, at the step it was at.
    harness.wait(Duration::from_secs(2 * 60));
    let turn = harness.engine.expire(session.clone(), harness.now);
    harness.store.commit_now(&turn).unwrap();
    let expired = turn.ended().next().expect("expired");
    assert_eq!(expired.outcome(), Some(Outcome::Expired));
    assert_eq!(expired.step().as_str(), "order.confirm");
    let ended_event = turn.events.iter().find(|event| matches!(event.kind, EventKind::Ended { outcome: Outcome::Expired, .. })).unwrap();
    assert_eq!(ended_event.step.as_ref().unwrap().as_str(), "order.confirm");
    assert!(turn.replies.is_empty(), "nobody is there to read a reply");

    // The next message starts a new session, resolved afresh (now under an override).
    harness.redeploy("shop=v2");
    let turn = harness.send("5511900000001", "sim");
    assert_ne!(turn.live().unwrap().id(), session.id());
    assert_eq!(turn.live().unwrap().flow().as_str(), "unknown");
    let turn = harness.send("5511900000001", "loja");
    assert_eq!(turn.live().unwrap().version(), Version::new(2));
}

#[test]
fn an_expired_session_met_by_a_new_message_is_recorded_as_expired_before_the_new_one_starts() {
    let mut harness = Harness::new("");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "1");
    harness.wait(Duration::from_secs(31 * 60));
    let turn = harness.send("5511900000001", "oi de novo");
    let outcomes: Vec<_> = turn.sessions.iter().map(|s| (s.flow().as_str().to_owned(), s.outcome())).collect();
    assert_eq!(outcomes, vec![("shop".to_owned(), Some(Outcome::Expired)), ("unknown".to_owned(), None)]);
    assert_reply(&turn, "1 loja");
}

#[test]
fn a_panicking_handler_fails_only_its_session_with_an_apology_and_a_handoff() {
    let mut harness = Harness::new("");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "2");
    let turn = harness.send("5511900000001", "vai");
    let failed = turn.ended().next().expect("the session ended");
    assert_eq!(failed.outcome(), Some(Outcome::Failed));
    assert_reply(&turn, "Desculpe, tive um problema");
    assert!(!texts(&turn).iter().any(|text| text.contains("olá")), "the panicking step's reply is dropped: {:?}", texts(&turn));
    assert!(turn.handoff_until.is_some(), "a human takes over");
    let detail = turn.events.iter().find_map(|event| match &event.kind {
        EventKind::Ended { outcome: Outcome::Failed, detail } => detail.clone(),
        _ => None,
    });
    assert!(detail.unwrap().contains("the backend returned nonsense"));

    // The contact is with a human now: the bot stays silent.
    let turn = harness.send("5511900000001", "alô?");
    assert!(turn.silenced && turn.replies.is_empty());

    // The next contact is served normally.
    let turn = harness.send("5511900000002", "oi");
    assert_reply(&turn, "1 loja");
}

#[test]
fn an_undeclared_transition_fails_the_session_instead_of_wandering() {
    let mut harness = Harness::new("");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "2");
    let turn = harness.send("5511900000001", "wander");
    assert_eq!(turn.ended().next().unwrap().outcome(), Some(Outcome::Failed));
    assert_reply(&turn, "Desculpe");
}

#[test]
fn a_handoff_silences_the_bot_until_its_ttl_passes() {
    let mut harness = Harness::new("");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "xyz");
    let turn = harness.send("5511900000001", "abc");
    assert_reply(&turn, "chamando atendente");
    assert_eq!(turn.ended().next().unwrap().outcome(), Some(Outcome::Handoff));
    harness.wait(Duration::from_secs(23 * 3600));
    assert!(harness.send("5511900000001", "oi").silenced);
    harness.wait(Duration::from_secs(2 * 3600));
    let turn = harness.send("5511900000001", "oi");
    assert!(!turn.silenced);
    assert_reply(&turn, "1 loja");
}

#[test]
fn unsupported_content_gets_a_polite_reply_and_does_not_advance() {
    let mut harness = Harness::new("");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "1");
    let turn = harness.send_content("5511900000001", Content::Unsupported("audio".to_owned()));
    assert_reply(&turn, "só consigo entender mensagens de texto");
    assert!(turn.sessions.is_empty());
    let turn = harness.send("5511900000001", "Ana");
    assert_reply(&turn, "Confirma, Ana?");
}

#[test]
fn invalid_input_is_a_reprompt_and_counts_attempts_until_handoff() {
    let mut harness = Harness::new("");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "1");
    for _ in 0..2 {
        let turn = harness.send("5511900000001", "123");
        assert_reply(&turn, "nome inválido");
        assert!(turn.events.iter().any(|event| event.kind == EventKind::Retried));
    }
    let turn = harness.send("5511900000001", "456");
    assert_eq!(turn.ended().next().unwrap().outcome(), Some(Outcome::Handoff));
}

#[test]
fn a_removed_version_fails_its_live_sessions_and_restarts_them_on_what_resolves_now() {
    let mut harness = Harness::new("shop=v2");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "1");
    // A deploy that no longer compiles shop@v2.
    let registry = Arc::new(Registry::new(vec![entry_v1(), shop_v1(), broken_v1()]).unwrap());
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    harness.engine = Engine::new(registry, resolver, EngineConfig::default()).unwrap();
    let turn = harness.send("5511900000001", "Ana");
    let failed = turn.ended().next().unwrap();
    assert_eq!((failed.version(), failed.outcome()), (Version::new(2), Some(Outcome::Failed)));
    assert!(turn.events.iter().any(|e| matches!(&e.kind, EventKind::Ended { detail: Some(d), .. } if d == "version_gone")));
    assert_reply(&turn, "precisei reiniciar");
    assert_reply(&turn, "1 loja");
    assert!(turn.handoff_until.is_none());
}

#[test]
fn registry_rejects_a_dangling_transition_naming_flow_version_step_and_the_nearest_name() {
    let broken = VersionDecl::new("shop", 3, Lifecycle::Inactive)
        .texts(SHOP_V2_TEXTS)
        .entry("ask_name")
        .step("ask_name", Ask::new("ask_name", "name", name, "bad_name", To::Step("dnoe")))
        .step("done", Say::finish("done"));
    let errors = Registry::new(vec![entry_v1(), shop_v1(), broken, broken_v1()]).unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        messages.contains(&"shop@v3: step 'ask_name' goes to unknown step 'dnoe' (did you mean 'done'?)".to_owned()),
        "{messages:?}"
    );
}

#[test]
fn registry_rejects_an_unreachable_step_by_name() {
    let island = VersionDecl::new("shop", 3, Lifecycle::Inactive)
        .texts(SHOP_V2_TEXTS)
        .entry("ask_name")
        .step("ask_name", Ask::new("ask_name", "name", name, "bad_name", To::Complete))
        .step("done", Say::finish("done"));
    let errors = Registry::new(vec![entry_v1(), shop_v1(), island, broken_v1()]).unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages, vec!["shop@v3: step 'done' cannot be reached from the entry step".to_owned()]);
}

#[test]
fn registry_requires_exactly_one_active_version_and_unique_versions() {
    let mut second_active = shop_v2();
    second_active.lifecycle = Lifecycle::Active;
    let messages: Vec<String> =
        Registry::new(vec![entry_v1(), shop_v1(), second_active, broken_v1()]).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(messages, vec!["flow 'shop': versions v1, v2 are all declared active (exactly one must be)".to_owned()]);

    let mut no_active = shop_v1();
    no_active.lifecycle = Lifecycle::Deprecated;
    let messages: Vec<String> =
        Registry::new(vec![entry_v1(), no_active, shop_v2(), broken_v1()]).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(messages, vec!["flow 'shop': no version is declared active (exactly one must be)".to_owned()]);

    let messages: Vec<String> =
        Registry::new(vec![entry_v1(), shop_v1(), shop_v1(), broken_v1()]).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(messages, vec!["shop@v1: declared twice".to_owned()]);
}

#[test]
fn registry_rejects_missing_texts_and_unknown_handover_flows() {
    let bad = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[menu]\nx\n[invalid]\ny\n[handoff]\nz\n")
        .entry("menu")
        .step("menu", Menu::new("menu", "invlid").option(&["loja"], To::Flow("shp")));
    let messages: Vec<String> = Registry::new(vec![bad, shop_v1()]).unwrap_err().iter().map(ToString::to_string).collect();
    assert!(messages.contains(&"unknown@v1: step 'menu' hands over to unknown flow 'shp' (did you mean 'shop'?)".to_owned()), "{messages:?}");
    assert!(
        messages.contains(&"unknown@v1: step 'menu' uses text 'invlid' which texts.txt does not define (did you mean 'invalid'?)".to_owned()),
        "{messages:?}"
    );
}

#[test]
fn overrides_parse_strictly_and_name_each_bad_entry() {
    let registry = registry();
    let parsed = Overrides::parse(" shop = v2 , broken=v1 ", &registry).unwrap();
    assert_eq!(parsed.to_string(), "shop=v2,broken=v1");
    assert_eq!(Overrides::parse("", &registry).unwrap(), Overrides::none());

    let cases = [
        ("shop", "FLOW_VERSION_OVERRIDES entry 'shop' must look like flow=vN, for example digital_certificate=v1"),
        ("shp=v1", "FLOW_VERSION_OVERRIDES entry 'shp=v1': unknown flow 'shp' (did you mean 'shop'?)"),
        ("shop=v9", "FLOW_VERSION_OVERRIDES entry 'shop=v9': flow 'shop' has no version v9 (compiled: v1, v2)"),
        ("shop=2", "FLOW_VERSION_OVERRIDES entry 'shop=2': version '2' must look like v<N> (for example v1)"),
        ("shop=v1,shop=v2", "FLOW_VERSION_OVERRIDES entry 'shop=v2': flow 'shop' is overridden twice"),
        ("shop=v1,,broken=v1", "FLOW_VERSION_OVERRIDES entry 2 is empty (remove the extra comma)"),
    ];
    for (text, expected) in cases {
        assert_eq!(Overrides::parse(text, &registry).unwrap_err(), vec![expected.to_owned()], "{text}");
    }
}

#[test]
fn the_resolver_prefers_the_override_then_the_active_version() {
    let engine = engine("shop=v2");
    let contact = Contact::parse("5511900000001").unwrap();
    let resolution = engine.resolve("shop", &instance(), &contact, T0).unwrap();
    assert_eq!((resolution.version, resolution.reason), (Version::new(2), Reason::Override));
    let resolution = engine.resolve("broken", &instance(), &contact, T0).unwrap();
    assert_eq!((resolution.version, resolution.reason), (Version::new(1), Reason::Active));
    assert!(engine.resolve("nope", &instance(), &contact, T0).is_none());
}

#[test]
fn evacuation_restarts_live_sessions_on_the_version_that_resolves_now() {
    let mut harness = Harness::new("shop=v2");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "1");
    let state = harness.store.contact_state_now(&instance(), &Contact::parse("5511900000001").unwrap());
    let session = state.session.unwrap();
    assert_eq!(session.version(), Version::new(2));
    // Refused while new sessions still get v2.
    assert!(harness.engine.evacuate(session.clone(), harness.now).unwrap_err().contains("still resolve to v2"));
    // After the rollback, the customer moves to v1 at once with an apology.
    harness.redeploy("");
    let turn = harness.engine.evacuate(session, harness.now).unwrap();
    harness.store.commit_now(&turn).unwrap();
    let ended = turn.ended().next().unwrap();
    assert_eq!((ended.version(), ended.outcome()), (Version::new(2), Some(Outcome::Cancelled)));
    assert!(turn.events.iter().any(|e| matches!(&e.kind, EventKind::Ended { detail: Some(d), .. } if d == "evacuated")));
    assert_eq!(turn.live().unwrap().version(), Version::new(1));
    assert_reply(&turn, "precisei reiniciar");
    assert_reply(&turn, "Qual o seu nome? (v1)");
    let turn = harness.send("5511900000001", "Ana");
    assert_reply(&turn, "Confirma, Ana? (v1)");
}

#[test]
fn evacuation_continues_at_the_step_the_new_version_maps_with_the_data_collected() {
    let mapped_v2 = || shop_v2().step_map(1, &[("order.confirm", "done")]);
    let registry = |v2: VersionDecl| Arc::new(Registry::new(vec![entry_v1(), shop_v1(), v2, broken_v1()]).unwrap());
    let mut harness = Harness::new("");
    harness.send("5511900000001", "oi");
    harness.send("5511900000001", "1");
    harness.send("5511900000001", "Ana");
    let session = harness.store.contact_state_now(&instance(), &Contact::parse("5511900000001").unwrap()).session.unwrap();
    assert_eq!(session.step().as_str(), "order.confirm");

    let registry = registry(mapped_v2());
    let resolver = Resolver::new(&registry, Overrides::parse("shop=v2", &registry).unwrap(), Box::new(NoRules));
    let engine = Engine::new(registry, resolver, EngineConfig::default()).unwrap();
    let turn = engine.evacuate(session, harness.now).unwrap();
    assert_reply(&turn, "precisei reiniciar");
    assert_reply(&turn, "Pedido feito (v2), Ana");
    let finished = turn.sessions.iter().find(|s| s.version() == Version::new(2)).unwrap();
    assert_eq!((finished.outcome(), finished.data().get("name")), (Some(Outcome::Completed), Some("Ana")));

    // A map pointing at a step the version does not have is refused.
    let broken = shop_v2().step_map(1, &[("order.confirm", "dnoe")]);
    let messages: Vec<String> = Registry::new(vec![entry_v1(), shop_v1(), broken, broken_v1()]).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(messages, vec!["shop@v2: step '<step map from v1 'order.confirm'>' goes to unknown step 'dnoe' (did you mean 'done'?)".to_owned()]);
}

#[test]
fn a_moved_commit_stores_what_a_copied_one_does_and_refuses_the_same_stale_turns() {
    let engine = engine("");
    let contact = Contact::parse("5511900000010").unwrap();
    let inbound = |text: &str| Inbound { instance: instance(), contact: contact.clone(), content: Content::Text(text.to_owned()) };
    let (copied, moved) = (MemoryStore::new(), MemoryStore::new());
    let mut stale = None;
    for text in ["oi", "1", "Ana", "sim"] {
        let state = copied.contact_state_now(&instance(), &contact);
        let turn = engine.turn(state, &inbound(text), T0);
        copied.commit_now(&turn).unwrap();
        let state = moved.contact_state_now(&instance(), &contact);
        // Session ids are generated: run the same turn on the moved store's state.
        let turn = engine.turn(state, &inbound(text), T0);
        stale = Some(turn.clone());
        moved.commit_owned(turn).unwrap();
    }
    let (copied_state, moved_state) = (copied.contact_state_now(&instance(), &contact), moved.contact_state_now(&instance(), &contact));
    assert!(copied_state.session.is_none() && moved_state.session.is_none(), "the purchase ended in both");
    // Sorted: both sessions start at T0, so the store's order is the ids' (random).
    let shape = |store: &MemoryStore| {
        let sessions = block_on(switchyard_engine::store::Store::sessions_of(store, &instance(), &contact));
        sessions
            .iter()
            .map(|session| {
                let events = block_on(switchyard_engine::store::Store::events_of(store, session.id()));
                let kinds: Vec<&str> = events.iter().map(|event| event.kind.name()).collect();
                let data: Vec<(String, String)> = session.data().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                format!("{}@{} {:?} rev{} {:?} {:?}", session.flow(), session.version(), session.outcome(), session.revision(), data, kinds)
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(shape(&moved), shape(&copied));
    assert!(shape(&moved).iter().any(|line| line.contains("shop@v1 Some(Completed)") && line.contains("Ana")), "{:?}", shape(&moved));
    // The last turn again: its session is no longer live at that revision.
    let stale = stale.unwrap();
    let refused_copy = moved.commit_now(&stale).unwrap_err().to_string();
    let refused_move = moved.commit_owned(stale).unwrap_err().to_string();
    assert!(refused_copy.starts_with("conflict"), "{refused_copy}");
    assert_eq!(refused_move, refused_copy);
}

/// Runs a store future that never waits (the memory store's).
fn block_on<T>(future: impl std::future::Future<Output = Result<T, switchyard_engine::store::StoreError>>) -> T {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output.expect("memory store"),
        std::task::Poll::Pending => panic!("the memory store never waits"),
    }
}
