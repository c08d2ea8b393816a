//! `JOBS_RATE_LIMIT`: a token bucket per user (token `org` + `sub`) per process; over it,
//! 429 `rate_limited` with `Retry-After`, before the body is read or anything is stored.

use jobs_server::{Application, Config};
use jobs_tests::*;
use reqwest::Method;
use serde_json::json;

fn limited(rate: &str) -> TestServer {
    let rate = rate.to_owned();
    TestServer::start_with(move |config| config.rate_limit = Some(rate))
}

/// Spends `n` requests of `token`'s bucket on a list, asserting each passes.
fn spend(server: &TestServer, token: &str, n: usize) {
    for _ in 0..n {
        server.get("/api/jobs", token).assert_status(200);
    }
}

/// Asserts a 429 `rate_limited` with a `Retry-After` of whole seconds within the window.
fn assert_rate_limited(reply: &Reply, window_seconds: u64) {
    reply.assert_error(429, "rate_limited");
    let retry_after: u64 = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", reply.text))
        .parse()
        .unwrap();
    assert!((1..=window_seconds).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(reply.body["error"]["details"]["retry_after_seconds"], retry_after);
}

#[test]
fn a_users_fourth_request_within_a_minute_of_three_per_minute_is_429_with_retry_after() {
    let server = limited("3/min");
    let ann = user("ann");
    spend(&server, &ann, 3);
    assert_rate_limited(&server.get("/api/jobs", &ann), 60);
    // Every job route, under both prefixes, draws on the same bucket.
    assert_rate_limited(&server.get("/v1/jobs/active", &ann), 60);
    assert_rate_limited(&server.delete("/api/jobs/not-even-an-id", &ann), 60);
}

#[test]
fn a_limited_request_is_refused_before_its_body_is_read_and_stores_nothing() {
    let server = limited("3/min");
    let ann = user("ann");
    spend(&server, &ann, 3);
    // A valid create is refused, and so is a malformed one: 429 comes before 422 and 415.
    let create = server.json(Method::POST, "/api/jobs", &ann, json!({"job_type": "export"}));
    assert_rate_limited(&create, 60);
    let bad_json = server.send(
        server
            .request(Method::POST, "/api/jobs")
            .bearer_auth(&ann)
            .header("content-type", "application/json")
            .body("{not json"),
    );
    assert_rate_limited(&bad_json, 60);
    let not_json =
        server.send(server.request(Method::POST, "/api/jobs").bearer_auth(&ann).body("plain text"));
    assert_rate_limited(&not_json, 60);
    // An admin of the same org (another user, another bucket) sees that nothing was created.
    let jobs = server.get("/api/jobs", &admin("root"));
    jobs.assert_status(200);
    assert_eq!(jobs.body, json!([]), "a refused create stored a job");
}

#[test]
fn authentication_and_scope_are_decided_before_the_rate_limit() {
    let server = limited("3/min");
    let ann = user("ann");
    spend(&server, &ann, 3);
    assert_rate_limited(&server.get("/api/jobs", &ann), 60);
    // No token, a bad token: 401. A token of ann's without the needed scope: 403.
    server.send(server.request(Method::GET, "/api/jobs")).assert_error(401, "unauthorized");
    server.get("/api/jobs", "not.a.token").assert_error(401, "unauthorized");
    let read_only = token("ann", "jobs:read");
    server.json(Method::POST, "/api/jobs", &read_only, json!({})).assert_error(403, "forbidden");
}

#[test]
fn another_user_is_not_limited_by_the_first() {
    let server = limited("3/min");
    let ann = user("ann");
    spend(&server, &ann, 3);
    assert_rate_limited(&server.get("/api/jobs", &ann), 60);
    // Another subject, and the same subject in another organization, have their own bucket.
    spend(&server, &user("bob"), 3);
    let ann_elsewhere =
        sign(&json!({"sub": "ann", "org": "other", "exp": now() + 3600, "scope": "jobs:read"}));
    spend(&server, &ann_elsewhere, 3);
    assert_rate_limited(&server.get("/api/jobs", &ann_elsewhere), 60);
    // Acting for another user still spends the caller's own bucket.
    let root = admin("root");
    for _ in 0..3 {
        server
            .send(
                server
                    .request(Method::GET, "/api/jobs")
                    .bearer_auth(&root)
                    .header("user_id", "carl"),
            )
            .assert_status(200);
    }
    assert_rate_limited(&server.get("/api/jobs", &root), 60);
    spend(&server, &user("carl"), 3);
}

#[test]
fn health_metrics_and_the_docs_are_never_limited() {
    let server = limited("1/min");
    let ann = user("ann");
    spend(&server, &ann, 1);
    assert_rate_limited(&server.get("/api/jobs", &ann), 60);
    for _ in 0..10 {
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs/"] {
            // With and without the limited user's token.
            server.get(path, &ann).assert_status(200);
            server.send(server.request(Method::GET, path)).assert_status(200);
        }
        let redirect = server.get("/docs", &ann);
        assert!(redirect.status.is_redirection(), "{}", redirect.status);
    }
}

#[test]
fn malformed_rate_limits_are_refused_at_start_up() {
    for bad in ["abc", "0/s", "5/h", "5", "-1/min", "1.5/s", ""] {
        let db = db::TestDatabase::new();
        let config = Config {
            database_url: db.url().to_owned(),
            bind: "127.0.0.1:0".to_owned(),
            jwt_secret: Some(SECRET.to_owned()),
            rate_limit: Some(bad.to_owned()),
            ..Config::default()
        };
        let err = match Application::build(&config) {
            Ok(_) => panic!("JOBS_RATE_LIMIT={bad:?} was accepted"),
            Err(err) => format!("{err:#}"),
        };
        assert!(err.contains("JOBS_RATE_LIMIT"), "{bad:?}: {err}");
        assert!(err.contains("N/s or N/min"), "{bad:?}: {err}");
    }
    for good in ["1/s", "600/min"] {
        let server = limited(good);
        server.get("/api/jobs", &user("ann")).assert_status(200);
    }
}

#[test]
fn the_openapi_document_lists_429_with_retry_after_on_every_route_that_needs_a_token() {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(jobs_http::ApiDoc::openapi()).unwrap();
    // Follows a `$ref` into the document.
    let resolve = |value: &serde_json::Value| match value["$ref"].as_str() {
        Some(target) => doc.pointer(target.trim_start_matches('#')).unwrap().clone(),
        None => value.clone(),
    };
    let mut documented = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let limited = resolve(&op["responses"]["429"]);
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                let retry_after = resolve(&limited["headers"]["Retry-After"]);
                assert_eq!(retry_after["schema"]["type"], "integer", "{method} {path}");
                assert_eq!(
                    limited["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error"
                );
                documented += 1;
            } else {
                assert!(limited.is_null(), "{method} {path} is never limited");
            }
        }
    }
    assert!(documented >= 7, "every job operation: {documented}");
}
