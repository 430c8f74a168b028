//! Fresh databases for tests, shared by this crate's tests and the
//! `switchyard` crate's: a SQLite file per call, and on PostgreSQL a schema
//! of its own per call (so tests running at once never see each other's
//! rows).
//!
//! PostgreSQL is found through `SWITCHYARD_TEST_POSTGRES_URL` (`.ci/run`
//! creates a fresh database per run and sets it). Without it, the local
//! default `postgres://postgres@127.0.0.1:5432/test` is tried; when nothing
//! answers there, PostgreSQL tests are skipped, and say so on stderr.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Executor};

/// Where the test PostgreSQL is looked for when no URL is given.
pub const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The variable naming the test PostgreSQL; set, its tests must run.
pub const POSTGRES_URL_VAR: &str = "SWITCHYARD_TEST_POSTGRES_URL";

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.subsec_nanos());
    format!("{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A URL for a fresh SQLite file under the system temp directory.
pub fn fresh_sqlite_url(prefix: &str) -> String {
    let dir = std::env::temp_dir().join(format!("switchyard-{prefix}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}.db", unique()));
    let _ = std::fs::remove_file(&path);
    format!("sqlite://{}", path.display())
}

/// The test server's base URL, or `None` (with a note on stderr, once) when
/// PostgreSQL tests are skipped. Panics when the URL was given explicitly
/// but does not answer: CI must not pass by skipping.
async fn server() -> Option<String> {
    static CHECKED: OnceLock<Option<String>> = OnceLock::new();
    if let Some(checked) = CHECKED.get() {
        return checked.clone();
    }
    let given = std::env::var(POSTGRES_URL_VAR).ok().filter(|url| !url.is_empty());
    let url = given.clone().unwrap_or_else(|| LOCAL_POSTGRES.to_owned());
    let answer = PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(3)).connect(&url).await;
    let checked = match answer {
        Ok(pool) => {
            pool.close().await;
            Some(url)
        }
        Err(err) if given.is_some() => panic!("{POSTGRES_URL_VAR}={url} does not answer: {err}"),
        Err(err) => {
            // Written to the real stderr, past the test harness's capture, so
            // the skip shows in `cargo test`'s output.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "note: PostgreSQL tests skipped: nothing answers at {url} ({err}); set {POSTGRES_URL_VAR} to run them"
            );
            None
        }
    };
    CHECKED.get_or_init(|| checked).clone()
}

/// A URL to a fresh, empty schema on the test PostgreSQL (its `search_path`
/// set through the URL's `options`), or `None` when PostgreSQL tests are
/// skipped.
pub async fn fresh_postgres_url() -> Option<String> {
    let url = server().await?;
    let schema = format!("switchyard_t_{}", unique());
    let pool = PgPoolOptions::new().max_connections(1).connect(&url).await.expect("test PostgreSQL answers");
    pool.execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create test schema");
    pool.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{separator}options=-c%20search_path%3D{schema}"))
}

/// A fresh store on every backend this machine has: SQLite always,
/// PostgreSQL when it answers.
pub async fn every_backend(prefix: &str) -> Vec<crate::Db> {
    let settings = crate::postgres::PgSettings::default();
    let mut stores = vec![crate::open(&fresh_sqlite_url(prefix), &settings).await.expect("open sqlite")];
    if let Some(url) = fresh_postgres_url().await {
        stores.push(crate::open(&url, &settings).await.expect("open postgres"));
    }
    stores
}
