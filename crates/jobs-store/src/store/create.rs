//! Creating jobs, with and without an idempotency key.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use jobs_domain::{Job, JobId, JobStatus, NewJob, Owner};

use super::{Created, JobStore, IDEMPOTENCY_WINDOW, MAX_CAS_ATTEMPTS};
use crate::events;
use crate::fingerprint::request_hash;
use crate::rows::{IdempotencyRow, JobRow};
use crate::schema::{idempotency_keys, jobs};
use crate::{StoreError, StoreResult};

impl JobStore {
    /// Creates a job in status `created`. With an idempotency key, the same key from the
    /// same owner within 24 hours returns the first job (`replayed`), and the same key with
    /// a different request is [`StoreError::IdempotencyMismatch`].
    pub fn create(&self, owner: Owner, new: NewJob, key: Option<&str>) -> StoreResult<Created> {
        self.create_in(owner, new, key, JobStatus::Created)
    }

    /// [`JobStore::create`], with the job starting in `status` (`created`, or `pending` to
    /// create and submit it at once).
    pub fn create_in(
        &self,
        owner: Owner,
        new: NewJob,
        key: Option<&str>,
        status: JobStatus,
    ) -> StoreResult<Created> {
        let mut conn = self.conn()?;
        let start = |job: Job| Job { status, ..job };
        let Some(key) = key else {
            let job = start(Job::create(JobId::generate(), owner, new, self.now()));
            conn.transaction(|conn| {
                diesel::insert_into(jobs::table).values(JobRow::from_job(&job)).execute(conn)?;
                crate::changes::notify(conn, &job)?;
                events::created(conn, &self.context, &job)
            })?;
            self.observer.job_created();
            return Ok(Created { job, replayed: false });
        };
        let mut hash = request_hash(&owner, &new);
        if status != JobStatus::Created {
            hash.push_str(status.as_str());
        }
        for _ in 0..MAX_CAS_ATTEMPTS {
            let job = start(Job::create(JobId::generate(), owner.clone(), new.clone(), self.now()));
            let key_row = IdempotencyRow {
                org_id: owner.org_id.clone(),
                user_id: owner.user_id.clone(),
                key: key.to_owned(),
                request_hash: hash.clone(),
                job_id: job.id.to_string(),
                created_at: job.created_at.naive_utc(),
            };
            // The key is claimed first, by an INSERT that the primary key makes exclusive:
            // of two requests with one key, one inserts and the other waits for it, then
            // fails and replays the winner's job. Starting with a write also means SQLite
            // takes its write lock up front, so the busy timeout applies.
            let inserted = conn.transaction(|conn| {
                diesel::insert_into(idempotency_keys::table).values(&key_row).execute(conn)?;
                diesel::insert_into(jobs::table).values(JobRow::from_job(&job)).execute(conn)?;
                crate::changes::notify(conn, &job)?;
                events::created(conn, &self.context, &job)
            });
            match inserted {
                Ok(()) => {
                    self.observer.job_created();
                    return Ok(Created { job, replayed: false });
                }
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
                Err(other) => return Err(other.into()),
            }
            let existing: Option<IdempotencyRow> = idempotency_keys::table
                .find((&owner.org_id, &owner.user_id, key))
                .select(IdempotencyRow::as_select())
                .first(&mut conn)
                .optional()?;
            let Some(existing) = existing else { continue };
            if existing.created_at > (self.now() - IDEMPOTENCY_WINDOW).naive_utc() {
                if existing.request_hash != hash {
                    return Err(StoreError::IdempotencyMismatch);
                }
                let first: Option<JobRow> = jobs::table
                    .find(&existing.job_id)
                    .select(JobRow::as_select())
                    .first(&mut conn)
                    .optional()?;
                if let Some(first) = first {
                    return Ok(Created { job: first.into_job()?, replayed: true });
                }
            }
            // Expired, or its job was deleted: the key starts afresh. Only this exact claim
            // is removed, so a racing request's fresh claim is never lost.
            diesel::delete(
                idempotency_keys::table
                    .find((&owner.org_id, &owner.user_id, key))
                    .filter(idempotency_keys::job_id.eq(&existing.job_id)),
            )
            .execute(&mut conn)?;
        }
        Err(StoreError::Unavailable(format!("idempotency key '{key}' is contended").into()))
    }
}
