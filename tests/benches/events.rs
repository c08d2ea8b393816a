//! The change stream under load: 1 000 open streams on one process while 500 changes a
//! second are made; p99 from the change's response to the event on a stream, and memory.
//!
//! ```sh
//! cargo bench -p jobs-tests --bench events                          # SQLite
//! JOBS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres \
//!     cargo bench -p jobs-tests --bench events                      # PostgreSQL
//! ```
//!
//! Knobs: `BENCH_STREAMS` (1000), `BENCH_RATE` (500 changes/s), `BENCH_SECONDS` (10),
//! `BENCH_WRITERS` (8 threads making the changes).
//! 100 users each keep `BENCH_STREAMS / 100` streams open; every change is a PATCH of one
//! user's job whose metadata carries the time it was sent, so each event reaches that
//! user's streams and each arrival gives one latency sample (measured in this process,
//! which also holds the client sockets: the RSS below is server and clients together).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_tests::load::knob;
use jobs_tests::{user, TestServer};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const USERS: usize = 100;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    let streams = knob("BENCH_STREAMS", 1000);
    let rate = knob("BENCH_RATE", 500);
    let seconds = knob("BENCH_SECONDS", 10);
    let writers = knob("BENCH_WRITERS", 8);
    let server = TestServer::start_with(|c| {
        c.max_streams_per_user = streams / USERS + 1;
        c.pool_size = 8;
    });
    let backend = server.db.backend();
    let tokens: Vec<String> = (0..USERS).map(|u| user(&format!("bench-{u}"))).collect();
    let jobs: Vec<String> = tokens
        .iter()
        .map(|t| server.create(t, json!({}))["id"].as_str().unwrap().to_owned())
        .collect();
    let rss_before = rss_mib();
    let epoch = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::<f64>::new()));
    let addr = server.base.trim_start_matches("http://").to_owned();

    // The readers: plain sockets on one thread.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (tokens, samples, addr) = (tokens.clone(), samples.clone(), addr.clone());
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let mut tasks = Vec::new();
                for i in 0..streams {
                    let token = tokens[i % USERS].clone();
                    let (samples, addr) = (samples.clone(), addr.clone());
                    tasks.push(tokio::task::spawn_local(async move {
                        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
                        let request = format!("GET /api/events?type=job.updated HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n");
                        socket.write_all(request.as_bytes()).await.unwrap();
                        let mut lines = BufReader::new(socket).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            if let Some(at) = line.find("\"t\":") {
                                let rest = &line[at + 4..];
                                let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
                                if let Ok(sent) = rest[..end].parse::<u64>() {
                                    let now = epoch.elapsed().as_micros() as u64;
                                    samples.lock().unwrap().push(now.saturating_sub(sent) as f64 / 1000.0);
                                }
                            }
                        }
                    }));
                }
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                drop(tasks);
            });
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let rss_open = rss_mib();

    // The writers: `rate` PATCHes a second, spread over `writers` threads.
    let started = Instant::now();
    let total = rate * seconds;
    let done = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (server, tokens, jobs) = (&server, &tokens, &jobs);
                s.spawn(move || {
                    let mut made = 0;
                    for n in (w..total).step_by(writers) {
                        let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let u = n % USERS;
                        let t = epoch.elapsed().as_micros() as u64;
                        let path = format!("/api/jobs/{}", jobs[u]);
                        if server.patch(&path, &tokens[u], json!({"metadata": {"t": t}})).status
                            == 200
                        {
                            made += 1;
                        }
                    }
                    made
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    });
    let elapsed = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let rss_load = rss_mib();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut lat = samples.lock().unwrap().clone();
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "backend {backend}: {streams} streams, {done} changes in {elapsed:.1} s ({:.0}/s)",
        done as f64 / elapsed
    );
    println!(
        "deliveries {} (expected {}), latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}",
        lat.len(),
        done * (streams / USERS),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    println!("RSS MiB (server and clients in one process): before streams {rss_before:.0}, streams open {rss_open:.0}, after load {rss_load:.0}");
    reader.join().unwrap();
}
