//! The endpoints of the job routes. Each reads its inputs through extractors and the
//! parsing modules, calls the store on the blocking pool, and answers with a DTO; every
//! failure is an [`ApiError`].

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use jobs_domain::{Job, JobId, JobStatus, JobUpdate, ListDefaults, ListQuery, Visibility};
use jobs_store::{JobStore, StoreResult};

use crate::auth::Caller;
use crate::body::JsonBody;
use crate::dto::{
    ActingUser, CreateJobRequest, IdempotencyKey, JobIdPath, JobView, ListParams, ProjectHeader,
    UpdateJobRequest,
};
use crate::error::{ApiError, ErrorBody};
use crate::etag::{if_match_versions, job_response};
use crate::headers::text_header;
use crate::new_job::new_job;
use crate::openapi::{BodyErrors, CommonErrors, JobPathErrors, NotFound};
use crate::paging::{next_link, parse_job_id, query_pairs};
use crate::AppState;

/// List jobs, newest first, with filters and keyset pagination.
///
/// The body is a bare JSON array. When more jobs follow, the `Link` header carries the
/// next page (`rel="next"`) with the same filters. `X-Project-Id` filters by project.
#[utoipa::path(
    get, path = "/api/jobs", tag = "jobs",
    params(ListParams, ActingUser, ProjectHeader),
    responses(
        (status = 200, description = "A page of jobs", body = Vec<JobView>,
            headers(("Link" = String, description = "RFC 8288 link to the next page, rel=\"next\""))),
        (status = 400, description = "Unknown or foreign cursor", body = ErrorBody),
        (status = 422, description = "Bad query parameter", body = ErrorBody),
        CommonErrors),
    security(("bearer_auth" = []))
)]
pub async fn list_jobs(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    list(caller, req, state, ListDefaults::LIST).await
}

/// List active jobs (deprecated: use `GET /api/jobs?active=true`).
///
/// Same parameters as the list, with 50 jobs per page, oldest first, by default.
#[utoipa::path(
    get, path = "/api/jobs/active", tag = "jobs",
    params(ListParams, ActingUser, ProjectHeader),
    responses(
        (status = 200, description = "A page of active jobs", body = Vec<JobView>,
            headers(("Link" = String, description = "RFC 8288 link to the next page, rel=\"next\""))),
        (status = 400, description = "Unknown or foreign cursor", body = ErrorBody),
        (status = 422, description = "Bad query parameter", body = ErrorBody),
        CommonErrors),
    security(("bearer_auth" = []))
)]
#[deprecated(note = "use GET /api/jobs?active=true")]
pub async fn list_active_jobs(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    list(caller, req, state, ListDefaults::ACTIVE).await
}

/// Both lists: they differ only in their defaults.
async fn list(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
    defaults: ListDefaults,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req);
    let mut query = ListQuery::from_pairs(pairs.iter().map(|(k, v)| (k, v)), defaults)?;
    query.project_id = text_header(&req, "x-project-id")?;
    let vis = caller.visibility();
    let q = query.clone();
    let page = state.read(move |store| store.list(&vis, &q)).await?;

    let mut response = HttpResponse::Ok();
    if page.has_more {
        if let Some(last) = page.jobs.last() {
            response.insert_header((header::LINK, next_link(req.path(), &pairs, &query, last.id)));
        }
    }
    let body = crate::dto_json::write_jobs(&page.jobs);
    Ok(response.insert_header(header::ContentType::json()).body(body))
}

/// Get one job.
#[utoipa::path(
    get, path = "/api/jobs/{job_id}", tag = "jobs",
    params(JobIdPath, ActingUser),
    responses(
        (status = 200, description = "The job", body = JobView,
            headers(("ETag" = String, description = "The job's entity tag: it changes with every change"),
                ("Preference-Applied" = String, description = "`wait=N` when `Prefer: wait` was honoured"))),
        (status = 304, description = "`If-None-Match` names the current ETag (after the wait, with `Prefer: wait=N`)"),
        JobPathErrors, CommonErrors),
    security(("bearer_auth" = []))
)]
pub async fn get_job(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_job_id(&path)?;
    crate::wait::read_job(&req, &state, caller.visibility(), id).await
}

/// The store call of a conditional cancel or delete: the job, its id and the versions
/// `If-Match` allows.
type Conditional = fn(&JobStore, &Visibility, JobId, Option<&[i64]>) -> StoreResult<Job>;

/// The shape of cancel and delete: one job by its path id, reached as its owner (or an
/// admin), one conditional store call, the job with its ETag.
async fn conditional_job(
    caller: Caller,
    req: &HttpRequest,
    path: &str,
    state: &AppState,
    call: Conditional,
) -> Result<HttpResponse, ApiError> {
    let id = parse_job_id(path)?;
    let vis = caller.owner_visibility();
    let if_match = if_match_versions(req);
    let job = state.run(move |store| call(store, &vis, id, if_match.as_deref())).await?;
    state.notifier.job_id_changed(id);
    Ok(job_response(StatusCode::OK, job))
}

/// Create a job.
///
/// With an `Idempotency-Key` header, the same key from the same user within 24 hours
/// returns the job created the first time (200); the same key with a different body is 409.
#[utoipa::path(
    post, path = "/api/jobs", tag = "jobs",
    request_body(content = CreateJobRequest, content_type = "application/json"),
    params(IdempotencyKey, ActingUser, ProjectHeader),
    responses(
        (status = 201, description = "Created", body = JobView,
            headers(("ETag" = String, description = "The job's entity tag"))),
        (status = 200, description = "Created earlier with the same Idempotency-Key", body = JobView),
        (status = 409, description = "Idempotency-Key reused with a different body", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
        BodyErrors, CommonErrors),
    security(("bearer_auth" = []))
)]
pub async fn create_job(
    caller: Caller,
    req: HttpRequest,
    JsonBody(body): JsonBody<CreateJobRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let project_id = text_header(&req, "x-project-id")?;
    let key = text_header(&req, "idempotency-key")?;
    let start = match body.status {
        Some(crate::workers::SubmitStatus::Pending) => JobStatus::Pending,
        None => JobStatus::Created,
    };
    let new = new_job(body, &state).await?;
    let owner = caller.owner(project_id);
    let created = match key {
        // The commonest write waits for its group commit without holding a thread.
        None => state
            .store
            .acting(crate::events::context())
            .create_new(owner, new, start)
            .await
            .map_err(ApiError::from)?,
        Some(key) => state.run(move |store| store.create_in(owner, new, Some(&key), start)).await?,
    };
    state.notifier.job_changed(&created.job);
    let status = if created.replayed { StatusCode::OK } else { StatusCode::CREATED };
    Ok(job_response(status, created.job))
}

/// Update a job (workers): status, metadata (JSON merge patch) and timings.
///
/// The status must follow the lifecycle; a job in a terminal status accepts no update.
/// Both are 409 `invalid_job_status_transition` with `details.current_status`.
#[utoipa::path(
    patch, path = "/api/jobs/{job_id}", tag = "jobs",
    request_body(content = UpdateJobRequest, content_type = "application/json"),
    params(JobIdPath, ActingUser),
    responses(
        (status = 200, description = "The updated job", body = JobView,
            headers(("ETag" = String, description = "The job's entity tag"))),
        (status = 409, description = "Transition not allowed, or claimed by another worker", body = ErrorBody),
        (status = 412, description = "`If-Match` does not name the current ETag: nothing changed", body = ErrorBody),
        (status = 422, description = "Invalid body or job id", body = ErrorBody),
        NotFound, BodyErrors, CommonErrors),
    security(("bearer_auth" = []))
)]
pub async fn update_job(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    JsonBody(body): JsonBody<UpdateJobRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_job_id(&path)?;
    let update = JobUpdate::new(body.status, body.metadata, body.ttft_ns, body.total_duration_ns)?
        .with_max_metadata_bytes(state.max_metadata_bytes);
    let (vis, worker) = (caller.visibility(), caller.subject);
    let if_match = if_match_versions(&req);
    let job = state
        .run(move |store| store.update_by(&vis, &worker, id, &update, if_match.as_deref()))
        .await?;
    state.notifier.job_changed(&job);
    Ok(job_response(StatusCode::OK, job))
}

/// Cancel a job.
///
/// A `created`, `pending` or `running` job becomes `cancelled`; cancelling a cancelled job
/// changes nothing and succeeds; a `completed`, `failed` or `expired` job is 409.
#[utoipa::path(
    patch, path = "/api/jobs/{job_id}/cancel", tag = "jobs",
    params(JobIdPath, ActingUser),
    responses(
        (status = 200, description = "The cancelled job", body = JobView,
            headers(("ETag" = String, description = "The job's entity tag"))),
        (status = 409, description = "The job already finished", body = ErrorBody),
        (status = 412, description = "`If-Match` does not name the current ETag: nothing changed", body = ErrorBody),
        JobPathErrors, CommonErrors),
    security(("bearer_auth" = []))
)]
pub async fn cancel_job(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    conditional_job(caller, &req, &path, &state, |store, vis, id, m| store.cancel_if(vis, id, m))
        .await
}

/// Delete a finished job for good.
///
/// A job that is still active is 409 `conflict` with `details.current_status`: cancel it
/// first.
#[utoipa::path(
    delete, path = "/api/jobs/{job_id}", tag = "jobs",
    params(JobIdPath, ActingUser),
    responses(
        (status = 200, description = "The deleted job", body = JobView,
            headers(("ETag" = String, description = "The job's entity tag"))),
        (status = 409, description = "The job is still active", body = ErrorBody),
        (status = 412, description = "`If-Match` does not name the current ETag: nothing changed", body = ErrorBody),
        JobPathErrors, CommonErrors),
    security(("bearer_auth" = []))
)]
pub async fn delete_job(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    conditional_job(caller, &req, &path, &state, |store, vis, id, m| store.delete_if(vis, id, m))
        .await
}
