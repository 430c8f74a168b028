//! Fresh databases for tests, shared by this crate's tests and the
//! `switchyard` crate's: a SQLite file per call, and on PostgreSQL a schema
//! of its own per call (so tests running at once never see each other's
//! rows), dropped again when the test lets go of it.
//!
//! PostgreSQL is found through `SWITCHYARD_TEST_POSTGRES_URL` (`.ci/run`
//! creates a fresh database per run and sets it). Without it, the local
//! default `postgres://postgres@127.0.0.1:5432/test` is tried; when nothing
//! answers there, each PostgreSQL test says on stderr that it was skipped,
//! and passes. With `SWITCHYARD_REQUIRE_POSTGRES=1` (set by `.ci/run`), or
//! with the URL given explicitly, a PostgreSQL that does not answer fails the
//! test instead: CI must not pass by skipping.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Executor};

/// Where the test PostgreSQL is looked for when no URL is given.
pub const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The variable naming the test PostgreSQL; set, its tests must run.
pub const POSTGRES_URL_VAR: &str = "SWITCHYARD_TEST_POSTGRES_URL";
/// Set to `1`, PostgreSQL tests fail instead of skipping when no PostgreSQL
/// answers (`.ci/run` sets it).
pub const REQUIRE_POSTGRES_VAR: &str = "SWITCHYARD_REQUIRE_POSTGRES";

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An engine with one flow, `unknown@1`, that asks a name (so the session
/// stays live after the first turn), then thanks and ends.
pub fn ask_name_engine() -> switchyard_engine::engine::Engine {
    use switchyard_engine::flow::{Lifecycle, VersionDecl};
    use switchyard_engine::kinds::{Ask, Say, To};
    let flow = VersionDecl::new("unknown", 1, Lifecycle::Active)
        .texts("[ask]\nSeu nome?\n[bad]\nNome?\n[handoff]\natendente\n[done]\nObrigado\n")
        .entry("ask")
        .step("ask", Ask::new("ask", "name", |text| Some(text.trim().to_owned()), "bad", To::Step("done")))
        .step("done", Say::finish("done"));
    let registry = std::sync::Arc::new(switchyard_engine::registry::Registry::new(vec![flow]).expect("a valid flow"));
    let resolver = switchyard_engine::resolve::Resolver::new(&registry, switchyard_engine::resolve::Overrides::none(), Box::new(switchyard_engine::resolve::NoRules));
    switchyard_engine::engine::Engine::new(registry, resolver, switchyard_engine::engine::EngineConfig::default()).expect("an engine")
}

/// A URL for a fresh SQLite file under the system temp directory.
pub fn fresh_sqlite_url(prefix: &str) -> String {
    let dir = std::env::temp_dir().join(format!("switchyard-{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}.db", unique()));
    let _ = std::fs::remove_file(&path);
    format!("sqlite://{}", path.display())
}

/// Whether a PostgreSQL that does not answer must fail the test.
pub fn postgres_required() -> bool {
    std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|value| value == "1") || std::env::var(POSTGRES_URL_VAR).is_ok_and(|url| !url.is_empty())
}

/// Written to the real stderr, past the test harness's capture, so a skip
/// shows in `cargo test`'s output.
fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The test server's base URL, or `None` when PostgreSQL tests are skipped
/// (the reason is noted once per test binary, and each skipped test names
/// itself). Panics instead when PostgreSQL is required.
async fn server() -> Option<String> {
    static CHECKED: OnceLock<Result<String, String>> = OnceLock::new();
    let checked = match CHECKED.get() {
        Some(checked) => checked.clone(),
        None => {
            let url = std::env::var(POSTGRES_URL_VAR).ok().filter(|url| !url.is_empty()).unwrap_or_else(|| LOCAL_POSTGRES.to_owned());
            let answer = PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(3)).connect(&url).await;
            let checked = match answer {
                Ok(pool) => {
                    pool.close().await;
                    Ok(url)
                }
                Err(err) => Err(format!("nothing answers at {} ({err})", crate::redact_url(&url))),
            };
            if let Err(why) = &checked && !postgres_required() {
                note(&format!("note: PostgreSQL tests skipped: {why}; set {POSTGRES_URL_VAR} to run them"));
            }
            CHECKED.get_or_init(|| checked).clone()
        }
    };
    match checked {
        Ok(url) => Some(url),
        Err(why) if postgres_required() => panic!("PostgreSQL is required ({REQUIRE_POSTGRES_VAR}=1 or {POSTGRES_URL_VAR} set) but {why}"),
        Err(_) => {
            let test = std::thread::current().name().unwrap_or("a test").to_owned();
            note(&format!("note: skipped {test}: no PostgreSQL"));
            None
        }
    }
}

/// A fresh, empty schema on the test PostgreSQL, dropped (with everything
/// in it) when this value is dropped. Derefs to the URL that selects it
/// (its `search_path` set through the URL's `options`).
pub struct PgSchema {
    url: String,
    server: String,
    name: String,
}

impl PgSchema {
    /// The URL whose connections use this schema.
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Deref for PgSchema {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl AsRef<str> for PgSchema {
    fn as_ref(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for PgSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for PgSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSchema").field("name", &self.name).finish()
    }
}

impl Drop for PgSchema {
    /// Drops the schema from a thread of its own (a test's runtime may be
    /// the one running this drop, and cannot be blocked on). Waits at most
    /// a few seconds for locks; a schema that could not be dropped is
    /// reported, and goes with the CI run's database.
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|err| err.to_string())?;
            runtime.block_on(async {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(5))
                    .after_connect(|connection, _| Box::pin(async move { connection.execute("SET lock_timeout = '5s'").await.map(|_| ()) }))
                    .connect(&server)
                    .await
                    .map_err(|err| err.to_string())?;
                // A store the test dropped may still hold a connection (a
                // background task's, in an open transaction) until the test's
                // runtime ends; the schema is the test's own, so whatever
                // still locks its tables is the test's and is ended first.
                let mut result = Ok(());
                for _ in 0..3 {
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                    )
                    .bind(&name)
                    .execute(&pool)
                    .await;
                    result = pool.execute(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE"))).await.map(|_| ()).map_err(|err| err.to_string());
                    if result.is_ok() {
                        break;
                    }
                }
                pool.close().await;
                result
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => note(&format!("note: test schema {} not dropped: {err}", self.name)),
            Err(_) => note(&format!("note: test schema {} not dropped: the dropping thread panicked", self.name)),
        }
    }
}

/// A fresh, empty schema on the test PostgreSQL, or `None` when PostgreSQL
/// tests are skipped. Keep it alive as long as the test uses the database:
/// dropping it drops the schema.
pub async fn fresh_postgres_url() -> Option<PgSchema> {
    let server = server().await?;
    let name = format!("switchyard_t_{}", unique());
    let pool = PgPoolOptions::new().max_connections(1).connect(&server).await.expect("test PostgreSQL answers");
    pool.execute(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).await.expect("create test schema");
    pool.close().await;
    let separator = if server.contains('?') { '&' } else { '?' };
    Some(PgSchema { url: format!("{server}{separator}options=-c%20search_path%3D{name}"), server, name })
}

/// A store opened by [`every_backend`], with the schema it lives in (on
/// PostgreSQL), which is dropped with it. Derefs to the store. (Not the
/// crate's private `backend::Backend` trait, what a shared operation asks of
/// a store.)
pub struct TestBackend {
    db: crate::Db,
    _schema: Option<PgSchema>,
}

impl Deref for TestBackend {
    type Target = crate::Db;
    fn deref(&self) -> &crate::Db {
        &self.db
    }
}

/// A fresh store on every backend this machine has: SQLite always,
/// PostgreSQL when it answers (or must answer, see the module docs).
pub async fn every_backend(prefix: &str) -> Vec<TestBackend> {
    let settings = crate::postgres::PgSettings::default();
    let mut stores = vec![TestBackend { db: crate::open(&fresh_sqlite_url(prefix), &settings).await.expect("open sqlite"), _schema: None }];
    if let Some(schema) = fresh_postgres_url().await {
        stores.push(TestBackend { db: crate::open(&schema, &settings).await.expect("open postgres"), _schema: Some(schema) });
    }
    stores
}
