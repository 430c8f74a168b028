//! `switchyard flows snapshot FLOW@VERSION [--format md|json]`: one document
//! that answers an auditor's "which exact version ran, and what did it say?".
//!
//! The fingerprint identifies the version; the rest (steps, transitions,
//! interrupts, every text and every embedded file) is what that fingerprint
//! covered, so the document can be archived next to a conversation log and
//! read without the source tree. Markdown is for people, JSON for tools.

use std::process::ExitCode;

use serde_json::{Map, Value, json};
use switchyard_engine::flow::{Next, Target};
use switchyard_engine::registry::FlowVersion;
use switchyard_engine::time::Timestamp;

/// The output formats `--format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Json,
}

impl Format {
    /// Parses `md` or `json`; the error is the one line the user sees.
    pub fn parse(raw: &str) -> Result<Format, String> {
        match raw {
            "md" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            other => Err(format!("--format '{other}' must be md or json")),
        }
    }
}

pub async fn run(spec: &str, format: &str) -> anyhow::Result<ExitCode> {
    // The format is checked first: it needs no registry, and a typo in it
    // should not be hidden behind (or mistaken for) a problem with the flows.
    let format = match Format::parse(format) {
        Ok(format) => format,
        Err(problem) => {
            super::report(&[problem]);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let registry = match super::registry().await {
        Ok(registry) => registry,
        Err(code) => return Ok(code),
    };
    let version = match registry.lookup(spec) {
        Ok(version) => version,
        Err(problem) => {
            super::report(&[problem]);
            return Ok(ExitCode::from(super::INVALID));
        }
    };
    let generated_at = Timestamp::now_utc();
    match format {
        Format::Markdown => print!("{}", markdown(version, generated_at)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&json(version, generated_at))?),
    }
    Ok(ExitCode::SUCCESS)
}

/// The version of this binary, so a snapshot also records the tool that read
/// the registry.
const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The source folder the build step recorded for this version, if any.
fn folder(version: &FlowVersion) -> Option<&'static str> {
    switchyard_flows::folders()
        .iter()
        .find(|(flow, number, _, _)| *flow == version.flow().as_str() && *number == version.version().number())
        .map(|(_, _, folder, _)| *folder)
}

/// A transition as `flows show` spells it: a step id, or `flow:NAME` for a
/// handover, so the two commands can be compared line by line.
fn target_name(target: &Target) -> String {
    match target {
        Next::Goto(step) => (*step).to_owned(),
        Next::Handover(flow) => format!("flow:{flow}"),
        Next::Call(callee) => format!("call:{callee}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Where an interrupt leads. Matches every variant on purpose (rather than
/// falling back to `Debug`), so a new kind of destination fails to compile
/// here instead of silently changing what archived snapshots say.
fn to_name(to: Next) -> String {
    match to {
        Next::Goto(step) => step.to_owned(),
        Next::Handover(flow) => format!("flow:{flow}"),
        Next::Call(callee) => format!("call:{callee}"),
        Next::Complete => "complete".to_owned(),
        Next::Handoff => "handoff".to_owned(),
        Next::Cancel => "cancel".to_owned(),
        Next::Wait => "wait".to_owned(),
        Next::Retry => "retry".to_owned(),
    }
}

fn subroute(step_id: &str) -> Option<&str> {
    step_id.split_once('.').map(|(subroute, _)| subroute)
}

/// The snapshot as one JSON object. Texts and files are objects keyed by
/// name; serde_json's map is sorted, so two snapshots diff cleanly.
pub fn json(version: &FlowVersion, generated_at: Timestamp) -> Value {
    let steps: Vec<Value> = version
        .steps()
        .iter()
        .map(|step| {
            json!({
                "id": step.id,
                "subroute": subroute(step.id),
                "transitions": step.targets.iter().map(target_name).collect::<Vec<_>>(),
            })
        })
        .collect();
    let interrupts: Vec<Value> =
        version.interrupts().iter().map(|(phrases, to)| json!({ "phrases": phrases, "to": to_name(*to) })).collect();
    let texts: Map<String, Value> = version.texts().sorted().into_iter().map(|(key, text)| (key.to_owned(), Value::from(text))).collect();
    let files: Map<String, Value> = version.files().iter().map(|(name, contents)| ((*name).to_owned(), Value::from(*contents))).collect();
    json!({
        "flow": version.flow().as_str(),
        "version": version.version().to_string(),
        "lifecycle": version.lifecycle().as_str(),
        "description": version.description(),
        "fingerprint": version.fingerprint().as_str(),
        "folder": folder(version),
        "entry": version.entry().id,
        "subroutes": version.subroutes(),
        "steps": steps,
        "interrupts": interrupts,
        "step_map": version
            .step_map()
            .iter()
            .map(|(from, old, new)| json!({ "from_version": from.to_string(), "step": old, "to": new }))
            .collect::<Vec<_>>(),
        "texts": texts,
        "files": files,
        "generated_at": generated_at.to_string(),
        "switchyard_version": TOOL_VERSION,
    })
}

/// The snapshot as a Markdown document: metadata, steps, interrupts, then
/// every text and file verbatim in fenced blocks.
pub fn markdown(version: &FlowVersion, generated_at: Timestamp) -> String {
    let mut out = format!("# Snapshot: {}\n\n", version.label());

    let texts = version.texts().sorted();
    let subroutes = version.subroutes();
    let metadata = [
        ("flow", version.flow().as_str().to_owned()),
        ("version", version.version().to_string()),
        ("lifecycle", version.lifecycle().as_str().to_owned()),
        ("description", cell(version.description())),
        ("fingerprint (SHA-256)", format!("`{}`", version.fingerprint())),
        ("folder", folder(version).map_or_else(|| "-".to_owned(), |folder| format!("`{folder}`"))),
        ("entry step", format!("`{}`", version.entry().id)),
        ("subroutes", if subroutes.is_empty() { "-".to_owned() } else { subroutes.join(", ") }),
        ("steps", version.steps().len().to_string()),
        ("texts", texts.len().to_string()),
        ("files", version.files().len().to_string()),
        ("generated at", generated_at.to_string()),
        ("switchyard version", TOOL_VERSION.to_owned()),
    ];
    out.push_str("| field | value |\n|---|---|\n");
    for (field, value) in metadata {
        out.push_str(&format!("| {field} | {value} |\n"));
    }

    out.push_str("\n## Steps\n\n| step | subroute | transitions |\n|---|---|---|\n");
    for step in version.steps() {
        let transitions: Vec<String> = step.targets.iter().map(|target| format!("`{}`", target_name(target))).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            step.id,
            subroute(step.id).unwrap_or("-"),
            if transitions.is_empty() { "(ends the session)".to_owned() } else { transitions.join(", ") }
        ));
    }

    out.push_str("\n## Interrupts\n\n");
    if version.interrupts().is_empty() {
        out.push_str("None.\n");
    } else {
        out.push_str("Checked before the current step's handler, from any step.\n\n| phrases (normalised) | to |\n|---|---|\n");
        for (phrases, to) in version.interrupts() {
            let phrases: Vec<String> = phrases.iter().map(|phrase| format!("\"{}\"", cell(phrase))).collect();
            out.push_str(&format!("| {} | `{}` |\n", phrases.join(", "), to_name(*to)));
        }
    }

    out.push_str("\n## Step map\n\n");
    if version.step_map().is_empty() {
        out.push_str("None: customers evacuated to this version restart at the entry step.\n");
    } else {
        out.push_str("Where customers evacuated from an older version continue.\n\n| from | step | continues at |\n|---|---|---|\n");
        for (from, old, new) in version.step_map() {
            out.push_str(&format!("| {from} | `{old}` | `{new}` |\n"));
        }
    }

    out.push_str("\n## Texts\n");
    if texts.is_empty() {
        out.push_str("\nNone.\n");
    }
    for (key, text) in texts {
        out.push_str(&format!("\n### {key}\n\n{}", fenced("text", text)));
    }

    out.push_str("\n## Files\n");
    if version.files().is_empty() {
        out.push_str("\nNone.\n");
    }
    for (name, contents) in version.files() {
        let info = name.rsplit_once('.').map_or("text", |(_, extension)| extension);
        out.push_str(&format!("\n### {name}\n\n{}", fenced(info, contents)));
    }
    out
}

/// `body` in a fenced code block, so WhatsApp formatting (`*bold*`,
/// `_italic_`, ```` ``` ````monospace) is shown as written instead of being
/// rendered as Markdown. The fence is longer than any backtick run in the
/// body, so a body holding ``` cannot close the block early.
fn fenced(info: &str, body: &str) -> String {
    let longest = body.split(|ch| ch != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let newline = if body.ends_with('\n') { "" } else { "\n" };
    format!("{fence}{info}\n{body}{newline}{fence}\n")
}

/// Text made safe for one Markdown table cell: a `|` would start a new
/// column and a line break would end the row.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace("\r\n", " ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use switchyard_engine::registry::Registry;

    use super::*;

    const SPEC: &str = "digital_certificate@v1";

    fn registry() -> Registry {
        switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("the reference flows are valid")
    }

    /// A fixed clock, so the documents are deterministic.
    fn at() -> Timestamp {
        Timestamp::from_millis(1_700_000_000_123)
    }

    /// The fingerprint the build step recorded, independently of the registry.
    fn recorded_fingerprint() -> &'static str {
        switchyard_flows::folders()
            .iter()
            .find(|(flow, number, _, _)| *flow == "digital_certificate" && *number == 1)
            .map(|(_, _, _, fingerprint)| *fingerprint)
            .expect("digital_certificate@v1 is compiled")
    }

    #[test]
    fn markdown_holds_the_full_fingerprint_every_step_and_every_text() {
        let registry = registry();
        let version = registry.lookup(SPEC).unwrap();
        let doc = markdown(version, at());
        assert!(doc.starts_with("# Snapshot: digital_certificate@v1\n"), "{doc}");
        let fingerprint = recorded_fingerprint();
        assert_eq!(fingerprint.len(), 64, "a full SHA-256 in hex");
        assert!(doc.contains(fingerprint), "{doc}");
        assert_eq!(version.steps().len(), 16);
        for step in version.steps() {
            assert!(doc.contains(&format!("| `{}` |", step.id)), "step {} missing", step.id);
        }
        let texts = version.texts().sorted();
        assert!(!texts.is_empty());
        for (key, text) in texts {
            assert!(doc.contains(&format!("\n### {key}\n\n```text\n{text}\n```\n")), "text {key} missing or altered");
        }
        assert!(doc.contains("src/digital_certificate/v1"), "folder missing");
        assert!(doc.contains("2023-11-14T22:13:20.123Z"), "generated-at missing");
        assert!(doc.contains(TOOL_VERSION));
        for section in ["\n## Steps\n", "\n## Interrupts\n", "\n## Texts\n", "\n## Files\n"] {
            assert!(doc.contains(section), "section {section:?} missing");
        }
    }

    #[test]
    fn json_holds_every_step_text_and_the_recorded_fingerprint() {
        let registry = registry();
        let version = registry.lookup(SPEC).unwrap();
        let value = json(version, at());
        // Round-trip through text: what a tool reading stdout would see.
        let value: Value = serde_json::from_str(&serde_json::to_string_pretty(&value).unwrap()).unwrap();
        assert_eq!(value["flow"], "digital_certificate");
        assert_eq!(value["version"], "v1");
        assert_eq!(value["lifecycle"], version.lifecycle().as_str());
        assert_eq!(value["fingerprint"], recorded_fingerprint());
        assert_eq!(value["folder"], "src/digital_certificate/v1");
        assert_eq!(value["entry"], version.entry().id);
        assert_eq!(value["generated_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(value["switchyard_version"], TOOL_VERSION);
        let steps = value["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 16);
        for (step, row) in version.steps().iter().zip(steps) {
            assert_eq!(row["id"], step.id);
            let transitions = row["transitions"].as_array().unwrap();
            assert_eq!(transitions.len(), step.targets.len(), "{}", step.id);
        }
        let texts = value["texts"].as_object().unwrap();
        assert_eq!(texts.len(), version.texts().sorted().len());
        for (key, text) in version.texts().sorted() {
            assert_eq!(texts[key], text, "text {key}");
        }
        let interrupts = value["interrupts"].as_array().unwrap();
        assert_eq!(interrupts.len(), version.interrupts().len());
        assert_eq!(value["files"].as_object().unwrap().len(), version.files().len());
    }

    #[test]
    fn every_compiled_version_renders_in_both_formats() {
        let registry = registry();
        for version in registry.all() {
            let doc = markdown(version, at());
            assert!(doc.contains(version.fingerprint().as_str()), "{}", version.label());
            let value = json(version, at());
            assert_eq!(value["steps"].as_array().unwrap().len(), version.steps().len(), "{}", version.label());
        }
    }

    #[test]
    fn format_accepts_md_and_json_only() {
        assert_eq!(Format::parse("md"), Ok(Format::Markdown));
        assert_eq!(Format::parse("json"), Ok(Format::Json));
        for bad in ["pdf", "MD", "markdown", ""] {
            let err = Format::parse(bad).unwrap_err();
            assert_eq!(err, format!("--format '{bad}' must be md or json"));
        }
    }

    #[test]
    fn a_fence_outlasts_the_backticks_in_its_body() {
        assert_eq!(fenced("text", "*Olá*"), "```text\n*Olá*\n```\n");
        assert_eq!(fenced("text", "use ```mono``` here"), "````text\nuse ```mono``` here\n````\n");
        assert_eq!(fenced("md", "ends with newline\n"), "```md\nends with newline\n```\n");
    }

    #[test]
    fn a_cell_cannot_break_its_table_row() {
        assert_eq!(cell("a | b\nc"), "a \\| b c");
    }
}
