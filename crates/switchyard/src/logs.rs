//! Logs that are safe to ship: every formatted line passes through
//! [`mask`] before it is written, so a phone number, CPF, CNPJ or e-mail
//! address never reaches the output, whichever field, error message or
//! customer text carried it.
//!
//! Human-readable lines by default, JSON lines with `LOG_FORMAT=json`.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Digits in a run of digits and separators before it counts as a number
/// to mask: a CPF has 11, a CNPJ 14, a Brazilian phone 10 to 13; dates,
/// counts and ports have fewer.
const MIN_DIGITS: usize = 8;

fn is_separator(byte: u8) -> bool {
    matches!(byte, b'.' | b'-' | b'/' | b' ' | b'(' | b')' | b'+')
}

fn is_local_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-')
}

/// Keeps the first four and last two digits (`5511*******99`), the same
/// rule as `Contact::masked`, so a WhatsApp id lines up with the contact
/// fields of other lines.
fn mask_id(digits: &str) -> String {
    let n = digits.len();
    digits.char_indices().map(|(idx, ch)| if n > 6 && (idx < 4 || idx >= n - 2) { ch } else { '*' }).collect()
}

/// Masks e-mail addresses (`***@exemplo.com.br`; an all-digit local part
/// such as a WhatsApp JID keeps its edges: `5511*******99@s.whatsapp.net`)
/// and every number of 8 digits or more, separators allowed, standing as a
/// word of its own (`***.***.***-25`, `***********99`): phones, CPF, CNPJ.
pub fn mask(text: &str) -> String {
    mask_numbers(&mask_emails(text), false)
}

/// [`mask`] for a JSON line: a masked number that stood as a bare JSON
/// value (`"seq":12345678`) becomes a string, so the line stays JSON.
pub fn mask_json(text: &str) -> String {
    mask_numbers(&mask_emails(text), true)
}

fn mask_emails(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|byte| *byte == b'@') {
        let sign = at + offset;
        at = sign + 1;
        let mut start = sign;
        while start > copied && is_local_char(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = sign + 1;
        while end < bytes.len() && is_domain_char(bytes[end]) {
            end += 1;
        }
        let domain = text[sign + 1..end].trim_end_matches(['.', '-']);
        let tld_ok = domain.rsplit_once('.').is_some_and(|(_, tld)| tld.len() >= 2 && tld.bytes().all(|byte| byte.is_ascii_alphabetic()));
        // `oi\nana@x.com` in a JSON line: the `n` belongs to the escape, not
        // to the address (masking it would leave `\***`, which is not JSON).
        if start < sign && escape_ends_at(bytes, start) {
            start += 1;
        }
        if start == sign || !tld_ok {
            continue;
        }
        let local = &text[start..sign];
        out.push_str(&text[copied..start]);
        if local.bytes().all(|byte| byte.is_ascii_digit()) {
            out.push_str(&mask_id(local));
        } else {
            out.push_str("***");
        }
        copied = sign;
    }
    out.push_str(&text[copied..]);
    out
}

/// Digits glued to letters (`cpf52998224725`) are masked from this many on:
/// a CPF has 11, a phone with country code 12 or 13.
const MIN_GLUED_DIGITS: usize = 11;

/// The letter at `pos` ends an escape sequence (`\n`, `\t`, `\r`...): an
/// odd number of backslashes stands before it. JSON lines and `{:?}` fields
/// write a newline or tab inside a string that way, and what follows is the
/// start of a word, not the end of the word `n`.
fn escape_ends_at(bytes: &[u8], pos: usize) -> bool {
    if !bytes[pos].is_ascii_alphabetic() {
        return false;
    }
    let backslashes = bytes[..pos].iter().rev().take_while(|byte| **byte == b'\\').count();
    backslashes % 2 == 1
}

/// A word boundary stands before `idx`: the start, anything but a letter or
/// digit (`*` included: `5511988887777*` is an `IGNORE_JIDS` prefix), or an
/// escape sequence.
fn boundary_before(bytes: &[u8], idx: usize) -> bool {
    idx == 0 || !bytes[idx - 1].is_ascii_alphanumeric() || escape_ends_at(bytes, idx - 1)
}

/// For the digits `bytes[start..end]`, glued to letters: masked when there
/// are 11 or more and the word around them is letters, then those digits,
/// then letters (`cpf52998224725`, `tel5511999998888x`). A word with other
/// digits in it (a hex or UUID piece such as `3f4b5c6d7e8f`) is an id,
/// not a document, and left alone.
fn glued_digits(bytes: &[u8], start: usize) -> bool {
    let end = start + bytes[start..].iter().take_while(|byte| byte.is_ascii_digit()).count();
    if end - start < MIN_GLUED_DIGITS {
        return false;
    }
    let mut word_start = start;
    while !boundary_before(bytes, word_start) {
        word_start -= 1;
    }
    let word_end = end + bytes[end..].iter().take_while(|byte| byte.is_ascii_alphanumeric()).count();
    let (before, after) = (&bytes[word_start..start], &bytes[end..word_end]);
    (!before.is_empty() || !after.is_empty()) && before.iter().all(u8::is_ascii_alphabetic) && after.iter().all(u8::is_ascii_alphabetic)
}

/// Writes `digits` with all but the last two digits as `*`, separators kept.
fn push_masked_digits(out: &mut String, run: &[u8], digits: usize) {
    let mut seen = 0;
    for &byte in run {
        if byte.is_ascii_digit() {
            seen += 1;
            out.push(if seen > digits - 2 { byte as char } else { '*' });
        } else {
            out.push(byte as char);
        }
    }
}

fn mask_numbers(text: &str, json: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut idx = 0;
    let mut copied = 0;
    while idx < bytes.len() {
        let byte = bytes[idx];
        let starts = byte.is_ascii_digit() || ((byte == b'+' || byte == b'(') && bytes.get(idx + 1).is_some_and(u8::is_ascii_digit));
        if !starts || (idx > 0 && bytes[idx - 1].is_ascii_digit()) {
            idx += 1;
            continue;
        }
        if boundary_before(bytes, idx) {
            let mut end = idx;
            let mut last_digit = idx;
            let mut digits = 0;
            while end < bytes.len() && (bytes[end].is_ascii_digit() || is_separator(bytes[end])) {
                if bytes[end].is_ascii_digit() {
                    digits += 1;
                    last_digit = end;
                }
                end += 1;
            }
            let run_end = last_digit + 1;
            let boundary_after = run_end == bytes.len() || !bytes[run_end].is_ascii_alphanumeric();
            let run = &bytes[idx..run_end];
            let separators = run.iter().filter(|byte| !byte.is_ascii_digit()).count();
            // `0.010617817` (a duration, a rate) is a decimal, not a document:
            // CPF and CNPJ have two dots and a dash, phones no lone dot.
            let decimal = separators == 1 && run.contains(&b'.');
            if digits >= MIN_DIGITS && boundary_after && !decimal {
                out.push_str(&text[copied..idx]);
                let bare_json_value = json && separators == 0 && idx > 0 && bytes[idx - 1] == b':';
                if bare_json_value {
                    out.push('"');
                }
                push_masked_digits(&mut out, run, digits);
                if bare_json_value {
                    out.push('"');
                }
                copied = run_end;
            } else if glued_digits(bytes, idx) {
                // `52998224725abc`: the digits stand first in their word.
                let group_end = idx + bytes[idx..].iter().take_while(|byte| byte.is_ascii_digit()).count();
                out.push_str(&text[copied..idx]);
                push_masked_digits(&mut out, &bytes[idx..group_end], group_end - idx);
                copied = group_end;
            }
            // Not a shorter number inside the run either (`0.010617817`).
            idx = end.max(idx + 1);
        } else if byte.is_ascii_digit() {
            // After a letter: `cpf52998224725`.
            let group_end = idx + bytes[idx..].iter().take_while(|byte| byte.is_ascii_digit()).count();
            if glued_digits(bytes, idx) {
                out.push_str(&text[copied..idx]);
                push_masked_digits(&mut out, &bytes[idx..group_end], group_end - idx);
                copied = group_end;
            }
            idx = group_end;
        } else {
            idx += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Wraps a [`MakeWriter`]: each event's formatted line is collected, masked
/// and written whole.
#[derive(Clone, Debug)]
pub struct Masked<M> {
    pub inner: M,
    /// The lines are JSON (see [`mask_json`]).
    pub json: bool,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Masked<M> {
    type Writer = MaskedLine<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        MaskedLine { inner: self.inner.make_writer(), line: Vec::with_capacity(256), json: self.json }
    }
}

/// One event's output, masked when dropped (the formatter writes a whole
/// event, then drops its writer).
pub struct MaskedLine<W: Write> {
    inner: W,
    line: Vec<u8>,
    json: bool,
}

impl<W: Write> Write for MaskedLine<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for MaskedLine<W> {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = String::from_utf8_lossy(&self.line);
        let masked = if self.json { mask_json(&line) } else { mask(&line) };
        // A log line that cannot be written is dropped: logging must never
        // take the server down.
        let _ = self.inner.write_all(masked.as_bytes());
        let _ = self.inner.flush();
    }
}

/// Installs the global subscriber: `RUST_LOG` filter (default `info`; an
/// invalid filter falls back to `info`),
/// text or JSON lines on stdout, everything masked. A second call is a no-op.
pub fn init(json: bool) {
    let directives = crate::config::var("RUST_LOG").ok().flatten().unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(Masked { inner: std::io::stdout, json });
    let _ = if json { builder.json().try_init() } else { builder.with_ansi(false).try_init() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_cpf_cnpj_and_emails_are_masked_inside_free_text() {
        assert_eq!(mask("meu cpf é 529.982.247-25, ok?"), "meu cpf é ***.***.***-25, ok?");
        assert_eq!(mask("cpf 52998224725"), "cpf *********25");
        assert_eq!(mask("cnpj 11.222.333/0001-81"), "cnpj **.***.***/****-81");
        assert_eq!(mask("liga no +55 (11) 91111-9999"), "liga no +** (**) *****-**99");
        assert_eq!(mask("contact=5511911119999 x"), "contact=***********99 x");
        assert_eq!(mask("escreve pra Ana.Souza@Exemplo.com.br."), "escreve pra ***@Exemplo.com.br.");
        assert_eq!(mask("jid 5511911119999@s.whatsapp.net"), "jid 5511*******99@s.whatsapp.net");
        assert_eq!(mask("{\"text\":\"529.982.247-25\"}"), "{\"text\":\"***.***.***-25\"}");
    }

    #[test]
    fn what_is_not_personal_is_left_alone() {
        for text in [
            "2026-11-26T01:34:09.123456Z  INFO turn committed seq=42 replies=3",
            "contact=5511*******99 flow=digital_certificate version=v1 step=purchase.collect_document",
            "session 0195f3a2-8e4b-7c1d-9a2e-3f4b5c6d7e8f",
            "addr 127.0.0.1:8080 ready_in_ms=12",
            "pedido CF-827490 total R$ 159,90",
            "e-mail sem domínio: ana@localhost",
            "elapsed_secs=0.010617817 rate 12.34567890",
        ] {
            assert_eq!(mask(text), text);
        }
    }

    #[test]
    fn json_lines_stay_json() {
        let line = r#"{"fields":{"contact":5511911119999,"text":"cpf 529.982.247-25","elapsed_secs":0.010617817}}"#;
        let masked = mask_json(line);
        assert_eq!(masked, r#"{"fields":{"contact":"***********99","text":"cpf ***.***.***-25","elapsed_secs":0.010617817}}"#);
        assert!(serde_json::from_str::<serde_json::Value>(&masked).is_ok());
    }

    #[test]
    fn numbers_and_emails_right_after_an_escape_are_masked() {
        // A JSON line (and a `{:?}` field) writes a newline or tab inside a
        // string as `\n`, `\t`, `\r`: the letter is not part of the next word.
        assert_eq!(mask_json(r#"{"text":"meu cpf:\n529.982.247-25"}"#), r#"{"text":"meu cpf:\n***.***.***-25"}"#);
        assert_eq!(mask_json(r#"{"text":"fone\n5511999998888"}"#), r#"{"text":"fone\n***********88"}"#);
        assert_eq!(mask_json(r#"{"text":"cnpj\t11.222.333/0001-81\r"}"#), r#"{"text":"cnpj\t**.***.***/****-81\r"}"#);
        assert_eq!(mask_json(r#"{"text":"oi\nana@x.com"}"#), r#"{"text":"oi\n***@x.com"}"#);
        assert_eq!(mask_json(r#"{"text":"oi\nana.souza@x.com"}"#), r#"{"text":"oi\n***@x.com"}"#);
        assert_eq!(mask(r#"text="a\t5511999998888""#), r#"text="a\t***********88""#);
        // `\\n` is a backslash, then the letter n: not an escape, but the
        // 13 digits glued to the `n` are masked all the same.
        assert_eq!(mask_json(r#"{"text":"c:\\n5511999998888"}"#), r#"{"text":"c:\\n***********88"}"#);
    }

    #[test]
    fn masked_json_lines_with_escapes_still_parse_and_hide_everything() {
        let text = "meu cpf:\n529.982.247-25\tfone\n5511999998888\noi\nana@x.com\r\ncnpj\n11.222.333/0001-81\n\"cpf52998224725\"";
        let line = serde_json::json!({"fields": {"message": "inbound", "text": text, "contact": 5511911119999u64}}).to_string();
        let masked = mask_json(&line);
        let value: serde_json::Value = serde_json::from_str(&masked).unwrap_or_else(|err| panic!("{err}: {masked}"));
        let shown = value["fields"]["text"].as_str().unwrap();
        for secret in ["529.982.247", "52998224725", "55119999988", "ana@", "nana", "11.222.333", "0001", "55119111199"] {
            assert!(!shown.contains(secret) && !masked.contains(secret), "{secret} in {masked}");
        }
        assert_eq!(shown, "meu cpf:\n***.***.***-25\tfone\n***********88\noi\n***@x.com\r\ncnpj\n**.***.***/****-81\n\"cpf*********25\"");
        assert_eq!(value["fields"]["contact"], "***********99");
    }

    #[test]
    fn long_digit_runs_glued_to_letters_are_masked_but_ids_are_not() {
        assert_eq!(mask("cpf52998224725"), "cpf*********25");
        assert_eq!(mask("tel5511999998888 ok"), "tel***********88 ok");
        assert_eq!(mask("52998224725cpf"), "*********25cpf");
        assert_eq!(mask("x=CPF52998224725."), "x=CPF*********25.");
        for id in [
            // Hex and UUID pieces mix letters and several digit groups.
            "id a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
            "msg 3EB0C767D26A1D8E5F6B12345678901A9",
            "session 0195f3a2-8e4b-7c1d-9a2e-3f4b5c6d7e8f",
            // Fewer than 11 glued digits: versions, short codes.
            "build v1234567890 step2",
        ] {
            assert_eq!(mask(id), id);
        }
    }

    #[test]
    fn a_star_is_a_boundary_so_ignore_jids_prefixes_are_masked() {
        assert_eq!(mask("5511988887777*"), "***********77*");
        assert_eq!(mask("*5511988887777"), "************77");
        assert_eq!(mask("5511988887777*,@g.us"), "***********77*,@g.us");
        // Already masked text stays as it is.
        assert_eq!(mask("5511*******77"), "5511*******77");
    }

    #[test]
    fn the_writer_masks_each_line_whole() {
        let mut out = Vec::new();
        {
            let mut line = MaskedLine { inner: &mut out, line: Vec::new(), json: false };
            line.write_all(b"cpf 529.982").unwrap();
            line.write_all(b".247-25\n").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "cpf ***.***.***-25\n");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_eleven_digit_number_survives_in_any_sentence(before in "[a-z ,:=]{0,20}", number in "[1-9][0-9]{10,13}", after in "[ ,.!?][a-z ]{0,20}") {
            let masked = mask(&format!("{before} {number}{after}"));
            prop_assert!(!masked.contains(&number), "{masked}");
            prop_assert!(!masked.contains(&number[..number.len() - 2]), "{masked}");
        }

        #[test]
        fn no_email_local_part_survives(user in "[a-z][a-z0-9.]{2,12}[a-z]", domain in "[a-z]{3,10}\\.(com|com\\.br|org)") {
            let masked = mask(&format!("mande para {user}@{domain} hoje"));
            let expected = format!("mande para ***@{domain} hoje");
            prop_assert_eq!(masked, expected);
        }
    }
}
