//! The store's one error type.

use jobs_domain::{JobStatus, TransitionError, UpdateError, ValidationError};

/// Why a store operation did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No visible job has that id.
    #[error("job not found")]
    NotFound,
    /// The lifecycle refuses the change (SPEC §3).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The job after the change would break a rule (its metadata would be too large).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The job is still active, so it cannot be deleted.
    #[error("job is still {current}: cancel it before deleting it")]
    StillActive {
        /// The job's status.
        current: JobStatus,
    },
    /// The idempotency key was used before with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyMismatch,
    /// A list cursor is not one of the caller's jobs, or the range is empty.
    #[error("{0}")]
    InvalidCursor(String),
    /// The database cannot be reached (no connection within the pool timeout).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a broken database. Logged, never shown to callers.
    #[error("{0}")]
    Internal(String),
}

impl From<diesel::result::Error> for StoreError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => StoreError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info)
            | Error::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            Error::DatabaseError(_, ref info) if is_busy(info.message()) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Internal(other.to_string()),
        }
    }
}

impl From<UpdateError> for StoreError {
    fn from(err: UpdateError) -> Self {
        match err {
            UpdateError::Transition(t) => StoreError::Transition(t),
            UpdateError::Invalid(v) => StoreError::Invalid(v),
        }
    }
}

fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database is busy")
}

impl From<r2d2::Error> for StoreError {
    fn from(err: r2d2::Error) -> Self {
        StoreError::Unavailable(err.to_string())
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;
