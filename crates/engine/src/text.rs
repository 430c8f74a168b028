//! Text handling for forgiving matching, and the per-version text files.
//!
//! Customer-facing texts live in a `texts.txt` file inside each version folder,
//! embedded at build time. The format is deliberately plain so that a support
//! person can edit it:
//!
//! ```text
//! [greet]
//! Olá! Sou a assistente virtual da CertiFácil.
//!
//! [choose.invalid]
//! Não entendi. Responda com o número da opção.
//! ```
//!
//! A line `[key]` starts an entry; the entry's text is every line up to the next
//! key, with surrounding blank lines trimmed. Lines starting with `//` are
//! comments. `{name}` in a text is replaced by the session value `name`.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use crate::hash::FastMap;

/// Lowercases, strips accents (Portuguese and common Latin letters), turns
/// punctuation into spaces and collapses runs of whitespace, so `"Olá, BOM-dia!"`
/// becomes `"ola bom dia"`. Emoji and other symbols are dropped.
pub fn normalize(text: &str) -> String {
    // The flows normalise the turn's message again and again (each keyword
    // matcher takes the raw text): the engine's own normalisation of a long
    // one is copied instead (see `remember_turn_text`).
    if text.len() >= TURN_TEXT_MIN
        && let Some(known) = TURN_TEXT.with(|memo| memo.borrow().normalized_of(text))
    {
        return known;
    }
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// Texts shorter than this are normalised again rather than remembered:
/// copying them into the memo costs about as much as normalising them.
const TURN_TEXT_MIN: usize = 24;

/// The message of the turn running on this thread and its normal form,
/// while the turn runs, when it has at least `TURN_TEXT_MIN` bytes; both
/// empty otherwise (`normalize("")` is empty, so the empty pair is true as well).
struct TurnText {
    text: String,
    normalized: String,
}

impl TurnText {
    fn normalized_of(&self, text: &str) -> Option<String> {
        (self.text == text).then(|| self.normalized.clone())
    }
}

thread_local! {
    static TURN_TEXT: std::cell::RefCell<TurnText> = const { std::cell::RefCell::new(TurnText { text: String::new(), normalized: String::new() }) };
}

/// Remembers `normalized`, which must be `normalize(text)`, for the calls
/// of [`normalize`] on this thread until [`forget_turn_text`]; returns
/// whether it did (not for a text under `TURN_TEXT_MIN` bytes or over 4 KiB).
#[inline] // a short message costs one comparison
pub(crate) fn remember_turn_text(text: &str, normalized: &str) -> bool {
    debug_assert_eq!(normalized, normalize(text));
    if text.len() < TURN_TEXT_MIN || text.len() > 4096 || normalized.len() > 4096 {
        return false;
    }
    keep_turn_text(text, normalized);
    true
}

fn keep_turn_text(text: &str, normalized: &str) {
    TURN_TEXT.with(|memo| {
        let mut memo = memo.borrow_mut();
        memo.text.clear();
        memo.text.push_str(text);
        memo.normalized.clear();
        memo.normalized.push_str(normalized);
    });
}

/// Ends [`remember_turn_text`] (the buffers are kept for the next turn).
pub(crate) fn forget_turn_text() {
    TURN_TEXT.with(|memo| {
        let mut memo = memo.borrow_mut();
        memo.text.clear();
        memo.normalized.clear();
    });
}

/// [`normalize`] appended to `out` (empty: a reused buffer).
pub(crate) fn normalize_into(text: &str, out: &mut String) {
    debug_assert!(out.is_empty());
    out.reserve(text.len());
    let bytes = text.as_bytes();
    // Set at a separator once a word was written: the next word is
    // preceded by one space.
    let mut pending_space = false;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        // ASCII first, a byte at a time through a table: nearly every
        // customer message and every phrase is mostly ASCII, and the
        // accent table below is a long match.
        let mapped = if byte.is_ascii() {
            at += 1;
            match ASCII_FOLD[usize::from(byte)] {
                0 => None,
                folded => Some(char::from(folded)),
            }
        } else {
            let ch = text[at..].chars().next().unwrap_or_default();
            at += ch.len_utf8().max(1);
            fold_char(ch).filter(|ch| ch.is_alphanumeric())
        };
        match mapped {
            Some(ch) => {
                if pending_space {
                    out.push(' ');
                    pending_space = false;
                }
                out.push(ch);
            }
            // '@' and '.' inside words matter for e-mails and numbers; the
            // caller that needs them reads the raw text instead.
            None => pending_space = !out.is_empty(),
        }
    }
}

/// An ASCII byte lowercased when it is a letter or digit, 0 otherwise.
const ASCII_FOLD: [u8; 128] = {
    let mut table = [0u8; 128];
    let mut byte = 0;
    while byte < 128 {
        let ch = (byte as u8).to_ascii_lowercase();
        if ch.is_ascii_alphanumeric() {
            table[byte] = ch;
        }
        byte += 1;
    }
    table
};

fn fold_char(ch: char) -> Option<char> {
    let folded = match ch {
        'á' | 'à' | 'â' | 'ã' | 'ä' | 'Á' | 'À' | 'Â' | 'Ã' | 'Ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ç' | 'Ç' => 'c',
        'ñ' | 'Ñ' => 'n',
        ch if ch.is_ascii() => ch.to_ascii_lowercase(),
        ch if ch.is_alphabetic() => return ch.to_lowercase().next(),
        _ => return None,
    };
    Some(folded)
}

/// True when `phrase` (already normalised) occurs in `haystack` (already
/// normalised) on word boundaries: "boleto" matches "segunda via do boleto" but
/// "cpf" does not match "cpfx".
pub fn contains_phrase(haystack: &str, phrase: &str) -> bool {
    // Both sides are normalised: words separated by single spaces. So a match
    // can only start at a word start, and comparing there is cheaper than
    // building a substring searcher for every phrase (the hot path of menus
    // and intent matching).
    let (hay, needle) = (haystack.as_bytes(), phrase.as_bytes());
    let Some(&first) = needle.first() else { return false };
    if hay.len() >= 24 {
        return contains_phrase_long(hay, needle, first);
    }
    let mut start = 0;
    // Flows test dozens of phrases against one message: most word starts
    // fail on their first byte, which is checked before comparing slices.
    while start + needle.len() <= hay.len() {
        let end = start + needle.len();
        if hay[start] == first && &hay[start..end] == needle && (end == hay.len() || hay[end] == b' ') {
            return true;
        }
        match hay[start..].iter().position(|byte| *byte == b' ') {
            Some(space) => start += space + 1,
            None => return false,
        }
    }
    false
}

/// [`contains_phrase`] for a longer text: it is scanned for the phrase's
/// first byte eight bytes at a time, and only where that byte starts a word
/// are the bytes compared.
#[inline(never)]
fn contains_phrase_long(hay: &[u8], needle: &[u8], first: u8) -> bool {
    if needle.len() > hay.len() {
        return false;
    }
    // Where the phrase may start: 0..starts.
    let starts = hay.len() - needle.len() + 1;
    let matches_at = |start: usize| {
        let end = start + needle.len();
        (start == 0 || hay[start - 1] == b' ') && &hay[start..end] == needle && (end == hay.len() || hay[end] == b' ')
    };
    // The start positions in `found` (the high bit of each byte where the
    // text has `first`), from byte `at` of the text.
    let any_match = |mut found: u64, at: usize| {
        while found != 0 {
            if matches_at(at + (found.trailing_zeros() / 8) as usize) {
                return true;
            }
            found &= found - 1;
        }
        false
    };
    let spread = u64::from(first) * 0x0101_0101_0101_0101;
    let mut at = 0;
    while at + 8 <= starts {
        if any_match(bytes_equal(word_at(hay, at), spread), at) {
            return true;
        }
        at += 8;
    }
    if at == starts {
        return false;
    }
    if starts < 8 {
        // A phrase nearly as long as the text: a few starts, one at a time.
        return (at..starts).any(|start| hay[start] == first && matches_at(start));
    }
    // The last starts, in the eight bytes before `starts` read again; the
    // ones before `at` were already checked.
    let base = starts - 8;
    any_match(bytes_equal(word_at(hay, base), spread) & (u64::MAX << ((at - base) * 8)), base)
}

/// The high bit of each byte of `word` equal to that byte of `spread`
/// (exact per byte: no carries).
fn bytes_equal(word: u64, spread: u64) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let diff = word ^ spread;
    !(((diff & LOW) + LOW) | diff | LOW)
}

/// The bytes the words of a normalised text start with, as a bitmap: a
/// phrase whose first byte is not among them cannot occur in the text on
/// word boundaries ([`contains_phrase`]), so lists of phrases are checked
/// without scanning the text once per phrase.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct WordStarts([u64; 4]);

impl WordStarts {
    /// The word starts of `normalized`.
    pub(crate) fn of(normalized: &str) -> WordStarts {
        let mut starts = WordStarts::default();
        let bytes = normalized.as_bytes();
        if let Some(first) = bytes.first() {
            starts.add(*first);
        }
        for pair in bytes.windows(2) {
            if pair[0] == b' ' {
                starts.add(pair[1]);
            }
        }
        starts
    }
    /// The first bytes of `phrases`.
    pub(crate) fn firsts<'p>(phrases: impl IntoIterator<Item = &'p str>) -> WordStarts {
        let mut starts = WordStarts::default();
        for byte in phrases.into_iter().filter_map(|phrase| phrase.as_bytes().first()) {
            starts.add(*byte);
        }
        starts
    }
    fn add(&mut self, byte: u8) {
        self.0[usize::from(byte >> 6)] |= 1 << (byte & 63);
    }
    fn has(&self, byte: u8) -> bool {
        self.0[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0
    }
    /// Whether `phrase` may start at one of these word starts.
    pub(crate) fn may_start(&self, phrase: &str) -> bool {
        phrase.as_bytes().first().is_some_and(|byte| self.has(*byte))
    }
    /// Whether a word of `normalized` starts with one of these bytes
    /// (without building the text's own set; it stops at the first).
    pub(crate) fn start_a_word_of(&self, normalized: &str) -> bool {
        let bytes = normalized.as_bytes();
        bytes.first().is_some_and(|byte| self.has(*byte)) || bytes.windows(2).any(|pair| pair[0] == b' ' && self.has(pair[1]))
    }
}

/// True when `text` is already in the form [`normalize`] produces, so callers
/// can skip an allocation for constant phrases written in normal form.
pub fn is_normalized(text: &str) -> bool {
    // Flows call this for each constant phrase on every message (dozens per
    // message), so it checks eight bytes at a time: only `a-z`, `0-9` and
    // single spaces between words. Phrases of up to 16 bytes (nearly all)
    // are one or two overlapping words with no loop, in a function that
    // needs no saved registers; longer ones go to `is_normalized_long`.
    let bytes = text.as_bytes();
    let len = bytes.len();
    if len == 0 {
        return true;
    }
    if len <= 8 {
        let word = if len == 8 { word_at(bytes, 0) } else { short_word(bytes) };
        // A space at the first or the last byte, or two in a row.
        let edges = 0x80 | (0x80 << ((len - 1) * 8));
        return normal_word(word).is_some_and(|spaces| spaces & ((spaces << 8) | edges) == 0);
    }
    if len > 16 {
        return is_normalized_long(bytes);
    }
    // Bytes 0..8 and len-8..len: every pair of neighbours is inside one of
    // the two words except 7-8 when the text is 16 bytes long, checked apart.
    let (Some(head), Some(tail)) = (normal_word(word_at(bytes, 0)), normal_word(word_at(bytes, len - 8))) else { return false };
    head & ((head << 8) | 0x80) == 0 && tail & ((tail << 8) | (0x80 << 56)) == 0 && !(bytes[7] == b' ' && bytes[8] == b' ')
}

/// [`is_normalized`] for a text of more than 16 bytes: a word at a time.
#[inline(never)]
fn is_normalized_long(bytes: &[u8]) -> bool {
    let len = bytes.len();
    debug_assert!(len > 16);
    if bytes[0] == b' ' || bytes[len - 1] == b' ' {
        return false;
    }
    let mut after_space = false;
    let mut at = 0;
    while at + 8 <= len {
        let Some(spaces) = normal_word(word_at(bytes, at)) else { return false };
        // A space at this word's first byte after one at the previous word's last.
        if spaces & (spaces << 8) != 0 || (after_space && spaces & 0x80 != 0) {
            return false;
        }
        after_space = spaces >> 63 != 0;
        at += 8;
    }
    // The last bytes, read again from `len - 8`: the pair across that
    // start was already checked above.
    at == len || normal_word(word_at(bytes, len - 8)).is_some_and(|spaces| (spaces & (spaces << 8)) == 0)
}

/// The eight bytes of `bytes` at `at` as a little-endian word.
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The 1 to 7 `bytes` in a word, padded with `a` (in normal form, not a space).
fn short_word(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    debug_assert!((1..8).contains(&len));
    // Two overlapping reads put every byte at its place (the overlap ORs
    // equal bytes), no loop and no call to `memcpy`.
    let word = if len >= 4 {
        let low = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let high = u32::from_le_bytes([bytes[len - 4], bytes[len - 3], bytes[len - 2], bytes[len - 1]]);
        u64::from(low) | (u64::from(high) << ((len - 4) * 8))
    } else if len >= 2 {
        let low = u16::from_le_bytes([bytes[0], bytes[1]]);
        let high = u16::from_le_bytes([bytes[len - 2], bytes[len - 1]]);
        u64::from(low) | (u64::from(high) << ((len - 2) * 8))
    } else {
        u64::from(bytes[0])
    };
    word | (0x6161_6161_6161_6161u64 << (len * 8))
}

/// For a word of eight bytes that are each `a-z`, `0-9` or a space: the
/// high bit of every byte that is a space. `None` for any other byte.
fn normal_word(word: u64) -> Option<u64> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    if word & HIGH != 0 {
        return None;
    }
    // Every byte of `set` is 0x80 + its byte, so subtracting a constant
    // below 0x80 borrows from no neighbour: the high bit stays where the
    // byte is at least that constant.
    let set = word | HIGH;
    let at_least = |byte: u64| set.wrapping_sub(byte * ONES) & HIGH;
    let lower = at_least(u64::from(b'a')) & !at_least(u64::from(b'z') + 1);
    let digit = at_least(u64::from(b'0')) & !at_least(u64::from(b'9') + 1);
    let space = at_least(u64::from(b' ')) & !at_least(u64::from(b' ') + 1);
    ((lower | digit | space) == HIGH).then_some(space)
}

/// A constant text and, when it reads as a numbered menu, its option titles.
pub(crate) type ConstantMenu<'a> = (&'a Cow<'static, str>, Option<&'a Arc<[String]>>);

/// The texts of one version, parsed from its embedded `texts.txt`.
///
/// A text is kept as a slice of the embedded file when it is one (so a
/// reply of a constant text shares it instead of copying it, see
/// [`crate::flow::Ctx::say`]), and looked up by FxHash: its keys are the
/// version's own.
#[derive(Debug, Default, Clone)]
pub struct Texts {
    entries: FastMap<&'static str, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    text: Cow<'static, str>,
    /// No `{name}` placeholder: the text is sent as written.
    constant: bool,
    /// For a text with placeholders: its pieces ([`pieces`]), so rendering
    /// it does not search the text again.
    pieces: Vec<Piece>,
    /// For a constant text: its numbered-menu option titles
    /// ([`crate::media::menu_options`]), found the first time it is sent as a menu.
    menu: OnceLock<Option<Arc<[String]>>>,
}

impl Texts {
    /// Parses the text file format described in the module docs.
    pub fn parse(source: &'static str) -> Result<Texts, String> {
        let mut entries = FastMap::default();
        let mut current: Option<(&'static str, usize, Vec<&'static str>)> = None;
        let finish = |current: Option<(&'static str, usize, Vec<&'static str>)>,
                          entries: &mut FastMap<&'static str, Entry>|
         -> Result<(), String> {
            if let Some((key, line_no, lines)) = current {
                let body = lines.join("\n").trim_matches('\n').trim_end().to_owned();
                if body.is_empty() {
                    return Err(format!("line {line_no}: text '{key}' is empty"));
                }
                // The same text as a slice of the file, when the lines are
                // contiguous there (no comment between them, no "\r\n").
                let text = match (lines.first(), lines.last()) {
                    (Some(first), Some(last)) => {
                        let start = first.as_ptr() as usize - source.as_ptr() as usize;
                        let end = last.as_ptr() as usize - source.as_ptr() as usize + last.len();
                        let slice = source[start..end].trim_matches('\n').trim_end();
                        if slice == body { Cow::Borrowed(slice) } else { Cow::Owned(body) }
                    }
                    _ => Cow::Owned(body),
                };
                let constant = !text.contains('{');
                let pieces = if constant { Vec::new() } else { pieces(&text) };
                if entries.insert(key, Entry { text, constant, pieces, menu: OnceLock::new() }).is_some() {
                    return Err(format!("line {line_no}: text '{key}' is defined twice"));
                }
            }
            Ok(())
        };
        for (idx, line) in source.lines().enumerate() {
            let line_no = idx + 1;
            if line.trim_start().starts_with("//") {
                continue;
            }
            let trimmed = line.trim();
            if trimmed.starts_with('[') && trimmed.ends_with(']') && trimmed.len() > 2 {
                let key = &trimmed[1..trimmed.len() - 1];
                if !key.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-')) {
                    return Err(format!("line {line_no}: text key '{key}' may only hold letters, digits, '_', '.' and '-'"));
                }
                finish(current.take(), &mut entries)?;
                current = Some((key, line_no, Vec::new()));
            } else if let Some((_, _, lines)) = current.as_mut() {
                lines.push(line.trim_end());
            } else if !trimmed.is_empty() {
                return Err(format!("line {line_no}: text before the first [key] line"));
            }
        }
        finish(current.take(), &mut entries)?;
        Ok(Texts { entries })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|entry| entry.text.as_ref())
    }

    /// The text `key` when it has no placeholder (it is sent as written),
    /// shared: a clone copies no text when it is a slice of the file.
    pub(crate) fn constant(&self, key: &str) -> Option<&Cow<'static, str>> {
        self.entries.get(key).filter(|entry| entry.constant).map(|entry| &entry.text)
    }

    /// The constant text `key` with its option titles when read as a
    /// numbered menu ([`crate::media::menu_options`], computed once).
    pub(crate) fn constant_menu(&self, key: &str) -> Option<ConstantMenu<'_>> {
        let entry = self.entries.get(key).filter(|entry| entry.constant)?;
        let titles = entry.menu.get_or_init(|| crate::media::menu_options(&entry.text).map(Arc::from));
        Some((&entry.text, titles.as_ref()))
    }

    /// The text `key` rendered as [`render`] does (from its pieces, read
    /// once); `None` when there is no text `key`.
    pub(crate) fn render<'a>(&self, key: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
        let entry = self.entries.get(key)?;
        if entry.constant {
            return Some(entry.text.clone().into_owned());
        }
        Some(render_pieces(&entry.text, &entry.pieces, lookup))
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().copied()
    }

    /// Every key with its text, sorted by key (for snapshots and diffs).
    pub fn sorted(&self) -> Vec<(&str, &str)> {
        let mut all: Vec<(&str, &str)> = self.entries.iter().map(|(key, entry)| (*key, entry.text.as_ref())).collect();
        all.sort_unstable();
        all
    }
}

/// Replaces `{name}` with `lookup(name)`; unknown names are left as written so
/// that a mistake shows in the transcript tests instead of vanishing.
pub fn render<'a>(template: &str, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    if !template.contains('{') {
        return template.to_owned();
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if after[..close].chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') && close > 0 => {
                let name = &after[..close];
                match lookup(name) {
                    Some(value) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A template's literal text and `{name}` placeholders, as byte ranges of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    name: bool,
    start: usize,
    end: usize,
}

/// `template` cut where [`render`] would look: literal runs, and the names
/// of well-formed placeholders (a `{` that opens none is literal).
fn pieces(template: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let literal = |pieces: &mut Vec<Piece>, start: usize, end: usize| {
        if start < end {
            pieces.push(Piece { name: false, start, end });
        }
    };
    let mut pos = 0;
    while let Some(open) = template[pos..].find('{') {
        let open = pos + open;
        literal(&mut pieces, pos, open);
        let after = open + 1;
        match template[after..].find('}') {
            Some(close) if template[after..after + close].chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') && close > 0 => {
                pieces.push(Piece { name: true, start: after, end: after + close });
                pos = after + close + 1;
            }
            _ => {
                literal(&mut pieces, open, after);
                pos = after;
            }
        }
    }
    literal(&mut pieces, pos, template.len());
    pieces
}

/// [`render`] from the pieces [`pieces`] cut `template` into.
fn render_pieces<'a>(template: &str, pieces: &[Piece], lookup: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    for piece in pieces {
        let text = &template[piece.start..piece.end];
        if !piece.name {
            out.push_str(text);
            continue;
        }
        match lookup(text) {
            Some(value) => out.push_str(value),
            None => {
                out.push('{');
                out.push_str(text);
                out.push('}');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_case_accents_and_punctuation() {
        assert_eq!(normalize("Olá, BOM-dia!  Quero RENOVAÇÃO"), "ola bom dia quero renovacao");
        assert_eq!(normalize("😀👍"), "");
        assert_eq!(normalize("  1) "), "1");
    }

    #[test]
    fn normal_form_is_recognised() {
        assert!(is_normalized("segunda via do boleto"));
        assert!(!is_normalized("Segunda via"));
        assert!(!is_normalized("renovação"));
        assert!(!is_normalized(" x"));
        assert!(!is_normalized("a  b"));
    }

    #[test]
    fn phrases_match_on_word_boundaries() {
        assert!(contains_phrase("segunda via do boleto", "boleto"));
        assert!(contains_phrase("segunda via do boleto", "segunda via"));
        assert!(!contains_phrase("boletos", "boleto"));
        assert!(!contains_phrase("cpfx", "cpf"));
        assert!(contains_phrase("e cpf", "cpf"));
        assert!(contains_phrase("quero o status do pedido agora", "status do pedido"));
        assert!(!contains_phrase("status do pedidos", "status do pedido"));
        assert!(!contains_phrase("cpf", "e cpf"));
        assert!(!contains_phrase("", "a"));
    }

    #[test]
    fn texts_parse_keys_and_bodies() {
        let texts = Texts::parse("// comment\n[a]\nline 1\nline 2\n\n[b.c]\nx\n").unwrap();
        assert_eq!(texts.get("a"), Some("line 1\nline 2"));
        assert_eq!(texts.get("b.c"), Some("x"));
        assert!(Texts::parse("stray\n[a]\nx").unwrap_err().contains("line 1"));
        assert!(Texts::parse("[a]\nx\n[a]\ny").unwrap_err().contains("'a' is defined twice"));
        assert!(Texts::parse("[a]\n\n[b]\ny").unwrap_err().contains("'a' is empty"));
        // Texts that are no slice of the file (CRLF, a comment or trailing
        // blanks inside) read the same as those that are.
        let texts = Texts::parse("[a]\r\nline 1  \r\n// note\r\nline 2\r\n\r\n[b]\n\nHi {name}\n").unwrap();
        assert_eq!(texts.get("a"), Some("line 1\nline 2"));
        assert!(matches!(texts.constant("a"), Some(Cow::Owned(text)) if text == "line 1\nline 2"));
        assert_eq!(texts.get("b"), Some("Hi {name}"));
        assert_eq!(texts.constant("b"), None, "a text with a placeholder is rendered");
        let texts = Texts::parse("[menu]\nEscolha:\n1. *Um*\n2. Dois\n").unwrap();
        assert!(matches!(texts.constant("menu"), Some(Cow::Borrowed("Escolha:\n1. *Um*\n2. Dois"))));
        let (_, titles) = texts.constant_menu("menu").unwrap();
        assert_eq!(titles.map(|titles| titles.to_vec()), Some(vec!["1. Um".to_owned(), "2. Dois".to_owned()]));
    }

    #[test]
    fn render_fills_known_names_and_keeps_unknown_ones() {
        let out = render("Olá {name}, total {price} {missing} {not a name}", |name| match name {
            "name" => Some("Ana"),
            "price" => Some("R$ 10"),
            _ => None,
        });
        assert_eq!(out, "Olá Ana, total R$ 10 {missing} {not a name}");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// What [`is_normalized`] must answer: lowercase ASCII letters, digits
    /// and single inner spaces.
    fn normal_by_definition(text: &str) -> bool {
        !text.starts_with(' ')
            && !text.ends_with(' ')
            && !text.contains("  ")
            && text.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b' ')
    }

    /// Every placement of spaces in texts of 1 to 18 bytes (the one-word,
    /// two-word and looping paths and their borders), and each of them with
    /// one byte at each place replaced by a byte just outside the accepted ranges.
    #[test]
    fn normal_form_check_agrees_with_its_definition_for_every_placement_of_spaces() {
        for len in 1..=18usize {
            for spaces in 0u32..(1 << len) {
                let mut text: Vec<u8> = (0..len).map(|at| if spaces & (1 << at) != 0 { b' ' } else { b"az09"[at % 4] }).collect();
                let as_text = std::str::from_utf8(&text).unwrap().to_owned();
                assert_eq!(is_normalized(&as_text), normal_by_definition(&as_text), "{as_text:?}");
                if spaces % 7 == 0 {
                    for at in 0..len {
                        let kept = text[at];
                        for odd in [b'`', b'{', b'/', b':', b'!', b'A', b'Z', 0x7f, 0x1f] {
                            text[at] = odd;
                            let odd_text = std::str::from_utf8(&text).unwrap();
                            assert!(!is_normalized(odd_text), "{odd_text:?}");
                        }
                        text[at] = kept;
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn normalize_is_idempotent_and_yields_lowercase_words(text in "\\PC{0,60}") {
            let once = normalize(&text);
            prop_assert_eq!(normalize(&once), once.clone());
            prop_assert!(!once.starts_with(' ') && !once.ends_with(' ') && !once.contains("  "));
            prop_assert!(once.chars().all(|ch| ch == ' ' || ch.is_alphanumeric()));
        }

        #[test]
        fn normalize_while_a_turn_text_is_remembered_is_normalize(text in "[a-zA-Z0-9 .,!\u{e1}-]{0,40}", other in "[a-zA-Z0-9 .,!\u{e1}-]{0,40}") {
            let mut fresh = String::new();
            normalize_into(&other, &mut fresh);
            let mut normalized = String::new();
            normalize_into(&text, &mut normalized);
            let remembered = remember_turn_text(&text, &normalized);
            prop_assert_eq!(remembered, text.len() >= TURN_TEXT_MIN);
            prop_assert_eq!(normalize(&text), normalized.clone());
            prop_assert_eq!(normalize(&other), fresh.clone());
            forget_turn_text();
            prop_assert_eq!(normalize(&text), normalized);
            prop_assert_eq!(normalize(&other), fresh);
        }

        #[test]
        fn normal_form_check_agrees_with_its_definition(text in "[a-z0-9 A\u{e1}.]{0,12}") {
            prop_assert_eq!(is_normalized(&text), normal_by_definition(&text));
        }

        #[test]
        fn normal_form_check_agrees_with_its_definition_at_every_length(text in "[a0 ]{0,40}|[a-z0-9 ]{0,40}|[a-z0-9 /:`{@\\[\x1f!\x7f\u{e1}]{0,40}") {
            prop_assert_eq!(is_normalized(&text), normal_by_definition(&text));
        }

        #[test]
        fn normalize_agrees_with_the_char_by_char_definition_on_mostly_ascii(text in "[a-zA-Z0-9 .,!@\u{e1}\u{c9}\u{e7}\u{1f600}-]{0,40}") {
            normalize_agrees_with_the_char_by_char_definition_on(&text)?;
        }

        #[test]
        fn normalize_agrees_with_the_char_by_char_definition(text in "\\PC{0,40}") {
            normalize_agrees_with_the_char_by_char_definition_on(&text)?;
        }
    }

    /// `normalize` against its definition, one character at a time.
    fn normalize_agrees_with_the_char_by_char_definition_on(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut defined = String::new();
        let mut pending_space = false;
        for ch in text.chars() {
            match fold_char(ch) {
                Some(ch) if ch.is_alphanumeric() => {
                    if pending_space && !defined.is_empty() {
                        defined.push(' ');
                    }
                    pending_space = false;
                    defined.push(ch);
                }
                _ => pending_space = true,
            }
        }
        prop_assert_eq!(normalize(text), defined);
        Ok(())
    }

    proptest! {
        #[test]
        fn phrase_search_agrees_with_a_naive_word_window_search(words in proptest::collection::vec("[ab]{1,2}", 0..8), phrase in proptest::collection::vec("[ab]{1,2}", 1..3)) {
            let haystack = words.join(" ");
            let needle = phrase.join(" ");
            let naive = words.windows(phrase.len()).any(|window| window == phrase.as_slice());
            prop_assert_eq!(contains_phrase(&haystack, &needle), naive);
        }

        #[test]
        fn rendering_from_pieces_is_rendering(template in "[ab_{}{}1 ]{0,24}") {
            let lookup = |name: &str| match name {
                "a" => Some("<A>"),
                "ab" => Some(""),
                "b_1" => Some("{b}"),
                _ => None,
            };
            prop_assert_eq!(render_pieces(&template, &pieces(&template), lookup), render(&template, lookup));
        }

        #[test]
        fn word_starts_never_rule_out_a_phrase_that_occurs(words in proptest::collection::vec("[abc1]{1,3}", 0..8), phrase in proptest::collection::vec("[abc1]{1,2}", 1..3)) {
            let haystack = words.join(" ");
            let needle = phrase.join(" ");
            let starts = WordStarts::of(&haystack);
            if contains_phrase(&haystack, &needle) {
                prop_assert!(starts.may_start(&needle));
                prop_assert!(WordStarts::firsts([needle.as_str()]).start_a_word_of(&haystack));
            }
            prop_assert_eq!(starts.may_start(&needle), words.iter().any(|word| word.as_bytes()[0] == needle.as_bytes()[0]));
        }

        #[test]
        fn phrase_search_agrees_with_a_naive_word_window_search_on_long_texts(words in proptest::collection::vec("[abc]{1,4}", 0..24), phrase in proptest::collection::vec("[abc]{1,3}", 1..4)) {
            let haystack = words.join(" ");
            let needle = phrase.join(" ");
            let naive = words.windows(phrase.len()).any(|window| window == phrase.as_slice());
            prop_assert_eq!(contains_phrase(&haystack, &needle), naive);
        }

        #[test]
        fn phrase_search_agrees_with_a_naive_word_window_search_for_phrases_nearly_as_long_as_the_text(words in proptest::collection::vec("[ab]{1,3}", 8..14), skip in 0usize..3, cut in 0usize..3, other in "[ab]{1,3}", at in 0usize..8) {
            // Phrases of most of the text's words, sometimes with one word changed.
            let haystack = words.join(" ");
            let mut phrase = words[skip..words.len() - cut].to_vec();
            if at < phrase.len() {
                phrase[at] = other;
            }
            let needle = phrase.join(" ");
            let naive = words.windows(phrase.len()).any(|window| window == phrase.as_slice());
            prop_assert_eq!(contains_phrase(&haystack, &needle), naive);
        }

        #[test]
        fn a_word_is_found_in_any_sentence_that_contains_it(before in "[a-z ]{0,20}", word in "[a-z]{1,10}", after in "[a-z ]{0,20}") {
            let sentence = normalize(&format!("{before} {word} {after}"));
            prop_assert!(contains_phrase(&sentence, &word));
        }
    }
}
