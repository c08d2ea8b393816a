//! An async client of the Jobs API, built on the types of `jobs-domain`.
//!
//! - **Jobs**: [`Client::create`], [`Client::get`], [`Client::update`], [`Client::cancel`],
//!   [`Client::delete`], and lists as a [`Stream`](futures_util::Stream) that follows the
//!   `Link` header from page to page ([`Client::list`]).
//! - **Waiting instead of polling**: [`Client::wait_for_change`] and
//!   [`Client::wait_until_finished`] hold a `GET` with `If-None-Match` and `Prefer: wait`.
//! - **Workers**: [`Client::claim`] and [`Client::heartbeat`].
//! - **The change stream**: [`Client::events`] reads `GET /api/events` (Server-Sent
//!   Events) and reconnects with `Last-Event-ID` by itself.
//! - **Errors** are typed and carry the server's error body ([`Error::Api`]).
//! - **Retries** with exponential backoff and full jitter, honouring `Retry-After`, on
//!   connection errors, `429` and `503`, for requests that are safe to repeat only
//!   ([`RetryPolicy`]). Creates are made safe with an `Idempotency-Key` the client sets.
//! - **Webhooks**: [`webhook::verify`] checks the signature of a completion webhook.
//!
//! It uses rustls for TLS, so a service that embeds it needs no OpenSSL.
//!
//! ```no_run
//! use jobs_client::Client;
//! use jobs_domain::{BoundedMetadata, JobType, NewJob, DEFAULT_MAX_METADATA_BYTES};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new("http://127.0.0.1:8080", std::env::var("JOBS_TOKEN")?)?;
//! let mut metadata = serde_json::Map::new();
//! metadata.insert("dataset".into(), "orders".into());
//! let new = NewJob::default()
//!     .with_job_type(JobType::Batch)
//!     .with_metadata(BoundedMetadata::new(metadata, DEFAULT_MAX_METADATA_BYTES)?);
//! let job = client.create(&new).await?;
//! println!("created {} ({})", job.id, job.status);
//!
//! // Somewhere a worker runs it; wait for the outcome without polling.
//! let done = client.wait_until_finished(&job.id).await?;
//! println!("{} is {}", done.id, done.status);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod error;
mod event;
mod job;
mod jobs;
mod list;
mod retry;
mod sse;
mod transport;
mod wait;
pub mod webhook;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
pub use reqwest::Url;

pub use error::{ApiError, Error, ErrorBody, Result};
pub use event::{ChangeEvent, StreamMessage};
pub use job::Job;
pub use jobs::CreateOptions;
pub use list::Page;
pub use retry::RetryPolicy;
pub use sse::EventsOptions;
pub use wait::{POLL_WHEN_NOT_HELD, WAIT_STEP};
pub use workers::ClaimOptions;

/// A client of one Jobs API server. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    headers: HeaderMap,
    retry: RetryPolicy,
    timeout: Duration,
    stream_idle_timeout: Duration,
}

impl std::fmt::Debug for Client {
    /// The server's URL; never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.inner.base.as_str()).finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base_url` (`http://127.0.0.1:8080`) that authenticates
    /// with the bearer token `token`, with the default settings.
    pub fn new(base_url: &str, token: impl Into<String>) -> Result<Client> {
        Client::builder(base_url).token(token).build()
    }

    /// A builder for a client of the server at `base_url`.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            token: None,
            headers: Vec::new(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            stream_idle_timeout: sse::DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }
}

/// Settings of a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    retry: RetryPolicy,
    timeout: Duration,
    connect_timeout: Duration,
    stream_idle_timeout: Duration,
}

impl std::fmt::Debug for ClientBuilder {
    /// Everything but the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The bearer token (a JWT) sent with every request.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// A header sent with every request, for example `X-Project-Id` to see one project's
    /// jobs in lists.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// When requests are retried ([`RetryPolicy::default`] unless set).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The time limit of one request, from sending it to the end of the answer (30 s by
    /// default). A held request (`Prefer: wait`) gets its wait on top. The change stream
    /// has no such limit: see [`ClientBuilder::stream_idle_timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time limit of opening a connection (10 s by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the change stream may stay silent before the client takes the connection
    /// for dead and reconnects (45 s by default: the server sends a keep-alive every 15 s).
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = timeout;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client> {
        let base = Url::parse(&self.base_url)
            .map_err(|e| Error::Config(format!("base URL '{}': {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config(format!("base URL '{}': not http or https", base)));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Config(format!("'{name}' is not a header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::Config(format!("{name}: not a valid header value")))?;
            headers.append(name, value);
        }
        if let Some(token) = &self.token {
            // Checked here, so that a request never fails on it later.
            HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| Error::Config("the token is not a valid header value".into()))?;
        }
        let http = reqwest::Client::builder()
            .tls_backend_rustls()
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("jobs-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: self.token,
                headers,
                retry: self.retry,
                timeout: self.timeout,
                stream_idle_timeout: self.stream_idle_timeout,
            }),
        })
    }
}
