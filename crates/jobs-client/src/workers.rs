//! The worker side: claiming pending jobs and renewing their leases.

use std::time::Duration;

use jobs_domain::{JobId, JobType};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::transport::{read_job, Call};
use crate::{Client, Job};

/// What a worker is willing to take, and for how long.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimOptions {
    /// Only jobs of this type.
    pub job_type: Option<JobType>,
    /// Only jobs of this agent.
    pub agent_id: Option<String>,
    /// Only jobs of this folder (`source_id`).
    pub folder_id: Option<String>,
    /// The lease, 1 to 3600 seconds (the server's default is 60): renew it with
    /// [`Client::heartbeat`] within that time, or the job expires.
    pub lease_seconds: Option<i64>,
    /// Hold the request until a matching job is pending, for up to this long
    /// (`Prefer: wait=N`; the server caps it, 60 s by default). `None`: answer at once.
    pub wait: Option<Duration>,
}

impl ClaimOptions {
    fn body(&self) -> Value {
        let mut body = Map::new();
        if let Some(job_type) = self.job_type {
            body.insert("job_type".into(), json!(job_type));
        }
        if let Some(agent) = &self.agent_id {
            body.insert("agent_id".into(), json!(agent));
        }
        if let Some(folder) = &self.folder_id {
            body.insert("folder_id".into(), json!(folder));
        }
        if let Some(lease) = self.lease_seconds {
            body.insert("lease_seconds".into(), json!(lease));
        }
        Value::Object(body)
    }
}

impl Client {
    /// Claims the oldest pending job that matches (`POST /api/jobs/claim`): it is now
    /// `running`, `claimed_by` this token's `sub`, with a lease. `None` when there is
    /// nothing to claim (after the wait, if one was asked for).
    ///
    /// Never retried: a claim whose answer was lost may have taken a job, and repeating
    /// it could take a second one. The lost job's lease lapses and it expires.
    pub async fn claim(&self, options: &ClaimOptions) -> Result<Option<Job>> {
        let url = self.url("/api/jobs/claim")?;
        let mut call = Call::new(self, Method::POST, url).body(options.body()).safe(false);
        if let Some(wait) = options.wait {
            call = call.prefer_wait(wait)?;
        }
        let response = self.execute(&call).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        read_job(response).await.map(Some)
    }

    /// Renews the lease of a job this worker claimed (`POST /api/jobs/{id}/heartbeat`),
    /// for `lease_seconds` from now (`None`: the claim's length). Retried like a read: a
    /// repeated heartbeat only renews the lease again.
    pub async fn heartbeat(&self, id: &JobId, lease_seconds: Option<i64>) -> Result<Job> {
        let url = self.url(&format!("/api/jobs/{id}/heartbeat"))?;
        let body = match lease_seconds {
            Some(seconds) => json!({ "lease_seconds": seconds }),
            None => json!({}),
        };
        let call = Call::new(self, Method::POST, url).body(body).safe(true);
        self.job_call(&call).await
    }
}
