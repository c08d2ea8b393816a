//! Creating jobs, with and without an idempotency key.

use std::future::Future;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use jobs_domain::{Job, JobId, JobStatus, NewJob, Owner};

use super::{Created, JobStore, IDEMPOTENCY_WINDOW, MAX_CAS_ATTEMPTS};
use crate::db::DbConnection;
use crate::events::{self, EventContext};
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
        let start = |job: Job| Job { status, ..job };
        let Some(key) = key else {
            let job = start(Job::create(JobId::generate(), owner, new, self.now()));
            return block_on(self.insert_new(job));
        };
        let key = key.to_owned();
        self.write(move |store, conn| store.create_keyed(conn, owner, new, &key, status))
    }

    /// [`JobStore::create_in`] without an idempotency key, for async callers: the job is
    /// committed together with the creates that arrive with it (group commit), and the
    /// future holds no thread while it waits for that commit.
    pub fn create_new(
        &self,
        owner: Owner,
        new: NewJob,
        status: JobStatus,
    ) -> impl Future<Output = StoreResult<Created>> + Send + 'static {
        let job = Job { status, ..Job::create(JobId::generate(), owner, new, self.now()) };
        self.insert_new(job)
    }

    fn insert_new(&self, job: Job) -> impl Future<Output = StoreResult<Created>> + Send + 'static {
        let committed = self.writer.create(job.clone(), self.context.clone());
        let observer = self.observer.clone();
        async move {
            committed.await?;
            observer.job_created();
            Ok(Created { job, replayed: false })
        }
    }

    /// A create with an idempotency key, on `conn`.
    fn create_keyed(
        &self,
        conn: &mut DbConnection,
        owner: Owner,
        new: NewJob,
        key: &str,
        status: JobStatus,
    ) -> StoreResult<Created> {
        let start = |job: Job| Job { status, ..job };
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
                insert_jobs(conn, &[(&job, &self.context)])
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
                .first(conn)
                .optional()?;
            let Some(existing) = existing else { continue };
            if existing.created_at > (self.now() - IDEMPOTENCY_WINDOW).naive_utc() {
                if existing.request_hash != hash {
                    return Err(StoreError::IdempotencyMismatch);
                }
                let first: Option<JobRow> = jobs::table
                    .find(&existing.job_id)
                    .select(JobRow::as_select())
                    .first(conn)
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
            .execute(conn)?;
        }
        Err(StoreError::Unavailable(format!("idempotency key '{key}' is contended").into()))
    }
}

/// Inserts new jobs with their `job.created` events and change notices: one statement each,
/// however many jobs (inside the caller's transaction).
pub(crate) fn insert_jobs(
    conn: &mut DbConnection,
    new: &[(&Job, &EventContext)],
) -> diesel::QueryResult<()> {
    insert_job_rows(conn, new)?;
    events::insert(conn, &events::created_all(new))
}

/// [`insert_jobs`] without the events, for a caller that writes them with its commit.
pub(crate) fn insert_job_rows(
    conn: &mut DbConnection,
    new: &[(&Job, &EventContext)],
) -> diesel::QueryResult<()> {
    let rows: Vec<JobRow> = new.iter().map(|(job, _)| JobRow::from_job(job)).collect();
    // A batch insert is one statement on each backend, not through the multi-backend wrapper.
    match conn {
        DbConnection::Sqlite(c) => diesel::insert_into(jobs::table).values(rows).execute(c),
        DbConnection::Postgres(c) => diesel::insert_into(jobs::table).values(rows).execute(c),
    }?;
    crate::changes::notify_all(conn, new.iter().map(|(job, _)| *job))
}

/// Wakes a thread parked in [`block_on`].
struct Unpark(std::thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// Waits for `future` on this thread (a blocking caller's create).
pub(crate) fn block_on<T>(future: impl Future<Output = T>) -> T {
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}
