//! The store of the channels without an inbox (`chat`, `simulate`): the
//! configured [`Db`], except that a turn which hands the contact over is
//! committed with its hold row ([`Db::commit_holding`]), as `serve` commits
//! one with its inbox entry. Without it the health page and `report` would
//! see a contact on hold with no cause and no start time.

use switchyard_engine::engine::{ContactState, Turn};
use switchyard_engine::event::Event;
use switchyard_engine::ids::{Contact, InstanceId, SessionId};
use switchyard_engine::session::Session;
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::{Clock, Timestamp};
use switchyard_store::holds::HoldStart;
use switchyard_store::Db;

/// [`Db`] as the engine's [`Store`], holds written with their turns and
/// dated by the channel's clock (the one its turns run on).
pub struct HoldingStore<C> {
    db: Db,
    clock: C,
}

impl<C: Clock> HoldingStore<C> {
    pub fn new(db: Db, clock: C) -> HoldingStore<C> {
        HoldingStore { db, clock }
    }
}

impl<C: Clock> Store for HoldingStore<C> {
    async fn contact_state(&self, instance: &InstanceId, contact: &Contact) -> Result<ContactState, StoreError> {
        self.db.contact_state(instance, contact).await
    }

    async fn commit(&self, turn: &Turn) -> Result<(), StoreError> {
        match HoldStart::handoff_of(turn, self.clock.now()) {
            Some(hold) => self.db.commit_holding(turn, &hold).await,
            None => self.db.commit(turn).await,
        }
    }

    async fn expired(&self, now: Timestamp, limit: u32) -> Result<Vec<Session>, StoreError> {
        self.db.expired(now, limit).await
    }

    async fn sessions_of(&self, instance: &InstanceId, contact: &Contact) -> Result<Vec<Session>, StoreError> {
        self.db.sessions_of(instance, contact).await
    }

    async fn events_of(&self, session: SessionId) -> Result<Vec<Event>, StoreError> {
        self.db.events_of(session).await
    }

    async fn release_handoff(&self, instance: &InstanceId, contact: &Contact) -> Result<bool, StoreError> {
        self.db.release_handoff(instance, contact).await
    }
}
