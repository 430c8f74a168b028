//! One module per subcommand. Each returns the process exit code; errors
//! that are not the user's input bubble up as `anyhow` errors (exit 2).

use std::process::ExitCode;
use std::sync::Arc;

use switchyard_engine::engine::{Engine, EngineConfig};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};

use crate::cli::{Cli, Command, FlowsAction, HandoffAction};
use switchyard_store::Db;
use switchyard::config::Config;

mod audit;
mod chat;
mod eval_classifier;
mod check;
mod documents;
mod explain;
mod flows;
mod handoff;
pub(crate) mod replay;
mod report;
mod rollout;
mod scaffold;
mod serve;
mod sessions;
pub(crate) mod simulate;
mod snapshot;

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Flows { action: None, json } => flows::list(json).await,
        Command::Flows { action: Some(FlowsAction::Show { spec, json }), .. } => flows::show(&spec, json).await,
        Command::Flows { action: Some(FlowsAction::Publish { file, reason }), .. } => documents::publish(&file, &reason).await,
        Command::Flows { action: Some(FlowsAction::Test { file, transcripts }), .. } => Ok(documents::test(&file, &transcripts).await),
        Command::Flows { action: Some(FlowsAction::Export { spec }), .. } => documents::export(&spec).await,
        Command::Flows { action: Some(FlowsAction::Graph { spec }), .. } => flows::graph(&spec).await,
        Command::Flows { action: Some(FlowsAction::Lock { specs, file }), .. } => flows::lock(&specs, file),
        Command::Flows { action: Some(FlowsAction::New { spec, from, dir }), .. } => Ok(scaffold::run(&spec, &from, &dir)),
        Command::Flows { action: Some(FlowsAction::Diff { from, to, json }), .. } => flows::diff(&from, &to, json).await,
        Command::Flows { action: Some(FlowsAction::Snapshot { spec, format }), .. } => snapshot::run(&spec, &format).await,
        Command::Check => Ok(check::run().await),
        Command::EvalClassifier { spec, json } => eval_classifier::run(&spec, json).await,
        Command::Explain { flow, contact, instance, json } => explain::run(&flow, &contact, &instance, json).await,
        Command::Chat { contact, instance, json } => chat::run(&contact, &instance, json).await,
        Command::Serve => serve::run().await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Replay(args) => replay::run(args).await,
        Command::Report { flow, versions, since, until, instance, min_finished, json } => {
            report::run(&flow, versions, since, until, instance, min_finished, json).await
        }
        Command::Rollout { action } => rollout::run(action).await,
        Command::Audit { action, flow, since, until, json } => audit::run(action, flow, since, until, json).await,
        Command::Handoff { action: HandoffAction::Release { contact, instance, reason } } => handoff::release(&contact, &instance, &reason).await,
        Command::Sessions { action } => sessions::run(action).await,
    }
}

/// Exit code for "the configuration or the flows are invalid".
pub const INVALID: u8 = 1;

/// Prints each problem on its own line to stderr.
pub fn report(problems: &[String]) {
    for problem in problems {
        eprintln!("error: {problem}");
    }
}

/// The registry of every compiled version, or the exit code after printing
/// one line per problem. Only what is about code itself reads this alone
/// (`flows lock`, `flows new`); every other command reads [`registry`].
pub fn compiled() -> Result<Arc<Registry>, ExitCode> {
    switchyard_flows::registry(&switchyard_flows::Deps::demo()).map(Arc::new).map_err(|errors| {
        let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        report(&problems);
        ExitCode::from(INVALID)
    })
}

/// Every version a `serve` on the configured store runs: the compiled ones
/// plus those published to the store as documents, added the way `serve`
/// adds them ([`switchyard::document::publish::with_published`]). Without a
/// store (a SQLite file that does not exist yet) that is the compiled ones;
/// a store that cannot be read is a warning, and the compiled ones are used.
pub async fn registry() -> Result<Arc<Registry>, ExitCode> {
    let compiled = compiled()?;
    match Config::from_env() {
        Ok(config) => Ok(with_store(compiled, &config).await),
        Err(problems) => {
            eprintln!("warning: versions published to the store are not read ({}); compiled versions only", problems.join("; "));
            Ok(compiled)
        }
    }
}

/// `compiled` plus the versions published to `config`'s store (see [`registry`]).
async fn with_store(compiled: Arc<Registry>, config: &Config) -> Arc<Registry> {
    let stored = match existing_store(config).await {
        Ok(Some(store)) => store.documents().await.map_err(|err| err.to_string()),
        Ok(None) => Ok(Vec::new()),
        Err(err) => Err(format!("{err:#}")),
    };
    let stored = match stored {
        Ok(stored) => stored,
        Err(problem) => {
            eprintln!("warning: versions published to the store are not read ({problem}); compiled versions only");
            return compiled;
        }
    };
    let (extended, warnings) = switchyard::document::publish::with_published(&compiled, &stored);
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    extended.map_or(compiled, Arc::new)
}

/// The configured store if it exists: a SQLite file that is not there yet
/// holds nothing, and is not created by a command that only reads.
pub async fn existing_store(config: &Config) -> anyhow::Result<Option<Db>> {
    if let Some(path) = sqlite_path(&config.database_url)
        && !std::path::Path::new(path).exists()
    {
        return Ok(None);
    }
    open_store(config).await.map(Some)
}

/// The configured store for a command that only reads it (`explain`,
/// `report`, `audit`, `rollout show|status`, `sessions list|show|export`,
/// `replay` from the store) or acts on what it holds (`sessions end|forget`,
/// `handoff release`): a SQLite file that does not exist is refused in one
/// line naming it (exit 1), and not created, so a command run in the wrong
/// directory (or without `DATABASE_URL`) says so instead of answering from
/// an empty database.
pub async fn existing_store_or_refuse(config: &Config) -> anyhow::Result<Result<Db, ExitCode>> {
    if let Some(path) = sqlite_path(&config.database_url)
        && !std::path::Path::new(path).exists()
    {
        report(&[missing_database(path, &config.database_url)]);
        return Ok(Err(ExitCode::from(INVALID)));
    }
    open_store(config).await.map(Ok)
}

/// The line for a SQLite file that is not there.
fn missing_database(path: &str, url: &str) -> String {
    let from = if url == switchyard_store::DEFAULT_DATABASE_URL {
        format!("DATABASE_URL is not set, so the default {url} in the current directory")
    } else {
        format!("DATABASE_URL {url}")
    };
    format!("no database at {path} ({from}); this command does not create one: set DATABASE_URL to the store serve uses")
}

/// The file of a `sqlite://PATH` (or `sqlite:PATH`) URL; `None` for other
/// backends and in-memory databases.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

/// Everything a command that runs conversations needs: valid flows, valid
/// configuration and a valid override. Refuses (exit 1) otherwise, exactly
/// as the server refuses to start.
///
/// The registry holds the published versions too ([`registry`]), so
/// `FLOW_VERSION_OVERRIDES` may name one, as it may name a compiled one.
pub async fn setup() -> Result<(Config, Arc<Engine>), ExitCode> {
    let compiled = compiled()?;
    let config = Config::from_env().map_err(|problems| {
        report(&problems);
        ExitCode::from(INVALID)
    })?;
    let registry = with_store(compiled, &config).await;
    let overrides: Overrides = config.overrides(&registry).map_err(|problems| {
        report(&problems);
        ExitCode::from(INVALID)
    })?;
    let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
    let engine_config = EngineConfig {
        session_ttl: config.session_ttl,
        handoff_ttl: config.handoff_ttl,
        commands: config.commands.clone(),
        ..EngineConfig::default()
    };
    let engine = Engine::new(registry, resolver, engine_config).map_err(|problem| {
        report(&[problem]);
        ExitCode::from(INVALID)
    })?;
    Ok((config, Arc::new(engine)))
}

/// [`setup`] plus the store, with the stored rollout policy loaded into the
/// engine (the console and `explain` resolve exactly as `serve` would).
pub async fn setup_with_store() -> anyhow::Result<Result<(Config, Arc<Engine>, Db), ExitCode>> {
    setup_with(Access::Create).await
}

/// [`setup_with_store`] for a command that needs a store that exists
/// ([`existing_store_or_refuse`]): it is never created.
pub async fn setup_with_existing_store() -> anyhow::Result<Result<(Config, Arc<Engine>, Db), ExitCode>> {
    setup_with(Access::Existing).await
}

/// Whether a command may create the configured store.
#[derive(Clone, Copy)]
enum Access {
    /// It writes conversations or policy (`chat`, `simulate`, `flows publish`).
    Create,
    /// It reads, or acts on what is there: a missing SQLite file is refused.
    Existing,
}

async fn setup_with(access: Access) -> anyhow::Result<Result<(Config, Arc<Engine>, Db), ExitCode>> {
    let (config, engine) = match setup().await {
        Ok(setup) => setup,
        Err(code) => return Ok(Err(code)),
    };
    let store = match access {
        Access::Create => open_store(&config).await?,
        Access::Existing => match existing_store_or_refuse(&config).await? {
            Ok(store) => store,
            Err(code) => return Ok(Err(code)),
        },
    };
    let (_, warnings) = switchyard::rollout::load_into(&store, &engine).await?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(Ok((config, engine, store)))
}

/// The configured model, if any (`LLM_BASE_URL`): the keyword classifiers
/// decide without one.
pub fn model(config: &Config) -> anyhow::Result<Option<Arc<switchyard_llm::Llm>>> {
    match &config.llm {
        None => Ok(None),
        Some(settings) => Ok(Some(Arc::new(switchyard_llm::Llm::new(settings.clone()).map_err(anyhow::Error::msg)?))),
    }
}

pub async fn open_store(config: &Config) -> anyhow::Result<Db> {
    use anyhow::Context;
    switchyard_store::open(&config.database_url, &config.database).await.with_context(|| format!("opening the store at {}", switchyard_store::redact_url(&config.database_url)))
}

/// Parses `--contact` and `--instance`, or reports the bad one (exit 1).
pub fn contact_and_instance(
    contact: &str,
    instance: &str,
) -> Result<(switchyard_engine::ids::Contact, switchyard_engine::ids::InstanceId), ExitCode> {
    let contact = switchyard_engine::ids::Contact::parse(contact).map_err(|problem| {
        report(&[format!("--contact: {problem}")]);
        ExitCode::from(INVALID)
    })?;
    let instance = switchyard_engine::ids::InstanceId::parse(instance).map_err(|problem| {
        report(&[format!("--instance: {problem}")]);
        ExitCode::from(INVALID)
    })?;
    Ok((contact, instance))
}
