//! The history of a job: what changed, when, by whom (docs/API.md, "History and the change
//! stream").
//!
//! An event is written in the same transaction as the change it records; this module only
//! decides *which* event a change is, so the rule is the same for every backend.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::{Job, JobId};

/// The actor recorded for changes the server makes itself (the sweeper, the dispatcher).
pub const SYSTEM_ACTOR: &str = "system";

/// What kind of change an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The job was created.
    JobCreated,
    /// Metadata or timings changed without a status change.
    JobUpdated,
    /// The status changed.
    JobStatusChanged,
    /// The job was deleted by a user or purged by retention.
    JobDeleted,
    /// A completion webhook delivery was attempted.
    WebhookAttempted,
}

impl EventType {
    /// Every type, in documentation order.
    pub const ALL: [EventType; 5] = [
        EventType::JobCreated,
        EventType::JobUpdated,
        EventType::JobStatusChanged,
        EventType::JobDeleted,
        EventType::WebhookAttempted,
    ];

    /// The wire name (`job.created`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::JobCreated => "job.created",
            EventType::JobUpdated => "job.updated",
            EventType::JobStatusChanged => "job.status_changed",
            EventType::JobDeleted => "job.deleted",
            EventType::WebhookAttempted => "webhook.attempted",
        }
    }

    /// The type with this wire name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Why a status changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeReason {
    /// A worker's `PATCH`.
    Update,
    /// A user's cancel.
    Cancel,
    /// A worker claimed the job.
    Claim,
    /// The job ran past its `timeout_seconds`.
    Timeout,
    /// The claiming worker's lease lapsed.
    LeaseLapsed,
}

impl ChangeReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeReason::Update => "update",
            ChangeReason::Cancel => "cancel",
            ChangeReason::Claim => "claim",
            ChangeReason::Timeout => "timeout",
            ChangeReason::LeaseLapsed => "lease_lapsed",
        }
    }
}

/// Why a job went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteReason {
    /// A user deleted it.
    Delete,
    /// Retention purged it.
    Retention,
}

impl DeleteReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteReason::Delete => "delete",
            DeleteReason::Retention => "retention",
        }
    }
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Increases with commit order.
    pub id: i64,
    /// What happened.
    pub event_type: EventType,
    /// The job it happened to.
    pub job_id: JobId,
    /// When.
    pub at: DateTime<Utc>,
    /// The token's `sub`, or [`SYSTEM_ACTOR`].
    pub actor: String,
    /// The request that caused it, if any.
    pub request_id: Option<String>,
    /// Type-specific data.
    pub data: Value,
}

/// The event of a job's creation.
pub fn created(job: &Job) -> (EventType, Value) {
    (EventType::JobCreated, json!({"status": job.status.as_str()}))
}

/// The event of a change from `before` to `after`: a status change, or else the list of
/// fields (metadata, timings) that changed.
pub fn changed(before: &Job, after: &Job, reason: ChangeReason) -> (EventType, Value) {
    if before.status != after.status {
        let reason = match reason {
            ChangeReason::Timeout if lease_lapsed_first(before) => ChangeReason::LeaseLapsed,
            other => other,
        };
        return (
            EventType::JobStatusChanged,
            json!({"from": before.status.as_str(), "to": after.status.as_str(),
                   "reason": reason.as_str()}),
        );
    }
    let mut fields = Vec::new();
    if before.metadata != after.metadata {
        fields.push("metadata");
    }
    if before.ttft_ns != after.ttft_ns {
        fields.push("ttft_ns");
    }
    if before.total_duration_ns != after.total_duration_ns {
        fields.push("total_duration_ns");
    }
    (EventType::JobUpdated, json!({ "fields": fields }))
}

/// Whether a running job's lease ends before its timeout does, so that an expiry of it is
/// the lease lapsing rather than the timeout.
fn lease_lapsed_first(job: &Job) -> bool {
    let Some(lease) = job.lease_expires_at else { return false };
    let timeout = match (job.started_at, job.timeout_seconds) {
        (Some(started), Some(secs)) => {
            chrono::TimeDelta::try_seconds(secs).and_then(|d| started.checked_add_signed(d))
        }
        _ => None,
    };
    timeout.is_none_or(|deadline| lease < deadline)
}

/// The event of a job's deletion.
pub fn deleted(reason: DeleteReason) -> (EventType, Value) {
    (EventType::JobDeleted, json!({"reason": reason.as_str()}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobStatus, NewJob, Owner};

    fn job() -> Job {
        Job::create(JobId::generate(), Owner::new("o", "u", None), NewJob::default(), crate::now())
    }

    #[test]
    fn a_status_change_is_recorded_with_its_reason_and_a_metadata_change_with_its_field() {
        let before = job();
        let mut after = before.clone();
        after.status = JobStatus::Pending;
        let (ty, data) = changed(&before, &after, ChangeReason::Update);
        assert_eq!(ty, EventType::JobStatusChanged);
        assert_eq!(data, json!({"from": "created", "to": "pending", "reason": "update"}));
        let mut after = before.clone();
        after.ttft_ns = Some(5);
        let (ty, data) = changed(&before, &after, ChangeReason::Update);
        assert_eq!(ty, EventType::JobUpdated);
        assert_eq!(data, json!({"fields": ["ttft_ns"]}));
    }

    #[test]
    fn an_expiry_is_a_lapsed_lease_when_the_lease_ends_before_the_timeout() {
        let t0 = crate::now();
        let mut running = job();
        running.status = JobStatus::Running;
        running.started_at = Some(t0);
        running.lease_expires_at = Some(t0 + chrono::TimeDelta::seconds(60));
        let mut expired = running.clone();
        expired.status = JobStatus::Expired;
        let reason =
            |before: &Job| changed(before, &expired, ChangeReason::Timeout).1["reason"].clone();
        assert_eq!(reason(&running), json!("lease_lapsed"), "no timeout: the lease lapsed");
        running.timeout_seconds = Some(3600);
        assert_eq!(reason(&running), json!("lease_lapsed"), "the lease ends first");
        running.timeout_seconds = Some(30);
        assert_eq!(reason(&running), json!("timeout"), "the timeout ends first");
        running.lease_expires_at = None;
        assert_eq!(reason(&running), json!("timeout"), "no lease");
    }

    #[test]
    fn every_type_name_parses_back_to_itself() {
        for ty in EventType::ALL {
            assert_eq!(EventType::parse(ty.as_str()), Some(ty));
        }
        assert_eq!(EventType::parse("job.exploded"), None);
    }
}
