//! `digital_certificate` v4: v3 with the purchase as a flow of its own. The
//! `purchase.order` step calls `dc_purchase` (`Call::new("dc_purchase")`),
//! whose version resolves by its own policy at the moment of the call, so
//! `dc_purchase@v2` can be split-tested inside this unchanged parent and
//! reported apart; when it returns the conversation ends here (the order is
//! placed). Everything else is v3's: whatever the customer says fills what
//! it can, and the bot asks only for what is still missing. 9 steps in 5 subroutes, written with the authoring API (plain
//! functions, `Ctx::deps`, typed texts and step ids, the form step).
//!
//! - `route`: what the customer wants, read from the first message (or the
//!   answer to the menu) by keywords, then the model.
//! - `purchase.order` (a form): holder (e-CPF/e-CNPJ), media, document,
//!   e-mail, validation (video unless the customer says "presencial"); the
//!   product is holder + media. Any message fills any slot, the first one
//!   included; corrections ("na verdade é pra empresa") clear the document;
//!   price, deadline and "o que é A1?" are answered mid-form. A summary to
//!   confirm, where a correction is still welcome.
//! - `renewal` (3): the holder's document (taken from the message that
//!   brought the customer here when it has one), the certificate on file,
//!   confirmation.
//! - `support` (2): the problem (a form: "meu token não é reconhecido" needs
//!   no menu), then a guide and "resolveu?".
//! - `requirements` (1): which certificate (from the message when it says),
//!   then the documents needed.
//! - `status` (1): order number or document (from the message when it has
//!   one: "status do pedido 100002"), then where the order is.
//!
//! "quero ver o status do meu pedido" moves to `status` from anywhere.

use switchyard_engine::classify::{Task, Wanted};
use switchyard_engine::trained::Weighing;
use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::form::{Extracted, Form, Said, Slot, Source};
use switchyard_engine::kinds::{Call, Custom};

use super::texts::{self, *};
use crate::Deps;
use crate::shared::backend::{CertType, Media, OrderRequest, Product};
use crate::shared::choice;
use crate::shared::dates::Day;
use crate::shared::document::{self, Document, Problem};
use crate::shared::order;

#[rustfmt::skip]
mod words;

// The fingerprint covers the shared helpers this file names. Also used,
// through `shared::backend`: shared::money.

/// The version's step ids, typed once.
mod step {
    pub(super) const ROUTE: &str = "route";
    pub(super) const PURCHASE: &str = "purchase.order";
    pub(super) const RENEWAL: &str = "renewal.collect_document";
    pub(super) const CHECK: &str = "renewal.check_certificate";
    pub(super) const RENEW: &str = "renewal.confirm_renewal";
    pub(super) const SUPPORT: &str = "support.identify_issue";
    pub(super) const TROUBLESHOOT: &str = "support.troubleshoot";
    pub(super) const REQUIREMENTS: &str = "requirements.ask_type";
    pub(super) const STATUS: &str = "status.collect_order";
}

/// Misses tolerated at a yes/no or numbered question.
const MENU_ATTEMPTS: u32 = 2;
/// A certificate expired up to this many days ago can still be renewed.
const RENEWAL_GRACE_DAYS: i64 = 30;
/// Order look-ups that find nothing before a person takes over.
const STATUS_MISSES: u32 = 2;

// ---- route ----------------------------------------------------------------

/// The subroutes `route` classifies into, in the menu's order, with the step each starts at.
const ROUTES: [(&str, &str); 5] = [
    ("purchase", step::PURCHASE),
    ("renewal", step::RENEWAL),
    ("support", step::SUPPORT),
    ("requirements", step::REQUIREMENTS),
    ("status", step::STATUS),
];
const ROUTE_CLASSES: &[&str] = &["purchase", "renewal", "support", "requirements", "status"];

fn route_keywords(text: &str) -> Option<&'static str> {
    choice::pick_by_words(text, &[words::BUY, words::RENEW, words::SUPPORT, words::REQUIREMENTS, words::STATUS])
        .map(|idx| ROUTE_CLASSES[idx])
}

/// Subroute classification, weighed (`Ctx::weigh`): the keywords, the
/// classifier trained on `examples/route.tsv`, and the model when those two
/// leave doubt. A menu number decides before any of them.
pub const ROUTE: Task = Task {
    name: "route",
    file: "prompts/route.txt",
    prompt: include_str!("prompts/route.txt"),
    ask: Wanted::Class(ROUTE_CLASSES),
    keywords: Some(route_keywords),
};
const ROUTING: Weighing =
    Weighing { task: ROUTE, file: "examples/route.tsv", examples: include_str!("examples/route.tsv"), sure: None };

fn route_step(class: &str) -> Option<&'static str> {
    ROUTES.iter().find(|(name, _)| *name == class).map(|(_, step)| *step)
}

fn route_enter(ctx: &mut Ctx<'_>) -> Next {
    if let Some(step) = ctx.opening().and_then(|opening| ctx.weigh(&ROUTE, opening)).and_then(route_step) {
        return Next::Goto(step);
    }
    ctx.say(ROUTE_PROMPT);
    Next::Wait
}

fn route_input(ctx: &mut Ctx<'_>, text: &str) -> Next {
    if let Some(idx) = choice::number(text, ROUTES.len()) {
        return Next::Goto(ROUTES[idx].1);
    }
    if !choice::starts_with_number(text)
        && let Some(step) = ctx.weigh(&ROUTE, text).and_then(route_step)
    {
        return Next::Goto(step);
    }
    choice::retry_or_handoff(ctx, ROUTE_INVALID, MENU_ATTEMPTS)
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

// ---- renewal --------------------------------------------------------------

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

/// The answer to "quer comprar um novo?" after a certificate that cannot be renewed.
fn check_certificate_input(ctx: &mut Ctx<'_>, text: &str) -> Next {
    match choice::yes_no(text) {
        Some(true) => {
            // The purchase starts afresh: the renewal's document and product
            // were about the old certificate.
            ctx.data_mut().remove("document");
            ctx.data_mut().remove("product");
            Next::Goto(step::PURCHASE)
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

// ---- support --------------------------------------------------------------

const ISSUES: [&str; 4] = ["installation", "pin", "token", "other"];

fn issue(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    let idx = answered_number(said, ISSUES.len())
        .or_else(|| choice::pick_by_words(said.text, &[words::INSTALLATION, words::PIN, words::TOKEN, words::OTHER_ISSUE]));
    match idx {
        Some(idx) => Extracted::Value(ISSUES[idx].to_owned()),
        None => Extracted::Nothing,
    }
}

fn support() -> Form {
    Form::new(vec![Slot::new("issue", SUPPORT_ASK_ISSUE).by(Source::Keyword, issue).reprompt(SUPPORT_INVALID)], |_ctx| Next::Goto(step::TROUBLESHOOT))
        .to(&[Next::Goto(step::TROUBLESHOOT)])
        .max_attempts(MENU_ATTEMPTS)
        .exhausted(HANDOFF)
}

fn troubleshoot_enter(ctx: &mut Ctx<'_>) -> Next {
    match ctx.data().get("issue") {
        Some("installation") => ctx.say(TROUBLESHOOT_INSTALLATION),
        Some("pin") => ctx.say(TROUBLESHOOT_PIN),
        Some("token") => ctx.say(TROUBLESHOOT_TOKEN),
        // "Outro problema": no guide fits, a specialist does.
        _ => {
            ctx.say(TROUBLESHOOT_OTHER);
            return Next::Handoff;
        }
    }
    Next::Wait
}

fn troubleshoot_input(ctx: &mut Ctx<'_>, text: &str) -> Next {
    match choice::yes_no(text) {
        Some(true) => {
            ctx.say(TROUBLESHOOT_SOLVED);
            Next::Complete
        }
        Some(false) => {
            ctx.say(TROUBLESHOOT_UNSOLVED);
            Next::Handoff
        }
        None => choice::retry_or_handoff(ctx, TROUBLESHOOT_INVALID, MENU_ATTEMPTS),
    }
}

// ---- requirements ---------------------------------------------------------

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
    Form::new(vec![Slot::new("type", REQUIREMENTS_ASK_TYPE).by(Source::Keyword, cert_type).reprompt(REQUIREMENTS_INVALID)], send_requirements)
        .max_attempts(MENU_ATTEMPTS)
        .exhausted(HANDOFF)
}

// ---- status ---------------------------------------------------------------

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

// ---- the version ----------------------------------------------------------

/// Where customers evacuated from v2 continue: the start of the same
/// subroute. The purchase form keeps what v2 collected (the product it
/// stored becomes holder and media; document and e-mail have the same keys)
/// and asks only for what is missing.
const V2_STEP_MAP: &[(&str, &str)] = &[
    ("route", step::ROUTE),
    ("purchase.choose_product", step::PURCHASE),
    ("purchase.collect_details", step::PURCHASE),
    ("purchase.confirm_order", step::PURCHASE),
    ("renewal.collect_document", step::RENEWAL),
    ("renewal.check_certificate", step::RENEWAL),
    ("renewal.confirm_renewal", step::RENEWAL),
    ("support.identify_issue", step::SUPPORT),
    ("support.troubleshoot", step::SUPPORT),
    ("requirements.ask_type", step::REQUIREMENTS),
    ("requirements.send_requirements", step::REQUIREMENTS),
    ("status.collect_order", step::STATUS),
    ("status.report_status", step::STATUS),
];

pub fn version(deps: &Deps) -> VersionDecl {
    VersionDecl::new("digital_certificate", 4, Lifecycle::Inactive)
        .description("Certificado digital (conversacional): a compra é um formulário preenchido pelo que o cliente diz")
        .typed_texts(texts::SOURCE, texts::KEYS)
        .deps(deps.clone())
        .weighed(ROUTING)
        .entry(step::ROUTE)
        .interrupt(words::STATUS_INTERRUPT, Next::Goto(step::STATUS))
        .step_map(2, V2_STEP_MAP)
        .step(step::ROUTE, Custom::new(&ROUTES.map(|(_, step)| Next::Goto(step)), route_input).on_enter(route_enter))
        .step(step::PURCHASE, Call::new("dc_purchase"))
        .step(step::RENEWAL, renewal())
        .step(
            step::CHECK,
            Custom::new(&[Next::Goto(step::RENEW), Next::Goto(step::PURCHASE)], check_certificate_input)
                .on_enter(check_certificate_enter),
        )
        .step(step::RENEW, Custom::new(&[], confirm_renewal_input).on_enter(confirm_renewal_enter))
        .step(step::SUPPORT, support())
        .step(step::TROUBLESHOOT, Custom::new(&[], troubleshoot_input).on_enter(troubleshoot_enter))
        .step(step::REQUIREMENTS, requirements())
        .step(step::STATUS, status())
}
