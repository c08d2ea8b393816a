//! Schemas written by hand because no Rust type has their wire form: the open `Metadata`
//! object, the error `type` codes and the error `details`.

use std::borrow::Cow;

use serde_json::json;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::dto::JobStatusDto;

/// Every `type` the server writes into an error body (`ApiError`'s kinds, and the kinds the
/// error fallback gives to actix's own errors).
pub const ERROR_TYPES: [&str; 16] = [
    "bad_request",
    "invalid_cursor",
    "unauthorized",
    "forbidden",
    "job_not_found",
    "not_found",
    "method_not_allowed",
    "invalid_job_status_transition",
    "conflict",
    "precondition_failed",
    "payload_too_large",
    "unsupported_media_type",
    "validation_error",
    "rate_limited",
    "internal_error",
    "unavailable",
];

/// The schema `Metadata`: a JSON object of any members.
pub struct MetadataDto;

impl PartialSchema for MetadataDto {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Free-form JSON object, any members. `progress` (a number from 0 to 1) is a \
convention the server does not enforce. Its serialized size is capped by the server \
(`JOBS_MAX_METADATA_BYTES`, 64 KiB by default).",
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .examples([json!({"progress": 0.5, "dataset": "orders"})])
            .into()
    }
}

impl ToSchema for MetadataDto {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Metadata")
    }
}

/// The schema `ErrorType`: the error codes.
pub struct ErrorTypeDto;

impl PartialSchema for ErrorTypeDto {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A stable, machine-readable error code: program against it. \
`job_not_found` is an unknown job (or one you cannot see), `not_found` an unknown route; \
`bad_request` is a malformed request the router refuses before the API sees it.",
            ))
            .enum_values(Some(ERROR_TYPES))
            .into()
    }
}

impl ToSchema for ErrorTypeDto {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorType")
    }
}

fn status_ref(description: &str) -> RefOr<Schema> {
    let mut status = Ref::from_schema_name(JobStatusDto::name());
    status.description = description.to_owned();
    RefOr::Ref(status)
}

fn described(schema_type: Type, description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(schema_type).description(Some(description))
}

/// The schema `ErrorDetails`: an open object whose known members are listed.
pub struct ErrorDetailsDto;

impl PartialSchema for ErrorDetailsDto {
    fn schema() -> RefOr<Schema> {
        let requested = OneOfBuilder::new()
            .item(status_ref("The status asked for."))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "409 `invalid_job_status_transition`: the status asked for; null when the \
request changed no status (any update of a finished job).",
            ));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Facts a client can act on. Which members appear depends on the error; \
more may be added, so ignore the ones you do not know.",
            ))
            .property(
                "field",
                described(
                    Type::String,
                    "422 `validation_error`: the body field, query parameter, header or path \
parameter that is wrong (`metadata`, `limit`, `job_id`, `user-id`, ...).",
                )
                .examples(["timeout_seconds"]),
            )
            .property(
                "current_status",
                status_ref(
                    "409 `invalid_job_status_transition` and `conflict`: the job's status now.",
                ),
            )
            .property("requested_status", requested)
            .property(
                "claimed_by",
                described(
                    Type::String,
                    "409 `conflict`: the worker (token `sub`) that holds the job's claim.",
                )
                .examples(["worker-2"]),
            )
            .property(
                "retry_after_seconds",
                described(Type::Integer, "429 `rate_limited`: wait this long, as `Retry-After`.")
                    .minimum(Some(1)),
            )
            .property(
                "max_streams_per_user",
                described(
                    Type::Integer,
                    "429 on `GET /api/events`: how many change streams a user may hold open.",
                )
                .minimum(Some(1)),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .into()
    }
}

impl ToSchema for ErrorDetailsDto {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorDetails")
    }
}
