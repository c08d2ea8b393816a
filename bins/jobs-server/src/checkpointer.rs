//! The checkpoint loop (SQLite): every 100 ms, copies what the WAL holds into the database
//! file ([`JobStore::checkpoint`]), so that commits only append to the WAL. On PostgreSQL it
//! stops at its first call, which says there is nothing to do.

use std::time::Duration;

use jobs_store::JobStore;

/// How often the WAL is checkpointed: an expiry batch commits every 50 to 100 ms.
pub const EVERY: Duration = Duration::from_millis(100);

/// Runs until the process stops (or at once returns, on PostgreSQL).
pub async fn run(store: JobStore) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.checkpoint()).await {
            Ok(Ok(None)) => std::future::pending::<()>().await,
            Ok(Ok(Some(_))) => {
                if std::mem::take(&mut failing) {
                    log::info!(target: "jobs::checkpointer", "checkpoints succeed again");
                }
            }
            // Said once, not every 100 ms, while the database stays unavailable.
            Ok(Err(err)) => {
                if !std::mem::replace(&mut failing, true) {
                    log::warn!(target: "jobs::checkpointer", "cannot checkpoint the WAL: {err}");
                }
            }
            Err(err) => log::error!(target: "jobs::checkpointer", "checkpoint task failed: {err}"),
        }
    }
}
