//! A job as the API returns it, in the domain crate's types.

use chrono::{DateTime, Utc};
use jobs_domain::{JobId, JobStatus, JobType, Metadata};
use serde::{Deserialize, Serialize};

/// A job as the API returns it.
///
/// The fields are those of the API's Job resource, in `jobs-domain` types ([`JobId`],
/// [`JobStatus`], [`JobType`], [`Metadata`]). It is not `jobs_domain::Job`: that type also
/// holds what only the server knows (the organisation, when the job started running, the
/// lease length, the compare-and-set version), which the API does not expose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// `job-` and a lowercase UUID.
    #[serde(with = "job_id")]
    pub id: JobId,
    /// Where the job is in its lifecycle.
    pub status: JobStatus,
    /// When the job was created.
    #[serde(with = "micros")]
    pub created_at: DateTime<Utc>,
    /// When the job last changed.
    #[serde(with = "micros")]
    pub updated_at: DateTime<Utc>,
    /// When the job entered a terminal status.
    #[serde(with = "micros::option")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Free-form metadata; `progress` (a number from 0 to 1) is conventional.
    pub metadata: Metadata,
    /// The kind of work.
    pub job_type: JobType,
    /// Whether the job runs in the background.
    pub background: bool,
    /// Associated agent.
    pub agent_id: Option<String>,
    /// Associated data source (folder).
    pub source_id: Option<String>,
    /// The owner.
    pub user_id: String,
    /// The project (`X-Project-Id` at creation).
    pub project_id: Option<String>,
    /// Completion webhook target.
    pub callback_url: Option<String>,
    /// When the last webhook delivery was attempted.
    #[serde(with = "micros::option")]
    pub callback_sent_at: Option<DateTime<Utc>>,
    /// HTTP status of the last delivery attempt.
    pub callback_status_code: Option<i32>,
    /// Error of the last delivery attempt.
    pub callback_error: Option<String>,
    /// Time to first token, in nanoseconds.
    pub ttft_ns: Option<i64>,
    /// Total duration, in nanoseconds.
    pub total_duration_ns: Option<i64>,
    /// Longest time allowed in `running`, in seconds.
    pub timeout_seconds: Option<i64>,
    /// The worker that claimed the job.
    #[serde(default)]
    pub claimed_by: Option<String>,
    /// While a claimed job runs: when its lease lapses unless the worker renews it.
    #[serde(default, with = "micros::option")]
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The `ETag` of the answer that carried this job, when it was a single-job answer
    /// (create, get, update, cancel, delete, claim, heartbeat); `None` in lists and events.
    /// Give it to [`Client::wait_for_change`](crate::Client::wait_for_change) or
    /// [`Client::update_if_match`](crate::Client::update_if_match).
    #[serde(skip)]
    pub etag: Option<String>,
}

impl Job {
    /// True when the job is `completed`, `failed`, `cancelled` or `expired`.
    pub fn is_finished(&self) -> bool {
        self.status.is_terminal()
    }

    /// `metadata.progress` as a fraction from 0 to 1, when it is a number (clamped to that
    /// range). Jobs report progress as 0..1 by convention.
    pub fn progress(&self) -> Option<f64> {
        let value = self.metadata.get("progress")?.as_f64()?;
        value.is_finite().then(|| value.clamp(0.0, 1.0))
    }
}

/// A job id as its text.
pub(crate) mod job_id {
    use jobs_domain::JobId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &JobId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<JobId, D::Error> {
        let text = String::deserialize(d)?;
        JobId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Timestamps as the API writes them: RFC 3339, UTC, six fractional digits.
pub(crate) mod micros {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            at: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            Option::<DateTime<Utc>>::deserialize(d)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SAMPLE: &str = r#"{"id":"job-01a223ec-a75b-7317-89da-6892fbd20ab3","status":"completed","created_at":"2026-11-28T20:50:41.627203Z","updated_at":"2026-11-28T20:50:41.695136Z","completed_at":"2026-11-28T20:50:41.695136Z","metadata":{"dataset":"orders","progress":1,"rows":1200},"job_type":"job","background":false,"agent_id":null,"source_id":null,"user_id":"alice","project_id":null,"callback_url":null,"callback_sent_at":null,"callback_status_code":null,"callback_error":null,"ttft_ns":150000000,"total_duration_ns":31216000,"timeout_seconds":null,"claimed_by":null,"lease_expires_at":null}"#;

    #[test]
    fn the_documented_job_reads_and_writes_back_the_same_json() {
        let job: Job = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.progress(), Some(1.0));
        assert!(job.is_finished());
        let again: serde_json::Value = serde_json::to_value(&job).unwrap();
        let original: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn a_malformed_id_is_refused() {
        let bad = SAMPLE.replace("job-01a223ec", "job-XYZ");
        assert!(serde_json::from_str::<Job>(&bad).is_err());
    }
}
