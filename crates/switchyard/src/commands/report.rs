//! `switchyard report FLOW`: the per-version report in aligned tables, or
//! JSON (the same document as `GET /api/report`).

use std::process::ExitCode;

use serde_json::Value;
use switchyard::report::ReportQuery;
use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::time::Timestamp;

fn percent(rate: &Value) -> String {
    let value = |key: &str| rate[key].as_f64().unwrap_or(0.0) * 100.0;
    format!("{:5.1}% [{:4.1}–{:4.1}]", value("value"), value("low"), value("high"))
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
    let (_config, engine, store) = match super::setup_with_store().await? {
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
    let report = switchyard::report::build(&store, &engine, flow, &query).await?;
    if json {
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    let versions = report["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        println!("{flow}: no sessions in this window");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{flow}: sessions and rates over finished sessions (95% Wilson intervals)\n");
    println!("{:<10} {:>8} {:>8} {:>5} {:>21} {:>21} {:>21} {:>21} {:>7}", "version", "started", "finished", "live", "completion", "handoff", "expiry", "failure", "turns");
    for version in &versions {
        println!(
            "{:<10} {:>8} {:>8} {:>5} {:>21} {:>21} {:>21} {:>21} {:>7}",
            version["version"].as_str().unwrap_or("?"),
            version["started"].as_u64().unwrap_or(0),
            version["finished"].as_u64().unwrap_or(0),
            version["live"].as_u64().unwrap_or(0),
            percent(&version["completion_rate"]),
            percent(&version["handoff_rate"]),
            percent(&version["expiry_rate"]),
            percent(&version["failure_rate"]),
            version["median_turns"].as_f64().map_or("-".to_owned(), |turns| format!("{turns:.1}")),
        );
    }
    // The funnel side by side: each version's steps in its own order.
    println!("\nfunnel: sessions that reached each step / lost there (expired, handed off, failed, cancelled)");
    let columns: Vec<Vec<String>> = versions
        .iter()
        .map(|version| {
            let mut lines = vec![format!("{}", version["version"].as_str().unwrap_or("?"))];
            for step in version["funnel"].as_array().cloned().unwrap_or_default() {
                let lost = ["expired_here", "handed_off_here", "failed_here", "cancelled_here"].iter().map(|key| step[*key].as_u64().unwrap_or(0)).sum::<u64>();
                lines.push(format!("{:<32} {:>6} {:>6}", step["step"].as_str().unwrap_or("?"), step["reached"].as_u64().unwrap_or(0), lost));
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
    for version in &versions {
        for step in version["funnel"].as_array().cloned().unwrap_or_default() {
            let Some(commands) = step["commands_here"].as_object().filter(|commands| !commands.is_empty()) else { continue };
            let used: Vec<String> = commands.iter().map(|(command, count)| format!("{command} {count}")).collect();
            println!("  {} {}: global commands {}", version["version"].as_str().unwrap_or("?"), step["step"].as_str().unwrap_or("?"), used.join(", "));
        }
    }
    if versions.iter().any(|version| version["classification"]["decisions"].as_u64().unwrap_or(0) > 0) {
        println!("\nclassification: who decided, and what the model cost");
        println!("{:<10} {:>9} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>8} {:>8} {:>10} {:>10}", "version", "decisions", "keyword", "trained", "model", "calls", "cached", "failures", "p50 ms", "p95 ms", "tokens in", "tokens out");
        for version in &versions {
            let c = &version["classification"];
            let n = |key: &str| c[key].as_u64().unwrap_or(0);
            let ms = |key: &str| c[key].as_u64().map_or("-".to_owned(), |ms| ms.to_string());
            println!(
                "{:<10} {:>9} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9} {:>8} {:>8} {:>10} {:>10}",
                version["version"].as_str().unwrap_or("?"), n("decisions"), n("by_keyword"), n("by_trained"), n("by_model"), n("model_calls"),
                n("cache_hits"), n("model_failures"), ms("latency_ms_p50"), ms("latency_ms_p95"), n("prompt_tokens"), n("completion_tokens"),
            );
        }
    }
    if versions.iter().any(|version| version["slots"].as_object().is_some_and(|slots| !slots.is_empty())) {
        println!("\nform slots: where the values came from, and where customers got stuck");
        println!("{:<10} {:<12} {:>7} {:>24} {:>12} {:>7}  {}", "version", "slot", "filled", "by source", "on entering", "missed", "missed because");
        for version in &versions {
            let Some(slots) = version["slots"].as_object() else { continue };
            for (slot, s) in slots {
                let pairs = |key: &str| -> String {
                    s[key].as_object().map_or_else(String::new, |map| map.iter().map(|(name, n)| format!("{name} {n}")).collect::<Vec<_>>().join(", "))
                };
                println!(
                    "{:<10} {:<12} {:>7} {:>24} {:>12} {:>7}  {}",
                    version["version"].as_str().unwrap_or("?"), slot, s["filled"], pairs("by_source"), s["on_entering"], s["missed"], pairs("missed_by_reason"),
                );
            }
        }
    }
    if let Some(srm) = report["sample_ratio"].as_object() {
        let observed: Vec<String> = srm["observed"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|row| format!("{} {} sessions for {}%", row["version"].as_str().unwrap_or("?"), row["sessions"], row["weight"].as_str().unwrap_or("?")))
            .collect();
        let verdict = if srm["mismatch"] == true { "SAMPLE RATIO MISMATCH: the split is not serving its weights; distrust the comparison" } else { "matches the weights" };
        println!("\nsplit: {} (p = {:.3}): {verdict}", observed.join(", "), srm["p_value"].as_f64().unwrap_or(1.0));
    }
    if let Some(verdict) = report["comparison"]["verdict"].as_str() {
        println!("\nverdict: {verdict}");
    }
    Ok(ExitCode::SUCCESS)
}
