//! What writing the event log costs the writes: create and PATCH throughput of the real
//! server with its event log, and of the same server on a database where the log is
//! switched off underneath it, side by side in one run (alternating, median of rounds).
//!
//! ```sh
//! cargo bench -p jobs-tests --bench event_cost                      # SQLite
//! JOBS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres \
//!     cargo bench -p jobs-tests --bench event_cost                  # PostgreSQL
//! ```
//!
//! The server is not changed for the comparison; its database is. On SQLite a trigger
//! drops every event row as it is inserted (`RAISE(IGNORE)`). On PostgreSQL a rule drops
//! the rows, and a function put ahead of `pg_catalog` on the search path makes the
//! sequencer's advisory lock a no-op, so the comparison also prices the serialization
//! that keeps event ids in commit order.
//! Knobs: `BENCH_JOBS` (2000 creates, then as many PATCHes), `BENCH_CONCURRENCY` (32),
//! `BENCH_ROUNDS` (3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jobs_tests::db::TestDatabase;
use jobs_tests::load::{knob, median, phase};
use jobs_tests::{user, TestServer};
use serde_json::json;

/// Before the server starts (PostgreSQL): a no-op stand-in found before `pg_catalog`.
const PG_BEFORE: &str = "
CREATE FUNCTION public.pg_advisory_xact_lock(bigint) RETURNS void
    LANGUAGE sql AS 'SELECT NULL::void';
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = public, pg_catalog',
                           current_database()); END $$;
";
/// After the migrations (PostgreSQL): event rows are dropped.
const PG_AFTER: &str = "CREATE RULE no_events AS ON INSERT TO job_events DO INSTEAD NOTHING;";
/// After the migrations (SQLite): event rows are dropped.
const SQLITE_AFTER: &str = "CREATE TRIGGER no_events BEFORE INSERT ON job_events
    BEGIN SELECT RAISE(IGNORE); END;";

fn server(with_log: bool) -> TestServer {
    let db = TestDatabase::new();
    let postgres = db.backend() == "postgres";
    if !with_log && postgres {
        db.execute(PG_BEFORE);
    }
    let server = TestServer::start_on(db, |c| c.pool_size = 8);
    if !with_log {
        server.db.execute(if postgres { PG_AFTER } else { SQLITE_AFTER });
    }
    server
}

/// Creates and PATCHes per second on one fresh server, and how many events it kept.
fn measure(with_log: bool, jobs: usize, concurrency: usize) -> (f64, f64, usize) {
    let server = server(with_log);
    let token = user("bench");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    let base = server.base.clone();
    let (create, patch, ids) = local.block_on(&runtime, async move {
        let client = reqwest::Client::new();
        let (c, b, t) = (client.clone(), base.clone(), token.clone());
        let create = phase(jobs, concurrency, 201, move |_| {
            c.post(format!("{b}/api/jobs")).bearer_auth(&t).json(&json!({"metadata": {"n": 0}}))
        })
        .await;
        let response = client
            .get(format!("{base}/api/jobs?limit=1000"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let page: Vec<serde_json::Value> = response.json().await.unwrap();
        let ids: Vec<String> = page.iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect();
        let (c, b, t, i) = (client.clone(), base.clone(), token.clone(), ids.clone());
        let patch = phase(jobs, concurrency, 200, move |n| {
            c.patch(format!("{b}/api/jobs/{}", i[n % i.len()]))
                .bearer_auth(&t)
                .json(&json!({"metadata": {"n": n}}))
        })
        .await;
        (create, patch, ids.len())
    });
    assert!(ids > 0);
    let events = server
        .get(&format!("/api/jobs/{}/events", first_job(&server)), &user("bench"))
        .body
        .as_array()
        .map_or(0, Vec::len);
    (create.throughput(), patch.throughput(), events)
}

fn first_job(server: &TestServer) -> String {
    let page = server.get("/api/jobs?limit=1", &user("bench"));
    page.body[0]["id"].as_str().unwrap().to_owned()
}

fn main() {
    let jobs = knob("BENCH_JOBS", 2000);
    let concurrency = knob("BENCH_CONCURRENCY", 32);
    let rounds = knob("BENCH_ROUNDS", 3);
    let backend = TestDatabase::new().backend();
    println!("backend {backend}: {jobs} creates then {jobs} PATCHes, {concurrency} clients, {rounds} rounds");
    let (mut with, mut without) = ((vec![], vec![]), (vec![], vec![]));
    for round in 1..=rounds {
        for with_log in [true, false] {
            let (create, patch, events) = measure(with_log, jobs, concurrency);
            let label = if with_log { "with the event log" } else { "log switched off" };
            println!(
                "round {round} {label:<19} create {create:>7.0}/s  PATCH {patch:>7.0}/s  \
                 (events kept for one job: {events})"
            );
            let into = if with_log { &mut with } else { &mut without };
            into.0.push(create);
            into.1.push(patch);
        }
    }
    let cost = |with: f64, without: f64| (1.0 - with / without) * 100.0;
    let (wc, wp, oc, op) = (median(with.0), median(with.1), median(without.0), median(without.1));
    println!("median create: {wc:.0}/s with the log, {oc:.0}/s without: cost {:.1}%", cost(wc, oc));
    println!("median PATCH:  {wp:.0}/s with the log, {op:.0}/s without: cost {:.1}%", cost(wp, op));
}
