//! The Evolution REST client: `POST /message/sendText/{instance}`.
//!
//! Outcomes are sorted by what the caller should do next, not by status code:
//! [`SendError::Unanswered`] (no answer within the timeout, the connection
//! dropped after the request was written, a gateway that lost Evolution's
//! answer: the text may have gone out, and 2.3.6 has no idempotency key, so
//! ask [`EvolutionClient::find_sent`] before sending it again),
//! [`SendError::Retryable`] (refused for now: could not connect, 5xx, 429),
//! [`SendError::Rejected`] (4xx: retrying sends the same refusal) and
//! [`SendError::Unauthorized`] (401/403: a configuration error to surface
//! loudly).
//!
//! Error bodies are `{status, error, response: {message}}` where `message`
//! may be a string, `[string]`, `[[string]]` or `[object]`; they are read as
//! [`Value`] and summarised with long digit runs redacted, so a reason never
//! carries the customer's number or text.

use std::collections::HashMap;
use std::fmt;
use std::sync::Once;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

use crate::mask;

/// The default request timeout: well under Evolution's own 60 s webhook
/// timeout, long enough for a send on a slow WhatsApp socket.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Error bodies larger than this are cut before parsing: only a short
/// reason is needed from them.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// A client for one Evolution server. Cheap to clone (the connection pool is
/// shared).
#[derive(Clone)]
pub struct EvolutionClient {
    base: Url,
    api_key: Option<HeaderValue>,
    instance_keys: HashMap<String, HeaderValue>,
    timeout: Duration,
    http: reqwest::Client,
}

/// A configuration error from [`EvolutionClient::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("evolution base url `{0}` is not a valid http(s) url")]
    BadBaseUrl(String),
    #[error("evolution base url `{0}` must use http or https")]
    BadScheme(String),
    #[error("evolution base url `{0}` must not have a query or fragment")]
    QueryInBaseUrl(String),
    #[error("evolution api key for {0} contains characters not allowed in a header")]
    BadApiKey(String),
    #[error("evolution request timeout must be greater than zero")]
    ZeroTimeout,
    #[error("could not build the http client: {0}")]
    Http(String),
}

/// A message Evolution accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// `key.id` of the sent message when the body had one: it matches later
    /// `messages.update` receipts and quoted replies.
    pub message_id: Option<String>,
}

/// Why a send failed. Reasons are short phrases without the customer's
/// number or text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No answer: a timeout, the connection dropped after the request was
    /// written, or a gateway in front of Evolution lost its answer (502,
    /// 504). The message may have been sent: ask before sending it again.
    #[error("evolution did not answer the send: {0}")]
    Unanswered(String),
    /// Refused for now, worth retrying later with backoff: the server could
    /// not be reached, 5xx from Evolution (including `Connection Closed`, also as a 400),
    /// 429.
    #[error("evolution send failed, retryable: {0}")]
    Retryable(String),
    /// Refused for good (4xx): e.g. `number is not on whatsapp`.
    #[error("evolution rejected the send ({status}): {reason}")]
    Rejected { status: u16, reason: String },
    /// 401/403 or no key configured: the apikey is wrong or missing.
    #[error("evolution refused the api key: {0}")]
    Unauthorized(String),
}

impl SendError {
    /// `true` for [`SendError::Retryable`] and [`SendError::Unanswered`].
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Retryable(_) | SendError::Unanswered(_))
    }
}

impl EvolutionClient {
    /// Builds a client for the Evolution server at `base_url` (a path prefix
    /// such as `https://host/evolution` is kept). `api_key` is the global
    /// `AUTHENTICATION_API_KEY`; `instance_keys` maps instance names to their
    /// tokens and take precedence for that instance.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        instance_keys: HashMap<String, String>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let shown = base_url.trim();
        let mut base =
            Url::parse(shown).map_err(|_| ClientError::BadBaseUrl(redact_userinfo(shown)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ClientError::BadScheme(redact_userinfo(shown)));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(ClientError::BadBaseUrl(redact_userinfo(shown)));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ClientError::QueryInBaseUrl(redact_userinfo(shown)));
        }
        // `path_segments_mut` below appends to the path; a trailing slash
        // would leave an empty segment (`//message`).
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty();
        }
        if timeout.is_zero() {
            return Err(ClientError::ZeroTimeout);
        }
        let api_key = api_key
            .filter(|key| !key.trim().is_empty())
            .map(|key| header_value(&key, "the global key"))
            .transpose()?;
        let instance_keys = instance_keys
            .into_iter()
            .filter(|(_, key)| !key.trim().is_empty())
            .map(|(instance, key)| {
                let value = header_value(&key, &format!("instance `{instance}`"))?;
                Ok((instance, value))
            })
            .collect::<Result<HashMap<_, _>, ClientError>>()?;
        // No key at all is allowed: `serve` starts with only EVOLUTION_URL, and
        // each send then fails as `Unauthorized` (logged loudly, kept in the outbox).

        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // A redirect would resend the `apikey` header to wherever it
            // points; Evolution never redirects its API routes.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ClientError::Http(err.to_string()))?;
        Ok(EvolutionClient {
            base,
            api_key,
            instance_keys,
            timeout,
            http,
        })
    }

    /// Sends a text message. `number` is what [`crate::webhook::Identity::reply_to`]
    /// gives: phone digits, or a full `...@lid` / `...@g.us` JID.
    pub async fn send_text(
        &self,
        instance: &str,
        number: &str,
        text: &str,
    ) -> Result<Sent, SendError> {
        let body = json!({ "number": number, "text": text });
        let (status, body) = self.post_json(["message", "sendText"], instance, &body).await?;
        classify(status, &body)
    }

    /// POSTs `body` to `{base}/{route}/{instance}` with the instance's key;
    /// the status and (at most [`MAX_BODY_BYTES`] of) the body.
    pub(crate) async fn post_json(
        &self,
        route: [&str; 2],
        instance: &str,
        body: &Value,
    ) -> Result<(StatusCode, Vec<u8>), SendError> {
        self.post_json_limited(route, instance, body, MAX_BODY_BYTES).await
    }

    /// [`Self::post_json`] reading at most `limit` bytes of the answer.
    pub(crate) async fn post_json_limited(
        &self,
        route: [&str; 2],
        instance: &str,
        body: &Value,
        limit: usize,
    ) -> Result<(StatusCode, Vec<u8>), SendError> {
        let Some(key) = self.instance_keys.get(instance).or(self.api_key.as_ref()) else {
            return Err(SendError::Unauthorized(format!(
                "no api key configured for instance `{}`",
                mask::truncate(instance, 64)
            )));
        };
        let mut url = self.base.clone();
        url.path_segments_mut()
            // Checked in `new`: http(s) URLs always have a path.
            .map_err(|()| SendError::Rejected {
                status: 0,
                reason: "base url cannot take a path".into(),
            })?
            .extend(route)
            .push(instance);
        let mut headers = HeaderMap::new();
        headers.insert("apikey", key.clone());

        let response = self
            .http
            .post(url)
            .headers(headers)
            .json(body)
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let body = read_body(response, limit)
            .await
            .map_err(|err| self.transport_error(&err))?;
        Ok((status, body))
    }

    /// Only a failure to connect proves the request never reached
    /// Evolution; after that, a lost answer leaves the outcome unknown.
    fn transport_error(&self, err: &reqwest::Error) -> SendError {
        if err.is_connect() {
            SendError::Retryable("could not connect to the evolution server".to_owned())
        } else if err.is_timeout() {
            SendError::Unanswered(format!("no answer within {} ms", self.timeout.as_millis()))
        } else if err.is_body() || err.is_decode() {
            SendError::Unanswered("connection dropped while reading the answer".to_owned())
        } else {
            SendError::Unanswered("connection dropped before an answer".to_owned())
        }
    }
}

impl fmt::Debug for EvolutionClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut instances: Vec<&String> = self.instance_keys.keys().collect();
        instances.sort();
        f.debug_struct("EvolutionClient")
            .field("base", &self.base.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("instance_keys", &instances)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Reads at most `limit` bytes of the body.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}

/// Maps a status and body to the send outcome.
pub(crate) fn classify(status: StatusCode, body: &[u8]) -> Result<Sent, SendError> {
    if status.is_success() {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let message_id = json
            .pointer("/key/id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        return Ok(Sent { message_id });
    }
    Err(classify_error(status, body))
}

/// Maps a non-2xx answer to what the caller should do next.
pub(crate) fn classify_error(status: StatusCode, body: &[u8]) -> SendError {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = status.as_u16();
    let message = json.pointer("/response/message").unwrap_or(&Value::Null);
    if code == 401 || code == 403 {
        return SendError::Unauthorized(format!(
            "status {code}: check the global or instance api key"
        ));
    }
    if code == 503 && json.get("code").and_then(Value::as_str) == Some("LICENSE_REQUIRED") {
        // 2.4.0+ until the server is activated. It will not fix itself, but
        // the message is not wrong either: keep it queued and say why.
        return SendError::Retryable(
            "evolution server is not licensed (503 license_required): activate it".to_owned(),
        );
    }
    if code == 429 {
        return SendError::Retryable("rate limited (429)".to_owned());
    }
    if code == 502 || code == 504 {
        // A gateway in front of Evolution: the request may have reached it.
        return SendError::Unanswered(format!("gateway error {code}: evolution's answer was lost"));
    }
    if status.is_server_error() || code == 408 {
        return SendError::Retryable(with_detail(
            &format!("server error {code}"),
            message,
        ));
    }
    // A send that fails inside Evolution is answered 400 with the error as
    // text (`["Error: Connection Closed"]` when the WhatsApp socket dropped):
    // the message is fine, the connection is not, so it is worth retrying.
    if code == 400 && mentions_connection_closed(message) {
        return SendError::Retryable(with_detail("server error 400", message));
    }
    if code == 400 && mentions_not_on_whatsapp(message) {
        return SendError::Rejected {
            status: code,
            reason: "number is not on whatsapp".to_owned(),
        };
    }
    let phrase = match code {
        404 => "instance or route not found",
        400 => "bad request",
        300..=399 => "unexpected redirect",
        _ => "refused",
    };
    SendError::Rejected {
        status: code,
        reason: with_detail(phrase, message),
    }
}

/// `"Connection Closed"` anywhere in the message's strings.
fn mentions_connection_closed(message: &Value) -> bool {
    let mut texts = Vec::new();
    collect_strings(message, &mut texts, 0);
    texts.iter().any(|text| text.to_lowercase().contains("connection closed"))
}

/// `[{"jid":..., "exists": false, "number":...}]`, possibly nested.
fn mentions_not_on_whatsapp(message: &Value) -> bool {
    match message {
        Value::Object(object) => object.get("exists") == Some(&Value::Bool(false)),
        Value::Array(items) => items.iter().any(mentions_not_on_whatsapp),
        _ => false,
    }
}

/// `phrase: <server message>` with the server message flattened, numbers
/// redacted and cut short; just `phrase` when there is nothing readable.
fn with_detail(phrase: &str, message: &Value) -> String {
    let mut texts = Vec::new();
    collect_strings(message, &mut texts, 0);
    let detail = texts.join("; ");
    let detail = mask::truncate(mask::redact_numbers(detail.trim()).as_str(), 120);
    if detail.is_empty() {
        phrase.to_owned()
    } else {
        format!("{phrase}: {}", detail.to_lowercase())
    }
}

fn collect_strings(value: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > 4 || out.len() >= 4 {
        return;
    }
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_strings(item, out, depth + 1)),
        // Objects (e.g. `{jid, exists, number}`) are data about the
        // recipient, not a reason: only their `message`, if any, is kept.
        Value::Object(object) => {
            if let Some(inner) = object.get("message") {
                collect_strings(inner, out, depth + 1);
            }
        }
        _ => {}
    }
}

fn header_value(key: &str, owner: &str) -> Result<HeaderValue, ClientError> {
    let mut value =
        HeaderValue::from_str(key.trim()).map_err(|_| ClientError::BadApiKey(owner.to_owned()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `https://user:pass@host` → `https://***@host`, for error messages.
fn redact_userinfo(url: &str) -> String {
    let shown = match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    };
    mask::truncate(&shown, 200)
}

/// reqwest is built with `rustls-no-provider`: the process-wide provider
/// must be installed before the first client is built. Another crate may
/// have installed one already, which is fine.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn success_reads_the_key_id_loosely() {
        let body = br#"{"key":{"remoteJid":"x","fromMe":true,"id":"3EB0ABC"},"status":"PENDING"}"#;
        assert_eq!(
            classify(status(201), body),
            Ok(Sent {
                message_id: Some("3EB0ABC".into())
            })
        );
        assert_eq!(
            classify(status(200), b"not json"),
            Ok(Sent { message_id: None })
        );
    }

    #[test]
    fn error_message_shapes_are_all_readable() {
        let cases = [
            (
                r#"{"response":{"message":"Connection Closed"}}"#,
                "server error 500: connection closed",
            ),
            (
                r#"{"response":{"message":["Error: Connection Closed"]}}"#,
                "server error 500: error: connection closed",
            ),
            (
                r#"{"response":{"message":[["instance requires property \"text\""]]}}"#,
                "server error 500: instance requires property \"text\"",
            ),
            (
                r#"{"response":{"message":[{"jid":"5511999990001@s.whatsapp.net"}]}}"#,
                "server error 500",
            ),
            ("", "server error 500"),
        ];
        for (body, expected) in cases {
            assert_eq!(
                classify(status(500), body.as_bytes()),
                Err(SendError::Retryable(expected.into())),
                "{body}"
            );
        }
    }

    #[test]
    fn not_on_whatsapp_is_rejected_without_the_number() {
        let body = br#"{"status":400,"error":"Bad Request","response":{"message":[{"jid":"5511999990001@s.whatsapp.net","exists":false,"number":"5511999990001"}]}}"#;
        let err = classify(status(400), body).unwrap_err();
        assert_eq!(
            err,
            SendError::Rejected {
                status: 400,
                reason: "number is not on whatsapp".into()
            }
        );
    }

    #[test]
    fn a_connection_closed_400_is_retried_and_other_400s_are_not() {
        for body in [
            r#"{"status":400,"error":"Bad Request","response":{"message":["Error: Connection Closed"]}}"#,
            r#"{"status":400,"error":"Bad Request","response":{"message":"Connection Closed"}}"#,
        ] {
            assert_eq!(
                classify(status(400), body.as_bytes()),
                Err(SendError::Retryable(
                    if body.contains("Error:") { "server error 400: error: connection closed" } else { "server error 400: connection closed" }.into()
                )),
                "{body}"
            );
        }
        let other = br#"{"status":400,"error":"Bad Request","response":{"message":["SessionError: No sessions"]}}"#;
        assert!(matches!(classify(status(400), other), Err(SendError::Rejected { status: 400, .. })));
    }

    #[test]
    fn numbers_echoed_in_messages_are_redacted() {
        let body = br#"{"response":{"message":["The number 5511999990001 is invalid"]}}"#;
        let err = classify(status(400), body).unwrap_err();
        assert_eq!(
            err.to_string(),
            "evolution rejected the send (400): bad request: the number <number> is invalid"
        );
    }

    #[test]
    fn other_statuses_map_to_the_right_outcome() {
        assert!(matches!(
            classify(status(401), b""),
            Err(SendError::Unauthorized(_))
        ));
        assert!(matches!(
            classify(status(403), b""),
            Err(SendError::Unauthorized(_))
        ));
        assert!(matches!(
            classify(status(429), b""),
            Err(SendError::Retryable(_))
        ));
        assert!(matches!(
            classify(status(408), b""),
            Err(SendError::Retryable(_))
        ));
        assert!(matches!(
            classify(
                status(404),
                br#"{"response":{"message":["The \"x\" instance does not exist"]}}"#
            ),
            Err(SendError::Rejected { status: 404, .. })
        ));
        assert!(matches!(
            classify(status(302), b""),
            Err(SendError::Rejected { status: 302, .. })
        ));
        assert!(matches!(
            classify(status(422), b""),
            Err(SendError::Rejected { status: 422, .. })
        ));
    }

    #[test]
    fn redact_userinfo_hides_credentials() {
        assert_eq!(
            redact_userinfo("https://u:p@evo.example.com/x"),
            "https://***@evo.example.com/x"
        );
        assert_eq!(
            redact_userinfo("https://evo.example.com"),
            "https://evo.example.com"
        );
    }
}
