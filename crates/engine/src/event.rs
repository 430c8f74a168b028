//! The append-only event log: what happened to each session, in order. The
//! analytics (funnels, rates) are computed from it, so every entry carries
//! the flow and version it belongs to.

use crate::ids::{FlowId, Fingerprint, SessionId, StepId, Version};
use crate::resolve::Reason;
use crate::session::Outcome;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub session: SessionId,
    pub flow: FlowId,
    pub version: Version,
    pub at: Timestamp,
    /// The step the session was at (for `Ended`: where it ended, the drop-off point).
    pub step: Option<StepId>,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A session started on `version`, chosen for `reason`.
    Started { reason: Reason, fingerprint: Fingerprint },
    /// The session entered `step`.
    StepEntered,
    /// The customer's input was not understood at `step` (a re-prompt).
    Retried,
    /// The session ended. `detail` says why when the outcome alone does not
    /// (`handover:billing`, `version_gone`, the panic message of a failure).
    Ended { outcome: Outcome, detail: Option<String> },
    /// A reply of this session could not be delivered and will not be retried
    /// (the number is not on WhatsApp ...).
    Undeliverable { reason: String },
    /// A step classified or extracted from the customer's text: which
    /// classifier decided and, when the model was asked, its cost. Stored
    /// with [`crate::classify::Classification::encode`].
    Classified(crate::classify::Classification),
}

impl EventKind {
    /// The name stored in the event log's `kind` column.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Started { .. } => "started",
            EventKind::StepEntered => "step_entered",
            EventKind::Retried => "retried",
            EventKind::Ended { outcome, .. } => outcome.as_str(),
            EventKind::Undeliverable { .. } => "undeliverable",
            EventKind::Classified(_) => "classified",
        }
    }
}
