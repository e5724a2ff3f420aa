//! Database access for both backends: one query code, two connection types.
//!
//! The backend is chosen by the URL scheme (`sqlite://…` or `postgres://…`). Blocking diesel work runs on
//! actix's blocking thread pool through [`Db::run`], so async workers never wait on the database.

pub mod backup;
mod checkpoint;
pub mod columns;
pub mod disagreements;
pub mod group_commit;
pub mod migrate;
pub mod plan;
pub mod prepared;
pub mod schema;
mod sqlite_plans;
mod sqlite_url;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, Connection, SimpleConnection, TransactionManager};
use diesel::r2d2::R2D2Connection;
use diesel::sql_types::{BigInt, Text};
use diesel::{PgConnection, RunQueryDsl, SqliteConnection};

use crate::error::ApiError;
use prepared::{Dynamic, ROWS_PER_STATEMENT};
pub use sqlite_url::sqlite_path;

#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

impl AnyConnection {
    pub fn backend(&self) -> Backend {
        match self {
            AnyConnection::Postgresql(_) => Backend::Postgres,
            AnyConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite://") {
            Ok(Backend::Sqlite)
        } else {
            Err("must start with sqlite:// or postgres://".into())
        }
    }
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Connection options that matter per connection (SQLite pragmas are per connection).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub url: String,
    pub busy_timeout_ms: u64,
}

/// For unit tests: the `n` of `sql`, a `SELECT count(*) AS n …`, on either kind of connection.
#[cfg(test)]
pub fn count<C>(conn: &mut C, sql: &str) -> i64
where
    C: diesel::connection::Connection,
    for<'a> diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'a, C, Counted>,
{
    diesel::sql_query(sql).get_result::<Counted>(conn).expect(sql).n
}

#[cfg(test)]
#[derive(diesel::QueryableByName)]
pub struct Counted {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[cfg(test)]
impl ConnectOptions {
    /// A SQLite database `test.db` in `dir`, for unit tests (busy timeout 1 s).
    pub fn sqlite_in(dir: &tempfile::TempDir) -> ConnectOptions {
        ConnectOptions {
            url: format!("sqlite://{}", dir.path().join("test.db").display()),
            busy_timeout_ms: 1000,
        }
    }
}

/// A connection manager that picks the backend from the URL and reports the real connection error
/// (diesel's stock multi-connection manager reduces every failure to "invalid connection url").
#[derive(Debug)]
pub struct Manager {
    options: ConnectOptions,
    backend: Backend,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("{0}")]
    Query(#[from] diesel::result::Error),
    #[error("{0}")]
    Url(String),
}

impl Manager {
    pub fn new(options: ConnectOptions) -> Result<Manager, ConnectError> {
        let backend = Backend::from_url(&options.url).map_err(ConnectError::Url)?;
        if backend == Backend::Sqlite {
            sqlite_plans::stabilize_query_plans();
        }
        Ok(Manager { options, backend })
    }

    pub fn connect(&self) -> Result<AnyConnection, ConnectError> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.options.url)?;
                // Every write path here creates or moves value, and an answer promises it survives a
                // crash: a server, database or role default of `off` (or `PGOPTIONS`) must not weaken that.
                conn.batch_execute("SET synchronous_commit = on")?;
                Ok(AnyConnection::Postgresql(conn))
            }
            Backend::Sqlite => {
                let path = sqlite_path(&self.options.url).map_err(ConnectError::Url)?;
                let mut conn = SqliteConnection::establish(&path)?;
                // Pragmas are per connection; foreign keys are off unless asked for. FULL sync because every
                // write path here creates or moves value and must survive a power cut once acknowledged.
                // Statement journals (every insert checked against a foreign key keeps one, to undo itself)
                // live in memory: in a temporary file each cost a write system call per statement. WAL
                // checkpoints are not a writer's work but a thread's of their own (`checkpoint`). Erased
                // personal data is overwritten in the pages a write touches anyway (`secure_delete = FAST`:
                // no extra I/O), rather than left readable in their free space.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; \
                     PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0; PRAGMA secure_delete = FAST;",
                    self.options.busy_timeout_ms
                ))?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<AnyConnection, ConnectError> {
        Manager::connect(self)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectError> {
        conn.ping().map_err(ConnectError::Query)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// A dedicated SQLite connection's page cache. It stays valid for as long as no other connection
/// writes, so the writer keeps its indexes' hot pages in memory instead of reading them again
/// from the file (SQLite's default is 2 MiB). At 64 MiB, the caches of an instance's writers were most
/// of its resident memory under batch load (153 MiB against 112 MiB at 16 MiB) at the same throughput:
/// pages beyond the hot ones are served by the operating system's file cache just as well.
const WRITER_CACHE_KIB: u32 = 16 * 1024;

/// The shared pool plus the backend it talks to.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    options: ConnectOptions,
    /// SQLite's, stopped when the last clone of the pool is dropped.
    _checkpointer: Option<Arc<checkpoint::Checkpointer>>,
    replica: Option<Replica>,
}

/// A PostgreSQL streaming replica for [`Db::read`], and how far this instance's own writes went.
#[derive(Clone)]
struct Replica {
    pool: Pool,
    /// The primary's WAL position (bytes) after this instance's latest write transaction: the replica
    /// serves a read only once it has replayed that far, so an instance always reads its own writes.
    written: Arc<AtomicU64>,
}

/// How long a read waits for a replica connection before it reads the primary instead.
const REPLICA_TIMEOUT: Duration = Duration::from_millis(500);

thread_local! {
    /// Set when a PostgreSQL write transaction commits on this thread; [`Db::note_writes`] takes it.
    static WROTE: Cell<bool> = const { Cell::new(false) };
}

/// A WAL position as bytes from the start (`pg_lsn` has no integer cast of its own).
const CURRENT_LSN: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS id";
const REPLAYED_LSN: &str = "SELECT COALESCE((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0) AS id";

impl Db {
    /// Opens the pool. The first connection is made eagerly so that a database that does not answer
    /// fails start-up with its own error message.
    pub fn connect(options: ConnectOptions, pool_size: u32, timeout: Duration) -> anyhow::Result<Db> {
        let manager = Manager::new(options.clone())?;
        let backend = manager.backend;
        if backend == Backend::Sqlite {
            prepare_sqlite_file(&options.url)?;
        }
        // Try once by hand: r2d2 would retry silently until its timeout and then say only "timed out".
        let probe = manager
            .connect()
            .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
        drop(probe);
        let checkpointer = match backend {
            Backend::Sqlite => Some(Arc::new(checkpoint::Checkpointer::start(Manager::new(
                options.clone(),
            )?)?)),
            Backend::Postgres => None,
        };
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .build(manager)?;
        Ok(Db {
            pool,
            backend,
            options,
            _checkpointer: checkpointer,
            replica: None,
        })
    }

    /// Sends [`Db::read`] work to the PostgreSQL replica at `url`. Its pool connects on demand: a
    /// replica that is down at start (or later) only sends reads to the primary.
    pub fn with_replica(mut self, url: &str, pool_size: u32) -> anyhow::Result<Db> {
        let manager = Manager::new(ConnectOptions {
            url: url.to_string(),
            busy_timeout_ms: self.options.busy_timeout_ms,
        })?;
        anyhow::ensure!(
            manager.backend == Backend::Postgres && self.backend == Backend::Postgres,
            "database.replica_url: a replica is for a PostgreSQL primary"
        );
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .connection_timeout(REPLICA_TIMEOUT)
            .build_unchecked(manager);
        self.replica = Some(Replica {
            pool,
            written: Arc::new(AtomicU64::new(0)),
        });
        Ok(self)
    }

    /// After work on `conn` that may have committed writes on this thread: when it did and a replica is
    /// configured, remembers how far the primary's WAL is, for [`Db::read`]. One small query per write
    /// transaction, and none without a replica.
    pub fn note_writes(&self, conn: &mut AnyConnection) {
        if !WROTE.with(|w| w.replace(false)) {
            return;
        }
        let Some(replica) = &self.replica else { return };
        match Dynamic::<BigInt>::new(CURRENT_LSN).get_result::<i64>(conn) {
            Ok(lsn) => {
                replica
                    .written
                    .fetch_max(u64::try_from(lsn).unwrap_or(0), Ordering::Relaxed);
            }
            // Unknown: every read goes to the primary until the next write tells.
            Err(_) => {
                replica.written.store(u64::MAX, Ordering::Relaxed);
            }
        }
    }

    /// A replica connection that has replayed this instance's writes, if there is one.
    fn caught_up_replica(&self) -> Option<PooledConn> {
        let replica = self.replica.as_ref()?;
        let mut conn = replica.pool.get().ok()?;
        let replayed: i64 = Dynamic::<BigInt>::new(REPLAYED_LSN).get_result(&mut *conn).ok()?;
        let written = replica.written.load(Ordering::Relaxed);
        (u64::try_from(replayed).unwrap_or(0) >= written).then_some(conn)
    }

    /// Runs read-only work for an anonymous caller (public lists, blocks, proofs, publications) on the
    /// replica when one is configured and has replayed this instance's writes, else on the primary.
    /// A signed-in caller's reads use [`Db::run`]: their writes may have gone through another instance.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        if self.replica.is_none() {
            return self.run(f).await;
        }
        let db = self.clone();
        actix_web::web::block(move || match db.caught_up_replica() {
            Some(mut conn) => f(&mut conn),
            None => f(&mut *db.get()?),
        })
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("blocking task failed: {e}")))?
    }

    /// Whether [`Db::read`] would use the replica now (for tests and readiness of the replica path).
    pub async fn reads_from_replica(&self) -> bool {
        let db = self.clone();
        actix_web::web::block(move || db.caught_up_replica().is_some())
            .await
            .unwrap_or(false)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations on a dedicated connection.
    pub fn migrate(&self) -> anyhow::Result<Vec<String>> {
        migrate::run(&Manager::new(self.options.clone())?)
    }

    /// A connection of its own, outside the pool, for a thread that writes all day (a group-commit
    /// writer): its prepared statements and, on SQLite, its page cache stay warm from one batch to the
    /// next, where a pooled connection would be a different one each time.
    ///
    /// On PostgreSQL it plans without sequential scans. Every statement a writer runs finds its rows
    /// through a key, so this only changes plans where a scan looked cheaper because a table was small,
    /// and it lets the writer keep its lookups prepared (`prepared::Planning::Cached`): a generic plan
    /// chosen while a table was small would otherwise stay a scan of it as it grows. It must be set
    /// before the first statement is prepared: a plan already cached does not change with the setting.
    pub fn dedicated(&self) -> Result<AnyConnection, ApiError> {
        let unavailable = |e: ConnectError| ApiError::unavailable_because("database unavailable", e);
        let mut conn = Manager::new(self.options.clone())
            .and_then(|manager| manager.connect())
            .map_err(unavailable)?;
        let session = match self.backend {
            Backend::Sqlite => format!("PRAGMA cache_size = -{WRITER_CACHE_KIB}"),
            Backend::Postgres => "SET enable_seqscan = off".to_string(),
        };
        conn.batch_execute(&session).map_err(|e| unavailable(e.into()))?;
        Ok(conn)
    }

    /// How many connections the pool holds and how many of them are idle.
    pub fn pool_state(&self) -> r2d2::State {
        self.pool.state()
    }

    pub fn get(&self) -> Result<PooledConn, ApiError> {
        self.pool
            .get()
            .map_err(|e| ApiError::unavailable_because("database unavailable", e))
    }

    /// Runs blocking database work on the blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        actix_web::web::block(move || {
            let mut conn = db.get()?;
            WROTE.with(|w| w.set(false));
            let answer = f(&mut conn);
            db.note_writes(&mut conn);
            answer
        })
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("blocking task failed: {e}")))?
    }
}

/// How long setting the journal mode waits for another process holding the file (an instance starting
/// beside a running one): long enough to outlast a writer's transaction, short enough to fail start-up
/// visibly.
const PREPARE_BUSY_TIMEOUT_MS: u32 = 5000;

/// SQLite's journal mode is a property of the file: set WAL once, before the pool opens parallel
/// connections (which otherwise race to change it and get "database is locked").
fn prepare_sqlite_file(url: &str) -> anyhow::Result<()> {
    let path = sqlite_path(url).map_err(|e| anyhow::anyhow!(e))?;
    if let Some(parent) = std::path::Path::new(&path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
        }
    }
    let mut conn = SqliteConnection::establish(&path)
        .map_err(|e| anyhow::anyhow!("cannot open SQLite database {path}: {e}"))?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {PREPARE_BUSY_TIMEOUT_MS}; PRAGMA journal_mode = WAL;"
    ))?;
    Ok(())
}

/// What a transaction is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tx {
    /// Reads and writes. On SQLite this is `BEGIN IMMEDIATE`: a deferred transaction that reads first
    /// and writes later fails with SQLITE_BUSY on the lock upgrade, without consulting busy_timeout.
    Write,
    /// One consistent snapshot for many reads (verification, reports): REPEATABLE READ on PostgreSQL.
    Snapshot,
}

fn in_transaction(conn: &mut AnyConnection) -> diesel::QueryResult<bool> {
    type Multi = <AnyConnection as Connection>::TransactionManager;
    Ok(
        <Multi as TransactionManager<AnyConnection>>::transaction_manager_status_mut(conn)
            .transaction_depth()?
            .is_some(),
    )
}

/// Runs `f` inside a transaction of the given kind, committing on `Ok` and rolling back on `Err`.
/// Nested calls become savepoints, so a service can be called inside its caller's transaction.
/// Serializes the transactions that name the same (`name`, `id`) until they end: a PostgreSQL
/// transaction-scoped advisory lock. On SQLite the write transaction is already the only one.
pub fn lock_until_commit(conn: &mut AnyConnection, name: &str, id: i64) -> diesel::QueryResult<()> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
            .bind::<diesel::sql_types::Text, _>(name)
            .bind::<diesel::sql_types::BigInt, _>(id)
            .execute(pg)?;
    }
    Ok(())
}

pub fn transaction<T, E, F>(conn: &mut AnyConnection, kind: Tx, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    type Multi = <AnyConnection as Connection>::TransactionManager;
    let outermost = !in_transaction(conn)?;
    // SQLite has one writer; waiting for it in SQLite's busy handler means sleeping and polling, which
    // starves unlucky writers for seconds under load. Queue this process's writers on a mutex instead.
    let sqlite_write = outermost && kind == Tx::Write && matches!(conn, AnyConnection::Sqlite(_));
    let _writer = if sqlite_write {
        Some(sqlite_writer_lock(conn)?)
    } else {
        None
    };
    match (conn as &mut AnyConnection, outermost, kind) {
        (AnyConnection::Sqlite(c), true, Tx::Write) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        (AnyConnection::Postgresql(c), true, Tx::Snapshot) => AnsiTransactionManager::begin_transaction_sql(
            c,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?,
        (conn, _, _) => Multi::begin_transaction(conn)?,
    }
    match f(conn) {
        Ok(value) => {
            Multi::commit_transaction(conn)?;
            if outermost && kind == Tx::Write && matches!(conn, AnyConnection::Postgresql(_)) {
                WROTE.with(|w| w.set(true));
            }
            Ok(value)
        }
        Err(e) => match Multi::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// The write lock of the database file this connection has open, shared by every connection of the
/// process to that file.
fn sqlite_writer_lock(conn: &mut AnyConnection) -> diesel::QueryResult<std::sync::MutexGuard<'static, ()>> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static LOCKS: OnceLock<Mutex<HashMap<String, &'static Mutex<()>>>> = OnceLock::new();
    // Kept prepared (every write transaction asks).
    let file: String =
        Dynamic::<Text>::new("SELECT file FROM pragma_database_list WHERE name = 'main'").get_result(conn)?;
    let lock: &'static Mutex<()> = {
        let mut locks = LOCKS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // One small mutex per database file for the life of the process. The explicit copy out of the
        // map keeps the 'static lifetime (auto-deref would tie it to the map's guard).
        #[allow(clippy::explicit_auto_deref)]
        *locks
            .entry(file)
            .or_insert_with(|| Box::leak(Box::new(Mutex::new(()))))
    };
    Ok(lock.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Tables whose ids [`reserve_ids`] hands out.
#[derive(Debug, Clone, Copy)]
pub enum Ids {
    Transfers,
    Activities,
}

impl Ids {
    fn table(self) -> &'static str {
        match self {
            Ids::Transfers => "transfers",
            Ids::Activities => "activities",
        }
    }
}

/// `n` new ids of a table, taken before its rows are written so that a multi-row insert knows each row's
/// id (the order of a multi-row `RETURNING` is not guaranteed on either backend). PostgreSQL takes them
/// from the table's sequence; on SQLite the caller's write transaction holds the only write lock, so the
/// ids after the highest ever used are free, and inserting them moves the AUTOINCREMENT counter on.
pub fn reserve_ids(conn: &mut AnyConnection, of: Ids, n: usize) -> diesel::QueryResult<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let table = of.table();
    match conn {
        // The count written into the statement's text: a statement without parameters keeps one plan per
        // connection. With the count a parameter, PostgreSQL planned it afresh on every execution (its
        // generic plan assumes a thousand rows, so the plan cache never chose it): two plannings per group
        // commit, 12,602 of the 17,700 plannings of an ingestion benchmark's run. Up to
        // `ROWS_PER_STATEMENT` ids are one statement of their count; more are taken in powers of two up to
        // 2,048, so that a batch's 500 ids are five statements, not sixteen, and the shapes stay few.
        AnyConnection::Postgresql(_) => {
            let mut ids = Vec::with_capacity(n);
            let mut left = n;
            while left > 0 {
                let count = if left <= ROWS_PER_STATEMENT {
                    left
                } else {
                    1 << left.ilog2().min(11)
                };
                // The sequence is looked up once per statement (a materialized CTE): inlined,
                // `pg_get_serial_sequence` searched the catalog for every id, 6 µs each.
                let taken: Vec<i64> = Dynamic::<BigInt>::new(format!(
                    "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('{table}', 'id')::regclass AS seq) \
                     SELECT nextval(s.seq) AS id FROM s, generate_series(1, {count}) ORDER BY 1"
                ))
                .load(conn)?;
                ids.extend(taken);
                left -= count;
            }
            Ok(ids)
        }
        AnyConnection::Sqlite(_) => {
            let last: i64 = Dynamic::<BigInt>::new(format!(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), \
                 COALESCE((SELECT MAX(id) FROM {table}), 0)) AS id"
            ))
            .get_result(conn)?;
            let count = i64::try_from(n).unwrap_or(i64::MAX);
            Ok((last + 1..=last + count).collect())
        }
    }
}

/// `SELECT 1`, for readiness checks.
pub fn ping(conn: &mut AnyConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT 1").execute(conn).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_setting(conn: &mut AnyConnection, pragma: &str) -> i64 {
        Dynamic::<BigInt>::new(format!("SELECT * FROM pragma_{pragma}()"))
            .get_result(conn)
            .expect(pragma)
    }

    /// A writer's own connection skips the pool, not the pool's settings: it must commit durably and
    /// check foreign keys like every pooled one.
    #[test]
    fn a_dedicated_connection_keeps_durability_and_foreign_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::connect(ConnectOptions::sqlite_in(&dir), 1, Duration::from_secs(5)).expect("db");
        let mut conn = db.dedicated().expect("dedicated connection");
        assert_eq!(sqlite_setting(&mut conn, "synchronous"), 2, "synchronous = FULL");
        assert_eq!(sqlite_setting(&mut conn, "foreign_keys"), 1);
        // The bundled SQLite already defaults to the two above; these two show the pool's settings ran.
        assert_eq!(sqlite_setting(&mut conn, "busy_timeout"), 1000);
        assert_eq!(sqlite_setting(&mut conn, "temp_store"), 2, "temp_store = MEMORY");
        assert_eq!(
            sqlite_setting(&mut conn, "cache_size"),
            -i64::from(WRITER_CACHE_KIB)
        );
    }
}
