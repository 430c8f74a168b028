//! Runtime rollout rules: which version a NEW session of a flow gets, between
//! the `FLOW_VERSION_OVERRIDES` override and the version declared active in code.
//!
//! # Rules and their order
//! For a new session the full order is `override` > `pin` > `instance` >
//! `schedule` > `split` > `promote` > `active`. The override is applied by
//! [`crate::resolve::Resolver`] before it asks the policy; code's `active` is its
//! fallback when the policy answers `None`. This module holds the rules in
//! between, per flow ([`FlowRules`], collected in [`Rules`]):
//!
//! - **pin**: a contact always gets a version (support reproducing a bug, a
//!   tester trying the candidate).
//! - **instance**: every contact of one Evolution instance (one WhatsApp number,
//!   one department) gets a version.
//! - **schedule**: a version is served inside `[from, until)`, the first listed
//!   schedule that contains `now` wins. It ends by itself at `until`: nobody has
//!   to act for the flow to fall back.
//! - **split**: contacts are spread over versions by weight (see below), with an
//!   optional assignment memory so a contact keeps its version while weights move.
//! - **promote**: the version new sessions get when no rule above applies; it
//!   replaces code's active version without a redeploy.
//!
//! [`FlowRules::evaluate`] stops at the first rule kind that matches and records
//! one [`Check`] per rule kind it looked at, in order, so `explain` can print the
//! evaluation. Kinds after the winner are not looked at and get no check (an
//! explain printer shows them as "not reached"); kinds with nothing configured
//! are still checked and say so ("no pins"). Details mask contacts.
//!
//! [`FlowRules::resolve`] is the hot path: the same decision without the trace.
//! It hashes without allocating and only builds the winner's `Reason` (the two
//! `String`s of `Reason::Rule`).
//!
//! The split's bucketing (Unleash-compatible murmur3 positions) is in
//! `bucket`; what an evaluation records for `explain`, and how the winning
//! rule is described, in `explain`.
//!
//! # Assignment memory
//! With `memory_days > 0`, the caller passes the version a contact was last
//! given by the split and when. If that is newer than `now - memory_days` and the
//! version is still listed in the split (even at 0%), the contact keeps it.
//! Otherwise the bucket decides and [`Evaluation::remember`] asks the caller to
//! store the choice. Removing a version from the split is how to end it for
//! remembered contacts too.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::ids::{Contact, FlowId, InstanceId, Version};
use crate::registry::{suggest, Registry};
use crate::resolve::{Policy, Query, Resolution};
use crate::time::Timestamp;

mod bucket;
mod explain;

pub use bucket::{murmur3_x86_32, position, unleash_bucket};
pub use explain::{Check, Evaluation};
use explain::{Hit, bucket_of};

/// A contact always gets `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub contact: Contact,
    pub version: Version,
}

/// Every contact of `instance` gets `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRule {
    pub instance: InstanceId,
    pub version: Version,
}

/// `version` is served from `from` (inclusive) until `until` (exclusive).
/// `from < until`; a schedule that breaks this never matches and
/// [`FlowRules::validate`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub version: Version,
    pub from: Timestamp,
    pub until: Timestamp,
}

impl Schedule {
    /// A schedule, refusing an empty or backwards window.
    pub fn new(version: Version, from: Timestamp, until: Timestamp) -> Result<Schedule, String> {
        if from >= until {
            return Err(format!("schedule for {version} starts at {from}, which is not before its end {until}"));
        }
        Ok(Schedule { version, from, until })
    }

    /// Whether the schedule is on at `now`.
    pub fn contains(&self, now: Timestamp) -> bool {
        self.from <= now && now < self.until
    }
}

/// The size of the position space: a weight's unit is 1/10_000 of the contacts.
pub const POSITIONS: u32 = 10_000;

/// A share in hundredths of a percent: `0..=10_000`, so 12.5% is 1250.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u32);

impl Weight {
    /// Parses `12.5`, `10`, `0.25` (a trailing `%` is allowed): a percentage from
    /// 0 to 100 with at most two decimals.
    pub fn parse(text: &str) -> Result<Weight, String> {
        let trimmed = text.trim();
        let number = trimmed.strip_suffix('%').unwrap_or(trimmed).trim_end();
        let shape = || format!("weight '{text}' must be a percentage from 0 to 100 with at most 2 decimals, such as 12.5");
        if number.starts_with('-') {
            return Err(format!("weight '{text}' must not be negative (0 to 100)"));
        }
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(shape());
        }
        if (number.contains('.') && fraction.is_empty()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(shape());
        }
        if fraction.len() > 2 {
            return Err(format!("weight '{text}' has more than 2 decimals (the finest share is 0.01)"));
        }
        let too_big = || format!("weight '{text}' is more than 100");
        // Leading zeros are harmless; more than three significant digits is over 100.
        let whole = whole.trim_start_matches('0');
        if whole.len() > 3 {
            return Err(too_big());
        }
        let whole: u32 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| shape())? };
        let hundredths_part: u32 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<u32>().map_err(|_| shape())? * 10,
            _ => fraction.parse::<u32>().map_err(|_| shape())?,
        };
        let hundredths = whole * 100 + hundredths_part;
        if hundredths > POSITIONS {
            return Err(too_big());
        }
        Ok(Weight(hundredths))
    }

    /// A weight from hundredths of a percent (`1250` is 12.5%).
    pub fn from_hundredths(hundredths: u32) -> Result<Weight, String> {
        if hundredths > POSITIONS {
            return Err(format!("weight of {hundredths} hundredths is more than 100% (10000 hundredths)"));
        }
        Ok(Weight(hundredths))
    }

    /// A whole percentage, for code and tests: `Weight::percent(10)`. Values
    /// over 100 are clamped to 100.
    pub const fn percent(percent: u32) -> Weight {
        let hundredths = percent.saturating_mul(100);
        Weight(if hundredths > POSITIONS { POSITIONS } else { hundredths })
    }

    pub fn hundredths(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Weight {
    /// `12.5`, `10`, `0.25`: the shortest form that parses back to the same weight.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_hundredths(u64::from(self.0), f)
    }
}

/// Writes hundredths of a percent as a percentage without trailing zeros.
fn fmt_hundredths(hundredths: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (whole, fraction) = (hundredths / 100, hundredths % 100);
    match fraction {
        0 => write!(f, "{whole}"),
        _ if fraction % 10 == 0 => write!(f, "{whole}.{}", fraction / 10),
        _ => write!(f, "{whole}.{fraction:02}"),
    }
}

/// Displays a sum of weights, which may exceed 100.
struct Percent(u64);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_hundredths(self.0, f)
    }
}

/// Contacts spread over versions by weight. The first listed version is the
/// baseline (see the module docs for the layout).
/// A guard on a split: when the candidate is significantly worse than the
/// baseline on `metric`, the evaluator in `serve` moves its share back to the
/// baseline and records why; it stays rolled back until the split is set again.
/// Stored as plain numbers (the statistics live in `analytics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitGuard {
    /// `completion`, `handoff`, `failure` or `expiry`.
    pub metric: String,
    /// Finished sessions each version needs before the guard may act.
    pub min_sessions: u64,
    /// Tolerated degradation, in hundredths of a percentage point.
    pub tolerance_hundredths: u32,
    /// Confidence in thousandths (950 = 95%).
    pub confidence_permille: u32,
    /// Set when the guard rolled the candidate back.
    pub tripped: Option<GuardTrip>,
    /// Where the event log stood when the guard was armed: it judges only
    /// the sessions its split assigned after that (an earlier experiment's
    /// sessions on the same versions are another population). Stamped when
    /// the split is stored; a re-weighting of the same versions keeps it.
    /// `None` (a policy stored before this field existed) counts every
    /// session the split assigned.
    pub armed_after_event: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuardTrip {
    pub at: Timestamp,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub weights: Vec<(Version, Weight)>,
    /// The hash salt (Unleash's group id); `None` uses the flow name.
    pub salt: Option<String>,
    /// How long a contact keeps the version the split gave it; 0 turns memory off.
    pub memory_days: u32,
    /// Rolls the candidate back when it is significantly worse.
    pub guard: Option<SplitGuard>,
    /// Where the event log stood when these weights were set: the
    /// sample-ratio check counts only the bucket draws made after that (a
    /// ramp from 10% to 50% drew the earlier sessions at other odds).
    /// Stamped when the split is stored; kept while the weights stay the
    /// same. `None` (stored before this field existed) counts every draw.
    pub weights_after_event: Option<i64>,
}

impl Split {
    /// A split, refusing weights that do not sum to 100, a version listed
    /// twice, no versions, or an empty salt. All problems in one line.
    pub fn new(weights: Vec<(Version, Weight)>, salt: Option<String>, memory_days: u32) -> Result<Split, String> {
        let split = Split { weights, salt, memory_days, guard: None, weights_after_event: None };
        let problems = split.problems("the split");
        if problems.is_empty() { Ok(split) } else { Err(problems.join("; ")) }
    }

    /// What is wrong with this split; `owner` names it in the messages
    /// ("the split", "digital_certificate's split").
    fn problems(&self, owner: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.weights.is_empty() {
            problems.push(format!("{owner} has no versions (list at least one, for example v1=100)"));
        }
        for (idx, (version, _)) in self.weights.iter().enumerate() {
            let first = self.weights.iter().position(|(seen, _)| seen == version);
            if first == Some(idx) && self.weights[idx + 1..].iter().any(|(later, _)| later == version) {
                problems.push(format!("{owner} lists {version} twice (give each version one weight)"));
            }
        }
        let sum: u64 = self.weights.iter().map(|(_, weight)| u64::from(weight.0)).sum();
        if !self.weights.is_empty() && sum != u64::from(POSITIONS) {
            let listed: Vec<String> = self.weights.iter().map(|(version, weight)| format!("{version}={weight}")).collect();
            problems.push(format!("weights of {owner} sum to {}, not 100 ({})", Percent(sum), listed.join(", ")));
        }
        if self.salt.as_deref().is_some_and(|salt| salt.trim().is_empty()) {
            problems.push(format!("{owner} has an empty salt (leave it out to use the flow name)"));
        }
        problems
    }

    /// The salt this split hashes with.
    pub fn salt_for<'a>(&'a self, flow: &'a str) -> &'a str {
        self.salt.as_deref().unwrap_or(flow)
    }

    /// The version `contact` gets and its position in `0..10_000`. `None` only
    /// for a split with no versions (which [`Split::new`] refuses).
    pub fn pick(&self, flow: &str, contact: &Contact) -> Option<(Version, u32)> {
        let x = position(self.salt_for(flow), contact.as_str());
        self.version_at(x).map(|(version, _)| (version, x))
    }

    /// The version whose range holds position `x`, and its weight. Candidates
    /// first from 0, the baseline gets everything after them, so weights that
    /// do not sum to 100 still give every position a version.
    fn version_at(&self, x: u32) -> Option<(Version, Weight)> {
        let (baseline, candidates) = self.weights.split_first()?;
        let mut end = 0u32;
        for &(version, weight) in candidates {
            end = end.saturating_add(weight.0);
            if x < end {
                return Some((version, weight));
            }
        }
        Some(*baseline)
    }

    fn lists(&self, version: Version) -> bool {
        self.weights.iter().any(|(listed, _)| *listed == version)
    }
}

/// The rollout rules of one flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowRules {
    pub pins: Vec<Pin>,
    pub instances: Vec<InstanceRule>,
    pub schedules: Vec<Schedule>,
    pub split: Option<Split>,
    pub promoted: Option<Version>,
}


fn days(memory_days: u32) -> Duration {
    Duration::from_secs(u64::from(memory_days) * 86_400)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

impl FlowRules {
    /// No rule of any kind is set.
    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
            && self.instances.is_empty()
            && self.schedules.is_empty()
            && self.split.is_none()
            && self.promoted.is_none()
    }

    /// Every problem with these rules for `flow`, one line each, naming the
    /// flow and the bad value: unknown flow (with a suggestion), versions not
    /// compiled in, a contact pinned twice, an instance listed twice, a
    /// backwards schedule, a bad split.
    pub fn validate(&self, flow: &str, registry: &Registry) -> Vec<String> {
        let mut problems = Vec::new();
        if !registry.has_flow(flow) {
            let names: Vec<&str> = registry.flows().into_iter().map(FlowId::as_str).collect();
            let hint = match suggest(flow, names.iter().copied()) {
                Some(name) => format!("did you mean '{name}'?"),
                None => format!("flows: {}", names.join(", ")),
            };
            problems.push(format!("rules name unknown flow '{flow}' ({hint})"));
            return problems;
        }
        let compiled: Vec<String> = registry.versions_of(flow).map(|fv| fv.version().to_string()).collect();
        let mut need = |what: String, version: Version| {
            if registry.get(flow, version).is_none() {
                problems.push(format!(
                    "{flow}: {what} names {version}, which is not compiled in (compiled: {})",
                    compiled.join(", ")
                ));
            }
        };
        for pin in &self.pins {
            need(format!("the pin of contact {}", pin.contact.masked()), pin.version);
        }
        for rule in &self.instances {
            need(format!("the rule of instance {}", rule.instance), rule.version);
        }
        for schedule in &self.schedules {
            need("a schedule".to_owned(), schedule.version);
        }
        if let Some(split) = &self.split {
            for (version, _) in &split.weights {
                need("split".to_owned(), *version);
            }
        }
        if let Some(version) = self.promoted {
            need("promote".to_owned(), version);
        }

        for (idx, pin) in self.pins.iter().enumerate() {
            if self.pins[..idx].iter().any(|earlier| earlier.contact == pin.contact) {
                continue;
            }
            let versions: Vec<String> =
                self.pins.iter().filter(|other| other.contact == pin.contact).map(|other| other.version.to_string()).collect();
            if versions.len() > 1 {
                problems.push(format!(
                    "{flow}: contact {} is pinned {} times ({}); keep one pin",
                    pin.contact.masked(),
                    versions.len(),
                    versions.join(", ")
                ));
            }
        }
        for (idx, rule) in self.instances.iter().enumerate() {
            if self.instances[..idx].iter().any(|earlier| earlier.instance == rule.instance) {
                continue;
            }
            let count = self.instances.iter().filter(|other| other.instance == rule.instance).count();
            if count > 1 {
                problems.push(format!("{flow}: instance {} is listed {count} times; keep one rule", rule.instance));
            }
        }
        for schedule in &self.schedules {
            if schedule.from >= schedule.until {
                problems.push(format!(
                    "{flow}: schedule for {} starts at {}, which is not before its end {} (it would never apply)",
                    schedule.version, schedule.from, schedule.until
                ));
            }
        }
        if let Some(split) = &self.split {
            // Each message names "<flow>'s split", so it needs no prefix.
            problems.extend(split.problems(&format!("{flow}'s split")));
        }
        problems
    }

    /// Evaluates the rules for a new session of `flow` and records every rule
    /// kind looked at, for `explain`. `flow` is normally `query.flow`; it is the
    /// split's salt when none is set. `remembered` is the split's earlier choice
    /// for this contact and when it was made, if the caller stores it.
    pub fn evaluate(&self, flow: &str, query: &Query<'_>, remembered: Option<(Version, Timestamp)>) -> Evaluation {
        let mut checks = Vec::with_capacity(5);
        let hit = self.find(flow, query, remembered, Some(&mut checks));
        Self::conclude(hit, query, checks)
    }

    /// The same decision as [`FlowRules::evaluate`] without the trace: no
    /// strings are built except the winner's reason.
    pub fn resolve(&self, flow: &str, query: &Query<'_>, remembered: Option<(Version, Timestamp)>) -> Evaluation {
        let hit = self.find(flow, query, remembered, None);
        Self::conclude(hit, query, Vec::new())
    }

    fn conclude(hit: Option<Hit<'_>>, query: &Query<'_>, checks: Vec<Check>) -> Evaluation {
        let remember = matches!(hit, Some(Hit::Bucket { memory: true, .. }));
        Evaluation { checks, winner: hit.map(|hit| hit.resolution(query.contact)), remember }
    }

    /// The first matching rule. `trace` receives one check per rule kind looked
    /// at; when it is `None` no detail string is formatted.
    fn find<'a>(
        &'a self,
        flow: &str,
        query: &Query<'_>,
        remembered: Option<(Version, Timestamp)>,
        mut trace: Option<&mut Vec<Check>>,
    ) -> Option<Hit<'a>> {
        let mut record = |rule: &'static str, matched: bool, version: Option<Version>, detail: &dyn Fn() -> String| {
            if let Some(checks) = trace.as_deref_mut() {
                checks.push(Check { rule, detail: detail(), matched, version });
            }
        };

        if let Some(pin) = self.pins.iter().find(|pin| pin.contact == *query.contact) {
            record("pin", true, Some(pin.version), &|| format!("contact {} pinned to {}", query.contact.masked(), pin.version));
            return Some(Hit::Pin(pin));
        }
        record("pin", false, None, &|| match self.pins.len() {
            0 => "no pins".to_owned(),
            n => format!("contact {} is not pinned ({})", query.contact.masked(), plural(n, "pin", "pins")),
        });

        if let Some(rule) = self.instances.iter().find(|rule| rule.instance == *query.instance) {
            record("instance", true, Some(rule.version), &|| format!("instance {} set to {}", rule.instance, rule.version));
            return Some(Hit::Instance(rule));
        }
        record("instance", false, None, &|| match self.instances.len() {
            0 => "no instance rules".to_owned(),
            n => format!("instance {} has no rule ({})", query.instance, plural(n, "instance rule", "instance rules")),
        });

        if let Some(schedule) = self.schedules.iter().find(|schedule| schedule.contains(query.now)) {
            record("schedule", true, Some(schedule.version), &|| {
                format!("{} scheduled from {} until {}", schedule.version, schedule.from, schedule.until)
            });
            return Some(Hit::Schedule(schedule));
        }
        record("schedule", false, None, &|| match self.schedules.len() {
            0 => "no schedules".to_owned(),
            n => format!("no schedule covers {} ({})", query.now, plural(n, "schedule", "schedules")),
        });

        if let Some(split) = &self.split {
            let memory = split.memory_days > 0;
            if let Some((version, at)) = remembered.filter(|_| memory) {
                let fresh = at > query.now.minus(days(split.memory_days));
                if fresh && split.lists(version) {
                    record("split", true, Some(version), &|| {
                        format!("{version} remembered since {at} (memory {} days)", split.memory_days)
                    });
                    return Some(Hit::Remembered { version, at });
                }
            }
            let position = position(split.salt_for(flow), query.contact.as_str());
            if let Some((version, weight)) = split.version_at(position) {
                record("split", true, Some(version), &|| {
                    let note = match remembered {
                        Some((old, _)) if memory && !split.lists(old) => {
                            format!("remembered {old} is no longer in the split; ")
                        }
                        Some((old, at)) if memory => {
                            format!("memory of {old} from {at} expired after {} days; ", split.memory_days)
                        }
                        _ => String::new(),
                    };
                    format!(
                        "{note}bucket {} (position {position} of {POSITIONS}) -> {version} at {weight}%",
                        bucket_of(position)
                    )
                });
                return Some(Hit::Bucket { version, weight, position, memory });
            }
            record("split", false, None, &|| "split has no versions".to_owned());
        } else {
            record("split", false, None, &|| "no split".to_owned());
        }

        if let Some(version) = self.promoted {
            record("promote", true, Some(version), &|| format!("{version} promoted"));
            return Some(Hit::Promote(version));
        }
        record("promote", false, None, &|| "nothing promoted".to_owned());
        None
    }
}

/// The rollout rules of every flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    flows: BTreeMap<String, FlowRules>,
}

impl Rules {
    pub fn new() -> Rules {
        Rules::default()
    }

    /// Replaces `flow`'s rules; empty rules remove the flow.
    pub fn set(&mut self, flow: &str, rules: FlowRules) {
        if rules.is_empty() {
            self.flows.remove(flow);
        } else {
            self.flows.insert(flow.to_owned(), rules);
        }
    }

    pub fn get(&self, flow: &str) -> Option<&FlowRules> {
        self.flows.get(flow)
    }

    /// Flows with rules, sorted by name.
    pub fn flows(&self) -> impl Iterator<Item = (&str, &FlowRules)> {
        self.flows.iter().map(|(flow, rules)| (flow.as_str(), rules))
    }

    /// Every problem of every flow's rules, flows in name order.
    pub fn validate(&self, registry: &Registry) -> Vec<String> {
        self.flows().flat_map(|(flow, rules)| rules.validate(flow, registry)).collect()
    }
}

impl Policy for Rules {
    /// Evaluates without assignment memory (the trait carries none): a caller
    /// that stores split choices calls [`FlowRules::resolve`] with them instead.
    fn resolve(&self, query: &Query<'_>) -> Option<Resolution> {
        self.get(query.flow)?.resolve(query.flow, query, None).winner
    }

    fn explain(&self, query: &Query<'_>) -> Option<Evaluation> {
        Some(self.get(query.flow)?.evaluate(query.flow, query, None))
    }

    fn resolve_remembering(&self, query: &Query<'_>, remembered: Option<(Version, Timestamp)>) -> (Option<Resolution>, bool) {
        match self.get(query.flow) {
            Some(rules) => {
                let evaluation = rules.resolve(query.flow, query, remembered);
                (evaluation.winner, evaluation.remember)
            }
            None => (None, false),
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_display_in_their_shortest_form() {
        for (hundredths, text) in [(1250, "12.5"), (1000, "10"), (25, "0.25"), (1205, "12.05"), (0, "0"), (10_000, "100")] {
            let weight = Weight::from_hundredths(hundredths).unwrap();
            assert_eq!(weight.to_string(), text);
            assert_eq!(Weight::parse(text), Ok(weight));
        }
    }

    #[test]
    fn a_split_with_weights_off_100_still_gives_every_position_a_version() {
        let split = Split {
            weights: vec![(Version::new(1), Weight::percent(10)), (Version::new(2), Weight::percent(10))],
            salt: None,
            memory_days: 0,
            guard: None,
            weights_after_event: None,
        };
        assert_eq!(split.version_at(999).map(|(v, _)| v), Some(Version::new(2)));
        assert_eq!(split.version_at(9_999).map(|(v, _)| v), Some(Version::new(1)));
        let empty = Split { weights: Vec::new(), salt: None, memory_days: 0, guard: None, weights_after_event: None };
        assert_eq!(empty.pick("shop", &Contact::parse("5511987654321").unwrap()), None);
    }
}
