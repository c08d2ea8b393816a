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
//! These connections are a shortcut, never the only way: whenever one cannot be had, the
//! read goes through the pool as before ([`AsyncReaders::get`] answers `None`).
//! - Readers are used only where they cannot weaken the connection's security: with
//!   `sslmode=disable`, or with the default `sslmode` when every host is on this machine
//!   (loopback or a Unix socket). `tokio-postgres` is used here without TLS, and it does
//!   not read libpq's environment (`PGPASSWORD`, `.pgpass`).
//! - A thread opens one connection at a time: reads that arrive meanwhile wait for it. If
//!   it cannot be opened, the thread's reads use the pool for [`RETRY_AFTER`] (the pool
//!   reports the database's health, not the readers).
//! - A read that takes longer than the pool's checkout timeout (a stalled connection, which would
//!   hold up every read queued behind it) answers 503 and drops the connection; so does a
//!   connection that broke, and a read that failed on one opened earlier (cut while idle, as
//!   by a database restart) is tried once more on a new one. Other errors (a statement
//!   timeout) keep the connection.
//! - A connection is replaced after [`CONNECTION_MAX_AGE`], as the pool's are.
//!
//! The connections are named `jobs-reader` in `pg_stat_activity` unless the URL names them.

use std::cell::RefCell;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use jobs_domain::{Job, JobId, Visibility};
use tokio::sync::Notify;

use crate::db::CONNECTION_MAX_AGE;
use crate::health::Health;
use crate::{StoreError, StoreResult};

/// How long a thread's reads use the pool after its connection could not be opened.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(30);
/// The `application_name` of the readers' connections, unless the URL gives one.
pub(crate) const APPLICATION_NAME: &str = "jobs-reader";

/// Where a store's per-thread async connections connect, and the key they are kept under.
#[derive(Clone, Debug)]
pub(crate) struct AsyncReaders {
    key: u64,
    url: Arc<str>,
    /// The database's health as the pool saw it, and the pool's checkout timeout: how long
    /// opening a connection, and a read, may take (a connection is waited for briefly while
    /// the database is down).
    health: Arc<Health>,
    /// The session settings of a new connection.
    setup: Arc<str>,
}

/// A thread's connection for one store.
enum Slot {
    Open {
        conn: Rc<AsyncPgConnection>,
        since: Instant,
    },
    /// Being opened: reads wait for it.
    Opening(Rc<Notify>),
    /// Could not be opened: reads use the pool until then.
    Unusable {
        until: Instant,
    },
}

/// A connection being opened by one read. The reads waiting for it are woken when it is
/// done, and also if the opening read is dropped half way (its request was cancelled):
/// then the next read opens one.
struct Opening<'a> {
    readers: &'a AsyncReaders,
    opened: Rc<Notify>,
}

impl<'a> Opening<'a> {
    fn start(readers: &'a AsyncReaders) -> Opening<'a> {
        let opened = Rc::new(Notify::new());
        readers.set_slot(Slot::Opening(Rc::clone(&opened)));
        Opening { readers, opened }
    }

    fn finish(self, slot: Slot) {
        self.readers.set_slot(slot);
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        // Dropped while the thread ends: nothing left to tell.
        if SLOTS.try_with(|_| ()).is_err() {
            return;
        }
        let unfinished = self.readers.with_slot(
            |slot| matches!(slot, Some(Slot::Opening(o)) if Rc::ptr_eq(o, &self.opened)),
        );
        if unfinished {
            self.readers.set_slot(Slot::Unusable { until: Instant::now() });
        }
        self.opened.notify_waiters();
    }
}

thread_local! {
    /// This thread's async connections, one per store it has read from.
    static SLOTS: RefCell<Vec<(u64, Slot)>> = const { RefCell::new(Vec::new()) };
}

/// Whether the URL's `sslmode` and hosts let a connection without TLS be as safe as the
/// pool's: TLS switched off, or every host on this machine.
fn without_tls_is_safe(config: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::{Host, SslMode};
    let local = |host: &Host| match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    };
    match config.get_ssl_mode() {
        SslMode::Disable => true,
        SslMode::Prefer => !config.get_hosts().is_empty() && config.get_hosts().iter().all(local),
        _ => false,
    }
}

/// Whether a read's error says its connection is gone.
fn broken(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(_, info) => info.message().contains("terminating connection"),
        _ => false,
    }
}

impl AsyncReaders {
    /// Async readers for the PostgreSQL database at `url`, or `None` when they would not
    /// reach it as the pool does (see the module's documentation).
    pub(crate) fn new(url: &str, health: Arc<Health>) -> Option<AsyncReaders> {
        let config = match tokio_postgres::Config::from_str(url) {
            Ok(config) => config,
            Err(err) => {
                log::info!(target: "jobs::store", "reads of one job use the pool: {err}");
                return None;
            }
        };
        if !without_tls_is_safe(&config) {
            log::info!(
                target: "jobs::store",
                "reads of one job use the pool: the database is not on this machine and \
                 sslmode is not disable"
            );
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
            health,
            setup: setup.into(),
        })
    }

    fn with_slot<T>(&self, f: impl FnOnce(Option<&mut Slot>) -> T) -> T {
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            f(slots.iter_mut().find(|(key, _)| *key == self.key).map(|(_, slot)| slot))
        })
    }

    fn set_slot(&self, slot: Slot) {
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            match slots.iter_mut().find(|(key, _)| *key == self.key) {
                Some((_, held)) => *held = slot,
                None => slots.push((self.key, slot)),
            }
        })
    }

    /// This thread's connection for this store, and whether it was open before this read;
    /// `None` when the read should use the pool.
    async fn connection(&self) -> Option<(Rc<AsyncPgConnection>, bool)> {
        enum Next {
            Use(Rc<AsyncPgConnection>),
            Wait(Rc<Notify>),
            Pool,
            Open,
        }
        loop {
            let next = self.with_slot(|slot| match slot {
                Some(Slot::Open { conn, since }) if since.elapsed() < CONNECTION_MAX_AGE => {
                    Next::Use(Rc::clone(conn))
                }
                Some(Slot::Opening(opened)) => Next::Wait(Rc::clone(opened)),
                Some(Slot::Unusable { until }) if Instant::now() < *until => Next::Pool,
                _ => Next::Open,
            });
            match next {
                Next::Use(conn) => return Some((conn, true)),
                // Registered at its first poll, before the opener can run (one thread).
                Next::Wait(opened) => opened.notified().await,
                Next::Pool => return None,
                Next::Open => break,
            }
        }
        let opening = Opening::start(self);
        let conn = self.open().await;
        opening.finish(match &conn {
            Some(conn) => Slot::Open { conn: Rc::clone(conn), since: Instant::now() },
            None => Slot::Unusable { until: Instant::now() + RETRY_AFTER },
        });
        conn.map(|conn| (conn, false))
    }

    /// Opens a connection, or says why it could not and returns `None`.
    async fn open(&self) -> Option<Rc<AsyncPgConnection>> {
        let budget = self.health.budget(self.health.checkout_timeout());
        let opening = async {
            let mut conn =
                AsyncPgConnection::establish(&self.url).await.map_err(|e| e.to_string())?;
            // The same session settings as the pool's connections, and a name.
            conn.batch_execute(&self.setup).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(conn)
        };
        let cause = match tokio::time::timeout(budget, opening).await {
            Ok(Ok(conn)) => return Some(Rc::new(conn)),
            Ok(Err(cause)) => cause,
            Err(_) => format!("no connection within {budget:?}"),
        };
        log::debug!(target: "jobs::store", "reads of one job use the pool for now: {cause}");
        None
    }

    /// Drops `conn` if it is still this thread's connection.
    fn forget(&self, conn: &Rc<AsyncPgConnection>) {
        self.with_slot(|slot| {
            if let Some(held) = slot {
                if matches!(held, Slot::Open { conn: c, .. } if Rc::ptr_eq(c, conn)) {
                    *held = Slot::Unusable { until: Instant::now() };
                }
            }
        });
    }

    /// One visible job by id, or `None` when the read should go through the pool.
    pub(crate) async fn get(&self, vis: &Visibility, id: JobId) -> Option<StoreResult<Job>> {
        let id = id.to_string();
        let mut tried = false;
        let row = loop {
            let (conn, reused) = self.connection().await?;
            // Loaded through a shared reference: the future does not hold the connection,
            // so other tasks of this thread send their queries on it meanwhile.
            let load = crate::store::by_id_query!(&id).load(&mut &*conn);
            let timeout = self.health.checkout_timeout();
            match tokio::time::timeout(timeout, load).await {
                Ok(Ok(rows)) => break rows.into_iter().next(),
                Ok(Err(err)) if broken(&err) => {
                    self.forget(&conn);
                    if !reused || tried {
                        return Some(Err(StoreError::from(err)));
                    }
                    tried = true;
                }
                Ok(Err(err)) => return Some(Err(StoreError::from(err))),
                Err(_) => {
                    self.forget(&conn);
                    let stalled = format!("no answer from PostgreSQL within {timeout:?}");
                    return Some(Err(StoreError::Unavailable(stalled.into())));
                }
            }
        };
        Some(crate::store::visible_job(vis, row))
    }
}

#[cfg(test)]
mod tests;
