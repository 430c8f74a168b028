//! The words this version recognises in customer messages, option by
//! option (matched on word boundaries, accents and case ignored; the longest
//! matching phrase wins). Kept apart from the steps, and out of rustfmt's
//! reach, so that each list reads as one paragraph.

/// A change of subject to the order status, from any step.
pub(super) const STATUS_INTERRUPT: &[&str] = &[
    "status do pedido", "status do meu pedido", "ver o status", "acompanhar o pedido", "acompanhar meu pedido",
    "acompanhar o meu pedido", "andamento do pedido", "andamento do meu pedido", "situacao do pedido",
    "situacao do meu pedido", "onde esta meu pedido", "onde esta o meu pedido", "cade meu pedido", "cade o meu pedido",
];

/// `purchase.confirm_order`, option 2: change the order (also a plain "não").
pub(super) const CONFIRM_CHANGE: &[&str] = &[
    "nao", "alterar", "mudar", "corrigir", "trocar", "refazer", "voltar", "errado", "esta errado",
];

/// `purchase.confirm_order`, option 3: give up.
pub(super) const CONFIRM_CANCEL: &[&str] = &[
    "cancelar", "cancela", "desistir", "desisto", "sair", "nao quero mais", "deixa pra la",
];

/// `route`, option 1: buy a certificate.
pub(super) const BUY: &[&str] = &[
    "comprar", "compra", "adquirir", "novo certificado", "emitir", "fazer um certificado", "quero um certificado",
    "fazer um pedido", "fazer pedido",
];

/// `route`, option 2: renew.
pub(super) const RENEW: &[&str] = &[
    "renovar", "renovacao", "renova", "vencido", "venceu", "vencendo", "expirou", "vai vencer",
];

/// `route`, option 3: technical support.
pub(super) const SUPPORT: &[&str] = &[
    "suporte", "problema", "instalar", "instalacao", "token nao", "nao reconhece", "pin", "senha", "bloqueado",
    "bloqueou", "erro", "nao funciona", "ajuda tecnica",
];

/// `route`, option 4: the documents needed.
pub(super) const REQUIREMENTS: &[&str] = &[
    "requisitos", "documentos", "documentacao", "o que preciso", "o que eu preciso", "quais documentos", "necessario",
];

/// `route`, option 5: an order's status.
pub(super) const STATUS: &[&str] = &[
    "status", "pedido", "meu pedido", "acompanhar", "andamento", "rastrear", "situacao",
];

/// A certificate for a person (`purchase.choose_type`, `requirements.ask_type`).
pub(super) const E_CPF: &[&str] = &["e-cpf", "ecpf", "cpf", "pessoa fisica", "pf", "para mim"];

/// A certificate for a company.
pub(super) const E_CNPJ: &[&str] = &[
    "e-cnpj", "ecnpj", "cnpj", "pessoa juridica", "pj", "empresa", "para a empresa", "para minha empresa",
];

/// `purchase.choose_media`: a file on the computer.
pub(super) const A1: &[&str] = &["a1", "arquivo", "no computador"];

/// A USB token.
pub(super) const A3_TOKEN: &[&str] = &["token", "a3 token", "pendrive", "pen drive"];

/// A smart card.
pub(super) const A3_CARD: &[&str] = &["cartao", "a3 cartao", "smart card", "cartao inteligente"];

/// `purchase.choose_validation`: by video call.
pub(super) const VIDEO: &[&str] = &[
    "videoconferencia", "video", "online", "chamada de video", "remota", "remoto", "de casa",
];

/// In person.
pub(super) const IN_PERSON: &[&str] = &[
    "presencial", "pessoalmente", "ir ate a loja", "na loja", "ponto de atendimento",
];

/// `support.identify_issue`: installing the certificate.
pub(super) const INSTALLATION: &[&str] = &[
    "instalar", "instalacao", "instalei", "baixar", "download", "driver", "nao consigo instalar",
];

/// A blocked PIN.
pub(super) const PIN: &[&str] = &[
    "pin", "senha", "bloqueado", "bloqueou", "bloqueada", "puk", "senha bloqueada", "pin bloqueado",
];

/// The computer does not see the token.
pub(super) const TOKEN: &[&str] = &[
    "token nao reconhecido", "nao reconhece", "nao reconhecido", "nao aparece", "nao detecta", "token", "leitora",
];

/// Anything else.
pub(super) const OTHER_ISSUE: &[&str] = &["outro", "outros", "outra coisa", "nenhum", "nenhuma"];
