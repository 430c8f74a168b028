//! `switchyard report FLOW`: the per-version report in aligned tables, or
//! JSON (the same document as `GET /api/report`).

use std::process::ExitCode;

use switchyard::views::flow::{FlowReport, RateFigure, ReportQuery};
use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::time::Timestamp;

fn percent(rate: &RateFigure) -> String {
    format!("{:5.1}% [{:4.1}–{:4.1}]", rate.value * 100.0, rate.low * 100.0, rate.high * 100.0)
}

#[allow(clippy::too_many_arguments)] // reason: one per command-line option
pub async fn run(
    flow: &str,
    versions: Option<Vec<String>>,
    since: Option<String>,
    until: Option<String>,
    instance: Option<String>,
    min_finished: u64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (_config, engine, store) = match super::setup_with_existing_store().await? {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    let mut problems = Vec::new();
    if !engine.registry().has_flow(flow) {
        problems.push(format!("flow '{flow}' is not compiled in"));
    }
    let versions = versions.map(|list| {
        list.iter()
            .filter_map(|text| Version::parse(text.trim()).map_err(|problem| problems.push(format!("--versions: {problem}"))).ok())
            .collect::<Vec<_>>()
    });
    let mut time = |name: &str, text: Option<String>| {
        text.and_then(|text| Timestamp::parse_rfc3339(&text).map_err(|problem| problems.push(format!("{name}: {problem}"))).ok())
    };
    let (since, until) = (time("--since", since), time("--until", until));
    let instance = instance.and_then(|text| InstanceId::parse(&text).map_err(|problem| problems.push(format!("--instance: {problem}"))).ok());
    if !problems.is_empty() {
        super::report(&problems);
        return Ok(ExitCode::from(super::INVALID));
    }
    let query = ReportQuery { versions, since, until, instance, min_finished };
    let report = switchyard::views::flow::flow_report(&store, &engine, flow, &query).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_report(&report);
    Ok(ExitCode::SUCCESS)
}

/// The report in aligned tables.
fn print_report(report: &FlowReport) {
    let flow = &report.flow;
    let versions = &report.versions;
    if versions.is_empty() {
        println!("{flow}: no sessions in this window");
        return;
    }
    println!("{flow}: sessions and rates over finished sessions (95% Wilson intervals)\n");
    println!("{:<10} {:>8} {:>8} {:>5} {:>21} {:>21} {:>21} {:>21} {:>7}", "version", "started", "finished", "live", "completion", "handoff", "expiry", "failure", "turns");
    for version in versions {
        println!(
            "{:<10} {:>8} {:>8} {:>5} {:>21} {:>21} {:>21} {:>21} {:>7}",
            version.version.to_string(),
            version.started,
            version.finished,
            version.live,
            percent(&version.completion_rate),
            percent(&version.handoff_rate),
            percent(&version.expiry_rate),
            percent(&version.failure_rate),
            version.median_turns.map_or("-".to_owned(), |turns| format!("{turns:.1}")),
        );
    }
    // Holds for a person (handoffs and agent takeovers) and time on hold.
    for version in versions.iter().filter(|version| version.holds.handoffs + version.holds.takeovers > 0) {
        let holds = &version.holds;
        println!(
            "{}: on hold {} (handoffs {}, takeovers {}); given back {}, released {}, expired {}; {:.0} s on hold in all",
            version.version,
            holds.handoffs + holds.takeovers,
            holds.handoffs,
            holds.takeovers,
            holds.returned,
            holds.released,
            holds.expired,
            holds.on_hold_seconds
        );
    }
    // The funnel side by side: each version's steps in its own order.
    println!("\nfunnel: sessions that reached each step / lost there (expired, handed off, failed, cancelled)");
    let columns: Vec<Vec<String>> = versions
        .iter()
        .map(|version| {
            let mut lines = vec![version.version.to_string()];
            for step in &version.funnel {
                lines.push(format!("{:<32} {:>6} {:>6}", step.step, step.reached, step.lost_here));
            }
            lines
        })
        .collect();
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0);
    for row in 0..rows {
        let line: Vec<String> = columns.iter().map(|column| format!("{:<47}", column.get(row).cloned().unwrap_or_default())).collect();
        println!("  {}", line.join("  ").trim_end());
    }
    // Global commands (menu, sair, atendente) by the step they were used at.
    for version in versions {
        for step in version.funnel.iter().filter(|step| !step.commands_here.is_empty()) {
            let used: Vec<String> = step.commands_here.iter().map(|(command, count)| format!("{command} {count}")).collect();
            println!("  {} {}: global commands {}", version.version, step.step, used.join(", "));
        }
    }
    if versions.iter().any(|version| version.classification.decisions > 0) {
        println!("\nclassification: who decided, and what the model cost");
        println!("{:<10} {:>9} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>8} {:>8} {:>10} {:>10}", "version", "decisions", "keyword", "trained", "model", "calls", "cached", "failures", "p50 ms", "p95 ms", "tokens in", "tokens out");
        for version in versions {
            let c = &version.classification;
            let ms = |ms: Option<u64>| ms.map_or("-".to_owned(), |ms| ms.to_string());
            println!(
                "{:<10} {:>9} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>8} {:>8} {:>10} {:>10}",
                version.version.to_string(), c.decisions, c.by_keyword, c.by_trained, c.by_model, c.model_calls,
                c.cache_hits, c.model_failures, ms(c.latency_ms_p50), ms(c.latency_ms_p95), c.prompt_tokens, c.completion_tokens,
            );
        }
    }
    if versions.iter().any(|version| !version.slots.is_empty()) {
        println!("\nform slots: where the values came from, and where customers got stuck");
        println!("{:<10} {:<12} {:>7} {:>24} {:>12} {:>7}  missed because", "version", "slot", "filled", "by source", "on entering", "missed");
        for version in versions {
            for (slot, s) in &version.slots {
                let pairs = |map: &std::collections::BTreeMap<String, u64>| map.iter().map(|(name, n)| format!("{name} {n}")).collect::<Vec<_>>().join(", ");
                println!(
                    "{:<10} {:<12} {:>7} {:>24} {:>12} {:>7}  {}",
                    version.version.to_string(), slot, s.filled, pairs(&s.by_source), s.on_entering, s.missed, pairs(&s.missed_by_reason),
                );
            }
        }
    }
    if let Some(srm) = &report.sample_ratio {
        let observed: Vec<String> = srm.observed.iter().map(|row| format!("{} {} sessions for {}%", row.version, row.sessions, row.weight)).collect();
        let verdict = if srm.mismatch { "SAMPLE RATIO MISMATCH: the split is not serving its weights; distrust the comparison" } else { "matches the weights" };
        println!("\nsplit: {} (p = {:.3}): {verdict}", observed.join(", "), srm.p_value);
    }
    if let Some(comparison) = &report.comparison {
        println!("\nverdict: {}", comparison.verdict);
    }
}
