//! `switchyard replay FLOW --candidate vN` and `switchyard sessions export
//! --masked`: recorded conversations (from the store, or a corpus file)
//! through a candidate version in memory, compared with their baseline.
//! The store is only read.

use std::io::Write;
use std::process::ExitCode;

use switchyard::replay::corpus::{self, Conversation, Masker};
use switchyard::progress as crate_progress;
use switchyard::replay::{aggregate, choose, document, replay_all, SessionResult};
use switchyard_engine::ids::{InstanceId, Version};
use switchyard_engine::time::Timestamp;
use switchyard_store::recorded::RecordedFilter;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The flow whose recorded sessions are replayed.
    pub flow: String,
    /// The version to try (`v3`).
    #[arg(long)]
    pub candidate: String,
    /// Compare with this version (default: the version that served each session).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Sessions started from this time (RFC 3339 or a date).
    #[arg(long)]
    pub since: Option<String>,
    /// Sessions started before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Only sessions on this Evolution instance.
    #[arg(long)]
    pub instance: Option<String>,
    /// At most this many sessions (oldest first).
    #[arg(long, default_value_t = 10_000)]
    pub limit: u32,
    /// Replay a corpus (`sessions export --masked`) instead of the store.
    #[arg(long, value_name = "FILE")]
    pub corpus: Option<std::path::PathBuf>,
    /// Replayed sessions before a winner may be named.
    #[arg(long, default_value_t = 100)]
    pub min_sessions: u64,
    /// Exit 1 when the candidate is significantly worse on understanding or handoff.
    #[arg(long)]
    pub fail_on_regression: bool,
    #[arg(long)]
    pub json: bool,
}

fn invalid(problems: &[String]) -> ExitCode {
    super::report(problems);
    ExitCode::from(super::INVALID)
}

fn time(name: &str, text: Option<&str>, problems: &mut Vec<String>) -> Option<Timestamp> {
    text.and_then(|text| Timestamp::parse_rfc3339(text).map_err(|problem| problems.push(format!("{name}: {problem}"))).ok())
}

/// The recorded sessions of the window, as conversations, and how many were
/// left out: a text erased or purged, or no text in the inbox at all (a
/// session `simulate` ran, or whose texts a contact's erasure removed).
async fn from_store(flow: &str, since: Option<Timestamp>, until: Option<Timestamp>, instance: Option<&InstanceId>, limit: u32) -> anyhow::Result<Result<(Vec<Conversation>, u64), ExitCode>> {
    let config = match switchyard::config::Config::from_env() {
        Ok(config) => config,
        Err(problems) => return Ok(Err(invalid(&problems))),
    };
    let store = match super::existing_store_or_refuse(&config).await? {
        Ok(store) => store,
        Err(code) => return Ok(Err(code)),
    };
    let recorded = store.recorded_sessions(&RecordedFilter { flow, since, until, instance, limit }).await?;
    let total = recorded.len() as u64;
    let conversations: Vec<Conversation> = recorded.iter().filter_map(|session| Conversation::from_recorded(flow, session)).collect();
    let skipped = total - conversations.len() as u64;
    Ok(Ok((conversations, skipped)))
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    // A published (data) version is a candidate or baseline like a compiled one.
    let (_config, engine) = match super::setup().await {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    let registry = engine.registry().clone();
    let chosen = choose(&registry, &args.flow, ("--candidate", &args.candidate), args.baseline.as_deref().map(|text| ("--baseline", text)));
    let mut problems = chosen.as_ref().err().cloned().unwrap_or_default();
    let (since, until) = (time("--since", args.since.as_deref(), &mut problems), time("--until", args.until.as_deref(), &mut problems));
    let instance = args.instance.as_deref().and_then(|text| InstanceId::parse(text).map_err(|problem| problems.push(format!("--instance: {problem}"))).ok());
    if args.corpus.is_some() && (since.is_some() || until.is_some() || instance.is_some()) {
        problems.push("--corpus replays the whole file: --since, --until and --instance select from the store".to_owned());
    }
    let (Ok(choice), true) = (chosen, problems.is_empty()) else {
        return Ok(invalid(&problems));
    };

    let (mut conversations, skipped) = match &args.corpus {
        Some(path) => {
            let source = match std::fs::read_to_string(path) {
                Ok(source) => source,
                Err(err) => return Ok(invalid(&[format!("--corpus {}: {err}", path.display())])),
            };
            match corpus::read(&source, &path.display().to_string()) {
                Ok(all) => {
                    if let Some(other) = all.iter().find(|conversation| conversation.flow != args.flow) {
                        return Ok(invalid(&[format!("--corpus {}: holds a session of flow '{}', not '{}'", path.display(), other.flow, args.flow)]));
                    }
                    (all, 0)
                }
                Err(problem) => return Ok(invalid(&[problem])),
            }
        }
        None => match from_store(&args.flow, since, until, instance.as_ref(), args.limit).await? {
            Ok(found) => found,
            Err(code) => return Ok(code),
        },
    };
    conversations.truncate(args.limit as usize);
    let replayer = match choice.replayer(registry, engine.config(), &conversations) {
        Ok(replayer) => replayer,
        Err(problem) => return Ok(invalid(&[problem.replace("name a baseline", "pass --baseline")])),
    };

    let bar = crate_progress::bar(conversations.len() as u64, "replayed", args.json);
    let results = replay_all(&replayer, &choice, &conversations, None, |done| bar.set_position(done as u64));
    bar.finish_and_clear();
    let summary = aggregate(&results, args.min_sessions);
    let code = if args.fail_on_regression && summary.regression { ExitCode::from(1) } else { ExitCode::SUCCESS };
    if args.json {
        println!("{}", document(&choice.flow, choice.candidate, choice.baseline, skipped, &results, &summary));
        return Ok(code);
    }
    print_text(&args.flow, choice.candidate, choice.baseline, skipped, &results, &summary);
    Ok(code)
}

fn percent(value: f64) -> String {
    format!("{:.1}%", value * 100.0)
}

fn print_text(flow: &str, candidate: Version, baseline: Option<Version>, skipped: u64, results: &[SessionResult], summary: &switchyard::replay::Aggregate) {
    let base = baseline.map_or_else(|| "the version that served each session".to_owned(), |version| version.to_string());
    println!("{flow}: {} sessions replayed through {candidate}, against {base}", results.len());
    if skipped > 0 {
        println!("{skipped} sessions left out: texts erased, purged or never in the inbox");
    }
    println!("\nper session: messages aligned / total, first divergence (step in baseline → candidate, the customer's text masked)");
    for result in results {
        let divergence = result.divergence.as_ref().map_or_else(
            || "aligned to the end".to_owned(),
            |d| format!("diverges at message {}: {} → {} on \"{}\"", d.message + 1, d.baseline, d.candidate, d.text),
        );
        let outcome = result.outcomes.as_ref().map_or_else(String::new, |(b, c)| format!(", ends {b} → {c}"));
        let failure = result.failure.as_ref().map_or_else(String::new, |failure| format!(", candidate failed: {failure}"));
        println!(
            "  {} ({}→{}): {}/{} aligned, understood {}/{} → {}/{}; {divergence}{outcome}{failure}",
            result.session, result.baseline, result.candidate, result.aligned, result.messages, result.understood.0, result.aligned, result.understood.1, result.aligned
        );
    }
    let line = |name: &str, (b, c, test): &(switchyard_engine::analytics::Rate, switchyard_engine::analytics::Rate, switchyard_engine::analytics::TwoProportion)| {
        println!(
            "  {name:<28} {:>6} [{}–{}]  {:>6} [{}–{}]  {:+.1} points [{:+.1}, {:+.1}]",
            percent(b.value),
            percent(b.low),
            percent(b.high),
            percent(c.value),
            percent(c.low),
            percent(c.high),
            test.difference * 100.0,
            test.low * 100.0,
            test.high * 100.0
        );
    };
    println!("\naggregate (95% Wilson intervals; difference candidate − baseline, Newcombe):");
    println!("  {:<28} {:>22}  {:>22}", "", "baseline", "candidate");
    line("first message understood", &summary.first);
    line("aligned messages understood", &summary.aligned);
    line("handed to a person", &summary.handoff);
    for (title, map) in [("new re-prompts", &summary.new_reprompts), ("new handoffs", &summary.new_handoffs)] {
        if !map.is_empty() {
            let list: Vec<String> = map.iter().map(|(step, count)| format!("{step} {count}")).collect();
            println!("  {title} by step: {}", list.join(", "));
        }
    }
    println!("  aligned to the end: {}, ending differently: {}", summary.aligned_to_end, summary.ends_differently);
    if summary.failures > 0 {
        println!("  candidate failures: {}", summary.failures);
    }
    if summary.not_reproduced > 0 {
        println!("  baseline replays that did not end as recorded: {} (a model answered live, or the version changed)", summary.not_reproduced);
    }
    println!("\nverdict: {}", summary.verdict);
}

/// `sessions export --flow F --masked`: the corpus on stdout.
pub async fn export(flow: &str, since: Option<&str>, until: Option<&str>, instance: Option<&str>, limit: u32, masked: bool) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    if !masked {
        problems.push("sessions export writes customers' messages: pass --masked (personal data replaced by stand-ins)".to_owned());
    }
    let registry = match super::registry().await {
        Ok(registry) => registry,
        Err(code) => return Ok(code),
    };
    if !registry.has_flow(flow) {
        problems.push(format!("--flow: flow '{flow}' is not compiled in"));
    }
    let (since, until) = (time("--since", since, &mut problems), time("--until", until, &mut problems));
    let instance = instance.and_then(|text| InstanceId::parse(text).map_err(|problem| problems.push(format!("--instance: {problem}"))).ok());
    if !problems.is_empty() {
        return Ok(invalid(&problems));
    }
    let (conversations, skipped) = match from_store(flow, since, until, instance.as_ref(), limit).await? {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let mut masker = Masker::new();
    let mut out = std::io::stdout().lock();
    for (index, conversation) in conversations.iter().enumerate() {
        writeln!(out, "{}", masker.conversation(conversation, index).to_json())?;
    }
    out.flush()?;
    eprintln!("exported {} sessions of {flow}, masked; {skipped} left out (texts erased, purged or never in the inbox)", conversations.len());
    Ok(ExitCode::SUCCESS)
}
