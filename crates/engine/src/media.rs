//! Files and choices as data: what the customer attached (a reference, never
//! the bytes), what a step sends besides text (a document or image, or a
//! menu's options), so a channel can render them its own way.
//!
//! A step that takes files declares it ([`crate::flow::Step::accepts_attachments`],
//! `Custom::attachments`); it then sees the file through
//! [`crate::flow::Ctx::attachment`], with the caption (or nothing) as the
//! text. Elsewhere a captioned file reads as its caption and a bare one gets
//! the engine's "please type" answer, as before.

/// A file the customer sent, by reference: the channel keeps the bytes and
/// fetches them by `message_id` when someone needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The channel's id of the message that carried the file.
    pub message_id: String,
    /// `image` or `document`.
    pub kind: String,
    pub mimetype: Option<String>,
    pub file_name: Option<String>,
    pub caption: Option<String>,
}

impl Attachment {
    /// `kind:message_id:mimetype:file name`, to keep in session data.
    pub fn reference(&self) -> String {
        let clean = |text: &str| text.replace([':', '\n'], "_");
        format!(
            "{}:{}:{}:{}",
            self.kind,
            clean(&self.message_id),
            clean(self.mimetype.as_deref().unwrap_or("")),
            clean(self.file_name.as_deref().unwrap_or(""))
        )
    }
}

/// A file a step sends; the reply's text is its caption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingFile {
    /// `image` or `document`.
    pub kind: FileKind,
    /// Where the channel fetches it (an https URL).
    pub url: String,
    pub mimetype: String,
    pub file_name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Image,
    Document,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Image => "image",
            FileKind::Document => "document",
        }
    }

    pub fn parse(text: &str) -> Option<FileKind> {
        match text {
            "image" => Some(FileKind::Image),
            "document" => Some(FileKind::Document),
            _ => None,
        }
    }
}

/// What a reply carries besides its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rich {
    /// Send this file with the text as its caption.
    File(OutgoingFile),
    /// The text is a numbered menu with these option titles (in order,
    /// each starting with its number): a channel may show them as buttons
    /// or a list, whose answer reads as the number.
    Choices(std::sync::Arc<[String]>),
}

/// The option lines of a numbered menu text, in order: lines that start
/// with `1`, `2`, ... (as a digit, a keycap emoji `1️⃣`, with `.`, `)`, `-`
/// or nothing after), each made `"<n>. <label>"` without the `*` bold marks.
/// `None` unless exactly `expected` consecutive options from 1 are found.
pub fn menu_titles(text: &str, expected: usize) -> Option<Vec<String>> {
    menu_options(text).filter(|titles| titles.len() == expected && expected > 0)
}

/// Every option line of `text` as [`menu_titles`] reads them, however many;
/// `None` when the numbers skip or an option has no label. A version's
/// constant menu text is read once ([`crate::text::Texts`] keeps the result).
pub fn menu_options(text: &str) -> Option<Vec<String>> {
    use std::fmt::Write as _;
    let mut titles: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(number) = line[..digits].parse::<usize>() else { continue };
        let rest = &line[digits..];
        let rest = rest.trim_start_matches(['\u{fe0f}', '\u{20e3}']);
        let rest = rest.trim_start_matches(['.', ')', '-', ':', ' ']);
        // The label is `rest` without its `*` marks, trimmed.
        let label = rest.trim_matches(|ch: char| ch == '*' || ch.is_whitespace());
        if number != titles.len() + 1 || label.is_empty() {
            return None;
        }
        let mut title = String::with_capacity(digits + 2 + label.len());
        // The number as a number (`01` is `1`).
        let _ = write!(title, "{number}. ");
        title.extend(label.split('*'));
        titles.push(title);
    }
    Some(titles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_titles_read_keycaps_digits_and_bold() {
        let text = "Como posso ajudar?\n1️⃣ *Segunda via* do boleto\n2️⃣ *Parcelar*\n3) Já paguei";
        assert_eq!(
            menu_titles(text, 3),
            Some(vec!["1. Segunda via do boleto".to_owned(), "2. Parcelar".to_owned(), "3. Já paguei".to_owned()])
        );
        assert_eq!(
            menu_titles("01. *a* b *\n2 -  c", 2),
            Some(vec!["1. a b".to_owned(), "2. c".to_owned()]),
            "the number as a number, the label without its marks"
        );
        assert_eq!(menu_titles(text, 2), None, "a count that does not match is no menu");
        assert_eq!(menu_titles("1. a\n3. b", 2), None, "gaps are not options");
        assert_eq!(menu_titles("Sem opções", 0), None);
    }

    #[test]
    fn a_reference_keeps_its_fields_apart() {
        let attachment = Attachment {
            message_id: "3A0D".into(),
            kind: "document".into(),
            mimetype: Some("application/pdf".into()),
            file_name: Some("a:b.pdf".into()),
            caption: None,
        };
        assert_eq!(attachment.reference(), "document:3A0D:application/pdf:a_b.pdf");
    }
}
