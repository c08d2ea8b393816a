//! What the OpenAPI document promises to client authors and to generated clients: one open
//! `Metadata`, typed errors, complete `required` lists, shared responses and headers,
//! examples that work as they are, and scopes on every operation.

use jobs_tests::*;
use reqwest::Method;
use serde_json::{json, Value};
use utoipa::OpenApi;

fn doc() -> Value {
    serde_json::to_value(jobs_http::ApiDoc::openapi()).unwrap()
}

/// Follows a `$ref` into the document.
fn resolve(doc: &Value, value: &Value) -> Value {
    match value["$ref"].as_str() {
        Some(target) => doc.pointer(target.trim_start_matches('#')).unwrap().clone(),
        None => value.clone(),
    }
}

/// Every operation, as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            all.push((method.clone(), path.clone(), op.clone()));
        }
    }
    all
}

#[test]
fn every_operation_has_a_description_and_says_which_scope_it_needs() {
    let doc = doc();
    assert_eq!(doc["servers"][0]["url"], "/");
    assert!(doc["servers"][0]["description"].as_str().unwrap().contains("/v1"));
    for (method, path, op) in operations(&doc) {
        let what = format!("{method} {path}");
        assert!(op["description"].as_str().is_some_and(|d| !d.is_empty()), "{what}");
        if path.starts_with("/api/") {
            let scope = if method == "get" { "jobs:read" } else { "jobs:write" };
            assert_eq!(op["security"], json!([{"bearer_auth": []}]), "{what}");
            assert_eq!(op["x-required-scopes"], json!([scope]), "{what}");
            assert!(op["description"].as_str().unwrap().contains(scope), "{what}");
        } else {
            assert_eq!(op["security"], json!([]), "{what} is public");
        }
    }
}

#[test]
fn metadata_is_one_open_schema_wherever_metadata_appears() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["Metadata"]["type"], "object");
    assert_eq!(schemas["Metadata"]["additionalProperties"], true);
    let metadata_ref = json!("#/components/schemas/Metadata");
    assert_eq!(schemas["Job"]["properties"]["metadata"]["$ref"], metadata_ref);
    assert_eq!(schemas["JobUpdate"]["properties"]["metadata"]["$ref"], metadata_ref);
    let create = schemas["JobCreate"]["properties"]["metadata"]["oneOf"].as_array().unwrap();
    assert!(create.iter().any(|s| s["$ref"] == metadata_ref), "{create:?}");
    assert!(create.iter().any(|s| s["type"] == "null"), "null means {{}}");
}

#[test]
fn every_job_field_the_server_sends_is_required() {
    let required: Vec<String> =
        serde_json::from_value(doc()["components"]["schemas"]["Job"]["required"].clone()).unwrap();
    let server = TestServer::start();
    let job = server.create(&user("ann"), json!({}));
    let mut sent: Vec<String> = job.as_object().unwrap().keys().cloned().collect();
    let mut listed = required.clone();
    sent.sort();
    listed.sort();
    assert_eq!(sent, listed, "every field is always sent, null included");
}

#[test]
fn the_error_type_is_an_enum_and_details_stay_open_with_the_known_members_listed() {
    let doc = doc();
    let schemas = &doc["components"]["schemas"];
    let codes = schemas["ErrorType"]["enum"].as_array().unwrap();
    for code in ["invalid_job_status_transition", "job_not_found", "validation_error", "conflict"] {
        assert!(codes.contains(&json!(code)), "{code}");
    }
    assert_eq!(
        schemas["ErrorDetail"]["properties"]["type"]["$ref"],
        "#/components/schemas/ErrorType"
    );
    assert_eq!(schemas["ErrorDetail"]["required"], json!(["type", "message", "details"]));
    let details = &schemas["ErrorDetails"];
    assert_eq!(details["additionalProperties"], true);
    for member in
        ["field", "current_status", "requested_status", "claimed_by", "retry_after_seconds"]
    {
        assert!(details["properties"][member].is_object(), "{member}");
    }
    // What a server really answers is one of the codes.
    let server = TestServer::start();
    let missing = server.get("/api/jobs/job-0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b", &user("ann"));
    assert!(codes.contains(&json!(missing.error_type())));
}

#[test]
fn error_responses_and_headers_are_shared_components_each_with_its_own_example() {
    let doc = doc();
    let responses = doc["components"]["responses"].as_object().unwrap();
    let mut seen = Vec::new();
    for (name, response) in responses {
        let example = &response["content"]["application/json"]["example"];
        let code = example["error"]["type"].as_str().unwrap_or_else(|| panic!("{name}"));
        assert!(doc["components"]["schemas"]["ErrorType"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!(code)));
        assert!(!seen.contains(example), "{name} repeats an example");
        seen.push(example.clone());
    }
    for header in ["Link", "X-Request-Id", "WWW-Authenticate", "ETag", "Retry-After"] {
        assert!(doc["components"]["headers"][header]["schema"].is_object(), "{header}");
    }
    let unauthorized = resolve(&doc, &doc["paths"]["/api/jobs"]["get"]["responses"]["401"]);
    assert_eq!(
        unauthorized["headers"]["WWW-Authenticate"]["$ref"],
        "#/components/headers/WWW-Authenticate"
    );
    let page = &doc["paths"]["/api/jobs"]["get"]["responses"]["200"];
    assert_eq!(page["headers"]["Link"]["$ref"], "#/components/headers/Link");
    let conflicts: Vec<Value> = operations(&doc)
        .iter()
        .filter_map(|(_, _, op)| {
            op["responses"]["409"]["content"]["application/json"].get("example").cloned()
        })
        .collect();
    assert!(conflicts.len() >= 5, "every 409 has an example");
}

#[test]
fn headers_are_plain_strings_and_every_pattern_comes_with_an_example() {
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        for param in op["parameters"].as_array().into_iter().flatten() {
            let what = format!("{method} {path} {}", param["name"]);
            let schema = &param["schema"];
            if param["in"] == "header" {
                assert_eq!(schema["type"], "string", "{what}");
            }
            // Swagger UI would fill an optional field with it, changing the request.
            if param["required"] == false {
                assert!(param.get("example").is_none(), "{what}");
            }
            let item = if schema["type"] == "array" { &schema["items"] } else { schema };
            if item.get("pattern").is_some() {
                assert!(item["examples"].is_array(), "{what}");
            }
            let id = ["job_id", "before", "after"].contains(&param["name"].as_str().unwrap());
            if id && item["type"] == "string" {
                assert_eq!(item["maxLength"], 40, "{what}");
            }
        }
    }
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if property.get("pattern").is_some() {
                assert!(property["examples"].is_array(), "{name}.{field}");
            }
        }
    }
}

#[test]
fn the_request_examples_work_as_they_are_and_an_empty_create_is_allowed() {
    let doc = doc();
    let create = &doc["paths"]["/api/jobs"]["post"]["requestBody"];
    assert_eq!(create["required"], false);
    let patch = &doc["paths"]["/api/jobs/{job_id}"]["patch"]["requestBody"];
    assert_eq!(patch["content"]["application/json"]["example"], json!({"status": "pending"}));

    let server = TestServer::start();
    let ann = user("ann");
    let example = create["content"]["application/json"]["example"].clone();
    let job = server.create(&ann, example);
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    let moved = server.patch(&path, &ann, patch["content"]["application/json"]["example"].clone());
    moved.assert_status(200);
    assert_eq!(moved.body["status"], "pending");
    let claim =
        &doc["paths"]["/api/jobs/claim"]["post"]["requestBody"]["content"]["application/json"];
    let claimed = server.json(Method::POST, "/api/jobs/claim", &ann, claim["example"].clone());
    claimed.assert_status(200);
    assert_eq!(claimed.body["id"], job["id"]);
    server.send(server.request(Method::POST, "/api/jobs").bearer_auth(&ann)).assert_status(201);
}
