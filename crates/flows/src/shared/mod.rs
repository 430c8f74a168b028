//! Helpers shared by flow versions. A version's fingerprint includes each
//! module here that its code names (`shared::<module>`), so changing a helper
//! shows up as a changed fingerprint for every version that uses it.
//!
//! The fingerprint follows names, not imports: a version names every module
//! it depends on, including the ones it only reaches through another helper
//! (the `backend` types use `dates`, `document`, `money` and `order`). Shared
//! modules name each other as `crate::shared::<module>` so that a test can
//! check this (see `tests` in the crate root).
//!
//! - [`backend`]: the back office trait and the deterministic demo.
//! - [`choice`]: forgiving option matching, yes/no, re-prompt or handoff.
//! - [`dates`]: calendar days, `25/11/2026`, payment dates typed by customers.
//! - [`document`]: CPF and CNPJ with check digits.
//! - [`email`]: e-mail addresses in free text.
//! - [`intent`]: what a first message asks for, by keywords.
//! - [`money`]: centavos shown as `R$ 1.234,56`.
//! - [`order`]: order numbers (`CF-100001`).

pub mod backend;
pub mod choice;
pub mod dates;
pub mod document;
pub mod email;
pub mod intent;
pub mod money;
pub mod order;
