//! PostgreSQL going away under load and coming back: while it is down,
//! webhooks are refused with 503 (Evolution retries them) and `/readyz`
//! says not ready; when it is back, the processes reconnect by themselves
//! and every accepted message is answered, each reply once, in order.
//!
//! Runs where the test PostgreSQL is this machine's own cluster and this
//! user may stop and start it (`pg_ctlcluster`, as root); skipped with a note
//! elsewhere. Its own test binary, so no other test shares the outage.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::traffic::{assert_each_reply_once_in_order, expected_replies, run_contacts, script, seed, Spread, REFUSED};
use support::{upsert, ServeProcess, StandIn};

const CONTACTS: usize = 100;

/// The local cluster's version, when this test may stop and start it.
fn local_cluster(url: &str) -> Result<String, String> {
    if !(url.contains("@127.0.0.1") || url.contains("@localhost")) {
        return Err(format!("the test PostgreSQL ({}) is not this machine's", switchyard_store::redact_url(url)));
    }
    let uid = std::process::Command::new("id").arg("-u").output().map_err(|err| format!("id -u: {err}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("stopping the cluster needs root".to_owned());
    }
    let versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .map_err(|err| format!("/etc/postgresql: {err}"))?
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect();
    match versions.as_slice() {
        [version] => Ok(version.clone()),
        _ => Err(format!("expected one cluster version under /etc/postgresql, found {versions:?}")),
    }
}

fn cluster(version: &str, action: &str) -> bool {
    std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", version, "main", action])
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts the cluster again however the test ends.
struct Outage(String);

impl Drop for Outage {
    fn drop(&mut self) {
        cluster(&self.0, "start");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_loses_nothing_accepted() {
    let Some(db) = switchyard_store::testing::fresh_postgres_url().await else { return };
    let version = match local_cluster(&db) {
        Ok(version) => version,
        Err(why) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "note: PostgreSQL outage test skipped: {why}");
            return;
        }
    };
    let evolution = StandIn::start().await;
    let env = [("DATABASE_ACQUIRE_TIMEOUT", "1s")];
    let a = ServeProcess::start(&db, &evolution, &env).await;
    let b = ServeProcess::start(&db, &evolution, &env).await;
    let expected: Vec<Vec<String>> = (0..CONTACTS).map(expected_replies).collect();

    let urls = Arc::new(vec![a.url.clone(), b.url.clone()]);
    let accepted = Arc::new(AtomicUsize::new(0));
    let pause = Duration::from_millis(1500);
    let traffic = tokio::spawn(run_contacts(CONTACTS, urls, Arc::new(Spread(AtomicU64::new(seed()))), accepted.clone(), pause));
    let total_messages: usize = (0..CONTACTS).map(|contact| script(contact).len()).sum();
    while accepted.load(Ordering::SeqCst) < total_messages / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let outage = Outage(version.clone());
    let stopped = tokio::task::spawn_blocking(move || cluster(&version, "stop")).await.unwrap();
    assert!(stopped, "pg_ctlcluster stop failed");
    let http = support::http();
    // A webhook now is refused with a retryable status, promptly.
    let mut probe = upsert("OUTAGE-1", "5511999990001", "oi", 1_795_000_000);
    probe["data"]["key"]["fromMe"] = serde_json::json!(true);
    let asked = std::time::Instant::now();
    let refused = http.post(format!("{}/webhooks/evolution", a.url)).json(&probe).send().await.unwrap();
    assert_eq!(refused.status(), 503, "retryable while the database is down");
    assert!(asked.elapsed() < Duration::from_secs(4), "refused within the acquire timeout, not hanging");
    assert_eq!(http.get(format!("{}/readyz", b.url)).send().await.unwrap().status(), 503);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = accepted.load(Ordering::SeqCst);
    let version = outage.0.clone();
    assert!(tokio::task::spawn_blocking(move || cluster(&version, "start")).await.unwrap(), "pg_ctlcluster start failed");
    drop(outage);

    traffic.await.unwrap();
    assert!(during < total_messages, "the outage was mid-run");
    assert!(REFUSED.load(Ordering::SeqCst) > 0, "webhooks met the outage and were retried");
    assert_each_reply_once_in_order(&evolution, &expected, Duration::from_secs(90)).await;
    for url in [&a.url, &b.url] {
        assert_eq!(http.get(format!("{url}/readyz")).send().await.unwrap().status(), 200, "{url} recovered by itself");
    }
}
