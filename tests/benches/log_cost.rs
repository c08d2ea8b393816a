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
//! included, is what fills the two cores. Besides throughput it prints the server's own
//! CPU time per GET (`/proc/PID/stat`), which moves less with the rest of the machine.
//! Knobs: `BENCH_GETS` (20000),
//! `BENCH_CONCURRENCY` (32), `BENCH_ROUNDS` (5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;

use jobs_tests::db::TestDatabase;
use jobs_tests::load::{knob, median, raw_gets};
use jobs_tests::process::ServerProcess;
use jobs_tests::user;
use serde_json::Value;

/// The CPU time the process `pid` has used so far, user and system, in clock ticks
/// (`/proc/PID/stat`, fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses: field 3 is the first.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// One run of a fresh server at `level`.
struct Run {
    /// GETs of one job per second.
    throughput: f64,
    /// The server's CPU (clock ticks) per thousand GETs.
    cpu: f64,
    /// Bytes of log written.
    log: u64,
}

/// GETs of one job against a fresh server at `level`.
fn measure(db: &TestDatabase, level: &str, gets: usize, concurrency: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = ServerProcess::start(db.url(), &[("RUST_LOG", level)], Stdio::from(log));
    let (base, addr) = (server.base.clone(), server.addr());
    let token = user("bench");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    let pid = server.pid();
    let (throughput, cpu) = local.block_on(&runtime, async move {
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
        let before = cpu_ticks(pid);
        let throughput =
            raw_gets(addr, &token, gets, concurrency, move |_| path.clone()).await.throughput();
        (throughput, (cpu_ticks(pid) - before) as f64 * 1000.0 / gets as f64)
    });
    drop(server);
    Run { throughput, cpu, log: std::fs::metadata(&log_path).map_or(0, |m| m.len()) }
}

fn main() {
    let gets = knob("BENCH_GETS", 20_000);
    let concurrency = knob("BENCH_CONCURRENCY", 32);
    let rounds = knob("BENCH_ROUNDS", 5);
    let db = TestDatabase::new();
    println!("backend {}: {gets} GETs of one job per run, {concurrency} clients", db.backend());
    let (mut ratios, mut cpu_ratios) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let info = measure(&db, "info", gets, concurrency);
        let warn = measure(&db, "warn", gets, concurrency);
        let ratio = info.throughput / warn.throughput;
        let cpu_ratio = info.cpu / warn.cpu;
        println!(
            "round {round}: info {:>7.0}/s ({} KiB of log)  warn {:>7.0}/s ({} KiB)  \
             ratio {ratio:.3}; server CPU per GET info/warn {cpu_ratio:.3}",
            info.throughput,
            info.log / 1024,
            warn.throughput,
            warn.log / 1024
        );
        ratios.push(ratio);
        cpu_ratios.push(cpu_ratio);
    }
    let ratio = median(ratios);
    println!(
        "median info/warn GET throughput {ratio:.3}: the request log costs {:.1}% (goal <= 5%)",
        (1.0 - ratio) * 100.0
    );
    // The server's own CPU per request moves less with what else the machine does than
    // throughput on cores the client shares (but leaves out the kernel writing the log
    // file back to disk, which it does on its own threads).
    let cpu_ratio = median(cpu_ratios);
    println!(
        "median info/warn server CPU per GET {cpu_ratio:.3}: the request log adds {:.1}% to it",
        (cpu_ratio - 1.0) * 100.0
    );
}
