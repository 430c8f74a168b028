//! Replay throughput (issue #16): 10,000 recorded digital-certificate
//! sessions, in the shapes `simulate` and real traffic produce (v1 and v2
//! purchases completed, customers not understood until a person takes over,
//! customers asking for a person), each replayed through its baseline (the
//! version that served it) and through a candidate, and compared — what
//! `switchyard replay digital_certificate --candidate vN` does after reading
//! the store. The replay is the pure engine on fresh in-memory stores, so
//! this measures the engine's speed, not the store's.
//!
//! Throughput is in sessions per second (each session runs twice: baseline
//! and candidate).
//!
//! Run: `cargo bench -p switchyard --bench replay`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use switchyard::replay::{aggregate, choose, replay_all, Conversation, Message};
use switchyard_engine::engine::{Content, EngineConfig};
use switchyard_engine::ids::Version;
use switchyard_engine::time::Timestamp;

const SESSIONS: usize = 10_000;
const CPF: &str = "529.982.247-25";
const EMAIL: &str = "ana.souza@exemplo.com.br";

/// The customer messages of session `index` and the version that served it.
fn script(index: usize) -> (u32, Vec<String>) {
    let opening = "quero comprar um certificado digital".to_owned();
    let texts: (u32, Vec<&str>) = match index % 10 {
        0..=4 => (1, vec!["1", "1", CPF, EMAIL, "1", "sim"]),
        5..=6 => (2, vec!["1", "meu cpf é 529.982.247-25 e o email ana.souza@exemplo.com.br", "sim"]),
        7 => (1, vec!["🤷", "🤷", "🤷"]),
        8 => (2, vec!["1", "quero falar com um atendente"]),
        _ => (1, vec!["1", "pessoa física", "2", CPF]),
    };
    (texts.0, std::iter::once(opening).chain(texts.1.into_iter().map(str::to_owned)).collect())
}

fn corpus() -> Vec<Conversation> {
    (0..SESSIONS)
        .map(|index| {
            let (version, texts) = script(index);
            Conversation {
                session: format!("s{index}"),
                flow: "digital_certificate".to_owned(),
                version: Version::new(version),
                instance: "loja-bot".to_owned(),
                started_at: Timestamp::from_millis(1_795_000_000_000 + 60_000 * index as i64),
                outcome: None,
                messages: texts.into_iter().enumerate().map(|(at, text)| Message { offset_ms: 20_000 * at as i64, content: Content::Text(text) }).collect(),
            }
        })
        .collect()
}

fn replaying(c: &mut Criterion) {
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).expect("the shipped flows are valid"));
    let conversations = corpus();
    let mut group = c.benchmark_group("replay");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(SESSIONS as u64));
    for candidate in ["v2", "v3"] {
        let choice = choose(&registry, "digital_certificate", ("candidate", candidate), None).expect("compiled versions");
        let replayer = choice.replayer(registry.clone(), &EngineConfig::default(), &conversations).expect("engines for every version");
        // The corpus replays as designed: every session runs, none fails in the engine.
        let results = replay_all(&replayer, &choice, &conversations, None, |_| {});
        let summary = aggregate(&results, 100);
        assert_eq!((results.len(), summary.failures), (SESSIONS, 0), "{candidate}: {}", summary.verdict);
        group.bench_with_input(BenchmarkId::new("10k_sessions", candidate), &conversations, |b, conversations| {
            b.iter(|| replay_all(&replayer, &choice, black_box(conversations), None, |_| {}))
        });
    }
    group.finish();
}

criterion_group!(benches, replaying);
criterion_main!(benches);
