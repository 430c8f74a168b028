//! `digital_certificate` v1: 16 steps in 5 subroutes.
//!
//! - `route`: what the customer wants (buy, renew, support, requirements,
//!   status), read from the first message or asked with a numbered menu.
//! - `purchase` (6): type, media, document, e-mail, validation, confirmation
//!   with the price; "sim" creates the order and sends the payment link.
//! - `renewal` (3): document, the certificate on file (long expired: offer a
//!   new one instead), confirmation.
//! - `support` (2): which problem, then a guide and "resolveu?".
//! - `requirements` (2): which certificate, then the documents needed.
//! - `status` (2): order number or document, then where the order is.
//!
//! "quero ver o status do meu pedido" moves to `status` from anywhere (an
//! interrupt), so a customer who changes subject mid-purchase is not stuck.

use switchyard_engine::classify::{Task, Wanted};
use switchyard_engine::flow::{Ctx, Lifecycle, Next, Step, Target, VersionDecl};
use switchyard_engine::kinds::{Ask, Custom, Menu, To};

use crate::Deps;
use crate::shared::backend::{CertType, Media, OrderRequest, Product, Validation};
use crate::shared::choice;
use crate::shared::dates::Day;
use crate::shared::document::{self, Document, Kind, Problem};
use crate::shared::email;
use crate::shared::order;

#[rustfmt::skip]
mod words;

// The fingerprint covers the shared helpers this file names. Also used,
// through `shared::backend`: shared::money.

/// Misses tolerated when the customer types a value (document, e-mail, order).
const TYPED_ATTEMPTS: u32 = 3;
/// Misses tolerated at a yes/no or numbered question.
const MENU_ATTEMPTS: u32 = 2;
/// A certificate expired up to this many days ago can still be renewed;
/// after that the holder needs a new one (with a new identity validation).
const RENEWAL_GRACE_DAYS: i64 = 30;
/// Order look-ups that find nothing before a person takes over.
const STATUS_MISSES: u32 = 2;

/// The routing menu, which also remembers an order number or document named
/// in the same message ("status do pedido CF-100001"), so that `status`
/// does not ask for it again.
struct Route(Menu);

impl Route {
    fn new() -> Route {
        Route(
            Menu::new("route.prompt", "route.invalid")
                .option(words::BUY, To::Step(ROUTES[0].1))
                .option(words::RENEW, To::Step(ROUTES[1].1))
                .option(words::SUPPORT, To::Step(ROUTES[2].1))
                .option(words::REQUIREMENTS, To::Step(ROUTES[3].1))
                .option(words::STATUS, To::Step(ROUTES[4].1)),
        )
    }
}

/// The subroutes `route` classifies into, in the menu's order, with the step each starts at.
const ROUTES: &[(&str, &str)] = &[
    ("purchase", "purchase.choose_type"),
    ("renewal", "renewal.collect_document"),
    ("support", "support.identify_issue"),
    ("requirements", "requirements.ask_type"),
    ("status", "status.collect_order"),
];
const ROUTE_CLASSES: &[&str] = &["purchase", "renewal", "support", "requirements", "status"];

/// The menu's words, as the keyword classifier of [`ROUTE`] (the same
/// longest-phrase rule as the menu: a tie picks nothing).
fn route_keywords(text: &str) -> Option<&'static str> {
    choice::pick_by_words(text, &[words::BUY, words::RENEW, words::SUPPORT, words::REQUIREMENTS, words::STATUS])
        .map(|idx| ROUTE_CLASSES[idx])
}

/// Subroute classification: the menu's words, and the model when they find nothing.
pub const ROUTE: Task = Task {
    name: "route",
    file: "prompts/route.txt",
    prompt: include_str!("prompts/route.txt"),
    ask: Wanted::Class(ROUTE_CLASSES),
    keywords: Some(route_keywords),
};

/// The step a subroute class starts at.
fn route_step(class: &str) -> Option<&'static str> {
    ROUTES.iter().find(|(name, _)| *name == class).map(|(_, step)| *step)
}

impl Step for Route {
    fn enter(&self, ctx: &mut Ctx<'_>) -> Next {
        if let Some(trigger) = ctx.trigger() {
            remember_status_query(ctx, trigger);
            if let Some(step) = ctx.classify(&ROUTE, trigger).and_then(route_step) {
                return Next::Goto(step);
            }
        }
        self.0.enter(ctx)
    }
    fn input(&self, ctx: &mut Ctx<'_>, text: &str) -> Next {
        remember_status_query(ctx, text);
        // A menu number is the menu's: never classified, never sent to a model.
        if !choice::starts_with_number(text)
            && let Some(step) = ctx.classify(&ROUTE, text).and_then(route_step)
        {
            return Next::Goto(step);
        }
        self.0.input(ctx, text)
    }
    fn targets(&self) -> Vec<Target> {
        self.0.targets()
    }
    fn text_keys(&self) -> Vec<&'static str> {
        self.0.text_keys()
    }
}

/// Stores an order number (`order`) or a valid document (`status_document`)
/// found in `text`. True when one was found.
fn remember_status_query(ctx: &mut Ctx<'_>, text: &str) -> bool {
    if let Some(number) = order::find(text) {
        ctx.data_mut().set("order", number.to_string());
        return true;
    }
    if let Ok(found) = document::find(text) {
        ctx.data_mut().remove("order");
        ctx.data_mut().set("status_document", found.formatted());
        return true;
    }
    false
}

fn cert_type(ctx: &Ctx<'_>) -> Option<CertType> {
    ctx.data().get("type").and_then(CertType::from_code)
}

fn product(ctx: &Ctx<'_>) -> Option<Product> {
    let media = ctx.data().get("media").and_then(Media::from_code)?;
    Some(Product { cert: cert_type(ctx)?, media })
}

fn holder(ctx: &Ctx<'_>) -> Option<Document> {
    ctx.data().get("document").and_then(|text| Document::parse(text).ok())
}

fn label(ctx: &Ctx<'_>, product: Product) -> String {
    ctx.render(&format!("product.{}", product.code()), &[])
}

/// Session data this version wrote is missing or garbled (a bug): a person
/// takes over instead of the customer being asked nonsense.
fn lost(ctx: &mut Ctx<'_>) -> Next {
    ctx.say("handoff");
    Next::Handoff
}

const PRODUCT_TEXTS: &[&str] = &[
    "product.ecpf_a1",
    "product.ecpf_a3_token",
    "product.ecpf_a3_card",
    "product.ecnpj_a1",
    "product.ecnpj_a3_token",
    "product.ecnpj_a3_card",
];

fn with_products(keys: &[&'static str]) -> Vec<&'static str> {
    keys.iter().chain(PRODUCT_TEXTS).copied().collect()
}

// ---- purchase -------------------------------------------------------------

fn collect_document_enter(ctx: &mut Ctx<'_>) -> Next {
    match cert_type(ctx) {
        Some(CertType::ECnpj) => ctx.say("collect_document.cnpj"),
        _ => ctx.say("collect_document.cpf"),
    }
    Next::Wait
}

fn collect_document_input(ctx: &mut Ctx<'_>, text: &str) -> Next {
    let wanted = cert_type(ctx).map_or(Kind::Cpf, CertType::document_kind);
    let invalid = match (document::find(text), wanted) {
        (Ok(found), _) if found.kind() == wanted => {
            ctx.data_mut().set("document", found.formatted());
            return Next::Goto("purchase.collect_email");
        }
        (Ok(_), Kind::Cpf) => "collect_document.need_cpf",
        (Ok(_), Kind::Cnpj) => "collect_document.need_cnpj",
        (Err(Problem::BadCpf), _) => "collect_document.invalid_cpf",
        (Err(Problem::BadCnpj), _) => "collect_document.invalid_cnpj",
        (Err(Problem::NotFound), Kind::Cpf) => "collect_document.missing_cpf",
        (Err(Problem::NotFound), Kind::Cnpj) => "collect_document.missing_cnpj",
    };
    choice::retry_or_handoff(ctx, invalid, TYPED_ATTEMPTS)
}

fn confirm_order_enter(ctx: &mut Ctx<'_>, deps: &Deps) -> Next {
    let validation = ctx.data().get("validation").and_then(Validation::from_code);
    let (Some(product), Some(holder), Some(email), Some(validation)) =
        (product(ctx), holder(ctx), ctx.data().get("email").map(str::to_owned), validation)
    else {
        return lost(ctx);
    };
    let product_label = label(ctx, product);
    let validation_label = ctx.render(&format!("validation.{}", validation.code()), &[]);
    ctx.say_with(
        "confirm_order.summary",
        &[
            ("product", &product_label),
            ("document", &holder.formatted()),
            ("email", &email),
            ("validation", &validation_label),
            ("price", &deps.backend.price(product).to_string()),
        ],
    );
    Next::Wait
}

fn confirm_order_input(ctx: &mut Ctx<'_>, deps: &Deps, text: &str) -> Next {
    match choice::pick(text, &[choice::YES, words::CONFIRM_CHANGE, words::CONFIRM_CANCEL]) {
        Some(0) => {
            let validation = ctx.data().get("validation").and_then(Validation::from_code);
            let (Some(product), Some(holder), Some(email)) =
                (product(ctx), holder(ctx), ctx.data().get("email").map(str::to_owned))
            else {
                return lost(ctx);
            };
            let request =
                OrderRequest { product, document: holder, email: Some(email.clone()), validation, renewal: false };
            let order = deps.backend.create_order(&request, ctx.now());
            let next_step = match validation {
                Some(Validation::InPerson) => ctx.render("confirm_order.next.presencial", &[]),
                _ => ctx.render("confirm_order.next.video", &[]),
            };
            ctx.say_with(
                "confirm_order.created",
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
        Some(1) => {
            ctx.say("confirm_order.restart");
            Next::Goto("purchase.choose_type")
        }
        Some(_) => {
            ctx.say("confirm_order.cancelled");
            Next::Cancel
        }
        None => choice::retry_or_handoff(ctx, "confirm_order.invalid", MENU_ATTEMPTS),
    }
}

// ---- renewal --------------------------------------------------------------

fn any_document(text: &str) -> Option<String> {
    document::find(text).ok().map(|found| found.formatted())
}

fn check_certificate_enter(ctx: &mut Ctx<'_>, deps: &Deps) -> Next {
    let Some(holder) = holder(ctx) else { return lost(ctx) };
    let Some(certificate) = deps.backend.certificate(&holder, ctx.now()) else {
        ctx.say("check_certificate.not_found");
        return Next::Wait;
    };
    ctx.data_mut().set("type", certificate.product.cert.code());
    ctx.data_mut().set("media", certificate.product.media.code());
    let product_label = label(ctx, certificate.product);
    let expires = certificate.expires.formatted();
    let days_left = certificate.expires.days_since(Day::of(ctx.now()));
    if days_left >= 0 {
        let days = days_left.to_string();
        ctx.say_with("check_certificate.valid", &[("product", &product_label), ("expires", &expires), ("days", &days)]);
        Next::Goto("renewal.confirm_renewal")
    } else if -days_left <= RENEWAL_GRACE_DAYS {
        ctx.say_with("check_certificate.recently_expired", &[("product", &product_label), ("expires", &expires)]);
        Next::Goto("renewal.confirm_renewal")
    } else {
        ctx.say_with("check_certificate.expired_long_ago", &[("product", &product_label), ("expires", &expires)]);
        Next::Wait
    }
}

/// The answer to "quer comprar um novo?" after a certificate that cannot be renewed.
fn check_certificate_input(ctx: &mut Ctx<'_>, text: &str) -> Next {
    match choice::yes_no(text) {
        Some(true) => Next::Goto("purchase.choose_type"),
        Some(false) => {
            ctx.say("check_certificate.goodbye");
            Next::Complete
        }
        None => choice::retry_or_handoff(ctx, "check_certificate.invalid", MENU_ATTEMPTS),
    }
}

fn confirm_renewal_enter(ctx: &mut Ctx<'_>, deps: &Deps) -> Next {
    let Some(product) = product(ctx) else { return lost(ctx) };
    let product_label = label(ctx, product);
    ctx.say_with(
        "confirm_renewal.prompt",
        &[("product", &product_label), ("price", &deps.backend.renewal_price(product).to_string())],
    );
    Next::Wait
}

fn confirm_renewal_input(ctx: &mut Ctx<'_>, deps: &Deps, text: &str) -> Next {
    match choice::yes_no(text) {
        Some(true) => {
            let (Some(product), Some(holder)) = (product(ctx), holder(ctx)) else { return lost(ctx) };
            let request = OrderRequest { product, document: holder, email: None, validation: None, renewal: true };
            let order = deps.backend.create_order(&request, ctx.now());
            ctx.say_with(
                "confirm_renewal.done",
                &[
                    ("number", &order.number.to_string()),
                    ("price", &order.price.to_string()),
                    ("link", &order.payment_link),
                ],
            );
            Next::Complete
        }
        Some(false) => {
            ctx.say("confirm_renewal.declined");
            Next::Cancel
        }
        None => choice::retry_or_handoff(ctx, "confirm_renewal.invalid", MENU_ATTEMPTS),
    }
}

// ---- support --------------------------------------------------------------

fn troubleshoot_enter(ctx: &mut Ctx<'_>) -> Next {
    match ctx.data().get("issue") {
        Some("installation") => ctx.say("troubleshoot.installation"),
        Some("pin") => ctx.say("troubleshoot.pin"),
        Some("token") => ctx.say("troubleshoot.token"),
        // "Outro problema": no guide fits, a specialist does.
        _ => {
            ctx.say("troubleshoot.other");
            return Next::Handoff;
        }
    }
    Next::Wait
}

fn troubleshoot_input(ctx: &mut Ctx<'_>, text: &str) -> Next {
    match choice::yes_no(text) {
        Some(true) => {
            ctx.say("troubleshoot.solved");
            Next::Complete
        }
        Some(false) => {
            ctx.say("troubleshoot.unsolved");
            Next::Handoff
        }
        None => choice::retry_or_handoff(ctx, "troubleshoot.invalid", MENU_ATTEMPTS),
    }
}

// ---- status ---------------------------------------------------------------

fn collect_order_enter(ctx: &mut Ctx<'_>) -> Next {
    // Reached by the interrupt, the trigger is the message that changed the subject.
    if let Some(trigger) = ctx.trigger() {
        remember_status_query(ctx, trigger);
    }
    if ctx.data().get("order").is_some() || ctx.data().get("status_document").is_some() {
        return Next::Goto("status.report_status");
    }
    ctx.say("collect_order.prompt");
    Next::Wait
}

fn collect_order_input(ctx: &mut Ctx<'_>, text: &str) -> Next {
    if remember_status_query(ctx, text) {
        return Next::Goto("status.report_status");
    }
    let invalid = match document::find(text) {
        Err(Problem::BadCpf | Problem::BadCnpj) => "collect_order.invalid_document",
        _ => "collect_order.invalid",
    };
    choice::retry_or_handoff(ctx, invalid, TYPED_ATTEMPTS)
}

fn report_status_enter(ctx: &mut Ctx<'_>, deps: &Deps) -> Next {
    let now = ctx.now();
    let found = if let Some(number) = ctx.data().get("order").and_then(order::OrderNumber::parse) {
        deps.backend.order(number, now)
    } else if let Some(holder) = ctx.data().get("status_document").and_then(|text| Document::parse(text).ok()) {
        deps.backend.latest_order(&holder, now)
    } else {
        None
    };
    let Some(found) = found else {
        ctx.data_mut().remove("order");
        ctx.data_mut().remove("status_document");
        let misses = ctx.data().get("status_misses").and_then(|n| n.parse::<u32>().ok()).unwrap_or(0) + 1;
        if misses >= STATUS_MISSES {
            ctx.say("report_status.not_found_handoff");
            return Next::Handoff;
        }
        ctx.data_mut().set("status_misses", misses.to_string());
        ctx.say("report_status.not_found");
        return Next::Goto("status.collect_order");
    };
    let product_label = label(ctx, found.product);
    ctx.say_with(
        &format!("report_status.{}", found.state.code()),
        &[
            ("number", &found.number.to_string()),
            ("product", &product_label),
            ("created", &found.created.formatted()),
            ("price", &found.price.to_string()),
            ("link", &found.payment_link),
        ],
    );
    Next::Complete
}

pub fn version(deps: &Deps) -> VersionDecl {
    let (confirm_enter, confirm_input, check, renew_enter, renew_input, report) =
        (deps.clone(), deps.clone(), deps.clone(), deps.clone(), deps.clone(), deps.clone());
    VersionDecl::new("digital_certificate", 1, Lifecycle::Active)
        .description("Certificado digital: compra, renovação, suporte, documentos e status do pedido")
        .texts(include_str!("texts.txt"))
        .task(ROUTE)
        .entry("route")
        .interrupt(words::STATUS_INTERRUPT, To::Step("status.collect_order"))
        .step("route", Route::new())
        // purchase
        .step(
            "purchase.choose_type",
            Menu::new("choose_type.prompt", "choose_type.invalid")
                .option_set(words::E_CPF, To::Step("purchase.choose_media"), "type", "ecpf")
                .option_set(words::E_CNPJ, To::Step("purchase.choose_media"), "type", "ecnpj"),
        )
        .step(
            "purchase.choose_media",
            Menu::new("choose_media.prompt", "choose_media.invalid")
                .option_set(words::A1, To::Step("purchase.collect_document"), "media", "a1")
                .option_set(words::A3_TOKEN, To::Step("purchase.collect_document"), "media", "a3_token")
                .option_set(words::A3_CARD, To::Step("purchase.collect_document"), "media", "a3_card"),
        )
        .step(
            "purchase.collect_document",
            Custom::new(&[To::Step("purchase.collect_email")], collect_document_input)
                .on_enter(collect_document_enter)
                .texts(&[
                    "collect_document.cpf",
                    "collect_document.cnpj",
                    "collect_document.need_cpf",
                    "collect_document.need_cnpj",
                    "collect_document.invalid_cpf",
                    "collect_document.invalid_cnpj",
                    "collect_document.missing_cpf",
                    "collect_document.missing_cnpj",
                    "handoff",
                ]),
        )
        .step(
            "purchase.collect_email",
            Ask::new(
                "collect_email.prompt",
                "email",
                email::validate,
                "collect_email.invalid",
                To::Step("purchase.choose_validation"),
            ),
        )
        .step(
            "purchase.choose_validation",
            Menu::new("choose_validation.prompt", "choose_validation.invalid")
                .option_set(words::VIDEO, To::Step("purchase.confirm_order"), "validation", "video")
                .option_set(words::IN_PERSON, To::Step("purchase.confirm_order"), "validation", "presencial"),
        )
        .step(
            "purchase.confirm_order",
            Custom::new(&[To::Step("purchase.choose_type")], move |ctx, text| {
                confirm_order_input(ctx, &confirm_input, text)
            })
            .on_enter(move |ctx| confirm_order_enter(ctx, &confirm_enter))
            .texts(&with_products(&[
                "confirm_order.summary",
                "confirm_order.invalid",
                "confirm_order.created",
                "confirm_order.next.video",
                "confirm_order.next.presencial",
                "confirm_order.restart",
                "confirm_order.cancelled",
                "validation.video",
                "validation.presencial",
                "handoff",
            ])),
        )
        // renewal
        .step(
            "renewal.collect_document",
            Ask::new(
                "renewal.collect_document.prompt",
                "document",
                any_document,
                "renewal.collect_document.invalid",
                To::Step("renewal.check_certificate"),
            ),
        )
        .step(
            "renewal.check_certificate",
            Custom::new(
                &[To::Step("renewal.confirm_renewal"), To::Step("purchase.choose_type")],
                check_certificate_input,
            )
            .on_enter(move |ctx| check_certificate_enter(ctx, &check))
            .texts(&with_products(&[
                "check_certificate.valid",
                "check_certificate.recently_expired",
                "check_certificate.expired_long_ago",
                "check_certificate.not_found",
                "check_certificate.goodbye",
                "check_certificate.invalid",
                "handoff",
            ])),
        )
        .step(
            "renewal.confirm_renewal",
            Custom::new(&[], move |ctx, text| confirm_renewal_input(ctx, &renew_input, text))
                .on_enter(move |ctx| confirm_renewal_enter(ctx, &renew_enter))
                .texts(&with_products(&[
                    "confirm_renewal.prompt",
                    "confirm_renewal.done",
                    "confirm_renewal.declined",
                    "confirm_renewal.invalid",
                    "handoff",
                ])),
        )
        // support
        .step(
            "support.identify_issue",
            Menu::new("identify_issue.prompt", "identify_issue.invalid")
                .option_set(words::INSTALLATION, To::Step("support.troubleshoot"), "issue", "installation")
                .option_set(words::PIN, To::Step("support.troubleshoot"), "issue", "pin")
                .option_set(words::TOKEN, To::Step("support.troubleshoot"), "issue", "token")
                .option_set(words::OTHER_ISSUE, To::Step("support.troubleshoot"), "issue", "other"),
        )
        .step(
            "support.troubleshoot",
            Custom::new(&[], troubleshoot_input).on_enter(troubleshoot_enter).texts(&[
                "troubleshoot.installation",
                "troubleshoot.pin",
                "troubleshoot.token",
                "troubleshoot.other",
                "troubleshoot.solved",
                "troubleshoot.unsolved",
                "troubleshoot.invalid",
                "handoff",
            ]),
        )
        // requirements
        .step(
            "requirements.ask_type",
            Menu::new("ask_type.prompt", "ask_type.invalid")
                .option_set(words::E_CPF, To::Step("requirements.send_requirements"), "type", "ecpf")
                .option_set(words::E_CNPJ, To::Step("requirements.send_requirements"), "type", "ecnpj"),
        )
        .step(
            "requirements.send_requirements",
            Custom::new(&[], |ctx, _text| {
                // Never waits: `enter` always ends the session.
                lost(ctx)
            })
            .on_enter(|ctx| {
                match cert_type(ctx) {
                    Some(CertType::ECnpj) => ctx.say("send_requirements.ecnpj"),
                    _ => ctx.say("send_requirements.ecpf"),
                }
                Next::Complete
            })
            .texts(&["send_requirements.ecpf", "send_requirements.ecnpj", "handoff"]),
        )
        // status
        .step(
            "status.collect_order",
            Custom::new(&[To::Step("status.report_status")], collect_order_input)
                .on_enter(collect_order_enter)
                .texts(&["collect_order.prompt", "collect_order.invalid", "collect_order.invalid_document", "handoff"]),
        )
        .step(
            "status.report_status",
            Custom::new(&[To::Step("status.collect_order")], |ctx, _text| lost(ctx))
                .on_enter(move |ctx| report_status_enter(ctx, &report))
                .texts(&with_products(&[
                    "report_status.awaiting_payment",
                    "report_status.awaiting_validation",
                    "report_status.issued",
                    "report_status.not_found",
                    "report_status.not_found_handoff",
                    "handoff",
                ])),
        )
}
