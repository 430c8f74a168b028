//! Reusable step kinds, so that a 16-step flow reads as a list of questions:
//!
//! - [`Menu`]: a numbered menu; accepts the number, the option's words and
//!   synonyms, case- and accent-insensitively; after too many misses, hands off.
//! - [`Ask`]: asks for a value, checks it with a validator, stores it.
//! - [`Say`]: sends a text and moves on (usually: finishes the session).
//! - [`Call`]: runs another flow ([`Next::Call`]) and goes on when it returns.
//! - [`Custom`]: a step from two closures (or plain functions), for everything else.
//! - [`crate::form::Form`]: slots filled from whatever the customer says.

use crate::flow::{Ctx, Next, Step, Target};
use crate::text::{contains_phrase, normalize};

/// Where a menu option or a kind leads: the same enum as [`Next`], kept
/// under this name for the released version folders.
pub type To = Next;

/// A menu option in a [`Shape::Menu`]: its normalised phrases, where it
/// leads, and the values it stores.
pub type MenuOption = (Vec<String>, Next, Vec<(&'static str, &'static str)>);

/// A kind's declaration as data (see [`Step::shape`]).
#[derive(Clone, Debug)]
pub enum Shape {
    /// Options: (normalised words, where it leads, values it stores).
    Menu {
        prompt: &'static str,
        invalid: &'static str,
        exhausted: &'static str,
        max_attempts: u32,
        options: Vec<MenuOption>,
    },
    Ask {
        prompt: &'static str,
        invalid: &'static str,
        exhausted: &'static str,
        max_attempts: u32,
        save_as: &'static str,
        validate: Validator,
        then: Next,
    },
    Say { text: &'static str, then: Next },
    /// A call of `callee` (`flow` or `flow@vN`) and where the caller goes when it returns.
    Call { callee: &'static str, then: Next },
}

/// The default number of misses before a kind hands the customer to a human.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 2;

struct Choice {
    phrases: Vec<String>,
    to: To,
    set: Vec<(&'static str, &'static str)>,
}

/// A numbered menu. Option `n` (1-based) is the `n`th `.option(...)`.
pub struct Menu {
    prompt: &'static str,
    invalid: &'static str,
    exhausted: &'static str,
    max_attempts: u32,
    choices: Vec<Choice>,
}

impl Menu {
    /// `prompt` is the text key sent on entering (it shows the numbered options),
    /// `invalid` the re-prompt for input that matches no option.
    pub fn new(prompt: &'static str, invalid: &'static str) -> Menu {
        Menu { prompt, invalid, exhausted: "handoff", max_attempts: DEFAULT_MAX_ATTEMPTS, choices: Vec::new() }
    }
    /// Adds the next numbered option, recognised also by any of `words`
    /// (phrases matched on word boundaries, accents and case ignored).
    pub fn option(mut self, words: &[&str], to: To) -> Menu {
        self.choices.push(Choice { phrases: words.iter().map(|word| normalize(word)).collect(), to, set: Vec::new() });
        self
    }
    /// Like [`Menu::option`], and stores `key = value` in the session data when chosen.
    pub fn option_set(mut self, words: &[&str], to: To, key: &'static str, value: &'static str) -> Menu {
        self.choices.push(Choice {
            phrases: words.iter().map(|word| normalize(word)).collect(),
            to,
            set: vec![(key, value)],
        });
        self
    }
    /// The text key sent when the attempts run out (default `handoff`).
    pub fn exhausted(mut self, key: &'static str) -> Menu {
        self.exhausted = key;
        self
    }
    /// Misses tolerated before handing off (default 2).
    pub fn max_attempts(mut self, attempts: u32) -> Menu {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The option a normalised text picks, by number (when `numbers` is
    /// true) or by words.
    fn pick(&self, normalized: &str, numbers: bool) -> Option<&Choice> {
        let first = normalized.split(' ').next().unwrap_or("");
        if numbers && !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
            let n: usize = first.parse().ok()?;
            return self.choices.get(n.checked_sub(1)?);
        }
        if numbers && let Some(rest) = normalized.strip_prefix("opcao ") {
            let n: usize = rest.split(' ').next()?.parse().ok()?;
            return self.choices.get(n.checked_sub(1)?);
        }
        // The longest matching phrase wins, so "status do pedido" beats "pedido";
        // two options tied on length is ambiguous and picks nothing.
        let mut best: Option<(&Choice, usize)> = None;
        let mut tied = false;
        for choice in &self.choices {
            let longest = choice
                .phrases
                .iter()
                .filter(|phrase| contains_phrase(normalized, phrase))
                .map(|phrase| phrase.len())
                .max();
            if let Some(len) = longest {
                match best {
                    Some((_, best_len)) if best_len > len => {}
                    Some((other, best_len)) if best_len == len => tied = !std::ptr::eq(other, choice),
                    _ => {
                        best = Some((choice, len));
                        tied = false;
                    }
                }
            }
        }
        if tied { None } else { best.map(|(choice, _)| choice) }
    }

    fn take(&self, ctx: &mut Ctx<'_>, choice: &Choice) -> Next {
        for (key, value) in &choice.set {
            ctx.data_mut().set(*key, *value);
        }
        choice.to.next()
    }
}

impl Step for Menu {
    /// When the session starts here with a message that already names an option
    /// in words ("quero renovar"), the menu is skipped. Numbers are not taken
    /// from a trigger: "1" meant an option of the previous menu.
    fn enter(&self, ctx: &mut Ctx<'_>) -> Next {
        if let Some(trigger) = ctx.trigger() && let Some(choice) = self.pick(&ctx.normalized(trigger), false) {
            return self.take(ctx, choice);
        }
        ctx.say_menu(self.prompt, self.choices.len());
        Next::Wait
    }

    fn input(&self, ctx: &mut Ctx<'_>, text: &str) -> Next {
        match self.pick(&ctx.normalized(text), true) {
            Some(choice) => self.take(ctx, choice),
            None if ctx.attempts() + 1 >= self.max_attempts => {
                ctx.say(self.exhausted);
                Next::Handoff
            }
            None => {
                ctx.say(self.invalid);
                Next::Retry
            }
        }
    }

    fn targets(&self) -> Vec<crate::flow::Target> {
        self.choices.iter().filter_map(|choice| choice.to.target()).collect()
    }

    fn text_keys(&self) -> Vec<&'static str> {
        vec![self.prompt, self.invalid, self.exhausted]
    }

    fn shape(&self) -> Option<Shape> {
        Some(Shape::Menu {
            prompt: self.prompt,
            invalid: self.invalid,
            exhausted: self.exhausted,
            max_attempts: self.max_attempts,
            options: self.choices.iter().map(|choice| (choice.phrases.clone(), choice.to, choice.set.clone())).collect(),
        })
    }
}

/// Validates and normalises a typed value: `Some(clean)` or `None` for invalid.
pub type Validator = fn(&str) -> Option<String>;

/// Asks for a value, validates it, stores it under `save_as` and moves on.
pub struct Ask {
    prompt: &'static str,
    invalid: &'static str,
    exhausted: &'static str,
    max_attempts: u32,
    save_as: &'static str,
    validate: Validator,
    then: To,
}

impl Ask {
    pub fn new(prompt: &'static str, save_as: &'static str, validate: Validator, invalid: &'static str, then: To) -> Ask {
        Ask { prompt, invalid, exhausted: "handoff", max_attempts: 3, save_as, validate, then }
    }
    pub fn exhausted(mut self, key: &'static str) -> Ask {
        self.exhausted = key;
        self
    }
    /// Misses tolerated before handing off (default 3).
    pub fn max_attempts(mut self, attempts: u32) -> Ask {
        self.max_attempts = attempts.max(1);
        self
    }
}

impl Step for Ask {
    fn enter(&self, ctx: &mut Ctx<'_>) -> Next {
        ctx.say(self.prompt);
        Next::Wait
    }

    fn input(&self, ctx: &mut Ctx<'_>, text: &str) -> Next {
        match (self.validate)(text) {
            Some(value) => {
                ctx.data_mut().set(self.save_as, value);
                self.then.next()
            }
            None if ctx.attempts() + 1 >= self.max_attempts => {
                ctx.say(self.exhausted);
                Next::Handoff
            }
            None => {
                ctx.say(self.invalid);
                Next::Retry
            }
        }
    }

    fn targets(&self) -> Vec<Target> {
        self.then.target().into_iter().collect()
    }

    fn text_keys(&self) -> Vec<&'static str> {
        vec![self.prompt, self.invalid, self.exhausted]
    }

    fn shape(&self) -> Option<Shape> {
        Some(Shape::Ask {
            prompt: self.prompt,
            invalid: self.invalid,
            exhausted: self.exhausted,
            max_attempts: self.max_attempts,
            save_as: self.save_as,
            validate: self.validate,
            then: self.then,
        })
    }
}

/// Sends a text on entering, then goes on at once (by default: completes).
pub struct Say {
    text: &'static str,
    then: To,
}

impl Say {
    /// Sends `text` and completes the session.
    pub fn finish(text: &'static str) -> Say {
        Say { text, then: To::Complete }
    }
    /// Sends `text` and goes to `then`.
    pub fn then(text: &'static str, then: To) -> Say {
        Say { text, then }
    }
}

impl Step for Say {
    fn enter(&self, ctx: &mut Ctx<'_>) -> Next {
        ctx.say(self.text);
        self.then.next()
    }

    /// Unreachable in practice (the step never waits); treated like entering again.
    fn input(&self, ctx: &mut Ctx<'_>, _text: &str) -> Next {
        self.enter(ctx)
    }

    fn targets(&self) -> Vec<Target> {
        self.then.target().into_iter().collect()
    }

    fn text_keys(&self) -> Vec<&'static str> {
        vec![self.text]
    }

    fn shape(&self) -> Option<Shape> {
        Some(Shape::Say { text: self.text, then: self.then })
    }
}

type EnterFn = Box<dyn Fn(&mut Ctx<'_>) -> Next + Send + Sync>;
type InputFn = Box<dyn Fn(&mut Ctx<'_>, &str) -> Next + Send + Sync>;

/// A step made of closures, for logic the other kinds do not cover.
pub struct Custom {
    targets: Vec<Target>,
    keys: Vec<&'static str>,
    enter: Option<EnterFn>,
    input: InputFn,
    attachments: bool,
    returned: Option<EnterFn>,
}

impl Custom {
    /// `targets` lists every step or flow the closures may go to.
    pub fn new(targets: &[To], input: impl Fn(&mut Ctx<'_>, &str) -> Next + Send + Sync + 'static) -> Custom {
        Custom {
            targets: targets.iter().filter_map(|to| to.target()).collect(),
            keys: Vec::new(),
            enter: None,
            input: Box::new(input),
            attachments: false,
            returned: None,
        }
    }
    /// A step that only acts on entering and never waits: its input (which
    /// only a step map or an evacuation could deliver) enters it again.
    pub fn enter_only(targets: &[To], enter: impl Fn(&mut Ctx<'_>) -> Next + Send + Sync + 'static) -> Custom {
        let enter: std::sync::Arc<dyn Fn(&mut Ctx<'_>) -> Next + Send + Sync> = std::sync::Arc::new(enter);
        let again = std::sync::Arc::clone(&enter);
        Custom {
            targets: targets.iter().filter_map(|to| to.target()).collect(),
            keys: Vec::new(),
            enter: Some(Box::new(move |ctx: &mut Ctx<'_>| enter(ctx))),
            input: Box::new(move |ctx: &mut Ctx<'_>, _text: &str| again(ctx)),
            attachments: false,
            returned: None,
        }
    }
    pub fn on_enter(mut self, enter: impl Fn(&mut Ctx<'_>) -> Next + Send + Sync + 'static) -> Custom {
        self.enter = Some(Box::new(enter));
        self
    }
    /// What happens when a flow this step called returns (see
    /// [`Step::returned`]; by default the session completes).
    pub fn on_return(mut self, returned: impl Fn(&mut Ctx<'_>) -> Next + Send + Sync + 'static) -> Custom {
        self.returned = Some(Box::new(returned));
        self
    }
    /// Declares the text keys the closures use, so the registry checks them.
    pub fn texts(mut self, keys: &[&'static str]) -> Custom {
        self.keys.extend_from_slice(keys);
        self
    }
    /// The step takes files the customer sends ([`Ctx::attachment`]).
    pub fn attachments(mut self) -> Custom {
        self.attachments = true;
        self
    }
}

impl Step for Custom {
    fn enter(&self, ctx: &mut Ctx<'_>) -> Next {
        match &self.enter {
            Some(enter) => enter(ctx),
            None => Next::Wait,
        }
    }
    fn input(&self, ctx: &mut Ctx<'_>, text: &str) -> Next {
        (self.input)(ctx, text)
    }
    fn returned(&self, ctx: &mut Ctx<'_>) -> Next {
        match &self.returned {
            Some(returned) => returned(ctx),
            None => Next::Complete,
        }
    }
    fn targets(&self) -> Vec<Target> {
        self.targets.clone()
    }
    fn text_keys(&self) -> Vec<&'static str> {
        self.keys.clone()
    }
    fn accepts_attachments(&self) -> bool {
        self.attachments
    }
}

/// A step that runs another flow and goes on when it returns: `callee` is
/// `flow` (its version resolved by its own policy at the moment of the call)
/// or `flow@vN` (fixed). See [`crate::call`].
pub struct Call {
    callee: &'static str,
    then: Next,
}

impl Call {
    /// Calls `callee`; when it returns, the session completes (see [`Call::then`]).
    pub fn new(callee: &'static str) -> Call {
        Call { callee, then: Next::Complete }
    }
    /// Where the caller goes when the callee returns (a step, another call,
    /// a handover, or an end).
    pub fn then(mut self, to: To) -> Call {
        self.then = to;
        self
    }
    /// The flow (and fixed version) this step calls.
    pub fn callee(&self) -> &'static str {
        self.callee
    }
}

impl Step for Call {
    fn enter(&self, _ctx: &mut Ctx<'_>) -> Next {
        Next::Call(self.callee)
    }
    fn returned(&self, _ctx: &mut Ctx<'_>) -> Next {
        self.then
    }
    fn targets(&self) -> Vec<Target> {
        std::iter::once(Next::Call(self.callee)).chain(self.then.target()).collect()
    }
    fn shape(&self) -> Option<Shape> {
        Some(Shape::Call { callee: self.callee, then: self.then })
    }
}
