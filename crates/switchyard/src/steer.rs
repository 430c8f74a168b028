//! Steering: the edits an operator makes to a flow's rollout rules (pin,
//! unpin, instance, schedule, split, promote, clear) and evacuation. The CLI
//! (`switchyard rollout ...`) and the console (`/ui`) both go through here,
//! and the admin API through the same [`crate::rollout::change`], so every
//! change is validated the same way and audited with its actor.

use std::sync::Arc;

use switchyard_engine::engine::Engine;
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::rollout::{FlowRules, InstanceRule, Pin, Schedule, Split, Weight};
use switchyard_engine::store::StoreError;
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::AuditRecord;
use switchyard_store::Db;

use crate::rollout::ChangeError;

/// A split guard as an operator gives it (checked by the stored document's parser).
#[derive(Clone, Debug, PartialEq)]
pub struct GuardSpec {
    /// `completion`, `handoff`, `failure` or `expiry`.
    pub metric: String,
    pub min_sessions: u64,
    /// Tolerated degradation in percentage points.
    pub tolerance_points: f64,
    /// 0.5 to under 1.
    pub confidence: f64,
}

/// One change to a flow's rules.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// These contacts always get `version`.
    Pin { version: Version, contacts: Vec<Contact> },
    /// Remove these contacts' pins (each must be pinned).
    Unpin { contacts: Vec<Contact> },
    /// Every new session on `instance` gets `version`.
    Instance { version: Version, instance: InstanceId },
    /// `version` for new sessions inside `[from, until)`.
    Schedule { version: Version, from: Timestamp, until: Timestamp },
    /// A weighted, sticky split; the first version is the baseline.
    Split { weights: Vec<(Version, Weight)>, salt: Option<String>, memory_days: u32, guard: Option<GuardSpec> },
    /// The policy's active version.
    Promote { version: Version },
    /// Remove one kind of rule (`pin`, `instance`, `schedule`, `split`, `promote`) or `all`.
    Clear { kind: String },
}

/// The rule kinds [`Edit::Clear`] accepts.
pub const CLEAR_KINDS: [&str; 6] = ["pin", "instance", "schedule", "split", "promote", "all"];

impl Edit {
    /// The audit action this edit is recorded as.
    pub fn action(&self) -> &'static str {
        match self {
            Edit::Pin { .. } => "pin",
            Edit::Unpin { .. } => "unpin",
            Edit::Instance { .. } => "instance",
            Edit::Schedule { .. } => "schedule",
            Edit::Split { .. } => "split",
            Edit::Promote { .. } => "promote",
            Edit::Clear { .. } => "clear",
        }
    }

    /// `current` with this edit applied, or why it cannot be (one line).
    /// The result is validated against the registry by [`crate::rollout::change`].
    pub fn apply(&self, flow: &str, current: &FlowRules) -> Result<FlowRules, String> {
        let mut rules = current.clone();
        match self {
            Edit::Pin { version, contacts } => {
                for contact in contacts {
                    rules.pins.retain(|pin| pin.contact != *contact);
                    rules.pins.push(Pin { contact: contact.clone(), version: *version });
                }
            }
            Edit::Unpin { contacts } => {
                for contact in contacts {
                    let before = rules.pins.len();
                    rules.pins.retain(|pin| pin.contact != *contact);
                    if rules.pins.len() == before {
                        return Err(format!("{} is not pinned in {flow}", contact.masked()));
                    }
                }
            }
            Edit::Instance { version, instance } => {
                rules.instances.retain(|rule| rule.instance != *instance);
                rules.instances.push(InstanceRule { instance: instance.clone(), version: *version });
            }
            Edit::Schedule { version, from, until } => rules.schedules.push(Schedule::new(*version, *from, *until)?),
            Edit::Split { weights, salt, memory_days, guard } => {
                let mut split = Split::new(weights.clone(), salt.clone(), *memory_days)?;
                if let Some(guard) = guard {
                    split.guard = parse_guard(&split, guard)?;
                }
                rules.split = Some(split);
            }
            Edit::Promote { version } => rules.promoted = Some(*version),
            Edit::Clear { kind } => match kind.as_str() {
                "pin" => rules.pins.clear(),
                "instance" => rules.instances.clear(),
                "schedule" => rules.schedules.clear(),
                "split" => rules.split = None,
                "promote" => rules.promoted = None,
                "all" => rules = FlowRules::default(),
                other => return Err(format!("kind '{other}' must be pin, instance, schedule, split, promote or all")),
            },
        }
        Ok(rules)
    }
}

/// The guard, checked through the same parser the stored document uses.
fn parse_guard(split: &Split, guard: &GuardSpec) -> Result<Option<switchyard_engine::rollout::SplitGuard>, String> {
    let document = serde_json::json!({"split": {
        "weights": split.weights.iter().map(|(v, w)| serde_json::json!([v.to_string(), w.to_string()])).collect::<Vec<_>>(),
        "guard": {"metric": guard.metric, "min_sessions": guard.min_sessions, "tolerance_points": guard.tolerance_points, "confidence": guard.confidence},
    }});
    let parsed = switchyard_store::policy::rules_from_json(&document).map_err(|err| err.replace("split.guard.", "guard "))?;
    Ok(parsed.split.and_then(|parsed| parsed.guard))
}

/// Parses split weights `v1=90,v2=10`.
pub fn parse_weights(text: &str) -> Result<Vec<(Version, Weight)>, String> {
    text.split(',')
        .map(|entry| {
            let (version, weight) = entry
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("weight '{}' must look like v2=10 (the whole list like v1=90,v2=10)", entry.trim()))?;
            Ok((Version::parse(version.trim())?, Weight::parse(weight.trim())?))
        })
        .collect()
}

/// Parses contacts, one per entry.
pub fn parse_contacts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Vec<Contact>, String> {
    texts.into_iter().map(Contact::parse).collect()
}

/// A flow's rules now, and what `edit` would make of them (not stored).
pub async fn preview(store: &Db, flow: &str, edit: &Edit) -> Result<(FlowRules, Result<FlowRules, String>), StoreError> {
    let (policy, _) = store.load_policy().await?;
    let current = policy.get(flow).cloned().unwrap_or_default();
    let after = edit.apply(flow, &current);
    Ok((current, after))
}

/// Applies `edit` to `flow`'s stored rules and stores the result, audited
/// with `actor` and `reason`.
pub async fn apply(store: &Db, engine: &Engine, flow: &str, edit: &Edit, actor: &str, reason: &str) -> Result<AuditRecord, ChangeError> {
    let (_, after) = preview(store, flow, edit).await?;
    let rules = after.map_err(|problem| ChangeError::Invalid(vec![problem]))?;
    crate::rollout::change(store, &engine.registry(), flow, &rules, actor, edit.action(), reason).await
}

/// What an evacuation did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Evacuation {
    /// Sessions ended and restarted on the version that resolves now.
    pub moved: usize,
    /// Of those, customers sent the restart message.
    pub queued: usize,
    /// The audit record's sequence number.
    pub audit_seq: i64,
}

/// Ends `flow@version`'s live sessions and restarts each customer on the
/// version new sessions get now, audited with `actor` and `reason`. Refused
/// (nothing changed) when new sessions still resolve to `version`.
pub async fn evacuate(store: &Db, engine: &Arc<Engine>, flow: &str, version: Version, actor: &str, reason: &str) -> Result<Evacuation, ChangeError> {
    if reason.trim().is_empty() {
        return Err(ChangeError::Invalid(vec!["a reason is required: the audit log records why every change was made".to_owned()]));
    }
    let (mut moved, mut queued, mut refused) = (0, 0, None);
    for session in store.live_sessions_of(flow, version).await? {
        // The contact's whole stack: a callee version's live frame is
        // evacuated under its caller (see `switchyard_engine::call`).
        let state = switchyard_engine::store::Store::contact_state(store, session.instance(), session.contact()).await?;
        if !state.session.iter().chain(&state.calls).any(|live| live.id() == session.id()) {
            continue; // the customer wrote meanwhile and that turn moved on
        }
        let turn = match engine.evacuate_in(state, session.id(), Timestamp::now_utc()) {
            Ok(turn) => turn,
            Err(problem) => {
                refused = Some(problem);
                break;
            }
        };
        match store.commit_with_replies(&turn).await {
            Ok(sent) => {
                moved += 1;
                queued += usize::from(sent);
            }
            // The customer wrote meanwhile: that turn already moved on.
            Err(StoreError::Conflict(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    // Sessions already moved are recorded even when a later one was refused.
    let audit_seq = if moved > 0 || refused.is_none() {
        let detail = serde_json::json!({ "evacuated": format!("{flow}@{version}"), "sessions": moved });
        store.record_event(actor, "evacuate", flow, reason.trim(), &detail).await?
    } else {
        0
    };
    if let Some(problem) = refused {
        return Err(ChangeError::Invalid(vec![problem]));
    }
    Ok(Evacuation { moved, queued, audit_seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn weights_parse_and_bad_ones_name_the_entry() {
        assert_eq!(parse_weights("v1=90, v2=10").unwrap().len(), 2);
        let err = parse_weights("v1=90,v2").unwrap_err();
        assert!(err.contains("weight 'v2' must look like v2=10"), "{err}");
    }

    #[test]
    fn pin_replaces_an_existing_pin_and_unpin_refuses_an_unpinned_contact() {
        let contact = Contact::parse("5511999990000").unwrap();
        let pinned = Edit::Pin { version: version("v1"), contacts: vec![contact.clone()] }.apply("f", &FlowRules::default()).unwrap();
        let repinned = Edit::Pin { version: version("v2"), contacts: vec![contact.clone()] }.apply("f", &pinned).unwrap();
        assert_eq!(repinned.pins, vec![Pin { contact: contact.clone(), version: version("v2") }]);
        let err = Edit::Unpin { contacts: vec![Contact::parse("5511888880000").unwrap()] }.apply("f", &repinned).unwrap_err();
        assert!(err.contains("is not pinned in f"), "{err}");
        assert!(!err.contains("5511888880000"), "the contact is masked: {err}");
    }

    #[test]
    fn split_with_a_guard_and_clear_by_kind() {
        let edit = Edit::Split {
            weights: parse_weights("v1=50,v2=50").unwrap(),
            salt: None,
            memory_days: 0,
            guard: Some(GuardSpec { metric: "completion".to_owned(), min_sessions: 50, tolerance_points: 2.0, confidence: 0.95 }),
        };
        let rules = edit.apply("f", &FlowRules::default()).unwrap();
        let guard = rules.split.as_ref().and_then(|split| split.guard.as_ref()).unwrap();
        assert_eq!((guard.metric.as_str(), guard.min_sessions, guard.tolerance_hundredths), ("completion", 50, 200));
        let bad = Edit::Split {
            weights: parse_weights("v1=50,v2=50").unwrap(),
            salt: None,
            memory_days: 0,
            guard: Some(GuardSpec { metric: "speed".to_owned(), min_sessions: 1, tolerance_points: 1.0, confidence: 0.9 }),
        };
        assert!(bad.apply("f", &FlowRules::default()).unwrap_err().contains("speed"));
        assert_eq!(Edit::Clear { kind: "split".to_owned() }.apply("f", &rules).unwrap().split, None);
        assert!(Edit::Clear { kind: "everything".to_owned() }.apply("f", &rules).unwrap_err().contains("'everything'"));
    }
}
