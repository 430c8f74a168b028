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
    /// A form filled (or overwrote) `slot` from the customer's text; `source`
    /// says which extractor found it (`keyword`, `validator`, `trained`,
    /// `model`); `entering` whether from the message that led to the form
    /// (the session's opening, or the answer that routed there) rather than
    /// an answer to the form's own question.
    SlotFilled { slot: String, source: String, entering: bool },
    /// A form asked for `slot` and the answer did not fill it (a re-prompt):
    /// `reason` is the refusal (`invalid_cpf` ...) or `nothing`.
    SlotMissed { slot: String, reason: String },
    /// The customer's message was not typed text: `medium` is `audio` (a
    /// voice note read through its transcript), `image` or `document`.
    Received { medium: String },
}

impl EventKind {
    /// The `detail` column of a slot event (`slot=document;source=keyword;entering=1`);
    /// `None` for other kinds. Every store uses this and [`EventKind::slot_from_detail`].
    pub fn slot_detail(&self) -> Option<String> {
        let clean = |text: &str| text.replace([';', '=', '\n'], "_");
        match self {
            EventKind::SlotFilled { slot, source, entering } => {
                Some(format!("slot={};source={};entering={}", clean(slot), clean(source), u8::from(*entering)))
            }
            EventKind::SlotMissed { slot, reason } => Some(format!("slot={};reason={}", clean(slot), clean(reason))),
            _ => None,
        }
    }

    /// The slot event of kind `name` (`slot_filled`, `slot_missed`) stored with `detail`.
    pub fn slot_from_detail(name: &str, detail: &str) -> Result<EventKind, String> {
        let field = |key: &str| {
            detail
                .split(';')
                .find_map(|pair| pair.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
                .map(str::to_owned)
                .ok_or_else(|| format!("{name} event '{detail}' has no {key}"))
        };
        match name {
            "slot_filled" => Ok(EventKind::SlotFilled { slot: field("slot")?, source: field("source")?, entering: field("entering")? == "1" }),
            "slot_missed" => Ok(EventKind::SlotMissed { slot: field("slot")?, reason: field("reason")? }),
            other => Err(format!("'{other}' is not a slot event")),
        }
    }
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
            EventKind::SlotFilled { .. } => "slot_filled",
            EventKind::SlotMissed { .. } => "slot_missed",
            EventKind::Received { .. } => "received",
        }
    }
}
