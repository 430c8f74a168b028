//! Publishing a document: parse, validate against the versions that exist
//! (compiled and published), run its transcripts, store it as the next
//! version of its flow with an audit record; and loading what was published
//! into a running engine (every `serve` does it when the audit revision moves).

use std::path::Path;
use std::sync::Arc;

use switchyard_engine::engine::Engine;
use switchyard_engine::ids::Version;
use switchyard_engine::registry::{suggest, Registry};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_flows::transcript::{parse::parse_with_default, run::run_on};
use switchyard_store::documents::{Publish, StoredDocument};
use switchyard_store::Db;

use super::steps::{build, Context};
use super::{parse, Document};

/// Why a publish was refused (nothing was stored) or failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The document is refused; one line per problem.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored version.
#[derive(Clone, Debug)]
pub struct Published {
    pub flow: String,
    pub version: Version,
    pub fingerprint: String,
    pub audit_seq: i64,
}

/// What checking a document needs besides the document.
#[derive(Clone, Copy, Debug)]
pub struct Checks<'a> {
    /// The endpoint names the configuration allows.
    pub endpoints: &'a [String],
    /// Where referenced transcripts are read from (the document's folder).
    pub base: Option<&'a Path>,
}

/// The registry `registry` plus `document` as `version`, or every problem.
pub fn extend(registry: &Registry, document: &Document, version: u32, endpoints: Option<&[String]>) -> Result<Registry, Vec<String>> {
    if !registry.has_flow(&document.flow) {
        let names: Vec<&str> = registry.flows().into_iter().map(|flow| flow.as_str()).collect();
        let hint = suggest(&document.flow, names.into_iter()).map(|name| format!(" (did you mean '{name}'?)")).unwrap_or_default();
        return Err(vec![format!("flow '{}' does not exist{hint}: a document adds a version to a flow the code declares", document.flow)]);
    }
    let deps = switchyard_flows::Deps::demo();
    let names: Vec<String>;
    let endpoints = match endpoints {
        Some(endpoints) => endpoints,
        None => {
            // Loading a version checked at publish: whatever it names.
            names = document.steps.iter().filter_map(|step| match step {
                super::Step::Http { endpoint, .. } => Some(endpoint.clone()),
                _ => None,
            }).collect();
            &names
        }
    };
    let decl = build(document, version, &Context { endpoints, deps: &deps })?;
    let extended = registry.with(vec![decl]).map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let fixed = fixed_calls(registry, document, version);
    if fixed.is_empty() { Ok(extended) } else { Err(fixed) }
}

/// A `call` that fixes a version (`dc_purchase@v2`) must name one that
/// exists, compiled or published (the registry checks the flow itself).
fn fixed_calls(registry: &Registry, document: &Document, version: u32) -> Vec<String> {
    let mut problems = Vec::new();
    for step in &document.steps {
        let super::Step::Call { id, flow, .. } = step else { continue };
        let Ok(switchyard_engine::call::Callee { flow: callee, version: Some(fixed) }) = switchyard_engine::call::Callee::parse(flow) else { continue };
        let known: Vec<String> = registry.versions_of(callee).map(|fv| fv.version().to_string()).collect();
        if !known.is_empty() && registry.get(callee, fixed).is_none() {
            problems.push(format!("{}@v{version}: step '{id}' calls {flow}, which does not exist ({callee} has {})", document.flow, known.join(", ")));
        }
    }
    problems
}

/// The next version of `flow`: one more than any compiled or published one.
pub fn next_version(registry: &Registry, stored: &[StoredDocument], flow: &str) -> u32 {
    let compiled = registry.versions_of(flow).map(|fv| fv.version().number()).max().unwrap_or(0);
    let published = stored.iter().filter(|doc| doc.flow == flow).map(|doc| doc.version.number()).max().unwrap_or(0);
    compiled.max(published) + 1
}

/// Runs the document's transcripts (referenced and inline) against it as
/// `version`, on fresh registries; every failure, one entry each.
pub fn run_transcripts(document: &Document, version: u32, base: Option<&Path>, extra: &[(String, String)]) -> Vec<String> {
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    for name in &document.transcripts {
        let path = base.map_or_else(|| Path::new(name).to_path_buf(), |base| base.join(name));
        match std::fs::read_to_string(&path) {
            Ok(text) => sources.push((path.display().to_string(), text)),
            Err(err) => failures.push(format!("transcript file '{}' cannot be read: {err}", path.display())),
        }
    }
    if let Some(inline) = &document.transcript {
        sources.push(("(inline transcript)".to_owned(), inline.clone()));
    }
    sources.extend(extra.iter().cloned());
    let label = format!("v{version}");
    // A fresh demo back office per run, as for compiled versions: the
    // compiled versions and this document.
    let fresh = || -> Result<Arc<Registry>, String> {
        let code = switchyard_flows::registry(&switchyard_flows::Deps::demo())
            .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
        extend(&code, document, version, None).map(Arc::new).map_err(|problems| problems.join("; "))
    };
    for (name, text) in &sources {
        match parse_with_default(Path::new(name), text, Some((document.flow.clone(), label.clone()))) {
            Ok(transcripts) if transcripts.is_empty() => failures.push(format!("{name}: holds no transcript")),
            Ok(transcripts) => {
                // Whatever versions a transcript lists, it runs against the document.
                for transcript in &transcripts {
                    if let Err(failure) = run_on(transcript, &document.flow, &label, &fresh) {
                        failures.push(failure);
                    }
                }
            }
            Err(problem) => failures.push(problem),
        }
    }
    failures
}

/// Validates `source` as the next version of its flow, runs its transcripts,
/// and stores it (inactive; audited with `actor`, `reason` and the
/// fingerprint). Nothing is stored when anything is refused.
pub async fn publish(store: &Db, registry: &Registry, source: &str, actor: &str, reason: &str, checks: Checks<'_>) -> Result<Published, PublishError> {
    let document = parse(source).map_err(|err| PublishError::Invalid(vec![err.to_string()]))?;
    if reason.trim().is_empty() {
        return Err(PublishError::Invalid(vec!["a reason is required (--reason \"...\"): the audit log records why every version was published".to_owned()]));
    }
    let stored = store.documents().await?;
    let version = next_version(registry, &stored, &document.flow);
    extend(registry, &document, version, Some(checks.endpoints)).map_err(PublishError::Invalid)?;
    let failures = run_transcripts(&document, version, checks.base, &[]);
    if !failures.is_empty() {
        let mut problems = vec![format!("{}@v{version}: {} transcript run(s) failed", document.flow, failures.len())];
        problems.extend(failures);
        return Err(PublishError::Invalid(problems));
    }
    let fingerprint = document.fingerprint();
    let record = store
        .publish_document(&Publish {
            flow: &document.flow,
            version: Version::new(version),
            fingerprint: &fingerprint,
            source,
            actor,
            reason: reason.trim(),
            at: Timestamp::now_utc(),
        })
        .await?;
    Ok(Published { flow: document.flow, version: Version::new(version), fingerprint, audit_seq: record.seq })
}

/// `registry` plus every stored version it does not hold yet: what every
/// `serve` runs and every command reads (one function for both). A stored
/// document that no longer parses, whose fingerprint does not match, or
/// that the registry refuses is skipped with a warning, never half-loaded.
/// Versions are added in publish order, retried until none is left that
/// can be added, so a document calling a version published after it in
/// name order (`billing@v4` calling `dc_purchase@v3`) still loads.
/// `None` when nothing was added.
pub fn with_published(registry: &Registry, stored: &[StoredDocument]) -> (Option<Registry>, Vec<String>) {
    let mut pending: Vec<(&StoredDocument, Document)> = Vec::new();
    let mut warnings = Vec::new();
    let mut ordered: Vec<&StoredDocument> = stored.iter().filter(|doc| registry.get(&doc.flow, doc.version).is_none()).collect();
    ordered.sort_by_key(|doc| (doc.published_at, doc.flow.clone(), doc.version));
    for doc in ordered {
        let label = format!("{}@{}", doc.flow, doc.version);
        match parse(&doc.source) {
            Ok(document) if document.fingerprint() == doc.fingerprint && document.flow == doc.flow => pending.push((doc, document)),
            Ok(_) => warnings.push(format!("published {label} skipped: its fingerprint or flow does not match the stored one")),
            Err(err) => warnings.push(format!("published {label} skipped: {err}")),
        }
    }
    let mut current: Option<Registry> = None;
    loop {
        let mut refused = Vec::new();
        let before = pending.len();
        for (doc, document) in pending {
            let base = current.as_ref().unwrap_or(registry);
            match extend(base, &document, doc.version.number(), None) {
                Ok(extended) => current = Some(extended),
                Err(problems) => refused.push((doc, document, problems)),
            }
        }
        if refused.is_empty() || refused.len() == before {
            for (doc, _, problems) in refused {
                warnings.push(format!("published {}@{} skipped: {}", doc.flow, doc.version, problems.join("; ")));
            }
            return (current, warnings);
        }
        pending = refused.into_iter().map(|(doc, document, _)| (doc, document)).collect();
    }
}

/// Adds every stored version the engine does not run yet to its registry
/// ([`with_published`]), returning the warnings.
pub async fn load_new(store: &Db, engine: &Engine) -> Result<Vec<String>, StoreError> {
    let stored = store.documents().await?;
    let (extended, warnings) = with_published(&engine.registry(), &stored);
    if let Some(extended) = extended {
        engine.set_registry(Arc::new(extended));
    }
    Ok(warnings)
}
