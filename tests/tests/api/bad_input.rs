//! Bad input: always a clear 4xx in the error body, never a 500, never a change.

use jobs_tests::*;
use reqwest::Method;
use serde_json::json;

fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::blocking::Body>,
) -> Reply {
    let mut request = server.request(Method::POST, path).bearer_auth(user("ann")).body(body);
    if let Some(ct) = content_type {
        request = request.header("Content-Type", ct);
    }
    server.send(request)
}

fn patch_raw(server: &TestServer, path: &str, body: &str) -> Reply {
    server.send(
        server
            .request(Method::PATCH, path)
            .bearer_auth(user("ann"))
            .header("Content-Type", "application/json")
            .body(body.to_owned()),
    )
}

#[test]
fn bodies_over_one_mebibyte_are_413() {
    // The metadata cap (64 KiB by default) is lifted so that only the body limit applies.
    let server = TestServer::start_with(|c| c.max_metadata_bytes = 2 * 1024 * 1024);
    let big = format!("{{\"metadata\": {{\"blob\": \"{}\"}}}}", "x".repeat(1024 * 1024));
    post_raw(&server, "/api/jobs", Some("application/json"), big.clone())
        .assert_error(413, "payload_too_large");
    let job = server.create(&user("ann"), json!({}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    patch_raw(&server, &path, &big).assert_error(413, "payload_too_large");
    // Just under the limit is fine.
    let fits = format!("{{\"metadata\": {{\"blob\": \"{}\"}}}}", "x".repeat(1024 * 1024 - 100));
    post_raw(&server, "/api/jobs", Some("application/json"), fits).assert_status(201);
    assert_eq!(server.get(&path, &user("ann")).body, job);
}

#[test]
fn the_body_limit_follows_its_setting() {
    let server = TestServer::start_with(|c| c.max_body_bytes = 100);
    let body = format!("{{\"metadata\": {{\"blob\": \"{}\"}}}}", "x".repeat(200));
    post_raw(&server, "/api/jobs", Some("application/json"), body)
        .assert_error(413, "payload_too_large");
    post_raw(&server, "/api/jobs", Some("application/json"), "{}").assert_status(201);
}

#[test]
fn bodies_that_are_not_json_are_415() {
    let server = TestServer::start();
    post_raw(&server, "/api/jobs", Some("text/plain"), "{}")
        .assert_error(415, "unsupported_media_type");
    post_raw(&server, "/api/jobs", None, "{}").assert_error(415, "unsupported_media_type");
    post_raw(&server, "/api/jobs", Some("application/x-www-form-urlencoded"), "a=b")
        .assert_error(415, "unsupported_media_type");
    post_raw(&server, "/api/jobs", Some("application/json; charset=utf-8"), "{}")
        .assert_status(201);
    assert_eq!(server.get("/api/jobs", &user("ann")).body.as_array().unwrap().len(), 1);
}

#[test]
fn malformed_json_unknown_fields_and_wrong_types_are_422() {
    let server = TestServer::start();
    let bad_creates = [
        "{",
        "[]",
        "null",
        "42",
        "{\"metadata\": [1, 2]}",
        "{\"metadata\": \"text\"}",
        "{\"job_type\": \"task\"}",
        "{\"background\": \"yes\"}",
        "{\"timeout_seconds\": 0}",
        "{\"timeout_seconds\": -5}",
        "{\"timeout_seconds\": 1.5}",
        "{\"timeout_seconds\": 99999999999999999999999}",
        "{\"timeout_seconds\": 2147483648}",
        "{\"agent_id\": 7}",
        "{\"agent_id\": \"\"}",
        "{\"unknown_field\": 1}",
        "{\"status\": \"running\"}",
        "{\"user_id\": \"bob\"}",
        "{\"callback_url\": \"not a url\"}",
        "{\"callback_url\": \"ftp://example.com/x\"}",
        "{\"callback_url\": \"/relative\"}",
        "{\"metadata\": {}} trailing",
    ];
    for body in bad_creates {
        let reply = post_raw(&server, "/api/jobs", Some("application/json"), body);
        reply.assert_error(422, "validation_error");
    }
    let too_long = json!({"agent_id": "a".repeat(257)}).to_string();
    post_raw(&server, "/api/jobs", Some("application/json"), too_long)
        .assert_error(422, "validation_error");
    let invalid_utf8: Vec<u8> = b"{\"agent_id\": \"\xff\xfe\"}".to_vec();
    post_raw(&server, "/api/jobs", Some("application/json"), invalid_utf8)
        .assert_error(422, "validation_error");

    let job = server.create(&user("ann"), json!({}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    for body in [
        "{}",
        "",
        "{\"status\": \"done\"}",
        "{\"status\": 3}",
        "{\"metadata\": [1]}",
        "{\"ttft_ns\": -1}",
        "{\"ttft_ns\": 1.5}",
        "{\"ttft_ns\": 9223372036854775808}",
        "{\"total_duration_ns\": -1}",
        "{\"total_duration_ns\": 1e30}",
        "{\"job_type\": \"run\"}",
        "{\"status\": \"pending\", \"extra\": true}",
        "{\"status\": null}",
        "{\"metadata\": null}",
        "{\"ttft_ns\": null, \"status\": \"pending\"}",
        "{\"ttft_ns\": 99999999999999999999}",
        "{\"total_duration_ns\": 99999999999999999999}",
        "{\"total_duration_ns\": -99999999999999999999}",
    ] {
        patch_raw(&server, &path, body).assert_error(422, "validation_error");
    }
    assert_eq!(server.get(&path, &user("ann")).body, job, "nothing changed");
    assert_eq!(
        server.get("/api/jobs", &user("ann")).body.as_array().unwrap().len(),
        1,
        "nothing created"
    );
}

#[test]
fn integral_floats_count_as_integers_as_in_json_schema() {
    let server = TestServer::start();
    let created = server.create(&user("ann"), json!({"timeout_seconds": 60.0}));
    assert_eq!(created["timeout_seconds"], 60);
    let path = format!("/api/jobs/{}", created["id"].as_str().unwrap());
    let updated =
        server.patch(&path, &user("ann"), json!({"ttft_ns": 5.0, "total_duration_ns": 1e3}));
    updated.assert_status(200);
    assert_eq!(updated.body["ttft_ns"], 5);
    assert_eq!(updated.body["total_duration_ns"], 1000);
    for body in [json!({"ttft_ns": 9.3e18}), json!({"ttft_ns": -1.0}), json!({"ttft_ns": "5"})] {
        server.patch(&path, &user("ann"), body).assert_error(422, "validation_error");
    }
}

#[test]
fn nul_and_control_characters_in_stored_strings_are_422_on_every_backend() {
    let server = TestServer::start();
    let token = user("ann");
    for body in [
        json!({"agent_id": "a\u{0}b"}),
        json!({"source_id": "\u{0}"}),
        json!({"agent_id": "line\nbreak"}),
        json!({"callback_url": "http://example.com/\u{0}"}),
    ] {
        server.json(Method::POST, "/api/jobs", &token, body).assert_error(422, "validation_error");
    }
    for query in ["agent_id=a%00b", "folder_id=%00", "source_id=x%0Ay"] {
        server.get(&format!("/api/jobs?{query}"), &token).assert_error(422, "validation_error");
    }
    // Metadata is JSON text, where NUL is escaped: it is stored as given.
    let job = server.create(&token, json!({"metadata": {"k\u{0}": "v\u{0}"}}));
    assert_eq!(job["metadata"]["k\u{0}"], "v\u{0}");
    let nul_sub = sign(&json!({"sub": "a\u{0}b", "exp": now() + 60, "scope": "jobs:read"}));
    server.get("/api/jobs", &nul_sub).assert_error(401, "unauthorized");
    assert_eq!(server.get("/api/jobs", &token).body.as_array().unwrap().len(), 1);
}

#[test]
fn a_json_array_is_not_a_request_object() {
    let server = TestServer::start();
    let token = user("ann");
    let array = json!(["run", {"a": 1}, true, "agent", "src", null, 5]);
    server.json(Method::POST, "/api/jobs", &token, array).assert_error(422, "validation_error");
    let job = server.create(&token, json!({}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    server.patch(&path, &token, json!(["pending"])).assert_error(422, "validation_error");
    assert_eq!(server.get(&path, &token).body, job);
    assert_eq!(server.get("/api/jobs", &token).body.as_array().unwrap().len(), 1);
}

#[test]
fn deeply_nested_json_is_a_422_not_a_crash() {
    let server = TestServer::start();
    let deep_array = "[".repeat(100_000);
    post_raw(&server, "/api/jobs", Some("application/json"), deep_array)
        .assert_error(422, "validation_error");
    let deep_object = format!("{{\"metadata\": {}{}", "{\"a\":".repeat(50_000), "1");
    post_raw(&server, "/api/jobs", Some("application/json"), deep_object)
        .assert_error(422, "validation_error");
    server.send(server.request(Method::GET, "/healthz")).assert_status(200);
}

#[test]
fn header_values_outside_visible_ascii_are_422() {
    let server = TestServer::start();
    let token = user("ann");
    for (name, value) in [("X-Project-Id", "a\tb"), ("Idempotency-Key", "k\tk")] {
        let reply = server.send(
            server
                .request(Method::POST, "/api/jobs")
                .bearer_auth(&token)
                .header(name, value)
                .json(&json!({})),
        );
        reply.assert_error(422, "validation_error");
    }
    // A malformed user_id is 422 for an admin; for anyone else the missing scope (403)
    // comes first.
    let as_malformed = |token: &str| {
        server.send(
            server
                .request(Method::POST, "/api/jobs")
                .bearer_auth(token)
                .header("user_id", "ann\tx")
                .json(&json!({})),
        )
    };
    as_malformed(&admin("root")).assert_error(422, "validation_error");
    as_malformed(&token).assert_error(403, "forbidden");
    assert!(server.get("/api/jobs", &token).body.as_array().unwrap().is_empty());
    let spaced = server.send(
        server
            .request(Method::POST, "/api/jobs")
            .bearer_auth(&token)
            .header("X-Project-Id", "my project")
            .json(&json!({})),
    );
    spaced.assert_status(201);
    assert_eq!(spaced.body["project_id"], "my project");
}

#[test]
fn injection_strings_in_parameters_are_inert() {
    let server = TestServer::start();
    let token = user("ann");
    server.create(&token, json!({"agent_id": "a"}));
    for evil in ["' OR '1'='1", "\"; DROP TABLE jobs; --", "%00", "../../etc/passwd", "<script>"] {
        let encoded: String = url::form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        let reply = server.get(&format!("/api/jobs?agent_id={encoded}"), &token);
        reply.assert_status(200);
        assert_eq!(reply.body, json!([]));
        server
            .get(&format!("/api/jobs?before={encoded}"), &token)
            .assert_error(400, "invalid_cursor");
        let created = server.create(&token, json!({"agent_id": evil, "metadata": {evil: evil}}));
        assert_eq!(created["agent_id"], evil);
    }
    assert_eq!(server.get("/api/jobs?agent_id=a", &token).body.as_array().unwrap().len(), 1);
}

#[test]
fn a_run_of_bad_requests_leaves_the_data_as_it_was() {
    let server = TestServer::start();
    let token = user("ann");
    let running = server.job_in(&token, "running");
    let done = server.job_in(&token, "completed");
    let snapshot = server.get("/api/jobs", &token).body;
    let run_path = format!("/api/jobs/{}", running["id"].as_str().unwrap());
    let done_path = format!("/api/jobs/{}", done["id"].as_str().unwrap());
    let attempts: Vec<Reply> = vec![
        patch_raw(&server, &run_path, "{\"status\": \"completed\", \"metadata\": [1]}"),
        patch_raw(&server, &run_path, "{\"status\": \"completed\", \"ttft_ns\": -3}"),
        patch_raw(&server, &run_path, "{\"status\": \"completed\", \"bogus\": 1}"),
        patch_raw(&server, &run_path, "{\"status\": \"pending\", \"metadata\": {\"x\": 1}}"),
        patch_raw(&server, &done_path, "{\"metadata\": {\"x\": 1}}"),
        server.delete(&run_path, &token),
        server.patch(&format!("{done_path}/cancel"), &token, json!({})),
        server.patch(&run_path, &token_without_write(), json!({"status": "completed"})),
        server.patch(&run_path, &user("mallory"), json!({"status": "completed"})),
    ];
    for reply in &attempts {
        assert!(reply.status.is_client_error(), "{}", reply.text);
        reply.assert_error_body();
    }
    assert_eq!(server.get("/api/jobs", &token).body, snapshot);
}

fn token_without_write() -> String {
    token("ann", "jobs:read")
}

#[test]
fn booleans_are_true_or_false_and_numbers_stay_in_range() {
    let server = TestServer::start();
    let token = user("ann");
    for bad in ["active=1", "active=True", "ascending=0", "limit=99999999999999999999"] {
        server.get(&format!("/api/jobs?{bad}"), &token).assert_error(422, "validation_error");
    }
    server.get("/api/jobs?active=true&ascending=false", &token).assert_status(200);
}

#[test]
fn query_strings_with_odd_encodings_never_cause_a_5xx() {
    let server = TestServer::start();
    let token = user("ann");
    for query in [
        "limit=%ZZ",
        "status=%FF%FE",
        "limit=1&limit=2",
        "=&&=",
        "before=&after=",
        "agent_id=",
        "a[b]=c",
        "limit=%00",
    ] {
        let reply = server.get(&format!("/api/jobs?{query}"), &token);
        assert!(
            reply.status.is_success() || reply.status.is_client_error(),
            "{query}: {}",
            reply.status
        );
        if !reply.status.is_success() {
            reply.assert_error_body();
        }
    }
    // The server still serves an ordinary list afterwards.
    server.get("/api/jobs", &token).assert_status(200);
}
