//! A flow's page: the A/B comparison (rates with 95% whiskers, the verdict,
//! the sample-ratio check), funnels side by side with drop-off per step and
//! global commands, classification, and a window picker. The numbers are
//! the report's (`switchyard report`, `GET /api/report`): the same typed
//! [`FlowReport`] those render, so the three agree.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use switchyard_engine::time::Timestamp;

use crate::views::flow::{DifferenceFigures, FlowReport, RateFigure, ReportQuery, VersionFigures};

use super::auth::Operator;
use super::i18n::Lang;
use super::{percent, render, svg, Chrome, UiState};

/// A difference, worded with a shape and a word (never colour alone).
pub struct Cue {
    pub metric: String,
    pub text: String,
    pub class: &'static str,
}

pub struct FunnelView {
    pub version: String,
    pub svg: String,
    /// (step, command, count): where global commands were used.
    pub commands: Vec<(String, String, u64)>,
}

pub struct ClassRow {
    pub version: String,
    pub decisions: u64,
    pub by: String,
    pub calls: u64,
    pub failures: u64,
    pub latency: String,
    pub tokens: String,
}

pub struct VersionLine {
    pub version: String,
    pub started: u64,
    pub finished: u64,
    pub live: u64,
    pub completion: String,
    pub median_turns: String,
}

#[derive(Template)]
#[template(path = "ui/flow.html")]
struct FlowPage {
    chrome: Chrome,
    flow: String,
    window: String,
    since: String,
    until: String,
    lines: Vec<VersionLine>,
    whiskers: Vec<String>,
    cues: Vec<Cue>,
    verdict: Option<String>,
    srm: Option<(bool, String)>,
    funnels: Vec<FunnelView>,
    classes: Vec<ClassRow>,
}

#[derive(Debug, Default, Deserialize)]
pub struct WindowQuery {
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// The window's bounds: `24h` (default), `7d`, `30d`, or `custom` with RFC 3339 `since`/`until`.
fn bounds(query: &WindowQuery, now: Timestamp) -> Result<(String, Option<Timestamp>, Option<Timestamp>), String> {
    let day = Duration::from_secs(24 * 3600);
    let window = query.window.as_deref().unwrap_or("24h");
    let parse = |name: &str, text: &Option<String>| -> Result<Option<Timestamp>, String> {
        match text.as_deref().map(str::trim).filter(|text| !text.is_empty()) {
            None => Ok(None),
            Some(text) => Timestamp::parse_rfc3339(text).map(Some).map_err(|problem| format!("{name} '{text}': {problem}")),
        }
    };
    match window {
        "24h" => Ok((window.to_owned(), Some(now.minus(day)), None)),
        "7d" => Ok((window.to_owned(), Some(now.minus(day * 7)), None)),
        "30d" => Ok((window.to_owned(), Some(now.minus(day * 30)), None)),
        "custom" => Ok((window.to_owned(), parse("since", &query.since)?, parse("until", &query.until)?)),
        other => Err(format!("window '{other}' must be 24h, 7d, 30d or custom")),
    }
}

/// A difference in points with its interval, as `▲ better` / `▼ worse` / `no clear difference`.
/// `higher_is_better` is false for handoffs.
fn cue(lang: Lang, metric: &str, difference: &DifferenceFigures, higher_is_better: bool) -> Cue {
    let points = format!("{:+.1} pp [{:+.1}, {:+.1}]", difference.difference * 100.0, difference.low * 100.0, difference.high * 100.0);
    let (text, class) = if difference.low > 0.0 {
        if higher_is_better { (format!("▲ {} {points}", lang.t("better")), "better") } else { (format!("▼ {} {points}", lang.t("worse")), "worse") }
    } else if difference.high < 0.0 {
        if higher_is_better { (format!("▼ {} {points}", lang.t("worse")), "worse") } else { (format!("▲ {} {points}", lang.t("better")), "better") }
    } else {
        (format!("● {} {points}", lang.t("no_difference")), "neutral")
    };
    Cue { metric: lang.t(metric).to_owned(), text, class }
}

fn build(lang: Lang, flow: &str, report: &FlowReport) -> (Vec<VersionLine>, Vec<String>, Vec<Cue>, Option<String>, Option<(bool, String)>, Vec<FunnelView>, Vec<ClassRow>) {
    let lines = report
        .versions
        .iter()
        .map(|version| VersionLine {
            version: version.version.to_string(),
            started: version.started,
            finished: version.finished,
            live: version.live,
            completion: percent(version.completion_rate.value),
            median_turns: version.median_turns.map_or("-".to_owned(), |turns| format!("{turns:.1}")),
        })
        .collect();
    let metrics: [(&str, fn(&VersionFigures) -> &RateFigure); 4] = [
        ("completion", |v| &v.completion_rate),
        ("handoff", |v| &v.handoff_rate),
        ("expiry", |v| &v.expiry_rate),
        ("failure", |v| &v.failure_rate),
    ];
    let whiskers = metrics
        .iter()
        .map(|(metric, rate_of)| {
            let rows: Vec<svg::Whisker> = report
                .versions
                .iter()
                .enumerate()
                .map(|(idx, version)| {
                    let rate = rate_of(version);
                    svg::Whisker { label: version.version.to_string(), value: rate.value, low: rate.low, high: rate.high, baseline: idx == 0 }
                })
                .collect();
            format!("<h3>{}</h3>{}", svg::escape(lang.t(metric)), svg::whiskers(&format!("{flow}: {}", lang.t(metric)), &rows))
        })
        .collect();
    let (cues, verdict) = match &report.comparison {
        Some(comparison) => {
            let cues = vec![cue(lang, "completion", &comparison.completion, true), cue(lang, "handoff", &comparison.handoff, false)];
            let verdict = crate::views::verdict::sentence(&comparison.outcome, lang);
            let head = format!("{} vs {}", comparison.candidate, comparison.baseline);
            (cues, Some(if verdict.is_empty() { head } else { format!("{head}: {verdict}") }).filter(|_| comparison.enough || !verdict.is_empty()))
        }
        None => (Vec::new(), None),
    };
    let srm = report.sample_ratio.as_ref().map(|srm| {
        let p = format!("{:.3}", srm.p_value);
        let observed: Vec<String> = srm
            .observed
            .iter()
            .map(|share| format!("{} {}%: {}", share.version, share.weight, share.sessions))
            .collect();
        let sentence = if srm.mismatch { format!("⚠ {}", lang.f("srm_mismatch", &[&p])) } else { format!("✓ {}", lang.f("srm_ok", &[&p])) };
        (srm.mismatch, format!("{sentence} ({})", observed.join(", ")))
    });
    let funnels = report
        .versions
        .iter()
        .map(|version| {
            let steps: Vec<svg::FunnelStep> = version
                .funnel
                .iter()
                .map(|step| svg::FunnelStep {
                    step: step.step.clone(),
                    reached: step.reached,
                    dropped: step.expired_here + step.handed_off_here + step.failed_here + step.cancelled_here,
                })
                .collect();
            let commands = version
                .funnel
                .iter()
                .flat_map(|step| step.commands_here.iter().map(|(command, count)| (step.step.clone(), command.clone(), *count)))
                .collect();
            FunnelView { version: version.version.to_string(), svg: svg::funnel(&format!("{flow} {}", version.version), &steps, lang.t("dropped")), commands }
        })
        .collect();
    let classes = report
        .versions
        .iter()
        .map(|version| {
            let class = &version.classification;
            let latency = |ms: Option<u64>| ms.map_or("-".to_owned(), |ms| ms.to_string());
            ClassRow {
                version: version.version.to_string(),
                decisions: class.decisions,
                by: format!(
                    "{} {} · {} {} · {} {}",
                    class.by_keyword,
                    lang.t("by_keyword"),
                    class.by_trained,
                    lang.t("by_trained"),
                    class.by_model,
                    lang.t("by_model")
                ),
                calls: class.model_calls,
                failures: class.model_failures,
                latency: format!("{} / {}", latency(class.latency_ms_p50), latency(class.latency_ms_p95)),
                tokens: format!("{} / {}", class.prompt_tokens, class.completion_tokens),
            }
        })
        .collect();
    (lines, whiskers, cues, verdict, srm, funnels, classes)
}

/// `GET /ui/flows/{flow}?window=24h|7d|30d|custom&since=&until=`.
pub async fn page(
    State(state): State<UiState>,
    headers: HeaderMap,
    Extension(operator): Extension<Operator>,
    Path(flow): Path<String>,
    Query(query): Query<WindowQuery>,
) -> Response {
    let lang = Lang::of(&headers);
    if !state.app.engine().registry().has_flow(&flow) {
        return super::message(&state, lang, Some(&operator), StatusCode::NOT_FOUND, &lang.f("unknown_flow", &[&flow]));
    }
    let (window, since, until) = match bounds(&query, Timestamp::now_utc()) {
        Ok(bounds) => bounds,
        Err(problem) => return super::message(&state, lang, Some(&operator), StatusCode::BAD_REQUEST, &problem),
    };
    let report_query = ReportQuery { since, until, min_finished: 100, ..Default::default() };
    let report = match crate::views::flow::flow_report(state.app.store(), state.app.engine(), &flow, &report_query).await {
        Ok(report) => report,
        Err(err) => return super::store_failed(&state, lang, &operator, &err),
    };
    let (lines, whiskers, cues, verdict, srm, funnels, classes) = build(lang, &flow, &report);
    let path = format!("/ui/flows/{flow}");
    let page = FlowPage {
        chrome: Chrome::new(lang, Some(&operator), "overview", &path, flow.clone()),
        flow,
        window,
        since: query.since.unwrap_or_default(),
        until: query.until.unwrap_or_default(),
        lines,
        whiskers,
        cues,
        verdict,
        srm,
        funnels,
        classes,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_read_in_the_metric_direction() {
        let up = DifferenceFigures { difference: 0.05, low: 0.01, high: 0.09, z: 2.0, p_value: 0.04 };
        assert_eq!(cue(Lang::En, "completion", &up, true).class, "better");
        assert!(cue(Lang::En, "handoff", &up, false).text.starts_with("▼ worse"));
        let unclear = DifferenceFigures { difference: 0.01, low: -0.02, high: 0.04, z: 0.5, p_value: 0.6 };
        assert!(cue(Lang::PtBr, "completion", &unclear, true).text.contains("sem diferença clara"));
    }

    #[test]
    fn the_window_picker_refuses_unknown_windows_and_bad_dates() {
        let now = Timestamp::parse_rfc3339("2026-12-03T12:00:00Z").unwrap();
        let query = |window: &str, since: &str| WindowQuery { window: Some(window.to_owned()), since: Some(since.to_owned()), until: None };
        assert_eq!(bounds(&query("7d", ""), now).unwrap().1, Some(now.minus(Duration::from_secs(7 * 24 * 3600))));
        assert!(bounds(&query("1y", ""), now).unwrap_err().contains("'1y'"));
        assert!(bounds(&query("custom", "yesterday"), now).unwrap_err().contains("since 'yesterday'"));
        assert_eq!(bounds(&query("custom", "2026-12-01"), now).unwrap().1, Some(Timestamp::parse_rfc3339("2026-12-01").unwrap()));
    }
}
