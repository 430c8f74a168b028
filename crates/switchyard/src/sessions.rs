//! Operator actions on sessions, shared by the CLI, the admin API and the
//! console: the JSON shape of a session, ending live sessions by hand,
//! erasing a contact (LGPD), and releasing a contact from human hold.

use std::sync::Arc;

use serde_json::Value;
use switchyard_engine::engine::Engine;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::service::Conversations;
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::{SystemClock, Timestamp};
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

/// An operator ends the contact's live sessions ([`end_live`], detail
/// `operator`): the CLI (`sessions end`), the admin API and the console all
/// come here. Each ended session is audited (action `end_session`) with
/// `actor`, `reason`, and the session's id, version and step; the contact
/// only by its masked tail, as a session's reason detail stores it.
pub async fn end_by_hand(engine: &Arc<Engine>, store: &Db, contact: &Contact, instance: Option<&InstanceId>, actor: &str, reason: &str) -> Result<Ended, StoreError> {
    let reason = match reason.trim() {
        "" => "ended by hand",
        reason => reason,
    };
    let sessions = end_live(engine, store, contact, instance, "operator").await?;
    let mut audit_seqs = Vec::with_capacity(sessions.len());
    for session in &sessions {
        let record = session.record();
        let detail = serde_json::json!({
            "session": record.id.to_string(),
            "instance": record.instance.as_str(),
            "contact": contact.masked_tail(),
            "version": record.version.to_string(),
            "step": record.step.as_str(),
        });
        audit_seqs.push(store.record_event(actor, "end_session", record.flow.as_str(), reason, &detail).await?);
    }
    tracing::info!(contact = %contact.masked(), ended = sessions.len(), %actor, "sessions ended by hand");
    Ok(Ended { ended: sessions.len(), audit_seqs })
}

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
