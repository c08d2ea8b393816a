//! The server's own sweeps: purging old records (expiring overdue jobs is in
//! [`crate::expiry`]). Each works in bounded batches and is safe to run on every replica at
//! once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use jobs_domain::JobStatus;

use crate::db::{write_transaction, DbConnection};
use crate::events;
use crate::outbox::DeliveryState;
use crate::schema::{idempotency_keys, jobs, webhook_deliveries};
use crate::store::JobStore;
use crate::StoreResult;

impl JobStore {
    /// Deletes up to `limit` jobs that finished before `cutoff`, with their deliveries and
    /// idempotency keys; returns how many jobs it deleted. Active jobs are never touched.
    pub fn purge_finished_before(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        write_transaction(&mut conn, |conn| {
            // A job whose webhook is still being retried stays until it is delivered or
            // given up, whatever the retention: at-least-once comes first.
            let pending = webhook_deliveries::table
                .filter(webhook_deliveries::job_id.eq(jobs::id))
                .filter(webhook_deliveries::state.eq(DeliveryState::Pending.as_str()));
            let ids: Vec<String> = jobs::table
                .filter(jobs::completed_at.lt(cutoff.naive_utc()))
                .filter(jobs::status.eq_any(JobStatus::TERMINAL.map(JobStatus::as_str)))
                .filter(diesel::dsl::not(diesel::dsl::exists(pending)))
                .order(jobs::completed_at.asc())
                .limit(limit)
                .select(jobs::id)
                .load(conn)?;
            // The batch's rows, skipping any another transaction holds.
            let ids = lock_jobs(conn, &ids)?;
            if ids.is_empty() {
                return Ok(0);
            }
            diesel::delete(
                webhook_deliveries::table.filter(webhook_deliveries::job_id.eq_any(&ids)),
            )
            .execute(conn)?;
            diesel::delete(idempotency_keys::table.filter(idempotency_keys::job_id.eq_any(&ids)))
                .execute(conn)?;
            events::purged(conn, &ids, self.now())?;
            Ok(diesel::delete(jobs::table.filter(jobs::id.eq_any(&ids))).execute(conn)?)
        })
    }

    /// Deletes up to `limit` finished delivery records (delivered or given up) last touched
    /// before `cutoff`, such as those of jobs deleted by their users; returns how many.
    pub fn purge_deliveries_before(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        let ids: Vec<String> = webhook_deliveries::table
            .filter(webhook_deliveries::state.ne(DeliveryState::Pending.as_str()))
            .filter(webhook_deliveries::updated_at.lt(cutoff.naive_utc()))
            .limit(limit)
            .select(webhook_deliveries::id)
            .load(&mut conn)?;
        if ids.is_empty() {
            return Ok(0);
        }
        Ok(diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(&ids)))
            .execute(&mut conn)?)
    }

    /// Deletes up to `limit` idempotency keys created before `cutoff` (they no longer
    /// replay anything); returns how many.
    pub fn purge_idempotency_keys_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        let stale = idempotency_keys::table
            .filter(idempotency_keys::created_at.lt(cutoff.naive_utc()))
            .order(idempotency_keys::created_at.asc())
            .limit(limit)
            .select((idempotency_keys::org_id, idempotency_keys::user_id, idempotency_keys::key));
        let keys: Vec<(String, String, String)> = stale.load(&mut conn)?;
        let mut purged = 0;
        for (org, user, key) in keys {
            purged += diesel::delete(idempotency_keys::table.find((org, user, key)))
                .filter(idempotency_keys::created_at.lt(cutoff.naive_utc()))
                .execute(&mut conn)?;
        }
        Ok(purged)
    }
}

/// Locks the rows of these jobs for the rest of the caller's transaction, skipping those
/// another transaction holds (a sweep on another replica, a request), and returns the ids
/// it locked: a batch that changes several jobs never waits for one of them. On SQLite the
/// caller's write transaction already excludes every other writer.
fn lock_jobs(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<String>, diesel::result::Error> {
    match conn {
        DbConnection::Postgres(pg) => jobs::table
            .filter(jobs::id.eq_any(ids))
            .for_update()
            .skip_locked()
            .select(jobs::id)
            .load(pg),
        DbConnection::Sqlite(_) => Ok(ids.to_vec()),
    }
}
