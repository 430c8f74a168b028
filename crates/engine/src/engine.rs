//! One turn of a conversation, as a pure function:
//! (contact state, inbound message, now) -> (sessions, events, replies).
//!
//! The caller loads the contact's state from the store, calls [`Engine::turn`]
//! and commits the returned [`Turn`] in one transaction. Nothing here reads a
//! clock, a database or the network.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use crate::classify::{Decisions, Request};
use crate::event::{Event, EventKind};
use crate::flow::{Ctx, Next, Step};
use crate::ids::{Contact, FlowId, InstanceId, SessionId, StepId, Version};
use crate::registry::{FlowVersion, Registry};
use crate::resolve::{Query, Resolution, Resolver};
use crate::session::{Data, Outcome, Session, SessionRecord};
use crate::time::Timestamp;

mod stack;

/// Texts the engine itself sends, in every flow. pt-BR defaults.
#[derive(Clone, Debug)]
pub struct EngineTexts {
    /// After a handler failed: the customer is handed to a human.
    pub apology: String,
    /// For audio, stickers, documents without caption ...
    pub unsupported: String,
    /// When the version a live session was pinned to is gone from this build.
    pub restarted: String,
    /// A handoff the flow did not announce itself: never leave the customer in silence.
    pub handoff: String,
    /// A cancellation the flow did not announce itself.
    pub cancelled: String,
}

impl Default for EngineTexts {
    fn default() -> EngineTexts {
        EngineTexts {
            apology: "Desculpe, tive um problema aqui do meu lado. 😔 Já chamei uma pessoa da nossa equipe para continuar o seu atendimento."
                .to_owned(),
            unsupported: "Por enquanto eu só consigo entender mensagens de texto. Pode escrever, por favor? 🙂".to_owned(),
            restarted: "Desculpe, precisei reiniciar o nosso atendimento. Vamos recomeçar:".to_owned(),
            handoff: "Vou te passar para uma pessoa da nossa equipe. Aguarde um instante, por favor. 🙂".to_owned(),
            cancelled: "Tudo bem, encerrei o atendimento. Quando precisar, é só mandar uma mensagem. 👋".to_owned(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Silence after which a session expires (sliding). Default 30 minutes.
    pub session_ttl: Duration,
    /// How long the bot stays silent after a handoff unless released. Default 24 hours.
    pub handoff_ttl: Duration,
    /// The flow a contact without a session starts in.
    pub entry_flow: FlowId,
    pub texts: EngineTexts,
    /// Words that act in every flow and version (`menu`, `sair`, `atendente`).
    pub commands: GlobalCommands,
}

/// What a global command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// End the session (`cancelled`) and show the main menu (the entry flow).
    Menu,
    /// End the session politely (`cancelled`).
    Exit,
    /// Hand the customer to a human at once (`handoff`).
    Human,
}

impl Command {
    /// The name recorded in the `Ended` event's detail as `command:<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Command::Menu => "menu",
            Command::Exit => "exit",
            Command::Human => "human",
        }
    }
}

/// The words of each global command. A message is a command only when the
/// whole message, normalised ([`crate::text::normalize`]), is one of them:
/// "sair" ends the session, "quero sair do plano" is left to the flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalCommands {
    pub menu: Vec<String>,
    pub exit: Vec<String>,
    pub human: Vec<String>,
}

impl Default for GlobalCommands {
    fn default() -> GlobalCommands {
        let words = |list: &[&str]| list.iter().map(|word| (*word).to_owned()).collect();
        GlobalCommands {
            menu: words(&["menu"]),
            exit: words(&["sair", "encerrar"]),
            human: words(&["atendente", "humano"]),
        }
    }
}

impl GlobalCommands {
    /// No command at all (a deployment that wants the flows to decide everything).
    pub fn none() -> GlobalCommands {
        GlobalCommands { menu: Vec::new(), exit: Vec::new(), human: Vec::new() }
    }

    /// The command `text` is, if any.
    pub fn find(&self, text: &str) -> Option<Command> {
        let text = crate::text::normalize(text);
        if text.is_empty() {
            return None;
        }
        let is = |words: &[String]| words.iter().any(|word| crate::text::normalize(word) == text);
        if is(&self.menu) {
            Some(Command::Menu)
        } else if is(&self.exit) {
            Some(Command::Exit)
        } else if is(&self.human) {
            Some(Command::Human)
        } else {
            None
        }
    }
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            session_ttl: Duration::from_secs(30 * 60),
            handoff_ttl: Duration::from_secs(24 * 60 * 60),
            entry_flow: FlowId::new_static("unknown"),
            texts: EngineTexts::default(),
            commands: GlobalCommands::default(),
        }
    }
}

/// What the customer sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Text(String),
    /// Something the bot cannot read (`audio`, `sticker`, `document` ...).
    Unsupported(String),
}

#[derive(Clone, Debug)]
pub struct Inbound {
    pub instance: InstanceId,
    pub contact: Contact,
    pub content: Content,
}

/// What the store knows about a contact before the turn.
#[derive(Clone, Debug, Default)]
pub struct ContactState {
    /// The contact's live session, if any (possibly past its expiry): the
    /// outermost one when it called other flows.
    pub session: Option<Session>,
    /// The live sessions `session` called and is waiting for, outermost
    /// first (the stack of [`crate::call`]); empty without a call.
    pub calls: Vec<Session>,
    /// The bot is silent for this contact until then (after a handoff).
    pub handoff_until: Option<Timestamp>,
    /// Versions a split assigned this contact, per flow, and when
    /// (assignment memory: a split with `memory_days` keeps them there).
    pub assignments: Vec<(FlowId, Version, Timestamp)>,
}

/// One message to the customer, with the session context it was sent in.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub session: Option<SessionId>,
    pub flow: Option<FlowId>,
    pub version: Option<Version>,
    pub step: Option<StepId>,
    pub text: String,
}

impl Reply {
    /// A reply in `session`'s context, at its current step.
    fn at(session: &Session, text: String) -> Reply {
        Reply {
            session: Some(session.id()),
            flow: Some(session.flow().clone()),
            version: Some(session.version()),
            step: Some(session.step().clone()),
            text,
        }
    }
}

/// Everything a turn changed, to be committed in one transaction.
#[derive(Clone, Debug)]
pub struct Turn {
    pub instance: InstanceId,
    pub contact: Contact,
    /// Every session the turn touched, in its final state. `revision` is still
    /// the one loaded (0 for new sessions): the store checks it and bumps it.
    pub sessions: Vec<Session>,
    pub events: Vec<Event>,
    pub replies: Vec<Reply>,
    /// Set when the turn handed the contact to a human.
    pub handoff_until: Option<Timestamp>,
    /// The message arrived while a human has the conversation: stored, not answered.
    pub silenced: bool,
    /// Split assignments to remember for this contact: (flow, version, at).
    pub assignments: Vec<(FlowId, Version, Timestamp)>,
    /// Questions for the model the steps found no answer to in this turn's
    /// decisions; the keyword classifier decided them. The service layer may
    /// ask the model and run the turn again (see [`crate::service::run_turn`]).
    pub requests: Vec<Request>,
    /// The contact's assignments as loaded, for resolving sessions started in this turn.
    remembered: Vec<(FlowId, Version, Timestamp)>,
    /// The model's answers this turn runs with.
    decisions: Decisions,
    /// Sessions started in this turn, with the message that started them (`Ctx::opening`).
    openings: Vec<(SessionId, String)>,
    /// The customer's text this turn handles (`Ctx::message`).
    message: Option<String>,
    /// The callers of the session being run, outermost first (empty without a call).
    stack: Vec<Session>,
    /// Calls made in this turn; more than `MAX_HOPS` is a loop.
    calls: u32,
}

impl Turn {
    fn new(instance: &InstanceId, contact: &Contact) -> Turn {
        Turn {
            instance: instance.clone(),
            contact: contact.clone(),
            sessions: Vec::new(),
            events: Vec::new(),
            replies: Vec::new(),
            handoff_until: None,
            silenced: false,
            assignments: Vec::new(),
            requests: Vec::new(),
            remembered: Vec::new(),
            decisions: Decisions::default(),
            openings: Vec::new(),
            message: None,
            stack: Vec::new(),
            calls: 0,
        }
    }

    /// Sessions that ended in this turn, with their outcome.
    pub fn ended(&self) -> impl Iterator<Item = &Session> {
        self.sessions.iter().filter(|session| !session.is_live())
    }

    /// The contact's live session after the turn: the innermost one when
    /// it is inside a call.
    pub fn live(&self) -> Option<&Session> {
        self.sessions.iter().filter(|session| session.is_live()).max_by_key(|session| session.depth())
    }
}

/// A handover chain longer than this (unknown -> billing -> ...) is a bug.
const MAX_HANDOVERS: u32 = 4;
/// Steps entered in one turn without waiting for input; more is a loop.
const MAX_HOPS: u32 = 32;

pub struct Engine {
    registry: Arc<Registry>,
    resolver: Resolver,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("registry", &self.registry).field("resolver", &self.resolver).finish()
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
        Ok(Engine { registry, resolver, config })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The version a new session of `flow` would get now, and why.
    pub fn resolve(&self, flow: &str, instance: &InstanceId, contact: &Contact, now: Timestamp) -> Option<Resolution> {
        self.resolver.resolve(&self.registry, &Query { flow, instance, contact, now })
    }

    /// The whole evaluation behind [`Engine::resolve`], for `explain`.
    pub fn explain(&self, flow: &str, instance: &InstanceId, contact: &Contact, now: Timestamp) -> crate::resolve::Explanation {
        self.resolver.explain(&self.registry, &Query { flow, instance, contact, now })
    }

    /// Handles one inbound message with the keyword classifiers alone (the
    /// offline behaviour); questions for a model are left in `Turn::requests`.
    pub fn turn(&self, state: ContactState, inbound: &Inbound, now: Timestamp) -> Turn {
        self.turn_with(state, inbound, now, Decisions::default())
    }

    /// [`Engine::turn`] with the model's answers to the requests of an
    /// earlier run of the same turn.
    pub fn turn_with(&self, state: ContactState, inbound: &Inbound, now: Timestamp, decisions: Decisions) -> Turn {
        let mut turn = Turn::new(&inbound.instance, &inbound.contact);
        turn.decisions = decisions;
        turn.remembered = state.assignments.clone();
        if state.handoff_until.is_some_and(|until| now < until) {
            turn.silenced = true;
            return turn;
        }
        let mut live = state.session.filter(Session::is_live).map(|root| self.innermost(root, state.calls, &mut turn));
        if live.as_ref().is_some_and(|session| self.expires_at(session, &turn) <= now) {
            if let Some(session) = live.take() {
                self.expire_into(session, now, &mut turn);
            }
        }
        let text = match &inbound.content {
            Content::Text(text) => {
                turn.message = Some(text.clone());
                text.as_str()
            }
            Content::Unsupported(_) => {
                let session = live.as_ref();
                turn.replies.push(Reply {
                    session: session.map(Session::id),
                    flow: session.map(|s| s.flow().clone()),
                    version: session.map(Session::version),
                    step: session.map(|s| s.step().clone()),
                    text: self.config.texts.unsupported.clone(),
                });
                return turn;
            }
        };
        // Global commands act on a live session in any flow and version.
        // Without one, `menu` and `atendente` are what the entry flow does
        // anyway (it shows the menu, it routes to a person), and `sair` only
        // needs a goodbye.
        match (self.config.commands.find(text), live) {
            (Some(command), Some(session)) => self.command(session, command, inbound, now, &mut turn),
            (Some(Command::Exit), None) => turn.replies.push(Reply {
                session: None,
                flow: None,
                version: None,
                step: None,
                text: self.config.texts.cancelled.clone(),
            }),
            (_, None) => self.start(self.config.entry_flow.clone(), text, inbound, now, 0, &mut turn),
            (None, Some(mut session)) => {
                session.record.turns += 1;
                session.record.last_input_at = now;
                session.record.expires_at = now.plus(self.config.session_ttl);
                if let Some(root) = turn.stack.first_mut() {
                    root.record.turns += 1;
                    root.record.last_input_at = now;
                    root.record.expires_at = session.record.expires_at;
                }
                let registry = Arc::clone(&self.registry);
                match registry.get(session.flow().as_str(), session.version()) {
                    None => {
                        // The deploy removed this version: fail the session and
                        // restart the customer on what resolves now.
                        let step = session.step().clone();
                        self.end(&mut session, Outcome::Failed, Some("version_gone".to_owned()), now, &mut turn);
                        self.unwind(Outcome::Failed, Some("version_gone"), now, &mut turn);
                        turn.replies.push(Reply {
                            session: Some(session.id()),
                            flow: Some(session.flow().clone()),
                            version: Some(session.version()),
                            step: Some(step),
                            text: self.config.texts.restarted.clone(),
                        });
                        turn.sessions.push(session);
                        self.start(self.config.entry_flow.clone(), text, inbound, now, 0, &mut turn);
                    }
                    Some(fv) => match fv.step(session.step().as_str()) {
                        None => {
                            let detail = format!("step '{}' is not in {}", session.step(), fv.label());
                            self.fail(session, detail, now, &mut turn);
                        }
                        Some(step) => match self.interrupt(fv, &session, text) {
                            Some(Next::Handover(flow)) => {
                                let detail = format!("handover:{flow}");
                                self.end(&mut session, Outcome::Completed, Some(detail.clone()), now, &mut turn);
                                turn.sessions.push(session);
                                self.unwind(Outcome::Completed, Some(&detail), now, &mut turn);
                                self.start(FlowId::new_static(flow), text, inbound, now, 1, &mut turn);
                            }
                            Some(Next::Goto(target)) => {
                                let Some(step) = fv.step(target) else { return turn };
                                session.record.step = StepId::new_static(step.id);
                                session.record.attempts = 0;
                                turn.events.push(self.event(&session, now, EventKind::StepEntered));
                                let called = self.call(fv, &mut session, step.handler.as_ref(), Some(text), now, &mut turn, |handler, ctx| {
                                    handler.enter(ctx)
                                });
                                self.follow(fv, session, called, text, inbound, now, 0, &mut turn);
                            }
                            Some(to) => {
                                let called = Ok(to.next());
                                self.follow(fv, session, called, text, inbound, now, 0, &mut turn);
                            }
                            None => {
                                let called = self.call(fv, &mut session, step.handler.as_ref(), None, now, &mut turn, |handler, ctx| {
                                    handler.input(ctx, text)
                                });
                                self.follow(fv, session, called, text, inbound, now, 0, &mut turn);
                            }
                        },
                    },
                }
            }
        }
        self.settle(&mut turn);
        turn
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
            turn.replies.push(Reply::at(&session, text.clone()));
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

    /// The version's interrupt for `text`, unless the session is already in
    /// the target's subroute (or at the target step).
    fn interrupt(&self, fv: &FlowVersion, session: &Session, text: &str) -> Option<Next> {
        let to = fv.interrupt_for(text)?;
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
        let mut session = session;
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
            text: self.config.texts.restarted.clone(),
        });
        let resume = self
            .registry
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
    fn expire_into(&self, mut session: Session, now: Timestamp, turn: &mut Turn) {
        let at = self.expires_at(&session, turn).min(now);
        self.end(&mut session, Outcome::Expired, None, at, turn);
        turn.sessions.push(session);
        self.unwind(Outcome::Expired, None, at, turn);
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
        let registry = Arc::clone(&self.registry);
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
            turn.replies.push(Reply { session: None, flow: Some(flow), version: None, step: None, text: self.config.texts.apology.clone() });
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
            turn.openings.push((session.id(), text.to_owned()));
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
                        turn.replies.push(Reply::at(&session, text.clone()));
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
                    let detail = format!("handover:{flow}");
                    self.end(&mut session, Outcome::Completed, Some(detail.clone()), now, turn);
                    turn.sessions.push(session);
                    self.unwind(Outcome::Completed, Some(&detail), now, turn);
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
        let mut replies = Vec::new();
        let mut requests = Vec::new();
        let mut classified = Vec::new();
        let mut slots = Vec::new();
        let attempts = session.record.attempts;
        let id = session.id();
        let opening = turn.openings.iter().find(|(started, _)| *started == id).map(|(_, text)| text.as_str());
        let result = {
            let mut ctx = Ctx {
                texts: fv.texts(),
                data: &mut session.record.data,
                replies: &mut replies,
                now,
                attempts,
                trigger,
                opening,
                message: turn.message.as_deref(),
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
                for text in replies {
                    turn.replies.push(Reply {
                        session: Some(session.id()),
                        flow: Some(session.flow().clone()),
                        version: Some(session.version()),
                        step: Some(session.step().clone()),
                        text,
                    });
                }
                Ok(next)
            }
            Err(payload) => {
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
        turn.replies.push(Reply::at(&session, self.config.texts.apology.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_the_whole_message_normalised() {
        let commands = GlobalCommands::default();
        assert_eq!(commands.find("Menu"), Some(Command::Menu));
        assert_eq!(commands.find("  SAIR! "), Some(Command::Exit));
        assert_eq!(commands.find("encerrar"), Some(Command::Exit));
        assert_eq!(commands.find("Atendente"), Some(Command::Human));
        assert_eq!(commands.find("humano"), Some(Command::Human));
        assert_eq!(commands.find("quero sair do plano"), None);
        assert_eq!(commands.find("o menu"), None);
        assert_eq!(commands.find(""), None);
        assert_eq!(GlobalCommands::none().find("menu"), None);
        let custom = GlobalCommands { menu: vec!["Início".to_owned()], ..GlobalCommands::none() };
        assert_eq!(custom.find("inicio"), Some(Command::Menu));
    }
}
