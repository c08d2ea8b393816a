//! Cross-replica wake-ups (PostgreSQL): one listening connection per process turns the
//! `jobs_changes` notices of every replica into wake-ups of this process's held requests.
//! The connection is polled every 100 ms on a blocking thread (diesel offers no wait on
//! its socket), and reopened after a failure; on SQLite the loop ends at once.

use std::sync::Arc;
use std::time::Duration;

use jobs_http::wait::Notifier;
use jobs_store::{ChangeListener, JobStore};

const POLL: Duration = Duration::from_millis(100);
const RETRY: Duration = Duration::from_secs(1);

/// Runs until the runtime stops.
pub async fn run(store: JobStore, notifier: Arc<Notifier>) {
    loop {
        let opened = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || ChangeListener::open(&store)).await
        };
        let mut listener = match opened {
            Ok(Ok(Some(listener))) => listener,
            Ok(Ok(None)) => return,
            Ok(Err(err)) => {
                log::warn!(target: "jobs::listen", "cannot listen for changes: {err}");
                tokio::time::sleep(RETRY).await;
                continue;
            }
            Err(err) => {
                log::error!(target: "jobs::listen", "listener task failed: {err}");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        // Notices sent while no connection listened are lost: wake everything once, so
        // that held requests look again.
        notifier.pending_added();
        loop {
            let polled = tokio::task::spawn_blocking(move || {
                let notices = listener.poll();
                (listener, notices)
            })
            .await;
            let Ok((back, Ok(notices))) = polled else {
                log::warn!(target: "jobs::listen", "lost the change listener; reconnecting");
                break;
            };
            listener = back;
            for notice in notices {
                notifier.job_id_changed(notice.job_id);
                if notice.pending {
                    notifier.pending_added();
                }
            }
            tokio::time::sleep(POLL).await;
        }
        tokio::time::sleep(RETRY).await;
    }
}
