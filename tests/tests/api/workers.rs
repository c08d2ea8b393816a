//! Workers: the jobs:work scope, creating into pending, claims, leases and heartbeats.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use jobs_domain::OffsetClock;
use jobs_tests::receiver::Receiver;
use jobs_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

fn worker(sub: &str) -> String {
    token(sub, "jobs:read jobs:write jobs:work")
}

fn submit(server: &TestServer, token: &str, body: Value) -> String {
    let mut body = body;
    body["status"] = json!("pending");
    let job = server.create(token, body);
    assert_eq!(job["status"], "pending");
    job["id"].as_str().unwrap().to_owned()
}

fn claim(server: &TestServer, token: &str, body: Value) -> Reply {
    server.json(Method::POST, "/api/jobs/claim", token, body)
}

#[test]
fn a_job_can_be_created_straight_into_pending_and_no_other_status() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.create(&ann, json!({"status": "pending"}));
    assert_eq!(job["status"], "pending");
    assert!(job["claimed_by"].is_null() && job["lease_expires_at"].is_null(), "{job}");
    for status in ["created", "running", "completed", "bogus"] {
        let reply = server.json(Method::POST, "/api/jobs", &ann, json!({"status": status}));
        reply.assert_error(422, "validation_error");
    }
    let listed = server.get("/api/jobs", &ann).body;
    assert_eq!(listed.as_array().unwrap().len(), 1, "a refused create wrote nothing");
}

#[test]
fn a_claim_takes_the_oldest_matching_pending_job_and_starts_it() {
    let server = TestServer::start();
    let ann = user("ann");
    let w = worker("w1");
    let _draft = server.create(&ann, json!({}));
    let first = submit(&server, &ann, json!({"job_type": "run"}));
    let second = submit(&server, &ann, json!({"job_type": "batch", "agent_id": "a1"}));
    let third = submit(&server, &ann, json!({"source_id": "f1"}));

    let reply = claim(&server, &w, json!({"job_type": "batch"}));
    reply.assert_status(200);
    assert_eq!(reply.id(), second);
    assert_eq!(reply.body["status"], "running");
    assert_eq!(reply.body["claimed_by"], "w1");
    assert!(reply.header("etag").is_some());
    let lease =
        chrono::DateTime::parse_from_rfc3339(reply.body["lease_expires_at"].as_str().unwrap())
            .unwrap();
    let left = lease.timestamp() - now();
    assert!((55..=61).contains(&left), "default lease is 60 s, {left} s left");

    claim(&server, &w, json!({"agent_id": "a1"})).assert_status(204);
    assert_eq!(claim(&server, &w, json!({"folder_id": "f1"})).id(), third);
    let fourth = submit(&server, &ann, json!({}));
    assert_eq!(claim(&server, &w, json!({})).id(), first, "oldest first");
    assert_eq!(claim(&server, &w, json!({})).id(), fourth);
    let none = claim(&server, &w, json!({}));
    none.assert_status(204);
    assert!(none.text.is_empty());
    for bad in [json!({"lease_seconds": 0}), json!({"lease_seconds": 3601}), json!({"x": 1})] {
        claim(&server, &w, bad).assert_error(422, "validation_error");
    }
    // The route is matched before /api/jobs/{job_id}, under /v1 too.
    server.json(Method::POST, "/v1/jobs/claim", &w, json!({})).assert_status(204);
    server.get("/api/jobs/claim", &w).assert_error(405, "method_not_allowed");
}

#[test]
fn a_plain_token_sees_and_claims_only_its_own_jobs_and_a_worker_sees_the_orgs() {
    let server = TestServer::start();
    let ann = user("ann");
    let bob = user("bob");
    let job = submit(&server, &ann, json!({}));
    let path = format!("/api/jobs/{job}");
    server.get(&path, &bob).assert_error(404, "job_not_found");
    assert_eq!(server.get("/api/jobs", &bob).body, json!([]));
    claim(&server, &bob, json!({})).assert_status(204);
    let other_org = sign(&json!({"sub": "w9", "org": "initech", "exp": now() + 60,
        "scope": "jobs:read jobs:write jobs:work"}));
    claim(&server, &other_org, json!({})).assert_status(204);

    let w = worker("w1");
    assert_eq!(server.get(&path, &w).assert_status(200).body["id"], job.as_str());
    assert_eq!(server.get("/api/jobs", &w).body.as_array().unwrap().len(), 1);
    assert_eq!(claim(&server, &w, json!({})).id(), job);
    server.patch(&path, &w, json!({"metadata": {"progress": 0.5}})).assert_status(200);
    // A worker never cancels or deletes another user's job.
    let cancel = server.patch(&format!("{path}/cancel"), &w, json!({}));
    cancel.assert_error(404, "job_not_found");
    server.patch(&path, &w, json!({"status": "completed"})).assert_status(200);
    server.delete(&path, &w).assert_error(404, "job_not_found");
    server.delete(&path, &ann).assert_status(200);
    // A read-only worker cannot claim.
    let reader = token("w2", "jobs:read jobs:work");
    claim(&server, &reader, json!({})).assert_error(403, "forbidden");
}

#[test]
fn the_claimer_renews_its_lease_and_another_worker_gets_a_conflict() {
    let server = TestServer::start();
    let ann = user("ann");
    let (w1, w2) = (worker("w1"), worker("w2"));
    let job = submit(&server, &ann, json!({}));
    let path = format!("/api/jobs/{job}");
    let claimed = claim(&server, &w1, json!({"lease_seconds": 30}));
    let lease = |j: &Value| {
        chrono::DateTime::parse_from_rfc3339(j["lease_expires_at"].as_str().unwrap()).unwrap()
    };
    let first = lease(&claimed.body);
    let beat =
        server.json(Method::POST, &format!("{path}/heartbeat"), &w1, json!({"lease_seconds": 600}));
    beat.assert_status(200);
    assert!(lease(&beat.body) > first + chrono::TimeDelta::seconds(500), "{}", beat.text);
    assert_ne!(beat.header("etag"), claimed.header("etag"));
    let empty =
        server.send(server.request(Method::POST, &format!("{path}/heartbeat")).bearer_auth(&w1));
    empty.assert_status(200);

    for reply in [
        server.json(Method::POST, &format!("{path}/heartbeat"), &w2, json!({})),
        server.patch(&path, &w2, json!({"metadata": {"progress": 1}})),
    ] {
        reply.assert_error(409, "conflict");
        assert_eq!(reply.body["error"]["details"]["claimed_by"], "w1");
    }
    let update = server.patch(&path, &w1, json!({"status": "completed", "ttft_ns": 5}));
    update.assert_status(200);
    assert!(update.body["lease_expires_at"].is_null());
    assert_eq!(update.body["claimed_by"], "w1");
    let late = server.json(Method::POST, &format!("{path}/heartbeat"), &w1, json!({}));
    late.assert_error(409, "invalid_job_status_transition");
    assert_eq!(late.body["error"]["details"]["current_status"], "completed");
}

#[test]
fn a_lapsed_lease_expires_the_job_and_fires_its_webhook() {
    let receiver = Receiver::start();
    let clock = OffsetClock::new();
    let server = TestServer::start_with(|c| {
        c.webhook_allow_private = true;
        c.clock = clock.clock();
    });
    let ann = user("ann");
    let w = worker("w1");
    let job = submit(&server, &ann, json!({"callback_url": receiver.url}));
    let path = format!("/api/jobs/{job}");
    let claimed = claim(&server, &w, json!({"lease_seconds": 60}));
    assert_eq!(claimed.id(), job);
    clock.advance(TimeDelta::seconds(61));
    let started = Instant::now();
    let expired =
        server.wait_for_job(&path, &ann, Duration::from_secs(7), |j| j["status"] == "expired");
    assert_eq!(expired["status"], "expired", "lease did not lapse: {expired}");
    assert!(started.elapsed() < Duration::from_secs(7));
    assert!(!expired["completed_at"].is_null());
    assert!(expired["lease_expires_at"].is_null());
    let events = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].json["status"], "expired");
    let late = server.patch(&path, &w, json!({"status": "completed"}));
    late.assert_error(409, "invalid_job_status_transition");
}

#[test]
fn progress_updates_by_the_claimer_keep_a_short_lease_alive() {
    let clock = OffsetClock::new();
    let server = TestServer::start_with(|c| c.clock = clock.clock());
    let ann = user("ann");
    let w = worker("w1");
    let job = submit(&server, &ann, json!({}));
    let path = format!("/api/jobs/{job}");
    claim(&server, &w, json!({"lease_seconds": 60})).assert_status(200);
    let mut progress = 0.0;
    for _ in 0..5 {
        // 200 s in all, in steps shorter than the lease.
        clock.advance(TimeDelta::seconds(40));
        progress += 0.05;
        let update = json!({"metadata": {"progress": progress}});
        server.patch(&path, &w, update).assert_status(200);
    }
    // A running job that is due shows when the sweeper has looked after the last jump.
    let canary = server.create(&ann, json!({"timeout_seconds": 1}));
    let canary_path = format!("/api/jobs/{}", canary["id"].as_str().unwrap());
    for step in ["pending", "running"] {
        server.patch(&canary_path, &ann, json!({"status": step})).assert_status(200);
    }
    clock.advance(TimeDelta::seconds(40));
    let swept = server
        .wait_for_job(&canary_path, &ann, Duration::from_secs(5), |j| j["status"] == "expired");
    assert_eq!(swept["status"], "expired", "the sweeper did not run within 5 s");
    assert_eq!(server.get(&path, &ann).body["status"], "running");
}
