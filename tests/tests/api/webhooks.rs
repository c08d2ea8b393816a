//! Completion webhooks to a real receiver on loopback.

use std::time::Duration;

use base64::Engine;
use chrono::TimeDelta;
use hmac::{Hmac, Mac};
use jobs_domain::OffsetClock;
use jobs_tests::receiver::{Received, Receiver};
use jobs_tests::*;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

/// The Standard Webhooks example secret.
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn server() -> TestServer {
    server_at(&OffsetClock::new())
}

fn server_at(clock: &OffsetClock) -> TestServer {
    TestServer::start_with(|c| {
        c.clock = clock.clock();
        c.webhook_allow_private = true;
        c.webhook_secret = Some(WEBHOOK_SECRET.to_owned());
        c.webhook_retry_base_ms = 100;
        c.webhook_timeout_ms = 2000;
    })
}

/// The `v1,` signature a receiver computes, with no code from the server.
fn expected_signature(id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(WEBHOOK_SECRET.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("v1,{sig}")
}

/// Verifies a signature the way a receiver would.
fn verify(received: &Received) -> bool {
    let expected = expected_signature(
        &received.headers["webhook-id"],
        &received.headers["webhook-timestamp"],
        &received.body,
    );
    received.headers["webhook-signature"].split(' ').any(|sig| sig == expected)
}

fn create_with_callback(server: &TestServer, url: &str) -> Value {
    server.create(&user("ann"), json!({"callback_url": url, "metadata": {"k": "v"}}))
}

/// Sends one more webhook (a cancelled job's) through the dispatcher and waits until its
/// attempt is recorded. Deliveries are claimed oldest due first, so by then every delivery
/// that was due has been claimed too: a webhook that should not exist has had its chance.
fn sentinel(server: &TestServer, url: &str) {
    let job = create_with_callback(server, url);
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    server.patch(&format!("{path}/cancel"), &user("ann"), json!({})).assert_status(200);
    let seen = server.wait_for_job(&path, &user("ann"), Duration::from_secs(10), |j| {
        !j["callback_status_code"].is_null()
    });
    assert!(!seen["callback_status_code"].is_null(), "the sentinel webhook was not sent");
}

/// How many of `receiver`'s requests are about `job`.
fn about(receiver: &Receiver, job: &Value) -> usize {
    receiver.received().iter().filter(|r| r.json["job_id"] == job["id"]).count()
}

#[test]
fn completion_failure_and_cancel_each_post_one_signed_event() {
    let receiver = Receiver::start();
    let server = server();
    let token = user("ann");
    let mut expected = Vec::new();
    for end in ["completed", "failed", "cancel"] {
        let job = create_with_callback(&server, &receiver.url);
        let id = job["id"].as_str().unwrap().to_owned();
        let path = format!("/api/jobs/{id}");
        let done = if end == "cancel" {
            server.patch(&format!("{path}/cancel"), &token, json!({}))
        } else {
            server.patch(&path, &token, json!({"status": "pending"})).assert_status(200);
            server.patch(&path, &token, json!({"status": "running"})).assert_status(200);
            server.patch(&path, &token, json!({"status": end, "metadata": {"result": end}}))
        };
        done.assert_status(200);
        expected.push(done.body);
    }
    let received = receiver.wait_for(3, Duration::from_secs(10));
    assert_eq!(received.len(), 3, "{received:?}");
    for job in &expected {
        let event =
            received.iter().find(|r| r.json["job_id"] == job["id"]).expect("an event per job");
        assert_eq!(
            event.json,
            json!({"job_id": job["id"], "status": job["status"], "completed_at": job["completed_at"], "metadata": job["metadata"]})
        );
        assert_eq!(event.headers["content-type"], "application/json");
        assert!(event.headers["webhook-id"].starts_with("msg_"));
        let ts: i64 = event.headers["webhook-timestamp"].parse().unwrap();
        assert!((ts - now()).abs() < 60);
        assert!(verify(event), "signature does not verify: {:?}", event.headers);
    }
    // Each attempt is recorded on the job.
    for job in &expected {
        let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
        let seen = server.wait_for_job(&path, &user("ann"), Duration::from_secs(5), |j| {
            !j["callback_sent_at"].is_null()
        });
        assert_eq!(seen["callback_status_code"], 200);
        assert!(seen["callback_error"].is_null());
        assert!(seen["callback_sent_at"].as_str().unwrap().ends_with('Z'));
    }
}

#[test]
fn the_signature_header_is_the_hmac_of_id_timestamp_and_the_exact_body() {
    let receiver = Receiver::start();
    let server = server();
    let job = server.job_in(&user("ann"), "running");
    assert!(job["callback_url"].is_null());
    let job = create_with_callback(&server, &receiver.url);
    server
        .patch(
            &format!("/api/jobs/{}/cancel", job["id"].as_str().unwrap()),
            &user("ann"),
            json!({}),
        )
        .assert_status(200);
    let event = receiver.wait_for(1, Duration::from_secs(10)).remove(0);
    let (id, timestamp) = (&event.headers["webhook-id"], &event.headers["webhook-timestamp"]);
    // The server's header is exactly the receiver's own computation over the bytes it got.
    let signed = &event.headers["webhook-signature"];
    assert_eq!(signed, &expected_signature(id, timestamp, &event.body));
    let mut tampered = event.body.clone();
    tampered.push(b' ');
    assert_ne!(signed, &expected_signature(id, timestamp, &tampered));
    assert_ne!(signed, &expected_signature("msg_other", timestamp, &event.body));
}

#[test]
fn a_receiver_that_fails_twice_gets_three_attempts_with_one_webhook_id() {
    let receiver = Receiver::scripted(&[500, 503]);
    let clock = OffsetClock::new();
    let server = server_at(&clock);
    let job = create_with_callback(&server, &receiver.url);
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    server.patch(&format!("{path}/cancel"), &user("ann"), json!({})).assert_status(200);
    let received = receiver.wait_for(3, Duration::from_secs(15));
    assert_eq!(received.len(), 3);
    let ids: std::collections::HashSet<_> =
        received.iter().map(|r| r.headers["webhook-id"].clone()).collect();
    assert_eq!(ids.len(), 1, "one webhook-id across retries");
    assert!(received.iter().all(verify));
    assert!(received.iter().all(|r| r.body == received[0].body), "the same body every time");
    let seen = server.wait_for_job(&path, &user("ann"), Duration::from_secs(5), |j| {
        j["callback_status_code"] == 200
    });
    assert_eq!(seen["callback_status_code"], 200);
    assert!(seen["callback_error"].is_null());
    let metrics = server.send(server.request(Method::GET, "/metrics")).text;
    for line in [
        r#"jobs_webhook_deliveries_total{outcome="retried"} 2"#,
        r#"jobs_webhook_deliveries_total{outcome="delivered"} 1"#,
        "jobs_webhook_delivery_duration_seconds_count 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} missing from:\n{metrics}");
    }
    // No fourth attempt, even once any retry delay has passed.
    clock.advance(TimeDelta::hours(1));
    sentinel(&server, &receiver.url);
    assert_eq!(about(&receiver, &job), 3);
}

#[test]
fn an_unreachable_receiver_leaves_callback_error_and_the_job_completed() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/hook", dead.local_addr().unwrap().port());
    drop(dead);
    let server = TestServer::start_with(|c| {
        c.webhook_allow_private = true;
        c.webhook_retry_base_ms = 50;
        c.webhook_max_attempts = 2;
    });
    let job = create_with_callback(&server, &url);
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    let token = user("ann");
    for step in ["pending", "running", "completed"] {
        server.patch(&path, &token, json!({"status": step})).assert_status(200);
    }
    let seen = server
        .wait_for_job(&path, &token, Duration::from_secs(10), |j| !j["callback_error"].is_null());
    assert_eq!(seen["status"], "completed");
    assert!(
        seen["callback_error"].as_str().unwrap().contains("connection"),
        "{}",
        seen["callback_error"]
    );
    assert!(seen["callback_status_code"].is_null());
    assert!(!seen["callback_sent_at"].is_null());
}

#[test]
fn a_non_2xx_answer_is_recorded_as_the_error() {
    let receiver = Receiver::scripted(&[404, 404, 404]);
    let clock = OffsetClock::new();
    let server = TestServer::start_with(|c| {
        c.clock = clock.clock();
        c.webhook_allow_private = true;
        c.webhook_retry_base_ms = 50;
        c.webhook_max_attempts = 3;
    });
    let job = create_with_callback(&server, &receiver.url);
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    server.patch(&format!("{path}/cancel"), &user("ann"), json!({})).assert_status(200);
    assert_eq!(receiver.wait_for(3, Duration::from_secs(10)).len(), 3);
    let seen = server.wait_for_job(&path, &user("ann"), Duration::from_secs(5), |j| {
        j["callback_status_code"] == 404
    });
    assert_eq!(seen["callback_status_code"], 404);
    assert!(seen["callback_error"].as_str().unwrap().contains("404"));
    clock.advance(TimeDelta::hours(1));
    sentinel(&server, &receiver.url);
    assert_eq!(about(&receiver, &job), 3, "gave up after max attempts");
    // Unsigned without a secret.
    assert!(!receiver.received()[0].headers.contains_key("webhook-signature"));
}

#[test]
fn non_terminal_changes_send_nothing() {
    let receiver = Receiver::start();
    let server = server();
    let token = user("ann");
    let job = create_with_callback(&server, &receiver.url);
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    server.patch(&path, &token, json!({"status": "pending"})).assert_status(200);
    server
        .patch(&path, &token, json!({"status": "running", "metadata": {"p": 0.1}}))
        .assert_status(200);
    server.patch(&path, &token, json!({"metadata": {"p": 0.5}, "ttft_ns": 10})).assert_status(200);
    sentinel(&server, &receiver.url);
    assert_eq!(about(&receiver, &job), 0);
    server.patch(&path, &token, json!({"status": "completed"})).assert_status(200);
    assert_eq!(receiver.wait_for(2, Duration::from_secs(10)).len(), 2);
    // A cancel of the finished job changes nothing and sends nothing more.
    server.patch(&format!("{path}/cancel"), &token, json!({})).assert_status(409);
    sentinel(&server, &receiver.url);
    assert_eq!(about(&receiver, &job), 1);
}

#[test]
fn private_targets_are_refused_at_creation_by_default() {
    let server = TestServer::start();
    let token = user("ann");
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://LOCALHOST./hook",
        "http://api.localhost/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
    ] {
        let reply = server.json(Method::POST, "/api/jobs", &token, json!({"callback_url": url}));
        reply.assert_error(422, "validation_error");
        assert!(reply.body["error"]["message"].as_str().unwrap().contains("callback_url"), "{url}");
    }
    // Public addresses, and hosts that do not resolve now, are accepted (delivery checks again).
    for url in ["https://93.184.216.34/hook", "https://hooks.invalid/x"] {
        server
            .json(Method::POST, "/api/jobs", &token, json!({"callback_url": url}))
            .assert_status(201);
    }
    assert_eq!(server.get("/api/jobs", &token).body.as_array().unwrap().len(), 2);
}

#[test]
fn private_targets_are_allowed_when_configured() {
    let server = TestServer::start_with(|c| c.webhook_allow_private = true);
    let reply = server.json(
        Method::POST,
        "/api/jobs",
        &user("ann"),
        json!({"callback_url": "http://127.0.0.1:9/hook"}),
    );
    reply.assert_status(201);
}
