//! The `jobs` binary as users run it, against the real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jobs_tests::*;
use serde_json::{json, Value};

fn jobs_command(server: &TestServer, token: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jobs"));
    command.args(args).env("JOBS_URL", &server.base).env("JOBS_TOKEN", token);
    command
}

fn jobs(server: &TestServer, token: &str, args: &[&str]) -> Output {
    jobs_command(server, token, args).output().unwrap()
}

fn stdout_json(output: &Output) -> Value {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn create_get_list_cancel_and_delete_print_the_jobs_as_json() {
    let server = TestServer::start();
    let ann = user("ann");
    let args = ["create", "--job-type", "batch", "--metadata", r#"{"dataset":"orders"}"#];
    let created = stdout_json(&jobs(&server, &ann, &[&args[..], &["-o", "json"]].concat()));
    assert_eq!(created["status"], "created");
    assert_eq!(created["job_type"], "batch");
    assert_eq!(created["metadata"], json!({"dataset": "orders"}));
    let id = created["id"].as_str().unwrap();
    assert_eq!(server.get(&format!("/api/jobs/{id}"), &ann).body, created, "as the API wrote it");

    let fetched = stdout_json(&jobs(&server, &ann, &["get", id, "-o", "json"]));
    assert_eq!(fetched, created);
    let other = stdout_json(&jobs(&server, &ann, &["create", "--submit", "-o", "json"]));
    assert_eq!(other["status"], "pending");
    let listed = stdout_json(&jobs(&server, &ann, &["list", "-o", "json"]));
    let ids: Vec<&str> =
        listed.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [other["id"].as_str().unwrap(), id], "newest first");
    let limited = stdout_json(&jobs(&server, &ann, &["list", "--limit", "1", "-o", "json"]));
    assert_eq!(limited.as_array().unwrap().len(), 1);
    let pending = stdout_json(&jobs(&server, &ann, &["list", "--status", "pending", "-o", "json"]));
    assert_eq!(pending.as_array().unwrap().len(), 1);

    let cancelled = stdout_json(&jobs(&server, &ann, &["cancel", id, "-o", "json"]));
    assert_eq!(cancelled["status"], "cancelled");
    let deleted = stdout_json(&jobs(&server, &ann, &["delete", id, "-o", "json"]));
    assert_eq!(deleted["id"], id);
    server.get(&format!("/api/jobs/{id}"), &ann).assert_status(404);
}

#[test]
fn the_table_output_shows_the_jobs_fields() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.create(&ann, json!({"agent_id": "agent-7", "metadata": {"progress": 0.25}}));
    let id = job["id"].as_str().unwrap();
    let listed = jobs(&server, &ann, &["list"]);
    assert!(listed.status.success());
    let text = String::from_utf8_lossy(&listed.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS"), "{text}");
    assert!(lines[1].starts_with(id) && lines[1].contains("created"), "{text}");
    assert!(lines[1].contains("25%") && lines[1].contains("agent-7"), "{text}");
    let one = jobs(&server, &ann, &["get", id]);
    let text = String::from_utf8_lossy(&one.stdout);
    assert!(text.lines().any(|l| l.starts_with("status") && l.ends_with("created")), "{text}");
}

/// A running `jobs watch ID`, with its stderr read line by line on a thread.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The lines already taken from `lines` by [`wait_for_line`].
    seen: Vec<String>,
}

/// Waits (at most 20 s) until the watch prints a line containing `needle`.
fn wait_for_line(watch: &mut Watch, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !watch.seen.iter().any(|line| line.contains(needle)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match watch.lines.recv_timeout(left) {
            Ok(line) => watch.seen.push(line),
            Err(_) => panic!("the watch never printed {needle:?}: {:?}", watch.seen),
        }
    }
}

/// Starts `jobs watch ID` and returns once it has read the job (its first line on stderr).
fn start_watch(server: &TestServer, token: &str, id: &str) -> Watch {
    let mut child = jobs_command(server, token, &["watch", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut watch = Watch { child, lines, seen: Vec::new() };
    match watch.lines.recv_timeout(Duration::from_secs(20)) {
        Ok(first) => assert!(first.starts_with(id), "{first}"),
        Err(_) => {
            let _ = watch.child.kill();
            panic!("watch printed nothing within 20 s");
        }
    }
    watch
}

/// Waits for the watch to exit (at most 20 s): its status code, stdout and stderr.
fn finish(mut watch: Watch) -> (i32, String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = watch.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = watch.child.kill();
            panic!("watch did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut watch.child.stdout.take().unwrap(), &mut out).unwrap();
    let err: Vec<String> = watch.seen.drain(..).chain(watch.lines.iter()).collect();
    (status.code().unwrap(), out, err.join("\n"))
}

#[test]
fn watch_exits_0_when_the_job_completes_1_when_it_fails_or_expires_and_2_when_cancelled() {
    let server = TestServer::start();
    let ann = user("ann");
    for (end, code) in [("completed", 0), ("failed", 1), ("expired", 1), ("cancelled", 2)] {
        let job = server.create(&ann, json!({}));
        let id = job["id"].as_str().unwrap();
        let path = format!("/api/jobs/{id}");
        let mut watch = start_watch(&server, &ann, id);
        server.patch(&path, &ann, json!({"status": "pending"})).assert_status(200);
        let running = json!({"status": "running", "metadata": {"progress": 0.5}});
        server.patch(&path, &ann, running).assert_status(200);
        // A watch shows the states it reads; one that changes again at once may be skipped.
        wait_for_line(&mut watch, &format!("{id} running 50%"));
        server.patch(&path, &ann, json!({"status": end})).assert_status(200);
        let (status, out, err) = finish(watch);
        assert_eq!(status, code, "{end}: {out} {err}");
        assert!(out.starts_with(&format!("{id} {end}")), "{out}");
        assert!(err.contains(&format!("{id} running 50%")), "the progress was shown: {err}");
    }
}

#[test]
fn an_error_prints_the_servers_message_and_exits_non_zero() {
    let server = TestServer::start();
    let ann = user("ann");
    let missing = jobs(&server, &ann, &["get", "job-00000000-0000-0000-0000-000000000000"]);
    assert_eq!(missing.status.code(), Some(3));
    assert_eq!(stderr(&missing).trim(), "jobs: Job not found (HTTP 404 job_not_found)");
    assert!(missing.stdout.is_empty());

    let active = server.create(&ann, json!({}));
    let refused = jobs(&server, &ann, &["delete", active["id"].as_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(stderr(&refused).contains("cancel it before deleting it"), "{}", stderr(&refused));
    let watched = jobs(&server, &ann, &["watch", "job-00000000-0000-0000-0000-000000000000"]);
    assert_eq!(watched.status.code(), Some(3), "an error is not an outcome");

    let private = jobs(&server, &ann, &["create", "--callback-url", "http://127.0.0.1:9/x"]);
    assert_eq!(private.status.code(), Some(3));
    assert!(stderr(&private).contains("must not target a loopback"), "{}", stderr(&private));
    let bad_token = jobs(&server, "nope", &["list"]);
    assert!(stderr(&bad_token).contains("Invalid token"), "{}", stderr(&bad_token));

    let malformed = jobs(&server, &ann, &["get", "123"]);
    assert_eq!(malformed.status.code(), Some(2), "a usage error");
    assert!(stderr(&malformed).contains("is not a job id"), "{}", stderr(&malformed));
    let bad_metadata = jobs(&server, &ann, &["create", "--metadata", "[1]"]);
    assert_eq!(bad_metadata.status.code(), Some(2));
    let bad_url = jobs(&server, &ann, &["list", "--url", "ftp://127.0.0.1"]);
    assert_eq!(bad_url.status.code(), Some(2), "{}", stderr(&bad_url));
    let unreachable = jobs_command(&server, &ann, &["list"])
        .env("JOBS_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(stderr(&unreachable).contains("cannot reach"), "{}", stderr(&unreachable));
}

#[test]
fn help_describes_every_command_and_never_shows_the_token() {
    let server = TestServer::start();
    let secret = "eyJ-a-secret-token-value";
    let help = jobs(&server, secret, &["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    assert!(
        text.contains("JOBS_TOKEN") && text.contains("JOBS_URL") && text.contains("Exit status")
    );
    assert!(!text.contains(secret), "{text}");
    for command in ["list", "get", "create", "cancel", "delete", "watch", "events", "claim"] {
        let help = jobs(&server, secret, &[command, "--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success() && text.contains("Usage: jobs"), "{command}: {text}");
        assert!(!text.contains(secret), "{command}: {text}");
    }
    let no_token = Command::new(env!("CARGO_BIN_EXE_jobs"))
        .arg("list")
        .env_remove("JOBS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(2));
    assert!(stderr(&no_token).contains("JOBS_TOKEN"));
}

#[test]
fn claim_takes_a_pending_job_and_events_replays_the_changes() {
    let server = TestServer::start();
    let ann = user("ann");
    let worker = token("w1", "jobs:read jobs:write jobs:work");
    let job = server.create(&ann, json!({"status": "pending", "job_type": "batch"}));
    let claimed =
        stdout_json(&jobs(&server, &worker, &["claim", "--job-type", "batch", "-o", "json"]));
    assert_eq!((&claimed["id"], &claimed["status"]), (&job["id"], &json!("running")));
    assert_eq!(claimed["claimed_by"], "w1");
    let nothing = jobs(&server, &worker, &["claim", "-o", "json"]);
    assert_eq!(nothing.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&nothing.stdout).trim(), "null");

    let events =
        jobs(&server, &ann, &["events", "--last-event-id", "0", "--count", "2", "-o", "json"]);
    assert!(events.status.success(), "{}", stderr(&events));
    let lines: Vec<Value> = String::from_utf8_lossy(&events.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["job.created", "job.status_changed"]);
    assert_eq!(lines[1]["data"]["reason"], "claim");
    assert_eq!(lines[1]["job"]["claimed_by"], "w1");
}

#[test]
fn events_keeps_to_the_types_asked_for_and_prints_one_line_each() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.create(&ann, json!({}));
    let id = job["id"].as_str().unwrap();
    server.patch(&format!("/api/jobs/{id}"), &ann, json!({"status": "pending"}));
    let args = ["events", "--last-event-id", "0", "--type", "job.status_changed", "--count", "1"];
    let changes = jobs(&server, &ann, &args);
    assert!(changes.status.success(), "{}", stderr(&changes));
    let text = String::from_utf8_lossy(&changes.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("job.status_changed") && lines[0].contains(id), "{text}");
    let bad = jobs(&server, &ann, &["events", "--type", "job.exploded"]);
    assert_eq!(bad.status.code(), Some(2));
}
