//! What differs per backend outside the hot path, in one place. The topic
//! modules (`policy`, `report`, `sessions`, `holds`, `documents`, `aliases`,
//! `connections`, `recorded`, `privacy`, `figures`, `guard`) write each
//! statement once, with `$N` placeholders (SQLite reads `$N` as the N-th
//! parameter too), and each operation once, in a [`both!`] block that
//! compiles it for [`SqliteStore`] and for [`PgStore`]. All such an
//! operation may ask of its backend is this trait:
//!
//! | | SQLite | PostgreSQL |
//! |---|---|---|
//! | [`Backend::reads`] | the read pool (WAL: never blocks the writer) | the pool |
//! | [`Backend::writes`] | the second, one-connection write pool | the pool |
//! | [`Backend::begin_write`] | `BEGIN IMMEDIATE` (it reads, then writes) | `BEGIN` |
//! | [`Backend::begin_audit`] | `BEGIN IMMEDIATE` | `BEGIN` + the audit's advisory lock |
//! | [`Backend::map_err`] | busy/locked: unavailable | SQLSTATE classes |
//! | [`Backend::dialect`] | a tiny dialect detail (`rowid` against `seq`) | |
//!
//! The hot path (group commit, leases, `SKIP LOCKED` claims, node locks)
//! stays in `sqlite.rs`/`writer.rs`/`reader.rs` and `postgres.rs`.

use std::future::Future;

use sqlx::{Pool, Transaction};
use switchyard_engine::store::StoreError;

use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;

/// A transaction on backend `B`.
pub(crate) type Tx<B> = Transaction<'static, <B as Backend>::Db>;

/// The few things a shared operation needs that the backends do differently.
pub(crate) trait Backend {
    type Db: sqlx::Database;

    /// Where reads go.
    fn reads(&self) -> &Pool<Self::Db>;

    /// Where rare writes outside a transaction go.
    fn writes(&self) -> &Pool<Self::Db>;

    /// A transaction for a rare read-then-write.
    fn begin_write(&self) -> impl Future<Output = Result<Tx<Self>, StoreError>> + Send;

    /// A transaction that appends to the audit log: its seq is the revision
    /// every process polls, so it must grow in commit order.
    fn begin_audit(&self) -> impl Future<Output = Result<Tx<Self>, StoreError>> + Send;

    fn map_err(err: sqlx::Error) -> StoreError;

    /// `sqlite` on SQLite, `postgres` on PostgreSQL: for a dialect detail
    /// too small to name (which column keeps insertion order).
    fn dialect<T>(sqlite: T, postgres: T) -> T;
}

impl Backend for SqliteStore {
    type Db = sqlx::Sqlite;

    fn reads(&self) -> &Pool<sqlx::Sqlite> {
        self.pool()
    }

    fn writes(&self) -> &Pool<sqlx::Sqlite> {
        self.writer()
    }

    /// IMMEDIATE: a deferred transaction that reads and then writes would
    /// deadlock on the lock upgrade against another process doing the same.
    async fn begin_write(&self) -> Result<Tx<Self>, StoreError> {
        self.writer().begin_with("BEGIN IMMEDIATE").await.map_err(crate::sqlite::map_err)
    }

    /// SQLite's one writer already orders commits.
    async fn begin_audit(&self) -> Result<Tx<Self>, StoreError> {
        self.begin_write().await
    }

    fn map_err(err: sqlx::Error) -> StoreError {
        crate::sqlite::map_err(err)
    }

    fn dialect<T>(sqlite: T, _postgres: T) -> T {
        sqlite
    }
}

impl Backend for PgStore {
    type Db = sqlx::Postgres;

    fn reads(&self) -> &Pool<sqlx::Postgres> {
        self.pool()
    }

    fn writes(&self) -> &Pool<sqlx::Postgres> {
        self.pool()
    }

    async fn begin_write(&self) -> Result<Tx<Self>, StoreError> {
        self.pool().begin().await.map_err(crate::postgres::map_err)
    }

    /// The advisory lock first, taken by every audit-appending transaction:
    /// read-then-write changes (guards, compare-and-swap) cannot interleave.
    async fn begin_audit(&self) -> Result<Tx<Self>, StoreError> {
        let mut tx = self.begin_write().await?;
        crate::postgres::lock_audit(&mut tx).await?;
        Ok(tx)
    }

    fn map_err(err: sqlx::Error) -> StoreError {
        crate::postgres::map_err(err)
    }

    fn dialect<T>(_sqlite: T, postgres: T) -> T {
        postgres
    }
}

/// Writes an `impl` block once for both stores: the same items compile for
/// [`SqliteStore`] and for [`PgStore`], each against its [`Backend`] (the
/// module using it imports the trait).
macro_rules! both {
    ($($item:tt)*) => {
        impl crate::sqlite::SqliteStore { $($item)* }
        impl crate::postgres::PgStore { $($item)* }
    };
}
pub(crate) use both;
