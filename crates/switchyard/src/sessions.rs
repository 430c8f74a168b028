//! Operator actions on sessions, shared by the CLI, the admin API and the
//! console: the JSON shape of a session, ending live sessions by hand,
//! erasing a contact (LGPD), and releasing a contact from human hold.

use std::sync::Arc;

use serde_json::Value;
use switchyard_engine::engine::Engine;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::service::Conversations;
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::{SystemClock, Timestamp};
use switchyard_store::policy::AuditedTurn;
use switchyard_store::privacy::Erasure;
use switchyard_store::Db;

/// A session as `sessions list --json`, `sessions show --json` and the admin API print it.
pub fn session_json(session: &Session) -> Value {
    serde_json::to_value(crate::views::records::SessionView::from(session)).unwrap_or(Value::Null)
}

/// Ends every live session of `contact` and its aliases (on `instance`, or
/// on every instance) as `cancelled` with `detail`, through the engine so
/// the event log records it at its step. Returns the sessions it ended (as
/// they were just before).
pub async fn end_live(engine: &Arc<Engine>, store: &Db, contact: &Contact, instance: Option<&InstanceId>, detail: &str) -> Result<Vec<Session>, StoreError> {
    let conversations = Conversations::new(Arc::clone(engine), store.clone(), SystemClock);
    let mut ended = Vec::new();
    for session in store.history_of(contact).await?.into_iter().filter(Session::is_live) {
        if instance.is_some_and(|instance| instance != session.instance()) {
            continue;
        }
        if conversations.close(session.instance(), session.contact(), Outcome::Cancelled, detail).await?.is_some() {
            ended.push(session);
        }
    }
    Ok(ended)
}

/// What [`end_by_hand`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Ended {
    /// How many live sessions ended.
    pub ended: usize,
    /// One audit record per ended session (action `end_session`).
    pub audit_seqs: Vec<i64>,
}

/// An operator ends the contact's live sessions (cancelled, detail
/// `operator`, through the engine as [`end_live`] does): the CLI (`sessions
/// end`), the admin API and the console all come here. Each ended session is
/// audited (action `end_session`) with `actor`, `reason`, and the session's
/// id, version and step; the contact only by its masked tail, as a session's
/// reason detail stores it. The end and its record are one transaction
/// ([`Db::commit_audited`]): a store failure leaves both or neither, never an
/// ended session nobody can account for. A turn that moved the session
/// meanwhile (a conflict) is recomputed, as a customer's turn is.
pub async fn end_by_hand(engine: &Arc<Engine>, store: &Db, contact: &Contact, instance: Option<&InstanceId>, actor: &str, reason: &str) -> Result<Ended, StoreError> {
    let reason = match reason.trim() {
        "" => "ended by hand",
        reason => reason,
    };
    let mut ended = 0;
    let mut audit_seqs = Vec::new();
    for session in store.history_of(contact).await?.into_iter().filter(Session::is_live) {
        if instance.is_some_and(|instance| instance != session.instance()) {
            continue;
        }
        let record = session.record();
        let detail = serde_json::json!({
            "session": record.id.to_string(),
            "instance": record.instance.as_str(),
            "contact": contact.masked_tail(),
            "version": record.version.to_string(),
            "step": record.step.as_str(),
        });
        let mut attempt = 0;
        loop {
            let state = store.contact_state(session.instance(), session.contact()).await?;
            let now = Timestamp::now_utc();
            // Nothing live any more (a session of the same stack ended it, or the customer finished).
            let Some(turn) = engine.close_all(state, Outcome::Cancelled, "operator", now) else { break };
            let audit = AuditedTurn { at: now, actor, action: "end_session", flow: record.flow.as_str(), reason, detail: &detail };
            match store.commit_audited(&turn, &audit).await {
                Ok(seq) => {
                    ended += 1;
                    audit_seqs.push(seq);
                    break;
                }
                Err(StoreError::Conflict(_)) if attempt < CONFLICT_RETRIES => attempt += 1,
                Err(err) => return Err(err),
            }
        }
    }
    tracing::info!(contact = %contact.masked(), ended, %actor, "sessions ended by hand");
    Ok(Ended { ended, audit_seqs })
}

/// How often [`end_by_hand`] recomputes an end that a concurrent turn made stale.
const CONFLICT_RETRIES: u32 = 3;

/// Erases `contact` and its aliases: ends their live sessions (`erased`), then
/// [`Db::forget_contact`]. A message that starts a new session in
/// between is ended too (a few attempts). Returns the erasure and how many
/// sessions were ended first.
pub async fn forget(engine: &Arc<Engine>, store: &Db, contact: &Contact, actor: &str, reason: &str) -> Result<(Erasure, usize), StoreError> {
    let mut ended = 0;
    let mut attempt = 0;
    loop {
        ended += end_live(engine, store, contact, None, "erased").await?.len();
        match store.forget_contact(contact, actor, reason, Timestamp::now_utc()).await {
            Err(StoreError::Conflict(_)) if attempt < 3 => attempt += 1,
            result => return result.map(|erasure| (erasure, ended)),
        }
    }
}

/// What [`release_hold`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Released {
    /// The contact was on hold and the bot answers it again.
    pub released: bool,
    /// The audit record naming the actor, when a hold was released.
    pub audit_seq: Option<i64>,
}

/// Ends the contact's human hold on `instance`: the bot answers it again.
/// The CLI (`handoff release`), the admin API (`POST /api/handoffs/release`)
/// and the console's release button all come here; a release is audited
/// (action `release`) with `actor` and `reason` in the same transaction.
pub async fn release_hold(store: &Db, instance: &InstanceId, contact: &Contact, actor: &str, reason: &str) -> Result<Released, StoreError> {
    let reason = match reason.trim() {
        "" => "released by hand",
        reason => reason,
    };
    let audit_seq = store.release_hold(instance, contact, actor, reason, Timestamp::now_utc()).await?;
    tracing::info!(%instance, contact = %contact.masked(), released = audit_seq.is_some(), %actor, "human hold release requested");
    Ok(Released { released: audit_seq.is_some(), audit_seq })
}
