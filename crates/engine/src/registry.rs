//! The registry of every compiled flow version, validated in two stages: the
//! raw [`VersionDecl`]s first, then checked [`FlowVersion`]s once every step and
//! flow name is known. Errors name the flow, version and step, with a
//! suggestion when a name is close to an existing one.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt;

use crate::flow::{Lifecycle, Next, Step, Target, VersionDecl};
use crate::ids::{Fingerprint, FlowId, Version};
use crate::text::Texts;

/// A problem found in the declared versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryError {
    BadFlowName { flow: String },
    BadVersion { flow: String, version: u32 },
    DuplicateVersion { flow: String, version: Version },
    NoActive { flow: String },
    ManyActive { flow: String, versions: Vec<Version> },
    BadStepId { flow: String, version: Version, step: String },
    DuplicateStep { flow: String, version: Version, step: String },
    UnknownEntry { flow: String, version: Version, entry: String, suggestion: Option<String> },
    DanglingStep { flow: String, version: Version, step: String, target: String, suggestion: Option<String> },
    DanglingFlow { flow: String, version: Version, step: String, target: String, suggestion: Option<String> },
    /// A step calls a flow (or a fixed version of one) that is not compiled in.
    DanglingCall { flow: String, version: Version, step: String, problem: String },
    Unreachable { flow: String, version: Version, step: String },
    BadTexts { flow: String, version: Version, problem: String },
    MissingText { flow: String, version: Version, step: String, key: String, suggestion: Option<String> },
    NoSteps { flow: String, version: Version },
    /// A weighed task's examples do not train (see [`crate::trained`]).
    BadExamples { flow: String, version: Version, problem: String },
}

fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(name) => format!(" (did you mean '{name}'?)"),
        None => String::new(),
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RegistryError::*;
        match self {
            BadFlowName { flow } => write!(f, "flow '{flow}': a flow name is lowercase letters, digits and '_'"),
            BadVersion { flow, version } => write!(f, "flow '{flow}': version {version} must be 1 or more"),
            DuplicateVersion { flow, version } => write!(f, "{flow}@{version}: declared twice"),
            NoActive { flow } => write!(f, "flow '{flow}': no version is declared active (exactly one must be)"),
            ManyActive { flow, versions } => {
                let list: Vec<String> = versions.iter().map(Version::to_string).collect();
                write!(f, "flow '{flow}': versions {} are all declared active (exactly one must be)", list.join(", "))
            }
            BadStepId { flow, version, step } => write!(
                f,
                "{flow}@{version}: step id '{step}' must be 'step' or 'subroute.step' in lowercase letters, digits and '_'"
            ),
            DuplicateStep { flow, version, step } => write!(f, "{flow}@{version}: step '{step}' is declared twice"),
            UnknownEntry { flow, version, entry, suggestion } => {
                write!(f, "{flow}@{version}: entry step '{entry}' does not exist{}", hint(suggestion))
            }
            DanglingStep { flow, version, step, target, suggestion } => write!(
                f,
                "{flow}@{version}: step '{step}' goes to unknown step '{target}'{}",
                hint(suggestion)
            ),
            DanglingFlow { flow, version, step, target, suggestion } => write!(
                f,
                "{flow}@{version}: step '{step}' hands over to unknown flow '{target}'{}",
                hint(suggestion)
            ),
            DanglingCall { flow, version, step, problem } => write!(f, "{flow}@{version}: step '{step}' {problem}"),
            Unreachable { flow, version, step } => {
                write!(f, "{flow}@{version}: step '{step}' cannot be reached from the entry step")
            }
            BadTexts { flow, version, problem } => write!(f, "{flow}@{version}: texts.txt {problem}"),
            MissingText { flow, version, step, key, suggestion } => write!(
                f,
                "{flow}@{version}: step '{step}' uses text '{key}' which texts.txt does not define{}",
                hint(suggestion)
            ),
            NoSteps { flow, version } => write!(f, "{flow}@{version}: declares no steps"),
            BadExamples { flow, version, problem } => write!(f, "{flow}@{version}: {problem}"),
        }
    }
}

impl std::error::Error for RegistryError {}

/// A step after validation: its handler and its checked transitions.
#[derive(Clone)]
pub struct CheckedStep {
    pub id: &'static str,
    /// Shared, so a registry extended at runtime ([`Registry::with`]) reuses
    /// the versions it already holds.
    pub handler: std::sync::Arc<dyn Step>,
    pub targets: Vec<Target>,
}

/// A validated flow version.
#[derive(Clone)]
pub struct FlowVersion {
    flow: FlowId,
    version: Version,
    lifecycle: Lifecycle,
    description: &'static str,
    fingerprint: Fingerprint,
    entry: usize,
    steps: Vec<CheckedStep>,
    subroutes: Vec<&'static str>,
    texts: Texts,
    raw_texts: &'static str,
    files: Vec<(&'static str, &'static str)>,
    tasks: Vec<crate::classify::Task>,
    /// (normalised phrases, target), see [`VersionDecl::interrupt`].
    interrupts: Vec<(Vec<String>, Next)>,
    /// The first bytes of the interrupt phrases, as a bitmap: a message
    /// with no word starting with one of them matches none (most messages
    /// are menu numbers, documents, a "sim").
    interrupt_starts: crate::text::WordStarts,
    /// (older version, its step, this version's step), see [`VersionDecl::step_map`].
    step_map: Vec<(Version, &'static str, &'static str)>,
    /// Weighed tasks with their trained classifiers, see [`VersionDecl::weighed`].
    weighed: Vec<crate::trained::TrainedTask>,
    /// What handlers reach through `Ctx::deps`.
    deps: Option<crate::flow::Deps>,
    /// The generated text keys, for versions that use them (see [`VersionDecl::typed_texts`]).
    typed_texts: Option<&'static [&'static str]>,
}

impl FlowVersion {
    pub fn flow(&self) -> &FlowId {
        &self.flow
    }
    pub fn version(&self) -> Version {
        self.version
    }
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }
    pub fn description(&self) -> &'static str {
        self.description
    }
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
    pub fn entry(&self) -> &CheckedStep {
        &self.steps[self.entry]
    }
    pub fn steps(&self) -> &[CheckedStep] {
        &self.steps
    }
    pub fn step(&self, id: &str) -> Option<&CheckedStep> {
        self.steps.iter().find(|step| step.id == id)
    }
    /// Subroute names in declaration order.
    pub fn subroutes(&self) -> &[&'static str] {
        &self.subroutes
    }
    pub fn texts(&self) -> &Texts {
        &self.texts
    }
    pub fn raw_texts(&self) -> &'static str {
        self.raw_texts
    }
    pub fn files(&self) -> &[(&'static str, &'static str)] {
        &self.files
    }
    /// The version's model tasks (classification and extraction prompts).
    pub fn tasks(&self) -> &[crate::classify::Task] {
        &self.tasks
    }
    pub fn task(&self, name: &str) -> Option<&crate::classify::Task> {
        self.tasks.iter().find(|task| task.name == name)
    }
    /// The tasks decided by weighing, with their trained classifiers.
    pub fn weighed(&self) -> &[crate::trained::TrainedTask] {
        &self.weighed
    }
    /// The trained classifier of task `name`, if it is weighed.
    pub fn trained(&self, name: &str) -> Option<&crate::trained::TrainedTask> {
        self.weighed.iter().find(|trained| trained.weighing.task.name == name)
    }
    /// Where a customer evacuated from `from` at `step` continues here.
    pub fn mapped_step(&self, from: Version, step: &str) -> Option<&'static str> {
        self.step_map.iter().find(|(version, old, _)| *version == from && *old == step).map(|(_, _, new)| *new)
    }

    /// The version's dependencies, for `Ctx::deps`.
    pub fn deps(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        self.deps.as_deref()
    }
    /// The text keys the build generated as constants, when the version uses
    /// them (its steps then list no keys: the compiler checked them).
    pub fn typed_texts(&self) -> Option<&'static [&'static str]> {
        self.typed_texts
    }

    pub fn step_map(&self) -> &[(Version, &'static str, &'static str)] {
        &self.step_map
    }

    pub fn interrupts(&self) -> &[(Vec<String>, Next)] {
        &self.interrupts
    }
    /// The interrupt `text` triggers, if any: the longest matching phrase wins.
    pub fn interrupt_for(&self, text: &str) -> Option<Next> {
        if self.interrupts.is_empty() {
            return None;
        }
        self.interrupt_for_normalized(&crate::text::normalize(text))
    }
    /// [`FlowVersion::interrupt_for`] for a text already normalised.
    pub fn interrupt_for_normalized(&self, normalized: &str) -> Option<Next> {
        if !self.interrupt_starts.start_a_word_of(normalized) {
            return None;
        }
        let mut best: Option<(Next, usize)> = None;
        for (phrases, to) in &self.interrupts {
            for phrase in phrases {
                if crate::text::contains_phrase(normalized, phrase) && best.is_none_or(|(_, len)| phrase.len() > len) {
                    best = Some((*to, phrase.len()));
                }
            }
        }
        best.map(|(to, _)| to)
    }
    /// `flow@version`, as errors and the CLI spell it.
    pub fn label(&self) -> String {
        format!("{}@{}", self.flow, self.version)
    }
}

/// Every compiled flow version, validated.
pub struct Registry {
    /// Sorted by (flow, version).
    versions: Vec<FlowVersion>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.versions.iter().map(FlowVersion::label)).finish()
    }
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        && !text.starts_with(|ch: char| ch.is_ascii_digit())
}

fn is_step_id(text: &str) -> bool {
    match text.split_once('.') {
        Some((subroute, step)) => is_name(subroute) && is_name(step),
        None => is_name(text),
    }
}

impl Registry {
    /// Validates every declaration; returns all problems found, not just the first.
    pub fn new(decls: Vec<VersionDecl>) -> Result<Registry, Vec<RegistryError>> {
        let mut errors = Vec::new();
        let flow_names: Vec<&'static str> = {
            let mut names: Vec<&'static str> = decls.iter().map(|decl| decl.flow).collect();
            names.sort_unstable();
            names.dedup();
            names
        };

        let mut seen = HashSet::new();
        let mut active: BTreeMap<&'static str, Vec<Version>> = BTreeMap::new();
        let mut versions = Vec::new();
        for decl in decls {
            let flow = decl.flow.to_owned();
            if !is_name(decl.flow) {
                errors.push(RegistryError::BadFlowName { flow });
                continue;
            }
            if decl.version == 0 {
                errors.push(RegistryError::BadVersion { flow, version: 0 });
                continue;
            }
            let version = Version::new(decl.version);
            if !seen.insert((decl.flow, version)) {
                errors.push(RegistryError::DuplicateVersion { flow, version });
                continue;
            }
            let entry = active.entry(decl.flow).or_default();
            if decl.lifecycle == Lifecycle::Active {
                entry.push(version);
            }
            if let Some(checked) = check_version(decl, &flow_names, &mut errors) {
                versions.push(checked);
            }
        }
        for (flow, actives) in active {
            match actives.len() {
                1 => {}
                0 => errors.push(RegistryError::NoActive { flow: flow.to_owned() }),
                _ => errors.push(RegistryError::ManyActive { flow: flow.to_owned(), versions: actives }),
            }
        }
        errors.extend(check_calls(&versions));
        if !errors.is_empty() {
            return Err(errors);
        }
        versions.sort_by(|a: &FlowVersion, b: &FlowVersion| (a.flow.as_str(), a.version).cmp(&(b.flow.as_str(), b.version)));
        Ok(Registry { versions })
    }

    /// This registry plus `decls` (versions published at runtime), checked
    /// exactly like compiled ones. Added versions may not be `active` (the
    /// code's active version stays the default) nor reuse a version number.
    /// The existing versions are shared, not rebuilt.
    pub fn with(&self, decls: Vec<VersionDecl>) -> Result<Registry, Vec<RegistryError>> {
        let mut errors = Vec::new();
        let mut flow_names: Vec<String> =
            self.versions.iter().map(|fv| fv.flow.as_str().to_owned()).chain(decls.iter().map(|decl| decl.flow.to_owned())).collect();
        flow_names.sort_unstable();
        flow_names.dedup();
        let mut versions = self.versions.clone();
        for decl in decls {
            let flow = decl.flow.to_owned();
            if !is_name(decl.flow) {
                errors.push(RegistryError::BadFlowName { flow });
                continue;
            }
            if decl.version == 0 {
                errors.push(RegistryError::BadVersion { flow, version: 0 });
                continue;
            }
            let version = Version::new(decl.version);
            if versions.iter().any(|fv| fv.version == version && fv.flow.as_str() == flow) {
                errors.push(RegistryError::DuplicateVersion { flow, version });
                continue;
            }
            if decl.lifecycle == Lifecycle::Active {
                let mut actives: Vec<Version> = versions.iter().filter(|fv| fv.flow.as_str() == flow && fv.lifecycle == Lifecycle::Active).map(|fv| fv.version).collect();
                actives.push(version);
                errors.push(RegistryError::ManyActive { flow, versions: actives });
                continue;
            }
            let names: Vec<&str> = flow_names.iter().map(String::as_str).collect();
            if let Some(checked) = check_version(decl, &names, &mut errors) {
                versions.push(checked);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        versions.sort_by(|a: &FlowVersion, b: &FlowVersion| (a.flow.as_str(), a.version).cmp(&(b.flow.as_str(), b.version)));
        Ok(Registry { versions })
    }

    pub fn all(&self) -> &[FlowVersion] {
        &self.versions
    }

    pub fn get(&self, flow: &str, version: Version) -> Option<&FlowVersion> {
        self.versions.iter().find(|fv| fv.version == version && fv.flow.as_str() == flow)
    }

    pub fn versions_of<'a>(&'a self, flow: &'a str) -> impl Iterator<Item = &'a FlowVersion> + 'a {
        self.versions.iter().filter(move |fv| fv.flow.as_str() == flow)
    }

    /// The version declared active in code.
    pub fn declared_active(&self, flow: &str) -> Option<&FlowVersion> {
        self.versions.iter().find(|fv| fv.lifecycle == Lifecycle::Active && fv.flow.as_str() == flow)
    }

    pub fn has_flow(&self, flow: &str) -> bool {
        self.versions.iter().any(|fv| fv.flow.as_str() == flow)
    }

    /// Flow names, sorted.
    pub fn flows(&self) -> Vec<&FlowId> {
        let mut flows: Vec<&FlowId> = self.versions.iter().map(|fv| &fv.flow).collect();
        flows.dedup();
        flows
    }

    /// Parses `flow@vN` into a compiled version, with an error naming what is wrong.
    pub fn lookup(&self, spec: &str) -> Result<&FlowVersion, String> {
        let (flow, version) = spec
            .split_once('@')
            .ok_or_else(|| format!("'{spec}' must look like FLOW@VERSION, for example digital_certificate@v1"))?;
        if !self.has_flow(flow) {
            let names: Vec<&str> = self.flows().into_iter().map(FlowId::as_str).collect();
            return Err(format!("unknown flow '{flow}'{}", hint(&suggest(flow, names.iter().copied()))));
        }
        let version = Version::parse(version)?;
        self.get(flow, version).ok_or_else(|| {
            let known: Vec<String> = self.versions_of(flow).map(|fv| fv.version.to_string()).collect();
            format!("flow '{flow}' has no version {version} (compiled: {})", known.join(", "))
        })
    }
}

fn check_version(decl: VersionDecl, flow_names: &[&str], errors: &mut Vec<RegistryError>) -> Option<FlowVersion> {
    let flow = decl.flow.to_owned();
    let version = Version::new(decl.version);
    let before = errors.len();

    if decl.steps.is_empty() {
        errors.push(RegistryError::NoSteps { flow, version });
        return None;
    }
    let (texts, texts_ok) = match Texts::parse(decl.texts) {
        Ok(texts) => (texts, true),
        Err(problem) => {
            errors.push(RegistryError::BadTexts { flow: flow.clone(), version, problem });
            (Texts::default(), false)
        }
    };

    if let (true, Some(keys)) = (texts_ok, decl.typed_texts) {
        let defined: Vec<&str> = texts.keys().collect();
        if let Some(key) = keys.iter().find(|key| !defined.contains(key)) {
            errors.push(RegistryError::BadTexts { flow: flow.clone(), version, problem: format!("has no text '{key}', which the generated constants name") });
        } else if let Some(key) = defined.iter().find(|key| !keys.contains(key)) {
            errors.push(RegistryError::BadTexts { flow: flow.clone(), version, problem: format!("defines '{key}', which the generated constants do not name (rebuild)") });
        }
    }

    let mut ids: Vec<&'static str> = Vec::new();
    for step in &decl.steps {
        if !is_step_id(step.id) {
            errors.push(RegistryError::BadStepId { flow: flow.clone(), version, step: step.id.to_owned() });
        } else if ids.contains(&step.id) {
            errors.push(RegistryError::DuplicateStep { flow: flow.clone(), version, step: step.id.to_owned() });
        }
        ids.push(step.id);
    }

    let entry = ids.iter().position(|id| *id == decl.entry);
    if entry.is_none() {
        errors.push(RegistryError::UnknownEntry {
            flow: flow.clone(),
            version,
            entry: decl.entry.to_owned(),
            suggestion: suggest(decl.entry, ids.iter().copied()),
        });
    }

    let mut steps = Vec::with_capacity(decl.steps.len());
    for step in decl.steps {
        let targets = step.handler.targets();
        for target in &targets {
            match *target {
                Next::Goto(name) if !ids.contains(&name) => errors.push(RegistryError::DanglingStep {
                    flow: flow.clone(),
                    version,
                    step: step.id.to_owned(),
                    target: name.to_owned(),
                    suggestion: suggest(name, ids.iter().copied()),
                }),
                Next::Handover(name) if !flow_names.contains(&name) => errors.push(RegistryError::DanglingFlow {
                    flow: flow.clone(),
                    version,
                    step: step.id.to_owned(),
                    target: name.to_owned(),
                    suggestion: suggest(name, flow_names.iter().copied()),
                }),
                Next::Call(spec) => {
                    let problem = match crate::call::Callee::parse(spec) {
                        Err(problem) => Some(problem),
                        Ok(callee) if !flow_names.contains(&callee.flow) => Some(format!(
                            "calls unknown flow '{}'{}",
                            callee.flow,
                            hint(&suggest(callee.flow, flow_names.iter().copied()))
                        )),
                        Ok(_) => None,
                    };
                    if let Some(problem) = problem {
                        errors.push(RegistryError::DanglingCall { flow: flow.clone(), version, step: step.id.to_owned(), problem });
                    }
                }
                _ => {}
            }
        }
        if texts_ok {
            for key in step.handler.text_keys() {
                if !texts.contains(key) {
                    errors.push(RegistryError::MissingText {
                        flow: flow.clone(),
                        version,
                        step: step.id.to_owned(),
                        key: key.to_owned(),
                        suggestion: suggest(key, texts.keys()),
                    });
                }
            }
        }
        steps.push(crate::registry::CheckedStep { id: step.id, handler: std::sync::Arc::from(step.handler), targets });
    }

    for (_, to) in &decl.interrupts {
        match to.target() {
            Some(Next::Goto(name)) if !ids.contains(&name) => errors.push(RegistryError::DanglingStep {
                flow: flow.clone(),
                version,
                step: "<interrupt>".to_owned(),
                target: name.to_owned(),
                suggestion: suggest(name, ids.iter().copied()),
            }),
            Some(Next::Handover(name)) if !flow_names.contains(&name) => errors.push(RegistryError::DanglingFlow {
                flow: flow.clone(),
                version,
                step: "<interrupt>".to_owned(),
                target: name.to_owned(),
                suggestion: suggest(name, flow_names.iter().copied()),
            }),
            _ => {}
        }
    }

    for (from, old, new) in &decl.step_map {
        if !ids.contains(new) {
            errors.push(RegistryError::DanglingStep {
                flow: flow.clone(),
                version,
                step: format!("<step map from v{from} '{old}'>"),
                target: (*new).to_owned(),
                suggestion: suggest(new, ids.iter().copied()),
            });
        }
    }

    let mut weighed = Vec::new();
    for weighing in &decl.weighings {
        match crate::trained::TrainedTask::new(*weighing) {
            Ok(trained) => weighed.push(trained),
            Err(problem) => errors.push(RegistryError::BadExamples { flow: flow.clone(), version, problem }),
        }
    }

    let entry = entry?;
    // Reachability: breadth-first over declared step transitions; interrupt
    // targets are reachable from every step.
    let mut reached = vec![false; steps.len()];
    let mut queue = VecDeque::from([entry]);
    reached[entry] = true;
    for (_, to) in &decl.interrupts {
        if let Some(Next::Goto(name)) = to.target() && let Some(idx) = ids.iter().position(|id| *id == name) && !reached[idx] {
            reached[idx] = true;
            queue.push_back(idx);
        }
    }
    while let Some(idx) = queue.pop_front() {
        for target in &steps[idx].targets {
            if let Next::Goto(name) = target && let Some(next) = ids.iter().position(|id| id == name) && !reached[next] {
                reached[next] = true;
                queue.push_back(next);
            }
        }
    }
    for (idx, step) in steps.iter().enumerate() {
        if !reached[idx] {
            errors.push(RegistryError::Unreachable { flow: flow.clone(), version, step: step.id.to_owned() });
        }
    }

    if errors.len() > before {
        return None;
    }
    let mut subroutes: Vec<&'static str> = Vec::new();
    for step in &steps {
        if let Some((subroute, _)) = step.id.split_once('.') && !subroutes.contains(&subroute) {
            subroutes.push(subroute);
        }
    }
    let interrupts: Vec<(Vec<String>, Next)> = decl
        .interrupts
        .iter()
        .map(|(phrases, to)| (phrases.iter().map(|phrase| crate::text::normalize(phrase)).collect(), *to))
        .collect();
    let interrupt_starts = crate::text::WordStarts::firsts(interrupts.iter().flat_map(|(phrases, _)| phrases.iter().map(String::as_str)));
    Some(FlowVersion {
        flow: FlowId::new_static(decl.flow),
        version,
        lifecycle: decl.lifecycle,
        description: decl.description,
        fingerprint: decl.fingerprint,
        entry,
        steps,
        subroutes,
        texts,
        raw_texts: decl.texts,
        files: decl.files,
        tasks: decl.tasks,
        deps: decl.deps,
        typed_texts: decl.typed_texts,
        step_map: decl.step_map.iter().map(|(from, old, new)| (Version::new(*from), *old, *new)).collect(),
        weighed,
        interrupt_starts,
        interrupts,
    })
}

/// Calls that fix a version (`flow@vN`) must name a compiled one; checked
/// once every version is known (unknown flows are reported per version).
pub fn check_calls(versions: &[FlowVersion]) -> Vec<RegistryError> {
    let mut errors = Vec::new();
    for fv in versions {
        for step in &fv.steps {
            for target in &step.targets {
                let Next::Call(spec) = target else { continue };
                let Ok(crate::call::Callee { flow, version: Some(fixed) }) = crate::call::Callee::parse(spec) else { continue };
                let compiled: Vec<String> = versions.iter().filter(|other| other.flow.as_str() == flow).map(|other| other.version.to_string()).collect();
                if !compiled.is_empty() && !compiled.contains(&fixed.to_string()) {
                    errors.push(RegistryError::DanglingCall {
                        flow: fv.flow.to_string(),
                        version: fv.version,
                        step: step.id.to_owned(),
                        problem: format!("calls {spec}, which is not compiled (compiled: {})", compiled.join(", ")),
                    });
                }
            }
        }
    }
    errors
}

/// The candidate closest to `name` by edit distance, if it is close enough to
/// be a plausible typo.
pub fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .map(|candidate| (edit_distance(name, candidate).min(suffix_distance(name, candidate)), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate.to_owned())
}

/// Distance between the step parts of `subroute.step` ids, so that
/// `purchase.ask_cpf` can still suggest `purchase.collect_document` only when
/// the subroute matches and the step is close; otherwise unbounded.
fn suffix_distance(a: &str, b: &str) -> usize {
    match (a.split_once('.'), b.split_once('.')) {
        (Some((sub_a, step_a)), Some((sub_b, step_b))) if sub_a == sub_b => edit_distance(step_a, step_b),
        _ => usize::MAX,
    }
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b_chars.len()).collect();
    let mut cur = vec![0; b_chars.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b_chars.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b_chars.len()]
}
