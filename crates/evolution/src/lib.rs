//! The only crate that knows Evolution API (v2) JSON: it turns webhook bodies
//! into typed events with a normalised customer identity, authenticates
//! webhook requests, and sends replies through the REST API.
//!
//! Nothing here decides what to answer: the server feeds [`webhook::Incoming`]
//! to the engine and hands the engine's replies to [`client::EvolutionClient`].
//!
//! Evolution's payloads change between versions (2.3.0 to 2.4.0 moved the
//! phone number of hidden-number contacts across four different fields), so
//! the parser is deliberately lenient about shape and strict only about the
//! few fields without which a message cannot be answered.
//!
//! # Layout
//! - [`webhook`]: `parse(body) -> Webhook`: envelope, event-name normalisation,
//!   `messages.upsert` decoding (wrappers, content kinds, timestamps) and the
//!   PN/LID identity rules. Errors never carry customer data.
//! - [`auth`]: constant-time comparison of a shared secret header, and
//!   verification of the HS256 JWT Evolution sends when a webhook has `jwt_key`.
//! - [`client`]: `EvolutionClient::send_text` over reqwest + rustls, mapping
//!   Evolution's loosely shaped error bodies to unanswered / retryable /
//!   rejected / unauthorized outcomes.
//! - [`media`]: `sendMedia`, `sendButtons`/`sendList` (Cloud API only),
//!   `sendText` with a typing `delay`, and `getBase64FromMediaMessage`.
//! - [`stored`]: `EvolutionClient::find_sent`: whether a text whose send went
//!   unanswered is among the chat's stored messages (`findMessages`).
//!
//! Privacy: phone numbers and message texts never appear in error messages;
//! the `Debug` output of [`webhook::Identity`] and [`webhook::Content`] masks
//! them, so logging a parsed webhook with `{:?}` is safe.

pub mod auth;
pub mod client;
pub mod media;
pub mod stored;
pub mod webhook;

/// The workspace's one masking rule (`Debug` output, error reasons).
use switchyard_engine::mask;

pub use auth::{JwtError, bearer_token, secret_matches, verify_jwt};
pub use client::{ClientError, EvolutionClient, SendError, Sent};
pub use media::{Choice, Fetched, OutgoingMedia};
pub use stored::SentQuery;
pub use webhook::{
    Audio, Chat, Content, Identity, IgnoreReason, Incoming, Media, MediaKind, ParseError, Webhook,
    WebhookKind, normalise_event, parse,
};
