//! The last pass over the document, for client authors: servers, licence, per-operation
//! security and scopes, descriptions, shared responses and headers under `components`,
//! examples, plain string headers, `required` on always-present fields, and length limits on
//! ids and cursors.

use serde_json::{json, Map, Value};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::info::{ContactBuilder, LicenseBuilder};
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::schema::{ArrayItems, Object, Schema, SchemaType, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::server::ServerBuilder;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, Response};
use utoipa::Modify;

use super::examples::{self, SHARED_ERRORS};

/// The longest job id: `job-` and a hyphenated UUID.
pub const JOB_ID_CHARS: usize = 40;
/// A job id, for examples.
pub const JOB_ID_EXAMPLE: &str = "job-0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
/// The longest event id (a non-negative i64) in decimal.
const EVENT_ID_CHARS: usize = 19;

/// The example of a field or parameter, by its name: every one with a `pattern` has one,
/// so that Swagger UI never fills a form with a string made up from the pattern.
pub fn example_for(name: &str) -> Option<Value> {
    Some(match name {
        "job_id" | "before" | "after" => json!(JOB_ID_EXAMPLE),
        "agent_id" => json!("agent-1"),
        "source_id" | "folder_id" => json!("folder-1"),
        "callback_url" => json!("https://hooks.example.com/jobs/done"),
        // The development token's `sub`: a no-op for that token.
        "user_id" => json!("dev-user"),
        "X-Project-Id" => json!("proj-42"),
        "Idempotency-Key" => json!("create-orders-2026-11-28"),
        "Last-Event-ID" => json!("42"),
        "type" => json!("job.status_changed"),
        _ => return None,
    })
}

/// Headers the responses refer to: name, description, schema and example.
fn shared_headers() -> Value {
    let header = |description: &str, schema: Value, example: Value| json!({"description": description, "schema": schema, "example": example});
    json!({
        "ETag": header("The job's entity tag (its version, quoted): it changes with every \
    change. Send it back in `If-Match` or `If-None-Match`.",
            json!({"type": "string", "pattern": "^\"[0-9]+\"$"}), json!("\"3\"")),
        "Link": header("RFC 8288 link to the next page (`rel=\"next\"`), with the same filters; \
    absent on the last page.", json!({"type": "string"}),
            json!(format!("</api/jobs?limit=100&before={JOB_ID_EXAMPLE}>; rel=\"next\""))),
        "Preference-Applied": header("`wait=N` when `Prefer: wait=N` was honoured.",
            json!({"type": "string", "pattern": "^wait=[0-9]+$"}), json!("wait=30")),
        "Retry-After": header("Whole seconds to wait before retrying.",
            json!({"type": "integer", "minimum": 1}), json!(1)),
        "WWW-Authenticate": header("The authentication scheme: always `Bearer`.",
            json!({"type": "string", "enum": ["Bearer"]}), json!("Bearer")),
        "X-Request-Id": header("The request's id, on every response: the client's own \
    `x-request-id` when it sent a well-formed one (1 to 128 visible ASCII characters), a \
    generated UUID otherwise. The request's log line and the events it caused carry it.",
            json!({"type": "string", "maxLength": 128}),
            json!("5f0c3b7e-2f4a-4d1e-9b8a-6c2d1e0f3a4b")),
    })
}

fn header_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

/// Sets a response's headers to references (utoipa's response headers cannot be
/// references, so they are written through the response's extensions).
fn set_headers(response: &mut Response, names: impl IntoIterator<Item = String>) {
    let mut headers = Map::new();
    for name in names {
        headers.insert(name.clone(), header_ref(&name));
    }
    headers.insert("X-Request-Id".to_owned(), header_ref("X-Request-Id"));
    response.headers.clear();
    let extensions = response.extensions.get_or_insert_with(Extensions::default);
    extensions.insert("headers".to_owned(), Value::Object(headers));
}

fn shared_responses(openapi: &mut OpenApi) {
    let components = openapi.components.get_or_insert_with(Default::default);
    for shared in &SHARED_ERRORS {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Error")))
            .example(Some((shared.example)()))
            .build();
        let mut response = Response::new(shared.description);
        response.content.insert("application/json".to_owned(), content);
        set_headers(&mut response, shared.headers.iter().map(|h| (*h).to_owned()));
        components.responses.insert(shared.name.to_owned(), response.into());
    }
    let extensions = components.extensions.get_or_insert_with(Extensions::default);
    extensions.insert("headers".to_owned(), shared_headers());
}

/// The scope an operation needs: `GET` reads, everything else writes.
fn scope(method: &str) -> &'static str {
    if method == "get" {
        crate::auth::SCOPE_READ
    } else {
        crate::auth::SCOPE_WRITE
    }
}

fn describe(operation: &mut Operation, public: bool, method: &str) {
    let mut text =
        operation.description.take().or_else(|| operation.summary.clone()).unwrap_or_default();
    let access = if public {
        "Public: no token needed.".to_owned()
    } else {
        format!(
            "Needs a Bearer token with the `{}` scope. `jobs:admin` widens the reach to the \
whole organization (and lets `user_id` name another user); `jobs:work` lets a worker see, claim \
and update every job of the organization.",
            scope(method)
        )
    };
    text.push_str("\n\n");
    text.push_str(&access);
    operation.description = Some(text);
    if public {
        operation.security = Some(Vec::new());
        // What any route can answer: not one of the API's own errors, and so no error body.
        let bare = Response::new(
            "The request is not valid HTTP (a malformed or oversized header, for example): the \
connection handler refuses it before any route runs, with a bare status and no body.",
        );
        operation.responses.responses.insert("4XX".to_owned(), bare.into());
    } else {
        // Scopes of an HTTP scheme cannot be listed in the requirement (they belong to OAuth2
        // and OpenID Connect schemes): they are in the description and `x-required-scopes`.
        operation.security = Some(vec![SecurityRequirement::new("bearer_auth", [""; 0])]);
        let extensions = operation.extensions.get_or_insert_with(Extensions::default);
        extensions.insert("x-required-scopes".to_owned(), json!([scope(method)]));
    }
}

fn wire_responses(operation: &mut Operation) {
    let id = operation.operation_id.clone().unwrap_or_default();
    for (status, response) in operation.responses.responses.iter_mut() {
        if let Some(shared) = SHARED_ERRORS.iter().find(|s| s.status.to_string() == *status) {
            *response = RefOr::Ref(Ref::new(format!("#/components/responses/{}", shared.name)));
            continue;
        }
        // The bare answers of the connection handler carry no header of the API's.
        let RefOr::T(inline) = response else { continue };
        if status == "4XX" {
            continue;
        }
        if status == "409" {
            if let (Some(example), Some(content)) =
                (examples::conflict(&id), inline.content.get_mut("application/json"))
            {
                content.example = Some(example);
            }
        }
        let names: Vec<String> = inline.headers.keys().cloned().collect();
        set_headers(inline, names);
    }
}

/// A parameter's schema as a plain type (a header or query value is never JSON `null`),
/// with its example and the length limit of ids and cursors.
fn wire_parameter(param: &mut Parameter) {
    let name = param.name.clone();
    let example = example_for(&name);
    let Some(RefOr::T(Schema::Object(schema))) = param.schema.as_mut() else {
        // Arrays: the limits and examples go on their items.
        if let Some(RefOr::T(Schema::Array(array))) = param.schema.as_mut() {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                if let (RefOr::T(Schema::Object(item)), Some(example)) = (&mut **items, example) {
                    limit_id(&name, item);
                    item.examples = vec![example];
                }
            }
        }
        return;
    };
    if let SchemaType::Array(types) = &schema.schema_type {
        if let Some(plain) = types.iter().find(|t| **t != Type::Null) {
            schema.schema_type = SchemaType::Type(plain.clone());
        }
    }
    if param.parameter_in == ParameterIn::Header && name == "Last-Event-ID" {
        schema.pattern = Some("^[0-9]+$".to_owned());
        schema.max_length = Some(EVENT_ID_CHARS);
    }
    limit_id(&name, schema);
    if let Some(example) = example.filter(|_| schema.schema_type == Type::String.into()) {
        schema.examples = vec![example.clone()];
        // Swagger UI fills a parameter's field with its `example`: right for a required
        // path id, wrong for optional filters, cursors and headers, which would change what
        // "Try it out" asks for (a `user_id` another token may not use, two equal cursors).
        if param.required == Required::True {
            let extensions = param.extensions.get_or_insert_with(Extensions::default);
            extensions.insert("example".into(), example);
        }
    }
}

fn limit_id(name: &str, schema: &mut Object) {
    if matches!(name, "job_id" | "before" | "after") && schema.schema_type == Type::String.into() {
        schema.max_length = Some(JOB_ID_CHARS);
        schema.pattern.get_or_insert_with(|| crate::dto::JOB_ID_PATTERN.to_owned());
    }
}

fn wire_body(operation: &mut Operation, path: &str) {
    let id = operation.operation_id.clone().unwrap_or_default();
    let Some(body) = operation.request_body.as_mut() else { return };
    // An empty create is a job with every default.
    if path == "/api/jobs" {
        body.required = Some(Required::False);
    }
    if let (Some(example), Some(content)) =
        (examples::request(&id), body.content.get_mut("application/json"))
    {
        content.example = Some(example);
    }
}

fn wire_schemas(openapi: &mut OpenApi) {
    let Some(components) = openapi.components.as_mut() else { return };
    for (name, schema) in components.schemas.iter_mut() {
        let RefOr::T(Schema::Object(object)) = schema else { continue };
        // Every field of these is always serialized, `null` included.
        if matches!(name.as_str(), "Job" | "Event") {
            object.required = object.properties.keys().cloned().collect();
        }
        for (field, property) in object.properties.iter_mut() {
            let RefOr::T(Schema::Object(property)) = property else { continue };
            if matches!((name.as_str(), field.as_str()), ("Job", "id") | ("Event", "job_id")) {
                property.max_length = Some(JOB_ID_CHARS);
            }
            if property.pattern.is_some() && property.examples.is_empty() {
                property.examples.extend(example_for(field));
            }
        }
    }
}

/// The last modifier: see the module's description.
pub struct Wiring;

impl Modify for Wiring {
    fn modify(&self, openapi: &mut OpenApi) {
        openapi.info.license =
            Some(LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build());
        openapi.info.contact =
            Some(ContactBuilder::new().name(Some("Jobs API maintainers")).build());
        openapi.servers = Some(vec![ServerBuilder::new()
            .url("/")
            .description(Some(
                "This server. Every `/api` route is also served under `/v1` (`/v1/jobs` for \
`/api/jobs`, and so on), for clients written against `/v1`.",
            ))
            .build()]);
        shared_responses(openapi);
        wire_schemas(openapi);
        for (path, item) in openapi.paths.paths.iter_mut() {
            let public = !path.starts_with("/api/");
            let operations = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation.as_mut() else { continue };
                describe(operation, public, method);
                wire_responses(operation);
                wire_body(operation, path);
                for param in operation.parameters.iter_mut().flatten() {
                    wire_parameter(param);
                }
            }
        }
    }
}
