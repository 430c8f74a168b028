//! `dc_support` v1: technical support for a digital certificate as a flow of
//! its own, called by `digital_certificate` v4 (`Call::new("dc_support")`),
//! so it is versioned, split-tested and reported apart from its parent. The
//! code is v3's support subroute, unchanged, in 2 steps:
//!
//! - `support.identify_issue` (a form): the problem, from the message that
//!   brought the customer here when it says ("meu token não é reconhecido"
//!   needs no menu), or from the numbered menu;
//! - `support.troubleshoot`: a guide, then "resolveu?"; "outro problema" and
//!   "não resolveu" go to a person.

use switchyard_engine::flow::{Ctx, Lifecycle, Next, VersionDecl};
use switchyard_engine::form::{Extracted, Form, Said, Slot, Source};
use switchyard_engine::kinds::Custom;

use super::texts::{self, *};
use crate::Deps;
use crate::shared::choice;

#[rustfmt::skip]
mod words;

/// The version's step ids, typed once.
mod step {
    pub(super) const SUPPORT: &str = "support.identify_issue";
    pub(super) const TROUBLESHOOT: &str = "support.troubleshoot";
}

/// Misses tolerated at a yes/no or numbered question.
const MENU_ATTEMPTS: u32 = 2;

const ISSUES: [&str; 4] = ["installation", "pin", "token", "other"];

/// A lone menu number answering this form's own question, among `count` options.
fn answered_number(said: Said<'_>, count: usize) -> Option<usize> {
    if !said.answering || !choice::starts_with_number(said.text) {
        return None;
    }
    choice::number(said.text, count)
}

fn issue(_ctx: &mut Ctx<'_>, said: Said<'_>) -> Extracted {
    let idx = answered_number(said, ISSUES.len())
        .or_else(|| choice::pick_by_words(said.text, &[words::INSTALLATION, words::PIN, words::TOKEN, words::OTHER_ISSUE]));
    match idx {
        Some(idx) => Extracted::Value(ISSUES[idx].to_owned()),
        None => Extracted::Nothing,
    }
}

fn support() -> Form {
    Form::new(vec![Slot::new("issue", SUPPORT_ASK_ISSUE).by(Source::Keyword, issue).reprompt(SUPPORT_INVALID)], |_ctx| {
        Next::Goto(step::TROUBLESHOOT)
    })
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

pub fn version(deps: &Deps) -> VersionDecl {
    VersionDecl::new("dc_support", 1, Lifecycle::Active)
        .description("Suporte técnico de certificado digital, chamado por digital_certificate v4")
        .typed_texts(texts::SOURCE, texts::KEYS)
        .deps(deps.clone())
        .entry(step::SUPPORT)
        .step(step::SUPPORT, support())
        .step(step::TROUBLESHOOT, Custom::new(&[], troubleshoot_input).on_enter(troubleshoot_enter))
}
