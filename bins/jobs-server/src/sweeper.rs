//! The maintenance loop: expires overdue jobs every second, and every minute purges
//! idempotency keys past their window and (with retention set) old finished jobs.
//! Every step works in bounded batches on a blocking thread, so request traffic never
//! waits behind it; every replica may run it at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::BackgroundMetrics;
use jobs_store::{JobStore, StoreResult, DELETED_EVENTS_KEPT, IDEMPOTENCY_WINDOW};

const TICK: Duration = Duration::from_secs(1);
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// Jobs expired per batch (one transaction). A batch costs a handful of set-based
/// statements whatever its size; on SQLite it holds the write lock for about 0.05 s.
pub const EXPIRE_BATCH: i64 = 2000;
const PURGE_BATCH: i64 = 500;

/// What the sweeper does.
#[derive(Clone, Debug)]
pub struct SweeperSettings {
    /// Finished jobs older than this are purged; `None` keeps them forever.
    pub retention: Option<chrono::TimeDelta>,
}

async fn blocking<T: Send + 'static>(
    store: &JobStore,
    f: impl FnOnce(&JobStore) -> StoreResult<T> + Send + 'static,
) -> Option<T> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(err)) => {
            log::warn!(target: "jobs::sweeper", "{err}");
            None
        }
        Err(err) => {
            log::error!(target: "jobs::sweeper", "sweep task failed: {err}");
            None
        }
    }
}

/// Repeats `step` while it fills whole batches, yielding between batches; returns the total
/// (what the batches that succeeded did, if one fails).
async fn drain<F>(store: &JobStore, batch: i64, step: F) -> usize
where
    F: Fn(&JobStore, i64) -> StoreResult<usize> + Clone + Send + 'static,
{
    let mut total = 0;
    loop {
        let step = step.clone();
        let Some(n) = blocking(store, move |s| step(s, batch)).await else { return total };
        total += n;
        if (n as i64) < batch {
            return total;
        }
        tokio::task::yield_now().await;
    }
}

/// Runs until the process stops.
pub async fn run(store: JobStore, metrics: Arc<BackgroundMetrics>, settings: SweeperSettings) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_purge: Option<Instant> = None;
    loop {
        tick.tick().await;
        // Counted batch by batch, so that the count moves during a long sweep; a sweep that
        // fails part way says so, and what its committed batches expired.
        let counted = metrics.clone();
        let expired = blocking(&store, move |s| {
            let mut expired = 0;
            let swept = s.expire_all_due(EXPIRE_BATCH, |n| {
                expired += n;
                counted.jobs_expired(n);
            });
            if let Err(err) = swept {
                log::warn!(target: "jobs::sweeper", "{err}");
            }
            Ok(expired)
        })
        .await
        .unwrap_or(0);
        if expired > 0 {
            log::info!(target: "jobs::sweeper", "expired {expired} overdue jobs");
        }
        if last_purge.is_some_and(|at| at.elapsed() < PURGE_EVERY) {
            continue;
        }
        last_purge = Some(Instant::now());
        drain(&store, PURGE_BATCH, |s, n| {
            s.purge_idempotency_keys_before(s.now() - IDEMPOTENCY_WINDOW, n)
        })
        .await;
        drain(&store, PURGE_BATCH, |s, n| {
            s.purge_deleted_events_before(s.now() - DELETED_EVENTS_KEPT, n)
        })
        .await;
        // The retention is at most 100 years (see the configuration), so the cutoff exists.
        let cutoff = settings.retention.and_then(|r| store.now().checked_sub_signed(r));
        if let Some(cutoff) = cutoff {
            let purged =
                drain(&store, PURGE_BATCH, move |s, n| s.purge_finished_before(cutoff, n)).await;
            drain(&store, PURGE_BATCH, move |s, n| s.purge_deliveries_before(cutoff, n)).await;
            if purged > 0 {
                metrics.jobs_purged(purged);
                log::info!(target: "jobs::sweeper", "purged {purged} finished jobs past retention");
            }
        }
    }
}
