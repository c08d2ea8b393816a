//! The store's one error type.

use jobs_domain::{JobStatus, LeaseError, TransitionError, UpdateError, ValidationError};

/// The underlying failure behind [`StoreError::Unavailable`] and [`StoreError::Internal`],
/// kept as a value (its own `source()` chain included) for whoever logs it.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why a store operation did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No visible job has that id.
    #[error("job not found")]
    NotFound,
    /// The lifecycle refuses the change.
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
    /// The job is not in the version the request was conditional on (`If-Match`).
    #[error("the job changed: it no longer matches If-Match")]
    PreconditionFailed,
    /// Another worker holds the job's claim.
    #[error("job is claimed by another worker ('{claimed_by}')")]
    ClaimedByOther {
        /// The worker that holds it.
        claimed_by: String,
    },
    /// The idempotency key was used before with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyMismatch,
    /// A list cursor is not one of the caller's jobs, or the range is empty.
    #[error("{0}")]
    InvalidCursor(String),
    /// The database cannot take the request now, and a retry later may succeed: it cannot
    /// be reached (no connection within the checkout timeout, or the connection was lost),
    /// its storage is full or failing, it is locked past the busy timeout, or it is shutting
    /// down.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Anything else: a bug or a broken database. Logged, never shown to callers.
    #[error("{0}")]
    Internal(#[source] Cause),
}

impl From<diesel::result::Error> for StoreError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => StoreError::NotFound,
            // A failed COMMIT that could not be rolled back either: the commit's cause counts.
            Error::RollbackErrorOnCommit { commit_error, .. } => StoreError::from(*commit_error),
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand
                | DatabaseErrorKind::ReadOnlyTransaction,
                _,
            ) => StoreError::Unavailable(Box::new(err)),
            Error::DatabaseError(_, ref info) if is_retryable(info.message()) => {
                StoreError::Unavailable(Box::new(err))
            }
            other => StoreError::Internal(Box::new(other)),
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

impl From<LeaseError> for StoreError {
    fn from(err: LeaseError) -> Self {
        match err {
            LeaseError::Transition(t) => StoreError::Transition(t),
            LeaseError::ClaimedByOther { claimed_by } => StoreError::ClaimedByOther { claimed_by },
        }
    }
}

/// Messages of failures that are the database's state, not the request's: a retry later can
/// succeed. diesel reports neither SQLite's result code nor PostgreSQL's SQLSTATE, so these
/// are the servers' own (stable) message texts.
const RETRYABLE: &[&str] = &[
    // SQLite: another writer holds the lock past the busy timeout (SQLITE_BUSY).
    "database is locked",
    "database is busy",
    // SQLite: SQLITE_FULL, SQLITE_IOERR, SQLITE_CANTOPEN, SQLITE_READONLY.
    "database or disk is full",
    "disk i/o error",
    "unable to open database file",
    "attempt to write a readonly database",
    // PostgreSQL class 53, insufficient resources: 53100 disk_full ("could not extend file
    // …: No space left on device", "could not write to file …"), 53200, 53300.
    "no space left on device",
    "could not extend file",
    "could not write to file",
    "out of memory",
    "too many clients",
    "remaining connection slots are reserved",
    // PostgreSQL class 57P, operator intervention: 57P01 admin_shutdown, 57P02
    // crash_shutdown, 57P03 cannot_connect_now; and 57014, a statement or lock timeout.
    "terminating connection",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "canceling statement due to statement timeout",
    "canceling statement due to lock timeout",
    // PostgreSQL class 08, connection exception, as libpq words it.
    "server closed the connection unexpectedly",
    "could not receive data from server",
    "could not send data to server",
    "no connection to the server",
    "connection to server",
    "ssl connection has been closed unexpectedly",
];

/// Whether a database error message names a failure that a retry later can get past.
pub(crate) fn is_retryable(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    RETRYABLE.iter().any(|known| message.contains(known))
}

impl From<r2d2::Error> for StoreError {
    fn from(err: r2d2::Error) -> Self {
        StoreError::Unavailable(Box::new(err))
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error};

    fn database_error(kind: DatabaseErrorKind, message: &str) -> StoreError {
        StoreError::from(Error::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn storage_and_connection_failures_are_unavailable_and_nothing_else_is() {
        let unknown = DatabaseErrorKind::Unknown;
        for message in [
            "database or disk is full",
            "disk I/O error",
            "database is locked",
            "could not extend file \"base/16384/16385\": No space left on device",
            "terminating connection due to administrator command",
            "the database system is shutting down",
            "server closed the connection unexpectedly",
            "canceling statement due to statement timeout",
        ] {
            let err = database_error(unknown, message);
            assert!(matches!(err, StoreError::Unavailable(_)), "{message}: {err:?}");
        }
        for kind in [
            DatabaseErrorKind::ClosedConnection,
            DatabaseErrorKind::UnableToSendCommand,
            DatabaseErrorKind::ReadOnlyTransaction,
        ] {
            let err = database_error(kind, "whatever the text");
            assert!(matches!(err, StoreError::Unavailable(_)), "{kind:?}: {err:?}");
        }
        let commit = Error::RollbackErrorOnCommit {
            rollback_error: Box::new(Error::BrokenTransactionManager),
            commit_error: Box::new(Error::DatabaseError(
                unknown,
                Box::new("database or disk is full".to_owned()),
            )),
        };
        assert!(matches!(StoreError::from(commit), StoreError::Unavailable(_)));
        // The request's own faults and bugs stay what they were.
        for message in ["no such table: jobs", "syntax error", "value too long for type"] {
            let err = database_error(DatabaseErrorKind::Unknown, message);
            assert!(matches!(err, StoreError::Internal(_)), "{message}: {err:?}");
        }
    }
}
