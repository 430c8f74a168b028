//! Running one transcript against one version.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::store::Store;
use switchyard_engine::time::Timestamp;
use crate::Deps;

use super::parse::{Action, Expect, Transcript};
use super::START;


pub fn registry() -> Arc<Registry> {
    match crate::registry(&Deps::demo()) {
        Ok(registry) => Arc::new(registry),
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("the flow registry is invalid:\n{}", list.join("\n"));
        }
    }
}

/// Polls a future that never waits (the in-memory store's), without a runtime.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

/// What one run contributed to the coverage proof and the turn counts.
#[derive(Debug, Default)]
pub struct RunLog {
    /// (flow, version, step) of every step entered.
    pub entered: BTreeSet<(String, String, String)>,
}

/// A session that ended in one turn, with the detail of its `Ended` event.
pub struct Ending {
    outcome: Outcome,
    step: String,
    flow: String,
    handover: bool,
}

pub fn endings(turn: &Turn) -> Vec<Ending> {
    turn.ended()
        .map(|session: &Session| {
            let handover = turn.events.iter().any(|event| {
                event.session == session.id()
                    && matches!(&event.kind, EventKind::Ended { detail: Some(detail), .. } if detail.starts_with("handover:"))
            });
            Ending {
                outcome: session.outcome().unwrap_or(Outcome::Failed),
                step: session.step().to_string(),
                flow: session.flow().to_string(),
                handover,
            }
        })
        .collect()
}

pub struct Run<'a> {
    transcript: &'a Transcript,
    label: String,
    engine: Engine,
    store: MemoryStore,
    now: Timestamp,
    instance: InstanceId,
    contact: Contact,
    log: RunLog,
}

impl Run<'_> {
    fn fail(&self, line: usize, message: &str, replies: &[String]) -> String {
        let mut out = format!(
            "transcript '{}' ({}:{line}) on {}: {message}",
            self.transcript.name,
            self.transcript.file.display(),
            self.label
        );
        if replies.is_empty() {
            out.push_str("\n    the bot said nothing");
        }
        for reply in replies {
            out.push_str("\n    reply:");
            for reply_line in reply.lines() {
                let _ = write!(out, "\n      | {reply_line}");
            }
        }
        let state = self.store.contact_state_now(&self.instance, &self.contact);
        let stack: Vec<Session> = state.session.filter(Session::is_live).into_iter().chain(state.calls).collect();
        if stack.is_empty() {
            out.push_str("\n    no live session");
        }
        for session in &stack {
            let _ = write!(out, "\n    live session: {}@{} at '{}'", session.flow(), session.version(), session.step());
        }
        out
    }

    /// The contact's innermost live session: the callee it is talking to
    /// when a flow called another, else its only session. `@ step` names it.
    fn innermost(&self) -> Option<Session> {
        let state = self.store.contact_state_now(&self.instance, &self.contact);
        let root = state.session.filter(Session::is_live)?;
        Some(state.calls.into_iter().rev().find(Session::is_live).unwrap_or(root))
    }

    fn record(&mut self, turn: &Turn) {
        for event in &turn.events {
            if let (EventKind::StepEntered, Some(step)) = (&event.kind, &event.step) {
                self.log.entered.insert((event.flow.to_string(), event.version.to_string(), step.to_string()));
            }
        }
    }

    fn check(&self, expects: &[Expect], replies: &[String], ended: &[Ending]) -> Result<(), String> {
        let lowered: Vec<String> = replies.iter().map(|reply| reply.to_lowercase()).collect();
        let declared: Vec<&Ending> = ended.iter().filter(|ending| !ending.handover).collect();
        let mut matched = vec![false; declared.len()];
        for expect in expects {
            match expect {
                Expect::Reply { line, fragment } => {
                    let wanted = fragment.to_lowercase();
                    if !lowered.iter().any(|reply| reply.contains(&wanted)) {
                        return Err(self.fail(*line, &format!("no reply contains {fragment:?}"), replies));
                    }
                }
                Expect::Exact { line, replies: wanted } => {
                    if replies != wanted.as_slice() {
                        let first = wanted.iter().zip(replies).position(|(want, got)| want != got);
                        let message = match first {
                            Some(idx) => format!(
                                "reply {} is not exactly as written; expected:\n      | {}",
                                idx + 1,
                                wanted[idx].replace('\n', "\n      | ")
                            ),
                            None => format!("expected exactly {} replies, got {}", wanted.len(), replies.len()),
                        };
                        return Err(self.fail(*line, &message, replies));
                    }
                }
                Expect::NoReplyContains { line, fragment } => {
                    let unwanted = fragment.to_lowercase();
                    if lowered.iter().any(|reply| reply.contains(&unwanted)) {
                        return Err(self.fail(*line, &format!("a reply contains {fragment:?}"), replies));
                    }
                }
                Expect::Nothing { line } => {
                    if !replies.is_empty() {
                        return Err(self.fail(*line, "expected no reply", replies));
                    }
                }
                Expect::Step { line, step } => {
                    let live = self.innermost().map(|session| session.step().to_string());
                    if live.as_deref() != step.as_deref() {
                        let wanted = step.as_deref().unwrap_or("no live session");
                        return Err(self.fail(*line, &format!("expected the live session at '{wanted}'"), replies));
                    }
                }
                Expect::Ended { line, outcome, at } => {
                    let found = declared.iter().enumerate().position(|(idx, ending)| {
                        !matched[idx]
                            && ending.outcome == *outcome
                            && at.as_ref().is_none_or(|step| *step == ending.step)
                    });
                    match found {
                        Some(idx) => matched[idx] = true,
                        None => {
                            let actual: Vec<String> = declared
                                .iter()
                                .map(|ending| format!("{} at {} ({})", ending.outcome, ending.step, ending.flow))
                                .collect();
                            let wanted = match at {
                                Some(step) => format!("{outcome} at {step}"),
                                None => outcome.to_string(),
                            };
                            let message = format!("expected a session to end {wanted}; ended: [{}]", actual.join(", "));
                            return Err(self.fail(*line, &message, replies));
                        }
                    }
                }
            }
        }
        if let Some(idx) = matched.iter().position(|done| !done) {
            let ending = declared[idx];
            let line = expects.last().map_or(self.transcript.line, |expect| match expect {
                Expect::Reply { line, .. }
                | Expect::NoReplyContains { line, .. }
                | Expect::Exact { line, .. }
                | Expect::Nothing { line }
                | Expect::Step { line, .. }
                | Expect::Ended { line, .. } => *line,
            });
            let message = format!(
                "a {} session ended {} at '{}', which the transcript does not declare (add '= {}')",
                ending.flow, ending.outcome, ending.step, ending.outcome
            );
            return Err(self.fail(line, &message, replies));
        }
        Ok(())
    }

    fn say(&mut self, content: &Content) -> Result<Turn, String> {
        self.now = self.now.plus(Duration::from_secs(1));
        let inbound =
            Inbound { instance: self.instance.clone(), contact: self.contact.clone(), content: content.clone() };
        let state = self.store.contact_state_now(&self.instance, &self.contact);
        // Through the service's turn, so an `http` step's call is answered
        // (offline: it fails, `no_endpoints`, and the step takes its failure branch).
        let turn = ready(switchyard_engine::service::run_turn_with(&self.engine, None, None, state, &inbound, self.now));
        self.store.commit_now(&turn).map_err(|problem| format!("commit refused: {problem}"))?;
        self.record(&turn);
        Ok(turn)
    }

    /// Moves the clock and runs the expiry sweep as the service does.
    fn wait(&mut self, duration: Duration) -> Result<Vec<Ending>, String> {
        self.now = self.now.plus(duration);
        let mut ended = Vec::new();
        for session in ready(self.store.expired(self.now, 100)).map_err(|problem| problem.to_string())? {
            let state = self.store.contact_state_now(session.instance(), session.contact());
            let Some(turn) = self.engine.expire_all(state, self.now) else { continue };
            self.store.commit_now(&turn).map_err(|problem| format!("commit refused: {problem}"))?;
            self.record(&turn);
            ended.extend(endings(&turn));
        }
        Ok(ended)
    }
}

/// Runs one transcript against one version, on a fresh registry: the demo
/// back office keeps the orders created through it, and a run must not see
/// another run's orders (their numbers would depend on the order of runs).
pub fn run(transcript: &Transcript, flow: &str, version: &str) -> Result<RunLog, String> {
    run_on(transcript, flow, version, &|| Ok(registry()))
}

/// [`run`] on the registry `fresh` builds (called once per run, for the
/// same reason): the compiled versions plus a document under test.
pub fn run_on(transcript: &Transcript, flow: &str, version: &str, fresh: &dyn Fn() -> Result<Arc<Registry>, String>) -> Result<RunLog, String> {
    let registry = &fresh()?;
    let label = format!("{flow}@{version}");
    let mut pins = vec![format!("{flow}={version}")];
    pins.extend(transcript.overrides.iter().cloned());
    let where_ =
        format!("transcript '{}' ({}:{}) on {label}", transcript.name, transcript.file.display(), transcript.line);
    let overrides =
        Overrides::parse(&pins.join(","), registry).map_err(|problems| format!("{where_}: {}", problems.join("; ")))?;
    let resolver = Resolver::new(registry, overrides, Box::new(NoRules));
    let engine = Engine::new(Arc::clone(registry), resolver, EngineConfig::default())
        .map_err(|problem| format!("{where_}: {problem}"))?;
    let mut runner = Run {
        transcript,
        label,
        engine,
        store: MemoryStore::new(),
        now: START,
        instance: InstanceId::parse(&transcript.instance).map_err(|problem| format!("{where_}: {problem}"))?,
        contact: Contact::parse(&transcript.contact).map_err(|problem| format!("{where_}: {problem}"))?,
        log: RunLog::default(),
    };
    let show = std::env::var("TRANSCRIPT_SHOW").is_ok_and(|wanted| transcript.name.contains(&wanted));
    if show {
        println!("\n=== {} on {}", transcript.name, runner.label);
    }
    for action in &transcript.actions {
        match action {
            Action::Say { line, content, shown, expects } => {
                let turn = runner.say(content).map_err(|problem| runner.fail(*line, &problem, &[]))?;
                let replies: Vec<String> = turn.replies.iter().map(|reply| reply.text.to_string()).collect();
                if show {
                    println!("> {shown}");
                    // In the exact format, ready to paste into a transcript.
                    for reply in &replies {
                        println!("<= {}", reply.replace('\n', "\n<+ "));
                    }
                    if replies.is_empty() {
                        println!("< (nothing)");
                    }
                }
                runner
                    .check(expects, &replies, &endings(&turn))
                    .map_err(|failure| format!("{failure}\n    after: > {shown}"))?;
                if transcript.no_reprompts
                    && let Some(event) = turn.events.iter().find(|event| event.kind == EventKind::Retried)
                {
                    let step = event.step.as_ref().map(ToString::to_string).unwrap_or_default();
                    let message = format!("re-prompted at '{step}' ('reprompts: none')");
                    return Err(format!("{}\n    after: > {shown}", runner.fail(*line, &message, &replies)));
                }
            }
            Action::Wait { line, duration, expects } => {
                let ended = runner.wait(*duration).map_err(|problem| runner.fail(*line, &problem, &[]))?;
                runner.check(expects, &[], &ended)?;
            }
        }
    }
    Ok(runner.log)
}
