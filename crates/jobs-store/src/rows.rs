//! Rows as diesel reads and writes them, and their conversion to and from the domain.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use jobs_domain::{Job, JobId, JobStatus, JobType, Owner};

use crate::schema::{idempotency_keys, jobs};
use crate::spelled::Spelled;
use crate::stamp::Stamp;
use crate::StoreError;

/// A `jobs` row.
/// Absent values are written as NULL (the columns' default anyway), so that an insert is one
/// cacheable statement, and a batch of rows one statement, on SQLite too.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = jobs, treat_none_as_default_value = false)]
pub(crate) struct JobRow {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    pub status: Spelled<JobStatus>,
    pub job_type: Spelled<JobType>,
    pub background: bool,
    pub agent_id: Option<String>,
    pub source_id: Option<String>,
    pub metadata: String,
    pub callback_url: Option<String>,
    pub callback_sent_at: Option<Stamp>,
    pub callback_status_code: Option<i32>,
    pub callback_error: Option<String>,
    pub ttft_ns: Option<i64>,
    pub total_duration_ns: Option<i64>,
    pub timeout_seconds: Option<i64>,
    pub created_at: Stamp,
    pub updated_at: Stamp,
    pub completed_at: Option<Stamp>,
    pub started_at: Option<Stamp>,
    pub expires_at: Option<Stamp>,
    pub version: i64,
    pub claimed_by: Option<String>,
    pub lease_expires_at: Option<Stamp>,
    pub lease_seconds: Option<i64>,
}

/// What a lifecycle change writes: everything a worker or a cancel can change.
#[derive(AsChangeset, Debug)]
#[diesel(table_name = jobs, treat_none_as_null = true)]
pub(crate) struct JobChanges {
    pub status: Spelled<JobStatus>,
    pub metadata: String,
    pub ttft_ns: Option<i64>,
    pub total_duration_ns: Option<i64>,
    pub updated_at: Stamp,
    pub completed_at: Option<Stamp>,
    pub started_at: Option<Stamp>,
    pub expires_at: Option<Stamp>,
    pub version: i64,
    pub claimed_by: Option<String>,
    pub lease_expires_at: Option<Stamp>,
    pub lease_seconds: Option<i64>,
}

/// An `idempotency_keys` row.
#[derive(Queryable, Selectable, Insertable, Clone, Debug)]
#[diesel(table_name = idempotency_keys)]
pub(crate) struct IdempotencyRow {
    pub org_id: String,
    pub user_id: String,
    pub key: String,
    pub request_hash: String,
    pub job_id: String,
    pub created_at: NaiveDateTime,
}

fn stamp(at: DateTime<Utc>) -> Stamp {
    Stamp(at.naive_utc())
}

fn utc(at: Stamp) -> DateTime<Utc> {
    at.0.and_utc()
}

fn corrupt(what: &str, id: &str) -> StoreError {
    StoreError::Internal(format!("stored job {id} has an unreadable {what}").into())
}

impl JobRow {
    pub(crate) fn from_job(job: &Job) -> JobRow {
        JobRow {
            id: job.id.to_string(),
            org_id: job.owner.org_id.clone(),
            user_id: job.owner.user_id.clone(),
            project_id: job.owner.project_id.clone(),
            status: Spelled::of(job.status),
            job_type: Spelled::of(job.job_type),
            background: job.background,
            agent_id: job.agent_id.clone(),
            source_id: job.source_id.clone(),
            metadata: serde_json::Value::Object(job.metadata.clone()).to_string(),
            callback_url: job.callback_url.clone(),
            callback_sent_at: job.callback_sent_at.map(stamp),
            callback_status_code: job.callback_status_code,
            callback_error: job.callback_error.clone(),
            ttft_ns: job.ttft_ns,
            total_duration_ns: job.total_duration_ns,
            timeout_seconds: job.timeout_seconds,
            created_at: stamp(job.created_at),
            updated_at: stamp(job.updated_at),
            completed_at: job.completed_at.map(stamp),
            started_at: job.started_at.map(stamp),
            expires_at: job.expires_at().map(stamp),
            version: job.version,
            claimed_by: job.claimed_by.clone(),
            lease_expires_at: job.lease_expires_at.map(stamp),
            lease_seconds: job.lease_seconds,
        }
    }

    pub(crate) fn into_job(self) -> Result<Job, StoreError> {
        // Straight into the map: anything but a JSON object is refused by the parse itself.
        let metadata = serde_json::from_str::<jobs_domain::Metadata>(&self.metadata)
            .map_err(|_| corrupt("metadata", &self.id))?;
        Ok(Job {
            id: JobId::parse(&self.id).map_err(|_| corrupt("id", &self.id))?,
            status: self.status.0.ok_or_else(|| corrupt("status", &self.id))?,
            job_type: self.job_type.0.ok_or_else(|| corrupt("job_type", &self.id))?,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            completed_at: self.completed_at.map(utc),
            started_at: self.started_at.map(utc),
            metadata,
            background: self.background,
            agent_id: self.agent_id,
            source_id: self.source_id,
            owner: Owner {
                org_id: self.org_id,
                user_id: self.user_id,
                project_id: self.project_id,
            },
            callback_url: self.callback_url,
            callback_sent_at: self.callback_sent_at.map(utc),
            callback_status_code: self.callback_status_code,
            callback_error: self.callback_error,
            ttft_ns: self.ttft_ns,
            total_duration_ns: self.total_duration_ns,
            timeout_seconds: self.timeout_seconds,
            claimed_by: self.claimed_by,
            lease_expires_at: self.lease_expires_at.map(utc),
            lease_seconds: self.lease_seconds,
            version: self.version,
        })
    }
}

impl JobChanges {
    pub(crate) fn from_job(job: &Job, version: i64) -> JobChanges {
        JobChanges {
            status: Spelled::of(job.status),
            metadata: serde_json::Value::Object(job.metadata.clone()).to_string(),
            ttft_ns: job.ttft_ns,
            total_duration_ns: job.total_duration_ns,
            updated_at: stamp(job.updated_at),
            completed_at: job.completed_at.map(stamp),
            started_at: job.started_at.map(stamp),
            expires_at: job.expires_at().map(stamp),
            version,
            claimed_by: job.claimed_by.clone(),
            lease_expires_at: job.lease_expires_at.map(stamp),
            lease_seconds: job.lease_seconds,
        }
    }
}
