//! `dc_renewal` v1: the renewal of a digital certificate as a flow of its
//! own, called by `digital_certificate` v4 (`Call::new("dc_renewal")`), so it
//! is versioned, split-tested and reported apart from its parent. The code
//! is v3's renewal subroute, unchanged, in 3 steps:
//!
//! - `renewal.collect_document` (a form): the holder's CPF or CNPJ, taken
//!   from the message that brought the customer here when it has one;
//! - `renewal.check_certificate`: the certificate on file; one that expired
//!   more than 30 days ago, or none, cannot be renewed, and the customer may
//!   buy a new one: that is a call to `dc_purchase` (resolved by its own
//!   policy), so the purchase is the same flow, and reported as the same
//!   versions, whether the parent or this renewal called it;
//! - `renewal.confirm_renewal`: the price, then the order.
//!
//! It starts with the caller's data (a document carried from an evacuated
//! session is used) and its values (document, product, the order) go back.

use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::form::{Extracted, Form, Said, Slot, Source};
use switchyard_engine::kinds::Custom;

use super::texts::{self, *};
use crate::Deps;
use crate::shared::backend::{CertType, Media, OrderRequest, Product};
use crate::shared::choice;
use crate::shared::dates::Day;
use crate::shared::document::{self, Document, Problem};

// The fingerprint covers the shared helpers this file names. Also used,
// through `shared::backend`: shared::money, shared::order.

/// The version's step ids, typed once.
mod step {
    pub(super) const RENEWAL: &str = "renewal.collect_document";
    pub(super) const CHECK: &str = "renewal.check_certificate";
    pub(super) const RENEW: &str = "renewal.confirm_renewal";
}

/// The flow a customer whose certificate cannot be renewed buys from.
const PURCHASE: &str = "dc_purchase";

/// Misses tolerated at a yes/no question.
const MENU_ATTEMPTS: u32 = 2;
/// A certificate expired up to this many days ago can still be renewed.
const RENEWAL_GRACE_DAYS: i64 = 30;

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

/// Session data this version wrote is missing or garbled (a bug): a person
/// takes over instead of the customer being asked nonsense.
fn lost(ctx: &mut Ctx<'_>) -> Next {
    ctx.say(HANDOFF);
    Next::Handoff
}

fn any_document(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    match document::find(said.text) {
        Ok(found) => Extracted::Value(found.formatted()),
        Err(Problem::BadCpf | Problem::BadCnpj) => Extracted::Refused(RENEWAL_INVALID_DOCUMENT),
        Err(Problem::NotFound) => Extracted::Nothing,
    }
}

fn renewal() -> Form {
    Form::new(vec![Slot::new("document", RENEWAL_ASK_DOCUMENT).by(Source::Validator, any_document)], |_ctx| {
        Next::Goto(step::CHECK)
    })
    .to(&[Next::Goto(step::CHECK)])
    .exhausted(HANDOFF)
}

fn check_certificate_enter(ctx: &mut Ctx<'_>) -> Next {
    let Some(holder) = ctx.data().get("document").and_then(|text| Document::parse(text).ok()) else { return lost(ctx) };
    let Some(certificate) = deps(ctx).backend.certificate(&holder, ctx.now()) else {
        ctx.say(CHECK_CERTIFICATE_NOT_FOUND);
        return Next::Wait;
    };
    ctx.data_mut().set("product", certificate.product.code());
    let product_label = ctx.render(label(certificate.product), &[]);
    let expires = certificate.expires.formatted();
    let days_left = certificate.expires.days_since(Day::of(ctx.now()));
    if days_left >= 0 {
        let days = days_left.to_string();
        ctx.say_with(CHECK_CERTIFICATE_VALID, &[("product", &product_label), ("expires", &expires), ("days", &days)]);
        Next::Goto(step::RENEW)
    } else if -days_left <= RENEWAL_GRACE_DAYS {
        ctx.say_with(CHECK_CERTIFICATE_RECENTLY_EXPIRED, &[("product", &product_label), ("expires", &expires)]);
        Next::Goto(step::RENEW)
    } else {
        ctx.say_with(CHECK_CERTIFICATE_EXPIRED_LONG_AGO, &[("product", &product_label), ("expires", &expires)]);
        Next::Wait
    }
}

/// The answer to "quer comprar um novo?" after a certificate that cannot be
/// renewed: yes calls the purchase; when it returns, the renewal is done.
fn check_certificate_input(ctx: &mut Ctx<'_>, text: &str) -> Next {
    match choice::yes_no(text) {
        Some(true) => {
            // The purchase starts afresh: the renewal's document and product
            // were about the old certificate.
            ctx.data_mut().remove("document");
            ctx.data_mut().remove("product");
            Next::Call(PURCHASE)
        }
        Some(false) => {
            ctx.say(CHECK_CERTIFICATE_GOODBYE);
            Next::Complete
        }
        None => choice::retry_or_handoff(ctx, CHECK_CERTIFICATE_INVALID, MENU_ATTEMPTS),
    }
}

fn confirm_renewal_enter(ctx: &mut Ctx<'_>) -> Next {
    let Some(product) = ctx.data().get("product").and_then(Product::from_code) else { return lost(ctx) };
    let product_label = ctx.render(label(product), &[]);
    let price = deps(ctx).backend.renewal_price(product).to_string();
    ctx.say_with(CONFIRM_RENEWAL_PROMPT, &[("product", &product_label), ("price", &price)]);
    Next::Wait
}

fn confirm_renewal_input(ctx: &mut Ctx<'_>, text: &str) -> Next {
    match choice::yes_no(text) {
        Some(true) => {
            let (Some(product), Some(holder)) = (
                ctx.data().get("product").and_then(Product::from_code),
                ctx.data().get("document").and_then(|text| Document::parse(text).ok()),
            ) else {
                return lost(ctx);
            };
            let request = OrderRequest { product, document: holder, email: None, validation: None, renewal: true };
            let order = deps(ctx).backend.create_order(&request, ctx.now());
            ctx.say_with(
                CONFIRM_RENEWAL_DONE,
                &[("number", &order.number.to_string()), ("price", &order.price.to_string()), ("link", &order.payment_link)],
            );
            Next::Complete
        }
        Some(false) => {
            ctx.say(CONFIRM_RENEWAL_DECLINED);
            Next::Cancel
        }
        None => choice::retry_or_handoff(ctx, CONFIRM_RENEWAL_INVALID, MENU_ATTEMPTS),
    }
}

pub fn version(deps: &Deps) -> VersionDecl {
    VersionDecl::new("dc_renewal", 1, Lifecycle::Active)
        .description("Renovação de certificado digital, chamada por digital_certificate v4")
        .typed_texts(texts::SOURCE, texts::KEYS)
        .deps(deps.clone())
        .entry(step::RENEWAL)
        .step(step::RENEWAL, renewal())
        .step(
            step::CHECK,
            Custom::new(&[Next::Goto(step::RENEW), Next::Call(PURCHASE)], check_certificate_input)
                .on_enter(check_certificate_enter),
        )
        .step(step::RENEW, Custom::new(&[], confirm_renewal_input).on_enter(confirm_renewal_enter))
}
