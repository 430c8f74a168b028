//! The contract every [`Store`] implementation passes. Each function is one
//! test case over a fresh, empty store; the backends' test files call them
//! all through the `conformance_suite!` macro (see `tests/conformance.rs`).

use std::sync::Arc;
use std::time::Duration;

use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound, Reply};
use switchyard_engine::event::EventKind;
use switchyard_engine::flow::{Lifecycle, VersionDecl};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::kinds::{Ask, Menu, Say, To};
use switchyard_engine::registry::Registry;
use switchyard_engine::resolve::{NoRules, Overrides, Reason, Resolver};
use switchyard_engine::service::Conversations;
use switchyard_engine::session::{Outcome, Session};
use switchyard_engine::queue::{Accepted, InboxEntry, InboxKind, Queue};
use switchyard_engine::store::{Store, StoreError};
use switchyard_engine::time::{Clock, Timestamp};

/// Every conformance case, for the macro that instantiates them per backend.
#[macro_export]
macro_rules! conformance_suite {
    // `$open` yields `Option<(store, guard)>`: `None` skips (a backend not
    // available on this machine, which the opener reports); the guard (e.g.
    // the test's PostgreSQL schema, dropped with it) lives as long as the case.
    (optional $open:expr) => {
        $crate::conformance_suite!(@cases $open;
            a_committed_turn_reads_back_field_for_field,
            a_contact_has_at_most_one_live_session,
            a_stale_revision_is_refused_and_changes_nothing,
            an_ended_session_cannot_be_updated_again,
            expired_lists_due_live_sessions_oldest_first_up_to_the_limit,
            a_moved_expiry_is_due_exactly_at_its_new_time,
            history_is_newest_first_and_events_keep_their_order,
            a_handoff_hold_is_stored_and_renewed,
            contacts_on_different_instances_are_separate,
            a_full_conversation_survives_reopening_through_the_service,
            the_inbox_drops_redeliveries_per_instance,
            pending_entries_come_in_customer_order_per_contact,
            processing_an_entry_queues_its_replies_exactly_once,
            the_outbox_delivers_head_of_line_per_contact_with_retries_and_failures,
            an_attempt_of_unknown_outcome_leaves_the_reply_unsure,
            a_split_assignment_is_remembered_for_later_sessions,
            classification_events_read_back_field_for_field,
            slot_events_read_back_field_for_field,
            voice_notes_attachments_and_rich_replies_read_back,
            a_stack_of_calls_survives_a_restart_in_the_same_callee_version,
        );
    };
    (@cases $open:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                if let Some((store, _guard)) = $open.await {
                    $crate::conformance::$case(&store).await;
                }
            }
        )*
    };
    ($open:expr) => {
        $crate::conformance_suite!(optional async { Some(($open.await, ())) });
    };
}

const T0: Timestamp = Timestamp::from_millis(1_795_000_000_000);

fn flows() -> Arc<Registry> {
    let entry = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[menu]\n1 loja\n[invalid]\nnão entendi\n[handoff]\natendente\n")
        .entry("menu")
        .step("menu", Menu::new("menu", "invalid").option(&["loja"], To::Flow("shop")));
    let shop = |version: u32, lifecycle: Lifecycle| {
        VersionDecl::new("shop", version, lifecycle)
            .texts("[ask]\nSeu e-mail?\n[bad]\ne-mail inválido\n[handoff]\natendente\n[done]\nObrigado, {email}!\n")
            .entry("order.ask_email")
            .step(
                "order.ask_email",
                Ask::new("ask", "email", |text| text.contains('@').then(|| text.trim().to_owned()), "bad", To::Step("order.done")),
            )
            .step("order.done", Say::finish("done"))
    };
    Arc::new(Registry::new(vec![entry, shop(1, Lifecycle::Active), shop(2, Lifecycle::Inactive)]).expect("valid"))
}

fn engine_with_split(weights: [(u32, u32); 2], memory_days: u32) -> Arc<Engine> {
    use switchyard_engine::rollout::{FlowRules, Rules, Split, Weight};
    let registry = flows();
    let split = Split::new(weights.iter().map(|(version, percent)| (Version::new(*version), Weight::percent(*percent))).collect(), None, memory_days)
        .expect("valid split");
    let mut rules = Rules::new();
    rules.set("shop", FlowRules { split: Some(split), ..FlowRules::default() });
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(rules));
    Arc::new(Engine::new(registry, resolver, EngineConfig::default()).expect("engine"))
}

fn engine(overrides: &str) -> Arc<Engine> {
    let registry = flows();
    let overrides = Overrides::parse(overrides, &registry).expect("valid");
    let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
    Arc::new(Engine::new(registry, resolver, EngineConfig::default()).expect("engine"))
}

fn instance(name: &str) -> InstanceId {
    InstanceId::parse(name).unwrap()
}

fn contact(number: &str) -> Contact {
    Contact::parse(number).unwrap()
}

fn text(instance_name: &str, number: &str, text: &str) -> Inbound {
    Inbound { instance: instance(instance_name), contact: contact(number), content: Content::Text(text.to_owned()) }
}

/// Runs one message through the engine and commits it, at `now`.
async fn send<S: Store>(store: &S, engine: &Engine, inbound: &Inbound, now: Timestamp) -> switchyard_engine::engine::Turn {
    let state = store.contact_state(&inbound.instance, &inbound.contact).await.expect("read");
    let turn = engine.turn(state, inbound, now);
    store.commit(&turn).await.expect("commit");
    turn
}

pub async fn a_committed_turn_reads_back_field_for_field<S: Queue>(store: &S) {
    let engine = engine("shop=v2");
    send(store, &engine, &text("vendas", "5511900000001", "oi"), T0).await;
    let turn = send(store, &engine, &text("vendas", "5511900000001", "loja"), T0.plus(Duration::from_secs(5))).await;
    let live = turn.live().expect("shop session").clone();

    let state = store.contact_state(&instance("vendas"), &contact("5511900000001")).await.unwrap();
    let stored = state.session.expect("live session stored");
    let mut expected = live.record().clone();
    expected.revision = 1;
    assert_eq!(stored.record(), &expected);
    assert_eq!(stored.reason(), &Reason::Override);
    assert_eq!(stored.version(), Version::new(2));
    assert_eq!(state.handoff_until, None);

    // Data with accents, quotes and an e-mail survives the round trip.
    let turn = send(store, &engine, &text("vendas", "5511900000001", "\"Zé\" <zé@exemplo.com.br>"), T0.plus(Duration::from_secs(9))).await;
    let ended = turn.ended().next().expect("completed").clone();
    let history = store.sessions_of(&instance("vendas"), &contact("5511900000001")).await.unwrap();
    let stored = history.iter().find(|s| s.id() == ended.id()).expect("in history");
    assert_eq!(stored.data().get("email"), Some("\"Zé\" <zé@exemplo.com.br>"));
    assert_eq!(stored.outcome(), Some(Outcome::Completed));
    assert_eq!(stored.ended_at(), ended.ended_at());
    assert_eq!(stored.revision(), 2);
}

pub async fn a_contact_has_at_most_one_live_session<S: Queue>(store: &S) {
    let engine = engine("");
    let inbound = text("vendas", "5511900000002", "oi");
    // Two workers read the same empty state and both start a session.
    let state_a = store.contact_state(&inbound.instance, &inbound.contact).await.unwrap();
    let state_b = store.contact_state(&inbound.instance, &inbound.contact).await.unwrap();
    let turn_a = engine.turn(state_a, &inbound, T0);
    let turn_b = engine.turn(state_b, &inbound, T0);
    store.commit(&turn_a).await.expect("first commit wins");
    let err = store.commit(&turn_b).await.expect_err("second commit must be refused");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let history = store.sessions_of(&inbound.instance, &inbound.contact).await.unwrap();
    assert_eq!(history.len(), 1);
    let events = store.events_of(turn_b.sessions[0].id()).await.unwrap();
    assert!(events.is_empty(), "a refused commit writes no events");
}

pub async fn a_stale_revision_is_refused_and_changes_nothing<S: Queue>(store: &S) {
    let engine = engine("");
    send(store, &engine, &text("vendas", "5511900000003", "oi"), T0).await;
    let stale = store.contact_state(&instance("vendas"), &contact("5511900000003")).await.unwrap();
    // Another worker moves the session on (and hands the contact to the shop).
    send(store, &engine, &text("vendas", "5511900000003", "loja"), T0.plus(Duration::from_secs(1))).await;
    // A turn computed from the stale read must not land, hold and all.
    let turn = engine.turn(stale, &text("vendas", "5511900000003", "xx"), T0.plus(Duration::from_secs(2)));
    let session_id = turn.sessions[0].id();
    let before = store.events_of(session_id).await.unwrap().len();
    let err = store.commit(&turn).await.expect_err("stale");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.events_of(session_id).await.unwrap().len(), before);
    let state = store.contact_state(&instance("vendas"), &contact("5511900000003")).await.unwrap();
    assert_eq!(state.session.unwrap().flow().as_str(), "shop");
}

pub async fn an_ended_session_cannot_be_updated_again<S: Queue>(store: &S) {
    let engine = engine("");
    send(store, &engine, &text("vendas", "5511900000004", "oi"), T0).await;
    let state = store.contact_state(&instance("vendas"), &contact("5511900000004")).await.unwrap();
    let session = state.session.clone().unwrap();
    let expire = engine.expire(session.clone(), T0.plus(Duration::from_secs(3600)));
    store.commit(&expire).await.unwrap();
    // The same expiry computed by a second sweeper is refused.
    let again = engine.expire(session, T0.plus(Duration::from_secs(3601)));
    assert!(matches!(store.commit(&again).await, Err(StoreError::Conflict(_))));
    let ended: Vec<_> = store
        .events_of(expire.sessions[0].id())
        .await
        .unwrap()
        .into_iter()
        .filter(|event| matches!(event.kind, EventKind::Ended { .. }))
        .collect();
    assert_eq!(ended.len(), 1, "one expiry recorded");
}

pub async fn expired_lists_due_live_sessions_oldest_first_up_to_the_limit<S: Queue>(store: &S) {
    let engine = engine("");
    for (idx, number) in ["5511900000011", "5511900000012", "5511900000013"].iter().enumerate() {
        send(store, &engine, &text("vendas", number, "oi"), T0.plus(Duration::from_secs(idx as u64 * 60))).await;
    }
    let ttl = Duration::from_secs(30 * 60);
    assert!(store.expired(T0.plus(ttl).minus(Duration::from_millis(1)), 10).await.unwrap().is_empty());
    let due = store.expired(T0.plus(ttl).plus(Duration::from_secs(61)), 10).await.unwrap();
    let numbers: Vec<&str> = due.iter().map(|s| s.contact().as_str()).collect();
    assert_eq!(numbers, vec!["5511900000011", "5511900000012"]);
    let limited = store.expired(T0.plus(Duration::from_secs(86_400)), 2).await.unwrap();
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0].contact().as_str(), "5511900000011");
    // Ended sessions are never due.
    store.commit(&engine.expire(due[0].clone(), T0.plus(ttl).plus(Duration::from_secs(61)))).await.unwrap();
    let due = store.expired(T0.plus(Duration::from_secs(86_400)), 10).await.unwrap();
    assert_eq!(due.len(), 2);
}

/// A turn moves its session's expiry; the session is due exactly at the new
/// time, whether the move stays within PostgreSQL's five-minute index
/// bucket, lands on a bucket's first millisecond or crosses into the next
/// bucket (T0 is 100 s into its bucket; the TTL is 30 minutes).
pub async fn a_moved_expiry_is_due_exactly_at_its_new_time<S: Queue>(store: &S) {
    let engine = engine("");
    // (contact, seconds after T0 of its second message): new expiries at
    // T0 + 1 860 s (the first one's bucket), + 2 000 s (a bucket's first
    // millisecond) and + 2 200 s (the next bucket).
    let moves = [("5511900000021", 60), ("5511900000022", 200), ("5511900000023", 400)];
    for (number, later) in moves {
        send(store, &engine, &text("vendas", number, "oi"), T0).await;
        send(store, &engine, &text("vendas", number, "???"), T0.plus(Duration::from_secs(later))).await;
    }
    let ttl = Duration::from_secs(30 * 60);
    let due_at = |at: Timestamp| async move {
        let due = store.expired(at, 10).await.unwrap();
        due.iter().map(|s| s.contact().as_str().to_owned()).collect::<Vec<_>>()
    };
    assert!(due_at(T0.plus(ttl)).await.is_empty(), "the first expiry moved for every session");
    for (idx, (_, later)) in moves.iter().enumerate() {
        let new_expiry = T0.plus(ttl).plus(Duration::from_secs(*later));
        let expected: Vec<String> = moves[..idx].iter().map(|(number, _)| (*number).to_owned()).collect();
        assert_eq!(due_at(new_expiry.minus(Duration::from_millis(1))).await, expected, "a millisecond before {later} s");
        let expected: Vec<String> = moves[..=idx].iter().map(|(number, _)| (*number).to_owned()).collect();
        assert_eq!(due_at(new_expiry).await, expected, "at {later} s");
    }
}

pub async fn history_is_newest_first_and_events_keep_their_order<S: Queue>(store: &S) {
    let engine = engine("");
    let number = "5511900000021";
    send(store, &engine, &text("vendas", number, "oi"), T0).await;
    let turn = send(store, &engine, &text("vendas", number, "loja"), T0.plus(Duration::from_secs(1))).await;
    let history = store.sessions_of(&instance("vendas"), &contact(number)).await.unwrap();
    let flows: Vec<&str> = history.iter().map(|s| s.flow().as_str()).collect();
    assert_eq!(flows, vec!["shop", "unknown"]);
    let shop = turn.live().unwrap().id();
    let kinds: Vec<&str> = store.events_of(shop).await.unwrap().iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, vec!["started", "step_entered"]);
    let router = history[1].id();
    let events = store.events_of(router).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, vec!["started", "step_entered", "completed"]);
    assert_eq!(events[0].kind, EventKind::Started { reason: Reason::Active, fingerprint: history[1].fingerprint().clone() });
    assert_eq!(events[2].kind, EventKind::Ended { outcome: Outcome::Completed, detail: Some("handover:shop".to_owned()) });
    assert_eq!(events[2].step.as_ref().map(|s| s.as_str()), Some("menu"));
}

pub async fn a_handoff_hold_is_stored_and_renewed<S: Queue>(store: &S) {
    let engine = engine("");
    let number = "5511900000031";
    send(store, &engine, &text("vendas", number, "oi"), T0).await;
    send(store, &engine, &text("vendas", number, "???"), T0.plus(Duration::from_secs(1))).await;
    let turn = send(store, &engine, &text("vendas", number, "!!!"), T0.plus(Duration::from_secs(2))).await;
    let until = turn.handoff_until.expect("handed off");
    let state = store.contact_state(&instance("vendas"), &contact(number)).await.unwrap();
    assert_eq!(state.handoff_until, Some(until));
    assert!(state.session.is_none());
    // After the hold, a second handoff renews it.
    let later = until.plus(Duration::from_secs(1));
    send(store, &engine, &text("vendas", number, "oi"), later).await;
    send(store, &engine, &text("vendas", number, "???"), later).await;
    let turn = send(store, &engine, &text("vendas", number, "!!!"), later).await;
    let state = store.contact_state(&instance("vendas"), &contact(number)).await.unwrap();
    assert_eq!(state.handoff_until, turn.handoff_until);
    assert!(state.handoff_until > Some(until));
    // Releasing the hold lets the bot answer at once; a second release finds none.
    assert!(store.release_handoff(&instance("vendas"), &contact(number)).await.unwrap());
    assert!(!store.release_handoff(&instance("vendas"), &contact(number)).await.unwrap());
    let turn = send(store, &engine, &text("vendas", number, "oi"), later).await;
    assert!(!turn.silenced);
    assert!(store.contact_state(&instance("vendas"), &contact(number)).await.unwrap().handoff_until.is_none());
}

pub async fn contacts_on_different_instances_are_separate<S: Queue>(store: &S) {
    let engine = engine("");
    let number = "5511900000041";
    send(store, &engine, &text("vendas", number, "oi"), T0).await;
    send(store, &engine, &text("suporte", number, "oi"), T0).await;
    let sales = store.contact_state(&instance("vendas"), &contact(number)).await.unwrap();
    let support = store.contact_state(&instance("suporte"), &contact(number)).await.unwrap();
    assert_ne!(sales.session.unwrap().id(), support.session.unwrap().id());
}

struct FixedClock(Timestamp);
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

pub async fn a_full_conversation_survives_reopening_through_the_service<S: Queue + Clone>(store: &S) {
    let number = "5511900000051";
    let first = Conversations::new(engine(""), store.clone(), FixedClock(T0));
    first.handle(&text("vendas", number, "oi")).await.unwrap();
    first.handle(&text("vendas", number, "1")).await.unwrap();
    // A redeploy with another override: the live session stays on v1.
    let second = Conversations::new(engine("shop=v2"), store.clone(), FixedClock(T0.plus(Duration::from_secs(60))));
    let turn = second.handle(&text("vendas", number, "ana@exemplo.com")).await.unwrap();
    assert!(turn.replies.iter().any(|r| r.text == "Obrigado, ana@exemplo.com!"));
    let ended = turn.ended().next().unwrap();
    assert_eq!((ended.version(), ended.outcome()), (Version::new(1), Some(Outcome::Completed)));
    // The sweeper of a later process expires an abandoned session exactly once.
    second.handle(&text("vendas", number, "oi")).await.unwrap();
    let third = Conversations::new(engine(""), store.clone(), FixedClock(T0.plus(Duration::from_secs(3600))));
    let swept = third.sweep(100).await.unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].sessions[0].outcome(), Some(Outcome::Expired));
    assert_eq!(swept[0].sessions[0].step().as_str(), "menu");
    assert!(third.sweep(100).await.unwrap().is_empty());
}

fn entry(instance_name: &str, number: &str, message_id: &str, text_or_operator: Option<&str>, sent_at: Option<i64>) -> InboxEntry {
    InboxEntry {
        instance: instance(instance_name),
        contact: contact(number),
        message_id: message_id.to_owned(),
        reply_to: number.to_owned(),
        kind: match text_or_operator {
            Some(text) => InboxKind::Customer(Content::Text(text.to_owned())),
            None => InboxKind::Operator,
        },
        sent_at: sent_at.map(|secs| Timestamp::from_millis(secs * 1000)),
        received_at: T0,
    }
}

pub async fn the_inbox_drops_redeliveries_per_instance<S: Queue>(store: &S) {
    let first = entry("vendas", "5511900000061", "MSG1", Some("oi"), Some(1_795_000_000));
    let Accepted::New(seq) = store.accept(&first).await.unwrap() else { panic!("first delivery is new") };
    assert_eq!(store.accept(&first).await.unwrap(), Accepted::Duplicate);
    // Even with other content (a relay that re-encoded it), the id decides.
    let mut again = first.clone();
    again.kind = InboxKind::Customer(Content::Text("oi!!".to_owned()));
    assert_eq!(store.accept(&again).await.unwrap(), Accepted::Duplicate);
    // The same message id on another instance is another message.
    let other = entry("suporte", "5511900000061", "MSG1", Some("oi"), None);
    assert!(matches!(store.accept(&other).await.unwrap(), Accepted::New(other_seq) if other_seq != seq));
    let pending = store.next_pending(&instance("vendas"), &contact("5511900000061")).await.unwrap().unwrap();
    assert_eq!(pending.seq, seq);
    assert_eq!(pending.entry, first);
    // Operator entries round-trip too.
    let operator = entry("vendas", "5511900000062", "OP1", None, None);
    store.accept(&operator).await.unwrap();
    let pending = store.next_pending(&instance("vendas"), &contact("5511900000062")).await.unwrap().unwrap();
    assert_eq!(pending.entry.kind, InboxKind::Operator);
}

pub async fn pending_entries_come_in_customer_order_per_contact<S: Queue>(store: &S) {
    // Arrival order B2, A1, B1: the customer's clock puts B1 before B2.
    store.accept(&entry("vendas", "5511900000072", "B2", Some("segunda"), Some(1_795_000_010))).await.unwrap();
    store.accept(&entry("vendas", "5511900000071", "A1", Some("oi"), Some(1_795_000_005))).await.unwrap();
    store.accept(&entry("vendas", "5511900000072", "B1", Some("primeira"), Some(1_795_000_001))).await.unwrap();
    let contacts: Vec<String> = store.pending_contacts(10).await.unwrap().into_iter().map(|(_, c)| c.as_str().to_owned()).collect();
    assert_eq!(contacts, vec!["5511900000072", "5511900000071"]);
    assert_eq!(store.pending_contacts(1).await.unwrap().len(), 1);
    let next = store.next_pending(&instance("vendas"), &contact("5511900000072")).await.unwrap().unwrap();
    assert_eq!(next.entry.message_id, "B1");
    assert!(store.next_pending(&instance("vendas"), &contact("5511900000079")).await.unwrap().is_none());
}

pub async fn processing_an_entry_queues_its_replies_exactly_once<S: Queue>(store: &S) {
    let engine = engine("");
    let inbound = entry("vendas", "5511900000081", "P1", Some("oi"), None);
    store.accept(&inbound).await.unwrap();
    let pending = store.next_pending(&inbound.instance, &inbound.contact).await.unwrap().unwrap();
    let state = store.contact_state(&inbound.instance, &inbound.contact).await.unwrap();
    let message = text("vendas", "5511900000081", "oi");
    let turn = engine.turn(state.clone(), &message, T0);
    assert!(!turn.replies.is_empty());
    store.commit_inbound(&turn, &pending, "5511900000081@s.whatsapp.net").await.unwrap();
    assert!(store.next_pending(&inbound.instance, &inbound.contact).await.unwrap().is_none());
    assert!(store.pending_contacts(10).await.unwrap().is_empty());
    let depth = store.outbox_depth().await.unwrap();
    assert_eq!(depth, turn.replies.len() as u64);

    // A second worker that processed the same entry from the same state is refused whole.
    let again = engine.turn(state, &message, T0);
    let err = store.commit_inbound(&again, &pending, "x").await.expect_err("processed once");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.outbox_depth().await.unwrap(), depth);
    assert_eq!(store.sessions_of(&inbound.instance, &inbound.contact).await.unwrap().len(), 1);

    let due = store.due_outbox(T0, 10).await.unwrap();
    assert_eq!(due.len(), 1, "one contact, head of line only");
    assert_eq!(due[0].reply_to, "5511900000081@s.whatsapp.net");
    assert_eq!(due[0].text, turn.replies[0].text);
    assert_eq!(due[0].session, turn.replies[0].session);
    assert_eq!(due[0].request_id.as_deref(), Some("P1"), "the reply carries the message that caused it");
}

/// A voice note keeps its transcript (or none), an attachment its
/// reference, and a reply its file or menu options, through the inbox and
/// the outbox (issue #18).
pub async fn voice_notes_attachments_and_rich_replies_read_back<S: Queue>(store: &S) {
    use switchyard_engine::media::{Attachment, FileKind, OutgoingFile, Rich};
    let file = Attachment {
        message_id: "IMG1".to_owned(),
        kind: "image".to_owned(),
        mimetype: Some("image/jpeg".to_owned()),
        file_name: None,
        caption: Some("comprovante".to_owned()),
    };
    let kinds = [
        ("5511900000091", InboxKind::Customer(Content::Audio { transcript: Some("quero a segunda via".to_owned()) })),
        ("5511900000092", InboxKind::Customer(Content::Audio { transcript: None })),
        ("5511900000093", InboxKind::Customer(Content::Attachment(file))),
    ];
    for (number, kind) in kinds {
        let mut inbound = entry("vendas", number, &format!("M{number}"), None, None);
        inbound.kind = kind;
        store.accept(&inbound).await.unwrap();
        let pending = store.next_pending(&inbound.instance, &inbound.contact).await.unwrap().unwrap();
        assert_eq!(pending.entry, inbound, "{number}");
    }

    let engine = engine("");
    let number = "5511900000094";
    let inbound = entry("vendas", number, "R1", Some("oi"), None);
    store.accept(&inbound).await.unwrap();
    let pending = store.next_pending(&inbound.instance, &inbound.contact).await.unwrap().unwrap();
    let state = store.contact_state(&inbound.instance, &inbound.contact).await.unwrap();
    let mut turn = engine.turn(state, &text("vendas", number, "oi"), T0);
    let pdf = Rich::File(OutgoingFile {
        kind: FileKind::Document,
        url: "https://certifacil.example/boleto/1a2b.pdf".to_owned(),
        mimetype: "application/pdf".to_owned(),
        file_name: Some("boleto-1a2b.pdf".to_owned()),
    });
    let menu = Rich::Choices(vec!["1. Segunda via".to_owned(), "2. Parcelar".to_owned()].into());
    let first = turn.replies[0].clone();
    turn.replies = vec![
        Reply { rich: Some(pdf.clone()), ..first.clone() },
        Reply { rich: Some(menu.clone()), ..first.clone() },
        Reply { rich: None, ..first },
    ];
    store.commit_inbound(&turn, &pending, number).await.unwrap();
    let mut read = Vec::new();
    for _ in 0..3 {
        let due = store.due_outbox(T0, 10).await.unwrap();
        let head = due.into_iter().find(|outgoing| outgoing.contact.as_str() == number).unwrap();
        read.push(head.rich.clone());
        store.outbox_sent(head.seq, Some("X"), T0).await.unwrap();
    }
    assert_eq!(read, vec![Some(pdf), Some(menu), None]);
}

pub async fn the_outbox_delivers_head_of_line_per_contact_with_retries_and_failures<S: Queue>(store: &S) {
    let engine = engine("");
    // Two contacts, two turns each: the router's menu, then the shop's question.
    for number in ["5511900000091", "5511900000092"] {
        for (idx, line) in ["oi", "loja"].iter().enumerate() {
            let id = format!("{number}-{idx}");
            store.accept(&entry("vendas", number, &id, Some(line), None)).await.unwrap();
            let pending = store.next_pending(&instance("vendas"), &contact(number)).await.unwrap().unwrap();
            let state = store.contact_state(&instance("vendas"), &contact(number)).await.unwrap();
            let turn = engine.turn(state, &text("vendas", number, line), T0);
            store.commit_inbound(&turn, &pending, number).await.unwrap();
        }
    }
    assert_eq!(store.outbox_depth().await.unwrap(), 4);
    let due = store.due_outbox(T0, 10).await.unwrap();
    let heads: Vec<(&str, &str)> = due.iter().map(|o| (o.contact.as_str(), o.text.as_str())).collect();
    assert_eq!(heads, vec![("5511900000091", "1 loja"), ("5511900000092", "1 loja")]);

    // Contact 91's head fails transiently: its next reply must wait behind it.
    let retry_at = T0.plus(Duration::from_secs(5));
    store.outbox_retry(due[0].seq, retry_at, "503").await.unwrap();
    store.outbox_sent(due[1].seq, Some("3EB0ABC"), T0).await.unwrap();
    let due_now = store.due_outbox(T0.plus(Duration::from_secs(1)), 10).await.unwrap();
    let heads: Vec<(&str, &str)> = due_now.iter().map(|o| (o.contact.as_str(), o.text.as_str())).collect();
    assert_eq!(heads, vec![("5511900000092", "Seu e-mail?")]);
    let due_later = store.due_outbox(retry_at, 10).await.unwrap();
    let head_91 = due_later.iter().find(|o| o.contact.as_str() == "5511900000091").unwrap();
    assert_eq!((head_91.seq, head_91.attempts), (due[0].seq, 1));

    // A permanent failure moves on and is recorded on the session.
    store.outbox_failed(head_91.seq, "number not on WhatsApp", retry_at).await.unwrap();
    let due_after = store.due_outbox(retry_at, 10).await.unwrap();
    let next_91 = due_after.iter().find(|o| o.contact.as_str() == "5511900000091").unwrap();
    assert_eq!(next_91.text, "Seu e-mail?");
    let session = head_91.session.unwrap();
    let events = store.events_of(session).await.unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::Undeliverable { reason: "number not on WhatsApp".to_owned() }), "{events:?}");
    assert_eq!(store.outbox_depth().await.unwrap(), 2);
}

/// Queues the router's menu for `number` on `vendas` (one reply).
async fn queue_menu<S: Queue>(store: &S, number: &str, id: &str) {
    let engine = engine("");
    store.accept(&entry("vendas", number, id, Some("oi"), None)).await.unwrap();
    let pending = store.next_pending(&instance("vendas"), &contact(number)).await.unwrap().unwrap();
    let state = store.contact_state(&instance("vendas"), &contact(number)).await.unwrap();
    let turn = engine.turn(state, &text("vendas", number, "oi"), T0);
    store.commit_inbound(&turn, &pending, number).await.unwrap();
}

/// The outbox remembers a send attempt before it goes out, so a reply whose
/// attempt never got an answer (a timeout, or its process stopped mid-send)
/// reads back as maybe sent, from the earliest such attempt on; a refusal
/// afterwards does not make it sure again.
pub async fn an_attempt_of_unknown_outcome_leaves_the_reply_unsure<S: Queue>(store: &S) {
    queue_menu(store, "5511900000111", "U1").await;
    let at = |secs: u64| T0.plus(Duration::from_secs(secs));
    let due = store.due_outbox(at(0), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let seq = due[0].seq;
    assert_eq!((due[0].unsure_since, due[0].attempted_at), (None, None), "never attempted: sure not sent");

    // The process stops mid-send: after the claim lapses the reply is unsure.
    assert!(store.outbox_attempt(seq, at(1)).await.unwrap());
    let due = store.due_outbox(at(100), 10).await.unwrap();
    assert_eq!((due[0].seq, due[0].unsure_since, due[0].attempted_at), (seq, Some(at(1)), Some(at(1))));

    // The next attempt times out: still unsure since the first one.
    assert!(store.outbox_attempt(seq, at(101)).await.unwrap());
    store.outbox_unsure(seq, at(110), "no answer within 10000 ms").await.unwrap();
    assert!(store.due_outbox(at(105), 10).await.unwrap().is_empty(), "waits until next_at");
    let due = store.due_outbox(at(110), 10).await.unwrap();
    assert_eq!((due[0].unsure_since, due[0].attempted_at, due[0].attempts), (Some(at(1)), None, 1));

    // A refusal says nothing about the earlier attempts.
    assert!(store.outbox_attempt(seq, at(111)).await.unwrap());
    store.outbox_retry(seq, at(120), "server error 503").await.unwrap();
    let due = store.due_outbox(at(120), 10).await.unwrap();
    assert_eq!((due[0].unsure_since, due[0].attempted_at, due[0].attempts), (Some(at(1)), None, 2));

    // Found out (or sent): done, and no longer to be attempted.
    assert!(store.outbox_attempt(seq, at(121)).await.unwrap());
    store.outbox_sent(seq, Some("3EB0FOUND"), at(122)).await.unwrap();
    assert!(!store.outbox_attempt(seq, at(123)).await.unwrap(), "a sent reply is not attempted again");
    assert!(store.due_outbox(at(200), 10).await.unwrap().is_empty());
    let (vendas, who) = (instance("vendas"), contact("5511900000111"));
    assert_eq!(store.sent_ids_since(&vendas, &who, at(122)).await.unwrap(), vec!["3EB0FOUND".to_owned()]);
    assert!(store.sent_ids_since(&vendas, &who, at(123)).await.unwrap().is_empty());
    assert!(store.sent_ids_since(&instance("other"), &who, at(0)).await.unwrap().is_empty());
}

pub async fn a_split_assignment_is_remembered_for_later_sessions<S: Queue>(store: &S) {
    let number = "5511900000101";
    // Everyone gets v2, remembered for 30 days.
    let all_v2 = engine_with_split([(1, 0), (2, 100)], 30);
    send(store, &all_v2, &text("vendas", number, "oi"), T0).await;
    let turn = send(store, &all_v2, &text("vendas", number, "loja"), T0).await;
    assert_eq!(turn.live().unwrap().version(), Version::new(2));
    assert_eq!(turn.live().unwrap().reason().name(), "split");
    assert_eq!(turn.assignments.len(), 1);
    send(store, &all_v2, &text("vendas", number, "ana@exemplo.com"), T0).await;
    let state = store.contact_state(&instance("vendas"), &contact(number)).await.unwrap();
    assert_eq!(state.assignments.iter().map(|(flow, version, _)| (flow.as_str(), *version)).collect::<Vec<_>>(), vec![("shop", Version::new(2))]);

    // The weights move everyone to v1: the remembered contact stays on v2 (on any instance).
    let all_v1 = engine_with_split([(1, 100), (2, 0)], 30);
    let later = T0.plus(Duration::from_secs(86_400));
    send(store, &all_v1, &text("suporte", number, "oi"), later).await;
    let turn = send(store, &all_v1, &text("suporte", number, "loja"), later).await;
    assert_eq!(turn.live().unwrap().version(), Version::new(2));
    assert!(turn.assignments.is_empty(), "already remembered");
    // A contact never served by the split follows the weights.
    send(store, &all_v1, &text("vendas", "5511900000102", "oi"), later).await;
    let turn = send(store, &all_v1, &text("vendas", "5511900000102", "loja"), later).await;
    assert_eq!(turn.live().unwrap().version(), Version::new(1));
    // Without memory the weights decide for everyone.
    let forgetful = engine_with_split([(1, 100), (2, 0)], 0);
    send(store, &forgetful, &text("outra", number, "oi"), later).await;
    let turn = send(store, &forgetful, &text("outra", number, "loja"), later).await;
    assert_eq!(turn.live().unwrap().version(), Version::new(1));
}

/// Cases for a store shared by several processes (`a` and `b` are two
/// handles on one database, as two `serve` processes hold): a contact is
/// worked by one process at a time, and nobody else's claim is taken.
pub async fn one_process_works_a_contact_at_a_time<S: Queue>(a: &S, b: &S) {
    let key = (instance("vendas"), contact("5511900000101"));
    a.accept(&entry("vendas", "5511900000101", "L1", Some("oi"), None)).await.unwrap();
    b.accept(&entry("vendas", "5511900000101", "L2", Some("loja"), None)).await.unwrap();
    let first = a.next_pending(&key.0, &key.1).await.unwrap().expect("a takes the contact");
    assert_eq!(first.entry.message_id, "L1");
    assert!(b.next_pending(&key.0, &key.1).await.unwrap().is_none(), "b must wait while a holds the contact");
    assert!(b.pending_contacts(10).await.unwrap().is_empty(), "b's scan skips contacts a holds");
    assert!(!b.release_contact(&key.0, &key.1).await.unwrap(), "b has nothing to give up and a is on it");

    // a processes L1 and stops; L2 (which reached b) is waiting and free.
    let engine = engine("");
    let turn = engine.turn(a.contact_state(&key.0, &key.1).await.unwrap(), &text("vendas", "5511900000101", "oi"), T0);
    a.commit_inbound(&turn, &first, "x").await.unwrap();
    assert!(a.release_contact(&key.0, &key.1).await.unwrap(), "an entry arrived meanwhile: look again");
    let next = b.next_pending(&key.0, &key.1).await.unwrap().expect("b may take it now");
    assert_eq!(next.entry.message_id, "L2", "in the customer's order");
    assert!(a.next_pending(&key.0, &key.1).await.unwrap().is_none());
}

pub async fn two_processes_racing_commit_an_entry_once<S: Queue>(a: &S, b: &S) {
    let engine = engine("");
    let key = (instance("vendas"), contact("5511900000102"));
    a.accept(&entry("vendas", "5511900000102", "R1", Some("oi"), None)).await.unwrap();
    let pending = a.next_pending(&key.0, &key.1).await.unwrap().unwrap();
    let message = text("vendas", "5511900000102", "oi");
    let turn_a = engine.turn(a.contact_state(&key.0, &key.1).await.unwrap(), &message, T0);
    let turn_b = engine.turn(b.contact_state(&key.0, &key.1).await.unwrap(), &message, T0);
    let (ra, rb) = tokio::join!(a.commit_inbound(&turn_a, &pending, "x"), b.commit_inbound(&turn_b, &pending, "x"));
    assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "exactly one commit lands: {ra:?} {rb:?}");
    assert!(matches!(ra.err().or(rb.err()), Some(StoreError::Conflict(_))));
    assert_eq!(a.outbox_depth().await.unwrap(), turn_a.replies.len() as u64, "replies queued once");
    assert_eq!(a.sessions_of(&key.0, &key.1).await.unwrap().len(), 1);
}

pub async fn a_reply_is_claimed_by_one_process<S: Queue>(a: &S, b: &S, claim: Duration) {
    let engine = engine("");
    let key = (instance("vendas"), contact("5511900000103"));
    for (id, line) in [("C1", "oi"), ("C2", "loja")] {
        a.accept(&entry("vendas", "5511900000103", id, Some(line), None)).await.unwrap();
        let pending = a.next_pending(&key.0, &key.1).await.unwrap().unwrap();
        let turn = engine.turn(a.contact_state(&key.0, &key.1).await.unwrap(), &text("vendas", "5511900000103", line), T0);
        a.commit_inbound(&turn, &pending, "x").await.unwrap();
    }
    let now = Timestamp::now_utc();
    let claimed = a.due_outbox(now, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "head of line");
    assert!(b.due_outbox(now, 10).await.unwrap().is_empty(), "a holds the contact's head reply");
    // a's send fails and is rescheduled: the claim goes with it.
    a.outbox_retry(claimed[0].seq, now, "503").await.unwrap();
    let retaken = b.due_outbox(now, 10).await.unwrap();
    assert_eq!(retaken.iter().map(|o| o.seq).collect::<Vec<_>>(), vec![claimed[0].seq]);
    // b dies holding it: after the claim lapses, a takes it over.
    assert!(a.due_outbox(now, 10).await.unwrap().is_empty());
    let later = now.plus(claim + Duration::from_secs(1));
    let taken_over = a.due_outbox(later, 10).await.unwrap();
    assert_eq!(taken_over.iter().map(|o| o.seq).collect::<Vec<_>>(), vec![claimed[0].seq]);
    a.outbox_sent(claimed[0].seq, Some("wamid.1"), later).await.unwrap();
    let next = b.due_outbox(later, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].seq > claimed[0].seq, "the contact's next reply, only after the first was sent");
}

/// `classified` events (who decided, the model's latency and tokens) are
/// stored with `Classification::encode` and read back equal.
pub async fn classification_events_read_back_field_for_field<S: Queue>(store: &S) {
    use switchyard_engine::classify::{Classification, Classifier, Usage};
    use switchyard_engine::event::{Event, EventKind};
    let engine = engine("");
    let inbound = text("vendas", "5511900000042", "oi");
    let state = store.contact_state(&inbound.instance, &inbound.contact).await.expect("read");
    let mut turn = engine.turn(state, &inbound, T0);
    let session = turn.live().expect("a session").clone();
    let decisions = [
        Classification { task: "route".to_owned(), classifier: Classifier::Keyword, answer: None, fallback: Some("timeout".to_owned()), usage: Some(Usage { latency_ms: 5000, ..Usage::default() }) },
        Classification {
            task: "details".to_owned(),
            classifier: Classifier::Model,
            answer: Some("document+email".to_owned()),
            fallback: None,
            usage: Some(Usage { latency_ms: 412, prompt_tokens: 311, completion_tokens: 18, cached: false }),
        },
        Classification { task: "route".to_owned(), classifier: Classifier::Keyword, answer: Some("renewal".to_owned()), fallback: None, usage: None },
    ];
    for decision in &decisions {
        turn.events.push(Event {
            session: session.id(),
            flow: session.flow().clone(),
            version: session.version(),
            at: T0,
            step: Some(session.step().clone()),
            kind: EventKind::Classified(decision.clone()),
        });
    }
    store.commit(&turn).await.expect("commit");
    let stored: Vec<Classification> = store
        .events_of(session.id())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|event| match event.kind {
            EventKind::Classified(decision) => Some(decision),
            _ => None,
        })
        .collect();
    assert_eq!(stored, decisions);
}

/// Form events (`slot_filled` with its source, `slot_missed` with its
/// reason) are stored with `EventKind::slot_detail` and read back equal.
pub async fn slot_events_read_back_field_for_field<S: Queue>(store: &S) {
    use switchyard_engine::event::{Event, EventKind};
    let engine = engine("");
    let inbound = text("vendas", "5511900000043", "oi");
    let state = store.contact_state(&inbound.instance, &inbound.contact).await.expect("read");
    let mut turn = engine.turn(state, &inbound, T0);
    let session = turn.live().expect("a session").clone();
    let kinds = [
        EventKind::SlotFilled { slot: "holder".to_owned(), source: "keyword".to_owned(), entering: true },
        EventKind::SlotMissed { slot: "document".to_owned(), reason: "purchase.invalid_cpf".to_owned() },
        EventKind::SlotFilled { slot: "document".to_owned(), source: "model".to_owned(), entering: false },
    ];
    for kind in &kinds {
        turn.events.push(Event {
            session: session.id(),
            flow: session.flow().clone(),
            version: session.version(),
            at: T0,
            step: Some(session.step().clone()),
            kind: kind.clone(),
        });
    }
    store.commit(&turn).await.expect("commit");
    let stored: Vec<EventKind> = store
        .events_of(session.id())
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .filter(|kind| matches!(kind, EventKind::SlotFilled { .. } | EventKind::SlotMissed { .. }))
        .collect();
    assert_eq!(stored, kinds);
}

/// A batch of send attempts (`PgStore::outbox_attempt_many`) marks only
/// the claims of the process that makes it.
pub async fn a_batch_of_attempts_marks_only_its_own_claims(a: &crate::postgres::PgStore, b: &crate::postgres::PgStore) {
    queue_menu(a, "5511900000131", "B1").await;
    queue_menu(a, "5511900000132", "B2").await;
    let now = Timestamp::now_utc();
    let seqs: Vec<i64> = a.due_outbox(now, 10).await.unwrap().iter().map(|outgoing| outgoing.seq).collect();
    assert_eq!(seqs.len(), 2);
    assert!(b.outbox_attempt_many(&seqs, now).await.unwrap().is_empty(), "not b's claims to attempt");
    assert_eq!(a.outbox_attempt_many(&seqs, now).await.unwrap(), seqs, "a's own claims, in seq order");
}

/// PostgreSQL: a claim that marks attempts (`PgStore::claim_due` for
/// unthrottled sends) marks only the replies never tried, as
/// `outbox_attempt_many` would have, and answers each reply as it was
/// before the claim: a fresh one reads as never tried; an unsure one, and
/// one whose claimant died mid-send (its attempt on record, its claim
/// lapsed), read as unsure from their first attempt and are left for the
/// check before their send.
pub async fn a_claim_with_attempts_marks_only_fresh_replies(a: &crate::postgres::PgStore, b: &crate::postgres::PgStore) {
    for (number, id) in [("5511900000151", "M1"), ("5511900000152", "M2"), ("5511900000153", "M3")] {
        queue_menu(a, number, id).await;
    }
    let now = Timestamp::now_utc();
    let claimed = a.due_outbox(now, 10).await.unwrap();
    let (fresh, unsure, lapsed) = match claimed.as_slice() {
        [first, second, third] => (first.seq, second.seq, third.seq),
        other => panic!("each contact's head, three: {other:?}"),
    };
    // All three attempted: the second's send went unanswered (unsure since
    // its attempt), the first's was refused by a 503 (both claims given
    // back), and a stopped during the third's send (its claim lapses).
    assert_eq!(a.outbox_attempt_many(&[fresh, unsure, lapsed], now).await.unwrap(), [fresh, unsure, lapsed]);
    a.outbox_unsure(unsure, now, "timeout").await.unwrap();
    a.outbox_retry(fresh, now, "503").await.unwrap();
    let row = |seq: i64| async move {
        sqlx::query_as::<_, (Option<i64>, Option<i64>, Option<String>, Option<i64>)>(
            "SELECT attempted_at, unsure_since, claimed_by, claim_until FROM outbox WHERE seq = $1",
        )
        .bind(seq)
        .fetch_one(a.pool())
        .await
        .unwrap()
    };
    let later = now.plus(crate::postgres::CLAIM + Duration::from_secs(1));
    let taken = b.claim_due(later, 10, true).await.unwrap();
    assert_eq!(taken.iter().map(|outgoing| outgoing.seq).collect::<Vec<_>>(), [fresh, unsure, lapsed], "the three heads, by seq");
    let read = |idx: usize| (taken[idx].unsure_since, taken[idx].attempted_at);
    assert_eq!(read(0), (None, None), "the fresh reply reads as never tried");
    assert_eq!(read(1), (Some(now), None), "the unsure reply keeps its first unsure attempt");
    assert_eq!(read(2), (Some(now), Some(now)), "the lapsed reply reads as unsure from its attempt");
    let until = Some(later.as_millis() + i64::try_from(crate::postgres::CLAIM.as_millis()).unwrap());
    let b_node = Some(b.node().to_owned());
    assert_eq!(row(fresh).await, (Some(later.as_millis()), None, b_node.clone(), until), "the fresh reply's attempt is on record, in b's claim");
    assert_eq!(row(unsure).await, (None, Some(now.as_millis()), b_node.clone(), until), "the unsure reply is claimed, not marked");
    assert_eq!(row(lapsed).await, (Some(now.as_millis()), None, b_node.clone(), until), "the lapsed reply is claimed, its attempt kept");
    // A live claim is not taken twice; without `attempt` nothing is marked
    // (throttled sends mark each one just before its request).
    assert!(a.claim_due(later, 10, true).await.unwrap().is_empty(), "b holds all three");
    b.outbox_retry(fresh, later, "503").await.unwrap();
    let plain = b.claim_due(later, 10, false).await.unwrap();
    assert_eq!(plain.iter().map(|outgoing| outgoing.seq).collect::<Vec<_>>(), [fresh]);
    assert_eq!(row(fresh).await.0, None, "a plain claim marks no attempt");
}

/// PostgreSQL: the accept of a new entry takes its free contact's lease
/// (a redelivery takes none); a turn gives the lease up in its own
/// transaction when nothing else of the contact waits (the processor then
/// stops without another read), and keeps it when something does: an entry
/// that reached the other process meanwhile is not left with nobody on it.
pub async fn a_turn_gives_the_lease_up_with_it_unless_more_waits(a: &crate::postgres::PgStore, b: &crate::postgres::PgStore) {
    async fn turn_of(store: &crate::postgres::PgStore, engine: &Engine, line: &str) -> (switchyard_engine::engine::Turn, switchyard_engine::queue::Pending) {
        let (pending, state) =
            store.next_pending_with_state(&instance("vendas"), &contact("5511900000141")).await.unwrap().expect("the store takes the contact");
        (engine.turn(state, &text("vendas", "5511900000141", line), T0), pending)
    }
    let engine = engine("");
    let key = (instance("vendas"), contact("5511900000141"));
    let leases = || async { sqlx::query_scalar::<_, String>("SELECT owner FROM contact_leases").fetch_all(a.pool()).await.unwrap() };
    a.accept(&entry("vendas", "5511900000141", "G1", Some("oi"), None)).await.unwrap();
    assert_eq!(leases().await, [a.node()], "the accept took the free contact's lease");
    let (turn, pending) = turn_of(a, &engine, "oi").await;
    assert!(!a.commit_inbound_releasing(&turn, &pending, "x").await.unwrap(), "nothing waits: the lease went with the turn");
    assert!(leases().await.is_empty(), "no lease left behind");
    a.accept(&entry("vendas", "5511900000141", "G1", Some("oi"), None)).await.unwrap();
    assert!(leases().await.is_empty(), "a redelivery takes no lease: nobody would process it");

    // b takes the contact at once (no lease to wait out); while b works,
    // an entry reaches a, whose processor finds the contact held.
    b.accept(&entry("vendas", "5511900000141", "G2", Some("1"), None)).await.unwrap();
    let (turn, pending) = turn_of(b, &engine, "1").await;
    a.accept(&entry("vendas", "5511900000141", "G3", Some("1"), None)).await.unwrap();
    // a's accept left b's lease alone, not even locked: a batch that locks
    // another live process's lease row while that process's batch deletes
    // it can deadlock with it.
    let locker: String = sqlx::query_scalar("SELECT xmax::TEXT FROM contact_leases").fetch_one(a.pool()).await.unwrap();
    assert_eq!(locker, "0", "b's lease row was locked by a's accept");
    assert!(a.next_pending_with_state(&key.0, &key.1).await.unwrap().is_none(), "b holds the contact");
    assert!(!a.release_contact(&key.0, &key.1).await.unwrap(), "b is on it");
    assert!(b.commit_inbound_releasing(&turn, &pending, "x").await.unwrap(), "G3 waits: b keeps the lease and looks again");
    assert!(a.next_pending_with_state(&key.0, &key.1).await.unwrap().is_none(), "still b's");
    let (turn, pending) = turn_of(b, &engine, "1").await;
    assert_eq!(pending.entry.message_id, "G3");
    assert!(!b.commit_inbound_releasing(&turn, &pending, "x").await.unwrap(), "now nothing waits");
    a.accept(&entry("vendas", "5511900000141", "G4", Some("1"), None)).await.unwrap();
    let (_, pending) = turn_of(a, &engine, "1").await;
    assert_eq!(pending.entry.message_id, "G4", "the contact is free for a again");
}

/// PostgreSQL: reads of held contacts made at once share one statement,
/// and each gets its own contact's oldest entry and live session; a held
/// contact with nothing left is given up.
pub async fn held_contacts_read_together_get_each_their_own(store: &crate::postgres::PgStore) {
    let engine = engine("");
    let numbers: Vec<String> = (0..20).map(|n| format!("55119000003{n:02}")).collect();
    for (n, number) in numbers.iter().enumerate() {
        // A live session for the even ones, then the entry to read.
        if n.is_multiple_of(2) {
            queue_menu(store, number, &format!("R{n}a")).await;
        }
        store.accept(&entry("vendas", number, &format!("R{n}b"), Some("1"), None)).await.unwrap();
    }
    let mut reads = tokio::task::JoinSet::new();
    for number in numbers.clone() {
        let store = store.clone();
        reads.spawn(async move { (number.clone(), store.next_pending_with_state(&instance("vendas"), &contact(&number)).await.unwrap()) });
    }
    let mut seen = 0;
    while let Some(read) = reads.join_next().await {
        let (number, read) = read.unwrap();
        let (pending, state) = read.expect("each held contact's entry");
        let n: usize = number[number.len() - 2..].parse().unwrap();
        assert_eq!(pending.entry.contact.as_str(), number);
        assert_eq!(pending.entry.message_id, format!("R{n}b"), "the contact's own oldest entry");
        let turn = engine.turn(state, &text("vendas", &number, "1"), T0);
        assert_eq!(turn.sessions.iter().any(|session| session.record().revision > 0), n.is_multiple_of(2), "contact {number}: its own session, and only its own");
        seen += 1;
    }
    assert_eq!(seen, 20);
    // Reads of one contact at the same time wait behind each other in the
    // batched reader (one per statement); each is answered, with the same
    // oldest entry (nothing was committed in between).
    let mut same = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (store, number) = (store.clone(), numbers[2].clone());
        same.spawn(async move { store.next_pending_with_state(&instance("vendas"), &contact(&number)).await.unwrap() });
    }
    while let Some(read) = same.join_next().await {
        let (pending, _) = read.unwrap().expect("the contact's entry, to each read");
        assert_eq!(pending.entry.message_id, "R2b");
    }
    // A held contact with nothing left: no entry, and its lease is given up.
    let (turn, pending) = {
        let (pending, state) = store.next_pending_with_state(&instance("vendas"), &contact(&numbers[1])).await.unwrap().unwrap();
        (engine.turn(state, &text("vendas", &numbers[1], "1"), T0), pending)
    };
    store.commit_inbound(&turn, &pending, "x").await.unwrap();
    assert!(store.next_pending_with_state(&instance("vendas"), &contact(&numbers[1])).await.unwrap().is_none());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contact_leases WHERE contact = $1").bind(&numbers[1]).fetch_one(store.pool()).await.unwrap();
    assert_eq!(left, 0, "nothing left: the lease went with the read");
}

/// PostgreSQL: claiming replies and marking their attempts are HOT updates
/// (postgres 0018: the outbox keeps room on its pages), though the replies
/// were queued page after page as under load. Read from where each row
/// version lives: a heap-only update keeps the row on its page, and on a
/// full page any other update moves it.
pub async fn claims_and_attempts_are_hot_updates(store: &crate::postgres::PgStore) {
    for n in 0..60 {
        queue_menu(store, &format!("55119000002{n:02}"), &format!("H{n}")).await;
    }
    let pages = || async {
        sqlx::query_as::<_, (i64, String)>("SELECT seq, ctid::TEXT FROM outbox ORDER BY seq")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|(seq, ctid)| (seq, ctid.trim_start_matches('(').split(',').next().unwrap_or_default().to_owned()))
            .collect::<std::collections::HashMap<i64, String>>()
    };
    let before = pages().await;
    assert!(before.values().collect::<std::collections::HashSet<_>>().len() > 2, "the replies fill several pages");
    let now = Timestamp::now_utc();
    let seqs: Vec<i64> = store.due_outbox(now, 100).await.unwrap().iter().map(|outgoing| outgoing.seq).collect();
    assert_eq!(seqs.len(), 60, "each contact's head reply");
    assert_eq!(store.outbox_attempt_many(&seqs, now).await.unwrap(), seqs);
    let after = pages().await;
    let stayed = seqs.iter().filter(|seq| before[seq] == after[seq]).count();
    assert!(stayed * 10 >= seqs.len() * 9, "{stayed} of {} claimed and attempted replies kept their page", seqs.len());
}

/// PostgreSQL: a turn whose session keeps its expiry's five-minute bucket
/// updates the session row heap-only (no index entry; postgres 0016), and
/// one that crosses into the next bucket does not. Read from
/// `pg_stat_user_tables`, which the writer's connection reports when idle
/// (within about a second, at most ten).
pub async fn a_turn_within_its_expiry_bucket_is_a_hot_update(store: &crate::postgres::PgStore) {
    let engine = engine("");
    let updates = || async {
        let stats: Option<(i64, i64)> = sqlx::query_as(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'sessions'",
        )
        .fetch_optional(store.pool())
        .await
        .unwrap();
        stats.unwrap_or_default()
    };
    let settled = |want: i64| async move {
        for _ in 0..150 {
            let (updated, hot) = updates().await;
            if updated >= want {
                return (updated, hot);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        updates().await
    };
    // T0 is 100 s into its bucket: a turn 60 s later keeps the bucket.
    send(store, &engine, &text("vendas", "5511900000141", "oi"), T0).await;
    send(store, &engine, &text("vendas", "5511900000141", "???"), T0.plus(Duration::from_secs(60))).await;
    assert_eq!(settled(1).await, (1, 1), "one update, heap-only");
    // 300 s later still: the next bucket, a new entry in `sessions_due`.
    send(store, &engine, &text("vendas", "5511900000141", "???"), T0.plus(Duration::from_secs(360))).await;
    assert_eq!(settled(2).await, (2, 1), "the bucket moved: not heap-only");
}

/// PostgreSQL: a process that dies holding a contact's lease (taken with
/// the accept, before its turn) leaves the contact to the others at once:
/// its node lock died with it, as for its claims; the lease's 10 s do not
/// have to run out.
pub async fn a_dead_process_leases_are_taken_at_once(a: crate::postgres::PgStore, b: &crate::postgres::PgStore) {
    let key = (instance("vendas"), contact("5511900000151"));
    a.accept(&entry("vendas", "5511900000151", "K1", Some("oi"), None)).await.unwrap();
    assert!(b.next_pending_with_state(&key.0, &key.1).await.unwrap().is_none(), "a is alive: the contact is a's");
    assert!(!b.release_contact(&key.0, &key.1).await.unwrap(), "a is on it");
    drop(a);
    let mut taken = None;
    for _ in 0..100 {
        taken = b.next_pending_with_state(&key.0, &key.1).await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (pending, _) = taken.expect("taken over within 5 s, long before the lease lapses");
    assert_eq!(pending.entry.message_id, "K1");
}

/// A process that dies holding claims (its node lock gone with its
/// session) leaves them to the others at once, not after the claim lapses:
/// the reply it was sending comes back unsure, the one it had not started
/// comes back plain. Its claims are no longer its own to attempt.
pub async fn a_dead_process_claims_are_taken_at_once<S: Queue>(a: S, b: &S) {
    queue_menu(&a, "5511900000121", "D1").await;
    queue_menu(&a, "5511900000122", "D2").await;
    let now = Timestamp::now_utc();
    let claimed = a.due_outbox(now, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(a.outbox_attempt(claimed[0].seq, now).await.unwrap(), "a's own claim");
    assert!(!b.outbox_attempt(claimed[1].seq, now).await.unwrap(), "not b's claim to attempt");
    assert!(b.due_outbox(now, 10).await.unwrap().is_empty(), "a is alive: its claims are its own");
    drop(a);
    let mut taken = Vec::new();
    for _ in 0..100 {
        taken = b.due_outbox(Timestamp::now_utc(), 10).await.unwrap();
        if !taken.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen: Vec<(i64, Option<Timestamp>)> = taken.iter().map(|o| (o.seq, o.unsure_since)).collect();
    assert_eq!(seen, vec![(claimed[0].seq, Some(now)), (claimed[1].seq, None)], "taken over within 5 s, long before the claim lapses");
    assert_eq!(taken[0].attempted_at, Some(now), "the dead process's attempt, to wait out");
    assert!(b.outbox_attempt(taken[1].seq, Timestamp::now_utc()).await.unwrap());
}

/// Calls between flows: the caller and its callee are stored as two live
/// sessions (depth 0 and 1); a restarted process (a new engine whose policy
/// for the callee changed meanwhile) reads the stack back and goes on in the
/// same callee version; only the outermost session is listed as expired;
/// a second live callee at the same depth is refused.
pub async fn a_stack_of_calls_survives_a_restart_in_the_same_callee_version<S: Store>(store: &S) {
    use switchyard_engine::kinds::Call;
    use switchyard_engine::rollout::{FlowRules, Pin, Rules};
    let engine = |pinned: u32| {
        let entry = VersionDecl::new("unknown", 1, Lifecycle::Active)
            .texts("[menu]\n1 loja\n[invalid]\nnão entendi\n[handoff]\natendente\n[thanks]\nAté logo, {email}\n")
            .entry("menu")
            .step("menu", Menu::new("menu", "invalid").option(&["loja"], To::Step("shop")))
            .step("shop", Call::new("shop").then(To::Step("thanks")))
            .step("thanks", Say::finish("thanks"));
        let mut decls = vec![entry];
        for version in [1, 2] {
            let lifecycle = if version == 1 { Lifecycle::Active } else { Lifecycle::Inactive };
            decls.push(
                VersionDecl::new("shop", version, lifecycle)
                    .texts(if version == 1 { "[ask]\nSeu e-mail? (v1)\n[bad]\ne-mail inválido\n[handoff]\natendente\n" } else { "[ask]\nSeu e-mail? (v2)\n[bad]\ne-mail inválido\n[handoff]\natendente\n" })
                    .entry("ask_email")
                    .step("ask_email", Ask::new("ask", "email", |text| text.contains('@').then(|| text.trim().to_owned()), "bad", To::Complete)),
            );
        }
        let registry = Arc::new(Registry::new(decls).expect("valid"));
        let mut rules = Rules::new();
        rules.set("shop", FlowRules { pins: vec![Pin { contact: contact("5511900000001"), version: Version::new(pinned) }], ..FlowRules::default() });
        let resolver = Resolver::new(&registry, Overrides::none(), Box::new(rules));
        Arc::new(Engine::new(registry, resolver, EngineConfig::default()).expect("engine"))
    };
    let before = engine(2);
    send(store, &before, &text("vendas", "5511900000001", "oi"), T0).await;
    let turn = send(store, &before, &text("vendas", "5511900000001", "1"), T0.plus(Duration::from_secs(1))).await;
    assert!(turn.replies.iter().any(|reply| reply.text == "Seu e-mail? (v2)"), "{:?}", turn.replies);

    let state = store.contact_state(&instance("vendas"), &contact("5511900000001")).await.expect("read");
    let root = state.session.clone().expect("the caller is live");
    assert_eq!((root.flow().as_str(), root.step().as_str(), root.depth(), root.parent()), ("unknown", "shop", 0, None));
    assert_eq!(state.calls.len(), 1);
    let callee = &state.calls[0];
    assert_eq!((callee.flow().as_str(), callee.version(), callee.depth(), callee.parent()), ("shop", Version::new(2), 1, Some(root.id())));
    assert_eq!(callee.reason().name(), "pin", "the callee's own resolution");
    let history = store.sessions_of(&instance("vendas"), &contact("5511900000001")).await.expect("history");
    assert_eq!(history.iter().find(|session| session.id() == callee.id()).map(Session::record), Some(callee.record()), "the callee reads back field for field");

    // Only the outermost session expires; the callee rides along with it.
    let due = store.expired(T0.plus(Duration::from_secs(86_400)), 10).await.expect("expired");
    assert_eq!(due.iter().map(|session| session.id()).collect::<Vec<_>>(), vec![root.id()]);

    // A second live callee at the same depth is refused, whole.
    let mut twin = engine(1).turn(
        switchyard_engine::engine::ContactState { session: Some(root.clone()), ..Default::default() },
        &text("vendas", "5511900000001", "1"),
        T0.plus(Duration::from_secs(2)),
    );
    twin.sessions.retain(|session| session.depth() == 1);
    assert!(matches!(store.commit(&twin).await, Err(StoreError::Conflict(_))), "one live callee per depth");

    // A restart with the callee's policy moved to v1: the customer stays on v2.
    let after = engine(1);
    let turn = send(store, &after, &text("vendas", "5511900000001", "ana@example.com"), T0.plus(Duration::from_secs(3))).await;
    assert_eq!(turn.replies.iter().map(|reply| reply.text.as_str()).collect::<Vec<_>>(), vec!["Até logo, ana@example.com"]);
    let returned = turn.ended().find(|session| session.flow().as_str() == "shop").expect("the callee returned");
    assert_eq!((returned.id(), returned.version(), returned.outcome()), (callee.id(), Version::new(2), Some(Outcome::Completed)));
    let state = store.contact_state(&instance("vendas"), &contact("5511900000001")).await.expect("read");
    assert!(state.session.is_none() && state.calls.is_empty());
    let events = store.events_of(callee.id()).await.expect("events");
    assert!(events.iter().all(|event| event.flow.as_str() == "shop" && event.version == Version::new(2)), "{events:?}");
}
