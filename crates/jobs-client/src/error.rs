//! Errors: the server's error body, typed, and what can go wrong on the way to it.

use std::time::Duration;

use jobs_domain::JobStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `error` object of the one error body every failure of the API answers with:
/// `{"error": {"type", "message", "details"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable, machine-readable kind (`job_not_found`, `invalid_job_status_transition`,
    /// `validation_error`, ...): program against it.
    #[serde(rename = "type")]
    pub kind: String,
    /// A sentence for people.
    pub message: String,
    /// Facts a client can act on (`current_status`, `field`, `claimed_by`, ...), or `None`.
    #[serde(default)]
    pub details: Option<Value>,
}

#[derive(Deserialize)]
struct Envelope {
    error: ErrorBody,
}

/// An answer of the server with an error status and the error body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The HTTP status (404, 409, 422, ...).
    pub status: u16,
    /// The error body.
    pub body: ErrorBody,
    /// The `Retry-After` the server sent (429 and 503), if any.
    pub retry_after: Option<Duration>,
    /// The `x-request-id` of the answer: quote it when reporting a problem.
    pub request_id: Option<String>,
}

impl ApiError {
    /// The error's `type` (`job_not_found`, `conflict`, ...).
    pub fn kind(&self) -> &str {
        &self.body.kind
    }

    /// The server's message.
    pub fn message(&self) -> &str {
        &self.body.message
    }

    /// The `details` object, if any.
    pub fn details(&self) -> Option<&Value> {
        self.body.details.as_ref()
    }

    /// `details.current_status` of a 409: the status the job is in now.
    pub fn current_status(&self) -> Option<JobStatus> {
        self.detail_str("current_status")?.parse().ok()
    }

    /// `details.claimed_by` of a 409 `conflict`: the worker that holds the job.
    pub fn claimed_by(&self) -> Option<&str> {
        self.detail_str("claimed_by")
    }

    /// `details.field` of a 422 `validation_error`: the offending field or parameter.
    pub fn field(&self) -> Option<&str> {
        self.detail_str("field")
    }

    fn detail_str(&self, key: &str) -> Option<&str> {
        self.details()?.get(key)?.as_str()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {} {})", self.body.message, self.status, self.body.kind)
    }
}

/// Everything a call of the client can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused the request, with its error body.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// An error status whose body is not the error body (a proxy's page, for example).
    #[error("HTTP {status}: {body}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The body as text (cut to 512 characters).
        body: String,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the Jobs API: {}", with_causes(.0))]
    Transport(#[source] reqwest::Error),
    /// The server answered with something this client does not understand.
    #[error("unexpected answer from the Jobs API: {0}")]
    Decode(String),
    /// The client was set up with something unusable (a bad URL, token or header).
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The error body, when the server refused the request.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(api) => Some(api),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(api) => Some(api.status),
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error body's `type`, when the server refused the request.
    pub fn kind(&self) -> Option<&str> {
        self.api().map(ApiError::kind)
    }

    /// Whether the job does not exist, or is not visible to the caller (404
    /// `job_not_found`).
    pub fn is_not_found(&self) -> bool {
        self.kind() == Some("job_not_found")
    }

    /// The error of an answer with an error status: the error body when there is one.
    pub(crate) fn from_answer(
        status: u16,
        text: &str,
        retry_after: Option<Duration>,
        request_id: Option<String>,
    ) -> Error {
        match serde_json::from_str::<Envelope>(text) {
            Ok(envelope) => Error::Api(Box::new(ApiError {
                status,
                body: envelope.error,
                retry_after,
                request_id,
            })),
            Err(_) => Error::Http { status, body: text.chars().take(512).collect() },
        }
    }
}

/// An error and its causes, joined by `: ` (reqwest's own message leaves them out).
fn with_causes(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The result of a call of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_error_body_becomes_a_typed_error_and_anything_else_an_http_error() {
        let text = r#"{"error":{"type":"invalid_job_status_transition","message":"Cannot transition from 'completed' to 'running'","details":{"current_status":"completed","requested_status":"running"}}}"#;
        let err = Error::from_answer(409, text, None, Some("r-1".into()));
        let api = err.api().unwrap();
        assert_eq!(api.kind(), "invalid_job_status_transition");
        assert_eq!(api.current_status(), Some(JobStatus::Completed));
        assert_eq!(api.request_id.as_deref(), Some("r-1"));
        assert_eq!(err.status(), Some(409));
        assert!(err.to_string().starts_with("Cannot transition from 'completed' to 'running'"));
        let other = Error::from_answer(502, "<html>bad gateway</html>", None, None);
        assert!(matches!(other, Error::Http { status: 502, .. }));
        assert_eq!(other.kind(), None);
    }
}
