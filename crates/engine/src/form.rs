//! A form step: named slots filled from whatever the customer says, asking
//! only for what is still missing (Dialogflow CX's form parameters, Rasa's
//! forms).
//!
//! - **Any message fills any slot**, the one that led to the form included
//!   (the session's opening, [`Ctx::opening`], or the answer that routed
//!   here, [`Ctx::message`]): each slot's extractors run on every message,
//!   in the slots' declared order.
//! - **Extractors** return a value, a refusal (the text key that says why:
//!   "esse CPF não é válido"), or nothing. Each is declared with its
//!   [`Source`] (keyword/regex, validator, trained classifier, model); the
//!   model is asked through [`Ctx::extract`] only for slots still missing,
//!   and what it answers goes through the same extractors as typed text.
//! - **Corrections**: a slot that gets a different value is overwritten and
//!   the slots declared as depending on it are cleared ("na verdade é pra
//!   empresa" clears the CPF).
//! - **Side questions** (price, deadline ...) are answered, and the form asks
//!   again what it was waiting for; that is not a miss.
//! - A message that fills nothing is a miss (`Next::Retry`) with the refusal
//!   or the slot's question; after `max_attempts` misses a person takes over.
//! - When every slot is filled, an optional confirmation (a summary and a
//!   handler for the answer); a correction there changes the slot and shows
//!   the summary again.
//! - **Events**: `slot_filled` (slot, source, read on entering or not) and
//!   `slot_missed` (slot, reason), so `report` shows per version where slots
//!   came from and where customers get stuck.

use crate::event::EventKind;
use crate::flow::{Ctx, Next, Step};
use crate::text::{contains_phrase, normalize};

/// Who found a slot's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Words, numbers, a pattern.
    Keyword,
    /// A checked format: CPF/CNPJ check digits, an e-mail address.
    Validator,
    /// A classifier trained from labelled examples.
    Trained,
    /// The language model ([`Ctx::extract`]).
    Model,
    /// Already in the session data under another name (carried over by an
    /// evacuation from an older version).
    Carried,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Keyword => "keyword",
            Source::Validator => "validator",
            Source::Trained => "trained",
            Source::Model => "model",
            Source::Carried => "carried",
        }
    }
}

/// What an extractor made of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extracted {
    /// The slot's value, normalised.
    Value(String),
    /// The message holds something for this slot, but it is wrong: the text
    /// key of a re-prompt that says why.
    Refused(&'static str),
    /// Nothing for this slot.
    Nothing,
}

/// A message as an extractor sees it.
#[derive(Clone, Copy, Debug)]
pub struct Said<'t> {
    pub text: &'t str,
    /// True when the text answers this form's own question. False for the
    /// message read on entering (the opening, or the message that led here):
    /// a menu number there answered another menu.
    pub answering: bool,
}

/// Reads one slot's value from a message. It may look at the session data
/// (what other slots hold) and use the classifiers on `ctx`.
pub type Extractor = fn(&mut Ctx<'_>, Said<'_>) -> Extracted;

/// Says something (a question, a summary, an answer) with access to the session.
pub type Speak = fn(&mut Ctx<'_>);

/// How a slot's question is asked.
#[derive(Clone, Copy)]
enum Question {
    Text(&'static str),
    Fn(Speak),
    /// A slot with a default is never asked.
    Never,
}

/// One value the form collects, stored in the session data under its name.
pub struct Slot {
    name: &'static str,
    question: Question,
    extractors: Vec<(Source, Extractor)>,
    clears: Vec<&'static str>,
    default: Option<&'static str>,
    reprompt: Option<&'static str>,
}

impl Slot {
    /// A slot asked with the text `question`.
    pub fn new(name: &'static str, question: &'static str) -> Slot {
        Slot { name, question: Question::Text(question), extractors: Vec::new(), clears: Vec::new(), default: None, reprompt: None }
    }
    /// A slot whose question depends on the session (what is already known).
    pub fn asking(name: &'static str, question: Speak) -> Slot {
        Slot { name, question: Question::Fn(question), extractors: Vec::new(), clears: Vec::new(), default: None, reprompt: None }
    }
    /// A slot never asked: `value` stands unless the customer says otherwise
    /// ("prefiro presencial").
    pub fn defaulting(name: &'static str, value: &'static str) -> Slot {
        Slot { name, question: Question::Never, extractors: Vec::new(), clears: Vec::new(), default: Some(value), reprompt: None }
    }
    /// Adds an extractor; they run in order, the first value or refusal wins.
    pub fn by(mut self, source: Source, extractor: Extractor) -> Slot {
        self.extractors.push((source, extractor));
        self
    }
    /// Slots cleared when this one gets a new value (a correction), unless
    /// the same message fills them again.
    pub fn clears(mut self, dependents: &[&'static str]) -> Slot {
        self.clears.extend_from_slice(dependents);
        self
    }
    /// The text for a message that filled nothing while this slot was asked
    /// (default: the question again).
    pub fn reprompt(mut self, key: &'static str) -> Slot {
        self.reprompt = Some(key);
        self
    }
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// What to do once every slot is filled.
enum Finish {
    /// Go on at once.
    Done(fn(&mut Ctx<'_>) -> Next),
    /// Go on at once to a fixed place (a form declared as data).
    Then(Next),
    /// Show `summary` and hand the answer to `answer`, which returns `None`
    /// when it does not understand (a miss with the `invalid` text).
    Confirm { summary: Speak, answer: fn(&mut Ctx<'_>, &str) -> Option<Next>, invalid: &'static str },
}

struct Side {
    phrases: Vec<String>,
    answer: Speak,
    /// The question's own words fill no slot ("o que é A1?" is not a choice of A1).
    exclusive: bool,
}

/// The form step. See the module documentation.
pub struct Form {
    slots: Vec<Slot>,
    sides: Vec<Side>,
    model: Option<crate::classify::Task>,
    finish: Finish,
    targets: Vec<Next>,
    exhausted: &'static str,
    max_attempts: u32,
}

/// What one message did to the form.
#[derive(Default)]
struct Filled {
    /// Slots that got a (new) value.
    changed: Vec<&'static str>,
    /// Slots the message named again with the value they hold ("quero
    /// arquivo" after "e-CPF A1"): not new, but understood, so not a miss.
    restated: bool,
    /// The first refusal, by slot.
    refused: Option<(&'static str, &'static str)>,
}

impl Form {
    /// A form that, once complete, calls `done` (which returns where to go).
    pub fn new(slots: Vec<Slot>, done: fn(&mut Ctx<'_>) -> Next) -> Form {
        Form {
            slots,
            sides: Vec::new(),
            model: None,
            finish: Finish::Done(done),
            targets: Vec::new(),
            exhausted: "handoff",
            max_attempts: 3,
        }
    }
    /// A form that, once complete, goes to `next` (declared with it), for
    /// forms built from a document rather than code.
    pub fn then(slots: Vec<Slot>, next: Next) -> Form {
        Form {
            slots,
            sides: Vec::new(),
            model: None,
            finish: Finish::Then(next),
            targets: next.target().into_iter().collect(),
            exhausted: "handoff",
            max_attempts: 3,
        }
    }
    /// Once complete, say `summary` and wait; `answer` handles the reply
    /// (`None`: not understood, re-prompt with `invalid`). A reply that
    /// changes a slot is a correction: the form goes on from there.
    pub fn confirm(mut self, summary: Speak, answer: fn(&mut Ctx<'_>, &str) -> Option<Next>, invalid: &'static str) -> Form {
        self.finish = Finish::Confirm { summary, answer, invalid };
        self
    }
    /// A side question: a message with one of `phrases` gets `answer`, and
    /// the form asks again what it was waiting for. Its words may still fill
    /// slots ("quanto custa o e-CPF A1?").
    pub fn side(mut self, phrases: &[&str], answer: Speak) -> Form {
        self.sides.push(Side { phrases: phrases.iter().map(|phrase| normalize(phrase)).collect(), answer, exclusive: false });
        self
    }
    /// Like [`Form::side`], but a message with these phrases fills no slot.
    pub fn explain(mut self, phrases: &[&str], answer: Speak) -> Form {
        self.sides.push(Side { phrases: phrases.iter().map(|phrase| normalize(phrase)).collect(), answer, exclusive: true });
        self
    }
    /// Asks the model (an extraction task whose fields are slot names) for
    /// the slots the extractors left missing; its values go through the
    /// slot's extractors like typed text.
    pub fn model(mut self, task: crate::classify::Task) -> Form {
        self.model = Some(task);
        self
    }
    /// The transitions `done` or the confirmation may return.
    pub fn to(mut self, targets: &[Next]) -> Form {
        self.targets.extend(targets.iter().filter_map(|to| to.target()));
        self
    }
    /// The text sent when the misses run out (default `handoff`).
    pub fn exhausted(mut self, key: &'static str) -> Form {
        self.exhausted = key;
        self
    }
    /// Misses tolerated before handing off (default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Form {
        self.max_attempts = attempts.max(1);
        self
    }
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The first slot without a value (slots with a default are never missing).
    fn missing<'s>(&'s self, ctx: &Ctx<'_>) -> Option<&'s Slot> {
        self.slots.iter().find(|slot| slot.default.is_none() && ctx.data().get(slot.name).is_none())
    }

    fn side_for(&self, ctx: &Ctx<'_>, text: &str) -> Option<&Side> {
        if self.sides.is_empty() {
            return None;
        }
        let normalized = ctx.normalized(text);
        let starts = crate::text::WordStarts::of(&normalized);
        self.sides.iter().find(|side| side.phrases.iter().any(|phrase| starts.may_start(phrase) && contains_phrase(&normalized, phrase)))
    }

    /// Runs every slot's extractors on `text`, in order; a changed value
    /// clears its dependents (unless the same message fills them again).
    fn fill(&self, ctx: &mut Ctx<'_>, text: &str, entering: bool) -> Filled {
        let mut filled = Filled::default();
        let said = Said { text, answering: !entering };
        for slot in &self.slots {
            let mut found = None;
            for (source, extractor) in &slot.extractors {
                match extractor(ctx, said) {
                    Extracted::Value(value) => {
                        found = Some((value, *source));
                        break;
                    }
                    Extracted::Refused(reason) => {
                        filled.refused.get_or_insert((slot.name, reason));
                        break;
                    }
                    Extracted::Nothing => {}
                }
            }
            if let Some((value, source)) = found {
                self.set(ctx, slot, value, source, entering, &mut filled);
            }
        }
        filled
    }

    fn set(&self, ctx: &mut Ctx<'_>, slot: &Slot, value: String, source: Source, entering: bool, filled: &mut Filled) {
        if ctx.data().get(slot.name) == Some(value.as_str()) {
            filled.restated = true;
            return;
        }
        let corrected = ctx.data().get(slot.name).is_some();
        ctx.data_mut().set(slot.name, value);
        if corrected {
            for dependent in &slot.clears {
                if !filled.changed.contains(dependent) {
                    ctx.data_mut().remove(dependent);
                }
            }
        }
        filled.changed.push(slot.name);
        ctx.slot_event(EventKind::SlotFilled { slot: slot.name.to_owned(), source: source.as_str().to_owned(), entering });
    }

    /// The model, for the slots still missing after the extractors.
    fn ask_model(&self, ctx: &mut Ctx<'_>, text: &str, entering: bool, filled: &mut Filled) {
        let Some(task) = &self.model else { return };
        if filled.refused.is_some() || self.missing(ctx).is_none() {
            return;
        }
        let found = ctx.extract(task, text, |_, value| Some(value.to_owned()));
        for (field, value) in found {
            let Some(slot) = self.slots.iter().find(|slot| slot.name == field) else { continue };
            if ctx.data().get(slot.name).is_some() {
                continue;
            }
            let said = Said { text: &value, answering: !entering };
            let value = slot.extractors.iter().find_map(|(_, extractor)| match extractor(ctx, said) {
                Extracted::Value(value) => Some(value),
                _ => None,
            });
            if let Some(value) = value {
                self.set(ctx, slot, value, Source::Model, entering, filled);
            }
        }
    }

    fn ask(ctx: &mut Ctx<'_>, slot: &Slot) {
        match slot.question {
            Question::Text(key) => ctx.say(key),
            Question::Fn(speak) => speak(ctx),
            Question::Never => {}
        }
    }

    /// Every slot is filled: fill in defaults, then finish or confirm.
    fn complete(&self, ctx: &mut Ctx<'_>) -> Next {
        for slot in &self.slots {
            if let (Some(value), None) = (slot.default, ctx.data().get(slot.name)) {
                ctx.data_mut().set(slot.name, value);
            }
        }
        match &self.finish {
            Finish::Done(done) => done(ctx),
            Finish::Then(next) => *next,
            Finish::Confirm { summary, .. } => {
                summary(ctx);
                Next::Wait
            }
        }
    }

    /// Asks for what is missing, or completes.
    fn next(&self, ctx: &mut Ctx<'_>) -> Next {
        match self.missing(ctx) {
            Some(slot) => {
                Self::ask(ctx, slot);
                Next::Wait
            }
            None => self.complete(ctx),
        }
    }

    fn miss(&self, ctx: &mut Ctx<'_>, slot: &'static str, reason: &'static str, say: impl FnOnce(&mut Ctx<'_>)) -> Next {
        ctx.slot_event(EventKind::SlotMissed { slot: slot.to_owned(), reason: reason.to_owned() });
        if ctx.attempts() + 1 >= self.max_attempts {
            ctx.say(self.exhausted);
            return Next::Handoff;
        }
        say(ctx);
        Next::Retry
    }
}

impl Step for Form {
    /// Fills what the message that led here already says (the opening, or
    /// the answer to the previous step), answers a side question in it, then
    /// asks for the first missing slot (or completes).
    fn enter(&self, ctx: &mut Ctx<'_>) -> Next {
        // Without a message (an evacuation) the extractors still run, on an
        // empty text: one reading what the session data already holds may fill.
        let opening = ctx.message().unwrap_or("");
        let side = self.side_for(ctx, opening);
        let filled = match side {
            Some(side) if side.exclusive => Filled::default(),
            _ => {
                let mut filled = self.fill(ctx, opening, true);
                if !opening.is_empty() {
                    self.ask_model(ctx, opening, true, &mut filled);
                }
                filled
            }
        };
        if let Some(side) = side {
            (side.answer)(ctx);
        }
        if let (Some((_, reason)), Some(_)) = (filled.refused, self.missing(ctx)) {
            ctx.say(reason);
        }
        self.next(ctx)
    }

    fn input(&self, ctx: &mut Ctx<'_>, text: &str) -> Next {
        let confirming = self.missing(ctx).is_none();
        let side = self.side_for(ctx, text);
        let filled = match side {
            Some(side) if side.exclusive => Filled::default(),
            _ => {
                let mut filled = self.fill(ctx, text, false);
                self.ask_model(ctx, text, false, &mut filled);
                filled
            }
        };
        if let Some(side) = side {
            (side.answer)(ctx);
        }
        let asking = self.missing(ctx);
        match (asking, filled.refused) {
            // Something wrong for a slot ("esse CPF não é válido"): say why.
            (_, Some((refused, reason))) => self.miss(ctx, refused, reason, |ctx| ctx.say(reason)),
            (Some(slot), _) if !filled.changed.is_empty() || filled.restated || side.is_some() => {
                Self::ask(ctx, slot);
                Next::Wait
            }
            (Some(slot), _) => {
                let name = slot.name;
                match slot.reprompt {
                    Some(key) => self.miss(ctx, name, "nothing", |ctx| ctx.say(key)),
                    None => self.miss(ctx, name, "nothing", |ctx| Self::ask(ctx, slot)),
                }
            }
            (None, _) if !confirming || !filled.changed.is_empty() => self.complete(ctx),
            (None, _) if side.is_some() => {
                // The question was answered; show what awaits confirmation again.
                self.complete(ctx)
            }
            (None, _) => match &self.finish {
                Finish::Done(done) => done(ctx),
                Finish::Then(next) => *next,
                Finish::Confirm { answer, invalid, .. } => match answer(ctx, text) {
                    Some(next) => next,
                    None => {
                        let invalid = *invalid;
                        self.miss(ctx, "confirm", "nothing", |ctx| ctx.say(invalid))
                    }
                },
            },
        }
    }

    fn targets(&self) -> Vec<Next> {
        self.targets.clone()
    }

    fn text_keys(&self) -> Vec<&'static str> {
        let mut keys = vec![self.exhausted];
        for slot in &self.slots {
            if let Question::Text(key) = slot.question {
                keys.push(key);
            }
            keys.extend(slot.reprompt);
        }
        if let Finish::Confirm { invalid, .. } = &self.finish {
            keys.push(invalid);
        }
        keys
    }
}
