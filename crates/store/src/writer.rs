//! Group commit for SQLite: one thread owns the write connection, takes
//! every write that is queued (up to [`MAX_BATCH`]) into one transaction,
//! commits once, and then answers each waiter.
//!
//! A write is a list of [`Statement`]s that must apply together (a turn: its
//! inbox entry, sessions, events and replies). One that fails (a stale
//! revision, a processed entry) is rolled back alone and the others in the
//! batch still commit: the batch runs bare first and, only when a write of
//! it is refused, again with a `SAVEPOINT` per write ([`commit_batch`]). Nobody is
//! answered before the `COMMIT` returns, and a failed commit fails every
//! write of the batch: nothing is acknowledged that is not on disk.
//!
//! Batching is adaptive: the thread blocks for the first write and then
//! takes only what is already waiting, so a lone write commits at once and
//! a burst shares one fsync. The queue is bounded ([`QUEUE`]): a
//! [`Writer::try_write`] on a full queue fails at once with
//! [`StoreError::Unavailable`] (the webhook answers 503 and Evolution
//! retries); [`Writer::write`] waits for room.
//!
//! The hot-path reads run on the same thread and connection, between
//! transactions ([`Writer::read`]): this connection keeps its page cache
//! across its own commits, where a separate read connection loses it at
//! every commit and reads each page again.
//!
//! Statements are plain SQL with `?` placeholders and owned [`Param`]s, so
//! the callers build them on their own threads and the writer only runs
//! them (prepared once, cached). An in-memory database exists only on its
//! one sqlx connection, so there the same statements run through that
//! connection instead, one write per transaction ([`Direct`]).

use std::collections::hash_map::{Entry, HashMap};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};
use sqlx::SqlitePool;
use switchyard_engine::store::StoreError;
use tokio::sync::{mpsc, oneshot};

use crate::reader::{Cursor, Names};

/// The most writes one transaction takes.
pub const MAX_BATCH: usize = 512;
/// Writes that may wait for the writer before `try_write` refuses.
pub const QUEUE: usize = 4096;

/// A bound value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Param {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Param {
    fn from(value: i64) -> Param {
        Param::Int(value)
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Param {
        Param::Text(value.to_owned())
    }
}

impl From<String> for Param {
    fn from(value: String) -> Param {
        Param::Text(value)
    }
}

impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(value: Option<T>) -> Param {
        value.map_or(Param::Null, Into::into)
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Param::Int(value) => ToSqlOutput::Borrowed(ValueRef::Integer(*value)),
            Param::Text(value) => ToSqlOutput::Borrowed(ValueRef::Text(value.as_bytes())),
        })
    }
}

/// What a statement must do for its write to stand.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Check {
    /// Nothing: its result is the number of rows it changed.
    Any,
    /// Change exactly one row, or the write is refused as a
    /// [`StoreError::Conflict`] with this message.
    One(String),
    /// A `RETURNING` statement: its result is the first column of its first
    /// row (`None` when it returned none).
    Returning,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Statement {
    pub sql: &'static str,
    pub params: Vec<Param>,
    pub check: Check,
}

impl Statement {
    pub fn new(sql: &'static str, params: Vec<Param>) -> Statement {
        Statement { sql, params, check: Check::Any }
    }

    pub fn one(sql: &'static str, params: Vec<Param>, conflict: String) -> Statement {
        Statement { sql, params, check: Check::One(conflict) }
    }

    pub fn returning(sql: &'static str, params: Vec<Param>) -> Statement {
        Statement { sql, params, check: Check::Returning }
    }
}

/// Per statement of a write: the rows it changed, or what it returned.
pub(crate) type Results = Vec<Option<i64>>;

struct Write {
    statements: Vec<Statement>,
    done: oneshot::Sender<Result<Results, StoreError>>,
}

/// A read run on the writer's connection, which answers its caller itself.
type Read = Box<dyn FnOnce(&mut Cursor<'_>) + Send>;

enum Job {
    Write(Write),
    Read(Read),
}

/// The handle to the writer thread; clones share it. The thread ends when
/// the last handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Write(write) => f.debug_struct("Write").field("statements", &write.statements.len()).finish(),
            Job::Read(_) => f.write_str("Read"),
        }
    }
}

/// WAL pages after which a commit copies the WAL back into the database
/// (SQLite's default is 1 000). A page the hot path changes again and again
/// (an index leaf, the tail of a table) is copied once per checkpoint, not
/// once per commit, so a longer WAL copies fewer pages per message: at
/// 1 000 contacts the writer thread spent ~12% of its time checkpointing
/// at 1 000 pages, and 16 000 was ahead in 11 of 11 pairs there (4 of 6
/// at 50 contacts; BENCHMARKS, "eleventh session", item 4). The cost: a `-wal`
/// file of about 64 MB (more while a reader holds an old snapshot), which
/// keeps its largest size, and as much to replay after a crash; with
/// `SQLITE_SYNCHRONOUS=normal` (no fsync per commit) a power loss can drop
/// the commits since the last checkpoint. An erasure still cuts the WAL at
/// once (`privacy`).
pub(crate) const WAL_AUTOCHECKPOINT: u32 = 16_000;

/// `synchronous` is the PRAGMA's value (`FULL` or `NORMAL`).
pub(crate) fn start(path: &str, synchronous: &str) -> Result<Writer, StoreError> {
    let connection = Connection::open(path).map_err(|err| StoreError::Unavailable(format!("cannot open '{path}' for writing: {err}")))?;
    // `temp_store = MEMORY`: each write's savepoint keeps the pages it
    // changes in a statement journal, a temporary file by default; written
    // through the kernel that was about a quarter of the writer thread's
    // time (`subjournalPageIfRequired`). In memory it costs a page copy.
    // `cache_size` (64 MiB at most): the hot reads run here too
    // ([`Writer::read`]), on pages this connection keeps across its commits.
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT};"
        ))
        .map_err(|err| StoreError::Unavailable(format!("cannot set up '{path}' for writing: {err}")))?;
    connection.busy_timeout(Duration::from_secs(5)).map_err(map_err)?;
    crate::reader::stable_plans(&connection)?;
    connection.set_prepared_statement_cache_capacity(32);
    let (queue, jobs) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("sqlite-writer".to_owned())
        .spawn(move || run(connection, jobs))
        .map_err(|err| StoreError::Other(format!("cannot start the SQLite writer thread: {err}")))?;
    Ok(Writer { queue })
}

fn gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer stopped".to_owned())
}

impl Writer {
    /// Applies `statements` together, waiting for room in the queue.
    pub async fn write(&self, statements: Vec<Statement>) -> Result<Results, StoreError> {
        let (done, answer) = oneshot::channel();
        self.queue.send(Job::Write(Write { statements, done })).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Runs `read` on the writer's connection, between its transactions:
    /// it sees the last commit, like any reader, but with the pages the
    /// writer keeps in its cache. A read connection drops its whole page
    /// cache at the first read after any commit and reads every page again
    /// with `pread`, which under load was a third of the serving process's
    /// CPU.
    pub async fn read<T: Send + 'static>(&self, read: impl FnOnce(&mut Cursor<'_>) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        let (done, answer) = oneshot::channel();
        let job: Read = Box::new(move |cursor| {
            let _ = done.send(read(cursor));
        });
        self.queue.send(Job::Read(job)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Applies `statements` together, or refuses at once when [`QUEUE`]
    /// writes are already waiting (backpressure on the webhook).
    pub async fn try_write(&self, statements: Vec<Statement>) -> Result<Results, StoreError> {
        let (done, answer) = oneshot::channel();
        self.queue.try_send(Job::Write(Write { statements, done })).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => {
                StoreError::Unavailable(format!("the write queue is full ({QUEUE} writes waiting): retry later"))
            }
            mpsc::error::TrySendError::Closed(_) => gone(),
        })?;
        answer.await.map_err(|_| gone())?
    }
}

pub(crate) fn map_err(err: rusqlite::Error) -> StoreError {
    match err.sqlite_error() {
        Some(failure) if failure.code == ErrorCode::ConstraintViolation
            && matches!(failure.extended_code, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) =>
        {
            StoreError::Conflict(err.to_string())
        }
        Some(failure) if matches!(failure.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unavailable(err.to_string()),
        _ => StoreError::Other(err.to_string()),
    }
}

/// The writer's statements, each prepared once and kept by the address of
/// its SQL (every statement's SQL is a literal, and there are a few dozen).
/// rusqlite's own cache (`prepare_cached`) hashes the whole SQL text twice
/// per use and copies it into a new `Arc<str>` each time: for 10-20
/// statements per customer message, that was hashing and copying a few
/// kilobytes of SQL per message.
struct Prepared<'c> {
    connection: &'c Connection,
    statements: HashMap<(usize, usize), rusqlite::Statement<'c>>,
}

impl<'c> Prepared<'c> {
    fn statement(&mut self, sql: &'static str) -> Result<&mut rusqlite::Statement<'c>, StoreError> {
        Ok(match self.statements.entry((sql.as_ptr() as usize, sql.len())) {
            Entry::Occupied(prepared) => prepared.into_mut(),
            Entry::Vacant(slot) => slot.insert(self.connection.prepare(sql).map_err(map_err)?),
        })
    }
}

impl std::ops::Deref for Prepared<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection
    }
}

fn run(connection: Connection, mut jobs: mpsc::Receiver<Job>) {
    let mut prepared = Prepared { connection: &connection, statements: HashMap::new() };
    let mut columns = Names::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = jobs.blocking_recv() {
        end_open(&connection);
        // Reads run as they come, before the batch's transaction begins:
        // they see the last commit and do not wait for this one. They share
        // one read transaction: a read on its own takes and drops SQLite's
        // WAL read lock (two `fcntl`s) and checks the WAL index, and a round
        // holds several reads.
        let mut next = Some(job);
        let mut reading = false;
        while let Some(job) = next.take() {
            match job {
                Job::Read(read) => {
                    if !reading {
                        reading = control(&mut prepared, "BEGIN").is_ok();
                    }
                    read(&mut Cursor::new(&connection, &mut columns));
                }
                Job::Write(write) => batch.push(write),
            }
            if batch.len() < MAX_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        if reading {
            let _ = control(&mut prepared, "COMMIT");
            end_open(&connection);
        }
        if batch.is_empty() {
            continue;
        }
        let results = commit_batch(&mut prepared, &batch);
        for (job, result) in batch.drain(..).zip(results) {
            let _ = job.done.send(result);
        }
    }
}

/// One transaction for the whole batch. Its writes first run bare, with
/// no savepoint each: nearly every batch commits whole, and a savepoint
/// costs two statements and a copy of every page the write touches (the
/// statement journal). When one of them is refused (a stale revision, a
/// processed entry), its earlier statements may have changed rows, so the
/// transaction is rolled back and the batch runs again with a savepoint
/// per write ([`commit_isolated`]), which rolls back the refused write
/// alone. A lone write needs no second run: the rollback undid exactly it.
fn commit_batch(connection: &mut Prepared<'_>, batch: &[Write]) -> Vec<Result<Results, StoreError>> {
    if let Err(err) = control(connection, "BEGIN IMMEDIATE") {
        return fail_all(batch, format!("cannot start a write: {err}"));
    }
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let result = job.statements.iter().map(|statement| run_statement(connection, statement)).collect::<Result<Results, StoreError>>();
        if connection.is_autocommit() {
            return ended(batch, result);
        }
        match result {
            Ok(result) => results.push(Ok(result)),
            Err(err) => {
                if let Err(rollback) = connection.execute_batch("ROLLBACK") {
                    return fail_all(batch, format!("cannot roll back a refused write: {rollback}"));
                }
                if batch.len() == 1 {
                    return vec![Err(err)];
                }
                return commit_isolated(connection, batch);
            }
        }
    }
    commit(connection, batch, results)
}

/// One transaction for the whole batch; a savepoint per write.
fn commit_isolated(connection: &mut Prepared<'_>, batch: &[Write]) -> Vec<Result<Results, StoreError>> {
    if let Err(err) = control(connection, "BEGIN IMMEDIATE") {
        return fail_all(batch, format!("cannot start a write: {err}"));
    }
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let result = run_write(connection, &job.statements);
        if connection.is_autocommit() {
            return ended(batch, result);
        }
        results.push(result);
    }
    commit(connection, batch, results)
}

/// Rolls back whatever transaction is still open (none after a `COMMIT`
/// that succeeded). One left open by a failed `COMMIT` or `ROLLBACK` would
/// make every later `BEGIN` fail and let the reads see its writes.
fn end_open(connection: &Connection) {
    if !connection.is_autocommit() {
        let _ = connection.execute_batch("ROLLBACK");
    }
}

fn fail_all(batch: &[Write], message: String) -> Vec<Result<Results, StoreError>> {
    batch.iter().map(|_| Err(StoreError::Unavailable(message.clone()))).collect()
}

/// SQLite rolled the whole transaction back (disk full, I/O error): the
/// writes before this one are gone too.
fn ended(batch: &[Write], result: Result<Results, StoreError>) -> Vec<Result<Results, StoreError>> {
    fail_all(
        batch,
        format!(
            "a write failed and took its batch with it: {}",
            result.err().map_or_else(|| "the transaction ended".to_owned(), |err| err.to_string())
        ),
    )
}

/// Commits; a failed commit fails every write of the batch.
fn commit(connection: &mut Prepared<'_>, batch: &[Write], results: Vec<Result<Results, StoreError>>) -> Vec<Result<Results, StoreError>> {
    if let Err(err) = control(connection, "COMMIT") {
        let _ = connection.execute_batch("ROLLBACK");
        return fail_all(batch, format!("commit failed: {err}"));
    }
    results
}

/// Runs a statement without parameters, prepared once.
fn control(connection: &mut Prepared<'_>, sql: &'static str) -> Result<(), StoreError> {
    connection.statement(sql)?.execute([]).map(drop).map_err(map_err)
}

/// Runs one write under its own savepoint, even a lone statement: the hot
/// statements are `OR FAIL` (no statement journal, see
/// [`crate::sqlite::reply_statements`]), so a statement that fails is not
/// backed out by SQLite alone.
fn run_write(connection: &mut Prepared<'_>, statements: &[Statement]) -> Result<Results, StoreError> {
    control(connection, "SAVEPOINT w")?;
    let outcome = statements.iter().map(|statement| run_statement(connection, statement)).collect::<Result<Results, StoreError>>();
    if connection.is_autocommit() {
        return outcome;
    }
    let undone = if outcome.is_err() { control(connection, "ROLLBACK TO w") } else { Ok(()) };
    if let Err(err) = undone.and_then(|()| control(connection, "RELEASE w")) {
        // The savepoint could not undo or close this write: end the whole
        // transaction, so that no part of it commits (the caller sees the
        // transaction gone and fails the batch).
        let _ = connection.execute_batch("ROLLBACK");
        return Err(err);
    }
    outcome
}

fn run_statement(connection: &mut Prepared<'_>, statement: &Statement) -> Result<Option<i64>, StoreError> {
    let prepared = connection.statement(statement.sql)?;
    let params = rusqlite::params_from_iter(statement.params.iter());
    match &statement.check {
        Check::Returning => {
            let mut rows = prepared.query(params).map_err(map_err)?;
            let row = rows.next().map_err(map_err)?;
            row.map(|row| row.get::<_, i64>(0)).transpose().map_err(map_err)
        }
        Check::Any => Ok(Some(prepared.execute(params).map_err(map_err)? as i64)),
        Check::One(conflict) => match prepared.execute(params).map_err(map_err)? {
            1 => Ok(Some(1)),
            _ => Err(StoreError::Conflict(conflict.clone())),
        },
    }
}

/// Binds `params` to a sqlx query, in order.
pub(crate) fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    params: &'q [Param],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    for param in params {
        query = match param {
            Param::Null => query.bind(None::<i64>),
            Param::Int(value) => query.bind(*value),
            Param::Text(value) => query.bind(value.as_str()),
        };
    }
    query
}

/// The same statements on the one sqlx connection of an in-memory database:
/// one transaction per write.
pub(crate) async fn direct(pool: &SqlitePool, statements: Vec<Statement>) -> Result<Results, StoreError> {
    use sqlx::Row;
    let map = crate::sqlite::map_err;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map)?;
    let mut results = Vec::with_capacity(statements.len());
    for statement in &statements {
        let query = bind(sqlx::query(statement.sql), &statement.params);
        let result = match &statement.check {
            Check::Returning => query.fetch_optional(&mut *tx).await.map_err(map)?.map(|row| row.try_get::<i64, _>(0)).transpose().map_err(map)?,
            Check::Any => Some(query.execute(&mut *tx).await.map_err(map)?.rows_affected() as i64),
            Check::One(conflict) => match query.execute(&mut *tx).await.map_err(map)?.rows_affected() {
                1 => Some(1),
                _ => return Err(StoreError::Conflict(conflict.clone())),
            },
        };
        results.push(result);
    }
    tx.commit().await.map_err(map)?;
    Ok(results)
}
