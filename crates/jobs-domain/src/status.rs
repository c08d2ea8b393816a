//! Job statuses, job types and the lifecycle rules of the contract.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its lifecycle.
///
/// ```text
/// created -> pending -> running -> completed | failed | cancelled | expired
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Recorded, not yet handed to a worker.
    Created,
    /// Handed to a worker, waiting to start.
    Pending,
    /// A worker is on it.
    Running,
    /// Finished successfully.
    Completed,
    /// Finished unsuccessfully.
    Failed,
    /// Withdrawn by the user, or stopped by the worker.
    Cancelled,
    /// Ran longer than its `timeout_seconds`.
    Expired,
}

impl JobStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Created,
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Expired,
    ];

    /// The statuses a job can still move out of.
    pub const ACTIVE: [JobStatus; 3] = [JobStatus::Created, JobStatus::Pending, JobStatus::Running];

    /// The statuses that are final.
    pub const TERMINAL: [JobStatus; 4] =
        [JobStatus::Completed, JobStatus::Failed, JobStatus::Cancelled, JobStatus::Expired];

    /// The wire name (`"running"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "created",
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Expired => "expired",
        }
    }

    /// True for `completed`, `failed`, `cancelled` and `expired`.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled | JobStatus::Expired
        )
    }

    /// True for `created`, `pending` and `running`.
    pub const fn is_active(self) -> bool {
        !self.is_terminal()
    }

    /// Whether a worker may move a job from `self` to `next`: exactly the lifecycle table of the contract.
    /// A "move" to the same status is never allowed.
    pub const fn can_transition_to(self, next: JobStatus) -> bool {
        matches!(
            (self, next),
            (JobStatus::Created, JobStatus::Pending)
                | (JobStatus::Pending, JobStatus::Running)
                | (
                    JobStatus::Running,
                    JobStatus::Completed
                        | JobStatus::Failed
                        | JobStatus::Cancelled
                        | JobStatus::Expired
                )
        )
    }

    /// What a user's cancel does to a job in this status.
    pub const fn cancel_outcome(self) -> CancelOutcome {
        match self {
            JobStatus::Created | JobStatus::Pending | JobStatus::Running => CancelOutcome::Cancel,
            JobStatus::Cancelled => CancelOutcome::AlreadyCancelled,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Expired => CancelOutcome::Refused,
        }
    }
}

/// The result of the cancel rule for one status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job moves to `cancelled`.
    Cancel,
    /// The job is cancelled already: nothing changes, and the request succeeds.
    AlreadyCancelled,
    /// The job finished some other way: the cancel is a conflict.
    Refused,
}

/// The text is not a known status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a job status (expected one of created, pending, running, completed, failed, cancelled, expired)")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(crate::id::truncate_for_message(s)))
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of work a job stands for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    /// A plain background job (the default).
    #[default]
    Job,
    /// An agent run.
    Run,
    /// A batch of work.
    Batch,
}

impl JobType {
    /// Every job type.
    pub const ALL: [JobType; 3] = [JobType::Job, JobType::Run, JobType::Batch];

    /// The wire name (`"batch"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            JobType::Job => "job",
            JobType::Run => "run",
            JobType::Batch => "batch",
        }
    }
}

/// The text is not a known job type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a job type (expected one of job, run, batch)")]
pub struct UnknownJobType(pub String);

impl FromStr for JobType {
    type Err = UnknownJobType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownJobType(crate::id::truncate_for_message(s)))
    }
}

impl fmt::Display for JobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The lifecycle table, written out independently of `can_transition_to`.
    const ALLOWED: [(&str, &str); 6] = [
        ("created", "pending"),
        ("pending", "running"),
        ("running", "completed"),
        ("running", "failed"),
        ("running", "cancelled"),
        ("running", "expired"),
    ];

    fn any_status() -> impl Strategy<Value = JobStatus> {
        proptest::sample::select(JobStatus::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn every_pair_of_statuses_follows_the_table(from in any_status(), to in any_status()) {
            let listed = ALLOWED.contains(&(from.as_str(), to.as_str()));
            prop_assert_eq!(from.can_transition_to(to), listed);
        }

        #[test]
        fn nothing_leaves_a_terminal_status(from in any_status(), to in any_status()) {
            if from.is_terminal() {
                prop_assert!(!from.can_transition_to(to));
            }
        }

        #[test]
        fn status_names_round_trip(status in any_status()) {
            prop_assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
            prop_assert_eq!(serde_json::to_value(status).ok(), Some(serde_json::json!(status.as_str())));
        }
    }

    #[test]
    fn all_pairs_are_checked_exhaustively_too() {
        let mut allowed = 0;
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                if from.can_transition_to(to) {
                    allowed += 1;
                }
            }
        }
        assert_eq!(allowed, ALLOWED.len());
    }

    #[test]
    fn cancel_withdraws_active_jobs_and_is_idempotent() {
        assert_eq!(JobStatus::Created.cancel_outcome(), CancelOutcome::Cancel);
        assert_eq!(JobStatus::Pending.cancel_outcome(), CancelOutcome::Cancel);
        assert_eq!(JobStatus::Running.cancel_outcome(), CancelOutcome::Cancel);
        assert_eq!(JobStatus::Cancelled.cancel_outcome(), CancelOutcome::AlreadyCancelled);
        assert_eq!(JobStatus::Completed.cancel_outcome(), CancelOutcome::Refused);
        assert_eq!(JobStatus::Failed.cancel_outcome(), CancelOutcome::Refused);
        assert_eq!(JobStatus::Expired.cancel_outcome(), CancelOutcome::Refused);
    }

    #[test]
    fn unknown_names_are_refused() {
        assert!("RUNNING".parse::<JobStatus>().is_err());
        assert!("".parse::<JobStatus>().is_err());
        assert!("jobs".parse::<JobType>().is_err());
        assert_eq!("batch".parse::<JobType>(), Ok(JobType::Batch));
    }
}
