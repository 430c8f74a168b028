//! Logs that are safe to ship: every formatted line passes through
//! `switchyard_engine::mask` before it is written, so a phone number, CPF,
//! CNPJ or e-mail address never reaches the output, whichever field, error
//! message or customer text carried it.
//!
//! Human-readable lines by default, JSON lines with `LOG_FORMAT=json`. In
//! the text format a field value is written as it is, so control characters
//! are escaped ([`escape_controls`]): a `\n` in a message id or a
//! connection state cannot start a forged line of its own.

use std::borrow::Cow;
use std::io::Write;

use switchyard_engine::mask::{mask_json, mask_text};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Escapes what could break a text line or fool a terminal: C0 controls
/// (`\n`, `\r`, `\t` by name, the rest as `\u{1b}`), DEL, C1 controls
/// (U+0085 is a line break to some viewers) and U+2028/U+2029. A newline
/// that ends `line` is kept: it is the line's own end. Unescaped stretches
/// are copied in bulk.
pub fn escape_controls(line: &str) -> Cow<'_, str> {
    let body = line.strip_suffix('\n').unwrap_or(line);
    let bytes = body.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut idx = 0;
    while idx < bytes.len() {
        let byte = bytes[idx];
        let (len, escaped): (usize, Option<Cow<'static, str>>) = match byte {
            b'\n' => (1, Some("\\n".into())),
            b'\r' => (1, Some("\\r".into())),
            b'\t' => (1, Some("\\t".into())),
            0x00..=0x1f | 0x7f => (1, Some(format!("\\u{{{byte:x}}}").into())),
            // U+0080..U+009F in UTF-8.
            0xc2 if bytes.get(idx + 1).is_some_and(|next| (0x80..=0x9f).contains(next)) => (2, Some(format!("\\u{{{:x}}}", bytes[idx + 1]).into())),
            // U+2028 and U+2029.
            0xe2 if bytes.get(idx + 1) == Some(&0x80) && matches!(bytes.get(idx + 2), Some(0xa8 | 0xa9)) => {
                (3, Some(if bytes[idx + 2] == 0xa8 { "\\u{2028}".into() } else { "\\u{2029}".into() }))
            }
            _ => (1, None),
        };
        if let Some(escaped) = escaped {
            out.push_str(&body[copied..idx]);
            out.push_str(&escaped);
            copied = idx + len;
        }
        idx += len;
    }
    if copied == 0 {
        return Cow::Borrowed(line);
    }
    out.push_str(&line[copied..]);
    Cow::Owned(out)
}

/// A text line as it is written: controls escaped, then masked (the masker
/// reads `\n5511...` as a new word, so escaping first hides nothing).
pub fn render_text(line: &str) -> String {
    mask_text(&escape_controls(line))
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
        let masked = if self.json { mask_json(&line) } else { render_text(&line) };
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
    fn controls_are_escaped_so_no_line_can_be_forged() {
        let forged = "2026-12-03T00:00:00Z  INFO admin login ok";
        let line = format!("2026-12-03T02:00:00Z  WARN instance not connected state=close\n{forged} x\r\u{1b}[2J\u{7f}\u{85}\u{2028}\u{2029}\tend\n");
        let written = render_text(&line);
        assert_eq!(
            written,
            "2026-12-03T02:00:00Z  WARN instance not connected state=close\\n2026-12-03T00:00:00Z  INFO admin login ok x\\r\\u{1b}[2J\\u{7f}\\u{85}\\u{2028}\\u{2029}\\tend\n"
        );
        assert_eq!(written.lines().count(), 1);
        assert!(!written.lines().any(|line| line.starts_with(forged)));
    }

    #[test]
    fn ordinary_lines_are_not_copied() {
        let line = "2026-12-03T02:00:00Z  INFO turn committed seq=42 replies=3 texto=\"ação\"\n";
        assert!(matches!(escape_controls(line), Cow::Borrowed(_)));
        assert_eq!(render_text(line), line);
    }

    #[test]
    fn numbers_after_an_escaped_newline_are_still_masked() {
        assert_eq!(render_text("text=\"cpf:\n529.982.247-25\u{1b}5511999998888\"\n"), "text=\"cpf:\\n***.***.***-25\\u{1b}***********88\"\n");
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
    fn the_writer_masks_and_escapes_each_line_whole() {
        let mut out = Vec::new();
        {
            let mut line = MaskedLine { inner: &mut out, line: Vec::new(), json: false };
            line.write_all(b"cpf 529.982").unwrap();
            line.write_all(b".247-25 id=a\nb\n").unwrap();
        }
        assert_eq!(String::from_utf8(out).unwrap(), "cpf ***.***.***-25 id=a\\nb\n");
    }
}
