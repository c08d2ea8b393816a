//! A producer: submits a job, then follows it until it is finished.
//!
//! ```sh
//! JOBS_URL=http://127.0.0.1:8080 JOBS_TOKEN=... cargo run -p jobs-client --example producer
//! ```
//!
//! Run `cargo run -p jobs-client --example worker` beside it to get the job done.

use std::error::Error;

use jobs_client::{Client, CreateOptions};
use jobs_domain::{BoundedMetadata, JobStatus, JobType, Metadata, NewJob};
use jobs_domain::{TimeoutSeconds, DEFAULT_MAX_METADATA_BYTES};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("JOBS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let client = Client::new(&url, std::env::var("JOBS_TOKEN")?)?;

    let mut metadata = Metadata::new();
    metadata.insert("dataset".into(), "orders".into());
    let new = NewJob::default()
        .with_job_type(JobType::Batch)
        .with_metadata(BoundedMetadata::new(metadata, DEFAULT_MAX_METADATA_BYTES)?)
        .with_timeout_seconds(TimeoutSeconds::new(3600)?);
    // Created straight into `pending`, so a worker can claim it at once. The client sends
    // an Idempotency-Key, so a retry after a lost answer never makes a second job.
    let job = client.create_with(&new, CreateOptions::submitted()).await?;
    println!("submitted {}", job.id);

    // Held requests (If-None-Match + Prefer: wait): no polling.
    let mut last = String::new();
    let done = client
        .follow(&job.id, |job| {
            let line = match job.progress() {
                Some(progress) => format!("{} {:.0}%", job.status, progress * 100.0),
                None => job.status.to_string(),
            };
            // Every change wakes us, heartbeats included: print only what is new.
            if line != last {
                println!("{line}");
                last = line;
            }
        })
        .await?;
    println!("{} finished: {} {}", done.id, done.status, serde_json::Value::from(done.metadata));
    if done.status != JobStatus::Completed {
        std::process::exit(1);
    }
    Ok(())
}
