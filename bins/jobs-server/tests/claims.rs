//! Workers racing for jobs through two real `jobs-server` processes on one database:
//! every job is claimed exactly once and none is lost. On SQLite by default; on PostgreSQL
//! (where claims use `FOR UPDATE SKIP LOCKED`) when `JOBS_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[allow(dead_code)] // shared with the jobs-tests harness, which uses all of it
#[path = "../../../tests/src/db.rs"]
mod db;

use std::collections::HashSet;
use std::time::Duration;

use common::{spawn, wait_ready};
use db::TestDatabase;
use reqwest::blocking::Client;
use serde_json::{json, Value};

fn token(sub: &str, scope: &str) -> String {
    let claims = json!({"sub": sub, "exp": chrono::Utc::now().timestamp() + 3600, "scope": scope});
    let key = jsonwebtoken::EncodingKey::from_secret(common::SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[test]
fn sixteen_workers_on_two_replicas_claim_each_of_a_thousand_jobs_exactly_once() {
    const JOBS: usize = 1000;
    const WORKERS_PER_REPLICA: usize = 8;
    let database = TestDatabase::new();
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let fleet = [("JOBS_WORKERS", "2"), ("JOBS_POOL_SIZE", "8")];
    let mut replicas = [spawn(database.url(), &fleet), spawn(database.url(), &fleet)];
    for replica in replicas.iter_mut() {
        wait_ready(replica);
    }
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let producer = token("producer", "jobs:read jobs:write");

    // Submit the jobs through both replicas, eight producers at a time.
    let created: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|p| {
                let (client, producer, bases) = (&client, &producer, &bases);
                s.spawn(move || {
                    (p..JOBS)
                        .step_by(8)
                        .map(|i| {
                            let response = client
                                .post(format!("{}/api/jobs", bases[i % 2]))
                                .bearer_auth(producer)
                                .json(&json!({"status": "pending", "metadata": {"n": i}}))
                                .send()
                                .unwrap();
                            assert_eq!(response.status().as_u16(), 201);
                            let job: Value = response.json().unwrap();
                            job["id"].as_str().unwrap().to_owned()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(created.len(), JOBS);

    // Sixteen workers, eight on each replica, claim until there is nothing left.
    let claimed: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2 * WORKERS_PER_REPLICA)
            .map(|w| {
                let (client, base) = (&client, &bases[w % 2]);
                s.spawn(move || {
                    let sub = format!("worker-{w}");
                    let token = token(&sub, "jobs:read jobs:write jobs:work");
                    let mut mine = Vec::new();
                    loop {
                        let response = client
                            .post(format!("{base}/api/jobs/claim"))
                            .bearer_auth(&token)
                            .send()
                            .unwrap();
                        match response.status().as_u16() {
                            204 => return mine,
                            200 => {
                                let job: Value = response.json().unwrap();
                                assert_eq!(job["status"], "running");
                                assert_eq!(job["claimed_by"], sub.as_str());
                                mine.push((job["id"].as_str().unwrap().to_owned(), sub.clone()));
                            }
                            other => panic!("claim answered {other}: {:?}", response.text()),
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });

    let unique: HashSet<&String> = claimed.iter().map(|(id, _)| id).collect();
    assert_eq!(claimed.len(), JOBS, "claims handed out");
    assert_eq!(unique.len(), JOBS, "a job was handed to two workers");
    assert_eq!(unique, created.iter().collect::<HashSet<_>>(), "a job was lost");
    let workers: HashSet<&String> = claimed.iter().map(|(_, w)| w).collect();
    assert!(workers.len() > 1, "one worker took everything: no race happened");

    // What the database holds agrees: every job running, claimed by the worker that got it.
    let admin = token("producer", "jobs:read jobs:work");
    let pending: Value = client
        .get(format!("{}/api/jobs?status=pending", bases[0]))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(pending, json!([]));
    let running: Value = client
        .get(format!("{}/api/jobs?status=running&limit=1000", bases[1]))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let holders: std::collections::HashMap<&str, &str> =
        claimed.iter().map(|(id, w)| (id.as_str(), w.as_str())).collect();
    let running = running.as_array().unwrap();
    assert_eq!(running.len(), JOBS);
    for job in running {
        let id = job["id"].as_str().unwrap();
        assert_eq!(job["claimed_by"].as_str(), holders.get(id).copied(), "{job}");
    }
}

#[test]
fn a_change_through_one_replica_wakes_requests_held_on_the_other_within_a_second() {
    // Cross-process wake-ups ride on PostgreSQL LISTEN/NOTIFY; SQLite runs one process.
    if std::env::var("JOBS_TEST_DATABASE_URL").is_err() {
        return;
    }
    let database = TestDatabase::new();
    let client = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut replicas = [spawn(database.url(), &[]), spawn(database.url(), &[])];
    for replica in replicas.iter_mut() {
        wait_ready(replica);
    }
    let (a, b) = (replicas[0].base.clone(), replicas[1].base.clone());
    let producer = token("producer", "jobs:read jobs:write");
    let worker = token("worker", "jobs:read jobs:write jobs:work");

    // A GET held on A wakes when B changes the job.
    let created = client.post(format!("{a}/api/jobs")).bearer_auth(&producer).send().unwrap();
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let id = created.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
    let (held, changed_at) = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let response = client
                .get(format!("{a}/api/jobs/{id}"))
                .bearer_auth(&producer)
                .header("If-None-Match", &etag)
                .header("Prefer", "wait=30")
                .send()
                .unwrap();
            (response.status().as_u16(), std::time::Instant::now())
        });
        std::thread::sleep(Duration::from_millis(500));
        let changed_at = std::time::Instant::now();
        let patch = client
            .patch(format!("{b}/api/jobs/{id}"))
            .bearer_auth(&producer)
            .json(&json!({"status": "pending"}))
            .send()
            .unwrap();
        assert_eq!(patch.status().as_u16(), 200);
        (waiter.join().unwrap(), changed_at)
    });
    assert_eq!(held.0, 200);
    let woken = held.1.saturating_duration_since(changed_at);
    assert!(woken < Duration::from_millis(1500), "GET woken after {woken:?}");

    // A claim held on A gets a job submitted through B.
    let claim = client.post(format!("{a}/api/jobs/claim")).bearer_auth(&worker).send().unwrap();
    assert_eq!(claim.status().as_u16(), 200, "the job made pending above");
    let (claimed, submitted_at) = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let response = client
                .post(format!("{a}/api/jobs/claim"))
                .bearer_auth(&worker)
                .header("Prefer", "wait=30")
                .send()
                .unwrap();
            (response.status().as_u16(), std::time::Instant::now())
        });
        std::thread::sleep(Duration::from_millis(500));
        let submitted_at = std::time::Instant::now();
        let created = client
            .post(format!("{b}/api/jobs"))
            .bearer_auth(&producer)
            .json(&json!({"status": "pending"}))
            .send()
            .unwrap();
        assert_eq!(created.status().as_u16(), 201);
        (waiter.join().unwrap(), submitted_at)
    });
    assert_eq!(claimed.0, 200);
    let woken = claimed.1.saturating_duration_since(submitted_at);
    assert!(woken < Duration::from_millis(1500), "claim woken after {woken:?}");
}

#[test]
fn sigterm_answers_held_requests_before_the_server_exits() {
    let database = TestDatabase::new();
    let client = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut server = spawn(database.url(), &[]);
    wait_ready(&mut server);
    let base = server.base.clone();
    let producer = token("producer", "jobs:read jobs:write");
    let worker = token("worker", "jobs:read jobs:write jobs:work");
    let created = client.post(format!("{base}/api/jobs")).bearer_auth(&producer).send().unwrap();
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let id = created.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
    let pid = server.child.id().to_string();
    let started = std::time::Instant::now();
    let (get, claim) = std::thread::scope(|s| {
        let get = s.spawn(|| {
            client
                .get(format!("{base}/api/jobs/{id}"))
                .bearer_auth(&producer)
                .header("If-None-Match", &etag)
                .header("Prefer", "wait=50")
                .send()
                .unwrap()
                .status()
                .as_u16()
        });
        let claim = s.spawn(|| {
            client
                .post(format!("{base}/api/jobs/claim"))
                .bearer_auth(&worker)
                .header("Prefer", "wait=50")
                .send()
                .unwrap()
                .status()
                .as_u16()
        });
        std::thread::sleep(Duration::from_millis(700));
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        (get.join().unwrap(), claim.join().unwrap())
    });
    assert_eq!((get, claim), (304, 204));
    assert!(started.elapsed() < Duration::from_secs(10), "held until {:?}", started.elapsed());
    let exited = server.child.wait().unwrap();
    assert_eq!(exited.code(), Some(0));
}
