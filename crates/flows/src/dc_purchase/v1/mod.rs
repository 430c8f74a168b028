//! `dc_purchase` v1: the purchase of a digital certificate as a flow of its
//! own, called by `digital_certificate` v4 (`Call::new("dc_purchase")`), so
//! it is versioned, split-tested and reported apart from its parent. The
//! code is v3's purchase form, unchanged: holder (e-CPF/e-CNPJ), media,
//! document, e-mail and validation filled from whatever the customer says,
//! a summary to confirm, the order created. It starts with the caller's
//! data (a product carried from an evacuated v2 session is used) and its
//! values (product, document, e-mail, the order) go back to the caller.

use switchyard_engine::classify::{Task, Wanted};
use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::form::{Extracted, Form, Said, Slot, Source};

use super::texts::{self, *};
use crate::Deps;
use crate::shared::backend::{CertType, Media, OrderRequest, Product, Validation};
use crate::shared::choice;
use crate::shared::document::{self, Document, Kind, Problem};
use crate::shared::email::{self, Problem as EmailProblem};

#[rustfmt::skip]
mod words;

// The fingerprint covers the shared helpers this file names. Also used,
// through `shared::backend`: shared::money, shared::dates, shared::order.

/// The version's step ids, typed once.
mod step {
    pub(super) const PURCHASE: &str = "purchase.order";
}

// ---- helpers --------------------------------------------------------------

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

/// `{price_ecpf_a1}` ... for the texts that show every price.
fn say_with_prices(ctx: &mut Ctx<'_>, key: &str) {
    let backend = &deps(ctx).backend;
    let prices: Vec<(String, String)> =
        Product::all().map(|product| (format!("price_{}", product.code()), backend.price(product).to_string())).collect();
    let values: Vec<(&str, &str)> = prices.iter().map(|(key, price)| (key.as_str(), price.as_str())).collect();
    ctx.say_with(key, &values);
}

/// Session data this version wrote is missing or garbled (a bug): a person
/// takes over instead of the customer being asked nonsense.
fn lost(ctx: &mut Ctx<'_>) -> Next {
    ctx.say(HANDOFF);
    Next::Handoff
}

/// A lone menu number answering this form's own question, among `count` options.
fn answered_number(said: Said<'_>, count: usize) -> Option<usize> {
    if !said.answering || !choice::starts_with_number(said.text) {
        return None;
    }
    choice::number(said.text, count)
}

/// The text with e-mail addresses taken out, so "ana.token@x.com" names no media.
fn without_emails(text: &str) -> String {
    text.split_whitespace().filter(|word| !word.contains('@')).collect::<Vec<_>>().join(" ")
}

// ---- purchase -------------------------------------------------------------

fn holder(ctx: &Ctx<'_>) -> Option<CertType> {
    ctx.data().get("holder").and_then(CertType::from_code)
}

fn media(ctx: &Ctx<'_>) -> Option<Media> {
    ctx.data().get("media").and_then(Media::from_code)
}

fn product(ctx: &Ctx<'_>) -> Option<Product> {
    Some(Product { cert: holder(ctx)?, media: media(ctx)? })
}

/// e-CPF or e-CNPJ: in words (the plain "cpf"/"cnpj" only while nothing was
/// chosen, since "meu cpf é ..." after choosing e-CNPJ is no correction), or
/// a number of the menu the form showed.
fn holder_by_words(ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    let text = without_emails(said.text);
    let numbered = if media(ctx).is_none() { answered_number(said, 6).map(|idx| idx / 3) } else { answered_number(said, 2) };
    if let Some(idx) = numbered {
        return Extracted::Value(CertType::ALL[idx].code().to_owned());
    }
    if let Some(idx) = choice::pick_by_words(&text, &[words::PERSON, words::COMPANY]) {
        return Extracted::Value(CertType::ALL[idx].code().to_owned());
    }
    if holder(ctx).is_none()
        && let Some(idx) = choice::pick_by_words(&text, &[words::PERSON_WEAK, words::COMPANY_WEAK])
    {
        return Extracted::Value(CertType::ALL[idx].code().to_owned());
    }
    Extracted::Nothing
}

/// The product v2 stored (`ecpf_a1` ...), for a customer evacuated from v2.
fn carried_product(ctx: &Ctx<'_>) -> Option<Product> {
    ctx.data().get("product").and_then(Product::from_code)
}

fn holder_carried(ctx: &mut Ctx<'_>, _said: Said<'_>) -> Extracted {
    match carried_product(ctx) {
        Some(product) if holder(ctx).is_none() => Extracted::Value(product.cert.code().to_owned()),
        _ => Extracted::Nothing,
    }
}

fn media_carried(ctx: &mut Ctx<'_>, _said: Said<'_>) -> Extracted {
    match carried_product(ctx) {
        Some(product) if media(ctx).is_none() => Extracted::Value(product.media.code().to_owned()),
        _ => Extracted::Nothing,
    }
}

/// A valid CPF means e-CPF, a CNPJ e-CNPJ, while nothing was chosen.
fn holder_by_document(ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    match document::find(said.text) {
        Ok(found) if holder(ctx).is_none() => Extracted::Value(
            match found.kind() {
                Kind::Cpf => CertType::ECpf,
                Kind::Cnpj => CertType::ECnpj,
            }
            .code()
            .to_owned(),
        ),
        _ => Extracted::Nothing,
    }
}

fn media_by_words(ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    let numbered = if holder(ctx).is_none() && media(ctx).is_none() {
        answered_number(said, 6).map(|idx| idx % 3)
    } else if media(ctx).is_none() && holder(ctx).is_some() {
        answered_number(said, 3)
    } else {
        None
    };
    if let Some(idx) = numbered {
        return Extracted::Value(Media::ALL[idx].code().to_owned());
    }
    match choice::pick_by_words(&without_emails(said.text), &[words::A1, words::A3_TOKEN, words::A3_CARD]) {
        Some(idx) => Extracted::Value(Media::ALL[idx].code().to_owned()),
        None => Extracted::Nothing,
    }
}

fn document_of_holder(ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    match (document::find(said.text), holder(ctx).map(CertType::document_kind)) {
        (Ok(found), Some(wanted)) if found.kind() != wanted => Extracted::Refused(match wanted {
            Kind::Cpf => PURCHASE_NEED_CPF,
            Kind::Cnpj => PURCHASE_NEED_CNPJ,
        }),
        (Ok(found), _) => Extracted::Value(found.formatted()),
        (Err(Problem::BadCpf), _) => Extracted::Refused(PURCHASE_INVALID_CPF),
        (Err(Problem::BadCnpj), _) => Extracted::Refused(PURCHASE_INVALID_CNPJ),
        (Err(Problem::NotFound), _) => Extracted::Nothing,
    }
}

fn email_address(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    match email::find(said.text) {
        Ok(address) => Extracted::Value(address),
        Err(EmailProblem::Invalid) => Extracted::Refused(PURCHASE_INVALID_EMAIL),
        Err(EmailProblem::NotFound) => Extracted::Nothing,
    }
}

fn validation_by_words(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    match choice::pick_by_words(said.text, &[words::VIDEO, words::IN_PERSON]) {
        Some(0) => Extracted::Value(Validation::VideoCall.code().to_owned()),
        Some(_) => Extracted::Value(Validation::InPerson.code().to_owned()),
        None => Extracted::Nothing,
    }
}

fn ask_holder(ctx: &mut Ctx<'_>) {
    if media(ctx).is_none() {
        say_with_prices(ctx, PURCHASE_ASK_PRODUCT);
    } else {
        ctx.say(PURCHASE_ASK_HOLDER);
    }
}

fn ask_media(ctx: &mut Ctx<'_>) {
    ctx.say(PURCHASE_ASK_MEDIA);
}

fn ask_document(ctx: &mut Ctx<'_>) {
    match holder(ctx) {
        Some(CertType::ECnpj) => ctx.say(PURCHASE_ASK_CNPJ),
        _ => ctx.say(PURCHASE_ASK_CPF),
    }
}

fn answer_price(ctx: &mut Ctx<'_>) {
    match product(ctx) {
        Some(product) => {
            let price = deps(ctx).backend.price(product).to_string();
            let label = ctx.render(label(product), &[]);
            ctx.say_with(PURCHASE_PRICE, &[("product", &label), ("price", &price)]);
        }
        None => say_with_prices(ctx, PURCHASE_PRICES),
    }
}

fn answer_deadline(ctx: &mut Ctx<'_>) {
    ctx.say(PURCHASE_DEADLINE);
}

fn explain_media(ctx: &mut Ctx<'_>) {
    ctx.say(PURCHASE_MEDIA_EXPLAINED);
}

fn validation(ctx: &Ctx<'_>) -> Validation {
    ctx.data().get("validation").and_then(Validation::from_code).unwrap_or(Validation::VideoCall)
}

fn summary(ctx: &mut Ctx<'_>) {
    let (Some(product), Some(document), Some(email)) =
        (product(ctx), ctx.data().get("document").map(str::to_owned), ctx.data().get("email").map(str::to_owned))
    else {
        ctx.say(HANDOFF);
        return;
    };
    ctx.data_mut().set("product", product.code());
    let price = deps(ctx).backend.price(product).to_string();
    let product_label = ctx.render(label(product), &[]);
    let validation_label = ctx.render(
        match validation(ctx) {
            Validation::VideoCall => VALIDATION_VIDEO,
            Validation::InPerson => VALIDATION_PRESENCIAL,
        },
        &[],
    );
    ctx.say_with(
        PURCHASE_SUMMARY,
        &[
            ("product", &product_label),
            ("document", &document),
            ("email", &email),
            ("validation", &validation_label),
            ("price", &price),
        ],
    );
}

/// The answer to the summary (a correction never reaches here: the form took it).
fn confirm(ctx: &mut Ctx<'_>, text: &str) -> Option<Next> {
    match choice::pick(text, &[choice::YES, words::CHANGE, words::CANCEL])? {
        0 => Some(place_order(ctx)),
        1 => {
            ctx.say(PURCHASE_CHANGE);
            Some(Next::Wait)
        }
        _ => {
            ctx.say(PURCHASE_CANCELLED);
            Some(Next::Cancel)
        }
    }
}

fn place_order(ctx: &mut Ctx<'_>) -> Next {
    let validation = validation(ctx);
    let (Some(product), Some(holder), Some(email)) = (
        product(ctx),
        ctx.data().get("document").and_then(|text| Document::parse(text).ok()),
        ctx.data().get("email").map(str::to_owned),
    ) else {
        return lost(ctx);
    };
    let request =
        OrderRequest { product, document: holder, email: Some(email.clone()), validation: Some(validation), renewal: false };
    let order = deps(ctx).backend.create_order(&request, ctx.now());
    let next_step = ctx.render(
        match validation {
            Validation::InPerson => PURCHASE_NEXT_PRESENCIAL,
            Validation::VideoCall => PURCHASE_NEXT_VIDEO,
        },
        &[],
    );
    ctx.say_with(
        PURCHASE_CREATED,
        &[
            ("number", &order.number.to_string()),
            ("price", &order.price.to_string()),
            ("link", &order.payment_link),
            ("email", &email),
            ("next", &next_step),
        ],
    );
    Next::Complete
}

/// Extraction of the order's slots by the model, for what the words missed.
pub const ORDER: Task = Task {
    name: "order",
    file: "prompts/order.txt",
    prompt: include_str!("prompts/order.txt"),
    ask: Wanted::Fields(&["holder", "media", "document", "email", "validation"]),
    keywords: None,
};

fn purchase() -> Form {
    Form::new(
        vec![
            Slot::asking("holder", ask_holder)
                .by(Source::Keyword, holder_by_words)
                .by(Source::Validator, holder_by_document)
                .by(Source::Carried, holder_carried)
                .clears(&["document"]),
            Slot::asking("media", ask_media).by(Source::Keyword, media_by_words).by(Source::Carried, media_carried),
            Slot::asking("document", ask_document).by(Source::Validator, document_of_holder),
            Slot::new("email", PURCHASE_ASK_EMAIL).by(Source::Validator, email_address),
            Slot::defaulting("validation", "video").by(Source::Keyword, validation_by_words),
        ],
        |_ctx| Next::Wait,
    )
    .confirm(summary, confirm, PURCHASE_INVALID)
    .explain(words::ASK_MEDIA, explain_media)
    .side(words::ASK_PRICE, answer_price)
    .side(words::ASK_DEADLINE, answer_deadline)
    .model(ORDER)
    .exhausted(HANDOFF)
}

// ---- the version ----------------------------------------------------------

pub fn version(deps: &Deps) -> VersionDecl {
    VersionDecl::new("dc_purchase", 1, Lifecycle::Active)
        .description("Compra de certificado digital (formulário conversacional), chamada por digital_certificate v4")
        .typed_texts(texts::SOURCE, texts::KEYS)
        .deps(deps.clone())
        .task(ORDER)
        .entry(step::PURCHASE)
        // Evacuated from v2: the same form, with what it collected.
        .step_map(2, &[(step::PURCHASE, step::PURCHASE)])
        .step(step::PURCHASE, purchase())
}
