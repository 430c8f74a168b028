//! `switchyard serve` end to end: the real server on port 0 with a fresh
//! SQLite file, and a stand-in Evolution API (an axum app on a loopback
//! socket) that records every sendText it receives.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{upsert, StandIn, TestApp};

#[tokio::test]
async fn a_text_message_gets_a_reply_through_evolution_with_the_apikey() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);

    let (status, body) = app.webhook(&upsert("MSG-1", "5511911110001", "oi", 1_795_000_000)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    let sent = app.evolution.wait_for(1).await;
    assert_eq!(sent[0].instance, "loja-bot");
    assert_eq!(sent[0].number, "5511911110001");
    assert_eq!(sent[0].apikey.as_deref(), Some("global-key"));
    assert!(sent[0].text.contains("CertiFácil"), "{}", sent[0].text);
    app.stop().await;
}

#[tokio::test]
async fn the_same_webhook_three_times_and_out_of_order_gets_exactly_one_reply() {
    let app = TestApp::spawn().await;
    let first = upsert("DUP-1", "5511911110002", "oi", 1_795_000_000);
    for _ in 0..3 {
        let (status, _) = app.webhook(&first).await;
        assert_eq!(status, 200);
    }
    app.wait_idle().await;
    let greeting = app.evolution.sent().len();
    assert_eq!(greeting as i64, app.count("SELECT COUNT(*) FROM outbox").await, "one turn's replies, once");
    // A later message, then the first one again (Evolution retries late and out of order).
    app.webhook(&upsert("DUP-2", "5511911110002", "1", 1_795_000_060)).await;
    app.wait_idle().await;
    let after_second = app.evolution.sent().len();
    assert!(after_second > greeting);
    let (status, body) = app.webhook(&first).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")));
    app.wait_idle().await;
    let sent = app.evolution.sent();
    assert_eq!(sent.len(), after_second, "the late duplicate produced no reply: {sent:#?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 2);
    app.stop().await;
}

#[tokio::test]
async fn replies_survive_an_evolution_outage_in_order_and_exactly_once() {
    let app = TestApp::spawn().await;
    app.evolution.fail_with(503);
    let contacts = ["5511911110011", "5511911110012", "5511911110013"];
    for (idx, contact) in contacts.iter().enumerate() {
        app.webhook(&upsert(&format!("OUT-{idx}-a"), contact, "oi", 1_795_000_000)).await;
        app.webhook(&upsert(&format!("OUT-{idx}-b"), contact, "2", 1_795_000_001)).await;
    }
    // Every message processed (its replies queued), and the sender failed a
    // few times; then Evolution comes back.
    support::wait_until(|| async {
        app.count("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await == 0 && app.evolution.refused() >= 3
    })
    .await;
    assert!(app.evolution.sent().is_empty());
    app.evolution.recover();
    // Each contact: greeting + menu for "oi", then the billing question for
    // "2" (counted once every turn is committed: a busy machine may still be
    // processing when Evolution comes back).
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await == 0 }).await;
    let expected = app.count("SELECT COUNT(*) FROM outbox").await as usize;
    assert!(expected >= 6);
    let sent = app.evolution.wait_for(expected).await;
    assert_eq!(sent.len(), expected, "none twice");
    for contact in contacts {
        let texts: Vec<&str> = sent.iter().filter(|s| s.number == contact).map(|s| s.text.as_str()).collect();
        let stored = app.texts_for(contact).await;
        assert_eq!(texts, stored.iter().map(String::as_str).collect::<Vec<_>>(), "in order for {contact}");
    }
    // The sender takes a contact's queued replies in one run and marks
    // their attempts together; when the first failed, the marks of those
    // behind it were taken back: none was ever taken for a maybe-sent one.
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE unsure_since IS NOT NULL").await, 0, "no reply became unsure");
    app.stop().await;
}

#[tokio::test]
async fn an_accepted_message_is_answered_once_after_a_restart() {
    let evolution = StandIn::start().await;
    evolution.fail_with(503);
    let db = support::fresh_db();
    let app = TestApp::spawn_with(&db, &evolution, |_| {}).await;
    app.webhook(&upsert("RESTART-1", "5511911110021", "oi", 1_795_000_000)).await;
    // Processed, but the reply cannot leave: stop the server with it in the outbox.
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM outbox").await > 0 }).await;
    app.stop().await;
    assert!(evolution.sent().is_empty());

    evolution.recover();
    let app = TestApp::spawn_with(&db, &evolution, |_| {}).await;
    let count = app.count("SELECT COUNT(*) FROM outbox").await as usize;
    evolution.wait_for(count).await;
    // Every reply recorded as sent: nothing further can go out.
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").await == 0 }).await;
    assert_eq!(evolution.sent().len(), count, "each reply once");
    app.stop().await;
}

#[tokio::test]
async fn bad_requests_get_4xx_and_store_nothing() {
    let app = TestApp::spawn_configured(|config| config.webhook_secret = Some("s3cret".to_owned())).await;
    let body = upsert("AUTH-1", "5511911110031", "oi", 1_795_000_000);
    assert_eq!(app.webhook_with(&body.to_string(), None).await.0, 401);
    assert_eq!(app.webhook_with(&body.to_string(), Some("wrong")).await.0, 401);
    let (status, error) = app.webhook_with("{not json", Some("s3cret")).await;
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().len() < 200, "one line: {error}");
    assert_eq!(app.webhook_with("[1,2]", Some("s3cret")).await.0, 400);
    assert_eq!(app.webhook_with(r#"{"event":"messages.upsert","instance":"loja-bot","data":{}}"#, Some("s3cret")).await.0, 400);
    let huge = format!("{{\"event\":\"x\",\"instance\":\"loja-bot\",\"data\":\"{}\"}}", "a".repeat(3 * 1024 * 1024));
    assert_eq!(app.webhook_with(&huge, Some("s3cret")).await.0, 413);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0);
    // The right secret works.
    assert_eq!(app.webhook_with(&body.to_string(), Some("s3cret")).await.0, 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn an_operator_message_pauses_the_bot_until_released() {
    let app = TestApp::spawn_configured(|config| config.admin_tokens = vec![("ops".to_owned(), "admin-token".to_owned())]).await;
    let contact = "5511911110041";
    app.webhook(&upsert("OP-0", contact, "oi", 1_795_000_000)).await;
    app.wait_idle().await;
    let before = app.evolution.sent().len();
    // An operator types on the business phone.
    let mut operator = upsert("OP-1", contact, "Oi, aqui é a Ana da CertiFácil, posso ajudar?", 1_795_000_010);
    operator["data"]["key"]["fromMe"] = json!(true);
    assert_eq!(app.webhook(&operator).await.0, 200);
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM handoffs").await == 1 }).await;
    app.webhook(&upsert("OP-2", contact, "quero comprar", 1_795_000_020)).await;
    // Processed means its turn is committed, replies and all, in one
    // transaction: no reply queued for it is no reply at all.
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await == 0 }).await;
    assert_eq!(app.texts_for(contact).await.len(), before, "the bot stays silent while a human has the chat");
    assert_eq!(app.evolution.sent().len(), before);

    // Release through the admin API: the bot answers again.
    let (status, _) = app.post_admin("/api/handoffs/release", json!({"instance": "loja-bot", "contact": contact}), None).await;
    assert_eq!(status, 401, "the admin API wants the token");
    let (status, body) = app.post_admin("/api/handoffs/release", json!({"instance": "loja-bot", "contact": contact}), Some("admin-token")).await;
    assert_eq!((status, body["released"].as_bool()), (200, Some(true)));
    app.webhook(&upsert("OP-3", contact, "oi", 1_795_000_030)).await;
    app.evolution.wait_for(before + 1).await;
    app.stop().await;
}

#[tokio::test]
async fn groups_status_receipts_and_own_sends_are_acknowledged_and_not_answered() {
    let app = TestApp::spawn().await;
    let mut group = upsert("G-1", "5511911110051", "oi grupo", 1_795_000_000);
    group["data"]["key"]["remoteJid"] = json!("120363025246125888@g.us");
    group["data"]["key"]["participant"] = json!("5511911110051@s.whatsapp.net");
    let mut status_update = upsert("S-1", "5511911110052", "meu status", 1_795_000_000);
    status_update["data"]["key"]["remoteJid"] = json!("status@broadcast");
    status_update["data"]["key"]["participant"] = json!("5511911110052@s.whatsapp.net");
    let mut own_send = upsert("SM-1", "5511911110053", "olá", 1_795_000_000);
    own_send["event"] = json!("send.message");
    let receipt = json!({"event": "messages.update", "instance": "loja-bot", "data": {"keyId": "X", "remoteJid": "5511911110053@s.whatsapp.net", "fromMe": true, "status": "READ"}});
    let connection = json!({"event": "connection.update", "instance": "loja-bot", "data": {"instance": "loja-bot", "state": "open", "statusReason": 200}});
    for body in [&group, &status_update, &own_send, &receipt, &connection] {
        let (status, reply) = app.webhook(body).await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("ignored")), "{body}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM inbox").await, 0, "nothing stored, so nothing to answer");
    // A message after them is answered: the server went past them without a reply.
    app.webhook(&upsert("AFTER-1", "5511911110054", "oi", 1_795_000_010)).await;
    app.wait_idle().await;
    let sent = app.evolution.sent();
    assert!(!sent.is_empty() && sent.iter().all(|send| send.number == "5511911110054"), "{sent:#?}");
    app.stop().await;
}

#[tokio::test]
async fn audio_gets_a_polite_text_only_reply_and_does_not_advance_the_flow() {
    let app = TestApp::spawn().await;
    let contact = "5511911110061";
    app.webhook(&upsert("A-0", contact, "oi", 1_795_000_000)).await;
    app.wait_idle().await;
    let before = app.evolution.sent().len();
    let audio = json!({"event": "messages.upsert", "instance": "loja-bot", "data": {
        "key": {"remoteJid": format!("{contact}@s.whatsapp.net"), "fromMe": false, "id": "A-1"},
        "pushName": "Cliente", "status": "DELIVERY_ACK",
        "message": {"audioMessage": {"seconds": 4, "ptt": true, "mimetype": "audio/ogg; codecs=opus"}},
        "messageType": "audioMessage", "messageTimestamp": 1_795_000_005}});
    assert_eq!(app.webhook(&audio).await.0, 200);
    let sent = app.evolution.wait_for(before + 1).await;
    assert!(sent.last().unwrap().text.contains("mensagens de texto"), "{:?}", sent.last());
    let step: String = app.scalar("SELECT step FROM sessions WHERE outcome IS NULL").await;
    assert_eq!(step, "choose");
    app.stop().await;
}

#[tokio::test]
async fn a_number_not_on_whatsapp_is_recorded_and_not_retried() {
    let app = TestApp::spawn().await;
    app.evolution.reject_number("5511911110071");
    app.webhook(&upsert("NX-1", "5511911110071", "oi", 1_795_000_000)).await;
    // The greeting and the menu both fail for good; neither is retried.
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM outbox WHERE failed_at IS NOT NULL").await == 2 }).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE failed_at IS NULL").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM events WHERE kind = 'undeliverable'").await, 2);
    let refused = app.evolution.refused();
    // Marked failed, the rows are out of the sender's queue: another
    // contact's replies go out after them, and the 400s are not retried.
    app.webhook(&upsert("NX-2", "5511911110072", "oi", 1_795_000_001)).await;
    app.wait_idle().await;
    assert!(app.evolution.sent().iter().any(|send| send.number == "5511911110072"));
    assert_eq!(app.evolution.refused(), refused, "no retry of a 400");
    app.stop().await;
}

/// Evolution stores a send (WhatsApp has it) but answers after
/// SEND_TIMEOUT, as a stand-in whose listen backlog overflowed under a burst
/// did. The sender must not send it again blindly: it asks `findMessages`,
/// finds it, and the customer gets each reply once. A send that failed
/// inside Evolution just as slowly is not found there, and is sent again.
#[tokio::test]
async fn a_send_answered_after_the_timeout_reaches_the_customer_once() {
    let app = TestApp::spawn_configured(|config| config.send_timeout = Duration::from_secs(1)).await;
    app.evolution.answer_after(Duration::from_millis(1500));
    app.webhook(&upsert("LATE-1", "5511911110031", "oi", 1_795_000_000)).await;
    app.wait_idle().await;
    let texts = app.texts_for("5511911110031").await;
    assert_eq!(texts.len(), 2, "the greeting and the menu");
    let got: Vec<String> = app.evolution.sent().iter().map(|sent| sent.text.clone()).collect();
    assert_eq!(got, texts, "each reply once, in order");
    assert!(app.evolution.finds() >= 2, "Evolution was asked before any resend");
    let ids: Vec<String> = app.evolution.sent().iter().map(|sent| sent.id.clone()).collect();
    let recorded: Vec<String> = sqlx::query_scalar("SELECT provider_id FROM outbox WHERE contact = '5511911110031' ORDER BY seq")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(recorded, ids, "marked sent with the ids Evolution has");

    // Lost inside Evolution (not stored), answered too late: not found, so sent again.
    app.evolution.lose_next(1);
    app.webhook(&upsert("LATE-2", "5511911110032", "oi", 1_795_000_000)).await;
    app.wait_idle().await;
    let texts = app.texts_for("5511911110032").await;
    let got: Vec<String> = app.evolution.sent().iter().filter(|sent| sent.number == "5511911110032").map(|sent| sent.text.clone()).collect();
    assert_eq!(got, texts, "the lost reply was sent again, and each reply reached the customer once");
    app.stop().await;
}

/// A burst to many contacts on one instance keeps at most SEND_CONCURRENCY
/// sends in flight against Evolution.
#[tokio::test]
async fn sends_in_flight_per_instance_are_bounded() {
    let app = TestApp::spawn_configured(|config| config.send_concurrency = 3).await;
    app.evolution.answer_after(Duration::from_millis(200));
    for idx in 0..20 {
        app.webhook(&upsert(&format!("BURST-{idx}"), &format!("55119222200{idx:02}"), "oi", 1_795_000_000)).await;
    }
    app.wait_idle().await;
    assert_eq!(app.evolution.sent().len(), 40, "every contact's greeting and menu");
    assert_eq!(app.evolution.max_in_flight(), 3, "never more than SEND_CONCURRENCY at once, and all of them used");
    app.stop().await;
}

#[test]
fn serve_refuses_to_start_naming_each_bad_setting() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FLOW_VERSION_OVERRIDES", "billing=v9")
        .env("SEND_THROTTLE", "fast")
        .env("SEND_CONCURRENCY", "0")
        .env("TYPING", "fast")
        .env("TRANSCRIBE", "on")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("FLOW_VERSION_OVERRIDES entry 'billing=v9'"), "{err}");
    assert!(err.contains("SEND_THROTTLE 'fast'"), "{err}");
    assert!(err.contains("SEND_CONCURRENCY '0'"), "{err}");
    assert!(err.contains("TYPING 'fast' must be off, auto or a delay"), "{err}");
    assert!(err.contains("TRANSCRIBE=on needs LLM_BASE_URL"), "{err}");
    assert!(err.contains("EVOLUTION_URL is required"), "{err}");
}


/// Starts the real binary; returns the process and its base URL once ready.
async fn spawn_binary(db: &str, evolution: &StandIn) -> (support::ServeProcess, String) {
    let process = support::ServeProcess::start(db, evolution, &[("EVOLUTION_API_KEY", "global-key"), ("SEND_THROTTLE", "off"), ("SEND_TIMEOUT", "2s")]).await;
    let url = process.url.clone();
    (process, url)
}

#[tokio::test]
async fn a_killed_process_loses_nothing_and_sends_each_reply_once_after_restart() {
    let evolution = StandIn::start().await;
    evolution.fail_with(503);
    let db = support::fresh_db();
    let (mut child, url) = spawn_binary(&db, &evolution).await;
    let http = support::http();
    for (idx, text) in ["oi", "1"].iter().enumerate() {
        let body = upsert(&format!("KILL-{idx}"), "5511911110081", text, 1_795_000_000 + idx as i64);
        let response = http.post(format!("{url}/webhooks/evolution")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let store = switchyard_store::sqlite::SqliteStore::open(&db).await.unwrap();
    let count = |sql: &'static str| {
        let pool = store.pool().clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    support::wait_until(|| async { count("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await == 0 }).await;
    child.kill();
    assert!(evolution.sent().is_empty(), "nothing was delivered before the kill");

    evolution.recover();
    let (mut child, _url) = spawn_binary(&db, &evolution).await;
    let expected = count("SELECT COUNT(*) FROM outbox").await as usize;
    evolution.wait_for(expected).await;
    // Every reply recorded as sent: nothing further can go out.
    support::wait_until(|| async { count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").await == 0 }).await;
    child.kill();
    let sent = evolution.sent();
    assert_eq!(evolution.sent().len(), expected, "each reply once: {sent:#?}");
    let texts: Vec<String> = sqlx::query_scalar("SELECT text FROM outbox ORDER BY seq").fetch_all(store.pool()).await.unwrap();
    assert_eq!(sent.iter().map(|s| s.text.clone()).collect::<Vec<_>>(), texts, "in order");
}

/// On SQLite without a throttle, a turn's commit records its replies' first
/// attempts, so nothing is written between the commit and the sends. A
/// process killed with replies committed but not yet requested leaves them
/// as attempts cut short: the next process asks Evolution about each one
/// (the one it had in hand is found there) and sends the rest, each once,
/// in order.
#[tokio::test]
async fn replies_queued_at_a_kill_are_checked_with_evolution_and_each_sent_once_after_restart() {
    let evolution = StandIn::start().await;
    evolution.hold();
    let db = support::fresh_db();
    let env = [("EVOLUTION_API_KEY", "global-key"), ("SEND_THROTTLE", "off"), ("SEND_TIMEOUT", "2s"), ("SEND_CONCURRENCY", "1")];
    let mut child = support::ServeProcess::start(&db, &evolution, &env).await;
    let http = support::http();
    let numbers = ["5511911110091", "5511911110092"];
    for (idx, number) in numbers.iter().enumerate() {
        let body = upsert(&format!("QUEUED-{idx}"), number, "oi", 1_795_000_000 + idx as i64);
        let response = http.post(format!("{}/webhooks/evolution", child.url)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let store = switchyard_store::sqlite::SqliteStore::open(&db).await.unwrap();
    let count = |sql: &'static str| {
        let pool = store.pool().clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    // One send is in Evolution's hands, unanswered; the others wait for its slot.
    support::wait_until(|| async { count("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await == 0 && evolution.sent().len() == 1 }).await;
    let total = count("SELECT COUNT(*) FROM outbox").await;
    // (`attempt_by`, not `attempted_at`: the held send may time out meanwhile.)
    let attempted = count("SELECT COUNT(*) FROM outbox WHERE attempt_by IS NOT NULL").await;
    child.kill();
    assert!(total >= 4, "two greetings of two or more replies: {total}");
    assert_eq!(attempted, total, "every reply's attempt is on record from its turn's commit");

    evolution.release();
    let mut child = support::ServeProcess::start(&db, &evolution, &env).await;
    support::wait_until(|| async { count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").await == 0 }).await;
    child.kill();
    let sent = evolution.sent();
    assert_eq!(sent.len(), total as usize, "each reply once: {sent:#?}");
    assert!(evolution.finds() >= total as usize, "each reply was looked up first: {} lookups", evolution.finds());
    for number in numbers {
        let texts: Vec<String> =
            sqlx::query_scalar("SELECT text FROM outbox WHERE contact = ? ORDER BY seq").bind(number).fetch_all(store.pool()).await.unwrap();
        let delivered: Vec<String> = sent.iter().filter(|s| s.number == number).map(|s| s.text.clone()).collect();
        assert_eq!(delivered, texts, "in order");
    }
}

/// A graceful stop takes back the attempts recorded at commit for the
/// replies it never requested: after a deploy they are plain replies, sent
/// at once by the next start instead of checked with Evolution first.
#[tokio::test]
async fn a_graceful_stop_takes_back_the_attempts_of_replies_it_never_requested() {
    let app = TestApp::spawn_configured(|config| {
        config.send_concurrency = 1;
        // Longer than the test: the held send is answered, not timed out.
        config.send_timeout = Duration::from_secs(30);
    })
    .await;
    let evolution = app.evolution.clone();
    evolution.hold();
    assert_eq!(app.webhook(&upsert("STOP-0", "5511911110093", "oi", 1_795_000_000)).await.0, 200);
    support::wait_until(|| async { evolution.sent().len() == 1 }).await;
    // Queued while the sender waits on that send: not in its round.
    assert_eq!(app.webhook(&upsert("STOP-1", "5511911110094", "oi", 1_795_000_001)).await.0, 200);
    support::wait_until(|| async { app.count("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL").await == 0 }).await;
    let queued = app.count("SELECT COUNT(*) FROM outbox WHERE contact = '5511911110094'").await;
    let attempted = app.count("SELECT COUNT(*) FROM outbox WHERE contact = '5511911110094' AND attempted_at IS NOT NULL AND attempt_by IS NOT NULL").await;
    assert!(queued >= 2, "a greeting of two or more replies: {queued}");
    assert_eq!(attempted, queued, "queued with their attempts on record");
    let pool = app.pool().clone();
    // The stop comes while the round waits on the held send; the round
    // ends when Evolution answers, and the sender stops after it.
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    evolution.release();
    stopping.await.unwrap();
    let rows: Vec<(String, Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT contact, attempted_at, attempt_by FROM outbox WHERE sent_at IS NULL ORDER BY seq").fetch_all(&pool).await.unwrap();
    assert_eq!(rows.len() as i64, queued, "only the second contact's replies are left: {rows:?}");
    assert!(rows.iter().all(|row| row.0 == "5511911110094" && row.1.is_none() && row.2.is_none()), "plain again: {rows:?}");
}

/// A reply whose attempt was recorded at its turn's commit but that waits
/// longer than a `SEND_TIMEOUT` to go out (here for a send slot, behind
/// slow answers) has its mark moved to just before its request: the mark
/// is what a later start lets settle before it checks with Evolution.
#[tokio::test]
async fn a_stale_commit_mark_is_moved_to_just_before_its_request() {
    let app = TestApp::spawn_configured(|config| config.send_concurrency = 1).await;
    let evolution = app.evolution.clone();
    // Each send is answered 1.5 s after it arrives; the timeout is 2 s.
    evolution.answer_after(Duration::from_millis(1500));
    let committed = switchyard_engine::time::Timestamp::now_utc().as_millis();
    for (idx, number) in ["5511911110096", "5511911110097"].iter().enumerate() {
        assert_eq!(app.webhook(&upsert(&format!("STALE-{idx}"), number, "oi", 1_795_000_000 + idx as i64)).await.0, 200);
    }
    // The third send waited two answers (3 s) for the one slot.
    let sent = evolution.wait_for(3).await;
    let third = &sent[2];
    let row: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT attempted_at, attempt_by, sent_at, unsure_since FROM outbox WHERE contact = ? AND text = ? ORDER BY seq LIMIT 1")
            .bind(&third.number)
            .bind(&third.text)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(row.2, None, "not answered yet: {row:?}");
    assert_eq!(row.1, None, "the commit's mark was replaced: {row:?}");
    assert!(row.0.is_some_and(|at| at >= committed + 2_000), "marked again before its request: {row:?}");
    assert_eq!(row.3, None, "and no less sure than it was: {row:?}");
}

/// Every fixture of the evolution crate through the real server: a reply
/// where one is due (to the address the identity rules pick), none where not.
#[tokio::test]
async fn every_evolution_fixture_is_answered_or_ignored_as_evolution_users_expect() {
    use switchyard_evolution::webhook::{parse, WebhookKind};

    // (fixture file prefix, a reply is due)
    let expectations = [
        ("01-", true), ("02-", true), ("03-", true), ("04-", true), ("05-", true), ("06-", false),
        ("07-", false), ("08-", false), ("09-", false), ("10-", false), ("11-", true), ("12-", true),
        ("13-", true), ("14-", true), ("15-", true), ("16-", true), ("17-", true), ("18-", true),
        ("19-", false), ("20-", true), ("21-", true), ("22-", true), ("23-", true), ("24-", true),
        ("25-", true), ("26-", true), ("27-", true), ("28-", false), ("29-", false), ("30-", true),
        ("31-", false), ("32-", false),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../evolution/tests/fixtures");
    // Webhook bodies only: `rest/` holds REST answers.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), expectations.len(), "every fixture has an expectation");
    for (file, (prefix, reply_due)) in files.iter().zip(expectations) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(prefix), "{name} vs {prefix}");
        let body = std::fs::read_to_string(file).unwrap();
        let app = TestApp::spawn().await;
        let (status, answer) = app.webhook_with(&body, None).await;
        assert_eq!(status, 200, "{name}: {answer}");
        app.wait_idle().await;
        let sent = app.evolution.sent();
        if reply_due {
            assert!(!sent.is_empty(), "{name}: a reply is due");
            let WebhookKind::Message(incoming) = parse(body.as_bytes()).unwrap().kind else { panic!("{name}") };
            assert!(sent.iter().all(|s| s.number == incoming.sender.reply_to), "{name}: replies go to {}", incoming.sender.reply_to);
        } else {
            assert!(sent.is_empty(), "{name}: no reply is due, got {sent:?}");
        }
        app.stop().await;
    }
}

/// The webhooks in the shapes Evolution really sent (v2.1 to v2.3, see
/// `evolution/tests/fixtures/real/SOURCES.md`) through the real server: each
/// customer message is answered at the address the identity rules pick, the
/// receipt is acknowledged and not answered.
#[tokio::test]
async fn real_evolution_webhooks_of_each_version_are_answered_through_serve() {
    // (file, the address the replies go to; None: no reply is due)
    let expectations = [
        ("v2.1.0-upsert-extended-text.json", Some("5521987650101")),
        ("v2.2.0-upsert-no-push-name.json", Some("5521987650102")),
        ("v2.2.3-upsert-lid-only.json", Some("187654321012345@lid")),
        ("v2.3-messages-update-deleted.json", None),
        // Without Chatwoot an API send is our own, echoed: ignored.
        ("v2.3.6-send-message-chatwoot-agent.json", None),
        ("v2.3.6-upsert-chatwoot-ids.json", Some("5521987650131")),
        // A person typing on the phone: the bot goes quiet, no reply.
        ("v2.3.6-upsert-fromme-echo.json", None),
        // Voice notes, files and choice replies (issue #18): each answered,
        // with its text, the polite type-please or the entry menu.
        ("v2.3.6-cloud-upsert-interactive-reply.json", Some("5521987650118")),
        ("v2.3.6-upsert-audio-ptt.json", Some("5521987650111")),
        ("v2.3.6-upsert-audio-speech-to-text-null.json", Some("5521987650113")),
        ("v2.3.6-upsert-audio-speech-to-text.json", Some("5521987650112")),
        ("v2.3.6-upsert-buttons-response.json", Some("5521987650117")),
        ("v2.3.6-upsert-document.json", Some("5521987650115")),
        ("v2.3.6-upsert-image.json", Some("5521987650114")),
        ("v2.3.6-upsert-lid-with-phone-alt.json", Some("5521987650103")),
        ("v2.3.6-upsert-list-response.json", Some("5521987650116")),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../evolution/tests/fixtures/real");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    let mut expected: Vec<String> = expectations.iter().map(|(name, _)| (*name).to_owned()).collect();
    expected.sort();
    assert_eq!(files, expected, "every real webhook has an expectation");
    for (name, reply_to) in expectations {
        let body = std::fs::read_to_string(dir.join(name)).unwrap();
        let app = TestApp::spawn().await;
        let (status, answer) = app.webhook_with(&body, None).await;
        assert_eq!(status, 200, "{name}: {answer}");
        app.wait_idle().await;
        let sent = app.evolution.sent();
        match reply_to {
            Some(address) => {
                assert!(!sent.is_empty(), "{name}: a reply is due");
                assert!(sent.iter().all(|s| s.number == address && s.instance == "loja-teste"), "{name}: replies go to {address}: {sent:?}");
            }
            None => {
                // A fromMe message is stored (a takeover, or an echo set
                // aside when processed); the others are not even stored.
                let expected = if name.contains("fromme") { "accepted" } else { "ignored" };
                assert_eq!(answer["status"], expected, "{name}: {answer}");
                assert!(sent.is_empty(), "{name}: no reply is due, got {sent:?}");
            }
        }
        app.stop().await;
    }
}
