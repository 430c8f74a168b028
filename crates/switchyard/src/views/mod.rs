//! The typed service layer: every figure the CLI, the admin API and the
//! console show, as structs that derive `Serialize`. Each renderer (JSON,
//! aligned text, HTML) reads fields, never string keys.
//!
//! - [`flow`]: one flow's report: per-version rates with 95% intervals, the
//!   A/B comparison and its verdict, the sample-ratio check, funnels with
//!   drop-off and global commands, classification and form-slot figures.
//! - [`overview`]: every flow at a glance: what new sessions get, the rules,
//!   live sessions per version with their drain time, traffic against the
//!   previous window, the last audit entries.
//! - [`health`]: each instance's last connection state, outbox depth and
//!   the oldest unsent reply's age, send failures by reason, contacts on
//!   human hold (count, oldest), the model's breaker.
//! - [`rollup`]: the report's figures as a mergeable tally, rolled up per hour.
//! - [`verdict`]: the A/B verdict in words (English, Portuguese) from the engine's typed verdict.
//! - [`records`]: audit entries, sessions and the version explanation.

pub mod flow;
pub mod health;
pub mod overview;
pub mod records;
pub mod rollup;
pub mod verdict;

use serde::Serializer;
use switchyard_engine::ids::Version;
use switchyard_engine::time::Timestamp;

/// A timestamp as RFC 3339 text, as every JSON document prints it.
pub(crate) fn rfc3339<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(at)
}

/// An optional timestamp as RFC 3339 text or `null`.
pub(crate) fn rfc3339_opt<S: Serializer>(at: &Option<Timestamp>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serializer.collect_str(at),
        None => serializer.serialize_none(),
    }
}

/// A version as `v2`.
pub(crate) fn version_text<S: Serializer>(version: &Version, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(version)
}

/// What a view covers in time: `[since, until)`; `None` is unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Span {
    /// The last `length` before `now`.
    pub fn last(length: std::time::Duration, now: Timestamp) -> Span {
        Span { since: Some(now.minus(length)), until: Some(now) }
    }
    /// The span of the same length just before this one (`None` when unbounded).
    pub fn previous(&self) -> Option<Span> {
        let (since, until) = (self.since?, self.until?);
        let length = until.millis_since(since).max(0);
        Some(Span { since: Some(Timestamp::from_millis(since.as_millis() - length)), until: Some(since) })
    }
}
