//! A document turned into a `VersionDecl`, so the registry checks it exactly
//! like a compiled version (unknown, unreachable or missing steps and texts,
//! with "did you mean"). What only a document can get wrong (an unknown
//! function or endpoint, an action outcome left unmapped) is checked here,
//! with the same message shape.
//!
//! The engine's declarations hold `&'static str`: a document's strings are
//! interned once per process (the same text is leaked once however often
//! it is published or validated), so memory grows with the distinct
//! documents a process has seen, not with how often.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use switchyard_engine::classify::{Task, Wanted};
use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::form::{Form, Slot, Source};
use switchyard_engine::ids::Fingerprint;
use switchyard_engine::kinds::{Ask, Call, Custom, Menu, Say};
use switchyard_engine::registry::suggest;
use switchyard_engine::text::{contains_phrase, normalize};
use switchyard_engine::trained::Weighing;
use switchyard_flows::functions::{self, Function};

use super::http::HttpStep;
use super::{Document, Step};

/// `text` as a `&'static str`, leaked at most once per distinct text.
pub fn intern(text: &str) -> &'static str {
    static SEEN: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut seen = SEEN.get_or_init(Mutex::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = seen.get(text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    seen.insert(leaked);
    leaked
}

/// What the document is built against: the endpoints the configuration
/// allows (by name) and the dependencies registered functions reach.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub endpoints: &'a [String],
    pub deps: &'a switchyard_flows::Deps,
}

/// The declaration of `document` as version `version` (inactive), with its
/// fingerprint, or every problem found, one line each
/// (`billing@v3: step 'x' names unknown function 'y' (did you mean 'z'?)`).
pub fn build(document: &Document, version: u32, context: &Context<'_>) -> Result<VersionDecl, Vec<String>> {
    let label = format!("{}@v{version}", document.flow);
    let mut problems = Vec::new();
    let mut builder = Builder { label: &label, problems: &mut problems, texts: document.texts.keys().map(String::as_str).collect() };
    for (key, text) in &document.texts {
        if let Some(line) = text.lines().find(|line| is_key_line(line) || line.trim_start().starts_with("//")) {
            builder.problem(format!("text '{key}' has a line that reads as a key or a comment ('{}'): reword it", line.trim()));
        }
        if text.trim().is_empty() {
            builder.problem(format!("text '{key}' is empty"));
        }
    }
    let flow = intern(&document.flow);
    let mut decl = VersionDecl::new(flow, version, Lifecycle::Inactive)
        .description(intern(&document.description))
        .entry(intern(&document.entry))
        .texts(intern(&texts_file(document)))
        .fingerprint(Fingerprint::new(document.fingerprint()))
        .deps(context.deps.clone());
    let mut tasks: Vec<(Task, Option<Weighing>, Vec<(&'static str, Vec<String>)>)> = Vec::new();
    for task in &document.tasks {
        tasks.push(builder.task(task));
    }
    for (task, weighing, _) in &tasks {
        decl = match weighing {
            Some(weighing) => decl.weighed(*weighing),
            None => decl.task(*task),
        };
    }
    let mut seen_ids: HashSet<&str> = HashSet::new();
    for step in &document.steps {
        if !seen_ids.insert(step.id()) {
            continue; // the registry names the duplicate
        }
        if ["complete", "handoff", "cancel"].contains(&step.id()) {
            builder.problem(format!("step id '{}' is reserved: transitions use it for the outcome; name the step otherwise", step.id()));
        }
        let id = intern(step.id());
        match builder.step(step, context, &tasks) {
            Some(handler) => decl.steps.push(switchyard_engine::flow::StepDecl { id, handler }),
            None => decl.steps.push(switchyard_engine::flow::StepDecl { id, handler: Box::new(Custom::new(&[], |_, _| Next::Wait)) }),
        }
    }
    if problems.is_empty() { Ok(decl) } else { Err(problems) }
}

/// The flow of a `flow@vN` label.
fn context_flow(label: &str) -> &str {
    label.split('@').next().unwrap_or(label)
}

/// A line the texts format would read as a `[key]`.
fn is_key_line(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.starts_with('[') && trimmed.ends_with(']') && trimmed.len() > 2
}

/// The texts in the `texts.txt` format the registry parses.
fn texts_file(document: &Document) -> String {
    let mut out = String::new();
    for (key, text) in &document.texts {
        out.push_str(&format!("[{key}]\n{text}\n\n"));
    }
    out
}

struct Builder<'a> {
    label: &'a str,
    problems: &'a mut Vec<String>,
    texts: Vec<&'a str>,
}

impl Builder<'_> {
    fn problem(&mut self, problem: String) {
        self.problems.push(format!("{}: {problem}", self.label));
    }

    /// A transition: a step id, `complete`, `handoff`, `cancel` or `flow:NAME`.
    fn target(&mut self, text: &str) -> Next {
        match text {
            "complete" => Next::Complete,
            "handoff" => Next::Handoff,
            "cancel" => Next::Cancel,
            _ => match text.strip_prefix("flow:") {
                Some(flow) => Next::Handover(intern(flow)),
                None => Next::Goto(intern(text)),
            },
        }
    }

    fn function(&mut self, step: &str, name: &str, shape: &str) -> Option<Function> {
        match functions::find(name) {
            Some(function) if function.shape() == shape => Some(function),
            Some(function) => {
                self.problem(format!("step '{step}' names '{name}', which is a {}, where a {shape} is needed", function.shape()));
                None
            }
            None => {
                let hint = suggest(name, functions::names()).map(|name| format!(" (did you mean '{name}'?)")).unwrap_or_default();
                self.problem(format!("step '{step}' names unknown function '{name}'{hint}"));
                None
            }
        }
    }

    fn need_text(&mut self, step: &str, key: &str) {
        if !self.texts.contains(&key) {
            let hint = suggest(key, self.texts.iter().copied()).map(|name| format!(" (did you mean '{name}'?)")).unwrap_or_default();
            self.problem(format!("step '{step}' uses text '{key}' which the document's texts do not define{hint}"));
        }
    }

    fn task(&mut self, task: &super::TaskDoc) -> (Task, Option<Weighing>, Vec<(&'static str, Vec<String>)>) {
        let classes: Vec<&'static str> = task.classes.iter().map(|class| intern(class)).collect();
        let classes: &'static [&'static str] = Box::leak(classes.into_boxed_slice());
        let name = intern(&task.name);
        let file = intern(&format!("prompts/{}.txt", task.name));
        let built = Task { name, file, prompt: intern(&task.prompt), ask: Wanted::Class(classes), keywords: None };
        let mut words = Vec::new();
        for (class, phrases) in &task.words {
            match classes.iter().find(|known| **known == class) {
                Some(known) => words.push((*known, phrases.iter().map(|phrase| normalize(phrase)).collect())),
                None => self.problem(format!("task '{}' has words for unknown class '{class}'", task.name)),
            }
        }
        let weighing = (!task.examples.is_empty()).then(|| {
            let examples: String = task.examples.iter().map(|(class, text)| format!("{class}\t{}\n", text.replace(['\t', '\n'], " "))).collect();
            Weighing { task: built, file: intern(&format!("examples/{}.tsv", task.name)), examples: intern(&examples), sure: None }
        });
        (built, weighing, words)
    }

    fn step(
        &mut self,
        step: &Step,
        context: &Context<'_>,
        tasks: &[(Task, Option<Weighing>, Vec<(&'static str, Vec<String>)>)],
    ) -> Option<Box<dyn switchyard_engine::flow::Step>> {
        let id = step.id();
        match step {
            Step::Menu { prompt, invalid, options, exhausted, max_attempts, .. } => {
                let mut menu = Menu::new(intern(prompt), intern(invalid));
                if options.is_empty() {
                    self.problem(format!("step '{id}' is a menu without options"));
                }
                for option in options {
                    let words: Vec<&str> = option.words.iter().map(String::as_str).collect();
                    let to = self.target(&option.to);
                    menu = match option.set.len() {
                        0 => menu.option(&words, to),
                        1 => {
                            let (key, value) = option.set.iter().next()?;
                            menu.option_set(&words, to, intern(key), intern(value))
                        }
                        _ => {
                            self.problem(format!("step '{id}': a menu option sets at most one value"));
                            menu
                        }
                    };
                }
                if let Some(key) = exhausted {
                    menu = menu.exhausted(intern(key));
                }
                if let Some(attempts) = max_attempts {
                    menu = menu.max_attempts(*attempts);
                }
                Some(Box::new(menu))
            }
            Step::Ask { prompt, invalid, save_as, validate, then, exhausted, max_attempts, .. } => {
                let Some(Function::Validator(validator)) = self.function(id, validate, "validator") else { return None };
                let then = self.target(then);
                let mut ask = Ask::new(intern(prompt), intern(save_as), validator, intern(invalid), then);
                if let Some(key) = exhausted {
                    ask = ask.exhausted(intern(key));
                }
                if let Some(attempts) = max_attempts {
                    ask = ask.max_attempts(*attempts);
                }
                Some(Box::new(ask))
            }
            Step::Say { text, then, .. } => Some(Box::new(Say::then(intern(text), self.target(then)))),
            Step::End { text, .. } => match text {
                Some(text) => Some(Box::new(Say::finish(intern(text)))),
                None => Some(Box::new(Custom::enter_only(&[], |_| Next::Complete))),
            },
            Step::Handoff { text, .. } => {
                let text = intern(text);
                Some(Box::new(Custom::enter_only(&[], move |ctx: &mut Ctx<'_>| {
                    ctx.say(text);
                    Next::Handoff
                }).texts(&[text])))
            }
            Step::Form { slots, then, exhausted, max_attempts, .. } => {
                let mut built = Vec::new();
                for slot in slots {
                    let name = intern(&slot.name);
                    let mut made = match (&slot.question, &slot.default) {
                        (_, Some(value)) => Slot::defaulting(name, intern(value)),
                        (Some(question), None) => Slot::new(name, intern(question)),
                        (None, None) => {
                            self.problem(format!("step '{id}': slot '{}' needs a question or a default", slot.name));
                            continue;
                        }
                    };
                    if slot.extract.is_empty() {
                        self.problem(format!("step '{id}': slot '{}' names no extractor", slot.name));
                    }
                    for name in &slot.extract {
                        if let Some(Function::Extractor(extractor, refusals)) = self.function(id, name, "extractor") {
                            for key in refusals {
                                self.need_text(id, key);
                            }
                            made = made.by(Source::Validator, extractor);
                        }
                    }
                    let clears: Vec<&'static str> = slot.clears.iter().map(|name| intern(name)).collect();
                    made = made.clears(&clears);
                    if let Some(key) = &slot.reprompt {
                        made = made.reprompt(intern(key));
                    }
                    built.push(made);
                }
                let mut form = Form::then(built, self.target(then));
                if let Some(key) = exhausted {
                    form = form.exhausted(intern(key));
                }
                if let Some(attempts) = max_attempts {
                    form = form.max_attempts(*attempts);
                }
                Some(Box::new(form))
            }
            Step::Action { function, on, .. } => {
                let Some(Function::Action(action)) = self.function(id, function, "action") else { return None };
                let mut outcomes: Vec<(&'static str, Next)> = Vec::new();
                for outcome in action.outcomes {
                    match on.get(*outcome) {
                        Some(to) => outcomes.push((outcome, self.target(to))),
                        None => self.problem(format!("step '{id}': outcome '{outcome}' of '{function}' goes nowhere (add it to 'on')")),
                    }
                }
                for outcome in on.keys() {
                    if !action.outcomes.contains(&outcome.as_str()) {
                        let hint = suggest(outcome, action.outcomes.iter().copied()).map(|name| format!(" (did you mean '{name}'?)")).unwrap_or_default();
                        self.problem(format!("step '{id}': '{function}' has no outcome '{outcome}'{hint}"));
                    }
                }
                let targets: Vec<Next> = outcomes.iter().map(|(_, to)| *to).collect();
                let run = action.run;
                Some(Box::new(Custom::enter_only(&targets, move |ctx: &mut Ctx<'_>| {
                    let reached = run(ctx);
                    outcomes.iter().find(|(outcome, _)| *outcome == reached).map_or(Next::Handoff, |(_, to)| *to)
                })))
            }
            Step::Route { task, routes, otherwise, .. } => {
                let Some((built, _, words)) = tasks.iter().find(|(known, _, _)| known.name == task).cloned() else {
                    let names: Vec<&str> = tasks.iter().map(|(known, _, _)| known.name).collect();
                    let hint = suggest(task, names.into_iter()).map(|name| format!(" (did you mean '{name}'?)")).unwrap_or_default();
                    self.problem(format!("step '{id}' uses unknown task '{task}'{hint}"));
                    return None;
                };
                let mut ways: Vec<(&'static str, Next)> = Vec::new();
                for (class, to) in routes {
                    match built.classes().iter().find(|known| **known == class) {
                        Some(known) => ways.push((known, self.target(to))),
                        None => self.problem(format!("step '{id}' routes unknown class '{class}' of task '{task}'")),
                    }
                }
                let otherwise = self.target(otherwise);
                let mut targets: Vec<Next> = ways.iter().map(|(_, to)| *to).collect();
                targets.push(otherwise);
                Some(Box::new(Custom::enter_only(&targets, move |ctx: &mut Ctx<'_>| {
                    let text = ctx.message().unwrap_or("").to_owned();
                    let normalized = normalize(&text);
                    let by_words = words.iter().find(|(_, phrases)| phrases.iter().any(|phrase| contains_phrase(&normalized, phrase))).map(|(class, _)| *class);
                    let class = by_words.or_else(|| ctx.weigh(&built, &text));
                    class.and_then(|class| ways.iter().find(|(known, _)| *known == class)).map_or(otherwise, |(_, to)| *to)
                })))
            }
            Step::Call { flow, then, .. } => {
                // An unknown callee flow is the registry's to name (with "did
                // you mean"); a fixed version that does not exist, `extend`'s.
                match switchyard_engine::call::Callee::parse(flow) {
                    Err(problem) => {
                        self.problem(format!("step '{id}': {problem} (write {flow_name} or {flow_name}@vN)", flow_name = flow.split('@').next().unwrap_or(flow)));
                        return None;
                    }
                    Ok(callee) if callee.flow == context_flow(self.label) => {
                        self.problem(format!("step '{id}' calls its own flow '{}': a flow cannot call itself", callee.flow));
                        return None;
                    }
                    Ok(_) => {}
                }
                Some(Box::new(Call::new(intern(flow)).then(self.target(then))))
            }
            Step::Http { endpoint, method, path, send, map, then, failure, .. } => {
                if !context.endpoints.iter().any(|known| known == endpoint) {
                    let hint = suggest(endpoint, context.endpoints.iter().map(String::as_str)).map(|name| format!(" (did you mean '{name}'?)")).unwrap_or_default();
                    let allowed = if context.endpoints.is_empty() { "none is configured".to_owned() } else { format!("allowed: {}", context.endpoints.join(", ")) };
                    self.problem(format!("step '{id}' calls endpoint '{endpoint}', which the configuration's [endpoints] does not allow{hint} ({allowed})"));
                }
                if path.contains("://") || path.contains('@') || (!path.is_empty() && !path.starts_with('/')) {
                    self.problem(format!("step '{id}': path '{path}' must start with '/' and hold no host or credentials (the endpoint names the base URL)"));
                }
                for (slot, pointer) in map {
                    if !(pointer.is_empty() || pointer.starts_with('/')) {
                        self.problem(format!("step '{id}': '{pointer}' (for slot '{slot}') is not a JSON pointer (they start with '/')"));
                    }
                }
                Some(Box::new(HttpStep {
                    id: intern(id),
                    endpoint: intern(endpoint),
                    method: *method,
                    path: intern(path),
                    send: send.iter().map(|slot| intern(slot)).collect(),
                    map: map.iter().map(|(slot, pointer)| (intern(slot), intern(pointer))).collect(),
                    then: self.target(then),
                    failure: self.target(failure),
                }))
            }
        }
    }
}
