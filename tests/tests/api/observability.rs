//! `/metrics` and request ids.

use jobs_tests::*;
use reqwest::Method;
use serde_json::json;

fn scrape(server: &TestServer) -> String {
    let reply = server.send(server.request(Method::GET, "/metrics"));
    reply.assert_status(200);
    assert!(reply.header("content-type").unwrap().starts_with("text/plain"));
    reply.text
}

/// The value of the sample whose line starts with `prefix` (0 when absent).
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_move_after_requests_and_use_route_templates() {
    let server = TestServer::start();
    let token = user("ann");
    let before = scrape(&server);
    let job = server.job_in(&token, "running");
    let id = job["id"].as_str().unwrap();
    server.get(&format!("/api/jobs/{id}"), &token).assert_status(200);
    server.get("/api/jobs/job-00000000-0000-7000-8000-000000000000", &token).assert_status(404);
    server
        .patch(&format!("/api/jobs/{id}"), &token, json!({"status": "completed"}))
        .assert_status(200);
    let after = scrape(&server);

    let get_ok =
        r#"jobs_http_requests_total{method="GET",route="/api/jobs/{job_id}",status="200"}"#;
    let get_missing =
        r#"jobs_http_requests_total{method="GET",route="/api/jobs/{job_id}",status="404"}"#;
    assert_eq!(sample(&after, get_ok) - sample(&before, get_ok), 1.0, "{after}");
    assert_eq!(sample(&after, get_missing), 1.0);
    assert_eq!(
        sample(&after, r#"jobs_http_requests_total{method="POST",route="/api/jobs",status="201"}"#),
        1.0
    );
    assert_eq!(sample(&after, "jobs_created_total") - sample(&before, "jobs_created_total"), 1.0);
    for (from, to) in [("created", "pending"), ("pending", "running"), ("running", "completed")] {
        let line = format!(r#"jobs_transitions_total{{from="{from}",to="{to}"}}"#);
        assert_eq!(sample(&after, &line), 1.0, "{line}");
    }
    assert!(
        sample(
            &after,
            r#"jobs_http_request_duration_seconds_count{method="GET",route="/api/jobs/{job_id}"}"#
        ) >= 2.0
    );
    assert!(after.contains("jobs_db_pool_connections"));
    assert!(after.contains("jobs_db_pool_in_use"));
    assert!(after.contains("jobs_expired_total"));
    // No webhook ran here: the latency histogram is exported, empty. (Its counts by outcome
    // are checked where webhooks run, in webhooks.rs.)
    assert!(after.contains("# TYPE jobs_webhook_delivery_duration_seconds histogram"));
    assert_eq!(sample(&after, "jobs_webhook_delivery_duration_seconds_count"), 0.0);
    assert!(!after.contains(id), "raw ids never label metrics");
    assert!(!after.contains("job-00000000"), "raw ids never label metrics");
}

#[test]
fn unknown_routes_are_counted_under_one_label() {
    let server = TestServer::start();
    server.send(server.request(Method::GET, "/no/such/path/12345"));
    let text = scrape(&server);
    assert!(!text.contains("12345"));
    assert_eq!(
        sample(&text, r#"jobs_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
}

#[test]
fn every_response_carries_a_request_id_and_echoes_the_callers() {
    let server = TestServer::start();
    let generated = server.send(server.request(Method::GET, "/healthz"));
    let id = generated.header("x-request-id").unwrap();
    assert!(id.len() >= 16);
    let other =
        server.send(server.request(Method::GET, "/healthz")).header("x-request-id").unwrap();
    assert_ne!(id, other);
    let echoed =
        server.send(server.request(Method::GET, "/api/jobs").header("x-request-id", "req-abc-123"));
    assert_eq!(echoed.status.as_u16(), 401);
    assert_eq!(echoed.header("x-request-id").as_deref(), Some("req-abc-123"));
    let not_found = server.send(server.request(Method::PUT, "/api/jobs"));
    assert!(not_found.header("x-request-id").is_some());
}
