//! Ignore lists: chats the bot never answers (the company's own numbers,
//! suppliers, every group), per instance or for all, with the wildcards
//! Evolution's bots use (`@g.us`: every group; `@s.whatsapp.net`: every 1:1
//! chat) plus a trailing `*` for a number prefix.
//!
//! `IGNORE_JIDS=5511999990000,@g.us,vendas=551133334444*` ignores that
//! number and every group on every instance, and numbers starting with
//! 551133334444 on instance `vendas`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    /// Every chat whose JID ends with this suffix (`@g.us`, `@s.whatsapp.net`, `@lid`).
    Suffix(String),
    /// One JID, exactly (`120363...@g.us`, `5511...@s.whatsapp.net`).
    Jid(String),
    /// A number's digits (phone or LID).
    Number(String),
    /// Numbers starting with these digits.
    Prefix(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// `None`: every instance.
    instance: Option<String>,
    pattern: Pattern,
}

/// The chat a message came from, as the ignore list sees it.
#[derive(Clone, Copy, Debug)]
pub struct ChatRef<'a> {
    pub instance: &'a str,
    /// The group's JID for a group message; `None` in a 1:1 chat.
    pub group: Option<&'a str>,
    /// The sender's phone digits and LID digits, when known.
    pub phone: Option<&'a str>,
    pub lid: Option<&'a str>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreList {
    rules: Vec<Rule>,
}

fn digits_of(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let only_number_chars = text.chars().all(|ch| ch.is_ascii_digit() || matches!(ch, '+' | ' ' | '-' | '(' | ')' | '.'));
    (only_number_chars && (5..=20).contains(&digits.len())).then_some(digits)
}

impl IgnoreList {
    /// Parses `[instance=]pattern,...`. Each problem names the entry.
    pub fn parse(text: &str) -> Result<IgnoreList, String> {
        let mut rules = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            let (instance, pattern) = match entry.split_once('=') {
                Some((instance, pattern)) => (Some(instance.trim()), pattern.trim()),
                None => (None, entry),
            };
            if let Some(instance) = instance {
                switchyard_engine::ids::InstanceId::parse(instance).map_err(|problem| format!("entry '{entry}': {problem}"))?;
            }
            let bad = || {
                format!("entry '{entry}' must be a number (5511999990000), a number prefix (551199*), a JID (...@g.us) or @g.us / @s.whatsapp.net / @lid")
            };
            let pattern = if let Some(domain) = pattern.strip_prefix('@') {
                if domain.is_empty() || !domain.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.') {
                    return Err(bad());
                }
                Pattern::Suffix(pattern.to_ascii_lowercase())
            } else if pattern.contains('@') {
                let (user, domain) = pattern.split_once('@').ok_or_else(bad)?;
                if user.is_empty() || domain.is_empty() || user.contains('*') {
                    return Err(bad());
                }
                Pattern::Jid(pattern.to_ascii_lowercase())
            } else if let Some(prefix) = pattern.strip_suffix('*') {
                let digits: String = prefix.chars().filter(char::is_ascii_digit).collect();
                if digits.len() < 2 || !prefix.chars().all(|ch| ch.is_ascii_digit() || matches!(ch, '+' | ' ' | '-')) {
                    return Err(bad());
                }
                Pattern::Prefix(digits)
            } else {
                Pattern::Number(digits_of(pattern).ok_or_else(bad)?)
            };
            rules.push(Rule { instance: instance.map(str::to_owned), pattern });
        }
        Ok(IgnoreList { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when the bot must not answer this chat.
    pub fn matches(&self, chat: &ChatRef<'_>) -> bool {
        let mut jids: Vec<String> = Vec::with_capacity(2);
        match chat.group {
            Some(group) => jids.push(group.to_ascii_lowercase()),
            None => {
                jids.extend(chat.phone.map(|phone| format!("{phone}@s.whatsapp.net")));
                jids.extend(chat.lid.map(|lid| format!("{lid}@lid")));
            }
        }
        let numbers = [chat.phone, chat.lid];
        self.rules.iter().filter(|rule| rule.instance.as_deref().is_none_or(|instance| instance == chat.instance)).any(|rule| {
            match &rule.pattern {
                Pattern::Suffix(suffix) => jids.iter().any(|jid| jid.ends_with(suffix.as_str())),
                Pattern::Jid(jid) => jids.iter().any(|candidate| candidate == jid),
                Pattern::Number(number) => numbers.iter().flatten().any(|candidate| *candidate == number),
                Pattern::Prefix(prefix) => numbers.iter().flatten().any(|candidate| candidate.starts_with(prefix.as_str())),
            }
        })
    }
}

impl fmt::Display for IgnoreList {
    /// The list as it would be written back (numbers masked: this is printed by `check`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rules.is_empty() {
            return f.write_str("none");
        }
        for (idx, rule) in self.rules.iter().enumerate() {
            if idx > 0 {
                f.write_str(",")?;
            }
            if let Some(instance) = &rule.instance {
                write!(f, "{instance}=")?;
            }
            match &rule.pattern {
                Pattern::Suffix(suffix) => f.write_str(suffix)?,
                Pattern::Jid(jid) => f.write_str(&switchyard_engine::mask::mask_text(jid))?,
                Pattern::Number(number) => f.write_str(&switchyard_engine::mask::mask_text(number))?,
                Pattern::Prefix(prefix) => write!(f, "{}*", switchyard_engine::mask::mask_text(prefix))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct<'a>(instance: &'a str, phone: &'a str) -> ChatRef<'a> {
        ChatRef { instance, group: None, phone: Some(phone), lid: None }
    }

    #[test]
    fn numbers_prefixes_jids_and_wildcards_match_per_instance() {
        let list = IgnoreList::parse("+55 (11) 99999-0000, @g.us, vendas=551133334444*, suporte=5511977776666@s.whatsapp.net").unwrap();
        assert!(list.matches(&direct("vendas", "5511999990000")));
        assert!(list.matches(&direct("suporte", "5511999990000")), "an entry without instance applies everywhere");
        assert!(list.matches(&direct("vendas", "5511333344449")));
        assert!(!list.matches(&direct("suporte", "5511333344449")), "the prefix is for vendas only");
        assert!(list.matches(&direct("suporte", "5511977776666")));
        assert!(!list.matches(&direct("vendas", "5511977776666")));
        assert!(!list.matches(&direct("vendas", "5511900000001")));
        let group = ChatRef { instance: "vendas", group: Some("120363025246125486@g.us"), phone: Some("5511900000001"), lid: None };
        assert!(list.matches(&group), "@g.us: every group");

        let every_direct = IgnoreList::parse("suporte=@s.whatsapp.net").unwrap();
        assert!(every_direct.matches(&direct("suporte", "5511900000001")));
        assert!(!every_direct.matches(&group));
        let lid = ChatRef { instance: "x", group: None, phone: None, lid: Some("123456789012345") };
        assert!(IgnoreList::parse("123456789012345@lid").unwrap().matches(&lid));
        assert!(IgnoreList::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_named() {
        for (text, named) in [("abc", "'abc'"), ("vendas=*", "'vendas=*'"), ("@", "'@'"), ("bad instance!=5511999990000", "bad instance!"), ("55*11@g.us", "'55*11@g.us'")] {
            let problem = IgnoreList::parse(text).unwrap_err();
            assert!(problem.contains(named), "{text}: {problem}");
        }
    }

    #[test]
    fn the_display_masks_numbers() {
        let list = IgnoreList::parse("5511999990000,@g.us,vendas=551133334444*").unwrap();
        assert_eq!(list.to_string(), "***********00,@g.us,vendas=**********44*");
    }
}
