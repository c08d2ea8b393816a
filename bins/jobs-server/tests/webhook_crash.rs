//! Webhooks survive a crash: the server is SIGKILLed with deliveries pending and in flight,
//! a new process starts on the same database, and every webhook arrives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[allow(dead_code)] // shared with the jobs-tests harness
#[path = "../../../tests/src/db.rs"]
mod db;
#[allow(dead_code)] // shared with the jobs-tests harness
#[path = "../../../tests/src/receiver.rs"]
mod receiver;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::Server;
use db::TestDatabase;
use receiver::Receiver;
use reqwest::blocking::Client;
use serde_json::{json, Value};

fn start(url: &str) -> Server {
    common::start(
        url,
        &[
            ("JOBS_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("JOBS_WEBHOOK_TIMEOUT_MS", "3000"),
            ("JOBS_WEBHOOK_RETRY_BASE_MS", "200"),
        ],
    )
}

fn token() -> String {
    common::token("crash")
}

fn call(client: &Client, method: reqwest::Method, url: String, body: Option<Value>) -> Value {
    let mut request = client.request(method, url).bearer_auth(token());
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().unwrap()
}

fn seen_jobs(receiver: &Receiver) -> HashSet<String> {
    receiver
        .received()
        .iter()
        .filter_map(|r| r.json["job_id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_webhook_arrives_after_a_sigkill_before_or_during_delivery() {
    const JOBS: usize = 40;
    let database = TestDatabase::new();
    let receiver = Receiver::start();
    // Slow answers keep deliveries in flight when the process dies.
    receiver.set_delay(Duration::from_millis(1500));
    let client = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut first = start(database.url());

    let mut ids = HashSet::new();
    for i in 0..JOBS {
        let job = call(
            &client,
            reqwest::Method::POST,
            format!("{}/api/jobs", first.base),
            Some(json!({"callback_url": receiver.url})),
        );
        let id = job["id"].as_str().unwrap().to_owned();
        if i % 2 == 0 {
            call(
                &client,
                reqwest::Method::PATCH,
                format!("{}/api/jobs/{id}/cancel", first.base),
                None,
            );
        } else {
            for step in ["pending", "running", "completed"] {
                call(
                    &client,
                    reqwest::Method::PATCH,
                    format!("{}/api/jobs/{id}", first.base),
                    Some(json!({"status": step})),
                );
            }
        }
        ids.insert(id);
    }
    // Wait until some deliveries are in flight, then kill the process outright.
    receiver.wait_for(1, Duration::from_secs(10));
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let seen_before_crash = seen_jobs(&receiver);
    assert!(!seen_before_crash.is_empty(), "some deliveries were in flight");
    assert!(
        seen_before_crash.len() < JOBS,
        "some deliveries had not started when the process died"
    );

    receiver.set_delay(Duration::ZERO);
    let second = start(database.url());
    let started = Instant::now();
    let received = receiver.wait_until(Duration::from_secs(30), |r| {
        let seen: HashSet<&str> = r.iter().filter_map(|x| x.json["job_id"].as_str()).collect();
        ids.iter().all(|id| seen.contains(id.as_str()))
    });
    let seen: HashSet<String> =
        received.iter().filter_map(|r| r.json["job_id"].as_str().map(str::to_owned)).collect();
    let missing: Vec<_> = ids.difference(&seen).collect();
    assert!(missing.is_empty(), "webhooks lost in the crash: {missing:?}");
    eprintln!(
        "{} of {JOBS} delivered before the crash; all delivered {:.1} s after the restart",
        seen_before_crash.len(),
        started.elapsed().as_secs_f64()
    );
    // Each job records its successful delivery.
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in &ids {
        loop {
            let job =
                call(&client, reqwest::Method::GET, format!("{}/api/jobs/{id}", second.base), None);
            if job["callback_status_code"] == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "{id} never recorded its delivery: {job}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
