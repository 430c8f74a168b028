//! Steering a flow: pin, unpin, instance, schedule, split (with a guard),
//! promote, clear and evacuate. Each form asks for a reason and leads to a
//! confirmation page that says what changes for new and for live sessions;
//! only its button applies the change, through [`crate::steer`] (as the CLI
//! does), with the signed-in token's name as the actor.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::rollout::FlowRules;
use switchyard_engine::time::Timestamp;

use super::auth::{FormData, Operator};
use super::i18n::Lang;
use super::overview::{default_choice, rule_rows, split_shares, version_rows, RuleRow, VersionRow};
use super::{render, Chrome, UiState};
use crate::rollout::ChangeError;
use crate::steer::{Edit, GuardSpec};

/// What a steering form asks for.
#[derive(Clone, Debug, PartialEq)]
enum Action {
    Edit(Edit),
    Evacuate(Version),
}

/// The actions, in the order the page shows them.
const ACTIONS: [&str; 8] = ["pin", "unpin", "instance", "schedule", "split", "promote", "clear", "evacuate"];

fn version(state: &UiState, flow: &str, text: &str) -> Result<Version, String> {
    let version = Version::parse(text)?;
    match state.app.engine().registry().get(flow, version) {
        Some(_) => Ok(version),
        None => {
            let known: Vec<String> = state.app.engine().registry().versions_of(flow).map(|fv| fv.version().to_string()).collect();
            Err(format!("flow '{flow}' has no version {version} (compiled: {})", known.join(", ")))
        }
    }
}

fn number<T: std::str::FromStr>(form: &FormData, name: &str, default: T) -> Result<T, String> {
    match form.get(name) {
        "" => Ok(default),
        text => text.parse().map_err(|_| format!("{name} '{text}' is not a number")),
    }
}

fn time(form: &FormData, name: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(form.get(name)).map_err(|problem| format!("{name} '{}': {problem}", form.get(name)))
}

/// The form's fields as an action, or the first problem (one line).
fn parse(state: &UiState, flow: &str, action: &str, form: &FormData) -> Result<Action, String> {
    let contacts = || crate::steer::parse_contacts(form.get("contacts").split([',', '\n', ';']).map(str::trim).filter(|text| !text.is_empty()));
    let edit = match action {
        "pin" => Edit::Pin { version: version(state, flow, form.get("version"))?, contacts: contacts()? },
        "unpin" => Edit::Unpin { contacts: contacts()? },
        "instance" => Edit::Instance { version: version(state, flow, form.get("version"))?, instance: InstanceId::parse(form.get("instance"))? },
        "schedule" => Edit::Schedule { version: version(state, flow, form.get("version"))?, from: time(form, "from")?, until: time(form, "until")? },
        "split" => Edit::Split {
            weights: crate::steer::parse_weights(form.get("weights"))?,
            salt: Some(form.get("salt").to_owned()).filter(|salt| !salt.is_empty()),
            memory_days: number(form, "memory_days", 0)?,
            guard: match form.get("guard") {
                "" | "none" => None,
                metric => Some(GuardSpec {
                    metric: metric.to_owned(),
                    min_sessions: number(form, "guard_min_sessions", 100)?,
                    tolerance_points: number(form, "guard_tolerance", 2.0)?,
                    confidence: number(form, "guard_confidence", 0.95)?,
                }),
            },
        },
        "promote" => Edit::Promote { version: version(state, flow, form.get("version"))? },
        "clear" => Edit::Clear { kind: form.get("kind").to_owned() },
        "evacuate" => return Ok(Action::Evacuate(version(state, flow, form.get("version"))?)),
        other => return Err(format!("unknown action '{other}' ({})", ACTIONS.join(", "))),
    };
    if (edit.action() == "pin" || edit.action() == "unpin")
        && let Edit::Pin { contacts, .. } | Edit::Unpin { contacts } = &edit
        && contacts.is_empty()
    {
        return Err("list at least one contact".to_owned());
    }
    Ok(Action::Edit(edit))
}

/// A 404 page unless `flow` is compiled in.
fn known_flow(state: &UiState, lang: Lang, operator: &Operator, flow: &str) -> Result<(), Response> {
    if state.app.engine().registry().has_flow(flow) {
        Ok(())
    } else {
        Err(super::message(state, lang, Some(operator), StatusCode::NOT_FOUND, &lang.f("unknown_flow", &[&flow])))
    }
}

#[derive(Template)]
#[template(path = "ui/steer.html")]
struct SteerPage {
    chrome: Chrome,
    flow: String,
    versions: Vec<VersionRow>,
    compiled: Vec<String>,
    rules: Vec<RuleRow>,
    now_gets: String,
    why: String,
}

#[derive(serde::Deserialize, Default)]
pub struct Done {
    #[serde(default)]
    applied: Option<String>,
    #[serde(default)]
    seq: Option<i64>,
    #[serde(default)]
    evacuated: Option<usize>,
}

/// `GET /ui/flows/{flow}/steer`: the forms, the current rules and live sessions.
pub async fn page(
    State(state): State<UiState>,
    headers: HeaderMap,
    Extension(operator): Extension<Operator>,
    Path(flow): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(response) = known_flow(&state, lang, &operator, &flow) {
        return response;
    }
    let engine = state.app.engine();
    let now = Timestamp::now_utc();
    let rules = match state.app.store().load_policy().await {
        Ok((policy, _)) => policy.get(&flow).cloned().unwrap_or_default(),
        Err(err) => return super::store_failed(&state, lang, &operator, &err),
    };
    let versions = match version_rows(state.app.store(), engine, lang, &flow, now).await {
        Ok(rows) => rows,
        Err(err) => return super::store_failed(&state, lang, &operator, &err),
    };
    let (now_gets, why) = default_choice(lang, engine, &flow, &rules, now);
    let path = format!("/ui/flows/{flow}/steer");
    let mut chrome = Chrome::new(lang, Some(&operator), "overview", &path, format!("{} · {flow}", lang.t("steering")));
    chrome.notice = match (done.applied.as_deref().filter(|action| ACTIONS.contains(action)), done.seq, done.evacuated) {
        (Some(action), Some(seq), _) => Some(lang.f("applied", &[&lang.t(action), &flow, &seq])),
        (_, _, Some(moved)) => Some(lang.f("evacuated", &[&moved])),
        _ => None,
    };
    let compiled = engine.registry().versions_of(&flow).map(|fv| fv.version().to_string()).collect();
    render(StatusCode::OK, &SteerPage { chrome, rules: rule_rows(lang, &rules), flow, versions, compiled, now_gets, why })
}

#[derive(Template)]
#[template(path = "ui/confirm.html")]
struct ConfirmPage {
    chrome: Chrome,
    flow: String,
    action: String,
    reason: String,
    for_new: Vec<String>,
    for_live: Vec<String>,
    before: Vec<RuleRow>,
    after: Vec<RuleRow>,
    problems: Vec<String>,
    /// The form's fields, sent again by the confirm button.
    fields: Vec<(String, String)>,
}

/// What `edit` changes for new sessions, worded.
fn for_new(lang: Lang, state: &UiState, flow: &str, edit: &Edit, after: &FlowRules) -> Vec<String> {
    let now = Timestamp::now_utc();
    let mut lines = vec![match edit {
        Edit::Pin { version, .. } => lang.f("new_pin", &[version]),
        Edit::Unpin { .. } => lang.t("new_unpin").to_owned(),
        Edit::Instance { version, instance } => lang.f("new_instance", &[instance, version]),
        Edit::Schedule { version, from, until } => lang.f("new_schedule", &[&super::when(*from), &super::when(*until), version]),
        Edit::Split { .. } => lang.f("new_split", &[&after.split.as_ref().map(split_shares).unwrap_or_default()]),
        Edit::Promote { version } => lang.f("new_promote", &[version]),
        Edit::Clear { kind } => {
            let (gets, why) = default_choice(lang, state.app.engine(), flow, after, now);
            lang.f("new_clear", &[kind, &format!("{gets} ({why})")])
        }
    }];
    if let Some(guard) = after.split.as_ref().and_then(|split| split.guard.as_ref()).filter(|_| matches!(edit, Edit::Split { .. })) {
        lines.push(lang.f("new_split_guard", &[&guard.metric]));
    }
    if let Some(version) = state.app.engine().resolver().overrides().get(flow) {
        lines.push(lang.f("override", &[&format!("{flow}={version}")]));
    }
    lines
}

/// What happens to live sessions: they keep their version (or, evacuating, restart).
fn for_live(lang: Lang, versions: &[VersionRow], evacuating: Option<(Version, &str)>) -> Vec<String> {
    let live: Vec<&VersionRow> = versions.iter().filter(|row| row.live > 0).collect();
    if live.is_empty() {
        return vec![lang.t("live_none").to_owned()];
    }
    let mut lines = Vec::new();
    for row in live {
        match evacuating {
            Some((version, target)) if row.version == version.to_string() => lines.push(lang.f("evacuate_live", &[&row.live, &row.version, &target])),
            _ => lines.push(lang.f("live_keep", &[&row.live, &row.version, &row.drain])),
        }
    }
    lines
}

/// `POST /ui/flows/{flow}/steer/{action}/confirm`: the confirmation page (nothing changes yet).
pub async fn confirm(
    State(state): State<UiState>,
    headers: HeaderMap,
    Extension(operator): Extension<Operator>,
    Extension(form): Extension<FormData>,
    Path((flow, action)): Path<(String, String)>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(response) = known_flow(&state, lang, &operator, &flow) {
        return response;
    }
    let engine = state.app.engine();
    let now = Timestamp::now_utc();
    let reason = form.get("reason").trim().to_owned();
    let mut problems = Vec::new();
    if reason.is_empty() {
        problems.push(lang.t("reason_help").to_owned());
    }
    let (policy, versions) = match (state.app.store().load_policy().await, version_rows(state.app.store(), engine, lang, &flow, now).await) {
        (Ok((policy, _)), Ok(versions)) => (policy, versions),
        (Err(err), _) | (_, Err(err)) => return super::store_failed(&state, lang, &operator, &err),
    };
    let before = policy.get(&flow).cloned().unwrap_or_default();
    let (for_new_lines, for_live_lines, after) = match parse(&state, &flow, &action, &form) {
        Ok(Action::Edit(edit)) => match edit.apply(&flow, &before) {
            Ok(after) => {
                problems.extend(after.validate(&flow, &engine.registry()));
                (for_new(lang, &state, &flow, &edit, &after), for_live(lang, &versions, None), after)
            }
            Err(problem) => {
                problems.push(problem);
                (Vec::new(), Vec::new(), before.clone())
            }
        },
        Ok(Action::Evacuate(version)) => {
            let (gets, why) = default_choice(lang, engine, &flow, &before, now);
            let mut new_lines = vec![format!("{}: {gets} ({why})", lang.t("new_sessions_get"))];
            if gets == version.to_string() {
                new_lines.push(lang.f("evacuate_refused", &[&version]));
            }
            (new_lines, for_live(lang, &versions, Some((version, &gets))), before.clone())
        }
        Err(problem) => {
            problems.push(problem);
            (Vec::new(), Vec::new(), before.clone())
        }
    };
    let status = if problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let path = format!("/ui/flows/{flow}/steer");
    let action_word = if ACTIONS.contains(&action.as_str()) { lang.t(&action).to_owned() } else { action.clone() };
    let page = ConfirmPage {
        chrome: Chrome::new(lang, Some(&operator), "overview", &path, lang.f("confirm_title", &[&action_word, &flow])),
        before: rule_rows(lang, &before),
        after: rule_rows(lang, &after),
        fields: form.0.iter().filter(|(key, _)| key != "csrf").cloned().collect(),
        flow,
        action,
        reason,
        for_new: for_new_lines,
        for_live: for_live_lines,
        problems,
    };
    render(status, &page)
}

/// `POST /ui/flows/{flow}/steer/{action}/apply`: applies the confirmed change.
pub async fn apply(
    State(state): State<UiState>,
    headers: HeaderMap,
    Extension(operator): Extension<Operator>,
    Extension(form): Extension<FormData>,
    Path((flow, action)): Path<(String, String)>,
) -> Response {
    let lang = Lang::of(&headers);
    if let Err(response) = known_flow(&state, lang, &operator, &flow) {
        return response;
    }
    let refused = |problems: Vec<String>| super::message(&state, lang, Some(&operator), StatusCode::UNPROCESSABLE_ENTITY, &format!("{}: {}", lang.t("refused"), problems.join("; ")));
    let reason = form.get("reason");
    let parsed = match parse(&state, &flow, &action, &form) {
        Ok(parsed) => parsed,
        Err(problem) => return refused(vec![problem]),
    };
    let result = match &parsed {
        Action::Edit(edit) => crate::steer::apply(state.app.store(), state.app.engine(), &flow, edit, &operator.name, reason)
            .await
            .map(|record| format!("/ui/flows/{flow}/steer?applied={}&seq={}", edit.action(), record.seq)),
        Action::Evacuate(version) => crate::steer::evacuate(state.app.store(), state.app.engine(), &flow, *version, &operator.name, reason)
            .await
            .map(|done| format!("/ui/flows/{flow}/steer?evacuated={}", done.moved)),
    };
    match result {
        Ok(location) => {
            tracing::info!(%flow, %action, actor = %operator.name, "rollout changed in the console");
            Redirect::to(&location).into_response()
        }
        Err(ChangeError::Invalid(problems)) => refused(problems),
        Err(ChangeError::Store(err)) => super::store_failed(&state, lang, &operator, &err),
    }
}
