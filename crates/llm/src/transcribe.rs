//! Speech to text through an OpenAI-compatible `POST {base}/audio/transcriptions`
//! (OpenAI's Whisper, a local whisper.cpp / faster-whisper server ...), the
//! request Evolution's own OpenAI integration makes: multipart form data
//! with `file`, `model` (`whisper-1`), `language` and `response_format:
//! json`; the answer is `{"text": "..."}`.
//!
//! The whole call is bounded by the timeout given to [`Transcriber::new`];
//! the audio and its text are never logged.

use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

/// A client for one transcription endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Transcriber {
    http: reqwest::Client,
    url: Url,
    api_key: Option<String>,
    model: String,
    language: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for Transcriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcriber")
            .field("url", &self.url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a transcription failed; never carries audio or text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscribeError {
    #[error("no transcription within {0} ms")]
    Timeout(u128),
    #[error("transcription endpoint answered {0}")]
    Status(u16),
    #[error("transcription endpoint unreachable: {0}")]
    Transport(String),
    #[error("transcription answer has no text")]
    NoText,
}

impl Transcriber {
    /// `base_url` is `LLM_BASE_URL` (`https://api.openai.com/v1`); the
    /// endpoint is `{base_url}/audio/transcriptions`.
    pub fn new(base_url: &Url, api_key: Option<String>, model: &str, language: Option<&str>, timeout: Duration) -> Result<Transcriber, String> {
        let mut url = base_url.clone();
        url.path_segments_mut()
            .map_err(|()| format!("LLM_BASE_URL '{base_url}' cannot take a path"))?
            .pop_if_empty()
            .extend(["audio", "transcriptions"]);
        // reqwest is built without a default TLS provider (see `Llm::new`).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("cannot build the transcription client: {err}"))?;
        Ok(Transcriber {
            http,
            url,
            api_key: api_key.filter(|key| !key.trim().is_empty()),
            model: model.to_owned(),
            language: language.map(str::to_owned),
            timeout,
        })
    }

    /// The text spoken in `audio` (`file_name` tells the server the format:
    /// `audio.ogg` for WhatsApp voice notes).
    pub async fn transcribe(&self, audio: &[u8], file_name: &str, mimetype: &str) -> Result<String, TranscribeError> {
        let boundary = format!("switchyard-{:016x}", fastrand_seed(audio));
        let body = multipart(&boundary, audio, file_name, mimetype, &self.model, self.language.as_deref());
        let mut request = self
            .http
            .post(self.url.clone())
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|err| self.transport(&err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(TranscribeError::Status(status.as_u16()));
        }
        let answer = response.bytes().await.map_err(|err| self.transport(&err))?;
        text_of(&answer).ok_or(TranscribeError::NoText)
    }

    fn transport(&self, err: &reqwest::Error) -> TranscribeError {
        if err.is_timeout() {
            TranscribeError::Timeout(self.timeout.as_millis())
        } else if err.is_connect() {
            TranscribeError::Transport("could not connect".to_owned())
        } else {
            TranscribeError::Transport("connection dropped".to_owned())
        }
    }
}

/// A boundary that cannot collide with the audio by chance: derived from
/// its length and a few bytes, checked below.
fn fastrand_seed(audio: &[u8]) -> u64 {
    let mut seed = 0xcbf2_9ce4_8422_2325u64 ^ audio.len() as u64;
    for byte in audio.iter().step_by((audio.len() / 64).max(1)) {
        seed = (seed ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    seed
}

/// The multipart body (RFC 7578).
fn multipart(boundary: &str, audio: &[u8], file_name: &str, mimetype: &str, model: &str, language: Option<&str>) -> Vec<u8> {
    let clean = |text: &str| text.replace(['"', '\r', '\n'], "_");
    let mut body = Vec::with_capacity(audio.len() + 512);
    let field = |body: &mut Vec<u8>, name: &str, value: &str| {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    };
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            clean(file_name),
            clean(mimetype)
        )
        .as_bytes(),
    );
    body.extend_from_slice(audio);
    body.extend_from_slice(b"\r\n");
    field(&mut body, "model", &clean(model));
    if let Some(language) = language {
        field(&mut body, "language", &clean(language));
    }
    field(&mut body, "response_format", "json");
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

/// `{"text": "..."}`, trimmed; `None` when absent or blank.
fn text_of(answer: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(answer).ok()?;
    let text = value.get("text")?.as_str()?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_file_and_the_fields_evolution_sends() {
        let body = multipart("B", b"OggS", "audio.ogg", "audio/ogg; codecs=opus", "whisper-1", Some("pt"));
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio.ogg\"\r\nContent-Type: audio/ogg; codecs=opus\r\n\r\nOggS\r\n"));
        assert!(text.contains("name=\"model\"\r\n\r\nwhisper-1\r\n"));
        assert!(text.contains("name=\"language\"\r\n\r\npt\r\n"));
        assert!(text.ends_with("--B--\r\n"));
    }

    #[test]
    fn the_answer_is_its_text() {
        assert_eq!(text_of(br#"{"text":" quero a segunda via "}"#).as_deref(), Some("quero a segunda via"));
        assert_eq!(text_of(br#"{"text":""}"#), None);
        assert_eq!(text_of(b"nope"), None);
    }

    #[test]
    fn the_endpoint_hangs_off_the_base_url() {
        let base = Url::parse("http://127.0.0.1:9/v1/").unwrap();
        let transcriber = Transcriber::new(&base, None, "whisper-1", None, Duration::from_secs(1)).unwrap();
        assert_eq!(transcriber.url.as_str(), "http://127.0.0.1:9/v1/audio/transcriptions");
    }
}
