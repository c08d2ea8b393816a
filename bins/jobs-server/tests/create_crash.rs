//! Group commit keeps its promise: creates acknowledged from batched commits survive a
//! SIGKILL that lands right after their responses, while other creates are in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[allow(dead_code)] // shared with the jobs-tests harness
#[path = "../../../tests/src/db.rs"]
mod db;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use db::TestDatabase;
use reqwest::blocking::Client;
use serde_json::Value;

/// Clients creating at once, so that creates share commits.
const CLIENTS: usize = 24;
/// Acknowledged creates before the kill.
const ACKED_BEFORE_KILL: usize = 600;

#[test]
fn every_acknowledged_create_survives_a_sigkill_right_after_its_response() {
    let database = TestDatabase::new();
    let mut first = common::start(database.url(), &[]);
    let token = common::token("crash");
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (enough, wait_enough) = mpsc::channel::<()>();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (acked, stop, enough) = (acked.clone(), stop.clone(), enough.clone());
            let (url, token) = (format!("{}/api/jobs", first.base), token.clone());
            std::thread::spawn(move || {
                let client = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let Ok(response) =
                        client.post(&url).bearer_auth(&token).json(&serde_json::json!({})).send()
                    else {
                        break; // the server is gone
                    };
                    assert_eq!(response.status(), 201);
                    let Ok(job) = response.json::<Value>() else { break };
                    let mut acked = acked.lock().unwrap();
                    acked.push(job["id"].as_str().unwrap().to_owned());
                    if acked.len() >= ACKED_BEFORE_KILL {
                        let _ = enough.send(());
                    }
                }
            })
        })
        .collect();
    wait_enough.recv_timeout(Duration::from_secs(120)).expect("creates were acknowledged");
    // Killed while the clients keep creating: some creates are queued or mid-commit.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    let second = common::start(database.url(), &[]);
    let client = Client::new();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| {
            let url = format!("{}/api/jobs/{id}", second.base);
            client.get(url).bearer_auth(&token).send().unwrap().status() != 200
        })
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost: {lost:?}",
        lost.len(),
        acked.len()
    );
}
