//! `switchyard replay`: recorded conversations run again through a candidate
//! version (and through their baseline), each in its own in-memory store, so
//! a team sees how a version would have handled real customers before one of
//! them meets it. Nothing here touches the real store or queues a message:
//! the engine is pure and each replay commits to a fresh [`MemoryStore`].
//!
//! **Honest comparison.** A customer's later messages answered the bot that
//! was live, so a replay is faithful only while the candidate asks what the
//! baseline asked. Both versions replay the same messages at the same clock
//! offsets; message `i` is *aligned* when both waited at the same question
//! before it: the same step id, or steps one version's step map ties to
//! the other's, and at a form the same slots already filled (so the same
//! slot asked). The first message that is not aligned is the divergence;
//! only aligned messages are judged, and an outcome only when the replay
//! stayed aligned to the end.

pub mod corpus;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use serde_json::{json, Value};
use switchyard_engine::analytics::{rate, two_proportion, Rate, TwoProportion};
use switchyard_engine::engine::{Engine, EngineConfig, Inbound};
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{Contact, FlowId, InstanceId, Version};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::session::Outcome;
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::time::Timestamp;

pub use corpus::{Conversation, Message};

/// The contact every replay runs as: a replay never needs the real number,
/// and the corpus does not hold it.
const REPLAY_CONTACT: &str = "5500000000000";
const SIGNIFICANCE: f64 = 0.05;
const CONFIDENCE: f64 = 0.95;

/// One engine per version, each resolving the flow to that version and
/// starting every conversation in the flow itself.
pub struct Replayer {
    flow: String,
    registry: Arc<Registry>,
    engines: BTreeMap<Version, Engine>,
}

impl std::fmt::Debug for Replayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replayer").field("flow", &self.flow).finish_non_exhaustive()
    }
}

impl Replayer {
    /// Engines for `versions` of `flow`, with `config`'s TTLs and global
    /// commands. The error names the flow or version that is not compiled.
    pub fn new(registry: Arc<Registry>, config: &EngineConfig, flow: &str, versions: &[Version]) -> Result<Replayer, String> {
        let flow_id = registry
            .lookup(&format!("{flow}@{}", versions.first().copied().unwrap_or(Version::new(1))))
            .map(|fv| fv.flow().clone())?;
        let mut engines = BTreeMap::new();
        for version in versions {
            if engines.contains_key(version) {
                continue;
            }
            registry.lookup(&format!("{flow}@{version}"))?;
            let overrides = Overrides::parse(&format!("{flow}={version}"), &registry).map_err(|problems| problems.join("; "))?;
            let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
            let engine_config = EngineConfig { entry_flow: flow_id.clone(), ..config.clone() };
            engines.insert(*version, Engine::new(registry.clone(), resolver, engine_config)?);
        }
        Ok(Replayer { flow: flow.to_owned(), registry, engines })
    }

    /// Runs `conversation` through `version` in a fresh in-memory store.
    /// A panic anywhere in the run is that session's failure, not the
    /// caller's (the engine already turns a handler's panic into a failed
    /// session; this also covers the engine itself).
    pub fn run(&self, conversation: &Conversation, version: Version) -> Trace {
        let Some(engine) = self.engines.get(&version) else {
            return Trace::failed(format!("{}@{version} has no engine in this replay", self.flow));
        };
        let store = MemoryStore::new();
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.walk(engine, &store, conversation))) {
            Ok(trace) => trace,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|text| (*text).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                Trace::failed(format!("panicked: {message}"))
            }
        }
    }

    fn walk(&self, engine: &Engine, store: &MemoryStore, conversation: &Conversation) -> Trace {
        let instance = InstanceId::parse(&conversation.instance).unwrap_or_else(|_| InstanceId::parse("replay").expect("a valid instance name"));
        let contact = Contact::parse(REPLAY_CONTACT).expect("a valid contact");
        let mut trace = Trace::default();
        for message in &conversation.messages {
            let state = store.contact_state_now(&instance, &contact);
            let live = state.session.as_ref().filter(|session| session.flow().as_str() == self.flow);
            let before = match live {
                Some(session) => Waiting::At { step: session.step().as_str().to_owned(), filled: session.data().iter().map(|(key, _)| key.to_owned()).collect() },
                None if trace.outcome.is_some() => Waiting::Ended,
                None => Waiting::Nothing,
            };
            let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: message.content.clone() };
            let now = Timestamp::from_millis(conversation.started_at.as_millis().saturating_add(message.offset_ms));
            let turn = engine.turn(state, &inbound, now);
            let mut step = Step { before, understood: true, reprompt_at: None, handoff_at: None, form: false };
            for event in turn.events.iter().filter(|event| event.flow.as_str() == self.flow) {
                let at = event.step.as_ref().map(|step| step.as_str().to_owned());
                match &event.kind {
                    EventKind::Retried | EventKind::SlotMissed { .. } => {
                        step.understood = false;
                        step.reprompt_at = step.reprompt_at.take().or(at.clone());
                    }
                    EventKind::SlotFilled { .. } => {}
                    EventKind::Ended { outcome, detail } => {
                        let by_command = detail.as_deref().is_some_and(|detail| detail.starts_with("command:"));
                        if matches!(outcome, Outcome::Handoff | Outcome::Failed) && !by_command {
                            step.understood = false;
                            step.handoff_at = at.clone();
                        }
                        if trace.outcome.is_none() {
                            trace.outcome = Some(outcome.as_str().to_owned());
                            if *outcome == Outcome::Failed {
                                trace.failure = detail.clone();
                            }
                        }
                    }
                    _ => {}
                }
                if matches!(event.kind, EventKind::SlotFilled { .. } | EventKind::SlotMissed { .. }) {
                    step.form = true;
                    if let Some(at) = at {
                        trace.forms.insert(at);
                    }
                }
            }
            // `commit_now` only refuses a conflicting turn, which a fresh
            // store with one writer cannot produce; if it did, the replay
            // stops here as a failure rather than going on from a wrong state.
            if let Err(problem) = store.commit_now(&turn) {
                trace.steps.push(step);
                trace.failure = Some(format!("replay store refused a turn: {problem}"));
                return trace;
            }
            trace.steps.push(step);
        }
        trace
    }

    /// Whether the two versions waited at the same question.
    fn same_question(&self, base_version: Version, base: &Waiting, cand_version: Version, cand: &Waiting, forms: &[&Trace]) -> bool {
        match (base, cand) {
            (Waiting::Nothing, Waiting::Nothing) => true,
            (Waiting::At { step: b, filled: bf }, Waiting::At { step: c, filled: cf }) => {
                if b == c {
                    let is_form = forms.iter().any(|trace| trace.forms.contains(b));
                    return !is_form || bf == cf;
                }
                let maps = |from: Version, step: &str, to: Version, target: &str| {
                    self.registry.get(&self.flow, to).and_then(|fv| fv.mapped_step(from, step)).is_some_and(|mapped| mapped == target)
                };
                maps(base_version, b, cand_version, c) || maps(cand_version, c, base_version, b)
            }
            _ => false,
        }
    }

    /// Replays `conversation` through `baseline` (default: the version that
    /// served it) and `candidate`, and compares them.
    pub fn compare(&self, conversation: &Conversation, baseline: Option<Version>, candidate: Version) -> SessionResult {
        let baseline = baseline.unwrap_or(conversation.version);
        let base = self.run(conversation, baseline);
        let cand = self.run(conversation, candidate);
        let mut aligned = 0;
        let mut divergence = None;
        for (index, message) in conversation.messages.iter().enumerate() {
            let (Some(b), Some(c)) = (base.steps.get(index), cand.steps.get(index)) else {
                break;
            };
            if !self.same_question(baseline, &b.before, candidate, &c.before, &[&base, &cand]) {
                divergence = Some(Divergence { message: index, baseline: b.before.label(), candidate: c.before.label(), text: message.masked() });
                break;
            }
            aligned += 1;
        }
        let judged = |trace: &Trace| trace.steps.iter().take(aligned).filter(|step| step.understood).count() as u64;
        let mut new_reprompts = Vec::new();
        let mut new_handoffs = Vec::new();
        for (b, c) in base.steps.iter().zip(&cand.steps).take(aligned) {
            if let (true, Some(at)) = (b.reprompt_at.is_none(), &c.reprompt_at) {
                new_reprompts.push(at.clone());
            }
            if let (true, Some(at)) = (b.handoff_at.is_none(), &c.handoff_at) {
                new_handoffs.push(at.clone());
            }
        }
        let to_the_end = divergence.is_none() && aligned == conversation.messages.len() && cand.steps.len() == conversation.messages.len();
        let end = |trace: &Trace| trace.outcome.clone().unwrap_or_else(|| "open".to_owned());
        let handed_off = |trace: &Trace| trace.steps.iter().take(aligned).any(|step| step.handoff_at.is_some());
        SessionResult {
            session: conversation.session.clone(),
            baseline,
            candidate,
            messages: conversation.messages.len(),
            aligned,
            divergence,
            understood: (judged(&base), judged(&cand)),
            first_understood: (base.steps.first().is_some_and(|step| step.understood), cand.steps.first().is_some_and(|step| step.understood)),
            handoff: (handed_off(&base), handed_off(&cand)),
            new_reprompts,
            new_handoffs,
            recorded: conversation.outcome.clone(),
            outcomes: to_the_end.then(|| (end(&base), end(&cand))),
            reproduced: recorded_matches(conversation.outcome.as_deref(), &end(&base)),
            failure: cand.failure.clone().filter(|_| cand.outcome.as_deref() == Some("failed") || cand.steps.len() < conversation.messages.len()),
        }
    }
}

/// A recorded `expired` (the customer went quiet) or live session matches a
/// replay left open; any other outcome must match exactly.
fn recorded_matches(recorded: Option<&str>, replayed: &str) -> bool {
    match recorded {
        None | Some("expired") => replayed == "open" || replayed == "expired",
        Some(outcome) => outcome == replayed,
    }
}

/// Where a session waited before a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// No session yet: the message opens one.
    Nothing,
    At { step: String, filled: Vec<String> },
    /// The flow's session had already ended.
    Ended,
}

impl Waiting {
    fn label(&self) -> String {
        match self {
            Waiting::Nothing => "(start)".to_owned(),
            Waiting::At { step, .. } => step.clone(),
            Waiting::Ended => "(ended)".to_owned(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Step {
    pub before: Waiting,
    /// No re-prompt and no fallback to a person on this message.
    pub understood: bool,
    pub reprompt_at: Option<String>,
    pub handoff_at: Option<String>,
    pub form: bool,
}

/// One version's replay of one conversation.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub steps: Vec<Step>,
    /// The flow's session's outcome, `None` while it is live.
    pub outcome: Option<String>,
    /// Why the session failed (a handler's panic ...).
    pub failure: Option<String>,
    /// Steps that emitted slot events: forms.
    forms: std::collections::BTreeSet<String>,
}

impl Trace {
    fn failed(reason: String) -> Trace {
        Trace { outcome: Some("failed".to_owned()), failure: Some(reason), ..Trace::default() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Index of the first message the versions waited for differently.
    pub message: usize,
    pub baseline: String,
    pub candidate: String,
    /// The customer's text there, masked.
    pub text: String,
}

/// One conversation replayed through a baseline and a candidate.
#[derive(Clone, Debug)]
pub struct SessionResult {
    pub session: String,
    pub baseline: Version,
    pub candidate: Version,
    pub messages: usize,
    /// Messages replayed before the first divergence.
    pub aligned: usize,
    pub divergence: Option<Divergence>,
    /// Aligned messages understood (baseline, candidate).
    pub understood: (u64, u64),
    pub first_understood: (bool, bool),
    /// Handed to a person (not by the customer's command) while aligned.
    pub handoff: (bool, bool),
    /// Steps where the candidate re-prompted (handed off) an aligned message the baseline did not.
    pub new_reprompts: Vec<String>,
    pub new_handoffs: Vec<String>,
    pub recorded: Option<String>,
    /// (baseline, candidate) outcomes, only when aligned to the end.
    pub outcomes: Option<(String, String)>,
    /// The baseline replay ended as the recording did.
    pub reproduced: bool,
    /// The candidate's failure (a panic ...), if it failed.
    pub failure: Option<String>,
}

impl SessionResult {
    pub fn ends_differently(&self) -> bool {
        self.outcomes.as_ref().is_some_and(|(base, cand)| base != cand)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "session": self.session,
            "baseline": self.baseline.to_string(),
            "candidate": self.candidate.to_string(),
            "messages": self.messages,
            "aligned": self.aligned,
            "divergence": self.divergence.as_ref().map(|d| json!({
                "message": d.message, "baseline_step": d.baseline, "candidate_step": d.candidate, "text": d.text,
            })),
            "understood": {"baseline": self.understood.0, "candidate": self.understood.1},
            "first_understood": {"baseline": self.first_understood.0, "candidate": self.first_understood.1},
            "handoff": {"baseline": self.handoff.0, "candidate": self.handoff.1},
            "new_reprompts": self.new_reprompts,
            "new_handoffs": self.new_handoffs,
            "recorded_outcome": self.recorded,
            "outcome": self.outcomes.as_ref().map(|(b, c)| json!({"baseline": b, "candidate": c})),
            "ends_differently": self.ends_differently(),
            "baseline_reproduced": self.reproduced,
            "failure": self.failure,
        })
    }
}

/// The results of a replay, summed.
#[derive(Clone, Debug)]
pub struct Aggregate {
    pub sessions: u64,
    pub first: (Rate, Rate, TwoProportion),
    pub aligned: (Rate, Rate, TwoProportion),
    pub handoff: (Rate, Rate, TwoProportion),
    pub new_reprompts: BTreeMap<String, u64>,
    pub new_handoffs: BTreeMap<String, u64>,
    pub ends_differently: u64,
    pub aligned_to_end: u64,
    pub failures: u64,
    pub not_reproduced: u64,
    pub enough: bool,
    pub min_sessions: u64,
    /// Significantly worse on understanding (first or aligned messages) or handoff.
    pub regression: bool,
    pub verdict: String,
}

fn pair(a_successes: u64, b_successes: u64, trials: u64) -> (Rate, Rate, TwoProportion) {
    (rate(a_successes, trials), rate(b_successes, trials), two_proportion(a_successes, trials, b_successes, trials, CONFIDENCE))
}

/// Sums `results`. No winner is named below `min_sessions` replayed
/// sessions, as `report` names none below its minimum.
pub fn aggregate(results: &[SessionResult], min_sessions: u64) -> Aggregate {
    let sessions = results.len() as u64;
    let count = |test: &dyn Fn(&SessionResult) -> bool| results.iter().filter(|result| test(result)).count() as u64;
    let first = pair(count(&|r| r.first_understood.0), count(&|r| r.first_understood.1), sessions);
    let judged: u64 = results.iter().map(|result| result.aligned as u64).sum();
    let aligned = pair(results.iter().map(|r| r.understood.0).sum(), results.iter().map(|r| r.understood.1).sum(), judged);
    let handoff = pair(count(&|r| r.handoff.0), count(&|r| r.handoff.1), sessions);
    let mut new_reprompts = BTreeMap::new();
    let mut new_handoffs = BTreeMap::new();
    for result in results {
        for step in &result.new_reprompts {
            *new_reprompts.entry(step.clone()).or_insert(0) += 1;
        }
        for step in &result.new_handoffs {
            *new_handoffs.entry(step.clone()).or_insert(0) += 1;
        }
    }
    let minimum = min_sessions.max(1);
    let enough = sessions >= minimum;
    let worse = |test: &TwoProportion, higher_is_better: bool| {
        test.p_value < SIGNIFICANCE && if higher_is_better { test.high < 0.0 } else { test.low > 0.0 }
    };
    let better = |test: &TwoProportion, higher_is_better: bool| {
        test.p_value < SIGNIFICANCE && if higher_is_better { test.low > 0.0 } else { test.high < 0.0 }
    };
    let regressions: Vec<&str> = [("first messages", &first.2, true), ("aligned messages", &aligned.2, true), ("handoff", &handoff.2, false)]
        .iter()
        .filter(|(_, test, up)| worse(test, *up))
        .map(|(name, _, _)| *name)
        .collect();
    let gains: Vec<&str> = [("first messages", &first.2, true), ("aligned messages", &aligned.2, true), ("handoff", &handoff.2, false)]
        .iter()
        .filter(|(_, test, up)| better(test, *up))
        .map(|(name, _, _)| *name)
        .collect();
    let regression = enough && !regressions.is_empty();
    let verdict = if !enough {
        format!(
            "not enough data yet: {sessions} {} replayed, {} more needed (minimum {minimum}) before a winner can be named",
            if sessions == 1 { "session" } else { "sessions" },
            minimum - sessions
        )
    } else if regression {
        format!("the candidate is significantly worse on {} (95%, p < 0.05)", regressions.join(", "))
    } else if !gains.is_empty() {
        format!("the candidate is significantly better on {} and worse on nothing (95%, p < 0.05)", gains.join(", "))
    } else {
        "no significant difference between the baseline and the candidate (95%)".to_owned()
    };
    Aggregate {
        sessions,
        first,
        aligned,
        handoff,
        new_reprompts,
        new_handoffs,
        ends_differently: count(&|r| r.ends_differently()),
        aligned_to_end: count(&|r| r.outcomes.is_some()),
        failures: count(&|r| r.failure.is_some()),
        not_reproduced: count(&|r| !r.reproduced),
        enough,
        min_sessions: minimum,
        regression,
        verdict,
    }
}

fn rate_json(rate: &Rate) -> Value {
    json!({"successes": rate.successes, "trials": rate.trials, "value": rate.value, "low": rate.low, "high": rate.high})
}

fn compared_json((base, cand, test): &(Rate, Rate, TwoProportion)) -> Value {
    json!({
        "baseline": rate_json(base),
        "candidate": rate_json(cand),
        "difference": {"value": test.difference, "low": test.low, "high": test.high, "p_value": test.p_value},
    })
}

impl Aggregate {
    pub fn to_json(&self) -> Value {
        json!({
            "sessions": self.sessions,
            "first_message_understood": compared_json(&self.first),
            "aligned_messages_understood": compared_json(&self.aligned),
            "handoff": compared_json(&self.handoff),
            "new_reprompts_by_step": self.new_reprompts,
            "new_handoffs_by_step": self.new_handoffs,
            "aligned_to_end": self.aligned_to_end,
            "ends_differently": self.ends_differently,
            "candidate_failures": self.failures,
            "baseline_not_reproduced": self.not_reproduced,
            "enough": self.enough,
            "min_sessions": self.min_sessions,
            "regression": self.regression,
            "verdict": self.verdict,
        })
    }
}

/// What a replay was asked to compare, checked against the compiled flows.
#[derive(Clone, Debug)]
pub struct Choice {
    pub flow: FlowId,
    pub candidate: Version,
    /// `None`: each session against the version that served it.
    pub baseline: Option<Version>,
}

/// Checks `flow`, `candidate` and `baseline` (as typed: `v3`) against the
/// registry; every problem is one line naming the value (`what` names the
/// field: `--candidate` on the command line, `candidate` in the API).
pub fn choose(registry: &Registry, flow: &str, candidate: (&str, &str), baseline: Option<(&str, &str)>) -> Result<Choice, Vec<String>> {
    let mut problems = Vec::new();
    let flow_id = registry.versions_of(flow).next().map(|fv| fv.flow().clone());
    if flow_id.is_none() {
        problems.push(format!("flow '{flow}' is not compiled in"));
    }
    let mut version = |(what, text): (&str, &str)| match Version::parse(text.trim()) {
        Ok(version) if registry.get(flow, version).is_some() || flow_id.is_none() => Some(version),
        Ok(version) => {
            let known: Vec<String> = registry.versions_of(flow).map(|fv| fv.version().to_string()).collect();
            problems.push(format!("{what}: flow '{flow}' has no version {version} (compiled: {})", known.join(", ")));
            None
        }
        Err(problem) => {
            problems.push(format!("{what}: {problem}"));
            None
        }
    };
    let candidate = version(candidate);
    let baseline = baseline.map(&mut version);
    match (flow_id, candidate, baseline) {
        (Some(flow), Some(candidate), None) => Ok(Choice { flow, candidate, baseline: None }),
        (Some(flow), Some(candidate), Some(Some(baseline))) => Ok(Choice { flow, candidate, baseline: Some(baseline) }),
        _ => Err(problems),
    }
}

impl Choice {
    /// The replayer for `conversations`: engines for the candidate and for
    /// the baseline, or for every version that served one of them (which
    /// must still be compiled in, or the caller must name a baseline).
    pub fn replayer(&self, registry: Arc<Registry>, config: &EngineConfig, conversations: &[Conversation]) -> Result<Replayer, String> {
        let flow = self.flow.as_str();
        let mut versions = vec![self.candidate];
        match self.baseline {
            Some(baseline) => versions.push(baseline),
            None => {
                if let Some(gone) = conversations.iter().find(|conversation| registry.get(flow, conversation.version).is_none()) {
                    return Err(format!("a session was served by {flow}@{}, which is not compiled in: name a baseline", gone.version));
                }
                versions.extend(conversations.iter().map(|conversation| conversation.version));
            }
        }
        versions.sort_unstable();
        versions.dedup();
        Replayer::new(registry, config, flow, &versions)
    }
}

/// Every conversation through the replayer, in order, until `deadline`
/// (when one is set and has passed, the rest are left out: the caller tells
/// how many ran). `progress` hears the count after each session.
pub fn replay_all(replayer: &Replayer, choice: &Choice, conversations: &[Conversation], deadline: Option<std::time::Instant>, mut progress: impl FnMut(usize)) -> Vec<SessionResult> {
    let mut results = Vec::with_capacity(conversations.len());
    for conversation in conversations {
        if deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline) {
            break;
        }
        results.push(replayer.compare(conversation, choice.baseline, choice.candidate));
        progress(results.len());
    }
    results
}

/// The whole replay document (`--json`, and what `POST /api/replay` answers).
pub fn document(flow: &FlowId, candidate: Version, baseline: Option<Version>, skipped: u64, results: &[SessionResult], aggregate: &Aggregate) -> Value {
    json!({
        "flow": flow.as_str(),
        "candidate": candidate.to_string(),
        "baseline": baseline.map_or_else(|| "served".to_owned(), |version| version.to_string()),
        "skipped": skipped,
        "aggregate": aggregate.to_json(),
        "sessions": results.iter().map(SessionResult::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use switchyard_engine::engine::Content;
    use switchyard_engine::flow::{Lifecycle, Next, VersionDecl};
    use switchyard_engine::kinds::{Custom, To};

    use super::*;

    /// `shop@v1` asks a name and completes; `shop@v2` panics on the answer.
    fn registry() -> Arc<Registry> {
        let ask = |version: u32, lifecycle: Lifecycle, answer: fn(&mut switchyard_engine::flow::Ctx<'_>, &str) -> Next| {
            VersionDecl::new("shop", version, lifecycle).texts("[ask]\nnome?\n").entry("ask").step(
                "ask",
                Custom::new(&[], answer)
                    .on_enter(|ctx| {
                        ctx.say("ask");
                        Next::Wait
                    })
                    .texts(&["ask"]),
            )
        };
        let entry = VersionDecl::new("unknown", 1, Lifecycle::Active)
            .texts("[hi]\noi\n")
            .entry("hi")
            .step("hi", Custom::new(&[To::Flow("shop")], |_ctx, _text| Next::Handover("shop")));
        let decls = vec![
            entry,
            ask(1, Lifecycle::Active, |_ctx, _text| Next::Complete),
            ask(2, Lifecycle::Inactive, |_ctx, text| panic!("the candidate cannot read {text:?}")),
        ];
        Arc::new(Registry::new(decls).expect("test flows are valid"))
    }

    fn conversation(session: &str) -> Conversation {
        let text = |offset_ms: i64, text: &str| Message { offset_ms, content: Content::Text(text.to_owned()) };
        Conversation {
            session: session.to_owned(),
            flow: "shop".to_owned(),
            version: Version::new(1),
            instance: "loja".to_owned(),
            started_at: Timestamp::from_millis(1_795_000_000_000),
            outcome: Some("completed".to_owned()),
            messages: vec![text(0, "oi"), text(20_000, "Ana")],
        }
    }

    #[test]
    fn a_candidate_that_panics_is_that_sessions_reported_failure() {
        let replayer = Replayer::new(registry(), &EngineConfig::default(), "shop", &[Version::new(1), Version::new(2)]).unwrap();
        let results: Vec<SessionResult> = ["a", "b"].iter().map(|id| replayer.compare(&conversation(id), None, Version::new(2))).collect();
        for result in &results {
            assert_eq!(result.aligned, 2, "{result:?}");
            assert_eq!(result.understood, (2, 1), "the panic is a message not understood: {result:?}");
            assert_eq!(result.outcomes, Some(("completed".to_owned(), "failed".to_owned())));
            assert!(result.reproduced, "v1 replayed ends as recorded");
            let failure = result.failure.as_deref().unwrap_or_default();
            assert!(failure.contains("the candidate cannot read"), "the failure says why: {failure}");
        }
        let summary = aggregate(&results, 1);
        assert_eq!((summary.failures, summary.ends_differently, summary.aligned_to_end), (2, 2, 2));
        assert_eq!(summary.new_handoffs.get("ask"), Some(&2), "{:?}", summary.new_handoffs);
    }

    #[test]
    fn replay_all_reports_progress_and_stops_at_its_deadline() {
        let registry = registry();
        let choice = choose(&registry, "shop", ("candidate", "v2"), None).unwrap();
        let conversations = vec![conversation("a"), conversation("b")];
        let replayer = choice.replayer(registry.clone(), &EngineConfig::default(), &conversations).unwrap();
        let mut heard = Vec::new();
        let all = replay_all(&replayer, &choice, &conversations, None, |done| heard.push(done));
        assert_eq!((all.len(), heard), (2, vec![1, 2]));
        let none = replay_all(&replayer, &choice, &conversations, Some(std::time::Instant::now()), |_| panic!("nothing runs past the deadline"));
        assert!(none.is_empty());
    }

    #[test]
    fn choose_names_every_bad_value() {
        let registry = registry();
        assert_eq!(choose(&registry, "shp", ("--candidate", "v2"), None).unwrap_err(), vec!["flow 'shp' is not compiled in".to_owned()]);
        assert_eq!(
            choose(&registry, "shop", ("--candidate", "v7"), Some(("--baseline", "x"))).unwrap_err(),
            vec!["--candidate: flow 'shop' has no version v7 (compiled: v1, v2)".to_owned(), format!("--baseline: {}", Version::parse("x").unwrap_err())]
        );
        let choice = choose(&registry, "shop", ("candidate", "v2"), Some(("baseline", "v1"))).unwrap();
        assert_eq!((choice.candidate, choice.baseline), (Version::new(2), Some(Version::new(1))));
    }

    #[test]
    fn too_few_sessions_name_no_winner_and_are_no_regression() {
        let replayer = Replayer::new(registry(), &EngineConfig::default(), "shop", &[Version::new(1), Version::new(2)]).unwrap();
        let results = vec![replayer.compare(&conversation("a"), None, Version::new(2))];
        let summary = aggregate(&results, 100);
        assert!(!summary.enough && !summary.regression);
        assert!(summary.verdict.starts_with("not enough data yet: 1 session replayed, 99 more needed"), "{}", summary.verdict);
    }
}
