//! Content: what a `messages.upsert` message holds (wrappers, content kinds,
//! timestamps), reduced to [`Content`].

use serde_json::{Map, Value};

use super::{Audio, Content, Media, MediaKind};
use crate::mask;


/// Wrappers whose `.message` holds the real content (Baileys'
/// `normalizeMessageContent`). `documentWithCaptionMessage` is rewritten by
/// Evolution 2.1+, but other transports and older versions still send it.
const WRAPPERS: &[&str] = &[
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "deviceSentMessage",
];

/// Siblings of the content key that say nothing about the type: metadata,
/// Evolution's additions, and the sender-key distribution that rides along
/// with a group member's first message.
const NOT_CONTENT: &[&str] = &[
    "messageContextInfo",
    "senderKeyDistributionMessage",
    "base64",
    "mediaUrl",
    "speechToText",
    "contextInfo",
];

/// Content that must never be answered.
const IGNORED: &[(&str, &str)] = &[
    ("reactionMessage", "reaction"),
    ("encReactionMessage", "reaction"),
    ("protocolMessage", "protocol"),
    ("editedMessage", "edited"),
    ("pollUpdateMessage", "poll update"),
    ("keepInChatMessage", "keep in chat"),
    ("pinInChatMessage", "pin"),
];

/// Content the flow cannot read, by a short kind name.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("stickerMessage", "sticker"),
    ("lottieStickerMessage", "sticker"),
    ("locationMessage", "location"),
    ("liveLocationMessage", "location"),
    ("contactMessage", "contact"),
    ("contactsArrayMessage", "contact"),
    ("ptvMessage", "video note"),
    ("pollCreationMessage", "poll"),
    ("pollCreationMessageV2", "poll"),
    ("pollCreationMessageV3", "poll"),
    ("eventMessage", "event"),
    ("groupInviteMessage", "group invite"),
    ("productMessage", "product"),
    ("orderMessage", "order"),
];

/// Bounds the wrapper unwrapping (real payloads nest two levels at most).
const MAX_WRAPPER_DEPTH: usize = 8;

pub(super) fn content_of(message: &Map<String, Value>) -> Option<Content> {
    // Evolution adds `speechToText` to the top-level `message`, next to
    // any wrapper.
    let speech = message.get("speechToText").and_then(speech_text);
    let message = unwrap_wrappers(message);
    let field = |name: &str| message.get(name);
    let nested =
        |name: &str, path: &[&str]| path.iter().try_fold(message.get(name)?, |v, k| v.get(k));

    if let Some(text) = field("conversation").and_then(non_blank) {
        return Some(Content::Text(text));
    }
    if let Some(text) = nested("extendedTextMessage", &["text"]).and_then(non_blank) {
        return Some(Content::Text(text));
    }
    for (name, kind) in [("imageMessage", MediaKind::Image), ("documentMessage", MediaKind::Document)] {
        if let Some(Value::Object(media)) = field(name) {
            let text = |key: &str| media.get(key).and_then(non_blank);
            return Some(Content::Media(Media {
                kind,
                mimetype: text("mimetype"),
                file_name: text("fileName"),
                caption: text("caption"),
                bytes: media.get("fileLength").and_then(timestamp),
            }));
        }
    }
    if let Some(Value::Object(audio)) = field("audioMessage") {
        return Some(Content::Audio(Audio {
            transcript: speech.or_else(|| message.get("speechToText").and_then(speech_text)),
            mimetype: audio.get("mimetype").and_then(non_blank),
            seconds: audio.get("seconds").and_then(integer),
            bytes: audio.get("fileLength").and_then(timestamp),
            voice_note: audio.get("ptt").and_then(Value::as_bool).unwrap_or(false),
        }));
    }
    for (name, kind) in [("videoMessage", "video")] {
        if field(name).is_some() {
            return Some(match nested(name, &["caption"]).and_then(non_blank) {
                Some(caption) => Content::Text(caption),
                None => Content::Unsupported(kind.to_owned()),
            });
        }
    }
    // For choices the id is preferred over the display text: ids are stable
    // across translations and edits of the menu.
    let choices: [(&str, &[&[&str]], &str); 3] = [
        (
            "listResponseMessage",
            &[&["singleSelectReply", "selectedRowId"], &["title"]],
            "list reply",
        ),
        (
            "buttonsResponseMessage",
            &[&["selectedButtonId"], &["selectedDisplayText"]],
            "button reply",
        ),
        (
            "templateButtonReplyMessage",
            &[&["selectedId"], &["selectedDisplayText"]],
            "button reply",
        ),
    ];
    for (name, paths, kind) in choices {
        if field(name).is_some() {
            let text = paths
                .iter()
                .find_map(|path| nested(name, path).and_then(non_blank));
            return Some(match text {
                Some(text) => Content::Text(text),
                None => Content::Unsupported(kind.to_owned()),
            });
        }
    }
    if field("interactiveResponseMessage").is_some() {
        let id = nested(
            "interactiveResponseMessage",
            &["nativeFlowResponseMessage", "paramsJson"],
        )
        .and_then(Value::as_str)
        .and_then(|params| serde_json::from_str::<Value>(params).ok())
        .and_then(|params| params.get("id").and_then(non_blank));
        let text = id.or_else(|| {
            nested("interactiveResponseMessage", &["body", "text"]).and_then(non_blank)
        });
        return Some(match text {
            Some(text) => Content::Text(text),
            None => Content::Unsupported("interactive reply".to_owned()),
        });
    }
    for (name, kind) in IGNORED {
        if field(name).is_some() {
            return Some(Content::Ignored((*kind).to_owned()));
        }
    }
    for (name, kind) in UNSUPPORTED {
        if field(name).is_some() {
            return Some(Content::Unsupported((*kind).to_owned()));
        }
    }
    // A content key we do not know (WhatsApp adds new ones regularly). An
    // empty `conversation` is not content.
    message
        .iter()
        .find(|(name, value)| {
            !NOT_CONTENT.contains(&name.as_str())
                && !value.is_null()
                && name.as_str() != "conversation"
        })
        .map(|(name, _)| {
            let kind = name.strip_suffix("Message").unwrap_or(name);
            Content::Unsupported(mask::truncate(kind, 48))
        })
}

/// `speechToText` is `"[audio] " + text`; Evolution writes the prefix even
/// when its transcription returned nothing (`[audio] null`).
fn speech_text(value: &Value) -> Option<String> {
    let text = value.as_str()?.trim();
    let text = text.strip_prefix("[audio]").unwrap_or(text).trim();
    match text {
        "" | "null" | "undefined" => None,
        text => Some(text.to_owned()),
    }
}

fn unwrap_wrappers(message: &Map<String, Value>) -> &Map<String, Value> {
    let mut current = message;
    for _ in 0..MAX_WRAPPER_DEPTH {
        let inner = WRAPPERS
            .iter()
            .find_map(|name| current.get(*name)?.get("message")?.as_object());
        match inner {
            Some(inner) => current = inner,
            None => break,
        }
    }
    current
}

pub(super) fn non_blank(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|text| !text.trim().is_empty())
        .map(str::to_owned)
}

/// An integer given as a JSON number or a numeric string.
pub(super) fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// `messageTimestamp`: a number in current versions, a string in old docs,
/// and a protobuf long (`{low, high, unsigned}`) when Baileys did not
/// convert it. Non-positive values are treated as absent.
pub(super) fn timestamp(value: &Value) -> Option<i64> {
    let secs = match value {
        Value::Object(long) => {
            let low = long.get("low")?.as_i64()?;
            let high = match long.get("high") {
                None => 0,
                Some(high) => i32::try_from(high.as_i64()?).ok()?,
            };
            // `low` is a signed 32-bit value in JS; reinterpret its bits.
            let low = i64::from(
                i32::try_from(low)
                    .map(|l| l as u32)
                    .or_else(|_| u32::try_from(low))
                    .ok()?,
            );
            (i64::from(high) << 32) | low
        }
        other => integer(other)?,
    };
    (secs > 0).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamp_accepts_number_string_and_long() {
        assert_eq!(timestamp(&json!(1762190525)), Some(1762190525));
        assert_eq!(timestamp(&json!("1717689097")), Some(1717689097));
        assert_eq!(timestamp(&json!(1762190525.0)), Some(1762190525));
        assert_eq!(
            timestamp(&json!({"low": 1762190525, "high": 0, "unsigned": true})),
            Some(1762190525)
        );
        // A low word above i32::MAX arrives negative from JS.
        assert_eq!(
            timestamp(&json!({"low": -1, "high": 0, "unsigned": true})),
            Some(4294967295)
        );
        assert_eq!(timestamp(&json!("soon")), None);
        assert_eq!(timestamp(&json!(0)), None);
        assert_eq!(timestamp(&json!(-5)), None);
        assert_eq!(timestamp(&json!({"low": 1, "high": 1e300})), None);
        assert_eq!(timestamp(&json!(null)), None);
    }

    #[test]
    fn wrappers_unwrap_recursively() {
        let message = json!({
            "ephemeralMessage": {"message": {
                "viewOnceMessageV2": {"message": {
                    "imageMessage": {"caption": "olha"}
                }}
            }},
            "messageContextInfo": {}
        });
        let content = content_of(message.as_object().unwrap());
        assert_eq!(content.as_ref().and_then(Content::as_text), Some("olha"));
        assert!(matches!(content, Some(Content::Media(Media { kind: MediaKind::Image, .. }))));
    }

    #[test]
    fn sender_key_distribution_does_not_hide_the_content() {
        let message = json!({
            "senderKeyDistributionMessage": {"groupId": "x", "axolotlSenderKeyDistributionMessage": {"0": 1}},
            "audioMessage": {"ptt": true},
        });
        assert_eq!(
            content_of(message.as_object().unwrap()),
            Some(Content::Audio(Audio { voice_note: true, ..Audio::default() }))
        );
    }

    #[test]
    fn unknown_content_key_is_unsupported_by_name() {
        let message = json!({"messageContextInfo": {}, "callLogMesssage": {}, "conversation": ""});
        assert_eq!(
            content_of(message.as_object().unwrap()),
            Some(Content::Unsupported("callLogMesssage".into()))
        );
        let message = json!({"newsletterAdminInviteMessage": {}});
        assert_eq!(
            content_of(message.as_object().unwrap()),
            Some(Content::Unsupported("newsletterAdminInvite".into()))
        );
        let only_meta = json!({"messageContextInfo": {}, "conversation": "  "});
        assert_eq!(content_of(only_meta.as_object().unwrap()), None);
    }

    #[test]
    fn speech_to_text_drops_evolutions_prefix_and_empty_results() {
        assert_eq!(speech_text(&json!("[audio] quero a segunda via")).as_deref(), Some("quero a segunda via"));
        assert_eq!(speech_text(&json!("sem prefixo")).as_deref(), Some("sem prefixo"));
        for empty in ["[audio] null", "[audio] undefined", "[audio] ", "  ", "[audio]"] {
            assert_eq!(speech_text(&json!(empty)), None, "{empty}");
        }
        assert_eq!(speech_text(&json!(42)), None);
    }

    #[test]
    fn interactive_reply_falls_back_to_body_text() {
        let bad_params = json!({"interactiveResponseMessage": {
            "body": {"text": "Confirmar"},
            "nativeFlowResponseMessage": {"name": "quick_reply", "paramsJson": "not json", "version": 3}
        }});
        assert_eq!(
            content_of(bad_params.as_object().unwrap()),
            Some(Content::Text("Confirmar".into()))
        );
    }
}
