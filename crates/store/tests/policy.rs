//! The stored rollout policy and the audit log, on every backend.

use serde_json::json;
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::rollout::{FlowRules, InstanceRule, Pin, Schedule, Split, Weight};
use switchyard_engine::time::Timestamp;
use switchyard_store::policy::{rules_from_json, rules_to_json};
use switchyard_store::testing::every_backend;

fn every_kind() -> FlowRules {
    let v1 = Version::new(1);
    let v2 = Version::new(2);
    FlowRules {
        pins: vec![Pin { contact: Contact::parse("5511999990000").unwrap(), version: v2 }],
        instances: vec![InstanceRule { instance: InstanceId::parse("vendas").unwrap(), version: v2 }],
        schedules: vec![Schedule::new(v2, Timestamp::parse_rfc3339("2026-12-01").unwrap(), Timestamp::parse_rfc3339("2027-01-10").unwrap()).unwrap()],
        split: Some(Split::new(vec![(v1, Weight::parse("87.5").unwrap()), (v2, Weight::parse("12.5").unwrap())], Some("natal".to_owned()), 7).unwrap()),
        promoted: Some(v1),
    }
}

#[test]
fn rules_round_trip_through_their_json_document() {
    let rules = every_kind();
    let document = rules_to_json(&rules);
    assert_eq!(document["split"]["weights"], json!([["v1", "87.5"], ["v2", "12.5"]]));
    assert_eq!(document["schedules"][0]["from"], "2026-12-01T00:00:00.000Z");
    assert_eq!(rules_from_json(&document).unwrap(), rules);
    assert_eq!(rules_from_json(&json!({})).unwrap(), FlowRules::default());
}

#[test]
fn a_bad_rules_document_names_the_field() {
    let cases = [
        (json!([]), "rules must be a JSON object"),
        (json!({"pins": [{"contact": "x", "version": "v2"}]}), "pins[0]: contact"),
        (json!({"instances": [{"instance": "vendas", "version": "2"}]}), "instances[0]: version '2'"),
        (json!({"schedules": [{"version": "v2", "from": "2027-01-01", "until": "2026-01-01"}]}), "schedules[0]:"),
        (json!({"split": {"weights": [["v1", "90"], ["v2", "5"]]}}), "split: weights of the split sum to 95"),
        (json!({"split": {"weights": [["v1", 50], ["v2", "fifty"]]}}), "split.weights[1]:"),
        (json!({"promoted": 2}), "promoted must be a string"),
        (json!({"pinz": []}), "unknown field 'pinz'"),
    ];
    for (document, expected) in cases {
        let err = rules_from_json(&document).unwrap_err();
        assert!(err.contains(expected), "{document}: {err}");
        assert!(!err.contains('\n'));
    }
}

#[tokio::test]
async fn a_policy_change_is_stored_and_audited_with_before_and_after() {
    for store in every_backend("policy").await {
        let (rules, revision) = store.load_policy().await.unwrap();
        assert!(rules.flows().next().is_none());
        assert_eq!(revision, 0);

        let t1 = Timestamp::parse_rfc3339("2026-11-25T10:00:00Z").unwrap();
        let first = store.change_policy("digital_certificate", &every_kind(), "cli:ana", "set", "canary for the rewrite", t1).await.unwrap();
        assert_eq!((first.actor.as_str(), first.action.as_str(), first.reason.as_str(), first.before.is_none()), ("cli:ana", "set", "canary for the rewrite", true));
        assert_eq!(first.after, Some(rules_to_json(&every_kind())));
        let (rules, revision) = store.load_policy().await.unwrap();
        assert_eq!(rules.get("digital_certificate"), Some(&every_kind()));
        assert_eq!(revision, first.seq);

        let t2 = Timestamp::parse_rfc3339("2026-11-25T11:00:00Z").unwrap();
        let cleared = store.change_policy("digital_certificate", &FlowRules::default(), "ops-token", "clear", "rollback", t2).await.unwrap();
        assert_eq!(cleared.before, first.after);
        assert_eq!(cleared.after, None);
        let (rules, revision) = store.load_policy().await.unwrap();
        assert!(rules.get("digital_certificate").is_none());
        assert!(revision > first.seq);

        store.record_deploy(&json!({"flows": []}), "serve started", t2).await.unwrap();
        let all = store.audit(None, None, None).await.unwrap();
        assert_eq!(all.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), vec!["set", "clear", "deploy"]);
        let billing = store.audit(Some("billing"), None, None).await.unwrap();
        assert_eq!(billing.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), vec!["deploy"], "deploys concern every flow");
        let window = store.audit(Some("digital_certificate"), Some(t1), Some(t2)).await.unwrap();
        assert_eq!(window.len(), 1);
        assert_eq!(window[0].seq, first.seq);
    }
}
