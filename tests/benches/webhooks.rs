//! Webhook delivery throughput to a local receiver: completion events already in the outbox,
//! delivered by the real server's dispatcher.
//!
//! ```sh
//! cargo bench -p jobs-tests --bench webhooks                        # SQLite
//! JOBS_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres \
//!     cargo bench -p jobs-tests --bench webhooks                    # PostgreSQL
//! ```
//!
//! Knob: `BENCH_DELIVERIES` (default 5000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use jobs_domain::{BoundedMetadata, CallbackUrl, NewJob, Owner, Visibility};
use jobs_store::{DatabaseUrl, JobStore};
use jobs_tests::db::TestDatabase;
use jobs_tests::load::knob;
use jobs_tests::receiver::Receiver;
use jobs_tests::TestServer;

fn main() {
    let n = knob("BENCH_DELIVERIES", 5000);
    let receiver = Receiver::start();
    let db = TestDatabase::new();
    let store =
        JobStore::open(&DatabaseUrl::parse(db.url()).unwrap(), &Default::default()).unwrap();
    let owner = Owner::new("default", "bench", None);
    let vis = Visibility::organization("default");
    let t = Instant::now();
    for i in 0..n {
        let metadata = serde_json::json!({"i": i}).as_object().cloned().unwrap();
        let new = NewJob::default()
            .with_callback_url(CallbackUrl::parse(receiver.url.clone()).unwrap())
            .with_metadata(BoundedMetadata::new(metadata, usize::MAX).unwrap());
        let id = store.create(owner.clone(), new, None).unwrap().job.id;
        store.cancel(&vis, id).unwrap();
    }
    println!(
        "backend {}: {n} completion events queued in {:.1} s",
        db.backend(),
        t.elapsed().as_secs_f64()
    );
    drop(store);

    let server = TestServer::start_on(db, |c| {
        c.webhook_allow_private = true;
        c.webhook_secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        c.log = "warn".into();
    });
    let started = Instant::now();
    let received = receiver.wait_for(n, Duration::from_secs(600));
    let elapsed = started.elapsed();
    assert_eq!(received.len(), n);
    println!(
        "delivered {n} signed webhooks in {:.2} s: {:.0} deliveries/s (16 in flight per process)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    let store =
        JobStore::open(&DatabaseUrl::parse(server.db.url()).unwrap(), &Default::default()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.pending_deliveries().unwrap() > 0 {
        assert!(Instant::now() < deadline, "deliveries not recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("all {n} attempts recorded {:.2} s after start", started.elapsed().as_secs_f64());
}
