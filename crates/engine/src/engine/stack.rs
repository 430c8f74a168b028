//! The engine's side of calls between flows (see [`crate::call`]): the
//! stack of a contact's live sessions during a turn, calling, returning, and
//! ending the whole stack. Without a call every function here is a check of
//! an empty vector: no allocation, no extra work.

use super::{ContactState, Engine, Failure, Inbound, Turn, MAX_HOPS};
use crate::call::{Callee, MAX_DEPTH};
use crate::flow::Next;
use crate::ids::FlowId;
use crate::session::{Data, Outcome, Session};
use crate::time::Timestamp;

impl Engine {
    /// The innermost live session of a contact's stack (`root` and the
    /// sessions it called, outermost first); its callers go to `turn.stack`.
    pub(super) fn innermost(&self, root: Session, calls: Vec<Session>, turn: &mut Turn) -> Session {
        let mut session = root;
        for call in calls.into_iter().filter(Session::is_live) {
            turn.stack.push(session);
            session = call;
        }
        session
    }

    /// When the stack of `session` expires: the outermost session's expiry.
    pub(super) fn expires_at(&self, session: &Session, turn: &Turn) -> Timestamp {
        turn.stack.first().unwrap_or(session).expires_at()
    }

    /// The session that was running ended for `outcome`: so does every
    /// caller, innermost first, each at its own (call) step with the same
    /// detail.
    pub(super) fn unwind(&self, outcome: Outcome, detail: Option<&str>, at: Timestamp, turn: &mut Turn) {
        while let Some(mut caller) = turn.stack.pop() {
            self.end(&mut caller, outcome, detail.map(str::to_owned), at, turn);
            turn.sessions.push(caller);
        }
    }

    /// The callers still waiting at the end of a turn are written with it
    /// (the outermost one's expiry moved).
    pub(super) fn settle(&self, turn: &mut Turn) {
        if !turn.stack.is_empty() {
            let callers = std::mem::take(&mut turn.stack);
            turn.sessions.extend(callers);
        }
    }

    /// `caller` asked to run `spec` (`flow` or `flow@vN`): it waits in
    /// `turn.stack` while a session of the callee starts, resolved now by
    /// its own policy (or fixed), seeing `text` as its trigger.
    #[allow(clippy::too_many_arguments)] // reason: the shape of `follow`, which calls it
    pub(super) fn call_flow(&self, caller: Session, spec: &'static str, text: &str, inbound: &Inbound, now: Timestamp, handovers: u32, turn: &mut Turn) {
        turn.calls += 1;
        let problem = match Callee::parse(spec) {
            Err(problem) => Some(problem),
            Ok(_) if caller.depth() + 1 > MAX_DEPTH => Some(format!("calls nested deeper than {MAX_DEPTH} (calling '{spec}')")),
            Ok(_) if turn.calls > MAX_HOPS => Some(format!("more than {MAX_HOPS} calls in one turn (a loop through '{spec}')")),
            Ok(callee) if !self.registry().has_flow(callee.flow) => Some(format!("calls unknown flow '{}'", callee.flow)),
            Ok(_) => None,
        };
        if let Some(detail) = problem {
            return self.fail(caller, detail, now, turn);
        }
        let Ok(callee) = Callee::parse(spec) else { return };
        turn.stack.push(caller);
        self.start_at(FlowId::new_static(callee.flow), text, inbound, now, handovers, turn, None, callee.version);
    }

    /// The session that was running returned with `data`: its caller (the
    /// top of `turn.stack`) takes the data and goes where its step's
    /// `returned` says.
    pub(super) fn resume(&self, data: Data, text: &str, inbound: &Inbound, now: Timestamp, handovers: u32, turn: &mut Turn) {
        let Some(mut caller) = turn.stack.pop() else { return };
        caller.record.data = data;
        caller.record.attempts = 0;
        let registry = self.registry();
        let Some(fv) = registry.get(caller.flow().as_str(), caller.version()) else {
            let detail = format!("{}@{} is not compiled in", caller.flow(), caller.version());
            return self.fail(caller, detail, now, turn);
        };
        let Some(step) = fv.step(caller.step().as_str()) else {
            let detail = format!("step '{}' is not in {}", caller.step(), fv.label());
            return self.fail(caller, detail, now, turn);
        };
        let called: Result<_, Failure> =
            self.call(fv, &mut caller, step.handler.as_ref(), None, now, turn, |handler, ctx| handler.returned(ctx));
        self.follow(fv, caller, called, text, inbound, now, handovers, turn);
    }

    /// A caller's interrupt (a change of subject, `VersionDecl::interrupt`)
    /// that `text` triggers, innermost caller first: (its depth, the step it
    /// goes to). Only `Goto` interrupts leave a call, and not when the caller
    /// is already in the target's subroute. Nothing to look at without a call.
    pub(super) fn caller_interrupt(&self, text: &str, turn: &Turn) -> Option<(u32, &'static str)> {
        if turn.stack.is_empty() {
            return None;
        }
        let registry = self.registry();
        turn.stack.iter().rev().find_map(|caller| {
            let fv = registry.get(caller.flow().as_str(), caller.version())?;
            match self.interrupt(fv, caller, text)? {
                Next::Goto(target) => Some((caller.depth(), target)),
                _ => None,
            }
        })
    }

    /// The customer changed the subject to a step of the caller at `depth`:
    /// the sessions above it end `cancelled` (detail `interrupted`, each at
    /// its step) and the caller enters `target` with the message as trigger.
    #[allow(clippy::too_many_arguments)] // reason: the shape of `follow`, which it ends in
    pub(super) fn leave_call(&self, mut session: Session, depth: u32, target: &'static str, text: &str, inbound: &Inbound, now: Timestamp, turn: &mut Turn) {
        while session.depth() > depth {
            self.end(&mut session, Outcome::Cancelled, Some("interrupted".to_owned()), now, turn);
            turn.sessions.push(session);
            let Some(caller) = turn.stack.pop() else { return };
            session = caller;
        }
        let registry = self.registry();
        let Some(fv) = registry.get(session.flow().as_str(), session.version()) else { return self.fail(session, "version gone".to_owned(), now, turn) };
        let Some(step) = fv.step(target) else {
            let detail = format!("step '{target}' is not in {}", fv.label());
            return self.fail(session, detail, now, turn);
        };
        session.record.step = crate::ids::StepId::new_static(step.id);
        session.record.attempts = 0;
        turn.events.push(self.event(&session, now, crate::event::EventKind::StepEntered));
        let called = self.call(fv, &mut session, step.handler.as_ref(), Some(text), now, turn, |handler, ctx| handler.enter(ctx));
        self.follow(fv, session, called, text, inbound, now, 0, turn);
    }

    /// Ends a contact's live stack by hand (the console's `/reset`, an
    /// operator) with `outcome`, every session at its step.
    pub fn close_all(&self, state: ContactState, outcome: Outcome, detail: &str, now: Timestamp) -> Option<Turn> {
        let root = state.session.filter(Session::is_live)?;
        let mut turn = Turn::new(root.instance(), root.contact());
        let mut session = self.innermost(root, state.calls, &mut turn);
        self.end(&mut session, outcome, Some(detail.to_owned()), now, &mut turn);
        turn.sessions.push(session);
        self.unwind(outcome, Some(detail), now, &mut turn);
        Some(turn)
    }

    /// Ends a contact's live stack whose outermost session's TTL has passed:
    /// a drop-off at the innermost session's step (each caller at its call step).
    pub fn expire_all(&self, state: ContactState, now: Timestamp) -> Option<Turn> {
        let root = state.session.filter(Session::is_live)?;
        let mut turn = Turn::new(root.instance(), root.contact());
        let session = self.innermost(root, state.calls, &mut turn);
        self.expire_into(session, now, &mut turn);
        Some(turn)
    }
}
