//! The Jobs REST API over actix-web: handlers, Bearer JWT auth, the one error body, and
//! the OpenAPI document generated from the handlers.
//!
//! This crate never sees diesel: it talks to [`jobs_store::JobStore`] on a blocking thread
//! and maps its errors into [`ApiError`].

pub mod auth;
pub mod body;
mod direct_route;
pub mod dto;
pub mod dto_json;
pub mod error;
pub mod etag;
pub mod events;
pub mod handlers;
pub mod headers;
pub mod metrics;
mod new_job;
pub mod openapi;
mod paging;
pub mod ratelimit;
pub mod resolve;
mod routes;
pub mod stream;
mod token_cache;
pub mod wait;
pub mod workers;

pub use auth::{Authenticator, Caller, Claims, KeySource};
pub use direct_route::{DirectJobRoute, DirectJobRouteService};
pub use error::{ApiError, ErrorBody};
pub use events::event_routes;
pub use metrics::Metrics;
pub use routes::{error_fallback, health_routes, job_routes, not_found, ApiDoc};
pub use stream::{stream_routes, EventHub};

/// The default request body limit (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The jobs.
    pub store: jobs_store::JobStore,
    /// Token verification.
    pub auth: Authenticator,
    /// Request bodies larger than this are 413.
    pub max_body_bytes: usize,
    /// A job's metadata, serialized after a merge patch, may not exceed this (422).
    pub max_metadata_bytes: usize,
    /// What `/metrics` reports.
    pub metrics: std::sync::Arc<metrics::Metrics>,
    /// Webhook targets on loopback, private and link-local addresses are allowed.
    pub webhook_allow_private: bool,
    /// Looks up callback host names at creation.
    pub resolver: resolve::Resolver,
    /// Per-user request limit (`JOBS_RATE_LIMIT`); `None` when off.
    pub rate_limit: Option<std::sync::Arc<ratelimit::UserRateLimiter>>,
    /// Wakes requests held by `Prefer: wait`.
    pub notifier: std::sync::Arc<wait::Notifier>,
    /// The cap of `Prefer: wait`, in seconds.
    pub max_wait_seconds: u64,
    /// What the change streams of this process share.
    pub events: std::sync::Arc<stream::EventHub>,
}

impl AppState {
    /// Runs a store call on the blocking pool: diesel never runs on an async worker thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&jobs_store::JobStore) -> jobs_store::StoreResult<T> + Send + 'static,
    {
        // Bound to the request's actor and id, which the events it writes record.
        let store = self.store.acting(crate::events::context());
        actix_web::web::block(move || f(&store))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// Runs a store read: on this thread when the store's reads are cheap enough for it
    /// (SQLite: a per-thread connection, a read in microseconds, cheaper than the hand-off
    /// to a blocking thread and back), on the blocking pool otherwise.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&jobs_store::JobStore) -> jobs_store::StoreResult<T> + Send + 'static,
    {
        if self.store.reads_inline() {
            return f(&self.store).map_err(ApiError::from);
        }
        self.run(f).await
    }

    /// Reads one visible job: on this thread on SQLite, from this task on PostgreSQL when
    /// the store can (its own pipelined connection per thread, no blocking thread), on the
    /// blocking pool otherwise (see `JobStore::get_async`).
    pub async fn get_job(
        &self,
        vis: &jobs_domain::Visibility,
        id: jobs_domain::JobId,
    ) -> Result<jobs_domain::Job, ApiError> {
        if let Some(read) = self.store.get_async(vis, id).await {
            return read.map_err(ApiError::from);
        }
        let vis = vis.clone();
        self.read(move |store| store.get(&vis, id)).await
    }
}
