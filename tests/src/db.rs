//! A fresh database for each test: a temp SQLite file by default, or a new PostgreSQL
//! database when `JOBS_TEST_DATABASE_URL` names a PostgreSQL server.
//!
//! `JOBS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres cargo test --workspace`
//! runs the whole suite on PostgreSQL: each test creates its own database through that URL
//! and drops it afterwards. If the server cannot be reached the test fails: it never falls
//! back to SQLite.
//!
//! This file is also compiled into the `jobs-server` process tests (with `#[path]`), so it
//! depends on nothing but diesel, tempfile, url and uuid.

use diesel::connection::SimpleConnection;
use diesel::{Connection as _, PgConnection};

/// The environment variable that switches the suite to PostgreSQL.
pub const DATABASE_ENV: &str = "JOBS_TEST_DATABASE_URL";

/// A connection to a test database, on its backend.
enum Connection {
    Sqlite(diesel::SqliteConnection),
    Postgres(PgConnection),
}

/// A database that lives as long as the value.
pub enum TestDatabase {
    /// A SQLite file in a temp folder.
    Sqlite {
        /// The folder (removed on drop).
        _dir: tempfile::TempDir,
        /// `sqlite://…/jobs.db`
        url: String,
    },
    /// A database created on the PostgreSQL server for this test.
    Postgres {
        /// The server's maintenance URL.
        admin_url: String,
        /// The database's name.
        name: String,
        /// `postgres://…/name`
        url: String,
    },
}

impl TestDatabase {
    /// A new, empty database of the configured kind.
    pub fn new() -> TestDatabase {
        match std::env::var(DATABASE_ENV) {
            Ok(admin_url) if !admin_url.is_empty() => TestDatabase::postgres(&admin_url),
            _ => TestDatabase::sqlite(),
        }
    }

    /// A new SQLite file.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
        TestDatabase::Sqlite { _dir: dir, url }
    }

    /// A new PostgreSQL database on the server at `admin_url`.
    pub fn postgres(admin_url: &str) -> TestDatabase {
        let name = format!("jobs_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(admin_url).unwrap_or_else(|e| {
            panic!("{DATABASE_ENV} is set but PostgreSQL is not reachable at {admin_url}: {e}")
        });
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        let mut url = url::Url::parse(admin_url).expect("a postgres:// URL");
        url.set_path(&name);
        TestDatabase::Postgres { admin_url: admin_url.to_owned(), name, url: url.to_string() }
    }

    /// A new database for a test that needs PostgreSQL; on a SQLite run, `None`, and the
    /// test says it is skipped and why.
    pub fn postgres_only(why: &str) -> Option<TestDatabase> {
        let db = TestDatabase::new();
        if db.backend() == "postgres" {
            return Some(db);
        }
        eprintln!("needs PostgreSQL ({why}); skipped");
        None
    }

    /// The `JOBS_DATABASE_URL` for the server under test.
    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Sqlite { url, .. } | TestDatabase::Postgres { url, .. } => url,
        }
    }

    /// A connection of the test's own, behind the server's back (SQLite with a busy
    /// timeout, so that it waits for the server's writer).
    fn connect(&self) -> Connection {
        match self {
            TestDatabase::Sqlite { url, .. } => {
                let path = url.trim_start_matches("sqlite://");
                let mut conn = diesel::SqliteConnection::establish(path).expect("open SQLite");
                conn.batch_execute("PRAGMA busy_timeout = 5000").expect("SQLite busy timeout");
                Connection::Sqlite(conn)
            }
            TestDatabase::Postgres { url, .. } => {
                Connection::Postgres(PgConnection::establish(url).expect("connect to PostgreSQL"))
            }
        }
    }

    /// Runs SQL statements on the database (to prepare or inspect it behind the server).
    pub fn execute(&self, sql: &str) {
        match self.connect() {
            Connection::Sqlite(mut conn) => conn.batch_execute(sql).expect("SQL runs"),
            Connection::Postgres(mut conn) => conn.batch_execute(sql).expect("SQL runs"),
        }
    }

    /// Runs `setup`, then `statement` again and again on one connection, each run its own
    /// transaction, until a run changes no row; returns the rows changed in all (a
    /// benchmark's plain-SQL yardstick for a batched job of the server's).
    pub fn repeat_until_done(&self, setup: &str, statement: &str) -> usize {
        use diesel::RunQueryDsl;
        fn until_done<C: diesel::Connection>(conn: &mut C, setup: &str, statement: &str) -> usize
        where
            diesel::query_builder::SqlQuery: diesel::query_dsl::methods::ExecuteDsl<C>,
        {
            conn.batch_execute(setup).expect("setup runs");
            let mut total = 0;
            loop {
                match diesel::sql_query(statement).execute(conn).expect("statement runs") {
                    0 => return total,
                    n => total += n,
                }
            }
        }
        match self.connect() {
            Connection::Sqlite(mut conn) => until_done(&mut conn, setup, statement),
            Connection::Postgres(mut conn) => until_done(&mut conn, setup, statement),
        }
    }

    /// How many rows `query` returns (to inspect the database behind the server).
    pub fn count(&self, query: &str) -> i64 {
        use diesel::RunQueryDsl;
        let count = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "(SELECT count(*) FROM ({query}) AS counted)"
        )));
        match self.connect() {
            Connection::Sqlite(mut conn) => count.get_result(&mut conn).expect("the count runs"),
            Connection::Postgres(mut conn) => count.get_result(&mut conn).expect("the count runs"),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            TestDatabase::Sqlite { .. } => "sqlite",
            TestDatabase::Postgres { .. } => "postgres",
        }
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        TestDatabase::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { admin_url, name, .. } = self {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}
