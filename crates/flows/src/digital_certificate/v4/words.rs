//! The words this version recognises in customer messages (matched on word
//! boundaries, accents and case ignored; the longest matching phrase wins).
//! Kept apart from the steps, and out of rustfmt's reach, so that each list
//! reads as one paragraph. Common misspellings are listed with the words.

/// A change of subject to the order status, from any step.
pub(super) const STATUS_INTERRUPT: &[&str] = &[
    "status do pedido", "status do meu pedido", "ver o status", "acompanhar o pedido", "acompanhar meu pedido",
    "acompanhar o meu pedido", "andamento do pedido", "andamento do meu pedido", "situacao do pedido",
    "situacao do meu pedido", "onde esta meu pedido", "onde esta o meu pedido", "cade meu pedido", "cade o meu pedido",
];

/// `route`: buy a certificate.
pub(super) const BUY: &[&str] = &[
    "comprar", "compra", "compar", "comprr", "adquirir", "novo certificado", "fazer um certificado",
    "quero um certificado", "quero um e-cpf", "quero um e-cnpj", "fazer um pedido", "fazer pedido", "contratar",
    "emitir um certificado", "emitir certificado",
];

/// `route`: renew.
pub(super) const RENEW: &[&str] = &[
    "renovar", "renovacao", "renova", "renovr", "vencido", "venceu", "vencendo", "vence", "vai vencer", "expirou",
    "expira", "expirando", "vencimento",
];

/// `route`: technical support.
pub(super) const SUPPORT: &[&str] = &[
    "suporte", "problema", "instalar", "instalacao", "token nao", "nao reconhece", "nao reconhecido", "nao e reconhecido",
    "pin", "senha", "bloqueado",
    "bloqueou", "erro", "nao funciona", "ajuda tecnica",
];

/// `route`: the documents needed.
pub(super) const REQUIREMENTS: &[&str] = &[
    "requisitos", "documentos", "documentacao", "o que preciso", "o que eu preciso", "quais documentos", "necessario",
];

/// `route`: an order's status.
pub(super) const STATUS: &[&str] = &[
    "status", "pedido", "meu pedido", "acompanhar", "andamento", "rastrear", "situacao",
];
