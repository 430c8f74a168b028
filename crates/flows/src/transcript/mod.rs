//! Conversation transcripts: the format's parser and the runner, shared by
//! the transcript tests (`tests/transcripts`, which documents the format)
//! and `switchyard flows test`, which runs them against a flow document
//! before it is published.

pub mod parse;
pub mod run;

use switchyard_engine::time::Timestamp;

/// The clock of every run: 2026-11-25T12:00:00Z.
pub const START: Timestamp = Timestamp::from_millis(1_795_608_000_000);
/// The contact a transcript talks as unless it says `contact:`.
pub const DEFAULT_CONTACT: &str = "5511900000001";
/// The instance a transcript talks to unless it says `instance:`.
pub const DEFAULT_INSTANCE: &str = "vendas";
