//! Brazilian taxpayer documents: CPF (people, 11 digits) and CNPJ (companies,
//! 14 digits), with their check digits verified.
//!
//! Customers type them formatted (`529.982.247-25`, `11.222.333/0001-81`),
//! bare (`52998224725`) or inside a sentence ("meu cpf é 529.982.247-25").
//! [`find`] reads all of these and says why a number was refused, so the
//! re-prompt can be specific. Numbers made of one repeated digit
//! (`111.111.111-11`) pass the check-digit arithmetic but are never issued,
//! so they are refused too.
//!
//! A document is personal data: [`Document`]'s `Debug` masks it.

use std::fmt;

/// Which document a number is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Kind {
    Cpf,
    Cnpj,
}

/// A CPF or CNPJ whose check digits are right. Invariant: `digits` holds
/// exactly 11 (CPF) or 14 (CNPJ) ASCII digits, not all equal, with valid check digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Document {
    kind: Kind,
    digits: String,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Document({:?}, {})", self.kind, self.masked())
    }
}

/// Why no document could be read from a text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Problem {
    /// Nothing in the text looks like a CPF or a CNPJ.
    NotFound,
    /// Eleven digits, but not a valid CPF (check digits or repeated digits).
    BadCpf,
    /// Fourteen digits, but not a valid CNPJ.
    BadCnpj,
}

impl Document {
    /// Parses a text that is just a document (formatted or bare, surrounding
    /// spaces allowed). Use [`find`] for free text.
    pub fn parse(text: &str) -> Result<Document, Problem> {
        let trimmed = text.trim();
        if trimmed.is_empty() || !trimmed.chars().all(|ch| ch.is_ascii_digit() || matches!(ch, '.' | '-' | '/' | ' ')) {
            return Err(Problem::NotFound);
        }
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        from_digits(&digits)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The bare digits.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// `529.982.247-25` or `11.222.333/0001-81`.
    pub fn formatted(&self) -> String {
        let d = &self.digits;
        match self.kind {
            Kind::Cpf => format!("{}.{}.{}-{}", &d[0..3], &d[3..6], &d[6..9], &d[9..11]),
            Kind::Cnpj => format!("{}.{}.{}/{}-{}", &d[0..2], &d[2..5], &d[5..8], &d[8..12], &d[12..14]),
        }
    }

    /// `529.***.***-25`: enough to recognise one's own document, for logs and screens.
    pub fn masked(&self) -> String {
        let d = &self.digits;
        match self.kind {
            Kind::Cpf => format!("{}.***.***-{}", &d[0..3], &d[9..11]),
            Kind::Cnpj => format!("{}.***.***/****-{}", &d[0..2], &d[12..14]),
        }
    }
}

/// Reads the first CPF or CNPJ in free text. Candidates are runs of digits
/// with `.`, `-` or `/` between them, not glued to letters (so the digits of an
/// e-mail address or an order code are not taken for a document). The first
/// valid candidate wins; when there is none, the problem with the first
/// candidate of the right length is reported.
pub fn find(text: &str) -> Result<Document, Problem> {
    let mut first_problem = Problem::NotFound;
    for candidate in candidates(text) {
        let digits: String = candidate.chars().filter(char::is_ascii_digit).collect();
        match from_digits(&digits) {
            Ok(document) => return Ok(document),
            Err(problem) if first_problem == Problem::NotFound => first_problem = problem,
            Err(_) => {}
        }
    }
    Err(first_problem)
}

/// Validates `digits` (ASCII digits only) as a CPF or CNPJ by its length.
fn from_digits(digits: &str) -> Result<Document, Problem> {
    let kind = match digits.len() {
        11 => Kind::Cpf,
        14 => Kind::Cnpj,
        _ => return Err(Problem::NotFound),
    };
    let values: Vec<u32> = digits.bytes().map(|byte| u32::from(byte - b'0')).collect();
    let repeated = values.iter().all(|value| *value == values[0]);
    let valid = !repeated
        && match kind {
            Kind::Cpf => cpf_check_digits(&values[..9]) == (values[9], values[10]),
            Kind::Cnpj => cnpj_check_digits(&values[..12]) == (values[12], values[13]),
        };
    match (valid, kind) {
        (true, _) => Ok(Document { kind, digits: digits.to_owned() }),
        (false, Kind::Cpf) => Err(Problem::BadCpf),
        (false, Kind::Cnpj) => Err(Problem::BadCnpj),
    }
}

/// The two check digits of a CPF's first nine digits (weights 10..2, then 11..2).
pub fn cpf_check_digits(base: &[u32]) -> (u32, u32) {
    let digit = |values: &[u32]| {
        let top = values.len() as u32 + 1;
        let sum: u32 = values.iter().enumerate().map(|(idx, value)| value * (top - idx as u32)).sum();
        (sum * 10 % 11) % 10
    };
    let first = digit(base);
    let mut with_first = base.to_vec();
    with_first.push(first);
    (first, digit(&with_first))
}

/// The two check digits of a CNPJ's first twelve digits (weights 2..9 from the right).
pub fn cnpj_check_digits(base: &[u32]) -> (u32, u32) {
    let digit = |values: &[u32]| {
        let sum: u32 = values.iter().rev().enumerate().map(|(idx, value)| value * (2 + idx as u32 % 8)).sum();
        match sum % 11 {
            0 | 1 => 0,
            rest => 11 - rest,
        }
    };
    let first = digit(base);
    let mut with_first = base.to_vec();
    with_first.push(first);
    (first, digit(&with_first))
}

/// Runs of digits and separators in `text` that start and end with a digit
/// and are not part of a word.
fn candidates(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let glued = |byte: u8| byte.is_ascii_alphabetic() || byte == b'@' || byte == b'_';
    let mut out = Vec::new();
    let mut idx = 0;
    while idx < bytes.len() {
        if !bytes[idx].is_ascii_digit() {
            idx += 1;
            continue;
        }
        let start = idx;
        let mut end = idx;
        while idx < bytes.len() && (bytes[idx].is_ascii_digit() || matches!(bytes[idx], b'.' | b'-' | b'/')) {
            if bytes[idx].is_ascii_digit() {
                end = idx + 1;
            }
            idx += 1;
        }
        let before_ok = start == 0 || !glued(bytes[start - 1]);
        let after_ok = end == bytes.len() || !glued(bytes[end]);
        // A '.' right before a run belongs to a word or address ("ana.123@...").
        let dotted = start > 0 && bytes[start - 1] == b'.' && start > 1 && glued(bytes[start - 2]);
        if before_ok && after_ok && !dotted {
            out.push(&text[start..end]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn well_known_numbers_are_read_formatted_bare_and_in_sentences() {
        let cpf = Document::parse("529.982.247-25").unwrap();
        assert_eq!((cpf.kind(), cpf.digits()), (Kind::Cpf, "52998224725"));
        assert_eq!(cpf.formatted(), "529.982.247-25");
        assert_eq!(Document::parse(" 52998224725 ").unwrap(), cpf);
        assert_eq!(find("oi, meu CPF é 529.982.247-25, obrigada").unwrap(), cpf);

        let cnpj = find("CNPJ: 11.222.333/0001-81").unwrap();
        assert_eq!((cnpj.kind(), cnpj.formatted()), (Kind::Cnpj, "11.222.333/0001-81".to_owned()));
        assert_eq!(find("11222333000181").unwrap(), cnpj);
    }

    #[test]
    fn wrong_check_digits_and_repeated_digits_are_refused_with_the_kind() {
        assert_eq!(find("529.982.247-24"), Err(Problem::BadCpf));
        assert_eq!(find("111.111.111-11"), Err(Problem::BadCpf));
        assert_eq!(find("00000000000"), Err(Problem::BadCpf));
        assert_eq!(find("11.222.333/0001-82"), Err(Problem::BadCnpj));
        assert_eq!(find("11111111111111"), Err(Problem::BadCnpj));
        assert_eq!(find("1234"), Err(Problem::NotFound));
        assert_eq!(find("sem número"), Err(Problem::NotFound));
        assert_eq!(find(""), Err(Problem::NotFound));
        assert_eq!(Document::parse("cpf 52998224725"), Err(Problem::NotFound));
    }

    #[test]
    fn digits_glued_to_words_or_addresses_are_not_documents() {
        assert_eq!(find("ana52998224725@exemplo.com"), Err(Problem::NotFound));
        assert_eq!(find("ana.52998224725@exemplo.com"), Err(Problem::NotFound));
        assert_eq!(find("pedido CF52998224725"), Err(Problem::NotFound));
        // A bad candidate does not hide a good one later in the text.
        assert_eq!(find("529.982.247-24 não, é 529.982.247-25").unwrap().digits(), "52998224725");
    }

    #[test]
    fn debug_masks_the_number() {
        let cpf = Document::parse("529.982.247-25").unwrap();
        let shown = format!("{cpf:?}");
        assert!(!shown.contains("982"), "{shown}");
        assert_eq!(cpf.masked(), "529.***.***-25");
    }

    fn digits_strategy(len: usize) -> impl Strategy<Value = Vec<u32>> {
        proptest::collection::vec(0u32..10, len)
            .prop_filter("not one repeated digit", |digits| digits.iter().any(|digit| *digit != digits[0]))
    }

    fn spell(digits: &[u32]) -> String {
        digits.iter().map(|digit| char::from(b'0' + *digit as u8)).collect()
    }

    /// The textbook mod-11 formulas, written independently of the code above,
    /// to tell a rejected mutation from one the check digits cannot see.
    fn reference_valid(digits: &[u32]) -> bool {
        let n = digits.len();
        let dv = |upto: usize, weights: &dyn Fn(usize) -> u32, cnpj: bool| {
            let sum: u32 = (0..upto).map(|idx| digits[idx] * weights(idx)).sum();
            if cnpj {
                if sum % 11 < 2 { 0 } else { 11 - sum % 11 }
            } else {
                let rest = sum * 10 % 11;
                if rest == 10 { 0 } else { rest }
            }
        };
        if n == 11 {
            dv(9, &|idx| 10 - idx as u32, false) == digits[9] && dv(10, &|idx| 11 - idx as u32, false) == digits[10]
        } else {
            let w1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
            let w2 = [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2];
            dv(12, &|idx| w1[idx], true) == digits[12] && dv(13, &|idx| w2[idx], true) == digits[13]
        }
    }

    proptest! {
        #[test]
        fn a_cpf_with_computed_check_digits_is_valid_formatted_or_bare(base in digits_strategy(9)) {
            let (first, second) = cpf_check_digits(&base);
            let mut digits = base.clone();
            digits.extend([first, second]);
            let bare = spell(&digits);
            let document = Document::parse(&bare).unwrap();
            prop_assert_eq!(document.kind(), Kind::Cpf);
            prop_assert_eq!(Document::parse(&document.formatted()).unwrap(), document.clone());
            prop_assert_eq!(find(&format!("meu cpf é {}.", document.formatted())).unwrap(), document);
            prop_assert!(reference_valid(&digits));
        }

        #[test]
        fn a_cnpj_with_computed_check_digits_is_valid_formatted_or_bare(base in digits_strategy(12)) {
            let (first, second) = cnpj_check_digits(&base);
            let mut digits = base.clone();
            digits.extend([first, second]);
            let document = Document::parse(&spell(&digits)).unwrap();
            prop_assert_eq!(document.kind(), Kind::Cnpj);
            prop_assert_eq!(find(&format!("CNPJ {}", document.formatted())).unwrap(), document);
            prop_assert!(reference_valid(&digits));
        }

        /// Changing one digit is refused. The exception is the scheme's own
        /// blind spot: a mod-11 remainder of 10 and of 0 both give check digit
        /// 0, so a few single-digit changes keep both check digits right (e.g.
        /// 751.361.502-03 and 651.361.502-03 are both valid CPFs). Those are
        /// identified with the independent reference formula. A changed check
        /// digit is always refused.
        #[test]
        fn changing_one_digit_makes_the_number_invalid(
            base in digits_strategy(12),
            cnpj in any::<bool>(),
            position in 0usize..14,
            delta in 1u32..10,
        ) {
            let len = if cnpj { 14 } else { 11 };
            let base = &base[..len - 2];
            let (first, second) = if cnpj { cnpj_check_digits(base) } else { cpf_check_digits(base) };
            let mut digits = base.to_vec();
            digits.extend([first, second]);
            let position = position % len;
            digits[position] = (digits[position] + delta) % 10;
            let result = Document::parse(&spell(&digits));
            if position >= len - 2 {
                prop_assert!(result.is_err());
            } else {
                let repeated = digits.iter().all(|digit| *digit == digits[0]);
                prop_assert_eq!(result.is_ok(), reference_valid(&digits) && !repeated);
            }
        }
    }
}
