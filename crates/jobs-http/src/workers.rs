//! The worker endpoints: claiming the oldest pending job, and renewing a claim's lease.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use jobs_domain::{check_lease_seconds, JobType, Label};
use jobs_store::ClaimFilter;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::dto::{ActingUser, JobIdPath, JobTypeDto, JobView};
use crate::error::{ApiError, ErrorBody};
use crate::etag::job_response;
use crate::openapi::{BodyErrors, CommonErrors, NotFound};
use crate::paging::parse_job_id;
use crate::wait;
use crate::AppState;

/// The only status a job may be created in besides the default `created`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubmitStatus {
    /// Created and submitted at once: claimable right away.
    Pending,
}

/// What a worker is willing to take. Every field is optional; an empty body means `{}`.
#[derive(Deserialize, ToSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Only jobs of this type.
    #[schema(value_type = Option<JobTypeDto>)]
    pub job_type: Option<JobType>,
    /// Only jobs of this agent (its constraints come from the domain, see `FieldRules`).
    pub agent_id: Option<String>,
    /// Only jobs of this source (folder).
    pub folder_id: Option<String>,
    /// The lease length in seconds (default 60): renew it within that time with a
    /// heartbeat or an update, or the job expires.
    #[serde(default, deserialize_with = "crate::dto::nullable_integer")]
    #[schema(minimum = 1, maximum = 3600)]
    pub lease_seconds: Option<i64>,
}

/// A lease renewal. The body is optional.
#[derive(Deserialize, ToSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// A new lease length in seconds (default: the claim's).
    #[serde(default, deserialize_with = "crate::dto::nullable_integer")]
    #[schema(minimum = 1, maximum = 3600)]
    pub lease_seconds: Option<i64>,
}

/// Claim the oldest pending job (workers).
///
/// Atomically takes the oldest pending job that matches the filters, moves it to `running`
/// with `claimed_by` set to the token's `sub` and a lease, and returns it. With `jobs:work`
/// any job of the organization can be claimed; without it, only the caller's own. 204 when
/// there is nothing to claim. With `Prefer: wait=N` (N capped by the server) the request is
/// held until a job arrives (200) or N seconds pass (204).
#[utoipa::path(
    post, path = "/api/jobs/claim", tag = "workers",
    request_body(content = ClaimRequest, content_type = "application/json"),
    params(ActingUser),
    responses(
        (status = 200, description = "The claimed job, now running", body = JobView,
            headers(("ETag" = String, description = "The job's entity tag"),
                ("Preference-Applied" = String, description = "`wait=N` when the wait was honoured"))),
        (status = 204, description = "Nothing to claim",
            headers(("Preference-Applied" = String, description = "`wait=N` when the wait was honoured"))),
        (status = 422, description = "Invalid body", body = ErrorBody),
        BodyErrors, CommonErrors),
    security(("bearer_auth" = []))
)]
pub async fn claim_job(
    caller: Caller,
    req: HttpRequest,
    JsonBody(body): JsonBody<ClaimRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let agent_id = Label::parse_opt("agent_id", body.agent_id)?;
    let folder_id = Label::parse_opt("folder_id", body.folder_id)?;
    check_lease_seconds(body.lease_seconds)?;
    let wait = wait::requested(&req, state.max_wait_seconds);
    let filter = ClaimFilter {
        job_type: body.job_type,
        agent_id: agent_id.map(Label::into_string),
        source_id: folder_id.map(Label::into_string),
    };
    let vis = caller.visibility();
    let worker = caller.subject;
    let lease = body.lease_seconds;
    let deadline = wait.map(|w| tokio::time::Instant::now() + w.duration());
    loop {
        // Subscribe before looking, so that a job submitted in between still wakes us.
        let wake = state.notifier.pending_changes();
        let (v, f, w) = (vis.clone(), filter.clone(), worker.clone());
        let claimed = state.run(move |store| store.claim(&v, &w, &f, lease)).await?;
        if let Some(job) = claimed {
            let mut response = job_response(StatusCode::OK, job);
            wait::mark_applied(&mut response, wait);
            return Ok(response);
        }
        let Some(deadline) = deadline else { break };
        let now = tokio::time::Instant::now();
        if now >= deadline || state.notifier.is_closed() {
            break;
        }
        // With several replicas (PostgreSQL), look again every second as well, in case a
        // wake-up from another replica was lost.
        let step = match state.store.backend() {
            "postgres" => deadline.min(now + std::time::Duration::from_secs(1)),
            _ => deadline,
        };
        wait::until_changed(wake, step, &state.notifier).await;
    }
    let mut response = HttpResponse::NoContent().finish();
    wait::mark_applied(&mut response, wait);
    Ok(response)
}

/// Renew the lease of a claimed job (the claiming worker).
///
/// The lease now ends `lease_seconds` (default: the claim's) from now. Another worker's
/// heartbeat is 409 `conflict` with `details.claimed_by`; a job that is no longer running is
/// 409 `invalid_job_status_transition`.
#[utoipa::path(
    post, path = "/api/jobs/{job_id}/heartbeat", tag = "workers",
    request_body(content = HeartbeatRequest, content_type = "application/json"),
    params(JobIdPath, ActingUser),
    responses(
        (status = 200, description = "The job with its renewed lease", body = JobView,
            headers(("ETag" = String, description = "The job's entity tag"))),
        (status = 409, description = "Claimed by another worker, or not running", body = ErrorBody),
        (status = 422, description = "Invalid body or job id", body = ErrorBody),
        NotFound, BodyErrors, CommonErrors),
    security(("bearer_auth" = []))
)]
pub async fn heartbeat(
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<HeartbeatRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_job_id(&path)?;
    check_lease_seconds(body.lease_seconds)?;
    let vis = caller.visibility();
    let worker = caller.subject;
    let lease = body.lease_seconds;
    let job = state.run(move |store| store.heartbeat(&vis, &worker, id, lease)).await?;
    state.notifier.job_changed(&job);
    Ok(job_response(StatusCode::OK, job))
}
