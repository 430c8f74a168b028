//! E-mail addresses typed on a phone: found inside a sentence, trimmed of
//! the punctuation around them, lowercased, and checked for the shape a
//! certificate authority will accept (`local@domain.tld`). No DNS lookups:
//! the order confirmation e-mail is the real check.

/// Why no address could be read from a text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Problem {
    /// Nothing in the text has an `@`.
    NotFound,
    /// Something with an `@` that is not a valid address.
    Invalid,
}

/// The first valid address in `text`, lowercased.
pub fn find(text: &str) -> Result<String, Problem> {
    let mut problem = Problem::NotFound;
    for word in text.split(|ch: char| ch.is_whitespace() || matches!(ch, ',' | ';')) {
        let word = word.trim_matches(|ch: char| {
            matches!(ch, '.' | ':' | '!' | '?' | '(' | ')' | '<' | '>' | '[' | ']' | '"' | '\'' | '*')
        });
        if !word.contains('@') {
            continue;
        }
        let lowered = word.to_lowercase();
        if is_valid(&lowered) {
            return Ok(lowered);
        }
        problem = Problem::Invalid;
    }
    Err(problem)
}

/// A validator for `kinds::Ask`: the address in `text`, if there is exactly one valid one.
pub fn validate(text: &str) -> Option<String> {
    find(text).ok()
}

fn is_valid(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else { return false };
    if local.is_empty() || local.len() > 64 || domain.len() > 253 || domain.contains('@') {
        return false;
    }
    let local_ok = local.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '%' | '+' | '-'))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let labels_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let tld_ok = labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|ch| ch.is_ascii_alphabetic()));
    local_ok && labels_ok && tld_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn addresses_are_found_in_sentences_and_lowercased() {
        assert_eq!(find("ana@exemplo.com.br").as_deref(), Ok("ana@exemplo.com.br"));
        assert_eq!(find("meu e-mail é Ana.Souza+cert@Exemplo.COM.").as_deref(), Ok("ana.souza+cert@exemplo.com"));
        assert_eq!(
            find("cpf 529.982.247-25, email: <joao_silva@empresa.com.br>").as_deref(),
            Ok("joao_silva@empresa.com.br")
        );
        assert_eq!(validate("  bia@x.io "), Some("bia@x.io".to_owned()));
    }

    #[test]
    fn malformed_addresses_are_invalid_and_missing_ones_not_found() {
        for bad in [
            "ana@",
            "@exemplo.com",
            "ana@exemplo",
            "ana@@exemplo.com",
            "ana@exemplo.c",
            "a..b@x.com",
            "ana@-x.com",
            "ana@x.c0m",
            "ana @x.com",
        ] {
            assert!(find(bad).is_err(), "{bad}");
        }
        assert_eq!(find("ana@exemplo"), Err(Problem::Invalid));
        assert_eq!(find("não tenho email"), Err(Problem::NotFound));
        assert_eq!(find(""), Err(Problem::NotFound));
    }

    proptest! {
        #[test]
        fn well_formed_addresses_are_accepted(local in "[a-z0-9]{1,10}([._+-][a-z0-9]{1,5})?", domain in "[a-z0-9]{1,10}", tld in "[a-z]{2,6}") {
            let address = format!("{local}@{domain}.{tld}");
            prop_assert_eq!(find(&format!("e-mail: {address}")), Ok(address));
        }

        #[test]
        fn finding_never_panics(text in "\\PC{0,200}") {
            let _ = find(&text);
        }
    }
}
