//! The overview: for every flow, the version new sessions get now and why,
//! its rules and guard, live sessions per version with the drain time,
//! sessions in the last 24 h against the 24 h before; the last audit entries.

use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use switchyard_engine::engine::Engine;
use switchyard_engine::rollout::FlowRules;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_engine::ids::Version;
use switchyard_store::figures::{LiveVersion, Starts};
use switchyard_store::Db;

use super::auth::Operator;
use super::i18n::Lang;
use super::{percent, render, svg, when, Chrome, UiState};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// One version's line on a flow's card.
pub struct VersionRow {
    pub version: String,
    pub lifecycle: String,
    pub live: i64,
    pub drain: String,
    pub share: String,
}

/// One rule, worded.
pub struct RuleRow {
    pub kind: &'static str,
    pub detail: String,
}

/// A split guard's state: the word carries the state, the class only colours it.
pub struct GuardView {
    pub tripped: bool,
    pub text: String,
}

pub struct FlowCard {
    pub name: String,
    pub now_gets: String,
    pub why: String,
    pub exceptions: Option<String>,
    pub versions: Vec<VersionRow>,
    pub rules: Vec<RuleRow>,
    pub guard: Option<GuardView>,
    pub started: u64,
    pub previous: u64,
    /// `▲ +12` / `▼ −3` / `=`: the shape says the direction.
    pub trend: String,
    pub trend_class: &'static str,
    pub spark: String,
}

pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub flow: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "ui/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    flows: Vec<FlowCard>,
    audit: Vec<AuditRow>,
}

/// What new sessions of `flow` get when no pin or instance rule applies, and why.
pub fn default_choice(lang: Lang, engine: &Engine, flow: &str, rules: &FlowRules, now: Timestamp) -> (String, String) {
    if let Some(version) = engine.resolver().overrides().get(flow) {
        return (version.to_string(), lang.f("override", &[&format!("{flow}={version}")]));
    }
    if let Some(schedule) = rules.schedules.iter().find(|schedule| schedule.contains(now)) {
        return (schedule.version.to_string(), lang.f("why_schedule", &[&when(schedule.until)]));
    }
    if let Some(split) = &rules.split {
        let shares = split_shares(split);
        return (shares.clone(), lang.f("why_split", &[&shares]));
    }
    if let Some(version) = rules.promoted {
        return (version.to_string(), lang.t("why_promoted").to_owned());
    }
    match engine.registry().declared_active(flow) {
        Some(active) => (active.version().to_string(), lang.t("why_active").to_owned()),
        None => ("-".to_owned(), "-".to_owned()),
    }
}

/// `v1 90% · v2 10%`.
pub fn split_shares(split: &switchyard_engine::rollout::Split) -> String {
    split.weights.iter().map(|(version, weight)| format!("{version} {weight}%")).collect::<Vec<_>>().join(" · ")
}

/// The rules worded for a table (pinned contacts counted, never listed).
pub fn rule_rows(lang: Lang, rules: &FlowRules) -> Vec<RuleRow> {
    let mut rows = Vec::new();
    if !rules.pins.is_empty() {
        let mut versions: Vec<String> = rules.pins.iter().map(|pin| pin.version.to_string()).collect();
        versions.sort();
        versions.dedup();
        rows.push(RuleRow { kind: "pin", detail: format!("{} → {}", lang.f("pinned_contacts", &[&rules.pins.len()]), versions.join(", ")) });
    }
    for rule in &rules.instances {
        rows.push(RuleRow { kind: "instance", detail: format!("{} → {}", rule.instance, rule.version) });
    }
    for schedule in &rules.schedules {
        rows.push(RuleRow { kind: "schedule", detail: format!("{}: {} → {}", schedule.version, when(schedule.from), when(schedule.until)) });
    }
    if let Some(split) = &rules.split {
        rows.push(RuleRow { kind: "split", detail: split_shares(split) });
    }
    if let Some(version) = rules.promoted {
        rows.push(RuleRow { kind: "promote", detail: version.to_string() });
    }
    rows
}

/// The guard of a flow's split, worded.
pub fn guard_view(lang: Lang, rules: &FlowRules) -> Option<GuardView> {
    let guard = rules.split.as_ref()?.guard.as_ref()?;
    let settings = format!(
        "{} · {} · ±{} pp · {}",
        guard.metric,
        guard.min_sessions,
        f64::from(guard.tolerance_hundredths) / 100.0,
        f64::from(guard.confidence_permille) / 1000.0
    );
    Some(match &guard.tripped {
        Some(trip) => GuardView { tripped: true, text: format!("⚠ {} {}: {} ({settings})", lang.t("guard_tripped"), when(trip.at), trip.reason) },
        None => GuardView { tripped: false, text: format!("✓ {} ({settings})", lang.t("guard_armed")) },
    })
}

/// What the overview reads from the store once for every flow: live
/// sessions per version (the partial index of live rows), and sessions
/// started per flow and version by day over the last 8 days and in the last
/// hour (the covering index `sessions_by_start`), never the sessions' rows.
pub struct Figures {
    live: Vec<LiveVersion>,
    /// Buckets of a day from `now - 8 d`: 7 is the last 24 h, 6 the 24 h before.
    days: Vec<Starts>,
    /// The last hour (bucket 0).
    hour: Vec<Starts>,
}

impl Figures {
    pub async fn read(store: &Db, now: Timestamp) -> Result<Figures, StoreError> {
        Ok(Figures {
            live: store.live_by_version().await?,
            days: store.starts(now.minus(DAY * 8), now, DAY).await?,
            hour: store.starts(now.minus(HOUR), now, HOUR).await?,
        })
    }

    /// Sessions of `flow` (every version) started in day bucket `bucket`.
    fn started(&self, flow: &str, bucket: i64) -> u64 {
        self.days.iter().filter(|row| row.flow == flow && row.bucket == bucket).map(|row| row.sessions).sum()
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Live sessions and drain time per compiled version (and per stored one no longer compiled).
pub async fn version_rows(store: &Db, engine: &Engine, lang: Lang, flow: &str, now: Timestamp) -> Result<Vec<VersionRow>, StoreError> {
    let figures = Figures { live: store.live_by_version().await?, days: Vec::new(), hour: store.starts(now.minus(HOUR), now, HOUR).await? };
    Ok(version_rows_of(&figures, engine, lang, flow))
}

fn version_rows_of(figures: &Figures, engine: &Engine, lang: Lang, flow: &str) -> Vec<VersionRow> {
    let live: Vec<&LiveVersion> = figures.live.iter().filter(|row| row.flow == flow).collect();
    let recent_of = |version: Version| figures.hour.iter().filter(|row| row.flow == flow && row.version == version).map(|row| row.sessions).sum::<u64>();
    let recent: u64 = figures.hour.iter().filter(|row| row.flow == flow).map(|row| row.sessions).sum();
    let mut rows: Vec<VersionRow> = engine
        .registry()
        .versions_of(flow)
        .map(|compiled| (compiled.version(), compiled.lifecycle().as_str().to_owned()))
        .chain(live.iter().filter(|row| engine.registry().get(flow, row.version).is_none()).map(|row| (row.version, "not compiled in".to_owned())))
        .map(|(version, lifecycle)| {
            let row = live.iter().find(|row| row.version == version);
            let count = row.map_or(0, |row| row.live);
            let drain = match row.and_then(|row| row.last_expiry) {
                Some(at) if count > 0 => when(at),
                _ => lang.t("drained").to_owned(),
            };
            let share = if recent == 0 { "-".to_owned() } else { percent(recent_of(version) as f64 / recent as f64) };
            VersionRow { version: version.to_string(), lifecycle, live: i64::try_from(count).unwrap_or(i64::MAX), drain, share }
        })
        .collect();
    rows.sort_by(|a, b| a.version.cmp(&b.version));
    rows
}

fn card(figures: &Figures, engine: &Engine, lang: Lang, flow: &str, rules: &FlowRules, now: Timestamp) -> FlowCard {
    let (now_gets, why) = default_choice(lang, engine, flow, rules, now);
    let exceptions = (!rules.pins.is_empty() || !rules.instances.is_empty())
        .then(|| lang.f("why_pins_instances", &[&rules.pins.len(), &rules.instances.len()]));
    let (started_now, previous) = (figures.started(flow, 7), figures.started(flow, 6));
    // The last 7 days, oldest first.
    let daily: Vec<u64> = (1..=7).map(|bucket| figures.started(flow, bucket)).collect();
    let (trend, trend_class) = match started_now.cmp(&previous) {
        std::cmp::Ordering::Greater => (format!("▲ +{}", started_now - previous), "up"),
        std::cmp::Ordering::Less => (format!("▼ −{}", previous - started_now), "down"),
        std::cmp::Ordering::Equal => ("=".to_owned(), "neutral"),
    };
    FlowCard {
        name: flow.to_owned(),
        now_gets,
        why,
        exceptions,
        versions: version_rows_of(figures, engine, lang, flow),
        rules: rule_rows(lang, rules),
        guard: guard_view(lang, rules),
        started: started_now,
        previous,
        trend,
        trend_class,
        spark: svg::sparkline(&format!("{flow}: {} / 7 d", lang.t("sessions_started")), &daily),
    }
}

/// `GET /ui`.
pub async fn page(State(state): State<UiState>, headers: HeaderMap, Extension(operator): Extension<Operator>) -> Response {
    let lang = Lang::of(&headers);
    let now = Timestamp::now_utc();
    let built: Result<(Vec<FlowCard>, Vec<AuditRow>), StoreError> = async {
        let store = state.app.store();
        let (policy, _) = store.load_policy().await?;
        let figures = Figures::read(store, now).await?;
        let engine = state.app.engine();
        let registry = engine.registry();
        let flows = registry
            .flows()
            .into_iter()
            .map(|flow| card(&figures, engine, lang, flow.as_str(), &policy.get(flow.as_str()).cloned().unwrap_or_default(), now))
            .collect();
        let audit = store.audit(None, Some(now.minus(DAY * 30)), None).await?;
        let audit = audit.iter().rev().take(12).map(audit_row).collect();
        Ok((flows, audit))
    }
    .await;
    match built {
        Ok((flows, audit)) => render(StatusCode::OK, &OverviewPage { chrome: Chrome::new(lang, Some(&operator), "overview", "/ui", lang.t("overview")), flows, audit }),
        Err(err) => super::store_failed(&state, lang, &operator, &err),
    }
}

pub fn audit_row(record: &switchyard_store::policy::AuditRecord) -> AuditRow {
    AuditRow {
        seq: record.seq,
        at: when(record.at),
        actor: record.actor.clone(),
        action: record.action.clone(),
        flow: record.flow.clone().unwrap_or_default(),
        reason: record.reason.clone(),
    }
}
