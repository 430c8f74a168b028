//! Order numbers: `CF-` and six digits (`CF-100001`). Customers type them as
//! `CF-100001`, `cf100001`, `CF 100001` or just the six digits, often inside a
//! sentence ("o pedido é o 100001").

use std::fmt;

use switchyard_engine::text::normalize;

/// An order number. Invariant: 100000 <= number <= 999999.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct OrderNumber(u32);

impl OrderNumber {
    /// `None` outside the six-digit range.
    pub fn new(number: u32) -> Option<OrderNumber> {
        (100_000..=999_999).contains(&number).then_some(OrderNumber(number))
    }

    pub fn number(self) -> u32 {
        self.0
    }

    /// Parses the stored spelling (`CF-100001`).
    pub fn parse(text: &str) -> Option<OrderNumber> {
        find(text)
    }
}

impl fmt::Display for OrderNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CF-{}", self.0)
    }
}

/// The first order number in `text`: `CF` followed by six digits (with or
/// without a separator), or a word of exactly six digits.
pub fn find(text: &str) -> Option<OrderNumber> {
    let normalized = normalize(text);
    let words: Vec<&str> = normalized.split(' ').collect();
    for (idx, word) in words.iter().enumerate() {
        let digits = match word.strip_prefix("cf") {
            Some("") => words.get(idx + 1).copied().unwrap_or(""),
            Some(rest) => rest,
            None => word,
        };
        if digits.len() == 6
            && digits.bytes().all(|byte| byte.is_ascii_digit())
            && let Some(number) = digits.parse().ok().and_then(OrderNumber::new)
        {
            return Some(number);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_are_read_in_the_usual_spellings() {
        for text in
            ["CF-100001", "cf100001", "CF 100001", "100001", "o pedido é o cf-100001, obrigado", "Pedido nº 100001!"]
        {
            assert_eq!(find(text).map(|order| order.to_string()).as_deref(), Some("CF-100001"), "{text}");
        }
        for text in ["", "CF-12345", "1234567", "529.982.247-25", "052998", "pedido"] {
            assert_eq!(find(text), None, "{text}");
        }
        assert_eq!(OrderNumber::parse("CF-999999").map(OrderNumber::number), Some(999_999));
    }
}
