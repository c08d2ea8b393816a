//! What keeps the change streams of this process fed and lets them end: the event tailer,
//! the PostgreSQL listener (events committed through any replica), and the shutdown signal.

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
    let hub = state.events.clone();
    let stopping = Arc::new(AtomicBool::new(false));
    let stop = stopping.clone();
    // A plain thread: the listener blocks on its connection. It is restarted after a delay
    // whenever the connection fails; meanwhile the tailer's own poll keeps streams fed.
    let spawned = std::thread::Builder::new().name("jobs-listen".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let stopped = || stop.load(Ordering::Relaxed);
            if let Err(err) = jobs_store::events::listen(&url, &|| hub.wake(), &stopped) {
                log::warn!(target: "jobs::events", "event listener failed: {err}; restarting");
                metrics.background_restart("event_listener");
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
