//! Parsing of Evolution API v2 webhook bodies.
//!
//! The body is decoded in two stages, as Evolution's shapes vary by version
//! and by event: first the envelope (`event`, `instance`, `data` as a raw
//! [`Value`]), then `data` according to the normalised event name. Only the
//! fields needed to answer a customer are typed; everything else (bytes
//! fields serialised as `{"0":..}` objects, `{low,high}` longs, context info)
//! is never touched, so a shape change there cannot break parsing.
//!
//! Strictness is limited to what the server cannot work without: a body that
//! is not a JSON object, a missing `instance` or `event`, and, for
//! `messages.upsert`, a missing `data.key.id` or `data.key.remoteJid` are
//! [`ParseError`]s (answered with 400, which Evolution does not retry).
//! Unknown events and content are [`WebhookKind::Ignored`] or
//! [`Content::Unsupported`], never errors.
//!
//! Identity follows the PN/LID rules: every candidate JID in the key
//! (`remoteJid`, `remoteJidAlt`, `senderPn`, `previousRemoteJid`, ...) is
//! examined, the phone-number JID becomes the canonical id and the `@lid` is
//! kept as an alias, whichever field and order the Evolution version used.
//!
//! Layout: this file holds the types, the envelope and `messages.upsert`'s
//! key; `content` reduces the message to a [`Content`] (wrappers, kinds,
//! timestamps) and `identity` picks the customer's JIDs.

use std::fmt;

use serde_json::{Map, Value};

use crate::mask;

mod content;
mod identity;

use content::{content_of, integer, non_blank, timestamp};
use identity::{Jid, identity_from, participant_identity};

/// One webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The Evolution instance name (not its UUID).
    pub instance: String,
    /// The event name, normalised by [`normalise_event`] (`messages.upsert`).
    pub event: String,
    pub kind: WebhookKind,
    /// The Chatwoot conversation Evolution's Chatwoot integration mirrored
    /// the message into (`data.chatwootConversationId`, `data.chatwootInboxId`;
    /// Baileys instances only).
    pub chatwoot: Option<ChatwootRef>,
}

/// Where Evolution's Chatwoot integration put a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatwootRef {
    pub conversation_id: i64,
    pub inbox_id: Option<i64>,
}

/// What the server should do with a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookKind {
    /// `messages.upsert` from a customer (`fromMe = false`), in a 1:1 chat,
    /// a group or a status broadcast (see [`Incoming::chat`]).
    Message(Incoming),
    /// `messages.upsert` with `fromMe = true`: a human typed on the business
    /// phone or WhatsApp Web (the takeover signal). API sends never arrive
    /// here: they come as `send.message`. In a 1:1 chat, `sender` is the
    /// customer the operator wrote to, i.e. the conversation to pause.
    OperatorMessage(Incoming),
    /// `send.message`: a message sent through Evolution's API: ours (an
    /// echo of a reply), or an agent's reply written in Chatwoot, which
    /// Evolution's Chatwoot integration sends this way. Only the record of
    /// our own sends' ids tells them apart.
    ApiSend(Incoming),
    /// `connection.update`: `state` is `open`, `connecting`, `close` or
    /// `refused`; `close` with status reason 401 means logged out.
    Connection {
        state: String,
        status_reason: Option<i64>,
    },
    /// Acknowledged but not acted upon.
    Ignored { reason: IgnoreReason },
}

/// A message from `messages.upsert`.
#[derive(Clone, PartialEq, Eq)]
pub struct Incoming {
    /// `key.id`: the WhatsApp message id (deduplication key, with the chat).
    pub message_id: String,
    pub chat: Chat,
    /// The contact: the chat's counterpart in 1:1 chats, the author
    /// (`participant`) in groups and status broadcasts.
    pub sender: Identity,
    /// The sender's display name when WhatsApp gave one. Evolution fills in
    /// `"Você"` for `fromMe` and the participant's number when there is none.
    pub push_name: Option<String>,
    /// `messageTimestamp` in Unix seconds (number, numeric string or long).
    pub timestamp_secs: Option<i64>,
    pub content: Content,
}

/// Where a message was posted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Chat {
    /// A 1:1 chat with [`Incoming::sender`].
    Direct,
    /// A group, by its full JID (`1203...@g.us`).
    Group { jid: String },
    /// A contact's status update (`status@broadcast`): never to be answered.
    StatusBroadcast,
}

/// A contact's WhatsApp identity, normalised across Evolution versions.
///
/// At least one of `phone` and `lid` is set by [`parse`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Digits of the `@s.whatsapp.net` JID when known: the canonical id.
    pub phone: Option<String>,
    /// Digits of the `@lid` JID when known: an alias of the same contact.
    pub lid: Option<String>,
    /// What to put in `sendText`'s `number`: the phone digits when known,
    /// else the full `<lid>@lid` JID (which may be answered `exists:false`).
    pub reply_to: String,
}

impl Identity {
    /// The id to key conversations on: phone digits, else LID digits.
    pub fn canonical(&self) -> &str {
        self.phone
            .as_deref()
            .or(self.lid.as_deref())
            .unwrap_or(&self.reply_to)
    }
}

/// What the customer sent, reduced to what a text-driven flow can use.
#[derive(Clone, PartialEq, Eq)]
pub enum Content {
    /// Text, or the id of a choice: `conversation`, `extendedTextMessage.text`,
    /// a video caption, a list reply (`selectedRowId`, else
    /// its title), a button or template reply (id, else display text), an
    /// interactive reply (`paramsJson` id, else body text).
    Text(String),
    /// `audioMessage` (a voice note or an audio file), with the text of
    /// Evolution's OpenAI integration (`message.speechToText`) when it ran.
    Audio(Audio),
    /// `imageMessage` or `documentMessage`: a reference to the file (the
    /// bytes stay with Evolution, fetched by message id when needed).
    Media(Media),
    /// Content the flow cannot read (`"audio"`, `"sticker"`, `"image"`
    /// without caption, `"location"`, ...): answer with a "please type" hint.
    Unsupported(String),
    /// Content that must never be answered (`"reaction"`, `"protocol"`,
    /// `"edited"`, `"poll update"`, ...).
    Ignored(String),
}

/// A voice note or audio file.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Audio {
    /// `message.speechToText` without Evolution's `[audio] ` prefix; `None`
    /// when absent or when Evolution's transcription produced nothing
    /// (`[audio] null`, `[audio] undefined`, blank).
    pub transcript: Option<String>,
    /// `audioMessage.mimetype` (`audio/ogg; codecs=opus` for voice notes).
    pub mimetype: Option<String>,
    /// `audioMessage.seconds`.
    pub seconds: Option<i64>,
    /// `audioMessage.fileLength` in bytes (a number, string or long).
    pub bytes: Option<i64>,
    /// `audioMessage.ptt`: recorded in the chat rather than a forwarded file.
    pub voice_note: bool,
}

/// Which kind of file a [`Media`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Document,
}

impl MediaKind {
    /// `image` or `document`: Evolution's `mediatype` word.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Document => "document",
        }
    }
}

/// An image or document the customer sent, as a reference.
#[derive(Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: MediaKind,
    /// `mimetype` (`image/jpeg`, `application/pdf` ...).
    pub mimetype: Option<String>,
    /// `documentMessage.fileName` (images have none).
    pub file_name: Option<String>,
    /// `caption`, when the customer wrote one.
    pub caption: Option<String>,
    /// `fileLength` in bytes.
    pub bytes: Option<i64>,
}

impl Content {
    /// The text, for [`Content::Text`]; the transcript of an [`Content::Audio`];
    /// the caption of a [`Content::Media`].
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text(text) => Some(text),
            Content::Audio(audio) => audio.transcript.as_deref(),
            Content::Media(media) => media.caption.as_deref(),
            _ => None,
        }
    }
}

/// Why a webhook was acknowledged without action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    /// `send.message`: our own API send echoed back.
    OwnApiSend,
    /// `messages.update`: a delivery/read receipt.
    Receipt,
    /// Any other event (the normalised name).
    UnknownEvent(String),
    /// `messages.upsert` whose `message` is missing or has no content key.
    NoContent,
    /// `messages.upsert` in a chat that is neither 1:1, group nor status
    /// (newsletters, broadcast lists, ...).
    UnsupportedChat,
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoreReason::OwnApiSend => f.write_str("own api send"),
            IgnoreReason::Receipt => f.write_str("delivery receipt"),
            IgnoreReason::UnknownEvent(event) => {
                write!(f, "unhandled event {}", mask::truncate(event, 64))
            }
            IgnoreReason::NoContent => f.write_str("message without content"),
            IgnoreReason::UnsupportedChat => f.write_str("unsupported chat type"),
        }
    }
}

/// The longest `data.key.id` accepted. The id is kept for good in the inbox
/// (deduplication) and the outbox; WhatsApp's ids are 16 to 32 characters,
/// and nothing Evolution sends comes near 64.
pub const MAX_MESSAGE_ID_BYTES: usize = 128;

/// Why a body was refused. Messages name the field, never its value, so they
/// can be logged and returned in a 400 without leaking customer data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all; the detail is the error category and position only.
    #[error("body is not valid json: {0}")]
    NotJson(String),
    #[error("body is not a json object")]
    NotObject,
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}` must be {expected}")]
    BadField {
        field: &'static str,
        expected: &'static str,
    },
}

/// `MESSAGES_UPSERT`, `messages.upsert` and ` Messages_Upsert ` all become
/// `messages.upsert`: lowercase, `_` replaced by `.`, trimmed. Hyphens stay
/// (`group-participants.update`).
pub fn normalise_event(name: &str) -> String {
    name.trim().to_lowercase().replace('_', ".")
}

/// Parses one webhook body. See the module docs for what is an error.
pub fn parse(body: &[u8]) -> Result<Webhook, ParseError> {
    let root: Value = serde_json::from_slice(body).map_err(not_json)?;
    let Value::Object(mut root) = root else {
        return Err(ParseError::NotObject);
    };
    let event = normalise_event(&required_str(&root, "event", "event")?);
    let instance = required_str(&root, "instance", "instance")?;
    let data = root.remove("data");
    let kind = match event.as_str() {
        "messages.upsert" => decode_upsert(data.as_ref())?,
        "send.message" => match decode_upsert(data.as_ref())? {
            WebhookKind::OperatorMessage(incoming) | WebhookKind::Message(incoming) => WebhookKind::ApiSend(incoming),
            other => other,
        },
        "messages.update" => WebhookKind::Ignored {
            reason: IgnoreReason::Receipt,
        },
        "connection.update" => decode_connection(data.as_ref())?,
        other => WebhookKind::Ignored {
            reason: IgnoreReason::UnknownEvent(other.to_owned()),
        },
    };
    let chatwoot = data.as_ref().and_then(chatwoot_ref);
    Ok(Webhook {
        instance,
        event,
        kind,
        chatwoot,
    })
}

/// `chatwootConversationId` (and `chatwootInboxId`) when Evolution set them:
/// numbers, or numeric strings; anything else is left out.
fn chatwoot_ref(data: &Value) -> Option<ChatwootRef> {
    let conversation_id = data.get("chatwootConversationId").and_then(integer).filter(|id| *id > 0)?;
    let inbox_id = data.get("chatwootInboxId").and_then(integer).filter(|id| *id > 0);
    Some(ChatwootRef { conversation_id, inbox_id })
}

// serde_json's messages can quote input ("invalid type: string \"...\""), so
// only the category and position are kept.
fn not_json(err: serde_json::Error) -> ParseError {
    use serde_json::error::Category;
    let what = match err.classify() {
        Category::Eof => "unexpected end of input",
        Category::Syntax => "syntax error",
        Category::Data => "invalid data",
        Category::Io => "read error",
    };
    ParseError::NotJson(format!(
        "{what} at line {} column {}",
        err.line(),
        err.column()
    ))
}

fn required_str(
    object: &Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<String, ParseError> {
    match object.get(key) {
        None | Some(Value::Null) => Err(ParseError::MissingField(field)),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.clone()),
        Some(Value::String(_)) => Err(ParseError::BadField {
            field,
            expected: "a non-empty string",
        }),
        Some(_) => Err(ParseError::BadField {
            field,
            expected: "a string",
        }),
    }
}

fn required_object<'a>(
    value: Option<&'a Value>,
    field: &'static str,
) -> Result<&'a Map<String, Value>, ParseError> {
    match value {
        None | Some(Value::Null) => Err(ParseError::MissingField(field)),
        Some(Value::Object(object)) => Ok(object),
        Some(_) => Err(ParseError::BadField {
            field,
            expected: "an object",
        }),
    }
}

fn decode_connection(data: Option<&Value>) -> Result<WebhookKind, ParseError> {
    let data = required_object(data, "data")?;
    let state = required_str(data, "state", "data.state")?;
    Ok(WebhookKind::Connection {
        state,
        status_reason: data.get("statusReason").and_then(integer),
    })
}

fn decode_upsert(data: Option<&Value>) -> Result<WebhookKind, ParseError> {
    let data = required_object(data, "data")?;
    let key = required_object(data.get("key"), "data.key")?;
    let message_id = required_str(key, "id", "data.key.id")?;
    if message_id.len() > MAX_MESSAGE_ID_BYTES {
        return Err(ParseError::BadField {
            field: "data.key.id",
            expected: "at most 128 bytes (Evolution's message ids are under 64 characters)",
        });
    }
    let remote_jid = required_str(key, "remoteJid", "data.key.remoteJid")?;
    let from_me = match key.get("fromMe") {
        // Always present in practice; a missing flag is read as a customer
        // message rather than refusing the body.
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) if text == "true" => true,
        Some(Value::String(text)) if text == "false" => false,
        Some(_) => {
            return Err(ParseError::BadField {
                field: "data.key.fromMe",
                expected: "a boolean",
            });
        }
    };

    let remote = Jid::split(&remote_jid);
    let (chat, sender) = match remote.server.as_str() {
        "g.us" => (
            Chat::Group {
                jid: remote_jid.trim().to_owned(),
            },
            participant_identity(key)?,
        ),
        "broadcast" if remote.user == "status" => {
            (Chat::StatusBroadcast, participant_identity(key)?)
        }
        "s.whatsapp.net" | "c.us" | "lid" => {
            // Every field any version used for the contact's other JID:
            // 2.3.5+ `remoteJidAlt`, ≤2.3.0 `senderPn` (Baileys 6.7 also had
            // `senderLid`), 2.3.1–2.3.4 `previousRemoteJid`.
            let candidates = [
                "remoteJid",
                "remoteJidAlt",
                "senderPn",
                "senderLid",
                "previousRemoteJid",
            ];
            let identity = identity_from(key, &candidates).ok_or(ParseError::BadField {
                field: "data.key.remoteJid",
                expected: "a jid with a numeric user part",
            })?;
            (Chat::Direct, identity)
        }
        "" => {
            return Err(ParseError::BadField {
                field: "data.key.remoteJid",
                expected: "a jid (user@server)",
            });
        }
        // Newsletters, broadcast lists, hosted or future JID types: nothing
        // the bot can answer in a conversation.
        _ => {
            return Ok(WebhookKind::Ignored {
                reason: IgnoreReason::UnsupportedChat,
            });
        }
    };

    let content = match data.get("message") {
        None | Some(Value::Null) => None,
        Some(Value::Object(message)) => content_of(message),
        Some(_) => {
            return Err(ParseError::BadField {
                field: "data.message",
                expected: "an object",
            });
        }
    };
    let Some(content) = content else {
        return Ok(WebhookKind::Ignored {
            reason: IgnoreReason::NoContent,
        });
    };

    let incoming = Incoming {
        message_id,
        chat,
        sender,
        push_name: data.get("pushName").and_then(non_blank),
        timestamp_secs: data.get("messageTimestamp").and_then(timestamp),
        content,
    };
    Ok(if from_me {
        WebhookKind::OperatorMessage(incoming)
    } else {
        WebhookKind::Message(incoming)
    })
}


impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("phone", &self.phone.as_deref().map(mask::mask_id))
            .field("lid", &self.lid.as_deref().map(mask::mask_id))
            .field("reply_to", &mask_jid(&self.reply_to))
            .finish()
    }
}

impl fmt::Debug for Chat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chat::Direct => f.write_str("Direct"),
            // Old group ids embed the creator's phone number (`<pn>-<ts>@g.us`).
            Chat::Group { jid } => f
                .debug_struct("Group")
                .field("jid", &mask_jid(jid))
                .finish(),
            Chat::StatusBroadcast => f.write_str("StatusBroadcast"),
        }
    }
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Text(text) => write!(f, "Text(<{} chars>)", text.chars().count()),
            Content::Audio(audio) => f
                .debug_struct("Audio")
                .field("transcript", &audio.transcript.as_ref().map(|text| format!("<{} chars>", text.chars().count())))
                .field("mimetype", &audio.mimetype)
                .field("seconds", &audio.seconds)
                .field("voice_note", &audio.voice_note)
                .finish(),
            Content::Media(media) => f
                .debug_struct("Media")
                .field("kind", &media.kind)
                .field("mimetype", &media.mimetype)
                .field("file_name", &media.file_name.as_ref().map(|_| "<set>"))
                .field("caption", &media.caption.as_ref().map(|text| format!("<{} chars>", text.chars().count())))
                .finish(),
            Content::Unsupported(kind) => f.debug_tuple("Unsupported").field(kind).finish(),
            Content::Ignored(kind) => f.debug_tuple("Ignored").field(kind).finish(),
        }
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("message_id", &self.message_id)
            .field("chat", &self.chat)
            .field("sender", &self.sender)
            .field("push_name", &self.push_name.as_ref().map(|_| "<set>"))
            .field("timestamp_secs", &self.timestamp_secs)
            .field("content", &self.content)
            .finish()
    }
}

/// Masks the digits of a JID's user part, keeping the server.
fn mask_jid(jid: &str) -> String {
    match jid.rsplit_once('@') {
        Some((user, server)) => format!("{}@{server}", mask::mask_id(user)),
        None => mask::mask_id(jid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_event_handles_config_style_names() {
        assert_eq!(normalise_event("MESSAGES_UPSERT"), "messages.upsert");
        assert_eq!(normalise_event(" send.message "), "send.message");
        assert_eq!(
            normalise_event("GROUP_PARTICIPANTS_UPDATE"),
            "group.participants.update"
        );
        assert_eq!(
            normalise_event("group-participants.update"),
            "group-participants.update"
        );
    }

    #[test]
    fn debug_output_masks_customer_data() {
        let incoming = Incoming {
            message_id: "ABC".into(),
            chat: Chat::Group {
                jid: "5511999990001-1600000000@g.us".into(),
            },
            sender: Identity {
                phone: Some("5511999990001".into()),
                lid: Some("204837561234567".into()),
                reply_to: "5511999990001".into(),
            },
            push_name: Some("Ana Souza".into()),
            timestamp_secs: Some(1),
            content: Content::Text("meu cpf é 12345678900".into()),
        };
        let debug = format!("{incoming:?}");
        for secret in [
            "5511999990001",
            "204837561234567",
            "Ana",
            "cpf",
            "12345678900",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("5511*******01"), "{debug}");
    }
}
