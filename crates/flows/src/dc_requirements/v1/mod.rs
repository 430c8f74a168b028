//! `dc_requirements` v1: the documents a digital certificate needs, as a
//! flow of its own, called by `digital_certificate` v4
//! (`Call::new("dc_requirements")`). The code is v3's requirements subroute,
//! unchanged, in 1 step: `requirements.ask_type` (a form) takes the
//! certificate from the message that brought the customer here when it says
//! ("documentos para e-CNPJ"), or asks, then lists the documents.

use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::form::{Extracted, Form, Said, Slot, Source};

use super::texts::{self, *};
use crate::Deps;
use crate::shared::backend::CertType;
use crate::shared::choice;

#[rustfmt::skip]
mod words;

// The fingerprint covers the shared helpers this file names. Also used,
// through `shared::backend`: shared::money, shared::dates, shared::document, shared::order.

/// The version's step ids, typed once.
mod step {
    pub(super) const REQUIREMENTS: &str = "requirements.ask_type";
}

/// Misses tolerated at the numbered question.
const MENU_ATTEMPTS: u32 = 2;

/// A lone menu number answering this form's own question, among `count` options.
fn answered_number(said: Said<'_>, count: usize) -> Option<usize> {
    if !said.answering || !choice::starts_with_number(said.text) {
        return None;
    }
    choice::number(said.text, count)
}

fn cert_type(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    let idx = answered_number(said, 2).or_else(|| {
        choice::pick_by_words(said.text, &[words::PERSON, words::COMPANY])
            .or_else(|| choice::pick_by_words(said.text, &[words::PERSON_WEAK, words::COMPANY_WEAK]))
    });
    match idx {
        Some(idx) => Extracted::Value(CertType::ALL[idx].code().to_owned()),
        None => Extracted::Nothing,
    }
}

fn send_requirements(ctx: &mut Ctx<'_>) -> Next {
    match ctx.data().get("type").and_then(CertType::from_code) {
        Some(CertType::ECnpj) => ctx.say(REQUIREMENTS_ECNPJ),
        _ => ctx.say(REQUIREMENTS_ECPF),
    }
    Next::Complete
}

fn requirements() -> Form {
    Form::new(
        vec![Slot::new("type", REQUIREMENTS_ASK_TYPE).by(Source::Keyword, cert_type).reprompt(REQUIREMENTS_INVALID)],
        send_requirements,
    )
    .max_attempts(MENU_ATTEMPTS)
    .exhausted(HANDOFF)
}

pub fn version(deps: &Deps) -> VersionDecl {
    VersionDecl::new("dc_requirements", 1, Lifecycle::Active)
        .description("Documentos necessários para o certificado digital, chamado por digital_certificate v4")
        .typed_texts(texts::SOURCE, texts::KEYS)
        .deps(deps.clone())
        .entry(step::REQUIREMENTS)
        .step(step::REQUIREMENTS, requirements())
}
