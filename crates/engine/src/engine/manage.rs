//! What happens to a session outside a customer's message: expiry, an
//! operator's takeover, an evacuation off a bad version, a manual close.

use crate::ids::{Contact, InstanceId, SessionId};
use crate::session::{Outcome, Session};
use crate::time::Timestamp;

use super::{Content, ContactState, Engine, Inbound, Reply, Turn};

impl Engine {
    /// Ends a session whose TTL has passed: a drop-off at its current step.
    pub fn expire(&self, session: Session, now: Timestamp) -> Turn {
        let mut turn = Turn::new(session.instance(), session.contact());
        if session.is_live() {
            self.expire_into(session, now, &mut turn);
        }
        turn
    }

    /// An operator typed on the business phone (a `fromMe` message): a human
    /// has taken the conversation. The live session, if any, ends as a
    /// handoff at its step, and the bot goes silent for the contact.
    pub fn takeover(&self, state: ContactState, instance: &InstanceId, contact: &Contact, now: Timestamp) -> Turn {
        let mut turn = Turn::new(instance, contact);
        if let Some(root) = state.session.filter(Session::is_live) {
            let mut session = self.innermost(root, state.calls, &mut turn);
            if self.expires_at(&session, &turn) <= now {
                self.expire_into(session, now, &mut turn);
            } else {
                self.end(&mut session, Outcome::Handoff, Some("operator_takeover".to_owned()), now, &mut turn);
                turn.sessions.push(session);
                self.unwind(Outcome::Handoff, Some("operator_takeover"), now, &mut turn);
            }
        }
        turn.handoff_until = Some(now.plus(self.config.handoff_ttl));
        turn
    }

    /// Moves a live session off its version now (an evacuation after a bad
    /// release): the session ends `cancelled` with detail `evacuated`, and the
    /// customer is restarted on the version that resolves now, with a short
    /// apology. Refused when new sessions would still get the same version:
    /// change the policy (or the override) first.
    ///
    /// A session inside a call (depth above 0) needs its stack: use
    /// [`Engine::evacuate_in`].
    pub fn evacuate(&self, session: Session, now: Timestamp) -> Result<Turn, String> {
        if session.depth() > 0 {
            return Err(format!("session {} was called by another flow: evacuate it with the contact's state", session.id()));
        }
        let id = session.id();
        self.evacuate_in(ContactState { session: Some(session), ..ContactState::default() }, id, now)
    }

    /// [`Engine::evacuate`] for the live session `target` of a contact whose
    /// state (with its stack of calls) is `state`. A callee is evacuated like
    /// a top-level session: it ends `cancelled` (`evacuated`), and a new
    /// frame of its flow starts under the same caller on the version that
    /// resolves now (through the step map, with its data). The sessions it
    /// called end with it; its callers keep their versions.
    pub fn evacuate_in(&self, state: ContactState, target: SessionId, now: Timestamp) -> Result<Turn, String> {
        let root = state.session.filter(Session::is_live).ok_or_else(|| format!("session {target} is not live"))?;
        let (instance, contact) = (root.instance().clone(), root.contact().clone());
        let mut turn = Turn::new(&instance, &contact);
        let mut session = self.innermost(root, state.calls, &mut turn);
        while session.id() != target {
            let Some(caller) = turn.stack.pop() else { return Err(format!("session {target} is not live")) };
            // A frame the evacuated session called ends with it.
            self.end(&mut session, Outcome::Cancelled, Some("evacuated".to_owned()), now, &mut turn);
            turn.sessions.push(session);
            session = caller;
        }
        let resolved = self
            .resolve(session.flow().as_str(), session.instance(), session.contact(), now)
            .ok_or_else(|| format!("flow '{}' is not compiled in", session.flow()))?;
        if resolved.version == session.version() {
            return Err(format!(
                "new {} sessions still resolve to {} (reason: {}): change the rollout policy first",
                session.flow(),
                resolved.version,
                resolved.reason
            ));
        }
        let inbound = Inbound { instance: session.instance().clone(), contact: session.contact().clone(), content: Content::Text(String::new()) };
        let flow = session.flow().clone();
        let step = session.step().clone();
        self.end(&mut session, Outcome::Cancelled, Some("evacuated".to_owned()), now, &mut turn);
        turn.replies.push(Reply {
            session: Some(session.id()),
            flow: Some(flow.clone()),
            version: Some(session.version()),
            step: Some(step),
            text: self.config.texts.restarted.clone().into(),
            rich: None,
        });
        let resume = self
            .registry()
            .get(flow.as_str(), resolved.version)
            .and_then(|target| target.mapped_step(session.version(), session.step().as_str()))
            .map(|mapped| (mapped, session.data().clone()));
        turn.sessions.push(session);
        self.start_at(flow, "", &inbound, now, 0, &mut turn, resume, None);
        self.settle(&mut turn);
        Ok(turn)
    }

    /// Ends a live session by hand (the console's `/reset`, an operator) with `outcome`.
    pub fn close(&self, mut session: Session, outcome: Outcome, detail: &str, now: Timestamp) -> Turn {
        let mut turn = Turn::new(session.instance(), session.contact());
        if session.is_live() {
            self.end(&mut session, outcome, Some(detail.to_owned()), now, &mut turn);
            turn.sessions.push(session);
        }
        turn
    }

    /// Ends `session` (the innermost of the stack in `turn`) and its callers, expired.
    pub(super) fn expire_into(&self, mut session: Session, now: Timestamp, turn: &mut Turn) {
        let at = self.expires_at(&session, turn).min(now);
        self.end(&mut session, Outcome::Expired, None, at, turn);
        turn.sessions.push(session);
        self.unwind(Outcome::Expired, None, at, turn);
    }

}
