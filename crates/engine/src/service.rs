//! The conversation service: load the contact's state, run the engine's turn,
//! commit it; retry when another worker got there first. Generic over the
//! store and the clock, so the same code serves the console, the server and
//! the tests.

use std::sync::Arc;

use crate::engine::{Engine, Inbound, Turn};
use crate::ids::{Contact, InstanceId};
use crate::session::Outcome;
use crate::store::{Store, StoreError};
use crate::time::Clock;

/// How many times a turn is recomputed after a conflicting concurrent commit.
const MAX_CONFLICT_RETRIES: u32 = 8;

pub struct Conversations<S, C> {
    engine: Arc<Engine>,
    store: S,
    clock: C,
}

impl<S, C> std::fmt::Debug for Conversations<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversations").field("engine", &self.engine).finish_non_exhaustive()
    }
}

impl<S: Store, C: Clock> Conversations<S, C> {
    pub fn new(engine: Arc<Engine>, store: S, clock: C) -> Conversations<S, C> {
        Conversations { engine, store, clock }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
    pub fn store(&self) -> &S {
        &self.store
    }
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Handles one inbound message and returns the committed turn.
    pub async fn handle(&self, inbound: &Inbound) -> Result<Turn, StoreError> {
        let mut attempt = 0;
        loop {
            let state = self.store.contact_state(&inbound.instance, &inbound.contact).await?;
            let turn = self.engine.turn(state, inbound, self.clock.now());
            match self.store.commit(&turn).await {
                Ok(()) => return Ok(turn),
                Err(StoreError::Conflict(_)) if attempt < MAX_CONFLICT_RETRIES => attempt += 1,
                Err(err) => return Err(err),
            }
        }
    }

    /// Expires every live session past its TTL (a drop-off at its step), up to
    /// `limit`. Returns the committed turns. A session that moved on meanwhile
    /// (a conflict) is skipped: it is no longer due.
    pub async fn sweep(&self, limit: u32) -> Result<Vec<Turn>, StoreError> {
        let now = self.clock.now();
        let mut turns = Vec::new();
        for session in self.store.expired(now, limit).await? {
            let turn = self.engine.expire(session, now);
            match self.store.commit(&turn).await {
                Ok(()) => turns.push(turn),
                Err(StoreError::Conflict(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(turns)
    }

    /// Ends the contact's live session by hand. `None` when there is none.
    pub async fn close(
        &self,
        instance: &InstanceId,
        contact: &Contact,
        outcome: Outcome,
        detail: &str,
    ) -> Result<Option<Turn>, StoreError> {
        let state = self.store.contact_state(instance, contact).await?;
        let Some(session) = state.session.filter(|session| session.is_live()) else {
            return Ok(None);
        };
        let turn = self.engine.close(session, outcome, detail, self.clock.now());
        self.store.commit(&turn).await?;
        Ok(Some(turn))
    }
}
