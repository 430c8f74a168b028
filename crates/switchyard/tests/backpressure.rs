//! When the store cannot take a message (its write lock held past the busy
//! timeout, or the writer's queue full), the webhook answers 503 with
//! `Retry-After`, stores nothing, and Evolution's retry is answered exactly
//! once.

mod support;


use sqlx::{Connection, Executor, SqliteConnection};
use support::{upsert, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_commit_gets_503_with_retry_after_and_the_retry_is_answered_once() {
    let app = TestApp::spawn().await;
    let messages: Vec<_> = (0..8).map(|n| upsert(&format!("BP-{n}"), &format!("55119222200{n:02}"), "oi", 1_795_000_000)).collect();

    // Another connection holds SQLite's write lock longer than the writer waits.
    let mut lock = SqliteConnection::connect(&app.db).await.unwrap();
    lock.execute("BEGIN IMMEDIATE").await.unwrap();
    let mut requests = Vec::new();
    for message in &messages {
        let (url, body) = (format!("http://{}/webhooks/evolution", app.addr), message.to_string());
        requests.push(tokio::spawn(async move {
            let response = support::http().post(url).header("content-type", "application/json").body(body).send().await.unwrap();
            let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
            (response.status().as_u16(), retry_after)
        }));
    }
    for request in requests {
        assert_eq!(request.await.unwrap(), (503, Some("1".to_owned())), "refused, with a hint when to retry");
    }
    lock.execute("ROLLBACK").await.unwrap();
    lock.close().await.unwrap();
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0, "nothing half-acknowledged");

    // Evolution retries: each message is taken and answered once.
    for message in &messages {
        let (status, body) = app.webhook(message).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    }
    // Settled: every entry processed, every reply sent; nothing more can go out.
    app.wait_idle().await;
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 8);
    let sent = app.evolution.sent();
    for n in 0..8 {
        let number = format!("55119222200{n:02}");
        let queued = app.texts_for(&number).await;
        assert!(!queued.is_empty());
        let delivered: Vec<_> = sent.iter().filter(|sent| sent.number == number).map(|sent| sent.text.clone()).collect();
        assert_eq!(delivered, queued, "one turn's replies for {number}, each once");
    }
    app.stop().await;
}
