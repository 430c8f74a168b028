//! Each Evolution instance's WhatsApp connection, as its last
//! `connection.update` webhook said, for the console's health page and
//! `GET /api/health`. One row per instance: the state, Evolution's
//! `statusReason`, when it was heard, and since when the instance has been
//! in that state. Any `serve` process records it; every process reads it.

use switchyard_engine::ids::InstanceId;
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::backend::{both, Backend};

/// An instance's last reported connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConnection {
    pub instance: InstanceId,
    /// `open`, `connecting`, `close` or `refused`, as Evolution spells it.
    pub state: String,
    /// Evolution's `statusReason` (`401` with `close`: logged out).
    pub status_reason: Option<i64>,
    /// When the last update was heard.
    pub heard_at: Timestamp,
    /// When the instance entered `state` (the first update that said it).
    pub since: Timestamp,
}

/// Keeps the newest update per instance: an older one (a delayed retry) is
/// dropped; `since` moves only when the state changes.
const RECORD: &str = "INSERT INTO instance_connections (instance, state, status_reason, heard_at, since) VALUES ($1, $2, $3, $4, $4) \
                      ON CONFLICT (instance) DO UPDATE SET state = excluded.state, status_reason = excluded.status_reason, \
                      heard_at = excluded.heard_at, \
                      since = CASE WHEN instance_connections.state = excluded.state THEN instance_connections.since ELSE excluded.heard_at END \
                      WHERE excluded.heard_at >= instance_connections.heard_at";
const ALL: &str = "SELECT instance, state, status_reason, heard_at, since FROM instance_connections ORDER BY instance";

type Row = (String, String, Option<i64>, i64, i64);

fn from_row((instance, state, status_reason, heard_at, since): Row) -> Result<InstanceConnection, StoreError> {
    Ok(InstanceConnection {
        instance: InstanceId::parse(&instance).map_err(|err| crate::codec::corrupt("instance_connections.instance", err))?,
        state,
        status_reason,
        heard_at: Timestamp::from_millis(heard_at),
        since: Timestamp::from_millis(since),
    })
}

both! {
    /// Records what a `connection.update` said about `instance`, heard at `at`
    /// (a rare write: on SQLite the second connection, not the hot writer's queue).
    pub async fn record_connection(&self, instance: &InstanceId, state: &str, status_reason: Option<i64>, at: Timestamp) -> Result<(), StoreError> {
        sqlx::query(RECORD)
            .bind(instance.as_str())
            .bind(state)
            .bind(status_reason)
            .bind(at.as_millis())
            .execute(self.writes())
            .await
            .map(drop)
            .map_err(Self::map_err)
    }

    /// Every instance's last reported connection, by instance name.
    pub async fn connections(&self) -> Result<Vec<InstanceConnection>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(ALL).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.into_iter().map(from_row).collect()
    }
}
