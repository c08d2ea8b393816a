//! Reads of one job on PostgreSQL from the caller's async task, with no blocking thread.
//!
//! A read by primary key on PostgreSQL is a network round trip. Done on the blocking pool,
//! it also cost two hand-offs between threads (the HTTP worker to a blocking thread and
//! back), and a GET spent more on those than on the query. Here each thread that reads (in
//! the server: each HTTP worker) keeps one `diesel-async` connection per store, and its
//! tasks read through it without waiting for each other: the connection pipelines their
//! queries (each is sent as it comes; the answers come back in order), so a worker with
//! 32 GETs in flight sends them on one connection without a round trip each. The query is
//! the same one the blocking path runs ([`crate::store::by_id_query`]), prepared once per
//! connection.
//!
//! A connection that fails is dropped. A read that fails on a connection opened earlier
//! (cut while idle, as by a database restart) is tried once more on a new one, as reads
//! through the pool are. The connections are named `jobs-reader` in `pg_stat_activity`
//! unless the URL names them. The URL must be one `tokio-postgres` can use without TLS;
//! otherwise reads stay on the blocking pool.

use std::cell::RefCell;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use jobs_domain::{Job, JobId, Visibility};

use crate::health::{Health, DOWN_CHECKOUT};
use crate::{StoreError, StoreResult};

/// Where a store's per-thread async connections connect, and the key they are kept under.
#[derive(Clone, Debug)]
pub(crate) struct AsyncReaders {
    key: u64,
    url: Arc<str>,
    connect_timeout: Duration,
    /// The database's health, shared with the pool: a failed connection marks it down, a
    /// new one up, and while it is down a connection is waited for briefly.
    health: Arc<Health>,
    /// The session settings of a new connection.
    setup: Arc<str>,
}

/// The `application_name` of the readers' connections, unless the URL gives one.
pub(crate) const APPLICATION_NAME: &str = "jobs-reader";

impl AsyncReaders {
    /// Async readers for the PostgreSQL database at `url`, or `None` when `tokio-postgres`
    /// cannot reach it as configured (a URL it does not parse, or one that requires TLS).
    pub(crate) fn new(
        url: &str,
        connect_timeout: Duration,
        health: Arc<Health>,
    ) -> Option<AsyncReaders> {
        use tokio_postgres::config::SslMode;
        let config = match tokio_postgres::Config::from_str(url) {
            Ok(config) => config,
            Err(err) => {
                log::info!(target: "jobs::store", "reads use the pool: {err}");
                return None;
            }
        };
        if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
            log::info!(target: "jobs::store", "reads use the pool: the URL requires TLS");
            return None;
        }
        let mut setup = crate::db::POSTGRES_SETUP.to_owned();
        if config.get_application_name().is_none() {
            setup.push_str(&format!("; SET application_name = '{APPLICATION_NAME}'"));
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Some(AsyncReaders {
            key: NEXT.fetch_add(1, Ordering::Relaxed),
            url: url.into(),
            connect_timeout,
            health,
            setup: setup.into(),
        })
    }

    /// This thread's connection for this store, opened on first use; and whether it was
    /// open before.
    async fn connection(&self) -> StoreResult<(Rc<AsyncPgConnection>, bool)> {
        if let Some(conn) = self.held() {
            return Ok((conn, true));
        }
        let budget = match self.health.down_since() {
            Some(_) => self.connect_timeout.min(DOWN_CHECKOUT),
            None => self.connect_timeout,
        };
        let opened = tokio::time::timeout(budget, AsyncPgConnection::establish(&self.url)).await;
        let mut conn = match opened {
            Ok(Ok(conn)) => conn,
            failed => {
                let cause = match failed {
                    Ok(Err(e)) => format!("cannot connect to PostgreSQL: {e}"),
                    _ => format!("cannot connect to PostgreSQL within {budget:?}"),
                };
                self.health.mark_down(&cause);
                return Err(StoreError::Unavailable(cause.into()));
            }
        };
        self.health.mark_up();
        // The same session settings as the pool's connections, and a name.
        conn.batch_execute(&self.setup).await.map_err(StoreError::from)?;
        // Two reads may have opened one each meanwhile: the first one kept is used.
        if let Some(conn) = self.held() {
            return Ok((conn, false));
        }
        let conn = Rc::new(conn);
        CONNECTIONS.with(|held| held.borrow_mut().push((self.key, Rc::clone(&conn))));
        Ok((conn, false))
    }

    fn held(&self) -> Option<Rc<AsyncPgConnection>> {
        CONNECTIONS.with(|held| {
            held.borrow().iter().find(|(key, _)| *key == self.key).map(|(_, c)| Rc::clone(c))
        })
    }

    /// Forgets `conn`, which failed: the next read opens another.
    fn forget(&self, conn: &Rc<AsyncPgConnection>) {
        CONNECTIONS.with(|held| held.borrow_mut().retain(|(_, c)| !Rc::ptr_eq(c, conn)));
    }

    /// One visible job by id.
    pub(crate) async fn get(&self, vis: &Visibility, id: JobId) -> StoreResult<Job> {
        let id = id.to_string();
        let mut tries = 0;
        let row = loop {
            tries += 1;
            let (conn, reused) = self.connection().await?;
            // Loaded through a shared reference: the future does not hold the connection,
            // so other tasks of this thread send their queries on it meanwhile.
            let loaded = crate::store::by_id_query!(&id).load(&mut &*conn).await;
            match loaded.map_err(StoreError::from) {
                Ok(rows) => break rows.into_iter().next(),
                Err(err @ StoreError::Unavailable(_)) => {
                    self.forget(&conn);
                    if !reused || tries > 1 {
                        return Err(err);
                    }
                }
                Err(err) => return Err(err),
            }
        };
        crate::store::visible(vis, row).ok_or(StoreError::NotFound)?.into_job()
    }
}

thread_local! {
    /// This thread's async connections, one per store it has read from.
    static CONNECTIONS: RefCell<Vec<(u64, Rc<AsyncPgConnection>)>> =
        const { RefCell::new(Vec::new()) };
}
