//! ETags, conditional requests (304, 412) and `Prefer: wait` instead of polling.

use std::time::{Duration, Instant};

use jobs_tests::*;
use reqwest::Method;
use serde_json::json;

fn get_if(server: &TestServer, path: &str, token: &str, etag: &str, prefer: Option<&str>) -> Reply {
    let mut request =
        server.request(Method::GET, path).bearer_auth(token).header("If-None-Match", etag);
    if let Some(prefer) = prefer {
        request = request.header("Prefer", prefer);
    }
    server.send(request)
}

#[test]
fn every_single_job_response_carries_an_etag_that_changes_with_every_change() {
    let server = TestServer::start();
    let ann = user("ann");
    let created = server.json(Method::POST, "/api/jobs", &ann, json!({}));
    let path = format!("/api/jobs/{}", created.id());
    let e0 = created.header("etag").unwrap();
    assert!(e0.starts_with('"') && e0.ends_with('"'), "strong: {e0}");
    assert_eq!(server.get(&path, &ann).header("etag").unwrap(), e0);
    let e1 = server.patch(&path, &ann, json!({"metadata": {"a": 1}})).header("etag").unwrap();
    assert_ne!(e1, e0);
    let e2 = server.patch(&format!("{path}/cancel"), &ann, json!({})).header("etag").unwrap();
    assert_ne!(e2, e1);
    assert_eq!(server.delete(&path, &ann).header("etag").unwrap(), e2);
}

#[test]
fn if_none_match_with_the_current_etag_is_304_without_a_body() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.json(Method::POST, "/api/jobs", &ann, json!({}));
    let path = format!("/api/jobs/{}", job.id());
    let etag = job.header("etag").unwrap();
    let same = get_if(&server, &path, &ann, &etag, None);
    same.assert_status(304);
    assert!(same.text.is_empty());
    assert_eq!(same.header("etag").unwrap(), etag);
    get_if(&server, &path, &ann, "\"nope\"", None).assert_status(200);
    server.patch(&path, &ann, json!({"status": "pending"})).assert_status(200);
    let changed = get_if(&server, &path, &ann, &etag, None);
    changed.assert_status(200);
    assert_eq!(changed.body["status"], "pending");
}

#[test]
fn if_match_with_a_stale_etag_is_412_and_changes_nothing() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.json(Method::POST, "/api/jobs", &ann, json!({"metadata": {"v": 1}}));
    let path = format!("/api/jobs/{}", job.id());
    let stale = job.header("etag").unwrap();
    let fresh = server.patch(&path, &ann, json!({"metadata": {"v": 2}})).header("etag").unwrap();
    let conditional = |method: Method, p: &str, etag: &str| {
        server.send(
            server
                .request(method, p)
                .bearer_auth(&ann)
                .header("If-Match", etag)
                .json(&json!({"metadata": {"v": 3}})),
        )
    };
    conditional(Method::PATCH, &path, &stale).assert_error(412, "precondition_failed");
    conditional(Method::PATCH, &format!("{path}/cancel"), &stale)
        .assert_error(412, "precondition_failed");
    assert_eq!(server.get(&path, &ann).body["metadata"], json!({"v": 2}), "nothing changed");
    let ok = conditional(Method::PATCH, &path, &fresh);
    ok.assert_status(200);
    let now_tag = ok.header("etag").unwrap();
    server.patch(&format!("{path}/cancel"), &ann, json!({})).assert_status(200);
    server
        .send(server.request(Method::DELETE, &path).bearer_auth(&ann).header("If-Match", &now_tag))
        .assert_error(412, "precondition_failed");
    assert_eq!(server.get(&path, &ann).body["status"], "cancelled", "not deleted");
    server
        .send(server.request(Method::DELETE, &path).bearer_auth(&ann).header("If-Match", "*"))
        .assert_status(200);
}

#[test]
fn two_racing_conditional_updates_with_one_etag_never_both_win() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.json(Method::POST, "/api/jobs", &ann, json!({}));
    let path = format!("/api/jobs/{}", job.id());
    let etag = job.header("etag").unwrap();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (server, path, etag, ann) = (&server, &path, &etag, &ann);
                s.spawn(move || {
                    let request = server
                        .request(Method::PATCH, path)
                        .bearer_auth(ann)
                        .header("If-Match", etag.as_str())
                        .json(&json!({"metadata": {"writer": i}}));
                    server.send(request).status.as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 7, "{statuses:?}");
}

#[test]
fn a_waiting_get_returns_the_job_as_soon_as_it_changes() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.json(Method::POST, "/api/jobs", &ann, json!({}));
    let path = format!("/api/jobs/{}", job.id());
    let etag = job.header("etag").unwrap();
    let started = Instant::now();
    let reply = std::thread::scope(|s| {
        let waiter = s.spawn(|| get_if(&server, &path, &ann, &etag, Some("wait=20")));
        // Give the waiter time to be held; a change before that answers it at once too.
        std::thread::sleep(Duration::from_millis(300));
        server.patch(&path, &ann, json!({"metadata": {"tick": 1}})).assert_status(200);
        waiter.join().unwrap()
    });
    reply.assert_status(200);
    assert_eq!(reply.header("preference-applied").as_deref(), Some("wait=20"));
    assert_eq!(reply.body["metadata"], json!({"tick": 1}));
    assert!(started.elapsed() < Duration::from_secs(5), "woken late: {:?}", started.elapsed());
}

#[test]
fn a_waiting_get_on_an_unchanged_job_is_304_after_the_wait() {
    let server = TestServer::start_with(|c| c.max_wait_seconds = 1);
    let ann = user("ann");
    let job = server.json(Method::POST, "/api/jobs", &ann, json!({}));
    let path = format!("/api/jobs/{}", job.id());
    let etag = job.header("etag").unwrap();
    let started = Instant::now();
    let reply = get_if(&server, &path, &ann, &etag, Some("wait=30"));
    reply.assert_status(304);
    assert_eq!(reply.header("preference-applied").as_deref(), Some("wait=1"), "capped");
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
    // Without If-None-Match the preference is ignored.
    let plain = server
        .send(server.request(Method::GET, &path).bearer_auth(&ann).header("Prefer", "wait=5"));
    plain.assert_status(200);
    assert!(plain.header("preference-applied").is_none());
}

#[test]
fn a_waiting_claim_returns_a_job_submitted_meanwhile_and_204_on_timeout() {
    let server = TestServer::start();
    let ann = user("ann");
    let w = token("w1", "jobs:read jobs:write jobs:work");
    let claim = |prefer: &str| {
        server.send(
            server
                .request(Method::POST, "/api/jobs/claim")
                .bearer_auth(&w)
                .header("Prefer", prefer),
        )
    };
    let started = Instant::now();
    let empty = claim("wait=1");
    empty.assert_status(204);
    assert_eq!(empty.header("preference-applied").as_deref(), Some("wait=1"));
    assert!(started.elapsed() >= Duration::from_millis(900));

    let (claimed, id) = std::thread::scope(|s| {
        let waiter = s.spawn(|| claim("wait=20"));
        std::thread::sleep(Duration::from_millis(300));
        let job = server.create(&ann, json!({"status": "pending"}));
        (waiter.join().unwrap(), job["id"].as_str().unwrap().to_owned())
    });
    claimed.assert_status(200);
    assert_eq!(claimed.id(), id);
    assert_eq!(claimed.header("preference-applied").as_deref(), Some("wait=20"));
}
