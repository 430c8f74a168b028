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

/// A clock the test moves.
#[derive(Clone)]
struct TestClock(Arc<std::sync::atomic::AtomicI64>);

impl switchyard_engine::time::Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl TestClock {
    fn set(&self, at: Timestamp) {
        self.0.store(at.as_millis(), std::sync::atomic::Ordering::SeqCst);
    }
}

async fn say_at(conversations: &Conversations<Db, TestClock>, contact: &Contact, text: &str) {
    let inbound = Inbound { instance: InstanceId::parse("vendas").unwrap(), contact: contact.clone(), content: Content::Text(text.to_owned()) };
    conversations.handle(&inbound).await.expect("turn commits");
}

/// The report from hourly rollups equals the report counted from the event
/// log, for whole and ragged windows, and a session written into a rolled
/// hour drops that hour's rollup so the figures stay right.
#[tokio::test]
async fn rollup_figures_equal_the_event_log_on_every_backend() {
    use switchyard::views::rollup;
    for store in switchyard_store::testing::every_backend("rollup").await {
        let store: Db = store.clone();
        let engine = engine_on("v1");
        let clock = TestClock(Arc::new(std::sync::atomic::AtomicI64::new(0)));
        let conversations = Conversations::new(Arc::clone(&engine), store.clone(), clock.clone());
        let now = Timestamp::now_utc();
        let hour = 3_600_000;
        let base = (now.as_millis() / hour - 6) * hour;
        let contact = |n: u32| Contact::parse(&format!("55119700002{n:02}")).unwrap();
        // Three past hours: purchases that end with sair, atendente and menu,
        // and one left live in the last of them.
        for (n, offset) in [(1, 0), (2, 1), (3, 2), (4, 2)] {
            clock.set(Timestamp::from_millis(base + offset * hour + 60_000 * i64::from(n)));
            say_at(&conversations, &contact(n), "quero comprar um certificado").await;
            say_at(&conversations, &contact(n), "1").await;
            let ending = ["sair", "atendente", "menu", ""][n as usize - 1];
            if !ending.is_empty() {
                say_at(&conversations, &contact(n), ending).await;
            }
        }
        let whole = flow::ReportQuery { since: Some(Timestamp::from_millis(base - hour)), until: Some(now), ..Default::default() };
        let counted = serde_json::to_value(flow::flow_report(&store, &engine, "digital_certificate", &whole).await.unwrap()).unwrap();
        assert!(store.rolled_hours("digital_certificate", 0, i64::MAX).await.unwrap().is_empty());

        let stored = rollup::refresh(&store, "digital_certificate", now, 1000).await.unwrap();
        let rolled = store.rolled_hours("digital_certificate", 0, i64::MAX).await.unwrap();
        let live_hour = base / hour + 2;
        assert!(rolled.contains(&(base / hour)) && rolled.contains(&(base / hour + 1)), "{rolled:?}");
        assert!(!rolled.contains(&live_hour), "an hour with a live session is not rolled up: {rolled:?}");
        assert_eq!(stored, rolled.len());
        let merged = serde_json::to_value(flow::flow_report(&store, &engine, "digital_certificate", &whole).await.unwrap()).unwrap();
        assert_eq!(merged, counted, "rollups and the event log agree");
        assert_eq!(merged["versions"][0]["started"], 4);

        // A ragged window: half of the first hour, through the middle of the last.
        let range = rollup::Range { flow: "digital_certificate", since: base + hour / 2, until: base + 2 * hour + hour / 2, instance: None };
        assert_eq!(rollup::tally(&store, range).await.unwrap(), rollup::count(&store, range).await.unwrap());

        // A late session in a rolled hour drops the rollup; figures stay right.
        clock.set(Timestamp::from_millis(base + hour + 30 * 60_000));
        say_at(&conversations, &contact(9), "quero comprar um certificado").await;
        say_at(&conversations, &contact(9), "sair").await;
        assert!(!store.rolled_hours("digital_certificate", 0, i64::MAX).await.unwrap().contains(&(base / hour + 1)));
        let after = flow::flow_report(&store, &engine, "digital_certificate", &whole).await.unwrap();
        assert_eq!(after.versions[0].started, 5);
        rollup::refresh(&store, "digital_certificate", now, 1000).await.unwrap();
        let again = flow::flow_report(&store, &engine, "digital_certificate", &whole).await.unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&after).unwrap());
    }
}

/// `serve` rolls up finished hours by itself (`ROLLUP_INTERVAL`), on every
/// backend, and the report it then reads from `report_hours` has the same
/// figures as the one counted from the event log before any rollup existed.
#[tokio::test]
async fn serve_fills_report_hours_and_the_report_keeps_its_figures_on_every_backend() {
    for store in switchyard_store::testing::every_backend("serve_rollup").await {
        let store: Db = store.clone();
        let engine = engine_on("v1");
        let clock = TestClock(Arc::new(std::sync::atomic::AtomicI64::new(0)));
        let conversations = Conversations::new(Arc::clone(&engine), store.clone(), clock.clone());
        let hour = 3_600_000;
        let base = (Timestamp::now_utc().as_millis() / hour - 5) * hour;
        let contact = |n: u32| Contact::parse(&format!("55119700003{n:02}")).unwrap();
        for (n, offset, ending) in [(1, 0, "sair"), (2, 1, "atendente"), (3, 3, "menu"), (4, 3, "sair")] {
            clock.set(Timestamp::from_millis(base + offset * hour + 60_000 * i64::from(n)));
            say_at(&conversations, &contact(n), "quero comprar um certificado").await;
            say_at(&conversations, &contact(n), ending).await;
        }
        let whole = flow::ReportQuery { since: Some(Timestamp::from_millis(base - hour)), until: Some(Timestamp::now_utc()), ..Default::default() };
        let counted = serde_json::to_value(flow::flow_report(&store, &engine, "digital_certificate", &whole).await.unwrap()).unwrap();
        assert!(store.rolled_hours("digital_certificate", 0, i64::MAX).await.unwrap().is_empty());

        let mut config = switchyard::config::ServeConfig::defaults("http://127.0.0.1:9");
        config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.rollup_interval = Duration::from_millis(50);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = switchyard::serve::Server::start(listener, Arc::clone(&engine), Arc::new(store.clone()), config).await.unwrap();
        let expected = [base / hour, base / hour + 1, base / hour + 3];
        let mut rolled = Vec::new();
        for _ in 0..400 {
            rolled = store.rolled_hours("digital_certificate", 0, i64::MAX).await.unwrap();
            if expected.iter().all(|hour| rolled.contains(hour)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        server.shutdown().await;
        assert!(expected.iter().all(|hour| rolled.contains(hour)), "serve rolled up {rolled:?}, expected at least {expected:?}");
        let stored = store.report_hours("digital_certificate", base / hour, base / hour + 4).await.unwrap();
        assert_eq!(stored.len(), 4, "the hour without sessions is stored too (as empty), so it is never counted again");
        let merged = serde_json::to_value(flow::flow_report(&store, &engine, "digital_certificate", &whole).await.unwrap()).unwrap();
        assert_eq!(merged, counted, "the report from serve's rollups equals the one counted from the event log");
        assert_eq!(merged["versions"][0]["started"], 4);
    }
}

/// The sample-ratio check counts the draws made at the split's current
/// weights, on every backend: a ramp moves the mark, and the draws before it
/// are not compared with the new weights.
#[tokio::test]
async fn the_sample_ratio_check_counts_draws_since_the_weights_changed_on_every_backend() {
    use switchyard_engine::rollout::{FlowRules, Split, Weight};
    for store in switchyard_store::testing::every_backend("views_draws").await {
        let store: Db = store.clone();
        let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows"));
        let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
        let engine = Arc::new(Engine::new(Arc::clone(&registry), resolver, EngineConfig::default()).unwrap());
        let conversations = Conversations::new(Arc::clone(&engine), store.clone(), SystemClock);
        let split = |v1: u32, v2: u32| FlowRules {
            split: Some(Split::new(vec![(Version::new(1), Weight::percent(v1)), (Version::new(2), Weight::percent(v2))], None, 0).unwrap()),
            ..FlowRules::default()
        };
        let set = |v1: u32, v2: u32| {
            let (store, registry, engine) = (store.clone(), Arc::clone(&registry), Arc::clone(&engine));
            async move {
                switchyard::rollout::change(&store, &registry, "digital_certificate", &split(v1, v2), "test", "split", "weights").await.unwrap();
                switchyard::rollout::load_into(&store, &engine).await.unwrap();
                store.load_policy().await.unwrap().0.get("digital_certificate").unwrap().split.clone().unwrap().weights_after_event
            }
        };
        let first = set(50, 50).await.expect("a new split is stamped");
        for n in 0..6 {
            say(&conversations, &Contact::parse(&format!("55119710001{n:02}")).unwrap(), "quero comprar um certificado").await;
        }
        assert_eq!(set(50, 50).await, Some(first), "the same weights keep their mark");
        let ramp = set(20, 80).await.expect("a ramp is stamped");
        assert!(ramp > first, "{ramp} after {first}");
        for n in 0..4 {
            say(&conversations, &Contact::parse(&format!("55119720001{n:02}")).unwrap(), "quero comprar um certificado").await;
        }
        let total = |draws: Vec<(u32, u64)>| draws.iter().map(|(_, count)| count).sum::<u64>();
        assert_eq!(total(store.split_draws("digital_certificate", first).await.unwrap()), 10);
        assert_eq!(total(store.split_draws("digital_certificate", ramp).await.unwrap()), 4);
        let report = flow::flow_report(&store, &engine, "digital_certificate", &flow::ReportQuery::default()).await.unwrap();
        let srm = report.sample_ratio.expect("a split is checked");
        let counted: Vec<u64> = srm.observed.iter().map(|share| share.sessions).collect();
        assert_eq!(counted.iter().sum::<u64>(), 4, "only the draws at 20/80: {counted:?}");
    }
}

/// Makes the audit log refuse every append (or accept them again), as a
/// store failing between two writes would.
async fn refuse_audit(store: &Db, refuse: bool) {
    use sqlx::Executor;
    match (store, refuse) {
        (Db::Sqlite(store), true) => {
            store.pool().execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END").await.unwrap();
        }
        (Db::Sqlite(store), false) => {
            store.pool().execute("DROP TRIGGER refuse_audit").await.unwrap();
        }
        (Db::Postgres(store), true) => {
            store
                .pool()
                .execute(
                    "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused by the test'; END $$; \
                     CREATE TRIGGER refuse_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
                )
                .await
                .unwrap();
        }
        (Db::Postgres(store), false) => {
            store.pool().execute("DROP TRIGGER refuse_audit ON audit").await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_session_ended_by_hand_is_never_without_its_audit_record_on_every_backend() {
    for backend in switchyard_store::testing::every_backend("end-by-hand").await {
        let store: Db = backend.clone();
        let engine = engine_on("v2");
        let conversations = Conversations::new(Arc::clone(&engine), store.clone(), SystemClock);
        let contact = Contact::parse("5511970000301").unwrap();
        say(&conversations, &contact, "quero comprar um certificado").await;
        let live = |history: &[switchyard_engine::session::Session]| history.iter().filter(|session| session.is_live()).count();
        assert_eq!(live(&store.history_of(&contact).await.unwrap()), 1);
        let ends = |records: &[switchyard_store::policy::AuditRecord]| records.iter().filter(|record| record.action == "end_session").map(|record| record.seq).collect::<Vec<_>>();

        // The store fails on the audit record: the session is not ended either.
        refuse_audit(&store, true).await;
        let failed = switchyard::sessions::end_by_hand(&engine, &store, &contact, None, "cli:test", "ticket 7").await;
        assert!(failed.is_err(), "the failure is reported: {failed:?}");
        refuse_audit(&store, false).await;
        assert_eq!(live(&store.history_of(&contact).await.unwrap()), 1, "the session is still live: no end without its record");
        assert!(ends(&store.audit(None, None, None).await.unwrap()).is_empty());

        // Tried again: both.
        let ended = switchyard::sessions::end_by_hand(&engine, &store, &contact, None, "cli:test", "ticket 7").await.unwrap();
        assert_eq!(ended.ended, 1);
        assert_eq!(live(&store.history_of(&contact).await.unwrap()), 0);
        let records = store.audit(None, None, None).await.unwrap();
        assert_eq!(ends(&records), ended.audit_seqs);
        let record = records.iter().find(|record| record.action == "end_session").unwrap();
        assert_eq!((record.actor.as_str(), record.reason.as_str(), record.flow.as_deref()), ("cli:test", "ticket 7", Some("digital_certificate")));
        assert_eq!(record.after.as_ref().and_then(|detail| detail["contact"].as_str()), Some(contact.masked_tail().as_str()), "{record:?}");
        let history = store.history_of(&contact).await.unwrap();
        assert_eq!((history[0].outcome(), history[0].record().id.to_string()), (Some(switchyard_engine::session::Outcome::Cancelled), record.after.as_ref().unwrap()["session"].as_str().unwrap().to_owned()));
    }
}
