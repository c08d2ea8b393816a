//! Creating, reading, driving, cancelling and deleting jobs.

use jobs_domain::{JobId, JobStatus, JobUpdate, Metadata, NewJob};
use jobs_tests::*;
use reqwest::Method;
use serde_json::{json, Value};

fn to(status: JobStatus) -> JobUpdate {
    JobUpdate::new(Some(status), None, None, None).unwrap()
}

fn merge(patch: Value) -> JobUpdate {
    let patch: Metadata = serde_json::from_value(patch).unwrap();
    JobUpdate::new(None, Some(patch), None, None).unwrap()
}

const ALL: [&str; 7] =
    ["created", "pending", "running", "completed", "failed", "cancelled", "expired"];
const ALLOWED: [(&str, &str); 6] = [
    ("created", "pending"),
    ("pending", "running"),
    ("running", "completed"),
    ("running", "failed"),
    ("running", "cancelled"),
    ("running", "expired"),
];

/// RFC 3339, UTC with `Z`, six fractional digits: `2026-11-28T20:49:56.504500Z`.
fn is_rfc3339_utc(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 27
            && s.ends_with('Z')
            && s.as_bytes()[19] == b'.'
            && chrono::DateTime::parse_from_rfc3339(s).is_ok()
    })
}

#[test]
fn creating_a_job_returns_201_with_every_field_of_the_contract() {
    let server = TestServer::start();
    let reply = server.send(
        server
            .request(Method::POST, "/api/jobs")
            .bearer_auth(user("ann"))
            .header("X-Project-Id", "proj-1")
            .json(&json!({
                "job_type": "batch", "metadata": {"progress": 0.5, "nested": {"a": [1, 2]}},
                "background": true, "agent_id": "agent-1", "source_id": "src-1",
                "callback_url": "https://example.com/hook", "timeout_seconds": 60
            })),
    );
    reply.assert_status(201);
    let job = &reply.body;
    let id = job["id"].as_str().unwrap();
    assert!(id.starts_with("job-") && id.len() == 40);
    assert_eq!(id, id.to_lowercase());
    assert!(uuid_of(id).is_some());
    assert_eq!(job["status"], "created");
    assert_eq!(job["job_type"], "batch");
    assert_eq!(job["metadata"], json!({"progress": 0.5, "nested": {"a": [1, 2]}}));
    assert_eq!(job["background"], true);
    assert_eq!(job["agent_id"], "agent-1");
    assert_eq!(job["source_id"], "src-1");
    assert_eq!(job["user_id"], "ann");
    assert_eq!(job["project_id"], "proj-1");
    assert_eq!(job["callback_url"], "https://example.com/hook");
    assert_eq!(job["timeout_seconds"], 60);
    assert!(is_rfc3339_utc(&job["created_at"]), "{}", job["created_at"]);
    assert!(is_rfc3339_utc(&job["updated_at"]));
    for field in [
        "completed_at",
        "callback_sent_at",
        "callback_status_code",
        "callback_error",
        "ttft_ns",
        "total_duration_ns",
        "claimed_by",
        "lease_expires_at",
    ] {
        assert!(job[field].is_null(), "{field} should be null");
    }
    let fields: Vec<&String> = job.as_object().unwrap().keys().collect();
    assert_eq!(fields.len(), 21, "{fields:?}");

    let fetched = server.get(&format!("/api/jobs/{id}"), &user("ann"));
    fetched.assert_status(200);
    assert_eq!(&fetched.body, job);
}

fn uuid_of(id: &str) -> Option<()> {
    let rest = id.strip_prefix("job-")?;
    (rest.len() == 36 && rest.chars().all(|c| c == '-' || c.is_ascii_hexdigit())).then_some(())
}

#[test]
fn an_empty_body_creates_a_job_with_the_defaults() {
    let server = TestServer::start();
    let reply = server.send(server.request(Method::POST, "/api/jobs").bearer_auth(user("ann")));
    reply.assert_status(201);
    assert_eq!(reply.body["job_type"], "job");
    assert_eq!(reply.body["metadata"], json!({}));
    assert_eq!(reply.body["background"], false);
    assert!(reply.body["project_id"].is_null());
    let reply = server.json(Method::POST, "/api/jobs", &user("ann"), json!({}));
    reply.assert_status(201);
}

#[test]
fn every_allowed_transition_succeeds_and_records_its_times() {
    let server = TestServer::start();
    let client = server.client(&user("ann"));
    block_on(async {
        for terminal in
            [JobStatus::Completed, JobStatus::Failed, JobStatus::Cancelled, JobStatus::Expired]
        {
            let job = client.create(&NewJob::default()).await.unwrap();
            let mut last = job.clone();
            for next in [JobStatus::Pending, JobStatus::Running, terminal] {
                assert!(last.completed_at.is_none());
                let done = client.update(&job.id, &to(next)).await.unwrap();
                assert_eq!(done.status, next);
                assert!(done.updated_at >= last.updated_at);
                last = done;
            }
            assert!(last.completed_at.is_some_and(|at| at >= last.created_at));
            assert!(last.total_duration_ns.unwrap() >= 0, "filled from running");
        }
    });
    // On the wire, the times are RFC 3339 UTC with six fractional digits.
    let job = server.job_in(&user("ann"), "completed");
    assert!(is_rfc3339_utc(&job["completed_at"]) && is_rfc3339_utc(&job["updated_at"]));
}

#[test]
fn every_refused_transition_is_a_409_that_changes_nothing() {
    let server = TestServer::start();
    let token = user("ann");
    for from in ALL {
        let job = server.job_in(&token, from);
        let id = job["id"].as_str().unwrap().to_owned();
        for to in ALL {
            if ALLOWED.contains(&(from, to)) {
                continue;
            }
            let reply = server.patch(
                &format!("/api/jobs/{id}"),
                &token,
                json!({"status": to, "metadata": {"x": 1}}),
            );
            reply.assert_error(409, "invalid_job_status_transition");
            assert_eq!(reply.body["error"]["details"]["current_status"], from);
            assert_eq!(reply.body["error"]["details"]["requested_status"], to);
            let after = server.get(&format!("/api/jobs/{id}"), &token);
            assert_eq!(after.body, job, "{from} -> {to} changed the job");
        }
    }
}

#[test]
fn a_finished_job_refuses_metadata_and_timings_with_no_requested_status() {
    let server = TestServer::start();
    let token = user("ann");
    for status in ["completed", "failed", "cancelled", "expired"] {
        let job = server.job_in(&token, status);
        let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
        for body in [
            json!({"metadata": {"late": true}}),
            json!({"ttft_ns": 5}),
            json!({"total_duration_ns": 5}),
        ] {
            let reply = server.patch(&path, &token, body);
            reply.assert_error(409, "invalid_job_status_transition");
            assert_eq!(reply.body["error"]["details"]["current_status"], status);
            assert!(reply.body["error"]["details"]["requested_status"].is_null());
        }
        assert_eq!(server.get(&path, &token).body, job);
    }
}

#[test]
fn metadata_is_merged_as_a_json_merge_patch_and_timings_are_kept() {
    let server = TestServer::start();
    let token = user("ann");
    let job =
        server.create(&token, json!({"metadata": {"a": 1, "b": {"c": 2, "d": 3}, "keep": "yes"}}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    let reply = server.patch(
        &path,
        &token,
        json!({"metadata": {"a": null, "b": {"c": 20, "e": 5}, "new": [1]}}),
    );
    reply.assert_status(200);
    assert_eq!(
        reply.body["metadata"],
        json!({"b": {"c": 20, "d": 3, "e": 5}, "keep": "yes", "new": [1]})
    );
    assert_eq!(reply.body["status"], "created");
    assert!(reply.body["updated_at"].as_str() > job["updated_at"].as_str());

    server.patch(&path, &token, json!({"status": "pending"})).assert_status(200);
    server.patch(&path, &token, json!({"status": "running"})).assert_status(200);
    let done = server.patch(
        &path,
        &token,
        json!({"status": "completed", "metadata": {"progress": 1.0}, "ttft_ns": 1234, "total_duration_ns": 99999}),
    );
    done.assert_status(200);
    assert_eq!(done.body["ttft_ns"], 1234);
    assert_eq!(done.body["total_duration_ns"], 99999);
    assert_eq!(done.body["metadata"]["progress"], 1.0);
}

#[test]
fn cancel_withdraws_a_created_pending_or_running_job() {
    let server = TestServer::start();
    let token = user("ann");
    let client = server.client(&token);
    for status in ["created", "pending", "running"] {
        let job = server.job_in(&token, status);
        let id: JobId = job["id"].as_str().unwrap().parse().unwrap();
        block_on(async {
            let cancelled = client.cancel(&id).await.unwrap();
            assert_eq!(cancelled.status, JobStatus::Cancelled);
            assert!(cancelled.completed_at.is_some());
            assert_eq!(client.get(&id).await.unwrap().status, JobStatus::Cancelled);
            // A worker's next update learns of the cancel.
            let late = client.update(&id, &merge(json!({"p": 1}))).await.unwrap_err();
            assert_eq!(late.kind(), Some("invalid_job_status_transition"));
            assert_eq!(late.api().unwrap().current_status(), Some(JobStatus::Cancelled));
        });
    }
}

#[test]
fn cancelling_a_cancelled_job_is_200_and_changes_nothing() {
    let server = TestServer::start();
    let token = user("ann");
    let job = server.job_in(&token, "cancelled");
    let id = job["id"].as_str().unwrap();
    let reply = server
        .send(server.request(Method::PATCH, &format!("/api/jobs/{id}/cancel")).bearer_auth(&token));
    reply.assert_status(200);
    assert_eq!(reply.body, job);
}

#[test]
fn cancelling_a_finished_job_is_a_conflict() {
    let server = TestServer::start();
    let token = user("ann");
    for status in ["completed", "failed", "expired"] {
        let job = server.job_in(&token, status);
        let id = job["id"].as_str().unwrap();
        let reply = server.patch(&format!("/api/jobs/{id}/cancel"), &token, json!({}));
        reply.assert_error(409, "invalid_job_status_transition");
        assert_eq!(reply.body["error"]["details"]["current_status"], status);
        assert_eq!(reply.body["error"]["details"]["requested_status"], "cancelled");
        assert_eq!(server.get(&format!("/api/jobs/{id}"), &token).body, job);
    }
}

#[test]
fn deleting_an_active_job_is_a_conflict_and_keeps_it() {
    let server = TestServer::start();
    let token = user("ann");
    for status in ["created", "pending", "running"] {
        let job = server.job_in(&token, status);
        let id = job["id"].as_str().unwrap();
        let reply = server.delete(&format!("/api/jobs/{id}"), &token);
        reply.assert_error(409, "conflict");
        assert_eq!(reply.body["error"]["details"]["current_status"], status);
        assert_eq!(server.get(&format!("/api/jobs/{id}"), &token).body, job);
    }
}

#[test]
fn deleting_a_finished_job_returns_it_and_removes_it() {
    let server = TestServer::start();
    let token = user("ann");
    let client = server.client(&token);
    for status in ["completed", "failed", "cancelled", "expired"] {
        let job = server.job_in(&token, status);
        let id: JobId = job["id"].as_str().unwrap().parse().unwrap();
        block_on(async {
            let deleted = client.delete(&id).await.unwrap();
            assert_eq!(serde_json::to_value(&deleted).unwrap(), job, "the job as it was");
            assert!(client.get(&id).await.unwrap_err().is_not_found());
            assert!(client.delete(&id).await.unwrap_err().is_not_found());
        });
    }
}

#[test]
fn an_unknown_job_is_404_and_a_malformed_id_is_422() {
    let server = TestServer::start();
    let token = user("ann");
    let unknown = "/api/jobs/job-00000000-0000-7000-8000-000000000000";
    server.get(unknown, &token).assert_error(404, "job_not_found");
    server.patch(unknown, &token, json!({"status": "pending"})).assert_error(404, "job_not_found");
    server
        .patch(&format!("{unknown}/cancel"), &token, json!({}))
        .assert_error(404, "job_not_found");
    server.delete(unknown, &token).assert_error(404, "job_not_found");
    for bad in [
        "nope",
        "job-XYZ",
        "job-0190C2A4-7B1E-7CC3-9A57-7F3C2B1D4E5F",
        "00000000-0000-7000-8000-000000000000",
        "job-%20",
    ] {
        server.get(&format!("/api/jobs/{bad}"), &token).assert_error(422, "validation_error");
        server.delete(&format!("/api/jobs/{bad}"), &token).assert_error(422, "validation_error");
        server
            .patch(&format!("/api/jobs/{bad}/cancel"), &token, json!({}))
            .assert_error(422, "validation_error");
        server
            .patch(&format!("/api/jobs/{bad}"), &token, json!({"status": "pending"}))
            .assert_error(422, "validation_error");
    }
}

#[test]
fn every_route_is_mirrored_under_v1() {
    let server = TestServer::start();
    let token = user("ann");
    let created = server.json(Method::POST, "/v1/jobs", &token, json!({"agent_id": "a"}));
    created.assert_status(201);
    let id = created.id();
    assert_eq!(server.get(&format!("/v1/jobs/{id}"), &token).body["id"], id.as_str());
    assert_eq!(server.get("/v1/jobs", &token).body.as_array().unwrap().len(), 1);
    assert_eq!(server.get("/v1/jobs/", &token).body.as_array().unwrap().len(), 1);
    assert_eq!(server.get("/v1/jobs/active", &token).body.as_array().unwrap().len(), 1);
    server
        .patch(&format!("/v1/jobs/{id}"), &token, json!({"status": "pending"}))
        .assert_status(200);
    server.patch(&format!("/v1/jobs/{id}/cancel"), &token, json!({})).assert_status(200);
    server.delete(&format!("/v1/jobs/{id}"), &token).assert_status(200);
    server.get(&format!("/api/jobs/{id}"), &token).assert_error(404, "job_not_found");
}

#[test]
fn health_and_readiness_answer_without_a_token() {
    let server = TestServer::start();
    let health = server.send(server.request(Method::GET, "/healthz"));
    health.assert_status(200);
    let ready = server.send(server.request(Method::GET, "/readyz"));
    ready.assert_status(200);
    assert_eq!(ready.body["status"], "ok");
}
