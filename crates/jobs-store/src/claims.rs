//! Workers: claiming the oldest pending job, renewing leases, and the conditional
//! (`If-Match`) forms of the changes. Every change is still the compare-and-set of
//! [`change_on`]; a claim also locks its candidate so that racing claimers never meet.

use diesel::prelude::*;
use jobs_domain::event::ChangeReason;
use jobs_domain::{Job, JobId, JobType, JobUpdate, Visibility};

use crate::db::{write_transaction, DbConnection};
use crate::events::Cause;
use crate::schema::jobs;
use crate::store::{change_on, JobStore, Reach};
use crate::{StoreError, StoreResult};

/// Which pending jobs a claim may take (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimFilter {
    /// Only jobs of this type.
    pub job_type: Option<JobType>,
    /// Only jobs of this agent.
    pub agent_id: Option<String>,
    /// Only jobs of this source (folder).
    pub source_id: Option<String>,
}

/// How many candidates one claim tries before it reports that there is nothing to claim.
const CLAIM_ATTEMPTS: usize = 8;

/// Refuses the change unless the job's version is one of `if_match` (when given).
pub(crate) fn precondition(job: &Job, if_match: Option<&[i64]>) -> StoreResult<()> {
    match if_match {
        Some(versions) if !versions.contains(&job.version) => Err(StoreError::PreconditionFailed),
        _ => Ok(()),
    }
}

/// The id of the oldest claimable job: locked and skipped by other claimers on PostgreSQL
/// (`FOR UPDATE SKIP LOCKED`); on SQLite the caller holds the write lock already.
fn next_candidate(
    conn: &mut DbConnection,
    vis: &Visibility,
    filter: &ClaimFilter,
) -> StoreResult<Option<String>> {
    // The status is a literal, not a bound parameter, so that the partial `WHERE status =
    // 'pending'` indexes apply (neither planner can match a parameter against them).
    macro_rules! candidate {
        ($backend:ty) => {{
            let mut query = jobs::table
                .filter(jobs::org_id.eq(&vis.org_id))
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("jobs.status = 'pending'"))
                .into_boxed::<$backend>();
            if let Some(user) = &vis.user_id {
                query = query.filter(jobs::user_id.eq(user));
            }
            if let Some(job_type) = filter.job_type {
                query = query.filter(jobs::job_type.eq(job_type.as_str()));
            }
            if let Some(agent) = &filter.agent_id {
                query = query.filter(jobs::agent_id.eq(agent));
            }
            if let Some(source) = &filter.source_id {
                query = query.filter(jobs::source_id.eq(source));
            }
            query.select(jobs::id)
        }};
    }
    // diesel offers no locking clause on a boxed query, and the clause must follow LIMIT:
    // the tail is written out once here.
    let tail = |locking: &str| {
        diesel::dsl::sql::<diesel::sql_types::Text>(&format!(
            "jobs.created_at ASC, jobs.id ASC LIMIT 1{locking}"
        ))
    };
    Ok(match conn {
        DbConnection::Postgres(c) => candidate!(diesel::pg::Pg)
            .order(tail(" FOR UPDATE SKIP LOCKED"))
            .get_result::<String>(c)
            .optional()?,
        DbConnection::Sqlite(c) => {
            candidate!(diesel::sqlite::Sqlite).order(tail("")).get_result::<String>(c).optional()?
        }
    })
}

impl JobStore {
    /// Claims the oldest (`created_at`, `id`) pending job visible to `vis` that matches
    /// `filter`: it becomes `running`, claimed by `worker`, with a lease of `lease_seconds`.
    /// `None` when there is nothing to claim. No job is ever handed to two claimers.
    pub fn claim(
        &self,
        vis: &Visibility,
        worker: &str,
        filter: &ClaimFilter,
        lease_seconds: Option<i64>,
    ) -> StoreResult<Option<Job>> {
        let (vis, worker, filter) = (vis.clone(), worker.to_owned(), filter.clone());
        self.write(move |store, conn| store.claim_on(conn, &vis, &worker, &filter, lease_seconds))
    }

    fn claim_on(
        &self,
        conn: &mut DbConnection,
        vis: &Visibility,
        worker: &str,
        filter: &ClaimFilter,
        lease_seconds: Option<i64>,
    ) -> StoreResult<Option<Job>> {
        let observer = self.observer();
        for _ in 0..CLAIM_ATTEMPTS {
            let claimed = write_transaction(conn, |conn| {
                let Some(id) = next_candidate(conn, vis, filter)? else { return Ok(Some(None)) };
                let Ok(id) = JobId::parse(&id) else { return Ok(None) };
                let claim = |job: &Job| job.claim(worker, lease_seconds, self.now()).map(Some);
                let cause = Cause { cx: &self.context, reason: ChangeReason::Claim };
                match change_on(conn, observer, Reach::Any, id, cause, claim) {
                    Ok(changed) => Ok(Some(Some(changed.job))),
                    // Taken or withdrawn in between: try the next one.
                    Err(StoreError::Transition(_) | StoreError::NotFound) => Ok(None),
                    Err(err) => Err(err),
                }
            })?;
            if let Some(outcome) = claimed {
                return Ok(outcome);
            }
        }
        Ok(None)
    }

    /// Renews the lease of a running job claimed by `worker` (a heartbeat): it now ends
    /// `lease_seconds` (or the claim's length) from now.
    pub fn heartbeat(
        &self,
        vis: &Visibility,
        worker: &str,
        id: JobId,
        lease_seconds: Option<i64>,
    ) -> StoreResult<Job> {
        let (vis, worker) = (vis.clone(), worker.to_owned());
        self.write(move |store, conn| {
            let renew = |job: &Job| job.renew_lease(&worker, lease_seconds, store.now()).map(Some);
            let cause = Cause { cx: &store.context, reason: ChangeReason::Update };
            Ok(change_on(conn, store.observer(), Reach::Caller(&vis), id, cause, renew)?.job)
        })
    }

    /// A worker's update by `worker`: refused while another worker holds the job; renews
    /// the lease when `worker` holds it. With `if_match`, only while the job's version is
    /// one of those.
    pub fn update_by(
        &self,
        vis: &Visibility,
        worker: &str,
        id: JobId,
        update: &JobUpdate,
        if_match: Option<&[i64]>,
    ) -> StoreResult<Job> {
        let (vis, worker, update) = (vis.clone(), worker.to_owned(), update.clone());
        let if_match = if_match.map(<[i64]>::to_vec);
        self.write(move |store, conn| {
            let next = |job: &Job| -> StoreResult<Option<Job>> {
                precondition(job, if_match.as_deref())?;
                job.check_claimer(&worker)?;
                let at = store.now();
                Ok(Some(job.apply_update(&update, at)?.renewed_by(&worker, at)))
            };
            let cause = Cause { cx: &store.context, reason: ChangeReason::Update };
            Ok(change_on(conn, store.observer(), Reach::Caller(&vis), id, cause, next)?.job)
        })
    }

    /// [`JobStore::cancel`], only while the job's version is one of `if_match` (when given).
    pub fn cancel_if(
        &self,
        vis: &Visibility,
        id: JobId,
        if_match: Option<&[i64]>,
    ) -> StoreResult<Job> {
        let (vis, if_match) = (vis.clone(), if_match.map(<[i64]>::to_vec));
        self.write(move |store, conn| {
            let next = |job: &Job| -> StoreResult<Option<Job>> {
                precondition(job, if_match.as_deref())?;
                Ok(job.cancel(store.now())?)
            };
            let cause = Cause { cx: &store.context, reason: ChangeReason::Cancel };
            Ok(change_on(conn, store.observer(), Reach::Caller(&vis), id, cause, next)?.job)
        })
    }
}
