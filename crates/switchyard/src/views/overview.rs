//! Every flow at a glance (the console's first screen): what new sessions
//! get now and why, the rules with the guard's state, live sessions per
//! version with the time they drain by, traffic against the previous
//! window, and the last audit entries.

use serde::Serialize;
use serde_json::Value;
use switchyard_engine::engine::Engine;
use switchyard_engine::ids::Version;
use switchyard_engine::rollout::{FlowRules, Split};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::rules_to_json;
use switchyard_store::Db;

use super::records::AuditEntry;
use super::{rfc3339, rfc3339_opt, version_text, Span};

/// How many audit entries the overview shows.
pub const AUDIT_ENTRIES: u32 = 10;

/// The overview of every compiled flow.
#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    #[serde(serialize_with = "rfc3339")]
    pub at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    pub since: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    pub until: Timestamp,
    /// `FLOW_VERSION_OVERRIDES` as configured.
    pub overrides: String,
    pub flows: Vec<FlowOverview>,
    /// Messages in and out, and sessions started, against the previous window of the same length.
    pub messages_in: Change,
    pub messages_out: Change,
    pub sessions: Change,
    /// Newest first.
    pub audit: Vec<AuditEntry>,
}

/// A figure in the window and in the window of the same length before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Change {
    pub current: u64,
    pub previous: u64,
    /// `(current - previous) / previous` in percent; `None` when previous is 0.
    pub percent: Option<f64>,
}

impl Change {
    pub fn new(current: u64, previous: u64) -> Change {
        let percent = (previous > 0).then(|| (current as f64 - previous as f64) * 100.0 / previous as f64);
        Change { current, previous, percent }
    }
}

/// One flow: what new sessions get, its rules, its versions.
#[derive(Clone, Debug, Serialize)]
pub struct FlowOverview {
    pub flow: String,
    /// The version declared active in code.
    pub active: Option<String>,
    /// What a new session gets now, for a contact without a pin on an
    /// instance without its own rule.
    pub serving: Vec<Serving>,
    /// Why, in one sentence.
    pub why: String,
    pub rules: RulesSummary,
    /// Compiled versions, then versions with live sessions that are no longer compiled in.
    pub versions: Vec<VersionLive>,
}

/// A version and the share of new sessions it gets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Serving {
    #[serde(serialize_with = "version_text")]
    pub version: Version,
    pub percent: f64,
}

/// A flow's stored rules, summarised; `document` is the stored JSON.
#[derive(Clone, Debug, Serialize)]
pub struct RulesSummary {
    /// Contacts pinned to a version.
    pub pins: usize,
    /// (instance, version) pairs.
    pub instances: Vec<(String, String)>,
    pub schedules: Vec<ScheduleSummary>,
    pub split: Option<SplitSummary>,
    pub promoted: Option<String>,
    pub document: Value,
}

/// One scheduled window and whether it is on now.
#[derive(Clone, Debug, Serialize)]
pub struct ScheduleSummary {
    pub version: String,
    #[serde(serialize_with = "rfc3339")]
    pub from: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    pub until: Timestamp,
    pub active_now: bool,
}

/// A split's shares and its guard.
#[derive(Clone, Debug, Serialize)]
pub struct SplitSummary {
    pub shares: Vec<Serving>,
    pub memory_days: u32,
    pub guard: Option<GuardSummary>,
}

/// A split's guard: what it watches and whether it tripped.
#[derive(Clone, Debug, Serialize)]
pub struct GuardSummary {
    pub metric: String,
    pub min_sessions: u64,
    pub tolerance_points: f64,
    pub confidence: f64,
    /// `armed` or `tripped`.
    pub state: &'static str,
    #[serde(serialize_with = "rfc3339_opt")]
    pub tripped_at: Option<Timestamp>,
    pub tripped_reason: Option<String>,
}

/// One version's live sessions and traffic.
#[derive(Clone, Debug, Serialize)]
pub struct VersionLive {
    #[serde(serialize_with = "version_text")]
    pub version: Version,
    /// `active`, `inactive`, `deprecated`, or `not compiled in`.
    pub lifecycle: &'static str,
    pub live: u64,
    /// When its last live session expires if nobody writes; `None` when drained.
    #[serde(serialize_with = "rfc3339_opt")]
    pub drained_by: Option<Timestamp>,
    /// Sessions started in the window, against the previous one.
    pub started: Change,
}

/// The overview over `window` (the last 24 hours when unbounded), at `now`.
pub async fn overview(store: &Db, engine: &Engine, window: Span, now: Timestamp) -> Result<Overview, StoreError> {
    let until = window.until.unwrap_or(now);
    let since = window.since.unwrap_or_else(|| until.minus(std::time::Duration::from_secs(24 * 3600)));
    let span = Span { since: Some(since), until: Some(until) };
    let previous = span.previous().unwrap_or(span);
    let (current, before) = (store.traffic(since, until).await?, store.traffic(previous.since.unwrap_or(since), since).await?);
    let live = store.live_by_version().await?;
    let (rules, _) = store.load_policy().await?;
    let overrides = engine.resolver().overrides();
    let mut flows = Vec::new();
    for flow in engine.registry().flows() {
        let flow = flow.as_str();
        let flow_rules = rules.get(flow).cloned().unwrap_or_default();
        let active = engine.registry().declared_active(flow).map(|fv| fv.version());
        let (serving, why) = serving(&flow_rules, overrides.get(flow), active, now);
        let started = |version: Version, traffic: &switchyard_store::figures::Traffic| {
            traffic.sessions.iter().find(|(f, v, _)| f == flow && *v == version).map_or(0, |(_, _, n)| *n)
        };
        let mut versions: Vec<VersionLive> = engine
            .registry()
            .versions_of(flow)
            .map(|fv| (fv.version(), fv.lifecycle().as_str()))
            .chain(live.iter().filter(|row| row.flow == flow && engine.registry().get(flow, row.version).is_none()).map(|row| (row.version, "not compiled in")))
            .map(|(version, lifecycle)| {
                let row = live.iter().find(|row| row.flow == flow && row.version == version);
                VersionLive {
                    version,
                    lifecycle,
                    live: row.map_or(0, |row| row.live),
                    drained_by: row.and_then(|row| row.last_expiry),
                    started: Change::new(started(version, &current), started(version, &before)),
                }
            })
            .collect();
        versions.sort_by_key(|version| version.version);
        flows.push(FlowOverview {
            flow: flow.to_owned(),
            active: active.map(|version| version.to_string()),
            serving,
            why,
            rules: summary(&flow_rules, now),
            versions,
        });
    }
    let total = |traffic: &switchyard_store::figures::Traffic| traffic.sessions.iter().map(|(_, _, n)| n).sum::<u64>();
    Ok(Overview {
        at: now,
        since,
        until,
        overrides: overrides.to_string(),
        flows,
        messages_in: Change::new(current.messages_in, before.messages_in),
        messages_out: Change::new(current.messages_out, before.messages_out),
        sessions: Change::new(total(&current), total(&before)),
        audit: store.audit_latest(AUDIT_ENTRIES).await?.iter().map(AuditEntry::from).collect(),
    })
}

/// What a new session gets (override, schedule on now, split, promotion,
/// the active version: the resolver's order once pins and instance rules
/// are set aside), and why.
fn serving(rules: &FlowRules, forced: Option<Version>, active: Option<Version>, now: Timestamp) -> (Vec<Serving>, String) {
    let all = |version: Version| vec![Serving { version, percent: 100.0 }];
    if let Some(version) = forced {
        return (all(version), format!("FLOW_VERSION_OVERRIDES sets {version}; it beats every rule"));
    }
    if let Some(schedule) = rules.schedules.iter().find(|schedule| schedule.from <= now && now < schedule.until) {
        return (all(schedule.version), format!("a schedule serves {} until {}", schedule.version, schedule.until));
    }
    if let Some(split) = &rules.split {
        let tripped = split.guard.as_ref().is_some_and(|guard| guard.tripped.is_some());
        let why = if tripped { "a split whose guard tripped and moved the candidate's share back" } else { "a split" };
        return (shares(split), why.to_owned());
    }
    if let Some(version) = rules.promoted {
        return (all(version), format!("{version} was promoted"));
    }
    match active {
        Some(version) => (all(version), format!("no rule: {version} is the version declared active in code")),
        None => (Vec::new(), "no version is declared active".to_owned()),
    }
}

fn shares(split: &Split) -> Vec<Serving> {
    split.weights.iter().map(|(version, weight)| Serving { version: *version, percent: f64::from(weight.hundredths()) / 100.0 }).collect()
}

fn summary(rules: &FlowRules, now: Timestamp) -> RulesSummary {
    RulesSummary {
        pins: rules.pins.len(),
        instances: rules.instances.iter().map(|rule| (rule.instance.as_str().to_owned(), rule.version.to_string())).collect(),
        schedules: rules
            .schedules
            .iter()
            .map(|schedule| ScheduleSummary {
                version: schedule.version.to_string(),
                from: schedule.from,
                until: schedule.until,
                active_now: schedule.from <= now && now < schedule.until,
            })
            .collect(),
        split: rules.split.as_ref().map(|split| SplitSummary {
            shares: shares(split),
            memory_days: split.memory_days,
            guard: split.guard.as_ref().map(|guard| GuardSummary {
                metric: guard.metric.clone(),
                min_sessions: guard.min_sessions,
                tolerance_points: f64::from(guard.tolerance_hundredths) / 100.0,
                confidence: f64::from(guard.confidence_permille) / 1000.0,
                state: if guard.tripped.is_some() { "tripped" } else { "armed" },
                tripped_at: guard.tripped.as_ref().map(|trip| trip.at),
                tripped_reason: guard.tripped.as_ref().map(|trip| trip.reason.clone()),
            }),
        }),
        promoted: rules.promoted.map(|version| version.to_string()),
        document: rules_to_json(rules),
    }
}
