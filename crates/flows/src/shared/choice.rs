//! Forgiving option matching for steps that are not a plain `kinds::Menu`
//! (they compute something before moving on): the option's number, `opção 2`,
//! or any of its words, with accents, case, punctuation and emoji ignored.
//! Also the pt-BR words for yes and no, and the re-prompt-or-handoff rule every
//! step shares.

use switchyard_engine::flow::{Ctx, Next};
use std::borrow::Cow;

use switchyard_engine::text::{contains_phrase, is_normalized, normalize};

/// Ways to say yes. Longer phrases in [`NO`] ("não resolveu") beat the
/// shorter yes words they contain ("resolveu").
pub const YES: &[&str] = &[
    "sim",
    "s",
    "ss",
    "isso",
    "isso mesmo",
    "confirmo",
    "confirmar",
    "confirma",
    "confirmado",
    "pode",
    "pode ser",
    "pode sim",
    "ok",
    "okay",
    "claro",
    "certo",
    "correto",
    "positivo",
    "quero",
    "quero sim",
    "resolveu",
    "resolvido",
    "deu certo",
    "funcionou",
    "ajudou",
    "perfeito",
    "beleza",
    "blz",
    "yes",
    "aham",
    "uhum",
    "bora",
    "vamos",
];

/// Ways to say no.
pub const NO: &[&str] = &[
    "nao",
    "n",
    "nn",
    "negativo",
    "nao quero",
    "nao resolveu",
    "nao funcionou",
    "nao deu certo",
    "nao ajudou",
    "ainda nao",
    "continua",
    "continua igual",
    "nada",
    "errado",
    "incorreto",
    "no",
    "nope",
    "nem",
    "de jeito nenhum",
];

/// The option (0-based) that `text` picks among `options`, each given by its
/// words. A leading number (`2`, `2)`, `2️⃣`, `opção 2`) picks by position; a
/// number out of range picks nothing. Otherwise the option with the longest
/// matching phrase wins; two options tied on length pick nothing.
pub fn pick(text: &str, options: &[&[&str]]) -> Option<usize> {
    let normalized = normalize(text);
    if let Some(number) = leading_number(&normalized) {
        return number.checked_sub(1).filter(|idx| *idx < options.len());
    }
    pick_words(&normalized, options)
}

/// The option (0-based) a leading number picks among `count` options, for
/// menus whose words are read some other way.
pub fn number(text: &str, count: usize) -> Option<usize> {
    leading_number(&normalize(text))?.checked_sub(1).filter(|idx| *idx < count)
}

/// True when the text starts with a menu number (`2`, `2)`, `2️⃣`, `opção 2`),
/// in range or not: such a message answers a menu and is never classified.
pub fn starts_with_number(text: &str) -> bool {
    let normalized = normalize(text);
    let first = normalized.split(' ').next().unwrap_or("");
    (!first.is_empty() && first.bytes().all(|byte| byte.is_ascii_digit())) || leading_number(&normalized).is_some()
}

/// Like [`pick`], but numbers are ignored: for a message that started the
/// session, where "1" answered the previous flow's menu.
pub fn pick_by_words(text: &str, options: &[&[&str]]) -> Option<usize> {
    pick_words(&normalize(text), options)
}

/// `Some(true)` for yes, `Some(false)` for no, `None` when unclear. `1` is yes
/// and `2` is no, matching the "1️⃣ Sim 2️⃣ Não" prompts.
pub fn yes_no(text: &str) -> Option<bool> {
    pick(text, &[YES, NO]).map(|idx| idx == 0)
}

/// True when the text has no words at all (empty, spaces, emoji only).
pub fn is_blank(text: &str) -> bool {
    normalize(text).is_empty()
}

/// The shared rule for input a step did not understand: re-prompt with
/// `invalid`, and after `max_attempts` misses in a row hand the customer to a
/// human with the version's `handoff` text.
pub fn retry_or_handoff(ctx: &mut Ctx<'_>, invalid: &str, max_attempts: u32) -> Next {
    if ctx.attempts() + 1 >= max_attempts {
        ctx.say("handoff");
        Next::Handoff
    } else {
        ctx.say(invalid);
        Next::Retry
    }
}

fn leading_number(normalized: &str) -> Option<usize> {
    let mut words = normalized.split(' ');
    let mut first = words.next()?;
    if matches!(first, "opcao" | "numero" | "n") {
        first = words.next()?;
    }
    if first.is_empty() || first.len() > 3 || !first.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    first.parse().ok()
}

fn pick_words(normalized: &str, options: &[&[&str]]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    let mut tied = false;
    for (idx, words) in options.iter().enumerate() {
        let longest = words
            .iter()
            // Word lists are constants, mostly in normal form already: skip the allocation then.
            .map(|word| if is_normalized(word) { Cow::Borrowed(*word) } else { Cow::Owned(normalize(word)) })
            .filter(|phrase| contains_phrase(normalized, phrase))
            .map(|phrase| phrase.len())
            .max();
        let Some(len) = longest else { continue };
        match best {
            Some((_, best_len)) if best_len > len => {}
            Some((_, best_len)) if best_len == len => tied = true,
            _ => {
                best = Some((idx, len));
                tied = false;
            }
        }
    }
    if tied { None } else { best.map(|(idx, _)| idx) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLORS: &[&[&str]] = &[&["azul", "celeste"], &["verde"], &["verde agua"]];

    #[test]
    fn options_are_picked_by_number_or_words() {
        assert_eq!(pick("1", COLORS), Some(0));
        assert_eq!(pick("2️⃣", COLORS), Some(1));
        assert_eq!(pick("Opção 3", COLORS), Some(2));
        assert_eq!(pick("3) verde água", COLORS), Some(2));
        assert_eq!(pick("4", COLORS), None);
        assert_eq!(pick("0", COLORS), None);
        assert_eq!(pick("quero o CELESTE!", COLORS), Some(0));
        assert_eq!(pick("verde água por favor", COLORS), Some(2));
        assert_eq!(pick("", COLORS), None);
        assert_eq!(pick("😀", COLORS), None);
        assert_eq!(pick_by_words("1", COLORS), None);
        assert_eq!(number("2", 3), Some(1));
        assert_eq!(number("4", 3), None);
        assert_eq!(number("verde", 3), None);
    }

    #[test]
    fn ties_pick_nothing() {
        assert_eq!(pick("azul ou rosa", &[&["azul"], &["rosa"]]), None);
        // Not a tie: the longer phrase wins.
        assert_eq!(pick("azul ou verde", COLORS), Some(1));
    }

    #[test]
    fn yes_and_no_are_recognised_with_longer_phrases_winning() {
        for yes in ["sim", "Sim!", "1", "s", "isso mesmo", "resolveu, obrigado", "pode confirmar"] {
            assert_eq!(yes_no(yes), Some(true), "{yes}");
        }
        for no in ["não", "NAO", "2", "não resolveu", "ainda não", "não quero"] {
            assert_eq!(yes_no(no), Some(false), "{no}");
        }
        for unclear in ["", "talvez", "3", "👍"] {
            assert_eq!(yes_no(unclear), None, "{unclear}");
        }
    }
}
