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

/// What the `/metrics` totals replaced: counting the tables.
async fn counted(store: &Db) -> (Vec<(String, i64, String, i64)>, (i64, i64, i64)) {
    const SESSIONS: &str = "SELECT flow, version, COALESCE(outcome, 'live'), COUNT(*) FROM sessions GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";
    const MESSAGES: &str = "SELECT (SELECT COUNT(*) FROM inbox), (SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL), \
                            (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL)";
    match store {
        Db::Sqlite(s) => (sqlx::query_as(SESSIONS).fetch_all(s.pool()).await.unwrap(), sqlx::query_as(MESSAGES).fetch_one(s.pool()).await.unwrap()),
        Db::Postgres(p) => (sqlx::query_as(SESSIONS).fetch_all(p.pool()).await.unwrap(), sqlx::query_as(MESSAGES).fetch_one(p.pool()).await.unwrap()),
    }
}

#[tokio::test]
async fn metric_totals_are_kept_counters_equal_to_the_table_counts() {
    use switchyard_engine::queue::{InboxEntry, InboxKind, Queue};
    for store in every_backend("counters").await {
        let (v1, v2) = (engine(""), engine("unknown=v2"));
        // Customers through the inbox and the outbox: accepted, processed, replies sent, failed, waiting.
        for (idx, number) in ["5511900000011", "5511900000012", "5511900000013"].iter().enumerate() {
            let engine = if idx == 2 { &v2 } else { &v1 };
            for (turn_idx, line) in ["oi", "Ana", "ana@x.com"].iter().enumerate() {
                let entry = InboxEntry {
                    instance: InstanceId::parse("vendas").unwrap(),
                    contact: Contact::parse(number).unwrap(),
                    message_id: format!("{number}-{turn_idx}"),
                    reply_to: (*number).to_owned(),
                    kind: InboxKind::Customer(Content::Text((*line).to_owned())),
                    sent_at: None,
                    received_at: T0,
                };
                store.accept(&entry).await.unwrap();
                assert_eq!(store.accept(&entry).await.unwrap(), switchyard_engine::queue::Accepted::Duplicate);
                if idx == 1 && turn_idx == 2 {
                    break; // one message waits unprocessed
                }
                let pending = store.next_pending(&entry.instance, &entry.contact).await.unwrap().unwrap();
                let state = store.contact_state(&entry.instance, &entry.contact).await.unwrap();
                let inbound = Inbound { instance: entry.instance.clone(), contact: entry.contact.clone(), content: Content::Text((*line).to_owned()) };
                store.commit_inbound(&engine.turn(state, &inbound, T0), &pending, number).await.unwrap();
            }
        }
        let due = store.due_outbox(T0, 10).await.unwrap();
        store.outbox_sent(due[0].seq, Some("3EB0A"), T0).await.unwrap();
        store.outbox_failed(due[1].seq, "number not on WhatsApp", T0).await.unwrap();
        store.outbox_retry(due[2].seq, T0.plus(Duration::from_secs(5)), "503").await.unwrap();
        // A session expires (live -> expired) and one stays live.
        walk(&store, &v1, "suporte", "5511900000014", &["oi"], T0).await;
        for session in store.expired(T0.plus(Duration::from_secs(31 * 60)), 10).await.unwrap() {
            if session.contact().as_str() == "5511900000014" {
                store.commit(&v1.expire(session, T0.plus(Duration::from_secs(31 * 60)))).await.unwrap();
            }
        }

        let (sessions, (inbound, outbound, depth)) = counted(&store).await;
        assert!(inbound == 9 && outbound == 1 && depth > 0, "a workload worth checking: {inbound} {outbound} {depth}");
        let totals: Vec<(String, i64, String, i64)> =
            store.session_totals().await.unwrap().into_iter().map(|(flow, version, outcome, n)| (flow, i64::from(version.number()), outcome, n as i64)).collect();
        assert_eq!(totals, sessions, "{}", store.backend());
        assert!(totals.iter().any(|(_, _, outcome, _)| outcome == "expired") && totals.iter().any(|(_, _, outcome, _)| outcome == "completed"));
        assert_eq!(store.message_totals().await.unwrap(), (inbound as u64, outbound as u64), "{}", store.backend());
        assert_eq!(store.outbox_depth().await.unwrap(), depth as u64, "{}", store.backend());
        // The scrape reads the counters, not the tables.
        let kept: i64 = match &*store {
            Db::Sqlite(s) => sqlx::query_scalar("SELECT value FROM counters WHERE name = 'messages_in'").fetch_one(s.pool()).await.unwrap(),
            Db::Postgres(p) => sqlx::query_scalar("SELECT SUM(value)::BIGINT FROM counters WHERE name = 'messages_in'").fetch_one(p.pool()).await.unwrap(),
        };
        assert_eq!(kept, inbound);
    }
}
