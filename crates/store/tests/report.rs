//! Report aggregates on every backend: counts per version and the funnel per step.

use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound};
use switchyard_engine::flow::{Lifecycle, VersionDecl};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::kinds::{Ask, Say, To};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::store::Store;
use switchyard_engine::time::Timestamp;
use switchyard_store::report::Window;
use switchyard_store::testing::every_backend;
use switchyard_store::Db;

const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);

fn engine(overrides: &str) -> Engine {
    let shop = |version| {
        VersionDecl::new("unknown", version, if version == 1 { Lifecycle::Active } else { Lifecycle::Inactive })
            .texts("[name]\nNome?\n[email]\nE-mail?\n[bad]\nDe novo\n[handoff]\nhumano\n[done]\nFeito\n")
            .entry("ask.name")
            .step("ask.name", Ask::new("name", "name", |t| (!t.is_empty()).then(|| t.to_owned()), "bad", To::Step("ask.email")))
            .step("ask.email", Ask::new("email", "email", |t| t.contains('@').then(|| t.to_owned()), "bad", To::Step("done")).max_attempts(1))
            .step("done", Say::finish("done"))
    };
    let registry = Arc::new(Registry::new(vec![shop(1), shop(2)]).unwrap());
    let overrides = Overrides::parse(overrides, &registry).unwrap();
    let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
    Engine::new(registry, resolver, EngineConfig::default()).unwrap()
}

async fn walk(store: &Db, engine: &Engine, instance: &str, contact: &str, lines: &[&str], at: Timestamp) {
    for line in lines {
        let inbound = Inbound {
            instance: InstanceId::parse(instance).unwrap(),
            contact: Contact::parse(contact).unwrap(),
            content: Content::Text((*line).to_owned()),
        };
        let state = store.contact_state(&inbound.instance, &inbound.contact).await.unwrap();
        store.commit(&engine.turn(state, &inbound, at)).await.unwrap();
    }
}

#[tokio::test]
async fn counts_and_funnel_follow_the_sessions_and_the_window() {
    for store in every_backend("report").await {
        let (v1, v2) = (engine(""), engine("unknown=v2"));
        // v1: two complete, one hands off at ask.email, one stays live at ask.email.
        walk(&store, &v1, "vendas", "5511900000001", &["oi", "Ana", "ana@x.com"], T0).await;
        walk(&store, &v1, "vendas", "5511900000002", &["oi", "Bia", "bia@x.com"], T0).await;
        walk(&store, &v1, "vendas", "5511900000003", &["oi", "Caio", "sem email"], T0).await;
        walk(&store, &v1, "suporte", "5511900000004", &["oi", "Duda"], T0).await;
        // v2: one expires at ask.email (swept later), one completes, later.
        let later = T0.plus(Duration::from_secs(3600));
        walk(&store, &v2, "vendas", "5511900000005", &["oi", "Eva"], later).await;
        walk(&store, &v2, "vendas", "5511900000006", &["oi", "Fabi", "f@x.com"], later).await;
        let due = store.expired(later.plus(Duration::from_secs(31 * 60)), 10).await.unwrap();
        for session in due.into_iter().filter(|session| session.version() == Version::new(2)) {
            store.commit(&v2.expire(session, later.plus(Duration::from_secs(31 * 60)))).await.unwrap();
        }

        let all = Window { flow: "unknown", since: None, until: None, instance: None, reason: None };
        let aggregates = store.version_aggregates(&all).await.unwrap();
        let summary: Vec<(u32, u64, u64, u64, u64, u64)> =
            aggregates.iter().map(|a| (a.version.number(), a.counts.started, a.counts.completed, a.counts.handoff, a.counts.expired, a.counts.live)).collect();
        assert_eq!(summary, vec![(1, 4, 2, 1, 0, 1), (2, 2, 1, 0, 1, 0)]);
        assert_eq!(aggregates[0].counts.turns_of_finished.len(), 3);
        assert_eq!(aggregates[0].counts.completion_millis, vec![0, 0]);

        let funnel = store.funnel(&all, Version::new(1)).await.unwrap();
        let step = |name: &str| funnel.iter().find(|step| step.step == name).cloned().unwrap_or_default();
        assert_eq!((step("ask.name").reached, step("ask.email").reached, step("done").reached), (4, 4, 2));
        assert_eq!(step("ask.email").handed_off_here, 1);
        let funnel = store.funnel(&all, Version::new(2)).await.unwrap();
        assert_eq!(funnel.iter().find(|step| step.step == "ask.email").unwrap().expired_here, 1, "the drop-off is at its step");

        // Filters: the instance and the window.
        let suporte = InstanceId::parse("suporte").unwrap();
        let only_support = store.version_aggregates(&Window { instance: Some(&suporte), ..all.clone() }).await.unwrap();
        assert_eq!(only_support.iter().map(|a| (a.version.number(), a.counts.started)).collect::<Vec<_>>(), vec![(1, 1)]);
        let first_half_hour = store.version_aggregates(&Window { until: Some(T0.plus(Duration::from_secs(1800))), ..all.clone() }).await.unwrap();
        assert_eq!(first_half_hour.iter().map(|a| a.version.number()).collect::<Vec<_>>(), vec![1]);

        let overridden = store.version_aggregates(&Window { reason: Some("override"), ..all.clone() }).await.unwrap();
        assert_eq!(overridden.iter().map(|a| (a.version.number(), a.counts.started)).collect::<Vec<_>>(), vec![(2, 2)]);

        let totals = store.session_totals().await.unwrap();
        assert!(totals.contains(&("unknown".to_owned(), Version::new(1), "completed".to_owned(), 2)));
        assert!(totals.contains(&("unknown".to_owned(), Version::new(1), "live".to_owned(), 1)));
    }
}
