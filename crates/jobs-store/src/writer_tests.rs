//! The writer's batches: what fails, fails alone; nothing is answered before its commit.

use super::*;
use crate::{DatabaseUrl, JobStore, PoolOptions};
use diesel::prelude::*;
use jobs_domain::{JobId, NewJob, Owner, Visibility};

fn store() -> (tempfile::TempDir, JobStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("jobs.db"));
    (dir, JobStore::open(&url, &PoolOptions::default()).unwrap())
}

fn new_job() -> Job {
    let owner = Owner::new("org", "ann", None);
    Job::create(JobId::generate(), owner, NewJob::default(), chrono::Utc::now())
}

/// Holds the writer inside a write until the returned sender is dropped: whatever is queued
/// meanwhile forms the next batch.
fn hold(writer: &Writer) -> (Receiver<StoreResult<()>>, mpsc::Sender<()>) {
    let (release, held) = mpsc::channel::<()>();
    let (started, wait_started) = mpsc::channel();
    let answer = writer
        .submit(move |_| {
            started.send(()).unwrap();
            let _ = held.recv();
            Ok(())
        })
        .unwrap();
    wait_started.recv().unwrap();
    (answer, release)
}

fn count_jobs(store: &JobStore) -> i64 {
    use crate::schema::jobs;
    jobs::table.count().get_result(&mut *store.conn().unwrap()).unwrap()
}

fn insert(job: Job, fail: bool) -> impl FnOnce(&mut DbConnection) -> StoreResult<()> + Send {
    move |conn| {
        crate::store::insert_jobs(conn, &[(&job, &EventContext::system())])?;
        if fail {
            return Err(StoreError::InvalidCursor("this write fails after its insert".into()));
        }
        Ok(())
    }
}

#[test]
fn a_failed_write_in_a_batch_fails_alone_and_the_rest_of_its_batch_commits() {
    let (_dir, store) = store();
    let (holder, release) = hold(&store.writer);
    let jobs: Vec<Job> = (0..4).map(|_| new_job()).collect();
    let answers: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| store.writer.submit(insert(job.clone(), i == 2)).unwrap())
        .collect();
    drop(release);
    holder.recv().unwrap().unwrap();
    let vis = Visibility::organization("org");
    for (i, (job, answer)) in jobs.iter().zip(answers).enumerate() {
        let result = answer.recv().unwrap();
        if i == 2 {
            assert!(matches!(result, Err(StoreError::InvalidCursor(_))), "{result:?}");
            assert!(matches!(store.get(&vis, job.id), Err(StoreError::NotFound)));
        } else {
            assert!(result.is_ok(), "{result:?}");
            assert!(store.get(&vis, job.id).is_ok());
        }
    }
    assert_eq!(count_jobs(&store), 3);
}

#[test]
fn creates_of_one_batch_are_inserted_together_and_one_that_cannot_be_fails_alone() {
    let (_dir, store) = store();
    let (holder, release) = hold(&store.writer);
    let first = new_job();
    // The same id twice: the batch's one insert fails, so each create is tried alone.
    let duplicate = Job { agent_id: Some("copy".into()), ..first.clone() };
    let other = new_job();
    let answers: Vec<_> = [first.clone(), duplicate, other.clone()]
        .into_iter()
        .map(|job| store.writer.create(job, EventContext::system()))
        .collect();
    drop(release);
    holder.recv().unwrap().unwrap();
    let results: Vec<StoreResult<()>> = answers.into_iter().map(crate::store::block_on).collect();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(results[1].is_err(), "{:?}", results[1]);
    assert!(results[2].is_ok(), "{:?}", results[2]);
    let vis = Visibility::organization("org");
    assert_eq!(store.get(&vis, first.id).unwrap().agent_id, None);
    assert!(store.get(&vis, other.id).is_ok());
    assert_eq!(count_jobs(&store), 2);
}

#[test]
fn a_write_is_answered_only_once_its_batch_has_committed() {
    let (_dir, store) = store();
    let (holder, release) = hold(&store.writer);
    let job = new_job();
    let answer = store.writer.submit(insert(job.clone(), false)).unwrap();
    // Queued behind the held write: not answered, and not visible to readers.
    assert!(answer.try_recv().is_err());
    assert_eq!(count_jobs(&store), 0);
    drop(release);
    holder.recv().unwrap().unwrap();
    answer.recv().unwrap().unwrap();
    assert_eq!(count_jobs(&store), 1);
}

/// Counts the transitions it is told of.
#[derive(Default)]
struct Transitions(std::sync::atomic::AtomicUsize);

impl StoreObserver for Transitions {
    fn job_transitioned(&self, _from: JobStatus, _to: JobStatus) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_write_rolled_back_to_its_savepoint_tells_the_observer_nothing() {
    let (_dir, store) = store();
    let counted = std::sync::Arc::new(Transitions::default());
    let store = store.with_observer(counted.clone());
    let owner = Owner::new("org", "ann", None);
    let id = store.create(owner, NewJob::default(), None).unwrap().job.id;
    let cancel_then_fail = move |store: &JobStore, conn: &mut DbConnection| -> StoreResult<()> {
        let cause = crate::events::Cause {
            cx: &store.context,
            reason: jobs_domain::event::ChangeReason::Cancel,
        };
        let next = |job: &Job| job.cancel(store.now());
        crate::store::change_on(conn, store.observer(), crate::store::Reach::Any, id, cause, next)?;
        Err(StoreError::InvalidCursor("fails after its transition".into()))
    };
    assert!(store.write(cancel_then_fail).is_err());
    let vis = Visibility::organization("org");
    assert_eq!(store.get(&vis, id).unwrap().status, JobStatus::Created, "rolled back");
    assert_eq!(counted.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    // A write that commits is told on once its batch has committed.
    store.cancel(&vis, id).unwrap();
    assert_eq!(counted.0.load(std::sync::atomic::Ordering::SeqCst), 1);
}
