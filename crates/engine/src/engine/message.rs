//! What goes into a turn (the inbound message and the contact's stored
//! state) and what comes out of it (the [`Turn`] to commit, its replies).

use std::borrow::Cow;

use crate::classify::{Decisions, Request};
use crate::event::Event;
use crate::ids::{Contact, FlowId, InstanceId, SessionId, StepId, Version};
use crate::session::Session;
use crate::time::Timestamp;

/// What the customer sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Text(String),
    /// A voice note, with its transcript when one exists (the channel's or
    /// one made before the turn): the turn reads the transcript as text and
    /// records a `received` event `audio`. Without one: the "please type"
    /// answer.
    Audio { transcript: Option<String> },
    /// An image or document, by reference (see [`crate::media`]).
    Attachment(crate::media::Attachment),
    /// Something the bot cannot read (`sticker`, `location` ...).
    Unsupported(String),
}

#[derive(Clone, Debug)]
pub struct Inbound {
    pub instance: InstanceId,
    pub contact: Contact,
    pub content: Content,
}

/// What the store knows about a contact before the turn.
#[derive(Clone, Debug, Default)]
pub struct ContactState {
    /// The contact's live session, if any (possibly past its expiry): the
    /// outermost one when it called other flows.
    pub session: Option<Session>,
    /// The live sessions `session` called and is waiting for, outermost
    /// first (the stack of [`crate::call`]); empty without a call.
    pub calls: Vec<Session>,
    /// The bot is silent for this contact until then (after a handoff).
    pub handoff_until: Option<Timestamp>,
    /// Versions a split assigned this contact, per flow, and when
    /// (assignment memory: a split with `memory_days` keeps them there).
    pub assignments: Vec<(FlowId, Version, Timestamp)>,
}

/// One message to the customer, with the session context it was sent in.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub session: Option<SessionId>,
    pub flow: Option<FlowId>,
    pub version: Option<Version>,
    pub step: Option<StepId>,
    pub text: ReplyText,
    /// A file to send with `text` as caption, or the menu options `text`
    /// lists; `None` for plain text.
    pub rich: Option<crate::media::Rich>,
}

impl Reply {
    /// A reply in `session`'s context, at its current step.
    pub(super) fn at(session: &Session, text: ReplyText) -> Reply {
        Reply {
            session: Some(session.id()),
            flow: Some(session.flow().clone()),
            version: Some(session.version()),
            step: Some(session.step().clone()),
            text,
            rich: None,
        }
    }
}

/// A reply's text. A version's constant text (no `{name}` in it) is shared
/// with the version instead of copied into every reply; a rendered one is
/// owned. Reads as a `str` (`as_str`, `Deref`, `==` with text).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyText(Cow<'static, str>);

impl ReplyText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl std::ops::Deref for ReplyText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ReplyText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ReplyText {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ReplyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for ReplyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ReplyText {
    fn from(text: String) -> ReplyText {
        ReplyText(Cow::Owned(text))
    }
}

impl From<&'static str> for ReplyText {
    fn from(text: &'static str) -> ReplyText {
        ReplyText(Cow::Borrowed(text))
    }
}

impl From<Cow<'static, str>> for ReplyText {
    fn from(text: Cow<'static, str>) -> ReplyText {
        ReplyText(text)
    }
}

impl From<ReplyText> for String {
    fn from(text: ReplyText) -> String {
        text.into_string()
    }
}

impl PartialEq<str> for ReplyText {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for ReplyText {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for ReplyText {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<ReplyText> for str {
    fn eq(&self, other: &ReplyText) -> bool {
        *self == *other.0
    }
}

impl PartialEq<ReplyText> for &str {
    fn eq(&self, other: &ReplyText) -> bool {
        **self == *other.0
    }
}

impl PartialEq<ReplyText> for String {
    fn eq(&self, other: &ReplyText) -> bool {
        **self == *other.0
    }
}

/// Everything a turn changed, to be committed in one transaction.
#[derive(Clone, Debug)]
pub struct Turn {
    pub instance: InstanceId,
    pub contact: Contact,
    /// Every session the turn touched, in its final state. `revision` is still
    /// the one loaded (0 for new sessions): the store checks it and bumps it.
    pub sessions: Vec<Session>,
    pub events: Vec<Event>,
    pub replies: Vec<Reply>,
    /// Set when the turn handed the contact to a human.
    pub handoff_until: Option<Timestamp>,
    /// The message arrived while a human has the conversation: stored, not answered.
    pub silenced: bool,
    /// Split assignments to remember for this contact: (flow, version, at).
    pub assignments: Vec<(FlowId, Version, Timestamp)>,
    /// Questions for the model the steps found no answer to in this turn's
    /// decisions; the keyword classifier decided them. The service layer may
    /// ask the model and run the turn again (see [`crate::service::run_turn`]).
    pub requests: Vec<Request>,
    /// The contact's assignments as loaded, for resolving sessions started in this turn.
    pub(super) remembered: Vec<(FlowId, Version, Timestamp)>,
    /// The model's answers this turn runs with.
    pub(super) decisions: Decisions,
    /// Sessions started in this turn, with the message that started them
    /// (`Ctx::opening`): `None` for the turn's `message`.
    pub(super) openings: Vec<(SessionId, Option<String>)>,
    /// The customer's text this turn handles (`Ctx::message`).
    pub(super) message: Option<String>,
    /// The file the customer sent, for a step that accepts files (`Ctx::attachment`).
    /// Boxed: the turn is moved by value several times, and rarely has one.
    pub(super) attachment: Option<Box<crate::media::Attachment>>,
    /// `message` normalised ([`crate::text::normalize`]), computed once per turn.
    pub(super) normalized: Option<String>,
    /// The callers of the session being run, outermost first (empty without a call).
    pub(super) stack: Vec<Session>,
    /// Calls made in this turn; more than `MAX_HOPS` is a loop.
    pub(super) calls: u32,
}

impl Turn {
    pub(super) fn new(instance: &InstanceId, contact: &Contact) -> Turn {
        Turn {
            instance: instance.clone(),
            contact: contact.clone(),
            // Nearly every turn touches one session, one that starts a
            // flow or hands over two; room for two stays a small allocation.
            sessions: Vec::with_capacity(2),
            events: Vec::new(),
            replies: Vec::new(),
            handoff_until: None,
            silenced: false,
            assignments: Vec::new(),
            requests: Vec::new(),
            remembered: Vec::new(),
            decisions: Decisions::default(),
            openings: Vec::new(),
            message: None,
            attachment: None,
            normalized: None,
            stack: Vec::new(),
            calls: 0,
        }
    }

    /// Sessions that ended in this turn, with their outcome.
    pub fn ended(&self) -> impl Iterator<Item = &Session> {
        self.sessions.iter().filter(|session| !session.is_live())
    }

    /// The contact's live session after the turn: the innermost one when
    /// it is inside a call.
    pub fn live(&self) -> Option<&Session> {
        self.sessions.iter().filter(|session| session.is_live()).max_by_key(|session| session.depth())
    }
}
