//! Completion webhooks, everything about them that needs no I/O: the target URL
//! ([`CallbackUrl`]), which addresses a webhook may never reach ([`address`]), what a host
//! says before any lookup ([`screen`]), and the event a finished job sends. Creation and
//! delivery both use these; the name lookup between them is the http crate's `resolve`.

use serde_json::{json, Value};

use crate::job::Job;

pub mod address;
mod host;
mod target;
pub use host::{is_local_name, screen, Screen};
pub use target::{CallbackUrl, CALLBACK_URL_PATTERN, MAX_CALLBACK_URL_CHARS};

/// The body POSTed to `callback_url` when a job enters a terminal status, or `None` when the
/// job has no callback or has not finished.
pub fn completion_event(job: &Job) -> Option<Value> {
    job.callback_url.as_ref()?;
    if !job.status.is_terminal() {
        return None;
    }
    Some(json!({
        "job_id": job.id.to_string(),
        "status": job.status.as_str(),
        "completed_at": job.completed_at.map(crate::timestamp::rfc3339_micros),
        "metadata": Value::Object(job.metadata.clone()),
    }))
}

/// Whether an address is one a webhook must not reach unless private targets are allowed:
/// the one rule used at creation and at delivery (see [`address`]).
pub use address::is_private_address;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobId, JobStatus, NewJob, Owner};

    #[test]
    fn only_a_finished_job_with_a_callback_has_an_event() {
        let url = CallbackUrl::parse("https://example.com/h").unwrap();
        let new = NewJob::default().with_callback_url(url);
        let mut job = Job::create(JobId::generate(), Owner::new("o", "u", None), new, crate::now());
        assert!(completion_event(&job).is_none());
        job.status = JobStatus::Completed;
        job.completed_at = Some(crate::now());
        let event = completion_event(&job).unwrap();
        assert_eq!(event["job_id"], job.id.to_string());
        assert_eq!(event["status"], "completed");
        assert!(event["completed_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(event["metadata"], serde_json::json!({}));
        assert_eq!(event.as_object().unwrap().len(), 4);
        job.callback_url = None;
        assert!(completion_event(&job).is_none());
    }
}
