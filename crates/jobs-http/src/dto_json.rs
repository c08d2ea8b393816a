//! A job's JSON, written by hand for the hot responses (GET one job, pages of jobs).
//!
//! serde_json escapes every key and every string value it writes, character by character:
//! a page of 100 jobs is about 65 KB of them, and the scan was 8% of a page's CPU. Here the
//! keys are literals, and the values that cannot hold a character to escape (ids,
//! timestamps, statuses, numbers) are copied as they are; free text and metadata still go
//! through serde_json. The job is written straight from the domain's [`Job`], without
//! building a [`JobView`] first (whose id, a `String`, went through `Display`).
//!
//! The output is byte for byte what `serde_json::to_vec(&JobView::from(job))` writes: a
//! test compares them over jobs with every field set, none set, and text that must be
//! escaped, so a field added to [`JobView`] and forgotten here fails it.

use std::io::Write as _;

use chrono::{DateTime, Utc};
use jobs_domain::Job;
use serde::Serialize;

#[cfg(doc)]
use crate::dto::JobView;

/// Writes `job` as a JSON object, the same bytes as `serde_json::to_vec(&JobView::from(job))`.
pub fn write_job(out: &mut Vec<u8>, job: &Job) {
    out.extend_from_slice(b"{\"id\":\"");
    job.id.push_to(out);
    out.extend_from_slice(b"\",\"status\":\"");
    out.extend_from_slice(job.status.as_str().as_bytes());
    out.extend_from_slice(b"\",\"created_at\":");
    timestamp(out, Some(job.created_at));
    out.extend_from_slice(b",\"updated_at\":");
    timestamp(out, Some(job.updated_at));
    out.extend_from_slice(b",\"completed_at\":");
    timestamp(out, job.completed_at);
    out.extend_from_slice(b",\"metadata\":");
    serde(out, &job.metadata);
    out.extend_from_slice(b",\"job_type\":\"");
    out.extend_from_slice(job.job_type.as_str().as_bytes());
    out.extend_from_slice(b"\",\"background\":");
    out.extend_from_slice(if job.background { b"true" } else { b"false" });
    out.extend_from_slice(b",\"agent_id\":");
    serde(out, &job.agent_id);
    out.extend_from_slice(b",\"source_id\":");
    serde(out, &job.source_id);
    out.extend_from_slice(b",\"user_id\":");
    serde(out, &job.owner.user_id);
    out.extend_from_slice(b",\"project_id\":");
    serde(out, &job.owner.project_id);
    out.extend_from_slice(b",\"callback_url\":");
    serde(out, &job.callback_url);
    out.extend_from_slice(b",\"callback_sent_at\":");
    timestamp(out, job.callback_sent_at);
    out.extend_from_slice(b",\"callback_status_code\":");
    number(out, job.callback_status_code.map(i64::from));
    out.extend_from_slice(b",\"callback_error\":");
    serde(out, &job.callback_error);
    out.extend_from_slice(b",\"ttft_ns\":");
    number(out, job.ttft_ns);
    out.extend_from_slice(b",\"total_duration_ns\":");
    number(out, job.total_duration_ns);
    out.extend_from_slice(b",\"timeout_seconds\":");
    number(out, job.timeout_seconds);
    out.extend_from_slice(b",\"claimed_by\":");
    serde(out, &job.claimed_by);
    out.extend_from_slice(b",\"lease_expires_at\":");
    timestamp(out, job.lease_expires_at);
    out.push(b'}');
}

/// Writes `jobs` as a JSON array of [`write_job`] objects.
pub fn write_jobs(jobs: &[Job]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + jobs.len() * 768);
    out.push(b'[');
    for (n, job) in jobs.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_job(&mut out, job);
    }
    out.push(b']');
    out
}

/// A timestamp as the API writes it (ASCII digits and separators: nothing to escape).
fn timestamp(out: &mut Vec<u8>, at: Option<DateTime<Utc>>) {
    match at {
        Some(at) => {
            out.push(b'"');
            jobs_domain::timestamp::push_rfc3339_micros(out, at);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn number(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        // Writing into a Vec cannot fail.
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// Free text and metadata, escaped by serde_json.
fn serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Strings, maps of JSON values and options of them always serialize.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::JobView;
    use jobs_domain::{JobId, NewJob, Owner};

    fn same_as_serde(job: &Job) {
        let mut ours = Vec::new();
        write_job(&mut ours, job);
        let theirs = serde_json::to_vec(&JobView::from(job.clone())).unwrap();
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
    }

    fn job() -> Job {
        let at = jobs_domain::now();
        Job::create(JobId::generate(), Owner::new("org", "ann", None), NewJob::default(), at)
    }

    #[test]
    fn a_job_with_no_optional_field_is_written_as_serde_writes_it() {
        same_as_serde(&job());
    }

    #[test]
    fn a_job_with_every_field_and_text_to_escape_is_written_as_serde_writes_it() {
        let odd = "quote \" backslash \\ newline \n tab \t nul \u{0} ü 😀 </script>";
        let mut job = job();
        job.completed_at = Some(job.created_at);
        job.started_at = Some(job.created_at);
        job.metadata =
            serde_json::json!({"progress": 0.5, "note": odd, "nested": {"a": [1, null]}})
                .as_object()
                .cloned()
                .unwrap();
        job.background = true;
        job.agent_id = Some(odd.into());
        job.source_id = Some("folder-1".into());
        job.owner = Owner::new("org", odd, Some(odd.into()));
        job.callback_url = Some("https://example.test/hook?a=1&b=\"2\"".into());
        job.callback_sent_at = Some(job.updated_at);
        job.callback_status_code = Some(-503);
        job.callback_error = Some(odd.into());
        job.ttft_ns = Some(i64::MAX);
        job.total_duration_ns = Some(0);
        job.timeout_seconds = Some(-1);
        job.claimed_by = Some(odd.into());
        job.lease_expires_at = Some(job.created_at);
        job.lease_seconds = Some(30);
        job.version = 7;
        same_as_serde(&job);
        for status in jobs_domain::JobStatus::ALL {
            job.status = status;
            same_as_serde(&job);
        }
        for job_type in jobs_domain::JobType::ALL {
            job.job_type = job_type;
            same_as_serde(&job);
        }
    }

    #[test]
    fn a_page_is_a_json_array_of_the_same_objects() {
        let jobs = vec![job(), job()];
        let views: Vec<JobView> = jobs.iter().cloned().map(JobView::from).collect();
        assert_eq!(write_jobs(&jobs), serde_json::to_vec(&views).unwrap());
        assert_eq!(write_jobs(&[]), b"[]");
    }
}
