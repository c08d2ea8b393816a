//! What the default request log costs: GET throughput of the server binary at `info` (one
//! line per request, written to a log file) against the same binary at `warn` (no request
//! lines), alternating, median of rounds.
//!
//! ```sh
//! cargo build --release -p jobs-server
//! cargo bench -p jobs-tests --bench log_cost
//! ```
//!
//! The server runs as its own process (`JOBS_SERVER_BIN`, default
//! `$CARGO_TARGET_DIR/release/jobs-server`), its stderr going to a file as a deployment's
//! would; both servers share one SQLite file. The load comes from a minimal HTTP/1.1 client
//! on the bare socket (`load::raw_gets`), light enough that the server's work, log line
//! included, is what fills the two cores. Knobs: `BENCH_GETS` (20000),
//! `BENCH_CONCURRENCY` (32), `BENCH_ROUNDS` (5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;

use jobs_tests::db::TestDatabase;
use jobs_tests::load::{knob, median, raw_gets};
use jobs_tests::process::ServerProcess;
use jobs_tests::user;
use serde_json::Value;

/// GETs per second of one job, from a fresh server at `level`; returns the throughput and
/// how many bytes of log it wrote.
fn measure(db: &TestDatabase, level: &str, gets: usize, concurrency: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = ServerProcess::start(db.url(), &[("RUST_LOG", level)], Stdio::from(log));
    let (base, addr) = (server.base.clone(), server.addr());
    let token = user("bench");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    let throughput = local.block_on(&runtime, async move {
        let reply = reqwest::Client::new()
            .post(format!("{base}/api/jobs"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"metadata": {"n": 1}}))
            .send()
            .await
            .unwrap();
        let job: Value = reply.json().await.unwrap();
        let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
        let p = path.clone();
        raw_gets(addr, &token, concurrency * 20, concurrency, move |_| p.clone()).await; // warm-up
        raw_gets(addr, &token, gets, concurrency, move |_| path.clone()).await.throughput()
    });
    drop(server);
    (throughput, std::fs::metadata(&log_path).map_or(0, |m| m.len()))
}

fn main() {
    let gets = knob("BENCH_GETS", 20_000);
    let concurrency = knob("BENCH_CONCURRENCY", 32);
    let rounds = knob("BENCH_ROUNDS", 5);
    let db = TestDatabase::new();
    println!("backend {}: {gets} GETs of one job per run, {concurrency} clients", db.backend());
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let (info, info_log) = measure(&db, "info", gets, concurrency);
        let (warn, warn_log) = measure(&db, "warn", gets, concurrency);
        let ratio = info / warn;
        println!(
            "round {round}: info {info:>7.0}/s ({} KiB of log)  warn {warn:>7.0}/s ({} KiB)  \
             ratio {ratio:.3}",
            info_log / 1024,
            warn_log / 1024
        );
        ratios.push(ratio);
    }
    let ratio = median(ratios);
    println!(
        "median info/warn GET throughput {ratio:.3}: the request log costs {:.1}% (goal <= 5%)",
        (1.0 - ratio) * 100.0
    );
}
