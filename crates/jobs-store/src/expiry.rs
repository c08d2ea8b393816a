//! The expiry sweep, a batch at a time and set-based: one statement reads the batch's jobs,
//! the domain ([`Job::expire`]) decides what each becomes, and a few statements write them
//! all back with their events, webhooks and change notices, in one transaction. What
//! "expired" means is the domain's alone: the SQL only moves the rows it computed.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use jobs_domain::event::ChangeReason;
use jobs_domain::{Job, JobStatus};

use crate::db::{write_transaction, DbConnection};
use crate::events::{self, Cause, EventContext};
use crate::outbox::{self, NewDelivery};
use crate::rows::JobRow;
use crate::schema::jobs;
use crate::store::JobStore;
use crate::{StoreError, StoreResult};

#[cfg(test)]
mod tests;
mod write_back;

use write_back::write_back;

/// One job of the batch: as read, and as [`Job::expire`] made it (its version bumped).
struct Expiry {
    /// On SQLite, the row's rowid, read in the same write transaction: the write-back seeks
    /// the row by it rather than by its 40-character id through a second index.
    rowid: Option<i64>,
    before: Job,
    after: Job,
}

impl JobStore {
    /// Moves up to `limit` running jobs whose timeout (or lease) has passed to `expired`,
    /// scheduling their webhooks, and returns how many this call expired.
    ///
    /// A batch is one write transaction (one commit, one fsync) of a handful of statements,
    /// whatever its size: one reads the due jobs (on PostgreSQL locking them, and skipping
    /// those another transaction holds; on SQLite the write transaction excludes other
    /// writers), the domain expires each ([`Job::expire`]), one writes them back (on
    /// SQLite, one per hundred rows), each only if its row still has the version it was
    /// read with, so racing sweepers expire each job exactly once, and multi-row INSERTs
    /// record their events and webhook deliveries.
    ///
    /// A row that cannot be read is logged and skipped, so it never stops the other
    /// expiries. The observer hears of each expiry once the batch committed.
    pub fn expire_due(&self, limit: i64) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        // Nothing is due on most calls: that costs one probe of the partial index
        // `jobs_expires`, outside any write transaction.
        let any: Vec<String> = jobs::table
            .filter(jobs::expires_at.le(self.now().naive_utc()))
            .filter(jobs::status.eq(JobStatus::Running.as_str()))
            .order(jobs::expires_at.asc())
            .limit(1)
            .select(jobs::id)
            .load(&mut conn)?;
        if any.is_empty() {
            return Ok(0);
        }
        let system = EventContext::system();
        let cause = Cause { cx: &system, reason: ChangeReason::Timeout };
        let expired = write_transaction(&mut conn, |conn| {
            let at = self.now();
            let due = read_due(conn, at.naive_utc(), limit)?;
            let expiries = due.into_iter().filter_map(|(rowid, row)| {
                let id = row.id.clone();
                let before = row
                    .into_job()
                    .map_err(|err| log::error!("cannot expire job {id}: {err}"))
                    .ok()?;
                let mut after = before.expire(at)?;
                after.version = before.version + 1;
                Some(Expiry { rowid, before, after })
            });
            let expired = write_back(conn, expiries.collect())?;
            events::changed_all(conn, cause, expired.iter().map(|e| (&e.before, &e.after)))?;
            let deliveries: Vec<NewDelivery<'_>> = expired
                .iter()
                .filter_map(|e| NewDelivery::of_change(&e.before, &e.after))
                .collect();
            outbox::enqueue(conn, &deliveries)?;
            crate::changes::notify_all(conn, expired.iter().map(|e| &e.after))?;
            Ok::<_, StoreError>(expired)
        })?;
        // Told only once the batch committed, so that a woken reader sees the change.
        let observer = self.observer();
        for Expiry { before, after, .. } in &expired {
            observer.job_transitioned(before.status, after.status);
            observer.job_written(after);
        }
        Ok(expired.len())
    }
}

/// The rows of up to `limit` running jobs due at `at`, oldest deadline first, each with its
/// rowid on SQLite; on PostgreSQL locked for the rest of the transaction, skipping those
/// another transaction holds (a sweeper on another replica, a request), so that racing
/// sweepers take different jobs and never wait for each other. When one row cannot be
/// decoded, the rows are read again one at a time, and those that still cannot be are
/// logged and left out.
fn read_due(
    conn: &mut DbConnection,
    at: NaiveDateTime,
    limit: i64,
) -> StoreResult<Vec<(Option<i64>, JobRow)>> {
    use diesel::dsl::sql;
    use diesel::result::Error::DeserializationError;
    use diesel::sql_types::BigInt;
    // The same statement on each backend's own connection, where diesel keeps it prepared.
    macro_rules! due {
        ($conn:expr, $select:expr $(, $lock:ident)*) => {
            jobs::table
                .filter(jobs::expires_at.le(at))
                .filter(jobs::status.eq(JobStatus::Running.as_str()))
                .order(jobs::expires_at.asc())
                .limit(limit)
                .select($select)
                $(.$lock())*
                .load($conn)
        };
    }
    let rowid = || sql::<BigInt>("jobs.rowid");
    let rows = match conn {
        DbConnection::Postgres(c) => due!(c, JobRow::as_select(), for_update, skip_locked)
            .map(|rows: Vec<JobRow>| rows.into_iter().map(|row| (None, row)).collect()),
        DbConnection::Sqlite(c) => {
            due!(c, (rowid(), JobRow::as_select())).map(|rows: Vec<(i64, JobRow)>| {
                rows.into_iter().map(|(n, row)| (Some(n), row)).collect()
            })
        }
    };
    match rows {
        Err(DeserializationError(_)) => {}
        other => return Ok(other?),
    }
    // The same jobs (on PostgreSQL, this transaction holds their locks already).
    let ids: Vec<String> = match conn {
        DbConnection::Postgres(c) => due!(c, jobs::id, for_update, skip_locked),
        DbConnection::Sqlite(c) => due!(c, jobs::id),
    }?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let one = match conn {
            DbConnection::Postgres(c) => jobs::table
                .find(&id)
                .select(JobRow::as_select())
                .load(c)
                .map(|rows: Vec<JobRow>| rows.into_iter().map(|row| (None, row)).collect()),
            DbConnection::Sqlite(c) => {
                jobs::table.find(&id).select((rowid(), JobRow::as_select())).load(c).map(
                    |rows: Vec<(i64, JobRow)>| {
                        rows.into_iter().map(|(n, row)| (Some(n), row)).collect::<Vec<_>>()
                    },
                )
            }
        };
        match one {
            Ok(row) => found.extend(row),
            Err(DeserializationError(err)) => log::error!("cannot expire job {id}: {err}"),
            Err(err) => return Err(err.into()),
        }
    }
    Ok(found)
}
