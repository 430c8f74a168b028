//! Recognising what the customer wants from free text, with keywords:
//! accents, case and filler words ("oi, bom dia, eu queria ...") do not matter.

use std::borrow::Cow;

use switchyard_engine::text::{contains_phrase, is_normalized, normalize};

/// The first intent whose phrases occur in `text`, preferring the longest
/// matching phrase (so "status do pedido" beats "pedido").
pub fn classify<'a, T: Copy>(text: &str, intents: &'a [(T, &'a [&'a str])]) -> Option<T> {
    let normalized = normalize(text);
    let mut best: Option<(T, usize)> = None;
    for (intent, phrases) in intents {
        for phrase in *phrases {
            // Phrases are constants, mostly written in normal form already:
            // normalise only those that are not (no allocation otherwise).
            let phrase: Cow<'_, str> = if is_normalized(phrase) { Cow::Borrowed(phrase) } else { Cow::Owned(normalize(phrase)) };
            if contains_phrase(&normalized, &phrase) && best.is_none_or(|(_, len)| phrase.len() > len) {
                best = Some((*intent, phrase.len()));
            }
        }
    }
    best.map(|(intent, _)| intent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_phrase_wins_and_filler_is_ignored() {
        let intents: &[(u8, &[&str])] = &[(1, &["pedido"]), (2, &["status do pedido"])];
        assert_eq!(classify("Oi, bom dia! Queria o STATUS do pedido", intents), Some(2));
        assert_eq!(classify("meu pedido", intents), Some(1));
        assert_eq!(classify("nada a ver", intents), None);
    }
}
