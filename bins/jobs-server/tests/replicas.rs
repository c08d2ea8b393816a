//! Several real `jobs-server` processes sharing one database: the way a fleet runs.
//! On SQLite by default; on PostgreSQL when `JOBS_TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)] // shared with the jobs-tests harness, which uses all of it
#[path = "../../../tests/src/db.rs"]
mod db;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use db::TestDatabase;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use reqwest::blocking::Client;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_jobs-server");
const SECRET: &str = "replica-test-secret";

struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_replica(url: &str) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(BIN)
        .env("JOBS_DATABASE_URL", url)
        .env("JOBS_BIND", format!("127.0.0.1:{port}"))
        .env("JOBS_JWT_SECRET", SECRET)
        .env("JOBS_WORKERS", "2")
        .env("JOBS_POOL_SIZE", "8")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    Replica { child, base: format!("http://127.0.0.1:{port}") }
}

fn wait_healthy(client: &Client, replica: &mut Replica) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{}/readyz", replica.base)).send() {
            if r.status().is_success() {
                return;
            }
        }
        if let Some(status) = replica.child.try_wait().unwrap() {
            panic!("replica exited during start-up: {status}");
        }
        assert!(Instant::now() < deadline, "replica never became ready");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn token() -> String {
    let claims = json!({"sub": "fleet", "exp": chrono::Utc::now().timestamp() + 3600, "scope": "jobs:read jobs:write"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

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
    let mut replicas = [spawn_replica(database.url()), spawn_replica(database.url())];
    for replica in replicas.iter_mut() {
        wait_healthy(&client, replica);
    }
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let token = token();

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
    let mut replicas: Vec<Replica> = (0..4).map(|_| spawn_replica(database.url())).collect();
    for replica in replicas.iter_mut() {
        wait_healthy(&client, replica);
    }
    let migrations =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/sqlite"))
            .unwrap()
            .count();
    let applied = applied_migrations(&database);
    assert_eq!(applied.len(), migrations, "{applied:?}");
    let unique: std::collections::HashSet<_> = applied.iter().collect();
    assert_eq!(unique.len(), applied.len());

    // Every replica serves the same data.
    let token = token();
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
