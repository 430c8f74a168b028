//! The operator reads written once for both backends (`sessions`, `report`,
//! `recorded`), run on every backend: filters left empty (`$N IS NULL`),
//! ties in start time broken by insertion order (SQLite's `rowid`,
//! PostgreSQL's `seq`), the drain view and recorded messages.

use switchyard_engine::ids::{Contact, InstanceId, SessionId, Version};
use switchyard_engine::queue::{InboxEntry, InboxKind, Queue};
use switchyard_engine::engine::Content;
use switchyard_engine::time::Timestamp;
use switchyard_store::recorded::RecordedFilter;
use switchyard_store::sessions::LiveFilter;
use switchyard_store::testing::every_backend;
use switchyard_store::Db;

/// A session row as a turn would have committed it (`outcome` ends it a
/// second after it started).
#[allow(clippy::too_many_arguments)] // reason: the row's columns, spelled out in each call
async fn insert(db: &Db, instance: &str, contact: &str, flow: &str, version: i64, step: &str, started: i64, outcome: Option<&str>) {
    let sql = "INSERT INTO sessions (id, instance, contact, flow, version, fingerprint, reason, step, data, attempts, turns, \
               started_at, last_input_at, expires_at, outcome, ended_at, revision) \
               VALUES ($1, $2, $3, $4, $5, 'ff', 'active', $6, '{}', 0, 1, $7, $7, $8, $9, $10, 1)";
    let id = SessionId::generate(Timestamp::from_millis(started)).to_string();
    let ended = outcome.map(|_| started + 1_000);
    macro_rules! run {
        ($pool:expr) => {
            sqlx::query(sql)
                .bind(&id)
                .bind(instance)
                .bind(contact)
                .bind(flow)
                .bind(version)
                .bind(step)
                .bind(started)
                .bind(started + 1_800_000)
                .bind(outcome)
                .bind(ended)
                .execute($pool)
                .await
                .map(drop)
        };
    }
    match db {
        Db::Sqlite(store) => run!(store.pool()),
        Db::Postgres(store) => run!(store.pool()),
    }
    .expect("insert session");
}

fn contacts(sessions: &[switchyard_engine::session::Session]) -> Vec<String> {
    sessions.iter().map(|session| session.contact().as_str().to_owned()).collect()
}

#[tokio::test]
async fn live_sessions_history_and_the_drain_view_read_alike_on_every_backend() {
    for db in every_backend("operators").await {
        let backend = db.backend();
        // Two live sessions start in the same millisecond: insertion order decides.
        insert(&db, "vendas", "5511900000002", "billing", 2, "ask", 1_000, None).await;
        insert(&db, "vendas", "5511900000001", "billing", 1, "ask", 1_000, None).await;
        insert(&db, "suporte", "5511900000003", "billing", 2, "confirm", 3_000, None).await;
        insert(&db, "vendas", "5511900000003", "billing", 2, "ask", 500, Some("completed")).await;

        let all = db.live_sessions(&LiveFilter::default(), 100).await.unwrap();
        assert_eq!(contacts(&all), ["5511900000002", "5511900000001", "5511900000003"], "{backend}: live only, oldest first, ties as inserted");
        let v2 = LiveFilter { flow: Some("billing"), version: Some(Version::new(2)), ..LiveFilter::default() };
        assert_eq!(contacts(&db.live_sessions(&v2, 100).await.unwrap()), ["5511900000002", "5511900000003"], "{backend}");
        let suporte = InstanceId::parse("suporte").unwrap();
        let on_suporte = LiveFilter { instance: Some(&suporte), step: Some("confirm"), ..LiveFilter::default() };
        assert_eq!(contacts(&db.live_sessions(&on_suporte, 100).await.unwrap()), ["5511900000003"], "{backend}");
        assert_eq!(db.live_sessions(&LiveFilter::default(), 1).await.unwrap().len(), 1, "{backend}: the limit");

        let history = db.history_of(&Contact::parse("5511900000003").unwrap()).await.unwrap();
        let seen: Vec<(&str, Option<&str>)> =
            history.iter().map(|session| (session.instance().as_str(), session.outcome().map(|outcome| outcome.as_str()))).collect();
        assert_eq!(seen, [("suporte", None), ("vendas", Some("completed"))], "{backend}: across instances, newest first");

        let status = db.version_status("billing", Timestamp::from_millis(900)).await.unwrap();
        let summary: Vec<(u32, i64, Option<i64>, i64)> = status
            .iter()
            .map(|row| (row.version.number(), row.live, row.last_expiry.map(Timestamp::as_millis), row.started_recently))
            .collect();
        assert_eq!(summary, [(1, 1, Some(1_801_000), 1), (2, 2, Some(1_803_000), 2)], "{backend}: live, last expiry, started since 900");
        let live_v2 = db.live_sessions_of("billing", Version::new(2)).await.unwrap();
        assert_eq!(contacts(&live_v2), ["5511900000002", "5511900000003"], "{backend}");
    }
}

#[tokio::test]
async fn recorded_sessions_carry_their_messages_on_every_backend() {
    for db in every_backend("recorded").await {
        let backend = db.backend();
        let vendas = InstanceId::parse("vendas").unwrap();
        let contact = Contact::parse("5511900000001").unwrap();
        for (id, text, at) in [("M1", "oi", 900), ("M2", "quero meu boleto", 1_200)] {
            let entry = InboxEntry {
                instance: vendas.clone(),
                contact: contact.clone(),
                message_id: id.to_owned(),
                reply_to: contact.as_str().to_owned(),
                kind: InboxKind::Customer(Content::Text(text.to_owned())),
                sent_at: None,
                received_at: Timestamp::from_millis(at),
            };
            db.accept(&entry).await.unwrap();
        }
        // As the turns that answered them would have left them.
        let processed = "UPDATE inbox SET processed_at = received_at";
        match &*db {
            Db::Sqlite(store) => sqlx::query(processed).execute(store.pool()).await.map(drop),
            Db::Postgres(store) => sqlx::query(processed).execute(store.pool()).await.map(drop),
        }
        .unwrap();
        insert(&db, "vendas", contact.as_str(), "billing", 1, "ask", 1_000, Some("completed")).await;
        insert(&db, "suporte", "5511900000009", "billing", 1, "ask", 1_500, None).await;

        let filter = RecordedFilter { flow: "billing", since: None, until: None, instance: None, limit: 10 };
        let recorded = db.recorded_sessions(&filter).await.unwrap();
        assert_eq!(recorded.len(), 2, "{backend}: every instance when none is named");
        let first = &recorded[0];
        let texts: Vec<Option<&str>> = first.messages.iter().map(|message| message.body.as_deref()).collect();
        assert_eq!(texts, [Some("oi"), Some("quero meu boleto")], "{backend}: from the message that started it to its end");
        assert!(first.is_complete() && !recorded[1].is_complete(), "{backend}");
        let only_vendas = RecordedFilter { instance: Some(&vendas), ..filter };
        assert_eq!(db.recorded_sessions(&only_vendas).await.unwrap().len(), 1, "{backend}");
    }
}

/// `rollout status` at a million sessions: the drain view reads the
/// counters, the live sessions' index and a range of the last hour's
/// starts per version, never every session the flow had. SQLite keeps no
/// statistics (no ANALYZE runs), so its plan is the one pinned here.
#[tokio::test]
async fn the_drain_view_reads_no_finished_session_on_sqlite() {
    let store = switchyard_store::sqlite::SqliteStore::open(&switchyard_store::testing::fresh_sqlite_url("drain-plan")).await.unwrap();
    let db = Db::Sqlite(store.clone());
    for n in 0..200 {
        let outcome = if n % 50 == 0 { None } else { Some("completed") };
        insert(&db, "vendas", &format!("55119000{n:05}"), "billing", 1 + n % 2, "ask", 1_000 + n, outcome).await;
    }
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", switchyard_store::report::VERSION_STATUS_SQLITE)))
        .bind(900_i64)
        .bind("billing")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let plan: Vec<String> = rows.iter().map(|row| sqlx::Row::get::<String, _>(row, "detail")).collect();
    let on_sessions: Vec<&String> = plan.iter().filter(|line| line.contains(" s USING") || line.contains("sessions")).collect();
    assert!(!on_sessions.is_empty(), "{plan:#?}");
    for line in &on_sessions {
        let bounded = line.contains("version=?") || line.contains("sessions_due");
        assert!(line.starts_with("SEARCH") && bounded, "each read of sessions is by flow and version, or of the live ones: {plan:#?}");
    }
    assert!(plan.iter().any(|line| line.contains("USING INDEX sessions_due")), "the last expiry comes from the live sessions' index: {plan:#?}");
    assert!(plan.iter().any(|line| line.contains("sessions_by_flow (flow=? AND version=? AND started_at>?)")), "recent starts are a range: {plan:#?}");
    assert!(plan.iter().any(|line| line.contains("session_counts")), "versions and live counts are the counters: {plan:#?}");
}
