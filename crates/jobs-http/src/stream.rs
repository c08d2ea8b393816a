//! The change stream (`GET /api/events`): Server-Sent Events of every event on the jobs a
//! caller can see, as they commit.
//!
//! How events reach the streams is [`hub`]'s story.

mod hub;

use std::collections::VecDeque;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use jobs_domain::event::EventType;
use jobs_domain::{JobId, JobType, Visibility};
use jobs_store::{EventFilter, EventWithJob, JobStore};
use serde::Deserialize;
use tokio::sync::watch;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::dto::{JobTypeDto, JobView};
use crate::error::{ApiError, ErrorBody};
use crate::events::EventView;
use crate::AppState;

/// The default of `JOBS_MAX_STREAMS_PER_USER`.
pub const DEFAULT_MAX_STREAMS_PER_USER: usize = 16;
/// A comment line is sent this often when a stream is idle.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The tailer looks at the table at least this often.
pub const POLL: Duration = Duration::from_secs(1);
/// Events read per round trip.
pub(crate) const PAGE: i64 = 500;

pub use hub::EventHub;
use hub::Slot;

/// Change stream parameters.
#[derive(Deserialize, IntoParams, Debug)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StreamParams {
    /// Only these jobs (repeatable).
    #[param(style = Form, explode = true)]
    pub job_id: Option<Vec<String>>,
    /// Only jobs of this type.
    #[param(value_type = Option<JobTypeDto>)]
    pub job_type: Option<jobs_domain::JobType>,
    /// Only jobs of this agent.
    #[param(min_length = 1, max_length = 256)]
    pub agent_id: Option<String>,
    /// Only these event types (repeatable).
    #[param(style = Form, explode = true)]
    pub r#type: Option<Vec<String>>,
    /// Resume after this event id (as the `Last-Event-ID` header does).
    #[param(minimum = 0)]
    pub last_event_id: Option<i64>,
}

fn invalid(field: &str, why: &str) -> ApiError {
    ApiError::validation(format!("{field}: {why}"))
        .with_details(serde_json::json!({"field": field}))
}

fn parse_cursor(field: &str, value: &str) -> Result<i64, ApiError> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| invalid(field, "must be an event id (a non-negative integer)"))
}

/// The filter and the resume point of a request.
fn parse_request(req: &HttpRequest) -> Result<(EventFilter, Option<i64>), ApiError> {
    let mut filter = EventFilter::default();
    let mut resume = None;
    for (k, v) in form_urlencoded::parse(req.query_string().as_bytes()) {
        match &*k {
            "job_id" => filter
                .job_ids
                .push(JobId::parse(&v).map_err(|e| invalid("job_id", &e.to_string()))?),
            "job_type" => {
                let t: JobType =
                    v.parse().map_err(|_| invalid("job_type", "must be job, run or batch"))?;
                filter.job_type = Some(t);
            }
            "agent_id"
                if v.is_empty() || v.chars().count() > 256 || v.chars().any(char::is_control) =>
            {
                return Err(invalid(
                    "agent_id",
                    "must be 1 to 256 characters, no control characters",
                ));
            }
            "agent_id" => filter.agent_id = Some(v.into_owned()),
            "type" => filter
                .types
                .push(EventType::parse(&v).ok_or_else(|| invalid("type", "unknown event type"))?),
            "last_event_id" => resume = Some(parse_cursor("last_event_id", &v)?),
            _ => {}
        }
    }
    if let Some(value) = req.headers().get("last-event-id") {
        let text = value.to_str().map_err(|_| invalid("Last-Event-ID", "must be an event id"))?;
        resume = Some(parse_cursor("Last-Event-ID", text)?);
    }
    Ok((filter, resume))
}

/// Live change stream of the caller's jobs (Server-Sent Events).
///
/// Each message is `id: <event id>`, `event: <type>` and `data: <the event, plus "job": the
/// job as it is now, or null once deleted>`. `Last-Event-ID` (header, or the
/// `last_event_id` parameter) resumes after that event, replaying what was missed first; if
/// some of it is no longer held, the first message is `event: reset`. A `: keep-alive`
/// comment is sent every 15 seconds when idle. At most `JOBS_MAX_STREAMS_PER_USER` open
/// streams per user: one more is 429.
#[utoipa::path(
    get, path = "/api/events", tag = "jobs",
    params(StreamParams, crate::dto::ActingUser,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")),
    responses(
        (status = 200, description = "A stream of Server-Sent Events, one message per event: \
each `data` line is an `Event` (see the schema) with a `job` member added",
            content_type = "text/event-stream", body = String),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Missing scope", body = ErrorBody),
        (status = 422, description = "Bad parameter", body = ErrorBody),
        (status = 429, description = "Too many open streams", body = ErrorBody),
        (status = 500, description = "Unexpected server error", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody)),
    security(("bearer_auth" = []))
)]
pub async fn stream_events(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (filter, resume) = parse_request(&req)?;
    let hub = state.events.clone();
    let vis = caller.visibility();
    let slot = hub.acquire((vis.org_id.clone(), caller.subject.clone()))?;
    let store = state.store.clone();
    let (cursor, horizon) = web::block(move || {
        Ok::<_, jobs_store::StoreError>((store.last_event_id()?, store.event_horizon()?))
    })
    .await
    .map_err(ApiError::internal)??;
    let mut pending = VecDeque::new();
    if resume.is_some_and(|r| r < horizon) {
        pending.push_back(Bytes::from_static(
            b"event: reset\ndata: {\"reason\":\"some events after Last-Event-ID are no longer held\"}\n\n",
        ));
    }
    let stream = Stream {
        store: state.store.clone(),
        vis,
        filter,
        cursor: resume.unwrap_or(cursor),
        latest: hub.latest.subscribe(),
        hub: hub.clone(),
        closing: hub.closing.subscribe(),
        pending,
        fresh: true,
        _slot: slot,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_ENCODING, "identity"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(futures_util::stream::unfold(stream, next_message)))
}

struct Stream {
    store: JobStore,
    vis: Visibility,
    filter: EventFilter,
    cursor: i64,
    hub: std::sync::Arc<EventHub>,
    latest: watch::Receiver<i64>,
    closing: watch::Receiver<bool>,
    pending: VecDeque<Bytes>,
    /// Look for events before waiting (at the start, after a full page, after a failed read).
    fresh: bool,
    _slot: Slot,
}

/// The SSE message of one event.
fn message(item: &EventWithJob) -> Bytes {
    let ty = item.event.event_type.as_str();
    let id = item.event.id;
    let mut data = serde_json::to_value(EventView::from(item.event.clone())).unwrap_or_default();
    if let Some(object) = data.as_object_mut() {
        let job = item
            .job
            .as_ref()
            .map(|j| serde_json::to_value(JobView::from(j.clone())).unwrap_or_default());
        object.insert("job".to_owned(), job.unwrap_or(serde_json::Value::Null));
    }
    Bytes::from(format!("id: {id}\nevent: {ty}\ndata: {data}\n\n"))
}

async fn next_message(mut s: Stream) -> Option<(Result<Bytes, actix_web::Error>, Stream)> {
    loop {
        if let Some(bytes) = s.pending.pop_front() {
            return Some((Ok(bytes), s));
        }
        if *s.closing.borrow() {
            return None;
        }
        if s.fresh || s.latest.has_changed().unwrap_or(false) {
            // Everything up to `known` had committed before the table is read below.
            let known = *s.latest.borrow_and_update();
            if let Some(taken) = s.hub.take_after(&s.vis, &s.filter, s.cursor) {
                s.cursor = taken.through;
                s.pending.extend(taken.messages);
                s.fresh = false;
                continue;
            }
            // Further behind than the hub holds: read the table.
            let (store, vis, filter, after) =
                (s.store.clone(), s.vis.clone(), s.filter.clone(), s.cursor);
            let read = web::block(move || store.events_after(&vis, &filter, after, PAGE)).await;
            let events =
                match read.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                    Ok(events) => events,
                    Err(err) => {
                        // Nothing is skipped: the cursor stays, and the read is tried again.
                        log::warn!(target: "jobs::events", "stream read: {err}");
                        actix_web::rt::time::sleep(POLL).await;
                        s.fresh = true;
                        continue;
                    }
                };
            s.fresh = events.len() as i64 >= PAGE;
            if let Some(last) = events.last() {
                s.cursor = last.event.id;
            }
            if !s.fresh {
                // A short page saw every matching event up to `known`.
                s.cursor = s.cursor.max(known);
            }
            s.pending.extend(events.iter().map(message));
            continue;
        }
        tokio::select! {
            changed = s.latest.changed() => {
                if changed.is_err() {
                    return None;
                }
                // `changed` marks the new id seen: look now.
                s.fresh = true;
            }
            _ = s.closing.changed() => return None,
            _ = actix_web::rt::time::sleep(KEEP_ALIVE) => {
                return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), s));
            }
        }
    }
}

/// Registers the change stream under `/api` and `/v1`.
pub fn stream_routes(cfg: &mut web::ServiceConfig) {
    for prefix in ["/api", "/v1"] {
        cfg.service(
            crate::metrics::resource(&format!("{prefix}/events"))
                .route(web::get().to(stream_events)),
        );
    }
}
