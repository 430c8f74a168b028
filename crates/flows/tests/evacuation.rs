//! `rollout evacuate` from digital_certificate@v2 to v3 and from v3 to v4,
//! through the real engine and the step maps: the customer continues in the
//! same subroute (in v4, the call of its flow) and is asked only for what
//! the old version had not collected yet.

use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::session::Outcome;
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::time::Timestamp;
use switchyard_flows::Deps;

const START: Timestamp = Timestamp::from_millis(1_795_608_000_000);

fn engine(registry: &Arc<Registry>, version: &str) -> Engine {
    let overrides = Overrides::parse(&format!("digital_certificate={version}"), registry).expect("valid override");
    Engine::new(Arc::clone(registry), Resolver::new(registry, overrides, Box::new(NoRules)), EngineConfig::default()).expect("engine")
}

fn texts(turn: &Turn) -> String {
    turn.replies.iter().map(|reply| reply.text.as_str()).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_v2_purchase_evacuated_to_v3_keeps_product_and_document_and_asks_only_the_e_mail() {
    let registry = Arc::new(switchyard_flows::registry(&Deps::demo()).expect("valid registry"));
    let store = MemoryStore::new();
    let (instance, contact) = (InstanceId::parse("vendas").unwrap(), Contact::parse("5511900000001").unwrap());
    let mut now = START;
    let mut say = |engine: &Engine, text: &str| {
        now = now.plus(Duration::from_secs(1));
        let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text(text.to_owned()) };
        let turn = engine.turn(store.contact_state_now(&instance, &contact), &inbound, now);
        store.commit_now(&turn).expect("commit");
        (turn, now)
    };
    let v2 = engine(&registry, "v2");
    say(&v2, "quero comprar um certificado");
    say(&v2, "1");
    let (turn, _) = say(&v2, "529.982.247-25");
    assert!(texts(&turn).contains("só falta o seu *e-mail*"), "{}", texts(&turn));
    let live = turn.live().expect("v2 session").clone();
    assert_eq!((live.version(), live.step().as_str()), (Version::new(2), "purchase.collect_details"));

    // The release is bad: new sessions go to v3 and the live one is moved now.
    let v3 = engine(&registry, "v3");
    let evacuated = v3.evacuate(store.contact_state_now(&instance, &contact).session.expect("live"), START.plus(Duration::from_secs(60))).expect("evacuates");
    store.commit_now(&evacuated).expect("commit");
    let old = evacuated.ended().next().expect("the v2 session ended");
    assert_eq!((old.version(), old.outcome()), (Version::new(2), Some(Outcome::Cancelled)));
    let new = evacuated.live().expect("a v3 session");
    assert_eq!((new.version(), new.step().as_str()), (Version::new(3), "purchase.order"));
    let said = texts(&evacuated);
    assert!(said.contains("precisei reiniciar") && said.contains("só falta o seu *e-mail*"), "{said}");
    let carried: Vec<String> = evacuated
        .events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::SlotFilled { slot, source, .. } => Some(format!("{slot}:{source}")),
            _ => None,
        })
        .collect();
    assert_eq!(carried, ["holder:carried", "media:carried"]);

    let (turn, _) = say(&v3, "ana@exemplo.com");
    assert!(texts(&turn).contains("*Certificado:* e-CPF A1 (arquivo, 1 ano)") && texts(&turn).contains("*Documento:* 529.982.247-25"), "{}", texts(&turn));
    let (turn, _) = say(&v3, "sim");
    assert_eq!(turn.ended().next().and_then(|session| session.outcome()), Some(Outcome::Completed));
}

/// v3 -> v4: the customer continues in the same subroute, now a call. A v3
/// renewal waiting for its confirmation restarts as v4's `renewal` step,
/// whose call of `dc_renewal` starts with the document v3 collected: the
/// certificate is looked up again and the confirmation asked, no question
/// repeated.
#[test]
fn a_v3_renewal_evacuated_to_v4_continues_in_the_dc_renewal_call_with_its_document() {
    let registry = Arc::new(switchyard_flows::registry(&Deps::demo()).expect("valid registry"));
    let store = MemoryStore::new();
    let (instance, contact) = (InstanceId::parse("vendas").unwrap(), Contact::parse("5511900000002").unwrap());
    let mut now = START;
    let mut say = |engine: &Engine, text: &str| {
        now = now.plus(Duration::from_secs(1));
        let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text(text.to_owned()) };
        let turn = engine.turn(store.contact_state_now(&instance, &contact), &inbound, now);
        store.commit_now(&turn).expect("commit");
        turn
    };
    let v3 = engine(&registry, "v3");
    say(&v3, "quero renovar meu certificado");
    let turn = say(&v3, "529.982.247-25");
    let live = turn.live().expect("v3 session").clone();
    assert_eq!((live.version(), live.step().as_str()), (Version::new(3), "renewal.confirm_renewal"));

    let v4 = engine(&registry, "v4");
    let evacuated = v4.evacuate(store.contact_state_now(&instance, &contact).session.expect("live"), START.plus(Duration::from_secs(60))).expect("evacuates");
    store.commit_now(&evacuated).expect("commit");
    let said = texts(&evacuated);
    assert!(said.contains("precisei reiniciar") && said.contains("Confirma?") && !said.contains("Me envie o *CPF*"), "{said}");
    let state = store.contact_state_now(&instance, &contact);
    let parent = state.session.expect("the v4 session");
    assert_eq!((parent.flow().as_str(), parent.version(), parent.step().as_str()), ("digital_certificate", Version::new(4), "renewal"));
    let frames: Vec<(String, Version, String, Option<_>)> =
        state.calls.iter().map(|frame| (frame.flow().to_string(), frame.version(), frame.step().to_string(), frame.parent())).collect();
    assert_eq!(frames, [("dc_renewal".to_owned(), Version::new(1), "renewal.confirm_renewal".to_owned(), Some(parent.id()))]);

    let turn = say(&v4, "sim");
    assert!(texts(&turn).contains("Renovação confirmada!"), "{}", texts(&turn));
    let ended: Vec<(String, Option<Outcome>)> = turn.ended().map(|session| (session.flow().to_string(), session.outcome())).collect();
    assert_eq!(ended, [("dc_renewal".to_owned(), Some(Outcome::Completed)), ("digital_certificate".to_owned(), Some(Outcome::Completed))]);
}
