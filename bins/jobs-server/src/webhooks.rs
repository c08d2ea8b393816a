//! Completion webhook delivery: claims due deliveries from the outbox, POSTs them
//! signed, and records each attempt, with exponential backoff between retries.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::BackgroundMetrics;
use anyhow::Context;
use jobs_http::resolve::{self, screen, Lookup, Resolver, Screen};
use jobs_store::{Attempt, Delivery, JobStore, NextStep};
use rand::Rng;
use tokio::sync::Semaphore;

mod signer;
mod targets;
pub use signer::Signer;
use targets::{Checked, PrivateTarget};

/// Deliveries in flight at once, per process: a slow receiver holds one slot, not the queue.
const CONCURRENCY: usize = 16;
/// How often an idle dispatcher looks for due deliveries.
const POLL: Duration = Duration::from_millis(200);
/// How much of a receiver's answer is read (and then dropped).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest claim on a delivery (see [`Dispatcher::lease`]).
const MAX_LEASE: Duration = Duration::from_secs(8);
/// Longest wait between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(3600);

/// How webhooks are sent.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Signs every delivery when set.
    pub signer: Option<Signer>,
    /// Lets webhooks reach loopback, private and link-local addresses.
    pub allow_private: bool,
    /// How host names are looked up.
    pub lookup: Lookup,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Attempts at most (the first included).
    pub max_attempts: u32,
    /// The first retry's delay; the n-th waits `retry_base × 4^(n-1)`.
    pub retry_base: Duration,
}

/// The wait before the `retry`-th retry (1-based), with ±20% jitter, capped at one hour.
pub fn retry_delay(retry: u32, base: Duration, jitter: f64) -> Duration {
    let factor =
        4f64.powi(retry.saturating_sub(1).min(30) as i32) * (1.0 + jitter.clamp(-0.2, 0.2));
    let secs = (base.as_secs_f64() * factor).min(MAX_DELAY.as_secs_f64());
    Duration::from_secs_f64(secs.max(0.0))
}

/// What one attempt found.
struct Outcome {
    status_code: Option<i32>,
    error: Option<String>,
    success: bool,
    permanent: bool,
}

impl Outcome {
    fn failure(error: impl Into<String>, permanent: bool) -> Outcome {
        Outcome { status_code: None, error: Some(error.into()), success: false, permanent }
    }
}

/// The background task that delivers webhooks.
#[derive(Clone)]
pub struct Dispatcher {
    store: JobStore,
    settings: WebhookSettings,
    metrics: Arc<BackgroundMetrics>,
    client: reqwest::Client,
}

impl Dispatcher {
    /// A dispatcher over the store's outbox.
    pub fn new(
        store: JobStore,
        settings: WebhookSettings,
        metrics: Arc<BackgroundMetrics>,
    ) -> anyhow::Result<Dispatcher> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the receiver itself, past the private-address guard.
            .no_proxy()
            .timeout(settings.timeout)
            .user_agent(concat!("jobs-api-webhooks/", env!("CARGO_PKG_VERSION")));
        // Names get the same two seconds as at creation (less if the whole attempt has less).
        let deadline = settings.timeout.min(resolve::DEFAULT_DEADLINE);
        let resolver = Resolver::new(settings.lookup.clone(), CONCURRENCY, deadline);
        builder = builder
            .dns_resolver(Arc::new(Checked { resolver, allow_private: settings.allow_private }));
        let client = builder.build().context("building the webhook HTTP client")?;
        Ok(Dispatcher { store, settings, metrics, client })
    }

    /// How long a claim lasts: one attempt and a margin. If this process dies, another (or
    /// the next start) resumes the delivery when the lease runs out.
    ///
    /// The lease is capped at [`MAX_LEASE`] so that deliveries a crashed process held are
    /// resumed within 10 seconds even with long timeouts; with a timeout above six
    /// seconds a very slow receiver may therefore get a duplicate, which at-least-once allows.
    fn lease(&self) -> chrono::TimeDelta {
        let lease = (self.settings.timeout + Duration::from_secs(2)).min(MAX_LEASE);
        chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::seconds(8))
    }

    /// Claims what is due now and delivers it, one attempt each, waiting for all of them;
    /// returns how many were attempted. Tests drive the dispatcher with it; the server
    /// runs [`Dispatcher::run`].
    #[cfg(test)]
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        let store = self.store.clone();
        let lease = self.lease();
        let due =
            tokio::task::spawn_blocking(move || store.claim_deliveries(CONCURRENCY as i64, lease))
                .await??;
        let count = due.len();
        for delivery in due {
            self.deliver(delivery).await;
        }
        Ok(count)
    }

    /// Runs until the process stops: claims due deliveries and sends them, at most
    /// [`CONCURRENCY`] at a time.
    pub async fn run(self) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        let lease = this.lease();
        loop {
            // Wait for a free slot, then claim as many deliveries as there are free slots:
            // as soon as one attempt ends, the next due delivery starts.
            let Ok(first) = Arc::clone(&slots).acquire_owned().await else { return };
            let free = slots.available_permits() + 1;
            let store = this.store.clone();
            let claimed =
                tokio::task::spawn_blocking(move || store.claim_deliveries(free as i64, lease))
                    .await;
            let deliveries = match claimed {
                Ok(Ok(deliveries)) => deliveries,
                Ok(Err(err)) => {
                    log::warn!("claiming webhook deliveries: {err}");
                    drop(first);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(err) => {
                    log::error!("webhook claim task failed: {err}");
                    drop(first);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let full = deliveries.len() == free;
            let mut first = Some(first);
            for delivery in deliveries {
                let permit = match first.take() {
                    Some(permit) => permit,
                    None => match Arc::clone(&slots).acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                };
                let this = Arc::clone(&this);
                tokio::spawn(async move {
                    this.deliver(delivery).await;
                    drop(permit);
                });
            }
            drop(first);
            if !full {
                // Nothing more is due: look again shortly.
                tokio::time::sleep(POLL).await;
            }
        }
    }

    async fn deliver(&self, delivery: Delivery) {
        let started = Instant::now();
        let outcome = self.attempt(&delivery).await;
        let done = u32::try_from(delivery.attempts).unwrap_or(0).saturating_add(1);
        let next = if outcome.success {
            NextStep::Delivered
        } else if outcome.permanent || done >= self.settings.max_attempts {
            NextStep::GiveUp
        } else {
            let jitter = rand::rng().random_range(-0.2..=0.2);
            let wait = retry_delay(done, self.settings.retry_base, jitter);
            NextStep::RetryAt(
                self.store.now() + chrono::TimeDelta::from_std(wait).unwrap_or_default(),
            )
        };
        let label = match next {
            NextStep::Delivered => "delivered",
            NextStep::RetryAt(_) => "retried",
            NextStep::GiveUp => "failed",
        };
        self.metrics.webhook_attempt(label, started.elapsed());
        if let Some(error) = &outcome.error {
            log::info!(target: "jobs::webhooks", "delivery {} of {} attempt {done}: {error} ({label})", delivery.id, delivery.job_id);
        }
        let attempt = Attempt {
            at: self.store.now(),
            status_code: outcome.status_code,
            error: outcome.error,
            duration_ms: i64::try_from(started.elapsed().as_millis()).ok(),
        };
        let store = self.store.clone();
        let recorded =
            tokio::task::spawn_blocking(move || store.record_attempt(&delivery, &attempt, next))
                .await;
        match recorded {
            Ok(Ok(())) => {}
            // The lease runs out and the delivery is tried again: at least once.
            Ok(Err(err)) => log::warn!("recording a webhook attempt: {err}"),
            Err(err) => log::error!("webhook record task failed: {err}"),
        }
    }

    async fn attempt(&self, delivery: &Delivery) -> Outcome {
        let url = match reqwest::Url::parse(&delivery.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => return Outcome::failure("invalid callback_url", true),
        };
        if !self.settings.allow_private && url.host().is_some_and(|h| screen(&h) == Screen::Private)
        {
            return Outcome::failure("refused: callback_url targets a private address", true);
        }
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .body(delivery.payload.clone());
        if let Some(signer) = &self.settings.signer {
            request = request.header(
                "webhook-signature",
                signer.sign(&delivery.id, timestamp, &delivery.payload),
            );
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                // Read a little of the body so the connection can be reused; never hold a
                // large answer in memory.
                let mut response = response;
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    let mut read = 0;
                    while let Ok(Some(chunk)) = response.chunk().await {
                        read += chunk.len();
                        if read > MAX_ANSWER_BYTES {
                            break;
                        }
                    }
                })
                .await;
                Outcome {
                    status_code: Some(i32::from(status.as_u16())),
                    error: (!status.is_success())
                        .then(|| format!("receiver answered HTTP {}", status.as_u16())),
                    success: status.is_success(),
                    permanent: false,
                }
            }
            Err(err) => {
                if let Some(private) = find_cause::<PrivateTarget>(&err) {
                    return Outcome::failure(format!("refused: {private}"), true);
                }
                let what = if err.is_timeout() {
                    "timeout".to_owned()
                } else if err.is_connect() {
                    format!("connection failed: {}", root_cause(&err))
                } else {
                    format!("request failed: {}", root_cause(&err))
                };
                Outcome::failure(what, false)
            }
        }
    }
}

fn find_cause<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_targets_fail_at_delivery_for_good_without_a_request() {
        use jobs_domain::{CallbackUrl, NewJob, Owner, Visibility};
        let dir = tempfile::tempdir().unwrap();
        let url = jobs_store::DatabaseUrl::Sqlite(dir.path().join("jobs.db"));
        let store = JobStore::open(&url, &jobs_store::PoolOptions::default()).unwrap();
        let vis = Visibility::organization("o");
        let mut ids = Vec::new();
        // The store takes any URL; the API would refuse these at creation.
        for target in [
            "http://127.0.0.1:9/h",
            "http://localhost:9/h",
            "http://[::ffff:127.0.0.1]:9/h",
            "http://169.254.169.254/x",
        ] {
            let new = NewJob::default().with_callback_url(CallbackUrl::parse(target).unwrap());
            let id = store.create(Owner::new("o", "u", None), new, None).unwrap().job.id;
            store.cancel(&vis, id).unwrap();
            ids.push(id);
        }
        let settings = WebhookSettings {
            signer: None,
            allow_private: false,
            lookup: Lookup::system(),
            timeout: Duration::from_secs(2),
            max_attempts: 8,
            retry_base: Duration::from_millis(10),
        };
        let metrics = Arc::new(BackgroundMetrics::register(&prometheus::Registry::new()).unwrap());
        let dispatcher = Dispatcher::new(store.clone(), settings, metrics).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(runtime.block_on(dispatcher.deliver_due()).unwrap(), 4);
        for id in ids {
            let job = store.get(&vis, id).unwrap();
            let error = job.callback_error.unwrap_or_default();
            assert!(error.starts_with("refused"), "{error}");
            assert_eq!(job.callback_status_code, None);
            assert!(job.callback_sent_at.is_some());
        }
        assert_eq!(store.pending_deliveries().unwrap(), 0, "not retried");
        assert_eq!(runtime.block_on(dispatcher.deliver_due()).unwrap(), 0);
    }

    #[test]
    fn the_lease_covers_one_attempt_but_never_passes_eight_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let url = jobs_store::DatabaseUrl::Sqlite(dir.path().join("jobs.db"));
        let store = JobStore::open(&url, &jobs_store::PoolOptions::default()).unwrap();
        let dispatcher = |timeout_ms| {
            let settings = WebhookSettings {
                signer: None,
                allow_private: false,
                lookup: Lookup::system(),
                timeout: Duration::from_millis(timeout_ms),
                max_attempts: 8,
                retry_base: Duration::from_secs(1),
            };
            Dispatcher::new(
                store.clone(),
                settings,
                Arc::new(BackgroundMetrics::register(&prometheus::Registry::new()).unwrap()),
            )
            .unwrap()
        };
        assert_eq!(dispatcher(5000).lease(), chrono::TimeDelta::seconds(7));
        assert_eq!(dispatcher(30_000).lease(), chrono::TimeDelta::seconds(8));
    }

    #[test]
    fn retries_back_off_by_four_with_bounded_jitter_and_a_one_hour_cap() {
        let base = Duration::from_millis(1000);
        assert_eq!(retry_delay(1, base, 0.0), Duration::from_secs(1));
        assert_eq!(retry_delay(2, base, 0.0), Duration::from_secs(4));
        assert_eq!(retry_delay(3, base, 0.0), Duration::from_secs(16));
        assert_eq!(retry_delay(7, base, 0.0), Duration::from_secs(3600));
        assert_eq!(retry_delay(2, base, 0.2), Duration::from_secs_f64(4.8));
        assert_eq!(retry_delay(2, base, -0.5), Duration::from_secs_f64(3.2));
        assert_eq!(retry_delay(40, base, 0.0), Duration::from_secs(3600));
    }
}
