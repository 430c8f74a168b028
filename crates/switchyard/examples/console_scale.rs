//! The console at scale (issue #17): a bulk seeder for a store with a
//! million finished sessions, and a benchmark of the console's overview and
//! flow page (the real server over loopback) and of the report on it.
//!
//! ```text
//! cargo run --release -p switchyard --example console_scale -- seed  DATABASE_URL [--sessions 1000000] [--days 30] [--template 3000]
//! cargo run --release -p switchyard --example console_scale -- bench DATABASE_URL [--samples 15]
//! ```
//!
//! `seed` wants an empty store. It first runs `--template` synthetic
//! customers through the real engine, flows and store (so every row is one
//! the engine wrote: the router, the flows' steps, classification and form
//! events, handoffs, expiries, split assignments), with a split on
//! `digital_certificate` (v2/v3) and on `billing` (v2/v3), their starts spread
//! over `--days`; then it copies those rows in SQL (`INSERT … SELECT` with a
//! table of copy numbers, on either backend) until there are `--sessions`
//! sessions: each copy gets new session ids and contacts and starts a few
//! seconds apart from the last one. Last, it rolls up every finished hour as
//! `serve` would (`views::rollup::refresh`) and says how long that took.
//!
//! `bench` starts the real `serve` (console on its own port) on that store,
//! signs in, and times pages over HTTP: the overview, the flow page with each
//! window, `GET /api/report` (the whole history, as `switchyard report`
//! shows it by default), and `views::flow::flow_report` called in-process.
//! It prints the median and the slowest sample of each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use switchyard::views::rollup;
use switchyard_engine::engine::{Content, Engine, EngineConfig, Inbound};
use switchyard_engine::ids::{Contact, InstanceId, Version};
use switchyard_engine::resolve::{NoRules, Overrides, Resolver};
use switchyard_engine::rollout::{FlowRules, Split, Weight};
use switchyard_engine::service::Conversations;
use switchyard_engine::store::Store;
use switchyard_engine::time::{Clock, Timestamp};
use switchyard_store::Db;

const HOUR: i64 = 3_600_000;
const TOKEN: &str = "console-scale-bench-token";

/// A clock the seeder moves.
#[derive(Clone)]
struct SeedClock(Arc<std::sync::atomic::AtomicI64>);

impl Clock for SeedClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl SeedClock {
    fn set(&self, at: i64) {
        self.0.store(at, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A small deterministic generator (xorshift), so a seed run is repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// First messages: what customers open with (the router sends each to its flow).
const OPENINGS: &[&str] = &[
    "quero comprar um certificado digital",
    "quero comprar um certificado digital",
    "quero comprar um certificado digital",
    "quero renovar meu e-cpf",
    "preciso da segunda via do boleto",
    "preciso da segunda via do boleto",
    "ja paguei e nao baixou",
    "qual o horario de funcionamento?",
    "quanto custa o certificado?",
    "oi",
    "bom dia",
];

/// What customers answer afterwards: menu numbers, documents, e-mails,
/// confirmations, nonsense, and the global commands.
const ANSWERS: &[&str] = &[
    "1",
    "1",
    "2",
    "3",
    "sim",
    "sim",
    "não",
    "123.456.789-09",
    "cliente@exemplo.com.br",
    "meu cpf é 123.456.789-09 e o email cliente@exemplo.com.br",
    "sim: e-CPF A1, CPF 123.456.789-09, e-mail cliente@exemplo.com.br",
    "e-CNPJ A3",
    "🤷",
    "não entendi",
    "menu",
    "sair",
    "atendente",
];

struct Args {
    command: String,
    url: String,
    sessions: u64,
    days: i64,
    template: u32,
    samples: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut raw = std::env::args().skip(1);
    let usage = "usage: console_scale seed|bench DATABASE_URL [--sessions N] [--days N] [--template N] [--samples N]";
    let command = raw.next().context(usage)?;
    if command != "seed" && command != "bench" {
        bail!("command '{command}' must be seed or bench ({usage})");
    }
    let url = raw.next().context(usage)?;
    let mut args = Args { command, url, sessions: 1_000_000, days: 30, template: 3000, samples: 15 };
    while let Some(flag) = raw.next() {
        let value = raw.next().with_context(|| format!("{flag} wants a value"))?;
        let number = |value: &str| value.parse::<u64>().with_context(|| format!("{flag} '{value}' must be a whole number"));
        match flag.as_str() {
            "--sessions" => args.sessions = number(&value)?,
            "--days" => args.days = i64::try_from(number(&value)?)?,
            "--template" => args.template = u32::try_from(number(&value)?)?,
            "--samples" => args.samples = usize::try_from(number(&value)?)?.max(1),
            other => bail!("unknown flag '{other}' ({usage})"),
        }
    }
    Ok(args)
}

fn engine() -> anyhow::Result<Arc<Engine>> {
    let registry = Arc::new(switchyard_flows::registry(&switchyard_flows::Deps::demo()).map_err(|err| anyhow::anyhow!("{err:?}"))?);
    let resolver = Resolver::new(&registry, Overrides::none(), Box::new(NoRules));
    Ok(Arc::new(Engine::new(registry, resolver, EngineConfig::default()).map_err(|err| anyhow::anyhow!("{err}"))?))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let store = switchyard_store::open(&args.url, &switchyard_store::PgSettings::default()).await.map_err(|err| anyhow::anyhow!("{err}"))?;
    let engine = engine()?;
    match args.command.as_str() {
        "seed" => seed(&args, &store, &engine).await,
        _ => bench(&args, store, engine).await,
    }
}

/// Runs one statement on either backend (`$n` placeholders are not used).
async fn execute(store: &Db, sql: &str) -> anyhow::Result<u64> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    Ok(match store {
        Db::Sqlite(store) => sqlx::query(sql).execute(store.pool()).await?.rows_affected(),
        Db::Postgres(store) => sqlx::query(sql).execute(store.pool()).await?.rows_affected(),
    })
}

async fn count(store: &Db, sql: &str) -> anyhow::Result<i64> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    Ok(match store {
        Db::Sqlite(store) => sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool()).await?,
        Db::Postgres(store) => sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool()).await?,
    })
}

/// The columns of `table`, in order.
async fn columns(store: &Db, table: &str) -> anyhow::Result<Vec<String>> {
    Ok(match store {
        Db::Sqlite(store) => sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")))
            .fetch_all(store.pool())
            .await?,
        Db::Postgres(store) => sqlx::query_scalar::<_, String>(
            // (generated columns, such as `sessions.expires_bucket`, are computed, not copied)
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
             AND is_generated = 'NEVER' ORDER BY ordinal_position",
        )
        .bind(table)
        .fetch_all(store.pool())
        .await?,
    })
}

/// Copy `k` of a session id: the UUID's fourth group becomes `k` in four
/// decimal digits (still a UUID, unique per template session and copy).
const ID_COPY: &str = "substr({c}, 1, 19) || substr(CAST(10000 + k AS TEXT), 2, 4) || substr({c}, 24)";
/// Copy `k` of a template contact (13 digits, template numbers below 100 000).
const CONTACT_COPY: &str = "CAST(CAST({c} AS BIGINT) + k * 100000 AS TEXT)";

fn copy_expression(table: &str, column: &str) -> Option<String> {
    let with = |template: &str| template.replace("{c}", column);
    Some(match (table, column) {
        ("events" | "holds", "seq") => return None,
        ("sessions", "id" | "parent") | ("events", "session_id") => with(ID_COPY),
        (_, "contact") => with(CONTACT_COPY),
        (_, "started_at" | "last_input_at" | "expires_at" | "ended_at" | "at" | "assigned_at" | "until" | "desk_next_at" | "desk_done_at") => format!("{column} - k * shift"),
        _ => column.to_owned(),
    })
}

async fn seed(args: &Args, store: &Db, engine: &Arc<Engine>) -> anyhow::Result<()> {
    if count(store, "SELECT COUNT(*) FROM sessions").await? > 0 {
        bail!("the store already has sessions; seed wants an empty one");
    }
    if args.template >= 100_000 {
        bail!("--template {} must be below 100000", args.template);
    }
    let started = Instant::now();
    let now = Timestamp::now_utc();
    // The rollout: splits on two flows, remembered for 30 days.
    for (flow, weights) in [("digital_certificate", [(2, 50), (3, 50)]), ("billing", [(2, 80), (3, 20)])] {
        let weights = weights.iter().map(|(version, percent)| (Version::new(*version), Weight::percent(*percent))).collect();
        let split = Split::new(weights, None, 30).map_err(|err| anyhow::anyhow!("{err}"))?;
        let rules = FlowRules { split: Some(split), ..FlowRules::default() };
        store.change_policy(flow, &rules, "seed", "split", "console_scale seed", now.minus(Duration::from_secs(86_400 * 31))).await?;
    }
    switchyard::rollout::load_into(store, engine).await?;

    // The template: real customers through the real engine and store.
    let clock = SeedClock(Arc::new(std::sync::atomic::AtomicI64::new(0)));
    let conversations = Conversations::new(Arc::clone(engine), store.clone(), clock.clone());
    let instance = InstanceId::parse("vendas").map_err(|err| anyhow::anyhow!("{err}"))?;
    let mut rng = Rng(0x5eed_c0de_u64);
    // Starts spread over the days, ending two hours before now (so every
    // session has finished and expired), the copies' shifts on top.
    let span = args.days * 24 * HOUR - 2 * HOUR;
    let latest = now.as_millis() - 2 * HOUR;
    for n in 0..args.template {
        let contact = Contact::parse(&(5_511_900_000_000u64 + u64::from(n)).to_string()).map_err(|err| anyhow::anyhow!("{err}"))?;
        let mut at = latest - i64::try_from(rng.below(u64::try_from(span)?))?;
        let messages = 2 + rng.below(14);
        for m in 0..messages {
            clock.set(at);
            let text = if m == 0 { rng.pick(OPENINGS) } else { rng.pick(ANSWERS) };
            let inbound = Inbound { instance: instance.clone(), contact: contact.clone(), content: Content::Text(text.to_owned()) };
            conversations.handle(&inbound).await?;
            at += 5_000 + i64::try_from(rng.below(90_000))?;
        }
        // Whatever is still live expires (the customer went silent).
        let state = store.contact_state(&instance, &contact).await?;
        if let Some(expiry) = state.session.as_ref().filter(|live| live.is_live()).map(|live| live.expires_at().as_millis().max(at) + 1000) {
            clock.set(expiry);
            if let Some(turn) = engine.expire_all(state, Timestamp::from_millis(expiry)) {
                store.commit(&turn).await?;
            }
        }
        if n % 500 == 499 {
            eprintln!("template: {} customers, {:.0?}", n + 1, started.elapsed());
        }
    }
    let live = count(store, "SELECT COUNT(*) FROM sessions WHERE outcome IS NULL").await?;
    let template_sessions = count(store, "SELECT COUNT(*) FROM sessions").await?;
    let template_events = count(store, "SELECT COUNT(*) FROM events").await?;
    let template_holds = count(store, "SELECT COUNT(*) FROM holds").await?;
    eprintln!(
        "template: {} customers, {template_sessions} sessions ({live} live), {template_events} events, {template_holds} holds, in {:.1?}",
        args.template,
        started.elapsed()
    );
    if live > 0 {
        bail!("{live} template sessions are still live");
    }

    // The copies, in SQL on the database itself.
    let copies = (i64::try_from(args.sessions)? / template_sessions.max(1)).max(1);
    let shift = 37_000; // Milliseconds between one copy's starts and the next one's.
    for table in ["sessions", "events", "split_assignments", "holds"] {
        execute(store, &format!("DROP TABLE IF EXISTS seed_{table}")).await?;
        execute(store, &format!("CREATE TABLE seed_{table} AS SELECT * FROM {table}")).await?;
    }
    execute(store, "DROP TABLE IF EXISTS seed_k").await?;
    execute(store, "CREATE TABLE seed_k (k BIGINT NOT NULL, shift BIGINT NOT NULL)").await?;
    let copying = Instant::now();
    // PostgreSQL's per-row triggers bump the same counter rows again and
    // again in one statement, each update a new row version to walk past:
    // off while copying, the totals rebuilt once afterwards.
    let postgres = matches!(store, Db::Postgres(_));
    if postgres {
        execute(store, "ALTER TABLE sessions DISABLE TRIGGER USER").await?;
    }
    let chunk = 20;
    let mut k = 1;
    while k < copies {
        let last = (k + chunk).min(copies);
        execute(store, "DELETE FROM seed_k").await?;
        let values: Vec<String> = (k..last).map(|k| format!("({k}, {shift})")).collect();
        execute(store, &format!("INSERT INTO seed_k (k, shift) VALUES {}", values.join(", "))).await?;
        for table in ["sessions", "events", "split_assignments", "holds"] {
            let columns = columns(store, table).await?;
            let (names, expressions): (Vec<&str>, Vec<String>) =
                columns.iter().filter_map(|column| copy_expression(table, column).map(|expression| (column.as_str(), expression))).unzip();
            let order = match table {
                "events" => " ORDER BY seed_k.k, seed_events.seq",
                "holds" => " ORDER BY seed_k.k, seed_holds.seq",
                _ => "",
            };
            execute(
                store,
                &format!("INSERT INTO {table} ({}) SELECT {} FROM seed_{table} CROSS JOIN seed_k{order}", names.join(", "), expressions.join(", ")),
            )
            .await?;
        }
        eprintln!("copies {k}..{last} of {copies}: {:.0?}", copying.elapsed());
        k = last;
    }
    for table in ["sessions", "events", "split_assignments", "holds", "k"] {
        execute(store, &format!("DROP TABLE seed_{table}")).await?;
    }
    if postgres {
        execute(store, "DELETE FROM session_counts").await?;
        execute(
            store,
            "INSERT INTO session_counts (flow, version, outcome, shard, sessions) \
             SELECT flow, version, COALESCE(outcome, 'live'), 0, COUNT(*) FROM sessions GROUP BY flow, version, COALESCE(outcome, 'live')",
        )
        .await?;
        execute(store, "DELETE FROM report_hours").await?;
        execute(store, "ALTER TABLE sessions ENABLE TRIGGER USER").await?;
    }
    if matches!(store, Db::Postgres(_)) {
        // What autovacuum would have done by the time anyone looks.
        execute(store, "VACUUM ANALYZE").await?;
    }
    let sessions = count(store, "SELECT COUNT(*) FROM sessions").await?;
    let events = count(store, "SELECT COUNT(*) FROM events").await?;
    println!("seeded {sessions} sessions, {events} events in {:.1?} (copying {:.1?})", started.elapsed(), copying.elapsed());

    // The rollups serve would write, all at once.
    let rolling = Instant::now();
    let mut hours = 0;
    for flow in engine.registry().flows() {
        hours += rollup::refresh(store, flow.as_str(), Timestamp::now_utc(), usize::MAX).await?;
    }
    println!("rolled up {hours} flow-hours in {:.1?}", rolling.elapsed());
    Ok(())
}

fn median(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

fn print(name: &str, samples: &mut [Duration]) {
    let (median, slowest) = median(samples);
    println!("{name:<58} median {:>8.1} ms   slowest {:>8.1} ms   ({} samples)", median.as_secs_f64() * 1000.0, slowest.as_secs_f64() * 1000.0, samples.len());
}

async fn bench(args: &Args, store: Db, engine: Arc<Engine>) -> anyhow::Result<()> {
    let sessions = count(&store, "SELECT COUNT(*) FROM sessions").await?;
    let events = count(&store, "SELECT COUNT(*) FROM events").await?;
    let rolled = count(&store, "SELECT COUNT(*) FROM report_hours").await?;
    println!("store: {sessions} sessions, {events} events, {rolled} rolled-up flow-hours");
    let mut config = switchyard::config::ServeConfig::defaults("http://127.0.0.1:9");
    config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.console_bind = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    config.admin_tokens = vec![("bench".to_owned(), TOKEN.to_owned())];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = switchyard::serve::Server::start(listener, Arc::clone(&engine), Arc::new(store.clone()), config).await?;
    let console = format!("http://{}", server.console_addr.context("the console listens")?);
    let api = format!("http://{}", server.addr);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let signed = http.post(format!("{console}/ui/login")).form(&[("token", TOKEN)]).send().await?;
    let cookie = signed.headers().get("set-cookie").context("sign-in sets a cookie")?.to_str()?.split(';').next().unwrap_or_default().to_owned();

    let pages = [
        ("GET /ui (overview)", format!("{console}/ui")),
        ("GET /ui/flows/digital_certificate (24 h)", format!("{console}/ui/flows/digital_certificate")),
        ("GET /ui/flows/digital_certificate?window=7d", format!("{console}/ui/flows/digital_certificate?window=7d")),
        ("GET /ui/flows/digital_certificate?window=30d", format!("{console}/ui/flows/digital_certificate?window=30d")),
        ("GET /ui/flows/billing?window=30d", format!("{console}/ui/flows/billing?window=30d")),
        ("GET /api/report?flow=digital_certificate (all time)", format!("{api}/api/report?flow=digital_certificate")),
    ];
    for (name, url) in &pages {
        let mut samples = Vec::new();
        for sample in 0..=args.samples {
            let request = if url.starts_with(&console) { http.get(url).header("cookie", &cookie) } else { http.get(url).bearer_auth(TOKEN) };
            let begun = Instant::now();
            let response = request.send().await?;
            let status = response.status();
            let body = response.text().await?;
            let took = begun.elapsed();
            if !status.is_success() {
                bail!("{name}: {status}: {}", body.chars().take(300).collect::<String>());
            }
            if sample > 0 {
                samples.push(took); // The first is a warm-up.
            }
        }
        print(name, &mut samples);
    }

    // The CLI's path: `switchyard report FLOW` calls this with the whole history.
    for flow in ["digital_certificate", "billing"] {
        let query = switchyard::views::flow::ReportQuery { min_finished: 100, ..Default::default() };
        let mut samples = Vec::new();
        for sample in 0..=args.samples {
            let begun = Instant::now();
            let report = switchyard::views::flow::flow_report(&store, &engine, flow, &query).await?;
            let took = begun.elapsed();
            std::hint::black_box(report);
            if sample > 0 {
                samples.push(took);
            }
        }
        print(&format!("views::flow::flow_report({flow}, all time)"), &mut samples);
    }
    // What the same 30 days cost counted from the event log, without rollups.
    let now = Timestamp::now_utc().as_millis();
    let range = rollup::Range { flow: "digital_certificate", since: now - 30 * 24 * HOUR, until: now, instance: None };
    let mut samples = Vec::new();
    for _ in 0..3 {
        let begun = Instant::now();
        std::hint::black_box(rollup::count(&store, range).await?);
        samples.push(begun.elapsed());
    }
    print("rollup::count(digital_certificate, 30 d) without rollups", &mut samples);
    server.shutdown().await;
    Ok(())
}
