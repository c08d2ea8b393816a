//! GETs of one job on PostgreSQL: read from each HTTP worker's own connection, with no
//! blocking thread, and again on a new connection when that one was cut.

use std::time::{Duration, Instant};

use jobs_tests::db::TestDatabase;
use jobs_tests::*;
use serde_json::json;

/// The server's reader connections (named `jobs-reader`) on the test database.
const READERS: &str = "FROM pg_stat_activity \
    WHERE datname = current_database() AND application_name = 'jobs-reader'";

/// How many reader connections are open.
fn readers(db: &TestDatabase) -> i64 {
    db.count(&format!("SELECT 1 {READERS}"))
}

#[test]
fn a_get_on_postgresql_reads_on_a_workers_own_connection_and_on_a_new_one_once_it_was_cut() {
    let Some(db) = TestDatabase::postgres_only("its connections") else { return };
    let server = TestServer::start_on(db, |_| {});
    let token = user("ann");
    let job = server.create(&token, json!({"metadata": {"n": 1}}));
    let path = format!("/api/jobs/{}", job["id"].as_str().unwrap());
    for _ in 0..8 {
        let reply = server.get(&path, &token);
        reply.assert_status(200);
        assert_eq!(reply.body, job);
    }
    // One connection per worker that served a GET, at most.
    let open = readers(&server.db);
    assert!((1..=4).contains(&open), "{open} reader connections");

    // Cut, as by a database restart: the next GETs answer from new connections.
    server.db.execute(&format!("SELECT pg_terminate_backend(pid) {READERS}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while readers(&server.db) > 0 {
        assert!(Instant::now() < deadline, "the reader connections were not cut");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..8 {
        server.get(&path, &token).assert_status(200);
    }
    assert!(readers(&server.db) >= 1);
}
