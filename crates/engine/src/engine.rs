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
    /// A voice note, with its transcript when one exists (the channel's or
    /// one made before the turn): the turn reads the transcript as text and
    /// records a `received` event `audio`. Without one: the "please type"
    /// answer.
    Audio { transcript: Option<String> },
    /// An image or document, by reference (see [`crate::media`]).
    Attachment(crate::media::Attachment),
    /// Something the bot cannot read (`sticker`, `location` ...).
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
    /// The contact's live session, if any (possibly past its expiry).
    pub session: Option<Session>,
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
    /// A file to send with `text` as caption, or the menu options `text`
    /// lists; `None` for plain text.
    pub rich: Option<crate::media::Rich>,
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
            rich: None,
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
    /// The file the customer sent, for a step that accepts files (`Ctx::attachment`).
    attachment: Option<crate::media::Attachment>,
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
            attachment: None,
        }
    }

    /// Sessions that ended in this turn, with their outcome.
    pub fn ended(&self) -> impl Iterator<Item = &Session> {
        self.sessions.iter().filter(|session| !session.is_live())
    }

    /// The contact's live session after the turn.
    pub fn live(&self) -> Option<&Session> {
        self.sessions.iter().rev().find(|session| session.is_live())
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
        let mut live = state.session.filter(Session::is_live);
        if live.as_ref().is_some_and(|session| session.expires_at() <= now) {
            if let Some(session) = live.take() {
                self.expire_into(session, now, &mut turn);
            }
        }
        let (text, medium) = match &inbound.content {
            Content::Text(text) => (text.as_str(), None),
            Content::Audio { transcript: Some(text) } if !text.trim().is_empty() => (text.as_str(), Some("audio")),
            Content::Attachment(file) if self.accepts_attachments(live.as_ref()) => {
                turn.attachment = Some(file.clone());
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
                    text: self.config.texts.unsupported.clone(),
                    rich: None,
                });
                return turn;
            }
        };
        turn.message = Some(text.to_owned());
        self.handle(live, text, inbound, now, &mut turn);
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
            let fv = self.registry.get(session.flow().as_str(), session.version())?;
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
        match (self.config.commands.find(text), live) {
            (Some(command), Some(session)) => self.command(session, command, inbound, now, turn),
            (Some(Command::Exit), None) => turn.replies.push(Reply {
                session: None,
                flow: None,
                version: None,
                step: None,
                text: self.config.texts.cancelled.clone(),
                rich: None,
            }),
            (_, None) => self.start(self.config.entry_flow.clone(), text, inbound, now, 0, turn),
            (None, Some(mut session)) => {
                session.record.turns += 1;
                session.record.last_input_at = now;
                session.record.expires_at = now.plus(self.config.session_ttl);
                let registry = Arc::clone(&self.registry);
                match registry.get(session.flow().as_str(), session.version()) {
                    None => {
                        // The deploy removed this version: fail the session and
                        // restart the customer on what resolves now.
                        let step = session.step().clone();
                        self.end(&mut session, Outcome::Failed, Some("version_gone".to_owned()), now, turn);
                        turn.replies.push(Reply {
                            session: Some(session.id()),
                            flow: Some(session.flow().clone()),
                            version: Some(session.version()),
                            step: Some(step),
                            text: self.config.texts.restarted.clone(),
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
                        Some(step) => match self.interrupt(fv, &session, text) {
                            Some(Next::Handover(flow)) => {
                                self.end(&mut session, Outcome::Completed, Some(format!("handover:{flow}")), now, turn);
                                turn.sessions.push(session);
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
                            None => {
                                let called = self.call(fv, &mut session, step.handler.as_ref(), None, now, turn, |handler, ctx| {
                                    handler.input(ctx, text)
                                });
                                self.follow(fv, session, called, text, inbound, now, 0, turn);
                            }
                        },
                    },
                }
            }
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
            turn.replies.push(Reply::at(&session, text.clone()));
        }
        self.end(&mut session, outcome, Some(format!("command:{}", command.name())), now, turn);
        turn.sessions.push(session);
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
            .registry
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

    fn expire_into(&self, mut session: Session, now: Timestamp, turn: &mut Turn) {
        let at = session.expires_at().min(now);
        self.end(&mut session, Outcome::Expired, None, at, turn);
        turn.sessions.push(session);
    }

    /// Starts a session of `flow` whose entry step sees `trigger`.
    fn start(&self, flow: FlowId, trigger: &str, inbound: &Inbound, now: Timestamp, handovers: u32, turn: &mut Turn) {
        self.start_at(flow, trigger, inbound, now, handovers, turn, None);
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
    ) {
        let registry = Arc::clone(&self.registry);
        let remembered = turn.remembered.iter().find(|(remembered_flow, _, _)| *remembered_flow == flow).map(|(_, version, at)| (*version, *at));
        let query = Query { flow: flow.as_str(), instance: &inbound.instance, contact: &inbound.contact, now };
        let (resolution, remember) = self.resolver.resolve_remembering(&registry, &query, remembered);
        if let (true, Some(resolution)) = (remember, &resolution) {
            turn.assignments.push((flow.clone(), resolution.version, now));
        }
        let Some(Resolution { version, reason }) = resolution else {
            // Unreachable with a validated registry: handover targets are checked.
            turn.replies.push(Reply { session: None, flow: Some(flow), version: None, step: None, text: self.config.texts.apology.clone(), rich: None });
            turn.handoff_until = Some(now.plus(self.config.handoff_ttl));
            return;
        };
        let Some(fv) = registry.get(flow.as_str(), version) else { return };
        let (entry, data, trigger) = match resume.and_then(|(step, data)| fv.step(step).map(|step| (step, data))) {
            Some((step, data)) => (step, data, None),
            None => (fv.entry(), Data::default(), Some(trigger)),
        };
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
                expires_at: now.plus(self.config.session_ttl),
                outcome: None,
                ended_at: None,
                revision: 0,
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
                    break;
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
                    self.end(&mut session, Outcome::Completed, Some(format!("handover:{flow}")), now, turn);
                    turn.sessions.push(session);
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
                attachment: turn.attachment.as_ref(),
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
                for (text, rich) in replies {
                    turn.replies.push(Reply {
                        session: Some(session.id()),
                        flow: Some(session.flow().clone()),
                        version: Some(session.version()),
                        step: Some(session.step().clone()),
                        text,
                        rich,
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
        self.end(&mut session, Outcome::Failed, Some(detail), now, turn);
        turn.replies.push(Reply::at(&session, self.config.texts.apology.clone()));
        turn.handoff_until = Some(now.plus(self.config.handoff_ttl));
        turn.sessions.push(session);
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
