//! Request and response bodies, as documented in the OpenAPI document.

use chrono::{DateTime, Utc};
use jobs_domain::{Job, JobStatus, JobType, Metadata};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, ToSchema};

/// The OpenAPI schema of [`JobStatus`] (named `JobStatus`), built from the domain's own
/// list of statuses: the wire format is the domain type's serde form.
pub struct JobStatusDto;

impl utoipa::PartialSchema for JobStatusDto {
    fn schema() -> RefOr<Schema> {
        wire_enum("A job's status.", JobStatus::ALL.map(JobStatus::as_str))
    }
}

impl ToSchema for JobStatusDto {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("JobStatus")
    }
}

/// The OpenAPI schema of [`JobType`] (named `JobType`), from the domain's list of types.
pub struct JobTypeDto;

impl utoipa::PartialSchema for JobTypeDto {
    fn schema() -> RefOr<Schema> {
        wire_enum("What kind of work a job stands for.", JobType::ALL.map(JobType::as_str))
    }
}

impl ToSchema for JobTypeDto {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("JobType")
    }
}

fn wire_enum<const N: usize>(description: &str, names: [&str; N]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names))
        .into()
}

/// Timestamps always carry six fractional digits and a `Z`
/// (`2026-11-28T20:49:56.504500Z`), so clients may parse them at a fixed width.
mod rfc3339_micros {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&jobs_domain::timestamp::rfc3339_micros(*at))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            at: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, s),
                None => s.serialize_none(),
            }
        }
    }
}

/// The pattern of a job id (the same as the `pattern` attributes below, which take only
/// literals).
pub const JOB_ID_PATTERN: &str =
    "^job-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// A job.
#[derive(Serialize, ToSchema, Debug)]
#[schema(as = Job)]
pub struct JobView {
    /// `job-` + lowercase UUID.
    #[schema(example = "job-0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    /// Lifecycle status.
    #[schema(value_type = JobStatusDto)]
    pub status: JobStatus,
    /// When the job was created (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339_micros::serialize")]
    pub created_at: DateTime<Utc>,
    /// When the job last changed (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339_micros::serialize")]
    pub updated_at: DateTime<Utc>,
    /// When the job entered a terminal status.
    #[serde(serialize_with = "rfc3339_micros::option::serialize")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Free-form metadata; `progress` (0..1) is conventional.
    #[schema(value_type = crate::openapi::MetadataDto)]
    pub metadata: Metadata,
    /// Kind of work.
    #[schema(value_type = JobTypeDto)]
    pub job_type: JobType,
    /// Whether the job runs in the background.
    pub background: bool,
    /// Associated agent.
    pub agent_id: Option<String>,
    /// Associated data source (folder).
    pub source_id: Option<String>,
    /// Owner.
    pub user_id: String,
    /// Project, from `X-Project-Id` at creation.
    pub project_id: Option<String>,
    /// Completion webhook target.
    pub callback_url: Option<String>,
    /// When the last webhook delivery was attempted.
    #[serde(serialize_with = "rfc3339_micros::option::serialize")]
    pub callback_sent_at: Option<DateTime<Utc>>,
    /// HTTP status of the last delivery attempt.
    pub callback_status_code: Option<i32>,
    /// Error of the last delivery attempt.
    pub callback_error: Option<String>,
    /// Time to first token, in nanoseconds.
    #[schema(minimum = 0)]
    pub ttft_ns: Option<i64>,
    /// Total duration, in nanoseconds.
    #[schema(minimum = 0)]
    pub total_duration_ns: Option<i64>,
    /// Longest time allowed in `running`, in seconds.
    #[schema(minimum = 1)]
    pub timeout_seconds: Option<i64>,
    /// The worker (token `sub`) that claimed the job through `POST /api/jobs/claim`.
    pub claimed_by: Option<String>,
    /// While a claimed job runs: when its lease lapses unless the worker renews it.
    #[serde(serialize_with = "rfc3339_micros::option::serialize")]
    pub lease_expires_at: Option<DateTime<Utc>>,
}

impl From<Job> for JobView {
    fn from(job: Job) -> JobView {
        JobView {
            id: job.id.to_string(),
            status: job.status,
            created_at: job.created_at,
            updated_at: job.updated_at,
            completed_at: job.completed_at,
            metadata: job.metadata,
            job_type: job.job_type,
            background: job.background,
            agent_id: job.agent_id,
            source_id: job.source_id,
            user_id: job.owner.user_id,
            project_id: job.owner.project_id,
            callback_url: job.callback_url,
            callback_sent_at: job.callback_sent_at,
            callback_status_code: job.callback_status_code,
            callback_error: job.callback_error,
            ttft_ns: job.ttft_ns,
            total_duration_ns: job.total_duration_ns,
            timeout_seconds: job.timeout_seconds,
            claimed_by: job.claimed_by,
            lease_expires_at: job.lease_expires_at,
        }
    }
}

/// A new job. Every field is optional; an empty body means `{}`. Unknown fields are refused.
#[derive(Deserialize, ToSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
#[schema(as = JobCreate)]
pub struct CreateJobRequest {
    /// Kind of work (default `job`).
    #[schema(value_type = Option<JobTypeDto>)]
    pub job_type: Option<JobType>,
    /// Initial metadata (a JSON object; null means `{}`).
    #[schema(value_type = Option<crate::openapi::MetadataDto>)]
    pub metadata: Option<Metadata>,
    /// Background flag (default false).
    pub background: Option<bool>,
    /// Associated agent.
    pub agent_id: Option<String>,
    /// Associated data source (folder).
    pub source_id: Option<String>,
    /// Absolute http(s) URL to POST to when the job finishes. Hosts that are or resolve to
    /// loopback, private, link-local or unspecified addresses are refused (422) unless the
    /// server allows private targets. The pattern describes the host-name form; IP-literal
    /// hosts are accepted too.
    pub callback_url: Option<String>,
    /// Longest time allowed in `running`, in seconds.
    #[serde(default, deserialize_with = "nullable_integer")]
    pub timeout_seconds: Option<i64>,
    /// `pending` creates and submits the job in one request; any other status is refused.
    pub status: Option<crate::workers::SubmitStatus>,
}

/// A worker's update: at least one field. Unknown fields, and `null` values, are refused.
#[derive(Deserialize, ToSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
#[schema(as = JobUpdate)]
pub struct UpdateJobRequest {
    /// The next status, checked against the lifecycle.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<JobStatusDto>, nullable = false)]
    pub status: Option<JobStatus>,
    /// A JSON merge patch (RFC 7396) applied to the job's metadata.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = crate::openapi::MetadataDto, nullable = false)]
    pub metadata: Option<Metadata>,
    /// Time to first token, in nanoseconds.
    #[serde(default, deserialize_with = "present_integer")]
    #[schema(minimum = 0, nullable = false)]
    pub ttft_ns: Option<i64>,
    /// Total duration, in nanoseconds.
    #[serde(default, deserialize_with = "present_integer")]
    #[schema(minimum = 0, nullable = false)]
    pub total_duration_ns: Option<i64>,
}

/// An integer as JSON Schema counts them: `747` or `747.0`, never `747.5`, and within i64.
fn integer<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_i64() {
        return Ok(n);
    }
    // 2^63 as f64; anything at or beyond it does not fit.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) => Ok(f as i64),
        _ => Err(D::Error::custom(format!("expected an integer within 64 bits, got {number}"))),
    }
}

/// [`integer`], optional and nullable.
pub(crate) fn nullable_integer<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "integer")] i64);
    Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|w| w.0))
}

/// [`integer`], optional but not `null`.
fn present_integer<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    integer(deserializer).map(Some)
}

/// A field that may be left out but, when present, must not be `null`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The order of a list.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderDto {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

/// The field lists are ordered by.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
pub enum OrderByDto {
    /// Creation time (then id).
    #[serde(rename = "created_at")]
    CreatedAt,
}

/// List parameters (documentation only: the handler parses the query string itself, so
/// that repeated and comma-separated `status` values both work).
///
/// `source_id` is also accepted, as a deprecated alias of `folder_id` (the two given with
/// different values are 422); it is left out here so that generated clients use
/// `folder_id`.
#[derive(Deserialize, IntoParams, Debug)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// Only these statuses: repeat the parameter, or separate values with commas.
    #[param(style = Form, explode = true, value_type = Option<Vec<JobStatusDto>>)]
    pub status: Option<Vec<JobStatus>>,
    /// Only active jobs (`created`, `pending`, `running`).
    pub active: Option<bool>,
    /// Only this job type.
    #[param(value_type = Option<JobTypeDto>)]
    pub job_type: Option<JobType>,
    /// Only jobs of this source/folder (`source_id` is a deprecated alias).
    pub folder_id: Option<String>,
    /// Only jobs of this agent.
    pub agent_id: Option<String>,
    /// Job id cursor: only jobs older than it. A cursor that is not one of your jobs, or
    /// `before` not newer than `after`, is 400 `invalid_cursor`.
    #[param(pattern = "^job-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub before: Option<String>,
    /// Job id cursor: only jobs newer than it.
    #[param(pattern = "^job-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100; 50 on `/active`).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `asc` oldest first, `desc` newest first (default `desc`; `asc` on `/active`).
    pub order: Option<OrderDto>,
    /// The only accepted value is `created_at`.
    pub order_by: Option<OrderByDto>,
    /// Deprecated: overrides `order` when given (`true` = `asc`).
    pub ascending: Option<bool>,
}

/// The `job_id` path parameter.
#[derive(Deserialize, IntoParams, Debug)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct JobIdPath {
    /// The job's id: `job-` and a lowercase UUID (anything else is 422).
    #[param(pattern = "^job-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub job_id: String,
}

/// The `user_id` header.
#[derive(Deserialize, IntoParams, Debug)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct ActingUser {
    /// Act for this user: a no-op when it is the token's `sub`, otherwise it needs the
    /// `jobs:admin` scope (403 without it). `user-id` is accepted as an alias, for proxies
    /// that drop header names with underscores; both with different values is 422.
    #[param(rename = "user_id")]
    pub user_id: Option<String>,
}

/// The `X-Project-Id` header.
#[derive(Deserialize, IntoParams, Debug)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct ProjectHeader {
    /// The project: stored on jobs created with it; filters lists.
    #[param(rename = "X-Project-Id")]
    pub x_project_id: Option<String>,
}

/// The `Idempotency-Key` header.
#[derive(Deserialize, IntoParams, Debug)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKey {
    /// Makes retries safe: the same key from the same user within 24 hours returns the job
    /// created the first time (200); with a different body it is 409.
    #[param(rename = "Idempotency-Key")]
    pub idempotency_key: Option<String>,
}

/// Health answer.
#[derive(Serialize, ToSchema, Debug)]
pub struct Health {
    /// `ok`, or `unavailable`.
    pub status: String,
}
