//! Event ids follow commit order: a reader that resumes "after N" never misses an event
//! that commits later with a smaller id, even with concurrent writers on PostgreSQL.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs_domain::Visibility;
use jobs_store::{DatabaseUrl, EventFilter, JobStore, PoolOptions};
use jobs_tests::db::TestDatabase;
use jobs_tests::*;
use reqwest::Method;
use serde_json::json;

/// Makes every event written by the actor `slow` hold its transaction open for a second
/// after the event's id is drawn and before the commit completes, so that later writers
/// commit first if they can. Ids are drawn at commit: by `job_events_append`, sent with the
/// COMMIT (changes and batched creates), or by the deferred trigger `job_events_number`
/// (the other writes); deferred triggers run in the order of their names, so this one
/// (`zz_…`) runs after it either way.
const SLOW_WRITER: &str = "
CREATE FUNCTION hold_slow_event() RETURNS trigger AS $$
BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER zz_hold_slow_event AFTER INSERT ON job_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.actor = 'slow') EXECUTE FUNCTION hold_slow_event();";

/// The three ways a write draws its events' ids: a change sends them with its COMMIT
/// (`job_events_append`), so does a batch of the group-commit writer, and a create with an
/// idempotency key leaves them to the deferred trigger.
#[derive(Clone, Copy, Debug)]
enum HeldWrite {
    Change,
    BatchedCreate,
    KeyedCreate,
}

#[test]
fn a_reader_resuming_after_the_last_id_it_saw_never_skips_an_event_that_commits_late() {
    let why = "SQLite has one writer: its ids are in commit order by construction";
    let Some(db) = TestDatabase::postgres_only(why) else { return };
    let server = TestServer::start_on(db, |_| {});
    let (slow, fast) = (user("slow"), user("fast"));
    let held = server.create(&slow, json!({}));
    let others: Vec<String> = (0..5)
        .map(|_| server.create(&fast, json!({}))["id"].as_str().unwrap().to_owned())
        .collect();
    server.db.execute(SLOW_WRITER);
    let url = DatabaseUrl::parse(server.db.url()).unwrap();
    let store = JobStore::open(&url, &PoolOptions::default()).unwrap();
    // Each way on its own: a held writer of one way must not hold the sequencer for the
    // writers racing the next.
    for (n, way) in [HeldWrite::Change, HeldWrite::BatchedCreate, HeldWrite::KeyedCreate]
        .into_iter()
        .enumerate()
    {
        let slow_write = || match way {
            HeldWrite::Change => {
                let path = format!("/api/jobs/{}", held["id"].as_str().unwrap());
                server.patch(&path, &slow, json!({"metadata": {"a": n}})).assert_status(200);
            }
            HeldWrite::BatchedCreate => {
                server.create(&slow, json!({}));
            }
            HeldWrite::KeyedCreate => {
                let request = server
                    .request(Method::POST, "/api/jobs")
                    .bearer_auth(&slow)
                    .header("Idempotency-Key", "held-by-the-trigger")
                    .json(&json!({}));
                server.send(request).assert_status(201);
            }
        };
        let (seen, all) = race(&server, &store, slow_write, (&others, &fast, n));
        assert_eq!(all.len(), 6, "{way:?}: one event per write: {all:?}");
        assert_eq!(seen, all, "{way:?}: the reader skipped an event that committed late");
    }
}

/// Runs `slow_write` and, while it holds its drawn id, a PATCH (by `fast`, metadata `round`)
/// of each of `others`; returns the event ids a reader polling "after the last id seen"
/// saw, and all that were written.
fn race(
    server: &TestServer,
    store: &JobStore,
    slow_write: impl Fn() + Sync,
    (others, fast, round): (&[String], &str, usize),
) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let everyone = Visibility::organization("default");
    let start = store.last_event_id().unwrap();
    // The reader: polls "after the last id seen", as a resuming stream does.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, everyone, done) = (store.clone(), everyone.clone(), done.clone());
        std::thread::spawn(move || {
            let (mut cursor, mut seen) = (start, BTreeSet::new());
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = store.events_after(&everyone, &EventFilter::default(), cursor, 100);
                for e in page.unwrap() {
                    seen.insert(e.event.id);
                    cursor = cursor.max(e.event.id);
                }
                if finished {
                    return seen;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    std::thread::scope(|s| {
        s.spawn(&slow_write);
        // Until the slow writer sleeps inside its commit, its event's id drawn.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !slow_writer_sleeps(server) {
            assert!(
                std::time::Instant::now() < deadline,
                "the slow writer never reached its commit"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        for id in others {
            s.spawn(move || {
                let path = format!("/api/jobs/{id}");
                server.patch(&path, fast, json!({"metadata": {"b": round}})).assert_status(200);
            });
        }
    });
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();

    let all: BTreeSet<i64> = store
        .events_after(&everyone, &EventFilter::default(), start, 1000)
        .unwrap()
        .iter()
        .map(|e| e.event.id)
        .collect();
    (seen, all)
}

/// Whether a session sleeps in `hold_slow_event`, inside its commit.
fn slow_writer_sleeps(server: &TestServer) -> bool {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::PgConnection::establish(server.db.url()).expect("connect");
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep')",
    ))
    .get_result(&mut conn)
    .expect("pg_stat_activity")
}
