//! The endpoints of SPEC §4.

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use jobs_domain::{JobId, JobUpdate, ListDefaults, ListQuery, NewJob, Order};
use jobs_store::{JobStore, StoreResult};
use serde::de::DeserializeOwned;

use crate::auth::Caller;
use crate::dto::{
    ActingUser, CreateJobRequest, IdempotencyKey, JobIdPath, JobView, ListParams, ProjectHeader,
    UpdateJobRequest,
};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// Longest accepted id-like string field (agent, source, project, idempotency key).
const MAX_ID_LEN: usize = 256;
/// Longest accepted callback URL.
const MAX_URL_LEN: usize = 2048;

/// Runs a store call on the blocking pool: diesel never runs on an async worker thread.
async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&JobStore) -> StoreResult<T> + Send + 'static,
{
    let store = state.store.acting(crate::events::context());
    web::block(move || f(&store)).await.map_err(ApiError::internal)?.map_err(ApiError::from)
}

fn parse_job_id(raw: &str) -> Result<JobId, ApiError> {
    JobId::parse(raw).map_err(|e| {
        ApiError::validation(format!("job_id: {e}"))
            .with_details(serde_json::json!({"field": "job_id"}))
    })
}

/// Whether a header value is 1 to 256 visible ASCII characters, spaces allowed inside (the
/// `^[!-~]([ -~]*[!-~])?$` pattern, at most 256 long, of the OpenAPI document).
pub(crate) fn is_header_text(value: &[u8]) -> bool {
    (1..=MAX_ID_LEN).contains(&value.len())
        && value.iter().all(|b| (b' '..=b'~').contains(b))
        && value.first() != Some(&b' ')
        && value.last() != Some(&b' ')
}

fn header_value(req: &HttpRequest, name: &str) -> Result<Option<String>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(value) if is_header_text(value.as_bytes()) => {
            Ok(Some(String::from_utf8_lossy(value.as_bytes()).into_owned()))
        }
        Some(_) => Err(ApiError::validation(format!(
            "{name} header: must be 1 to {MAX_ID_LEN} visible ASCII characters"
        ))),
    }
}

/// Reads a JSON body: 413 past the limit, 415 when it is not JSON, 422 when it does not
/// parse or names unknown fields. An empty body is `{}`.
async fn json_body<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::validation(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    let body: Bytes = body.freeze();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if !is_json(req) {
        return Err(ApiError::unsupported_media_type());
    }
    // serde would also read a struct from a JSON array of its fields in order.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::validation("invalid JSON body: expected a JSON object"));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::validation(format!("invalid JSON body: {e}")))
}

fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A string field that reaches the database: 1 to `max` characters, none of them control
/// characters (PostgreSQL cannot store NUL in text, and no id needs one).
fn check_len(field: &str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    let invalid = |why: String| {
        Err(ApiError::validation(format!("{field}: {why}"))
            .with_details(serde_json::json!({"field": field})))
    };
    match value {
        Some(v) if v.is_empty() || v.chars().count() > max => {
            invalid(format!("must be 1 to {max} characters"))
        }
        Some(v) if v.chars().any(char::is_control) => {
            invalid("must not contain control characters".to_owned())
        }
        _ => Ok(()),
    }
}

/// Checks `callback_url`: absolute http(s), and (unless private targets are allowed) not a
/// host that is or resolves to a loopback, private, link-local or unspecified address. A host
/// that does not resolve now is accepted: delivery checks it again.
async fn check_callback_url(value: &Option<String>, state: &AppState) -> Result<(), ApiError> {
    let Some(raw) = value else { return Ok(()) };
    check_len("callback_url", value, MAX_URL_LEN)?;
    let invalid = |why: &str| {
        ApiError::validation(format!("callback_url: {why}"))
            .with_details(serde_json::json!({"field": "callback_url"}))
    };
    let not_http = || invalid("must be an absolute http or https URL");
    let url = url::Url::parse(raw).map_err(|_| not_http())?;
    let host = url.host().filter(|_| matches!(url.scheme(), "http" | "https"));
    let host = host.ok_or_else(not_http)?;
    // The lookup runs on a resolver thread and gives up after 2 s: never on the threads
    // that serve requests or the database.
    if !state.webhook_allow_private && state.resolver.refuses(&host).await {
        return Err(invalid(
            "must not target a loopback, private, link-local or unspecified address",
        ));
    }
    Ok(())
}

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
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Missing scope", body = ErrorBody),
        (status = 422, description = "Bad query parameter", body = ErrorBody),
        (status = 500, description = "Unexpected server error", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody)),
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
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Missing scope", body = ErrorBody),
        (status = 422, description = "Bad query parameter", body = ErrorBody),
        (status = 500, description = "Unexpected server error", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody)),
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

async fn list(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
    defaults: ListDefaults,
) -> Result<HttpResponse, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut query = ListQuery::from_pairs(pairs.iter().map(|(k, v)| (k, v)), defaults)?;
    query.project_id = header_value(&req, "x-project-id")?;
    let vis = caller.visibility();
    let q = query.clone();
    let page = blocking(&state, move |store| store.list(&vis, &q)).await?;

    let mut response = HttpResponse::Ok();
    if page.has_more {
        if let Some(last) = page.jobs.last() {
            response.insert_header((header::LINK, next_link(req.path(), &pairs, &query, last.id)));
        }
    }
    let body: Vec<JobView> = page.jobs.into_iter().map(JobView::from).collect();
    Ok(response.json(body))
}

/// The `Link` to the page after `last`: the same parameters, with the cursor moved on in
/// the direction of the order (and the opposite bound, if any, kept).
fn next_link(path: &str, pairs: &[(String, String)], query: &ListQuery, last: JobId) -> String {
    let mut url = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(k, _)| k != "before" && k != "after") {
        url.append_pair(k, v);
    }
    let last = last.to_string();
    match query.order {
        Order::Desc => {
            url.append_pair("before", &last);
            if let Some(after) = query.after {
                url.append_pair("after", &after.to_string());
            }
        }
        Order::Asc => {
            url.append_pair("after", &last);
            if let Some(before) = query.before {
                url.append_pair("before", &before.to_string());
            }
        }
    }
    format!("<{path}?{}>; rel=\"next\"", url.finish())
}

/// Get one job.
#[utoipa::path(
    get, path = "/api/jobs/{job_id}", tag = "jobs",
    params(JobIdPath, ActingUser),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Missing scope", body = ErrorBody),
        (status = 404, description = "No such job (or not yours)", body = ErrorBody),
        (status = 422, description = "Malformed job id", body = ErrorBody),
        (status = 500, description = "Unexpected server error", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody)),
    security(("bearer_auth" = []))
)]
pub async fn get_job(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_job_id(&path)?;
    let vis = caller.visibility();
    let job = blocking(&state, move |store| store.get(&vis, id)).await?;
    Ok(HttpResponse::Ok().json(JobView::from(job)))
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
        (status = 201, description = "Created", body = JobView),
        (status = 200, description = "Created earlier with the same Idempotency-Key", body = JobView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Missing scope", body = ErrorBody),
        (status = 409, description = "Idempotency-Key reused with a different body", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid body", body = ErrorBody),
        (status = 500, description = "Unexpected server error", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody)),
    security(("bearer_auth" = []))
)]
pub async fn create_job(
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: CreateJobRequest = json_body(&req, payload, state.max_body_bytes).await?;
    let project_id = header_value(&req, "x-project-id")?;
    let key = header_value(&req, "idempotency-key")?;
    check_len("agent_id", &body.agent_id, MAX_ID_LEN)?;
    check_len("source_id", &body.source_id, MAX_ID_LEN)?;
    check_callback_url(&body.callback_url, &state).await?;
    let new = NewJob {
        job_type: body.job_type.map(Into::into).unwrap_or_default(),
        metadata: body.metadata.unwrap_or_default(),
        background: body.background.unwrap_or(false),
        agent_id: body.agent_id,
        source_id: body.source_id,
        callback_url: body.callback_url,
        timeout_seconds: body.timeout_seconds,
    };
    new.validate()?;
    jobs_domain::check_metadata_size(&new.metadata, state.max_metadata_bytes)?;
    let owner = caller.owner(project_id);
    let created = blocking(&state, move |store| store.create(owner, new, key.as_deref())).await?;
    let status = if created.replayed { StatusCode::OK } else { StatusCode::CREATED };
    Ok(HttpResponse::build(status).json(JobView::from(created.job)))
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
        (status = 200, description = "The updated job", body = JobView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Missing scope", body = ErrorBody),
        (status = 404, description = "No such job (or not yours)", body = ErrorBody),
        (status = 409, description = "Transition not allowed", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "Invalid body or job id", body = ErrorBody),
        (status = 500, description = "Unexpected server error", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody)),
    security(("bearer_auth" = []))
)]
pub async fn update_job(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: UpdateJobRequest = json_body(&req, payload, state.max_body_bytes).await?;
    let id = parse_job_id(&path)?;
    let update = JobUpdate::new(
        body.status.map(Into::into),
        body.metadata,
        body.ttft_ns,
        body.total_duration_ns,
    )?
    .with_max_metadata_bytes(state.max_metadata_bytes);
    let vis = caller.visibility();
    let job = blocking(&state, move |store| store.update(&vis, id, &update)).await?;
    Ok(HttpResponse::Ok().json(JobView::from(job)))
}

/// Cancel a job.
///
/// A `created`, `pending` or `running` job becomes `cancelled`; cancelling a cancelled job
/// changes nothing and succeeds; a `completed`, `failed` or `expired` job is 409.
#[utoipa::path(
    patch, path = "/api/jobs/{job_id}/cancel", tag = "jobs",
    params(JobIdPath, ActingUser),
    responses(
        (status = 200, description = "The cancelled job", body = JobView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Missing scope", body = ErrorBody),
        (status = 404, description = "No such job (or not yours)", body = ErrorBody),
        (status = 409, description = "The job already finished", body = ErrorBody),
        (status = 422, description = "Malformed job id", body = ErrorBody),
        (status = 500, description = "Unexpected server error", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody)),
    security(("bearer_auth" = []))
)]
pub async fn cancel_job(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_job_id(&path)?;
    let vis = caller.visibility();
    let job = blocking(&state, move |store| store.cancel(&vis, id)).await?;
    Ok(HttpResponse::Ok().json(JobView::from(job)))
}

/// Delete a finished job for good.
///
/// A job that is still active is 409 `conflict` with `details.current_status`: cancel it
/// first.
#[utoipa::path(
    delete, path = "/api/jobs/{job_id}", tag = "jobs",
    params(JobIdPath, ActingUser),
    responses(
        (status = 200, description = "The deleted job", body = JobView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Missing scope", body = ErrorBody),
        (status = 404, description = "No such job (or not yours)", body = ErrorBody),
        (status = 409, description = "The job is still active", body = ErrorBody),
        (status = 422, description = "Malformed job id", body = ErrorBody),
        (status = 500, description = "Unexpected server error", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody)),
    security(("bearer_auth" = []))
)]
pub async fn delete_job(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_job_id(&path)?;
    let vis = caller.visibility();
    let job = blocking(&state, move |store| store.delete(&vis, id)).await?;
    Ok(HttpResponse::Ok().json(JobView::from(job)))
}
