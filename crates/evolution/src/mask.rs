//! Masking helpers for `Debug` output and error reasons: enough to tell two
//! values apart in a log, never enough to read a phone number or a message.

/// Keeps the first four and last two characters of a digit string
/// (`5511*******01`); short values are fully starred. Same rule as the
/// engine's `Contact`, so masked ids line up across crates' logs.
pub(crate) fn digits(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(idx, ch)| {
            if idx < 4 || idx >= chars.len() - 2 {
                *ch
            } else {
                '*'
            }
        })
        .collect()
}

/// Replaces every run of 5 or more ASCII digits with `<number>`, so a phone
/// number or LID echoed back in a server message cannot leak into our errors.
pub(crate) fn redact_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 5 {
            out.push_str("<number>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            run.push(ch);
        } else {
            flush(&mut run, &mut out);
            out.push(ch);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Cuts `text` to at most `max` characters (on a char boundary), adding `…`.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_keeps_edges_only() {
        assert_eq!(digits("5511999990001"), "5511*******01");
        assert_eq!(digits("123456"), "******");
        assert_eq!(digits(""), "");
    }

    #[test]
    fn redact_numbers_hides_long_digit_runs() {
        assert_eq!(
            redact_numbers("jid 5511999990001@s.whatsapp.net, code 400"),
            "jid <number>@s.whatsapp.net, code 400"
        );
        assert_eq!(redact_numbers("12345"), "<number>");
        assert_eq!(redact_numbers("1234"), "1234");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("ação", 2), "aç…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
