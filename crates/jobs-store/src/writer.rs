//! Group commit: one thread owns a write connection and commits the writes that arrive
//! together in one transaction, with one fsync.
//!
//! A durable commit costs a flush of the log to disk, whatever it holds, and on SQLite only
//! one transaction writes at a time. So the writer takes every write waiting when it is
//! free, runs each in a savepoint of one transaction, commits once, and only then answers
//! each caller: an acknowledged write has been flushed. A write that fails is rolled back
//! to its savepoint and fails alone; a commit that fails fails the whole batch, and nothing
//! of it was acknowledged. Creates without an idempotency key, the commonest write, are
//! inserted together: one statement for the jobs and one for their events.
//!
//! The writer waits for nothing: a write that finds it idle is committed at once; writes
//! that arrive during a commit form the next batch.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use diesel::Connection;
use jobs_domain::{Job, JobStatus};
use tokio::sync::oneshot;

use crate::db::{begin_write, end_write, DbConnection, Manager};
use crate::events::EventContext;
use crate::store::StoreObserver;
use crate::{StoreError, StoreResult};

/// Writes taken into one batch at most (PostgreSQL binds at most 65 535 values in one
/// statement; a job row has 26).
const MAX_BATCH: usize = 512;

/// What a batch's commit did, told to each write of the batch.
type Outcome<'a> = Result<(), &'a str>;
/// Answers one caller, once its batch has committed (or failed to).
type Finish = Box<dyn FnOnce(Outcome<'_>) + Send>;
/// One write: runs in its savepoint (or learns why it cannot run) and returns how to
/// answer its caller.
type Work = Box<dyn FnOnce(Result<&mut DbConnection, &str>) -> Finish + Send>;

enum Task {
    /// A job to insert, with its `job.created` event.
    Create { job: Box<Job>, cx: EventContext, reply: oneshot::Sender<StoreResult<()>> },
    /// Any other write.
    Run(Work),
}

/// An observer that keeps what it is told, to tell it on once the write has committed.
#[derive(Default)]
pub(crate) struct HeldBack(Mutex<Vec<Observed>>);

enum Observed {
    Created,
    Transitioned(JobStatus, JobStatus),
    Written(Box<Job>),
}

impl HeldBack {
    fn push(&self, what: Observed) {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(what);
    }

    /// Tells `observer` everything held back, in order.
    pub(crate) fn replay(&self, observer: &dyn StoreObserver) {
        let held = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for what in held {
            match what {
                Observed::Created => observer.job_created(),
                Observed::Transitioned(from, to) => observer.job_transitioned(from, to),
                Observed::Written(job) => observer.job_written(&job),
            }
        }
    }
}

impl StoreObserver for HeldBack {
    fn job_created(&self) {
        self.push(Observed::Created);
    }
    fn job_transitioned(&self, from: JobStatus, to: JobStatus) {
        self.push(Observed::Transitioned(from, to));
    }
    fn job_written(&self, job: &Job) {
        self.push(Observed::Written(Box::new(job.clone())));
    }
}

/// The handle of the writer thread; the thread stops when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct Writer {
    tasks: Sender<Task>,
}

impl Writer {
    /// Starts the writer thread, which connects through `manager` when it first writes.
    pub(crate) fn start(manager: Manager) -> std::io::Result<Writer> {
        let (tasks, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("jobs-writer".into())
            .spawn(move || run(&manager, &queue))?;
        Ok(Writer { tasks })
    }

    fn send(&self, task: Task) -> StoreResult<()> {
        self.tasks.send(task).map_err(|_| StoreError::Unavailable("the writer has stopped".into()))
    }

    /// Inserts `job` and its `job.created` event; the answer comes once they are committed.
    /// Awaiting it holds no thread.
    pub(crate) fn create(
        &self,
        job: Job,
        cx: EventContext,
    ) -> impl std::future::Future<Output = StoreResult<()>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Task::Create { job: Box::new(job), cx, reply });
        async move {
            sent?;
            answer.await.map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
        }
    }

    /// Runs `write` in a savepoint of the next batch; returns its result once the batch has
    /// committed. An error of `write` rolls back its own writes only.
    pub(crate) fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let answer = self.submit(write)?;
        answer.recv().map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }

    /// Queues `write` for the next batch; its result arrives on the receiver.
    fn submit<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut DbConnection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<Receiver<StoreResult<T>>> {
        let (reply, answer) = mpsc::sync_channel(1);
        let work: Work = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => savepoint(conn, write),
                Err(cause) => Err(not_committed(cause)),
            };
            Box::new(move |outcome: Outcome<'_>| {
                let _ = reply.send(match (result, outcome) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(cause)) => Err(not_committed(cause)),
                    (Err(err), _) => Err(err),
                });
            })
        });
        self.send(Task::Run(work))?;
        Ok(answer)
    }
}

fn not_committed(cause: &str) -> StoreError {
    StoreError::Unavailable(format!("the write was not committed: {cause}").into())
}

/// Runs `write` in a savepoint; a panic counts as an error of this write alone.
fn savepoint<T>(
    conn: &mut DbConnection,
    write: impl FnOnce(&mut DbConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.transaction(|conn| match catch_unwind(AssertUnwindSafe(|| write(conn))) {
        Ok(result) => result,
        Err(_) => Err(StoreError::Internal("a write panicked".into())),
    })
}

/// The writer thread: a batch at a time, until every handle is gone.
fn run(manager: &Manager, queue: &Receiver<Task>) {
    let mut held: Option<DbConnection> = None;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        if let Err(cause) = begin(manager, &mut held) {
            log::warn!(
                "the writer cannot start a transaction, failing {} writes: {cause}",
                batch.len()
            );
            fail(batch, &cause);
            continue;
        }
        let Some(conn) = held.as_mut() else { continue };
        let (finishers, outcome) = commit(conn, batch);
        if let Err(cause) = &outcome {
            log::warn!("a batch of {} writes failed to commit: {cause}", finishers.len());
            // The connection may be lost or left in a failed transaction (diesel cannot
            // always tell): the next batch starts on a new one.
            held = None;
        }
        for finisher in finishers {
            finisher(outcome.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

/// Begins the batch's transaction on the held connection, or on a new one: a connection
/// whose server went away (a restart) fails at its first statement, and nothing of the
/// batch has run yet, so starting again on a new connection is safe.
fn begin(manager: &Manager, held: &mut Option<DbConnection>) -> Result<(), String> {
    let reused = held.is_some();
    if let Some(conn) = held.as_mut() {
        if begin_write(conn).is_ok() {
            return Ok(());
        }
        *held = None;
    }
    let mut conn = r2d2::ManageConnection::connect(manager).map_err(|e| e.to_string())?;
    match begin_write(&mut conn) {
        Ok(()) => {
            if reused {
                log::info!("the writer reconnected to the database");
            }
            *held = Some(conn);
            Ok(())
        }
        Err(err) => Err(err.to_string()),
    }
}

/// Answers every write of a batch that could not start with why.
fn fail(batch: Vec<Task>, cause: &str) {
    for task in batch {
        match task {
            Task::Create { reply, .. } => {
                let _ = reply.send(Err(not_committed(cause)));
            }
            Task::Run(work) => work(Err(cause))(Err(cause)),
        }
    }
}

/// Runs a batch in the transaction [`begin`] started and commits it; returns how to answer
/// each write.
fn commit(conn: &mut DbConnection, batch: Vec<Task>) -> (Vec<Finish>, Result<(), String>) {
    let mut finishers: Vec<Finish> = Vec::with_capacity(batch.len());
    let mut creates = Vec::new();
    for task in batch {
        match task {
            Task::Create { job, cx, reply } => creates.push((job, cx, reply)),
            Task::Run(work) => finishers.push(work(Ok(conn))),
        }
    }
    let (answers, created) = insert_created(conn, creates);
    finishers.extend(answers);
    // The new jobs' events go with the commit (on PostgreSQL in its round trip).
    let created: Vec<(&Job, &EventContext)> = created.iter().map(|(j, cx)| (&**j, cx)).collect();
    let committed = crate::events::commit_with(conn, &crate::events::created_all(&created))
        .map_err(|err| {
            let _ = end_write(conn, false);
            err.to_string()
        });
    (finishers, committed)
}

/// The jobs a batch inserted, for their events.
type Inserted = Vec<(Box<Job>, EventContext)>;

/// Inserts a batch's new jobs: all together, or, if that fails, one by one so that a
/// failure fails its own create only. Returns how to answer each create and the jobs
/// inserted, whose `job.created` events are written with the commit.
fn insert_created(
    conn: &mut DbConnection,
    creates: Vec<(Box<Job>, EventContext, oneshot::Sender<StoreResult<()>>)>,
) -> (Vec<Finish>, Inserted) {
    let answer = |reply: oneshot::Sender<StoreResult<()>>, result: StoreResult<()>| -> Finish {
        Box::new(move |outcome: Outcome<'_>| {
            let _ = reply.send(result.and_then(|()| outcome.map_err(not_committed)));
        })
    };
    if creates.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let together = savepoint(conn, |conn| {
        let jobs: Vec<(&Job, &EventContext)> =
            creates.iter().map(|(j, cx, _)| (&**j, cx)).collect();
        Ok(crate::store::insert_job_rows(conn, &jobs)?)
    });
    let (mut answers, mut inserted) = (Vec::new(), Vec::new());
    for (job, cx, reply) in creates {
        let result = match &together {
            Ok(()) => Ok(()),
            Err(_) => {
                savepoint(conn, |conn| Ok(crate::store::insert_job_rows(conn, &[(&job, &cx)])?))
            }
        };
        if result.is_ok() {
            inserted.push((job, cx));
        }
        answers.push(answer(reply, result));
    }
    (answers, inserted)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
