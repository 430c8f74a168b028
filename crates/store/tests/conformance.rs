//! The store contract on every backend: the in-memory reference store and
//! SQLite (a fresh temporary file per test).

use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh SQLite file under the system temp directory, unique per test.
async fn fresh_sqlite() -> switchyard_store::sqlite::SqliteStore {
    let dir = std::env::temp_dir().join(format!("switchyard-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("store-{}.db", NEXT.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&path);
    switchyard_store::sqlite::SqliteStore::open(&format!("sqlite://{}", path.display())).await.expect("open sqlite")
}

mod sqlite {
    switchyard_store::conformance_suite!(super::fresh_sqlite());
}

mod memory {
    switchyard_store::conformance_suite!(async { std::sync::Arc::new(switchyard_engine::store::MemoryStore::new()) });
}
