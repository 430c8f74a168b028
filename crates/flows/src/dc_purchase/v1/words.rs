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

/// A file installed on the computer.
pub(super) const A1: &[&str] = &["a1", "a 1", "arquivo", "no computador", "na maquina"];

/// A USB token.
pub(super) const A3_TOKEN: &[&str] = &["token", "tokem", "a3 token", "a3 no token", "pendrive", "pen drive"];

/// A smart card.
pub(super) const A3_CARD: &[&str] = &["cartao", "a3 cartao", "a3 no cartao", "smart card", "cartao inteligente"];

/// The validation by video call (the default).
pub(super) const VIDEO: &[&str] = &["video", "videoconferencia", "video chamada", "videochamada", "online", "remoto"];

/// The validation in person.
pub(super) const IN_PERSON: &[&str] = &["presencial", "pessoalmente", "na loja", "ponto de atendimento"];

/// A side question about the price.
pub(super) const ASK_PRICE: &[&str] = &[
    "quanto custa", "quanto fica", "quanto sai", "quanto e", "qual o preco", "qual o valor", "preco", "valor", "precos",
];

/// A side question about how long it takes.
pub(super) const ASK_DEADLINE: &[&str] = &[
    "prazo", "quanto tempo", "demora", "quando fica pronto", "em quanto tempo", "quando recebo", "e rapido",
];

/// A side question about what the media mean (its words choose nothing).
pub(super) const ASK_MEDIA: &[&str] = &[
    "o que e a1", "o que e o a1", "o que e a3", "o que e o a3", "o que significa a1", "o que significa a3",
    "diferenca entre a1 e a3", "qual a diferenca", "qual e a diferenca", "a1 ou a3",
];

/// The confirmation: change something.
pub(super) const CHANGE: &[&str] = &[
    "nao", "alterar", "mudar", "corrigir", "trocar", "errado", "esta errado", "quero mudar",
];

/// The confirmation: give up.
pub(super) const CANCEL: &[&str] = &[
    "cancelar", "cancela", "desistir", "desisto", "nao quero mais", "deixa pra la",
];
