//! The Rust client's change stream (`Client::events`) against the real server: live events,
//! resuming from the last id, reconnecting by itself after a cut connection, `reset`.

use std::time::Duration;

use futures_util::{Stream, StreamExt, TryStreamExt};
use jobs_client::{ChangeEvent, Client, EventsOptions, StreamMessage};
use jobs_domain::event::EventType;
use jobs_domain::{JobStatus, JobUpdate, NewJob};
use jobs_tests::cutter::CuttingProxy;
use jobs_tests::*;

type Events = std::pin::Pin<Box<dyn Stream<Item = jobs_client::Result<StreamMessage>> + Send>>;

async fn open(client: &Client, options: EventsOptions) -> Events {
    Box::pin(client.events(options).await.unwrap())
}

/// The next message (fails the test after 20 s of silence or at the end of the stream).
async fn next_message(events: &mut Events) -> StreamMessage {
    let next = tokio::time::timeout(Duration::from_secs(20), events.next()).await;
    next.expect("a message within 20 s").expect("the stream goes on").unwrap()
}

async fn next(events: &mut Events) -> ChangeEvent {
    match next_message(events).await {
        StreamMessage::Event(change) => *change,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn to(status: JobStatus) -> JobUpdate {
    JobUpdate::new(Some(status), None, None, None).unwrap()
}

/// The type and target status of an event (`job.status_changed` → the status).
fn what(change: &ChangeEvent) -> (EventType, Option<String>) {
    let to = change.event.data.get("to").and_then(|v| v.as_str()).map(str::to_owned);
    (change.event.event_type, to)
}

#[test]
fn the_event_stream_delivers_live_events_and_resumes_from_the_last_id_after_a_drop() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let mut events = open(&client, EventsOptions::default()).await;
        let job = client.create(&NewJob::default()).await.unwrap();
        client.update(&job.id, &to(JobStatus::Pending)).await.unwrap();
        let created = next(&mut events).await;
        assert_eq!(
            (created.event.event_type, created.event.job_id),
            (EventType::JobCreated, job.id)
        );
        assert_eq!(created.job.as_ref().map(|j| j.id), Some(job.id), "the job comes along");
        let pending = next(&mut events).await;
        assert_eq!(what(&pending), (EventType::JobStatusChanged, Some("pending".into())));
        let last = pending.event.id;
        drop(events);

        // Missed while no stream was open, then live again.
        client.update(&job.id, &to(JobStatus::Running)).await.unwrap();
        let options = EventsOptions { last_event_id: Some(last), ..EventsOptions::default() };
        let mut resumed = open(&client, options).await;
        client.update(&job.id, &to(JobStatus::Completed)).await.unwrap();
        let running = next(&mut resumed).await;
        let completed = next(&mut resumed).await;
        assert_eq!(what(&running), (EventType::JobStatusChanged, Some("running".into())));
        assert_eq!(what(&completed), (EventType::JobStatusChanged, Some("completed".into())));
        assert!(last < running.event.id && running.event.id < completed.event.id);
        client.delete(&job.id).await.unwrap();
        let deleted = next(&mut resumed).await;
        assert_eq!((deleted.event.event_type, deleted.job), (EventType::JobDeleted, None));
    })
}

#[test]
fn the_event_stream_reconnects_after_a_cut_connection_with_nothing_missed_or_repeated() {
    let server = TestServer::start();
    block_on(async {
        let proxy = CuttingProxy::start(server.addr());
        let direct = server.client(&user("ann"));
        let through_proxy = Client::new(&proxy.base, user("ann")).unwrap();
        let mut events = open(&through_proxy, EventsOptions::default()).await;
        let job = direct.create(&NewJob::default()).await.unwrap();
        let mut received = vec![next(&mut events).await];

        proxy.cut();
        direct.update(&job.id, &to(JobStatus::Pending)).await.unwrap();
        direct.update(&job.id, &to(JobStatus::Running)).await.unwrap();
        received.push(next(&mut events).await);
        proxy.cut();
        received.push(next(&mut events).await);
        direct.update(&job.id, &to(JobStatus::Failed)).await.unwrap();
        received.push(next(&mut events).await);

        assert!(proxy.accepted() >= 3, "the stream reconnected after each cut");
        let ids: Vec<i64> = received.iter().map(|c| c.event.id).collect();
        let history: Vec<i64> =
            direct.history(&job.id).map_ok(|e| e.id).try_collect().await.unwrap();
        assert_eq!(ids, history, "every event once, in order");
        let statuses: Vec<_> = received.iter().filter_map(|c| what(c).1).collect();
        assert_eq!(statuses, ["pending", "running", "failed"]);
    })
}

#[test]
fn a_resume_point_older_than_what_is_held_starts_with_a_reset() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let first = client.create(&NewJob::default()).await.unwrap();
        let second = client.create(&NewJob::default()).await.unwrap();
        let events: Vec<_> = client.history(&first.id).try_collect().await.unwrap();
        // As if retention had purged what followed the first event.
        server.db.execute(&format!(
            "UPDATE event_horizon SET purged_through = {} WHERE id = 1",
            events[0].id + 1
        ));
        let options =
            EventsOptions { last_event_id: Some(events[0].id), ..EventsOptions::default() };
        let mut stream = open(&client, options).await;
        assert!(matches!(next_message(&mut stream).await, StreamMessage::Reset { .. }));
        let after = next(&mut stream).await;
        assert_eq!(after.event.job_id, second.id, "then what is held");
    })
}

#[test]
fn the_event_stream_honours_its_filters_and_a_refusal_is_an_error_at_open() {
    let server = TestServer::start();
    block_on(async {
        let client = server.client(&user("ann"));
        let watched = client.create(&NewJob::default()).await.unwrap();
        let options = EventsOptions {
            job_ids: vec![watched.id],
            types: vec![EventType::JobStatusChanged],
            ..EventsOptions::default()
        };
        let mut events = open(&client, options).await;
        let other = client.create(&NewJob::default()).await.unwrap();
        client.update(&other.id, &to(JobStatus::Pending)).await.unwrap();
        let mut patch = jobs_domain::Metadata::new();
        patch.insert("progress".into(), serde_json::json!(0.5));
        let metadata = JobUpdate::new(None, Some(patch), None, None).unwrap();
        client.update(&watched.id, &metadata).await.unwrap(); // job.updated: not asked for
        client.update(&watched.id, &to(JobStatus::Pending)).await.unwrap();
        let only = next(&mut events).await;
        assert_eq!((only.event.job_id, what(&only).1.as_deref()), (watched.id, Some("pending")));

        let refused = server.client("not-a-token").events(EventsOptions::default()).await;
        assert_eq!(refused.err().and_then(|e| e.status()), Some(401));
    })
}
