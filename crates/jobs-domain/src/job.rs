//! The Job resource and the pure functions that change it.

use chrono::{DateTime, SubsecRound, Utc};

use crate::callback::CallbackUrl;
use crate::fields::{Label, TimeoutSeconds};
use crate::id::JobId;
use crate::metadata::BoundedMetadata;
use crate::status::{CancelOutcome, JobStatus, JobType};
use crate::tenancy::Owner;
use crate::ValidationError;

use crate::metadata::{check_metadata_size, DEFAULT_MAX_METADATA_BYTES};
pub use crate::metadata::{merge_patch, Metadata};

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
    /// The worker (token `sub`) that claimed the job, if a worker claimed it.
    pub claimed_by: Option<String>,
    /// While a claimed job runs: when its lease lapses unless the worker renews it.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The lease length the claimer asked for, in seconds (renewals reuse it).
    pub lease_seconds: Option<i64>,
    /// Compare-and-set token kept by the store: every stored change bumps it (0 when new).
    pub version: i64,
}

/// What a producer asks for when it creates a job. Every part is a checked value, so a
/// `NewJob` cannot be invalid: start from [`NewJob::default`] and add the parts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewJob {
    job_type: JobType,
    metadata: BoundedMetadata,
    background: bool,
    agent_id: Option<Label>,
    source_id: Option<Label>,
    callback_url: Option<CallbackUrl>,
    timeout_seconds: Option<TimeoutSeconds>,
}

impl NewJob {
    /// The same request with this kind of work.
    pub fn with_job_type(mut self, job_type: JobType) -> Self {
        self.job_type = job_type;
        self
    }

    /// The same request with this initial metadata.
    pub fn with_metadata(mut self, metadata: BoundedMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// The same request with this background flag.
    pub fn with_background(mut self, background: bool) -> Self {
        self.background = background;
        self
    }

    /// The same request with this agent.
    pub fn with_agent_id(mut self, agent_id: impl Into<Option<Label>>) -> Self {
        self.agent_id = agent_id.into();
        self
    }

    /// The same request with this data source.
    pub fn with_source_id(mut self, source_id: impl Into<Option<Label>>) -> Self {
        self.source_id = source_id.into();
        self
    }

    /// The same request with this completion webhook target.
    pub fn with_callback_url(mut self, url: impl Into<Option<CallbackUrl>>) -> Self {
        self.callback_url = url.into();
        self
    }

    /// The same request with this timeout.
    pub fn with_timeout_seconds(mut self, timeout: impl Into<Option<TimeoutSeconds>>) -> Self {
        self.timeout_seconds = timeout.into();
        self
    }

    /// Kind of work (`job` by default).
    pub fn job_type(&self) -> JobType {
        self.job_type
    }

    /// Initial metadata.
    pub fn metadata(&self) -> &Metadata {
        self.metadata.get()
    }

    /// Background flag.
    pub fn background(&self) -> bool {
        self.background
    }

    /// Associated agent.
    pub fn agent_id(&self) -> Option<&Label> {
        self.agent_id.as_ref()
    }

    /// Associated data source.
    pub fn source_id(&self) -> Option<&Label> {
        self.source_id.as_ref()
    }

    /// Completion webhook target.
    pub fn callback_url(&self) -> Option<&CallbackUrl> {
        self.callback_url.as_ref()
    }

    /// Longest time allowed in `running`.
    pub fn timeout_seconds(&self) -> Option<TimeoutSeconds> {
        self.timeout_seconds
    }
}

/// A worker's update: any of status, metadata (merge patch) and timings, at least one.
#[derive(Clone, Debug, PartialEq)]
pub struct JobUpdate {
    status: Option<JobStatus>,
    metadata: Option<Metadata>,
    ttft_ns: Option<i64>,
    total_duration_ns: Option<i64>,
    max_metadata_bytes: usize,
}

impl Default for JobUpdate {
    fn default() -> Self {
        JobUpdate {
            status: None,
            metadata: None,
            ttft_ns: None,
            total_duration_ns: None,
            max_metadata_bytes: DEFAULT_MAX_METADATA_BYTES,
        }
    }
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
        let max_metadata_bytes = DEFAULT_MAX_METADATA_BYTES;
        Ok(JobUpdate { status, metadata, ttft_ns, total_duration_ns, max_metadata_bytes })
    }

    /// The same update with another cap on the job's merged metadata (serialized bytes).
    pub fn with_max_metadata_bytes(mut self, max: usize) -> Self {
        self.max_metadata_bytes = max;
        self
    }

    /// The status the update asks for, if any.
    pub fn status(&self) -> Option<JobStatus> {
        self.status
    }

    /// The merge patch (RFC 7396) to apply to the job's metadata, if any.
    pub fn metadata(&self) -> Option<&Metadata> {
        self.metadata.as_ref()
    }

    /// The time to first token to record, in nanoseconds, if any.
    pub fn ttft_ns(&self) -> Option<i64> {
        self.ttft_ns
    }

    /// The total duration to record, in nanoseconds, if any.
    pub fn total_duration_ns(&self) -> Option<i64> {
        self.total_duration_ns
    }
}

/// A change the lifecycle refuses: the API's `invalid_job_status_transition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct TransitionError {
    /// The job's status when the change was tried.
    pub current: JobStatus,
    /// The status asked for (none when the update named no status).
    pub requested: Option<JobStatus>,
}

/// Why a worker's update is refused: the lifecycle (409) or the merged result (422).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The lifecycle refuses the change.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The job after the change breaks a rule (its metadata is too large).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
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
            metadata: new.metadata.into_inner(),
            job_type: new.job_type,
            background: new.background,
            agent_id: new.agent_id.map(Label::into_string),
            source_id: new.source_id.map(Label::into_string),
            owner,
            callback_url: new.callback_url.map(|url| url.as_str().to_owned()),
            callback_sent_at: None,
            callback_status_code: None,
            callback_error: None,
            ttft_ns: None,
            total_duration_ns: None,
            timeout_seconds: new.timeout_seconds.map(TimeoutSeconds::get),
            claimed_by: None,
            lease_expires_at: None,
            lease_seconds: None,
            version: 0,
        }
    }

    /// The job after a worker's update, or the reason it is refused. Pure: the caller stores
    /// the result with a compare-and-set.
    pub fn apply_update(&self, update: &JobUpdate, at: DateTime<Utc>) -> Result<Job, UpdateError> {
        if self.status.is_terminal() {
            return Err(TransitionError { current: self.status, requested: update.status }.into());
        }
        if let Some(next) = update.status {
            if !self.status.can_transition_to(next) {
                return Err(TransitionError { current: self.status, requested: Some(next) }.into());
            }
        }
        let mut job = self.clone();
        if let Some(patch) = &update.metadata {
            merge_patch(&mut job.metadata, patch);
            check_metadata_size(&job.metadata, update.max_metadata_bytes)?;
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

    /// When a running job is due to expire: past its timeout, or when its lease lapses,
    /// whichever comes first.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        let timeout = match (self.status, self.started_at, self.timeout_seconds) {
            (JobStatus::Running, Some(started), Some(secs)) => {
                chrono::TimeDelta::try_seconds(secs).and_then(|d| started.checked_add_signed(d))
            }
            _ => None,
        };
        let lease = self.lease_expires_at.filter(|_| self.status == JobStatus::Running);
        match (timeout, lease) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records the side effects of entering `next`.
    fn enter(&mut self, next: JobStatus, at: DateTime<Utc>) {
        if next == JobStatus::Running {
            self.started_at = Some(at);
        }
        if next != JobStatus::Running {
            self.lease_expires_at = None;
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

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
