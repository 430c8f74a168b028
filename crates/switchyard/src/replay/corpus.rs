//! The replay corpus: one recorded conversation per JSON line, written by
//! `sessions export --masked` and read by `replay --corpus`.
//!
//! ```json
//! {"session":"…","flow":"digital_certificate","version":"v1","instance":"loja","started_at":1764730000000,
//!  "outcome":"completed","messages":[{"offset_ms":0,"text":"oi"},{"offset_ms":20000,"unsupported":"audio"}]}
//! ```
//!
//! Masking replaces personal data with stand-ins *of the same kind*, so the
//! flows' validators decide as they did on the original: a valid CPF/CNPJ
//! becomes another valid one (check digits recomputed), an invalid one stays
//! invalid, an e-mail stays an e-mail, a phone number keeps its length and
//! separators. The same value gets the same stand-in throughout one export,
//! so a customer repeating a number still repeats it.

use std::collections::HashMap;

use serde_json::{json, Value};
use switchyard_engine::engine::Content;
use switchyard_engine::ids::Version;
use switchyard_engine::time::Timestamp;
use switchyard_store::recorded::RecordedSession;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Milliseconds after the conversation's `started_at`.
    pub offset_ms: i64,
    pub content: Content,
}

impl Message {
    /// The text masked for a report (never the customer's data).
    pub fn masked(&self) -> String {
        match &self.content {
            Content::Text(text) => switchyard_engine::mask::mask_text(text),
            Content::Audio { transcript } => format!("(audio) {}", switchyard_engine::mask::mask_text(transcript.as_deref().unwrap_or(""))),
            Content::Attachment(file) => format!("({})", file.kind),
            Content::Unsupported(kind) => format!("({kind})"),
        }
    }
}

/// One recorded session, as replay needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    pub session: String,
    pub flow: String,
    /// The version that served it.
    pub version: Version,
    pub instance: String,
    pub started_at: Timestamp,
    /// The recorded outcome; `None` while live.
    pub outcome: Option<String>,
    pub messages: Vec<Message>,
}

impl Conversation {
    /// The session as recorded, or `None` when a text of it was erased or
    /// purged (such a session is never replayed or exported).
    pub fn from_recorded(flow: &str, recorded: &RecordedSession) -> Option<Conversation> {
        if !recorded.is_complete() {
            return None;
        }
        let started_at = recorded.messages.first()?.at;
        let messages = recorded
            .messages
            .iter()
            .map(|message| {
                let body = message.body.clone().unwrap_or_default();
                // An attachment replays as what a step that takes none sees.
                let content = match message.kind.as_str() {
                    "unsupported" => Content::Unsupported(body),
                    "attachment" => Content::Unsupported("attachment".to_owned()),
                    "audio" => Content::Audio { transcript: message.body.clone() },
                    _ => Content::Text(body),
                };
                Message { offset_ms: message.at.millis_since(started_at), content }
            })
            .collect();
        Some(Conversation {
            session: recorded.id.clone(),
            flow: flow.to_owned(),
            version: recorded.version,
            instance: recorded.instance.clone(),
            started_at,
            outcome: recorded.outcome.clone(),
            messages,
        })
    }

    pub fn to_json(&self) -> Value {
        let messages: Vec<Value> = self
            .messages
            .iter()
            .map(|message| match &message.content {
                Content::Text(text) => json!({"offset_ms": message.offset_ms, "text": text}),
                Content::Audio { transcript } => json!({"offset_ms": message.offset_ms, "audio": transcript}),
                Content::Attachment(file) => json!({"offset_ms": message.offset_ms, "unsupported": file.kind}),
                Content::Unsupported(kind) => json!({"offset_ms": message.offset_ms, "unsupported": kind}),
            })
            .collect();
        json!({
            "session": self.session,
            "flow": self.flow,
            "version": self.version.to_string(),
            "instance": self.instance,
            "started_at": self.started_at.as_millis(),
            "outcome": self.outcome,
            "messages": messages,
        })
    }

    /// One corpus line. The error says what is wrong with it.
    pub fn from_json(line: &str) -> Result<Conversation, String> {
        let value: Value = serde_json::from_str(line).map_err(|err| format!("not JSON: {err}"))?;
        let text = |key: &str| value[key].as_str().map(str::to_owned).ok_or_else(|| format!("'{key}' is missing or not a string"));
        let version = Version::parse(&text("version")?).map_err(|problem| format!("'version': {problem}"))?;
        let started_at = value["started_at"].as_i64().ok_or("'started_at' is missing or not an integer (Unix milliseconds)")?;
        let outcome = match &value["outcome"] {
            Value::Null => None,
            Value::String(outcome) => Some(outcome.clone()),
            _ => return Err("'outcome' must be a string or null".to_owned()),
        };
        let raw = value["messages"].as_array().ok_or("'messages' is missing or not an array")?;
        let mut messages = Vec::with_capacity(raw.len());
        for (index, message) in raw.iter().enumerate() {
            let offset_ms = message["offset_ms"].as_i64().ok_or_else(|| format!("message {index}: 'offset_ms' is missing or not an integer"))?;
            let content = match (message["text"].as_str(), message["unsupported"].as_str(), message.get("audio")) {
                (Some(text), None, None) => Content::Text(text.to_owned()),
                (None, Some(kind), None) => Content::Unsupported(kind.to_owned()),
                (None, None, Some(Value::String(text))) => Content::Audio { transcript: Some(text.clone()) },
                (None, None, Some(Value::Null)) => Content::Audio { transcript: None },
                _ => return Err(format!("message {index}: needs exactly one of 'text', 'unsupported' or 'audio' (a transcript or null)")),
            };
            messages.push(Message { offset_ms, content });
        }
        if messages.is_empty() {
            return Err("'messages' is empty".to_owned());
        }
        Ok(Conversation {
            session: text("session")?,
            flow: text("flow")?,
            version,
            instance: text("instance")?,
            started_at: Timestamp::from_millis(started_at),
            outcome,
            messages,
        })
    }
}

/// Reads a corpus; the error names the line and what is wrong with it.
pub fn read(source: &str, name: &str) -> Result<Vec<Conversation>, String> {
    let mut conversations = Vec::new();
    for (index, line) in source.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        conversations.push(Conversation::from_json(line).map_err(|problem| format!("{name}:{}: {problem}", index + 1))?);
    }
    Ok(conversations)
}

// ---- stand-ins ---------------------------------------------------------------

/// Replaces personal data with stand-ins of the same kind; one per export,
/// so a repeated value gets the same stand-in.
#[derive(Debug, Default)]
pub struct Masker {
    seen: HashMap<String, String>,
    next: u64,
}

impl Masker {
    pub fn new() -> Masker {
        Masker::default()
    }

    /// The conversation with every text masked (its session id too: the
    /// export does not link back to the store).
    pub fn conversation(&mut self, conversation: &Conversation, index: usize) -> Conversation {
        let messages = conversation
            .messages
            .iter()
            .map(|message| Message {
                offset_ms: message.offset_ms,
                content: match &message.content {
                    Content::Text(text) => Content::Text(self.text(text)),
                    other => other.clone(),
                },
            })
            .collect();
        Conversation { session: format!("corpus-{}", index + 1), messages, ..conversation.clone() }
    }

    /// `text` with its e-mail addresses and numbers of 8 digits or more
    /// (separators `.`, `-`, `/`, `(`, `)`, spaces between digits) replaced.
    pub fn text(&mut self, text: &str) -> String {
        let words: Vec<String> = text.split(' ').map(|word| self.email(word)).collect();
        let joined = words.join(" ");
        self.numbers(&joined)
    }

    fn email(&mut self, word: &str) -> String {
        let Some(at) = word.find('@') else { return word.to_owned() };
        let is_local = |ch: char| ch.is_ascii_alphanumeric() || "._%+-".contains(ch);
        let is_domain = |ch: char| ch.is_ascii_alphanumeric() || ".-".contains(ch);
        let start = word[..at].rfind(|ch: char| !is_local(ch)).map_or(0, |idx| idx + 1);
        let end = word[at + 1..].find(|ch: char| !is_domain(ch)).map_or(word.len(), |idx| at + 1 + idx);
        let domain = word[at + 1..end].trim_end_matches('.');
        let end = at + 1 + domain.len();
        if start == at || !domain.contains('.') {
            return word.to_owned();
        }
        // Addresses are compared case-insensitively: `Ana@X.com` is `ana@x.com`.
        let original = word[start..end].to_lowercase();
        let standin = match self.seen.get(&original) {
            Some(known) => known.clone(),
            None => {
                self.next += 1;
                let made = format!("cliente{}@exemplo.com.br", self.next);
                self.seen.insert(original, made.clone());
                made
            }
        };
        format!("{}{}{}", &word[..start], standin, &word[end..])
    }

    fn numbers(&mut self, text: &str) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut idx = 0;
        while idx < chars.len() {
            if !chars[idx].is_ascii_digit() || (idx > 0 && chars[idx - 1].is_alphanumeric()) {
                out.push(chars[idx]);
                idx += 1;
                continue;
            }
            // A run of digits and separators that ends on a digit.
            let mut end = idx;
            let mut last_digit = idx;
            while end < chars.len() && (chars[end].is_ascii_digit() || ".-/() ".contains(chars[end])) {
                if chars[end].is_ascii_digit() {
                    last_digit = end;
                }
                end += 1;
            }
            let run: String = chars[idx..=last_digit].iter().collect();
            let digits: String = run.chars().filter(char::is_ascii_digit).collect();
            let followed_by_letter = chars.get(last_digit + 1).is_some_and(|ch| ch.is_alphanumeric());
            if digits.len() >= 8 && !followed_by_letter {
                let standin = self.number(&digits);
                let mut replacement = standin.chars();
                out.extend(run.chars().map(|ch| if ch.is_ascii_digit() { replacement.next().unwrap_or('0') } else { ch }));
            } else {
                out.push_str(&run);
            }
            idx = last_digit + 1;
        }
        out
    }

    /// A stand-in for a run of digits: a valid CPF/CNPJ for a valid one,
    /// digits of the same length that are neither otherwise.
    fn number(&mut self, digits: &str) -> String {
        if let Some(known) = self.seen.get(digits) {
            return known.clone();
        }
        let kind = match digits.len() {
            11 if valid_cpf(digits) => Kind::Cpf,
            14 if valid_cnpj(digits) => Kind::Cnpj,
            _ => Kind::Other,
        };
        let made = loop {
            self.next += 1;
            let candidate = standin(kind, digits.len(), self.next);
            let same_kind = match kind {
                Kind::Cpf => valid_cpf(&candidate),
                Kind::Cnpj => valid_cnpj(&candidate),
                Kind::Other => !((candidate.len() == 11 && valid_cpf(&candidate)) || (candidate.len() == 14 && valid_cnpj(&candidate))),
            };
            if same_kind && candidate != digits {
                break candidate;
            }
        };
        self.seen.insert(digits.to_owned(), made.clone());
        made
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Cpf,
    Cnpj,
    Other,
}

/// Deterministic digits for stand-in number `n`: a phone keeps Brazil's
/// country code when it had 12 or 13 digits.
fn standin(kind: Kind, len: usize, n: u64) -> String {
    // A scrambled counter: distinct for distinct n, not a recognisable sequence.
    let mut x = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151_5151;
    let mut body = String::new();
    while body.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push(char::from(b'0' + (x % 10) as u8));
    }
    match kind {
        Kind::Cpf => {
            let base = &body[..9];
            let first = cpf_digit(base);
            let second = cpf_digit(&format!("{base}{first}"));
            format!("{base}{first}{second}")
        }
        Kind::Cnpj => {
            let base = &body[..12];
            let first = cnpj_digit(base);
            let second = cnpj_digit(&format!("{base}{first}"));
            format!("{base}{first}{second}")
        }
        Kind::Other if len == 12 || len == 13 => format!("5599{}", &body[4..]),
        Kind::Other => body,
    }
}

fn digits_of(text: &str) -> Vec<u32> {
    text.chars().filter_map(|ch| ch.to_digit(10)).collect()
}

fn cpf_digit(base: &str) -> u32 {
    let digits = digits_of(base);
    let weight_start = digits.len() as u32 + 1;
    let sum: u32 = digits.iter().enumerate().map(|(idx, digit)| digit * (weight_start - idx as u32)).sum();
    let rest = (sum * 10) % 11;
    if rest == 10 { 0 } else { rest }
}

fn cnpj_digit(base: &str) -> u32 {
    let digits = digits_of(base);
    let weights: &[u32] = if digits.len() == 12 { &[5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2] } else { &[6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2] };
    let sum: u32 = digits.iter().zip(weights).map(|(digit, weight)| digit * weight).sum();
    let rest = sum % 11;
    if rest < 2 { 0 } else { 11 - rest }
}

/// Eleven digits with both check digits right, not all the same digit.
pub fn valid_cpf(digits: &str) -> bool {
    let all = digits_of(digits);
    all.len() == 11
        && all.iter().any(|digit| *digit != all[0])
        && cpf_digit(&digits[..9]) == all[9]
        && cpf_digit(&digits[..10]) == all[10]
}

/// Fourteen digits with both check digits right, not all the same digit.
pub fn valid_cnpj(digits: &str) -> bool {
    let all = digits_of(digits);
    all.len() == 14
        && all.iter().any(|digit| *digit != all[0])
        && cnpj_digit(&digits[..12]) == all[12]
        && cnpj_digit(&digits[..13]) == all[13]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_cpf_gets_a_valid_stand_in_with_its_punctuation() {
        let mut masker = Masker::new();
        let masked = masker.text("meu cpf é 529.982.247-25 ok");
        assert!(!masked.contains("529.982.247-25"), "{masked}");
        let standin = masked.split(' ').nth(3).unwrap();
        assert_eq!(standin.len(), 14, "{masked}");
        assert_eq!(&standin[3..4], ".");
        assert!(valid_cpf(&standin.replace(['.', '-'], "")), "{masked}");
        assert_eq!(masker.text("529.982.247-25"), standin, "the same value, the same stand-in");
    }

    #[test]
    fn an_invalid_cpf_stays_invalid_and_a_cnpj_stays_a_cnpj() {
        let mut masker = Masker::new();
        let masked = masker.text("12345678900");
        assert_ne!(masked, "12345678900");
        assert!(!valid_cpf(&masked), "{masked}");
        let cnpj = masker.text("11.222.333/0001-81");
        assert!(valid_cnpj(&cnpj.replace(['.', '-', '/'], "")), "{cnpj}");
        assert_ne!(cnpj, "11.222.333/0001-81");
    }

    #[test]
    fn emails_and_phones_keep_their_shape_and_short_numbers_stay() {
        let mut masker = Masker::new();
        let masked = masker.text("email joao.silva@gmail.com, fone +55 11 98888-7777, opção 2");
        assert!(!masked.contains("joao.silva"), "{masked}");
        assert!(masked.contains("cliente1@exemplo.com.br,"), "{masked}");
        assert!(!masked.contains("98888-7777"), "{masked}");
        assert!(masked.ends_with("opção 2"), "{masked}");
    }
}
