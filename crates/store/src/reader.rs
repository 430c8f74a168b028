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

use crate::codec::NamedRow;
use crate::writer::{map_err, Param};

/// Idle read connections kept open.
const IDLE: usize = 8;

pub(crate) struct Readers {
    path: String,
    idle: Mutex<Vec<Reader>>,
}

/// A read connection, and the column names of the statements it ran (per
/// SQL text, found by address: the callers' statements are literals), so
/// rows are decoded by index ([`NamedRow`]).
struct Reader {
    connection: Connection,
    columns: Vec<(&'static str, Box<[Box<str>]>)>,
}

/// The column names of `statement`, whose SQL is `sql`: looked up once per
/// reader connection and statement.
fn names<'c>(columns: &'c mut Vec<(&'static str, Box<[Box<str>]>)>, sql: &'static str, statement: &rusqlite::Statement<'_>) -> &'c [Box<str>] {
    let at = match columns.iter().position(|(known, _)| std::ptr::eq(*known, sql)) {
        Some(at) => at,
        None => {
            columns.push((sql, statement.column_names().into_iter().map(Box::from).collect()));
            columns.len() - 1
        }
    };
    &columns[at].1
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

    fn open(&self) -> Result<Reader, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let connection = Connection::open_with_flags(&self.path, flags)
            .map_err(|err| StoreError::Unavailable(format!("cannot open '{}' for reading: {err}", self.path)))?;
        connection.busy_timeout(Duration::from_secs(5)).map_err(map_err)?;
        connection.set_prepared_statement_cache_capacity(32);
        stable_plans(&connection)?;
        Ok(Reader { connection, columns: Vec::new() })
    }

    /// Runs `read` on an idle connection (or a new one).
    fn with<T>(&self, read: impl FnOnce(&mut Reader) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let mut reader = match idle {
            Some(reader) => reader,
            None => self.open()?,
        };
        let result = read(&mut reader);
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < IDLE {
            idle.push(reader);
        }
        result
    }

    /// Hands every row `sql` returns to `visit`, in order, until it says
    /// stop (false).
    fn rows(&self, sql: &'static str, params: &[Param], mut visit: impl FnMut(&NamedRow<'_>) -> Result<bool, StoreError>) -> Result<(), StoreError> {
        self.with(|reader| {
            let mut statement = reader.connection.prepare_cached(sql).map_err(map_err)?;
            let names = names(&mut reader.columns, sql, &statement);
            let mut rows = statement.query(rusqlite::params_from_iter(params.iter())).map_err(map_err)?;
            while let Some(row) = rows.next().map_err(map_err)? {
                if !visit(&NamedRow::new(row, names))? {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Every row `sql` returns, each decoded by `decode`.
    pub fn all<T>(&self, sql: &'static str, params: &[Param], decode: impl Fn(&NamedRow<'_>) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.rows(sql, params, |row| {
            out.push(decode(row)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Hands every row `sql` returns to `visit`, in order.
    pub fn each(&self, sql: &'static str, params: &[Param], mut visit: impl FnMut(&NamedRow<'_>) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.rows(sql, params, |row| visit(row).map(|()| true))
    }

    /// The first row `sql` returns, decoded by `decode`.
    pub fn first<T>(&self, sql: &'static str, params: &[Param], decode: impl Fn(&NamedRow<'_>) -> Result<T, StoreError>) -> Result<Option<T>, StoreError> {
        let mut first = None;
        self.rows(sql, params, |row| {
            first = Some(decode(row)?);
            Ok(false)
        })?;
        Ok(first)
    }
}
