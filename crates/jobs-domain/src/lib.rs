//! The Job resource of the Jobs API and its rules, with no web, database or I/O dependency.
//!
//! Embed this crate to validate and drive jobs the way the Jobs API does:
//!
//! ```
//! use jobs_domain::{Job, JobId, JobStatus, JobUpdate, NewJob, Owner};
//!
//! let job = Job::create(JobId::generate(), Owner::new("acme", "ann", None), NewJob::default(), jobs_domain::now());
//! let start = JobUpdate::new(Some(JobStatus::Pending), None, None, None).unwrap();
//! let pending = job.apply_update(&start, jobs_domain::now()).unwrap();
//! assert_eq!(pending.status, JobStatus::Pending);
//! assert!(pending.apply_update(&start, jobs_domain::now()).is_err()); // pending -> pending
//! ```

pub mod callback;
pub mod claim;
pub mod clock;
pub mod event;
pub mod fields;
pub mod id;
pub mod job;
pub mod metadata;
pub mod query;
pub mod status;
pub mod tenancy;
pub mod timestamp;

pub use callback::{address, CallbackUrl};
pub use claim::{check_lease_seconds, LeaseError, DEFAULT_LEASE_SECONDS, MAX_LEASE_SECONDS};
pub use clock::{system_clock, Clock, OffsetClock};
pub use fields::{Label, TimeoutSeconds, MAX_LABEL_CHARS, MAX_TIMEOUT_SECONDS};
pub use id::{InvalidJobId, JobId};
pub use job::{now, Job, JobUpdate, NewJob, TransitionError, UpdateError};
pub use metadata::{
    check_metadata_size, merge_patch, BoundedMetadata, Metadata, DEFAULT_MAX_METADATA_BYTES,
};
pub use query::{Limit, ListDefaults, ListQuery, Order, QueryError};
pub use status::{CancelOutcome, JobStatus, JobType, UnknownJobType, UnknownStatus};
pub use tenancy::{Owner, Visibility};

/// A request value the contract does not accept (a 422 at the API).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The offending field or parameter.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ValidationError {
    /// An error about one field.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError { field: field.into(), message: message.into() }
    }
}
