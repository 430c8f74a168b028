//! Asking Evolution whether a text went out: `POST /chat/findMessages/{instance}`.
//!
//! A send whose outcome is unknown (no answer within the timeout, the
//! connection dropped after the request was written, a process that stopped
//! mid-send) may have been delivered. Evolution 2.3.6 has no idempotency key,
//! but it stores every message it sends (`DATABASE_SAVE_DATA_NEW_MESSAGE`,
//! on by default) before answering, so before sending such a text again the
//! caller looks for it among the chat's own (`fromMe`) messages of the send
//! window.
//!
//! Request (2.3.6 `chat.router.ts` `findMessages`, schema
//! `messageValidateSchema`; query in `BaileysStartupService.fetchMessages`):
//!
//! ```json
//! {"where": {"key": {"remoteJid": "5511...@s.whatsapp.net", "fromMe": true},
//!            "messageTimestamp": {"gte": 1795000000000, "lte": 1795000030000}},
//!  "offset": 100, "page": 1}
//! ```
//!
//! `key.remoteJid` also matches `key.remoteJidAlt` (the `@lid` twin). The
//! timestamp bounds go through `new Date(x)`, so numbers are milliseconds;
//! both bounds are needed or the filter is dropped. The answer is
//! `{"messages": {"total", "pages", "currentPage", "records": [...]}}`,
//! newest first, each record in the `messages.upsert` `data` shape (`key`,
//! `message.conversation`, `messageTimestamp` in seconds). The records are
//! checked again here (`fromMe`, window, text), so a server that ignores a
//! filter cannot make a different message count as ours.

use serde_json::{Value, json};

use crate::client::{EvolutionClient, SendError, Sent};
use crate::mask;

/// Records asked for at once: one chat's own messages in a send window of
/// seconds are a handful.
const PAGE: u32 = 100;

/// Evolution stamps a sent message with its own clock, in whole seconds:
/// records this much before the window still count (clock skew, rounding).
const SKEW_MILLIS: i64 = 2_000;

/// What to look for.
#[derive(Debug, Clone, Copy)]
pub struct SentQuery<'a> {
    /// The address the text was sent to, as given to `send_text`: phone
    /// digits, or a full `...@lid` / `...@g.us` JID.
    pub number: &'a str,
    /// The exact text sent.
    pub text: &'a str,
    /// When the earliest attempt whose outcome is unknown began (Unix ms).
    pub since_millis: i64,
    /// Now (Unix ms).
    pub until_millis: i64,
    /// Ids of the chat's messages already accounted for (earlier replies
    /// with possibly the same text): never taken for this one.
    pub known_ids: &'a [String],
}

impl EvolutionClient {
    /// Looks for `query.text` among the chat's own messages sent in the
    /// window. `Ok(Some(sent))`: it went out (with its id when the record
    /// has one); `Ok(None)`: it did not, as far as Evolution knows. An error
    /// means the question could not be answered: do not send meanwhile.
    pub async fn find_sent(&self, instance: &str, query: &SentQuery<'_>) -> Result<Option<Sent>, SendError> {
        let from = query.since_millis.saturating_sub(SKEW_MILLIS);
        let to = query.until_millis.saturating_add(SKEW_MILLIS);
        let body = json!({
            "where": {
                "key": {"remoteJid": chat_jid(query.number), "fromMe": true},
                "messageTimestamp": {"gte": from, "lte": to},
            },
            "offset": PAGE,
            "page": 1,
        });
        let (status, answer) = self.post_json(["chat", "findMessages"], instance, &body).await?;
        if !status.is_success() {
            return Err(crate::client::classify_error(status, &answer));
        }
        let answer: Value = serde_json::from_slice(&answer).map_err(|_| {
            SendError::Unanswered(format!(
                "findMessages for instance `{}` answered {} with a body that is not json",
                mask::truncate(instance, 64),
                status.as_u16()
            ))
        })?;
        Ok(find_in(&answer, query.text, from, to, query.known_ids))
    }
}

/// The JID Evolution files a sent message under: phone digits become
/// `<digits>@s.whatsapp.net` (the reply address came from the contact's own
/// `remoteJid`, which is what Evolution's `onWhatsApp` lookup answers);
/// a JID stays as it is.
pub fn chat_jid(number: &str) -> String {
    if number.contains('@') {
        number.to_ascii_lowercase()
    } else {
        format!("{number}@s.whatsapp.net")
    }
}

/// The oldest own message in `answer` carrying exactly `text`, stamped
/// within `[from, to]` (ms), whose id is not in `known_ids`.
pub fn find_in(answer: &Value, text: &str, from: i64, to: i64, known_ids: &[String]) -> Option<Sent> {
    let records = answer.pointer("/messages/records").and_then(Value::as_array)?;
    records
        .iter()
        .rev()
        .filter(|record| record.pointer("/key/fromMe").and_then(Value::as_bool) == Some(true))
        .filter(|record| stamped_millis(record).is_none_or(|at| (from - 999..=to).contains(&at)))
        .filter(|record| texts_of(record).any(|candidate| candidate == text))
        .map(|record| record.pointer("/key/id").and_then(Value::as_str).filter(|id| !id.is_empty()))
        .find(|id| id.is_none_or(|id| !known_ids.iter().any(|known| known == id)))
        .map(|id| Sent { message_id: id.map(str::to_owned) })
}

/// `messageTimestamp` (seconds, a number or a numeric string) in ms.
fn stamped_millis(record: &Value) -> Option<i64> {
    let stamp = record.get("messageTimestamp")?;
    let secs = stamp.as_i64().or_else(|| stamp.as_str()?.trim().parse().ok())?;
    Some(secs.saturating_mul(1000))
}

/// Where a stored message keeps what identifies one of our sends: a text's
/// `conversation` (2.1+ folds `extendedTextMessage` into it) or
/// `extendedTextMessage.text`; a file's `caption` or `fileName` (a
/// captioned document may sit in `documentWithCaptionMessage`); a choice's
/// text (`buttonsMessage.contentText`, `listMessage.description`,
/// `interactiveMessage.body.text`).
const TEXT_PATHS: &[&str] = &[
    "/conversation",
    "/extendedTextMessage/text",
    "/imageMessage/caption",
    "/documentMessage/caption",
    "/documentMessage/fileName",
    "/documentWithCaptionMessage/message/documentMessage/caption",
    "/documentWithCaptionMessage/message/documentMessage/fileName",
    "/buttonsMessage/contentText",
    "/listMessage/description",
    "/interactiveMessage/body/text",
];

/// The texts of a stored message (see [`TEXT_PATHS`]).
fn texts_of(record: &Value) -> impl Iterator<Item = &str> {
    let message = record.get("message");
    TEXT_PATHS.iter().filter_map(move |path| message?.pointer(path)?.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, from_me: bool, text: &str, secs: i64) -> Value {
        json!({"id": "cm0", "key": {"remoteJid": "5511999990001@s.whatsapp.net", "fromMe": from_me, "id": id},
               "message": {"conversation": text}, "messageType": "conversation", "messageTimestamp": secs})
    }

    fn answer(records: Vec<Value>) -> Value {
        json!({"messages": {"total": records.len(), "pages": 1, "currentPage": 1, "records": records}})
    }

    #[test]
    fn a_jid_is_kept_and_digits_become_a_phone_jid() {
        assert_eq!(chat_jid("5511999990001"), "5511999990001@s.whatsapp.net");
        assert_eq!(chat_jid("123456789012345@lid"), "123456789012345@lid");
        assert_eq!(chat_jid("120363000000000000@G.US"), "120363000000000000@g.us");
    }

    #[test]
    fn only_our_text_in_the_window_and_not_already_accounted_for_counts() {
        let from = 1_795_000_000_000;
        let to = from + 30_000;
        let found = |records: Vec<Value>, known: &[String]| find_in(&answer(records), "Olá!", from, to, known);
        assert_eq!(found(vec![record("A", true, "Olá!", 1_795_000_010)], &[]), Some(Sent { message_id: Some("A".into()) }));
        assert_eq!(found(vec![record("A", false, "Olá!", 1_795_000_010)], &[]), None, "the customer's, not ours");
        assert_eq!(found(vec![record("A", true, "Olá", 1_795_000_010)], &[]), None, "another text");
        assert_eq!(found(vec![record("A", true, "Olá!", 1_794_999_990)], &[]), None, "before the window");
        assert_eq!(found(vec![record("A", true, "Olá!", 1_795_000_031)], &[]), None, "after the window");
        assert_eq!(found(vec![record("A", true, "Olá!", 1_795_000_010)], &["A".to_owned()]), None, "an earlier reply's");
        // Newest first on the wire: the oldest unaccounted match is ours.
        let both = vec![record("B", true, "Olá!", 1_795_000_020), record("A", true, "Olá!", 1_795_000_010)];
        assert_eq!(found(both.clone(), &[]), Some(Sent { message_id: Some("A".into()) }));
        assert_eq!(found(both, &["A".to_owned()]), Some(Sent { message_id: Some("B".into()) }));
    }

    #[test]
    fn loose_shapes_are_read_and_garbage_finds_nothing() {
        let extended = json!({"messages": {"records": [{"key": {"fromMe": true, "id": "X"},
            "message": {"extendedTextMessage": {"text": "Olá!"}}, "messageTimestamp": "1795000010"}]}});
        assert_eq!(find_in(&extended, "Olá!", 1_795_000_000_000, 1_795_000_030_000, &[]), Some(Sent { message_id: Some("X".into()) }));
        let document = json!({"messages": {"records": [{"key": {"fromMe": true, "id": "D"},
            "message": {"documentMessage": {"fileName": "boleto-1a2b.pdf", "mimetype": "application/pdf"}}, "messageTimestamp": 1795000010}]}});
        assert_eq!(find_in(&document, "boleto-1a2b.pdf", 1_795_000_000_000, 1_795_000_030_000, &[]), Some(Sent { message_id: Some("D".into()) }));
        assert_eq!(find_in(&document, "outro.pdf", 1_795_000_000_000, 1_795_000_030_000, &[]), None);
        for garbage in [json!(null), json!([]), json!({"messages": []}), json!({"messages": {"records": [1, "x", null]}})] {
            assert_eq!(find_in(&garbage, "Olá!", 0, i64::MAX, &[]), None, "{garbage}");
        }
    }
}
