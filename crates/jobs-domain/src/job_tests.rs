//! Unit tests of the Job lifecycle functions.
use super::*;

fn job() -> Job {
    Job::create(JobId::generate(), Owner::new("org", "user", None), NewJob::default(), now())
}

fn update(status: JobStatus) -> JobUpdate {
    JobUpdate::new(Some(status), None, None, None).unwrap_or_default()
}

#[test]
fn a_job_runs_and_completes_with_its_duration_filled_in() {
    let t0 = now();
    let created = job();
    let pending = created.apply_update(&update(JobStatus::Pending), t0).ok();
    let pending = pending.unwrap_or_else(job);
    assert_eq!(pending.status, JobStatus::Pending);
    let running = pending.apply_update(&update(JobStatus::Running), t0).unwrap_or_else(|_| job());
    assert_eq!(running.started_at, Some(t0));
    let t1 = t0 + chrono::TimeDelta::milliseconds(1500);
    let done = running.apply_update(&update(JobStatus::Completed), t1).unwrap_or_else(|_| job());
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(done.completed_at, Some(t1));
    assert_eq!(done.total_duration_ns, Some(1_500_000_000));
}

#[test]
fn a_reported_duration_is_kept() {
    let t0 = now();
    let mut running = job();
    running.status = JobStatus::Running;
    running.started_at = Some(t0);
    let finish = JobUpdate::new(Some(JobStatus::Failed), None, Some(5), Some(42));
    let done = running.apply_update(&finish.unwrap_or_default(), t0).unwrap_or_else(|_| job());
    assert_eq!(done.total_duration_ns, Some(42));
    assert_eq!(done.ttft_ns, Some(5));
}

#[test]
fn a_terminal_job_refuses_every_update() {
    let mut done = job();
    done.status = JobStatus::Completed;
    let meta = JobUpdate::new(None, Some(Metadata::new()), None, None).unwrap_or_default();
    assert_eq!(
        done.apply_update(&meta, now()),
        Err(TransitionError { current: JobStatus::Completed, requested: None }.into())
    );
    assert_eq!(
        done.apply_update(&update(JobStatus::Running), now()).err().map(|e| e.to_string()),
        Some("Cannot transition from 'completed' to 'running'".to_owned())
    );
}

#[test]
fn an_empty_or_negative_update_is_invalid() {
    assert!(JobUpdate::new(None, None, None, None).is_err());
    assert!(JobUpdate::new(None, None, Some(-1), None).is_err());
    assert!(JobUpdate::new(None, None, None, Some(-1)).is_err());
    assert!(JobUpdate::new(None, None, Some(0), None).is_ok());
}

#[test]
fn cancelling_twice_changes_nothing_the_second_time() {
    let t = now();
    let cancelled = job().cancel(t).ok().flatten().unwrap_or_else(job);
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert_eq!(cancelled.completed_at, Some(t));
    assert_eq!(cancelled.cancel(now()), Ok(None));
}

#[test]
fn a_running_job_expires_only_after_its_timeout() {
    let t0 = now();
    let mut running = job();
    running.status = JobStatus::Running;
    running.started_at = Some(t0);
    running.timeout_seconds = Some(10);
    assert_eq!(running.expire(t0 + chrono::TimeDelta::seconds(9)), None);
    let expired = running.expire(t0 + chrono::TimeDelta::seconds(10)).unwrap();
    assert_eq!(expired.status, JobStatus::Expired);
    assert_eq!(expired.total_duration_ns, Some(10_000_000_000));
    assert!(expired.completed_at.is_some());
    assert_eq!(expired.expire(t0 + chrono::TimeDelta::days(1)), None);
    running.timeout_seconds = None;
    assert_eq!(running.expire(t0 + chrono::TimeDelta::days(1)), None);
}

#[test]
fn an_update_shows_what_it_asks_for() {
    let mut patch = Metadata::new();
    patch.insert("progress".to_owned(), serde_json::json!(0.5));
    let update = JobUpdate::new(None, Some(patch.clone()), Some(7), None).unwrap();
    assert_eq!(update.status(), None);
    assert_eq!(update.metadata(), Some(&patch));
    assert_eq!(update.ttft_ns(), Some(7));
    assert_eq!(update.total_duration_ns(), None);
}
