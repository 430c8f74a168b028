//! Chatwoot, where the agents answer: the settings, the REST client the
//! handoff uses, and the webhook payloads that give a conversation back.
//!
//! Calls (`api_access_token` header, paths under `/api/v1/accounts/{a}`):
//! `GET contacts/search?q=`, `GET contacts/{id}/conversations`,
//! `POST conversations/{c}/toggle_status`, `POST conversations/{c}/assignments`,
//! `POST conversations/{c}/labels`, `POST conversations/{c}/messages`
//! (a private note). Shapes: `tests/fixtures/chatwoot/`.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

/// One Chatwoot account, as an instance reaches it.
#[derive(Clone)]
pub struct Account {
    pub url: String,
    pub account_id: i64,
    pub token: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account").field("url", &self.url).field("account_id", &self.account_id).field("token", &"<redacted>").finish()
    }
}

/// The Chatwoot settings: off when `CHATWOOT_URL` is unset.
#[derive(Clone, Debug, Default)]
pub struct ChatwootConfig {
    /// The account every instance uses unless it has its own.
    pub default: Option<Account>,
    /// Per instance (`CHATWOOT_ACCOUNT_IDS`, `CHATWOOT_TOKENS`).
    pub instances: HashMap<String, Account>,
    /// `CHATWOOT_WEBHOOK_SECRET`: the last path segment of `POST /webhooks/chatwoot/{secret}`.
    pub webhook_secret: Option<String>,
    /// `CHATWOOT_TEAM_ID`: the team a handoff is assigned to.
    pub team_id: Option<i64>,
    /// `CHATWOOT_LABELS`: labels a handoff adds.
    pub labels: Vec<String>,
}

impl ChatwootConfig {
    /// The account for `instance`, if Chatwoot is on for it.
    pub fn account(&self, instance: &str) -> Option<&Account> {
        self.instances.get(instance).or(self.default.as_ref())
    }

    pub fn is_on(&self) -> bool {
        self.default.is_some() || !self.instances.is_empty()
    }

    /// Reads the CHATWOOT_* settings. A setting present but blank is an error.
    pub fn from_env(problems: &mut Vec<String>) -> ChatwootConfig {
        let get = |name: &str, problems: &mut Vec<String>| match crate::config::var(name) {
            Ok(Some(value)) if value.trim().is_empty() => {
                problems.push(format!("{name} is set but blank: give it a value or unset it"));
                None
            }
            Ok(value) => value.map(|value| value.trim().to_owned()),
            Err(problem) => {
                problems.push(problem);
                None
            }
        };
        let number = |name: &str, text: &str, problems: &mut Vec<String>| match text.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => {
                problems.push(format!("{name} '{text}' must be a positive whole number (Chatwoot's id)"));
                None
            }
        };
        let pairs = |name: &str, problems: &mut Vec<String>| -> Vec<(String, String)> {
            let Some(text) = get(name, problems) else { return Vec::new() };
            let mut out = Vec::new();
            for entry in text.split(',').map(str::trim) {
                match entry.split_once('=') {
                    Some((instance, value)) if !instance.trim().is_empty() && !value.trim().is_empty() => out.push((instance.trim().to_owned(), value.trim().to_owned())),
                    Some((instance, _)) if !instance.trim().is_empty() => problems.push(format!("{name}: the entry for instance '{}' is blank", instance.trim())),
                    _ => problems.push(format!("{name}: every entry must look like instance=value")),
                }
            }
            out
        };
        let url = get("CHATWOOT_URL", problems);
        let account_id = get("CHATWOOT_ACCOUNT_ID", problems).and_then(|text| number("CHATWOOT_ACCOUNT_ID", &text, problems));
        let token = get("CHATWOOT_TOKEN", problems);
        let account_ids = pairs("CHATWOOT_ACCOUNT_IDS", problems);
        let tokens = pairs("CHATWOOT_TOKENS", problems);
        let mut config = ChatwootConfig {
            webhook_secret: get("CHATWOOT_WEBHOOK_SECRET", problems),
            team_id: get("CHATWOOT_TEAM_ID", problems).and_then(|text| number("CHATWOOT_TEAM_ID", &text, problems)),
            labels: get("CHATWOOT_LABELS", problems).map(|text| text.split(',').map(|label| label.trim().to_owned()).filter(|label| !label.is_empty()).collect()).unwrap_or_default(),
            ..ChatwootConfig::default()
        };
        let Some(url) = url else {
            let set: Vec<&str> = [("CHATWOOT_ACCOUNT_ID", account_id.is_some()), ("CHATWOOT_TOKEN", token.is_some()), ("CHATWOOT_TOKENS", !tokens.is_empty())]
                .iter()
                .filter_map(|(name, set)| set.then_some(*name))
                .collect();
            if !set.is_empty() {
                problems.push(format!("{} is set but CHATWOOT_URL is not: set CHATWOOT_URL (e.g. https://chatwoot.example.com) or unset them", set.join(", ")));
            }
            return config;
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.push(format!("CHATWOOT_URL '{url}' must start with http:// or https://"));
            return config;
        }
        let url = url.trim_end_matches('/').to_owned();
        match (account_id, token.clone()) {
            (Some(account_id), Some(token)) => config.default = Some(Account { url: url.clone(), account_id, token }),
            (None, None) => {}
            (None, Some(_)) => problems.push("CHATWOOT_TOKEN is set but CHATWOOT_ACCOUNT_ID is not: Chatwoot needs both".to_owned()),
            (Some(_), None) => problems.push("CHATWOOT_ACCOUNT_ID is set but CHATWOOT_TOKEN is not: Chatwoot needs both".to_owned()),
        }
        let account_ids: HashMap<String, i64> = account_ids.into_iter().filter_map(|(instance, text)| number("CHATWOOT_ACCOUNT_IDS", &text, problems).map(|id| (instance, id))).collect();
        let tokens: HashMap<String, String> = tokens.into_iter().collect();
        for instance in account_ids.keys().chain(tokens.keys()) {
            if config.instances.contains_key(instance) {
                continue;
            }
            let account_id = account_ids.get(instance).copied().or(account_id);
            let token = tokens.get(instance).cloned().or(token.clone());
            match (account_id, token) {
                (Some(account_id), Some(token)) => {
                    config.instances.insert(instance.clone(), Account { url: url.clone(), account_id, token });
                }
                _ => problems.push(format!("instance '{instance}' has a Chatwoot account id or token but not both (CHATWOOT_ACCOUNT_IDS, CHATWOOT_TOKENS)")),
            }
        }
        if !config.is_on() {
            problems.push("CHATWOOT_URL is set but no account is: set CHATWOOT_ACCOUNT_ID and CHATWOOT_TOKEN".to_owned());
        }
        config
    }
}

/// Why a Chatwoot call did not do its work.
#[derive(Debug, thiserror::Error)]
pub enum ChatwootError {
    /// Worth trying again later: no connection, timeout, 5xx, 429, or the
    /// contact or conversation not there yet (Evolution creates them as it
    /// mirrors messages).
    #[error("{0}")]
    Retry(String),
    /// Will not work by trying again (401, 403, 400 ...).
    #[error("{0}")]
    Refused(String),
}

/// The HTTP client. Built once; one per process.
#[derive(Clone, Debug)]
pub struct ChatwootClient {
    http: reqwest::Client,
}

impl ChatwootClient {
    pub fn new(timeout: Duration) -> Result<ChatwootClient, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(timeout).build().map_err(|err| format!("cannot build the Chatwoot client: {err}"))?;
        Ok(ChatwootClient { http })
    }

    async fn call(&self, account: &Account, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, ChatwootError> {
        let url = format!("{}/api/v1/accounts/{}/{path}", account.url, account.account_id);
        let mut request = self.http.request(method.clone(), &url).header("api_access_token", &account.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let response = request.send().await.map_err(|err| ChatwootError::Retry(format!("chatwoot {what}: {}", if err.is_timeout() { "timed out" } else { "no connection" })))?;
        let status = response.status();
        let text = response.text().await.map_err(|_| ChatwootError::Retry(format!("chatwoot {what}: the answer was cut")))?;
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        let problem = format!("chatwoot {what}: HTTP {}", status.as_u16());
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 404 || status.as_u16() == 408 {
            Err(ChatwootError::Retry(problem))
        } else {
            Err(ChatwootError::Refused(problem))
        }
    }

    /// The contact's open (or pending) conversation, found by its phone
    /// number: contact search, then the contact's conversations. For Cloud
    /// API instances, whose webhooks do not name the conversation.
    pub async fn find_conversation(&self, account: &Account, phone: &str) -> Result<i64, ChatwootError> {
        let found = self.call(account, reqwest::Method::GET, &format!("contacts/search?q={phone}"), None).await?;
        let contacts = found["payload"].as_array().cloned().unwrap_or_default();
        let wanted = format!("+{phone}");
        let contact = contacts
            .iter()
            .find(|contact| contact["phone_number"].as_str() == Some(wanted.as_str()))
            .or_else(|| contacts.iter().find(|contact| contact["identifier"].as_str().is_some_and(|id| id.split('@').next() == Some(phone))))
            .and_then(|contact| contact["id"].as_i64())
            .ok_or_else(|| ChatwootError::Retry("chatwoot has no contact with this number yet".to_owned()))?;
        let listed = self.call(account, reqwest::Method::GET, &format!("contacts/{contact}/conversations"), None).await?;
        let conversations = listed["payload"].as_array().cloned().unwrap_or_default();
        conversations
            .iter()
            .filter(|conversation| conversation["status"].as_str() != Some("resolved"))
            .chain(conversations.iter())
            .max_by_key(|conversation| (conversation["status"].as_str() != Some("resolved"), conversation["last_activity_at"].as_i64().unwrap_or(0)))
            .and_then(|conversation| conversation["id"].as_i64())
            .ok_or_else(|| ChatwootError::Retry("chatwoot has no conversation for this contact yet".to_owned()))
    }

    /// `open`, or `pending` (outside business hours).
    pub async fn set_status(&self, account: &Account, conversation: i64, status: &str) -> Result<(), ChatwootError> {
        self.call(account, reqwest::Method::POST, &format!("conversations/{conversation}/toggle_status"), Some(json!({ "status": status }))).await.map(drop)
    }

    pub async fn assign_team(&self, account: &Account, conversation: i64, team: i64) -> Result<(), ChatwootError> {
        self.call(account, reqwest::Method::POST, &format!("conversations/{conversation}/assignments"), Some(json!({ "team_id": team }))).await.map(drop)
    }

    /// Adds `labels` to the conversation's (Chatwoot's endpoint sets the
    /// whole list, so the current ones are read first).
    pub async fn add_labels(&self, account: &Account, conversation: i64, labels: &[String]) -> Result<(), ChatwootError> {
        let current = self.call(account, reqwest::Method::GET, &format!("conversations/{conversation}/labels"), None).await?;
        let mut all: Vec<String> = current["payload"].as_array().map(|list| list.iter().filter_map(|label| label.as_str().map(str::to_owned)).collect()).unwrap_or_default();
        for label in labels {
            if !all.contains(label) {
                all.push(label.clone());
            }
        }
        self.call(account, reqwest::Method::POST, &format!("conversations/{conversation}/labels"), Some(json!({ "labels": all }))).await.map(drop)
    }

    /// A private note: the agents see it, the customer does not.
    pub async fn private_note(&self, account: &Account, conversation: i64, text: &str) -> Result<(), ChatwootError> {
        let body = json!({ "content": text, "message_type": "outgoing", "private": true });
        self.call(account, reqwest::Method::POST, &format!("conversations/{conversation}/messages"), Some(body)).await.map(drop)
    }
}

/// What a Chatwoot webhook asks of us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Given {
    /// The conversation was resolved: give the contact back to the bot.
    Resolved { conversation: i64, phone: Option<String> },
    /// Anything else (other events, other statuses).
    Nothing(String),
}

/// Reads a Chatwoot webhook body (`conversation_status_changed`,
/// `conversation_updated`: the conversation's `webhook_data` plus `event`
/// and `changed_attributes`). A `conversation_updated` counts only when it
/// changed the status (or does not say what it changed).
pub fn parse_webhook(body: &[u8]) -> Result<Given, String> {
    let value: Value = serde_json::from_slice(body).map_err(|err| format!("body is not valid json (line {} column {})", err.line(), err.column()))?;
    let event = value["event"].as_str().ok_or("missing field `event`")?;
    if event != "conversation_status_changed" && event != "conversation_updated" {
        return Ok(Given::Nothing(format!("event {} is not acted on", switchyard_engine::mask::truncate(event, 64))));
    }
    let status = value["status"].as_str().ok_or("missing field `status`")?;
    if status != "resolved" {
        return Ok(Given::Nothing(format!("status {} is not resolved", switchyard_engine::mask::truncate(status, 32))));
    }
    if event == "conversation_updated" {
        let changed = &value["changed_attributes"];
        let names_status = changed.as_array().is_some_and(|list| list.iter().any(|entry| entry.get("status").is_some()));
        if changed.is_array() && !names_status {
            return Ok(Given::Nothing("conversation_updated without a status change".to_owned()));
        }
    }
    let conversation = value["id"].as_i64().filter(|id| *id > 0).ok_or("field `id` must be the conversation's id (a positive number)")?;
    let sender = &value["meta"]["sender"];
    let phone = sender["identifier"]
        .as_str()
        .and_then(|jid| jid.split('@').next())
        .filter(|user| !user.is_empty() && user.bytes().all(|byte| byte.is_ascii_digit()))
        .or_else(|| sender["phone_number"].as_str().map(|phone| phone.trim_start_matches('+')).filter(|digits| !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit())))
        .map(str::to_owned);
    Ok(Given::Resolved { conversation, phone })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_resolved_status_gives_back() {
        let resolved = br#"{"event":"conversation_status_changed","id":7,"status":"resolved","meta":{"sender":{"identifier":"5511988887777@s.whatsapp.net","phone_number":"+5511988887777"}}}"#;
        assert_eq!(parse_webhook(resolved).unwrap(), Given::Resolved { conversation: 7, phone: Some("5511988887777".to_owned()) });
        let open = br#"{"event":"conversation_status_changed","id":7,"status":"open"}"#;
        assert!(matches!(parse_webhook(open).unwrap(), Given::Nothing(_)));
        let labels_only = br#"{"event":"conversation_updated","id":7,"status":"resolved","changed_attributes":[{"label_list":{"previous_value":[],"current_value":["x"]}}]}"#;
        assert!(matches!(parse_webhook(labels_only).unwrap(), Given::Nothing(_)));
        let by_phone = br#"{"event":"conversation_updated","id":7,"status":"resolved","changed_attributes":[{"status":{"previous_value":"open","current_value":"resolved"}}],"meta":{"sender":{"identifier":null,"phone_number":"+5511988887777"}}}"#;
        assert_eq!(parse_webhook(by_phone).unwrap(), Given::Resolved { conversation: 7, phone: Some("5511988887777".to_owned()) });
        assert!(parse_webhook(b"[").unwrap_err().starts_with("body is not valid json"));
        assert_eq!(parse_webhook(br#"{"event":"conversation_updated","status":"resolved"}"#).unwrap_err(), "field `id` must be the conversation's id (a positive number)");
    }
}
