//! `billing` v1: the customer gives a CPF or CNPJ (`identify`) and gets the
//! open invoice's "linha digitável" and payment link (`invoice.send_copy`).
//! A document with no open invoice hears that everything is paid, and the
//! session completes: there is nothing a person would need to do.

use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::kinds::{Custom, To};

use crate::Deps;
use crate::shared::choice;
use crate::shared::document::{self, Document, Problem};

// The fingerprint covers the shared helpers this file names. Also used,
// through `Deps`: shared::backend, and through it shared::dates,
// shared::money and shared::order.

/// Misses tolerated when asking for the document.
const DOCUMENT_ATTEMPTS: u32 = 3;

/// Reads the document from the customer's answer: stored and on to the
/// invoice, or a re-prompt that says what was wrong.
fn identify(ctx: &mut Ctx<'_>, text: &str) -> Next {
    match document::find(text) {
        Ok(found) => {
            ctx.data_mut().set("document", found.formatted());
            Next::Goto("invoice.send_copy")
        }
        Err(Problem::BadCpf) => choice::retry_or_handoff(ctx, "identify.invalid_cpf", DOCUMENT_ATTEMPTS),
        Err(Problem::BadCnpj) => choice::retry_or_handoff(ctx, "identify.invalid_cnpj", DOCUMENT_ATTEMPTS),
        Err(Problem::NotFound) => choice::retry_or_handoff(ctx, "identify.missing", DOCUMENT_ATTEMPTS),
    }
}

fn send_copy(ctx: &mut Ctx<'_>, deps: &Deps) -> Next {
    let Some(holder) = ctx.data().get("document").and_then(|text| Document::parse(text).ok()) else {
        // Only `identify` stores the document, validated; without it a person takes over.
        ctx.say("handoff");
        return Next::Handoff;
    };
    match deps.backend.open_invoice(&holder, ctx.now()) {
        Some(invoice) => {
            ctx.say_with(
                "send_copy.found",
                &[
                    ("amount", &invoice.amount.to_string()),
                    ("due", &invoice.due.formatted()),
                    ("line", &invoice.digitable_line),
                    ("link", &invoice.link),
                ],
            );
        }
        None => ctx.say("send_copy.none"),
    }
    Next::Complete
}

pub fn version(deps: &Deps) -> VersionDecl {
    let deps = deps.clone();
    VersionDecl::new("billing", 1, Lifecycle::Active)
        .description("Segunda via de boleto: identifica o CPF/CNPJ e envia a linha digitável e o link")
        .texts(include_str!("texts.txt"))
        .entry("identify")
        .step(
            "identify",
            Custom::new(&[To::Step("invoice.send_copy")], identify)
                .on_enter(|ctx| {
                    // "segunda via do boleto, CPF 529.982.247-25" needs no question.
                    if let Some(Ok(found)) = ctx.trigger().map(document::find) {
                        ctx.data_mut().set("document", found.formatted());
                        return Next::Goto("invoice.send_copy");
                    }
                    ctx.say("identify.prompt");
                    Next::Wait
                })
                .texts(&[
                    "identify.prompt",
                    "identify.invalid_cpf",
                    "identify.invalid_cnpj",
                    "identify.missing",
                    "handoff",
                ]),
        )
        .step(
            "invoice.send_copy",
            Custom::new(&[], |ctx, _text| {
                // Never waits: `enter` always ends the session.
                ctx.say("handoff");
                Next::Handoff
            })
            .on_enter(move |ctx| send_copy(ctx, &deps))
            .texts(&["send_copy.found", "send_copy.none", "handoff"]),
        )
}
