//! The expiry sweep's set-based batches: what one batch writes for each job it expires,
//! and what racing sweeps write between them.

use std::collections::HashMap;

use chrono::TimeDelta;
use jobs_domain::event::EventType;
use jobs_domain::{
    CallbackUrl, Job, JobId, JobStatus, JobUpdate, NewJob, OffsetClock, Owner, TimeoutSeconds,
    Visibility,
};
use jobs_store::{ClaimFilter, DatabaseUrl, JobStore, PoolOptions};
use jobs_tests::db::TestDatabase;
use serde_json::json;

const HOOK: &str = "https://example.com/hook";

fn open(db: &TestDatabase, clock: &OffsetClock) -> JobStore {
    JobStore::open(&DatabaseUrl::parse(db.url()).unwrap(), &PoolOptions::default())
        .unwrap()
        .with_clock(clock.clock())
}

fn vis() -> Visibility {
    Visibility::organization("org")
}

/// A job with this timeout (and callback), moved to `running` with some metadata.
fn running(store: &JobStore, timeout: Option<i64>, hook: bool) -> JobId {
    let mut new = NewJob::default();
    if let Some(secs) = timeout {
        new = new.with_timeout_seconds(TimeoutSeconds::new(secs).unwrap());
    }
    if hook {
        new = new.with_callback_url(CallbackUrl::parse(HOOK).unwrap());
    }
    let id = store.create(Owner::new("org", "ann", None), new, None).unwrap().job.id;
    let pending = JobUpdate::new(Some(JobStatus::Pending), None, None, None).unwrap();
    store.update(&vis(), id, &pending).unwrap();
    let meta = json!({"step": id.to_string()}).as_object().unwrap().clone();
    let run = JobUpdate::new(Some(JobStatus::Running), Some(meta), None, None).unwrap();
    store.update(&vis(), id, &run).unwrap();
    id
}

/// A pending job with a timeout of an hour, claimed by a worker with a one-minute lease:
/// the lease lapses first.
fn claimed(store: &JobStore, hook: bool) -> JobId {
    let mut new = NewJob::default().with_timeout_seconds(TimeoutSeconds::new(3600).unwrap());
    if hook {
        new = new.with_callback_url(CallbackUrl::parse(HOOK).unwrap());
    }
    let id = store.create(Owner::new("org", "ann", None), new, None).unwrap().job.id;
    let pending = JobUpdate::new(Some(JobStatus::Pending), None, None, None).unwrap();
    store.update(&vis(), id, &pending).unwrap();
    let job = store.claim(&vis(), "worker-1", &ClaimFilter::default(), Some(60)).unwrap();
    assert_eq!(job.map(|j| j.id), Some(id), "claims the only pending job");
    id
}

/// Expires everything due with `sweepers` threads over two stores (two replicas), each
/// in batches of `batch`: the first half a batch at a time, the others whole sweeps (which
/// on SQLite read each next batch while the one before commits); returns how many jobs
/// each thread expired.
fn race(stores: &[JobStore; 2], sweepers: usize, batch: i64) -> Vec<usize> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..sweepers)
            .map(|i| {
                let store = stores[i % 2].clone();
                let whole = i >= sweepers / 2;
                scope.spawn(move || {
                    let mut total = 0;
                    loop {
                        let expired = match whole {
                            true => store.expire_all_due(batch, |_| {}),
                            false => store.expire_due(batch),
                        };
                        match expired.unwrap() {
                            0 => break total,
                            n => total += n,
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn a_sweep_expires_each_overdue_job_once_with_one_event_and_one_webhook() {
    let db = TestDatabase::new();
    let clock = OffsetClock::new();
    let stores = [open(&db, &clock), open(&db, &clock)];
    let store = &stores[0];
    // Due after the jump: timeouts, with and without a callback, and lapsing leases.
    let mut due: Vec<(JobId, &str, bool)> = Vec::new();
    for i in 0..90 {
        due.push((running(store, Some(3600), i % 2 == 0), "timeout", i % 2 == 0));
    }
    for i in 0..10 {
        due.push((claimed(store, i % 2 == 0), "lease_lapsed", i % 2 == 0));
    }
    // Not due: a longer timeout, no timeout, not running.
    let mut not_due = vec![running(store, Some(7200), true), running(store, None, true)];
    let new = NewJob::default()
        .with_timeout_seconds(TimeoutSeconds::new(1).unwrap())
        .with_callback_url(CallbackUrl::parse(HOOK).unwrap());
    not_due.push(store.create(Owner::new("org", "ann", None), new, None).unwrap().job.id);
    let before: HashMap<JobId, Job> = due
        .iter()
        .map(|d| d.0)
        .chain(not_due.iter().copied())
        .map(|id| (id, store.get(&vis(), id).unwrap()))
        .collect();
    let events_before = |id: &JobId| store.job_events(&vis(), *id, None, 100).unwrap().0.len();
    let history: HashMap<JobId, usize> = before.keys().map(|id| (*id, events_before(id))).collect();

    clock.advance(TimeDelta::seconds(3601));
    // Four sweepers on two replicas, in batches small enough to overlap.
    let counts = race(&stores, 4, 15);
    assert_eq!(counts.iter().sum::<usize>(), due.len(), "each job expired once: {counts:?}");
    assert_eq!(stores[1].expire_due(1000).unwrap(), 0, "nothing left");

    let deliveries = store.claim_deliveries(1000, TimeDelta::minutes(5)).unwrap();
    let mut hooks: HashMap<String, Vec<_>> = HashMap::new();
    for delivery in deliveries {
        hooks.entry(delivery.job_id.clone()).or_default().push(delivery);
    }
    for (id, reason, hook) in &due {
        let job = store.get(&vis(), *id).unwrap();
        let old = &before[id];
        assert_eq!(job.status, JobStatus::Expired, "{id}");
        assert_eq!(job.version, old.version + 1, "one write: {id}");
        assert_eq!(job.completed_at, Some(job.updated_at), "{id}");
        assert!(job.lease_expires_at.is_none() && job.total_duration_ns.is_some(), "{job:?}");
        assert_eq!(job.metadata, old.metadata, "{id}");
        // One event, after the job's earlier ones: the status change, with its reason.
        let (events, _) = store.job_events(&vis(), *id, None, 100).unwrap();
        assert_eq!(events.len(), history[id] + 1, "one event per expiry: {events:?}");
        let event = events.last().unwrap();
        assert_eq!(event.event_type, EventType::JobStatusChanged);
        assert_eq!(event.data, json!({"from": "running", "to": "expired", "reason": reason}));
        assert_eq!((event.actor.as_str(), event.request_id.as_deref()), ("system", None));
        assert_eq!(event.at, job.updated_at);
        // One webhook for a job with a callback, with the completion event; none otherwise.
        let sent = hooks.remove(&id.to_string()).unwrap_or_default();
        assert_eq!(sent.len(), usize::from(*hook), "one webhook per job with a callback: {id}");
        if let Some(delivery) = sent.first() {
            assert_eq!(delivery.url, HOOK);
            let payload: serde_json::Value = serde_json::from_str(&delivery.payload).unwrap();
            let expected = jobs_domain::callback::completion_event(&job).unwrap();
            assert_eq!(payload, expected);
            assert_eq!(delivery.attempts, 0);
        }
    }
    assert!(hooks.is_empty(), "webhooks of jobs not expired: {hooks:?}");
    for id in &not_due {
        let job = store.get(&vis(), *id).unwrap();
        assert_eq!(job, before[id], "untouched: {id}");
        assert_eq!(events_before(id), history[id], "no event: {id}");
    }
}

#[test]
fn one_batch_expires_hundreds_of_jobs_and_a_second_batch_finds_none() {
    let db = TestDatabase::new();
    let clock = OffsetClock::new();
    let store = open(&db, &clock);
    let ids: Vec<JobId> = (0..1050).map(|i| running(&store, Some(60), i % 3 == 0)).collect();
    clock.advance(TimeDelta::minutes(2));
    // More than one write-back statement's rows (1000) in one batch.
    assert_eq!(store.expire_due(5000).unwrap(), ids.len());
    assert_eq!(store.expire_due(5000).unwrap(), 0);
    assert_eq!(store.pending_deliveries().unwrap(), 350, "one webhook per job with a callback");
    let events = store.all_events_after(0, 100_000).unwrap();
    let expiries: Vec<_> =
        events.iter().filter(|e| e.event.data["to"] == "expired").map(|e| e.event.job_id).collect();
    assert_eq!(expiries.len(), ids.len(), "one event per job");
    let mut unique = expiries.clone();
    unique.sort_by_key(|id| id.to_string());
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no job has two");
    // Every event has its real id (drawn at commit on PostgreSQL), each its own.
    let mut event_ids: Vec<i64> = events.iter().map(|e| e.event.id).collect();
    event_ids.dedup();
    assert_eq!(event_ids.len(), events.len());
    assert!(event_ids.iter().all(|id| *id > 0), "a provisional id was committed");
}

#[test]
fn a_row_the_database_driver_cannot_decode_is_skipped_and_the_rest_of_its_batch_expires() {
    let db = TestDatabase::new();
    let clock = OffsetClock::new();
    let store = open(&db, &clock);
    let ids: Vec<JobId> = (0..5).map(|_| running(&store, Some(60), true)).collect();
    // A timestamp the driver cannot turn into a date: text on SQLite, a year past chrono's
    // range on PostgreSQL. It fails the batch's read itself, not the conversion to a job.
    let bad = if db.backend() == "postgres" { "'290000-01-01 00:00:00'" } else { "'garbage'" };
    db.execute(&format!("UPDATE jobs SET callback_sent_at = {bad} WHERE id = '{}'", ids[2]));
    clock.advance(TimeDelta::minutes(2));
    assert_eq!(store.expire_due(100).unwrap(), 4);
    assert_eq!(store.pending_deliveries().unwrap(), 4);
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| *i != 2) {
        assert_eq!(store.get(&vis(), *id).unwrap().status, JobStatus::Expired, "job {i}");
    }
    // Repaired, the skipped job is still running, and the next sweep expires it.
    db.execute(&format!("UPDATE jobs SET callback_sent_at = NULL WHERE id = '{}'", ids[2]));
    assert_eq!(store.get(&vis(), ids[2]).unwrap().status, JobStatus::Running);
    assert_eq!(store.expire_due(100).unwrap(), 1);
    assert_eq!(store.pending_deliveries().unwrap(), 5);
}
