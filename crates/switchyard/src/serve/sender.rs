//! The outbox sender: delivers replies through Evolution's sendText, each
//! contact's oldest unsent reply first (so order holds through retries),
//! throttled per instance.
//!
//! At most `SEND_CONCURRENCY` sends are in flight per instance. Each attempt
//! is recorded before its request goes out (`outbox_attempt`; without a
//! throttle, a batch's first attempts together in one write, on PostgreSQL
//! in the claim itself, on SQLite in the commit of the turn that queued the
//! reply), so a process that stops mid-send leaves the reply marked as
//! maybe sent. On SQLite the sent marks are written in the background, so
//! no write stands between a turn's commit and its sends. Outcomes:
//! - success: marked sent with Evolution's message id;
//! - no answer (timeout, connection dropped after the request was written):
//!   the reply is *unsure*. It is not sent again blindly: after at least one
//!   `SEND_TIMEOUT` (Evolution may still be working on it) the sender asks
//!   Evolution whether the text is among the chat's own messages since the
//!   first unsure attempt (`find_sent`), marks it sent if so, and sends it
//!   only if not. A reply taken over from a process that died mid-send is
//!   unsure the same way, checked once that attempt had time to settle;
//! - connection refused, 5xx, 429: retried with exponential backoff
//!   (0.5 s doubling up to 60 s), for as long as it takes;
//! - 400 and other 4xx (number not on WhatsApp ...): never retried, recorded
//!   as an `undeliverable` event, and the contact's next reply goes on;
//! - 401/403 (wrong apikey): logged loudly and retried slowly, since only a
//!   configuration change can fix it and nothing must be lost meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::queue::{Outgoing, Queue};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_evolution::client::{SendError, Sent};
use switchyard_engine::media::{FileKind, Rich};
use switchyard_evolution::media::{Choice, MAX_LIST_ROWS, OutgoingMedia};
use switchyard_evolution::stored::SentQuery;
use switchyard_evolution::webhook::MediaKind;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::AppState;

mod ledger;

use ledger::{lock, mark_holds, Ledger, Mark, SharedLedger, UnsettleOnDrop};

const BATCH: u32 = 256;
const IDLE_POLL: Duration = Duration::from_millis(200);

fn backoff(attempts: u32) -> Duration {
    let millis = 500u64.saturating_mul(1u64 << attempts.min(10));
    Duration::from_millis(millis.min(60_000))
}

/// Replies read (and, on PostgreSQL, claimed) at once: as many as the
/// throttle lets out in half a claim's lifetime, so no claim lapses while
/// its reply waits its turn (the other half is for the send itself, whose
/// timeout `config` keeps within it). When a slow Evolution keeps replies
/// waiting for a send slot longer, a lapsed claim another process took is
/// not sent here: its `outbox_attempt` is refused.
fn batch_size(interval: Option<Duration>) -> u32 {
    let Some(interval) = interval.filter(|interval| !interval.is_zero()) else { return BATCH };
    let fits = (switchyard_store::postgres::CLAIM / 2).as_millis() / interval.as_millis().max(1);
    u32::try_from(fits).unwrap_or(BATCH).clamp(1, BATCH)
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

/// At most `SEND_CONCURRENCY` sends in flight per instance: a burst must not
/// open hundreds of requests against one Evolution (its listen backlog
/// overflows and answers get lost, which makes sends unsure).
struct Gates {
    limit: usize,
    per_instance: Mutex<HashMap<InstanceId, Arc<Semaphore>>>,
}

impl Gates {
    fn new(limit: usize) -> Gates {
        Gates { limit: limit.max(1), per_instance: Mutex::default() }
    }

    async fn enter(&self, instance: &InstanceId) -> Option<OwnedSemaphorePermit> {
        let gate = {
            let mut gates = self.per_instance.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(gates.entry(instance.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.limit))))
        };
        gate.acquire_owned().await.ok()
    }
}

pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let throttle = Arc::new(Throttle::default());
    let gates = Arc::new(Gates::new(state.config().send_concurrency));
    // On SQLite without a throttle, the turns' commits record their
    // replies' first attempts for this sender (`attempt_at_commit`), so
    // nothing is written between a turn's commit and its sends; and the
    // sent marks are written in the background (`marks`), so the next
    // round need not wait for them.
    let token = attempts_at_commit(&state);
    let ledger = Arc::new(Mutex::new(Ledger { token, ..Ledger::default() }));
    let mut marks: JoinSet<()> = JoinSet::new();
    loop {
        if *stop.borrow() {
            finish(&state, token, &ledger, &mut marks).await;
            return;
        }
        // No mark of this round is older than the read (on PostgreSQL the
        // claim's lifetime counts from the read's clock).
        let (marked_at, began) = (Instant::now(), Timestamp::now_utc());
        // Taken before the read: a sent mark that lands between the read
        // and this sift must still hide its reply, which the read saw unsent.
        let landing = lock(&ledger).marking.clone();
        let (mut due, mut on_record) = match read_due(&state, token).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the outbox; retrying");
                (Vec::new(), Vec::new())
            }
        };
        lock(&ledger).sift(&landing, &mut due, &mut on_record);
        if due.is_empty() {
            tokio::select! {
                _ = state.inner.wake_sender.notified() => {}
                // A landed sent mark may uncover replies queued behind it
                // (a contact's run is read from its oldest unsent reply).
                Some(_) = marks.join_next(), if !marks.is_empty() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = super::stopped(&mut stop) => {}
            }
            continue;
        }
        let Some(runs) = mark_attempts(&state, due, on_record, marked_at).await else {
            // The reply stays due: do not spin on a store that refuses writes.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        // One run per contact per batch (its due replies in order, each
        // sent after the one before it was delivered); all sends of the
        // batch finish before the next read, so a contact's next reply
        // never overtakes.
        let mut sends = JoinSet::new();
        for run in runs {
            let (state, ledger) = (state.clone(), Arc::clone(&ledger));
            let (throttle, gates) = (Arc::clone(&throttle), Arc::clone(&gates));
            sends.spawn(async move { deliver_run(&state, &throttle, &gates, &ledger, run, began).await });
        }
        let (mut delivered, mut untried) = (Vec::new(), Vec::new());
        while let Some(joined) = sends.join_next().await {
            match joined {
                Ok((done, left)) => {
                    delivered.extend(done);
                    untried.extend(left);
                }
                // Its guard left the run's replies unsettled.
                Err(err) => tracing::error!(error = %err, "a send task failed; its replies will be checked before sending"),
            }
        }
        if matches!(state.store().as_ref(), switchyard_store::Db::Sqlite(_)) {
            while marks.try_join_next().is_some() {}
            record_later(&state, &ledger, &mut marks, delivered, began);
        } else {
            record_sent(&state, &ledger, &delivered, began).await;
        }
        if !untried.is_empty() {
            unmark(&state, &untried).await;
        }
    }
}

/// A token for this sender's attempts recorded at commit, when the store
/// takes them (SQLite on a file, no throttle: a throttled send records its
/// attempt just before its request).
fn attempts_at_commit(state: &AppState) -> Option<i64> {
    let switchyard_store::Db::Sqlite(store) = state.store().as_ref() else { return None };
    if state.config().send_interval.is_some() {
        return None;
    }
    // The low half of a v7 UUID is random; never 0 (which means none).
    let token = uuid::Uuid::now_v7().as_u64_pair().1 as i64 | 1;
    store.attempt_at_commit(token).then_some(token)
}

/// Before the sender stops: later turns queue their replies unattempted,
/// the sent marks on their way land, and the attempts recorded at commit
/// for replies never requested are taken back, so the next process sends
/// those at once instead of checking each with Evolution first. (A turn
/// whose commit was already under way may still land with its attempts:
/// the next process checks those, it never sends them twice.)
async fn finish(state: &AppState, token: Option<i64>, ledger: &SharedLedger, marks: &mut JoinSet<()>) {
    let store = match state.store().as_ref() {
        switchyard_store::Db::Sqlite(store) => Some(store),
        _ => None,
    };
    if let Some(store) = store {
        store.stop_attempts_at_commit();
    }
    while marks.join_next().await.is_some() {}
    let (Some(store), Some(token)) = (store, token) else { return };
    // Requested, outcome not on record: theirs to settle, not to take back
    // (`marking` is empty here unless a mark's task failed).
    let keep: Vec<i64> = {
        let ledger = lock(ledger);
        ledger.unsettled.keys().chain(&ledger.marking).copied().collect()
    };
    match store.take_back_commit_attempts(token, &keep).await {
        Ok(0) => {}
        Ok(taken) => tracing::info!(replies = taken, "replies left unsent at stop; the next start sends them"),
        Err(err) => tracing::warn!(error = %err, "cannot take back the attempts of unsent replies; the next start checks them with Evolution before sending"),
    }
}

/// The due replies: on SQLite each contact's run (its due head and the
/// never-requested replies queued behind it, `due_runs`), elsewhere each
/// contact's head (`due_outbox`, which on PostgreSQL also claims it).
/// With them, the seqs whose first attempt is on record already: recorded
/// at their turn's commit for `token` (SQLite), or by the claim itself
/// (PostgreSQL without a throttle, `claim_due`).
async fn read_due(state: &AppState, token: Option<i64>) -> Result<(Vec<Outgoing>, Vec<i64>), StoreError> {
    let (now, limit) = (Timestamp::now_utc(), batch_size(state.config().send_interval));
    match state.store().as_ref() {
        switchyard_store::Db::Sqlite(store) => store.due_runs(now, limit, token.unwrap_or(0)).await,
        switchyard_store::Db::Postgres(store) if state.config().send_interval.is_none() => {
            let due = store.claim_due(now, limit, true).await?;
            let marked = due.iter().filter(|outgoing| outgoing.unsure_since.is_none()).map(|outgoing| outgoing.seq).collect();
            Ok((due, marked))
        }
        _ => Ok((state.store().due_outbox(now, limit).await?, Vec::new())),
    }
}

/// Delivers a contact's run in order, stopping at the first reply not
/// delivered (its failure is recorded and it stays the contact's head).
/// Returns the delivered replies, and the later ones whose attempt was
/// marked but whose request never went out.
async fn deliver_run(
    state: &AppState,
    throttle: &Throttle,
    gates: &Gates,
    ledger: &SharedLedger,
    run: Vec<(Outgoing, Option<Mark>)>,
    began: Timestamp,
) -> (Vec<(Outgoing, Sent)>, Vec<i64>) {
    // Should the task fail midway, what it delivered is not known: its
    // replies are then checked with Evolution before any goes out again.
    let mut guard = UnsettleOnDrop { ledger: Arc::clone(ledger), seqs: run.iter().map(|(outgoing, _)| outgoing.seq).collect(), began };
    let mut delivered = Vec::with_capacity(run.len());
    let mut replies = run.into_iter();
    for (outgoing, marked) in replies.by_ref() {
        match deliver(state, throttle, gates, ledger, outgoing, marked).await {
            Some(done) => delivered.push(done),
            None => break,
        }
    }
    guard.seqs.clear();
    (delivered, replies.filter(|(_, marked)| marked.is_some()).map(|(outgoing, _)| outgoing.seq).collect())
}

/// Takes back the attempt marks of replies never requested, so they are
/// plain due replies again. If this write is lost they read as unsure
/// later: checked with Evolution before being sent, never sent twice.
async fn unmark(state: &AppState, seqs: &[i64]) {
    if let switchyard_store::Db::Sqlite(store) = state.store().as_ref()
        && let Err(err) = store.outbox_unattempt_many(seqs).await
    {
        tracing::warn!(error = %err, replies = seqs.len(), "cannot take back unused send attempts; they will be checked before sending");
    }
}

/// Without a throttle every first attempt of the batch goes out at once
/// (within `SEND_CONCURRENCY`), so those attempts are recorded together, in
/// one write, before any of their requests: one commit per batch instead of
/// one per reply; none for those `on_record` already (`read_due`). Each
/// comes back with whether its attempt is on record; a reply the store
/// refused (sent, failed, or on PostgreSQL claimed by another process
/// meanwhile) is dropped, and with it the rest of its contact's run (their
/// marks are taken back). Throttled instances and unsure replies record
/// their attempt just before their request (`send`). The batch comes back
/// as runs, one per contact in the order read. `None`: the store refused
/// the write, and nothing is sent.
async fn mark_attempts(state: &AppState, due: Vec<Outgoing>, mut on_record: Vec<i64>, read: Instant) -> Option<Vec<Vec<(Outgoing, Option<Mark>)>>> {
    let throttled = state.config().send_interval.is_some();
    on_record.sort_unstable();
    let first: Vec<i64> = if throttled {
        Vec::new()
    } else {
        due.iter()
            .filter(|outgoing| outgoing.unsure_since.is_none() && on_record.binary_search(&outgoing.seq).is_err())
            .map(|outgoing| outgoing.seq)
            .collect()
    };
    let now = Timestamp::now_utc();
    let written = if first.is_empty() { Ok(Vec::new()) } else { state.store().outbox_attempt_many(&first, now).await };
    let marked = match written {
        Ok(mut marked) => {
            marked.sort_unstable();
            marked
        }
        Err(err) => {
            // Unrecorded, the attempts could repeat unnoticed after a crash.
            tracing::warn!(error = %err, replies = first.len(), "cannot record send attempts; not sending yet");
            return None;
        }
    };
    let mut runs: Vec<Vec<(Outgoing, Option<Mark>)>> = Vec::new();
    let mut refused = Vec::new();
    let (mut current, mut cut): (Option<(InstanceId, Contact)>, bool) = (None, false);
    for outgoing in due {
        if current.as_ref().is_none_or(|(instance, contact)| *instance != outgoing.instance || *contact != outgoing.contact) {
            current = Some((outgoing.instance.clone(), outgoing.contact.clone()));
            runs.push(Vec::new());
            cut = false;
        }
        // Marked now, or before the read (at its turn's commit, whose time
        // it carries, or by the claim).
        let mark = if marked.binary_search(&outgoing.seq).is_ok() {
            Some(Mark { read, at: now })
        } else if on_record.binary_search(&outgoing.seq).is_ok() {
            Some(Mark { read, at: outgoing.attempted_at.unwrap_or(now) })
        } else {
            None
        };
        let on_record = mark.is_some();
        // Not refused: throttled (marked when sent), unsure (likewise), or marked.
        let ok = throttled || outgoing.unsure_since.is_some() || on_record;
        cut |= !ok;
        if cut {
            if on_record {
                refused.push(outgoing.seq);
            }
            continue;
        }
        if let Some(run) = runs.last_mut() {
            run.push((outgoing, mark));
        }
    }
    if !refused.is_empty() {
        unmark(state, &refused).await;
    }
    runs.retain(|run| !run.is_empty());
    Some(runs)
}

/// Marks the batch's delivered replies sent, in one write; `false` when
/// that write gave up (the replies are then unsettled since `began`, their
/// round's read, see [`Ledger`]).
async fn record_sent(state: &AppState, ledger: &SharedLedger, delivered: &[(Outgoing, Sent)], began: Timestamp) -> bool {
    let Some((first, _)) = delivered.first() else { return true };
    let now = Timestamp::now_utc();
    let marks: Vec<(i64, Option<String>)> = delivered.iter().map(|(outgoing, sent)| (outgoing.seq, sent.message_id.clone())).collect();
    let landed = persist(state, first.seq, || state.store().outbox_sent_many(&marks, now)).await;
    let mut ledger = lock(ledger);
    for (outgoing, _) in delivered {
        ledger.marking.remove(&outgoing.seq);
        ledger.settle(outgoing.seq, landed, began);
    }
    drop(ledger);
    if landed {
        log_sent(delivered);
    }
    landed
}

/// [`record_sent`] in the background: the replies are `marking` until it
/// lands, so the next rounds neither wait for it nor send them again.
fn record_later(state: &AppState, ledger: &SharedLedger, marks: &mut JoinSet<()>, delivered: Vec<(Outgoing, Sent)>, began: Timestamp) {
    if delivered.is_empty() {
        return;
    }
    let seqs: Vec<i64> = delivered.iter().map(|(outgoing, _)| outgoing.seq).collect();
    lock(ledger).marking.extend(&seqs);
    let (state, ledger) = (state.clone(), Arc::clone(ledger));
    marks.spawn(async move {
        // Should the task fail before `record_sent` settles the ledger, its
        // replies are unsettled, not hidden for good.
        let mut guard = UnsettleOnDrop { ledger: Arc::clone(&ledger), seqs, began };
        record_sent(&state, &ledger, &delivered, began).await;
        // Settled: the guard has nothing left to do.
        guard.seqs.clear();
    });
}

fn log_sent(delivered: &[(Outgoing, Sent)]) {
    for (outgoing, _) in delivered {
        let request_id = outgoing.request_id.as_deref().unwrap_or("-");
        tracing::info!(%request_id, instance = %outgoing.instance, contact = %outgoing.contact.masked(), seq = outgoing.seq, "reply sent");
    }
}

/// Writes a send's outcome. It must be recorded: a delivered reply whose
/// record is lost would be sent again. While the store is down (a database
/// restart) the write is retried here, in memory, until it lands or the
/// process stops. `seq` names the (first) reply in the logs.
async fn persist<F, W>(state: &AppState, seq: i64, mut write: W) -> bool
where
    W: FnMut() -> F,
    F: std::future::Future<Output = Result<(), StoreError>>,
{
    let mut wait = Duration::from_millis(100);
    for attempt in 1.. {
        match write().await {
            Ok(()) => return true,
            Err(err) if attempt >= 100 || *state.inner.stopping.borrow() => {
                // The attempt is on record (`outbox_attempt`, or the turn's
                // commit): whoever takes the reply next asks Evolution
                // before sending it again; this process too (`Ledger`).
                tracing::error!(error = %err, seq, "could not record a send result; giving up");
                return false;
            }
            Err(err) => {
                tracing::warn!(error = %err, seq, attempt, "could not record a send result; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
    false
}

/// Sends one reply and records a failed outcome; a delivered one is
/// returned for [`record_sent`].
/// `marked`: when its attempt was put on record (`mark_attempts`), if it was.
async fn deliver(state: &AppState, throttle: &Throttle, gates: &Gates, ledger: &SharedLedger, outgoing: Outgoing, marked: Option<Mark>) -> Option<(Outgoing, Sent)> {
    let _slot = gates.enter(&outgoing.instance).await?;
    let began = Timestamp::now_utc();
    let timeout = state.config().send_timeout;
    let result = match outgoing.unsure_since {
        None => send(state, throttle, ledger, &outgoing, marked).await,
        Some(since) => {
            // An attempt cut short by its process's death may still be in
            // Evolution's hands: wait for it to time out and settle.
            if let Some(settled) = outgoing.attempted_at.map(|at| at.plus(timeout * 2)).filter(|settled| *settled > Timestamp::now_utc()) {
                let reason = "an earlier attempt was cut short; waiting for it to settle before checking";
                match state.store().outbox_unsure(outgoing.seq, settled, reason).await {
                    // Unsure on record now: the ledger need not say so.
                    Ok(()) => drop(lock(ledger).unsettled.remove(&outgoing.seq)),
                    Err(err) => tracing::warn!(error = %err, seq = outgoing.seq, "could not reschedule an unsure reply"),
                }
                return None;
            }
            throttle.wait(&outgoing.instance, state.config().send_interval).await;
            match already_sent(state, &outgoing, since).await {
                Ok(Some(found)) => {
                    let request_id = outgoing.request_id.as_deref().unwrap_or("-");
                    tracing::info!(%request_id, instance = %outgoing.instance, contact = %outgoing.contact.masked(), seq = outgoing.seq, "reply found already delivered; not sent again");
                    Some(Ok(found))
                }
                Ok(None) => send(state, throttle, ledger, &outgoing, None).await,
                // Not knowing is no licence to send: ask again later.
                Err(err) => Some(Err(SendError::Unanswered(format!("cannot tell whether an earlier attempt went out: {err}")))),
            }
        }
    };
    match result? {
        Ok(sent) => Some((outgoing, sent)),
        Err(failure) => {
            let now = Timestamp::now_utc();
            let landed = persist(state, outgoing.seq, || record_failure(state, &outgoing, &failure, now)).await;
            lock(ledger).settle(outgoing.seq, landed, began);
            None
        }
    }
}

/// Records the attempt (unless `marked`: already on record, and the mark
/// still stands; on SQLite a stale one is moved to now), then sends
/// (throttled unless the caller already waited its turn). `None`: the
/// reply is no longer this process's to send.
async fn send(state: &AppState, throttle: &Throttle, ledger: &SharedLedger, outgoing: &Outgoing, marked: Option<Mark>) -> Option<Result<Sent, SendError>> {
    if outgoing.unsure_since.is_none() {
        throttle.wait(&outgoing.instance, state.config().send_interval).await;
    }
    let now = Timestamp::now_utc();
    let recorded = match (state.store().as_ref(), marked) {
        (store, Some(mark)) if mark_holds(matches!(store, switchyard_store::Db::Postgres(_)), mark.read.elapsed(), mark.age(now), state.config().send_timeout) => {
            Ok(true)
        }
        (switchyard_store::Db::Sqlite(store), Some(_)) => {
            let token = lock(ledger).token.unwrap_or(0);
            store.renew_attempt(outgoing.seq, token, now).await
        }
        _ => state.store().outbox_attempt(outgoing.seq, now).await,
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => return None,
        Err(err) => {
            // Unrecorded, the attempt could repeat unnoticed after a crash.
            tracing::warn!(error = %err, seq = outgoing.seq, "cannot record a send attempt; not sending yet");
            // The reply stays due: do not spin on a store that refuses writes.
            tokio::time::sleep(Duration::from_secs(1)).await;
            return None;
        }
    }
    let started = std::time::Instant::now();
    let result = dispatch(state, outgoing).await;
    state.inner.metrics.send.observe(started.elapsed());
    Some(result)
}

/// Sends one reply the way it asks: a file through `sendMedia`, a menu as
/// buttons or a list on a Cloud API instance, anything else as text; each
/// with the typing delay (`TYPING`).
async fn dispatch(state: &AppState, outgoing: &Outgoing) -> Result<Sent, SendError> {
    let client = &state.inner.client;
    let media = &state.config().media;
    let (instance, number) = (outgoing.instance.as_str(), outgoing.reply_to.as_str());
    let delay = media.typing.delay_for(&outgoing.text);
    match &outgoing.rich {
        Some(Rich::File(file)) => {
            let media = OutgoingMedia {
                kind: match file.kind {
                    FileKind::Image => MediaKind::Image,
                    FileKind::Document => MediaKind::Document,
                },
                media: file.url.clone(),
                mimetype: file.mimetype.clone(),
                file_name: file.file_name.clone(),
                caption: outgoing.text.clone(),
            };
            client.send_media(instance, number, &media, delay).await
        }
        Some(Rich::Choices(titles)) if media.cloud_instances.contains(instance) && titles.len() <= MAX_LIST_ROWS => {
            let choices: Vec<Choice> = titles.iter().enumerate().map(|(idx, title)| Choice { id: (idx + 1).to_string(), title: title.clone() }).collect();
            let body = super::media::menu_body(&outgoing.text, titles.len());
            client.send_choices(instance, number, &body, &choices, "Opções", delay).await
        }
        _ if delay.is_zero() => client.send_text(instance, number, &outgoing.text).await,
        _ => client.send_text_typing(instance, number, &outgoing.text, delay).await,
    }
}

/// What identifies a reply among the chat's stored messages: its text, a
/// file's caption (or, without one, its file name), a menu's body on a
/// Cloud API instance.
fn stored_text(state: &AppState, outgoing: &Outgoing) -> String {
    match &outgoing.rich {
        Some(Rich::File(file)) if outgoing.text.trim().is_empty() => file.file_name.clone().unwrap_or_default(),
        Some(Rich::Choices(titles)) if state.config().media.cloud_instances.contains(outgoing.instance.as_str()) && titles.len() <= MAX_LIST_ROWS => {
            super::media::menu_body(&outgoing.text, titles.len())
        }
        _ => outgoing.text.clone(),
    }
}

/// How far before the first unsure attempt the contact's earlier replies
/// are looked up, so their messages are not taken for this one.
const EARLIER_REPLIES: Duration = Duration::from_secs(60);

/// Whether Evolution has this reply among the chat's own messages since
/// `since` (none of them an earlier reply of ours).
async fn already_sent(state: &AppState, outgoing: &Outgoing, since: Timestamp) -> Result<Option<Sent>, String> {
    let known = state
        .store()
        .sent_ids_since(&outgoing.instance, &outgoing.contact, since.minus(EARLIER_REPLIES))
        .await
        .map_err(|err| err.to_string())?;
    let text = stored_text(state, outgoing);
    let query = SentQuery {
        number: &outgoing.reply_to,
        text: &text,
        since_millis: since.as_millis(),
        until_millis: Timestamp::now_utc().as_millis(),
        known_ids: &known,
    };
    state.inner.client.find_sent(outgoing.instance.as_str(), &query).await.map_err(|err| err.to_string())
}

async fn record_failure(state: &AppState, outgoing: &Outgoing, failure: &SendError, now: Timestamp) -> Result<(), StoreError> {
    match failure {
        SendError::Unanswered(reason) => {
            // Evolution may still deliver it: ask no sooner than one more
            // timeout from now.
            let wait = backoff(outgoing.attempts).max(state.config().send_timeout);
            tracing::warn!(instance = %outgoing.instance, contact = %outgoing.contact.masked(), attempts = outgoing.attempts + 1, check_in_ms = wait.as_millis() as u64, %reason, "send unanswered; will check whether it went out before sending again");
            state.store().outbox_unsure(outgoing.seq, now.plus(wait), reason).await
        }
        SendError::Retryable(reason) => {
            let wait = backoff(outgoing.attempts);
            tracing::warn!(instance = %outgoing.instance, contact = %outgoing.contact.masked(), attempts = outgoing.attempts + 1, retry_in_ms = wait.as_millis() as u64, %reason, "send failed; will retry");
            state.store().outbox_retry(outgoing.seq, now.plus(wait), reason).await
        }
        SendError::Rejected { status, reason } => {
            tracing::warn!(instance = %outgoing.instance, contact = %outgoing.contact.masked(), status, %reason, "reply undeliverable; not retried");
            state.store().outbox_failed(outgoing.seq, &format!("{status}: {reason}"), now).await
        }
        SendError::Unauthorized(reason) => {
            tracing::error!(instance = %outgoing.instance, %reason, "Evolution refused our apikey: check EVOLUTION_API_KEY / EVOLUTION_INSTANCE_KEYS");
            state.store().outbox_retry(outgoing.seq, now.plus(Duration::from_secs(60)), reason).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fit_the_throttle_inside_a_claim() {
        assert_eq!(batch_size(None), BATCH);
        assert_eq!(batch_size(Some(Duration::from_millis(50))), BATCH);
        assert_eq!(batch_size(Some(Duration::from_secs(1))), 15);
        assert_eq!(batch_size(Some(Duration::from_secs(60))), 1);
    }

    #[tokio::test]
    async fn gates_bound_sends_per_instance_not_across_instances() {
        let gates = Gates::new(2);
        let (a, b) = (InstanceId::parse("vendas").unwrap(), InstanceId::parse("suporte").unwrap());
        let held = [gates.enter(&a).await, gates.enter(&a).await];
        let third = tokio::time::timeout(Duration::from_millis(50), gates.enter(&a)).await;
        assert!(third.is_err(), "a third send on one instance waits");
        assert!(gates.enter(&b).await.is_some(), "another instance has its own slots");
        drop(held);
        assert!(gates.enter(&a).await.is_some(), "a slot frees when a send ends");
    }

    #[test]
    fn backoff_doubles_from_half_a_second_up_to_a_minute() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_millis(1000));
        assert_eq!(backoff(3), Duration::from_millis(4000));
        assert_eq!(backoff(7), Duration::from_secs(60));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }
}
