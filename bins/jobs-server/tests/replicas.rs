//! Several real `jobs-server` processes sharing one database: the way a fleet runs.
//! On SQLite by default; on PostgreSQL when `JOBS_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[allow(dead_code)] // shared with the jobs-tests harness, which uses all of it
#[path = "../../../tests/src/db.rs"]
mod db;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{spawn, wait_ready, Server};
use db::TestDatabase;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use reqwest::blocking::Client;
use serde_json::{json, Value};

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(64).build().unwrap()
}

fn send(
    client: &Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn conflicting_requests_through_two_replicas_have_exactly_one_winner_per_job() {
    const JOBS: usize = 240;
    const PARALLEL_JOBS: usize = 4;
    let database = TestDatabase::new();
    let client = client();
    let fleet = [("JOBS_WORKERS", "2"), ("JOBS_POOL_SIZE", "8")];
    let mut replicas = [spawn(database.url(), &fleet), spawn(database.url(), &fleet)];
    for replica in replicas.iter_mut() {
        wait_ready(replica);
    }
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let token = common::token("fleet");

    // Create the jobs and start them, alternating replicas.
    let mut ids = Vec::new();
    for i in 0..JOBS {
        let base = &bases[i % 2];
        let (status, job) = send(
            &client,
            reqwest::Method::POST,
            format!("{base}/api/jobs"),
            &token,
            Some(json!({})),
        );
        assert_eq!(status, 201);
        let id = job["id"].as_str().unwrap().to_owned();
        for step in ["pending", "running"] {
            let base = &bases[(i + 1) % 2];
            let (status, _) = send(
                &client,
                reqwest::Method::PATCH,
                format!("{base}/api/jobs/{id}"),
                &token,
                Some(json!({"status": step})),
            );
            assert_eq!(status, 200);
        }
        ids.push(id);
    }

    // Eight contenders per job, split over both replicas, released together.
    let contenders =
        ["completed", "cancel", "completed", "failed", "cancel", "completed", "expired", "failed"];
    let mut outcomes = std::collections::HashMap::new();
    for chunk in ids.chunks(PARALLEL_JOBS) {
        let barrier = Arc::new(Barrier::new(chunk.len() * contenders.len()));
        let results: Vec<(String, usize, u16, Value)> = std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for id in chunk {
                for (n, what) in contenders.iter().enumerate() {
                    let (client, token, barrier, base) =
                        (client.clone(), token.clone(), Arc::clone(&barrier), bases[n % 2].clone());
                    handles.push(scope.spawn(move || {
                        barrier.wait();
                        let (status, body) = if *what == "cancel" {
                            send(
                                &client,
                                reqwest::Method::PATCH,
                                format!("{base}/api/jobs/{id}/cancel"),
                                &token,
                                None,
                            )
                        } else {
                            let body = json!({"status": what, "metadata": {"winner": n}});
                            send(
                                &client,
                                reqwest::Method::PATCH,
                                format!("{base}/api/jobs/{id}"),
                                &token,
                                Some(body),
                            )
                        };
                        (id.clone(), n, status, body)
                    }));
                }
            }
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (id, n, status, body) in results {
            outcomes.entry(id).or_insert_with(Vec::new).push((n, status, body));
        }
    }

    let mut cancelled = 0;
    for (id, replies) in &outcomes {
        let (status, job) = send(
            &client,
            reqwest::Method::GET,
            format!("{}/api/jobs/{id}", bases[0]),
            &token,
            None,
        );
        assert_eq!(status, 200);
        let final_status = job["status"].as_str().unwrap();
        let winners: Vec<&(usize, u16, Value)> =
            replies.iter().filter(|(_, s, _)| *s == 200).collect();
        assert!(!winners.is_empty(), "{id}: nobody won");
        // Every successful reply shows the one final job: one transition happened. (A second
        // cancel of a cancelled job is a 200 that changes nothing, by the contract.)
        for (_, _, body) in &winners {
            assert_eq!(body, &job, "{id}: a 200 reply differs from the final job");
        }
        if final_status == "cancelled" {
            cancelled += 1;
            assert!(
                winners.iter().all(|(n, _, _)| contenders[*n] == "cancel"),
                "{id}: {replies:?}"
            );
        } else {
            assert_eq!(winners.len(), 1, "{id}: two worker transitions won: {replies:?}");
            let (n, _, _) = winners[0];
            assert_eq!(contenders[*n], final_status);
            assert_eq!(
                job["metadata"]["winner"],
                json!(n),
                "{id}: the final state is the winner's"
            );
        }
        for (_, status, body) in replies.iter().filter(|(_, s, _)| *s != 200) {
            assert_eq!(*status, 409, "{id}: {body}");
            assert_eq!(body["error"]["type"], "invalid_job_status_transition");
            assert_eq!(body["error"]["details"]["current_status"], final_status);
        }
    }
    assert_eq!(outcomes.len(), JOBS);
    eprintln!(
        "{} jobs on {}: {cancelled} ended cancelled, {} by a worker",
        JOBS,
        database.backend(),
        JOBS - cancelled
    );
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

fn applied_migrations(database: &TestDatabase) -> Vec<String> {
    let query =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version");
    let rows: Vec<Version> = match database.backend() {
        "postgres" => {
            query.load(&mut diesel::PgConnection::establish(database.url()).unwrap()).unwrap()
        }
        _ => {
            let path = database.url().trim_start_matches("sqlite://").to_owned();
            query.load(&mut diesel::SqliteConnection::establish(&path).unwrap()).unwrap()
        }
    };
    rows.into_iter().map(|r| r.version).collect()
}

#[test]
fn replicas_starting_together_on_an_empty_database_all_come_up_and_migrate_it_once() {
    let database = TestDatabase::new();
    let client = client();
    let fleet = [("JOBS_WORKERS", "2"), ("JOBS_POOL_SIZE", "8")];
    let mut replicas: Vec<Server> = (0..4).map(|_| spawn(database.url(), &fleet)).collect();
    for replica in replicas.iter_mut() {
        wait_ready(replica);
    }
    let folder = format!("{}/../../migrations/{}", env!("CARGO_MANIFEST_DIR"), database.backend());
    let migrations = std::fs::read_dir(folder).unwrap().count();
    let applied = applied_migrations(&database);
    assert_eq!(applied.len(), migrations, "{applied:?}");
    let unique: std::collections::HashSet<_> = applied.iter().collect();
    assert_eq!(unique.len(), applied.len());

    // Every replica serves the same data.
    let token = common::token("fleet");
    for replica in &replicas {
        let (status, _) = send(
            &client,
            reqwest::Method::POST,
            format!("{}/api/jobs", replica.base),
            &token,
            Some(json!({})),
        );
        assert_eq!(status, 201);
    }
    for replica in &replicas {
        let (status, list) =
            send(&client, reqwest::Method::GET, format!("{}/api/jobs", replica.base), &token, None);
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), replicas.len());
    }
}
