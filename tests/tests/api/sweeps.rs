//! Expiry and retention.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use jobs_domain::{
    CallbackUrl, JobStatus, JobUpdate, NewJob, OffsetClock, Owner, TimeoutSeconds, Visibility,
};
use jobs_store::{DatabaseUrl, JobStore, PoolOptions};
use jobs_tests::db::TestDatabase;
use jobs_tests::receiver::Receiver;
use jobs_tests::*;
use serde_json::json;

#[test]
fn a_running_job_past_its_timeout_expires_within_seconds_and_fires_its_webhook() {
    let receiver = Receiver::start();
    let clock = OffsetClock::new();
    let server = TestServer::start_with(|c| {
        c.webhook_allow_private = true;
        c.clock = clock.clock();
    });
    let token = user("ann");
    let job = server.create(&token, json!({"timeout_seconds": 3600, "callback_url": receiver.url}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    server.patch(&path, &token, json!({"status": "pending"})).assert_status(200);
    let running = server.patch(&path, &token, json!({"status": "running"}));
    running.assert_status(200);
    clock.advance(TimeDelta::seconds(3601));
    let expired =
        server.wait_for_job(&path, &token, Duration::from_secs(5), |j| j["status"] == "expired");
    assert_eq!(expired["status"], "expired", "not expired within 5 s");
    assert!(!expired["completed_at"].is_null());
    assert!(expired["total_duration_ns"].as_i64().unwrap() >= 3_600_000_000_000);
    receiver.wait_for(1, Duration::from_secs(5));
    // A second job, due only after a further jump, expires and has its webhook delivered: by
    // then the sweeper has looked again and the dispatcher has claimed every delivery due
    // before it, so a duplicate (a second expiry, a second delivery) has had its chance.
    let canary = server.create(&token, json!({"timeout_seconds": 1, "callback_url": receiver.url}));
    let canary_path = format!("/api/jobs/{}", canary["id"].as_str().unwrap());
    for step in ["pending", "running"] {
        server.patch(&canary_path, &token, json!({"status": step})).assert_status(200);
    }
    clock.advance(TimeDelta::hours(1));
    let delivered = server.wait_for_job(&canary_path, &token, Duration::from_secs(10), |j| {
        !j["callback_status_code"].is_null()
    });
    assert_eq!(delivered["callback_status_code"], 200, "the second job's webhook was not sent");
    let events: Vec<_> =
        receiver.received().into_iter().filter(|r| r.json["job_id"] == job["id"]).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].json["status"], "expired");
    assert_eq!(events[0].json["job_id"], job["id"]);
    // The worker that reports late learns of it.
    let late = server.patch(&path, &token, json!({"status": "completed"}));
    late.assert_error(409, "invalid_job_status_transition");
    assert_eq!(late.body["error"]["details"]["current_status"], "expired");
}

#[test]
fn jobs_without_a_timeout_or_not_running_never_expire() {
    let clock = OffsetClock::new();
    let server = TestServer::start_with(|c| c.clock = clock.clock());
    let token = user("ann");
    let untimed = server.job_in(&token, "running");
    let pending = server.create(&token, json!({"timeout_seconds": 1}));
    let pending_path = format!("/api/jobs/{}", pending["id"].as_str().unwrap());
    server.patch(&pending_path, &token, json!({"status": "pending"})).assert_status(200);
    let long = server.create(&token, json!({"timeout_seconds": 3600}));
    let long_path = format!("/api/jobs/{}", long["id"].as_str().unwrap());
    for step in ["pending", "running"] {
        server.patch(&long_path, &token, json!({"status": step})).assert_status(200);
    }
    // A running job that is due shows when the sweeper has looked after the jump.
    let canary = server.create(&token, json!({"timeout_seconds": 1}));
    let canary_path = format!("/api/jobs/{}", canary["id"].as_str().unwrap());
    for step in ["pending", "running"] {
        server.patch(&canary_path, &token, json!({"status": step})).assert_status(200);
    }
    clock.advance(TimeDelta::minutes(10));
    let swept = server
        .wait_for_job(&canary_path, &token, Duration::from_secs(5), |j| j["status"] == "expired");
    assert_eq!(swept["status"], "expired", "the sweeper did not run within 5 s");
    assert_eq!(
        server.get(&format!("/api/jobs/{}", untimed["id"].as_str().unwrap()), &token).body
            ["status"],
        "running"
    );
    assert_eq!(server.get(&pending_path, &token).body["status"], "pending");
    assert_eq!(server.get(&long_path, &token).body["status"], "running");
}

fn open(db: &TestDatabase, clock: &OffsetClock) -> JobStore {
    JobStore::open(&DatabaseUrl::parse(db.url()).unwrap(), &PoolOptions::default())
        .unwrap()
        .with_clock(clock.clock())
}

fn drive(store: &JobStore, id: jobs_domain::JobId, steps: &[JobStatus]) {
    let vis = Visibility::organization("org");
    for step in steps {
        let update = JobUpdate::new(Some(*step), None, None, None).unwrap();
        store.update(&vis, id, &update).unwrap();
    }
}

#[test]
fn racing_sweepers_expire_each_job_exactly_once() {
    let db = TestDatabase::new();
    let clock = OffsetClock::new();
    let stores = [open(&db, &clock), open(&db, &clock)];
    let owner = Owner::new("org", "ann", None);
    let new = NewJob::default()
        .with_timeout_seconds(TimeoutSeconds::new(3600).unwrap())
        .with_callback_url(CallbackUrl::parse("https://example.com/h").unwrap());
    let mut ids = Vec::new();
    for _ in 0..150 {
        let id = stores[0].create(owner.clone(), new.clone(), None).unwrap().job.id;
        drive(&stores[0], id, &[JobStatus::Pending, JobStatus::Running]);
        ids.push(id);
    }
    assert_eq!(stores[1].expire_due(100).unwrap(), 0, "not due yet");
    clock.advance(TimeDelta::seconds(3601));
    let counts: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let store = stores[i % 2].clone();
                scope.spawn(move || {
                    let mut total = 0;
                    loop {
                        let n = store.expire_due(20).unwrap();
                        total += n;
                        if n == 0 {
                            break total;
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(counts.iter().sum::<usize>(), ids.len(), "each job expired once: {counts:?}");
    let vis = Visibility::organization("org");
    for id in &ids {
        assert_eq!(stores[0].get(&vis, *id).unwrap().status, JobStatus::Expired);
    }
    assert_eq!(stores[0].pending_deliveries().unwrap(), ids.len() as i64, "one webhook per job");
    assert_eq!(stores[1].expire_due(100).unwrap(), 0);
}

#[test]
fn one_unreadable_row_does_not_stop_other_jobs_from_expiring() {
    let db = TestDatabase::new();
    let clock = OffsetClock::new();
    let store = open(&db, &clock);
    let owner = Owner::new("org", "ann", None);
    let new = NewJob::default().with_timeout_seconds(TimeoutSeconds::new(3600).unwrap());
    let broken = store.create(owner.clone(), new.clone(), None).unwrap().job.id;
    let healthy = store.create(owner, new, None).unwrap().job.id;
    for id in [broken, healthy] {
        drive(&store, id, &[JobStatus::Pending, JobStatus::Running]);
    }
    db.execute(&format!("UPDATE jobs SET metadata = 'not json' WHERE id = '{broken}'"));
    clock.advance(TimeDelta::seconds(3601));
    assert_eq!(store.expire_due(100).unwrap(), 1);
    let vis = Visibility::organization("org");
    assert_eq!(store.get(&vis, healthy).unwrap().status, JobStatus::Expired);
}

#[test]
fn retention_purges_only_finished_jobs_older_than_the_limit() {
    let db = TestDatabase::new();
    let store = open(&db, &OffsetClock::new());
    let owner = Owner::new("org", "ann", None);
    let make = |steps: &[JobStatus], key: &str| {
        let id = store.create(owner.clone(), NewJob::default(), Some(key)).unwrap().job.id;
        drive(&store, id, steps);
        id
    };
    let done = [JobStatus::Pending, JobStatus::Running, JobStatus::Completed];
    let old_done = make(&done, "k1");
    let old_failed = make(&[JobStatus::Pending, JobStatus::Running, JobStatus::Failed], "k2");
    let recent_done = make(&done, "k3");
    let old_active = make(&[JobStatus::Pending], "k4");
    // Age them behind the store's back.
    for id in [old_done, old_failed] {
        db.execute(&format!(
            "UPDATE jobs SET completed_at = '2020-01-01 00:00:00' WHERE id = '{id}'"
        ));
    }
    db.execute(&format!(
        "UPDATE jobs SET created_at = '2020-01-01 00:00:00' WHERE id = '{old_active}'"
    ));
    let cutoff = jobs_domain::now() - chrono::TimeDelta::days(7);
    assert_eq!(store.purge_finished_before(cutoff, 1).unwrap(), 1, "bounded batches");
    assert_eq!(store.purge_finished_before(cutoff, 100).unwrap(), 1);
    assert_eq!(store.purge_finished_before(cutoff, 100).unwrap(), 0);
    let vis = Visibility::organization("org");
    assert!(store.get(&vis, old_done).is_err());
    assert!(store.get(&vis, old_failed).is_err());
    assert!(store.get(&vis, recent_done).is_ok());
    assert!(store.get(&vis, old_active).is_ok());
    // A finished job whose webhook is still pending is kept until it is delivered.
    let hook = CallbackUrl::parse("https://example.com/h").unwrap();
    let with_hook = NewJob::default().with_callback_url(hook);
    let waiting = store.create(owner.clone(), with_hook, None).unwrap().job.id;
    store.cancel(&vis, waiting).unwrap();
    db.execute(&format!(
        "UPDATE jobs SET completed_at = '2020-01-01 00:00:00' WHERE id = '{waiting}'"
    ));
    assert_eq!(store.purge_finished_before(cutoff, 100).unwrap(), 0);
    assert!(store.get(&vis, waiting).is_ok());
    // The purged job's idempotency key went with it: the key creates a new job now.
    let again = store.create(owner.clone(), NewJob::default(), Some("k1")).unwrap();
    assert!(!again.replayed);
    assert_eq!(store.create(owner, NewJob::default(), Some("k3")).unwrap().job.id, recent_done);
}

#[test]
fn the_server_purges_old_finished_jobs_when_retention_is_set() {
    let db = TestDatabase::new();
    let store = open(&db, &OffsetClock::new());
    let owner = Owner::new("default", "ann", None);
    let old = store.create(owner.clone(), NewJob::default(), None).unwrap().job.id;
    let vis = Visibility::organization("default");
    store.cancel(&vis, old).unwrap();
    let kept = store.create(owner, NewJob::default(), None).unwrap().job.id;
    store.cancel(&vis, kept).unwrap();
    db.execute(&format!("UPDATE jobs SET completed_at = '2020-01-01 00:00:00' WHERE id = '{old}'"));
    drop(store);
    let server = Arc::new(TestServer::start_on(db, |c| c.retention_days = Some(30)));
    let token = user("ann");
    let gone =
        server.wait_for_job(&format!("/api/jobs/{old}"), &token, Duration::from_secs(5), |j| {
            j.get("error").is_some()
        });
    assert_eq!(gone["error"]["type"], "job_not_found");
    server.get(&format!("/api/jobs/{kept}"), &token).assert_status(200);
}
