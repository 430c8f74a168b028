//! `dc_status` v1: where a digital-certificate order is, as a flow of its
//! own, called by `digital_certificate` v4 (`Call::new("dc_status")`, also
//! when "status do pedido" changes the subject from anywhere in the parent).
//! The code is v3's status subroute, unchanged, in 1 step:
//! `status.collect_order` (a form) takes the order number or the holder's
//! document from the message that brought the customer here ("status do
//! pedido 100002"), or asks; an order not found is asked again once, then a
//! person takes over.

use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::form::{Extracted, Form, Said, Slot, Source};

use super::texts::{self, *};
use crate::Deps;
use crate::shared::backend::{CertType, Media, Product};
use crate::shared::choice;
use crate::shared::document::{self, Document, Problem};
use crate::shared::order;

// The fingerprint covers the shared helpers this file names. Also used,
// through `shared::backend`: shared::money, shared::dates.

/// The version's step ids, typed once.
mod step {
    pub(super) const STATUS: &str = "status.collect_order";
}

/// Order look-ups that find nothing before a person takes over.
const STATUS_MISSES: u32 = 2;

fn deps<'a>(ctx: &Ctx<'a>) -> &'a Deps {
    ctx.deps::<Deps>()
}

fn label(product: Product) -> &'static str {
    match (product.cert, product.media) {
        (CertType::ECpf, Media::A1) => PRODUCT_ECPF_A1,
        (CertType::ECpf, Media::A3Token) => PRODUCT_ECPF_A3_TOKEN,
        (CertType::ECpf, Media::A3Card) => PRODUCT_ECPF_A3_CARD,
        (CertType::ECnpj, Media::A1) => PRODUCT_ECNPJ_A1,
        (CertType::ECnpj, Media::A3Token) => PRODUCT_ECNPJ_A3_TOKEN,
        (CertType::ECnpj, Media::A3Card) => PRODUCT_ECNPJ_A3_CARD,
    }
}

/// An order number (`order:CF-100001`) or a document (`document:...`).
fn status_query(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    if let Some(number) = order::find(said.text) {
        return Extracted::Value(format!("order:{number}"));
    }
    match document::find(said.text) {
        Ok(found) => Extracted::Value(format!("document:{}", found.formatted())),
        Err(Problem::BadCpf | Problem::BadCnpj) => Extracted::Refused(STATUS_INVALID_DOCUMENT),
        // Another number ("status do pedido 48213") is still the customer's
        // order number as they know it: looked up, and not found, rather
        // than asked for again.
        Err(Problem::NotFound) => match said.text.split(|ch: char| !ch.is_ascii_digit()).find(|run| (4..=10).contains(&run.len())) {
            Some(digits) if said.answering || !choice::starts_with_number(said.text) => Extracted::Value(format!("order:{digits}")),
            _ => Extracted::Nothing,
        },
    }
}

/// Looks the order up; when nothing is found, asks again (the form waits
/// for another number) and after [`STATUS_MISSES`] hands off.
fn report_status(ctx: &mut Ctx<'_>) -> Next {
    let now = ctx.now();
    let backend = &deps(ctx).backend;
    let query = ctx.data_mut().remove("query").unwrap_or_default();
    let found = match query.split_once(':') {
        Some(("order", number)) => order::OrderNumber::parse(number).and_then(|number| backend.order(number, now)),
        Some(("document", text)) => Document::parse(text).ok().and_then(|holder| backend.latest_order(&holder, now)),
        _ => None,
    };
    let Some(found) = found else {
        let misses = ctx.data().get("status_misses").and_then(|n| n.parse::<u32>().ok()).unwrap_or(0) + 1;
        if misses >= STATUS_MISSES {
            ctx.say(STATUS_NOT_FOUND_HANDOFF);
            return Next::Handoff;
        }
        ctx.data_mut().set("status_misses", misses.to_string());
        ctx.say(STATUS_NOT_FOUND);
        return Next::Wait;
    };
    let product_label = ctx.render(label(found.product), &[]);
    let key = match found.state.code() {
        "awaiting_payment" => STATUS_AWAITING_PAYMENT,
        "awaiting_validation" => STATUS_AWAITING_VALIDATION,
        _ => STATUS_ISSUED,
    };
    ctx.say_with(
        key,
        &[
            ("number", &found.number.to_string()),
            ("product", &product_label),
            ("price", &found.price.to_string()),
            ("link", &found.payment_link),
        ],
    );
    Next::Complete
}

fn status() -> Form {
    Form::new(vec![Slot::new("query", STATUS_ASK_ORDER).by(Source::Validator, status_query)], report_status).exhausted(HANDOFF)
}

pub fn version(deps: &Deps) -> VersionDecl {
    VersionDecl::new("dc_status", 1, Lifecycle::Active)
        .description("Status de um pedido de certificado digital, chamado por digital_certificate v4")
        .typed_texts(texts::SOURCE, texts::KEYS)
        .deps(deps.clone())
        .entry(step::STATUS)
        .step(step::STATUS, status())
}
