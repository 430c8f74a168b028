//! Global commands (`menu`, `sair`, `atendente`) in the middle of a purchase
//! of digital_certificate v1 and v2, through the real engine, the real flows
//! and a real SQLite store; the funnel read back from the store shows where
//! each happened.

mod support;

use std::sync::Arc;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::service::Conversations;
use switchyard_engine::session::Outcome;
use switchyard_engine::store::Store;
use switchyard_engine::time::SystemClock;
use switchyard_store::report::{StepAggregate, Window};
use switchyard_store::Db;

fn engine_on(version: &str) -> Arc<Engine> {
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows"));
    let overrides = Overrides::parse(&format!("digital_certificate={version}"), &registry).expect("valid override");
    let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
    Arc::new(Engine::new(registry, resolver, EngineConfig::default()).unwrap())
}

struct Customer<'a> {
    conversations: &'a Conversations<Db, SystemClock>,
    contact: Contact,
}

impl Customer<'_> {
    async fn says(&self, text: &str) -> Turn {
        let inbound = Inbound {
            instance: InstanceId::parse("vendas").unwrap(),
            contact: self.contact.clone(),
            content: Content::Text(text.to_owned()),
        };
        self.conversations.handle(&inbound).await.expect("turn commits")
    }

    async fn live_step(&self) -> Option<(String, String)> {
        let state = self.conversations.store().contact_state(&InstanceId::parse("vendas").unwrap(), &self.contact).await.unwrap();
        state.session.filter(|session| session.is_live()).map(|session| (session.flow().to_string(), session.step().to_string()))
    }
}

fn text_of(turn: &Turn) -> String {
    turn.replies.iter().map(|reply| reply.text.as_str()).collect::<Vec<_>>().join("\n")
}

/// The one session that ended in `turn`: (flow, step, outcome, detail).
fn ended(turn: &Turn) -> (String, String, Outcome, Option<String>) {
    let sessions: Vec<_> = turn.ended().collect();
    assert_eq!(sessions.len(), 1, "one session ended: {:?}", turn.events);
    let detail = turn.events.iter().find_map(|event| match &event.kind {
        switchyard_engine::event::EventKind::Ended { detail, .. } => Some(detail.clone()),
        _ => None,
    });
    (sessions[0].flow().to_string(), sessions[0].step().to_string(), sessions[0].outcome().unwrap(), detail.flatten())
}

fn step<'a>(funnel: &'a [StepAggregate], name: &str) -> &'a StepAggregate {
    funnel.iter().find(|aggregate| aggregate.step == name).unwrap_or_else(|| panic!("step {name} in {funnel:?}"))
}

/// Walks a purchase to the document question: v1 asks the type, the media,
/// then the document; v2 asks the product, then document and e-mail together.
async fn to_document(customer: &Customer<'_>, version: &str) -> &'static str {
    customer.says("quero comprar um certificado").await;
    customer.says("1").await;
    if version == "v1" {
        customer.says("1").await;
        "purchase.collect_document"
    } else {
        "purchase.collect_details"
    }
}

/// On every backend this machine has (SQLite always, PostgreSQL when it answers).
async fn commands_mid_purchase(version: &str) {
    for store in switchyard_store::testing::every_backend("commands").await {
        commands_mid_purchase_on(store.clone(), version).await;
    }
}

async fn commands_mid_purchase_on(store: Db, version: &str) {
    let conversations = Conversations::new(engine_on(version), store.clone(), SystemClock);
    let contact = |n: u32| Contact::parse(&format!("55119700000{n:02}")).unwrap();

    // `menu`: the purchase ends cancelled where it was, the main menu shows.
    let menu = Customer { conversations: &conversations, contact: contact(1) };
    let at = to_document(&menu, version).await;
    assert_eq!(menu.live_step().await, Some(("digital_certificate".to_owned(), at.to_owned())));
    let turn = menu.says("Menu").await;
    assert_eq!(ended(&turn), ("digital_certificate".to_owned(), at.to_owned(), Outcome::Cancelled, Some("command:menu".to_owned())));
    assert!(text_of(&turn).contains("Como posso te ajudar hoje?"), "{}", text_of(&turn));
    assert_eq!(menu.live_step().await, Some(("unknown".to_owned(), "choose".to_owned())), "the main menu waits for a choice");
    // The menu works as usual afterwards.
    assert!(text_of(&menu.says("2").await).contains("segunda via"));

    // `sair`: ends politely, nothing live afterwards.
    let exit = Customer { conversations: &conversations, contact: contact(2) };
    let at = to_document(&exit, version).await;
    let turn = exit.says("sair").await;
    assert_eq!(ended(&turn), ("digital_certificate".to_owned(), at.to_owned(), Outcome::Cancelled, Some("command:exit".to_owned())));
    assert!(text_of(&turn).contains("encerrei o atendimento"), "{}", text_of(&turn));
    assert_eq!(exit.live_step().await, None);

    // `atendente` one step earlier: a handoff at once; the bot goes silent.
    let human = Customer { conversations: &conversations, contact: contact(3) };
    human.says("quero comprar um certificado").await;
    let turn = human.says("ATENDENTE!").await;
    let at = if version == "v1" { "purchase.choose_type" } else { "purchase.choose_product" };
    assert_eq!(ended(&turn), ("digital_certificate".to_owned(), at.to_owned(), Outcome::Handoff, Some("command:human".to_owned())));
    assert!(text_of(&turn).contains("uma pessoa da nossa equipe"), "{}", text_of(&turn));
    assert!(turn.handoff_until.is_some());
    assert!(human.says("oi?").await.replies.is_empty(), "a human has the conversation now");

    // A sentence that merely contains a command word is left to the flow.
    let sentence = Customer { conversations: &conversations, contact: contact(4) };
    let document_step = to_document(&sentence, version).await;
    let turn = sentence.says("o menu de vocês é confuso").await;
    assert_eq!(turn.ended().count(), 0, "not a command: {:?}", turn.events);
    assert_eq!(sentence.live_step().await, Some(("digital_certificate".to_owned(), document_step.to_owned())));

    // The funnel of this version shows each at its step.
    let window = Window { flow: "digital_certificate", since: None, until: None, instance: None, reason: None };
    let number = version.trim_start_matches('v').parse().unwrap();
    let funnel = store.funnel(&window, Version::new(number)).await.unwrap();
    assert_eq!(step(&funnel, document_step).cancelled_here, 2, "menu and sair at {document_step}: {funnel:?}");
    assert_eq!(step(&funnel, at).handed_off_here, 1, "atendente at {at}: {funnel:?}");
    let total_cancelled: u64 = funnel.iter().map(|aggregate| aggregate.cancelled_here).sum();
    let total_handoff: u64 = funnel.iter().map(|aggregate| aggregate.handed_off_here).sum();
    assert_eq!((total_cancelled, total_handoff), (2, 1), "{funnel:?}");
    // And which command it was, per step.
    let commands = store.commands_by_step(&window, Version::new(number)).await.unwrap();
    let mut expected = vec![
        (document_step.to_owned(), "exit".to_owned(), 1),
        (document_step.to_owned(), "menu".to_owned(), 1),
        (at.to_owned(), "human".to_owned(), 1),
    ];
    expected.sort();
    assert_eq!(commands, expected);
    // The report shows them in the funnel.
    let report = switchyard::views::flow::flow_report(&store, &engine_on(version), "digital_certificate", &switchyard::views::flow::ReportQuery::default()).await.unwrap();
    let reported = report.versions[0].funnel.iter().find(|step| step.step == document_step).unwrap();
    let expected: std::collections::BTreeMap<String, u64> = [("exit".to_owned(), 1), ("menu".to_owned(), 1)].into();
    assert_eq!(reported.commands_here, expected, "{report:#?}");
    // The event log names the command at the step it happened.
    let history = store.sessions_of(&InstanceId::parse("vendas").unwrap(), &contact(1)).await.unwrap();
    let purchase = history.iter().find(|session| session.flow().as_str() == "digital_certificate").unwrap();
    let events = store.events_of(purchase.id()).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.step.as_ref().map(ToString::to_string).as_deref(), Some(document_step));
    assert!(matches!(&last.kind, switchyard_engine::event::EventKind::Ended { outcome: Outcome::Cancelled, detail: Some(detail) } if detail == "command:menu"));
}

#[tokio::test]
async fn menu_sair_and_atendente_mid_purchase_on_v1_end_the_session_and_show_in_the_funnel() {
    commands_mid_purchase("v1").await;
}

#[tokio::test]
async fn menu_sair_and_atendente_mid_purchase_on_v2_end_the_session_and_show_in_the_funnel() {
    commands_mid_purchase("v2").await;
}

#[tokio::test]
async fn sair_without_a_session_says_goodbye_and_starts_nothing() {
    let store = switchyard_store::open(&support::fresh_db(), &switchyard_store::PgSettings::default()).await.unwrap();
    let conversations = Conversations::new(engine_on("v1"), store, SystemClock);
    let customer = Customer { conversations: &conversations, contact: Contact::parse("5511970000099").unwrap() };
    let turn = customer.says("encerrar").await;
    assert!(text_of(&turn).contains("encerrei o atendimento"));
    assert!(turn.sessions.is_empty());
    assert_eq!(customer.live_step().await, None);
}
