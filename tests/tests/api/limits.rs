//! Limits that keep one caller from hurting everyone: metric labels from fixed sets, and
//! the cap on a job's metadata.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use jobs_tests::*;
use reqwest::Method;
use serde_json::json;

/// Sends raw bytes and reads what comes back (the server closes or times out).
fn raw(server: &TestServer, request: &str) -> String {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn http_series(server: &TestServer) -> Vec<String> {
    let reply = server.send(server.request(Method::GET, "/metrics"));
    reply.assert_status(200);
    reply
        .text
        .lines()
        .filter(|l| l.starts_with("jobs_http_requests_total{"))
        .map(|l| l.rsplit_once(' ').map_or(l, |(series, _)| series).to_owned())
        .collect()
}

#[test]
fn made_up_method_names_never_add_a_metrics_series() {
    let server = TestServer::start();
    raw(&server, "XWARMUP /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let before = http_series(&server);
    for i in 0..20 {
        let method = format!("XABC{i}{}", "Q".repeat(2000));
        let answer = raw(
            &server,
            &format!("{method} /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    let after = http_series(&server);
    let text = after.join("\n");
    assert!(!text.contains("XABC"), "a method name became a label: {text}");
    assert!(text.contains(r#"method="other""#), "{text}");
    let grown: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
    // Only the scrapes themselves may add their own series.
    assert!(grown.iter().all(|s| s.contains("/metrics")), "new series: {grown:?}");
}

fn padding(bytes: usize) -> String {
    "x".repeat(bytes)
}

#[test]
fn metadata_over_the_cap_is_refused_at_creation_and_nothing_is_made() {
    let server = TestServer::start_with(|c| c.max_metadata_bytes = 1000);
    let token = user("ann");
    let reply = server.json(
        Method::POST,
        "/api/jobs",
        &token,
        json!({"metadata": {"blob": padding(1000)}}),
    );
    reply.assert_error(422, "validation_error");
    assert_eq!(reply.body["error"]["details"]["field"], "metadata");
    assert_eq!(server.get("/api/jobs", &token).body, json!([]));
    server.create(&token, json!({"metadata": {"blob": padding(900)}}));
}

#[test]
fn a_merge_patch_that_grows_metadata_past_the_cap_is_refused_and_changes_nothing() {
    let server = TestServer::start_with(|c| c.max_metadata_bytes = 1000);
    let token = user("ann");
    let job = server.create(&token, json!({"metadata": {"a": padding(600)}}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    let reply = server.patch(&path, &token, json!({"metadata": {"b": padding(600)}}));
    reply.assert_error(422, "validation_error");
    assert_eq!(reply.body["error"]["details"]["field"], "metadata");
    let unchanged = server.get(&path, &token).body;
    assert_eq!(unchanged["metadata"], job["metadata"]);
    assert_eq!(unchanged["updated_at"], job["updated_at"]);
    // Replacing the big key keeps it under the cap, so that is allowed.
    let reply = server.patch(&path, &token, json!({"metadata": {"a": null, "b": padding(600)}}));
    reply.assert_status(200);
    assert_eq!(reply.body["metadata"]["b"].as_str().unwrap().len(), 600);
}

#[test]
fn the_default_metadata_cap_is_64_kib() {
    let server = TestServer::start();
    let token = user("ann");
    let reply =
        server.json(Method::POST, "/api/jobs", &token, json!({"metadata": {"b": padding(65_536)}}));
    reply.assert_error(422, "validation_error");
    server.create(&token, json!({"metadata": {"b": padding(60_000)}}));
}
