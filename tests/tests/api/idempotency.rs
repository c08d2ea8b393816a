//! `Idempotency-Key` on `POST /api/jobs`.

use std::sync::Arc;

use jobs_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

fn create_with_key(server: &TestServer, token: &str, key: &str, body: Value) -> Reply {
    server.send(
        server
            .request(Method::POST, "/api/jobs")
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body),
    )
}

#[test]
fn the_same_key_returns_the_first_job_with_200() {
    let server = TestServer::start();
    let ann = user("ann");
    let first = create_with_key(&server, &ann, "k-1", json!({"metadata": {"a": 1, "b": 2}}));
    first.assert_status(201);
    let again = create_with_key(&server, &ann, "k-1", json!({"metadata": {"b": 2, "a": 1}}));
    again.assert_status(200);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(server.get("/api/jobs", &ann).body.as_array().unwrap().len(), 1);
    // The job it returns is the job as it is now.
    let path = format!("/api/jobs/{}", first.id());
    server.patch(&path, &ann, json!({"status": "pending"})).assert_status(200);
    let later = create_with_key(&server, &ann, "k-1", json!({"metadata": {"a": 1, "b": 2}}));
    later.assert_status(200);
    assert_eq!(later.body["status"], "pending");
}

#[test]
fn the_same_key_with_a_different_body_is_a_conflict() {
    let server = TestServer::start();
    let ann = user("ann");
    create_with_key(&server, &ann, "k-2", json!({"agent_id": "a"})).assert_status(201);
    create_with_key(&server, &ann, "k-2", json!({"agent_id": "b"})).assert_error(409, "conflict");
    assert_eq!(server.get("/api/jobs", &ann).body.as_array().unwrap().len(), 1);
}

#[test]
fn keys_belong_to_the_user_the_job_is_created_for() {
    let server = TestServer::start();
    let a = create_with_key(&server, &user("ann"), "shared", json!({}));
    let b = create_with_key(&server, &user("bob"), "shared", json!({}));
    a.assert_status(201);
    b.assert_status(201);
    assert_ne!(a.body["id"], b.body["id"]);
    assert_eq!(b.body["user_id"], "bob");
}

#[test]
fn a_deleted_jobs_key_creates_a_new_job() {
    let server = TestServer::start();
    let ann = user("ann");
    let first = create_with_key(&server, &ann, "k-3", json!({}));
    let path = format!("/api/jobs/{}", first.id());
    server.patch(&format!("{path}/cancel"), &ann, json!({})).assert_status(200);
    server.delete(&path, &ann).assert_status(200);
    let second = create_with_key(&server, &ann, "k-3", json!({}));
    second.assert_status(201);
    assert_ne!(second.body["id"], first.body["id"]);
}

#[test]
fn simultaneous_requests_with_one_key_create_one_job() {
    let server = Arc::new(TestServer::start());
    let ann = user("ann");
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let server = Arc::clone(&server);
                let ann = ann.clone();
                scope.spawn(move || {
                    create_with_key(&server, &ann, "race", json!({"metadata": {"n": 1}}))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let created = replies.iter().filter(|r| r.status.as_u16() == 201).count();
    let replayed = replies.iter().filter(|r| r.status.as_u16() == 200).count();
    assert_eq!(
        (created, replayed),
        (1, 7),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let ids: std::collections::HashSet<_> = replies.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(server.get("/api/jobs", &ann).body.as_array().unwrap().len(), 1);
}

#[test]
fn a_malformed_key_is_422() {
    let server = TestServer::start();
    let long = "k".repeat(257);
    create_with_key(&server, &user("ann"), &long, json!({})).assert_error(422, "validation_error");
    assert!(server.get("/api/jobs", &user("ann")).body.as_array().unwrap().is_empty());
}
