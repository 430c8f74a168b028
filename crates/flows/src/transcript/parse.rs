//! The transcript model and its parser (the format: see `main.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_engine::engine::Content;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::session::Outcome;
use switchyard_engine::time::parse_duration;

use super::{DEFAULT_CONTACT, DEFAULT_INSTANCE};


#[derive(Debug)]
pub struct Transcript {
    pub file: PathBuf,
    pub name: String,
    /// Line of the `===` header.
    pub line: usize,
    /// `(flow, "vN")` pairs.
    pub versions: Vec<(String, String)>,
    pub overrides: Vec<String>,
    pub contact: String,
    pub instance: String,
    /// `reprompts: none`: any re-prompt fails the transcript.
    pub no_reprompts: bool,
    pub actions: Vec<Action>,
}

#[derive(Debug)]
pub enum Action {
    Say { line: usize, content: Content, shown: String, expects: Vec<Expect> },
    Wait { line: usize, duration: Duration, expects: Vec<Expect> },
}

#[derive(Debug)]
pub enum Expect {
    Reply { line: usize, fragment: String },
    /// `<=` / `<+` lines: every reply of the turn, in order, exactly.
    Exact { line: usize, replies: Vec<String> },
    NoReplyContains { line: usize, fragment: String },
    Nothing { line: usize },
    Step { line: usize, step: Option<String> },
    Ended { line: usize, outcome: Outcome, at: Option<String> },
}

impl Transcript {
    /// Every customer message of it states its replies exactly (`<=`) or
    /// states silence (`< (nothing)`).
    pub fn is_exact(&self) -> bool {
        self.actions.iter().all(|action| match action {
            Action::Say { expects, .. } => expects.iter().any(|expect| matches!(expect, Expect::Exact { .. } | Expect::Nothing { .. })),
            Action::Wait { .. } => true,
        })
    }
}

impl Action {
    fn expects_mut(&mut self) -> &mut Vec<Expect> {
        match self {
            Action::Say { expects, .. } | Action::Wait { expects, .. } => expects,
        }
    }
}

/// `(flow, vN)` from `src/<flow>/v<N>/transcripts/...`, the default versions of a file there.
pub fn folder_version(path: &Path) -> Option<(String, String)> {
    let parent = path.parent()?;
    if parent.file_name()? != "transcripts" {
        return None;
    }
    let version_dir = parent.parent()?;
    let version = version_dir.file_name()?.to_str()?;
    let digits = version.strip_prefix('v')?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let flow = version_dir.parent()?.file_name()?.to_str()?;
    Some((flow.to_owned(), version.to_owned()))
}

pub fn parse_file(path: &Path, source: &str) -> Result<Vec<Transcript>, String> {
    parse_with_default(path, source, folder_version(path))
}

/// [`parse_file`] with the versions a transcript runs against when it names
/// none (a flow document's transcripts run against the document).
pub fn parse_with_default(path: &Path, source: &str, default_version: Option<(String, String)>) -> Result<Vec<Transcript>, String> {
    let mut transcripts: Vec<Transcript> = Vec::new();
    let err = |line: usize, message: String| format!("{}:{line}: {message}", path.display());

    for (idx, raw) in source.lines().enumerate() {
        let line = idx + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(name) = text.strip_prefix("===") {
            let name = name.trim();
            if name.is_empty() {
                return Err(err(line, "a transcript needs a name after '==='".to_owned()));
            }
            if transcripts.iter().any(|transcript| transcript.name == name) {
                return Err(err(line, format!("transcript name '{name}' is used twice in this file")));
            }
            transcripts.push(Transcript {
                file: path.to_owned(),
                name: name.to_owned(),
                line,
                versions: default_version.clone().into_iter().collect(),
                overrides: Vec::new(),
                contact: DEFAULT_CONTACT.to_owned(),
                instance: DEFAULT_INSTANCE.to_owned(),
                no_reprompts: false,
                actions: Vec::new(),
            });
            continue;
        }
        let Some(current) = transcripts.last_mut() else {
            return Err(err(line, "text before the first '=== name' line".to_owned()));
        };
        let header = |key: &str| text.strip_prefix(key).map(str::trim);
        let in_header = current.actions.is_empty();
        if let Some(list) = header("versions:") {
            if !in_header {
                return Err(err(line, "'versions:' belongs before the first '>' line".to_owned()));
            }
            current.versions.clear();
            for spec in list.split(',').map(str::trim).filter(|spec| !spec.is_empty()) {
                let Some((flow, version)) = spec.split_once('@') else {
                    return Err(err(line, format!("version '{spec}' must look like flow@vN")));
                };
                current.versions.push((flow.trim().to_owned(), version.trim().to_owned()));
            }
            if current.versions.is_empty() {
                return Err(err(line, "'versions:' lists no version".to_owned()));
            }
        } else if let Some(list) = header("overrides:") {
            if !in_header {
                return Err(err(line, "'overrides:' belongs before the first '>' line".to_owned()));
            }
            current
                .overrides
                .extend(list.split(',').map(str::trim).filter(|entry| !entry.is_empty()).map(str::to_owned));
        } else if let Some(contact) = header("contact:") {
            if !in_header {
                return Err(err(line, "'contact:' belongs before the first '>' line".to_owned()));
            }
            Contact::parse(contact).map_err(|problem| err(line, problem))?;
            current.contact = contact.to_owned();
        } else if let Some(value) = header("reprompts:") {
            if !in_header {
                return Err(err(line, "'reprompts:' belongs before the first '>' line".to_owned()));
            }
            if value != "none" {
                return Err(err(line, format!("'reprompts: {value}': the only setting is 'none'")));
            }
            current.no_reprompts = true;
        } else if let Some(instance) = header("instance:") {
            if !in_header {
                return Err(err(line, "'instance:' belongs before the first '>' line".to_owned()));
            }
            InstanceId::parse(instance).map_err(|problem| err(line, problem))?;
            current.instance = instance.to_owned();
        } else if let Some(message) = text.strip_prefix('>') {
            let (content, shown) = parse_message(message.trim()).map_err(|problem| err(line, problem))?;
            current.actions.push(Action::Say { line, content, shown, expects: Vec::new() });
        } else if let Some(duration) = text.strip_prefix("wait ") {
            let duration = parse_duration(duration.trim()).map_err(|problem| err(line, problem))?;
            current.actions.push(Action::Wait { line, duration, expects: Vec::new() });
        } else {
            // `<= text` starts a reply of an exact turn, `<+ text` continues
            // it on a new line; the text is kept as written after one space.
            let exact_line = raw.trim_start();
            if let Some(rest) = exact_line.strip_prefix("<=").or_else(|| exact_line.strip_prefix("<+")) {
                let reply_text = rest.strip_prefix(' ').unwrap_or(rest).to_owned();
                let starts = exact_line.starts_with("<=");
                let Some(action) = current.actions.last_mut() else {
                    return Err(err(line, "an expectation needs a '>' or 'wait' line before it".to_owned()));
                };
                if matches!(action, Action::Wait { .. }) {
                    return Err(err(line, "after 'wait' only '=' and '@' lines fit (the sweep sends no message)".to_owned()));
                }
                let expects = action.expects_mut();
                let exact = match expects.iter_mut().find_map(|expect| match expect {
                    Expect::Exact { replies, .. } => Some(replies),
                    _ => None,
                }) {
                    Some(replies) => replies,
                    None if starts => {
                        expects.push(Expect::Exact { line, replies: Vec::new() });
                        let Some(Expect::Exact { replies, .. }) = expects.last_mut() else { unreachable!("just pushed") };
                        replies
                    }
                    None => return Err(err(line, "'<+' continues a reply: it needs a '<=' line before it".to_owned())),
                };
                if starts {
                    exact.push(reply_text);
                } else {
                    let last = exact.last_mut().expect("an exact expectation starts with a '<=' reply");
                    last.push('\n');
                    last.push_str(&reply_text);
                }
                continue;
            }
            let expect = if let Some(fragment) = text.strip_prefix("!<") {
                let fragment = fragment.trim();
                if fragment.is_empty() {
                    return Err(err(line, "'!<' needs a fragment".to_owned()));
                }
                Expect::NoReplyContains { line, fragment: fragment.to_owned() }
            } else if let Some(fragment) = text.strip_prefix('<') {
                match fragment.trim() {
                    "" => return Err(err(line, "'<' needs a fragment, or '(nothing)' for silence".to_owned())),
                    "(nothing)" => Expect::Nothing { line },
                    fragment => Expect::Reply { line, fragment: fragment.to_owned() },
                }
            } else if let Some(step) = text.strip_prefix('@') {
                match step.trim() {
                    "" => return Err(err(line, "'@' needs a step id, or 'none'".to_owned())),
                    "none" => Expect::Step { line, step: None },
                    step => Expect::Step { line, step: Some(step.to_owned()) },
                }
            } else if let Some(ended) = text.strip_prefix('=') {
                let mut words = ended.split_whitespace();
                let outcome = Outcome::parse(words.next().unwrap_or("")).map_err(|problem| err(line, problem))?;
                let at = match (words.next(), words.next(), words.next()) {
                    (None, _, _) => None,
                    (Some("at"), Some(step), None) => Some(step.to_owned()),
                    _ => return Err(err(line, "an ending looks like '= outcome' or '= outcome at step'".to_owned())),
                };
                Expect::Ended { line, outcome, at }
            } else {
                return Err(err(line, format!("cannot read '{text}' (see the format in tests/transcripts.rs)")));
            };
            let Some(action) = current.actions.last_mut() else {
                return Err(err(line, "an expectation needs a '>' or 'wait' line before it".to_owned()));
            };
            if matches!(action, Action::Wait { .. }) && !matches!(expect, Expect::Ended { .. } | Expect::Step { .. }) {
                return Err(err(
                    line,
                    "after 'wait' only '=' and '@' lines fit (the sweep sends no message)".to_owned(),
                ));
            }
            action.expects_mut().push(expect);
        }
    }

    for transcript in &transcripts {
        let problem =
            |line: usize, message: &str| Err(err(line, format!("transcript '{}': {message}", transcript.name)));
        if transcript.versions.is_empty() {
            return problem(transcript.line, "says no 'versions:' (required outside a version folder)");
        }
        if !transcript.actions.iter().any(|action| matches!(action, Action::Say { .. })) {
            return problem(transcript.line, "has no customer message");
        }
        for action in &transcript.actions {
            if let Action::Say { line, expects, .. } = action {
                let has_reply = expects
                    .iter()
                    .any(|expect| matches!(expect, Expect::Reply { .. } | Expect::Nothing { .. } | Expect::Exact { .. }));
                if !has_reply {
                    return problem(
                        *line,
                        "a customer message needs at least one '<' line ('< (nothing)' for silence)",
                    );
                }
                let nothing = expects.iter().any(|expect| matches!(expect, Expect::Nothing { .. }));
                if nothing && expects.iter().any(|expect| matches!(expect, Expect::Reply { .. } | Expect::Exact { .. })) {
                    return problem(*line, "'< (nothing)' contradicts a '<' fragment for the same message");
                }
            }
        }
    }
    Ok(transcripts)
}

/// The customer message of a `>` line, and how to show it in failures.
pub fn parse_message(text: &str) -> Result<(Content, String), String> {
    if text.is_empty() || text == "{empty}" {
        return Ok((Content::Text(String::new()), "(empty text)".to_owned()));
    }
    if let Some(kind) = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        if kind.is_empty() || !kind.chars().all(|ch| ch.is_ascii_lowercase()) {
            return Err(format!("'[{kind}]' must name a kind of content in lowercase letters, like [audio]"));
        }
        return Ok((Content::Unsupported(kind.to_owned()), format!("[{kind}]")));
    }
    if let Some(spec) = text.strip_prefix("{repeat ").and_then(|rest| rest.strip_suffix('}')) {
        let (unit, count) = spec.trim().rsplit_once(' ').ok_or("'{repeat TEXT N}' needs a text and a count")?;
        let count: usize = count.parse().map_err(|_| format!("'{count}' is not a repeat count"))?;
        if unit.is_empty() {
            return Err("'{repeat TEXT N}' needs a text".to_owned());
        }
        let message = unit.repeat(count);
        let shown = format!("{{repeat {unit} {count}}} ({} characters)", message.chars().count());
        return Ok((Content::Text(message), shown));
    }
    Ok((Content::Text(text.to_owned()), text.to_owned()))
}

pub fn discover(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|problem| panic!("cannot read {}: {problem}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            discover(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "txt")
            && path.parent().and_then(Path::file_name).is_some_and(|name| name == "transcripts")
        {
            out.push(path);
        }
    }
}

