//! `digital_certificate` v4: v3's conversation with each subroute a flow of
//! its own. `route` reads what the customer wants (v3's weighing: keywords,
//! the trained classifier, then the model) and calls the subroute's flow:
//! `dc_purchase`, `dc_renewal`, `dc_support`, `dc_requirements` or
//! `dc_status` (`Call::new`). Each callee's version resolves by its own
//! policy at the moment of the call, so `dc_purchase@v2` can be
//! split-tested inside this unchanged parent and every subroute is reported,
//! pinned, guarded and evacuated apart; when the callee returns, the
//! conversation ends here. The callees are v3's subroutes, unchanged (step
//! ids included), so their funnels compare with v3's.
//!
//! - `route`: what the customer wants, read from the first message (or the
//!   answer to the menu).
//! - `purchase`, `renewal`, `support`, `requirements`, `status`: one call
//!   step each. The callee reads the message that brought the customer
//!   there ("quero renovar, cpf 390.533.447-05" needs no question).
//!
//! "quero ver o status do meu pedido" moves to `status` from anywhere, inside
//! a callee too: the callee ends `cancelled` (`interrupted`) and `dc_status`
//! is called with that message.

use switchyard_engine::classify::{Task, Wanted};
use switchyard_engine::trained::Weighing;
use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::kinds::{Call, Custom};

use super::texts::{self, *};
use crate::Deps;
use crate::shared::choice;

#[rustfmt::skip]
mod words;

/// The version's step ids, typed once: `route`, then one call step per subroute.
mod step {
    pub(super) const ROUTE: &str = "route";
    pub(super) const PURCHASE: &str = "purchase";
    pub(super) const RENEWAL: &str = "renewal";
    pub(super) const SUPPORT: &str = "support";
    pub(super) const REQUIREMENTS: &str = "requirements";
    pub(super) const STATUS: &str = "status";
}

/// Misses tolerated at the menu.
const MENU_ATTEMPTS: u32 = 2;

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

// ---- the version ----------------------------------------------------------

/// Where customers evacuated from v2 continue: the call of the same
/// subroute. The callee starts with what v2 collected (the product it stored
/// becomes the purchase's holder and media; document and e-mail have the
/// same keys) and asks only for what is missing.
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

/// Where customers evacuated from v3 continue: the call of the subroute
/// they were in, whose flow is v3's code (same data keys).
const V3_STEP_MAP: &[(&str, &str)] = &[
    ("route", step::ROUTE),
    ("purchase.order", step::PURCHASE),
    ("renewal.collect_document", step::RENEWAL),
    ("renewal.check_certificate", step::RENEWAL),
    ("renewal.confirm_renewal", step::RENEWAL),
    ("support.identify_issue", step::SUPPORT),
    ("support.troubleshoot", step::SUPPORT),
    ("requirements.ask_type", step::REQUIREMENTS),
    ("status.collect_order", step::STATUS),
];

pub fn version(deps: &Deps) -> VersionDecl {
    VersionDecl::new("digital_certificate", 4, Lifecycle::Inactive)
        .description("Certificado digital: o roteamento da v3, cada assunto um fluxo chamado (dc_purchase, dc_renewal, ...)")
        .typed_texts(texts::SOURCE, texts::KEYS)
        .deps(deps.clone())
        .weighed(ROUTING)
        .entry(step::ROUTE)
        .interrupt(words::STATUS_INTERRUPT, Next::Goto(step::STATUS))
        .step_map(2, V2_STEP_MAP)
        .step_map(3, V3_STEP_MAP)
        .step(
            step::ROUTE,
            // `choice::retry_or_handoff` says `handoff` after too many misses.
            Custom::new(&ROUTES.map(|(_, step)| Next::Goto(step)), route_input).on_enter(route_enter).texts(&[HANDOFF]),
        )
        .step(step::PURCHASE, Call::new("dc_purchase"))
        .step(step::RENEWAL, Call::new("dc_renewal"))
        .step(step::SUPPORT, Call::new("dc_support"))
        .step(step::REQUIREMENTS, Call::new("dc_requirements"))
        .step(step::STATUS, Call::new("dc_status"))
}
