//! The workspace's one masking rule for personal data in text: phone
//! numbers, CPF, CNPJ and e-mail addresses. Logs, `Debug` output and error
//! messages all go through here, so a number is masked the same way
//! whichever crate wrote it.
//!
//! - [`mask_id`]: an id on its own (`5511*******99`): first four and last two
//!   characters, enough to tell contacts apart, not enough to call them.
//! - [`mask_text`]: free text. E-mail user parts become `***` (an all-digit
//!   one, a WhatsApp JID, gets [`mask_id`]); every number of 8 digits or more
//!   (separators allowed) keeps only its last two digits; 11 or more digits
//!   glued to letters (`cpf52998224725`) too.
//! - [`mask_json`]: [`mask_text`] for a JSON line.
//!
//! The text masker is linear: one scan for `@`, then one forward pass with
//! a bounded look-ahead, so a hostile field cannot make it rescan the line
//! (the unit tests count the byte reads). Unmasked stretches are copied in
//! bulk, not character by character.

/// Digits in a run of digits and separators before it counts as a number
/// to mask: a CPF has 11, a CNPJ 14, a Brazilian phone 8 to 13; dates,
/// counts and ports have fewer.
const MIN_DIGITS: usize = 8;

/// Digits glued to letters (`cpf52998224725`) are masked from this many on:
/// a CPF has 11, a phone with country code 12 or 13.
const MIN_GLUED_DIGITS: usize = 11;

/// Keeps the first four and last two characters (`5511*******99`); six
/// characters or fewer are starred whole.
pub fn mask_id(text: &str) -> String {
    let count = text.chars().count();
    if count <= 6 {
        return "*".repeat(count);
    }
    let mut out = String::with_capacity(text.len());
    for (idx, ch) in text.chars().enumerate() {
        out.push(if idx < 4 || idx >= count - 2 { ch } else { '*' });
    }
    out
}

/// Masks e-mail addresses (`***@exemplo.com.br`; an all-digit user part such
/// as a WhatsApp JID keeps its edges: `5511*******99@s.whatsapp.net`) and
/// every number of 8 digits or more standing as a word of its own, with
/// `.`, `-`, `_`, `/`, ` `, `(`, `)` or `+` between the digits
/// (`***.***.***-25`, `+** (**) *****-**99`): phones, CPF, CNPJ.
pub fn mask_text(text: &str) -> String {
    Masker::new(text, false).run()
}

/// [`mask_text`] for a JSON line: a masked number that stood as a bare JSON
/// value (`"seq":12345678`) becomes a string, so the line stays JSON.
pub fn mask_json(text: &str) -> String {
    Masker::new(text, true).run()
}

/// Replaces every run of 5 or more ASCII digits with `<number>`: for text a
/// remote server wrote (an error body may echo a number in any shape), where
/// no digit run is worth keeping.
pub fn redact_numbers(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut idx = 0;
    while idx < bytes.len() {
        if !bytes[idx].is_ascii_digit() {
            idx += 1;
            continue;
        }
        let end = idx + bytes[idx..].iter().take_while(|byte| byte.is_ascii_digit()).count();
        if end - idx >= 5 {
            out.push_str(&text[copied..idx]);
            out.push_str("<number>");
            copied = end;
        }
        idx = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Cuts `text` to at most `max` characters (on a char boundary), adding `…`.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
thread_local! {
    /// Bytes of the input read by the masker on this thread: the linearity
    /// test divides it by the input's length.
    static READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// One read of `n` input bytes (counted in tests only).
#[inline(always)]
fn count_reads(n: usize) {
    #[cfg(test)]
    READS.with(|reads| reads.set(reads.get() + n as u64));
    #[cfg(not(test))]
    let _ = n;
}

/// The user part of an e-mail address: `text[start..at]`, `text[at] == '@'`.
#[derive(Clone, Copy, Debug)]
struct Email {
    start: usize,
    at: usize,
    digits_only: bool,
}

struct Masker<'a> {
    text: &'a str,
    bytes: &'a [u8],
    json: bool,
    out: String,
    /// `text[..copied]` is written to `out` (masked where needed).
    copied: usize,
}

fn is_separator(byte: u8) -> bool {
    matches!(byte, b'.' | b'-' | b'_' | b'/' | b' ' | b'(' | b')' | b'+')
}

/// `*` included, so an address masked once (`***@x.com`,
/// `5511*******99@s.whatsapp.net`) comes out of a second pass unchanged.
fn is_ascii_local(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'%' | b'+' | b'-' | b'*')
}

/// A letter of any script (`ã`, `é`), or a combining accent written apart
/// from its letter (`a` + U+0303).
fn is_unicode_word(ch: char) -> bool {
    ch.is_alphanumeric() || ('\u{300}'..='\u{36f}').contains(&ch)
}

/// `'` or `’` inside a name (`o'brien`): part of the user part only
/// between two word characters, so a quote around an address stays.
fn is_apostrophe(ch: char) -> bool {
    ch == '\'' || ch == '\u{2019}'
}

impl<'a> Masker<'a> {
    fn new(text: &'a str, json: bool) -> Masker<'a> {
        Masker { text, bytes: text.as_bytes(), json, out: String::new(), copied: 0 }
    }

    #[inline(always)]
    fn at(&self, idx: usize) -> u8 {
        count_reads(1);
        self.bytes[idx]
    }

    /// The char ending at byte `end` (`end > 0`, on a char boundary) and its
    /// length in bytes.
    fn char_before(&self, end: usize) -> (char, usize) {
        let mut start = end - 1;
        while start > 0 && end - start < 4 && self.at(start) & 0xC0 == 0x80 {
            start -= 1;
        }
        count_reads(end - start);
        let ch = self.text[start..end].chars().next_back().unwrap_or('\u{fffd}');
        (ch, ch.len_utf8())
    }

    /// The char starting at byte `idx` (on a char boundary).
    fn char_at(&self, idx: usize) -> char {
        let ch = self.text[idx..].chars().next().unwrap_or('\u{fffd}');
        count_reads(ch.len_utf8());
        ch
    }

    /// The char before `end` is a letter or digit of any script.
    fn word_before(&self, end: usize) -> bool {
        end > 0 && {
            let (ch, _) = self.char_before(end);
            ch.is_ascii_alphanumeric() || (!ch.is_ascii() && is_unicode_word(ch))
        }
    }

    /// The letter at `pos` ends an escape sequence (`\n`, `\t`, `\r`...): an
    /// odd number of backslashes stands before it. JSON lines and `{:?}`
    /// fields write a newline or tab inside a string that way, and what
    /// follows is the start of a word. Called once per e-mail candidate.
    fn escape_ends_at(&self, pos: usize) -> bool {
        if !self.at(pos).is_ascii_alphabetic() {
            return false;
        }
        let mut backslashes = 0;
        while backslashes < pos && self.at(pos - 1 - backslashes) == b'\\' {
            backslashes += 1;
        }
        backslashes % 2 == 1
    }

    fn copy_to(&mut self, end: usize) {
        count_reads(end - self.copied);
        self.out.push_str(&self.text[self.copied..end]);
        self.copied = end;
    }

    /// Every e-mail user part, in order. Each `@` scans back over its user
    /// part and forward over its domain; neither contains an `@`, so no
    /// byte is scanned for two addresses.
    fn emails(&self) -> Vec<Email> {
        let mut found = Vec::new();
        let mut from = 0;
        while let Some(at) = self.find_at(from) {
            from = at + 1;
            if let Some(email) = self.email_at(at) {
                found.push(email);
            }
        }
        found
    }

    fn find_at(&self, from: usize) -> Option<usize> {
        let offset = self.bytes[from..].iter().position(|byte| *byte == b'@')?;
        count_reads(offset + 1);
        Some(from + offset)
    }

    fn email_at(&self, at: usize) -> Option<Email> {
        if !self.domain_ok(at + 1) {
            return None;
        }
        let mut start = at;
        let mut digits_only = true;
        while start > 0 {
            let byte = self.at(start - 1);
            if byte.is_ascii() {
                if is_ascii_local(byte) {
                    digits_only &= byte.is_ascii_digit() || byte == b'*';
                    start -= 1;
                    continue;
                }
                if byte == b'\'' && start < at && self.word_before(start - 1) && self.starts_word(start) {
                    digits_only = false;
                    start -= 1;
                    continue;
                }
                break;
            }
            let (ch, len) = self.char_before(start);
            let inner_apostrophe = is_apostrophe(ch) && start < at && self.word_before(start - len) && self.starts_word(start);
            if is_unicode_word(ch) || inner_apostrophe {
                digits_only = false;
                start -= len;
                continue;
            }
            break;
        }
        // `oi\nana@x.com` in a JSON line: the `n` belongs to the escape, not
        // to the address (masking it would leave `\***`, which is not JSON).
        if start < at && self.escape_ends_at(start) {
            start += 1;
        }
        (start < at).then_some(Email { start, at, digits_only })
    }

    /// The char at `idx` is a letter or digit of any script.
    fn starts_word(&self, idx: usize) -> bool {
        let ch = self.char_at(idx);
        ch.is_ascii_alphanumeric() || (!ch.is_ascii() && is_unicode_word(ch))
    }

    /// A domain starts at `from`: letters, digits, dots and dashes whose last
    /// label (trailing dots and dashes aside) is 2 or more ASCII letters.
    fn domain_ok(&self, from: usize) -> bool {
        let mut end = from;
        while end < self.bytes.len() {
            let byte = self.at(end);
            if byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-' {
                end += 1;
            } else if !byte.is_ascii() && is_unicode_word(self.char_at(end)) {
                end += self.char_at(end).len_utf8();
            } else {
                break;
            }
        }
        while end > from && matches!(self.at(end - 1), b'.' | b'-') {
            end -= 1;
        }
        let mut tld = end;
        while tld > from && self.at(tld - 1).is_ascii_alphabetic() {
            tld -= 1;
        }
        end - tld >= 2 && tld > from && self.at(tld - 1) == b'.'
    }

    fn run(mut self) -> String {
        let emails = self.emails();
        let mut emails = emails.into_iter().peekable();
        let len = self.bytes.len();
        // State of the position before `idx`:
        // `word`: a letter or digit that is not an escape's letter, so `idx`
        // is not at a word boundary;
        let mut word = false;
        // `word_digits`: the word running up to `idx` has a digit;
        let mut word_digits = false;
        // `odd_backslashes`: an odd run of `\` ends just before `idx`.
        let mut odd_backslashes = false;
        let mut idx = 0;
        while idx < len {
            let next_email = emails.peek().copied();
            if let Some(email) = next_email.filter(|email| email.start == idx) {
                emails.next();
                self.copy_to(email.start);
                let local = &self.text[email.start..email.at];
                count_reads(local.len());
                if email.digits_only {
                    self.out.push_str(&mask_id(local));
                } else {
                    self.out.push_str("***");
                }
                self.copied = email.at;
                idx = email.at;
                (word, word_digits, odd_backslashes) = (false, false, false);
                continue;
            }
            // A number never runs into the next address's user part.
            let limit = next_email.map_or(len, |email| email.start);
            let byte = self.at(idx);
            let digit = byte.is_ascii_digit();
            let opens_number = digit || (matches!(byte, b'+' | b'(') && idx + 1 < limit && self.at(idx + 1).is_ascii_digit());
            if opens_number && !word {
                idx = self.number_at(idx, limit);
                word = self.at(idx - 1).is_ascii_digit();
                word_digits = word;
                odd_backslashes = false;
            } else if digit {
                // Digits glued to the letters before them: `cpf52998224725`.
                let end = self.digit_group_end(idx, limit);
                if !word_digits && end - idx >= MIN_GLUED_DIGITS && self.letters_only_until_boundary(end, limit) {
                    self.mask_run(idx, end, end - idx, false);
                }
                idx = end;
                (word, word_digits, odd_backslashes) = (true, true, false);
            } else {
                if byte == b'\\' {
                    odd_backslashes = !odd_backslashes;
                    word = false;
                } else {
                    if byte.is_ascii_alphabetic() && !odd_backslashes {
                        word_digits &= word;
                        word = true;
                    } else {
                        // Anything else, or the letter of an escape (`\n`),
                        // ends the word.
                        word = false;
                    }
                    odd_backslashes = false;
                }
                idx += 1;
            }
        }
        self.copy_to(len);
        self.out
    }

    /// At a word boundary, `idx` opens a run of digits and separators. Masks
    /// it if it is a number; returns where scanning goes on (after the
    /// whole run, so no shorter number inside it is masked either:
    /// `0.010617817`).
    fn number_at(&mut self, idx: usize, limit: usize) -> usize {
        let mut end = idx;
        let mut last_digit = idx;
        let mut digits = 0;
        // Separators (and dots among them) seen so far, and up to the last
        // digit: trailing ones (`12345678. `) are not part of the number.
        let (mut separators, mut dots) = (0, 0);
        let (mut inner_separators, mut inner_dots) = (0, 0);
        while end < limit {
            let byte = self.at(end);
            if byte.is_ascii_digit() {
                digits += 1;
                last_digit = end;
                (inner_separators, inner_dots) = (separators, dots);
            } else if is_separator(byte) {
                separators += 1;
                dots += usize::from(byte == b'.');
            } else {
                break;
            }
            end += 1;
        }
        let run_end = last_digit + 1;
        let boundary_after = run_end >= limit || !self.at(run_end).is_ascii_alphanumeric();
        // `0.010617817` (a duration, a rate) is a decimal, not a document:
        // CPF and CNPJ have two dots and a dash, phones no lone dot.
        let decimal = inner_separators == 1 && inner_dots == 1;
        if digits >= MIN_DIGITS && boundary_after && !decimal && !(digits == 8 && inner_separators == 2 && self.is_date(idx, run_end)) {
            let bare_json_value = self.json && inner_separators == 0 && idx > 0 && self.at(idx - 1) == b':';
            self.mask_run(idx, run_end, digits, bare_json_value);
        } else if self.at(idx).is_ascii_digit() {
            // `52998224725cpf`: the digits stand first in their word.
            let group_end = self.digit_group_end(idx, limit);
            if group_end - idx >= MIN_GLUED_DIGITS && group_end < limit && self.at(group_end).is_ascii_alphabetic() && self.letters_only_until_boundary(group_end, limit) {
                self.mask_run(idx, group_end, group_end - idx, false);
            }
        }
        end.max(idx + 1)
    }

    /// `10/12/2026`, `2026-12-10`, `10.12.2026`: eight digits that read as
    /// a valid date are a date, not a phone number (which has no such shape).
    fn is_date(&self, start: usize, end: usize) -> bool {
        let run = &self.bytes[start..end];
        count_reads(run.len());
        let mut groups = run.split(|byte| !byte.is_ascii_digit());
        let (Some(a), Some(b), Some(c)) = (groups.next(), groups.next(), groups.next()) else {
            return false;
        };
        let same_separator = run[a.len()] == run[a.len() + b.len() + 1] && matches!(run[a.len()], b'/' | b'-' | b'.');
        let value = |digits: &[u8]| digits.iter().fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0'));
        let valid = |day: &[u8], month: &[u8]| (1..=31).contains(&value(day)) && (1..=12).contains(&value(month));
        same_separator
            && match (a.len(), b.len(), c.len()) {
                (2, 2, 4) => valid(a, b) || valid(b, a),
                (4, 2, 2) => valid(c, b),
                _ => false,
            }
    }

    fn digit_group_end(&self, idx: usize, limit: usize) -> usize {
        let mut end = idx;
        while end < limit && self.at(end).is_ascii_digit() {
            end += 1;
        }
        end
    }

    /// From `idx` to the end of the word there are only ASCII letters (a
    /// word with other digits in it, such as a hex or UUID piece
    /// `3f4b5c6d7e8f`, is an id, not a document). Stops at the first digit.
    fn letters_only_until_boundary(&self, idx: usize, limit: usize) -> bool {
        let mut end = idx;
        while end < limit {
            let byte = self.at(end);
            if byte.is_ascii_digit() {
                return false;
            }
            if !byte.is_ascii_alphabetic() {
                break;
            }
            end += 1;
        }
        true
    }

    /// Writes `text[start..end]` with all but the last two of its `digits`
    /// digits as `*`, separators kept, in bulk: stars, then the tail.
    fn mask_run(&mut self, start: usize, end: usize, digits: usize, quote: bool) {
        self.copy_to(start);
        if quote {
            self.out.push('"');
        }
        let mut hidden = digits.saturating_sub(2);
        let mut pos = start;
        while pos < end && hidden > 0 {
            let byte = self.at(pos);
            if byte.is_ascii_digit() {
                self.out.push('*');
                hidden -= 1;
            } else {
                self.out.push(byte as char);
            }
            pos += 1;
        }
        count_reads(end - pos);
        self.out.push_str(&self.text[pos..end]);
        if quote {
            self.out.push('"');
        }
        self.copied = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(input, masked)`: each line one case, so a failure names it.
    fn check(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            assert_eq!(mask_text(input), *expected, "input: {input:?}");
        }
    }

    #[test]
    fn mask_id_keeps_edges_only() {
        assert_eq!(mask_id("5511999990001"), "5511*******01");
        assert_eq!(mask_id("123456"), "******");
        assert_eq!(mask_id("1234567"), "1234*67");
        assert_eq!(mask_id(""), "");
    }

    #[test]
    fn phones_cpf_cnpj_and_emails_are_masked_inside_free_text() {
        check(&[
            ("meu cpf é 529.982.247-25, ok?", "meu cpf é ***.***.***-25, ok?"),
            ("cpf 52998224725", "cpf *********25"),
            ("cnpj 11.222.333/0001-81", "cnpj **.***.***/****-81"),
            ("liga no +55 (11) 91111-9999", "liga no +** (**) *****-**99"),
            ("contact=5511911119999 x", "contact=***********99 x"),
            ("escreve pra Ana.Souza@Exemplo.com.br.", "escreve pra ***@Exemplo.com.br."),
            ("jid 5511911119999@s.whatsapp.net", "jid 5511*******99@s.whatsapp.net"),
            ("{\"text\":\"529.982.247-25\"}", "{\"text\":\"***.***.***-25\"}"),
        ]);
    }

    /// Finding 7 of issue #13 and its neighbours: every spelling a customer
    /// or an operator uses.
    #[test]
    fn corpus_of_spellings() {
        check(&[
            // Accented and apostrophe'd user parts are masked whole.
            ("joão.silva@empresa.com.br", "***@empresa.com.br"),
            ("escreva para JOÃO.SILVA@EMPRESA.COM.BR hoje", "escreva para ***@EMPRESA.COM.BR hoje"),
            ("maría-josé@correo.es", "***@correo.es"),
            ("joa\u{303}o@empresa.com.br", "***@empresa.com.br"),
            ("françois_müller+tag@exemplo.com", "***@exemplo.com"),
            ("o'brien.mac@exemplo.com", "***@exemplo.com"),
            ("d’ávila@exemplo.com.br", "***@exemplo.com.br"),
            ("ana@empresá.com.br", "***@empresá.com.br"),
            ("'ana@exemplo.com'", "'***@exemplo.com'"),
            ("email='o'brien@exemplo.com'", "email='***@exemplo.com'"),
            ("«ana@exemplo.com»", "«***@exemplo.com»"),
            ("<ana.souza@exemplo.com>", "<***@exemplo.com>"),
            // Digits with any separator in between.
            ("529_982_247_25", "***_***_***_25"),
            ("cpf: 529.982.247.25", "cpf: ***.***.***.25"),
            ("cpf: 529 982 247 25", "cpf: *** *** *** 25"),
            ("cpf: 529-982-247-25", "cpf: ***-***-***-25"),
            ("cpf: 529982247/25", "cpf: *********/25"),
            ("cpf:52998224725.", "cpf:*********25."),
            // CNPJ.
            ("cnpj 11222333000181", "cnpj ************81"),
            ("cnpj 11 222 333 0001 81", "cnpj ** *** *** **** 81"),
            ("cnpj 11_222_333_0001_81", "cnpj **_***_***_****_81"),
            // Phones, with and without +55.
            ("+55 11 93333-2222", "+** ** *****-**22"),
            ("+55(11)93333-2222", "+**(**)*****-**22"),
            ("+5511933332222", "+***********22"),
            ("55 11 9 3333 2222", "** ** * **** **22"),
            ("+55.11.93333.2222", "+**.**.*****.**22"),
            ("+55_11_93333_2222", "+**_**_*****_**22"),
            ("(11) 93333-2222", "(**) *****-**22"),
            ("liga 93333-2222", "liga *****-**22"),
            ("liga 3333-2222", "liga ****-**22"),
            ("wa.me/5511933332222", "wa.me/***********22"),
            ("tel:+5511933332222;", "tel:+***********22;"),
            ("nº5511933332222", "nº***********22"),
            // Not a date: 8 digits, but no day and month in them.
            ("fone 93/33/2222", "fone **/**/**22"),
            // Glued to letters.
            ("cpf52998224725", "cpf*********25"),
            ("52998224725cpf", "*********25cpf"),
        ]);
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
            "Olá! Quero renovar meu certificado digital, é urgente. Pode ser amanhã às 14h?",
            "O boleto de R$ 1.234,56 vence em 10/12/2026, pago em 2026-12-09 ou 12.10.2026?",
            "protocolo 2024-001, fila 3, posição 12",
            "user_id=42 max_body_bytes=1048576 timeout_ms=30000",
            "versão 2.3.0 → 2.4.0; @menção sem domínio; a@b",
            "já é, né? ação, coração, pão",
            "5511*******77 e ***@exemplo.com já mascarados",
            "",
        ] {
            assert_eq!(mask_text(text), text);
        }
    }

    #[test]
    fn json_lines_stay_json() {
        let line = r#"{"fields":{"contact":5511911119999,"text":"cpf 529.982.247-25","elapsed_secs":0.010617817}}"#;
        let masked = mask_json(line);
        assert_eq!(masked, r#"{"fields":{"contact":"***********99","text":"cpf ***.***.***-25","elapsed_secs":0.010617817}}"#);
    }

    #[test]
    fn numbers_and_emails_right_after_an_escape_are_masked() {
        assert_eq!(mask_json(r#"{"text":"meu cpf:\n529.982.247-25"}"#), r#"{"text":"meu cpf:\n***.***.***-25"}"#);
        assert_eq!(mask_json(r#"{"text":"fone\n5511999998888"}"#), r#"{"text":"fone\n***********88"}"#);
        assert_eq!(mask_json(r#"{"text":"cnpj\t11.222.333/0001-81\r"}"#), r#"{"text":"cnpj\t**.***.***/****-81\r"}"#);
        assert_eq!(mask_json(r#"{"text":"oi\nana@x.com"}"#), r#"{"text":"oi\n***@x.com"}"#);
        assert_eq!(mask_json(r#"{"text":"oi\njoão.souza@x.com"}"#), r#"{"text":"oi\n***@x.com"}"#);
        assert_eq!(mask_text(r#"text="a\t5511999998888""#), r#"text="a\t***********88""#);
        // `\\n` is a backslash, then the letter n: not an escape, but the
        // 13 digits glued to the `n` are masked all the same.
        assert_eq!(mask_json(r#"{"text":"c:\\n5511999998888"}"#), r#"{"text":"c:\\n***********88"}"#);
        assert_eq!(mask_text(r"\u{1b}5511999998888"), r"\u{1b}***********88");
    }

    #[test]
    fn long_digit_runs_glued_to_letters_are_masked_but_ids_are_not() {
        check(&[("tel5511999998888 ok", "tel***********88 ok"), ("x=CPF52998224725.", "x=CPF*********25.")]);
        for id in [
            "id a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
            "msg 3EB0C767D26A1D8E5F6B12345678901A9",
            "session 0195f3a2-8e4b-7c1d-9a2e-3f4b5c6d7e8f",
            "build v1234567890 step2",
        ] {
            assert_eq!(mask_text(id), id);
        }
    }

    #[test]
    fn a_star_is_a_boundary_so_ignore_jids_prefixes_are_masked() {
        check(&[
            ("5511988887777*", "***********77*"),
            ("*5511988887777", "************77"),
            ("5511988887777*,@g.us", "***********77*,@g.us"),
            ("5511*******77", "5511*******77"),
        ]);
    }

    #[test]
    fn masking_twice_changes_nothing_more() {
        for text in ["joão.silva@empresa.com.br 529_982_247_25 +55 11 93333-2222 cpf52998224725", "5511911119999@s.whatsapp.net"] {
            let once = mask_text(text);
            assert_eq!(mask_text(&once), once);
        }
    }

    #[test]
    fn redact_numbers_hides_long_digit_runs() {
        assert_eq!(redact_numbers("jid 5511999990001@s.whatsapp.net, code 400"), "jid <number>@s.whatsapp.net, code 400");
        assert_eq!(redact_numbers("12345"), "<number>");
        assert_eq!(redact_numbers("1234"), "1234");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("ação", 2), "aç…");
        assert_eq!(truncate("abc", 3), "abc");
    }

    /// Reads of the input per byte of it, for one call.
    fn reads_per_byte(mask: fn(&str) -> String, text: &str) -> f64 {
        READS.with(|reads| reads.set(0));
        let masked = mask(text);
        assert!(!masked.is_empty());
        READS.with(|reads| reads.get()) as f64 / text.len() as f64
    }

    /// Issue #13, finding 1: a 1 MiB field took minutes with the old
    /// masker (it rescanned the word for every digit run). Linear means a
    /// bounded number of reads per input byte, whatever the input.
    #[test]
    fn work_per_byte_is_bounded_for_hostile_fields() {
        const MIB: usize = 1 << 20;
        let hostile = [
            "x12345678901",
            "12345678901x",
            "a1",
            "1 ",
            "5511999998888@s.whatsapp.net ",
            "ana@",
            "@a.",
            "a'",
            "joão",
            "\\",
            "\\n",
            "12345678901abcdefghijklmnop ",
            "1.",
            "+(",
            "x@b.co ",
            "o'b@",
            "ã'@x.co",
            "1-2",
            "10/12/2026 ",
        ];
        for unit in hostile {
            let field = unit.repeat(MIB / unit.len() + 1);
            for mask in [mask_text as fn(&str) -> String, mask_json] {
                let per_byte = reads_per_byte(mask, &field);
                assert!(per_byte <= 15.0, "{unit:?} repeated: {per_byte:.1} reads per byte");
            }
        }
        // One long word of each kind.
        for field in ["a".repeat(MIB) + "@x.com", "1".repeat(MIB), "x".repeat(MIB) + "12345678901", "\\".repeat(MIB) + "n5511999998888"] {
            let per_byte = reads_per_byte(mask_text, &field);
            assert!(per_byte <= 15.0, "{per_byte:.1} reads per byte");
        }
    }

    #[test]
    fn the_hostile_field_of_the_issue_is_masked() {
        let field = "x12345678901".repeat(3);
        // Letters and several digit groups in one word: an id, left alone.
        assert_eq!(mask_text(&field), field);
        assert_eq!(mask_text("x12345678901"), "x*********01");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_eleven_digit_number_survives_in_any_sentence(before in "[a-z ,:=]{0,20}", number in "[1-9][0-9]{10,13}", after in "[ ,.!?][a-z ]{0,20}") {
            let masked = mask_text(&format!("{before} {number}{after}"));
            prop_assert!(!masked.contains(&number), "{masked}");
            prop_assert!(!masked.contains(&number[..number.len() - 2]), "{masked}");
        }

        #[test]
        fn no_separated_number_survives(groups in prop::collection::vec("[0-9]{2,5}", 3..5), separator in "[-._ /]") {
            let number = groups.join(&separator);
            let digits: String = number.chars().filter(char::is_ascii_digit).collect();
            // Eight digits in three groups can be a date (`01-01-2026`), left alone.
            prop_assume!(digits.len() >= 8 && !(digits.len() == 8 && groups.len() == 3));
            let masked = mask_text(&format!("doc {number} ok"));
            let shown: String = masked.chars().filter(char::is_ascii_digit).collect();
            prop_assert_eq!(shown, &digits[digits.len() - 2..], "{}", masked);
        }

        #[test]
        fn no_email_user_part_survives(user in "[a-zà-öø-ÿ]{1,6}('[a-zà-öø-ÿ]{1,6})?([._+-][a-zà-öø-ÿ0-9]{1,6})?", domain in "[a-z]{3,10}\\.(com|com\\.br|org)") {
            let masked = mask_text(&format!("mande para {user}@{domain} hoje"));
            let expected = format!("mande para ***@{domain} hoje");
            prop_assert_eq!(masked, expected);
        }

        #[test]
        fn text_without_digits_or_at_signs_is_left_alone(text in "[^0-9@]{0,200}") {
            prop_assert_eq!(mask_text(&text), text.clone());
            prop_assert_eq!(mask_json(&text), text);
        }

        #[test]
        fn any_text_masks_without_panicking(text in "\\PC{0,200}") {
            let masked = mask_text(&text);
            prop_assert!(masked.chars().count() <= text.chars().count() + 2 * text.matches('@').count() + 2);
        }
    }
}
