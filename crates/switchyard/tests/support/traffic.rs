//! Conversation traffic for tests with real `serve` processes: contacts
//! walking scripted conversations, webhooks spread over several processes as
//! a load balancer would, and the check that each contact got exactly the
//! replies one process alone would have sent, once each, in order.

#![allow(dead_code)] // reason: each test file uses a different part of the support module

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::engine::{Content, Inbound};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::time::Timestamp;

use super::{upsert, StandIn};


/// Conversations that wander through menus, questions, flows and handovers.
const SCRIPTS: [&[&str]; 3] = [
    &["oi", "1", "quero renovar", "não sei"],
    &["Qual é o horário de atendimento de vocês?", "sim", "oi", "1"],
    &["oi, bom dia, eu queria a segunda via do boleto", "529.982.247-25", "1", "obrigado"],
];

pub fn number(contact: usize) -> String {
    format!("55119{:08}", 70_000_000 + contact)
}

pub fn script(contact: usize) -> &'static [&'static str] {
    SCRIPTS[contact % SCRIPTS.len()]
}

/// What one process alone answers to `contact`'s script: the reference.
pub fn expected_replies(contact: usize) -> Vec<String> {
    let engine = super::engine();
    let store = MemoryStore::new();
    let instance = InstanceId::parse("loja-bot").unwrap();
    let who = Contact::parse(&number(contact)).unwrap();
    let mut replies = Vec::new();
    for line in script(contact) {
        let inbound = Inbound { instance: instance.clone(), contact: who.clone(), content: Content::Text((*line).to_owned()) };
        let turn = engine.turn(store.contact_state_now(&instance, &who), &inbound, Timestamp::now_utc());
        store.commit_now(&turn).unwrap();
        replies.extend(turn.replies.iter().map(|reply| reply.text.to_string()));
    }
    replies
}

/// A small xorshift so the spread is random but reproducible from the seed
/// printed by a failing run.
pub struct Spread(pub AtomicU64);

impl Spread {
    fn pick(&self, of: usize) -> usize {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::Relaxed);
        (x % of as u64) as usize
    }
}

/// Webhook attempts refused (5xx or no connection) before one was accepted.
pub static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// Posts one webhook as a load balancer in front of Evolution would: to a
/// random process, and on a refused connection or a 5xx to the next one,
/// until one accepts it (Evolution retries too).
pub async fn deliver(http: &reqwest::Client, urls: &[String], spread: &Spread, body: &serde_json::Value) {
    let mut target = spread.pick(urls.len());
    for attempt in 0..600 {
        let response = http.post(format!("{}/webhooks/evolution", urls[target])).json(body).send().await;
        match response {
            Ok(response) if response.status() == 200 => return,
            Ok(response) => assert!(response.status().is_server_error(), "a valid webhook was refused: {}", response.status()),
            Err(_) => {}
        }
        REFUSED.fetch_add(1, Ordering::SeqCst);
        target = (target + 1) % urls.len();
        if attempt % urls.len() == urls.len() - 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("no process accepted {body}");
}

/// Sends every contact's script, each contact's messages one after another
/// (as one phone sends them, `pause` apart), contacts concurrently.
/// `accepted` counts webhooks taken.
pub async fn run_contacts(contacts: usize, urls: Arc<Vec<String>>, spread: Arc<Spread>, accepted: Arc<AtomicUsize>, pause: Duration) {
    let http = super::http();
    let mut tasks = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(if pause.is_zero() { 40 } else { contacts }));
    for contact in 0..contacts {
        let (http, urls, spread, accepted, permits) = (http.clone(), urls.clone(), spread.clone(), accepted.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            // Paced contacts start staggered, so webhooks arrive steadily.
            tokio::time::sleep(pause.mul_f64(contact as f64 / contacts as f64)).await;
            for (idx, line) in script(contact).iter().enumerate() {
                let body = upsert(&format!("MN-{contact}-{idx}"), &number(contact), line, 1_795_000_000 + idx as i64);
                deliver(&http, &urls, &spread, &body).await;
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(pause).await;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("a contact's task panicked");
    }
}

/// Waits (up to `limit`) until every inbox entry on `db` (PostgreSQL) is
/// processed and every reply is recorded as sent or failed, then checks
/// every contact's replies against the reference. The stand-in records a
/// send before answering it, and a reply recorded as sent is never sent
/// again, so once the outbox is settled no further send can come: a
/// duplicate would already be in the record.
pub async fn assert_each_reply_once_in_order(evolution: &StandIn, db: &str, expected: &[Vec<String>], limit: Duration) {
    let total: usize = expected.iter().map(Vec::len).sum();
    let pool = sqlx::PgPool::connect(db).await.unwrap();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let unsettled: Result<i64, _> = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL) + \
                    (SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL)",
        )
        .fetch_one(&pool)
        .await;
        if (unsettled.is_ok_and(|count| count == 0) && evolution.sent().len() >= total) || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.close().await;
    let sent = evolution.sent();
    let mut problems = Vec::new();
    for (contact, wanted) in expected.iter().enumerate() {
        let got: Vec<String> = sent.iter().filter(|s| s.number == number(contact)).map(|s| s.text.clone()).collect();
        if &got != wanted {
            problems.push(format!("contact {contact}: expected {} replies, got {}: {got:?} vs {wanted:?}", wanted.len(), got.len()));
        }
    }
    assert!(problems.is_empty(), "{} of {} conversations wrong (sent {} of {total}):\n{}", problems.len(), expected.len(), sent.len(), problems.join("\n"));
    assert_eq!(sent.len(), total);
}

pub fn seed() -> u64 {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("spread seed: {seed}");
    seed
}

