//! The log masker on 1 KiB, 64 KiB and 1 MiB lines (issue #13, finding 1),
//! typical and hostile, the new `switchyard_engine::mask::mask_text` beside
//! the masker it replaced (kept below as `old::mask`, a verbatim copy of
//! `logs.rs` before the change) in the same run.
//!
//! - `typical`: a log line of ordinary words, timestamps, a masked contact,
//!   a CPF, a phone, an e-mail, repeated to the size.
//! - `hostile`: `"x12345678901"` repeated, the `key.id` of the issue; the old
//!   masker rescanned the word for every digit run (quadratic). Its 1 MiB
//!   case is not run (minutes per iteration).
//! - `log_line/typical`: what the writer does to a text line: escape
//!   control characters, then mask.
//!
//! Run: `cargo bench -p switchyard --bench mask`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const TYPICAL: &str = "2026-12-03T02:00:00.123456Z  INFO turn committed request_id=3EB0C767D26A1D8E5F6B contact=5511*******99 flow=digital_certificate version=v1 seq=42 elapsed_secs=0.010617817 text=\"Olá, meu cpf é 529.982.247-25, e-mail ana.souza@exemplo.com.br, liga (11) 91111-9999 amanhã às 14h\" ";
const HOSTILE: &str = "x12345678901";

const SIZES: [(&str, usize); 3] = [("1KiB", 1 << 10), ("64KiB", 64 << 10), ("1MiB", 1 << 20)];

fn line(unit: &str, size: usize) -> String {
    let mut line = unit.repeat(size / unit.len() + 1);
    line.truncate(size);
    line
}

fn masking(c: &mut Criterion) {
    for (kind, unit) in [("typical", TYPICAL), ("hostile", HOSTILE)] {
        let mut group = c.benchmark_group(format!("mask/{kind}"));
        group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
        for (name, size) in SIZES {
            let text = line(unit, size);
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::new("new", name), &text, |b, text| b.iter(|| switchyard_engine::mask::mask_text(black_box(text))));
            if kind == "typical" || size <= 64 << 10 {
                group.bench_with_input(BenchmarkId::new("old", name), &text, |b, text| b.iter(|| old::mask(black_box(text))));
            }
        }
        group.finish();
    }
    let mut group = c.benchmark_group("log_line/typical");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (name, size) in SIZES {
        let mut text = line(TYPICAL, size);
        text.push('\n');
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &text, |b, text| b.iter(|| switchyard::logs::render_text(black_box(text))));
    }
    group.finish();
}

criterion_group!(benches, masking);
criterion_main!(benches);

/// The masker of `crates/switchyard/src/logs.rs` before issue #13, as it was.
mod old {
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
    #[allow(dead_code)] // reason: kept whole as it was
    fn mask_json(text: &str) -> String {
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

}
