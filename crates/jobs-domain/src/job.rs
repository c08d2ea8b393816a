//! The Job resource and the pure functions that change it.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};

use crate::id::JobId;
use crate::status::{CancelOutcome, JobStatus, JobType};
use crate::tenancy::Owner;
use crate::ValidationError;

/// Free-form job metadata: always a JSON object.
pub type Metadata = Map<String, Value>;

/// The largest `timeout_seconds` accepted (about 68 years): it keeps deadline arithmetic
/// far from any overflow.
pub const MAX_TIMEOUT_SECONDS: i64 = i32::MAX as i64;

/// The current time at the precision jobs record (microseconds), so that what is stored and
/// what is returned are the same instant.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// One job, as stored and as returned by the API.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Server-generated id.
    pub id: JobId,
    /// Where the job is in its lifecycle.
    pub status: JobStatus,
    /// Set by the server at creation.
    pub created_at: DateTime<Utc>,
    /// Changes with every change.
    pub updated_at: DateTime<Utc>,
    /// Set when the job enters a terminal status.
    pub completed_at: Option<DateTime<Utc>>,
    /// When the job entered `running` (not part of the API; drives expiry and durations).
    pub started_at: Option<DateTime<Utc>>,
    /// Free-form metadata.
    pub metadata: Metadata,
    /// The kind of work.
    pub job_type: JobType,
    /// Whether the job runs in the background.
    pub background: bool,
    /// Associated agent.
    pub agent_id: Option<String>,
    /// Associated data source (folder).
    pub source_id: Option<String>,
    /// Who owns the job.
    pub owner: Owner,
    /// Completion webhook target.
    pub callback_url: Option<String>,
    /// When the last webhook delivery was attempted.
    pub callback_sent_at: Option<DateTime<Utc>>,
    /// HTTP status of the last delivery attempt.
    pub callback_status_code: Option<i32>,
    /// Error of the last delivery attempt.
    pub callback_error: Option<String>,
    /// Time to first token, reported by the worker.
    pub ttft_ns: Option<i64>,
    /// Total duration, reported by the worker or filled in by the server.
    pub total_duration_ns: Option<i64>,
    /// Longest time allowed in `running`.
    pub timeout_seconds: Option<i64>,
}

/// What a producer asks for when it creates a job (validated).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewJob {
    /// Kind of work; `job` by default.
    pub job_type: JobType,
    /// Initial metadata.
    pub metadata: Metadata,
    /// Background flag.
    pub background: bool,
    /// Associated agent.
    pub agent_id: Option<String>,
    /// Associated data source.
    pub source_id: Option<String>,
    /// Completion webhook target (absolute http or https URL).
    pub callback_url: Option<String>,
    /// Longest time allowed in `running`, in seconds (1 or more).
    pub timeout_seconds: Option<i64>,
}

impl NewJob {
    /// Checks the numeric bounds of a creation request.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(timeout) = self.timeout_seconds {
            if !(1..=MAX_TIMEOUT_SECONDS).contains(&timeout) {
                return Err(ValidationError::new(
                    "timeout_seconds",
                    format!("must be between 1 and {MAX_TIMEOUT_SECONDS}"),
                ));
            }
        }
        Ok(())
    }
}

/// A worker's update: any of status, metadata (merge patch) and timings, at least one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobUpdate {
    status: Option<JobStatus>,
    metadata: Option<Metadata>,
    ttft_ns: Option<i64>,
    total_duration_ns: Option<i64>,
}

impl JobUpdate {
    /// Validates an update: at least one field, non-negative timings.
    pub fn new(
        status: Option<JobStatus>,
        metadata: Option<Metadata>,
        ttft_ns: Option<i64>,
        total_duration_ns: Option<i64>,
    ) -> Result<Self, ValidationError> {
        if status.is_none()
            && metadata.is_none()
            && ttft_ns.is_none()
            && total_duration_ns.is_none()
        {
            return Err(ValidationError::new(
                "body",
                "give at least one of status, metadata, ttft_ns, total_duration_ns",
            ));
        }
        for (field, value) in [("ttft_ns", ttft_ns), ("total_duration_ns", total_duration_ns)] {
            if value.is_some_and(|v| v < 0) {
                return Err(ValidationError::new(field, "must be 0 or more"));
            }
        }
        Ok(JobUpdate { status, metadata, ttft_ns, total_duration_ns })
    }

    /// The status the update asks for, if any.
    pub fn status(&self) -> Option<JobStatus> {
        self.status
    }
}

/// A change the lifecycle refuses: SPEC §3's `invalid_job_status_transition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct TransitionError {
    /// The job's status when the change was tried.
    pub current: JobStatus,
    /// The status asked for (none when the update named no status).
    pub requested: Option<JobStatus>,
}

impl TransitionError {
    fn message(&self) -> String {
        match self.requested {
            Some(to) => format!("Cannot transition from '{}' to '{}'", self.current, to),
            None => format!("Cannot update a job in terminal status '{}'", self.current),
        }
    }
}

impl Job {
    /// A new job in status `created`.
    pub fn create(id: JobId, owner: Owner, new: NewJob, at: DateTime<Utc>) -> Job {
        Job {
            id,
            status: JobStatus::Created,
            created_at: at,
            updated_at: at,
            completed_at: None,
            started_at: None,
            metadata: new.metadata,
            job_type: new.job_type,
            background: new.background,
            agent_id: new.agent_id,
            source_id: new.source_id,
            owner,
            callback_url: new.callback_url,
            callback_sent_at: None,
            callback_status_code: None,
            callback_error: None,
            ttft_ns: None,
            total_duration_ns: None,
            timeout_seconds: new.timeout_seconds,
        }
    }

    /// The job after a worker's update, or the reason it is refused. Pure: the caller stores
    /// the result with a compare-and-set.
    pub fn apply_update(
        &self,
        update: &JobUpdate,
        at: DateTime<Utc>,
    ) -> Result<Job, TransitionError> {
        if self.status.is_terminal() {
            return Err(TransitionError { current: self.status, requested: update.status });
        }
        if let Some(next) = update.status {
            if !self.status.can_transition_to(next) {
                return Err(TransitionError { current: self.status, requested: Some(next) });
            }
        }
        let mut job = self.clone();
        if let Some(patch) = &update.metadata {
            merge_patch(&mut job.metadata, patch);
        }
        if update.ttft_ns.is_some() {
            job.ttft_ns = update.ttft_ns;
        }
        if update.total_duration_ns.is_some() {
            job.total_duration_ns = update.total_duration_ns;
        }
        if let Some(next) = update.status {
            job.enter(next, at);
        }
        job.updated_at = at;
        Ok(job)
    }

    /// The job after a user's cancel: `Ok(None)` when it is cancelled already (nothing
    /// changes), an error when it finished some other way.
    pub fn cancel(&self, at: DateTime<Utc>) -> Result<Option<Job>, TransitionError> {
        match self.status.cancel_outcome() {
            CancelOutcome::Cancel => {
                let mut job = self.clone();
                job.enter(JobStatus::Cancelled, at);
                job.updated_at = at;
                Ok(Some(job))
            }
            CancelOutcome::AlreadyCancelled => Ok(None),
            CancelOutcome::Refused => {
                Err(TransitionError { current: self.status, requested: Some(JobStatus::Cancelled) })
            }
        }
    }

    /// The job moved to `expired` if it is running past its timeout at `at`; `None` when
    /// it is not (it finished, or its time is not up).
    pub fn expire(&self, at: DateTime<Utc>) -> Option<Job> {
        if self.expires_at().is_some_and(|deadline| deadline <= at) {
            let mut job = self.clone();
            job.enter(JobStatus::Expired, at);
            job.updated_at = at;
            Some(job)
        } else {
            None
        }
    }

    /// When a running job with a timeout is due to expire.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        match (self.status, self.started_at, self.timeout_seconds) {
            (JobStatus::Running, Some(started), Some(secs)) => {
                started.checked_add_signed(chrono::TimeDelta::try_seconds(secs)?)
            }
            _ => None,
        }
    }

    /// Records the side effects of entering `next`.
    fn enter(&mut self, next: JobStatus, at: DateTime<Utc>) {
        if next == JobStatus::Running {
            self.started_at = Some(at);
        }
        if next.is_terminal() {
            self.completed_at = Some(at);
            if self.total_duration_ns.is_none() && self.status == JobStatus::Running {
                if let Some(started) = self.started_at {
                    self.total_duration_ns = (at - started).num_nanoseconds().map(|n| n.max(0));
                }
            }
        }
        self.status = next;
    }
}

/// Applies a JSON merge patch (RFC 7396) to an object: `null` removes a key, an object
/// merges recursively, anything else replaces.
pub fn merge_patch(target: &mut Metadata, patch: &Metadata) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(key);
            }
            Value::Object(inner) => {
                let slot = target.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(existing) = slot {
                    merge_patch(existing, inner);
                }
            }
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Metadata {
        match value {
            Value::Object(map) => map,
            _ => Metadata::new(),
        }
    }

    fn job() -> Job {
        Job::create(JobId::generate(), Owner::new("org", "user", None), NewJob::default(), now())
    }

    fn update(status: JobStatus) -> JobUpdate {
        JobUpdate::new(Some(status), None, None, None).unwrap_or_default()
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396 appendix A that have objects on both sides.
        let mut target = object(json!({"a": "b", "c": {"d": "e", "f": "g"}}));
        merge_patch(&mut target, &object(json!({"a": "z", "c": {"f": null}})));
        assert_eq!(Value::Object(target), json!({"a": "z", "c": {"d": "e"}}));

        let mut target = object(json!({"a": {"b": "c"}}));
        merge_patch(&mut target, &object(json!({"a": {"b": "d", "c": null}})));
        assert_eq!(Value::Object(target), json!({"a": {"b": "d"}}));

        let mut target = object(json!({"a": "foo"}));
        merge_patch(&mut target, &object(json!({"a": {"bb": {"ccc": null}}})));
        assert_eq!(Value::Object(target), json!({"a": {"bb": {}}}));

        let mut target = object(json!({"a": [1, 2]}));
        merge_patch(&mut target, &object(json!({"a": [3], "b": null})));
        assert_eq!(Value::Object(target), json!({"a": [3]}));
    }

    #[test]
    fn a_job_runs_and_completes_with_its_duration_filled_in() {
        let t0 = now();
        let created = job();
        let pending = created.apply_update(&update(JobStatus::Pending), t0).ok();
        let pending = pending.unwrap_or_else(job);
        assert_eq!(pending.status, JobStatus::Pending);
        let running =
            pending.apply_update(&update(JobStatus::Running), t0).unwrap_or_else(|_| job());
        assert_eq!(running.started_at, Some(t0));
        let t1 = t0 + chrono::TimeDelta::milliseconds(1500);
        let done =
            running.apply_update(&update(JobStatus::Completed), t1).unwrap_or_else(|_| job());
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
            Err(TransitionError { current: JobStatus::Completed, requested: None })
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
    fn timeouts_are_bounded() {
        let mut new = NewJob { timeout_seconds: Some(0), ..NewJob::default() };
        assert!(new.validate().is_err());
        new.timeout_seconds = Some(MAX_TIMEOUT_SECONDS + 1);
        assert!(new.validate().is_err());
        new.timeout_seconds = Some(1);
        assert!(new.validate().is_ok());
    }
}
