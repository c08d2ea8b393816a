//! The change stream across real processes: a change through one replica reaches a stream
//! on another, and SIGTERM ends open streams cleanly. On SQLite by default; on PostgreSQL
//! (LISTEN/NOTIFY) when `JOBS_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[allow(dead_code)] // shared with the jobs-tests harness, which uses all of it
#[path = "../../../tests/src/db.rs"]
mod db;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use common::start;
use db::TestDatabase;
use reqwest::blocking::{Client, Response};

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

fn open(base: &str, token: &str) -> BufReader<Response> {
    let response = client().get(format!("{base}/api/events")).bearer_auth(token).send().unwrap();
    assert_eq!(response.status(), 200);
    BufReader::new(response)
}

/// The `event:` of the next message, or `None` at the end of the stream.
fn next_event(stream: &mut BufReader<Response>) -> Option<String> {
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(event) = line.trim_end().strip_prefix("event: ") {
            return Some(event.to_owned());
        }
    }
}

#[test]
fn a_change_through_one_replica_reaches_a_stream_on_another_within_a_second() {
    let database = TestDatabase::new();
    let a = start(database.url(), &[]);
    let b = start(database.url(), &[]);
    let token = common::token("ann");
    let mut stream = open(&b.base, &token);
    let started = Instant::now();
    let created = client()
        .post(format!("{}/api/jobs", a.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(next_event(&mut stream).as_deref(), Some("job.created"));
    let took = started.elapsed();
    // PostgreSQL wakes the other replica by notification (well within the promised second,
    // which the fallback poll alone would only just make); SQLite (not a fleet engine) by
    // the once-a-second poll of the table.
    let bound = if database.backend() == "postgres" { 300 } else { 1500 };
    assert!(took < Duration::from_millis(bound), "took {took:?} on {}", database.backend());
}

#[test]
fn sigterm_ends_open_streams_and_the_server_exits_promptly() {
    let database = TestDatabase::new();
    let mut server = start(database.url(), &[]);
    let token = common::token("ann");
    let mut stream = open(&server.base, &token);
    let pid = server.child.id().to_string();
    let started = Instant::now();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(next_event(&mut stream), None, "the stream ends");
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(25));
    }
}
