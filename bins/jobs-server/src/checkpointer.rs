//! The checkpoint loop (SQLite): every 100 ms, copies what the WAL holds into the database
//! file ([`JobStore::checkpoint`]), so that commits only append to the WAL. On PostgreSQL it
//! has nothing to do.

use std::time::Duration;

use jobs_store::JobStore;

/// How often the WAL is checkpointed: an expiry batch commits every 50 to 100 ms.
pub const EVERY: Duration = Duration::from_millis(100);

/// Runs until the process stops (on PostgreSQL, idly).
pub async fn run(store: JobStore) {
    if store.backend() != "sqlite" {
        return std::future::pending().await;
    }
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let store = store.clone();
        // Said once, not every 100 ms, while it goes on failing; and when it recovers.
        let failure = match tokio::task::spawn_blocking(move || store.checkpoint()).await {
            Ok(Ok(_)) => None,
            Ok(Err(err)) => Some(format!("cannot checkpoint the WAL: {err}")),
            Err(err) => Some(format!("checkpoint task failed: {err}")),
        };
        match &failure {
            Some(why) if !failing => log::warn!(target: "jobs::checkpointer", "{why}"),
            None if failing => {
                log::info!(target: "jobs::checkpointer", "checkpoints succeed again")
            }
            _ => {}
        }
        failing = failure.is_some();
    }
}
