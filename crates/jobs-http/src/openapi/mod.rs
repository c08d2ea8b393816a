//! OpenAPI pieces the handlers and DTOs share: the error responses every job route can
//! answer, and the field constraints, built from the same constants the checks use; the
//! hand-written schemas (`schemas`), the examples (`examples`) and the last pass over the
//! document (`wiring`).

use std::collections::BTreeMap;

use jobs_domain::callback::{CALLBACK_URL_PATTERN, MAX_CALLBACK_URL_CHARS};
use jobs_domain::fields::{LABEL_PATTERN, MAX_LABEL_CHARS, MAX_TIMEOUT_SECONDS};
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, Modify, ToSchema};

use crate::dto::CreateJobRequest;
use crate::error::ErrorBody;
use crate::headers::HEADER_TEXT_PATTERN;

mod examples;
mod schemas;
mod wiring;

pub use schemas::{ErrorDetailsDto, ErrorTypeDto, MetadataDto, ERROR_TYPES};
pub use wiring::{example_for, Wiring, JOB_ID_CHARS, JOB_ID_EXAMPLE};

/// An error response: the one error body, with a description.
pub fn error_response(description: &str) -> RefOr<Response> {
    let schema = Ref::from_schema_name(ErrorBody::name());
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
        .build()
        .into()
}

fn errors(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter().map(|(status, text)| (status.to_string(), error_response(text))).collect()
}

/// The errors of every authenticated job route: 401, 403, 500, 503 (429 is added to every
/// route by the rate limiter's modifier).
pub struct CommonErrors;

impl IntoResponses for CommonErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[
            (401, "Missing or invalid token"),
            (403, "Missing scope"),
            (500, "Unexpected server error"),
            (503, "Database unavailable"),
        ])
    }
}

/// The errors of a route that reads a JSON body: 413, 415 (with [`CommonErrors`]).
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[(413, "Body too large"), (415, "Body is not JSON")])
    }
}

const NOT_FOUND: (u16, &str) = (404, "No such job (or not yours)");

/// The error of a route on one job that also reads a body: 404 (the body's 422 is the
/// route's own).
pub struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[NOT_FOUND])
    }
}

/// The errors of a route on one job, by its path id: 404, and 422 for a malformed id.
pub struct JobPathErrors;

impl IntoResponses for JobPathErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        errors(&[NOT_FOUND, (422, "Malformed job id")])
    }
}

/// Writes the constraints of the checked fields into the document: `maxLength`, `minLength`,
/// `pattern` and bounds come from the constants the checks use (utoipa's attributes take
/// only literals), so the document and the checks cannot drift apart.
pub struct FieldRules;

type Rule = fn(&mut Object);

fn label(field: &mut Object) {
    field.min_length = Some(1);
    field.max_length = Some(MAX_LABEL_CHARS);
    field.pattern = Some(LABEL_PATTERN.to_owned());
}

fn callback_url(field: &mut Object) {
    field.max_length = Some(MAX_CALLBACK_URL_CHARS);
    field.pattern = Some(CALLBACK_URL_PATTERN.to_owned());
}

fn timeout(field: &mut Object) {
    field.minimum = Some(1.into());
    field.maximum = Some(MAX_TIMEOUT_SECONDS.into());
}

fn header_text(field: &mut Object) {
    field.max_length = Some(MAX_LABEL_CHARS);
    field.pattern = Some(HEADER_TEXT_PATTERN.to_owned());
}

fn apply(schema: Option<&mut RefOr<Schema>>, rule: Rule) {
    if let Some(RefOr::T(Schema::Object(object))) = schema {
        rule(object);
    }
}

impl Modify for FieldRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let body: [(&str, Rule); 4] = [
            ("agent_id", label),
            ("source_id", label),
            ("callback_url", callback_url),
            ("timeout_seconds", timeout),
        ];
        if let Some(schemas) = openapi.components.as_mut().map(|c| &mut c.schemas) {
            if let Some(RefOr::T(Schema::Object(create))) =
                schemas.get_mut(&*CreateJobRequest::name())
            {
                for (name, rule) in body {
                    apply(create.properties.get_mut(name), rule);
                }
            }
            if let Some(RefOr::T(Schema::Object(claim))) =
                schemas.get_mut(&*crate::workers::ClaimRequest::name())
            {
                for name in ["agent_id", "folder_id"] {
                    apply(claim.properties.get_mut(name), label);
                }
            }
        }
        // Claims and heartbeats take an optional body (an empty body means `{}`); utoipa
        // marks every request body required.
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path.ends_with("/claim") || path.ends_with("/heartbeat") {
                if let Some(body) = item.post.as_mut().and_then(|op| op.request_body.as_mut()) {
                    body.required = Some(utoipa::openapi::Required::False);
                }
            }
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                for param in operation.parameters.iter_mut().flatten() {
                    let rule: Rule = match (&param.parameter_in, param.name.as_str()) {
                        (ParameterIn::Query, "agent_id" | "folder_id") => label,
                        (ParameterIn::Header, "user_id" | "X-Project-Id" | "Idempotency-Key") => {
                            header_text
                        }
                        _ => continue,
                    };
                    apply(param.schema.as_mut(), rule);
                }
            }
        }
    }
}
