//! Flows as data: a flow version written as a TOML document, published at
//! runtime (`switchyard flows publish`, `POST /api/flows`) and run like a
//! compiled one. The schema is `schemas/flow-document.schema.json`.
//!
//! ```toml
//! flow = "billing"
//! description = "Second copy of a boleto, from the order API"
//! entry = "identify"
//! transcripts = ["billing.txt"]      # relative to the document; must pass
//!
//! [texts]
//! "identify.prompt" = "Me envie o CPF ou CNPJ do titular."
//!
//! [[steps]]
//! id = "identify"
//! kind = "ask"
//! prompt = "identify.prompt"
//! invalid = "identify.invalid"
//! save_as = "document"
//! validate = "validate.document@1"   # a function Rust code registers
//! then = "lookup"
//! ```
//!
//! A document holds no code: where a step needs logic it names a function
//! registered in `switchyard_flows::functions`, and an `http` step names an
//! endpoint of the configuration's allow-list, never a URL or a secret.
//! Transitions are a step id, `complete`, `handoff`, `cancel` or
//! `flow:NAME` (a handover). A `call` step runs another flow (`flow =
//! "dc_purchase"`, or `"dc_purchase@v2"` to fix its version) and goes on
//! at `then` when it returns.
//!
//! - [`steps`]: the document turned into a `VersionDecl` (the registry then
//!   checks it exactly like code).
//! - [`http`]: the `http` step and the caller that makes its requests.
//! - [`publish`]: validation against the running registry, the next version
//!   number, the store, and the registry a `serve` extends with what was
//!   published.
//! - [`export`]: a compiled version written as a document, where it can be.

pub mod export;
pub use export::export;
pub mod http;
pub mod publish;
pub mod steps;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest document accepted, in bytes.
pub const MAX_BYTES: usize = 1024 * 1024;
/// The most steps a document may declare.
pub const MAX_STEPS: usize = 1000;

/// A flow version as a document. Field order is the canonical order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub flow: String,
    #[serde(default)]
    pub description: String,
    pub entry: String,
    #[serde(default)]
    pub texts: BTreeMap<String, String>,
    pub steps: Vec<Step>,
    /// Model tasks (classification with optional examples), for `route` steps.
    #[serde(default)]
    pub tasks: Vec<TaskDoc>,
    /// Transcript files the document must pass, relative to it.
    #[serde(default)]
    pub transcripts: Vec<String>,
    /// Transcripts written inline (the transcript format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

/// A classification task: the model's prompt, its classes, the words that
/// decide without it, and labelled examples that train the offline classifier.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDoc {
    pub name: String,
    pub prompt: String,
    pub classes: Vec<String>,
    /// Per class, phrases that name it (accents and case ignored).
    #[serde(default)]
    pub words: BTreeMap<String, Vec<String>>,
    /// `[class, message]` pairs; with them the task is weighed (see `engine::trained`).
    #[serde(default)]
    pub examples: Vec<(String, String)>,
}

/// One menu option.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionDoc {
    pub words: Vec<String>,
    pub to: String,
    /// Session values stored when chosen.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
}

/// One form slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotDoc {
    pub name: String,
    /// Text key of the question (not needed with `default`).
    #[serde(default)]
    pub question: Option<String>,
    /// Registered extractors, tried in order.
    pub extract: Vec<String>,
    #[serde(default)]
    pub clears: Vec<String>,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub reprompt: Option<String>,
}

/// GET or POST.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A step, by kind. New kinds are new variants here, a match arm in
/// [`steps::build`] and a `oneOf` entry in the schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// A numbered menu.
    Menu {
        id: String,
        prompt: String,
        invalid: String,
        options: Vec<OptionDoc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exhausted: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_attempts: Option<u32>,
    },
    /// Asks for one value, checked by a registered validator.
    Ask {
        id: String,
        prompt: String,
        invalid: String,
        save_as: String,
        validate: String,
        then: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exhausted: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_attempts: Option<u32>,
    },
    /// Sends a text and goes on.
    Say {
        id: String,
        text: String,
        #[serde(default = "complete")]
        then: String,
    },
    /// Slots filled from whatever the customer says.
    Form {
        id: String,
        slots: Vec<SlotDoc>,
        then: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exhausted: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_attempts: Option<u32>,
    },
    /// Sends a text and hands the customer to a person.
    Handoff { id: String, text: String },
    /// Sends a text (if any) and completes the session.
    End {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// Runs a registered action and goes where its outcome says.
    Action { id: String, function: String, on: BTreeMap<String, String> },
    /// Classifies the message that led here with a task and goes where its class says.
    Route {
        id: String,
        task: String,
        routes: BTreeMap<String, String>,
        otherwise: String,
    },
    /// Runs another flow and goes on when it returns (`switchyard_engine::call`):
    /// `flow = "dc_purchase"` resolves the callee's version by its own policy
    /// at the moment of the call; `flow = "dc_purchase@v2"` fixes it. The
    /// callee starts with this session's data and its values come back.
    Call {
        id: String,
        flow: String,
        /// Where this flow goes when the callee returns.
        #[serde(default = "complete")]
        then: String,
    },
    /// Calls an endpoint of the configuration with chosen slots as JSON.
    Http {
        id: String,
        endpoint: String,
        method: Method,
        /// Appended to the endpoint's base URL.
        #[serde(default)]
        path: String,
        /// Slots sent (a JSON object; query parameters for GET).
        #[serde(default)]
        send: Vec<String>,
        /// Slot = JSON pointer into the response.
        #[serde(default)]
        map: BTreeMap<String, String>,
        then: String,
        failure: String,
    },
}

fn complete() -> String {
    "complete".to_owned()
}

impl Step {
    pub fn id(&self) -> &str {
        match self {
            Step::Menu { id, .. }
            | Step::Ask { id, .. }
            | Step::Say { id, .. }
            | Step::Form { id, .. }
            | Step::Handoff { id, .. }
            | Step::End { id, .. }
            | Step::Action { id, .. }
            | Step::Route { id, .. }
            | Step::Call { id, .. }
            | Step::Http { id, .. } => id,
        }
    }
}

/// A document refused before validation: too big, not TOML, not the schema.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    #[error("the document is {size} bytes; the limit is {MAX_BYTES} bytes")]
    TooBig { size: usize },
    #[error("the document declares {count} steps; the limit is {MAX_STEPS}")]
    TooManySteps { count: usize },
    #[error("the document is not valid: line {line}: {message}")]
    Malformed { line: usize, message: String },
    #[error("the document is not valid: {0}")]
    Invalid(String),
}

/// Parses a document: size first (before reading it), then TOML against the
/// schema's shape, then the step count.
pub fn parse(source: &str) -> Result<Document, DocumentError> {
    if source.len() > MAX_BYTES {
        return Err(DocumentError::TooBig { size: source.len() });
    }
    let document: Document = toml::from_str(source).map_err(|err: toml::de::Error| {
        let line = err.span().map_or(1, |span| source[..span.start.min(source.len())].matches('\n').count() + 1);
        DocumentError::Malformed { line, message: err.message().replace('\n', " ") }
    })?;
    if document.steps.len() > MAX_STEPS {
        return Err(DocumentError::TooManySteps { count: document.steps.len() });
    }
    if document.steps.is_empty() {
        return Err(DocumentError::Invalid("it declares no steps".to_owned()));
    }
    Ok(document)
}

impl Document {
    /// The canonical form: the parsed document as compact JSON (fields in
    /// declaration order, tables sorted), so layout, comments and key order
    /// of the TOML change nothing.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Hex SHA-256 of the canonical form: the version's fingerprint.
    pub fn fingerprint(&self) -> String {
        Sha256::digest(self.canonical().as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// The document as TOML (for `flows export`).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|err| err.to_string())
    }
}
