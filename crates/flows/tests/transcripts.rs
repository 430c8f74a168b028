//! Conversation transcripts: every transcript file under `src/`, run against
//! every flow version it lists, through the real engine with an in-memory
//! store and a fixed clock.
//!
//! # Where transcripts live
//! Any `*.txt` file in a directory named `transcripts` under `src/`:
//! - `src/<flow>/v<N>/transcripts/*.txt`: transcripts of that version; they
//!   run against `<flow>@v<N>` unless they say otherwise;
//! - `src/<flow>/transcripts/*.txt`: transcripts shared by several versions
//!   of a flow; each must say which versions it runs against.
//!
//! # Format
//! ```text
//! # A comment. Blank lines are ignored.
//! === compra de e-CPF A1 com CPF formatado        <- starts a transcript (name)
//! versions: digital_certificate@v1, digital_certificate@v2
//! overrides: billing=v2                           <- optional extra pins for every run
//! contact: 5511900000001                          <- optional
//! instance: vendas                                <- optional
//! reprompts: none                                 <- optional: fails at the first re-prompt
//!                                                    (a `retried` event: input not understood)
//!
//! > quero comprar um certificado                  <- the customer says (one message)
//! < e-CPF                                         <- some reply of this turn contains this
//! < e-CNPJ                                           (case-insensitive); several allowed
//! !< boleto                                       <- no reply of this turn contains this
//! @ purchase.choose_type                          <- the live session is at this step now
//! > 1
//! < (nothing)                                     <- the bot says nothing this turn
//! = handoff                                       <- a session ended in this turn like this
//! = handoff at purchase.collect_document             (optionally: at that step)
//! wait 31m                                        <- the clock moves; the expiry sweep runs
//! = expired at purchase.collect_email
//! ```
//! Special customer messages: `> [audio]` (any `[kind]`: content the bot
//! cannot read), `>` alone or `> {empty}` (an empty text), `> {repeat a 5000}`
//! (the text `a` 5000 times).
//!
//! `@ none` says the contact has no live session. Outcomes are `completed`,
//! `handoff`, `expired`, `failed` and `cancelled`; a session that ends by
//! handing over to another flow is not an outcome to declare.
//!
//! # Rules
//! - Every customer message is followed by at least one `<` line (a fragment
//!   or `(nothing)`): every turn asserts what the customer saw.
//! - Every session that ends in a turn or a `wait` must be declared with `=`,
//!   and every `=` must match a session that ended: an unexpected handoff or
//!   failure never passes silently.
//! - A file that does not parse fails the test, naming the file and line.
//!
//! Each customer message moves the clock one second; the clock starts at
//! 2026-11-25T12:00:00Z. The demo back office's dates are relative to it.
//!
//! To read a conversation while writing a transcript, run
//! `TRANSCRIPT_SHOW='part of a name' cargo test -p switchyard-flows --test transcripts -- --nocapture`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound, Turn};
use switchyard_engine::event::EventKind;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::store::{MemoryStore, Store};
use switchyard_engine::time::{Timestamp, parse_duration};
use switchyard_flows::Deps;

/// 2026-11-25T12:00:00Z.
const START: Timestamp = Timestamp::from_millis(1_795_608_000_000);
const DEFAULT_CONTACT: &str = "5511900000001";
const DEFAULT_INSTANCE: &str = "vendas";

// ---------------------------------------------------------------------------
// The transcript model and its parser.

#[derive(Debug)]
struct Transcript {
    file: PathBuf,
    name: String,
    /// Line of the `===` header.
    line: usize,
    /// `(flow, "vN")` pairs.
    versions: Vec<(String, String)>,
    overrides: Vec<String>,
    contact: String,
    instance: String,
    /// `reprompts: none`: any re-prompt fails the transcript.
    no_reprompts: bool,
    actions: Vec<Action>,
}

#[derive(Debug)]
enum Action {
    Say { line: usize, content: Content, shown: String, expects: Vec<Expect> },
    Wait { line: usize, duration: Duration, expects: Vec<Expect> },
}

#[derive(Debug)]
enum Expect {
    Reply { line: usize, fragment: String },
    NoReplyContains { line: usize, fragment: String },
    Nothing { line: usize },
    Step { line: usize, step: Option<String> },
    Ended { line: usize, outcome: Outcome, at: Option<String> },
}

impl Action {
    fn expects_mut(&mut self) -> &mut Vec<Expect> {
        match self {
            Action::Say { expects, .. } | Action::Wait { expects, .. } => expects,
        }
    }
}

/// `(flow, vN)` from `src/<flow>/v<N>/transcripts/...`, the default versions of a file there.
fn folder_version(path: &Path) -> Option<(String, String)> {
    let parent = path.parent()?;
    if parent.file_name()? != "transcripts" {
        return None;
    }
    let version_dir = parent.parent()?;
    let version = version_dir.file_name()?.to_str()?;
    let digits = version.strip_prefix('v')?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let flow = version_dir.parent()?.file_name()?.to_str()?;
    Some((flow.to_owned(), version.to_owned()))
}

fn parse_file(path: &Path, source: &str) -> Result<Vec<Transcript>, String> {
    let default_version = folder_version(path);
    let mut transcripts: Vec<Transcript> = Vec::new();
    let err = |line: usize, message: String| format!("{}:{line}: {message}", path.display());

    for (idx, raw) in source.lines().enumerate() {
        let line = idx + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(name) = text.strip_prefix("===") {
            let name = name.trim();
            if name.is_empty() {
                return Err(err(line, "a transcript needs a name after '==='".to_owned()));
            }
            if transcripts.iter().any(|transcript| transcript.name == name) {
                return Err(err(line, format!("transcript name '{name}' is used twice in this file")));
            }
            transcripts.push(Transcript {
                file: path.to_owned(),
                name: name.to_owned(),
                line,
                versions: default_version.clone().into_iter().collect(),
                overrides: Vec::new(),
                contact: DEFAULT_CONTACT.to_owned(),
                instance: DEFAULT_INSTANCE.to_owned(),
                no_reprompts: false,
                actions: Vec::new(),
            });
            continue;
        }
        let Some(current) = transcripts.last_mut() else {
            return Err(err(line, "text before the first '=== name' line".to_owned()));
        };
        let header = |key: &str| text.strip_prefix(key).map(str::trim);
        let in_header = current.actions.is_empty();
        if let Some(list) = header("versions:") {
            if !in_header {
                return Err(err(line, "'versions:' belongs before the first '>' line".to_owned()));
            }
            current.versions.clear();
            for spec in list.split(',').map(str::trim).filter(|spec| !spec.is_empty()) {
                let Some((flow, version)) = spec.split_once('@') else {
                    return Err(err(line, format!("version '{spec}' must look like flow@vN")));
                };
                current.versions.push((flow.trim().to_owned(), version.trim().to_owned()));
            }
            if current.versions.is_empty() {
                return Err(err(line, "'versions:' lists no version".to_owned()));
            }
        } else if let Some(list) = header("overrides:") {
            if !in_header {
                return Err(err(line, "'overrides:' belongs before the first '>' line".to_owned()));
            }
            current
                .overrides
                .extend(list.split(',').map(str::trim).filter(|entry| !entry.is_empty()).map(str::to_owned));
        } else if let Some(contact) = header("contact:") {
            if !in_header {
                return Err(err(line, "'contact:' belongs before the first '>' line".to_owned()));
            }
            Contact::parse(contact).map_err(|problem| err(line, problem))?;
            current.contact = contact.to_owned();
        } else if let Some(value) = header("reprompts:") {
            if !in_header {
                return Err(err(line, "'reprompts:' belongs before the first '>' line".to_owned()));
            }
            if value != "none" {
                return Err(err(line, format!("'reprompts: {value}': the only setting is 'none'")));
            }
            current.no_reprompts = true;
        } else if let Some(instance) = header("instance:") {
            if !in_header {
                return Err(err(line, "'instance:' belongs before the first '>' line".to_owned()));
            }
            InstanceId::parse(instance).map_err(|problem| err(line, problem))?;
            current.instance = instance.to_owned();
        } else if let Some(message) = text.strip_prefix('>') {
            let (content, shown) = parse_message(message.trim()).map_err(|problem| err(line, problem))?;
            current.actions.push(Action::Say { line, content, shown, expects: Vec::new() });
        } else if let Some(duration) = text.strip_prefix("wait ") {
            let duration = parse_duration(duration.trim()).map_err(|problem| err(line, problem))?;
            current.actions.push(Action::Wait { line, duration, expects: Vec::new() });
        } else {
            let expect = if let Some(fragment) = text.strip_prefix("!<") {
                let fragment = fragment.trim();
                if fragment.is_empty() {
                    return Err(err(line, "'!<' needs a fragment".to_owned()));
                }
                Expect::NoReplyContains { line, fragment: fragment.to_owned() }
            } else if let Some(fragment) = text.strip_prefix('<') {
                match fragment.trim() {
                    "" => return Err(err(line, "'<' needs a fragment, or '(nothing)' for silence".to_owned())),
                    "(nothing)" => Expect::Nothing { line },
                    fragment => Expect::Reply { line, fragment: fragment.to_owned() },
                }
            } else if let Some(step) = text.strip_prefix('@') {
                match step.trim() {
                    "" => return Err(err(line, "'@' needs a step id, or 'none'".to_owned())),
                    "none" => Expect::Step { line, step: None },
                    step => Expect::Step { line, step: Some(step.to_owned()) },
                }
            } else if let Some(ended) = text.strip_prefix('=') {
                let mut words = ended.split_whitespace();
                let outcome = Outcome::parse(words.next().unwrap_or("")).map_err(|problem| err(line, problem))?;
                let at = match (words.next(), words.next(), words.next()) {
                    (None, _, _) => None,
                    (Some("at"), Some(step), None) => Some(step.to_owned()),
                    _ => return Err(err(line, "an ending looks like '= outcome' or '= outcome at step'".to_owned())),
                };
                Expect::Ended { line, outcome, at }
            } else {
                return Err(err(line, format!("cannot read '{text}' (see the format in tests/transcripts.rs)")));
            };
            let Some(action) = current.actions.last_mut() else {
                return Err(err(line, "an expectation needs a '>' or 'wait' line before it".to_owned()));
            };
            if matches!(action, Action::Wait { .. }) && !matches!(expect, Expect::Ended { .. } | Expect::Step { .. }) {
                return Err(err(
                    line,
                    "after 'wait' only '=' and '@' lines fit (the sweep sends no message)".to_owned(),
                ));
            }
            action.expects_mut().push(expect);
        }
    }

    for transcript in &transcripts {
        let problem =
            |line: usize, message: &str| Err(err(line, format!("transcript '{}': {message}", transcript.name)));
        if transcript.versions.is_empty() {
            return problem(transcript.line, "says no 'versions:' (required outside a version folder)");
        }
        if !transcript.actions.iter().any(|action| matches!(action, Action::Say { .. })) {
            return problem(transcript.line, "has no customer message");
        }
        for action in &transcript.actions {
            if let Action::Say { line, expects, .. } = action {
                let has_reply =
                    expects.iter().any(|expect| matches!(expect, Expect::Reply { .. } | Expect::Nothing { .. }));
                if !has_reply {
                    return problem(
                        *line,
                        "a customer message needs at least one '<' line ('< (nothing)' for silence)",
                    );
                }
                let nothing = expects.iter().any(|expect| matches!(expect, Expect::Nothing { .. }));
                if nothing && expects.iter().any(|expect| matches!(expect, Expect::Reply { .. })) {
                    return problem(*line, "'< (nothing)' contradicts a '<' fragment for the same message");
                }
            }
        }
    }
    Ok(transcripts)
}

/// The customer message of a `>` line, and how to show it in failures.
fn parse_message(text: &str) -> Result<(Content, String), String> {
    if text.is_empty() || text == "{empty}" {
        return Ok((Content::Text(String::new()), "(empty text)".to_owned()));
    }
    if let Some(kind) = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        if kind.is_empty() || !kind.chars().all(|ch| ch.is_ascii_lowercase()) {
            return Err(format!("'[{kind}]' must name a kind of content in lowercase letters, like [audio]"));
        }
        return Ok((Content::Unsupported(kind.to_owned()), format!("[{kind}]")));
    }
    if let Some(spec) = text.strip_prefix("{repeat ").and_then(|rest| rest.strip_suffix('}')) {
        let (unit, count) = spec.trim().rsplit_once(' ').ok_or("'{repeat TEXT N}' needs a text and a count")?;
        let count: usize = count.parse().map_err(|_| format!("'{count}' is not a repeat count"))?;
        if unit.is_empty() {
            return Err("'{repeat TEXT N}' needs a text".to_owned());
        }
        let message = unit.repeat(count);
        let shown = format!("{{repeat {unit} {count}}} ({} characters)", message.chars().count());
        return Ok((Content::Text(message), shown));
    }
    Ok((Content::Text(text.to_owned()), text.to_owned()))
}

fn discover(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|problem| panic!("cannot read {}: {problem}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            discover(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "txt")
            && path.parent().and_then(Path::file_name).is_some_and(|name| name == "transcripts")
        {
            out.push(path);
        }
    }
}

// ---------------------------------------------------------------------------
// Running.

fn registry() -> Arc<Registry> {
    match switchyard_flows::registry(&Deps::demo()) {
        Ok(registry) => Arc::new(registry),
        Err(errors) => {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            panic!("the flow registry is invalid:\n{}", list.join("\n"));
        }
    }
}

/// Polls a future that never waits (the in-memory store's), without a runtime.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory store never waits"),
    }
}

/// What one run contributed to the coverage proof and the turn counts.
#[derive(Default)]
struct RunLog {
    /// (flow, version, step) of every step entered.
    entered: BTreeSet<(String, String, String)>,
}

/// A session that ended in one turn, with the detail of its `Ended` event.
struct Ending {
    outcome: Outcome,
    step: String,
    flow: String,
    handover: bool,
}

fn endings(turn: &Turn) -> Vec<Ending> {
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

struct Run<'a> {
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
        match state.session.filter(Session::is_live) {
            Some(session) => {
                let _ =
                    write!(out, "\n    live session: {}@{} at '{}'", session.flow(), session.version(), session.step());
            }
            None => out.push_str("\n    no live session"),
        }
        out
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
                    let state = self.store.contact_state_now(&self.instance, &self.contact);
                    let live = state.session.filter(Session::is_live).map(|session| session.step().to_string());
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
        let turn = self.engine.turn(state, &inbound, self.now);
        self.store.commit_now(&turn).map_err(|problem| format!("commit refused: {problem}"))?;
        self.record(&turn);
        Ok(turn)
    }

    /// Moves the clock and runs the expiry sweep as the service does.
    fn wait(&mut self, duration: Duration) -> Result<Vec<Ending>, String> {
        self.now = self.now.plus(duration);
        let mut ended = Vec::new();
        for session in ready(self.store.expired(self.now, 100)).map_err(|problem| problem.to_string())? {
            let turn = self.engine.expire(session, self.now);
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
fn run(transcript: &Transcript, flow: &str, version: &str) -> Result<RunLog, String> {
    let registry = &registry();
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
                let replies: Vec<String> = turn.replies.iter().map(|reply| reply.text.clone()).collect();
                if show {
                    println!("> {shown}");
                    for reply in &replies {
                        println!("< {}", reply.replace('\n', "\n  "));
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

/// Every transcript run once per listed version; parse errors and failures
/// are collected, not stopped at.
struct Outcomes {
    failures: Vec<String>,
    entered: BTreeSet<(String, String, String)>,
    /// (label, transcripts run against it).
    runs: Vec<(String, usize)>,
    transcripts: usize,
}

fn run_all() -> &'static Outcomes {
    static OUTCOMES: OnceLock<Outcomes> = OnceLock::new();
    OUTCOMES.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        discover(&src, &mut files);
        let mut outcomes =
            Outcomes { failures: Vec::new(), entered: BTreeSet::new(), runs: Vec::new(), transcripts: 0 };
        for file in &files {
            let source = match std::fs::read_to_string(file) {
                Ok(source) => source,
                Err(problem) => {
                    outcomes.failures.push(format!("{}: cannot read: {problem}", file.display()));
                    continue;
                }
            };
            // Failures name the file relative to the crate, as the author knows it.
            let shown = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(file);
            let transcripts = match parse_file(shown, &source) {
                Ok(transcripts) => transcripts,
                Err(problem) => {
                    outcomes.failures.push(problem);
                    continue;
                }
            };
            if transcripts.is_empty() {
                outcomes.failures.push(format!("{}: holds no transcript", file.display()));
            }
            for transcript in &transcripts {
                outcomes.transcripts += 1;
                for (flow, version) in &transcript.versions {
                    let label = format!("{flow}@{version}");
                    match outcomes.runs.iter_mut().find(|(seen, _)| *seen == label) {
                        Some((_, count)) => *count += 1,
                        None => outcomes.runs.push((label, 1)),
                    }
                    match run(transcript, flow, version) {
                        Ok(log) => outcomes.entered.extend(log.entered),
                        Err(failure) => outcomes.failures.push(failure),
                    }
                }
            }
        }
        outcomes.runs.sort();
        outcomes
    })
}

#[test]
fn every_transcript_passes_on_every_version_it_lists() {
    let outcomes = run_all();
    let summary: Vec<String> = outcomes.runs.iter().map(|(label, count)| format!("{label}: {count}")).collect();
    println!("{} transcripts; runs per version: {}", outcomes.transcripts, summary.join(", "));
    assert!(
        outcomes.failures.is_empty(),
        "{} transcript failure(s):\n\n{}",
        outcomes.failures.len(),
        outcomes.failures.join("\n\n")
    );
    assert!(outcomes.transcripts >= 60, "expected at least 60 transcripts, found {}", outcomes.transcripts);
}

#[test]
fn every_step_of_every_version_is_entered_by_some_transcript() {
    let outcomes = run_all();
    let registry = registry();
    let mut missing = Vec::new();
    for fv in registry.all() {
        for step in fv.steps() {
            let key = (fv.flow().to_string(), fv.version().to_string(), step.id.to_owned());
            if !outcomes.entered.contains(&key) {
                missing.push(format!("{}@{}: {}", key.0, key.1, key.2));
            }
        }
    }
    assert!(missing.is_empty(), "steps no transcript enters:\n{}", missing.join("\n"));
}

/// The point of the rewrite: the same purchase takes fewer customer messages
/// on digital_certificate v2 than on v1.
#[test]
fn a_purchase_on_digital_certificate_v2_takes_fewer_turns_than_on_v1() {
    let registry = registry();
    let turns = |version: &str, messages: &[&str]| -> u32 {
        let overrides = Overrides::parse(&format!("digital_certificate={version}"), &registry).expect("valid override");
        let engine = Engine::new(
            Arc::clone(&registry),
            Resolver::new(&registry, overrides, Box::new(NoRules)),
            EngineConfig::default(),
        )
        .expect("engine");
        let store = MemoryStore::new();
        let (instance, contact) = (InstanceId::parse("vendas").unwrap(), Contact::parse(DEFAULT_CONTACT).unwrap());
        let mut now = START;
        let mut completed = None;
        for message in messages {
            now = now.plus(Duration::from_secs(1));
            let inbound = Inbound {
                instance: instance.clone(),
                contact: contact.clone(),
                content: Content::Text((*message).to_owned()),
            };
            let turn = engine.turn(store.contact_state_now(&instance, &contact), &inbound, now);
            store.commit_now(&turn).expect("commit");
            completed = completed.or_else(|| {
                turn.ended()
                    .find(|session| {
                        session.flow().as_str() == "digital_certificate"
                            && session.outcome() == Some(Outcome::Completed)
                    })
                    .map(Session::turns)
            });
        }
        completed.unwrap_or_else(|| panic!("the purchase on {version} did not complete"))
    };
    let v1 = turns(
        "v1",
        &[
            "quero comprar um certificado",
            "e-CPF",
            "A1",
            "529.982.247-25",
            "ana@exemplo.com.br",
            "videoconferência",
            "sim",
        ],
    );
    let v2 = turns("v2", &["quero comprar um certificado", "1", "529.982.247-25 ana@exemplo.com.br", "sim"]);
    assert!(v2 < v1, "v2 took {v2} turns, v1 {v1}");
    assert_eq!((v1, v2), (7, 4));
}

#[test]
fn the_parser_refuses_malformed_transcripts_with_file_and_line() {
    let path = Path::new("src/digital_certificate/v1/transcripts/example.txt");
    let cases = [
        ("> oi\n< olá\n", "before the first"),
        ("=== a\n> oi\n", "at least one '<'"),
        ("=== a\n> oi\n< olá\n=== a\n> oi\n< olá\n", "used twice"),
        ("=== a\n< olá\n", "needs a '>'"),
        ("=== a\n> oi\n< olá\n= finished\n", "outcome 'finished'"),
        ("=== a\n> oi\n< (nothing)\n< olá\n", "contradicts"),
        ("=== a\n> oi\n< olá\nwait 31\n", "duration"),
        ("=== a\n> oi\n< olá\nwait 31m\n< olá\n", "after 'wait'"),
        ("=== a\nversions: digital_certificate\n> oi\n< olá\n", "flow@vN"),
        ("=== a\n> {repeat a many}\n< olá\n", "repeat count"),
        ("=== a\n> oi\n< olá\n? what\n", "cannot read"),
        ("=== a\nreprompts: few\n> oi\n< olá\n", "only setting"),
    ];
    for (source, wanted) in cases {
        let problem = parse_file(path, source).expect_err(source);
        assert!(problem.contains(wanted) && problem.contains("example.txt:"), "{source:?}: {problem}");
    }
    let shared = Path::new("src/digital_certificate/transcripts/shared.txt");
    let problem = parse_file(shared, "=== a\n> oi\n< olá\n").expect_err("no versions");
    assert!(problem.contains("versions"), "{problem}");

    let parsed =
        parse_file(path, "=== a\n> {repeat ab 3}\n< x\n> [audio]\n< y\n>\n< z\nwait 31m\n= expired at route\n")
            .unwrap();
    assert_eq!(parsed[0].versions, [("digital_certificate".to_owned(), "v1".to_owned())]);
    let contents: Vec<&Content> = parsed[0]
        .actions
        .iter()
        .filter_map(|action| match action {
            Action::Say { content, .. } => Some(content),
            Action::Wait { .. } => None,
        })
        .collect();
    assert_eq!(
        contents,
        [&Content::Text("ababab".to_owned()), &Content::Unsupported("audio".to_owned()), &Content::Text(String::new())]
    );
}

/// `reprompts: none` fails a transcript at the first re-prompt, even when
/// every expectation holds (the v2 menu re-prompts for "quero arquivo").
#[test]
fn reprompts_none_fails_at_the_first_reprompt() {
    let path = Path::new("src/digital_certificate/v2/transcripts/example.txt");
    let source = "=== a\nreprompts: none\n> comprar certificado\n< Qual certificado\n> quero arquivo\n< Responda com o número\n";
    let parsed = parse_file(path, source).expect("parses");
    let failure = run(&parsed[0], "digital_certificate", "v2").err().expect("a re-prompt fails it");
    assert!(failure.contains("re-prompted at 'purchase.choose_product'"), "{failure}");
    let lenient = parse_file(path, &source.replace("reprompts: none\n", "")).expect("parses");
    assert!(run(&lenient[0], "digital_certificate", "v2").is_ok());
}
