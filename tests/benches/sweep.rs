//! The expiry sweep at scale: 100 000 overdue running jobs among 1 000 000, and what the
//! sweep does to the latency of concurrent GETs.
//!
//! ```sh
//! cargo bench -p jobs-tests --bench sweep                           # SQLite
//! JOBS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres \
//!     cargo bench -p jobs-tests --bench sweep                       # PostgreSQL
//! ```
//!
//! Knobs: `BENCH_TOTAL_JOBS` (default 1000000), `BENCH_OVERDUE_EVERY` (10: one job in ten
//! is overdue), `BENCH_GETS` (20000 per GET phase), `BENCH_LISTS` (2000 pages per phase).
//! The rows are generated in SQL behind the server; the real server then starts on them,
//! and its own sweeper does the work: first the backlog alone, timed from the server's
//! start; then, on the warm server, a second group of about as many, which falls due when
//! the bench moves the server's clock ten years on, while a client measures GETs.
//!
//! The yardstick, run first on a second database generated alike: the same batches as
//! plain SQL, one `UPDATE … WHERE id IN (the next 2000 due)` per transaction, with the
//! backend's defaults and the server's durability (SQLite `synchronous = FULL`). It writes
//! what an expiry must change and nothing else (no event, no webhook, no compare-and-set),
//! so the ratio printed is what the sweep costs above the least the database must do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use jobs_domain::OffsetClock;
use jobs_tests::db::TestDatabase;
use jobs_tests::load::{knob, phase, Stats};
use jobs_tests::{user, TestServer};

const COLUMNS: &str = "id, org_id, user_id, project_id, status, job_type, background, agent_id, \
    source_id, metadata, callback_url, callback_sent_at, callback_status_code, callback_error, \
    ttft_ns, total_duration_ns, timeout_seconds, created_at, updated_at, completed_at, \
    started_at, expires_at, version";

/// The timeout of the second group of running jobs: due in 2036, when the bench moves the
/// server's clock ten years on.
const LATER_TIMEOUT: i64 = 10 * 366 * 86_400;

fn generate_sql(backend: &str, total: usize, every: usize) -> String {
    // Job n: id from n; running and overdue when n % every == 0; running and due ten years
    // on when n % every == every / 2 (the warm sweep's); else completed.
    let (source, id) = match backend {
        "postgres" => (
            format!("generate_series(0, {}) AS n", total - 1),
            "'job-' || lpad(to_hex(n), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(n), 12, '0')".to_owned(),
        ),
        _ => (
            format!("(WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {}) SELECT n FROM seq)", total - 1),
            "printf('job-%08x-0000-7000-8000-%012x', n, n)".to_owned(),
        ),
    };
    let (now, later) = (format!("n % {every} = 0"), format!("n % {every} = {}", every / 2));
    let ts =
        |t: &str| if backend == "postgres" { format!("TIMESTAMP '{t}'") } else { format!("'{t}'") };
    format!(
        "INSERT INTO jobs ({COLUMNS}) SELECT {id}, 'default', 'bench', NULL, \
         CASE WHEN {now} OR {later} THEN 'running' ELSE 'completed' END, 'job', {false_}, \
         NULL, NULL, '{{}}', NULL, NULL, NULL, NULL, NULL, NULL, \
         CASE WHEN {now} THEN 60 WHEN {later} THEN {LATER_TIMEOUT} ELSE NULL END, \
         {t0}, {t0}, CASE WHEN {now} OR {later} THEN NULL ELSE {t0} END, {t0}, \
         CASE WHEN {now} THEN {t1} WHEN {later} THEN {t2} ELSE NULL END, 0 FROM {source}",
        false_ = if backend == "postgres" { "FALSE" } else { "0" },
        t0 = ts("2026-01-01 00:00:00"),
        t1 = ts("2026-01-01 00:01:00"),
        t2 = ts(&(chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            + chrono::TimeDelta::seconds(LATER_TIMEOUT))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()),
    )
}

/// The yardstick's statement: the next batch of due jobs expired in plain SQL.
fn plain_batch(backend: &str, batch: i64) -> String {
    let (now, lock) = match backend {
        "postgres" => ("now()::timestamp", " FOR UPDATE SKIP LOCKED"),
        _ => ("strftime('%Y-%m-%d %H:%M:%f', 'now')", ""),
    };
    format!(
        "UPDATE jobs SET status = 'expired', updated_at = {now}, completed_at = {now}, \
         expires_at = NULL, version = version + 1 WHERE id IN (SELECT id FROM jobs \
         WHERE expires_at <= {now} AND status = 'running' ORDER BY expires_at \
         LIMIT {batch}{lock})"
    )
}

/// A database of `total` jobs, `every`th one overdue, with the server's schema.
fn generated(total: usize, every: usize) -> TestDatabase {
    let db = TestDatabase::new();
    // Create the schema, then the rows behind the server's back.
    drop(
        jobs_store::JobStore::open(
            &jobs_store::DatabaseUrl::parse(db.url()).unwrap(),
            &Default::default(),
        )
        .unwrap(),
    );
    db.execute(&generate_sql(db.backend(), total, every));
    if db.backend() == "postgres" {
        db.execute("ANALYZE jobs; CHECKPOINT");
    }
    db
}

fn expired_so_far(server: &TestServer) -> f64 {
    let text = server.send(server.request(reqwest::Method::GET, "/metrics")).text;
    text.lines()
        .find(|l| l.starts_with("jobs_expired_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Writes out what the machine holds to be written (`sync`): generating a million rows
/// leaves hundreds of megabytes in the page cache, which would otherwise go to the disk
/// during the next timed phase, whichever it is.
fn settle() {
    let synced = std::process::Command::new("sync").status();
    assert!(synced.is_ok_and(|s| s.success()), "sync runs");
}

/// Waits until `jobs_expired_total` reaches `count`.
fn wait_for_expired(server: &TestServer, count: usize, since: Instant) {
    while expired_so_far(server) < count as f64 {
        assert!(since.elapsed() < Duration::from_secs(1800), "sweep did not finish");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn get_load(server: &TestServer, ids: &[String], n: usize) -> Stats {
    let base = server.base.clone();
    let token = user("bench");
    let ids = ids.to_vec();
    let client = reqwest::Client::new();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, async move {
        phase(n, 8, 200, move |i| {
            client
                .get(format!("{base}/api/jobs/{}", ids[(i * 7919) % ids.len()]))
                .bearer_auth(&token)
        })
        .await
    })
}

fn list_load(server: &TestServer, query: String, n: usize) -> Stats {
    let base = server.base.clone();
    let token = user("bench");
    let client = reqwest::Client::new();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, async move {
        phase(n, 8, 200, move |_| {
            client.get(format!("{base}/api/jobs?{query}")).bearer_auth(&token)
        })
        .await
    })
}

fn main() {
    let total = knob("BENCH_TOTAL_JOBS", 1_000_000);
    let every = knob("BENCH_OVERDUE_EVERY", 10);
    let gets = knob("BENCH_GETS", 20000);
    let lists = knob("BENCH_LISTS", 2000);
    assert!(every >= 2, "BENCH_OVERDUE_EVERY must be 2 or more: two groups of running jobs");
    let overdue = total.div_ceil(every);
    // Jobs n < total with n % every == every / 2.
    let later = (total + every - every / 2 - 1) / every;
    let batch = jobs_server::sweeper::EXPIRE_BATCH;
    let t = Instant::now();
    let reference = generated(total, every);
    println!(
        "backend {}: generated {total} jobs ({overdue} overdue) in {:.1} s",
        reference.backend(),
        t.elapsed().as_secs_f64()
    );
    let setup = match reference.backend() {
        "postgres" => "SELECT 1",
        _ => "PRAGMA synchronous = FULL",
    };
    settle();
    let t = Instant::now();
    let changed = reference.repeat_until_done(setup, &plain_batch(reference.backend(), batch));
    let floor = t.elapsed();
    assert_eq!(changed, overdue, "the yardstick expires every overdue job");
    println!(
        "reference: plain UPDATE of the same {overdue} jobs, {batch} a transaction: {:.2} s",
        floor.as_secs_f64()
    );
    drop(reference);
    let db = generated(total, every);
    let ids: Vec<String> = (1..200)
        .map(|k| format!("job-{0:08x}-0000-7000-8000-{0:012x}", k * (total / 200) + 1))
        .collect();

    let clock = OffsetClock::new();
    settle();
    let started = Instant::now();
    let server = TestServer::start_on(db, |c| {
        c.log = "warn".into();
        c.clock = clock.clock();
    });
    // The backlog, swept from the server's start with nothing else running.
    wait_for_expired(&server, overdue, started);
    let sweep = started.elapsed();
    println!(
        "sweep: expired {overdue} of {total} jobs in {:.2} s ({:.0} jobs/s; one transaction per batch of {batch})",
        sweep.as_secs_f64(),
        overdue as f64 / sweep.as_secs_f64(),
    );
    println!("sweep / plain UPDATE yardstick: {:.2}", sweep.as_secs_f64() / floor.as_secs_f64());
    // The first GETs read pages for the first time, and the sweep's writes are still on
    // their way to the disk: a run to warm up, then the one measured.
    settle();
    get_load(&server, &ids, gets);
    let idle = get_load(&server, &ids, gets);
    idle.print("GET with no sweep running");
    // The second group falls due on the warm server: GETs from the sweep's first batch on.
    clock.advance(chrono::TimeDelta::seconds(LATER_TIMEOUT));
    let moved = Instant::now();
    while expired_so_far(&server) == overdue as f64 {
        assert!(moved.elapsed() < Duration::from_secs(60), "the second sweep did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    let first_batch = Instant::now();
    let during = get_load(&server, &ids, gets);
    let swept = (expired_so_far(&server) - overdue as f64) / later as f64;
    during.print(&format!("GET during sweep ({:.0}% swept)", swept * 100.0));
    println!(
        "GET p99 during the sweep / idle: {:.2} (goal <= 2)",
        during.percentile(0.99).as_secs_f64() / idle.percentile(0.99).as_secs_f64()
    );
    wait_for_expired(&server, overdue + later, started);
    println!(
        "second sweep ({later} jobs), under that GET load: {:.2} s after its first batch",
        first_batch.elapsed().as_secs_f64()
    );
    // Keyset pagination over the same rows: the first page, and a page with 90% of the jobs
    // newer than its cursor (900 000 deep for the default million).
    let deep = total / 10;
    let cursor = format!("job-{deep:08x}-0000-7000-8000-{deep:012x}");
    list_load(&server, "limit=100".into(), lists).print("GET /api/jobs first page");
    list_load(&server, format!("limit=100&before={cursor}"), lists)
        .print(&format!("GET /api/jobs {} deep", total - deep - 1));
    // An idle sweep (nothing due) over the same million rows.
    let store = jobs_store::JobStore::open(
        &jobs_store::DatabaseUrl::parse(server.db.url()).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let t = Instant::now();
    let rounds = 100;
    for _ in 0..rounds {
        assert_eq!(store.expire_due(batch).unwrap(), 0);
    }
    println!(
        "idle sweep check (nothing due): {:.3} ms each",
        t.elapsed().as_secs_f64() * 1e3 / rounds as f64
    );
}
