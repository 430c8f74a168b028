//! Voice notes, typing and choices on the Evolution channel (issue #18).
//!
//! - **Voice notes.** A voice note that arrives without Evolution's
//!   `speechToText` is transcribed before its turn when `TRANSCRIBE=on` (and
//!   `LLM_BASE_URL` names an OpenAI-compatible server): the audio is fetched
//!   from Evolution by message id (`getBase64FromMediaMessage`) and sent to
//!   `/audio/transcriptions`, within a budget (`TRANSCRIBE_TIMEOUT` for the
//!   whole fetch and call, `TRANSCRIBE_MAX_BYTES`, `TRANSCRIBE_PER_HOUR` per
//!   process). Any failure leaves the voice note without text: the turn
//!   answers with the polite "please type", and the entry is processed as
//!   any other (nothing waits or is lost).
//! - **Typing.** `TYPING=off|auto|<N>ms` (default `auto`): each send asks
//!   Evolution to show "digitando…" for a delay sized to the text (`auto`:
//!   40 ms a character, at least 600 ms) or fixed, never over `TYPING_MAX`
//!   (default 3 s or half of `SEND_TIMEOUT` if less; never more than that half, since Evolution answers
//!   the send only after the delay). With typing on, a reply longer than
//!   [`SPLIT_OVER`] characters goes as one message per paragraph.
//! - **Choices.** On instances listed in `EVOLUTION_CLOUD_INSTANCES` (Cloud
//!   API, integration `WHATSAPP-BUSINESS`) a menu goes as reply buttons (up
//!   to 3 options) or a list (up to 10); elsewhere, and for longer menus, as
//!   numbered text. Titles start with the option's number, so the reply
//!   reads as that number.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchyard_engine::engine::Reply;

/// With typing on, replies longer than this are split at blank lines.
pub const SPLIT_OVER: usize = 400;
/// `auto` typing: per character, at least, and the default cap.
const AUTO_PER_CHAR: Duration = Duration::from_millis(40);
const AUTO_MIN: Duration = Duration::from_millis(600);
const DEFAULT_CAP: Duration = Duration::from_secs(3);

/// `TYPING`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Typing {
    Off,
    /// Sized to the text, capped.
    Auto { cap: Duration },
    /// The same delay before every message, capped.
    Fixed(Duration),
}

impl Typing {
    /// Parses `off`, `auto` or `<N>ms` with the cap `TYPING_MAX`.
    pub fn parse(text: &str, cap: Duration) -> Result<Typing, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" | "0" | "0ms" => Ok(Typing::Off),
            "auto" => Ok(Typing::Auto { cap }),
            other => match other.strip_suffix("ms").and_then(|n| n.trim().parse::<u64>().ok()) {
                Some(millis) => Ok(Typing::Fixed(Duration::from_millis(millis).min(cap))),
                None => Err(format!("TYPING '{text}' must be off, auto or a delay in milliseconds such as 1500ms")),
            },
        }
    }

    /// The "digitando…" time before sending `text`.
    pub fn delay_for(self, text: &str) -> Duration {
        match self {
            Typing::Off => Duration::ZERO,
            Typing::Fixed(delay) => delay,
            Typing::Auto { cap } => {
                let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
                AUTO_PER_CHAR.saturating_mul(chars).max(AUTO_MIN).min(cap)
            }
        }
    }

    pub fn is_on(self) -> bool {
        self != Typing::Off
    }
}

/// What `serve` does with media, typing and choices.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    pub typing: Typing,
    /// `EVOLUTION_CLOUD_INSTANCES`: Cloud API instances (buttons and lists).
    pub cloud_instances: HashSet<String>,
    /// `TRANSCRIBE=on`.
    pub transcribe: bool,
    /// `TRANSCRIBE_MODEL` (default `whisper-1`).
    pub transcribe_model: String,
    /// `TRANSCRIBE_LANGUAGE` (default `pt`).
    pub transcribe_language: String,
    /// `TRANSCRIBE_TIMEOUT`: the whole fetch and transcription (default 20 s).
    pub transcribe_timeout: Duration,
    /// `TRANSCRIBE_MAX_BYTES`: larger audio is not fetched whole nor sent (default 8 MB).
    pub transcribe_max_bytes: usize,
    /// `TRANSCRIBE_PER_HOUR`: transcriptions per process per hour (default 200).
    pub transcribe_per_hour: usize,
    /// Built by `serve` from `LLM_BASE_URL`/`LLM_API_KEY` when `transcribe` is on.
    pub transcriber: Option<switchyard_llm::transcribe::Transcriber>,
}

impl Default for MediaConfig {
    fn default() -> MediaConfig {
        MediaConfig {
            // `ServeConfig::defaults` (tests, the load generator) runs
            // without typing; `TYPING` unset in the environment means `auto`.
            typing: Typing::Off,
            cloud_instances: HashSet::new(),
            transcribe: false,
            transcribe_model: "whisper-1".to_owned(),
            transcribe_language: "pt".to_owned(),
            transcribe_timeout: Duration::from_secs(20),
            transcribe_max_bytes: 8 * 1024 * 1024,
            transcribe_per_hour: 200,
            transcriber: None,
        }
    }
}

impl MediaConfig {
    /// Reads the variables; `send_timeout` bounds the typing cap.
    pub fn from_env(send_timeout: Duration, problems: &mut Vec<String>) -> MediaConfig {
        let mut config = MediaConfig::default();
        let read = |name: &str, problems: &mut Vec<String>| match crate::config::var(name) {
            Ok(value) => value.map(|value| value.trim().to_owned()).filter(|value| !value.is_empty()),
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let duration = |name: &str, default: Duration, problems: &mut Vec<String>| match read(name, problems) {
            None => default,
            Some(text) => switchyard_engine::time::parse_duration(&text).unwrap_or_else(|problem| {
                problems.push(format!("{name}: {problem}"));
                default
            }),
        };
        let count = |name: &str, default: usize, range: std::ops::RangeInclusive<usize>, problems: &mut Vec<String>| match read(name, problems) {
            None => default,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    problems.push(format!("{name} '{text}' must be a whole number from {} to {}", range.start(), range.end()));
                    default
                }
            },
        };
        // Unset, the cap shrinks to fit a short SEND_TIMEOUT; set, it must fit.
        let explicit = read("TYPING_MAX", problems).is_some();
        let cap = duration("TYPING_MAX", DEFAULT_CAP.min(send_timeout / 2), problems);
        if explicit && cap > send_timeout / 2 {
            problems.push(format!(
                "TYPING_MAX '{}ms' must be at most half of SEND_TIMEOUT ({} ms): Evolution answers a send only after the typing delay",
                cap.as_millis(),
                (send_timeout / 2).as_millis()
            ));
        }
        if let Some(text) = read("TYPING", problems) {
            match Typing::parse(&text, cap) {
                Ok(typing) => config.typing = typing,
                Err(problem) => problems.push(problem),
            }
        } else {
            config.typing = Typing::Auto { cap };
        }
        if let Some(list) = read("EVOLUTION_CLOUD_INSTANCES", problems) {
            config.cloud_instances = list.split(',').map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned).collect();
        }
        config.transcribe = match read("TRANSCRIBE", problems).map(|text| text.to_ascii_lowercase()).as_deref() {
            None | Some("off") | Some("false") | Some("0") => false,
            Some("on") | Some("true") | Some("1") => true,
            Some(other) => {
                problems.push(format!("TRANSCRIBE '{other}' must be on or off"));
                false
            }
        };
        if config.transcribe && read("LLM_BASE_URL", problems).is_none() {
            problems.push("TRANSCRIBE=on needs LLM_BASE_URL: the OpenAI-compatible server that transcribes (/audio/transcriptions)".to_owned());
        }
        if let Some(model) = read("TRANSCRIBE_MODEL", problems) {
            config.transcribe_model = model;
        }
        if let Some(language) = read("TRANSCRIBE_LANGUAGE", problems) {
            config.transcribe_language = language;
        }
        config.transcribe_timeout = duration("TRANSCRIBE_TIMEOUT", config.transcribe_timeout, problems);
        config.transcribe_max_bytes = count("TRANSCRIBE_MAX_BYTES", config.transcribe_max_bytes, 1024..=25 * 1024 * 1024, problems);
        config.transcribe_per_hour = count("TRANSCRIBE_PER_HOUR", config.transcribe_per_hour, 0..=1_000_000, problems);
        config
    }
}

/// With typing on, a long reply without a file or menu becomes one reply per
/// paragraph (blank-line separated), as Evolution's own bots send them.
pub fn split_long(replies: Vec<Reply>, typing: Typing) -> Vec<Reply> {
    if !typing.is_on() {
        return replies;
    }
    let mut out = Vec::with_capacity(replies.len());
    for reply in replies {
        if reply.rich.is_some() || reply.text.chars().count() <= SPLIT_OVER {
            out.push(reply);
            continue;
        }
        let paragraphs: Vec<&str> = reply.text.split("\n\n").map(str::trim).filter(|part| !part.is_empty()).collect();
        if paragraphs.len() < 2 {
            out.push(reply);
            continue;
        }
        for paragraph in paragraphs {
            out.push(Reply { text: paragraph.to_owned().into(), ..reply.clone() });
        }
    }
    out
}

/// A menu's text without its option lines, for the body above buttons.
pub fn menu_body(text: &str, options: usize) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let digits: String = line.trim().chars().take_while(char::is_ascii_digit).collect();
            !digits.parse::<usize>().is_ok_and(|n| (1..=options).contains(&n))
        })
        .collect();
    let body = kept.join("\n").trim().to_owned();
    if body.is_empty() { text.to_owned() } else { body }
}

/// At most `per_hour` transcriptions in any hour, per process.
#[derive(Debug, Default)]
pub struct HourlyBudget {
    spent: Mutex<VecDeque<Instant>>,
}

impl HourlyBudget {
    /// Takes one unit if the last hour has room.
    pub fn take(&self, per_hour: usize) -> bool {
        let now = Instant::now();
        let mut spent = self.spent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while spent.front().is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(3600)) {
            spent.pop_front();
        }
        if spent.len() >= per_hour {
            return false;
        }
        spent.push_back(now);
        true
    }
}

/// Transcribes the voice note `message_id` within the budget; `None` (and a
/// log line saying why) when it cannot.
pub async fn transcribe(
    client: &switchyard_evolution::EvolutionClient,
    config: &MediaConfig,
    budget: &HourlyBudget,
    instance: &str,
    message_id: &str,
) -> Option<String> {
    let transcriber = config.transcriber.as_ref()?;
    if !budget.take(config.transcribe_per_hour) {
        tracing::warn!(instance, per_hour = config.transcribe_per_hour, "transcription budget spent (TRANSCRIBE_PER_HOUR): answering the voice note with the type-please text");
        return None;
    }
    let work = async {
        let fetched = client.fetch_media(instance, message_id, config.transcribe_max_bytes).await.map_err(|err| err.to_string())?;
        let mimetype = fetched.mimetype.as_deref().unwrap_or("audio/ogg");
        transcriber.transcribe(&fetched.bytes, "audio.ogg", mimetype).await.map_err(|err| err.to_string())
    };
    let started = Instant::now();
    match tokio::time::timeout(config.transcribe_timeout, work).await {
        Ok(Ok(text)) => {
            tracing::info!(instance, elapsed_ms = started.elapsed().as_millis() as u64, "voice note transcribed");
            Some(text)
        }
        Ok(Err(reason)) => {
            tracing::warn!(instance, %reason, "voice note not transcribed: answering with the type-please text");
            None
        }
        Err(_) => {
            tracing::warn!(instance, timeout_ms = config.transcribe_timeout.as_millis() as u64, "voice note transcription timed out: answering with the type-please text");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_parses_and_sizes_to_the_text() {
        let cap = Duration::from_secs(3);
        assert_eq!(Typing::parse("off", cap), Ok(Typing::Off));
        assert_eq!(Typing::parse("1500ms", cap), Ok(Typing::Fixed(Duration::from_millis(1500))));
        assert_eq!(Typing::parse("9000ms", cap), Ok(Typing::Fixed(cap)), "capped");
        assert!(Typing::parse("fast", cap).unwrap_err().contains("'fast'"));
        let auto = Typing::parse("auto", cap).unwrap();
        assert_eq!(auto.delay_for("oi"), AUTO_MIN);
        assert_eq!(auto.delay_for(&"a".repeat(50)), Duration::from_millis(2000));
        assert_eq!(auto.delay_for(&"a".repeat(500)), cap);
        assert_eq!(Typing::Off.delay_for("oi"), Duration::ZERO);
    }

    fn reply(text: &str) -> Reply {
        Reply { session: None, flow: None, version: None, step: None, text: text.to_owned().into(), rich: None }
    }

    #[test]
    fn long_replies_split_at_paragraphs_only_with_typing_on() {
        let long = format!("{}\n\n{}\n\n  \n\n{}", "a".repeat(200), "b".repeat(200), "c".repeat(10));
        let auto = Typing::Auto { cap: DEFAULT_CAP };
        let split = split_long(vec![reply("curta"), reply(&long)], auto);
        let texts: Vec<&str> = split.iter().map(|reply| reply.text.as_str()).collect();
        assert_eq!(texts, vec!["curta", &"a".repeat(200), &"b".repeat(200), "cccccccccc"]);
        assert_eq!(split_long(vec![reply(&long)], Typing::Off).len(), 1);
    }

    #[test]
    fn the_menu_body_drops_the_option_lines() {
        let text = "Sobre a sua fatura, o que você precisa?\n1️⃣ *Segunda via*\n2️⃣ *Parcelar*";
        assert_eq!(menu_body(text, 2), "Sobre a sua fatura, o que você precisa?");
        assert_eq!(menu_body("1. a\n2. b", 2), "1. a\n2. b", "a menu of only options keeps them");
    }

    #[test]
    fn the_hourly_budget_stops_at_its_limit() {
        let budget = HourlyBudget::default();
        assert!(budget.take(2) && budget.take(2));
        assert!(!budget.take(2));
        assert!(!HourlyBudget::default().take(0));
    }
}
