//! `switchyard flows`: list every version (compiled, and published to the
//! store as documents), show one, draw its graph, diff two, or lock released
//! (compiled) versions.

use std::process::ExitCode;

use switchyard_engine::flow::{Next, Target};
use switchyard_engine::registry::{FlowVersion, Registry};
use switchyard_engine::resolve::Overrides;

/// The override in the environment, if it parses. A bad one is a warning
/// here (listing still helps); `check`, `chat` and `serve` refuse it.
fn overrides(registry: &Registry) -> Overrides {
    let raw = switchyard::config::var("FLOW_VERSION_OVERRIDES").ok().flatten().unwrap_or_default();
    match Overrides::parse(&raw, registry) {
        Ok(overrides) => overrides,
        Err(problems) => {
            for problem in problems {
                eprintln!("warning: {problem} (ignored here; `switchyard check` fails on it)");
            }
            Overrides::none()
        }
    }
}

fn folder(version: &FlowVersion) -> Option<&'static str> {
    switchyard_flows::folders()
        .iter()
        .find(|(flow, number, _, _)| *flow == version.flow().as_str() && *number == version.version().number())
        .map(|(_, _, folder, _)| *folder)
}

pub async fn list(json: bool) -> anyhow::Result<ExitCode> {
    let registry = match super::registry().await {
        Ok(registry) => registry,
        Err(code) => return Ok(code),
    };
    let overrides = overrides(&registry);
    if json {
        let rows: Vec<serde_json::Value> = registry
            .all()
            .iter()
            .map(|version| {
                serde_json::json!({
                    "flow": version.flow().as_str(),
                    "version": version.version().to_string(),
                    "lifecycle": version.lifecycle().as_str(),
                    "steps": version.steps().len(),
                    "subroutes": version.subroutes(),
                    "calls": calls(version),
                    "fingerprint": version.fingerprint().as_str(),
                    "override": overrides.get(version.flow().as_str()) == Some(version.version()),
                    "description": version.description(),
                    "folder": folder(version),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(ExitCode::SUCCESS);
    }
    let header = ["FLOW", "VERSION", "LIFECYCLE", "STEPS", "SUBROUTES", "FINGERPRINT", "OVERRIDE"];
    let rows: Vec<[String; 7]> = registry
        .all()
        .iter()
        .map(|version| {
            let subroutes = version.subroutes();
            let calls = calls(version);
            [
                version.flow().to_string(),
                version.version().to_string(),
                version.lifecycle().as_str().to_owned(),
                version.steps().len().to_string(),
                match (subroutes.is_empty(), calls.is_empty()) {
                    (true, true) => "-".to_owned(),
                    (false, _) => format!("{} ({})", subroutes.len(), subroutes.join(", ")),
                    (true, false) => format!("calls {}", calls.join(", ")),
                },
                version.fingerprint().short().to_owned(),
                if overrides.get(version.flow().as_str()) == Some(version.version()) { "<- override".to_owned() } else { String::new() },
            ]
        })
        .collect();
    print_table(&header, &rows);
    if !overrides.is_empty() {
        println!("\nFLOW_VERSION_OVERRIDES={overrides} (new sessions of these flows get the overridden version)");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (idx, cell) in row.iter().enumerate() {
            widths[idx] = widths[idx].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (idx, cell) in cells.iter().enumerate() {
            if idx + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[idx] - cell.chars().count() + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

async fn lookup(spec: &str) -> Result<(std::sync::Arc<Registry>, usize), ExitCode> {
    let registry = super::registry().await?;
    match registry.lookup(spec) {
        Ok(version) => {
            let idx = registry.all().iter().position(|candidate| std::ptr::eq(candidate, version)).unwrap_or(0);
            Ok((registry, idx))
        }
        Err(problem) => {
            super::report(&[problem]);
            Err(ExitCode::from(super::INVALID))
        }
    }
}

fn target_name(target: &Target) -> String {
    match target {
        Next::Goto(step) => (*step).to_owned(),
        Next::Handover(flow) => format!("flow:{flow}"),
        Next::Call(callee) => format!("call:{callee}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

pub async fn show(spec: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (registry, idx) = match lookup(spec).await {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let version = &registry.all()[idx];
    if json {
        // The snapshot's document without the texts, files and timestamp:
        // one shape for a version's structure, wherever it is printed.
        let mut value = super::snapshot::json(version, switchyard_engine::time::Timestamp::now_utc());
        if let Some(object) = value.as_object_mut() {
            for key in ["texts", "files", "generated_at", "switchyard_version"] {
                object.remove(key);
            }
        }
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}  ({}, {} steps)", version.label(), version.lifecycle().as_str(), version.steps().len());
    if !version.description().is_empty() {
        println!("{}", version.description());
    }
    println!("fingerprint: {}", version.fingerprint());
    match folder(version) {
        Some(folder) => println!("folder:      {folder}"),
        None => println!("source:      published to the store as a document (`switchyard flows export {}` prints it)", version.label()),
    }
    println!("entry:       {}", version.entry().id);
    let mut groups: Vec<Option<&str>> = vec![None];
    groups.extend(version.subroutes().iter().map(|subroute| Some(*subroute)));
    for group in groups {
        let steps: Vec<_> = version.steps().iter().filter(|step| step.id.split_once('.').map(|(s, _)| s) == group).collect();
        if steps.is_empty() {
            continue;
        }
        match group {
            Some(subroute) => println!("\nsubroute {subroute} ({} steps)", steps.len()),
            None => println!("\ntop level ({} steps)", steps.len()),
        }
        for step in steps {
            let targets: Vec<String> = step.targets.iter().map(target_name).collect();
            let arrow = if targets.is_empty() { "(ends the session)".to_owned() } else { format!("-> {}", targets.join(", ")) };
            println!("  {:<34} {arrow}", step.id);
        }
    }
    if !version.interrupts().is_empty() {
        println!("\ninterrupts (from any step)");
        for (phrases, to) in version.interrupts() {
            let to = to.target().map(|target| target_name(&target)).unwrap_or_else(|| format!("{to:?}").to_lowercase());
            println!("  \"{}\" -> {to}", phrases.join("\", \""));
        }
    }
    if !version.step_map().is_empty() {
        println!("\nstep map (where evacuated customers of older versions continue)");
        for (from, old, new) in version.step_map() {
            println!("  {from} {old:<32} -> {new}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The Mermaid node of a called flow (`dc_purchase` or `dc_purchase@v2`).
fn call_node(callee: &str) -> String {
    format!("call_{}", callee.replace('@', "_"))
}

/// A Mermaid node id: Mermaid ids cannot hold dots.
fn node(step: &str) -> String {
    step.replace('.', "__")
}

pub async fn graph(spec: &str) -> anyhow::Result<ExitCode> {
    let (registry, idx) = match lookup(spec).await {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let version = &registry.all()[idx];
    let mut out = String::from("flowchart TD\n");
    out.push_str(&format!("    start((\"{}\")) --> {}\n", version.label(), node(version.entry().id)));
    for step in version.steps().iter().filter(|step| !step.id.contains('.')) {
        out.push_str(&format!("    {}[\"{}\"]\n", node(step.id), step.id));
    }
    for subroute in version.subroutes() {
        out.push_str(&format!("    subgraph {subroute}\n"));
        for step in version.steps().iter().filter(|step| step.id.split_once('.').map(|(s, _)| s) == Some(subroute)) {
            let short = step.id.split_once('.').map_or(step.id, |(_, name)| name);
            out.push_str(&format!("        {}[\"{short}\"]\n", node(step.id)));
        }
        out.push_str("    end\n");
    }
    let mut flows = Vec::new();
    let mut callees = Vec::new();
    for step in version.steps() {
        for target in &step.targets {
            match target {
                Next::Goto(to) => out.push_str(&format!("    {} --> {}\n", node(step.id), node(to))),
                Next::Handover(flow) => {
                    out.push_str(&format!("    {} -.-> flow_{flow}\n", node(step.id)));
                    if !flows.contains(flow) {
                        flows.push(*flow);
                    }
                }
                Next::Call(callee) => {
                    out.push_str(&format!("    {} == call ==> {}\n", node(step.id), call_node(callee)));
                    if !callees.contains(callee) {
                        callees.push(*callee);
                    }
                }
                _ => {}
            }
        }
    }
    for (_, to) in version.interrupts() {
        if let Some(Next::Goto(to)) = to.target() {
            out.push_str(&format!("    any([\"any step\"]) -. interrupt .-> {}\n", node(to)));
        }
    }
    for flow in flows {
        out.push_str(&format!("    flow_{flow}{{{{\"flow {flow}\"}}}}\n"));
    }
    for callee in callees {
        out.push_str(&format!("    {}[[\"call {callee}\"]]\n", call_node(callee)));
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// `flows diff FROM TO`: the structural and textual differences.
pub async fn diff(from: &str, to: &str, json: bool) -> anyhow::Result<ExitCode> {
    let registry = match super::registry().await {
        Ok(registry) => registry,
        Err(code) => return Ok(code),
    };
    let (old, new) = match (registry.lookup(from), registry.lookup(to)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(problem), _) | (_, Err(problem)) => {
            super::report(&[problem]);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let targets = |version: &FlowVersion, id: &str| -> Vec<String> {
        let mut names: Vec<String> = version.step(id).map(|step| step.targets.iter().map(target_name).collect()).unwrap_or_default();
        names.sort();
        names.dedup();
        names
    };
    let old_ids: Vec<&str> = old.steps().iter().map(|step| step.id).collect();
    let new_ids: Vec<&str> = new.steps().iter().map(|step| step.id).collect();
    let added: Vec<&str> = new_ids.iter().copied().filter(|id| !old_ids.contains(id)).collect();
    let removed: Vec<&str> = old_ids.iter().copied().filter(|id| !new_ids.contains(id)).collect();
    let changed: Vec<(String, Vec<String>, Vec<String>)> = old_ids
        .iter()
        .filter(|id| new_ids.contains(id))
        .map(|id| ((*id).to_owned(), targets(old, id), targets(new, id)))
        .filter(|(_, before, after)| before != after)
        .collect();
    let old_texts = old.texts().sorted();
    let new_texts = new.texts().sorted();
    let text_of = |texts: &[(&str, &str)], key: &str| texts.iter().find(|(k, _)| *k == key).map(|(_, text)| (*text).to_owned());
    let texts_added: Vec<&str> = new_texts.iter().map(|(k, _)| *k).filter(|k| text_of(&old_texts, k).is_none()).collect();
    let texts_removed: Vec<&str> = old_texts.iter().map(|(k, _)| *k).filter(|k| text_of(&new_texts, k).is_none()).collect();
    let texts_reworded: Vec<(&str, String, String)> = old_texts
        .iter()
        .filter_map(|(key, before)| text_of(&new_texts, key).filter(|after| after != before).map(|after| (*key, (*before).to_owned(), after)))
        .collect();
    if json {
        let value = serde_json::json!({
            "from": old.label(), "to": new.label(),
            "fingerprints": { "from": old.fingerprint().as_str(), "to": new.fingerprint().as_str() },
            "steps_added": added, "steps_removed": removed,
            "transitions_changed": changed.iter().map(|(id, before, after)| serde_json::json!({"step": id, "before": before, "after": after})).collect::<Vec<_>>(),
            "texts_added": texts_added, "texts_removed": texts_removed,
            "texts_reworded": texts_reworded.iter().map(|(key, before, after)| serde_json::json!({"key": key, "before": before, "after": after})).collect::<Vec<_>>(),
        });
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} -> {}", old.label(), new.label());
    println!("fingerprint {} -> {}", old.fingerprint().short(), new.fingerprint().short());
    println!("steps: {} -> {}", old.steps().len(), new.steps().len());
    for id in &removed {
        println!("  - step {id}");
    }
    for id in &added {
        println!("  + step {id} -> {}", targets(new, id).join(", "));
    }
    for (id, before, after) in &changed {
        println!("  ~ step {id}: -> {}  (was -> {})", after.join(", "), before.join(", "));
    }
    println!("texts: {} added, {} removed, {} reworded", texts_added.len(), texts_removed.len(), texts_reworded.len());
    for key in &texts_removed {
        println!("  - [{key}]");
    }
    for key in &texts_added {
        println!("  + [{key}]");
    }
    for (key, before, after) in &texts_reworded {
        println!("  ~ [{key}]");
        for line in before.lines() {
            println!("      - {line}");
        }
        for line in after.lines() {
            println!("      + {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `switchyard flows lock [FLOW@VERSION ...]`: adds the named versions (or
/// every compiled one not locked yet) to the lock file; a locked version is
/// never changed, even when its fingerprint moved (the lock test names that).
pub fn lock(specs: &[String], file: Option<std::path::PathBuf>) -> anyhow::Result<ExitCode> {
    use switchyard_flows::lock::{compiled, Lock};
    let path = file.unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/versions.lock"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => anyhow::bail!("cannot read {}: {err}", path.display()),
    };
    let mut lock = Lock::parse(&text).map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
    let all = compiled();
    let chosen: Vec<_> = if specs.is_empty() {
        all.clone()
    } else {
        let mut chosen = Vec::new();
        for spec in specs {
            match all.iter().find(|version| version.label() == spec.trim()) {
                Some(version) => chosen.push(*version),
                None => {
                    let known: Vec<String> = all.iter().map(|version| version.label()).collect();
                    eprintln!("error: '{spec}' is not a compiled version (known: {})", known.join(", "));
                    return Ok(ExitCode::from(2));
                }
            }
        }
        chosen
    };
    let added = lock.add(&chosen);
    for problem in lock.violations(&all) {
        eprintln!("warning: {problem}");
    }
    if added.is_empty() {
        println!("nothing to add: {} already locked", if specs.is_empty() { "every compiled version is" } else { "the named versions are" });
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::write(&path, lock.render()).map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
    println!("locked {} in {}", added.join(", "), path.display());
    Ok(ExitCode::SUCCESS)
}

/// The flows this version's steps call (`flow`, or `flow@vN` for a call
/// fixed at a version), in step order, each once: a version whose subroutes
/// are flows of their own (`digital_certificate@v4`) lists them here.
fn calls(version: &switchyard_engine::registry::FlowVersion) -> Vec<String> {
    let mut calls: Vec<String> = Vec::new();
    for step in version.steps() {
        for target in &step.targets {
            if let switchyard_engine::flow::Next::Call(spec) = target && !calls.iter().any(|known| known == spec) {
                calls.push((*spec).to_owned());
            }
        }
    }
    calls
}
