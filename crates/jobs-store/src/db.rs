//! Database URLs, the connection pool and migrations.

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The SQLite migrations, compiled in.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

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

pub(crate) type SqlitePool = Pool<ConnectionManager<SqliteConnection>>;
pub(crate) type SqlitePooled = PooledConnection<ConnectionManager<SqliteConnection>>;

/// Per-connection SQLite settings: WAL so readers never wait for the writer, a busy timeout
/// so writers queue instead of failing, and `synchronous=FULL` so that an acknowledged write
/// survives a power loss, not just a process crash.
#[derive(Debug)]
struct SqliteSetup;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(
            "PRAGMA journal_mode = WAL;
             PRAGMA busy_timeout = 5000;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens (creating when needed) a SQLite database, applies pending migrations and returns
/// a pool.
pub(crate) fn open_sqlite(
    path: &std::path::Path,
    options: &PoolOptions,
) -> anyhow::Result<SqlitePool> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
    }
    let url = path.to_string_lossy().into_owned();
    // Migrate on one connection first, inside an IMMEDIATE transaction: two processes
    // starting at once on one file take turns, and the second finds nothing to do.
    let mut conn = SqliteConnection::establish(&url)
        .map_err(|e| anyhow::anyhow!("cannot open SQLite database {}: {e}", path.display()))?;
    SqliteSetup
        .on_acquire(&mut conn)
        .map_err(|e| anyhow::anyhow!("cannot configure SQLite database {}: {e}", path.display()))?;
    conn.immediate_transaction(|conn| {
        conn.run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("migrating {}: {e}", path.display()))
    })?;
    drop(conn);

    Pool::builder()
        .max_size(options.max_size)
        .connection_timeout(options.connection_timeout)
        .connection_customizer(Box::new(SqliteSetup))
        .build(ConnectionManager::<SqliteConnection>::new(url))
        .map_err(|e| anyhow::anyhow!("cannot open SQLite database {}: {e}", path.display()))
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
}
