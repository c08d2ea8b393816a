//! Prometheus metrics (`GET /metrics`) and the request middleware that feeds them and
//! writes one structured log line per request, with an `x-request-id`.

use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, USER_AGENT};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use jobs_domain::JobStatus;
use jobs_store::StoreObserver;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::error::{ErrorBody, ErrorCause};
use crate::AppState;

/// The header that carries a request's id.
pub const REQUEST_ID: &str = "x-request-id";

/// The HTTP layer's metrics (requests, jobs created, transitions, the pool) and the one
/// registry `/metrics` exports, which the server's background loops register into too.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    jobs_created: IntCounter,
    transitions: IntCounterVec,
    pool_connections: IntGauge,
    pool_in_use: IntGauge,
    pool_max: IntGauge,
    held_requests: IntGauge,
}

/// Latency histogram buckets, in seconds (shared with the background metrics).
pub const LATENCY_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "jobs_http_requests_total",
                "HTTP requests by route template, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_latency = HistogramVec::new(
            HistogramOpts::new("jobs_http_request_duration_seconds", "HTTP request latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let jobs_created = IntCounter::new("jobs_created_total", "Jobs created")?;
        let transitions = IntCounterVec::new(
            Opts::new("jobs_transitions_total", "Job status transitions by from and to status"),
            &["from", "to"],
        )?;
        let pool_connections =
            IntGauge::new("jobs_db_pool_connections", "Open database connections")?;
        let pool_in_use = IntGauge::new("jobs_db_pool_in_use", "Database connections in use")?;
        let pool_max =
            IntGauge::new("jobs_db_pool_max", "Most database connections the pool opens")?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_latency.clone()))?;
        registry.register(Box::new(jobs_created.clone()))?;
        registry.register(Box::new(transitions.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_in_use.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        let held_requests = IntGauge::new(
            "jobs_held_requests",
            "Requests held by Prefer: wait, waiting for their job to change, in this process",
        )?;
        registry.register(Box::new(held_requests.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_latency,
            jobs_created,
            transitions,
            pool_connections,
            pool_in_use,
            pool_max,
            held_requests,
        })
    }

    /// Counts one HTTP request.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, latency: Duration) {
        self.http_requests.with_label_values(&[route, method, &status.to_string()]).inc();
        self.http_latency.with_label_values(&[route, method]).observe(latency.as_secs_f64());
    }

    /// The registry `/metrics` gathers; other layers register their own metrics into it.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format.
    pub fn render(&self, store: &jobs_store::JobStore, held_requests: usize) -> String {
        self.held_requests.set(i64::try_from(held_requests).unwrap_or(i64::MAX));
        let pool = store.pool_status();
        self.pool_connections.set(i64::from(pool.connections));
        self.pool_in_use.set(i64::from(pool.connections.saturating_sub(pool.idle)));
        self.pool_max.set(i64::from(pool.max_size));
        let mut out = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            log::error!("encoding metrics: {err}");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl StoreObserver for Metrics {
    fn job_created(&self) {
        self.jobs_created.inc();
    }

    fn job_transitioned(&self, from: JobStatus, to: JobStatus) {
        self.transitions.with_label_values(&[from.as_str(), to.as_str()]).inc();
    }
}

/// Prometheus metrics in the text exposition format (no auth).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String),
        (status = 500, description = "Unexpected server error", body = ErrorBody)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&state.store, state.notifier.held_requests()))
}

/// The `method` label: one of a fixed set, so that no request, however malformed, can add
/// a series to `/metrics`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The SDK version header of the request log line (named once, not parsed per request).
const SDK_VERSION: HeaderName = HeaderName::from_static("x-stainless-package-version");

/// Who made a request, as the auth extractor found it (for the log line).
#[derive(Clone, Debug)]
pub struct RequestUser(pub String);

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The route template a resource serves, kept in its app data so that the metrics can label
/// a request without matching its path again (`HttpRequest::match_pattern` runs the
/// router's regular expressions a second time: a tenth of a GET's CPU).
#[derive(Clone, Debug)]
pub struct RoutePattern(pub std::sync::Arc<str>);

/// A resource at `pattern` that labels its requests' metrics with it.
pub fn resource(pattern: &str) -> actix_web::Resource {
    web::resource(pattern).app_data(RoutePattern(pattern.into()))
}

/// Middleware: request id in and out, one log line, and the HTTP metrics. Route templates
/// (`/api/jobs/{job_id}`), never raw paths, label the metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let method = req.method().clone();
    let metrics = req.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
    let events = req.app_data::<web::Data<AppState>>().map(|s| s.events.clone());
    let mut res = crate::events::with_request(id.clone(), next.call(req)).await?;
    events.filter(|_| method != actix_web::http::Method::GET).inspect(|hub| hub.wake());
    let latency = started.elapsed();
    let route: std::sync::Arc<str> = match res.request().app_data::<RoutePattern>() {
        Some(RoutePattern(pattern)) => pattern.clone(),
        None => res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned()).into(),
    };
    let status = res.status().as_u16();
    if let Some(metrics) = metrics {
        metrics.observe_request(&route, method_label(&method), status, latency);
    }
    let request = res.request();
    let cause = res.response().extensions().get::<ErrorCause>().map(ToString::to_string);
    // A request that failed underneath is logged louder, with its cause.
    let level = match (&cause, status) {
        (None, _) => log::Level::Info,
        (Some(_), 500..) if status != 503 => log::Level::Error,
        (Some(_), _) => log::Level::Warn,
    };
    if log::log_enabled!(target: "jobs::request", level) {
        let extensions = request.extensions();
        let user = extensions.get::<RequestUser>().map(|u| u.0.as_str());
        let header = |name: &HeaderName| {
            request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("-")
        };
        // Structured fields: the log formatter quotes and escapes every value (logfmt) or
        // writes them as JSON, so no value can forge another field.
        log::log!(
            target: "jobs::request",
            level,
            method = method.as_str(),
            route = &*route,
            status = status,
            latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3,
            user = user.unwrap_or("-"),
            request_id = id.as_str(),
            user_agent = header(&USER_AGENT),
            sdk_version = header(&SDK_VERSION),
            error = cause.as_deref().unwrap_or("-");
            ""
        );
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(res)
}
