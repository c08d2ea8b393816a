//! Routing: the job routes under `/api` and `/v1`, health, the fallbacks that keep every
//! error in the one body, and the OpenAPI document.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{web, HttpResponse, ResponseError, Route};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{Modify, OpenApi};

use crate::dto::{
    CreateJobRequest, Health, JobStatusDto, JobTypeDto, JobView, OrderByDto, OrderDto,
    UpdateJobRequest,
};
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::handlers;
use crate::openapi::{FieldRules, Wiring};
use crate::ratelimit::RateLimitedResponses;
use crate::AppState;
use jobs_store::StoreError;

/// The OpenAPI 3.1 document, generated from the handlers and DTOs.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Jobs API",
        description = "Track and control asynchronous background jobs: create them, drive them \
through created → pending → running → completed | failed | cancelled | expired, list, \
cancel and delete them.\n\nEvery route under /api is also served under /v1 (and /v1/jobs/ \
with a trailing slash for the list). Authenticate with `Authorization: Bearer <JWT>`.",
        license(name = "Apache-2.0")
    ),
    paths(
        handlers::list_jobs,
        handlers::create_job,
        handlers::list_active_jobs,
        handlers::get_job,
        handlers::update_job,
        handlers::delete_job,
        handlers::cancel_job,
        crate::workers::claim_job,
        crate::workers::heartbeat,
        crate::events::job_events,
        crate::stream::stream_events,
        healthz,
        readyz,
        crate::metrics::metrics,
    ),
    components(schemas(OrderDto, OrderByDto, JobView, JobStatusDto, JobTypeDto, CreateJobRequest, UpdateJobRequest,
        ErrorBody, ErrorDetail, Health, crate::workers::ClaimRequest, crate::workers::HeartbeatRequest,
        crate::workers::SubmitStatus, crate::openapi::MetadataDto, crate::openapi::ErrorTypeDto,
        crate::openapi::ErrorDetailsDto)),
    modifiers(&BearerAuth, &RateLimitedResponses, &FieldRules, &Wiring),
    tags((name = "health", description = "Liveness, readiness and metrics"),
        (name = "jobs", description = "Jobs and their lifecycle"),
        (name = "workers", description = "Claims and leases: how workers take and keep jobs"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        scheme.description = Some(
            "A JWT with `sub`, `exp` and `scope` (jobs:read, jobs:write, jobs:admin, jobs:work)."
                .to_owned(),
        );
        components.add_security_scheme("bearer_auth", SecurityScheme::Http(scheme));
        // An update names at least one field. (utoipa's `min_properties` attribute writes
        // `maxProperties`, so this is set here.)
        if let Some(RefOr::T(Schema::Object(update))) =
            components.schemas.get_mut(&*<UpdateJobRequest as utoipa::ToSchema>::name())
        {
            update.min_properties = Some(1);
            update.max_properties = None;
        }
    }
}

/// 404 for an unknown path.
pub async fn not_found() -> HttpResponse {
    ApiError::route_not_found().error_response()
}

/// Where the job routes live.
pub(crate) const PREFIXES: [&str; 2] = ["/api", "/v1"];
/// The path of the active jobs, under `{prefix}/jobs/`.
const ACTIVE: &str = "active";
/// The path of claims, under `{prefix}/jobs/`.
const CLAIM: &str = "claim";
/// The fixed paths under `{prefix}/jobs/`: never job ids.
pub(crate) const NOT_JOB_IDS: [&str; 2] = [ACTIVE, CLAIM];

/// The route template of one job under `prefix`: its path and its metrics label.
pub(crate) fn job_id_pattern(prefix: &str) -> String {
    format!("{prefix}/jobs/{{job_id}}")
}

/// What `{prefix}/jobs/{job_id}` serves, by method: registered on its resource (which
/// answers any other method with 405 and `Allow`), and served before the router by
/// [`crate::DirectJobRoute`]. The resource has nothing else (no guard, middleware or app
/// data but its route label), so that both ways of reaching a handler stay the same.
pub(crate) fn job_id_routes() -> [(Method, Route); 3] {
    [
        (Method::GET, web::get().to(handlers::get_job)),
        (Method::PATCH, web::patch().to(handlers::update_job)),
        (Method::DELETE, web::delete().to(handlers::delete_job)),
    ]
}

/// Registers the job routes under `/api` and `/v1`. (GET, PATCH and DELETE of
/// `{prefix}/jobs/{job_id}` are served by [`crate::DirectJobRoute`] before the router.)
#[allow(deprecated)] // `/active` is deprecated for clients, not for us.
pub fn job_routes(cfg: &mut web::ServiceConfig) {
    for prefix in PREFIXES {
        cfg.service(
            crate::metrics::resource(&format!("{prefix}/jobs"))
                .route(web::get().to(handlers::list_jobs))
                .route(web::post().to(handlers::create_job)),
        )
        .service(
            crate::metrics::resource(&format!("{prefix}/jobs/{ACTIVE}"))
                .route(web::get().to(handlers::list_active_jobs)),
        )
        // Before `{job_id}`, so that `claim` is never read as a job id.
        .service(
            crate::metrics::resource(&format!("{prefix}/jobs/{CLAIM}"))
                .route(web::post().to(crate::workers::claim_job)),
        )
        // The hottest route (a GET of one job) is tried first among those with an id.
        .service(
            job_id_routes()
                .into_iter()
                .fold(crate::metrics::resource(&job_id_pattern(prefix)), |r, (_, route)| {
                    r.route(route)
                }),
        )
        .service(
            crate::metrics::resource(&format!("{prefix}/jobs/{{job_id}}/heartbeat"))
                .route(web::post().to(crate::workers::heartbeat)),
        )
        .service(
            crate::metrics::resource(&format!("{prefix}/jobs/{{job_id}}/cancel"))
                .route(web::patch().to(handlers::cancel_job)),
        );
    }
    cfg.service(
        crate::metrics::resource("/v1/jobs/")
            .route(web::get().to(handlers::list_jobs))
            .route(web::post().to(handlers::create_job)),
    );
}

/// Registers `/healthz`, `/readyz` and `/metrics`.
pub fn health_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(crate::metrics::resource("/metrics").route(web::get().to(crate::metrics::metrics)))
        .service(crate::metrics::resource("/healthz").route(web::get().to(healthz)))
        .service(crate::metrics::resource("/readyz").route(web::get().to(readyz)));
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok".to_owned() })
}

/// Readiness answers within this long, whatever the database does.
const READY_DEADLINE: std::time::Duration = std::time::Duration::from_millis(800);

/// Readiness: the database commits a small write within a second.
///
/// 503 when it does not: the database is unreachable or known down, no connection is free,
/// the write cannot commit (a full disk, a read-only database), or the probe runs out of
/// time.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready: a write committed", body = Health),
        (status = 503, description = "Not ready: the database cannot take writes now \
(comes with `Retry-After`)", body = ErrorBody)))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let probe = web::block(move || store.check_ready());
    let cause = match actix_web::rt::time::timeout(READY_DEADLINE, probe).await {
        Ok(Ok(Ok(()))) => return Ok(HttpResponse::Ok().json(Health { status: "ok".to_owned() })),
        Ok(Ok(Err(err))) => err.to_string(),
        Ok(Err(err)) => format!("readiness probe failed: {err}"),
        Err(_) => format!("readiness probe took over {READY_DEADLINE:?}"),
    };
    // Any failure means "not ready", including one that would be a 500 elsewhere.
    Err(ApiError::from(StoreError::Unavailable(cause.into())))
}

fn kind_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_error",
        429 => "rate_limited",
        503 => "unavailable",
        500..=599 => "internal_error",
        _ => "bad_request",
    }
}

/// Middleware that rewrites any error response not already in the error body (actix's own
/// extractor, routing and protocol errors) into it, so that clients meet one error shape.
pub fn error_fallback<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(rewrite_error)
}

fn rewrite_error<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = status.canonical_reason().unwrap_or("Error").to_owned();
    let error = ApiError::new(status, kind_for(status), message);
    let (req, original) = res.into_parts();
    let mut response: HttpResponse<BoxBody> = HttpResponse::build(status).json(error.body());
    // Keep what actix or a handler set (`Allow` on a 405, `Retry-After`, ...): only the
    // body and its framing are replaced.
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    let res: ServiceResponse<EitherBody<B>> =
        ServiceResponse::new(req, response).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
