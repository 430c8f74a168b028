//! The domain core of Switchyard: versioned conversation flows, sessions pinned
//! to a version, the registry that validates every version, and the policy that
//! resolves which version a new session gets.
//!
//! The engine does no concrete I/O. Storage is the [`store::Store`] trait, time
//! arrives as an argument, and a turn returns replies and events as data: the
//! caller decides how to persist and deliver them.
//!
//! # Layout
//! - [`ids`]: newtypes (`Contact`, `InstanceId`, `Version`, `SessionId`, ...).
//! - [`media`]: attachments by reference, files and menu options a reply carries.
//! - [`mask`]: the one masking rule for phones, CPF/CNPJ and e-mails in text (logs, errors, `Debug`).
//! - [`time`]: `Timestamp` and the `Clock` trait; duration parsing (`30m`, `24h`).
//! - [`text`]: normalisation for forgiving matching, and the embedded text files.
//! - [`flow`]: what a flow author writes: `VersionDecl`, the `Step` trait, `Ctx`, `Next`.
//! - [`kinds`]: reusable step kinds (numbered menu, ask with a validator, say and finish).
//! - [`form`]: the form step: slots filled from whatever the customer says, asking only for what is missing.
//! - [`registry`]: validated, checked flow versions; the error messages name flow, version and step.
//! - [`resolve`]: `FLOW_VERSION_OVERRIDES` parsing and version resolution with its reason.
//! - [`rollout`]: the runtime rules (pin, instance, schedule, split, promote) and Unleash-compatible bucketing.
//! - [`session`]: the session, its outcome, its data.
//! - [`event`]: the append-only event log's entries.
//! - [`classify`]: model classification and extraction as data: tasks, requests, decisions, the `Model` trait.
//! - [`trained`]: the offline classifier trained from a version's examples, and the weighed decision (keywords + trained + model).
//! - [`call`]: calls between flows (a step runs another flow and gets control back); the stack of sessions.
//! - [`engine`]: one turn: (contact state, inbound message, now) -> (sessions, events, replies).
//! - [`store`]: the `Store` trait the adapters implement.
//! - [`memory`]: `MemoryStore`, the in-memory `Store` and `Queue` for tests and benchmarks.
//! - [`queue`]: the durable inbox and outbox around a turn (the `Queue` trait).
//! - [`service`]: load, turn, commit (with optimistic retry), and the expiry sweep.
//! - [`analytics`]: rates with Wilson intervals, A/B comparisons, sample-ratio checks, guarded-rollout decisions.

pub mod analytics;
pub mod call;
pub mod classify;
pub mod engine;
pub mod event;
pub mod flow;
pub mod form;
mod hash;
pub mod ids;
pub mod kinds;
pub mod mask;
pub mod media;
pub mod memory;
pub mod queue;
pub mod registry;
pub mod resolve;
pub mod rollout;
pub mod service;
pub mod session;
pub mod store;
pub mod text;
pub mod time;
pub mod trained;
