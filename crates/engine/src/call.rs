//! Calls between flows: a step returns [`Next::Call`] to run another flow (a
//! subroute versioned on its own, such as `dc_purchase`) and gets control
//! back when that flow ends.
//!
//! # Model
//! Each call frame is a session of its own: the callee's session records its
//! flow, version, fingerprint and resolution reason like any session, plus
//! its caller ([`crate::session::SessionRecord::parent`]) and depth (0 for
//! the contact's outermost session). The contact's live sessions, outermost
//! first, are the stack ([`crate::engine::ContactState::calls`]); so reports,
//! funnels, guards, `rollout status` and evacuation see a callee's versions
//! exactly like a top-level flow's, whichever parent called them.
//!
//! - `call flow` resolves the callee's version by its own policy at the
//!   moment of the call (overrides, pins, instance rules, schedules, splits,
//!   guards, remembered assignments: the same resolution as a new session);
//!   `call flow@vN` fixes it (reason `call`, detail `fixed`).
//! - A frame keeps its version until it returns. The caller waits at its
//!   call step meanwhile, keeping its own version.
//! - **Data:** the callee starts with a copy of the caller's data (its
//!   context) and, when it completes, its data becomes the caller's: the
//!   values it collected (slots, answers) come back.
//! - A callee that completes returns: its session ends `completed` with
//!   detail `returned`, and the caller's [`crate::flow::Step::returned`]
//!   decides what happens next.
//! - Anything else that ends the callee ends the whole stack with the same
//!   outcome and detail, each frame at its own step (the innermost at the
//!   step the customer was at, each caller at its call step): expiry, global
//!   commands, handoff, cancellation, failure, a handover to another flow.
//! - Only the outermost session's expiry counts: the turn keeps the
//!   innermost frame's `expires_at` equal to it, and the sweeper looks at
//!   depth 0 only.
//! - Evacuating a callee version (`rollout evacuate dc_purchase@v2`) treats
//!   its live frame like a top-level session: the frame ends `cancelled`
//!   (`evacuated`) and a new frame of the callee starts on the version that
//!   resolves now, under the same caller, through the target's step map
//!   with its data; frames it had called end with it. The caller keeps its
//!   version.

use crate::ids::Version;
use crate::resolve::Reason;

/// Nested calls deeper than this are a bug (a flow calling itself): the
/// session fails.
pub const MAX_DEPTH: u32 = 8;

/// The detail of a callee's `completed` end when it returned to its caller.
pub const RETURNED: &str = "returned";

/// A parsed call target: `flow` or `flow@vN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Callee<'a> {
    pub flow: &'a str,
    /// Fixed by the call (`flow@vN`); `None` resolves by policy.
    pub version: Option<Version>,
}

impl<'a> Callee<'a> {
    /// Parses `flow` or `flow@vN`; the error names the bad text.
    pub fn parse(spec: &'a str) -> Result<Callee<'a>, String> {
        match spec.split_once('@') {
            None => Ok(Callee { flow: spec, version: None }),
            Some((flow, version)) => {
                let version = Version::parse(version).map_err(|problem| format!("call '{spec}': {problem}"))?;
                Ok(Callee { flow, version: Some(version) })
            }
        }
    }
}

/// The reason recorded for a callee whose version the call fixed.
pub fn fixed_reason() -> Reason {
    Reason::Rule { rule: "call".to_owned(), detail: Some("fixed".to_owned()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callee_is_a_flow_with_an_optional_fixed_version() {
        assert_eq!(Callee::parse("dc_purchase"), Ok(Callee { flow: "dc_purchase", version: None }));
        assert_eq!(Callee::parse("dc_purchase@v2"), Ok(Callee { flow: "dc_purchase", version: Some(Version::new(2)) }));
        assert!(Callee::parse("dc_purchase@2").unwrap_err().contains("call 'dc_purchase@2'"));
        assert_eq!(fixed_reason().to_string(), "call (fixed)");
    }
}
