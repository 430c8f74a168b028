//! The health view: the outbox (depth, oldest unsent reply, failures by
//! reason), contacts on human hold, and the model's circuit breaker.
//!
//! Not recorded yet: each Evolution instance's connection state
//! (`connection.update` webhooks are logged, not stored), so
//! [`Health::connections`] is empty until a store table keeps them.

use serde::Serialize;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_store::Db;

use super::{rfc3339, rfc3339_opt};

/// How many held contacts the view lists (the count covers all).
pub const HOLDS_LISTED: u32 = 50;

/// Everything the health view shows.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    #[serde(serialize_with = "rfc3339")]
    pub at: Timestamp,
    /// Replies waiting for delivery.
    pub outbox_depth: u64,
    /// When the oldest waiting reply was queued.
    #[serde(serialize_with = "rfc3339_opt")]
    pub oldest_unsent: Option<Timestamp>,
    /// Replies given up on since `failures_since`, by reason, most first.
    pub send_failures: Vec<Failure>,
    #[serde(serialize_with = "rfc3339")]
    pub failures_since: Timestamp,
    /// Contacts a human is serving now.
    pub on_hold: u64,
    /// The first [`HOLDS_LISTED`], earliest release first.
    pub holds: Vec<HoldView>,
    /// `closed`, `open` (the model is skipped), or `None` without a model.
    pub llm_breaker: Option<&'static str>,
    /// Each Evolution instance's last connection state (not recorded yet: empty).
    pub connections: Vec<Connection>,
}

/// Send failures of one reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    pub reason: String,
    pub count: u64,
}

/// A contact on human hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HoldView {
    pub instance: String,
    /// Masked for display.
    pub contact_masked: String,
    /// The contact as stored, for the release form; never shown.
    #[serde(skip)]
    pub contact: String,
    #[serde(serialize_with = "rfc3339")]
    pub until: Timestamp,
}

/// An instance's connection state as Evolution last reported it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Connection {
    pub instance: String,
    pub state: String,
    #[serde(serialize_with = "rfc3339")]
    pub at: Timestamp,
}

/// The health figures at `now`; failures counted over `failures_since`.
/// `breaker_open` is the model breaker's state when a model is configured.
pub async fn health(store: &Db, now: Timestamp, failures_since: Timestamp, breaker_open: Option<bool>) -> Result<Health, StoreError> {
    let delivery = store.delivery(failures_since).await?;
    let (on_hold, holds) = store.holds(now, HOLDS_LISTED).await?;
    Ok(Health {
        at: now,
        outbox_depth: delivery.outbox_depth,
        oldest_unsent: delivery.oldest_unsent,
        send_failures: delivery.failures.into_iter().map(|(reason, count)| Failure { reason, count }).collect(),
        failures_since,
        on_hold,
        holds: holds
            .into_iter()
            .map(|hold| HoldView {
                instance: hold.instance.as_str().to_owned(),
                contact_masked: hold.contact.masked(),
                contact: hold.contact.as_str().to_owned(),
                until: hold.until,
            })
            .collect(),
        llm_breaker: breaker_open.map(|open| if open { "open" } else { "closed" }),
        connections: Vec::new(),
    })
}
