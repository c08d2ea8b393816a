//! Database URLs, the one connection type for both backends, the pool and migrations.

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::health::Watch;

/// The SQLite migrations, compiled in.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
/// The PostgreSQL migrations, compiled in (the same names as the SQLite ones).
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Key of the PostgreSQL advisory lock that serializes migrations across replicas
/// ("jobsmigr" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6a6f_6273_6d69_6772;

/// One connection type for both databases: every query is written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// A PostgreSQL connection.
    Postgres(PgConnection),
    /// A SQLite connection.
    Sqlite(SqliteConnection),
}

/// Where the jobs live, parsed from `JOBS_DATABASE_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`: a file, created with its folder on first start.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

/// The URL names no database this build can use.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// The scheme is neither `sqlite` nor `postgres`/`postgresql`.
    #[error("unsupported database URL scheme in '{0}': use sqlite://PATH or postgres://…")]
    UnsupportedScheme(String),
    /// `sqlite://` with no path.
    #[error("the SQLite URL '{0}' names no file")]
    EmptyPath(String),
}

impl DatabaseUrl {
    /// Picks the backend from the scheme; any other scheme is an error, never a fallback.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(UrlError::EmptyPath(url.to_owned()));
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_owned()))
        } else {
            let scheme = url.split("://").next().unwrap_or(url);
            Err(UrlError::UnsupportedScheme(format!("{scheme}://…")))
        }
    }

    /// The backend's name, for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

/// Pool settings.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Connections at most.
    pub max_size: u32,
    /// How long a request waits for a connection before the database counts as unavailable.
    pub connection_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { max_size: 8, connection_timeout: Duration::from_secs(5) }
    }
}

/// The busy timeout: also restored by the readiness probe, which shortens it for itself.
macro_rules! sqlite_busy_timeout {
    () => {
        "PRAGMA busy_timeout = 5000;"
    };
}

/// Per-connection SQLite settings: WAL so readers never wait for the writer, a busy timeout
/// so writers queue instead of failing, `synchronous=FULL` so that an acknowledged write
/// survives a power loss, not just a process crash, and temporary storage in memory: the
/// group-commit writer runs each write in a savepoint, whose undo copies (the statement
/// journal) went to a temporary file, a tenth of the writer's time in a profile.
/// The busy timeout comes first: switching to WAL itself needs a lock when connections open
/// together.
///
/// Checkpoints are the background checkpointer's ([`crate::JobStore::checkpoint`]): a
/// committing connection checkpoints the WAL itself only past 16 384 pages (64 MiB), the
/// safety net should that loop not run or fall behind, instead of SQLite's default of 1000
/// pages, which made every large commit (an expiry batch) copy its pages a second time
/// before it returned. A WAL that grew past 64 MiB is truncated back to that size when it
/// starts over.
const SQLITE_SETUP: &str = concat!(
    sqlite_busy_timeout!(),
    "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = FULL;
     PRAGMA temp_store = MEMORY;
     PRAGMA foreign_keys = ON;
     PRAGMA wal_autocheckpoint = 16384;
     PRAGMA journal_size_limit = 67108864;"
);

/// The busy timeout statement alone.
pub(crate) const SQLITE_BUSY_TIMEOUT: &str = sqlite_busy_timeout!();

/// Why a connection could not be made: the backend's own message, never hidden.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

fn connect_sqlite(path: &std::path::Path) -> Result<SqliteConnection, ConnectError> {
    let mut conn = SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| {
        ConnectError(format!("cannot open SQLite database {}: {e}", path.display()))
    })?;
    // Switching a new database to WAL can answer "database is locked" at once, without
    // waiting out the busy timeout, while another process opens it too (replicas starting
    // together): the settings are idempotent, so they are tried again for a while.
    let patience = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match conn.batch_execute(SQLITE_SETUP) {
            Ok(()) => return Ok(conn),
            Err(e) if e.to_string().contains("locked") && std::time::Instant::now() < patience => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                return Err(ConnectError(format!(
                    "cannot configure SQLite database {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

/// How long a connection is used before it is replaced (the pool's, and the readers').
pub(crate) const CONNECTION_MAX_AGE: Duration = Duration::from_secs(30 * 60);

/// Per-session PostgreSQL settings: timestamps are written and read as UTC by the server,
/// so the session is kept in UTC too.
pub(crate) const POSTGRES_SETUP: &str = "SET TIME ZONE 'UTC'";

fn connect_postgres(url: &str) -> Result<PgConnection, ConnectError> {
    let mut conn = PgConnection::establish(url)
        .map_err(|e| ConnectError(format!("cannot connect to PostgreSQL: {e}")))?;
    conn.batch_execute(POSTGRES_SETUP)
        .map_err(|e| ConnectError(format!("cannot configure PostgreSQL session: {e}")))?;
    Ok(conn)
}

/// The r2d2 manager: it builds the variant the URL's scheme names, so that a failure reports
/// the real cause (the derive's own `establish` tries every backend and hides it).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    /// A manager of connections to `url`.
    pub(crate) fn new(url: DatabaseUrl) -> Manager {
        Manager { url }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => connect_sqlite(path).map(DbConnection::Sqlite),
            DatabaseUrl::Postgres(url) => connect_postgres(url).map(DbConnection::Postgres),
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        diesel::r2d2::R2D2Connection::ping(conn).map_err(|e| ConnectError(e.to_string()))
    }

    /// Checked each time a connection goes back to the pool, without a query: a connection
    /// stuck in a failed transaction is dropped. (It cannot see a PostgreSQL connection whose
    /// server went away; checkouts test those, see [`open`].)
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// Runs `f` in a transaction that holds the write lock from its first statement: `BEGIN
/// IMMEDIATE` on SQLite, so a transaction that reads before it writes queues behind other
/// writers instead of failing to upgrade; an ordinary transaction on PostgreSQL, whose row
/// locks and compare-and-set already serialize writers.
pub(crate) fn write_transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    if in_transaction(conn) {
        // Inside the group-commit writer's transaction: a savepoint of it.
        return conn.transaction(f);
    }
    begin_write(conn)?;
    let result = f(conn);
    match result {
        Ok(value) => {
            end_write(conn, true)?;
            Ok(value)
        }
        Err(err) => {
            let _ = end_write(conn, false);
            Err(err)
        }
    }
}

/// Whether `conn` is inside a transaction already.
pub(crate) fn in_transaction(conn: &mut DbConnection) -> bool {
    transaction_depth(conn).is_some_and(|depth| depth > 0)
}

/// How deep in transactions diesel counts `conn` (1: a transaction, more: savepoints in
/// it); `None` when diesel has marked its transaction state broken.
pub(crate) fn transaction_depth(conn: &mut DbConnection) -> Option<u32> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let status = match conn {
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner)
        }
        DbConnection::Postgres(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner)
        }
    };
    status.transaction_depth().ok().map(|depth| depth.map_or(0, std::num::NonZeroU32::get))
}

/// Starts a write transaction as [`write_transaction`] does; diesel counts it, so that
/// transactions inside it are savepoints.
pub(crate) fn begin_write(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match conn {
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")
        }
        DbConnection::Postgres(inner) => AnsiTransactionManager::begin_transaction(inner),
    }
}

/// Commits (`commit`) or rolls back the transaction [`begin_write`] started.
pub(crate) fn end_write(conn: &mut DbConnection, commit: bool) -> diesel::QueryResult<()> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    match (conn, commit) {
        (DbConnection::Sqlite(inner), true) => AnsiTransactionManager::commit_transaction(inner),
        (DbConnection::Sqlite(inner), false) => AnsiTransactionManager::rollback_transaction(inner),
        (DbConnection::Postgres(inner), true) => AnsiTransactionManager::commit_transaction(inner),
        (DbConnection::Postgres(inner), false) => {
            AnsiTransactionManager::rollback_transaction(inner)
        }
    }
}

/// One column of many rows, for a PostgreSQL statement that binds one array per column
/// (`unnest($1, $2, …)`): one fixed statement however many rows.
pub(crate) fn column<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(f).collect()
}

pub(crate) type DbPool = r2d2::Pool<Manager>;
pub(crate) type Pooled = r2d2::PooledConnection<Manager>;

/// Applies pending migrations. On SQLite the run holds the write lock; on PostgreSQL an
/// advisory lock: replicas starting together take turns, and the later ones find nothing
/// left to do.
pub fn migrate(url: &DatabaseUrl) -> anyhow::Result<()> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
            }
            let mut conn = connect_sqlite(path)?;
            conn.immediate_transaction(|conn| {
                conn.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("migrating {}: {e}", path.display()))
            })
        }
        DatabaseUrl::Postgres(url) => {
            let mut conn = connect_postgres(url)?;
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(&mut conn)
                .map_err(|e| anyhow::anyhow!("taking the migration lock: {e}"))?;
            let result = conn
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("migrating PostgreSQL: {e}"));
            // Closing the session releases the lock too; unlock explicitly all the same.
            let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                .execute(&mut conn);
            result
        }
    }
}

/// Applies migrations, then opens a pool on the database.
/// The pool reports connection failures and new connections to `watch`.
pub(crate) fn open(
    url: &DatabaseUrl,
    options: &PoolOptions,
    watch: Watch,
) -> anyhow::Result<DbPool> {
    migrate(url)?;
    r2d2::Pool::builder()
        // PostgreSQL connections are tested on checkout: after a server restart, the
        // connections in the pool are dead, and only a round trip tells (diesel's
        // `is_broken` does not look at the socket). A SQLite connection cannot lose its
        // server, so it skips the test query, which doubled the statements of a GET.
        .test_on_check_out(matches!(url, DatabaseUrl::Postgres(_)))
        .max_size(options.max_size)
        .max_lifetime(Some(CONNECTION_MAX_AGE))
        .connection_timeout(options.connection_timeout)
        .error_handler(Box::new(watch.clone()))
        .event_handler(Box::new(watch))
        .build(Manager::new(url.clone()))
        .map_err(|e| anyhow::anyhow!("opening the {} pool: {e}", url.backend()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://./data/jobs.db").ok(),
            Some(DatabaseUrl::Sqlite(PathBuf::from("./data/jobs.db")))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").ok(),
            Some(DatabaseUrl::Sqlite(PathBuf::from("/tmp/x.db")))
        );
        assert!(matches!(DatabaseUrl::parse("postgres://u@h/db"), Ok(DatabaseUrl::Postgres(_))));
        assert!(matches!(DatabaseUrl::parse("postgresql://u@h/db"), Ok(DatabaseUrl::Postgres(_))));
        assert!(DatabaseUrl::parse("mysql://u@h/db").is_err());
        assert!(DatabaseUrl::parse("jobs.db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn a_failed_postgres_connection_reports_the_real_cause() {
        let manager =
            Manager { url: DatabaseUrl::Postgres("postgres://nobody@127.0.0.1:1/none".into()) };
        let err = r2d2::ManageConnection::connect(&manager)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
        assert!(!err.contains("multiconnection"), "{err}");
        assert!(err.to_lowercase().contains("connect"), "{err}");
    }
}
