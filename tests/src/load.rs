//! A small HTTP load generator for the benchmarks: `n` requests from `concurrency` tasks on
//! one client thread, with latency percentiles.

use std::rc::Rc;
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

/// The median of rounds' figures (the upper one of an even count).
pub fn median(mut figures: Vec<f64>) -> f64 {
    figures.sort_by(|a, b| a.total_cmp(b));
    figures[figures.len() / 2]
}

/// A number from the environment, or the default.
pub fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Sends `n` GETs, the `i`-th of `path(i)` (with `Authorization: Bearer token`), to `addr`
/// over `concurrency` keep-alive connections, with a minimal HTTP/1.1 client written on the
/// bare socket: a fraction of reqwest's cost per request, so that the server, not the
/// client, is what the two cores spend their time on (as `wrk` would). Every answer must be
/// `200` with a `Content-Length` body. Call inside a `tokio::task::LocalSet`.
pub async fn raw_gets(
    addr: std::net::SocketAddr,
    token: &str,
    n: usize,
    concurrency: usize,
    path: impl Fn(usize) -> String + 'static,
) -> Stats {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head: Arc<str> =
        format!(" HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n").into();
    let path = Rc::new(path);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (head, next, path) = (Arc::clone(&head), Arc::clone(&next), Rc::clone(&path));
        tasks.push(tokio::task::spawn_local(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut latencies, mut buffer) = (Vec::new(), Vec::with_capacity(16 * 1024));
            let mut request = String::with_capacity(512);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                request.clear();
                request.push_str("GET ");
                request.push_str(&path(i));
                request.push_str(&head);
                let t = Instant::now();
                stream.write_all(request.as_bytes()).await.expect("request sent");
                buffer.clear();
                // Headers, then as many body bytes as Content-Length says.
                let (head_end, length) = loop {
                    let mut chunk = [0u8; 8192];
                    let read = stream.read(&mut chunk).await.expect("response read");
                    assert!(read > 0, "the server closed the connection");
                    buffer.extend_from_slice(&chunk[..read]);
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (end + 4, response_length(&buffer[..end]));
                    }
                };
                while buffer.len() < head_end + length {
                    let mut chunk = [0u8; 8192];
                    let read = stream.read(&mut chunk).await.expect("body read");
                    assert!(read > 0, "the server closed the connection");
                    buffer.extend_from_slice(&chunk[..read]);
                }
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for task in tasks {
        latencies.extend(task.await.expect("load task"));
    }
    Stats { requests: n, elapsed: start.elapsed(), latencies }
}

/// The body length of a `200` response head (panics on anything else).
fn response_length(head: &[u8]) -> usize {
    let head = std::str::from_utf8(head).expect("ASCII response head");
    assert!(head.starts_with("HTTP/1.1 200"), "unexpected response: {head}");
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length")
}
