//! Event ids follow commit order: a reader that resumes "after N" never misses an event
//! that commits later with a smaller id, even with concurrent writers on PostgreSQL.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs_domain::Visibility;
use jobs_store::{DatabaseUrl, EventFilter, JobStore, PoolOptions};
use jobs_tests::*;
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

#[test]
fn a_reader_resuming_after_the_last_id_it_saw_never_skips_an_event_that_commits_late() {
    let server = TestServer::start();
    if server.db.backend() != "postgres" {
        eprintln!("SQLite has one writer: ids are in commit order by construction; skipped");
        return;
    }
    let slow = user("slow");
    let fast = user("fast");
    let held = server.create(&slow, json!({}));
    let others: Vec<String> = (0..5)
        .map(|_| server.create(&fast, json!({}))["id"].as_str().unwrap().to_owned())
        .collect();
    server.db.execute(SLOW_WRITER);

    let url = DatabaseUrl::parse(server.db.url()).unwrap();
    let store = JobStore::open(&url, &PoolOptions::default()).unwrap();
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

    let held_path = format!("/api/jobs/{}", held["id"].as_str().unwrap());
    std::thread::scope(|s| {
        s.spawn(|| {
            server.patch(&held_path, &slow, json!({"metadata": {"a": 1}})).assert_status(200);
        });
        // A create goes through the group-commit writer, whose batch sends its events with
        // its commit.
        s.spawn(|| server.create(&slow, json!({})));
        std::thread::sleep(Duration::from_millis(200));
        for id in &others {
            let (server, fast) = (&server, &fast);
            s.spawn(move || {
                let path = format!("/api/jobs/{id}");
                server.patch(&path, fast, json!({"metadata": {"b": 2}})).assert_status(200);
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
    assert_eq!(all.len(), 7, "one event per update and one for the create: {all:?}");
    assert_eq!(seen, all, "the reader skipped an event that committed after a larger id");
}
