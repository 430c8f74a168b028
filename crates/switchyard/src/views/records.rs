//! Single records as every surface shows them: an audit entry, a session,
//! and the explanation of the version a new session would get.

use serde::Serialize;
use serde_json::Value;
use switchyard_engine::engine::Engine;
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::AuditRecord;

use super::{rfc3339, rfc3339_opt};

/// A policy change, deploy or operator action from the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(serialize_with = "rfc3339")]
    pub at: Timestamp,
    /// Token name (admin API, console), `cli:<user>`, `serve` or `guard`.
    pub actor: String,
    pub action: String,
    pub flow: Option<String>,
    pub reason: String,
    /// The flow's rules before and after (JSON), when the entry changed them.
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl From<&AuditRecord> for AuditEntry {
    fn from(record: &AuditRecord) -> AuditEntry {
        AuditEntry {
            seq: record.seq,
            at: record.at,
            actor: record.actor.clone(),
            action: record.action.clone(),
            flow: record.flow.clone(),
            reason: record.reason.clone(),
            before: record.before.clone(),
            after: record.after.clone(),
        }
    }
}

/// A session's row, as `sessions list/show --json` and the admin API print it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionView {
    pub id: String,
    pub instance: String,
    /// The contact as stored (renderers for people show [`SessionView::contact_masked`]).
    pub contact: String,
    #[serde(skip)]
    pub contact_masked: String,
    pub flow: String,
    pub version: String,
    pub reason: String,
    pub step: String,
    pub turns: u32,
    #[serde(serialize_with = "rfc3339")]
    pub started_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    pub last_input_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
    pub expires_at: Timestamp,
    /// `None` while live.
    pub outcome: Option<&'static str>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub ended_at: Option<Timestamp>,
    /// The session whose step called this one (`null` for an outermost
    /// session), and how deep in the call stack it runs (0 outermost).
    pub parent: Option<String>,
    pub depth: u32,
}

impl From<&Session> for SessionView {
    fn from(session: &Session) -> SessionView {
        SessionView {
            id: session.id().to_string(),
            instance: session.instance().as_str().to_owned(),
            contact: session.contact().as_str().to_owned(),
            contact_masked: session.contact().masked(),
            flow: session.flow().as_str().to_owned(),
            version: session.version().to_string(),
            reason: session.reason().name().to_owned(),
            step: session.step().as_str().to_owned(),
            turns: session.turns(),
            started_at: session.started_at(),
            last_input_at: session.record().last_input_at,
            expires_at: session.expires_at(),
            outcome: session.outcome().map(Outcome::as_str),
            ended_at: session.ended_at(),
            parent: session.record().parent.map(|id| id.to_string()),
            depth: session.record().depth,
        }
    }
}

/// One rule looked at while resolving a new session's version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleCheck {
    /// `pin`, `instance`, `schedule`, `split` or `promote`.
    pub rule: &'static str,
    pub matched: bool,
    /// The version the rule gives, when it matched.
    pub version: Option<String>,
    /// What was looked at and found; contacts masked.
    pub detail: String,
}

/// The version a new session of `contact` would get now, and why
/// (`explain --json`, `GET /api/explain`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    pub flow: String,
    /// `None` when the flow is not compiled in.
    pub version: Option<String>,
    /// `override`, `active`, or the rule that chose.
    pub reason: Option<String>,
    pub reason_detail: Option<String>,
    /// One sentence for people.
    pub explanation: String,
    pub fingerprint: Option<String>,
    /// The version `FLOW_VERSION_OVERRIDES` forces for this flow.
    #[serde(rename = "override")]
    pub forced: Option<String>,
    /// The whole `FLOW_VERSION_OVERRIDES` setting.
    pub overrides: String,
    pub rules: Vec<RuleCheck>,
    pub instance: String,
    /// Masked.
    pub contact: String,
    /// The compiled steps that call this flow (`FLOW@VERSION at STEP`):
    /// each call resolves it by these rules when it starts.
    pub called_by: Vec<String>,
}

/// Explains the resolution of a new session of `contact` on `instance` at `now`.
pub fn explain(engine: &Engine, flow: &str, instance: &InstanceId, contact: &Contact, now: Timestamp) -> Explanation {
    use switchyard_engine::resolve::Reason;
    let explained = engine.explain(flow, instance, contact, now);
    let rules = explained
        .evaluation
        .as_ref()
        .map(|evaluation| {
            evaluation
                .checks
                .iter()
                .map(|check| RuleCheck {
                    rule: check.rule,
                    matched: check.matched,
                    version: check.version.map(|version| version.to_string()),
                    detail: check.detail.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let resolution = explained.resolution.as_ref();
    let registry = engine.registry();
    let fingerprint = resolution.and_then(|resolution| registry.get(flow, resolution.version)).map(|fv| fv.fingerprint().as_str().to_owned());
    let explanation = match resolution.map(|resolution| (&resolution.reason, resolution.version)) {
        Some((Reason::Override, version)) => format!("FLOW_VERSION_OVERRIDES sets {flow}={version}; it beats every rule"),
        Some((Reason::Active, version)) => format!("no rule matched: {version} is the version declared active in code"),
        Some((Reason::Rule { rule, detail }, version)) => {
            format!("rule '{rule}' chose {version}{}", detail.as_deref().map(|detail| format!(" ({detail})")).unwrap_or_default())
        }
        None => format!("flow '{flow}' is not compiled in"),
    };
    Explanation {
        flow: flow.to_owned(),
        version: resolution.map(|resolution| resolution.version.to_string()),
        reason: resolution.map(|resolution| resolution.reason.name().to_owned()),
        reason_detail: resolution.and_then(|resolution| resolution.reason.detail().map(str::to_owned)),
        explanation,
        fingerprint,
        forced: explained.overridden.map(|version| version.to_string()),
        overrides: engine.resolver().overrides().to_string(),
        rules,
        instance: instance.as_str().to_owned(),
        contact: contact.masked(),
        called_by: callers(&engine.registry(), flow),
    }
}

/// The compiled steps that call `flow` by name (`FLOW@VERSION at STEP`),
/// whose calls resolve it by its own policy; a call fixed at a version
/// (`flow@vN`) is listed with it, since no rule applies there.
fn callers(registry: &switchyard_engine::registry::Registry, flow: &str) -> Vec<String> {
    let mut callers = Vec::new();
    for caller in registry.all() {
        for step in caller.steps() {
            for target in &step.targets {
                let switchyard_engine::flow::Next::Call(spec) = target else { continue };
                match switchyard_engine::call::Callee::parse(spec) {
                    Ok(callee) if callee.flow == flow => {
                        let fixed = callee.version.map(|version| format!(" (fixed at {version})")).unwrap_or_default();
                        callers.push(format!("{}@{} at {}{fixed}", caller.flow(), caller.version(), step.id));
                    }
                    _ => {}
                }
            }
        }
    }
    callers
}

