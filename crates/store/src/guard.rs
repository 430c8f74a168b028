//! What a split guard judges: the sessions its split assigned after the
//! guard was armed. The mark is the event log's sequence number when the
//! guard was armed (not a time: `simulate` writes sessions with past start
//! times, and nodes' clocks differ), so an earlier experiment on the same
//! versions never counts. One statement serves both backends.

use switchyard_engine::store::StoreError;

use crate::backend::{both, Backend};
use crate::report::{aggregate_from_row, outcome_counts, VersionAggregate};

/// The event log's newest sequence number (0 when empty).
const WATERMARK: &str = "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM events";

/// Per-version counts of `flow`'s split-assigned sessions whose first event
/// came after `$2`, versions ascending. The medians are not needed here.
const POPULATION: &str = concat!(
    "SELECT s.version AS version, ",
    outcome_counts!("s."),
    " FROM sessions s WHERE s.flow = $1 AND s.reason = 'split' \
     AND (SELECT MIN(e.seq) FROM events e WHERE e.session_id = s.id) > $2 \
     GROUP BY s.version ORDER BY s.version"
);

/// Per-version counts of `flow`'s bucket draws (split sessions not kept by
/// memory) whose first event came after `$2`, versions ascending: what the
/// sample-ratio check compares with the weights set at that mark. A
/// remembered contact keeps the version drawn at the earlier weights.
const DRAWS: &str = "SELECT CAST(s.version AS BIGINT) AS version, COUNT(*) AS drawn FROM sessions s \
     WHERE s.flow = $1 AND s.reason = 'split' AND COALESCE(s.reason_detail, '') NOT LIKE 'remembered since%' \
     AND (SELECT MIN(e.seq) FROM events e WHERE e.session_id = s.id) > $2 \
     GROUP BY s.version ORDER BY s.version";

fn draws(rows: Vec<(i64, i64)>) -> Result<Vec<(u32, u64)>, StoreError> {
    rows.into_iter()
        .map(|(version, drawn)| {
            let version = u32::try_from(version).map_err(|_| StoreError::Corrupt(format!("session version {version} is out of range")))?;
            Ok((version, drawn.max(0) as u64))
        })
        .collect()
}

both! {
    pub async fn event_watermark(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(WATERMARK).fetch_one(self.reads()).await.map_err(Self::map_err)
    }

    pub async fn split_population(&self, flow: &str, after_event: i64) -> Result<Vec<VersionAggregate>, StoreError> {
        let rows = sqlx::query(POPULATION).bind(flow).bind(after_event).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter().map(aggregate_from_row).collect()
    }

    /// See [`DRAWS`]: (version number, sessions drawn).
    pub async fn split_draws(&self, flow: &str, after_event: i64) -> Result<Vec<(u32, u64)>, StoreError> {
        draws(sqlx::query_as(DRAWS).bind(flow).bind(after_event).fetch_all(self.reads()).await.map_err(Self::map_err)?)
    }
}
