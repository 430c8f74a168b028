//! Implementations of the engine's [`Store`](switchyard_engine::store::Store)
//! trait: SQLite, the embedded default, and PostgreSQL, for several `serve`
//! processes on one database. Each backend has its own migrations folder;
//! all of them pass the one [`conformance`] suite. [`Db`] is the store a
//! process runs on, whichever backend `DATABASE_URL` names.
//!
//! # Layout
//! Two places: what both backends share, and what differs per backend.
//!
//! **Shared, by topic**: each module writes its statements once (`$N`
//! placeholders, which SQLite reads as numbered too) and each operation once,
//! in a `backend::both!` block compiled for both stores:
//! - [`policy`]: the stored rollout policy (JSON per flow) and the audit log.
//! - [`report`]: counts per version and per step for reports and `/metrics`; the drain view.
//! - `guard` (private): a split guard's population.
//! - [`figures`]: live sessions per version, traffic, outbox and holds, for the console.
//! - [`sessions`]: live sessions by flow, version, step and instance; a contact's history.
//! - [`connections`]: each Evolution instance's last `connection.update`.
//! - [`holds`]: holds (handoff, takeover, return) and their durable Chatwoot calls.
//! - [`documents`]: flow versions published as documents.
//! - [`recorded`]: recorded sessions with their messages, for replay and export.
//! - [`privacy`]: erasing a contact (LGPD), purging old message texts and session data.
//! - [`aliases`]: a contact's phone number and `@lid` alias, linked.
//! - `codec` (private): how rows map to the engine's types, for both.
//!
//! **Per backend**:
//! - `backend` (private): the `Backend` trait, all a shared operation asks of
//!   a store (pools, how a rare write or an audit append begins, erasure's
//!   locks and scrub, error mapping), and its two small implementations.
//! - [`sqlite`]: the SQLite store (WAL, migrations embedded and run on
//!   connect) and its hot path: `writer` (private), group commit on one
//!   thread, which also runs the hot reads (`reader`, private) on its warm
//!   connection.
//! - [`postgres`]: the PostgreSQL store and its hot path (leases,
//!   `SKIP LOCKED` claims, node advisory locks); `pg_writer` (private), its
//!   group commit, one task per store, multi-row statements.
//! - [`burst`]: debounce: a contact's burst of texts, merged into one inbox
//!   entry (its merge is one `= ANY` statement on PostgreSQL, one per entry on SQLite).
//!
//! Dependencies point one way: topic modules use `backend`, which uses the
//! stores, which use `codec`.
//!
//! [`conformance`]: the contract every store must pass, as async functions
//! the backends' test files call; [`testing`]: fresh databases for tests.
//! [`open`]: picks the backend from a `DATABASE_URL`.
//!
//! Row types live here, not in the engine: the engine's types do not know how
//! they are serialised.

pub mod aliases;
mod backend;
pub mod burst;
pub mod connections;
pub mod holds;
mod codec;
mod reader;
pub mod conformance;
pub mod figures;
mod guard;
pub mod documents;
pub mod policy;
pub mod postgres;
mod pg_writer;
pub mod privacy;
pub mod recorded;
pub mod report;
pub mod sessions;
pub mod sqlite;
pub mod testing;
mod writer;

use serde_json::Value;
use switchyard_engine::classify::Classification;
use switchyard_engine::engine::{ContactState, Turn};
use switchyard_engine::event::Event;
use switchyard_engine::ids::{Contact, InstanceId, SessionId, Version};
use switchyard_engine::queue::{Accepted, InboxEntry, Outgoing, Pending, Queue};
use switchyard_engine::rollout::{FlowRules, Rules};
use switchyard_engine::session::Session;
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::Timestamp;

use crate::holds::{DeskJob, Echo, HoldFigures, HoldStart};
use crate::policy::{AuditRecord, Served};
use crate::privacy::{Erasure, Purge};
use crate::sessions::LiveFilter;
pub use crate::postgres::{redact as redact_url, PgSettings};
use crate::postgres::PgStore;
use crate::report::{StepAggregate, VersionAggregate, VersionStatus, Window};
use crate::sqlite::SqliteStore;
pub use crate::sqlite::Synchronous;

/// What [`Db::next_pending_and_more`] found: the entry (with the contact's
/// state when it was read in the same statement) and whether more wait.
pub type NextPending = (Option<(Pending, Option<ContactState>)>, bool);

/// The default `DATABASE_URL`: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://switchyard.db";

/// The store a process runs on, chosen by `DATABASE_URL`: every operation
/// the service needs, whichever the backend.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Opens the store named by `url`, creating (SQLite) and migrating it when
/// needed.
pub async fn open(url: &str, settings: &PgSettings) -> Result<Db, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Db::Sqlite(SqliteStore::open_with(url, settings.sqlite_synchronous).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Db::Postgres(PgStore::open(url, settings).await?))
    } else {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        Err(StoreError::Other(format!(
            "DATABASE_URL scheme '{scheme}' is not supported: use sqlite://PATH (for example {DEFAULT_DATABASE_URL}) or postgres://USER@HOST/DATABASE"
        )))
    }
}

/// Calls the backend's method. PostgreSQL's futures are boxed: sqlx's
/// futures for a transaction run to kilobytes, and unboxed they would size
/// every future that awaits a `Db` call whatever the backend (the
/// processor's task was 12.5 KB, copied at each spawn and await), which
/// costs more than one allocation per call next to a round trip.
macro_rules! dispatch {
    ($self:ident, $name:ident($($arg:expr),*)) => {
        match $self {
            Db::Sqlite(store) => store.$name($($arg),*).await,
            Db::Postgres(store) => Box::pin(store.$name($($arg),*)).await,
        }
    };
}

macro_rules! delegate {
    ($($(#[$meta:meta])* $vis:vis async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $($(#[$meta])* $vis async fn $name(&self $(, $arg: $ty)*) -> $ret {
            dispatch!(self, $name($($arg),*))
        })*
    };
}

impl Db {
    /// The backend's name, for logs and the deploy manifest.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn ready(&self) -> bool {
        dispatch!(self, ready())
    }

    /// [`Queue::next_pending`], the contact's state when the backend reads
    /// it with the entry (PostgreSQL in the same statement, a SQLite file in
    /// the same job on the writer's thread: one round trip less per turn;
    /// `None`: read it with [`Store::contact_state`]), and whether another
    /// entry of the contact waits behind it: SQLite answers from the same
    /// read; PostgreSQL (whose read also takes the contact's lease) says
    /// `true`, and its commit tells ([`Db::commit_inbound_and_more`]).
    pub async fn next_pending_and_more(&self, instance: &InstanceId, contact: &Contact) -> Result<NextPending, StoreError> {
        match self {
            Db::Sqlite(store) => store.next_pending_and_more(instance, contact).await,
            Db::Postgres(store) => Ok((Box::pin(store.next_pending_with_state(instance, contact)).await?.map(|(pending, state)| (pending, Some(state))), true)),
        }
    }

    /// [`Queue::commit_inbound`], and whether the processor should look at
    /// the contact again, when the backend knows better than the read that
    /// found the entry: PostgreSQL gives the contact's lease up in the
    /// turn's own transaction when nothing else of the contact waits, and
    /// answers `Some(false)` then (`Some(true)` when something waits);
    /// SQLite answers `None` (its read already told).
    pub async fn commit_inbound_and_more(&self, turn: &Turn, pending: &Pending, reply_to: &str) -> Result<Option<bool>, StoreError> {
        match self {
            Db::Sqlite(store) => store.commit_inbound(turn, pending, reply_to).await.map(|()| None),
            Db::Postgres(store) => Box::pin(store.commit_inbound_releasing(turn, pending, reply_to)).await.map(Some),
        }
    }

    delegate! {
        pub async fn version_status(&self, flow: &str, since: Timestamp) -> Result<Vec<VersionStatus>, StoreError>;
        pub async fn live_sessions_of(&self, flow: &str, version: Version) -> Result<Vec<Session>, StoreError>;
        pub async fn commit_with_replies(&self, turn: &Turn) -> Result<bool, StoreError>;
        pub async fn outbox_sent_many(&self, sent: &[(i64, Option<String>)], at: Timestamp) -> Result<(), StoreError>;
        pub async fn outbox_attempt_many(&self, seqs: &[i64], at: Timestamp) -> Result<Vec<i64>, StoreError>;
        pub async fn load_policy(&self) -> Result<(Rules, i64), StoreError>;
        pub async fn policy_revision(&self) -> Result<i64, StoreError>;
        pub async fn change_policy(&self, flow: &str, rules: &FlowRules, actor: &str, action: &str, reason: &str, at: Timestamp) -> Result<AuditRecord, StoreError>;
        #[allow(clippy::too_many_arguments)] // reason: the audit record's fields, spelled out
        pub async fn change_policy_if(&self, flow: &str, expected: &FlowRules, rules: &FlowRules, actor: &str, action: &str, reason: &str, at: Timestamp) -> Result<Option<AuditRecord>, StoreError>;
        pub async fn record_deploy(&self, manifest: &Value, reason: &str, at: Timestamp) -> Result<i64, StoreError>;
        pub async fn audit(&self, flow: Option<&str>, since: Option<Timestamp>, until: Option<Timestamp>) -> Result<Vec<AuditRecord>, StoreError>;
        pub async fn served(&self, flow: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Served>, StoreError>;
        pub async fn record_event(&self, actor: &str, action: &str, flow: &str, reason: &str, detail: &Value) -> Result<i64, StoreError>;
        pub async fn version_aggregates(&self, window: &Window<'_>) -> Result<Vec<VersionAggregate>, StoreError>;
        pub async fn event_watermark(&self) -> Result<i64, StoreError>;
        pub async fn split_population(&self, flow: &str, after_event: i64) -> Result<Vec<VersionAggregate>, StoreError>;
        pub async fn split_draws(&self, flow: &str, after_event: i64) -> Result<Vec<(u32, u64)>, StoreError>;
        pub async fn classifications(&self, window: &Window<'_>) -> Result<Vec<(Version, Classification)>, StoreError>;
        pub async fn slot_events(&self, window: &Window<'_>) -> Result<Vec<(Version, switchyard_engine::event::EventKind)>, StoreError>;
        pub async fn funnel(&self, window: &Window<'_>, version: Version) -> Result<Vec<StepAggregate>, StoreError>;
        pub async fn session_totals(&self) -> Result<Vec<(String, Version, String, u64)>, StoreError>;
        pub async fn message_totals(&self) -> Result<(u64, u64), StoreError>;
        pub async fn live_sessions(&self, filter: &LiveFilter<'_>, limit: u32) -> Result<Vec<Session>, StoreError>;
        pub async fn history_of(&self, contact: &Contact) -> Result<Vec<Session>, StoreError>;
        pub async fn commands_by_step(&self, window: &Window<'_>, version: Version) -> Result<Vec<(String, String, u64)>, StoreError>;
        pub async fn pending_burst(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<Pending>, StoreError>;
        pub async fn merge_burst(&self, seqs: &[i64], text: &str) -> Result<(), StoreError>;
        pub async fn forget_contact(&self, contact: &Contact, actor: &str, reason: &str, at: Timestamp) -> Result<Erasure, StoreError>;
        pub async fn purge_before(&self, cutoff: Timestamp) -> Result<Purge, StoreError>;
        pub async fn link_alias(&self, phone: &Contact, lid: &Contact, instance: &InstanceId, message_id: &str, at: Timestamp) -> Result<(), StoreError>;
        pub async fn aliases_of(&self, contact: &Contact) -> Result<Vec<Contact>, StoreError>;
        pub async fn commit_inbound_holding(&self, turn: &Turn, pending: &Pending, reply_to: &str, hold: &HoldStart) -> Result<(), StoreError>;
        pub async fn commit_holding(&self, turn: &Turn, hold: &HoldStart) -> Result<(), StoreError>;
        pub async fn commit_audited(&self, turn: &Turn, audit: &policy::AuditedTurn<'_>) -> Result<i64, StoreError>;
        pub async fn desk_due(&self, now: Timestamp, lease_millis: i64, limit: u32) -> Result<Vec<DeskJob>, StoreError>;
        pub async fn desk_progress(&self, seq: i64, step: u32, conversation: Option<i64>) -> Result<(), StoreError>;
        pub async fn desk_retry(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError>;
        pub async fn desk_done(&self, seq: i64, at: Timestamp, error: Option<&str>) -> Result<(), StoreError>;
        pub async fn link_chatwoot(&self, instance: &InstanceId, contact: &Contact, conversation: i64, inbox: Option<i64>, at: Timestamp) -> Result<(), StoreError>;
        pub async fn chatwoot_link(&self, instance: &InstanceId, contact: &Contact) -> Result<Option<i64>, StoreError>;
        pub async fn chatwoot_contacts(&self, conversation: i64) -> Result<Vec<(String, String)>, StoreError>;
        pub async fn held_instances(&self, contact: &Contact, now: Timestamp) -> Result<Vec<String>, StoreError>;
        pub async fn give_back(&self, instance: &InstanceId, contact: &Contact, at: Timestamp) -> Result<bool, StoreError>;
        pub async fn echo_of(&self, instance: &InstanceId, contact: &Contact, message_id: &str) -> Result<Echo, StoreError>;
        pub async fn skip_inbox(&self, pending: &Pending) -> Result<(), StoreError>;
        pub async fn hold_figures(&self, from: Timestamp, to: Timestamp, now: Timestamp) -> Result<HoldFigures, StoreError>;
        pub async fn hold_figures_of(&self, flow: &str, instance: Option<&str>, from: Timestamp, to: Timestamp, now: Timestamp) -> Result<std::collections::BTreeMap<u32, HoldFigures>, StoreError>;
        pub async fn publish_document(&self, publish: &documents::Publish<'_>) -> Result<AuditRecord, StoreError>;
        pub async fn documents(&self) -> Result<Vec<documents::StoredDocument>, StoreError>;
        pub async fn live_holds(&self, now: Timestamp, limit: u32) -> Result<holds::HoldList, StoreError>;
        pub async fn release_hold(&self, instance: &InstanceId, contact: &Contact, actor: &str, reason: &str, at: Timestamp) -> Result<Option<i64>, StoreError>;
        pub async fn record_connection(&self, instance: &InstanceId, state: &str, status_reason: Option<i64>, at: Timestamp) -> Result<(), StoreError>;
        pub async fn connections(&self) -> Result<Vec<connections::InstanceConnection>, StoreError>;
        pub async fn recorded_sessions(&self, filter: &recorded::RecordedFilter<'_>) -> Result<Vec<recorded::RecordedSession>, StoreError>;
    }
}

impl Store for Db {
    delegate! {
        async fn contact_state(&self, instance: &InstanceId, contact: &Contact) -> Result<ContactState, StoreError>;
        async fn commit(&self, turn: &Turn) -> Result<(), StoreError>;
        async fn expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError>;
        async fn sessions_of(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<Session>, StoreError>;
        async fn events_of(&self, session: SessionId) -> Result<Vec<Event>, StoreError>;
        async fn release_handoff(&self, instance: &InstanceId, contact: &Contact) -> Result<bool, StoreError>;
    }
}

impl Queue for Db {
    delegate! {
        async fn accept(&self, entry: &InboxEntry) -> Result<Accepted, StoreError>;
        async fn pending_contacts(&self, limit: u32) -> Result<Vec<(InstanceId, Contact)>, StoreError>;
        async fn next_pending(&self, instance: &InstanceId, contact: &Contact) -> Result<Option<Pending>, StoreError>;
        async fn commit_inbound(&self, turn: &Turn, pending: &Pending, reply_to: &str) -> Result<(), StoreError>;
        async fn due_outbox(&self, now: Timestamp, limit: u32) -> Result<Vec<Outgoing>, StoreError>;
        async fn outbox_attempt(&self, seq: i64, at: Timestamp) -> Result<bool, StoreError>;
        async fn outbox_unsure(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError>;
        async fn sent_ids_since(&self, instance: &InstanceId, contact: &Contact, since: Timestamp) -> Result<Vec<String>, StoreError>;
        async fn outbox_sent(&self, seq: i64, provider_id: Option<&str>, at: Timestamp) -> Result<(), StoreError>;
        async fn outbox_retry(&self, seq: i64, next_at: Timestamp, error: &str) -> Result<(), StoreError>;
        async fn outbox_failed(&self, seq: i64, reason: &str, at: Timestamp) -> Result<(), StoreError>;
        async fn outbox_depth(&self) -> Result<u64, StoreError>;
        async fn release_contact(&self, instance: &InstanceId, contact: &Contact) -> Result<bool, StoreError>;
    }
}
