//! Domain newtypes. A raw `String` from the outside world is parsed into one of
//! these before it reaches a flow.

use std::borrow::Cow;
use std::fmt;

use crate::mask::mask_id;

/// A flow's name, such as `digital_certificate`. Borrowed from the registry
/// when it comes from code, owned when it comes back from the store.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(Cow<'static, str>);

impl FlowId {
    pub const fn new_static(name: &'static str) -> FlowId {
        FlowId(Cow::Borrowed(name))
    }
    pub fn new(name: impl Into<String>) -> FlowId {
        FlowId(Cow::Owned(name.into()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// A step's id inside a version: `step` or `subroute.step`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepId(Cow<'static, str>);

impl StepId {
    pub const fn new_static(name: &'static str) -> StepId {
        StepId(Cow::Borrowed(name))
    }
    pub fn new(name: impl Into<String>) -> StepId {
        StepId(Cow::Owned(name.into()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The subroute this step belongs to, if its id is `subroute.step`.
    pub fn subroute(&self) -> Option<&str> {
        self.0.split_once('.').map(|(subroute, _)| subroute)
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// A flow version: `v1`, `v2`, ... Parsed strictly from `v<N>` with N >= 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Version(u32);

impl Version {
    pub const fn new(n: u32) -> Version {
        Version(n)
    }
    pub fn number(self) -> u32 {
        self.0
    }
    /// Parses `v1`, `v2`, ... The error says what was wrong with the text.
    pub fn parse(text: &str) -> Result<Version, String> {
        let digits = text
            .strip_prefix('v')
            .ok_or_else(|| format!("version '{text}' must look like v<N> (for example v1)"))?;
        match digits.parse::<u32>() {
            Ok(n) if n >= 1 && !digits.starts_with('+') && !digits.starts_with('0') => Ok(Version(n)),
            _ => Err(format!("version '{text}' must look like v<N> with N >= 1 (for example v1)")),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// The customer's WhatsApp id, normalised to the digits of the phone number
/// (or of the `@lid` id). Never logged unmasked: its `Debug` masks it.
/// Shared text: every session, turn and reply of the contact holds one, so
/// a clone is a reference count, not an allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Contact(std::sync::Arc<str>);

impl Contact {
    /// Accepts `5511987654321`, `+55 (11) 98765-4321`, `5511987654321@s.whatsapp.net`
    /// and keeps the digits. Between 5 and 20 digits; anything else is rejected.
    pub fn parse(text: &str) -> Result<Contact, String> {
        let local = text.trim();
        let local = local.split_once('@').map_or(local, |(user, _)| user);
        let local = local.split_once(':').map_or(local, |(user, _)| user);
        let mut digits = String::with_capacity(local.len());
        for ch in local.chars() {
            match ch {
                '0'..='9' => digits.push(ch),
                '+' | ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(format!("contact '{}' must be a phone number or WhatsApp id", mask_id(text))),
            }
        }
        if !(5..=20).contains(&digits.len()) {
            return Err(format!(
                "contact '{}' must have between 5 and 20 digits",
                mask_id(text)
            ));
        }
        Ok(Contact(digits.into()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `5511*******21`: enough to tell contacts apart in a log, not enough to call them.
    pub fn masked(&self) -> String {
        mask_id(&self.0)
    }

    /// `***********21`: only the last two digits, as the log masker leaves a
    /// bare number; for details stored beside the analytics (a pin's reason),
    /// which outlive the conversation.
    pub fn masked_tail(&self) -> String {
        let keep = self.0.len().saturating_sub(2);
        format!("{}{}", "*".repeat(keep), &self.0[keep..])
    }

    /// The id that stands for an erased contact in every row: `00` and the
    /// erasure's audit seq in 18 digits. An E.164 number never starts with
    /// `0` (nor does any LID seen), so it cannot be a real customer.
    pub fn pseudonym(audit_seq: i64) -> Contact {
        Contact(format!("00{:018}", audit_seq.max(0)).into())
    }

    /// True for an erased contact's [`Contact::pseudonym`]. It still parses
    /// (`sessions show` reads the erased history by it), but a channel must
    /// refuse it as a sender: a message from it would reopen the history.
    pub fn is_pseudonym(&self) -> bool {
        self.0.len() == 20 && self.0.starts_with("00")
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Contact({})", self.masked())
    }
}

/// An Evolution API instance name (one WhatsApp number / department).
/// Shared text, like [`Contact`]: a clone is a reference count.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct InstanceId(std::sync::Arc<str>);

impl InstanceId {
    /// 1 to 100 characters of letters, digits, `-`, `_` or `.`, not only
    /// dots. Evolution takes any non-empty name but puts it in its URL paths
    /// (`/message/sendText/{instance}`), where `.` and `..` are normalised
    /// away: `POST /message/..` would become `POST /message` with the global
    /// key. So names are kept to what stands as one path segment unencoded.
    pub fn parse(text: &str) -> Result<InstanceId, String> {
        let shown: String = text.chars().take(100).flat_map(char::escape_debug).collect();
        let shown = if text.chars().count() > 100 { format!("{shown}...") } else { shown };
        let ok = !text.is_empty()
            && text.len() <= 100
            && text.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
        if !ok {
            Err(format!(
                "instance '{shown}' must be 1 to 100 letters, digits, '-', '_' or '.'"
            ))
        } else if text.chars().all(|ch| ch == '.') {
            Err(format!(
                "instance '{shown}' must not be only dots: in Evolution's URL paths it would name another endpoint"
            ))
        } else {
            Ok(InstanceId(text.into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session's id: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    pub fn generate(now: crate::time::Timestamp) -> SessionId {
        let millis = now.as_millis().max(0) as u64;
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, millis / 1000, ((millis % 1000) * 1_000_000) as u32);
        SessionId(uuid::Uuid::new_v7(ts))
    }
    pub fn parse(text: &str) -> Result<SessionId, String> {
        uuid::Uuid::parse_str(text)
            .map(SessionId)
            .map_err(|_| format!("session id '{text}' is not a UUID"))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A version's content hash (hex SHA-256 of its folder and the shared helpers it uses).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Fingerprint(Cow<'static, str>);

impl Fingerprint {
    pub const fn new_static(hex: &'static str) -> Fingerprint {
        Fingerprint(Cow::Borrowed(hex))
    }
    pub fn new(hex: impl Into<String>) -> Fingerprint {
        Fingerprint(Cow::Owned(hex.into()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The first 12 hex digits, for tables.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parse_accepts_v_numbers_only() {
        assert_eq!(Version::parse("v1"), Ok(Version(1)));
        assert_eq!(Version::parse("v12"), Ok(Version(12)));
        for bad in ["1", "v0", "v", "v01", "V1", "v1.2", "v+1", "", "v-1"] {
            let err = Version::parse(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn contact_parse_keeps_digits_of_common_spellings() {
        for spelling in ["5511987654321", "+55 (11) 98765-4321", "5511987654321@s.whatsapp.net", "5511987654321:12@s.whatsapp.net"] {
            assert_eq!(Contact::parse(spelling).unwrap().as_str(), "5511987654321", "{spelling}");
        }
        assert!(Contact::parse("abc").is_err());
        assert!(Contact::parse("123").is_err());
    }

    #[test]
    fn contact_debug_and_errors_are_masked() {
        let contact = Contact::parse("5511987654321").unwrap();
        assert_eq!(format!("{contact:?}"), "Contact(5511*******21)");
        let err = Contact::parse("5511987654321x").unwrap_err();
        assert!(!err.contains("5511987654321"), "{err}");
        assert_eq!(contact.masked_tail(), "***********21");
    }

    #[test]
    fn a_pseudonym_parses_back_but_is_told_apart_from_customers() {
        let pseudonym = Contact::pseudonym(2);
        assert_eq!(pseudonym.as_str(), "00000000000000000002");
        assert_eq!(Contact::parse("00000000000000000002@s.whatsapp.net"), Ok(pseudonym.clone()));
        assert!(pseudonym.is_pseudonym());
        for customer in ["5511987654321", "204837561234567", "00551198765432"] {
            assert!(!Contact::parse(customer).unwrap().is_pseudonym(), "{customer}");
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_version_round_trips_through_its_display(n in 1u32..100_000) {
            prop_assert_eq!(Version::parse(&Version::new(n).to_string()), Ok(Version::new(n)));
        }

        #[test]
        fn punctuation_around_a_phone_number_does_not_change_the_contact(digits in "[1-9][0-9]{9,12}") {
            let spaced = format!("+{} ({}) {}-{}", &digits[..2], &digits[2..4], &digits[4..digits.len() - 4], &digits[digits.len() - 4..]);
            prop_assert_eq!(Contact::parse(&spaced).unwrap(), Contact::parse(&digits).unwrap());
            let masked = Contact::parse(&digits).unwrap().masked();
            prop_assert_eq!(masked.len(), digits.len());
            prop_assert!(masked[4..masked.len() - 2].chars().all(|ch| ch == '*'));
        }
    }
}
