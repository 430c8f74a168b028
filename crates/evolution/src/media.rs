//! Media and choices through Evolution's REST API, beside `sendText`:
//!
//! - `POST /chat/getBase64FromMediaMessage/{instance}` with
//!   `{"message": {"key": {"id": ...}}, "convertToMp4": false}`: Evolution
//!   looks the stored message up by id and answers 201 with
//!   `{mediaType, fileName, caption, size, mimetype, base64, buffer}`
//!   (2.3.6 `BaileysStartupService.getBase64FromMediaMessage`). The Cloud
//!   API service answers only for a full message in the body, so fetching by
//!   id is a Baileys feature.
//! - `POST /message/sendMedia/{instance}`: `number`, `mediatype`
//!   (`image`/`document`), `mimetype`, `media` (a URL or base64), `fileName`,
//!   `caption`, `delay` (`SendMediaDto`, `mediaMessageSchema`).
//! - `POST /message/sendButtons/{instance}`: `title`, `description`,
//!   `footer`, `buttons: [{type: "reply", displayText, id}]`
//!   (`SendButtonsDto`); `POST /message/sendList/{instance}`: `title`,
//!   `description`, `footerText`, `buttonText`,
//!   `sections: [{title, rows: [{title, description, rowId}]}]`
//!   (`SendListDto`; `footerText` and `buttonText` are required). Only for
//!   Cloud API instances (`WHATSAPP-BUSINESS`): Baileys no longer delivers
//!   them. The Cloud API service turns a tapped button or row into a
//!   `messages.upsert` whose `conversation` is the *title*, so titles start
//!   with the option's number and the reply reads as that number.
//!
//! `delay` (milliseconds) makes Evolution show "digitando…" for that long
//! before sending (`sendMessageWithTyping` with `presence: composing`); the
//! request is answered only after it, so callers keep it well under their
//! timeout.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::client::{EvolutionClient, SendError, Sent, classify};

/// A file to send.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMedia {
    /// `image` or `document`.
    pub kind: crate::webhook::MediaKind,
    /// A URL Evolution downloads, or the file's base64.
    pub media: String,
    pub mimetype: String,
    pub file_name: Option<String>,
    /// Sent under the file; empty for none.
    pub caption: String,
}

impl std::fmt::Debug for OutgoingMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMedia")
            .field("kind", &self.kind)
            .field("media", &format!("<{} bytes>", self.media.len()))
            .field("mimetype", &self.mimetype)
            .finish_non_exhaustive()
    }
}

/// A numbered choice offered as a button or list row: `id` is the option's
/// number, `title` begins with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub title: String,
}

/// The most reply buttons WhatsApp shows; more options go in a list.
pub const MAX_BUTTONS: usize = 3;
/// The most rows a Cloud API list holds.
pub const MAX_LIST_ROWS: usize = 10;
/// WhatsApp cuts button titles at 20 characters and list row titles at 24.
const BUTTON_TITLE_CHARS: usize = 20;
const ROW_TITLE_CHARS: usize = 24;

/// A downloaded file.
#[derive(Clone, PartialEq, Eq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub mimetype: Option<String>,
    pub file_name: Option<String>,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("bytes", &self.bytes.len())
            .field("mimetype", &self.mimetype)
            .finish_non_exhaustive()
    }
}

impl EvolutionClient {
    /// `sendText` with `delay` ms of "digitando…" first (0: none).
    pub async fn send_text_typing(&self, instance: &str, number: &str, text: &str, delay: Duration) -> Result<Sent, SendError> {
        let mut body = json!({ "number": number, "text": text });
        add_delay(&mut body, delay);
        let (status, answer) = self.post_json(["message", "sendText"], instance, &body).await?;
        classify(status, &answer)
    }

    /// `sendMedia`: a document or image, by URL or base64.
    pub async fn send_media(&self, instance: &str, number: &str, media: &OutgoingMedia, delay: Duration) -> Result<Sent, SendError> {
        let mut body = json!({
            "number": number,
            "mediatype": media.kind.as_str(),
            "mimetype": media.mimetype,
            "media": media.media,
        });
        if let Some(name) = media.file_name.as_deref().filter(|name| !name.trim().is_empty()) {
            body["fileName"] = json!(name);
        }
        if !media.caption.trim().is_empty() {
            body["caption"] = json!(media.caption);
        }
        add_delay(&mut body, delay);
        let (status, answer) = self.post_json(["message", "sendMedia"], instance, &body).await?;
        classify(status, &answer)
    }

    /// Up to [`MAX_BUTTONS`] reply buttons under `text` (Cloud API
    /// instances), else a list (up to [`MAX_LIST_ROWS`] rows) opened by
    /// `button_text`. More options than a list holds is refused before any
    /// request: send the numbered text instead.
    pub async fn send_choices(
        &self,
        instance: &str,
        number: &str,
        text: &str,
        choices: &[Choice],
        button_text: &str,
        delay: Duration,
    ) -> Result<Sent, SendError> {
        let (route, mut body) = choices_body(number, text, choices, button_text)?;
        add_delay(&mut body, delay);
        let (status, answer) = self.post_json(["message", route], instance, &body).await?;
        classify(status, &answer)
    }

    /// Downloads the media of the stored message `message_id`, refusing
    /// answers over `max_bytes` of base64.
    pub async fn fetch_media(&self, instance: &str, message_id: &str, max_bytes: usize) -> Result<Fetched, SendError> {
        let body = json!({ "message": { "key": { "id": message_id } }, "convertToMp4": false });
        // base64 is 4/3 of the bytes, plus the JSON around it.
        let limit = max_bytes.saturating_mul(4) / 3 + 4096;
        let (status, answer) = self.post_json_limited(["chat", "getBase64FromMediaMessage"], instance, &body, limit).await?;
        if !status.is_success() {
            return Err(crate::client::classify_error(status, &answer));
        }
        let too_large = || SendError::Rejected { status: 413, reason: format!("media larger than {max_bytes} bytes") };
        if answer.len() >= limit {
            return Err(too_large());
        }
        let fetched = decode_fetched(&answer)?;
        if fetched.bytes.len() > max_bytes {
            return Err(too_large());
        }
        Ok(fetched)
    }
}

fn add_delay(body: &mut Value, delay: Duration) {
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    if millis > 0 {
        body["delay"] = json!(millis);
    }
}

/// The route and body for [`EvolutionClient::send_choices`].
pub fn choices_body(number: &str, text: &str, choices: &[Choice], button_text: &str) -> Result<(&'static str, Value), SendError> {
    if choices.is_empty() || choices.len() > MAX_LIST_ROWS {
        return Err(SendError::Rejected {
            status: 0,
            reason: format!("{} options: buttons and lists take 1 to {MAX_LIST_ROWS}", choices.len()),
        });
    }
    if choices.len() <= MAX_BUTTONS {
        let buttons: Vec<Value> = choices
            .iter()
            .map(|choice| json!({ "type": "reply", "displayText": cut(&choice.title, BUTTON_TITLE_CHARS), "id": choice.id }))
            .collect();
        return Ok(("sendButtons", json!({ "number": number, "title": text, "buttons": buttons })));
    }
    let rows: Vec<Value> = choices
        .iter()
        .map(|choice| json!({ "title": cut(&choice.title, ROW_TITLE_CHARS), "description": choice.title, "rowId": choice.id }))
        .collect();
    Ok((
        "sendList",
        json!({
            "number": number,
            "title": "",
            "description": text,
            "footerText": " ",
            "buttonText": cut(button_text, BUTTON_TITLE_CHARS),
            "sections": [{ "title": cut(button_text, ROW_TITLE_CHARS), "rows": rows }],
        }),
    ))
}

/// At most `max` characters, the last an ellipsis when cut (WhatsApp
/// refuses longer titles).
fn cut(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let kept: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{}…", kept.trim_end())
        }
    }
}

/// Reads a `getBase64FromMediaMessage` answer.
pub fn decode_fetched(answer: &[u8]) -> Result<Fetched, SendError> {
    let unreadable = |what: &str| SendError::Rejected { status: 0, reason: format!("getBase64FromMediaMessage answer {what}") };
    let answer: Map<String, Value> = serde_json::from_slice(answer).map_err(|_| unreadable("is not a json object"))?;
    let encoded = answer.get("base64").and_then(Value::as_str).filter(|text| !text.is_empty()).ok_or_else(|| unreadable("has no base64"))?;
    // Some servers wrap it as a data URL.
    let encoded = encoded.split_once(";base64,").map_or(encoded, |(_, data)| data);
    let cleaned: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes()).map_err(|_| unreadable("has invalid base64"))?;
    let text = |key: &str| answer.get(key).and_then(Value::as_str).filter(|text| !text.trim().is_empty()).map(str::to_owned);
    Ok(Fetched { bytes, mimetype: text("mimetype"), file_name: text("fileName") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choices(n: usize) -> Vec<Choice> {
        (1..=n).map(|i| Choice { id: i.to_string(), title: format!("{i}. Opção número {i} bem comprida") }).collect()
    }

    #[test]
    fn three_options_are_buttons_and_more_a_list() {
        let (route, body) = choices_body("5511", "Escolha:", &choices(3), "Opções").unwrap();
        assert_eq!(route, "sendButtons");
        assert_eq!(body["buttons"].as_array().unwrap().len(), 3);
        assert_eq!(body["buttons"][0]["id"], "1");
        assert_eq!(body["buttons"][0]["type"], "reply");
        assert!(body["buttons"][0]["displayText"].as_str().unwrap().chars().count() <= 20);
        let (route, body) = choices_body("5511", "Escolha:", &choices(4), "Opções").unwrap();
        assert_eq!(route, "sendList");
        assert_eq!(body["sections"][0]["rows"][3]["rowId"], "4");
        assert!(body["footerText"].is_string() && body["buttonText"].is_string(), "required by listMessageSchema");
        assert!(choices_body("5511", "x", &choices(11), "Opções").is_err());
        assert!(choices_body("5511", "x", &[], "Opções").is_err());
    }

    #[test]
    fn fetched_media_decodes_plain_and_data_url_base64() {
        let fetched = decode_fetched(br#"{"mediaType":"audioMessage","fileName":"a.ogg","mimetype":"audio/ogg; codecs=opus","base64":"T2dnUw==","buffer":null}"#).unwrap();
        assert_eq!(fetched.bytes, b"OggS");
        assert_eq!(fetched.file_name.as_deref(), Some("a.ogg"));
        let fetched = decode_fetched(br#"{"base64":"data:audio/ogg;base64,T2dn\nUw=="}"#).unwrap();
        assert_eq!(fetched.bytes, b"OggS");
        assert!(decode_fetched(br#"{"base64":"***"}"#).is_err());
        assert!(decode_fetched(br#"{"mimetype":"x"}"#).is_err());
        assert!(decode_fetched(b"[]").is_err());
    }
}
