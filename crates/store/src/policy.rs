//! The stored rollout policy and the audit log, both backends.
//!
//! The engine's rule types do not know JSON; this module owns the stored
//! shape, one JSON document per flow:
//!
//! ```json
//! {"pins": [{"contact": "5511999990000", "version": "v2"}],
//!  "instances": [{"instance": "vendas", "version": "v2"}],
//!  "schedules": [{"version": "v2", "from": "2026-12-01T00:00:00.000Z", "until": "2027-01-10T00:00:00.000Z"}],
//!  "split": {"weights": [["v1", "90"], ["v2", "10"]], "salt": null, "memory_days": 0},
//!  "promoted": "v2"}
//! ```
//!
//! A change writes the flow's row and an audit record with the before and
//! after documents in one transaction; the audit's highest seq is the policy
//! revision every running server polls.

use serde_json::{json, Value};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::rollout::{FlowRules, GuardTrip, InstanceRule, Pin, Rules, Schedule, Split, SplitGuard, Weight};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;

use crate::backend::{both, Backend, Tx};
use crate::codec::{corrupt, Columns};

/// One audit record: a policy change or a deploy.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: Timestamp,
    /// Token name (admin API), `cli:<user>` (CLI) or `serve` (deploy manifests).
    pub actor: String,
    /// `pin`, `unpin`, `instance`, `schedule`, `split`, `promote`, `clear`, `set`, `deploy`.
    pub action: String,
    pub flow: Option<String>,
    pub reason: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Versions served in a window: (flow, version, fingerprint, sessions started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub version: Version,
    pub fingerprint: String,
    pub sessions: i64,
    pub first: Timestamp,
    pub last: Timestamp,
}

pub fn rules_to_json(rules: &FlowRules) -> Value {
    json!({
        "pins": rules.pins.iter().map(|pin| json!({"contact": pin.contact.as_str(), "version": pin.version.to_string()})).collect::<Vec<_>>(),
        "instances": rules.instances.iter().map(|rule| json!({"instance": rule.instance.as_str(), "version": rule.version.to_string()})).collect::<Vec<_>>(),
        "schedules": rules.schedules.iter().map(|schedule| json!({
            "version": schedule.version.to_string(),
            "from": schedule.from.to_string(),
            "until": schedule.until.to_string(),
        })).collect::<Vec<_>>(),
        "split": rules.split.as_ref().map(|split| json!({
            "weights": split.weights.iter().map(|(version, weight)| json!([version.to_string(), weight.to_string()])).collect::<Vec<_>>(),
            "salt": split.salt,
            "memory_days": split.memory_days,
            "guard": split.guard.as_ref().map(|guard| json!({
                "metric": guard.metric,
                "min_sessions": guard.min_sessions,
                "tolerance_points": f64::from(guard.tolerance_hundredths) / 100.0,
                "confidence": f64::from(guard.confidence_permille) / 1000.0,
                "tripped": guard.tripped.as_ref().map(|trip| json!({"at": trip.at.to_string(), "reason": trip.reason})),
                "armed_after_event": guard.armed_after_event,
            })),
            "weights_after_event": split.weights_after_event,
        })),
        "promoted": rules.promoted.map(|version| version.to_string()),
    })
}

fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value.get(name).filter(|value| !value.is_null())
}

fn text<'a>(value: &'a Value, name: &str, at: &str) -> Result<&'a str, String> {
    field(value, name).and_then(Value::as_str).ok_or_else(|| format!("{at}.{name} must be a string"))
}

fn list<'a>(value: &'a Value, name: &str) -> Result<&'a [Value], String> {
    match field(value, name) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("{name} must be a list")),
    }
}

/// Parses a flow's rules document (also what the admin API accepts). Every
/// problem names the field that holds it.
pub fn rules_from_json(value: &Value) -> Result<FlowRules, String> {
    if !value.is_object() {
        return Err("rules must be a JSON object with pins, instances, schedules, split, promoted".to_owned());
    }
    if let Some(unknown) = value.as_object().and_then(|map| {
        map.keys().find(|key| !["pins", "instances", "schedules", "split", "promoted"].contains(&key.as_str()))
    }) {
        return Err(format!("unknown field '{unknown}' (expected pins, instances, schedules, split, promoted)"));
    }
    let mut rules = FlowRules::default();
    for (idx, pin) in list(value, "pins")?.iter().enumerate() {
        let at = format!("pins[{idx}]");
        rules.pins.push(Pin {
            contact: Contact::parse(text(pin, "contact", &at)?).map_err(|err| format!("{at}: {err}"))?,
            version: Version::parse(text(pin, "version", &at)?).map_err(|err| format!("{at}: {err}"))?,
        });
    }
    for (idx, rule) in list(value, "instances")?.iter().enumerate() {
        let at = format!("instances[{idx}]");
        rules.instances.push(InstanceRule {
            instance: InstanceId::parse(text(rule, "instance", &at)?).map_err(|err| format!("{at}: {err}"))?,
            version: Version::parse(text(rule, "version", &at)?).map_err(|err| format!("{at}: {err}"))?,
        });
    }
    for (idx, schedule) in list(value, "schedules")?.iter().enumerate() {
        let at = format!("schedules[{idx}]");
        let version = Version::parse(text(schedule, "version", &at)?).map_err(|err| format!("{at}: {err}"))?;
        let from = Timestamp::parse_rfc3339(text(schedule, "from", &at)?).map_err(|err| format!("{at}: {err}"))?;
        let until = Timestamp::parse_rfc3339(text(schedule, "until", &at)?).map_err(|err| format!("{at}: {err}"))?;
        rules.schedules.push(Schedule::new(version, from, until).map_err(|err| format!("{at}: {err}"))?);
    }
    if let Some(split) = field(value, "split") {
        let mut weights = Vec::new();
        for (idx, pair) in list(split, "weights")?.iter().enumerate() {
            let at = format!("split.weights[{idx}]");
            let (Some(version), Some(weight)) = (pair.get(0), pair.get(1)) else {
                return Err(format!("{at} must be [\"vN\", \"percent\"]"));
            };
            let version = version.as_str().ok_or_else(|| format!("{at}[0] must be a string like \"v2\""))?;
            let weight = match weight {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => return Err(format!("{at}[1] must be a percentage like \"12.5\"")),
            };
            weights.push((
                Version::parse(version).map_err(|err| format!("{at}: {err}"))?,
                Weight::parse(&weight).map_err(|err| format!("{at}: {err}"))?,
            ));
        }
        let salt = match field(split, "salt") {
            None => None,
            Some(Value::String(salt)) => Some(salt.clone()),
            Some(_) => return Err("split.salt must be a string".to_owned()),
        };
        let memory_days = match field(split, "memory_days") {
            None => 0,
            Some(days) => days.as_u64().and_then(|days| u32::try_from(days).ok()).ok_or("split.memory_days must be a whole number of days")?,
        };
        let mut parsed = Split::new(weights, salt, memory_days).map_err(|err| format!("split: {err}"))?;
        if let Some(guard) = field(split, "guard") {
            parsed.guard = Some(guard_from_json(guard)?);
        }
        parsed.weights_after_event = event_mark(split, "split.weights_after_event")?;
        rules.split = Some(parsed);
    }
    if let Some(promoted) = field(value, "promoted") {
        let promoted = promoted.as_str().ok_or("promoted must be a string like \"v2\"")?;
        rules.promoted = Some(Version::parse(promoted).map_err(|err| format!("promoted: {err}"))?);
    }
    Ok(rules)
}

/// An event sequence number stored as a mark (`None` when absent).
fn event_mark(value: &Value, path: &str) -> Result<Option<i64>, String> {
    let name = path.rsplit('.').next().unwrap_or(path);
    match field(value, name) {
        None => Ok(None),
        Some(mark) => mark.as_i64().filter(|seq| *seq >= 0).map(Some).ok_or_else(|| format!("{path} {mark} must be an event sequence number (0 or more)")),
    }
}

fn guard_from_json(guard: &Value) -> Result<SplitGuard, String> {
    let metric = text(guard, "metric", "split.guard")?;
    if !["completion", "handoff", "failure", "expiry"].contains(&metric) {
        return Err(format!("split.guard.metric '{metric}' must be completion, handoff, failure or expiry"));
    }
    let number = |name: &str| field(guard, name).and_then(Value::as_f64);
    let min_sessions = field(guard, "min_sessions").and_then(Value::as_u64).unwrap_or(100);
    if min_sessions == 0 {
        return Err("split.guard.min_sessions must be at least 1".to_owned());
    }
    let tolerance = number("tolerance_points").unwrap_or(0.0);
    if !(0.0..100.0).contains(&tolerance) {
        return Err(format!("split.guard.tolerance_points {tolerance} must be from 0 to under 100 percentage points"));
    }
    let confidence = number("confidence").unwrap_or(0.95);
    if !(0.5..1.0).contains(&confidence) {
        return Err(format!("split.guard.confidence {confidence} must be from 0.5 to under 1 (for example 0.95)"));
    }
    let tripped = match field(guard, "tripped") {
        None => None,
        Some(trip) => Some(GuardTrip {
            at: Timestamp::parse_rfc3339(text(trip, "at", "split.guard.tripped")?)?,
            reason: text(trip, "reason", "split.guard.tripped")?.to_owned(),
        }),
    };
    let armed_after_event = event_mark(guard, "split.guard.armed_after_event")?;
    Ok(SplitGuard {
        metric: metric.to_owned(),
        min_sessions,
        tolerance_hundredths: (tolerance * 100.0).round() as u32,
        confidence_permille: (confidence * 1000.0).round() as u32,
        tripped,
        armed_after_event,
    })
}

/// The statements of the policy and the audit log, both backends.
const REVISION: &str = "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM audit";
const ALL_RULES: &str = "SELECT flow, rules FROM policy ORDER BY flow";
const RULES_OF: &str = "SELECT rules FROM policy WHERE flow = $1";
const UPSERT: &str = "INSERT INTO policy (flow, rules, updated_at) VALUES ($1, $2, $3) \
                      ON CONFLICT (flow) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at";
const DELETE: &str = "DELETE FROM policy WHERE flow = $1";
const REPLACE: &str = "UPDATE policy SET rules = $1, updated_at = $2 WHERE flow = $3";
const INSERT_AUDIT: &str = "INSERT INTO audit (at, actor, action, flow, reason, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                            RETURNING seq, at, actor, action, flow, reason, before, after";
/// Records about `$1` (and deploys, which concern every flow) in [$2, $3).
const AUDIT: &str = "SELECT seq, at, actor, action, flow, reason, before, after FROM audit \
                     WHERE ($1 IS NULL OR flow = $1 OR flow IS NULL) AND at >= $2 AND at < $3 ORDER BY seq";
const SERVED: &str = "SELECT version, fingerprint, COUNT(*) AS sessions, MIN(started_at) AS first, MAX(started_at) AS last FROM sessions \
                      WHERE flow = $1 AND started_at >= $2 AND started_at < $3 GROUP BY version, fingerprint ORDER BY version, first";

pub(crate) fn audit_from_row(row: &impl Columns) -> Result<AuditRecord, StoreError> {
    let json = |name: &str| -> Result<Option<Value>, StoreError> {
        row.opt_text(name)?.map(|text| serde_json::from_str(&text).map_err(|err| corrupt(&format!("audit.{name}"), err))).transpose()
    };
    Ok(AuditRecord {
        seq: row.int("seq")?,
        at: Timestamp::from_millis(row.int("at")?),
        actor: row.text("actor")?,
        action: row.text("action")?,
        flow: row.opt_text("flow")?,
        reason: row.text("reason")?,
        before: json("before")?,
        after: json("after")?,
    })
}

fn stored_rules(flow: &str, document: &str) -> Result<Value, StoreError> {
    serde_json::from_str(document).map_err(|err| StoreError::Corrupt(format!("policy of {flow}: {err}")))
}

both! {
    /// Appends an audit record inside `tx` (begun with
    /// [`Backend::begin_audit`]) and returns it as stored.
    #[allow(clippy::too_many_arguments)] // reason: the audit record's columns, spelled out
    pub(crate) async fn insert_audit(
        tx: &mut Tx<Self>,
        at: Timestamp,
        actor: &str,
        action: &str,
        flow: Option<&str>,
        reason: &str,
        before: Option<String>,
        after: Option<String>,
    ) -> Result<AuditRecord, StoreError> {
        let row = sqlx::query(INSERT_AUDIT)
            .bind(at.as_millis())
            .bind(actor)
            .bind(action)
            .bind(flow)
            .bind(reason)
            .bind(before)
            .bind(after)
            .fetch_one(&mut **tx)
            .await
            .map_err(Self::map_err)?;
        audit_from_row(&row)
    }

    /// The stored policy and its revision. A stored document that no longer
    /// parses is reported, not silently dropped.
    pub async fn load_policy(&self) -> Result<(Rules, i64), StoreError> {
        // The revision first: a change landing between the two reads then
        // shows as a newer revision at the next poll, never as rules older
        // than the revision they are stored under.
        let revision = self.policy_revision().await?;
        let rows = sqlx::query(ALL_RULES).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        let mut rules = Rules::new();
        for row in rows {
            let flow = row.text("flow")?;
            let flow_rules = rules_from_json(&stored_rules(&flow, &row.text("rules")?)?)
                .map_err(|err| StoreError::Corrupt(format!("policy of {flow}: {err}")))?;
            rules.set(&flow, flow_rules);
        }
        Ok((rules, revision))
    }

    /// The highest audit seq: changes whenever the policy changes.
    pub async fn policy_revision(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(REVISION).fetch_one(self.reads()).await.map_err(Self::map_err)
    }

    /// Replaces a flow's rules (empty rules remove the row) and records the
    /// change, with the rules before and after, in one transaction.
    pub async fn change_policy(
        &self,
        flow: &str,
        rules: &FlowRules,
        actor: &str,
        action: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<AuditRecord, StoreError> {
        let mut tx = self.begin_audit().await?;
        let before: Option<String> = sqlx::query_scalar(RULES_OF).bind(flow).fetch_optional(&mut *tx).await.map_err(Self::map_err)?;
        let after = if rules.is_empty() { None } else { Some(rules_to_json(rules).to_string()) };
        match &after {
            Some(document) => sqlx::query(UPSERT).bind(flow).bind(document).bind(at.as_millis()).execute(&mut *tx).await,
            None => sqlx::query(DELETE).bind(flow).execute(&mut *tx).await,
        }
        .map_err(Self::map_err)?;
        let record = Self::insert_audit(&mut tx, at, actor, action, Some(flow), reason, before, after).await?;
        tx.commit().await.map_err(Self::map_err)?;
        Ok(record)
    }

    /// Replaces `flow`'s rules only if they are still exactly `expected`
    /// (compare-and-swap): when several processes evaluate the same guard,
    /// the first one's change lands and the others see `None`.
    #[allow(clippy::too_many_arguments)] // reason: the audit record's fields, spelled out
    pub async fn change_policy_if(
        &self,
        flow: &str,
        expected: &FlowRules,
        rules: &FlowRules,
        actor: &str,
        action: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<Option<AuditRecord>, StoreError> {
        let mut tx = self.begin_audit().await?;
        let current: Option<String> = sqlx::query_scalar(RULES_OF).bind(flow).fetch_optional(&mut *tx).await.map_err(Self::map_err)?;
        let current = current.map(|text| stored_rules(flow, &text)).transpose()?;
        if current.as_ref() != Some(&rules_to_json(expected)) {
            return Ok(None);
        }
        let after = rules_to_json(rules).to_string();
        sqlx::query(REPLACE).bind(&after).bind(at.as_millis()).bind(flow).execute(&mut *tx).await.map_err(Self::map_err)?;
        let before = current.map(|value| value.to_string());
        let record = Self::insert_audit(&mut tx, at, actor, action, Some(flow), reason, before, Some(after)).await?;
        tx.commit().await.map_err(Self::map_err)?;
        Ok(Some(record))
    }

    /// Records a deploy manifest (what `serve` runs) in the audit log.
    pub async fn record_deploy(&self, manifest: &Value, reason: &str, at: Timestamp) -> Result<i64, StoreError> {
        let mut tx = self.begin_audit().await?;
        let record = Self::insert_audit(&mut tx, at, "serve", "deploy", None, reason, None, Some(manifest.to_string())).await?;
        tx.commit().await.map_err(Self::map_err)?;
        Ok(record.seq)
    }

    /// An audited operation that is not a policy change (an evacuation).
    pub async fn record_event(&self, actor: &str, action: &str, flow: &str, reason: &str, detail: &Value) -> Result<i64, StoreError> {
        let mut tx = self.begin_audit().await?;
        let record =
            Self::insert_audit(&mut tx, Timestamp::now_utc(), actor, action, Some(flow), reason, None, Some(detail.to_string())).await?;
        tx.commit().await.map_err(Self::map_err)?;
        Ok(record.seq)
    }

    /// Audit records, oldest first: those about `flow` (and deploys, which
    /// concern every flow) inside [since, until).
    pub async fn audit(&self, flow: Option<&str>, since: Option<Timestamp>, until: Option<Timestamp>) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(AUDIT)
            .bind(flow)
            .bind(since.map_or(i64::MIN, Timestamp::as_millis))
            .bind(until.map_or(i64::MAX, Timestamp::as_millis))
            .fetch_all(self.reads())
            .await
            .map_err(Self::map_err)?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Which versions of `flow` served sessions that started in [from, to),
    /// with their fingerprints and counts.
    pub async fn served(&self, flow: &str, from: Timestamp, to: Timestamp) -> Result<Vec<Served>, StoreError> {
        let rows = sqlx::query(SERVED).bind(flow).bind(from.as_millis()).bind(to.as_millis()).fetch_all(self.reads()).await.map_err(Self::map_err)?;
        rows.iter()
            .map(|row| {
                Ok(Served {
                    version: row.version("version")?,
                    fingerprint: row.text("fingerprint")?,
                    sessions: row.int("sessions")?,
                    first: Timestamp::from_millis(row.int("first")?),
                    last: Timestamp::from_millis(row.int("last")?),
                })
            })
            .collect()
    }
}

/// An audited turn's record ([`SqliteStore::commit_audited`]): the seq alone.
const APPEND_AUDIT: &str = "INSERT INTO audit (at, actor, action, flow, reason, before, after) VALUES ($1, $2, $3, $4, $5, NULL, $6) RETURNING seq";

/// What an operator did to a session, recorded with the turn that did it.
#[derive(Clone, Copy, Debug)]
pub struct AuditedTurn<'a> {
    pub at: Timestamp,
    pub actor: &'a str,
    pub action: &'a str,
    pub flow: &'a str,
    pub reason: &'a str,
    pub detail: &'a Value,
}

/// A turn an operator caused (a session ended by hand) and its audit record
/// in one transaction, so neither exists without the other: the turn is
/// refused whole on a stale revision ([`StoreError::Conflict`]) and the
/// record goes with it. Written per backend, as the turn's own write is.
impl crate::sqlite::SqliteStore {
    pub async fn commit_audited(&self, turn: &switchyard_engine::engine::Turn, audit: &AuditedTurn<'_>) -> Result<i64, StoreError> {
        use crate::writer::Statement;
        let mut statements = Vec::new();
        crate::sqlite::turn_statements(turn, &mut statements);
        statements.push(Statement::returning(
            APPEND_AUDIT,
            vec![
                audit.at.as_millis().into(),
                audit.actor.into(),
                audit.action.into(),
                audit.flow.into(),
                audit.reason.into(),
                audit.detail.to_string().into(),
            ],
        ));
        let results = self.write(statements).await?;
        results.last().copied().flatten().ok_or_else(|| StoreError::Other("the audit record returned no seq".to_owned()))
    }
}

impl crate::postgres::PgStore {
    pub async fn commit_audited(&self, turn: &switchyard_engine::engine::Turn, audit: &AuditedTurn<'_>) -> Result<i64, StoreError> {
        let mut tx = self.begin_audit().await?;
        crate::postgres::write_turn(&mut tx, turn).await?;
        let seq: i64 = sqlx::query_scalar(APPEND_AUDIT)
            .bind(audit.at.as_millis())
            .bind(audit.actor)
            .bind(audit.action)
            .bind(audit.flow)
            .bind(audit.reason)
            .bind(audit.detail.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(Self::map_err)?;
        tx.commit().await.map_err(Self::map_err)?;
        Ok(seq)
    }
}
