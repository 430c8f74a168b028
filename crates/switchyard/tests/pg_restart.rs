//! PostgreSQL going away under load and coming back: while it is out of
//! reach, webhooks are refused with 503 (Evolution retries them) and
//! `/readyz` says not ready; when it is back, the processes reconnect by
//! themselves and every accepted message is answered, each reply once, in
//! order.
//!
//! The outage is a TCP proxy between the `serve` processes and PostgreSQL,
//! cut and restored (`support::proxy`): every connection through it is
//! reset and new ones are refused, as when the server goes down, while the
//! shared cluster other tests use keeps running.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::proxy::{host_port, TcpProxy};
use support::traffic::{assert_each_reply_once_in_order, expected_replies, run_contacts, script, seed, Spread, REFUSED};
use support::{upsert, wait_until, ServeProcess, StandIn};

const CONTACTS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_loses_nothing_accepted() {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    let proxy = TcpProxy::start(host_port(&db)).await;
    let through = proxy.url_through(&db);
    let evolution = StandIn::start().await;
    let env = [("DATABASE_ACQUIRE_TIMEOUT", "1s")];
    let a = ServeProcess::start(&through, &evolution, &env).await;
    let b = ServeProcess::start(&through, &evolution, &env).await;
    let expected: Vec<Vec<String>> = (0..CONTACTS).map(expected_replies).collect();

    let urls = Arc::new(vec![a.url.clone(), b.url.clone()]);
    let accepted = Arc::new(AtomicUsize::new(0));
    let pause = Duration::from_millis(1500);
    let traffic = tokio::spawn(run_contacts(CONTACTS, urls, Arc::new(Spread(AtomicU64::new(seed()))), accepted.clone(), pause));
    let total_messages: usize = (0..CONTACTS).map(|contact| script(contact).len()).sum();
    wait_until(|| async { accepted.load(Ordering::SeqCst) >= total_messages / 3 }).await;

    proxy.cut();
    let refused_before = REFUSED.load(Ordering::SeqCst);
    let http = support::http();
    // A webhook now is refused with a retryable status (within the acquire
    // timeout; the client's own deadline is only there to end a hang).
    let mut probe = upsert("OUTAGE-1", "5511999990001", "oi", 1_795_000_000);
    probe["data"]["key"]["fromMe"] = serde_json::json!(true);
    let refused = http.post(format!("{}/webhooks/evolution", a.url)).timeout(Duration::from_secs(30)).json(&probe).send().await.unwrap();
    assert_eq!(refused.status(), 503, "retryable while the database is down");
    assert_eq!(http.get(format!("{}/readyz", b.url)).send().await.unwrap().status(), 503);
    // The outage lasts until the traffic has met it: some webhooks refused
    // and retried, while the run is not over.
    wait_until(|| async { REFUSED.load(Ordering::SeqCst) >= refused_before + 10 }).await;
    let during = accepted.load(Ordering::SeqCst);
    proxy.restore();

    traffic.await.unwrap();
    assert!(during < total_messages, "the outage was mid-run");
    assert_each_reply_once_in_order(&evolution, &through, &expected, Duration::from_secs(90)).await;
    for url in [&a.url, &b.url] {
        assert_eq!(http.get(format!("{url}/readyz")).send().await.unwrap().status(), 200, "{url} recovered by itself");
    }
}
