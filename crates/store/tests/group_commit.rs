//! SQLite's group-commit writer: writes queued while the database is busy
//! share one transaction, a refused write does not take the others with it,
//! a full queue refuses at once, and a batch that cannot commit fails every
//! waiter in it with nothing stored.
//!
//! The database is kept busy by another connection holding the write lock
//! (`BEGIN IMMEDIATE`), exactly what a second writer does.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor, SqliteConnection};
use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::flow::{Lifecycle, Next, VersionDecl};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::kinds::Say;
use switchyard_engine::queue::{Accepted, InboxEntry, InboxKind, Pending, Queue};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::Timestamp;
use switchyard_store::sqlite::SqliteStore;
use switchyard_store::testing::fresh_sqlite_url;

fn engine() -> Engine {
    let flow = VersionDecl::new("unknown", 1, Lifecycle::Active).texts("[hi]\nOlá\n").entry("hi").step("hi", Say::finish("hi"));
    let registry = Arc::new(Registry::new(vec![flow]).unwrap());
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    Engine::new(registry, resolver, EngineConfig::default()).unwrap()
}

fn entry(n: usize) -> InboxEntry {
    let number = format!("55119{n:08}");
    InboxEntry {
        instance: InstanceId::parse("vendas").unwrap(),
        contact: Contact::parse(&number).unwrap(),
        message_id: format!("GC{n}"),
        reply_to: number,
        kind: InboxKind::Customer(Content::Text("oi".to_owned())),
        sent_at: None,
        received_at: Timestamp::from_millis(1_795_000_000_000 + n as i64),
    }
}

/// Another connection holding SQLite's write lock until dropped or released.
struct Lock(SqliteConnection);

impl Lock {
    async fn take(url: &str) -> Lock {
        let mut connection = SqliteConnection::connect(url).await.unwrap();
        connection.execute("BEGIN IMMEDIATE").await.unwrap();
        Lock(connection)
    }

    async fn release(mut self) {
        self.0.execute("ROLLBACK").await.unwrap();
        self.0.close().await.unwrap();
    }
}

/// Commits `turns` while another connection holds SQLite's write lock, so
/// they all queue up and go in the writer's next transactions together;
/// their results, in order.
async fn commit_together(url: &str, store: &Arc<SqliteStore>, turns: Vec<(Turn, Pending)>) -> Vec<Result<(), StoreError>> {
    let lock = Lock::take(url).await;
    let mut tasks = Vec::new();
    for (turn, pending) in turns {
        let store = Arc::clone(store);
        tasks.push(tokio::spawn(async move { store.commit_inbound(&turn, &pending, &pending.entry.reply_to).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.release().await;
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn count(store: &SqliteStore, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(store.pool()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_turn_does_not_take_its_batch_with_it() {
    let url = fresh_sqlite_url("group");
    let store = SqliteStore::open(&url).await.unwrap();
    let engine = engine();
    let mut pendings = Vec::new();
    for n in 0..40 {
        let Accepted::New(_) = store.accept(&entry(n)).await.unwrap() else { panic!("new entry") };
        let key = entry(n);
        pendings.push(store.next_pending(&key.instance, &key.contact).await.unwrap().expect("pending"));
    }
    // Every fourth entry is processed already: its turn must be refused.
    let mut turns = Vec::new();
    for (n, pending) in pendings.iter().enumerate() {
        let inbound = Inbound { instance: pending.entry.instance.clone(), contact: pending.entry.contact.clone(), content: Content::Text("oi".to_owned()) };
        let state = store.contact_state(&inbound.instance, &inbound.contact).await.unwrap();
        let turn = engine.turn(state, &inbound, Timestamp::from_millis(1_795_000_100_000));
        if n % 4 == 0 {
            store.commit_inbound(&turn, pending, &pending.entry.reply_to).await.unwrap();
        }
        turns.push(turn);
    }
    let store = Arc::new(store);
    for (n, result) in commit_together(&url, &store, turns.into_iter().zip(pendings).collect()).await.into_iter().enumerate() {
        if n % 4 == 0 {
            assert!(matches!(result, Err(StoreError::Conflict(_))), "entry {n}: {result:?}");
        } else {
            result.unwrap_or_else(|err| panic!("entry {n}: {err}"));
        }
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await, 0);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM sessions").await, 40, "one session per contact, none twice");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM outbox").await, 40, "one reply per entry, the refused turns added none");
}

/// The sender records a batch's send attempts in one write: every reply
/// still unsent is marked (and reads back as maybe sent), one sent
/// meanwhile is left out and not attempted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_send_attempts_is_one_write_that_leaves_sent_replies_out() {
    let store = SqliteStore::open(&fresh_sqlite_url("attempts")).await.unwrap();
    let engine = engine();
    let at = Timestamp::from_millis(1_795_000_100_000);
    for n in 0..3 {
        let Accepted::New(_) = store.accept(&entry(n)).await.unwrap() else { panic!("new entry") };
        let key = entry(n);
        let pending = store.next_pending(&key.instance, &key.contact).await.unwrap().expect("pending");
        let inbound = Inbound { instance: key.instance.clone(), contact: key.contact.clone(), content: Content::Text("oi".to_owned()) };
        let state = store.contact_state(&key.instance, &key.contact).await.unwrap();
        store.commit_inbound(&engine.turn(state, &inbound, at), &pending, &key.reply_to).await.unwrap();
    }
    let seqs: Vec<i64> = store.due_outbox(at, 10).await.unwrap().iter().map(|outgoing| outgoing.seq).collect();
    assert_eq!(seqs.len(), 3, "one reply per contact");
    store.outbox_sent(seqs[1], Some("3EB0SENT"), at).await.unwrap();
    assert_eq!(store.outbox_attempt_many(&seqs, at).await.unwrap(), vec![seqs[0], seqs[2]]);
    let due = store.due_outbox(at, 10).await.unwrap();
    let seen: Vec<(i64, Option<Timestamp>, Option<Timestamp>)> = due.iter().map(|o| (o.seq, o.attempted_at, o.unsure_since)).collect();
    assert_eq!(seen, vec![(seqs[0], Some(at), Some(at)), (seqs[2], Some(at), Some(at))], "marked: maybe sent from now on");
    assert!(store.outbox_attempt_many(&[], at).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_and_stores_exactly_what_it_acknowledged() {
    let url = fresh_sqlite_url("group");
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let lock = Lock::take(&url).await;
    let total = 6000;
    let mut tasks = Vec::new();
    for n in 0..total {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move { store.accept(&entry(n)).await }));
    }
    // The writer waits for the lock with its first batch; the queue behind
    // it holds 4096, the rest are refused without waiting.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    lock.release().await;
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
    assert!(refused > 0, "6000 writes against a queue of 4096 must refuse some");
    assert_eq!(accepted + refused, total);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM inbox").await, accepted as i64, "exactly the acknowledged entries are stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_cannot_commit_fails_every_waiter_and_stores_nothing() {
    let url = fresh_sqlite_url("group");
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let lock = Lock::take(&url).await;
    let mut tasks = Vec::new();
    for n in 0..50 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move { store.accept(&entry(n)).await }));
    }
    // Held past the writer's 5 s busy timeout: its transaction cannot start.
    for task in tasks {
        let result = task.await.unwrap();
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    }
    lock.release().await;
    assert_eq!(count(&store, "SELECT COUNT(*) FROM inbox").await, 0);
    // The writer goes on: a retry lands.
    assert!(matches!(store.accept(&entry(0)).await.unwrap(), Accepted::New(_)));
}

/// The processor's read of a contact's next entry brings the contact's
/// state with it (read in the same job on the writer's connection): the
/// same state `contact_state` reads, live session and revision included,
/// and none when no entry waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_entry_comes_with_the_contacts_state_as_contact_state_reads_it() {
    let engine = switchyard_store::testing::ask_name_engine();
    let store = switchyard_store::Db::Sqlite(SqliteStore::open(&fresh_sqlite_url("next-state")).await.unwrap());
    let (first, second) = (entry(1), InboxEntry { message_id: "GC1-second".to_owned(), ..entry(1) });
    store.accept(&first).await.unwrap();
    store.accept(&second).await.unwrap();
    let (Some((pending, Some(state))), more) = store.next_pending_and_more(&first.instance, &first.contact).await.unwrap() else {
        panic!("an entry with the contact's state")
    };
    assert!(more, "a second entry waits behind the first");
    assert!(state.session.is_none(), "no session before the first turn");
    let inbound = Inbound { instance: first.instance.clone(), contact: first.contact.clone(), content: Content::Text("oi".to_owned()) };
    let turn = engine.turn(state, &inbound, Timestamp::from_millis(1_795_000_100_000));
    store.commit_inbound(&turn, &pending, &pending.entry.reply_to).await.unwrap();

    let (Some((pending, Some(state))), more) = store.next_pending_and_more(&first.instance, &first.contact).await.unwrap() else {
        panic!("the second entry with the contact's state")
    };
    assert_eq!(pending.entry.message_id, "GC1-second");
    assert!(!more, "nothing behind the second entry");
    let session = state.session.as_ref().expect("the session the first turn started is live");
    assert_eq!(session.step().as_str(), "ask");
    assert_eq!(format!("{state:?}"), format!("{:?}", store.contact_state(&first.instance, &first.contact).await.unwrap()));

    let turn = engine.turn(state, &Inbound { content: Content::Text("Ana".to_owned()), ..inbound }, Timestamp::from_millis(1_795_000_200_000));
    store.commit_inbound(&turn, &pending, &pending.entry.reply_to).await.unwrap();
    let (none, more) = store.next_pending_and_more(&first.instance, &first.contact).await.unwrap();
    assert!(none.is_none() && !more, "the inbox is empty");
}

/// The counters the triggers keep (`counters`, `session_counts`) equal the
/// rows they count.
async fn assert_counters_match_rows(store: &SqliteStore) {
    let kept: Vec<(String, i64)> = sqlx::query_as("SELECT name, value FROM counters ORDER BY name").fetch_all(store.pool()).await.unwrap();
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'messages_in', COUNT(*) FROM inbox \
         UNION ALL SELECT 'messages_out', COUNT(*) FROM outbox WHERE sent_at IS NOT NULL \
         UNION ALL SELECT 'outbox_depth', COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(kept, counted, "counters");
    let kept: Vec<(String, i64, String, i64)> =
        sqlx::query_as("SELECT flow, version, outcome, sessions FROM session_counts WHERE sessions <> 0 ORDER BY 1, 2, 3").fetch_all(store.pool()).await.unwrap();
    let counted: Vec<(String, i64, String, i64)> =
        sqlx::query_as("SELECT flow, version, COALESCE(outcome, 'live'), COUNT(*) FROM sessions GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(kept, counted, "session counts");
}

/// The hot writes run `OR FAIL`, with no statement journal (a failed one is
/// undone by the batch's rollback or its savepoint, not by SQLite alone),
/// and the session counters are kept without an upsert (migration 0020).
/// Through sessions started, sessions finished, refused turns in a shared
/// batch and sent replies, every counter still equals its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_equal_their_rows_through_refused_writes_in_a_batch() {
    let url = fresh_sqlite_url("counters");
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let engine = switchyard_store::testing::ask_name_engine();
    let at = Timestamp::from_millis(1_795_000_100_000);
    let turn_for = |store: Arc<SqliteStore>, entry: InboxEntry, text: &'static str| {
        let engine = &engine;
        async move {
            let Accepted::New(_) = store.accept(&entry).await.unwrap() else { panic!("new entry") };
            let pending = store.next_pending(&entry.instance, &entry.contact).await.unwrap().expect("pending");
            let inbound = Inbound { instance: entry.instance.clone(), contact: entry.contact.clone(), content: Content::Text(text.to_owned()) };
            let state = store.contact_state(&entry.instance, &entry.contact).await.unwrap();
            (engine.turn(state, &inbound, at), pending)
        }
    };
    // Twenty sessions started (asked for a name), one at a time.
    for n in 0..20 {
        let (turn, pending) = turn_for(Arc::clone(&store), entry(n), "oi").await;
        store.commit_inbound(&turn, &pending, &pending.entry.reply_to).await.unwrap();
    }
    // Each answers; every fourth answer is committed once before the batch,
    // so in the batch it is refused and rolled back alone.
    let mut turns = Vec::new();
    for n in 0..20 {
        let (turn, pending) = turn_for(Arc::clone(&store), InboxEntry { message_id: format!("GC{n}-name"), ..entry(n) }, "Maria").await;
        if n % 4 == 0 {
            store.commit_inbound(&turn, &pending, &pending.entry.reply_to).await.unwrap();
        }
        turns.push((turn, pending));
    }
    for (n, result) in commit_together(&url, &store, turns).await.into_iter().enumerate() {
        assert_eq!(matches!(result, Err(StoreError::Conflict(_))), n % 4 == 0, "answer {n}: {result:?}");
    }
    let due = store.due_outbox(at, 100).await.unwrap();
    for outgoing in due.iter().take(7) {
        store.outbox_sent(outgoing.seq, Some("3EB0SENT"), at).await.unwrap();
    }
    assert_eq!(count(&store, "SELECT COUNT(*) FROM sessions WHERE outcome IS NOT NULL").await, 20, "every session finished");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL").await, 7);
    assert_counters_match_rows(&store).await;
}

/// With `attempt_at_commit`, a turn's replies are queued with their first
/// attempt on record for the sender's token: that sender gets them as
/// never attempted (the whole run at once, and named as on record), any
/// other reader as attempts cut short (unsure since the commit). A graceful
/// stop takes back the marks of the replies never requested, except those
/// it was told to keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_committed_with_their_attempt_are_fresh_to_their_sender_and_unsure_to_any_other() {
    let store = SqliteStore::open(&fresh_sqlite_url("commit-attempts")).await.unwrap();
    let (token, other) = (0x5eed_1234_i64, 0x00dd_ba11_i64);
    assert!(store.attempt_at_commit(token));
    let flow = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[a]\nUm\n[b]\nDois\n[c]\nTrês\n")
        .entry("a")
        .step("a", Say::then("a", Next::Goto("b")))
        .step("b", Say::then("b", Next::Goto("c")))
        .step("c", Say::finish("c"));
    let registry = Arc::new(Registry::new(vec![flow]).unwrap());
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    let engine = Engine::new(registry, resolver, EngineConfig::default()).unwrap();
    let before = Timestamp::now_utc();
    for n in 0..2 {
        let key = entry(n);
        let Accepted::New(_) = store.accept(&key).await.unwrap() else { panic!("new entry") };
        let pending = store.next_pending(&key.instance, &key.contact).await.unwrap().expect("pending");
        let inbound = Inbound { instance: key.instance.clone(), contact: key.contact.clone(), content: Content::Text("oi".to_owned()) };
        let state = store.contact_state(&key.instance, &key.contact).await.unwrap();
        let turn = engine.turn(state, &inbound, key.received_at);
        assert_eq!(turn.replies.len(), 3);
        store.commit_inbound(&turn, &pending, &key.reply_to).await.unwrap();
        if n == 0 {
            // The second contact's turn is queued plain.
            store.stop_attempts_at_commit();
        }
    }
    let now = Timestamp::now_utc();
    let (due, fresh) = store.due_runs(now, 10, token).await.unwrap();
    let seqs: Vec<i64> = due.iter().map(|outgoing| outgoing.seq).collect();
    assert_eq!(seqs.len(), 6, "both contacts' whole runs: {due:#?}");
    assert_eq!(fresh, seqs[..3], "the first contact's replies were attempted at commit");
    assert!(due.iter().all(|outgoing| outgoing.unsure_since.is_none()), "{due:#?}");
    assert!(due[..3].iter().all(|outgoing| outgoing.attempted_at.is_some_and(|at| at >= before && at <= now)), "attempted at the commit: {due:#?}");
    assert!(due[3..].iter().all(|outgoing| outgoing.attempted_at.is_none()), "{due:#?}");

    // Another process (after a crash) reads them as attempts cut short.
    let (due, fresh) = store.due_runs(now, 10, other).await.unwrap();
    assert!(fresh.is_empty());
    let heads: Vec<(i64, bool)> = due.iter().map(|outgoing| (outgoing.seq, outgoing.unsure_since.is_some())).collect();
    assert_eq!(heads, vec![(seqs[0], true), (seqs[3], false), (seqs[4], false), (seqs[5], false)], "an unsure head goes alone");
    let since = due[0].unsure_since.unwrap();
    assert!(since >= before && since <= now, "unsure since the commit: {since:?}");

    // A graceful stop: one request went out with no outcome on record.
    assert_eq!(store.take_back_commit_attempts(token, &[seqs[0]]).await.unwrap(), 2);
    let (due, fresh) = store.due_runs(now, 10, token).await.unwrap();
    assert_eq!(fresh, vec![seqs[0]], "kept: still this sender's to settle");
    let (due_other, _) = store.due_runs(now, 10, other).await.unwrap();
    assert_eq!(due_other.iter().filter(|outgoing| outgoing.unsure_since.is_some()).map(|outgoing| outgoing.seq).collect::<Vec<_>>(), vec![seqs[0]]);
    assert_eq!(due.len(), 6);
    assert_eq!(store.take_back_commit_attempts(token, &[]).await.unwrap(), 1);
    let (due, fresh) = store.due_runs(now, 10, other).await.unwrap();
    assert!(fresh.is_empty() && due.len() == 6 && due.iter().all(|outgoing| outgoing.unsure_since.is_none()), "{due:#?}");

    // A mark is moved only while the reply is marked and unsent.
    let later = Timestamp::now_utc();
    assert!(!store.renew_attempt(seqs[0], token, later).await.unwrap(), "no mark to move");
    store.outbox_attempt_many(&[seqs[0]], now).await.unwrap();
    assert!(store.renew_attempt(seqs[0], token, later).await.unwrap(), "the sender's own batch mark");
    let (due, _) = store.due_runs(later, 10, token).await.unwrap();
    assert_eq!((due[0].attempted_at, due[0].unsure_since), (Some(later), Some(later)), "maybe sent from its request on");
    store.outbox_sent(seqs[0], None, later).await.unwrap();
    assert!(!store.renew_attempt(seqs[0], token, later).await.unwrap(), "sent meanwhile");

    // A mark made at commit: only its own sender moves it.
    assert!(store.attempt_at_commit(token));
    let key = entry(7);
    let Accepted::New(_) = store.accept(&key).await.unwrap() else { panic!("new entry") };
    let pending = store.next_pending(&key.instance, &key.contact).await.unwrap().expect("pending");
    let inbound = Inbound { instance: key.instance.clone(), contact: key.contact.clone(), content: Content::Text("oi".to_owned()) };
    let state = store.contact_state(&key.instance, &key.contact).await.unwrap();
    store.commit_inbound(&engine.turn(state, &inbound, key.received_at), &pending, &key.reply_to).await.unwrap();
    let (_, fresh) = store.due_runs(later, 10, token).await.unwrap();
    assert_eq!(fresh.len(), 3, "the new turn's replies");
    assert!(!store.renew_attempt(fresh[0], other, later).await.unwrap(), "another process's token");
    assert!(store.renew_attempt(fresh[0], token, later).await.unwrap());
    let (due, still) = store.due_runs(later, 10, token).await.unwrap();
    assert_eq!(still, fresh[1..], "moved: the sender's own mark now, no longer the commit's");
    assert_eq!(due.iter().find(|outgoing| outgoing.seq == fresh[0]).map(|outgoing| outgoing.attempted_at), Some(Some(later)));
}
