//! The storage contract. Adapters (SQLite, PostgreSQL) implement [`Store`] in
//! the store crate and pass one conformance suite;
//! [`crate::memory::MemoryStore`] is the in-memory implementation for tests
//! and benchmarks.
//!
//! A commit is all-or-nothing and checks each session's `revision`
//! (optimistic concurrency): a turn computed from a stale read is refused with
//! [`StoreError::Conflict`] and recomputed by the caller.

use std::future::Future;

use crate::engine::{ContactState, Turn};
use crate::event::Event;
use crate::ids::{Contact, InstanceId, SessionId};
use crate::session::Session;
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the contact's sessions since they were read; reload and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached now; the operation may succeed later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored row that cannot be read back (a bug or a hand-edited database).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Other(String),
}

pub trait Store: Send + Sync {
    /// The contact's live session (even if past its expiry) and handoff hold.
    fn contact_state(
        &self,
        instance: &InstanceId,
        contact: &Contact,
    ) -> impl Future<Output = Result<ContactState, StoreError>> + Send;

    /// Writes a turn atomically: sessions (insert when `revision == 0`,
    /// otherwise update only if the stored revision is unchanged, bumping it),
    /// events, and the handoff hold. At most one live session per contact.
    fn commit(&self, turn: &Turn) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Live sessions whose `expires_at <= now`, oldest first, at most `limit`.
    fn expired(&self, now: Timestamp, limit: u32) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Every session of a contact, newest first.
    fn sessions_of(
        &self,
        instance: &InstanceId,
        contact: &Contact,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// A session's events in the order they were written.
    fn events_of(&self, session: SessionId) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;

    /// Ends a handoff hold so the bot answers the contact again. True when there was one.
    fn release_handoff(
        &self,
        instance: &InstanceId,
        contact: &Contact,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
/// A shared store is a store: the server hands one `Arc` to every worker.
impl<S: Store> Store for std::sync::Arc<S> {
    fn contact_state(
        &self,
        instance: &InstanceId,
        contact: &Contact,
    ) -> impl Future<Output = Result<ContactState, StoreError>> + Send {
        (**self).contact_state(instance, contact)
    }
    fn commit(&self, turn: &Turn) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).commit(turn)
    }
    fn expired(&self, now: Timestamp, limit: u32) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send {
        (**self).expired(now, limit)
    }
    fn sessions_of(
        &self,
        instance: &InstanceId,
        contact: &Contact,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send {
        (**self).sessions_of(instance, contact)
    }
    fn events_of(&self, session: SessionId) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send {
        (**self).events_of(session)
    }
    fn release_handoff(
        &self,
        instance: &InstanceId,
        contact: &Contact,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).release_handoff(instance, contact)
    }
}
