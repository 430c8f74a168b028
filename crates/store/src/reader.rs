//! Reads for the hot path (the inbox, a contact's state, the due outbox)
//! on plain SQLite connections, run inline on the caller's thread.
//!
//! Each is a point read on an index that takes microseconds; sqlx would
//! send it to its connection's worker thread and back, which costs more
//! than the read. In WAL mode readers see the last commit and never wait
//! for the writer, so holding a tokio worker for the read is brief. Idle
//! connections are kept for the next read ([`IDLE`] at most); more are
//! opened when reads overlap.

use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use switchyard_engine::store::StoreError;

use crate::writer::{map_err, Param};

/// Idle read connections kept open.
const IDLE: usize = 8;

pub(crate) struct Readers {
    path: String,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish_non_exhaustive()
    }
}

/// The query planner's stability guarantee (`SQLITE_DBCONFIG_ENABLE_QPSG`):
/// a cached statement keeps its plan whatever values are bound. Without it
/// the bundled SQLite (built with STAT4) marks statements such as
/// `due_outbox` and `pending_contacts` to be re-prepared (parsed and
/// planned again) every time a parameter changes, which was ~4% of serve's
/// CPU. The plans are the ones SQLite picks without statistics anyway (no
/// ANALYZE runs on these stores).
pub(crate) fn stable_plans(connection: &Connection) -> Result<(), StoreError> {
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(drop).map_err(map_err)
}

impl Readers {
    pub fn new(path: &str) -> Readers {
        Readers { path: path.to_owned(), idle: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(&self.path, flags)
            .map_err(|err| StoreError::Unavailable(format!("cannot open '{}' for reading: {err}", self.path)))?;
        connection.busy_timeout(Duration::from_secs(5)).map_err(map_err)?;
        connection.set_prepared_statement_cache_capacity(32);
        stable_plans(&connection)?;
        Ok(connection)
    }

    /// Runs `read` on an idle connection (or a new one).
    fn with<T>(&self, read: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < IDLE {
            idle.push(connection);
        }
        result
    }

    /// Every row `sql` returns, each decoded by `decode`.
    pub fn all<T>(&self, sql: &str, params: &[Param], decode: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(map_err)?;
            let mut rows = statement.query(rusqlite::params_from_iter(params.iter())).map_err(map_err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(map_err)? {
                out.push(decode(row)?);
            }
            Ok(out)
        })
    }

    /// Hands every row `sql` returns to `visit`, in order.
    pub fn each(&self, sql: &str, params: &[Param], mut visit: impl FnMut(&rusqlite::Row<'_>) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(map_err)?;
            let mut rows = statement.query(rusqlite::params_from_iter(params.iter())).map_err(map_err)?;
            while let Some(row) = rows.next().map_err(map_err)? {
                visit(row)?;
            }
            Ok(())
        })
    }

    /// The first row `sql` returns, decoded by `decode`.
    pub fn first<T>(&self, sql: &str, params: &[Param], decode: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>) -> Result<Option<T>, StoreError> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(map_err)?;
            let mut rows = statement.query(rusqlite::params_from_iter(params.iter())).map_err(map_err)?;
            rows.next().map_err(map_err)?.map(decode).transpose()
        })
    }
}
