//! `JobStore`: every operation the API needs, each one safe under concurrency.

use chrono::TimeDelta;
use diesel::prelude::*;
use std::sync::Arc;

use jobs_domain::event::{ChangeReason, DeleteReason};
use jobs_domain::{Clock, Job, JobId, JobStatus, JobUpdate, ListQuery, Visibility};

use crate::db::{self, DatabaseUrl, DbConnection, DbPool, PoolOptions};
use crate::events::{self, Cause, EventContext};
use crate::health::{Health, Watch};
use crate::outbox;
use crate::rows::{JobChanges, JobRow};
use crate::schema::jobs;
use crate::{StoreError, StoreResult};

/// How long an idempotency key keeps returning the job it created.
pub const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);

/// How many times a compare-and-set is retried after losing a race before giving up.
/// Each retry re-reads the job, so a lost race normally ends in a 409 on the second try.
pub(crate) const MAX_CAS_ATTEMPTS: usize = 64;

/// Told about what the store did, for metrics. Every method defaults to doing nothing.
pub trait StoreObserver: Send + Sync {
    /// A job was created.
    fn job_created(&self) {}
    /// A job moved from one status to another (by a worker, a cancel or expiry).
    fn job_transitioned(&self, _from: JobStatus, _to: JobStatus) {}
    /// A job was changed by the server itself (the sweeper), after the change committed.
    fn job_written(&self, _job: &Job) {}
}

struct NoObserver;
impl StoreObserver for NoObserver {}

/// Which jobs a change may touch: a caller's, or any (for the server's own sweeps).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reach<'a> {
    Caller(&'a Visibility),
    Any,
}

/// The outcome of a create.
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    /// The job.
    pub job: Job,
    /// True when an idempotency key matched and `job` is the one created the first time.
    pub replayed: bool,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The jobs, in the requested order.
    pub jobs: Vec<Job>,
    /// Whether more jobs follow in that order.
    pub has_more: bool,
}

/// Pool figures, for readiness and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections.
    pub connections: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most the pool opens.
    pub max_size: u32,
}

/// The jobs database. Cheap to clone (it is a pool); every method blocks, so async callers
/// run them on a blocking thread.
#[derive(Clone)]
pub struct JobStore {
    pub(crate) pool: DbPool,
    pub(crate) health: Arc<Health>,
    backend: &'static str,
    pub(crate) observer: Arc<dyn StoreObserver>,
    pub(crate) context: EventContext,
    pub(crate) clock: Clock,
    /// The group-commit writer.
    pub(crate) writer: Arc<crate::writer::Writer>,
    /// Per-thread read connections, on SQLite.
    pub(crate) readers: Option<crate::reader::Readers>,
    /// Per-thread async read connections, on PostgreSQL.
    pub(crate) async_readers: Option<crate::async_reader::AsyncReaders>,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore").field("pool", &self.pool_status()).finish()
    }
}

/// The query of one job by primary key, whoever owns it: the hottest query of the API.
///
/// It runs on the concrete connection with SQL fixed at compile time, so each backend's
/// statement cache keeps it prepared (through the multi-backend wrapper, diesel prepares it
/// every time). `as_select` is typed by backend, hence a macro. No `LIMIT ?` (`first()`
/// would add one): SQLite plans with a bound LIMIT's value, so rebinding it expires the
/// prepared statement and every read would parse and plan the query again (seen in perf as
/// `sqlite3Reprepare`). A primary key finds one row anyway.
macro_rules! by_id_query {
    ($id:expr) => {
        diesel::QueryDsl::select(
            diesel::QueryDsl::find($crate::schema::jobs::table, $id),
            <$crate::rows::JobRow as diesel::SelectableHelper<_>>::as_select(),
        )
    };
}
pub(crate) use by_id_query;

fn by_id(conn: &mut DbConnection, id: JobId) -> StoreResult<Option<JobRow>> {
    let id = id.to_string();
    Ok(match conn {
        DbConnection::Sqlite(c) => by_id_query!(&id).load(c)?.into_iter().next(),
        DbConnection::Postgres(c) => by_id_query!(&id).load(c)?.into_iter().next(),
    })
}

/// The row a read by primary key found, if `vis` can see it. The lookup is by primary key
/// alone, with visibility checked on the row: a query that also named `org_id` and
/// `user_id` let PostgreSQL's generic plan pick an (org_id, user_id, …) index before the
/// table had statistics, and walk all of a user's jobs.
pub(crate) fn visible(vis: &Visibility, row: Option<JobRow>) -> Option<JobRow> {
    row.filter(|row| vis.can_see_user(&row.org_id, &row.user_id))
}

/// The job a read by primary key found, if `vis` can see it; `NotFound` otherwise.
pub(crate) fn visible_job(vis: &Visibility, row: Option<JobRow>) -> StoreResult<Job> {
    visible(vis, row).ok_or(StoreError::NotFound)?.into_job()
}

/// One visible job by id.
pub(crate) fn find(
    conn: &mut DbConnection,
    vis: &Visibility,
    id: JobId,
) -> StoreResult<Option<JobRow>> {
    Ok(visible(vis, by_id(conn, id)?))
}

fn find_in(conn: &mut DbConnection, reach: Reach<'_>, id: JobId) -> StoreResult<Option<JobRow>> {
    match reach {
        Reach::Caller(vis) => find(conn, vis, id),
        Reach::Any => by_id(conn, id),
    }
}

/// A change that was applied, or found unnecessary.
pub(crate) struct Changed {
    pub job: Job,
}

/// Reads the job, computes its next state, and writes it only if nobody changed the job in
/// between (its `version` is unchanged); otherwise reads again. The status change and the
/// webhook event it causes are written in one transaction.
pub(crate) fn change_on<E: Into<StoreError>>(
    conn: &mut DbConnection,
    observer: &dyn StoreObserver,
    reach: Reach<'_>,
    id: JobId,
    cause: Cause<'_>,
    next: impl Fn(&Job) -> Result<Option<Job>, E>,
) -> StoreResult<Changed> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let row = find_in(conn, reach, id)?.ok_or(StoreError::NotFound)?;
        let version = row.version;
        let current = row.into_job()?;
        let Some(changed) = next(&current).map_err(Into::into)? else {
            return Ok(Changed { job: current });
        };
        let webhook = outbox::NewDelivery::of_change(&current, &changed);
        let written = events::transaction_with_events(conn, |conn| {
            let written = diesel::update(
                jobs::table.filter(jobs::id.eq(id.to_string())).filter(jobs::version.eq(version)),
            )
            .set(JobChanges::from_job(&changed, version + 1))
            .execute(conn)?;
            if written != 1 {
                return Ok((written, Vec::new()));
            }
            if let Some(delivery) = &webhook {
                outbox::enqueue(conn, std::slice::from_ref(delivery))?;
            }
            crate::changes::notify(conn, &changed)?;
            Ok((written, events::change_event(cause, &current, &changed).into_iter().collect()))
        })?;
        if written == 1 {
            if changed.status != current.status {
                observer.job_transitioned(current.status, changed.status);
            }
            let job = Job { version: version + 1, ..changed };
            return Ok(Changed { job });
        }
    }
    Err(StoreError::Unavailable(format!("job {id} is changing too fast to update").into()))
}

impl JobStore {
    /// Opens the database, applying pending migrations.
    pub fn open(url: &DatabaseUrl, options: &PoolOptions) -> anyhow::Result<JobStore> {
        let tested = matches!(url, DatabaseUrl::Postgres(_));
        let health = Arc::new(Health::new(options.connection_timeout, tested));
        let writer = crate::writer::Writer::start(db::Manager::new(url.clone()))
            .map_err(|e| anyhow::anyhow!("starting the writer thread: {e}"))?;
        Ok(JobStore {
            pool: db::open(url, options, Watch(health.clone()))?,
            writer: Arc::new(writer),
            health: health.clone(),
            backend: url.backend(),
            observer: Arc::new(NoObserver),
            context: EventContext::system(),
            clock: jobs_domain::system_clock(),
            readers: match url {
                DatabaseUrl::Sqlite(path) => Some(crate::reader::Readers::new(path)),
                DatabaseUrl::Postgres(_) => None,
            },
            async_readers: match url {
                DatabaseUrl::Sqlite(_) => None,
                DatabaseUrl::Postgres(url) => crate::async_reader::AsyncReaders::new(url, health),
            },
        })
    }

    /// The same store, reporting what it does to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn StoreObserver>) -> JobStore {
        self.observer = observer;
        self
    }

    pub(crate) fn observer(&self) -> &dyn StoreObserver {
        &*self.observer
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// One visible job.
    pub fn get(&self, vis: &Visibility, id: JobId) -> StoreResult<Job> {
        self.read(|conn| visible_job(vis, by_id(conn, id)?))
    }

    /// One page of visible jobs, keyset-paginated on (`created_at`, `id`).
    pub fn list(&self, vis: &Visibility, q: &ListQuery) -> StoreResult<Page> {
        self.read(|conn| list::list_on(conn, vis, q))
    }

    /// Applies a worker's update with compare-and-set.
    pub fn update(&self, vis: &Visibility, id: JobId, update: &JobUpdate) -> StoreResult<Job> {
        let (vis, update) = (vis.clone(), update.clone());
        self.write(move |store, conn| {
            let next = |job: &Job| job.apply_update(&update, store.now()).map(Some);
            let cause = Cause { cx: &store.context, reason: ChangeReason::Update };
            Ok(change_on(conn, store.observer(), Reach::Caller(&vis), id, cause, next)?.job)
        })
    }

    /// Cancels a job: active jobs become `cancelled`, a cancelled job is returned
    /// unchanged, a finished one is a transition error.
    pub fn cancel(&self, vis: &Visibility, id: JobId) -> StoreResult<Job> {
        self.cancel_if(vis, id, None)
    }

    /// Runs a write: on SQLite in the group-commit writer (SQLite writes one transaction at
    /// a time anyway, and the writer shares each commit among the writes that arrive
    /// together), on PostgreSQL on a pooled connection (its writers run side by side).
    pub(crate) fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&JobStore, &mut DbConnection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        if self.readers.is_none() {
            return write(self, &mut *self.conn()?);
        }
        // What the write tells the observer is held back until its batch has committed: a
        // write rolled back to its savepoint, or a batch whose commit failed, counts nothing.
        let held = Arc::new(crate::writer::HeldBack::default());
        let mut store = self.clone();
        store.observer = held.clone();
        let result = self.writer.write(move |conn| write(&store, conn));
        if result.is_ok() {
            held.replay(self.observer());
        }
        result
    }

    /// Deletes a finished job and returns it; an active job is [`StoreError::StillActive`].
    pub fn delete(&self, vis: &Visibility, id: JobId) -> StoreResult<Job> {
        self.delete_if(vis, id, None)
    }

    /// [`JobStore::delete`], only while the job's version is one of `if_match` (when given):
    /// otherwise [`StoreError::PreconditionFailed`] and nothing changes.
    pub fn delete_if(
        &self,
        vis: &Visibility,
        id: JobId,
        if_match: Option<&[i64]>,
    ) -> StoreResult<Job> {
        let (vis, if_match) = (vis.clone(), if_match.map(<[i64]>::to_vec));
        self.write(move |store, conn| store.delete_on(conn, &vis, id, if_match.as_deref()))
    }

    fn delete_on(
        &self,
        conn: &mut DbConnection,
        vis: &Visibility,
        id: JobId,
        if_match: Option<&[i64]>,
    ) -> StoreResult<Job> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let row = find(conn, vis, id)?.ok_or(StoreError::NotFound)?;
            let version = row.version;
            let job = row.into_job()?;
            crate::claims::precondition(&job, if_match)?;
            if job.status.is_active() {
                return Err(StoreError::StillActive { current: job.status });
            }
            let deleted = conn.transaction(|conn| {
                let deleted = diesel::delete(
                    jobs::table
                        .filter(jobs::id.eq(id.to_string()))
                        .filter(jobs::version.eq(version)),
                )
                .execute(conn)?;
                if deleted == 1 {
                    crate::changes::notify(conn, &job)?;
                    events::deleted(conn, &self.context, &job, self.now(), DeleteReason::Delete)?;
                }
                Ok::<_, diesel::result::Error>(deleted)
            })?;
            if deleted == 1 {
                return Ok(job);
            }
        }
        Err(StoreError::Unavailable(format!("job {id} is changing too fast to delete").into()))
    }
}

mod clock;
mod create;
#[cfg(test)]
pub(crate) use create::block_on;
pub(crate) use create::insert_job_rows;
#[cfg(test)]
pub(crate) use create::insert_jobs;
mod list;
#[cfg(test)]
pub(crate) mod plan_tests;
