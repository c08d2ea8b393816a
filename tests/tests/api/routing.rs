//! Routing errors and their precedence.

use jobs_tests::*;
use reqwest::Method;
use serde_json::json;

#[test]
fn an_unknown_route_is_404_not_found_in_the_error_body() {
    let server = TestServer::start();
    let paths =
        ["/", "/api", "/api/job", "/api/jobs/x/y/z", "/v2/jobs", "/api/jobs/x/", "/api/jobsx"];
    for path in paths {
        server.send(server.request(Method::GET, path)).assert_error(404, "not_found");
    }
    server
        .send(server.request(Method::GET, "/api/nothing").bearer_auth(user("ann")))
        .assert_error(404, "not_found");
}

#[test]
fn a_known_path_with_a_wrong_method_is_405_before_authentication() {
    let server = TestServer::start();
    let id = "job-00000000-0000-7000-8000-000000000000";
    let cases = [
        (Method::PUT, "/api/jobs".to_owned()),
        (Method::DELETE, "/api/jobs".to_owned()),
        (Method::POST, format!("/api/jobs/{id}")),
        (Method::PUT, format!("/api/jobs/{id}")),
        (Method::GET, format!("/api/jobs/{id}/cancel")),
        (Method::POST, "/api/jobs/active".to_owned()),
        // The fixed paths beside the ids are never read as ids, whatever the method.
        (Method::PATCH, "/api/jobs/active".to_owned()),
        (Method::DELETE, "/v1/jobs/active".to_owned()),
        (Method::GET, "/api/jobs/claim".to_owned()),
        (Method::PATCH, "/v1/jobs/claim".to_owned()),
        (Method::DELETE, "/api/jobs/claim".to_owned()),
        (Method::OPTIONS, format!("/v1/jobs/{id}")),
        (Method::TRACE, "/api/jobs".to_owned()),
        (Method::PUT, "/v1/jobs/".to_owned()),
        (Method::POST, "/healthz".to_owned()),
    ];
    for (method, path) in cases {
        let anonymous = server.send(server.request(method.clone(), &path));
        anonymous.assert_error(405, "method_not_allowed");
        let allow = anonymous.header("allow").unwrap_or_default();
        assert!(
            !allow.is_empty() && !allow.contains(method.as_str()),
            "{method} {path}: Allow {allow}"
        );
        let authed = server.send(server.request(method, &path).bearer_auth(user("ann")));
        authed.assert_error(405, "method_not_allowed");
    }
    // A HEAD answer has no body: only its status.
    let head = server.send(server.request(Method::HEAD, &format!("/api/jobs/{id}")));
    assert_eq!(head.status, 405);
}

#[test]
fn authentication_comes_before_body_and_job_errors() {
    let server = TestServer::start();
    let huge = "x".repeat(2 * 1024 * 1024);
    // 401 beats 413, 415, 422 and 404.
    let reply = server.send(
        server
            .request(Method::POST, "/api/jobs")
            .header("Content-Type", "application/json")
            .body(huge.clone()),
    );
    reply.assert_error(401, "unauthorized");
    let reply = server.send(
        server.request(Method::POST, "/api/jobs").header("Content-Type", "text/plain").body("x"),
    );
    reply.assert_error(401, "unauthorized");
    let reply = server.send(server.request(Method::GET, "/api/jobs/not-an-id"));
    reply.assert_error(401, "unauthorized");
    let reply = server.send(server.request(Method::GET, "/api/jobs?limit=0"));
    reply.assert_error(401, "unauthorized");
    // 403 beats them too.
    let read_only = token("ann", "jobs:read");
    let reply = server.send(
        server
            .request(Method::POST, "/api/jobs")
            .bearer_auth(&read_only)
            .header("Content-Type", "application/json")
            .body(huge),
    );
    reply.assert_error(403, "forbidden");
    server.patch("/api/jobs/not-an-id", &read_only, json!({})).assert_error(403, "forbidden");
    // 422 beats 404.
    server
        .patch(
            "/api/jobs/job-00000000-0000-7000-8000-000000000000",
            &user("ann"),
            json!({"status": "nope"}),
        )
        .assert_error(422, "validation_error");
}

#[test]
fn the_openapi_document_and_swagger_ui_are_served_without_a_token() {
    let server = TestServer::start();
    let doc = server.send(server.request(Method::GET, "/openapi.json"));
    doc.assert_status(200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let ui = server.send(server.request(Method::GET, "/docs/"));
    ui.assert_status(200);
    assert!(ui.text.to_lowercase().contains("swagger"), "{}", &ui.text[..ui.text.len().min(200)]);
    let redirect = server.send(server.request(Method::GET, "/docs"));
    assert!(redirect.status.is_redirection());
    assert_eq!(redirect.header("location").as_deref(), Some("/docs/"));
}
