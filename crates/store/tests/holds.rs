//! Holds and their Chatwoot queue on every backend: a hold is written with
//! its turn, extended rather than doubled, given back, released by hand
//! with its audit record; the queue claims, retries and finishes jobs;
//! echoes of our own sends are recognised.

use std::sync::Arc;

use switchyard_engine::engine::{Engine, EngineConfig};
use switchyard_engine::flow::{Lifecycle, VersionDecl};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::kinds::Say;
use switchyard_engine::queue::{InboxEntry, InboxKind, Queue};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::store::Store;
use switchyard_engine::time::Timestamp;
use switchyard_store::holds::{DeskRequest, Echo, HoldCause, HoldStart};
use switchyard_store::testing::every_backend;

fn engine() -> Engine {
    let flow = VersionDecl::new("unknown", 1, Lifecycle::Active).texts("[hi]\nOlá\n[handoff]\nhumano\n").entry("hi").step("hi", Say::finish("hi"));
    let registry = Arc::new(Registry::new(vec![flow]).unwrap());
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    Engine::new(registry, resolver, EngineConfig::default()).unwrap()
}

fn operator(id: &str, contact: &str, at: i64) -> InboxEntry {
    InboxEntry {
        instance: InstanceId::parse("vendas").unwrap(),
        contact: Contact::parse(contact).unwrap(),
        message_id: id.to_owned(),
        reply_to: contact.to_owned(),
        kind: InboxKind::Operator,
        sent_at: Some(Timestamp::from_millis(at)),
        received_at: Timestamp::from_millis(at),
    }
}

#[tokio::test]
async fn a_hold_is_written_with_its_turn_extended_not_doubled_and_given_back() {
    let engine = engine();
    for store in every_backend("holds").await {
        let backend = store.backend();
        let instance = InstanceId::parse("vendas").unwrap();
        let contact = Contact::parse("5511900000881").unwrap();
        for (id, at) in [("A1", 10_000), ("A2", 20_000)] {
            store.accept(&operator(id, contact.as_str(), at)).await.unwrap();
            let pending = store.next_pending(&instance, &contact).await.unwrap().unwrap();
            let now = Timestamp::from_millis(at);
            let turn = engine.takeover(store.contact_state(&instance, &contact).await.unwrap(), &instance, &contact, now);
            let hold = HoldStart { cause: HoldCause::Takeover, at: now, until: turn.handoff_until.unwrap(), flow: None, version: None, desk: None };
            store.commit_inbound_holding(&turn, &pending, contact.as_str(), &hold).await.unwrap();
        }
        assert!(store.contact_state(&instance, &contact).await.unwrap().handoff_until.is_some(), "{backend}");
        let figures = store.hold_figures(Timestamp::from_millis(0), Timestamp::from_millis(1_000_000), Timestamp::from_millis(30_000)).await.unwrap();
        assert_eq!((figures.takeovers, figures.handoffs, figures.returned), (1, 0, 0), "{backend}: the second takeover extends the first hold");
        assert_eq!(store.held_instances(&contact, Timestamp::from_millis(30_000)).await.unwrap(), ["vendas"], "{backend}");

        assert!(store.give_back(&instance, &contact, Timestamp::from_millis(70_000)).await.unwrap(), "{backend}");
        assert!(!store.give_back(&instance, &contact, Timestamp::from_millis(71_000)).await.unwrap(), "{backend}: nothing left to give back");
        assert!(store.contact_state(&instance, &contact).await.unwrap().handoff_until.is_none(), "{backend}");
        let figures = store.hold_figures(Timestamp::from_millis(0), Timestamp::from_millis(1_000_000), Timestamp::from_millis(80_000)).await.unwrap();
        assert_eq!((figures.returned, figures.held_millis), (1, 60_000), "{backend}: on hold from 10 s to 70 s");
    }
}

#[tokio::test]
async fn the_chatwoot_queue_claims_retries_and_finishes_and_echoes_are_recognised() {
    let engine = engine();
    for store in every_backend("desk").await {
        let backend = store.backend();
        let instance = InstanceId::parse("vendas").unwrap();
        let contact = Contact::parse("5511900000882").unwrap();
        store.accept(&operator("D1", contact.as_str(), 10_000)).await.unwrap();
        let pending = store.next_pending(&instance, &contact).await.unwrap().unwrap();
        let now = Timestamp::from_millis(10_000);
        let turn = engine.takeover(store.contact_state(&instance, &contact).await.unwrap(), &instance, &contact, now);
        let desk = Some(DeskRequest { status: "pending".to_owned(), note: "Fluxo: billing@v2".to_owned() });
        let hold = HoldStart { cause: HoldCause::Handoff, at: now, until: turn.handoff_until.unwrap(), flow: Some("billing".to_owned()), version: Some(2), desk };
        store.commit_inbound_holding(&turn, &pending, contact.as_str(), &hold).await.unwrap();

        let jobs = store.desk_due(Timestamp::from_millis(10_000), 60_000, 10).await.unwrap();
        assert_eq!(jobs.len(), 1, "{backend}");
        assert_eq!((jobs[0].status.as_str(), jobs[0].note.as_str(), jobs[0].attempts, jobs[0].step), ("pending", "Fluxo: billing@v2", 1, 0), "{backend}");
        assert!(store.desk_due(Timestamp::from_millis(10_001), 60_000, 10).await.unwrap().is_empty(), "{backend}: claimed");
        store.desk_progress(jobs[0].seq, 1, Some(41)).await.unwrap();
        store.desk_retry(jobs[0].seq, Timestamp::from_millis(12_000), "chatwoot POST: HTTP 503").await.unwrap();
        assert!(store.desk_due(Timestamp::from_millis(11_999), 60_000, 10).await.unwrap().is_empty(), "{backend}: not before its retry");
        let again = store.desk_due(Timestamp::from_millis(12_000), 60_000, 10).await.unwrap();
        assert_eq!((again[0].attempts, again[0].step, again[0].conversation), (2, 1, Some(41)), "{backend}: resumes where it stopped");
        store.desk_done(again[0].seq, Timestamp::from_millis(12_500), None).await.unwrap();
        assert!(store.desk_due(Timestamp::from_millis(999_999), 60_000, 10).await.unwrap().is_empty(), "{backend}: done");

        // Links and echoes.
        store.link_chatwoot(&instance, &contact, 41, Some(3), now).await.unwrap();
        store.link_chatwoot(&instance, &contact, 42, None, now).await.unwrap();
        assert_eq!(store.chatwoot_link(&instance, &contact).await.unwrap(), Some(42), "{backend}");
        assert_eq!(store.chatwoot_contacts(42).await.unwrap(), [("vendas".to_owned(), contact.as_str().to_owned())], "{backend}");
        assert_eq!(store.echo_of(&instance, &contact, "3EB0NOTOURS").await.unwrap(), Echo::Theirs, "{backend}");
    }
}

#[tokio::test]
async fn a_release_by_hand_is_audited_in_its_transaction_and_the_live_list_says_the_oldest() {
    let engine = engine();
    for store in every_backend("release").await {
        let backend = store.backend();
        let instance = InstanceId::parse("vendas").unwrap();
        let (first, second) = (Contact::parse("5511900000883").unwrap(), Contact::parse("5511900000884").unwrap());
        for (id, contact, at) in [("R1", &second, 20_000), ("R2", &first, 10_000)] {
            store.accept(&operator(id, contact.as_str(), at)).await.unwrap();
            let pending = store.next_pending(&instance, contact).await.unwrap().unwrap();
            let now = Timestamp::from_millis(at);
            let turn = engine.takeover(store.contact_state(&instance, contact).await.unwrap(), &instance, contact, now);
            let hold = HoldStart { cause: HoldCause::Takeover, at: now, until: turn.handoff_until.unwrap(), flow: None, version: None, desk: None };
            store.commit_inbound_holding(&turn, &pending, contact.as_str(), &hold).await.unwrap();
        }
        let now = Timestamp::from_millis(30_000);
        let list = store.live_holds(now, 1).await.unwrap();
        assert_eq!((list.count, list.oldest, list.holds.len()), (2, Some(Timestamp::from_millis(10_000)), 1), "{backend}: both counted, one listed");
        assert_eq!((&list.holds[0].contact, list.holds[0].since, list.holds[0].cause.as_deref()), (&first, Some(Timestamp::from_millis(10_000)), Some("takeover")), "{backend}: the longest-running first");

        let revision = store.policy_revision().await.unwrap();
        let seq = store.release_hold(&instance, &first, "ana", "customer asked for the bot", now).await.unwrap();
        let seq = seq.unwrap_or_else(|| panic!("{backend}: a hold was released"));
        assert!(seq > revision, "{backend}: the audit record is appended");
        assert_eq!(store.release_hold(&instance, &first, "ana", "again", now).await.unwrap(), None, "{backend}: nothing left, nothing audited");
        let records = store.audit(None, None, None).await.unwrap();
        let record = records.iter().find(|record| record.seq == seq).expect("the release is in the audit log");
        assert_eq!((record.actor.as_str(), record.action.as_str(), record.reason.as_str(), record.flow.as_deref()), ("ana", "release", "customer asked for the bot", None), "{backend}");
        assert_eq!(record.after.as_ref().unwrap()["contact"], first.as_str(), "{backend}: the audit says who was released");
        assert_eq!(records.iter().filter(|record| record.action == "release").count(), 1, "{backend}");
        assert!(store.contact_state(&instance, &first).await.unwrap().handoff_until.is_none(), "{backend}: the bot answers again");
        let figures = store.hold_figures(Timestamp::from_millis(0), Timestamp::from_millis(1_000_000), Timestamp::from_millis(40_000)).await.unwrap();
        assert_eq!((figures.takeovers, figures.released), (2, 1), "{backend}: the hold row ended by release");
        let list = store.live_holds(now, 10).await.unwrap();
        assert_eq!((list.count, list.oldest, list.holds.len()), (1, Some(Timestamp::from_millis(20_000)), 1), "{backend}");
    }
}

#[tokio::test]
async fn a_turn_without_an_inbox_entry_is_committed_with_its_hold_on_every_backend() {
    // `chat` and `simulate` commit turns with no inbox entry: a handoff's
    // hold row (cause, start) goes with the turn, as `serve` writes it.
    let engine = engine();
    for store in every_backend("holding").await {
        let backend = store.backend();
        let instance = InstanceId::parse("vendas").unwrap();
        let contact = Contact::parse("5511900000884").unwrap();
        for at in [10_000, 20_000] {
            let now = Timestamp::from_millis(at);
            let turn = engine.takeover(store.contact_state(&instance, &contact).await.unwrap(), &instance, &contact, now);
            let hold = HoldStart::handoff_of(&turn, now).expect("the turn holds the contact");
            assert_eq!((hold.cause, hold.at, Some(hold.until)), (HoldCause::Handoff, now, turn.handoff_until));
            store.commit_holding(&turn, &hold).await.unwrap();
        }
        assert!(store.contact_state(&instance, &contact).await.unwrap().handoff_until.is_some(), "{backend}: the bot is silent");
        let live = store.live_holds(Timestamp::from_millis(30_000), 10).await.unwrap();
        assert_eq!((live.count, live.oldest), (1, Some(Timestamp::from_millis(10_000))), "{backend}: the second hold extends the first");
        assert_eq!((live.holds[0].cause.as_deref(), live.holds[0].since), (Some("handoff"), Some(Timestamp::from_millis(10_000))), "{backend}");
        let figures = store.hold_figures(Timestamp::from_millis(0), Timestamp::from_millis(1_000_000), Timestamp::from_millis(30_000)).await.unwrap();
        assert_eq!((figures.handoffs, figures.takeovers), (1, 0), "{backend}");
    }
}
