//! Which version a new session gets, and why.
//!
//! Resolution order (DESIGN section 3): `override` > `pin` > `instance` >
//! `schedule` > `split` > `active`. The override comes from
//! `FLOW_VERSION_OVERRIDES` and beats everything; the runtime rules between it
//! and `active` live in a [`Policy`]; `active` is the version declared active in
//! code. Callers only ever call [`Resolver::resolve`], so new rule kinds plug in
//! without touching them.

use std::fmt;
use std::sync::{Arc, RwLock};

use crate::ids::{Contact, FlowId, InstanceId, Version};
use crate::registry::{suggest, Registry};
use crate::time::Timestamp;

/// Why a session got its version. Stored on the session and in the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `FLOW_VERSION_OVERRIDES` names this version.
    Override,
    /// A runtime policy rule chose it; `rule` names the rule kind
    /// (`pin`, `instance`, `schedule`, `split`, `promote`) and `detail` its specifics.
    Rule { rule: String, detail: Option<String> },
    /// The version declared active in code.
    Active,
}

impl Reason {
    /// The reason's name as stored and shown: `override`, `active` or the rule kind.
    pub fn name(&self) -> &str {
        match self {
            Reason::Override => "override",
            Reason::Rule { rule, .. } => rule,
            Reason::Active => "active",
        }
    }
    pub fn detail(&self) -> Option<&str> {
        match self {
            Reason::Rule { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }
    /// Rebuilds a reason from its stored name and detail.
    pub fn from_parts(name: &str, detail: Option<&str>) -> Reason {
        match name {
            "override" => Reason::Override,
            "active" => Reason::Active,
            rule => Reason::Rule { rule: rule.to_owned(), detail: detail.map(str::to_owned) },
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.detail() {
            Some(detail) => write!(f, "{} ({detail})", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// The parsed `FLOW_VERSION_OVERRIDES`: at most one version per flow, each
/// one compiled into this binary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    entries: Vec<(FlowId, Version)>,
}

impl Overrides {
    pub fn none() -> Overrides {
        Overrides::default()
    }

    /// Parses `flow=vN,flow=vN` strictly against the registry. Whitespace around
    /// names and an empty value are fine; every other problem is reported, one
    /// message per bad entry, each naming the entry.
    pub fn parse(text: &str, registry: &Registry) -> Result<Overrides, Vec<String>> {
        let mut entries: Vec<(FlowId, Version)> = Vec::new();
        let mut problems = Vec::new();
        if text.trim().is_empty() {
            return Ok(Overrides::none());
        }
        for (idx, raw) in text.split(',').enumerate() {
            let entry = raw.trim();
            let position = idx + 1;
            let Some((flow, version)) = entry.split_once('=') else {
                problems.push(if entry.is_empty() {
                    format!("FLOW_VERSION_OVERRIDES entry {position} is empty (remove the extra comma)")
                } else {
                    format!("FLOW_VERSION_OVERRIDES entry '{entry}' must look like flow=vN, for example digital_certificate=v1")
                });
                continue;
            };
            let (flow, version) = (flow.trim(), version.trim());
            if !registry.has_flow(flow) {
                let names: Vec<&str> = registry.flows().into_iter().map(FlowId::as_str).collect();
                let hint = match suggest(flow, names.iter().copied()) {
                    Some(name) => format!(" (did you mean '{name}'?)"),
                    None => format!(" (flows: {})", names.join(", ")),
                };
                problems.push(format!("FLOW_VERSION_OVERRIDES entry '{entry}': unknown flow '{flow}'{hint}"));
                continue;
            }
            let version = match Version::parse(version) {
                Ok(version) => version,
                Err(problem) => {
                    problems.push(format!("FLOW_VERSION_OVERRIDES entry '{entry}': {problem}"));
                    continue;
                }
            };
            let Some(compiled) = registry.get(flow, version) else {
                let known: Vec<String> = registry.versions_of(flow).map(|fv| fv.version().to_string()).collect();
                problems.push(format!(
                    "FLOW_VERSION_OVERRIDES entry '{entry}': flow '{flow}' has no version {version} (compiled: {})",
                    known.join(", ")
                ));
                continue;
            };
            if entries.iter().any(|(seen, _)| seen.as_str() == flow) {
                problems.push(format!("FLOW_VERSION_OVERRIDES entry '{entry}': flow '{flow}' is overridden twice"));
                continue;
            }
            entries.push((compiled.flow().clone(), version));
        }
        if problems.is_empty() { Ok(Overrides { entries }) } else { Err(problems) }
    }

    pub fn get(&self, flow: &str) -> Option<Version> {
        self.entries.iter().find(|(name, _)| name.as_str() == flow).map(|(_, version)| *version)
    }

    pub fn entries(&self) -> &[(FlowId, Version)] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Display for Overrides {
    /// The canonical `flow=vN,flow=vN` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, (flow, version)) in self.entries.iter().enumerate() {
            if idx > 0 {
                f.write_str(",")?;
            }
            write!(f, "{flow}={version}")?;
        }
        Ok(())
    }
}

/// What resolution looks at.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub flow: &'a str,
    pub instance: &'a InstanceId,
    pub contact: &'a Contact,
    pub now: Timestamp,
}

/// A version and the reason it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub version: Version,
    pub reason: Reason,
}

/// Runtime rollout rules (pin, instance, schedule, split, promote), evaluated
/// between the override and the code's active version. Implementations live
/// where the rules are stored; the engine only asks.
pub trait Policy: Send + Sync {
    /// The rule's choice for this query, or `None` to fall through to `active`.
    /// A returned version must be compiled in; the resolver ignores it otherwise.
    fn resolve(&self, query: &Query<'_>) -> Option<Resolution>;

    /// The whole evaluation (each rule considered, whether it matched), for
    /// `explain`. `None` when the policy has nothing for this flow.
    fn explain(&self, query: &Query<'_>) -> Option<crate::rollout::Evaluation> {
        let _ = query;
        None
    }

    /// Like [`Policy::resolve`], given the version a split assigned this
    /// contact before (assignment memory). The flag asks the caller to
    /// remember the returned version. Policies without memory ignore it.
    fn resolve_remembering(&self, query: &Query<'_>, remembered: Option<(Version, Timestamp)>) -> (Option<Resolution>, bool) {
        let _ = remembered;
        (self.resolve(query), false)
    }
}

/// The policy with no rules: every new session gets the override or the active version.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRules;

impl Policy for NoRules {
    fn resolve(&self, _query: &Query<'_>) -> Option<Resolution> {
        None
    }
}

/// The result of [`Resolver::explain`].
#[derive(Debug)]
pub struct Explanation {
    /// The version `FLOW_VERSION_OVERRIDES` names for the flow: it wins.
    pub overridden: Option<Version>,
    pub evaluation: Option<crate::rollout::Evaluation>,
    pub resolution: Option<Resolution>,
}

/// Resolves the version of a new session.
pub struct Resolver {
    overrides: Overrides,
    /// Swapped whole when the stored policy changes (every `serve` process
    /// polls for changes); readers clone the `Arc` and never wait on a writer
    /// for long.
    policy: RwLock<Arc<dyn Policy>>,
    /// The code's active version per flow, precomputed from the registry.
    active: Vec<(FlowId, Version)>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").field("overrides", &self.overrides).finish_non_exhaustive()
    }
}

impl Resolver {
    pub fn new(registry: &Registry, overrides: Overrides, policy: Box<dyn Policy>) -> Resolver {
        let active = registry
            .flows()
            .into_iter()
            .filter_map(|flow| registry.declared_active(flow.as_str()).map(|fv| (flow.clone(), fv.version())))
            .collect();
        Resolver { overrides, policy: RwLock::new(Arc::from(policy)), active }
    }

    /// Replaces the runtime rules; new sessions follow them at once.
    pub fn set_policy(&self, policy: Arc<dyn Policy>) {
        *self.policy.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = policy;
    }

    fn policy(&self) -> Arc<dyn Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Everything `explain` shows: the override (if any), the policy's whole
    /// evaluation, and the outcome, which is exactly what [`Resolver::resolve`] returns.
    pub fn explain(&self, registry: &Registry, query: &Query<'_>) -> Explanation {
        Explanation {
            overridden: self.overrides.get(query.flow),
            evaluation: self.policy().explain(query),
            resolution: self.resolve(registry, query),
        }
    }

    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    /// The version a new session of `query.flow` gets now, and why. `None` only
    /// for a flow that is not compiled in.
    pub fn resolve(&self, registry: &Registry, query: &Query<'_>) -> Option<Resolution> {
        self.resolve_remembering(registry, query, None).0
    }

    /// [`Resolver::resolve`] with the contact's remembered split assignment;
    /// the flag says the result should be remembered.
    pub fn resolve_remembering(
        &self,
        registry: &Registry,
        query: &Query<'_>,
        remembered: Option<(Version, Timestamp)>,
    ) -> (Option<Resolution>, bool) {
        if let Some(version) = self.overrides.get(query.flow) {
            return (Some(Resolution { version, reason: Reason::Override }), false);
        }
        if let (Some(resolution), remember) = self.policy().resolve_remembering(query, remembered)
            && registry.get(query.flow, resolution.version).is_some()
        {
            return (Some(resolution), remember);
        }
        (self.active_resolution(query), false)
    }

    fn active_resolution(&self, query: &Query<'_>) -> Option<Resolution> {
        self.active
            .iter()
            .find(|(flow, _)| flow.as_str() == query.flow)
            .map(|(_, version)| Resolution { version: *version, reason: Reason::Active })
    }
}
