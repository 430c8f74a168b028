//! The store contract on every backend: the in-memory reference store,
//! SQLite (a fresh temporary file per test) and PostgreSQL (a fresh schema
//! per test, dropped after it; skipped, with a note, where no PostgreSQL
//! answers, unless `SWITCHYARD_REQUIRE_POSTGRES=1`).

use switchyard_store::postgres::{PgSettings, PgStore};
use switchyard_store::sqlite::SqliteStore;
use switchyard_store::testing::{fresh_postgres_url, fresh_sqlite_url, PgSchema};

async fn fresh_sqlite() -> SqliteStore {
    SqliteStore::open(&fresh_sqlite_url("conformance")).await.expect("open sqlite")
}

async fn fresh_postgres() -> Option<(PgStore, PgSchema)> {
    let schema = fresh_postgres_url().await?;
    Some((PgStore::open(&schema, &PgSettings::default()).await.expect("open postgres"), schema))
}

mod sqlite {
    switchyard_store::conformance_suite!(super::fresh_sqlite());
}

mod postgres {
    switchyard_store::conformance_suite!(optional super::fresh_postgres());
}

mod memory {
    switchyard_store::conformance_suite!(async { std::sync::Arc::new(switchyard_engine::memory::MemoryStore::new()) });
}
