//! On PostgreSQL, a webhook whose message the writer's queue has no room
//! for is answered 503 with `Retry-After` at once, nothing of it stored; the
//! messages already queued are acknowledged only once committed, and
//! Evolution's retry of a refused one is taken and answered once. Real
//! PostgreSQL (skipped with a note where none answers), the real server on
//! a loopback socket.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};
use support::{engine, test_config, upsert, StandIn};
use switchyard::serve::Server;
use switchyard_store::postgres::{PgSettings, PgStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_writer_queue_gets_503_with_retry_after_and_the_retry_is_answered_once() {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    let evolution = StandIn::start().await;
    let store = PgStore::open_with_queue(&db, &PgSettings::default(), 2).await.expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(listener, engine(), Arc::new(switchyard_store::Db::Postgres(store.clone())), test_config(&evolution.url)).await.expect("server starts");
    let url = format!("http://{}/webhooks/evolution", server.addr);
    let post = |body: String| {
        let url = url.clone();
        async move {
            let response = support::http().post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
            (response.status().as_u16(), retry_after)
        }
    };

    // Another connection holds the inbox locked: the writer's first batch
    // waits, two more messages fill its queue of 2.
    let mut lock = PgConnection::connect(&db).await.unwrap();
    lock.execute("BEGIN").await.unwrap();
    lock.execute("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let messages: Vec<String> = (0..4).map(|n| upsert(&format!("PGBP-{n}"), &format!("55119333300{n:02}"), "oi", 1_795_000_000).to_string()).collect();
    let mut queued = Vec::new();
    for (n, message) in messages.iter().take(3).enumerate() {
        queued.push(tokio::spawn(post(message.clone())));
        let backlog = if n == 0 { 0 } else { n };
        for _ in 0..500 {
            if store.write_backlog() == backlog {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(store.write_backlog(), backlog);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The fourth finds the queue full: refused at once, with a hint.
    let refused = tokio::time::timeout(Duration::from_secs(5), post(messages[3].clone())).await.expect("answered without waiting");
    assert_eq!(refused, (503, Some("1".to_owned())));
    assert!(!queued.iter().any(|task| task.is_finished()), "nothing acknowledged before its commit");
    lock.execute("ROLLBACK").await.unwrap();
    lock.close().await.unwrap();
    for task in queued {
        assert_eq!(task.await.unwrap().0, 200);
    }
    let mut check = PgConnection::connect(&db).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE message_id = 'PGBP-3'").fetch_one(&mut check).await.unwrap();
    assert_eq!(stored, 0, "the refused message left nothing behind");

    // Evolution retries it: taken once, answered once.
    assert_eq!(post(messages[3].clone()).await.0, 200);
    assert_eq!(post(messages[3].clone()).await.0, 200, "a redelivery is acknowledged");
    for n in 0..4 {
        let number = format!("55119333300{n:02}");
        support::wait_until(|| {
            let (evolution, number) = (evolution.clone(), number.clone());
            async move { evolution.sent().iter().any(|sent| sent.number == number) }
        })
        .await;
    }
    let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE processed_at IS NOT NULL").fetch_one(&mut check).await.unwrap();
    assert_eq!(inbox, 4, "each message stored and processed once");
    server.shutdown().await;
}
