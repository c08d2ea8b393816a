//! A small HTTP load generator for the benchmarks: `n` requests from `concurrency` tasks on
//! one client thread, with latency percentiles.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a phase measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Requests sent.
    pub requests: usize,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Each request's latency.
    pub latencies: Vec<Duration>,
}

impl Stats {
    /// Requests per second.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p`-quantile latency (0.5 for the median).
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted
            .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }

    /// Prints one line: count, time, throughput, p50 and p99.
    pub fn print(&self, name: &str) {
        println!(
            "{name:<30} {:>7} req {:>8.2} s {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
        );
    }
}

/// Sends `n` requests built by `make(i)` from `concurrency` tasks; every answer must have
/// status `expect`. Call inside a `tokio::task::LocalSet`.
pub async fn phase<F>(n: usize, concurrency: usize, expect: u16, make: F) -> Stats
where
    F: Fn(usize) -> reqwest::RequestBuilder + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (make, next) = (Arc::clone(&make), Arc::clone(&next));
        tasks.push(tokio::task::spawn_local(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break latencies;
                }
                let t = Instant::now();
                let response = make(i).send().await.expect("request sent");
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                assert_eq!(status, expect, "unexpected status");
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for task in tasks {
        latencies.extend(task.await.expect("load task"));
    }
    Stats { requests: n, elapsed: start.elapsed(), latencies }
}

/// A number from the environment, or the default.
pub fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
