//! A session: one customer's journey through one flow version, pinned to that
//! version (and its fingerprint) for its whole life.

use std::borrow::Cow;
use std::fmt;

use crate::ids::{Contact, FlowId, Fingerprint, InstanceId, SessionId, StepId, Version};
use crate::resolve::Reason;
use crate::time::Timestamp;

/// How a session ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Outcome {
    Completed,
    Handoff,
    Expired,
    Failed,
    Cancelled,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Completed, Outcome::Handoff, Outcome::Expired, Outcome::Failed, Outcome::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Handoff => "handoff",
            Outcome::Expired => "expired",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }
    pub fn parse(text: &str) -> Result<Outcome, String> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
            .ok_or_else(|| format!("outcome '{text}' is not one of completed, handoff, expired, failed, cancelled"))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The values a flow collected (document, e-mail, chosen product ...), in
/// insertion order. Small, so a vector beats a map. Shared until written:
/// loading a session and keeping it in a turn copies no value, and the
/// first change in a turn copies the list once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Data(std::sync::Arc<Vec<(Cow<'static, str>, String)>>);

impl Data {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }
    pub fn set(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        let key = key.into();
        let value = value.into();
        if self.get(&key) == Some(value.as_str()) {
            return;
        }
        if std::sync::Arc::get_mut(&mut self.0).is_none() {
            // Shared with the stored session: copy once, with room for the
            // value about to be added (no second allocation to grow it).
            let mut copy = Vec::with_capacity(self.0.len() + 1);
            copy.extend(self.0.iter().cloned());
            self.0 = std::sync::Arc::new(copy);
        }
        let entries = std::sync::Arc::make_mut(&mut self.0);
        match entries.iter_mut().find(|(name, _)| *name == key) {
            Some(slot) => slot.1 = value,
            None => entries.push((key, value)),
        }
    }
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let idx = self.0.iter().position(|(name, _)| name == key)?;
        Some(std::sync::Arc::make_mut(&mut self.0).remove(idx).1)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(key, value)| (key.as_ref(), value.as_str()))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for Data {
    /// Values are personal data (CPF, e-mail): only the keys are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(key, _)| key)).finish()
    }
}

/// Every field of a session, as the store persists it. The store converts its
/// rows into this and back; the engine checks it in [`Session::restore`].
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub instance: InstanceId,
    pub contact: Contact,
    pub flow: FlowId,
    pub version: Version,
    pub fingerprint: Fingerprint,
    pub reason: Reason,
    pub step: StepId,
    pub data: Data,
    pub attempts: u32,
    pub turns: u32,
    pub started_at: Timestamp,
    pub last_input_at: Timestamp,
    pub expires_at: Timestamp,
    pub outcome: Option<Outcome>,
    pub ended_at: Option<Timestamp>,
    /// Optimistic-concurrency counter: 0 for a session not yet stored; the
    /// store refuses an update whose revision is not the stored one.
    pub revision: u64,
    /// The session that called this one ([`crate::flow::Next::Call`]); `None`
    /// for a contact's outermost session (and every session stored before calls existed).
    pub parent: Option<SessionId>,
    /// 0 for the outermost session, the caller's depth + 1 for a callee.
    pub depth: u32,
}

/// A live or ended session. Invariant: `outcome` and `ended_at` are both set
/// or both unset; once set they never change.
#[derive(Clone, Debug)]
pub struct Session {
    pub(crate) record: SessionRecord,
}

impl Session {
    /// Rebuilds a session from its stored form.
    pub fn restore(record: SessionRecord) -> Result<Session, String> {
        if record.outcome.is_some() != record.ended_at.is_some() {
            return Err(format!("session {}: outcome and ended_at must be set together", record.id));
        }
        if record.parent.is_some() != (record.depth > 0) {
            return Err(format!("session {}: a caller is set exactly when the depth ({}) is above 0", record.id, record.depth));
        }
        Ok(Session { record })
    }
    pub fn record(&self) -> &SessionRecord {
        &self.record
    }
    pub fn id(&self) -> SessionId {
        self.record.id
    }
    pub fn instance(&self) -> &InstanceId {
        &self.record.instance
    }
    pub fn contact(&self) -> &Contact {
        &self.record.contact
    }
    pub fn flow(&self) -> &FlowId {
        &self.record.flow
    }
    pub fn version(&self) -> Version {
        self.record.version
    }
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.record.fingerprint
    }
    pub fn reason(&self) -> &Reason {
        &self.record.reason
    }
    pub fn step(&self) -> &StepId {
        &self.record.step
    }
    pub fn data(&self) -> &Data {
        &self.record.data
    }
    pub fn turns(&self) -> u32 {
        self.record.turns
    }
    pub fn started_at(&self) -> Timestamp {
        self.record.started_at
    }
    pub fn expires_at(&self) -> Timestamp {
        self.record.expires_at
    }
    pub fn outcome(&self) -> Option<Outcome> {
        self.record.outcome
    }
    pub fn ended_at(&self) -> Option<Timestamp> {
        self.record.ended_at
    }
    pub fn is_live(&self) -> bool {
        self.record.outcome.is_none()
    }
    pub fn revision(&self) -> u64 {
        self.record.revision
    }
    /// The caller, for a session another flow called (see [`crate::call`]).
    pub fn parent(&self) -> Option<SessionId> {
        self.record.parent
    }
    /// 0 for a contact's outermost session, 1 for what it called, ...
    pub fn depth(&self) -> u32 {
        self.record.depth
    }

    pub(crate) fn end(&mut self, outcome: Outcome, at: Timestamp) {
        debug_assert!(self.record.outcome.is_none(), "a session ends once");
        self.record.outcome = Some(outcome);
        self.record.ended_at = Some(at);
    }
}
