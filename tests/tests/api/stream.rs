//! The change stream, `GET /api/events` (Server-Sent Events).

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use jobs_tests::*;
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

/// One SSE message.
#[derive(Debug)]
struct Message {
    id: Option<i64>,
    event: String,
    data: Value,
}

/// An open stream, read message by message (comments skipped).
struct Sse {
    reader: BufReader<Response>,
}

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

#[allow(clippy::result_large_err)] // a test helper: the reply is the point
fn try_open(
    server: &TestServer,
    token: &str,
    query: &str,
    last: Option<i64>,
) -> Result<Sse, Reply> {
    let mut request = client().get(format!("{}/api/events{query}", server.base)).bearer_auth(token);
    if let Some(last) = last {
        request = request.header("Last-Event-ID", last.to_string());
    }
    let response = request.send().unwrap();
    if response.status() != 200 {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        return Err(Reply { status, headers, body, text });
    }
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    Ok(Sse { reader: BufReader::new(response) })
}

fn open(server: &TestServer, token: &str, query: &str, last: Option<i64>) -> Sse {
    try_open(server, token, query, last).map_err(|r| format!("{} {}", r.status, r.text)).unwrap()
}

impl Sse {
    /// The next message (fails the test if the stream ends or stays silent for 20 s).
    fn next(&mut self) -> Message {
        self.next_or_end().expect("the stream ended")
    }

    /// The next message, or `None` when the server ends the stream.
    fn next_or_end(&mut self) -> Option<Message> {
        let (mut id, mut event, mut data) = (None, String::new(), String::new());
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap() == 0 {
                return None;
            }
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if event.is_empty() && data.is_empty() {
                    continue; // after a comment
                }
                return Some(Message { id, event, data: serde_json::from_str(&data).unwrap() });
            }
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_owned();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = v.to_owned();
            }
        }
    }
}

fn job_id(job: &Value) -> String {
    job["id"].as_str().unwrap().to_owned()
}

#[test]
fn the_stream_delivers_changes_live_and_resumes_after_a_disconnect_with_nothing_missed_or_repeated()
{
    let server = TestServer::start();
    let ann = user("ann");
    let mut stream = open(&server, &ann, "", None);
    let job = server.create(&ann, json!({"metadata": {"k": 1}}));
    let id = job_id(&job);
    let path = format!("/api/jobs/{id}");
    server.patch(&path, &ann, json!({"status": "pending"})).assert_status(200);
    let created = stream.next();
    assert_eq!(created.event, "job.created");
    assert_eq!(created.data["type"], "job.created");
    assert_eq!(created.data["job_id"], id.as_str());
    assert_eq!(created.data["actor"], "ann");
    assert_eq!(created.id, created.data["id"].as_i64());
    assert_eq!(created.data["job"]["id"], id.as_str(), "the job comes with the event");
    let pending = stream.next();
    assert_eq!(
        pending.data["data"],
        json!({"from": "created", "to": "pending", "reason": "update"})
    );
    assert_eq!(pending.data["job"]["status"], "pending");
    let last = pending.id.unwrap();
    drop(stream);

    // Missed while disconnected.
    server.patch(&path, &ann, json!({"status": "running"})).assert_status(200);
    server.patch(&path, &ann, json!({"status": "completed"})).assert_status(200);
    let mut resumed = open(&server, &ann, "", Some(last));
    let running = resumed.next();
    let completed = resumed.next();
    assert_eq!(running.data["data"]["to"], "running");
    assert_eq!(completed.data["data"]["to"], "completed");
    assert!(last < running.id.unwrap() && running.id < completed.id);
    // Then live again: a deletion, with the job gone.
    server.delete(&path, &ann).assert_status(200);
    let deleted = resumed.next();
    assert_eq!(deleted.event, "job.deleted");
    assert_eq!(deleted.data["data"], json!({"reason": "delete"}));
    assert!(deleted.data["job"].is_null());

    // The same resume through the parameter; the deleted job's other events went with it.
    let mut again = open(&server, &ann, &format!("?last_event_id={last}"), None);
    let only = again.next();
    assert_eq!((only.event.as_str(), only.id), ("job.deleted", deleted.id));
}

#[test]
fn streams_carry_only_the_callers_jobs_and_honour_filters() {
    let server = TestServer::start();
    let (ann, bob) = (user("ann"), user("bob"));
    let other_org = sign(&json!({"sub": "ann", "org": "initech", "exp": now() + 600,
        "scope": "jobs:read jobs:write"}));
    let mut ann_stream = open(&server, &ann, "", None);
    let mut bob_stream = open(&server, &bob, "", None);
    let mut other_stream = open(&server, &other_org, "", None);
    let anns = server.create(&ann, json!({}));
    let bobs = server.create(&bob, json!({}));
    let others = server.create(&other_org, json!({}));
    assert_eq!(ann_stream.next().data["job_id"], anns["id"]);
    assert_eq!(bob_stream.next().data["job_id"], bobs["id"]);
    assert_eq!(other_stream.next().data["job_id"], others["id"]);
    // An admin of the organization sees every user's jobs of it.
    let mut root = open(&server, &admin("root"), "?last_event_id=0", None);
    let seen: Vec<Value> = (0..2).map(|_| root.next().data["job_id"].clone()).collect();
    assert_eq!(seen, [anns["id"].clone(), bobs["id"].clone()]);

    // Filters: one job, one type.
    let x = server.create(&ann, json!({"agent_id": "agent-x"}));
    let y = server.create(&ann, json!({}));
    let query = format!("?job_id={}&type=job.status_changed", job_id(&x));
    let mut filtered = open(&server, &ann, &query, None);
    let mut by_agent = open(&server, &ann, "?agent_id=agent-x&job_type=job", Some(0));
    server.patch(&format!("/api/jobs/{}", job_id(&y)), &ann, json!({"status": "pending"}));
    server.patch(&format!("/api/jobs/{}", job_id(&x)), &ann, json!({"status": "pending"}));
    let first = filtered.next();
    assert_eq!((first.event.as_str(), &first.data["job_id"]), ("job.status_changed", &x["id"]));
    let agent_events: Vec<String> = (0..2).map(|_| by_agent.next().event).collect();
    assert_eq!(agent_events, ["job.created", "job.status_changed"]);
}

#[test]
fn bad_stream_parameters_are_422_and_a_stream_past_the_limit_is_429() {
    let server = TestServer::start_with(|c| c.max_streams_per_user = 2);
    let ann = user("ann");
    for query in ["?type=job.exploded", "?job_id=nope", "?last_event_id=-1", "?job_type=x"] {
        try_open(&server, &ann, query, None).err().unwrap().assert_error(422, "validation_error");
    }
    let bad_header = client()
        .get(format!("{}/api/events", server.base))
        .bearer_auth(&ann)
        .header("Last-Event-ID", "abc")
        .send()
        .unwrap();
    assert_eq!(bad_header.status(), 422);

    let first = open(&server, &ann, "", None);
    let _second = open(&server, &ann, "", None);
    let refused = try_open(&server, &ann, "", None).err().unwrap();
    refused.assert_error(429, "rate_limited");
    assert!(refused.header("retry-after").is_some());
    let _bobs = open(&server, &user("bob"), "", None);
    // A closed stream frees its place (noticed when the server next writes to it).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match try_open(&server, &ann, "", None) {
            Ok(_) => break,
            Err(reply) => reply.assert_error(429, "rate_limited"),
        }
        // The server learns of the disconnect when it next writes to that stream.
        server.create(&ann, json!({}));
        assert!(Instant::now() < deadline, "the closed stream's place was never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn resuming_from_before_events_that_are_no_longer_held_starts_with_a_reset() {
    let server = TestServer::start();
    let ann = user("ann");
    let job = server.create(&ann, json!({}));
    let last = server.get(&format!("/api/jobs/{}/events", job_id(&job)), &ann).body[0]["id"]
        .as_i64()
        .unwrap();
    // As if expired job.deleted events up to that id had been purged.
    server.db.execute(&format!("UPDATE event_horizon SET purged_through = {last}"));
    let mut stream = open(&server, &ann, "", Some(0));
    assert_eq!(stream.next().event, "reset");
    let created = stream.next();
    assert_eq!(created.data["job_id"], job["id"], "what is held is still replayed");
    let mut fresh = open(&server, &ann, &format!("?last_event_id={last}"), None);
    server.create(&ann, json!({}));
    assert_eq!(fresh.next().event, "job.created", "no reset from the horizon on");
}
