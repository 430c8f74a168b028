//! What the disk allows: the durable path's own writes for one message
//! (inbox insert, session upsert, event insert, outbox insert) on the real
//! schema, with 1 and 64 messages per transaction, `synchronous` NORMAL and
//! FULL, one writer, no HTTP, no engine. The load generator's figures are
//! read as a fraction of these, measured in the same run. Each case also
//! prints the CPU its thread spent per message (Linux: the thread's
//! `schedstat`), the part of a message's CPU budget the writes alone take.
//!
//! ```text
//! cargo run --release -p switchyard-store --example sqlite_ceiling -- [MESSAGES]
//! ```

use std::time::Instant;

use rusqlite::{params, Connection};

/// Nanoseconds this thread has run on a CPU (user and system), where Linux
/// tells it.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Messages per second, and CPU microseconds per message where known.
fn run(path: &std::path::Path, synchronous: &str, per_commit: usize, messages: usize) -> (f64, Option<f64>) {
    let connection = Connection::open(path).expect("open");
    connection.execute_batch(&format!("PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};")).expect("pragmas");
    let cpu_before = thread_cpu_ns();
    let started = Instant::now();
    let mut n = 0;
    while n < messages {
        connection.execute_batch("BEGIN IMMEDIATE").expect("begin");
        for _ in 0..per_commit.min(messages - n) {
            // Each case has its own contacts: a live session is unique per contact.
            let contact = format!("55{}{:09}", synchronous.len(), per_commit * 1000 + n % 1000);
            let session = format!("{synchronous}-{per_commit}-{}", n % 1000);
            connection
                .prepare_cached(
                    "INSERT INTO inbox (instance, message_id, contact, reply_to, kind, body, sent_at, received_at, processed_at) \
                     VALUES ('loja', ?1, ?2, ?2, 'text', 'oi', ?3, ?3, ?3)",
                )
                .expect("prepare")
                .execute(params![format!("{synchronous}-{per_commit}-{n}"), contact, n as i64])
                .expect("inbox");
            connection
                .prepare_cached(
                    "INSERT INTO sessions (id, instance, contact, flow, version, fingerprint, reason, step, data, attempts, turns, \
                     started_at, last_input_at, expires_at, revision) \
                     VALUES (?1, 'loja', ?2, 'digital_certificate', 1, 'f', 'active', 'menu', '{}', 0, 1, ?3, ?3, ?3, 1) \
                     ON CONFLICT (id) DO UPDATE SET step = 'menu', turns = turns + 1, revision = revision + 1",
                )
                .expect("prepare")
                .execute(params![session, contact, n as i64])
                .expect("session");
            connection
                .prepare_cached("INSERT INTO events (session_id, flow, version, at, step, kind) VALUES (?1, 'digital_certificate', 1, ?2, 'menu', 'step_entered')")
                .expect("prepare")
                .execute(params![session, n as i64])
                .expect("event");
            connection
                .prepare_cached(
                    "INSERT INTO outbox (instance, contact, reply_to, text, session_id, created_at, next_attempt_at) \
                     VALUES ('loja', ?1, ?1, 'Escolha uma opção: 1, 2 ou 3', ?2, ?3, ?3)",
                )
                .expect("prepare")
                .execute(params![contact, session, n as i64])
                .expect("outbox");
            n += 1;
        }
        connection.execute_batch("COMMIT").expect("commit");
    }
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    let cpu = thread_cpu_ns().zip(cpu_before).map(|(after, before)| after.saturating_sub(before) as f64 / 1000.0 / messages as f64);
    (rate, cpu)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let messages: usize = std::env::args().nth(1).map_or(20_000, |text| text.parse().expect("MESSAGES must be a number"));
    let path = std::env::temp_dir().join(format!("switchyard-ceiling-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    // The real schema, through the store's migrations.
    drop(switchyard_store::sqlite::SqliteStore::open(&url).await.expect("migrate"));
    println!("SQLite ceiling: inbox + session + event + outbox per message, {messages} messages per case");
    for synchronous in ["NORMAL", "FULL"] {
        for per_commit in [1, 64] {
            let (rate, cpu) = run(&path, synchronous, per_commit, messages);
            let cpu = cpu.map_or_else(String::new, |micros| format!(", {micros:.1} µs of CPU per message"));
            println!("  synchronous={synchronous:<6} {per_commit:>2} per commit: {rate:>9.0} messages/s{cpu}");
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
