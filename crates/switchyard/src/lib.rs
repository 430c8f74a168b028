//! The `switchyard` application: configuration and the HTTP server. The CLI
//! (`main.rs`) is a thin layer over this library, and the integration tests
//! start the very same server on port 0.
//!
//! # Layout
//! - [`config`]: every environment variable, parsed strictly.
//! - [`eval`]: the classifier evaluation (labelled set, accuracy, confusions).
//! - [`config_file`]: the optional TOML file (same settings; the environment wins), and the `http` steps' endpoints.
//! - [`document`]: flows as data: the TOML flow document, its validation, publishing and the `http` step.
//! - [`holding`]: the store of `chat` and `simulate`: a handoff's hold row written with its turn.
//! - [`ignore`]: ignore lists (numbers, JIDs, `@g.us` / `@s.whatsapp.net` wildcards).
//! - [`logs`]: the log subscriber; every line masked (phones, CPF, CNPJ, e-mails).
//! - [`rollout`]: policy changes (validated, audited) and the deploy manifest.
//! - [`replay`]: recorded conversations through a candidate version, compared, and the masked corpus.
//! - [`report`]: the guard evaluator (the report itself is [`views::flow`]).
//! - [`sessions`]: ending sessions by hand and erasing a contact, for the CLI and the admin API.
//! - [`views`]: the typed figures the CLI, the admin API and the console render.
//! - [`steer`]: the rollout edits (pin, split, ...) and evacuation the CLI and the console apply.
//! - [`ui`]: the operator console at `/ui` (its own listener, `CONSOLE_BIND_ADDR`).
//! - [`serve`]: the axum app (`app`), the processor, the outbox sender and
//!   the sweeper (`Server::start`).

pub mod chatwoot;
pub mod config;
pub mod eval;
pub mod config_file;
pub mod holding;
pub mod hours;
pub mod document;
pub mod ignore;
pub mod logs;
pub mod progress;
pub mod replay;
pub mod report;
pub mod rollout;
pub mod serve;
pub mod sessions;
pub mod views;
pub mod steer;
pub mod ui;
