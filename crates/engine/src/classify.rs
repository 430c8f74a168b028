//! Classification and extraction by a language model, as data.
//!
//! The engine never calls a model: a turn is pure. A step that could use one
//! (an intent the keywords did not recognise, a CPF missing from free text)
//! asks through [`Ctx::classify`](crate::flow::Ctx::classify) or
//! [`Ctx::extract`](crate::flow::Ctx::extract). Without a decision for that
//! question the keyword result stands (the offline behaviour) and the turn
//! records a [`Request`]. The service layer ([`crate::service::run_turn`])
//! sends the requests to a [`Model`] with a deadline and runs the turn again
//! with the [`Decisions`]; what the model answers is checked by the step like
//! typed input, and anything else falls back to the keywords.
//!
//! Every decision is an [`crate::event::EventKind::Classified`] event saying
//! which classifier decided and, for the model, latency and tokens.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::ids::{FlowId, Version};

/// What a task asks the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Pick one of these classes (or none of them).
    Class(&'static [&'static str]),
    /// Find these fields in the text (each may be missing).
    Fields(&'static [&'static str]),
    /// Not a model question: a call to one of the team's own systems (the
    /// `http` step), answered by an [`Outside`] caller, never by a model.
    /// The request's `prompt` names the endpoint and its `text` is the call
    /// as the caller reads it.
    Outside,
}

/// The keyword classifier of a classification task: the class the words name, if any.
pub type Keywords = fn(&str) -> Option<&'static str>;

/// A model task a version declares: its prompt file (embedded, part of the
/// fingerprint) and what it asks. Classification tasks also carry their
/// keyword classifier, so `eval-classifier` measures exactly what the step runs.
#[derive(Clone, Copy)]
pub struct Task {
    /// Unique in the version: `route`, `intent`, `details` ...
    pub name: &'static str,
    /// The prompt's file name in the version folder (`prompts/route.txt`).
    pub file: &'static str,
    pub prompt: &'static str,
    pub ask: Wanted,
    pub keywords: Option<Keywords>,
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task").field("name", &self.name).field("file", &self.file).field("ask", &self.ask).finish()
    }
}

impl Task {
    /// The classes of a classification task (empty for an extraction).
    pub fn classes(&self) -> &'static [&'static str] {
        match self.ask {
            Wanted::Class(classes) => classes,
            Wanted::Fields(_) | Wanted::Outside => &[],
        }
    }
}

/// One question for the model, recorded by a turn.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub flow: FlowId,
    pub version: Version,
    pub task: &'static str,
    pub prompt: &'static str,
    pub ask: Wanted,
    /// The customer's text. Personal data: never log it.
    pub text: String,
}

/// Cost and speed of one model answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub latency_ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Answered from the cache: no call, no tokens spent.
    pub cached: bool,
}

/// What the model said to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Parsed values: `("class", "renewal")`, or one pair per field found.
    /// Not validated yet: the step does that.
    Values { values: Vec<(String, String)>, usage: Usage },
    /// No usable answer: `timeout`, `http_429`, `http_500`, `malformed`,
    /// `circuit_open`, `unreachable` ... The keywords decide.
    Failed { reason: String, latency_ms: u64 },
}

/// The model's answers for one turn, looked up by the steps.
#[derive(Clone, Debug, Default)]
pub struct Decisions {
    entries: Vec<(Request, Answer)>,
}

impl Decisions {
    pub fn push(&mut self, request: Request, answer: Answer) {
        self.entries.push((request, answer));
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub(crate) fn find(&self, flow: &FlowId, version: Version, task: &str, text: &str) -> Option<&Answer> {
        self.entries
            .iter()
            .find(|(request, _)| request.task == task && request.version == version && request.flow == *flow && request.text == text)
            .map(|(_, answer)| answer)
    }
}

/// A language model that answers requests. Implemented outside the engine
/// (the `switchyard-llm` crate); the engine only defines the shape.
pub trait Model: Send + Sync {
    /// Answers every request, in order, within `budget`: a request it cannot
    /// answer in time is `Answer::Failed`.
    fn decide<'a>(&'a self, requests: &'a [Request], budget: Duration) -> Pin<Box<dyn Future<Output = Vec<Answer>> + Send + 'a>>;
    /// The longest a turn waits for the model, all calls and retries included.
    fn budget(&self) -> Duration;
}

/// Answers the [`Wanted::Outside`] requests of a turn (the `http` step's
/// calls), implemented outside the engine. Each answer is
/// `Answer::Values` with `status` and `body`, or `Answer::Failed` with the
/// reason (`timeout`, `http_500`, `unreachable` ...).
pub trait Outside: Send + Sync {
    fn call<'a>(&'a self, requests: &'a [Request]) -> Pin<Box<dyn Future<Output = Vec<Answer>> + Send + 'a>>;
}

/// Who decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classifier {
    Keyword,
    /// The classifier trained from the version's examples ([`crate::trained`]).
    Trained,
    Model,
}

impl Classifier {
    pub fn as_str(self) -> &'static str {
        match self {
            Classifier::Keyword => "keyword",
            Classifier::Trained => "trained",
            Classifier::Model => "model",
        }
    }
}

/// One decision, as stored in the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    pub task: String,
    pub classifier: Classifier,
    /// The class chosen, or the fields extracted joined by `+`; `None` when
    /// nothing was recognised.
    pub answer: Option<String>,
    /// Why the model did not decide although it was asked (`timeout`,
    /// `invalid_answer` ...). `None` when it decided or was not asked.
    pub fallback: Option<String>,
    /// Model figures; `None` when the model was not consulted.
    pub usage: Option<Usage>,
}

impl Classification {
    /// The event log encoding (the `detail` column), one line of
    /// `key=value` pairs separated by `;`. Every store uses this and
    /// [`Classification::decode`], so the format lives in one place.
    pub fn encode(&self) -> String {
        let clean = |text: &str| text.replace([';', '=', '\n'], "_");
        let mut out = format!("task={};by={}", clean(&self.task), self.classifier.as_str());
        if let Some(answer) = &self.answer {
            out.push_str(&format!(";answer={}", clean(answer)));
        }
        if let Some(fallback) = &self.fallback {
            out.push_str(&format!(";fallback={}", clean(fallback)));
        }
        if let Some(usage) = &self.usage {
            out.push_str(&format!(
                ";ms={};in={};out={};cached={}",
                usage.latency_ms,
                usage.prompt_tokens,
                usage.completion_tokens,
                u8::from(usage.cached)
            ));
        }
        out
    }

    pub fn decode(text: &str) -> Result<Classification, String> {
        let mut classification =
            Classification { task: String::new(), classifier: Classifier::Keyword, answer: None, fallback: None, usage: None };
        let number = |key: &str, value: &str| value.parse::<u64>().map_err(|_| format!("classification field '{key}' is not a number: '{value}'"));
        for pair in text.split(';') {
            let (key, value) = pair.split_once('=').ok_or_else(|| format!("classification field '{pair}' has no '='"))?;
            match key {
                "task" => classification.task = value.to_owned(),
                "by" => {
                    classification.classifier = match value {
                        "keyword" => Classifier::Keyword,
                        "trained" => Classifier::Trained,
                        "model" => Classifier::Model,
                        other => return Err(format!("unknown classifier '{other}'")),
                    }
                }
                "answer" => classification.answer = Some(value.to_owned()),
                "fallback" => classification.fallback = Some(value.to_owned()),
                "ms" => classification.usage.get_or_insert_with(Usage::default).latency_ms = number(key, value)?,
                "in" => classification.usage.get_or_insert_with(Usage::default).prompt_tokens = number(key, value)?,
                "out" => classification.usage.get_or_insert_with(Usage::default).completion_tokens = number(key, value)?,
                "cached" => classification.usage.get_or_insert_with(Usage::default).cached = value == "1",
                other => return Err(format!("unknown classification field '{other}'")),
            }
        }
        if classification.task.is_empty() {
            return Err(format!("classification '{text}' names no task"));
        }
        Ok(classification)
    }
}

/// Greetings and filler that carry no intent (pt-BR, accents folded): a
/// message made only of these is never worth a model call.
const SMALL_TALK: &[&str] = &[
    "oi", "oii", "oie", "ola", "ole", "alo", "opa", "eai", "e", "ai", "bom", "boa", "dia", "tarde", "noite", "tudo", "bem",
    "bom", "blz", "beleza", "ok", "okay", "obrigado", "obrigada", "valeu", "vlw", "hello", "hi", "hey",
];

/// True when a text is worth a model call: it has a word with a letter that
/// is not small talk (so not blank, numbers, emoji, or a bare "oi, bom dia").
pub fn worth_asking(text: &str) -> bool {
    worth_asking_normalized(&crate::text::normalize(text))
}

/// [`worth_asking`] for a text already normalised.
pub fn worth_asking_normalized(normalized: &str) -> bool {
    normalized.split(' ').any(|word| word.chars().any(char::is_alphabetic) && !SMALL_TALK.contains(&word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifications_survive_encoding() {
        let cases = [
            Classification { task: "route".into(), classifier: Classifier::Keyword, answer: Some("renewal".into()), fallback: None, usage: None },
            Classification { task: "route".into(), classifier: Classifier::Trained, answer: Some("billing".into()), fallback: None, usage: None },
            Classification { task: "route".into(), classifier: Classifier::Keyword, answer: None, fallback: Some("timeout".into()), usage: Some(Usage { latency_ms: 5000, ..Usage::default() }) },
            Classification {
                task: "details".into(),
                classifier: Classifier::Model,
                answer: Some("document+email".into()),
                fallback: None,
                usage: Some(Usage { latency_ms: 120, prompt_tokens: 310, completion_tokens: 12, cached: true }),
            },
        ];
        for case in cases {
            assert_eq!(Classification::decode(&case.encode()), Ok(case));
        }
        assert!(Classification::decode("task=x;by=oracle").is_err());
        assert!(Classification::decode("by=model").is_err());
    }

    #[test]
    fn blank_numbers_and_emoji_are_not_worth_a_model_call() {
        assert!(!worth_asking(""));
        assert!(!worth_asking("  3 "));
        assert!(!worth_asking("👍"));
        assert!(!worth_asking("Oi, boa tarde!!"));
        assert!(worth_asking("qro renova"));
    }
}
