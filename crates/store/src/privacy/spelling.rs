//! Finding a contact's number in free text (an audit reason) however an
//! operator typed it: `+55 11 93333-2222`, `(11) 93333-2222`,
//! `11933332222`, with or without the country code, with spaces, dots,
//! dashes or parentheses between the digits.

/// What may stand between two digits of one spelled number.
const SEPARATORS: &[u8] = b" .-()";
/// At most this many separators in a row (`) (` in `+55 (11) ...` is two).
const MAX_GAP: usize = 3;

/// The digit strings that spell `number`, longest first: the number itself
/// and, for a Brazilian number (`55`, area code, subscriber: 12 or 13
/// digits), the national form without `55`.
pub(super) fn spellings(number: &str) -> Vec<String> {
    let mut spellings = vec![number.to_owned()];
    if number.starts_with("55") && (12..=13).contains(&number.len()) {
        spellings.push(number[2..].to_owned());
    }
    spellings
}

/// `text` with every spelled occurrence of one of `spellings` replaced by
/// `by`. An occurrence is a whole number: no digit right before or after it
/// (letters and punctuation are boundaries). A `+` or `(` right before it
/// goes with it.
pub(super) fn replace_spelled(text: &str, spellings: &[String], by: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        let starts_number = bytes[at].is_ascii_digit() && (at == 0 || !bytes[at - 1].is_ascii_digit());
        let end = if starts_number { spellings.iter().find_map(|digits| spelled_at(bytes, at, digits.as_bytes())) } else { None };
        let Some(end) = end else {
            at += 1;
            continue;
        };
        let mut start = at;
        while start > copied && at - start < 2 && matches!(bytes[start - 1], b'+' | b'(') {
            start -= 1;
        }
        // Every cut is at an ASCII byte, so the slices stay on char boundaries.
        out.push_str(&text[copied..start]);
        out.push_str(by);
        (copied, at) = (end, end);
    }
    out.push_str(&text[copied..]);
    out
}

/// Where the spelling of `digits` that starts at `start` ends, if one does
/// and no digit follows it.
fn spelled_at(bytes: &[u8], start: usize, digits: &[u8]) -> Option<usize> {
    let mut at = start;
    for (idx, digit) in digits.iter().enumerate() {
        if idx > 0 {
            let gap_end = (at + MAX_GAP).min(bytes.len());
            while at < gap_end && SEPARATORS.contains(&bytes[at]) {
                at += 1;
            }
        }
        if bytes.get(at) != Some(digit) {
            return None;
        }
        at += 1;
    }
    (!bytes.get(at).is_some_and(u8::is_ascii_digit)).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erase(text: &str, number: &str) -> String {
        replace_spelled(text, &spellings(number), "X")
    }

    #[test]
    fn every_spelling_of_a_brazilian_number_is_replaced() {
        for (text, expected) in [
            ("tester 5511933332222", "tester X"),
            ("tester +55 11 93333-2222", "tester X"),
            ("tester +55 (11) 93333-2222.", "tester X."),
            ("(11) 93333-2222", "X"),
            ("11933332222", "X"),
            ("ligar 11 9 3333 2222, ok", "ligar X, ok"),
            ("55.11.93333.2222 e 5511933332222", "X e X"),
            ("ticket 42 11933332222", "ticket 42 X"),
            ("cliente:11933332222;", "cliente:X;"),
            ("a 11933332222 2", "a X 2"),
        ] {
            assert_eq!(erase(text, "5511933332222"), expected, "{text}");
        }
    }

    #[test]
    fn other_numbers_and_longer_runs_stay() {
        for text in ["55119333322221", "95511933332222", "11 93333-2223", "pedido 1193333222", "11    93333-2222"] {
            assert_eq!(erase(text, "5511933332222"), text);
        }
    }

    #[test]
    fn only_whole_numbers_are_replaced() {
        let by = |text: &str, number: &str| replace_spelled(text, &spellings(number), "0");
        assert_eq!(by("tester 5511988887777, ok", "5511988887777"), "tester 0, ok");
        assert_eq!(by("55119888877771 e 5511988887777", "5511988887777"), "55119888877771 e 0");
        assert_eq!(by("12345-12345", "12345"), "0-0");
        assert_eq!(by("fingerprint ab12345cd", "12345"), "fingerprint ab0cd", "letters are boundaries");
        assert_eq!(by("9912345", "12345"), "9912345");
        assert_eq!(by("lid 204837561234567 é", "204837561234567"), "lid 0 é");
    }
}
