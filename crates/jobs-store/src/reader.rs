//! Reads on SQLite go to a connection owned by the calling thread, not to the pool.
//!
//! A WAL reader never waits for the writer, and a read by primary key takes microseconds:
//! handing it to a blocking thread and back costs more than the read itself. So each thread
//! that reads (in the server: each HTTP worker, which reads inline) keeps one read-only
//! connection per store, with its prepared statements, for as long as the thread lives.
//! On PostgreSQL a read is a network round trip, and reads use the pool.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::sqlite::SqliteConnection;
use diesel::Connection;

use jobs_domain::{Job, JobId, Visibility};

use crate::db::DbConnection;
use crate::store::JobStore;
use crate::{StoreError, StoreResult};

/// How long an inline read waits for a lock. A WAL reader only waits in rare moments (a
/// checkpoint resetting the log, a recovery after a crash), and it waits on the caller's
/// thread, which may be an HTTP worker: it is kept short, and a read that runs out of it
/// answers 503 like any other unavailable database.
const READER_SETUP: &str = "PRAGMA busy_timeout = 250; PRAGMA query_only = ON;";

/// Where a store's per-thread readers connect, and the key they are kept under.
#[derive(Clone, Debug)]
pub(crate) struct Readers {
    key: u64,
    path: Arc<PathBuf>,
}

impl Readers {
    /// Readers for the SQLite database at `path`, under a key no other store shares.
    pub(crate) fn new(path: &Path) -> Readers {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Readers { key: NEXT.fetch_add(1, Ordering::Relaxed), path: Arc::new(path.to_owned()) }
    }
}

thread_local! {
    /// This thread's read connections, one per store it has read from.
    static READERS: RefCell<Vec<(u64, DbConnection)>> = const { RefCell::new(Vec::new()) };
}

fn connect(path: &Path) -> StoreResult<DbConnection> {
    let unavailable = |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("{e}").into());
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|e| unavailable(&format!("cannot open {} for reading: {e}", path.display())))?;
    conn.batch_execute(READER_SETUP).map_err(|e| unavailable(&e))?;
    Ok(DbConnection::Sqlite(conn))
}

impl JobStore {
    /// Runs a read: on SQLite on this thread's own connection, on PostgreSQL on a pooled one.
    /// `read` must not read through the store again (the thread's connection is in use).
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let Some(readers) = &self.readers else { return read(&mut *self.conn()?) };
        READERS.with(|cell| {
            let mut held = cell.try_borrow_mut().map_err(|_| {
                StoreError::Internal("a read was started inside another read".into())
            })?;
            let at = match held.iter().position(|(key, _)| *key == readers.key) {
                Some(at) => at,
                None => {
                    held.push((readers.key, connect(&readers.path)?));
                    held.len() - 1
                }
            };
            read(&mut held[at].1)
        })
    }

    /// Whether reads are cheap enough to run on the caller's thread, even an async one:
    /// true on SQLite.
    pub fn reads_inline(&self) -> bool {
        self.readers.is_some()
    }

    /// One visible job, read from this async task on this thread's own PostgreSQL
    /// connection, pipelined with the thread's other reads; `None` when the store cannot
    /// read this way now (on SQLite, or see `async_reader`): read with [`JobStore::get`].
    pub async fn get_async(&self, vis: &Visibility, id: JobId) -> Option<StoreResult<Job>> {
        self.async_readers.as_ref()?.get(vis, id).await
    }
}
