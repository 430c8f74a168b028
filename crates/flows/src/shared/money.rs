//! Amounts in reais, kept in centavos so that sums and installments are exact,
//! shown the Brazilian way: `R$ 1.234,56`.

use std::fmt;

/// An amount in centavos.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct Cents(pub u64);

impl Cents {
    /// The amount of each of `parts` installments, rounded up to the centavo
    /// (the last installment may be a few centavos smaller).
    pub fn split(self, parts: u64) -> Cents {
        let parts = parts.max(1);
        Cents(self.0.div_ceil(parts))
    }

    /// `percent`% less, rounded to the centavo.
    pub fn discounted(self, percent: u64) -> Cents {
        Cents((self.0 * (100 - percent.min(100)) + 50) / 100)
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reais = (self.0 / 100).to_string();
        let mut grouped = String::with_capacity(reais.len() + reais.len() / 3);
        for (idx, ch) in reais.chars().enumerate() {
            if idx > 0 && (reais.len() - idx).is_multiple_of(3) {
                grouped.push('.');
            }
            grouped.push(ch);
        }
        write!(f, "R$ {grouped},{:02}", self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_shown_in_reais() {
        assert_eq!(Cents(0).to_string(), "R$ 0,00");
        assert_eq!(Cents(15_990).to_string(), "R$ 159,90");
        assert_eq!(Cents(123_456).to_string(), "R$ 1.234,56");
        assert_eq!(Cents(100_000_000).to_string(), "R$ 1.000.000,00");
    }

    #[test]
    fn installments_round_up_and_discounts_round_to_the_centavo() {
        assert_eq!(Cents(28_990).split(3), Cents(9_664));
        assert_eq!(Cents(28_990).split(2), Cents(14_495));
        assert_eq!(Cents(100).split(0), Cents(100));
        assert_eq!(Cents(15_990).discounted(10), Cents(14_391));
    }
}
