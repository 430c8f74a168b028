//! One turn of a conversation, as a pure function:
//! (contact state, inbound message, now) -> (sessions, events, replies).
//!
//! The caller loads the contact's state from the store, calls [`Engine::turn`]
//! and commits the returned [`Turn`] in one transaction. Nothing here reads a
//! clock, a database or the network.
//!
//! Layout: `config` (texts, lifetimes, global commands), `message` (what
//! goes into a turn and what comes out), `manage` (expiry, takeover,
//! evacuation, close), `stack` (calls between flows), and here the turn itself.

mod config;
mod manage;
mod message;
mod stack;

pub use config::{Command, EngineConfig, EngineTexts, GlobalCommands};
pub use message::{ContactState, Content, Inbound, Reply, ReplyText, Turn};

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::classify::Decisions;
use crate::event::{Event, EventKind};
use crate::flow::{Ctx, Next, Step};
use crate::ids::{Contact, FlowId, InstanceId, SessionId, StepId, Version};
use crate::registry::{FlowVersion, Registry};
use crate::resolve::{Query, Resolution, Resolver};
use crate::session::{Data, Outcome, Session, SessionRecord};
use crate::time::Timestamp;

/// A handover chain longer than this (unknown -> billing -> ...) is a bug.
const MAX_HANDOVERS: u32 = 4;
/// Steps entered in one turn without waiting for input; more is a loop.
const MAX_HOPS: u32 = 32;

pub struct Engine {
    /// Swapped whole when versions are published at runtime (see
    /// [`Engine::set_registry`]); readers clone the `Arc`.
    registry: std::sync::RwLock<Arc<Registry>>,
    resolver: Resolver,
    config: EngineConfig,
    /// `config.commands`, normalised once.
    commands: Vec<(String, Command)>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("registry", &self.registry()).field("resolver", &self.resolver).finish()
    }
}

/// Text buffers of finished turns, reused by the next turn on the same
/// thread for its message and normalised message (two allocations and two
/// frees fewer per message).
mod spare {
    use std::cell::RefCell;

    thread_local! {
        static SPARE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    /// Two empty buffers (one look at the thread's spares).
    pub(super) fn strings() -> (String, String) {
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            (spare.pop().unwrap_or_default(), spare.pop().unwrap_or_default())
        })
    }

    /// Keeps the buffers of `texts` (cleared), but not large ones, nor more than two.
    pub(super) fn keep(texts: [Option<String>; 2]) {
        SPARE.with(|spare| {
            let mut spare = spare.borrow_mut();
            for mut text in texts.into_iter().flatten() {
                if text.capacity() <= 4096 && spare.len() < 2 {
                    text.clear();
                    spare.push(text);
                }
            }
        });
    }
}

/// Why a step call failed: a panic or a transition the step did not declare.
struct Failure(String);

impl Engine {
    /// The entry flow must be compiled in.
    pub fn new(registry: Arc<Registry>, resolver: Resolver, config: EngineConfig) -> Result<Engine, String> {
        if !registry.has_flow(config.entry_flow.as_str()) {
            return Err(format!("entry flow '{}' is not compiled in", config.entry_flow));
        }
        let commands = config.commands.normalized();
        Ok(Engine { registry: std::sync::RwLock::new(registry), resolver, config, commands })
    }

    /// Every version this engine runs: the compiled ones and those published
    /// as documents so far.
    pub fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Replaces the registry (a superset of the current one, built with
    /// [`Registry::with`]); turns already running keep the one they started with.
    pub fn set_registry(&self, registry: Arc<Registry>) {
        *self.registry.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = registry;
    }
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The version a new session of `flow` would get now, and why.
    pub fn resolve(&self, flow: &str, instance: &InstanceId, contact: &Contact, now: Timestamp) -> Option<Resolution> {
        self.resolver.resolve(&self.registry(), &Query { flow, instance, contact, now })
    }

    /// The whole evaluation behind [`Engine::resolve`], for `explain`.
    pub fn explain(&self, flow: &str, instance: &InstanceId, contact: &Contact, now: Timestamp) -> crate::resolve::Explanation {
        self.resolver.explain(&self.registry(), &Query { flow, instance, contact, now })
    }

    /// Handles one inbound message with the keyword classifiers alone (the
    /// offline behaviour); questions for a model are left in `Turn::requests`.
    #[inline] // the 440-byte turn goes straight to the caller's slot, not copied once more
    pub fn turn(&self, state: ContactState, inbound: &Inbound, now: Timestamp) -> Turn {
        self.turn_with(state, inbound, now, Decisions::default())
    }

    /// [`Engine::turn`] with the model's answers to the requests of an
    /// earlier run of the same turn.
    pub fn turn_with(&self, state: ContactState, inbound: &Inbound, now: Timestamp, decisions: Decisions) -> Turn {
        let mut turn = Turn::new(&inbound.instance, &inbound.contact);
        turn.decisions = decisions;
        turn.remembered = state.assignments;
        if state.handoff_until.is_some_and(|until| now < until) {
            turn.silenced = true;
            return turn;
        }
        // In place, not through `filter` and `map`: a session is 264 bytes to move.
        let mut live = state.session;
        if live.as_ref().is_some_and(|root| !root.is_live()) {
            live = None;
        }
        if !state.calls.is_empty() && let Some(root) = live.take() {
            live = Some(self.innermost(root, state.calls, &mut turn));
        }
        if live.as_ref().is_some_and(|session| self.expires_at(session, &turn) <= now) && let Some(session) = live.take() {
            self.expire_into(session, now, &mut turn);
        }
        let (text, medium) = match &inbound.content {
            Content::Text(text) => (text.as_str(), None),
            Content::Audio { transcript: Some(text) } if !text.trim().is_empty() => (text.as_str(), Some("audio")),
            Content::Attachment(file) if self.accepts_attachments(live.as_ref()) => {
                turn.attachment = Some(Box::new(file.clone()));
                (file.caption.as_deref().unwrap_or(""), Some(file.kind.as_str()))
            }
            Content::Attachment(crate::media::Attachment { caption: Some(caption), kind, .. }) if !caption.trim().is_empty() => {
                (caption.as_str(), Some(kind.as_str()))
            }
            Content::Audio { .. } | Content::Attachment(_) | Content::Unsupported(_) => {
                let session = live.as_ref();
                turn.replies.push(Reply {
                    session: session.map(Session::id),
                    flow: session.map(|s| s.flow().clone()),
                    version: session.map(Session::version),
                    step: session.map(|s| s.step().clone()),
                    text: self.config.texts.unsupported.clone().into(),
                    rich: None,
                });
                return turn;
            }
        };
        let (mut message, mut normalized) = spare::strings();
        message.push_str(text);
        turn.message = Some(message);
        // Once per turn: the commands, the interrupts and the
        // matchers that run through `Ctx::normalized` all read it.
        crate::text::normalize_into(text, &mut normalized);
        let remembered = crate::text::remember_turn_text(text, &normalized);
        turn.normalized = Some(normalized);
        self.handle(live, text, inbound, now, &mut turn);
        self.settle(&mut turn);
        if remembered {
            crate::text::forget_turn_text();
        }
        // Only the turn's steps read these: their buffers serve the next turn.
        spare::keep([turn.message.take(), turn.normalized.take()]);
        if let Some(medium) = medium {
            // On the session that took the message (one that expired
            // before it did not).
            if let Some(session) = turn.sessions.iter().find(|session| session.record.last_input_at == now) {
                let event = self.event(session, now, EventKind::Received { medium: medium.to_owned() });
                turn.events.push(event);
            }
        }
        turn
    }

    /// Whether the live session's current step takes files.
    fn accepts_attachments(&self, live: Option<&Session>) -> bool {
        live.and_then(|session| {
            let registry = self.registry();
            let fv = registry.get(session.flow().as_str(), session.version())?;
            Some(fv.step(session.step().as_str())?.handler.accepts_attachments())
        })
        .unwrap_or(false)
    }

    /// A text turn: global commands, then the live session's step, or a new session.
    fn handle(&self, live: Option<Session>, text: &str, inbound: &Inbound, now: Timestamp, turn: &mut Turn) {
        // Global commands act on a live session in any flow and version.
        // Without one, `menu` and `atendente` are what the entry flow does
        // anyway (it shows the menu, it routes to a person), and `sair` only
        // needs a goodbye.
        let command = GlobalCommands::lookup(&self.commands, turn.normalized.as_deref().unwrap_or(""));
        // Matched apart, not as a pair: the live session is not moved once more.
        let Some(mut session) = live else {
            if matches!(command, Some(Command::Exit)) {
                turn.replies.push(Reply {
                    session: None,
                    flow: None,
                    version: None,
                    step: None,
                    text: self.config.texts.cancelled.clone().into(),
                    rich: None,
                });
            } else {
                self.start(self.config.entry_flow.clone(), text, inbound, now, 0, turn);
            }
            return;
        };
        if let Some(command) = command {
            return self.command(session, command, inbound, now, turn);
        }
        session.record.turns += 1;
        session.record.last_input_at = now;
        session.record.expires_at = now.plus(self.config.session_ttl);
        if let Some(root) = turn.stack.first_mut() {
            root.record.turns += 1;
            root.record.last_input_at = now;
            root.record.expires_at = session.record.expires_at;
        }
        let registry = self.registry();
        match registry.get(session.flow().as_str(), session.version()) {
            None => {
                // The deploy removed this version: fail the session and
                // restart the customer on what resolves now.
                let step = session.step().clone();
                self.end(&mut session, Outcome::Failed, Some("version_gone".to_owned()), now, turn);
                self.unwind(Outcome::Failed, Some("version_gone"), now, turn);
                turn.replies.push(Reply {
                    session: Some(session.id()),
                    flow: Some(session.flow().clone()),
                    version: Some(session.version()),
                    step: Some(step),
                    text: self.config.texts.restarted.clone().into(),
                    rich: None,
                });
                turn.sessions.push(session);
                self.start(self.config.entry_flow.clone(), text, inbound, now, 0, turn);
            }
            Some(fv) => match fv.step(session.step().as_str()) {
                None => {
                    let detail = format!("step '{}' is not in {}", session.step(), fv.label());
                    self.fail(session, detail, now, turn);
                }
                Some(step) => match self.interrupt(fv, &session, turn.normalized.as_deref().unwrap_or("")) {
                    Some(Next::Handover(flow)) => {
                        let detail = format!("handover:{flow}");
                        self.end(&mut session, Outcome::Completed, Some(detail.clone()), now, turn);
                        turn.sessions.push(session);
                        self.unwind(Outcome::Completed, Some(&detail), now, turn);
                        self.start(FlowId::new_static(flow), text, inbound, now, 1, turn);
                    }
                    Some(Next::Goto(target)) => {
                        let Some(step) = fv.step(target) else { return };
                        session.record.step = StepId::new_static(step.id);
                        session.record.attempts = 0;
                        turn.events.push(self.event(&session, now, EventKind::StepEntered));
                        let called = self.call(fv, &mut session, step.handler.as_ref(), Some(text), now, turn, |handler, ctx| {
                            handler.enter(ctx)
                        });
                        self.follow(fv, session, called, text, inbound, now, 0, turn);
                    }
                    Some(to) => {
                        let called = Ok(to.next());
                        self.follow(fv, session, called, text, inbound, now, 0, turn);
                    }
                    None => match self.caller_interrupt(text, turn) {
                        // A change of subject a caller declares leaves the call.
                        Some((depth, target)) => self.leave_call(session, depth, target, text, inbound, now, turn),
                        None => {
                            let called = self.call(fv, &mut session, step.handler.as_ref(), None, now, turn, |handler, ctx| {
                                handler.input(ctx, text)
                            });
                            self.follow(fv, session, called, text, inbound, now, 0, turn);
                        }
                    },
                },
            },
        }
    }

    /// Applies a global command to a live session: it ends at its current
    /// step (`cancelled`, or `handoff` for a person) with the detail
    /// `command:<name>`, so the funnel shows where customers gave up or
    /// asked for a person.
    fn command(&self, mut session: Session, command: Command, inbound: &Inbound, now: Timestamp, turn: &mut Turn) {
        session.record.turns += 1;
        session.record.last_input_at = now;
        let (outcome, text) = match command {
            Command::Menu => (Outcome::Cancelled, None),
            Command::Exit => (Outcome::Cancelled, Some(&self.config.texts.cancelled)),
            Command::Human => (Outcome::Handoff, Some(&self.config.texts.handoff)),
        };
        if let Some(text) = text {
            turn.replies.push(Reply::at(&session, text.clone().into()));
        }
        let detail = format!("command:{}", command.name());
        self.end(&mut session, outcome, Some(detail.clone()), now, turn);
        turn.sessions.push(session);
        self.unwind(outcome, Some(&detail), now, turn);
        match command {
            Command::Menu => self.start(self.config.entry_flow.clone(), "", inbound, now, 0, turn),
            Command::Human => turn.handoff_until = Some(now.plus(self.config.handoff_ttl)),
            Command::Exit => {}
        }
    }

    /// The version's interrupt for the message (`normalized`), unless the
    /// session is already in the target's subroute (or at the target step).
    fn interrupt(&self, fv: &FlowVersion, session: &Session, normalized: &str) -> Option<Next> {
        let to = fv.interrupt_for_normalized(normalized)?;
        if let Next::Goto(target) = to {
            let current = session.step().as_str();
            let same_subroute = match (target.split_once('.'), current.split_once('.')) {
                (Some((a, _)), Some((b, _))) => a == b,
                _ => target == current,
            };
            if same_subroute {
                return None;
            }
        }
        Some(to)
    }

    /// Starts a session of `flow` whose entry step sees `trigger`.
    fn start(&self, flow: FlowId, trigger: &str, inbound: &Inbound, now: Timestamp, handovers: u32, turn: &mut Turn) {
        self.start_at(flow, trigger, inbound, now, handovers, turn, None, None);
    }

    /// [`Engine::start`], optionally at a given step with data carried over
    /// (an evacuation through a step map) instead of the entry step.
    #[allow(clippy::too_many_arguments)] // reason: internal; see `follow`
    fn start_at(
        &self,
        flow: FlowId,
        trigger: &str,
        inbound: &Inbound,
        now: Timestamp,
        handovers: u32,
        turn: &mut Turn,
        resume: Option<(&'static str, Data)>,
        fixed: Option<Version>,
    ) {
        let registry = self.registry();
        let remembered = turn.remembered.iter().find(|(remembered_flow, _, _)| *remembered_flow == flow).map(|(_, version, at)| (*version, *at));
        let query = Query { flow: flow.as_str(), instance: &inbound.instance, contact: &inbound.contact, now };
        let (resolution, remember) = match fixed {
            Some(version) => (Some(Resolution { version, reason: crate::call::fixed_reason() }), false),
            None => self.resolver.resolve_remembering(&registry, &query, remembered),
        };
        if let (true, Some(resolution)) = (remember, &resolution) {
            turn.assignments.push((flow.clone(), resolution.version, now));
        }
        let Some(Resolution { version, reason }) = resolution else {
            // Unreachable with a validated registry: handover targets are checked.
            turn.replies.push(Reply { session: None, flow: Some(flow), version: None, step: None, text: self.config.texts.apology.clone().into(), rich: None });
            turn.handoff_until = Some(now.plus(self.config.handoff_ttl));
            return;
        };
        let Some(fv) = registry.get(flow.as_str(), version) else { return };
        // A callee starts with its caller's data (see `crate::call`).
        let caller = turn.stack.last();
        let (entry, data, trigger) = match resume.and_then(|(step, data)| fv.step(step).map(|step| (step, data))) {
            Some((step, data)) => (step, data, None),
            None => (fv.entry(), caller.map(|caller| caller.data().clone()).unwrap_or_default(), Some(trigger)),
        };
        let expires_at = turn.stack.first().map_or(now.plus(self.config.session_ttl), Session::expires_at);
        let (parent, depth) = caller.map_or((None, 0), |caller| (Some(caller.id()), caller.depth() + 1));
        let mut session = Session {
            record: SessionRecord {
                id: SessionId::generate(now),
                instance: inbound.instance.clone(),
                contact: inbound.contact.clone(),
                flow: fv.flow().clone(),
                version,
                fingerprint: fv.fingerprint().clone(),
                reason: reason.clone(),
                step: StepId::new_static(entry.id),
                data,
                attempts: 0,
                turns: 1,
                started_at: now,
                last_input_at: now,
                expires_at,
                outcome: None,
                ended_at: None,
                revision: 0,
                parent,
                depth,
            },
        };
        if let Some(text) = trigger {
            // Nearly always the turn's message: not copied then.
            let own = (turn.message.as_deref() != Some(text)).then(|| text.to_owned());
            turn.openings.push((session.id(), own));
        }
        turn.events.push(self.event(&session, now, EventKind::Started { reason, fingerprint: fv.fingerprint().clone() }));
        turn.events.push(self.event(&session, now, EventKind::StepEntered));
        let called = self.call(fv, &mut session, entry.handler.as_ref(), trigger, now, turn, |handler, ctx| handler.enter(ctx));
        self.follow(fv, session, called, trigger.unwrap_or(""), inbound, now, handovers, turn);
    }

    /// Applies a handler's `Next` (and the `enter` of every step it leads to)
    /// until the session waits for input or ends.
    #[allow(clippy::too_many_arguments)] // reason: one internal call site shape; a struct would only rename the arguments
    fn follow(
        &self,
        fv: &FlowVersion,
        mut session: Session,
        mut called: Result<Next, Failure>,
        text: &str,
        inbound: &Inbound,
        now: Timestamp,
        handovers: u32,
        turn: &mut Turn,
    ) {
        let mut hops = 0;
        loop {
            let next = match called {
                Ok(next) => next,
                Err(Failure(detail)) => return self.fail(session, detail, now, turn),
            };
            let Some(current) = fv.step(session.step().as_str()) else {
                let detail = format!("step '{}' is not in {}", session.step(), fv.label());
                return self.fail(session, detail, now, turn);
            };
            match next {
                Next::Wait => break,
                Next::Retry => {
                    session.record.attempts += 1;
                    turn.events.push(self.event(&session, now, EventKind::Retried));
                    break;
                }
                Next::Goto(target) => {
                    if !current.targets.contains(&Next::Goto(target)) {
                        let detail = format!("step '{}' went to '{target}', which it does not declare", current.id);
                        return self.fail(session, detail, now, turn);
                    }
                    hops += 1;
                    if hops > MAX_HOPS {
                        let detail = format!("more than {MAX_HOPS} steps entered in one turn (a loop through '{target}')");
                        return self.fail(session, detail, now, turn);
                    }
                    let Some(step) = fv.step(target) else {
                        return self.fail(session, format!("step '{target}' is not in {}", fv.label()), now, turn);
                    };
                    session.record.step = StepId::new_static(step.id);
                    session.record.attempts = 0;
                    turn.events.push(self.event(&session, now, EventKind::StepEntered));
                    called = self.call(fv, &mut session, step.handler.as_ref(), None, now, turn, |handler, ctx| handler.enter(ctx));
                }
                Next::Call(spec) => {
                    if !current.targets.contains(&Next::Call(spec)) {
                        let detail = format!("step '{}' called '{spec}', which it does not declare", current.id);
                        return self.fail(session, detail, now, turn);
                    }
                    return self.call_flow(session, spec, text, inbound, now, handovers, turn);
                }
                Next::Complete if !turn.stack.is_empty() => {
                    self.end(&mut session, Outcome::Completed, Some(crate::call::RETURNED.to_owned()), now, turn);
                    let data = session.data().clone();
                    turn.sessions.push(session);
                    return self.resume(data, text, inbound, now, handovers, turn);
                }
                Next::Complete | Next::Handoff | Next::Cancel => {
                    let outcome = match next {
                        Next::Complete => Outcome::Completed,
                        Next::Handoff => Outcome::Handoff,
                        _ => Outcome::Cancelled,
                    };
                    // A flow that ends the conversation without a word would leave
                    // the customer waiting: say the engine's default instead.
                    let said_something = turn.replies.iter().any(|reply| reply.session == Some(session.id()));
                    let default = match outcome {
                        Outcome::Handoff => Some(&self.config.texts.handoff),
                        Outcome::Cancelled => Some(&self.config.texts.cancelled),
                        _ => None,
                    };
                    if let (false, Some(text)) = (said_something, default) {
                        turn.replies.push(Reply::at(&session, text.clone().into()));
                    }
                    self.end(&mut session, outcome, None, now, turn);
                    if outcome == Outcome::Handoff {
                        turn.handoff_until = Some(now.plus(self.config.handoff_ttl));
                    }
                    turn.sessions.push(session);
                    return self.unwind(outcome, None, now, turn);
                }
                Next::Handover(flow) => {
                    if !current.targets.contains(&Next::Handover(flow)) {
                        let detail = format!("step '{}' handed over to flow '{flow}', which it does not declare", current.id);
                        return self.fail(session, detail, now, turn);
                    }
                    if handovers >= MAX_HANDOVERS {
                        let detail = format!("more than {MAX_HANDOVERS} handovers in one turn (to '{flow}')");
                        return self.fail(session, detail, now, turn);
                    }
                    let detail = ["handover:", flow].concat();
                    if turn.stack.is_empty() {
                        // No caller to end with the same detail: no copy of it.
                        self.end(&mut session, Outcome::Completed, Some(detail), now, turn);
                        turn.sessions.push(session);
                    } else {
                        self.end(&mut session, Outcome::Completed, Some(detail.clone()), now, turn);
                        turn.sessions.push(session);
                        self.unwind(Outcome::Completed, Some(&detail), now, turn);
                    }
                    return self.start(FlowId::new_static(flow), text, inbound, now, handovers + 1, turn);
                }
            }
        }
        turn.sessions.push(session);
    }

    /// Calls one handler with panics caught. Its replies are kept only if it returns.
    #[allow(clippy::too_many_arguments)] // reason: internal helper; see `follow`
    fn call(
        &self,
        fv: &FlowVersion,
        session: &mut Session,
        handler: &dyn Step,
        trigger: Option<&str>,
        now: Timestamp,
        turn: &mut Turn,
        run: impl FnOnce(&dyn Step, &mut Ctx<'_>) -> Next,
    ) -> Result<Next, Failure> {
        let replied = turn.replies.len();
        let mut requests = Vec::new();
        let mut classified = Vec::new();
        let mut slots = Vec::new();
        let attempts = session.record.attempts;
        let id = session.id();
        let opening = turn.openings.iter().find(|(started, _)| *started == id).map(|(_, own)| own.as_deref().or(turn.message.as_deref()).unwrap_or(""));
        let result = {
            let mut ctx = Ctx {
                texts: fv.texts(),
                data: &mut session.record.data,
                replies: &mut turn.replies,
                session: id,
                step: &session.record.step,
                now,
                attempts,
                trigger,
                opening,
                message: turn.message.as_deref(),
                attachment: turn.attachment.as_deref(),
                normalized: turn.normalized.as_deref(),
                deps: fv.deps(),
                slots: &mut slots,
                flow: &session.record.flow,
                version: session.record.version,
                decisions: &turn.decisions,
                requests: &mut requests,
                classified: &mut classified,
                weighed: fv.weighed(),
            };
            catch_unwind(AssertUnwindSafe(|| run(handler, &mut ctx)))
        };
        match result {
            Ok(next) => {
                turn.requests.append(&mut requests);
                for classification in classified {
                    turn.events.push(self.event(session, now, EventKind::Classified(classification)));
                }
                for kind in slots {
                    turn.events.push(self.event(session, now, kind));
                }
                Ok(next)
            }
            Err(payload) => {
                turn.replies.truncate(replied);
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "handler panicked".to_owned());
                Err(Failure(format!("panic in step '{}': {message}", session.step())))
            }
        }
    }

    /// A handler failed: the session ends `failed`, the customer gets an
    /// apology and a human.
    fn fail(&self, mut session: Session, detail: String, now: Timestamp, turn: &mut Turn) {
        self.end(&mut session, Outcome::Failed, Some(detail.clone()), now, turn);
        turn.replies.push(Reply::at(&session, self.config.texts.apology.clone().into()));
        turn.handoff_until = Some(now.plus(self.config.handoff_ttl));
        turn.sessions.push(session);
        self.unwind(Outcome::Failed, Some(&detail), now, turn);
    }

    fn end(&self, session: &mut Session, outcome: Outcome, detail: Option<String>, now: Timestamp, turn: &mut Turn) {
        session.end(outcome, now);
        turn.events.push(self.event(session, now, EventKind::Ended { outcome, detail }));
    }

    fn event(&self, session: &Session, at: Timestamp, kind: EventKind) -> Event {
        Event {
            session: session.id(),
            flow: session.flow().clone(),
            version: session.version(),
            at,
            step: Some(session.step().clone()),
            kind,
        }
    }
}
