//! Implementations of the engine's [`Store`](switchyard_engine::store::Store)
//! trait: SQLite, the embedded default. Each backend has its own migrations
//! folder; all of them pass the one [`conformance`] suite.
//!
//! # Layout
//! - [`sqlite`]: the SQLite store (WAL, migrations embedded and run on connect).
//! - [`policy`]: the stored rollout policy (JSON per flow) and the audit log.
//! - [`report`]: counts per version and per step for reports and `/metrics`.
//! - [`sessions`]: live sessions by flow, version, step and instance; a contact's history.
//! - [`burst`]: debounce: a contact's burst of texts, merged into one inbox entry.
//! - [`privacy`]: erasing a contact (LGPD), purging old message texts and session data.
//! - [`conformance`]: the contract every store must pass, as async functions
//!   the backends' test files call.
//! - [`open`]: picks the backend from a `DATABASE_URL`.
//!
//! Row types live here, not in the engine: the engine's types do not know how
//! they are serialised.

pub mod burst;
pub mod conformance;
pub mod policy;
pub mod privacy;
pub mod report;
pub mod sessions;
pub mod sqlite;

use switchyard_engine::store::StoreError;

/// The default `DATABASE_URL`: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://switchyard.db";

/// Opens the store named by `url`, creating and migrating it when needed.
pub async fn open(url: &str) -> Result<sqlite::SqliteStore, StoreError> {
    if url.starts_with("sqlite:") {
        sqlite::SqliteStore::open(url).await
    } else {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        Err(StoreError::Other(format!(
            "DATABASE_URL scheme '{scheme}' is not supported: use sqlite://PATH (for example {DEFAULT_DATABASE_URL})"
        )))
    }
}
