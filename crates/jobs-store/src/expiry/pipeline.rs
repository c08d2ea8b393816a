//! A whole sweep: every job due, a batch at a time. On SQLite the next batch is read, and
//! expired by the domain, while the batch before it commits: a commit is mostly waiting
//! for its fsync, and the read is work for the other core.
//!
//! The read runs on a snapshot taken before that commit, where the batch being written
//! still looks due, so it starts past the last row that batch read (in the order of the
//! index `jobs_expires`: deadline, then rowid). Nothing else changes: each batch is still
//! one write transaction, and its write-back is still a compare-and-set on the version each
//! row was read with, so a row changed by anyone between the read and the write is left
//! alone, as a racing sweeper's would be. The read ahead takes a pooled connection only if
//! one is free at that moment; otherwise (a pool of one, or requests holding the rest) the
//! next batch is read once this one is written.

use super::{expire_rows, read_due, write_expiries, DueKey, Expiry};
use crate::db::{write_transaction, DbConnection};
use crate::store::JobStore;
use crate::StoreResult;

/// A batch read and expired by the domain, not yet written.
struct Read {
    expiries: Vec<Expiry>,
    /// As many rows were read as asked for: there may be more.
    full: bool,
    /// Past the last row read.
    next: Option<DueKey>,
}

impl JobStore {
    /// Expires every job due now, `limit` at a time, each batch as [`JobStore::expire_due`]
    /// does it, and tells `counted` each batch's count as it commits; returns the total.
    /// Stops at the first batch that reads fewer than `limit` jobs.
    ///
    /// On SQLite the next batch is read while the one before commits (see the module). On
    /// PostgreSQL, where the sweepers of several replicas take turns, each batch reads and
    /// locks its rows inside its own transaction.
    pub fn expire_all_due(&self, limit: i64, mut counted: impl FnMut(usize)) -> StoreResult<usize> {
        if self.backend() != "sqlite" {
            let mut total = 0;
            loop {
                let n = self.expire_due(limit)?;
                counted(n);
                total += n;
                if (n as i64) < limit {
                    return Ok(total);
                }
            }
        }
        let mut total = 0;
        let mut read = self.read_batch(&mut *self.conn()?, None, limit)?;
        loop {
            let next_from = read.next.filter(|_| read.full);
            let (written, ahead) = std::thread::scope(|scope| {
                // Only with a connection free this moment: otherwise (a pool of one, or
                // requests holding the rest) the next batch is read once this one is written.
                let ahead = next_from.clone().map(|key| {
                    scope.spawn(move || {
                        self.try_conn().map(|mut conn| self.read_batch(&mut conn, Some(key), limit))
                    })
                });
                let written = self.write_batch(read.expiries);
                (written, ahead.map(|reader| reader.join()))
            });
            let n = written?;
            counted(n);
            total += n;
            let Some(key) = next_from else { return Ok(total) };
            read = match ahead {
                Some(Ok(Some(next))) => next?,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                // No connection was free to read ahead with.
                _ => self.read_batch(&mut *self.conn()?, Some(key), limit)?,
            };
        }
    }

    /// Reads up to `limit` due jobs past `after` on `conn`, outside any write transaction,
    /// and expires them in the domain.
    fn read_batch(
        &self,
        conn: &mut DbConnection,
        after: Option<DueKey>,
        limit: i64,
    ) -> StoreResult<Read> {
        let at = self.now();
        let due = read_due(conn, at.naive_utc(), limit, after.as_ref())?;
        Ok(Read { expiries: expire_rows(due.rows, at), full: due.full, next: due.next })
    }

    /// Writes a batch read by [`JobStore::read_batch`] in one write transaction.
    fn write_batch(&self, expiries: Vec<Expiry>) -> StoreResult<usize> {
        if expiries.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn()?;
        let expired = write_transaction(&mut conn, |conn| write_expiries(conn, expiries))?;
        self.tell(&expired);
        Ok(expired.len())
    }
}
