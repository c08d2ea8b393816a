//! Workers at scale: many requests held by `Prefer: wait` on one server process (its memory
//! and how fast a change wakes them), and claims per second with 16 workers.
//!
//! ```sh
//! cargo build --release -p jobs-server
//! cargo bench -p jobs-tests --bench workers                         # SQLite
//! JOBS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres \
//!     cargo bench -p jobs-tests --bench workers                     # PostgreSQL
//! ```
//!
//! The server runs as its own process (`JOBS_SERVER_BIN`, default
//! `$CARGO_TARGET_DIR/release/jobs-server`), so that its resident memory is its own. Knobs:
//! `BENCH_WAITERS` (default 10000) spread over `BENCH_WAITED_JOBS` (100) jobs,
//! `BENCH_CLAIMS` (5000) jobs claimed by `BENCH_CLAIMERS` (16) workers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use jobs_tests::db::TestDatabase;
use jobs_tests::load::{knob, phase};
use jobs_tests::process::ServerProcess;
use jobs_tests::token;
use reqwest::Client;
use serde_json::{json, Value};

/// Resident and peak resident memory of a process, in MiB, and its number of threads.
fn memory_mib(pid: u32) -> (f64, f64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mib = |kb: u64| kb as f64 / 1024.0;
    (mib(field("VmRSS:")), mib(field("VmHWM:")), field("Threads:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let waiters = knob("BENCH_WAITERS", 10_000);
    let waited_jobs = knob("BENCH_WAITED_JOBS", 100);
    let claims = knob("BENCH_CLAIMS", 5000);
    let claimers = knob("BENCH_CLAIMERS", 16);
    let db = TestDatabase::new();
    let server = ServerProcess::start(
        db.url(),
        &[("JOBS_MAX_WAIT_SECONDS", "300"), ("RUST_LOG", "warn")],
        Stdio::inherit(),
    );
    let (base, pid) = (server.base.clone(), server.pid());
    println!(
        "backend {}, {} cores, server pid {pid}",
        db.backend(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let producer = token("bench", "jobs:read jobs:write");
    let worker = token("worker", "jobs:read jobs:write jobs:work");
    let client = Client::builder().pool_max_idle_per_host(waiters).build().unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let (idle_rss, _, _) = memory_mib(pid);

        // The waited-on jobs and their ETags.
        let mut jobs = Vec::new();
        for _ in 0..waited_jobs {
            let response = client
                .post(format!("{base}/api/jobs"))
                .bearer_auth(&producer)
                .send()
                .await
                .unwrap();
            let etag = response.headers()["etag"].to_str().unwrap().to_owned();
            let job: Value = response.json().await.unwrap();
            jobs.push((job["id"].as_str().unwrap().to_owned(), etag));
        }
        let jobs = Rc::new(jobs);

        // Hold the waiters.
        let mut held = Vec::new();
        for i in 0..waiters {
            let (client, base, producer, jobs) =
                (client.clone(), base.clone(), producer.clone(), Rc::clone(&jobs));
            held.push(tokio::task::spawn_local(async move {
                let (id, etag) = &jobs[i % jobs.len()];
                let response = client
                    .get(format!("{base}/api/jobs/{id}"))
                    .bearer_auth(&producer)
                    .header("If-None-Match", etag)
                    .header("Prefer", "wait=240")
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                (i % jobs.len(), status, Instant::now())
            }));
        }
        // Let every request reach the server (the client cannot see when it is held).
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (held_rss, _, threads) = memory_mib(pid);

        // Change each job once, one after the other, and time each waiter's answer.
        let mut changed_at = Vec::new();
        for (id, _) in jobs.iter() {
            changed_at.push(Instant::now());
            let response = client
                .patch(format!("{base}/api/jobs/{id}"))
                .bearer_auth(&producer)
                .json(&json!({"metadata": {"changed": true}}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
        }
        let mut wakeups = Vec::new();
        for task in held {
            let (job, status, at) = task.await.unwrap();
            assert_eq!(status, 200, "a waiter was not woken by its change");
            wakeups.push(at.saturating_duration_since(changed_at[job]));
        }
        wakeups.sort();
        let (_, peak, _) = memory_mib(pid);
        println!(
            "{waiters} waiters on {waited_jobs} jobs: server RSS idle {idle_rss:.1} MiB, \
             holding {held_rss:.1} MiB ({threads} threads), peak {peak:.1} MiB"
        );
        println!(
            "wake-up after a change: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&wakeups, 0.50).as_secs_f64() * 1e3,
            percentile(&wakeups, 0.99).as_secs_f64() * 1e3,
            wakeups.last().unwrap().as_secs_f64() * 1e3,
        );

        // Claims per second: submit, then let the workers drain the queue.
        let (c, b, t) = (client.clone(), base.clone(), producer.clone());
        phase(claims, 32, 201, move |_| {
            c.post(format!("{b}/api/jobs")).bearer_auth(&t).json(&json!({"status": "pending"}))
        })
        .await;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..claimers {
            let (client, base, worker) = (client.clone(), base.clone(), worker.clone());
            tasks.push(tokio::task::spawn_local(async move {
                let mut claimed = 0usize;
                loop {
                    let response = client
                        .post(format!("{base}/api/jobs/claim"))
                        .bearer_auth(&worker)
                        .send()
                        .await
                        .unwrap();
                    match response.status().as_u16() {
                        200 => claimed += 1,
                        204 => return claimed,
                        other => panic!("claim answered {other}"),
                    }
                    let _ = response.bytes().await;
                }
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        let elapsed = start.elapsed();
        assert_eq!(total, claims, "every submitted job claimed once");
        println!(
            "{total} claims by {claimers} workers in {:.2} s: {:.0} claims/s",
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64()
        );
    });
}
