//! The expiry sweep, a batch at a time and set-based: one statement reads the batch's jobs,
//! the domain ([`Job::expire`]) decides what each becomes, and a few statements write them
//! all back with their events, webhooks and change notices, in one transaction. What
//! "expired" means is the domain's alone: the SQL only moves the rows it computed.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use jobs_domain::event::ChangeReason;
use jobs_domain::{Job, JobStatus};

use crate::db::{write_transaction, DbConnection, MultiBackend};
use crate::events::{self, Cause, EventContext};
use crate::outbox::{self, NewDelivery};
use crate::rows::{JobChanges, JobRow};
use crate::schema::jobs;
use crate::store::JobStore;
use crate::{StoreError, StoreResult};

/// Rows per write-back statement: 14 bound values each, well under the bound-parameter
/// limits of SQLite (32 766) and PostgreSQL (65 535).
const ROWS_PER_UPDATE: usize = 1000;

/// One job of the batch: as read, and as [`Job::expire`] made it (its version bumped).
struct Expiry {
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
    /// writers), the domain expires each ([`Job::expire`]), one writes them back (per
    /// thousand rows), each only if its row still has the version it was read with, so
    /// racing sweepers expire each job exactly once, and multi-row INSERTs record their
    /// events and webhook deliveries.
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
            let expiries = read_due(conn, at.naive_utc(), limit)?.into_iter().filter_map(|row| {
                let id = row.id.clone();
                let before = row
                    .into_job()
                    .map_err(|err| log::error!("cannot expire job {id}: {err}"))
                    .ok()?;
                let mut after = before.expire(at)?;
                after.version = before.version + 1;
                Some(Expiry { before, after })
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
        for Expiry { before, after } in &expired {
            observer.job_transitioned(before.status, after.status);
            observer.job_written(after);
        }
        Ok(expired.len())
    }
}

/// The rows of up to `limit` running jobs due at `at`, oldest deadline first; on
/// PostgreSQL locked for the rest of the transaction, skipping those another transaction
/// holds (a sweeper on another replica, a request), so that racing sweepers take different
/// jobs and never wait for each other. When one row cannot be decoded, the rows are read
/// again one at a time, and those that still cannot be are logged and left out.
fn read_due(conn: &mut DbConnection, at: NaiveDateTime, limit: i64) -> StoreResult<Vec<JobRow>> {
    use diesel::result::Error::DeserializationError;
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
    let rows = match conn {
        DbConnection::Postgres(c) => due!(c, JobRow::as_select(), for_update, skip_locked),
        DbConnection::Sqlite(c) => due!(c, JobRow::as_select()),
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
        match jobs::table.find(&id).select(JobRow::as_select()).load(conn) {
            Ok(row) => found.extend(row),
            Err(DeserializationError(err)) => log::error!("cannot expire job {id}: {err}"),
            Err(err) => return Err(err.into()),
        }
    }
    Ok(found)
}

/// The write-back: each row's new values, matched on its id and the version it was read
/// with. Written as a `WITH … AS (VALUES …)` so that one UPDATE … FROM serves both
/// backends (SQLite 3.33+, PostgreSQL); only `RETURNING` tells which rows it changed.
const UPDATE_HEAD: &str = "WITH v (job_id, read_version, status, metadata, ttft_ns, \
    total_duration_ns, updated_at, completed_at, started_at, expires_at, version, claimed_by, \
    lease_expires_at, lease_seconds) AS (VALUES ";
const UPDATE_TAIL: &str = ") UPDATE jobs SET status = v.status, metadata = v.metadata, \
    ttft_ns = v.ttft_ns, total_duration_ns = v.total_duration_ns, updated_at = v.updated_at, \
    completed_at = v.completed_at, started_at = v.started_at, expires_at = v.expires_at, \
    version = v.version, claimed_by = v.claimed_by, lease_expires_at = v.lease_expires_at, \
    lease_seconds = v.lease_seconds \
    FROM v WHERE jobs.id = v.job_id AND jobs.version = v.read_version RETURNING jobs.id";
/// Values per row of the write-back.
const UPDATE_COLUMNS: usize = 14;

/// The write-back of `rows` rows, with the backend's placeholders.
fn update_sql(postgres: bool, rows: usize) -> String {
    let mut sql = String::from(UPDATE_HEAD);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..UPDATE_COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            if postgres {
                sql.push_str(&format!("${}", row * UPDATE_COLUMNS + column + 1));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(UPDATE_TAIL);
    sql
}

#[derive(QueryableByName)]
struct WrittenId {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Writes each expiry's job back, every field a change may touch (as
/// [`crate::store::change_on`] does), only where the row still has the version it was read
/// with; returns the expiries written.
fn write_back(conn: &mut DbConnection, expiries: Vec<Expiry>) -> StoreResult<Vec<Expiry>> {
    let postgres = matches!(conn, DbConnection::Postgres(_));
    let mut written = HashSet::with_capacity(expiries.len());
    for chunk in expiries.chunks(ROWS_PER_UPDATE) {
        let mut query =
            diesel::sql_query(update_sql(postgres, chunk.len())).into_boxed::<MultiBackend>();
        for Expiry { before, after } in chunk {
            let c = JobChanges::from_job(after, after.version);
            query = query
                .bind::<Text, _>(after.id.to_string())
                .bind::<BigInt, _>(before.version)
                .bind::<Text, _>(c.status)
                .bind::<Text, _>(c.metadata)
                .bind::<Nullable<BigInt>, _>(c.ttft_ns)
                .bind::<Nullable<BigInt>, _>(c.total_duration_ns)
                .bind::<Timestamp, _>(c.updated_at)
                .bind::<Nullable<Timestamp>, _>(c.completed_at)
                .bind::<Nullable<Timestamp>, _>(c.started_at)
                .bind::<Nullable<Timestamp>, _>(c.expires_at)
                .bind::<BigInt, _>(c.version)
                .bind::<Nullable<Text>, _>(c.claimed_by)
                .bind::<Nullable<Timestamp>, _>(c.lease_expires_at)
                .bind::<Nullable<BigInt>, _>(c.lease_seconds);
        }
        let ids: Vec<WrittenId> = query.load::<WrittenId>(conn)?;
        written.extend(ids.into_iter().map(|w| w.id));
    }
    Ok(expiries.into_iter().filter(|e| written.contains(&e.after.id.to_string())).collect())
}

#[cfg(test)]
#[path = "expiry_tests.rs"]
mod tests;
