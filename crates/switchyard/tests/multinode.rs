//! Several `serve` processes on one PostgreSQL, as behind a load balancer:
//! two real binaries, 200 contacts whose messages land on either process at
//! random, a stand-in Evolution API recording every send. Every contact's
//! replies must arrive complete, once each, in the order a single process
//! would have produced them. Skipped (with a note) where no PostgreSQL
//! answers; see `switchyard_store::testing`.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::traffic::{assert_each_reply_once_in_order, expected_replies, run_contacts, script, seed, Spread};
use support::{ServeProcess, StandIn};

const CONTACTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_answer_every_conversation_once_and_in_order() {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    let evolution = StandIn::start().await;
    let a = ServeProcess::start(&db, &evolution, &[]).await;
    let b = ServeProcess::start(&db, &evolution, &[]).await;
    let expected: Vec<Vec<String>> = (0..CONTACTS).map(expected_replies).collect();
    assert!(expected.iter().all(|replies| !replies.is_empty()));

    let urls = Arc::new(vec![a.url.clone(), b.url.clone()]);
    run_contacts(CONTACTS, urls, Arc::new(Spread(AtomicU64::new(seed()))), Arc::default(), Duration::ZERO).await;
    assert_each_reply_once_in_order(&evolution, &db, &expected, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_leaves_its_work_to_the_other_and_nothing_is_sent_twice() {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    let evolution = StandIn::start().await;
    let mut a = ServeProcess::start(&db, &evolution, &[]).await;
    let b = ServeProcess::start(&db, &evolution, &[]).await;
    let expected: Vec<Vec<String>> = (0..CONTACTS).map(expected_replies).collect();

    let urls = Arc::new(vec![a.url.clone(), b.url.clone()]);
    let accepted = Arc::new(AtomicUsize::new(0));
    let traffic = tokio::spawn(run_contacts(CONTACTS, urls, Arc::new(Spread(AtomicU64::new(seed()))), accepted.clone(), Duration::ZERO));
    let total_messages: usize = (0..CONTACTS).map(|contact| script(contact).len()).sum();
    while accepted.load(Ordering::SeqCst) < total_messages / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Evolution refuses sends while a dies, and a dies only when no reply is
    // claimed: a reply Evolution accepted is then already recorded as sent.
    // (A death between Evolution storing a reply and answering is the case
    // of `a_process_killed_mid_send_...` below.)
    evolution.fail_with(503);
    // Replies claimed from now on meet the 503; those claimed before must
    // have been recorded (sent, or rescheduled) before the kill.
    let refusing_since = switchyard_engine::time::Timestamp::now_utc().as_millis();
    let claim = switchyard_store::postgres::CLAIM.as_millis() as i64;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    support::wait_until(|| async {
        let unrecorded: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE claimed_by IS NOT NULL AND sent_at IS NULL AND claim_until - $1 <= $2",
        )
        .bind(claim)
        .bind(refusing_since)
        .fetch_one(&pool)
        .await
        .unwrap();
        unrecorded == 0
    })
    .await;
    a.kill();
    evolution.recover();
    traffic.await.unwrap();

    // a's leases (10 s) lapse and its claims are b's at once; b finishes everything.
    assert_each_reply_once_in_order(&evolution, &db, &expected, Duration::from_secs(90)).await;
    // a comes back: it finds nothing left to send. One more conversation,
    // through a alone, is answered (a's sender has run) and nothing before
    // it is sent again.
    let a = ServeProcess::start(&db, &evolution, &[]).await;
    let http = support::http();
    for (idx, line) in script(CONTACTS).iter().enumerate() {
        let body = support::upsert(&format!("MN-after-{idx}"), &support::traffic::number(CONTACTS), line, 1_795_000_100 + idx as i64);
        support::traffic::deliver(&http, std::slice::from_ref(&a.url), &Spread(AtomicU64::new(1)), &body).await;
    }
    let expected: Vec<Vec<String>> = (0..=CONTACTS).map(expected_replies).collect();
    assert_each_reply_once_in_order(&evolution, &db, &expected, Duration::from_secs(90)).await;
}

/// The sharpest crash: a process is SIGKILLed after Evolution stored its
/// reply (the customer has it) but before Evolution answered, so the reply
/// was never marked sent. The other process takes a's claims at once (a's
/// node lock died with it), waits for a's attempt to settle, asks
/// `findMessages`, finds the reply and does not send it again. b's own sends
/// held past SEND_TIMEOUT meanwhile are unsure too and are found the same
/// way. Every reply a held is done long before its claim would have lapsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_send_is_taken_over_at_once_and_sends_nothing_twice() {
    killed_mid_send(&[]).await;
}

/// The same without a throttle: each claim marks its replies' attempts in
/// the claim itself (`PgStore::claim_due`), before they wait for a send slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unthrottled_a_process_killed_mid_send_is_taken_over_at_once_and_sends_nothing_twice() {
    killed_mid_send(&[("SEND_THROTTLE", "off")]).await;
}

async fn killed_mid_send(settings: &[(&str, &str)]) {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    const FEW: usize = 100;
    let evolution = StandIn::start().await;
    let env = |key: &'static str| [("EVOLUTION_API_KEY", key), ("SEND_TIMEOUT", "2s")].into_iter().chain(settings.iter().copied()).collect::<Vec<_>>();
    let mut a = ServeProcess::start(&db, &evolution, &env("key-a")).await;
    let b = ServeProcess::start(&db, &evolution, &env("key-b")).await;
    let expected: Vec<Vec<String>> = (0..FEW).map(expected_replies).collect();

    let urls = Arc::new(vec![a.url.clone(), b.url.clone()]);
    let accepted = Arc::new(AtomicUsize::new(0));
    let traffic = tokio::spawn(run_contacts(FEW, urls, Arc::new(Spread(AtomicU64::new(seed()))), accepted.clone(), Duration::ZERO));
    let total_messages: usize = (0..FEW).map(|contact| script(contact).len()).sum();
    while accepted.load(Ordering::SeqCst) < total_messages / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Connected first, so the read below follows a's stored send at once
    // (well within SEND_TIMEOUT, after which a would give the attempt up).
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    // Stored sends go unanswered; a dies as soon as one of its own is stored.
    // Hold first, then count: a send stored after the count then meets the
    // hold (the other order lets one stored in between be answered, and
    // marked sent, and still pass for a held one).
    evolution.hold();
    let before = evolution.sent().len();
    support::wait_until(|| async { evolution.sent()[before..].iter().any(|sent| sent.apikey.as_deref() == Some("key-a")) }).await;
    // Read what a holds while it is alive: once it is dead, b may take its
    // claims over (they become b's) before a read after the kill. Nothing
    // a holds can be marked sent meanwhile: Evolution answers no send.
    let a_node = format!("{}-%", a.pid());
    let held: Vec<(i64, i64, bool)> =
        sqlx::query_as("SELECT seq, claim_until, attempted_at IS NOT NULL FROM outbox WHERE claimed_by LIKE $1 AND sent_at IS NULL")
            .bind(&a_node)
            .fetch_all(&pool)
            .await
            .unwrap();
    a.kill();
    let in_flight = held.iter().filter(|(_, _, attempted)| *attempted).count();
    assert!(in_flight >= 1, "a died with a stored, unanswered send on record");
    evolution.release();
    traffic.await.unwrap();

    assert_each_reply_once_in_order(&evolution, &db, &expected, Duration::from_secs(90)).await;
    assert!(evolution.finds() >= 1, "Evolution was asked before anything was sent again");
    // Taken over, not waited out: each reply a held was done before its claim lapsed.
    for (seq, claim_until, _) in held {
        let sent_at: Option<i64> = sqlx::query_scalar("SELECT sent_at FROM outbox WHERE seq = $1").bind(seq).fetch_one(&pool).await.unwrap();
        let sent_at = sent_at.unwrap_or_else(|| panic!("reply {seq} a held was never marked sent"));
        assert!(sent_at < claim_until, "reply {seq} waited for a's claim to lapse ({sent_at} >= {claim_until})");
    }
}
