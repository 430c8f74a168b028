//! The conversation service: load the contact's state, run the engine's turn,
//! commit it; retry when another worker got there first. Generic over the
//! store and the clock, so the same code serves the console, the server and
//! the tests.

use std::sync::Arc;
use std::time::Instant;

use crate::classify::{Answer, Decisions, Model, Outside, Request, Wanted};
use crate::engine::{ContactState, Engine, Inbound, Turn};
use crate::ids::{Contact, InstanceId};
use crate::session::{Outcome, Session};
use crate::store::{Store, StoreError};
use crate::time::Clock;

/// How many times a turn is recomputed after a conflicting concurrent commit.
const MAX_CONFLICT_RETRIES: u32 = 8;
/// Rounds of model questions in one turn: a model answer can lead to a step
/// with a question of its own (`unknown` routes to `digital_certificate`,
/// whose `route` classifies the same message).
const MAX_MODEL_ROUNDS: u32 = 3;

/// Runs one turn, with the classification phase around it: the turn runs
/// with the keyword classifiers; when its steps asked questions the keywords
/// could not answer and a model is configured, the model answers them within
/// its budget (the whole turn waits at most that long for it) and the turn
/// runs again with the answers. The engine itself stays pure.
pub async fn run_turn(engine: &Engine, model: Option<&dyn Model>, state: ContactState, inbound: &Inbound, now: crate::time::Timestamp) -> Turn {
    run_turn_with(engine, model, None, state, inbound, now).await
}

/// [`run_turn`] that also answers outside calls (the `http` step,
/// [`crate::classify::Wanted::Outside`]) with `outside`; without one such a
/// call fails (`no_endpoints`) and the step takes its failure branch.
pub async fn run_turn_with(
    engine: &Engine,
    model: Option<&dyn Model>,
    outside: Option<&dyn Outside>,
    state: ContactState,
    inbound: &Inbound,
    now: crate::time::Timestamp,
) -> Turn {
    // A stopwatch for the model's budget, not the conversation's time: the
    // turn itself still runs at `now`, whatever the model took.
    let started = Instant::now();
    let mut decisions = Decisions::default();
    let mut turn = engine.turn(state.clone(), inbound, now);
    for _ in 0..MAX_MODEL_ROUNDS {
        let (calls, questions): (Vec<Request>, Vec<Request>) =
            std::mem::take(&mut turn.requests).into_iter().partition(|request| request.ask == Wanted::Outside);
        let model = model.filter(|_| !questions.is_empty());
        if calls.is_empty() && model.is_none() {
            turn.requests = questions;
            break;
        }
        if let Some(model) = model {
            let budget = model.budget().saturating_sub(started.elapsed());
            let answers = model.decide(&questions, budget).await;
            for (request, answer) in questions.into_iter().zip(answers) {
                decisions.push(request, answer);
            }
        }
        if !calls.is_empty() {
            let answers = match outside {
                Some(outside) => outside.call(&calls).await,
                None => calls.iter().map(|_| Answer::Failed { reason: "no_endpoints".to_owned(), latency_ms: 0 }).collect(),
            };
            for (request, answer) in calls.into_iter().zip(answers) {
                decisions.push(request, answer);
            }
        }
        turn = engine.turn_with(state.clone(), inbound, now, decisions.clone());
    }
    turn
}

pub struct Conversations<S, C> {
    engine: Arc<Engine>,
    store: S,
    clock: C,
    model: Option<Arc<dyn Model>>,
}

impl<S, C> std::fmt::Debug for Conversations<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversations").field("engine", &self.engine).finish_non_exhaustive()
    }
}

impl<S: Store, C: Clock> Conversations<S, C> {
    pub fn new(engine: Arc<Engine>, store: S, clock: C) -> Conversations<S, C> {
        Conversations { engine, store, clock, model: None }
    }

    /// Lets a model answer what the keyword classifiers cannot.
    pub fn with_model(mut self, model: Option<Arc<dyn Model>>) -> Conversations<S, C> {
        self.model = model;
        self
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
            let turn = run_turn(&self.engine, self.model.as_deref(), state, inbound, self.clock.now()).await;
            match self.store.commit(&turn).await {
                Ok(()) => return Ok(turn),
                Err(StoreError::Conflict(_)) if attempt < MAX_CONFLICT_RETRIES => attempt += 1,
                Err(err) => return Err(err),
            }
        }
    }

    /// Expires every live session past its TTL (a drop-off at its step), up to
    /// `limit`, with the sessions it called (see [`crate::call`]). Returns the
    /// committed turns. A session that moved on meanwhile (a conflict) is
    /// skipped: it is no longer due.
    pub async fn sweep(&self, limit: u32) -> Result<Vec<Turn>, StoreError> {
        let now = self.clock.now();
        let mut turns = Vec::new();
        for session in self.store.expired(now, limit).await? {
            let state = self.store.contact_state(session.instance(), session.contact()).await?;
            if state.session.as_ref().map(Session::id) != Some(session.id()) {
                continue;
            }
            let Some(turn) = self.engine.expire_all(state, now) else { continue };
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
        let Some(turn) = self.engine.close_all(state, outcome, detail, self.clock.now()) else {
            return Ok(None);
        };
        self.store.commit(&turn).await?;
        Ok(Some(turn))
    }
}
