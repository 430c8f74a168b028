//! Identity: which JID in a message key is the customer, by the PN/LID rules.

use serde_json::{Map, Value};

use super::{Identity, ParseError};

/// The author of a group message or status: `participant` (PN or LID) and
/// its Baileys 7 alternative `participantAlt`; Baileys 6.7 used
/// `participantPn`/`participantLid`.
pub(super) fn participant_identity(key: &Map<String, Value>) -> Result<Identity, ParseError> {
    let candidates = [
        "participant",
        "participantAlt",
        "participantPn",
        "participantLid",
    ];
    identity_from(key, &candidates).ok_or_else(|| {
        if candidates
            .iter()
            .all(|name| matches!(key.get(*name), None | Some(Value::Null)))
        {
            ParseError::MissingField("data.key.participant")
        } else {
            ParseError::BadField {
                field: "data.key.participant",
                expected: "a user jid with a numeric user part",
            }
        }
    })
}

/// The first phone-number JID and the first LID among `candidates` (in
/// order); `None` when there is neither.
pub(super) fn identity_from(key: &Map<String, Value>, candidates: &[&str]) -> Option<Identity> {
    let mut phone = None;
    let mut lid = None;
    for name in candidates {
        let Some(Value::String(text)) = key.get(*name) else {
            continue;
        };
        let jid = Jid::split(text);
        let Some(digits) = jid.user_digits() else {
            continue;
        };
        match jid.server.as_str() {
            "s.whatsapp.net" | "c.us" => {
                phone.get_or_insert(digits);
            }
            "lid" => {
                lid.get_or_insert(digits);
            }
            _ => {}
        }
    }
    let reply_to = match (&phone, &lid) {
        (Some(phone), _) => phone.clone(),
        (None, Some(lid)) => format!("{lid}@lid"),
        (None, None) => return None,
    };
    Some(Identity {
        phone,
        lid,
        reply_to,
    })
}

/// A JID split into its user and (lowercased) server parts.
pub(super) struct Jid<'a> {
    pub(super) user: &'a str,
    pub(super) server: String,
}

impl<'a> Jid<'a> {
    pub(super) fn split(text: &'a str) -> Jid<'a> {
        let text = text.trim();
        match text.rsplit_once('@') {
            Some((user, server)) => Jid {
                user,
                server: server.to_ascii_lowercase(),
            },
            None => Jid {
                user: text,
                server: String::new(),
            },
        }
    }

    /// The user part without Baileys' `_agent` and `:device` suffixes
    /// (`5511...:12@s.whatsapp.net`), if it is 5 to 20 ASCII digits (the
    /// same bounds as the engine's `Contact`).
    pub(super) fn user_digits(&self) -> Option<String> {
        let user = self.user.split(':').next().unwrap_or_default();
        let user = user.split('_').next().unwrap_or_default();
        let ok = (5..=20).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| user.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jid_user_digits_strips_device_and_agent() {
        assert_eq!(
            Jid::split("5511999990001:12@s.whatsapp.net")
                .user_digits()
                .as_deref(),
            Some("5511999990001")
        );
        assert_eq!(
            Jid::split("5511999990001_1:3@S.WHATSAPP.NET").server,
            "s.whatsapp.net"
        );
        assert_eq!(Jid::split("abc@s.whatsapp.net").user_digits(), None);
        assert_eq!(Jid::split("1234@s.whatsapp.net").user_digits(), None);
    }
}
