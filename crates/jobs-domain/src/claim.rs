//! Claims and leases: how a worker takes a `pending` job and keeps it while it runs.
//!
//! A claim moves a job from `pending` to `running` and records the worker and a lease. The
//! worker renews the lease (a heartbeat, or any update it makes); a lease that lapses
//! expires the job like a timeout does ([`Job::expires_at`] is the earlier of the two).

use chrono::{DateTime, TimeDelta, Utc};

use crate::job::{Job, TransitionError};
use crate::status::JobStatus;
use crate::ValidationError;

/// The lease length when a claim names none, in seconds.
pub const DEFAULT_LEASE_SECONDS: i64 = 60;
/// The longest lease a worker may ask for, in seconds.
pub const MAX_LEASE_SECONDS: i64 = 3600;

/// Why a worker may not renew a lease or update a claimed job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The job is not running (any more): the lifecycle refuses.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Another worker holds the job.
    #[error("job is claimed by another worker ('{claimed_by}')")]
    ClaimedByOther {
        /// The worker that holds it.
        claimed_by: String,
    },
}

/// Checks a requested lease length: 1 to [`MAX_LEASE_SECONDS`].
pub fn check_lease_seconds(seconds: Option<i64>) -> Result<(), ValidationError> {
    match seconds {
        Some(s) if !(1..=MAX_LEASE_SECONDS).contains(&s) => Err(ValidationError::new(
            "lease_seconds",
            format!("must be between 1 and {MAX_LEASE_SECONDS}"),
        )),
        _ => Ok(()),
    }
}

fn lease_end(at: DateTime<Utc>, seconds: i64) -> Option<DateTime<Utc>> {
    at.checked_add_signed(TimeDelta::try_seconds(seconds)?)
}

impl Job {
    /// The job claimed by `worker`: `pending` becomes `running` with a lease of
    /// `lease_seconds` (default [`DEFAULT_LEASE_SECONDS`]).
    pub fn claim(
        &self,
        worker: &str,
        lease_seconds: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<Job, TransitionError> {
        if self.status != JobStatus::Pending {
            return Err(TransitionError {
                current: self.status,
                requested: Some(JobStatus::Running),
            });
        }
        let seconds = lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
        let mut job = self.clone();
        job.status = JobStatus::Running;
        job.started_at = Some(at);
        job.updated_at = at;
        job.claimed_by = Some(worker.to_owned());
        job.lease_seconds = Some(seconds);
        job.lease_expires_at = lease_end(at, seconds);
        Ok(job)
    }

    /// Checks that `worker` may change this job: a running claimed job belongs to its
    /// claimer alone.
    pub fn check_claimer(&self, worker: &str) -> Result<(), LeaseError> {
        match &self.claimed_by {
            Some(holder) if self.status == JobStatus::Running && holder != worker => {
                Err(LeaseError::ClaimedByOther { claimed_by: holder.clone() })
            }
            _ => Ok(()),
        }
    }

    /// The job with its lease renewed by `worker` (a heartbeat): the lease ends
    /// `lease_seconds` (or the length of the claim) from `at`. Only the claimer of a running
    /// job may renew it.
    pub fn renew_lease(
        &self,
        worker: &str,
        lease_seconds: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<Job, LeaseError> {
        if self.status != JobStatus::Running {
            let requested = (!self.status.is_terminal()).then_some(JobStatus::Running);
            return Err(TransitionError { current: self.status, requested }.into());
        }
        self.check_claimer(worker)?;
        let mut job = self.clone();
        if let Some(seconds) = lease_seconds {
            job.lease_seconds = Some(seconds);
        }
        let seconds = job.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
        job.lease_expires_at = lease_end(at, seconds);
        job.updated_at = at;
        Ok(job)
    }

    /// After an update by `worker`: when it holds the running job's lease, the lease is
    /// renewed from `at`.
    pub fn renewed_by(mut self, worker: &str, at: DateTime<Utc>) -> Job {
        if self.status == JobStatus::Running && self.claimed_by.as_deref() == Some(worker) {
            let seconds = self.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
            self.lease_expires_at = lease_end(at, seconds);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{JobId, NewJob, Owner};

    fn pending() -> Job {
        let mut job = Job::create(
            JobId::generate(),
            Owner::new("o", "u", None),
            NewJob::default(),
            crate::now(),
        );
        job.status = JobStatus::Pending;
        job
    }

    #[test]
    fn a_claim_starts_the_job_with_a_lease_that_expires_it_when_it_lapses() {
        let at = crate::now();
        let job = pending().claim("w1", Some(10), at).unwrap();
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.claimed_by.as_deref(), Some("w1"));
        assert_eq!(job.expires_at(), Some(at + TimeDelta::seconds(10)));
        assert!(job.expire(at + TimeDelta::seconds(10)).is_some());
        assert!(job.claim("w2", None, at).is_err());
    }

    #[test]
    fn only_the_claimer_renews_a_running_lease() {
        let at = crate::now();
        let job = pending().claim("w1", Some(10), at).unwrap();
        let later = at + TimeDelta::seconds(5);
        let renewed = job.renew_lease("w1", None, later).unwrap();
        assert_eq!(renewed.lease_expires_at, Some(later + TimeDelta::seconds(10)));
        assert!(matches!(
            job.renew_lease("w2", None, later),
            Err(LeaseError::ClaimedByOther { .. })
        ));
        assert!(matches!(pending().renew_lease("w1", None, at), Err(LeaseError::Transition(_))));
    }
}
