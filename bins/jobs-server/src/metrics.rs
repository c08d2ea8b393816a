//! The background loops' metrics: expiry, retention, webhook attempts and restarts. They
//! register into the registry `/metrics` gathers (see [`jobs_http::Metrics::registry`]).

use std::time::Duration;

use jobs_http::metrics::LATENCY_BUCKETS;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

/// What the sweeper, the webhook dispatcher and the supervisor count.
#[derive(Clone, Debug)]
pub struct BackgroundMetrics {
    jobs_expired: IntCounter,
    jobs_purged: IntCounter,
    webhook_deliveries: IntCounterVec,
    webhook_latency: Histogram,
    background_restarts: IntCounterVec,
}

impl BackgroundMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn register(registry: &Registry) -> Result<BackgroundMetrics, prometheus::Error> {
        let metrics = BackgroundMetrics {
            jobs_expired: IntCounter::new(
                "jobs_expired_total",
                "Jobs moved to expired by the sweeper",
            )?,
            jobs_purged: IntCounter::new("jobs_purged_total", "Finished jobs purged by retention")?,
            webhook_deliveries: IntCounterVec::new(
                Opts::new(
                    "jobs_webhook_deliveries_total",
                    "Webhook delivery attempts by outcome (delivered, retried, failed)",
                ),
                &["outcome"],
            )?,
            webhook_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "jobs_webhook_delivery_duration_seconds",
                    "Webhook attempt latency",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )?,
            background_restarts: IntCounterVec::new(
                Opts::new(
                    "jobs_background_restarts_total",
                    "Background loops (sweeper, webhook_dispatcher) started again after a panic",
                ),
                &["task"],
            )?,
        };
        registry.register(Box::new(metrics.jobs_expired.clone()))?;
        registry.register(Box::new(metrics.jobs_purged.clone()))?;
        registry.register(Box::new(metrics.webhook_deliveries.clone()))?;
        registry.register(Box::new(metrics.webhook_latency.clone()))?;
        registry.register(Box::new(metrics.background_restarts.clone()))?;
        Ok(metrics)
    }

    /// Counts jobs the sweeper expired.
    pub fn jobs_expired(&self, n: usize) {
        self.jobs_expired.inc_by(n as u64);
    }

    /// Counts jobs retention purged.
    pub fn jobs_purged(&self, n: usize) {
        self.jobs_purged.inc_by(n as u64);
    }

    /// Counts a webhook attempt: `delivered`, `retried` or `failed`.
    pub fn webhook_attempt(&self, outcome: &str, latency: Duration) {
        self.webhook_deliveries.with_label_values(&[outcome]).inc();
        self.webhook_latency.observe(latency.as_secs_f64());
    }

    /// Counts a background loop started again after it stopped.
    pub fn background_restart(&self, task: &'static str) {
        self.background_restarts.with_label_values(&[task]).inc();
    }

    /// How often a background loop was started again.
    pub fn background_restarts(&self, task: &str) -> u64 {
        self.background_restarts.with_label_values(&[task]).get()
    }
}
