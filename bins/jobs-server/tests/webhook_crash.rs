//! Webhooks survive a crash: the server is SIGKILLed with deliveries pending and in flight,
//! a new process starts on the same database, and every webhook arrives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)] // shared with the jobs-tests harness
#[path = "../../../tests/src/db.rs"]
mod db;
#[allow(dead_code)] // shared with the jobs-tests harness
#[path = "../../../tests/src/receiver.rs"]
mod receiver;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use db::TestDatabase;
use receiver::Receiver;
use reqwest::blocking::Client;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_jobs-server");
const SECRET: &str = "crash-test-secret";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(url: &str) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(BIN)
        .env("JOBS_DATABASE_URL", url)
        .env("JOBS_BIND", format!("127.0.0.1:{port}"))
        .env("JOBS_JWT_SECRET", SECRET)
        .env("JOBS_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("JOBS_WEBHOOK_TIMEOUT_MS", "3000")
        .env("JOBS_WEBHOOK_RETRY_BASE_MS", "200")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, base: format!("http://127.0.0.1:{port}") };
    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client
        .get(format!("{}/readyz", server.base))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "server never became ready");
        std::thread::sleep(Duration::from_millis(25));
    }
    server
}

fn token() -> String {
    let claims = json!({"sub": "crash", "exp": chrono::Utc::now().timestamp() + 3600, "scope": "jobs:read jobs:write"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
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
