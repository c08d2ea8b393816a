//! The examples of the document: request bodies a client (or Swagger UI's "Try it out")
//! can send as they are, and one realistic error body per error response.

use serde_json::{json, Value};

/// An error body.
fn error(kind: &str, message: &str, details: Value) -> Value {
    json!({"error": {"type": kind, "message": message, "details": details}})
}

/// A shared error response of `components/responses`: its name, status, description,
/// the headers it carries and its example.
pub struct SharedError {
    /// The component's name.
    pub name: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What it means.
    pub description: &'static str,
    /// Names of `components/headers` it carries (besides `X-Request-Id`).
    pub headers: &'static [&'static str],
    /// An error body.
    pub example: fn() -> Value,
}

/// The error responses every operation that can answer them refers to.
pub const SHARED_ERRORS: [SharedError; 11] = [
    SharedError {
        name: "InvalidCursor",
        status: 400,
        description: "`before` or `after` is not one of your jobs, or `before` is not newer \
than `after` (`invalid_cursor`)",
        headers: &[],
        example: || {
            error(
                "invalid_cursor",
                "after: job-0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b is not one of your jobs",
                Value::Null,
            )
        },
    },
    SharedError {
        name: "Unauthorized",
        status: 401,
        description: "Missing, malformed, expired or badly signed token (`unauthorized`)",
        headers: &["WWW-Authenticate"],
        example: || error("unauthorized", "Invalid token: expired", Value::Null),
    },
    SharedError {
        name: "Forbidden",
        status: 403,
        description: "The token lacks the scope the operation needs, or names another user in \
`user_id` without `jobs:admin` (`forbidden`)",
        headers: &[],
        example: || error("forbidden", "This token lacks the jobs:write scope", Value::Null),
    },
    SharedError {
        name: "JobNotFound",
        status: 404,
        description: "No such job, or not one you can see (`job_not_found`)",
        headers: &[],
        example: || error("job_not_found", "Job not found", Value::Null),
    },
    SharedError {
        name: "PreconditionFailed",
        status: 412,
        description: "`If-Match` does not name the job's current ETag: nothing changed \
(`precondition_failed`)",
        headers: &[],
        example: || {
            error(
                "precondition_failed",
                "the job changed: it no longer matches If-Match",
                Value::Null,
            )
        },
    },
    SharedError {
        name: "PayloadTooLarge",
        status: 413,
        description: "The body is larger than the server accepts (`payload_too_large`)",
        headers: &[],
        example: || {
            error("payload_too_large", "Request body is larger than 1048576 bytes", Value::Null)
        },
    },
    SharedError {
        name: "UnsupportedMediaType",
        status: 415,
        description: "A non-empty body that is not JSON (`unsupported_media_type`)",
        headers: &[],
        example: || {
            error(
                "unsupported_media_type",
                "Request body must be JSON (Content-Type: application/json)",
                Value::Null,
            )
        },
    },
    SharedError {
        name: "ValidationFailed",
        status: 422,
        description: "A body field, parameter, header or job id is invalid \
(`validation_error`); `details.field` names it when it is known",
        headers: &[],
        example: || {
            error(
                "validation_error",
                "timeout_seconds: must be between 1 and 2147483647",
                json!({"field": "timeout_seconds"}),
            )
        },
    },
    SharedError {
        name: "RateLimited",
        status: 429,
        description: "Too many requests from this user, or (`GET /api/events`) too many open \
change streams (`rate_limited`): retry after `Retry-After` seconds",
        headers: &["Retry-After"],
        example: || {
            error(
                "rate_limited",
                "Too many requests: retry in 2 s",
                json!({"retry_after_seconds": 2}),
            )
        },
    },
    SharedError {
        name: "InternalError",
        status: 500,
        description: "Unexpected server error (`internal_error`); the cause is logged, never \
returned",
        headers: &[],
        example: || error("internal_error", "Internal server error", Value::Null),
    },
    SharedError {
        name: "Unavailable",
        status: 503,
        description: "The database is unavailable (`unavailable`): retry after `Retry-After` \
seconds. A write answered 503 may have been applied",
        headers: &["Retry-After"],
        example: || error("unavailable", "Database unavailable", Value::Null),
    },
];

/// The 409 example of an operation, by its operation id.
pub fn conflict(operation_id: &str) -> Option<Value> {
    Some(match operation_id {
        "create_job" => error(
            "conflict",
            "this Idempotency-Key was already used with a different request",
            Value::Null,
        ),
        "update_job" => error(
            "invalid_job_status_transition",
            "Cannot transition from 'created' to 'running'",
            json!({"current_status": "created", "requested_status": "running"}),
        ),
        "cancel_job" => error(
            "invalid_job_status_transition",
            "Cannot transition from 'completed' to 'cancelled'",
            json!({"current_status": "completed", "requested_status": "cancelled"}),
        ),
        "delete_job" => error(
            "conflict",
            "job is still running: cancel it before deleting it",
            json!({"current_status": "running"}),
        ),
        "heartbeat" => error(
            "conflict",
            "job is claimed by another worker ('worker-2')",
            json!({"claimed_by": "worker-2"}),
        ),
        _ => return None,
    })
}

/// The request body example of an operation, by its operation id: something a client (or
/// Swagger UI's "Try it out") can send as it is.
pub fn request(operation_id: &str) -> Option<Value> {
    Some(match operation_id {
        // No callback URL: the server would look its host up, and then call it.
        "create_job" => json!({"job_type": "job", "agent_id": "agent-1",
            "metadata": {"progress": 0}, "timeout_seconds": 3600}),
        // A new job is `created`; this submits it.
        "update_job" => json!({"status": "pending"}),
        "claim_job" => json!({"job_type": "job", "agent_id": "agent-1", "lease_seconds": 120}),
        "heartbeat" => json!({"lease_seconds": 120}),
        _ => return None,
    })
}
