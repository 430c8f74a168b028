//! Engine benchmarks (DESIGN section 9), on the shipped reference flows:
//!
//! - `resolve/*`: version resolution for a new session (no rules; an override;
//!   ten runtime rules where the split decides).
//! - `turn/purchase_10k_interleaved`: the digital-certificate purchase
//!   conversation for 10 000 contacts whose messages interleave (message 1 of
//!   every contact, then message 2 of every contact, ...), through
//!   `Engine::turn` and the in-memory store, on one thread.
//! - `trained/*`: training unknown@v2's classifier from its examples (what
//!   building a registry costs once per process), and one weighed decision.
//! - `turn/v3_purchase_10k_interleaved`: the same purchase on
//!   digital_certificate@v3 as a customer who writes naturally says it (4
//!   messages instead of 9: the form reads product, document and e-mail from
//!   free text), so the figure shows what the form costs per message.
//!
//! Run: `cargo bench -p switchyard-flows --bench engine` (it lives in the
//! flows crate because it needs only the engine and the flows: building it
//! does not compile the server's dependencies in release).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound};
use switchyard_engine::ids::{Contact, InstanceId};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::rollout::{FlowRules, InstanceRule, Pin, Rules, Schedule, Split, Weight};
use switchyard_engine::session::Outcome;
use switchyard_engine::memory::MemoryStore;
use switchyard_engine::time::Timestamp;

/// The v1 purchase, from the first "oi" to the confirmed order.
const PURCHASE: &[&str] = &[
    "oi",
    "1",
    "1",
    "1",
    "1",
    "123.456.789-09",
    "cliente@exemplo.com.br",
    "1",
    "sim",
];

/// The v3 purchase: the first message names the product, then the
/// document, the e-mail, and the confirmation.
const PURCHASE_V3: &[&str] = &[
    "boa tarde, quero comprar um certificado e-CPF A1",
    "123.456.789-09",
    "cliente@exemplo.com.br",
    "sim",
];

const CONTACTS: usize = 10_000;

fn engine(overrides: &str) -> Engine {
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows"));
    let overrides = Overrides::parse(overrides, &registry).expect("valid overrides");
    let resolver = Resolver::new(&registry, overrides, Box::new(NoRules));
    Engine::new(registry, resolver, EngineConfig::default()).expect("engine")
}

fn resolve(c: &mut Criterion) {
    let instance = InstanceId::parse("vendas").unwrap();
    let contact = Contact::parse("5511987654321").unwrap();
    let now = Timestamp::from_millis(1_795_000_000_000);
    let mut group = c.benchmark_group("resolve");
    let active = engine("");
    group.bench_function("active_no_rules", |b| {
        b.iter(|| black_box(active.resolve(black_box("digital_certificate"), &instance, &contact, now)))
    });
    let overridden = engine("unknown=v1,general_support=v1,billing=v2,digital_certificate=v2");
    group.bench_function("override_4_entries_last", |b| {
        b.iter(|| black_box(overridden.resolve(black_box("digital_certificate"), &instance, &contact, now)))
    });
    // Ten runtime rules, the split (the last rule kind before active) deciding:
    // 5 pins and 3 instance rules that do not match, a schedule outside its
    // window, then a 90/10 split.
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows"));
    let v1 = switchyard_engine::ids::Version::new(1);
    let v2 = switchyard_engine::ids::Version::new(2);
    let mut flow_rules = FlowRules::default();
    for n in 0..5 {
        flow_rules.pins.push(Pin { contact: Contact::parse(&format!("55219{n:08}")).unwrap(), version: v2 });
    }
    for name in ["suporte", "financeiro", "parceiros"] {
        flow_rules.instances.push(InstanceRule { instance: InstanceId::parse(name).unwrap(), version: v2 });
    }
    flow_rules.schedules.push(Schedule::new(v2, Timestamp::from_millis(0), Timestamp::from_millis(1)).unwrap());
    flow_rules.split = Some(Split::new(vec![(v1, Weight::percent(90)), (v2, Weight::percent(10))], None, 0).unwrap());
    let mut rules = Rules::new();
    rules.set("digital_certificate", flow_rules);
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(rules));
    let with_rules = Engine::new(registry, resolver, EngineConfig::default()).expect("engine");
    group.bench_function("ten_rules_split_decides", |b| {
        b.iter(|| black_box(with_rules.resolve(black_box("digital_certificate"), &instance, &contact, now)))
    });
    group.finish();
}

/// Inbound messages for every contact, interleaved by message index.
fn interleaved(script: &[&str]) -> Vec<Inbound> {
    let instance = InstanceId::parse("vendas").unwrap();
    let contacts: Vec<Contact> = (0..CONTACTS).map(|n| Contact::parse(&format!("55119{n:08}")).unwrap()).collect();
    let mut messages = Vec::with_capacity(CONTACTS * script.len());
    for line in script {
        for contact in &contacts {
            messages.push(Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text((*line).to_owned()) });
        }
    }
    messages
}

/// Runs every message through the engine and the memory store; returns the
/// number of sessions that completed, so the benchmark checks its own work.
fn run(engine: &Engine, store: &MemoryStore, messages: &[Inbound], now: Timestamp) -> usize {
    let mut completed = 0;
    for inbound in messages {
        let state = store.contact_state_now(&inbound.instance, &inbound.contact);
        let turn = engine.turn(state, inbound, now);
        completed += turn.ended().filter(|session| session.outcome() == Some(Outcome::Completed) && session.flow().as_str() == "digital_certificate").count();
        store.commit_owned(turn).expect("commit");
    }
    completed
}

fn turn(c: &mut Criterion) {
    let now = Timestamp::from_millis(1_795_000_000_000);
    let mut group = c.benchmark_group("turn");
    group.sample_size(10);
    for (name, overrides, script) in [
        ("purchase_10k_interleaved", "", PURCHASE),
        ("v3_purchase_10k_interleaved", "digital_certificate=v3", PURCHASE_V3),
    ] {
        let engine = engine(overrides);
        let messages = interleaved(script);
        // The script must really complete a purchase for every contact, or the
        // figure would measure re-prompts.
        assert_eq!(run(&engine, &MemoryStore::new(), &messages, now), CONTACTS, "{name}: every purchase completes");
        group.throughput(Throughput::Elements(messages.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(MemoryStore::new, |store| black_box(run(&engine, &store, &messages, now)), BatchSize::PerIteration)
        });
    }
    group.finish();
}

fn trained(c: &mut Criterion) {
    let registry = switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("valid flows");
    let fv = registry.lookup("unknown@v2").expect("compiled");
    let intent = fv.trained("intent").expect("a weighed task");
    let examples = intent.weighing.examples;
    let mut group = c.benchmark_group("trained");
    group.bench_function("train_unknown_v2_intent", |b| {
        b.iter(|| black_box(switchyard_engine::trained::Trained::from_tsv(black_box(examples)).expect("trains")))
    });
    group.bench_function("weigh_one_first_message", |b| {
        b.iter(|| black_box(intent.decide(black_box("o comprovante de endereco precisa estar no meu nome pro e-cpf?"), None)))
    });
    group.finish();
}

criterion_group!(benches, resolve, turn, trained);
criterion_main!(benches);
