//! A worker: claims pending batch jobs, keeps their lease with heartbeats, reports
//! progress, and completes them.
//!
//! ```sh
//! JOBS_URL=http://127.0.0.1:8080 JOBS_TOKEN=... cargo run -p jobs-client --example worker
//! ```
//!
//! The token needs `jobs:read jobs:write`, plus `jobs:work` to take other users' jobs
//! (`jobs-server token --sub worker-1 --scope "jobs:read jobs:write jobs:work"`).
//! `--once` stops after one job.

use std::error::Error;
use std::time::Duration;

use jobs_client::{ClaimOptions, Client, Job};
use jobs_domain::{JobStatus, JobType, JobUpdate, Metadata};

const STEPS: u32 = 4;
const LEASE_SECONDS: i64 = 30;

fn progress(done: f64) -> Result<JobUpdate, Box<dyn Error>> {
    let mut patch = Metadata::new();
    patch.insert("progress".into(), done.into());
    Ok(JobUpdate::new(None, Some(patch), None, None)?)
}

/// Runs one claimed job to its end.
async fn run(client: &Client, job: &Job) -> Result<(), Box<dyn Error>> {
    for step in 1..=STEPS {
        // The work itself: a stand-in that takes a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Keep the lease (every third of it is a good rhythm for long steps)...
        client.heartbeat(&job.id, None).await?;
        // ...and report progress, as a fraction from 0 to 1 (an update renews it too).
        client.update(&job.id, &progress(f64::from(step) / f64::from(STEPS))?).await?;
    }
    let mut result = Metadata::new();
    result.insert("rows".into(), 1200.into());
    let done = JobUpdate::new(Some(JobStatus::Completed), Some(result), None, None)?;
    client.update(&job.id, &done).await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("JOBS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let client = Client::new(&url, std::env::var("JOBS_TOKEN")?)?;
    let once = std::env::args().any(|arg| arg == "--once");
    let options = ClaimOptions {
        job_type: Some(JobType::Batch),
        lease_seconds: Some(LEASE_SECONDS),
        // Wait for work instead of polling: the request is held until a job is pending.
        wait: Some(Duration::from_secs(30)),
        ..ClaimOptions::default()
    };
    loop {
        let Some(job) = client.claim(&options).await? else { continue };
        println!("claimed {}", job.id);
        match run(&client, &job).await {
            Ok(()) => println!("completed {}", job.id),
            // 409 with the job's status: it was cancelled, or its lease lapsed. Stop.
            Err(err) => match err.downcast_ref::<jobs_client::Error>().and_then(|e| e.api()) {
                Some(api) if api.status == 409 => println!("gave up {}: {}", job.id, api.message()),
                _ => return Err(err),
            },
        }
        if once {
            return Ok(());
        }
    }
}
