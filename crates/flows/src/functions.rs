//! The functions a flow document may name: Rust code registered under a
//! versioned name (`validate.document@1`, `backend.open_invoice@1`), so a
//! published document holds no code. A registered name is never changed or
//! removed once documents use it: a new behaviour is a new `@N`.
//!
//! Three shapes, one per place a document needs logic:
//! - a [`Validator`] for an `ask` step (typed value in, clean value or nothing out);
//! - an [`Extractor`] for a `form` slot;
//! - an [`Action`] for an `action` step: it reads and writes session data
//!   and returns one of its declared outcomes, which the document maps to
//!   transitions.

use switchyard_engine::flow::Ctx;
use switchyard_engine::form::{Extracted, Extractor, Said};
use switchyard_engine::kinds::Validator;

use crate::shared::document::{self, Document, Problem};
use crate::shared::{email, order};
use crate::Deps;

/// A step's logic: the outcome it reached (one of `outcomes`).
#[derive(Clone, Copy, Debug)]
pub struct Action {
    pub outcomes: &'static [&'static str],
    pub run: fn(&mut Ctx<'_>) -> &'static str,
}

/// One registered function.
#[derive(Clone, Copy)]
pub enum Function {
    Validator(Validator),
    /// With the text keys its refusals name (the document must define them).
    Extractor(Extractor, &'static [&'static str]),
    Action(Action),
}

impl Function {
    /// `validator`, `extractor` or `action`, for error messages.
    pub fn shape(&self) -> &'static str {
        match self {
            Function::Validator(_) => "validator",
            Function::Extractor(..) => "extractor",
            Function::Action(_) => "action",
        }
    }
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shape())
    }
}

fn validate_document(text: &str) -> Option<String> {
    document::find(text).ok().map(|found| found.formatted())
}

fn validate_order(text: &str) -> Option<String> {
    order::find(text).map(|number| number.number().to_string())
}

fn validate_text(text: &str) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn extract_document(_: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    match document::find(said.text) {
        Ok(found) => Extracted::Value(found.formatted()),
        Err(Problem::BadCpf) => Extracted::Refused("invalid_cpf"),
        Err(Problem::BadCnpj) => Extracted::Refused("invalid_cnpj"),
        Err(Problem::NotFound) => Extracted::Nothing,
    }
}

fn extract_email(_: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    match email::find(said.text) {
        Ok(found) => Extracted::Value(found),
        Err(_) => Extracted::Nothing,
    }
}

/// The holder's open invoice (by the `document` slot): `found` with
/// `amount`, `due`, `line` and `link` set, `none`, or `no_document`.
fn open_invoice(ctx: &mut Ctx<'_>) -> &'static str {
    let Some(holder) = ctx.data().get("document").and_then(|text| Document::parse(text).ok()) else { return "no_document" };
    let deps: &Deps = ctx.deps();
    match deps.backend.open_invoice(&holder, ctx.now()) {
        Some(invoice) => {
            let data = ctx.data_mut();
            data.set("amount", invoice.amount.to_string());
            data.set("due", invoice.due.formatted());
            data.set("line", invoice.digitable_line);
            data.set("link", invoice.link);
            "found"
        }
        None => "none",
    }
}

/// Every registered function, by versioned name.
pub const FUNCTIONS: &[(&str, Function)] = &[
    ("validate.document@1", Function::Validator(validate_document)),
    ("validate.email@1", Function::Validator(email::validate)),
    ("validate.order_number@1", Function::Validator(validate_order)),
    ("validate.text@1", Function::Validator(validate_text)),
    ("extract.document@1", Function::Extractor(extract_document, &["invalid_cpf", "invalid_cnpj"])),
    ("extract.email@1", Function::Extractor(extract_email, &[])),
    ("backend.open_invoice@1", Function::Action(Action { outcomes: &["found", "none", "no_document"], run: open_invoice })),
];

/// The function registered as `name`.
pub fn find(name: &str) -> Option<Function> {
    FUNCTIONS.iter().find(|(known, _)| *known == name).map(|(_, function)| *function)
}

/// Every registered name, for "did you mean".
pub fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|(name, _)| *name)
}
