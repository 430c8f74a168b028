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
//! | [`Backend::begin_erasure`] | `BEGIN IMMEDIATE` | audit lock + `LOCK TABLE sessions` |
//! | [`Backend::CONTACT_CLAIMS`] | none | the contact's lease, its replies' claims |
//! | [`Backend::scrub`] | WAL checkpoint, truncated | `VACUUM` of the tables written |
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

    /// A transaction that erases a contact (`privacy`): an audit append that
    /// no turn may race (a session started between its live check and its
    /// renames would be renamed live).
    fn begin_erasure(&self) -> impl Future<Output = Result<Tx<Self>, StoreError>> + Send;

    /// Statements (`$1` = one id of the contact) that free an erased
    /// contact from what only this backend keeps: leases and claims.
    const CONTACT_CLAIMS: &'static [&'static str];

    /// Clears the old row versions an erasure or purge left on disk, after
    /// its commit; `tables` are those it wrote.
    fn scrub(&self, tables: &'static str) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn map_err(err: sqlx::Error) -> StoreError;

    /// [`Backend::map_err`], for code that has a store but does not name its type.
    fn error(&self, err: sqlx::Error) -> StoreError {
        Self::map_err(err)
    }

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

    /// The writer's lock keeps turns out already.
    async fn begin_erasure(&self) -> Result<Tx<Self>, StoreError> {
        self.begin_write().await
    }

    const CONTACT_CLAIMS: &'static [&'static str] = &[];

    /// Every connection runs with `secure_delete`; this writes every
    /// committed page into the database file and cuts the WAL, which still
    /// holds the pages' old versions, to zero bytes. It waits (the busy
    /// timeout) for readers on an older snapshot; a reader that keeps one
    /// longer makes it fail rather than leave the file as it was silently.
    async fn scrub(&self, _tables: &'static str) -> Result<(), StoreError> {
        for _ in 0..2 {
            let (busy, _, _): (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(self.writer()).await.map_err(crate::sqlite::map_err)?;
            if busy == 0 {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable("the WAL checkpoint stayed busy: a reader kept an old snapshot open".to_owned()))
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

    /// Other processes keep committing turns: they wait for the erasure,
    /// which is rare and short.
    async fn begin_erasure(&self) -> Result<Tx<Self>, StoreError> {
        let mut tx = self.begin_audit().await?;
        sqlx::query("LOCK TABLE sessions IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await.map_err(crate::postgres::map_err)?;
        Ok(tx)
    }

    const CONTACT_CLAIMS: &'static [&'static str] =
        &["DELETE FROM contact_leases WHERE contact = $1", "UPDATE outbox SET claimed_by = NULL, claim_until = NULL WHERE contact = $1"];

    /// `VACUUM` of the tables written, so no dead row version can be read.
    /// It cannot run in a transaction block, so it goes as a plain
    /// (simple-protocol) statement on a pooled connection.
    async fn scrub(&self, tables: &'static str) -> Result<(), StoreError> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM {tables}"))).execute(self.pool()).await.map_err(crate::postgres::map_err)?;
        Ok(())
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
