//! What keeps the change streams and held requests of this process fed and lets streams
//! end: the event tailer, the PostgreSQL listener (changes and events committed through
//! any replica), and the shutdown signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use jobs_http::AppState;
use jobs_store::DatabaseUrl;

use crate::metrics::BackgroundMetrics;
use crate::supervise::{supervise, RESTART_DELAY};

/// Starts the tailer, the listener (on PostgreSQL) and the signal watcher. Must be called
/// inside the server's runtime.
pub(crate) fn start(state: &AppState, metrics: Arc<BackgroundMetrics>, url: &str) {
    let (hub, store) = (state.events.clone(), state.store.clone());
    actix_web::rt::spawn(supervise("event_tailer", metrics.clone(), RESTART_DELAY, move || {
        hub.clone().tail(store.clone())
    }));

    // SIGTERM or Ctrl-C: end the streams, so that graceful shutdown does not wait for them.
    let hub = state.events.clone();
    actix_web::rt::spawn(async move {
        terminated().await;
        log::info!(target: "jobs::events", "shutting down: closing {} event streams", hub.open_streams());
        hub.close();
    });

    let Ok(url @ DatabaseUrl::Postgres(_)) = DatabaseUrl::parse(url) else { return };
    let (hub, notifier) = (state.events.clone(), state.notifier.clone());
    let stopping = Arc::new(AtomicBool::new(false));
    let stop = stopping.clone();
    // One listening connection per process wakes both the change streams and the held
    // requests. A plain thread: the listener polls its connection every 20 ms. It is
    // restarted after a delay whenever the connection fails; meanwhile the tailer's own
    // poll keeps streams fed (held requests time out as usual).
    let on_notices = move |notices: &[jobs_store::ChangeNotice]| {
        hub.wake();
        if notices.is_empty() {
            // (Re)connected: notices may have been missed while nobody listened, so every
            // held request reads its job again and claimers look again.
            notifier.wake_all();
        }
        for notice in notices {
            notifier.job_id_changed(notice.job_id);
            if notice.pending {
                notifier.pending_added();
            }
        }
    };
    let spawned = std::thread::Builder::new().name("jobs-listen".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let stopped = || stop.load(Ordering::Relaxed);
            if let Err(err) = jobs_store::changes::listen(&url, &on_notices, &stopped) {
                log::warn!(target: "jobs::listen", "change listener failed: {err}; restarting");
                metrics.background_restart("change_listener");
            }
            std::thread::sleep(RESTART_DELAY);
        }
    });
    if let Err(err) = spawned {
        log::error!(target: "jobs::events", "cannot start the event listener: {err}");
    }
    // The thread ends with the runtime that owns the flag.
    actix_web::rt::spawn(async move {
        struct StopOnDrop(Arc<AtomicBool>);
        impl Drop for StopOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _guard = StopOnDrop(stopping);
        std::future::pending::<()>().await;
    });
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
