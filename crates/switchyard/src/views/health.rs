//! The health view: each Evolution instance's last `connection.update`, the
//! outbox (depth, the oldest unsent reply and its age, failures by reason),
//! contacts on human hold (count, the oldest, the list), and the model's
//! circuit breaker. The console's health page and `GET /api/health` render
//! this one struct.

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
    /// Each Evolution instance's last reported connection, by name.
    pub connections: Vec<Connection>,
    /// Replies waiting for delivery.
    pub outbox_depth: u64,
    /// When the oldest waiting reply was queued.
    #[serde(serialize_with = "rfc3339_opt")]
    pub oldest_unsent: Option<Timestamp>,
    /// How long the oldest waiting reply has waited, at `at`.
    pub oldest_unsent_age_secs: Option<u64>,
    /// Replies given up on since `failures_since`, by reason, most first.
    pub send_failures: Vec<Failure>,
    #[serde(serialize_with = "rfc3339")]
    pub failures_since: Timestamp,
    /// Contacts a human is serving now.
    pub on_hold: u64,
    /// When the longest-running hold started.
    #[serde(serialize_with = "rfc3339_opt")]
    pub oldest_hold: Option<Timestamp>,
    /// The first [`HOLDS_LISTED`], the longest-running first.
    pub holds: Vec<HoldView>,
    /// `closed`, `open` (the model is skipped), or `None` without a model.
    pub llm_breaker: Option<&'static str>,
}

/// Send failures of one reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    /// As the sender recorded it (`400: number is not on whatsapp`), masked.
    pub reason: String,
    pub count: u64,
}

/// A contact on human hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HoldView {
    pub instance: String,
    /// Masked for display.
    pub contact_masked: String,
    /// The contact as stored, for the release form; never shown or serialised.
    #[serde(skip)]
    pub contact: String,
    /// `handoff` (the bot handed over) or `takeover` (an agent wrote first), when known.
    pub cause: Option<String>,
    /// When the hold started, when known.
    #[serde(serialize_with = "rfc3339_opt")]
    pub since: Option<Timestamp>,
    /// The bot answers again at `until` unless released first.
    #[serde(serialize_with = "rfc3339")]
    pub until: Timestamp,
}

/// An instance's connection state as Evolution last reported it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Connection {
    pub instance: String,
    /// `open`, `connecting`, `close` or `refused`.
    pub state: String,
    /// `state` is `open`.
    pub open: bool,
    /// Evolution's `statusReason` (`401` with `close`: logged out).
    pub status_reason: Option<i64>,
    /// When the last update was heard.
    #[serde(serialize_with = "rfc3339")]
    pub heard_at: Timestamp,
    /// Since when the instance has been in `state`.
    #[serde(serialize_with = "rfc3339")]
    pub since: Timestamp,
}

/// The health figures at `now`; failures counted over `failures_since`.
/// `breaker_open` is the model breaker's state when a model is configured.
pub async fn health(store: &Db, now: Timestamp, failures_since: Timestamp, breaker_open: Option<bool>) -> Result<Health, StoreError> {
    let connections = store.connections().await?;
    let delivery = store.delivery(failures_since).await?;
    let holds = store.live_holds(now, HOLDS_LISTED).await?;
    Ok(Health {
        at: now,
        connections: connections
            .into_iter()
            .map(|connection| Connection {
                instance: connection.instance.as_str().to_owned(),
                open: connection.state == "open",
                state: connection.state,
                status_reason: connection.status_reason,
                heard_at: connection.heard_at,
                since: connection.since,
            })
            .collect(),
        outbox_depth: delivery.outbox_depth,
        oldest_unsent: delivery.oldest_unsent,
        oldest_unsent_age_secs: delivery.oldest_unsent.map(|oldest| u64::try_from(now.millis_since(oldest).max(0) / 1000).unwrap_or(0)),
        send_failures: delivery
            .failures
            .into_iter()
            .map(|(reason, count)| Failure { reason: switchyard_engine::mask::mask_text(&reason), count })
            .collect(),
        failures_since,
        on_hold: holds.count,
        oldest_hold: holds.oldest,
        holds: holds
            .holds
            .into_iter()
            .map(|hold| HoldView {
                instance: hold.instance.as_str().to_owned(),
                contact_masked: hold.contact.masked(),
                contact: hold.contact.as_str().to_owned(),
                cause: hold.cause,
                since: hold.since,
                until: hold.until,
            })
            .collect(),
        llm_breaker: breaker_open.map(|open| if open { "open" } else { "closed" }),
    })
}

/// A duration in seconds as people read it on a dashboard: `42 s`, `7 min`,
/// `3 h 05 min`, `2 d 4 h`.
pub fn age_text(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=86_399 => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::age_text;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age_text(0), "0 s");
        assert_eq!(age_text(59), "59 s");
        assert_eq!(age_text(60), "1 min");
        assert_eq!(age_text(3599), "59 min");
        assert_eq!(age_text(3600 + 5 * 60), "1 h 05 min");
        assert_eq!(age_text(2 * 86_400 + 4 * 3600 + 59), "2 d 4 h");
    }
}
