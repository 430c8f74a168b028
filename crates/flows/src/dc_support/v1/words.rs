//! The words this version recognises in customer messages (matched on word
//! boundaries, accents and case ignored; the longest matching phrase wins).
//! Kept apart from the steps, and out of rustfmt's reach, so that each list
//! reads as one paragraph. Common misspellings are listed with the words.

/// `support`: installing the certificate.
pub(super) const INSTALLATION: &[&str] = &[
    "instalar", "instalacao", "instalei", "baixar", "download", "driver", "nao consigo instalar",
];

/// `support`: a blocked PIN.
pub(super) const PIN: &[&str] = &[
    "pin", "senha", "bloqueado", "bloqueou", "bloqueada", "puk", "senha bloqueada", "pin bloqueado",
];

/// `support`: the computer does not see the token.
pub(super) const TOKEN: &[&str] = &[
    "token nao reconhecido", "nao reconhece", "nao reconhecido", "nao e reconhecido", "nao aparece", "nao detecta",
    "leitora", "token",
];

/// `support`: anything else.
pub(super) const OTHER_ISSUE: &[&str] = &["outro", "outros", "outra coisa", "nenhum", "nenhuma"];
