//! The processor: turns inbox entries into committed turns, one contact at a
//! time and in the customer's order; and the sweeper that expires sessions
//! nobody writes to any more.
//!
//! Per-contact order within this process: a contact is handled by at most one
//! task at a time (the `running` map); a wake-up for a contact already
//! running marks it dirty so the task looks again before it stops. Across
//! processes sharing a PostgreSQL store, the store's contact lease does the
//! same (`next_pending` answers nothing while another process holds the
//! contact) and `release_contact` closes the gap when the holder stops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_engine::engine::{ContactState, Inbound};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::queue::{InboxKind, Pending, Queue};
use switchyard_engine::service::Conversations;
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::{SystemClock, Timestamp};
use switchyard_store::holds::Echo;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::AppState;

type Key = (InstanceId, Contact);

/// Contacts processed at once. More turns in flight make larger batches
/// for the stores' writers and PostgreSQL's batched reads: at 1 000
/// customers on PostgreSQL, 256 did +9% (1 node) and up to +12% (2 nodes)
/// over 64 (BENCHMARKS, tenth session). Each still takes one entry per
/// permit. It also bounds the model calls in flight, one per free-text turn.
const CONCURRENCY: usize = 256;
/// How often the retention purge runs at most (when RETENTION is set, and
/// not more often than the retention period itself): it scans by age, so
/// not at every sweep.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);
/// How long a `fromMe` message waits for a send in flight to the same
/// contact to report its id before it is taken for a person's.
const ECHO_WAIT: Duration = Duration::from_secs(30);
/// How often the inbox is scanned for work nobody woke us for (after a restart).
const POLL: Duration = Duration::from_millis(500);

pub async fn run(state: AppState, mut wake: mpsc::UnboundedReceiver<Key>, mut stop: watch::Receiver<bool>) {
    let running: Arc<Mutex<HashMap<Key, bool>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
    let mut poll = tokio::time::interval(POLL);
    loop {
        let keys: Vec<Key> = tokio::select! {
            Some(key) = wake.recv() => {
                let mut keys = vec![key];
                while let Ok(key) = wake.try_recv() {
                    keys.push(key);
                }
                keys
            }
            _ = poll.tick() => match state.store().pending_contacts(1024).await {
                Ok(keys) => keys,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot scan the inbox; retrying");
                    Vec::new()
                }
            },
            _ = super::stopped(&mut stop) => break,
        };
        for key in keys {
            {
                let mut running = running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(dirty) = running.get_mut(&key) {
                    *dirty = true;
                    continue;
                }
                running.insert(key.clone(), false);
            }
            let state = state.clone();
            let running = Arc::clone(&running);
            let permits = Arc::clone(&permits);
            tasks.spawn(async move {
                loop {
                    // One entry per permit: a contact that keeps writing goes
                    // back in line after each turn, so a burst of new
                    // contacts is not starved by conversations in full swing.
                    let Ok(permit) = Arc::clone(&permits).acquire_owned().await else { return };
                    let drained = drain_one(&state, &key).await;
                    drop(permit);
                    match drained {
                        Drained::Processed { more: true } => continue,
                        // The read that found this entry saw nothing behind
                        // it: unless a wake-up came meanwhile (dirty, below),
                        // the contact is done without reading again.
                        Drained::Processed { more: false } => {}
                        Drained::Later(wait) => {
                            // Debouncing: wait without a permit, then look again.
                            let mut stop = state.inner.stopping.clone();
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = super::stopped(&mut stop) => {}
                            }
                            continue;
                        }
                        Drained::Idle => {}
                    }
                    let mut running = running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    match running.get_mut(&key) {
                        Some(dirty) if *dirty => *dirty = false,
                        _ => {
                            running.remove(&key);
                            break;
                        }
                    }
                }
            });
        }
        while tasks.try_join_next().is_some() {}
    }
    // Finish the turns in flight; unstarted work stays in the inbox.
    while tasks.join_next().await.is_some() {}
}

/// What one look at a contact's inbox did.
enum Drained {
    /// A turn was committed. `more`: the read that found its entry saw
    /// another behind it (or could not tell), so look again; without it an
    /// entry that arrived since has woken the contact (dirty).
    Processed { more: bool },
    /// The contact is inside its debounce window: look again after this long.
    Later(Duration),
    /// Nothing left (or the process is stopping).
    Idle,
}

/// Processes the contact's oldest pending entry.
async fn drain_one(state: &AppState, key: &Key) -> Drained {
    let mut backoff = Duration::from_millis(50);
    let mut conflicts = 0u32;
    loop {
        if *state.inner.stopping.borrow() {
            // Shutting down: give the contact up now rather than make other
            // processes wait for the lease to lapse.
            let _ = state.store().release_contact(&key.0, &key.1).await;
            return Drained::Idle;
        }
        // The contact's state comes with the entry (one round trip less);
        // only an in-memory SQLite leaves it to `process_entry`.
        let (pending, known, more) = match state.store().next_pending_and_more(&key.0, &key.1).await {
            Ok((Some((pending, known)), more)) => (pending, known, more),
            // Nothing left (or another process holds the contact): give the
            // contact up, and look again if entries arrived through another
            // process meanwhile that nobody is working on.
            Ok((None, _)) => match state.store().release_contact(&key.0, &key.1).await {
                Ok(true) => continue,
                Ok(false) => return Drained::Idle,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot release a contact; its lease will lapse");
                    return Drained::Idle;
                }
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the inbox; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        // Debounce hook (issue #9, see debounce.rs): with a window for the
        // instance, wait until the contact is quiet and merge the burst
        // into this entry. Without one, `pending` comes back unchanged.
        let pending = match super::debounce::gather(state, pending).await {
            Ok(super::debounce::Gathered::Ready(gathered)) => gathered,
            Ok(super::debounce::Gathered::Later(wait)) => return Drained::Later(wait),
            Err(StoreError::Conflict(_)) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "cannot merge a burst; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        match process(state, &pending, known).await {
            Ok(told) => {
                state.inner.wake_sender.notify_one();
                return Drained::Processed { more: told.unwrap_or(more) };
            }
            // Someone else moved this contact on: read again and redo the turn
            // (after a few in a row, slow down rather than spin).
            Err(StoreError::Conflict(_)) => {
                conflicts += 1;
                if conflicts > 4 {
                    tokio::time::sleep(Duration::from_millis(10) * conflicts.min(100)).await;
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, seq = pending.seq, "turn not committed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Runs the entry's turn; `Some(more)` when its commit told whether the
/// contact has more waiting (better than the read that found the entry:
/// PostgreSQL gives the lease up with the turn when nothing does).
async fn process(state: &AppState, pending: &Pending, known: Option<ContactState>) -> Result<Option<bool>, StoreError> {
    let started = std::time::Instant::now();
    // The request id is the inbound message's id: the webhook, this turn and
    // its sends all log it.
    let span = tracing::info_span!("turn", request_id = %pending.entry.message_id);
    let result = tracing::Instrument::instrument(process_entry(state, pending, known), span).await;
    if result.is_ok() {
        state.inner.metrics.processing.observe(started.elapsed());
    }
    result
}

async fn process_entry(state: &AppState, pending: &Pending, known: Option<ContactState>) -> Result<Option<bool>, StoreError> {
    let entry = &pending.entry;
    let contact_state = match known {
        Some(known) => known,
        None => state.store().contact_state(&entry.instance, &entry.contact).await?,
    };
    let now = Timestamp::now_utc();
    let turn = match &entry.kind {
        InboxKind::Customer(content) => {
            // A voice note Evolution did not transcribe: transcribe it now
            // (TRANSCRIBE=on), or leave it for the type-please answer.
            let mut content = content.clone();
            if matches!(content, switchyard_engine::engine::Content::Audio { transcript: None }) && state.config().media.transcriber.is_some() {
                let transcript = super::media::transcribe(
                    &state.inner.client,
                    &state.config().media,
                    &state.inner.transcriptions,
                    entry.instance.as_str(),
                    &entry.message_id,
                )
                .await;
                content = switchyard_engine::engine::Content::Audio { transcript };
            }
            let content = &content;
            // Masked on the way out like every log line (crate::logs).
            if let switchyard_engine::engine::Content::Text(text) = content {
                tracing::debug!(contact = %entry.contact.masked(), %text, "customer wrote");
            }
            let inbound = Inbound { instance: entry.instance.clone(), contact: entry.contact.clone(), content: content.clone() };
            let model = state.config().model.as_deref().map(|llm| llm as &dyn switchyard_engine::classify::Model);
            let outside = state.config().caller.as_deref().map(|caller| caller as &dyn switchyard_engine::classify::Outside);
            switchyard_engine::service::run_turn_with(state.engine(), model, outside, contact_state, &inbound, now).await
        }
        InboxKind::Operator => {
            // Evolution echoes our own sends back as `fromMe` and
            // `send.message` (evolution-api #1340): only a message that is
            // none of our replies is a person taking over.
            match state.store().echo_of(&entry.instance, &entry.contact, &entry.message_id).await? {
                Echo::Ours => {
                    tracing::debug!(contact = %entry.contact.masked(), "echo of our own send: not a takeover");
                    return state.store().skip_inbox(pending).await.map(|()| None);
                }
                // A send to the contact is in flight: its id is not known
                // yet. Look again shortly (a conflict retries the entry);
                // after ECHO_WAIT a person is assumed.
                Echo::Unknown if now.millis_since(entry.received_at) < ECHO_WAIT.as_millis() as i64 => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Err(StoreError::Conflict("a send to this contact is in flight".to_owned()));
                }
                Echo::Unknown | Echo::Theirs => state.engine().takeover(contact_state, &entry.instance, &entry.contact, now),
            }
        }
    };
    let mut turn = turn;
    let operator = matches!(entry.kind, InboxKind::Operator);
    let hold = super::desk::hold_of(state, &mut turn, operator, now);
    turn.replies = super::media::split_long(std::mem::take(&mut turn.replies), state.config().media.typing);
    for session in turn.ended() {
        tracing::info!(
            instance = %entry.instance,
            contact = %entry.contact.masked(),
            flow = %session.flow(),
            version = %session.version(),
            step = %session.step(),
            outcome = ?session.outcome(),
            "session ended"
        );
    }
    let more = match &hold {
        Some(hold) => {
            // Boxed: rare, and a sizeable future (see `Db`'s dispatch).
            Box::pin(state.store().commit_inbound_holding(&turn, pending, &entry.reply_to, hold)).await?;
            tracing::info!(instance = %entry.instance, contact = %entry.contact.masked(), cause = hold.cause.as_str(), "contact on hold");
            if hold.desk.is_some() {
                state.inner.wake_desk.notify_one();
            }
            None
        }
        None => state.store().commit_inbound_and_more(&turn, pending, &entry.reply_to).await?,
    };
    let live = turn.live();
    tracing::info!(
        instance = %entry.instance,
        contact = %entry.contact.masked(),
        replies = turn.replies.len(),
        silenced = turn.silenced,
        flow = live.map(|session| session.flow().as_str()),
        step = live.map(|session| session.step().as_str()),
        "turn committed"
    );
    Ok(more)
}

/// Expires sessions past their TTL every `SWEEP_INTERVAL`: a drop-off at
/// their step even when the customer never writes again.
pub async fn sweep(state: AppState, mut stop: watch::Receiver<bool>) {
    let conversations = Conversations::new(std::sync::Arc::clone(state.engine()), std::sync::Arc::clone(state.store()), SystemClock);
    let mut tick = tokio::time::interval(state.config().sweep_interval);
    let mut last_purge: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = super::stopped(&mut stop) => return,
        }
        if let Some(retention) = state.config().retention
            && last_purge.is_none_or(|at| at.elapsed() >= RETENTION_INTERVAL.min(retention))
        {
            last_purge = Some(std::time::Instant::now());
            purge(&state, retention).await;
        }
        match conversations.sweep(500).await {
            Ok(turns) if !turns.is_empty() => tracing::info!(expired = turns.len(), "sessions expired"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "expiry sweep failed; will retry"),
        }
    }
}

/// The retention purge (RETENTION): texts and session data older than the
/// period are cleared, counts kept (`Db::purge_before`).
async fn purge(state: &AppState, retention: Duration) {
    match state.store().purge_before(Timestamp::now_utc().minus(retention)).await {
        Ok(purge) if !purge.is_empty() => tracing::info!(
            inbox_texts = purge.inbox_texts,
            outbox_texts = purge.outbox_texts,
            session_data = purge.session_data,
            event_details = purge.event_details,
            "retention purge"
        ),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "retention purge failed; will retry"),
    }
}
