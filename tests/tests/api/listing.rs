//! Lists: filters, keyset cursors, order, limits and the Link header.

use std::collections::HashSet;

use jobs_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

fn ids(reply: &Reply) -> Vec<String> {
    reply.assert_status(200);
    reply.body.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect()
}

/// Creates `n` jobs and returns their ids, oldest first.
fn make(server: &TestServer, token: &str, n: usize) -> Vec<String> {
    (0..n).map(|_| server.create(token, json!({}))["id"].as_str().unwrap().to_owned()).collect()
}

fn rev(v: &[String]) -> Vec<String> {
    v.iter().rev().cloned().collect()
}

#[test]
fn lists_are_newest_first_by_default_and_oldest_first_on_request() {
    let server = TestServer::start();
    let token = user("ann");
    let jobs = make(&server, &token, 5);
    assert_eq!(ids(&server.get("/api/jobs", &token)), rev(&jobs));
    assert_eq!(ids(&server.get("/api/jobs?order=desc", &token)), rev(&jobs));
    assert_eq!(ids(&server.get("/api/jobs?order=asc", &token)), jobs);
    assert_eq!(ids(&server.get("/api/jobs?order_by=created_at&order=asc", &token)), jobs);
}

#[test]
fn the_deprecated_ascending_flag_overrides_order() {
    let server = TestServer::start();
    let token = user("ann");
    let jobs = make(&server, &token, 3);
    assert_eq!(ids(&server.get("/api/jobs?order=desc&ascending=true", &token)), jobs);
    assert_eq!(ids(&server.get("/api/jobs?ascending=false&order=asc", &token)), rev(&jobs));
    assert_eq!(ids(&server.get("/api/jobs?ascending=true", &token)), jobs);
}

#[test]
fn before_and_after_cursors_select_older_and_newer_jobs_in_either_order() {
    let server = TestServer::start();
    let token = user("ann");
    let j = make(&server, &token, 7);
    // before = older than, after = newer than, whatever the order.
    assert_eq!(ids(&server.get(&format!("/api/jobs?before={}", j[4]), &token)), rev(&j[..4]));
    assert_eq!(
        ids(&server.get(&format!("/api/jobs?before={}&order=asc", j[4]), &token)),
        j[..4].to_vec()
    );
    assert_eq!(ids(&server.get(&format!("/api/jobs?after={}", j[4]), &token)), rev(&j[5..]));
    assert_eq!(
        ids(&server.get(&format!("/api/jobs?after={}&order=asc", j[4]), &token)),
        j[5..].to_vec()
    );
    // Both: the range between them.
    let between = format!("/api/jobs?after={}&before={}", j[1], j[5]);
    assert_eq!(ids(&server.get(&between, &token)), rev(&j[2..5]));
    assert_eq!(ids(&server.get(&format!("{between}&order=asc"), &token)), j[2..5].to_vec());
    // With a limit, desc takes the newest of the range, asc the oldest.
    assert_eq!(
        ids(&server.get(&format!("{between}&limit=2"), &token)),
        vec![j[4].clone(), j[3].clone()]
    );
    assert_eq!(
        ids(&server.get(&format!("{between}&limit=2&order=asc"), &token)),
        vec![j[2].clone(), j[3].clone()]
    );
    // Adjacent cursors: an empty range, not an error.
    assert!(
        ids(&server.get(&format!("/api/jobs?after={}&before={}", j[1], j[2]), &token)).is_empty()
    );
}

#[test]
fn bad_cursors_are_400_invalid_cursor() {
    let server = TestServer::start();
    let ann = user("ann");
    let j = make(&server, &ann, 3);
    let bobs = server.create(&user("bob"), json!({}))["id"].as_str().unwrap().to_owned();
    let unknown = "job-00000000-0000-7000-8000-000000000000";
    for query in [
        format!("before={unknown}"),
        format!("after={unknown}"),
        format!("before={bobs}"),
        format!("after={bobs}"),
        "before=not-a-job".to_owned(),
        "after=job-123".to_owned(),
        format!("before={}", j[0].to_uppercase()),
        format!("after={}&before={}", j[2], j[0]),
        format!("after={}&before={}", j[1], j[1]),
    ] {
        server.get(&format!("/api/jobs?{query}"), &ann).assert_error(400, "invalid_cursor");
    }
    // An admin of the same org may use bob's job as a cursor.
    server.get(&format!("/api/jobs?before={bobs}"), &admin("root")).assert_status(200);
}

#[test]
fn limits_outside_one_to_a_thousand_are_422() {
    let server = TestServer::start();
    let token = user("ann");
    make(&server, &token, 3);
    for bad in ["0", "-1", "1001", "abc", "1.5", "", "99999999999999999999999"] {
        server.get(&format!("/api/jobs?limit={bad}"), &token).assert_error(422, "validation_error");
        server
            .get(&format!("/api/jobs/active?limit={bad}"), &token)
            .assert_error(422, "validation_error");
    }
    assert_eq!(ids(&server.get("/api/jobs?limit=1", &token)).len(), 1);
    assert_eq!(ids(&server.get("/api/jobs?limit=1000", &token)).len(), 3);
}

#[test]
fn the_default_page_is_100_jobs_and_50_on_the_active_route() {
    let server = TestServer::start();
    let token = user("ann");
    make(&server, &token, 101);
    let page = server.get("/api/jobs", &token);
    assert_eq!(ids(&page).len(), 100);
    assert!(page.header("link").is_some());
    let active = server.get("/api/jobs/active", &token);
    assert_eq!(ids(&active).len(), 50);
}

#[test]
fn a_link_header_walk_sees_every_job_exactly_once() {
    let server = TestServer::start();
    let token = user("ann");
    let jobs = make(&server, &token, 7);
    for (query, expected) in [("order=desc", rev(&jobs)), ("order=asc", jobs.clone())] {
        let mut seen = Vec::new();
        let mut next = Some(format!("/api/jobs?limit=3&{query}"));
        let mut pages = 0;
        while let Some(path) = next.take() {
            let reply = server.get(&path, &token);
            seen.extend(ids(&reply));
            pages += 1;
            next = reply.header("link").map(|link| {
                assert!(link.ends_with("rel=\"next\""), "{link}");
                let target = link.split(['<', '>']).nth(1).unwrap().to_owned();
                assert!(target.starts_with("/api/jobs?"), "{target}");
                assert!(target.contains("limit=3"), "filters are kept: {target}");
                target
            });
            assert!(pages <= 3, "too many pages");
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, expected);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);
    }
}

#[test]
fn the_link_header_keeps_filters_and_the_v1_prefix() {
    let server = TestServer::start();
    let token = user("ann");
    for _ in 0..3 {
        server.create(&token, json!({"agent_id": "a1"}));
        server.create(&token, json!({"agent_id": "a2"}));
    }
    let mut seen = 0;
    let mut next = Some("/v1/jobs/?agent_id=a1&limit=2".to_owned());
    while let Some(path) = next.take() {
        let reply = server.get(&path, &token);
        for job in reply.body.as_array().unwrap() {
            assert_eq!(job["agent_id"], "a1");
            seen += 1;
        }
        next = reply.header("link").map(|l| l.split(['<', '>']).nth(1).unwrap().to_owned());
        if let Some(n) = &next {
            assert!(n.starts_with("/v1/jobs/?"), "{n}");
        }
    }
    assert_eq!(seen, 3);
    // The last page carries no Link.
    let all = server.get("/api/jobs?agent_id=a1&limit=3", &token);
    assert!(all.header("link").is_none());
}

#[test]
fn status_filters_may_be_repeated_or_comma_separated() {
    let server = TestServer::start();
    let token = user("ann");
    let created = server.job_in(&token, "created")["id"].as_str().unwrap().to_owned();
    let running = server.job_in(&token, "running")["id"].as_str().unwrap().to_owned();
    let failed = server.job_in(&token, "failed")["id"].as_str().unwrap().to_owned();
    let done = server.job_in(&token, "completed")["id"].as_str().unwrap().to_owned();
    let set = |r: &Reply| ids(r).into_iter().collect::<HashSet<_>>();
    let expect = |v: &[&String]| v.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
    assert_eq!(set(&server.get("/api/jobs?status=running", &token)), expect(&[&running]));
    assert_eq!(
        set(&server.get("/api/jobs?status=running&status=failed", &token)),
        expect(&[&running, &failed])
    );
    assert_eq!(
        set(&server.get("/api/jobs?status=running,failed", &token)),
        expect(&[&running, &failed])
    );
    assert_eq!(
        set(&server.get("/api/jobs?status=created,running&status=completed", &token)),
        expect(&[&created, &running, &done])
    );
    server.get("/api/jobs?status=done", &token).assert_error(422, "validation_error");
    server.get("/api/jobs?status=running,", &token).assert_error(422, "validation_error");
}

#[test]
fn active_lists_only_created_pending_and_running_jobs() {
    let server = TestServer::start();
    let token = user("ann");
    let mut active = Vec::new();
    for status in ["created", "pending", "running", "completed", "failed", "cancelled", "expired"] {
        let id = server.job_in(&token, status)["id"].as_str().unwrap().to_owned();
        if ["created", "pending", "running"].contains(&status) {
            active.push(id);
        }
    }
    assert_eq!(ids(&server.get("/api/jobs?active=true", &token)), rev(&active));
    assert_eq!(ids(&server.get("/api/jobs/active", &token)), active, "oldest first by default");
    assert_eq!(ids(&server.get("/api/jobs/active?order=desc", &token)), rev(&active));
    assert_eq!(ids(&server.get("/api/jobs?active=false", &token)).len(), 7);
    assert_eq!(
        ids(&server.get("/api/jobs?active=true&status=running,failed", &token)),
        vec![active[2].clone()]
    );
    assert!(ids(&server.get("/api/jobs?active=true&status=failed", &token)).is_empty());
    server.get("/api/jobs?active=maybe", &token).assert_error(422, "validation_error");
}

#[test]
fn job_type_agent_folder_and_source_filters_select_their_jobs() {
    let server = TestServer::start();
    let token = user("ann");
    let batch =
        server.create(&token, json!({"job_type": "batch", "agent_id": "ag", "source_id": "s1"}));
    let run = server.create(&token, json!({"job_type": "run", "source_id": "s2"}));
    let plain = server.create(&token, json!({}));
    let one = |path: &str| ids(&server.get(path, &token));
    let id = |j: &Value| j["id"].as_str().unwrap().to_owned();
    assert_eq!(one("/api/jobs?job_type=batch"), vec![id(&batch)]);
    assert_eq!(one("/api/jobs?job_type=run"), vec![id(&run)]);
    assert_eq!(one("/api/jobs?job_type=job"), vec![id(&plain)]);
    assert_eq!(one("/api/jobs?agent_id=ag"), vec![id(&batch)]);
    assert_eq!(one("/api/jobs?folder_id=s2"), vec![id(&run)]);
    assert_eq!(one("/api/jobs?source_id=s1"), vec![id(&batch)]);
    assert_eq!(one("/api/jobs?source_id=s1&folder_id=s1"), vec![id(&batch)]);
    assert!(one("/api/jobs?agent_id=nobody").is_empty());
    server.get("/api/jobs?source_id=s1&folder_id=s2", &token).assert_error(422, "validation_error");
    server.get("/api/jobs?job_type=task", &token).assert_error(422, "validation_error");
    server.get("/api/jobs?order=sideways", &token).assert_error(422, "validation_error");
    server.get("/api/jobs?order_by=updated_at", &token).assert_error(422, "validation_error");
}

#[test]
fn the_project_header_sets_and_filters_the_project() {
    let server = TestServer::start();
    let token = user("ann");
    let in_project = |project: &str| {
        let reply = server.send(
            server
                .request(Method::POST, "/api/jobs")
                .bearer_auth(&token)
                .header("X-Project-Id", project)
                .json(&json!({})),
        );
        reply.assert_status(201);
        assert_eq!(reply.body["project_id"], project);
        reply.id()
    };
    let a = in_project("p-a");
    let b = in_project("p-b");
    server.create(&token, json!({}));
    let list = |project: &str| {
        ids(&server.send(
            server
                .request(Method::GET, "/api/jobs")
                .bearer_auth(&token)
                .header("X-Project-Id", project),
        ))
    };
    assert_eq!(list("p-a"), vec![a]);
    assert_eq!(list("p-b"), vec![b]);
    assert!(list("p-c").is_empty());
    assert_eq!(ids(&server.get("/api/jobs", &token)).len(), 3);
}
