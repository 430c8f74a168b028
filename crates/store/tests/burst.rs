//! Debounce merges on every backend: a turn computed from an entry that a
//! merge changed meanwhile (another process debounced the contact) must not
//! commit, or the merged messages would be lost.

use std::sync::Arc;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound};
use switchyard_engine::flow::{Lifecycle, VersionDecl};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::kinds::Say;
use switchyard_engine::queue::{InboxEntry, InboxKind, Queue};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::Timestamp;
use switchyard_store::testing::every_backend;

fn engine() -> Engine {
    let flow = VersionDecl::new("unknown", 1, Lifecycle::Active).texts("[hi]\nOlá\n[handoff]\nhumano\n").entry("hi").step("hi", Say::finish("hi"));
    let registry = Arc::new(Registry::new(vec![flow]).unwrap());
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    Engine::new(registry, resolver, EngineConfig::default()).unwrap()
}

fn text(id: &str, body: &str, at: i64) -> InboxEntry {
    InboxEntry {
        instance: InstanceId::parse("vendas").unwrap(),
        contact: Contact::parse("5511900000777").unwrap(),
        message_id: id.to_owned(),
        reply_to: "5511900000777".to_owned(),
        kind: InboxKind::Customer(Content::Text(body.to_owned())),
        sent_at: Some(Timestamp::from_millis(at)),
        received_at: Timestamp::from_millis(at),
    }
}

#[tokio::test]
async fn a_turn_on_an_entry_merged_meanwhile_is_refused_and_the_burst_is_answered() {
    let engine = engine();
    for store in every_backend("burst").await {
        let (instance, contact) = (InstanceId::parse("vendas").unwrap(), Contact::parse("5511900000777").unwrap());
        store.accept(&text("B1", "oi", 1_000)).await.unwrap();
        store.accept(&text("B2", "quero meu boleto", 2_000)).await.unwrap();
        // Process X read B1 and computes its turn...
        let stale = store.next_pending(&instance, &contact).await.unwrap().unwrap();
        let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text("oi".to_owned()) };
        let turn = engine.turn(store.contact_state(&instance, &contact).await.unwrap(), &inbound, Timestamp::from_millis(3_000));
        // ...while process Y debounces the contact and merges the burst into B1.
        let burst = store.pending_burst(&instance, &contact).await.unwrap();
        store.merge_burst(&burst.iter().map(|p| p.seq).collect::<Vec<_>>(), "oi\nquero meu boleto").await.unwrap();
        let refused = store.commit_inbound(&turn, &stale, "x").await;
        assert!(matches!(refused, Err(StoreError::Conflict(_))), "{}: {refused:?}", store.backend());
        // Redone from the merged entry, the whole burst is one turn.
        let merged = store.next_pending(&instance, &contact).await.unwrap().unwrap();
        assert_eq!(merged.entry.kind, InboxKind::Customer(Content::Text("oi\nquero meu boleto".to_owned())));
        let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text("oi\nquero meu boleto".to_owned()) };
        let turn = engine.turn(store.contact_state(&instance, &contact).await.unwrap(), &inbound, Timestamp::from_millis(3_000));
        store.commit_inbound(&turn, &merged, "x").await.unwrap();
        assert!(store.next_pending(&instance, &contact).await.unwrap().is_none(), "{}", store.backend());
    }
}
