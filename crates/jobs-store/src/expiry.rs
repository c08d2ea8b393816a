//! The expiry sweep, a batch at a time and set-based: one statement reads the batch's jobs,
//! the domain ([`Job::expire`]) decides what each becomes, and a few statements write them
//! all back with their events, webhooks and change notices, in one transaction. What
//! "expired" means is the domain's alone: the SQL only moves the rows it computed. A whole
//! sweep ([`JobStore::expire_all_due`], in `pipeline`) runs batches until none is full; on
//! SQLite it reads each next batch while the one before commits.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use jobs_domain::event::ChangeReason;
use jobs_domain::{Job, JobStatus};

use crate::db::{write_transaction, DbConnection};
use crate::events::{self, Cause, EventContext};
use crate::outbox::{self, NewDelivery};
use crate::rows::JobRow;
use crate::schema::jobs;
use crate::store::JobStore;
use crate::StoreResult;

mod pipeline;
mod read;
#[cfg(test)]
mod tests;
mod write_back;

use read::{read_due, DueKey};
use write_back::write_back;

/// One job of the batch: as read, and as [`Job::expire`] made it (its version bumped).
struct Expiry {
    /// On SQLite, the row's rowid, read with the batch: the write-back seeks the row by it
    /// rather than by its 40-character id through a second index (and still compares the
    /// id, so a row gone since, its rowid reused, matches nothing).
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
        let expired = write_transaction(&mut conn, |conn| {
            let at = self.now();
            let due = read_due(conn, at.naive_utc(), limit, None)?;
            write_expiries(conn, expire_rows(due.rows, at))
        })?;
        self.tell(&expired);
        Ok(expired.len())
    }

    /// Tells the observer of each expiry, once its batch committed, so that a woken reader
    /// sees the change.
    fn tell(&self, expired: &[Expiry]) {
        let observer = self.observer();
        for Expiry { before, after, .. } in expired {
            observer.job_transitioned(before.status, after.status);
            observer.job_written(after);
        }
    }
}

/// What the domain makes of the rows read at `at` ([`Job::expire`]), each with its version
/// bumped; a row that cannot be decoded is logged and left out.
fn expire_rows(rows: Vec<(Option<i64>, JobRow)>, at: DateTime<Utc>) -> Vec<Expiry> {
    rows.into_iter()
        .filter_map(|(rowid, row)| {
            let id = row.id.clone();
            let before =
                row.into_job().map_err(|err| log::error!("cannot expire job {id}: {err}")).ok()?;
            let mut after = before.expire(at)?;
            after.version = before.version + 1;
            Some(Expiry { rowid, before, after })
        })
        .collect()
}

/// Inside a write transaction: writes `expiries` back where their rows still have the
/// version read, with their events, webhook deliveries and change notices; returns the
/// expiries written.
fn write_expiries(conn: &mut DbConnection, expiries: Vec<Expiry>) -> StoreResult<Vec<Expiry>> {
    let system = EventContext::system();
    let cause = Cause { cx: &system, reason: ChangeReason::Timeout };
    let expired = write_back(conn, expiries)?;
    events::changed_all(conn, cause, expired.iter().map(|e| (&e.before, &e.after)))?;
    let deliveries: Vec<NewDelivery<'_>> =
        expired.iter().filter_map(|e| NewDelivery::of_change(&e.before, &e.after)).collect();
    outbox::enqueue(conn, &deliveries)?;
    crate::changes::notify_all(conn, expired.iter().map(|e| &e.after))?;
    Ok(expired)
}
