//! PostgreSQL's group-commit writer: writes queued while the writer is busy
//! share one transaction, a refused turn (its entry taken, its session moved
//! on) does not take the others with it, a full queue refuses accepts at
//! once, and a batch that cannot commit fails every waiter in it with
//! nothing stored. Real PostgreSQL (skipped with a note where none answers).
//!
//! The writer is held busy by another connection holding `inbox` locked: the
//! writer's first batch waits for it while the writes under test queue up
//! behind, then go in together.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};
use switchyard_engine::engine::{Content, Engine, Inbound};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::queue::{Accepted, InboxEntry, InboxKind, Outgoing, Pending, Queue};
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::Timestamp;
use switchyard_store::postgres::{PgSettings, PgStore};
use switchyard_store::testing::{fresh_postgres_url, PgSchema};

/// Asks a name (the session stays live), then thanks and ends.
fn engine() -> Engine {
    switchyard_store::testing::ask_name_engine()
}

fn entry(n: usize, message_id: &str) -> InboxEntry {
    let number = format!("55119{n:08}");
    InboxEntry {
        instance: InstanceId::parse("vendas").unwrap(),
        contact: Contact::parse(&number).unwrap(),
        message_id: message_id.to_owned(),
        reply_to: number,
        kind: InboxKind::Customer(Content::Text("oi".to_owned())),
        sent_at: None,
        received_at: Timestamp::from_millis(1_795_000_000_000 + n as i64),
    }
}

const AT: Timestamp = Timestamp::from_millis(1_795_000_100_000);

async fn count(schema: &PgSchema, sql: &'static str) -> i64 {
    let mut connection = PgConnection::connect(schema.url()).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut connection).await.unwrap()
}

/// Another connection holding `inbox` locked until released.
struct Lock(PgConnection);

impl Lock {
    async fn take(schema: &PgSchema) -> Lock {
        let mut connection = PgConnection::connect(schema.url()).await.unwrap();
        connection.execute("BEGIN").await.unwrap();
        connection.execute("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE").await.unwrap();
        Lock(connection)
    }

    async fn release(mut self) {
        self.0.execute("ROLLBACK").await.unwrap();
        self.0.close().await.unwrap();
    }
}

/// Takes the lock, then starts a first accept (`blocker`) that the writer
/// takes alone and waits with, so whatever is written next queues behind it.
async fn hold_writer(store: &Arc<PgStore>, schema: &PgSchema, blocker: InboxEntry) -> (Lock, tokio::task::JoinHandle<Result<Accepted, StoreError>>) {
    let lock = Lock::take(schema).await;
    let handle = {
        let store = Arc::clone(store);
        tokio::spawn(async move { store.accept(&blocker).await })
    };
    wait_backlog(store, 0).await;
    // The writer has the blocker; give it time to start its transaction.
    tokio::time::sleep(Duration::from_millis(200)).await;
    (lock, handle)
}

async fn wait_backlog(store: &PgStore, backlog: usize) {
    for _ in 0..500 {
        if store.write_backlog() == backlog {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the writer's backlog never reached {backlog} (it is {})", store.write_backlog());
}

fn inbound(pending: &Pending, text: &str) -> Inbound {
    Inbound { instance: pending.entry.instance.clone(), contact: pending.entry.contact.clone(), content: Content::Text(text.to_owned()) }
}

async fn accept_pending(store: &PgStore, n: usize, message_id: &str) -> Pending {
    let key = entry(n, message_id);
    let Accepted::New(_) = store.accept(&key).await.unwrap() else { panic!("new entry") };
    store.next_pending(&key.instance, &key.contact).await.unwrap().expect("pending")
}

/// Contact `n`'s first turn committed (its session asks a name): the reply
/// it queued, due now.
async fn queued_reply(store: &PgStore, engine: &Engine, n: usize, message_id: &str) -> Outgoing {
    let first = accept_pending(store, n, message_id).await;
    let state = store.contact_state(&first.entry.instance, &first.entry.contact).await.unwrap();
    store.commit_inbound(&engine.turn(state, &inbound(&first, "oi"), AT), &first, &first.entry.reply_to).await.unwrap();
    store.due_outbox(AT, 10).await.unwrap().remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_turn_does_not_take_its_batch_with_it() {
    let Some(schema) = fresh_postgres_url().await else { return };
    let store = Arc::new(PgStore::open(&schema, &PgSettings::default()).await.unwrap());
    let engine = engine();
    // 30 contacts, each with a first turn committed (a live session at "ask")
    // and a second entry waiting.
    let mut jobs: Vec<(Pending, switchyard_engine::engine::Turn)> = Vec::new();
    for n in 0..30 {
        let first = accept_pending(&store, n, &format!("A{n}")).await;
        let state = store.contact_state(&first.entry.instance, &first.entry.contact).await.unwrap();
        store.commit_inbound(&engine.turn(state, &inbound(&first, "oi"), AT), &first, &first.entry.reply_to).await.unwrap();
        let second = accept_pending(&store, n, &format!("B{n}")).await;
        let state = store.contact_state(&second.entry.instance, &second.entry.contact).await.unwrap();
        let turn = engine.turn(state, &inbound(&second, "Maria"), AT);
        jobs.push((second, turn));
    }
    // Refusals to come: every fifth contact's second entry is processed
    // already (its turn must be refused: entry taken); for every seventh,
    // another worker moves the session on first through a third entry (the
    // turn is stale: its revision is gone).
    for (n, (pending, turn)) in jobs.iter().enumerate() {
        if n % 5 == 0 {
            store.commit_inbound(turn, pending, &pending.entry.reply_to).await.unwrap();
        } else if n % 7 == 0 {
            let third = entry(n, &format!("C{n}"));
            let Accepted::New(seq) = store.accept(&third).await.unwrap() else { panic!("new entry") };
            let third = Pending { seq, entry: third };
            let state = store.contact_state(&third.entry.instance, &third.entry.contact).await.unwrap();
            store.commit_inbound(&engine.turn(state, &inbound(&third, "João"), AT), &third, &third.entry.reply_to).await.unwrap();
        }
    }
    let refused = |n: usize| n.is_multiple_of(5) || n.is_multiple_of(7);
    let sessions_before = count(&schema, "SELECT COUNT(*) FROM sessions").await;
    let outbox_before = count(&schema, "SELECT COUNT(*) FROM outbox").await;

    let (lock, blocker) = hold_writer(&store, &schema, entry(999, "HOLD")).await;
    let mut tasks = Vec::new();
    for (pending, turn) in jobs {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move { store.commit_inbound(&turn, &pending, &pending.entry.reply_to).await }));
    }
    // All 30 wait behind the blocker: the writer's next batch takes them together.
    wait_backlog(&store, 30).await;
    lock.release().await;
    assert!(matches!(blocker.await.unwrap(), Ok(Accepted::New(_))));
    for (n, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        if refused(n) {
            assert!(matches!(result, Err(StoreError::Conflict(_))), "contact {n}: {result:?}");
        } else {
            result.unwrap_or_else(|err| panic!("contact {n}: {err}"));
        }
    }
    let committed = (0..30).filter(|n| !refused(*n)).count() as i64;
    // Each committed second turn ended its session ("done" replies once).
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM sessions").await, sessions_before, "no session created or lost");
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM sessions WHERE outcome IS NOT NULL").await, committed + (0..30).filter(|n| n % 5 == 0).count() as i64 + (0..30).filter(|n| n % 7 == 0 && n % 5 != 0).count() as i64);
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM outbox").await, outbox_before + committed, "one reply per committed turn, none from a refused one");
    // The stale ones' entries are still waiting; the rest are processed.
    let waiting = (0..30).filter(|n| n % 7 == 0 && n % 5 != 0).count() as i64;
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL AND message_id LIKE 'B%'").await, waiting);
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await, waiting + 1, "and the blocker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_accepts_at_once_and_stores_exactly_what_it_acknowledged() {
    let Some(schema) = fresh_postgres_url().await else { return };
    let store = Arc::new(PgStore::open_with_queue(&schema, &PgSettings::default(), 16).await.unwrap());
    let (lock, blocker) = hold_writer(&store, &schema, entry(999, "HOLD")).await;
    let mut tasks = Vec::new();
    for n in 0..40 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move { store.accept(&entry(n, &format!("Q{n}"))).await }));
    }
    wait_backlog(&store, 16).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock.release().await;
    assert!(matches!(blocker.await.unwrap(), Ok(Accepted::New(_))));
    let (mut accepted, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(Accepted::New(_)) => accepted += 1,
            Err(StoreError::Unavailable(message)) => {
                assert!(message.contains("queue is full"), "{message}");
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((accepted, refused), (16, 24), "the queue holds 16; the rest are refused without waiting");
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM inbox WHERE message_id LIKE 'Q%'").await, 16, "exactly the acknowledged entries are stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_cannot_commit_fails_every_waiter_and_stores_nothing() {
    let Some(schema) = fresh_postgres_url().await else { return };
    let store = Arc::new(PgStore::open(&schema, &PgSettings::default()).await.unwrap());
    let engine = engine();
    // A turn and a sent mark ride in the batch too.
    let reply = queued_reply(&store, &engine, 500, "T1").await;
    let second = accept_pending(&store, 500, "T2").await;
    let state = store.contact_state(&second.entry.instance, &second.entry.contact).await.unwrap();
    let turn = engine.turn(state, &inbound(&second, "Maria"), AT);
    // The commit itself fails: a deferred check refuses one entry at COMMIT.
    let mut admin = PgConnection::connect(schema.url()).await.unwrap();
    admin
        .execute(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.message_id = 'POISON' THEN RAISE EXCEPTION 'poisoned entry'; END IF; RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER refuse_poison AFTER INSERT ON inbox DEFERRABLE INITIALLY DEFERRED \
               FOR EACH ROW EXECUTE FUNCTION refuse_poison();",
        )
        .await
        .unwrap();
    admin.close().await.unwrap();

    let (lock, blocker) = hold_writer(&store, &schema, entry(999, "HOLD")).await;
    let mut accepts = Vec::new();
    for n in 0..10 {
        let store = Arc::clone(&store);
        let message_id = if n == 5 { "POISON".to_owned() } else { format!("F{n}") };
        accepts.push(tokio::spawn(async move { store.accept(&entry(n, &message_id)).await }));
    }
    let turn_task = {
        let (store, second) = (Arc::clone(&store), second.clone());
        tokio::spawn(async move { store.commit_inbound(&turn, &second, &second.entry.reply_to).await })
    };
    let sent_task = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.outbox_sent_many(&[(reply.seq, Some("3EB0X".to_owned()))], AT).await })
    };
    wait_backlog(&store, 12).await;
    lock.release().await;
    assert!(matches!(blocker.await.unwrap(), Ok(Accepted::New(_))));
    for task in accepts {
        let result = task.await.unwrap();
        assert!(matches!(&result, Err(StoreError::Unavailable(message)) if message.contains("did not commit")), "{result:?}");
    }
    let result = turn_task.await.unwrap();
    assert!(matches!(&result, Err(StoreError::Unavailable(_))), "{result:?}");
    let result = sent_task.await.unwrap();
    assert!(matches!(&result, Err(StoreError::Unavailable(_))), "{result:?}");
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM inbox WHERE message_id LIKE 'F%' OR message_id = 'POISON'").await, 0, "nothing of the batch stored");
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM inbox WHERE message_id = 'T2' AND processed_at IS NULL").await, 1, "the turn did not land");
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL").await, 0, "nor the sent mark");
    // The writer goes on: retries without the poison land.
    assert!(matches!(store.accept(&entry(0, "F0")).await.unwrap(), Accepted::New(_)));
    store.outbox_sent_many(&[(reply.seq, Some("3EB0X".to_owned()))], AT).await.unwrap();
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL").await, 1);
}

/// A batch PostgreSQL picks as a deadlock's victim runs again instead of
/// failing its waiters (the webhook's 503). The deadlock is the one two
/// nodes' writers met under load (counter shards bumped in opposite orders):
/// here another connection holds every `outbox_depth` counter row, the
/// writer's sent mark locks the reply's row and waits for its counter, and
/// the other connection then asks for the reply's row. The writer waited
/// first, so its deadlock check finds the cycle and rolls it back; run again,
/// the mark waits for the row, and lands once the other connection is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_chosen_as_a_deadlock_victim_runs_again() {
    let Some(schema) = fresh_postgres_url().await else { return };
    let store = Arc::new(PgStore::open(&schema, &PgSettings::default()).await.unwrap());
    let engine = engine();
    let reply = queued_reply(&store, &engine, 600, "D1").await;

    let mut other = PgConnection::connect(schema.url()).await.unwrap();
    other
        .execute("INSERT INTO counters (name, shard, value) SELECT name, shard, 0 FROM UNNEST(ARRAY['messages_out', 'outbox_depth']) AS name, generate_series(0, 15) AS shard ON CONFLICT DO NOTHING")
        .await
        .unwrap();
    other.execute("BEGIN").await.unwrap();
    other.execute("SELECT 1 FROM counters WHERE name = 'outbox_depth' FOR UPDATE").await.unwrap();
    let sent_task = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.outbox_sent_many(&[(reply.seq, Some("3EB0D".to_owned()))], AT).await })
    };
    // The writer is waiting for a counter row once a backend of this
    // database waits on a transaction while holding the reply's row.
    let mut waited = false;
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
            .fetch_one(&mut other)
            .await
            .unwrap();
        if waiting > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waited, "the writer never waited for the held counter rows");
    // Returns once PostgreSQL has broken the deadlock by rolling the writer back.
    sqlx::query("UPDATE outbox SET attempts = attempts WHERE seq = $1").bind(reply.seq).execute(&mut other).await.unwrap();
    other.execute("ROLLBACK").await.unwrap();
    other.close().await.unwrap();
    let result = sent_task.await.unwrap();
    assert!(result.is_ok(), "the sent mark failed instead of running again: {result:?}");
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND provider_id = '3EB0D'").await, 1);
}

/// Redeliveries inside one batch: the first copy is new, the others
/// duplicates; and a redelivery of an entry stored earlier is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_within_a_batch_are_stored_once() {
    let Some(schema) = fresh_postgres_url().await else { return };
    let store = Arc::new(PgStore::open(&schema, &PgSettings::default()).await.unwrap());
    let Accepted::New(_) = store.accept(&entry(1, "EARLIER")).await.unwrap() else { panic!("new") };
    let (lock, blocker) = hold_writer(&store, &schema, entry(999, "HOLD")).await;
    let mut tasks = Vec::new();
    for message_id in ["R1", "R1", "R2", "EARLIER", "R1"] {
        let handle = Arc::clone(&store);
        tasks.push(tokio::spawn(async move { handle.accept(&entry(1, message_id)).await.unwrap() }));
        // In order, so the first R1 is the one stored.
        wait_backlog(&store, tasks.len()).await;
    }
    lock.release().await;
    blocker.await.unwrap().unwrap();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert!(matches!(answers[0], Accepted::New(_)));
    assert_eq!(answers[1], Accepted::Duplicate);
    assert!(matches!(answers[2], Accepted::New(_)));
    assert_eq!(answers[3], Accepted::Duplicate);
    assert_eq!(answers[4], Accepted::Duplicate);
    assert_eq!(count(&schema, "SELECT COUNT(*) FROM inbox WHERE message_id IN ('R1', 'R2', 'EARLIER')").await, 3);
}

/// Two nodes' writers bump the `/metrics` counters on shards of their own
/// (postgres 0017): the first writer to open its connection claims shard 0,
/// the second shard 1, so neither ever waits for the other's commit on a
/// counter row. (Before, the shard was each backend's pid modulo 16.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_writers_count_on_shards_of_their_own() {
    let Some(schema) = fresh_postgres_url().await else { return };
    let a = PgStore::open(&schema, &PgSettings::default()).await.unwrap();
    let b = PgStore::open(&schema, &PgSettings::default()).await.unwrap();
    for (store, n) in [(&a, 1), (&b, 2), (&a, 3)] {
        let Accepted::New(_) = store.accept(&entry(n, &format!("S{n}"))).await.unwrap() else { panic!("new entry") };
    }
    let mut connection = PgConnection::connect(schema.url()).await.unwrap();
    let shards: Vec<(i16, i64)> =
        sqlx::query_as("SELECT shard, value FROM counters WHERE name = 'messages_in' AND value <> 0 ORDER BY shard").fetch_all(&mut connection).await.unwrap();
    assert_eq!(shards, vec![(0, 2), (1, 1)], "a's two accepts on its shard, b's one on the next");
}
