//! `jobs watch`: a progress bar from `metadata.progress` until the job finishes.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use jobs_client::{Client, Job};
use jobs_domain::{JobId, JobStatus};

use crate::args::Format;
use crate::{output, Failure, Outcome};

/// What a finished job's status means for the exit status.
fn outcome(status: JobStatus) -> Outcome {
    match status {
        JobStatus::Completed => Outcome::Done,
        JobStatus::Cancelled => Outcome::Cancelled,
        _ => Outcome::Unsuccessful,
    }
}

/// `running 40%`, or the status alone without a progress number.
fn line(job: &Job) -> String {
    match job.progress() {
        Some(p) => format!("{} {:.0}%", job.status, p * 100.0),
        None => job.status.to_string(),
    }
}

/// Follows the job until it finishes. On a terminal, a progress bar on stderr; otherwise
/// one line on stderr per change. Then the finished job on stdout.
pub async fn watch(client: &Client, id: &JobId, format: Format) -> Result<Outcome, Failure> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(100);
        let style = ProgressStyle::with_template("{prefix} [{bar:40}] {pos:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(id.to_string());
        bar
    });
    let mut last = String::new();
    let job = client
        .follow(id, |job| {
            let now = line(job);
            match &bar {
                Some(bar) => {
                    // Progress is a fraction from 0 to 1 (clamped): 0.4 is 40%.
                    bar.set_position(job.progress().map_or(0, |p| (p * 100.0).round() as u64));
                    bar.set_message(job.status.to_string());
                }
                None if now != last => eprintln!("{id} {now}"),
                None => {}
            }
            last = now;
        })
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let job = job?;
    match format {
        Format::Json => output::job(&job, format)?,
        Format::Table => output::print(&format!("{} {}", job.id, line(&job)))?,
    }
    Ok(outcome(job.status))
}
