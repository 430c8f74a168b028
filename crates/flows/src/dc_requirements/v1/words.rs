//! The words this version recognises in customer messages (matched on word
//! boundaries, accents and case ignored; the longest matching phrase wins).
//! Kept apart from the steps, and out of rustfmt's reach, so that each list
//! reads as one paragraph. Common misspellings are listed with the words.

/// A certificate for a person, said plainly enough to change a choice already made.
pub(super) const PERSON: &[&str] = &[
    "e-cpf", "ecpf", "e cpf", "pessoa fisica", "pra mim", "para mim", "pra eu", "no meu nome", "pf",
];

/// A certificate for a company, said plainly enough to change a choice already made.
pub(super) const COMPANY: &[&str] = &[
    "e-cnpj", "ecnpj", "e cnpj", "pessoa juridica", "empresa", "pra empresa", "para a empresa", "minha empresa",
    "pj", "firma",
];

/// The document's name alone: a choice only while none was made ("meu cpf é ...").
pub(super) const PERSON_WEAK: &[&str] = &["cpf"];
pub(super) const COMPANY_WEAK: &[&str] = &["cnpj"];

