//! A job's history (`GET /api/jobs/{job_id}/events`), the event body shared with the change
//! stream, and the request context recorded on every event (actor and request id).

use std::cell::RefCell;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use jobs_domain::event::Event;
use jobs_store::EventContext;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::dto::JobIdPath;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

tokio::task_local! {
    static CONTEXT: RefCell<EventContext>;
}

/// Runs a request with its request id recorded on the events it causes (the middleware
/// calls this around every request).
pub async fn with_request<F: std::future::Future>(request_id: String, f: F) -> F::Output {
    CONTEXT.scope(RefCell::new(EventContext::new("anonymous", Some(request_id))), f).await
}

/// Records the authenticated caller's `sub` as the actor of the request's events.
pub(crate) fn set_actor(sub: &str) {
    let _ = CONTEXT.try_with(|cx| sub.clone_into(&mut cx.borrow_mut().actor));
}

/// The current request's event context (`system` outside a request).
pub(crate) fn context() -> EventContext {
    CONTEXT.try_with(|cx| cx.borrow().clone()).unwrap_or_else(|_| EventContext::system())
}

/// A recorded change.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventView {
    /// Increases with commit order: what follows event N always has an id above N.
    pub id: i64,
    /// `job.created`, `job.updated`, `job.status_changed`, `job.deleted` or
    /// `webhook.attempted`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(job\\.(created|updated|status_changed|deleted)|webhook\\.attempted)$")]
    pub event_type: String,
    /// The job.
    pub job_id: String,
    /// When (RFC 3339, microseconds, UTC).
    #[schema(format = DateTime)]
    pub at: String,
    /// The token's `sub`, or `system` for the server's own changes.
    pub actor: String,
    /// The `x-request-id` of the request that made the change, if any.
    pub request_id: Option<String>,
    /// Depends on the type: `{"status"}`, `{"fields"}`, `{"from", "to", "reason"}`,
    /// `{"reason"}`, or `{"attempt", "status_code", "error", "duration_ms",
    /// "next_attempt_at"}`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<Event> for EventView {
    fn from(e: Event) -> EventView {
        EventView {
            id: e.id,
            event_type: e.event_type.as_str().to_owned(),
            job_id: e.job_id.to_string(),
            at: jobs_domain::timestamp::rfc3339_micros(e.at),
            actor: e.actor,
            request_id: e.request_id,
            data: e.data,
        }
    }
}

/// History parameters.
#[derive(Deserialize, IntoParams, Debug)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct HistoryParams {
    /// Only events after this event id.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size, 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u16>,
}

fn parse_param<T: std::str::FromStr + PartialOrd>(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ApiError> {
    value.parse::<T>().ok().filter(|v| range.contains(v)).ok_or_else(|| {
        ApiError::validation(format!("{name}: must be an integer in range"))
            .with_details(serde_json::json!({"field": name}))
    })
}

/// A job's history: every change and webhook attempt, oldest first.
///
/// `after` and `limit` paginate; when more events follow, the `Link` header carries the
/// next page (`rel="next"`).
#[utoipa::path(
    get, path = "/api/jobs/{job_id}/events", tag = "jobs",
    params(JobIdPath, HistoryParams, crate::dto::ActingUser),
    responses(
        (status = 200, description = "The job's events, oldest first", body = Vec<EventView>,
            headers(("Link" = String, description = "RFC 8288 link to the next page, rel=\"next\""))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Missing scope", body = ErrorBody),
        (status = 404, description = "No such job (or not yours)", body = ErrorBody),
        (status = 422, description = "Malformed job id or parameter", body = ErrorBody),
        (status = 500, description = "Unexpected server error", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody)),
    security(("bearer_auth" = []))
)]
pub async fn job_events(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = jobs_domain::JobId::parse(&path).map_err(|e| {
        ApiError::validation(format!("job_id: {e}"))
            .with_details(serde_json::json!({"field": "job_id"}))
    })?;
    let (mut after, mut limit) = (None, 100u16);
    for (k, v) in form_urlencoded::parse(req.query_string().as_bytes()) {
        match &*k {
            "after" => after = Some(parse_param("after", &v, 0..=i64::MAX)?),
            "limit" => limit = parse_param("limit", &v, 1..=1000)?,
            _ => {}
        }
    }
    let vis = caller.visibility();
    let store = state.store.clone();
    let (events, more) = web::block(move || store.job_events(&vis, id, after, limit))
        .await
        .map_err(ApiError::internal)??;
    let mut response = HttpResponse::Ok();
    if let (true, Some(last)) = (more, events.last()) {
        let link = format!("<{}?after={}&limit={limit}>; rel=\"next\"", req.path(), last.id);
        response.insert_header((header::LINK, link));
    }
    Ok(response.json(events.into_iter().map(EventView::from).collect::<Vec<_>>()))
}

/// Registers the history and the change stream under `/api` and `/v1`.
pub fn event_routes(cfg: &mut web::ServiceConfig) {
    for prefix in ["/api", "/v1"] {
        cfg.service(
            crate::metrics::resource(&format!("{prefix}/jobs/{{job_id}}/events"))
                .route(web::get().to(job_events)),
        );
    }
}
