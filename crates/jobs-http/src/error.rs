//! The one error body of the contract, and the mapping of every failure into it.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use jobs_domain::{QueryError, TransitionError, ValidationError};
use std::sync::Arc;

use jobs_store::{Cause, StoreError};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// The error body every failure answers with.
#[derive(Serialize, ToSchema, Debug)]
#[schema(as = Error)]
#[schema(example = json!({"error": {"type": "invalid_job_status_transition",
    "message": "Cannot transition from 'completed' to 'running'",
    "details": {"current_status": "completed", "requested_status": "running"}}}))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, ToSchema, Debug)]
pub struct ErrorDetail {
    /// A stable, machine-readable code.
    #[serde(rename = "type")]
    #[schema(value_type = crate::openapi::ErrorTypeDto)]
    pub kind: String,
    /// A sentence for people.
    pub message: String,
    /// Facts a client can act on (for example `current_status`), or null.
    #[schema(value_type = Option<crate::openapi::ErrorDetailsDto>, required = true)]
    pub details: Option<Value>,
}

/// An error on its way to becoming a response.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    details: Option<Value>,
    /// Seconds for `Retry-After` (429).
    retry_after: Option<u64>,
    /// What went wrong underneath (5xx): logged once, on the request's log line, never
    /// returned.
    cause: Option<ErrorCause>,
}

/// The cause of a failed request, kept as a value: `error_response` puts it into the
/// response's extensions, and the request middleware logs it with its source chain.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for ErrorCause {
    /// The cause and each of its sources, joined by `: `.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(next) = source {
            write!(f, ": {next}")?;
            source = next.source();
        }
        Ok(())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.kind, self.message)
    }
}

impl ApiError {
    /// An error with a status, a type and a message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            details: None,
            retry_after: None,
            cause: None,
        }
    }

    /// Keeps what went wrong underneath, for the request's log line.
    pub fn with_cause(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(ErrorCause(Arc::from(cause.into())));
        self
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 422 `validation_error`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_error", message)
    }

    /// 404 `not_found`, for unknown routes.
    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such route")
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not allowed on this path",
        )
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Request body is larger than {limit} bytes"),
        )
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Request body must be JSON (Content-Type: application/json)",
        )
    }

    /// 429 `rate_limited`, with `Retry-After` (whole seconds, at least 1).
    pub fn rate_limited(retry_after_seconds: u64) -> Self {
        let seconds = retry_after_seconds.max(1);
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many requests: retry in {seconds} s"),
        )
        .with_details(json!({"retry_after_seconds": seconds}));
        error.retry_after = Some(seconds);
        error
    }

    /// 500 `internal_error`; the cause is logged with the request, never returned.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal server error")
            .with_cause(cause)
    }

    /// The error body as JSON.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(cause) = &self.cause {
            response.extensions_mut().insert(cause.clone());
        }
        response.json(self.body())
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        ApiError::validation(err.to_string()).with_details(json!({"field": err.field}))
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        match err {
            QueryError::Invalid(v) => v.into(),
            QueryError::InvalidCursor(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", message)
            }
        }
    }
}

impl From<TransitionError> for ApiError {
    fn from(err: TransitionError) -> Self {
        ApiError::new(StatusCode::CONFLICT, "invalid_job_status_transition", err.to_string())
            .with_details(json!({"current_status": err.current, "requested_status": err.requested}))
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "job_not_found", "Job not found")
            }
            StoreError::Transition(t) => t.into(),
            StoreError::Invalid(v) => v.into(),
            StoreError::StillActive { current } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", err.to_string())
                    .with_details(json!({"current_status": current}))
            }
            StoreError::PreconditionFailed => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                err.to_string(),
            ),
            StoreError::ClaimedByOther { ref claimed_by } => {
                let details = json!({"claimed_by": claimed_by});
                ApiError::new(StatusCode::CONFLICT, "conflict", err.to_string())
                    .with_details(details)
            }
            StoreError::IdempotencyMismatch => {
                ApiError::new(StatusCode::CONFLICT, "conflict", err.to_string())
            }
            StoreError::InvalidCursor(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", message)
            }
            StoreError::Unavailable(cause) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Database unavailable",
            )
            .with_cause(cause),
            StoreError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
