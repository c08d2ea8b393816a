//! A job's history: every change and webhook attempt, recorded with the change.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use jobs_domain::OffsetClock;
use jobs_tests::receiver::Receiver;
use jobs_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

fn history(server: &TestServer, id: &str, token: &str) -> Vec<Value> {
    let reply = server.get(&format!("/api/jobs/{id}/events"), token);
    reply.assert_status(200);
    reply.body.as_array().unwrap().clone()
}

/// Polls the history until `done` holds for it (or 10 s pass).
fn history_until(
    server: &TestServer,
    id: &str,
    token: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = history(server, id, token);
        if done(&events) || Instant::now() >= deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

#[test]
fn a_full_lifecycle_with_a_webhook_is_recorded_in_order_with_actors_and_request_ids() {
    let receiver = Receiver::scripted(&[500]);
    let server = TestServer::start_with(|c| {
        c.webhook_allow_private = true;
        c.webhook_retry_base_ms = 50;
    });
    let ann = user("ann");
    let job = server.create(&ann, json!({"callback_url": receiver.url}));
    let id = job["id"].as_str().unwrap().to_owned();
    let path = format!("/api/jobs/{id}");
    server.patch(&path, &ann, json!({"status": "pending"})).assert_status(200);
    let worker = user("ann");
    let running = server.send(
        server
            .request(Method::PATCH, &path)
            .bearer_auth(&worker)
            .header("x-request-id", "req-run-1")
            .json(&json!({"status": "running"})),
    );
    running.assert_status(200);
    server
        .patch(&path, &ann, json!({"metadata": {"progress": 0.5}, "ttft_ns": 7}))
        .assert_status(200);
    server.patch(&path, &ann, json!({"status": "completed"})).assert_status(200);

    let events = history_until(&server, &id, &ann, |e| {
        e.iter().filter(|e| e["type"] == "webhook.attempted").count() >= 2
    });
    assert_eq!(
        types(&events),
        [
            "job.created",
            "job.status_changed",
            "job.status_changed",
            "job.updated",
            "job.status_changed",
            "webhook.attempted",
            "webhook.attempted"
        ],
        "{events:#?}"
    );
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids not increasing: {ids:?}");
    assert!(events.iter().all(|e| e["job_id"] == id.as_str()));
    assert_eq!(events[0]["data"], json!({"status": "created"}));
    assert_eq!(events[0]["actor"], "ann");
    assert_eq!(events[1]["data"], json!({"from": "created", "to": "pending", "reason": "update"}));
    assert_eq!(events[2]["data"], json!({"from": "pending", "to": "running", "reason": "update"}));
    assert_eq!(events[2]["request_id"], "req-run-1");
    assert_eq!(events[3]["data"], json!({"fields": ["metadata", "ttft_ns"]}));
    assert_eq!(events[4]["data"]["to"], "completed");
    // The dispatcher's attempts: a 500, then a 200.
    let (first, second) = (&events[5], &events[6]);
    assert_eq!(first["actor"], "system");
    assert!(first["request_id"].is_null());
    assert_eq!(first["data"]["attempt"], 1);
    assert_eq!(first["data"]["status_code"], 500);
    assert!(first["data"]["next_attempt_at"].is_string(), "{first}");
    assert!(first["data"]["duration_ms"].is_i64());
    assert_eq!(second["data"]["attempt"], 2);
    assert_eq!(second["data"]["status_code"], 200);
    assert!(second["data"]["error"].is_null() && second["data"]["next_attempt_at"].is_null());
    for event in &events {
        let at = event["at"].as_str().unwrap();
        assert!(at.ends_with('Z') && at.len() == 27, "not RFC 3339 with microseconds: {at}");
    }
}

#[test]
fn cancel_and_expiry_are_recorded_with_their_reasons() {
    let clock = OffsetClock::new();
    let server = TestServer::start_with(|c| c.clock = clock.clock());
    let ann = user("ann");
    let job = server.job_in(&ann, "pending");
    let id = job["id"].as_str().unwrap();
    server.patch(&format!("/api/jobs/{id}/cancel"), &ann, json!({})).assert_status(200);
    let events = history(&server, id, &ann);
    assert_eq!(
        events[2]["data"],
        json!({"from": "pending", "to": "cancelled", "reason": "cancel"})
    );

    let job = server.create(&ann, json!({"timeout_seconds": 3600}));
    let id = job["id"].as_str().unwrap();
    for status in ["pending", "running"] {
        server
            .patch(&format!("/api/jobs/{id}"), &ann, json!({"status": status}))
            .assert_status(200);
    }
    clock.advance(TimeDelta::seconds(3601));
    let events = history_until(&server, id, &ann, |e| e.len() >= 4);
    assert_eq!(events[3]["data"], json!({"from": "running", "to": "expired", "reason": "timeout"}));
    assert_eq!(events[3]["actor"], "system");
}

#[test]
fn history_pages_follow_the_link_and_bad_parameters_are_422() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.job_in(&ann, "completed");
    let id = job["id"].as_str().unwrap();
    let all = history(&server, id, &ann);
    assert_eq!(all.len(), 4);
    let mut seen = Vec::new();
    let mut next = Some(format!("/api/jobs/{id}/events?limit=3"));
    while let Some(path) = next.take() {
        let reply = server.get(&path, &ann);
        reply.assert_status(200);
        seen.extend(reply.body.as_array().unwrap().iter().cloned());
        next = reply
            .header("link")
            .map(|l| l.trim_start_matches('<').split('>').next().unwrap().to_owned());
    }
    assert_eq!(seen, all);
    let after = all[1]["id"].as_i64().unwrap();
    let rest = server.get(&format!("/api/jobs/{id}/events?after={after}"), &ann);
    assert_eq!(rest.body.as_array().unwrap()[..], all[2..]);
    for bad in ["limit=0", "limit=1001", "limit=x", "after=-1", "after=1.5"] {
        server
            .get(&format!("/api/jobs/{id}/events?{bad}"), &ann)
            .assert_error(422, "validation_error");
    }
    server.get("/api/jobs/not-a-job/events", &ann).assert_error(422, "validation_error");
}

#[test]
fn another_users_or_organizations_job_history_is_404() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.create(&ann, json!({}));
    let path = format!("/api/jobs/{}/events", job["id"].as_str().unwrap());
    server.get(&path, &user("bob")).assert_error(404, "job_not_found");
    let other_org =
        sign(&json!({"sub": "ann", "org": "initech", "exp": now() + 60, "scope": "jobs:read"}));
    server.get(&path, &other_org).assert_error(404, "job_not_found");
    server.get(&path, &admin("root")).assert_status(200);
}

#[test]
fn a_deleted_jobs_history_goes_with_it() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.job_in(&ann, "completed");
    let id = job["id"].as_str().unwrap();
    server.delete(&format!("/api/jobs/{id}"), &ann).assert_status(200);
    server.get(&format!("/api/jobs/{id}/events"), &ann).assert_error(404, "job_not_found");
}

#[test]
fn quotes_backslashes_and_non_ascii_in_an_events_values_are_recorded_exactly() {
    // On PostgreSQL a change's event is sent with its COMMIT as escaped literals.
    let server = TestServer::start();
    let odd = r#"o'brien \ "q" ü😀 '); --"#;
    let token = user(odd);
    let job = server.create(&token, json!({"agent_id": odd}));
    let id = job["id"].as_str().unwrap().to_owned();
    let request_id = r"req-'\-1";
    let changed = server.send(
        server
            .request(Method::PATCH, &format!("/api/jobs/{id}"))
            .bearer_auth(&token)
            .header("x-request-id", request_id)
            .json(&json!({"status": "pending", "metadata": {"note": odd}})),
    );
    changed.assert_status(200);
    let events = history(&server, &id, &token);
    assert_eq!(types(&events), ["job.created", "job.status_changed"], "{events:#?}");
    // The create's event went with the group-commit writer's batch, the change's with its
    // own transaction.
    assert_eq!(events[0]["actor"], odd);
    let change = &events[1];
    assert_eq!(change["actor"], odd);
    assert_eq!(change["request_id"], request_id);
    assert!(change["id"].as_i64().unwrap() > events[0]["id"].as_i64().unwrap());
}
