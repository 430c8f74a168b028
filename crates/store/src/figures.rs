//! Figures for the operator's overview and health views: live sessions per
//! version with their drain time, traffic in a time range, the outbox's
//! oldest unsent reply and failures by reason, contacts on human hold.
//! One SQL text serves both backends (`$n` parameters, which SQLite reads
//! as numbered too), so the two cannot drift apart.

use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::backend::Backend;
use crate::Db;

/// `$body` with `$store` bound to whichever backend `$db` runs on: the one
/// body compiles for each (like [`both!`](crate::backend::both)).
macro_rules! on_either {
    ($db:expr, |$store:ident| $body:expr) => {
        match $db {
            Db::Sqlite($store) => $body,
            Db::Postgres($store) => $body,
        }
    };
}

/// Runs one query on whichever backend, decoding rows as the tuple `$ty`.
macro_rules! fetch_as {
    ($db:expr, $ty:ty, $sql:expr $(, $bind:expr)*) => {{
        let sql: &'static str = $sql;
        on_either!($db, |store| sqlx::query_as::<_, $ty>(sql)$(.bind($bind))*.fetch_all(store.reads()).await.map_err(|err| store.error(err)))
    }};
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn version(number: i64) -> Result<Version, StoreError> {
    u32::try_from(number).map(Version::new).map_err(|_| StoreError::Corrupt(format!("version {number} out of range")))
}

/// Live sessions of one flow version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveVersion {
    pub flow: String,
    pub version: Version,
    pub live: u64,
    /// When the last of them expires if nobody writes: the version has
    /// drained by then.
    pub last_expiry: Option<Timestamp>,
}

/// Messages and sessions in a time range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Inbound messages received.
    pub messages_in: u64,
    /// Replies created in the range and delivered.
    pub messages_out: u64,
    /// Sessions started, per (flow, version).
    pub sessions: Vec<(String, Version, u64)>,
}

/// Sessions of one flow version started in one bucket of a time range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Starts {
    pub flow: String,
    pub version: Version,
    /// `(started_at - since) / bucket`: 0 is the bucket that begins at `since`.
    pub bucket: i64,
    pub sessions: u64,
}

/// The outbox and the hold list, for the health view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryFigures {
    /// Replies waiting for delivery.
    pub outbox_depth: u64,
    /// When the oldest of them was queued.
    pub oldest_unsent: Option<Timestamp>,
    /// Replies given up on since the given instant, by reason, most first.
    pub failures: Vec<(String, u64)>,
}

/// One contact a human is serving: the bot is silent until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub instance: InstanceId,
    pub contact: Contact,
    pub until: Timestamp,
}

impl Db {
    /// Live sessions per (flow, version), with the last expiry. Reads only
    /// the live rows (a partial index of them: the expiry sweeper's on
    /// SQLite, `sessions_one_live` on PostgreSQL).
    pub async fn live_by_version(&self) -> Result<Vec<LiveVersion>, StoreError> {
        // SQLite, without statistics, would walk `sessions_by_flow` for the
        // grouping's order, reading every session's row (2 s at a million);
        // the range on `expires_at` (always true) and the `+` (no index for
        // the grouping) make it read the live rows through `sessions_due`.
        let sql = match self {
            // (a dialect detail: the two planners want different hints)
            Db::Sqlite(_) => {
                "SELECT flow, version, COUNT(*), MAX(expires_at) FROM sessions WHERE outcome IS NULL AND expires_at > -9223372036854775808 \
                 GROUP BY +flow, +version ORDER BY 1, 2"
            }
            Db::Postgres(_) => "SELECT flow, version, COUNT(*), MAX(expires_at) FROM sessions WHERE outcome IS NULL GROUP BY flow, version ORDER BY flow, version",
        };
        let rows = fetch_as!(self, (String, i64, i64, Option<i64>), sql)?;
        rows.into_iter()
            .map(|(flow, number, live, last)| Ok(LiveVersion { flow, version: version(number)?, live: count(live), last_expiry: last.map(Timestamp::from_millis) }))
            .collect()
    }

    /// Messages in and out and sessions started in `[since, until)`.
    pub async fn traffic(&self, since: Timestamp, until: Timestamp) -> Result<Traffic, StoreError> {
        let (since, until) = (since.as_millis(), until.as_millis());
        let messages = fetch_as!(
            self,
            (i64, i64),
            "SELECT (SELECT COUNT(*) FROM inbox WHERE received_at >= $1 AND received_at < $2), \
             (SELECT COUNT(*) FROM outbox WHERE created_at >= $1 AND created_at < $2 AND sent_at IS NOT NULL)",
            since,
            until
        )?;
        let (messages_in, messages_out) = messages.first().copied().unwrap_or_default();
        let sessions = fetch_as!(
            self,
            (String, i64, i64),
            "SELECT flow, version, COUNT(*) FROM sessions WHERE started_at >= $1 AND started_at < $2 GROUP BY flow, version ORDER BY flow, version",
            since,
            until
        )?;
        Ok(Traffic {
            messages_in: count(messages_in),
            messages_out: count(messages_out),
            sessions: sessions.into_iter().map(|(flow, number, n)| Ok((flow, version(number)?, count(n)))).collect::<Result<_, StoreError>>()?,
        })
    }

    /// Sessions started in `[since, until)` per (flow, version, bucket of
    /// `bucket` length from `since`), in that order: the overview's day
    /// counts and sparklines in one read of the covering index
    /// `sessions_by_start (started_at, flow, version)`, not of the rows.
    pub async fn starts(&self, since: Timestamp, until: Timestamp, bucket: std::time::Duration) -> Result<Vec<Starts>, StoreError> {
        self.starts_of(None, since, since, until, bucket).await
    }

    /// [`Db::starts`] of `[from, until)` only, of one flow or all, with
    /// buckets still counted from `origin`.
    pub async fn starts_of(&self, flow: Option<&str>, origin: Timestamp, from: Timestamp, until: Timestamp, bucket: std::time::Duration) -> Result<Vec<Starts>, StoreError> {
        let bucket = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        let rows = fetch_as!(
            self,
            (String, i64, i64, i64),
            "SELECT flow, version, (started_at - $1) / $4 AS bucket, COUNT(*) FROM sessions WHERE started_at >= $2 AND started_at < $3 \
             AND (CAST($5 AS TEXT) IS NULL OR flow = $5) GROUP BY flow, version, bucket ORDER BY flow, version, bucket",
            origin.as_millis(),
            from.as_millis(),
            until.as_millis(),
            bucket,
            flow
        )?;
        rows.into_iter()
            .map(|(flow, number, bucket, sessions)| Ok(Starts { flow, version: version(number)?, bucket, sessions: count(sessions) }))
            .collect()
    }

    /// The outbox's depth and oldest unsent reply, and the replies that
    /// failed for good since `failures_since`, by reason.
    pub async fn delivery(&self, failures_since: Timestamp) -> Result<DeliveryFigures, StoreError> {
        let pending = fetch_as!(
            self,
            (i64, Option<i64>),
            "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"
        )?;
        let (depth, oldest) = pending.first().copied().unwrap_or_default();
        let failures = fetch_as!(
            self,
            (Option<String>, i64),
            "SELECT last_error, COUNT(*) FROM outbox WHERE failed_at >= $1 GROUP BY last_error ORDER BY COUNT(*) DESC, last_error",
            failures_since.as_millis()
        )?;
        Ok(DeliveryFigures {
            outbox_depth: count(depth),
            oldest_unsent: oldest.map(Timestamp::from_millis),
            failures: failures.into_iter().map(|(reason, n)| (reason.unwrap_or_else(|| "unknown".to_owned()), count(n))).collect(),
        })
    }

    /// Contacts on human hold at `now`, the earliest release first (at most `limit`),
    /// and how many there are in all.
    pub async fn holds(&self, now: Timestamp, limit: u32) -> Result<(u64, Vec<Hold>), StoreError> {
        let total = fetch_as!(self, (i64,), "SELECT COUNT(*) FROM handoffs WHERE until > $1", now.as_millis())?;
        let rows = fetch_as!(
            self,
            (String, String, i64),
            "SELECT instance, contact, until FROM handoffs WHERE until > $1 ORDER BY until, instance, contact LIMIT $2",
            now.as_millis(),
            i64::from(limit)
        )?;
        let holds = rows
            .into_iter()
            .map(|(instance, contact, until)| {
                Ok(Hold {
                    instance: InstanceId::parse(&instance).map_err(StoreError::Corrupt)?,
                    contact: Contact::parse(&contact).map_err(StoreError::Corrupt)?,
                    until: Timestamp::from_millis(until),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((count(total.first().map_or(0, |row| row.0)), holds))
    }

    /// The last `limit` audit entries, newest first.
    pub async fn audit_latest(&self, limit: u32) -> Result<Vec<crate::policy::AuditRecord>, StoreError> {
        let mut records = self.audit(None, None, None).await?;
        records.sort_by_key(|record| std::cmp::Reverse(record.seq));
        records.truncate(limit as usize);
        Ok(records)
    }
}

/// Milliseconds in one rollup hour.
pub const HOUR_MILLIS: i64 = 3_600_000;

impl Db {
    /// The stored report rollups of `flow` for hours in `[from_hour, to_hour)`
    /// (hour = started_at / 3 600 000), as (hour, tally JSON).
    pub async fn report_hours(&self, flow: &str, from_hour: i64, to_hour: i64) -> Result<Vec<(i64, String)>, StoreError> {
        fetch_as!(
            self,
            (i64, String),
            "SELECT hour, tally FROM report_hours WHERE flow = $1 AND hour >= $2 AND hour < $3 ORDER BY hour",
            flow,
            from_hour,
            to_hour
        )
    }

    /// The hours of `flow` that already have a rollup, in `[from_hour, to_hour)`.
    pub async fn rolled_hours(&self, flow: &str, from_hour: i64, to_hour: i64) -> Result<Vec<i64>, StoreError> {
        let rows = fetch_as!(self, (i64,), "SELECT hour FROM report_hours WHERE flow = $1 AND hour >= $2 AND hour < $3 ORDER BY hour", flow, from_hour, to_hour)?;
        Ok(rows.into_iter().map(|(hour,)| hour).collect())
    }

    /// Stores the rollup of one hour, unless a session of that hour is live
    /// now (its figures may still change), checked in the same statement.
    /// Returns whether it was stored.
    pub async fn save_report_hour(&self, flow: &str, hour: i64, tally: &str) -> Result<bool, StoreError> {
        let sql = "INSERT INTO report_hours (flow, hour, tally) SELECT $1, $2, $3 \
                   WHERE NOT EXISTS (SELECT 1 FROM sessions WHERE outcome IS NULL AND flow = $1 AND started_at >= $4 AND started_at < $5) \
                   ON CONFLICT (flow, hour) DO UPDATE SET tally = excluded.tally";
        let (start, end) = (hour * HOUR_MILLIS, (hour + 1) * HOUR_MILLIS);
        let stored = on_either!(self, |store| {
            let done = sqlx::query(sql).bind(flow).bind(hour).bind(tally).bind(start).bind(end).execute(store.writes()).await;
            done.map_err(|err| store.error(err))?.rows_affected()
        });
        Ok(stored > 0)
    }

    /// The hours of `flow` with a live session (never rolled up).
    pub async fn live_hours(&self, flow: &str) -> Result<Vec<i64>, StoreError> {
        let rows = fetch_as!(self, (i64,), "SELECT DISTINCT started_at / 3600000 FROM sessions WHERE outcome IS NULL AND flow = $1", flow)?;
        Ok(rows.into_iter().map(|(hour,)| hour).collect())
    }

    /// When the first session of `flow` started.
    pub async fn first_start(&self, flow: &str) -> Result<Option<Timestamp>, StoreError> {
        let rows = fetch_as!(self, (Option<i64>,), "SELECT MIN(started_at) FROM sessions WHERE flow = $1", flow)?;
        Ok(rows.first().and_then(|(at,)| *at).map(Timestamp::from_millis))
    }
}
