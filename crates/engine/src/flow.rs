//! What a flow author writes: a [`VersionDecl`] with its steps, each step a
//! [`Step`] handler that sends texts when entered and handles the customer's
//! reply by returning a [`Next`].
//!
//! Declarations are raw: nothing is checked here. [`crate::registry`] turns them
//! into checked versions once every step name is known (dangling transitions,
//! unreachable steps, missing texts).
//!
//! Wrong customer input is never an error: a handler answers with a re-prompt
//! (`Next::Retry`). A handler that panics fails only its session.

use crate::classify::{self, Answer, Classification, Classifier, Decisions, Request, Task};
use crate::engine::{Reply, ReplyText};
use crate::ids::{FlowId, Fingerprint, SessionId, StepId, Version};
use crate::session::Data;
use crate::text::{self, Texts};
use crate::time::Timestamp;

/// Declared lifecycle of a version.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Lifecycle {
    /// The version new sessions get by default. Exactly one per flow.
    Active,
    /// Deployed and reachable only through rollout rules (override, pin, split ...).
    Inactive,
    /// Kept compiled and tested, never chosen by default.
    Deprecated,
}

impl Lifecycle {
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Active => "active",
            Lifecycle::Inactive => "inactive",
            Lifecycle::Deprecated => "deprecated",
        }
    }
}

/// Where to go next: what a handler returns, what a step declares it may
/// reach ([`Step::targets`]), what a menu option or an interrupt leads to.
/// One enum for all three, so a transition is written the same way
/// everywhere. `Target` and [`crate::kinds::To`] are aliases kept for the
/// released version folders, which also write `To::Step(..)` and
/// `To::Flow(..)` (see [`Next::Step`], [`Next::Flow`]).
///
/// Only `Goto`, `Handover` and `Call` are transitions the registry checks;
/// the others never need declaring.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Next {
    /// Stay at this step and wait for the customer's next message.
    Wait,
    /// The input was not understood: stay, and count a failed attempt (a re-prompt).
    Retry,
    /// Enter another step of the same version (which runs its `enter`).
    Goto(&'static str),
    /// The session reached its goal.
    Complete,
    /// A human takes over; the bot goes silent for this contact.
    Handoff,
    /// The customer gave up (a global command such as `sair`).
    Cancel,
    /// End this session and start one of another flow, with its own version
    /// resolution. The text that caused the move is handed to the new flow
    /// (see [`Ctx::trigger`] and [`Ctx::opening`]).
    Handover(&'static str),
    /// Run another flow and come back (a subroute versioned on its own):
    /// `"flow"` resolves the callee's version by its own policy at the
    /// moment of the call, exactly as for a new session; `"flow@vN"` fixes
    /// it. The caller waits at this step; when the callee completes, its data
    /// becomes the caller's and the step's [`Step::returned`] says where to
    /// go. See [`crate::call`].
    Call(&'static str),
}

/// The transitions a step declares: [`Next::Goto`], [`Next::Handover`] and [`Next::Call`].
pub type Target = Next;

#[allow(non_snake_case)] // reason: constructors named like the variants of the enums this one replaced
impl Next {
    /// `Next::Goto(step)`, as the former `To::Step` / `Target::Step` wrote it.
    pub const fn Step(step: &'static str) -> Next {
        Next::Goto(step)
    }
    /// `Next::Handover(flow)`, as the former `To::Flow` / `Target::Flow` wrote it.
    pub const fn Flow(flow: &'static str) -> Next {
        Next::Handover(flow)
    }
}

impl Next {
    /// Itself (kept from the former `To::next`).
    pub fn next(self) -> Next {
        self
    }
    /// Itself when it is a transition to declare (`Goto`, `Handover`, `Call`).
    pub fn target(self) -> Option<Next> {
        match self {
            Next::Goto(_) | Next::Handover(_) | Next::Call(_) => Some(self),
            _ => None,
        }
    }
}

/// A version's dependencies (the back office ...), shared by every session.
pub type Deps = std::sync::Arc<dyn std::any::Any + Send + Sync>;

/// What a handler can see and do during one call.
pub struct Ctx<'a> {
    pub(crate) texts: &'a Texts,
    pub(crate) data: &'a mut Data,
    /// The turn's replies: this call's are appended (and dropped again if
    /// the handler panics).
    pub(crate) replies: &'a mut Vec<Reply>,
    /// The session and step the replies are sent from.
    pub(crate) session: SessionId,
    pub(crate) step: &'a StepId,
    /// The file the customer attached, offered to a step that accepts files.
    pub(crate) attachment: Option<&'a crate::media::Attachment>,
    pub(crate) now: Timestamp,
    pub(crate) attempts: u32,
    pub(crate) trigger: Option<&'a str>,
    /// The message that started the session, during the turn that started it.
    pub(crate) opening: Option<&'a str>,
    /// The customer's message this turn handles (`None` in an evacuation).
    pub(crate) message: Option<&'a str>,
    /// `message` normalised, once per turn (see [`Ctx::normalized`]).
    pub(crate) normalized: Option<&'a str>,
    /// The version's dependencies ([`VersionDecl::deps`]).
    pub(crate) deps: Option<&'a (dyn std::any::Any + Send + Sync)>,
    /// Form events of this call (`slot_filled`, `slot_missed`).
    pub(crate) slots: &'a mut Vec<crate::event::EventKind>,
    pub(crate) flow: &'a FlowId,
    pub(crate) version: Version,
    /// The model's answers for this turn (empty offline and in the first run).
    pub(crate) decisions: &'a Decisions,
    /// Questions for the model this call could not find an answer to.
    pub(crate) requests: &'a mut Vec<Request>,
    /// Decisions taken during this call, turned into events by the engine.
    pub(crate) classified: &'a mut Vec<Classification>,
    /// The version's weighed tasks with their trained classifiers.
    pub(crate) weighed: &'a [crate::trained::TrainedTask],
}

impl<'a> Ctx<'a> {
    /// Sends the version's text `key`, with `{name}` filled from session data.
    ///
    /// # Panics
    /// When the version has no text `key`; the engine turns that into a failed
    /// session, and the transcript tests catch it before release.
    pub fn say(&mut self, key: &str) {
        let text = self.reply_text(key, &[]);
        self.push(text, None);
    }

    /// Like [`Ctx::say`], with extra values for `{name}` placeholders.
    pub fn say_with(&mut self, key: &str, values: &[(&str, &str)]) {
        let text = self.reply_text(key, values);
        self.push(text, None);
    }

    /// Sends text that was built by the handler (for example a list from the backend).
    pub fn say_raw(&mut self, text: impl Into<String>) {
        self.push(ReplyText::from(text.into()), None);
    }

    /// Sends the version's text `key` as a numbered menu of `options`
    /// options: the text everywhere, and the option titles for channels
    /// that can show buttons or a list (see [`crate::media::menu_titles`];
    /// a text whose numbered lines do not match goes as text alone).
    pub fn say_menu(&mut self, key: &str, options: usize) {
        let (text, rich) = match self.texts.constant_menu(key) {
            // A constant menu's titles are read once per version.
            Some((text, titles)) => {
                let titles = titles.filter(|titles| titles.len() == options && options > 0);
                (ReplyText::from(text.clone()), titles.map(|titles| crate::media::Rich::Choices(titles.clone())))
            }
            None => {
                let text = self.reply_text(key, &[]);
                let rich = crate::media::menu_titles(&text, options).map(|titles| crate::media::Rich::Choices(titles.into()));
                (text, rich)
            }
        };
        self.push(text, rich);
    }

    /// Sends a file, with the version's text `caption_key` (rendered with
    /// `values`) as its caption.
    pub fn send_file(&mut self, file: crate::media::OutgoingFile, caption_key: &str, values: &[(&str, &str)]) {
        let caption = self.reply_text(caption_key, values);
        self.push(caption, Some(crate::media::Rich::File(file)));
    }

    fn push(&mut self, text: ReplyText, rich: Option<crate::media::Rich>) {
        self.replies.push(Reply {
            session: Some(self.session),
            flow: Some(self.flow.clone()),
            version: Some(self.version),
            step: Some(self.step.clone()),
            text,
            rich,
        });
    }

    /// The text `key` for a reply: a constant one shared with the version,
    /// otherwise rendered ([`Ctx::render`]).
    fn reply_text(&self, key: &str, values: &[(&str, &str)]) -> ReplyText {
        match self.texts.constant(key) {
            Some(text) => ReplyText::from(text.clone()),
            None => ReplyText::from(self.render(key, values)),
        }
    }

    /// The file the customer sent with this message, at a step that
    /// accepts files ([`Step::accepts_attachments`]); `None` elsewhere.
    pub fn attachment(&self) -> Option<&'a crate::media::Attachment> {
        self.attachment
    }

    /// The version's text `key` rendered, without sending it.
    pub fn render(&self, key: &str, values: &[(&str, &str)]) -> String {
        let data = &*self.data;
        let rendered = self.texts.render(key, |name| {
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| *value)
                .or_else(|| data.get(name))
        });
        match rendered {
            Some(rendered) => rendered,
            None => panic!("text '{key}' is missing from this version's texts.txt"),
        }
    }

    pub fn data(&self) -> &Data {
        self.data
    }
    pub fn data_mut(&mut self) -> &mut Data {
        self.data
    }
    pub fn now(&self) -> Timestamp {
        self.now
    }
    /// Failed attempts (`Next::Retry`) at the current step so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    /// In `enter` of a session's first step: the customer message that started
    /// the session (or that the previous flow handed over). `None` elsewhere.
    pub fn trigger(&self) -> Option<&'a str> {
        self.trigger
    }
    /// The customer message that started this session (for a session a
    /// previous flow handed over, the message that caused the handover), in
    /// every step entered during the turn that started it, so a step after
    /// the entry can still read what the first message said. `None` in later
    /// turns and for an empty trigger.
    pub fn opening(&self) -> Option<&'a str> {
        self.opening.filter(|text| !text.trim().is_empty())
    }
    /// The customer's message this turn handles, in every step the turn
    /// runs (`input` and each `enter` it leads to), so a step entered after
    /// a routing step can read what the message said. `None` when the turn
    /// has no message (an evacuation) or it is blank.
    pub fn message(&self) -> Option<&'a str> {
        self.message.filter(|text| !text.trim().is_empty())
    }
    /// `text` normalised ([`text::normalize`]). When `text` is the turn's
    /// message (what `input` receives, or `message()`), the engine's single
    /// normalisation of it is borrowed instead of normalising again.
    pub fn normalized(&self, text: &str) -> std::borrow::Cow<'a, str> {
        match (self.message, self.normalized) {
            (Some(message), Some(normalized)) if message == text => std::borrow::Cow::Borrowed(normalized),
            _ => std::borrow::Cow::Owned(text::normalize(text)),
        }
    }
    /// The version's dependencies, as declared with [`VersionDecl::deps`], so
    /// handlers can be plain functions.
    ///
    /// # Panics
    /// When the version declared none or another type: a bug the version's
    /// first transcript shows (the engine fails that session, never others).
    pub fn deps<T: 'static>(&self) -> &'a T {
        match self.deps.and_then(|deps| deps.downcast_ref::<T>()) {
            Some(deps) => deps,
            None => panic!("this version declares no dependencies of type {}", std::any::type_name::<T>()),
        }
    }
    /// Records a form event for this turn (see [`crate::form`]).
    pub(crate) fn slot_event(&mut self, kind: crate::event::EventKind) {
        self.slots.push(kind);
    }

    /// Which of `task`'s classes `text` names. The keyword classifier goes
    /// first; when it is sure the model is never asked, and neither is it for
    /// text without words (menu numbers, emoji). Otherwise the model's answer
    /// for this turn decides if it names one of the classes; without one (no
    /// model configured, a failure, a timeout, an invalid class) the keyword
    /// result stands. Each decision becomes a `classified` event.
    pub fn classify(&mut self, task: &Task, text: &str) -> Option<&'static str> {
        let keyword = task.keywords.and_then(|keywords| keywords(text));
        if keyword.is_some() || !classify::worth_asking_normalized(&self.normalized(text)) {
            self.decided(task, Classifier::Keyword, keyword.map(str::to_owned), None, None);
            return keyword;
        }
        match self.decisions.find(self.flow, self.version, task.name, text).cloned() {
            None => {
                self.ask_model(task, text);
                self.decided(task, Classifier::Keyword, None, None, None);
                None
            }
            Some(Answer::Failed { reason, latency_ms }) => {
                let usage = classify::Usage { latency_ms, ..classify::Usage::default() };
                self.decided(task, Classifier::Keyword, None, Some(reason), Some(usage));
                None
            }
            Some(Answer::Values { values, usage }) => {
                let said = values.iter().find(|(key, _)| key == "class").map(|(_, value)| value.as_str());
                match said {
                    Some("none") => {
                        self.decided(task, Classifier::Model, None, None, Some(usage));
                        None
                    }
                    Some(class) => match task.classes().iter().find(|known| **known == class) {
                        Some(known) => {
                            self.decided(task, Classifier::Model, Some((*known).to_owned()), None, Some(usage));
                            Some(*known)
                        }
                        None => {
                            self.decided(task, Classifier::Keyword, None, Some("invalid_answer".to_owned()), Some(usage));
                            None
                        }
                    },
                    None => {
                        self.decided(task, Classifier::Keyword, None, Some("invalid_answer".to_owned()), Some(usage));
                        None
                    }
                }
            }
        }
    }

    /// Which of `task`'s classes `text` names, weighing the evidence (see
    /// [`crate::trained`]): a sure match (the task's `sure` words) decides at
    /// once; otherwise the keywords' class and the classifier trained on the
    /// version's examples are weighed, and when that leaves doubt the model's
    /// answer for this turn weighs in too (asked for when missing, exactly
    /// like [`Ctx::classify`]). A task not declared with
    /// [`VersionDecl::weighed`] is classified as by [`Ctx::classify`]. Each
    /// decision becomes a `classified` event naming who decided.
    pub fn weigh(&mut self, task: &Task, text: &str) -> Option<&'static str> {
        let Some(trained) = self.weighed.iter().find(|trained| trained.weighing.task.name == task.name).cloned() else {
            return self.classify(task, text);
        };
        let offline = trained.decide(text, None);
        if offline.clear {
            self.decided(task, offline.by, offline.class.map(str::to_owned), None, None);
            return offline.class;
        }
        match self.decisions.find(self.flow, self.version, task.name, text).cloned() {
            None => {
                self.ask_model(task, text);
                self.decided(task, offline.by, offline.class.map(str::to_owned), None, None);
                offline.class
            }
            Some(Answer::Failed { reason, latency_ms }) => {
                let usage = classify::Usage { latency_ms, ..classify::Usage::default() };
                self.decided(task, offline.by, offline.class.map(str::to_owned), Some(reason), Some(usage));
                offline.class
            }
            Some(Answer::Values { values, usage }) => {
                let said = values.iter().find(|(key, _)| key == "class").map(|(_, value)| value.as_str());
                let valid = said.filter(|said| *said == crate::trained::NONE || task.classes().contains(said));
                match valid {
                    Some(said) => {
                        let weighed = trained.decide(text, Some(said));
                        self.decided(task, weighed.by, weighed.class.map(str::to_owned), None, Some(usage));
                        weighed.class
                    }
                    None => {
                        let fallback = Some("invalid_answer".to_owned());
                        self.decided(task, offline.by, offline.class.map(str::to_owned), fallback, Some(usage));
                        offline.class
                    }
                }
            }
        }
    }

    /// The fields of `task` the model found in `text`, each checked by
    /// `validate(field, value)` exactly like typed input (`None` drops it).
    /// Call it only for what deterministic parsing left missing; text without
    /// words is never sent. Empty offline, on failure and before the answer.
    pub fn extract(&mut self, task: &Task, text: &str, validate: impl Fn(&str, &str) -> Option<String>) -> Vec<(&'static str, String)> {
        let crate::classify::Wanted::Fields(fields) = task.ask else { return Vec::new() };
        if !classify::worth_asking_normalized(&self.normalized(text)) {
            return Vec::new();
        }
        match self.decisions.find(self.flow, self.version, task.name, text).cloned() {
            None => {
                self.ask_model(task, text);
                Vec::new()
            }
            Some(Answer::Failed { reason, latency_ms }) => {
                let usage = classify::Usage { latency_ms, ..classify::Usage::default() };
                self.decided(task, Classifier::Keyword, None, Some(reason), Some(usage));
                Vec::new()
            }
            Some(Answer::Values { values, usage }) => {
                let mut found = Vec::new();
                let mut rejected = false;
                for field in fields {
                    let Some((_, value)) = values.iter().find(|(key, _)| key == field) else { continue };
                    match validate(field, value) {
                        Some(clean) => found.push((*field, clean)),
                        None => rejected = true,
                    }
                }
                let answer = (!found.is_empty()).then(|| found.iter().map(|(field, _)| *field).collect::<Vec<_>>().join("+"));
                let fallback = rejected.then(|| "invalid_answer".to_owned());
                self.decided(task, Classifier::Model, answer, fallback, Some(usage));
                found
            }
        }
    }

    /// The answer to an outside call (the `http` step) in this turn: `None`
    /// the first time, after recording the request; the service layer makes
    /// the call and runs the turn again with its answer (exactly as for the
    /// model). `task` names the calling step, `target` the endpoint and
    /// `call` the request (the same text finds the same answer).
    pub fn outside(&mut self, task: &'static str, target: &'static str, call: String) -> Option<Answer> {
        if let Some(answer) = self.decisions.find(self.flow, self.version, task, &call) {
            return Some(answer.clone());
        }
        self.requests.push(Request {
            flow: self.flow.clone(),
            version: self.version,
            task,
            prompt: target,
            ask: crate::classify::Wanted::Outside,
            text: call,
        });
        None
    }

    fn ask_model(&mut self, task: &Task, text: &str) {
        self.requests.push(Request {
            flow: self.flow.clone(),
            version: self.version,
            task: task.name,
            prompt: task.prompt,
            ask: task.ask,
            text: text.to_owned(),
        });
    }

    fn decided(
        &mut self,
        task: &Task,
        classifier: Classifier,
        answer: Option<String>,
        fallback: Option<String>,
        usage: Option<classify::Usage>,
    ) {
        self.classified.push(Classification { task: task.name.to_owned(), classifier, answer, fallback, usage });
    }
}

/// One step's behaviour. Implement it directly, or use a reusable kind from
/// [`crate::kinds`].
pub trait Step: Send + Sync {
    /// Runs when the session enters this step (send the question here).
    fn enter(&self, ctx: &mut Ctx<'_>) -> Next {
        let _ = ctx;
        Next::Wait
    }
    /// Handles the customer's message while the session waits at this step.
    /// By default the step is entered again: a step that only acts on
    /// entering (and never waits) needs no input handler.
    fn input(&self, ctx: &mut Ctx<'_>, text: &str) -> Next {
        let _ = text;
        self.enter(ctx)
    }
    /// Runs when a flow this step called ([`Next::Call`]) completed and the
    /// conversation is back here, with the callee's data already in
    /// [`Ctx::data`]. By default the caller completes too (a call in tail
    /// position).
    fn returned(&self, ctx: &mut Ctx<'_>) -> Next {
        let _ = ctx;
        Next::Complete
    }
    /// The transitions this step may take.
    fn targets(&self) -> Vec<Target>;
    /// The text keys this step uses, checked by the registry at start-up.
    fn text_keys(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// Whether this step takes a file the customer sends (an image or
    /// document, seen through [`Ctx::attachment`], with its caption or an
    /// empty text as the input). `false`: a captioned file reads as its
    /// caption, a bare one gets the engine's "please type" answer.
    fn accepts_attachments(&self) -> bool {
        false
    }
    /// What the step does, when its kind can say it as data (for
    /// `flows export`); `None` for steps written as code.
    fn shape(&self) -> Option<crate::kinds::Shape> {
        None
    }
}

/// A step in a declaration.
pub struct StepDecl {
    pub id: &'static str,
    pub handler: Box<dyn Step>,
}

/// A flow version as declared in its folder, before validation.
pub struct VersionDecl {
    pub flow: &'static str,
    pub version: u32,
    pub lifecycle: Lifecycle,
    pub description: &'static str,
    pub entry: &'static str,
    pub steps: Vec<StepDecl>,
    /// The raw embedded `texts.txt`.
    pub texts: &'static str,
    /// Other embedded data files (prompts ...), by file name; part of the snapshot.
    pub files: Vec<(&'static str, &'static str)>,
    /// Model tasks (classification, extraction) with their prompt files.
    pub tasks: Vec<Task>,
    /// Classification tasks decided by weighing, each with its examples.
    pub weighings: Vec<crate::trained::Weighing>,
    /// Set by the build step (see the flows crate); empty in hand-made test versions.
    pub fingerprint: Fingerprint,
    /// Phrases that move the customer to another step from anywhere in this
    /// version (a change of subject), checked before the current step's handler.
    pub interrupts: Vec<(&'static [&'static str], Next)>,
    /// Where a customer evacuated from an older version continues in this
    /// one: (older version, its step, this version's step).
    pub step_map: Vec<(u32, &'static str, &'static str)>,
    /// What the handlers reach through [`Ctx::deps`].
    pub deps: Option<Deps>,
    /// The text keys the build generated as constants from `texts.txt`
    /// ([`VersionDecl::typed_texts`]); `None` for versions that list their
    /// keys per step.
    pub typed_texts: Option<&'static [&'static str]>,
}

impl VersionDecl {
    pub fn new(flow: &'static str, version: u32, lifecycle: Lifecycle) -> VersionDecl {
        VersionDecl {
            flow,
            version,
            lifecycle,
            description: "",
            entry: "",
            steps: Vec::new(),
            texts: "",
            files: Vec::new(),
            tasks: Vec::new(),
            weighings: Vec::new(),
            fingerprint: Fingerprint::new_static(""),
            interrupts: Vec::new(),
            step_map: Vec::new(),
            deps: None,
            typed_texts: None,
        }
    }
    pub fn description(mut self, description: &'static str) -> VersionDecl {
        self.description = description;
        self
    }
    pub fn entry(mut self, entry: &'static str) -> VersionDecl {
        self.entry = entry;
        self
    }
    pub fn texts(mut self, texts: &'static str) -> VersionDecl {
        self.texts = texts;
        self
    }
    /// The version's texts as the build generated them from `texts.txt`
    /// (`source`, and `keys`, one constant each, so a misspelt key does not
    /// compile). The steps then need not list the keys they use.
    pub fn typed_texts(mut self, source: &'static str, keys: &'static [&'static str]) -> VersionDecl {
        self.texts = source;
        self.typed_texts = Some(keys);
        self
    }
    /// What the handlers reach with [`Ctx::deps`] (the back office ...).
    pub fn deps<T: std::any::Any + Send + Sync>(mut self, deps: T) -> VersionDecl {
        self.deps = Some(std::sync::Arc::new(deps));
        self
    }
    pub fn file(mut self, name: &'static str, contents: &'static str) -> VersionDecl {
        self.files.push((name, contents));
        self
    }
    /// Declares a model task; its prompt is also one of the version's files.
    pub fn task(mut self, task: Task) -> VersionDecl {
        self.files.push((task.file, task.prompt));
        self.tasks.push(task);
        self
    }
    /// Declares a classification task decided by [`Ctx::weigh`]: its prompt
    /// and its examples (`examples/<task>.tsv`) are version files; the
    /// registry trains the classifier from the examples when it is built,
    /// and refuses examples that do not train or name unknown classes.
    pub fn weighed(mut self, weighing: crate::trained::Weighing) -> VersionDecl {
        self.files.push((weighing.file, weighing.examples));
        self.weighings.push(weighing);
        self.task(weighing.task)
    }
    pub fn fingerprint(mut self, fingerprint: Fingerprint) -> VersionDecl {
        self.fingerprint = fingerprint;
        self
    }
    /// From any step, a message containing one of `phrases` (accent- and
    /// case-insensitive, on word boundaries; the longest match wins) goes to
    /// `to` instead of the current step's handler. The target step's `enter`
    /// sees the message as [`Ctx::trigger`]. Not applied while the session is
    /// already inside the target's subroute.
    pub fn interrupt(mut self, phrases: &'static [&'static str], to: Next) -> VersionDecl {
        self.interrupts.push((phrases, to));
        self
    }
    /// Declares where customers of `from_version` continue when they are
    /// evacuated to this version (`rollout evacuate`): each (old step, new
    /// step) pair; the session data collected so far is carried over. Steps
    /// not listed restart at the entry step.
    pub fn step_map(mut self, from_version: u32, pairs: &[(&'static str, &'static str)]) -> VersionDecl {
        self.step_map.extend(pairs.iter().map(|(old, new)| (from_version, *old, *new)));
        self
    }
    /// Adds a step. Its id is `step` or `subroute.step`.
    pub fn step(mut self, id: &'static str, handler: impl Step + 'static) -> VersionDecl {
        self.steps.push(StepDecl { id, handler: Box::new(handler) });
        self
    }
}

/// The id of a declared step, as a `StepId`.
pub fn step_id(id: &'static str) -> StepId {
    StepId::new_static(id)
}
