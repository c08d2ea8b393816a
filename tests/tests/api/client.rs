//! The Rust client (`jobs-client`) against the real server: jobs, lists, typed errors,
//! waiting and the worker side.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use jobs_client::{ClaimOptions, CreateOptions, Error};
use jobs_domain::{
    CallbackUrl, JobId, JobStatus, JobType, JobUpdate, ListDefaults, ListQuery, Metadata, NewJob,
};
use jobs_tests::*;
use serde_json::json;

fn to(status: JobStatus) -> JobUpdate {
    JobUpdate::new(Some(status), None, None, None).unwrap()
}

fn progress(value: f64) -> JobUpdate {
    let mut patch = Metadata::new();
    patch.insert("progress".into(), json!(value));
    JobUpdate::new(None, Some(patch), None, None).unwrap()
}

#[test]
fn a_created_job_reads_back_the_same_with_its_etag() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let new = NewJob::default().with_job_type(JobType::Batch);
        let options =
            CreateOptions { project_id: Some("proj-1".into()), ..CreateOptions::default() };
        let created = client.create_with(&new, options).await.unwrap();
        assert_eq!(created.status, JobStatus::Created);
        assert_eq!(created.job_type, JobType::Batch);
        assert_eq!(created.user_id, "ann");
        assert_eq!(created.project_id.as_deref(), Some("proj-1"));
        assert!(created.etag.is_some());
        let fetched = client.get(&created.id).await.unwrap();
        assert_eq!(fetched, created);
    })
}

#[test]
fn a_list_stream_follows_link_across_pages() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let mut ids = Vec::new();
        for _ in 0..7 {
            ids.push(client.create(&NewJob::default()).await.unwrap().id);
        }
        let mut query = ListQuery::new(ListDefaults::LIST);
        query.limit = jobs_domain::Limit::new(2).unwrap();
        let first = client.list_page(&query).await.unwrap();
        assert_eq!(first.items.len(), 2);
        assert!(first.next.is_some(), "more pages follow");

        let listed: Vec<JobId> =
            client.list(&query).map_ok(|job| job.id).try_collect().await.unwrap();
        let newest_first: Vec<JobId> = ids.iter().rev().copied().collect();
        assert_eq!(listed, newest_first, "4 pages of at most 2, in order, none repeated");

        query.order = jobs_domain::Order::Asc;
        query.statuses = Some([JobStatus::Created].into());
        let oldest_first: Vec<JobId> =
            client.list(&query).map_ok(|job| job.id).try_collect().await.unwrap();
        assert_eq!(oldest_first, ids);
        query.statuses = Some([JobStatus::Running].into());
        assert!(client.list(&query).try_collect::<Vec<_>>().await.unwrap().is_empty());
    })
}

#[test]
fn errors_are_typed_and_carry_the_servers_error_body() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let missing: JobId = "job-00000000-0000-0000-0000-000000000000".parse().unwrap();
        let err = client.get(&missing).await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        let api = err.api().unwrap();
        assert_eq!(
            (api.status, api.kind(), api.message()),
            (404, "job_not_found", "Job not found")
        );
        assert!(api.request_id.is_some());

        let job = client.create(&NewJob::default()).await.unwrap();
        let err = client.delete(&job.id).await.unwrap_err();
        assert_eq!((err.status(), err.kind()), (Some(409), Some("conflict")));
        assert_eq!(err.api().unwrap().current_status(), Some(JobStatus::Created));
        let err = client.update(&job.id, &to(JobStatus::Running)).await.unwrap_err();
        let api = err.api().unwrap();
        assert_eq!(api.kind(), "invalid_job_status_transition");
        assert_eq!(api.message(), "Cannot transition from 'created' to 'running'");
        assert_eq!(api.details().unwrap()["requested_status"], "running");

        // A callback to a private address is refused by the server, not by the domain type.
        let private = CallbackUrl::parse("http://127.0.0.1:9/hook").unwrap();
        let err = client.create(&NewJob::default().with_callback_url(private)).await.unwrap_err();
        let api = err.api().unwrap();
        assert_eq!(
            (api.status, api.kind(), api.field()),
            (422, "validation_error", Some("callback_url"))
        );
        assert!(err.to_string().contains("must not target a loopback"), "{err}");

        let stale = client.update_if_match(&job.id, &progress(0.5), "\"999\"").await.unwrap_err();
        assert_eq!(stale.kind(), Some("precondition_failed"));
        let unauthorized = server.client("not-a-token").get(&job.id).await.unwrap_err();
        assert!(matches!(unauthorized, Error::Api(ref a) if a.status == 401), "{unauthorized:?}");
    })
}

#[test]
fn cancel_and_delete_return_the_job_and_a_deleted_job_is_not_found() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let job = client.create(&NewJob::default()).await.unwrap();
        let cancelled = client.cancel(&job.id).await.unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        assert!(cancelled.completed_at.is_some());
        assert_eq!(
            client.cancel(&job.id).await.unwrap().status,
            JobStatus::Cancelled,
            "again: 200"
        );
        let deleted = client.delete(&job.id).await.unwrap();
        assert_eq!(deleted.id, job.id);
        assert!(client.get(&job.id).await.unwrap_err().is_not_found());
    })
}

#[test]
fn wait_for_change_returns_the_job_on_a_change_and_none_when_the_wait_passes() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let job = client.create(&NewJob::default()).await.unwrap();
        let etag = job.etag.clone().unwrap();

        let started = Instant::now();
        let unchanged =
            client.wait_for_change(&job.id, &etag, Duration::from_secs(1)).await.unwrap();
        assert_eq!(unchanged, None);
        assert!(started.elapsed() >= Duration::from_millis(900), "held for the wait");

        let submit = to(JobStatus::Pending);
        let (changed, updated) = tokio::join!(
            client.wait_for_change(&job.id, &etag, Duration::from_secs(30)),
            client.update(&job.id, &submit),
        );
        let changed = changed.unwrap().expect("a change, not the end of the wait");
        assert_eq!(changed.status, JobStatus::Pending);
        assert_eq!(changed.etag, updated.unwrap().etag);
        assert_ne!(changed.etag.as_deref(), Some(etag.as_str()));
        assert!(started.elapsed() < Duration::from_secs(20), "answered on the change");
    })
}

#[test]
fn wait_until_finished_follows_the_job_to_its_end() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let job = client.create(&NewJob::default()).await.unwrap();
        let worker = async {
            client.update(&job.id, &to(JobStatus::Pending)).await.unwrap();
            client.update(&job.id, &to(JobStatus::Running)).await.unwrap();
            client.update(&job.id, &progress(0.5)).await.unwrap();
            client.update(&job.id, &to(JobStatus::Completed)).await.unwrap()
        };
        let mut seen = Vec::new();
        let follow = client.follow(&job.id, |j| seen.push(j.status));
        let (finished, last) = tokio::join!(follow, worker);
        let finished = finished.unwrap();
        assert_eq!(finished.status, JobStatus::Completed);
        assert_eq!(finished, last);
        assert_eq!(seen.last(), Some(&JobStatus::Completed));
        // Already finished: at once.
        let again = client.wait_until_finished(&job.id).await.unwrap();
        assert_eq!(again.status, JobStatus::Completed);
    })
}

#[test]
fn a_worker_claims_heartbeats_and_completes_a_job() {
    let server = TestServer::start();
    block_on(async {
        let producer = server.client(&user("ann"));
        let worker = server.client(&token("w1", "jobs:read jobs:write jobs:work"));
        let batch = NewJob::default().with_job_type(JobType::Batch);
        let job = producer.create_with(&batch, CreateOptions::submitted()).await.unwrap();
        assert_eq!(job.status, JobStatus::Pending);

        let options = ClaimOptions {
            job_type: Some(JobType::Batch),
            lease_seconds: Some(30),
            ..ClaimOptions::default()
        };
        let claimed = worker.claim(&options).await.unwrap().expect("a pending job");
        assert_eq!((claimed.id, claimed.status), (job.id, JobStatus::Running));
        assert_eq!(claimed.claimed_by.as_deref(), Some("w1"));
        let renewed = worker.heartbeat(&claimed.id, Some(600)).await.unwrap();
        let (before, after) =
            (claimed.lease_expires_at.unwrap(), renewed.lease_expires_at.unwrap());
        assert!(after > before + chrono::TimeDelta::seconds(500), "now 600 s: {before} -> {after}");
        assert_eq!(worker.claim(&options).await.unwrap(), None, "nothing else is pending");

        // A held claim gets a job submitted while it waits.
        let held = ClaimOptions { wait: Some(Duration::from_secs(20)), ..options.clone() };
        let (second, submitted) = tokio::join!(
            worker.claim(&held),
            producer.create_with(&batch, CreateOptions::submitted())
        );
        assert_eq!(second.unwrap().map(|j| j.id), Some(submitted.unwrap().id));

        let done = JobUpdate::new(Some(JobStatus::Completed), None, Some(5), None).unwrap();
        let finished = worker.update(&claimed.id, &done).await.unwrap();
        assert_eq!((finished.status, finished.ttft_ns), (JobStatus::Completed, Some(5)));
        let err = worker.heartbeat(&claimed.id, None).await.unwrap_err();
        assert_eq!(err.api().unwrap().current_status(), Some(JobStatus::Completed));
    })
}

#[test]
fn a_jobs_history_is_a_stream_of_domain_events() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let job = client.create(&NewJob::default()).await.unwrap();
        client.update(&job.id, &progress(0.1)).await.unwrap();
        client.update(&job.id, &to(JobStatus::Pending)).await.unwrap();
        let history: Vec<_> = client.history(&job.id).try_collect().await.unwrap();
        let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, ["job.created", "job.updated", "job.status_changed"]);
        assert!(history.iter().all(|e| e.job_id == job.id && e.actor == "ann"));
    })
}
