//! What happens to a session outside a customer's message: expiry, an
//! operator's takeover, an evacuation off a bad version, a manual close.

use crate::ids::{Contact, InstanceId};
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
        if let Some(mut session) = state.session.filter(Session::is_live) {
            if session.expires_at() <= now {
                self.expire_into(session, now, &mut turn);
            } else {
                self.end(&mut session, Outcome::Handoff, Some("operator_takeover".to_owned()), now, &mut turn);
                turn.sessions.push(session);
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
    pub fn evacuate(&self, mut session: Session, now: Timestamp) -> Result<Turn, String> {
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
        let mut turn = Turn::new(session.instance(), session.contact());
        let inbound = Inbound { instance: session.instance().clone(), contact: session.contact().clone(), content: Content::Text(String::new()) };
        let flow = session.flow().clone();
        let step = session.step().clone();
        self.end(&mut session, Outcome::Cancelled, Some("evacuated".to_owned()), now, &mut turn);
        turn.replies.push(Reply {
            session: Some(session.id()),
            flow: Some(flow.clone()),
            version: Some(session.version()),
            step: Some(step),
            text: self.config.texts.restarted.clone(),
            rich: None,
        });
        let resume = self
            .registry()
            .get(flow.as_str(), resolved.version)
            .and_then(|target| target.mapped_step(session.version(), session.step().as_str()))
            .map(|mapped| (mapped, session.data().clone()));
        turn.sessions.push(session);
        self.start_at(flow, "", &inbound, now, 0, &mut turn, resume);
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

    pub(super) fn expire_into(&self, mut session: Session, now: Timestamp, turn: &mut Turn) {
        let at = session.expires_at().min(now);
        self.end(&mut session, Outcome::Expired, None, at, turn);
        turn.sessions.push(session);
    }

}
