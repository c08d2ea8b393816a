//! One job: create, get, update, cancel, delete.

use jobs_domain::{JobId, JobUpdate, NewJob};
use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::transport::Call;
use crate::{Client, Job};

/// How a job is created, besides what it is ([`NewJob`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Create the job straight into `pending` (created and submitted in one request), so a
    /// worker can claim it at once.
    pub submit: bool,
    /// The project to file the job under (`X-Project-Id`).
    pub project_id: Option<String>,
    /// The `Idempotency-Key`. By default the client makes a fresh one (a UUID) for each
    /// call of [`Client::create_with`], and sends that same key on every retry of it. Give
    /// your own to make creates safe to repeat across calls or processes: the same key
    /// within 24 hours returns the job the first request created.
    pub idempotency_key: Option<String>,
}

impl CreateOptions {
    /// Options that create the job straight into `pending`.
    pub fn submitted() -> Self {
        CreateOptions { submit: true, ..CreateOptions::default() }
    }
}

/// The request body of a create.
pub(crate) fn create_body(new: &NewJob, submit: bool) -> Value {
    let mut body = Map::new();
    body.insert("job_type".into(), json!(new.job_type()));
    body.insert("metadata".into(), Value::Object(new.metadata().clone()));
    body.insert("background".into(), json!(new.background()));
    if let Some(agent) = new.agent_id() {
        body.insert("agent_id".into(), json!(agent.as_str()));
    }
    if let Some(source) = new.source_id() {
        body.insert("source_id".into(), json!(source.as_str()));
    }
    if let Some(url) = new.callback_url() {
        body.insert("callback_url".into(), json!(url.as_str()));
    }
    if let Some(timeout) = new.timeout_seconds() {
        body.insert("timeout_seconds".into(), json!(timeout.get()));
    }
    if submit {
        body.insert("status".into(), json!("pending"));
    }
    Value::Object(body)
}

/// The request body of an update.
pub(crate) fn update_body(update: &JobUpdate) -> Value {
    let mut body = Map::new();
    if let Some(status) = update.status() {
        body.insert("status".into(), json!(status));
    }
    if let Some(metadata) = update.metadata() {
        body.insert("metadata".into(), Value::Object(metadata.clone()));
    }
    if let Some(ttft) = update.ttft_ns() {
        body.insert("ttft_ns".into(), json!(ttft));
    }
    if let Some(total) = update.total_duration_ns() {
        body.insert("total_duration_ns".into(), json!(total));
    }
    Value::Object(body)
}

impl Client {
    /// Creates a job (`POST /api/jobs`); it starts in `created`.
    ///
    /// The request carries a fresh `Idempotency-Key`, so it is retried safely: a retry
    /// after a lost answer returns the job the first attempt made.
    pub async fn create(&self, new: &NewJob) -> Result<Job> {
        self.create_with(new, CreateOptions::default()).await
    }

    /// Creates a job with [`CreateOptions`]: straight into `pending`, in a project, or
    /// with your own `Idempotency-Key`.
    pub async fn create_with(&self, new: &NewJob, options: CreateOptions) -> Result<Job> {
        let key = options.idempotency_key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut call = Call::new(self, Method::POST, self.url("/api/jobs")?)
            .body(create_body(new, options.submit))
            .header("idempotency-key", &key)?
            .safe(true);
        if let Some(project) = &options.project_id {
            call = call.header("x-project-id", project)?;
        }
        self.job_call(&call).await
    }

    /// Reads one job (`GET /api/jobs/{id}`), with its `ETag`.
    pub async fn get(&self, id: &JobId) -> Result<Job> {
        let call = Call::new(self, Method::GET, self.url(&format!("/api/jobs/{id}"))?);
        self.job_call(&call).await
    }

    /// Updates a job (`PATCH /api/jobs/{id}`): status, metadata (a JSON merge patch) and
    /// timings, as a worker does. Never retried: it is not safe to repeat.
    pub async fn update(&self, id: &JobId, update: &JobUpdate) -> Result<Job> {
        self.update_call(id, update, None).await
    }

    /// [`Client::update`] only if the job's `ETag` is still `etag` (`If-Match`); otherwise
    /// the error is `412 precondition_failed` and nothing changed.
    pub async fn update_if_match(&self, id: &JobId, update: &JobUpdate, etag: &str) -> Result<Job> {
        self.update_call(id, update, Some(etag)).await
    }

    async fn update_call(&self, id: &JobId, update: &JobUpdate, etag: Option<&str>) -> Result<Job> {
        let url = self.url(&format!("/api/jobs/{id}"))?;
        let mut call = Call::new(self, Method::PATCH, url).body(update_body(update)).safe(false);
        if let Some(etag) = etag {
            call = call.header("if-match", etag)?;
        }
        self.job_call(&call).await
    }

    /// Cancels a job (`PATCH /api/jobs/{id}/cancel`). Cancelling a cancelled job succeeds
    /// and changes nothing, so this is retried like a read.
    pub async fn cancel(&self, id: &JobId) -> Result<Job> {
        self.conditional(Method::PATCH, &format!("/api/jobs/{id}/cancel"), None).await
    }

    /// [`Client::cancel`] only if the job's `ETag` is still `etag` (`If-Match`).
    pub async fn cancel_if_match(&self, id: &JobId, etag: &str) -> Result<Job> {
        self.conditional(Method::PATCH, &format!("/api/jobs/{id}/cancel"), Some(etag)).await
    }

    /// Deletes a finished job (`DELETE /api/jobs/{id}`) and returns it as it was. An active
    /// job is `409 conflict`: cancel it first. Retried like a read; a retry after a lost
    /// answer finds the job gone (`404`).
    pub async fn delete(&self, id: &JobId) -> Result<Job> {
        self.conditional(Method::DELETE, &format!("/api/jobs/{id}"), None).await
    }

    /// [`Client::delete`] only if the job's `ETag` is still `etag` (`If-Match`).
    pub async fn delete_if_match(&self, id: &JobId, etag: &str) -> Result<Job> {
        self.conditional(Method::DELETE, &format!("/api/jobs/{id}"), Some(etag)).await
    }

    async fn conditional(&self, method: Method, path: &str, etag: Option<&str>) -> Result<Job> {
        let mut call = Call::new(self, method, self.url(path)?).safe(true);
        if let Some(etag) = etag {
            call = call.header("if-match", etag)?;
        }
        self.job_call(&call).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jobs_domain::{JobStatus, JobType, Label, TimeoutSeconds};

    #[test]
    fn a_new_job_becomes_the_documented_create_body() {
        let new = NewJob::default()
            .with_job_type(JobType::Batch)
            .with_agent_id(Label::parse("agent_id", "a-7").unwrap())
            .with_timeout_seconds(TimeoutSeconds::new(60).unwrap());
        assert_eq!(
            create_body(&new, true),
            json!({"job_type": "batch", "metadata": {}, "background": false,
                   "agent_id": "a-7", "timeout_seconds": 60, "status": "pending"})
        );
    }

    #[test]
    fn an_update_sends_only_what_it_names() {
        let update = JobUpdate::new(Some(JobStatus::Running), None, Some(5), None).unwrap();
        assert_eq!(update_body(&update), json!({"status": "running", "ttft_ns": 5}));
    }
}
