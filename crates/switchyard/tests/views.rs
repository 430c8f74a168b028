//! The typed service layer over a real store on every backend (SQLite
//! always, PostgreSQL when it answers): conversations through the real
//! engine and flows, then the overview, the flow report and the health view
//! read back what happened.

use std::sync::Arc;
use std::time::Duration;

use switchyard::views::{flow, health, overview, Span};
use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::service::Conversations;
use switchyard_engine::time::{SystemClock, Timestamp};
use switchyard_store::Db;

fn engine_on(version: &str) -> Arc<Engine> {
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows"));
    let overrides = Overrides::parse(&format!("digital_certificate={version}"), &registry).expect("valid override");
    let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
    Arc::new(Engine::new(registry, resolver, EngineConfig::default()).unwrap())
}

async fn say(conversations: &Conversations<Db, SystemClock>, contact: &Contact, text: &str) {
    let inbound = Inbound { instance: InstanceId::parse("vendas").unwrap(), contact: contact.clone(), content: Content::Text(text.to_owned()) };
    conversations.handle(&inbound).await.expect("turn commits");
}

#[tokio::test]
async fn overview_report_and_health_show_what_happened_on_every_backend() {
    for store in switchyard_store::testing::every_backend("views").await {
        let store: Db = store.clone();
        let engine = engine_on("v2");
        let conversations = Conversations::new(Arc::clone(&engine), store.clone(), SystemClock);
        let contact = |n: u32| Contact::parse(&format!("55119700001{n:02}")).unwrap();
        // One purchase left live, one ended with `sair`, one handed to a person.
        say(&conversations, &contact(1), "quero comprar um certificado").await;
        say(&conversations, &contact(2), "quero comprar um certificado").await;
        say(&conversations, &contact(2), "sair").await;
        say(&conversations, &contact(3), "quero comprar um certificado").await;
        say(&conversations, &contact(3), "atendente").await;

        let now = Timestamp::now_utc().plus(Duration::from_secs(1));
        let view = overview::overview(&store, &engine, Span::last(Duration::from_secs(3600), now), now).await.unwrap();
        let certificate = view.flows.iter().find(|flow| flow.flow == "digital_certificate").expect("the flow is listed");
        assert_eq!(certificate.serving, vec![overview::Serving { version: Version::new(2), percent: 100.0 }], "the override serves v2");
        assert!(certificate.why.contains("FLOW_VERSION_OVERRIDES"), "{}", certificate.why);
        let v2 = certificate.versions.iter().find(|version| version.version == Version::new(2)).unwrap();
        assert_eq!((v2.live, v2.started.current, v2.started.previous), (1, 3, 0));
        assert!(v2.drained_by.is_some_and(|at| at > now), "a live session drains in the future: {v2:?}");
        let v1 = certificate.versions.iter().find(|version| version.version == Version::new(1)).unwrap();
        assert_eq!((v1.live, v1.drained_by, v1.started.current), (0, None, 0));
        assert!(view.sessions.current >= 3, "{:?}", view.sessions);
        assert_eq!(view.sessions.previous, 0);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["flows"].as_array().unwrap().len(), view.flows.len());

        let report = flow::flow_report(&store, &engine, "digital_certificate", &flow::ReportQuery::default()).await.unwrap();
        let figures = &report.versions[0];
        assert_eq!((figures.version, figures.started, figures.live, figures.cancelled, figures.handoff), (Version::new(2), 3, 1, 1, 1));
        assert_eq!(figures.finished, 2);
        assert_eq!(figures.handoff_rate.successes, 1);
        assert!(figures.handoff_rate.low < 0.5 && figures.handoff_rate.high > 0.5, "{:?}", figures.handoff_rate);
        let first = &figures.funnel[0];
        assert_eq!(first.reached, 3, "all three entered the first step: {:?}", figures.funnel);
        let lost: u64 = figures.funnel.iter().map(|step| step.lost_here).sum();
        assert_eq!(lost, 2);
        let commands: u64 = figures.funnel.iter().flat_map(|step| step.commands_here.values()).sum();
        assert_eq!(commands, 2, "sair and atendente are global commands");
        assert!(report.comparison.is_none(), "one version, nothing to compare");

        let view = health::health(&store, now, now.minus(Duration::from_secs(3600)), Some(false)).await.unwrap();
        assert_eq!(view.on_hold, 1, "atendente put the contact on hold");
        assert_eq!(view.holds[0].contact_masked, contact(3).masked());
        assert!(!serde_json::to_string(&view).unwrap().contains(contact(3).as_str()), "the contact is never serialised unmasked");
        assert_eq!(view.llm_breaker, Some("closed"));
        assert_eq!(view.outbox_depth, 0, "Conversations::handle queues no replies");
        assert!(view.send_failures.is_empty());
    }
}
