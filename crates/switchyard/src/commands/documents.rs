//! `flows publish`, `flows test` and `flows export`: flow documents (see
//! `switchyard::document`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use switchyard::document::publish::{extend, next_version, publish as store_document, run_transcripts, Checks, PublishError};
use switchyard::document::{export as export_version, parse};

use super::{report, INVALID};

/// Reads a document file, refusing a too big one before reading it whole.
fn read(file: &Path) -> Result<String, ExitCode> {
    let too_big = std::fs::metadata(file).map(|meta| meta.len() > switchyard::document::MAX_BYTES as u64).unwrap_or(false);
    if too_big {
        let size = std::fs::metadata(file).map(|meta| meta.len()).unwrap_or(0);
        report(&[format!("{}: the document is {size} bytes; the limit is {} bytes", file.display(), switchyard::document::MAX_BYTES)]);
        return Err(ExitCode::from(INVALID));
    }
    std::fs::read_to_string(file).map_err(|err| {
        report(&[format!("{}: cannot be read: {err}", file.display())]);
        ExitCode::from(INVALID)
    })
}

fn actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned()))
}

pub async fn publish(file: &Path, reason: &str) -> anyhow::Result<ExitCode> {
    let source = match read(file) {
        Ok(source) => source,
        Err(code) => return Ok(code),
    };
    let (_, engine, store) = match super::setup_with_store().await? {
        Ok(setup) => setup,
        Err(code) => return Ok(code),
    };
    let names: Vec<String> = switchyard::config_file::endpoints().iter().map(|endpoint| endpoint.name.clone()).collect();
    let checks = Checks { endpoints: &names, base: file.parent() };
    match store_document(&store, &engine.registry(), &source, &actor(), reason, checks).await {
        Ok(published) => {
            println!("published {}@{} (inactive), fingerprint {}", published.flow, published.version, published.fingerprint);
            println!("every serve loads it within a second; route customers to it with `switchyard rollout`");
            Ok(ExitCode::SUCCESS)
        }
        Err(PublishError::Invalid(problems)) => {
            report(&problems);
            Ok(ExitCode::from(INVALID))
        }
        Err(PublishError::Store(err)) => Err(err.into()),
    }
}

pub async fn test(file: &Path, transcripts: &[PathBuf]) -> ExitCode {
    let source = match read(file) {
        Ok(source) => source,
        Err(code) => return code,
    };
    let document = match parse(&source) {
        Ok(document) => document,
        Err(err) => {
            report(&[format!("{}: {err}", file.display())]);
            return ExitCode::from(INVALID);
        }
    };
    let registry = match super::registry().await {
        Ok(registry) => registry,
        Err(code) => return code,
    };
    // Unpublished: checked as the next version after the compiled and published ones.
    let version = next_version(&registry, &[], &document.flow);
    let endpoints: Vec<String> = switchyard::config_file::endpoints().iter().map(|endpoint| endpoint.name.clone()).collect();
    if let Err(problems) = extend(&registry, &document, version, Some(&endpoints)) {
        report(&problems);
        return ExitCode::from(INVALID);
    }
    let mut extra = Vec::new();
    for path in transcripts {
        match std::fs::read_to_string(path) {
            Ok(text) => extra.push((path.display().to_string(), text)),
            Err(err) => {
                report(&[format!("{}: cannot be read: {err}", path.display())]);
                return ExitCode::from(INVALID);
            }
        }
    }
    let failures = run_transcripts(&document, version, file.parent(), &extra);
    if failures.is_empty() {
        println!("{}@v{version} (unpublished): every transcript passes", document.flow);
        ExitCode::SUCCESS
    } else {
        report(&failures);
        ExitCode::from(INVALID)
    }
}

pub async fn export(spec: &str) -> anyhow::Result<ExitCode> {
    let registry = match super::registry().await {
        Ok(registry) => registry,
        Err(code) => return Ok(code),
    };
    let fv = match registry.lookup(spec) {
        Ok(fv) => fv,
        Err(problem) => {
            report(&[problem]);
            return Ok(ExitCode::from(INVALID));
        }
    };
    // A published version is its document, exactly as it was published.
    if let Ok(config) = switchyard::config::Config::from_env()
        && let Some(store) = super::existing_store(&config).await?
        && let Some(stored) = store.documents().await?.into_iter().find(|doc| doc.flow == fv.flow().as_str() && doc.version == fv.version())
    {
        print!("{}", stored.source);
        if !stored.source.ends_with('\n') {
            println!();
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (document, missing) = export_version(fv);
    match document.to_toml() {
        Ok(text) => print!("{text}"),
        Err(problem) => {
            report(&[format!("{spec}: cannot be written as TOML: {problem}")]);
            return Ok(ExitCode::from(INVALID));
        }
    }
    if missing.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{spec}: {} step(s) are Rust code and cannot be written as a document: {}", missing.len(), missing.join(", "));
        Ok(ExitCode::from(INVALID))
    }
}
