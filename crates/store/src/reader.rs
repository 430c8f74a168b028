//! Reads for the hot path (the inbox, a contact's state, the due outbox)
//! on plain rusqlite connections, without sqlx's worker thread.
//!
//! They run on the writer's own connection, between its transactions
//! ([`crate::writer::Writer::read`]): a connection of their own would see
//! the same last commit, but SQLite drops a connection's whole page cache
//! at its first read after any other connection's commit, so under load
//! every read began by reading each page it needed again (`pread`), about
//! 20 pages per customer message. The writer's cache survives its own
//! commits.

use rusqlite::Connection;
use switchyard_engine::store::StoreError;

use crate::codec::NamedRow;
use crate::writer::{map_err, Param};

/// The column names of the statements a connection ran, per SQL text
/// (found by address: the callers' statements are literals), so rows are
/// decoded by index ([`NamedRow`]).
pub(crate) type Names = Vec<(&'static str, Box<[Box<str>]>)>;

/// The column names of `statement`, whose SQL is `sql`: looked up once per
/// connection and statement.
fn names<'c>(columns: &'c mut Names, sql: &'static str, statement: &rusqlite::Statement<'_>) -> &'c [Box<str>] {
    let at = match columns.iter().position(|(known, _)| std::ptr::eq(*known, sql)) {
        Some(at) => at,
        None => {
            columns.push((sql, statement.column_names().into_iter().map(Box::from).collect()));
            columns.len() - 1
        }
    };
    &columns[at].1
}

/// Reads on a connection, decoding rows by index.
pub(crate) struct Cursor<'a> {
    connection: &'a Connection,
    columns: &'a mut Names,
}

impl<'a> Cursor<'a> {
    pub fn new(connection: &'a Connection, columns: &'a mut Names) -> Cursor<'a> {
        Cursor { connection, columns }
    }

    /// Hands every row `sql` returns to `visit`, in order, until it says
    /// stop (false).
    fn rows(&mut self, sql: &'static str, params: &[Param], mut visit: impl FnMut(&NamedRow<'_>) -> Result<bool, StoreError>) -> Result<(), StoreError> {
        let mut statement = self.connection.prepare_cached(sql).map_err(map_err)?;
        let names = names(self.columns, sql, &statement);
        let mut rows = statement.query(rusqlite::params_from_iter(params.iter())).map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            if !visit(&NamedRow::new(row, names))? {
                break;
            }
        }
        Ok(())
    }

    /// Every row `sql` returns, each decoded by `decode`.
    pub fn all<T>(&mut self, sql: &'static str, params: &[Param], decode: impl Fn(&NamedRow<'_>) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.rows(sql, params, |row| {
            out.push(decode(row)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Hands every row `sql` returns to `visit`, in order.
    pub fn each(&mut self, sql: &'static str, params: &[Param], mut visit: impl FnMut(&NamedRow<'_>) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.rows(sql, params, |row| visit(row).map(|()| true))
    }

    /// The first row `sql` returns, decoded by `decode`.
    pub fn first<T>(&mut self, sql: &'static str, params: &[Param], decode: impl Fn(&NamedRow<'_>) -> Result<T, StoreError>) -> Result<Option<T>, StoreError> {
        let mut first = None;
        self.rows(sql, params, |row| {
            first = Some(decode(row)?);
            Ok(false)
        })?;
        Ok(first)
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
