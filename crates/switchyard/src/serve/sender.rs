//! The outbox sender: delivers replies through Evolution's sendText, each
//! contact's oldest unsent reply first (so order holds through retries),
//! throttled per instance.
//!
//! - success: marked sent with Evolution's message id;
//! - timeout, connection error, 5xx: retried with exponential backoff
//!   (0.5 s doubling up to 60 s), for as long as it takes;
//! - 400 and other 4xx (number not on WhatsApp ...): never retried, recorded
//!   as an `undeliverable` event, and the contact's next reply goes on;
//! - 401/403 (wrong apikey): logged loudly and retried slowly, since only a
//!   configuration change can fix it and nothing must be lost meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_engine::ids::InstanceId;
use switchyard_engine::queue::{Outgoing, Queue};
use switchyard_engine::time::Timestamp;
use switchyard_evolution::client::SendError;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::AppState;

const BATCH: u32 = 256;
const IDLE_POLL: Duration = Duration::from_millis(200);

fn backoff(attempts: u32) -> Duration {
    let millis = 500u64.saturating_mul(1u64 << attempts.min(10));
    Duration::from_millis(millis.min(60_000))
}

/// Per-instance spacing of sends.
#[derive(Default)]
struct Throttle {
    next_free: Mutex<HashMap<InstanceId, Instant>>,
}

impl Throttle {
    async fn wait(&self, instance: &InstanceId, interval: Option<Duration>) {
        let Some(interval) = interval else { return };
        let slot = {
            let mut next_free = self.next_free.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            let slot = next_free.get(instance).copied().filter(|at| *at > now).unwrap_or(now);
            next_free.insert(instance.clone(), slot + interval);
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let throttle = Arc::new(Throttle::default());
    loop {
        if *stop.borrow() {
            return;
        }
        let due = match state.store().due_outbox(Timestamp::now_utc(), BATCH).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the outbox; retrying");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = state.inner.wake_sender.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = super::stopped(&mut stop) => return,
            }
            continue;
        }
        // One reply per contact per batch; all sends of the batch finish
        // before the next read, so a contact's next reply never overtakes.
        let mut sends = JoinSet::new();
        for outgoing in due {
            let state = state.clone();
            let throttle = Arc::clone(&throttle);
            sends.spawn(async move { deliver(&state, &throttle, outgoing).await });
        }
        while sends.join_next().await.is_some() {}
    }
}

async fn deliver(state: &AppState, throttle: &Throttle, outgoing: Outgoing) {
    throttle.wait(&outgoing.instance, state.config().send_interval).await;
    let started = std::time::Instant::now();
    let result = state.inner.client.send_text(outgoing.instance.as_str(), &outgoing.reply_to, &outgoing.text).await;
    state.inner.metrics.send.observe(started.elapsed());
    let now = Timestamp::now_utc();
    let recorded = match result {
        Ok(sent) => {
            let recorded = state.store().outbox_sent(outgoing.seq, sent.message_id.as_deref(), now).await;
            if tracing::enabled!(tracing::Level::INFO) {
                let request_id = state.store().request_of_outbox(outgoing.seq).await.ok().flatten().unwrap_or_else(|| "-".to_owned());
                tracing::info!(%request_id, instance = %outgoing.instance, contact = %outgoing.contact.masked(), seq = outgoing.seq, "reply sent");
            }
            recorded
        }
        Err(SendError::Retryable(reason)) => {
            let wait = backoff(outgoing.attempts);
            tracing::warn!(instance = %outgoing.instance, contact = %outgoing.contact.masked(), attempts = outgoing.attempts + 1, retry_in_ms = wait.as_millis() as u64, %reason, "send failed; will retry");
            state.store().outbox_retry(outgoing.seq, now.plus(wait), &reason).await
        }
        Err(SendError::Rejected { status, reason }) => {
            tracing::warn!(instance = %outgoing.instance, contact = %outgoing.contact.masked(), status, %reason, "reply undeliverable; not retried");
            state.store().outbox_failed(outgoing.seq, &format!("{status}: {reason}"), now).await
        }
        Err(SendError::Unauthorized(reason)) => {
            tracing::error!(instance = %outgoing.instance, %reason, "Evolution refused our apikey: check EVOLUTION_API_KEY / EVOLUTION_INSTANCE_KEYS");
            state.store().outbox_retry(outgoing.seq, now.plus(Duration::from_secs(60)), &reason).await
        }
    };
    if let Err(err) = recorded {
        // The send happened (or not) but its record did not land: the row is
        // still unsent and will be tried again. Evolution has no idempotency
        // key, so this is the one place a duplicate could arise; it needs the
        // store to fail right after a successful send.
        tracing::error!(error = %err, seq = outgoing.seq, "could not record a send result");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_a_minute() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_millis(1000));
        assert_eq!(backoff(3), Duration::from_millis(4000));
        assert_eq!(backoff(7), Duration::from_secs(60));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }
}
