//! Each Evolution instance's last `connection.update`, on every backend:
//! the newest update wins, a delayed older one is dropped, and `since`
//! moves only when the state changes.

use switchyard_engine::ids::InstanceId;
use switchyard_engine::time::Timestamp;
use switchyard_store::testing::every_backend;

#[tokio::test]
async fn the_newest_connection_update_per_instance_is_kept_with_when_its_state_began() {
    for store in every_backend("connections").await {
        let backend = store.backend();
        let (loja, vendas) = (InstanceId::parse("loja").unwrap(), InstanceId::parse("vendas").unwrap());
        assert!(store.connections().await.unwrap().is_empty(), "{backend}");
        let at = Timestamp::from_millis;
        store.record_connection(&vendas, "open", Some(200), at(1_000)).await.unwrap();
        store.record_connection(&loja, "connecting", None, at(2_000)).await.unwrap();
        store.record_connection(&loja, "close", Some(401), at(3_000)).await.unwrap();
        store.record_connection(&loja, "close", Some(428), at(5_000)).await.unwrap();
        // A retry of an older delivery arrives late: it changes nothing.
        store.record_connection(&loja, "open", Some(200), at(4_000)).await.unwrap();
        let connections = store.connections().await.unwrap();
        let summary: Vec<_> = connections.iter().map(|c| (c.instance.as_str(), c.state.as_str(), c.status_reason, c.heard_at, c.since)).collect();
        assert_eq!(summary, [("loja", "close", Some(428), at(5_000), at(3_000)), ("vendas", "open", Some(200), at(1_000), at(1_000))], "{backend}");
        store.record_connection(&loja, "open", Some(200), at(6_000)).await.unwrap();
        let loja_now = store.connections().await.unwrap().into_iter().find(|c| c.instance == loja).unwrap();
        assert_eq!((loja_now.state.as_str(), loja_now.since), ("open", at(6_000)), "{backend}: a new state starts its own since");
    }
}
