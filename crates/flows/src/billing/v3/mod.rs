//! `billing` v3: v2 (second copy, installments, "já paguei") on the
//! channel's richer means (issue #18): the boleto goes as its PDF, a
//! document, not a link; the subroute menu is a numbered menu a Cloud API
//! instance shows as buttons; and "já paguei" takes the payment receipt as
//! a photo or PDF (kept by reference in the session's `receipt`, for the
//! person the session is handed to).
//!
//! Otherwise as v2: what the customer wants is read once, from the message
//! that started the session, and remembered while `identify` asks for the
//! document; `classify` then goes straight to the subroute, or asks.

use switchyard_engine::classify::{Task, Wanted};
use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::kinds::{Custom, To};
use switchyard_engine::media::{FileKind, OutgoingFile};

use crate::Deps;
use crate::shared::backend::Invoice;
use crate::shared::choice;
use crate::shared::dates::{self, Day};
use crate::shared::document::{self, Document, Problem};

// The fingerprint covers the shared helpers this file names. Also used,
// through `shared::backend`: shared::money and shared::order.

/// Misses tolerated when asking for the document or the payment date.
const TYPED_ATTEMPTS: u32 = 3;
/// Misses tolerated at a menu.
const MENU_ATTEMPTS: u32 = 2;
/// A boleto paid this many days ago or less may still be clearing (about 3 business days).
const CLEARING_DAYS: i64 = 5;

/// What the customer wants, in the order `classify.prompt` numbers them:
/// (code stored as `intent`, entry step, words).
#[rustfmt::skip]
const INTENTS: &[(&str, &str, &[&str])] = &[
    ("copy", "invoice.send_copy", &[
        "segunda via", "2 via", "2a via", "boleto", "fatura", "linha digitavel", "codigo de barras",
        "atualizar boleto", "boleto vencido",
    ]),
    ("plan", "payment_plan.offer", &[
        "parcelar", "parcelamento", "parcelas", "parcelado", "dividir", "negociar", "negociacao", "acordo",
    ]),
    ("confirmation", "payment_confirmation.collect_date", &[
        "ja paguei", "paguei", "pagamento feito", "fiz o pagamento", "efetuei o pagamento", "comprovante", "pago",
        "ja esta pago", "pagamento nao caiu", "nao compensou", "nao baixou",
    ]),
];

fn intent_words() -> Vec<&'static [&'static str]> {
    INTENTS.iter().map(|(_, _, words)| *words).collect()
}

/// The subroutes, as the model's classes (the order of [`INTENTS`]).
const SUBROUTES: &[&str] = &["invoice", "payment_plan", "payment_confirmation"];

fn intent_keywords(text: &str) -> Option<&'static str> {
    choice::pick_by_words(text, &intent_words()).map(|idx| SUBROUTES[idx])
}

/// Subroute classification, the prompt experiment against `unknown`'s
/// routing: the words above, and the model when they find nothing.
pub const INTENT: Task = Task {
    name: "intent",
    file: "prompts/intent.txt",
    prompt: include_str!("prompts/intent.txt"),
    ask: Wanted::Class(SUBROUTES),
    keywords: Some(intent_keywords),
};

/// The [`INTENTS`] entry of a subroute class.
fn intent_of(class: &str) -> Option<&'static (&'static str, &'static str, &'static [&'static str])> {
    SUBROUTES.iter().position(|name| *name == class).and_then(|idx| INTENTS.get(idx))
}

fn identify(ctx: &mut Ctx<'_>, text: &str) -> Next {
    match document::find(text) {
        Ok(found) => {
            ctx.data_mut().set("document", found.formatted());
            Next::Goto("classify")
        }
        Err(Problem::BadCpf) => choice::retry_or_handoff(ctx, "identify.invalid_cpf", TYPED_ATTEMPTS),
        Err(Problem::BadCnpj) => choice::retry_or_handoff(ctx, "identify.invalid_cnpj", TYPED_ATTEMPTS),
        Err(Problem::NotFound) => choice::retry_or_handoff(ctx, "identify.missing", TYPED_ATTEMPTS),
    }
}

/// The holder's document, stored validated by `identify`.
fn holder(ctx: &Ctx<'_>) -> Option<Document> {
    ctx.data().get("document").and_then(|text| Document::parse(text).ok())
}

/// The holder's open invoice: `Ok(None)` when there is none, `Err` (after
/// saying so) when the session lost its document, which only a bug causes.
fn open_invoice(ctx: &mut Ctx<'_>, deps: &Deps) -> Result<Option<Invoice>, Next> {
    match holder(ctx) {
        Some(document) => Ok(deps.backend.open_invoice(&document, ctx.now())),
        None => {
            ctx.say("handoff");
            Err(Next::Handoff)
        }
    }
}

/// The boleto's PDF, as the back office serves it next to its page.
fn boleto_pdf(invoice: &Invoice) -> OutgoingFile {
    let reference = invoice.link.rsplit('/').next().unwrap_or("boleto");
    OutgoingFile {
        kind: FileKind::Document,
        url: format!("{}.pdf", invoice.link),
        mimetype: "application/pdf".to_owned(),
        file_name: Some(format!("boleto-{reference}.pdf")),
    }
}

fn send_copy(ctx: &mut Ctx<'_>, deps: &Deps) -> Next {
    match open_invoice(ctx, deps) {
        Ok(Some(invoice)) => {
            ctx.send_file(
                boleto_pdf(&invoice),
                "send_copy.document",
                &[("amount", &invoice.amount.to_string()), ("due", &invoice.due.formatted())],
            );
            // The line goes on its own so it can be copied whole.
            ctx.say_with("send_copy.line", &[("line", &invoice.digitable_line)]);
            Next::Complete
        }
        Ok(None) => {
            ctx.say("no_invoice");
            Next::Complete
        }
        Err(next) => next,
    }
}

fn offer_plan(ctx: &mut Ctx<'_>, deps: &Deps) -> Next {
    match open_invoice(ctx, deps) {
        Ok(Some(invoice)) => {
            ctx.say_with(
                "payment_plan.offer",
                &[
                    ("amount", &invoice.amount.to_string()),
                    ("two", &invoice.amount.split(2).to_string()),
                    ("three", &invoice.amount.split(3).to_string()),
                ],
            );
            Next::Wait
        }
        Ok(None) => {
            ctx.say("no_invoice");
            Next::Complete
        }
        Err(next) => next,
    }
}

fn confirm_plan_prompt(ctx: &mut Ctx<'_>, deps: &Deps) -> Next {
    let installments: u64 = ctx.data().get("installments").and_then(|n| n.parse().ok()).unwrap_or(2);
    match open_invoice(ctx, deps) {
        Ok(Some(invoice)) => {
            ctx.say_with(
                "payment_plan.confirm",
                &[
                    ("installments", &installments.to_string()),
                    ("each", &invoice.amount.split(installments).to_string()),
                ],
            );
            Next::Wait
        }
        Ok(None) => {
            ctx.say("no_invoice");
            Next::Complete
        }
        Err(next) => next,
    }
}

fn confirm_plan(ctx: &mut Ctx<'_>, deps: &Deps, text: &str) -> Next {
    match choice::yes_no(text) {
        Some(true) => {
            let installments: u64 = ctx.data().get("installments").and_then(|n| n.parse().ok()).unwrap_or(2);
            match open_invoice(ctx, deps) {
                Ok(Some(invoice)) => {
                    let plan = deps.backend.payment_plan(&invoice, installments, ctx.now());
                    ctx.say_with(
                        "payment_plan.done",
                        &[
                            ("installments", &plan.installments.to_string()),
                            ("each", &plan.each.to_string()),
                            ("first_due", &plan.first_due.formatted()),
                            ("link", &plan.link),
                        ],
                    );
                    Next::Complete
                }
                Ok(None) => {
                    ctx.say("no_invoice");
                    Next::Complete
                }
                Err(next) => next,
            }
        }
        Some(false) => {
            ctx.say("payment_plan.declined");
            Next::Cancel
        }
        None => choice::retry_or_handoff(ctx, "payment_plan.confirm.invalid", MENU_ATTEMPTS),
    }
}

fn check_payment(ctx: &mut Ctx<'_>) -> Next {
    let today = Day::of(ctx.now());
    let Some(paid) = ctx.data().get("paid_on").and_then(|day| day.parse().ok()).map(Day::from_number) else {
        ctx.say("handoff");
        return Next::Handoff;
    };
    if today.days_since(paid) <= CLEARING_DAYS {
        ctx.say_with(
            "check_payment.clearing",
            &[("paid_on", &paid.formatted()), ("until", &paid.plus(CLEARING_DAYS).formatted())],
        );
        Next::Complete
    } else {
        ctx.say_with("check_payment.escalate", &[("paid_on", &paid.formatted())]);
        Next::Handoff
    }
}

pub fn version(deps: &Deps) -> VersionDecl {
    let (copy, offer, confirm_enter, confirm_input, collect) =
        (deps.clone(), deps.clone(), deps.clone(), deps.clone(), deps.clone());
    VersionDecl::new("billing", 3, Lifecycle::Inactive)
        .description("Temporada de boletos: segunda via, parcelamento e confirmação de pagamento")
        .texts(include_str!("texts.txt"))
        .task(INTENT)
        .entry("identify")
        .step(
            "identify",
            Custom::new(&[To::Step("classify")], identify)
                .on_enter(|ctx| {
                    let trigger = ctx.trigger().unwrap_or("");
                    // Numbers are not read from the first message: "2" answered the entry menu.
                    if let Some((code, ..)) = ctx.classify(&INTENT, trigger).and_then(intent_of) {
                        ctx.data_mut().set("intent", *code);
                    }
                    if let Ok(found) = document::find(trigger) {
                        ctx.data_mut().set("document", found.formatted());
                        return Next::Goto("classify");
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
            "classify",
            Custom::new(
                &[
                    To::Step("invoice.send_copy"),
                    To::Step("payment_plan.offer"),
                    To::Step("payment_confirmation.collect_date"),
                ],
                |ctx, text| {
                    // A menu number is the menu's; words go to the classifier.
                    let picked = if choice::starts_with_number(text) {
                        choice::pick(text, &intent_words()).and_then(|idx| INTENTS.get(idx))
                    } else {
                        ctx.classify(&INTENT, text).and_then(intent_of)
                    };
                    match picked {
                        Some((_, step, _)) => Next::Goto(step),
                        None => choice::retry_or_handoff(ctx, "classify.invalid", MENU_ATTEMPTS),
                    }
                },
            )
            .on_enter(|ctx| {
                let known =
                    ctx.data().get("intent").and_then(|code| INTENTS.iter().find(|(intent, ..)| *intent == code));
                if let Some((_, step, _)) = known {
                    return Next::Goto(step);
                }
                ctx.say_menu("classify.prompt", INTENTS.len());
                Next::Wait
            })
            .texts(&["classify.prompt", "classify.invalid", "handoff"]),
        )
        .step(
            "invoice.send_copy",
            Custom::new(&[], |ctx, _text| {
                // Never waits: `enter` always ends the session.
                ctx.say("handoff");
                Next::Handoff
            })
            .on_enter(move |ctx| send_copy(ctx, &copy))
            .texts(&["send_copy.document", "send_copy.line", "no_invoice", "handoff"]),
        )
        .step(
            "payment_plan.offer",
            Custom::new(&[To::Step("invoice.send_copy"), To::Step("payment_plan.confirm")], |ctx, text| {
                let options: &[&[&str]] = &[
                    &["a vista", "segunda via", "de uma vez", "nao quero parcelar"],
                    &["2x", "2 vezes", "duas vezes", "duas parcelas", "em duas", "duas"],
                    &["3x", "3 vezes", "tres vezes", "tres parcelas", "em tres", "tres"],
                ];
                match choice::pick(text, options) {
                    Some(0) => Next::Goto("invoice.send_copy"),
                    Some(idx) => {
                        ctx.data_mut().set("installments", (idx + 1).to_string());
                        Next::Goto("payment_plan.confirm")
                    }
                    None => choice::retry_or_handoff(ctx, "payment_plan.offer.invalid", MENU_ATTEMPTS),
                }
            })
            .on_enter(move |ctx| offer_plan(ctx, &offer))
            .texts(&["payment_plan.offer", "payment_plan.offer.invalid", "no_invoice", "handoff"]),
        )
        .step(
            "payment_plan.confirm",
            Custom::new(&[], move |ctx, text| confirm_plan(ctx, &confirm_input, text))
                .on_enter(move |ctx| confirm_plan_prompt(ctx, &confirm_enter))
                .texts(&[
                    "payment_plan.confirm",
                    "payment_plan.confirm.invalid",
                    "payment_plan.done",
                    "payment_plan.declined",
                    "no_invoice",
                    "handoff",
                ]),
        )
        .step(
            "payment_confirmation.collect_date",
            Custom::new(&[To::Step("payment_confirmation.check_payment")], |ctx, text| {
                // A photo or PDF of the receipt: a person checks it.
                if let Some(receipt) = ctx.attachment() {
                    ctx.data_mut().set("receipt", receipt.reference());
                    ctx.say("collect_date.receipt");
                    return Next::Handoff;
                }
                match dates::parse_past(text, Day::of(ctx.now())) {
                    Some(day) => {
                        ctx.data_mut().set("paid_on", day.number().to_string());
                        Next::Goto("payment_confirmation.check_payment")
                    }
                    None => choice::retry_or_handoff(ctx, "collect_date.invalid", TYPED_ATTEMPTS),
                }
            })
            .on_enter(move |ctx| match open_invoice(ctx, &collect) {
                Ok(Some(_)) => {
                    ctx.say("collect_date.prompt");
                    Next::Wait
                }
                Ok(None) => {
                    ctx.say("collect_date.nothing_open");
                    Next::Complete
                }
                Err(next) => next,
            })
            .attachments()
            .texts(&[
                "collect_date.prompt",
                "collect_date.receipt",
                "collect_date.invalid",
                "collect_date.nothing_open",
                "handoff",
            ]),
        )
        .step(
            "payment_confirmation.check_payment",
            Custom::new(&[], |ctx, _text| {
                // Never waits: `enter` always ends the session.
                ctx.say("handoff");
                Next::Handoff
            })
            .on_enter(check_payment)
            .texts(&["check_payment.clearing", "check_payment.escalate", "handoff"]),
        )
}
